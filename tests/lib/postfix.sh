# tests/lib/postfix.sh: a private Postfix whose transport_maps read a
# rerouter transport database through transport_routes (TESTING.md), run as a
# user unit `postfix start-fg` under the private user manager (systemd.sh), so
# that rerouterd's `[transport] bus = user` restarts it. Needs common.sh and,
# for the unit, systemd.sh; only inside rr_private_mountns.
#     rr_postfix_setup "$RR_TMPDIR/postfix" "$RR_TMPDIR/db/transport.db"
#     rr_postfix_unit lab-postfix.service      # written, started, waited for
#     rr_sendmail from@hub.test to@remote.test "subject" [body]
#     rr_postfix_wait_empty 20                 # queue empty (all delivered)
#
# The database's directory must be readable by the postfix user (trivial-
# rewrite reads it); rr_postfix_db_perms DIR makes it so, WAL files included.

[ -n "${RR_POSTFIX_SH:-}" ] && return 0
RR_POSTFIX_SH=1

# rr_postfix_setup DIR TRANSPORT_DB [EXTRA postconf -e SETTINGS...]
# Sets RR_POSTFIX_DIR and RR_POSTFIX_LOG (the mail log file).
rr_postfix_setup() {
	local dir=$1 db=$2
	shift 2
	[ "${RR_IN_MOUNTNS:-}" = "$$" ] || { rr_warn "postfix: not in a private mount namespace"; return 1; }
	RR_POSTFIX_DIR=$dir
	RR_POSTFIX_LOG=$dir/log/postfix.log
	mkdir -p "$dir/etc" "$dir/spool" "$dir/lib" "$dir/log"
	cp -a /etc/postfix/. "$dir/etc/"
	[ -e "$dir/etc/main.cf" ] || : >"$dir/etc/main.cf"
	chown postfix "$dir/lib"
	chmod 755 "$dir/spool"
	local m
	for m in /etc/postfix:etc /var/spool/postfix:spool /var/lib/postfix:lib; do
		mkdir -p "${m%%:*}"
		mount --bind "$dir/${m#*:}" "${m%%:*}" || return 1
		rr_on_cleanup "umount -l '${m%%:*}'"
	done
	cat >/etc/postfix/rerouter-transport.cf <<EOF
dbpath = $db
query = SELECT nexthop FROM transport_routes WHERE address_space = '%s'
EOF
	# No smtpd listener: mail enters through sendmail/pickup only, so no port
	# is taken on the host. Short timeouts and backoff so a dead relay defers
	# mail in seconds and deferred mail is retried soon.
	postconf -e 'compatibility_level = 3.6' \
		'myhostname = hub.rr-lab.test' 'mydomain = rr-lab.test' 'myorigin = $myhostname' \
		"transport_maps = sqlite:/etc/postfix/rerouter-transport.cf" \
		'mydestination =' 'inet_interfaces = loopback-only' 'inet_protocols = ipv4' \
		'disable_dns_lookups = yes' 'smtp_host_lookup = native' \
		'alias_maps =' 'alias_database =' 'local_recipient_maps =' \
		'smtp_tls_security_level = none' 'smtpd_tls_security_level = none' \
		'smtp_connect_timeout = 3s' 'smtp_helo_timeout = 5s' \
		'minimal_backoff_time = 5s' 'maximum_backoff_time = 10s' 'queue_run_delay = 5s' \
		"maillog_file_prefixes = /var, /dev/stdout, /tmp, $dir" \
		"maillog_file = $RR_POSTFIX_LOG" "$@" || return 1
	postconf -F '*/*/chroot = n' || return 1
	postconf -M 'postlog/unix-dgram=postlog unix-dgram n - n - 1 postlogd' || return 1
	postconf -MX smtp/inet || return 1
	chown postfix "$dir/log"
	rr_traversable "$dir/log"
	postfix check >>"$dir/check.log" 2>&1 || { rr_warn "postfix check failed: $(cat "$dir/check.log")"; return 1; }
}

