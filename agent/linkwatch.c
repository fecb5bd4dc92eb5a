/* Plain rtnetlink (no libmnl: the few messages read here do not need it).
 * One socket subscribed to link, address and route groups, watched on the
 * loop; a table of the links seen, with whether each matters. A link
 * matters while it is named by a check's source (by name, or by holding the
 * source address), or once it has carried a default route (it stays watched
 * when that route goes, so that the route coming back is seen too).
 *
 * At start and after an overflow (ENOBUFS: events were lost) the table is
 * read afresh with dump requests on a second socket, after the subscription,
 * so nothing falls between the two; the kernel answers a dump at once, and a
 * receive timeout bounds the wait anyway. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <linux/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/clock.h"
#include "agent/linkwatch.h"
#include "agent/log.h"

#define DEBOUNCE_USEC (100 * USEC_PER_MSEC)
#define CARRIER_FLAGS (IFF_UP | IFF_RUNNING | IFF_LOWER_UP)

struct lw_link {
	int ifindex;
	char name[IFNAMSIZ];
	unsigned flags;
	bool default_route;       /* has carried one: sticky */
	bool holds_source;        /* holds a check's source address */
};

struct lw_addr {
	int family;
	unsigned char bytes[16];
	int ifindex;              /* in the table of addresses seen; 0 for a source */
};

/* What an event says about the path, to name the most telling of a batch. */
enum { RANK_NONE, RANK_ADDR, RANK_ROUTE, RANK_LINK };

struct linkwatch {
	sd_event *e;
	int fd;
	sd_event_source *io, *debounce;
	linkwatch_fn fn;
	void *userdata;
	bool dumping;             /* reading the table: nothing starts a run */
	int rank;                 /* of why, the event that starts the next run */
	char why[128];
	unsigned burst;           /* events since the last run started; 0: no window open */
	struct lw_addr *addrs;    /* the addresses on the links, so that an update is no news */
	size_t n_addrs;
	struct lw_link *links;
	size_t n_links;
	char **src_names;         /* sources that are interface names */
	size_t n_src_names;
	struct lw_addr *src_addrs;
	size_t n_src_addrs;
};

static struct lw_link *link_get(struct linkwatch *lw, int ifindex, bool create)
{
	for (size_t i = 0; i < lw->n_links; i++)
		if (lw->links[i].ifindex == ifindex)
			return &lw->links[i];
	if (!create)
		return NULL;
	struct lw_link *n = realloc(lw->links, (lw->n_links + 1) * sizeof *n);
	if (!n)
		return NULL;
	lw->links = n;
	n = &lw->links[lw->n_links++];
	memset(n, 0, sizeof *n);
	n->ifindex = ifindex;
	snprintf(n->name, sizeof n->name, "if%d", ifindex);
	return n;
}

static bool named_source(const struct linkwatch *lw, const char *name)
{
	for (size_t i = 0; i < lw->n_src_names; i++)
		if (strcmp(lw->src_names[i], name) == 0)
			return true;
	return false;
}

static bool watched(const struct linkwatch *lw, const struct lw_link *l)
{
	return l && (l->default_route || l->holds_source || named_source(lw, l->name));
}

/* Events of one batch from the kernel are weighed together: the most telling
 * names the run (flush_events). Events within 100 ms of a run started so
 * count with it: a link going down also drops its routes and addresses. */
__attribute__((format(printf, 3, 4)))
static void event(struct linkwatch *lw, int rank, const char *fmt, ...)
{
	va_list ap;

	if (lw->dumping)
		return;
	if (lw->burst > 0) {
		lw->burst++;
		return;
	}
	if (rank <= lw->rank)
		return;
	lw->rank = rank;
	va_start(ap, fmt);
	vsnprintf(lw->why, sizeof lw->why, fmt, ap);
	va_end(ap);
}

static void flush_events(struct linkwatch *lw)
{
	char why[sizeof lw->why + 16];

	if (lw->rank == RANK_NONE)
		return;
	lw->rank = RANK_NONE;
	lw->burst = 1;
	/* A fixed window: a storm cannot start a run each time. */
	sd_event_source_set_time(lw->debounce, clock_usec(CLOCK_MONOTONIC) + DEBOUNCE_USEC);
	sd_event_source_set_enabled(lw->debounce, SD_EVENT_ONESHOT);
	snprintf(why, sizeof why, "link event (%s)", lw->why);
	lw->fn(why, lw->userdata);
}

