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
/* Stops waiting (the job itself keeps running in systemd); done is not called. */
struct transport_job *transport_job_free(struct transport_job *j);
