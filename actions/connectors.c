/* The transport configuration database: schema, toggles in one transaction,
 * and the rerouterctl commands that read or change it. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "agent/clock.h"
#include "actions/actions.h"
#include "actions/connectors.h"
#include "agent/db.h"
#include "agent/log.h"
#include "agent/state.h"

/* rerouterctl is not on the event loop: it may wait longer for a writer. */
#define CTL_BUSY_TIMEOUT_MSEC 5000

#define sqlite_errno db_errno

/* Version 0 (the first release) had no transport column: its view gave
 * 'smtp:' || smart_host. */
#define CONN_TABLE_SQL                                                                \
	"CREATE TABLE IF NOT EXISTS send_connectors (\n"                              \
	"  name          TEXT PRIMARY KEY,\n"                                         \
	"  address_space TEXT NOT NULL DEFAULT '*',\n"                                \
	"  transport     TEXT NOT NULL DEFAULT 'smtp',\n"                             \
	"  smart_host    TEXT NOT NULL,\n"                                            \
	"  cost          INTEGER NOT NULL DEFAULT 1,\n"                               \
	"  enabled       INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),\n"     \
	"  changed_at    TEXT,\n"                                                     \
	"  changed_by    TEXT\n"                                                      \
	");\n"
/* One row per address space: the enabled connector of lowest cost, ties
 * broken by name. */
#define CONN_VIEW_SQL                                                                 \
	"CREATE VIEW transport_routes (address_space, nexthop) AS\n"                  \
	"  SELECT c.address_space, c.transport || ':' || c.smart_host\n"              \
	"  FROM send_connectors AS c\n"                                               \
	"  WHERE c.enabled = 1 AND NOT EXISTS (\n"                                    \
	"    SELECT 1 FROM send_connectors AS o\n"                                    \
	"    WHERE o.enabled = 1 AND o.address_space = c.address_space\n"             \
	"      AND (o.cost < c.cost OR (o.cost = c.cost AND o.name < c.name)));\n"
#define CONN_MIGRATE_V0_SQL                                                           \
	"ALTER TABLE send_connectors ADD COLUMN transport TEXT NOT NULL DEFAULT 'smtp';\n" \
	"DROP VIEW IF EXISTS transport_routes;\n" CONN_VIEW_SQL

static int table_exists(sqlite3 *db, const char *name, bool *ret)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE name = ?1", -1, &st, NULL);

	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
	}
	*ret = rc == SQLITE_ROW;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_errno(rc);
}

static int check_version(sqlite3 *db, const char *path, int *ret)
{
	int r = db_user_version(db, ret);

	if (r == 0 && *ret > CONN_SCHEMA_VERSION) {
		log_errx("%s: transport database schema version %d is newer than this rerouter's (%d): "
			 "refusing to change it", path, *ret, CONN_SCHEMA_VERSION);
		r = -EPROTO;
	}
	return r;
}

int conn_prepare_writer(sqlite3 *db, const char *path)
{
	int v, r;

	/* PERSIST: the journal file is kept and overwritten, so a toggle on a
	 * full filesystem (a dead link fills /var with queued mail) needs no
	 * new block. */
	if ((r = db_exec(db, path, "PRAGMA journal_mode = PERSIST")) < 0 ||
	    (r = check_version(db, path, &v)) < 0)
		return r;
	return v == CONN_SCHEMA_VERSION ? 0 : -ESTALE;
}

