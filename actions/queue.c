/* postqueue -j, counted. It runs while the alert is composed on the loop, so
 * it has a short deadline and is killed past it; the alert then says so. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actions/queue.h"
#include "agent/clock.h"

extern char **environ;

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

static int count_output(int fd, uint64_t deadline)
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
			k = 0;
		}
	}
	line[k] = '\0';
	return n + (k ? line_is_deferred(line) : 0);
}

int postfix_deferred_count(const char *postqueue, uint64_t timeout_usec)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none;
	char *const argv[] = { (char *)postqueue, "-j", NULL };
	int fds[2], status, n, r;
	pid_t pid;

	if (access(postqueue, X_OK) < 0)
		return -ENOENT;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	/* The daemon blocks its signals (sd-event reads them): not the child. */
	sigemptyset(&none);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	r = posix_spawn(&pid, postqueue, &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (r != 0) {
		close(fds[0]);
		return -r;
	}
	n = count_output(fds[0], clock_usec(CLOCK_MONOTONIC) + timeout_usec);
	close(fds[0]);
	if (n == -ETIMEDOUT)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n >= 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		n = -EIO;
	return n;
}
