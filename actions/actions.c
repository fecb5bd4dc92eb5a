/* STUB: replaced by the actions (issue 5). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "actions/actions.h"

struct actions {
	int dummy;
};

int actions_new(sd_event *e, sqlite3 *state_db, const struct cfg *cfg, struct alerts *alerts,
		struct actions **ret)
{
	(void)e, (void)state_db, (void)cfg, (void)alerts;
	*ret = calloc(1, sizeof **ret);
	return *ret ? 0 : -ENOMEM;
}

void actions_set_config(struct actions *a, const struct cfg *cfg)
{
	(void)a, (void)cfg;
}

void actions_kick(struct actions *a)
{
	(void)a;
}

int actions_busy(const struct actions *a)
{
	(void)a;
	return 0;
}

struct actions *actions_free(struct actions *a)
{
	free(a);
	return NULL;
}

int actions_check_connectors(const struct cfg *cfg, void (*report)(const char *name, void *ud),
			     void *ud)
{
	(void)cfg, (void)report, (void)ud;
	return -ENOENT;
}

int actions_ctl_init(const struct cfg *cfg)
{
	(void)cfg;
	fprintf(stderr, "rerouterctl: init is not implemented yet\n");
	return 1;
}

int actions_ctl_connectors(const struct cfg *cfg)
{
	(void)cfg;
	fprintf(stderr, "rerouterctl: connectors is not implemented yet\n");
	return 1;
}

int actions_ctl_toggle(const struct cfg *cfg, const char *name, int enabled)
{
	(void)cfg, (void)name, (void)enabled;
	fprintf(stderr, "rerouterctl: enable/disable is not implemented yet\n");
	return 1;
}
