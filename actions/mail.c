#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "actions/mail.h"
#include "agent/strbuf.h"
#include "agent/worker.h"

void mail_format_date(uint64_t realtime_usec, char *buf, size_t size)
{
	/* Names spelled out: strftime's %a/%b follow the locale, RFC 5322 does not. */
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t t = (time_t)(realtime_usec / 1000000);
	struct tm tm;
	char zone[8];

	localtime_r(&t, &tm);
	strftime(zone, sizeof zone, "%z", &tm);
	snprintf(buf, size, "%s, %d %s %04d %02d:%02d:%02d %s", days[tm.tm_wday % 7], tm.tm_mday,
		 months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, zone);
}

const char *mail_hostname(void)
{
	static char name[256];

	if (!name[0] && (gethostname(name, sizeof name - 1) < 0 || !name[0]))
		snprintf(name, sizeof name, "localhost");
	return name;
}

/* Header values come from the configuration and the hostname: a CR or LF in
 * them would start a new header, so they are replaced. */
static void sb_add_header(struct strbuf *b, const char *name, const char *value)
{
	strbuf_add(b, name);
	strbuf_add(b, ": ");
	for (const char *p = value; *p; p++)
		strbuf_addn(b, (*p == '\r' || *p == '\n') ? " " : p, 1);
	strbuf_add(b, "\r\n");
}

int mail_compose(const char *hostname, const char *from, const struct cfg_list *to,
		 const char *subject, const char *body, uint64_t now_usec, char **ret)
{
	struct strbuf b = { 0 };
	char date[64], msgid[320];
	uint64_t rnd = 0;

	mail_format_date(now_usec, date, sizeof date);
	if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != sizeof rnd)
		rnd ^= (uint64_t)getpid() << 32 ^ (uint64_t)clock();
	snprintf(msgid, sizeof msgid, "<%llx.%llx.%x.rerouter@%s>", (unsigned long long)now_usec,
		 (unsigned long long)rnd, (unsigned)getpid(), hostname);

	sb_add_header(&b, "Date", date);
	sb_add_header(&b, "Message-ID", msgid);
	sb_add_header(&b, "From", from);
	strbuf_add(&b, "To: ");
	for (size_t i = 0; i < to->n; i++) {
		if (i)
			strbuf_add(&b, ",\r\n ");
		for (const char *p = to->v[i]; *p; p++)
			strbuf_addn(&b, (*p == '\r' || *p == '\n') ? " " : p, 1);
	}
	strbuf_add(&b, "\r\n");
	sb_add_header(&b, "Subject", subject);
	sb_add_header(&b, "MIME-Version", "1.0");
	sb_add_header(&b, "Content-Type", "text/plain; charset=UTF-8");
	sb_add_header(&b, "Content-Transfer-Encoding", "8bit");
	sb_add_header(&b, "Auto-Submitted", "auto-generated");
	strbuf_add(&b, "\r\n");
	/* Every line ends in CRLF; a bare CR is dropped. Leading dots are left
	 * alone: curl dot-stuffs the DATA stream itself. */
	for (const char *p = body; *p; p++) {
		if (*p == '\r')
			continue;
		if (*p == '\n')
			strbuf_add(&b, "\r\n");
		else
			strbuf_addn(&b, p, 1);
	}
	if (b.len < 2 || memcmp(b.s + b.len - 2, "\r\n", 2) != 0)
		strbuf_add(&b, "\r\n");
	return strbuf_take(&b, ret);
}

/* The envelope wants the bare address: "Admin <admin@example.org>" and
 * "admin@example.org" both give "<admin@example.org>". */
static void envelope_addr(const char *s, char *buf, size_t size)
{
	const char *lt = s ? strrchr(s, '<') : NULL;
	const char *gt = lt ? strchr(lt, '>') : NULL;

	if (lt && gt)
		snprintf(buf, size, "%.*s", (int)(gt - lt + 1), lt);
	else
		snprintf(buf, size, "<%s>", s ? s : "");
}

static size_t read_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct mail_xfer *x = userdata;
	size_t n = size * nitems;

	if (n > x->len - x->pos)
		n = x->len - x->pos;
	memcpy(buf, x->message + x->pos, n);
	x->pos += n;
	return n;
}

