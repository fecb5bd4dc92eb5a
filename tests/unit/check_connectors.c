/* The transport database: schema and view semantics, toggles in one
 * transaction, "really changed", missing connectors, a second writer. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actions/connectors.h"

static char dir[256], path[300];

static void setup(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/check_connectors.XXXXXX", t ? t : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/transport.db", dir);
}

static void teardown(void)
{
	char p[400];
	const char *sfx[] = { "", "-journal", "-wal", "-shm" };
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof p, "%s%s", path, sfx[i]);
		unlink(p);
	}
	rmdir(dir);
}

static sqlite3 *open_db(int busy_msec)
{
	sqlite3 *db = NULL;
	ck_assert_int_eq(conn_open(path, CONN_OPEN_CREATE, busy_msec, &db), 0);
	ck_assert_int_eq(conn_init(db, path), 0);
	return db;
}

static void exec_ok(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, err ? err : "?");
}

/* The route of an address space, or "" when it has none. */
static const char *route(sqlite3 *db, const char *space)
{
	static char buf[128];
	sqlite3_stmt *st;
	int n = 0;
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT nexthop FROM transport_routes WHERE "
					    "address_space = ?1", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, space, -1, SQLITE_STATIC);
	buf[0] = '\0';
	while (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(buf, sizeof buf, "%s", (const char *)sqlite3_column_text(st, 0));
		n++;
	}
	sqlite3_finalize(st);
	ck_assert_int_le(n, 1); /* one row per address space */
	return buf;
}

static int enabled_of(sqlite3 *db, const char *name, char *by, size_t size)
{
	sqlite3_stmt *st;
	int v = -1;
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT enabled, changed_by, changed_at FROM "
					    "send_connectors WHERE name = ?1", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		v = sqlite3_column_int(st, 0);
		if (by)
			snprintf(by, size, "%s@%s",
				 sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "",
				 sqlite3_column_text(st, 2) ? (const char *)sqlite3_column_text(st, 2) : "");
	}
	sqlite3_finalize(st);
	return v;
}

static void seed(sqlite3 *db)
{
	exec_ok(db, "INSERT INTO send_connectors (name, address_space, smart_host, cost, enabled) VALUES"
		    " ('site-a', '*', '[127.0.3.1]:25', 1, 1),"
		    " ('site-b', '*', '[127.0.3.2]:25', 1, 1),"
		    " ('cheap-off', '*', '[127.0.3.3]:25', 0, 0),"
		    " ('dom-hi', 'example.org', '[127.0.3.4]:25', 5, 1),"
		    " ('dom-lo-off', 'example.org', '[127.0.3.5]:25', 2, 0)");
}

