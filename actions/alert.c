/* Alert mail: one queue row per change of state in the state database,
 * written before any attempt; one mail carries every pending row (that is the
 * merge), at most one mail per min_gap, failed attempts back off from 30 s
 * doubling to 15 min. Schedule times are CLOCK_REALTIME because they are
 * persisted across restarts; a clock stepping backwards is bounded by
 * clamping every wait to max(cap, min_gap). What the admins need besides the
 * changes (the routes now, the deferred queue) is gathered when the mail
 * leaves, on a worker thread: the map may be locked and postqueue may be
 * slow, and the loop waits for neither.
 *
 * Test only: RR_TEST_ALERT_BACKOFF_USEC=FIRST[,CAP] (microseconds) replaces
 * the 30 s / 15 min schedule, so that a test can keep the mail server down
 * for "an hour" of attempts in seconds (tests/surroundings), and
 * RR_TEST_POSTQUEUE=PATH replaces /usr/sbin/postqueue, so that a test can
 * hold it and see the loop go on (tests/ops). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/clock.h"
#include "actions/alert.h"
#include "actions/queue.h"
#include "actions/mail.h"
#include "agent/change.h"
#include "agent/curl_loop.h"
#include "agent/db.h"
#include "agent/log.h"
#include "agent/strbuf.h"
#include "agent/worker.h"

/* The alerts table is created with the rest of the state database (agent/schema.c). */

struct alerts {
	sd_event *event;
	sqlite3 *db;
	const struct cfg *cfg;
	sd_event_source *timer;    /* CLOCK_REALTIME: the next due attempt, or a kick */
	struct mail_xfer *xfer;    /* the transfer in flight (on its thread), if any */
	struct worker *gather;     /* the mail's "now" part being gathered, if any */
	int64_t xfer_upto;         /* it carries the unsent rows with id <= this */
	alerts_clock_fn clock;
	void *clock_ud;
	uint64_t backoff_first_usec, backoff_cap_usec;
	/* Kept in memory too, because the database may refuse to record an
	 * outcome (locked by another writer, disk full): without them the row
	 * stays due and would be sent again at once, in a burst. */
	uint64_t last_attempt_usec; /* queue clock; 0: none by this process */
	int64_t unrecorded_upto;    /* accepted mail (ids <= this) not yet marked sent */
	uint64_t unrecorded_at;     /* when the server accepted it */
	char *unrecorded_reply;
	unsigned record_failures;   /* failed writes of that record, for its backoff */
};

/* The mail waits this long at most for postqueue -j. */
#define ALERT_POSTQUEUE_TIMEOUT_USEC (5 * USEC_PER_SEC)
/* Stack of the gathering thread: SQLite's parser and posix_spawn. */
#define ALERT_GATHER_STACK (512 * 1024)

static uint64_t realtime_now(void *ud)
{
	(void)ud;
	return clock_usec(CLOCK_REALTIME);
}

static uint64_t now_usec(const struct alerts *a)
{
	return a->clock(a->clock_ud);
}

void alerts_set_clock(struct alerts *a, alerts_clock_fn fn, void *userdata)
{
	a->clock = fn ? fn : realtime_now;
	a->clock_ud = userdata;
}

void alerts_set_backoff(struct alerts *a, uint64_t first_usec, uint64_t cap_usec)
{
	a->backoff_first_usec = first_usec;
	a->backoff_cap_usec = cap_usec < first_usec ? first_usec : cap_usec;
}

uint64_t alerts_backoff_usec(const struct alerts *a, unsigned attempts)
{
	uint64_t d = a->backoff_first_usec;

	for (unsigned i = 1; i < attempts && d < a->backoff_cap_usec; i++)
		d *= 2;
	return d < a->backoff_cap_usec ? d : a->backoff_cap_usec;
}

/* --- small SQLite helpers: every value is bound, never printed into SQL --- */

