/* [agent] watch_links (SPEC section 3, "Speed"): the kernel's rtnetlink
 * events, on the loop, for the links that matter to the checks: a link that
 * carries a default route, or that a check's `source` names (an interface,
 * or the interface holding that address). Its carrier going or coming, an
 * address added or removed on it, or a default route added or removed
 * starts a run at once; events within 100 ms count as one. Other links
 * (containers, bridges) are ignored. Events only, no polling. */
#pragma once

#include <systemd/sd-event.h>

#include "config/config.h"

struct linkwatch;

/* fn(why, ud) on the loop at the first event of a burst; the events of the
 * next 100 ms count with it. why names that first event:
 * "link event (rr-hub: carrier lost)". */
typedef void (*linkwatch_fn)(const char *why, void *userdata);

/* Subscribe, then read the links, addresses and default routes there are
 * now. The cfg is read here only (its sources are copied). */
int linkwatch_new(sd_event *e, const struct cfg *cfg, linkwatch_fn fn, void *userdata,
		  struct linkwatch **ret);
/* A reload: the checks' sources may have changed. 0 or a negative errno. */
int linkwatch_set_config(struct linkwatch *lw, const struct cfg *cfg);
struct linkwatch *linkwatch_free(struct linkwatch *lw);
