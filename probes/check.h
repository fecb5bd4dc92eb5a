/* Inside probes/: what run.c offers to each check type (icmp.c, http.c,
 * tcp.c, smtp.c) and what they offer back. One struct probe_check per
 * configured check; run.c owns it, arms its deadline and collects its outcome. */
#pragma once

#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "agent/curl_loop.h"
#include "agent/worker.h"
#include "probes/probe.h"

struct probe_check;

struct probe_ops {
	/* Start the check; 0 or a negative errno (run.c then records a local error).
	 * It may call probe_finish() before returning. */
	int (*start)(struct probe_check *c);
	/* The hard deadline passed: call probe_finish() with the outcome that fits
	 * the stage reached (dns timeout or timeout). NULL: plain timeout. */
	void (*expire)(struct probe_check *c);
	/* Release c->impl; called exactly once, after probe_finish() or on cancel. */
	void (*stop)(struct probe_check *c);
};
/* start() may set c->ops to another table whose expire and stop fit the
 * c->impl it chose: http and smtp talk on a socket of their own (talk.c) or
 * hand the check to libcurl (curl_check.c). */

struct probe_check {
	struct probe_run *run;
	const struct cfg_check *cfg;
	struct probe_result *result;
	sd_event *event;
	uint64_t start_usec;    /* CLOCK_MONOTONIC */
	uint64_t budget_usec;   /* what the check may spend, DNS included */
	uint64_t cap_usec;      /* its hard deadline (CLOCK_MONOTONIC), on the run's one timer */
	const struct probe_ops *ops;
	void *impl;
	bool finished;
};

/* icmp.c: ping checks with the same options share one liboping object and
 * worker; start() only enrols a check in the run's list of groups, and the run
 * launches them all once every check has been started. */
struct ping_group;
struct ping_group **probe_run_ping_groups(struct probe_run *run);
void probe_icmp_launch(struct ping_group **pending, sd_event *e);

extern const struct probe_ops probe_icmp_ops, probe_http_ops, probe_tcp_ops, probe_smtp_ops;

/* Record the outcome (the first call wins), stop the check, and let the run
 * report once the last check has finished. */
