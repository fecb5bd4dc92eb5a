/* The daemon: one sd-event loop with a monotonic run timer (start to start),
 * a wall-clock timer at the next maintenance-window boundary, a watch for
 * clock sets (which move that boundary), signal sources for reload, stop and
 * wake-up (SIGUSR1: a run now, and a hold read again), and the watchdog.
 * Each run's results are voted on (agent/vote.c) and stored (agent/state.c);
 * after every run the routes the state wants are handed to the reconciler
 * (actions/reconcile.c). Routing goes before bookkeeping: a run or change
 * that the state database refuses is decided from memory, and the change is
 * recorded as soon as the database accepts writes again. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "agent/clock.h"
#include "agent/clockwatch.h"
#include "actions/actions.h"
#include "actions/alert.h"
#include "agent/agent.h"
#include "agent/linkwatch.h"
#include "agent/log.h"
#include "agent/metrics.h"
#include "agent/schedule.h"
#include "agent/state.h"
#include "agent/vote.h"
#include "agent/window.h"
#include "probes/probe.h"

/* Timers fire within a millisecond: sd-event's default slack (250 ms) is
 * longer than a short test interval. */
#define TIMER_ACCURACY_USEC 1000ULL
/* Changes decided while the state database refused writes, kept to be
 * recorded later; the run texts kept for their alert. */
#define BACKLOG_MAX 16
#define RUN_TEXTS 8
#define RELOG_USEC (3600 * USEC_PER_SEC)

struct unrecorded {
	struct state_change ch;
	char *runs_text;
};

struct daemon {
	sd_event *e;
	const char *cfg_path;
	struct cfg *cfg;          /* the configuration in force */
	struct cfg *retired;      /* an old one, alive while the run started with it runs */
	bool verbose;
	const char *changed_by;   /* rerouterd or rerouterd@NAME: on every write */
	sqlite3 *db;
	struct actions *actions;
	struct alerts *alerts;

	struct vote vote;
	uint64_t since_usec;      /* CLOCK_REALTIME: when the current state began */

	struct probe_run *run;    /* in flight, or NULL */
	const struct cfg *run_cfg;
	uint64_t run_start_mono;
	uint64_t run_start_real;
	bool run_due;             /* the next start came while a run was in flight */
	int last_start_error;     /* logged once until it changes */
	sd_event_source *run_timer;

	sd_event_source *mw_timer;
	sd_event_source *hb_timer; /* heartbeats through maintenance windows */
	struct clockwatch *clockwatch;
	struct linkwatch *linkwatch; /* [agent] watch_links; NULL: off */
	bool in_maintenance;
	char *mw_name;

	bool have_last;
	bool last_failed;
	unsigned last_link_failed, last_n_link;

	int64_t last_change_id;   /* the newest recorded change */
	bool gate_open;           /* DOWN: a backup path answered (or none is configured) */
	bool note_owed;           /* it opened while the change was not recorded yet */
	enum link_state hold;     /* the pinned state, LINK_UNKNOWN: no hold */
	uint64_t hold_until_usec; /* CLOCK_REALTIME; 0: until release */

	struct unrecorded backlog[BACKLOG_MAX];
	size_t n_backlog;
	char *run_texts[RUN_TEXTS]; /* the newest runs since the last change, oldest first */
	size_t n_run_texts;
	char store_error[256];    /* the last error storing a run, logged once an hour */
	uint64_t store_error_usec;
};

static void notify_status(struct daemon *d)
{
	char since[64], hold[48] = "", pend[600] = "";
	const char *p = d->actions ? actions_pending(d->actions) : NULL;
	const char *st = link_state_upper(d->vote.state);

	clock_format_local(d->since_usec, since, sizeof since);
	if (d->hold != LINK_UNKNOWN)
		snprintf(hold, sizeof hold, " (held %s)", link_state_str(d->hold));
	else if (d->vote.state == LINK_DOWN && !d->gate_open)
		snprintf(hold, sizeof hold, " (no backup path: nothing rewired)");
	if (p)
		snprintf(pend, sizeof pend, "; pending: %s", p);
	else if (d->n_backlog)
		snprintf(pend, sizeof pend, "; %zu change(s) not yet recorded", d->n_backlog);
	if (d->in_maintenance)
		sd_notifyf(false, "STATUS=maintenance window %s; link %s%s since %s%s", d->mw_name, st,
			   hold, since, pend);
	else if (d->have_last)
		sd_notifyf(false, "STATUS=link %s%s since %s, last run %u/%u passed%s", st, hold, since,
			   d->last_n_link - d->last_link_failed, d->last_n_link, pend);
	else
		sd_notifyf(false, "STATUS=link %s%s since %s, first run pending%s", st, hold, since, pend);
}

static void free_retired(struct daemon *d)
{
	if (d->retired && d->run_cfg != d->retired) {
		cfg_free(d->retired);
		d->retired = NULL;
	}
}

