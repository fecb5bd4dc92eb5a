#!/bin/bash
# rerouterctl connector add | remove | set and connectors --json (issue 14):
# rows managed without SQL, stamped changed_by = rerouterctl, each change an
# events row in history; refusals: the last enabled connector of '*' (by
# disable, connector set and remove) without --force, a connector that the
# current state's section manages, bad values naming their field.
set -u
. "$RR_SRCDIR/tests/lib/common.sh"

rr_need_cmd sqlite3 jq
rr_tmpdir
rr_trap

T=$RR_TMPDIR
RCTL=$RR_BUILDDIR/rerouterctl
CONF=$T/rerouter.conf
TDB=$T/transport.db
SDB=$T/state.db
cat >"$CONF" <<EOF
[agent]
failed_checks = 1
state_db = $SDB

[check "gw"]
type = tcp
target = 127.0.0.1:9

[on_down]
disable = site-a
enable = site-b

[on_up]
enable = site-a
disable = site-b

[transport]
database = $TDB
action = none
EOF
ctl() { "$RCTL" -c "$CONF" "$@"; }
# fails CODE PATTERN CMD...: exits CODE with PATTERN on stderr.
fails() {
	local code=$1 pat=$2 err rc
	shift 2
	err=$("$@" 2>&1 >/dev/null)
	rc=$?
	[ "$rc" = "$code" ] && printf '%s' "$err" | grep -q -- "$pat" || { rr_info "rc $rc: $err"; return 1; }
}
q() { sqlite3 "$TDB" "$1"; }
route() { q "SELECT nexthop FROM transport_routes WHERE address_space = '${1:-*}'"; }
events() { sqlite3 "$SDB" "SELECT COUNT(*) FROM events WHERE kind = 'connector' AND changed_by = 'rerouterctl'"; }

ctl init >/dev/null || rr_die "rerouterctl init failed"

rr_step "add"
rr_check "add site-a" ctl connector add site-a --smart-host '[10.231.61.2]:25'
rr_check "add site-b with cost and transport" ctl connector add site-b --smart-host '[10.231.61.3]:587' --cost 5 --transport smtp-siteb
rr_check "add a domain's connector" ctl connector add partner --smart-host 'mx.partner.test:25' --address-space partner.test --cost 2
rr_expect_eq "site-b's row" "*|smtp-siteb|[10.231.61.3]:587|5|1|rerouterctl" \
	"$(q "SELECT address_space, transport, smart_host, cost, enabled, changed_by FROM send_connectors WHERE name = 'site-b'")"
rr_check "changed_at is ISO 8601 UTC" eval '[[ "$(q "SELECT changed_at FROM send_connectors WHERE name = '"'site-a'"'")" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]]'
rr_expect_eq "the route of *" "smtp:[10.231.61.2]:25" "$(route)"
rr_expect_eq "the route of partner.test" "smtp:mx.partner.test:25" "$(route partner.test)"
rr_check "a second add of a name is refused" fails 1 "exists" ctl connector add site-a --smart-host '[10.231.61.9]:25'
rr_check "add without --smart-host: usage (2)" fails 2 "usage" ctl connector add site-c
rr_check "a bad cost names the field" fails 2 "cost: invalid value" ctl connector add site-c --smart-host h:25 --cost -3
rr_check "a bad smart host names the field" fails 2 "smart_host: invalid value" ctl connector add site-c --smart-host 'h 25'
rr_check "a bad transport names the field" fails 2 "transport: invalid value" ctl connector add site-c --smart-host h:25 --transport 'a;b'
rr_expect_eq "three rows, nothing else added" 3 "$(q "SELECT COUNT(*) FROM send_connectors")"
rr_expect_eq "three events recorded" 3 "$(events)"

