/* ping check: liboping on a worker thread, because ping_send() blocks for its
 * timeout. `count` echo requests, each reply waited for `timeout`; pass when
 * at least `min_replies` answered. The worker resolves the name itself and
 * keeps within count * timeout (DNS included) by shortening the last waits;
 * the loop's deadline, a little later, is the hard cap: a worker still busy
 * then is abandoned (`dns timeout` if it was still resolving) and frees its
 * own state when it returns. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <oping.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/check.h"

enum { STAGE_RESOLVING, STAGE_PINGING, STAGE_DONE };

struct icmp_job {
	/* Copies of the check: the worker may outlive the run and its cfg. */
	char *host, *source;
	bool source_is_ifname, has_mark;
	uint32_t mark;
	unsigned count;
	uint64_t timeout_usec, end_usec;
	atomic_int stage;
	atomic_bool abandoned;
	/* Results, read by the loop only after the worker signalled. */
	enum probe_outcome outcome;
	unsigned sent, replies;
	double rtt_sum_ms;
	char msg[128];
	struct icmp *owner; /* touched by the loop only */
};

struct icmp {
	struct probe_check *check;
	struct icmp_job *job_arg;
	struct probe_job *job;
};

static void icmp_job_free(void *arg)
{
	struct icmp_job *j = arg;

	free(j->host);
	free(j->source);
	free(j);
}

static void job_fail(struct icmp_job *j, enum probe_outcome o, const char *what, const char *err)
{
	j->outcome = o;
	snprintf(j->msg, sizeof j->msg, "%s: %s", what, err);
}

static enum probe_outcome oping_error_outcome(const char *err)
{
	/* liboping reports errors as text only (strerror or gai_strerror). */
	if (strstr(err, "unreachable"))
		return PROBE_UNREACHABLE;
	return PROBE_ERROR;
}

static void icmp_work(void *arg)
{
	struct icmp_job *j = arg;
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai = NULL;
	char addr[INET6_ADDRSTRLEN];
	pingobj_t *p = NULL;
	int family = AF_UNSPEC, r;

	j->outcome = PROBE_ERROR;
	if (j->source && !j->source_is_ifname) {
		struct in6_addr a6;
		family = strchr(j->source, ':') && inet_pton(AF_INET6, j->source, &a6) == 1 ? AF_INET6
											    : AF_INET;
	}
	hints.ai_family = family;
	hints.ai_protocol = 0;
	/* The only step that may hang on DNS; liboping gets a literal after it. */
	r = getaddrinfo(j->host, NULL, &hints, &ai);
	if (r) {
		job_fail(j, r == EAI_AGAIN ? PROBE_DNS_TIMEOUT : PROBE_DNS_FAILURE, j->host,
			 gai_strerror(r));
		goto out;
	}
	if (getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof addr, NULL, 0, NI_NUMERICHOST)) {
		job_fail(j, PROBE_DNS_FAILURE, j->host, "no usable address");
		goto out;
	}
	family = ai->ai_family;
	atomic_store(&j->stage, STAGE_PINGING);

	p = ping_construct();
	if (!p) {
		job_fail(j, PROBE_ERROR, "ping", "out of memory");
		goto out;
	}
	ping_setopt(p, PING_OPT_AF, &family);
	if (j->source && j->source_is_ifname && ping_setopt(p, PING_OPT_DEVICE, j->source) != 0) {
		job_fail(j, PROBE_ERROR, j->source, ping_get_error(p));
		goto out;
	}
	if (j->source && !j->source_is_ifname && ping_setopt(p, PING_OPT_SOURCE, j->source) != 0) {
		job_fail(j, PROBE_ERROR, j->source, ping_get_error(p));
		goto out;
	}
	if (j->has_mark) {
		int mark = (int)j->mark;
		if (ping_setopt(p, PING_OPT_MARK, &mark) != 0) {
			job_fail(j, PROBE_ERROR, "mark", ping_get_error(p));
			goto out;
		}
	}
	if (ping_host_add(p, addr) != 0) {
		job_fail(j, PROBE_ERROR, addr, ping_get_error(p));
		goto out;
	}
	for (unsigned i = 0; i < j->count && !atomic_load(&j->abandoned); i++) {
		uint64_t now = probe_now_usec(), wait = j->timeout_usec;
		double secs;

		if (now + 10 * USEC_PER_MSEC >= j->end_usec)
			break;
		/* Whatever DNS took comes out of the last waits, not past the deadline. */
		if (wait > j->end_usec - now)
			wait = j->end_usec - now;
		secs = (double)wait / USEC_PER_SEC;
		ping_setopt(p, PING_OPT_TIMEOUT, &secs);
		j->sent++;
		r = ping_send(p);
		if (r < 0) {
			job_fail(j, oping_error_outcome(ping_get_error(p)), "ping", ping_get_error(p));
			goto out;
		}
		for (pingobj_iter_t *it = ping_iterator_get(p); it; it = ping_iterator_next(it)) {
			double latency = -1;
			size_t len = sizeof latency;

			if (ping_iterator_get_info(it, PING_INFO_LATENCY, &latency, &len) == 0 &&
			    latency >= 0) {
				j->replies++;
				j->rtt_sum_ms += latency;
			}
		}
	}
	j->outcome = PROBE_PASSED; /* judged against min_replies on the loop */
