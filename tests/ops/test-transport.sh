#!/bin/bash
# A per-connector Postfix transport (issue 14): site-b's connector names the
# master.cf transport smtp-siteb, which has its own TLS (secure: the relay's
# certificate verified against its CA and the next hop's name) and SASL
# settings; relay B requires STARTTLS and AUTH (tests/alerts/smtp-test-server.py),
# relay A is plain smtp-sink. A real Postfix in a private mount namespace reads
# transport_routes; mail goes to A, then, after `rerouterctl connector set
# site-a enabled=0`, through smtp-siteb to B.
set -u
. "$RR_SRCDIR/tests/lib/common.sh"
. "$RR_SRCDIR/tests/lib/systemd.sh"
. "$RR_SRCDIR/tests/lib/sink.sh"
. "$RR_SRCDIR/tests/lib/postfix.sh"

need_root
rr_need_cmd sqlite3 python3 openssl postfix postconf sendmail smtp-sink unshare
[ -e /usr/lib/x86_64-linux-gnu/sasl2/libplain.so ] || ls /usr/lib/*/sasl2/libplain.so >/dev/null 2>&1 ||
	rr_skip "libsasl2-modules (PLAIN) is not installed"
rr_private_mountns "$@"
rr_tmpdir
rr_trap

T=$RR_TMPDIR
RCTL=$RR_BUILDDIR/rerouterctl
NAME_B=relay-b.rr-ops.test
IP_B=127.0.60.5
PORT_B=20063
ADDR_A=127.0.60.6:20064
mkdir -p "$T/db" "$T/relaya" "$T/relayb"

rr_step "relays: A plain, B with STARTTLS and AUTH under its name"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$NAME_B" \
	-addext "subjectAltName=DNS:$NAME_B" -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null ||
	rr_die "no certificate"
# The name resolves only in this mount namespace.
cp /etc/hosts "$T/hosts" && echo "$IP_B $NAME_B" >>"$T/hosts"
mount --bind "$T/hosts" /etc/hosts || rr_die "cannot bind /etc/hosts"
rr_on_cleanup "umount -l /etc/hosts"
rr_spawn ops-relayb python3 "$RR_SRCDIR/tests/alerts/smtp-test-server.py" --listen "$IP_B:$PORT_B" \
	--dir "$T/relayb" --cert "$T/cert.pem" --key "$T/key.pem" --require-tls --auth hub:s3cret
wait_for 5 rr_tcp_open "$IP_B" "$PORT_B" || rr_die "relay B did not start"
rr_sink_start ops-relaya "$T/relaya" "$ADDR_A" || rr_die "relay A did not start"

rr_step "the transport database, by rerouterctl"
cat >"$T/rerouter.conf" <<EOF
[agent]
state_db = $T/db/state.db
failed_checks = 1

[check "gw"]
type = tcp
target = 127.0.0.1:9

[transport]
database = $T/db/transport.db
action = none
EOF
"$RCTL" -c "$T/rerouter.conf" init >/dev/null || rr_die "init failed"
"$RCTL" -c "$T/rerouter.conf" connector add site-a --smart-host "[${ADDR_A%:*}]:${ADDR_A#*:}" >/dev/null || rr_die "add site-a"
"$RCTL" -c "$T/rerouter.conf" connector add site-b --smart-host "[$NAME_B]:$PORT_B" --cost 2 \
	--transport smtp-siteb >/dev/null || rr_die "add site-b"
rr_postfix_db_perms "$T/db"

rr_step "Postfix with the smtp-siteb transport (POSTFIX.md)"
rr_postfix_setup "$T/postfix" "$T/db/transport.db" || rr_die "postfix setup failed"
cp "$T/cert.pem" /etc/postfix/siteb-ca.pem
printf '[%s]:%s hub:s3cret\n' "$NAME_B" "$PORT_B" >/etc/postfix/siteb_sasl_passwd
chmod 600 /etc/postfix/siteb_sasl_passwd
postconf -M 'smtp-siteb/unix=smtp-siteb unix - - n - - smtp' || rr_die "postconf -M"
for o in smtp_tls_security_level=secure smtp_tls_secure_cert_match=nexthop \
	smtp_tls_CAfile=/etc/postfix/siteb-ca.pem smtp_sasl_auth_enable=yes \
	smtp_sasl_password_maps=texthash:/etc/postfix/siteb_sasl_passwd \
	smtp_sasl_security_options=noanonymous smtp_sasl_tls_security_options=noanonymous \
	smtp_tls_loglevel=1 syslog_name=postfix/smtp-siteb; do
	postconf -P "smtp-siteb/unix/$o" || rr_die "postconf -P $o"
done
postfix check >/dev/null 2>&1 || rr_die "postfix check: $(postfix check 2>&1)"
postfix start >/dev/null 2>&1 || rr_die "postfix start failed"
rr_on_cleanup "postfix stop"
wait_for 10 test -S /var/spool/postfix/public/pickup || rr_die "postfix did not start"

in_dir() { [ "$(grep -l -- "$2" "$1"/* 2>/dev/null | wc -l)" -ge 1 ]; }

rr_step "mail by site-a"
rr_expect_eq "the route of *" "smtp:[${ADDR_A%:*}]:${ADDR_A#*:}" \
	"$(postmap -q '*' sqlite:/etc/postfix/rerouter-transport.cf)"
rr_sendmail a@hub.rr-lab.test b@remote.test "by site-a" || rr_fail "sendmail"
rr_check "relay A got it" wait_for 20 in_dir "$T/relaya" "by site-a"

rr_step "mail by site-b through smtp-siteb"
# trivial-rewrite keeps the '*' route for 30 s (POSTFIX.md): reload, as
# rerouterd does with action = reload.
"$RCTL" -c "$T/rerouter.conf" connector set site-a enabled=0 >/dev/null || rr_fail "disable site-a"
rr_expect_eq "the route of * names the transport" "smtp-siteb:[$NAME_B]:$PORT_B" \
	"$(postmap -q '*' sqlite:/etc/postfix/rerouter-transport.cf)"
postfix reload >/dev/null 2>&1 || rr_fail "postfix reload"
rr_sendmail a@hub.rr-lab.test c@remote.test "by site-b" || rr_fail "sendmail"
rr_check "relay B got it, after STARTTLS and AUTH" wait_for 20 in_dir "$T/relayb" "by site-b"
rr_check "the certificate was verified against the name" \
	rr_postfix_log_grep "postfix/smtp-siteb/smtp.*Verified TLS connection established to $NAME_B"
rr_check "relay A did not get it" eval '! in_dir "$T/relaya" "by site-b"'
rr_check "relay B saw AUTH" grep -q "AUTH" "$RR_TMPDIR/ops-relayb.log"
rr_postfix_log_grep "smtp-siteb" | tail -3 >&2

if [ "$RR_FAILURES" -gt 0 ]; then
	rr_log "$RR_FAILURES check(s) failed; logs in $T"
	exit 1
fi
rr_log "all checks passed"
