/* sd-bus client of systemd's Manager: RestartUnit/ReloadUnit, then the job's
 * JobRemoved signal. Subscribe and the match come before the call, so the
 * signal of a fast job cannot be missed. Also reads a unit's InvocationID,
 * ActiveState and pending Job (Properties.GetAll), which is how a restart
 * issued before a crash is recognised at the next start. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <systemd/sd-bus.h>

#include "actions/transport.h"
#include "agent/log.h"

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"

/* JobRemoved signals seen before the reply told us our job's path. */
#define EARLY_MAX 16

struct transport_job {
	sd_event *event;
	sd_bus *bus;
	sd_bus_slot *match_slot, *subscribe_slot, *call_slot;
	sd_event_source *timer_src, *done_src;
	char *unit, *job_path;
	const char *verb;
	struct {
		char *path, *result;
	} early[EARLY_MAX];
	size_t n_early;
	bool finished, ok;
	char result[256];
	transport_done_fn done;
	transport_queued_fn queued;
	transport_query_fn query_done; /* set: a query, not a job */
	struct transport_unit_info info;
	void *ud;
};

static int on_done(sd_event_source *s, void *ud)
{
	struct transport_job *j = ud;

	(void)s;
	if (j->query_done)
		j->query_done(j, j->ok ? &j->info : NULL, j->result, j->ud);
	else
		j->done(j, j->ok, j->result, j->ud);
	return 0;
}

