/* rerouterctl status | history | hold | release | init (the state database
 * part). Read-only opens with a busy timeout, so they work while the daemon
 * writes (WAL). */
#include "config.h"

#include <errno.h>
#include <signal.h>
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
	if (r == -ESTALE)
		fprintf(stderr, "rerouterctl: %s: an older schema: run 'rerouterctl init' (or start "
			"rerouterd) to migrate it\n", cfg->agent.state_db);
	else if (r < 0)
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
	char buf[48];

	clock_format_duration(usec, buf, sizeof buf);
	fputs(buf, stdout);
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

static void print_state(const struct state_saved *s)
{
	uint64_t now_usec = clock_usec(CLOCK_REALTIME);
	char since[64];

	if (!s->persisted) {
		printf("state:    UNKNOWN (rerouterd has not run yet)\n");
		return;
	}
	clock_format_local(s->since_usec, since, sizeof since);
	printf("state:    %s since %s (", link_state_upper(s->state), since);
	print_duration(now_usec > s->since_usec ? now_usec - s->since_usec : 0);
	printf(")%s\n", s->state == LINK_UNKNOWN ? "; nothing is rewired until the first decision" :
			 s->state == LINK_DOWN && s->last_change_no_backup ?
								    "; no backup path answered at the change" : "");
	if (s->hold != LINK_UNKNOWN) {
		char until[64] = "release";
		if (s->hold_until_usec)
			clock_format_local(s->hold_until_usec, until, sizeof until);
		printf("hold:     %s until %s (rerouterctl release ends it)\n", link_state_upper(s->hold), until);
	}
	if (s->heartbeat_usec) {
		printf("daemon:   pid %d, last sign of life ", s->daemon_pid);
		print_duration(now_usec > s->heartbeat_usec ? now_usec - s->heartbeat_usec : 0);
		printf(" ago\n");
	}
}

