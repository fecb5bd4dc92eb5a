/* The step pipeline of SPEC section 4 and its exactly-once bookkeeping.
 *
 * The agent records a change and one 'pending' row per step (agent/change.h).
 * Here the first pending step of the oldest change is carried out, marked
 * 'done', 'failed' or 'skipped' with a detail for people, and the next one
 * follows. Whatever was done is marked before the next step starts, so a
 * start-up after a crash resumes at the first step not marked:
 *  - connectors are set to wanted values (idempotent); whether an interrupted
 *    attempt had already changed the database is read back from the rows'
 *    changed_at/changed_by, so the restart it needs is not lost;
 *  - transport (restart): before the job is issued the step's detail records
 *    "issued: restart; InvocationID=X" (the unit's, read over D-Bus). A
 *    start-up that finds this waits for any job still running on the unit,
 *    then reads the InvocationID again: changed and the unit running means
 *    the restart happened ("restarted before the crash"), so it is marked
 *    done, not repeated; unchanged means it never reached systemd, so it is
 *    issued now. Exactly once either way. (A change of InvocationID by
 *    somebody else's restart in between also counts: the transport has
 *    re-read the database, which is all the step is for.)
 *  - transport (reload): no such evidence exists (a reload keeps the
 *    InvocationID), and none is needed: an interrupted reload is simply
 *    repeated, which is harmless.
 *  - flush: repeated; a second `postqueue -f` is harmless.
 *  - hook: AT MOST once. Its detail says "starting", then "started (pid N)",
 *    before and right after the fork; a start-up that finds either does not
 *    run it again (an admin's hook may page someone or change routes) but
 *    marks it failed, "interrupted by a crash of rerouterd; not run again",
 *    and logs a warning. A crash between the two records may thus lose a
 *    hook that never started; a hook twice is the worse error.
 *  - mail: alerts_enqueue_change() is idempotent per change.
 * A mark that cannot be written (the state database held by another writer,
 * or full) is kept in memory and retried from a timer before anything else,
 * so this process never repeats a restart or a hook for want of a mark.
 *
 * Test only: RR_TEST_CRASH_AFTER_STEP=NAME kills the process with SIGKILL
 * right after the step NAME was marked, to test the recovery above; and
 * =transport-recorded after the restart was recorded as issued but before it
 * was sent, =transport-issued right after systemd accepted the restart job
 * (recorded as issued, no result yet), =hook-started right after the hook's
 * fork/exec (recorded as started). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/clock.h"
#include "actions/actions.h"
#include "actions/alert.h"
#include "actions/connectors.h"
#include "actions/exec.h"
#include "actions/transport.h"
#include "agent/change.h"
#include "agent/log.h"

#define MAX_ATTEMPTS 6                        /* then the step is 'failed' */
#define RETRY_BASE_USEC (2 * USEC_PER_SEC)    /* doubled per attempt */
#define RETRY_MAX_USEC (60 * USEC_PER_SEC)
#define TRANSPORT_TIMEOUT_USEC (120 * USEC_PER_SEC)
#define FLUSH_TIMEOUT_USEC (60 * USEC_PER_SEC)
#define QUERY_TIMEOUT_USEC (30 * USEC_PER_SEC)
/* Resuming a restart issued before a crash: while the unit still has a job
 * (the restart itself, still running), look again after this, this often. */
#define JOB_POLL_USEC (500 * 1000)
#define JOB_POLL_MAX 240
/* The detail that records work begun but not yet marked (see the header). */
#define ISSUED_RESTART "issued: restart; InvocationID="
#define HOOK_STARTING "starting"
#define HOOK_STARTED "started (pid "
/* On the loop: a writer holding the transport database costs at most
 * CONN_TRIES times this, then the step is retried from a timer. */
#define LOOP_BUSY_TIMEOUT_MSEC 250

struct pending {
	int64_t change_id;
	char step[16];
	int kind; /* enum change_step, or -1 */
	int attempts;
	char new_state[8], old_state[8];
	char at[40];
	uint64_t at_usec;
	bool no_backup;
	int64_t newer; /* a newer change that sets connectors, or 0 */
	char detail[256];
};

/* Marks that could not be written (the state database held by another
 * writer, or full) after the work was done: written first at the next try,
 * so that a retry only marks and never restarts or runs the hook again. */
#define UNMARKED_MAX 4
struct unmarked {
	bool valid;
	int64_t change_id;
	size_t n;
	char step[UNMARKED_MAX][16], status[UNMARKED_MAX][16], detail[UNMARKED_MAX][1200];
};

struct actions {
	sd_event *event;
	sqlite3 *db;
	const struct cfg *cfg;
	struct alerts *alerts;
	sd_event_source *kick_src, *retry_src;
	struct exec *exec;
	struct transport_job *job;
	struct pending cur; /* the step in flight */
	struct unmarked unmarked;
	/* The change whose transport/hook this process issued or started: a
	 * record of "issued"/"started" for it is ours, not a crashed process's. */
	int64_t launched[_STEP_MAX];
	bool resuming;  /* the query in flight checks a restart issued before a crash */
	int64_t polling; /* the change whose unit still had a job at the last look */
	int job_polls;
	uint64_t started_usec;
	bool running;
};

