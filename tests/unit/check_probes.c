/* Unit tests for probes/: real sockets on loopback only, no root. Tiny
 * servers run on threads of the test; the checks run on an sd-event loop. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "probes/check.h"
#include "agent/worker.h"
#include "probes/probe.h"
#include "probes/reply.h"
#include "agent/vote.h"

#define LOOP_ADDR "127.0.1.1"

enum srv_mode { SRV_HTTP, SRV_SMTP_OK, SRV_SMTP_421 };

struct srv {
	int fd;
	uint16_t port;
	enum srv_mode mode;
	pthread_t thread;
};

static void send_str(int fd, const char *s)
{
	(void)!write(fd, s, strlen(s));
}

/* Read one line (up to CRLF) into buf; 0 on EOF. */
static int read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	char ch;

	while (n + 1 < size && read(fd, &ch, 1) == 1) {
		buf[n++] = ch;
		if (ch == '\n')
			break;
	}
	buf[n] = '\0';
	return (int)n;
}

static void serve_http(int c)
{
	char line[512], path[256] = "";
	int status;

	if (read_line(c, line, sizeof line) > 0)
		sscanf(line, "GET %255s", path);
	while (read_line(c, line, sizeof line) > 2)
		;
	status = strcmp(path, "/fail") == 0 ? 500 : strcmp(path, "/moved") == 0 ? 302 : 200;
	snprintf(line, sizeof line,
		 "HTTP/1.1 %d X\r\nContent-Length: 2\r\nLocation: /\r\nConnection: close\r\n\r\nok",
		 status);
	send_str(c, line);
}

static void serve_smtp(int c, bool ok)
{
	char line[512];

	if (!ok) {
		send_str(c, "421 test.invalid busy\r\n");
		return;
	}
	send_str(c, "220 test.invalid ESMTP\r\n");
	while (read_line(c, line, sizeof line) > 0) {
		if (strncasecmp(line, "EHLO", 4) == 0)
			send_str(c, "250-test.invalid\r\n250 8BITMIME\r\n");
		else if (strncasecmp(line, "QUIT", 4) == 0) {
			send_str(c, "221 bye\r\n");
			return;
		} else
			send_str(c, "250 ok\r\n");
	}
}

static void *srv_main(void *p)
{
	struct srv *s = p;
	int c;

	while ((c = accept(s->fd, NULL, NULL)) >= 0) {
		if (s->mode == SRV_HTTP)
			serve_http(c);
		else
			serve_smtp(c, s->mode == SRV_SMTP_OK);
		close(c);
	}
	return NULL;
}

