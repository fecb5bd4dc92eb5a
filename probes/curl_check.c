/* What the http and smtp checks share: an easy handle on the run's curl loop,
 * with the check's deadline, source, mark and proxy applied, and the mapping
 * of curl's result to a typed outcome. curl resolves names on its threaded
 * resolver; CURLOPT_QUICK_EXIT lets a handle whose resolver is stuck go
 * without joining that thread, so a silent DNS server never blocks the loop. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "probes/check.h"

#ifndef RECV_BUFFER
#define RECV_BUFFER 1024
#endif

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct probe_curl *pc = userdata;

	/* The status line and headers are all a check needs: stop at the body. */
	pc->got_body = true;
	return pc->keep_body ? size * nmemb : 0;
}

static int on_sockopt(void *userdata, curl_socket_t fd, curlsocktype purpose)
{
	struct probe_curl *pc = userdata;
	const struct cfg_check *cc = pc->check->cfg;

	if (cc->has_mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &cc->mark, sizeof cc->mark) < 0)
		return CURL_SOCKOPT_ERROR;
	return CURL_SOCKOPT_OK;
}

/* Each address curl connects to (the target's, or the proxy's) is the path
 * the check takes: over a link without carrier, or with no route, the
 * connection is refused here at once rather than left to time out. */
static curl_socket_t on_opensocket(void *userdata, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct probe_curl *pc = userdata;
	struct probe_path path = probe_path_of(pc->check->cfg);

	if (purpose == CURLSOCKTYPE_IPCXN &&
	    probe_route_verdict(probe_run_route(pc->check->run), &path, &a->addr, pc->route_why,
				sizeof pc->route_why) != 0)
		return CURL_SOCKET_BAD;
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* The way out the check names: proxy (or none, whatever the environment
 * says), source, mark, and route.c's verdict on each address. */
static void set_path(struct probe_curl *pc)
{
	const struct cfg_check *cc = pc->check->cfg;
	CURL *e = pc->easy;
	char iface[300];

	if (cc->proxy) {
		curl_easy_setopt(e, CURLOPT_PROXY, cc->proxy);
		/* Nothing from the environment, no_proxy included. */
		curl_easy_setopt(e, CURLOPT_NOPROXY, "");
	} else {
		/* proxy = none: ignore http_proxy, https_proxy, all_proxy, no_proxy. */
		curl_easy_setopt(e, CURLOPT_PROXY, "");
		curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	}
	if (cc->source) {
		snprintf(iface, sizeof iface, "%s!%s", cc->source_is_ifname ? "if" : "host",
			 cc->source);
		curl_easy_setopt(e, CURLOPT_INTERFACE, iface);
	}
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, pc);
	if (cc->has_mark) {
		curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, on_sockopt);
		curl_easy_setopt(e, CURLOPT_SOCKOPTDATA, pc);
	}
}

int probe_curl_new(struct probe_check *c, const char *url, probe_curl_answered_fn answered,
		   struct probe_curl **ret)
{
	const struct cfg_check *cc = c->cfg;
	struct probe_curl *pc;
	uint64_t spent = probe_now_usec() - c->start_usec;
	/* What is left of the budget: smtp comes here after its own EHLO. */
	long ms = (long)((c->budget_usec > spent ? c->budget_usec - spent : 0) / USEC_PER_MSEC);
	int r;

	pc = calloc(1, sizeof *pc);
	if (!pc)
		return -ENOMEM;
	pc->check = c;
	pc->answered = answered;
	r = probe_curl_loop(c, &pc->loop);
	if (r < 0)
		goto fail;
	pc->easy = curl_easy_init();
	if (!pc->easy) {
		r = -ENOMEM;
		goto fail;
	}
	if (ms < 1)
		ms = 1;
	CURL *e = pc->easy;
	/* An option this libcurl lacks only loses a refinement, so the results of
	 * setopt are not checked one by one; the URL is. */
	if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK) {
		r = -EINVAL;
		goto fail;
	}
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075700
	curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
#endif
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ms);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, pc->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, pc);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	/* Verified unless the administrator said tls_verify = no for this check. */
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, cc->tls_no_verify ? 0L : 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, cc->tls_no_verify ? 0L : 2L);
	if (cc->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, cc->ca_file);
	/* Every check tests the path afresh, not a connection a previous one left. */
	curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	/* Nor a TLS session another check of the run left in the loop's shared
	 * cache: each handshake is verified in full. */
	curl_easy_setopt(e, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "rerouter/" PACKAGE_VERSION);
	/* A check reads a status line and headers (curl gathers them on its own)
	 * or SMTP replies (at most 512 octets a line, RFC 5321), never a body: the
	 * default 16 KiB receive buffer per transfer only costs memory in a run
	 * of hundreds of checks. 1 KiB is curl's minimum; header lines longer
	 * than that are gathered by curl in a buffer of their own. */
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)RECV_BUFFER);
	set_path(pc);
	*ret = pc;
	return 0;
