/* rerouterctl connector add | remove | set, connectors --json, and the guard
 * shared with disable: the last enabled connector of the '*' address space
 * is not removed or disabled without --force, since Postfix would then fall
 * back to relayhost or to MX lookups and send mail direct. Rows of a domain
 * fall back to '*', which is fine. Every change is stamped changed_by =
 * rerouterctl and recorded in the state database's events. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/actions.h"
#include "actions/connectors.h"
#include "agent/clock.h"
#include "agent/db.h"
#include "agent/json.h"
#include "agent/state.h"

#define CTL_BUSY_TIMEOUT_MSEC 5000

struct conn_row {
	char *address_space, *transport, *smart_host;
	long cost;
	int enabled;
};

static void row_clear(struct conn_row *r)
{
	free(r->address_space);
	free(r->transport);
	free(r->smart_host);
	memset(r, 0, sizeof *r);
}

static int open_db(const struct cfg *cfg, sqlite3 **db)
{
	int r = conn_open(cfg->transport.database, 0, CTL_BUSY_TIMEOUT_MSEC, db);

	if (r == 0 && (r = conn_prepare_writer(*db, cfg->transport.database)) == -ESTALE)
		r = conn_init(*db, cfg->transport.database);
	if (r < 0) {
		fprintf(stderr, "rerouterctl: %s: %s%s\n", cfg->transport.database, strerror(-r),
			r == -ENOENT ? " (run 'rerouterctl init')" : "");
		sqlite3_close(*db);
		*db = NULL;
	}
	return r;
}

/* ---- values ---- */

static bool printable_token(const char *s, const char *extra)
{
	if (!s || !*s)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr(extra, *p)))
			return false;
	return true;
}

/* Each returns 0, or prints what is wrong with which field and returns -EINVAL. */
static int check_value(const char *key, const char *v, long *cost)
{
	bool ok;
	char *end;

	if (!strcmp(key, "name"))
		ok = printable_token(v, "._-@+");
	else if (!strcmp(key, "smart_host"))
		/* A Postfix next hop: [1.2.3.4]:25, host:587, [v6:addr]:25. */
		ok = printable_token(v, "[]:._-");
	else if (!strcmp(key, "transport"))
		ok = printable_token(v, "._-");
	else if (!strcmp(key, "address_space"))
		ok = !strcmp(v, "*") || printable_token(v, ".-");
	else if (!strcmp(key, "cost")) {
		errno = 0;
		*cost = strtol(v, &end, 10);
		ok = *v && !*end && !errno && *cost >= 0 && *cost <= 1000000;
	} else if (!strcmp(key, "enabled"))
		ok = !strcmp(v, "0") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "no");
	else {
		fprintf(stderr, "rerouterctl: unknown field '%s' (smart_host, cost, address_space, transport, "
			"enabled)\n", key);
		return -EINVAL;
	}
	if (!ok) {
		fprintf(stderr, "rerouterctl: %s: invalid value '%s'%s\n", key, v,
			!strcmp(key, "cost") ? " (a whole number 0-1000000)" :
			!strcmp(key, "enabled") ? " (0, 1, yes or no)" :
			!strcmp(key, "address_space") ? " (a domain or *)" : "");
		return -EINVAL;
	}
	return 0;
}

/* ---- reading a row, the guard ---- */

static char *dup_col(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);
	return strdup(s ? s : "");
}

/* 1 found, 0 not, <0 error. */
static int row_read(sqlite3 *db, const char *name, struct conn_row *row)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "SELECT address_space, transport, smart_host, cost, enabled "
					"FROM send_connectors WHERE name = ?1", -1, &st, NULL);
	int r = -EIO;

	memset(row, 0, sizeof *row);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
	}
	if (rc == SQLITE_ROW) {
		row->address_space = dup_col(st, 0);
		row->transport = dup_col(st, 1);
		row->smart_host = dup_col(st, 2);
		row->cost = (long)sqlite3_column_int64(st, 3);
		row->enabled = sqlite3_column_int(st, 4);
		r = row->address_space && row->transport && row->smart_host ? 1 : -ENOMEM;
	} else if (rc == SQLITE_DONE)
		r = 0;
	sqlite3_finalize(st);
	if (r <= 0)
		row_clear(row);
	return r;
}

/* 1 when NAME is now an enabled connector of '*' and no other one is. */
int conn_is_last_default(sqlite3 *db, const char *name)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db,
				    "SELECT (SELECT COUNT(*) FROM send_connectors WHERE name = ?1 AND enabled = 1 "
				    "AND address_space = '*'), (SELECT COUNT(*) FROM send_connectors "
				    "WHERE name <> ?1 AND enabled = 1 AND address_space = '*')",
				    -1, &st, NULL);
	int r = -EIO;

	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			r = sqlite3_column_int(st, 0) == 1 && sqlite3_column_int(st, 1) == 0;
	}
	sqlite3_finalize(st);
	return r;
}

