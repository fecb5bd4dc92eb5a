/* ping check: liboping on a worker thread, because ping_send() blocks for its
 * timeout. `count` echo requests, each reply waited for `timeout`; pass when
 * at least `min_replies` answered.
 *
 * The ping checks of a run that share their options (count, timeout, source,
 * mark, address family) and name an IP address form one group: one liboping
 * object, one raw socket, one worker thread, one ping_send() per round for all
 * of them. A raw ICMP socket sees every echo reply the host receives, so N
 * sockets cost N copies of each reply, and N threads N stacks: grouping keeps
 * a run of hundreds of pings cheap. Each check keeps its own outcome, reason,
 * elapsed time (for a pass, when its last reply arrived) and its own deadline.
 *
 * A target given by name is a group of its own: its getaddrinfo() may hang on
 * a silent resolver, and only its own check may wait for that (it ends with
 * `dns timeout` at its deadline). Resolving names up front, apart from the
 * group, would need a second thread per name and a group that waits for the
 * slowest one; names are rare among ping targets, so they stay alone.
 *
 * The worker keeps within count * timeout (DNS included) by shortening the
 * last waits; the loop's deadline, a little later, is the hard cap: a group
 * whose checks have all given up is abandoned and frees its own state when
 * the worker returns.
 *
 * One target's send may fail (a blackhole or prohibit route, a firewall)
 * while liboping still sends to the others and collects their replies; then
 * ping_send() returns < 0 with the group's last error text. liboping 1.10
 * has no per-host error, but it advances a host's PING_INFO_SEQUENCE only
 * when its echo request was sent: a target whose sequence stood still is the
 * one that failed, and only it (or, when every send went out, each target
 * left without a reply) gets that text as its reason.
 *
 * liboping matches an echo reply by ICMP ident and sequence alone, never by
 * its source address (PING_INFO_ADDRESS is the address we configured, not the
 * one that answered), and every raw socket sees every reply. All hosts start
 * at sequence 0 together, so two hosts with the same random 16-bit ident
 * could take each other's replies. Idents are therefore made unique within
 * the process: each host's ident is claimed in a process-wide set, and a host
 * whose ident is taken is removed and added again until liboping draws a free
 * one. Across processes (another rerouterd, a monitoring tool) the idents stay
 * random: a swap then needs the same ident, sequence and moment. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <oping.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/check.h"

enum { STAGE_RESOLVING, STAGE_PINGING, STAGE_DONE };

/* One check's target in a group; written by the worker, read by the loop
 * only after the worker signalled. */
struct ping_target {
	char *host;                  /* copy: the worker may outlive the cfg */
	char addr[INET6_ADDRSTRLEN]; /* numeric, what liboping gets */
	long same_as;                /* an earlier target with this address, or -1 */
	bool added;                  /* known to liboping */
	enum probe_outcome outcome;  /* PASSED: judged against min_replies on the loop */
	unsigned sent, replies;
	double rtt_sum_ms;
	uint64_t answered_usec;      /* when its reply in the last round arrived; 0: none */
	unsigned seq;                /* liboping's sequence after the last round */
	bool unsent;                 /* the last round's send failed (sequence stood still) */
	uint16_t ident;
	bool ident_held;             /* ident claimed in the process-wide set */
	enum probe_outcome err_outcome;
	char err[96];                /* a round's error without a reply; used if none ever came */
	char msg[128];
};

struct ping_group {
	struct ping_group *next;     /* the run's groups not launched yet (loop) */
	/* The options every member shares; copies, as for the hosts. */
	char *source;
	bool source_is_ifname, has_mark;
	uint32_t mark;
	unsigned count;
	uint64_t timeout_usec, end_usec;
	int family;                  /* AF_INET/AF_INET6; AF_UNSPEC for a name */
	bool by_name;                /* a hostname: a group of its own */
	atomic_int stage;
	atomic_int attached;         /* members whose check still waits */
	size_t n, allocated;
	struct ping_target *t;
	/* Loop only. */
	struct icmp **member;        /* member[i] is NULL once its check stopped */
	struct worker *job;
};

