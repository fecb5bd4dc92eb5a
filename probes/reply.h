/* What a server says, read without trusting it: an HTTP status line and an
 * SMTP reply line. No state, no I/O: tests/fuzz/fuzz_reply.c runs them on
 * anything. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* "HTTP/1.1 200 OK" -> 200; -1 for what is not a status line (100..599). */
long probe_http_status(const char *line);

struct probe_smtp_line {
	int code;          /* 100..599 */
	bool more;         /* "250-...": the reply goes on */
	bool starttls;     /* the line is the STARTTLS keyword of an EHLO reply */
	const char *text;  /* after the code and its separator; "" if none */
};
/* line is NUL-terminated, len its length. 0, or -1 for what is not a reply line. */
int probe_smtp_line(const char *line, size_t len, struct probe_smtp_line *ret);
