/* Before a check sends anything, the kernel is asked which link its packets
 * would leave by (RTM_GETROUTE, as `ip route get DST [from SRC] [oif DEV]
 * [mark M]`) and whether that link has carrier (RTM_GETLINK: IFF_LOWER_UP
 * follows the driver at once, unlike the rtnetlink events, which the kernel
 * holds back up to a second). A route that leaves by a link without carrier
 * stays in the table (marked linkdown), so a connect over it would only time
 * out: such a check fails at once, "no carrier on eth0", and so does one
 * with no route at all. Anything the kernel cannot tell (no netlink, an
 * error other than unreachable) lets the check go on as before.
 *
 * The answers are cached for the run: the checks of a run usually share a
 * few targets and links, and a run is short enough not to outlive them. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "probes/check.h"

#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000
#endif

struct route_answer {
	int family;
	unsigned char dst[16];
	int scope;                /* an IPv6 link-local address's interface; 0: none */
	char *source;             /* the check's source, copied; NULL: none */
	bool has_mark;
	uint32_t mark;
	int err;                  /* what probe_route_verdict returns */
	char why[64];
};

struct link_answer {
	int ifindex;
	unsigned flags;
	char name[IFNAMSIZ];
};

/* A link's answer carries its statistics and per-family settings: a few KiB. */
#define ANSWER_SIZE 16384

struct probe_route {
	int fd;                   /* -1: not opened yet */
	char *buf;                /* ANSWER_SIZE, aligned by calloc */
	bool broken;              /* no netlink here: every check goes on */
	unsigned seq;
	struct route_answer *r;
	size_t n_r, alloc_r;
	struct link_answer *l;
	size_t n_l, alloc_l;
};

struct probe_route *probe_route_new(void)
{
	struct probe_route *pr = calloc(1, sizeof *pr);

	if (pr)
		pr->fd = -1;
	return pr;
}

void probe_route_free(struct probe_route *pr)
{
	if (!pr)
		return;
	if (pr->fd >= 0)
		close(pr->fd);
	free(pr->buf);
	for (size_t i = 0; i < pr->n_r; i++)
		free(pr->r[i].source);
	free(pr->r);
	free(pr->l);
	free(pr);
}

static void addattr(struct nlmsghdr *h, size_t max, unsigned short type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));

	if (NLMSG_ALIGN(h->nlmsg_len) + RTA_SPACE(len) > max)
		return;
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	h->nlmsg_len = (uint32_t)(NLMSG_ALIGN(h->nlmsg_len) + RTA_SPACE(len));
}

/* Send one request and read its answer into pr->buf: the length, or a negative
 * errno (the kernel's own, from NLMSG_ERROR). The kernel answers such a
 * request while it is being sent; the receive timeout is only a bound. */
static ssize_t ask(struct probe_route *pr, struct nlmsghdr *req)
{
	if (pr->fd < 0) {
		if (!pr->buf && !(pr->buf = calloc(1, ANSWER_SIZE)))
			return -ENOMEM;
		struct timeval tv = { .tv_usec = 100 * 1000 };

		pr->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
		if (pr->fd < 0) {
			pr->broken = true;
			return -errno;
		}
		(void)setsockopt(pr->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	}
	req->nlmsg_seq = ++pr->seq;
	if (send(pr->fd, req, req->nlmsg_len, 0) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(pr->fd, pr->buf, ANSWER_SIZE, 0);
		const struct nlmsghdr *h = (const struct nlmsghdr *)pr->buf;

		if (n < 0)
			return -errno;
		if (!NLMSG_OK(h, (int)n))
			return -EIO;
		if (h->nlmsg_seq != pr->seq)
			continue; /* a late answer to an earlier request */
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(h);
			return e->error < 0 ? e->error : -EIO;
		}
		return n;
	}
}

/* The link's flags, cached by ifindex; false when the kernel cannot tell. */
static bool link_flags(struct probe_route *pr, int ifindex, struct link_answer **ret)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} req = {
		.h = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)), .nlmsg_type = RTM_GETLINK,
		       .nlmsg_flags = NLM_F_REQUEST },
		.i = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex },
	};

	for (size_t i = 0; i < pr->n_l; i++)
		if (pr->l[i].ifindex == ifindex) {
			*ret = &pr->l[i];
			return true;
		}
	ssize_t n = ask(pr, &req.h);
	const struct nlmsghdr *h = (const struct nlmsghdr *)pr->buf;
	if (n < 0 || h->nlmsg_type != RTM_NEWLINK)
		return false;
	if (pr->n_l == pr->alloc_l) {
		size_t a = pr->alloc_l ? 2 * pr->alloc_l : 4;
		struct link_answer *m = realloc(pr->l, a * sizeof *m);
		if (!m)
			return false;
		pr->l = m;
		pr->alloc_l = a;
	}
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	struct link_answer *l = &pr->l[pr->n_l++];
	int len = (int)IFLA_PAYLOAD(h);
	l->ifindex = ifindex;
	l->flags = ifi->ifi_flags;
	snprintf(l->name, sizeof l->name, "if%d", ifindex);
	for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == IFLA_IFNAME)
			snprintf(l->name, sizeof l->name, "%.*s", (int)RTA_PAYLOAD(a), (const char *)RTA_DATA(a));
	*ret = l;
	return true;
}

/* `ip route get`: the link the route leaves by (> 0), 0 when the kernel
 * cannot tell, or -ENETUNREACH / -EHOSTUNREACH when there is no route. */