static int print_window(sqlite3 *db, const struct cfg *cfg, const struct state_saved *s)
{
	sqlite3_stmt *st = NULL;
	unsigned nf = 0;
	int rc;

	for (size_t i = 0; i < s->n; i++)
		nf += s->failed[i];
	printf("window:   %zu of %u runs since the last change: %u failed, %zu passed "
	       "(DOWN at %u failed, UP at %u passed)\n",
	       s->n, cfg->agent.runs, nf, s->n - nf, cfg->agent.failed_runs, cfg->agent.passed_runs);
	if (sqlite3_prepare_v2(db,
			       "SELECT id, at_usec, failed, link_failed, n_link FROM runs "
			       "WHERE in_window = 1 ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK)
		return fail_sql(db, "read runs");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		printf("  ");
		print_run_line(st, 1);
	}
	sqlite3_finalize(st);
	/* A read that broke off is an error, not the end of the list. */
	if (rc != SQLITE_DONE)
		return fail_sql(db, "read runs");
	if (sqlite3_prepare_v2(db, "SELECT id, at_usec, failed, link_failed, n_link FROM runs "
				   "ORDER BY id DESC LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		return fail_sql(db, "read runs");
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		printf("last run: ");
		print_run_line(st, 1);
		rc = print_checks(db, sqlite3_column_int64(st, 0));
	} else if (rc != SQLITE_DONE) {
		rc = fail_sql(db, "read runs");
	} else {
		printf("last run: none\n");
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

/* What is still to do: a routing step being retried, each change's
 * pending steps, undelivered alerts. */
static int print_pending(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int rc, pending = 0;

	if (sqlite3_prepare_v2(db,
			       "SELECT pending_step, pending_error, pending_since_usec, attempts FROM routing "
			       "WHERE id = 1 AND pending_step IS NOT NULL",
			       -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		char since[64];
		clock_format_local((uint64_t)sqlite3_column_int64(st, 2), since, sizeof since);
		printf("pending:\n  routing: %s: %s (since %s, attempt %d; retried every 60s at most)\n",
		       col(st, 0), col(st, 1), since, sqlite3_column_int(st, 3));
		pending++;
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
			       -1, &st, NULL) != SQLITE_OK)
		return fail_sql(db, "read steps");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (pending++ == 0)
			printf("pending:\n");
		printf("  change %lld at %s (%s -> %s): %s\n", (long long)sqlite3_column_int64(st, 0),
		       col(st, 1), col(st, 2), col(st, 3), col(st, 4));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return fail_sql(db, "read steps");
	int alerts = alerts_count_pending(db);
	if (alerts > 0)
		printf("%salerts not yet delivered: %d\n", pending ? "  " : "pending:  ", alerts);
	else if (pending == 0)
		printf("pending:  nothing\n");
	return 0;
}

int agent_ctl_status(const struct cfg *cfg)
{
	sqlite3 *db = NULL;
	struct state_saved s = { 0 };
	int r = 2;

	if (open_ro(cfg, &db) < 0)
		return 2;
	/* One read transaction: a consistent picture while the daemon writes. */
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		fail_sql(db, "begin");
		goto out;
	}
	if (state_load(db, &s) < 0) {
		fprintf(stderr, "rerouterctl: %s: not a state database (run rerouterctl init)\n",
			cfg->agent.state_db);
		goto out;
	}
	print_state(&s);
	if (print_window(db, cfg, &s) != 0 || print_pending(db) != 0)
		goto out;
	/* SPEC section 6: 1 while the link is not UP. */
	r = s.persisted && s.state == LINK_UP ? 0 : 1;
out:
	state_saved_clear(&s);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	state_close(db);
	return r;
}

static void print_change(sqlite3_stmt *st, sqlite3_stmt *steps, bool first)
{
	char when[64];
	uint64_t at = (uint64_t)sqlite3_column_int64(st, 1);

	clock_format_local(at, when, sizeof when);
	printf("%s%s  %s -> %s", first ? "" : "\n", when, col(st, 3), col(st, 2));
	if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
		uint64_t prev = (uint64_t)sqlite3_column_int64(st, 4);
		printf(" (%s held ", col(st, 3));
		print_duration(at > prev ? at - prev : 0);
		printf(")");
	}
	if (!strcmp(col(st, 6), "hold"))
		printf("  by rerouterctl hold");
	if (sqlite3_column_int(st, 5))
		printf("  no backup path answered: nothing rewired");
	printf("\n");
	sqlite3_reset(steps);
	sqlite3_bind_int64(steps, 1, sqlite3_column_int64(st, 0));
	while (sqlite3_step(steps) == SQLITE_ROW)
		printf("    %-10s %-8s%s%s\n", col(steps, 0), col(steps, 1), *col(steps, 3) ? "  " : "",
		       col(steps, 3));
}

static void print_event(sqlite3_stmt *ev, bool first)
{
	char when[64];

	clock_format_local((uint64_t)sqlite3_column_int64(ev, 0), when, sizeof when);
	printf("%s%s  %s %s%s%s (by %s)\n", first ? "" : "\n", when, col(ev, 1), col(ev, 2),
	       *col(ev, 3) ? ": " : "", col(ev, 3), col(ev, 4));
}

/* Changes of state and events (manual toggles, holds, drift corrections),
 * newest first, merged by time. */
int agent_ctl_history(const struct cfg *cfg, unsigned n)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL, *steps = NULL, *ev = NULL;
	int r = 2, shown = 0;

	if (open_ro(cfg, &db) < 0)
		return 2;
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "SELECT id, at_usec, new_state, old_state, prev_since_usec, no_backup, reason "
			       "FROM changes ORDER BY id DESC LIMIT ?1",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "SELECT step, status, attempts, detail, updated_at FROM change_steps "
			       "WHERE change_id = ?1 ORDER BY seq",
			       -1, &steps, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "SELECT at_usec, kind, subject, detail, changed_by FROM events "
			       "ORDER BY id DESC LIMIT ?1",
			       -1, &ev, NULL) != SQLITE_OK) {
		fprintf(stderr, "rerouterctl: %s: %s (run rerouterctl init?)\n", cfg->agent.state_db,
			sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_int64(st, 1, n);
	sqlite3_bind_int64(ev, 1, n);
	int rc_c = sqlite3_step(st), rc_e = sqlite3_step(ev);
	while ((rc_c == SQLITE_ROW || rc_e == SQLITE_ROW) && (unsigned)shown < n) {
		bool change = rc_c == SQLITE_ROW &&
			      (rc_e != SQLITE_ROW || sqlite3_column_int64(st, 1) >= sqlite3_column_int64(ev, 0));
		if (change) {
			print_change(st, steps, shown++ == 0);
			rc_c = sqlite3_step(st);
		} else {
			print_event(ev, shown++ == 0);
			rc_e = sqlite3_step(ev);
		}
	}
	/* A failed read is an error, not the end of the history. */
	if ((rc_c != SQLITE_ROW && rc_c != SQLITE_DONE) || (rc_e != SQLITE_ROW && rc_e != SQLITE_DONE)) {
		fprintf(stderr, "rerouterctl: cannot read the history: %s\n", sqlite3_errmsg(db));
		goto out;
	}
	if (shown == 0)
		printf("no changes of state recorded\n");
	r = 0;
out:
	sqlite3_finalize(ev);
	sqlite3_finalize(steps);
	sqlite3_finalize(st);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	state_close(db);
	return r;
}

/* SIGUSR1 to the daemon recorded in the state database, if it still runs
 * (the PID is checked to be a rerouterd's). Returns the PID woken, or 0. */
static int wake_daemon(int pid)
{
	char path[64], comm[32] = "";
	FILE *f;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof path, "/proc/%d/comm", pid);
	if (!(f = fopen(path, "r")))
		return 0;
	if (!fgets(comm, sizeof comm, f))
		comm[0] = '\0';
	fclose(f);
	if (strncmp(comm, "rerouterd", 9) || kill(pid, SIGUSR1) < 0)
		return 0;
	return pid;
}

