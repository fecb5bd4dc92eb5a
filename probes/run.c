/* A run: every check of the configuration starts at once, each under a hard
 * deadline on CLOCK_MONOTONIC; outcomes are collected into one array and the
 * caller's callback runs once, from a defer source, when the last check has
 * one (never from inside a check's own callback, so a check may finish from
 * anywhere, even from curl's callbacks, and the run may be freed right after). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/clock.h"
#include "agent/log.h"
#include "probes/check.h"

/* Ping: the worker keeps to count * timeout by itself; the loop's cap allows
 * it this much more to hand its answer over before the loop gives up on it. */
#define PING_GRACE_USEC (50 * USEC_PER_MSEC)

struct probe_run {
	sd_event *event;
	const struct cfg *cfg;
	probe_done_fn done;
	void *userdata;
	struct probe_result *results;
	struct probe_check *checks;
	size_t n, pending;
	struct curl_loop *curl;
	struct ping_group *ping_groups; /* not launched yet: only inside probe_run_start */
	struct probe_route *route;      /* route.c's answers for this run */
	sd_event_source *report;
	/* Early verdict: link checks not finished yet, and failed so far. */
	bool early, decided;
	unsigned failed_checks, links_left, links_failed;
	sd_event_source *cancel;        /* stops the rest, from the loop's top */
	/* One timer for every check's deadline, at the earliest one not passed:
	 * the checks of a run start together, so their deadlines mostly
	 * coincide, and a source per check costs ~300 bytes in a run of 1,000. */
	sd_event_source *deadline;
};

static const char *const outcome_names[_PROBE_OUTCOME_MAX] = {
	[PROBE_PASSED] = "passed",
	[PROBE_TIMEOUT] = "timeout",
	[PROBE_REFUSED] = "refused",
	[PROBE_UNREACHABLE] = "unreachable",
	[PROBE_DNS_FAILURE] = "dns failure",
	[PROBE_DNS_TIMEOUT] = "dns timeout",
	[PROBE_BAD_STATUS] = "bad status",
	[PROBE_PROTOCOL_ERROR] = "protocol error",
	[PROBE_TLS_ERROR] = "tls error",
	[PROBE_ERROR] = "error",
	[PROBE_CANCELLED] = "cancelled",
};

const char *probe_outcome_str(enum probe_outcome o)
{
	if ((unsigned)o >= _PROBE_OUTCOME_MAX)
		return "unknown";
	return outcome_names[o];
}

uint64_t probe_now_usec(void)
{
	return clock_usec(CLOCK_MONOTONIC);
}

uint64_t probe_elapsed_ms(const struct probe_check *c)
{
	return (probe_now_usec() - c->start_usec) / USEC_PER_MSEC;
}

enum probe_outcome probe_errno_outcome(int err)
{
	switch (err) {
	case ECONNREFUSED:
	case ECONNRESET:
		return PROBE_REFUSED;
	case ENETUNREACH:
	case EHOSTUNREACH:
	case ENETDOWN:
	case EHOSTDOWN:
	case EADDRNOTAVAIL:
		return PROBE_UNREACHABLE;
	case ETIMEDOUT:
		return PROBE_TIMEOUT;
	default:
		return PROBE_ERROR;
	}
}

int probe_source_addr(const char *source, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, source, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		*len = sizeof *sin;
		return 0;
	}
	if (inet_pton(AF_INET6, source, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		*len = sizeof *sin6;
		return 0;
	}
	return -EINVAL;
}

static void run_free(struct probe_run *run)
{
	for (size_t i = 0; i < run->n; i++) {
		struct probe_check *c = &run->checks[i];

		if (!c->finished && c->ops)
			c->ops->stop(c);
	}
	/* After the checks: their stop() hands their curl handles back first. */
	curl_loop_free(run->curl);
	probe_route_free(run->route);
	sd_event_source_disable_unref(run->deadline);
	sd_event_source_disable_unref(run->report);
	sd_event_source_disable_unref(run->cancel);
	sd_event_unref(run->event);
	free(run->checks);
	free(run->results);
	free(run);
}

static int on_report(sd_event_source *s, void *userdata)
{
	struct probe_run *run = userdata;

	run->done(run, run->results, run->n, run->userdata);
	run_free(run);
	return 0;
}

/* A link check has its outcome: is the run's verdict certain now? Then the
 * other link checks are cancelled, but from a defer source: this may run
 * inside a check's own callback (curl's, a ping group's loop over its
 * members), where stopping other checks would pull state from under it. */
