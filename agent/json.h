/* A few helpers to write JSON to a stream (rerouterctl --json): strings
 * escaped, times as ISO 8601 UTC, durations in seconds. */
#pragma once

#include <stdint.h>
#include <stdio.h>

void json_str(FILE *f, const char *s);       /* NULL: null */
void json_time(FILE *f, uint64_t realtime_usec); /* 0: null */
void json_seconds(FILE *f, uint64_t usec);   /* a number of seconds, ms precision */
