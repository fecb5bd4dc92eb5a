#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#include "agent/clock.h"
#include "agent/db.h"
#include "agent/log.h"
#include "agent/schema.h"
#include "agent/state.h"
#include "agent/strbuf.h"

static int sql_err(sqlite3 *db, int rc, const char *what)
{
	log_errx("state database: %s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	return db_errno(rc);
}

static int exec(sqlite3 *db, const char *sql)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : sql_err(db, rc, sql);
}

/* Prepare, bind int64 parameters (?1, ?2, ...), step to completion. */
static int run_stmt(sqlite3 *db, const char *sql, int n, const int64_t *v)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	int r = 0;

	if (rc != SQLITE_OK) {
		r = sql_err(db, rc, "prepare");
		goto out;
	}
	for (int i = 0; i < n; i++)
		sqlite3_bind_int64(st, i + 1, v[i]);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE)
		r = sql_err(db, rc, "step");
out:
	sqlite3_finalize(st);
	return r;
}

/* "file:PATH?immutable=1" with the characters a URI gives meaning to escaped. */
static int immutable_uri(const char *path, char *buf, size_t size)
{
	size_t k = (size_t)snprintf(buf, size, "file:");

	for (const char *p = path; *p && k + 4 < size; p++) {
		if (*p == '?' || *p == '#' || *p == '%')
			k += (size_t)snprintf(buf + k, size - k, "%%%02X", (unsigned char)*p);
		else
			buf[k++] = *p;
	}
	return snprintf(buf + k, size - k, "?immutable=1") >= (int)(size - k) ? -ENAMETOOLONG : 0;
}

/* A reader who may not write the directory (a member of the daemon's group)
 * cannot create the -shm a WAL database needs while the daemon is stopped.
 * With no -wal, or an empty one, the main file holds everything: it is read
 * as immutable (no locks, no -shm). */
static bool wal_is_empty(const char *path)
{
	char wal[4096];
	struct stat st;

	if (snprintf(wal, sizeof wal, "%s-wal", path) >= (int)sizeof wal)
		return false;
	return stat(wal, &st) < 0 ? errno == ENOENT : st.st_size == 0;
}

static int open_immutable(const char *path, sqlite3 **ret)
{
	char uri[4200];
	sqlite3 *db = NULL;
	int r;

	*ret = NULL;
	if (!wal_is_empty(path))
		return -EACCES;
	if ((r = immutable_uri(path, uri, sizeof uri)) < 0)
		return r;
	int rc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
	r = rc != SQLITE_OK ? db_errno(rc) : schema_state_check(db, path);
	if (r < 0) {
		sqlite3_close(db);
		return r;
	}
	*ret = db;
	return 0;
}

int state_open(const char *path, bool readonly, sqlite3 **ret)
{
	sqlite3 *db = NULL;
	int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	int rc, r;

	*ret = NULL;
	rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		/* The caller says which database and why: the errno is enough. */
		r = db_errno(rc);
		goto fail;
	}
	/* The daemon writes while rerouterctl reads: wait for a lock briefly
	 * rather than failing at once. A writer (the daemon) waits on its loop,
	 * so only a little: its callers log and retry. */
	sqlite3_busy_timeout(db, readonly ? 2000 : 250);
	if (!readonly) {
		/* WAL + synchronous=FULL: a committed transaction survives kill -9
		 * and power loss; readers never block the writer. */
		/* cache_size: the daemon runs for months, and SQLite's default page
		 * cache (2 MiB a connection) would grow with the history; the pages
		 * a run touches are few. */
		if ((r = exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
				  "PRAGMA cache_size=-512;")) < 0 ||
		    (r = schema_state_prepare(db, path)) < 0)
			goto fail;
	} else {
		/* A first read, silent: it fails when the -shm cannot be made. */
		if ((rc = sqlite3_exec(db, "SELECT 1 FROM sqlite_master LIMIT 1", NULL, NULL, NULL)) != SQLITE_OK) {
			r = db_errno(rc);
			sqlite3_close(db);
			return open_immutable(path, ret) == 0 ? 0 : r;
		}
		if ((r = schema_state_check(db, path)) < 0)
			goto fail;
	}
	*ret = db;
	return 0;
fail:
	sqlite3_close(db);
	return r;
}

sqlite3 *state_close(sqlite3 *db)
{
	sqlite3_close(db);
	return NULL;
}

void state_saved_clear(struct state_saved *s)
{
	free(s->failed);
	memset(s, 0, sizeof *s);
}