/* Reported from a defer source so the owner may free the job in done(). */
static void finish(struct transport_job *j, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void finish(struct transport_job *j, bool ok, const char *fmt, ...)
{
	va_list ap;

	if (j->finished)
		return;
	j->finished = true;
	j->ok = ok;
	va_start(ap, fmt);
	vsnprintf(j->result, sizeof j->result, fmt, ap);
	va_end(ap);
	j->timer_src = sd_event_source_disable_unref(j->timer_src);
	if (sd_event_add_defer(j->event, &j->done_src, on_done, j) < 0)
		on_done(NULL, j);
}

static void job_result(struct transport_job *j, const char *result)
{
	finish(j, !strcmp(result, "done"), "%s", result);
}

static int on_job_removed(sd_bus_message *m, void *ud, sd_bus_error *ret_error)
{
	struct transport_job *j = ud;
	const char *path, *unit, *result;
	uint32_t id;

	(void)ret_error;
	if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
		return 0;
	if (j->job_path) {
		if (!strcmp(path, j->job_path))
			job_result(j, result);
	} else if (j->n_early < EARLY_MAX) {
		j->early[j->n_early].path = strdup(path);
		j->early[j->n_early].result = strdup(result);
		j->n_early++;
	}
	return 0;
}

static int on_reply(sd_bus_message *m, void *ud, sd_bus_error *ret_error)
{
	struct transport_job *j = ud;
	const sd_bus_error *e = sd_bus_message_get_error(m);
	const char *path;

	(void)ret_error;
	j->call_slot = sd_bus_slot_unref(j->call_slot);
	if (e) {
		finish(j, false, "%s %s refused: %s", j->verb, j->unit, e->message ? e->message : e->name);
		return 0;
	}
	if (sd_bus_message_read(m, "o", &path) < 0) {
		finish(j, false, "%s %s: malformed reply", j->verb, j->unit);
		return 0;
	}
	j->job_path = strdup(path);
	if (!j->job_path) {
		finish(j, false, "out of memory");
		return 0;
	}
	log_debug("transport: %s %s queued as %s", j->verb, j->unit, path);
	if (j->queued)
		j->queued(j, path, j->ud);
	for (size_t i = 0; i < j->n_early; i++)
		if (j->early[i].path && !strcmp(j->early[i].path, path))
			job_result(j, j->early[i].result ? j->early[i].result : "?");
	return 0;
}

static int on_subscribed(sd_bus_message *m, void *ud, sd_bus_error *ret_error)
{
	const sd_bus_error *e = sd_bus_message_get_error(m);

	(void)ud, (void)ret_error;
	/* Already subscribed is fine; anything else only costs the signal, and
	 * the timeout will say so. */
	if (e && !sd_bus_error_has_name(e, "org.freedesktop.systemd1.AlreadySubscribed"))
		log_warnx("transport: Subscribe failed: %s", e->message ? e->message : e->name);
	return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *ud)
{
	struct transport_job *j = ud;

	(void)s, (void)usec;
	finish(j, false, "no job result within the timeout");
	return 0;
}

static int on_disconnect(sd_bus_message *m, void *ud, sd_bus_error *ret_error)
{
	struct transport_job *j = ud;

	(void)m, (void)ret_error;
	finish(j, false, "the bus connection was closed");
	return 0;
}

static int open_bus(enum cfg_bus bus, sd_bus **ret, bool *ret_direct)
{
	char path[4096];
	const char *socket = NULL;
	sd_bus *b = NULL;
	int r;

	/* Like systemctl: talk to the manager's private socket when we may,
	 * which needs no D-Bus daemon. */
	if (bus == BUS_USER) {
		const char *rt = getenv("XDG_RUNTIME_DIR");
		if (rt && snprintf(path, sizeof path, "%s/systemd/private", rt) < (int)sizeof path)
			socket = path;
	} else if (geteuid() == 0)
		socket = "/run/systemd/private";

	if (socket && access(socket, F_OK) == 0) {
		char addr[sizeof path + 16];
		snprintf(addr, sizeof addr, "unix:path=%s", socket);
		r = sd_bus_new(&b);
		if (r >= 0)
			r = sd_bus_set_address(b, addr);
		if (r >= 0)
			r = sd_bus_start(b);
		if (r >= 0) {
			*ret = b;
			*ret_direct = true;
			return 0;
		}
		b = sd_bus_unref(b);
	}
	r = bus == BUS_USER ? sd_bus_open_user(&b) : sd_bus_open_system(&b);
	if (r < 0)
		return r;
	*ret = b;
	*ret_direct = false;
	return 0;
}

/* What a job and a query share: the bus on the loop, told when it drops. On
 * failure *ret is still set (or NULL) for the caller to free. */
static int job_new(sd_event *e, enum cfg_bus bus, const char *unit, const char *verb, void *ud,
		   struct transport_job **ret, bool *ret_direct)
{
	struct transport_job *j = calloc(1, sizeof *j);
	int r;

	*ret = j;
	if (!j)
		return -ENOMEM;
	j->event = sd_event_ref(e);
	j->ud = ud;
	j->verb = verb;
	j->unit = strdup(unit);
	if (!j->unit)
		return -ENOMEM;
	r = open_bus(bus, &j->bus, ret_direct);
	if (r < 0)
		return r;
	r = sd_bus_attach_event(j->bus, e, SD_EVENT_PRIORITY_NORMAL);
	if (r < 0)
		return r;
	return sd_bus_match_signal_async(j->bus, NULL, NULL, "/org/freedesktop/DBus/Local",
					 "org.freedesktop.DBus.Local", "Disconnected", on_disconnect,
					 NULL, j);
}

static int job_arm_timeout(struct transport_job *j, uint64_t timeout_usec)
{
	if (timeout_usec == 0)
		return 0;
	return sd_event_add_time_relative(j->event, &j->timer_src, CLOCK_MONOTONIC, timeout_usec, 0,
					  on_timeout, j);
}

int transport_start(sd_event *e, enum cfg_bus bus, const char *unit,
		    enum cfg_transport_action action, uint64_t timeout_usec, transport_done_fn done,
		    void *ud, struct transport_job **ret)
{
	struct transport_job *j = NULL;
	bool direct = false;
	int r;

	if (action != TRANSPORT_RESTART && action != TRANSPORT_RELOAD)
		return -EINVAL;
	r = job_new(e, bus, unit, action == TRANSPORT_RESTART ? "restart" : "reload", ud, &j, &direct);
	if (r < 0)
		goto fail;
	j->done = done;
	/* On a direct connection messages carry no sender: match without one. */
	r = sd_bus_match_signal_async(j->bus, &j->match_slot, direct ? NULL : SD_DEST, SD_PATH,
				      SD_MANAGER, "JobRemoved", on_job_removed, NULL, j);
	if (r < 0)
		goto fail;
	r = sd_bus_call_method_async(j->bus, &j->subscribe_slot, SD_DEST, SD_PATH, SD_MANAGER,
				     "Subscribe", on_subscribed, j, NULL);
	if (r < 0)
		goto fail;
	r = sd_bus_call_method_async(j->bus, &j->call_slot, SD_DEST, SD_PATH, SD_MANAGER,
				     action == TRANSPORT_RESTART ? "RestartUnit" : "ReloadUnit",
				     on_reply, j, "ss", unit, "replace");
	if (r < 0)
		goto fail;
	r = job_arm_timeout(j, timeout_usec);
	if (r < 0)
		goto fail;
	*ret = j;
	return 0;
fail:
	transport_job_free(j);
	return r;
}

void transport_job_on_queued(struct transport_job *j, transport_queued_fn queued)
{
	j->queued = queued;
}

/* One property of the GetAll reply's a{sv}: the wanted ones are read, the others skipped. */
static int read_prop(sd_bus_message *m, struct transport_unit_info *info)
{
	const char *name, *s, *path;
	const void *id;
	size_t n;
	uint32_t job;
	int r;

	r = sd_bus_message_read(m, "s", &name);
	if (r < 0)
		return r;
	if (!strcmp(name, "InvocationID")) {
		r = sd_bus_message_enter_container(m, 'v', "ay");
		if (r >= 0)
			r = sd_bus_message_read_array(m, 'y', &id, &n);
		if (r >= 0) {
			info->invocation_id[0] = '\0';
			for (size_t i = 0; i < n && i < 16; i++)
				snprintf(info->invocation_id + 2 * i, 3, "%02x", ((const uint8_t *)id)[i]);
			r = sd_bus_message_exit_container(m);
		}
	} else if (!strcmp(name, "ActiveState")) {
		r = sd_bus_message_enter_container(m, 'v', "s");
		if (r >= 0)
			r = sd_bus_message_read(m, "s", &s);
		if (r >= 0) {
			snprintf(info->active_state, sizeof info->active_state, "%s", s);
			r = sd_bus_message_exit_container(m);
		}
	} else if (!strcmp(name, "Job")) {
		r = sd_bus_message_enter_container(m, 'v', "(uo)");
		if (r >= 0)
			r = sd_bus_message_read(m, "(uo)", &job, &path);
		if (r >= 0) {
			info->job_id = job;
			r = sd_bus_message_exit_container(m);
		}
	} else
		r = sd_bus_message_skip(m, "v");
	return r;
}

static int on_query_reply(sd_bus_message *m, void *ud, sd_bus_error *ret_error)
{
	struct transport_job *j = ud;
	const sd_bus_error *e = sd_bus_message_get_error(m);
	int r;

	(void)ret_error;
	j->call_slot = sd_bus_slot_unref(j->call_slot);
	if (e) {
		finish(j, false, "reading %s: %s", j->unit, e->message ? e->message : e->name);
		return 0;
	}
	r = sd_bus_message_enter_container(m, 'a', "{sv}");
	while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		r = read_prop(m, &j->info);
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
	}
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	if (r < 0)
		finish(j, false, "reading %s: malformed reply: %s", j->unit, strerror(-r));
	else
		finish(j, true, "%s", j->info.active_state);
	return 0;
}

