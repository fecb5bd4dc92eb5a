/* Alert mail without a network: the message format, the body drawn from a
 * change and its steps, idempotent queueing, merging under min_gap and the
 * retry schedule, all against a real SQLite state database with a fake clock;
 * and real transfers to a minimal SMTP responder (loopback 127.0.4.1, the
 * alerts area's address): one whose outcome the database refuses to record,
 * one the server is slow to accept while the loop must keep running, and one
 * abandoned in flight. */
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

#include "actions/alert.h"
#include "actions/mail.h"
#include "agent/change.h"
#include "agent/schema.h"
#include "agent/worker.h"

#define SEC USEC_PER_SEC
#define T0 (1795000000ULL * SEC) /* a fixed wall time, in 2026 */

static uint64_t fake_now;
static uint64_t fake_clock(void *ud)
{
	(void)ud;
	return fake_now;
}

static sqlite3 *db;
static sd_event *ev;
static struct alerts *al;
static struct cfg cfg;
static char *to_v[] = { "admin@example.org", "noc@example.org", NULL };

static void setup(void)
{
	ck_assert_int_eq(sqlite3_open(":memory:", &db), SQLITE_OK);
	ck_assert_int_eq(schema_state_prepare(db, ":memory:"), 0);
	ck_assert_int_ge(sd_event_new(&ev), 0);
	memset(&cfg, 0, sizeof cfg);
	cfg.path = "test.conf";
	cfg.mail.present = true;
	cfg.mail.to.v = to_v;
	cfg.mail.to.n = 2;
	cfg.mail.from = "rerouter@hub1.example.org";
	cfg.mail.server = "smtp://127.0.0.1:1"; /* never reached: the loop does not run */
	cfg.mail.timeout_usec = 30 * SEC;
	cfg.mail.min_gap_usec = 300 * SEC;
	ck_assert_int_eq(alerts_new(ev, db, &cfg, &al), 0);
	fake_now = T0;
	alerts_set_clock(al, fake_clock, NULL);
}

static void teardown(void)
{
	al = alerts_free(al);
	ev = sd_event_unref(ev);
	sqlite3_close(db);
}

static int64_t add_change(const char *new_state, const char *old_state, bool no_backup)
{
	sqlite3_stmt *st;
	static const char *const steps[][3] = {
		{ "connectors", "done", "site-a-internet disabled, site-b-relay enabled" },
		{ "transport", "done", "restart postfix.service: done" },
		{ "hook", "failed", "exit status 3" },
		{ "mail", "pending", "queued" },
	};

	ck_assert_int_eq(sqlite3_prepare_v2(db,
			"INSERT INTO changes (at, at_usec, new_state, old_state, prev_since_usec, "
			"no_backup, runs_text) VALUES ('2026-11-19T12:00:00Z', ?, ?, ?, ?, ?, ?)",
			-1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)fake_now);
	sqlite3_bind_text(st, 2, new_state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, old_state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)(fake_now - 3723 * SEC));
	sqlite3_bind_int(st, 5, no_backup);
	sqlite3_bind_text(st, 6, "run 1: FAILED\n  isp-gateway ping 198.51.100.1 fail 2003 ms\n",
			  -1, SQLITE_STATIC);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	int64_t id = sqlite3_last_insert_rowid(db);
	ck_assert_int_eq(sqlite3_prepare_v2(db,
			"INSERT INTO change_steps (change_id, step, seq, status, detail) "
			"VALUES (?, ?, ?, ?, ?)", -1, &st, NULL), SQLITE_OK);
	for (int i = 0; i < 4; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, steps[i][0], -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, i == 3 ? STEP_MAIL : i);
		sqlite3_bind_text(st, 4, steps[i][1], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, steps[i][2], -1, SQLITE_STATIC);
		ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
	}
	sqlite3_finalize(st);
	return id;
}

