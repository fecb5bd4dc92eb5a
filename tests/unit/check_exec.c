/* fork/exec without a shell on a real sd_event loop: argv intact, the
 * environment, stdin, output captured into the log, the timeout's kills. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actions/exec.h"
#include "agent/log.h"

static char logpath[320], dir[256];
static int saved_stderr = -1;

/* The log goes to stderr in tests: send it to a file to read back what the
 * program wrote. */
static void setup(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/check_exec.XXXXXX", t ? t : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(logpath, sizeof logpath, "%s/log", dir);
	int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
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
	setenv("RR_KEEP", "kept", 1);
	setenv("REROUTER_STATE", "old-value", 1);
	char *const argv[] = { "/bin/sh", "-c",
			       "echo \"S=$REROUTER_STATE P=$REROUTER_PREVIOUS K=$RR_KEEP\"; "
			       "cat; echo stdin-eof; echo to-stderr >&2; printf no-newline; exit 3",
			       NULL };
	char *const env[] = { "REROUTER_STATE=down", "REROUTER_PREVIOUS=up", NULL };
	struct exec_outcome o = run(argv, env, 10 * 1000000ULL, 0);
	ck_assert_int_eq(o.result, EXEC_EXITED);
	ck_assert_int_eq(o.code, 3);
	const char *log = read_log();
	ck_assert_msg(strstr(log, "S=down P=up K=kept"), "log: %s", log);
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
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