struct icmp {
	struct probe_check *check;
	struct ping_group *group;
	size_t idx;
};

/* ICMP idents in use by this process's liboping hosts (see the top). */
static pthread_mutex_t ident_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t ident_used[65536 / 64];

static bool ident_claim(uint16_t id)
{
	uint64_t bit = UINT64_C(1) << (id % 64);
	bool taken;

	pthread_mutex_lock(&ident_lock);
	taken = ident_used[id / 64] & bit;
	ident_used[id / 64] |= bit;
	pthread_mutex_unlock(&ident_lock);
	return !taken;
}

static void ident_release(uint16_t id)
{
	pthread_mutex_lock(&ident_lock);
	ident_used[id / 64] &= ~(UINT64_C(1) << (id % 64));
	pthread_mutex_unlock(&ident_lock);
}

static void group_free(void *arg)
{
	struct ping_group *g = arg;

	for (size_t i = 0; i < g->n; i++)
		free(g->t[i].host);
	free(g->t);
	free(g->member);
	free(g->source);
	free(g);
}

static void target_fail(struct ping_target *t, enum probe_outcome o, const char *what,
			const char *err)
{
	t->outcome = o;
	snprintf(t->msg, sizeof t->msg, "%s: %s", what, err);
}

static void group_fail(struct ping_group *g, enum probe_outcome o, const char *what,
		       const char *err)
{
	for (size_t i = 0; i < g->n; i++)
		if (g->t[i].outcome == PROBE_PASSED)
			target_fail(&g->t[i], o, what, err);
}

static enum probe_outcome oping_error_outcome(const char *err)
{
	/* liboping reports errors as text only (strerror or gai_strerror): map a
	 * strerror text back to its errno for the usual typing. */
	for (int e = 1; e < 134; e++)
		if (strcmp(err, strerror(e)) == 0)
			return probe_errno_outcome(e);
	if (strstr(err, "unreachable"))
		return PROBE_UNREACHABLE;
	return PROBE_ERROR;
}

static int source_family(const struct ping_group *g)
{
	struct in6_addr a6;

	if (!g->source || g->source_is_ifname)
		return AF_UNSPEC;
	return inet_pton(AF_INET6, g->source, &a6) == 1 ? AF_INET6 : AF_INET;
}

/* A group of one hostname: the only step that may hang on DNS. */
static int resolve_by_name(struct ping_group *g)
{
	struct ping_target *t = &g->t[0];
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_family = source_family(g) };
	struct addrinfo *ai = NULL;
	int r;

	r = getaddrinfo(t->host, NULL, &hints, &ai);
	if (r) {
		target_fail(t, r == EAI_AGAIN ? PROBE_DNS_TIMEOUT : PROBE_DNS_FAILURE, t->host,
			    gai_strerror(r));
		return -ENOENT;
	}
	r = getnameinfo(ai->ai_addr, ai->ai_addrlen, t->addr, sizeof t->addr, NULL, 0,
			NI_NUMERICHOST);
	g->family = ai->ai_family;
	if (r) {
		freeaddrinfo(ai);
		target_fail(t, PROBE_DNS_FAILURE, t->host, "no usable address");
		return -ENOENT;
	}
	/* As for a literal on the loop (icmp_start), with a socket of its own. */
	struct probe_path path = { .source = g->source, .source_is_ifname = g->source_is_ifname,
				   .has_mark = g->has_mark, .mark = g->mark };
	char why[64];
	r = probe_route_verdict(NULL, &path, ai->ai_addr, why, sizeof why);
	freeaddrinfo(ai);
	if (r) {
		t->outcome = PROBE_UNREACHABLE;
		snprintf(t->msg, sizeof t->msg, "%s", why);
		return -ENETUNREACH;
	}
	return 0;
}

