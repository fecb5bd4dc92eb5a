/* rerouterd --once: one run of the configured checks on a loop of its own,
 * a table line per check, then the verdict the daemon would count. Nothing
 * is changed: no database, no transport, no mail. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "probes/probe.h"

struct once {
	const struct cfg *cfg;
	sd_event *event;
	int exit_code;
};

static const char *type_str(enum cfg_check_type t)
{
	switch (t) {
	case CHECK_PING: return "ping";
	case CHECK_HTTP: return "http";
	case CHECK_TCP: return "tcp";
	case CHECK_SMTP: return "smtp";
	}
	return "?";
}

static int width(int w, const char *s)
{
	int l = (int)strlen(s);
	return l > w ? l : w;
}

static void on_done(struct probe_run *run, const struct probe_result *res, size_t n,
		    void *userdata)
{
	struct once *o = userdata;
	const struct cfg *cfg = o->cfg;
	int wn = 4, wt = 6, wm = 2;
	size_t failed = 0, links = 0;
	char name[300], ms[24];

	for (size_t i = 0; i < n; i++) {
		const struct cfg_check *cc = res[i].check;
		snprintf(name, sizeof name, "%s%s", cc->name,
			 cc->role == ROLE_BACKUP ? " (backup)" : "");
		wn = width(wn, name);
		wt = width(wt, cc->target);
		snprintf(ms, sizeof ms, "%llu", (unsigned long long)res[i].elapsed_ms);
		wm = width(wm, ms);
	}
	printf("%-*s  %-4s  %-*s  %-6s  %*s  %s\n", wn, "NAME", "TYPE", wt, "TARGET", "RESULT",
	       wm, "MS", "REASON");
	for (size_t i = 0; i < n; i++) {
		const struct cfg_check *cc = res[i].check;
		bool pass = probe_passed(&res[i]);

		snprintf(name, sizeof name, "%s%s", cc->name,
			 cc->role == ROLE_BACKUP ? " (backup)" : "");
		printf("%-*s  %-4s  %-*s  %-6s  %*llu  %s%s%s\n", wn, name, type_str(cc->type), wt,
		       cc->target, pass ? "PASS" : "FAIL", wm,
		       (unsigned long long)res[i].elapsed_ms,
		       pass ? "" : probe_outcome_str(res[i].outcome), pass ? "" : ": ",
		       res[i].reason);
		if (cc->role == ROLE_LINK) {
			links++;
			if (!pass)
				failed++;
		}
	}
	/* The daemon's rule: a run fails when at least failed_checks link checks fail. */
	unsigned threshold = cfg->agent.failed_checks ? cfg->agent.failed_checks : 1;
	if (failed >= threshold) {
		printf("run FAILED (%zu of %zu checks failed)\n", failed, links);
		o->exit_code = 1;
	} else {
		printf("run PASSED (%zu of %zu checks failed)\n", failed, links);
		o->exit_code = 0;
	}
	fflush(stdout);
	sd_event_exit(o->event, 0);
}

/* Each check holds a socket or an eventfd while it runs: allow as many as the
 * hard limit does, for configurations with hundreds of checks. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int probe_once_main(const struct cfg *cfg)
{
	struct once o = { .cfg = cfg, .exit_code = 2 };
	struct probe_run *run = NULL;
	int r;

	raise_nofile();
	r = sd_event_new(&o.event);
	if (r < 0) {
		fprintf(stderr, "rerouterd: cannot create the event loop: %s\n", strerror(-r));
		return 2;
	}
	r = probe_run_start(o.event, cfg, on_done, &o, &run);
	if (r < 0) {
		fprintf(stderr, "rerouterd: cannot start the checks: %s\n", strerror(-r));
		goto out;
	}
	r = sd_event_loop(o.event);
	if (r < 0) {
		fprintf(stderr, "rerouterd: event loop failed: %s\n", strerror(-r));
		o.exit_code = 2;
	}
out:
	sd_event_unref(o.event);
	return o.exit_code;
}
