/* rerouterctl status | history | init (the state database part). Read-only
 * opens with a busy timeout, so they work while the daemon writes (WAL). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/clock.h"
#include "actions/alert.h"
#include "agent/agent.h"
#include "agent/state.h"

static int open_ro(const struct cfg *cfg, sqlite3 **db)
{
	int r = state_open(cfg->agent.state_db, true, db);
	if (r < 0)
		fprintf(stderr, "rerouterctl: cannot open the state database %s: %s\n",
			cfg->agent.state_db, strerror(-r));
	return r;
}

static int fail_sql(sqlite3 *db, const char *what)
{
	fprintf(stderr, "rerouterctl: %s: %s\n", what, sqlite3_errmsg(db));
	return 1;
}

static const char *col(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);
	return s ? s : "";
}

static void print_duration(uint64_t usec)
{
	uint64_t s = usec / USEC_PER_SEC;

	if (s >= 86400)
		printf("%llud %lluh", (unsigned long long)(s / 86400), (unsigned long long)(s % 86400 / 3600));
	else if (s >= 3600)
		printf("%lluh %llum", (unsigned long long)(s / 3600), (unsigned long long)(s % 3600 / 60));
	else if (s >= 60)
		printf("%llum %llus", (unsigned long long)(s / 60), (unsigned long long)(s % 60));
	else
		printf("%llus", (unsigned long long)s);
}

static int print_checks(sqlite3 *db, int64_t run_id)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db,
			       "SELECT name, type, target, role, passed, outcome, reason, elapsed_ms "
			       "FROM run_checks WHERE run_id = ?1 ORDER BY seq",
			       -1, &st, NULL) != SQLITE_OK)
		return fail_sql(db, "read checks");
	sqlite3_bind_int64(st, 1, run_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		printf("    %-20s %-4s %-30s %s%s  %s  %lld ms\n", col(st, 0), col(st, 1), col(st, 2),
		       sqlite3_column_int(st, 4) ? "pass" : strcmp(col(st, 5), "cancelled") ? "fail" : "cancelled",
		       strcmp(col(st, 3), "backup") ? "" : " (backup)",
		       *col(st, 6) ? col(st, 6) : col(st, 5), (long long)sqlite3_column_int64(st, 7));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : fail_sql(db, "read checks");
}

static void print_run_line(sqlite3_stmt *st, int first)
{
	char when[64];

	clock_format_local((uint64_t)sqlite3_column_int64(st, first), when, sizeof when);
	printf("%s  %s (%d of %d link checks failed)\n", when,
	       sqlite3_column_int(st, first + 1) ? "FAILED" : "PASSED", sqlite3_column_int(st, first + 2),
	       sqlite3_column_int(st, first + 3));
}

int agent_ctl_status(const struct cfg *cfg)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct state_saved s;
	int rc, r = 1;

	if (open_ro(cfg, &db) < 0)
		return 1;
	/* One read transaction: a consistent picture while the daemon writes. */
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		r = fail_sql(db, "begin");
		goto out;
	}
	if (state_load(db, &s) < 0) {
		fprintf(stderr, "rerouterctl: %s: not a state database (run rerouterctl init)\n",
			cfg->agent.state_db);
		goto out;
	}
	if (!s.persisted) {
		printf("state:    unknown (rerouterd has not run yet)\n");
	} else {
		char since[64];
		uint64_t now_usec = clock_usec(CLOCK_REALTIME);
		clock_format_local(s.since_usec, since, sizeof since);
		printf("state:    %s since %s (", s.state == LINK_UP ? "UP" : "DOWN", since);
		print_duration(now_usec > s.since_usec ? now_usec - s.since_usec : 0);
		printf(")\n");
	}
	unsigned nf = 0;
	for (size_t i = 0; i < s.n; i++)
		nf += s.failed[i];
	printf("window:   %zu of %u runs since the last change: %u failed, %zu passed "
	       "(DOWN at %u failed, UP at %u passed)\n",
	       s.n, cfg->agent.runs, nf, s.n - nf, cfg->agent.failed_runs, cfg->agent.passed_runs);
	state_saved_clear(&s);

	if (sqlite3_prepare_v2(db,
			       "SELECT id, at_usec, failed, link_failed, n_link FROM runs "
			       "WHERE in_window = 1 ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK) {
		r = fail_sql(db, "read runs");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		printf("  ");
		print_run_line(st, 1);
	}
	sqlite3_finalize(st);
	st = NULL;

	if (sqlite3_prepare_v2(db, "SELECT id, at_usec, failed, link_failed, n_link FROM runs "
				   "ORDER BY id DESC LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK) {
		r = fail_sql(db, "read runs");
		goto out;
	}
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		printf("last run: ");
		print_run_line(st, 1);
		if (print_checks(db, sqlite3_column_int64(st, 0)) != 0)
			goto out;
	} else {
		printf("last run: none\n");
	}
	sqlite3_finalize(st);
	st = NULL;

	/* One line per change that still has steps to do, in their order. */
	if (sqlite3_prepare_v2(db,
			       "SELECT c.id, c.at, c.old_state, c.new_state, "
			       "group_concat(s.step || CASE WHEN s.attempts > 0 THEN ' (' || s.attempts || "
			       "' attempts' || CASE WHEN s.detail <> '' THEN ': ' || s.detail ELSE '' END || ')' "
			       "ELSE '' END, ', ') "
			       "FROM changes c JOIN (SELECT * FROM change_steps WHERE status = 'pending' "
			       "ORDER BY change_id, seq) s ON c.id = s.change_id GROUP BY c.id ORDER BY c.id",
			       -1, &st, NULL) != SQLITE_OK) {
		r = fail_sql(db, "read steps");
		goto out;
	}
	int pending = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (pending++ == 0)
			printf("pending:\n");
		printf("  change %lld at %s (%s -> %s): %s\n", (long long)sqlite3_column_int64(st, 0),
		       col(st, 1), col(st, 2), col(st, 3), col(st, 4));
	}
	sqlite3_finalize(st);
	st = NULL;
	int alerts = alerts_count_pending(db);
	if (alerts > 0)
		printf("%salerts not yet delivered: %d\n", pending ? "" : "pending:  ", alerts);
	else if (pending == 0)
		printf("pending:  nothing\n");
	r = 0;