static pingobj_t *group_open(struct ping_group *g)
{
	pingobj_t *p = ping_construct();

	if (!p) {
		group_fail(g, PROBE_ERROR, "ping", "out of memory");
		return NULL;
	}
	ping_setopt(p, PING_OPT_AF, &g->family);
	if (g->source && g->source_is_ifname && ping_setopt(p, PING_OPT_DEVICE, g->source) != 0) {
		group_fail(g, PROBE_ERROR, g->source, ping_get_error(p));
		goto fail;
	}
	if (g->source && !g->source_is_ifname && ping_setopt(p, PING_OPT_SOURCE, g->source) != 0) {
		group_fail(g, PROBE_ERROR, g->source, ping_get_error(p));
		goto fail;
	}
	if (g->has_mark) {
		int mark = (int)g->mark;
		if (ping_setopt(p, PING_OPT_MARK, &mark) != 0) {
			group_fail(g, PROBE_ERROR, "mark", ping_get_error(p));
			goto fail;
		}
	}
	return p;
fail:
	ping_destroy(p);
	return NULL;
}

/* The iterator of the host added as addr (liboping names a host by the string
 * it was added with). */
static pingobj_iter_t *host_iter(pingobj_t *p, const char *addr)
{
	for (pingobj_iter_t *it = ping_iterator_get(p); it; it = ping_iterator_next(it)) {
		char name[INET6_ADDRSTRLEN + 1];
		size_t len = sizeof name;

		if (ping_iterator_get_info(it, PING_INFO_USERNAME, name, &len) != 0)
			continue;
		name[sizeof name - 1] = '\0';
		if (strcmp(name, addr) == 0)
			return it;
	}
	return NULL;
}

/* Tie the host's iterator to t and claim its ident; false when the ident is
 * already in use in this process. */
static bool host_bind(pingobj_iter_t *it, struct ping_target *t)
{
	uint16_t id = 0;
	size_t len = sizeof id;

	ping_iterator_set_context(it, t);
	if (ping_iterator_get_info(it, PING_INFO_IDENT, &id, &len) != 0 || len != sizeof id)
		return true; /* cannot tell: nothing to claim */
	if (!ident_claim(id))
		return false;
	t->ident = id;
	t->ident_held = true;
	return true;
}

/* Add every target; one that liboping refuses fails alone. Returns how many
 * hosts the object holds, each iterator's context pointing at its target, each
 * ident unique in this process. */
static size_t group_add_hosts(struct ping_group *g, pingobj_t *p)
{
	size_t added = 0;

	for (size_t i = 0; i < g->n; i++) {
		struct ping_target *t = &g->t[i];
		pingobj_iter_t *it;
		int tries;

		/* liboping keeps one host per address: a duplicate shares its results. */
		if (t->outcome != PROBE_PASSED || t->same_as >= 0)
			continue;
		/* A taken ident: add the host again for a new random one. 64 draws
		 * all hitting taken idents would need ~64k hosts in this process. */
		for (tries = 0; tries < 64; tries++) {
			if (tries > 0)
				ping_host_remove(p, t->addr);
			if (ping_host_add(p, t->addr) != 0) {
				target_fail(t, oping_error_outcome(ping_get_error(p)), t->addr,
					    ping_get_error(p));
				break;
			}
			it = host_iter(p, t->addr);
			if (!it) {
				target_fail(t, PROBE_ERROR, t->addr, "host lost by liboping");
				break;
			}
			if (host_bind(it, t)) {
				t->added = true;
				break;
			}
		}
		if (tries == 64) {
			ping_host_remove(p, t->addr);
			target_fail(t, PROBE_ERROR, t->addr, "no free ICMP ident");
		}
		if (t->added)
			added++;
	}
	return added;
}

/* After one ping_send(): count each target's reply. err: ping_send() failed
 * (for one target or all); see the top for who gets err as a reason. */