static int db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret)
{
	if (sqlite3_prepare_v2(db, sql, -1, ret, NULL) != SQLITE_OK) {
		log_errx("state database: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	return 0;
}

static char *xstrdup(const char *s)
{
	return strdup(s ? s : "");
}

static void state_upper(const char *s, char *buf, size_t size)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < size; i++) {
		char c = s[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		buf[i] = c;
	}
	buf[i] = '\0';
}

static void format_local(uint64_t usec, char *buf, size_t size)
{
	time_t t = (time_t)(usec / USEC_PER_SEC);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M:%S %z", &tm);
}

static void subject_for(const char *state, char *buf, size_t size)
{
	char up[16];

	state_upper(state, up, sizeof up);
	snprintf(buf, size, "[rerouter] %s: internet connection %s", mail_hostname(), up);
}

/* This change's part of the mail, from its row and its steps. */
int alerts_compose_change(sqlite3 *db, int64_t change_id, char **ret_state, char **ret_body)
{
	sqlite3_stmt *st = NULL;
	struct strbuf b = { 0 };
	char *state = NULL;
	int r;

	r = db_prepare(db,
		       "SELECT at, at_usec, new_state, old_state, prev_since_usec, no_backup, runs_text "
		       "FROM changes WHERE id = ?",
		       &st);
	if (r < 0)
		goto out;
	sqlite3_bind_int64(st, 1, change_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		log_errx("alert: change %" PRId64 " is not in the state database", change_id);
		r = -ENOENT;
		goto out;
	}
	const char *at = (const char *)sqlite3_column_text(st, 0);
	uint64_t at_usec = (uint64_t)sqlite3_column_int64(st, 1);
	const char *new_state = (const char *)sqlite3_column_text(st, 2);
	const char *old_state = (const char *)sqlite3_column_text(st, 3);
	bool since_known = sqlite3_column_type(st, 4) != SQLITE_NULL;
	uint64_t since = (uint64_t)sqlite3_column_int64(st, 4);
	bool no_backup = sqlite3_column_int(st, 5) != 0;
	const char *runs = (const char *)sqlite3_column_text(st, 6);
	char nu[16], ou[16], when[64], held[64], since_s[64];

	state = xstrdup(new_state);
	if (!state) {
		r = -ENOMEM;
		goto out;
	}
	state_upper(new_state ? new_state : "?", nu, sizeof nu);
	state_upper(old_state ? old_state : "?", ou, sizeof ou);
	format_local(at_usec, when, sizeof when);
	strbuf_printf(&b, "The internet connection of %s is %s.\n\n", mail_hostname(), nu);
	strbuf_printf(&b, "Time:      %s (%s)\n", when, at ? at : "");
	if (since_known && since <= at_usec) {
		clock_format_duration(at_usec - since, held, sizeof held);
		format_local(since, since_s, sizeof since_s);
		strbuf_printf(&b, "Previous:  %s for %s (since %s)\n", ou, held, since_s);
	} else {
		strbuf_printf(&b, "Previous:  %s (for how long is not known)\n", ou);
	}
	if (no_backup)
		strbuf_printf(&b, "\nNo backup path answered: nothing was rewired.\n");
	strbuf_printf(&b, "\nDeciding runs:\n%s", runs && runs[0] ? runs : "(not recorded)\n");
	if (b.len && b.s[b.len - 1] != '\n')
		strbuf_printf(&b, "\n");
	sqlite3_finalize(st);

	r = db_prepare(db,
		       "SELECT step, status, detail, attempts FROM change_steps "
		       "WHERE change_id = ? AND step <> 'mail' ORDER BY seq",
		       &st);
	if (r < 0)
		goto out;
	sqlite3_bind_int64(st, 1, change_id);
	strbuf_printf(&b, "\nActions:\n");
	int n = 0, rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *detail = (const char *)sqlite3_column_text(st, 2);
		int attempts = sqlite3_column_int(st, 3);
		strbuf_printf(&b, "  %-11s %s", (const char *)sqlite3_column_text(st, 0),
			(const char *)sqlite3_column_text(st, 1));
		if (detail && detail[0])
			strbuf_printf(&b, ": %s", detail);
		if (attempts > 1)
			strbuf_printf(&b, " (%d attempts)", attempts);
		strbuf_printf(&b, "\n");
		n++;
	}
	if (rc != SQLITE_DONE) {
		log_errx("state database: %s", sqlite3_errmsg(db));
		r = -EIO;
		goto out;
	}
	if (n == 0)
		strbuf_printf(&b, "  (none recorded)\n");
	r = strbuf_take(&b, ret_body);
	b.s = NULL;
	if (r == 0) {
		*ret_state = state;
		state = NULL;
	}
out:
	sqlite3_finalize(st);
	free(b.s);
	free(state);
	return r;
}

static void arm(struct alerts *a, uint64_t at_usec)
{
	if (!a->timer)
		return;
	if (sd_event_source_set_time(a->timer, at_usec) < 0 ||
	    sd_event_source_set_enabled(a->timer, SD_EVENT_ONESHOT) < 0)
		log_warnx("alert: cannot arm the mail timer");
}

/* The timer runs on the real clock; the queue's clock may be a test's. */
static void arm_in(struct alerts *a, uint64_t delay_usec)
{
	arm(a, realtime_now(NULL) + delay_usec);
}

/* What the admins need to know when the mail leaves, besides the changes:
 * the route each address space has (transport_routes) and how much mail
 * waits. On the gathering thread: uses nothing but its arguments. */
static char *snapshot_now(const char *transport_db, const char *postqueue)
{
	char *text = NULL;
	size_t size = 0;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	FILE *f = open_memstream(&text, &size);
	int n = 0;

	if (!f)
		return NULL;
	fprintf(f, "\nRoutes now (%s):\n", transport_db);
	int rc = sqlite3_open_v2(transport_db, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(db, 1000);
		rc = sqlite3_prepare_v2(db, "SELECT address_space, nexthop FROM transport_routes "
					"ORDER BY address_space", -1, &st, NULL);
	}
	if (rc == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			fprintf(f, "  %-20s %s\n", (const char *)sqlite3_column_text(st, 0),
				(const char *)sqlite3_column_text(st, 1));
			n++;
		}
		if (n == 0)
			fprintf(f, "  none: Postfix falls back to relayhost or MX lookups\n");
	} else
		fprintf(f, "  cannot be read: %s\n", db ? sqlite3_errmsg(db) : "out of memory");
	sqlite3_finalize(st);
	sqlite3_close(db);
	char err[256];
	int q = postfix_deferred_count(postqueue, ALERT_POSTQUEUE_TIMEOUT_USEC, err, sizeof err);
	if (q >= 0)
		fprintf(f, "\nDeferred queue: %d message%s (postqueue -j)\n", q, q == 1 ? "" : "s");
	else if (q != -ENOENT)
		fprintf(f, "\nDeferred queue: unknown (postqueue -j: %s)\n", q == -EIO && err[0] ? err : strerror(-q));
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* One row of the queue, of a kind ('change' | 'note'), once per change and
 * kind. A new row is news: whatever waits for a retry goes with it now
 * (min_gap still applies), e.g. the link the mail needed is back. Returns
 * 1 when the row is new, 0 when it was there, negative errno on error. */
