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

int agent_ctl_status(const struct cfg *cfg)
{
	(void)cfg;
	fprintf(stderr, "rerouterctl: status is not implemented yet\n");
	return 1;
}

int agent_ctl_history(const struct cfg *cfg, unsigned n)
{
	(void)cfg, (void)n;
	fprintf(stderr, "rerouterctl: history is not implemented yet\n");
	return 1;
}

int agent_ctl_init(const struct cfg *cfg)
{
	(void)cfg;
	fprintf(stderr, "rerouterctl: init of the state database is not implemented yet\n");
	return 1;
}
