/* The monitoring snapshot of the state database (agent/ops.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "actions/alert.h"
#include "agent/ops.h"

static int step_int64(sqlite3 *db, const char *sql, int64_t *ret)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		*ret = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		*ret = 0;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : -EIO;
}

static int read_routing(sqlite3 *db, struct ops_snapshot *o)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db,
				    "SELECT pending_step, pending_error, pending_since_usec, attempts FROM routing "
				    "WHERE id = 1 AND pending_step IS NOT NULL",
				    -1, &st, NULL);

	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0), *e = (const char *)sqlite3_column_text(st, 1);
		o->routing_pending = true;
		snprintf(o->pending_step, sizeof o->pending_step, "%s", s ? s : "");
		snprintf(o->pending_error, sizeof o->pending_error, "%s", e ? e : "");
		o->pending_since_usec = (uint64_t)sqlite3_column_int64(st, 2);
		o->pending_attempts = sqlite3_column_int(st, 3);
		rc = SQLITE_DONE;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static int read_last_run(sqlite3 *db, struct ops_snapshot *o)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "SELECT id, at_usec, failed, link_failed, n_link FROM runs "
					"ORDER BY id DESC LIMIT 1", -1, &st, NULL);

	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		o->have_run = true;
		o->run_id = sqlite3_column_int64(st, 0);
		o->run_usec = (uint64_t)sqlite3_column_int64(st, 1);
		o->run_failed = sqlite3_column_int(st, 2) != 0;
		o->run_link_failed = sqlite3_column_int(st, 3);
		o->run_n_link = sqlite3_column_int(st, 4);
		rc = SQLITE_DONE;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int ops_snapshot_read(sqlite3 *db, struct ops_snapshot *o)
{
	bool txn = sqlite3_get_autocommit(db);
	int64_t v = 0, gate = 0;
	int r;

	memset(o, 0, sizeof *o);
	if (txn && sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return -EIO;
	if ((r = state_load(db, &o->s)) < 0)
		goto out;
	/* The gate reopens at a run where a backup path answers: a 'gate'
	 * event after the change (a hold down enforces [on_down] anyway). */
	if ((r = step_int64(db, "SELECT COUNT(*) FROM events WHERE kind = 'gate' AND at_usec >= "
				"(SELECT at_usec FROM changes ORDER BY id DESC LIMIT 1)", &gate)) < 0)
		goto out;
	o->gate_closed = o->s.persisted && o->s.state == LINK_DOWN && o->s.last_change_no_backup &&
			 gate == 0 && o->s.hold != LINK_DOWN;
	if ((r = read_routing(db, o)) < 0 || (r = read_last_run(db, o)) < 0 ||
	    (r = step_int64(db, "SELECT COUNT(*) FROM change_steps WHERE status = 'pending'", &v)) < 0)
		goto out;
	o->steps_pending = (int)v;
	if ((r = step_int64(db, "SELECT COUNT(*) FROM changes WHERE new_state = 'up'", &o->changes_up)) < 0 ||
	    (r = step_int64(db, "SELECT COUNT(*) FROM changes WHERE new_state = 'down'", &o->changes_down)) < 0)
		goto out;
	o->alerts_queued = alerts_count_pending(db);
	r = o->alerts_queued < 0 ? o->alerts_queued : 0;
out:
	if (txn)
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (r < 0)
		ops_snapshot_clear(o);
	return r;
}

void ops_snapshot_clear(struct ops_snapshot *o)
{
	state_saved_clear(&o->s);
}

int ops_open_ro(const struct cfg *cfg, sqlite3 **db)
{
	int r = state_open(cfg->agent.state_db, true, db);

	if (r == -ESTALE)
		fprintf(stderr, "rerouterctl: %s: an older schema: run 'rerouterctl init' (or start "
			"rerouterd) to migrate it\n", cfg->agent.state_db);
	else if (r < 0)
		fprintf(stderr, "rerouterctl: cannot open the state database %s: %s\n",
			cfg->agent.state_db, strerror(-r));
	return r;
}