static int queue_row(struct alerts *a, int64_t change_id, const char *kind, const char *state,
		     const char *subject, const char *body)
{
	sqlite3_stmt *st = NULL;
	uint64_t now = now_usec(a);
	int r;

	r = db_prepare(a->db,
		       "INSERT OR IGNORE INTO alerts (change_id, kind, new_state, created_usec, "
		       "next_attempt_usec, subject, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
		       &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, change_id);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)now);
	sqlite3_bind_text(st, 6, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, body, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		log_errx("alert: cannot queue the %s for change %" PRId64 ": %s",
			 !strcmp(kind, "note") ? "note" : "mail", change_id, sqlite3_errmsg(a->db));
		sqlite3_finalize(st);
		return -EIO;
	}
	sqlite3_finalize(st);
	if (sqlite3_changes(a->db) == 0)
		return 0;
	r = db_prepare(a->db,
		       "UPDATE alerts SET next_attempt_usec = ? "
		       "WHERE sent_usec IS NULL AND next_attempt_usec > ?",
		       &st);
	if (r == 0) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
		if (sqlite3_step(st) != SQLITE_DONE)
			log_warnx("alert: state database: %s", sqlite3_errmsg(a->db));
		sqlite3_finalize(st);
	}
	/* Sent from the loop, never from inside the caller's step. */
	if (!a->xfer && !a->gather)
		arm(a, 1);
	return 1;
}

int alerts_enqueue_change(struct alerts *a, int64_t change_id)
{
	char *state = NULL, *body = NULL;
	char subject[512];
	int r;

	if (!a->cfg || !a->cfg->mail.present) {
		log_debug("alert: no [mail] section, no mail for change %" PRId64, change_id);
		return 0;
	}
	r = alerts_compose_change(a->db, change_id, &state, &body);
	if (r < 0)
		goto out;
	subject_for(state, subject, sizeof subject);
	r = queue_row(a, change_id, "change", state, subject, body);
	if (r > 0)
		log_info("alert: mail for change %" PRId64 " (%s) queued", change_id, state);
	else if (r == 0 && !a->xfer && !a->gather)
		arm(a, 1); /* queued before (a repeated step): make sure it goes */
	r = r < 0 ? r : 0;
out:
	free(state);
	free(body);
	return r;
}

/* --- the note on a change (SPEC section 2: the backup gate opened later) --- */

static void list_line(struct strbuf *b, const char *verb, const struct cfg_list *l)
{
	if (l->n == 0)
		return;
	strbuf_printf(b, "%s%s", b->len && b->s[b->len - 1] != ' ' ? "; " : "", verb);
	for (size_t i = 0; i < l->n; i++)
		strbuf_printf(b, "%s%s", i ? ", " : " ", l->v[i]);
}

static int compose_note(struct alerts *a, int64_t change_id, const char *applied, char **ret_body)
{
	sqlite3_stmt *st = NULL;
	struct strbuf b = { 0 };
	char when[64], now[64];
	int r;

	if ((r = db_prepare(a->db, "SELECT at, at_usec FROM changes WHERE id = ?", &st)) < 0)
		return r;
	sqlite3_bind_int64(st, 1, change_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		log_errx("alert: change %" PRId64 " is not in the state database", change_id);
		sqlite3_finalize(st);
		return -ENOENT;
	}
	const char *at = (const char *)sqlite3_column_text(st, 0);
	format_local((uint64_t)sqlite3_column_int64(st, 1), when, sizeof when);
	format_local(now_usec(a), now, sizeof now);
	strbuf_printf(&b, "A backup path of %s answers: outbound mail is now rerouted by [on_down].\n\n",
		      mail_hostname());
	/* A note on the change: its time identifies it, as in its alert. */
	strbuf_printf(&b, "Change:      DOWN at %s (%s);\n"
		      "             no backup path answered then, and nothing was rewired\n", when, at ? at : "");
	strbuf_printf(&b, "Backup path: answers since %s\n[on_down]:   ", now);
	list_line(&b, "enable", &a->cfg->on_down.enable);
	list_line(&b, "disable", &a->cfg->on_down.disable);
	strbuf_printf(&b, "\nConnectors:  %s\n", applied && applied[0] ? applied : "(nothing recorded)");
	sqlite3_finalize(st);
	r = strbuf_take(&b, ret_body);
	free(b.s);
	return r;
}

