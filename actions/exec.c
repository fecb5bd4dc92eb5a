/* fork/exec without a shell, watched from the event loop (relayd's
 * check_script.c, without its blocking waitpid). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actions/exec.h"

#define DEFAULT_KILL_AFTER_USEC (5 * USEC_PER_SEC_)
#define USEC_PER_SEC_ 1000000ULL
#define LINE_MAX_ 1024
/* What a run may put in the journal: a hook that writes without end (`yes`)
 * must not flood it. Past either limit one "output truncated" line is logged
 * and the rest is read and dropped, so the program never blocks on a full pipe. */
#define OUTPUT_MAX_LINES 20
#define OUTPUT_MAX_BYTES 4096
/* Read at most this much per wakeup, so that a flood never keeps the event
 * loop (probes, decisions) from its other sources. */
#define READ_PER_WAKEUP (64 * 1024)
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct exec {
	sd_event *event;
	sd_event_source *child_src, *out_src, *timer_src, *done_src;
	struct exec_outcome outcome;
	pid_t pid;
	int out_fd, err_fd;           /* output pipe; exec error pipe (CLOEXEC) */
	bool exited, timed_out, killed;
	uint64_t kill_after_usec;
	char *label;
	struct log_field *fields;
	size_t n_fields;
	char line[LINE_MAX_];
	size_t line_len;
	size_t logged_lines, logged_bytes;
	bool truncated;
	uint64_t dropped_bytes;
	exec_done_fn done;
	void *ud;
};

pid_t exec_pid(const struct exec *x)
{
	return x->pid;
}

void exec_outcome_str(const struct exec_outcome *o, char *buf, size_t size)
{
	switch (o->result) {
	case EXEC_EXITED: snprintf(buf, size, "exit status %d", o->code); break;
	case EXEC_SIGNALED: snprintf(buf, size, "killed by signal %s", sigabbrev_np(o->code) ? sigabbrev_np(o->code) : "?"); break;
	case EXEC_TIMEOUT: snprintf(buf, size, "killed at the timeout (SIG%s)", sigabbrev_np(o->code) ? sigabbrev_np(o->code) : "?"); break;
	case EXEC_NOEXEC: snprintf(buf, size, "cannot execute: %s", strerror(o->code)); break;
	}
}

static void emit_line(struct exec *x)
{
	x->line[x->line_len] = '\0';
	/* Control characters (escape sequences, NULs) do not reach the journal as such. */
	for (size_t i = 0; i < x->line_len; i++)
		if (((unsigned char)x->line[i] < 0x20 && x->line[i] != '\t') || x->line[i] == 0x7f)
			x->line[i] = '?';
	log_full(LOG_INFO, 0, x->fields, x->n_fields, "%s[%d]: %s", x->label, (int)x->pid, x->line);
	x->logged_lines++;
	x->logged_bytes += x->line_len;
	x->line_len = 0;
}

static void take_bytes(struct exec *x, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (x->truncated) {
			x->dropped_bytes += n - i;
			return;
		}
		if (x->logged_lines >= OUTPUT_MAX_LINES ||
		    x->logged_bytes + x->line_len >= OUTPUT_MAX_BYTES) {
			x->truncated = true;
			x->line_len = 0;
			log_full(LOG_WARNING, 0, x->fields, x->n_fields,
				 "%s[%d]: output truncated (more than %d lines or %d bytes); the rest is not logged",
				 x->label, (int)x->pid, OUTPUT_MAX_LINES, OUTPUT_MAX_BYTES);
			continue;
		}
		if (buf[i] == '\n') {
			emit_line(x);
			continue;
		}
		x->line[x->line_len++] = buf[i];
		if (x->line_len == sizeof x->line - 1)
			emit_line(x);
	}
}

/* Reads what is there now, at most READ_PER_WAKEUP (the fd is non-blocking;
 * level-triggered, so the loop comes back for the rest); returns 1 at EOF. */
static int drain(struct exec *x, size_t budget)
{
	char buf[4096];

	while (budget > 0) {
		ssize_t n = read(x->out_fd, buf, sizeof buf);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : 1;
		}
		if (n == 0) {
			if (x->line_len > 0 && !x->truncated)
				emit_line(x);
			return 1;
		}
		take_bytes(x, buf, (size_t)n);
		budget = (size_t)n < budget ? budget - (size_t)n : 0;
	}
	return 0;
}

static void close_output(struct exec *x)
{
	x->out_src = sd_event_source_disable_unref(x->out_src);
	if (x->out_fd >= 0)
		close(x->out_fd);
	x->out_fd = -1;
}

static int on_output(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct exec *x = ud;

	(void)s, (void)fd, (void)revents;
	if (drain(x, READ_PER_WAKEUP))
		close_output(x);
	return 0;
}

