/* Unit tests of the configuration parser and validator (SPEC section 2):
 * every typed reader, the defaults, the limits, and every error message as
 * the exact "FILE:LINE: message" an administrator reads. */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "config/instance.h"
#include "config/values.h"

/* Two link checks, so that the default failed_checks = 2 holds. Error cases
 * put their lines before it, so their line numbers start at 1. */
#define BASE "[check \"a\"]\ntype = ping\ntarget = 192.0.2.1\n" \
	     "[check \"b\"]\ntype = ping\ntarget = 192.0.2.2\n"

static struct cfg *load_ok(const char *text)
{
	struct cfg_errors errs = { 0 };
	struct cfg *c = NULL;
	int r = cfg_load_string("t.conf", text, &c, &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "unexpected: %s\n", errs.v[i]);
	ck_assert_int_eq(errs.n, 0);
	ck_assert_int_eq(r, 0);
	ck_assert_ptr_nonnull(c);
	cfg_errors_clear(&errs);
	return c;
}

/* The text gives exactly these errors, in this order. */
static void expect_errors(const char *text, const char *const *want)
{
	struct cfg_errors errs = { 0 };
	struct cfg *c = (struct cfg *)1;
	size_t n = 0;
	int r = cfg_load_string("t.conf", text, &c, &errs);
	while (want[n])
		n++;
	for (size_t i = 0; i < errs.n; i++)
		if (i >= n || strcmp(errs.v[i], want[i]) != 0)
			fprintf(stderr, "got:  %s\nwant: %s\n", errs.v[i], i < n ? want[i] : "(nothing)");
	ck_assert_int_eq(r, -EINVAL);
	ck_assert_ptr_null(c);
	ck_assert_uint_eq(errs.n, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(errs.v[i], want[i]);
	cfg_errors_clear(&errs);
}

#define EXPECT(text, ...) expect_errors(text, (const char *const[]){ __VA_ARGS__, NULL })

/* ---- typed readers ---- */

START_TEST(test_duration)
{
	static const struct { const char *s; uint64_t usec; } ok[] = {
		{ "0", 0 }, { "30", 30 * USEC_PER_SEC }, { "30s", 30 * USEC_PER_SEC },
		{ "500ms", 500 * USEC_PER_MSEC }, { "2m", 120 * USEC_PER_SEC },
		{ "1h", 3600 * USEC_PER_SEC }, { "007s", 7 * USEC_PER_SEC },
	};
	static const char *const bad[] = {
		"", "-1", "1.5s", "2x", "s", "1 s", " 1s", "10sec", "1S", "1m30s", "+1",
		"99999999999999999999", "18446744073709551615s", "5124095576031h",
	};
	uint64_t u;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_int_eq(cfg_parse_duration(ok[i].s, &u), 0);
		ck_assert_uint_eq(u, ok[i].usec);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cfg_parse_duration(bad[i], &u) == -EINVAL, "accepted '%s'", bad[i]);

	char buf[32];
	cfg_format_duration(120 * USEC_PER_SEC, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2m");
	cfg_format_duration(1500 * USEC_PER_MSEC, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1500ms");
	cfg_format_duration(7200 * USEC_PER_SEC, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2h");
	cfg_format_duration(90 * USEC_PER_SEC, buf, sizeof(buf));
	ck_assert_str_eq(buf, "90s");
	cfg_format_duration(0, buf, sizeof(buf));
	ck_assert_str_eq(buf, "0s");
}
END_TEST

START_TEST(test_bool)
{
	static const char *const yes[] = { "yes", "true", "on", "1", "YES", "True" };
	static const char *const no[] = { "no", "false", "off", "0", "No", "OFF" };
	static const char *const bad[] = { "", "2", "yess", "y", "n", "enabled", " yes" };
	bool b;
	for (size_t i = 0; i < 6; i++) {
		b = false;
		ck_assert_int_eq(cfg_parse_bool(yes[i], &b), 0);
		ck_assert(b);
		ck_assert_int_eq(cfg_parse_bool(no[i], &b), 0);
		ck_assert(!b);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_eq(cfg_parse_bool(bad[i], &b), -EINVAL);
}
END_TEST

START_TEST(test_hostport)
{
	static const struct { const char *s, *host; uint16_t port; } ok[] = {
		{ "relay.example.org:25", "relay.example.org", 25 }, { "[::1]:587", "::1", 587 },
		{ "192.0.2.1:65535", "192.0.2.1", 65535 }, { "[2001:db8::53]:1", "2001:db8::53", 1 },
		{ "localhost:25", "localhost", 25 }, { "mail_relay.lan:2525", "mail_relay.lan", 2525 },
	};
	static const char *const bad[] = {
		"", ":25", "host", "host:", "host:0", "host:65536", "host:25x", "::1:25", "[::1]25",
		"[::1]", "[zz]:25", "[192.0.2.1]:25", "a b:25", "-bad:25", "bad-:25", "a..b:25",
		"192.0.2.300:25", "host:-1", "host:+25",
	};
	char *h;
	uint16_t p;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_int_eq(cfg_parse_hostport(ok[i].s, &h, &p), 0);
		ck_assert_str_eq(h, ok[i].host);
		ck_assert_uint_eq(p, ok[i].port);
		free(h);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cfg_parse_hostport(bad[i], &h, &p) == -EINVAL, "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(test_host)
{
	static const struct { const char *s, *host; } ok[] = {
		{ "192.0.2.1", "192.0.2.1" }, { "2001:db8::1", "2001:db8::1" }, { "[::1]", "::1" },
		{ "gw.example.org", "gw.example.org" }, { "gw.example.org.", "gw.example.org." },
		{ "localhost", "localhost" },
	};
	static const char *const bad[] = { "", "192.0.2.1:80", "gw:80", "[gw]", "a b", "192.0.2.256", "-gw", "http://x" };
	char *h;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_int_eq(cfg_parse_host(ok[i].s, &h), 0);
		ck_assert_str_eq(h, ok[i].host);
		free(h);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cfg_parse_host(bad[i], &h) == -EINVAL, "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(test_mark)
{
	static const struct { const char *s; uint32_t v; } ok[] = {
		{ "0", 0 }, { "16", 16 }, { "0x10", 16 }, { "0XfF", 255 },
		{ "0xffffffff", 0xffffffffu }, { "4294967295", 0xffffffffu },
	};
	static const char *const bad[] = { "", "4294967296", "0x100000000", "0x", "-1", "0x1g", "1e3", "0x 1" };
	uint32_t m;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_int_eq(cfg_parse_mark(ok[i].s, &m), 0);
		ck_assert_uint_eq(m, ok[i].v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cfg_parse_mark(bad[i], &m) == -EINVAL, "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(test_uint)
{
	uint64_t v;
	ck_assert_int_eq(cfg_parse_uint("1", 1, 100, &v), 0);
	ck_assert_uint_eq(v, 1);
	ck_assert_int_eq(cfg_parse_uint("100", 1, 100, &v), 0);
	ck_assert_int_eq(cfg_parse_uint("0", 1, 100, &v), -EINVAL);
	ck_assert_int_eq(cfg_parse_uint("101", 1, 100, &v), -EINVAL);
	ck_assert_int_eq(cfg_parse_uint("-1", 0, 100, &v), -EINVAL);
	ck_assert_int_eq(cfg_parse_uint("1 ", 0, 100, &v), -EINVAL);
	ck_assert_int_eq(cfg_parse_uint("", 0, 100, &v), -EINVAL);
	ck_assert_int_eq(cfg_parse_uint("0x10", 0, 100, &v), -EINVAL);
}
END_TEST

START_TEST(test_source)
{
	bool ifn;
	ck_assert_int_eq(cfg_parse_source("eth1", &ifn), 0);
	ck_assert(ifn);
	ck_assert_int_eq(cfg_parse_source("enp0s31f6.100", &ifn), 0);
	ck_assert(ifn);
	ck_assert_int_eq(cfg_parse_source("fifteen-chars-x", &ifn), 0); /* IFNAMSIZ - 1 */
	ck_assert_int_eq(cfg_parse_source("192.0.2.7", &ifn), 0);
	ck_assert(!ifn);
	ck_assert_int_eq(cfg_parse_source("fe80::1", &ifn), 0);
	ck_assert(!ifn);
	static const char *const bad[] = { "", "sixteen-chars-xx", "a/b", "a:b", "a b", "10.0.0.300", "::g", ".", ".." };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cfg_parse_source(bad[i], &ifn) == -EINVAL, "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(test_url)
{
	static const char *const http[] = { "http", "https", NULL };
	static const char *const ok[] = {
		"http://example.org", "https://www.example.org/", "https://www.example.org:8443/x?y#z",
		"http://[2001:db8::1]/", "http://[::1]:8080", "https://user:pw@example.org/", "HTTPS://EXAMPLE.ORG/",
		"http://192.0.2.1/status",
	};
	static const char *const bad[] = {
		"", "example.org", "ftp://example.org/", "http://", "http:///x", "http://exa mple.org/",
		"http://example.org:0/", "http://example.org:99999/", "http://[::1/", "http://h:/",
		"https//example.org", "http://-x/",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		ck_assert_msg(cfg_parse_url(ok[i], http) == 0, "refused '%s'", ok[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cfg_parse_url(bad[i], http) == -EINVAL, "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(test_expect)
{
	struct cfg_range v[CFG_MAX_EXPECT];
	size_t n;
	ck_assert_int_eq(cfg_parse_expect("200-399", v, CFG_MAX_EXPECT, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(v[0].lo, 200);
	ck_assert_int_eq(v[0].hi, 399);
	ck_assert_int_eq(cfg_parse_expect("200", v, CFG_MAX_EXPECT, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(v[0].lo, 200);
	ck_assert_int_eq(v[0].hi, 200);
	ck_assert_int_eq(cfg_parse_expect("200, 204 ,300-399", v, CFG_MAX_EXPECT, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(v[1].lo, 204);
	ck_assert_int_eq(v[2].lo, 300);
	ck_assert_int_eq(v[2].hi, 399);
	ck_assert_int_eq(cfg_parse_expect("100-599", v, CFG_MAX_EXPECT, &n), 0);
	ck_assert_int_eq(cfg_parse_expect("301-301", v, CFG_MAX_EXPECT, &n), 0);
	ck_assert_int_eq(cfg_parse_expect("200,201,202,203,204,205,206,207,208,209,210,211,212,213,214,215",
					  v, CFG_MAX_EXPECT, &n), 0);
	ck_assert_uint_eq(n, 16);
	static const char *const bad[] = {
		"", "99", "600", "300-200", "200,", ",200", "200-", "-200", "2xx", "200 - 299", "200;204",
		"200,201,202,203,204,205,206,207,208,209,210,211,212,213,214,215,216",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cfg_parse_expect(bad[i], v, CFG_MAX_EXPECT, &n) == -EINVAL, "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(test_days)
{
	static const struct { const char *s; uint8_t bits; } ok[] = {
		{ "mon", 0x01 }, { "sun", 0x40 }, { "mon-fri", 0x1f }, { "sat,sun", 0x60 },
		{ "sat, sun", 0x60 }, { "fri-mon", 0x71 }, { "mon-sun", 0x7f }, { "mon-mon", 0x01 },
		{ "MON-Wed", 0x07 }, { "mon,wed-thu,sun", 0x4d }, { "sun-sat", 0x7f },
	};
	static const char *const bad[] = { "", "monday", "mon-", "-fri", "xyz", "mon,,tue", "mon-fri-sun", "1" };
	uint8_t d;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_int_eq(cfg_parse_days(ok[i].s, &d), 0);
		ck_assert_msg(d == ok[i].bits, "%s: %#x", ok[i].s, d);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cfg_parse_days(bad[i], &d) == -EINVAL, "accepted '%s'", bad[i]);
	/* tm_wday: Sunday = 0 maps to bit 6, Monday = 1 to bit 0. */
	ck_assert_uint_eq(cfg_day_bit(0), 0x40);
	ck_assert_uint_eq(cfg_day_bit(1), 0x01);
	ck_assert_uint_eq(cfg_day_bit(6), 0x20);
}
END_TEST

START_TEST(test_time)
{
	unsigned m;
	ck_assert_int_eq(cfg_parse_time("00:00", &m), 0);
	ck_assert_uint_eq(m, 0);
	ck_assert_int_eq(cfg_parse_time("23:59", &m), 0);
	ck_assert_uint_eq(m, 23 * 60 + 59);
	ck_assert_int_eq(cfg_parse_time("9:30", &m), 0);
	ck_assert_uint_eq(m, 570);
	static const char *const bad[] = { "", "24:00", "12:60", "1230", "12:5", ":30", "123:00", "12:300", "a:00", "-1:00" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cfg_parse_time(bad[i], &m) == -EINVAL, "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(test_lists)
{
	struct cfg_list l;
	ck_assert_int_eq(cfg_parse_list("a, b ,c", ",", &l), 0);
	ck_assert_uint_eq(l.n, 3);
	ck_assert_str_eq(l.v[0], "a");
	ck_assert_str_eq(l.v[1], "b");
	ck_assert_str_eq(l.v[2], "c");
	ck_assert_ptr_null(l.v[3]);
	cfg_list_free(&l);
	ck_assert_int_eq(cfg_parse_list("x@y;z@w, q@r", ",;", &l), 0);
	ck_assert_uint_eq(l.n, 3);
	ck_assert_str_eq(l.v[2], "q@r");
	cfg_list_free(&l);
	ck_assert_int_eq(cfg_parse_list("a,,b", ",", &l), -EINVAL);
	ck_assert_int_eq(cfg_parse_list("", ",", &l), -EINVAL);
	ck_assert_int_eq(cfg_parse_list("a,", ",", &l), -EINVAL);
	ck_assert_int_eq(cfg_parse_list("a, ,b", ",", &l), -EINVAL);

	ck_assert_int_eq(cfg_split_argv("/usr/sbin/postqueue -f", &l), 0);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_str_eq(l.v[0], "/usr/sbin/postqueue");
	ck_assert_str_eq(l.v[1], "-f");
	ck_assert_ptr_null(l.v[2]);
	cfg_list_free(&l);
	ck_assert_int_eq(cfg_split_argv("  /x \t a  'b c' ", &l), 0);
	ck_assert_uint_eq(l.n, 4); /* no quoting: the quotes stay words */
	ck_assert_str_eq(l.v[2], "'b");
	cfg_list_free(&l);
	ck_assert_int_eq(cfg_split_argv("", &l), 0);
	ck_assert_uint_eq(l.n, 0);
	cfg_list_free(&l);
}
END_TEST

START_TEST(test_address)
{
	static const char *const ok[] = { "a@b.org", "root@localhost", "first.last+tag@ex.org", "x_y-z@sub.example.org" };
	static const char *const bad[] = {
		"", "a", "@b.org", "a@", "<a@b.org>", "a b@c.org", "a@b@c.org", "a@-b.org", "a@b .org",
		"a@192.0.2.1", ".a@b.org", "a.@b.org", "a..b@c.org", "a,b@c.org",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		ck_assert_msg(cfg_valid_address(ok[i]), "refused '%s'", ok[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!cfg_valid_address(bad[i]), "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(cfg_check_type_str(CHECK_PING), "ping");
	ck_assert_str_eq(cfg_check_type_str(CHECK_HTTP), "http");
	ck_assert_str_eq(cfg_check_type_str(CHECK_TCP), "tcp");
	ck_assert_str_eq(cfg_check_type_str(CHECK_SMTP), "smtp");
	ck_assert_str_eq(cfg_role_str(ROLE_LINK), "link");
	ck_assert_str_eq(cfg_role_str(ROLE_BACKUP), "backup");
}
END_TEST

/* ---- whole files ---- */

START_TEST(test_defaults)
{
	struct cfg *c = load_ok(BASE);
	char host[256] = "", from[300];

	ck_assert_str_eq(c->path, "t.conf");
	ck_assert_uint_eq(c->agent.interval_usec, 120 * USEC_PER_SEC);
	ck_assert_uint_eq(c->agent.failed_checks, 2);
	ck_assert_uint_eq(c->agent.runs, 2);
	ck_assert_uint_eq(c->agent.failed_runs, 2);
	ck_assert_uint_eq(c->agent.passed_runs, 2);
	ck_assert_int_eq(c->agent.initial_state, INITIAL_LAST);
	ck_assert_str_eq(c->agent.state_db, "/var/lib/rerouter/state.db");
	ck_assert_uint_eq(c->ping.count, 3);
	ck_assert_uint_eq(c->ping.min_replies, 2);
	ck_assert_uint_eq(c->ping.timeout_usec, 2 * USEC_PER_SEC);

	ck_assert_uint_eq(c->n_checks, 2);
	ck_assert_uint_eq(c->n_link_checks, 2);
	const struct cfg_check *k = &c->checks[0];
	ck_assert_str_eq(k->name, "a");
	ck_assert_uint_eq(k->line, 1);
	ck_assert_int_eq(k->type, CHECK_PING);
	ck_assert_int_eq(k->role, ROLE_LINK);
	ck_assert_str_eq(k->target, "192.0.2.1");
	ck_assert_str_eq(k->host, "192.0.2.1");
	ck_assert_uint_eq(k->timeout_usec, 2 * USEC_PER_SEC);
	ck_assert_uint_eq(k->ping_count, 3);
	ck_assert_uint_eq(k->ping_min_replies, 2);
	ck_assert_ptr_null(k->source);
	ck_assert(!k->has_mark);
	ck_assert_ptr_null(k->proxy);
	ck_assert_str_eq(c->checks[1].name, "b");
	ck_assert_uint_eq(c->checks[1].line, 4);

	ck_assert(!c->on_down.present);
	ck_assert(!c->on_up.present);
	ck_assert_uint_eq(c->on_down.enable.n, 0);
	ck_assert_str_eq(c->transport.database, "/var/lib/rerouter/transport.db");
	ck_assert_str_eq(c->transport.unit, "postfix.service");
	ck_assert_int_eq(c->transport.action, TRANSPORT_RESTART);
	ck_assert_int_eq(c->transport.bus, BUS_SYSTEM);
	ck_assert_uint_eq(c->transport.flush.n, 2);
	ck_assert_str_eq(c->transport.flush.v[0], "/usr/sbin/postqueue");
	ck_assert_str_eq(c->transport.flush.v[1], "-f");
	ck_assert_ptr_null(c->transport.flush.v[2]);

	ck_assert(!c->mail.present);
	gethostname(host, sizeof(host) - 1);
	snprintf(from, sizeof(from), "rerouter@%s", host);
	ck_assert_str_eq(c->mail.from, from);
	ck_assert_str_eq(c->mail.server, "smtp://localhost:25");
	ck_assert_int_eq(c->mail.starttls, STARTTLS_AUTO);
	ck_assert_ptr_null(c->mail.username);
	ck_assert_ptr_null(c->mail.password_file);
	ck_assert_uint_eq(c->mail.timeout_usec, 30 * USEC_PER_SEC);
	ck_assert_uint_eq(c->mail.min_gap_usec, 300 * USEC_PER_SEC);
	ck_assert(!c->hook.present);
	ck_assert_ptr_null(c->hook.on_change);
	ck_assert_uint_eq(c->hook.timeout_usec, 30 * USEC_PER_SEC);
	ck_assert_uint_eq(c->n_windows, 0);
	ck_assert(!c->log.verbose);
	cfg_free(c);

	/* Defaults of the other check types. */
	c = load_ok("[check \"w\"]\ntype = http\ntarget = http://192.0.2.9/\n"
		    "[check \"t\"]\ntype = tcp\ntarget = [2001:db8::1]:443\n"
		    "[check \"s\"]\ntype = smtp\ntarget = relay.example.org:25\nrole = backup\n");
	ck_assert_uint_eq(c->n_checks, 3);
	ck_assert_uint_eq(c->n_link_checks, 2);
	k = &c->checks[0];
	ck_assert_int_eq(k->type, CHECK_HTTP);
	ck_assert_uint_eq(k->timeout_usec, 5 * USEC_PER_SEC);
	ck_assert_uint_eq(k->n_expect, 1);
	ck_assert_int_eq(k->expect[0].lo, 200);
	ck_assert_int_eq(k->expect[0].hi, 399);
	ck_assert_ptr_null(k->host);
	ck_assert_ptr_null(k->proxy);
	ck_assert_str_eq(k->target, "http://192.0.2.9/");
	k = &c->checks[1];
	ck_assert_int_eq(k->type, CHECK_TCP);
	ck_assert_str_eq(k->host, "2001:db8::1");
	ck_assert_uint_eq(k->port, 443);
	ck_assert_uint_eq(k->timeout_usec, 5 * USEC_PER_SEC);
	k = &c->checks[2];
	ck_assert_int_eq(k->type, CHECK_SMTP);
	ck_assert_int_eq(k->role, ROLE_BACKUP);
	ck_assert_str_eq(k->host, "relay.example.org");
	ck_assert_uint_eq(k->port, 25);
	cfg_free(c);
}
END_TEST

START_TEST(test_every_key)
{
	char pw[] = "/tmp/check_config_pwXXXXXX";
	int fd = mkstemp(pw);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(chmod(pw, 0600), 0);

	char *text;
	ck_assert_int_ge(asprintf(&text,
		"; a comment\n"
		"# another\n"
		"[agent]\n"
		"interval = 90s   # inline comment\n"
		"failed_checks = 1 ; inline comment\n"
		"runs = 5\n"
		"failed_runs = 3\n"
		"passed_runs = 4\n"
		"initial_state = down\n"
		"state_db = /srv/state.db\n"
		"[ping]\n"
		"count = 5\n"
		"min_replies = 1\n"
		"timeout = 500ms\n"
		"[check \"gw one\"]\n"
		"type = ping\n"
		"target = [fe80::1]\n"
		"timeout = 1s\n"
		"source = eth1\n"
		"mark = 0x10\n"
		"role = link\n"
		"count = 4\n"
		"min_replies = 4\n"
		"[check \"web\"]\n"
		"    type = http\n"
		"    target = https://www.example.org/a#frag\n"
		"    timeout = 10s\n"
		"    expect = 200,204,300-399\n"
		"    proxy = socks5h://127.0.0.1:1080\n"
		"    source = 2001:db8::7\n"
		"    mark = 42\n"
		"    role = backup\n"
		"[on_down]\n"
		"disable = site-a, site-c\n"
		"enable = site-b\n"
		"[on_up]\n"
		"enable = site-a\n"
		"[transport]\n"
		"database = /srv/transport.db\n"
		"unit = exim4.service\n"
		"action = reload\n"
		"bus = user\n"
		"flush =\n"
		"[mail]\n"
		"to = admin@example.org; noc@example.org,ops@example.org\n"
		"from = rerouter@hub1.example.org\n"
		"server = smtps://mail.example.org:465\n"
		"starttls = never\n"
		"username = rerouter\n"
		"password_file = %s\n"
		"timeout = 1m\n"
		"min_gap = 0\n"
		"[hook]\n"
		"on_change = /usr/local/sbin/wan-changed\n"
		"timeout = 10s\n"
		"[maintenance \"nightly\"]\n"
		"days = mon-fri\n"
		"start = 22:00\n"
		"end = 02:00\n"
		"[maintenance \"weekend\"]\n"
		"days = sat,sun\n"
		"start = 0:00\n"
		"end = 23:59\n"
		"[log]\n"
		"verbose = on\n", pw), 0);
	struct cfg *c = load_ok(text);
	free(text);

	ck_assert_uint_eq(c->agent.interval_usec, 90 * USEC_PER_SEC);
	ck_assert_uint_eq(c->agent.failed_checks, 1);
	ck_assert_uint_eq(c->agent.runs, 5);
	ck_assert_uint_eq(c->agent.failed_runs, 3);
	ck_assert_uint_eq(c->agent.passed_runs, 4);
	ck_assert_int_eq(c->agent.initial_state, INITIAL_DOWN);
	ck_assert_str_eq(c->agent.state_db, "/srv/state.db");
	ck_assert_uint_eq(c->ping.count, 5);
	ck_assert_uint_eq(c->ping.min_replies, 1);
	ck_assert_uint_eq(c->ping.timeout_usec, 500 * USEC_PER_MSEC);

	ck_assert_uint_eq(c->n_checks, 2);
	ck_assert_uint_eq(c->n_link_checks, 1);
	const struct cfg_check *k = &c->checks[0];
	ck_assert_str_eq(k->name, "gw one");
	ck_assert_uint_eq(k->line, 15);
	ck_assert_str_eq(k->target, "[fe80::1]");
	ck_assert_str_eq(k->host, "fe80::1");
	ck_assert_uint_eq(k->timeout_usec, USEC_PER_SEC);
	ck_assert_str_eq(k->source, "eth1");
	ck_assert(k->source_is_ifname);
	ck_assert(k->has_mark);
	ck_assert_uint_eq(k->mark, 16);
	ck_assert_int_eq(k->role, ROLE_LINK);
	ck_assert_uint_eq(k->ping_count, 4);
	ck_assert_uint_eq(k->ping_min_replies, 4);
	k = &c->checks[1];
	ck_assert_int_eq(k->type, CHECK_HTTP);
	ck_assert_str_eq(k->target, "https://www.example.org/a#frag");
	ck_assert_uint_eq(k->timeout_usec, 10 * USEC_PER_SEC);
	ck_assert_uint_eq(k->n_expect, 3);
	ck_assert_int_eq(k->expect[0].lo, 200);
	ck_assert_int_eq(k->expect[0].hi, 200);
	ck_assert_int_eq(k->expect[1].lo, 204);
	ck_assert_int_eq(k->expect[2].lo, 300);
	ck_assert_int_eq(k->expect[2].hi, 399);
	ck_assert_str_eq(k->proxy, "socks5h://127.0.0.1:1080");
	ck_assert_str_eq(k->source, "2001:db8::7");
	ck_assert(!k->source_is_ifname);
	ck_assert_uint_eq(k->mark, 42);
	ck_assert_int_eq(k->role, ROLE_BACKUP);

	ck_assert(c->on_down.present);
	ck_assert_uint_eq(c->on_down.line, 33);
	ck_assert_uint_eq(c->on_down.disable.n, 2);
	ck_assert_str_eq(c->on_down.disable.v[1], "site-c");
	ck_assert_uint_eq(c->on_down.enable.n, 1);
	ck_assert_str_eq(c->on_down.enable.v[0], "site-b");
	ck_assert(c->on_up.present);
	ck_assert_uint_eq(c->on_up.enable.n, 1);
	ck_assert_uint_eq(c->on_up.disable.n, 0);

	ck_assert_str_eq(c->transport.database, "/srv/transport.db");
	ck_assert_str_eq(c->transport.unit, "exim4.service");
	ck_assert_int_eq(c->transport.action, TRANSPORT_RELOAD);
	ck_assert_int_eq(c->transport.bus, BUS_USER);
	ck_assert_uint_eq(c->transport.flush.n, 0);

	ck_assert(c->mail.present);
	ck_assert_uint_eq(c->mail.to.n, 3);
	ck_assert_str_eq(c->mail.to.v[0], "admin@example.org");
	ck_assert_str_eq(c->mail.to.v[1], "noc@example.org");
	ck_assert_str_eq(c->mail.to.v[2], "ops@example.org");
	ck_assert_str_eq(c->mail.from, "rerouter@hub1.example.org");
	ck_assert_str_eq(c->mail.server, "smtps://mail.example.org:465");
	ck_assert_int_eq(c->mail.starttls, STARTTLS_NEVER);
	ck_assert_str_eq(c->mail.username, "rerouter");
	ck_assert_str_eq(c->mail.password_file, pw);
	ck_assert_uint_eq(c->mail.timeout_usec, 60 * USEC_PER_SEC);
	ck_assert_uint_eq(c->mail.min_gap_usec, 0);

	ck_assert(c->hook.present);
	ck_assert_str_eq(c->hook.on_change, "/usr/local/sbin/wan-changed");
	ck_assert_uint_eq(c->hook.timeout_usec, 10 * USEC_PER_SEC);

	ck_assert_uint_eq(c->n_windows, 2);
	ck_assert_str_eq(c->windows[0].name, "nightly");
	ck_assert_uint_eq(c->windows[0].line, 56);
	ck_assert_uint_eq(c->windows[0].days, 0x1f);
	ck_assert_uint_eq(c->windows[0].start_min, 22 * 60);
	ck_assert_uint_eq(c->windows[0].end_min, 2 * 60);
	ck_assert_uint_eq(c->windows[1].days, 0x60);
	ck_assert_uint_eq(c->windows[1].start_min, 0);
	ck_assert_uint_eq(c->windows[1].end_min, 23 * 60 + 59);
	ck_assert(c->log.verbose);
	cfg_free(c);
	unlink(pw);
}
END_TEST

START_TEST(test_sample)
{
	struct cfg_errors errs = { 0 };
	struct cfg *c = NULL;
	int r = cfg_load(SRCDIR "/config/rerouter.conf", &c, &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.v[i]);
	ck_assert_int_eq(r, 0);
	ck_assert_uint_eq(c->n_checks, 4);
	ck_assert_uint_eq(c->n_link_checks, 3);
	ck_assert(c->mail.present);
	ck_assert(c->hook.present);
	ck_assert_uint_eq(c->n_windows, 1);
	cfg_free(c);

	ck_assert_int_eq(cfg_load("/nonexistent/rerouter.conf", &c, &errs), -ENOENT);
	ck_assert_ptr_null(c);
	ck_assert_uint_eq(errs.n, 0);
}
END_TEST

START_TEST(test_syntax_forms)
{
	/* CRLF, a BOM, blanks around '=', an empty [on_down], an empty hook. */
	struct cfg *c = load_ok("\xef\xbb\xbf[log]\r\nverbose=yes\r\n[on_down]\n[hook]\non_change =\n"
				"[mail]\nto = a@example.org;b@example.org # two\n" BASE);
	ck_assert(c->log.verbose);
	ck_assert(c->on_down.present);
	ck_assert_uint_eq(c->on_down.line, 3);
	ck_assert(!c->hook.present);
	ck_assert_uint_eq(c->mail.to.n, 2);
	cfg_free(c);

	/* An indented line is its own key, never a continuation of the last. */
	c = load_ok("[check \"a\"]\ntype = ping\ntarget = 192.0.2.1\n   timeout = 1s\n"
		    "[check \"b\"]\ntype = ping\ntarget = 192.0.2.2\n");
	ck_assert_str_eq(c->checks[0].target, "192.0.2.1");
	ck_assert_uint_eq(c->checks[0].timeout_usec, USEC_PER_SEC);
	cfg_free(c);
}
END_TEST

START_TEST(test_limits_ok)
{
	struct cfg *c = load_ok("[agent]\ninterval = 100ms\nruns = 1\nfailed_runs = 1\npassed_runs = 1\n"
				"failed_checks = 1\n[ping]\ncount = 1\nmin_replies = 1\ntimeout = 10ms\n"
				"[check \"a\"]\ntype = tcp\ntarget = h:1\ntimeout = 10ms\n");
	ck_assert_uint_eq(c->agent.interval_usec, 100 * USEC_PER_MSEC);
	ck_assert_uint_eq(c->checks[0].timeout_usec, 10 * USEC_PER_MSEC);
	cfg_free(c);
	c = load_ok("[agent]\ninterval = 24h\nruns = 100\nfailed_runs = 100\npassed_runs = 100\n"
		    "[ping]\ncount = 23\nmin_replies = 23\ntimeout = 1h\n"
		    "[check \"a\"]\ntype = ping\ntarget = h\ncount = 100\nmin_replies = 100\ntimeout = 10ms\n[check \"b\"]\ntype = http\ntarget = http://h/\ntimeout = 3600s\n"
		    "[mail]\nto = a@b.org\ntimeout = 1h\nmin_gap = 24h\n[hook]\ntimeout = 60m\n");
	ck_assert_uint_eq(c->agent.interval_usec, 24 * 3600 * USEC_PER_SEC);
	ck_assert_uint_eq(c->ping.count, 23);
	ck_assert_uint_eq(c->checks[0].ping_count, 100);
	ck_assert_uint_eq(c->ping.timeout_usec, 3600 * USEC_PER_SEC);
	ck_assert_uint_eq(c->agent.runs, 100);
	ck_assert_uint_eq(c->mail.min_gap_usec, 24 * 3600 * USEC_PER_SEC);
	cfg_free(c);
}
END_TEST


START_TEST(test_fast_interval)
{
	/* Unset: 10 s, or the longest check when that is longer, never beyond interval. */
	struct cfg *c = load_ok(BASE);
	ck_assert_uint_eq(c->agent.fast_interval_usec, 10 * USEC_PER_SEC);
	ck_assert(c->agent.watch_links);
	cfg_free(c);
	c = load_ok("[check \"h\"]\ntype = http\ntarget = http://h/\ntimeout = 30s\n" BASE);
	ck_assert_uint_eq(c->agent.fast_interval_usec, 30 * USEC_PER_SEC);
	cfg_free(c);
	c = load_ok("[check \"p\"]\ntype = ping\ntarget = h\ncount = 5\ntimeout = 3s\n" BASE);
	ck_assert_uint_eq(c->agent.fast_interval_usec, 15 * USEC_PER_SEC);
	cfg_free(c);
	/* A configuration from before fast_interval with interval under 10 s
	 * stays valid: fast_interval = interval, i.e. off. */
	c = load_ok("[agent]\ninterval = 1s\n[ping]\ncount = 1\nmin_replies = 1\ntimeout = 900ms\n" BASE);
	ck_assert_uint_eq(c->agent.fast_interval_usec, 1 * USEC_PER_SEC);
	cfg_free(c);
	/* Set: the longest check and interval are both allowed. */
	c = load_ok("[agent]\nfast_interval = 6s\nwatch_links = no\n" BASE);
	ck_assert_uint_eq(c->agent.fast_interval_usec, 6 * USEC_PER_SEC);
	ck_assert(!c->agent.watch_links);
	cfg_free(c);
	c = load_ok("[agent]\ninterval = 30s\nfast_interval = 30s\n" BASE);
	ck_assert_uint_eq(c->agent.fast_interval_usec, 30 * USEC_PER_SEC);
	cfg_free(c);
	/* The benchmark's lab: timeouts 1 s, fast_interval 1 s. */
	c = load_ok("[agent]\ninterval = 30s\nfast_interval = 1s\n[ping]\ncount = 1\nmin_replies = 1\ntimeout = 1s\n"
		    "[check \"t\"]\ntype = tcp\ntarget = h:1\ntimeout = 1s\n" BASE);
	ck_assert_uint_eq(c->agent.fast_interval_usec, 1 * USEC_PER_SEC);
	cfg_free(c);
}
END_TEST

/* One bad line before BASE, and the single message it must give. */
static const struct { const char *text, *msg; } one_error[] = {
	/* syntax */
	{ "intervall = 2m\n", "t.conf:1: key 'intervall' outside of any section" },
	{ "[agent]\nintervall = 2m\n", "t.conf:2: [agent] unknown key 'intervall' (did you mean 'interval'?)" },
	{ "[agent]\nbogus = 1\n", "t.conf:2: [agent] unknown key 'bogus'" },
	{ "[agent]\ncount = 1\n", "t.conf:2: [agent] unknown key 'count'" },
	{ "[mail]\nto = a@b.org\ntoo = x\n", "t.conf:3: [mail] unknown key 'too' (did you mean 'to'?)" },
	{ "[agnet]\ninterval = 1m\n", "t.conf:1: unknown section 'agnet' (did you mean 'agent'?)" },
	{ "[frobnicate]\n", "t.conf:1: unknown section 'frobnicate'" },
	{ "[chek \"x\"]\ntype = ping\n", "t.conf:1: unknown section 'chek' (did you mean 'check'?)" },
	{ "[agent\n", "t.conf:1: expected ']' at the end of the section header, got '[agent'" },
	{ "[check]\ntype = ping\n", "t.conf:1: [check]: expected a name in quotes, as [check \"NAME\"]" },
	{ "[check \"\"]\n", "t.conf:1: [check]: expected a name in quotes, as [check \"NAME\"]" },
	{ "[check x]\n", "t.conf:1: [check]: expected a name in quotes, as [check \"NAME\"]" },
	{ "[maintenance]\n", "t.conf:1: [maintenance]: expected a name in quotes, as [maintenance \"NAME\"]" },
	{ "[agent \"x\"]\n", "t.conf:1: [agent]: this section takes no name, got \"x\"" },
	{ "[agent]\n[log]\n[agent]\n", "t.conf:3: [agent]: section repeated (first on line 1)" },
	{ "[agent]\ninterval = 1m\ninterval = 2m\n", "t.conf:3: [agent] interval: repeated (first on line 2)" },
	{ "[agent]\njust words\n", "t.conf:2: expected 'key = value' or a [section] header, got 'just words'" },
	{ "[agent]\ninterval: 2m\n", "t.conf:2: expected 'key = value' or a [section] header, got 'interval: 2m'" },
	{ "[agent]\n= 2m\n", "t.conf:2: [agent] missing key name before '='" },
	{ "[hook]\non_change = /usr/local/sbin/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	  "t.conf:2: line too long (at most 197 characters)" },
	/* [agent] */
	{ "[agent]\ninterval = 2x\n", "t.conf:2: [agent] interval: expected a duration such as 30s, 2m, 500ms, got '2x'" },
	{ "[agent]\ninterval = -1s\n", "t.conf:2: [agent] interval: expected a duration such as 30s, 2m, 500ms, got '-1s'" },
	{ "[agent]\ninterval = 99ms\n", "t.conf:2: [agent] interval: expected a duration between 100ms and 24h, got '99ms'" },
	{ "[agent]\ninterval = 0\n", "t.conf:2: [agent] interval: expected a duration between 100ms and 24h, got '0'" },
	{ "[agent]\ninterval = 86401\n", "t.conf:2: [agent] interval: expected a duration between 100ms and 24h, got '86401'" },
	{ "[agent]\ninterval = 99999999999999999999h\n", "t.conf:2: [agent] interval: expected a duration such as 30s, 2m, 500ms, got '99999999999999999999h'" },
	{ "[agent]\nruns = 0\n", "t.conf:2: [agent] runs: expected a whole number between 1 and 100, got '0'" },
	{ "[agent]\nruns = 101\nfailed_runs = 1\npassed_runs = 1\n", "t.conf:2: [agent] runs: expected a whole number between 1 and 100, got '101'" },
	{ "[agent]\nfailed_runs = two\n", "t.conf:2: [agent] failed_runs: expected a whole number between 1 and 100, got 'two'" },
	{ "[agent]\nfailed_checks = 0\n", "t.conf:2: [agent] failed_checks: expected a whole number between 1 and 1000, got '0'" },
	{ "[agent]\ninitial_state = maybe\n", "t.conf:2: [agent] initial_state: expected last, up or down, got 'maybe'" },
	{ "[agent]\nstate_db = state.db\n", "t.conf:2: [agent] state_db: expected an absolute path, got 'state.db'" },
	{ "[agent]\nstate_db =\n", "t.conf:2: [agent] state_db: expected an absolute path, got ''" },
	/* [ping] */
	{ "[ping]\ncount = 101\n", "t.conf:2: [ping] count: expected a whole number between 1 and 100, got '101'" },
	{ "[ping]\nmin_replies = 0\n", "t.conf:2: [ping] min_replies: expected a whole number between 1 and 100, got '0'" },
	{ "[ping]\ntimeout = 9ms\n", "t.conf:2: [ping] timeout: expected a duration between 10ms and 1h, got '9ms'" },
	{ "[ping]\ncount = 2\nmin_replies = 3\n", "t.conf:3: [ping] min_replies: 3 is more than count (2)" },
	{ "[ping]\ncount = 1\n", "t.conf:2: [ping] min_replies: 2 is more than count (1)" },
	/* [check] */
	{ "[check \"c\"]\ntarget = h\n", "t.conf:1: [check \"c\"] type: missing (ping, http, tcp or smtp)" },
	{ "[check \"c\"]\ntype = icmp\ntarget = h\n", "t.conf:2: [check \"c\"] type: expected ping, http, tcp or smtp, got 'icmp'" },
	{ "[check \"c\"]\ntype = ping\n", "t.conf:1: [check \"c\"] target: missing" },
	{ "[check \"c\"]\ntype = ping\ntarget = 192.0.2.1:80\n", "t.conf:3: [check \"c\"] target: expected a host name or IP address without port, got '192.0.2.1:80'" },
	{ "[check \"c\"]\ntype = http\ntarget = ftp://h/\n", "t.conf:3: [check \"c\"] target: expected an http:// or https:// URL with a host, got 'ftp://h/'" },
	{ "[check \"c\"]\ntype = http\ntarget = https:///x\n", "t.conf:3: [check \"c\"] target: expected an http:// or https:// URL with a host, got 'https:///x'" },
	{ "[check \"c\"]\ntype = tcp\ntarget = 2001:db8::1:25\n", "t.conf:3: [check \"c\"] target: expected host:port (IPv6 as [address]:port, port 1-65535), got '2001:db8::1:25'" },
	{ "[check \"c\"]\ntype = smtp\ntarget = h:0\n", "t.conf:3: [check \"c\"] target: expected host:port (IPv6 as [address]:port, port 1-65535), got 'h:0'" },
	{ "[check \"c\"]\ntype = tcp\ntarget = h:1\ntimeout = 2h\n", "t.conf:4: [check \"c\"] timeout: expected a duration between 10ms and 1h, got '2h'" },
	{ "[check \"c\"]\ntype = tcp\ntarget = h:1\nsource = 10.0.0.300\n", "t.conf:4: [check \"c\"] source: expected an IP address or an interface name, got '10.0.0.300'" },
	{ "[check \"c\"]\ntype = tcp\ntarget = h:1\nsource = averyveryverylongname\n", "t.conf:4: [check \"c\"] source: expected an IP address or an interface name, got 'averyveryverylongname'" },
	{ "[check \"c\"]\ntype = tcp\ntarget = h:1\nmark = 0x100000000\n", "t.conf:4: [check \"c\"] mark: expected a 32-bit number, decimal or 0x hexadecimal, got '0x100000000'" },
	{ "[check \"c\"]\ntype = tcp\ntarget = h:1\nrole = primary\n", "t.conf:4: [check \"c\"] role: expected link or backup, got 'primary'" },
	{ "[check \"c\"]\ntype = http\ntarget = http://h/\nexpect = 200-600\n", "t.conf:4: [check \"c\"] expect: expected status codes (100-599) such as 200-399 or 200,204,300-399, got '200-600'" },
	{ "[check \"c\"]\ntype = http\ntarget = http://h/\nexpect = 399-200\n", "t.conf:4: [check \"c\"] expect: expected status codes (100-599) such as 200-399 or 200,204,300-399, got '399-200'" },
	{ "[check \"c\"]\ntype = http\ntarget = http://h/\nproxy = ftp://p\n", "t.conf:4: [check \"c\"] proxy: expected none or a proxy URL (http, https, socks4, socks5 or socks5h://host[:port]), got 'ftp://p'" },
	{ "[check \"c\"]\ntype = tcp\ntarget = h:1\nexpect = 200\n", "t.conf:4: [check \"c\"] expect: applies only to http checks, not tcp" },
	{ "[check \"c\"]\ntype = ping\ntarget = h\nproxy = none\n", "t.conf:4: [check \"c\"] proxy: applies only to http checks, not ping" },
	{ "[check \"c\"]\ntype = smtp\ntarget = h:25\ncount = 3\n", "t.conf:4: [check \"c\"] count: applies only to ping checks, not smtp" },
	{ "[check \"c\"]\ntype = http\ntarget = http://h/\nmin_replies = 1\n", "t.conf:4: [check \"c\"] min_replies: applies only to ping checks, not http" },
	{ "[check \"c\"]\ntype = ping\ntarget = h\ncount = 0\n", "t.conf:4: [check \"c\"] count: expected a whole number between 1 and 100, got '0'" },
	{ "[check \"c\"]\ntype = ping\ntarget = h\ncount = 2\nmin_replies = 3\n", "t.conf:5: [check \"c\"] min_replies: 3 is more than count (2)" },
	{ "[check \"c\"]\ntype = ping\ntarget = h\ncount = 1\n", "t.conf:4: [check \"c\"] min_replies: 2 is more than count (1)" },
	{ "[check \"a\"]\ntype = ping\ntarget = h\n", "t.conf:4: [check \"a\"]: duplicate check name (first on line 1)" },
	/* fast_interval against the checks and the interval; watch_links */
	{ "[agent]\nfast_interval = 5s\n", "t.conf:2: [agent] fast_interval: 5s is shorter than the longest check (\"a\", 6s)" },
	{ "[agent]\nfast_interval = 1m\ninterval = 30s\n", "t.conf:2: [agent] fast_interval: 1m is longer than interval (30s); equal to it turns it off" },
	{ "[agent]\nfast_interval = 50ms\n", "t.conf:2: [agent] fast_interval: expected a duration between 100ms and 24h, got '50ms'" },
	{ "[agent]\nfast_interval = soon\n", "t.conf:2: [agent] fast_interval: expected a duration such as 30s, 2m, 500ms, got 'soon'" },
	{ "[agent]\nwatch_links = maybe\n", "t.conf:2: [agent] watch_links: expected yes or no (also true/false, on/off, 1/0), got 'maybe'" },
	/* cross-field: timeouts against the interval */
	{ "[agent]\ninterval = 7s\n[check \"c\"]\ntype = tcp\ntarget = h:1\ntimeout = 7s\n", "t.conf:6: [check \"c\"] timeout: 7s must be shorter than [agent] interval (7s)" },
	{ "[agent]\ninterval = 5s\n[ping]\ntimeout = 1s\n[check \"c\"]\ntype = http\ntarget = http://h/\n", "t.conf:2: [check \"c\"] timeout: 5s must be shorter than [agent] interval (5s)" },
	{ "[agent]\ninterval = 10s\n[ping]\ntimeout = 2s\n[check \"c\"]\ntype = ping\ntarget = h\ncount = 5\n", "t.conf:8: [check \"c\"]: ping count * timeout (5 * 2s = 10s) must be shorter than [agent] interval (10s)" },
	/* [on_down] [on_up] */
	{ "[on_down]\nenable = a\ndisable = b, a\n", "t.conf:3: [on_down] disable: connector 'a' is in both enable and disable" },
	{ "[on_up]\ndisable = x\nenable = x\n", "t.conf:3: [on_up] enable: connector 'x' is in both enable and disable" },
	{ "[on_up]\nenable = a,,b\n", "t.conf:2: [on_up] enable: expected connector names separated by ',', got 'a,,b'" },
	{ "[on_up]\nenable = a b\n", "t.conf:2: [on_up] enable: expected connector names separated by ',', got 'a b'" },
	/* [transport] */
	{ "[transport]\ndatabase = transport.db\n", "t.conf:2: [transport] database: expected an absolute path, got 'transport.db'" },
	{ "[transport]\nunit = postfix\n", "t.conf:2: [transport] unit: expected a systemd unit name such as postfix.service, got 'postfix'" },
	{ "[transport]\naction = stop\n", "t.conf:2: [transport] action: expected restart, reload or none, got 'stop'" },
	{ "[transport]\nbus = session\n", "t.conf:2: [transport] bus: expected system or user, got 'session'" },
	{ "[transport]\nflush = postqueue -f\n", "t.conf:2: [transport] flush: expected an absolute program path and its arguments, or nothing, got 'postqueue -f'" },
	/* [metrics] */
	{ "[metrics]\ntextfile = rerouter.prom\n", "t.conf:2: [metrics] textfile: expected an absolute path or nothing, got 'rerouter.prom'" },
	/* [mail] */
	{ "[mail]\n", "t.conf:1: [mail] to: missing (where alerts go: one or more addresses)" },
	{ "[mail]\nto = a@b.org;;c@d.org\n", "t.conf:2: [mail] to: expected mail addresses separated by ',' or ';', got 'a@b.org;;c@d.org'" },
	{ "[mail]\nto = <a@b.org>\n", "t.conf:2: [mail] to: '<a@b.org>' is not a valid mail address (expected local@domain)" },
	{ "[mail]\nto = a@b.org\nfrom = rerouter\n", "t.conf:3: [mail] from: 'rerouter' is not a valid mail address (expected local@domain)" },
	{ "[mail]\nto = a@b.org\nserver = localhost:25\n", "t.conf:3: [mail] server: expected smtp://host[:port] or smtps://host[:port], got 'localhost:25'" },
	{ "[mail]\nto = a@b.org\nstarttls = yes\n", "t.conf:3: [mail] starttls: expected auto, always or never, got 'yes'" },
	{ "[mail]\nto = a@b.org\nusername = u\nstarttls = never\n", "t.conf:4: [mail] starttls: never would send the password of username in clear over smtp://; use auto, always or smtps://" },
	{ "[mail]\nto = a@b.org\npassword_file = relative\n", "t.conf:3: [mail] password_file: expected an absolute path or nothing, got 'relative'" },
	{ "[mail]\nto = a@b.org\nusername = u\npassword_file = /nonexistent/pw\n", "t.conf:4: [mail] password_file: cannot use /nonexistent/pw: No such file or directory" },
	{ "[mail]\nto = a@b.org\nusername = u\npassword_file = /\n", "t.conf:4: [mail] password_file: / is not a regular file" },
	{ "[mail]\nto = a@b.org\ntimeout = 0\n", "t.conf:3: [mail] timeout: expected a duration between 10ms and 1h, got '0'" },
	{ "[mail]\nto = a@b.org\nmin_gap = 25h\n", "t.conf:3: [mail] min_gap: expected a duration between 0s and 24h, got '25h'" },
	/* [hook] [maintenance] [log] */
	{ "[hook]\non_change = wan-changed\n", "t.conf:2: [hook] on_change: expected an absolute path or nothing, got 'wan-changed'" },
	{ "[hook]\ntimeout = 3601s\n", "t.conf:2: [hook] timeout: expected a duration between 10ms and 1h, got '3601s'" },
	{ "[maintenance \"m\"]\nstart = 22:00\nend = 02:00\n", "t.conf:1: [maintenance \"m\"] days: missing (such as mon-fri or sat,sun)" },
	{ "[maintenance \"m\"]\ndays = mon\nend = 02:00\n", "t.conf:1: [maintenance \"m\"] start: missing (HH:MM)" },
	{ "[maintenance \"m\"]\ndays = mon\nstart = 02:00\n", "t.conf:1: [maintenance \"m\"] end: missing (HH:MM)" },
	{ "[maintenance \"m\"]\ndays = monday\nstart = 22:00\nend = 02:00\n", "t.conf:2: [maintenance \"m\"] days: expected days mon..sun, ranges and lists such as mon-fri or sat,sun, got 'monday'" },
	{ "[maintenance \"m\"]\ndays = mon\nstart = 24:00\nend = 02:00\n", "t.conf:3: [maintenance \"m\"] start: expected a time HH:MM between 00:00 and 23:59, got '24:00'" },
	{ "[maintenance \"m\"]\ndays = mon\nstart = 22:00\nend = 2am\n", "t.conf:4: [maintenance \"m\"] end: expected a time HH:MM between 00:00 and 23:59, got '2am'" },
	{ "[maintenance \"m\"]\ndays = mon\nstart = 22:00\nend = 22:00\n", "t.conf:4: [maintenance \"m\"] end: start and end are both 22:00: a window needs a length" },
	{ "[maintenance \"m\"]\ndays = mon\nstart = 1:00\nend = 2:00\n[maintenance \"m\"]\n", "t.conf:5: [maintenance \"m\"]: duplicate maintenance name (first on line 1)" },
	{ "[log]\nverbose = maybe\n", "t.conf:2: [log] verbose: expected yes or no (also true/false, on/off, 1/0), got 'maybe'" },
};

START_TEST(test_one_error)
{
	char *text;
	ck_assert_int_ge(asprintf(&text, "%s%s", one_error[_i].text, BASE), 0);
	EXPECT(text, one_error[_i].msg);
	free(text);
}
END_TEST

START_TEST(test_errors_together)
{
	EXPECT("[agent]\n"
	       "interval = 2x\n"
	       "runs = 0\n"
	       "[check \"web\"]\n"
	       "type = http\n"
	       "target = gopher://h/\n" BASE,
	       "t.conf:2: [agent] interval: expected a duration such as 30s, 2m, 500ms, got '2x'",
	       "t.conf:3: [agent] runs: expected a whole number between 1 and 100, got '0'",
	       "t.conf:6: [check \"web\"] target: expected an http:// or https:// URL with a host, got 'gopher://h/'");
	/* Pass-1 and pass-2 errors come out sorted by line. */
	EXPECT("[check \"web\"]\n"
	       "type = http\n"
	       "[agent]\n"
	       "interval = 1m\n"
	       "bogus = 1\n" BASE,
	       "t.conf:1: [check \"web\"] target: missing",
	       "t.conf:5: [agent] unknown key 'bogus'");
}
END_TEST

START_TEST(test_cross_agent)
{
	EXPECT("[agent]\nruns = 3\nfailed_runs = 4\npassed_runs = 5\n" BASE,
	       "t.conf:3: [agent] failed_runs: 4 is more than runs (3)",
	       "t.conf:4: [agent] passed_runs: 5 is more than runs (3)");
	/* runs lowered, the others left at 2: the runs line is the wrong one. */
	EXPECT("[agent]\nruns = 1\n" BASE,
	       "t.conf:2: [agent] failed_runs: 2 is more than runs (1)",
	       "t.conf:2: [agent] passed_runs: 2 is more than runs (1)");
	EXPECT("[agent]\nfailed_checks = 3\n" BASE,
	       "t.conf:2: [agent] failed_checks: 3 is more than the number of link checks (2)");
	/* One link check and the default failed_checks = 2. */
	EXPECT("[agent]\ninterval = 1m\n[check \"a\"]\ntype = ping\ntarget = h\n",
	       "t.conf:1: [agent] failed_checks: 2 is more than the number of link checks (1)");
	EXPECT("[check \"a\"]\ntype = ping\ntarget = h\nrole = backup\n",
	       "t.conf:1: no link check: add a [check \"NAME\"] section with role = link");
	EXPECT("[log]\nverbose = no\n",
	       "t.conf:1: no link check: add a [check \"NAME\"] section with role = link");
	EXPECT("[mail]\nto = a@b.org\npassword_file =\nusername =\n" BASE "[mail]\n",
	       "t.conf:11: [mail]: section repeated (first on line 1)");
}
END_TEST

START_TEST(test_password_file)
{
	char pw[] = "/tmp/check_config_pwXXXXXX", *text, *want;
	int fd = mkstemp(pw);
	ck_assert_int_ge(fd, 0);
	close(fd);

	ck_assert_int_ge(asprintf(&text, "[mail]\nto = a@b.org\nusername = u\npassword_file = %s\n" BASE, pw), 0);
	/* Others never; the group may read (root:_rerouter 0640) but not write. */
	static const struct { mode_t mode; const char *what; } refused[] = {
		{ 0604, "open to others" }, { 0602, "open to others" }, { 0601, "open to others" },
		{ 0660, "writable by its group" }, { 0620, "writable by its group" },
		{ 0644, "open to others" }, { 0666, "open to others" },
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		ck_assert_int_eq(chmod(pw, refused[i].mode), 0);
		ck_assert_int_ge(asprintf(&want, "t.conf:4: [mail] password_file: %s is %s (mode %04o); "
					  "run chmod 640 %s (or 600)", pw, refused[i].what,
					  (unsigned)refused[i].mode, pw), 0);
		EXPECT(text, want);
		free(want);
	}
	static const mode_t accepted[] = { 0400, 0600, 0640, 0440 };
	struct cfg *c;
	for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
		ck_assert_int_eq(chmod(pw, accepted[i]), 0);
		c = load_ok(text);
		ck_assert_str_eq(c->mail.password_file, pw);
		ck_assert_str_eq(c->mail.username, "u");
		cfg_free(c);
	}
	free(text);

	/* A symbolic link, even to a good file, is refused. */
	char link[64];
	snprintf(link, sizeof link, "%s.link", pw);
	ck_assert_int_eq(symlink(pw, link), 0);
	ck_assert_int_ge(asprintf(&text, "[mail]\nto = a@b.org\nusername = u\npassword_file = %s\n" BASE, link), 0);
	ck_assert_int_ge(asprintf(&want, "t.conf:4: [mail] password_file: %s is a symbolic link; name the file itself",
				  link), 0);
	EXPECT(text, want);
	free(want);
	free(text);
	unlink(link);

	/* A password file needs a user name; a user name alone is fine. */
	ck_assert_int_ge(asprintf(&text, "[mail]\nto = a@b.org\npassword_file = %s\n" BASE, pw), 0);
	EXPECT(text, "t.conf:3: [mail] password_file: set without username");
	free(text);
	c = load_ok("[mail]\nto = a@b.org\nusername = u\n" BASE);
	ck_assert_ptr_null(c->mail.password_file);
	cfg_free(c);
	unlink(pw);
}
END_TEST

START_TEST(test_url_credentials)
{
	EXPECT("[mail]\nto = a@b.org\nserver = smtp://u:secret@relay.example.org:25\n" BASE,
	       "t.conf:3: [mail] server: credentials in the URL (user:password@) are not allowed, "
	       "they would reach logs; use username and password_file");
	EXPECT("[mail]\nto = a@b.org\nserver = smtps://user@relay.example.org\n" BASE,
	       "t.conf:3: [mail] server: credentials in the URL (user:password@) are not allowed, "
	       "they would reach logs; use username and password_file");
	EXPECT("[check \"web\"]\ntype = http\ntarget = https://admin:pw@www.example.org/x\n" BASE,
	       "t.conf:3: [check \"web\"] target: credentials in the URL (user:password@) are not allowed, "
	       "they would reach the journal and the alert mail");
	/* An '@' in the path or query is no credential. */
	struct cfg *c = load_ok("[check \"web\"]\ntype = http\ntarget = https://www.example.org/a@b?c=@d\n" BASE);
	ck_assert_str_eq(c->checks[0].target, "https://www.example.org/a@b?c=@d");
	cfg_free(c);
	ck_assert(cfg_url_has_userinfo("http://u@h/"));
	ck_assert(!cfg_url_has_userinfo("http://h/@"));
	ck_assert(!cfg_url_has_userinfo("http://h?@"));
	ck_assert(!cfg_url_has_userinfo("no-scheme@h"));
}
END_TEST

START_TEST(test_control_chars)
{
	EXPECT("[on_down]\ndisable = site-a\033[2J\n" BASE,
	       "t.conf:2: [on_down] disable: contains a control character (0x1b at byte 7)");
	EXPECT("[on_up]\nenable = a,\001b\n" BASE,
	       "t.conf:2: [on_up] enable: contains a control character (0x01 at byte 3)");
	EXPECT("[transport]\nunit = postfix\x7f.service\n" BASE,
	       "t.conf:2: [transport] unit: contains a control character (0x7f at byte 8)");
	EXPECT("[transport]\nunit = post fix.service\n" BASE,
	       "t.conf:2: [transport] unit: expected a systemd unit name such as postfix.service, got 'post fix.service'");
	EXPECT("[transport]\nunit = postfix;x.service\n" BASE,
	       "t.conf:2: [transport] unit: expected a systemd unit name such as postfix.service, got 'postfix;x.service'");
	EXPECT("[transport]\nflush = /usr/sbin/postqueue\033 -f\n" BASE,
	       "t.conf:2: [transport] flush: contains a control character (0x1b at byte 20)");
	EXPECT("[hook]\non_change = /usr/local/sbin/wan\010changed\n" BASE,
	       "t.conf:2: [hook] on_change: contains a control character (0x08 at byte 20)");
	EXPECT("[mail]\nto = a@b.org\nusername = u\r\001\n" BASE,
	       "t.conf:3: [mail] username: contains a control character (0x0d at byte 2)");
	EXPECT("[check \"a\033]0;x\a\"]\ntype = ping\ntarget = 192.0.2.9\n" BASE,
	       "t.conf:1: [check]: the name contains a control character");
	/* Quoted in any other message, a control character is shown as '?'. */
	EXPECT("[agent]\ninterval = 2\033m\n" BASE,
	       "t.conf:2: [agent] interval: expected a duration such as 30s, 2m, 500ms, got '2?m'");
	/* systemd's alphabet is accepted whole. */
	struct cfg *c = load_ok("[transport]\nunit = postfix@-.service\n" BASE);
	ck_assert_str_eq(c->transport.unit, "postfix@-.service");
	cfg_free(c);
	c = load_ok("[transport]\nunit = smtp\\x2dsite_b:1.service\n" BASE);
	cfg_free(c);
}
END_TEST

START_TEST(test_tls_options)
{
	char ca[] = "/tmp/check_config_caXXXXXX", *text;
	int fd = mkstemp(ca);
	ck_assert_int_ge(fd, 0);
	close(fd);

	struct cfg *c = load_ok("[check \"web\"]\ntype = http\ntarget = https://h.example.org/\n" BASE);
	ck_assert(!c->checks[0].tls_no_verify);
	ck_assert_ptr_null(c->checks[0].ca_file);
	cfg_free(c);
	c = load_ok("[check \"r\"]\ntype = smtp\ntarget = relay.example.org:25\ntls_verify = no\n" BASE);
	ck_assert(c->checks[0].tls_no_verify);
	cfg_free(c);
	ck_assert_int_ge(asprintf(&text, "[check \"r\"]\ntype = smtp\ntarget = relay.example.org:25\n"
				  "tls_verify = yes\nca_file = %s\n" BASE, ca), 0);
	c = load_ok(text);
	ck_assert(!c->checks[0].tls_no_verify);
	ck_assert_str_eq(c->checks[0].ca_file, ca);
	cfg_free(c);
	free(text);

	ck_assert_int_ge(asprintf(&text, "[check \"w\"]\ntype = http\ntarget = https://h.example.org/\n"
				  "ca_file = %s\ntls_verify = no\n" BASE, ca), 0);
	EXPECT(text, "t.conf:5: [check \"w\"] tls_verify: ca_file is set but tls_verify = no: "
		     "nothing would check the certificate");
	free(text);
	EXPECT("[check \"w\"]\ntype = http\ntarget = https://h.example.org/\nca_file = /nonexistent/ca.pem\n" BASE,
	       "t.conf:4: [check \"w\"] ca_file: cannot use /nonexistent/ca.pem: No such file or directory");
	EXPECT("[check \"w\"]\ntype = http\ntarget = https://h.example.org/\nca_file = /\n" BASE,
	       "t.conf:4: [check \"w\"] ca_file: / is not a regular file");
	EXPECT("[check \"w\"]\ntype = http\ntarget = https://h.example.org/\nca_file = ca.pem\n" BASE,
	       "t.conf:4: [check \"w\"] ca_file: expected an absolute path or nothing, got 'ca.pem'");
	EXPECT("[check \"w\"]\ntype = http\ntarget = https://h.example.org/\ntls_verify = maybe\n" BASE,
	       "t.conf:4: [check \"w\"] tls_verify: expected yes or no (also true/false, on/off, 1/0), got 'maybe'");
	EXPECT("[check \"p\"]\ntype = ping\ntarget = 192.0.2.9\ntls_verify = no\n" BASE,
	       "t.conf:4: [check \"p\"] tls_verify: applies only to http and smtp checks, not ping");
	EXPECT("[check \"t\"]\ntype = tcp\ntarget = 192.0.2.9:25\nca_file = /etc/hosts\n" BASE,
	       "t.conf:4: [check \"t\"] ca_file: applies only to http and smtp checks, not tcp");
	unlink(ca);
}
END_TEST

/* --instance NAME: what the daemon's writes carry, and the names refused. */
START_TEST(test_instance_name)
{
	char buf[160], long_name[CFG_INSTANCE_NAME_MAX + 2];

	ck_assert_int_eq(cfg_instance_changed_by(NULL, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, "rerouterd");
	ck_assert_int_eq(cfg_instance_changed_by("site2", buf, sizeof buf), 0);
	ck_assert_str_eq(buf, "rerouterd@site2");
	ck_assert_int_eq(cfg_instance_changed_by("a-b_c.D9", buf, sizeof buf), 0);
	ck_assert_str_eq(buf, "rerouterd@a-b_c.D9");
	memset(long_name, 'x', CFG_INSTANCE_NAME_MAX);
	long_name[CFG_INSTANCE_NAME_MAX] = '\0';
	ck_assert_int_eq(cfg_instance_changed_by(long_name, buf, sizeof buf), 0);
	long_name[CFG_INSTANCE_NAME_MAX] = 'x';
	long_name[CFG_INSTANCE_NAME_MAX + 1] = '\0';
	ck_assert_int_eq(cfg_instance_changed_by(long_name, buf, sizeof buf), -EINVAL);
	ck_assert_str_eq(buf, "instance name must have 1 to 64 characters, got 65");
	ck_assert_int_eq(cfg_instance_changed_by("", buf, sizeof buf), -EINVAL);
	ck_assert_str_eq(buf, "instance name must have 1 to 64 characters, got 0");
	ck_assert_int_eq(cfg_instance_changed_by("../etc", buf, sizeof buf), -EINVAL);
	ck_assert_str_eq(buf, "instance name may only have A-Z a-z 0-9 _ . -, got '/' at position 3");
	ck_assert_int_eq(cfg_instance_changed_by("a b", buf, sizeof buf), -EINVAL);
	ck_assert_str_eq(buf, "instance name may only have A-Z a-z 0-9 _ . -, got byte 0x20 at position 2");
	ck_assert_int_eq(cfg_instance_changed_by("a\x1b[2J", buf, sizeof buf), -EINVAL);
	ck_assert_str_eq(buf, "instance name may only have A-Z a-z 0-9 _ . -, got byte 0x1b at position 2");
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("readers");
	tcase_add_test(tc, test_duration);
	tcase_add_test(tc, test_bool);
	tcase_add_test(tc, test_hostport);
	tcase_add_test(tc, test_host);
	tcase_add_test(tc, test_mark);
	tcase_add_test(tc, test_uint);
	tcase_add_test(tc, test_source);
	tcase_add_test(tc, test_url);
	tcase_add_test(tc, test_expect);
	tcase_add_test(tc, test_days);
	tcase_add_test(tc, test_time);
	tcase_add_test(tc, test_lists);
	tcase_add_test(tc, test_address);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_instance_name);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_every_key);
	tcase_add_test(tc, test_sample);
	tcase_add_test(tc, test_syntax_forms);
	tcase_add_test(tc, test_limits_ok);
	tcase_add_test(tc, test_fast_interval);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_loop_test(tc, test_one_error, 0, (int)(sizeof(one_error) / sizeof(one_error[0])));
	tcase_add_test(tc, test_errors_together);
	tcase_add_test(tc, test_cross_agent);
	tcase_add_test(tc, test_password_file);
	tcase_add_test(tc, test_url_credentials);
	tcase_add_test(tc, test_control_chars);
	tcase_add_test(tc, test_tls_options);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