int alerts_enqueue_note(struct alerts *a, int64_t change_id, const char *applied)
{
	sqlite3_stmt *st = NULL;
	char *body = NULL, subject[512];
	int r;

	if (!a->cfg || !a->cfg->mail.present)
		return 0;
	/* Once per change: a gate judged open again after a restart queues nothing. */
	if ((r = db_prepare(a->db, "SELECT 1 FROM alerts WHERE change_id = ? AND kind = 'note'", &st)) < 0)
		return r;
	sqlite3_bind_int64(st, 1, change_id);
	r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (r == SQLITE_ROW)
		return 0;
	if ((r = compose_note(a, change_id, applied, &body)) < 0)
		return r;
	/* The routes and the queue are added when the mail leaves. */
	snprintf(subject, sizeof subject, "[rerouter] %s: backup path answers, mail now rerouted", mail_hostname());
	r = queue_row(a, change_id, "note", "down", subject, body);
	if (r > 0)
		log_info("alert: note on change %" PRId64 " queued (a backup path answers)", change_id);
	free(body);
	return r < 0 ? r : 0;
}

int alerts_next_due(struct alerts *a, uint64_t *ret_usec)
{
	sqlite3_stmt *st = NULL;
	uint64_t now = now_usec(a), due;
	int r;

	*ret_usec = UINT64_MAX;
	r = db_prepare(a->db,
		       /* The first state's mail (a change from unknown) starts no gap. */
		       "SELECT COUNT(*), MAX(next_attempt_usec), "
		       "(SELECT MAX(s.sent_usec) FROM alerts AS s LEFT JOIN changes AS c ON c.id = s.change_id "
		       "WHERE c.old_state IS NOT 'unknown') FROM alerts WHERE sent_usec IS NULL",
		       &st);
	if (r < 0)
		return r;
	if (sqlite3_step(st) != SQLITE_ROW) {
		r = -EIO;
		goto out;
	}
	if (sqlite3_column_int(st, 0) == 0)
		goto out;
	due = (uint64_t)sqlite3_column_int64(st, 1);
	uint64_t gap = a->cfg ? a->cfg->mail.min_gap_usec : 0;
	if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
		uint64_t last = (uint64_t)sqlite3_column_int64(st, 2);
		if (last + gap > due)
			due = last + gap;
	}
	/* Never two attempts closer than the first backoff, even when the
	 * outcome of the last one could not be written to the database. */
	if (a->last_attempt_usec && a->last_attempt_usec + a->backoff_first_usec > due)
		due = a->last_attempt_usec + a->backoff_first_usec;
	uint64_t longest = a->backoff_cap_usec > gap ? a->backoff_cap_usec : gap;
	if (due > now + longest)
		due = now + longest;
	*ret_usec = due;
out:
	sqlite3_finalize(st);
	return r;
}

int alerts_peek(struct alerts *a, char **ret_subject, char **ret_body, size_t *ret_n,
		int64_t *ret_upto)
{
	sqlite3_stmt *st = NULL;
	struct strbuf states = { 0 }, parts = { 0 }, b = { 0 };
	char *first_subject = NULL, last_state[16] = "";
	size_t n = 0, n_changes = 0;
	int64_t upto = 0;
	int r, rc;

	*ret_n = 0;
	r = db_prepare(a->db,
		       "SELECT id, new_state, subject, body, kind = 'note' FROM alerts "
		       "WHERE sent_usec IS NULL ORDER BY change_id, kind",
		       &st);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		const char *state = (const char *)sqlite3_column_text(st, 1);
		if (id > upto)
			upto = id;
		if (n == 0 && !(first_subject = xstrdup((const char *)sqlite3_column_text(st, 2)))) {
			r = -ENOMEM;
			goto out;
		}
		bool note = sqlite3_column_int(st, 4) != 0;
		if (!note) {
			strbuf_printf(&states, "%s%s", n_changes ? ", " : "", state);
			snprintf(last_state, sizeof last_state, "%s", state);
			n_changes++;
		}
		n++;
		strbuf_printf(&parts, "\n==== %s %zu ====\n\n%s", note ? "Note" : "Change", n,
			      (const char *)sqlite3_column_text(st, 3));
	}
	if (rc != SQLITE_DONE) {
		r = -EIO;
		goto out;
	}
	if (n == 0)
		goto out;
	if (n == 1 || n_changes == 0) {
		*ret_subject = first_subject;
		first_subject = NULL;
		/* The one body again, without the "Change 1" banner. */
		sqlite3_finalize(st);
		st = NULL;
		r = db_prepare(a->db, "SELECT group_concat(body, char(10)) FROM alerts WHERE sent_usec IS NULL "
			       "AND id <= ?", &st);
		if (r < 0)
			goto out;
		sqlite3_bind_int64(st, 1, upto);
		if (sqlite3_step(st) != SQLITE_ROW) {
			r = -EIO;
			goto out;
		}
		strbuf_printf(&b, "%s", (const char *)sqlite3_column_text(st, 0));
	} else {
		char subject[512], up[16];
		subject_for(last_state, subject, sizeof subject);
		if (n_changes > 1)
			strbuf_printf(&b, "%s (%zu changes: %s)", subject, n_changes, states.s ? states.s : "");
		else
			strbuf_printf(&b, "%s (and %zu note%s)", subject, n - 1, n > 2 ? "s" : "");
		if ((r = strbuf_take(&b, ret_subject)) < 0)
			goto out;
		b = (struct strbuf){ 0 };
		state_upper(last_state, up, sizeof up);
		if (n_changes == 1)
			strbuf_printf(&b, "The internet connection of %s is %s. The alert and a note after it "
				      "come in one mail.\n%s", mail_hostname(), up, parts.s ? parts.s : "");
		else
			strbuf_printf(&b,
			"The internet connection of %s changed state %zu times since the last alert "
			"(%s); it is now %s.\nThey come in one mail because they were closer "
			"together than [mail] min_gap.\n%s",
			mail_hostname(), n_changes, states.s ? states.s : "", up, parts.s ? parts.s : "");
	}
	r = strbuf_take(&b, ret_body);
	b.s = NULL;
	if (r < 0) {
		free(*ret_subject);
		*ret_subject = NULL;
		goto out;
	}
	*ret_n = n;
	*ret_upto = upto;
