#include "config.h"

#include "agent/timer.h"

int timer_oneshot_at(sd_event *e, sd_event_source **src, clockid_t clock, uint64_t usec,
		     uint64_t accuracy_usec, sd_event_time_handler_t cb, void *userdata)
{
	int r;

	if (!*src)
		return sd_event_add_time(e, src, clock, usec, accuracy_usec, cb, userdata);
	r = sd_event_source_set_time(*src, usec);
	return r < 0 ? r : sd_event_source_set_enabled(*src, SD_EVENT_ONESHOT);
}

int timer_oneshot_in(sd_event *e, sd_event_source **src, uint64_t delay_usec,
		     sd_event_time_handler_t cb, void *userdata)
{
	int r;

	if (!*src)
		return sd_event_add_time_relative(e, src, CLOCK_MONOTONIC, delay_usec, 0, cb, userdata);
	r = sd_event_source_set_time_relative(*src, delay_usec);
	return r < 0 ? r : sd_event_source_set_enabled(*src, SD_EVENT_ONESHOT);
}
