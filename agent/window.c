#include "config.h"

#include <string.h>

#include "agent/window.h"

/* Local wall time as one comparable number: YYYYMMDDHHMM. */
static long long wall_key(time_t t)
{
	struct tm tm;

	localtime_r(&t, &tm);
	return ((((long long)tm.tm_year * 100 + tm.tm_mon) * 100 + tm.tm_mday) * 100 + tm.tm_hour) * 100 +
	       tm.tm_min;
}

time_t mwin_local_first(int year, int mon, int mday, unsigned minute)
{
	struct tm want = { 0 };
	time_t best = (time_t)-1;

	want.tm_year = year;
	want.tm_mon = mon;
	want.tm_mday = mday + (int)(minute / 1440);
	want.tm_hour = (int)(minute % 1440) / 60;
	want.tm_min = (int)(minute % 60);
	/* Normalise the date (minute 1440 is the next midnight). */
	struct tm norm = want;
	norm.tm_hour = 12;
	norm.tm_isdst = -1;
	mktime(&norm);
	want.tm_year = norm.tm_year, want.tm_mon = norm.tm_mon, want.tm_mday = norm.tm_mday;
	long long key = ((((long long)want.tm_year * 100 + want.tm_mon) * 100 + want.tm_mday) * 100 +
			 want.tm_hour) * 100 + want.tm_min;

	/* The time may exist twice (fall back): try both offsets, keep the
	 * earlier of those that really read as the wanted wall time. */
	for (int dst = 0; dst <= 1; dst++) {
		struct tm tm = want;
		tm.tm_isdst = dst;
		time_t t = mktime(&tm);
		if (t != (time_t)-1 && wall_key(t) == key && (best == (time_t)-1 || t < best))
			best = t;
	}
	if (best != (time_t)-1)
		return best;

	/* It does not exist (spring forward): the instant the clock jumps past
	 * it. Around a gap the wall clock only goes forward, so bisect. */
	struct tm tm = want;
	tm.tm_isdst = -1;
	time_t guess = mktime(&tm);
	time_t lo = guess - 4 * 3600, hi = guess + 4 * 3600;
	while (hi - lo > 1) {
		time_t mid = lo + (hi - lo) / 2;
		if (wall_key(mid) >= key)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

/* Call fn for each occurrence of each window whose date is within
 * [now - 2 days, now + 9 days]: enough to see the one covering now and the
 * next boundary of any weekly schedule. */
struct occ {
	const struct cfg_window *w;
	time_t open, close;
};

static size_t occurrences(const struct cfg_window *w, size_t n, time_t now,
			  void (*fn)(const struct occ *o, void *ud), void *ud)
{
	struct tm today;
	size_t count = 0;

	localtime_r(&now, &today);
	for (int d = -2; d <= 9; d++) {
		struct tm day = today;
		day.tm_mday += d;
		day.tm_hour = 12, day.tm_min = 0, day.tm_sec = 0;
		day.tm_isdst = -1;
		if (mktime(&day) == (time_t)-1)
			continue;
		for (size_t i = 0; i < n; i++) {
			if (!(w[i].days & cfg_day_bit(day.tm_wday)))
				continue;
			struct occ o = { .w = &w[i] };
			o.open = mwin_local_first(day.tm_year, day.tm_mon, day.tm_mday, w[i].start_min);
			/* end <= start: the window crosses midnight (equal: a whole day). */
			unsigned end = w[i].end_min > w[i].start_min ? w[i].end_min : w[i].end_min + 1440;
			o.close = mwin_local_first(day.tm_year, day.tm_mon, day.tm_mday, end);
			if (o.close <= o.open)
				continue;
			fn(&o, ud);
			count++;
		}
	}
	return count;
}

struct inside_ctx {
	time_t now;
	struct occ best;
	bool in;
};

static void inside_fn(const struct occ *o, void *ud)
{
	struct inside_ctx *c = ud;

	if (o->open <= c->now && c->now < o->close && (!c->in || o->close > c->best.close)) {
		c->best = *o;
		c->in = true;
	}
}

bool mwin_inside(const struct cfg_window *w, size_t n, time_t now, const struct cfg_window **ret_which)
{
	struct inside_ctx c = { .now = now };

	occurrences(w, n, now, inside_fn, &c);
	if (ret_which)
		*ret_which = c.in ? c.best.w : NULL;
	return c.in;
}

struct next_ctx {
	time_t now, next;
};

static void next_fn(const struct occ *o, void *ud)
{
	struct next_ctx *c = ud;

	if (o->open > c->now && (c->next == 0 || o->open < c->next))
		c->next = o->open;
	if (o->close > c->now && (c->next == 0 || o->close < c->next))
		c->next = o->close;
}

time_t mwin_next_boundary(const struct cfg_window *w, size_t n, time_t now)
{
	struct next_ctx c = { .now = now };

	occurrences(w, n, now, next_fn, &c);
	return c.next;
}

bool mwin_open_between(const struct cfg_window *w, size_t n, time_t from, time_t to)
{
	if (to < from)
		return false;
	if (mwin_inside(w, n, to, NULL))
		return true;
	/* Outside at to: anything open after from had a boundary in (from, to]
	 * (its opening, or its closing if it was already open at from). A
	 * weekly schedule has a boundary within 7 days, so a long gap is seen. */
	time_t b = mwin_next_boundary(w, n, from);
	return b != 0 && b <= to;
}
