/* tcp check: a non-blocking connect watched on the loop (relayd check_tcp.c).
 * Pass on an established connection; each resolved address is tried in turn
 * until one connects or the deadline passes. source binds the socket to an
 * interface (SO_BINDTODEVICE) or an address; mark sets SO_MARK. */
#include "config.h"

#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "probes/check.h"

struct tcp {
	struct probe_check *check;
	struct probe_resolve *resolve;
	struct addrinfo *ai, *cur;
	int fd;
	sd_event_source *io;
	int last_err;
};

static void tcp_close(struct tcp *t)
{
	t->io = sd_event_source_disable_unref(t->io);
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
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

static void tcp_next(struct tcp *t);

static void tcp_failed(struct tcp *t, int err)
{
	t->last_err = err;
	tcp_close(t);
	t->cur = t->cur->ai_next;
	tcp_next(t);
}

static int on_connect(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct tcp *t = userdata;
	int err = 0;
	socklen_t len = sizeof err;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == 0) {
		probe_finish(t->check, PROBE_PASSED, "connected");
		return 0;
	}
	tcp_failed(t, err);
	return 0;
}

static void tcp_next(struct tcp *t)
{
	struct probe_check *c = t->check;
	int r;

	for (; t->cur; t->cur = t->cur->ai_next) {
		r = probe_tcp_socket(c->cfg, t->cur->ai_family, &t->fd);
		if (r < 0) {
			t->last_err = -r;
			continue;
		}
		if (connect(t->fd, t->cur->ai_addr, t->cur->ai_addrlen) == 0) {
			probe_finish(c, PROBE_PASSED, "connected");
			return;
		}
		if (errno == EINPROGRESS) {
			r = sd_event_add_io(c->event, &t->io, t->fd, EPOLLOUT, on_connect, t);
			if (r >= 0)
				return;
			t->last_err = -r;
		} else
			t->last_err = errno;
		tcp_close(t);
	}
	probe_finish(c, probe_errno_outcome(t->last_err), "%s", strerror(t->last_err));
}

static void on_resolved(int gai_err, struct addrinfo *ai, void *userdata)
{
	struct tcp *t = userdata;

	t->resolve = NULL;
	if (gai_err) {
		probe_finish(t->check, PROBE_DNS_FAILURE, "%s: %s", t->check->cfg->host,
			     gai_strerror(gai_err));
		return;
	}
	t->ai = t->cur = ai;
	tcp_next(t);
}

static int tcp_start(struct probe_check *c)
{
	struct tcp *t;
	int family = probe_source_family(c->cfg);

	t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	t->check = c;
	t->fd = -1;
	t->last_err = ETIMEDOUT;
	c->impl = t;
	if (!c->cfg->host)
		return -EINVAL;
	if (probe_resolve_numeric(c->cfg->host, c->cfg->port, family, &t->ai) == 0) {
		t->cur = t->ai;
		tcp_next(t);
		return 0;
	}
	return probe_resolve_start(c->event, c->cfg->host, c->cfg->port, family, on_resolved, t,
				   &t->resolve);
}

static void tcp_expire(struct probe_check *c)
{
	struct tcp *t = c->impl;

	if (t->resolve)
		probe_finish(c, PROBE_DNS_TIMEOUT, "%s not resolved in %llu ms", c->cfg->host,
			     (unsigned long long)(c->budget_usec / USEC_PER_MSEC));
	else
		probe_finish(c, PROBE_TIMEOUT, "no connection in %llu ms",
			     (unsigned long long)(c->budget_usec / USEC_PER_MSEC));
}

static void tcp_stop(struct probe_check *c)
{
	struct tcp *t = c->impl;

	if (!t)
		return;
	probe_resolve_cancel(t->resolve);
	tcp_close(t);
	if (t->ai)
		freeaddrinfo(t->ai);
	free(t);
}

const struct probe_ops probe_tcp_ops = {
	.start = tcp_start,
	.expire = tcp_expire,
	.stop = tcp_stop,
};
