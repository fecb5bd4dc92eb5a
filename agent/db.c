#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "agent/db.h"
#include "agent/log.h"

int db_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE: return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return -EBUSY;
	case SQLITE_NOMEM: return -ENOMEM;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH: return -EACCES;
	case SQLITE_CANTOPEN: return -ENOENT;
	case SQLITE_FULL: return -ENOSPC;
	case SQLITE_CONSTRAINT: return -EINVAL;
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT: return -EBADMSG;
	default: return -EIO;
	}
}

void db_heal(sqlite3 *db)
{
	if (!db || sqlite3_get_autocommit(db))
		return;
	log_warnx("state database: rolling back a transaction that a failed commit left open");
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

int db_exec(sqlite3 *db, const char *what, const char *sql)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	if (rc == SQLITE_OK)
		return 0;
	log_errx("%s: %s", what, sqlite3_errmsg(db));
	return db_errno(rc);
}

int db_user_version(sqlite3 *db, int *ret)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);

	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		*ret = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return db_errno(rc);
}

int db_backup_copy(sqlite3 *db, const char *path, int version)
{
	char bak[4096];
	sqlite3_stmt *st = NULL;
	int rc;

	if (snprintf(bak, sizeof bak, "%s.v%d.bak", path, version) >= (int)sizeof bak)
		return -ENAMETOOLONG;
	/* VACUUM INTO refuses an existing file. */
	if (unlink(bak) < 0 && errno != ENOENT)
		return -errno;
	rc = sqlite3_prepare_v2(db, "VACUUM INTO ?1", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, bak, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_OK) {
		log_errx("%s: cannot make the backup copy %s: %s", path, bak, sqlite3_errmsg(db));
		return db_errno(rc);
	}
	log_notice("%s: schema version %d saved as %s before the migration", path, version, bak);
	return 0;
}
