#!/bin/bash
# End-to-end: the whole lab (tests/lab/lab.sh) through a WAN failure and its
# recovery, asserting every link of the chain: votes, state, connectors and
# routes, Postfix restarts, mail at the right relay and none lost, alerts,
# hook, journal. Then the cases users hit: a broken config on SIGHUP, a
# maintenance window covering now, the WAN cut while relay B is down too.
# Prints the measured failover and recovery times.
# Env: RR_SRCDIR, RR_BUILDDIR, RR_TMPDIR (tests/run). Root. Exit 0/77/1.
set -u
RR_SRCDIR=${RR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
RR_BUILDDIR=${RR_BUILDDIR:-$RR_SRCDIR/build}
for f in common wan sink systemd postfix; do . "$RR_SRCDIR/tests/lib/$f.sh"; done
need_root
rr_private_mountns "$@"
rr_need_cmd smtp-sink postfix postconf sendmail postqueue sqlite3 python3 ip unshare journalctl \
	systemctl /lib/systemd/systemd /lib/systemd/systemd-journald
[ -x "$RR_BUILDDIR/rerouterd" ] && [ -x "$RR_BUILDDIR/rerouterctl" ] ||
	rr_skip "no rerouterd/rerouterctl in $RR_BUILDDIR (build first)"
rr_trap
rr_tmpdir
. "$RR_SRCDIR/tests/lab/lab.sh"

lab_start
case $? in
0) ;;
77) rr_skip "the daemon's parts are not all merged yet (a stub says 'not implemented')" ;;
*) rr_die "the lab did not start (logs under $RR_TMPDIR)" ;;
esac

secs() { awk -v ms="$1" 'BEGIN { printf "%.1f s", ms / 1000 }'; }
show() { # CMD...: a command's output, indented, in the test log
	"$@" 2>&1 | sed 's/^/    | /' >&2
}
hook_lines() { if [ -f "$LAB_HOOK_OUT" ]; then wc -l <"$LAB_HOOK_OUT"; else echo 0; fi; }
hook_at_least() { [ "$(hook_lines)" -ge "$1" ]; }
starts_at_least() { [ "$(rr_postfix_starts)" -ge "$1" ]; }

# ---------------------------------------------------------------------------
rr_step "1. link UP: connectors, routes, a mail to relay A"
rr_expect_eq "connectors at start" "site-a=1 site-b=0 route=$LAB_ROUTE_A" "$(lab_connectors_line)"
show lab_ctl connectors
starts0=$(rr_postfix_starts)
pid0=$(lab_unit_pid)
rr_expect_eq "Postfix started once" 1 "$starts0"
lab_send "link up"
m_up1=$LAB_LAST_SUBJECT
rr_check "'$m_up1' reached relay A" lab_wait_mail a "$m_up1" 20

# ---------------------------------------------------------------------------
rr_step "2. SIGHUP with a broken configuration: rejected, the daemon keeps working"
cp "$LAB_CONF" "$LAB_CONF.good"
printf '\n[agent]\ninterval = soon\n[no-such-section]\nkey = value\n' >>"$LAB_CONF"
lab_reload
rr_expect_eq "broken configuration rejected (journal: 'reload rejected')" 1 "$?"
rr_check "the daemon is still running" lab_daemon_alive
rr_check "the journal names the bad file and line" \
	eval "rr_journal_field MESSAGE SYSLOG_IDENTIFIER=rerouterd | grep -q '$LAB_CONF:[0-9]'"
mv "$LAB_CONF.good" "$LAB_CONF"

# ---------------------------------------------------------------------------
rr_step "3. WAN cut: DOWN, connectors toggled, Postfix restarted, mail to relay B"
t_cut=$(rr_now_ms)
rr_wan_cut "$LAB_NS"
lab_send "during the cut, before the failover"
m_cut=$LAB_LAST_SUBJECT
if wait_for 30 lab_route_is "$LAB_ROUTE_B"; then
	t_switch=$(rr_now_ms)
	rr_ok "route switched to relay B after $(secs $((t_switch - t_cut)))"
else
	t_switch=
	rr_fail "route did not switch to relay B: $(lab_connectors_line)"
fi
rr_check "state DOWN in the journal" lab_wait_changes down up 1 10
if rr_sink_wait "$LAB_RELAYB_DIR" 1 30; then
	t_firstb=$(rr_now_ms)
	rr_ok "first mail at relay B after $(secs $((t_firstb - t_cut)))"
else
	t_firstb=
	rr_fail "no mail reached relay B"
