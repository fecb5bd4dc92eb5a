/* One mail message and its SMTP transfer: RFC 5322 composition (CRLF, Date,
 * Message-ID, MIME text/plain UTF-8) and a libcurl easy handle set up from
 * [mail], performed on a worker thread (agent/worker.h): libcurl's SMTP
 * blocks for the reply to the end of the data even under the multi
 * interface, and a slow server must not stall the loop. No state, no queue:
 * see alert.c. */
#pragma once

#include <curl/curl.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config/config.h"

/* The full message, headers and body, every line ending in CRLF. body may use
 * bare LF; it is converted. now_usec: CLOCK_REALTIME, for Date and Message-ID. */
int mail_compose(const char *hostname, const char *from, const struct cfg_list *to,
		 const char *subject, const char *body, uint64_t now_usec, char **ret);

/* RFC 5322 date-time ("Sat, 21 Nov 2026 05:32:50 +0000"), local zone. */
void mail_format_date(uint64_t realtime_usec, char *buf, size_t size);

/* This machine's name for subjects, Message-ID and EHLO (never NULL). */
const char *mail_hostname(void);

struct worker;

/* Once started, the thread uses only this, and nothing the caller owns:
 * curl keeps its own copies of the URL, sender and credentials. */
struct mail_xfer {
	CURL *easy;
	CURLcode result;
	struct curl_slist *rcpt;
	char *message;
	size_t len, pos;
	char errbuf[CURL_ERROR_SIZE];
	char reply[256];           /* the last line the server sent */
	char refusal[256];         /* the last 4xx/5xx line: why it failed */
	/* The loop's side. */
	struct worker *worker;
	void (*done)(struct mail_xfer *x, void *userdata);
	void *userdata;
};

/* Sets up a transfer of message (taken over: freed with the transfer) to
 * the [mail] recipients. The password is read from password_file now, handed
 * to curl and wiped. On error, errmsg says why (e.g. the password file). */
int mail_xfer_new(const struct cfg *cfg, char *message, struct mail_xfer **ret,
		  char *errmsg, size_t errsize);
struct mail_xfer *mail_xfer_free(struct mail_xfer *x);

/* Stack for the transfer's thread. Measured peak: 16 KiB for STARTTLS with
 * certificate verification (curl 7.88, OpenSSL 3; the resolver has a thread
 * of its own). Other TLS or auth paths may need more; untouched stack costs
 * only address space. */
#define MAIL_XFER_STACK (1024 * 1024)

/* Perform the transfer on a thread of its own (bounded by [mail] timeout),
 * then done(x, userdata) on the loop with x->result set. From here on x
 * belongs to the transfer: it is freed after done returns, or by the thread
 * after mail_xfer_abandon(). When mail_xfer_start() fails, x stays with the
 * caller. */
int mail_xfer_start(sd_event *e, struct mail_xfer *x,
		    void (*done)(struct mail_xfer *x, void *userdata), void *userdata);
/* No callback will come; the thread ends within the timeout and frees x. */
void mail_xfer_abandon(struct mail_xfer *x);

/* After the transfer ended: a line for people, e.g. "250 2.0.0 Ok: queued"
 * or "Login denied (535 5.7.8 Error: authentication failed)". */
void mail_xfer_describe(struct mail_xfer *x, CURLcode result, char *buf, size_t size);
