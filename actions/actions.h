/* Actions on a change of state (SPEC section 4): connectors, transport
 * restart and flush, hook, alert. They read the pending steps that the agent
 * recorded (agent/change.h) and mark each one when it is done. */
#pragma once

#include <sqlite3.h>
#include <systemd/sd-event.h>

#include "config/config.h"

struct actions;
struct alerts;

/* state_db: the agent's open state database (single-threaded use on the loop).
 * alerts may be NULL (no [mail]). */
int actions_new(sd_event *e, sqlite3 *state_db, const struct cfg *cfg, struct alerts *alerts,
		struct actions **ret);
/* A reload swapped the configuration: the old cfg may be freed after this returns. */
void actions_set_config(struct actions *a, const struct cfg *cfg);
/* Carry out every pending step of every recorded change, oldest first. Called
 * after the agent recorded a change and once at start-up; never blocks. */
void actions_kick(struct actions *a);
/* 1 while steps are running or waiting for a retry. */
int actions_busy(const struct actions *a);
struct actions *actions_free(struct actions *a);

/* Connectors named in [on_down]/[on_up] but missing from the transport
 * database: each is reported through report(name). Returns how many, or a
 * negative errno when the database cannot be read. */
int actions_check_connectors(const struct cfg *cfg, void (*report)(const char *name, void *ud),
			     void *ud);

/* rerouterctl init | connectors | enable NAME | disable NAME: exit codes. */
int actions_ctl_init(const struct cfg *cfg);
int actions_ctl_connectors(const struct cfg *cfg);
int actions_ctl_toggle(const struct cfg *cfg, const char *name, int enabled);
