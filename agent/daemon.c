/* The daemon: one sd-event loop with a monotonic run timer (start to start),
 * a wall-clock timer at the next maintenance-window boundary, a watch for
 * clock sets (which move that boundary), signal sources
 * for reload and stop, and the watchdog. Each run's results are voted on
 * (agent/vote.c), stored (agent/state.c) and, on a change of state, handed to
 * the actions. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "agent/clock.h"
#include "agent/clockwatch.h"
#include "actions/actions.h"
#include "actions/alert.h"
#include "agent/agent.h"
#include "agent/linkwatch.h"
#include "agent/log.h"
#include "agent/schedule.h"
#include "agent/state.h"
#include "agent/vote.h"
#include "agent/window.h"
#include "probes/probe.h"

/* Timers fire within a millisecond: sd-event's default slack (250 ms) is
 * longer than a short test interval. */
#define TIMER_ACCURACY_USEC 1000ULL

struct daemon {
	sd_event *e;
	const char *cfg_path;
	struct cfg *cfg;          /* the configuration in force */
	struct cfg *retired;      /* an old one, alive while the run started with it runs */
	bool verbose;
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
	struct clockwatch *clockwatch;
	struct linkwatch *linkwatch; /* [agent] watch_links; NULL: off */
	bool in_maintenance;
	char *mw_name;

	bool have_last;
	bool last_failed;
	unsigned last_link_failed, last_n_link;
};

static void notify_status(struct daemon *d)
{
	char since[64];

	clock_format_local(d->since_usec, since, sizeof since);
	if (d->in_maintenance)
		sd_notifyf(false, "STATUS=maintenance window %s; link %s since %s", d->mw_name,
			   d->vote.state == LINK_UP ? "UP" : "DOWN", since);
	else if (d->have_last)
		sd_notifyf(false, "STATUS=link %s since %s, last run %u/%u passed",
			   d->vote.state == LINK_UP ? "UP" : "DOWN", since,
			   d->last_n_link - d->last_link_failed, d->last_n_link);
	else
		sd_notifyf(false, "STATUS=link %s since %s, first run pending",
			   d->vote.state == LINK_UP ? "UP" : "DOWN", since);
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
	char prev[64];
	struct log_field f[] = {
		{ "REROUTER_STATE", link_state_str(ch->new_state) },
		{ "REROUTER_PREVIOUS", link_state_str(ch->old_state) },
	};
	uint64_t held = ch->at_usec > ch->prev_since_usec ? ch->at_usec - ch->prev_since_usec : 0;

	clock_format_local(ch->prev_since_usec, prev, sizeof prev);
	log_fields(ch->new_state == LINK_DOWN ? LOG_WARNING : LOG_NOTICE, f,
		   "state %s (was %s since %s, %llus): %u of the last %u runs %s%s",
		   ch->new_state == LINK_UP ? "UP" : "DOWN", ch->old_state == LINK_UP ? "UP" : "DOWN", prev,
		   (unsigned long long)(held / USEC_PER_SEC), ch->new_state == LINK_DOWN ? failed : passed,
		   d->vote.p.runs, ch->new_state == LINK_DOWN ? "failed" : "passed",
		   ch->no_backup ? "; no backup path answered: nothing is rewired" : "");
}