fi
rr_check "'$m_cut' (queued during the cut) reached relay B" lab_wait_mail b "$m_cut" 30
lab_send "after the failover"
m_down=$LAB_LAST_SUBJECT
rr_check "'$m_down' reached relay B" lab_wait_mail b "$m_down" 20
rr_check "DOWN alert arrived" lab_wait_alerts DOWN 1 20
wait_for 10 hook_at_least 1
wait_for 10 starts_at_least 2
rr_expect_eq "connectors when DOWN" "site-a=0 site-b=1 route=$LAB_ROUTE_B" "$(lab_connectors_line)"
rr_expect_eq "Postfix restarted once" 2 "$(rr_postfix_starts)"
pid1=$(lab_unit_pid)
rr_check "Postfix MainPID changed ($pid0 -> $pid1)" test "$pid1" != "$pid0" -a "$pid1" != 0
rr_expect_eq "hook called with 'down up'" "down up down up" "$(head -1 "$LAB_HOOK_OUT" 2>/dev/null | cut -d' ' -f1-4)"
show lab_ctl status

# ---------------------------------------------------------------------------
rr_step "4. WAN restored: UP, connectors back, Postfix restarted, mail to relay A"
t_restore=$(rr_now_ms)
rr_wan_restore "$LAB_NS"
if wait_for 30 lab_route_is "$LAB_ROUTE_A"; then
	t_back=$(rr_now_ms)
	rr_ok "route back to relay A after $(secs $((t_back - t_restore)))"
else
	t_back=
	rr_fail "route did not come back to relay A: $(lab_connectors_line)"
fi
rr_check "state UP in the journal" lab_wait_changes up down 1 10
rr_check "UP alert arrived" lab_wait_alerts UP 1 20
wait_for 10 starts_at_least 3
rr_postfix_wait_running 20
lab_send "link back up"
m_up2=$LAB_LAST_SUBJECT
rr_check "'$m_up2' reached relay A" lab_wait_mail a "$m_up2" 20
wait_for 10 hook_at_least 2
rr_expect_eq "connectors when UP again" "site-a=1 site-b=0 route=$LAB_ROUTE_A" "$(lab_connectors_line)"
rr_expect_eq "Postfix restarted once more" 3 "$(rr_postfix_starts)"
rr_expect_eq "hook called with 'up down'" "up down up down" "$(sed -n 2p "$LAB_HOOK_OUT" 2>/dev/null | cut -d' ' -f1-4)"
rr_expect_eq "one DOWN change so far" 1 "$(lab_changes_count down up)"
rr_expect_eq "one UP change so far" 1 "$(lab_changes_count up down)"
rr_expect_eq "one DOWN alert" 1 "$(lab_alerts_count DOWN)"
rr_expect_eq "one UP alert" 1 "$(lab_alerts_count UP)"
show lab_ctl history

