/* The state database: round trip, a change and its steps recorded in one
 * transaction (all or nothing), the window kept to its size, text of runs. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/db.h"
#include "agent/log.h"
#include "agent/schema.h"
#include "agent/state.h"
#include "actions/connectors.h"
#include "actions/reconcile.h"

static char path[64];
static sqlite3 *db;

static struct cfg_check checks[2] = {
	{ .name = (char *)"gw", .type = CHECK_TCP, .role = ROLE_LINK, .target = (char *)"127.0.2.1:20001" },
	{ .name = (char *)"relay", .type = CHECK_TCP, .role = ROLE_BACKUP, .target = (char *)"127.0.2.2:20002" },
};

static void setup(void)
{
	strcpy(path, "/tmp/check_state_XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	unlink(path);
	log_setup("check_state", true, false);
	ck_assert_int_eq(state_open(path, false, &db), 0);
}

static void teardown(void)
{
	char p[80];
	db = state_close(db);
	unlink(path);
	snprintf(p, sizeof p, "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", path);
	unlink(p);
}

static int64_t count(const char *sql)
{
	sqlite3_stmt *st;
	int64_t n = -1;
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void add_run(uint64_t at, bool failed, const struct state_change *ch, int expect)
{
	struct probe_result r[2] = {
		{ .check = &checks[0], .outcome = failed ? PROBE_REFUSED : PROBE_PASSED, .elapsed_ms = 3 },
		{ .check = &checks[1], .outcome = PROBE_TIMEOUT, .elapsed_ms = 200 },
	};
	strcpy(r[0].reason, failed ? "connection refused" : "");
	strcpy(r[1].reason, "no answer in 200 ms");
	struct state_run run = { .at_usec = at, .failed = failed, .link_failed = failed, .n_link = 1,
				 .results = r, .n_results = 2 };
	ck_assert_int_eq(state_commit_run(db, &run, 3, ch, NULL), expect);
}

START_TEST(round_trip)
{
	struct state_saved s;

	ck_assert_int_eq(state_load(db, &s), 0);
	ck_assert(!s.persisted);
	ck_assert_uint_eq(s.n, 0);
	ck_assert_int_eq(state_set(db, LINK_UP, 1234567, true), 0);
	add_run(1000, true, NULL, 0);
	add_run(2000, false, NULL, 0);
	add_run(3000, true, NULL, 0);
	add_run(4000, true, NULL, 0); /* the window keeps 3: F T T */
	db = state_close(db);
	ck_assert_int_eq(state_open(path, true, &db), 0); /* read-only, like rerouterctl */
	ck_assert_int_eq(state_load(db, &s), 0);
	ck_assert(s.persisted);
	ck_assert_int_eq(s.state, LINK_UP);
	ck_assert_uint_eq(s.since_usec, 1234567);
	ck_assert_uint_eq(s.n, 3);
	ck_assert(!s.failed[0] && s.failed[1] && s.failed[2]);
	state_saved_clear(&s);
	ck_assert_int_eq(count("SELECT count(*) FROM run_checks"), 8);
	db = state_close(db);
	ck_assert_int_eq(state_open(path, false, &db), 0);
	ck_assert_int_eq(state_clear_window(db), 0);
	ck_assert_int_eq(state_load(db, &s), 0);
	ck_assert_uint_eq(s.n, 0);
	state_saved_clear(&s);
	/* Old runs are pruned, the last STATE_KEEP_RUNS stay for status. */
	for (int i = 0; i < 3 * STATE_KEEP_RUNS; i++)
		add_run(5000 + i, false, NULL, 0);
	ck_assert_int_eq(count("SELECT count(*) FROM runs"), STATE_KEEP_RUNS);
	ck_assert_int_eq(count("SELECT count(*) FROM run_checks"), 2 * STATE_KEEP_RUNS);
}
END_TEST