static void cancel_run(struct daemon *d)
{
	if (d->run) {
		probe_run_cancel(d->run);
		d->run = NULL;
		d->run_cfg = NULL;
	}
	d->run_due = false;
	free_retired(d);
}

static int arm_run_timer(struct daemon *d, uint64_t at_mono)
{
	int r = sd_event_source_set_time(d->run_timer, at_mono);
	if (r >= 0)
		r = sd_event_source_set_enabled(d->run_timer, SD_EVENT_ONESHOT);
	if (r < 0)
		log_err_errno(r, "cannot arm the run timer");
	return r;
}

/* speed (issue 12): the next start, interval or fast_interval after the last
 * start, as the window stands. */
static void schedule_next_run(struct daemon *d)
{
	const struct cfg *c = d->cfg;

	arm_run_timer(d, sched_next_start(&d->vote, d->run_start_mono, c->agent.interval_usec,
					  c->agent.fast_interval_usec));
}

static void start_run(struct daemon *d);
static void mw_update(struct daemon *d);
static void apply_watch_links(struct daemon *d, const struct cfg *c);
static void mw_enter(struct daemon *d, const struct cfg_window *w, bool discard);

static void log_check(const struct probe_result *r)
{
	const struct cfg_check *c = r->check;
	const char *res = probe_passed(r) ? "pass" : probe_failed(r) ? "fail" : "cancelled";
	struct log_field f[] = {
		{ "REROUTER_CHECK", c->name },
		{ "REROUTER_RESULT", res },
	};

	log_fields(LOG_INFO, f, "check %s (%s %s%s): %s%s%s, %llu ms", c->name, cfg_check_type_str(c->type),
		   c->target ? c->target : "", c->role == ROLE_BACKUP ? ", backup" : "", res,
		   probe_passed(r) ? "" : ": ",
		   probe_passed(r) ? "" : (r->reason[0] ? r->reason : probe_outcome_str(r->outcome)),
		   (unsigned long long)r->elapsed_ms);
}

static void log_change(const struct daemon *d, const struct state_change *ch, unsigned failed,
		       unsigned passed)
{
	char prev[64], why[160];
	struct log_field f[] = {
		{ "REROUTER_STATE", link_state_str(ch->new_state) },
		{ "REROUTER_PREVIOUS", link_state_str(ch->old_state) },
	};
	uint64_t held = ch->at_usec > ch->prev_since_usec ? ch->at_usec - ch->prev_since_usec : 0;

	clock_format_local(ch->prev_since_usec, prev, sizeof prev);
	if (ch->reason && !strcmp(ch->reason, "hold"))
		snprintf(why, sizeof why, "held by rerouterctl hold");
	else
		snprintf(why, sizeof why, "%u of the last %u runs %s", ch->new_state == LINK_DOWN ? failed : passed,
			 d->vote.p.runs, ch->new_state == LINK_DOWN ? "failed" : "passed");
	log_fields(ch->new_state == LINK_DOWN ? LOG_WARNING : LOG_NOTICE, f,
		   "state %s (was %s since %s, %llus): %s%s", link_state_upper(ch->new_state),
		   link_state_upper(ch->old_state), prev, (unsigned long long)(held / USEC_PER_SEC), why,
		   ch->no_backup ? "; no backup path answered: nothing is rewired" : "");
}

/* The routes the state wants, handed to the reconciler, which compares. */
static void update_routes(struct daemon *d)
{
	enum route_target t = ROUTE_NONE;
	int64_t id = d->n_backlog ? RECONCILE_UNRECORDED : d->last_change_id;

	if (d->vote.state == LINK_UP)
		t = ROUTE_UP;
	else if (d->vote.state == LINK_DOWN && (d->gate_open || d->hold == LINK_DOWN))
		t = ROUTE_DOWN;
	actions_set_target(d->actions, t, id);
	actions_reconcile(d->actions);
}

/* ---- run texts, for a change the database could not record ---- */

static void remember_run_text(struct daemon *d, uint64_t at, bool failed, unsigned link_failed,
			      unsigned n_link, const struct probe_result *res, size_t n)
{
	char when[64], *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	if (!f)
		return;
	clock_format_local(at, when, sizeof when);
	fprintf(f, "Run at %s: %s (%u of %u link checks failed)\n", when, failed ? "FAILED" : "PASSED",
		link_failed, n_link);
	for (size_t i = 0; i < n; i++) {
		const struct cfg_check *c = res[i].check;
		fprintf(f, "  %-20s %-4s %-30s %s%s  %s  %llu ms\n", c->name, cfg_check_type_str(c->type),
			c->target ? c->target : "", probe_passed(&res[i]) ? "pass" : "fail",
			c->role == ROLE_BACKUP ? " (backup)" : "",
			res[i].reason[0] ? res[i].reason : probe_outcome_str(res[i].outcome),
			(unsigned long long)res[i].elapsed_ms);
	}
	if (fclose(f) != 0) {
		free(text);
		return;
	}
	if (d->n_run_texts == RUN_TEXTS) {
		free(d->run_texts[0]);
		memmove(d->run_texts, d->run_texts + 1, (RUN_TEXTS - 1) * sizeof d->run_texts[0]);
		d->n_run_texts--;
	}
	d->run_texts[d->n_run_texts++] = text;
}

