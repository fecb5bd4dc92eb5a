/* rerouterctl: status, history, connectors, manual toggles (SPEC section 6). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/actions.h"
#include "agent/agent.h"
#include "agent/log.h"
#include "agent/ops.h"
#include "config/config.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: rerouterctl [-c FILE] COMMAND\n\n"
		"Commands:\n"
		"  status [--json]   state, since when, the window's runs, the last run, anything pending\n"
		"  history [-n N] [--json]\n"
		"                    changes of state, toggles, holds, drift, newest first\n"
		"  connectors [--json]\n"
		"                    the send connectors and the route of each address space\n"
		"  enable NAME       enable a send connector by hand\n"
		"  disable NAME [--force]\n"
		"                    disable a send connector by hand\n"
		"  connector add NAME --smart-host HOST [--cost N] [--address-space D] [--transport T]\n"
		"  connector remove NAME [--force]\n"
		"  connector set NAME KEY=VALUE... [--force]\n"
		"                    manage send connectors (keys: smart_host, cost, address_space,\n"
		"                    transport, enabled); --force: even the last enabled one of '*'\n"
		"  hold up|down [--for DURATION]\n"
		"                    pin the state: only its connectors are enforced\n"
		"  release           end a hold: the window decides from the next run\n"
		"  check             one line and exit code for monitoring (0 OK, 1 WARNING,\n"
		"                    2 CRITICAL, 3 UNKNOWN)\n"
		"  init              create the transport and state databases if missing\n\n"
		"  -c, --config FILE configuration file (default %s)\n"
		"  -h, --help        this text\n"
		"  -V, --version     the version\n",
		CFG_DEFAULT_PATH);
}

static int parse_count(const char *s, unsigned *ret)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0' || *s == '-' || v == 0 || v > 100000)
		return -EINVAL;
	*ret = (unsigned)v;
	return 0;
}

/* What the command line asks for, once its arguments are checked. */
struct ctl_args {
	const char *cmd;
	int nargs;
	char **args;
	unsigned hist_n;
	enum link_state hold;
	uint64_t hold_for;
	bool json, force;
};

/* --json (status, history, connectors) and --force (disable) anywhere
 * after the command; connector parses its own options. */
static void take_flags(struct ctl_args *a)
{
	const char *cmd = a->cmd;
	int k = 0;

	if (!strcmp(cmd, "connector"))
		return;
	for (int i = 0; i < a->nargs; i++) {
		if (!strcmp(a->args[i], "--json") &&
		    (!strcmp(cmd, "status") || !strcmp(cmd, "history") || !strcmp(cmd, "connectors")))
			a->json = true;
		else if (!strcmp(a->args[i], "--force") && !strcmp(cmd, "disable"))
			a->force = true;
		else
			a->args[k++] = a->args[i];
	}
	a->nargs = k;
}

/* -1: the arguments fit the command; else the exit status of a usage error. */
static int check_args(struct ctl_args *a)
{
	const char *cmd = a->cmd;
	int nargs = a->nargs;
	char **args = a->args;

	if (!strcmp(cmd, "history")) {
		bool with_n = nargs == 2 && !strcmp(args[0], "-n") && parse_count(args[1], &a->hist_n) == 0;
		if (nargs != 0 && !with_n) {
			fprintf(stderr, "rerouterctl: usage: history [-n N] [--json] (N a positive number)\n");
			return 2;
		}
	} else if (!strcmp(cmd, "enable") || !strcmp(cmd, "disable")) {
		if (nargs != 1) {
			fprintf(stderr, "rerouterctl: usage: %s NAME%s\n", cmd, strcmp(cmd, "disable") ? "" : " [--force]");
			return 2;
		}
	} else if (!strcmp(cmd, "hold")) {
		if (nargs >= 1)
			a->hold = link_state_parse(args[0]);
		if (nargs == 3 && !strcmp(args[1], "--for") &&
		    (cfg_parse_duration(args[2], &a->hold_for) < 0 || a->hold_for == 0))
			a->hold = LINK_UNKNOWN;
		if (a->hold == LINK_UNKNOWN || (nargs != 1 && nargs != 3)) {
			fprintf(stderr, "rerouterctl: usage: hold up|down [--for DURATION] (e.g. 30m, 2h)\n");
			return 2;
		}
	} else if (!strcmp(cmd, "connector")) {
		if (nargs < 2) {
			fprintf(stderr, "rerouterctl: usage: connector add|remove|set NAME ...\n");
			return 2;
		}
	} else if (strcmp(cmd, "status") && strcmp(cmd, "connectors") && strcmp(cmd, "init") &&
		   strcmp(cmd, "check") && strcmp(cmd, "release")) {
		fprintf(stderr, "rerouterctl: unknown command '%s'\n", cmd);
		usage(stderr);
		return 2;
	} else if (nargs != 0) {
		fprintf(stderr, "rerouterctl: %s takes no arguments\n", cmd);
		/* A monitoring plugin's usage error is UNKNOWN. */
		return strcmp(cmd, "check") ? 2 : 3;
	}
	return -1;
}

static int run_command(struct cfg *cfg, const struct ctl_args *a)
{
	const char *cmd = a->cmd;
	int r;

	if (!strcmp(cmd, "status"))
		return a->json ? agent_ctl_status_json(cfg) : agent_ctl_status(cfg);
	if (!strcmp(cmd, "check"))
		return agent_ctl_check(cfg);
	if (!strcmp(cmd, "history"))
		return a->json ? agent_ctl_history_json(cfg, a->hist_n) : agent_ctl_history(cfg, a->hist_n);
	if (!strcmp(cmd, "hold"))
		return agent_ctl_hold(cfg, a->hold, a->hold_for);
	if (!strcmp(cmd, "release"))
		return agent_ctl_hold(cfg, LINK_UNKNOWN, 0);
	if (!strcmp(cmd, "connectors"))
		return a->json ? actions_ctl_connectors_json(cfg) : actions_ctl_connectors(cfg);
	if (!strcmp(cmd, "connector"))
		return actions_ctl_connector(cfg, a->nargs, a->args);
	if (!strcmp(cmd, "init")) {
		r = actions_ctl_init(cfg);
		return r == 0 ? agent_ctl_init(cfg) : r;
	}
	return actions_ctl_toggle(cfg, a->args[0], !strcmp(cmd, "enable"), a->force);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	const char *path = CFG_DEFAULT_PATH;
	int c;

	/* '+': options after the command belong to it (history -n N). */
	while ((c = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("rerouterctl %s\n", PACKAGE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	struct ctl_args a = { .cmd = argv[optind], .nargs = argc - optind - 1,
			      .args = argv + optind + 1, .hist_n = 20, .hold = LINK_UNKNOWN };
	take_flags(&a);
	int r = check_args(&a);
	if (r >= 0)
		return r;

	log_setup("rerouterctl", true, false);

	struct cfg *cfg = NULL;
	r = cfg_load_print(path, &cfg);
	if (r < 0) {
		if (strcmp(a.cmd, "check"))
			return 2;
		printf("REROUTER UNKNOWN - cannot load the configuration %s\n", path);
		return 3;
	}
	r = run_command(cfg, &a);
	cfg_free(cfg);
	return r;
}
