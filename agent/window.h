/* Maintenance windows (SPEC section 2), pure: the wall clock is passed in and
 * local time comes from localtime_r()/mktime() under the process's TZ.
 *
 * Each window occurs on each of its days as an interval of real time: it
 * opens at the first instant the local clock on that date reads >= start and
 * closes at the first instant it reads >= end (on the next date when the
 * window crosses midnight). So a start inside a DST gap opens when the clock
 * jumps past it, and a time that a DST fall-back repeats counts once: no
 * boundary is skipped or doubled. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config/config.h"

/* The first instant on local date (year, mon 0-11, mday) at which the local
 * clock reads >= minute (minutes after midnight; 1440 = next midnight). */
time_t mwin_local_first(int year, int mon, int mday, unsigned minute);

/* Whether now lies inside one of the windows; *ret_which (may be NULL) is the
 * one covering now that closes last, NULL outside. */
bool mwin_inside(const struct cfg_window *w, size_t n, time_t now, const struct cfg_window **ret_which);

/* The next instant > now at which a window opens or closes; 0 when there is
 * none (no windows). */
time_t mwin_next_boundary(const struct cfg_window *w, size_t n, time_t now);

/* Whether a window was open at some instant after from and up to to: one
 * that is open at to, or one that opened or closed after from (so also one
 * that opened and closed entirely in between). Seconds: from and to may be
 * the same second (a restart within it). False when to < from. */
bool mwin_open_between(const struct cfg_window *w, size_t n, time_t from, time_t to);
