#!/bin/bash
# Day-to-day operation (issue 14) against the real daemon: a WAN in a network
# namespace (an HTTP and a TCP target) that the test cuts, a backup relay on
# loopback that it stops, the databases read back with sqlite3.
#   A. rerouterctl check in each of its four states: OK (UP), WARNING (DOWN,
#      mail rerouted; a maintenance window, with heartbeats through it),
#      CRITICAL (DOWN with no backup path; a daemon silent for 3 intervals),
#      UNKNOWN (no state yet; not a database; a bad configuration)
#   B. status, history, connectors --json: parsed, keys asserted
#   C. the metrics textfile: promtool check metrics, values across a cut
#   D. the alert's postqueue -j runs off the loop: runs go on while it hangs
set -u
. "$RR_SRCDIR/tests/lib/common.sh"
. "$RR_SRCDIR/tests/lib/wan.sh"
. "$RR_SRCDIR/tests/lib/systemd.sh"
. "$RR_SRCDIR/tests/lib/sink.sh"

need_root
rr_need_cmd sqlite3 python3 unshare ip jq promtool smtp-sink
rr_private_mountns "$@"
rr_tmpdir
rr_trap

T=$RR_TMPDIR
RERD=$RR_BUILDDIR/rerouterd
RCTL=$RR_BUILDDIR/rerouterctl
NS=rr-ops
WAN_IP=10.231.60.2
BACKUP=127.0.60.2
CONF=$T/rerouter.conf
TDB=$T/db/transport.db
SDB=$T/db/state.db
PROM=$T/prom/rerouter.prom
LOG=$T/rerouterd.log
HOOKLOG=$T/hook.log
MAILBOX=127.0.60.3:20062
mkdir -p "$T/db" "$T/prom" "$T/mail"
cat >"$T/hook.sh" <<EOF
#!/bin/sh
echo "\$1 id=\$REROUTER_CHANGE_ID enabled=\$REROUTER_ENABLED disabled=\$REROUTER_DISABLED reason=\$REROUTER_REASON" >>"$HOOKLOG"
EOF
chmod 755 "$T/hook.sh"
: >"$HOOKLOG"

rr_step "WAN namespace, targets, backup relay"
rr_wan_start "$NS" rrops0 rrops1 10.231.60.1/24 "$WAN_IP/24" || rr_die "no WAN namespace"
rr_wan_http_server "$NS" ops-www "$WAN_IP" 8060 "$T/www" || rr_die "no web target"
rr_wan_tcp_listener "$NS" ops-gw "$WAN_IP" 2560 || rr_die "no tcp target"
BPID=""
backup_start() {
	rr_spawn ops-backup python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 20060)); s.listen(64)
while True:
    c, _ = s.accept(); c.close()
' "$BACKUP"
	BPID=$RR_PID
	wait_for 5 rr_tcp_open "$BACKUP" 20060
}
backup_stop() { rr_kill_pid "$BPID"; BPID=""; }
backup_start || rr_die "no backup relay"
rr_sink_start ops-mail "$T/mail" "$MAILBOX" || rr_die "no alert mailbox"

write_conf() { # FILE [EXTRA-SECTIONS]
	cat >"$1" <<EOF
[agent]
interval = 300ms
failed_checks = 1
runs = 2
failed_runs = 2
passed_runs = 2
state_db = $SDB

[check "web"]
type = http
target = http://$WAN_IP:8060/
timeout = 250ms

[check "gw"]
type = tcp
target = $WAN_IP:2560
timeout = 250ms

[check "relay-b"]
type = tcp
target = $BACKUP:20060
timeout = 250ms
role = backup

[on_down]
disable = site-a
enable = site-b

[on_up]
enable = site-a
disable = site-b

[transport]
database = $TDB
action = none
flush =

[metrics]
textfile = $PROM

[hook]
on_change = $T/hook.sh
timeout = 5s

[mail]
to = admin@example.org
from = rerouter@hub.example.org
server = smtp://$MAILBOX
starttls = never
min_gap = 0
max_wait = 2s
${2:-}
EOF
}
write_conf "$CONF"
"$RERD" --check-config -c "$CONF" >/dev/null || rr_die "config rejected: $("$RERD" --check-config -c "$CONF")"

