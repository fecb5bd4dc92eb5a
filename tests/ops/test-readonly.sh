#!/bin/bash
# rerouterctl status and check for a member of the daemon's group who cannot
# write the state directory (issue 14), with the daemon running (its -wal and
# -shm in place, read-only to that user) and stopped (no -shm, and none can be
# made: the database is read as immutable). The group here is nogroup, the
# user nobody: nothing is added to the machine's users.
set -u
. "$RR_SRCDIR/tests/lib/common.sh"

need_root
rr_need_cmd sqlite3 python3 setpriv
rr_tmpdir
rr_trap

T=$RR_TMPDIR
RERD=$RR_BUILDDIR/rerouterd
RCTL=$RR_BUILDDIR/rerouterctl
GROUP=nogroup
getent group "$GROUP" >/dev/null || rr_skip "no group $GROUP"
D=$T/state
CONF=$T/rerouter.conf
TARGET=127.0.60.9
mkdir -p "$D"
rr_traversable "$T"
chmod 755 "$T"

rr_spawn ro-target python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 20061)); s.listen(64)
while True:
    c, _ = s.accept(); c.close()
' "$TARGET"
wait_for 5 rr_tcp_open "$TARGET" 20061 || rr_die "no target"

cat >"$CONF" <<EOF
[agent]
interval = 300ms
failed_checks = 1
runs = 2
passed_runs = 2
state_db = $D/state.db

[check "gw"]
type = tcp
target = $TARGET:20061
timeout = 250ms

[transport]
database = $T/transport.db
action = none
EOF
chmod 644 "$CONF"
"$RCTL" -c "$CONF" init >/dev/null || rr_die "init failed"
chmod 644 "$T/transport.db"
# The daemon's files: owned by it, readable by its group; the directory is
# not writable by the group.
chgrp "$GROUP" "$D" "$D/state.db" && chmod 750 "$D" && chmod 640 "$D/state.db"

as_member() { setpriv --reuid=nobody --regid="$GROUP" --clear-groups -- "$@"; }
rr_check "the member cannot write the state directory" eval '! as_member touch "$D/probe" 2>/dev/null'

"$RERD" -v --allow-root -c "$CONF" </dev/null >>"$T/rerouterd.log" 2>&1 &
DPID=$!
rr_on_cleanup "rr_kill_pid $DPID"
up() { [ "$(sqlite3 "$D/state.db" "SELECT state FROM agent_state")" = up ]; }
rr_check "the daemon decides UP" wait_for 10 up
rr_check "the daemon's -shm is in place" test -e "$D/state.db-shm"
rr_info "$(ls -l "$D" | tail -n +2)"

rr_step "daemon running"
out=$(as_member "$RCTL" -c "$CONF" status 2>&1)
rr_expect_eq "status as a member exits 0 (UP)" 0 $?
rr_check "status shows the state" eval 'printf "%s" "$out" | grep -q "^state:    UP since"' || rr_info "$out"
out=$(as_member "$RCTL" -c "$CONF" check 2>&1)
rr_expect_eq "check as a member exits 0 (OK)" 0 $?
rr_info "$out"
out=$(as_member "$RCTL" -c "$CONF" status --json 2>&1)
rr_check "status --json as a member" eval 'printf "%s" "$out" | python3 -c "import json,sys; assert json.load(sys.stdin)[\"state\"] == \"up\""'

rr_step "daemon stopped"
rr_kill_pid "$DPID"
rr_check "a clean stop leaves no -wal" eval '[ ! -s "$D/state.db-wal" ]'
rm -f "$D/state.db-shm" "$D/state.db-wal"
out=$(as_member "$RCTL" -c "$CONF" status 2>&1)
rr_expect_eq "status as a member, daemon stopped, exits 0 (UP)" 0 $?
rr_check "status shows the state" eval 'printf "%s" "$out" | grep -q "^state:    UP since"' || rr_info "$out"
# Silent for 3 intervals (0.9 s) after the stop: CRITICAL, read all the same.
silent() {
	out=$(as_member "$RCTL" -c "$CONF" check 2>&1)
	[ $? = 2 ] && printf "%s" "$out" | grep -q "^REROUTER CRITICAL - link UP .*no sign of life"
}
rr_check "check as a member, daemon stopped: CRITICAL (silent), not UNKNOWN" wait_for 10 silent || rr_info "$out"
rr_check "nothing was created in the directory" eval '[ "$(ls "$D")" = state.db ]'

rr_step "a database the member cannot read at all"
chmod 600 "$D/state.db"
out=$(as_member "$RCTL" -c "$CONF" check 2>/dev/null)
rr_expect_eq "check: UNKNOWN (3)" 3 $?

if [ "$RR_FAILURES" -gt 0 ]; then
	rr_log "$RR_FAILURES check(s) failed; logs in $T"
	exit 1
fi
rr_log "all checks passed"