int state_load(sqlite3 *db, struct state_saved *ret)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	memset(ret, 0, sizeof *ret);
	ret->state = ret->hold = LINK_UNKNOWN;
	rc = sqlite3_prepare_v2(db,
				"SELECT state, since_usec, hold_state, hold_until_usec, "
				"(SELECT MAX(id) FROM changes), daemon_pid, heartbeat_usec, "
				"(SELECT no_backup FROM changes ORDER BY id DESC LIMIT 1) "
				"FROM agent_state WHERE id = 1",
				-1, &st, NULL);
	if (rc != SQLITE_OK) {
		r = sql_err(db, rc, "load state");
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);
		ret->persisted = true;
		ret->state = link_state_parse(s);
		ret->since_usec = (uint64_t)sqlite3_column_int64(st, 1);
		if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
			ret->hold = link_state_parse((const char *)sqlite3_column_text(st, 2));
			ret->hold_until_usec = (uint64_t)sqlite3_column_int64(st, 3);
		} else
			ret->hold = LINK_UNKNOWN;
		ret->last_change_id = sqlite3_column_int64(st, 4);
		ret->daemon_pid = sqlite3_column_int(st, 5);
		ret->heartbeat_usec = (uint64_t)sqlite3_column_int64(st, 6);
		ret->last_change_no_backup = sqlite3_column_int(st, 7) != 0;
	} else if (rc != SQLITE_DONE) {
		r = sql_err(db, rc, "load state");
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;

	rc = sqlite3_prepare_v2(db, "SELECT failed, at_usec FROM runs WHERE in_window = 1 ORDER BY id", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		r = sql_err(db, rc, "load window");
		goto out;
	}
	size_t cap = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (ret->n == cap) {
			cap = cap ? cap * 2 : 16;
			bool *nv = realloc(ret->failed, cap * sizeof *nv);
			if (!nv) {
				r = -ENOMEM;
				goto out;
			}
			ret->failed = nv;
		}
		ret->failed[ret->n++] = sqlite3_column_int(st, 0) != 0;
		ret->last_usec = (uint64_t)sqlite3_column_int64(st, 1);
	}
	if (rc != SQLITE_DONE)
		r = sql_err(db, rc, "load window");
out:
	sqlite3_finalize(st);
	if (r < 0)
		state_saved_clear(ret);
	return r;
}

static int put_heartbeat(sqlite3 *db, uint64_t at_usec)
{
	int64_t v = (int64_t)at_usec;
	return run_stmt(db, "UPDATE agent_state SET heartbeat_usec = ?1 WHERE id = 1", 1, &v);
}

static int put_state(sqlite3 *db, enum link_state s, uint64_t since_usec)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(db,
				"INSERT INTO agent_state (id, state, since_usec) VALUES (1, ?1, ?2) "
				"ON CONFLICT (id) DO UPDATE SET state = excluded.state, "
				"since_usec = excluded.since_usec",
				-1, &st, NULL);
	if (rc != SQLITE_OK) {
		r = sql_err(db, rc, "store state");
		goto out;
	}
	sqlite3_bind_text(st, 1, link_state_str(s), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)since_usec);
	if ((rc = sqlite3_step(st)) != SQLITE_DONE)
		r = sql_err(db, rc, "store state");
out:
	sqlite3_finalize(st);
	return r;
}

int state_set(sqlite3 *db, enum link_state s, uint64_t since_usec, bool clear_window)
{
	int r;

	db_heal(db);
	if ((r = exec(db, "BEGIN IMMEDIATE;")) < 0)
		return r;
	if ((r = put_state(db, s, since_usec)) < 0 ||
	    (clear_window && (r = exec(db, "UPDATE runs SET in_window = 0 WHERE in_window = 1;")) < 0))
		goto fail;
	if ((r = exec(db, "COMMIT;")) < 0)
		goto fail;
	return 0;
fail:
	exec(db, "ROLLBACK;");
	return r;
}

int state_clear_window(sqlite3 *db)
{
	return exec(db, "UPDATE runs SET in_window = 0 WHERE in_window = 1;");
}

static bool is_link_check(const struct cfg_check *checks, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (checks[i].role == ROLE_LINK && !strcmp(checks[i].name, name))
			return true;
	return false;
}

