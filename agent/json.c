#include "config.h"

#include "agent/clock.h"
#include "agent/json.h"
#include "config/config.h"

void json_str(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
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

void json_time(FILE *f, uint64_t realtime_usec)
{
	char buf[32];

	if (!realtime_usec) {
		fputs("null", f);
		return;
	}
	clock_format_utc(realtime_usec, buf, sizeof buf);
	json_str(f, buf);
}

void json_seconds(FILE *f, uint64_t usec)
{
	fprintf(f, "%llu.%03llu", (unsigned long long)(usec / USEC_PER_SEC),
		(unsigned long long)(usec % USEC_PER_SEC / 1000));
}
