/* What monitoring reads from the state database (rerouterctl check and
 * status --json, the metrics file): one consistent snapshot, read in one
 * transaction, with the judgements check and the metrics share. */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent/state.h"
#include "config/config.h"

struct ops_snapshot {
	struct state_saved s;
	bool gate_closed;            /* DOWN, no backup path answered, not reopened since */
	bool routing_pending;        /* a routing step is being retried */
	char pending_step[32];
	char pending_error[256];
	uint64_t pending_since_usec;
	int pending_attempts;
	int steps_pending;           /* change_steps still pending (hook, mail...) */
	int alerts_queued;           /* alerts not yet accepted by the mail server */
	int64_t changes_up, changes_down;
	bool have_run;               /* the newest run */
	int64_t run_id;
	uint64_t run_usec;
	bool run_failed;
	int run_link_failed, run_n_link;
};

/* Reads the snapshot (its own read transaction unless one is open). */
int ops_snapshot_read(sqlite3 *db, struct ops_snapshot *ret);
void ops_snapshot_clear(struct ops_snapshot *o);

/* Opens the state database for reading, also for a member of the daemon's
 * group who cannot write its directory (state_open readonly, then an
 * immutable open when no -wal holds anything); prints why not to stderr. */
int ops_open_ro(const struct cfg *cfg, sqlite3 **db);

/* rerouterctl check: the monitoring-plugin exit code (0..3). */
int agent_ctl_check(const struct cfg *cfg);