DPID=""
daemon_start() { # CONF
	"$RERD" -v --allow-root -c "$1" </dev/null >>"$LOG" 2>&1 &
	DPID=$!
	rr_on_cleanup "rr_kill_pid $DPID"
}
daemon_stop() { rr_kill_pid "$DPID"; DPID=""; }

# check_is CODE PATTERN [CONF]: rerouterctl check exits CODE and prints one
# line that matches PATTERN.
CK_OUT=""
check_is() {
	CK_OUT=$("$RCTL" -c "${3:-$CONF}" check 2>/dev/null)
	local rc=$?
	[ "$rc" = "$1" ] && [ "$(printf '%s\n' "$CK_OUT" | wc -l)" = 1 ] && printf '%s' "$CK_OUT" | grep -q -- "$2"
}
# The plugin line: SERVICE STATUS - text [| label=value[UOM][;warn;crit] ...]
plugin_line() {
	printf '%s' "$CK_OUT" |
		grep -Eq '^REROUTER (OK|WARNING|CRITICAL|UNKNOWN) - [^|]+( \| ([a-z_]+=([0-9.]+s?|U)(;[0-9.]*)*( |$))+)?$'
}
out_has() { printf '%s' "$CK_OUT" | grep -q -- "$1"; }
# metric NAME[{LABELS}]: its value in the textfile.
metric() { awk -v m="$1" '$1 == m { print $2 }' "$PROM"; }
metric_is() { [ "$(metric "$1")" = "$2" ]; }
promtool_ok() {
	local out
	out=$(promtool check metrics <"$PROM" 2>&1) || { rr_info "$out"; return 1; }
	[ -z "$out" ] || { rr_info "promtool: $out"; return 1; }
}

# ---------------------------------------------------------------------------
rr_step "A. check: UNKNOWN before anything ran"
rr_check "no state database: UNKNOWN (3)" check_is 3 "REROUTER UNKNOWN - "
rr_check "the line follows the plugin convention" plugin_line
"$RCTL" -c "$CONF" init >/dev/null || rr_die "rerouterctl init failed"
sqlite3 "$TDB" "INSERT INTO send_connectors (name, smart_host, cost, enabled) VALUES
	('site-a', '[10.231.60.2]:25', 1, 1), ('site-b', '[127.0.60.2]:20060', 2, 0)"
rr_check "a state database without a state: UNKNOWN (3)" check_is 3 "rerouterd has not run yet"
for i in $(seq 200); do echo "not a database"; done >"$T/garbage.db"
sed "s|^state_db = .*|state_db = $T/garbage.db|" "$CONF" >"$T/garbage.conf"
rr_check "not a database: UNKNOWN (3)" check_is 3 "UNKNOWN - cannot" "$T/garbage.conf"
printf '[agent]\ninterval = soon\n' >"$T/bad.conf"
rr_check "a bad configuration: UNKNOWN (3)" check_is 3 "UNKNOWN - cannot load the configuration" "$T/bad.conf"
rr_check "a usage error: UNKNOWN (3)" eval '"$RCTL" -c "$CONF" check extra >/dev/null 2>&1; [ $? = 3 ]'

rr_step "A. check: OK while UP"
daemon_start "$CONF"
rr_check "UP: OK (0)" wait_for 10 check_is 0 "REROUTER OK - link UP since"
rr_info "$CK_OUT"
rr_check "OK follows the plugin convention" plugin_line
rr_check "perfdata: link_up=1, nothing pending" out_has "| link_up=1 .*steps_pending=0 alerts_queued=0 hold=0 gate_closed=0"