int state_rejudge_window(sqlite3 *db, const struct cfg_check *checks, size_t n_checks,
			 unsigned failed_checks)
{
	sqlite3_stmt *st = NULL, *up = NULL;
	int64_t run = -1;
	unsigned n_link = 0, link_failed = 0;
	int rc, r;

	db_heal(db);
	if ((r = exec(db, "BEGIN IMMEDIATE;")) < 0)
		return r;
	rc = sqlite3_prepare_v2(db,
				"SELECT r.id, c.name, c.passed OR c.outcome = 'cancelled' FROM runs r LEFT JOIN run_checks c "
				"ON c.run_id = r.id AND c.role = 'link' WHERE r.in_window = 1 ORDER BY r.id, c.seq",
				-1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db,
					"UPDATE runs SET failed = ?2, link_failed = ?3, n_link = ?4, "
					"in_window = ?5 WHERE id = ?1",
					-1, &up, NULL);
	if (rc != SQLITE_OK) {
		r = sql_err(db, rc, "judge the window again");
		goto fail;
	}
	/* One row per stored link check (one NULL row for a run without any);
	 * a run's verdict is written when the next run's rows begin. */
	for (;;) {
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			r = sql_err(db, rc, "judge the window again");
			goto fail;
		}
		bool more = rc == SQLITE_ROW;
		int64_t id = more ? sqlite3_column_int64(st, 0) : -1;
		if (id != run && run >= 0) {
			sqlite3_reset(up);
			sqlite3_bind_int64(up, 1, run);
			sqlite3_bind_int(up, 2, link_failed >= failed_checks);
			sqlite3_bind_int(up, 3, (int)link_failed);
			sqlite3_bind_int(up, 4, (int)n_link);
			sqlite3_bind_int(up, 5, n_link > 0);
			if ((rc = sqlite3_step(up)) != SQLITE_DONE) {
				r = sql_err(db, rc, "judge the window again");
				goto fail;
			}
		}
		if (!more)
			break;
		if (id != run) {
			run = id;
			n_link = link_failed = 0;
		}
		const char *name = (const char *)sqlite3_column_text(st, 1);
		if (name && is_link_check(checks, n_checks, name)) {
			n_link++;
			link_failed += sqlite3_column_int(st, 2) == 0;
		}
	}
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	st = up = NULL;
	if ((r = exec(db, "COMMIT;")) < 0)
		goto fail;
	return 0;
fail:
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	exec(db, "ROLLBACK;");
	return r;
}

static int insert_run(sqlite3 *db, const struct state_run *run)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;
	int64_t v[4] = { (int64_t)run->at_usec, run->failed, run->link_failed, run->n_link };

	if ((r = run_stmt(db,
			  "INSERT INTO runs (at_usec, failed, link_failed, n_link, in_window) "
			  "VALUES (?1, ?2, ?3, ?4, 1)",
			  4, v)) < 0)
		return r;
	int64_t run_id = sqlite3_last_insert_rowid(db);

	rc = sqlite3_prepare_v2(db,
				"INSERT INTO run_checks (run_id, seq, name, type, target, role, passed, "
				"outcome, reason, elapsed_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
				-1, &st, NULL);
	if (rc != SQLITE_OK) {
		r = sql_err(db, rc, "store run");
		goto out;
	}
	for (size_t i = 0; i < run->n_results; i++) {
		const struct probe_result *pr = &run->results[i];
		const struct cfg_check *c = pr->check;

		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, run_id);
		sqlite3_bind_int64(st, 2, (int64_t)i);
		sqlite3_bind_text(st, 3, c->name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 4, cfg_check_type_str(c->type), -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 5, c->target ? c->target : "", -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 6, c->role == ROLE_BACKUP ? "backup" : "link", -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 7, probe_passed(pr));
		sqlite3_bind_text(st, 8, probe_outcome_str(pr->outcome), -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 9, pr->reason, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 10, (int64_t)pr->elapsed_ms);
		if ((rc = sqlite3_step(st)) != SQLITE_DONE) {
			r = sql_err(db, rc, "store check result");
			goto out;
		}
	}
out:
	sqlite3_finalize(st);
	return r;
}

