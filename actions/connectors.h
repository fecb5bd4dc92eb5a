/* The transport configuration database (SPEC section 5): send connectors and
 * the transport_routes view that Postfix reads through a sqlite: map. */
#pragma once

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* The schema (version 1, SPEC section 5) is owned by connectors.c. */
#define CONN_SCHEMA_VERSION 1

enum { CONN_OPEN_CREATE = 1 };

struct conn_set {
	const char *name;
	int enabled; /* 0 or 1 */
};

/* How many times conn_apply() tries BEGIN IMMEDIATE/COMMIT against another
 * writer, each try waiting up to the connection's busy_timeout. */
#define CONN_TRIES 3

/* Opens the database (creating the file only with CONN_OPEN_CREATE) with a
 * busy_timeout. Returns 0 or a negative errno (-ENOENT: no such database). */
int conn_open(const char *path, int flags, int busy_timeout_msec, sqlite3 **ret);
/* Creates the table and the view if missing, migrates an older schema in
 * place (a backup copy next to the file first; path names it), refuses a
 * newer one (-EPROTO), and prepares the rollback journal (PERSIST) so that a
 * toggle needs no new disk space. */
int conn_init(sqlite3 *db, const char *path);
/* On every writing connection: the journal stays allocated (PERSIST, a
 * per-connection setting), and the schema version is checked (-EPROTO: newer;
 * -ESTALE: older, not yet migrated). */
int conn_prepare_writer(sqlite3 *db, const char *path);

/* How many of the listed connectors differ from the database (missing ones
 * are not counted), or a negative errno. Reads only. */
int conn_diff(sqlite3 *db, const struct conn_set *v, size_t n);

struct conn_report {
	void (*missing)(const char *name, void *ud);             /* not in the table */
	void (*changed)(const char *name, int enabled, void *ud); /* after the commit */
	void *ud;
};

/* Sets `enabled` of every listed connector in ONE transaction, stamping
 * changed_at (UTC, ISO 8601) and changed_by on the rows that really change.
 * Returns how many rows really changed (0: the database already had these
 * values), -EBUSY when another writer held the database through `tries`
 * attempts, another negative errno on error; on any error nothing changed.
 * Names missing from the table are reported and otherwise left out. */
int conn_apply(sqlite3 *db, const struct conn_set *v, size_t n, const char *by, unsigned tries,
	       const struct conn_report *rep);

/* The [on_down] or [on_up] lists as one vector (enable first). *ret is
 * allocated (free() it), its names point into cfg. */
int conn_set_from_toggle(const struct cfg_toggle *t, struct conn_set **ret, size_t *ret_n);

/* 1 when one of the listed connectors already has its wanted value and was
 * stamped by `by` at or after `since` (an ISO 8601 string of clock_format_utc):
 * an earlier attempt interrupted by a crash changed it. */
int conn_changed_since(sqlite3 *db, const struct conn_set *v, size_t n, const char *by,
		       const char *since);

/* Reports connectors named in [on_down]/[on_up] but missing from the table;
 * returns how many, or a negative errno. */
int conn_check_missing(sqlite3 *db, const struct cfg *cfg, void (*report)(const char *name, void *ud),
		       void *ud);

/* "YYYY-MM-DDTHH:MM:SSZ" for a CLOCK_REALTIME time in microseconds. */

/* 1 when name is an enabled connector of '*' and no other one is (removing
 * or disabling it would leave Postfix without a route: relayhost or MX). */
int conn_is_last_default(sqlite3 *db, const char *name);
/* Says so on stderr, with the way out (another connector, or --force). */
void conn_refuse_last_default(const char *name, const char *what);
