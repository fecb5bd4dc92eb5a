#!/bin/bash
# TLS and proxies in the http and smtp checks: rerouterd --once against HTTPS,
# SMTP STARTTLS and an HTTP proxy in a WAN namespace, with a throwaway CA and
# certificates made here (in $RR_TMPDIR, never kept). Two namespaces:
# rr-tl0 (the hub, where rerouterd runs) and rr-tl1 (the WAN), one veth:
#   rrtlv 10.231.120.1/24 <-> rrtlv0 10.231.120.2/24
# The WAN's lo holds 10.231.121.1 (TGT: every server, the hub routes it) and
# 10.231.121.9 (HIDDEN: the hub has no route to it, only the proxy reaches it,
# so a check that passes through the proxy cannot have gone round it).
# The servers are tests/probes/tlspeers.py, one process; its log (one line per
# request or SMTP command) shows what each server really saw.
set -eu
: "${RR_SRCDIR:?}" "${RR_BUILDDIR:?}" "${RR_TMPDIR:?}"
. "$RR_SRCDIR/tests/lib/common.sh"

need_root
rr_need_cmd ip ss openssl python3 unshare
rr_trap

RRD=$RR_BUILDDIR/rerouterd
PEERS=$RR_SRCDIR/tests/probes/tlspeers.py
T=$RR_TMPDIR
HUB=rr-tl0
WAN=rr-tl1
TGT=10.231.121.1
HIDDEN=10.231.121.9
NAME=wan.rr-tl.test

in_hub() { ip netns exec "$HUB" "$@"; }
in_wan() { ip netns exec "$WAN" "$@"; }

rr_step "certificates: a test CA, another CA, and leaf certificates"
# ca NAME: a self-signed CA (EC keys: quick to make).
ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj "/CN=rerouter test $1" -keyout "$T/$1.key" -out "$T/$1.pem" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>>"$T/openssl.log"
}
# leaf NAME CA SAN: a server certificate for SAN, signed by CA.
leaf() {
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-subj "/CN=$1" -keyout "$T/$1.key" -out "$T/$1.csr" 2>>"$T/openssl.log"
	printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$3" \
		>"$T/$1.ext"
	openssl x509 -req -in "$T/$1.csr" -CA "$T/$2.pem" -CAkey "$T/$2.key" -CAcreateserial \
		-days 2 -extfile "$T/$1.ext" -out "$T/$1.pem" 2>>"$T/openssl.log"
}
ca testca
ca otherca
leaf good testca "IP:$TGT,IP:$HIDDEN,DNS:$NAME"
leaf stranger otherca "IP:$TGT,IP:$HIDDEN,DNS:$NAME"
leaf wrongname testca "IP:10.231.121.99,DNS:elsewhere.rr-tl.test"
openssl verify -CAfile "$T/testca.pem" "$T/good.pem" >/dev/null ||
	rr_die "the good certificate does not verify against the test CA"
if openssl verify -CAfile "$T/testca.pem" "$T/stranger.pem" >/dev/null 2>&1; then
	rr_die "the other CA's certificate verifies against the test CA"