int state_window_text(sqlite3 *db, char **ret)
{
	sqlite3_stmt *st = NULL;
	struct strbuf b = { 0 };
	int64_t last_run = -1;
	unsigned nrun = 0;
	int rc, r = 0;

	*ret = NULL;
	rc = sqlite3_prepare_v2(db,
				"SELECT r.id, r.at_usec, r.failed, r.link_failed, r.n_link, c.name, c.type, "
				"c.target, c.role, c.passed, c.reason, c.elapsed_ms, c.outcome "
				"FROM runs r LEFT JOIN run_checks c ON c.run_id = r.id "
				"WHERE r.in_window = 1 ORDER BY r.id, c.seq",
				-1, &st, NULL);
	if (rc != SQLITE_OK) {
		r = sql_err(db, rc, "read window");
		goto out;
	}
	strbuf_printf(&b, "%s", "");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		if (id != last_run) {
			char when[64];
			clock_format_local((uint64_t)sqlite3_column_int64(st, 1), when, sizeof when);
			nrun++;
			strbuf_printf(&b, "%sRun %u at %s: %s (%d of %d link checks failed)\n",
				  nrun > 1 ? "\n" : "", nrun, when,
				  sqlite3_column_int(st, 2) ? "FAILED" : "PASSED", sqlite3_column_int(st, 3),
				  sqlite3_column_int(st, 4));
			last_run = id;
		}
		if (sqlite3_column_type(st, 5) == SQLITE_NULL)
			continue;
		const char *reason = (const char *)sqlite3_column_text(st, 10);
		bool passed = sqlite3_column_int(st, 9) != 0;
		strbuf_printf(&b, "  %-20s %-4s %-30s %s%s  %s  %lld ms\n", (const char *)sqlite3_column_text(st, 5),
			  (const char *)sqlite3_column_text(st, 6), (const char *)sqlite3_column_text(st, 7),
			  passed ? "pass"
			  : strcmp((const char *)sqlite3_column_text(st, 12), "cancelled") ? "fail" : "cancelled",
			  strcmp((const char *)sqlite3_column_text(st, 8), "backup") ? "" : " (backup)",
			  reason && *reason ? reason : (const char *)sqlite3_column_text(st, 12),
			  (long long)sqlite3_column_int64(st, 11));
	}
	if (rc != SQLITE_DONE) {
		r = sql_err(db, rc, "read window");
		goto out;
	}
	if (b.failed) {
		r = -ENOMEM;
		goto out;
	}
	*ret = b.s;
	b.s = NULL;
out:
	sqlite3_finalize(st);
	free(b.s);
	return r;
}

static int insert_change(sqlite3 *db, const struct state_change *ch, const char *runs_text,
			 int64_t *ret_id)
{
	sqlite3_stmt *st = NULL;
	char at[32];
	int rc, r = 0;

	clock_format_utc(ch->at_usec, at, sizeof at);
	rc = sqlite3_prepare_v2(db,
				"INSERT INTO changes (at, at_usec, new_state, old_state, prev_since_usec, "
				"no_backup, runs_text, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
				-1, &st, NULL);
	if (rc != SQLITE_OK) {
		r = sql_err(db, rc, "record change");
		goto out;
	}
	sqlite3_bind_text(st, 1, at, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, (int64_t)ch->at_usec);
	sqlite3_bind_text(st, 3, link_state_str(ch->new_state), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, link_state_str(ch->old_state), -1, SQLITE_STATIC);
	if (ch->prev_since_usec)
		sqlite3_bind_int64(st, 5, (int64_t)ch->prev_since_usec);
	else
		sqlite3_bind_null(st, 5);
	sqlite3_bind_int(st, 6, ch->no_backup);
	sqlite3_bind_text(st, 7, runs_text, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 8, ch->reason ? ch->reason : "runs", -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) != SQLITE_DONE) {
		r = sql_err(db, rc, "record change");
		goto out;
	}
	*ret_id = sqlite3_last_insert_rowid(db);
	sqlite3_finalize(st);

	rc = sqlite3_prepare_v2(db,
				"INSERT INTO change_steps (change_id, step, seq, status, updated_at) "
				"VALUES (?1, ?2, ?3, 'pending', ?4)",
				-1, &st, NULL);
	if (rc != SQLITE_OK) {
		r = sql_err(db, rc, "record steps");
		goto out;
	}
	for (int s = 0; s < _STEP_MAX; s++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, *ret_id);
		sqlite3_bind_text(st, 2, change_step_str((enum change_step)s), -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, s);
		sqlite3_bind_text(st, 4, at, -1, SQLITE_TRANSIENT);
		if ((rc = sqlite3_step(st)) != SQLITE_DONE) {
			r = sql_err(db, rc, "record steps");
			goto out;
		}
	}
out:
	sqlite3_finalize(st);
	return r;
}

