/* Actions (SPEC section 4): the routes kept right for the current state by
 * the reconciler (actions/reconcile.h: connectors, transport restart, flush),
 * and the events of each recorded change (hook, alert), marked in the state
 * database as they are done (agent/change.h). */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

#include "actions/reconcile.h"
#include "config/config.h"

struct actions;
struct alerts;

/* state_db: the agent's open state database (single-threaded use on the loop).
 * alerts may be NULL (no [mail]). changed_by ("rerouterd@NAME" for an
 * instance) stamps the connectors and events written; it must outlive a. */
int actions_new(sd_event *e, sqlite3 *state_db, const struct cfg *cfg, struct alerts *alerts,
		const char *changed_by, struct actions **ret);
/* A reload swapped the configuration: the old cfg may be freed after this
 * returns. The routes are compared again. */
void actions_set_config(struct actions *a, const struct cfg *cfg);
/* The routes to keep (reconcile_set_target). */
void actions_set_target(struct actions *a, enum route_target t, int64_t change_id);
/* Compare the routes now (after every run, at start) and carry out the
 * pending events; never blocks. */
void actions_reconcile(struct actions *a);
/* Carry out the pending hook and mail of every recorded change, oldest first. */
void actions_kick(struct actions *a);
/* The backup gate of change_id (a change to DOWN with no backup path)
 * opened: its note is queued once the routes settle on [on_down], or at
 * [mail] max_wait with what is still retried. 0: a new change, no note. */
void actions_note_gate(struct actions *a, int64_t change_id);
/* What routing step is being retried and why, or NULL. */
const char *actions_pending(const struct actions *a);
/* 1 while steps are running, owed or waiting for a retry. */
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
/* disable refuses the last enabled connector of '*' unless force. */
int actions_ctl_toggle(const struct cfg *cfg, const char *name, int enabled, bool force);
/* true (after saying why on stderr) when the section the daemon enforces now
 * names the connector: a toggle would be undone at the next run. */
bool actions_ctl_managed(const struct cfg *cfg, const char *name);
/* rerouterctl connector add|remove|set ARGS (actions/connector_ctl.c). */
int actions_ctl_connector(const struct cfg *cfg, int nargs, char **args);
int actions_ctl_connectors_json(const struct cfg *cfg);
