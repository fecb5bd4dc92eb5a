#!/bin/bash
# The Debian package (issue 11, SPEC section 9): dpkg-buildpackage from a
# clean copy of the tree, lintian, then the .deb installed with apt on a
# booted Debian 12 (mmdebstrap + systemd-nspawn) next to Debian's own
# postfix, postfix-sqlite, D-Bus and polkit. tests/package/inside.sh does the
# assertions inside; this script builds, boots, and cuts the WAN on request.
#   rr-pkg-hub  the container's network namespace (10.231.90.1, relay B on lo)
#   rr-pkg-wan  "the internet": ping, web 10.231.90.2:8080, relay A :25
# The Debian root is built once per test run (RR_PKG_ROOT_TAR: a tarball to
# reuse instead, for runs by hand). Runs once per tests/run: the ASan pass
# has nothing to add to a package build.
set -u
. "$RR_SRCDIR/tests/lib/common.sh"
need_root
[ "${RR_PASS:-}" = it-asan ] && rr_skip "the package is tested in the plain pass only"
rr_need_cmd dpkg-buildpackage lintian mmdebstrap systemd-nspawn smtp-sink python3
T=$RR_TMPDIR
HUB=rr-pkg-hub WAN=rr-pkg-wan
rr_trap

rr_step "dpkg-buildpackage -us -uc -b from a clean copy of the tree"
mkdir -p "$T/src"
if git -C "$RR_SRCDIR" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$RR_SRCDIR" && git ls-files -co --exclude-standard -z | tar --null -cf - -T -) | tar -xf - -C "$T/src"
else
	tar -C "$RR_SRCDIR" --exclude='./build*' --exclude=./debian/rerouter -cf - . | tar -xf - -C "$T/src"
fi
t0=$(date +%s)
(cd "$T/src" && dpkg-buildpackage -us -uc -b) >"$T/build.log" 2>&1 || { tail -30 "$T/build.log"; rr_die "dpkg-buildpackage failed"; }
rr_info "built in $(( $(date +%s) - t0 ))s"
DEB=$(ls "$T"/rerouter_*.deb)

rr_step "lintian"
lintian --pedantic --fail-on none "$T"/rerouter_*.changes >"$T/lintian.out" 2>&1
sed 's/^/    /' "$T/lintian.out" >&2
rr_check "lintian: no errors, no warnings" sh -c "! grep -Eq '^[EW]: ' '$T/lintian.out'"

rr_step "a Debian 12 root (mmdebstrap)"
ROOT=$T/root
if [ -n "${RR_PKG_ROOT_TAR:-}" ] && [ -s "$RR_PKG_ROOT_TAR" ]; then
	TAR=$RR_PKG_ROOT_TAR
else
	TAR=$T/root.tar
	t0=$(date +%s)
	mmdebstrap --variant=apt --include=systemd,systemd-sysv,dbus,polkitd,postfix,postfix-sqlite,iproute2,sqlite3,libcurl4,liboping0,libinih1,libsqlite3-0,ca-certificates,procps,man-db \
		bookworm "$TAR" >"$T/mmdebstrap.log" 2>&1 || { tail -20 "$T/mmdebstrap.log"; rr_die "mmdebstrap failed"; }
	rr_info "mmdebstrap took $(( $(date +%s) - t0 ))s"
fi
mkdir -p "$ROOT"
rr_on_cleanup "rm -rf '$ROOT'"
tar -C "$ROOT" -xf "$TAR"

rr_step "a fixture: databases made by the current build, as root, before the package"
FIX=$ROOT/var/lib/rerouter
mkdir -p "$FIX" "$ROOT/rr"
printf '[check "x"]\ntype = tcp\ntarget = 127.0.0.1:25\n[agent]\nfailed_checks = 1\nstate_db = %s\n[transport]\ndatabase = %s\n' \
	"$FIX/state.db" "$FIX/transport.db" >"$T/fixture.conf"
"$RR_BUILDDIR/rerouterctl" -c "$T/fixture.conf" init >"$T/fixture.log" 2>&1 ||
	{ cat "$T/fixture.log"; rr_die "rerouterctl init for the fixture failed"; }
sqlite3 "$FIX/transport.db" "INSERT INTO send_connectors (name, smart_host, cost, enabled) VALUES
	('site-a', '[10.231.90.2]:25', 1, 1), ('site-b', '[127.0.0.1]:2526', 2, 0);"
chmod 0600 "$FIX/transport.db"
touch "$ROOT/rr/fixture"

rr_step "install the .deb with apt (no network: its dependencies are in the root)"
# Not /tmp: systemd-nspawn mounts a tmpfs there.
mkdir -p "$ROOT/rr"
cp "$DEB" "$ROOT/rr/"
systemd-nspawn -q -D "$ROOT" --register=no --keep-unit --private-network \
	apt-get install -y "/rr/$(basename "$DEB")" >"$T/install.log" 2>&1 ||
	{ tail -30 "$T/install.log"; rr_die "apt-get install failed"; }
rr_check "install: no error from the maintainer scripts" sh -c "! grep -Ei 'error|failed' '$T/install.log'"
rr_check "install: tells how to enable" grep -q "systemctl enable --now rerouterd" "$T/install.log"