START_TEST(change_and_steps)
{
	struct state_saved s;
	struct state_change ch = { .new_state = LINK_DOWN, .old_state = LINK_UP, .at_usec = 9000000,
				   .prev_since_usec = 1000000, .no_backup = true };
	int64_t id = 0;

	ck_assert_int_eq(state_set(db, LINK_UP, 1000000, true), 0);
	add_run(7000000, true, NULL, 0);
	struct probe_result r[2] = {
		{ .check = &checks[0], .outcome = PROBE_REFUSED, .elapsed_ms = 3, .reason = "connection refused" },
		{ .check = &checks[1], .outcome = PROBE_TIMEOUT, .elapsed_ms = 200, .reason = "timeout" },
	};
	struct state_run run = { .at_usec = 9000000, .failed = true, .link_failed = 1, .n_link = 1,
				 .results = r, .n_results = 2 };
	ck_assert_int_eq(state_commit_run(db, &run, 2, &ch, &id), 0);
	ck_assert_int_eq(id, 1);
	ck_assert_int_eq(count("SELECT count(*) FROM change_steps WHERE change_id = 1 AND status = 'pending'"),
			 _STEP_MAX);
	ck_assert_int_eq(count("SELECT count(*) FROM change_steps WHERE change_id = 1 AND "
			       "((step = 'connectors' AND seq = 0) OR (step = 'transport' AND seq = 1) OR "
			       "(step = 'flush' AND seq = 2) OR (step = 'hook' AND seq = 3) OR "
			       "(step = 'mail' AND seq = 4))"),
			 5);
	ck_assert_int_eq(count("SELECT no_backup FROM changes WHERE id = 1"), 1);
	ck_assert_int_eq(count("SELECT prev_since_usec FROM changes WHERE id = 1"), 1000000);
	ck_assert_int_eq(count("SELECT count(*) FROM changes WHERE id = 1 AND new_state = 'down' AND "
			       "old_state = 'up' AND at = '1970-01-01T00:00:09Z'"),
			 1);
	/* The deciding runs, check by check. */
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT runs_text FROM changes WHERE id = 1", -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	const char *text = (const char *)sqlite3_column_text(st, 0);
	ck_assert_ptr_nonnull(strstr(text, "Run 1 at "));
	ck_assert_ptr_nonnull(strstr(text, "Run 2 at "));
	ck_assert_ptr_nonnull(strstr(text, "gw "));
	ck_assert_ptr_nonnull(strstr(text, "127.0.2.1:20001"));
	ck_assert_ptr_nonnull(strstr(text, "fail  connection refused  3 ms"));
	ck_assert_ptr_nonnull(strstr(text, "relay"));
	ck_assert_ptr_nonnull(strstr(text, "(backup)"));
	sqlite3_finalize(st);
	ck_assert_int_eq(state_load(db, &s), 0);
	ck_assert_int_eq(s.state, LINK_DOWN);
	ck_assert_uint_eq(s.since_usec, 9000000);
	ck_assert_uint_eq(s.n, 0); /* cleared on the change */
	state_saved_clear(&s);
}
END_TEST