static void round_collect(struct ping_group *g, pingobj_t *p, const char *err, uint64_t now)
{
	bool some_unsent = false;

	for (pingobj_iter_t *it = ping_iterator_get(p); it; it = ping_iterator_next(it)) {
		struct ping_target *t = ping_iterator_get_context(it);
		double latency = -1;
		unsigned seq = 0;
		size_t len = sizeof latency, slen = sizeof seq;

		if (!t)
			continue;
		if (ping_iterator_get_info(it, PING_INFO_SEQUENCE, &seq, &slen) == 0 &&
		    slen == sizeof seq) {
			t->unsent = seq == t->seq;
			some_unsent |= t->unsent;
			t->seq = seq;
		}
		if (ping_iterator_get_info(it, PING_INFO_LATENCY, &latency, &len) == 0 &&
		    latency >= 0) {
			t->replies++;
			t->rtt_sum_ms += latency;
			t->answered_usec = now + (uint64_t)(latency * USEC_PER_MSEC);
		}
	}
	for (size_t i = 0; i < g->n; i++) {
		struct ping_target *t = &g->t[i];

		if (!err || !t->added || t->outcome != PROBE_PASSED || t->answered_usec)
			continue;
		/* A silent target beside one whose send failed keeps its timeout. */
		if (t->unsent || !some_unsent) {
			t->err_outcome = oping_error_outcome(err);
			snprintf(t->err, sizeof t->err, "%s%s", t->unsent ? "send failed: " : "ping: ",
				 err);
		}
	}
}

static void group_rounds(struct ping_group *g, pingobj_t *p)
{
	for (unsigned round = 0; round < g->count && atomic_load(&g->attached) > 0; round++) {
		uint64_t now = probe_now_usec(), wait = g->timeout_usec;
		double secs;

		if (now + 10 * USEC_PER_MSEC >= g->end_usec)
			break;
		/* Whatever DNS took comes out of the last waits, not past the deadline. */
		if (wait > g->end_usec - now)
			wait = g->end_usec - now;
		secs = (double)wait / USEC_PER_SEC;
		ping_setopt(p, PING_OPT_TIMEOUT, &secs);
		for (size_t i = 0; i < g->n; i++)
			if (g->t[i].added && g->t[i].outcome == PROBE_PASSED) {
				g->t[i].sent++;
				g->t[i].answered_usec = 0;
				g->t[i].unsent = false;
			}
		round_collect(g, p, ping_send(p) < 0 ? ping_get_error(p) : NULL, now);
	}
}

static void group_work(void *arg)
{
	struct ping_group *g = arg;
	pingobj_t *p = NULL;

	if (g->by_name && resolve_by_name(g) < 0)
		goto out;
	atomic_store(&g->stage, STAGE_PINGING);
	p = group_open(g);
	if (p && group_add_hosts(g, p) > 0)
		group_rounds(g, p);
	/* A target that never got a reply but met an error fails with it. */
	for (size_t i = 0; i < g->n; i++) {
		struct ping_target *t = &g->t[i];

		if (t->outcome == PROBE_PASSED && t->replies == 0 && t->err[0]) {
			t->outcome = t->err_outcome;
			snprintf(t->msg, sizeof t->msg, "%s", t->err);
		}
	}
	for (size_t i = 0; i < g->n; i++) {
		struct ping_target *t = &g->t[i], *first;

		if (t->same_as < 0)
			continue;
		first = &g->t[t->same_as];
		t->outcome = first->outcome;
		t->sent = first->sent;
		t->replies = first->replies;
		t->rtt_sum_ms = first->rtt_sum_ms;
		t->answered_usec = first->answered_usec;
		memcpy(t->msg, first->msg, sizeof t->msg);
	}
out:
	if (p)
		ping_destroy(p);
	/* Only once the hosts are gone may another group draw their idents. */
	for (size_t i = 0; i < g->n; i++)
		if (g->t[i].ident_held) {
			ident_release(g->t[i].ident);
			g->t[i].ident_held = false;
		}
	atomic_store(&g->stage, STAGE_DONE);
}

