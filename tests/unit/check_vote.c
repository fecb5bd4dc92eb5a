/* Voting (SPEC section 3): the worked example, alternating patterns, every
 * threshold at its boundary, initial_state, and a window across a restart. */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/schedule.h"
#include "agent/state.h"
#include "agent/vote.h"

static struct cfg_check checks[4] = {
	{ .name = (char *)"gw", .type = CHECK_PING, .role = ROLE_LINK, .target = (char *)"192.0.2.1" },
	{ .name = (char *)"web", .type = CHECK_HTTP, .role = ROLE_LINK, .target = (char *)"http://x/" },
	{ .name = (char *)"smtp", .type = CHECK_TCP, .role = ROLE_LINK, .target = (char *)"x:25" },
	{ .name = (char *)"relay-b", .type = CHECK_TCP, .role = ROLE_BACKUP, .target = (char *)"y:25" },
};

/* pattern: one char per check, 'p' passed, 'f' failed. */
static void results(struct probe_result *r, const char *pattern)
{
	for (size_t i = 0; i < strlen(pattern); i++) {
		memset(&r[i], 0, sizeof r[i]);
		r[i].check = &checks[i];
		r[i].outcome = pattern[i] == 'p' ? PROBE_PASSED : PROBE_TIMEOUT;
	}
}

static struct vote_params P(unsigned fc, unsigned runs, unsigned fr, unsigned pr)
{
	return (struct vote_params){ .failed_checks = fc, .runs = runs, .failed_runs = fr, .passed_runs = pr };
}

START_TEST(worked_example)
{
	/* 3 checks, failed_checks = 2, runs = 2, failed_runs = 2. */
	struct vote_params p = P(2, 2, 2, 2);
	struct probe_result r[3];
	struct vote v;

	vote_init(&v, &p, INITIAL_UP, false, LINK_DOWN, NULL, 0);
	ck_assert_int_eq(v.state, LINK_UP);
	results(r, "ffp"); /* 0:00: two of three fail */
	ck_assert(vote_run_failed(&p, r, 3));
	ck_assert(!vote_add_run(&v, true)); /* one run is not a window */
	results(r, "pff"); /* 0:02: two fail again */
	ck_assert(vote_run_failed(&p, r, 3));
	ck_assert(vote_add_run(&v, true));  /* 2 of 2 failed: DOWN */
	vote_commit_change(&v);
	ck_assert_int_eq(v.state, LINK_DOWN);
	ck_assert_uint_eq(v.n, 0);
	/* One failing check is a passed run. */
	results(r, "fpp");
	ck_assert(!vote_run_failed(&p, r, 3));
}
END_TEST

START_TEST(backup_never_votes)
{
	struct vote_params p = P(1, 1, 1, 1);
	struct probe_result r[4];

	results(r, "pppf");
	ck_assert_uint_eq(vote_link_failures(r, 4), 0);
	ck_assert(!vote_run_failed(&p, r, 4));
	ck_assert(vote_no_backup(r, 4)); /* the only backup check failed */
	results(r, "fffp");
	ck_assert(vote_run_failed(&p, r, 4));
	ck_assert(!vote_no_backup(r, 4));
	results(r, "ffff");
	ck_assert(vote_no_backup(r, 4));
	results(r, "fff"); /* no backup check at all: not "no backup" */
	ck_assert(!vote_no_backup(r, 3));
}
END_TEST

/* Feed a pattern of runs ('F' failed, 'P' passed); return the states after
 * each run as 'U'/'D'. */
static void feed(struct vote *v, const char *runs, char *out)
{
	for (size_t i = 0; runs[i]; i++) {
		if (vote_add_run(v, runs[i] == 'F'))
			vote_commit_change(v);
		out[i] = v->state == LINK_UP ? 'U' : v->state == LINK_DOWN ? 'D' : '?';
	}
	out[strlen(runs)] = '\0';
}