int conn_init(sqlite3 *db, const char *path)
{
	bool have_table, have_view;
	int v, r;

	if ((r = db_exec(db, path, "PRAGMA journal_mode = PERSIST")) < 0 ||
	    (r = check_version(db, path, &v)) < 0 ||
	    (r = table_exists(db, "send_connectors", &have_table)) < 0 ||
	    (r = table_exists(db, "transport_routes", &have_view)) < 0)
		return r;
	if (v < CONN_SCHEMA_VERSION && have_table && (r = db_backup_copy(db, path, v)) < 0)
		return r;
	if ((r = db_exec(db, path, "BEGIN IMMEDIATE")) < 0)
		return r;
	if (v < CONN_SCHEMA_VERSION && have_table)
		r = db_exec(db, path, CONN_MIGRATE_V0_SQL);
	else {
		r = db_exec(db, path, CONN_TABLE_SQL);
		if (r == 0 && !have_view)
			r = db_exec(db, path, CONN_VIEW_SQL);
	}
	/* Change every row and change it back: each page a toggle can touch is
	 * journaled once, so the persistent journal grows now, while there is
	 * room, to what a toggle will need (an update to the same value writes
	 * nothing, and so would journal nothing). */
	if (r == 0)
		r = db_exec(db, path,
			    "UPDATE send_connectors SET enabled = 1 - enabled, changed_by = COALESCE(changed_by, '') || "
			    "'-----------------------------------------------------';"
			    "UPDATE send_connectors SET enabled = 1 - enabled, changed_by = NULLIF("
			    "substr(changed_by, 1, length(changed_by) - 53), '');"
			    "PRAGMA user_version = 1");
	if (r == 0)
		r = db_exec(db, path, "COMMIT");
	if (r < 0) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	if (v < CONN_SCHEMA_VERSION && have_table)
		log_notice("%s: transport database migrated from schema version %d to %d", path, v,
			   CONN_SCHEMA_VERSION);
	return 0;
}

int conn_diff(sqlite3 *db, const struct conn_set *v, size_t n)
{
	sqlite3_stmt *st = NULL;
	int rc, count = 0;

	rc = sqlite3_prepare_v2(db, "SELECT enabled FROM send_connectors WHERE name = ?1", -1, &st, NULL);
	for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, v[i].name, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			count += sqlite3_column_int(st, 0) != (v[i].enabled ? 1 : 0);
			rc = SQLITE_OK;
		} else if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? count : db_errno(rc);
}

int conn_open(const char *path, int flags, int busy_timeout_msec, sqlite3 **ret)
{
	sqlite3 *db = NULL;
	int oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	int rc, r;

	if (flags & CONN_OPEN_CREATE)
		oflags |= SQLITE_OPEN_CREATE;
	rc = sqlite3_open_v2(path, &db, oflags, NULL);
	if (rc != SQLITE_OK) {
		r = sqlite_errno(rc);
		goto fail;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, busy_timeout_msec);
	*ret = db;
	return 0;
fail:
	sqlite3_close(db);
	*ret = NULL;
	return r;
}

static void rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

/* One attempt. The missing and changed arrays get flags per index, reported by the caller
 * only after a successful commit. */
static int apply_once(sqlite3 *db, const struct conn_set *v, size_t n, const char *by,
		      unsigned char *missing, unsigned char *changed)
{
	sqlite3_stmt *exists = NULL, *upd = NULL;
	char now[32];
	int count = 0, rc, r;

	clock_format_utc(clock_usec(CLOCK_REALTIME), now, sizeof now);
	memset(missing, 0, n);
	memset(changed, 0, n);

	/* IMMEDIATE: take the write lock first, so a busy database fails here,
	 * before anything is changed, and not halfway. */
	rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		r = sqlite_errno(rc);
		goto out;
	}
	rc = sqlite3_prepare_v2(db, "SELECT 1 FROM send_connectors WHERE name = ?1", -1, &exists,
				NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db,
					"UPDATE send_connectors SET enabled = ?2, changed_at = ?3, "
					"changed_by = ?4 WHERE name = ?1 AND enabled IS NOT ?2",
					-1, &upd, NULL);
	if (rc != SQLITE_OK) {
		r = sqlite_errno(rc);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(exists);
		sqlite3_bind_text(exists, 1, v[i].name, -1, SQLITE_STATIC);
		rc = sqlite3_step(exists);
		if (rc == SQLITE_DONE) {
			missing[i] = 1;
			continue;
		}
		if (rc != SQLITE_ROW) {
			r = sqlite_errno(rc);
			goto out;
		}
		sqlite3_reset(upd);
		sqlite3_bind_text(upd, 1, v[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_int(upd, 2, v[i].enabled ? 1 : 0);
		sqlite3_bind_text(upd, 3, now, -1, SQLITE_STATIC);
		sqlite3_bind_text(upd, 4, by, -1, SQLITE_STATIC);
		rc = sqlite3_step(upd);
		if (rc != SQLITE_DONE) {
			r = sqlite_errno(rc);
			goto out;
		}
		if (sqlite3_changes(db) > 0) {
			changed[i] = 1;
			count++;
		}
	}
	rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		r = sqlite_errno(rc);
		goto out;
	}
	r = count;
out:
	sqlite3_finalize(exists);
	sqlite3_finalize(upd);
	if (r < 0)
		rollback(db);
	return r;
}

