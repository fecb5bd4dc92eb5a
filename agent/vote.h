/* Threshold voting (SPEC section 3), pure: no I/O, no clock. The caller feeds
 * the verdict of each run and persists the window itself (agent/state.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "agent/change.h"
#include "config/config.h"
#include "probes/probe.h"

/* The most runs a window can hold; cfg runs above it are clamped. */
#define VOTE_MAX_RUNS 256

struct vote_params {
	unsigned failed_checks, runs, failed_runs, passed_runs;
};

/* The runs made since the last change of state, oldest first; only the
 * last params.runs are kept. */
struct vote {
	struct vote_params p;
	enum link_state state;
	size_t n;
	bool failed[VOTE_MAX_RUNS];
};

void vote_params_from_cfg(const struct cfg *c, struct vote_params *ret);

/* Number of link checks that failed in a run (backup checks never vote). */
unsigned vote_link_failures(const struct probe_result *r, size_t n);
/* A run FAILED when at least failed_checks link checks failed. */
bool vote_run_failed(const struct vote_params *p, const struct probe_result *r, size_t n);
/* Every backup check failed, and there is at least one. */
bool vote_no_backup(const struct probe_result *r, size_t n);

/* Start: the state and window to begin with. persisted: whether a state was
 * stored; pstate/pfailed/pn: what was stored (the window, oldest first).
 * Returns true when the persisted window was kept. */
bool vote_init(struct vote *v, const struct vote_params *p, enum cfg_initial_state init,
	       bool persisted, enum link_state pstate, const bool *pfailed, size_t pn);
/* A reload changed the thresholds: keep the window, trim it to the new size. */
void vote_set_params(struct vote *v, const struct vote_params *p);
/* Add a run to the window (dropping the oldest beyond runs); returns true when
 * the state must change. The caller records the change and then calls
 * vote_commit_change(); until then the window and state are untouched beyond
 * the added run. */
bool vote_add_run(struct vote *v, bool failed);
/* The state the window decides (the current one while it decides nothing). */
enum link_state vote_decide(const struct vote *v);
/* The change was recorded: take the decided state and clear the window. */
void vote_commit_change(struct vote *v);
/* A change decided elsewhere (a hold): this state, and the window cleared. */
void vote_set_state(struct vote *v, enum link_state s);
/* Forget the window (after a maintenance window). */
void vote_clear(struct vote *v);
/* Counts over the current window. */
void vote_counts(const struct vote *v, unsigned *ret_failed, unsigned *ret_passed);
