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

static int json_checks(sqlite3 *db, int64_t run_id)
{
	sqlite3_stmt *st = NULL;
	int rc, n = 0;

	if (sqlite3_prepare_v2(db, "SELECT name, type, target, role, passed, outcome, reason, elapsed_ms "
				   "FROM run_checks WHERE run_id = ?1 ORDER BY seq", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, run_id);
	printf("[");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		printf("%s{\"name\": ", n++ ? ", " : "");
		json_str(stdout, col(st, 0));
		printf(", \"type\": ");
		json_str(stdout, col(st, 1));
		printf(", \"target\": ");
		json_str(stdout, col(st, 2));
		printf(", \"role\": ");
		json_str(stdout, col(st, 3));
		printf(", \"passed\": %s, \"outcome\": ", sqlite3_column_int(st, 4) ? "true" : "false");
		json_str(stdout, col(st, 5));
		printf(", \"reason\": ");
		json_str(stdout, col(st, 6));
		printf(", \"duration_seconds\": ");
		json_seconds(stdout, (uint64_t)sqlite3_column_int64(st, 7) * 1000);
		printf("}");
	}
	printf("]");
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void json_state(const struct cfg *cfg, const struct ops_snapshot *o)
{
	const struct state_saved *s = &o->s;
	unsigned nf = 0;

	for (size_t i = 0; i < s->n; i++)
		nf += s->failed[i];
	printf("{\"state\": \"%s\", \"since\": ", link_state_str(s->state));
	json_time(stdout, s->since_usec);
	printf(", \"since_seconds\": ");
	json_seconds(stdout, age_of(s->since_usec));
	printf(", \"hold\": ");
	if (s->hold == LINK_UNKNOWN)
		printf("null");
	else {
		printf("{\"state\": \"%s\", \"until\": ", link_state_str(s->hold));
		json_time(stdout, s->hold_until_usec);
		printf("}");
	}
	printf(", \"gate_closed\": %s, \"daemon\": {\"pid\": ", o->gate_closed ? "true" : "false");
	if (s->daemon_pid > 0)
		printf("%d", s->daemon_pid);
	else
		printf("null");
	printf(", \"heartbeat\": ");
	json_time(stdout, s->heartbeat_usec);
	printf(", \"heartbeat_age_seconds\": ");
	if (s->heartbeat_usec)
		json_seconds(stdout, age_of(s->heartbeat_usec));
	else
		printf("null");
	printf("}, \"window\": {\"runs\": %zu, \"failed\": %u, \"passed\": %zu, \"size\": %u, "
	       "\"failed_runs\": %u, \"passed_runs\": %u}",
	       s->n, nf, s->n - nf, cfg->agent.runs, cfg->agent.failed_runs, cfg->agent.passed_runs);
}

static void json_pending(const struct ops_snapshot *o)
{
	printf(", \"pending\": {\"routing\": ");
	if (!o->routing_pending)
		printf("null");
	else {
		printf("{\"step\": ");
		json_str(stdout, o->pending_step);
		printf(", \"error\": ");
		json_str(stdout, o->pending_error);
		printf(", \"since\": ");
		json_time(stdout, o->pending_since_usec);
		printf(", \"attempts\": %d}", o->pending_attempts);
	}
	printf(", \"steps\": %d, \"alerts_queued\": %d}", o->steps_pending, o->alerts_queued);
}

int agent_ctl_status_json(const struct cfg *cfg)
{
	struct ops_snapshot o;
	sqlite3 *db = NULL;
	int r = 2;

	if (ops_open_ro(cfg, &db) < 0)
		return 2;
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK || ops_snapshot_read(db, &o) < 0) {
		fprintf(stderr, "rerouterctl: %s: cannot read: %s\n", cfg->agent.state_db, sqlite3_errmsg(db));
		goto out;
	}
	json_state(cfg, &o);
	printf(", \"last_run\": ");
	if (!o.have_run)
		printf("null");
	else {
		printf("{\"at\": ");
		json_time(stdout, o.run_usec);
		printf(", \"failed\": %s, \"link_failed\": %d, \"link_checks\": %d, \"checks\": ",
		       o.run_failed ? "true" : "false", o.run_link_failed, o.run_n_link);
		if (json_checks(db, o.run_id) < 0) {
			fprintf(stderr, "rerouterctl: cannot read the checks: %s\n", sqlite3_errmsg(db));
			printf("null}}\n");
			goto out_snap;
		}
		printf("}");
	}
	json_pending(&o);
	printf("}\n");
	r = o.s.persisted && o.s.state == LINK_UP ? 0 : 1;
out_snap:
	ops_snapshot_clear(&o);
out:
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	state_close(db);
	return r;
}

static void json_change(sqlite3_stmt *st, sqlite3_stmt *steps)
{
	uint64_t at = (uint64_t)sqlite3_column_int64(st, 1);
	int n = 0;

	printf("{\"type\": \"change\", \"id\": %lld, \"at\": ", (long long)sqlite3_column_int64(st, 0));
	json_time(stdout, at);
	printf(", \"from\": ");
	json_str(stdout, col(st, 3));
	printf(", \"to\": ");
	json_str(stdout, col(st, 2));
	printf(", \"reason\": ");
	json_str(stdout, col(st, 6));
	printf(", \"no_backup\": %s, \"previous_held_seconds\": ", sqlite3_column_int(st, 5) ? "true" : "false");
	if (sqlite3_column_type(st, 4) == SQLITE_NULL)
		printf("null");
	else {
		uint64_t prev = (uint64_t)sqlite3_column_int64(st, 4);
		json_seconds(stdout, at > prev ? at - prev : 0);
	}
	printf(", \"steps\": [");
	sqlite3_reset(steps);
	sqlite3_bind_int64(steps, 1, sqlite3_column_int64(st, 0));
	while (sqlite3_step(steps) == SQLITE_ROW) {
		printf("%s{\"step\": ", n++ ? ", " : "");
		json_str(stdout, col(steps, 0));
		printf(", \"status\": ");
		json_str(stdout, col(steps, 1));
		printf(", \"attempts\": %d, \"detail\": ", sqlite3_column_int(steps, 2));
		json_str(stdout, col(steps, 3));
		printf("}");
	}
	printf("]}");
}

static void json_event(sqlite3_stmt *ev)
{
	printf("{\"type\": \"event\", \"at\": ");
	json_time(stdout, (uint64_t)sqlite3_column_int64(ev, 0));
	printf(", \"event\": ");
	json_str(stdout, col(ev, 1));
	printf(", \"subject\": ");
	json_str(stdout, col(ev, 2));
	printf(", \"detail\": ");
	json_str(stdout, col(ev, 3));
	printf(", \"changed_by\": ");
	json_str(stdout, col(ev, 4));
	printf("}");
}

int agent_ctl_history_json(const struct cfg *cfg, unsigned n)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL, *steps = NULL, *ev = NULL;
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
	printf("{\"history\": [");
	while ((rc_c == SQLITE_ROW || rc_e == SQLITE_ROW) && shown < n) {
		bool change = rc_c == SQLITE_ROW &&
			      (rc_e != SQLITE_ROW || sqlite3_column_int64(st, 1) >= sqlite3_column_int64(ev, 0));
		printf("%s", shown++ ? ",\n  " : "\n  ");
		if (change) {
			json_change(st, steps);
			rc_c = sqlite3_step(st);
		} else {
			json_event(ev);
			rc_e = sqlite3_step(ev);
		}
	}
	printf("\n]}\n");
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
