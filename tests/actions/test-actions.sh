#!/bin/bash
# The actions against real parts (issue 5), without the agent: a test driver
# (rr-actions-driver) records changes and pending steps in a state database
# and runs the actions until nothing is pending. Postfix (postfix-sqlite,
# reading transport_routes) runs as a unit of a private `systemd --user`
# manager; relays A and B are smtp-sinks on 127.0.3.1/127.0.3.2.
# Checks: routing follows the connectors; a deferred message leaves by the new
# route right after the switch (flush); one restart per real change and none
# when the database did not change; the hook's argv and environment; journal
# fields; and, killing the process right after each step
# (RR_TEST_CRASH_AFTER_STEP), that a re-run does every step exactly once
# (the hook at most once), also when killed between issuing the restart or
# starting the hook and recording its result (the reconciler's routing row
# and the hook's launched column);
# and, with the state database held by another writer when the restart and
# the hook end, that each is marked by a retry and done exactly once.
set -u
. "$RR_SRCDIR/tests/lib/common.sh"
. "$RR_SRCDIR/tests/lib/systemd.sh"
. "$RR_SRCDIR/tests/lib/postfix.sh"
. "$RR_SRCDIR/tests/lib/sink.sh"

need_root
rr_need_cmd postfix smtp-sink sqlite3 sendmail postqueue /lib/systemd/systemd unshare
[ -e /usr/lib/postfix/postfix-sqlite.so ] || ls /usr/lib/postfix/ 2>/dev/null | grep -q sqlite ||
	rr_skip "postfix-sqlite is not installed"
rr_private_mountns "$@"
rr_tmpdir
rr_trap

DRIVER=$RR_BUILDDIR/tests/actions/rr-actions-driver
[ -x "$DRIVER" ] || rr_die "no $DRIVER (make first)"
T=$RR_TMPDIR
UNIT=rr-ac-postfix.service
A_ADDR=127.0.3.1:20025
B_ADDR=127.0.3.2:20025
mkdir -p "$T/db"
TDB=$T/db/transport.db
SDB=$T/state.db
HOOKLOG=$T/hook.log
FLUSHLOG=$T/flush.log

# gate NAME: when $T/gate-NAME exists (used once), say so in $T/at-NAME and
# wait (at most 20 s) for $T/go-NAME. The hook and the unit's ExecStartPost
# pass here, so that the test can take the state database's lock while they run.
cat >"$T/gate" <<EOF
#!/bin/sh
[ -e "$T/gate-\$1" ] || exit 0
rm -f "$T/gate-\$1"
touch "$T/at-\$1"
i=0
while [ ! -e "$T/go-\$1" ] && [ \$i -lt 200 ]; do sleep 0.1; i=\$((i + 1)); done
exit 0
EOF
# locker DB FLAG RELEASE: another writer (like an admin's sqlite3 shell) holds
# the database's write lock from FLAG's creation until RELEASE exists (<= 30 s).
cat >"$T/locker.py" <<'EOF'
import os, sqlite3, sys, time
db, flag, release = sys.argv[1:4]
c = sqlite3.connect(db, isolation_level=None, timeout=10)
c.execute("BEGIN EXCLUSIVE")
open(flag, "w").close()
deadline = time.monotonic() + 30
while not os.path.exists(release) and time.monotonic() < deadline:
    time.sleep(0.05)
c.execute("ROLLBACK")
EOF
cat >"$T/hook" <<EOF
#!/bin/sh
/bin/sh "$T/gate" hook
echo "argv=\$1,\$2 state=\$REROUTER_STATE previous=\$REROUTER_PREVIOUS since=\$REROUTER_SINCE" >>"$HOOKLOG"
echo "hook says hello"
EOF
# postqueue -f, counted (the driver's flush argv points here).
cat >"$T/flush" <<EOF
#!/bin/sh
/usr/sbin/postqueue -f; rc=\$?
echo "\$rc \$(date +%s.%N)" >>"$FLUSHLOG"
exit \$rc
EOF
chmod 755 "$T/hook" "$T/flush"
: >"$HOOKLOG"
: >"$FLUSHLOG"

DRV=("$DRIVER" -s "$SDB" -t "$TDB" -u "$UNIT" -b user -a restart -f "$T/flush" -H "$T/hook" -T 10
	--down-disable site-a --down-enable site-b --up-enable site-a -w 100)
drv() { "${DRV[@]}" "$@"; }
route() {
	sqlite3 "$TDB" "SELECT nexthop FROM transport_routes WHERE address_space = '*'"
}
step_of() { # CHANGE STEP: status|detail
	sqlite3 "$SDB" "SELECT status || '|' || detail FROM change_steps WHERE change_id = $1 AND step = '$2'"
}
last_change() {
	sqlite3 "$SDB" "SELECT MAX(id) FROM changes"
}
hooks() { grep -c . "$HOOKLOG"; }
flushes_ok() { grep -c '^0 ' "$FLUSHLOG"; }