int state_commit_run(sqlite3 *db, const struct state_run *run, size_t window,
		     const struct state_change *change, int64_t *ret_change_id)
{
	char *text = NULL;
	int64_t id = 0;
	int r;

	db_heal(db);
	if ((r = exec(db, "BEGIN IMMEDIATE;")) < 0)
		return r;
	if ((r = insert_run(db, run)) < 0)
		goto fail;
	/* Only the last `window` runs of the window count. */
	int64_t w = (int64_t)window;
	if ((r = run_stmt(db,
			  "UPDATE runs SET in_window = 0 WHERE in_window = 1 AND id NOT IN "
			  "(SELECT id FROM runs WHERE in_window = 1 ORDER BY id DESC LIMIT ?1)",
			  1, &w)) < 0)
		goto fail;
	if ((r = put_heartbeat(db, run->at_usec)) < 0)
		goto fail;
	if (change) {
		if ((r = state_window_text(db, &text)) < 0 ||
		    (r = insert_change(db, change, change->runs_text ? change->runs_text : text, &id)) < 0 ||
		    (r = put_state(db, change->new_state, change->at_usec)) < 0 ||
		    (r = state_clear_window(db)) < 0)
			goto fail;
	}
	int64_t keep = STATE_KEEP_RUNS;
	if ((r = run_stmt(db,
			  "DELETE FROM run_checks WHERE run_id IN (SELECT id FROM runs WHERE in_window = 0 "
			  "AND id NOT IN (SELECT id FROM runs ORDER BY id DESC LIMIT ?1))",
			  1, &keep)) < 0 ||
	    (r = run_stmt(db,
			  "DELETE FROM runs WHERE in_window = 0 AND id NOT IN "
			  "(SELECT id FROM runs ORDER BY id DESC LIMIT ?1)",
			  1, &keep)) < 0)
		goto fail;
	if ((r = exec(db, "COMMIT;")) < 0)
		goto fail;
	free(text);
	if (ret_change_id)
		*ret_change_id = id;
	return 0;
fail:
	exec(db, "ROLLBACK;");
	free(text);
	return r;
}

int state_record_change(sqlite3 *db, const struct state_change *change, int64_t *ret_change_id)
{
	int64_t id = 0;
	int r;

	db_heal(db);
	if ((r = exec(db, "BEGIN IMMEDIATE;")) < 0)
		return r;
	if ((r = insert_change(db, change, change->runs_text ? change->runs_text : "", &id)) < 0 ||
	    (r = put_state(db, change->new_state, change->at_usec)) < 0 ||
	    (r = state_clear_window(db)) < 0)
		goto fail;
	if ((r = exec(db, "COMMIT;")) < 0)
		goto fail;
	if (ret_change_id)
		*ret_change_id = id;
	return 0;
fail:
	exec(db, "ROLLBACK;");
	return r;
}

int state_add_event(sqlite3 *db, const char *kind, const char *subject, const char *detail,
		    const char *by)
{
	sqlite3_stmt *st = NULL;
	uint64_t now = clock_usec(CLOCK_REALTIME);
	char at[32];
	int rc;

	clock_format_utc(now, at, sizeof at);
	rc = sqlite3_prepare_v2(db,
				"INSERT INTO events (at, at_usec, kind, subject, detail, changed_by) "
				"VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
				-1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, at, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, (int64_t)now);
		sqlite3_bind_text(st, 3, kind, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 4, subject ? subject : "", -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 5, detail ? detail : "", -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 6, by, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sql_err(db, rc, "record an event");
}

int state_set_hold(sqlite3 *db, enum link_state hold, uint64_t until_usec, const char *by)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db,
				"UPDATE agent_state SET hold_state = ?1, hold_until_usec = ?2, hold_by = ?3 "
				"WHERE id = 1",
				-1, &st, NULL);
	if (rc == SQLITE_OK) {
		if (hold == LINK_UNKNOWN) {
			sqlite3_bind_null(st, 1);
			sqlite3_bind_null(st, 3);
		} else {
			sqlite3_bind_text(st, 1, link_state_str(hold), -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 3, by, -1, SQLITE_TRANSIENT);
		}
		if (hold != LINK_UNKNOWN && until_usec)
			sqlite3_bind_int64(st, 2, (int64_t)until_usec);
		else
			sqlite3_bind_null(st, 2);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sql_err(db, rc, "store the hold");
	return sqlite3_changes(db) > 0 ? 0 : -ENOENT;
}

int state_heartbeat(sqlite3 *db, uint64_t at_usec)
{
	return put_heartbeat(db, at_usec);
}

int state_set_daemon(sqlite3 *db, int pid, uint64_t heartbeat_usec)
{
	int64_t v[2] = { pid, (int64_t)heartbeat_usec };
	return run_stmt(db, "UPDATE agent_state SET daemon_pid = ?1, heartbeat_usec = ?2 WHERE id = 1", 2, v);
}