fail:
	probe_curl_free(pc);
	return r;
}

static bool resolved(CURL *e)
{
	curl_off_t t = 0;

	/* 0 until the name lookup has finished (or no lookup was needed). */
	return curl_easy_getinfo(e, CURLINFO_NAMELOOKUP_TIME_T, &t) == CURLE_OK && t > 0;
}

/* The host a check names, for messages: tcp/smtp have it, http has a URL. */
static const char *check_host(const struct probe_check *c, char *buf, size_t size)
{
	CURLU *u;
	char *h = NULL;

	if (c->cfg->host)
		return c->cfg->host;
	snprintf(buf, size, "%s", c->cfg->target);
	u = curl_url();
	if (u && curl_url_set(u, CURLUPART_URL, c->cfg->target, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK)
		snprintf(buf, size, "%s", h);
	curl_free(h);
	curl_url_cleanup(u);
	return buf;
}

static const char *why(struct probe_curl *pc, CURLcode res)
{
	size_t n = strlen(pc->errbuf);

	/* Some of curl's texts end in a space ("... in connection to HOST:PORT "). */
	while (n && (pc->errbuf[n - 1] == ' ' || pc->errbuf[n - 1] == '\n'))
		pc->errbuf[--n] = '\0';
	return n ? pc->errbuf : curl_easy_strerror(res);
}

static void on_done(CURL *easy, CURLcode res, void *userdata)
{
	struct probe_curl *pc = userdata;
	struct probe_check *c = pc->check;
	char hbuf[256];
	const char *host = check_host(c, hbuf, sizeof hbuf);
	long status = 0, oserr = 0;
	uint64_t ms = probe_elapsed_ms(c), budget_ms = c->budget_usec / USEC_PER_MSEC;

	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &oserr);
	/* The handle is ours again (curl_loop removed it); stop() must not remove it twice. */
	pc->loop = NULL;

	/* The protocol's own verdict on an answer, if there was one. */
	if (pc->answered(pc, res, status))
		return;

	switch (res) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		/* curl reports a lookup it gave up on at the deadline this way too. */
		if (ms + 50 >= budget_ms)
			probe_finish(c, PROBE_DNS_TIMEOUT, "%s not resolved in %llu ms", host,
				     (unsigned long long)budget_ms);
		else
			probe_finish(c, PROBE_DNS_FAILURE, "%s", why(pc, res));
		break;
	case CURLE_OPERATION_TIMEDOUT:
		if (!resolved(easy))
			probe_finish(c, PROBE_DNS_TIMEOUT, "%s not resolved in %llu ms", host,
				     (unsigned long long)budget_ms);
		else
			probe_finish(c, PROBE_TIMEOUT, "%s", why(pc, res));
		break;
	case CURLE_COULDNT_CONNECT:
		if (pc->route_why[0]) {
			probe_finish(c, PROBE_UNREACHABLE, "%s", pc->route_why);
			break;
		}
		probe_finish(c, oserr ? probe_errno_outcome((int)oserr) : PROBE_UNREACHABLE, "%s",
			     oserr ? strerror((int)oserr) : why(pc, res));
		break;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_USE_SSL_FAILED:
		probe_finish(c, PROBE_TLS_ERROR, "%s", why(pc, res));
		break;
	case CURLE_INTERFACE_FAILED:
	case CURLE_OUT_OF_MEMORY:
	case CURLE_FAILED_INIT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		probe_finish(c, PROBE_ERROR, "%s", why(pc, res));
		break;
	default:
		probe_finish(c, PROBE_PROTOCOL_ERROR, "%s", why(pc, res));
		break;
	}
}

int probe_curl_go(struct probe_curl *pc)
{
	return curl_loop_add(pc->loop, pc->easy, on_done, pc);
}

void probe_curl_free(struct probe_curl *pc)
{
	if (!pc)
		return;
	if (pc->easy) {
		if (pc->loop)
			curl_loop_remove(pc->loop, pc->easy);
		curl_easy_cleanup(pc->easy);
	}
	free(pc);
}

void probe_curl_expire(struct probe_check *c)
{
	struct probe_curl *pc = c->impl;
	char hbuf[256];

	if (pc && pc->easy && !resolved(pc->easy))
		probe_finish(c, PROBE_DNS_TIMEOUT, "%s not resolved in %llu ms",
			     check_host(c, hbuf, sizeof hbuf),
			     (unsigned long long)(c->budget_usec / USEC_PER_MSEC));
}

void probe_curl_stop(struct probe_check *c)
{
	probe_curl_free(c->impl);
}
