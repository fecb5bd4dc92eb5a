#!/bin/bash
# Benchmark, not a test (issue 12): what rerouterd costs between runs. The
# daemon runs as under systemd (WatchdogSec=60s: WATCHDOG_USEC and a
# NOTIFY_SOCKET read by a listener here) with three checks (ping, tcp, http)
# on a healthy link, interval RR_BENCH_IDLE_INTERVAL (default 30s; at 2m,
# SPEC's default, the watchdog's pings fall between runs), watch_links on.
#   pass 1 (RR_BENCH_IDLE_SECS, default 120 s): perf stat (task-clock,
#     context switches, every thread) for CPU per hour, and every 100 ms each
#     thread's /proc/PID/task/TID/schedstat (CPU time, times scheduled in), so
#     each wake-up and its CPU falls in a run (its start, from the state
#     database, -0.1 s to +1 s) or between runs.
#   pass 2 (RR_BENCH_STRACE_SECS, default 65 s): strace -f -ttt -T of the same daemon, to name every wake-up
#     between runs (the fd that epoll returned, its kind, what came next).
# Lab: rr-bi0 (hub) - rr-bi1 (WAN, 10.231.83.1).
#
# Usage: bench-idle.sh   (root; RR_SRCDIR, RR_BUILDDIR)
# Writes $RR_BENCH_DATA/idle-INTERVAL.json (default $RR_BUILDDIR/bench).
set -u
: "${RR_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${RR_BUILDDIR:=$RR_SRCDIR/build}"
. "$RR_SRCDIR/tests/lib/common.sh"
need_root
rr_need_cmd ip python3 sqlite3 strace perf
rr_trap
rr_tmpdir
T=$RR_TMPDIR
DATA=${RR_BENCH_DATA:-$RR_BUILDDIR/bench}
SECS=${RR_BENCH_IDLE_SECS:-120}
STRACE_SECS=${RR_BENCH_STRACE_SECS:-65}
INTERVAL=${RR_BENCH_IDLE_INTERVAL:-30s}
HUB=rr-bi0 WAN=rr-bi1
TGT=10.231.83.1
mkdir -p "$DATA" || rr_die "cannot make $DATA"

rr_step "lab: $HUB - $WAN"
rr_on_cleanup "ip netns del $WAN; ip netns del $HUB"
for ns in $HUB $WAN; do ip netns add $ns && ip -n $ns link set lo up || rr_die "netns $ns"; done
ip link add rrbiv netns $HUB type veth peer name rrbiv0 netns $WAN
ip -n $HUB addr add 10.231.82.1/30 dev rrbiv
ip -n $WAN addr add 10.231.82.2/30 dev rrbiv0
ip -n $WAN addr add $TGT/32 dev lo
ip -n $HUB link set rrbiv up
ip -n $WAN link set rrbiv0 up
ip -n $HUB route add default via 10.231.82.2 dev rrbiv
rr_spawn http ip netns exec $WAN python3 "$RR_SRCDIR/tests/probes/peers.py" http200 $TGT 20080
wait_for 10 rr_tcp_open $TGT 20080 $HUB || rr_die "the HTTP peer is not reachable from the hub"

cat >"$T/rerouter.conf" <<CONF
[agent]
interval = $INTERVAL
fast_interval = 1s
initial_state = up
state_db = $T/state.db
[ping]
count = 1
min_replies = 1
timeout = 1s
[check "ping"]
type = ping
target = $TGT
[check "tcp"]
type = tcp
target = $TGT:20080
timeout = 1s
[check "http"]
type = http
target = http://$TGT:20080/
timeout = 1s
[on_down]
disable = site-a
enable = site-b
[on_up]
enable = site-a
disable = site-b
[transport]
database = $T/transport.db
action = none
flush =
CONF
"$RR_BUILDDIR/rerouterctl" -c "$T/rerouter.conf" init >/dev/null || rr_die "rerouterctl init"
sqlite3 "$T/transport.db" "INSERT INTO send_connectors (name, smart_host, cost, enabled) VALUES
	('site-a', '[10.231.83.25]:25', 1, 1), ('site-b', '[10.231.84.25]:25', 2, 0)"

# What systemd's notify socket would receive: each datagram, timed.
cat >"$T/notify.py" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as log:
    while True:
        m = s.recv(4096).decode(errors="replace").replace("\n", " ")
        log.write("%.3f %s\n" % (time.time(), m))
        log.flush()
PY
rr_spawn notify python3 "$T/notify.py" "$T/notify.sock" "$T/notify.log"
wait_for 5 test -S "$T/notify.sock" || rr_die "no notify socket"
rr_spawn rerouterd ip netns exec $HUB env NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC=60000000 \
	"$RR_BUILDDIR/rerouterd" --allow-root -c "$T/rerouter.conf"
RPID=$RR_PID
wait_for 10 grep -q READY=1 "$T/notify.log" || rr_die "rerouterd did not get ready: $(tail -3 "$T/rerouterd.log")"
has_run() { [ "$(sqlite3 "$T/state.db" 'SELECT count(*) FROM runs' 2>/dev/null)" -ge 1 ] 2>/dev/null; }
wait_for 10 has_run || rr_die "no first run"
sleep 2 # the first run's tail (its state written, the transport compared)

rr_step "pass 1: perf stat and schedstat every 100 ms for $SECS s"
perf stat -x, -e task-clock,context-switches -o "$T/perf.txt" -p "$RPID" -- sleep "$SECS" &
PERF=$!
python3 - "$RPID" "$SECS" "$T/pass1.json" <<'PY'
import glob, json, sys, time
pid, secs, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
def sample():            # tid: (CPU ns, times scheduled in)
    r = {}
    for f in glob.glob("/proc/%s/task/*/schedstat" % pid):
        try:
            a = open(f).read().split()
        except OSError:
            continue     # a worker thread that just ended
        r[f.split("/")[4]] = (int(a[0]), int(a[2]))
    return r
s = []
t_end = time.time() + secs
while time.time() < t_end:
    s.append((time.time(), sample()))
    time.sleep(0.1)
json.dump(s, open(out, "w"))
PY
wait $PERF || rr_die "perf stat failed: $(cat "$T/perf.txt")"
sqlite3 "$T/state.db" 'SELECT at_usec FROM runs' >"$T/runs.txt"

rr_step "pass 2: strace -f for $STRACE_SECS s"
timeout -s INT "$STRACE_SECS" strace -f -ttt -T -qq -o "$T/strace.txt" -p "$RPID" 2>/dev/null
sqlite3 "$T/state.db" 'SELECT at_usec FROM runs' >"$T/runs.txt"
ls -l /proc/"$RPID"/fd >"$T/fds.txt" 2>/dev/null
rr_kill_pid "$RPID" 5

python3 "$RR_SRCDIR/tests/bench/idle-figures.py" "$T" "$SECS" "$STRACE_SECS" "$INTERVAL" "$DATA/idle-$INTERVAL.json" ||
	rr_die "idle figures"
rr_log "written: $DATA/idle-$INTERVAL.json"
