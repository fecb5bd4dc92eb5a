#!/bin/bash
# Benchmark, not a test (issue 12): what one run of N checks costs rerouter
# and Debian's monit, the same checks against the same targets, one tool after
# the other. N = 10, 100, 1000 (RR_BENCH_N); the checks are ping, http, tcp,
# smtp in turn, half of them (in blocks) to an address black-holed in the WAN
# namespace; timeout 1 s.
#   rerouter: `rerouterd --once` (all checks at once), 3 times, the median by wall.
#   monit:    `monit -c FILE validate`: one cycle in the foreground, then exit;
#             N `check host` services of one test each, `then alert` (no mail
#             server: nothing is sent, nothing is forked).
# Wall time, user+system CPU and peak RSS come from wait4() on the tool's
# process. With --callgrind, instructions (Ir) of a 100-check and a 2-check
# `rerouterd --once` under callgrind instead (RR_BENCH_N is then ignored).
# Lab: rr-bc0 (hub) - rr-bc1 (WAN, 10.231.81.1 and the hole 10.231.81.250).
#
# Usage: bench-cost.sh [--callgrind]   (root; RR_SRCDIR, RR_BUILDDIR;
# RR_BENCH_TOOLS="rerouter monit" chooses the tools, RR_BENCH_N the sizes)
# Writes $RR_BENCH_DATA/cost.json or callgrind.json (default $RR_BUILDDIR/bench).
set -u
: "${RR_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${RR_BUILDDIR:=$RR_SRCDIR/build}"
. "$RR_SRCDIR/tests/lib/common.sh"
need_root
rr_need_cmd ip python3 smtp-sink apt-get dpkg
rr_trap
rr_tmpdir
T=$RR_TMPDIR
MODE=cost
[ "${1:-}" = --callgrind ] && MODE=callgrind
[ $MODE = callgrind ] && rr_need_cmd valgrind
SIZES=${RR_BENCH_N:-10 100 1000}
TOOLS=${RR_BENCH_TOOLS:-rerouter monit}
DATA=${RR_BENCH_DATA:-$RR_BUILDDIR/bench}
HUB=rr-bc0 WAN=rr-bc1
TGT=10.231.81.1 HOLE=10.231.81.250
RRD=$RR_BUILDDIR/rerouterd
mkdir -p "$DATA" || rr_die "cannot make $DATA"

MONIT=$(command -v monit || true)
if [ -z "$MONIT" ] && [ $MODE = cost ] && [[ $TOOLS == *monit* ]]; then
	(cd "$T" && apt-get download monit >/dev/null 2>&1 && dpkg -x monit_*.deb "$T/monit-root") ||
		rr_die "cannot fetch Debian's monit package"
	MONIT=$T/monit-root/usr/bin/monit
fi

rr_step "lab: $HUB - $WAN"
rr_on_cleanup "ip netns del $WAN; ip netns del $HUB"
for ns in $HUB $WAN; do ip netns add $ns && ip -n $ns link set lo up || rr_die "netns $ns"; done
ip link add rrbcv netns $HUB type veth peer name rrbcv0 netns $WAN
ip -n $HUB addr add 10.231.80.1/30 dev rrbcv
ip -n $WAN addr add 10.231.80.2/30 dev rrbcv0
ip -n $WAN addr add $TGT/32 dev lo
ip -n $HUB link set rrbcv up
ip -n $WAN link set rrbcv0 up
ip -n $HUB route add $TGT/32 via 10.231.80.2
ip -n $HUB route add $HOLE/32 via 10.231.80.2
ip -n $WAN route add blackhole $HOLE/32
rr_spawn http ip netns exec $WAN python3 "$RR_SRCDIR/tests/probes/peers.py" http200 $TGT 20080
rr_spawn sink ip netns exec $WAN smtp-sink -u nobody $TGT:20025 1024
wait_for 10 rr_tcp_open $TGT 20080 $HUB || rr_die "the HTTP peer is not reachable from the hub"
wait_for 10 rr_tcp_open $TGT 20025 $HUB || rr_die "the SMTP peer is not reachable from the hub"

# check_list N: "NAME TYPE HOST" per check, the same for both tools.
check_list() {
	local i=0 host types=(ping http tcp smtp)
	while [ $i -lt "$1" ]; do
		if [ $((i / 4 % 2)) = 0 ]; then host=$TGT; else host=$HOLE; fi
		printf 'c%04d %s %s\n' $i "${types[i % 4]}" $host
		i=$((i + 1))
	done
}
rerouter_conf() { # N
	printf '[agent]\ninterval = 1m\nfailed_checks = 1\n[ping]\ncount = 1\nmin_replies = 1\ntimeout = 1s\n'
	check_list "$1" | while read -r name type host; do
		case $type in
		ping) tgt=$host ;;
		http) tgt=http://$host:20080/ ;;
		tcp) tgt=$host:20080 ;;
		smtp) tgt=$host:20025 ;;
		esac
		printf '[check "%s"]\ntype = %s\ntarget = %s\ntimeout = 1s\n' "$name" "$type" "$tgt"
	done
}
monit_conf() { # N
	printf 'set daemon 3600\nset logfile %s/monit.log\nset pidfile %s/monit.pid\nset idfile %s/monit.id\nset statefile %s/monit.state\n' "$T" "$T" "$T" "$T"
	check_list "$1" | while read -r name type host; do
		case $type in
		ping) test='ping count 1 timeout 1 s' ;;
		http) test='port 20080 protocol http timeout 1 s' ;;
		tcp) test='port 20080 type tcp timeout 1 s' ;;
		smtp) test='port 20025 protocol smtp timeout 1 s' ;;
		esac
		printf 'check host %s with address %s\n\tif failed %s then alert\n' "$name" "$host" "$test"
	done
}

