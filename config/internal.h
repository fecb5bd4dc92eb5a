/* Shared between the passes of the configuration parser; not for other areas.
 * Pass 1 (parse.c) reads the file with inih into raw sections: each key's text
 * and line. Pass 2 (validate.c) reads every value with its typed reader into
 * struct cfg, then checks keys against each other. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config/config.h"

enum cfg_sec {
	SEC_AGENT, SEC_PING, SEC_CHECK, SEC_ON_DOWN, SEC_ON_UP, SEC_TRANSPORT,
	SEC_MAIL, SEC_HOOK, SEC_MAINT, SEC_LOG, SEC_METRICS, N_SEC
};

enum cfg_key {
	K_AGENT_INTERVAL, K_AGENT_FAILED_CHECKS, K_AGENT_RUNS, K_AGENT_FAILED_RUNS,
	K_AGENT_PASSED_RUNS, K_AGENT_INITIAL_STATE, K_AGENT_STATE_DB,
	K_AGENT_FAST_INTERVAL, K_AGENT_WATCH_LINKS,
	K_PING_COUNT, K_PING_MIN_REPLIES, K_PING_TIMEOUT,
	K_CHECK_TYPE, K_CHECK_TARGET, K_CHECK_TIMEOUT, K_CHECK_SOURCE, K_CHECK_MARK,
	K_CHECK_ROLE, K_CHECK_EXPECT, K_CHECK_PROXY, K_CHECK_COUNT, K_CHECK_MIN_REPLIES,
	K_CHECK_TLS_VERIFY, K_CHECK_CA_FILE,
	K_DOWN_ENABLE, K_DOWN_DISABLE, K_UP_ENABLE, K_UP_DISABLE,
	K_TRANSPORT_DATABASE, K_TRANSPORT_UNIT, K_TRANSPORT_ACTION, K_TRANSPORT_BUS,
	K_TRANSPORT_FLUSH,
	K_MAIL_TO, K_MAIL_FROM, K_MAIL_SERVER, K_MAIL_STARTTLS, K_MAIL_USERNAME,
	K_MAIL_PASSWORD_FILE, K_MAIL_TIMEOUT, K_MAIL_MIN_GAP, K_MAIL_MAX_WAIT,
	K_HOOK_ON_CHANGE, K_HOOK_TIMEOUT,
	K_MAINT_DAYS, K_MAINT_START, K_MAINT_END,
	K_LOG_VERBOSE,
	K_METRICS_TEXTFILE,
	N_KEYS
};

struct cfg_key_def {
	enum cfg_sec sec;
	const char *name;
};
extern const struct cfg_key_def cfg_key_defs[N_KEYS];
extern const char *const cfg_sec_names[N_SEC];

struct cfg_raw {
	char *val;      /* NULL: not written */
	unsigned line;
};

/* One section as written. */
struct cfg_sect {
	enum cfg_sec sec;
	char *name;     /* check and maintenance only */
	unsigned line;  /* of the header */
	struct cfg_raw raw[N_KEYS];
};

struct cfg_msg {
	unsigned line;
	char *text;
};

struct cfg_parser {
	const char *file;
	struct cfg_sect *sects;
	size_t n_sects;
	long cur;               /* index into sects; -1: no section yet; -2: a bad one */
	unsigned line;          /* of the line inih handles now */
	struct cfg_msg *msgs;
	size_t n_msgs;
	bool oom;
};

/* Record "FILE:LINE: message". */
void cfg_err(struct cfg_parser *p, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "[agent]" or "[check \"web\"]". */
void cfg_sect_label(const struct cfg_sect *s, char *buf, size_t n);

/* Pass 1: read INI text from a FILE or a string into p->sects. */
int cfg_parse_ini(struct cfg_parser *p, FILE *f, const char *text);
/* Pass 2: typed values, defaults, then cross-field rules. */
int cfg_build(struct cfg_parser *p, struct cfg *c);
void cfg_parser_done(struct cfg_parser *p);
