#!/bin/sh
# rerouterd --once against live and dead peers of every check type, in two
# network namespaces the test creates: rr-pr0 (the hub, where rerouterd runs)
# and rr-pr1 (the WAN, where the peers live), joined by two veth links:
#   link A: rrpra 10.231.1.1/26  <-> rrpra0 10.231.1.2/26 (+ fd00:231:1::1/2)
#   link B: rrprb 10.231.1.65/26 <-> rrprb0 10.231.1.66/26
# Targets: 10.231.1.200 (on the WAN's lo; reached by A by default, by B when
# bound to rrprb, marked 0x2310 or sent from 10.231.1.65), and 10.231.1.250,
# routed to the WAN which drops it (the black hole); 10.231.1.251, on a
# blackhole route in the hub itself, so that sending to it fails at once; and
# fd00:231:1::250, routed to the WAN which drops it (a dead AAAA).
# Timings are printed as figures, never asserted.
set -eu
: "${RR_SRCDIR:?}" "${RR_BUILDDIR:?}" "${RR_TMPDIR:?}"

if [ "$(id -u)" != 0 ]; then
	echo "SKIP: needs root (network namespaces)"
	exit 77
fi
for cmd in ip smtp-sink python3 unshare; do
	command -v $cmd >/dev/null || { echo "SKIP: $cmd is missing"; exit 77; }
done

RRD=$RR_BUILDDIR/rerouterd
PEERS=$RR_SRCDIR/tests/probes/peers.py
T=$RR_TMPDIR
HUB=rr-pr0
WAN=rr-pr1
TGT=10.231.1.200
HOLE=10.231.1.250
SENDFAIL=10.231.1.251
HOLE6=fd00:231:1::250
failures=0

cleanup() {
	set +e
	for ns in $WAN $HUB; do
		pids=$(ip netns pids $ns 2>/dev/null)
		[ -n "$pids" ] && kill $pids 2>/dev/null
	done
	for ns in $WAN $HUB; do
		ip netns del $ns 2>/dev/null
	done
}
trap cleanup EXIT
trap "exit 1" INT TERM HUP PIPE

in_hub() { ip netns exec $HUB "$@"; }
in_wan() { ip netns exec $WAN "$@"; }

wait_for() { # DESCRIPTION COMMAND...: poll for up to 10 s
	what=$1
	shift
	i=0
	until "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 100 ]; then
			echo "FAIL: timed out waiting for $what"
			exit 1
		fi
		sleep 0.1
	done
}

listening() { # NS PORT
	ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q LISTEN
}

echo "== setup: namespaces $HUB (hub) and $WAN (WAN)"
ip netns add $HUB
ip netns add $WAN
in_hub ip link set lo up
in_wan ip link set lo up
ip link add rrpra netns $HUB type veth peer name rrpra0 netns $WAN
ip link add rrprb netns $HUB type veth peer name rrprb0 netns $WAN
in_hub ip addr add 10.231.1.1/26 dev rrpra
in_hub ip addr add fd00:231:1::1/64 dev rrpra nodad
in_hub ip addr add 10.231.1.65/26 dev rrprb
in_wan ip addr add 10.231.1.2/26 dev rrpra0
in_wan ip addr add fd00:231:1::2/64 dev rrpra0 nodad
in_wan ip addr add 10.231.1.66/26 dev rrprb0
in_wan ip addr add $TGT/32 dev lo
for l in rrpra rrprb; do in_hub ip link set $l up; in_wan ip link set ${l}0 up; done
in_hub ip route add $TGT/32 via 10.231.1.2 dev rrpra metric 10
in_hub ip route add $TGT/32 via 10.231.1.66 dev rrprb metric 20
in_hub ip route add $HOLE/32 via 10.231.1.2 dev rrpra
in_wan ip route add blackhole $HOLE/32
in_hub ip route add blackhole $SENDFAIL/32
in_hub ip -6 route add $HOLE6/128 via fd00:231:1::2 dev rrpra
in_wan ip -6 route add blackhole $HOLE6/128
# Policy routing as on a multi-WAN hub: mark 0x2310 or source 10.231.1.65 -> link B.
in_hub ip route add $TGT/32 via 10.231.1.66 dev rrprb table 2310
in_hub ip rule add fwmark 0x2310 lookup 2310 pref 100
in_hub ip rule add from 10.231.1.65 lookup 2310 pref 101

