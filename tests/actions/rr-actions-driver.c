/* Test driver for the actions, standing in for the agent: it records changes
 * and their pending steps in a state database the way the agent does
 * (state_record_change), hands the recorded state's routes to the
 * reconciler, then runs an sd_event loop until no step is pending. The configuration is built from options, so the
 * test needs neither the parser nor the agent.
 *
 *   rr-actions-driver [OPTIONS] init | connectors | enable NAME | disable NAME
 *   rr-actions-driver [OPTIONS] run [down|up|down-nobackup ...]
 *     records one change per word (in order), then carries out every pending
 *     step (also those a killed earlier run left) and prints them. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "agent/clock.h"
#include "actions/actions.h"
#include "actions/connectors.h"
#include "agent/change.h"
#include "agent/log.h"
#include "agent/state.h"
#include "config/config.h"

static void split(const char *s, const char *seps, struct cfg_list *l)
{
	char *dup = strdup(s ? s : ""), *save = NULL;

	l->n = 0;
	l->v = calloc(strlen(dup) + 2, sizeof *l->v);
	for (char *t = strtok_r(dup, seps, &save); t; t = strtok_r(NULL, seps, &save))
		l->v[l->n++] = strdup(t);
	free(dup);
}

static void free_list(struct cfg_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static int record_change(sqlite3 *db, const char *word)
{
	bool no_backup = !strcmp(word, "down-nobackup");
	enum link_state new_state = !strcmp(word, "up") ? LINK_UP : LINK_DOWN;
	struct timespec ts;
	int64_t id;

	if (strcmp(word, "up") && strcmp(word, "down") && !no_backup)
		return -EINVAL;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct state_change ch = {
		.new_state = new_state,
		.old_state = new_state == LINK_UP ? LINK_DOWN : LINK_UP,
		.at_usec = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000,
		.no_backup = no_backup,
		.runs_text = "driver",
	};
	if (state_record_change(db, &ch, &id) < 0) {
		fprintf(stderr, "driver: cannot record a change: %s\n", sqlite3_errmsg(db));
		return -EIO;
	}
	printf("recorded change %" PRId64 ": %s -> %s%s\n", id, link_state_str(ch.old_state),
	       link_state_str(new_state), no_backup ? " (no backup path)" : "");
	return 0;
}

/* The routes the recorded state wants, as the daemon hands them over. */
static int target_from_db(sqlite3 *db, enum route_target *t, int64_t *id)
{
	struct state_saved s;
	int r = state_load(db, &s);

	if (r < 0)
		return r;
	*t = s.state == LINK_UP ? ROUTE_UP
	     : s.state == LINK_DOWN && !s.last_change_no_backup ? ROUTE_DOWN : ROUTE_NONE;
	*id = s.last_change_id;
	state_saved_clear(&s);
	return 0;
}

static void print_steps(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, "SELECT change_id, step, status, attempts, detail FROM change_steps "
				   "ORDER BY change_id, seq", -1, &st, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(st) == SQLITE_ROW)
		printf("step %lld %s %s %d %s\n", sqlite3_column_int64(st, 0),
		       (const char *)sqlite3_column_text(st, 1), (const char *)sqlite3_column_text(st, 2),
		       sqlite3_column_int(st, 3), (const char *)sqlite3_column_text(st, 4));
	sqlite3_finalize(st);
}

