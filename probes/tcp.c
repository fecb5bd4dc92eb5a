/* tcp check: a non-blocking connect watched on the loop (relayd check_tcp.c).
 * Pass on an established connection; or, for the plain-text dialogues of
 * http and smtp checks (talk.c), hand the connected socket on. The resolved addresses are raced as in
 * Happy Eyeballs (RFC 8305): families interleaved, the next address started
 * 250 ms after the previous one (at once when it fails), every socket kept
 * until one connects or all have failed; the first to connect wins. So a
 * black-holed AAAA cannot spend the whole timeout before the A is tried.
 * source binds the socket to an interface (SO_BINDTODEVICE) or an address;
 * mark sets SO_MARK. */
#include "config.h"

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "probes/check.h"

#define TCP_STAGGER_USEC (250 * USEC_PER_MSEC)

struct tcp_attempt {
	struct probe_tcp *tcp;
	int fd;
	sd_event_source *io;
};

struct probe_tcp {
	struct probe_check *check;
	probe_tcp_connected_fn connected; /* NULL: the tcp check, which passes here */
	void *userdata;
	char *host;
	struct probe_resolve *resolve;
	struct addrinfo *ai;
	struct addrinfo **order;     /* the addresses, families interleaved */
	struct tcp_attempt *att;     /* att[i] for order[i] */
	size_t n, next;              /* next: the first address not started yet */
	size_t in_flight;
	sd_event_source *stagger;
	int last_err;
	char last_why[64];           /* the path's own fault (route.c), if last_err came from it */
};

static void attempt_close(struct tcp_attempt *a)
{
	a->io = sd_event_source_disable_unref(a->io);
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
}

/* A socket set up the way the check says it must leave. */
int probe_tcp_socket(const struct cfg_check *cc, int family, int *ret_fd)
{
	int fd, r;

	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0)
		return -errno;
	if (cc->has_mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &cc->mark, sizeof cc->mark) < 0)
		goto fail;
	if (cc->source && cc->source_is_ifname) {
		if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, cc->source,
			       (socklen_t)strlen(cc->source) + 1) < 0)
			goto fail;
	} else if (cc->source) {
		struct sockaddr_storage ss;
		socklen_t len;

		if (probe_source_addr(cc->source, &ss, &len) < 0) {
			errno = EINVAL;
			goto fail;
		}
		if (bind(fd, (struct sockaddr *)&ss, len) < 0)
			goto fail;
	}
	*ret_fd = fd;
	return 0;
fail:
	r = -errno;
	close(fd);
	return r;
}

/* The family a source address forces, AF_UNSPEC for none or an interface. */
int probe_source_family(const struct cfg_check *cc)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (!cc->source || cc->source_is_ifname || probe_source_addr(cc->source, &ss, &len) < 0)
		return AF_UNSPEC;
	return ss.ss_family;
}

static void tcp_next(struct probe_tcp *t);
static void tcp_won(struct probe_tcp *t, struct tcp_attempt *a);

/* An attempt failed (why: NULL, or what route.c said): start the next
 * address now, or give up when none is left and none is in flight. */
static void attempt_failed_why(struct tcp_attempt *a, int err, const char *why)
{
	struct probe_tcp *t = a->tcp;

	t->last_err = err;
	snprintf(t->last_why, sizeof t->last_why, "%s", why ? why : "");
	if (a->fd >= 0)
		t->in_flight--;
	attempt_close(a);
	if (t->next < t->n)
		tcp_next(t);
	else if (t->in_flight == 0)
		probe_finish(t->check, t->last_why[0] ? PROBE_UNREACHABLE : probe_errno_outcome(t->last_err),
			     "%s", t->last_why[0] ? t->last_why : strerror(t->last_err));
}

static void attempt_failed(struct tcp_attempt *a, int err)
{
	attempt_failed_why(a, err, NULL);
}

/* The first attempt to connect wins; the others are closed by whoever frees t
 * (tcp_stop(), or the dialogue that takes the socket). t may be gone after. */
static void tcp_won(struct probe_tcp *t, struct tcp_attempt *a)
{
	int fd = a->fd;

	if (!t->connected) {
		probe_finish(t->check, PROBE_PASSED, "connected");
		return;
	}
	a->io = sd_event_source_disable_unref(a->io);
	a->fd = -1;
	t->in_flight--;
	t->connected(t->userdata, fd);
}

static int on_connect(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct tcp_attempt *a = userdata;
	int err = 0;
	socklen_t len = sizeof err;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == 0) {
		tcp_won(a->tcp, a);
		return 0;
	}
	attempt_failed(a, err);
	return 0;
}

static int on_stagger(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct probe_tcp *t = userdata;

	if (t->next < t->n)
		tcp_next(t);
	return 0;
}

