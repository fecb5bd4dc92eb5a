/* The routing controller. One pass: connectors (the difference between the
 * target's section and the transport database, applied in one transaction),
 * then the transport restart or reload if the database really changed, then
 * the flush. A failed step ends the pass; the whole pass is tried again with
 * a backoff (2 s doubling, at most 60 s), so nothing is left half done for
 * good. The pass after every run finds what somebody else changed (drift)
 * and corrects it.
 *
 * What is owed survives a crash in the state database's routing row: the
 * intent "restart owed" is written before the connectors are applied, and
 * before a restart is issued the unit's InvocationID is recorded. A start-up
 * that finds a restart issued by a process that died compares the
 * InvocationID: changed and the unit running means the restart happened, so
 * it is not repeated; unchanged means it never reached systemd and is issued
 * now (exactly once either way). A reload leaves no such evidence and needs
 * none: an interrupted one is repeated, which is harmless, as is a second
 * flush. Routing goes before bookkeeping: when the state database cannot be
 * written, the pass goes on from memory (a crash then may repeat a restart).
 *
 * Test only: RR_TEST_CRASH_AFTER_STEP=transport-recorded kills the process
 * right after the restart was recorded as being issued, =transport-issued
 * right after systemd accepted the job, =connectors right after the
 * connectors' commit. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/connectors.h"
#include "actions/exec.h"
#include "actions/reconcile.h"
#include "actions/transport.h"
#include "agent/clock.h"
#include "agent/db.h"
#include "agent/log.h"
#include "agent/timer.h"

#define RETRY_BASE_USEC (2 * USEC_PER_SEC)
#define RETRY_MAX_USEC (60 * USEC_PER_SEC)
#define RELOG_USEC (3600 * USEC_PER_SEC)
#define TRANSPORT_TIMEOUT_USEC (120 * USEC_PER_SEC)
#define FLUSH_TIMEOUT_USEC (60 * USEC_PER_SEC)
#define QUERY_TIMEOUT_USEC (30 * USEC_PER_SEC)
/* A restart issued before a crash may still run: look again this often. */
#define JOB_POLL_USEC (500 * 1000)
#define JOB_POLL_MAX 240
/* On the loop: another writer of the transport database costs at most this. */
#define LOOP_BUSY_TIMEOUT_MSEC 250

struct reconciler {
	sd_event *e;
	sqlite3 *db;
	const struct cfg *cfg;
	const char *changed_by;
	reconcile_settled_fn settled_cb;
	void *ud;
	sd_event_source *defer, *retry;

	enum route_target target;
	int64_t change_id;
	/* The last pass that ended with everything done. */
	bool settled;
	enum route_target settled_target;
	int64_t settled_change;

	/* Owed work; a copy of the routing row, written when it changes. */
	bool restart_owed, flush_owed;
	int64_t owed_change;
	char issued[40]; /* the unit's InvocationID before a restart being issued */
	bool have_issued, issued_by_us;

	/* What the pass did for the current change, for its steps' details. */
	char d_conn[600], d_transport[300], d_flush[200];
	int64_t marks_owed; /* a change whose routing steps wait for their marks */

	struct transport_job *job;
	struct exec *exec;
	bool compare_only; /* a run came while a restart or flush waits for its backoff */
	bool resuming;
	int polls;
	uint64_t started_usec;

	unsigned attempts;
	char pending[512];
	uint64_t pending_since;
	char logged[640];
	uint64_t logged_usec;
};

/* ---- pure parts ---- */

uint64_t reconcile_backoff_usec(unsigned failed_attempts)
{
	uint64_t d = RETRY_BASE_USEC;

	for (unsigned i = 1; i < failed_attempts && d < RETRY_MAX_USEC; i++)
		d *= 2;
	return d < RETRY_MAX_USEC ? d : RETRY_MAX_USEC;
}

bool reconcile_should_log(const char *last_logged, uint64_t last_logged_usec, const char *error,
			  uint64_t now_usec)
{
	if (!last_logged || strcmp(last_logged, error))
		return true;
	return now_usec >= last_logged_usec + RELOG_USEC;
}

