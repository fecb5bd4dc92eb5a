/* http check: GET the URL, pass when the status is in expect (200-399 by
 * default). Redirects are not followed: a 3xx is the answer itself, which the
 * default range accepts, since it proves the server and the path to it work;
 * a range without 3xx makes a redirect a failed check. The body is not read.
 * A plain http:// URL without a proxy is asked on a socket of our own
 * (talk.c): the status line and the end of the headers are all the check
 * reads (a response whose headers never end times out). https or a proxy go
 * to libcurl. (The configuration refuses credentials and zones in URLs.) */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/check.h"
#include "probes/reply.h"

enum { HTTP_STATUS, HTTP_HEADERS };

static bool status_expected(const struct cfg_check *cc, long status)
{
	if (cc->n_expect == 0)
		return status >= 200 && status <= 399;
	for (size_t i = 0; i < cc->n_expect; i++)
		if (status >= cc->expect[i].lo && status <= cc->expect[i].hi)
			return true;
	return false;
}

static void judge(struct probe_check *c, long status)
{
	if (status_expected(c->cfg, status))
		probe_finish(c, PROBE_PASSED, "HTTP %ld", status);
	else
		probe_finish(c, PROBE_BAD_STATUS, "HTTP %ld", status);
}

static bool http_answered(struct probe_curl *pc, CURLcode res, long status)
{
	/* A write error after the headers is ours: on_body stops at the body. */
	if (res != CURLE_OK && !(res == CURLE_WRITE_ERROR && pc->got_body))
		return false;
	judge(pc->check, status);
	return true;
}

static const struct probe_ops http_curl_ops = {
	.expire = probe_curl_expire,
	.stop = probe_curl_stop,
};

static int http_curl_start(struct probe_check *c)
{
	struct probe_curl *pc;
	int r;

	c->ops = &http_curl_ops;
	r = probe_curl_new(c, c->cfg->target, http_answered, &pc);
	if (r < 0)
		return r;
	c->impl = pc;
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(pc->easy, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	curl_easy_setopt(pc->easy, CURLOPT_HTTPGET, 1L);
	return probe_curl_go(pc);
}

static int http_line(struct probe_talk *t, char *line, size_t len)
{
	struct probe_check *c = t->check;
	long status;

	if (t->stage == HTTP_HEADERS) {
		/* A response counts once its headers end; a 1xx is followed by the real one. */
		if (len)
			return 0;
		t->stage = HTTP_STATUS;
		t->drop_long = false;
		if (t->code < 200)
			return 0;
		judge(c, t->code);
		return 1;
	}
	status = probe_http_status(line);
	if (status < 0) {
		probe_finish(c, PROBE_PROTOCOL_ERROR, "not an HTTP status line: %.60s", line);
		return 1;
	}
	t->code = (int)status;
	t->stage = HTTP_HEADERS;
	/* Header lines may be long (cookies); they are not read, only passed. */
	t->drop_long = true;
	return 0;
}

static const char *http_waiting_for(const struct probe_talk *t)
{
	return t->stage == HTTP_HEADERS ? "end of the headers" : "status line";
}

static const struct probe_talk_ops http_talk_ops = {
	.line = http_line,
	.waiting_for = http_waiting_for,
};

/* The parts of a plain http:// URL; -EPROTONOSUPPORT for one libcurl must take. */
struct plain_url {
	char *host, *port, *path, *query;
};

static void plain_url_free(struct plain_url *u)
{
	curl_free(u->host);
	curl_free(u->port);
	curl_free(u->path);
	curl_free(u->query);
}

static int plain_url(const char *target, struct plain_url *ret)
{
	CURLU *u = curl_url();
	char *scheme = NULL;
	int r = -EPROTONOSUPPORT;

	memset(ret, 0, sizeof *ret);
	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, target, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK || strcmp(scheme, "http") ||
	    curl_url_get(u, CURLUPART_HOST, &ret->host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &ret->port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &ret->path, 0) != CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_QUERY, &ret->query, 0) != CURLUE_OK)
		ret->query = NULL;
	/* A name that is not plain ASCII needs libcurl's IDN conversion. */
	for (const char *p = ret->host; *p; p++)
		if ((unsigned char)*p >= 0x80)
			goto out;
	r = 0;
out:
	curl_free(scheme);
	curl_url_cleanup(u);
	if (r < 0)
		plain_url_free(ret);
	return r;
}

static int http_talk_start(struct probe_check *c, struct plain_url *u)
{
	struct probe_talk *t;
	char host[300], *req = NULL;
	unsigned long port = strtoul(u->port, NULL, 10);
	int r;

	/* The Host header keeps an IPv6 literal's brackets; the resolver does not. */
	snprintf(host, sizeof host, "%s", u->host[0] == '[' ? u->host + 1 : u->host);
	host[strcspn(host, "]")] = '\0';
	r = probe_talk_new(c, &http_talk_ops, host, &t);
	if (r < 0)
		return r;
	c->impl = t;
	if (asprintf(&req,
		     "GET %s%s%s HTTP/1.1\r\nHost: %s%s%s\r\nUser-Agent: rerouter/" PACKAGE_VERSION
		     "\r\nAccept: */*\r\nConnection: close\r\n\r\n",
		     u->path, u->query ? "?" : "", u->query ? u->query : "", u->host,
		     port == 80 ? "" : ":", port == 80 ? "" : u->port) < 0)
		return -ENOMEM;
	r = probe_talk_send(t, req);
	free(req);
	if (r < 0)
		return r;
	return probe_talk_connect(t, (uint16_t)port);
}

static int http_start(struct probe_check *c)
{
	struct plain_url u;
	int r;

	if (c->cfg->proxy || plain_url(c->cfg->target, &u) < 0)
		return http_curl_start(c);
	r = http_talk_start(c, &u);
	plain_url_free(&u);
	return r;
}

const struct probe_ops probe_http_ops = {
	.start = http_start,
	.expire = probe_talk_expire,
	.stop = probe_talk_stop,
};
