/* STUB: replaced by the probes (issue 3). */
#include "config.h"

#include <errno.h>
#include <stdio.h>

#include "probes/probe.h"

int probe_run_start(sd_event *e, const struct cfg *cfg, probe_done_fn done, void *userdata,
		    struct probe_run **ret)
{
	(void)e, (void)cfg, (void)done, (void)userdata, (void)ret;
	return -ENOSYS;
}

void probe_run_cancel(struct probe_run *run)
{
	(void)run;
}

const char *probe_outcome_str(enum probe_outcome o)
{
	(void)o;
	return "error";
}

int probe_once_main(const struct cfg *cfg)
{
	(void)cfg;
	fprintf(stderr, "rerouterd: --once is not implemented yet\n");
	return 2;
}
