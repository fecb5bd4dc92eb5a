/* Writing JSON to a stream (rerouterctl --json): a small writer that places
 * the commas, strings escaped, times as ISO 8601 UTC, durations in seconds.
 * Every value function takes the member's key, or NULL for an array element
 * (or the document itself). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 8

struct json {
	FILE *f;
	unsigned depth;
	bool started[JSON_MAX_DEPTH]; /* the container at that depth has a member */
};

void json_begin(struct json *j, FILE *f);

void json_obj(struct json *j, const char *key);  /* { */
void json_arr(struct json *j, const char *key);  /* [ */
void json_end_obj(struct json *j);               /* } */
void json_end_arr(struct json *j);               /* ] */

void json_str(struct json *j, const char *key, const char *s);  /* NULL: null */
void json_int(struct json *j, const char *key, long long v);
void json_bool(struct json *j, const char *key, bool v);
void json_null(struct json *j, const char *key);
void json_time(struct json *j, const char *key, uint64_t realtime_usec); /* 0: null */
void json_seconds(struct json *j, const char *key, uint64_t usec);      /* ms precision */
