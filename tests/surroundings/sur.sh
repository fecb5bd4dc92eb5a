# tests/surroundings/sur.sh: the lab shared by the "surroundings that break"
# tests (issue 13): a WAN namespace with a TCP target that the test cuts
# (rr_wan_*), smtp-sink as the alert mailbox, a hook that logs each change,
# the real rerouterd. Needs common.sh, wan.sh, sink.sh, systemd.sh, and the
# script inside rr_private_mountns.
#     sur_lab K            # K = 1..15: names rr-surK, 10.231.70.(16K+1|16K+2)/28,
#                          # mailbox 127.0.70.K:2070K
#     sur_conf FILE        # from the SUR_* settings below
#     sur_daemon_start FILE LOG; sur_daemon_stop
#     sur_flap_start MIN_MS MAX_MS; sur_flap_stop   # cut and restore at random

[ -n "${RR_SUR_SH:-}" ] && return 0
RR_SUR_SH=1

RERD=$RR_BUILDDIR/rerouterd
RCTL=$RR_BUILDDIR/rerouterctl

# The heavy cases run on the plain build only (issue 13: "CI sizes").
sur_skip_in_asan() {
	[ "${RR_PASS:-}" = it-asan ] && rr_skip "heavy case: runs in the plain pass only (RR_PASS=it-asan)"
	return 0
}

# sur_lab K: the WAN namespace and its target, the mailbox, the hook.
sur_lab() {
	local k=$1
	T=$RR_TMPDIR
	SUR_NS=rr-sur$k
	SUR_WAN_IP=10.231.70.$((16 * k + 2))
	SUR_HUB_IP=10.231.70.$((16 * k + 1))
	SUR_PORT=$((20700 + k))
	SUR_MAILBOX=127.0.70.$k:$((20700 + k))
	SUR_SDB=$T/db/state.db
	SUR_TDB=$T/db/transport.db
	SUR_HOOKLOG=$T/hook.log
	SUR_MAIL=$T/mail
	mkdir -p "$T/db" "$SUR_MAIL"
	# No journal socket of the host's is reachable: every line goes to the log.
	rr__private_run_systemd || rr_die "no private /run/systemd"
	rr_wan_start "$SUR_NS" "rrsur${k}a" "rrsur${k}b" "10.231.70.$((16 * k + 1))/28" \
		"$SUR_WAN_IP/28" || rr_die "no WAN namespace"
	rr_wan_tcp_listener "$SUR_NS" "sur-gw$k" "$SUR_WAN_IP" "$SUR_PORT" || rr_die "no tcp target"
	cat >"$T/hook.sh" <<EOF
#!/bin/sh
echo "\$REROUTER_SINCE \$1 \$2" >>"$SUR_HOOKLOG"
EOF
	chmod 755 "$T/hook.sh"
	: >"$SUR_HOOKLOG"
}

sur_mailbox_start() {
	rr_sink_start "sur-mail" "$SUR_MAIL" "$SUR_MAILBOX" || rr_die "no alert mailbox"
	SUR_MAIL_PID=$RR_PID
}
sur_mailbox_stop() {
	rr_sink_stop "$SUR_MAIL_PID"
}

# Settings (defaults for a fast lab): interval, check timeout, runs; mail and
# hook on; transport action none (no Postfix), a transport database with
# site-a/site-b so that the routing steps run.
: "${SUR_INTERVAL:=200ms}" "${SUR_TIMEOUT:=100ms}" "${SUR_RUNS:=1}"
: "${SUR_WITH_MAIL:=yes}" "${SUR_WITH_HOOK:=yes}"
: "${SUR_TRANSPORT:=action = none
flush =}"
sur_conf() {
	{
		cat <<EOF
[agent]
interval = $SUR_INTERVAL
failed_checks = 1
runs = $SUR_RUNS
failed_runs = $SUR_RUNS
passed_runs = $SUR_RUNS
state_db = $SUR_SDB

[check "gw"]
type = tcp
target = $SUR_WAN_IP:$SUR_PORT
timeout = $SUR_TIMEOUT

[on_down]
disable = site-a
enable = site-b

[on_up]
enable = site-a
disable = site-b

[transport]
database = $SUR_TDB
$SUR_TRANSPORT
EOF
		[ "$SUR_WITH_MAIL" = yes ] && cat <<EOF

[mail]
to = admin@example.org
from = rerouter@hub.example.org
server = smtp://$SUR_MAILBOX
starttls = never
timeout = 2s
min_gap = 0
max_wait = 1s
EOF
		[ "$SUR_WITH_HOOK" = yes ] && cat <<EOF

[hook]
on_change = $T/hook.sh
timeout = 5s
EOF
	} >"$1"
	"$RERD" --check-config -c "$1" >"$1.check" 2>&1 || rr_die "config rejected: $(cat "$1.check")"
}