START_TEST(alternating)
{
	struct vote v;
	char out[64];
	struct vote_params p;

	/* mwan3 counts failures and never resets them on fail/ok/fail/ok; here
	 * 2 of the last 2 must fail, so alternation never goes DOWN ... */
	p = P(1, 2, 2, 2);
	vote_init(&v, &p, INITIAL_UP, false, LINK_UP, NULL, 0);
	feed(&v, "FPFPFPFPFPFP", out);
	ck_assert_str_eq(out, "UUUUUUUUUUUU");
	/* ... while with 2 of the last 3 it does, exactly when the window holds two. */
	p = P(1, 3, 2, 2);
	vote_init(&v, &p, INITIAL_UP, false, LINK_UP, NULL, 0);
	feed(&v, "FPFPFP", out);
	ck_assert_str_eq(out, "UUDDDU");
	/* Back UP needs 2 passed of a new window of 3: P F P after the change
	 * at run 3 (runs 4-6: P F P). */
	/* 1 of 2 to go down, 2 of 2 to come back: alternation stays DOWN. */
	p = P(1, 2, 1, 2);
	vote_init(&v, &p, INITIAL_UP, false, LINK_UP, NULL, 0);
	feed(&v, "PFPFPFPF", out);
	ck_assert_str_eq(out, "UDDDDDDD");
	/* A steady pattern flips exactly every window. */
	p = P(1, 2, 2, 2);
	vote_init(&v, &p, INITIAL_UP, false, LINK_UP, NULL, 0);
	feed(&v, "FFPPFFPP", out);
	ck_assert_str_eq(out, "UDDUUDDU");
}
END_TEST

START_TEST(threshold_boundaries)
{
	struct vote v;
	char out[64];
	struct vote_params p;
	struct probe_result r[3];

	/* failed_checks: at n-1 failures a run passes, at n it fails. */
	for (unsigned fc = 1; fc <= 3; fc++) {
		p = P(fc, 1, 1, 1);
		const char *pat[] = { "ppp", "fpp", "ffp", "fff" };
		for (unsigned k = 0; k <= 3; k++) {
			results(r, pat[k]);
			ck_assert_int_eq(vote_run_failed(&p, r, 3), k >= fc);
		}
	}
	/* failed_runs = runs: only an all-failed window goes down. */
	p = P(1, 3, 3, 3);
	vote_init(&v, &p, INITIAL_UP, false, LINK_UP, NULL, 0);
	feed(&v, "FFPFFPFFF", out);
	ck_assert_str_eq(out, "UUUUUUUUD");
	/* failed_runs = runs - 1: two of three. */
	p = P(1, 3, 2, 3);
	vote_init(&v, &p, INITIAL_UP, false, LINK_UP, NULL, 0);
	feed(&v, "FPPFPF", out);
	ck_assert_str_eq(out, "UUUUUD");
	/* failed_runs = 1 with runs = 3: the first full window with a failure. */
	p = P(1, 3, 1, 3);
	vote_init(&v, &p, INITIAL_UP, false, LINK_UP, NULL, 0);
	feed(&v, "FPP", out);
	ck_assert_str_eq(out, "UUD");
	/* runs = 1: every run decides. */
	p = P(1, 1, 1, 1);
	vote_init(&v, &p, INITIAL_UP, false, LINK_UP, NULL, 0);
	feed(&v, "FPFFPP", out);
	ck_assert_str_eq(out, "DUDDUU");
	/* passed_runs boundary: 3 of 4 needed; 2 passes in the window are not enough. */
	p = P(1, 4, 4, 3);
	vote_init(&v, &p, INITIAL_DOWN, false, LINK_DOWN, NULL, 0);
	feed(&v, "PPFF", out);
	ck_assert_str_eq(out, "DDDD");
	feed(&v, "P", out); /* window: P F F P -> 2 */
	ck_assert_str_eq(out, "D");
	feed(&v, "P", out); /* window: F F P P -> 2 */
	ck_assert_str_eq(out, "D");
	feed(&v, "P", out); /* window: F P P P -> 3 */
	ck_assert_str_eq(out, "U");
	/* A change needs `runs` runs since the last change, even when the
	 * threshold is met earlier. */
	p = P(1, 3, 1, 1);
	vote_init(&v, &p, INITIAL_UP, false, LINK_UP, NULL, 0);
	feed(&v, "FFFPPP", out);
	ck_assert_str_eq(out, "UUDDDU");
	/* runs beyond VOTE_MAX_RUNS are clamped, not overflowed. */
	p = P(1, 100000, 1, 1);
	vote_init(&v, &p, INITIAL_UP, false, LINK_UP, NULL, 0);
	ck_assert_uint_eq(v.p.runs, VOTE_MAX_RUNS);
}
END_TEST

