#include "config.h"

#include "agent/schedule.h"

bool sched_disagrees(const struct vote *v)
{
	for (size_t i = 0; i < v->n; i++) {
		switch (v->state) {
		case LINK_UP:
			if (v->failed[i])
				return true;
			break;
		case LINK_DOWN:
			if (!v->failed[i])
				return true;
			break;
		default:
			/* No state yet: every run counts towards the first decision. */
			return true;
		}
	}
	return false;
}

uint64_t sched_next_start(const struct vote *v, uint64_t last_start_usec, uint64_t interval_usec,
			  uint64_t fast_interval_usec)
{
	/* A configuration always has fast <= interval; a hand-made one is clamped. */
	uint64_t step = interval_usec;

	if (fast_interval_usec && fast_interval_usec < interval_usec && sched_disagrees(v))
		step = fast_interval_usec;
	return last_start_usec + step;
}