START_TEST(test_view_semantics)
{
	sqlite3 *db = open_db(100);
	ck_assert_int_eq(conn_init(db, path), 0); /* idempotent */
	seed(db);
	/* Tie on cost: by name. Disabled skipped even when cheaper. Per address space. */
	ck_assert_str_eq(route(db, "*"), "smtp:[127.0.3.1]:25");
	ck_assert_str_eq(route(db, "example.org"), "smtp:[127.0.3.4]:25");
	ck_assert_str_eq(route(db, "other.org"), "");
	exec_ok(db, "UPDATE send_connectors SET enabled = 0 WHERE name = 'site-a'");
	ck_assert_str_eq(route(db, "*"), "smtp:[127.0.3.2]:25");
	exec_ok(db, "UPDATE send_connectors SET enabled = 1 WHERE name = 'cheap-off'");
	ck_assert_str_eq(route(db, "*"), "smtp:[127.0.3.3]:25"); /* lowest cost wins */
	exec_ok(db, "UPDATE send_connectors SET enabled = 1 WHERE name = 'dom-lo-off'");
	ck_assert_str_eq(route(db, "example.org"), "smtp:[127.0.3.5]:25");
	exec_ok(db, "UPDATE send_connectors SET enabled = 0");
	ck_assert_str_eq(route(db, "*"), "");
	/* The CHECK constraint keeps enabled boolean. */
	ck_assert_int_ne(sqlite3_exec(db, "UPDATE send_connectors SET enabled = 2", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
}
END_TEST

/* The guard of rerouterctl disable/remove: only the last enabled '*'. */
START_TEST(test_last_default)
{
	sqlite3 *db = open_db(100);
	exec_ok(db, "INSERT INTO send_connectors (name, address_space, smart_host, enabled) VALUES "
		    "('a', '*', 'h:25', 1), ('b', '*', 'h:25', 0), ('d', 'example.org', 'h:25', 1)");
	ck_assert_int_eq(conn_is_last_default(db, "a"), 1);
	ck_assert_int_eq(conn_is_last_default(db, "b"), 0);  /* disabled already */
	ck_assert_int_eq(conn_is_last_default(db, "d"), 0);  /* a domain falls back to '*' */
	ck_assert_int_eq(conn_is_last_default(db, "nope"), 0);
	exec_ok(db, "UPDATE send_connectors SET enabled = 1 WHERE name = 'b'");
	ck_assert_int_eq(conn_is_last_default(db, "a"), 0);
	sqlite3_close(db);
}
END_TEST

struct seen {
	char missing[256], changed[256];
};

static void on_missing(const char *name, void *ud)
{
	struct seen *s = ud;
	strncat(s->missing, name, sizeof s->missing - strlen(s->missing) - 2);
	strcat(s->missing, " ");
}

static void on_changed(const char *name, int enabled, void *ud)
{
	struct seen *s = ud;
	char b[64];
	snprintf(b, sizeof b, "%c%s ", enabled ? '+' : '-', name);
	strncat(s->changed, b, sizeof s->changed - strlen(s->changed) - 1);
}

START_TEST(test_toggle_really_changed)
{
	sqlite3 *db = open_db(100);
	struct seen s = { "", "" };
	struct conn_report rep = { on_missing, on_changed, &s };
	const struct conn_set down[] = { { "site-a", 0 }, { "site-b", 1 }, { "nope", 1 } };
	char by[128];

	seed(db);
	/* site-b is already enabled: one row really changes. */
	ck_assert_int_eq(conn_apply(db, down, 3, "rerouterd", CONN_TRIES, &rep), 1);
	ck_assert_str_eq(s.changed, "-site-a ");
	ck_assert_str_eq(s.missing, "nope ");
	ck_assert_int_eq(enabled_of(db, "site-a", by, sizeof by), 0);
	ck_assert_msg(!strncmp(by, "rerouterd@20", 12) && by[strlen(by) - 1] == 'Z', "stamp %s", by);
	ck_assert_int_eq(strlen(by), strlen("rerouterd@") + 20); /* YYYY-MM-DDTHH:MM:SSZ */
	ck_assert_int_eq(enabled_of(db, "site-b", by, sizeof by), 1);
	ck_assert_str_eq(by, "@"); /* untouched rows keep their stamp */
	ck_assert_str_eq(route(db, "*"), "smtp:[127.0.3.2]:25");

	/* Again: nothing changes, nothing is reported as changed. */
	memset(&s, 0, sizeof s);
	ck_assert_int_eq(conn_apply(db, down, 3, "rerouterd", CONN_TRIES, &rep), 0);
	ck_assert_str_eq(s.changed, "");

	/* An interrupted earlier attempt is recognised by its stamp. */
	ck_assert_int_eq(conn_changed_since(db, down, 2, "rerouterd", "2000-01-01T00:00:00Z"), 1);
	ck_assert_int_eq(conn_changed_since(db, down, 2, "rerouterd", "2999-01-01T00:00:00Z"), 0);
	ck_assert_int_eq(conn_changed_since(db, down, 2, "rerouterctl", "2000-01-01T00:00:00Z"), 0);
	/* An instance (rerouterd@NAME) knows its own writes, not another's. */
	struct conn_set up[2] = { { "site-a", 1 }, { "site-b", 0 } };
	ck_assert_int_eq(conn_apply(db, up, 2, "rerouterd@site2", CONN_TRIES, NULL), 2);
	ck_assert_int_eq(conn_changed_since(db, up, 2, "rerouterd@site2", "2000-01-01T00:00:00Z"), 1);
	ck_assert_int_eq(conn_changed_since(db, up, 2, "rerouterd", "2000-01-01T00:00:00Z"), 0);
	ck_assert_int_eq(enabled_of(db, "site-a", by, sizeof by), 1);
	ck_assert_msg(!strncmp(by, "rerouterd@site2@20", 18), "stamp %s", by);
	sqlite3_close(db);
}
END_TEST

START_TEST(test_missing_from_config)
{
	sqlite3 *db = open_db(100);
	struct seen s = { "", "" };
	char *dn_en[] = { "site-b", NULL }, *dn_dis[] = { "site-a", "ghost", NULL };
	char *up_en[] = { "site-a", "ghost", NULL }, *up_dis[] = { "site-b", "ghost2", NULL };
	struct cfg c = { 0 };

	seed(db);
	c.on_down = (struct cfg_toggle){ true, { dn_en, 1 }, { dn_dis, 2 }, 1 };
	c.on_up = (struct cfg_toggle){ true, { up_en, 2 }, { up_dis, 2 }, 1 };
	ck_assert_int_eq(conn_check_missing(db, &c, on_missing, &s), 2);
	ck_assert_str_eq(s.missing, "ghost ghost2 ");

	struct conn_set *v = NULL;
	size_t n = 0;
	ck_assert_int_eq(conn_set_from_toggle(&c.on_down, &v, &n), 0);
	ck_assert_int_eq(n, 3);
	ck_assert_str_eq(v[0].name, "site-b");
	ck_assert_int_eq(v[0].enabled, 1);
	ck_assert_int_eq(v[2].enabled, 0);
	free(v);
	sqlite3_close(db);

	/* No database at all: an error, not "nothing missing". */
	ck_assert_int_eq(conn_open("/nonexistent/dir/t.db", 0, 10, &db), -ENOENT);
}
END_TEST

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(test_second_writer)
{
	sqlite3 *db = open_db(50), *other = NULL;
	const struct conn_set down[] = { { "site-a", 0 }, { "site-b", 0 }, { "dom-hi", 0 } };

	seed(db);
	ck_assert_int_eq(sqlite3_open(path, &other), SQLITE_OK);
	/* An admin in sqlite3 with a write transaction open. */
	exec_ok(other, "BEGIN IMMEDIATE");
	exec_ok(other, "UPDATE send_connectors SET cost = 7 WHERE name = 'dom-hi'");
	double t0 = mono();
	ck_assert_int_eq(conn_apply(db, down, 3, "rerouterd", CONN_TRIES, NULL), -EBUSY);
	double waited = mono() - t0;
	/* Bounded: CONN_TRIES waits of the 50 ms busy_timeout, give or take. */
	ck_assert_msg(waited >= 0.1 && waited < 5.0, "waited %.3fs", waited);
	ck_assert_int_eq(sqlite3_get_autocommit(db), 1); /* no transaction left open */
	exec_ok(other, "ROLLBACK");
	ck_assert_int_eq(enabled_of(db, "site-a", NULL, 0), 1);
	ck_assert_int_eq(enabled_of(db, "site-b", NULL, 0), 1);

	/* A reader holding its snapshot blocks our COMMIT (rollback journal):
	 * the UPDATEs already ran, and must not survive. */
	sqlite3_stmt *rd;
	exec_ok(other, "BEGIN");
	ck_assert_int_eq(sqlite3_prepare_v2(other, "SELECT name FROM send_connectors", -1, &rd, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(rd), SQLITE_ROW);
	ck_assert_int_eq(conn_apply(db, down, 3, "rerouterd", CONN_TRIES, NULL), -EBUSY);
	ck_assert_int_eq(sqlite3_get_autocommit(db), 1);
	sqlite3_finalize(rd);
	exec_ok(other, "COMMIT");
	ck_assert_int_eq(enabled_of(db, "site-a", NULL, 0), 1);
	ck_assert_int_eq(enabled_of(db, "site-b", NULL, 0), 1);
	ck_assert_int_eq(enabled_of(db, "dom-hi", NULL, 0), 1);

	/* Once the other side is gone it works, all rows together. */
	ck_assert_int_eq(conn_apply(db, down, 3, "rerouterd", CONN_TRIES, NULL), 3);
	ck_assert_str_eq(route(db, "*"), "");
	sqlite3_close(other);
	sqlite3_close(db);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("connectors");
	TCase *tc = tcase_create("db");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_view_semantics);
	tcase_add_test(tc, test_last_default);
	tcase_add_test(tc, test_toggle_really_changed);
	tcase_add_test(tc, test_missing_from_config);
	tcase_add_test(tc, test_second_writer);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
