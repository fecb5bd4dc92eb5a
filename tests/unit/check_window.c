/* Maintenance windows: midnight crossing, several windows, DST in
 * Europe/Brussels, clock jumps; boundaries never skipped or doubled. */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/window.h"

/* Days bits: Monday = bit 0 ... Sunday = bit 6. */
enum { MON = 1, TUE = 2, WED = 4, THU = 8, FRI = 16, SAT = 32, SUN = 64 };

static time_t local(int y, int mo, int d, int h, int mi, int isdst)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
			 .tm_min = mi, .tm_isdst = isdst };
	return mktime(&tm);
}

static void tz(const char *zone)
{
	/* Without tzdata, the POSIX rule that Europe/Brussels follows since 1996. */
	if (!strcmp(zone, "Europe/Brussels") && access("/usr/share/zoneinfo/Europe/Brussels", R_OK) != 0)
		zone = "CET-1CEST,M3.5.0,M10.5.0/3";
	setenv("TZ", zone, 1);
	tzset();
}

START_TEST(crosses_midnight)
{
	struct cfg_window w = { .name = (char *)"nightly", .days = FRI, .start_min = 22 * 60, .end_min = 2 * 60 };
	const struct cfg_window *which;

	tz("UTC");
	/* 2026-11-20 is a Friday. */
	ck_assert(!mwin_inside(&w, 1, local(2026, 11, 20, 21, 59, -1), NULL));
	ck_assert(mwin_inside(&w, 1, local(2026, 11, 20, 22, 0, -1), &which));
	ck_assert_ptr_eq(which, &w);
	ck_assert(mwin_inside(&w, 1, local(2026, 11, 21, 1, 0, -1), NULL)); /* Saturday 01:00 */
	ck_assert(!mwin_inside(&w, 1, local(2026, 11, 21, 2, 0, -1), &which));
	ck_assert_ptr_null(which);
	/* Saturday 22:00 is not in a Friday window, nor is Friday 01:00 (Thursday's night). */
	ck_assert(!mwin_inside(&w, 1, local(2026, 11, 21, 22, 30, -1), NULL));
	ck_assert(!mwin_inside(&w, 1, local(2026, 11, 20, 1, 0, -1), NULL));
	/* Boundaries: Friday 22:00, then Saturday 02:00, then next Friday 22:00. */
	time_t t = local(2026, 11, 20, 12, 0, -1);
	t = mwin_next_boundary(&w, 1, t);
	ck_assert_int_eq(t, local(2026, 11, 20, 22, 0, -1));
	t = mwin_next_boundary(&w, 1, t);
	ck_assert_int_eq(t, local(2026, 11, 21, 2, 0, -1));
	t = mwin_next_boundary(&w, 1, t);
	ck_assert_int_eq(t, local(2026, 11, 27, 22, 0, -1));
	/* No windows: no boundary. */
	ck_assert_int_eq(mwin_next_boundary(NULL, 0, t), 0);
}
END_TEST

START_TEST(several_windows)
{
	struct cfg_window w[] = {
		{ .name = (char *)"backup", .days = MON | TUE | WED | THU | FRI, .start_min = 22 * 60, .end_min = 2 * 60 },
		{ .name = (char *)"patch", .days = SAT | SUN, .start_min = 1 * 60, .end_min = 5 * 60 },
		{ .name = (char *)"lunch", .days = WED, .start_min = 12 * 60, .end_min = 12 * 60 + 30 },
	};
	const struct cfg_window *which;

	tz("UTC");
	/* Saturday 01:30: Friday's backup (till 02:00) and Saturday's patch (till 05:00) overlap. */
	ck_assert(mwin_inside(w, 3, local(2026, 11, 21, 1, 30, -1), &which));
	ck_assert_ptr_eq(which, &w[1]);
	ck_assert(mwin_inside(w, 3, local(2026, 11, 25, 12, 10, -1), &which)); /* Wed lunch */
	ck_assert_ptr_eq(which, &w[2]);
	/* Walk a week boundary by boundary and count openings of the combined state. */
	time_t t = local(2026, 11, 23, 0, 30, -1); /* Monday 00:30: Sunday has no backup */
	ck_assert(!mwin_inside(w, 3, t, NULL));
	int opens = 0, steps = 0;
	bool in = false;
	time_t end = t + 7 * 86400;
	while ((t = mwin_next_boundary(w, 3, t)) != 0 && t < end) {
		bool now_in = mwin_inside(w, 3, t, NULL);
		if (now_in && !in)
			opens++;
		in = now_in;
		steps++;
		ck_assert_int_lt(steps, 100);
	}
	/* Mon-Thu backups 4, Fri backup+Sat patch merge into 1, Sun patch 1, Wed lunch 1. */
	ck_assert_int_eq(opens, 7);
}
END_TEST

