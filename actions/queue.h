/* The size of Postfix's deferred queue, for the alert: `postqueue -j`
 * (one JSON object per message) run with a deadline. */
#pragma once

#include <stdint.h>

#define POSTQUEUE_PATH "/usr/sbin/postqueue"

/* How many messages are deferred; -ENOENT without postqueue, -ETIMEDOUT
 * when it did not finish within timeout_usec (it is killed), another
 * negative errno when it failed. */
int postfix_deferred_count(const char *postqueue, uint64_t timeout_usec);
