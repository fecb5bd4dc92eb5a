/* Clocks and the two ways times are written: CLOCK_MONOTONIC for intervals
 * and deadlines, CLOCK_REALTIME for what is stored and what people read. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <time.h>

uint64_t clock_usec(clockid_t clk);
/* UTC, ISO 8601: 2026-11-21T05:56:15Z (the databases). */
void clock_format_utc(uint64_t realtime_usec, char *buf, size_t size);
/* Local time with the zone: 2026-11-21 06:56:15 CET (status, history, the log). */
void clock_format_local(uint64_t realtime_usec, char *buf, size_t size);
/* How long, for people: "1d 2h 3m", "2h 3m", "4m 5s", "6s" (status, history,
 * the alert). The configuration's own syntax is cfg_format_duration(). */
void clock_format_duration(uint64_t usec, char *buf, size_t size);
