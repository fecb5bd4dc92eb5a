#!/bin/bash
# The controller (issue 10) against real parts: the real daemon, a WAN in a
# network namespace (an HTTP and a TCP target) that the test cuts, a backup
# relay on loopback, smtp-sink as the alert mailbox, the transport database
# read back with sqlite3. Each case is something that used to leave mail on a
# dead route until a person came:
#   A. first start during an outage: fails over after `runs` runs (unknown -> down)
#   B. a hand edit of the transport database while DOWN: logged as drift, corrected
#   C. the transport database held by another writer across a change: the
#      alert leaves at max_wait saying the step is retried, the route
#      switches once the lock ends (figure: delay from the end of the lock)
#   D. the transport database moved away across a change, then back
#   E. hold up across a cut and a restart of the daemon, release; hold down
#   F. the filesystem of both databases full before a cut: the route switches
#   G. as instance rerouterd@ctl-g: a cut while the backup relay is down too
#      (nothing rewired), then the relay comes back while DOWN: [on_down]
#      applied, mailed once as a note on the change; every write says
#      changed_by = rerouterd@ctl-g
# Short intervals (300 ms); RR_CTL_LOCK_SECS sets the lock (tests/run --long: 180).
set -u
. "$RR_SRCDIR/tests/lib/common.sh"
. "$RR_SRCDIR/tests/lib/wan.sh"
. "$RR_SRCDIR/tests/lib/sink.sh"
. "$RR_SRCDIR/tests/lib/systemd.sh"

need_root
rr_need_cmd sqlite3 smtp-sink python3 unshare ip
rr_private_mountns "$@"
rr_tmpdir
rr_trap

T=$RR_TMPDIR
RERD=$RR_BUILDDIR/rerouterd
RCTL=$RR_BUILDDIR/rerouterctl
LOCK_SECS=${RR_CTL_LOCK_SECS:-20}
NS=rr-ctl
WAN_IP=10.231.40.2
BACKUP=127.0.40.2
MAILBOX=127.0.40.3:20025
CONF=$T/rerouter.conf
TDB=$T/db/transport.db
SDB=$T/db/state.db
LOG=$T/rerouterd.log
HOOKLOG=$T/hook.log
mkdir -p "$T/db" "$T/mail"

rr_step "WAN namespace, targets, backup relay, alert mailbox"
rr_wan_start "$NS" rrctl0 rrctl1 10.231.40.1/24 "$WAN_IP/24" || rr_die "no WAN namespace"
rr_wan_http_server "$NS" ctl-www "$WAN_IP" 8080 "$T/www" || rr_die "no web target"
rr_wan_tcp_listener "$NS" ctl-gw "$WAN_IP" 2525 || rr_die "no tcp target"
backup_start() {
	rr_spawn ctl-backup python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 20025)); s.listen(64)
while True:
    c, _ = s.accept(); c.close()
' "$BACKUP"
	BACKUP_PID=$RR_PID
	wait_for 5 rr_tcp_open "$BACKUP" 20025
}
backup_start || rr_die "no backup relay"
rr_sink_start ctl-mail "$T/mail" "$MAILBOX" || rr_die "no alert mailbox"

cat >"$T/hook.sh" <<EOF
#!/bin/sh
echo "\$1 \$2 \$REROUTER_STATE \$REROUTER_PREVIOUS" >>"$HOOKLOG"
EOF
chmod 755 "$T/hook.sh"
: >"$HOOKLOG"

write_conf() { # STATE_DB TRANSPORT_DB FILE
	cat >"$3" <<EOF
[agent]
interval = 300ms
failed_checks = 1
runs = 2
failed_runs = 2
passed_runs = 2
state_db = $1

[check "web"]
type = http
target = http://$WAN_IP:8080/
timeout = 250ms

[check "gw"]
type = tcp
target = $WAN_IP:2525
timeout = 250ms

[check "relay-b"]
type = tcp
target = $BACKUP:20025
timeout = 250ms
role = backup

[on_down]
disable = site-a
enable = site-b

[on_up]
enable = site-a
disable = site-b

[transport]
database = $2
action = none
flush =

[mail]
to = admin@example.org
from = rerouter@hub.example.org
server = smtp://$MAILBOX
starttls = never
min_gap = 0
max_wait = 2s

[hook]
on_change = $T/hook.sh
timeout = 5s
EOF
}
write_conf "$SDB" "$TDB" "$CONF"
"$RERD" --check-config -c "$CONF" >/dev/null || rr_die "config rejected: $("$RERD" --check-config -c "$CONF")"

