# tests/lib/wan.sh: "the internet" as a network namespace joined to the host
# by a veth pair; the WAN is cut by setting the veth down and restored by up.
# Needs common.sh. Use your area's names (HELPERS.md), e.g. for the lab:
#     rr_wan_start rr-lab rrlab0 rrlab1 10.231.5.1/24 10.231.5.2/24
#     rr_wan_exec rr-lab python3 -m http.server ...   # or rr_wan_spawn
#     rr_wan_cut rr-lab; rr_wan_restore rr-lab

[ -n "${RR_WAN_SH:-}" ] && return 0
RR_WAN_SH=1

# Per-namespace memory of the veth names (for cut/restore).
declare -A RR_WAN_HOSTIF RR_WAN_NSIF

# rr_wan_start NETNS HOST_IF NS_IF HOST_ADDR/PFX NS_ADDR/PFX
rr_wan_start() {
	local ns=$1 hif=$2 nif=$3 haddr=$4 naddr=$5
	# A leftover from a killed run would make every step below fail.
	ip netns del "$ns" 2>/dev/null
	ip link del "$hif" 2>/dev/null
	ip netns add "$ns" || return 1
	rr_on_cleanup "rr_wan_stop '$ns' '$hif'"
	ip link add "$hif" type veth peer name "$nif" || return 1
	ip link set "$nif" netns "$ns" || return 1
	ip addr add "$haddr" dev "$hif" || return 1
	ip link set "$hif" up || return 1
	ip -n "$ns" addr add "$naddr" dev "$nif" || return 1
	ip -n "$ns" link set lo up || return 1
	ip -n "$ns" link set "$nif" up || return 1
	RR_WAN_HOSTIF[$ns]=$hif
	RR_WAN_NSIF[$ns]=$nif
	# Ready when both ends have carrier (no ping binary on minimal systems).
	wait_for 5 rr__link_up "$hif" ||
		{ rr_warn "wan $ns: $hif has no carrier"; return 1; }
}

# Kill what still runs inside, then delete the namespace (takes its veth end).
rr_wan_stop() {
	local ns=$1 hif=${2:-} p
	for p in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$p" 2>/dev/null; done
	wait_for 2 rr__netns_empty "$ns"
	for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	ip netns del "$ns" 2>/dev/null
	[ -n "$hif" ] && ip link del "$hif" 2>/dev/null
	return 0
}
rr__link_up() { ip -o link show "$1" | grep -q LOWER_UP; }
rr__netns_empty() { [ -z "$(ip netns pids "$1" 2>/dev/null)" ]; }

# The cut: the namespace's end goes down, so packets to it are lost (like a
# dead line, not a refused connection). restore brings it back up.
rr_wan_cut() {
	ip -n "$1" link set "${RR_WAN_NSIF[$1]}" down
}
rr_wan_restore() {
	ip -n "$1" link set "${RR_WAN_NSIF[$1]}" up
}
rr_wan_is_up() {
	ip -n "$1" -o link show "${RR_WAN_NSIF[$1]}" | grep -q 'state UP'
}

# rr_wan_exec NETNS CMD...: run a command inside, in the foreground.
rr_wan_exec() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}
# rr_wan_spawn NETNS NAME CMD...: a background process inside (see rr_spawn).
rr_wan_spawn() {
	local ns=$1 name=$2
	shift 2
	rr_spawn "$name" ip netns exec "$ns" "$@"
}

# A simple TCP listener inside NETNS on ADDR:PORT that accepts and closes.
rr_wan_tcp_listener() {
	local ns=$1 name=$2 addr=$3 port=$4
	rr_wan_spawn "$ns" "$name" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64)
while True:
    c, _ = s.accept(); c.close()
' "$addr" "$port"
	wait_for 5 rr_tcp_open "$addr" "$port" "$ns"
}

# An HTTP server inside NETNS serving DIR on ADDR:PORT.
rr_wan_http_server() {
	local ns=$1 name=$2 addr=$3 port=$4 dir=$5
	mkdir -p "$dir"
	[ -e "$dir/index.html" ] || echo '<html>lab</html>' >"$dir/index.html"
	rr_wan_spawn "$ns" "$name" python3 -m http.server "$port" --bind "$addr" --directory "$dir"
	wait_for 10 rr_tcp_open "$addr" "$port" "$ns"
}
