#!/bin/bash
# Issue 13: rerouterd under valgrind (memcheck) for 60 s of a flapping lab
# (RR_LONG=yes: 240 s): changes of state, hooks, alert mail, two reloads (one
# broken), the mailbox down for a while, then SIGTERM. valgrind must report no
# error and no definite leak (--error-exitcode, --errors-for-leak-kinds=definite).
set -u
. "$RR_SRCDIR/tests/lib/common.sh"
. "$RR_SRCDIR/tests/lib/wan.sh"
. "$RR_SRCDIR/tests/lib/sink.sh"
. "$RR_SRCDIR/tests/lib/systemd.sh"
. "$RR_SRCDIR/tests/surroundings/sur.sh"

need_root
sur_skip_in_asan
rr_need_cmd valgrind sqlite3 smtp-sink python3 unshare ip
rr_private_mountns "$@"
rr_tmpdir
rr_trap

SECS=60
[ "${RR_LONG:-no}" = yes ] && SECS=240
SECS=${RR_VALGRIND_SECS:-$SECS}
export RR_TEST_ALERT_BACKOFF_USEC=200000,2000000
SUR_INTERVAL=500ms SUR_TIMEOUT=300ms SUR_RUNS=1
sur_lab 8
CONF=$T/rerouter.conf
LOG=$T/rerouterd.log
VG=$T/valgrind.log
sur_conf "$CONF"
sur_init "$CONF"
sur_mailbox_start

runs() { sqlite3 "$SUR_SDB" "SELECT COALESCE(MAX(id), 0) FROM runs" 2>/dev/null || echo 0; }
runs_at_least() { [ "$(runs)" -ge "$1" ]; }

rr_step "rerouterd under valgrind for ${SECS} s of flapping"
sur_daemon_start "$CONF" "$LOG" valgrind -q --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite --show-leak-kinds=definite --log-file="$VG"
rr_check "probing under valgrind" wait_for 60 runs_at_least 3 || rr_die "no runs: $(tail -5 "$LOG")"
sur_flap_start 1000 2500
t0=$(rr_now_ms)
phase=0
while [ $(( $(rr_now_ms) - t0 )) -lt $((SECS * 1000)) ]; do
	el=$(( ($(rr_now_ms) - t0) / 1000 ))
	if [ $phase = 0 ] && [ $el -ge $((SECS / 4)) ]; then
		kill -HUP "$SUR_DPID"; phase=1
	elif [ $phase = 1 ] && [ $el -ge $((SECS / 3)) ]; then
		cp "$CONF" "$CONF.good"; echo '[agent' >"$CONF"; kill -HUP "$SUR_DPID"; phase=2
	elif [ $phase = 2 ] && [ $el -ge $((SECS / 2)) ]; then
		cp "$CONF.good" "$CONF"; sur_mailbox_stop; phase=3
	elif [ $phase = 3 ] && [ $el -ge $((SECS * 3 / 4)) ]; then
		sur_mailbox_start; phase=4
	fi
	kill -0 "$SUR_DPID" 2>/dev/null || break
	sleep 0.5   # the length of the lab's run is the thing under test
done
sur_flap_stop
rr_wan_restore "$SUR_NS"
rr_check "the alerts went out" wait_for 60 sur_no_alert_pending
rr_info "FIGURE: $(sur_changes) changes of state, $(runs) runs, $(grep -c . "$SUR_HOOKLOG") hooks, $(rr_sink_count "$SUR_MAIL") mails under valgrind"
kill -TERM "$SUR_DPID"
wait_for 60 eval '! kill -0 $SUR_DPID 2>/dev/null' || rr_fail "rerouterd did not end within 60 s of SIGTERM"
wait "$SUR_DPID"
rc=$?
rr_expect_eq "valgrind: no error, no definite leak (exit 0)" 0 "$rc"
# With -q valgrind writes only its reports (==PID== lines) and its own
# warnings (--PID--: e.g. pidfd_open, which valgrind 3.19 does not know;
# rerouterd then takes its fallback for hooks).
if grep -q '^==[0-9]*==' "$VG"; then
	grep '^==[0-9]*==' "$VG" | head -60 >&2
	rr_fail "valgrind reported errors"
else
	rr_ok "no valgrind report"
fi
grep -q '^--[0-9]*-- WARNING' "$VG" &&
	rr_info "valgrind's warnings: $(grep '^--[0-9]*-- WARNING' "$VG" | sed 's/^--[0-9]*-- //' | sort | uniq -c | tr -s ' \n' ' ')"
rr_check "alerts exactly once" sur_account

if [ "$RR_FAILURES" -gt 0 ]; then
	rr_log "$RR_FAILURES check(s) failed; logs in $T"
	exit 1
fi
rr_log "all checks passed"
