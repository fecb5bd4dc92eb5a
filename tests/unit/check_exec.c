/* fork/exec without a shell on a real sd_event loop: argv intact, the
 * environment, stdin, output captured into the log, the timeout's kills;
 * and the sandbox: a clean environment, no fd or capability of the daemon's,
 * the process group killed, the output bounded. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actions/exec.h"
#include "agent/log.h"

static char logpath[320], dir[256];
static int saved_stderr = -1;

/* The log goes to stderr in tests: send it to a file to read back what the
 * program wrote (O_APPEND: a test may truncate it between runs). */
static void setup(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/check_exec.XXXXXX", t ? t : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(logpath, sizeof logpath, "%s/log", dir);
	int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	log_setup("check_exec", true, false);
}

static void teardown(void)
{
	char p[300];
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	unlink(logpath);
	snprintf(p, sizeof p, "%s/injected", dir);
	unlink(p);
	rmdir(dir);
}

static char *read_log(void)
{
	static char buf[16384];
	fflush(stderr);
	FILE *f = fopen(logpath, "r");
	ck_assert_ptr_nonnull(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

struct result {
	struct exec_outcome o;
	int calls;
	struct exec *x;
};

static void on_done(struct exec *x, const struct exec_outcome *o, void *ud)
{
	struct result *r = ud;
	r->o = *o;
	r->calls++;
	r->x = exec_free(x);
}

static struct exec_outcome run(char *const *argv, char *const *env, uint64_t timeout_usec,
			       uint64_t kill_after_usec)
{
	sd_event *e = NULL;
	struct result r = { 0 };
	const struct log_field f[] = { { "REROUTER_ACTION", "test" } };
	struct exec_params p = { argv, env, timeout_usec, kill_after_usec, "prog", f, 1 };

	ck_assert_int_ge(sd_event_new(&e), 0);
	ck_assert_int_eq(exec_start(e, &p, on_done, &r, &r.x), 0);
	/* The loop runs until done() was called: poll it one iteration at a time. */
	for (int i = 0; i < 100000 && r.calls == 0; i++)
		ck_assert_int_ge(sd_event_run(e, 100000), 0);
	ck_assert_int_eq(r.calls, 1);
	sd_event_unref(e);
	return r.o;
}

START_TEST(test_argv_no_shell)
{
	char inj[400];
	snprintf(inj, sizeof inj, "a b; touch %s/injected", dir);
	char *const argv[] = { "/usr/bin/printf", "[%s]|[%s]\\n", inj, "$HOME `id`", NULL };
	struct exec_outcome o = run(argv, NULL, 0, 0);
	ck_assert_int_eq(o.result, EXEC_EXITED);
	ck_assert_int_eq(o.code, 0);
	char want[600];
	snprintf(want, sizeof want, "[%s]|[$HOME `id`]", inj);
	ck_assert_msg(strstr(read_log(), want), "log: %s", read_log());
	char p[300];
	snprintf(p, sizeof p, "%s/injected", dir);
	ck_assert_int_ne(access(p, F_OK), 0);
}
END_TEST

START_TEST(test_env_stdin_exit)
{
	/* Nothing of the daemon's environment but PATH and LANG. */
	setenv("RR_KEEP", "kept", 1);
	setenv("REROUTER_STATE", "old-value", 1);
	setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
	setenv("WATCHDOG_USEC", "30000000", 1);
	setenv("https_proxy", "http://proxy.invalid:3128", 1);
	setenv("LANG", "C.UTF-8", 1);
	setenv("PATH", "/usr/bin:/bin", 1);
	char *const argv[] = { "/bin/sh", "-c",
			       "echo \"S=$REROUTER_STATE P=$REROUTER_PREVIOUS K=$RR_KEEP\"; "
			       "echo \"N=$NOTIFY_SOCKET W=$WATCHDOG_USEC X=$https_proxy\"; "
			       "echo \"L=$LANG P=$PATH\"; echo n=$(env | grep -v -e '^PWD=' -e '^SHLVL=' -e '^_=' | wc -l); "
			       "cat; echo stdin-eof; echo to-stderr >&2; printf no-newline; exit 3",
			       NULL };
	char *const env[] = { "REROUTER_STATE=down", "REROUTER_PREVIOUS=up", NULL };
	struct exec_outcome o = run(argv, env, 10 * 1000000ULL, 0);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("https_proxy");
	ck_assert_int_eq(o.result, EXEC_EXITED);
	ck_assert_int_eq(o.code, 3);
	const char *log = read_log();
	ck_assert_msg(strstr(log, "S=down P=up K=\n"), "log: %s", log);
	ck_assert_msg(strstr(log, "N= W= X=\n"), "log: %s", log);
	ck_assert_msg(strstr(log, "L=C.UTF-8 P=/usr/bin:/bin\n"), "log: %s", log);
	/* PATH, LANG, the two REROUTER_ (a shell may add PWD, SHLVL and _). */
	ck_assert_msg(strstr(log, "n=4\n"), "log: %s", log);
	ck_assert_msg(strstr(log, "stdin-eof"), "log: %s", log);
	ck_assert_msg(strstr(log, "to-stderr"), "log: %s", log);
	ck_assert_msg(strstr(log, "no-newline"), "log: %s", log);
	char buf[64];
	exec_outcome_str(&o, buf, sizeof buf);
	ck_assert_str_eq(buf, "exit status 3");
}
END_TEST

START_TEST(test_timeout_term)
{
	char *const argv[] = { "/bin/sleep", "30", NULL };
	struct exec_outcome o = run(argv, NULL, 200 * 1000ULL, 5 * 1000000ULL);
	ck_assert_int_eq(o.result, EXEC_TIMEOUT);
	ck_assert_int_eq(o.code, SIGTERM);
}
END_TEST

START_TEST(test_timeout_kill)
{
	/* Traps TERM: only the SIGKILL that follows ends it. */
	char *const argv[] = { "/bin/sh", "-c", "trap 'echo got-term' TERM; echo ready; "
						"while :; do sleep 0.05; done", NULL };
	struct exec_outcome o = run(argv, NULL, 300 * 1000ULL, 300 * 1000ULL);
	ck_assert_int_eq(o.result, EXEC_TIMEOUT);
	ck_assert_int_eq(o.code, SIGKILL);
	const char *log = read_log();
	ck_assert_msg(strstr(log, "ready"), "log: %s", log);
	ck_assert_msg(strstr(log, "sending SIGTERM"), "log: %s", log);
	ck_assert_msg(strstr(log, "sending SIGKILL"), "log: %s", log);
}
END_TEST

START_TEST(test_noexec)
{
	char *const argv[] = { "/nonexistent/program", "x", NULL };
	struct exec_outcome o = run(argv, NULL, 0, 0);
	ck_assert_int_eq(o.result, EXEC_NOEXEC);
	ck_assert_int_eq(o.code, ENOENT);
	/* No $PATH search, no shell: a bare name is not found either. */
	char *const bare[] = { "true", NULL };
	o = run(bare, NULL, 0, 0);
	ck_assert_int_eq(o.result, EXEC_NOEXEC);
}
END_TEST

/* The fds of the daemon (here: one opened without CLOEXEC) stay out. */
START_TEST(test_fds_closed)
{
	int fd = open("/dev/null", O_RDONLY);
	ck_assert_int_gt(fd, 2);
	char script[200];
	snprintf(script, sizeof script,
		 "if [ -e /proc/self/fd/%d ]; then echo fd-open; else echo fd-closed; fi; "
		 "ls /proc/self/fd | wc -l", fd);
	char *const argv[] = { "/bin/sh", "-c", script, NULL };
	struct exec_outcome o = run(argv, NULL, 10 * 1000000ULL, 0);
	close(fd);
	ck_assert_int_eq(o.result, EXEC_EXITED);
	const char *log = read_log();
	ck_assert_msg(strstr(log, "fd-closed"), "log: %s", log);
	/* ls sees 0, 1, 2 and its own directory fd. */
	ck_assert_msg(strstr(log, "prog[") && strstr(log, ": 4\n"), "log: %s", log);
}
END_TEST

static unsigned long long cap_field(const char *log, const char *key)
{
	const char *p = strstr(log, key);
	ck_assert_msg(p, "no %s in: %s", key, log);
	return strtoull(p + strlen(key), NULL, 16);
}

/* CAP_NET_RAW in the daemon's ambient and inheritable sets (as systemd's
 * AmbientCapabilities= gives it) does not reach the program. */
START_TEST(test_no_ambient_caps)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	ck_assert_int_eq(syscall(SYS_capget, &h, d), 0);
	if (!(d[0].permitted & (1u << CAP_NET_RAW))) {
		fprintf(stdout, "SKIP no CAP_NET_RAW to hand on\n");
		return;
	}
	d[0].inheritable |= 1u << CAP_NET_RAW;
	ck_assert_int_eq(syscall(SYS_capset, &h, d), 0);
	ck_assert_int_eq(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0), 0);
	ck_assert_int_eq(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_RAW, 0, 0), 1);
	char *const argv[] = { "/bin/grep", "^Cap[IA][nm][hb]:", "/proc/self/status", NULL };
	struct exec_outcome o = run(argv, NULL, 10 * 1000000ULL, 0);
	ck_assert_int_eq(o.result, EXEC_EXITED);
	const char *log = read_log();
	ck_assert_msg(cap_field(log, "CapInh:\t") == 0, "log: %s", log);
	ck_assert_msg(cap_field(log, "CapAmb:\t") == 0, "log: %s", log);
}
END_TEST