static void on_run_done(struct probe_run *run, const struct probe_result *res, size_t n, void *userdata)
{
	struct daemon *d = userdata;
	bool verbose = d->verbose || d->cfg->log.verbose;
	uint64_t at = d->run_start_real;
	unsigned n_link = 0;

	(void)run;
	d->run = NULL;
	/* A window opened while this run was ending, before its timer came
	 * round: the run was in flight at the opening and is discarded. */
	const struct cfg_window *w;
	time_t now_s = (time_t)(clock_usec(CLOCK_REALTIME) / USEC_PER_SEC);
	if (!d->in_maintenance && mwin_inside(d->cfg->windows, d->cfg->n_windows, now_s, &w)) {
		mw_enter(d, w, true);
		d->run_cfg = NULL;
		free_retired(d);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		n_link += res[i].check->role == ROLE_LINK;
		if (verbose)
			log_check(&res[i]);
	}

	unsigned link_failed = vote_link_failures(res, n);
	bool failed = vote_run_failed(&d->vote.p, res, n);
	/* Vote on a copy: memory follows the database only once it committed. */
	struct vote next = d->vote;
	bool change = vote_add_run(&next, failed);
	unsigned wf, wp;
	vote_counts(&next, &wf, &wp);
	struct state_change ch = {
		.new_state = d->vote.state == LINK_UP ? LINK_DOWN : LINK_UP,
		.old_state = d->vote.state,
		.at_usec = clock_usec(CLOCK_REALTIME),
		.prev_since_usec = d->since_usec,
	};
	ch.no_backup = ch.new_state == LINK_DOWN && vote_no_backup(res, n);
	struct state_run sr = { .at_usec = at, .failed = failed, .link_failed = link_failed,
				.n_link = n_link, .results = res, .n_results = n };
	int64_t change_id = 0;
	int r = state_commit_run(d->db, &sr, next.p.runs, change ? &ch : NULL, &change_id);

	log_debug("run %s: %u of %u link checks failed; window %zu of %u: %u failed, %u passed",
		  failed ? "FAILED" : "PASSED", link_failed, n_link, next.n, next.p.runs, wf, wp);
	d->have_last = true;
	d->last_failed = failed;
	d->last_link_failed = link_failed;
	d->last_n_link = n_link;
	if (r < 0) {
		/* Nothing was stored: keep the previous window and state, and let
		 * the next run decide again. */
		log_err_errno(r, "cannot store the run%s; retrying with the next run",
			      change ? " and the change of state" : "");
	} else {
		d->vote = next;
		if (change) {
			log_change(d, &ch, wf, wp);
			vote_commit_change(&d->vote);
			d->since_usec = ch.at_usec;
			(void)change_id;
			actions_kick(d->actions);
		}
	}
	notify_status(d);

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
	notify_status(d);
}

static void mw_leave(struct daemon *d)
{
	int r;

	log_notice("leaving maintenance window %s: the decision window starts empty",
		   d->mw_name ? d->mw_name : "");
	d->in_maintenance = false;
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

static int on_run_now(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	(void)s, (void)si;
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

/* State, since and window from the database and initial_state. */
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
	log_info("starting: link %s since %s (%s), window %zu of %u runs", d->vote.state == LINK_UP ? "UP" : "DOWN",
		 since,
		 !s.persisted ? "nothing persisted" : kept ? "persisted" : "initial_state",
		 d->vote.n, d->vote.p.runs);
out:
	state_saved_clear(&s);
	return r;
}

int agent_main(const char *cfg_path, struct cfg *cfg, bool verbose)
{
	struct daemon d = { .cfg_path = cfg_path, .cfg = cfg, .verbose = verbose };
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
	if ((r = actions_new(d.e, d.db, cfg, d.alerts, &d.actions)) < 0) {
		log_err_errno(r, "cannot set up the actions");
		goto out;
	}
	log_what_is_off(cfg);
	check_connectors(cfg);
	/* Finish whatever a crash left pending, exactly once. */
	actions_kick(d.actions);

	if ((r = sd_event_add_signal(d.e, NULL, SIGHUP, on_reload, &d)) < 0 ||
	    (r = sd_event_add_signal(d.e, NULL, SIGTERM, on_stop, &d)) < 0 ||
	    (r = sd_event_add_signal(d.e, NULL, SIGINT, on_stop, &d)) < 0 ||
	    (r = sd_event_add_signal(d.e, NULL, SIGUSR1, on_run_now, &d)) < 0 ||
	    (r = sd_event_add_time(d.e, &d.run_timer, CLOCK_MONOTONIC, 0, TIMER_ACCURACY_USEC, on_run_timer, &d)) < 0 ||
	    (r = sd_event_add_time(d.e, &d.mw_timer, CLOCK_REALTIME, 0, TIMER_ACCURACY_USEC, on_mw_timer, &d)) < 0) {
		log_err_errno(r, "cannot set up the event sources");
		goto out;
	}
	sd_event_source_set_enabled(d.mw_timer, SD_EVENT_OFF);
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
	d.clockwatch = clockwatch_free(d.clockwatch);
	d.linkwatch = linkwatch_free(d.linkwatch);
	d.db = d.db ? state_close(d.db) : NULL;
	free(d.mw_name);
	if (d.retired)
		cfg_free(d.retired);
	cfg_free(d.cfg);
	sd_event_unref(d.e);
	return ret;
}