# rr_postfix_db_perms DBDIR: let the postfix user read the database directory
# and use WAL's -shm (group postfix, setgid so new -wal/-shm files follow).
rr_postfix_db_perms() {
	local d=$1 f
	chgrp postfix "$d" && chmod 2775 "$d"
	rr_traversable "$d"
	for f in "$d"/*; do
		[ -e "$f" ] || continue
		chgrp postfix "$f"
		chmod g+rw "$f"
	done
}

# rr_postfix_unit UNIT: write the user unit running Postfix, start it, wait
# for the master. Every start appends a line to $RR_POSTFIX_DIR/starts
# (rr_postfix_starts counts them: NRestarts counts only automatic restarts,
# not those asked over D-Bus).
#
# Like Debian's postfix unit: Type=forking with `postfix start`, whose
# `master -w` returns only once the new master is initialised, so the start
# (or restart) job ends when Postfix accepts work and 'postqueue -f' right
# after it works. No readiness poll with `postfix status` next to a
# `postfix start-fg`: status runs `master -t`, which takes master.pid's lock
# for a moment, and a start that finds the lock taken exits with "the Postfix
# mail system is already running"; the unit then failed and a second start
# followed. The tests restart Postfix more often than 5 times in 10 s on
# purpose, so systemd's start rate limit (which, in a restart, refuses the
# start after having done the stop) is off.
rr_postfix_unit() {
	local unit=$1
	RR_POSTFIX_UNIT=$unit
	rr_user_unit "$unit" <<EOF || return 1
[Unit]
Description=rerouter lab: the hub's Postfix
StartLimitIntervalSec=0

[Service]
Type=forking
PIDFile=/var/spool/postfix/pid/master.pid
ExecStartPre=/bin/sh -c 'date +%%s.%%N >> $RR_POSTFIX_DIR/starts'
ExecStart=/usr/sbin/postfix start
ExecStop=/usr/sbin/postfix stop
TimeoutStopSec=10
EOF
	systemctl --user start "$unit" || { rr_warn "cannot start $unit"; return 1; }
	rr_on_cleanup "timeout 15 systemctl --user stop '$unit'"
	rr_postfix_wait_running 20
}
rr_postfix_wait_running() {
	wait_for "${1:-20}" rr__postfix_running ||
		{ rr_warn "postfix did not start: $(tail -5 "$RR_POSTFIX_LOG" 2>/dev/null)"; return 1; }
}
rr__postfix_running() {
	# (postfix status would log a line at each poll)
	local pid
	rr_unit_active "$RR_POSTFIX_UNIT" || return 1
	read -r pid 2>/dev/null </var/spool/postfix/pid/master.pid || return 1
	kill -0 "$pid" 2>/dev/null && test -e /var/spool/postfix/public/pickup
}
rr_postfix_starts() {
	if [ -f "$RR_POSTFIX_DIR/starts" ]; then wc -l <"$RR_POSTFIX_DIR/starts"; else echo 0; fi
}

# rr_sendmail FROM TO SUBJECT [BODY]: submit one message through sendmail.
rr_sendmail() {
	printf 'From: %s\nTo: %s\nSubject: %s\nMessage-ID: <%s@hub.rr-lab.test>\n\n%s\n' \
		"$1" "$2" "$3" "$(date +%s%N).$RANDOM" "${4:-test message}" |
		sendmail -i -f "$1" "$2"
}

# Queue inspection (postqueue -j: one JSON object per queued message).
rr_postfix_queue_count() {
	postqueue -j 2>/dev/null | grep -c .
}
rr_postfix_queue_empty() {
	[ "$(rr_postfix_queue_count)" = 0 ]
}
# rr_postfix_wait_empty SECONDS: until everything left the queue.
rr_postfix_wait_empty() {
	wait_for "$1" rr_postfix_queue_empty
}
# rr_postfix_deferred_count: messages in the deferred queue.
rr_postfix_deferred_count() {
	postqueue -j 2>/dev/null | grep -c '"queue_name": *"deferred"'
}
# rr_postfix_wait_deferred N SECONDS: until at least N messages are deferred.
rr_postfix_wait_deferred() {
	wait_for "$2" rr__deferred_at_least "$1"
}
rr__deferred_at_least() { [ "$(rr_postfix_deferred_count)" -ge "$1" ]; }
# rr_postfix_flush: retry deferred mail now.
rr_postfix_flush() {
	postqueue -f
}
# rr_postfix_log_grep PATTERN: the mail log lines matching (grep -E).
rr_postfix_log_grep() {
	grep -E -- "$1" "$RR_POSTFIX_LOG" 2>/dev/null
}
# rr_postfix_wait_log PATTERN SECONDS
rr_postfix_wait_log() {
	wait_for "$2" rr_postfix_log_grep "$1" >/dev/null
}
