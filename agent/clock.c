#include "config.h"

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
