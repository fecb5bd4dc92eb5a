/* Name resolution that cannot hold a check past its deadline: getaddrinfo()
 * runs on a worker (agent/worker.c); the check's deadline timer decides when
 * to stop waiting and reports `dns timeout`. A resolver that answers later
 * finds its request abandoned and frees it. IP literals never reach DNS. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/check.h"

struct probe_resolve {
	struct worker *job;
	probe_resolve_fn cb;
	void *userdata;
	/* Owned by the worker until done; copies, so the caller's cfg may go. */
	char *host;
	char port[8];
	int family;
	int gai_err;
	struct addrinfo *ai;
};

static void hints_for(struct addrinfo *h, int family, int flags)
{
	memset(h, 0, sizeof *h);
	h->ai_family = family;
	h->ai_socktype = SOCK_STREAM;
	h->ai_protocol = IPPROTO_TCP;
	h->ai_flags = flags;
}

int probe_resolve_numeric(const char *host, uint16_t port, int family, struct addrinfo **ret)
{
	struct addrinfo hints;
	char p[8];

	hints_for(&hints, family, AI_NUMERICHOST | AI_NUMERICSERV);
	snprintf(p, sizeof p, "%u", port);
	return getaddrinfo(host, p, &hints, ret) == 0 ? 0 : -EINVAL;
}

static void resolve_work(void *arg)
{
	struct probe_resolve *r = arg;
	struct addrinfo hints;

	/* AI_ADDRCONFIG: no AAAA answers to try on a host without IPv6. */
	hints_for(&hints, r->family, AI_NUMERICSERV | AI_ADDRCONFIG);
	r->gai_err = getaddrinfo(r->host, r->port, &hints, &r->ai);
	if (r->gai_err)
		r->ai = NULL;
}

static void resolve_free(void *arg)
{
	struct probe_resolve *r = arg;

	if (r->ai)
		freeaddrinfo(r->ai);
	free(r->host);
	free(r);
}

static void resolve_done(void *arg)
{
	struct probe_resolve *r = arg;
	struct addrinfo *ai = r->ai;

	r->ai = NULL;
	r->job = NULL;
	/* The request is spent: the job frees it when this returns. */
	r->cb(r->gai_err, ai, r->userdata);
}

int probe_resolve_start(sd_event *e, const char *host, uint16_t port, int family,
			probe_resolve_fn cb, void *userdata, struct probe_resolve **ret)
{
	struct probe_resolve *r;
	int err;

	r = calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	r->host = strdup(host);
	if (!r->host) {
		free(r);
		return -ENOMEM;
	}
	snprintf(r->port, sizeof r->port, "%u", port);
	r->family = family;
	r->cb = cb;
	r->userdata = userdata;
	err = worker_start(e, 0, resolve_work, resolve_done, resolve_free, r, &r->job);
	if (err < 0) {
		resolve_free(r);
		return err;
	}
	*ret = r;
	return 0;
}

void probe_resolve_cancel(struct probe_resolve *r)
{
	/* After the callback the request belongs to the job alone: callers drop
	 * their pointer in the callback, so r is still in flight here. */
	if (r)
		worker_abandon(r->job);
}