static void forget_run_texts(struct daemon *d)
{
	for (size_t i = 0; i < d->n_run_texts; i++)
		free(d->run_texts[i]);
	d->n_run_texts = 0;
}

static char *run_texts_joined(const struct daemon *d, unsigned last)
{
	char *text = NULL;
	size_t size = 0, from = d->n_run_texts > last ? d->n_run_texts - last : 0;
	FILE *f = open_memstream(&text, &size);

	if (!f)
		return NULL;
	fprintf(f, "(from memory: the state database did not accept the runs)\n");
	for (size_t i = from; i < d->n_run_texts; i++)
		fprintf(f, "%s%s", i > from ? "\n" : "", d->run_texts[i]);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* ---- the backlog of changes decided from memory ---- */

static void backlog_push(struct daemon *d, const struct state_change *ch, char *runs_text)
{
	if (d->n_backlog == BACKLOG_MAX) {
		/* A flapping link on a full disk: the oldest unrecorded change goes. */
		log_warnx("more than %d changes of state not recorded: the oldest is dropped", BACKLOG_MAX);
		free(d->backlog[0].runs_text);
		memmove(d->backlog, d->backlog + 1, (BACKLOG_MAX - 1) * sizeof d->backlog[0]);
		d->n_backlog--;
	}
	d->backlog[d->n_backlog].ch = *ch;
	d->backlog[d->n_backlog].runs_text = runs_text;
	d->backlog[d->n_backlog].ch.runs_text = runs_text ? runs_text : "(not recorded)\n";
	d->n_backlog++;
}

/* Records what was decided from memory, oldest first; false while the
 * database still refuses. */
static bool backlog_flush(struct daemon *d)
{
	int64_t id;

	while (d->n_backlog > 0) {
		struct unrecorded *u = &d->backlog[0];
		if (state_record_change(d->db, &u->ch, &id) < 0)
			return false;
		log_notice("change of state to %s (decided at %s) recorded now that the state database "
			   "accepts writes: change %" PRId64,
			   link_state_upper(u->ch.new_state), u->ch.runs_text ? "a run" : "?", id);
		d->last_change_id = id;
		free(u->runs_text);
		memmove(d->backlog, d->backlog + 1, (d->n_backlog - 1) * sizeof d->backlog[0]);
		d->n_backlog--;
		actions_kick(d->actions);
	}
	/* The note names its change: only now is there an id. */
	if (d->note_owed) {
		d->note_owed = false;
		actions_note_gate(d->actions, d->last_change_id);
	}
	return true;
}

static void store_failed(struct daemon *d, int r, bool change)
{
	uint64_t now = clock_usec(CLOCK_REALTIME);
	char why[256];

	snprintf(why, sizeof why, "%s", strerror(-r));
	if (strcmp(why, d->store_error) || now >= d->store_error_usec + RELOG_USEC) {
		log_err_errno(r, "cannot store the run%s in %s; deciding and rerouting from memory, "
			      "recorded when the database accepts writes again",
			      change ? " and the change of state" : "", d->cfg->agent.state_db);
		snprintf(d->store_error, sizeof d->store_error, "%s", why);
		d->store_error_usec = now;
	}
}

static void store_ok(struct daemon *d)
{
	if (d->store_error[0])
		log_notice("the state database %s accepts writes again", d->cfg->agent.state_db);
	d->store_error[0] = '\0';
}

/* ---- hold (rerouterctl hold/release, read from the state database) ---- */

static void start_run(struct daemon *d);

static void hold_change(struct daemon *d, enum link_state h)
{
	struct state_change ch = {
		.new_state = h,
		.old_state = d->vote.state,
		.at_usec = clock_usec(CLOCK_REALTIME),
		.prev_since_usec = d->since_usec,
		.reason = "hold",
		.runs_text = "The state was pinned by rerouterctl hold; the runs did not decide it.\n",
	};
	int64_t id;

	if (!backlog_flush(d) || state_record_change(d->db, &ch, &id) < 0) {
		store_failed(d, -EIO, true);
		backlog_push(d, &ch, strdup(ch.runs_text));
	} else
		d->last_change_id = id;
	log_change(d, &ch, 0, 0);
	vote_set_state(&d->vote, h);
	forget_run_texts(d);
	d->since_usec = ch.at_usec;
	d->gate_open = true;
	d->note_owed = false;
	actions_note_gate(d->actions, 0);
}

/* Reads the hold again (at start, on SIGUSR1, after every run) and acts on a
 * difference: a hold to the other state is a change of state. */
static void check_hold(struct daemon *d)
{
	struct state_saved s;
	uint64_t now = clock_usec(CLOCK_REALTIME);

	if (state_load(d->db, &s) < 0)
		return; /* cannot be read now: as it was */
	enum link_state h = s.hold;
	uint64_t until = s.hold_until_usec;
	state_saved_clear(&s);
	if (h != LINK_UNKNOWN && until && now >= until) {
		log_notice("the hold %s has expired", link_state_str(h));
		if (state_set_hold(d->db, LINK_UNKNOWN, 0, NULL) == 0)
			state_add_event(d->db, "release", link_state_str(h), "hold expired", d->changed_by);
		h = LINK_UNKNOWN;
	}
	d->hold_until_usec = until;
	if (h == d->hold)
		return;
	struct log_field f[] = { { "REROUTER_STATE", link_state_str(h == LINK_UNKNOWN ? d->vote.state : h) } };
	if (h == LINK_UNKNOWN) {
		log_fields(LOG_NOTICE, f, "hold released: the window decides from the next run");
		d->hold = LINK_UNKNOWN;
	} else {
		log_fields(LOG_NOTICE, f, "hold %s: probing goes on, only [%s] is enforced until release",
			   link_state_str(h), h == LINK_UP ? "on_up" : "on_down");
		d->hold = h;
		if (d->vote.state != h)
			hold_change(d, h);
	}
	update_routes(d);
	notify_status(d);
}

/* A window opened while this run was ending, before its timer came round:
 * the run was in flight at the opening and is discarded. */
static bool window_took_run(struct daemon *d)
{
	const struct cfg_window *w;
	time_t now_s = (time_t)(clock_usec(CLOCK_REALTIME) / USEC_PER_SEC);

	if (d->in_maintenance || !mwin_inside(d->cfg->windows, d->cfg->n_windows, now_s, &w))
		return false;
	mw_enter(d, w, true);
	d->run_cfg = NULL;
	free_retired(d);
	return true;
}

/* The run, and the change it decides, in one transaction; from memory when
 * the database refuses (routing goes before bookkeeping). */
static void record_run(struct daemon *d, const struct state_run *sr, const struct vote *next,
		       struct state_change *ch, bool change)
{
	int64_t change_id = 0;
	int r;

	/* What memory decided before comes first; runs are not stored out of order. */
	if (!backlog_flush(d))
		r = -EIO;
	else
		r = state_commit_run(d->db, sr, next->p.runs, change ? ch : NULL, &change_id);
	if (r < 0) {
		store_failed(d, r, change);
		if (change)
			backlog_push(d, ch, run_texts_joined(d, next->p.runs));
	} else {
		store_ok(d);
		if (change)
			d->last_change_id = change_id;
	}
}

static void after_change(struct daemon *d, const struct state_change *ch, unsigned wf, unsigned wp)
{
	log_change(d, ch, wf, wp);
	vote_commit_change(&d->vote);
	forget_run_texts(d);
	d->since_usec = ch->at_usec;
	d->gate_open = !ch->no_backup;
	/* A new change: its own alert says it all; an owed note is moot. */
	d->note_owed = false;
	actions_note_gate(d->actions, 0);
	actions_kick(d->actions);
}

/* The backup gate is judged at every run while DOWN. */
static void judge_gate(struct daemon *d, const struct probe_result *res, size_t n)
{
	if (d->vote.state != LINK_DOWN || d->gate_open || vote_no_backup(res, n))
		return;
	struct log_field f[] = { { "REROUTER_STATE", "down" } };
	log_fields(LOG_NOTICE, f, "a backup path answers again: [on_down] is applied");
	d->gate_open = true;
	state_add_event(d->db, "gate", "down", "a backup path answers: [on_down] applied", d->changed_by);
	/* Mailed as a note on the same change (SPEC section 2). */
	if (d->n_backlog)
		d->note_owed = true;
	else if (d->last_change_id > 0)
		actions_note_gate(d->actions, d->last_change_id);
}

static void on_run_done(struct probe_run *run, const struct probe_result *res, size_t n, void *userdata)
{
	struct daemon *d = userdata;
	bool verbose = d->verbose || d->cfg->log.verbose;
	uint64_t at = d->run_start_real;
	unsigned n_link = 0;

	(void)run;
	d->run = NULL;
	if (window_took_run(d))
		return;
	for (size_t i = 0; i < n; i++) {
		n_link += res[i].check->role == ROLE_LINK;
		if (verbose)
			log_check(&res[i]);
	}

	unsigned link_failed = vote_link_failures(res, n);
	bool failed = vote_run_failed(&d->vote.p, res, n);
	/* Vote on a copy: the change is recorded with the run, in one transaction. */
	struct vote next = d->vote;
	/* A hold pins the state: the window goes on, it decides nothing. */
	bool change = vote_add_run(&next, failed) && d->hold == LINK_UNKNOWN;
	unsigned wf, wp;
	vote_counts(&next, &wf, &wp);
	struct state_change ch = {
		.new_state = vote_decide(&next),
		.old_state = d->vote.state,
		.at_usec = clock_usec(CLOCK_REALTIME),
		.prev_since_usec = d->since_usec,
	};
	ch.no_backup = ch.new_state == LINK_DOWN && vote_no_backup(res, n);
	struct state_run sr = { .at_usec = at, .failed = failed, .link_failed = link_failed,
				.n_link = n_link, .results = res, .n_results = n };

	remember_run_text(d, at, failed, link_failed, n_link, res, n);
	record_run(d, &sr, &next, &ch, change);
	log_debug("run %s: %u of %u link checks failed; window %zu of %u: %u failed, %u passed",
		  failed ? "FAILED" : "PASSED", link_failed, n_link, next.n, next.p.runs, wf, wp);
	d->have_last = true;
	d->last_failed = failed;
	d->last_link_failed = link_failed;
	d->last_n_link = n_link;
	/* Routing goes before bookkeeping: memory moves on either way. */
	d->vote = next;
	if (change)
		after_change(d, &ch, wf, wp);
	else
		judge_gate(d, res, n);
	check_hold(d);
	update_routes(d);
	notify_status(d);
	metrics_after_run(d->cfg, d->db, &(struct metrics_run){
		.state = d->vote.state, .since_usec = d->since_usec, .hold = d->hold != LINK_UNKNOWN,
		.duration_usec = clock_usec(CLOCK_MONOTONIC) - d->run_start_mono, .failed = failed,
		.results = res, .n_results = n });

	d->run_cfg = NULL;
	free_retired(d);
	if (d->run_due) {
		/* The run overran the interval: the next one starts now. */
		d->run_due = false;
		start_run(d);
	} else if (!d->in_maintenance) {
		/* speed: the verdict may have made the window disagree (or agree again). */
		schedule_next_run(d);
	}
}

static void start_run(struct daemon *d)
{
	uint64_t mono = clock_usec(CLOCK_MONOTONIC);
	int r;

	/* The wall clock may have jumped into a window since the last boundary. */
	mw_update(d);
	if (d->in_maintenance || d->run)
		return;
	d->run_start_mono = mono;
	d->run_start_real = clock_usec(CLOCK_REALTIME);
	r = probe_run_start_early(d->e, d->cfg, on_run_done, d, &d->run);
	if (r < 0) {
		d->run = NULL;
		if (r != d->last_start_error)
			log_err_errno(r, "cannot start a run; retrying every interval");
		d->last_start_error = r;
	} else {
		d->run_cfg = d->cfg;
		d->last_start_error = 0;
	}
	schedule_next_run(d);
}

static int on_run_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct daemon *d = userdata;

	(void)s, (void)usec;
	if (d->run) {
		d->run_due = true;
		return 0;
	}
	start_run(d);
	return 0;
}