# The lab: checks on the WAN namespace; site-a by relay A there, site-b by relay B.
cp "$RR_SRCDIR/tests/package/inside.sh" "$ROOT/rr/inside.sh"
cat >"$ROOT/rr/rerouter.conf" <<'CONF'
[agent]
interval = 1s
failed_checks = 2
runs = 2
failed_runs = 2
passed_runs = 2
[ping]
count = 2
min_replies = 1
timeout = 300ms
[check "gateway"]
type = ping
target = 10.231.90.2
[check "web"]
type = http
target = http://10.231.90.2:8080/
timeout = 800ms
[check "relay-a"]
type = tcp
target = 10.231.90.2:25
timeout = 800ms
[on_down]
disable = site-a
enable = site-b
[on_up]
enable = site-a
disable = site-b
[transport]
unit = postfix.service
action = restart
CONF
cat >"$ROOT/rr/site2.conf" <<'CONF'
[agent]
interval = 1s
failed_checks = 1
runs = 1
failed_runs = 1
passed_runs = 1
[check "loopback"]
type = tcp
target = 127.0.0.1:25
timeout = 800ms
[transport]
action = none
CONF
cat >"$ROOT/etc/systemd/system/rr-pkg-test.service" <<'UNIT'
[Unit]
Description=rerouter package test
After=postfix.service dbus.service polkit.service
[Service]
Type=oneshot
ExecStart=/bin/bash /rr/inside.sh
ExecStopPost=/bin/systemctl poweroff --no-block
UNIT
ln -sf /etc/systemd/system/rr-pkg-test.service "$ROOT/etc/systemd/system/multi-user.target.wants/"

rr_step "the WAN: namespaces $HUB and $WAN"
for ns in $HUB $WAN; do ip netns del $ns 2>/dev/null; ip netns add $ns; done
rr_on_cleanup "ip netns del $HUB; ip netns del $WAN"
rr_on_cleanup "for p in \$(ip netns pids $WAN) \$(ip netns pids $HUB); do kill \$p; done 2>/dev/null"
ip link add rr-pkg-h0 netns $HUB type veth peer name rr-pkg-w0 netns $WAN
ip -n $HUB addr add 10.231.90.1/24 dev rr-pkg-h0
ip -n $WAN addr add 10.231.90.2/24 dev rr-pkg-w0
for ns in $HUB $WAN; do ip -n $ns link set lo up; done
ip -n $HUB link set rr-pkg-h0 up
ip -n $WAN link set rr-pkg-w0 up
# smtp-sink writes as nobody: it must reach its directories.
chmod o+x "$T"
mkdir -p "$T/relay-a" "$T/relay-b" "$T/www"
echo ok >"$T/www/index.html"
ip netns exec $WAN python3 -m http.server 8080 --bind 10.231.90.2 --directory "$T/www" >"$T/http.log" 2>&1 &
ip netns exec $WAN smtp-sink -u nobody -h relay-a.test -d "$T/relay-a/%M." 10.231.90.2:25 50 >"$T/relay-a.log" 2>&1 &
ip netns exec $HUB smtp-sink -u nobody -h relay-b.test -d "$T/relay-b/%M." 127.0.0.1:2526 50 >"$T/relay-b.log" 2>&1 &
chmod 777 "$T/relay-a" "$T/relay-b"
wait_for 10 ip netns exec $WAN bash -c 'exec 3<>/dev/tcp/10.231.90.2/8080' 2>/dev/null ||
	rr_die "the web target did not come up"

rr_step "boot the container in $HUB; the test unit runs inside.sh and powers off"
t0=$(date +%s)
timeout 400 systemd-nspawn -q -D "$ROOT" -b --register=no --keep-unit \
	--network-namespace-path=/run/netns/$HUB >"$T/boot.log" 2>&1 &
BOOT=$!
# The host's part: cut and restore the WAN when inside.sh asks.
while kill -0 $BOOT 2>/dev/null; do
	if [ -e "$ROOT/rr/want-cut" ] && [ ! -e "$ROOT/rr/cut" ]; then
		ip -n $WAN link set rr-pkg-w0 down && touch "$ROOT/rr/cut" && rr_info "WAN cut"
	fi
	if [ -e "$ROOT/rr/want-restore" ] && [ ! -e "$ROOT/rr/restored" ]; then
		ip -n $WAN link set rr-pkg-w0 up && touch "$ROOT/rr/restored" && rr_info "WAN restored"
	fi
	sleep 0.2
done
wait $BOOT
rc=$?
rr_info "container ran $(( $(date +%s) - t0 ))s (exit $rc)"

rr_step "results from inside"
[ -s "$ROOT/rr/result" ] || { tail -40 "$T/boot.log"; rr_die "no results from inside the container"; }
cp -a "$ROOT/rr" "$T/inside"
while read -r verdict what; do
	case $verdict in
	ok) rr_ok "$what" ;;
	FAIL) rr_fail "$what" ;;
	*) rr_info "$verdict $what" ;;
	esac
done <"$ROOT/rr/result"
rr_check "inside.sh ran to the end" grep -qx done "$ROOT/rr/result"
rr_check "the mail queued during the cut left by relay B" sh -c "grep -ls 'queued during the cut' '$T'/relay-b/* | grep -q ."
[ "$RR_FAILURES" = 0 ] || { tail -30 "$ROOT/rr/inside.log" >&2; rr_die "$RR_FAILURES failed"; }
echo "all passed"
