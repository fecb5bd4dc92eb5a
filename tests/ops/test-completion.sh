#!/bin/bash
# Bash completion of rerouterctl and rerouterd (issue 14), through
# bash-completion's own _init_completion: commands, options, connector names
# read from the transport database of the -c configuration.
set -u
. "$RR_SRCDIR/tests/lib/common.sh"

BC=/usr/share/bash-completion/bash_completion
[ -r "$BC" ] || rr_skip "bash-completion is not installed"
rr_need_cmd sqlite3
rr_tmpdir
rr_trap
T=$RR_TMPDIR

# shellcheck disable=SC1090
. "$BC"
. "$RR_SRCDIR/config/completion/rerouterctl"
. "$RR_SRCDIR/config/completion/rerouterd"

sqlite3 "$T/transport.db" "CREATE TABLE send_connectors (name TEXT PRIMARY KEY);
	INSERT INTO send_connectors VALUES ('site-a'), ('site-b'), ('other')"
printf '[transport]\ndatabase = %s\n' "$T/transport.db" >"$T/rr.conf"

# complete LINE: the words bash would offer for the last word of LINE.
complete_line() {
	local line=$1 fn=$2
	read -r -a COMP_WORDS <<<"$line"
	[ "${line: -1}" = " " ] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE=$line
	COMP_POINT=${#line}
	COMPREPLY=()
	"$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
	printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}
ctl() { complete_line "$1" _rerouterctl; }

rr_expect_eq "commands starting with 'h'" "history hold" "$(ctl 'rerouterctl h')"
rr_expect_eq "commands starting with 'con'" "connector connectors" "$(ctl 'rerouterctl con')"
rr_expect_eq "status options" "--json" "$(ctl 'rerouterctl status --')"
rr_expect_eq "hold states" "down up" "$(ctl 'rerouterctl hold ')"
rr_expect_eq "connector subcommands" "add remove set" "$(ctl 'rerouterctl connector ')"
rr_expect_eq "connector names from the database" "site-a site-b" "$(ctl "rerouterctl -c $T/rr.conf disable site")"
rr_expect_eq "disable --force" "--force" "$(ctl "rerouterctl -c $T/rr.conf disable site-a --f")"
rr_expect_eq "connector set keys" "address_space= cost= enabled= smart_host= transport=" \
	"$(ctl "rerouterctl -c $T/rr.conf connector set site-a ")"
rr_expect_eq "connector add options" "--address-space --cost --smart-host --transport" \
	"$(ctl "rerouterctl connector add new --")"
rr_expect_eq "no names without a readable database" "" "$(ctl "rerouterctl -c $T/none.conf enable s")"
rr_expect_eq "rerouterd options" "--check-config --config" "$(complete_line 'rerouterd --c' _rerouterd)"
rr_check "both are registered with complete" eval 'complete -p rerouterctl >/dev/null && complete -p rerouterd >/dev/null'

if [ "$RR_FAILURES" -gt 0 ]; then
	rr_log "$RR_FAILURES check(s) failed"
	exit 1
fi
rr_log "all checks passed"