static void note_link_outcome(struct probe_run *run, const struct probe_check *c)
{
	if (!run->early || run->decided || c->cfg->role != ROLE_LINK)
		return;
	run->links_left--;
	if (!probe_passed(c->result))
		run->links_failed++;
	if (run->links_failed >= run->failed_checks ||
	    run->links_failed + run->links_left < run->failed_checks) {
		run->decided = true;
		if (run->links_left > 0)
			sd_event_source_set_enabled(run->cancel, SD_EVENT_ONESHOT);
	}
}

static int on_cancel(sd_event_source *s, void *userdata)
{
	struct probe_run *run = userdata;
	unsigned n = 0;

	(void)s;
	/* The report fires from a defer source too, so the run is still whole. */
	for (size_t i = 0; i < run->n; i++) {
		struct probe_check *c = &run->checks[i];

		if (c->finished || c->cfg->role != ROLE_LINK)
			continue;
		if (run->links_failed >= run->failed_checks)
			probe_finish(c, PROBE_CANCELLED, "not needed: %u link checks failed already",
				     run->links_failed);
		else
			probe_finish(c, PROBE_CANCELLED, "not needed: too few link checks left to fail the run");
		n++;
	}
	if (n)
		log_debug("run verdict certain (%u link checks failed, %u needed): %u link checks cancelled",
			  run->links_failed, run->failed_checks, n);
	return 0;
}

static void vfinish(struct probe_check *c, uint64_t end_usec, enum probe_outcome o,
		    const char *fmt, va_list ap)
{
	struct probe_run *run = c->run;

	if (c->finished)
		return;
	c->finished = true;
	c->result->outcome = o;
	c->result->elapsed_ms =
		end_usec > c->start_usec ? (end_usec - c->start_usec) / USEC_PER_MSEC : 0;
	vsnprintf(c->result->reason, sizeof c->result->reason, fmt, ap);
	c->ops->stop(c);
	c->impl = NULL;
	note_link_outcome(run, c);
	if (--run->pending == 0)
		sd_event_source_set_enabled(run->report, SD_EVENT_ONESHOT);
}

void probe_finish(struct probe_check *c, enum probe_outcome o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfinish(c, probe_now_usec(), o, fmt, ap);
	va_end(ap);
}

void probe_finish_at(struct probe_check *c, uint64_t end_usec, enum probe_outcome o,
		     const char *fmt, ...)
{
	va_list ap;
	uint64_t now = probe_now_usec();

	va_start(ap, fmt);
	vfinish(c, end_usec < now ? end_usec : now, o, fmt, ap);
	va_end(ap);
}

struct ping_group **probe_run_ping_groups(struct probe_run *run)
{
	return &run->ping_groups;
}

struct probe_route *probe_run_route(struct probe_run *run)
{
	if (!run->route)
		run->route = probe_route_new();
	return run->route;
}

int probe_curl_loop(struct probe_check *c, struct curl_loop **ret)
{
	struct probe_run *run = c->run;

	if (!run->curl) {
		int r = curl_loop_new(run->event, &run->curl);
		if (r < 0)
			return r;
	}
	*ret = run->curl;
	return 0;
}

static void expire(struct probe_check *c)
{
	if (c->ops->expire)
		c->ops->expire(c);
	/* Whatever the check did, it is over now. */
	probe_finish(c, PROBE_TIMEOUT, "no answer in %llu ms",
		     (unsigned long long)(c->budget_usec / USEC_PER_MSEC));
}

/* The run's timer to the earliest deadline of a check still running; off
 * when none is left. A check that ends early leaves it be: the timer then
 * finds nothing due and moves on. */
