#!/bin/bash
# Issue 13, surroundings 2: the mail server down for "an hour", then back.
# The alert schedule is shortened by RR_TEST_ALERT_BACKOFF_USEC to 1/300 of
# the real one (first retry 100 ms instead of 30 s, cap 3 s instead of
# 15 min), so an hour of outage is 12 s. Changes of state happen while the
# mailbox is down, rerouterd is stopped (SIGTERM) and killed (SIGKILL) in
# between; the mailbox comes back once while rerouterd is stopped and once
# while it runs. Every alert must arrive exactly once (account.py), and the
# undelivered ones are shown by rerouterctl status meanwhile.
set -u
. "$RR_SRCDIR/tests/lib/common.sh"
. "$RR_SRCDIR/tests/lib/wan.sh"
. "$RR_SRCDIR/tests/lib/sink.sh"
. "$RR_SRCDIR/tests/lib/systemd.sh"
. "$RR_SRCDIR/tests/surroundings/sur.sh"

need_root
rr_need_cmd sqlite3 smtp-sink python3 unshare ip
rr_private_mountns "$@"
rr_tmpdir
rr_trap

HOUR_SECS=12  # an hour at 1/300
export RR_TEST_ALERT_BACKOFF_USEC=100000,3000000
SUR_INTERVAL=300ms SUR_TIMEOUT=150ms SUR_RUNS=2
sur_lab 1
CONF=$T/rerouter.conf
LOG=$T/rerouterd.log
sur_conf "$CONF"
sur_init "$CONF"
sur_mailbox_start

state_is() { [ "$(sqlite3 "$SUR_SDB" "SELECT state FROM agent_state" 2>/dev/null)" = "$1" ]; }
mails() { rr_sink_count "$SUR_MAIL"; }
attempts() { sqlite3 "$SUR_SDB" "SELECT COALESCE(MAX(attempts), 0) FROM alerts WHERE sent_usec IS NULL"; }
attempts_at_least() { [ "$(attempts)" -ge "$1" ]; }
# change_to STATE: cut or restore the WAN and wait for the decision.
change_to() {
	local n
	n=$(sur_changes)
	if [ "$1" = down ]; then rr_wan_cut "$SUR_NS"; else rr_wan_restore "$SUR_NS"; fi
	wait_for 20 sur_has_changes $((n + 1)) && wait_for 5 state_is "$1"
}

rr_step "start: the first state's alert arrives"
sur_daemon_start "$CONF" "$LOG"
rr_check "the daemon took the test schedule" wait_for 5 grep -q 'RR_TEST_ALERT_BACKOFF_USEC: retries from 100000' "$LOG"
rr_check "UP" wait_for 15 state_is up
# The alert row exists only once the change's steps are done (or max_wait):
# wait for the mail itself, then for nothing pending.
rr_check "its alert arrived" rr_sink_wait "$SUR_MAIL" 1 15
rr_check "nothing pending" wait_for 15 sur_no_alert_pending
rr_expect_eq "one mail" 1 "$(mails)"

rr_step "outage 1 ($HOUR_SECS s = an hour): the mailbox down; changes; SIGTERM and SIGKILL of rerouterd between them"
sur_mailbox_stop
t0=$(rr_now_ms)
rr_check "DOWN while the mailbox is down" change_to down
rr_check "the alert is retried (2 attempts)" wait_for 10 attempts_at_least 2
sur_daemon_stop
sur_daemon_start "$CONF" "$LOG"
rr_check "UP after a restart" change_to up
rr_check "retried after the restart" wait_for 10 attempts_at_least 3
status_pending() { "$RCTL" -c "$CONF" status 2>&1 | grep -q "alerts not yet delivered: $1"; }
rr_check "status shows the undelivered alerts" wait_for 5 status_pending 2
kill -KILL "$SUR_DPID"; wait "$SUR_DPID" 2>/dev/null
sur_daemon_start "$CONF" "$LOG"
rr_check "DOWN after a SIGKILL" change_to down
# The rest of the hour, with the daemon retrying.
while [ $(( $(rr_now_ms) - t0 )) -lt $((HOUR_SECS * 1000)) ]; do
	sur_alerts_pending >/dev/null; sleep 0.5   # outage length: the thing under test
done
a1=$(attempts)
rr_info "FIGURE: outage 1: $a1 attempts of the oldest alert in $HOUR_SECS s (an hour at 1/300), $(grep -c 'alert: mail not sent' "$LOG") failures logged"
rr_check "retried with backoff, not at every run (fewer attempts than runs)" \
	[ "$a1" -ge 3 ] && [ "$a1" -lt $((HOUR_SECS * 1000 / 300)) ]
rr_expect_eq "nothing reached the mailbox meanwhile" 1 "$(mails)"

rr_step "the mailbox back while rerouterd is stopped; rerouterd starts: the pending alerts go once"
sur_daemon_stop
sur_mailbox_start
sur_daemon_start "$CONF" "$LOG"
rr_check "no alert pending after the start" wait_for 20 sur_no_alert_pending
rr_check "every alert so far exactly once" sur_account

rr_step "outage 2: the mailbox down, changes, a restart; the mailbox back while rerouterd runs"
sur_mailbox_stop
t0=$(rr_now_ms)
n0=$(sur_changes)
rr_check "UP" change_to up
kill -KILL "$SUR_DPID"; wait "$SUR_DPID" 2>/dev/null
sur_daemon_start "$CONF" "$LOG"
rr_check "DOWN" change_to down
rr_check "UP" change_to up
while [ $(( $(rr_now_ms) - t0 )) -lt $((HOUR_SECS * 1000)) ]; do
	sur_alerts_pending >/dev/null; sleep 0.5
done
rr_info "FIGURE: outage 2: $(attempts) attempts of the oldest alert"
m=$(mails)
sur_mailbox_start
rr_check "delivered once the mailbox is back (at most the cap later)" wait_for 20 sur_no_alert_pending
rr_info "FIGURE: outage 2's $(( $(sur_changes) - n0 )) alerts came in $(( $(mails) - m )) mail(s)"
sur_daemon_stop
rr_check "every alert exactly once, every hook at most once" sur_account
rr_check "state database intact" [ "$(sur_integrity)" = ok ]

if [ "$RR_FAILURES" -gt 0 ]; then
	rr_log "$RR_FAILURES check(s) failed; logs in $T"
	exit 1
fi
rr_log "all checks passed"