# sur_init FILE: the databases, with the two connectors.
sur_init() {
	"$RCTL" -c "$1" init >/dev/null || rr_die "rerouterctl init failed"
	sqlite3 "$SUR_TDB" "INSERT INTO send_connectors (name, smart_host, cost, enabled) VALUES
		('site-a', '[$SUR_WAN_IP]:25', 1, 1), ('site-b', '[127.0.70.200]:25', 2, 0)" ||
		rr_die "cannot seed the transport database"
}

SUR_DPID=""
# sur_daemon_start FILE LOG [WRAPPER...]: rerouterd -v, optionally under a wrapper (valgrind).
sur_daemon_start() {
	local conf=$1 log=$2
	shift 2
	"$@" "$RERD" -v --allow-root -c "$conf" </dev/null >>"$log" 2>&1 &
	SUR_DPID=$!
	rr_on_cleanup "rr_kill_pid $SUR_DPID 10"
}
sur_daemon_stop() {
	rr_kill_pid "$SUR_DPID" "${1:-10}"
	SUR_DPID=""
}

# A random flapping of the WAN: cut MIN..MAX ms, up MIN..MAX ms, forever.
# The cut is a blackhole route to the hub inside the WAN (the far end dies,
# no carrier change): the kernel delays carrier-up events by up to a second,
# so a veth set down and up this fast would stay dead.
sur_flap_start() {
	local min=$1 max=$2
	(
		trap 'ip -n "$SUR_NS" route del blackhole "$SUR_HUB_IP/32" 2>/dev/null; exit 0' TERM
		while :; do
			ip -n "$SUR_NS" route add blackhole "$SUR_HUB_IP/32"
			sleep "$(awk -v a="$min" -v b="$max" -v r="$RANDOM" 'BEGIN { printf "%.3f", (a + (b - a) * r / 32767) / 1000 }')"
			ip -n "$SUR_NS" route del blackhole "$SUR_HUB_IP/32"
			sleep "$(awk -v a="$min" -v b="$max" -v r="$RANDOM" 'BEGIN { printf "%.3f", (a + (b - a) * r / 32767) / 1000 }')"
		done
	) </dev/null >/dev/null 2>&1 &
	SUR_FLAP_PID=$!
	rr_on_cleanup "kill $SUR_FLAP_PID 2>/dev/null"
}
sur_flap_stop() {
	[ -n "$SUR_FLAP_PID" ] || return 0
	kill "$SUR_FLAP_PID" 2>/dev/null
	wait "$SUR_FLAP_PID" 2>/dev/null
	SUR_FLAP_PID=""
}

sur_changes() { sqlite3 "$SUR_SDB" "SELECT COUNT(*) FROM changes" 2>/dev/null || echo 0; }
sur_has_changes() { [ "$(sur_changes)" -ge "$1" ]; }
# An alert's row is written only by its change's mail step: a mail step still
# pending is an alert still to come.
sur_alerts_pending() {
	sqlite3 "$SUR_SDB" "SELECT (SELECT COUNT(*) FROM alerts WHERE sent_usec IS NULL) +
		(SELECT COUNT(*) FROM change_steps WHERE step = 'mail' AND status = 'pending')" 2>/dev/null
}
sur_no_alert_pending() { [ "$(sur_alerts_pending)" = 0 ]; }
sur_integrity() { sqlite3 "$SUR_SDB" "PRAGMA integrity_check" 2>&1; }

# The daemon's resident set (KiB) and its open fds.
sur_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
sur_fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# sur_account: every change against the mailbox and the hook log (see
# account.py); prints the figures, fails when an alert is missing or twice,
# or a hook ran twice. Extra arguments go to account.py.
sur_account() {
	python3 "$RR_SRCDIR/tests/surroundings/account.py" "$SUR_SDB" "$SUR_MAIL" "$SUR_HOOKLOG" "$@"
}
