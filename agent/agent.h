/* The daemon: scheduler, voting, maintenance windows, persisted state, reload. */
#pragma once

#include <stdbool.h>

#include "agent/change.h"
#include "config/config.h"

/* Run the daemon until SIGTERM/SIGINT. Takes ownership of cfg (a reload
 * replaces it). changed_by ("rerouterd" or "rerouterd@NAME", see
 * config/instance.h) stamps every write; it must outlive the call. Returns
 * the process exit code. */
int agent_main(const char *cfg_path, struct cfg *cfg, bool verbose, const char *changed_by);

/* rerouterctl status | history: exit codes. */
int agent_ctl_status(const struct cfg *cfg);
int agent_ctl_history(const struct cfg *cfg, unsigned n);
/* The same as one JSON document on stdout (agent/ctl_json.c). */
int agent_ctl_status_json(const struct cfg *cfg);
int agent_ctl_history_json(const struct cfg *cfg, unsigned n);
/* rerouterctl hold up|down [--for D] (for_usec 0: until release), and
 * release (hold LINK_UNKNOWN): recorded, and the daemon woken (SIGUSR1). */
int agent_ctl_hold(const struct cfg *cfg, enum link_state hold, uint64_t for_usec);
/* rerouterctl init: create the state database if missing. */
int agent_ctl_init(const struct cfg *cfg);