enum step_outcome { STEP_NEXT, STEP_WAIT };

static void schedule(struct actions *a);

/* ---- the state database ---- */

static int sql_err(struct actions *a, int rc, const char *what)
{
	log_errx("actions: state database: %s: %s", what, sqlite3_errmsg(a->db));
	return (rc & 0xff) == SQLITE_BUSY ? -EBUSY : -EIO;
}

/* Returns 1 with *p filled, 0 when nothing is pending, or a negative errno. */
static int load_next(struct actions *a, struct pending *p)
{
	sqlite3_stmt *st = NULL;
	int rc, r;

	rc = sqlite3_prepare_v2(a->db,
				"SELECT s.change_id, s.step, s.attempts, c.new_state, c.old_state, "
				"c.at, c.at_usec, c.no_backup, "
				"(SELECT MAX(n.id) FROM changes AS n WHERE n.id > c.id AND n.no_backup = 0), "
				"s.detail "
				"FROM change_steps AS s JOIN changes AS c ON c.id = s.change_id "
				"WHERE s.status = 'pending' ORDER BY s.change_id, s.seq LIMIT 1",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return sql_err(a, rc, "reading pending steps");
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = 0;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = sql_err(a, rc, "reading pending steps");
		goto out;
	}
	memset(p, 0, sizeof *p);
	p->change_id = sqlite3_column_int64(st, 0);
	snprintf(p->step, sizeof p->step, "%s", (const char *)sqlite3_column_text(st, 1));
	p->kind = -1;
	for (int k = 0; k < _STEP_MAX; k++)
		if (!strcmp(p->step, change_step_str((enum change_step)k)))
			p->kind = k;
	p->attempts = sqlite3_column_int(st, 2);
	snprintf(p->new_state, sizeof p->new_state, "%s", (const char *)sqlite3_column_text(st, 3));
	snprintf(p->old_state, sizeof p->old_state, "%s", (const char *)sqlite3_column_text(st, 4));
	snprintf(p->at, sizeof p->at, "%s", (const char *)sqlite3_column_text(st, 5));
	p->at_usec = (uint64_t)sqlite3_column_int64(st, 6);
	p->no_backup = sqlite3_column_int(st, 7) != 0;
	p->newer = sqlite3_column_int64(st, 8);
	snprintf(p->detail, sizeof p->detail, "%s",
		 sqlite3_column_text(st, 9) ? (const char *)sqlite3_column_text(st, 9) : "");
	r = 1;
out:
	sqlite3_finalize(st);
	return r;
}

struct mark {
	const char *step, *status, *detail;
};

static void crash_point(const char *step)
{
	const char *c = getenv("RR_TEST_CRASH_AFTER_STEP");

	if (c && !strcmp(c, step)) {
		log_warnx("actions: RR_TEST_CRASH_AFTER_STEP=%s: killing myself (test only)", step);
		raise(SIGKILL);
	}
}

/* Marks several steps of one change in one transaction (a savepoint, so it
 * nests in whatever the agent does); only rows still pending change. */
static int mark_steps(struct actions *a, int64_t change_id, const struct mark *m, size_t n)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	int rc, r = 0;

	clock_format_utc(clock_usec(CLOCK_REALTIME), now, sizeof now);
	rc = sqlite3_exec(a->db, "SAVEPOINT actions_mark", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sql_err(a, rc, "marking a step");
	rc = sqlite3_prepare_v2(a->db,
				"UPDATE change_steps SET status = ?3, detail = ?4, updated_at = ?5 "
				"WHERE change_id = ?1 AND step = ?2 AND status = 'pending'",
				-1, &st, NULL);
	for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, change_id);
		sqlite3_bind_text(st, 2, m[i].step, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, m[i].status, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, m[i].detail, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, now, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(a->db);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(a->db, "RELEASE actions_mark", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		r = sql_err(a, rc, "marking a step");
		sqlite3_exec(a->db, "ROLLBACK TO actions_mark; RELEASE actions_mark", NULL, NULL, NULL);
		return r;
	}
	for (size_t i = 0; i < n; i++)
		log_debug("actions: change %" PRId64 " %s: %s (%s)", change_id, m[i].step,
			  m[i].status, m[i].detail);
	for (size_t i = 0; i < n; i++)
		crash_point(m[i].step);
	return 0;
}

static void arm_retry(struct actions *a, uint64_t delay_usec);

/* Every path that marks goes through here: STEP_NEXT once the marks are
 * written, else they are kept in a->unmarked, a retry is armed and the
 * pipeline waits (STEP_WAIT). */