/* Gone, or a zombie waiting for init: either way no longer running. */
static bool dead(pid_t pid)
{
	char path[64], buf[256];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return true;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

static pid_t logged_pid(const char *log, const char *key)
{
	const char *p = strstr(log, key);
	ck_assert_msg(p, "no %s in: %s", key, log);
	return (pid_t)atoi(p + strlen(key));
}

static void assert_dies(pid_t pid)
{
	/* Polled: the kill is sent, the kernel ends it soon after. */
	for (int i = 0; i < 500 && !dead(pid); i++)
		usleep(10000);
	ck_assert_msg(dead(pid), "process %d still runs", (int)pid);
}

/* A hook that forks children which hang: the timeout kills the group. */
START_TEST(test_timeout_kills_group)
{
	char *const argv[] = { "/bin/sh", "-c",
			       "sleep 1000 & echo child1=$!; (trap '' TERM; sleep 1000) & echo child2=$!; "
			       "sleep 1000", NULL };
	struct exec_outcome o = run(argv, NULL, 300 * 1000ULL, 300 * 1000ULL);
	ck_assert_int_eq(o.result, EXEC_TIMEOUT);
	const char *log = read_log();
	assert_dies(logged_pid(log, "child1="));
	assert_dies(logged_pid(log, "child2="));
}
END_TEST

/* A hook that exits and leaves a child behind: the child does not outlive it. */
START_TEST(test_leftover_killed)
{
	char *const argv[] = { "/bin/sh", "-c", "sleep 1000 & echo child=$!; exit 0", NULL };
	struct exec_outcome o = run(argv, NULL, 10 * 1000000ULL, 0);
	ck_assert_int_eq(o.result, EXEC_EXITED);
	ck_assert_int_eq(o.code, 0);
	assert_dies(logged_pid(read_log(), "child="));
}
END_TEST

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* `yes` on stdout and on stderr: a bounded log, one truncation line, and the
 * program is read (not blocked) until its timeout. */
START_TEST(test_flood_bounded)
{
	char *const out[] = { "/usr/bin/yes", "flood-out", NULL };
	char *const err[] = { "/bin/sh", "-c", "exec yes flood-err >&2", NULL };
	char *const *argvs[] = { out, err };
	const char *words[] = { ": flood-out\n", ": flood-err\n" };

	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(truncate(logpath, 0), 0);
		struct exec_outcome o = run(argvs[i], NULL, 500 * 1000ULL, 0);
		ck_assert_int_eq(o.result, EXEC_TIMEOUT);
		ck_assert_int_eq(o.code, SIGTERM);
		const char *log = read_log();
		ck_assert_msg(count(log, words[i]) == 20, "%d lines: %s", count(log, words[i]), log);
		ck_assert_int_eq(count(log, "output truncated"), 1);
		ck_assert_int_eq(count(log, "bytes of output not logged"), 1);
		ck_assert_msg(strlen(log) < 8192, "log of %zu bytes", strlen(log));
	}
}
END_TEST

