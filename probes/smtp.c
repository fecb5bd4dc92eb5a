/* smtp check: connect, read the 220 greeting, EHLO (250), one NOOP, QUIT.
 * We talk on a socket of our own (talk.c). EHLO refused (5xx) falls back to
 * HELO: such a relay still answers and so still passes. A 4xx/5xx greeting
 * or answer is a bad status; silence times out.
 * STARTTLS is used when the server offers it (verified like any TLS): then
 * we say QUIT and libcurl runs the whole dialogue again with STARTTLS on its
 * own connection (libcurl cannot take over a connected socket: curl #10626).
 * libcurl does it with an smtp:// URL, a custom command and no MAIL FROM/RCPT
 * TO: it greets, EHLOs, sends the command and quits. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "probes/check.h"
#include "probes/reply.h"

enum { SMTP_GREETING, SMTP_EHLO, SMTP_HELO, SMTP_NOOP, SMTP_NOOP_AFTER_HELO };

/* The name a relay expects in EHLO: the host's own. */
static void helo_name(char *buf, size_t size)
{
	if (gethostname(buf, size) < 0 || !buf[0] || strpbrk(buf, "/?#% "))
		snprintf(buf, size, "localhost");
	buf[size - 1] = '\0';
}

static bool smtp_answered(struct probe_curl *pc, CURLcode res, long status)
{
	if (res == CURLE_OK) {
		probe_finish(pc->check, PROBE_PASSED, "SMTP %ld after EHLO", status ? status : 250);
		return true;
	}
	/* curl stops at the first answer it does not like and keeps its code. */
	if (status >= 400 && res != CURLE_OPERATION_TIMEDOUT) {
		probe_finish(pc->check, PROBE_BAD_STATUS, "SMTP %ld: %s", status,
			     pc->errbuf[0] ? pc->errbuf : curl_easy_strerror(res));
		return true;
	}
	return false;
}

static const struct probe_ops smtp_curl_ops = {
	.expire = probe_curl_expire,
	.stop = probe_curl_stop,
};

static int smtp_curl_start(struct probe_check *c)
{
	const struct cfg_check *cc = c->cfg;
	struct probe_curl *pc;
	char url[512], helo[256];
	int r;

	c->ops = &smtp_curl_ops;
	/* The EHLO name is the URL's path. */
	helo_name(helo, sizeof helo);
	snprintf(url, sizeof url, strchr(cc->host, ':') ? "smtp://[%s]:%u/%s" : "smtp://%s:%u/%s",
		 cc->host, cc->port, helo);
	r = probe_curl_new(c, url, smtp_answered, &pc);
	if (r < 0)
		return r;
	c->impl = pc;
	pc->keep_body = true;
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(pc->easy, CURLOPT_PROTOCOLS_STR, "smtp");
#endif
	curl_easy_setopt(pc->easy, CURLOPT_CUSTOMREQUEST, "NOOP");
	curl_easy_setopt(pc->easy, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
	return probe_curl_go(pc);
}

/* Our QUIT, then libcurl from the start, with STARTTLS. */
static int hand_to_curl(struct probe_talk *t)
{
	struct probe_check *c = t->check;
	int r;

	probe_talk_bye(t, "QUIT\r\n");
	probe_talk_free(t);
	c->impl = NULL;
	r = smtp_curl_start(c);
	if (r < 0)
		probe_finish(c, PROBE_ERROR, "cannot start TLS: %s", strerror(-r));
	return 1;
}

/* Send a command (its argument, if any) and wait in stage for the reply. */
static int say(struct probe_talk *t, int stage, const char *verb, const char *arg)
{
	char line[300];
	int r;

	snprintf(line, sizeof line, "%s%s%s\r\n", verb, arg ? " " : "", arg ? arg : "");
	r = probe_talk_send(t, line);
	if (r < 0) {
		probe_finish(t->check, PROBE_ERROR, "%s", strerror(-r));
		return 1;
	}
	t->stage = stage;
	return 0;
}

/* EHLO and HELO name the host. */
static int greet(struct probe_talk *t, int stage, const char *verb)
{
	char helo[256];

	helo_name(helo, sizeof helo);
	return say(t, stage, verb, helo);
}

/* The last line of a reply, code its number, text what follows it. */
static int smtp_reply(struct probe_talk *t, int code, const char *text)
{
	struct probe_check *c = t->check;

	switch (t->stage) {
	case SMTP_GREETING:
		if (code == 220)
			return greet(t, SMTP_EHLO, "EHLO");
		break;
	case SMTP_EHLO:
		if (code / 100 == 2)
			return t->starttls ? hand_to_curl(t) : say(t, SMTP_NOOP, "NOOP", NULL);
		if (code / 100 == 5)
			return greet(t, SMTP_HELO, "HELO");
		break;
	case SMTP_HELO:
		if (code / 100 == 2)
			return say(t, SMTP_NOOP_AFTER_HELO, "NOOP", NULL);
		break;
	default:
		if (code / 100 == 2) {
			probe_talk_bye(t, "QUIT\r\n");
			probe_finish(c, PROBE_PASSED, "SMTP %d after %s", code,
				     t->stage == SMTP_NOOP ? "EHLO" : "HELO");
			return 1;
		}
		break;
	}
	probe_finish(c, code >= 400 ? PROBE_BAD_STATUS : PROBE_PROTOCOL_ERROR, "SMTP %d: %.80s",
		     code, text);
	return 1;
}

static int smtp_line(struct probe_talk *t, char *line, size_t len)
{
	struct probe_smtp_line l;

	if (probe_smtp_line(line, len, &l) < 0) {
		probe_finish(t->check, PROBE_PROTOCOL_ERROR, "not an SMTP reply: %.60s", line);
		return 1;
	}
	if (t->stage == SMTP_EHLO && l.starttls)
		t->starttls = true;
	if (l.more)
		return 0;
	return smtp_reply(t, l.code, l.text);
}

static const char *smtp_waiting_for(const struct probe_talk *t)
{
	switch (t->stage) {
	case SMTP_GREETING: return "greeting";
	case SMTP_EHLO: return "EHLO reply";
	case SMTP_HELO: return "HELO reply";
	default: return "NOOP reply";
	}
}

static const struct probe_talk_ops smtp_talk_ops = {
	.line = smtp_line,
	.waiting_for = smtp_waiting_for,
};

static int smtp_start(struct probe_check *c)
{
	struct probe_talk *t;
	int r;

	if (!c->cfg->host)
		return -EINVAL;
	r = probe_talk_new(c, &smtp_talk_ops, c->cfg->host, &t);
	if (r < 0)
		return r;
	c->impl = t;
	return probe_talk_connect(t, c->cfg->port);
}

const struct probe_ops probe_smtp_ops = {
	.start = smtp_start,
	.expire = probe_talk_expire,
	.stop = probe_talk_stop,
};
