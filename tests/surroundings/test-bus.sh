#!/bin/bash
# Issue 13, surroundings 3: systemd's bus unavailable, and the transport job
# failing. The transport is a unit of a private `systemd --user` manager
# ([transport] bus = user, action = restart), a oneshot that counts its
# starts and fails while $T/fail exists.
#   A. the manager stopped (its socket gone) across a change of state: the
#      restart is retried with backoff, status shows "routing: transport: ...",
#      and once the manager is back the unit is started exactly once.
#   B. the unit's start failing across a change: retried with backoff
#      (attempt times are figures), visible in status; once it can start, it
#      starts exactly once.
set -u
. "$RR_SRCDIR/tests/lib/common.sh"
. "$RR_SRCDIR/tests/lib/wan.sh"
. "$RR_SRCDIR/tests/lib/sink.sh"
. "$RR_SRCDIR/tests/lib/systemd.sh"
. "$RR_SRCDIR/tests/surroundings/sur.sh"

need_root
rr_need_cmd sqlite3 python3 unshare ip /lib/systemd/systemd systemctl
rr_private_mountns "$@"
rr_tmpdir
rr_trap

UNIT=rr-sur3-transport.service
SUR_INTERVAL=300ms SUR_TIMEOUT=150ms SUR_RUNS=2 SUR_WITH_MAIL=no SUR_WITH_HOOK=no
SUR_TRANSPORT="unit = $UNIT
action = restart
bus = user
flush ="
sur_lab 3
CONF=$T/rerouter.conf
LOG=$T/rerouterd.log
SD=$T/systemd
ATTEMPTS=$T/unit-attempts
STARTS=$T/unit-starts
: >"$ATTEMPTS"
: >"$STARTS"

manager_start() {
	rr_systemd_user_start "$SD" || rr_die "no systemd --user"
	rr_user_unit "$UNIT" <<EOF || rr_die "cannot write $UNIT"
[Unit]
Description=rerouter surroundings: a transport that counts its starts
StartLimitIntervalSec=0

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStartPre=/bin/sh -c 'date +%%s.%%N >> $ATTEMPTS'
ExecStart=/bin/sh -c 'test ! -e $T/fail && date +%%s.%%N >> $STARTS'
EOF
}
manager_start
sur_conf "$CONF"
sur_init "$CONF"

starts() { grep -c . "$STARTS"; }
attempts() { grep -c . "$ATTEMPTS"; }
state_is() { [ "$(sqlite3 "$SUR_SDB" "SELECT state FROM agent_state" 2>/dev/null)" = "$1" ]; }
status_says() { "$RCTL" -c "$CONF" status 2>&1 | grep -Eq -- "$1"; }
routing_done() { [ "$(sqlite3 "$SUR_SDB" "SELECT COUNT(*) FROM routing WHERE pending_step IS NOT NULL")" = 0 ]; }
runs() { sqlite3 "$SUR_SDB" "SELECT COALESCE(MAX(id), 0) FROM runs"; }
runs_at_least() { [ "$(runs)" -ge "$1" ]; }
# quiet_for N: N more runs of the daemon pass (then nothing more is due).
quiet_for() { local r; r=$(runs); wait_for 30 runs_at_least $((r + $1)); }

rr_step "start: UP, the unit started by the first decision"
sur_daemon_start "$CONF" "$LOG"
rr_check "UP" wait_for 15 state_is up
rr_check "routing settled" wait_for 20 routing_done
s0=$(starts)
rr_info "unit starts so far: $s0"

rr_step "A. the manager stopped (no bus) across a change to DOWN"
rr_systemd_user_stop "$RR_SYSTEMD_PID"
rr_check "the manager does not answer" eval '! timeout 5 systemctl --user show -p Version >/dev/null 2>&1'
rr_wan_cut "$SUR_NS"
rr_check "DOWN decided without the bus" wait_for 15 state_is down
rr_check "status shows the transport step retried" wait_for 10 status_says '^  routing: transport: '
"$RCTL" -c "$CONF" status >"$T/status-a.out" 2>&1
rr_info "$(grep 'routing:' "$T/status-a.out" | head -1)"
n_fail_log() { grep -c 'routing: transport: ' "$LOG"; }
rr_check "a second attempt (backoff 2 s)" wait_for 10 \
	eval '[ "$(sqlite3 "$SUR_SDB" "SELECT attempts FROM routing")" -ge 2 ]'
rr_info "FIGURE: attempts without the bus: $(sqlite3 "$SUR_SDB" "SELECT attempts FROM routing"); the error logged $(n_fail_log) time(s)"
manager_start
t0=$(rr_now_ms)
rr_check "the unit was started once the bus is back" wait_for 70 eval '[ "$(starts)" -ge $((s0 + 1)) ]'
rr_info "FIGURE: the restart came $(( $(rr_now_ms) - t0 )) ms after the manager was back (backoff 2 s doubling)"
rr_check "routing settled" wait_for 20 routing_done
rr_check "status no longer shows routing pending" eval '! status_says "routing: "'
quiet_for 10
rr_expect_eq "exactly one start for the change" $((s0 + 1)) "$(starts)"
rr_check "the end of the retries is logged" grep -q 'routing: done after' "$LOG"

rr_step "B. the unit failing across a change to UP"
touch "$T/fail"
a0=$(attempts) s1=$(starts)
rr_wan_restore "$SUR_NS"
rr_check "UP decided" wait_for 15 state_is up
rr_check "the failed job is in status" wait_for 10 status_says '^  routing: transport: .*'
"$RCTL" -c "$CONF" status >"$T/status-b.out" 2>&1
rr_info "$(grep 'routing:' "$T/status-b.out" | head -1)"
rr_check "retried: 3 attempts of the unit" wait_for 20 eval '[ "$(attempts)" -ge $((a0 + 3)) ]'
rr_expect_eq "no successful start while it fails" "$s1" "$(starts)"
rr_info "FIGURE: attempt gaps (s): $(tail -n +$((a0 + 1)) "$ATTEMPTS" | awk 'NR > 1 { printf "%.1f ", $1 - p } { p = $1 }')"
rm -f "$T/fail"
rr_check "started once it can" wait_for 70 eval '[ "$(starts)" -ge $((s1 + 1)) ]'
rr_check "routing settled" wait_for 20 routing_done
quiet_for 10
rr_expect_eq "exactly one successful start" $((s1 + 1)) "$(starts)"
rr_info "FIGURE: the failing unit was tried $(( $(attempts) - a0 )) times in all"
sur_daemon_stop
rr_check "the daemon's log has no crash" eval '! grep -Eq "AddressSanitizer|runtime error|Segmentation" "$LOG"'

if [ "$RR_FAILURES" -gt 0 ]; then
	rr_log "$RR_FAILURES check(s) failed; logs in $T"
	exit 1
fi
rr_log "all checks passed"
