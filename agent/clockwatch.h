/* Tell when the wall clock is set (stepped forward or back by hand, NTP or
 * a suspend), so wall-clock decisions can be taken again. libsystemd 252 has
 * no sd_event_add_time_change(): a CLOCK_REALTIME timerfd armed with
 * TFD_TIMER_CANCEL_ON_SET, watched on the loop, does the same. */
#pragma once

#include <systemd/sd-event.h>

struct clockwatch;

/* fn(ud) runs on the loop after each clock set. */
int clockwatch_new(sd_event *e, void (*fn)(void *ud), void *ud, struct clockwatch **ret);
struct clockwatch *clockwatch_free(struct clockwatch *w);
