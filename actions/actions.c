/* The actions of SPEC section 4. Routing (connectors, transport, flush) is
 * the reconciler's (actions/reconcile.c): it keeps the routes right for the
 * current state and marks a change's routing steps once they match. The
 * hook and the alert are events of a change, carried out here from a table
 * of step operations, in the order of the changes:
 *  - hook: once the change's routing steps are settled, or [mail] max_wait
 *    after the change, whichever comes first; AT MOST once. The step is
 *    marked launched (a typed column) before the fork; a start-up that finds
 *    a launched hook still pending does not run it again (an admin's hook may
 *    page someone or change routes) but marks it failed, "interrupted by a
 *    crash of rerouterd". A hook twice is the worse error.
 *  - mail: once every step before it is done, or max_wait after the change,
 *    with each step's outcome so far; alerts_enqueue_change() is idempotent
 *    per change, so the alert is queued exactly once.
 * A mark that cannot be written (the state database held by another writer,
 * or full) is kept in memory and retried from a timer before anything else,
 * so this process never runs a hook twice for want of a mark.
 *
 * Test only: RR_TEST_CRASH_AFTER_STEP=NAME kills the process with SIGKILL
 * right after the step NAME (hook, mail) was marked, and =hook-started right
 * after the hook's fork/exec. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/actions.h"
#include "actions/alert.h"
#include "actions/exec.h"
#include "agent/change.h"
#include "agent/clock.h"
#include "agent/db.h"
#include "agent/log.h"
#include "agent/timer.h"

#define RETRY_USEC (2 * USEC_PER_SEC)

struct pending {
	int64_t change_id;
	const struct step_ops *ops;
	int attempts;
	bool launched;           /* hook: forked (or about to be) by some process */
	int before;              /* steps of the change before this one still pending */
	char new_state[8], old_state[8];
	char at[40];
	uint64_t at_usec;
};

struct mark {
	const char *step, *status, *detail;
};

/* A mark that could not be written after the work was done. */
struct unmarked {
	bool valid;
	int64_t change_id;
	char step[16], status[16], detail[1200];
};

struct actions {
	sd_event *event;
	sqlite3 *db;
	const struct cfg *cfg;
	struct alerts *alerts;
	struct reconciler *routes;
	sd_event_source *kick_src, *retry_src, *deadline_src;
	struct exec *exec;       /* the hook in flight */
	struct pending cur;
	struct unmarked unmarked;
	int64_t launched_hook;   /* the change whose hook this process started */
	int64_t note_change;     /* its backup gate opened: the note is owed */
	uint64_t note_at_usec;   /* CLOCK_REALTIME: when it opened */
	uint64_t next_deadline;  /* CLOCK_REALTIME: the earliest max_wait a step waits for */
	uint64_t started_usec;
};

enum step_outcome { STEP_NEXT, STEP_WAIT };

struct step_ops {
	const char *name;
	enum change_step kind;
	enum step_outcome (*run)(struct actions *a, struct pending *p);
};

static void schedule(struct actions *a);
static enum step_outcome step_hook(struct actions *a, struct pending *p);
static enum step_outcome step_mail(struct actions *a, struct pending *p);

/* The events of a change, in their order; routing steps are the reconciler's. */
static const struct step_ops event_ops[] = {
	{ "hook", STEP_HOOK, step_hook },
	{ "mail", STEP_MAIL, step_mail },
};

/* ---- the state database ---- */

static int sql_err(struct actions *a, int rc, const char *what)
{
	log_errx("actions: state database: %s: %s", what, sqlite3_errmsg(a->db));
	return db_errno(rc);
}

static void text_col(sqlite3_stmt *st, int i, char *buf, size_t size)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	snprintf(buf, size, "%s", s ? (const char *)s : "");
}

/* The oldest pending row of ops' step: 1 with *p filled, 0 when none, or a
 * negative errno. */
