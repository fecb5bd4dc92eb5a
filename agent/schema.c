/* Version 1 of the state database, and the migration from version 0 (the
 * first release: no user_version, hold, events or routing; step recovery
 * read prefixes of change_steps.detail). */
#include "config.h"

#include <errno.h>
#include <stdio.h>

#include "agent/db.h"
#include "agent/log.h"
#include "agent/schema.h"

/* Tables that version 0 had too: created as version 0 did, then altered, so
 * that a new file and a migrated one end up with the same columns. */
#define SCHEMA_V0_SQL                                                                  \
	"CREATE TABLE IF NOT EXISTS agent_state (\n"                                   \
	"  id          INTEGER PRIMARY KEY CHECK (id = 1),\n"                          \
	"  state       TEXT NOT NULL,               -- up | down | unknown\n"          \
	"  since_usec  INTEGER NOT NULL             -- CLOCK_REALTIME\n"               \
	");\n"                                                                         \
	"CREATE TABLE IF NOT EXISTS runs (\n"                                          \
	"  id          INTEGER PRIMARY KEY,\n"                                         \
	"  at_usec     INTEGER NOT NULL,\n"                                            \
	"  failed      INTEGER NOT NULL,\n"                                            \
	"  link_failed INTEGER NOT NULL,\n"                                            \
	"  n_link      INTEGER NOT NULL,\n"                                            \
	"  in_window   INTEGER NOT NULL DEFAULT 1   -- counts for the next decision\n" \
	");\n"                                                                         \
	"CREATE TABLE IF NOT EXISTS run_checks (\n"                                    \
	"  run_id      INTEGER NOT NULL,\n"                                            \
	"  seq         INTEGER NOT NULL,\n"                                            \
	"  name        TEXT NOT NULL,\n"                                               \
	"  type        TEXT NOT NULL,\n"                                               \
	"  target      TEXT NOT NULL,\n"                                               \
	"  role        TEXT NOT NULL,\n"                                               \
	"  passed      INTEGER NOT NULL,\n"                                            \
	"  outcome     TEXT NOT NULL,\n"                                               \
	"  reason      TEXT NOT NULL,\n"                                               \
	"  elapsed_ms  INTEGER NOT NULL,\n"                                            \
	"  PRIMARY KEY (run_id, seq)\n"                                                \
	");\n"                                                                         \
	"CREATE TABLE IF NOT EXISTS changes (\n"                                       \
	"  id          INTEGER PRIMARY KEY,\n"                                         \
	"  at          TEXT NOT NULL,               -- UTC, ISO 8601\n"                \
	"  at_usec     INTEGER NOT NULL,            -- CLOCK_REALTIME\n"               \
	"  new_state   TEXT NOT NULL,               -- up | down\n"                    \
	"  old_state   TEXT NOT NULL,               -- up | down | unknown\n"          \
	"  prev_since_usec INTEGER,                 -- when old_state began (NULL: unknown)\n" \
	"  no_backup   INTEGER NOT NULL DEFAULT 0,  -- DOWN and every backup check failed\n" \
	"  runs_text   TEXT NOT NULL DEFAULT ''     -- the deciding runs, check by check\n" \
	");\n"                                                                         \
	"CREATE TABLE IF NOT EXISTS change_steps (\n"                                  \
	"  change_id   INTEGER NOT NULL REFERENCES changes(id),\n"                     \
	"  step        TEXT NOT NULL,               -- connectors|transport|flush|hook|mail\n" \
	"  seq         INTEGER NOT NULL,            -- enum change_step: the order\n"  \
	"  status      TEXT NOT NULL DEFAULT 'pending', -- pending|done|failed|skipped\n" \
	"  detail      TEXT NOT NULL DEFAULT '',    -- the outcome, for people only\n" \
	"  attempts    INTEGER NOT NULL DEFAULT 0,\n"                                  \
	"  updated_at  TEXT,\n"                                                        \
	"  PRIMARY KEY (change_id, step)\n"                                            \
	");\n"                                                                         \
	"CREATE TABLE IF NOT EXISTS alerts (\n"                                        \
	"  id          INTEGER PRIMARY KEY,\n"                                         \
	"  change_id   INTEGER NOT NULL UNIQUE,     -- changes(id): one alert each\n"   \
	"  new_state   TEXT NOT NULL,\n"                                               \
	"  created_usec INTEGER NOT NULL,           -- CLOCK_REALTIME, queued at\n"    \
	"  next_attempt_usec INTEGER NOT NULL,\n"                                      \
	"  attempts    INTEGER NOT NULL DEFAULT 0,\n"                                  \
	"  last_error  TEXT,\n"                                                        \
	"  expired     INTEGER NOT NULL DEFAULT 0,  -- past the deadline, logged\n"     \
	"  sent_usec   INTEGER,                     -- NULL until accepted\n"          \
	"  reply       TEXT,                        -- the server's acceptance\n"      \
	"  subject     TEXT NOT NULL,               -- of a mail for this change alone\n" \
	"  body        TEXT NOT NULL                -- this change's part of the mail\n" \
	");\n"