void conn_refuse_last_default(const char *name, const char *what)
{
	fprintf(stderr,
		"rerouterctl: refusing to %s %s: it is the last enabled connector of the '*' address space.\n"
		"Postfix would fall back to relayhost or to MX lookups and send mail direct.\n"
		"Enable or add another '*' connector first, or use --force.\n",
		what, name);
}

static void record_event(const struct cfg *cfg, const char *name, const char *detail)
{
	sqlite3 *db = NULL;
	int r = state_open(cfg->agent.state_db, false, &db);

	if (r == 0)
		r = state_add_event(db, "connector", name, detail, "rerouterctl");
	if (r < 0)
		fprintf(stderr, "rerouterctl: warning: %s: the change is not in the history: %s\n",
			cfg->agent.state_db, strerror(-r));
	state_close(db);
}

static bool named_in_config(const struct cfg *cfg, const char *name)
{
	const struct cfg_list *l[] = { &cfg->on_down.enable, &cfg->on_down.disable, &cfg->on_up.enable,
				       &cfg->on_up.disable };
	for (size_t i = 0; i < sizeof l / sizeof l[0]; i++)
		for (size_t j = 0; j < l[i]->n; j++)
			if (!strcmp(l[i]->v[j], name))
				return true;
	return false;
}

/* ---- add, remove, set ---- */

static int step_done(sqlite3 *db, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return 0;
	fprintf(stderr, "rerouterctl: %s\n", sqlite3_errmsg(db));
	return db_errno(rc);
}

