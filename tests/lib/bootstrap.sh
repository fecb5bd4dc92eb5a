# Shared by tests/run and tests/lab/demo: install what a fresh Debian 12
# machine lacks, then build rerouter out of tree. Source it; needs $RR_SRCDIR.

rr_install_deps() {
	if [ "$(id -u)" != 0 ]; then
		echo "bootstrap: must run as root (it installs packages and builds namespaces)" >&2
		return 1
	fi
	pkgs=$(cat "$RR_SRCDIR"/tests/deps/*.txt | sed 's/#.*//' | tr -s ' \t' '\n' | sort -u | grep .)
	# Postfix must not ask questions nor start a system instance of its own.
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	echo "bootstrap: apt-get update"
	DEBIAN_FRONTEND=noninteractive apt-get update -q >"$RR_LOGDIR/apt-update.log" 2>&1 || {
		cat "$RR_LOGDIR/apt-update.log" >&2; return 1; }
	echo "bootstrap: apt-get install" $pkgs
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $pkgs \
		>"$RR_LOGDIR/apt-install.log" 2>&1 || { tail -30 "$RR_LOGDIR/apt-install.log" >&2; return 1; }
}

# rr_build DIR [configure args...]: configure and build in DIR (out of tree).
rr_build() {
	dir=$1; shift
	if [ ! -x "$RR_SRCDIR/configure" ] || [ "$RR_SRCDIR/configure.ac" -nt "$RR_SRCDIR/configure" ]; then
		echo "bootstrap: autoreconf -fi"
		(cd "$RR_SRCDIR" && autoreconf -fi) >"$RR_LOGDIR/autoreconf.log" 2>&1 || {
			cat "$RR_LOGDIR/autoreconf.log" >&2; return 1; }
	fi
	mkdir -p "$dir"
	echo "bootstrap: configure in $dir $*"
	(cd "$dir" && "$RR_SRCDIR/configure" "$@") >"$dir/configure.out" 2>&1 || {
		tail -30 "$dir/configure.out" >&2; return 1; }
	echo "bootstrap: make in $dir"
	make -C "$dir" -j"$(nproc)" >"$dir/make.out" 2>&1 || { grep -E 'error|warning' "$dir/make.out" | head -40 >&2; tail -20 "$dir/make.out" >&2; return 1; }
}
