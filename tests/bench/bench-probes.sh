#!/bin/sh
# Benchmark, not a test: one `rerouterd --once` run of 1,000 checks (250 each
# of ping, http, tcp, smtp; half of them to a black hole), timeout 1 s, in
# namespaces of its own (rr-prb0: the hub, rr-prb1: the WAN; veth rrprc).
# Reports the run's wall time, rerouterd's CPU time and peak RSS as figures;
# targets: wall <= timeout + 100 ms, CPU < 1 ms per check, RSS < 16 MiB.
# Usage: bench-probes.sh [--report] [N_CHECKS]   (root; RR_BUILDDIR, RR_SRCDIR)
# RR_BENCH_TYPES="tcp http" limits the mix (default: all four types).
set -eu
[ "${1:-}" = "--report" ] && shift
N=${1:-1000}
: "${RR_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${RR_BUILDDIR:=$RR_SRCDIR/build}"
if [ "$(id -u)" != 0 ]; then
	echo "bench-probes: needs root (network namespaces); skipped"
	exit 77
fi
RRD=$RR_BUILDDIR/rerouterd
PEERS=$RR_SRCDIR/tests/probes/peers.py
T=${RR_TMPDIR:-$(mktemp -d)}
HUB=rr-prb0
WAN=rr-prb1
TGT=10.231.1.200
HOLE=10.231.1.250

cleanup() {
	set +e
	for ns in $WAN $HUB; do
		pids=$(ip netns pids $ns 2>/dev/null)
		[ -n "$pids" ] && kill $pids 2>/dev/null
		ip netns del $ns 2>/dev/null
	done
}
trap cleanup EXIT
trap "exit 1" INT TERM HUP PIPE

in_hub() { ip netns exec $HUB "$@"; }
in_wan() { ip netns exec $WAN "$@"; }
wait_for() { # DESCRIPTION COMMAND...
	what=$1
	shift
	i=0
	until "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -le 100 ] || { echo "bench-probes: gave up waiting for $what"; exit 1; }
		sleep 0.1
	done
}
listening() { ip netns exec $WAN ss -Hltn "sport = :$1" | grep -q LISTEN; }

ip netns add $HUB
ip netns add $WAN
in_hub ip link set lo up
in_wan ip link set lo up
ip link add rrprc netns $HUB type veth peer name rrprc0 netns $WAN
in_hub ip addr add 10.231.1.1/26 dev rrprc
in_wan ip addr add 10.231.1.2/26 dev rrprc0
in_wan ip addr add $TGT/32 dev lo
in_hub ip link set rrprc up
in_wan ip link set rrprc0 up
in_hub ip route add $TGT/32 via 10.231.1.2
in_hub ip route add $HOLE/32 via 10.231.1.2
in_wan ip route add blackhole $HOLE/32
in_wan python3 "$PEERS" http200 $TGT 20080 >"$T/http.log" 2>&1 &
in_wan smtp-sink -u nobody $TGT:20025 1024 >"$T/sink.log" 2>&1 &
wait_for 20080 listening 20080
wait_for 20025 listening 20025
wait_for "the link" in_hub python3 -c "import socket; socket.create_connection(('$TGT', 20080), 0.5)"

{
	printf '[agent]\ninterval = 1m\nfailed_checks = 1\n[ping]\ncount = 1\nmin_replies = 1\ntimeout = 1s\n'
	set -- ${RR_BENCH_TYPES:-ping http tcp smtp}
	i=0
	while [ $i -lt "$N" ]; do
		if [ $((i / $# % 2)) = 0 ]; then host=$TGT; else host=$HOLE; fi
		eval "t=\${$((i % $# + 1))}"
		case $t in
		ping) tgt=$host ;;
		http) tgt=http://$host:20080/ ;;
		tcp) tgt=$host:20080 ;;
		smtp) tgt=$host:20025 ;;
		esac
		printf '[check "c%04d"]\ntype = %s\ntarget = %s\ntimeout = 1s\n' $i $t $tgt
		i=$((i + 1))
	done
} >"$T/bench.conf"

# The floor: a run of 2 checks (shared libraries, mostly libcurl's TLS stack).
printf '[agent]\ninterval = 1m\nfailed_checks = 1\n[check "p"]\ntype = ping\ntarget = %s\ntimeout = 1s\n[check "t"]\ntype = tcp\ntarget = %s:20080\ntimeout = 1s\n' \
	$TGT $TGT >"$T/base.conf"

# wait4() gives the child's own CPU time and peak RSS.
in_hub python3 - "$RRD" "$T/bench.conf" "$T/bench.out" "$T/base.conf" <<'PY'
import os, sys, time
rrd, conf, out, base = sys.argv[1:5]
pid = os.fork()
if pid == 0:
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.execv(rrd, [rrd, "--once", "-c", base])
_, _, base_ru = os.wait4(pid, 0)
t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.execv(rrd, [rrd, "--once", "-c", conf])
_, status, ru = os.wait4(pid, 0)
wall = (time.monotonic() - t0) * 1000
lines = open(out).read().splitlines()
rows = [l for l in lines[1:] if not l.startswith("run ")]
passed = sum(1 for l in rows if l.split()[3] == "PASS")
outcomes = {}
for l in rows:
    if l.split()[3] == "FAIL":
        k = l.split(None, 5)[5].split(":")[0]
        outcomes[k] = outcomes.get(k, 0) + 1
slowest = max(int(l.split()[4]) for l in rows) if rows else 0
cpu = (ru.ru_utime + ru.ru_stime) * 1000
n = len(rows)
print(f"figure: {n} checks, {passed} passed, failed by outcome: {outcomes}")
print(f"figure: wall time {wall:.0f} ms (target <= 1100 ms); slowest check {slowest} ms")
print(f"figure: CPU {cpu:.0f} ms = {cpu / max(n, 1):.3f} ms per check (user {ru.ru_utime*1000:.0f}, system {ru.ru_stime*1000:.0f}; target < 1 ms per check)")
print(f"figure: peak RSS {ru.ru_maxrss / 1024:.1f} MiB (target < 16 MiB); a 2-check run: {base_ru.ru_maxrss / 1024:.1f} MiB")
print(f"figure: exit status {os.waitstatus_to_exitcode(status)}; verdict: {lines[-1] if lines else '-'}")
PY