/* A TCP socket on LOOP_ADDR, port chosen by the kernel; listening or not. */
static int tcp_socket(bool listening, int backlog, uint16_t *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	inet_pton(AF_INET, LOOP_ADDR, &sin.sin_addr);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	if (listening)
		ck_assert_int_eq(listen(fd, backlog), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static void srv_start(struct srv *s, enum srv_mode mode)
{
	s->mode = mode;
	s->fd = tcp_socket(true, 16, &s->port);
	ck_assert_int_eq(pthread_create(&s->thread, NULL, srv_main, s), 0);
}

static void srv_stop(struct srv *s)
{
	shutdown(s->fd, SHUT_RDWR);
	pthread_join(s->thread, NULL);
	close(s->fd);
}

/* A hand-built configuration (the parser is another module's). */
struct tcfg {
	struct cfg cfg;
	struct cfg_check checks[8];
	char strs[8][2][128];
};

static struct cfg_check *add_check(struct tcfg *t, enum cfg_check_type type, const char *name,
				   const char *target, const char *host, uint16_t port,
				   uint64_t timeout_ms)
{
	size_t i = t->cfg.n_checks++;
	struct cfg_check *c = &t->checks[i];

	ck_assert_uint_lt(i, 8);
	memset(c, 0, sizeof *c);
	snprintf(t->strs[i][0], sizeof t->strs[i][0], "%s", name);
	snprintf(t->strs[i][1], sizeof t->strs[i][1], "%s", target);
	c->name = t->strs[i][0];
	c->target = t->strs[i][1];
	c->host = (char *)host;
	c->port = port;
	c->type = type;
	c->role = ROLE_LINK;
	c->timeout_usec = timeout_ms * USEC_PER_MSEC;
	t->cfg.checks = t->checks;
	t->cfg.n_link_checks++;
	return c;
}

struct collected {
	int calls;
	size_t n;
	struct probe_result r[8];
	sd_event *e;
};

static void on_done(struct probe_run *run, const struct probe_result *res, size_t n, void *ud)
{
	struct collected *col = ud;

	col->calls++;
	col->n = n;
	memcpy(col->r, res, n * sizeof *res);
}

static void run_checks_with(struct tcfg *t, struct collected *col, bool early)
{
	struct probe_run *run = NULL;

	memset(col, 0, sizeof *col);
	ck_assert_int_ge(sd_event_new(&col->e), 0);
	if (early)
		ck_assert_int_eq(probe_run_start_early(col->e, &t->cfg, on_done, col, &run), 0);
	else
		ck_assert_int_eq(probe_run_start(col->e, &t->cfg, on_done, col, &run), 0);
	ck_assert_ptr_nonnull(run);
	while (col->calls == 0)
		ck_assert_int_ge(sd_event_run(col->e, UINT64_MAX), 0);
	/* Nothing may call back after the run's report. */
	for (int i = 0; i < 3; i++)
		ck_assert_int_ge(sd_event_run(col->e, 10000), 0);
	col->e = sd_event_unref(col->e);
	ck_assert_int_eq(col->calls, 1);
}

static void run_checks(struct tcfg *t, struct collected *col)
{
	run_checks_with(t, col, false);
}

START_TEST(test_outcome_str)
{
	ck_assert_str_eq(probe_outcome_str(PROBE_PASSED), "passed");
	ck_assert_str_eq(probe_outcome_str(PROBE_TIMEOUT), "timeout");
	ck_assert_str_eq(probe_outcome_str(PROBE_DNS_TIMEOUT), "dns timeout");
	ck_assert_str_eq(probe_outcome_str(PROBE_DNS_FAILURE), "dns failure");
	ck_assert_str_eq(probe_outcome_str(PROBE_REFUSED), "refused");
	ck_assert_str_eq(probe_outcome_str(PROBE_TLS_ERROR), "tls error");
	ck_assert_str_eq(probe_outcome_str(PROBE_CANCELLED), "cancelled");
	ck_assert_str_eq(probe_outcome_str(_PROBE_OUTCOME_MAX), "unknown");
	for (int o = 0; o < _PROBE_OUTCOME_MAX; o++)
		ck_assert_ptr_nonnull(probe_outcome_str(o));
}
END_TEST

START_TEST(test_tcp_pass_and_refused)
{
	struct tcfg t = { 0 };
	struct collected col;
	uint16_t open_port, closed_port;
	char tgt[64];
	int lfd = tcp_socket(true, 16, &open_port);
	/* Bound but not listening: the kernel refuses connections to it. */
	int cfd = tcp_socket(false, 0, &closed_port);

	snprintf(tgt, sizeof tgt, LOOP_ADDR ":%u", open_port);
	add_check(&t, CHECK_TCP, "open", tgt, LOOP_ADDR, open_port, 2000);
	snprintf(tgt, sizeof tgt, LOOP_ADDR ":%u", closed_port);
	add_check(&t, CHECK_TCP, "closed", tgt, LOOP_ADDR, closed_port, 2000);
	run_checks(&t, &col);
	ck_assert_uint_eq(col.n, 2);
	ck_assert_ptr_eq(col.r[0].check, &t.checks[0]);
	ck_assert_int_eq(col.r[0].outcome, PROBE_PASSED);
	ck_assert_int_eq(col.r[1].outcome, PROBE_REFUSED);
	ck_assert_str_eq(col.r[1].reason, "Connection refused");
	ck_assert_uint_lt(col.r[1].elapsed_ms, 2000);
	close(lfd);
	close(cfd);
}
END_TEST

START_TEST(test_tcp_timeout)
{
	struct tcfg t = { 0 };
	struct collected col;
	uint16_t port;
	char tgt[64];
	int lfd = tcp_socket(true, 0, &port), fill[4];
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };

	/* Fill the accept queue of a listener that never accepts: further SYNs
	 * are dropped, so a connect hangs as to a black hole. */
	inet_pton(AF_INET, LOOP_ADDR, &sin.sin_addr);
	for (int i = 0; i < 4; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		(void)connect(fill[i], (struct sockaddr *)&sin, sizeof sin);
	}
	usleep(50000); /* let the handshakes that can complete complete */
	snprintf(tgt, sizeof tgt, LOOP_ADDR ":%u", port);
	add_check(&t, CHECK_TCP, "full", tgt, LOOP_ADDR, port, 300);
	run_checks(&t, &col);
	ck_assert_int_eq(col.r[0].outcome, PROBE_TIMEOUT);
	ck_assert_uint_ge(col.r[0].elapsed_ms, 299);
	for (int i = 0; i < 4; i++)
		close(fill[i]);
	close(lfd);
}
END_TEST

START_TEST(test_http_status)
{
	struct tcfg t = { 0 };
	struct collected col;
	struct srv s;
	char url[128];

	srv_start(&s, SRV_HTTP);
	snprintf(url, sizeof url, "http://" LOOP_ADDR ":%u/", s.port);
	add_check(&t, CHECK_HTTP, "ok", url, NULL, 0, 3000);
	snprintf(url, sizeof url, "http://" LOOP_ADDR ":%u/fail", s.port);
	add_check(&t, CHECK_HTTP, "fail", url, NULL, 0, 3000);
	snprintf(url, sizeof url, "http://" LOOP_ADDR ":%u/moved", s.port);
	add_check(&t, CHECK_HTTP, "moved", url, NULL, 0, 3000);
	snprintf(url, sizeof url, "http://" LOOP_ADDR ":%u/moved", s.port);
	struct cfg_check *strict = add_check(&t, CHECK_HTTP, "strict", url, NULL, 0, 3000);
	strict->expect[0] = (struct cfg_range){ 200, 299 };
	strict->n_expect = 1;
	run_checks(&t, &col);
	ck_assert_uint_eq(col.n, 4);
	ck_assert_msg(col.r[0].outcome == PROBE_PASSED, "%s", col.r[0].reason);
	ck_assert_str_eq(col.r[0].reason, "HTTP 200");
	ck_assert_int_eq(col.r[1].outcome, PROBE_BAD_STATUS);
	ck_assert_str_eq(col.r[1].reason, "HTTP 500");
	/* Not followed: the 302 itself is in the default 200-399. */
	ck_assert_int_eq(col.r[2].outcome, PROBE_PASSED);
	ck_assert_str_eq(col.r[2].reason, "HTTP 302");
	ck_assert_int_eq(col.r[3].outcome, PROBE_BAD_STATUS);
	srv_stop(&s);
}
END_TEST

START_TEST(test_http_refused)
{
	struct tcfg t = { 0 };
	struct collected col;
	uint16_t port;
	char url[128];
	int cfd = tcp_socket(false, 0, &port);

	snprintf(url, sizeof url, "http://" LOOP_ADDR ":%u/", port);
	add_check(&t, CHECK_HTTP, "closed", url, NULL, 0, 3000);
	run_checks(&t, &col);
	ck_assert_msg(col.r[0].outcome == PROBE_REFUSED, "%s", col.r[0].reason);
	close(cfd);
}
END_TEST

START_TEST(test_smtp)
{
	struct tcfg t = { 0 };
	struct collected col;
	struct srv ok, busy;
	char tgt[64];

	srv_start(&ok, SRV_SMTP_OK);
	srv_start(&busy, SRV_SMTP_421);
	snprintf(tgt, sizeof tgt, LOOP_ADDR ":%u", ok.port);
	add_check(&t, CHECK_SMTP, "ok", tgt, LOOP_ADDR, ok.port, 3000);
	snprintf(tgt, sizeof tgt, LOOP_ADDR ":%u", busy.port);
	add_check(&t, CHECK_SMTP, "busy", tgt, LOOP_ADDR, busy.port, 3000);
	run_checks(&t, &col);
	ck_assert_msg(col.r[0].outcome == PROBE_PASSED, "%s", col.r[0].reason);
	ck_assert_msg(col.r[1].outcome == PROBE_BAD_STATUS, "%s", col.r[1].reason);
	ck_assert_ptr_nonnull(strstr(col.r[1].reason, "421"));
	srv_stop(&ok);
	srv_stop(&busy);
}
END_TEST

/* What talk.c hands http.c and smtp.c, read by reply.c. */
START_TEST(test_reply_lines)
{
	struct probe_smtp_line l;

	ck_assert_int_eq(probe_http_status("HTTP/1.1 200 OK"), 200);
	ck_assert_int_eq(probe_http_status("HTTP/1.0 302"), 302);
	ck_assert_int_eq(probe_http_status("HTTP/2 503 Service Unavailable"), 503);
	ck_assert_int_eq(probe_http_status("HTTP/1.1 20 OK"), -1);
	ck_assert_int_eq(probe_http_status("HTTP/1.1 2000 OK"), -1);
	ck_assert_int_eq(probe_http_status("HTTP/1.1 600 Odd"), -1);
	ck_assert_int_eq(probe_http_status("http/1.1 200 OK"), -1);
	ck_assert_int_eq(probe_http_status("220 mx ESMTP"), -1);
	ck_assert_int_eq(probe_http_status(""), -1);

	ck_assert_int_eq(probe_smtp_line("250-STARTTLS", 12, &l), 0);
	ck_assert_int_eq(l.code, 250);
	ck_assert(l.more && l.starttls);
	ck_assert_int_eq(probe_smtp_line("250 starttls", 12, &l), 0);
	ck_assert(!l.more && l.starttls);
	ck_assert_int_eq(probe_smtp_line("250-STARTTLSX", 13, &l), 0);
	ck_assert(!l.starttls);
	ck_assert_int_eq(probe_smtp_line("220", 3, &l), 0);
	ck_assert_int_eq(l.code, 220);
	ck_assert_str_eq(l.text, "");
	ck_assert_int_eq(probe_smtp_line("421 4.3.2 busy", 14, &l), 0);
	ck_assert_str_eq(l.text, "4.3.2 busy");
	ck_assert_int_eq(probe_smtp_line("25", 2, &l), -1);
	ck_assert_int_eq(probe_smtp_line("2x0 ok", 6, &l), -1);
	ck_assert_int_eq(probe_smtp_line("250_ok", 6, &l), -1);
	ck_assert_int_eq(probe_smtp_line("650 no", 6, &l), -1);
}
END_TEST

START_TEST(test_run_order_and_once)
{
	struct tcfg t = { 0 };
	struct collected col;
	uint16_t open_port, closed_port;
	char tgt[64];
	struct srv s;
	int lfd = tcp_socket(true, 16, &open_port), cfd = tcp_socket(false, 0, &closed_port);

	srv_start(&s, SRV_HTTP);
	/* Mixed types and speeds: results must come back in configuration order. */
	snprintf(tgt, sizeof tgt, "http://" LOOP_ADDR ":%u/fail", s.port);
	add_check(&t, CHECK_HTTP, "a", tgt, NULL, 0, 2000);
	snprintf(tgt, sizeof tgt, LOOP_ADDR ":%u", closed_port);
	add_check(&t, CHECK_TCP, "b", tgt, LOOP_ADDR, closed_port, 2000);
	snprintf(tgt, sizeof tgt, LOOP_ADDR ":%u", open_port);
	add_check(&t, CHECK_TCP, "c", tgt, LOOP_ADDR, open_port, 2000);
	add_check(&t, CHECK_TCP, "d", "nohost:1", NULL, 1, 2000); /* no host: a local error */
	run_checks(&t, &col);
	ck_assert_uint_eq(col.n, 4);
	for (size_t i = 0; i < 4; i++)
		ck_assert_ptr_eq(col.r[i].check, &t.checks[i]);
	ck_assert_int_eq(col.r[0].outcome, PROBE_BAD_STATUS);
	ck_assert_int_eq(col.r[1].outcome, PROBE_REFUSED);
	ck_assert_int_eq(col.r[2].outcome, PROBE_PASSED);
	ck_assert_int_eq(col.r[3].outcome, PROBE_ERROR);

	/* --once prints and counts: 3 of 4 link checks fail, threshold 2. */
	t.cfg.agent.failed_checks = 2;
	ck_assert_int_eq(probe_once_main(&t.cfg), 1);
	t.cfg.agent.failed_checks = 4;
	ck_assert_int_eq(probe_once_main(&t.cfg), 0);
	srv_stop(&s);
	close(lfd);
	close(cfd);
}
END_TEST

START_TEST(test_empty_run)
{
	struct tcfg t = { 0 };
	struct collected col;

	run_checks(&t, &col);
	ck_assert_uint_eq(col.n, 0);
}
END_TEST

static void never(struct probe_run *run, const struct probe_result *res, size_t n, void *ud)
{
	ck_abort_msg("a cancelled run called back");
}

START_TEST(test_cancel)
{
	struct tcfg t = { 0 };
	struct probe_run *run = NULL;
	sd_event *e = NULL;
	uint16_t port;
	char tgt[64];
	struct srv s;
	int lfd = tcp_socket(true, 16, &port);

	srv_start(&s, SRV_HTTP);
	snprintf(tgt, sizeof tgt, LOOP_ADDR ":%u", port);
	add_check(&t, CHECK_TCP, "c", tgt, LOOP_ADDR, port, 2000);
	add_check(&t, CHECK_TCP, "named", "localhost:1", "localhost", 1, 2000);
	snprintf(tgt, sizeof tgt, "http://" LOOP_ADDR ":%u/", s.port);
	add_check(&t, CHECK_HTTP, "h", tgt, NULL, 0, 2000);
	ck_assert_int_ge(sd_event_new(&e), 0);
	ck_assert_int_eq(probe_run_start(e, &t.cfg, never, NULL, &run), 0);
	/* A turn of the loop, then abandon it: no callback, nothing leaks. */
	ck_assert_int_ge(sd_event_run(e, 0), 0);
	probe_run_cancel(run);
	ck_assert_int_ge(sd_event_run(e, 100000), 0);
	sd_event_unref(e);
	srv_stop(&s);
	close(lfd);
}
END_TEST


/* A listener whose accept queue is full: a connect to it hangs as to a
 * black hole (see test_tcp_timeout). */
static int blackhole(int fill[4], uint16_t *port)
{
	int lfd = tcp_socket(true, 0, port);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(*port) };

	inet_pton(AF_INET, LOOP_ADDR, &sin.sin_addr);
	for (int i = 0; i < 4; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		(void)connect(fill[i], (struct sockaddr *)&sin, sizeof sin);
	}
	usleep(50000); /* let the handshakes that can complete complete */
	return lfd;
}

