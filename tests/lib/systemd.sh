# tests/lib/systemd.sh: a private mount namespace, a private `systemd --user`
# manager and a private journald (TESTING.md). Needs common.sh.
#
# At the top of the script, before anything else is started:
#     rr_private_mountns "$@"     # re-executes the script under unshare -m
# then:
#     rr_systemd_user_start "$RR_TMPDIR/systemd"   # exports XDG_RUNTIME_DIR, XDG_CONFIG_HOME
#     rr_user_unit NAME.service <<EOF ... EOF; systemctl --user start NAME.service
#     rr_journald_start
#     rr_journal_json SYSLOG_IDENTIFIER=rerouterd

[ -n "${RR_SYSTEMD_SH:-}" ] && return 0
RR_SYSTEMD_SH=1

RR_SYSTEMCTL=${RR_SYSTEMCTL:-systemctl}

# rr_private_mountns ARGS...: unless already inside, re-execute this script in
# a private mount namespace (same PID: unshare execs), so that every mount made
# afterwards disappears with the script and the host never sees it.
rr_private_mountns() {
	[ "${RR_IN_MOUNTNS:-}" = "$$" ] && return 0
	export RR_IN_MOUNTNS=$$
	exec unshare -m --propagation private "$BASH" "$0" "$@"
}

# rr_mount_tmpfs DIR: a tmpfs over DIR (created when missing), unmounted at cleanup.
rr_mount_tmpfs() {
	mkdir -p "$1"
	mount -t tmpfs -o mode=755 tmpfs "$1" || return 1
	rr_on_cleanup "umount -l '$1'"
}

# /run/systemd as a tmpfs with /run/systemd/system: systemd then believes the
# machine runs systemd, and no socket of the host's is reachable. Done once.
rr__private_run_systemd() {
	[ -n "${RR_RUN_SYSTEMD_PRIVATE:-}" ] && return 0
	[ "${RR_IN_MOUNTNS:-}" = "$$" ] || { rr_warn "not in a private mount namespace (call rr_private_mountns)"; return 1; }
	rr_mount_tmpfs /run/systemd || return 1
	mkdir -p /run/systemd/system /run/systemd/journal
	RR_RUN_SYSTEMD_PRIVATE=1
}

# rr_systemd_user_start DIR: a private user manager with its runtime and
# config directories under DIR. Exports XDG_RUNTIME_DIR, XDG_CONFIG_HOME and
# RR_USER_UNITS (where to put unit files); sets RR_SYSTEMD_PID.
rr_systemd_user_start() {
	local dir=$1
	rr__private_run_systemd || return 1
	mkdir -p "$dir"
	mkdir -m 700 -p "$dir/run"
	export XDG_RUNTIME_DIR=$dir/run XDG_CONFIG_HOME=$dir/config
	export RR_USER_UNITS=$XDG_CONFIG_HOME/systemd/user
	mkdir -p "$RR_USER_UNITS"
	# Whatever session bus the caller had is not ours.
	unset DBUS_SESSION_BUS_ADDRESS
	# Where dbus-user-session is installed the manager would socket-activate a
	# dbus-daemon on $XDG_RUNTIME_DIR/bus, and sd_bus_open_user() would go
	# through it; a fresh test machine has none. Mask it so that every machine
	# tests the same path: the manager's private socket, no bus daemon
	# (RR_SYSTEMD_KEEP_DBUS=1 keeps it).
	if [ -z "${RR_SYSTEMD_KEEP_DBUS:-}" ]; then
		ln -sf /dev/null "$RR_USER_UNITS/dbus.socket"
		ln -sf /dev/null "$RR_USER_UNITS/dbus.service"
	fi
	"${RR_SYSTEMD_BIN:-/lib/systemd/systemd}" --user --log-target=console \
		</dev/null >>"$dir/systemd.log" 2>&1 &
	RR_SYSTEMD_PID=$!
	rr_on_cleanup "rr_systemd_user_stop $RR_SYSTEMD_PID"
	wait_for 10 test -S "$XDG_RUNTIME_DIR/systemd/private" ||
		{ rr_warn "systemd --user did not start, see $dir/systemd.log"; return 1; }
	wait_for 10 rr__user_manager_up ||
		{ rr_warn "systemd --user does not answer, see $dir/systemd.log"; return 1; }
}
rr__user_manager_up() {
	"$RR_SYSTEMCTL" --user is-system-running >/dev/null 2>&1
	case $? in 0 | 1) "$RR_SYSTEMCTL" --user show -p Version >/dev/null 2>&1 ;; *) return 1 ;; esac
}