/* No runs in a maintenance window, but a sign of life every interval, so
 * that rerouterctl check can tell a window from a dead daemon. */
static void heartbeat_now(struct daemon *d)
{
	int r = state_heartbeat(d->db, clock_usec(CLOCK_REALTIME));
	if (r < 0)
		log_debug("cannot record a heartbeat: %s", strerror(-r));
	if (d->in_maintenance)
		sd_event_source_set_time(d->hb_timer, clock_usec(CLOCK_MONOTONIC) + d->cfg->agent.interval_usec);
	sd_event_source_set_enabled(d->hb_timer, d->in_maintenance ? SD_EVENT_ONESHOT : SD_EVENT_OFF);
}

static int on_hb_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)s, (void)usec;
	heartbeat_now(userdata);
	return 0;
}

/* discard: a run was in flight at the opening (d->run, or one that just
 * ended). */
static void mw_enter(struct daemon *d, const struct cfg_window *w, bool discard)
{
	free(d->mw_name);
	d->mw_name = strdup(w->name);
	d->in_maintenance = true;
	if (d->run || discard)
		log_notice("entering maintenance window %s: the run in flight is discarded, no runs until it ends",
			   w->name);
	else
		log_notice("entering maintenance window %s: no runs until it ends", w->name);
	cancel_run(d);
	sd_event_source_set_enabled(d->run_timer, SD_EVENT_OFF);
	heartbeat_now(d);
	notify_status(d);
}

