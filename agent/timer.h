/* One-shot timers on the sd-event loop: the source is created at first use
 * and re-armed after, so a retry or a deadline is one call wherever it is
 * needed (the actions pipeline, the reconciler). */
#pragma once

#include <stdint.h>
#include <time.h>
#include <systemd/sd-event.h>

/* Fires once at usec (absolute, on clock), to within accuracy_usec (0: the
 * loop's default). *src is created when NULL. Negative errno on failure. */
int timer_oneshot_at(sd_event *e, sd_event_source **src, clockid_t clock, uint64_t usec,
		     uint64_t accuracy_usec, sd_event_time_handler_t cb, void *userdata);
/* Fires once delay_usec from now on CLOCK_MONOTONIC. */
int timer_oneshot_in(sd_event *e, sd_event_source **src, uint64_t delay_usec,
		     sd_event_time_handler_t cb, void *userdata);
