# tests/lab/lab.sh: the whole lab site, for tests/lab/demo and test-e2e.sh.
# Sourced by bash, after tests/lib/*.sh, inside rr_private_mountns, as root.
#
#   "the internet"  netns rr-lab, 10.231.5.2 (veth rrlab1), from the hub 10.231.5.1 (rrlab0):
#                   HTTP :20080, TCP listener :20022, relay A (smtp-sink) :25
#   relay B         smtp-sink 127.0.5.2:20025 (the other site's relay)
#   alert mailbox   smtp-sink 127.0.5.3:20026
#   the hub         Postfix (user unit lab-postfix.service under a private
#                   systemd --user) reading rerouter's transport database;
#                   connectors site-a (cost 1 -> relay A), site-b (cost 10 -> relay B)
#   rerouterd       background process, lab config, private journald
#
# Needs RR_SRCDIR, RR_BUILDDIR, RR_TMPDIR. lab_start returns 77 when the
# daemon's parts are still stubs ("not implemented").

[ -n "${RR_LAB_SH:-}" ] && return 0
RR_LAB_SH=1

LAB_NS=rr-lab
LAB_HOSTIF=rrlab0
LAB_NSIF=rrlab1
LAB_HOST_IP=10.231.5.1
LAB_NET_IP=10.231.5.2
LAB_HTTP_PORT=20080
LAB_TCP_PORT=20022
LAB_RELAYA=$LAB_NET_IP:25
LAB_RELAYB_IP=127.0.5.2
LAB_RELAYB=$LAB_RELAYB_IP:20025
LAB_ALERTS=127.0.5.3:20026
LAB_UNIT=lab-postfix.service
LAB_ROUTE_A="smtp:[$LAB_NET_IP]:25"
LAB_ROUTE_B="smtp:[$LAB_RELAYB_IP]:20025"
LAB_MAIL_FROM=user@hub.rr-lab.test
LAB_MAIL_TO=someone@remote.test

lab_paths() {
	LAB_DIR=$RR_TMPDIR/lab
	LAB_CONF=$LAB_DIR/rerouter.conf
	LAB_VAR=$LAB_DIR/var
	LAB_DB=$LAB_VAR/transport.db
	LAB_STATE_DB=$LAB_VAR/state.db
	LAB_RELAYA_DIR=$LAB_DIR/relay-a
	LAB_RELAYB_DIR=$LAB_DIR/relay-b
	LAB_ALERT_DIR=$LAB_DIR/alerts
	LAB_HOOK=$LAB_DIR/hook.sh
	LAB_HOOK_OUT=$LAB_DIR/hook.out
	LAB_RERD=$RR_BUILDDIR/rerouterd
	LAB_RCTL=$RR_BUILDDIR/rerouterctl
}

# lab_config [EXTRA-TEXT]: (re)write the daemon's configuration; EXTRA-TEXT
# (e.g. a [maintenance] section) is appended.
lab_config() {
	cat >"$LAB_CONF.new" <<EOF
# rerouter lab configuration (tests/lab/lab.sh)
[agent]
interval = 1s
failed_checks = 2
runs = 2
failed_runs = 2
passed_runs = 2
initial_state = up
state_db = $LAB_STATE_DB

[ping]
count = 2
min_replies = 1
timeout = 400ms

[check "internet-ping"]
type = ping
target = $LAB_NET_IP

[check "internet-web"]
type = http
target = http://$LAB_NET_IP:$LAB_HTTP_PORT/
timeout = 800ms

[check "internet-tcp"]
type = tcp
target = $LAB_NET_IP:$LAB_TCP_PORT
timeout = 800ms

[check "relay-b"]
type = smtp
target = $LAB_RELAYB
timeout = 800ms
role = backup

[on_down]
disable = site-a
enable = site-b

[on_up]
enable = site-a
disable = site-b

[transport]
database = $LAB_DB
unit = $LAB_UNIT
action = restart
bus = user
flush = /usr/sbin/postqueue -f

[mail]
to = postmaster@rr-lab.test
from = rerouter@hub.rr-lab.test
server = smtp://$LAB_ALERTS
starttls = never
timeout = 5s
min_gap = 0s

[hook]
on_change = $LAB_HOOK
timeout = 5s

[log]
# every check's result goes to the journal too (the demo shows the failing ones)
verbose = yes
${1:-}
EOF
	mv "$LAB_CONF.new" "$LAB_CONF"
}