static void send_signal(struct exec *x, int sig)
{
	if (x->exited)
		return;
	/* The whole process group: a hook's own children die with it. */
	if (kill(-x->pid, sig) < 0)
		kill(x->pid, sig);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct exec *x = ud;

	(void)usec;
	if (!x->timed_out) {
		x->timed_out = true;
		log_full(LOG_WARNING, 0, x->fields, x->n_fields,
			 "%s[%d]: timeout, sending SIGTERM", x->label, (int)x->pid);
		send_signal(x, SIGTERM);
		sd_event_source_set_time_relative(s, x->kill_after_usec);
		sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	} else if (!x->killed) {
		x->killed = true;
		log_full(LOG_WARNING, 0, x->fields, x->n_fields,
			 "%s[%d]: still running, sending SIGKILL", x->label, (int)x->pid);
		send_signal(x, SIGKILL);
	}
	return 0;
}

static int on_done(sd_event_source *s, void *ud)
{
	struct exec *x = ud;

	(void)s;
	x->done(x, &x->outcome, x->ud);
	return 0;
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *ud)
{
	struct exec *x = ud;
	struct exec_outcome o;
	int err = 0;

	(void)s;
	x->exited = true;
	x->timer_src = sd_event_source_disable_unref(x->timer_src);
	/* The error pipe holds an errno only when execve() failed. */
	if (read(x->err_fd, &err, sizeof err) == (ssize_t)sizeof err && err > 0) {
		o = (struct exec_outcome){ EXEC_NOEXEC, err };
	} else if (si->si_code == CLD_EXITED) {
		o = (struct exec_outcome){ EXEC_EXITED, si->si_status };
	} else {
		o = (struct exec_outcome){ x->timed_out ? EXEC_TIMEOUT : EXEC_SIGNALED, si->si_status };
	}
	/* Whatever the program left running in its group dies with it: a hook
	 * does not outlive its run (the leader is a zombie until sd-event reaps
	 * it after this callback, so the group id cannot have been reused). */
	kill(-x->pid, SIGKILL);
	/* What the program wrote before it ended (bounded: a grandchild that
	 * left the group and keeps the pipe open does not hold us up). */
	if (x->out_fd >= 0) {
		drain(x, READ_PER_WAKEUP);
		close_output(x);
	}
	if (x->truncated)
		log_full(LOG_INFO, 0, x->fields, x->n_fields, "%s[%d]: %" PRIu64 " bytes of output not logged",
			 x->label, (int)x->pid, x->dropped_bytes);
	/* Report from a defer source: sd-event reaps the child after this
	 * callback returns, and the owner may free everything in done(). */
	x->outcome = o;
	if (sd_event_add_defer(x->event, &x->done_src, on_done, x) < 0)
		on_done(NULL, x);
	return 0;
}

