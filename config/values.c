/* Typed readers for configuration values: strict, allocation only for results. */
#include <config.h> /* autoconf: _GNU_SOURCE; "config.h" would find config/config.h */

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "config/values.h"

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_blank(char c) { return c == ' ' || c == '\t'; }
static bool is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Decimal digits only; -EINVAL on anything else or on overflow of uint64. */
static int parse_digits(const char *s, size_t len, uint64_t *ret)
{
	uint64_t v = 0;
	if (len == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return -EINVAL;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

int cfg_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	uint64_t v;
	if (parse_digits(s, strlen(s), &v) < 0 || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

int cfg_parse_duration(const char *s, uint64_t *ret_usec)
{
	static const struct { const char *suffix; uint64_t mult; } units[] = {
		{ "ms", USEC_PER_MSEC }, { "s", USEC_PER_SEC }, { "m", 60 * USEC_PER_SEC },
		{ "h", 3600 * USEC_PER_SEC }, { "", USEC_PER_SEC },
	};
	size_t n = 0;
	uint64_t v;

	while (is_digit(s[n]))
		n++;
	if (parse_digits(s, n, &v) < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s + n, units[i].suffix) != 0)
			continue;
		if (v > UINT64_MAX / units[i].mult)
			return -EINVAL;
		*ret_usec = v * units[i].mult;
		return 0;
	}
	return -EINVAL;
}

void cfg_format_duration(uint64_t usec, char *buf, size_t n)
{
	if (usec == 0)
		snprintf(buf, n, "0s");
	else if (usec % (3600 * USEC_PER_SEC) == 0)
		snprintf(buf, n, "%lluh", (unsigned long long)(usec / (3600 * USEC_PER_SEC)));
	else if (usec % (60 * USEC_PER_SEC) == 0)
		snprintf(buf, n, "%llum", (unsigned long long)(usec / (60 * USEC_PER_SEC)));
	else if (usec % USEC_PER_SEC == 0)
		snprintf(buf, n, "%llus", (unsigned long long)(usec / USEC_PER_SEC));
	else if (usec % USEC_PER_MSEC == 0)
		snprintf(buf, n, "%llums", (unsigned long long)(usec / USEC_PER_MSEC));
	else
		snprintf(buf, n, "%lluus", (unsigned long long)usec);
}

int cfg_parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

int cfg_parse_mark(const char *s, uint32_t *ret)
{
	uint64_t v = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		const char *p = s + 2;
		if (!*p)
			return -EINVAL;
		for (; *p; p++) {
			int d;
			if (is_digit(*p))
				d = *p - '0';
			else if (*p >= 'a' && *p <= 'f')
				d = *p - 'a' + 10;
			else if (*p >= 'A' && *p <= 'F')
				d = *p - 'A' + 10;
			else
				return -EINVAL;
			v = v * 16 + (unsigned)d;
			if (v > UINT32_MAX)
				return -EINVAL;
		}
	} else if (cfg_parse_uint(s, 0, UINT32_MAX, &v) < 0) {
		return -EINVAL;
	}
	*ret = (uint32_t)v;
	return 0;
}

