#!/bin/bash
# Hooks that misbehave, run by the real daemon (issue 13): one that hangs,
# one that forks children that hang (the whole process group is killed at
# the timeout), one that floods stdout and stderr with `yes` (the log stays
# bounded: 20 lines, then one "output truncated" line), one that exits
# non-zero. Through all of them the daemon keeps probing and deciding. The
# first hook records its sandbox: only PATH, LANG and REROUTER_* in its
# environment, no fd above 2, no capability, although the daemon runs as
# nobody with CAP_NET_RAW ambient (as the unit gives it) and with
# NOTIFY_SOCKET, WATCHDOG_USEC and a proxy in its own environment.
#
# The link is one tcp check on loopback (127.0.13.1, this test's own), cut
# by stopping its listener; each change of state runs the next hook.
set -u
. "$RR_SRCDIR/tests/lib/common.sh"
. "$RR_SRCDIR/tests/lib/systemd.sh"
: "${RR_BUILDDIR:?}"
need_root
rr_need_cmd setpriv python3
rr_private_mountns "$@"
rr_trap
rr_tmpdir
T=$RR_TMPDIR
RERD=$RR_BUILDDIR/rerouterd
# No journald here: the daemon's lines go to its stderr (-v), none to the host.
rr__private_run_systemd || rr_die "no private /run/systemd"

ADDR=127.0.13.1
PORT=$((30000 + $$ % 10000))
HOOK_TIMEOUT=6

# The daemon runs as nobody: it must reach its files.
mkdir -p "$T/d"
chown nobody "$T/d"
rr_traversable "$T/d"

cat >"$T/listener.py" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(64)
open(sys.argv[3], "w").close()
while True:
    s.accept()[0].close()
PY
LPID=""
link_up() {
	rm -f "$T/ready"
	rr_spawn listener python3 "$T/listener.py" "$ADDR" "$PORT" "$T/ready"
	LPID=$RR_PID
	wait_for 5 test -e "$T/ready" || rr_die "listener did not start"
}
link_down() { rr_kill_pid "$LPID"; }

# The hook: invocation N does what line N of modes says.
cat >"$T/d/hook" <<'SH'
#!/bin/sh
D=$(dirname "$0")
n=$(($(cat "$D/count" 2>/dev/null || echo 0) + 1))
echo $n >"$D/count"
mode=$(sed -n "${n}p" "$D/modes")
echo "$$" >"$D/hook.$n.pid"
echo "hook $n ($mode): $1 $2"
case $mode in
sandbox)
	env | sort >"$D/env.out"
	ls /proc/self/fd >"$D/fds.out"
	grep '^Cap' /proc/self/status >"$D/caps.out"
	id -u >"$D/uid.out" ;;
hang)
	sleep 1000 ;;
forks)
	sleep 1000 & echo $! >>"$D/forks.pids"
	(trap '' TERM; exec sleep 1001) & echo $! >>"$D/forks.pids"
	(sleep 1002 & echo $! >>"$D/forks.pids"; wait) &
	wait ;;
flood)
	yes flood-out &
	exec yes flood-err >&2 ;;
fail)
	echo "about to fail" >&2
	exit 3 ;;
esac
SH
chmod 755 "$T/d/hook"
printf '%s\n' sandbox hang forks flood fail sandbox >"$T/d/modes"
chown nobody "$T/d/modes"

cat >"$T/d/rerouter.conf" <<CONF
[agent]
interval = 200ms
failed_checks = 1
runs = 1
failed_runs = 1
passed_runs = 1
state_db = $T/d/state.db

[check "link"]
type = tcp
target = $ADDR:$PORT
timeout = 100ms

[transport]
database = $T/d/transport.db
action = none
flush =

[hook]
on_change = $T/d/hook
timeout = ${HOOK_TIMEOUT}s
CONF
chmod 644 "$T/d/rerouter.conf"
out=$("$RERD" -c "$T/d/rerouter.conf" --check-config 2>&1) || rr_die "config: $out"

LOG=$T/daemon.log
rr_step "start rerouterd as nobody with CAP_NET_RAW ambient, the link up"
link_up
# Runs as nobody: its ASan report (if any) goes where tests/run looks.
rr_spawn daemon env NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC=60000000 \
	https_proxy=http://proxy.invalid:3128 RR_SECRET=do-not-pass LANG=C.UTF-8 \
	setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=+net_raw \
	--ambient-caps=+net_raw "$RERD" -v -c "$T/d/rerouter.conf"
DPID=$RR_PID

changes() { grep -c 'state \(UP\|DOWN\) (was' "$LOG"; }
runs() { grep -c 'run \(PASSED\|FAILED\)' "$LOG"; }
has_changes() { [ "$(changes)" -ge "$1" ]; }
has_runs() { [ "$(runs)" -ge "$1" ]; }
hook_done() { grep -q "hook: .* after [0-9.]*s" "$LOG" && [ "$(grep -c 'hook: .* after [0-9.]*s' "$LOG")" -ge "$1" ]; }
alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
dead() { ! alive "$1"; }

wait_for 10 has_changes 1 || rr_die "no first state: $(tail -5 "$LOG")"
wait_for 10 hook_done 1 || rr_die "the first hook did not end: $(tail -5 "$LOG")"
rr_expect_eq "the daemon itself has CAP_NET_RAW ambient" 0000000000002000 \
	"$(awk '/^CapAmb/ { print $2 }' "/proc/$DPID/status")"
