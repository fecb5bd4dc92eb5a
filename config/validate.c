/* Pass 2: raw sections -> struct cfg. Every key goes through its typed,
 * range-checked reader; absent keys take SPEC's defaults; then the keys are
 * checked against each other. Every problem is recorded, none stops the pass. */
#include <config.h> /* autoconf: _GNU_SOURCE; "config.h" would find config/config.h */

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/internal.h"
#include "config/values.h"

#define MSEC(x) ((uint64_t)(x) * USEC_PER_MSEC)
#define SEC(x) ((uint64_t)(x) * USEC_PER_SEC)
#define MIN(x) (SEC(x) * 60)
#define HOUR(x) (MIN(x) * 60)

struct ctx {
	struct cfg_parser *p;
	struct cfg *c;
	const struct cfg_sect *sec[N_SEC];  /* the plain sections, NULL when absent */
};

static const char *raw(const struct cfg_sect *s, enum cfg_key k)
{
	return s ? s->raw[k].val : NULL;
}

static unsigned line_of(const struct cfg_sect *s, enum cfg_key k)
{
	return s && s->raw[k].val ? s->raw[k].line : 0;
}

/* The first of the lines that is known (0: unknown). */
static unsigned pick(unsigned a, unsigned b, unsigned c)
{
	return a ? a : b ? b : c ? c : 1;
}

static char *xstrdup(struct ctx *x, const char *s)
{
	char *d = s ? strdup(s) : NULL;
	if (s && !d)
		x->p->oom = true;
	return d;
}

/* "FILE:LINE: [section] key: message" at line (0: the key's own line). */
__attribute__((format(printf, 5, 6)))
static void bad(struct ctx *x, const struct cfg_sect *s, enum cfg_key k, unsigned line,
		const char *fmt, ...)
{
	char label[160], msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cfg_sect_label(s, label, sizeof(label));
	cfg_err(x->p, line ? line : s->raw[k].line, "%s %s: %s", label, cfg_key_defs[k].name, msg);
}

/* A control character in a name or path would reach the journal, a mail or
 * a terminal as an escape sequence: an error. The value is not echoed. */
static bool has_ctrl(struct ctx *x, const struct cfg_sect *s, enum cfg_key k, const char *v)
{
	long at = cfg_find_ctrl(v);
	if (at < 0)
		return false;
	bad(x, s, k, 0, "contains a control character (0x%02x at byte %ld)", (unsigned)(unsigned char)v[at],
	    at + 1);
	return true;
}

static void missing(struct ctx *x, const struct cfg_sect *s, enum cfg_key k, const char *hint)
{
	bad(x, s, k, s->line, "missing%s%s", hint ? " " : "", hint ? hint : "");
}

static bool get_duration(struct ctx *x, const struct cfg_sect *s, enum cfg_key k,
			 uint64_t min, uint64_t max, uint64_t *out)
{
	const char *v = raw(s, k);
	uint64_t u;
	char a[32], b[32];
	if (!v)
		return false;
	if (cfg_parse_duration(v, &u) < 0) {
		bad(x, s, k, 0, "expected a duration such as 30s, 2m, 500ms, got '%s'", v);
		return false;
	}
	if (u < min || u > max) {
		cfg_format_duration(min, a, sizeof(a));
		cfg_format_duration(max, b, sizeof(b));
		bad(x, s, k, 0, "expected a duration between %s and %s, got '%s'", a, b, v);
		return false;
	}
	*out = u;
	return true;
}

static bool get_uint(struct ctx *x, const struct cfg_sect *s, enum cfg_key k,
		     unsigned min, unsigned max, unsigned *out)
{
	const char *v = raw(s, k);
	uint64_t u;
	if (!v)
		return false;
	if (cfg_parse_uint(v, min, max, &u) < 0) {
		bad(x, s, k, 0, "expected a whole number between %u and %u, got '%s'", min, max, v);
		return false;
	}
	*out = (unsigned)u;
	return true;
}

static bool get_bool(struct ctx *x, const struct cfg_sect *s, enum cfg_key k, bool *out)
{
	const char *v = raw(s, k);
	if (!v)
		return false;
	if (cfg_parse_bool(v, out) < 0) {
		bad(x, s, k, 0, "expected yes or no (also true/false, on/off, 1/0), got '%s'", v);
		return false;
	}
	return true;
}

