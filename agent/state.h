/* The state database (SQLite, WAL; schema in agent/schema.c): the current
 * state and since when, a hold, the runs of the current window with each
 * check's outcome, the last runs, the history of changes with their steps
 * (agent/change.h) and the events. Every statement binds its parameters. */
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
	enum link_state hold;      /* the held state, or LINK_UNKNOWN: no hold */
	uint64_t hold_until_usec;  /* CLOCK_REALTIME; 0: until release */
	int64_t last_change_id;    /* the newest change, 0: none */
	bool last_change_no_backup; /* it was DOWN with every backup check failed */
	int daemon_pid;            /* recorded at start, 0: none */
	uint64_t heartbeat_usec;   /* the daemon's last sign of life */
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
	const char *reason;        /* "runs" (NULL) or "hold" */
	const char *runs_text;     /* the deciding runs; NULL: read from the stored window */
};

/* In one transaction: store the run, keep only the last `window` runs in the
 * window, and when change is not NULL record the change with the deciding
 * runs as text and one pending row per step, store the new state and clear
 * the window. *ret_change_id (may be NULL) gets the change's id. */
int state_commit_run(sqlite3 *db, const struct state_run *run, size_t window,
		     const struct state_change *change, int64_t *ret_change_id);

/* A change without a run (a hold, or one decided while the database could
 * not be written), with its pending steps; the new state; the window cleared. */
int state_record_change(sqlite3 *db, const struct state_change *change, int64_t *ret_change_id);

/* A row of the events table (manual toggles, holds, drift corrections). */
int state_add_event(sqlite3 *db, const char *kind, const char *subject, const char *detail,
		    const char *by);
/* hold LINK_UNKNOWN releases; until_usec 0: until release. -ENOENT: no state row. */
int state_set_hold(sqlite3 *db, enum link_state hold, uint64_t until_usec, const char *by);
/* The daemon's PID (for rerouterctl's SIGUSR1) and a heartbeat. */
int state_set_daemon(sqlite3 *db, int pid, uint64_t heartbeat_usec);
/* A sign of life without a run (through maintenance windows). */
int state_heartbeat(sqlite3 *db, uint64_t at_usec);

/* The window's runs, check by check, as text (malloc'd). */
int state_window_text(sqlite3 *db, char **ret);

