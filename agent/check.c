/* rerouterctl check: one status line with perfdata and the exit code of the
 * monitoring-plugin convention (SPEC section 6), so that Icinga, Nagios or
 * Zabbix run it unchanged. Reads only; never needs write access. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/clock.h"
#include "agent/ops.h"
#include "agent/window.h"

enum { CHECK_OK, CHECK_WARNING, CHECK_CRITICAL, CHECK_UNKNOWN };
static const char *const check_word[] = { "OK", "WARNING", "CRITICAL", "UNKNOWN" };

/* Silence longer than this many intervals outside a maintenance window. */
#define CHECK_SILENT_INTERVALS 3

struct verdict {
	int code;
	char text[768];
};

static void __attribute__((format(printf, 3, 4))) say(struct verdict *v, int code, const char *fmt, ...)
{
	size_t k = strlen(v->text);
	va_list ap;

	if (code > v->code)
		v->code = code;
	if (k && k + 2 < sizeof v->text)
		k += (size_t)snprintf(v->text + k, sizeof v->text - k, "; ");
	va_start(ap, fmt);
	if (k < sizeof v->text)
		vsnprintf(v->text + k, sizeof v->text - k, fmt, ap);
	va_end(ap);
}

static void judge_state(const struct ops_snapshot *o, struct verdict *v)
{
	char since[64];

	clock_format_local(o->s.since_usec, since, sizeof since);
	if (o->s.state == LINK_UP)
		say(v, CHECK_OK, "link UP since %s", since);
	else if (o->s.state == LINK_UNKNOWN)
		say(v, CHECK_WARNING, "link state unknown since %s: the first decision is pending", since);
	else if (o->gate_closed)
		say(v, CHECK_CRITICAL, "link DOWN since %s and no backup path answers: mail is NOT rerouted",
		    since);
	else
		say(v, CHECK_WARNING, "link DOWN since %s: mail is rerouted", since);
	if (o->s.hold != LINK_UNKNOWN)
		say(v, CHECK_WARNING, "held %s by rerouterctl hold", link_state_upper(o->s.hold));
	if (o->routing_pending)
		say(v, CHECK_WARNING, "%s step retried (attempt %d): %s", o->pending_step, o->pending_attempts,
		    o->pending_error);
	if (o->steps_pending > 0)
		say(v, CHECK_WARNING, "%d step(s) of a change pending", o->steps_pending);
	if (o->alerts_queued > 0)
		say(v, CHECK_WARNING, "%d alert(s) queued", o->alerts_queued);
}

/* The daemon writes a heartbeat at every run and through maintenance windows. */
static uint64_t judge_life(const struct cfg *cfg, const struct ops_snapshot *o, bool in_window,
			   struct verdict *v)
{
	uint64_t now = clock_usec(CLOCK_REALTIME);
	uint64_t age = now > o->s.heartbeat_usec ? now - o->s.heartbeat_usec : 0;
	uint64_t limit = CHECK_SILENT_INTERVALS * cfg->agent.interval_usec;

	if (!o->s.heartbeat_usec)
		say(v, in_window ? CHECK_WARNING : CHECK_CRITICAL, "rerouterd has never recorded a sign of life");
	else if (age > limit)
		say(v, in_window ? CHECK_WARNING : CHECK_CRITICAL,
		    "no sign of life from rerouterd for %.1fs (more than %d intervals)",
		    (double)age / USEC_PER_SEC, CHECK_SILENT_INTERVALS);
	return age;
}

static void print_perfdata(const struct cfg *cfg, const struct ops_snapshot *o, uint64_t age)
{
	uint64_t now = clock_usec(CLOCK_REALTIME);
	uint64_t since = now > o->s.since_usec ? now - o->s.since_usec : 0;

	printf(" | link_up=%s state_since=%llus heartbeat_age=%.3fs;;%.3f steps_pending=%d alerts_queued=%d "
	       "hold=%d gate_closed=%d\n",
	       o->s.state == LINK_UP ? "1" : o->s.state == LINK_DOWN ? "0" : "U",
	       (unsigned long long)(since / USEC_PER_SEC), (double)age / USEC_PER_SEC,
	       (double)(CHECK_SILENT_INTERVALS * cfg->agent.interval_usec) / USEC_PER_SEC,
	       o->steps_pending + (o->routing_pending ? 1 : 0), o->alerts_queued,
	       o->s.hold != LINK_UNKNOWN, o->gate_closed);
}

int agent_ctl_check(const struct cfg *cfg)
{
	struct ops_snapshot o;
	struct verdict v = { CHECK_OK, "" };
	const struct cfg_window *w = NULL;
	sqlite3 *db = NULL;
	time_t now = time(NULL);

	/* stderr says why; stdout keeps the one line monitoring reads. */
	if (ops_open_ro(cfg, &db) < 0) {
		printf("REROUTER UNKNOWN - cannot open the state database %s\n", cfg->agent.state_db);
		return CHECK_UNKNOWN;
	}
	if (ops_snapshot_read(db, &o) < 0) {
		printf("REROUTER UNKNOWN - cannot read the state database %s: %s\n", cfg->agent.state_db,
		       sqlite3_errmsg(db));
		state_close(db);
		return CHECK_UNKNOWN;
	}
	state_close(db);
	if (!o.s.persisted) {
		printf("REROUTER UNKNOWN - no state recorded in %s: rerouterd has not run yet\n",
		       cfg->agent.state_db);
		ops_snapshot_clear(&o);
		return CHECK_UNKNOWN;
	}
	bool in_window = mwin_inside(cfg->windows, cfg->n_windows, now, &w);
	judge_state(&o, &v);
	if (in_window)
		say(&v, CHECK_WARNING, "maintenance window %s: no runs", w->name);
	uint64_t age = judge_life(cfg, &o, in_window, &v);
	printf("REROUTER %s - %s", check_word[v.code], v.text);
	print_perfdata(cfg, &o, age);
	ops_snapshot_clear(&o);
	return v.code;
}