/* names is NULL-terminated; *out gets the index. */
static bool get_enum(struct ctx *x, const struct cfg_sect *s, enum cfg_key k,
		     const char *const *names, int *out)
{
	const char *v = raw(s, k);
	char expect[128] = "";
	size_t n = 0;
	if (!v)
		return false;
	for (; names[n]; n++)
		if (strcmp(v, names[n]) == 0) {
			*out = (int)n;
			return true;
		}
	for (size_t i = 0, len = 0; i < n && len < sizeof(expect); i++) {
		int w = snprintf(expect + len, sizeof(expect) - len, "%s%s", names[i],
				 i + 2 < n ? ", " : i + 2 == n ? " or " : "");
		len += w > 0 ? (size_t)w : 0;
	}
	bad(x, s, k, 0, "expected %s, got '%s'", expect, v);
	return false;
}

/* An absolute path; "" gives NULL when empty_ok. */
static bool get_path(struct ctx *x, const struct cfg_sect *s, enum cfg_key k, bool empty_ok,
		     char **out)
{
	const char *v = raw(s, k);
	if (!v)
		return false;
	if (!*v && empty_ok) {
		free(*out);
		*out = NULL;
		return true;
	}
	if (has_ctrl(x, s, k, v))
		return false;
	if (v[0] != '/' || strpbrk(v, " \t")) {
		bad(x, s, k, 0, "expected an absolute path%s, got '%s'", empty_ok ? " or nothing" : "", v);
		return false;
	}
	free(*out);
	*out = xstrdup(x, v);
	return true;
}

static void set_defaults(struct ctx *x)
{
	struct cfg *c = x->c;
	char host[256] = "localhost", from[300];

	c->agent.interval_usec = MIN(2);
	c->agent.watch_links = true;
	c->agent.failed_checks = 2;
	c->agent.runs = 2;
	c->agent.failed_runs = 2;
	c->agent.passed_runs = 2;
	c->agent.initial_state = INITIAL_LAST;
	/* Under systemd, StateDirectory= tells where state lives (rerouterd@NAME:
	 * /var/lib/rerouter/NAME); the first of a ':' list is ours. */
	const char *sd = getenv("STATE_DIRECTORY");
	size_t sdn = sd ? strcspn(sd, ":") : 0;
	if (sd && sd[0] == '/' && sdn + sizeof "/state.db" <= PATH_MAX) {
		char buf[PATH_MAX];
		snprintf(buf, sizeof buf, "%.*s/state.db", (int)sdn, sd);
		c->agent.state_db = xstrdup(x, buf);
	} else
		c->agent.state_db = xstrdup(x, "/var/lib/rerouter/state.db");

	c->ping.count = 3;
	c->ping.min_replies = 2;
	c->ping.timeout_usec = SEC(2);

	c->transport.database = xstrdup(x, "/var/lib/rerouter/transport.db");
	c->transport.unit = xstrdup(x, "postfix.service");
	c->transport.action = TRANSPORT_RESTART;
	c->transport.bus = BUS_SYSTEM;
	if (cfg_split_argv("/usr/sbin/postqueue -f", &c->transport.flush) < 0)
		x->p->oom = true;

	if (gethostname(host, sizeof(host)) < 0 || !host[0])
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(from, sizeof(from), "rerouter@%s", host);
	c->mail.from = xstrdup(x, from);
	c->mail.server = xstrdup(x, "smtp://localhost:25");
	c->mail.starttls = STARTTLS_AUTO;
	c->mail.timeout_usec = SEC(30);
	c->mail.min_gap_usec = MIN(5);
	c->mail.max_wait_usec = SEC(30);

	c->hook.timeout_usec = SEC(30);
	c->log.verbose = false;
}

static void build_agent(struct ctx *x)
{
	const struct cfg_sect *s = x->sec[SEC_AGENT];
	static const char *const states[] = { "last", "up", "down", NULL };
	struct cfg *c = x->c;
	int e;

	get_duration(x, s, K_AGENT_INTERVAL, MSEC(100), HOUR(24), &c->agent.interval_usec);
	get_uint(x, s, K_AGENT_FAILED_CHECKS, 1, 1000, &c->agent.failed_checks);
	get_uint(x, s, K_AGENT_RUNS, 1, 100, &c->agent.runs);
	get_uint(x, s, K_AGENT_FAILED_RUNS, 1, 100, &c->agent.failed_runs);
	get_uint(x, s, K_AGENT_PASSED_RUNS, 1, 100, &c->agent.passed_runs);
	if (get_enum(x, s, K_AGENT_INITIAL_STATE, states, &e))
		c->agent.initial_state = (enum cfg_initial_state)e;
	get_path(x, s, K_AGENT_STATE_DB, false, &c->agent.state_db);
	/* fast_interval's default needs the checks: check_fast_interval(). */
	get_duration(x, s, K_AGENT_FAST_INTERVAL, MSEC(100), HOUR(24), &c->agent.fast_interval_usec);
	get_bool(x, s, K_AGENT_WATCH_LINKS, &c->agent.watch_links);

	s = x->sec[SEC_PING];
	get_uint(x, s, K_PING_COUNT, 1, 100, &c->ping.count);
	get_uint(x, s, K_PING_MIN_REPLIES, 1, 100, &c->ping.min_replies);
	get_duration(x, s, K_PING_TIMEOUT, MSEC(10), HOUR(1), &c->ping.timeout_usec);
	if (s && c->ping.min_replies > c->ping.count)
		bad(x, s, K_PING_MIN_REPLIES, pick(line_of(s, K_PING_MIN_REPLIES), line_of(s, K_PING_COUNT), s->line),
		    "%u is more than count (%u)", c->ping.min_replies, c->ping.count);
}