/* Europe/Brussels: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET. */
START_TEST(dst_spring_forward)
{
	tz("Europe/Brussels");
	/* A window starting inside the gap opens when the clock jumps past it. */
	struct cfg_window w = { .name = (char *)"gap", .days = SUN, .start_min = 2 * 60 + 30, .end_min = 4 * 60 };
	time_t before = local(2026, 3, 29, 1, 0, 0);
	time_t jump = local(2026, 3, 29, 3, 0, 1); /* 01:00 UTC */
	ck_assert_int_eq(jump, 1774746000);
	ck_assert_int_eq(mwin_next_boundary(&w, 1, before), jump);
	ck_assert(!mwin_inside(&w, 1, jump - 1, NULL));
	ck_assert(mwin_inside(&w, 1, jump, NULL));
	ck_assert_int_eq(mwin_next_boundary(&w, 1, jump), local(2026, 3, 29, 4, 0, 1));
	/* The same window on a normal Sunday lasts 1h30; this Sunday 1h. */
	ck_assert_int_eq(mwin_next_boundary(&w, 1, jump) - jump, 3600);
	/* A window across the gap (01:00-04:00) lasts 2 real hours. */
	struct cfg_window x = { .name = (char *)"across", .days = SUN, .start_min = 60, .end_min = 240 };
	time_t o = mwin_next_boundary(&x, 1, before - 3600);
	time_t c = mwin_next_boundary(&x, 1, o);
	ck_assert_int_eq(o, local(2026, 3, 29, 1, 0, 0));
	ck_assert_int_eq(c - o, 2 * 3600);
	/* A daily 02:30 window: the boundaries of the week are opens and closes
	 * alternating, one per day each, none lost on the short day. */
	struct cfg_window d = { .name = (char *)"daily", .days = 0x7f, .start_min = 2 * 60 + 30, .end_min = 3 * 60 + 30 };
	time_t t = local(2026, 3, 26, 12, 0, -1);
	int opens = 0, closes = 0;
	bool in = false;
	while ((t = mwin_next_boundary(&d, 1, t)) < local(2026, 4, 2, 12, 0, -1)) {
		bool now_in = mwin_inside(&d, 1, t, NULL);
		ck_assert(now_in != in);
		opens += now_in, closes += !now_in;
		in = now_in;
	}
	ck_assert_int_eq(opens, 7);
	ck_assert_int_eq(closes, 7);
	/* A window wholly inside the gap (02:15-02:45) has no wall time that
	 * happens: it does not occur that day (no zero-length open/close). */
	struct cfg_window g = { .name = (char *)"lost", .days = SUN, .start_min = 2 * 60 + 15, .end_min = 2 * 60 + 45 };
	ck_assert_int_eq(mwin_next_boundary(&g, 1, before), local(2026, 4, 5, 2, 15, 1));
}
END_TEST

START_TEST(dst_fall_back)
{
	tz("Europe/Brussels");
	/* 02:00-02:59 happens twice on 2026-10-25. A window 02:15-02:45 opens
	 * once (the first 02:15) and closes once; the repeated hour is outside. */
	struct cfg_window w = { .name = (char *)"twice", .days = SUN, .start_min = 2 * 60 + 15, .end_min = 2 * 60 + 45 };
	time_t first_0215 = local(2026, 10, 25, 2, 15, 1);
	time_t second_0215 = local(2026, 10, 25, 2, 15, 0);
	ck_assert_int_eq(second_0215 - first_0215, 3600);
	time_t t = local(2026, 10, 25, 0, 0, -1);
	t = mwin_next_boundary(&w, 1, t);
	ck_assert_int_eq(t, first_0215);
	t = mwin_next_boundary(&w, 1, t);
	ck_assert_int_eq(t, first_0215 + 30 * 60);
	ck_assert(!mwin_inside(&w, 1, second_0215, NULL));
	t = mwin_next_boundary(&w, 1, t);
	ck_assert_int_eq(t, local(2026, 11, 1, 2, 15, 0)); /* next Sunday, not the repeat */
	/* A window 01:00-02:30 across the change ends at the first 02:30. */
	struct cfg_window x = { .name = (char *)"x", .days = SUN, .start_min = 60, .end_min = 150 };
	time_t o = mwin_next_boundary(&x, 1, local(2026, 10, 25, 0, 0, -1));
	time_t c = mwin_next_boundary(&x, 1, o);
	ck_assert_int_eq(c - o, 90 * 60);
	ck_assert(!mwin_inside(&x, 1, local(2026, 10, 25, 2, 10, 0), NULL));
}
END_TEST