int conn_apply(sqlite3 *db, const struct conn_set *v, size_t n, const char *by, unsigned tries,
	       const struct conn_report *rep)
{
	unsigned char *missing = calloc(n ? n : 1, 1), *changed = calloc(n ? n : 1, 1);
	int r = -ENOMEM;

	if (!missing || !changed)
		goto out;
	if (tries == 0)
		tries = 1;
	for (unsigned t = 0; t < tries; t++) {
		/* Each try already waited busy_timeout inside SQLite. */
		r = apply_once(db, v, n, by, missing, changed);
		if (r != -EBUSY)
			break;
	}
	if (r < 0 || !rep)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (missing[i] && rep->missing)
			rep->missing(v[i].name, rep->ud);
		if (changed[i] && rep->changed)
			rep->changed(v[i].name, v[i].enabled, rep->ud);
	}
out:
	free(missing);
	free(changed);
	return r;
}

int conn_set_from_toggle(const struct cfg_toggle *t, struct conn_set **ret, size_t *ret_n)
{
	size_t n = t->enable.n + t->disable.n, k = 0;
	struct conn_set *v = calloc(n ? n : 1, sizeof *v);

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < t->enable.n; i++)
		v[k++] = (struct conn_set){ t->enable.v[i], 1 };
	for (size_t i = 0; i < t->disable.n; i++)
		v[k++] = (struct conn_set){ t->disable.v[i], 0 };
	*ret = v;
	*ret_n = n;
	return 0;
}

int conn_changed_since(sqlite3 *db, const struct conn_set *v, size_t n, const char *by,
		       const char *since)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(db,
				"SELECT 1 FROM send_connectors WHERE name = ?1 AND enabled = ?2 "
				"AND changed_by = ?3 AND changed_at >= ?4",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlite_errno(rc);
	for (size_t i = 0; i < n && r == 0; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, v[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, v[i].enabled ? 1 : 0);
		sqlite3_bind_text(st, 3, by, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, since, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			r = 1;
		else if (rc != SQLITE_DONE)
			r = sqlite_errno(rc);
	}
	sqlite3_finalize(st);
	return r;
}

static int check_list(sqlite3_stmt *st, const struct cfg_list *l,
		      void (*report)(const char *name, void *ud), void *ud)
{
	int count = 0;

	for (size_t i = 0; i < l->n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, l->v[i], -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_DONE) {
			if (report)
				report(l->v[i], ud);
			count++;
		} else if (rc != SQLITE_ROW)
			return sqlite_errno(rc);
	}
	return count;
}

int conn_check_missing(sqlite3 *db, const struct cfg *cfg, void (*report)(const char *name, void *ud),
		       void *ud)
{
	const struct cfg_list *lists[] = { &cfg->on_down.enable, &cfg->on_down.disable,
					   &cfg->on_up.enable, &cfg->on_up.disable };
	sqlite3_stmt *st = NULL;
	int rc, r, total = 0;

	rc = sqlite3_prepare_v2(db, "SELECT 1 FROM send_connectors WHERE name = ?1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlite_errno(rc);
	for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
		/* A name listed twice (enable in one section, disable in the
		 * other) is reported once. */
		struct cfg_list only = { NULL, 0 };
		char *buf[1];
		for (size_t j = 0; j < lists[i]->n; j++) {
			bool seen = false;
			for (size_t k = 0; k < i && !seen; k++)
				for (size_t m = 0; m < lists[k]->n && !seen; m++)
					seen = !strcmp(lists[k]->v[m], lists[i]->v[j]);
			for (size_t m = 0; m < j && !seen; m++)
				seen = !strcmp(lists[i]->v[m], lists[i]->v[j]);
			if (seen)
				continue;
			buf[0] = lists[i]->v[j];
			only.v = buf;
			only.n = 1;
			r = check_list(st, &only, report, ud);
			if (r < 0)
				goto out;
			total += r;
		}
	}
	r = total;
out:
	sqlite3_finalize(st);
	return r;
}