/* Start the next address; arm the timer that starts the one after it. */
static void tcp_next(struct probe_tcp *t)
{
	struct probe_check *c = t->check;
	struct tcp_attempt *a;
	struct addrinfo *ai;
	int r;

	if (t->next >= t->n)
		return;
	a = &t->att[t->next];
	a->tcp = t; /* as tcp_begin set it; said again where the analyzer can see it */
	ai = t->order[t->next++];
	/* No route, or a link without carrier: a SYN would only be dropped. */
	struct probe_path path = probe_path_of(c->cfg);
	char why[64];
	a->fd = -1;
	if ((r = probe_route_verdict(probe_run_route(c->run), &path, ai->ai_addr, why, sizeof why))) {
		attempt_failed_why(a, r, why);
		return;
	}
	r = probe_tcp_socket(c->cfg, ai->ai_family, &a->fd);
	if (r < 0) {
		a->fd = -1;
		attempt_failed(a, -r);
		return;
	}
	t->in_flight++;
	if (connect(a->fd, ai->ai_addr, ai->ai_addrlen) == 0) {
		tcp_won(t, a);
		return;
	}
	if (errno != EINPROGRESS) {
		attempt_failed(a, errno);
		return;
	}
	r = sd_event_add_io(c->event, &a->io, a->fd, EPOLLOUT, on_connect, a);
	if (r < 0) {
		attempt_failed(a, -r);
		return;
	}
	if (t->next < t->n) {
		uint64_t when = probe_now_usec() + TCP_STAGGER_USEC;

		/* Without the timer the next address waits for this one to fail. */
		if (t->stagger) {
			if (sd_event_source_set_time(t->stagger, when) >= 0)
				sd_event_source_set_enabled(t->stagger, SD_EVENT_ONESHOT);
		} else
			sd_event_add_time(c->event, &t->stagger, CLOCK_MONOTONIC, when,
					  USEC_PER_MSEC, on_stagger, t);
	}
}

/* Take the addresses in turns of family (RFC 8305 4), keeping the resolver's
 * order within each family. */
static int tcp_begin(struct probe_tcp *t)
{
	struct addrinfo *p, *other;
	size_t n = 0, k = 0;
	int fam;

	for (p = t->ai; p; p = p->ai_next)
		n++;
	if (n == 0) {
		probe_finish(t->check, PROBE_DNS_FAILURE, "no address");
		return 0;
	}
	/* order is an array of pointers: sizeof a pointer is meant. */
	t->order = calloc(n, sizeof *t->order); /* NOLINT(bugprone-sizeof-expression) */
	t->att = calloc(n, sizeof *t->att);
	if (!t->order || !t->att)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		t->att[i].tcp = t;
		t->att[i].fd = -1;
	}
	/* p walks the first address's family, other the rest; each address is
	 * taken once, so k never passes n (said for the analyzer too). */
	fam = t->ai->ai_family;
	for (p = other = t->ai; (p || other) && k < n;) {
		for (; p && p->ai_family != fam; p = p->ai_next)
			;
		if (p) {
			t->order[k++] = p;
			p = p->ai_next;
		}
		for (; other && other->ai_family == fam; other = other->ai_next)
			;
		if (other && k < n) {
			t->order[k++] = other;
			other = other->ai_next;
		}
	}
	t->n = k;
	tcp_next(t);
	return 0;
}

static void on_resolved(int gai_err, struct addrinfo *ai, void *userdata)
{
	struct probe_tcp *t = userdata;
	int r;

	t->resolve = NULL;
	if (gai_err) {
		probe_finish(t->check, PROBE_DNS_FAILURE, "%s: %s", t->host,
			     gai_strerror(gai_err));
		return;
	}
	t->ai = ai;
	r = tcp_begin(t);
	if (r < 0)
		probe_finish(t->check, PROBE_ERROR, "%s", strerror(-r));
}

int probe_tcp_new(struct probe_check *c, const char *host, probe_tcp_connected_fn connected,
		  void *userdata, struct probe_tcp **ret)
{
	struct probe_tcp *t;

	if (!host)
		return -EINVAL;
	t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	t->host = strdup(host);
	if (!t->host) {
		free(t);
		return -ENOMEM;
	}
	t->check = c;
	t->connected = connected;
	t->userdata = userdata;
	t->last_err = ETIMEDOUT;
	*ret = t;
	return 0;
}

int probe_tcp_begin(struct probe_tcp *t, uint16_t port)
{
	struct probe_check *c = t->check;
	int family = probe_source_family(c->cfg);

	if (probe_resolve_numeric(t->host, port, family, &t->ai) == 0)
		return tcp_begin(t);
	return probe_resolve_start(c->event, t->host, port, family, on_resolved, t, &t->resolve);
}

void probe_tcp_expire(struct probe_check *c, struct probe_tcp *t)
{
	if (t->resolve)
		probe_finish(c, PROBE_DNS_TIMEOUT, "%s not resolved in %llu ms", t->host,
			     (unsigned long long)(c->budget_usec / USEC_PER_MSEC));
	else
		probe_finish(c, PROBE_TIMEOUT, "no connection in %llu ms",
			     (unsigned long long)(c->budget_usec / USEC_PER_MSEC));
}

void probe_tcp_free(struct probe_tcp *t)
{
	if (!t)
		return;
	probe_resolve_cancel(t->resolve);
	for (size_t i = 0; i < t->n; i++)
		attempt_close(&t->att[i]);
	t->stagger = sd_event_source_disable_unref(t->stagger);
	free(t->att);
	free(t->order);
	if (t->ai)
		freeaddrinfo(t->ai);
	free(t->host);
	free(t);
}

static int tcp_start(struct probe_check *c)
{
	struct probe_tcp *t;
	int r = probe_tcp_new(c, c->cfg->host, NULL, NULL, &t);

	if (r < 0)
		return r;
	/* Before begin, which may finish the check, and stop() frees c->impl. */
	c->impl = t;
	return probe_tcp_begin(t, c->cfg->port);
}

static void tcp_expire(struct probe_check *c)
{
	probe_tcp_expire(c, c->impl);
}

static void tcp_stop(struct probe_check *c)
{
	probe_tcp_free(c->impl);
}

const struct probe_ops probe_tcp_ops = {
	.start = tcp_start,
	.expire = tcp_expire,
	.stop = tcp_stop,
};