static int route_oif(struct probe_route *pr, const struct probe_path *p, int family, const void *dst,
		     int scope)
{
	struct {
		struct nlmsghdr h;
		struct rtmsg r;
		char attrs[128]; /* cppcheck-suppress unusedStructMember ; room for addattr() */
	} req = {
		.h = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg)), .nlmsg_type = RTM_GETROUTE,
		       .nlmsg_flags = NLM_F_REQUEST },
		.r = { .rtm_family = (unsigned char)family },
	};
	size_t alen = family == AF_INET ? 4 : 16;
	unsigned char src[16];

	req.r.rtm_dst_len = (unsigned char)(alen * 8);
	addattr(&req.h, sizeof req, RTA_DST, dst, alen);
	if (p->source && p->source_is_ifname) {
		int oif = (int)if_nametoindex(p->source);
		if (oif == 0)
			return 0; /* the socket's bind will say so */
		addattr(&req.h, sizeof req, RTA_OIF, &oif, sizeof oif);
	} else if (p->source) {
		if (inet_pton(family, p->source, src) != 1)
			return 0;
		req.r.rtm_src_len = (unsigned char)(alen * 8);
		addattr(&req.h, sizeof req, RTA_SRC, src, alen);
	}
	if (scope && !(p->source && p->source_is_ifname))
		addattr(&req.h, sizeof req, RTA_OIF, &scope, sizeof scope);
	if (p->has_mark)
		addattr(&req.h, sizeof req, RTA_MARK, &p->mark, sizeof p->mark);

	ssize_t n = ask(pr, &req.h);
	if (n == -ENETUNREACH || n == -EHOSTUNREACH)
		return (int)n;
	const struct nlmsghdr *h = (const struct nlmsghdr *)pr->buf;
	if (n < 0 || h->nlmsg_type != RTM_NEWROUTE)
		return 0;
	const struct rtmsg *rt = NLMSG_DATA(h);
	int len = (int)RTM_PAYLOAD(h);
	for (const struct rtattr *a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) >= sizeof(int))
			return *(const int *)RTA_DATA(a);
	return 0;
}

static bool same_key(const struct route_answer *a, const struct probe_path *p, int family,
		     const void *dst, int scope)
{
	return a->family == family && memcmp(a->dst, dst, family == AF_INET ? 4 : 16) == 0 &&
	       a->scope == scope &&
	       a->has_mark == p->has_mark && (!p->has_mark || a->mark == p->mark) &&
	       (a->source ? p->source && strcmp(a->source, p->source) == 0 : !p->source);
}

static int judge(struct probe_route *pr, const struct probe_path *p, int family, const void *dst,
		 int scope, char *why, size_t size)
{
	struct link_answer *l;
	int oif = route_oif(pr, p, family, dst, scope);

	if (oif == -ENETUNREACH || oif == -EHOSTUNREACH) {
		snprintf(why, size, "no route to host");
		return -oif;
	}
	if (oif <= 0 || !link_flags(pr, oif, &l))
		return 0;
	if (!(l->flags & IFF_UP)) {
		snprintf(why, size, "%s is down", l->name);
		return ENETDOWN;
	}
	if (!(l->flags & IFF_LOWER_UP)) {
		snprintf(why, size, "no carrier on %s", l->name);
		return ENETDOWN;
	}
	return 0;
}

int probe_route_verdict(struct probe_route *pr, const struct probe_path *p, const struct sockaddr *sa,
			char *why, size_t size)
{
	const void *dst;
	int family = sa->sa_family, err, scope = 0;

	if (family == AF_INET) {
		dst = &((const struct sockaddr_in *)sa)->sin_addr;
	} else if (family == AF_INET6) {
		dst = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		scope = (int)((const struct sockaddr_in6 *)sa)->sin6_scope_id;
	} else
		return 0;
	if (!pr) {
		/* No run to cache in (a worker thread): a socket of its own. */
		struct probe_route *own = probe_route_new();
		if (!own)
			return 0;
		err = probe_route_verdict(own, p, sa, why, size);
		probe_route_free(own);
		return err;
	}
	if (pr->broken)
		return 0;
	for (size_t i = 0; i < pr->n_r; i++)
		if (same_key(&pr->r[i], p, family, dst, scope)) {
			snprintf(why, size, "%s", pr->r[i].why);
			return pr->r[i].err;
		}
	char text[64] = "";
	err = judge(pr, p, family, dst, scope, text, sizeof text);
	snprintf(why, size, "%s", text);
	if (pr->n_r == pr->alloc_r) {
		size_t a = pr->alloc_r ? 2 * pr->alloc_r : 8;
		struct route_answer *m = realloc(pr->r, a * sizeof *m);
		if (!m)
			return err;
		pr->r = m;
		pr->alloc_r = a;
	}
	struct route_answer *r = &pr->r[pr->n_r];
	memset(r, 0, sizeof *r);
	if (p->source && !(r->source = strdup(p->source)))
		return err;
	pr->n_r++;
	r->family = family;
	r->scope = scope;
	memcpy(r->dst, dst, family == AF_INET ? 4 : 16);
	r->has_mark = p->has_mark;
	r->mark = p->mark;
	r->err = err;
	memcpy(r->why, text, sizeof r->why);
	return err;
}

struct probe_path probe_path_of(const struct cfg_check *cc)
{
	return (struct probe_path){ .source = cc->source, .source_is_ifname = cc->source_is_ifname,
				    .has_mark = cc->has_mark, .mark = cc->mark };
}
