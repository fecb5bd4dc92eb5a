/* Alert mail (SPEC section 7): queued persistently in the state database,
 * sent on a worker thread that reports to the event loop (a slow mail server
 * never holds the loop), retried with backoff, delivered once; changes
 * closer than [mail] min_gap merge. */
#pragma once

#include <sqlite3.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config/config.h"

struct alerts;

/* Creates its tables in state_db if missing. */
int alerts_new(sd_event *e, sqlite3 *state_db, const struct cfg *cfg, struct alerts **ret);
void alerts_set_config(struct alerts *a, const struct cfg *cfg);
/* Queue the alert for a recorded change (agent/change.h); idempotent per
 * change id, so a step repeated after a crash queues nothing twice. */
int alerts_enqueue_change(struct alerts *a, int64_t change_id);
/* Queue the note on a change of state to DOWN whose backup gate opened
 * later: a backup path answers and [on_down] was applied (applied: what the
 * connectors step did, or what it waits for). Sent as alerts are (min_gap,
 * retries), once per change. */
int alerts_enqueue_note(struct alerts *a, int64_t change_id, const char *applied);
/* Try to send what is due now (also called by the retry timer). */
void alerts_kick(struct alerts *a);
struct alerts *alerts_free(struct alerts *a);

/* Alerts not yet delivered (for rerouterctl status); negative errno on error. */
int alerts_count_pending(sqlite3 *state_db);

/* rerouterd --test-mail: exit code, 0 only when the server accepted it. */
int alerts_test_mail_main(const struct cfg *cfg);

/* --- Beyond the daemon's needs: the schedule, exposed for tests and tools --- */
#include <stdbool.h>
#include <stddef.h>

#define ALERTS_BACKOFF_FIRST_USEC (30 * 1000000ULL)
#define ALERTS_BACKOFF_CAP_USEC (15 * 60 * 1000000ULL)
/* An alert undelivered this long is logged at error priority (and retried on). */
#define ALERTS_DEADLINE_USEC (24 * 3600 * 1000000ULL)

/* The clock of the queue: CLOCK_REALTIME in usec (persisted times must
 * survive a restart). fn NULL restores the real clock. */
typedef uint64_t (*alerts_clock_fn)(void *userdata);
void alerts_set_clock(struct alerts *a, alerts_clock_fn fn, void *userdata);
/* Retry delays: first, doubling, at most cap (default 30 s and 15 min). */
void alerts_set_backoff(struct alerts *a, uint64_t first_usec, uint64_t cap_usec);
/* The wait after the given number of failed attempts (1 = the first). */
uint64_t alerts_backoff_usec(const struct alerts *a, unsigned attempts);
/* When the next mail may go (UINT64_MAX: nothing pending). */
int alerts_next_due(struct alerts *a, uint64_t *ret_usec);
/* The mail that would go now: every pending alert, merged when more than
 * one (n changes); *ret_upto identifies them for alerts_record_attempt(). */
int alerts_peek(struct alerts *a, char **ret_subject, char **ret_body, size_t *ret_n,
		int64_t *ret_upto);
/* The outcome of an attempt at the mail from alerts_peek(): accepted marks
 * the alerts sent with the server's reply (one statement); otherwise the
 * error is kept and the next attempt backs off. */
int alerts_record_attempt(struct alerts *a, int64_t upto, bool accepted, const char *reply);
/* One change's part of the mail, from changes and change_steps. */
int alerts_compose_change(sqlite3 *db, int64_t change_id, char **ret_state, char **ret_body);