rr_step "transport database (rerouterctl init through the driver)"
drv init >/dev/null || rr_die "init failed"
drv init >/dev/null || rr_die "init is not idempotent"
sqlite3 "$TDB" "INSERT INTO send_connectors (name, address_space, smart_host, cost) VALUES
  ('site-a', '*', '[127.0.3.1]:20025', 1), ('site-b', '*', '[127.0.3.2]:20025', 2);"
rr_postfix_db_perms "$T/db"
rr_expect_eq "route with site A enabled" "smtp:[127.0.3.1]:20025" "$(route)"

rr_step "journald, systemd --user, Postfix as $UNIT, relays"
rr_journald_start || rr_die "journald"
rr_systemd_user_start "$T/systemd" || rr_die "systemd --user"
# Long backoff: only the flush can make deferred mail leave within seconds.
rr_postfix_setup "$T/postfix" "$TDB" 'minimal_backoff_time = 600s' \
	'maximum_backoff_time = 1200s' 'queue_run_delay = 600s' || rr_die "postfix setup"
rr_postfix_unit "$UNIT" || rr_die "postfix unit"
rr_sink_start relaya "$T/relaya" "$A_ADDR" || rr_die "relay A"
PID_A=$RR_PID
rr_sink_start relayb "$T/relayb" "$B_ADDR" || rr_die "relay B"
postmap -q '*' sqlite:/etc/postfix/rerouter-transport.cf | grep -q '127.0.3.1' ||
	rr_fail "postmap -q '*' does not see site A"

rr_step "mail goes to relay A while site-a is enabled"
rr_sendmail a@hub.rr-ac.test x@remote.rr-ac.test "rr-ac one"
rr_check "message 1 reached relay A" rr_sink_wait_grep "$T/relaya" 'Subject: rr-ac one' 20
rr_expect_eq "relay B got nothing" 0 "$(rr_sink_count "$T/relayb")"

rr_step "cut relay A, a message is deferred"
rr_sink_stop "$PID_A"
rr_sendmail a@hub.rr-ac.test x@remote.rr-ac.test "rr-ac two"
rr_check "message 2 deferred" rr_postfix_wait_deferred 1 20
starts0=$(rr_postfix_starts)
pid0=$(rr_unit_prop "$UNIT" MainPID)

rr_step "change DOWN: connectors, restart, flush, hook"
t0=$(rr_now_ms)
drv run down >"$T/drv1.out" 2>"$T/drv1.err" || { cat "$T/drv1.out" "$T/drv1.err" >&2; rr_die "driver failed"; }
t1=$(rr_now_ms)
# 75 s: a trivial-rewrite that met the map's write lock (Postfix's sqlite map
# has no busy timeout: SQLITE_BUSY is fatal) is throttled by master for 60 s.
rr_check "message 2 reached relay B" rr_sink_wait_grep "$T/relayb" 'Subject: rr-ac two' 75
t2=$(rr_now_ms)
rr_info "FIGURE: driver (connectors+restart+flush+hook) took $((t1 - t0)) ms; the deferred message reached relay B $((t2 - t0)) ms after the change was recorded"
sed 's/^/    /' "$T/drv1.out" >&2
rr_expect_eq "one start more of $UNIT" $((starts0 + 1)) "$(rr_postfix_starts)"
pid1=$(rr_unit_prop "$UNIT" MainPID)
if [ "$pid1" != "$pid0" ]; then rr_ok "MainPID changed ($pid0 -> $pid1)"; else rr_fail "MainPID did not change"; fi
rr_info "NRestarts=$(rr_unit_prop "$UNIT" NRestarts) (automatic restarts only) ActiveEnterTimestamp=$(rr_unit_prop "$UNIT" ActiveEnterTimestamp)"
rr_expect_eq "route now" "smtp:[127.0.3.2]:20025" "$(route)"
rr_expect_eq "every step done" "connectors done,transport done,flush done,hook done,mail skipped" \
	"$(sqlite3 "$SDB" "SELECT group_concat(step || ' ' || status, ',') FROM (SELECT * FROM change_steps WHERE change_id = 1 ORDER BY seq)")"
rr_check "hook got argv NEW OLD and the environment" \
	grep -Eq '^argv=down,up state=down previous=up since=20[0-9-]+T[0-9:]+Z$' "$HOOKLOG"
journal_has() { rr_journal_json "$@" | grep -q .; }
hook_said_hello() { rr_journal_text REROUTER_ACTION=hook | grep -q 'hook says hello'; }
rr_check "hook output in the journal" wait_for 5 hook_said_hello
rr_check "journal: connector entry with REROUTER_CONNECTOR and REROUTER_ACTION" \
	wait_for 5 journal_has REROUTER_CONNECTOR=site-a REROUTER_ACTION=disable
