/* The contract between the agent, which decides a change of state, and the
 * actions, which carry it out (SPEC section 4). The agent records the change
 * and all its steps as 'pending' in the state database in the same
 * transaction that records the new state (the schema: agent/schema.c). The
 * routing steps (connectors, transport, flush) are the reconciler's: it marks
 * them once the routes match the change's state. Hook and mail are events of
 * the change, each done once and marked, so that a start after a crash
 * finishes exactly what was left. */
#pragma once

#include <stdint.h>

/* unknown: nothing persisted yet, until the first decision (SPEC section 3). */
enum link_state { LINK_DOWN = 0, LINK_UP = 1, LINK_UNKNOWN = 2 };

static inline const char *link_state_str(enum link_state s)
{
	return s == LINK_UP ? "up" : s == LINK_DOWN ? "down" : "unknown";
}

static inline const char *link_state_upper(enum link_state s)
{
	return s == LINK_UP ? "UP" : s == LINK_DOWN ? "DOWN" : "UNKNOWN";
}

/* "up", "down"; anything else is unknown. */
static inline enum link_state link_state_parse(const char *s)
{
	if (s && s[0] == 'u' && s[1] == 'p' && !s[2])
		return LINK_UP;
	if (s && s[0] == 'd' && s[1] == 'o' && s[2] == 'w' && s[3] == 'n' && !s[4])
		return LINK_DOWN;
	return LINK_UNKNOWN;
}

/* Steps, in the order they are carried out; the names are stored in the database. */
enum change_step { STEP_CONNECTORS, STEP_TRANSPORT, STEP_FLUSH, STEP_HOOK, STEP_MAIL, _STEP_MAX };
/* Step status words: "pending", "done", "failed" (given up, reported), "skipped". */

static inline const char *change_step_str(enum change_step s)
{
	static const char *const n[] = { "connectors", "transport", "flush", "hook", "mail" };
	return (unsigned)s < _STEP_MAX ? n[s] : "?";
}
