/* The size of Postfix's deferred queue, for the alert: `postqueue -j`
 * (one JSON object per message) run with a deadline. */
#pragma once

#include <stdint.h>

#define POSTQUEUE_PATH "/usr/sbin/postqueue"

/* How many messages are deferred; -ENOENT without postqueue, -ETIMEDOUT
 * when it did not finish within timeout_usec (it is killed), -EIO when it
 * failed, with err set to its last complaint (or its exit status). */
int postfix_deferred_count(const char *postqueue, uint64_t timeout_usec, char *err, size_t errsize);
