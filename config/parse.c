/* Pass 1: INI text -> raw sections, with inih doing the key = value split.
 *
 * inih (Debian's build) has no line numbers in its handler, strips only ';'
 * inline comments, merges indented lines into the previous value, and cuts
 * lines at 200 bytes. So we feed it through our own reader, which counts lines
 * (when the handler runs, p->line is the line of that key), strips '#' and ';'
 * comments that follow a blank, left-trims every line (no continuation lines,
 * so nothing is silently merged), reports malformed and over-long lines, and
 * handles [section] headers itself: inih never calls the handler for a
 * section without keys, and an empty [mail] must still be seen. */
#include <config.h> /* autoconf: _GNU_SOURCE; "config.h" would find config/config.h */

#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>

#include "config/internal.h"
#include "config/values.h"

const char *const cfg_sec_names[N_SEC] = {
	[SEC_AGENT] = "agent", [SEC_PING] = "ping", [SEC_CHECK] = "check",
	[SEC_ON_DOWN] = "on_down", [SEC_ON_UP] = "on_up", [SEC_TRANSPORT] = "transport",
	[SEC_MAIL] = "mail", [SEC_HOOK] = "hook", [SEC_MAINT] = "maintenance", [SEC_LOG] = "log",
	[SEC_METRICS] = "metrics",
};

const struct cfg_key_def cfg_key_defs[N_KEYS] = {
	[K_AGENT_INTERVAL] = { SEC_AGENT, "interval" },
	[K_AGENT_FAILED_CHECKS] = { SEC_AGENT, "failed_checks" },
	[K_AGENT_RUNS] = { SEC_AGENT, "runs" },
	[K_AGENT_FAILED_RUNS] = { SEC_AGENT, "failed_runs" },
	[K_AGENT_PASSED_RUNS] = { SEC_AGENT, "passed_runs" },
	[K_AGENT_INITIAL_STATE] = { SEC_AGENT, "initial_state" },
	[K_AGENT_STATE_DB] = { SEC_AGENT, "state_db" },
	[K_AGENT_FAST_INTERVAL] = { SEC_AGENT, "fast_interval" },
	[K_AGENT_WATCH_LINKS] = { SEC_AGENT, "watch_links" },
	[K_PING_COUNT] = { SEC_PING, "count" },
	[K_PING_MIN_REPLIES] = { SEC_PING, "min_replies" },
	[K_PING_TIMEOUT] = { SEC_PING, "timeout" },
	[K_CHECK_TYPE] = { SEC_CHECK, "type" },
	[K_CHECK_TARGET] = { SEC_CHECK, "target" },
	[K_CHECK_TIMEOUT] = { SEC_CHECK, "timeout" },
	[K_CHECK_SOURCE] = { SEC_CHECK, "source" },
	[K_CHECK_MARK] = { SEC_CHECK, "mark" },
	[K_CHECK_ROLE] = { SEC_CHECK, "role" },
	[K_CHECK_EXPECT] = { SEC_CHECK, "expect" },
	[K_CHECK_PROXY] = { SEC_CHECK, "proxy" },
	[K_CHECK_COUNT] = { SEC_CHECK, "count" },
	[K_CHECK_MIN_REPLIES] = { SEC_CHECK, "min_replies" },
	[K_CHECK_TLS_VERIFY] = { SEC_CHECK, "tls_verify" },
	[K_CHECK_CA_FILE] = { SEC_CHECK, "ca_file" },
	[K_DOWN_ENABLE] = { SEC_ON_DOWN, "enable" },
	[K_DOWN_DISABLE] = { SEC_ON_DOWN, "disable" },
	[K_UP_ENABLE] = { SEC_ON_UP, "enable" },
	[K_UP_DISABLE] = { SEC_ON_UP, "disable" },
	[K_TRANSPORT_DATABASE] = { SEC_TRANSPORT, "database" },
	[K_TRANSPORT_UNIT] = { SEC_TRANSPORT, "unit" },
	[K_TRANSPORT_ACTION] = { SEC_TRANSPORT, "action" },
	[K_TRANSPORT_BUS] = { SEC_TRANSPORT, "bus" },
	[K_TRANSPORT_FLUSH] = { SEC_TRANSPORT, "flush" },
	[K_MAIL_TO] = { SEC_MAIL, "to" },
	[K_MAIL_FROM] = { SEC_MAIL, "from" },
	[K_MAIL_SERVER] = { SEC_MAIL, "server" },
	[K_MAIL_STARTTLS] = { SEC_MAIL, "starttls" },
	[K_MAIL_USERNAME] = { SEC_MAIL, "username" },
	[K_MAIL_PASSWORD_FILE] = { SEC_MAIL, "password_file" },
	[K_MAIL_TIMEOUT] = { SEC_MAIL, "timeout" },
	[K_MAIL_MIN_GAP] = { SEC_MAIL, "min_gap" },
	[K_MAIL_MAX_WAIT] = { SEC_MAIL, "max_wait" },
	[K_HOOK_ON_CHANGE] = { SEC_HOOK, "on_change" },
	[K_HOOK_TIMEOUT] = { SEC_HOOK, "timeout" },
	[K_MAINT_DAYS] = { SEC_MAINT, "days" },
	[K_MAINT_START] = { SEC_MAINT, "start" },
	[K_MAINT_END] = { SEC_MAINT, "end" },
	[K_LOG_VERBOSE] = { SEC_LOG, "verbose" },
	[K_METRICS_TEXTFILE] = { SEC_METRICS, "textfile" },
};