static int on_debounce(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct linkwatch *lw = userdata;

	(void)s, (void)usec;
	if (lw->burst > 1)
		log_debug("link watch: %u more events within 100 ms of '%s' counted with it", lw->burst - 1,
			  lw->why);
	lw->burst = 0;
	return 0;
}

static void on_link(struct linkwatch *lw, const struct nlmsghdr *h)
{
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	int len = (int)IFLA_PAYLOAD(h);
	const char *name = NULL;

	for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == IFLA_IFNAME)
			name = RTA_DATA(a);
	struct lw_link *l = link_get(lw, ifi->ifi_index, h->nlmsg_type == RTM_NEWLINK);
	if (!l)
		return;
	if (name)
		snprintf(l->name, sizeof l->name, "%s", name);
	if (h->nlmsg_type == RTM_DELLINK) {
		if (watched(lw, l))
			event(lw, RANK_LINK, "%s: removed", l->name);
		for (size_t i = lw->n_addrs; i-- > 0;)
			if (lw->addrs[i].ifindex == l->ifindex)
				lw->addrs[i] = lw->addrs[--lw->n_addrs];
		*l = lw->links[--lw->n_links];
		return;
	}
	unsigned before = l->flags;
	l->flags = ifi->ifi_flags;
	if (!watched(lw, l) || !((before ^ l->flags) & CARRIER_FLAGS))
		return;
	if ((before & IFF_LOWER_UP) && !(l->flags & IFF_LOWER_UP))
		event(lw, RANK_LINK, "%s: carrier lost", l->name);
	else if (!(before & IFF_LOWER_UP) && (l->flags & IFF_LOWER_UP))
		event(lw, RANK_LINK, "%s: carrier back", l->name);
	else
		event(lw, RANK_LINK, "%s: %s", l->name, l->flags & IFF_UP ? "up" : "down");
}

static bool source_addr(const struct linkwatch *lw, int family, const void *bytes)
{
	size_t n = family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < lw->n_src_addrs; i++)
		if (lw->src_addrs[i].family == family && memcmp(lw->src_addrs[i].bytes, bytes, n) == 0)
			return true;
	return false;
}

/* Record a NEWADDR (true when the address is new on that link: a lifetime
 * refreshed by DHCP or a router advertisement is no news) or a DELADDR
 * (true when it was known). */
static bool addr_note(struct linkwatch *lw, bool add, int ifindex, int family, const void *bytes)
{
	size_t n = family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < lw->n_addrs; i++) {
		struct lw_addr *a = &lw->addrs[i];
		if (a->ifindex != ifindex || a->family != family || memcmp(a->bytes, bytes, n) != 0)
			continue;
		if (!add)
			*a = lw->addrs[--lw->n_addrs];
		return !add;
	}
	if (!add)
		return false;
	struct lw_addr *m = realloc(lw->addrs, (lw->n_addrs + 1) * sizeof *m);
	if (!m)
		return true;
	lw->addrs = m;
	m = &lw->addrs[lw->n_addrs++];
	memset(m, 0, sizeof *m);
	m->ifindex = ifindex;
	m->family = family;
	memcpy(m->bytes, bytes, n);
	return true;
}

static void on_addr(struct linkwatch *lw, const struct nlmsghdr *h)
{
	const struct ifaddrmsg *ifa = NLMSG_DATA(h);
	int len = (int)IFA_PAYLOAD(h);
	const void *addr = NULL;
	char text[INET6_ADDRSTRLEN] = "?";

	if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
		return;
	/* IFA_LOCAL is the address itself on point-to-point links (PPP). */
	for (const struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == IFA_LOCAL || (a->rta_type == IFA_ADDRESS && !addr))
			addr = RTA_DATA(a);
	struct lw_link *l = link_get(lw, (int)ifa->ifa_index, true);
	if (!l || !addr)
		return;
	if (source_addr(lw, ifa->ifa_family, addr))
		l->holds_source = true;
	if (!addr_note(lw, h->nlmsg_type == RTM_NEWADDR, l->ifindex, ifa->ifa_family, addr) || !watched(lw, l))
		return;
	inet_ntop(ifa->ifa_family, addr, text, sizeof text);
	event(lw, RANK_ADDR, "%s: address %s %s", l->name, text,
	      h->nlmsg_type == RTM_NEWADDR ? "added" : "removed");
}