rr_expect_eq "hook environment: PATH, LANG, REROUTER_* only" "LANG PATH REROUTER_CHANGE_ID REROUTER_DISABLED REROUTER_ENABLED REROUTER_PREVIOUS REROUTER_REASON REROUTER_SINCE REROUTER_STATE" \
	"$(grep -v -e '^PWD=' -e '^SHLVL=' -e '^_=' "$T/d/env.out" | cut -d= -f1 | sort | tr '\n' ' ' | sed 's/ $//')"
rr_check "hook environment has no NOTIFY_SOCKET, WATCHDOG_*, proxy or secret" \
	bash -c "! grep -q -e NOTIFY -e WATCHDOG -e proxy -e SECRET '$T/d/env.out'"
# ls lists 0, 1, 2 and the directory it reads.
rr_expect_eq "hook fds: 0, 1, 2 (and ls's own)" 4 "$(wc -l <"$T/d/fds.out")"
rr_expect_eq "hook runs as the daemon's user" "$(id -u nobody)" "$(cat "$T/d/uid.out")"
for c in CapInh CapPrm CapEff CapAmb; do
	rr_expect_eq "hook $c" 0000000000000000 "$(awk -v k="$c:" '$1 == k { print $2 }' "$T/d/caps.out")"
done

# during_hook N WHAT: the hook of change N is running and hangs;
# meanwhile the daemon must go on probing and decide the next change.
during_hook() {
	local n=$1 what=$2 pid r0 c0
	wait_for 10 test -s "$T/d/hook.$n.pid" || { rr_fail "$what: hook $n did not start"; return 1; }
	pid=$(cat "$T/d/hook.$n.pid")
	r0=$(runs) c0=$(changes)
	wait_for 5 has_runs $((r0 + 5)) && alive "$pid"
	rr_check "$what: 5 runs while the hook runs" alive "$pid"
	# Even changes go DOWN, so their hook's time brings the link back.
	if [ $((n % 2)) = 0 ]; then link_up; else link_down; fi
	wait_for 5 has_changes $((c0 + 1))
	rr_check "$what: the next change is decided while the hook runs" alive "$pid"
	HOOK_PID=$pid
}

rr_step "hook 2 hangs: killed at its timeout"
link_down
during_hook 2 "hang"
wait_for $((HOOK_TIMEOUT + 10)) dead "$HOOK_PID"
rr_check "hanging hook killed at the timeout" grep -q "hook: killed at the timeout" "$LOG"

rr_step "hook 3 forks children that hang: the whole group dies"
during_hook 3 "forks"
wait_for $((HOOK_TIMEOUT + 10)) dead "$HOOK_PID"
wait_for 5 test "$(wc -l <"$T/d/forks.pids" 2>/dev/null)" = 3 ||
	rr_fail "hook 3 did not record its 3 children"
for p in $(cat "$T/d/forks.pids"); do
	wait_for 5 dead "$p"
	rr_check "child $p of the hook (one ignores SIGTERM) is gone" dead "$p"
done

rr_step "hook 4 floods stdout and stderr: a bounded log"
size0=$(wc -c <"$LOG")
during_hook 4 "flood"
wait_for $((HOOK_TIMEOUT + 10)) dead "$HOOK_PID"
wait_for 5 grep -q "bytes of output not logged" "$LOG"
n_flood=$(grep -c 'hook\[[0-9]*\]: flood-' "$LOG")
rr_info "flood: $n_flood lines logged, $(( $(wc -c <"$LOG") - size0 )) bytes of daemon log in the phase, $(grep -o '[0-9]* bytes of output not logged' "$LOG")"
rr_check "flood: at most 20 lines of it logged ($n_flood)" test "$n_flood" -le 20 -a "$n_flood" -gt 0
rr_expect_eq "flood: one 'output truncated' line" 1 "$(grep -c 'output truncated' "$LOG")"
rr_check "flood: the daemon log grew by less than 64 KiB" test $(( $(wc -c <"$LOG") - size0 )) -lt 65536

rr_step "hook 5 exits non-zero, hook 6 still runs"
wait_for 10 test -s "$T/d/hook.5.pid" || rr_fail "hook 5 did not start"
wait_for 10 grep -q "hook: exit status 3" "$LOG"
rr_check "failing hook: exit status 3 logged" grep -q "hook: exit status 3" "$LOG"
rr_check "failing hook: its stderr logged" grep -q "hook\[[0-9]*\]: about to fail" "$LOG"
c0=$(changes)
link_down
wait_for 10 has_changes $((c0 + 1))
wait_for 10 test -s "$T/d/hook.6.pid"
rr_check "hook 6 runs after all that" test -s "$T/d/hook.6.pid"
rr_check "the daemon is still running" kill -0 "$DPID"
rr_expect_eq "no hook process is left" "" "$(pgrep -u nobody -f "$T/d/hook|sleep 100[012]|yes flood" | tr '\n' ' ')"
rr_info "runs: $(runs), changes: $(changes)"

[ "$RR_FAILURES" = 0 ] || { tail -30 "$LOG"; exit 1; }
rr_ok "all hook checks passed"