int actions_check_connectors(const struct cfg *cfg, void (*report)(const char *name, void *ud),
			     void *ud)
{
	sqlite3 *db = NULL;
	int r;

	r = conn_open(cfg->transport.database, 0, 1000, &db);
	if (r < 0)
		return r;
	r = conn_check_missing(db, cfg, report, ud);
	sqlite3_close(db);
	return r;
}

/* rerouterctl */

int actions_ctl_init(const struct cfg *cfg)
{
	sqlite3 *db = NULL;
	int r;

	struct stat st;
	bool existed = stat(cfg->transport.database, &st) == 0;

	r = conn_open(cfg->transport.database, CONN_OPEN_CREATE, CTL_BUSY_TIMEOUT_MSEC, &db);
	if (r == 0)
		r = conn_init(db, cfg->transport.database);
	sqlite3_close(db);
	/* Postfix's trivial-rewrite reads the map as user postfix: a new file
	 * must not inherit a strict umask of root's. */
	if (r == 0 && !existed && chmod(cfg->transport.database, 0644) < 0)
		r = -errno;
	if (r < 0) {
		fprintf(stderr, "rerouterctl: %s: cannot create the transport database: %s\n",
			cfg->transport.database, strerror(-r));
		return 1;
	}
	printf("%s: transport database ready\n", cfg->transport.database);
	return 0;
}

static int open_ctl(const struct cfg *cfg, sqlite3 **db)
{
	int r = conn_open(cfg->transport.database, 0, CTL_BUSY_TIMEOUT_MSEC, db);

	if (r < 0)
		fprintf(stderr, "rerouterctl: %s: %s%s\n", cfg->transport.database, strerror(-r),
			r == -ENOENT ? " (run 'rerouterctl init')" : "");
	return r;
}

static const char *col(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	return s ? (const char *)s : "-";
}

int actions_ctl_connectors(const struct cfg *cfg)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc, ret = 1;

	if (open_ctl(cfg, &db) < 0)
		return 1;
	rc = sqlite3_prepare_v2(db,
				"SELECT name, address_space, smart_host, cost, enabled, changed_at, "
				"changed_by FROM send_connectors ORDER BY address_space, cost, name",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	printf("%-24s %-20s %-28s %5s %-8s %s\n", "CONNECTOR", "ADDRESS SPACE", "SMART HOST",
	       "COST", "ENABLED", "CHANGED");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		printf("%-24s %-20s %-28s %5d %-8s %s %s\n", col(st, 0), col(st, 1), col(st, 2),
		       sqlite3_column_int(st, 3), sqlite3_column_int(st, 4) ? "yes" : "no",
		       col(st, 5), sqlite3_column_type(st, 6) == SQLITE_NULL ? "" : col(st, 6));
	if (rc != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	st = NULL;

	rc = sqlite3_prepare_v2(db, "SELECT address_space, nexthop FROM transport_routes "
				    "ORDER BY address_space", -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	printf("\n%-20s %s\n", "ADDRESS SPACE", "ROUTE");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		printf("%-20s %s\n", col(st, 0), col(st, 1));
	if (rc != SQLITE_DONE)
		goto fail;
	ret = 0;
	goto out;
fail:
	fprintf(stderr, "rerouterctl: %s: %s\n", cfg->transport.database, sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ret;
}

struct ctl_toggle {
	bool missing;
};

static void ctl_missing(const char *name, void *ud)
{
	(void)name;
	((struct ctl_toggle *)ud)->missing = true;
}

static void ctl_changed(const char *name, int enabled, void *ud)
{
	const struct log_field f[] = {
		{ "REROUTER_CONNECTOR", name },
		{ "REROUTER_ACTION", enabled ? "enable" : "disable" },
	};
	(void)ud;
	log_fields(LOG_NOTICE, f, "connector %s %s by hand", name, enabled ? "enabled" : "disabled");
}

static bool in_list(const struct cfg_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], name))
			return true;
	return false;
}