static void blackhole_close(int lfd, int fill[4])
{
	for (int i = 0; i < 4; i++)
		close(fill[i]);
	close(lfd);
}

/* failed_checks = 2: two refused link checks decide a FAILED run, so the
 * hanging link checks (tcp into a black hole, http to it) are cancelled,
 * while the hanging backup check still runs to its timeout. Without the
 * early verdict (--once) the same run waits for every check. */
START_TEST(test_early_verdict_failed)
{
	struct tcfg t = { 0 };
	struct collected col;
	uint16_t hole, closed_port;
	char tgt[64], url[96];
	int fill[4], lfd = blackhole(fill, &hole);
	int cfd = tcp_socket(false, 0, &closed_port);

	t.cfg.agent.failed_checks = 2;
	snprintf(tgt, sizeof tgt, LOOP_ADDR ":%u", hole);
	add_check(&t, CHECK_TCP, "hang", tgt, LOOP_ADDR, hole, 600);
	snprintf(url, sizeof url, "http://" LOOP_ADDR ":%u/", hole);
	add_check(&t, CHECK_HTTP, "hang-http", url, NULL, 0, 600);
	add_check(&t, CHECK_TCP, "backup", tgt, LOOP_ADDR, hole, 300)->role = ROLE_BACKUP;
	t.cfg.n_link_checks--;
	snprintf(tgt, sizeof tgt, LOOP_ADDR ":%u", closed_port);
	add_check(&t, CHECK_TCP, "refused-1", tgt, LOOP_ADDR, closed_port, 600);
	add_check(&t, CHECK_TCP, "refused-2", tgt, LOOP_ADDR, closed_port, 600);

	run_checks_with(&t, &col, true);
	ck_assert_uint_eq(col.n, 5);
	ck_assert_msg(col.r[0].outcome == PROBE_CANCELLED, "%s", probe_outcome_str(col.r[0].outcome));
	ck_assert_msg(col.r[1].outcome == PROBE_CANCELLED, "%s", probe_outcome_str(col.r[1].outcome));
	ck_assert_str_eq(col.r[0].reason, "not needed: 2 link checks failed already");
	ck_assert_int_eq(col.r[2].outcome, PROBE_TIMEOUT); /* backup: never cancelled */
	ck_assert_int_eq(col.r[3].outcome, PROBE_REFUSED);
	ck_assert_int_eq(col.r[4].outcome, PROBE_REFUSED);
	/* Cancelled checks do not vote: the run failed by the two refusals. */
	ck_assert_uint_eq(vote_link_failures(col.r, col.n), 2);
	ck_assert(!probe_failed(&col.r[0]) && !probe_passed(&col.r[0]));
	/* Everything the cancelled checks held is let go (the resolver threads too). */
	for (int i = 0; i < 300 && worker_live() > 0; i++)
		usleep(10000);
	ck_assert_int_eq(worker_live(), 0);

	/* --once: nothing is cancelled. */
	run_checks_with(&t, &col, false);
	ck_assert_int_eq(col.r[0].outcome, PROBE_TIMEOUT);
	ck_assert_int_ne(col.r[1].outcome, PROBE_CANCELLED);
	ck_assert_int_ne(col.r[1].outcome, PROBE_PASSED);
	blackhole_close(lfd, fill);
	close(cfd);
}
END_TEST