static void mw_leave(struct daemon *d)
{
	int r;

	log_notice("leaving maintenance window %s: the decision window starts empty",
		   d->mw_name ? d->mw_name : "");
	d->in_maintenance = false;
	heartbeat_now(d);
	vote_clear(&d->vote);
	if ((r = state_clear_window(d->db)) < 0)
		log_err_errno(r, "cannot clear the stored window");
	notify_status(d);
}

/* Compare where the wall clock is now with where we think we are, act on a
 * difference, and arm the wall-clock timer at the next boundary. */
static void mw_update(struct daemon *d)
{
	time_t now = (time_t)(clock_usec(CLOCK_REALTIME) / USEC_PER_SEC);
	const struct cfg_window *w;
	bool inside = mwin_inside(d->cfg->windows, d->cfg->n_windows, now, &w);
	bool left = false;

	if (inside && !d->in_maintenance)
		mw_enter(d, w, false);
	else if (!inside && d->in_maintenance) {
		mw_leave(d);
		left = true;
	}

	time_t next = mwin_next_boundary(d->cfg->windows, d->cfg->n_windows, now);
	if (next == 0) {
		sd_event_source_set_enabled(d->mw_timer, SD_EVENT_OFF);
	} else {
		sd_event_source_set_time(d->mw_timer, (uint64_t)next * USEC_PER_SEC);
		sd_event_source_set_enabled(d->mw_timer, SD_EVENT_ONESHOT);
	}
	if (left)
		start_run(d);
}

