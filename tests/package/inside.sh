#!/bin/bash
# The installed-package test, run inside the booted Debian 12 container by
# rr-pkg-test.service (tests/package/test-package.sh) or as an autopkgtest
# (debian/tests/control, without a WAN: RR_PKG_WAN=no). It writes one line
# per assertion to $OUT ("ok ..." or "FAIL ..."), then "done".
# The WAN (relay A 10.231.90.2:25, web 10.231.90.2:8080) is cut and restored
# by the host on request: this script writes $RR/want-cut or $RR/want-restore
# and waits for $RR/cut or $RR/restored.
set -u
RR=${RR:-/rr}
OUT=${OUT:-$RR/result}
WAN=${RR_PKG_WAN:-yes}
CONF=/etc/rerouter/rerouter.conf
MAP=/etc/postfix/rerouter-transport.cf
DB=/var/lib/rerouter/transport.db
: >"$OUT"

ok() { echo "ok $*" >>"$OUT"; }
fail() { echo "FAIL $*" >>"$OUT"; }
check() { # DESCRIPTION CMD...
	local what=$1
	shift
	if "$@" >>"$RR/inside.log" 2>&1; then ok "$what"; else fail "$what"; fi
}
wait_for() { # SECONDS CMD...: poll every 0.1 s
	local end=$(( $(date +%s%N) / 1000000 + $1 * 1000 ))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $(( $(date +%s%N) / 1000000 )) -lt "$end" ] || return 1
		sleep 0.1
	done
}
host() { # REQUEST DONE: ask the host for a WAN change, wait until it is done
	touch "$RR/want-$1"
	wait_for 30 test -e "$RR/$2"
}
main_pid() { systemctl show -p MainPID --value "$1"; }
master_pid() { cat /var/spool/postfix/pid/master.pid 2>/dev/null | tr -d ' '; }
master_starts() { journalctl -b -q -o cat -t postfix/master | grep -c 'daemon started'; }
route() { runuser -u postfix -- postmap -q '*' "sqlite:$MAP"; }
state_is() { rerouterctl status 2>/dev/null | grep -qi "^state: *$1\b"; }

exec 2>>"$RR/inside.log"
set -x

# --- a fresh install stays inactive (SPEC section 9)
check "fresh install did not enable rerouterd" test ! -e /etc/systemd/system/multi-user.target.wants/rerouterd.service
check "fresh install did not start rerouterd" sh -c '! systemctl is-active rerouterd.service'
check "user _rerouter exists" getent passwd _rerouter
check "conffile root:_rerouter 0640" test "$(stat -c %U:%G:%a $CONF)" = root:_rerouter:640
check "transport database 0644 _rerouter in a 0755 directory" \
	test "$(stat -c %U:%a $DB):$(stat -c %a /var/lib/rerouter)" = _rerouter:644:755
for u in rerouterd.service rerouterd@site2.service; do
	check "systemd-analyze verify $u" systemd-analyze verify "$u"
done
systemd-analyze security --no-pager rerouterd.service >"$RR/security.txt" 2>&1
exposure=$(sed -n 's/.*Overall exposure level for rerouterd.service: \([0-9.]*\).*/\1/p' "$RR/security.txt")
echo "exposure $exposure" >>"$OUT"
check "systemd-analyze security exposure $exposure <= 2.5" awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 2.5) }'

# --- Postfix reads the map; the lab's config and connectors
cp /usr/share/doc/rerouter/examples/postfix-transport.cf "$MAP"
postconf -e "transport_maps = sqlite:$MAP" 'mydestination =' 'inet_interfaces = loopback-only' \
	'inet_protocols = ipv4' 'disable_dns_lookups = yes' 'smtp_host_lookup = native' \
	'smtp_connect_timeout = 2s' 'maximal_backoff_time = 10s' 'minimal_backoff_time = 5s' \
	'queue_run_delay = 5s'
# site-b disabled: the first decision (UP) finds the database right and
# restarts nothing. With a fixture (databases made before the package was
# installed, by root), they must be there already, and the files the daemon's.
if [ -e "$RR/fixture" ]; then
	check "install over a fixture: the connectors kept" test \
		"$(sqlite3 "$DB" "SELECT group_concat(name || '=' || enabled) FROM (SELECT * FROM send_connectors ORDER BY name)")" = "site-a=1,site-b=0"
	check "install over a fixture: databases owned by _rerouter" test \
		"$(stat -c %U $DB /var/lib/rerouter/state.db | sort -u)" = _rerouter
else
	runuser -u _rerouter -- sqlite3 "$DB" "INSERT INTO send_connectors (name, smart_host, cost, enabled) VALUES
		('site-a', '[10.231.90.2]:25', 1, 1), ('site-b', '[127.0.0.1]:2526', 2, 0);"
fi
cp "$RR/rerouter.conf" "$CONF"
check "the lab configuration passes --check-config" rerouterd --check-config
systemctl restart postfix.service
check "postfix reads the route of site-a" test "$(route)" = "smtp:[10.231.90.2]:25"

# --- configured: dpkg-reconfigure enables and starts it; wait for UP
dpkg-reconfigure -fnoninteractive rerouter
check "dpkg-reconfigure enabled rerouterd once configured" test -L /etc/systemd/system/multi-user.target.wants/rerouterd.service
check "rerouterd.service active" wait_for 30 systemctl is-active rerouterd.service
check "rerouterctl status: up" wait_for 30 state_is up
pid=$(main_pid rerouterd.service)
check "runs as _rerouter" test "$(stat -c %U /proc/$pid)" = _rerouter
caps=$(awk '/^Cap(Inh|Prm|Eff|Bnd|Amb):/ { printf "%s=%s ", $1, $2 }' /proc/$pid/status)
echo "caps $caps" >>"$OUT"
check "only CAP_NET_RAW (permitted, effective, bounding, ambient)" test "$caps" = \
	"CapInh:=0000000000002000 CapPrm:=0000000000002000 CapEff:=0000000000002000 CapBnd:=0000000000002000 CapAmb:=0000000000002000 "
