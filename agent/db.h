/* SQLite helpers shared by both databases: the one map from SQLite's result
 * codes to errno values, and what every schema owner needs to migrate. */
#pragma once

#include <sqlite3.h>

/* A negative errno for a SQLite result code (0 for SQLITE_OK). */
int db_errno(int rc);
/* sqlite3_exec of trusted SQL (no values: those are always bound). Logs
 * "<what>: <sqlite's message>" on failure; returns 0 or a negative errno. */
int db_exec(sqlite3 *db, const char *what, const char *sql);
/* A transaction that a failed COMMIT or RELEASE left open (SQLITE_FULL, an
 * I/O error) is rolled back: otherwise every later write of this connection
 * would run inside it and never be committed. Cheap: call it before a write
 * transaction on the daemon's long-lived connections. */
void db_heal(sqlite3 *db);
/* PRAGMA user_version: the schema version (0: the first release). */
int db_user_version(sqlite3 *db, int *ret);
/* A consistent copy of the open database at path (VACUUM INTO), before a
 * migration: path.vN.bak for version N, replaced when it exists. */
int db_backup_copy(sqlite3 *db, const char *path, int version);