# measure.py OUT TOOL N REPEAT CMD...: wait4() figures of CMD, as JSON lines.
cat >"$T/measure.py" <<'PY'
import json, os, re, statistics, sys, time
out, tool, n, repeat, cmd = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
res = []
for _ in range(repeat):
    log = out + ".stdout"
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.execv(cmd[0], cmd)
    _, status, ru = os.wait4(pid, 0)
    wall = (time.monotonic() - t0) * 1000
    text = open(log).read()
    if tool == "rerouter":   # a line per check: NAME TYPE TARGET PASS|FAIL MS ...
        passed = sum(1 for l in text.splitlines() if len(l.split()) > 3 and l.split()[3] == "PASS")
    else:                    # monit logs a line per failed test
        passed = n - len(set(re.findall(r"error\s*: '(c\d{4})'", open(os.environ["MONIT_LOG"]).read())))
    res.append({"tool": tool, "n": n, "wall_ms": wall, "cpu_ms": (ru.ru_utime + ru.ru_stime) * 1000,
                "user_ms": ru.ru_utime * 1000, "sys_ms": ru.ru_stime * 1000, "rss_kib": ru.ru_maxrss,
                "passed": passed, "exit": os.waitstatus_to_exitcode(status)})
    if tool == "monit":
        os.unlink(os.environ["MONIT_LOG"])
best = sorted(res, key=lambda r: r["wall_ms"])[len(res) // 2]
best["repeats"] = len(res)
print(json.dumps(best), flush=True)
with open(out, "a") as f:
    f.write(json.dumps(best) + "\n")
PY

in_hub() { ip netns exec $HUB "$@"; }

if [ $MODE = cost ]; then
	: >"$T/cost.jsonl"
	for n in $SIZES; do
		rerouter_conf "$n" >"$T/r$n.conf"
		"$RRD" --check-config -c "$T/r$n.conf" >/dev/null || rr_die "r$n.conf is not valid"
		[[ $TOOLS == *monit* ]] || continue
		monit_conf "$n" >"$T/m$n.rc"
		chmod 600 "$T/m$n.rc"
		"$MONIT" -t -c "$T/m$n.rc" >/dev/null || rr_die "m$n.rc is not valid"
	done
	for n in $SIZES; do
		[[ $TOOLS == *rerouter* ]] || break
		rr_step "rerouter, $n checks"
		in_hub python3 "$T/measure.py" "$T/cost.jsonl" rerouter "$n" 3 "$RRD" --once -c "$T/r$n.conf"
	done
	for n in $SIZES; do
		[[ $TOOLS == *monit* ]] || break
		rr_step "monit, $n checks (one after the other: about $((n / 2)) s)"
		rm -f "$T/monit.state"
		in_hub env MONIT_LOG="$T/monit.log" python3 "$T/measure.py" "$T/cost.jsonl" monit "$n" 1 \
			"$MONIT" -c "$T/m$n.rc" validate
	done
	# The figures of a tool not measured now (RR_BENCH_TOOLS) are kept.
	python3 - "$T/cost.jsonl" "$DATA/cost.json" <<'PY'
import json, os, sys
new = [json.loads(l) for l in open(sys.argv[1])]
old = json.load(open(sys.argv[2])) if os.path.exists(sys.argv[2]) else []
keep = [r for r in old if (r["tool"], r["n"]) not in {(x["tool"], x["n"]) for x in new}]
json.dump(keep + new, open(sys.argv[2], "w"), indent=1)
PY
	rr_log "written: $DATA/cost.json"
	exit 0
fi

# callgrind: Ir counts instructions executed, whatever the machine's load.
rr_step "callgrind: rerouterd --once, 100 checks and 2 checks, twice each"
: >"$T/cg.jsonl"
for n in ${RR_BENCH_CG_N:-100 2 100 2}; do
	[ -f "$T/r$n.conf" ] || rerouter_conf "$n" >"$T/r$n.conf"
	out=$T/cg-$n-$RANDOM.out
	in_hub valgrind --tool=callgrind --callgrind-out-file="$out" "$RRD" --once -c "$T/r$n.conf" \
		>"$T/cg.stdout" 2>"$T/cg.stderr"
	ir=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out")
	[ -n "$ir" ] || rr_die "no summary in $out: $(tail -3 "$T/cg.stderr")"
	passed=$(awk '$4 == "PASS"' "$T/cg.stdout" | wc -l)
	rr_info "$n checks: Ir $ir, $passed passed"
	printf '{"what": "%d checks", "n": %d, "ir": %s, "passed": %d}\n' "$n" "$n" "$ir" "$passed" >>"$T/cg.jsonl"
done
python3 - "$T/cg.jsonl" "$DATA/callgrind.json" "$(valgrind --version)" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
method = ("`valgrind --tool=callgrind rerouterd --once -c FILE` (%s) in the cost lab's namespaces: the checks "
          "of bench-cost.sh (half black-holed, timeout 1 s), each run twice; Ir is the `summary:` line, every "
          "thread included. The 2-check run is the floor (start-up, configuration; libcurl is initialised only by a check that needs it: https, a proxy, a STARTTLS relay)." % sys.argv[3])
json.dump({"method": method, "runs": runs}, open(sys.argv[2], "w"), indent=1)
PY
rr_log "written: $DATA/callgrind.json"
