/* The routing controller (SPEC section 4): keeps the transport database
 * matching the current state's section, restarts or reloads the transport
 * only when the database really changed, then flushes. Nothing gives up:
 * a step that cannot be done is retried with a backoff capped at 60 s for as
 * long as the cause lasts, and what is pending is reported. */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config/config.h"

/* The section to enforce: none while the state is unknown or while DOWN with
 * the backup gate closed. */
enum route_target { ROUTE_NONE, ROUTE_UP, ROUTE_DOWN };

struct reconciler;

/* Called when the routes match the target of change_id (0: a drift
 * correction or a start-up check) and its routing steps are marked. */
typedef void (*reconcile_settled_fn)(int64_t change_id, void *ud);

/* changed_by stamps the connectors it sets and the drift it records; it
 * must outlive the reconciler. */
int reconcile_new(sd_event *e, sqlite3 *state_db, const struct cfg *cfg, const char *changed_by,
		  reconcile_settled_fn cb, void *ud, struct reconciler **ret);
void reconcile_set_config(struct reconciler *r, const struct cfg *cfg);
/* change_id: the newest recorded change, whose routing steps are marked once
 * the routes match (0: none recorded; RECONCILE_UNRECORDED: a change decided
 * while the state database could not be written, whose id follows). */
#define RECONCILE_UNRECORDED (-1)
void reconcile_set_target(struct reconciler *r, enum route_target t, int64_t change_id);
/* Compare the database with the target now (after a run, at start, after a
 * reload); a retry that waits is cut short. */
void reconcile_now(struct reconciler *r);
/* A step running or waiting for a retry. */
bool reconcile_busy(const struct reconciler *r);
/* "transport: restart postfix.service: bus: Connection refused (since
 * 12:00:01, attempt 4)" while something is retried; NULL when nothing is. */
const char *reconcile_pending(const struct reconciler *r);
/* Once the routes settled on [on_down] for change_id: what the connectors
 * step did ("enabled site-b, disabled site-a", "already set"); else NULL. */
const char *reconcile_settled_down(const struct reconciler *r, int64_t change_id);
struct reconciler *reconcile_free(struct reconciler *r);

/* Pure parts, for the unit tests. */
/* The wait before attempt n+1 after n failed ones: 2 s doubling, at most 60 s. */
uint64_t reconcile_backoff_usec(unsigned failed_attempts);
/* Whether an error is logged now: a new one at once, the same one again an
 * hour after it was last logged. */
bool reconcile_should_log(const char *last_logged, uint64_t last_logged_usec, const char *error,
			  uint64_t now_usec);
/* Whether a difference found now is drift (nobody asked for it): the routes
 * had been made to match this very target and change. */
bool reconcile_is_drift(bool settled, enum route_target settled_target, int64_t settled_change,
			enum route_target target, int64_t change_id);