out:
	atomic_store(&j->stage, STAGE_DONE);
	if (p)
		ping_destroy(p);
	if (ai)
		freeaddrinfo(ai);
}

static void icmp_done(void *arg)
{
	struct icmp_job *j = arg;
	struct icmp *ic = j->owner;
	struct probe_check *c = ic->check;
	unsigned need = c->cfg->ping_min_replies ? c->cfg->ping_min_replies : 1;

	ic->job = NULL;
	if (j->outcome != PROBE_PASSED)
		probe_finish(c, j->outcome, "%s", j->msg);
	else if (j->replies >= need)
		probe_finish(c, PROBE_PASSED, "%u of %u replies, %.1f ms", j->replies, j->sent,
			     j->rtt_sum_ms / j->replies);
	else if (j->replies == 0)
		probe_finish(c, PROBE_TIMEOUT, "no reply to %u echo requests", j->sent);
	else
		probe_finish(c, PROBE_BAD_STATUS, "%u of %u replies (%u needed)", j->replies,
			     j->sent, need);
}

static int icmp_start(struct probe_check *c)
{
	const struct cfg_check *cc = c->cfg;
	struct icmp *ic;
	struct icmp_job *j;
	int r;

	if (!cc->host && !cc->target)
		return -EINVAL;
	ic = calloc(1, sizeof *ic);
	j = calloc(1, sizeof *j);
	if (!ic || !j) {
		free(ic);
		free(j);
		return -ENOMEM;
	}
	j->owner = ic;
	ic->check = c;
	ic->job_arg = j;
	c->impl = ic;
	j->host = strdup(cc->host ? cc->host : cc->target);
	j->source = cc->source ? strdup(cc->source) : NULL;
	if (!j->host || (cc->source && !j->source)) {
		icmp_job_free(j);
		return -ENOMEM;
	}
	j->source_is_ifname = cc->source_is_ifname;
	j->has_mark = cc->has_mark;
	j->mark = cc->mark;
	j->count = cc->ping_count ? cc->ping_count : 1;
	j->timeout_usec = cc->timeout_usec;
	j->end_usec = c->start_usec + c->budget_usec;
	atomic_init(&j->stage, STAGE_RESOLVING);
	atomic_init(&j->abandoned, false);
	r = probe_job_start(c->event, icmp_work, icmp_done, icmp_job_free, j, &ic->job);
	if (r < 0)
		icmp_job_free(j);
	return r;
}

static void icmp_expire(struct probe_check *c)
{
	struct icmp *ic = c->impl;

	if (ic && ic->job && atomic_load(&ic->job_arg->stage) == STAGE_RESOLVING)
		probe_finish(c, PROBE_DNS_TIMEOUT, "%s not resolved in %llu ms",
			     c->cfg->host ? c->cfg->host : c->cfg->target,
			     (unsigned long long)(c->budget_usec / USEC_PER_MSEC));
}

static void icmp_stop(struct probe_check *c)
{
	struct icmp *ic = c->impl;

	if (!ic)
		return;
	if (ic->job) {
		atomic_store(&ic->job_arg->abandoned, true);
		probe_job_abandon(ic->job);
	}
	free(ic);
}

const struct probe_ops probe_icmp_ops = {
	.start = icmp_start,
	.expire = icmp_expire,
	.stop = icmp_stop,
};