out:
	sqlite3_finalize(st);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	state_close(db);
	return r;
}

int agent_ctl_history(const struct cfg *cfg, unsigned n)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL, *steps = NULL;
	int rc, r = 1, shown = 0;

	if (open_ro(cfg, &db) < 0)
		return 1;
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "SELECT id, at_usec, new_state, old_state, prev_since_usec, no_backup "
			       "FROM changes ORDER BY id DESC LIMIT ?1",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "SELECT step, status, attempts, detail, updated_at FROM change_steps "
			       "WHERE change_id = ?1 ORDER BY seq",
			       -1, &steps, NULL) != SQLITE_OK) {
		fprintf(stderr, "rerouterctl: %s: %s (run rerouterctl init?)\n", cfg->agent.state_db,
			sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_int64(st, 1, n);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char when[64];
		uint64_t at = (uint64_t)sqlite3_column_int64(st, 1);

		clock_format_local(at, when, sizeof when);
		printf("%s%s  %s -> %s", shown++ ? "\n" : "", when, col(st, 3), col(st, 2));
		if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
			uint64_t prev = (uint64_t)sqlite3_column_int64(st, 4);
			printf(" (%s held ", col(st, 3));
			print_duration(at > prev ? at - prev : 0);
			printf(")");
		}
		if (sqlite3_column_int(st, 5))
			printf("  no backup path answered: nothing rewired");
		printf("\n");
		sqlite3_reset(steps);
		sqlite3_bind_int64(steps, 1, sqlite3_column_int64(st, 0));
		while ((rc = sqlite3_step(steps)) == SQLITE_ROW)
			printf("    %-10s %-8s%s%s\n", col(steps, 0), col(steps, 1), *col(steps, 3) ? "  " : "",
			       col(steps, 3));
	}
	if (shown == 0)
		printf("no changes of state recorded\n");
	r = 0;
out:
	sqlite3_finalize(steps);
	sqlite3_finalize(st);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	state_close(db);
	return r;
}

int agent_ctl_init(const struct cfg *cfg)
{
	sqlite3 *db = NULL;
	int r = state_open(cfg->agent.state_db, false, &db);

	if (r < 0) {
		fprintf(stderr, "rerouterctl: cannot create the state database %s: %s\n",
			cfg->agent.state_db, strerror(-r));
		return 1;
	}
	state_close(db);
	printf("state database %s ready\n", cfg->agent.state_db);
	return 0;
}