/* What version 1 adds. */
#define SCHEMA_V1_ALTER_SQL                                                            \
	"ALTER TABLE agent_state ADD COLUMN hold_state TEXT;        -- up | down: pinned\n" \
	"ALTER TABLE agent_state ADD COLUMN hold_until_usec INTEGER; -- NULL: until release\n" \
	"ALTER TABLE agent_state ADD COLUMN hold_by TEXT;\n"                           \
	"ALTER TABLE agent_state ADD COLUMN daemon_pid INTEGER;     -- woken by SIGUSR1\n" \
	"ALTER TABLE agent_state ADD COLUMN heartbeat_usec INTEGER; -- last sign of life\n" \
	"ALTER TABLE changes ADD COLUMN reason TEXT NOT NULL DEFAULT 'runs'; -- runs | hold\n" \
	"ALTER TABLE change_steps ADD COLUMN launched INTEGER NOT NULL DEFAULT 0;\n"  \
	"  -- hook: 1 from just before the fork (at most once across crashes)\n"      \
	"ALTER TABLE change_steps ADD COLUMN pid INTEGER;\n"

#define SCHEMA_V1_NEW_SQL                                                              \
	"CREATE TABLE IF NOT EXISTS events (\n"                                        \
	"  id          INTEGER PRIMARY KEY,\n"                                         \
	"  at          TEXT NOT NULL,               -- UTC, ISO 8601\n"                \
	"  at_usec     INTEGER NOT NULL,\n"                                            \
	"  kind        TEXT NOT NULL,               -- enable|disable|hold|release|drift|gate|connector\n" \
	"  subject     TEXT NOT NULL DEFAULT '',    -- a connector, or a state\n"       \
	"  detail      TEXT NOT NULL DEFAULT '',\n"                                    \
	"  changed_by  TEXT NOT NULL                -- rerouterd | rerouterctl | rerouterd@NAME\n" \
	");\n"                                                                         \
	"CREATE TABLE IF NOT EXISTS routing (\n"                                       \
	"  id          INTEGER PRIMARY KEY CHECK (id = 1),\n"                          \
	"  restart_owed INTEGER NOT NULL DEFAULT 0, -- the transport db changed; no restart yet\n" \
	"  flush_owed  INTEGER NOT NULL DEFAULT 0,\n"                                  \
	"  change_id   INTEGER,                     -- the change it serves (NULL: a drift)\n" \
	"  issued_invocation TEXT,                  -- restart being issued: the unit's id before\n" \
	"  pending_step TEXT,                       -- connectors|transport|flush: retried\n" \
	"  pending_error TEXT,\n"                                                      \
	"  pending_since_usec INTEGER,\n"                                              \
	"  attempts    INTEGER NOT NULL DEFAULT 0\n"                                   \
	");\n"                                                                         \
	"INSERT OR IGNORE INTO routing (id) VALUES (1);\n"

/* Version 1's alerts: a change may have a note besides its alert (the
 * backup gate opening later, SPEC section 2), so change_id alone is no
 * longer unique. SQLite cannot drop a UNIQUE constraint in place: the table
 * is rebuilt (new table, copy, drop, rename), inside the migration's
 * transaction; nothing else refers to it. A new file goes the same way, so
 * both end up with the same table. */