static void free_env(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

/* The program gets PATH and LANG and what the caller adds (the REROUTER_*
 * variables), nothing else of the daemon's: no NOTIFY_SOCKET or WATCHDOG_*
 * (the hook is not the service), no proxy settings, no credentials. */
static char **build_env(char *const *add)
{
	static const char *const keep[] = { "PATH", "LANG" };
	size_t n_add = 0, k = 0;
	char **env;

	while (add && add[n_add])
		n_add++;
	env = calloc(n_add + 3, sizeof *env);
	if (!env)
		return NULL;
	for (size_t i = 0; i < 2; i++) {
		const char *v = getenv(keep[i]);
		size_t len = strlen(keep[i]);
		bool added = false;
		for (size_t j = 0; j < n_add && !added; j++)
			added = !strncmp(add[j], keep[i], len) && add[j][len] == '=';
		if (added)
			continue;
		if (!v && i == 0)
			v = DEFAULT_PATH;
		if (!v)
			continue;
		if (asprintf(&env[k], "%s=%s", keep[i], v) < 0)
			goto fail;
		k++;
	}
	for (size_t j = 0; j < n_add; j++)
		if (!(env[k++] = strdup(add[j])))
			goto fail;
	return env;
fail:
	env[k] = NULL;
	free_env(env);
	return NULL;
}

/* CAP_NET_RAW is the daemon's, for ping, not the hook's: no ambient set
 * (which would carry it across execve) and no inheritable set (which a
 * program with file capabilities could pick it up from). Raw syscalls:
 * async-signal-safe, and no libcap for one call. */
static int drop_capabilities(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -1;
	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	for (size_t i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		d[i].inheritable = 0;
	return (int)syscall(SYS_capset, &h, d);
}

/* Everything else open in the daemon (databases, sockets, the bus, the
 * journal) stays out of the program. keep is CLOEXEC: it is closed by a
 * successful execve and stays open to report a failed one. */
static void close_other_fds(int keep)
{
	struct rlimit rl;

	if (close_range(STDERR_FILENO + 1, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	/* Before Linux 5.11: one by one, as far as the limit goes. */
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 65536)
		rl.rlim_cur = 65536;
	for (int fd = STDERR_FILENO + 1; fd < (int)rl.rlim_cur; fd++)
		if (fd != keep)
			close(fd);
}

/* Between fork and exec: async-signal-safe calls only. */
static void __attribute__((noreturn)) child(const struct exec_params *p, char **env, int out_w,
					     int err_w)
{
	sigset_t none;
	int null_fd, e;

	/* Its own process group, so that the timeout kills all it started. */
	setpgid(0, 0);
	/* sd-event blocked signals in the parent; the program must not inherit that. */
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(out_w, STDOUT_FILENO) < 0 ||
	    dup2(out_w, STDERR_FILENO) < 0)
		goto fail;
	if (err_w <= STDERR_FILENO)
		goto fail;
	if (drop_capabilities() < 0)
		goto fail;
	close_other_fds(err_w);
	execve(p->argv[0], p->argv, env);
fail:
	e = errno;
	if (write(err_w, &e, sizeof e) < 0)
		_exit(127);
	_exit(127);
}

int exec_start(sd_event *e, const struct exec_params *p, exec_done_fn done, void *ud,
	       struct exec **ret)
{
	int out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	struct exec *x = NULL;
	char **env = NULL;
	sigset_t chld;
	int r;

	if (!p->argv || !p->argv[0] || !done)
		return -EINVAL;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);

	x = calloc(1, sizeof *x);
	if (!x)
		return -ENOMEM;
	x->out_fd = x->err_fd = -1;
	x->pid = -1;
	x->event = sd_event_ref(e);
	x->done = done;
	x->ud = ud;
	x->kill_after_usec = p->kill_after_usec ? p->kill_after_usec : DEFAULT_KILL_AFTER_USEC;
	x->label = strdup(p->label ? p->label : p->argv[0]);
	x->fields = calloc(p->n_fields + 1, sizeof *x->fields);
	if (!x->label || !x->fields) {
		r = -ENOMEM;
		goto fail;
	}
	/* The field strings must outlive the caller's array. */
	for (size_t i = 0; i < p->n_fields; i++) {
		x->fields[i].key = p->fields[i].key;
		x->fields[i].value = p->fields[i].value ? strdup(p->fields[i].value) : NULL;
	}
	x->n_fields = p->n_fields;

	env = build_env(p->env_add);
	if (!env || pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		r = env ? -errno : -ENOMEM;
		goto fail;
	}
	x->pid = fork();
	if (x->pid < 0) {
		r = -errno;
		goto fail;
	}
	if (x->pid == 0)
		child(p, env, out[1], errp[1]);
	setpgid(x->pid, x->pid); /* as in the child: no race with the first kill */
	close(out[1]);
	close(errp[1]);
	out[1] = errp[1] = -1;
	x->out_fd = out[0];
	x->err_fd = errp[0];
	fcntl(x->out_fd, F_SETFL, O_NONBLOCK);
	fcntl(x->err_fd, F_SETFL, O_NONBLOCK);
	free_env(env);
	env = NULL;

	r = sd_event_add_child(e, &x->child_src, x->pid, WEXITED, on_child, x);
	if (r < 0)
		goto fail_kill;
	r = sd_event_add_io(e, &x->out_src, x->out_fd, EPOLLIN, on_output, x);
	if (r < 0)
		goto fail_kill;
	if (p->timeout_usec > 0) {
		r = sd_event_add_time_relative(e, &x->timer_src, CLOCK_MONOTONIC, p->timeout_usec, 0,
					       on_timer, x);
		if (r < 0)
			goto fail_kill;
	}
	*ret = x;
	return 0;

fail_kill:
	/* Reaped here also when the child source exists: it is dropped unused
	 * (exited = true makes exec_free skip the reaping), and the child was
	 * just SIGKILLed, so the wait returns at once. */
	kill(x->pid, SIGKILL);
	waitpid(x->pid, NULL, 0);
	x->exited = true;
fail:
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0 && out[i] != x->out_fd)
			close(out[i]);
		if (errp[i] >= 0 && errp[i] != x->err_fd)
			close(errp[i]);
	}
	free_env(env);
	exec_free(x);
	return r;
}

struct exec *exec_free(struct exec *x)
{
	if (!x)
		return NULL;
	if (!x->exited && x->pid > 0)
		send_signal(x, SIGKILL);
	/* With the child source gone sd-event no longer reaps it; it was killed,
	 * so this wait is immediate. */
	if (x->child_src && !x->exited)
		waitpid(x->pid, NULL, 0);
	sd_event_source_disable_unref(x->child_src);
	sd_event_source_disable_unref(x->timer_src);
	sd_event_source_disable_unref(x->done_src);
	close_output(x);
	if (x->err_fd >= 0)
		close(x->err_fd);
	for (size_t i = 0; i < x->n_fields; i++)
		free((char *)x->fields[i].value);
	free(x->fields);
	free(x->label);
	sd_event_unref(x->event);
	free(x);
	return NULL;
}