rr_step "C. the metrics textfile while UP"
rr_check "rerouter_link_up 1" wait_for 5 metric_is rerouter_link_up 1
rr_check "promtool check metrics: clean" promtool_ok
rr_expect_eq "rerouter_changes_total{to=\"up\"}" 1 "$(metric 'rerouter_changes_total{to="up"}')"
rr_expect_eq "rerouter_check_up web" 1 "$(metric 'rerouter_check_up{check="web",type="http",role="link"}')"
rr_expect_eq "rerouter_check_up relay-b" 1 "$(metric 'rerouter_check_up{check="relay-b",type="tcp",role="backup"}')"
rr_expect_eq "rerouter_run_failed" 0 "$(metric rerouter_run_failed)"
rr_expect_eq "rerouter_hold" 0 "$(metric rerouter_hold)"
# The first file after the change is written while its steps are pending.
rr_check "rerouter_steps_pending falls to 0" wait_for 5 metric_is rerouter_steps_pending 0
rr_check "rerouter_state_since_seconds is a Unix time" eval '[ "$(metric rerouter_state_since_seconds | cut -d. -f1)" -gt 1700000000 ]'
rr_check "no temporary file left beside it" eval '[ "$(ls "$T/prom" | wc -l)" = 1 ]'

rr_step "A. check: WARNING while DOWN with mail rerouted"
rr_wan_cut "$NS"
rr_check "DOWN, backup answers: WARNING (1)" wait_for 10 check_is 1 "link DOWN since .*: mail is rerouted"
rr_info "$CK_OUT"
rr_check "WARNING follows the plugin convention" plugin_line
rr_check "perfdata link_up=0" out_has "| link_up=0 "
rr_step "C. the metrics textfile across the cut"
rr_check "rerouter_link_up 0" wait_for 5 metric_is rerouter_link_up 0
rr_check "promtool check metrics: clean" promtool_ok
rr_expect_eq "rerouter_changes_total{to=\"down\"}" 1 "$(metric 'rerouter_changes_total{to="down"}')"
rr_expect_eq "rerouter_check_up web" 0 "$(metric 'rerouter_check_up{check="web",type="http",role="link"}')"
rr_expect_eq "rerouter_check_up relay-b still 1" 1 "$(metric 'rerouter_check_up{check="relay-b",type="tcp",role="backup"}')"
rr_expect_eq "rerouter_run_failed" 1 "$(metric rerouter_run_failed)"
id_down=$(sqlite3 "$SDB" "SELECT MAX(id) FROM changes WHERE new_state = 'down'")
hook_down() { grep -q "^down id=$id_down " "$HOOKLOG"; }
rr_check "the hook ran for the change to DOWN" wait_for 10 hook_down
rr_expect_eq "the hook's environment" "down id=$id_down enabled=site-b disabled=site-a reason=decided by the window's runs" \
	"$(grep "^down id=$id_down " "$HOOKLOG")"
