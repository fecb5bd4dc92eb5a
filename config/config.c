/* STUB: replaced by the configuration parser (issue 2). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "config/config.h"

int cfg_load(const char *path, struct cfg **ret, struct cfg_errors *errs)
{
	(void)path, (void)errs;
	*ret = NULL;
	return -ENOSYS;
}

int cfg_load_string(const char *name, const char *text, struct cfg **ret, struct cfg_errors *errs)
{
	(void)name, (void)text, (void)errs;
	*ret = NULL;
	return -ENOSYS;
}

void cfg_free(struct cfg *c)
{
	free(c);
}

void cfg_errors_clear(struct cfg_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		free(errs->v[i]);
	free(errs->v);
	errs->v = NULL;
	errs->n = 0;
}

int cfg_parse_duration(const char *s, uint64_t *ret_usec) { (void)s, (void)ret_usec; return -EINVAL; }
int cfg_parse_bool(const char *s, bool *ret) { (void)s, (void)ret; return -EINVAL; }
int cfg_parse_hostport(const char *s, char **h, uint16_t *p) { (void)s, (void)h, (void)p; return -EINVAL; }
const char *cfg_check_type_str(enum cfg_check_type t) { (void)t; return "?"; }
const char *cfg_role_str(enum cfg_role r) { (void)r; return "?"; }