out:
	sqlite3_finalize(st);
	free(first_subject);
	free(states.s);
	free(parts.s);
	free(b.s);
	return r;
}

static int record_attempt(struct alerts *a, int64_t upto, bool accepted, const char *reply, uint64_t now)
{
	sqlite3_stmt *st = NULL;
	int r;

	if (accepted) {
		/* One statement: the rows become sent together with the reply. */
		r = db_prepare(a->db,
			       "UPDATE alerts SET sent_usec = ?, reply = ?, attempts = attempts + 1, "
			       "last_error = NULL WHERE sent_usec IS NULL AND id <= ?",
			       &st);
		if (r < 0)
			return r;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
		sqlite3_bind_text(st, 2, reply, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, upto);
		r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
		if (r < 0)
			log_errx("alert: mail sent but not recorded: %s", sqlite3_errmsg(a->db));
		sqlite3_finalize(st);
		return r;
	}

	r = db_prepare(a->db,
		       "SELECT COALESCE(MAX(attempts), 0) FROM alerts "
		       "WHERE sent_usec IS NULL AND id <= ?",
		       &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, upto);
	unsigned attempts = sqlite3_step(st) == SQLITE_ROW ? (unsigned)sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	uint64_t next = now + alerts_backoff_usec(a, attempts + 1);

	r = db_prepare(a->db,
		       "UPDATE alerts SET attempts = attempts + 1, last_error = ?, "
		       "next_attempt_usec = ? WHERE sent_usec IS NULL AND id <= ?",
		       &st);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, reply, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)next);
	sqlite3_bind_int64(st, 3, upto);
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(st);
	if (r < 0) {
		log_errx("alert: state database: %s", sqlite3_errmsg(a->db));
		return r;
	}

	/* Past the deadline: said once at error priority; the row stays
	 * pending (rerouterctl status) and is still retried at the cap. */
	r = db_prepare(a->db,
		       "SELECT change_id, new_state FROM alerts WHERE sent_usec IS NULL "
		       "AND expired = 0 AND created_usec + ? <= ? AND id <= ?",
		       &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)ALERTS_DEADLINE_USEC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 3, upto);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const struct log_field f[] = { { "REROUTER_ACTION", "mail" },
					       { "REROUTER_STATE",
						 (const char *)sqlite3_column_text(st, 1) } };
		log_full(LOG_ERR, 0, f, 2,
			 "alert: mail for change %lld (%s) still undelivered after %llu h: %s; "
			 "still retrying",
			 (long long)sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
			 (unsigned long long)(ALERTS_DEADLINE_USEC / USEC_PER_SEC / 3600), reply);
	}
	sqlite3_finalize(st);
	r = db_prepare(a->db,
		       "UPDATE alerts SET expired = 1 WHERE sent_usec IS NULL AND expired = 0 "
		       "AND created_usec + ? <= ? AND id <= ?",
		       &st);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)ALERTS_DEADLINE_USEC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 3, upto);
	sqlite3_step(st);
	sqlite3_finalize(st);
	return 0;
}


/* The mail step's detail in change_steps says what became of the mail, for
 * rerouterctl history (only detail: its status is the actions' business). */
static void note_in_steps(struct alerts *a, int64_t upto, bool accepted, const char *reply,
			  uint64_t now)
{
	sqlite3_stmt *st = NULL;
	char when[64], detail[900];

	format_local(now, when, sizeof when);
	snprintf(detail, sizeof detail, "%s %s: %s", accepted ? "sent" : "not sent yet, attempt at",
		 when, reply);
	if (sqlite3_prepare_v2(a->db,
			       "UPDATE change_steps SET detail = ? WHERE step = 'mail' AND change_id IN "
			       "(SELECT change_id FROM alerts WHERE kind = 'change' AND id <= ? AND "
			       "(sent_usec IS NULL OR sent_usec = ?))",
			       -1, &st, NULL) != SQLITE_OK)
		return; /* no change_steps table: nothing to note */
	sqlite3_bind_text(st, 1, detail, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, upto);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)now);
	sqlite3_step(st);
	sqlite3_finalize(st);
}

