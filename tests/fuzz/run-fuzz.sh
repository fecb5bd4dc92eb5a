#!/bin/bash
# libFuzzer over every parser of outside input (issue 13): the whole
# configuration file (parse + validate), durations, day lists, times,
# host:port (and hosts, sources, marks), URLs (and status-code lists, mail
# lists, argv splitting), and what servers answer the http and smtp checks
# (probes/reply.c: status lines, SMTP reply lines). Built out of the tree with clang
# (-fsanitize=fuzzer,address,undefined) in its own directory; each target
# runs RR_FUZZ_SECS seconds (default 15) from the seed corpus in
# tests/fuzz/corpus/TARGET (copied: the seeds in git stay as they are).
# Any crash, leak, sanitizer report or broken property fails the run; the
# reproducer is kept in the build directory. One line per target reports
# its executions.
#
# libcurl reads what https, proxies and STARTTLS relays answer; there is no
# parser of database rows beyond SQLite's typed columns: neither has a target.
#
#   RR_SRCDIR=$PWD tests/fuzz/run-fuzz.sh [TARGET...]
#   RR_FUZZ_BUILDDIR (default $RR_SRCDIR/build-fuzz), RR_FUZZ_SECS, RR_FUZZ_JOBS
set -u
RR_SRCDIR=${RR_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${RR_FUZZ_BUILDDIR:-$RR_SRCDIR/build-fuzz}
SECS=${RR_FUZZ_SECS:-15}
TARGETS=(config duration days time hostport url reply)
[ $# -gt 0 ] && TARGETS=("$@")
CC=${RR_FUZZ_CC:-clang}

command -v "$CC" >/dev/null || { echo "SKIP: $CC is not installed (tests/deps/fuzz.txt)"; exit 77; }
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' \
	>"${TMPDIR:-/tmp}/rr-fuzz-probe.$$.c"
if ! "$CC" -fsanitize=fuzzer -o "${TMPDIR:-/tmp}/rr-fuzz-probe.$$" "${TMPDIR:-/tmp}/rr-fuzz-probe.$$.c" 2>/dev/null; then
	rm -f "${TMPDIR:-/tmp}/rr-fuzz-probe.$$"*
	echo "SKIP: $CC cannot link libFuzzer (libclang-rt-14-dev, tests/deps/fuzz.txt)"
	exit 77
fi
rm -f "${TMPDIR:-/tmp}/rr-fuzz-probe.$$"*

mkdir -p "$B"
# configure gives config.h (_GNU_SOURCE, PACKAGE_VERSION) for this compiler.
if [ ! -f "$B/config.h" ] || [ "$RR_SRCDIR/configure" -nt "$B/config.h" ]; then
	if [ ! -x "$RR_SRCDIR/configure" ]; then
		(cd "$RR_SRCDIR" && autoreconf -fi) >"$B/autoreconf.log" 2>&1 ||
			{ cat "$B/autoreconf.log"; exit 1; }
	fi
	(cd "$B" && "$RR_SRCDIR/configure" CC="$CC") >"$B/configure.log" 2>&1 ||
		{ tail -20 "$B/configure.log"; exit 1; }
fi

SAN="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
CFLAGS="-std=c11 -Wall -Wextra -Werror -I$B -I$RR_SRCDIR $(pkg-config --cflags inih)"
LIBS=$(pkg-config --libs inih)
SRCS=("$RR_SRCDIR"/config/{config,parse,validate,values}.c "$RR_SRCDIR"/probes/reply.c)

fails=0
for t in "${TARGETS[@]}"; do
	bin=$B/fuzz_$t
	# shellcheck disable=SC2086
	if ! "$CC" $SAN $CFLAGS -o "$bin" "$RR_SRCDIR/tests/fuzz/fuzz_$t.c" "${SRCS[@]}" $LIBS \
		>"$B/build-$t.log" 2>&1; then
		cat "$B/build-$t.log"
		echo "FAIL: fuzz_$t does not build"
		fails=$((fails + 1))
		continue
	fi
	work=$B/corpus-$t
	mkdir -p "$work" "$B/artifacts-$t"
	cp -n "$RR_SRCDIR/tests/fuzz/corpus/$t"/* "$work"/ 2>/dev/null
	dict=()
	[ -f "$RR_SRCDIR/tests/fuzz/$t.dict" ] && dict=(-dict="$RR_SRCDIR/tests/fuzz/$t.dict")
	log=$B/fuzz-$t.log
	# One process, no fork mode: a crash stops it with a non-zero status.
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		"$bin" -max_total_time="$SECS" -max_len=8192 -timeout=10 -rss_limit_mb=1024 \
		-print_final_stats=1 -artifact_prefix="$B/artifacts-$t/" "${dict[@]}" "$work" \
		>"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
	if [ "$rc" != 0 ]; then
		grep -E -A30 'ERROR: |runtime error|==ABORTING|deadly signal' "$log" | head -60
		echo "FAIL: fuzz_$t: exit $rc after ${execs:-?} executions; reproducer: $(ls "$B/artifacts-$t"/ 2>/dev/null | head -3)"
		fails=$((fails + 1))
	else
		echo "ok: fuzz_$t: ${execs:-?} executions in ${SECS}s, ${cov:-cov: ?}, corpus $(ls "$work" | wc -l) inputs, no crash"
	fi
done
[ "$fails" = 0 ]