START_TEST(change_is_atomic)
{
	struct state_saved s;
	struct state_change ch = { .new_state = LINK_DOWN, .old_state = LINK_UP, .at_usec = 9000000 };

	ck_assert_int_eq(state_set(db, LINK_UP, 1000000, true), 0);
	add_run(8000000, true, NULL, 0);
	/* Make the fourth step's insert fail half way through the transaction. */
	ck_assert_int_eq(sqlite3_exec(db,
				      "CREATE TRIGGER boom BEFORE INSERT ON change_steps "
				      "WHEN NEW.step = 'hook' BEGIN SELECT RAISE(ABORT, 'boom'); END;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	add_run(9000000, true, &ch, -EINVAL); /* RAISE(ABORT): a constraint */
	/* Nothing of it is left: no run, no change, no step, same state and window. */
	ck_assert_int_eq(count("SELECT count(*) FROM runs"), 1);
	ck_assert_int_eq(count("SELECT count(*) FROM changes"), 0);
	ck_assert_int_eq(count("SELECT count(*) FROM change_steps"), 0);
	ck_assert_int_eq(state_load(db, &s), 0);
	ck_assert_int_eq(s.state, LINK_UP);
	ck_assert_uint_eq(s.n, 1);
	state_saved_clear(&s);
	/* And the connection is usable again afterwards. */
	ck_assert_int_eq(sqlite3_exec(db, "DROP TRIGGER boom", NULL, NULL, NULL), SQLITE_OK);
	add_run(9000000, true, &ch, 0);
	ck_assert_int_eq(count("SELECT count(*) FROM change_steps"), _STEP_MAX);
}
END_TEST

/* A run of the old configuration with these outcomes (1 = passed). */
static void store_run(uint64_t at, const struct cfg_check *cs, const int *passed, size_t n, unsigned failed_checks)
{
	struct probe_result r[4] = { 0 };
	unsigned link_failed = 0, n_link = 0;

	for (size_t i = 0; i < n; i++) {
		r[i].check = &cs[i];
		/* passed[i]: 1 passed, 0 failed, 2 cancelled (the run's verdict was certain). */
		r[i].outcome = passed[i] == 2 ? PROBE_CANCELLED : passed[i] ? PROBE_PASSED : PROBE_TIMEOUT;
		n_link += cs[i].role == ROLE_LINK;
		link_failed += cs[i].role == ROLE_LINK && !passed[i];
	}
	struct state_run run = { .at_usec = at, .failed = link_failed >= failed_checks, .link_failed = link_failed,
				 .n_link = n_link, .results = r, .n_results = n };
	ck_assert_int_eq(state_commit_run(db, &run, 8, NULL, NULL), 0);
}

START_TEST(rejudge_after_reload)
{
	/* Old: a, b, c link checks, relay backup, failed_checks = 2. */
	struct cfg_check old[4] = {
		{ .name = (char *)"a", .type = CHECK_TCP, .role = ROLE_LINK, .target = (char *)"127.0.2.1:20001" },
		{ .name = (char *)"b", .type = CHECK_TCP, .role = ROLE_LINK, .target = (char *)"127.0.2.2:20001" },
		{ .name = (char *)"c", .type = CHECK_TCP, .role = ROLE_LINK, .target = (char *)"127.0.2.3:20001" },
		{ .name = (char *)"relay", .type = CHECK_TCP, .role = ROLE_BACKUP, .target = (char *)"127.0.2.4:20001" },
	};
	/* New: a kept, b became a backup check, c renamed c2, relay gone, failed_checks = 1. */
	struct cfg_check now[3] = {
		{ .name = (char *)"a", .type = CHECK_TCP, .role = ROLE_LINK, .target = (char *)"127.0.2.1:20001" },
		{ .name = (char *)"b", .type = CHECK_TCP, .role = ROLE_BACKUP, .target = (char *)"127.0.2.2:20001" },
		{ .name = (char *)"c2", .type = CHECK_TCP, .role = ROLE_LINK, .target = (char *)"127.0.2.3:20001" },
	};
	struct state_saved s;

	ck_assert_int_eq(state_set(db, LINK_UP, 1000000, true), 0);
	/* A run of a config before a existed: after the reload it measured
	 * nothing that is still a link check. */
	store_run(1000, &old[1], (const int[]){ 0, 0, 1 }, 3, 2);     /* b c relay: FAILED */
	store_run(2000, old, (const int[]){ 1, 0, 0, 1 }, 4, 2);      /* FAILED -> a passed: PASSED */
	store_run(3000, old, (const int[]){ 0, 1, 1, 0 }, 4, 2);      /* PASSED -> a failed: FAILED */
	store_run(4000, old, (const int[]){ 0, 0, 1, 1 }, 4, 2);      /* FAILED -> FAILED */
	store_run(5000, old, (const int[]){ 1, 1, 1, 0 }, 4, 2);      /* PASSED -> PASSED */
	ck_assert_int_eq(state_load(db, &s), 0);
	ck_assert_uint_eq(s.n, 5);
	ck_assert(s.failed[0] && s.failed[1] && !s.failed[2] && s.failed[3] && !s.failed[4]);
	ck_assert_uint_eq(s.last_usec, 5000);
	state_saved_clear(&s);

	ck_assert_int_eq(state_rejudge_window(db, now, 3, 1), 0);
	ck_assert_int_eq(state_load(db, &s), 0);
	ck_assert_uint_eq(s.n, 4);
	ck_assert(!s.failed[0] && s.failed[1] && s.failed[2] && !s.failed[3]);
	ck_assert_int_eq(s.state, LINK_UP);
	state_saved_clear(&s);
	/* The counts shown by status follow the new verdicts. */
	ck_assert_int_eq(count("SELECT count(*) FROM runs WHERE in_window = 1 AND n_link = 1"), 4);
	ck_assert_int_eq(count("SELECT sum(link_failed) FROM runs WHERE in_window = 1"), 2);
	ck_assert_int_eq(count("SELECT count(*) FROM runs WHERE at_usec = 1000 AND in_window = 0"), 1);
	/* The stored outcomes stay as measured. */
	ck_assert_int_eq(count("SELECT count(*) FROM run_checks"), 19);

	/* Same checks, failed_checks back to 2: a alone never fails a run. */
	ck_assert_int_eq(state_rejudge_window(db, now, 3, 2), 0);
	ck_assert_int_eq(state_load(db, &s), 0);
	ck_assert_uint_eq(s.n, 4);
	for (size_t i = 0; i < s.n; i++)
		ck_assert(!s.failed[i]);
	state_saved_clear(&s);
	/* An empty window is fine. */
	ck_assert_int_eq(state_clear_window(db), 0);
	ck_assert_int_eq(state_rejudge_window(db, now, 3, 1), 0);
	ck_assert_int_eq(state_load(db, &s), 0);
	ck_assert_uint_eq(s.n, 0);
	ck_assert_uint_eq(s.last_usec, 0);
	state_saved_clear(&s);
}
END_TEST

/* A cancelled check neither passed nor failed: judged again, it still does
 * not fail a run; status and the alert show it as cancelled. */
START_TEST(rejudge_cancelled)
{
	struct cfg_check cs[3] = {
		{ .name = (char *)"a", .type = CHECK_TCP, .role = ROLE_LINK, .target = (char *)"127.0.2.1:20001" },
		{ .name = (char *)"b", .type = CHECK_TCP, .role = ROLE_LINK, .target = (char *)"127.0.2.2:20001" },
		{ .name = (char *)"c", .type = CHECK_TCP, .role = ROLE_LINK, .target = (char *)"127.0.2.3:20001" },
	};
	struct state_saved s;
	char *text = NULL;

	ck_assert_int_eq(state_set(db, LINK_UP, 1000000, true), 0);
	store_run(1000, cs, (const int[]){ 0, 0, 2 }, 3, 2);  /* FAILED, c cancelled */
	store_run(2000, cs, (const int[]){ 1, 1, 2 }, 3, 2);  /* PASSED, c cancelled */
	ck_assert_int_eq(state_rejudge_window(db, cs, 3, 1), 0);
	ck_assert_int_eq(state_load(db, &s), 0);
	ck_assert_uint_eq(s.n, 2);
	ck_assert(s.failed[0] && !s.failed[1]);
	state_saved_clear(&s);
	ck_assert_int_eq(count("SELECT sum(link_failed) FROM runs WHERE in_window = 1"), 2);
	ck_assert_int_eq(state_window_text(db, &text), 0);
	ck_assert_ptr_nonnull(strstr(text, "cancelled"));
	free(text);
}
END_TEST

START_TEST(reopen_keeps_schema)
{
	/* Opening twice (daemon restart, rerouterctl init) is harmless. */
	db = state_close(db);
	ck_assert_int_eq(state_open(path, false, &db), 0);
	ck_assert_int_eq(count("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
			       "('agent_state', 'runs', 'run_checks', 'changes', 'change_steps')"),
			 5);
	sqlite3_stmt *st;
	sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
}
END_TEST

/* A database of the first release (tests/fixtures, schema version 0), made
 * at path (unlinked first) from its SQL dump; extra SQL runs after it. */
static void load_fixture(const char *file, const char *to, const char *extra)
{
	char fpath[512];
	sqlite3 *f;
	FILE *in;
	char *sql;
	long size;

	/* The source tree's, wherever the test runs from (make check, valgrind). */
	snprintf(fpath, sizeof fpath, "%s/tests/fixtures/%s", RR_TOP_SRCDIR, file);
	in = fopen(fpath, "r");
	ck_assert_msg(in != NULL, "cannot open fixture %s", fpath);
	fseek(in, 0, SEEK_END);
	size = ftell(in);
	rewind(in);
	sql = calloc(1, (size_t)size + 1);
	ck_assert_int_eq(fread(sql, 1, (size_t)size, in), (size_t)size);
	fclose(in);
	unlink(to);
	ck_assert_int_eq(sqlite3_open(to, &f), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(f, sql, NULL, NULL, NULL), SQLITE_OK);
	if (extra)
		ck_assert_int_eq(sqlite3_exec(f, extra, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(f);
	free(sql);
}

static int64_t count_in(sqlite3 *d, const char *sql)
{
	sqlite3_stmt *st;
	int64_t n = -1;
	ck_assert_int_eq(sqlite3_prepare_v2(d, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

START_TEST(migrate_v0_keeps_history)
{
	char p[96], bak[112];
	struct state_saved s;
	sqlite3 *m;
	int v;

	snprintf(p, sizeof p, "%s.v0", path);
	snprintf(bak, sizeof bak, "%s.v0.bak", p);
	load_fixture("v0-state.sql", p, NULL);
	ck_assert_int_eq(state_open(p, true, &m), -ESTALE); /* read-only: not migrated */
	ck_assert_int_eq(state_open(p, false, &m), 0);
	ck_assert_int_eq(db_user_version(m, &v), 0);
	ck_assert_int_eq(v, STATE_SCHEMA_VERSION);
	/* History and alerts kept, the state backed by a change kept. */
	ck_assert_int_eq(count_in(m, "SELECT COUNT(*) FROM changes"), 2);
	ck_assert_int_eq(count_in(m, "SELECT COUNT(*) FROM change_steps"), 10);
	ck_assert_int_eq(count_in(m, "SELECT COUNT(*) FROM alerts"), 2);
	/* The alerts rebuilt with their kind: the old rows are change alerts, and
	 * a change may now have a note besides. */
	ck_assert_int_eq(count_in(m, "SELECT COUNT(*) FROM alerts WHERE kind = 'change' AND id = change_id "
				     "AND subject LIKE '[rerouter] %'"), 2);
	ck_assert_int_eq(count_in(m, "SELECT COUNT(*) FROM alerts WHERE attempts = 1 AND last_error IS NOT NULL"), 1);
	ck_assert_int_eq(sqlite3_exec(m, "INSERT INTO alerts (change_id, kind, new_state, created_usec, "
				      "next_attempt_usec, subject, body) VALUES (2, 'note', 'down', 1, 1, 's', 'b')",
				      NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_ne(sqlite3_exec(m, "INSERT INTO alerts (change_id, kind, new_state, created_usec, "
				      "next_attempt_usec, subject, body) VALUES (2, 'note', 'down', 1, 1, 's', 'b')",
				      NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(count_in(m, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'alerts_v1'"), 0);
	ck_assert_int_eq(count_in(m, "SELECT COUNT(*) FROM events"), 0);
	ck_assert_int_eq(count_in(m, "SELECT COUNT(*) FROM routing"), 1);
	ck_assert_int_eq(state_load(m, &s), 0);
	ck_assert_int_eq(s.state, LINK_DOWN);
	ck_assert_int_eq(s.hold, LINK_UNKNOWN);
	ck_assert_int_eq(s.last_change_id, 2);
	state_saved_clear(&s);
	state_close(m);
	ck_assert_int_eq(access(bak, R_OK), 0); /* the backup copy, still version 0 */
	ck_assert_int_eq(sqlite3_open(bak, &m), SQLITE_OK);
	ck_assert_int_eq(db_user_version(m, &v), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(count_in(m, "SELECT COUNT(*) FROM changes"), 2);
	sqlite3_close(m);
	/* Opening again migrates nothing more. */
	ck_assert_int_eq(state_open(p, false, &m), 0);
	ck_assert_int_eq(count_in(m, "SELECT COUNT(*) FROM changes"), 2);
	state_close(m);
	unlink(p);
	unlink(bak);
}
END_TEST

START_TEST(migrate_v0_unbacked_state_is_unknown)
{
	char p[96], bak[112];
	struct state_saved s;
	sqlite3 *m;

	/* The first release stored DOWN at its first start, no change behind it. */
	snprintf(p, sizeof p, "%s.v0u", path);
	snprintf(bak, sizeof bak, "%s.v0.bak", p);
	load_fixture("v0-state.sql", p, "DELETE FROM alerts; DELETE FROM change_steps; DELETE FROM changes;");
	ck_assert_int_eq(state_open(p, false, &m), 0);
	ck_assert_int_eq(state_load(m, &s), 0);
	ck_assert(s.persisted);
	ck_assert_int_eq(s.state, LINK_UNKNOWN);
	state_saved_clear(&s);
	state_close(m);
	unlink(p);
	unlink(bak);
}
END_TEST

START_TEST(newer_schema_refused)
{
	sqlite3 *m;

	ck_assert_int_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(state_open(path, false, &m), -EPROTO);
	ck_assert_int_eq(state_open(path, true, &m), -EPROTO);
}
END_TEST

START_TEST(transport_v0_migrated)
{
	char p[96], bak[112];
	sqlite3 *t;
	int v;

	snprintf(p, sizeof p, "%s.t0", path);
	snprintf(bak, sizeof bak, "%s.v0.bak", p);
	load_fixture("v0-transport.sql", p, NULL);
	ck_assert_int_eq(conn_open(p, 0, 100, &t), 0);
	ck_assert_int_eq(conn_prepare_writer(t, p), -ESTALE);
	ck_assert_int_eq(conn_init(t, p), 0);
	ck_assert_int_eq(conn_prepare_writer(t, p), 0);
	ck_assert_int_eq(db_user_version(t, &v), 0);
	ck_assert_int_eq(v, CONN_SCHEMA_VERSION);
	/* The connectors kept, with the default transport, and the view uses it. */
	ck_assert_int_eq(count_in(t, "SELECT COUNT(*) FROM send_connectors WHERE transport = 'smtp'"), 2);
	ck_assert_int_eq(count_in(t, "SELECT COUNT(*) FROM transport_routes "
				     "WHERE nexthop = 'smtp:[127.0.9.3]:2525'"), 1);
	ck_assert_int_eq(sqlite3_exec(t, "UPDATE send_connectors SET transport = 'smtp-siteb' "
				      "WHERE name = 'site-b'", NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(count_in(t, "SELECT COUNT(*) FROM transport_routes "
				     "WHERE nexthop = 'smtp-siteb:[127.0.9.3]:2525'"), 1);
	sqlite3_close(t);
	ck_assert_int_eq(access(bak, R_OK), 0);
	unlink(p);
	unlink(bak);
	snprintf(bak, sizeof bak, "%s-journal", p);
	unlink(bak);
}
END_TEST

START_TEST(hold_and_events)
{
	struct state_saved s;

	ck_assert_int_eq(state_set_hold(db, LINK_DOWN, 0, "rerouterctl"), -ENOENT); /* no state yet */
	ck_assert_int_eq(state_set(db, LINK_UP, 1000000, true), 0);
	ck_assert_int_eq(state_set_hold(db, LINK_DOWN, 5000000, "rerouterctl"), 0);
	ck_assert_int_eq(state_add_event(db, "hold", "down", "for 5s", "rerouterctl"), 0);
	ck_assert_int_eq(state_set_daemon(db, 4242, 7000000), 0);
	ck_assert_int_eq(state_load(db, &s), 0);
	ck_assert_int_eq(s.hold, LINK_DOWN);
	ck_assert_uint_eq(s.hold_until_usec, 5000000);
	ck_assert_int_eq(s.daemon_pid, 4242);
	ck_assert_uint_eq(s.heartbeat_usec, 7000000);
	state_saved_clear(&s);
	/* A hold to the other state is a change with the reason hold. */
	struct state_change ch = { .new_state = LINK_DOWN, .old_state = LINK_UP, .at_usec = 8000000,
				   .reason = "hold", .runs_text = "held" };
	int64_t id = 0;
	ck_assert_int_eq(state_record_change(db, &ch, &id), 0);
	ck_assert_int_eq(id, 1);
	ck_assert_int_eq(count("SELECT COUNT(*) FROM changes WHERE reason = 'hold' AND runs_text = 'held'"), 1);
	ck_assert_int_eq(count("SELECT COUNT(*) FROM change_steps WHERE change_id = 1 AND status = 'pending'"), 5);
	ck_assert_int_eq(state_set_hold(db, LINK_UNKNOWN, 0, NULL), 0);
	ck_assert_int_eq(state_load(db, &s), 0);
	ck_assert_int_eq(s.hold, LINK_UNKNOWN);
	ck_assert_int_eq(s.state, LINK_DOWN);
	state_saved_clear(&s);
	ck_assert_int_eq(count("SELECT COUNT(*) FROM events WHERE kind = 'hold'"), 1);
}
END_TEST

/* The reconciler's decisions, with an injected clock. */
START_TEST(reconcile_decisions)
{
	const uint64_t S = 1000000, H = 3600 * S;

	/* Backoff: 2 s doubling, capped at 60 s, for as long as it lasts. */
	ck_assert_uint_eq(reconcile_backoff_usec(1), 2 * S);
	ck_assert_uint_eq(reconcile_backoff_usec(2), 4 * S);
	ck_assert_uint_eq(reconcile_backoff_usec(5), 32 * S);
	ck_assert_uint_eq(reconcile_backoff_usec(6), 60 * S);
	ck_assert_uint_eq(reconcile_backoff_usec(1000), 60 * S);
	/* Each distinct error once, the same one again after an hour. */
	ck_assert(reconcile_should_log("", 0, "connectors: locked", 10 * S));
	ck_assert(!reconcile_should_log("connectors: locked", 10 * S, "connectors: locked", 20 * S));
	ck_assert(!reconcile_should_log("connectors: locked", 10 * S, "connectors: locked", 10 * S + H - 1));
	ck_assert(reconcile_should_log("connectors: locked", 10 * S, "connectors: locked", 10 * S + H));
	ck_assert(reconcile_should_log("connectors: locked", 10 * S, "transport: bus down", 20 * S));
	/* Drift: a difference after the routes matched this target and change. */
	ck_assert(reconcile_is_drift(true, ROUTE_DOWN, 7, ROUTE_DOWN, 7));
	ck_assert(!reconcile_is_drift(true, ROUTE_DOWN, 7, ROUTE_DOWN, 8)); /* a new change */
	ck_assert(!reconcile_is_drift(true, ROUTE_UP, 7, ROUTE_DOWN, 7));   /* the gate opened */
	ck_assert(!reconcile_is_drift(false, ROUTE_DOWN, 7, ROUTE_DOWN, 7)); /* never matched yet */
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("state");
	TCase *tc = tcase_create("state");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, change_and_steps);
	tcase_add_test(tc, change_is_atomic);
	tcase_add_test(tc, rejudge_after_reload);
	tcase_add_test(tc, rejudge_cancelled);
	tcase_add_test(tc, reopen_keeps_schema);
	tcase_add_test(tc, migrate_v0_keeps_history);
	tcase_add_test(tc, migrate_v0_unbacked_state_is_unknown);
	tcase_add_test(tc, newer_schema_refused);
	tcase_add_test(tc, transport_v0_migrated);
	tcase_add_test(tc, hold_and_events);
	tcase_add_test(tc, reconcile_decisions);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