static int load_next(struct actions *a, const struct step_ops *ops, struct pending *p)
{
	sqlite3_stmt *st = NULL;
	int rc, r;

	rc = sqlite3_prepare_v2(a->db,
				"SELECT s.change_id, s.attempts, s.launched, c.new_state, c.old_state, c.at, "
				"c.at_usec, (SELECT COUNT(*) FROM change_steps AS b WHERE b.change_id = c.id "
				"AND b.seq < s.seq AND b.status = 'pending') "
				"FROM change_steps AS s JOIN changes AS c ON c.id = s.change_id "
				"WHERE s.step = ?1 AND s.status = 'pending' ORDER BY s.change_id LIMIT 1",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return sql_err(a, rc, "reading pending steps");
	sqlite3_bind_text(st, 1, ops->name, -1, SQLITE_STATIC);
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
	p->ops = ops;
	p->change_id = sqlite3_column_int64(st, 0);
	p->attempts = sqlite3_column_int(st, 1);
	p->launched = sqlite3_column_int(st, 2) != 0;
	text_col(st, 3, p->new_state, sizeof p->new_state);
	text_col(st, 4, p->old_state, sizeof p->old_state);
	text_col(st, 5, p->at, sizeof p->at);
	p->at_usec = (uint64_t)sqlite3_column_int64(st, 6);
	p->before = sqlite3_column_int(st, 7);
	r = 1;
out:
	sqlite3_finalize(st);
	return r;
}

static void crash_point(const char *step)
{
	const char *c = getenv("RR_TEST_CRASH_AFTER_STEP");

	if (c && !strcmp(c, step)) {
		log_warnx("actions: RR_TEST_CRASH_AFTER_STEP=%s: killing myself (test only)", step);
		raise(SIGKILL);
	}
}

static int mark_step(struct actions *a, int64_t change_id, const struct mark *m)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	int rc;

	clock_format_utc(clock_usec(CLOCK_REALTIME), now, sizeof now);
	rc = sqlite3_prepare_v2(a->db,
				"UPDATE change_steps SET status = ?3, detail = ?4, updated_at = ?5 "
				"WHERE change_id = ?1 AND step = ?2 AND status = 'pending'",
				-1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, change_id);
		sqlite3_bind_text(st, 2, m->step, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, m->status, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, m->detail, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, now, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(a->db);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		return sql_err(a, rc, "marking a step");
	log_debug("actions: change %" PRId64 " %s: %s (%s)", change_id, m->step, m->status, m->detail);
	crash_point(m->step);
	return 0;
}

static void arm_retry(struct actions *a, uint64_t delay_usec);

/* STEP_NEXT once the mark is written, else it is kept, a retry is armed and
 * the pipeline waits. */
static enum step_outcome mark_or_wait(struct actions *a, int64_t change_id, const struct mark *m)
{
	struct unmarked *u = &a->unmarked;

	if (mark_step(a, change_id, m) == 0)
		return STEP_NEXT;
	u->valid = true;
	u->change_id = change_id;
	snprintf(u->step, sizeof u->step, "%s", m->step);
	snprintf(u->status, sizeof u->status, "%s", m->status);
	snprintf(u->detail, sizeof u->detail, "%s", m->detail);
	log_warnx("actions: change %" PRId64 " %s: %s, not yet recorded; retrying the mark", change_id,
		  m->step, m->status);
	arm_retry(a, RETRY_USEC);
	return STEP_WAIT;
}

static int write_unmarked(struct actions *a)
{
	struct unmarked *u = &a->unmarked;
	struct mark m = { u->step, u->status, u->detail };
	int r;

	if (!u->valid)
		return 0;
	if ((r = mark_step(a, u->change_id, &m)) < 0) {
		arm_retry(a, RETRY_USEC);
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
	struct mark m = { p->ops->name, status, detail };
	return mark_or_wait(a, p->change_id, &m);
}

/* Counted first, with what is about to happen, so a crash during it is
 * known at the next start. */
static int begin_attempt(struct actions *a, struct pending *p, bool launched, const char *detail)
{
	sqlite3_stmt *st = NULL;
	char now[32];
	int rc;

	clock_format_utc(clock_usec(CLOCK_REALTIME), now, sizeof now);
	rc = sqlite3_prepare_v2(a->db,
				"UPDATE change_steps SET attempts = attempts + 1, launched = ?3, detail = ?4, "
				"updated_at = ?5 WHERE change_id = ?1 AND step = ?2",
				-1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, p->change_id);
		sqlite3_bind_text(st, 2, p->ops->name, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, launched);
		sqlite3_bind_text(st, 4, detail, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, now, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(a->db);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		return sql_err(a, rc, "counting an attempt");
	p->attempts++;
	return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *ud)
{
	(void)s, (void)usec;
	schedule(ud);
	return 0;
}

static void arm_retry(struct actions *a, uint64_t delay_usec)
{
	int r = timer_oneshot_in(a->event, &a->retry_src, delay_usec, on_retry, a);

	if (r < 0)
		log_err_errno(r, "actions: cannot arm the retry timer");
}

/* max_wait after the change: the step goes, whatever is still pending. */
static void arm_deadline(struct actions *a, uint64_t at_usec)
{
	int r = timer_oneshot_at(a->event, &a->deadline_src, CLOCK_REALTIME, at_usec, 1000, on_retry, a);

	if (r < 0)
		log_err_errno(r, "actions: cannot arm the max_wait timer");
}

/* ---- hook ---- */

static void on_hook_done(struct exec *x, const struct exec_outcome *o, void *ud)
{
	struct actions *a = ud;
	struct pending *p = &a->cur;
	double secs = (double)(clock_usec(CLOCK_MONOTONIC) - a->started_usec) / 1e6;
	bool ok = o->result == EXEC_EXITED && o->code == 0;
	const struct log_field f[] = {
		{ "REROUTER_ACTION", "hook" },
		{ "REROUTER_STATE", p->new_state },
		{ "REROUTER_RESULT", ok ? "pass" : "fail" },
	};
	char what[128];

	(void)x;
	exec_outcome_str(o, what, sizeof what); /* o lives in the exec, freed here */
	a->exec = exec_free(a->exec);
	log_fields(ok ? LOG_INFO : LOG_WARNING, f, "hook: %s after %.2fs", what, secs);
	/* Not recorded yet: the retry only marks, the hook does not run twice. */
	if (mark1(a, p, ok ? "done" : "failed", "%s after %.2fs", what, secs) == STEP_WAIT)
		return;
	schedule(a);
}

/* "KEY=a,b,c" from a list of connector names (malloc'd). */
static char *env_list(const char *key, const struct cfg_list *l, bool empty)
{
	size_t len = strlen(key) + 2;
	for (size_t i = 0; !empty && i < l->n; i++)
		len += strlen(l->v[i]) + 1;
	char *s = malloc(len);
	if (!s)
		return NULL;
	size_t k = (size_t)snprintf(s, len, "%s=", key);
	for (size_t i = 0; !empty && i < l->n; i++)
		k += (size_t)snprintf(s + k, len - k, "%s%s", i ? "," : "", l->v[i]);
	return s;
}

/* The change's reason in one line, and whether its section was applied (not
 * with the backup gate closed). */
static void change_reason(struct actions *a, int64_t id, char *buf, size_t size, bool *applied)
{
	sqlite3_stmt *st = NULL;
	const char *reason = "runs";
	bool no_backup = false;

	if (sqlite3_prepare_v2(a->db, "SELECT reason, no_backup FROM changes WHERE id = ?1", -1, &st, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW) {
			const char *r = (const char *)sqlite3_column_text(st, 0);
			reason = r && !strcmp(r, "hold") ? "hold" : "runs";
			no_backup = sqlite3_column_int(st, 1) != 0;
		}
	}
	snprintf(buf, size, "REROUTER_REASON=%s%s",
		 !strcmp(reason, "hold") ? "pinned by rerouterctl hold" : "decided by the window's runs",
		 no_backup ? "; no backup path answered: nothing rewired" : "");
	sqlite3_finalize(st);
	*applied = !no_backup;
}

static enum step_outcome step_hook(struct actions *a, struct pending *p)
{
	char e_state[32], e_prev[32], e_since[64], e_id[48], e_reason[160];
	const struct log_field f[] = {
		{ "REROUTER_ACTION", "hook" },
		{ "REROUTER_STATE", p->new_state },
	};
	int r;

	if (!a->cfg->hook.present || !a->cfg->hook.on_change || !a->cfg->hook.on_change[0])
		return mark1(a, p, "skipped", "no hook");
	if (p->launched && a->launched_hook != p->change_id) {
		log_fields(LOG_WARNING, f,
			   "actions: change %" PRId64 " hook: started when rerouterd stopped; "
			   "interrupted by a crash, not run again",
			   p->change_id);
		return mark1(a, p, "failed", "interrupted by a crash of rerouterd; not run again");
	}
	/* No record, no hook: at most once. */
	if (begin_attempt(a, p, true, "starting") < 0) {
		arm_retry(a, RETRY_USEC);
		return STEP_WAIT;
	}
	snprintf(e_state, sizeof e_state, "REROUTER_STATE=%s", p->new_state);
	snprintf(e_prev, sizeof e_prev, "REROUTER_PREVIOUS=%s", p->old_state);
	snprintf(e_since, sizeof e_since, "REROUTER_SINCE=%s", p->at);
	snprintf(e_id, sizeof e_id, "REROUTER_CHANGE_ID=%" PRId64, p->change_id);
	bool applied;
	change_reason(a, p->change_id, e_reason, sizeof e_reason, &applied);
	const struct cfg_toggle *sec = !strcmp(p->new_state, "up") ? &a->cfg->on_up : &a->cfg->on_down;
	char *e_en = env_list("REROUTER_ENABLED", &sec->enable, !applied);
	char *e_dis = env_list("REROUTER_DISABLED", &sec->disable, !applied);
	char *const argv[] = { a->cfg->hook.on_change, p->new_state, p->old_state, NULL };
	char *const env[] = { e_state, e_prev, e_since, e_id, e_reason, e_en ? e_en : "REROUTER_ENABLED=",
			      e_dis ? e_dis : "REROUTER_DISABLED=", NULL };
	struct exec_params ep = {
		.argv = argv,
		.env_add = env,
		.timeout_usec = a->cfg->hook.timeout_usec,
		.label = "hook",
		.fields = f,
		.n_fields = 2,
	};
	a->cur = *p;
	a->started_usec = clock_usec(CLOCK_MONOTONIC);
	a->launched_hook = p->change_id;
	r = exec_start(a->event, &ep, on_hook_done, a, &a->exec);
	free(e_en);
	free(e_dis);
	if (r < 0) {
		log_fields(LOG_WARNING, f, "hook: cannot start %s: %s", argv[0], strerror(-r));
		return mark1(a, p, "failed", "cannot start %s: %s", argv[0], strerror(-r));
	}
	log_info("actions: change %" PRId64 ": hook started (%s, pid %d)", p->change_id, argv[0],
		 (int)exec_pid(a->exec));
	crash_point("hook-started");
	return STEP_WAIT;
}

/* ---- mail ---- */

static enum step_outcome step_mail(struct actions *a, struct pending *p)
{
	int r;

	if (!a->alerts)
		return mark1(a, p, "skipped", "no [mail]");
	r = alerts_enqueue_change(a->alerts, p->change_id);
	if (r < 0) {
		log_warn_errno(r, "actions: change %" PRId64 ": cannot queue the alert; retrying", p->change_id);
		arm_retry(a, RETRY_USEC);
		return STEP_WAIT;
	}
	return mark1(a, p, "done", p->before ? "alert queued at max_wait, with steps still pending" :
					       "alert queued");
}

/* ---- the pipeline ---- */

/* Runs what is due of one kind of step, oldest change first. */
static void run_ops(struct actions *a, const struct step_ops *ops)
{
	uint64_t wait = ops->kind == STEP_HOOK || a->cfg->mail.present ? a->cfg->mail.max_wait_usec : 0;
	struct pending p = { 0 };

	/* Bounded: each STEP_NEXT marked one more row. */
	for (int guard = 0; guard < 10000; guard++) {
		if (ops->kind == STEP_HOOK && a->exec)
			return; /* its end continues */
		int r = load_next(a, ops, &p);
		if (r < 0) {
			arm_retry(a, RETRY_USEC);
			return;
		}
		if (r == 0)
			return;
		/* A launched hook of a crashed process is settled at once. */
		bool due = p.before == 0 || clock_usec(CLOCK_REALTIME) >= p.at_usec + wait ||
			   (ops->kind == STEP_HOOK && p.launched);
		if (!due) {
			if (p.at_usec + wait < a->next_deadline)
				a->next_deadline = p.at_usec + wait;
			return;
		}
		if (ops->run(a, &p) == STEP_WAIT)
			return;
	}
}

/* The gate's note: when the routes settled on [on_down], or at max_wait
 * with what is still retried. Not persisted: a restart judges the gate again
 * and the alert queue keeps one note per change. */
static void run_note(struct actions *a)
{
	int64_t id = a->note_change;
	const char *applied = id > 0 ? reconcile_settled_down(a->routes, id) : NULL;
	uint64_t due = a->note_at_usec + a->cfg->mail.max_wait_usec;
	char pend[700];

	if (id <= 0)
		return;
	if (!a->alerts) {
		a->note_change = 0;
		return;
	}
	if (!applied && clock_usec(CLOCK_REALTIME) < due) {
		if (due < a->next_deadline)
			a->next_deadline = due;
		return;
	}
	if (!applied) {
		const char *p = reconcile_pending(a->routes);
		snprintf(pend, sizeof pend, "not yet applied at max_wait: %s", p ? p : "in progress");
		applied = pend;
	}
	int r = alerts_enqueue_note(a->alerts, id, applied);
	if (r < 0) {
		log_warn_errno(r, "actions: change %" PRId64 ": cannot queue the note; retrying", id);
		arm_retry(a, RETRY_USEC);
		return;
	}
	a->note_change = 0;
}

static int on_kick(sd_event_source *s, void *ud)
{
	struct actions *a = ud;

	(void)s;
	db_heal(a->db);
	/* What an earlier try did but could not mark comes first. */
	if (write_unmarked(a) < 0)
		return 0;
	a->next_deadline = UINT64_MAX;
	for (size_t i = 0; i < sizeof event_ops / sizeof event_ops[0]; i++)
		run_ops(a, &event_ops[i]);
	run_note(a);
	if (a->next_deadline != UINT64_MAX)
		arm_deadline(a, a->next_deadline);
	else if (a->deadline_src)
		sd_event_source_set_enabled(a->deadline_src, SD_EVENT_OFF);
	return 0;
}

static void schedule(struct actions *a)
{
	int r = sd_event_source_set_enabled(a->kick_src, SD_EVENT_ONESHOT);
	if (r < 0)
		log_err_errno(r, "actions: cannot schedule the steps");
}

static void on_routes_settled(int64_t change_id, void *ud)
{
	(void)change_id;
	schedule(ud);
}

int actions_new(sd_event *e, sqlite3 *state_db, const struct cfg *cfg, struct alerts *alerts,
		const char *changed_by, struct actions **ret)
{
	struct actions *a = calloc(1, sizeof *a);
	int r;

	if (!a)
		return -ENOMEM;
	a->event = sd_event_ref(e);
	a->db = state_db;
	a->cfg = cfg;
	a->alerts = alerts;
	if ((r = sd_event_add_defer(e, &a->kick_src, on_kick, a)) < 0 ||
	    (r = sd_event_source_set_enabled(a->kick_src, SD_EVENT_OFF)) < 0 ||
	    (r = reconcile_new(e, state_db, cfg, changed_by, on_routes_settled, a, &a->routes)) < 0)
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
	reconcile_set_config(a->routes, cfg);
}

void actions_set_target(struct actions *a, enum route_target t, int64_t change_id)
{
	reconcile_set_target(a->routes, t, change_id);
}

void actions_reconcile(struct actions *a)
{
	reconcile_now(a->routes);
	schedule(a);
}

void actions_kick(struct actions *a)
{
	schedule(a);
}

void actions_note_gate(struct actions *a, int64_t change_id)
{
	a->note_change = change_id;
	a->note_at_usec = clock_usec(CLOCK_REALTIME);
	schedule(a);
}

const char *actions_pending(const struct actions *a)
{
	return reconcile_pending(a->routes);
}

int actions_busy(const struct actions *a)
{
	int on = SD_EVENT_OFF;

	if (a->exec || a->unmarked.valid || reconcile_busy(a->routes))
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
	a->routes = reconcile_free(a->routes);
	sd_event_source_disable_unref(a->kick_src);
	sd_event_source_disable_unref(a->retry_src);
	sd_event_source_disable_unref(a->deadline_src);
	sd_event_unref(a->event);
	free(a);
	return NULL;
}