void probe_finish(struct probe_check *c, enum probe_outcome o, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The same, with the elapsed time measured up to end_usec (CLOCK_MONOTONIC, not
 * later than now): when the check's answer came, if it was known earlier. */
void probe_finish_at(struct probe_check *c, uint64_t end_usec, enum probe_outcome o,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The run's libcurl multi handle on the loop, created on first use. */
int probe_curl_loop(struct probe_check *c, struct curl_loop **ret);
uint64_t probe_now_usec(void);
uint64_t probe_elapsed_ms(const struct probe_check *c);
/* ECONNREFUSED -> refused, ENETUNREACH -> unreachable, ... (positive errno). */
enum probe_outcome probe_errno_outcome(int err);
/* source = an IP address: fill *ss with it (port 0). -EINVAL when it is not one. */
int probe_source_addr(const char *source, struct sockaddr_storage *ss, socklen_t *len);

/* resolve.c: bounded asynchronous name resolution for sockets we open
 * ourselves (tcp). IP literals are answered at once without DNS. The callback
 * gets a getaddrinfo() error code and owns ai (freeaddrinfo). */
struct probe_resolve;
typedef void (*probe_resolve_fn)(int gai_err, struct addrinfo *ai, void *userdata);
int probe_resolve_start(sd_event *e, const char *host, uint16_t port, int family,
			probe_resolve_fn cb, void *userdata, struct probe_resolve **ret);
/* For a literal: 0 and *ret filled without any lookup; -EINVAL otherwise. */
int probe_resolve_numeric(const char *host, uint16_t port, int family, struct addrinfo **ret);
void probe_resolve_cancel(struct probe_resolve *r);

/* curl_check.c: what the http and smtp checks share. */
struct probe_curl;
/* Finish the check and return true when curl's result is an answer the
 * protocol judges (a status); false leaves it to the common error mapping. */
typedef bool (*probe_curl_answered_fn)(struct probe_curl *pc, CURLcode res, long status);
struct probe_curl {
	struct probe_check *check;
	CURL *easy;
	struct curl_loop *loop;   /* NULL once curl has handed the handle back */
	probe_curl_answered_fn answered;
	char errbuf[CURL_ERROR_SIZE];
	char route_why[64];       /* route.c refused the connection: no route or no carrier */
	bool got_body;
	bool keep_body;           /* smtp: the command's answer arrives as "body" */
};
int probe_curl_new(struct probe_check *c, const char *url, probe_curl_answered_fn answered,
		   struct probe_curl **ret);
int probe_curl_go(struct probe_curl *pc);
void probe_curl_free(struct probe_curl *pc);
void probe_curl_expire(struct probe_check *c);
void probe_curl_stop(struct probe_check *c);

/* route.c: does the path a check would take exist, and has its link carrier?
 * (`ip route get` and the link's IFF_LOWER_UP, asked of the kernel.) */
struct probe_path {
	const char *source;     /* an interface or an address; NULL: none */
	bool source_is_ifname;
	bool has_mark;
	uint32_t mark;
};
struct probe_path probe_path_of(const struct cfg_check *cc);
/* The answers of one run, cached; NULL asks afresh (a worker thread may). */
struct probe_route;
struct probe_route *probe_route_new(void);
void probe_route_free(struct probe_route *pr);
/* 0: go on (the path is there with carrier, or the kernel cannot tell).
 * Else a positive errno, why filled: ENETUNREACH or EHOSTUNREACH "no route
 * to host", ENETDOWN "no carrier on eth0" or "eth0 is down". */
int probe_route_verdict(struct probe_route *pr, const struct probe_path *p, const struct sockaddr *dst,
			char *why, size_t size);
/* The run's cache (created on first use; NULL when out of memory). */
struct probe_route *probe_run_route(struct probe_run *run);

/* tcp.c: a non-blocking TCP socket with the check's source and mark applied. */
int probe_tcp_socket(const struct cfg_check *cc, int family, int *ret_fd);
int probe_source_family(const struct cfg_check *cc);
/* A connect as the tcp check makes it (names resolved, addresses raced, the
 * path asked of route.c), for a check that goes on talking: connected gets
 * the socket, and then frees t. Every failure finishes the check. */
struct probe_tcp;
typedef void (*probe_tcp_connected_fn)(void *userdata, int fd);
int probe_tcp_new(struct probe_check *c, const char *host, probe_tcp_connected_fn connected,
		  void *userdata, struct probe_tcp **ret);
/* Store t where the check's stop() finds it first: begin may finish the check. */
int probe_tcp_begin(struct probe_tcp *t, uint16_t port);
/* The deadline, before a connection: dns timeout or timeout. */
void probe_tcp_expire(struct probe_check *c, struct probe_tcp *t);
void probe_tcp_free(struct probe_tcp *t);

/* talk.c: the plain-text dialogue of an http or smtp check on a socket of
 * our own (tcp.c's connect): what it sends is queued, what it receives is
 * cut into lines. libcurl costs some 13 KiB a transfer; this costs one
 * buffer, allocated once connected. */
struct probe_talk;
struct probe_talk_ops {
	/* A line arrived, CRLF removed, NUL-terminated. 0: more; 1: the check
	 * finished or went on elsewhere (t is gone). */
	int (*line)(struct probe_talk *t, char *line, size_t len);
	/* What the check waits for now, for "connected, no %s in N ms". */
	const char *(*waiting_for)(const struct probe_talk *t);
};
struct probe_talk {
	struct probe_check *check;
	const struct probe_talk_ops *ops;
	struct probe_tcp *tcp;    /* until connected */
	int fd;
	sd_event_source *io;
	char *in;                 /* TALK_LINE_MAX octets, once connected */
	size_t in_len;
	char *out;                /* queued, not yet sent */
	size_t out_len, out_off;
	int stage;                /* the protocol's own */
	int code;                 /* http: the status, until the headers end */
	bool starttls;            /* smtp: the EHLO reply offers STARTTLS */
	bool drop_long;           /* a line too long for in is dropped (http headers), not an error */
	bool dropping;            /* in the middle of such a line */
};
int probe_talk_new(struct probe_check *c, const struct probe_talk_ops *ops, const char *host,
		   struct probe_talk **ret);
/* Set c->impl to t first: connect may finish the check. */
int probe_talk_connect(struct probe_talk *t, uint16_t port);
/* Queue text to send; sent as soon as the socket takes it. */
int probe_talk_send(struct probe_talk *t, const char *text);
/* Best effort, now, and not waited for (a QUIT before the check finishes). */
void probe_talk_bye(struct probe_talk *t, const char *text);
void probe_talk_free(struct probe_talk *t);
void probe_talk_expire(struct probe_check *c);
void probe_talk_stop(struct probe_check *c);
