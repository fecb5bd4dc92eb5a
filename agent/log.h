/* The one logging API: the journal with structured fields when there is one,
 * stderr otherwise (or as well, with -v). Never loses errno: the _errno forms
 * append strerror() of the (positive or negative) error number they are given. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <syslog.h>

struct log_field {
	const char *key;   /* e.g. "REROUTER_STATE" */
	const char *value; /* NULL: the field is left out */
};

/* ident: SYSLOG_IDENTIFIER. to_stderr: also write every line to stderr.
 * debug: let LOG_DEBUG through. Without a journal socket lines go to stderr. */
void log_setup(const char *ident, bool to_stderr, bool debug);
bool log_debug_enabled(void);

void log_full(int prio, int errnum, const struct log_field *fields, size_t n_fields,
	      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void log_fullv(int prio, int errnum, const struct log_field *fields, size_t n_fields,
	       const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

#define log_fields(prio, f, ...) log_full((prio), 0, (f), sizeof(f) / sizeof((f)[0]), __VA_ARGS__)
#define log_debug(...) log_full(LOG_DEBUG, 0, NULL, 0, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, 0, NULL, 0, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, 0, NULL, 0, __VA_ARGS__)
#define log_warnx(...) log_full(LOG_WARNING, 0, NULL, 0, __VA_ARGS__)
#define log_warn_errno(err, ...) log_full(LOG_WARNING, (err), NULL, 0, __VA_ARGS__)
#define log_errx(...) log_full(LOG_ERR, 0, NULL, 0, __VA_ARGS__)
#define log_err_errno(err, ...) log_full(LOG_ERR, (err), NULL, 0, __VA_ARGS__)