struct reader {
	struct cfg_parser *p;
	FILE *f;
	const char *s;          /* the rest of the text, when reading a string */
	char *buf;
	size_t cap;
};

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

/* Levenshtein distance, for "did you mean" on short names only. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[64];
	if (la >= 63 || lb >= 63)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* The nearest candidate when it is close enough to be a typo. */
static const char *nearest(const char *word, const char *const *cands, size_t n)
{
	const char *best = NULL;
	size_t bestd = SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		if (!cands[i])
			continue;
		size_t d = distance(word, cands[i]);
		size_t limit = strlen(cands[i]) <= 4 ? 1 : 2;
		if (d <= limit && d < bestd) {
			best = cands[i];
			bestd = d;
		}
	}
	return best;
}

void cfg_sect_label(const struct cfg_sect *s, char *buf, size_t n)
{
	if (s->name)
		snprintf(buf, n, "[%s \"%s\"]", cfg_sec_names[s->sec], s->name);
	else
		snprintf(buf, n, "[%s]", cfg_sec_names[s->sec]);
}

static void begin_section(struct cfg_parser *p, char *inner)
{
	char *word = inner, *rest, *name = NULL, label[160];
	size_t wlen;
	int sec = -1;

	p->cur = -2;
	while (is_blank(*word))
		word++;
	wlen = strcspn(word, " \t\"");
	rest = word + wlen;
	while (is_blank(*rest))
		rest++;
	word[wlen] = '\0';
	for (int i = 0; i < N_SEC; i++)
		if (strcmp(word, cfg_sec_names[i]) == 0)
			sec = i;
	if (sec < 0) {
		const char *near = nearest(word, cfg_sec_names, N_SEC);
		if (near)
			cfg_err(p, p->line, "unknown section '%s' (did you mean '%s'?)", word, near);
		else
			cfg_err(p, p->line, "unknown section '%s'", word);
		return;
	}
	if (sec == SEC_CHECK || sec == SEC_MAINT) {
		size_t len = strlen(rest);
		if (len < 3 || rest[0] != '"' || rest[len - 1] != '"' || memchr(rest + 1, '"', len - 2)) {
			cfg_err(p, p->line, "[%s]: expected a name in quotes, as [%s \"NAME\"]", word, word);
			return;
		}
		rest[len - 1] = '\0';
		name = rest + 1;
		if (cfg_find_ctrl(name) >= 0) {
			cfg_err(p, p->line, "[%s]: the name contains a control character", word);
			return;
		}
	} else if (*rest) {
		cfg_err(p, p->line, "[%s]: this section takes no name, got %s", word, rest);
		return;
	}
	for (size_t i = 0; i < p->n_sects; i++) {
		struct cfg_sect *o = &p->sects[i];
		if ((int)o->sec != sec)
			continue;
		if (!name) {
			cfg_err(p, p->line, "[%s]: section repeated (first on line %u)", word, o->line);
			return;
		}
		if (strcmp(o->name, name) == 0) {
			cfg_sect_label(o, label, sizeof(label));
			cfg_err(p, p->line, "%s: duplicate %s name (first on line %u)", label, word, o->line);
			return;
		}
	}

	struct cfg_sect *v = realloc(p->sects, (p->n_sects + 1) * sizeof(*v));
	if (!v) {
		p->oom = true;
		return;
	}
	p->sects = v;
	memset(&v[p->n_sects], 0, sizeof(v[0]));
	v[p->n_sects].sec = (enum cfg_sec)sec;
	v[p->n_sects].line = p->line;
	if (name && !(v[p->n_sects].name = strdup(name))) {
		p->oom = true;
		return;
	}
	p->cur = (long)p->n_sects++;
}