# rerouterctl / rerouterd with the lab config.
lab_ctl() { "$LAB_RCTL" -c "$LAB_CONF" "$@"; }

# lab_not_implemented FILE: 0 when the output says a part is still a stub.
lab_not_implemented() {
	grep -qiE 'not implemented|Function not implemented' "$1"
}

# The transport database, as Postfix sees it.
lab_route() {
	sqlite3 -readonly "$LAB_DB" "SELECT nexthop FROM transport_routes WHERE address_space = '*'" 2>/dev/null
}
lab_enabled() { # NAME -> 0/1
	sqlite3 -readonly "$LAB_DB" "SELECT enabled FROM send_connectors WHERE name = '$1'" 2>/dev/null
}
lab_connectors_line() {
	echo "site-a=$(lab_enabled site-a) site-b=$(lab_enabled site-b) route=$(lab_route)"
}
lab_route_is() { [ "$(lab_route)" = "$1" ]; }

lab_unit_pid() { rr_unit_prop "$LAB_UNIT" MainPID; }

# Journal entries of rerouterd that mark a change of state: NEW PREVIOUS, a line each.
lab_changes() {
	rr_journal_json SYSLOG_IDENTIFIER=rerouterd | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if "REROUTER_STATE" in e and "REROUTER_PREVIOUS" in e and "REROUTER_CHECK" not in e \
            and "REROUTER_CONNECTOR" not in e and "REROUTER_ACTION" not in e:
        print(e["REROUTER_STATE"], e["REROUTER_PREVIOUS"], e.get("PRIORITY", ""))
'
}
lab_changes_count() { # NEW PREVIOUS
	lab_changes | awk -v n="$1" -v p="$2" '$1 == n && $2 == p' | wc -l
}
lab_wait_changes() { # NEW PREVIOUS COUNT SECONDS
	wait_for "$4" lab__changes_at_least "$1" "$2" "$3"
}
lab__changes_at_least() { [ "$(lab_changes_count "$1" "$2")" -ge "$3" ]; }

# The daemon's journal lines since the last call (for the narration).
LAB_CURSOR=
lab_journal_new() {
	local out
	if [ -n "$LAB_CURSOR" ]; then
		out=$(journalctl -D "$RR_JOURNAL_DIR" --no-pager -o short-precise --show-cursor \
			--after-cursor="$LAB_CURSOR" SYSLOG_IDENTIFIER=rerouterd 2>/dev/null)
	else
		out=$(journalctl -D "$RR_JOURNAL_DIR" --no-pager -o short-precise --show-cursor \
			SYSLOG_IDENTIFIER=rerouterd 2>/dev/null)
	fi
	local c
	c=$(printf '%s\n' "$out" | sed -n 's/^-- cursor: //p' | tail -1)
	[ -n "$c" ] && LAB_CURSOR=$c
	printf '%s\n' "$out" | grep -v '^-- ' | sed 's/^/    | /'
}

# Mail: each message carries a unique subject "lab mail N (what)".
LAB_MAILS=()
lab_send() { # TAG: send one message; its subject is remembered
	local subj="lab mail ${#LAB_MAILS[@]} ($1)"
	LAB_MAILS+=("$subj")
	rr_sendmail "$LAB_MAIL_FROM" "$LAB_MAIL_TO" "$subj" "sent by the rerouter lab at $(date -u +%FT%TZ)"
	LAB_LAST_SUBJECT=$subj
}
# lab_where SUBJECT -> "a", "b", "ab", "" (which relay holds it, and how many times)
lab_copies() { # DIR SUBJECT
	rr_sink_count_grep "$1" "^Subject: $(lab__re "$2")\$"
}
lab__re() { printf '%s' "$1" | sed 's/[][().*^$+?{}|\\]/\\&/g'; }
lab_in_relay() { # a|b SUBJECT -> 0 when there (at least once)
	local d=$LAB_RELAYA_DIR
	[ "$1" = b ] && d=$LAB_RELAYB_DIR
	[ "$(lab_copies "$d" "$2")" -ge 1 ]
}
lab_wait_mail() { # a|b SUBJECT SECONDS
	wait_for "$3" lab_in_relay "$1" "$2"
}
lab_alerts_count() { # STATE-WORD (DOWN|UP)
	rr_sink_count_grep "$LAB_ALERT_DIR" "^Subject: \[rerouter\] $(lab__re "$(hostname)"): internet connection $1\$"
}
lab_wait_alerts() { # WORD N SECONDS
	wait_for "$3" lab__alerts_at_least "$1" "$2"
}
lab__alerts_at_least() { [ "$(lab_alerts_count "$1")" -ge "$2" ]; }