static int record_attempt_at(struct alerts *a, int64_t upto, bool accepted, const char *reply,
			     uint64_t now)
{
	bool outer = sqlite3_get_autocommit(a->db);
	int r;

	/* A savepoint: one transaction, nested or not in the caller's. */
	if (sqlite3_exec(a->db, "SAVEPOINT alert_attempt", NULL, NULL, NULL) != SQLITE_OK)
		log_warnx("alert: state database: %s", sqlite3_errmsg(a->db));
	r = record_attempt(a, upto, accepted, reply, now);
	if (r == 0)
		note_in_steps(a, upto, accepted, reply, now);
	/* The outermost RELEASE is the commit, and on a full disk it fails: then
	 * nothing is recorded (the caller keeps it in memory), and no transaction
	 * is left open to swallow every later write. */
	if (r == 0 && sqlite3_exec(a->db, "RELEASE alert_attempt", NULL, NULL, NULL) != SQLITE_OK) {
		log_warnx("alert: state database: cannot record the attempt: %s", sqlite3_errmsg(a->db));
		r = -EIO;
	}
	if (r < 0)
		sqlite3_exec(a->db, "ROLLBACK TO alert_attempt; RELEASE alert_attempt", NULL, NULL, NULL);
	if (outer)
		db_heal(a->db);
	return r;
}

int alerts_record_attempt(struct alerts *a, int64_t upto, bool accepted, const char *reply)
{
	return record_attempt_at(a, upto, accepted, reply, now_usec(a));
}

/* Arms the timer for the next due mail (or turns it off). */
static void schedule(struct alerts *a)
{
	uint64_t due, now = now_usec(a);

	if (alerts_next_due(a, &due) < 0)
		arm_in(a, a->backoff_first_usec);
	else if (due == UINT64_MAX) {
		if (a->timer)
			sd_event_source_set_enabled(a->timer, SD_EVENT_OFF);
	} else
		arm_in(a, due > now ? due - now : 0);
}

/* An accepted mail whose record failed: only the write is retried, with
 * backoff; its alerts are never sent again by this process, and nothing
 * else goes before it is written (sent_usec drives min_gap). */
static int retry_unrecorded(struct alerts *a)
{
	int r;

	r = record_attempt_at(a, a->unrecorded_upto, true,
			      a->unrecorded_reply ? a->unrecorded_reply : "accepted", a->unrecorded_at);
	if (r < 0) {
		a->record_failures++;
		arm_in(a, alerts_backoff_usec(a, a->record_failures));
		return r;
	}
	log_info("alert: the mail accepted earlier is now recorded as sent");
	a->unrecorded_upto = 0;
	free(a->unrecorded_reply);
	a->unrecorded_reply = NULL;
	a->record_failures = 0;
	return 0;
}

/* The transfer's thread is over; x is freed when this returns. */
static void on_sent(struct mail_xfer *x, void *userdata)
{
	struct alerts *a = userdata;
	CURLcode result = x->result;
	char desc[768];
	const struct log_field f[] = { { "REROUTER_ACTION", "mail" } };
	const char *server = a->cfg && a->cfg->mail.server ? a->cfg->mail.server : "the mail server";
	uint64_t now = now_usec(a);
	int r;

	a->xfer = NULL;
	/* The floor between attempts is for failures; after an accepted mail
	 * only min_gap applies (a change right after it goes at once). */
	a->last_attempt_usec = result == CURLE_OK ? 0 : now;
	mail_xfer_describe(x, result, desc, sizeof desc);
	if (result == CURLE_OK) {
		log_fields(LOG_INFO, f, "alert: mail accepted by %s: %s", server, desc);
		r = record_attempt_at(a, a->xfer_upto, true, desc, now);
		if (r < 0) {
			/* Sent is sent: remember it, and retry only the write. */
			a->unrecorded_upto = a->xfer_upto;
			a->unrecorded_at = now;
			free(a->unrecorded_reply);
			a->unrecorded_reply = strdup(desc);
			a->record_failures = 1;
		}
	} else {
		log_fields(LOG_WARNING, f, "alert: mail not sent to %s: %s", server, desc);
		r = record_attempt_at(a, a->xfer_upto, false, desc, now);
	}
	if (r < 0) {
		arm_in(a, a->backoff_first_usec);
		return;
	}
	alerts_kick(a);
}

/* One mail on its way: the pending alerts from alerts_peek(), then the
 * "now" part from the gathering thread. */
struct outgoing {
	struct alerts *a; /* the loop's: never touched on the thread */
	char *subject, *body;
	size_t n;
	int64_t upto;
	char *transport_db; /* the thread's input: copies, a reload may free the config */
	char *postqueue;
	char *now;          /* the thread's output */
};

static void outgoing_free(void *arg)
{
	struct outgoing *o = arg;

	if (!o)
		return;
	free(o->subject);
	free(o->body);
	free(o->transport_db);
	free(o->postqueue);
	free(o->now);
	free(o);
}

static void gather_work(void *arg)
{
	struct outgoing *o = arg;

	o->now = snapshot_now(o->transport_db, o->postqueue);
}