static void judge(struct probe_check *c, const struct ping_target *t)
{
	unsigned need = c->cfg->ping_min_replies ? c->cfg->ping_min_replies : 1;

	if (t->outcome != PROBE_PASSED)
		probe_finish(c, t->outcome, "%s", t->msg);
	else if (t->replies >= need)
		/* Elapsed: when its last echo was answered, not when the group's last
		 * wait (for some other, silent target) ended. */
		probe_finish_at(c, t->answered_usec ? t->answered_usec : probe_now_usec(),
				PROBE_PASSED, "%u of %u replies, %.1f ms", t->replies, t->sent,
				t->rtt_sum_ms / t->replies);
	else if (t->replies == 0)
		probe_finish(c, PROBE_TIMEOUT, "no reply to %u echo requests", t->sent);
	else
		probe_finish(c, PROBE_BAD_STATUS, "%u of %u replies (%u needed)", t->replies,
			     t->sent, need);
}

static void group_done(void *arg)
{
	struct ping_group *g = arg;

	g->job = NULL;
	/* Each judged check detaches itself (icmp_stop); the job frees g after this. */
	for (size_t i = 0; i < g->n; i++)
		if (g->member[i])
			judge(g->member[i]->check, &g->t[i]);
}

static bool same_options(const struct ping_group *g, const struct cfg_check *cc, int family,
			 unsigned count)
{
	return !g->by_name && g->family == family && g->count == count &&
	       g->timeout_usec == cc->timeout_usec && g->has_mark == cc->has_mark &&
	       (!g->has_mark || g->mark == cc->mark) && g->source_is_ifname == cc->source_is_ifname &&
	       (g->source ? cc->source && strcmp(g->source, cc->source) == 0 : !cc->source);
}

static int group_new(struct probe_check *c, int family, unsigned count, struct ping_group **ret)
{
	const struct cfg_check *cc = c->cfg;
	struct ping_group *g = calloc(1, sizeof *g);

	if (!g)
		return -ENOMEM;
	if (cc->source && !(g->source = strdup(cc->source))) {
		free(g);
		return -ENOMEM;
	}
	g->source_is_ifname = cc->source_is_ifname;
	g->has_mark = cc->has_mark;
	g->mark = cc->mark;
	g->count = count;
	g->timeout_usec = cc->timeout_usec;
	g->end_usec = c->start_usec + c->budget_usec;
	g->family = family;
	g->by_name = family == AF_UNSPEC;
	atomic_init(&g->stage, g->by_name ? STAGE_RESOLVING : STAGE_PINGING);
	atomic_init(&g->attached, 0);
	*ret = g;
	return 0;
}

static int group_join(struct ping_group *g, struct icmp *ic, const char *host)
{
	struct ping_target *t;

	if (g->n == g->allocated) {
		size_t a = g->allocated ? 2 * g->allocated : 4;
		struct ping_target *nt = realloc(g->t, a * sizeof *nt);
		struct icmp **nm;

		if (!nt)
			return -ENOMEM;
		g->t = nt;
		/* An array of pointers: sizeof a pointer is meant. */
		nm = realloc(g->member, a * sizeof *nm); /* NOLINT(bugprone-sizeof-expression) */
		if (!nm)
			return -ENOMEM;
		g->member = nm;
		g->allocated = a;
	}
	t = &g->t[g->n];
	memset(t, 0, sizeof *t);
	t->same_as = -1;
	t->outcome = PROBE_PASSED;
	if (!(t->host = strdup(host)))
		return -ENOMEM;
	if (!g->by_name) {
		/* Canonical text, so that 10.0.0.01-style spellings cannot hide a duplicate. */
		unsigned char bin[sizeof(struct in6_addr)];
		inet_pton(g->family, host, bin);
		inet_ntop(g->family, bin, t->addr, sizeof t->addr);
		for (size_t i = 0; i < g->n; i++)
			if (g->t[i].same_as < 0 && strcmp(g->t[i].addr, t->addr) == 0) {
				t->same_as = (long)i;
				break;
			}
	}
	ic->group = g;
	ic->idx = g->n;
	g->member[g->n++] = ic;
	atomic_fetch_add(&g->attached, 1);
	return 0;
}