mail_down() { grep -l "is DOWN" "$T"/mail/* 2>/dev/null | head -1; }
rr_check "the DOWN alert was delivered" wait_for 10 eval '[ -n "$(mail_down)" ]'
rr_check "the alert has the route of * now" grep -q '^  \*  *smtp:\[127.0.60.2\]:20060' "$(mail_down)"
rr_check "the alert has the deferred queue (or why not)" grep -Eq '^Deferred queue: ([0-9]+ messages?|unknown \(postqueue -j: .*\))' "$(mail_down)"
rr_info "$(grep -A3 '^Routes now' "$(mail_down)")"
rr_wan_restore "$NS"
rr_check "UP again: OK (0)" wait_for 10 check_is 0 "REROUTER OK"

rr_step "A. check: CRITICAL while DOWN with the backup gate closed"
backup_stop
rr_wan_cut "$NS"
rr_check "DOWN, no backup path: CRITICAL (2)" wait_for 10 check_is 2 "no backup path answers: mail is NOT rerouted"
rr_info "$CK_OUT"
rr_check "CRITICAL follows the plugin convention" plugin_line
rr_check "perfdata gate_closed=1" out_has "gate_closed=1"
id_gate=$(sqlite3 "$SDB" "SELECT MAX(id) FROM changes WHERE new_state = 'down'")
hook_gate() { grep -q "^down id=$id_gate " "$HOOKLOG"; }
rr_check "the hook ran for the gate-closed change" wait_for 10 hook_gate
rr_expect_eq "nothing enabled or disabled, and the reason says why" \
	"down id=$id_gate enabled= disabled= reason=decided by the window's runs; no backup path answered: nothing rewired" \
	"$(grep "^down id=$id_gate " "$HOOKLOG")"
backup_start || rr_die "no backup relay"
rr_check "the gate reopens at a run: WARNING (1)" wait_for 10 check_is 1 "mail is rerouted"
rr_wan_restore "$NS"
rr_check "UP again: OK (0)" wait_for 10 check_is 0 "REROUTER OK"

rr_step "B. status and history --json"
S=$("$RCTL" -c "$CONF" status --json)
rr_expect_eq "status --json exits 0 while UP" 0 $?
rr_check "status --json parses (python3 -m json.tool)" eval 'printf "%s" "$S" | python3 -m json.tool >/dev/null'
rr_expect_eq "status keys" "daemon,gate_closed,hold,last_run,pending,since,since_seconds,state,window" \
	"$(printf '%s' "$S" | jq -r 'keys | join(",")')"
rr_expect_eq "state" up "$(printf '%s' "$S" | jq -r .state)"
rr_check "since is ISO 8601 UTC" eval 'printf "%s" "$S" | jq -e ".since | test(\"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$\")" >/dev/null'
rr_expect_eq "durations are numbers" "number,number" "$(printf '%s' "$S" | jq -r '[(.since_seconds|type), (.daemon.heartbeat_age_seconds|type)] | join(",")')"
rr_expect_eq "the daemon's pid" "$DPID" "$(printf '%s' "$S" | jq -r .daemon.pid)"
rr_expect_eq "window keys" "failed,failed_runs,passed,passed_runs,runs,size" "$(printf '%s' "$S" | jq -r '.window | keys | join(",")')"
rr_expect_eq "last run's check keys" "duration_seconds,name,outcome,passed,reason,role,target,type" \
	"$(printf '%s' "$S" | jq -r '.last_run.checks[0] | keys | join(",")')"
rr_expect_eq "last run's checks" "web,gw,relay-b" "$(printf '%s' "$S" | jq -r '[.last_run.checks[].name] | join(",")')"
rr_expect_eq "pending" '{"routing":null,"steps":0,"alerts_queued":0}' "$(printf '%s' "$S" | jq -c .pending)"
H=$("$RCTL" -c "$CONF" history --json -n 10)
rr_expect_eq "history --json exits 0" 0 $?
rr_check "history --json parses" eval 'printf "%s" "$H" | python3 -m json.tool >/dev/null'
rr_expect_eq "the changes, newest first" "down->up,up->down,down->up,up->down,unknown->up" \
	"$(printf '%s' "$H" | jq -r '[.history[] | select(.type == "change") | "\(.from)->\(.to)"] | join(",")')"
rr_expect_eq "change keys" "at,from,id,no_backup,previous_held_seconds,reason,steps,to,type" \
	"$(printf '%s' "$H" | jq -r '[.history[] | select(.type == "change")][0] | keys | join(",")')"
rr_expect_eq "the gate change says no_backup" true "$(printf '%s' "$H" | jq -r '[.history[] | select(.type == "change" and .to == "down")][0].no_backup')"
rr_expect_eq "the gate event is listed" rerouterd "$(printf '%s' "$H" | jq -r '[.history[] | select(.type == "event" and .event == "gate")][0].changed_by')"

rr_step "A. check: CRITICAL when the daemon falls silent"
kill -STOP "$DPID"
rr_check "silent for 3 intervals: CRITICAL (2)" wait_for 10 check_is 2 "no sign of life from rerouterd"
rr_info "$CK_OUT"
kill -CONT "$DPID"
rr_check "alive again: OK (0)" wait_for 10 check_is 0 "REROUTER OK"
daemon_stop
rr_check "stopped: CRITICAL (2)" wait_for 10 check_is 2 "no sign of life from rerouterd"

rr_step "A. check: WARNING through a maintenance window, heartbeats go on"
h=$(date +%-H)
# Its own directory: beside rerouter.conf, naming the same connectors, it
# would be another instance to --check-config.
mkdir -p "$T/mw"
write_conf "$T/mw/mw.conf" "[maintenance \"ops-test\"]
days = mon-sun
start = $(printf '%02d:00' $(( (h + 23) % 24 )))
end = $(printf '%02d:00' $(( (h + 2) % 24 )))"
"$RERD" --check-config -c "$T/mw/mw.conf" >/dev/null || rr_die "window config rejected: $("$RERD" --check-config -c "$T/mw/mw.conf")"
daemon_start "$T/mw/mw.conf"
rr_check "in a window: WARNING (1)" wait_for 10 check_is 1 "maintenance window ops-test" "$T/mw/mw.conf"
hb0=$(sqlite3 "$SDB" "SELECT heartbeat_usec FROM agent_state")
runs0=$(sqlite3 "$SDB" "SELECT MAX(id) FROM runs")
beyond() { [ "$(sqlite3 "$SDB" "SELECT heartbeat_usec FROM agent_state")" -gt $(( hb0 + 4 * 300000 )) ]; }
rr_check "the heartbeat moves on past 3 intervals inside the window" wait_for 10 beyond
rr_check "still WARNING, not CRITICAL, in the window" check_is 1 "maintenance window" "$T/mw/mw.conf"
rr_check "no sign-of-life complaint in the window" eval '! out_has "no sign of life"'
rr_check "no run in the window" eval '[ "$(sqlite3 "$SDB" "SELECT MAX(id) FROM runs")" = "$runs0" ]'
daemon_stop

rr_step "D. the alert's postqueue -j never holds the loop"
# A postqueue that answers only when the test lets it: meanwhile the daemon
# must go on running its checks (runs rows keep coming).
cat >"$T/postqueue" <<EOF
#!/bin/sh
: >"$T/pq.started"
while [ -e "$T/pq.hold" ]; do sleep 0.05; done
printf '%s\n' '{"queue_name": "deferred", "queue_id": "A1"}' '{"queue_name":"active"}' '{"queue_name" : "deferred"}'
EOF
chmod 755 "$T/postqueue"
: >"$T/pq.hold"
rm -f "$T/pq.started"
export RR_TEST_POSTQUEUE=$T/postqueue
daemon_start "$CONF"
unset RR_TEST_POSTQUEUE
rr_check "UP at the start" wait_for 10 check_is 0 "REROUTER OK"
rr_wan_cut "$NS"
rr_check "the DOWN alert is being composed: postqueue started" wait_for 15 test -e "$T/pq.started"
runs0=$(sqlite3 "$SDB" "SELECT MAX(id) FROM runs")
more_runs() { [ "$(sqlite3 "$SDB" "SELECT MAX(id) FROM runs")" -ge $((runs0 + 2)) ]; }
rr_check "runs go on while postqueue has not answered" wait_for 10 more_runs
rr_check "postqueue is still held: the runs did not wait for it" test -e "$T/pq.hold"
rm -f "$T/pq.hold"
mail_q() { grep -l "^Deferred queue: 2 messages (postqueue -j)" "$T"/mail/* 2>/dev/null | head -1; }
rr_check "the alert carries postqueue's count once it answered" wait_for 15 eval '[ -n "$(mail_q)" ]'
# Now a postqueue that fails as it does with Postfix stopped: its complaint
# goes into the UP alert.
cat >"$T/postqueue" <<EOF
#!/bin/sh
echo "postqueue: fatal: Queue report unavailable - mail system is down" >&2
exit 69
EOF
rr_wan_restore "$NS"
rr_check "UP again" wait_for 10 check_is 0 "REROUTER OK"
mail_qerr() { grep -l "^Deferred queue: unknown (postqueue -j: postqueue: fatal: Queue report unavailable - mail system is down)" "$T"/mail/* 2>/dev/null | head -1; }
rr_check "the UP alert says why the queue is unknown, in postqueue's words" wait_for 15 eval '[ -n "$(mail_qerr)" ]'
daemon_stop

if [ "$RR_FAILURES" -gt 0 ]; then
	rr_log "$RR_FAILURES check(s) failed; logs in $T"
	exit 1
fi
rr_log "all checks passed"
