# tests/lib/sink.sh: smtp-sink as a relay or an alert mailbox. Each accepted
# message becomes one file under DIR (starting with X-Rcpt-Args: lines).
# Needs common.sh (and wan.sh for a sink inside a namespace).
#     rr_sink_start relayb "$RR_TMPDIR/relayb" 127.0.5.2:20025
#     rr_sink_start relaya "$RR_TMPDIR/relaya" 10.231.5.2:25 rr-lab
#     rr_sink_wait "$RR_TMPDIR/relayb" 1 10; rr_sink_grep "$RR_TMPDIR/relayb" 'Subject: x'

[ -n "${RR_SINK_SH:-}" ] && return 0
RR_SINK_SH=1

# rr_sink_start NAME DIR ADDR:PORT [NETNS [EXTRA-OPTIONS...]]
# Sets RR_PID. Extra options go to smtp-sink (e.g. -R/-Q to answer with errors).
rr_sink_start() {
	local name=$1 dir=$2 addr=$3 ns=${4:-}
	shift 3
	[ $# -gt 0 ] && shift
	mkdir -p "$dir"
	# smtp-sink drops to nobody before it writes the dumps.
	chown nobody "$dir"
	rr_traversable "$dir"
	local cmd=(smtp-sink -u nobody "$@" -d "$dir/%M." "$addr" 50)
	if [ -n "$ns" ]; then
		rr_spawn "$name" ip netns exec "$ns" "${cmd[@]}"
	else
		rr_spawn "$name" "${cmd[@]}"
	fi
	local host=${addr%:*} port=${addr##*:}
	host=${host#[}; host=${host%]}
	wait_for 5 rr_tcp_open "$host" "$port" "$ns" ||
		{ rr_warn "smtp-sink $name on $addr did not start"; return 1; }
}

# rr_sink_stop PID: stop a sink started earlier (e.g. to take relay B down).
rr_sink_stop() {
	rr_kill_pid "$1"
}

# The message files in DIR, one per line (sorted by time of arrival).
rr_sink_files() {
	[ -d "$1" ] || return 0
	find "$1" -type f -printf '%T@ %p\n' | sort -n | cut -d' ' -f2-
}
rr_sink_count() {
	rr_sink_files "$1" | wc -l
}
# rr_sink_grep DIR PATTERN: print the files whose text matches (grep -E).
rr_sink_grep() {
	[ -d "$1" ] || return 1
	grep -rlE -- "$2" "$1"
}
# rr_sink_count_grep DIR PATTERN: how many messages match.
rr_sink_count_grep() {
	local n
	n=$(grep -rlE -- "$2" "$1" 2>/dev/null | wc -l)
	echo "$n"
}
# rr_sink_wait DIR N SECONDS: until DIR holds at least N messages.
rr_sink_wait() {
	wait_for "$3" rr__sink_has "$1" "$2"
}
rr__sink_has() { [ "$(rr_sink_count "$1")" -ge "$2" ]; }
# rr_sink_wait_grep DIR PATTERN SECONDS: until a message matches.
rr_sink_wait_grep() {
	wait_for "$3" rr_sink_grep "$1" "$2" >/dev/null
}
