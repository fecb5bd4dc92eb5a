#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <systemd/sd-journal.h>

#include "agent/log.h"

static const char *log_ident = "rerouterd";
static bool log_stderr = true;
static bool log_journal;
static bool log_dbg;

void log_setup(const char *ident, bool to_stderr, bool debug)
{
	log_ident = ident;
	log_dbg = debug;
	log_journal = access("/run/systemd/journal/socket", W_OK) == 0;
	/* Without a journal (a terminal, a test) the same lines go to stderr. */
	log_stderr = to_stderr || !log_journal;
}

bool log_debug_enabled(void)
{
	return log_dbg;
}

static const char *prio_word(int prio)
{
	static const char *const w[] = { "emerg", "alert", "crit", "error",
					 "warning", "notice", "info", "debug" };
	return (prio >= 0 && prio <= 7) ? w[prio] : "info";
}

void log_fullv(int prio, int errnum, const struct log_field *fields, size_t n_fields,
	       const char *fmt, va_list ap)
{
	char msg[2048];
	int saved = errno;

	if (prio == LOG_DEBUG && !log_dbg)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (errnum != 0) {
		size_t len = strlen(msg);
		snprintf(msg + len, sizeof msg - len, ": %s", strerror(abs(errnum)));
	}

	if (log_journal) {
		/* MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, ERRNO, then the caller's fields. */
		struct iovec iov[4 + 16];
		char buf[4 + 16][512];
		size_t n = 0;

		snprintf(buf[n], sizeof buf[n], "PRIORITY=%d", prio);
		iov[n].iov_base = buf[n], iov[n].iov_len = strlen(buf[n]), n++;
		snprintf(buf[n], sizeof buf[n], "SYSLOG_IDENTIFIER=%s", log_ident);
		iov[n].iov_base = buf[n], iov[n].iov_len = strlen(buf[n]), n++;
		if (errnum != 0) {
			snprintf(buf[n], sizeof buf[n], "ERRNO=%d", abs(errnum));
			iov[n].iov_base = buf[n], iov[n].iov_len = strlen(buf[n]), n++;
		}
		for (size_t i = 0; i < n_fields && n < 4 + 16 - 1; i++) {
			if (!fields[i].value)
				continue;
			snprintf(buf[n], sizeof buf[n], "%s=%s", fields[i].key, fields[i].value);
			iov[n].iov_base = buf[n], iov[n].iov_len = strlen(buf[n]), n++;
		}
		/* MESSAGE= is built separately: it may be longer than a field buffer. */
		char mbuf[sizeof msg + 8];
		snprintf(mbuf, sizeof mbuf, "MESSAGE=%s", msg);
		iov[n].iov_base = mbuf, iov[n].iov_len = strlen(mbuf), n++;
		if (sd_journal_sendv(iov, (int)n) < 0 && !log_stderr)
			fprintf(stderr, "%s: %s\n", log_ident, msg);
	}
	if (log_stderr) {
		fprintf(stderr, "%s: %s%s%s\n", log_ident,
			prio <= LOG_WARNING ? prio_word(prio) : "",
			prio <= LOG_WARNING ? ": " : "", msg);
	}
	errno = saved;
}

void log_full(int prio, int errnum, const struct log_field *fields, size_t n_fields,
	      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_fullv(prio, errnum, fields, n_fields, fmt, ap);
	va_end(ap);
}