/* failed_checks = 2 of 3 link checks: once two passed, the third cannot fail
 * the run, so it is cancelled; the run PASSED. */
START_TEST(test_early_verdict_passed)
{
	struct tcfg t = { 0 };
	struct collected col;
	uint16_t hole, open_port;
	char tgt[64];
	int fill[4], lfd = blackhole(fill, &hole);
	int ofd = tcp_socket(true, 16, &open_port);

	t.cfg.agent.failed_checks = 2;
	snprintf(tgt, sizeof tgt, LOOP_ADDR ":%u", hole);
	add_check(&t, CHECK_TCP, "hang", tgt, LOOP_ADDR, hole, 600);
	snprintf(tgt, sizeof tgt, LOOP_ADDR ":%u", open_port);
	add_check(&t, CHECK_TCP, "open-1", tgt, LOOP_ADDR, open_port, 600);
	add_check(&t, CHECK_TCP, "open-2", tgt, LOOP_ADDR, open_port, 600);

	run_checks_with(&t, &col, true);
	ck_assert_msg(col.r[0].outcome == PROBE_CANCELLED, "%s", probe_outcome_str(col.r[0].outcome));
	ck_assert_str_eq(col.r[0].reason, "not needed: too few link checks left to fail the run");
	ck_assert_int_eq(col.r[1].outcome, PROBE_PASSED);
	ck_assert_int_eq(col.r[2].outcome, PROBE_PASSED);
	ck_assert_uint_eq(vote_link_failures(col.r, col.n), 0);
	/* failed_checks 3: once two passed, 3 failures cannot come. */
	t.cfg.agent.failed_checks = 3;
	run_checks_with(&t, &col, true);
	ck_assert_int_eq(col.r[0].outcome, PROBE_CANCELLED); /* 2 passed: cannot reach 3 */
	t.cfg.agent.failed_checks = 1;
	run_checks_with(&t, &col, true);
	ck_assert_int_eq(col.r[0].outcome, PROBE_TIMEOUT);   /* 1 can still fail it: waited for */
	blackhole_close(lfd, fill);
	close(ofd);
}
END_TEST