echo "== setup: peers in $WAN"
mkdir -p "$T/www" "$T/mail"
echo hello >"$T/www/index.html"
(cd "$T/www" && exec ip netns exec $WAN python3 -m http.server 20080 --bind $TGT) >"$T/http.log" 2>&1 &
(cd "$T/www" && exec ip netns exec $WAN python3 -m http.server 20180 --bind fd00:231:1::2) >"$T/http6.log" 2>&1 &
in_wan python3 "$PEERS" http500 $TGT 20081 >"$T/http500.log" 2>&1 &
in_wan smtp-sink -u nobody $TGT:20025 50 >"$T/sink.log" 2>&1 &
in_wan python3 "$PEERS" smtp421 $TGT 20026 >"$T/smtp421.log" 2>&1 &
in_wan python3 "$PEERS" silent $TGT 20027 >"$T/silent.log" 2>&1 &
in_wan python3 "$PEERS" hangup $TGT 20028 >"$T/hangup.log" 2>&1 &
in_wan python3 "$PEERS" http103 $TGT 20082 >"$T/http103.log" 2>&1 &
in_wan python3 "$PEERS" smtphelo $TGT 20029 >"$T/smtphelo.log" 2>&1 &
in_wan python3 "$PEERS" httplong $TGT 20083 >"$T/httplong.log" 2>&1 &
for p in 20080 20180 20081 20025 20026 20027 20028 20082 20029 20083; do
	wait_for "a listener on port $p" listening $WAN $p
done
# Fresh links drop their first packets while neighbours are found: wait until
# each path carries a connection, so the checks measure the paths, not that.
reach() { # ADDR PORT [SOURCE]
	in_hub python3 -c 'import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 0.5,
	(sys.argv[3], 0) if len(sys.argv) > 3 else None)' "$@"
}
wait_for "link A (IPv4)" reach $TGT 20080
wait_for "link A (IPv6)" reach fd00:231:1::2 20180
wait_for "link B" reach $TGT 20080 10.231.1.65

now_ms() { echo $(($(date +%s%N) / 1000000)); }

once() { # NAME CONF [COMMAND PREFIX...]: run rerouterd --once in the hub
	name=$1 conf=$2
	shift 2
	start=$(now_ms)
	set +e
	in_hub "$@" "$RRD" --once -c "$conf" >"$T/$name.out" 2>"$T/$name.err"
	rc=$?
	set -e
	wall=$(($(now_ms) - start))
	cat "$T/$name.out"
	[ -s "$T/$name.err" ] && sed 's/^/stderr: /' "$T/$name.err"
	echo "figure: run '$name' took $wall ms (exit $rc)"
}