/* Composes and starts the transfer; o stays the caller's. */
static void send_outgoing(struct alerts *a, struct outgoing *o)
{
	uint64_t now = now_usec(a);
	char *message = NULL, *body = NULL;
	char err[512];
	int r;

	if (!a->cfg || !a->cfg->mail.present)
		return; /* [mail] gone by a reload: the rows stay */
	if (asprintf(&body, "%s%s", o->body, o->now ? o->now : "") < 0) {
		body = NULL;
		r = -ENOMEM;
		goto retry;
	}
	r = mail_compose(mail_hostname(), a->cfg->mail.from, &a->cfg->mail.to, o->subject, body, now,
			 &message);
	if (r < 0)
		goto retry;
	r = mail_xfer_new(a->cfg, message, &a->xfer, err, sizeof err);
	message = NULL;
	if (r < 0) {
		log_warnx("alert: mail not sent: %s", err);
		a->last_attempt_usec = now;
		alerts_record_attempt(a, o->upto, false, err);
		a->xfer = NULL;
		schedule(a);
		goto out;
	}
	a->xfer_upto = o->upto;
	r = mail_xfer_start(a->event, a->xfer, on_sent, a);
	if (r < 0) {
		log_warn_errno(r, "alert: cannot start the mail transfer");
		a->last_attempt_usec = now;
		alerts_record_attempt(a, o->upto, false, "cannot start the transfer");
		a->xfer = mail_xfer_free(a->xfer);
		schedule(a);
		goto out;
	}
	log_debug("alert: sending one mail for %zu change(s): %s", o->n, o->subject);
	goto out;
retry:
	log_warn_errno(r, "alert: cannot prepare the mail");
	arm_in(a, a->backoff_first_usec);
out:
	free(body);
	free(message);
}

static void gather_done(void *arg)
{
	struct outgoing *o = arg;
	struct alerts *a = o->a;

	a->gather = NULL;
	send_outgoing(a, o);
}

void alerts_kick(struct alerts *a)
{
	struct outgoing *o = NULL;
	uint64_t due, now;
	int r;

	if (a->xfer || a->gather || !a->cfg || !a->cfg->mail.present)
		return;
	if (a->unrecorded_upto && retry_unrecorded(a) < 0)
		return;
	if (alerts_next_due(a, &due) < 0) {
		arm_in(a, a->backoff_first_usec);
		return;
	}
	if (due == UINT64_MAX) {
		if (a->timer)
			sd_event_source_set_enabled(a->timer, SD_EVENT_OFF);
		return;
	}
	now = now_usec(a);
	if (due > now) {
		arm_in(a, due - now);
		return;
	}
	o = calloc(1, sizeof *o);
	if (!o) {
		r = -ENOMEM;
		goto retry;
	}
	o->a = a;
	r = alerts_peek(a, &o->subject, &o->body, &o->n, &o->upto);
	if (r < 0)
		goto retry;
	if (o->n == 0)
		goto out;
	const char *pq = getenv("RR_TEST_POSTQUEUE");
	o->transport_db = strdup(a->cfg->transport.database ? a->cfg->transport.database : "");
	o->postqueue = strdup(pq && pq[0] ? pq : POSTQUEUE_PATH);
	if (!o->transport_db || !o->postqueue) {
		r = -ENOMEM;
		goto retry;
	}
	r = worker_start(a->event, ALERT_GATHER_STACK, gather_work, gather_done, outgoing_free, o,
			 &a->gather);
	if (r >= 0)
		return; /* gather_done() sends it */
	/* No thread: the mail goes without its "now" part rather than not at all. */
	log_warn_errno(r, "alert: cannot gather the routes and the queue for the mail");
	a->gather = NULL;
	send_outgoing(a, o);
	goto out;
retry:
	/* The database or memory failed us: try again later, not only at the
	 * next change of state. */
	if (r != -EIO)
		log_warn_errno(r, "alert: cannot prepare the mail");
	arm_in(a, a->backoff_first_usec);
out:
	outgoing_free(o);
}

/* The test-only schedule (see the top of this file); ignored when malformed. */
static void test_backoff(struct alerts *a)
{
	const char *v = getenv("RR_TEST_ALERT_BACKOFF_USEC");
	unsigned long long first, cap;
	char *end;

	if (!v || !v[0])
		return;
	errno = 0;
	first = strtoull(v, &end, 10);
	cap = first;
	if (*end == ',')
		cap = strtoull(end + 1, &end, 10);
	if (errno || *end || first == 0) {
		log_warnx("alert: RR_TEST_ALERT_BACKOFF_USEC=%s is not FIRST[,CAP] in usec; ignored", v);
		return;
	}
	alerts_set_backoff(a, first, cap);
	log_warnx("alert: RR_TEST_ALERT_BACKOFF_USEC: retries from %llu usec, at most %llu (test only)",
		  first, cap < first ? first : cap);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	alerts_kick(userdata);
	return 0;
}