/* The next raw line without its end of line, or NULL at the end. */
static char *next_line(struct reader *rd)
{
	size_t len;
	if (rd->f) {
		ssize_t n = getline(&rd->buf, &rd->cap, rd->f);
		if (n < 0)
			return NULL;
		len = (size_t)n;
	} else {
		if (!*rd->s)
			return NULL;
		len = strcspn(rd->s, "\n");
		if (rd->s[len] == '\n')
			len++;
		if (len + 1 > rd->cap) {
			char *b = realloc(rd->buf, len + 1);
			if (!b) {
				rd->p->oom = true;
				return NULL;
			}
			rd->buf = b;
			rd->cap = len + 1;
		}
		memcpy(rd->buf, rd->s, len);
		rd->buf[len] = '\0';
		rd->s += len;
	}
	while (len > 0 && (rd->buf[len - 1] == '\n' || rd->buf[len - 1] == '\r'))
		rd->buf[--len] = '\0';
	return rd->buf;
}

static char *reader(char *str, int num, void *stream)
{
	struct reader *rd = stream;
	struct cfg_parser *p = rd->p;
	char *l = next_line(rd), *end;

	if (!l)
		return NULL;
	p->line++;
	if (p->line == 1 && strncmp(l, "\xef\xbb\xbf", 3) == 0)
		l += 3;
	while (is_blank(*l))
		l++;
	/* A comment starts at '#' or ';' at the start or after a blank, so
	 * "to = a@x;b@y" and URLs with '#' keep their text. */
	for (char *c = l; *c; c++)
		if ((*c == '#' || *c == ';') && (c == l || is_blank(c[-1]))) {
			*c = '\0';
			break;
		}
	end = l + strlen(l);
	while (end > l && is_blank(end[-1]))
		*--end = '\0';

	if (*l == '[') {
		if (end[-1] != ']') {
			cfg_err(p, p->line, "expected ']' at the end of the section header, got '%s'", l);
			p->cur = -2;
		} else {
			end[-1] = '\0';
			begin_section(p, l + 1);
		}
		l = end;
	} else if (*l) {
		size_t k = strcspn(l, "=:");
		if (l[k] != '=') {
			cfg_err(p, p->line, "expected 'key = value' or a [section] header, got '%s'", l);
			l = end;
		} else if ((size_t)(end - l) > (size_t)num - 3) {
			cfg_err(p, p->line, "line too long (at most %d characters)", num - 3);
			l = end;
		}
	}
	/* Comments, blank lines, headers and rejected lines reach inih empty. */
	snprintf(str, (size_t)num, "%s\n", l);
	return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct cfg_parser *p = user;
	char label[160];
	(void)section; /* our reader tracks sections itself */

	if (p->cur == -2)
		return 1; /* the section header was reported */
	if (p->cur < 0) {
		cfg_err(p, p->line, "key '%s' outside of any section", name);
		return 1;
	}
	struct cfg_sect *s = &p->sects[p->cur];
	cfg_sect_label(s, label, sizeof(label));
	if (!*name) {
		cfg_err(p, p->line, "%s missing key name before '='", label);
		return 1;
	}
	const char *cands[N_KEYS];
	for (int k = 0; k < N_KEYS; k++) {
		cands[k] = cfg_key_defs[k].sec == s->sec ? cfg_key_defs[k].name : NULL;
		if (!cands[k] || strcmp(name, cands[k]) != 0)
			continue;
		if (s->raw[k].val) {
			cfg_err(p, p->line, "%s %s: repeated (first on line %u)", label, name, s->raw[k].line);
			return 1;
		}
		if (!(s->raw[k].val = strdup(value))) {
			p->oom = true;
			return 1;
		}
		s->raw[k].line = p->line;
		return 1;
	}
	const char *near = nearest(name, cands, N_KEYS);
	if (near)
		cfg_err(p, p->line, "%s unknown key '%s' (did you mean '%s'?)", label, name, near);
	else
		cfg_err(p, p->line, "%s unknown key '%s'", label, name);
	return 1;
}

int cfg_parse_ini(struct cfg_parser *p, FILE *f, const char *text)
{
	struct reader rd = { .p = p, .f = f, .s = text };
	p->cur = -1;
	int r = ini_parse_stream(reader, &rd, handler, p);
	free(rd.buf);
	if (p->oom || r == -2)
		return -ENOMEM;
	if (f && ferror(f))
		return errno > 0 ? -errno : -EIO;
	/* Every line inih could reject was already reported by the reader. */
	if (r > 0 && p->n_msgs == 0)
		cfg_err(p, (unsigned)r, "syntax error");
	return 0;
}