rr_check "journal: restart entry with its result" \
	journal_has REROUTER_ACTION=restart REROUTER_RESULT=pass
rr_sendmail a@hub.rr-ac.test x@remote.rr-ac.test "rr-ac three"
rr_check "new mail goes to relay B" rr_sink_wait_grep "$T/relayb" 'Subject: rr-ac three' 75

rr_step "no real change: no restart"
s=$(rr_postfix_starts)
drv run >/dev/null 2>&1 || rr_fail "driver run (nothing pending)"
drv run down >"$T/drv2.out" 2>&1 || rr_fail "driver run down again"
rr_expect_eq "no restart when the database did not change" "$s" "$(rr_postfix_starts)"
rr_expect_eq "transport skipped" "skipped|transport database unchanged" "$(step_of 2 transport)"

rr_step "kill -9 right after each step, then a re-run: everything exactly once"
# transport-recorded: the restart recorded as issued, not yet sent (the re-run
# must issue it); transport-issued: systemd has the job, no result yet (the
# re-run must see the new InvocationID and not restart again); hook-started:
# the hook forked (the re-run must not run it again: at most once).
state=down
for step in connectors transport-recorded transport-issued transport flush hook-started hook mail; do
	if [ $state = down ]; then state=up; else state=down; fi
	s=$(rr_postfix_starts)
	h=$(hooks)
	f=$(flushes_ok)
	RR_TEST_CRASH_AFTER_STEP=$step drv run $state >"$T/crash-$step.out" 2>&1
	rr_expect_eq "killed (SIGKILL) right after $step" 137 "$?"
	id=$(last_change)
	rr_info "left behind: $(sqlite3 "$SDB" "SELECT group_concat(step || '=' || status, ' ') FROM (SELECT * FROM change_steps WHERE change_id = $id ORDER BY seq)")"
	case $step in
	transport-*)
		rr_check "$step: the routing row records the restart as issued, with the unit's InvocationID" \
			grep -Eq '^1\|[0-9a-f]{32}$' <<<"$(sqlite3 "$SDB" "SELECT restart_owed || '|' || issued_invocation FROM routing")" ;;
	hook-started)
		rr_check "$step: the step row says the hook was launched" \
			grep -Eq '^pending\|1$' <<<"$(sqlite3 "$SDB" "SELECT status || '|' || launched FROM change_steps WHERE change_id = $id AND step = 'hook'")"
		# The hook outlives the killed process: let it finish first.
		hooks_at() { [ "$(hooks)" -ge "$1" ]; }
		rr_check "$step: the orphaned hook ran" wait_for 10 hooks_at $((h + 1)) ;;
	esac
	drv run >"$T/resume-$step.out" 2>&1 || rr_fail "resume after $step"
	rr_expect_eq "$step: one restart for change $id ($state)" $((s + 1)) "$(rr_postfix_starts)"
	rr_expect_eq "$step: the hook ran once" $((h + 1)) "$(hooks)"
	rr_expect_eq "$step: one successful flush" $((f + 1)) "$(flushes_ok)"
	rr_expect_eq "$step: nothing pending" 0 \
		"$(sqlite3 "$SDB" "SELECT COUNT(*) FROM change_steps WHERE status = 'pending'")"
	case $step in
	transport-recorded)
		rr_check "$step: restarted by the re-run" grep -Eq '^done\|restart [^ ]+: done in' <<<"$(step_of $id transport)" ;;
	transport-issued)
		rr_check "$step: marked done as restarted before the crash" \
			grep -Eq '^done\|restarted before a crash of rerouterd \(InvocationID [0-9a-f]{32} -> [0-9a-f]{32}\)$' <<<"$(step_of $id transport)" ;;
	hook-started)
		rr_expect_eq "$step: the hook step says interrupted" \
			"failed|interrupted by a crash of rerouterd; not run again" "$(step_of $id hook)"
		hook_warned() { rr_journal_text REROUTER_ACTION=hook | grep -q "change $id hook: .*interrupted by a crash, not run again"; }
		rr_check "$step: a warning in the journal" wait_for 5 hook_warned ;;
	esac
	rr_info "$step: transport step: $(step_of $id transport)"
done
if [ $state = up ]; then
	rr_expect_eq "final route (up: site A)" "smtp:[127.0.3.1]:20025" "$(route)"
else
	rr_expect_eq "final route (down: site B)" "smtp:[127.0.3.2]:20025" "$(route)"
	# What follows starts from up.
	drv run up >/dev/null 2>&1 || rr_fail "driver run up"
	rr_expect_eq "route (up: site A)" "smtp:[127.0.3.1]:20025" "$(route)"