#define SCHEMA_V1_ALERTS_SQL                                                           \
	"CREATE TABLE alerts_v1 (\n"                                                  \
	"  id          INTEGER PRIMARY KEY,\n"                                         \
	"  change_id   INTEGER NOT NULL,            -- changes(id)\n"                  \
	"  kind        TEXT NOT NULL DEFAULT 'change', -- change | note (gate opened later)\n" \
	"  new_state   TEXT NOT NULL,\n"                                               \
	"  created_usec INTEGER NOT NULL,           -- CLOCK_REALTIME, queued at\n"    \
	"  next_attempt_usec INTEGER NOT NULL,\n"                                      \
	"  attempts    INTEGER NOT NULL DEFAULT 0,\n"                                  \
	"  last_error  TEXT,\n"                                                        \
	"  expired     INTEGER NOT NULL DEFAULT 0,  -- past the deadline, logged\n"     \
	"  sent_usec   INTEGER,                     -- NULL until accepted\n"          \
	"  reply       TEXT,                        -- the server's acceptance\n"      \
	"  subject     TEXT NOT NULL,               -- of a mail for this row alone\n" \
	"  body        TEXT NOT NULL,               -- this row's part of the mail\n"  \
	"  UNIQUE (change_id, kind)                 -- one of each per change\n"       \
	");\n"                                                                         \
	"INSERT INTO alerts_v1 (id, change_id, new_state, created_usec, next_attempt_usec, attempts,\n" \
	"  last_error, expired, sent_usec, reply, subject, body)\n"                   \
	"  SELECT id, change_id, new_state, created_usec, next_attempt_usec, attempts,\n" \
	"  last_error, expired, sent_usec, reply, subject, body FROM alerts;\n"       \
	"DROP TABLE alerts;\n"                                                         \
	"ALTER TABLE alerts_v1 RENAME TO alerts;\n"

/* Version 0 stored DOWN at the first start without any change: that state
 * was an assumption, not a decision. */
#define SCHEMA_V1_MIGRATE_SQL                                                          \
	"UPDATE agent_state SET state = 'unknown' WHERE NOT EXISTS (SELECT 1 FROM changes);\n" \
	"UPDATE change_steps SET launched = 1 WHERE step = 'hook' AND "                \
	"(detail = 'starting' OR detail LIKE 'started (pid %');\n"

static int version_of(sqlite3 *db, const char *path, int *ret)
{
	int r = db_user_version(db, ret);

	if (r < 0)
		log_errx("%s: cannot read the schema version: %s", path, sqlite3_errmsg(db));
	else if (*ret > STATE_SCHEMA_VERSION) {
		log_errx("%s: schema version %d is newer than this rerouter's (%d): refusing to use it",
			 path, *ret, STATE_SCHEMA_VERSION);
		r = -EPROTO;
	}
	return r;
}

static int has_tables(sqlite3 *db, bool *ret)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE name = 'agent_state'", -1,
				    &st, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	*ret = rc == SQLITE_ROW;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_errno(rc);
}

int schema_state_prepare(sqlite3 *db, const char *path)
{
	bool old;
	int v, r;

	if ((r = version_of(db, path, &v)) < 0 || (r = has_tables(db, &old)) < 0)
		return r;
	if (v == STATE_SCHEMA_VERSION)
		return 0;
	/* v == 0: a new file, or one of the first release. */
	if (old && (r = db_backup_copy(db, path, v)) < 0)
		return r;
	if ((r = db_exec(db, path, "BEGIN IMMEDIATE;")) < 0)
		return r;
	if ((r = db_exec(db, path, SCHEMA_V0_SQL)) < 0 || (r = db_exec(db, path, SCHEMA_V1_ALTER_SQL)) < 0 ||
	    (r = db_exec(db, path, SCHEMA_V1_NEW_SQL)) < 0 || (r = db_exec(db, path, SCHEMA_V1_ALERTS_SQL)) < 0 ||
	    (old && (r = db_exec(db, path, SCHEMA_V1_MIGRATE_SQL)) < 0) ||
	    (r = db_exec(db, path, "PRAGMA user_version = 1;")) < 0 ||
	    (r = db_exec(db, path, "COMMIT;")) < 0) {
		sqlite3_exec(db, "ROLLBACK;", NULL, NULL, NULL);
		return r;
	}
	if (old)
		log_notice("%s: state database migrated from schema version %d to %d", path, v,
			   STATE_SCHEMA_VERSION);
	return 0;
}

int schema_state_check(sqlite3 *db, const char *path)
{
	int v, r = version_of(db, path, &v);

	if (r < 0)
		return r;
	return v == STATE_SCHEMA_VERSION ? 0 : -ESTALE;
}
