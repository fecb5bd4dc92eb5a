#!/bin/bash
# [agent] watch_links and SIGUSR1 (SPEC section 3, "Speed"): the daemon runs
# in a hub namespace with interval = 1h, so that a run comes only from an
# event. Namespaces rr-lw0 (hub) and rr-lw1 (WAN), veths:
#   rrlw 10.231.40.1/24 <-> rrlw0 10.231.40.2  (carries the default route: watched)
#   rrlx 10.231.41.1/24 <-> rrlx0 10.231.41.2  (no default route, no source: ignored)
#   rrly 10.231.42.1/24 <-> rrly0              (a backup check's source: watched)
# Cuts: the WAN end of a veth set down (carrier lost on the hub, no change
# made on the hub itself), a default route removed and added, an address
# removed from the source interface. Verified by the daemon's log lines, not
# by timing. A check whose path has no carrier, or no route, fails at once
# with that as its detail ("no carrier on rrlw", "no route to host"), not
# with a timeout: the tcp, http and ping checks over rrlw, and "far"
# (10.231.43.1, reached by the default route only).
set -u
. "$RR_SRCDIR/tests/lib/common.sh"
need_root
rr_need_cmd ip python3 unshare
rr_trap
rr_tmpdir
T=$RR_TMPDIR
RERD=$RR_BUILDDIR/rerouterd
HUB=rr-lw0
WAN=rr-lw1
PORT=20140

rr_on_cleanup "ip netns del $WAN; ip netns del $HUB"
ip netns add $HUB || rr_die "cannot make namespace $HUB"
ip netns add $WAN || rr_die "cannot make namespace $WAN"
ip -n $HUB link set lo up
ip -n $WAN link set lo up
ip link add rrlw netns $HUB type veth peer name rrlw0 netns $WAN
ip link add rrlx netns $HUB type veth peer name rrlx0 netns $WAN
ip link add rrly netns $HUB type veth peer name rrly0 netns $WAN
ip -n $HUB addr add 10.231.40.1/24 dev rrlw
ip -n $HUB addr add 10.231.41.1/24 dev rrlx
ip -n $HUB addr add 10.231.42.1/24 dev rrly
ip -n $WAN addr add 10.231.40.2/24 dev rrlw0
ip -n $WAN addr add 10.231.43.1/32 dev lo
ip -n $WAN addr add 10.231.41.2/24 dev rrlx0
for l in rrlw rrlx rrly; do ip -n $HUB link set $l up; done
for l in rrlw0 rrlx0 rrly0; do ip -n $WAN link set $l up; done
ip -n $HUB route add default via 10.231.40.2 dev rrlw

# A listener in the WAN for the tcp and http checks: an HTTP answer to
# whoever connects (the tcp checks hang up before reading it).
cat >"$T/listen.py" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(64)
while True:
    c, _ = s.accept()
    try:
        c.settimeout(1)
        c.recv(4096)
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    except OSError:
        pass
    c.close()
PY
rr_spawn listener ip netns exec $WAN python3 "$T/listen.py" $PORT
wait_for 5 rr_tcp_open 10.231.40.2 $PORT $HUB || rr_die "the WAN listener did not start"

cat >"$T/rerouter.conf" <<CONF
[agent]
interval = 1h
# Every link check must fail to fail a run, so that none of them is
# cancelled when the path goes: each shows its own detail.
failed_checks = 4
runs = 2
state_db = $T/state.db

[check "wan"]
type = tcp
target = 10.231.40.2:$PORT
timeout = 500ms

[check "web"]
type = http
target = http://10.231.40.2:$PORT/
timeout = 500ms

[check "echo"]
type = ping
target = 10.231.40.2
timeout = 500ms

[check "far"]
type = tcp
target = 10.231.43.1:$PORT
timeout = 500ms

[check "via-rrly"]
type = tcp
target = 10.231.42.2:$PORT
timeout = 500ms
source = rrly
role = backup

[transport]
database = $T/transport.db
action = none
flush =
CONF
"$RERD" --check-config -c "$T/rerouter.conf" >"$T/check-config.out" 2>&1 ||
	rr_die "the configuration is refused: $(cat "$T/check-config.out")"

