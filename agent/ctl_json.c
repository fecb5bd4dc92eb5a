/* rerouterctl status --json, history --json: one document on stdout with
 * stable keys (documented in rerouterctl(8)); times ISO 8601 UTC, durations
 * in seconds. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/clock.h"
#include "agent/json.h"
#include "agent/ops.h"

static const char *col(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);
	return s ? s : "";
}

static uint64_t age_of(uint64_t realtime_usec)
{
	uint64_t now = clock_usec(CLOCK_REALTIME);
	return realtime_usec && now > realtime_usec ? now - realtime_usec : 0;
}

static int json_checks(struct json *j, sqlite3 *db, int64_t run_id)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT name, type, target, role, passed, outcome, reason, elapsed_ms "
				   "FROM run_checks WHERE run_id = ?1 ORDER BY seq", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, run_id);
	json_arr(j, "checks");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_obj(j, NULL);
		json_str(j, "name", col(st, 0));
		json_str(j, "type", col(st, 1));
		json_str(j, "target", col(st, 2));
		json_str(j, "role", col(st, 3));
		json_bool(j, "passed", sqlite3_column_int(st, 4));
		json_str(j, "outcome", col(st, 5));
		json_str(j, "reason", col(st, 6));
		json_seconds(j, "duration_seconds", (uint64_t)sqlite3_column_int64(st, 7) * 1000);
		json_end_obj(j);
	}
	json_end_arr(j);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void json_state(struct json *j, const struct cfg *cfg, const struct ops_snapshot *o)
{
	const struct state_saved *s = &o->s;
	unsigned nf = 0;

	for (size_t i = 0; i < s->n; i++)
		nf += s->failed[i];
	json_str(j, "state", link_state_str(s->state));
	json_time(j, "since", s->since_usec);
	json_seconds(j, "since_seconds", age_of(s->since_usec));
	if (s->hold == LINK_UNKNOWN)
		json_null(j, "hold");
	else {
		json_obj(j, "hold");
		json_str(j, "state", link_state_str(s->hold));
		json_time(j, "until", s->hold_until_usec);
		json_end_obj(j);
	}
	json_bool(j, "gate_closed", o->gate_closed);
	json_obj(j, "daemon");
	if (s->daemon_pid > 0)
		json_int(j, "pid", s->daemon_pid);
	else
		json_null(j, "pid");
	json_time(j, "heartbeat", s->heartbeat_usec);
	if (s->heartbeat_usec)
		json_seconds(j, "heartbeat_age_seconds", age_of(s->heartbeat_usec));
	else
		json_null(j, "heartbeat_age_seconds");
	json_end_obj(j);
	json_obj(j, "window");
	json_int(j, "runs", (long long)s->n);
	json_int(j, "failed", nf);
	json_int(j, "passed", (long long)(s->n - nf));
	json_int(j, "size", cfg->agent.runs);
	json_int(j, "failed_runs", cfg->agent.failed_runs);
	json_int(j, "passed_runs", cfg->agent.passed_runs);
	json_end_obj(j);
}

static void json_pending(struct json *j, const struct ops_snapshot *o)
{
	json_obj(j, "pending");
	if (!o->routing_pending)
		json_null(j, "routing");
	else {
		json_obj(j, "routing");
		json_str(j, "step", o->pending_step);
		json_str(j, "error", o->pending_error);
		json_time(j, "since", o->pending_since_usec);
		json_int(j, "attempts", o->pending_attempts);
		json_end_obj(j);
	}
	json_int(j, "steps", o->steps_pending);
	json_int(j, "alerts_queued", o->alerts_queued);
	json_end_obj(j);
}

int agent_ctl_status_json(const struct cfg *cfg)
{
	struct ops_snapshot o;
	struct json j;
	bool checks_failed = false;
	sqlite3 *db = NULL;
	int r = 2;

	if (ops_open_ro(cfg, &db) < 0)
		return 2;
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK || ops_snapshot_read(db, &o) < 0) {
		fprintf(stderr, "rerouterctl: %s: cannot read: %s\n", cfg->agent.state_db, sqlite3_errmsg(db));
		goto out;
	}
	json_begin(&j, stdout);
	json_obj(&j, NULL);
	json_state(&j, cfg, &o);
	if (!o.have_run)
		json_null(&j, "last_run");
	else {
		json_obj(&j, "last_run");
		json_time(&j, "at", o.run_usec);
		json_bool(&j, "failed", o.run_failed);
		json_int(&j, "link_failed", o.run_link_failed);
		json_int(&j, "link_checks", o.run_n_link);
		if (json_checks(&j, db, o.run_id) < 0) {
			fprintf(stderr, "rerouterctl: cannot read the checks: %s\n", sqlite3_errmsg(db));
			checks_failed = true;
		}
		json_end_obj(&j);
	}
	json_pending(&j, &o);
	json_end_obj(&j);
	r = checks_failed ? 2 : o.s.persisted && o.s.state == LINK_UP ? 0 : 1;
	ops_snapshot_clear(&o);
out:
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	state_close(db);
	return r;
}

static void json_change(struct json *j, sqlite3_stmt *st, sqlite3_stmt *steps)
{
	uint64_t at = (uint64_t)sqlite3_column_int64(st, 1);

	json_obj(j, NULL);
	json_str(j, "type", "change");
	json_int(j, "id", sqlite3_column_int64(st, 0));
	json_time(j, "at", at);
	json_str(j, "from", col(st, 3));
	json_str(j, "to", col(st, 2));
	json_str(j, "reason", col(st, 6));
	json_bool(j, "no_backup", sqlite3_column_int(st, 5));
	if (sqlite3_column_type(st, 4) == SQLITE_NULL)
		json_null(j, "previous_held_seconds");
	else {
		uint64_t prev = (uint64_t)sqlite3_column_int64(st, 4);
		json_seconds(j, "previous_held_seconds", at > prev ? at - prev : 0);
	}
	json_arr(j, "steps");
	sqlite3_reset(steps);
	sqlite3_bind_int64(steps, 1, sqlite3_column_int64(st, 0));
	while (sqlite3_step(steps) == SQLITE_ROW) {
		json_obj(j, NULL);
		json_str(j, "step", col(steps, 0));
		json_str(j, "status", col(steps, 1));
		json_int(j, "attempts", sqlite3_column_int(steps, 2));
		json_str(j, "detail", col(steps, 3));
		json_end_obj(j);
	}
	json_end_arr(j);
	json_end_obj(j);
}

static void json_event(struct json *j, sqlite3_stmt *ev)
{
	json_obj(j, NULL);
	json_str(j, "type", "event");
	json_time(j, "at", (uint64_t)sqlite3_column_int64(ev, 0));
	json_str(j, "event", col(ev, 1));
	json_str(j, "subject", col(ev, 2));
	json_str(j, "detail", col(ev, 3));
	json_str(j, "changed_by", col(ev, 4));
	json_end_obj(j);
}

int agent_ctl_history_json(const struct cfg *cfg, unsigned n)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL, *steps = NULL, *ev = NULL;
	struct json j;
	unsigned shown = 0;
	int r = 2;

	if (ops_open_ro(cfg, &db) < 0)
		return 2;
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT id, at_usec, new_state, old_state, prev_since_usec, no_backup, reason "
				   "FROM changes ORDER BY id DESC LIMIT ?1", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT step, status, attempts, detail FROM change_steps "
				   "WHERE change_id = ?1 ORDER BY seq", -1, &steps, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT at_usec, kind, subject, detail, changed_by FROM events "
				   "ORDER BY id DESC LIMIT ?1", -1, &ev, NULL) != SQLITE_OK) {
		fprintf(stderr, "rerouterctl: %s: %s\n", cfg->agent.state_db, sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_int64(st, 1, n);
	sqlite3_bind_int64(ev, 1, n);
	int rc_c = sqlite3_step(st), rc_e = sqlite3_step(ev);
	json_begin(&j, stdout);
	json_obj(&j, NULL);
	json_arr(&j, "history");
	while ((rc_c == SQLITE_ROW || rc_e == SQLITE_ROW) && shown++ < n) {
		bool change = rc_c == SQLITE_ROW &&
			      (rc_e != SQLITE_ROW || sqlite3_column_int64(st, 1) >= sqlite3_column_int64(ev, 0));
		if (change) {
			json_change(&j, st, steps);
			rc_c = sqlite3_step(st);
		} else {
			json_event(&j, ev);
			rc_e = sqlite3_step(ev);
		}
	}
	json_end_arr(&j);
	json_end_obj(&j);
	if ((rc_c != SQLITE_ROW && rc_c != SQLITE_DONE) || (rc_e != SQLITE_ROW && rc_e != SQLITE_DONE)) {
		fprintf(stderr, "rerouterctl: cannot read the history: %s\n", sqlite3_errmsg(db));
		goto out;
	}
	r = 0;
out:
	sqlite3_finalize(ev);
	sqlite3_finalize(steps);
	sqlite3_finalize(st);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	state_close(db);
	return r;
}