START_TEST(clock_jumps)
{
	struct cfg_window w = { .name = (char *)"n", .days = 0x7f, .start_min = 22 * 60, .end_min = 2 * 60 };

	tz("Europe/Brussels");
	/* The daemon arms a timer at the next boundary. The clock jumps forward
	 * past the opening: evaluated at the new time, we are inside and the
	 * next boundary is the closing, so the opening is not lost and not
	 * repeated. */
	time_t now = local(2026, 11, 20, 21, 0, -1);
	time_t b = mwin_next_boundary(&w, 1, now);
	ck_assert_int_eq(b, local(2026, 11, 20, 22, 0, -1));
	time_t after_jump = local(2026, 11, 20, 23, 30, -1);
	ck_assert(mwin_inside(&w, 1, after_jump, NULL));
	ck_assert_int_eq(mwin_next_boundary(&w, 1, after_jump), local(2026, 11, 21, 2, 0, -1));
	/* Jump forward over a whole window: the state afterwards is outside and
	 * the next boundary is the next opening (nothing pending, nothing doubled). */
	time_t far = local(2026, 11, 21, 3, 0, -1);
	ck_assert(!mwin_inside(&w, 1, far, NULL));
	ck_assert_int_eq(mwin_next_boundary(&w, 1, far), local(2026, 11, 21, 22, 0, -1));
	/* Jump backward from inside to before the opening: outside again, and
	 * the opening is the next boundary once more (it did happen again in
	 * wall time); the closing follows, once. */
	time_t back = local(2026, 11, 20, 21, 59, -1);
	ck_assert(!mwin_inside(&w, 1, back, NULL));
	b = mwin_next_boundary(&w, 1, back);
	ck_assert_int_eq(b, local(2026, 11, 20, 22, 0, -1));
	ck_assert_int_eq(mwin_next_boundary(&w, 1, b), local(2026, 11, 21, 2, 0, -1));
	/* next_boundary is strictly after now, for every minute of two days:
	 * stepping never stalls and never goes back. */
	for (time_t s = local(2026, 10, 24, 0, 0, -1); s < local(2026, 10, 26, 0, 0, -1); s += 60) {
		time_t n = mwin_next_boundary(&w, 1, s);
		ck_assert_int_gt(n, s);
		ck_assert_int_le(n - s, 86400);
	}
}
END_TEST

START_TEST(open_between)
{
	/* Friday 22:00 - Saturday 02:00; 2026-11-20 is a Friday. */
	struct cfg_window w = { .name = (char *)"nightly", .days = FRI, .start_min = 22 * 60, .end_min = 2 * 60 };

	tz("Europe/Brussels");
	time_t fri21 = local(2026, 11, 20, 21, 0, -1), fri2130 = local(2026, 11, 20, 21, 30, -1);
	time_t fri22 = local(2026, 11, 20, 22, 0, -1), fri23 = local(2026, 11, 20, 23, 0, -1);
	time_t sat02 = local(2026, 11, 21, 2, 0, -1), sat03 = local(2026, 11, 21, 3, 0, -1);
	/* Stopped and started again before the window. */
	ck_assert(!mwin_open_between(&w, 1, fri21, fri2130));
	/* Started inside it. */
	ck_assert(mwin_open_between(&w, 1, fri21, fri23));
	/* Opened and closed entirely while stopped. */
	ck_assert(mwin_open_between(&w, 1, fri21, sat03));
	/* Stopped inside (a run just before the clock was stepped), started after. */
	ck_assert(mwin_open_between(&w, 1, fri23, sat03));
	/* The opening instant itself counts, the last run's instant does not. */
	ck_assert(mwin_open_between(&w, 1, fri21, fri22));
	ck_assert(!mwin_open_between(&w, 1, fri22 - 1, fri22 - 1));
	/* Stopped and started within one second inside a window. */
	ck_assert(mwin_open_between(&w, 1, fri23, fri23));
	ck_assert(!mwin_open_between(&w, 1, sat02, sat03));
	/* Stopped for weeks, started on a Wednesday: a window passed. */
	ck_assert(mwin_open_between(&w, 1, sat03, local(2026, 12, 16, 12, 0, -1)));
	/* Stopped Saturday after the window, started Friday before the next one. */
	ck_assert(!mwin_open_between(&w, 1, sat03, local(2026, 11, 27, 21, 59, -1)));
	/* The clock went back while stopped, or no windows. */
	ck_assert(!mwin_open_between(&w, 1, sat03, fri21));
	ck_assert(!mwin_open_between(NULL, 0, fri21, sat03));
}
END_TEST

START_TEST(local_first)
{
	tz("Europe/Brussels");
	/* Normal, gap, repeated, and minute 1440 (next midnight). */
	ck_assert_int_eq(mwin_local_first(126, 10, 20, 600), local(2026, 11, 20, 10, 0, -1));
	ck_assert_int_eq(mwin_local_first(126, 2, 29, 150), 1774746000);
	ck_assert_int_eq(mwin_local_first(126, 9, 25, 150), local(2026, 10, 25, 2, 30, 1));
	ck_assert_int_eq(mwin_local_first(126, 11, 31, 1440), local(2027, 1, 1, 0, 0, -1));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("window");
	TCase *tc = tcase_create("window");

	tcase_add_test(tc, crosses_midnight);
	tcase_add_test(tc, several_windows);
	tcase_add_test(tc, dst_spring_forward);
	tcase_add_test(tc, dst_fall_back);
	tcase_add_test(tc, clock_jumps);
	tcase_add_test(tc, open_between);
	tcase_add_test(tc, local_first);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