bool reconcile_is_drift(bool settled, enum route_target settled_target, int64_t settled_change,
			enum route_target target, int64_t change_id)
{
	return settled && settled_target == target && settled_change == change_id;
}

/* ---- bookkeeping (best effort: routing never waits for it) ---- */

static void crash_point(const char *step)
{
	const char *c = getenv("RR_TEST_CRASH_AFTER_STEP");

	if (c && !strcmp(c, step)) {
		log_warnx("routing: RR_TEST_CRASH_AFTER_STEP=%s: killing myself (test only)", step);
		raise(SIGKILL);
	}
}

static int save_row(struct reconciler *r)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(r->db,
				"UPDATE routing SET restart_owed = ?1, flush_owed = ?2, change_id = ?3, "
				"issued_invocation = ?4, pending_step = ?5, pending_error = ?6, "
				"pending_since_usec = ?7, attempts = ?8 WHERE id = 1",
				-1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int(st, 1, r->restart_owed);
		sqlite3_bind_int(st, 2, r->flush_owed);
		if (r->owed_change > 0)
			sqlite3_bind_int64(st, 3, r->owed_change);
		if (r->have_issued)
			sqlite3_bind_text(st, 4, r->issued, -1, SQLITE_STATIC);
		if (r->pending[0]) {
			const char *colon = strchr(r->pending, ':');
			sqlite3_bind_text(st, 5, r->pending, colon ? (int)(colon - r->pending) : -1,
					  SQLITE_STATIC);
			sqlite3_bind_text(st, 6, colon ? colon + 2 : "", -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 7, (int64_t)r->pending_since);
		}
		sqlite3_bind_int(st, 8, (int)r->attempts);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_debug("routing: cannot record what is owed: %s", sqlite3_errmsg(r->db));
		return db_errno(rc);
	}
	return 0;
}

static int load_row(struct reconciler *r)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(r->db,
				"SELECT restart_owed, flush_owed, change_id, issued_invocation FROM routing "
				"WHERE id = 1",
				-1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		r->restart_owed = sqlite3_column_int(st, 0) != 0;
		r->flush_owed = sqlite3_column_int(st, 1) != 0;
		r->owed_change = sqlite3_column_int64(st, 2);
		if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
			snprintf(r->issued, sizeof r->issued, "%s", (const char *)sqlite3_column_text(st, 3));
			r->have_issued = true;
		}
		rc = SQLITE_DONE;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

/* Marks the routing steps of one change (only rows still pending; a NULL
 * status leaves that row alone). */
