#include "config.h"

#include <string.h>

#include "agent/vote.h"

static unsigned clamp_runs(unsigned runs)
{
	if (runs == 0)
		return 1;
	return runs > VOTE_MAX_RUNS ? VOTE_MAX_RUNS : runs;
}

void vote_params_from_cfg(const struct cfg *c, struct vote_params *ret)
{
	ret->failed_checks = c->agent.failed_checks;
	ret->runs = clamp_runs(c->agent.runs);
	ret->failed_runs = c->agent.failed_runs;
	ret->passed_runs = c->agent.passed_runs;
}

unsigned vote_link_failures(const struct probe_result *r, size_t n)
{
	unsigned failed = 0;

	for (size_t i = 0; i < n; i++)
		if (r[i].check->role == ROLE_LINK && probe_failed(&r[i]))
			failed++;
	return failed;
}

bool vote_run_failed(const struct vote_params *p, const struct probe_result *r, size_t n)
{
	return vote_link_failures(r, n) >= p->failed_checks;
}

bool vote_no_backup(const struct probe_result *r, size_t n)
{
	size_t backups = 0;

	for (size_t i = 0; i < n; i++) {
		if (r[i].check->role != ROLE_BACKUP)
			continue;
		if (probe_passed(&r[i]))
			return false;
		backups++;
	}
	return backups > 0;
}

static void trim(struct vote *v)
{
	if (v->n > v->p.runs) {
		size_t drop = v->n - v->p.runs;
		memmove(v->failed, v->failed + drop, v->p.runs * sizeof v->failed[0]);
		v->n = v->p.runs;
	}
}

bool vote_init(struct vote *v, const struct vote_params *p, enum cfg_initial_state init,
	       bool persisted, enum link_state pstate, const bool *pfailed, size_t pn)
{
	bool keep;

	memset(v, 0, sizeof *v);
	v->p = *p;
	v->p.runs = clamp_runs(p->runs);
	switch (init) {
	case INITIAL_UP:
	case INITIAL_DOWN:
		/* A forced state keeps the window only when it is the persisted
		 * state anyway: the runs still count since that state's change. */
		v->state = init == INITIAL_UP ? LINK_UP : LINK_DOWN;
		keep = persisted && pstate == v->state;
		break;
	default:
		/* Nothing persisted: unknown until the first decision. */
		v->state = persisted ? pstate : LINK_UNKNOWN;
		keep = persisted;
		break;
	}
	if (keep) {
		if (pn > VOTE_MAX_RUNS) {
			pfailed += pn - VOTE_MAX_RUNS;
			pn = VOTE_MAX_RUNS;
		}
		if (pn > 0)
			memcpy(v->failed, pfailed, pn * sizeof v->failed[0]);
		v->n = pn;
		trim(v);
	}
	return keep;
}

void vote_set_params(struct vote *v, const struct vote_params *p)
{
	v->p = *p;
	v->p.runs = clamp_runs(p->runs);
	trim(v);
}

void vote_counts(const struct vote *v, unsigned *ret_failed, unsigned *ret_passed)
{
	unsigned f = 0;

	for (size_t i = 0; i < v->n; i++)
		f += v->failed[i];
	*ret_failed = f;
	*ret_passed = (unsigned)v->n - f;
}

enum link_state vote_decide(const struct vote *v)
{
	unsigned f, p;

	/* A change needs a full window of runs made since the last change. */
	if (v->n < v->p.runs)
		return v->state;
	vote_counts(v, &f, &p);
	switch (v->state) {
	case LINK_UP: return f >= v->p.failed_runs ? LINK_DOWN : LINK_UP;
	case LINK_DOWN: return p >= v->p.passed_runs ? LINK_UP : LINK_DOWN;
	default:
		/* The first decision: UP when enough passed, else DOWN when
		 * enough failed, else still unknown. */
		if (p >= v->p.passed_runs)
			return LINK_UP;
		return f >= v->p.failed_runs ? LINK_DOWN : LINK_UNKNOWN;
	}
}

bool vote_add_run(struct vote *v, bool failed)
{
	if (v->n == v->p.runs) {
		memmove(v->failed, v->failed + 1, (v->n - 1) * sizeof v->failed[0]);
		v->n--;
	}
	v->failed[v->n++] = failed;
	return vote_decide(v) != v->state;
}

void vote_commit_change(struct vote *v)
{
	vote_set_state(v, vote_decide(v));
}

void vote_set_state(struct vote *v, enum link_state s)
{
	v->state = s;
	v->n = 0;
}

void vote_clear(struct vote *v)
{
	v->n = 0;
}
