/* The parsed configuration (SPEC section 2). Everything the daemon and
 * rerouterctl know about the site comes from one struct cfg, built by
 * cfg_load() and never modified afterwards: a reload builds a new one and
 * swaps pointers only when it validated. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_DEFAULT_PATH SYSCONFDIR "/rerouter/rerouter.conf"

#define USEC_PER_MSEC 1000ULL
#define USEC_PER_SEC 1000000ULL

enum cfg_check_type { CHECK_PING, CHECK_HTTP, CHECK_TCP, CHECK_SMTP };
enum cfg_role { ROLE_LINK, ROLE_BACKUP };
enum cfg_initial_state { INITIAL_LAST, INITIAL_UP, INITIAL_DOWN };
enum cfg_transport_action { TRANSPORT_RESTART, TRANSPORT_RELOAD, TRANSPORT_NONE };
enum cfg_bus { BUS_SYSTEM, BUS_USER };
enum cfg_starttls { STARTTLS_AUTO, STARTTLS_ALWAYS, STARTTLS_NEVER };

/* A NULL-terminated vector with its length. */
struct cfg_list {
	char **v;
	size_t n;
};

struct cfg_range {
	int lo, hi;
};

#define CFG_MAX_EXPECT 16

struct cfg_check {
	char *name;
	unsigned line;             /* of the [check "name"] header */
	enum cfg_check_type type;
	enum cfg_role role;
	char *target;              /* as written: host, URL or host:port */
	char *host;                /* ping/tcp/smtp: host without brackets or port; http: NULL */
	uint16_t port;             /* tcp/smtp */
	uint64_t timeout_usec;     /* http/tcp/smtp: the whole check, DNS included;
	                              ping: wait for each reply ([ping] timeout unless set) */
	unsigned ping_count;       /* ping: [ping] count unless set in the check */
	unsigned ping_min_replies; /* ping: [ping] min_replies unless set in the check */
	char *source;              /* NULL, an IP address, or an interface name */
	bool source_is_ifname;
	bool has_mark;
	uint32_t mark;
	struct cfg_range expect[CFG_MAX_EXPECT]; /* http: accepted status codes */
	size_t n_expect;
	char *proxy;               /* http: NULL = none (environment ignored) */
	bool tls_no_verify;        /* http/smtp: tls_verify = no (false, as zeroed: verify) */
	char *ca_file;             /* http/smtp: NULL = the system's CA bundle */
};

/* Days: bit 0 = Monday ... bit 6 = Sunday (tm_wday is Sunday = 0; see cfg_day_bit). */
struct cfg_window {
	char *name;
	unsigned line;
	uint8_t days;
	unsigned start_min;        /* minutes after local midnight */
	unsigned end_min;          /* < start_min: the window crosses midnight */
};

struct cfg_toggle {
	bool present;              /* the section was written */
	struct cfg_list enable, disable;
	unsigned line;
};

struct cfg {
	char *path;

	struct {
		uint64_t interval_usec;
		/* While the window holds a run that disagrees with the state;
		 * == interval_usec: off. Always <= interval_usec. */
		uint64_t fast_interval_usec;
		bool watch_links;
		unsigned failed_checks, runs, failed_runs, passed_runs;
		enum cfg_initial_state initial_state;
		char *state_db;
	} agent;

	struct {
		unsigned count, min_replies;
		uint64_t timeout_usec;
	} ping;

	struct cfg_check *checks;
	size_t n_checks;
	size_t n_link_checks;

	struct cfg_toggle on_down, on_up;

	struct {
		char *database;
		char *unit;
		enum cfg_transport_action action;
		enum cfg_bus bus;
		struct cfg_list flush;    /* argv split on blanks, no shell; n == 0: none */
	} transport;

	struct {
		bool present;             /* no [mail] section: no mail is sent */
		struct cfg_list to;
		char *from;
		char *server;             /* smtp://host[:port] or smtps://... */
		enum cfg_starttls starttls;
		char *username;           /* NULL: no AUTH */
		char *password_file;      /* NULL: none; mode checked at load */
		uint64_t timeout_usec;
		uint64_t min_gap_usec;
		uint64_t max_wait_usec;   /* the alert waits for steps 1-3 at most this */
	} mail;

	struct {
		bool present;             /* no [hook] or empty on_change: no hook */
		char *on_change;          /* a program path, executed directly */
		uint64_t timeout_usec;
	} hook;

	struct cfg_window *windows;
	size_t n_windows;

	struct {
		bool verbose;
	} log;

	struct {
		char *textfile;           /* NULL: no metrics file */
	} metrics;
};

/* Errors are collected, never printed by the parser: "FILE:LINE: message". */
struct cfg_errors {
	char **v;
	size_t n;
};

/* Parse and validate a file. On success *ret holds the configuration and 0 is
 * returned; otherwise -EINVAL (or -errno when the file cannot be read), *ret
 * is NULL and every problem found is in errs. */
int cfg_load(const char *path, struct cfg **ret, struct cfg_errors *errs);
/* The same for text held in memory; name stands for the file in messages. */
int cfg_load_string(const char *name, const char *text, struct cfg **ret, struct cfg_errors *errs);
/* cfg_load() for the programs: print every error to stderr. Returns 0 with
 * *ret set, or -EINVAL/-errno after printing why. */
int cfg_load_print(const char *path, struct cfg **ret);
void cfg_free(struct cfg *c);
void cfg_errors_clear(struct cfg_errors *errs);

/* Readers shared with the rest of the program (tests use them too). Each
 * returns 0 or -EINVAL. */
int cfg_parse_duration(const char *s, uint64_t *ret_usec);
int cfg_parse_bool(const char *s, bool *ret);
int cfg_parse_hostport(const char *s, char **ret_host, uint16_t *ret_port);

/* 1 when the window covers this local wall time (weekday: tm_wday, 0 = Sunday). */
static inline uint8_t cfg_day_bit(int tm_wday)
{
	return (uint8_t)(1u << ((tm_wday + 6) % 7));
}

const char *cfg_check_type_str(enum cfg_check_type t);
const char *cfg_role_str(enum cfg_role r);
