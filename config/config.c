/* Loading and freeing a configuration; the error list. The parsing itself is
 * in parse.c (pass 1: INI -> raw keys), the typed readers in values.c, the
 * typed build and cross-field rules in validate.c (pass 2). */
#include <config.h> /* autoconf: _GNU_SOURCE; "config.h" would find config/config.h */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/internal.h"
#include "config/values.h"

void cfg_err(struct cfg_parser *p, unsigned line, const char *fmt, ...)
{
	char *msg = NULL, *text = NULL;
	va_list ap;

	va_start(ap, fmt);
	int r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	/* A value quoted in the message may hold anything the file held: no
	 * escape sequence reaches the terminal or the journal. */
	for (char *c = r >= 0 ? msg : NULL; c && *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	if (r < 0 || asprintf(&text, "%s:%u: %s", p->file, line, msg) < 0) {
		free(msg);
		p->oom = true;
		return;
	}
	free(msg);
	struct cfg_msg *v = realloc(p->msgs, (p->n_msgs + 1) * sizeof(*v));
	if (!v) {
		free(text);
		p->oom = true;
		return;
	}
	p->msgs = v;
	v[p->n_msgs++] = (struct cfg_msg){ line, text };
}

void cfg_parser_done(struct cfg_parser *p)
{
	for (size_t i = 0; i < p->n_sects; i++) {
		free(p->sects[i].name);
		for (int k = 0; k < N_KEYS; k++)
			free(p->sects[i].raw[k].val);
	}
	free(p->sects);
	for (size_t i = 0; i < p->n_msgs; i++)
		free(p->msgs[i].text);
	free(p->msgs);
	*p = (struct cfg_parser){ 0 };
}

int cfg_load_print(const char *path, struct cfg **ret)
{
	struct cfg_errors errs = { 0 };
	int r = cfg_load(path, ret, &errs);

	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.v[i]);
	cfg_errors_clear(&errs);
	if (r < 0 && r != -EINVAL)
		fprintf(stderr, "%s: cannot read: %s\n", path, strerror(-r));
	return r;
}

void cfg_errors_clear(struct cfg_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		free(errs->v[i]);
	free(errs->v);
	errs->v = NULL;
	errs->n = 0;
}

/* Hand the messages over in line order (stable: same line keeps pass order). */
static int move_errors(struct cfg_parser *p, struct cfg_errors *errs)
{
	for (size_t i = 1; i < p->n_msgs; i++) {
		struct cfg_msg m = p->msgs[i];
		size_t j = i;
		for (; j > 0 && p->msgs[j - 1].line > m.line; j--)
			p->msgs[j] = p->msgs[j - 1];
		p->msgs[j] = m;
	}
	if (!p->n_msgs)
		return 0;
	char **v = realloc(errs->v, (errs->n + p->n_msgs) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	errs->v = v;
	for (size_t i = 0; i < p->n_msgs; i++) {
		v[errs->n++] = p->msgs[i].text;
		p->msgs[i].text = NULL;
	}
	return 0;
}

static int load(const char *name, FILE *f, const char *text, struct cfg **ret, struct cfg_errors *errs)
{
	struct cfg_parser p = { .file = name };
	struct cfg *c = calloc(1, sizeof(*c));
	int r = -ENOMEM;

	*ret = NULL;
	if (!c || !(c->path = strdup(name)))
		goto out;
	r = cfg_parse_ini(&p, f, text);
	if (r < 0)
		goto out;
	r = cfg_build(&p, c);
	if (r < 0)
		goto out;
	r = p.n_msgs ? -EINVAL : 0;
	if (move_errors(&p, errs) < 0)
		r = -ENOMEM;
out:
	if (r == 0) {
		*ret = c;
		c = NULL;
	}
	cfg_free(c);
	cfg_parser_done(&p);
	return r;
}

int cfg_load(const char *path, struct cfg **ret, struct cfg_errors *errs)
{
	*ret = NULL;
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	int r = load(path, f, NULL, ret, errs);
	fclose(f);
	return r;
}

int cfg_load_string(const char *name, const char *text, struct cfg **ret, struct cfg_errors *errs)
{
	return load(name, NULL, text, ret, errs);
}

static void free_check(struct cfg_check *ck)
{
	free(ck->name);
	free(ck->target);
	free(ck->host);
	free(ck->source);
	free(ck->proxy);
	free(ck->ca_file);
}

void cfg_free(struct cfg *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->agent.state_db);
	for (size_t i = 0; i < c->n_checks; i++)
		free_check(&c->checks[i]);
	free(c->checks);
	cfg_list_free(&c->on_down.enable);
	cfg_list_free(&c->on_down.disable);
	cfg_list_free(&c->on_up.enable);
	cfg_list_free(&c->on_up.disable);
	free(c->transport.database);
	free(c->transport.unit);
	cfg_list_free(&c->transport.flush);
	cfg_list_free(&c->mail.to);
	free(c->mail.from);
	free(c->mail.server);
	free(c->mail.username);
	free(c->mail.password_file);
	free(c->hook.on_change);
	free(c->metrics.textfile);
	for (size_t i = 0; i < c->n_windows; i++)
		free(c->windows[i].name);
	free(c->windows);
	free(c);
}