# ---------------------------------------------------------------------------
rr_step "5. a maintenance window covering now: the cut changes nothing"
# One date call: hour and minute read apart could straddle an hour (hh:59 ->
# hh+1:00 read as hh:00) and put the window an hour behind.
hhmm=$(date +%H:%M)
now_min=$((10#${hhmm%:*} * 60 + 10#${hhmm#*:}))
hm() { printf '%02d:%02d' $(( ($1 + 1440) % 1440 / 60 )) $(( ($1 + 1440) % 60 )); }
lab_config "
[maintenance \"lab-now\"]
days = mon-sun
start = $(hm $((now_min - 1)))
end = $(hm $((now_min + 5)))"
lab_reload
rr_expect_eq "configuration with the window accepted" 0 "$?"
starts_before=$(rr_postfix_starts)
rr_wan_cut "$LAB_NS"
# The cut would be detected in about 3 s; watch 6 s for a change that must not come.
if wait_for 6 lab__changes_at_least down up 2; then
	rr_fail "the state changed inside the maintenance window"
else
	rr_ok "no change of state during 6 s of cut inside the window"
fi
rr_expect_eq "connectors untouched in the window" "site-a=1 site-b=0 route=$LAB_ROUTE_A" "$(lab_connectors_line)"
rr_expect_eq "Postfix not restarted in the window" "$starts_before" "$(rr_postfix_starts)"
rr_wan_restore "$LAB_NS"
lab_config
lab_reload
rr_expect_eq "configuration without the window accepted" 0 "$?"

# ---------------------------------------------------------------------------
rr_step "6. WAN cut while relay B is down too: DOWN, no rewiring, 'no backup path'"
rr_sink_stop "$LAB_RELAYB_PID"
starts_before=$(rr_postfix_starts)
rr_wan_cut "$LAB_NS"
rr_check "state DOWN again in the journal" lab_wait_changes down up 2 15
rr_check "second DOWN alert arrived" lab_wait_alerts DOWN 2 20
rr_expect_eq "connectors not rewired without a backup path" "site-a=1 site-b=0 route=$LAB_ROUTE_A" "$(lab_connectors_line)"
rr_expect_eq "Postfix not restarted without a backup path" "$starts_before" "$(rr_postfix_starts)"
last_down=$(grep -lE '^Subject: \[rerouter\] .*DOWN$' "$LAB_ALERT_DIR"/* | xargs ls -t | head -1)
rr_check "the alert says no backup path answered" grep -qi 'no backup path' "$last_down"
# SPEC section 2: the gate is judged at every run while DOWN.
rr_step "6b. relay B answers again while the link is still DOWN: [on_down] applied"
rr_sink_start lab-relay-b "$LAB_RELAYB_DIR" "$LAB_RELAYB" || rr_fail "relay B did not restart"
conn_is() { [ "$(lab_connectors_line)" = "$1" ]; }
starts_are() { [ "$(rr_postfix_starts)" = "$1" ]; }
rr_check "rewired to relay B once a backup path answers" \
	wait_for 15 conn_is "site-a=0 site-b=1 route=$LAB_ROUTE_B"
rr_check "Postfix restarted once for it" wait_for 15 starts_are $((starts_before + 1))
rr_check "the journal says the backup path answers" \
	wait_for 5 eval 'rr_journal_text SYSLOG_IDENTIFIER=rerouterd | grep -q "a backup path answers again"'
lab_notes() { rr_sink_count_grep "$LAB_ALERT_DIR" '^Subject: \[rerouter\] .*: backup path answers, mail now rerouted'; }
rr_check "mailed as a note on the same change" wait_for 15 eval '[ "$(lab_notes)" -ge 1 ]'
rr_wan_restore "$LAB_NS"
rr_check "state UP again in the journal" lab_wait_changes up down 2 15
rr_check "second UP alert arrived" lab_wait_alerts UP 2 20
rr_check "connectors back to site A after UP" wait_for 10 conn_is "site-a=1 site-b=0 route=$LAB_ROUTE_A"
rr_check "Postfix restarted once more" wait_for 15 starts_are $((starts_before + 2))

# ---------------------------------------------------------------------------
rr_step "7. totals: every mail once at the right relay, journal fields, daemon alive"
declare -A want=(["$m_up1"]=a ["$m_cut"]=b ["$m_down"]=b ["$m_up2"]=a)
rr_postfix_wait_empty 20 || rr_fail "mail still queued: $(postqueue -p | tail -3)"
for s in "${LAB_MAILS[@]}"; do
	a=$(lab_copies "$LAB_RELAYA_DIR" "$s")
	b=$(lab_copies "$LAB_RELAYB_DIR" "$s")
	where=""
	[ "$a" -gt 0 ] && where=a
	[ "$b" -gt 0 ] && where=$where${where:+,}b
	rr_expect_eq "'$s' delivered once" 1 "$((a + b))"
	rr_expect_eq "'$s' at relay ${want[$s]}" "${want[$s]}" "$where"
done
rr_expect_eq "relay A holds only the lab's mail" 2 "$(rr_sink_count "$LAB_RELAYA_DIR")"
rr_expect_eq "relay B holds only the lab's mail" 2 "$(rr_sink_count "$LAB_RELAYB_DIR")"
rr_expect_eq "changes of state in the journal (new previous priority)" \
	"down up 4 up down 5 down up 4 up down 5" "$(lab_changes | tr '\n' ' ' | sed 's/ $//')"
rr_check "the journal logged connector actions (REROUTER_CONNECTOR)" \
	eval '[ "$(rr_journal_count SYSLOG_IDENTIFIER=rerouterd REROUTER_CONNECTOR=site-a)" -ge 2 ]'
rr_expect_eq "one note, once" 1 "$(lab_notes)"
rr_expect_eq "alerts in all (DOWN, UP, DOWN, note, UP)" 5 "$(rr_sink_count "$LAB_ALERT_DIR")"
rr_check "every alert has Date and Message-ID" \
	eval '[ "$(grep -l "^Date: " "$LAB_ALERT_DIR"/* | xargs grep -l "^Message-ID: " | wc -l)" = 5 ]'
rr_info "transport unit: NRestarts=$(rr_unit_prop "$LAB_UNIT" NRestarts) (counts automatic restarts only), starts=$(rr_postfix_starts)"
rr_check "the daemon is still running" lab_daemon_alive
t_stop=$(rr_now_ms)
kill -TERM "$LAB_DAEMON_PID"
wait_for 5 rr__dead "$LAB_DAEMON_PID"
rr_check "rerouterd stopped on SIGTERM" rr__dead "$LAB_DAEMON_PID"
t_stopped=$(rr_now_ms)

rr_step "figures"
[ -n "$t_switch" ] && echo "failover: WAN cut -> connectors switched: $(secs $((t_switch - t_cut)))"
[ -n "$t_firstb" ] && echo "failover: WAN cut -> first mail at relay B: $(secs $((t_firstb - t_cut)))"
[ -n "$t_back" ] && echo "recovery: WAN restored -> connectors back: $(secs $((t_back - t_restore)))"
echo "shutdown: SIGTERM -> exit: $(secs $((t_stopped - t_stop)))"
echo "(interval 1 s, failed_checks 2, runs 2; check timeouts 0.8 s)"

if [ "$RR_FAILURES" -gt 0 ]; then
	echo "e2e: $RR_FAILURES check(s) FAILED (logs under $RR_TMPDIR/lab)"
	exit 1
fi
echo "e2e: all checks passed"
exit 0