/* The section the daemon enforces now (a hold counts), or NULL; read from the
 * state database (none yet: nothing is enforced). */
static const struct cfg_toggle *managing_section(const struct cfg *cfg, enum link_state *ret)
{
	struct state_saved s;
	sqlite3 *db = NULL;
	enum link_state st = LINK_UNKNOWN;

	if (state_open(cfg->agent.state_db, true, &db) == 0 && state_load(db, &s) == 0) {
		st = s.hold != LINK_UNKNOWN ? s.hold : s.state;
		state_saved_clear(&s);
	}
	state_close(db);
	*ret = st;
	return st == LINK_UP ? &cfg->on_up : st == LINK_DOWN ? &cfg->on_down : NULL;
}

static void record_toggle(const struct cfg *cfg, const char *name, int enabled)
{
	sqlite3 *db = NULL;
	int r = state_open(cfg->agent.state_db, false, &db);

	if (r == 0)
		r = state_add_event(db, enabled ? "enable" : "disable", name, "by hand", "rerouterctl");
	if (r < 0)
		fprintf(stderr, "rerouterctl: warning: %s: the toggle is not in the history: %s\n",
			cfg->agent.state_db, strerror(-r));
	state_close(db);
}

bool actions_ctl_managed(const struct cfg *cfg, const char *name)
{
	enum link_state st;
	const struct cfg_toggle *sec = managing_section(cfg, &st);

	if (!sec || !(in_list(&sec->enable, name) || in_list(&sec->disable, name)))
		return false;
	fprintf(stderr,
		"rerouterctl: connector %s is managed by [%s] while the link is %s: rerouterd would "
		"undo this at its next run.\nTo pin the routes of the other state, use "
		"'rerouterctl hold %s' (and 'rerouterctl release' later).\n",
		name, st == LINK_UP ? "on_up" : "on_down", link_state_upper(st), st == LINK_UP ? "down" : "up");
	return true;
}

int actions_ctl_toggle(const struct cfg *cfg, const char *name, int enabled, bool force)
{
	struct ctl_toggle t = { false };
	struct conn_report rep = { ctl_missing, ctl_changed, &t };
	struct conn_set one = { name, enabled ? 1 : 0 };
	sqlite3 *db = NULL;
	int r;

	if (actions_ctl_managed(cfg, name))
		return 1;
	if (open_ctl(cfg, &db) < 0)
		return 1;
	if ((r = conn_prepare_writer(db, cfg->transport.database)) == -ESTALE)
		r = conn_init(db, cfg->transport.database);
	if (r == 0 && !enabled && !force && conn_is_last_default(db, name) == 1) {
		conn_refuse_last_default(name, "disable");
		sqlite3_close(db);
		return 1;
	}
	if (r == 0)
		r = conn_apply(db, &one, 1, "rerouterctl", CONN_TRIES, &rep);
	sqlite3_close(db);
	if (r < 0) {
		fprintf(stderr, "rerouterctl: %s: cannot change connector %s: %s\n",
			cfg->transport.database, name, strerror(-r));
		return 1;
	}
	if (t.missing) {
		fprintf(stderr, "rerouterctl: no connector named '%s' in %s\n", name,
			cfg->transport.database);
		return 1;
	}
	if (r == 0) {
		printf("connector %s was already %s\n", name, enabled ? "enabled" : "disabled");
		return 0;
	}
	record_toggle(cfg, name, enabled);
	printf("connector %s %s; restart or reload %s for open connections to follow\n",
		       name, enabled ? "enabled" : "disabled", cfg->transport.unit);
	return 0;
}
