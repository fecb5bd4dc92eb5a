/* Instances: the name that stamps their writes, and the check that two
 * instances sharing a transport database never fight over a connector (each
 * would undo the other's toggle at every run, as drift). */
#include <config.h> /* autoconf: _GNU_SOURCE; "config.h" would find config/config.h */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "config/instance.h"

int cfg_instance_changed_by(const char *name, char *buf, size_t size)
{
	size_t n;

	if (!name) {
		snprintf(buf, size, "rerouterd");
		return 0;
	}
	n = strlen(name);
	if (n == 0 || n > CFG_INSTANCE_NAME_MAX) {
		snprintf(buf, size, "instance name must have 1 to %d characters, got %zu", CFG_INSTANCE_NAME_MAX,
			 n);
		return -EINVAL;
	}
	/* It ends up in the databases and the journal, and names files under
	 * systemd (%i): a plain word, no path, no blank, no escape. */
	n = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-");
	if (name[n]) {
		unsigned char c = (unsigned char)name[n];
		if (c > 0x20 && c < 0x7f)
			snprintf(buf, size, "instance name may only have A-Z a-z 0-9 _ . -, got '%c' at position %zu",
				 c, n + 1);
		else
			snprintf(buf, size, "instance name may only have A-Z a-z 0-9 _ . -, got byte 0x%02x at "
				 "position %zu", c, n + 1);
		return -EINVAL;
	}
	snprintf(buf, size, "rerouterd@%s", name);
	return 0;
}

static void __attribute__((format(printf, 2, 3))) push(struct cfg_errors *e, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	int r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	/* File names come from the directory: no escape reaches the terminal. */
	for (char *c = msg; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	char **v = realloc(e->v, (e->n + 1) * sizeof *v);
	if (!v) {
		free(msg);
		return;
	}
	e->v = v;
	v[e->n++] = msg;
}

static bool in_list(const struct cfg_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], name))
			return true;
	return false;
}

static bool in_toggle(const struct cfg_toggle *t, const char *name)
{
	return in_list(&t->enable, name) || in_list(&t->disable, name);
}

static bool names(const struct cfg *c, const char *name)
{
	return in_toggle(&c->on_down, name) || in_toggle(&c->on_up, name);
}

/* Two spellings of one file are one database; a file not created yet is
 * known only by its name. */
static bool same_database(const char *a, const char *b)
{
	char ra[PATH_MAX], rb[PATH_MAX];

	if (realpath(a, ra) && realpath(b, rb))
		return !strcmp(ra, rb);
	return !strcmp(a, b);
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	if (stat(a, &sa) < 0 || stat(b, &sb) < 0)
		return !strcmp(a, b);
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* The connectors of cfg that other names too, each reported once. */
static int compare(const struct cfg *cfg, const struct cfg *other, struct cfg_errors *errs)
{
	const struct cfg_toggle *secs[2] = { &cfg->on_down, &cfg->on_up };
	int count = 0;

	for (int s = 0; s < 2; s++) {
		const struct cfg_list *lists[2] = { &secs[s]->enable, &secs[s]->disable };
		for (int l = 0; l < 2; l++)
			for (size_t i = 0; i < lists[l]->n; i++) {
				const char *name = lists[l]->v[i];
				bool seen = (s == 1 && in_toggle(&cfg->on_down, name)) ||
					    (l == 1 && in_list(&secs[s]->enable, name));
				for (size_t j = 0; j < i && !seen; j++)
					seen = !strcmp(lists[l]->v[j], name);
				if (seen || !names(other, name))
					continue;
				push(errs, "%s:%u: connector '%s' is also managed by %s (instances must name "
				     "disjoint connectors)", cfg->path, secs[s]->line, name, other->path);
				count++;
			}
	}
	return count;
}

static int is_conf(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && n > 5 && !strcmp(d->d_name + n - 5, ".conf");
}

int cfg_instance_overlap(const struct cfg *cfg, struct cfg_errors *errs, struct cfg_errors *warnings)
{
	struct dirent **list = NULL;
	char *dir = strdup(cfg->path), *slash;
	int n, count = 0;

	if (!dir)
		return -ENOMEM;
	if (!cfg->on_down.present && !cfg->on_up.present) {
		free(dir);
		return 0; /* monitoring only: nothing to share */
	}
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	n = scandir(slash ? dir : ".", &list, is_conf, alphasort);
	if (n < 0) {
		int r = -errno;
		free(dir);
		return r;
	}
	for (int i = 0; i < n; i++) {
		char *path = NULL;
		struct cfg *other = NULL;
		struct cfg_errors oerrs = { 0 };
		if (asprintf(&path, "%s%s%s", slash ? dir : "", slash && slash != dir ? "/" : "",
			     list[i]->d_name) < 0)
			path = NULL;
		if (!path || same_file(path, cfg->path))
			goto next;
		int r = cfg_load(path, &other, &oerrs);
		if (r == -EINVAL)
			push(warnings, "%s: warning: %s does not load (%zu error(s), the first: %s): its connectors "
			     "are not compared", cfg->path, path, oerrs.n, oerrs.n ? oerrs.v[0] : "?");
		else if (r < 0)
			push(warnings, "%s: warning: %s cannot be read (%s): its connectors are not compared",
			     cfg->path, path, strerror(-r));
		else if (same_database(cfg->transport.database, other->transport.database))
			count += compare(cfg, other, errs);
	next:
		cfg_errors_clear(&oerrs);
		cfg_free(other);
		free(path);
		free(list[i]);
	}
	free(list);
	free(dir);
	return count;
}