static int ctl_add(const struct cfg *cfg, const char *name, const char *host, const char *cost_s,
		   const char *space, const char *transport)
{
	char now[32], detail[512];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long cost = 1;
	int r;

	if (check_value("name", name, &cost) < 0 || check_value("smart_host", host, &cost) < 0 ||
	    check_value("address_space", space, &cost) < 0 || check_value("transport", transport, &cost) < 0 ||
	    (cost_s && check_value("cost", cost_s, &cost) < 0))
		return 2;
	if (!cost_s)
		cost = 1;
	if (open_db(cfg, &db) < 0)
		return 1;
	clock_format_utc(clock_usec(CLOCK_REALTIME), now, sizeof now);
	if (sqlite3_prepare_v2(db, "INSERT INTO send_connectors (name, address_space, transport, smart_host, "
				   "cost, enabled, changed_at, changed_by) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, "
				   "'rerouterctl')", -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "rerouterctl: %s\n", sqlite3_errmsg(db));
		sqlite3_close(db);
		return 1;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, space, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, transport, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, host, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, cost);
	sqlite3_bind_text(st, 6, now, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (r != SQLITE_DONE) {
		fprintf(stderr, "rerouterctl: cannot add connector %s: %s\n", name,
			(r & 0xff) == SQLITE_CONSTRAINT ? "a connector of that name exists (connector set changes it)" :
							   sqlite3_errmsg(db));
		sqlite3_close(db);
		return 1;
	}
	sqlite3_close(db);
	snprintf(detail, sizeof detail, "added: %s:%s for %s, cost %ld, enabled", transport, host, space, cost);
	record_event(cfg, name, detail);
	printf("connector %s added (%s:%s for %s, cost %ld, enabled)\n", name, transport, host, space, cost);
	return 0;
}

static int ctl_remove(const struct cfg *cfg, const char *name, bool force)
{
	struct conn_row row;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int r, ret = 1;

	if (named_in_config(cfg, name) && !force) {
		fprintf(stderr, "rerouterctl: refusing to remove %s: %s names it in [on_down] or [on_up] "
			"(rerouterd would report it missing); use --force\n", name, cfg->path);
		return 1;
	}
	if (open_db(cfg, &db) < 0)
		return 1;
	/* Judged and done under the write lock: nobody enables or disables in between. */
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "rerouterctl: %s: %s\n", cfg->transport.database, sqlite3_errmsg(db));
		goto out;
	}
	if ((r = row_read(db, name, &row)) <= 0) {
		if (r == 0)
			fprintf(stderr, "rerouterctl: no connector named '%s' in %s\n", name, cfg->transport.database);
		else
			fprintf(stderr, "rerouterctl: %s: %s\n", cfg->transport.database, sqlite3_errmsg(db));
		goto out;
	}
	if (!force && conn_is_last_default(db, name) == 1) {
		conn_refuse_last_default(name, "remove");
		goto out_row;
	}
	if (sqlite3_prepare_v2(db, "DELETE FROM send_connectors WHERE name = ?1", -1, &st, NULL) != SQLITE_OK)
		goto out_row;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (step_done(db, st) < 0 || sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto out_row;
	char detail[512];
	snprintf(detail, sizeof detail, "removed: was %s:%s for %s, cost %ld, %s%s", row.transport,
		 row.smart_host, row.address_space, row.cost, row.enabled ? "enabled" : "disabled",
		 force ? " (--force)" : "");
	sqlite3_close(db);
	db = NULL;
	record_event(cfg, name, detail);
	printf("connector %s removed\n", name);
	ret = 0;
out_row:
	row_clear(&row);
out:
	if (db && !sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	return ret;
}

struct set_kv {
	char key[32];
	const char *value;
};

/* KEY=VALUE, '-' in keys read as '_' (smart-host=... like --smart-host). */
static int parse_kv(const char *arg, struct set_kv *kv)
{
	const char *eq = strchr(arg, '=');
	long cost;
	size_t n = eq ? (size_t)(eq - arg) : 0;

	if (!eq || n == 0 || n >= sizeof kv->key) {
		fprintf(stderr, "rerouterctl: '%s': expected KEY=VALUE\n", arg);
		return -EINVAL;
	}
	memcpy(kv->key, arg, n);
	kv->key[n] = '\0';
	for (char *p = kv->key; *p; p++)
		if (*p == '-')
			*p = '_';
	kv->value = eq + 1;
	return !strcmp(kv->key, "name") ? (fprintf(stderr, "rerouterctl: name: a connector is renamed by "
							     "adding a new one and removing the old\n"), -EINVAL) :
		check_value(kv->key, kv->value, &cost);
}

static int set_one(sqlite3 *db, const char *name, const struct set_kv *kv, const char *now)
{
	static const char *const sql[][2] = {
		{ "smart_host", "UPDATE send_connectors SET smart_host = ?2, changed_at = ?3, changed_by = 'rerouterctl' WHERE name = ?1" },
		{ "transport", "UPDATE send_connectors SET transport = ?2, changed_at = ?3, changed_by = 'rerouterctl' WHERE name = ?1" },
		{ "address_space", "UPDATE send_connectors SET address_space = ?2, changed_at = ?3, changed_by = 'rerouterctl' WHERE name = ?1" },
		{ "cost", "UPDATE send_connectors SET cost = CAST(?2 AS INTEGER), changed_at = ?3, changed_by = 'rerouterctl' WHERE name = ?1" },
		{ "enabled", "UPDATE send_connectors SET enabled = CASE WHEN ?2 IN ('1', 'yes') THEN 1 ELSE 0 END, changed_at = ?3, changed_by = 'rerouterctl' WHERE name = ?1" },
	};
	sqlite3_stmt *st = NULL;

	for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
		if (strcmp(kv->key, sql[i][0]))
			continue;
		if (sqlite3_prepare_v2(db, sql[i][1], -1, &st, NULL) != SQLITE_OK)
			return -EIO;
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, kv->value, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
		return step_done(db, st);
	}
	return -EINVAL;
}

/* Whether the values leave NAME out of the enabled '*' connectors. */
static bool leaves_default(const struct set_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((!strcmp(kv[i].key, "enabled") && (!strcmp(kv[i].value, "0") || !strcmp(kv[i].value, "no"))) ||
		    (!strcmp(kv[i].key, "address_space") && strcmp(kv[i].value, "*")))
			return true;
	return false;
}

static int ctl_set(const struct cfg *cfg, const char *name, char **args, int nargs, bool force)
{
	struct set_kv kv[8];
	struct conn_row row = { 0 };
	char now[32], detail[600] = "set:";
	sqlite3 *db = NULL;
	int ret = 1;

	if (nargs < 1 || nargs > 8) {
		fprintf(stderr, "rerouterctl: usage: connector set NAME KEY=VALUE... (smart_host, cost, "
			"address_space, transport, enabled)\n");
		return 2;
	}
	for (int i = 0; i < nargs; i++) {
		if (parse_kv(args[i], &kv[i]) < 0)
			return 2;
		if (!strcmp(kv[i].key, "enabled") && actions_ctl_managed(cfg, name))
			return 1;
		size_t k = strlen(detail);
		snprintf(detail + k, sizeof detail - k, " %s=%s", kv[i].key, kv[i].value);
	}
	if (open_db(cfg, &db) < 0)
		return 1;
	clock_format_utc(clock_usec(CLOCK_REALTIME), now, sizeof now);
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "rerouterctl: %s: %s\n", cfg->transport.database, sqlite3_errmsg(db));
		goto out;
	}
	if (row_read(db, name, &row) <= 0) {
		fprintf(stderr, "rerouterctl: no connector named '%s' in %s\n", name, cfg->transport.database);
		goto out;
	}
	if (!force && leaves_default(kv, (size_t)nargs) && conn_is_last_default(db, name) == 1) {
		conn_refuse_last_default(name, "disable");
		goto out;
	}
	for (int i = 0; i < nargs; i++)
		if (set_one(db, name, &kv[i], now) < 0)
			goto out;
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "rerouterctl: %s: %s\n", cfg->transport.database, sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_close(db);
	db = NULL;
	if (force) {
		size_t k = strlen(detail);
		snprintf(detail + k, sizeof detail - k, " (--force)");
	}
	record_event(cfg, name, detail);
	printf("connector %s %s; restart or reload %s for open connections to follow\n", name, detail,
	       cfg->transport.unit);
	ret = 0;
