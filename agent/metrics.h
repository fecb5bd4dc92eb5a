/* [metrics] textfile: the Prometheus text format for node_exporter's
 * textfile collector (SPEC section 7), replaced atomically after every run. */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/change.h"
#include "config/config.h"
#include "probes/probe.h"

struct metrics_run {
	enum link_state state;
	uint64_t since_usec;       /* CLOCK_REALTIME */
	bool hold;
	uint64_t duration_usec;    /* of the run */
	bool failed;
	const struct probe_result *results;
	size_t n_results;
};

/* Writes cfg->metrics.textfile (nothing without one): the run from memory,
 * the counters and what is pending from the state database (left out when
 * it cannot be read). Errors are logged once until they change. */
void metrics_after_run(const struct cfg *cfg, sqlite3 *db, const struct metrics_run *m);