static int on_mw_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)s, (void)usec;
	mw_update(userdata);
	return 0;
}

/* The wall clock was set. A step forward fires the wall-clock timer anyway,
 * but a step back leaves it at the old boundary, hours away: inside a window,
 * with the run timer off, nothing else would look at the clock. */
static void on_clock_set(void *userdata)
{
	struct daemon *d = userdata;
	char now[64];

	clock_format_local(clock_usec(CLOCK_REALTIME), now, sizeof now);
	log_info("the wall clock was set (now %s): maintenance windows are checked again", now);
	mw_update(d);
}

static void report_missing(const char *name, void *ud)
{
	const struct cfg *c = ud;
	struct log_field f[] = { { "REROUTER_CONNECTOR", name } };

	log_fields(LOG_WARNING, f, "connector '%s' is named in %s but missing from the transport database %s",
		   name, c->path ? c->path : "the configuration", c->transport.database);
}

static void check_connectors(const struct cfg *c)
{
	int r = actions_check_connectors(c, report_missing, (void *)c);
	if (r < 0 && (c->on_down.present || c->on_up.present))
		log_warn_errno(r, "cannot check the connectors in %s", c->transport.database);
}

static void log_what_is_off(const struct cfg *c)
{
	if (!c->mail.present)
		log_notice("no [mail] section: no alert mail is sent");
	if (!c->hook.present)
		log_info("no [hook] section: no hook is run");
	if (!c->on_down.present && !c->on_up.present)
		log_notice("no [on_down]/[on_up] sections: monitoring only, no connector is changed");
}

/* A reload: the runs of the window are judged again with the checks that
 * are still there and the new failed_checks, and the window read back. If
 * the database fails, the old verdicts stay under the new thresholds. */
static void rejudge_window(struct daemon *d)
{
	struct vote_params p;
	struct state_saved s;
	int r;

	vote_params_from_cfg(d->cfg, &p);
	if ((r = state_rejudge_window(d->db, d->cfg->checks, d->cfg->n_checks, p.failed_checks)) < 0 ||
	    (r = state_load(d->db, &s)) < 0) {
		log_err_errno(r, "cannot judge the window's runs again; they keep their verdicts");
		vote_set_params(&d->vote, &p);
		return;
	}
	size_t before = d->vote.n;
	vote_init(&d->vote, &p, INITIAL_LAST, true, d->vote.state, s.failed, s.n);
	unsigned f, ps;
	vote_counts(&d->vote, &f, &ps);
	log_info("window judged again with the reloaded checks: %zu of %u runs (was %zu), %u failed, %u passed",
		 d->vote.n, d->vote.p.runs, before, f, ps);
	state_saved_clear(&s);
}

static int on_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct daemon *d = userdata;
	struct cfg_errors errs = { 0 };
	struct cfg *n = NULL;
	int r;

	(void)s, (void)si;
	sd_notify(false, "RELOADING=1");
	r = cfg_load(d->cfg_path, &n, &errs);
	if (r < 0) {
		for (size_t i = 0; i < errs.n; i++)
			log_errx("%s", errs.v[i]);
		if (errs.n == 0)
			log_err_errno(r, "%s: cannot read", d->cfg_path);
		log_errx("reload rejected: the old configuration keeps running");
		cfg_errors_clear(&errs);
		sd_notify(false, "READY=1");
		return 0;
	}
	cfg_errors_clear(&errs);

	struct cfg *old = d->cfg;
	if (strcmp(old->agent.state_db, n->agent.state_db) != 0)
		log_warnx("state_db changed to %s: it takes effect at the next start; still using %s",
			  n->agent.state_db, old->agent.state_db);
	if (old->mail.present != n->mail.present)
		log_warnx("[mail] was %s: restart rerouterd for that to take effect",
			  n->mail.present ? "added" : "removed");
	d->cfg = n;
	rejudge_window(d);
	apply_watch_links(d, n);
	actions_set_config(d->actions, n);
	if (d->alerts)
		alerts_set_config(d->alerts, n);
	/* A run in flight holds pointers into the old configuration. */
	if (d->run && d->run_cfg == old) {
		if (d->retired)
			cfg_free(d->retired);
		d->retired = old;
	} else {
		cfg_free(old);
	}
	log_notice("configuration reloaded from %s", d->cfg_path);
	check_connectors(n);
	/* The interval is measured from the last start. */
	if (!d->in_maintenance && !d->run_due)
		schedule_next_run(d);
	mw_update(d);
	notify_status(d);
	sd_notify(false, "READY=1");
	return 0;
}