static void deadline_rearm(struct probe_run *run)
{
	uint64_t next = UINT64_MAX;

	for (size_t i = 0; i < run->n; i++)
		if (!run->checks[i].finished && run->checks[i].cap_usec < next)
			next = run->checks[i].cap_usec;
	if (next == UINT64_MAX) {
		sd_event_source_set_enabled(run->deadline, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time(run->deadline, next);
	sd_event_source_set_enabled(run->deadline, SD_EVENT_ONESHOT);
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct probe_run *run = userdata;

	/* Finishing a check only marks it and arms defer sources: the run and
	 * its array stay whole through this loop. */
	for (size_t i = 0; i < run->n; i++) {
		struct probe_check *c = &run->checks[i];
		if (!c->finished && c->cap_usec <= usec)
			expire(c);
	}
	deadline_rearm(run);
	return 0;
}

static const struct probe_ops *ops_for(enum cfg_check_type t)
{
	switch (t) {
	case CHECK_PING: return &probe_icmp_ops;
	case CHECK_HTTP: return &probe_http_ops;
	case CHECK_TCP: return &probe_tcp_ops;
	case CHECK_SMTP: return &probe_smtp_ops;
	}
	return NULL;
}

static void check_start(struct probe_run *run, size_t i, uint64_t now)
{
	struct probe_check *c = &run->checks[i];
	const struct cfg_check *cc = &run->cfg->checks[i];
	uint64_t cap;
	int r;

	c->run = run;
	c->cfg = cc;
	c->result = &run->results[i];
	c->result->check = cc;
	c->event = run->event;
	c->start_usec = now;
	c->ops = ops_for(cc->type);
	if (!c->ops) {
		c->finished = true;
		c->result->outcome = PROBE_ERROR;
		snprintf(c->result->reason, sizeof c->result->reason, "unknown check type");
		note_link_outcome(run, c);
		run->pending--;
		return;
	}
	if (cc->type == CHECK_PING) {
		unsigned count = cc->ping_count ? cc->ping_count : 1;
		c->budget_usec = cc->timeout_usec * count;
		cap = now + c->budget_usec + PING_GRACE_USEC;
	} else {
		c->budget_usec = cc->timeout_usec;
		cap = now + c->budget_usec;
	}
	c->cap_usec = cap;
	r = c->ops->start(c);
	if (r < 0 && !c->finished)
		probe_finish(c, r == -EMFILE || r == -ENFILE || r == -EAGAIN || r == -ENOMEM
					? PROBE_ERROR : probe_errno_outcome(-r),
			     "cannot start: %s", strerror(-r));
}

static int run_start(sd_event *e, const struct cfg *cfg, bool early, probe_done_fn done,
		     void *userdata, struct probe_run **ret)
{
	struct probe_run *run;
	uint64_t now;
	int r;

	if (!e || !cfg || !done)
		return -EINVAL;
	run = calloc(1, sizeof *run);
	if (!run)
		return -ENOMEM;
	run->event = sd_event_ref(e);
	run->cfg = cfg;
	run->done = done;
	run->userdata = userdata;
	run->n = cfg->n_checks;
	run->results = calloc(run->n ? run->n : 1, sizeof *run->results);
	run->checks = calloc(run->n ? run->n : 1, sizeof *run->checks);
	if (!run->results || !run->checks) {
		r = -ENOMEM;
		goto fail;
	}
	r = sd_event_add_defer(e, &run->report, on_report, run);
	if (r < 0)
		goto fail;
	sd_event_source_set_description(run->report, "probe-report");
	sd_event_source_set_enabled(run->report, SD_EVENT_OFF);
	/* failed_checks 0 (a hand-made cfg) fails every run: nothing to end early. */
	run->early = early && cfg->agent.failed_checks > 0;
	run->failed_checks = cfg->agent.failed_checks;
	for (size_t i = 0; i < run->n; i++)
		run->links_left += cfg->checks[i].role == ROLE_LINK;
	r = sd_event_add_defer(e, &run->cancel, on_cancel, run);
	if (r < 0)
		goto fail;
	sd_event_source_set_description(run->cancel, "probe-cancel");
	sd_event_source_set_enabled(run->cancel, SD_EVENT_OFF);
	/* Accuracy 1 ms: the default 250 ms slack would blur the deadlines. */
	r = sd_event_add_time(e, &run->deadline, CLOCK_MONOTONIC, UINT64_MAX, USEC_PER_MSEC,
			      on_deadline, run);
	if (r < 0)
		goto fail;
	sd_event_source_set_description(run->deadline, "probe-deadline");
	sd_event_source_set_enabled(run->deadline, SD_EVENT_OFF);

	/* One clock reading: the checks start together and share it. */
	now = probe_now_usec();
	/* +1 so that no check can trigger the report while others are being started. */
	run->pending = run->n + 1;
	for (size_t i = 0; i < run->n; i++)
		check_start(run, i, now);
	/* The pings enrolled in groups above; now their workers start. */
	probe_icmp_launch(&run->ping_groups, run->event);
	deadline_rearm(run);
	if (--run->pending == 0)
		sd_event_source_set_enabled(run->report, SD_EVENT_ONESHOT);
	if (ret)
		*ret = run;
	return 0;
fail:
	run_free(run);
	return r;
}

int probe_run_start(sd_event *e, const struct cfg *cfg, probe_done_fn done, void *userdata,
		    struct probe_run **ret)
{
	return run_start(e, cfg, false, done, userdata, ret);
}

int probe_run_start_early(sd_event *e, const struct cfg *cfg, probe_done_fn done, void *userdata,
			  struct probe_run **ret)
{
	return run_start(e, cfg, true, done, userdata, ret);
}

void probe_run_cancel(struct probe_run *run)
{
	if (run)
		run_free(run);
}