# Stop every unit (exit), then make sure the manager and its children are gone.
rr_systemd_user_stop() {
	local pid=$1
	kill -0 "$pid" 2>/dev/null || return 0
	timeout 10 "$RR_SYSTEMCTL" --user exit >/dev/null 2>&1
	wait_for 10 rr__dead "$pid" || rr_kill_pid "$pid" 2
	wait "$pid" 2>/dev/null
	return 0
}

# rr_user_unit NAME: write a unit file from stdin and reload the manager.
rr_user_unit() {
	cat >"$RR_USER_UNITS/$1" || return 1
	"$RR_SYSTEMCTL" --user daemon-reload
}

# rr_unit_prop UNIT PROP: print one property's value (MainPID, NRestarts, ActiveState...).
rr_unit_prop() {
	"$RR_SYSTEMCTL" --user show -p "$2" --value "$1"
}
rr_unit_active() {
	[ "$(rr_unit_prop "$1" ActiveState)" = active ]
}

# rr_journald_start: a private journald writing under /run/log/journal, on
# tmpfs (also over /var/log/journal when it exists, so the host's journal is
# never written). Sets RR_JOURNALD_PID and RR_JOURNAL_DIR.
rr_journald_start() {
	rr__private_run_systemd || return 1
	rr_mount_tmpfs /run/log || return 1
	if [ -d /var/log/journal ]; then
		rr_mount_tmpfs /var/log/journal || return 1
	fi
	mkdir -p /run/systemd/journal
	"${RR_JOURNALD_BIN:-/lib/systemd/systemd-journald}" </dev/null >>"$RR_TMPDIR/journald.log" 2>&1 &
	RR_JOURNALD_PID=$!
	rr_on_cleanup "rr_kill_pid $RR_JOURNALD_PID"
	RR_JOURNAL_DIR=/run/log/journal
	wait_for 10 test -S /run/systemd/journal/socket ||
		{ rr_warn "journald did not start, see $RR_TMPDIR/journald.log"; return 1; }
}

# rr_journal_json [MATCH...]: the private journal's entries as JSON, one a line
# (default match: SYSLOG_IDENTIFIER=rerouterd).
rr_journal_json() {
	[ $# -eq 0 ] && set -- SYSLOG_IDENTIFIER=rerouterd
	journalctl -D "$RR_JOURNAL_DIR" --no-pager -o json "$@" 2>/dev/null
}
# rr_journal_text [MATCH...]: the same as short text.
rr_journal_text() {
	[ $# -eq 0 ] && set -- SYSLOG_IDENTIFIER=rerouterd
	journalctl -D "$RR_JOURNAL_DIR" --no-pager -o short-precise "$@" 2>/dev/null
}
# rr_journal_count MATCH...: how many entries match.
rr_journal_count() {
	rr_journal_json "$@" | grep -c .
}
# rr_journal_field FIELD [MATCH...]: each matching entry's FIELD, one a line.
rr_journal_field() {
	local f=$1
	shift
	rr_journal_json "$@" | python3 -c '
import json, sys
f = sys.argv[1]
for line in sys.stdin:
    try:
        e = json.loads(line)
    except ValueError:
        continue
    v = e.get(f)
    if v is not None:
        print(v if isinstance(v, str) else json.dumps(v))
' "$f"
}
