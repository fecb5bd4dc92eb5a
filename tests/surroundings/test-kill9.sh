#!/bin/bash
# Issue 13, surroundings 4: `kill -9` at random moments in a flapping lab.
# The WAN flaps at random (0.3-1.5 s down, the same up); rerouterd (interval
# 200 ms, runs 1, hook and mail on) is started and SIGKILLed after a random
# 0.1-1.5 s, 50 times (RR_LONG=yes: 200). After every kill the state database
# must pass PRAGMA integrity_check. At the end rerouterd runs until nothing is
# pending, and every change of state must have its alert exactly once in the
# mailbox and its hook at most once (account.py; the counts are figures).
set -u
. "$RR_SRCDIR/tests/lib/common.sh"
. "$RR_SRCDIR/tests/lib/wan.sh"
. "$RR_SRCDIR/tests/lib/sink.sh"
. "$RR_SRCDIR/tests/lib/systemd.sh"
. "$RR_SRCDIR/tests/surroundings/sur.sh"

need_root
sur_skip_in_asan
rr_need_cmd sqlite3 smtp-sink python3 unshare ip
rr_private_mountns "$@"
rr_tmpdir
rr_trap

LOOPS=50
[ "${RR_LONG:-no}" = yes ] && LOOPS=200
LOOPS=${RR_KILL_LOOPS:-$LOOPS}
SUR_INTERVAL=200ms SUR_TIMEOUT=100ms SUR_RUNS=1
sur_lab 4
CONF=$T/rerouter.conf
LOG=$T/rerouterd.log
sur_conf "$CONF"
sur_init "$CONF"
sur_mailbox_start

rr_step "$LOOPS kill -9 loops in a flapping lab"
sur_flap_start 300 1500
bad=0
for i in $(seq 1 "$LOOPS"); do
	echo "=== loop $i" >>"$LOG"
	sur_daemon_start "$CONF" "$LOG"
	# The random moment of the kill is what is under test.
	sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", 0.1 + 1.4 * r / 32767 }')"
	kill -KILL "$SUR_DPID"
	wait "$SUR_DPID" 2>/dev/null
	rr_cleanup_pop
	ic=$(sur_integrity)
	if [ "$ic" != ok ]; then
		rr_fail "loop $i: integrity_check: $ic"
		bad=$((bad + 1))
		cp "$SUR_SDB" "$T/state-loop$i.db" 2>/dev/null
	fi
done
sur_flap_stop
rr_expect_eq "integrity_check ok after every kill" 0 "$bad"
changes=$(sur_changes)
rr_info "FIGURE: $changes changes of state over $LOOPS kills"
rr_check "the lab changed state (at least $((LOOPS / 5)) changes)" [ "$changes" -ge $((LOOPS / 5)) ]

rr_step "the end: the WAN up, rerouterd runs until nothing is pending"
rr_wan_restore "$SUR_NS"
sur_daemon_start "$CONF" "$LOG"
state_up() { [ "$(sqlite3 "$SUR_SDB" "SELECT state FROM agent_state")" = up ]; }
# First the change the restored WAN brings, then its steps: settled before it
# would leave that change's hook and alert for after the stop.
rr_check "UP again with the WAN restored" wait_for 30 state_up
steps_pending() { sqlite3 "$SUR_SDB" "SELECT COUNT(*) FROM change_steps WHERE status = 'pending'"; }
settled() { sur_no_alert_pending && [ "$(steps_pending)" = 0 ]; }
rr_check "every step and alert done" wait_for 60 settled
sur_daemon_stop
interrupted=$(sqlite3 "$SUR_SDB" "SELECT COUNT(*) FROM change_steps WHERE step = 'hook' AND status = 'failed' AND detail LIKE '%interrupted%'")
rr_info "FIGURE: hooks marked interrupted by a crash (not run again): $interrupted"
sur_account >"$T/account.out"
rc=$?
rr_info "FIGURE: $(cat "$T/account.out")"
rr_expect_eq "every alert exactly once, every hook at most once" 0 "$rc"
rr_check "integrity at the end" [ "$(sur_integrity)" = ok ]

if [ "$RR_FAILURES" -gt 0 ]; then
	rr_log "$RR_FAILURES check(s) failed; logs in $T"
	exit 1
fi
rr_log "all checks passed"
