/* The state database (SQLite, WAL): the current state and since when, the runs
 * of the current window with each check's outcome, the last runs, and the
 * history of changes with their steps (agent/change.h). Every statement binds
 * its parameters. */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/change.h"
#include "probes/probe.h"

/* Runs kept besides those of the window, for rerouterctl status. */
#define STATE_KEEP_RUNS 20

/* Open (and with !readonly create the schema in) the database at path. */
int state_open(const char *path, bool readonly, sqlite3 **ret);
sqlite3 *state_close(sqlite3 *db);

struct state_saved {
	bool persisted;            /* a state was stored */
	enum link_state state;
	uint64_t since_usec;       /* CLOCK_REALTIME */
	bool *failed;              /* the window's runs, oldest first (malloc'd) */
	size_t n;
	uint64_t last_usec;        /* CLOCK_REALTIME start of the window's newest run; 0: none */
};
int state_load(sqlite3 *db, struct state_saved *ret);
void state_saved_clear(struct state_saved *s);

/* Store the state without a change (start-up with nothing persisted, or a
 * forced initial_state); clear_window forgets the window too. */
int state_set(sqlite3 *db, enum link_state s, uint64_t since_usec, bool clear_window);
/* Forget the window (after a maintenance window). */
int state_clear_window(sqlite3 *db);

/* After a reload, in one transaction: judge each run of the window again
 * from its stored check outcomes, counting only link checks whose names are
 * still link checks in checks[], against failed_checks. A run none of whose
 * link checks remains measured nothing any more: it leaves the window. */
int state_rejudge_window(sqlite3 *db, const struct cfg_check *checks, size_t n_checks,
			 unsigned failed_checks);

struct state_run {
	uint64_t at_usec;          /* CLOCK_REALTIME when it started */
	bool failed;
	unsigned link_failed, n_link;
	const struct probe_result *results;
	size_t n_results;
};

struct state_change {
	enum link_state new_state, old_state;
	uint64_t at_usec;
	uint64_t prev_since_usec;  /* 0: unknown */
	bool no_backup;
};

/* In one transaction: store the run, keep only the last `window` runs in the
 * window, and when change is not NULL record the change with the deciding
 * runs as text and one pending row per step, store the new state and clear
 * the window. *ret_change_id (may be NULL) gets the change's id. */
int state_commit_run(sqlite3 *db, const struct state_run *run, size_t window,
		     const struct state_change *change, int64_t *ret_change_id);

/* The window's runs, check by check, as text (malloc'd). */
int state_window_text(sqlite3 *db, char **ret);

