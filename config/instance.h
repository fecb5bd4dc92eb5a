/* Several instances on one host (SPEC section 4): rerouterd@NAME writes
 * changed_by = rerouterd@NAME, and instances that share a transport
 * database must name disjoint connectors. */
#pragma once

#include <stddef.h>

#include "config/config.h"

#define CFG_INSTANCE_NAME_MAX 64

/* "rerouterd" (name NULL) or "rerouterd@NAME" into buf. Returns 0, or
 * -EINVAL with the reason in buf when NAME is empty, longer than
 * CFG_INSTANCE_NAME_MAX or has a character outside [A-Za-z0-9_.-]. */
int cfg_instance_changed_by(const char *name, char *buf, size_t size);

/* The other *.conf files in the directory of cfg->path that name the same
 * transport database: every connector both name in [on_down]/[on_up] is an
 * error in errs ("FILE:LINE: connector 'x' is also managed by OTHER ...");
 * an other file that cannot be loaded is a warning in warnings. Returns the
 * number of errors, or a negative errno (the directory cannot be read). */
int cfg_instance_overlap(const struct cfg *cfg, struct cfg_errors *errs, struct cfg_errors *warnings);