check "the SMTP password reaches the unit as a credential" \
	sh -c "test \"\$(tr '\\0' '\\n' </proc/$pid/environ | sed -n 's/^CREDENTIALS_DIRECTORY=//p')\" = /run/credentials/rerouterd.service && test -e /run/credentials/rerouterd.service/smtp-password"
check "supplementary group postdrop" sh -c "grep -q \"^Groups:.*\\b$(getent group postdrop | cut -d: -f3)\\b\" /proc/$pid/status"

if [ "$WAN" = yes ]; then
	# --- a WAN cut: polkit lets _rerouter restart Debian's postfix.service
	m0=$(master_pid) s0=$(master_starts)
	host cut cut
	printf 'Subject: queued during the cut\n\nbody\n' | sendmail -f a@org1.test b@org2.test
	check "WAN cut: state down" wait_for 60 state_is down
	check "WAN cut: route switched to site-b" wait_for 30 sh -c "test \"\$(runuser -u postfix -- postmap -q '*' sqlite:$MAP)\" = 'smtp:[127.0.0.1]:2526'"
	check "WAN cut: postfix master restarted (PID changed)" wait_for 30 sh -c "test -n \"\$(cat /var/spool/postfix/pid/master.pid)\" && test \"\$(tr -d ' ' </var/spool/postfix/pid/master.pid)\" != '$m0'"
	check "WAN cut: mail queued during the cut left (queue empty)" wait_for 60 sh -c "postqueue -p | grep -q 'Mail queue is empty'"
	s1=$(master_starts)
	check "WAN cut: postfix started once for the change ($s0 -> $s1)" test "$s1" = $((s0 + 1))
	m1=$(master_pid)
	host restore restored
	check "restore: state up" wait_for 60 state_is up
	check "restore: route back to site-a" wait_for 30 sh -c "test \"\$(runuser -u postfix -- postmap -q '*' sqlite:$MAP)\" = 'smtp:[10.231.90.2]:25'"
	check "restore: postfix master restarted again" wait_for 30 sh -c "test \"\$(tr -d ' ' </var/spool/postfix/pid/master.pid)\" != '$m1'"
	check "restore: postfix started once for the change" wait_for 10 test "$(master_starts)" = $((s1 + 1))
	journalctl -b -q -o short-monotonic -u rerouterd.service >"$RR/rerouterd.journal"
fi

# --- a broken configuration on reload keeps the daemon running
pid=$(main_pid rerouterd.service)
cp "$CONF" "$RR/good.conf"
printf '[agent]\ninterval = soon\n' >>"$CONF"
systemctl reload rerouterd.service
check "reload with a broken config: the error is logged" wait_for 10 sh -c "journalctl -b -q -u rerouterd.service -o cat | grep -q 'reload rejected'"
check "reload with a broken config: still active, same PID" test "$(systemctl is-active rerouterd.service):$(main_pid rerouterd.service)" = "active:$pid"
cp "$RR/good.conf" "$CONF"
systemctl reload rerouterd.service

# --- a second instance on its own config and state
cp "$RR/site2.conf" /etc/rerouter/site2.conf
chown root:_rerouter /etc/rerouter/site2.conf
chmod 0640 /etc/rerouter/site2.conf
systemctl start rerouterd@site2.service
check "rerouterd@site2 active beside rerouterd" wait_for 30 sh -c 'systemctl is-active rerouterd@site2.service && systemctl is-active rerouterd.service'
check "rerouterd@site2 keeps its state in /var/lib/rerouter/site2" wait_for 30 test -s /var/lib/rerouter/site2/state.db

# --- after two restarts, postfix can still read the transport database
systemctl restart rerouterd.service
systemctl restart rerouterd.service
check "after two restarts: active" wait_for 30 systemctl is-active rerouterd.service
check "after two restarts: postmap -q '*' as postfix" test "$(route)" = "smtp:[10.231.90.2]:25"
check "after two restarts: transport database still 0644 in 0755" \
	test "$(stat -c %a $DB):$(stat -c %a /var/lib/rerouter)" = 644:755

# --- purge: nothing left but the transport database Postfix still reads
apt-get purge -y rerouter >"$RR/purge.out" 2>&1
check "purge: keeps transport.db with a warning while transport_maps names it" \
	sh -c "grep -q 'keeping /var/lib/rerouter/transport.db' $RR/purge.out && test -f $DB"
check "purge: no user, no group" sh -c '! getent passwd _rerouter && ! getent group _rerouter'
check "purge: no configuration" test ! -e /etc/rerouter
check "purge: no state database" sh -c '! test -e /var/lib/rerouter/state.db && ! test -e /var/lib/rerouter/site2'
check "purge: no unit left" sh -c '! ls /lib/systemd/system/rerouterd* /etc/systemd/system/*/rerouterd* 2>/dev/null | grep . && ! systemctl is-active rerouterd.service rerouterd@site2.service'
check "purge: postfix still reads the kept database" test "$(route)" = "smtp:[10.231.90.2]:25"

set +x
journalctl -b -q -o short-monotonic >"$RR/journal.txt" 2>&1
echo done >>"$OUT"