expect() { # RUN CHECK PASS|FAIL [OUTCOME]: one line of the table
	line=$(awk -v n="$2" '$1 == n' "$T/$1.out")
	if [ -z "$line" ]; then
		echo "FAIL: $1: no line for $2"
		failures=$((failures + 1))
		return
	fi
	res=$(echo "$line" | awk '{print $4}')
	rest=$(echo "$line" | awk '{ $1 = $2 = $3 = $4 = $5 = ""; sub(/^ +/, ""); print }')
	if [ "$res" != "$3" ] || { [ $# -ge 4 ] && [ "${rest#"$4":}" = "$rest" ]; }; then
		echo "FAIL: $1: $2: expected $3 ${4:-}, got: $line"
		failures=$((failures + 1))
	else
		echo "ok: $1: $2 $3 ${4:-}"
	fi
}

ms_of() { awk -v n="$2" '$1 == n {print $5}' "$T/$1.out"; }

expect_rc() { # RUN WANT GOT
	if [ "$2" != "$3" ]; then
		echo "FAIL: $1: exit $3, expected $2"
		failures=$((failures + 1))
	else
		echo "ok: $1: exit $3"
	fi
}

header() { # FAILED_CHECKS
	cat <<EOC
[agent]
interval = 1m
failed_checks = $1
[ping]
count = 2
min_replies = 1
timeout = 1s
EOC
}

check() { # NAME TYPE TARGET [key=value...]
	printf '[check "%s"]\ntype = %s\ntarget = %s\ntimeout = 1s\n' "$1" "$2" "$3"
	shift 3
	for kv in "$@"; do
		printf '%s = %s\n' "${kv%%=*}" "${kv#*=}"
	done
}

echo "== every type against live and dead peers (both links up)"
{
	header 1
	check ping-up ping $TGT
	check ping-twin ping $TGT
	check ping6-up ping fd00:231:1::2
	check ping-hole ping $HOLE
	check ping-sendfail ping $SENDFAIL
	check http-200 http http://$TGT:20080/
	check http6-200 http "http://[fd00:231:1::2]:20180/"
	check http-500 http http://$TGT:20081/
	check http-hole http http://$HOLE:20080/
	check http-103 http http://$TGT:20082/
	check http-long http http://$TGT:20083/
	check http-smtp http http://$TGT:20025/
	check http-hangup http http://$TGT:20028/
	check tcp-open tcp $TGT:20080
	check tcp-closed tcp $TGT:20099
	check tcp-hole tcp $HOLE:20080
	check smtp-sink smtp $TGT:20025
	check smtp-421 smtp $TGT:20026
	check smtp-silent smtp $TGT:20027
	check smtp-hole smtp $HOLE:25
	check smtp-helo smtp $TGT:20029
	check backup-web http http://$TGT:20080/ role=backup
} >"$T/live.conf"
if "$RRD" --check-config -c "$T/live.conf" 2>&1 | grep -q "not implemented"; then
	echo "SKIP: this build has no configuration parser yet"
	exit 77
fi
once live "$T/live.conf"
expect_rc live 1 $rc
# ping-up, ping-twin, ping-hole and ping-sendfail share one liboping object
# (same options): each must still get its own outcome, although the send to
# ping-sendfail fails in every round (ping_send() < 0 for the whole group).
expect live ping-up PASS
expect live ping-twin PASS
expect live ping6-up PASS
expect live ping-hole FAIL timeout
expect live ping-sendfail FAIL
grep -q "^ping-sendfail .*send failed: " "$T/live.out" && echo "ok: ping-sendfail says its send failed" ||
	{ echo "FAIL: ping-sendfail reason"; failures=$((failures + 1)); }
expect live http-200 PASS
expect live http6-200 PASS
expect live http-500 FAIL "bad status"
expect live http-hole FAIL timeout
# Our own HTTP dialogue (talk.c): an interim 1xx is skipped, a header line
# longer than its buffer is passed over (headers are not read), a peer that
# speaks another protocol or hangs up is a protocol error.
expect live http-103 PASS
expect live http-long PASS
expect live http-smtp FAIL "protocol error"
expect live http-hangup FAIL "protocol error"
grep -q "^http-hangup .*connection closed before the status line" "$T/live.out" &&
	echo "ok: http-hangup says where the connection ended" ||
	{ echo "FAIL: http-hangup reason"; failures=$((failures + 1)); }
expect live tcp-open PASS
expect live tcp-closed FAIL refused
expect live tcp-hole FAIL timeout
expect live smtp-sink PASS
expect live smtp-421 FAIL "bad status"
expect live smtp-silent FAIL timeout
expect live smtp-hole FAIL timeout
expect live smtp-helo PASS
grep -q "^backup-web (backup) " "$T/live.out" && echo "ok: backup check marked" ||
	{ echo "FAIL: backup check not marked"; failures=$((failures + 1)); }
grep -q "^run FAILED (11 of 21 checks failed)$" "$T/live.out" && echo "ok: verdict counts link checks" ||
	{ echo "FAIL: verdict"; failures=$((failures + 1)); }
for c in http-hole tcp-hole smtp-hole smtp-silent; do
	echo "figure: $c (timeout 1000 ms) ended after $(ms_of live $c) ms"
done
echo "figure: ping-hole (2 x 1000 ms) ended after $(ms_of live ping-hole) ms"

echo "== a passing run exits 0"
{ header 1; check tcp-open tcp $TGT:20080; check ping-up ping $TGT; } >"$T/pass.conf"
once pass "$T/pass.conf"
expect_rc pass 0 $rc

echo "== the daemon's early verdict: hanging link checks cancelled, the backup check kept"
# failed_checks = 2: tcp-closed and http-500 fail at once, so the run's
# verdict is certain while the checks into the black hole still wait; they
# are cancelled (and let go: ASan's leak check in the sanitizer build sees
# the sockets' and handles' memory), the backup check into the hole is not.
{
	header 2 | sed "/^interval = /a state_db = $T/early.db"
	check tcp-closed tcp $TGT:20099
	check http-500 http http://$TGT:20081/
	check ping-hole ping $HOLE
	check http-hole http http://$HOLE:20080/
	check tcp-hole tcp $HOLE:20080
	check smtp-hole smtp $HOLE:25
	check backup-hole tcp $HOLE:20080 role=backup
	printf '[transport]\ndatabase = %s/transport.db\naction = none\nflush =\n' "$T"
} >"$T/early.conf"
# Not in_hub: a function in the background would be a subshell, and the
# SIGTERM would reach it instead of the daemon.
ip netns exec $HUB "$RRD" -v --allow-root -c "$T/early.conf" >"$T/early.log" 2>&1 &
EPID=$!
early_done() { grep -q "check backup-hole .*: fail" "$T/early.log"; }
wait_for "the daemon's first run" early_done
kill -TERM $EPID
wait $EPID || { echo "FAIL: the early-verdict daemon exited non-zero"; failures=$((failures + 1)); }
sed 's/^/early: /' "$T/early.log"
for c in ping-hole http-hole tcp-hole smtp-hole; do
	if grep -q "check $c (.*): cancelled: not needed: 2 link checks failed already" "$T/early.log"; then
		echo "ok: early: $c cancelled"
	else
		echo "FAIL: early: $c was not cancelled"
		failures=$((failures + 1))
	fi
done
grep -q "check backup-hole (.*, backup): fail: no connection in 1000 ms" "$T/early.log" &&
	echo "ok: early: the backup check ran to its timeout" ||
	{ echo "FAIL: early: the backup check did not run to its timeout"; failures=$((failures + 1)); }
grep -q "run FAILED: 2 of 6 link checks failed" "$T/early.log" &&
	echo "ok: early: cancelled checks do not vote (2 of 6 failed)" ||
	{ echo "FAIL: early: the run's count"; failures=$((failures + 1)); }

echo "== link A down: source and mark decide the path"
in_wan ip link set rrpra0 down
{
	header 1
	check ping-up ping $TGT
	check ping-a ping $TGT source=rrpra
	check ping-b ping $TGT source=rrprb
	check ping-mark ping $TGT mark=0x2310
	check tcp-default tcp $TGT:20080
	check tcp-a tcp $TGT:20080 source=rrpra
	check tcp-b tcp $TGT:20080 source=rrprb
	check tcp-mark tcp $TGT:20080 mark=0x2310
	check tcp-srcaddr tcp $TGT:20080 source=10.231.1.65
	check http-a http http://$TGT:20080/ source=rrpra
	check http-b http http://$TGT:20080/ source=rrprb
	check http-mark http http://$TGT:20080/ mark=0x2310
	check smtp-a smtp $TGT:20025 source=rrpra
	check smtp-b smtp $TGT:20025 source=rrprb
	check smtp-mark smtp $TGT:20025 mark=0x2310
} >"$T/down.conf"
once down "$T/down.conf"
expect_rc down 1 $rc
for c in ping-up ping-a tcp-default tcp-a http-a smtp-a; do expect down $c FAIL; done
for c in ping-b ping-mark tcp-b tcp-mark tcp-srcaddr http-b http-mark smtp-b smtp-mark; do
	expect down $c PASS
done
in_wan ip link set rrpra0 up
wait_for "link A back" in_hub python3 -c "import socket; socket.create_connection(('$TGT', 20080), 0.5)"

echo "== a DNS server that never answers: 20 hostname checks"
in_hub python3 "$PEERS" dnsdrop 127.0.1.53 53 >"$T/dns.log" 2>&1 &
wait_for "the silent DNS server" sh -c "ip netns exec $HUB ss -Hlun 'sport = :53' | grep -q 127.0.1.53"
printf 'nameserver 127.0.1.53\noptions timeout:5 attempts:2\n' >"$T/resolv.conf"
printf 'hosts: files dns\n' >"$T/nsswitch.conf"
# dual.rr-pr.test: a dead AAAA and a live A. gai.conf ranks ULA IPv6 above
# IPv4 (glibc's default puts fc00::/7 below IPv4), so the dead AAAA comes first.
printf '127.0.0.1 localhost\n::1 localhost\n%s wan.rr-pr.test\n%s dual.rr-pr.test\n%s dual.rr-pr.test\n' \
	$TGT $HOLE6 $TGT >"$T/hosts"
printf 'precedence ::1/128 50\nprecedence fc00::/7 45\nprecedence ::/0 40\nprecedence ::ffff:0:0/96 35\n' \
	>"$T/gai.conf"
{
	header 1
	# Beside 5 pings stuck in DNS: a literal (grouped) and a name from
	# /etc/hosts (alone) must pass.
	check lit-ping ping $TGT count=1
	check lit-ping-hole ping $HOLE count=1
	check file-ping ping wan.rr-pr.test count=1
	# Happy Eyeballs: the live A is tried while the dead AAAA still waits.
	check dual-tcp tcp dual.rr-pr.test:20080
	for i in 1 2 3 4 5; do
		check dns-ping$i ping host$i.rr-pr.test count=1
		check dns-http$i http http://web$i.rr-pr.test:20080/
		check dns-tcp$i tcp tcp$i.rr-pr.test:20080
		check dns-smtp$i smtp mx$i.rr-pr.test:25
	done
} >"$T/dns.conf"
# shellcheck disable=SC2016
once dns "$T/dns.conf" unshare -m --propagation private sh -c '
	mount --bind "$0/resolv.conf" /etc/resolv.conf &&
	mount --bind "$0/nsswitch.conf" /etc/nsswitch.conf &&
	mount --bind "$0/hosts" /etc/hosts &&
	mount --bind "$0/gai.conf" /etc/gai.conf &&
	getent ahosts dual.rr-pr.test | sed "s/^/order: /" >&2 && exec "$@"' "$T"
expect_rc dns 1 $rc
for i in 1 2 3 4 5; do
	for t in ping http tcp smtp; do expect dns dns-$t$i FAIL "dns timeout"; done
done
expect dns lit-ping PASS
expect dns lit-ping-hole FAIL timeout
expect dns file-ping PASS
expect dns dual-tcp PASS
grep -m1 "order: " "$T/dns.err" | grep -q "$HOLE6" && echo "ok: the dead AAAA was the first address" ||
	{ echo "FAIL: dual.rr-pr.test does not resolve to the dead AAAA first"; failures=$((failures + 1)); }
echo "figure: dual-tcp (dead AAAA first, live A) connected after $(ms_of dns dual-tcp) ms"
echo "figure: 20 hostname checks (timeout 1000 ms) against a silent DNS server (and 3 pings beside them): run took $wall ms"

if [ $failures -ne 0 ]; then
	echo "test-probes: $failures assertion(s) failed"
	exit 1
fi
echo "test-probes: all assertions passed"