bool cfg_valid_ip(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Labels of letters, digits, '-' (not at either end) and '_' (seen on
 * internal networks, and resolvers accept it); an optional final dot. */
bool cfg_valid_hostname(const char *s)
{
	size_t len = strlen(s), label = 0;
	if (len == 0 || len > 253 || s[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!is_alnum(c) && c != '-' && c != '_')
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return s[len - 1] != '-';
}

/* All digits and dots: meant as an IPv4 address, so never a host name. */
static bool looks_numeric(const char *s)
{
	for (; *s; s++)
		if (!is_digit(*s) && *s != '.')
			return false;
	return true;
}

int cfg_parse_host(const char *s, char **ret_host)
{
	char *h;
	size_t len = strlen(s);

	if (s[0] == '[') {
		if (len < 3 || s[len - 1] != ']')
			return -EINVAL;
		h = strndup(s + 1, len - 2);
		if (!h)
			return -ENOMEM;
		unsigned char buf[sizeof(struct in6_addr)];
		if (inet_pton(AF_INET6, h, buf) != 1) {
			free(h);
			return -EINVAL;
		}
	} else {
		if (!cfg_valid_ip(s) && (looks_numeric(s) || !cfg_valid_hostname(s)))
			return -EINVAL;
		h = strdup(s);
		if (!h)
			return -ENOMEM;
	}
	*ret_host = h;
	return 0;
}

int cfg_parse_hostport(const char *s, char **ret_host, uint16_t *ret_port)
{
	const char *colon;
	char *h = NULL;
	uint64_t port;
	int r;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		colon = close + 1;
	} else {
		colon = strchr(s, ':');
		/* A bare IPv6 address is ambiguous: it must be bracketed. */
		if (!colon || strchr(colon + 1, ':'))
			return -EINVAL;
	}
	if (cfg_parse_uint(colon + 1, 1, 65535, &port) < 0)
		return -EINVAL;
	char *hostpart = strndup(s, (size_t)(colon - s));
	if (!hostpart)
		return -ENOMEM;
	r = hostpart[0] ? cfg_parse_host(hostpart, &h) : -EINVAL;
	free(hostpart);
	if (r < 0)
		return r;
	*ret_host = h;
	*ret_port = (uint16_t)port;
	return 0;
}

/* Linux rules (dev_valid_name): 1..IFNAMSIZ-1 bytes, no '/', ':' or blanks. */
bool cfg_valid_ifname(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len >= IFNAMSIZ || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || *s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

int cfg_parse_source(const char *s, bool *ret_is_ifname)
{
	if (cfg_valid_ip(s)) {
		*ret_is_ifname = false;
		return 0;
	}
	/* "10.0.0.300" is a mistyped address, not an interface called so. */
	if (looks_numeric(s) || strchr(s, ':') || !cfg_valid_ifname(s))
		return -EINVAL;
	*ret_is_ifname = true;
	return 0;
}

int cfg_parse_url(const char *s, const char *const *schemes)
{
	const char *sep = strstr(s, "://"), *auth, *end, *at, *hp;
	size_t i;
	int r;

	if (!sep)
		return -EINVAL;
	for (i = 0; schemes[i]; i++)
		if (strlen(schemes[i]) == (size_t)(sep - s) && strncasecmp(s, schemes[i], (size_t)(sep - s)) == 0)
			break;
	if (!schemes[i])
		return -EINVAL;
	for (const char *p = s; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return -EINVAL;
	auth = sep + 3;
	end = auth + strcspn(auth, "/?#");
	at = memchr(auth, '@', (size_t)(end - auth));
	hp = at ? at + 1 : auth;
	if (hp == end)
		return -EINVAL;

	char *hostport = strndup(hp, (size_t)(end - hp));
	if (!hostport)
		return -ENOMEM;
	/* With a port it is host:port; without, only a host. */
	const char *last = strrchr(hostport, ':');
	const char *close = strrchr(hostport, ']');
	char *h = NULL;
	uint16_t port;
	if (last && (!close || last > close)) {
		r = cfg_parse_hostport(hostport, &h, &port);
	} else {
		r = cfg_parse_host(hostport, &h);
	}
	free(h);
	free(hostport);
	return r < 0 ? r : 0;
}

bool cfg_url_has_userinfo(const char *s)
{
	const char *sep = strstr(s, "://"), *auth;

	if (!sep)
		return false;
	auth = sep + 3;
	return memchr(auth, '@', strcspn(auth, "/?#")) != NULL;
}

long cfg_find_ctrl(const char *s)
{
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return (long)(p - s);
	return -1;
}

int cfg_parse_expect(const char *s, struct cfg_range *v, size_t max, size_t *ret_n)
{
	struct cfg_list items = { 0 };
	size_t n = 0;
	int r = cfg_parse_list(s, ",", &items);
	if (r < 0)
		return r;
	r = -EINVAL;
	if (items.n > max)
		goto out;
	for (size_t i = 0; i < items.n; i++) {
		const char *it = items.v[i], *dash = strchr(it, '-');
		uint64_t lo, hi;
		if (dash) {
			char *los = strndup(it, (size_t)(dash - it));
			if (!los) {
				r = -ENOMEM;
				goto out;
			}
			int a = cfg_parse_uint(los, 100, 599, &lo);
			free(los);
			if (a < 0 || cfg_parse_uint(dash + 1, 100, 599, &hi) < 0 || lo > hi)
				goto out;
		} else {
			if (cfg_parse_uint(it, 100, 599, &lo) < 0)
				goto out;
			hi = lo;
		}
		v[n].lo = (int)lo;
		v[n].hi = (int)hi;
		n++;
	}
	*ret_n = n;
	r = 0;
out:
	cfg_list_free(&items);
	return r;
}

static int parse_day(const char *s, size_t len)
{
	static const char *const names[] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };
	if (len != 3)
		return -EINVAL;
	for (int i = 0; i < 7; i++)
		if (strncasecmp(s, names[i], 3) == 0)
			return i;
	return -EINVAL;
}

int cfg_parse_days(const char *s, uint8_t *ret)
{
	struct cfg_list items = { 0 };
	uint8_t bits = 0;
	int r = cfg_parse_list(s, ",", &items);
	if (r < 0)
		return r;
	r = -EINVAL;
	for (size_t i = 0; i < items.n; i++) {
		const char *it = items.v[i], *dash = strchr(it, '-');
		int a, b;
		if (dash) {
			a = parse_day(it, (size_t)(dash - it));
			b = parse_day(dash + 1, strlen(dash + 1));
		} else {
			a = b = parse_day(it, strlen(it));
		}
		if (a < 0 || b < 0)
			goto out;
		/* fri-mon wraps over the weekend. */
		for (int d = a;; d = (d + 1) % 7) {
			bits |= (uint8_t)(1u << d);
			if (d == b)
				break;
		}
	}
	*ret = bits;
	r = 0;
out:
	cfg_list_free(&items);
	return r;
}

int cfg_parse_time(const char *s, unsigned *ret_min)
{
	const char *colon = strchr(s, ':');
	uint64_t h, m;
	if (!colon || colon == s || colon - s > 2 || strlen(colon + 1) != 2)
		return -EINVAL;
	if (parse_digits(s, (size_t)(colon - s), &h) < 0 || parse_digits(colon + 1, 2, &m) < 0)
		return -EINVAL;
	if (h > 23 || m > 59)
		return -EINVAL;
	*ret_min = (unsigned)(h * 60 + m);
	return 0;
}

void cfg_list_free(struct cfg_list *l)
{
	if (l->v)
		for (size_t i = 0; i < l->n; i++)
			free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int list_push(struct cfg_list *l, const char *s, size_t len)
{
	char **v = realloc(l->v, (l->n + 2) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	l->v = v;
	v[l->n] = strndup(s, len);
	if (!v[l->n])
		return -ENOMEM;
	v[++l->n] = NULL;
	return 0;
}

int cfg_parse_list(const char *s, const char *seps, struct cfg_list *ret)
{
	struct cfg_list l = { 0 };
	const char *p = s;
	int r;

	for (;;) {
		size_t len = strcspn(p, seps);
		const char *a = p, *b = p + len;
		while (a < b && is_blank(*a))
			a++;
		while (b > a && is_blank(b[-1]))
			b--;
		if (a == b) {
			r = -EINVAL;
			goto fail;
		}
		r = list_push(&l, a, (size_t)(b - a));
		if (r < 0)
			goto fail;
		if (!p[len])
			break;
		p += len + 1;
	}
	*ret = l;
	return 0;
fail:
	cfg_list_free(&l);
	return r;
}

int cfg_split_argv(const char *s, struct cfg_list *ret)
{
	struct cfg_list l = { 0 };
	const char *p = s;
	int r;

	for (;;) {
		while (is_blank(*p))
			p++;
		if (!*p)
			break;
		size_t len = strcspn(p, " \t");
		r = list_push(&l, p, len);
		if (r < 0) {
			cfg_list_free(&l);
			return r;
		}
		p += len;
	}
	*ret = l;
	return 0;
}

bool cfg_valid_address(const char *s)
{
	const char *at = strchr(s, '@');
	if (!at || at == s || strchr(at + 1, '@') || at - s > 64)
		return false;
	for (const char *p = s; p < at; p++)
		if (*p <= ' ' || *p >= 0x7f || strchr("<>()[]\\,;:\"", *p))
			return false;
	if (s[0] == '.' || at[-1] == '.' || strstr(s, ".."))
		return false;
	return cfg_valid_hostname(at + 1) && !looks_numeric(at + 1);
}

const char *cfg_check_type_str(enum cfg_check_type t)
{
	switch (t) {
	case CHECK_PING: return "ping";
	case CHECK_HTTP: return "http";
	case CHECK_TCP: return "tcp";
	case CHECK_SMTP: return "smtp";
	}
	return "?";
}

const char *cfg_role_str(enum cfg_role r)
{
	switch (r) {
	case ROLE_LINK: return "link";
	case ROLE_BACKUP: return "backup";
	}
	return "?";
}