static void build_transport(struct ctx *x)
{
	const struct cfg_sect *s = x->sec[SEC_TRANSPORT];
	static const char *const actions[] = { "restart", "reload", "none", NULL };
	static const char *const buses[] = { "system", "user", NULL };
	struct cfg *c = x->c;
	const char *v;
	int e;

	get_path(x, s, K_TRANSPORT_DATABASE, false, &c->transport.database);
	if ((v = raw(s, K_TRANSPORT_UNIT))) {
		const char *dot = strrchr(v, '.');
		if (has_ctrl(x, s, K_TRANSPORT_UNIT, v))
			;
		/* systemd's own alphabet for unit names (unit-name.c). */
		else if (!*v || v[strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:-_.\\@")] ||
			 !dot || dot == v || !dot[1])
			bad(x, s, K_TRANSPORT_UNIT, 0, "expected a systemd unit name such as postfix.service, got '%s'", v);
		else {
			free(c->transport.unit);
			c->transport.unit = xstrdup(x, v);
		}
	}
	if (get_enum(x, s, K_TRANSPORT_ACTION, actions, &e))
		c->transport.action = (enum cfg_transport_action)e;
	if (get_enum(x, s, K_TRANSPORT_BUS, buses, &e))
		c->transport.bus = (enum cfg_bus)e;
	if ((v = raw(s, K_TRANSPORT_FLUSH))) {
		struct cfg_list l = { 0 };
		if (has_ctrl(x, s, K_TRANSPORT_FLUSH, v))
			;
		else if (cfg_split_argv(v, &l) < 0)
			x->p->oom = true;
		else if (l.n > 0 && l.v[0][0] != '/') {
			bad(x, s, K_TRANSPORT_FLUSH, 0,
			    "expected an absolute program path and its arguments, or nothing, got '%s'", v);
			cfg_list_free(&l);
		} else {
			cfg_list_free(&c->transport.flush);
			c->transport.flush = l;
		}
	}
}

/* The daemon's group may read it (root:_rerouter 0640), nobody else, and
 * only its owner may write it. A symlink is refused: it could be pointed
 * elsewhere by whoever owns the directory it lives in. */
static void check_password_file(struct ctx *x, const struct cfg_sect *s, const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0) {
		bad(x, s, K_MAIL_PASSWORD_FILE, 0, "cannot use %s: %s", path, strerror(errno));
		return;
	}
	if (S_ISLNK(st.st_mode)) {
		bad(x, s, K_MAIL_PASSWORD_FILE, 0, "%s is a symbolic link; name the file itself", path);
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		bad(x, s, K_MAIL_PASSWORD_FILE, 0, "%s is not a regular file", path);
		return;
	}
	if (st.st_mode & 027)
		bad(x, s, K_MAIL_PASSWORD_FILE, 0,
		    "%s is %s (mode %04o); run chmod 640 %s (or 600)", path,
		    st.st_mode & 007 ? "open to others" : "writable by its group",
		    (unsigned)(st.st_mode & 07777), path);
}

#define CRED_PREFIX "${CREDENTIALS_DIRECTORY}/"

/* password_file, with ${CREDENTIALS_DIRECTORY}/NAME (systemd's LoadCredential=,
 * SPEC section 9) expanded. Outside the unit (an admin's --check-config) the
 * variable is unset: the path is kept as written and not checked, and the
 * mail thread reports it at the first alert if the daemon really runs so. */