fi
chmod 644 "$T"/*.pem

rr_step "namespaces $HUB (hub) and $WAN (WAN)"
ip netns add $HUB
rr_on_cleanup "ip netns del $HUB"
ip netns add $WAN
rr_on_cleanup "ip netns del $WAN"
in_hub ip link set lo up
in_wan ip link set lo up
ip link add rrtlv netns $HUB type veth peer name rrtlv0 netns $WAN
in_hub ip addr add 10.231.120.1/24 dev rrtlv
in_wan ip addr add 10.231.120.2/24 dev rrtlv0
in_wan ip addr add $TGT/32 dev lo
in_wan ip addr add $HIDDEN/32 dev lo
in_hub ip link set rrtlv up
in_wan ip link set rrtlv0 up
in_hub ip route add $TGT/32 via 10.231.120.2 dev rrtlv

rr_step "servers in $WAN"
G=$T/good.pem,$T/good.key
S=$T/stranger.pem,$T/stranger.key
W=$T/wrongname.pem,$T/wrongname.key
rr_spawn peers ip netns exec $WAN python3 "$PEERS" \
	https-good=https,$TGT,21443,"$G" \
	https-stranger=https,$TGT,21444,"$S" \
	https-wrongname=https,$TGT,21445,"$W" \
	smtp-good=smtptls,$TGT,21025,"$G" \
	smtp-stranger=smtptls,$TGT,21026,"$S" \
	smtp-drop=smtpdrop,$TGT,21027,"$G" \
	proxy=proxy,$TGT,21128 \
	hidden-http=http,$HIDDEN,21080 \
	hidden-https=https,$HIDDEN,21443,"$G"
LOG=$T/peers.log
listening() { in_wan ss -Hltn "src $1:$2" | grep -q LISTEN; }
for p in 21443 21444 21445 21025 21026 21027 21128; do
	wait_for 10 listening $TGT $p || rr_die "nothing listens on $TGT:$p (see $LOG)"
done
for p in 21080 21443; do
	wait_for 10 listening $HIDDEN $p || rr_die "nothing listens on $HIDDEN:$p (see $LOG)"
done
# A fresh veth drops its first packets while neighbours are found: wait until
# the path carries a connection, so the checks measure TLS, not that.
reach() { in_hub python3 -c "import socket; socket.create_connection(('$TGT', 21128), 0.5)"; }
wait_for 10 reach || rr_die "the hub cannot reach $TGT"

# check NAME TYPE TARGET [key=value...]: one [check] section.
check() {
	printf '[check "%s"]\ntype = %s\ntarget = %s\ntimeout = 3s\n' "$1" "$2" "$3"
	shift 3
	local kv
	for kv in "$@"; do
		printf '%s = %s\n' "${kv%%=*}" "${kv#*=}"
	done
}

CA=ca_file=$T/testca.pem
{
	printf '[agent]\ninterval = 1m\nfailed_checks = 1\n'
	check https-good http https://$TGT:21443/ "$CA"
	check https-system http https://$TGT:21443/
	check https-stranger http https://$TGT:21444/ "$CA"
	check https-wrongname http https://$TGT:21445/ "$CA"
	check https-noverify http https://$TGT:21444/ tls_verify=no
	check smtp-good smtp $TGT:21025 "$CA"
	check smtp-stranger smtp $TGT:21026 "$CA"
	check smtp-noverify smtp $TGT:21026 tls_verify=no
	check smtp-drop smtp $TGT:21027 "$CA"
	check hidden-direct http http://$HIDDEN:21080/
	check via-proxy http http://$HIDDEN:21080/via-proxy proxy=http://$TGT:21128
	check via-connect http https://$HIDDEN:21443/via-connect proxy=http://$TGT:21128 "$CA"
	check proxy-refused http http://$HIDDEN:21080/ proxy=http://$TGT:21129
	# By name (from the hosts file below): the DNS entry of the certificate.
	check https-name http https://$NAME:21443/by-name "$CA"
	check https-alias http https://alias.rr-tl.test:21443/by-alias "$CA"
} >"$T/tls.conf"
printf '127.0.0.1 localhost\n::1 localhost\n%s %s alias.rr-tl.test\n' $TGT $NAME >"$T/hosts"
printf 'hosts: files\n' >"$T/nsswitch.conf"

# once RUN CONF [COMMAND PREFIX...]: rerouterd --once in the hub, its table
# in $T/RUN.out; sets rc.
once() {
	local run=$1 conf=$2
	shift 2
	set +e
	in_hub "$@" "$RRD" --once -c "$conf" >"$T/$run.out" 2>"$T/$run.err"
	rc=$?
	set -e
	cat "$T/$run.out" >&2
	[ -s "$T/$run.err" ] && sed 's/^/stderr: /' "$T/$run.err" >&2
	return 0
}

rr_step "rerouterd --once (the hosts file bound in a mount namespace of its own)"
# shellcheck disable=SC2016
once tls "$T/tls.conf" unshare -m --propagation private sh -c '
	mount --bind "$0/hosts" /etc/hosts &&
	mount --bind "$0/nsswitch.conf" /etc/nsswitch.conf && exec "$@"' "$T"
rr_expect_eq "rerouterd --once exits 1 (a run with failed checks)" 1 "$rc" || true

# expect CHECK PASS|FAIL [OUTCOME]: the check's line in the table of run $RUN.
RUN=tls
expect() {
	local line res rest
	line=$(awk -v n="$1" '$1 == n' "$T/$RUN.out")
	if [ -z "$line" ]; then
		rr_fail "$1: no line in the output"
		return
	fi
	res=$(awk '{print $4}' <<<"$line")
	rest=$(awk '{ $1 = $2 = $3 = $4 = $5 = ""; sub(/^ +/, ""); print }' <<<"$line")
	if [ "$res" != "$2" ] || { [ $# -ge 3 ] && [ "${rest#"$3":}" = "$rest" ]; }; then
		rr_fail "$1: expected $2 ${3:-}, got: $line"
	else
		rr_ok "$1: $2 ${rest:+($rest)}"
	fi
}
expect https-good PASS
expect https-system FAIL "tls error"
expect https-stranger FAIL "tls error"
expect https-wrongname FAIL "tls error"
expect https-noverify PASS
expect smtp-good PASS
expect smtp-stranger FAIL "tls error"
expect smtp-noverify PASS
expect smtp-drop FAIL "tls error"
expect hidden-direct FAIL unreachable
expect via-proxy PASS
expect via-connect PASS
expect proxy-refused FAIL refused
expect https-name PASS
expect https-alias FAIL "tls error"

rr_step "what the servers saw"
sed 's/^/peers: /' "$LOG" >&2
# saw DESCRIPTION REGEX: a line of the servers' log.
saw() { rr_check "$1" grep -Eq "$2" "$LOG"; }
# seen COUNT DESCRIPTION REGEX: that many lines of the servers' log match.
seen() { rr_expect_eq "$2" "$1" "$(grep -Ec "$3" "$LOG")" || true; }
H='10\.231\.120\.1'
# Two checks reach each of these servers; only the one that verifies sends.
seen 1 "https-good: one GET (https-system's verification failed first)" "^https-good $H: GET /$"
seen 1 "https-stranger: one GET (https-noverify's)" "^https-stranger $H: GET /$"
seen 0 "https-wrongname: no GET" "^https-wrongname .*: GET"
# Each SMTP check said STARTTLS: a change that skipped TLS would show here.
seen 1 "smtp-good received STARTTLS" "^smtp-good $H: STARTTLS$"
seen 1 "smtp-good: EHLO again over TLS" "^smtp-good $H: \(tls\) EHLO "
seen 1 "smtp-good: NOOP over TLS" "^smtp-good $H: \(tls\) NOOP$"
seen 1 "smtp-good: QUIT over TLS" "^smtp-good $H: \(tls\) QUIT$"
seen 2 "smtp-stranger received STARTTLS twice (smtp-stranger, smtp-noverify)" \
	"^smtp-stranger $H: STARTTLS$"
seen 1 "smtp-stranger: one NOOP over TLS (smtp-noverify's)" "^smtp-stranger $H: \(tls\) NOOP$"
seen 0 "smtp-stranger: no NOOP in clear" "^smtp-stranger $H: NOOP$"
seen 1 "smtp-drop received STARTTLS" "^smtp-drop $H: STARTTLS$"
seen 0 "smtp-drop: no NOOP in clear" "^smtp-drop $H: NOOP$"
# rerouter's own dialogue (talk.c) sees STARTTLS offered, says QUIT, and
# libcurl talks again on a connection of its own with STARTTLS: one QUIT in
# clear per check, before any STARTTLS.
seen 1 "smtp-good: our first session ended with QUIT in clear" "^smtp-good $H: QUIT$"
seen 2 "smtp-stranger: a QUIT in clear from each check's first session" "^smtp-stranger $H: QUIT$"
# The proxy: the hub has no route to HIDDEN, so these went through it.
seen 1 "the proxy forwarded the GET" "^proxy $H: GET http://$HIDDEN:21080/via-proxy$"
seen 1 "the hidden server got it from the proxy" "^hidden-http [0-9.]+: GET /via-proxy$"
seen 1 "the proxy tunnelled the CONNECT" "^proxy $H: CONNECT $HIDDEN:21443$"
seen 1 "the hidden HTTPS server got it through the tunnel" "^hidden-https [0-9.]+: GET /via-connect$"
seen 1 "https-name: GET by name" "^https-good $H: GET /by-name$"
seen 0 "https-alias: no GET (the name is not the certificate's)" "^https-good $H: GET /by-alias$"

rr_step "proxy = none: the proxy variables of the environment are ignored"
{
	printf '[agent]\ninterval = 1m\nfailed_checks = 1\n'
	check env-http http http://$HIDDEN:21080/env
	check env-https http https://$HIDDEN:21443/env "$CA"
} >"$T/env.conf"
P=http://$TGT:21128
connects=$(grep -c "^proxy .*: CONNECT " "$LOG")
once env "$T/env.conf" env http_proxy=$P HTTP_PROXY=$P https_proxy=$P HTTPS_PROXY=$P \
	all_proxy=$P ALL_PROXY=$P no_proxy= NO_PROXY=
RUN="env"
expect env-http FAIL unreachable
expect env-https FAIL unreachable
seen 0 "the proxy saw no GET of that run" "^proxy .*: GET .*/env$"
seen "$connects" "nor a CONNECT" "^proxy .*: CONNECT "

rr_info "detail of smtp-drop: $(awk '$1 == "smtp-drop"' "$T/tls.out")"

if [ "$RR_FAILURES" -ne 0 ]; then
	echo "test-tls: $RR_FAILURES assertion(s) failed"
	exit 1
fi
echo "test-tls: all assertions passed"