int alerts_new(sd_event *e, sqlite3 *state_db, const struct cfg *cfg, struct alerts **ret)
{
	struct alerts *a = calloc(1, sizeof *a);
	int r;

	if (!a)
		return -ENOMEM;
	a->event = sd_event_ref(e);
	a->db = state_db;
	a->cfg = cfg;
	a->clock = realtime_now;
	alerts_set_backoff(a, ALERTS_BACKOFF_FIRST_USEC, ALERTS_BACKOFF_CAP_USEC);
	test_backoff(a);
	/* Before the first transfer's thread: curl_global_init() is not thread-safe. */
	r = curl_loop_global_init();
	if (r < 0)
		goto fail;
	/* Armed at 1: what an earlier run left pending goes out once the loop runs. */
	r = sd_event_add_time(e, &a->timer, CLOCK_REALTIME, 1, 0, on_timer, a);
	if (r < 0)
		goto fail;
	sd_event_source_set_description(a->timer, "alert-mail");
	*ret = a;
	return 0;
fail:
	alerts_free(a);
	return r;
}

void alerts_set_config(struct alerts *a, const struct cfg *cfg)
{
	/* A transfer in flight keeps its own copies of the settings. */
	a->cfg = cfg;
	if (!a->xfer && !a->gather)
		arm(a, 1);
}

struct alerts *alerts_free(struct alerts *a)
{
	if (!a)
		return NULL;
	if (a->xfer) {
		/* Its thread ends within [mail] timeout and cleans up; the alerts
		 * stay queued and go at the next start. */
		log_info("alert: a mail transfer is still in flight; its alert stays queued");
		mail_xfer_abandon(a->xfer);
		a->xfer = NULL;
	}
	if (a->gather) {
		/* The thread frees its job; the alerts stay queued. */
		worker_abandon(a->gather);
		a->gather = NULL;
	}
	sd_event_source_disable_unref(a->timer);
	sd_event_unref(a->event);
	free(a->unrecorded_reply);
	free(a);
	return NULL;
}

int alerts_count_pending(sqlite3 *state_db)
{
	sqlite3_stmt *st = NULL;
	int r;

	/* A state database from before any alert has no table: nothing pending. */
	if (sqlite3_prepare_v2(state_db, "SELECT COUNT(*) FROM alerts WHERE sent_usec IS NULL", -1,
			       &st, NULL) != SQLITE_OK)
		return strstr(sqlite3_errmsg(state_db), "no such table") ? 0 : -EIO;
	r = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -EIO;
	sqlite3_finalize(st);
	return r;
}

/* --- rerouterd --test-mail --- */

struct test_mail {
	sd_event *event;
	CURLcode result;
	long code;
	char desc[768];
	bool finished;
};

static void on_test_sent(struct mail_xfer *x, void *userdata)
{
	struct test_mail *t = userdata;

	t->result = x->result;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &t->code);
	mail_xfer_describe(x, x->result, t->desc, sizeof t->desc);
	t->finished = true;
	sd_event_exit(t->event, 0);
}

int alerts_test_mail_main(const struct cfg *cfg)
{
	struct test_mail t = { .result = CURLE_FAILED_INIT };
	struct mail_xfer *x = NULL;
	char *message = NULL, subject[512], body[1024], err[512];
	int r, ret = 1;

	if (!cfg->mail.present || cfg->mail.to.n == 0) {
		fprintf(stderr, "%s: no [mail] section with recipients: nothing to test\n", cfg->path);
		return 1;
	}
	r = sd_event_new(&t.event);
	if (r < 0) {
		fprintf(stderr, "rerouterd: cannot create an event loop: %s\n", strerror(-r));
		return 1;
	}
	r = curl_loop_global_init();
	if (r < 0) {
		fprintf(stderr, "rerouterd: cannot set up libcurl: %s\n", strerror(-r));
		goto out;
	}
	snprintf(subject, sizeof subject, "[rerouter] %s: test message", mail_hostname());
	snprintf(body, sizeof body,
		 "This is a test message from rerouterd --test-mail on %s.\n"
		 "Alerts about the internet connection will come the same way:\n"
		 "server %s, from %s.\n",
		 mail_hostname(), cfg->mail.server, cfg->mail.from);
	r = mail_compose(mail_hostname(), cfg->mail.from, &cfg->mail.to, subject, body,
			 clock_usec(CLOCK_REALTIME), &message);
	if (r < 0) {
		fprintf(stderr, "rerouterd: cannot compose the message: %s\n", strerror(-r));
		goto out;
	}
	r = mail_xfer_new(cfg, message, &x, err, sizeof err);
	if (r < 0) {
		fprintf(stderr, "rerouterd: test mail not sent: %s\n", err);
		goto out;
	}
	/* The daemon's way, waited for: the same job on its own thread. */
	r = mail_xfer_start(t.event, x, on_test_sent, &t);
	if (r < 0) {
		fprintf(stderr, "rerouterd: cannot start the transfer: %s\n", strerror(-r));
		mail_xfer_free(x);
		goto out;
	}
	r = sd_event_loop(t.event);
	if (r < 0) {
		fprintf(stderr, "rerouterd: event loop failed: %s\n", strerror(-r));
		if (!t.finished)
			mail_xfer_abandon(x);
		goto out;
	}
	if (t.result == CURLE_OK) {
		printf("%s accepted the test message (reply code %ld): %s\n", cfg->mail.server, t.code,
		       t.desc);
		ret = 0;
	} else {
		fprintf(stderr, "test mail to %s failed (reply code %ld): %s\n", cfg->mail.server,
			t.code, t.desc);
	}
out:
	sd_event_unref(t.event);
	return ret;
}
