/* Alert mail (SPEC section 7): queued persistently in the state database,
 * sent from the event loop with libcurl's multi interface, retried with
 * backoff, delivered once; changes closer than [mail] min_gap merge. */
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
/* Try to send what is due now (also called by the retry timer). */
void alerts_kick(struct alerts *a);
struct alerts *alerts_free(struct alerts *a);

/* Alerts not yet delivered (for rerouterctl status); negative errno on error. */
int alerts_count_pending(sqlite3 *state_db);

/* rerouterd --test-mail: exit code, 0 only when the server accepted it. */
int alerts_test_mail_main(const struct cfg *cfg);