START_TEST(initial_state)
{
	struct vote v;
	struct vote_params p = P(1, 3, 2, 2);
	bool saved[] = { true, false };
	char out[8];

	/* last, nothing persisted: unknown, empty window; healthy goes UP after a window. */
	ck_assert(!vote_init(&v, &p, INITIAL_LAST, false, LINK_UP, NULL, 0));
	ck_assert_int_eq(v.state, LINK_UNKNOWN);
	feed(&v, "PPP", out);
	ck_assert_str_eq(out, "??U");
	/* unknown during an outage: DOWN after a window (SPEC section 3). */
	vote_init(&v, &p, INITIAL_LAST, false, LINK_UP, NULL, 0);
	feed(&v, "FFF", out);
	ck_assert_str_eq(out, "??D");
	/* unknown while neither holds (2 of 3 needed): stays unknown. */
	vote_init(&v, &p, INITIAL_LAST, false, LINK_UP, NULL, 0);
	feed(&v, "FPF", out);
	ck_assert_str_eq(out, "??D");
	struct vote_params q = P(1, 4, 3, 3);
	vote_init(&v, &q, INITIAL_LAST, false, LINK_UP, NULL, 0);
	feed(&v, "FPFP", out);
	ck_assert_str_eq(out, "????");
	feed(&v, "P", out); /* P F P P: 3 passed */
	ck_assert_str_eq(out, "U");
	/* a hold sets the state and clears the window */
	vote_set_state(&v, LINK_DOWN);
	ck_assert_int_eq(v.state, LINK_DOWN);
	ck_assert_uint_eq(v.n, 0);
	/* last, persisted: state and window resume. */
	ck_assert(vote_init(&v, &p, INITIAL_LAST, true, LINK_UP, saved, 2));
	ck_assert_int_eq(v.state, LINK_UP);
	ck_assert_uint_eq(v.n, 2);
	feed(&v, "P", out); /* F P P: 1 failed */
	ck_assert_str_eq(out, "U");
	ck_assert(vote_init(&v, &p, INITIAL_LAST, true, LINK_UP, saved, 2));
	feed(&v, "F", out); /* F P F: 2 failed */
	ck_assert_str_eq(out, "D");
	/* down: DOWN whatever was persisted; window dropped when the state differs. */
	ck_assert(!vote_init(&v, &p, INITIAL_DOWN, true, LINK_UP, saved, 2));
	ck_assert_int_eq(v.state, LINK_DOWN);
	ck_assert_uint_eq(v.n, 0);
	ck_assert(vote_init(&v, &p, INITIAL_DOWN, true, LINK_DOWN, saved, 2));
	ck_assert_uint_eq(v.n, 2);
	/* last, a state persisted with an empty window */
	ck_assert(vote_init(&v, &p, INITIAL_LAST, true, LINK_DOWN, NULL, 0));
	ck_assert_int_eq(v.state, LINK_DOWN);
	ck_assert_uint_eq(v.n, 0);
	/* up */
	ck_assert(!vote_init(&v, &p, INITIAL_UP, false, LINK_DOWN, NULL, 0));
	ck_assert_int_eq(v.state, LINK_UP);
	/* a persisted window longer than runs (runs lowered) keeps the newest */
	bool longer[] = { true, true, false, false, false };
	vote_init(&v, &p, INITIAL_LAST, true, LINK_UP, longer, 5);
	ck_assert_uint_eq(v.n, 3);
	ck_assert(!v.failed[0] && !v.failed[1] && !v.failed[2]);
	/* reload lowers runs: trimmed to the newest */
	bool mixed[] = { true, true, false };
	vote_init(&v, &p, INITIAL_LAST, true, LINK_UP, mixed, 3);
	struct vote_params p2 = P(1, 2, 2, 2);
	vote_set_params(&v, &p2);
	ck_assert_uint_eq(v.n, 2);
	ck_assert(v.failed[0] && !v.failed[1]);
}
END_TEST