/* Pings with the same options share one liboping object: each still gets an
 * outcome of its own, a duplicate target the same as its twin, and a check
 * with other options (count) runs apart. Without CAP_NET_RAW every ping
 * fails with a local error, so the outcomes are checked only when root; as
 * root every one of them must pass (an all-error result is a failure).
 * Targets that never answer or whose send fails beside answering ones need a
 * namespace: tests/probes/test-probes.sh has them. */
START_TEST(test_ping_group)
{
	struct tcfg t = { 0 };
	struct collected col;
	struct cfg_check *c;

	add_check(&t, CHECK_PING, "a", LOOP_ADDR, LOOP_ADDR, 0, 500)->ping_count = 2;
	add_check(&t, CHECK_PING, "a-twin", LOOP_ADDR, LOOP_ADDR, 0, 500)->ping_count = 2;
	add_check(&t, CHECK_PING, "b", "127.0.1.2", "127.0.1.2", 0, 500)->ping_count = 2;
	c = add_check(&t, CHECK_PING, "c-once", "127.0.1.3", "127.0.1.3", 0, 500);
	c->ping_count = 1;
	add_check(&t, CHECK_PING, "no-host", "x", NULL, 0, 500);
	/* No host: only this check fails to start. */
	t.checks[4].target = NULL;
	run_checks(&t, &col);
	ck_assert_uint_eq(col.n, 5);
	ck_assert_int_eq(col.r[4].outcome, PROBE_ERROR);
	ck_assert_int_eq(col.r[1].outcome, col.r[0].outcome);
	ck_assert_uint_eq(strncmp(col.r[1].reason, col.r[0].reason, 12), 0);
	for (size_t i = 0; i < 4; i++)
		ck_assert_uint_le(col.r[i].elapsed_ms, 2 * 500 + 100);
	if (geteuid() == 0) {
		for (size_t i = 0; i < 4; i++)
			ck_assert_msg(col.r[i].outcome == PROBE_PASSED, "%s: %s", t.checks[i].name,
				      col.r[i].reason);
		ck_assert_ptr_nonnull(strstr(col.r[0].reason, "2 of 2 replies"));
		ck_assert_ptr_nonnull(strstr(col.r[3].reason, "1 of 1 replies"));
	}
}
END_TEST

