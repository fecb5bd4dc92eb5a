/* The metrics file: written to a temporary file in the same directory, then
 * renamed over the old one, so that node_exporter never reads half a file. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/clock.h"
#include "agent/log.h"
#include "agent/metrics.h"
#include "agent/ops.h"

static void label(FILE *f, const char *v)
{
	fputc('"', f);
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
	fputc('"', f);
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void check_labels(FILE *f, const struct cfg_check *c)
{
	fputs("{check=", f);
	label(f, c->name);
	fputs(",type=", f);
	label(f, cfg_check_type_str(c->type));
	fputs(",role=", f);
	label(f, cfg_role_str(c->role));
	fputc('}', f);
}

static void write_run(FILE *f, const struct metrics_run *m)
{
	head(f, "rerouter_link_up", "gauge", "1 while the link is UP, 0 while DOWN; absent while unknown.");
	if (m->state != LINK_UNKNOWN)
		fprintf(f, "rerouter_link_up %d\n", m->state == LINK_UP);
	head(f, "rerouter_state_since_seconds", "gauge", "Unix time at which the current state began.");
	fprintf(f, "rerouter_state_since_seconds %.3f\n", (double)m->since_usec / USEC_PER_SEC);
	head(f, "rerouter_run_duration_seconds", "gauge", "How long the last run took.");
	fprintf(f, "rerouter_run_duration_seconds %.3f\n", (double)m->duration_usec / USEC_PER_SEC);
	head(f, "rerouter_run_failed", "gauge", "1 when the last run failed (enough link checks failed).");
	fprintf(f, "rerouter_run_failed %d\n", m->failed);
	head(f, "rerouter_check_up", "gauge", "1 when the check passed in the last run.");
	for (size_t i = 0; i < m->n_results; i++) {
		fputs("rerouter_check_up", f);
		check_labels(f, m->results[i].check);
		fprintf(f, " %d\n", probe_passed(&m->results[i]));
	}
	head(f, "rerouter_check_duration_seconds", "gauge", "How long the check took in the last run.");
	for (size_t i = 0; i < m->n_results; i++) {
		fputs("rerouter_check_duration_seconds", f);
		check_labels(f, m->results[i].check);
		fprintf(f, " %.3f\n", (double)m->results[i].elapsed_ms / 1000.0);
	}
	head(f, "rerouter_hold", "gauge", "1 while rerouterctl hold pins the state.");
	fprintf(f, "rerouter_hold %d\n", m->hold);
}

static void write_db(FILE *f, sqlite3 *db)
{
	struct ops_snapshot o;

	if (!db || ops_snapshot_read(db, &o) < 0)
		return;
	head(f, "rerouter_changes_total", "counter", "Changes of state recorded, by the state changed to.");
	fprintf(f, "rerouter_changes_total{to=\"down\"} %lld\n", (long long)o.changes_down);
	fprintf(f, "rerouter_changes_total{to=\"up\"} %lld\n", (long long)o.changes_up);
	head(f, "rerouter_steps_pending", "gauge", "Steps not yet done: a routing step retried, a change's hook or mail.");
	fprintf(f, "rerouter_steps_pending %d\n", o.steps_pending + (o.routing_pending ? 1 : 0));
	head(f, "rerouter_alerts_queued", "gauge", "Alert mails not yet accepted by the mail server.");
	fprintf(f, "rerouter_alerts_queued %d\n", o.alerts_queued);
	ops_snapshot_clear(&o);
}

static int write_file(const char *path, sqlite3 *db, const struct metrics_run *m)
{
	size_t len = strlen(path);
	char *tmp = malloc(len + 16);
	FILE *f = NULL;
	int fd, r = 0;

	if (!tmp)
		return -ENOMEM;
	snprintf(tmp, len + 16, "%s.tmp.XXXXXX", path);
	if ((fd = mkstemp(tmp)) < 0) {
		r = -errno;
		goto out;
	}
	/* node_exporter runs as another user: the file is readable (no secret). */
	if (fchmod(fd, 0644) < 0 || !(f = fdopen(fd, "w"))) {
		r = -errno;
		close(fd);
		unlink(tmp);
		goto out;
	}
	write_run(f, m);
	write_db(f, db);
	if (ferror(f) | (fclose(f) != 0))
		r = -EIO;
	else if (rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
out:
	free(tmp);
	return r;
}

void metrics_after_run(const struct cfg *cfg, sqlite3 *db, const struct metrics_run *m)
{
	static int last_error;
	int r;

	if (!cfg->metrics.textfile)
		return;
	r = write_file(cfg->metrics.textfile, db, m);
	if (r < 0 && r != last_error)
		log_warn_errno(r, "cannot write the metrics file %s (logged again when the error changes)",
			       cfg->metrics.textfile);
	else if (r == 0 && last_error)
		log_notice("the metrics file %s is written again", cfg->metrics.textfile);
	last_error = r;
}