int transport_query(sd_event *e, enum cfg_bus bus, const char *unit, uint64_t timeout_usec,
		    transport_query_fn done, void *ud, struct transport_job **ret)
{
	struct transport_job *j = NULL;
	char *path = NULL;
	bool direct = false;
	int r;

	r = job_new(e, bus, unit, "query", ud, &j, &direct);
	if (r < 0)
		goto fail;
	j->query_done = done;
	/* The unit's object path; systemd loads the unit if it is not loaded. */
	r = sd_bus_path_encode(SD_PATH "/unit", unit, &path);
	if (r < 0)
		goto fail;
	r = sd_bus_call_method_async(j->bus, &j->call_slot, SD_DEST, path,
				     "org.freedesktop.DBus.Properties", "GetAll", on_query_reply, j,
				     "s", "org.freedesktop.systemd1.Unit");
	if (r < 0)
		goto fail;
	r = job_arm_timeout(j, timeout_usec);
	if (r < 0)
		goto fail;
	free(path);
	*ret = j;
	return 0;
fail:
	free(path);
	transport_job_free(j);
	return r;
}

struct transport_job *transport_job_free(struct transport_job *j)
{
	if (!j)
		return NULL;
	sd_bus_slot_unref(j->call_slot);
	sd_bus_slot_unref(j->subscribe_slot);
	sd_bus_slot_unref(j->match_slot);
	sd_event_source_disable_unref(j->timer_src);
	sd_event_source_disable_unref(j->done_src);
	if (j->bus) {
		sd_bus_detach_event(j->bus);
		sd_bus_close_unref(j->bus);
	}
	for (size_t i = 0; i < j->n_early; i++) {
		free(j->early[i].path);
		free(j->early[i].result);
	}
	free(j->job_path);
	free(j->unit);
	sd_event_unref(j->event);
	free(j);
	return NULL;
}
