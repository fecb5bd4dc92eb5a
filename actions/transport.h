/* Restart or reload the mail transport's systemd unit over D-Bus, from the
 * event loop, and wait for the job's result (the Manager's JobRemoved). */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

#include "config/config.h"

struct transport_job;

/* ok: the job finished with result "done". result: systemd's job result
 * ("done", "failed", "timeout", "canceled", "dependency", ...) or a short
 * description of why no job ran ("bus: Permission denied", "no result in 120s"). */
typedef void (*transport_done_fn)(struct transport_job *j, bool ok, const char *result, void *ud);

/* action: TRANSPORT_RESTART or TRANSPORT_RELOAD. bus: BUS_SYSTEM or BUS_USER
 * (the user manager is reached on $XDG_RUNTIME_DIR/systemd/private when it is
 * there, as systemctl --user does, else on the session bus). done is called
 * once from the loop, never from inside transport_start. */
int transport_start(sd_event *e, enum cfg_bus bus, const char *unit,
		    enum cfg_transport_action action, uint64_t timeout_usec, transport_done_fn done,
		    void *ud, struct transport_job **ret);
/* Called when systemd accepted the job (it runs even if we die now), before
 * its result; path: the job's object path. Set right after transport_start. */
typedef void (*transport_queued_fn)(struct transport_job *j, const char *path, void *ud);
void transport_job_on_queued(struct transport_job *j, transport_queued_fn queued);

/* What tells whether a unit was (re)started since an earlier look: a start
 * gives it a new InvocationID; a reload does not. */
struct transport_unit_info {
	char invocation_id[33]; /* hex; "" when the unit has none */
	char active_state[32];  /* "active", "activating", "failed", ... */
	uint32_t job_id;        /* a job queued or running for the unit, or 0 */
};
/* info is NULL on failure, with why (a bus error, "no job result within the
 * timeout", ...). */
typedef void (*transport_query_fn)(struct transport_job *j, const struct transport_unit_info *info,
				   const char *why, void *ud);
/* Reads the unit's properties (Properties.GetAll) asynchronously; done is
 * called once from the loop. Freed with transport_job_free. */
int transport_query(sd_event *e, enum cfg_bus bus, const char *unit, uint64_t timeout_usec,
		    transport_query_fn done, void *ud, struct transport_job **ret);

/* Stops waiting (the job itself keeps running in systemd); done is not called. */
struct transport_job *transport_job_free(struct transport_job *j);