/* Keeps the last line the server sent: the reply to the end of DATA on
 * success, the refusal otherwise. Only incoming lines: what we send carries
 * the password. */
static int debug_cb(CURL *easy, curl_infotype type, char *data, size_t size, void *userdata)
{
	struct mail_xfer *x = userdata;

	if (type != CURLINFO_HEADER_IN)
		return 0;
	while (size > 0 && (data[size - 1] == '\n' || data[size - 1] == '\r'))
		size--;
	if (size >= sizeof x->reply)
		size = sizeof x->reply - 1;
	memcpy(x->reply, data, size);
	x->reply[size] = '\0';
	/* After a refusal curl says QUIT; the refusal is what people need. */
	if (data[0] == '4' || data[0] == '5')
		memcpy(x->refusal, x->reply, size + 1);
	return 0;
}

static int read_password(const char *path, char *buf, size_t size, char *errmsg, size_t errsize)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0) {
		snprintf(errmsg, errsize, "cannot open password_file %s: %s", path, strerror(errno));
		return -errno;
	}
	n = read(fd, buf, size - 1);
	int saved = errno;
	close(fd);
	if (n < 0) {
		snprintf(errmsg, errsize, "cannot read password_file %s: %s", path, strerror(saved));
		return -saved;
	}
	buf[n] = '\0';
	/* The first line is the password; the file usually ends in a newline. */
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

/* The URL's path is what curl presents in EHLO; without one it says
 * "localhost", which some servers refuse. */
static void server_url(const char *server, char *url, size_t size)
{
	const char *rest = strstr(server, "://");

	if (rest && !strchr(rest + 3, '/'))
		snprintf(url, size, "%s/%s", server, mail_hostname());
	else
		snprintf(url, size, "%s", server);
}

/* Everything but the credentials; 0 or -EINVAL. */
static int set_options(struct mail_xfer *x, const struct cfg *cfg, const char *url, const char *from)
{
	/* With a password to send, "auto" means TLS or nothing: a stripped
	 * STARTTLS must not make curl send AUTH in clear. */
	long use_ssl = cfg->mail.starttls == STARTTLS_ALWAYS ? (long)CURLUSESSL_ALL
		     : cfg->mail.starttls == STARTTLS_NEVER ? (long)CURLUSESSL_NONE
		     : cfg->mail.username                   ? (long)CURLUSESSL_ALL
							    : (long)CURLUSESSL_TRY;
	long timeout_ms = (long)(cfg->mail.timeout_usec / 1000);
	CURL *e = x->easy;

	if (timeout_ms <= 0)
		timeout_ms = 30000;
	if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps") != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_MAIL_FROM, from) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, x->rcpt) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_READDATA, x) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->len) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_USE_SSL, use_ssl) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, debug_cb) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_DEBUGDATA, x) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L) != CURLE_OK)
		return -EINVAL;
	return 0;
}

/* SMTP AUTH, when a username is set; the password is wiped at once. */
static int set_credentials(struct mail_xfer *x, const struct cfg *cfg, char *errmsg, size_t errsize)
{
	char password[1024] = "";
	int r;

	if (!cfg->mail.username || !cfg->mail.username[0])
		return 0;
	if (cfg->mail.password_file && cfg->mail.password_file[0] &&
	    (r = read_password(cfg->mail.password_file, password, sizeof password, errmsg, errsize)) < 0)
		return r;
	/* curl keeps its own copy. */
	CURLcode c1 = curl_easy_setopt(x->easy, CURLOPT_USERNAME, cfg->mail.username);
	CURLcode c2 = curl_easy_setopt(x->easy, CURLOPT_PASSWORD, password);
	explicit_bzero(password, sizeof password);
	if (c1 != CURLE_OK || c2 != CURLE_OK) {
		snprintf(errmsg, errsize, "libcurl refused the SMTP credentials");
		return -EINVAL;
	}
	return 0;
}