static int mark_change(struct reconciler *r, int64_t change_id, const char *const st3[3],
		       const char *const d3[3])
{
	static const char *const steps[3] = { "connectors", "transport", "flush" };
	sqlite3_stmt *st = NULL;
	char now[32];
	int rc;

	clock_format_utc(clock_usec(CLOCK_REALTIME), now, sizeof now);
	db_heal(r->db);
	if (sqlite3_exec(r->db, "SAVEPOINT routing_mark", NULL, NULL, NULL) != SQLITE_OK)
		return db_errno(sqlite3_errcode(r->db));
	rc = sqlite3_prepare_v2(r->db,
				"UPDATE change_steps SET status = ?3, detail = ?4, updated_at = ?5, "
				"attempts = CASE WHEN ?3 = 'done' THEN ?6 ELSE attempts END "
				"WHERE change_id = ?1 AND step = ?2 AND status = 'pending'",
				-1, &st, NULL);
	for (int i = 0; i < 3 && rc == SQLITE_OK; i++) {
		if (!st3[i])
			continue;
		sqlite3_reset(st);
		sqlite3_bind_int(st, 6, (int)r->attempts + 1);
		sqlite3_bind_int64(st, 1, change_id);
		sqlite3_bind_text(st, 2, steps[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, st3[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, d3[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, now, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(r->db);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(r->db, "RELEASE routing_mark", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_exec(r->db, "ROLLBACK TO routing_mark; RELEASE routing_mark", NULL, NULL, NULL);
		db_heal(r->db); /* a failed outermost RELEASE (the commit) leaves it open */
		return db_errno(rc);
	}
	return 0;
}

/* Older changes whose routing never settled: a newer change took over. */
static int mark_superseded(struct reconciler *r, int64_t change_id)
{
	sqlite3_stmt *st = NULL;
	char detail[64];
	int rc;

	snprintf(detail, sizeof detail, "superseded by change %" PRId64, change_id);
	rc = sqlite3_prepare_v2(r->db,
				"UPDATE change_steps SET status = 'skipped', detail = ?2 WHERE change_id < ?1 "
				"AND step IN ('connectors', 'transport', 'flush') AND status = 'pending'",
				-1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, change_id);
		sqlite3_bind_text(st, 2, detail, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_errno(rc);
}

/* While a step is retried, the change's pending rows say why (the alert and
 * rerouterctl status show them). */
static void note_pending(struct reconciler *r, uint64_t retry_usec)
{
	sqlite3_stmt *st = NULL;
	char detail[700];

	if (r->change_id <= 0)
		return;
	snprintf(detail, sizeof detail, "attempt %u: %s; retrying in %llus", r->attempts, r->pending,
		 (unsigned long long)(retry_usec / USEC_PER_SEC));
	if (sqlite3_prepare_v2(r->db,
			       "UPDATE change_steps SET detail = ?2, attempts = ?3 WHERE change_id = ?1 "
			       "AND step IN ('connectors', 'transport', 'flush') AND status = 'pending'",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, r->change_id);
		sqlite3_bind_text(st, 2, detail, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, (int)r->attempts);
		sqlite3_step(st);
	}
	sqlite3_finalize(st);
}

/* ---- the pass ---- */

static void pass(struct reconciler *r);
static void write_marks(struct reconciler *r, bool settled);

static void schedule(struct reconciler *r)
{
	r->compare_only = false; /* a whole pass, now */
	if (r->retry)
		sd_event_source_set_enabled(r->retry, SD_EVENT_OFF);
	if (sd_event_source_set_enabled(r->defer, SD_EVENT_ONESHOT) < 0)
		log_errx("routing: cannot schedule a pass");
}

static int on_defer(sd_event_source *s, void *ud)
{
	(void)s;
	pass(ud);
	return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *ud)
{
	(void)s, (void)usec;
	pass(ud);
	return 0;
}

static void arm_retry(struct reconciler *r, uint64_t delay_usec)
{
	int rc = timer_oneshot_in(r->e, &r->retry, delay_usec, on_retry, r);

	if (rc < 0)
		log_err_errno(rc, "routing: cannot arm the retry timer");
}

/* A step could not be done: the pass is tried again after the backoff. */
static void __attribute__((format(printf, 2, 3))) fail(struct reconciler *r, const char *fmt, ...)
{
	uint64_t now = clock_usec(CLOCK_REALTIME);
	char why[sizeof r->pending];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (!r->pending[0])
		r->pending_since = now;
	snprintf(r->pending, sizeof r->pending, "%s", why);
	r->attempts++;
	uint64_t d = reconcile_backoff_usec(r->attempts);
	if (reconcile_should_log(r->logged, r->logged_usec, why, now)) {
		log_warnx("routing: %s; retrying (every %llus at most) for as long as it lasts", why,
			  (unsigned long long)(RETRY_MAX_USEC / USEC_PER_SEC));
		snprintf(r->logged, sizeof r->logged, "%s", why);
		r->logged_usec = now;
	} else
		log_debug("routing: attempt %u: %s", r->attempts, why);
	save_row(r);
	note_pending(r, d);
	arm_retry(r, d);
}

static const char *section_name(enum route_target t)
{
	return t == ROUTE_UP ? "[on_up]" : "[on_down]";
}

struct conn_log {
	struct reconciler *r;
	bool drift;
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
		{ "REROUTER_STATE", l->r->target == ROUTE_UP ? "up" : "down" },
	};

	if (l->drift)
		log_fields(LOG_WARNING, f, "drift: connector %s was %s outside rerouterd; %s again", name,
			   enabled ? "disabled" : "enabled", enabled ? "enabled" : "disabled");
	else
		log_fields(LOG_NOTICE, f, "connector %s %s", name, enabled ? "enabled" : "disabled");
	append(l->changed, sizeof l->changed, "%s%s %s", l->changed[0] ? ", " : "",
	       enabled ? "enabled" : "disabled", name);
}

static void record_drift(struct reconciler *r, const char *what)
{
	sqlite3_stmt *st = NULL;
	uint64_t now = clock_usec(CLOCK_REALTIME);
	char at[32];

	clock_format_utc(now, at, sizeof at);
	if (sqlite3_prepare_v2(r->db,
			       "INSERT INTO events (at, at_usec, kind, subject, detail, changed_by) "
			       "VALUES (?1, ?2, 'drift', ?3, ?4, ?5)",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, at, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)now);
		sqlite3_bind_text(st, 3, r->target == ROUTE_UP ? "up" : "down", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, what, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, r->changed_by, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			log_debug("routing: cannot record the drift: %s", sqlite3_errmsg(r->db));
	}
	sqlite3_finalize(st);
}

static int open_transport_db(struct reconciler *r, sqlite3 **tdb)
{
	const char *path = r->cfg->transport.database;
	int k = conn_open(path, 0, LOOP_BUSY_TIMEOUT_MSEC, tdb);

	if (k == 0)
		k = conn_prepare_writer(*tdb, path);
	if (k == -ESTALE) /* an older schema: migrate it (a backup copy first) */
		k = conn_init(*tdb, path);
	return k;
}

/* 0: the connectors match (maybe after applying); -1: failed (retry armed). */
static int step_connectors(struct reconciler *r)
{
	const struct cfg_toggle *t = r->target == ROUTE_UP ? &r->cfg->on_up : &r->cfg->on_down;
	struct conn_set *v = NULL;
	sqlite3 *tdb = NULL;
	size_t n = 0;
	int k, diff = 0;

	if (r->target == ROUTE_NONE)
		return 0;
	if (!t->present || t->enable.n + t->disable.n == 0) {
		snprintf(r->d_conn, sizeof r->d_conn, "nothing to change: no %s", section_name(r->target));
		return 0;
	}
	if ((k = conn_set_from_toggle(t, &v, &n)) < 0 || (k = open_transport_db(r, &tdb)) < 0 ||
	    (diff = conn_diff(tdb, v, n)) < 0) {
		if (k >= 0)
			k = diff;
		fail(r, "connectors: %s: %s", r->cfg->transport.database,
		     k == -EBUSY ? "held by another writer" : strerror(-k));
		goto out;
	}
	struct conn_log l = { .r = r };
	struct conn_report rep = { on_conn_missing, on_conn_changed, &l };
	if (diff > 0) {
		l.drift = reconcile_is_drift(r->settled, r->settled_target, r->settled_change, r->target,
					     r->change_id);
		/* The intent first: a crash after the commit still owes the restart. */
		r->restart_owed = r->flush_owed = true;
		r->owed_change = l.drift ? 0 : r->change_id;
		save_row(r);
	}
	/* No write transaction when nothing differs: a writer's locks are what
	 * Postfix's sqlite map reader (no busy timeout, fatal on SQLITE_BUSY)
	 * can trip over. */
	k = diff > 0 ? conn_apply(tdb, v, n, r->changed_by, 1, &rep) : 0;
	if (k < 0) {
		fail(r, "connectors: %s: %s", r->cfg->transport.database,
		     k == -EBUSY ? "held by another writer" : strerror(-k));
		goto out;
	}
	bool applied = k > 0;
	if (l.missing[0]) {
		/* Reported, not retried: only the administrator can add them. */
		char why[600];
		snprintf(why, sizeof why, "connectors named in %s but missing from %s: %s",
			 section_name(r->target), r->cfg->transport.database, l.missing);
		if (reconcile_should_log(r->logged, r->logged_usec, why, clock_usec(CLOCK_REALTIME))) {
			log_errx("routing: %s", why);
			snprintf(r->logged, sizeof r->logged, "%s", why);
			r->logged_usec = clock_usec(CLOCK_REALTIME);
		}
	}
	if (l.drift && l.changed[0]) {
		char what[600];
		snprintf(what, sizeof what, "corrected: %s", l.changed);
		record_drift(r, what);
	}
	if (l.changed[0] && !l.drift)
		snprintf(r->d_conn, sizeof r->d_conn, "%s", l.changed);
	else if (!r->d_conn[0] && r->restart_owed && r->owed_change == r->change_id && r->change_id > 0)
		snprintf(r->d_conn, sizeof r->d_conn, "set before rerouterd stopped");
	else if (!r->d_conn[0])
		snprintf(r->d_conn, sizeof r->d_conn, "already set");
	if (l.missing[0] && !strstr(r->d_conn, "; missing from"))
		append(r->d_conn, sizeof r->d_conn, "; missing from the database: %s", l.missing);
	if (applied) {
		write_marks(r, false);
		crash_point("connectors");
	}
	k = 0;
out:
	sqlite3_close(tdb);
	free(v);
	return k < 0 ? -1 : 0;
}

static const char *verb(const struct reconciler *r)
{
	return r->cfg->transport.action == TRANSPORT_RELOAD ? "reload" : "restart";
}

static const char *bus_name(const struct reconciler *r)
{
	return r->cfg->transport.bus == BUS_USER ? "user" : "system";
}

static void on_transport_done(struct transport_job *j, bool ok, const char *result, void *ud)
{
	struct reconciler *r = ud;
	double secs = (double)(clock_usec(CLOCK_MONOTONIC) - r->started_usec) / 1e6;
	const struct log_field f[] = {
		{ "REROUTER_ACTION", verb(r) },
		{ "REROUTER_RESULT", ok ? "pass" : "fail" },
	};
	char res[256];

	(void)j;
	snprintf(res, sizeof res, "%s", result); /* result lives in the job */
	r->job = transport_job_free(r->job);
	log_fields(ok ? LOG_NOTICE : LOG_WARNING, f, "transport: %s %s: job %s (%.2fs)", verb(r),
		   r->cfg->transport.unit, res, secs);
	if (!ok) {
		fail(r, "transport: %s %s: job %s", verb(r), r->cfg->transport.unit, res);
		return;
	}
	snprintf(r->d_transport, sizeof r->d_transport, "%s %s: %s in %.2fs", verb(r),
		 r->cfg->transport.unit, res, secs);
	r->restart_owed = false;
	r->have_issued = r->issued_by_us = false;
	save_row(r);
	write_marks(r, false);
	crash_point("transport");
	schedule(r);
}

static void on_transport_queued(struct transport_job *j, const char *path, void *ud)
{
	(void)j, (void)path, (void)ud;
	crash_point("transport-issued"); /* systemd has the job: it runs even if we die now */
}

static void issue_job(struct reconciler *r, const char *invocation_id)
{
	int k;

	if (r->cfg->transport.action == TRANSPORT_RESTART) {
		/* No record, no job: a crash must find out what was issued. If the
		 * database refuses it, routing goes first (a crash may then repeat
		 * the restart). */
		snprintf(r->issued, sizeof r->issued, "%s", invocation_id[0] ? invocation_id : "none");
		r->have_issued = r->issued_by_us = true;
		save_row(r);
		crash_point("transport-recorded");
	}
	r->started_usec = clock_usec(CLOCK_MONOTONIC);
	k = transport_start(r->e, r->cfg->transport.bus, r->cfg->transport.unit, r->cfg->transport.action,
			    TRANSPORT_TIMEOUT_USEC, on_transport_done, r, &r->job);
	if (k < 0) {
		fail(r, "transport: %s %s: %s bus: %s", verb(r), r->cfg->transport.unit, bus_name(r),
		     strerror(-k));
		return;
	}
	transport_job_on_queued(r->job, on_transport_queued);
}

/* A restart recorded as issued by a process that died: did it happen? */
static void resume_restart(struct reconciler *r, const struct transport_unit_info *info)
{
	const char *was = strcmp(r->issued, "none") ? r->issued : "";
	bool running = !strcmp(info->active_state, "active") || !strcmp(info->active_state, "reloading");

	if (strcmp(info->invocation_id, was) && running) {
		log_notice("transport: %s was restarted before rerouterd stopped (InvocationID %s -> %s): "
			   "not restarted again",
			   r->cfg->transport.unit, was[0] ? was : "none", info->invocation_id);
		snprintf(r->d_transport, sizeof r->d_transport,
			 "restarted before a crash of rerouterd (InvocationID %s -> %s)", was[0] ? was : "none",
			 info->invocation_id);
		r->restart_owed = false;
		r->have_issued = false;
		save_row(r);
		schedule(r);
		return;
	}
	if (strcmp(info->invocation_id, was)) {
		r->have_issued = false; /* that attempt is over: the next one is ours */
		fail(r, "transport: restart %s before a crash of rerouterd: unit %s", r->cfg->transport.unit,
		     info->active_state);
		return;
	}
	log_notice("transport: the restart issued before rerouterd stopped did not happen "
		   "(InvocationID unchanged): issuing it now");
	issue_job(r, info->invocation_id);
}

static void on_unit_read(struct transport_job *j, const struct transport_unit_info *info_in,
			 const char *why_in, void *ud)
{
	struct reconciler *r = ud;
	struct transport_unit_info info;
	char why[300];
	bool ok = info_in != NULL;

	(void)j;
	/* info_in and why_in live in the job, which is freed here. */
	if (ok)
		info = *info_in;
	else
		snprintf(why, sizeof why, "%s", why_in ? why_in : "?");
	r->job = transport_job_free(r->job);
	if (!ok) {
		fail(r, "transport: %s %s: %s (%s bus)", verb(r), r->cfg->transport.unit, why, bus_name(r));
		return;
	}
	if (r->resuming && info.job_id != 0 && r->polls++ < JOB_POLL_MAX) {
		/* Most likely that restart, still running. */
		arm_retry(r, JOB_POLL_USEC);
		return;
	}
	if (r->resuming) {
		r->resuming = false;
		resume_restart(r, &info);
		return;
	}
	issue_job(r, info.invocation_id);
}

/* 0: nothing owed; 1: a job runs (its end continues the pass); -1: failed. */
static int step_transport(struct reconciler *r)
{
	int k;

	if (!r->restart_owed)
		return 0;
	if (r->cfg->transport.action == TRANSPORT_NONE) {
		snprintf(r->d_transport, sizeof r->d_transport, "action = none");
		r->restart_owed = false;
		save_row(r);
		return 0;
	}
	if (r->cfg->transport.action == TRANSPORT_RELOAD) {
		issue_job(r, "");
		return r->job ? 1 : -1;
	}
	/* Polling a restart of a crashed process is not another attempt. */
	bool polling = r->resuming;
	r->resuming = r->have_issued && !r->issued_by_us;
	if (!polling)
		r->polls = 0;
	k = transport_query(r->e, r->cfg->transport.bus, r->cfg->transport.unit, QUERY_TIMEOUT_USEC,
			    on_unit_read, r, &r->job);
	if (k < 0) {
		fail(r, "transport: %s %s: %s bus: %s", verb(r), r->cfg->transport.unit, bus_name(r),
		     strerror(-k));
		return -1;
	}
	return 1;
}

static void on_flush_done(struct exec *x, const struct exec_outcome *o, void *ud)
{
	struct reconciler *r = ud;
	double secs = (double)(clock_usec(CLOCK_MONOTONIC) - r->started_usec) / 1e6;
	bool ok = o->result == EXEC_EXITED && o->code == 0;
	const struct log_field f[] = {
		{ "REROUTER_ACTION", "flush" },
		{ "REROUTER_RESULT", ok ? "pass" : "fail" },
	};
	char what[128];

	(void)x;
	exec_outcome_str(o, what, sizeof what); /* o lives in the exec */
	r->exec = exec_free(r->exec);
	log_fields(ok ? LOG_INFO : LOG_WARNING, f, "flush: %s after %.2fs", what, secs);
	if (!ok) {
		/* Right after a restart Postfix may not take it yet ("mail
		 * system is down"): the backoff tries again. */
		fail(r, "flush: %s: %s", r->cfg->transport.flush.v[0], what);
		return;
	}
	snprintf(r->d_flush, sizeof r->d_flush, "%s after %.2fs", what, secs);
	r->flush_owed = false;
	save_row(r);
	write_marks(r, false);
	crash_point("flush");
	schedule(r);
}

/* 0: nothing owed; 1: running; -1: failed. */
static int step_flush(struct reconciler *r)
{
	const struct log_field f[] = { { "REROUTER_ACTION", "flush" } };
	struct exec_params ep = {
		.argv = r->cfg->transport.flush.v,
		.timeout_usec = FLUSH_TIMEOUT_USEC,
		.label = "flush",
		.fields = f,
		.n_fields = 1,
	};
	int k;

	if (!r->flush_owed)
		return 0;
	if (r->cfg->transport.flush.n == 0) {
		snprintf(r->d_flush, sizeof r->d_flush, "no flush command");
		r->flush_owed = false;
		save_row(r);
		return 0;
	}
	r->started_usec = clock_usec(CLOCK_MONOTONIC);
	k = exec_start(r->e, &ep, on_flush_done, r, &r->exec);
	if (k < 0) {
		fail(r, "flush: cannot start %s: %s", ep.argv[0], strerror(-k));
		return -1;
	}
	return 1;
}

/* The change's routing steps as far as they are known: all three when
 * settled, else only those done (the alert shows the others as pending).
 * A database that refuses keeps them owed: written at a later pass. */
static void write_marks(struct reconciler *r, bool settled)
{
	int64_t id = r->marks_owed;
	const char *st3[3] = { NULL, NULL, NULL }, *d3[3];

	if (id <= 0)
		return;
	if (settled && r->target == ROUTE_NONE) {
		st3[0] = st3[1] = st3[2] = "skipped";
		d3[0] = d3[1] = d3[2] = "no backup path answered: nothing rewired";
	} else {
		d3[0] = r->d_conn;
		d3[1] = r->d_transport[0] ? r->d_transport : "transport database unchanged";
		d3[2] = r->d_flush[0] ? r->d_flush : r->d_transport[0] ? "nothing to flush" :
			"transport database unchanged";
		if (r->d_conn[0])
			st3[0] = "done";
		if (r->d_transport[0] || settled)
			st3[1] = r->d_transport[0] && strcmp(r->d_transport, "action = none") ? "done" : "skipped";
		if (r->d_flush[0] || settled)
			st3[2] = r->d_flush[0] && strcmp(r->d_flush, "no flush command") ? "done" : "skipped";
	}
	int k = mark_change(r, id, st3, d3);
	if (k == 0 && settled)
		k = mark_superseded(r, id);
	if (k < 0) {
		log_debug("routing: record of change %" PRId64 " refused: %s", id, strerror(-k));
		if (reconcile_should_log(r->logged, r->logged_usec, "bookkeeping", clock_usec(CLOCK_REALTIME))) {
			log_warn_errno(k, "routing: cannot record the routing steps of change %" PRId64
				       " yet: kept in memory, written when the state database accepts it", id);
			snprintf(r->logged, sizeof r->logged, "bookkeeping");
			r->logged_usec = clock_usec(CLOCK_REALTIME);
		}
		if (settled)
			arm_retry(r, RETRY_BASE_USEC);
		return;
	}
	if (settled)
		r->marks_owed = 0;
}

static void pass(struct reconciler *r)
{
	if (r->job || r->exec)
		return; /* its end continues the pass */
	if (r->compare_only) {
		/* The connectors are compared at every run; a restart or flush that
		 * failed waits for its backoff (systemd's start limit, a mail system
		 * still down), whose timer stays armed. */
		r->compare_only = false;
		step_connectors(r);
		return;
	}
	/* Each step: 0 done (or nothing owed), else running or failed; a
	 * running step's end, or the retry, continues the pass. */
	if (step_connectors(r) < 0 || step_transport(r) != 0 || step_flush(r) != 0)
		return;
	if (r->pending[0])
		log_notice("routing: done after %u attempts (was: %s)", r->attempts + 1, r->pending);
	bool had = r->pending[0] || r->attempts;
	r->pending[0] = '\0';
	r->logged[0] = '\0';
	r->attempts = 0;
	if (had)
		save_row(r);
	r->settled = true;
	r->settled_target = r->target;
	r->settled_change = r->change_id;
	write_marks(r, true);
	if (r->settled_cb)
		r->settled_cb(r->change_id, r->ud);
}

/* ---- the interface ---- */

int reconcile_new(sd_event *e, sqlite3 *state_db, const struct cfg *cfg, const char *changed_by,
		  reconcile_settled_fn cb, void *ud, struct reconciler **ret)
{
	struct reconciler *r = calloc(1, sizeof *r);
	int k;

	if (!r)
		return -ENOMEM;
	r->e = sd_event_ref(e);
	r->db = state_db;
	r->cfg = cfg;
	r->changed_by = changed_by ? changed_by : "rerouterd";
	r->settled_cb = cb;
	r->ud = ud;
	if ((k = sd_event_add_defer(e, &r->defer, on_defer, r)) < 0 ||
	    (k = sd_event_source_set_enabled(r->defer, SD_EVENT_OFF)) < 0)
		goto fail;
	/* What a process before us owed (a database that cannot be read owes nothing we know of). */
	if ((k = load_row(r)) < 0)
		log_warn_errno(k, "routing: cannot read what is owed from the state database");
	if (r->restart_owed)
		log_notice("routing: a %s of %s is owed from before the last stop", verb(r),
			   cfg->transport.unit);
	*ret = r;
	return 0;
fail:
	reconcile_free(r);
	return k;
}

void reconcile_set_config(struct reconciler *r, const struct cfg *cfg)
{
	r->cfg = cfg;
	reconcile_now(r);
}

void reconcile_set_target(struct reconciler *r, enum route_target t, int64_t change_id)
{
	/* A change decided from memory, now recorded: what the passes did is its. */
	bool recorded = r->change_id == RECONCILE_UNRECORDED && change_id > 0;

	if (change_id != r->change_id && !recorded)
		r->d_conn[0] = r->d_transport[0] = r->d_flush[0] = '\0';
	if (change_id != r->change_id && change_id > 0)
		r->marks_owed = change_id;
	r->settled = r->settled && t == r->settled_target &&
		     (change_id == r->settled_change || recorded);
	if (recorded && r->settled)
		r->settled_change = change_id;
	r->target = t;
	r->change_id = change_id;
}

void reconcile_now(struct reconciler *r)
{
	int on = SD_EVENT_OFF;
	bool waiting = r->retry && sd_event_source_get_enabled(r->retry, &on) >= 0 && on != SD_EVENT_OFF;

	if (r->job || r->exec)
		return;
	/* Polling a crashed process's restart: let the poll continue. */
	if (r->resuming && waiting)
		return;
	/* A connectors step that failed is tried again at once (the lock may be
	 * gone); a failed restart or flush keeps its backoff. */
	if (waiting && (!strncmp(r->pending, "transport:", 10) || !strncmp(r->pending, "flush:", 6))) {
		r->compare_only = true;
		if (sd_event_source_set_enabled(r->defer, SD_EVENT_ONESHOT) < 0)
			log_errx("routing: cannot schedule a comparison");
		return;
	}
	schedule(r);
}

bool reconcile_busy(const struct reconciler *r)
{
	int on = SD_EVENT_OFF;

	if (r->job || r->exec || r->pending[0])
		return true;
	if (sd_event_source_get_enabled(r->defer, &on) >= 0 && on != SD_EVENT_OFF)
		return true;
	return r->restart_owed || r->flush_owed || r->marks_owed > 0;
}

const char *reconcile_pending(const struct reconciler *r)
{
	static char buf[sizeof r->pending + 96];
	char since[64];

	if (!r->pending[0])
		return NULL;
	clock_format_local(r->pending_since, since, sizeof since);
	snprintf(buf, sizeof buf, "%s (since %s, attempt %u)", r->pending, since, r->attempts);
	return buf;
}

const char *reconcile_settled_down(const struct reconciler *r, int64_t change_id)
{
	if (!r->settled || r->settled_target != ROUTE_DOWN || r->settled_change != change_id)
		return NULL;
	return r->d_conn[0] ? r->d_conn : "already set";
}

struct reconciler *reconcile_free(struct reconciler *r)
{
	if (!r)
		return NULL;
	r->exec = exec_free(r->exec);
	r->job = transport_job_free(r->job);
	sd_event_source_disable_unref(r->defer);
	sd_event_source_disable_unref(r->retry);
	sd_event_unref(r->e);
	free(r);
	return NULL;
}
