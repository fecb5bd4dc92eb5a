#!/bin/sh
# Alert mail against real SMTP servers on 127.0.4.1 (alerts' loopback range):
# Postfix's smtp-sink as the mailbox, and tests/alerts/smtp-test-server.py
# where smtp-sink cannot (451 then 250, STARTTLS and AUTH, smtps). The alert
# queue runs in tests/alerts/rr-alerts-driver (built by make check), which
# records changes as the agent does; RR_ALERTS_BACKOFF_MS=200 shortens the
# retry delays (test-only, read by the driver, never by rerouterd).
set -eu

: "${RR_SRCDIR:?}" "${RR_BUILDDIR:?}" "${RR_TMPDIR:?}"
D="$RR_BUILDDIR/tests/alerts/rr-alerts-driver"
PYSRV="$RR_SRCDIR/tests/alerts/smtp-test-server.py"
T="$RR_TMPDIR"
IP=127.0.4.1
chmod 711 "$T" # smtp-sink writes as nobody into directories below

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (smtp-sink -u nobody, mount namespace)"
[ -x "$D" ] || skip "$D not built (run make check first)"
command -v smtp-sink >/dev/null || skip "smtp-sink missing (apt-get install postfix)"
command -v sqlite3 >/dev/null || skip "sqlite3 missing"
command -v openssl >/dev/null || skip "openssl missing"

PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

fails=0
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# wait_for SECONDS COMMAND...: poll every 0.1 s until COMMAND succeeds.
wait_for() {
	n=$(($1 * 10)); shift
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1)); [ "$n" -gt 0 ] || return 1
		sleep 0.1
	done
}
count_files() { find "$1" -maxdepth 1 -type f -name "${2:-*}" | wc -l; }
has_files() { [ "$(count_files "$1" "${3:-*}")" -ge "$2" ]; }
pending() { sqlite3 "$1" "SELECT COUNT(*) FROM alerts WHERE sent_usec IS NULL"; }
port_open() { python3 -c "import socket,sys; socket.create_connection(('$IP', $1), 1)"; }