seed() { # TRANSPORT_DB
	sqlite3 "$1" "INSERT INTO send_connectors (name, smart_host, cost, enabled) VALUES
		('site-a', '[10.231.40.2]:25', 1, 1), ('site-b', '[127.0.40.2]:20025', 2, 0)"
}
"$RCTL" -c "$CONF" init >/dev/null || rr_die "rerouterctl init failed"
seed "$TDB"
route() { sqlite3 "${1:-$TDB}" "SELECT nexthop FROM transport_routes WHERE address_space = '*'" 2>/dev/null; }
route_is() { [ "$(route "${2:-$TDB}")" = "$1" ]; }
ROUTE_A="smtp:[10.231.40.2]:25"
ROUTE_B="smtp:[127.0.40.2]:20025"
DPID=""
daemon_start() { # CONF LOG
	"$RERD" -v --allow-root -c "$1" </dev/null >>"$2" 2>&1 &
	DPID=$!
	rr_on_cleanup "rr_kill_pid $DPID"
}
daemon_stop() { rr_kill_pid "$DPID"; DPID=""; }
logged() { grep -q -- "$1" "${2:-$LOG}"; }
alerts_with() { grep -l -- "$1" "$T"/mail/* 2>/dev/null | wc -l; }
has_alerts() { [ "$(alerts_with "$1")" -ge "$2" ]; }
changes_to() { sqlite3 "$SDB" "SELECT COUNT(*) FROM changes WHERE new_state = '$1'"; }
has_changes_to() { [ "$(changes_to "$1")" -ge "$2" ]; }

# ---------------------------------------------------------------------------
rr_step "A. first start while the link is already down: unknown -> DOWN, [on_down] applied"
rr_wan_cut "$NS"
t0=$(rr_now_ms)
daemon_start "$CONF" "$LOG"
rr_check "the start says unknown" wait_for 5 logged "link UNKNOWN since"
rr_check "failed over to relay B" wait_for 15 route_is "$ROUTE_B"
t1=$(rr_now_ms)
rr_info "FIGURE: first start during an outage switched the route $((t1 - t0)) ms after the start (interval 300 ms, runs 2, timeouts 250 ms)"
rr_expect_eq "the change is recorded from unknown" "unknown|down|runs" \
	"$(sqlite3 "$SDB" "SELECT old_state || '|' || new_state || '|' || reason FROM changes ORDER BY id LIMIT 1")"
rr_check "the hook got 'down unknown'" wait_for 10 grep -q '^down unknown down unknown$' "$HOOKLOG"
rr_check "the first state's alert arrived" wait_for 15 has_alerts 'Subject: \[rerouter\] .*DOWN' 1
rr_expect_eq "status exits 1 while DOWN" 1 "$("$RCTL" -c "$CONF" status >"$T/status-a.out" 2>&1; echo $?)"
rr_check "status says DOWN" grep -q '^state: *DOWN since' "$T/status-a.out"

# ---------------------------------------------------------------------------
rr_step "B. a hand edit while DOWN is drift: logged, corrected, in the history"
sqlite3 "$TDB" "UPDATE send_connectors SET enabled = (name = 'site-a')"
rr_check "corrected back to relay B" wait_for 10 route_is "$ROUTE_B"
rr_check "logged as drift" wait_for 5 logged "drift: connector site-a was enabled outside rerouterd"
rr_check "history lists the drift correction" eval '"$RCTL" -c "$CONF" history | grep -q "drift down: corrected"'
rr_expect_eq "no change of state for a drift" 1 "$(sqlite3 "$SDB" "SELECT COUNT(*) FROM changes")"

# ---------------------------------------------------------------------------
rr_step "C. the transport database held by another writer for ${LOCK_SECS}s across a change"
cat >"$T/locker.py" <<'EOF'
import os, sqlite3, sys, time
db, flag, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
c = sqlite3.connect(db, isolation_level=None, timeout=10)
c.execute("BEGIN EXCLUSIVE")
open(flag, "w").close()
time.sleep(secs)          # the lock is the thing under test: held for a fixed time
c.execute("ROLLBACK")
open(flag + ".released", "w").close()
EOF
python3 "$T/locker.py" "$TDB" "$T/locked" "$LOCK_SECS" &
LOCKER=$!
rr_on_cleanup "rr_kill_pid $LOCKER"
rr_check "lock taken" wait_for 10 test -e "$T/locked"
ups=$(alerts_with 'Subject: \[rerouter\] .*UP')
rr_wan_restore "$NS"
rr_check "state UP decided while the database is locked" wait_for 15 has_changes_to up 1
rr_check "the UP alert left at max_wait, before the lock ended" wait_for 10 has_alerts 'Subject: \[rerouter\] .*UP' $((ups + 1))
[ -e "$T/locked.released" ] && rr_fail "the lock ended before the alert: raise RR_CTL_LOCK_SECS"
up_alert=$(grep -l 'Subject: \[rerouter\] .*UP' "$T"/mail/* | xargs ls -t | head -1)
rr_check "the alert says the connectors step is still being retried" \
	grep -Eq 'connectors +pending: attempt [0-9]+: connectors: .*held by another writer' "$up_alert"
rr_check "status shows what is pending and why" \
	eval '"$RCTL" -c "$CONF" status | grep -q "routing: connectors: .*held by another writer"'
rr_expect_eq "the UP change's connectors step still waits" pending \
	"$(sqlite3 "$SDB" "SELECT status FROM change_steps WHERE step = 'connectors' ORDER BY change_id DESC LIMIT 1")"
n_err=$(grep -c 'routing: connectors: .*held by another writer' "$LOG")
rr_check "wait for the lock to end" wait_for $((LOCK_SECS + 20)) test -e "$T/locked.released"
t0=$(rr_now_ms)
rr_check "the route switched once the lock ended" wait_for 70 route_is "$ROUTE_A"
t1=$(rr_now_ms)
rr_info "FIGURE: the route switched $((t1 - t0)) ms after the end of a ${LOCK_SECS}s lock (runs every 300 ms)"
rr_expect_eq "the error was logged once, not at every retry" 1 "$n_err"
rr_check "the end of the retries is logged" wait_for 5 logged "routing: done after"
wait "$LOCKER" 2>/dev/null

# ---------------------------------------------------------------------------
rr_step "D. the transport database moved away across a change, then back"
mv "$TDB" "$TDB.away"
[ -e "$TDB-journal" ] && mv "$TDB-journal" "$TDB.away-journal"
rr_wan_cut "$NS"
rr_check "state DOWN decided without the database" wait_for 15 has_changes_to down 2
rr_check "the missing database is reported as pending" \
	wait_for 10 eval '"$RCTL" -c "$CONF" status | grep -q "routing: connectors: .*"'
rr_check "rerouterd created no empty database in its place" test ! -e "$TDB"
mv "$TDB.away" "$TDB"
[ -e "$TDB.away-journal" ] && mv "$TDB.away-journal" "$TDB-journal"
rr_check "the route switched once the database was back" wait_for 70 route_is "$ROUTE_B"
rr_wan_restore "$NS"
rr_check "back to relay A" wait_for 15 route_is "$ROUTE_A"

# ---------------------------------------------------------------------------
rr_step "E. hold up across a cut and a restart, then release; hold down"
"$RCTL" -c "$CONF" hold up >"$T/hold.out" 2>&1 || rr_fail "hold up: $(cat "$T/hold.out")"
rr_check "rerouterctl woke the daemon" grep -q 'woken' "$T/hold.out"
rr_check "the daemon took the hold" wait_for 5 logged "hold up: probing goes on"
downs=$(changes_to down)
rr_wan_cut "$NS"
n0=$(grep -c 'run FAILED' "$LOG")
failed_runs() { [ "$(grep -c 'run FAILED' "$LOG")" -ge "$1" ]; }
rr_check "runs fail under the hold" wait_for 10 failed_runs $((n0 + 4))
rr_expect_eq "no change of state under the hold" "$downs" "$(changes_to down)"
rr_expect_eq "the route stays on relay A" "$ROUTE_A" "$(route)"
daemon_stop
daemon_start "$CONF" "$LOG"
n0=$(grep -c 'run FAILED' "$LOG")
rr_check "runs fail after the restart" wait_for 10 failed_runs $((n0 + 4))
rr_expect_eq "the hold survived the restart" "$downs" "$(changes_to down)"
rr_check "status shows the hold" eval '"$RCTL" -c "$CONF" status | grep -q "^hold: *UP until release"'
rr_expect_eq "enable of a managed connector is refused" 1 \
	"$("$RCTL" -c "$CONF" disable site-a >"$T/refused.out" 2>&1; echo $?)"
rr_check "the refusal hints at hold" grep -q "rerouterctl hold" "$T/refused.out"
"$RCTL" -c "$CONF" release >"$T/release.out" 2>&1 || rr_fail "release: $(cat "$T/release.out")"
rr_check "after release the window decides: DOWN" wait_for 10 has_changes_to down $((downs + 1))
rr_check "and the route follows" wait_for 10 route_is "$ROUTE_B"
rr_wan_restore "$NS"
rr_check "UP again" wait_for 15 route_is "$ROUTE_A"
holds=$(sqlite3 "$SDB" "SELECT COUNT(*) FROM changes WHERE reason = 'hold'")
"$RCTL" -c "$CONF" hold down --for 1h >"$T/hold2.out" 2>&1 || rr_fail "hold down: $(cat "$T/hold2.out")"
rr_check "a hold to the other state is a change with the reason hold" \
	wait_for 10 eval '[ "$(sqlite3 "$SDB" "SELECT COUNT(*) FROM changes WHERE reason = '"'hold'"'")" = $((holds + 1)) ]'
rr_check "held DOWN: relay B while the link is healthy" wait_for 10 route_is "$ROUTE_B"
rr_check "history shows the hold" eval '"$RCTL" -c "$CONF" history | grep -q "by rerouterctl hold"'
"$RCTL" -c "$CONF" release >/dev/null 2>&1 || rr_fail "release"
rr_check "released: the healthy window goes UP again" wait_for 15 route_is "$ROUTE_A"
daemon_stop

# ---------------------------------------------------------------------------
rr_step "F. the filesystem of both databases full before a cut"
FULL=$T/full
mkdir -p "$FULL"
rr_mount_tmpfs "$FULL" || rr_die "no tmpfs"
mount -o remount,size=2m "$FULL" 2>/dev/null
write_conf "$FULL/state.db" "$FULL/transport.db" "$T/full.conf"
"$RCTL" -c "$T/full.conf" init >/dev/null || rr_die "init on the tmpfs"
seed "$FULL/transport.db"
"$RCTL" -c "$T/full.conf" init >/dev/null || rr_die "init again (the journal grows to what a toggle needs)"
LOGF=$T/rerouterd-full.log
daemon_start "$T/full.conf" "$LOGF"
rr_check "UP on the tmpfs" wait_for 15 eval '[ "$(sqlite3 "$FULL/state.db" "SELECT state FROM agent_state")" = up ]'
# The alert's row is written by the change's mail step: wait for it to be sent.
full_first_sent() {
	[ "$(sqlite3 "$FULL/state.db" "SELECT COUNT(*) FILTER (WHERE sent_usec IS NOT NULL) || ' ' ||
		COUNT(*) FILTER (WHERE sent_usec IS NULL) FROM alerts")" = "1 0" ]
}
rr_check "its first state's alert arrived" wait_for 20 full_first_sent
ups_full=$(alerts_with 'Subject: \[rerouter\] .*UP')
# Fill it: nothing more can be written, not a byte.
dd if=/dev/zero of="$FULL/fill" bs=4k >/dev/null 2>&1
dd if=/dev/zero of="$FULL/fill2" bs=1 >/dev/null 2>&1
rr_info "free on the tmpfs: $(df --output=avail -B1 "$FULL" | tail -1) bytes"
rr_wan_cut "$NS"
rr_check "the route switched on a full filesystem" wait_for 20 route_is "$ROUTE_B" "$FULL/transport.db"
rr_info "state database on the full filesystem: $(grep -c 'cannot store the run' "$LOGF") store errors logged, $(grep -c 'run FAILED' "$LOGF") failed runs"
rm -f "$FULL/fill" "$FULL/fill2"
rr_check "the change of state is in the database once there is room" \
	wait_for 15 eval '[ "$(sqlite3 "$FULL/state.db" "SELECT COUNT(*) FROM changes WHERE new_state = '"'down'"'")" -ge 1 ]'
rr_wan_restore "$NS"
rr_check "and back" wait_for 15 route_is "$ROUTE_A" "$FULL/transport.db"
rr_check "the UP alert of the way back arrived" wait_for 20 has_alerts 'Subject: \[rerouter\] .*UP' $((ups_full + 1))
# A mail accepted while its record could not be written is never sent again.
rr_expect_eq "no alert sent twice across the full disk" $((ups_full + 1)) "$(alerts_with 'Subject: \[rerouter\] .*UP')"
rr_check "integrity of the state database" \
	eval '[ "$(sqlite3 "$FULL/state.db" "PRAGMA integrity_check")" = ok ]'
daemon_stop

# ---------------------------------------------------------------------------
rr_step "G. instance ctl-g: the backup relay comes back while DOWN: [on_down] applied, a note mailed once"
INST=rerouterd@ctl-g
LOGG=$T/rerouterd-g.log
"$RERD" -v --allow-root --instance ctl-g -c "$CONF" </dev/null >>"$LOGG" 2>&1 &
DPID=$!
rr_on_cleanup "rr_kill_pid $DPID"
rr_check "UP as instance ctl-g" wait_for 15 eval '[ "$(sqlite3 "$SDB" "SELECT state FROM agent_state")" = up ] && route_is "$ROUTE_A"'
rr_kill_pid "$BACKUP_PID"
rr_check "the backup relay is down" wait_for 5 rr__not rr_tcp_open "$BACKUP" 20025
downs=$(changes_to down)
no_backup_alerts=$(alerts_with 'No backup path answered')
notes() { alerts_with 'Subject: \[rerouter\] .*backup path answers, mail now rerouted'; }
rr_expect_eq "no note before" 0 "$(notes)"
rr_wan_cut "$NS"
rr_check "DOWN with no backup path" wait_for 15 eval \
	'[ "$(sqlite3 "$SDB" "SELECT COUNT(*) FROM changes WHERE new_state = '"'down'"' AND no_backup = 1")" -ge 1 ]'
rr_check "its alert says no backup path answered" wait_for 15 has_alerts 'No backup path answered' $((no_backup_alerts + 1))
n0=$(grep -c 'run FAILED' "$LOGG")
rr_check "runs go on failing" wait_for 10 eval '[ "$(grep -c "run FAILED" "$LOGG")" -ge $((n0 + 3)) ]'
rr_expect_eq "nothing rewired without a backup path" "$ROUTE_A" "$(route)"
rr_expect_eq "no note while the gate is closed" 0 "$(notes)"
backup_start || rr_die "the backup relay did not restart"
rr_check "rewired to relay B once the backup relay answers" wait_for 15 route_is "$ROUTE_B"
rr_check "the note arrived" wait_for 15 eval '[ "$(notes)" -ge 1 ]'
note=$(grep -l 'backup path answers, mail now rerouted' "$T"/mail/* | head -1)
rr_check "the note says which [on_down] connectors were applied" \
	grep -q '^Connectors:  enabled site-b, disabled site-a' "$note"
rr_check "the note gives the routes now" eval 'grep -E "^  \* +" "$note" | grep -qF "$ROUTE_B"'
down_at=$(sqlite3 "$SDB" "SELECT at FROM changes WHERE new_state = 'down' ORDER BY id DESC LIMIT 1")
rr_check "the note names the change's time ($down_at)" grep -q "^Change: *DOWN at .*($down_at);" "$note"
# Exactly once: runs go on while DOWN, and none of them mails again.
n0=$(grep -c 'run FAILED' "$LOGG")
rr_check "more runs while DOWN" wait_for 10 eval '[ "$(grep -c "run FAILED" "$LOGG")" -ge $((n0 + 4)) ]'
rr_check "the note's row is sent" wait_for 10 eval \
	'[ "$(sqlite3 "$SDB" "SELECT COUNT(*) FROM alerts WHERE kind = '"'note'"' AND sent_usec IS NOT NULL")" = 1 ]'
rr_expect_eq "one note, once" 1 "$(notes)"
rr_expect_eq "one note row" 1 "$(sqlite3 "$SDB" "SELECT COUNT(*) FROM alerts WHERE kind = 'note'")"
rr_expect_eq "no change of state for the gate" $((downs + 1)) "$(changes_to down)"
rr_expect_eq "the connectors say changed_by $INST" "site-a|0|$INST site-b|1|$INST" \
	"$(sqlite3 "$TDB" "SELECT name || '|' || enabled || '|' || changed_by FROM send_connectors ORDER BY name" | tr '\n' ' ' | sed 's/ $//')"
rr_expect_eq "the gate's event says changed_by $INST" "$INST" \
	"$(sqlite3 "$SDB" "SELECT changed_by FROM events WHERE kind = 'gate' ORDER BY id DESC LIMIT 1")"
rr_wan_restore "$NS"
rr_check "UP again: relay A" wait_for 15 route_is "$ROUTE_A"
rr_expect_eq "still one note" 1 "$(notes)"
daemon_stop

if [ "$RR_FAILURES" -gt 0 ]; then
	rr_log "$RR_FAILURES check(s) failed; logs in $T"
	exit 1
fi
rr_log "all checks passed"