/* speed: a run now (SIGUSR1, a link event), or right after the one in flight. */
static void request_run(struct daemon *d, const char *why)
{
	if (d->in_maintenance) {
		log_info("%s: no run inside maintenance window %s", why, d->mw_name ? d->mw_name : "");
		return;
	}
	if (d->run) {
		log_info("%s: a run starts when the one in flight ends", why);
		d->run_due = true;
		return;
	}
	log_info("%s: starting a run now", why);
	start_run(d);
}

/* SIGUSR1 (rerouterctl hold/release, or an administrator): the hold is read
 * again and a run starts now. */
static int on_run_now(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	(void)s, (void)si;
	check_hold(userdata);
	request_run(userdata, "SIGUSR1");
	return 0;
}

static void on_link_event(const char *why, void *userdata)
{
	request_run(userdata, why);
}

/* speed: [agent] watch_links at start and after a reload. */
static void apply_watch_links(struct daemon *d, const struct cfg *c)
{
	int r;

	if (!c->agent.watch_links) {
		d->linkwatch = linkwatch_free(d->linkwatch);
		return;
	}
	if (d->linkwatch)
		r = linkwatch_set_config(d->linkwatch, c);
	else
		r = linkwatch_new(d->e, c, on_link_event, d, &d->linkwatch);
	if (r < 0)
		log_warn_errno(r, "cannot watch the links (watch_links); runs start by the interval only");
}

static int on_stop(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct daemon *d = userdata;

	(void)s;
	log_info("stopping on %s", strsignal((int)si->ssi_signo));
	sd_notify(false, "STOPPING=1");
	cancel_run(d);
	sd_event_exit(d->e, 0);
	return 0;
}

/* State, since, window, hold and backup gate from the database and initial_state. */
static int restore(struct daemon *d)
{
	struct state_saved s;
	struct vote_params p;
	uint64_t now = clock_usec(CLOCK_REALTIME);
	int r;

	if ((r = state_load(d->db, &s)) < 0)
		return r;
	vote_params_from_cfg(d->cfg, &p);
	bool kept = vote_init(&d->vote, &p, d->cfg->agent.initial_state, s.persisted, s.state, s.failed, s.n);
	d->last_change_id = s.last_change_id;
	/* Judged again at the next run; until then as the last change left it. */
	d->gate_open = !(s.state == LINK_DOWN && s.last_change_no_backup);
	if (kept) {
		d->since_usec = s.since_usec;
		/* A maintenance window while we were stopped: after it the window
		 * starts empty, as if we had seen it. */
		if (s.n > 0 && mwin_open_between(d->cfg->windows, d->cfg->n_windows,
						 (time_t)(s.last_usec / USEC_PER_SEC),
						 (time_t)(now / USEC_PER_SEC))) {
			char last[64];
			clock_format_local(s.last_usec, last, sizeof last);
			if ((r = state_clear_window(d->db)) < 0)
				goto out;
			vote_clear(&d->vote);
			log_notice("a maintenance window was open since the last run (%s): the decision window starts empty",
				   last);
		}
	} else {
		d->since_usec = now;
		if ((r = state_set(d->db, d->vote.state, now, true)) < 0)
			goto out;
	}
	char since[64];
	clock_format_local(d->since_usec, since, sizeof since);
	log_info("starting: link %s since %s (%s), window %zu of %u runs%s", link_state_upper(d->vote.state),
		 since,
		 !s.persisted ? "nothing persisted" : kept ? "persisted" : "initial_state",
		 d->vote.n, d->vote.p.runs,
		 d->vote.state == LINK_UNKNOWN ? "; nothing is rewired until the first decision" : "");
	/* For rerouterctl's wake-up, and the first sign of life. */
	if ((r = state_set_daemon(d->db, (int)getpid(), now)) < 0)
		log_warn_errno(r, "cannot record the daemon's PID: rerouterctl hold takes effect at the next run");
	r = 0;
out:
	state_saved_clear(&s);
	return r;
}

