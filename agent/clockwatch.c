#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "agent/clockwatch.h"
#include "agent/log.h"

struct clockwatch {
	int fd;
	sd_event_source *src;
	void (*fn)(void *ud);
	void *ud;
};

/* Arm far in the future: the timer never expires, only a clock set wakes it.
 * Arming again also clears the cancelled state after a set. */
static int arm(int fd)
{
	struct itimerspec its = { .it_value = { .tv_sec = (time_t)INT32_MAX } };

	if (timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL) < 0)
		return -errno;
	return 0;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct clockwatch *w = userdata;
	uint64_t n;
	int r;

	(void)s, (void)revents;
	if (read(fd, &n, sizeof n) >= 0 || errno == EAGAIN || errno == EINTR)
		return 0;
	if (errno != ECANCELED) {
		log_warn_errno(-errno, "clock change watch: read");
		return 0;
	}
	/* The clock was set. */
	if ((r = arm(fd)) < 0)
		log_warn_errno(r, "clock change watch: cannot re-arm");
	w->fn(w->ud);
	return 0;
}

int clockwatch_new(sd_event *e, void (*fn)(void *ud), void *ud, struct clockwatch **ret)
{
	struct clockwatch *w = calloc(1, sizeof *w);
	int r;

	*ret = NULL;
	if (!w)
		return -ENOMEM;
	w->fn = fn;
	w->ud = ud;
	w->fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
	if (w->fd < 0) {
		r = -errno;
		goto fail;
	}
	if ((r = arm(w->fd)) < 0 || (r = sd_event_add_io(e, &w->src, w->fd, EPOLLIN, on_io, w)) < 0)
		goto fail;
	*ret = w;
	return 0;
fail:
	clockwatch_free(w);
	return r;
}

struct clockwatch *clockwatch_free(struct clockwatch *w)
{
	if (!w)
		return NULL;
	sd_event_source_disable_unref(w->src);
	if (w->fd >= 0)
		close(w->fd);
	free(w);
	return NULL;
}