static bool get_password_file(struct ctx *x, const struct cfg_sect *s, char **out)
{
	const char *v = raw(s, K_MAIL_PASSWORD_FILE), *dir = getenv("CREDENTIALS_DIRECTORY");

	if (!v || strncmp(v, CRED_PREFIX, strlen(CRED_PREFIX)) != 0)
		return get_path(x, s, K_MAIL_PASSWORD_FILE, true, out);
	const char *name = v + strlen(CRED_PREFIX);
	if (!*name || strchr(name, '/') || strpbrk(name, " \t")) {
		bad(x, s, K_MAIL_PASSWORD_FILE, 0, "expected ${CREDENTIALS_DIRECTORY}/NAME, got '%s'", v);
		return false;
	}
	free(*out);
	*out = NULL;
	if (!dir || dir[0] != '/') {
		*out = xstrdup(x, v);
		return true;
	}
	size_t n = strlen(dir) + 1 + strlen(name) + 1;
	if ((*out = malloc(n)))
		snprintf(*out, n, "%s/%s", dir, name);
	else
		x->p->oom = true;
	return *out != NULL;
}

static void build_mail(struct ctx *x)
{
	const struct cfg_sect *s = x->sec[SEC_MAIL];
	static const char *const tls[] = { "auto", "always", "never", NULL };
	static const char *const schemes[] = { "smtp", "smtps", NULL };
	struct cfg *c = x->c;
	const char *v;
	int e;

	if (!s)
		return;
	c->mail.present = true;
	if (!(v = raw(s, K_MAIL_TO))) {
		missing(x, s, K_MAIL_TO, "(where alerts go: one or more addresses)");
	} else if (cfg_parse_list(v, ",;", &c->mail.to) < 0) {
		bad(x, s, K_MAIL_TO, 0, "expected mail addresses separated by ',' or ';', got '%s'", v);
	} else {
		for (size_t i = 0; i < c->mail.to.n; i++)
			if (!cfg_valid_address(c->mail.to.v[i]))
				bad(x, s, K_MAIL_TO, 0, "'%s' is not a valid mail address (expected local@domain)",
				    c->mail.to.v[i]);
	}
	if ((v = raw(s, K_MAIL_FROM))) {
		if (!cfg_valid_address(v))
			bad(x, s, K_MAIL_FROM, 0, "'%s' is not a valid mail address (expected local@domain)", v);
		else {
			free(c->mail.from);
			c->mail.from = xstrdup(x, v);
		}
	}
	if ((v = raw(s, K_MAIL_SERVER))) {
		if (cfg_url_has_userinfo(v))
			bad(x, s, K_MAIL_SERVER, 0,
			    "credentials in the URL (user:password@) are not allowed, they would reach logs; use username and password_file");
		else if (cfg_parse_url(v, schemes) < 0)
			bad(x, s, K_MAIL_SERVER, 0, "expected smtp://host[:port] or smtps://host[:port], got '%s'", v);
		else {
			free(c->mail.server);
			c->mail.server = xstrdup(x, v);
		}
	}
	if (get_enum(x, s, K_MAIL_STARTTLS, tls, &e))
		c->mail.starttls = (enum cfg_starttls)e;
	if ((v = raw(s, K_MAIL_USERNAME)) && *v && !has_ctrl(x, s, K_MAIL_USERNAME, v))
		c->mail.username = xstrdup(x, v);
	if (get_password_file(x, s, &c->mail.password_file) && c->mail.password_file) {
		if (!c->mail.username)
			bad(x, s, K_MAIL_PASSWORD_FILE, 0, "set without username");
		if (strncmp(c->mail.password_file, CRED_PREFIX, strlen(CRED_PREFIX)) != 0)
			check_password_file(x, s, c->mail.password_file);
	}
	/* A password must never cross the network in clear. */
	if (c->mail.username && c->mail.starttls == STARTTLS_NEVER &&
	    (!c->mail.server || strncmp(c->mail.server, "smtps://", 8) != 0))
		bad(x, s, K_MAIL_STARTTLS, 0,
		    "never would send the password of username in clear over smtp://; use auto, always or smtps://");
	get_duration(x, s, K_MAIL_TIMEOUT, MSEC(10), HOUR(1), &c->mail.timeout_usec);
	get_duration(x, s, K_MAIL_MIN_GAP, 0, HOUR(24), &c->mail.min_gap_usec);
	get_duration(x, s, K_MAIL_MAX_WAIT, 0, HOUR(1), &c->mail.max_wait_usec);
}

static void build_hook_log(struct ctx *x)
{
	const struct cfg_sect *s = x->sec[SEC_HOOK];
	struct cfg *c = x->c;

	get_path(x, s, K_HOOK_ON_CHANGE, true, &c->hook.on_change);
	c->hook.present = c->hook.on_change != NULL;
	get_duration(x, s, K_HOOK_TIMEOUT, MSEC(10), HOUR(1), &c->hook.timeout_usec);

	get_bool(x, x->sec[SEC_LOG], K_LOG_VERBOSE, &c->log.verbose);
	get_path(x, x->sec[SEC_METRICS], K_METRICS_TEXTFILE, true, &c->metrics.textfile);
}