/* Long lines count by bytes; a program writing 1 MB is not blocked. */
START_TEST(test_long_output)
{
	char *const argv[] = { "/bin/sh", "-c", "head -c 1000000 /dev/zero | tr '\\000' a; exit 4", NULL };
	struct exec_outcome o = run(argv, NULL, 20 * 1000000ULL, 0);
	ck_assert_int_eq(o.result, EXEC_EXITED);
	ck_assert_int_eq(o.code, 4);
	const char *log = read_log();
	ck_assert_int_eq(count(log, "output truncated"), 1);
	ck_assert_msg(strlen(log) < 8192, "log of %zu bytes", strlen(log));
}
END_TEST

/* A terminal escape in the output does not reach the log as such. */
START_TEST(test_control_chars)
{
	char *const argv[] = { "/usr/bin/printf", "a\\033[2Jb\\rc\\n", NULL };
	struct exec_outcome o = run(argv, NULL, 10 * 1000000ULL, 0);
	ck_assert_int_eq(o.result, EXEC_EXITED);
	const char *log = read_log();
	ck_assert_msg(strstr(log, ": a?[2Jb?c\n"), "log: %s", log);
	ck_assert_ptr_null(strchr(log, '\033'));
}
END_TEST

/* A setup failure after the child source was added (here the timer: a
 * timeout that overflows the clock) kills the child and must reap it. */
