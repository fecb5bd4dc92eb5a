/* STUB: replaced by the alerts (issue 6). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "actions/alert.h"

struct alerts {
	int dummy;
};

int alerts_new(sd_event *e, sqlite3 *state_db, const struct cfg *cfg, struct alerts **ret)
{
	(void)e, (void)state_db, (void)cfg;
	*ret = calloc(1, sizeof **ret);
	return *ret ? 0 : -ENOMEM;
}

void alerts_set_config(struct alerts *a, const struct cfg *cfg)
{
	(void)a, (void)cfg;
}

int alerts_enqueue_change(struct alerts *a, int64_t change_id)
{
	(void)a, (void)change_id;
	return 0;
}

void alerts_kick(struct alerts *a)
{
	(void)a;
}

struct alerts *alerts_free(struct alerts *a)
{
	free(a);
	return NULL;
}

int alerts_count_pending(sqlite3 *state_db)
{
	(void)state_db;
	return 0;
}

int alerts_test_mail_main(const struct cfg *cfg)
{
	(void)cfg;
	fprintf(stderr, "rerouterd: --test-mail is not implemented yet\n");
	return 1;
}