lab_daemon_alive() { kill -0 "$LAB_DAEMON_PID" 2>/dev/null; }

# lab_start: everything, in dependency order. 0 ready, 77 stubs, 1 failure.
lab_start() {
	lab_paths
	mkdir -p "$LAB_DIR" "$LAB_VAR"
	local r

	rr_step "the internet: netns $LAB_NS ($LAB_NET_IP) with HTTP, TCP and relay A"
	rr_wan_start "$LAB_NS" "$LAB_HOSTIF" "$LAB_NSIF" "$LAB_HOST_IP/24" "$LAB_NET_IP/24" || return 1
	rr_wan_http_server "$LAB_NS" lab-http "$LAB_NET_IP" "$LAB_HTTP_PORT" "$LAB_DIR/www" || return 1
	rr_wan_tcp_listener "$LAB_NS" lab-tcp "$LAB_NET_IP" "$LAB_TCP_PORT" || return 1
	rr_sink_start lab-relay-a "$LAB_RELAYA_DIR" "$LAB_RELAYA" "$LAB_NS" || return 1
	LAB_RELAYA_PID=$RR_PID

	rr_step "relay B on $LAB_RELAYB and the alert mailbox on $LAB_ALERTS"
	rr_sink_start lab-relay-b "$LAB_RELAYB_DIR" "$LAB_RELAYB" || return 1
	LAB_RELAYB_PID=$RR_PID
	rr_sink_start lab-alerts "$LAB_ALERT_DIR" "$LAB_ALERTS" || return 1

	rr_step "private systemd --user manager and journald"
	rr_systemd_user_start "$LAB_DIR/systemd" || return 1
	rr_journald_start || return 1

	rr_step "rerouter's databases: rerouterctl init, connectors site-a and site-b"
	cat >"$LAB_HOOK" <<EOF
#!/bin/sh
# lab hook: record each call (argv and environment).
echo "\$1 \$2 \$REROUTER_STATE \$REROUTER_PREVIOUS \$REROUTER_SINCE" >>"$LAB_HOOK_OUT"
EOF
	chmod 755 "$LAB_HOOK"
	lab_config
	"$LAB_RERD" --check-config -c "$LAB_CONF" >"$LAB_DIR/check-config.out" 2>&1
	r=$?
	if lab_not_implemented "$LAB_DIR/check-config.out"; then
		rr_info "rerouterd --check-config: $(head -3 "$LAB_DIR/check-config.out")"
		return 77
	fi
	# The alerts are the last link: --test-mail against a port where nothing
	# listens fails fast when implemented, and says so when still a stub.
	# (A directory of its own: a sibling *.conf naming the same connectors
	# would be another instance to --check-config.)
	mkdir -p "$LAB_DIR/probe"
	sed -e "s|^server = .*|server = smtp://${LAB_ALERTS%:*}:20027|" -e 's|^timeout = 5s|timeout = 1s|' \
		"$LAB_CONF" >"$LAB_DIR/probe/mail.conf"
	timeout 10 "$LAB_RERD" --test-mail -c "$LAB_DIR/probe/mail.conf" >"$LAB_DIR/test-mail.out" 2>&1
	if lab_not_implemented "$LAB_DIR/test-mail.out"; then
		rr_info "rerouterd --test-mail: $(head -3 "$LAB_DIR/test-mail.out")"
		return 77
	fi
	lab_ctl init >"$LAB_DIR/init.out" 2>&1
	r=$?
	if lab_not_implemented "$LAB_DIR/init.out"; then
		rr_info "rerouterctl init: $(head -3 "$LAB_DIR/init.out")"
		return 77
	fi
	[ "$r" = 0 ] || { rr_warn "rerouterctl init failed: $(cat "$LAB_DIR/init.out")"; return 1; }
	sqlite3 "$LAB_DB" \
		"INSERT INTO send_connectors (name, address_space, smart_host, cost, enabled) VALUES
		 ('site-a', '*', '[$LAB_NET_IP]:25', 1, 1),
		 ('site-b', '*', '[$LAB_RELAYB_IP]:20025', 10, 0);" || return 1
	rr_postfix_db_perms "$LAB_VAR"
	"$LAB_RERD" --check-config -c "$LAB_CONF" >"$LAB_DIR/check-config.out" 2>&1 ||
		{ rr_warn "rerouterd --check-config: $(cat "$LAB_DIR/check-config.out")"; return 1; }
	rr_info "$(lab_connectors_line)"

	rr_step "the hub: Postfix as user unit $LAB_UNIT, transport_maps on transport_routes"
	rr_postfix_setup "$LAB_DIR/postfix" "$LAB_DB" || return 1
	rr_postfix_unit "$LAB_UNIT" || return 1
	rr_info "Postfix running, MainPID $(lab_unit_pid)"

	rr_step "one run of the checks: rerouterd --once"
	"$LAB_RERD" --once -c "$LAB_CONF" >"$LAB_DIR/once.out" 2>&1
	r=$?
	sed 's/^/    | /' "$LAB_DIR/once.out" >&2
	if lab_not_implemented "$LAB_DIR/once.out"; then
		return 77
	fi
	[ "$r" = 0 ] || { rr_warn "rerouterd --once: the first run did not pass (exit $r)"; return 1; }

	rr_step "rerouterd starts"
	lab_daemon_start || return $?
	return 0
}