int mail_xfer_new(const struct cfg *cfg, char *message, struct mail_xfer **ret,
		  char *errmsg, size_t errsize)
{
	const char *server = cfg->mail.server ? cfg->mail.server : "smtp://localhost:25";
	struct mail_xfer *x;
	char from[512], url[1024];
	int r = -ENOMEM;

	errmsg[0] = '\0';
	x = calloc(1, sizeof *x);
	if (!x) {
		free(message);
		snprintf(errmsg, errsize, "out of memory");
		return -ENOMEM;
	}
	x->message = message;
	x->len = strlen(message);
	x->easy = curl_easy_init();
	if (!x->easy)
		goto fail;
	for (size_t i = 0; i < cfg->mail.to.n; i++) {
		char rcpt[512];
		envelope_addr(cfg->mail.to.v[i], rcpt, sizeof rcpt);
		struct curl_slist *l = curl_slist_append(x->rcpt, rcpt);
		if (!l)
			goto fail;
		x->rcpt = l;
	}
	envelope_addr(cfg->mail.from, from, sizeof from);
	server_url(server, url, sizeof url);
	if ((r = set_options(x, cfg, url, from)) < 0) {
		snprintf(errmsg, errsize, "libcurl refused an SMTP option (server %s)", server);
		goto fail;
	}
	if ((r = set_credentials(x, cfg, errmsg, errsize)) < 0)
		goto fail;
	*ret = x;
	return 0;
fail:
	if (!errmsg[0])
		snprintf(errmsg, errsize, "out of memory");
	mail_xfer_free(x);
	return r;
}

struct mail_xfer *mail_xfer_free(struct mail_xfer *x)
{
	if (!x)
		return NULL;
	if (x->easy)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->rcpt);
	free(x->message);
	free(x);
	return NULL;
}

void mail_xfer_describe(struct mail_xfer *x, CURLcode result, char *buf, size_t size)
{
	long code = 0;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
	if (result == CURLE_OK) {
		if (x->reply[0])
			snprintf(buf, size, "%s", x->reply);
		else
			snprintf(buf, size, "%ld", code);
		return;
	}
	const char *why = x->errbuf[0] ? x->errbuf : curl_easy_strerror(result);
	if (x->refusal[0])
		snprintf(buf, size, "%s (server's reply: %s)", why, x->refusal);
	else if (x->reply[0])
		snprintf(buf, size, "%s (server's last reply: %s)", why, x->reply);
	else if (code)
		snprintf(buf, size, "%s (server's last reply code: %ld)", why, code);
	else
		snprintf(buf, size, "%s", why);
}

/* OpenSSL keeps per-thread state (the thread's DRBGs, its error queue) that
 * it frees when the thread exits. The loop hears of the transfer's end before
 * this detached thread has exited, so a process that exits right after (the
 * daemon stopping, a driver done) could see it freed by nobody: a leak
 * report under LeakSanitizer now and then. Free it here, before the end is
 * signalled. Looked up at run time: libcrypto is libcurl's, not ours (and
 * absent with another TLS backend, where there is nothing to do). */
static void tls_thread_stop(void)
{
	void (*stop)(void);

	*(void **)&stop = dlsym(RTLD_DEFAULT, "OPENSSL_thread_stop");
	if (stop)
		stop();
}

static void xfer_work(void *arg)
{
	struct mail_xfer *x = arg;

	x->result = curl_easy_perform(x->easy);
	tls_thread_stop();
}

static void xfer_done(void *arg)
{
	struct mail_xfer *x = arg;

	x->worker = NULL;
	x->done(x, x->userdata);
}

static void xfer_free(void *arg)
{
	mail_xfer_free(arg);
}

int mail_xfer_start(sd_event *e, struct mail_xfer *x,
		    void (*done)(struct mail_xfer *x, void *userdata), void *userdata)
{
	x->done = done;
	x->userdata = userdata;
	x->result = CURLE_FAILED_INIT;
	return worker_start(e, MAIL_XFER_STACK, xfer_work, xfer_done, xfer_free, x, &x->worker);
}

void mail_xfer_abandon(struct mail_xfer *x)
{
	/* x may be freed by the thread as soon as the loop lets go. */
	if (x)
		worker_abandon(x->worker);
}