static enum step_outcome mark_or_wait(struct actions *a, int64_t change_id, const struct mark *m,
				      size_t n)
{
	struct unmarked *u = &a->unmarked;

	if (n > UNMARKED_MAX)
		n = UNMARKED_MAX;
	if (mark_steps(a, change_id, m, n) == 0)
		return STEP_NEXT;
	u->valid = true;
	u->change_id = change_id;
	u->n = n;
	for (size_t i = 0; i < n; i++) {
		snprintf(u->step[i], sizeof u->step[i], "%s", m[i].step);
		snprintf(u->status[i], sizeof u->status[i], "%s", m[i].status);
		snprintf(u->detail[i], sizeof u->detail[i], "%s", m[i].detail);
	}
	log_warnx("actions: change %" PRId64 " %s: %s, not yet recorded; retrying the mark in %llus",
		  change_id, m[0].step, m[0].status,
		  (unsigned long long)(RETRY_BASE_USEC / USEC_PER_SEC));
	arm_retry(a, RETRY_BASE_USEC);
	return STEP_WAIT;
}

/* 0 when nothing is left unmarked, else a negative errno (a retry is armed). */
static int write_unmarked(struct actions *a)
{
	struct unmarked *u = &a->unmarked;
	struct mark m[UNMARKED_MAX];
	int r;

	if (!u->valid)
		return 0;
	for (size_t i = 0; i < u->n; i++)
		m[i] = (struct mark){ u->step[i], u->status[i], u->detail[i] };
	r = mark_steps(a, u->change_id, m, u->n);
	if (r < 0) {
		arm_retry(a, RETRY_BASE_USEC);
		return r;
	}
	u->valid = false;
	return 0;
}

