#include "config.h"

#include <inttypes.h>
#include <stdio.h>

#include "agent/clock.h"

uint64_t clock_usec(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

void clock_format_utc(uint64_t realtime_usec, char *buf, size_t size)
{
	time_t t = (time_t)(realtime_usec / 1000000ULL);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "1970-01-01T00:00:00Z");
}

void clock_format_local(uint64_t realtime_usec, char *buf, size_t size)
{
	time_t t = (time_t)(realtime_usec / 1000000ULL);
	struct tm tm;

	if (!localtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
		snprintf(buf, size, "?");
}

void clock_format_duration(uint64_t usec, char *buf, size_t size)
{
	uint64_t s = usec / 1000000;
	uint64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;

	if (d)
		snprintf(buf, size, "%" PRIu64 "d %" PRIu64 "h %" PRIu64 "m", d, h, m);
	else if (h)
		snprintf(buf, size, "%" PRIu64 "h %" PRIu64 "m", h, m);
	else if (m)
		snprintf(buf, size, "%" PRIu64 "m %" PRIu64 "s", m, s % 60);
	else
		snprintf(buf, size, "%" PRIu64 "s", s);
}
