/* libcurl's multi interface driven by the daemon's sd-event loop (the pattern
 * of systemd's src/shared/curl-util.c): curl's sockets become io sources and
 * its one timeout becomes one re-armed monotonic timer, so HTTP checks, SMTP
 * checks and alert mail all run on the loop without blocking it. */
#pragma once

#include <curl/curl.h>
#include <systemd/sd-event.h>

struct curl_loop;

/* Called once per transfer when it ends; the easy handle is already removed
 * from the multi handle and belongs to the caller again. */
typedef void (*curl_loop_done_fn)(CURL *easy, CURLcode result, void *userdata);

int curl_loop_new(sd_event *e, struct curl_loop **ret);
/* curl_global_init(), once, before any thread uses libcurl (curl_loop_new()
 * does it too); 0 or -EIO. */
int curl_loop_global_init(void);
/* Transfers still running are removed without their callbacks. */
struct curl_loop *curl_loop_free(struct curl_loop *cl);
/* Start a transfer. Uses CURLOPT_PRIVATE of the easy handle. */
int curl_loop_add(struct curl_loop *cl, CURL *easy, curl_loop_done_fn done, void *userdata);
/* Abandon a transfer: no callback follows. */
void curl_loop_remove(struct curl_loop *cl, CURL *easy);