/* The links a route leaves by: RTA_OIF, or each hop of a multipath route. */
static size_t route_oifs(const struct nlmsghdr *h, int *oif, size_t max)
{
	const struct rtmsg *rt = NLMSG_DATA(h);
	int len = (int)RTM_PAYLOAD(h);
	size_t n = 0;

	for (const struct rtattr *a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == RTA_OIF && n < max) {
			oif[n++] = *(const int *)RTA_DATA(a);
		} else if (a->rta_type == RTA_MULTIPATH) {
			const struct rtnexthop *nh = RTA_DATA(a);
			int left = (int)RTA_PAYLOAD(a);
			while (RTNH_OK(nh, left) && n < max) {
				oif[n++] = nh->rtnh_ifindex;
				left -= NLMSG_ALIGN(nh->rtnh_len);
				nh = RTNH_NEXT(nh);
			}
		}
	}
	return n;
}

static void on_route(struct linkwatch *lw, const struct nlmsghdr *h)
{
	const struct rtmsg *rt = NLMSG_DATA(h);
	int oif[16];
	size_t n;

	/* Default routes only, in any table but local (policy routing uses others). */
	if (rt->rtm_dst_len != 0 || rt->rtm_table == RT_TABLE_LOCAL || rt->rtm_type != RTN_UNICAST ||
	    (rt->rtm_family != AF_INET && rt->rtm_family != AF_INET6))
		return;
	n = route_oifs(h, oif, sizeof oif / sizeof oif[0]);
	for (size_t i = 0; i < n; i++) {
		struct lw_link *l = link_get(lw, oif[i], true);
		if (!l)
			continue;
		l->default_route = true;
		event(lw, RANK_ROUTE, "%s: IPv%c default route %s", l->name, rt->rtm_family == AF_INET ? '4' : '6',
		      h->nlmsg_type == RTM_NEWROUTE ? "added" : "removed");
	}
}

/* Handle a buffer of messages; 1 when a dump ended (NLMSG_DONE), 0 else. */
static int handle(struct linkwatch *lw, const void *buf, size_t size)
{
	int len = (int)size;

	for (const struct nlmsghdr *h = buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
		switch (h->nlmsg_type) {
		case NLMSG_DONE:
			return 1;
		case NLMSG_ERROR:
			return -EIO;
		case RTM_NEWLINK: case RTM_DELLINK:
			on_link(lw, h);
			break;
		case RTM_NEWADDR: case RTM_DELADDR:
			on_addr(lw, h);
			break;
		case RTM_NEWROUTE: case RTM_DELROUTE:
			on_route(lw, h);
			break;
		default:
			break;
		}
	}
	return 0;
}

/* One dump request (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE) on fd, read to its end. */
static int dump_one(struct linkwatch *lw, int fd, uint16_t type, unsigned seq)
{
	struct {
		struct nlmsghdr h;
		struct rtgenmsg g;
	} req = {
		.h = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct rtgenmsg)), .nlmsg_type = type,
		       .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = seq },
		.g = { .rtgen_family = AF_UNSPEC },
	};
	static char buf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
	int r = 0;

	if (send(fd, &req, req.h.nlmsg_len, 0) < 0)
		return -errno;
	while (r == 0) {
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		r = handle(lw, buf, (size_t)n);
	}
	return r < 0 ? r : 0;
}

