/* Blocking work (liboping's ping_send(), getaddrinfo(), an SMTP transfer) on
 * a thread of its own, its end signalled to the loop through an eventfd. The job is shared by
 * the loop and the thread with a reference count, so whichever lets go last
 * frees it: a worker that outlives its deadline (a resolver that never
 * answers) finishes later and cleans up after itself, touching nothing of the
 * run. One thread per job, not a pool: every check of a run must be able to
 * block until its own deadline at the same time. Detached: at exit nobody
 * waits for a thread stuck on a server (its work is lost, not half-done). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "agent/worker.h"

/* getaddrinfo() and liboping need little stack; a small one keeps a run of
 * hundreds of pings cheap. Sanitizer builds need several times more. */
#define WORKER_STACK_DEFAULT (256 * 1024)
#if defined(__SANITIZE_ADDRESS__)
#define WORKER_STACK_FACTOR 4
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WORKER_STACK_FACTOR 4
#endif
#endif
#ifndef WORKER_STACK_FACTOR
#define WORKER_STACK_FACTOR 1
#endif

struct worker {
	atomic_int refs;
	int efd;
	sd_event_source *io;
	worker_fn work, done, free_arg;
	void *arg;
};

static atomic_uint live;

unsigned worker_live(void)
{
	return atomic_load(&live);
}

static void job_unref(struct worker *j)
{
	if (atomic_fetch_sub(&j->refs, 1) != 1)
		return;
	close(j->efd);
	if (j->free_arg)
		j->free_arg(j->arg);
	free(j);
	atomic_fetch_sub(&live, 1);
}

static void *worker_main(void *p)
{
	struct worker *j = p;
	uint64_t one = 1;

	j->work(j->arg);
	/* An eventfd write of 1 cannot fail or block here. */
	(void)!write(j->efd, &one, sizeof one);
	job_unref(j);
	return NULL;
}

static int on_job_done(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct worker *j = userdata;

	j->io = sd_event_source_disable_unref(j->io);
	/* done() may abandon nothing any more: the job is over. */
	j->done(j->arg);
	job_unref(j);
	return 0;
}

int worker_start(sd_event *e, size_t stack_size, worker_fn work, worker_fn done,
		 worker_fn free_arg, void *arg, struct worker **ret)
{
	struct worker *j;
	pthread_attr_t attr;
	pthread_t t;
	sigset_t all, old;
	int r;

	j = calloc(1, sizeof *j);
	if (!j)
		return -ENOMEM;
	j->work = work;
	j->done = done;
	j->free_arg = free_arg;
	j->arg = arg;
	atomic_init(&j->refs, 2);
	j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (j->efd < 0) {
		r = -errno;
		free(j);
		return r;
	}
	r = sd_event_add_io(e, &j->io, j->efd, EPOLLIN, on_job_done, j);
	if (r < 0) {
		close(j->efd);
		free(j);
		return r;
	}
	sd_event_source_set_description(j->io, "worker");

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr,
				  (stack_size ? stack_size : WORKER_STACK_DEFAULT) * WORKER_STACK_FACTOR);
	/* Signals stay with the loop thread (sd_event_add_signal blocks them there;
	 * a worker must not catch them either). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	atomic_fetch_add(&live, 1);
	r = -pthread_create(&t, &attr, worker_main, j);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (r < 0) {
		atomic_fetch_sub(&live, 1);
		sd_event_source_disable_unref(j->io);
		close(j->efd);
		free(j);
		return r;
	}
	*ret = j;
	return 0;
}

void worker_abandon(struct worker *j)
{
	if (!j)
		return;
	j->io = sd_event_source_disable_unref(j->io);
	job_unref(j);
}
