/* Running a program from the event loop without a shell: fork/exec of an
 * argv, stdin from /dev/null, stdout and stderr read continuously and logged
 * line by line up to a small budget (then one "output truncated" line), in a
 * process group of its own that is killed at the timeout (SIGTERM, then
 * SIGKILL) and when the program ends; reaped by an sd-event child source.
 * The program gets PATH, LANG and env_add only, no fd above 2, and no
 * ambient or inheritable capability. Used by the transport flush and the hook. */
#pragma once

#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "agent/log.h"

enum exec_result {
	EXEC_EXITED,   /* code: the exit status (0: success) */
	EXEC_SIGNALED, /* code: the signal that ended it */
	EXEC_TIMEOUT,  /* killed at the timeout; code: the signal that ended it */
	EXEC_NOEXEC,   /* it could not be started; code: the errno */
};

struct exec_outcome {
	enum exec_result result;
	int code;
};

struct exec;
typedef void (*exec_done_fn)(struct exec *x, const struct exec_outcome *o, void *ud);

struct exec_params {
	char *const *argv;        /* argv[0] is executed directly (a path, no $PATH search) */
	char *const *env_add;     /* "KEY=VALUE": the environment besides PATH and LANG; may be NULL */
	uint64_t timeout_usec;    /* SIGTERM after this; 0: none */
	uint64_t kill_after_usec; /* SIGKILL this long after SIGTERM; 0: 5 s */
	const char *label;        /* for the log: "hook", "flush" */
	const struct log_field *fields; /* added to every log line of this run */
	size_t n_fields;
};

/* Starts the program; done is called once from the loop when it ended (never
 * from inside exec_start). SIGCHLD must be blocked (exec_start blocks it in
 * the calling thread; a multi-threaded program blocks it before its threads
 * start). */
int exec_start(sd_event *e, const struct exec_params *p, exec_done_fn done, void *ud,
	       struct exec **ret);
/* Kills (SIGKILL) a program still running and frees; done is not called. */
struct exec *exec_free(struct exec *x);
pid_t exec_pid(const struct exec *x);
/* "exit status 0", "killed by signal 9", "killed after the 30s timeout", ... */
void exec_outcome_str(const struct exec_outcome *o, char *buf, size_t size);