static int dump_all(struct linkwatch *lw)
{
	struct timeval tv = { .tv_sec = 1 };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), r;

	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	lw->dumping = true;
	if ((r = dump_one(lw, fd, RTM_GETLINK, 1)) >= 0 && (r = dump_one(lw, fd, RTM_GETADDR, 2)) >= 0)
		r = dump_one(lw, fd, RTM_GETROUTE, 3);
	lw->dumping = false;
	close(fd);
	return r;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct linkwatch *lw = userdata;
	static char buf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
	int r;

	(void)s, (void)revents;
	for (;;) {
		struct sockaddr_nl from = { 0 };
		socklen_t flen = sizeof from;
		ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
		if (n > 0) {
			/* Only the kernel speaks for the links (port 0), not a local process. */
			if (from.nl_pid == 0)
				handle(lw, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == ENOBUFS) {
			/* Events were lost: something changed, and the table may be stale. */
			event(lw, RANK_LINK, "netlink overflow");
			if ((r = dump_all(lw)) < 0)
				log_warn_errno(r, "link watch: cannot read the links again");
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			log_warn_errno(-errno, "link watch: recv");
		flush_events(lw);
		return 0;
	}
}

static void sources_clear(struct linkwatch *lw)
{
	for (size_t i = 0; i < lw->n_src_names; i++)
		free(lw->src_names[i]);
	free(lw->src_names);
	free(lw->src_addrs);
	lw->src_names = NULL;
	lw->src_addrs = NULL;
	lw->n_src_names = lw->n_src_addrs = 0;
}

int linkwatch_set_config(struct linkwatch *lw, const struct cfg *cfg)
{
	sources_clear(lw);
	lw->src_names = calloc(cfg->n_checks ? cfg->n_checks : 1, sizeof *lw->src_names);
	lw->src_addrs = calloc(cfg->n_checks ? cfg->n_checks : 1, sizeof *lw->src_addrs);
	if (!lw->src_names || !lw->src_addrs)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_checks; i++) {
		const struct cfg_check *c = &cfg->checks[i];
		struct lw_addr *a = &lw->src_addrs[lw->n_src_addrs];

		if (!c->source)
			continue;
		if (c->source_is_ifname) {
			if (!(lw->src_names[lw->n_src_names] = strdup(c->source)))
				return -ENOMEM;
			lw->n_src_names++;
		} else if (inet_pton(AF_INET, c->source, a->bytes) == 1) {
			a->family = AF_INET;
			lw->n_src_addrs++;
		} else if (inet_pton(AF_INET6, c->source, a->bytes) == 1) {
			a->family = AF_INET6;
			lw->n_src_addrs++;
		}
	}
	/* Which links hold the new source addresses: read the table again. */
	for (size_t i = 0; i < lw->n_links; i++)
		lw->links[i].holds_source = false;
	return dump_all(lw);
}

static int subscribe(struct linkwatch *lw)
{
	struct sockaddr_nl sa = {
		.nl_family = AF_NETLINK,
		.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE |
			     RTMGRP_IPV6_ROUTE,
	};
	int rcvbuf = 1 << 20;

	lw->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (lw->fd < 0)
		return -errno;
	/* Room for a burst (a link going down drops its routes one message each). */
	(void)setsockopt(lw->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	if (bind(lw->fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		return -errno;
	return 0;
}

int linkwatch_new(sd_event *e, const struct cfg *cfg, linkwatch_fn fn, void *userdata,
		  struct linkwatch **ret)
{
	struct linkwatch *lw = calloc(1, sizeof *lw);
	int r;

	*ret = NULL;
	if (!lw)
		return -ENOMEM;
	lw->fd = -1;
	lw->fn = fn;
	lw->userdata = userdata;
	lw->e = sd_event_ref(e);
	if ((r = subscribe(lw)) < 0 ||
	    (r = sd_event_add_io(e, &lw->io, lw->fd, EPOLLIN, on_io, lw)) < 0 ||
	    (r = sd_event_add_time(e, &lw->debounce, CLOCK_MONOTONIC, 0, USEC_PER_MSEC, on_debounce, lw)) < 0)
		goto fail;
	sd_event_source_set_enabled(lw->debounce, SD_EVENT_OFF);
	sd_event_source_set_description(lw->io, "linkwatch");
	if ((r = linkwatch_set_config(lw, cfg)) < 0)
		goto fail;
	size_t n = 0;
	for (size_t i = 0; i < lw->n_links; i++)
		n += watched(lw, &lw->links[i]);
	log_debug("link watch: %zu of %zu links watched", n, lw->n_links);
	*ret = lw;
	return 0;
fail:
	linkwatch_free(lw);
	return r;
}

struct linkwatch *linkwatch_free(struct linkwatch *lw)
{
	if (!lw)
		return NULL;
	sd_event_source_disable_unref(lw->io);
	sd_event_source_disable_unref(lw->debounce);
	if (lw->fd >= 0)
		close(lw->fd);
	sources_clear(lw);
	free(lw->links);
	free(lw->addrs);
	sd_event_unref(lw->e);
	free(lw);
	return NULL;
}
