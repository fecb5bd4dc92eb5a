/* smtp check: connect, read the 220 greeting, EHLO (250), one NOOP, QUIT.
 * libcurl does the dialogue on the run's curl loop: an smtp:// URL with a
 * custom command and no MAIL FROM/RCPT TO makes it greet, EHLO, send the
 * command and quit. STARTTLS is used when the server offers it (verified like
 * any TLS); a server that does not offer it is still fine. curl falls back to
 * HELO when EHLO is refused: such a relay still answers and so still passes.
 * A 4xx/5xx greeting or answer is a bad status; silence times out. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "probes/check.h"

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

static int smtp_start(struct probe_check *c)
{
	const struct cfg_check *cc = c->cfg;
	struct probe_curl *pc;
	char url[512], helo[256];
	int r;

	if (!cc->host)
		return -EINVAL;
	/* The EHLO name is the URL's path; the host's own name is what a relay
	 * expects to see. */
	if (gethostname(helo, sizeof helo) < 0 || !helo[0] || strpbrk(helo, "/?#% "))
		snprintf(helo, sizeof helo, "localhost");
	helo[sizeof helo - 1] = '\0';
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

const struct probe_ops probe_smtp_ops = {
	.start = smtp_start,
	.expire = probe_curl_expire,
	.stop = probe_curl_stop,
};
