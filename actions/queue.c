/* postqueue -j, counted. Blocking: it runs on the alert's gathering thread
 * (actions/alert.c), never on the loop, with a deadline past which it is
 * killed and the alert says so. Like the hook, it gets a clean environment
 * and no fd above 2. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actions/queue.h"
#include "agent/clock.h"

/* A line is one message: {"queue_name": "deferred", ...}. The key and its
 * string value are matched as JSON tokens (blanks allowed around ':'). */
static bool line_is_deferred(const char *s)
{
	const char *p = strstr(s, "\"queue_name\"");

	if (!p)
		return false;
	p += strlen("\"queue_name\"");
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p++ != ':')
		return false;
	while (*p == ' ' || *p == '\t')
		p++;
	return !strncmp(p, "\"deferred\"", 10);
}

/* postqueue's own complaint ("fatal: Queue report unavailable - mail
 * system is down") is worth more to the admin than an exit status. */
static void keep_complaint(const char *line, char *err, size_t errsize)
{
	if (errsize && line[0] && line[0] != '{')
		snprintf(err, errsize, "%s", line);
}

static int count_output(int fd, uint64_t deadline, char *err, size_t errsize)
{
	char line[8192];
	size_t k = 0;
	int n = 0;

	for (;;) {
		uint64_t now = clock_usec(CLOCK_MONOTONIC);
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (now >= deadline)
			return -ETIMEDOUT;
		int r = poll(&pfd, 1, (int)((deadline - now) / 1000) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -ETIMEDOUT;
		char buf[4096];
		ssize_t got = read(fd, buf, sizeof buf);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			break;
		for (ssize_t i = 0; i < got; i++) {
			if (buf[i] != '\n') {
				/* A line longer than the buffer keeps its start: the key comes first. */
				if (k + 1 < sizeof line)
					line[k++] = buf[i];
				continue;
			}
			line[k] = '\0';
			n += line_is_deferred(line);
			keep_complaint(line, err, errsize);
			k = 0;
		}
	}
	line[k] = '\0';
	keep_complaint(line, err, errsize);
	return n + (k ? line_is_deferred(line) : 0);
}

int postfix_deferred_count(const char *postqueue, uint64_t timeout_usec, char *err, size_t errsize)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none;
	char *const argv[] = { (char *)postqueue, "-j", NULL };
	/* Nothing of the daemon's own (NOTIFY_SOCKET, WATCHDOG_*, proxies). */
	char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	int fds[2], status, n, r;
	pid_t pid;

	if (errsize)
		err[0] = '\0';
	if (access(postqueue, X_OK) < 0)
		return -ENOENT;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDERR_FILENO);
	posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
	/* The daemon blocks its signals (sd-event reads them): not the child. */
	sigemptyset(&none);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	r = posix_spawn(&pid, postqueue, &fa, &attr, argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (r != 0) {
		close(fds[0]);
		return -r;
	}
	n = count_output(fds[0], clock_usec(CLOCK_MONOTONIC) + timeout_usec, err, errsize);
	close(fds[0]);
	if (n == -ETIMEDOUT)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n >= 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		if (errsize && !err[0])
			snprintf(err, errsize, "%s %d", WIFEXITED(status) ? "exit status" : "killed by signal",
				 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		n = -EIO;
	}
	return n;
}
