# tests/lib/common.sh: logging, bounded polling, a cleanup stack, root check.
# Sourced by bash test scripts:  . "$RR_SRCDIR/tests/lib/common.sh"
#
# Every start function in tests/lib registers its own undo with rr_on_cleanup,
# so a script needs just one line to tear everything down, in reverse order:
#     rr_trap          # = trap rr_cleanup EXIT; INT/TERM exit through it
# Background processes: rr_spawn NAME CMD... (logs to $RR_TMPDIR/NAME.log).

[ -n "${RR_COMMON_SH:-}" ] && return 0
RR_COMMON_SH=1

RR_CLEANUP=()         # stack of commands (strings, eval'd), pushed by rr_on_cleanup
RR_CLEANING=0
: "${RR_TMPDIR:=}"

# Logging. rr_step is a headline, rr_info a detail, rr_ok/rr_fail a check result.
rr_ts() { date +%H:%M:%S.%3N; }
rr_log() { printf '%s %s\n' "$(rr_ts)" "$*" >&2; }
rr_step() { printf '\n%s == %s\n' "$(rr_ts)" "$*" >&2; }
rr_info() { printf '%s    %s\n' "$(rr_ts)" "$*" >&2; }
rr_ok() { printf '%s ok  %s\n' "$(rr_ts)" "$*" >&2; }
rr_warn() { printf '%s WARN %s\n' "$(rr_ts)" "$*" >&2; }
# A failed assertion: remembered, the script goes on (rr_failures counts them).
RR_FAILURES=0
rr_fail() {
	printf '%s FAIL %s\n' "$(rr_ts)" "$*" >&2
	RR_FAILURES=$((RR_FAILURES + 1))
}
# Fatal: stop now (cleanup runs from the EXIT trap).
rr_die() {
	printf '%s FATAL %s\n' "$(rr_ts)" "$*" >&2
	exit 1
}
# Skip the whole test (exit 77) with a reason.
rr_skip() {
	printf 'SKIP: %s\n' "$*" >&2
	exit 77
}
# rr_check DESCRIPTION CMD...: run CMD, report ok/FAIL under DESCRIPTION.
rr_check() {
	local what=$1
	shift
	if "$@"; then rr_ok "$what"; return 0; fi
	rr_fail "$what"
	return 1
}
# rr_expect_eq DESCRIPTION EXPECTED ACTUAL
rr_expect_eq() {
	if [ "$2" = "$3" ]; then
		rr_ok "$1 ($3)"
		return 0
	fi
	rr_fail "$1: expected '$2', got '$3'"
	return 1
}

need_root() {
	[ "$(id -u)" = 0 ] || rr_skip "needs root (network namespaces, mounts, Postfix)"
}

# rr_need_cmd CMD...: skip when a program is missing.
rr_need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] || rr_skip "'$c' is not installed"
	done
}

# Monotonic-enough milliseconds (uptime clock: not moved by date changes).
rr_now_ms() {
	local up
	read -r up _ </proc/uptime
	echo $(( ${up%.*} * 1000 + 10#${up#*.} * 10 ))
}

# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds; 1 on timeout.
# A fractional SECONDS (e.g. 2.5) is fine.
wait_for() {
	local secs=$1 deadline now
	shift
	deadline=$(( $(rr_now_ms) + $(awk -v s="$secs" 'BEGIN { printf "%d", s * 1000 }') ))
	while :; do
		"$@" && return 0
		now=$(rr_now_ms)
		[ "$now" -ge "$deadline" ] && return 1
		sleep 0.1
	done
}

# wait_for_not SECONDS CMD...: the same until CMD fails.
wait_for_not() {
	local secs=$1
	shift
	wait_for "$secs" rr__not "$@"
}
rr__not() { ! "$@"; }

# The cleanup stack. rr_on_cleanup CMD (one string, eval'd at cleanup time).
rr_on_cleanup() {
	RR_CLEANUP+=("$1")
}
# Pop (forget) the most recent entry, after undoing something by hand.
rr_cleanup_pop() {
	local n=${#RR_CLEANUP[@]}
	[ "$n" -gt 0 ] && unset "RR_CLEANUP[$((n - 1))]"
	RR_CLEANUP=("${RR_CLEANUP[@]}")
}
rr_cleanup() {
	local rc=$? i
	[ "$RR_CLEANING" = 1 ] && return "$rc"
	RR_CLEANING=1
	trap '' INT TERM
	for (( i = ${#RR_CLEANUP[@]} - 1; i >= 0; i-- )); do
		eval "${RR_CLEANUP[$i]}" >/dev/null 2>&1 || true
	done
	RR_CLEANUP=()
	return "$rc"
}
# Install the traps: EXIT runs the stack; INT/TERM exit (and so run it too).
rr_trap() {
	trap 'rr_cleanup' EXIT
	trap 'rr_log "interrupted, cleaning up"; exit 130' INT
	trap 'rr_log "terminated, cleaning up"; exit 143' TERM
}

# rr_kill_pid PID [SECONDS]: TERM, wait up to SECONDS (default 3), then KILL.
rr_kill_pid() {
	local pid=$1 secs=${2:-3}
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	wait_for "$secs" rr__dead "$pid" || kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}
rr__dead() { ! kill -0 "$1" 2>/dev/null; }

# rr_spawn NAME CMD...: run CMD in the background, output to $RR_TMPDIR/NAME.log;
# sets RR_PID (also RR_PID_<NAME> when NAME is an identifier) and registers its kill.
rr_spawn() {
	local name=$1
	shift
	"$@" </dev/null >>"$RR_TMPDIR/$name.log" 2>&1 &
	RR_PID=$!
	case $name in
	*[!A-Za-z0-9_]*) ;;
	*) printf -v "RR_PID_$name" '%s' "$RR_PID" ;;
	esac
	rr_on_cleanup "rr_kill_pid $RR_PID"
}

# rr_tmpdir: make sure RR_TMPDIR exists (scripts run by hand get a fresh one,
# removed at cleanup; tests/run's own directory is left to tests/run).
rr_tmpdir() {
	if [ -z "$RR_TMPDIR" ]; then
		RR_TMPDIR=$(mktemp -d /tmp/rr-test.XXXXXX)
		rr_on_cleanup "rm -rf '$RR_TMPDIR'"
	fi
	mkdir -p "$RR_TMPDIR"
	export RR_TMPDIR
}

# rr_traversable DIR: let unprivileged daemons (smtp-sink as nobody, Postfix
# as postfix) reach DIR: o+x on DIR and each parent up to (and including) the
# top of RR_TMPDIR (mktemp -d makes it 0700).
rr_traversable() {
	local d
	d=$(readlink -f "$1") || return 1
	while [ -n "$d" ] && [ "$d" != / ]; do
		chmod o+x "$d" 2>/dev/null
		[ "$d" = "$(readlink -f "$RR_TMPDIR")" ] && break
		d=${d%/*}
	done
	return 0
}

# rr_tcp_open HOST PORT [NETNS]: 0 when something accepts on HOST:PORT.
rr_tcp_open() {
	local host=$1 port=$2 ns=${3:-}
	if [ -n "$ns" ]; then
		ip netns exec "$ns" timeout 1 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null
	else
		timeout 1 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null
	fi
}
