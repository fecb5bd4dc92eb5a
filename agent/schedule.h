/* When the next run starts (SPEC section 3, "Speed"), pure: the caller gives
 * the clock readings. Runs start interval apart, or fast_interval apart while
 * the window holds a run whose verdict disagrees with the current state (a
 * failed run while UP, a passed run while DOWN, any run while unknown), so
 * that a change is confirmed, or refuted, in seconds (mwan3's
 * failure_interval and recovery_interval). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "agent/vote.h"

/* The window holds a run that disagrees with v->state. */
bool sched_disagrees(const struct vote *v);
/* CLOCK_MONOTONIC start of the next run, given when the last one started. */
uint64_t sched_next_start(const struct vote *v, uint64_t last_start_usec, uint64_t interval_usec,
			  uint64_t fast_interval_usec);