out:
	row_clear(&row);
	if (db && !sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	return ret;
}

int actions_ctl_connector(const struct cfg *cfg, int nargs, char **args)
{
	const char *host = NULL, *cost = NULL, *space = "*", *transport = "smtp";
	bool force = false;
	char *pos[10];
	int npos = 0;

	/* Options anywhere after the subcommand; the rest in order. */
	for (int i = 0; i < nargs; i++) {
		const char **opt = !strcmp(args[i], "--smart-host") ? &host : !strcmp(args[i], "--cost") ? &cost :
				   !strcmp(args[i], "--address-space") ? &space :
				   !strcmp(args[i], "--transport") ? &transport : NULL;
		if (opt && i + 1 < nargs)
			*opt = args[++i];
		else if (!strcmp(args[i], "--force"))
			force = true;
		else if (opt || (args[i][0] == '-' && args[i][1] == '-') || npos == 10)
			goto usage;
		else
			pos[npos++] = args[i];
	}
	if (npos == 2 && !strcmp(pos[0], "add") && host)
		return ctl_add(cfg, pos[1], host, cost, space, transport);
	if (npos == 2 && !strcmp(pos[0], "remove") && !host && !cost)
		return ctl_remove(cfg, pos[1], force);
	if (npos >= 2 && !strcmp(pos[0], "set") && !host && !cost)
		return ctl_set(cfg, pos[1], pos + 2, npos - 2, force);
usage:
	fprintf(stderr, "rerouterctl: usage: connector add NAME --smart-host HOST [--cost N] "
		"[--address-space D] [--transport T]\n"
		"                   connector remove NAME [--force]\n"
		"                   connector set NAME KEY=VALUE... [--force]\n");
	return 2;
}

/* ---- connectors --json ---- */

static const char *tcol(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

int actions_ctl_connectors_json(const struct cfg *cfg)
{
	struct json j;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc, ret = 1;

	if (conn_open(cfg->transport.database, 0, CTL_BUSY_TIMEOUT_MSEC, &db) < 0) {
		fprintf(stderr, "rerouterctl: %s: cannot open the transport database\n", cfg->transport.database);
		return 1;
	}
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT name, address_space, transport, smart_host, cost, enabled, changed_at, "
				   "changed_by FROM send_connectors ORDER BY address_space, cost, name",
			       -1, &st, NULL) != SQLITE_OK)
		goto fail;
	json_begin(&j, stdout);
	json_obj(&j, NULL);
	json_arr(&j, "connectors");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_obj(&j, NULL);
		json_str(&j, "name", tcol(st, 0));
		json_str(&j, "address_space", tcol(st, 1));
		json_str(&j, "transport", tcol(st, 2));
		json_str(&j, "smart_host", tcol(st, 3));
		json_int(&j, "cost", sqlite3_column_int64(st, 4));
		json_bool(&j, "enabled", sqlite3_column_int(st, 5));
		json_str(&j, "changed_at", tcol(st, 6));
		json_str(&j, "changed_by", tcol(st, 7));
		json_end_obj(&j);
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE ||
	    sqlite3_prepare_v2(db, "SELECT address_space, nexthop FROM transport_routes ORDER BY address_space",
			       -1, &st, NULL) != SQLITE_OK)
		goto fail;
	json_end_arr(&j);
	json_arr(&j, "routes");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_obj(&j, NULL);
		json_str(&j, "address_space", tcol(st, 0));
		json_str(&j, "nexthop", tcol(st, 1));
		json_end_obj(&j);
	}
	if (rc != SQLITE_DONE)
		goto fail;
	json_end_arr(&j);
	json_end_obj(&j);
	ret = 0;
	goto out;
fail:
	fprintf(stderr, "rerouterctl: %s: %s\n", cfg->transport.database, sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	return ret;
}
