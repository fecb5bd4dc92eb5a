#include "config.h"

#include "agent/clock.h"
#include "agent/json.h"
#include "config/config.h"

void json_begin(struct json *j, FILE *f)
{
	*j = (struct json){ .f = f };
}

static void put_escaped(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* The separator and the key before a value; array elements of depth 1 go
 * on lines of their own, so that a long list stays readable. */
static void member(struct json *j, const char *key)
{
	if (j->depth > 0) {
		bool more = j->started[j->depth - 1];
		if (!key && j->depth == 2)
			fputs(more ? ",\n  " : "\n  ", j->f);
		else if (more)
			fputs(", ", j->f);
		j->started[j->depth - 1] = true;
	}
	if (key) {
		put_escaped(j->f, key);
		fputs(": ", j->f);
	}
}

static void open_container(struct json *j, const char *key, char c)
{
	member(j, key);
	fputc(c, j->f);
	if (j->depth < JSON_MAX_DEPTH)
		j->started[j->depth] = false;
	j->depth++;
}

static void close_container(struct json *j, char c)
{
	if (j->depth == 0)
		return;
	j->depth--;
	/* A list of lines ends on a line of its own. */
	if (c == ']' && j->depth == 1 && j->started[1])
		fputc('\n', j->f);
	fputc(c, j->f);
	if (j->depth == 0)
		fputc('\n', j->f);
}

void json_obj(struct json *j, const char *key)
{
	open_container(j, key, '{');
}

void json_arr(struct json *j, const char *key)
{
	open_container(j, key, '[');
}

void json_end_obj(struct json *j)
{
	close_container(j, '}');
}

void json_end_arr(struct json *j)
{
	close_container(j, ']');
}

void json_str(struct json *j, const char *key, const char *s)
{
	member(j, key);
	if (s)
		put_escaped(j->f, s);
	else
		fputs("null", j->f);
}

void json_int(struct json *j, const char *key, long long v)
{
	member(j, key);
	fprintf(j->f, "%lld", v);
}

void json_bool(struct json *j, const char *key, bool v)
{
	member(j, key);
	fputs(v ? "true" : "false", j->f);
}

void json_null(struct json *j, const char *key)
{
	member(j, key);
	fputs("null", j->f);
}

void json_time(struct json *j, const char *key, uint64_t realtime_usec)
{
	char buf[32];

	if (!realtime_usec) {
		json_null(j, key);
		return;
	}
	clock_format_utc(realtime_usec, buf, sizeof buf);
	json_str(j, key, buf);
}

void json_seconds(struct json *j, const char *key, uint64_t usec)
{
	member(j, key);
	fprintf(j->f, "%llu.%03llu", (unsigned long long)(usec / USEC_PER_SEC),
		(unsigned long long)(usec % USEC_PER_SEC / 1000));
}