static enum step_outcome mark1(struct actions *a, const struct pending *p, const char *status,
			       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum step_outcome mark1(struct actions *a, const struct pending *p, const char *status,
			       const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	struct mark m = { p->step, status, detail };
	return mark_or_wait(a, p->change_id, &m, 1);
}

/* Before an attempt: counted first, so a crash during it is known at the next
 * start. detail NULL: kept (it may hold what a crashed process issued). */
static int bump_attempts(struct actions *a, struct pending *p, const char *detail)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	int rc;

	clock_format_utc(clock_usec(CLOCK_REALTIME), now, sizeof now);
	rc = sqlite3_prepare_v2(a->db,
				"UPDATE change_steps SET attempts = attempts + 1, detail = COALESCE(?3, detail), "
				"updated_at = ?4 WHERE change_id = ?1 AND step = ?2",
				-1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, p->change_id);
		sqlite3_bind_text(st, 2, p->step, -1, SQLITE_STATIC);
		if (detail)
			sqlite3_bind_text(st, 3, detail, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 3);
		sqlite3_bind_text(st, 4, now, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(a->db);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		return sql_err(a, rc, "counting an attempt");
	p->attempts++;
	return 0;
}

static int set_detail(struct actions *a, const struct pending *p, const char *detail)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(a->db,
				"UPDATE change_steps SET detail = ?3 WHERE change_id = ?1 AND step = ?2",
				-1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, p->change_id);
		sqlite3_bind_text(st, 2, p->step, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, detail, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(a->db);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : sql_err(a, rc, "recording a retry");
}

/* Status of another step of the same change ("" when absent), 0 or a
 * negative errno (a database that cannot be read is no answer). */
static int step_status(struct actions *a, int64_t change_id, const char *step, char *buf,
		       size_t size)
{
	sqlite3_stmt *st = NULL;
	int rc;

	buf[0] = '\0';
	rc = sqlite3_prepare_v2(a->db, "SELECT status FROM change_steps WHERE change_id = ?1 AND step = ?2",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return sql_err(a, rc, "reading a step");
	sqlite3_bind_int64(st, 1, change_id);
	sqlite3_bind_text(st, 2, step, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		snprintf(buf, size, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_err(a, rc, "reading a step");
	return 0;
}

/* ---- retries ---- */

static uint64_t backoff_usec(int attempts)
{
	uint64_t d = RETRY_BASE_USEC;

	for (int i = 1; i < attempts && d < RETRY_MAX_USEC; i++)
		d *= 2;
	return d < RETRY_MAX_USEC ? d : RETRY_MAX_USEC;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *ud)
{
	(void)s, (void)usec;
	schedule(ud);
	return 0;
}

static void arm_retry(struct actions *a, uint64_t delay_usec)
{
	int r;

	if (!a->retry_src)
		r = sd_event_add_time_relative(a->event, &a->retry_src, CLOCK_MONOTONIC, delay_usec,
					       0, on_retry, a);
	else {
		r = sd_event_source_set_time_relative(a->retry_src, delay_usec);
		if (r >= 0)
			r = sd_event_source_set_enabled(a->retry_src, SD_EVENT_ONESHOT);
	}
	if (r < 0)
		log_err_errno(r, "actions: cannot arm the retry timer");
}

/* A failed attempt: retried later while attempts remain (the step stays
 * 'pending' with the reason, as rerouterctl status shows), else 'failed'. */
static enum step_outcome attempt_failed(struct actions *a, const struct pending *p,
					const struct mark *also, size_t n_also, const char *why)
{
	char detail[1024];

	if (p->attempts < MAX_ATTEMPTS) {
		uint64_t d = backoff_usec(p->attempts);
		snprintf(detail, sizeof detail, "attempt %d: %s; retrying in %llus", p->attempts,
			 why, (unsigned long long)(d / USEC_PER_SEC));
		log_warnx("actions: change %" PRId64 " %s: %s", p->change_id, p->step, detail);
		set_detail(a, p, detail);
		arm_retry(a, d);
		return STEP_WAIT;
	}
	snprintf(detail, sizeof detail, "%s (gave up after %d attempts)", why, p->attempts);
	log_errx("actions: change %" PRId64 " %s failed: %s", p->change_id, p->step, detail);
	struct mark m[4] = { { p->step, "failed", detail } };
	for (size_t i = 0; i < n_also && i < 3; i++)
		m[i + 1] = also[i];
	return mark_or_wait(a, p->change_id, m, 1 + (n_also < 3 ? n_also : 3));
}

/* ---- connectors ---- */

struct conn_log {
	struct actions *a;
	const struct pending *p;
	char changed[512], missing[512];
};

static void append(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len >= size - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

static void on_conn_missing(const char *name, void *ud)
{
	struct conn_log *l = ud;

	append(l->missing, sizeof l->missing, "%s%s", l->missing[0] ? ", " : "", name);
}

static void on_conn_changed(const char *name, int enabled, void *ud)
{
	struct conn_log *l = ud;
	const struct log_field f[] = {
		{ "REROUTER_CONNECTOR", name },
		{ "REROUTER_ACTION", enabled ? "enable" : "disable" },
		{ "REROUTER_STATE", l->p->new_state },
	};

	log_fields(LOG_NOTICE, f, "connector %s %s", name, enabled ? "enabled" : "disabled");
	append(l->changed, sizeof l->changed, "%s%s %s", l->changed[0] ? ", " : "",
	       enabled ? "enabled" : "disabled", name);
}

static enum step_outcome step_connectors(struct actions *a, struct pending *p)
{
	const struct cfg_toggle *t = !strcmp(p->new_state, "up") ? &a->cfg->on_up : &a->cfg->on_down;
	const char *section = !strcmp(p->new_state, "up") ? "[on_up]" : "[on_down]";
	struct conn_log l = { a, p, "", "" };
	struct conn_report rep = { on_conn_missing, on_conn_changed, &l };
	struct conn_set *v = NULL;
	sqlite3 *tdb = NULL;
	size_t n = 0;
	char detail[1200], since[32];
	int attempts_before = p->attempts, r, changed;
	enum step_outcome out = STEP_NEXT;

	if (p->no_backup) {
		const struct mark m[] = { { "connectors", "skipped", "no backup path" },
					  { "transport", "skipped", "no backup path" },
					  { "flush", "skipped", "no backup path" } };
		log_warnx("actions: change %" PRId64 ": DOWN with no backup path, no connector changed",
			  p->change_id);
		return mark_or_wait(a, p->change_id, m, 3);
	}
	if (!t->present || t->enable.n + t->disable.n == 0) {
		snprintf(detail, sizeof detail, "nothing to change: no %s", section);
		const struct mark m[] = { { "connectors", "skipped", detail },
					  { "transport", "skipped", "transport database unchanged" },
					  { "flush", "skipped", "transport database unchanged" } };
		return mark_or_wait(a, p->change_id, m, 3);
	}
	if (bump_attempts(a, p, "applying") < 0) {
		arm_retry(a, RETRY_BASE_USEC);
		return STEP_WAIT;
	}
	r = conn_set_from_toggle(t, &v, &n);
	if (r >= 0)
		r = conn_open(a->cfg->transport.database, 0, LOOP_BUSY_TIMEOUT_MSEC, &tdb);
	if (r >= 0)
		r = conn_apply(tdb, v, n, "rerouterd", CONN_TRIES, &rep);
	if (r < 0) {
		char why[600];
		snprintf(why, sizeof why, "%s: %s", a->cfg->transport.database,
			 r == -EBUSY ? "held by another writer" : strerror(-r));
		const struct mark also[] = { { "transport", "skipped", "connectors failed" },
					     { "flush", "skipped", "connectors failed" } };
		out = attempt_failed(a, p, also, 2, why);
		goto out;
	}
	changed = r > 0;
	if (!changed && attempts_before > 0) {
		/* An attempt before a crash may have committed without being marked. */
		clock_format_utc(p->at_usec, since, sizeof since);
		changed = conn_changed_since(tdb, v, n, "rerouterd", since) == 1;
	}
	if (l.changed[0])
		snprintf(detail, sizeof detail, "%s", l.changed);
	else
		snprintf(detail, sizeof detail, "%s", changed ? "set by an earlier attempt" : "already set");
	if (l.missing[0]) {
		const struct log_field f[] = { { "REROUTER_STATE", p->new_state } };
		log_fields(LOG_ERR, f, "connectors named in %s but missing from %s: %s", section,
			   a->cfg->transport.database, l.missing);
		append(detail, sizeof detail, "; missing from the database: %s", l.missing);
	}
	/* Kept in memory if it cannot be written: whether this attempt changed
	 * the database (and so needs a restart) is not lost to a retry. */
	if (changed) {
		const struct mark m[] = { { "connectors", "done", detail } };
		out = mark_or_wait(a, p->change_id, m, 1);
	} else {
		const struct mark m[] = { { "connectors", "done", detail },
					  { "transport", "skipped", "transport database unchanged" },
					  { "flush", "skipped", "transport database unchanged" } };
		out = mark_or_wait(a, p->change_id, m, 3);
	}
out:
	sqlite3_close(tdb);
	free(v);
	return out;
}

/* ---- transport ---- */

static const char *verb(const struct actions *a)
{
	return a->cfg->transport.action == TRANSPORT_RELOAD ? "reload" : "restart";
}

static void on_transport_done(struct transport_job *j, bool ok, const char *result, void *ud)
{
	struct actions *a = ud;
	struct pending *p = &a->cur;
	const struct log_field f[] = {
		{ "REROUTER_ACTION", verb(a) },
		{ "REROUTER_STATE", p->new_state },
		{ "REROUTER_RESULT", ok ? "pass" : "fail" },
	};
	double secs = (double)(clock_usec(CLOCK_MONOTONIC) - a->started_usec) / 1e6;
	char why[512], res[256];

	(void)j;
	/* result lives in the job, which is freed here. */
	snprintf(res, sizeof res, "%s", result);
	result = res;
	a->job = transport_job_free(a->job);
	a->running = false;
	log_fields(ok ? LOG_NOTICE : LOG_WARNING, f, "transport: %s %s: job %s (%.2fs)", verb(a),
		   a->cfg->transport.unit, result, secs);
	if (ok) {
		/* Not recorded yet: the retry only marks, no second restart. */
		if (mark1(a, p, "done", "%s %s: %s in %.2fs", verb(a), a->cfg->transport.unit, result,
			  secs) == STEP_WAIT)
			return;
	} else {
		snprintf(why, sizeof why, "%s %s: %s", verb(a), a->cfg->transport.unit, result);
		const struct mark also[] = { { "flush", "skipped", "transport failed" } };
		if (attempt_failed(a, p, also, 1, why) == STEP_WAIT)
			return;
	}
	schedule(a);
}

static void on_transport_queued(struct transport_job *j, const char *path, void *ud)
{
	(void)j, (void)path, (void)ud;
	/* systemd has the job: it runs even if we die now. */
	crash_point("transport-issued");
}

static enum step_outcome transport_failed(struct actions *a, const struct pending *p, int r)
{
	char why[512];
	snprintf(why, sizeof why, "%s %s: %s bus: %s", verb(a), a->cfg->transport.unit,
		 a->cfg->transport.bus == BUS_USER ? "user" : "system", strerror(-r));
	const struct mark also[] = { { "flush", "skipped", "transport failed" } };
	return attempt_failed(a, p, also, 1, why);
}

/* Records that the job is being issued (with invocation_id, the unit's
 * before a restart), then issues it. */
static enum step_outcome issue_job(struct actions *a, struct pending *p, const char *invocation_id)
{
	char detail[128];
	int r;

	if (a->cfg->transport.action == TRANSPORT_RESTART)
		snprintf(detail, sizeof detail, ISSUED_RESTART "%s",
			 invocation_id[0] ? invocation_id : "none");
	else
		snprintf(detail, sizeof detail, "issued: reload (repeated if interrupted: harmless)");
	/* No record, no job: a crash must find out what was issued. */
	if (set_detail(a, p, detail) < 0) {
		arm_retry(a, RETRY_BASE_USEC);
		return STEP_WAIT;
	}
	crash_point("transport-recorded");
	if (p != &a->cur) /* from on_unit_read(), p is a->cur */
		a->cur = *p;
	a->started_usec = clock_usec(CLOCK_MONOTONIC);
	a->launched[STEP_TRANSPORT] = p->change_id;
	r = transport_start(a->event, a->cfg->transport.bus, a->cfg->transport.unit,
			    a->cfg->transport.action, TRANSPORT_TIMEOUT_USEC, on_transport_done, a,
			    &a->job);
	if (r < 0) {
		a->launched[STEP_TRANSPORT] = 0;
		return transport_failed(a, p, r);
	}
	transport_job_on_queued(a->job, on_transport_queued);
	a->running = true;
	return STEP_WAIT;
}

static void on_unit_read(struct transport_job *j, const struct transport_unit_info *info_in,
			 const char *why, void *ud)
{
	struct actions *a = ud;
	struct pending *p = &a->cur;
	struct transport_unit_info copy, *info = NULL;
	char buf[512];
	const char *now_id = copy.invocation_id;
	bool resuming = a->resuming;

	(void)j;
	/* info_in and why live in the job, which is freed here. */
	if (info_in) {
		copy = *info_in;
		info = &copy;
	} else
		snprintf(buf, sizeof buf, "%s", why);
	a->job = transport_job_free(a->job);
	a->running = false;
	a->resuming = false;
	a->polling = 0;
	if (!info) {
		snprintf(buf + strlen(buf), sizeof buf - strlen(buf), " (%s bus)",
			 a->cfg->transport.bus == BUS_USER ? "user" : "system");
		if (resuming && p->attempts < MAX_ATTEMPTS) {
			/* Not attempt_failed(): its detail would replace the record
			 * of what was issued before the crash. */
			log_warnx("actions: change %" PRId64 " transport: %s; retrying", p->change_id, buf);
			arm_retry(a, backoff_usec(p->attempts));
			return;
		}
		const struct mark also[] = { { "flush", "skipped", "transport failed" } };
		if (attempt_failed(a, p, also, 1, buf) == STEP_NEXT)
			schedule(a);
		return;
	}
	if (resuming && info->job_id != 0 && a->job_polls++ < JOB_POLL_MAX) {
		/* Most likely the restart issued before the crash, still running. */
		log_debug("actions: change %" PRId64 " transport: %s has job %" PRIu32 "; waiting",
			  p->change_id, a->cfg->transport.unit, info->job_id);
		a->polling = p->change_id;
		arm_retry(a, JOB_POLL_USEC);
		return;
	}
	if (resuming) {
		const char *before = p->detail + strlen(ISSUED_RESTART);
		const char *was = strcmp(before, "none") ? before : "";
		bool running = !strcmp(info->active_state, "active") ||
			       !strcmp(info->active_state, "reloading");
		if (strcmp(now_id, was) && running) {
			log_notice("actions: change %" PRId64 " transport: %s was restarted before the "
				   "crash of rerouterd (InvocationID %s -> %s): not restarted again",
				   p->change_id, a->cfg->transport.unit, was[0] ? was : "none", now_id);
			if (mark1(a, p, "done", "restarted before the crash (InvocationID %s -> %s)",
				  was[0] ? was : "none", now_id) == STEP_NEXT)
				schedule(a);
			return;
		}
		if (strcmp(now_id, was)) {
			/* It restarted but is not running: that attempt failed. */
			snprintf(buf, sizeof buf, "restart %s before the crash: unit %s",
				 a->cfg->transport.unit, info->active_state);
			const struct mark also[] = { { "flush", "skipped", "transport failed" } };
			if (attempt_failed(a, p, also, 1, buf) == STEP_NEXT)
				schedule(a);
			return;
		}
		log_notice("actions: change %" PRId64 " transport: the restart issued before the crash "
			   "did not happen (InvocationID unchanged): issuing it now", p->change_id);
	}
	if (issue_job(a, p, now_id) == STEP_NEXT)
		schedule(a);
}

static enum step_outcome step_transport(struct actions *a, struct pending *p)
{
	bool resuming, polling;
	int r;

	if (a->cfg->transport.action == TRANSPORT_NONE)
		return mark1(a, p, "skipped", "action = none");
	/* A restart recorded as issued by a process that died: find out
	 * whether it happened before doing it again. */
	resuming = a->cfg->transport.action == TRANSPORT_RESTART &&
		   !strncmp(p->detail, ISSUED_RESTART, strlen(ISSUED_RESTART)) &&
		   a->launched[STEP_TRANSPORT] != p->change_id;
	/* Looking again while the unit's job runs is not another attempt. */
	polling = resuming && a->polling == p->change_id;
	if (!polling) {
		a->job_polls = 0;
		if (bump_attempts(a, p, resuming ? NULL : "reading the unit") < 0) {
			arm_retry(a, RETRY_BASE_USEC);
			return STEP_WAIT;
		}
	}
	/* A reload leaves no evidence and needs none: repeated if interrupted. */
	if (a->cfg->transport.action == TRANSPORT_RELOAD)
		return issue_job(a, p, "");
	a->cur = *p;
	a->started_usec = clock_usec(CLOCK_MONOTONIC);
	a->resuming = resuming;
	r = transport_query(a->event, a->cfg->transport.bus, a->cfg->transport.unit,
			    QUERY_TIMEOUT_USEC, on_unit_read, a, &a->job);
	if (r < 0)
		return transport_failed(a, p, r);
	a->running = true;
	return STEP_WAIT;
}

/* ---- flush and hook: programs ---- */

static void on_exec_done(struct exec *x, const struct exec_outcome *o, void *ud)
{
	struct actions *a = ud;
	struct pending *p = &a->cur;
	double secs = (double)(clock_usec(CLOCK_MONOTONIC) - a->started_usec) / 1e6;
	bool ok = o->result == EXEC_EXITED && o->code == 0;
	const struct log_field f[] = {
		{ "REROUTER_ACTION", p->step },
		{ "REROUTER_STATE", p->new_state },
		{ "REROUTER_RESULT", ok ? "pass" : "fail" },
	};
	char what[128];

	(void)x;
	/* o lives in the exec, which is freed here. */
	exec_outcome_str(o, what, sizeof what);
	a->exec = exec_free(a->exec);
	a->running = false;
	log_fields(ok ? LOG_INFO : LOG_WARNING, f, "%s: %s after %.2fs", p->step, what, secs);
	/* Right after a restart the transport may not accept the flush yet
	 * (postqueue: "mail system is down"): try again. A hook that failed
	 * is not run twice. */
	if (!ok && p->kind == STEP_FLUSH) {
		char why[160];
		snprintf(why, sizeof why, "%s", what);
		if (attempt_failed(a, p, NULL, 0, why) == STEP_WAIT)
			return;
		schedule(a);
		return;
	}
	/* Not recorded yet: the retry only marks, the hook does not run twice. */
	if (mark1(a, p, ok ? "done" : "failed", "%s after %.2fs", what, secs) == STEP_WAIT)
		return;
	schedule(a);
}

/* The flush is simply run again after a crash (see the header); the hook is
 * recorded as starting, then started, and never run again. */
static enum step_outcome run_program(struct actions *a, struct pending *p, char *const *argv,
				     char *const *env, uint64_t timeout_usec)
{
	bool hook = p->kind == STEP_HOOK;
	char detail[64];
	const struct log_field f[] = {
		{ "REROUTER_ACTION", p->step },
		{ "REROUTER_STATE", p->new_state },
	};
	struct exec_params ep = {
		.argv = argv,
		.env_add = env,
		.timeout_usec = timeout_usec,
		.label = p->step,
		.fields = f,
		.n_fields = 2,
	};
	int r;

	if (bump_attempts(a, p, hook ? HOOK_STARTING : "running") < 0) {
		arm_retry(a, RETRY_BASE_USEC);
		return STEP_WAIT;
	}
	a->cur = *p;
	a->started_usec = clock_usec(CLOCK_MONOTONIC);
	if (hook)
		a->launched[STEP_HOOK] = p->change_id;
	r = exec_start(a->event, &ep, on_exec_done, a, &a->exec);
	if (r < 0) {
		char why[256];
		snprintf(why, sizeof why, "cannot start %s: %s", argv[0], strerror(-r));
		return attempt_failed(a, p, NULL, 0, why);
	}
	log_info("actions: change %" PRId64 ": %s started (%s, pid %d)", p->change_id, p->step,
		 argv[0], (int)exec_pid(a->exec));
	a->running = true;
	if (hook) {
		/* "starting" already keeps a crash from running it twice; this
		 * only says more. */
		snprintf(detail, sizeof detail, HOOK_STARTED "%d)", (int)exec_pid(a->exec));
		set_detail(a, p, detail);
		crash_point("hook-started");
	}
	return STEP_WAIT;
}

static enum step_outcome step_flush(struct actions *a, struct pending *p)
{
	char st[16];

	if (step_status(a, p->change_id, "transport", st, sizeof st) < 0) {
		arm_retry(a, RETRY_BASE_USEC);
		return STEP_WAIT;
	}
	if (strcmp(st, "done"))
		return mark1(a, p, "skipped", "no restart");
	if (a->cfg->transport.flush.n == 0)
		return mark1(a, p, "skipped", "no flush command");
	/* No record of a run before a crash is kept or needed: a second
	 * `postqueue -f` only asks Postfix to try its deferred mail once more. */
	return run_program(a, p, a->cfg->transport.flush.v, NULL, FLUSH_TIMEOUT_USEC);
}

static enum step_outcome step_hook(struct actions *a, struct pending *p)
{
	char e_state[32], e_prev[32], e_since[64];

	if (!a->cfg->hook.present || !a->cfg->hook.on_change || !a->cfg->hook.on_change[0])
		return mark1(a, p, "skipped", "no hook");
	/* Started by a process that died: it may have run, whole or in part.
	 * At most once (see the header). */
	if (a->launched[STEP_HOOK] != p->change_id &&
	    (!strcmp(p->detail, HOOK_STARTING) ||
	     !strncmp(p->detail, HOOK_STARTED, strlen(HOOK_STARTED)))) {
		const struct log_field f[] = { { "REROUTER_ACTION", "hook" },
					       { "REROUTER_STATE", p->new_state } };
		log_fields(LOG_WARNING, f,
			   "actions: change %" PRId64 " hook: %s when rerouterd stopped; "
			   "interrupted by a crash, not run again",
			   p->change_id, p->detail);
		return mark1(a, p, "failed", "interrupted by a crash of rerouterd; not run again");
	}
	snprintf(e_state, sizeof e_state, "REROUTER_STATE=%s", p->new_state);
	snprintf(e_prev, sizeof e_prev, "REROUTER_PREVIOUS=%s", p->old_state);
	snprintf(e_since, sizeof e_since, "REROUTER_SINCE=%s", p->at);
	char *const argv[] = { a->cfg->hook.on_change, p->new_state, p->old_state, NULL };
	char *const env[] = { e_state, e_prev, e_since, NULL };
	return run_program(a, p, argv, env, a->cfg->hook.timeout_usec);
}

/* ---- mail ---- */

static enum step_outcome step_mail(struct actions *a, struct pending *p)
{
	int r;

	if (!a->alerts)
		return mark1(a, p, "skipped", "no [mail]");
	if (bump_attempts(a, p, "queueing") < 0) {
		arm_retry(a, RETRY_BASE_USEC);
		return STEP_WAIT;
	}
	r = alerts_enqueue_change(a->alerts, p->change_id);
	if (r < 0) {
		char why[128];
		snprintf(why, sizeof why, "cannot queue the alert: %s", strerror(-r));
		return attempt_failed(a, p, NULL, 0, why);
	}
	return mark1(a, p, "done", "alert queued");
}

/* ---- the pipeline ---- */

static enum step_outcome run_step(struct actions *a, struct pending *p)
{
	/* A newer change sets the connectors anyway: doing this one's first
	 * would only restart the transport twice. Its hook and mail still run. */
	if (p->newer > 0 && (p->kind == STEP_CONNECTORS || p->kind == STEP_TRANSPORT ||
			     p->kind == STEP_FLUSH))
		return mark1(a, p, "skipped", "superseded by change %" PRId64, p->newer);
	switch (p->kind) {
	case STEP_CONNECTORS: return step_connectors(a, p);
	case STEP_TRANSPORT: return step_transport(a, p);
	case STEP_FLUSH: return step_flush(a, p);
	case STEP_HOOK: return step_hook(a, p);
	case STEP_MAIL: return step_mail(a, p);
	default:
		return mark1(a, p, "skipped", "unknown step");
	}
}

static int on_kick(sd_event_source *s, void *ud)
{
	struct actions *a = ud;
	struct pending p;

	(void)s;
	/* What an earlier try did but could not mark comes first. */
	if (write_unmarked(a) < 0)
		return 0;
	/* Bounded: every STEP_NEXT marked one more row, and a step that
	 * could not be marked returns STEP_WAIT. */
	for (int guard = 0; guard < 10000 && !a->running; guard++) {
		int r = load_next(a, &p);
		if (r < 0) {
			arm_retry(a, RETRY_BASE_USEC);
			return 0;
		}
		if (r == 0)
			return 0;
		if (run_step(a, &p) == STEP_WAIT)
			return 0;
	}
	/* Should not happen; if it does, the pending steps are not left
	 * waiting for the next change. */
	if (!a->running) {
		log_warnx("actions: step loop guard reached; continuing from a timer");
		arm_retry(a, RETRY_BASE_USEC);
	}
	return 0;
}

static void schedule(struct actions *a)
{
	int r;

	if (a->retry_src)
		sd_event_source_set_enabled(a->retry_src, SD_EVENT_OFF);
	r = sd_event_source_set_enabled(a->kick_src, SD_EVENT_ONESHOT);
	if (r < 0)
		log_err_errno(r, "actions: cannot schedule the steps");
}

int actions_new(sd_event *e, sqlite3 *state_db, const struct cfg *cfg, struct alerts *alerts,
		struct actions **ret)
{
	struct actions *a = calloc(1, sizeof *a);
	int r;

	if (!a)
		return -ENOMEM;
	a->event = sd_event_ref(e);
	a->db = state_db;
	a->cfg = cfg;
	a->alerts = alerts;
	r = sd_event_add_defer(e, &a->kick_src, on_kick, a);
	if (r < 0)
		goto fail;
	r = sd_event_source_set_enabled(a->kick_src, SD_EVENT_OFF);
	if (r < 0)
		goto fail;
	*ret = a;
	return 0;
fail:
	actions_free(a);
	return r;
}

void actions_set_config(struct actions *a, const struct cfg *cfg)
{
	a->cfg = cfg;
}

void actions_kick(struct actions *a)
{
	/* While a step runs its completion continues the pipeline; a retry
	 * that waits is cut short, since a newer change may supersede it. */
	if (!a->running)
		schedule(a);
}

int actions_busy(const struct actions *a)
{
	int on = SD_EVENT_OFF;

	if (a->running)
		return 1;
	if (a->retry_src && sd_event_source_get_enabled(a->retry_src, &on) >= 0 && on != SD_EVENT_OFF)
		return 1;
	if (sd_event_source_get_enabled(a->kick_src, &on) >= 0 && on != SD_EVENT_OFF)
		return 1;
	return 0;
}

struct actions *actions_free(struct actions *a)
{
	if (!a)
		return NULL;
	a->exec = exec_free(a->exec);
	a->job = transport_job_free(a->job);
	sd_event_source_disable_unref(a->kick_src);
	sd_event_source_disable_unref(a->retry_src);
	sd_event_unref(a->event);
	free(a);
	return NULL;
}