static int count_pending(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int n = -1;

	if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM change_steps WHERE status = 'pending'", -1,
			       &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void usage(void)
{
	fprintf(stderr, "usage: rr-actions-driver -s STATE_DB -t TRANSPORT_DB [-u UNIT] [-b user|system]\n"
			"  [-a restart|reload|none] [-f FLUSH-ARGV] [-H HOOK] [-T HOOK-TIMEOUT-SEC]\n"
			"  [--down-enable A,B] [--down-disable A,B] [--up-enable A,B] [--up-disable A,B]\n"
			"  [-w WAIT-SEC] init | connectors | enable NAME | disable NAME | run [up|down|down-nobackup...]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "down-enable", required_argument, NULL, 1 },
		{ "down-disable", required_argument, NULL, 2 },
		{ "up-enable", required_argument, NULL, 3 },
		{ "up-disable", required_argument, NULL, 4 },
		{ 0 },
	};
	struct cfg c = { 0 };
	const char *state_path = NULL, *flush = "/usr/sbin/postqueue -f";
	const char *lists[4] = { "", "", "", "" };
	unsigned wait_sec = 150;
	sqlite3 *db = NULL;
	sd_event *e = NULL;
	struct actions *a = NULL;
	int ch, ret = 1, r;

	c.transport.unit = "postfix.service";
	c.transport.bus = BUS_SYSTEM;
	c.hook.timeout_usec = 30 * USEC_PER_SEC;
	c.mail.max_wait_usec = 30 * USEC_PER_SEC;
	while ((ch = getopt_long(argc, argv, "+s:t:u:b:a:f:H:T:w:", opts, NULL)) != -1) {
		switch (ch) {
		case 's': state_path = optarg; break;
		case 't': c.transport.database = optarg; break;
		case 'u': c.transport.unit = optarg; break;
		case 'b': c.transport.bus = !strcmp(optarg, "user") ? BUS_USER : BUS_SYSTEM; break;
		case 'a':
			c.transport.action = !strcmp(optarg, "none")     ? TRANSPORT_NONE
					     : !strcmp(optarg, "reload") ? TRANSPORT_RELOAD
									 : TRANSPORT_RESTART;
			break;
		case 'f': flush = optarg; break;
		case 'H': c.hook.on_change = optarg; c.hook.present = optarg[0] != '\0'; break;
		case 'T': c.hook.timeout_usec = strtoull(optarg, NULL, 10) * USEC_PER_SEC; break;
		case 'w': wait_sec = (unsigned)strtoul(optarg, NULL, 10); break;
		case 1: case 2: case 3: case 4: lists[ch - 1] = optarg; break;
		default: usage(); return 2;
		}
	}
	if (optind >= argc || !c.transport.database) {
		usage();
		return 2;
	}
	split(lists[0], ",", &c.on_down.enable);
	split(lists[1], ",", &c.on_down.disable);
	split(lists[2], ",", &c.on_up.enable);
	split(lists[3], ",", &c.on_up.disable);
	c.on_down.present = c.on_down.enable.n + c.on_down.disable.n > 0;
	c.on_up.present = c.on_up.enable.n + c.on_up.disable.n > 0;
	split(flush, " \t", &c.transport.flush);
	log_setup("rerouterd", false, getenv("RR_DEBUG") != NULL);

	const char *cmd = argv[optind++];
	if (!strcmp(cmd, "init")) {
		ret = actions_ctl_init(&c);
		goto out;
	} else if (!strcmp(cmd, "connectors")) {
		ret = actions_ctl_connectors(&c);
		goto out;
	} else if ((!strcmp(cmd, "enable") || !strcmp(cmd, "disable")) && optind < argc) {
		ret = actions_ctl_toggle(&c, argv[optind], !strcmp(cmd, "enable"), true);
		goto out;
	} else if (strcmp(cmd, "run") || !state_path) {
		usage();
		ret = 2;
		goto out;
	}

	/* The daemon's state database (agent/state.c): WAL, 250 ms busy timeout. */
	if ((r = state_open(state_path, false, &db)) < 0) {
		fprintf(stderr, "driver: %s: %s\n", state_path, strerror(-r));
		goto out;
	}
	for (int i = optind; i < argc; i++)
		if (record_change(db, argv[i]) < 0) {
			usage();
			ret = 2;
			goto out;
		}
	fflush(stdout);

	/* As the daemon: SIGCHLD blocked before anything else runs. */
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGCHLD);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	if (sd_event_default(&e) < 0 || actions_new(e, db, &c, NULL, "rerouterd", &a) < 0) {
		fprintf(stderr, "driver: cannot set up the loop\n");
		goto out;
	}
	enum route_target target;
	int64_t change_id;
	if (target_from_db(db, &target, &change_id) < 0) {
		fprintf(stderr, "driver: cannot read the state\n");
		goto out;
	}
	actions_set_target(a, target, change_id);
	actions_reconcile(a);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		r = sd_event_run(e, 500 * 1000);
		if (r < 0) {
			fprintf(stderr, "driver: sd_event_run: %s\n", strerror(-r));
			goto out;
		}
		if (!actions_busy(a) && count_pending(db) == 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec > (time_t)wait_sec) {
			fprintf(stderr, "driver: steps still pending after %us\n", wait_sec);
			print_steps(db);
			goto out;
		}
	}
	print_steps(db);
	/* A figure for the tests: a loop that spins shows here. */
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		printf("cpu %ld.%03ld user %ld.%03ld system\n", (long)ru.ru_utime.tv_sec,
		       (long)ru.ru_utime.tv_usec / 1000, (long)ru.ru_stime.tv_sec,
		       (long)ru.ru_stime.tv_usec / 1000);
	ret = 0;
out:
	actions_free(a);
	sd_event_unref(e);
	sqlite3_close(db);
	for (int i = 0; i < 4; i++)
		free_list(i == 0 ? &c.on_down.enable : i == 1 ? &c.on_down.disable
					    : i == 2 ? &c.on_up.enable : &c.on_up.disable);
	free_list(&c.transport.flush);
	return ret;
}