int agent_main(const char *cfg_path, struct cfg *cfg, bool verbose, const char *changed_by)
{
	struct daemon d = { .cfg_path = cfg_path, .cfg = cfg, .verbose = verbose, .changed_by = changed_by,
			    .hold = LINK_UNKNOWN };
	sigset_t ss;
	int r, ret = 1;

	sigemptyset(&ss);
	sigaddset(&ss, SIGHUP);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGUSR1);
	/* SIGCHLD too, before any thread (curl's resolver, probe workers) exists:
	 * sd_event_add_child() needs it blocked in every thread. */
	sigaddset(&ss, SIGCHLD);
	/* Signals only become events: block them, sd-event reads a signalfd. */
	if (sigprocmask(SIG_BLOCK, &ss, NULL) < 0) {
		log_err_errno(errno, "sigprocmask");
		goto out;
	}
	if ((r = sd_event_default(&d.e)) < 0) {
		log_err_errno(r, "cannot create the event loop");
		goto out;
	}
	if ((r = state_open(cfg->agent.state_db, false, &d.db)) < 0) {
		log_err_errno(r, "cannot open the state database %s", cfg->agent.state_db);
		goto out;
	}
	if ((r = restore(&d)) < 0) {
		log_err_errno(r, "cannot read the state database %s", cfg->agent.state_db);
		goto out;
	}
	if (cfg->mail.present && (r = alerts_new(d.e, d.db, cfg, &d.alerts)) < 0) {
		log_err_errno(r, "cannot set up alert mail");
		goto out;
	}
	if ((r = actions_new(d.e, d.db, cfg, d.alerts, changed_by, &d.actions)) < 0) {
		log_err_errno(r, "cannot set up the actions");
		goto out;
	}
	log_what_is_off(cfg);
	if (strcmp(changed_by, "rerouterd"))
		log_info("running as %s: its writes say changed_by = %s", changed_by, changed_by);
	check_connectors(cfg);
	/* A hold set while we were stopped; then the routes the state wants
	 * (compared at start), and whatever a crash left pending, exactly once. */
	check_hold(&d);
	update_routes(&d);
	actions_kick(d.actions);

	if ((r = sd_event_add_signal(d.e, NULL, SIGHUP, on_reload, &d)) < 0 ||
	    (r = sd_event_add_signal(d.e, NULL, SIGTERM, on_stop, &d)) < 0 ||
	    (r = sd_event_add_signal(d.e, NULL, SIGINT, on_stop, &d)) < 0 ||
	    (r = sd_event_add_signal(d.e, NULL, SIGUSR1, on_run_now, &d)) < 0 ||
	    (r = sd_event_add_time(d.e, &d.run_timer, CLOCK_MONOTONIC, 0, TIMER_ACCURACY_USEC, on_run_timer, &d)) < 0 ||
	    (r = sd_event_add_time(d.e, &d.mw_timer, CLOCK_REALTIME, 0, TIMER_ACCURACY_USEC, on_mw_timer, &d)) < 0 ||
	    (r = sd_event_add_time(d.e, &d.hb_timer, CLOCK_MONOTONIC, 0, TIMER_ACCURACY_USEC, on_hb_timer, &d)) < 0) {
		log_err_errno(r, "cannot set up the event sources");
		goto out;
	}
	sd_event_source_set_enabled(d.mw_timer, SD_EVENT_OFF);
	sd_event_source_set_enabled(d.hb_timer, SD_EVENT_OFF);
	if ((r = clockwatch_new(d.e, on_clock_set, &d, &d.clockwatch)) < 0)
		log_warn_errno(r, "cannot watch for wall clock changes; a clock set back is only seen at the next boundary");
	apply_watch_links(&d, cfg);
	if ((r = sd_event_set_watchdog(d.e, true)) < 0)
		log_warn_errno(r, "cannot enable the watchdog");

	/* The first run starts now (unless a maintenance window is open). */
	start_run(&d);
	sd_notify(false, "READY=1");
	notify_status(&d);

	r = sd_event_loop(d.e);
	if (r < 0)
		log_err_errno(r, "event loop failed");
	ret = r < 0 ? 1 : 0;
	log_info("stopped");
out:
	cancel_run(&d);
	d.actions = d.actions ? actions_free(d.actions) : NULL;
	d.alerts = d.alerts ? alerts_free(d.alerts) : NULL;
	sd_event_source_unref(d.run_timer);
	sd_event_source_unref(d.mw_timer);
	sd_event_source_unref(d.hb_timer);
	d.clockwatch = clockwatch_free(d.clockwatch);
	d.linkwatch = linkwatch_free(d.linkwatch);
	d.db = d.db ? state_close(d.db) : NULL;
	free(d.mw_name);
	forget_run_texts(&d);
	for (size_t i = 0; i < d.n_backlog; i++)
		free(d.backlog[i].runs_text);
	if (d.retired)
		cfg_free(d.retired);
	cfg_free(d.cfg);
	sd_event_unref(d.e);
	return ret;
}
