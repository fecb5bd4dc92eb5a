#!/bin/sh
# rerouterd --check-config against the sample, a broken file and a missing
# one; connectors shared with another instance's file in the same directory;
# --instance names; --help and --version. Needs no root, no network, no daemons.
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

# In a directory of its own: --check-config compares the other *.conf files
# of a file's directory (instances), and this one does not load.
mkdir -p "$T/broken"
cat >"$T/broken/broken.conf" <<'CONF'
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
$T/broken/broken.conf:1: [agent] failed_checks: 2 is more than the number of link checks (1)
$T/broken/broken.conf:2: [agent] unknown key 'intervall' (did you mean 'interval'?)
$T/broken/broken.conf:3: [agent] interval: expected a duration such as 30s, 2m, 500ms, got '2x'
$T/broken/broken.conf:4: [agent] failed_runs: 2 is more than runs (1)
$T/broken/broken.conf:4: [agent] passed_runs: 2 is more than runs (1)
$T/broken/broken.conf:6: [check "web"] target: missing
$T/broken/broken.conf:8: [check "web"] count: applies only to ping checks, not http
$T/broken/broken.conf:9: [check "web"]: duplicate check name (first on line 6)
$T/broken/broken.conf:12: [mail] to: expected mail addresses separated by ',' or ';', got 'admin@example.org;; noc@example.org'
WANT
check "broken file: every error with its line" 2 "$T/broken.want" -- \
	"$D" --check-config -c "$T/broken/broken.conf"

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

# Instances (SPEC section 4): the other *.conf files of the directory that
# name the same transport database must name other connectors.
I=$T/inst
mkdir -p "$I"
inst_conf() { # FILE DATABASE DOWN-ENABLE DOWN-DISABLE
	cat >"$1" <<CONF
[agent]
failed_checks = 1
state_db = $1.db
[check "a"]
type = tcp
target = 127.0.0.1:9
[on_down]
enable = $3
disable = $4
[on_up]
enable = $4
disable = $3
[transport]
database = $2
CONF
}
inst_conf "$I/a.conf" "$I/transport.db" site-b site-a
inst_conf "$I/b.conf" "$I/transport.db" site-b site-c
inst_conf "$I/c.conf" "$I/other.db" site-b site-a
# Would share both, but does not load: a warning, not compared.
inst_conf "$I/d.conf" "$I/transport.db" site-b site-a
echo "bogus = 1" >>"$I/d.conf"
"$RR_BUILDDIR/rerouterctl" -c "$I/a.conf" init >/dev/null
sqlite3 "$I/transport.db" "INSERT INTO send_connectors (name, smart_host) VALUES
	('site-a', '[127.0.0.1]:25'), ('site-b', '[127.0.0.2]:25'), ('site-c', '[127.0.0.3]:25')"
# The same database by another spelling: one file, compared by real path.
inst_conf "$I/e.conf" "$I/../inst/transport.db" site-d site-a
cat >"$T/inst-a.want" <<WANT
$I/a.conf: warning: $I/d.conf does not load (1 error(s), the first: $I/d.conf:15: [transport] unknown key 'bogus'): its connectors are not compared
$I/a.conf:7: connector 'site-b' is also managed by $I/b.conf (instances must name disjoint connectors)
$I/a.conf:7: connector 'site-a' is also managed by $I/e.conf (instances must name disjoint connectors)
WANT
check "connectors shared with other instances' files" 2 "$T/inst-a.want" -- \
	"$D" --check-config -c "$I/a.conf"
cat >"$T/inst-b.want" <<WANT
$I/b.conf: warning: $I/d.conf does not load (1 error(s), the first: $I/d.conf:15: [transport] unknown key 'bogus'): its connectors are not compared
$I/b.conf:7: connector 'site-b' is also managed by $I/a.conf (instances must name disjoint connectors)
WANT
check "the other side of the overlap" 2 "$T/inst-b.want" -- "$D" --check-config -c "$I/b.conf"
rm "$I/b.conf" "$I/e.conf"
cat >"$T/inst-ok.want" <<WANT
$I/a.conf: warning: $I/d.conf does not load (1 error(s), the first: $I/d.conf:15: [transport] unknown key 'bogus'): its connectors are not compared
configuration OK
WANT
check "disjoint, and a file on another database may share names" 0 "$T/inst-ok.want" -- \
	"$D" --check-config -c "$I/a.conf"

echo "rerouterd: --instance: instance name may only have A-Z a-z 0-9 _ . -, got '/' at position 3" >"$T/inst-bad.want"
check "--instance with a bad name" 2 "$T/inst-bad.want" -- \
	"$D" --instance ../x --check-config -c "$T/conn.conf"
check "--instance with a good name" 0 "$T/ok.want" -- \
	"$D" --instance site2.a-b_c --check-config -c "$T/conn.conf"

check "--help" 0 "" -- "$D" --help
grep -q -- "--check-config" "$T/out" || { echo "FAIL: --help does not mention --check-config"; fails=$((fails + 1)); }
check "--version" 0 "" -- "$D" --version
grep -q "^rerouterd [0-9]" "$T/out" || { echo "FAIL: --version prints '$(cat "$T/out")'"; fails=$((fails + 1)); }
check "bad option" 2 "" -- "$D" --no-such-option

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all passed"