/* A window that straddles a restart: runs before and after, through state.c. */
START_TEST(window_across_restart)
{
	char path[] = "/tmp/check_vote_XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	unlink(path);

	struct vote_params p = P(2, 3, 2, 2);
	struct probe_result r[3];
	struct state_saved s;
	sqlite3 *db;
	struct vote v;

	for (int life = 0; life < 3; life++) {
		ck_assert_int_eq(state_open(path, false, &db), 0);
		ck_assert_int_eq(state_load(db, &s), 0);
		vote_init(&v, &p, INITIAL_LAST, s.persisted, s.state, s.failed, s.n);
		if (!s.persisted)
			ck_assert_int_eq(state_set(db, v.state, 1, true), 0);
		if (life == 0) {
			ck_assert_int_eq(v.state, LINK_UNKNOWN);
			/* healthy: P P P -> UP at the third run */
			for (int i = 0; i < 3; i++) {
				results(r, "ppp");
				struct state_run run = { .at_usec = 10 + i, .failed = false, .n_link = 3,
							 .results = r, .n_results = 3 };
				bool ch = vote_add_run(&v, false);
				struct state_change c = { .new_state = LINK_UP, .old_state = LINK_DOWN,
							  .at_usec = 10 + i };
				ck_assert_int_eq(state_commit_run(db, &run, p.runs, ch ? &c : NULL, NULL), 0);
				if (ch)
					vote_commit_change(&v);
			}
			ck_assert_int_eq(v.state, LINK_UP);
			/* one failed run, then the "crash" */
			results(r, "ffp");
			struct state_run run = { .at_usec = 20, .failed = true, .link_failed = 2, .n_link = 3,
						 .results = r, .n_results = 3 };
			ck_assert(!vote_add_run(&v, true));
			ck_assert_int_eq(state_commit_run(db, &run, p.runs, NULL, NULL), 0);
		} else if (life == 1) {
			/* the window resumed with the failed run: one more failed
			 * run is not yet a window of 3, the third decides */
			ck_assert_int_eq(v.state, LINK_UP);
			ck_assert_uint_eq(v.n, 1);
			ck_assert(v.failed[0]);
			results(r, "fff");
			struct state_run run = { .at_usec = 30, .failed = true, .link_failed = 3, .n_link = 3,
						 .results = r, .n_results = 3 };
			ck_assert(!vote_add_run(&v, true));
			ck_assert_int_eq(state_commit_run(db, &run, p.runs, NULL, NULL), 0);
		} else {
			ck_assert_uint_eq(v.n, 2);
			results(r, "pfp");
			struct state_run run = { .at_usec = 40, .failed = false, .link_failed = 1, .n_link = 3,
						 .results = r, .n_results = 3 };
			ck_assert(vote_add_run(&v, false)); /* F F P: 2 of 3 failed */
			struct state_change c = { .new_state = LINK_DOWN, .old_state = LINK_UP, .at_usec = 40 };
			int64_t id = 0;
			ck_assert_int_eq(state_commit_run(db, &run, p.runs, &c, &id), 0);
			ck_assert_int_eq(id, 2);
			vote_commit_change(&v);
		}
		state_saved_clear(&s);
		db = state_close(db);
	}
	ck_assert_int_eq(state_open(path, false, &db), 0);
	ck_assert_int_eq(state_load(db, &s), 0);
	ck_assert(s.persisted);
	ck_assert_int_eq(s.state, LINK_DOWN);
	ck_assert_uint_eq(s.since_usec, 40);
	ck_assert_uint_eq(s.n, 0);
	state_saved_clear(&s);
	state_close(db);
	unlink(path);
}
END_TEST


/* The scheduler on an injected clock: interval 120 s, fast_interval 10 s,
 * runs 2. A run's verdict is added, then the next start is asked for. */
#define IV (120 * 1000000ULL)
#define FAST (10 * 1000000ULL)