START_TEST(test_setup_failure_reaps)
{
	char *const argv[] = { "/bin/sleep", "30", NULL };
	struct exec_params p = { argv, NULL, UINT64_MAX - 1, 0, "prog", NULL, 0 };
	sd_event *e = NULL;
	struct exec *x = NULL;
	int st;

	ck_assert_int_ge(sd_event_new(&e), 0);
	ck_assert_int_lt(exec_start(e, &p, on_done, NULL, &x), 0);
	ck_assert_ptr_null(x);
	/* This test's process has no other children: no zombie left. */
	errno = 0;
	pid_t z = waitpid(-1, &st, WNOHANG);
	ck_assert_msg(z == -1 && errno == ECHILD, "a child was left behind: waitpid -> %d", (int)z);
	sd_event_unref(e);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("exec");
	TCase *tc = tcase_create("exec");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_argv_no_shell);
	tcase_add_test(tc, test_env_stdin_exit);
	tcase_add_test(tc, test_timeout_term);
	tcase_add_test(tc, test_timeout_kill);
	tcase_add_test(tc, test_noexec);
	tcase_add_test(tc, test_setup_failure_reaps);
	tcase_add_test(tc, test_fds_closed);
	tcase_add_test(tc, test_no_ambient_caps);
	tcase_add_test(tc, test_timeout_kills_group);
	tcase_add_test(tc, test_leftover_killed);
	tcase_add_test(tc, test_flood_bounded);
	tcase_add_test(tc, test_long_output);
	tcase_add_test(tc, test_control_chars);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