start_sink() { # DIR PORT [smtp-sink options]
	dir=$1 port=$2; shift 2
	mkdir -p "$dir"; chmod 777 "$dir"
	smtp-sink -u nobody "$@" -d "$dir/%M" "$IP:$port" 50 &
	SINK=$!; PIDS="$PIDS $SINK"
	wait_for 5 port_open "$port" || { echo "smtp-sink did not start on $port"; exit 1; }
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
start_pysrv() { # LOG PORT [options]
	log=$1 port=$2; shift 2
	python3 "$PYSRV" --listen "$IP:$port" "$@" >"$log" 2>&1 &
	PY=$!; PIDS="$PIDS $PY"
	wait_for 5 port_open "$port" || { echo "smtp-test-server did not start"; cat "$log"; exit 1; }
}

export RR_MAIL_TO="admin@example.org; noc@example.org" RR_MAIL_FROM=rerouter@hub1.example.org
export RR_MAIL_TIMEOUT_MS=3000 RR_ALERTS_BACKOFF_MS=200 RR_DRIVER_DEADLINE_MS=20000
HOST=$(hostname)

echo "== 1. an alert arrives with the right headers and body"
start_sink "$T/box1" 24025
export RR_MAIL_SERVER="smtp://$IP:24025"
db="$T/s1.db"
c1=$("$D" "$db" insert down up)
c2=$("$D" "$db" insert up down)
c3=$("$D" "$db" insert down up no-backup)
t0=$(date +%s%N)
"$D" "$db" run "$c1" 2>"$T/d1.log" || { cat "$T/d1.log"; fail "driver did not deliver"; }
t1=$(date +%s%N)
wait_for 5 has_files "$T/box1" 1 || fail "no message in the sink"
m=$(find "$T/box1" -type f | head -1)
check_line() { if grep -qE "$1" "$m"; then ok "$2"; else fail "$2 (no /$1/ in $m)"; fi; }
check_line "^X-Rcpt-Args: <admin@example.org>" "envelope recipient 1"
check_line "^X-Rcpt-Args: <noc@example.org>" "envelope recipient 2"
check_line "^X-Mail-Args: <rerouter@hub1.example.org>" "envelope sender"
check_line "^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{1,2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} [-+][0-9]{4}$" "Date header"
check_line "^Message-ID: <[^@ ]+@$HOST>$" "Message-ID header"
check_line "^From: rerouter@hub1.example.org$" "From header"
check_line "^To: admin@example.org,$" "To header"
check_line "^Subject: \[rerouter\] $HOST: internet connection DOWN$" "Subject"
check_line "^MIME-Version: 1.0$" "MIME-Version"
check_line "^Content-Type: text/plain; charset=UTF-8$" "Content-Type"
check_line "^Content-Transfer-Encoding: 8bit$" "Content-Transfer-Encoding"
check_line "^Time: +[0-9]{4}-" "body: time"
check_line "^Previous:  UP for 1h 2m " "body: previous state and how long it held"
check_line "^  web +http +https://www.example.org/ +fail" "body: deciding runs check by check"
check_line "^\.dotted line from a check reason$" "body: a line starting with a dot survives"
check_line "grüße" "body: UTF-8 8bit"
check_line "^  connectors  done: site-a-internet disabled, site-b-relay enabled$" "body: connectors outcome"
check_line "^  transport   done: restart postfix.service: done$" "body: transport job result"
check_line "^  hook        failed: .*exit status 3$" "body: hook exit status"
echo "figure: enqueue to accepted by the sink: $(((t1 - t0) / 1000000)) ms (driver start included)"

"$D" "$db" run "$c2" "$c3" 2>>"$T/d1.log" || fail "second run did not deliver"
wait_for 5 has_files "$T/box1" 2 || fail "no second message"
m=$(grep -l "^Subject: .*(2 changes: up, down)$" "$T/box1"/* | head -1)
if [ -n "$m" ]; then
	ok "two changes in one run: one merged mail"
	check_line "^Subject: \[rerouter\] $HOST: internet connection DOWN \(2 changes: up, down\)$" "merged subject ends with the latest state"
	check_line "^No backup path answered: nothing was rewired\.$" "body: no backup path"
else
	fail "no merged mail for two changes"; ls -l "$T/box1"
fi
"$D" "$db" run "$c1" "$c2" "$c3" 2>>"$T/d1.log" || fail "repeated enqueue"
sleep 0.5 # give a wrong extra mail the time to show up (nothing to poll for)
[ "$(count_files "$T/box1")" = 2 ] && ok "enqueue again after delivery: no duplicate" || fail "duplicate mail"
stop_pid "$SINK"

echo "== 2. min_gap: a flapping link never floods"
start_sink "$T/box2" 24026
export RR_MAIL_SERVER="smtp://$IP:24026"
db="$T/s2.db"
c1=$("$D" "$db" insert down up)
RR_MAIL_MIN_GAP_MS=2000 "$D" "$db" run "$c1" 2>"$T/d2.log" || fail "first alert"
ids=""
for s in up down up; do ids="$ids $("$D" "$db" insert $s x)"; done
t0=$(date +%s%N)
# shellcheck disable=SC2086
RR_MAIL_MIN_GAP_MS=2000 "$D" "$db" run $ids 2>>"$T/d2.log" || fail "flapping alerts"
t1=$(date +%s%N)
wait_for 5 has_files "$T/box2" 2 || fail "merged mail missing"
[ "$(count_files "$T/box2")" = 2 ] && ok "4 changes, 2 mails" || fail "$(count_files "$T/box2") mails for 4 changes"
grep -q "^Subject: \[rerouter\] $HOST: internet connection UP (3 changes: up, down, up)$" "$T/box2"/* &&
	ok "merged subject lists every change" || fail "merged subject"
echo "figure: the merged mail waited $(((t1 - t0) / 1000000)) ms for min_gap = 2000 ms"
stop_pid "$SINK"

echo "== 3. sink down: the alert waits, survives a driver restart, arrives once"
db="$T/s3.db"
export RR_MAIL_SERVER="smtp://$IP:24027"
c1=$("$D" "$db" insert down up)
RR_DRIVER_DEADLINE_MS=60000 "$D" "$db" run "$c1" 2>"$T/d3a.log" &
DRV=$!; PIDS="$PIDS $DRV"
wait_for 10 grep -q "mail not sent" "$T/d3a.log" || fail "no failed attempt logged"
grep -m1 "mail not sent" "$T/d3a.log" | sed 's/^/  log: /'
kill -9 "$DRV"; wait "$DRV" 2>/dev/null || true
[ "$(pending "$db")" = 1 ] && ok "killed with the sink down: 1 alert pending in the database" || fail "pending count"
RR_DRIVER_DEADLINE_MS=60000 "$D" "$db" run 2>"$T/d3b.log" &
DRV=$!; PIDS="$PIDS $DRV"
wait_for 10 grep -q "mail not sent" "$T/d3b.log" || fail "restarted driver did not retry"
start_sink "$T/box3" 24027
t0=$(date +%s%N)
if wait "$DRV"; then ok "restarted driver delivered after the sink came back"; else fail "not delivered"; fi
t1=$(date +%s%N)
wait_for 5 has_files "$T/box3" 1 || true
"$D" "$db" run "$c1" 2>>"$T/d3b.log" || fail "re-run"
sleep 0.5 # nothing to poll for: a duplicate would show up by now
[ "$(count_files "$T/box3")" = 1 ] && ok "exactly one copy" || fail "$(count_files "$T/box3") copies"
echo "figure: sink up to delivered: $(((t1 - t0) / 1000000)) ms (backoff 200 ms doubling, cap 1.6 s)"
echo "figure: attempts recorded: $(sqlite3 "$db" 'SELECT attempts FROM alerts')"
stop_pid "$SINK"

echo "== 4. a server answering 451, then 250: one copy; dot-stuffing and CRLF on the wire"
mkdir -p "$T/box4"
start_pysrv "$T/py4.log" 24028 --dir "$T/box4" --fail-first 1
export RR_MAIL_SERVER="smtp://$IP:24028"
db="$T/s4.db"
c1=$("$D" "$db" insert down up)
"$D" "$db" run "$c1" 2>"$T/d4.log" || fail "not delivered after 451"
grep -q "451 for message 1" "$T/py4.log" && ok "first attempt got 451" || fail "no 451 seen"
grep -q "451 4.3.0 Try again later" "$T/d4.log" && ok "the 451 reply is logged" || fail "451 not logged"
[ "$(count_files "$T/box4" 'msg-*')" = 1 ] && ok "exactly one copy after 451 then 250" || fail "copies: $(count_files "$T/box4" 'msg-*')"
grep -q "^\.\.dotted line" "$T/box4/raw-1" && ok "curl dot-stuffed the leading dot on the wire" || fail "no dot-stuffing"
if python3 -c "import sys; d=open(sys.argv[1],'rb').read(); sys.exit(0 if d.count(b'\n')==d.count(b'\r\n') else 1)" "$T/box4/raw-1"; then
	ok "every line on the wire ends in CRLF"; else fail "bare LF on the wire"; fi
stop_pid "$PY"

echo "== 5. STARTTLS and AUTH (self-signed certificate, trusted only in a mount namespace)"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$IP" \
	-addext "subjectAltName=IP:$IP" -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
printf 's3cret\n' >"$T/pw"; chmod 600 "$T/pw"
printf 'wrong\n' >"$T/pw-bad"; chmod 600 "$T/pw-bad"
mkdir -p "$T/box5"
start_pysrv "$T/py5.log" 24029 --dir "$T/box5" --cert "$T/cert.pem" --key "$T/key.pem" \
	--require-tls --auth alice:s3cret
# trusted: the CA bundle is our certificate, in a private mount namespace only
cat >"$T/trusted" <<EOF
#!/bin/sh
exec unshare -m --propagation private sh -c 'mount --bind "\$0" /etc/ssl/certs/ca-certificates.crt && exec "\$@"' "$T/cert.pem" "\$@"
EOF
chmod +x "$T/trusted"
trusted="$T/trusted"
export RR_MAIL_SERVER="smtp://$IP:24029" RR_MAIL_USERNAME=alice RR_MAIL_PASSWORD_FILE="$T/pw"
db="$T/s5.db"
c1=$("$D" "$db" insert down up)
if RR_MAIL_STARTTLS=always "$trusted" "$D" "$db" run "$c1" 2>"$T/d5.log"; then
	ok "STARTTLS always + AUTH: delivered"; else fail "STARTTLS+AUTH"; cat "$T/d5.log"; fi
[ "$(count_files "$T/box5" 'msg-*')" = 1 ] && ok "one message through STARTTLS+AUTH" || fail "no message"
grep -q "C: STARTTLS" "$T/py5.log" && ok "the server saw STARTTLS" || fail "no STARTTLS"
RR_MAIL_STARTTLS=auto "$trusted" "$D" test-mail >"$T/o.log" 2>&1 && ok "STARTTLS auto upgrades too" || { fail "starttls auto"; cat "$T/o.log"; }
# TLS failures end at once; the longer timeout only gives a slow machine (or
# a sanitizer build) time to load the system's whole CA bundle.
tm_fail() { # NAME EXPECTED-REGEX COMMAND...
	name=$1 re=$2; shift 2
	if "$@" >"$T/o.log" 2>&1; then fail "$name: exit 0"; cat "$T/o.log"
	elif grep -qE "$re" "$T/o.log"; then ok "$name: exit 1: $(tail -1 "$T/o.log")"
	else fail "$name: unclear error"; cat "$T/o.log"; fi
}
tm_fail "wrong password" "Login denied|535" env RR_MAIL_STARTTLS=always RR_MAIL_TIMEOUT_MS=20000 RR_MAIL_PASSWORD_FILE="$T/pw-bad" "$trusted" "$D" test-mail
tm_fail "untrusted certificate" "SSL certificate problem|certificate" env RR_MAIL_STARTTLS=always RR_MAIL_TIMEOUT_MS=20000 "$D" test-mail
tm_fail "starttls never, server requires TLS" "530|STARTTLS" env RR_MAIL_STARTTLS=never "$D" test-mail
tm_fail "missing password file" "password_file" env RR_MAIL_PASSWORD_FILE="$T/nonexistent" "$D" test-mail
stop_pid "$PY"
start_pysrv "$T/py5s.log" 24030 --dir "$T/box5" --cert "$T/cert.pem" --key "$T/key.pem" \
	--implicit-tls --auth alice:s3cret
RR_MAIL_SERVER="smtps://$IP:24030" "$trusted" "$D" test-mail >"$T/o.log" 2>&1 &&
	ok "smtps:// + AUTH: $(cat "$T/o.log")" || { fail "smtps"; cat "$T/o.log"; }
stop_pid "$PY"
unset RR_MAIL_USERNAME RR_MAIL_PASSWORD_FILE

echo "== 6. --test-mail"
start_sink "$T/box6" 24031
cat >"$T/rerouter.conf" <<EOF
[agent]
state_db = $T/s6.db
failed_checks = 1
[check "gw"]
type = tcp
target = $IP:24031
[mail]
to = admin@example.org
from = rerouter@hub1.example.org
server = smtp://$IP:24031
timeout = 3s
EOF
sed "s/24031/24039/" "$T/rerouter.conf" >"$T/dead.conf"
if "$RR_BUILDDIR/rerouterd" -c "$T/rerouter.conf" --check-config >"$T/cc.log" 2>&1; then
	good() { "$RR_BUILDDIR/rerouterd" -c "$T/rerouter.conf" --test-mail; }
	dead() { "$RR_BUILDDIR/rerouterd" -c "$T/dead.conf" --test-mail; }
	echo "(using rerouterd --test-mail)"
else
	good() { RR_MAIL_SERVER="smtp://$IP:24031" "$D" test-mail; }
	dead() { RR_MAIL_SERVER="smtp://$IP:24039" "$D" test-mail; }
	echo "(rerouterd --check-config refused the test configuration: alerts_test_mail_main through the driver)"
	sed 's/^/  /' "$T/cc.log"
fi
if good >"$T/o.log" 2>&1 && grep -q "250" "$T/o.log"; then ok "test mail accepted: $(cat "$T/o.log")"
else fail "test mail to a good sink"; cat "$T/o.log"; fi
wait_for 5 has_files "$T/box6" 1 && ok "the test message arrived" || fail "test message missing"
tm_fail "dead port" "connect|Connection refused" dead
stop_pid "$SINK"

echo "== 7. a stalled server (no reply to the end of data): the daemon still stops at once"
# The transfer runs on its own thread: SIGTERM is handled by the loop while it
# hangs, and the alert stays queued for the next start (exactly once).
mkdir -p "$T/box7"
start_pysrv "$T/py7.log" 24032 --dir "$T/box7" --hold-dot
db="$T/s7.db"
c1=$("$D" "$db" insert down up)
# Queue it with a failed attempt (nothing listens on 24039), so rerouterd
# finds it pending at start.
RR_MAIL_SERVER="smtp://$IP:24039" RR_DRIVER_DEADLINE_MS=300 "$D" "$db" run "$c1" 2>/dev/null || true
[ "$(pending "$db")" = 1 ] || fail "alert not queued before the daemon starts"
sed -e "s|^state_db = .*|state_db = $db|" -e "s|^server = .*|server = smtp://$IP:24032|" \
	-e "s|^timeout = .*|timeout = 30s|" "$T/rerouter.conf" >"$T/stall.conf"
"$RR_BUILDDIR/rerouterd" --allow-root -c "$T/stall.conf" >"$T/d7.log" 2>&1 &
RD=$!; PIDS="$PIDS $RD"
if wait_for 10 grep -q "holding the reply" "$T/py7.log"; then
	ok "the daemon's transfer hangs at the end of data"
	t0=$(date +%s%N)
	kill -TERM "$RD"
	if wait_for 5 sh -c "! kill -0 $RD"; then
		t1=$(date +%s%N)
		wait "$RD"; rc=$?
		[ "$rc" = 0 ] && ok "SIGTERM during the hung transfer: exit 0" || fail "exit status $rc after SIGTERM"
		echo "figure: SIGTERM to exit with the transfer hung: $(((t1 - t0) / 1000000)) ms ([mail] timeout 30 s)"
	else
		fail "rerouterd still running 5 s after SIGTERM"
	fi
	[ "$(pending "$db")" = 1 ] && ok "the unsent alert stays queued" || fail "alert not pending after stop"
else
	fail "no transfer reached the stalled server"; cat "$T/d7.log"
fi
stop_pid "$RD"
stop_pid "$PY"

if [ "$fails" -ne 0 ]; then echo "$fails check(s) FAILED"; exit 1; fi
echo "all alert checks passed"
