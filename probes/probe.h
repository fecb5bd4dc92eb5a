/* Probes: one call starts every check of a run at the same time on the
 * daemon's event loop; all outcomes flow into one callback when the last
 * check has one. Nothing here blocks the loop. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config/config.h"

enum probe_outcome {
	PROBE_PASSED,
	PROBE_TIMEOUT,        /* no answer by the deadline */
	PROBE_REFUSED,        /* connection refused / port unreachable */
	PROBE_UNREACHABLE,    /* no route, network or host unreachable */
	PROBE_DNS_FAILURE,    /* the name does not resolve */
	PROBE_DNS_TIMEOUT,    /* the resolver did not answer in time */
	PROBE_BAD_STATUS,     /* http status outside expect; ping too few replies */
	PROBE_PROTOCOL_ERROR, /* smtp/http spoke something unexpected */
	PROBE_TLS_ERROR,      /* handshake or certificate verification failed */
	PROBE_ERROR,          /* local error (socket, bind to source, ...) */
	PROBE_CANCELLED,      /* not needed: the run's verdict was certain without it */
	_PROBE_OUTCOME_MAX,
};

struct probe_result {
	const struct cfg_check *check; /* points into the cfg the run was started with */
	enum probe_outcome outcome;
	char reason[160];              /* short, human: "connection refused", "HTTP 500" */
	uint64_t elapsed_ms;
};

struct probe_run;

/* results[i] belongs to cfg->checks[i]; the array lives until the callback
 * returns. The run frees itself after the callback. */
typedef void (*probe_done_fn)(struct probe_run *run, const struct probe_result *results,
			      size_t n_results, void *userdata);

/* Start all checks of cfg; cfg must stay alive until done is called or the run
 * is cancelled. Returns 0 or a negative errno (nothing started then). */
int probe_run_start(sd_event *e, const struct cfg *cfg, probe_done_fn done, void *userdata,
		    struct probe_run **ret);
/* The same, ending the run as soon as its verdict is certain (SPEC section 3,
 * "Speed"): once at least failed_checks link checks failed, or too few are
 * left to reach that, the link checks still in flight are stopped (their
 * sockets, curl handles and ping workers let go) and reported as
 * PROBE_CANCELLED. Backup checks always run to their end. */
int probe_run_start_early(sd_event *e, const struct cfg *cfg, probe_done_fn done, void *userdata,
			  struct probe_run **ret);
/* Abandon a run in flight (shutdown, maintenance window): no callback follows. */
void probe_run_cancel(struct probe_run *run);

const char *probe_outcome_str(enum probe_outcome o); /* "passed", "timeout", ... */
static inline int probe_passed(const struct probe_result *r)
{
	return r->outcome == PROBE_PASSED;
}
/* A cancelled check neither passed nor failed: it does not vote. */
static inline int probe_failed(const struct probe_result *r)
{
	return r->outcome != PROBE_PASSED && r->outcome != PROBE_CANCELLED;
}

/* rerouterd --once: one run, a table line per check, the verdict.
 * Returns the exit code: 0 passed, 1 failed, 2 error. */
int probe_once_main(const struct cfg *cfg);