static void build_toggle(struct ctx *x, enum cfg_sec sec, enum cfg_key ken, enum cfg_key kdis,
			 struct cfg_toggle *t)
{
	const struct cfg_sect *s = x->sec[sec];
	enum cfg_key keys[2] = { ken, kdis };
	struct cfg_list *lists[2] = { &t->enable, &t->disable };

	if (!s)
		return;
	t->present = true;
	t->line = s->line;
	for (int i = 0; i < 2; i++) {
		const char *v = raw(s, keys[i]);
		if (!v || !*v)
			continue;
		if (has_ctrl(x, s, keys[i], v))
			continue;
		bool ok = cfg_parse_list(v, ",", lists[i]) == 0;
		for (size_t j = 0; ok && j < lists[i]->n; j++)
			ok = !strpbrk(lists[i]->v[j], " \t");
		if (!ok) {
			bad(x, s, keys[i], 0, "expected connector names separated by ',', got '%s'", v);
			cfg_list_free(lists[i]);
		}
	}
	/* The later of the two keys is the one that contradicts. */
	enum cfg_key later = line_of(s, ken) > line_of(s, kdis) ? ken : kdis;
	for (size_t i = 0; i < t->enable.n; i++)
		for (size_t j = 0; j < t->disable.n; j++)
			if (strcmp(t->enable.v[i], t->disable.v[j]) == 0)
				bad(x, s, later, 0, "connector '%s' is in both enable and disable", t->enable.v[i]);
}

static const char *const type_names[] = { "ping", "http", "tcp", "smtp", NULL };

static void not_for_type(struct ctx *x, const struct cfg_sect *s, enum cfg_key k, const char *only,
			 enum cfg_check_type t)
{
	if (raw(s, k))
		bad(x, s, k, 0, "applies only to %s checks, not %s", only, cfg_check_type_str(t));
}

/* SPEC section 2: verification stays on; a relay with a private CA gets its
 * ca_file rather than tls_verify = no. */
