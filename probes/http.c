/* http check: GET the URL, pass when the status is in expect (200-399 by
 * default). Redirects are not followed: a 3xx is the answer itself, which the
 * default range accepts, since it proves the server and the path to it work;
 * a range without 3xx makes a redirect a failed check. The body is not read. */
#include "config.h"

#include "probes/check.h"

static bool status_expected(const struct cfg_check *cc, long status)
{
	if (cc->n_expect == 0)
		return status >= 200 && status <= 399;
	for (size_t i = 0; i < cc->n_expect; i++)
		if (status >= cc->expect[i].lo && status <= cc->expect[i].hi)
			return true;
	return false;
}

static bool http_answered(struct probe_curl *pc, CURLcode res, long status)
{
	/* A write error after the headers is ours: on_body stops at the body. */
	if (res != CURLE_OK && !(res == CURLE_WRITE_ERROR && pc->got_body))
		return false;
	if (status_expected(pc->check->cfg, status))
		probe_finish(pc->check, PROBE_PASSED, "HTTP %ld", status);
	else
		probe_finish(pc->check, PROBE_BAD_STATUS, "HTTP %ld", status);
	return true;
}

static int http_start(struct probe_check *c)
{
	struct probe_curl *pc;
	int r;

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

const struct probe_ops probe_http_ops = {
	.start = http_start,
	.expire = probe_curl_expire,
	.stop = probe_curl_stop,
};