static int literal_family(const char *host)
{
	unsigned char bin[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, host, bin) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, host, bin) == 1)
		return AF_INET6;
	return AF_UNSPEC;
}

/* No route, or a link without carrier (route.c): the check fails now. */
static bool path_refused(struct probe_check *c, int family, const char *host)
{
	struct sockaddr_storage ss = { .ss_family = (sa_family_t)family };
	struct probe_path path = probe_path_of(c->cfg);
	char why[64];
	int err;

	inet_pton(family, host, family == AF_INET ? (void *)&((struct sockaddr_in *)&ss)->sin_addr
						  : (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr);
	err = probe_route_verdict(probe_run_route(c->run), &path, (struct sockaddr *)&ss, why, sizeof why);
	if (err)
		probe_finish(c, PROBE_UNREACHABLE, "%s", why);
	return err != 0;
}

static int icmp_start(struct probe_check *c)
{
	const struct cfg_check *cc = c->cfg;
	const char *host = cc->host ? cc->host : cc->target;
	struct ping_group **pending = probe_run_ping_groups(c->run), *g = NULL;
	unsigned count = cc->ping_count ? cc->ping_count : 1;
	int family, r;
	struct icmp *ic;

	if (!host)
		return -EINVAL;
	family = literal_family(host);
	if (family != AF_UNSPEC && path_refused(c, family, host))
		return 0;
	ic = calloc(1, sizeof *ic);
	if (!ic)
		return -ENOMEM;
	ic->check = c;
	if (family != AF_UNSPEC)
		for (g = *pending; g && !same_options(g, cc, family, count); g = g->next)
			;
	if (!g) {
		r = group_new(c, family, count, &g);
		if (r < 0) {
			free(ic);
			return r;
		}
		g->next = *pending;
		*pending = g;
	}
	r = group_join(g, ic, host);
	if (r < 0) {
		/* An empty group stays on the list; probe_icmp_launch() frees it. */
		free(ic);
		return r;
	}
	c->impl = ic;
	return 0;
}

void probe_icmp_launch(struct ping_group **pending, sd_event *e)
{
	while (*pending) {
		struct ping_group *g = *pending;
		int r;

		*pending = g->next;
		g->next = NULL;
		if (atomic_load(&g->attached) == 0) {
			group_free(g);
			continue;
		}
		r = worker_start(e, 0, group_work, group_done, group_free, g, &g->job);
		if (r >= 0)
			continue;
		for (size_t i = 0; i < g->n; i++)
			if (g->member[i])
				probe_finish(g->member[i]->check, PROBE_ERROR, "cannot start: %s",
					     strerror(-r));
		group_free(g);
	}
}

static void icmp_expire(struct probe_check *c)
{
	struct icmp *ic = c->impl;

	if (ic && ic->group->job && atomic_load(&ic->group->stage) == STAGE_RESOLVING)
		probe_finish(c, PROBE_DNS_TIMEOUT, "%s not resolved in %llu ms",
			     c->cfg->host ? c->cfg->host : c->cfg->target,
			     (unsigned long long)(c->budget_usec / USEC_PER_MSEC));
}

static void icmp_stop(struct probe_check *c)
{
	struct icmp *ic = c->impl;
	struct ping_group *g;

	if (!ic)
		return;
	g = ic->group;
	g->member[ic->idx] = NULL;
	/* The last member to give up lets the worker go; it frees g when done. */
	if (atomic_fetch_sub(&g->attached, 1) == 1 && g->job) {
		struct worker *j = g->job;

		/* g may be freed right here, if the worker has already returned. */
		g->job = NULL;
		worker_abandon(j);
	}
	free(ic);
}

const struct probe_ops probe_icmp_ops = {
	.start = icmp_start,
	.expire = icmp_expire,
	.stop = icmp_stop,
};