lab_daemon_start() {
	# Own process group: a Ctrl-C on the terminal reaches the script, whose
	# cleanup stops the daemon in order.
	setsid "$LAB_RERD" --allow-root -c "$LAB_CONF" </dev/null >>"$LAB_DIR/rerouterd.log" 2>&1 &
	LAB_DAEMON_PID=$!
	rr_on_cleanup "rr_kill_pid $LAB_DAEMON_PID 5"
	# Ready when it logged something and made at least one run (status answers).
	if ! wait_for 10 lab__daemon_ready; then
		if lab_not_implemented "$LAB_DIR/rerouterd.log"; then
			rr_info "rerouterd: $(head -3 "$LAB_DIR/rerouterd.log")"
			return 77
		fi
		rr_warn "rerouterd did not come up: $(tail -5 "$LAB_DIR/rerouterd.log")"
		return 1
	fi
}
lab__daemon_ready() {
	lab_daemon_alive || return 1
	[ "$(rr_journal_count SYSLOG_IDENTIFIER=rerouterd)" -ge 1 ]
}

# lab_reload: SIGHUP, and wait for the daemon's answer in the journal
# (either "configuration reloaded" or "reload rejected").
lab_reload() { # -> 0 accepted, 1 rejected, 2 no answer
	local before_ok before_bad
	before_ok=$(lab__journal_grep_count 'configuration reloaded')
	before_bad=$(lab__journal_grep_count 'reload rejected')
	kill -HUP "$LAB_DAEMON_PID"
	wait_for 10 lab__reload_answered "$before_ok" "$before_bad" || return 2
	[ "$(lab__journal_grep_count 'configuration reloaded')" -gt "$before_ok" ]
}
lab__journal_grep_count() {
	rr_journal_field MESSAGE SYSLOG_IDENTIFIER=rerouterd | grep -ci -- "$1"
}
lab__reload_answered() {
	[ "$(lab__journal_grep_count 'configuration reloaded')" -gt "$1" ] ||
		[ "$(lab__journal_grep_count 'reload rejected')" -gt "$2" ]
}
