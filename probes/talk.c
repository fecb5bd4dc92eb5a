/* The plain-text dialogue of http and smtp checks, on a socket of our own.
 * tcp.c connects (the same resolution, address race, source, mark and path
 * verdict as a tcp check); then what the protocol queues is written as the
 * socket takes it, and what arrives is cut into lines for the protocol
 * (http.c, smtp.c) to judge. Both protocols need a status line or a short
 * reply, never a body, so one buffer of TALK_LINE_MAX octets, allocated once
 * the connection stands, is all a check holds: a black-holed target costs a
 * socket and a timer, not a libcurl transfer. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "probes/check.h"

/* SMTP allows 512 octets a reply line (RFC 5321 4.5.3.1.5); an HTTP status
 * line is far shorter. */
#define TALK_LINE_MAX 1024

static void on_connected(void *userdata, int fd);

int probe_talk_new(struct probe_check *c, const struct probe_talk_ops *ops, const char *host,
		   struct probe_talk **ret)
{
	struct probe_talk *t = calloc(1, sizeof *t);
	int r;

	if (!t)
		return -ENOMEM;
	t->check = c;
	t->ops = ops;
	t->fd = -1;
	r = probe_tcp_new(c, host, on_connected, t, &t->tcp);
	if (r < 0) {
		free(t);
		return r;
	}
	*ret = t;
	return 0;
}

int probe_talk_connect(struct probe_talk *t, uint16_t port)
{
	return probe_tcp_begin(t->tcp, port);
}

int probe_talk_send(struct probe_talk *t, const char *text)
{
	size_t n = strlen(text);
	char *out;

	if (t->out_off == t->out_len)
		t->out_off = t->out_len = 0;
	/* With its NUL, which out_len does not count. */
	out = realloc(t->out, t->out_len + n + 1);
	if (!out)
		return -ENOMEM;
	memcpy(out + t->out_len, text, n + 1);
	t->out = out;
	t->out_len += n;
	/* The loop writes it: a failure is then the loop's to report, not the caller's. */
	if (t->io)
		sd_event_source_set_io_events(t->io, EPOLLIN | EPOLLOUT);
	return 0;
}

void probe_talk_bye(struct probe_talk *t, const char *text)
{
	if (t->fd >= 0)
		(void)!send(t->fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT);
}

static int fail_errno(struct probe_talk *t, int err)
{
	probe_finish(t->check, probe_errno_outcome(err), "%s", strerror(err));
	return 1;
}

/* 1: the check is over (t is gone). */
static int flush_out(struct probe_talk *t)
{
	while (t->out_off < t->out_len) {
		ssize_t n = send(t->fd, t->out + t->out_off, t->out_len - t->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0)
			return fail_errno(t, errno);
		t->out_off += (size_t)n;
	}
	sd_event_source_set_io_events(t->io, EPOLLIN);
	return 0;
}

/* Hand each complete line to the protocol. 1: the check is over. */
static int cut_lines(struct probe_talk *t)
{
	char *start = t->in, *nl;
	size_t left = t->in_len;

	while ((nl = memchr(start, '\n', left))) {
		size_t len = (size_t)(nl - start);
		bool dropped = t->dropping;

		*nl = '\0';
		if (len && start[len - 1] == '\r')
			start[--len] = '\0';
		left -= (size_t)(nl + 1 - start);
		t->dropping = false;
		/* The end of a line too long to keep is not a line of its own. */
		if (!dropped && t->ops->line(t, start, len))
			return 1;
		start = nl + 1;
	}
	memmove(t->in, start, left);
	t->in_len = left;
	if (t->in_len == TALK_LINE_MAX - 1) {
		if (t->drop_long) {
			t->in_len = 0;
			t->dropping = true;
			return 0;
		}
		probe_finish(t->check, PROBE_PROTOCOL_ERROR, "a line of over %d octets",
			     TALK_LINE_MAX - 2);
		return 1;
	}
	return 0;
}

static int read_in(struct probe_talk *t)
{
	ssize_t n = recv(t->fd, t->in + t->in_len, TALK_LINE_MAX - 1 - t->in_len, MSG_DONTWAIT);

	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n < 0)
		return fail_errno(t, errno);
	if (n == 0) {
		probe_finish(t->check, PROBE_PROTOCOL_ERROR, "connection closed before the %s",
			     t->ops->waiting_for(t));
		return 1;
	}
	t->in_len += (size_t)n;
	return cut_lines(t);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct probe_talk *t = userdata;

	if ((revents & EPOLLOUT) && flush_out(t))
		return 0;
	if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
		read_in(t);
	return 0;
}

static void on_connected(void *userdata, int fd)
{
	struct probe_talk *t = userdata;
	int r;

	t->fd = fd;
	probe_tcp_free(t->tcp);
	t->tcp = NULL;
	t->in = malloc(TALK_LINE_MAX);
	if (!t->in) {
		probe_finish(t->check, PROBE_ERROR, "%s", strerror(ENOMEM));
		return;
	}
	r = sd_event_add_io(t->check->event, &t->io, fd,
			    t->out_len > t->out_off ? EPOLLIN | EPOLLOUT : EPOLLIN, on_io, t);
	if (r < 0)
		probe_finish(t->check, PROBE_ERROR, "%s", strerror(-r));
}

void probe_talk_free(struct probe_talk *t)
{
	if (!t)
		return;
	probe_tcp_free(t->tcp);
	t->io = sd_event_source_disable_unref(t->io);
	if (t->fd >= 0)
		close(t->fd);
	free(t->in);
	free(t->out);
	free(t);
}

void probe_talk_expire(struct probe_check *c)
{
	struct probe_talk *t = c->impl;

	if (!t)
		return;
	if (t->tcp)
		probe_tcp_expire(c, t->tcp);
	else
		probe_finish(c, PROBE_TIMEOUT, "connected, no %s in %llu ms", t->ops->waiting_for(t),
			     (unsigned long long)(c->budget_usec / USEC_PER_MSEC));
}

void probe_talk_stop(struct probe_check *c)
{
	probe_talk_free(c->impl);
}
