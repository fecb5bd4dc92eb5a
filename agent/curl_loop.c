#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "agent/curl_loop.h"
#include "agent/log.h"

struct curl_xfer {
	struct curl_xfer *prev, *next;
	CURL *easy;
	curl_loop_done_fn done;
	void *userdata;
};

struct curl_loop {
	sd_event *event;
	CURLM *multi;
	/* The TLS session cache, shared by the loop's transfers: without it each
	 * easy handle allocates one of its own (about 1 KiB) even for plain
	 * HTTP. Checks turn session reuse off (probe_curl_new). */
	CURLSH *share;
	sd_event_source *timer;
	struct curl_xfer *xfers; /* so that free() can detach what is still running */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_global(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void xfer_unlink(struct curl_loop *cl, struct curl_xfer *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		cl->xfers = x->next;
	if (x->next)
		x->next->prev = x->prev;
}

static void check_done(struct curl_loop *cl)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(cl->multi, &left))) {
		struct curl_xfer *x = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *easy = msg->easy_handle;
		CURLcode result = msg->data.result;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
		curl_multi_remove_handle(cl->multi, easy);
		if (!x)
			continue;
		curl_easy_setopt(easy, CURLOPT_SHARE, NULL);
		xfer_unlink(cl, x);
		curl_loop_done_fn done = x->done;
		void *ud = x->userdata;
		free(x);
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		done(easy, result, ud);
	}
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct curl_loop *cl = userdata;
	int action = 0, running;

	if (revents & (EPOLLIN | EPOLLHUP))
		action |= CURL_CSELECT_IN;
	if (revents & EPOLLOUT)
		action |= CURL_CSELECT_OUT;
	if (revents & EPOLLERR)
		action |= CURL_CSELECT_ERR;
	if (curl_multi_socket_action(cl->multi, fd, action, &running) != CURLM_OK)
		log_warnx("curl: socket action failed");
	check_done(cl);
	return 0;
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct curl_loop *cl = userp;
	sd_event_source *io = socketp;
	uint32_t events = 0;

	if (what == CURL_POLL_REMOVE) {
		if (io) {
			sd_event_source_disable_unref(io);
			curl_multi_assign(cl->multi, fd, NULL);
		}
		return 0;
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= EPOLLIN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= EPOLLOUT;

	if (io) {
		if (sd_event_source_set_io_events(io, events) < 0 ||
		    sd_event_source_set_enabled(io, SD_EVENT_ON) < 0)
			return -1;
		return 0;
	}
	if (sd_event_add_io(cl->event, &io, fd, events, on_io, cl) < 0)
		return -1;
	sd_event_source_set_description(io, "curl-io");
	if (curl_multi_assign(cl->multi, fd, io) != CURLM_OK) {
		sd_event_source_disable_unref(io);
		return -1;
	}
	return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct curl_loop *cl = userdata;
	int running;

	if (curl_multi_socket_action(cl->multi, CURL_SOCKET_TIMEOUT, 0, &running) != CURLM_OK)
		log_warnx("curl: timeout action failed");
	check_done(cl);
	return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct curl_loop *cl = userp;
	uint64_t now;

	/* timeout_ms < 0: curl needs no timer now. */
	if (timeout_ms < 0)
		return sd_event_source_set_enabled(cl->timer, SD_EVENT_OFF) < 0 ? -1 : 0;
	if (sd_event_now(cl->event, CLOCK_MONOTONIC, &now) < 0)
		return -1;
	if (sd_event_source_set_time(cl->timer, now + (uint64_t)timeout_ms * 1000) < 0 ||
	    sd_event_source_set_enabled(cl->timer, SD_EVENT_ONESHOT) < 0)
		return -1;
	return 0;
}

int curl_loop_global_init(void)
{
	pthread_once(&curl_once, curl_global);
	return curl_init_result == CURLE_OK ? 0 : -EIO;
}

int curl_loop_new(sd_event *e, struct curl_loop **ret)
{
	struct curl_loop *cl;
	int r;

	r = curl_loop_global_init();
	if (r < 0)
		return r;
	cl = calloc(1, sizeof *cl);
	if (!cl)
		return -ENOMEM;
	cl->event = sd_event_ref(e);
	cl->multi = curl_multi_init();
	cl->share = curl_share_init();
	if (!cl->multi || !cl->share ||
	    curl_share_setopt(cl->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
		r = -ENOMEM;
		goto fail;
	}
	r = sd_event_add_time(e, &cl->timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_timer, cl);
	if (r < 0)
		goto fail;
	sd_event_source_set_description(cl->timer, "curl-timer");
	sd_event_source_set_enabled(cl->timer, SD_EVENT_OFF);
	if (curl_multi_setopt(cl->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
	    curl_multi_setopt(cl->multi, CURLMOPT_SOCKETDATA, cl) != CURLM_OK ||
	    curl_multi_setopt(cl->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
	    curl_multi_setopt(cl->multi, CURLMOPT_TIMERDATA, cl) != CURLM_OK) {
		r = -EINVAL;
		goto fail;
	}
	*ret = cl;
	return 0;
fail:
	curl_loop_free(cl);
	return r;
}

struct curl_loop *curl_loop_free(struct curl_loop *cl)
{
	if (!cl)
		return NULL;
	while (cl->xfers)
		curl_loop_remove(cl, cl->xfers->easy);
	if (cl->multi)
		curl_multi_cleanup(cl->multi);
	/* Every easy handle has let go of it (check_done, curl_loop_remove). */
	if (cl->share && curl_share_cleanup(cl->share) != CURLSHE_OK)
		log_warnx("curl: the shared TLS session cache is still in use");
	sd_event_source_disable_unref(cl->timer);
	sd_event_unref(cl->event);
	free(cl);
	return NULL;
}

int curl_loop_add(struct curl_loop *cl, CURL *easy, curl_loop_done_fn done, void *userdata)
{
	struct curl_xfer *x = calloc(1, sizeof *x);

	if (!x)
		return -ENOMEM;
	x->easy = easy;
	x->done = done;
	x->userdata = userdata;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
	curl_easy_setopt(easy, CURLOPT_SHARE, cl->share);
	/* Never wait on the loop for a resolver thread stuck in getaddrinfo()
	 * when a transfer times out or is removed: detach it instead. */
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075700
	curl_easy_setopt(easy, CURLOPT_QUICK_EXIT, 1L);
#endif
	if (curl_multi_add_handle(cl->multi, easy) != CURLM_OK) {
		curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
		curl_easy_setopt(easy, CURLOPT_SHARE, NULL);
		free(x);
		return -EIO;
	}
	x->next = cl->xfers;
	if (x->next)
		x->next->prev = x;
	cl->xfers = x;
	return 0;
}

void curl_loop_remove(struct curl_loop *cl, CURL *easy)
{
	struct curl_xfer *x = NULL;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
	if (!x)
		return;
	curl_multi_remove_handle(cl->multi, easy);
	xfer_unlink(cl, x);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
	curl_easy_setopt(easy, CURLOPT_SHARE, NULL);
	free(x);
}
