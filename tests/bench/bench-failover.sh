#!/bin/bash
# Benchmark, not a test (issue 12): how soon rerouter and Debian's monit
# switch the same connector row after a cut, one tool after the other (never
# both at once: rerouter would correct monit's writes as drift).
#
# Lab, in namespaces of its own: hub (rr-fo0, where the tool runs) - router
# (rr-fo1) - WAN (rr-fo2, the targets on 10.231.51.1):
#   rrfoh 10.231.50.1/30 <-> rrfoh0 10.231.50.2   (the hub's WAN link, its default route)
#   rrfow 10.231.50.5/30 <-> rrfow0 10.231.50.6
# Scenarios, each with N cuts (default 10) at a random phase:
#   far-end: a blackhole route for the targets in the router (no carrier change on the hub)
#   local:   the router's end of the hub's link goes down (the hub loses carrier)
#   lab1s:   far-end's cut at tests/lab's pace, for continuity with earlier figures
# Both tools: three checks (ping, tcp, http); failed_checks 2, runs 2, `for 2
# cycles`. far-end and local: rerouter interval 30 s, fast_interval 1 s,
# timeouts 1 s; monit `set daemon 30`, timeouts 1 s. lab1s: rerouter
# interval 1 s (fast_interval = interval), timeouts 900 ms; monit `set daemon
# 1` (its least) and timeouts 1 s (its grammar takes whole seconds only).
# A poller reads the connector row every 20 ms; failover = cut to row
# changed, recovery = restore to row back. rerouter's floor per cut: phase
# (cut to the next run's start, from its state database) + fast_interval +
# timeout.
#
# Usage: bench-failover.sh [N_CUTS]   (root; RR_SRCDIR, RR_BUILDDIR)
# RR_BENCH_TOOLS="rerouter monit" and RR_BENCH_SCENARIOS="far-end lab1s local"
# choose what runs. Each tool and scenario's cuts go to
# $RR_BENCH_DATA/failover-TOOL-SCENARIO.json (default $RR_BUILDDIR/bench);
# tests/bench/report.py makes the Markdown and the plot of them. A full run
# (10 cuts, both tools, all scenarios) takes about an hour: monit needs up to
# 90 s a cut each way at 30 s.
set -u
: "${RR_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${RR_BUILDDIR:=$RR_SRCDIR/build}"
. "$RR_SRCDIR/tests/lib/common.sh"
need_root
rr_need_cmd ip python3 sqlite3 apt-get dpkg
rr_trap
rr_tmpdir
T=$RR_TMPDIR
N=${1:-10}
TOOLS=${RR_BENCH_TOOLS:-rerouter monit}
SCENARIOS=${RR_BENCH_SCENARIOS:-far-end lab1s local}
DATA=${RR_BENCH_DATA:-$RR_BUILDDIR/bench}
HUB=rr-fo0 RTR=rr-fo1 WAN=rr-fo2
TGT=10.231.51.1
mkdir -p "$DATA" || rr_die "cannot make $DATA"

# monit from Debian's archive, unpacked here, so that no service starts.
MONIT=$(command -v monit || true)
if [ -z "$MONIT" ] && [[ $TOOLS == *monit* ]]; then
	(cd "$T" && apt-get download monit >/dev/null 2>&1 && dpkg -x monit_*.deb "$T/monit-root") ||
		rr_die "cannot fetch Debian's monit package"
	MONIT=$T/monit-root/usr/bin/monit
fi

rr_step "lab: $HUB - $RTR - $WAN"
# Only what this run made is deleted: a second run must not tear down the first's lab.
for ns in $HUB $RTR $WAN; do
	ip netns add $ns || rr_die "netns $ns (in use by another run?)"
	rr_on_cleanup "ip netns del $ns"
	ip -n $ns link set lo up || rr_die "netns $ns"
