#!/bin/bash
# Issue 13, surroundings 7: a soak on a fast-flapping lab. [transport]
# action = none, interval 100 ms, runs 1, the WAN flapping every 100-200 ms;
# hook and mail on (every change forks a hook and queues an alert). 500
# changes of state (RR_LONG=yes: 10,000). rerouterd's RSS and fd count are
# sampled after a warm-up of 50 changes and then every tenth of the soak;
# the fd count must stay the same and RSS flat (less than 2 MiB over the soak:
# SQLite's page cache, at most 2 MiB, fills as the database grows). Figures:
# start and end of both, and the samples.
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

CHANGES=500
[ "${RR_LONG:-no}" = yes ] && CHANGES=10000
CHANGES=${RR_SOAK_CHANGES:-$CHANGES}
WARMUP=50
SUR_INTERVAL=100ms SUR_TIMEOUT=50ms SUR_RUNS=1
sur_lab 7
CONF=$T/rerouter.conf
LOG=$T/rerouterd.log
sur_conf "$CONF"
sur_init "$CONF"
sur_mailbox_start

rr_step "warm-up: $WARMUP changes"
# No -v: 10,000 changes of debug lines would be the bulk of the work.
"$RERD" --allow-root -c "$CONF" </dev/null >>"$LOG" 2>&1 &
SUR_DPID=$!
rr_on_cleanup "rr_kill_pid $SUR_DPID 10"
sur_flap_start 100 200
rr_check "warm-up changes" wait_for 120 sur_has_changes "$WARMUP" || rr_die "the lab does not flap"
fd0=$(sur_fds "$SUR_DPID") rss0=$(sur_rss_kb "$SUR_DPID")
t0=$(rr_now_ms)
samples="$rss0"

rr_step "the soak: $CHANGES changes"
step=$((CHANGES / 10))
budget=$((CHANGES / 2 + 120))   # seconds: about 4 changes a second at worst
for k in $(seq 1 10); do
	if ! wait_for "$budget" sur_has_changes $((WARMUP + k * step)); then
		rr_fail "only $(sur_changes) changes after ${budget}s"
		break
	fi
	kill -0 "$SUR_DPID" 2>/dev/null || { rr_fail "rerouterd died"; break; }
	samples="$samples $(sur_rss_kb "$SUR_DPID")"
	[ "$(sur_fds "$SUR_DPID")" = "$fd0" ] || rr_info "fds at sample $k: $(sur_fds "$SUR_DPID")"
done
t1=$(rr_now_ms)
sur_flap_stop
rr_wan_restore "$SUR_NS"
rr_check "no alert left pending" wait_for 60 sur_no_alert_pending
# A run's check socket or the last mail's connection may still be open right
# after the last change: a leak stays, a transient goes within seconds.
fds_settled() { [ "$(sur_fds "$SUR_DPID")" -le $((fd0 + 1)) ]; }
wait_for 10 fds_settled
fd1=$(sur_fds "$SUR_DPID") rss1=$(sur_rss_kb "$SUR_DPID")
n=$(sur_changes)
rr_info "FIGURE: $((n - WARMUP)) changes in $(( (t1 - t0) / 1000 )) s; fds $fd0 -> $fd1; RSS $rss0 -> $rss1 KiB"
rr_info "FIGURE: RSS samples (KiB): $samples"
rr_info "FIGURE: $(rr_sink_count "$SUR_MAIL") alert mails, $(grep -c . "$SUR_HOOKLOG") hook runs"
# A sample may catch a transient fd (a database or socket open in a pass).
rr_check "fd count flat ($fd0 -> $fd1; one transient fd either way allowed)" [ "$fd1" -le $((fd0 + 1)) ]
# The state database's page cache fills first (bounded, 512 KiB): after that
# the RSS must stay level.
rss_half=$(echo $samples | cut -d' ' -f6)
rr_info "FIGURE: RSS growth over the second half of the soak: $((rss1 - rss_half)) KiB"
rr_check "RSS flat (less than 2 MiB of growth)" [ $((rss1 - rss0)) -lt 2048 ]
rr_check "RSS level over the second half (less than 512 KiB of growth)" [ $((rss1 - rss_half)) -lt 512 ]
sur_daemon_stop
rr_check "alerts exactly once, hooks at most once" sur_account
rr_check "integrity" [ "$(sur_integrity)" = ok ]

if [ "$RR_FAILURES" -gt 0 ]; then
	rr_log "$RR_FAILURES check(s) failed; logs in $T"
	exit 1
fi
rr_log "all checks passed"