static uint64_t next_after(struct vote *v, uint64_t start, bool failed, bool *changed)
{
	*changed = vote_add_run(v, failed);
	if (*changed)
		vote_commit_change(v);
	return sched_next_start(v, start, IV, FAST);
}

START_TEST(schedule_fast_while_disagreeing)
{
	struct vote_params p = P(1, 2, 2, 2);
	struct vote v;
	bool ch;
	uint64_t t = 5000; /* any monotonic reading */

	vote_init(&v, &p, INITIAL_UP, false, LINK_DOWN, NULL, 0);
	/* Nothing in the window: the plain interval. */
	ck_assert(!sched_disagrees(&v));
	ck_assert_uint_eq(sched_next_start(&v, t, IV, FAST), t + IV);
	/* UP and passing: interval. */
	t = next_after(&v, t, false, &ch);
	ck_assert_uint_eq(t, 5000 + IV);
	/* A failed run while UP: the next one comes fast_interval after this start. */
	uint64_t s = t;
	t = next_after(&v, s, true, &ch);
	ck_assert(!ch);
	ck_assert_uint_eq(t, s + FAST);
	/* The second failure decides: DOWN, the window is empty, back to interval. */
	s = t;
	t = next_after(&v, s, true, &ch);
	ck_assert(ch);
	ck_assert_int_eq(v.state, LINK_DOWN);
	ck_assert_uint_eq(t, s + IV);
	/* DOWN and failing agrees: interval. */
	s = t;
	t = next_after(&v, s, true, &ch);
	ck_assert_uint_eq(t, s + IV);
	/* A pass while DOWN: fast, and fast again while it is in the window. */
	s = t;
	t = next_after(&v, s, false, &ch);
	ck_assert(!ch);
	ck_assert_uint_eq(t, s + FAST);
	s = t;
	t = next_after(&v, s, false, &ch);
	ck_assert(ch); /* 2 of 2 passed: UP */
	ck_assert_uint_eq(t, s + IV);
}
END_TEST

START_TEST(schedule_refuted_flap)
{
	/* runs 3: one failure stays in the window for three runs, so the runs
	 * come fast until it has left it (the flap is refuted), then slow. */
	struct vote_params p = P(1, 3, 3, 3);
	struct vote v;
	bool ch;
	uint64_t s = 0, t;

	vote_init(&v, &p, INITIAL_UP, false, LINK_DOWN, NULL, 0);
	t = next_after(&v, s, true, &ch);
	ck_assert_uint_eq(t, s + FAST);
	s = t, t = next_after(&v, s, false, &ch);
	ck_assert_uint_eq(t, s + FAST);
	s = t, t = next_after(&v, s, false, &ch);
	ck_assert_uint_eq(t, s + FAST);
	s = t, t = next_after(&v, s, false, &ch); /* the failure drops out */
	ck_assert(!ch);
	ck_assert_uint_eq(t, s + IV);
}
END_TEST

START_TEST(schedule_off)
{
	/* fast_interval = interval is off; 0 (a hand-made cfg) means off too. */
	struct vote_params p = P(1, 2, 2, 2);
	struct vote v;

	vote_init(&v, &p, INITIAL_UP, false, LINK_DOWN, NULL, 0);
	vote_add_run(&v, true);
	ck_assert(sched_disagrees(&v));
	ck_assert_uint_eq(sched_next_start(&v, 7, IV, IV), 7 + IV);
	ck_assert_uint_eq(sched_next_start(&v, 7, IV, 0), 7 + IV);
	ck_assert_uint_eq(sched_next_start(&v, 7, IV, FAST), 7 + FAST);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("vote");
	TCase *tc = tcase_create("vote");

	tcase_add_test(tc, worked_example);
	tcase_add_test(tc, backup_never_votes);
	tcase_add_test(tc, alternating);
	tcase_add_test(tc, threshold_boundaries);
	tcase_add_test(tc, initial_state);
	tcase_add_test(tc, window_across_restart);
	tcase_add_test(tc, schedule_fast_while_disagreeing);
	tcase_add_test(tc, schedule_refuted_flap);
	tcase_add_test(tc, schedule_off);
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
