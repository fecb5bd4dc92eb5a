/* STUB: replaced by the agent (issue 4). */
#include "config.h"

#include <stdio.h>

#include "agent/agent.h"

int agent_main(const char *cfg_path, struct cfg *cfg, bool verbose)
{
	(void)cfg_path, (void)verbose;
	fprintf(stderr, "rerouterd: the daemon is not implemented yet\n");
	cfg_free(cfg);
	return 1;
}