done
ip link add rrfoh netns $HUB type veth peer name rrfoh0 netns $RTR
ip link add rrfow netns $RTR type veth peer name rrfow0 netns $WAN
ip -n $HUB addr add 10.231.50.1/30 dev rrfoh
ip -n $RTR addr add 10.231.50.2/30 dev rrfoh0
ip -n $RTR addr add 10.231.50.5/30 dev rrfow
ip -n $WAN addr add 10.231.50.6/30 dev rrfow0
ip -n $WAN addr add $TGT/32 dev lo
ip -n $HUB link set rrfoh up; ip -n $RTR link set rrfoh0 up
ip -n $RTR link set rrfow up; ip -n $WAN link set rrfow0 up
ip -n $HUB route add default via 10.231.50.2 dev rrfoh
ip -n $RTR route add $TGT/32 via 10.231.50.6 dev rrfow
ip netns exec $RTR sysctl -qw net.ipv4.ip_forward=1
ip -n $WAN route add 10.231.50.0/30 via 10.231.50.5 dev rrfow0
cat >"$T/listen.py" <<'PY'
import http.server, socketserver, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
socketserver.ThreadingTCPServer.allow_reuse_address = True
for port in (20250, 20280):
    s = socketserver.ThreadingTCPServer((sys.argv[1], port), H)
    threading.Thread(target=s.serve_forever, daemon=True).start()
threading.Event().wait()
PY
rr_spawn wan-peers ip netns exec $WAN python3 "$T/listen.py" $TGT
wait_for 10 rr_tcp_open $TGT 20280 $HUB || rr_die "the WAN peers are not reachable from the hub"

TDB=$T/transport.db
new_db() {
	rm -f "$TDB" "$T/state.db"
	"$RR_BUILDDIR/rerouterctl" -c "$T/rerouter.conf" init >/dev/null || rr_die "rerouterctl init"
	sqlite3 "$TDB" "INSERT INTO send_connectors (name, smart_host, cost, enabled) VALUES
		('site-a', '[10.231.51.25]:25', 1, 1), ('site-b', '[10.231.52.25]:25', 2, 0)"
}
# write_confs SCENARIO: both tools' configurations at that scenario's pace.
write_confs() {
	local interval=30s fast=1s tmo=1s daemon=30 mtmo=1
	if [ "$1" = lab1s ]; then interval=1s fast=1s tmo=900ms daemon=1; fi
	cat >"$T/rerouter.conf" <<CONF
[agent]
interval = $interval
fast_interval = $fast
failed_checks = 2
runs = 2
failed_runs = 2
passed_runs = 2
initial_state = up
state_db = $T/state.db
[ping]
count = 1
min_replies = 1
timeout = $tmo
[check "ping"]
type = ping
target = $TGT
[check "tcp"]
type = tcp
target = $TGT:20250
timeout = $tmo
[check "http"]
type = http
target = http://$TGT:20280/
timeout = $tmo
[on_down]
disable = site-a
enable = site-b
[on_up]
enable = site-a
disable = site-b
[transport]
database = $TDB
action = none
flush =
CONF
	cat >"$T/monitrc" <<CONF
set daemon $daemon
set logfile $T/monit.log
set pidfile $T/monit.pid
set idfile $T/monit.id
set statefile $T/monit.state
check host wan with address $TGT
	if failed ping count 1 timeout $mtmo s for 2 cycles then exec "$T/switch.sh down" else if succeeded for 2 cycles then exec "$T/switch.sh up"
	if failed port 20250 type tcp timeout $mtmo s for 2 cycles then exec "$T/switch.sh down" else if succeeded for 2 cycles then exec "$T/switch.sh up"
	if failed port 20280 protocol http timeout $mtmo s for 2 cycles then exec "$T/switch.sh down" else if succeeded for 2 cycles then exec "$T/switch.sh up"
CONF
	chmod 600 "$T/monitrc"
}
cat >"$T/switch.sh" <<SH
#!/bin/sh
# monit's action: the same row change rerouter makes (\$1: down or up).
if [ "\$1" = down ]; then a=0 b=1; else a=1 b=0; fi
exec sqlite3 "$TDB" "UPDATE send_connectors SET enabled = \$a WHERE name = 'site-a'; UPDATE send_connectors SET enabled = \$b WHERE name = 'site-b'"
SH
chmod +x "$T/switch.sh"

start_tool() { # TOOL
	case $1 in
	rerouter) rr_spawn rerouterd ip netns exec $HUB "$RR_BUILDDIR/rerouterd" -v --allow-root -c "$T/rerouter.conf" ;;
	monit) rr_spawn monit ip netns exec $HUB "$MONIT" -I -c "$T/monitrc" ;;
	esac
	TOOL_PID=$RR_PID
}

