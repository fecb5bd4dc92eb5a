/* The state database's schema: its one owner. Every table of the file is
 * created and migrated here (the agent's state and window, the changes and
 * their steps, the events, the routing bookkeeping, the alert queue). */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>

#define STATE_SCHEMA_VERSION 1

/* On a database opened for writing: create the schema of a new file, or
 * migrate an older one in place (a backup copy next to it first, then one
 * transaction). A database newer than this program is refused (-EPROTO,
 * logged). path names the file for the backup and the messages. */
int schema_state_prepare(sqlite3 *db, const char *path);
/* On a read-only open: 0 when the schema is the current one; -EPROTO for a
 * newer one, -ESTALE for an older one that `rerouterctl init` (or the daemon)
 * migrates. */
int schema_state_check(sqlite3 *db, const char *path);