/* A run cancelled while its ping group is on the wire: no callback, and the
 * abandoned worker frees the group when ping_send() returns. */
START_TEST(test_ping_cancel)
{
	struct tcfg t = { 0 };
	struct probe_run *run = NULL;
	sd_event *e = NULL;

	add_check(&t, CHECK_PING, "a", LOOP_ADDR, LOOP_ADDR, 0, 200)->ping_count = 3;
	add_check(&t, CHECK_PING, "b", "127.0.1.2", "127.0.1.2", 0, 200)->ping_count = 3;
	ck_assert_int_ge(sd_event_new(&e), 0);
	ck_assert_int_eq(probe_run_start(e, &t.cfg, never, NULL, &run), 0);
	probe_run_cancel(run);
	ck_assert_int_ge(sd_event_run(e, 100000), 0);
	sd_event_unref(e);
	/* The abandoned worker returns after its rounds (3 x 200 ms at most) and
	 * frees the group itself: poll for that, bounded. */
	for (int i = 0; i < 500 && worker_live() > 0; i++)
		usleep(10000);
	ck_assert_int_eq(worker_live(), 0);
}
END_TEST

/* A worker that outlives its check: abandoned at once, it must finish later
 * and free its own state (ASan and valgrind watch this test). */
static atomic_int jobs_freed, jobs_done;