# The cuts, timed in Python on CLOCK_MONOTONIC; the wall clock of each cut
# for rerouter's floor (its state database stores run starts on it). Each
# cut's figures are written as they come, so an interrupted run keeps them.
cat >"$T/cuts.py" <<'PY'
import json, random, sqlite3, subprocess, sys, time
tdb, sdb, scenario, n, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
HUB, RTR, TGT = "rr-fo0", "rr-fo1", "10.231.51.1"
BLACKHOLE = (["ip", "-n", RTR, "route", "replace", "blackhole", TGT + "/32"],
             ["ip", "-n", RTR, "route", "replace", TGT + "/32", "via", "10.231.50.6", "dev", "rrfow"])
CUTS = {"far-end": BLACKHOLE, "lab1s": BLACKHOLE,
        "local": (["ip", "-n", RTR, "link", "set", "rrfoh0", "down"],
                  ["ip", "-n", RTR, "link", "set", "rrfoh0", "up"])}
CUT, RESTORE = CUTS[scenario]
# The wait before a cut or a restore: uniform over several of the tool's
# cycles (30 s; lab1s: 1 s plus its checks), so the phase is random.
PHASE = (0, 5) if scenario == "lab1s" else (0, 30)
# The same waits for every tool (seeded by the scenario): the tools meet the
# same sequence of cuts, though each against its own cycle.
rng = random.Random(scenario)
def site_a():
    c = sqlite3.connect("file:%s?mode=ro" % tdb, uri=True, timeout=1)
    try:
        return c.execute("SELECT enabled FROM send_connectors WHERE name = 'site-a'").fetchone()[0]
    finally:
        c.close()
def wait_row(want, limit=300):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        try:
            if site_a() == want:
                return time.monotonic()
        except sqlite3.Error:
            pass
        time.sleep(0.02)
    return None
def first_run_after(real):
    if not sdb:
        return None
    try:
        c = sqlite3.connect("file:%s?mode=ro" % sdb, uri=True, timeout=1)
        r = c.execute("SELECT min(at_usec) FROM runs WHERE at_usec >= ?", (int(real * 1e6),)).fetchone()[0]
        c.close()
        return None if r is None else r / 1e6 - real
    except sqlite3.Error:
        return None
rows = []
if wait_row(1, 120) is None:
    sys.exit("the row never showed UP before the first cut")
for i in range(n):
    time.sleep(rng.uniform(*PHASE))
    real, t0 = time.time(), time.monotonic()
    subprocess.run(CUT, check=True)
    t1 = wait_row(0)
    phase_down = first_run_after(real)
    time.sleep(rng.uniform(*PHASE))
    real2, t2 = time.time(), time.monotonic()
    subprocess.run(RESTORE, check=True)
    t3 = wait_row(1)
    phase_up = first_run_after(real2)
    rows.append({"cut": i + 1, "failover": None if t1 is None else t1 - t0,
                 "recovery": None if t3 is None else t3 - t2,
                 "phase_down": phase_down, "phase_up": phase_up})
    print(json.dumps(rows[-1]), flush=True)
    json.dump(rows, open(out + ".new", "w"))
    subprocess.run(["mv", out + ".new", out], check=True)
    if t1 is None or t3 is None:
        break
PY

# The machine, for the report.
python3 - "$DATA/machine.json" <<'PY'
import json, os, platform, sys
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
json.dump({"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release()}, open(sys.argv[1], "w"))
PY

for scenario in $SCENARIOS; do
	for tool in $TOOLS; do
		rr_step "$tool, $scenario: $N cuts"
		write_confs "$scenario"
		new_db
		start_tool "$tool"
		sdb=""
		[ "$tool" = rerouter ] && sdb=$T/state.db
		rm -f "$DATA/failover-$tool-$scenario.json"
		python3 "$T/cuts.py" "$TDB" "$sdb" "$scenario" "$N" "$DATA/failover-$tool-$scenario.json" ||
			rr_warn "$tool, $scenario: the cuts did not complete"
		rr_kill_pid "$TOOL_PID" 5
	done
done
python3 "$RR_SRCDIR/tests/bench/report.py" --failover-only "$DATA"
rr_log "figures in $DATA (tests/bench/report.py DATA makes the results file)"
