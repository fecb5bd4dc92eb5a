#!/bin/sh
# rerouterd --check-config against the sample, a broken file and a missing
# one; --help and --version. Needs no root, no network, no daemons.
set -u
: "${RR_SRCDIR:?}" "${RR_BUILDDIR:?}" "${RR_TMPDIR:?}"
D="$RR_BUILDDIR/rerouterd"
T="$RR_TMPDIR/check-config"
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fails=0

check() { # NAME EXPECTED-EXIT EXPECTED-OUTPUT-FILE -- COMMAND...
	name=$1 want_rc=$2 want=$3
	shift 4
	"$@" >"$T/out" 2>&1
	rc=$?
	if [ "$rc" -ne "$want_rc" ]; then
		echo "FAIL: $name: exit $rc, expected $want_rc"; cat "$T/out"; fails=$((fails + 1)); return
	fi
	if [ -n "$want" ] && ! diff -u "$want" "$T/out"; then
		echo "FAIL: $name: output differs"; fails=$((fails + 1)); return
	fi
	echo "ok: $name (exit $rc)"
}

echo "configuration OK" >"$T/ok.want"
check "sample config/rerouter.conf passes" 0 "$T/ok.want" -- \
	"$D" --check-config -c "$RR_SRCDIR/config/rerouter.conf"

cat >"$T/broken.conf" <<'CONF'
[agent]
intervall = 2m
interval = 2x
runs = 1

[check "web"]
type = http
count = 3
[check "web"]
type = ping
[mail]
to = admin@example.org;; noc@example.org
CONF
cat >"$T/broken.want" <<WANT
$T/broken.conf:1: [agent] failed_checks: 2 is more than the number of link checks (1)
$T/broken.conf:2: [agent] unknown key 'intervall' (did you mean 'interval'?)
$T/broken.conf:3: [agent] interval: expected a duration such as 30s, 2m, 500ms, got '2x'
$T/broken.conf:4: [agent] failed_runs: 2 is more than runs (1)
$T/broken.conf:4: [agent] passed_runs: 2 is more than runs (1)
$T/broken.conf:6: [check "web"] target: missing
$T/broken.conf:8: [check "web"] count: applies only to ping checks, not http
$T/broken.conf:9: [check "web"]: duplicate check name (first on line 6)
$T/broken.conf:12: [mail] to: expected mail addresses separated by ',' or ';', got 'admin@example.org;; noc@example.org'
WANT
check "broken file: every error with its line" 2 "$T/broken.want" -- \
	"$D" --check-config -c "$T/broken.conf"

echo "$T/missing.conf: cannot read: No such file or directory" >"$T/missing.want"
check "missing file" 2 "$T/missing.want" -- "$D" --check-config -c "$T/missing.conf"

# A connector the config names but the transport database lacks.
cat >"$T/conn.conf" <<CONF
[agent]
failed_checks = 1
state_db = $T/state.db
[check "a"]
type = tcp
target = 127.0.0.1:9
[on_down]
disable = site-a
enable = site-b
[transport]
database = $T/transport.db
CONF
"$RR_BUILDDIR/rerouterctl" -c "$T/conn.conf" init >/dev/null
sqlite3 "$T/transport.db" "INSERT INTO send_connectors (name, smart_host) VALUES ('site-a', '[127.0.0.1]:25')"
echo "$T/conn.conf:7: [on_down] connector 'site-b' is not in the transport database $T/transport.db" >"$T/conn.want"
check "connector missing from the transport database" 2 "$T/conn.want" -- \
	"$D" --check-config -c "$T/conn.conf"
sqlite3 "$T/transport.db" "INSERT INTO send_connectors (name, smart_host) VALUES ('site-b', '[127.0.0.2]:25')"
check "every connector present" 0 "$T/ok.want" -- "$D" --check-config -c "$T/conn.conf"

check "--help" 0 "" -- "$D" --help
grep -q -- "--check-config" "$T/out" || { echo "FAIL: --help does not mention --check-config"; fails=$((fails + 1)); }
check "--version" 0 "" -- "$D" --version
grep -q "^rerouterd [0-9]" "$T/out" || { echo "FAIL: --version prints '$(cat "$T/out")'"; fails=$((fails + 1)); }
check "bad option" 2 "" -- "$D" --no-such-option

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all passed"