# Without a journal the daemon logs to stderr; hide a host journal, if any.
# rr_spawn writes it to $T/rerouterd.log.
rr_spawn rerouterd ip netns exec $HUB unshare -m sh -c \
	'[ -d /run/systemd/journal ] && mount -t tmpfs tmpfs /run/systemd/journal; exec "$@"' sh \
	"$RERD" -v --allow-root -c "$T/rerouter.conf"
LOG=$T/rerouterd.log
DPID=$RR_PID

runs() { grep -c 'run \(PASSED\|FAILED\)' "$LOG"; }
more_runs() { [ "$(runs)" -gt "$1" ]; }
logged() { grep -q -- "$1" "$LOG"; }
# expect_event TEXT: a line naming TEXT that starts a run, then a run.
expect_event() {
	local before=$1 what=$2
	if wait_for 5 logged "link event ($what.*: \(starting a run now\|a run starts when the one in flight ends\)"; then
		rr_ok "link event: $what starts a run"
	else
		rr_fail "no run started on '$what' (log: $(tail -3 "$LOG"))"
	fi
	wait_for 5 more_runs "$before" && rr_ok "a run followed ($what)" || rr_fail "no run after '$what'"
}

rr_step "the first run"
wait_for 10 more_runs 0 || rr_die "no first run (log: $(tail -5 "$LOG"))"
wait_for 5 logged 'link watch: 2 of .* links watched' && rr_ok "two links watched (rrlw, rrly)" ||
	rr_fail "watched links: $(grep 'link watch' "$LOG")"

rr_step "an unwatched link loses its carrier: ignored"
ip -n $WAN link set rrlx0 down

rr_step "SIGUSR1 starts a run"
n=$(runs)
kill -USR1 "$DPID"
wait_for 5 logged 'SIGUSR1: \(starting a run now\|a run starts when the one in flight ends\)' &&
	rr_ok "SIGUSR1 logged" || rr_fail "SIGUSR1 not logged"
wait_for 5 more_runs "$n" && rr_ok "a run followed SIGUSR1" || rr_fail "no run after SIGUSR1"

rr_step "the WAN end of the watched veth goes down: carrier lost on the hub"
n=$(runs)
ip -n $WAN link set rrlw0 down
expect_event "$n" "rrlw: carrier lost"
# expect_detail CHECK TEXT: the check failed with TEXT as its detail.
expect_detail() {
	if wait_for 5 logged "check $1 (.*): fail: $2, "; then
		rr_ok "check $1 failed at once: $2"
	else
		rr_fail "check $1 did not fail with '$2': $(grep "check $1 " "$LOG" | tail -1)"
	fi
}
for c in wan web echo far; do expect_detail $c "no carrier on rrlw"; done

rr_step "and up again"
n=$(runs)
ip -n $WAN link set rrlw0 up
expect_event "$n" "rrlw: carrier back"

rr_step "the default route removed, then added"
n=$(runs)
ip -n $HUB route del default
expect_event "$n" "rrlw: IPv4 default route removed"
expect_detail far "no route to host"
n=$(runs)
ip -n $HUB route add default via 10.231.40.2 dev rrlw
expect_event "$n" "rrlw: IPv4 default route added"

rr_step "the source interface loses its address"
n=$(runs)
ip -n $HUB addr del 10.231.42.1/24 dev rrly
expect_event "$n" "rrly: address 10.231.42.1 removed"

rr_step "nothing came from the unwatched link"
if grep -q 'link event (rrlx' "$LOG"; then
	rr_fail "an event on rrlx started a run: $(grep 'link event (rrlx' "$LOG")"
else
	rr_ok "rrlx ignored"
fi
grep 'link event\|SIGUSR1' "$LOG" | sed 's/^/    log: /' >&2

rr_kill_pid "$DPID" 5
if [ "$RR_FAILURES" -ne 0 ]; then
	rr_log "test-linkwatch: $RR_FAILURES failure(s); log in $LOG"
	exit 1
fi
rr_log "test-linkwatch: all assertions passed"