static void build_tls(struct ctx *x, const struct cfg_sect *s, struct cfg_check *ck)
{
	const char *ca = raw(s, K_CHECK_CA_FILE);
	struct stat st;
	bool verify = true;

	if (ck->type != CHECK_HTTP && ck->type != CHECK_SMTP) {
		not_for_type(x, s, K_CHECK_TLS_VERIFY, "http and smtp", ck->type);
		not_for_type(x, s, K_CHECK_CA_FILE, "http and smtp", ck->type);
		return;
	}
	get_bool(x, s, K_CHECK_TLS_VERIFY, &verify);
	ck->tls_no_verify = !verify;
	if (!get_path(x, s, K_CHECK_CA_FILE, true, &ck->ca_file) || !ck->ca_file)
		return;
	if (!verify) {
		enum cfg_key later = line_of(s, K_CHECK_CA_FILE) > line_of(s, K_CHECK_TLS_VERIFY)
					     ? K_CHECK_CA_FILE : K_CHECK_TLS_VERIFY;
		bad(x, s, later, 0, "ca_file is set but tls_verify = no: nothing would check the certificate");
	} else if (stat(ca, &st) < 0) {
		bad(x, s, K_CHECK_CA_FILE, 0, "cannot use %s: %s", ca, strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		bad(x, s, K_CHECK_CA_FILE, 0, "%s is not a regular file", ca);
	}
}

/* count and min_replies (ping), expect and proxy (http): refused elsewhere. */
static void build_type_keys(struct ctx *x, const struct cfg_sect *s, struct cfg_check *ck)
{
	static const char *const proxy_schemes[] = { "http", "https", "socks4", "socks5", "socks5h", NULL };
	const struct cfg *c = x->c;
	const char *v;

	if (ck->type == CHECK_PING) {
		ck->ping_count = c->ping.count;
		ck->ping_min_replies = c->ping.min_replies;
		get_uint(x, s, K_CHECK_COUNT, 1, 100, &ck->ping_count);
		get_uint(x, s, K_CHECK_MIN_REPLIES, 1, 100, &ck->ping_min_replies);
	} else {
		not_for_type(x, s, K_CHECK_COUNT, "ping", ck->type);
		not_for_type(x, s, K_CHECK_MIN_REPLIES, "ping", ck->type);
	}
	if (ck->type != CHECK_HTTP) {
		not_for_type(x, s, K_CHECK_EXPECT, "http", ck->type);
		not_for_type(x, s, K_CHECK_PROXY, "http", ck->type);
		return;
	}
	ck->expect[0] = (struct cfg_range){ 200, 399 };
	ck->n_expect = 1;
	if ((v = raw(s, K_CHECK_EXPECT)) && cfg_parse_expect(v, ck->expect, CFG_MAX_EXPECT, &ck->n_expect) < 0)
		bad(x, s, K_CHECK_EXPECT, 0,
		    "expected status codes (100-599) such as 200-399 or 200,204,300-399, got '%s'", v);
	if ((v = raw(s, K_CHECK_PROXY)) && strcmp(v, "none") != 0) {
		if (cfg_parse_url(v, proxy_schemes) < 0)
			bad(x, s, K_CHECK_PROXY, 0,
			    "expected none or a proxy URL (http, https, socks4, socks5 or socks5h://host[:port]), got '%s'", v);
		else
			ck->proxy = xstrdup(x, v);
	}
}

/* target as the type wants it; source and mark. */
static void build_target(struct ctx *x, const struct cfg_sect *s, struct cfg_check *ck)
{
	static const char *const http_schemes[] = { "http", "https", NULL };
	const char *v;
	int r;

	if (!(v = raw(s, K_CHECK_TARGET))) {
		missing(x, s, K_CHECK_TARGET, NULL);
	} else {
		switch (ck->type) {
		case CHECK_PING:
			if ((r = cfg_parse_host(v, &ck->host)) < 0)
				bad(x, s, K_CHECK_TARGET, 0, "expected a host name or IP address without port, got '%s'", v);
			break;
		case CHECK_HTTP:
			if (cfg_url_has_userinfo(v)) {
				r = -EINVAL;
				bad(x, s, K_CHECK_TARGET, 0,
				    "credentials in the URL (user:password@) are not allowed, they would reach the journal and the alert mail");
			} else if ((r = cfg_parse_url(v, http_schemes)) < 0)
				bad(x, s, K_CHECK_TARGET, 0, "expected an http:// or https:// URL with a host, got '%s'", v);
			break;
		default:
			if ((r = cfg_parse_hostport(v, &ck->host, &ck->port)) < 0)
				bad(x, s, K_CHECK_TARGET, 0,
				    "expected host:port (IPv6 as [address]:port, port 1-65535), got '%s'", v);
			break;
		}
		if (r == -ENOMEM)
			x->p->oom = true;
		if (r == 0)
			ck->target = xstrdup(x, v);
	}
	if ((v = raw(s, K_CHECK_SOURCE))) {
		if (cfg_parse_source(v, &ck->source_is_ifname) < 0)
			bad(x, s, K_CHECK_SOURCE, 0, "expected an IP address or an interface name, got '%s'", v);
		else
			ck->source = xstrdup(x, v);
	}
	if ((v = raw(s, K_CHECK_MARK))) {
		if (cfg_parse_mark(v, &ck->mark) < 0)
			bad(x, s, K_CHECK_MARK, 0, "expected a 32-bit number, decimal or 0x hexadecimal, got '%s'", v);
		else
			ck->has_mark = true;
	}
}

/* Against [agent] interval: a run must end before the next one starts. */
static void check_fits_interval(struct ctx *x, const struct cfg_sect *s, const struct cfg_check *ck)
{
	const struct cfg_sect *ag = x->sec[SEC_AGENT], *pg = x->sec[SEC_PING];
	uint64_t iv = x->c->agent.interval_usec;
	char a[32], b[32];

	cfg_format_duration(iv, b, sizeof(b));
	if (ck->type != CHECK_PING) {
		if (ck->timeout_usec >= iv) {
			cfg_format_duration(ck->timeout_usec, a, sizeof(a));
			bad(x, s, K_CHECK_TIMEOUT,
			    pick(line_of(s, K_CHECK_TIMEOUT), line_of(ag, K_AGENT_INTERVAL), s->line),
			    "%s must be shorter than [agent] interval (%s)", a, b);
		}
		return;
	}
	if ((uint64_t)ck->ping_count * ck->timeout_usec >= iv) {
		char label[160], total[32];
		cfg_format_duration(ck->timeout_usec, a, sizeof(a));
		cfg_format_duration((uint64_t)ck->ping_count * ck->timeout_usec, total, sizeof(total));
		unsigned line = line_of(s, K_CHECK_TIMEOUT) ? line_of(s, K_CHECK_TIMEOUT) : line_of(s, K_CHECK_COUNT);
		if (!line)
			line = line_of(pg, K_PING_TIMEOUT) ? line_of(pg, K_PING_TIMEOUT) : line_of(pg, K_PING_COUNT);
		cfg_sect_label(s, label, sizeof(label));
		cfg_err(x->p, pick(line, line_of(ag, K_AGENT_INTERVAL), s->line),
			"%s: ping count * timeout (%u * %s = %s) must be shorter than [agent] interval (%s)",
			label, ck->ping_count, a, total, b);
	}
	/* [ping] was checked on its own; only an override can break it here. */
	if ((raw(s, K_CHECK_COUNT) || raw(s, K_CHECK_MIN_REPLIES)) && ck->ping_min_replies > ck->ping_count) {
		unsigned line = line_of(s, K_CHECK_MIN_REPLIES) ? line_of(s, K_CHECK_MIN_REPLIES) : line_of(s, K_CHECK_COUNT);
		bad(x, s, K_CHECK_MIN_REPLIES, line, "%u is more than count (%u)", ck->ping_min_replies,
		    ck->ping_count);
	}
}

static void build_check(struct ctx *x, const struct cfg_sect *s, struct cfg_check *ck)
{
	static const char *const roles[] = { "link", "backup", NULL };
	int e;

	ck->name = xstrdup(x, s->name);
	ck->line = s->line;
	ck->role = ROLE_LINK;
	if (get_enum(x, s, K_CHECK_ROLE, roles, &e))
		ck->role = (enum cfg_role)e;
	if (!raw(s, K_CHECK_TYPE)) {
		missing(x, s, K_CHECK_TYPE, "(ping, http, tcp or smtp)");
		return;
	}
	if (!get_enum(x, s, K_CHECK_TYPE, type_names, &e))
		return;
	ck->type = (enum cfg_check_type)e;
	ck->timeout_usec = ck->type == CHECK_PING ? x->c->ping.timeout_usec : SEC(5);
	get_duration(x, s, K_CHECK_TIMEOUT, MSEC(10), HOUR(1), &ck->timeout_usec);
	build_type_keys(x, s, ck);
	build_tls(x, s, ck);
	build_target(x, s, ck);
	check_fits_interval(x, s, ck);
}

static void build_window(struct ctx *x, const struct cfg_sect *s, struct cfg_window *w)
{
	const char *v;
	bool have_start = false, have_end = false;

	w->name = xstrdup(x, s->name);
	w->line = s->line;
	if (!(v = raw(s, K_MAINT_DAYS)))
		missing(x, s, K_MAINT_DAYS, "(such as mon-fri or sat,sun)");
	else if (cfg_parse_days(v, &w->days) < 0)
		bad(x, s, K_MAINT_DAYS, 0, "expected days mon..sun, ranges and lists such as mon-fri or sat,sun, got '%s'", v);
	if (!(v = raw(s, K_MAINT_START)))
		missing(x, s, K_MAINT_START, "(HH:MM)");
	else if (cfg_parse_time(v, &w->start_min) < 0)
		bad(x, s, K_MAINT_START, 0, "expected a time HH:MM between 00:00 and 23:59, got '%s'", v);
	else
		have_start = true;
	if (!(v = raw(s, K_MAINT_END)))
		missing(x, s, K_MAINT_END, "(HH:MM)");
	else if (cfg_parse_time(v, &w->end_min) < 0)
		bad(x, s, K_MAINT_END, 0, "expected a time HH:MM between 00:00 and 23:59, got '%s'", v);
	else
		have_end = true;
	if (have_start && have_end && w->start_min == w->end_min) {
		enum cfg_key later = line_of(s, K_MAINT_END) > line_of(s, K_MAINT_START) ? K_MAINT_END : K_MAINT_START;
		bad(x, s, later, 0, "start and end are both %s: a window needs a length", raw(s, K_MAINT_END));
	}
}

/* What one check may take: ping count * timeout, else its timeout. */
static uint64_t check_duration(const struct cfg_check *ck)
{
	return ck->type == CHECK_PING ? (uint64_t)ck->ping_count * ck->timeout_usec : ck->timeout_usec;
}

/* Unset: the larger of 10 s and the longest check, never beyond interval (so
 * that no configuration written before fast_interval existed becomes
 * invalid). Set: not below the longest check (a run must end before the
 * next one is due) and not above interval. */
static void check_fast_interval(struct ctx *x)
{
	const struct cfg_sect *s = x->sec[SEC_AGENT];
	struct cfg *c = x->c;
	uint64_t longest = 0, iv = c->agent.interval_usec;
	size_t slowest = 0;
	char a[32], b[32];

	for (size_t i = 0; c->checks && i < c->n_checks; i++)
		if (check_duration(&c->checks[i]) > longest) {
			longest = check_duration(&c->checks[i]);
			slowest = i;
		}
	if (!c->agent.fast_interval_usec) {
		uint64_t d = longest > SEC(10) ? longest : SEC(10);
		c->agent.fast_interval_usec = d < iv ? d : iv;
		return;
	}
	cfg_format_duration(c->agent.fast_interval_usec, a, sizeof(a));
	if (c->agent.fast_interval_usec > iv) {
		cfg_format_duration(iv, b, sizeof(b));
		bad(x, s, K_AGENT_FAST_INTERVAL, 0, "%s is longer than interval (%s); equal to it turns it off", a, b);
	} else if (c->agent.fast_interval_usec < longest) {
		cfg_format_duration(longest, b, sizeof(b));
		bad(x, s, K_AGENT_FAST_INTERVAL, 0, "%s is shorter than the longest check (\"%s\", %s)", a,
		    c->checks[slowest].name, b);
	}
}

static void check_agent_cross(struct ctx *x)
{
	const struct cfg_sect *s = x->sec[SEC_AGENT];
	struct cfg *c = x->c;
	unsigned hdr = s ? s->line : 0;

	if (c->agent.failed_runs > c->agent.runs) {
		unsigned line = pick(line_of(s, K_AGENT_FAILED_RUNS), line_of(s, K_AGENT_RUNS), hdr);
		cfg_err(x->p, line, "[agent] failed_runs: %u is more than runs (%u)", c->agent.failed_runs, c->agent.runs);
	}
	if (c->agent.passed_runs > c->agent.runs) {
		unsigned line = pick(line_of(s, K_AGENT_PASSED_RUNS), line_of(s, K_AGENT_RUNS), hdr);
		cfg_err(x->p, line, "[agent] passed_runs: %u is more than runs (%u)", c->agent.passed_runs, c->agent.runs);
	}
	unsigned first_check = 0;
	for (size_t i = 0; i < x->p->n_sects; i++)
		if (x->p->sects[i].sec == SEC_CHECK) {
			first_check = x->p->sects[i].line;
			break;
		}
	if (c->n_link_checks == 0) {
		cfg_err(x->p, pick(first_check, hdr, 0),
			"no link check: add a [check \"NAME\"] section with role = link");
	} else if (c->agent.failed_checks > c->n_link_checks) {
		cfg_err(x->p, pick(line_of(s, K_AGENT_FAILED_CHECKS), hdr, first_check),
			"[agent] failed_checks: %u is more than the number of link checks (%zu)",
			c->agent.failed_checks, c->n_link_checks);
	}
}

int cfg_build(struct cfg_parser *p, struct cfg *c)
{
	struct ctx x = { .p = p, .c = c };
	size_t n_checks = 0, n_windows = 0;

	for (size_t i = 0; i < p->n_sects; i++) {
		enum cfg_sec sec = p->sects[i].sec;
		if (sec == SEC_CHECK)
			n_checks++;
		else if (sec == SEC_MAINT)
			n_windows++;
		else
			x.sec[sec] = &p->sects[i];
	}
	set_defaults(&x);
	build_agent(&x);
	build_transport(&x);
	build_mail(&x);
	build_hook_log(&x);
	build_toggle(&x, SEC_ON_DOWN, K_DOWN_ENABLE, K_DOWN_DISABLE, &c->on_down);
	build_toggle(&x, SEC_ON_UP, K_UP_ENABLE, K_UP_DISABLE, &c->on_up);

	c->checks = n_checks ? calloc(n_checks, sizeof(*c->checks)) : NULL;
	c->windows = n_windows ? calloc(n_windows, sizeof(*c->windows)) : NULL;
	if ((n_checks && !c->checks) || (n_windows && !c->windows))
		return -ENOMEM;
	for (size_t i = 0; i < p->n_sects; i++) {
		const struct cfg_sect *s = &p->sects[i];
		/* The counts bound the indexes (the analyzer cannot see that the
		 * sections did not change since they were counted). */
		if (s->sec == SEC_CHECK && c->n_checks < n_checks) {
			struct cfg_check *ck = &c->checks[c->n_checks++];
			build_check(&x, s, ck);
			if (ck->role == ROLE_LINK)
				c->n_link_checks++;
		} else if (s->sec == SEC_MAINT && c->n_windows < n_windows) {
			build_window(&x, s, &c->windows[c->n_windows++]);
		}
	}
	check_agent_cross(&x);
	check_fast_interval(&x);
	return p->oom ? -ENOMEM : 0;
}