static void slow_work(void *arg)
{
	usleep(100000);
	*(int *)arg = 42;
}

static void job_done(void *arg)
{
	atomic_fetch_add(&jobs_done, 1);
}

static void job_free(void *arg)
{
	free(arg);
	atomic_fetch_add(&jobs_freed, 1);
}

/* route.c: loopback always has its carrier, so a check there goes on; what
 * the kernel cannot judge (no IP family, no such source interface) goes on
 * too, for the socket to say. The answers are the same from the cache. */
START_TEST(test_route_verdict)
{
	struct probe_route *pr = probe_route_new();
	struct sockaddr_in lo = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 lo6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr unspec = { .sa_family = AF_UNIX };
	struct probe_path none = { 0 }, bylo = { .source = "lo", .source_is_ifname = true },
			  nosuch = { .source = "rr-no-such0", .source_is_ifname = true };
	char why[64];

	ck_assert_ptr_nonnull(pr);
	for (int pass = 0; pass < 2; pass++) {
		ck_assert_int_eq(probe_route_verdict(pr, &none, (struct sockaddr *)&lo, why, sizeof why), 0);
		ck_assert_int_eq(probe_route_verdict(pr, &bylo, (struct sockaddr *)&lo, why, sizeof why), 0);
		ck_assert_int_eq(probe_route_verdict(pr, &nosuch, (struct sockaddr *)&lo, why, sizeof why), 0);
		ck_assert_int_eq(probe_route_verdict(pr, &none, &unspec, why, sizeof why), 0);
	}
	/* Without IPv6 the kernel cannot tell: that goes on as well. */
	ck_assert_int_eq(probe_route_verdict(NULL, &none, (struct sockaddr *)&lo6, why, sizeof why), 0);
	probe_route_free(pr);
}
END_TEST

