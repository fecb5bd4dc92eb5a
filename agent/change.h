/* The contract between the agent, which decides a change of state, and the
 * actions, which carry it out (SPEC section 4). The agent records the change
 * and all its steps as 'pending' in the state database in the same
 * transaction that records the new state; the actions then do each step and
 * mark it, so that after a crash the next start finishes exactly what was left. */
#pragma once

#include <stdint.h>

enum link_state { LINK_DOWN = 0, LINK_UP = 1 };

static inline const char *link_state_str(enum link_state s)
{
	return s == LINK_UP ? "up" : "down";
}

/* Steps, in the order they are carried out; the names are stored in the database. */
enum change_step { STEP_CONNECTORS, STEP_TRANSPORT, STEP_FLUSH, STEP_HOOK, STEP_MAIL, _STEP_MAX };
/* Step status words: "pending", "done", "failed" (given up, reported), "skipped". */

static inline const char *change_step_str(enum change_step s)
{
	static const char *const n[] = { "connectors", "transport", "flush", "hook", "mail" };
	return (unsigned)s < _STEP_MAX ? n[s] : "?";
}

/* Created by state_open() (agent/state.c) in the state database. */
#define CHANGE_SCHEMA_SQL                                                              \
	"CREATE TABLE IF NOT EXISTS changes (\n"                                       \
	"  id          INTEGER PRIMARY KEY,\n"                                         \
	"  at          TEXT NOT NULL,               -- UTC, ISO 8601\n"                \
	"  at_usec     INTEGER NOT NULL,            -- CLOCK_REALTIME\n"               \
	"  new_state   TEXT NOT NULL,               -- up | down\n"                    \
	"  old_state   TEXT NOT NULL,\n"                                               \
	"  prev_since_usec INTEGER,                 -- when old_state began (NULL: unknown)\n" \
	"  no_backup   INTEGER NOT NULL DEFAULT 0,  -- DOWN and every backup check failed\n" \
	"  runs_text   TEXT NOT NULL DEFAULT ''     -- the deciding runs, check by check\n" \
	");\n"                                                                         \
	"CREATE TABLE IF NOT EXISTS change_steps (\n"                                  \
	"  change_id   INTEGER NOT NULL REFERENCES changes(id),\n"                     \
	"  step        TEXT NOT NULL,               -- connectors|transport|flush|hook|mail\n" \
	"  seq         INTEGER NOT NULL,            -- enum change_step: the order\n"  \
	"  status      TEXT NOT NULL DEFAULT 'pending',\n"                             \
	"  detail      TEXT NOT NULL DEFAULT '',    -- the outcome, for status and the alert\n" \
	"  attempts    INTEGER NOT NULL DEFAULT 0,\n"                                  \
	"  updated_at  TEXT,\n"                                                        \
	"  PRIMARY KEY (change_id, step)\n"                                            \
	");\n"
