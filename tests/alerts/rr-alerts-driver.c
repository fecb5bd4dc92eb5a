/* Test driver for the alert mail, without the agent: records changes in a
 * state database as the agent does (agent/change.h) and runs the alert queue
 * on an sd-event loop until nothing is pending.
 *
 *   rr-alerts-driver DB insert NEW OLD [no-backup]   print the new change id
 *   rr-alerts-driver DB run [ID...]                  enqueue IDs, send; exit 0
 *                                                    when none is pending
 *   rr-alerts-driver test-mail                       alerts_test_mail_main()
 *
 * [mail] comes from the environment: RR_MAIL_SERVER, RR_MAIL_TO (',' or ';'),
 * RR_MAIL_FROM, RR_MAIL_STARTTLS (auto|always|never), RR_MAIL_USERNAME,
 * RR_MAIL_PASSWORD_FILE, RR_MAIL_TIMEOUT_MS, RR_MAIL_MIN_GAP_MS.
 * Test-only: RR_ALERTS_BACKOFF_MS is the first retry delay (the cap is 8
 * times it) instead of 30 s / 15 min; RR_DRIVER_DEADLINE_MS bounds "run"
 * (default 20 s). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actions/alert.h"
#include "agent/change.h"
#include "agent/schema.h"
#include "agent/log.h"

static const char *env(const char *name, const char *def)
{
	const char *v = getenv(name);
	return v && v[0] ? v : def;
}

static uint64_t env_ms(const char *name, uint64_t def_ms)
{
	const char *v = getenv(name);
	return (v && v[0] ? strtoull(v, NULL, 10) : def_ms) * 1000;
}

static void mail_from_env(struct cfg *c)
{
	static char *to_v[16];
	static char to_buf[1024];
	size_t n = 0;

	c->path = (char *)"(environment)";
	c->mail.present = true;
	snprintf(to_buf, sizeof to_buf, "%s", env("RR_MAIL_TO", "admin@example.org"));
	for (char *save = NULL, *t = strtok_r(to_buf, ",;", &save); t && n < 15;
	     t = strtok_r(NULL, ",;", &save)) {
		while (*t == ' ')
			t++;
		if (*t)
			to_v[n++] = t;
	}
	c->mail.to.v = to_v;
	c->mail.to.n = n;
	c->mail.from = (char *)env("RR_MAIL_FROM", "rerouter@hub1.example.org");
	c->mail.server = (char *)env("RR_MAIL_SERVER", "smtp://127.0.4.1:25");
	const char *tls = env("RR_MAIL_STARTTLS", "auto");
	c->mail.starttls = !strcmp(tls, "always") ? STARTTLS_ALWAYS
			 : !strcmp(tls, "never")  ? STARTTLS_NEVER
						  : STARTTLS_AUTO;
	c->mail.username = (char *)env("RR_MAIL_USERNAME", NULL);
	c->mail.password_file = (char *)env("RR_MAIL_PASSWORD_FILE", NULL);
	c->mail.timeout_usec = env_ms("RR_MAIL_TIMEOUT_MS", 5000);
	c->mail.min_gap_usec = env_ms("RR_MAIL_MIN_GAP_MS", 0);
}

static int open_db(const char *path, sqlite3 **db)
{
	char *err = NULL;

	if (sqlite3_open(path, db) != SQLITE_OK) {
		fprintf(stderr, "%s: %s\n", path, sqlite3_errmsg(*db));
		return -1;
	}
	sqlite3_busy_timeout(*db, 5000);
	(void)err;
	if (schema_state_prepare(*db, path) < 0)
		return -1;
	return 0;
}

static int insert_change(sqlite3 *db, const char *new_state, const char *old_state, bool no_backup)
{
	static const struct {
		const char *step, *status, *detail;
	} steps[] = {
		{ "connectors", "done", "site-a-internet disabled, site-b-relay enabled" },
		{ "transport", "done", "restart postfix.service: done" },
		{ "flush", "done", "/usr/sbin/postqueue -f: exit status 0" },
		{ "hook", "failed", "/usr/local/sbin/wan-changed down up: exit status 3" },
		{ "mail", "pending", "" },
	};
	struct timespec ts;
	char at[64];
	sqlite3_stmt *st = NULL;

	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* The runs as the agent writes them; one line starts with a dot so the
	 * test sees SMTP dot-stuffing undone at the far end. */
	const char *runs = "run 1 at 05:30:00: FAILED (2 of 3 link checks failed)\n"
			   "  isp-gateway  ping  198.51.100.1  fail  0 of 3 replies  2003 ms\n"
			   "  web          http  https://www.example.org/  fail  timeout  5000 ms\n"
			   ".dotted line from a check reason\n"
			   "run 2 at 05:32:00: FAILED (2 of 3 link checks failed)\n"
			   "  grüße       tcp   192.0.2.7:443  pass  connected  12 ms\n";

	if (sqlite3_prepare_v2(db,
			       "INSERT INTO changes (at, at_usec, new_state, old_state, "
			       "prev_since_usec, no_backup, runs_text) VALUES (?, ?, ?, ?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, at, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
	sqlite3_bind_text(st, 3, new_state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, old_state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)(now - 3723ULL * 1000000));
	sqlite3_bind_int(st, 6, no_backup);
	sqlite3_bind_text(st, 7, runs, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	int64_t id = sqlite3_last_insert_rowid(db);
	if (sqlite3_prepare_v2(db,
			       "INSERT INTO change_steps (change_id, step, seq, status, detail, attempts) "
			       "VALUES (?, ?, ?, ?, ?, 1)",
			       -1, &st, NULL) != SQLITE_OK)
		goto fail;
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, steps[i].step, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, (int)i);
		sqlite3_bind_text(st, 4, no_backup && i < 4 ? "skipped" : steps[i].status, -1,
				  SQLITE_STATIC);
		sqlite3_bind_text(st, 5, no_backup && i < 4 ? "" : steps[i].detail, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto fail;
	}
	sqlite3_finalize(st);
	printf("%" PRId64 "\n", id);
	return 0;
fail:
	fprintf(stderr, "insert: %s\n", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return 1;
}

struct run {
	sqlite3 *db;
	uint64_t deadline;
	int ret;
};

static int on_poll(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct run *run = userdata;
	int n = alerts_count_pending(run->db);

	if (n == 0) {
		run->ret = 0;
		return sd_event_exit(sd_event_source_get_event(s), 0);
	}
	if (usec >= run->deadline) {
		fprintf(stderr, "rr-alerts-driver: deadline: %d alert(s) still pending\n", n);
		return sd_event_exit(sd_event_source_get_event(s), 0);
	}
	sd_event_source_set_time(s, usec + 50 * 1000);
	sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	return 0;
}

static int run_queue(sqlite3 *db, char **ids, int n_ids)
{
	struct cfg cfg = { 0 };
	struct alerts *a = NULL;
	sd_event *e = NULL;
	struct run run = { .db = db, .ret = 1 };
	uint64_t now;
	int r;

	mail_from_env(&cfg);
	if ((r = sd_event_default(&e)) < 0 || (r = alerts_new(e, db, &cfg, &a)) < 0) {
		fprintf(stderr, "rr-alerts-driver: setup: %s\n", strerror(-r));
		goto out;
	}
	const char *b = getenv("RR_ALERTS_BACKOFF_MS");
	if (b && b[0]) {
		uint64_t first = strtoull(b, NULL, 10) * 1000;
		alerts_set_backoff(a, first, first * 8);
	}
	for (int i = 0; i < n_ids; i++) {
		r = alerts_enqueue_change(a, strtoll(ids[i], NULL, 10));
		if (r < 0) {
			fprintf(stderr, "rr-alerts-driver: enqueue %s: %s\n", ids[i], strerror(-r));
			goto out;
		}
	}
	sd_event_now(e, CLOCK_MONOTONIC, &now);
	run.deadline = now + env_ms("RR_DRIVER_DEADLINE_MS", 20000);
	r = sd_event_add_time(e, NULL, CLOCK_MONOTONIC, now + 50 * 1000, 1000, on_poll, &run);
	if (r >= 0)
		r = sd_event_loop(e);
	if (r < 0)
		fprintf(stderr, "rr-alerts-driver: loop: %s\n", strerror(-r));
out:
	alerts_free(a);
	sd_event_unref(e);
	return run.ret;
}

int main(int argc, char **argv)
{
	sqlite3 *db = NULL;
	int ret = 2;

	log_setup("rr-alerts-driver", true, getenv("RR_DEBUG") != NULL);
	signal(SIGPIPE, SIG_IGN);
	if (argc == 2 && !strcmp(argv[1], "test-mail")) {
		struct cfg cfg = { 0 };
		mail_from_env(&cfg);
		return alerts_test_mail_main(&cfg);
	}
	if (argc < 3) {
		fprintf(stderr, "usage: rr-alerts-driver DB insert NEW OLD [no-backup] | DB run [ID...] | test-mail\n");
		return 2;
	}
	if (open_db(argv[1], &db) < 0)
		goto out;
	if (!strcmp(argv[2], "insert") && argc >= 5)
		ret = insert_change(db, argv[3], argv[4], argc > 5 && !strcmp(argv[5], "no-backup"));
	else if (!strcmp(argv[2], "run"))
		ret = run_queue(db, argv + 3, argc - 3);
	else
		fprintf(stderr, "rr-alerts-driver: unknown command %s\n", argv[2]);
out:
	sqlite3_close(db);
	return ret;
}
