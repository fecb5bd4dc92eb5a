/* rerouterd: the daemon, always in the foreground (SPEC section 6). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actions/actions.h"
#include "actions/alert.h"
#include "agent/agent.h"
#include "agent/log.h"
#include "config/config.h"
#include "config/instance.h"
#include "probes/probe.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: rerouterd [-c FILE] [-v] [--instance NAME] [--check-config | --once | --test-mail]\n"
		"Watch the internet link and reroute outbound mail when it fails.\n\n"
		"  -c, --config FILE  configuration file (default %s)\n"
		"  -v, --verbose      log to stderr too, with debug messages\n"
		"      --instance NAME  this is rerouterd@NAME: its writes say changed_by rerouterd@NAME\n"
		"      --check-config validate the configuration and exit (0 OK, 2 errors)\n"
		"      --once         one run of the checks now; exit 0 passed, 1 failed\n"
		"      --test-mail    send a test alert; exit 0 when the server accepted it\n"
		"      --allow-root   run the daemon as root (refused without it)\n"
		"  -h, --help         this text\n"
		"  -V, --version      the version\n",
		CFG_DEFAULT_PATH);
}

static bool list_has(const struct cfg_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], name))
			return true;
	return false;
}

/* FILE:LINE of the section that names the connector, as config errors read. */
static void report_missing(const char *name, void *ud)
{
	const struct cfg *c = ud;
	const struct cfg_toggle *t = &c->on_down;

	if (!list_has(&t->enable, name) && !list_has(&t->disable, name))
		t = &c->on_up;
	fprintf(stderr, "%s:%u: [%s] connector '%s' is not in the transport database %s\n", c->path,
		t->line, t == &c->on_down ? "on_down" : "on_up", name, c->transport.database);
}

/* --check-config: a connector that another instance's file names too is an
 * error; another file that does not load is only a warning. */
static int check_overlap(const struct cfg *cfg)
{
	struct cfg_errors errs = { 0 }, warns = { 0 };
	int n = cfg_instance_overlap(cfg, &errs, &warns);

	for (size_t i = 0; i < warns.n; i++)
		fprintf(stderr, "%s\n", warns.v[i]);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.v[i]);
	if (n < 0)
		fprintf(stderr, "%s: note: the other instances' files were not compared: %s\n", cfg->path,
			strerror(-n));
	cfg_errors_clear(&errs);
	cfg_errors_clear(&warns);
	return n > 0 ? n : 0;
}

int main(int argc, char **argv)
{
	enum { OPT_CHECK = 256, OPT_ONCE, OPT_TEST_MAIL, OPT_ALLOW_ROOT, OPT_INSTANCE };
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "check-config", no_argument, NULL, OPT_CHECK },
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "test-mail", no_argument, NULL, OPT_TEST_MAIL },
		{ "allow-root", no_argument, NULL, OPT_ALLOW_ROOT },
		{ "instance", required_argument, NULL, OPT_INSTANCE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	const char *path = CFG_DEFAULT_PATH, *instance = NULL;
	char changed_by[CFG_INSTANCE_NAME_MAX + 128];
	bool verbose = false, allow_root = false;
	int mode = 0, c;

	while ((c = getopt_long(argc, argv, "c:vhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'v': verbose = true; break;
		case OPT_ALLOW_ROOT: allow_root = true; break;
		case OPT_INSTANCE: instance = optarg; break;
		case OPT_CHECK: case OPT_ONCE: case OPT_TEST_MAIL:
			if (mode && mode != c) {
				fprintf(stderr, "rerouterd: --check-config, --once and --test-mail exclude each other\n");
				return 2;
			}
			mode = c;
			break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("rerouterd %s\n", PACKAGE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "rerouterd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	/* The one place that names this process's writes (changed_by). */
	if (cfg_instance_changed_by(instance, changed_by, sizeof changed_by) < 0) {
		fprintf(stderr, "rerouterd: --instance: %s\n", changed_by);
		return 2;
	}

	/* The daemon needs only CAP_NET_RAW and a polkit rule (SPEC section 9);
	 * as root a bug in a probe parser would own the machine. */
	if (mode == 0 && geteuid() == 0 && !allow_root) {
		fprintf(stderr, "rerouterd: refusing to run as root: start it as the _rerouter user "
			"(systemctl start rerouterd) or pass --allow-root\n");
		return 2;
	}

	log_setup("rerouterd", verbose || mode != 0, verbose);

	struct cfg *cfg = NULL;
	int r = cfg_load_print(path, &cfg);
	if (r < 0)
		return 2;

	switch (mode) {
	case OPT_CHECK: {
		/* The transport database may not exist yet on a new install: only a
		 * database that can be read and lacks a named connector is an error. */
		int missing = actions_check_connectors(cfg, report_missing, cfg);
		if (missing < 0 && missing != -ENOENT)
			fprintf(stderr, "%s: note: transport database %s not checked: %s\n", path,
				cfg->transport.database, strerror(-missing));
		int shared = check_overlap(cfg);
		r = missing > 0 || shared > 0 ? 2 : 0;
		if (r == 0)
			printf("configuration OK\n");
		cfg_free(cfg);
		return r;
	}
	case OPT_ONCE:
		r = probe_once_main(cfg);
		cfg_free(cfg);
		return r;
	case OPT_TEST_MAIL:
		r = alerts_test_mail_main(cfg);
		cfg_free(cfg);
		return r;
	default:
		return agent_main(path, cfg, verbose, changed_by);
	}
}