rr_step "set"
rr_check "set cost and smart host" ctl connector set site-b cost=0 smart-host='[10.231.61.4]:587'
rr_expect_eq "site-b now wins" "smtp-siteb:[10.231.61.4]:587" "$(route)"
rr_check "an unknown key names it" fails 2 "unknown field 'colour'" ctl connector set site-b colour=red
rr_check "not KEY=VALUE" fails 2 "expected KEY=VALUE" ctl connector set site-b cost
rr_check "a missing connector" fails 1 "no connector named 'nope'" ctl connector set nope cost=1
rr_check "set cost back" ctl connector set site-b cost=5

rr_step "the last enabled connector of '*' is kept without --force"
rr_check "disable site-b (site-a remains)" ctl connector set site-b enabled=no
rr_check "disable site-a: refused" fails 1 "last enabled connector of the '\*' address space" ctl disable site-a
rr_check "connector set site-a enabled=0: refused" fails 1 "last enabled connector" ctl connector set site-a enabled=0
rr_check "moving site-a out of '*': refused" fails 1 "last enabled connector" ctl connector set site-a address_space=example.org
rr_check "remove site-a: refused (named in the configuration)" fails 1 "names it in \[on_down\] or \[on_up\]" ctl connector remove site-a
ctl connector add spare --smart-host '[10.231.61.5]:25' --cost 9 >/dev/null || rr_fail "add spare"
ctl connector set site-a enabled=0 >/dev/null || rr_fail "site-a can go now that spare is enabled"
rr_check "remove spare, the last one: refused" fails 1 "refusing to remove spare" ctl connector remove spare
rr_expect_eq "the route of * survived every refusal" "smtp:[10.231.61.5]:25" "$(route)"
rr_check "a domain's last connector may go" ctl connector remove partner
rr_check "remove spare --force" ctl connector remove spare --force
rr_expect_eq "now no route for *" "" "$(route)"
rr_check "disable of an already disabled one is fine" ctl disable site-b
rr_check "enable site-a" ctl enable site-a

rr_step "a connector managed by the current state's section"
sqlite3 "$SDB" "INSERT INTO agent_state (id, state, since_usec) VALUES (1, 'up', 1)"
rr_check "set site-b enabled=1 while UP: refused with the hint to hold" fails 1 "rerouterctl hold" ctl connector set site-b enabled=1
rr_check "set site-b cost while UP is fine" ctl connector set site-b cost=6

rr_step "history and connectors --json"
H=$(ctl history --json -n 50) || rr_fail "history --json"
rr_check "history --json parses" eval 'printf "%s" "$H" | python3 -m json.tool >/dev/null'
rr_expect_eq "events in history with changed_by" rerouterctl "$(printf '%s' "$H" | jq -r '[.history[] | select(.type == "event" and .event == "connector")][0].changed_by')"
rr_expect_eq "connector events in history" "$(events)" "$(printf '%s' "$H" | jq '[.history[] | select(.event == "connector")] | length')"
rr_check "the forced removal says so" eval 'printf "%s" "$H" | jq -e "[.history[] | select(.subject == \"spare\" and (.detail | test(\"removed.*--force\")))] | length == 1" >/dev/null'
J=$(ctl connectors --json) || rr_fail "connectors --json"
rr_check "connectors --json parses" eval 'printf "%s" "$J" | python3 -m json.tool >/dev/null'
rr_expect_eq "connector keys" "address_space,changed_at,changed_by,cost,enabled,name,smart_host,transport" \
	"$(printf '%s' "$J" | jq -r '.connectors[0] | keys | join(",")')"
rr_expect_eq "types" "string,number,boolean" "$(printf '%s' "$J" | jq -r '.connectors[0] | [(.name|type), (.cost|type), (.enabled|type)] | join(",")')"
rr_expect_eq "routes" '[{"address_space":"*","nexthop":"smtp:[10.231.61.2]:25"}]' "$(printf '%s' "$J" | jq -c .routes)"

if [ "$RR_FAILURES" -gt 0 ]; then
	rr_log "$RR_FAILURES check(s) failed; logs in $T"
	exit 1
fi
rr_log "all checks passed"