/* hold: LINK_UP or LINK_DOWN; LINK_UNKNOWN releases. */
int agent_ctl_hold(const struct cfg *cfg, enum link_state hold, uint64_t for_usec)
{
	uint64_t now = clock_usec(CLOCK_REALTIME), until = for_usec ? now + for_usec : 0;
	struct state_saved s;
	sqlite3 *db = NULL;
	char detail[96] = "";
	int r = state_open(cfg->agent.state_db, false, &db);

	if (r < 0) {
		fprintf(stderr, "rerouterctl: cannot open the state database %s for writing: %s\n",
			cfg->agent.state_db, strerror(-r));
		return 2;
	}
	if ((r = state_load(db, &s)) < 0)
		goto fail;
	if (!s.persisted && (r = state_set(db, LINK_UNKNOWN, now, false)) < 0)
		goto fail;
	if (hold == LINK_UNKNOWN && s.hold == LINK_UNKNOWN) {
		printf("no hold in force\n");
		state_saved_clear(&s);
		state_close(db);
		return 0;
	}
	if (until) {
		char u[64];
		clock_format_local(until, u, sizeof u);
		snprintf(detail, sizeof detail, "until %s", u);
	}
	if ((r = state_set_hold(db, hold, until, "rerouterctl")) < 0 ||
	    (r = state_add_event(db, hold == LINK_UNKNOWN ? "release" : "hold",
				 link_state_str(hold == LINK_UNKNOWN ? s.hold : hold), detail, "rerouterctl")) < 0)
		goto fail;
	int woken = wake_daemon(s.daemon_pid);
	if (hold == LINK_UNKNOWN)
		printf("hold %s released: the window decides from the next run", link_state_upper(s.hold));
	else
		printf("hold %s in force %s: only %s is enforced", link_state_upper(hold),
		       until ? detail : "until 'rerouterctl release'", hold == LINK_UP ? "[on_up]" : "[on_down]");
	if (woken)
		printf("; rerouterd (pid %d) woken\n", woken);
	else
		printf("; rerouterd is not running: it takes effect when it starts\n");
	state_saved_clear(&s);
	state_close(db);
	return 0;
fail:
	fprintf(stderr, "rerouterctl: %s: cannot record the hold: %s\n", cfg->agent.state_db, strerror(-r));
	state_saved_clear(&s);
	state_close(db);
	return 2;
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