static int rows(const char *sql)
{
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	int n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

START_TEST(test_compose_headers)
{
	char *m = NULL, *m2 = NULL;
	struct cfg_list to = { to_v, 2 };

	ck_assert_int_eq(mail_compose("hub1", "rerouter@hub1.example.org", &to,
				      "[rerouter] hub1: internet\r\nBcc: evil@x DOWN",
				      "line one\n.dotted\nünïcode\r\nlast", T0, &m), 0);
	ck_assert_int_eq(mail_compose("hub1", "f@x", &to, "s", "b", T0, &m2), 0);

	/* Every line ends in CRLF, no bare CR or LF anywhere. */
	for (const char *p = m; *p; p++) {
		if (*p == '\n')
			ck_assert(p > m && p[-1] == '\r');
		if (*p == '\r')
			ck_assert(p[1] == '\n');
	}
	size_t len = strlen(m);
	ck_assert(len > 2 && !strcmp(m + len - 2, "\r\n"));

	char *hdr_end = strstr(m, "\r\n\r\n");
	ck_assert_ptr_nonnull(hdr_end);
	*hdr_end = '\0';
	ck_assert(!strncmp(m, "Date: ", 6));
	char wd[4], mon[4], zone[6];
	int day, year, hh, mm, ss;
	ck_assert_int_eq(sscanf(m + 6, "%3s, %d %3s %d %d:%d:%d %5s", wd, &day, mon, &year, &hh,
				&mm, &ss, zone), 8);
	ck_assert(strstr("MonTueWedThuFriSatSun", wd));
	ck_assert(strstr("JanFebMarAprMayJunJulAugSepOctNovDec", mon));
	ck_assert(year == 2026 && (zone[0] == '+' || zone[0] == '-'));
	ck_assert_ptr_nonnull(strstr(m, "\r\nMessage-ID: <"));
	ck_assert_ptr_nonnull(strstr(m, "@hub1>\r\n"));
	ck_assert_ptr_nonnull(strstr(m, "\r\nFrom: rerouter@hub1.example.org\r\n"));
	ck_assert_ptr_nonnull(strstr(m, "\r\nTo: admin@example.org,\r\n noc@example.org\r\n"));
	/* A CR/LF in a header value cannot start a header of its own. */
	ck_assert_ptr_nonnull(strstr(m, "\r\nSubject: [rerouter] hub1: internet  Bcc: evil@x DOWN\r\n"));
	ck_assert_ptr_null(strstr(m, "\r\nBcc:"));
	ck_assert_ptr_nonnull(strstr(m, "\r\nMIME-Version: 1.0\r\n"));
	ck_assert_ptr_nonnull(strstr(m, "\r\nContent-Type: text/plain; charset=UTF-8\r\n"));
	ck_assert_ptr_nonnull(strstr(m, "\r\nContent-Transfer-Encoding: 8bit"));
	/* The body as given, dots untouched (curl stuffs them on the wire). */
	ck_assert_str_eq(hdr_end + 4, "line one\r\n.dotted\r\nünïcode\r\nlast\r\n");

	/* Message-IDs are unique. */
	char *id1 = strstr(m, "Message-ID: "), *id2 = strstr(m2, "Message-ID: ");
	ck_assert(strncmp(id1, id2, strcspn(id1, "\r")) != 0);
	free(m);
	free(m2);
}
END_TEST

START_TEST(test_envelope)
{
	struct mail_xfer *x = NULL;
	char err[256];
	char *v[] = { "Admin Team <admin@example.org>", "noc@example.org", NULL };

	cfg.mail.to.v = v;
	cfg.mail.from = "rerouter <rerouter@hub1.example.org>";
	ck_assert_int_eq(mail_xfer_new(&cfg, strdup("x\r\n"), &x, err, sizeof err), 0);
	ck_assert_str_eq(x->rcpt->data, "<admin@example.org>");
	ck_assert_str_eq(x->rcpt->next->data, "<noc@example.org>");
	x = mail_xfer_free(x);

	/* An unreadable password file is a clear error before any connection. */
	cfg.mail.username = "alice";
	cfg.mail.password_file = "/nonexistent/pw";
	ck_assert_int_eq(mail_xfer_new(&cfg, strdup("x\r\n"), &x, err, sizeof err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "password_file /nonexistent/pw"));
	cfg.mail.to.v = to_v;
}
END_TEST

START_TEST(test_change_body)
{
	char *state = NULL, *body = NULL;
	int64_t id = add_change("down", "up", false);

	ck_assert_int_eq(alerts_compose_change(db, id, &state, &body), 0);
	ck_assert_str_eq(state, "down");
	ck_assert_ptr_nonnull(strstr(body, " is DOWN.\n"));
	ck_assert_ptr_nonnull(strstr(body, "Time:      "));
	ck_assert_ptr_nonnull(strstr(body, "(2026-11-19T12:00:00Z)"));
	ck_assert_ptr_nonnull(strstr(body, "Previous:  UP for 1h 2m (since "));
	ck_assert_ptr_nonnull(strstr(body, "Deciding runs:\nrun 1: FAILED\n  isp-gateway ping 198.51.100.1 fail 2003 ms\n"));
	ck_assert_ptr_nonnull(strstr(body, "\n  connectors  done: site-a-internet disabled, site-b-relay enabled\n"));
	ck_assert_ptr_nonnull(strstr(body, "\n  transport   done: restart postfix.service: done\n"));
	ck_assert_ptr_nonnull(strstr(body, "\n  hook        failed: exit status 3\n"));
	ck_assert_ptr_null(strstr(body, "  mail "));
	ck_assert_ptr_null(strstr(body, "No backup path"));
	free(state);
	free(body);

	id = add_change("down", "up", true);
	ck_assert_int_eq(alerts_compose_change(db, id, &state, &body), 0);
	ck_assert_ptr_nonnull(strstr(body, "\nNo backup path answered: nothing was rewired.\n"));
	free(state);
	free(body);

	ck_assert_int_eq(alerts_compose_change(db, 999, &state, &body), -ENOENT);
}
END_TEST

START_TEST(test_enqueue_idempotent)
{
	int64_t id = add_change("down", "up", false);
	char *s = NULL, *b = NULL;
	size_t n;
	int64_t upto;

	ck_assert_int_eq(alerts_count_pending(db), 0);
	ck_assert_int_eq(alerts_enqueue_change(al, id), 0);
	ck_assert_int_eq(alerts_enqueue_change(al, id), 0);
	ck_assert_int_eq(alerts_count_pending(db), 1);
	ck_assert_int_eq(alerts_peek(al, &s, &b, &n, &upto), 0);
	ck_assert_int_eq(n, 1);
	ck_assert(!strncmp(s, "[rerouter] ", 11));
	free(s);
	free(b);
}
END_TEST

START_TEST(test_enqueue_idempotent_after_send)
{
	int64_t id = add_change("down", "up", false);
	char *s = NULL, *b = NULL;
	size_t n;
	int64_t upto;
	char expect[300];

	ck_assert_int_eq(alerts_enqueue_change(al, id), 0);
	ck_assert_int_eq(alerts_peek(al, &s, &b, &n, &upto), 0);
	snprintf(expect, sizeof expect, "[rerouter] %s: internet connection DOWN", mail_hostname());
	ck_assert_str_eq(s, expect);
	ck_assert_ptr_null(strstr(b, "==== Change"));
	ck_assert_ptr_nonnull(strstr(b, " is DOWN.\n"));
	free(s);
	free(b);
	ck_assert_int_eq(alerts_record_attempt(al, upto, true, "250 2.0.0 Ok: queued"), 0);
	ck_assert_int_eq(alerts_count_pending(db), 0);
	/* Repeated after a crash: nothing new is queued, nothing sent twice. */
	ck_assert_int_eq(alerts_enqueue_change(al, id), 0);
	ck_assert_int_eq(alerts_count_pending(db), 0);
	ck_assert_int_eq(rows("SELECT COUNT(*) FROM alerts"), 1);
	ck_assert_int_eq(rows("SELECT COUNT(*) FROM alerts WHERE reply = '250 2.0.0 Ok: queued'"), 1);
	/* History shows what became of the mail. */
	ck_assert_int_eq(rows("SELECT COUNT(*) FROM change_steps WHERE step = 'mail' AND "
			      "status = 'pending' AND detail LIKE 'sent %: 250 2.0.0 Ok: queued'"), 1);
}
END_TEST

/* SPEC section 2: the backup gate opening later is mailed as a note on the
 * same change, through the same queue (min_gap, records), exactly once. */
START_TEST(test_note_once)
{
	static char *en[] = { "site-b", NULL }, *dis[] = { "site-a", NULL };
	char *s = NULL, *b = NULL, expect[300];
	size_t n;
	int64_t upto;
	uint64_t due;

	cfg.on_down = (struct cfg_toggle){ .present = true, .enable = { en, 1 }, .disable = { dis, 1 } };
	int64_t id = add_change("down", "up", true);
	ck_assert_int_eq(alerts_enqueue_change(al, id), 0);
	ck_assert_int_eq(alerts_peek(al, &s, &b, &n, &upto), 0);
	free(s), free(b);
	ck_assert_int_eq(alerts_record_attempt(al, upto, true, "250 the change"), 0);

	fake_now = T0 + 60 * SEC;
	ck_assert_int_eq(alerts_enqueue_note(al, id, "enabled site-b, disabled site-a"), 0);
	ck_assert_int_eq(alerts_count_pending(db), 1);
	/* min_gap after the change's mail, as for any alert. */
	ck_assert_int_eq(alerts_next_due(al, &due), 0);
	ck_assert_uint_eq(due, T0 + 300 * SEC);
	ck_assert_int_eq(alerts_peek(al, &s, &b, &n, &upto), 0);
	ck_assert_int_eq(n, 1);
	snprintf(expect, sizeof expect, "[rerouter] %s: backup path answers, mail now rerouted", mail_hostname());
	ck_assert_str_eq(s, expect);
	ck_assert_ptr_nonnull(strstr(b, "outbound mail is now rerouted by [on_down]"));
	ck_assert_ptr_nonnull(strstr(b, "\nChange:      DOWN at "));
	ck_assert_ptr_nonnull(strstr(b, " (2026-11-19T12:00:00Z);\n             no backup path answered then"));
	ck_assert_ptr_nonnull(strstr(b, "[on_down]:   enable site-b; disable site-a\n"));
	ck_assert_ptr_nonnull(strstr(b, "Connectors:  enabled site-b, disabled site-a\n"));
	/* The routes now are added when the mail leaves (tests/ops), not queued. */
	ck_assert_ptr_null(strstr(b, "Routes now ("));
	ck_assert_ptr_null(strstr(b, "==== "));
	free(s), free(b);
	ck_assert_int_eq(alerts_record_attempt(al, upto, true, "250 the note"), 0);
	/* Judged open again (a restart): nothing new. */
	ck_assert_int_eq(alerts_enqueue_note(al, id, "already set"), 0);
	ck_assert_int_eq(alerts_count_pending(db), 0);
	ck_assert_int_eq(rows("SELECT COUNT(*) FROM alerts WHERE kind = 'note'"), 1);
	/* The change's mail step keeps what became of the change's own mail. */
	ck_assert_int_eq(rows("SELECT COUNT(*) FROM change_steps WHERE step = 'mail' AND detail LIKE "
			      "'sent %: 250 the change'"), 1);

	/* A change and its note both pending: one mail, the change first. */
	fake_now = T0 + 400 * SEC;
	int64_t id2 = add_change("down", "up", true);
	ck_assert_int_eq(alerts_enqueue_note(al, id2, "already set"), 0);
	ck_assert_int_eq(alerts_enqueue_change(al, id2), 0);
	ck_assert_int_eq(alerts_peek(al, &s, &b, &n, &upto), 0);
	ck_assert_int_eq(n, 2);
	snprintf(expect, sizeof expect, "[rerouter] %s: internet connection DOWN (and 1 note)", mail_hostname());
	ck_assert_str_eq(s, expect);
	char *c1 = strstr(b, "==== Change 1 ====\n\nThe internet connection of");
	char *n2 = strstr(b, "==== Note 2 ====\n\nA backup path of");
	ck_assert_ptr_nonnull(c1);
	ck_assert_ptr_nonnull(n2);
	ck_assert(c1 < n2);
	free(s), free(b);
}
END_TEST

START_TEST(test_merge_min_gap)
{
	char *s = NULL, *b = NULL, expect[300];
	size_t n;
	int64_t upto;
	uint64_t due;

	/* The first change after a quiet time goes at once. */
	ck_assert_int_eq(alerts_next_due(al, &due), 0);
	ck_assert_uint_eq(due, UINT64_MAX);
	ck_assert_int_eq(alerts_enqueue_change(al, add_change("down", "up", false)), 0);
	ck_assert_int_eq(alerts_next_due(al, &due), 0);
	ck_assert_uint_eq(due, T0);
	ck_assert_int_eq(alerts_peek(al, &s, &b, &n, &upto), 0);
	free(s), free(b);
	ck_assert_int_eq(alerts_record_attempt(al, upto, true, "250 ok"), 0);

	/* Three more within min_gap: they wait for it and go as one mail. */
	const char *seq[] = { "up", "down", "up" };
	for (int i = 0; i < 3; i++) {
		fake_now = T0 + (uint64_t)(i + 1) * 10 * SEC;
		ck_assert_int_eq(alerts_enqueue_change(al, add_change(seq[i], i % 2 ? "up" : "down", false)), 0);
		ck_assert_int_eq(alerts_next_due(al, &due), 0);
		ck_assert_uint_eq(due, T0 + 300 * SEC);
	}
	fake_now = T0 + 300 * SEC;
	ck_assert_int_eq(alerts_peek(al, &s, &b, &n, &upto), 0);
	ck_assert_int_eq(n, 3);
	snprintf(expect, sizeof expect,
		 "[rerouter] %s: internet connection UP (3 changes: up, down, up)", mail_hostname());
	ck_assert_str_eq(s, expect);
	ck_assert_ptr_nonnull(strstr(b, "changed state 3 times"));
	ck_assert_ptr_nonnull(strstr(b, "it is now UP."));
	ck_assert_ptr_nonnull(strstr(b, "==== Change 1 ====\n\nThe internet connection of"));
	ck_assert_ptr_nonnull(strstr(b, "==== Change 3 ===="));
	ck_assert_ptr_null(strstr(b, "==== Change 4 ===="));
	free(s), free(b);

	/* A change while that mail is in flight is not part of it. */
	fake_now += 1 * SEC;
	ck_assert_int_eq(alerts_enqueue_change(al, add_change("down", "up", false)), 0);
	ck_assert_int_eq(alerts_record_attempt(al, upto, true, "250 ok"), 0);
	ck_assert_int_eq(alerts_count_pending(db), 1);
	ck_assert_int_eq(rows("SELECT COUNT(DISTINCT sent_usec) FROM alerts WHERE sent_usec IS NOT NULL"), 2);
	/* ... and waits min_gap after the mail that just went. */
	ck_assert_int_eq(alerts_next_due(al, &due), 0);
	ck_assert_uint_eq(due, fake_now + 300 * SEC);
}
END_TEST

/* SPEC section 4: the first state's mail (a change from unknown) does not
 * start min_gap, so a real change right after a start is not held back. */
START_TEST(test_first_state_starts_no_gap)
{
	char *s = NULL, *b = NULL;
	size_t n;
	int64_t upto;
	uint64_t due;

	ck_assert_int_eq(alerts_enqueue_change(al, add_change("up", "unknown", false)), 0);
	ck_assert_int_eq(alerts_peek(al, &s, &b, &n, &upto), 0);
	free(s), free(b);
	ck_assert_int_eq(alerts_record_attempt(al, upto, true, "250 ok"), 0);
	fake_now = T0 + 10 * SEC;
	ck_assert_int_eq(alerts_enqueue_change(al, add_change("down", "up", false)), 0);
	ck_assert_int_eq(alerts_next_due(al, &due), 0);
	ck_assert_uint_eq(due, T0 + 10 * SEC); /* at once */
	ck_assert_int_eq(alerts_peek(al, &s, &b, &n, &upto), 0);
	free(s), free(b);
	ck_assert_int_eq(alerts_record_attempt(al, upto, true, "250 ok"), 0);
	/* That one was a real change: the next waits for min_gap. */
	fake_now = T0 + 20 * SEC;
	ck_assert_int_eq(alerts_enqueue_change(al, add_change("up", "down", false)), 0);
	ck_assert_int_eq(alerts_next_due(al, &due), 0);
	ck_assert_uint_eq(due, T0 + 10 * SEC + 300 * SEC);
}
END_TEST

START_TEST(test_backoff_schedule)
{
	static const uint64_t expect[] = { 30, 60, 120, 240, 480, 900, 900, 900 };
	char *s = NULL, *b = NULL;
	size_t n;
	int64_t upto;
	uint64_t due;

	for (unsigned i = 0; i < sizeof expect / sizeof expect[0]; i++)
		ck_assert_uint_eq(alerts_backoff_usec(al, i + 1), expect[i] * SEC);
	ck_assert_uint_eq(alerts_backoff_usec(al, 1000), 900 * SEC);

	ck_assert_int_eq(alerts_enqueue_change(al, add_change("down", "up", false)), 0);
	unsigned attempts = 0;
	/* Fail at every due time for a little over a day. */
	while (fake_now < T0 + ALERTS_DEADLINE_USEC + 900 * SEC) {
		ck_assert_int_eq(alerts_next_due(al, &due), 0);
		if (attempts < sizeof expect / sizeof expect[0] && attempts > 0)
			ck_assert_uint_eq(due - fake_now, expect[attempts - 1] * SEC);
		fake_now = due;
		ck_assert_int_eq(alerts_peek(al, &s, &b, &n, &upto), 0);
		ck_assert_int_eq(n, 1);
		free(s), free(b);
		ck_assert_int_eq(alerts_record_attempt(al, upto, false, "Failed to connect"), 0);
		attempts++;
		ck_assert_int_eq(rows("SELECT expired FROM alerts"),
				 fake_now >= T0 + ALERTS_DEADLINE_USEC);
	}
	/* Still pending and visible, never dropped; about 100 attempts a day. */
	ck_assert_int_eq(alerts_count_pending(db), 1);
	ck_assert_uint_ge(attempts, 95);
	ck_assert_uint_le(attempts, 105);
	ck_assert_int_eq(rows("SELECT attempts FROM alerts"), (int)attempts);

	/* A new change is sent with it at once, not after the 15 min wait. */
	fake_now += 10 * SEC;
	ck_assert_int_eq(alerts_enqueue_change(al, add_change("up", "down", false)), 0);
	ck_assert_int_eq(alerts_next_due(al, &due), 0);
	ck_assert_uint_eq(due, fake_now);
	ck_assert_int_eq(alerts_peek(al, &s, &b, &n, &upto), 0);
	ck_assert_int_eq(n, 2);
	free(s), free(b);
	ck_assert_int_eq(alerts_record_attempt(al, upto, true, "250 ok"), 0);
	ck_assert_int_eq(alerts_count_pending(db), 0);
}
END_TEST

START_TEST(test_clock_step_back)
{
	uint64_t due;

	ck_assert_int_eq(alerts_enqueue_change(al, add_change("down", "up", false)), 0);
	/* The wall clock steps back a day: the wait stays bounded. */
	fake_now = T0 - 86400 * SEC;
	ck_assert_int_eq(alerts_next_due(al, &due), 0);
	ck_assert_uint_le(due, fake_now + 900 * SEC);
}
END_TEST

START_TEST(test_no_mail_section)
{
	cfg.mail.present = false;
	ck_assert_int_eq(alerts_enqueue_change(al, add_change("down", "up", false)), 0);
	ck_assert_int_eq(alerts_count_pending(db), 0);
}
END_TEST

START_TEST(test_count_without_table)
{
	sqlite3 *fresh;

	ck_assert_int_eq(sqlite3_open(":memory:", &fresh), SQLITE_OK);
	ck_assert_int_eq(alerts_count_pending(fresh), 0);
	sqlite3_close(fresh);
}
END_TEST

/* --- a minimal SMTP responder: counts the mails begun and accepted ---
 * In a thread of its own, because libcurl (7.88) waits for the reply to the
 * end of the data in a blocking call (on the transfer's own thread). */

struct sink {
	int fd;
	atomic_int conn_fd;      /* the connection being served, or -1 */
	pthread_t thread;
	atomic_int started, accepted; /* MAIL FROM commands; mails accepted */
	atomic_int dot_seen;     /* ends of DATA received */
	unsigned dot_delay_ms;   /* how long the reply to "." is held back */
	char url[64];
};

static bool say(int fd, const char *line)
{
	return write(fd, line, strlen(line)) == (ssize_t)strlen(line);
}

static void sink_serve(struct sink *k, int fd)
{
	char buf[4096], line[sizeof buf];
	size_t len = 0;
	bool data = false;
	char *eol;
	ssize_t n;

	if (!say(fd, "220 sink ESMTP\r\n"))
		return;
	while ((n = read(fd, buf + len, sizeof buf - len - 1)) > 0) {
		len += (size_t)n;
		while ((eol = memchr(buf, '\n', len))) {
			size_t l = (size_t)(eol - buf) + 1;
			memcpy(line, buf, l);
			line[l] = '\0';
			memmove(buf, buf + l, len - l);
			len -= l;
			const char *reply = NULL;
			if (data) {
				if (!strcmp(line, ".\r\n")) {
					data = false;
					k->dot_seen++;
					/* A slow server: busy queueing, or stalled. */
					if (k->dot_delay_ms)
						usleep(k->dot_delay_ms * 1000);
					k->accepted++;
					reply = "250 2.0.0 Ok: queued as SINK1\r\n";
				}
			} else if (!strncasecmp(line, "EHLO", 4) || !strncasecmp(line, "HELO", 4)) {
				reply = "250 sink\r\n";
			} else if (!strncasecmp(line, "MAIL", 4)) {
				k->started++;
				reply = "250 ok\r\n";
			} else if (!strncasecmp(line, "DATA", 4)) {
				data = true;
				reply = "354 go ahead\r\n";
			} else if (!strncasecmp(line, "QUIT", 4)) {
				say(fd, "221 bye\r\n");
				return;
			} else {
				reply = "250 ok\r\n";
			}
			if (reply && !say(fd, reply))
				return;
		}
		if (len == sizeof buf - 1)
			len = 0; /* an overlong line: not ours to judge */
	}
}

static void *sink_main(void *userdata)
{
	struct sink *k = userdata;
	int fd;

	/* One connection at a time is enough: the queue sends one mail at a
	 * time, and curl keeps reusing one connection. */
	while ((fd = accept4(k->fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		k->conn_fd = fd;
		sink_serve(k, fd);
		k->conn_fd = -1;
		close(fd);
	}
	return NULL;
}

static void sink_start(struct sink *k)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };

	memset(k, 0, sizeof *k);
	k->conn_fd = -1;
	k->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(k->fd, 0);
	inet_pton(AF_INET, "127.0.4.1", &sa.sin_addr);
	/* A free port of the alerts area's range (tests may run side by side). */
	for (int i = 0; i < 1000; i++) {
		int port = 27000 + (getpid() + i) % 1000;
		sa.sin_port = htons((uint16_t)port);
		if (bind(k->fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
			snprintf(k->url, sizeof k->url, "smtp://127.0.4.1:%d", port);
			break;
		}
	}
	ck_assert(k->url[0]);
	ck_assert_int_eq(listen(k->fd, 8), 0);
	ck_assert_int_eq(pthread_create(&k->thread, NULL, sink_main, k), 0);
}

static void sink_stop(struct sink *k)
{
	/* Wakes the blocked accept() or read(), which then fail or end. */
	shutdown(k->fd, SHUT_RDWR);
	int fd = k->conn_fd;
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	pthread_join(k->thread, NULL);
	close(k->fd);
}

/* Runs the loop until the condition holds; false after the deadline. */
#define RUN_UNTIL(cond, seconds)                                                       \
	({                                                                             \
		uint64_t _end;                                                         \
		sd_event_now(ev, CLOCK_MONOTONIC, &_end);                              \
		_end += (seconds) * SEC;                                               \
		for (;;) {                                                             \
			uint64_t _t;                                                   \
			if (cond)                                                      \
				break;                                                 \
			ck_assert_int_ge(sd_event_run(ev, 50 * 1000), 0);              \
			sd_event_now(ev, CLOCK_MONOTONIC, &_t);                        \
			if (_t > _end)                                                 \
				break;                                                 \
		}                                                                      \
		(cond);                                                                \
	})

static int refused_writes;
static void count_refusal(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc, (void)argv;
	refused_writes++;
	sqlite3_result_int(ctx, 0);
}

START_TEST(test_sent_but_not_recorded)
{
	struct sink k;

	/* The real clock and a short backoff, so the retries come within the test. */
	alerts_set_clock(al, NULL, NULL);
	alerts_set_backoff(al, 200 * 1000, 800 * 1000);
	sink_start(&k);
	cfg.mail.server = k.url;
	cfg.mail.timeout_usec = 5 * SEC;

	/* The database refuses every update of the queue, as when another writer
	 * holds it locked or the disk is full. */
	refused_writes = 0;
	ck_assert_int_eq(sqlite3_create_function(db, "rr_refused", 0, SQLITE_UTF8, NULL,
						 count_refusal, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(alerts_enqueue_change(al, add_change("down", "up", false)), 0);
	ck_assert_int_eq(sqlite3_exec(db,
			"CREATE TRIGGER alerts_locked BEFORE UPDATE ON alerts BEGIN "
			"SELECT rr_refused(); SELECT RAISE(ABORT, 'database is locked'); END",
			NULL, NULL, NULL), SQLITE_OK);

	ck_assert(RUN_UNTIL(k.accepted == 1, 10));
	/* The record fails, then its retries (backing off) fail too: meanwhile
	 * the accepted mail is not sent again. */
	ck_assert(RUN_UNTIL(refused_writes >= 3, 10));
	ck_assert_int_eq(k.accepted, 1);
	ck_assert_int_eq(k.started, 1);
	ck_assert_int_eq(alerts_count_pending(db), 1);

	/* The lock is gone: the retry records the mail, still sent only once. */
	ck_assert_int_eq(sqlite3_exec(db, "DROP TRIGGER alerts_locked", NULL, NULL, NULL), SQLITE_OK);
	ck_assert(RUN_UNTIL(alerts_count_pending(db) == 0, 10));
	ck_assert_int_eq(k.accepted, 1);
	ck_assert_int_eq(k.started, 1);
	ck_assert_int_eq(rows("SELECT COUNT(*) FROM alerts WHERE attempts = 1 AND sent_usec IS NOT NULL "
			      "AND reply LIKE '250 2.0.0 Ok: queued as SINK1%'"), 1);
	sink_stop(&k);
}
END_TEST

/* The loop's heartbeat: a 50 ms timer, counting its ticks while the server
 * holds back its reply to the end of the data. */
struct ticker {
	struct sink *k;
	sd_event_source *src;
	int ticks, ticks_held;
};

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct ticker *t = userdata;

	t->ticks++;
	if (t->k->dot_seen > t->k->accepted)
		t->ticks_held++;
	sd_event_source_set_time(s, usec + 50 * 1000);
	sd_event_source_set_enabled(s, SD_EVENT_ON);
	return 0;
}

static void ticker_start(struct ticker *t, struct sink *k)
{
	uint64_t now;

	memset(t, 0, sizeof *t);
	t->k = k;
	sd_event_now(ev, CLOCK_MONOTONIC, &now);
	ck_assert_int_ge(sd_event_add_time(ev, &t->src, CLOCK_MONOTONIC, now + 50 * 1000, 1000,
					   on_tick, t), 0);
}

/* A server slow to accept the mail must not hold the loop: the timer keeps
 * ticking during the 2 s the reply to "." is held back (about 40 ticks; 0 or 1
 * when the transfer ran on the loop), and the mail is recorded once it comes. */
START_TEST(test_slow_server_loop_runs)
{
	struct sink k;
	struct ticker t;

	alerts_set_clock(al, NULL, NULL);
	sink_start(&k);
	k.dot_delay_ms = 2000;
	cfg.mail.server = k.url;
	cfg.mail.timeout_usec = 10 * SEC;
	ticker_start(&t, &k);
	ck_assert_int_eq(alerts_enqueue_change(al, add_change("down", "up", false)), 0);

	ck_assert(RUN_UNTIL(k.dot_seen == 1, 10));
	ck_assert(RUN_UNTIL(alerts_count_pending(db) == 0, 10));
	printf("check_alert: %d loop ticks (50 ms) while the server held its reply for 2 s\n",
	       t.ticks_held);
	ck_assert_int_ge(t.ticks_held, 5);
	ck_assert_int_eq(k.accepted, 1);
	ck_assert_int_eq(k.started, 1);
	ck_assert_int_eq(rows("SELECT COUNT(*) FROM alerts WHERE attempts = 1 AND sent_usec IS NOT NULL "
			      "AND reply LIKE '250 2.0.0 Ok: queued as SINK1%'"), 1);
	sd_event_source_disable_unref(t.src);
	ck_assert(RUN_UNTIL(worker_live() == 0, 10));
	sink_stop(&k);
}
END_TEST

/* Freed (shutdown) while the server holds its reply: no callback after the
 * free, the alert stays queued for the next start, and the transfer's thread
 * finishes by itself and frees its job (valgrind and ASan watch this). */
START_TEST(test_free_in_flight)
{
	struct sink k;

	alerts_set_clock(al, NULL, NULL);
	sink_start(&k);
	k.dot_delay_ms = 500;
	cfg.mail.server = k.url;
	cfg.mail.timeout_usec = 10 * SEC;
	ck_assert_int_eq(alerts_enqueue_change(al, add_change("down", "up", false)), 0);
	ck_assert(RUN_UNTIL(k.dot_seen == 1, 10));
	ck_assert_uint_eq(worker_live(), 1);
	al = alerts_free(al);
	/* The loop goes on without the alerts; the thread ends on its own. */
	ck_assert(RUN_UNTIL(worker_live() == 0, 10));
	ck_assert_int_eq(k.accepted, 1);
	ck_assert_int_eq(alerts_count_pending(db), 1);
	ck_assert_int_eq(rows("SELECT COUNT(*) FROM alerts WHERE attempts = 0"), 1);
	sink_stop(&k);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("alert");
	TCase *tc = tcase_create("alert");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_compose_headers);
	tcase_add_test(tc, test_envelope);
	tcase_add_test(tc, test_change_body);
	tcase_add_test(tc, test_enqueue_idempotent);
	tcase_add_test(tc, test_enqueue_idempotent_after_send);
	tcase_add_test(tc, test_merge_min_gap);
	tcase_add_test(tc, test_note_once);
	tcase_add_test(tc, test_first_state_starts_no_gap);
	tcase_add_test(tc, test_backoff_schedule);
	tcase_add_test(tc, test_clock_step_back);
	tcase_add_test(tc, test_no_mail_section);
	tcase_add_test(tc, test_count_without_table);
	tcase_add_test(tc, test_sent_but_not_recorded);
	tcase_add_test(tc, test_slow_server_loop_runs);
	tcase_add_test(tc, test_free_in_flight);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