fi

rr_step "a newer change supersedes an older one's connectors and restart"
s=$(rr_postfix_starts)
h=$(hooks)
drv run down up down >"$T/super.out" 2>&1 || rr_fail "driver run down up down"
rr_expect_eq "one restart for three changes" $((s + 1)) "$(rr_postfix_starts)"
rr_expect_eq "three hooks" $((h + 3)) "$(hooks)"
id=$(last_change)
rr_expect_eq "the oldest is marked superseded" "skipped|superseded by change $id" \
	"$(step_of $((id - 2)) connectors)"
rr_expect_eq "route follows the newest (down: site B)" "smtp:[127.0.3.2]:20025" "$(route)"

rr_step "DOWN with no backup path: nothing toggled"
drv run up >/dev/null 2>&1 || rr_fail "driver run up"
s=$(rr_postfix_starts)
drv run down-nobackup >"$T/nb.out" 2>&1 || rr_fail "driver run down-nobackup"
rr_expect_eq "no restart" "$s" "$(rr_postfix_starts)"
rr_expect_eq "connectors skipped" "skipped|no backup path answered: nothing rewired" "$(step_of "$(last_change)" connectors)"
rr_expect_eq "site A still routes" "smtp:[127.0.3.1]:20025" "$(route)"

rr_step "state database held by another writer when the restart and the hook end"
mkdir -p "$RR_USER_UNITS/$UNIT.d"
printf '[Service]\nExecStartPost=/bin/sh %s/gate restart\n' "$T" >"$RR_USER_UNITS/$UNIT.d/rr-gate.conf"
systemctl --user daemon-reload
s=$(rr_postfix_starts)
h=$(hooks)
f=$(flushes_ok)
# The hook's mark (actions) is logged at each try; the routing steps' marks
# (the reconciler) once an hour, each try at debug level (RR_DEBUG).
mark_failures() { rr_journal_text | grep -Ec 'state database: marking a step: database is locked|routing: record of change [0-9]+ refused'; }
more_mark_failures() { [ "$(mark_failures)" -ge "$1" ]; }
touch "$T/gate-restart" "$T/gate-hook"
t0=$(rr_now_ms)
RR_DEBUG=1 "${DRV[@]}" run down >"$T/lock.out" 2>&1 &
DPID=$!
rr_on_cleanup "rr_kill_pid $DPID"
# Per step: while it runs, take the lock; let it end; hold the lock until two
# tries to mark it failed (the first and a timed retry), then release.
for g in restart hook; do
	rr_check "$g reached its gate" wait_for 30 test -e "$T/at-$g" || break
	m=$(mark_failures)
	python3 "$T/locker.py" "$SDB" "$T/locked-$g" "$T/release-$g" &
	rr_on_cleanup "rr_kill_pid $!"
	rr_check "lock taken during $g" wait_for 10 test -e "$T/locked-$g"
	touch "$T/go-$g"
	rr_check "$g ended, its mark failed twice under the lock" wait_for 20 more_mark_failures $((m + 2))
	touch "$T/release-$g"
done
wait_for 60 rr__dead "$DPID"
wait "$DPID"
rr_expect_eq "driver finished" 0 "$?"
t1=$(rr_now_ms)
id=$(last_change)
rr_info "FIGURE: driver $((t1 - t0)) ms with the lock held twice; $(grep '^cpu' "$T/lock.out"); $(mark_failures) failed marks in all"
transport_kept() { rr_journal_text | grep -q "routing: cannot record the routing steps of change $id yet"; }
rr_check "the transport mark was kept and retried" transport_kept
rr_expect_eq "one restart" $((s + 1)) "$(rr_postfix_starts)"
rr_expect_eq "the hook ran once" $((h + 1)) "$(hooks)"
rr_expect_eq "one successful flush" $((f + 1)) "$(flushes_ok)"
rr_expect_eq "each step done in one attempt" "connectors done 1,transport done 1,flush done 1,hook done 1,mail skipped 0" \
	"$(sqlite3 "$SDB" "SELECT group_concat(step || ' ' || status || ' ' || attempts, ',') FROM (SELECT * FROM change_steps WHERE change_id = $id ORDER BY seq)")"
rr_expect_eq "route now (down: site B)" "smtp:[127.0.3.2]:20025" "$(route)"
rm -f "$RR_USER_UNITS/$UNIT.d/rr-gate.conf"
systemctl --user daemon-reload

if [ "$RR_FAILURES" -gt 0 ]; then
	# The private journal dies with the mount namespace: keep a copy.
	journalctl -D "$RR_JOURNAL_DIR" --no-pager -o short-precise >"$T/journal.txt" 2>&1
	rr_log "$RR_FAILURES check(s) failed; logs in $T"
	exit 1
fi
rr_log "all checks passed"