START_TEST(test_worker_abandon)
{
	struct worker *a = NULL, *b = NULL;
	sd_event *e = NULL;
	int *x = calloc(1, sizeof *x), *y = calloc(1, sizeof *y);

	ck_assert_int_ge(sd_event_new(&e), 0);
	ck_assert_int_eq(worker_start(e, 0, slow_work, job_done, job_free, x, &a), 0);
	ck_assert_int_eq(worker_start(e, 0, slow_work, job_done, job_free, y, &b), 0);
	worker_abandon(a);
	/* b reports through the loop; a never does, but is freed by its worker. */
	for (int i = 0; i < 100 && (atomic_load(&jobs_done) < 1 || atomic_load(&jobs_freed) < 2); i++)
		ck_assert_int_ge(sd_event_run(e, 20000), 0);
	ck_assert_int_eq(atomic_load(&jobs_done), 1);
	ck_assert_int_eq(atomic_load(&jobs_freed), 2);
	sd_event_unref(e);
}
END_TEST

static Suite *probes_suite(void)
{
	Suite *s = suite_create("probes");
	TCase *tc = tcase_create("loopback");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_outcome_str);
	tcase_add_test(tc, test_tcp_pass_and_refused);
	tcase_add_test(tc, test_tcp_timeout);
	tcase_add_test(tc, test_http_status);
	tcase_add_test(tc, test_http_refused);
	tcase_add_test(tc, test_smtp);
	tcase_add_test(tc, test_reply_lines);
	tcase_add_test(tc, test_run_order_and_once);
	tcase_add_test(tc, test_empty_run);
	tcase_add_test(tc, test_cancel);
	tcase_add_test(tc, test_early_verdict_failed);
	tcase_add_test(tc, test_early_verdict_passed);
	tcase_add_test(tc, test_worker_abandon);
	tcase_add_test(tc, test_route_verdict);
	tcase_add_test(tc, test_ping_group);
	tcase_add_test(tc, test_ping_cancel);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(probes_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
