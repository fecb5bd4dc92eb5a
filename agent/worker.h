/* Blocking work on a thread of its own, its end reported on the sd-event
 * loop: getaddrinfo() and liboping for the probes, the SMTP transfer of an
 * alert mail (libcurl's SMTP waits for the reply to the end of the data in a
 * blocking call, even under the multi interface). */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

struct worker;
typedef void (*worker_fn)(void *arg);

/* Run work(arg) on a new detached thread (every signal blocked), then
 * done(arg) on the loop; free_arg(arg) (if not NULL) runs after done, or when
 * the thread returns after worker_abandon(). Everything work() touches must
 * belong to arg. stack_size 0: a small default (256 KiB) that suits
 * getaddrinfo() and liboping. When worker_start() fails, arg stays with the
 * caller. */
int worker_start(sd_event *e, size_t stack_size, worker_fn work, worker_fn done,
		 worker_fn free_arg, void *arg, struct worker **ret);
/* The loop loses interest: done is never called, and the thread frees arg
 * when it returns, touching nothing the loop has freed. Not after done. */
void worker_abandon(struct worker *w);
/* Workers whose job is not freed yet (abandoned ones included): for tests,
 * and to say at exit that a thread is still busy. */
unsigned worker_live(void);
