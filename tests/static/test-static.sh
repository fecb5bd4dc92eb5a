#!/bin/bash
# Static analysis, all clean (issue 13): cppcheck (warning, style,
# performance, portability; the only style rule left out is variableScope,
# since declaring at the top of a block is this code's habit), clang-tidy with
# the checks chosen in .clang-tidy (the reasons are written there), and
# clang's analyzer through scan-build over a full build in its own directory.
# Any finding fails. Runs once, in tests/run's pass over the plain build
# (skipped when RR_BUILDDIR is the ASan build, or with RR_STATIC=no).
#   RR_SRCDIR=$PWD RR_BUILDDIR=$PWD/build tests/static/test-static.sh
set -u
: "${RR_SRCDIR:?}" "${RR_BUILDDIR:?}"
case $RR_BUILDDIR in
*build-asan | *build-asan/) echo "SKIP: static analysis runs once, with the plain pass"; exit 77 ;;
esac
[ "${RR_STATIC:-yes}" = no ] && { echo "SKIP: RR_STATIC=no"; exit 77; }
for c in cppcheck clang-tidy scan-build; do
	command -v "$c" >/dev/null || { echo "SKIP: $c is not installed (tests/deps/static.txt)"; exit 77; }
done
[ -f "$RR_BUILDDIR/config.h" ] || { echo "FAIL: no $RR_BUILDDIR/config.h: build first"; exit 1; }
cd "$RR_SRCDIR" || exit 1
fails=0
SRCS=(agent/*.c actions/*.c config/*.c probes/*.c)
DEFS=(-DSYSCONFDIR=\"/etc\" -DLOCALSTATEDIR=\"/var\")

echo "== cppcheck $(cppcheck --version | cut -d' ' -f2) on ${#SRCS[@]} files (and tests/fuzz)"
# The suppressions file names each finding left for later, with why.
if cppcheck --quiet --std=c11 --enable=warning,style,performance,portability \
	--suppress=variableScope --suppressions-list=tests/static/cppcheck.supp --inline-suppr \
	--error-exitcode=1 -I. -I"$RR_BUILDDIR" "${DEFS[@]}" "${SRCS[@]}" tests/fuzz/*.c; then
	echo "ok: cppcheck: no finding"
else
	echo "FAIL: cppcheck"
	fails=$((fails + 1))
fi

echo "== clang-tidy $(clang-tidy --version | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -1), checks from .clang-tidy"
# shellcheck disable=SC2046
FLAGS=(-std=c11 -I. -I"$RR_BUILDDIR" "${DEFS[@]}" -pthread
	$(pkg-config --cflags libcurl liboping sqlite3 libsystemd inih))
out=$(clang-tidy --quiet "${SRCS[@]}" -- "${FLAGS[@]}" 2>&1)
rc=$?
n=$(printf '%s\n' "$out" | grep -c -E '(warning|error): ')
if [ "$rc" = 0 ] && [ "$n" = 0 ]; then
	echo "ok: clang-tidy: no finding in ${#SRCS[@]} files"
else
	printf '%s\n' "$out" | grep -E -A3 '(warning|error): ' | head -80
	echo "FAIL: clang-tidy: $n findings (exit $rc)"
	fails=$((fails + 1))
fi

echo "== scan-build (clang static analyzer) over a full build"
B=${RR_SCAN_BUILDDIR:-$RR_SRCDIR/build-scan}
rm -rf "$B"
mkdir -p "$B"
if ! (cd "$B" && scan-build "$RR_SRCDIR/configure" --enable-werror) >"$B/configure.log" 2>&1; then
	tail -20 "$B/configure.log"
	echo "FAIL: configure under scan-build"
	exit 1
fi
# --status-bugs: exit 1 when the analyzer reports anything.
if scan-build --status-bugs -o "$B/report" make -C "$B" -j"$(nproc)" >"$B/scan.log" 2>&1; then
	echo "ok: scan-build: $(grep -o 'No bugs found' "$B/scan.log" | head -1)"
else
	grep -E 'warning:|scan-build:' "$B/scan.log" | head -40
	echo "FAIL: scan-build (report in $B/report)"
	fails=$((fails + 1))
fi
[ "$fails" = 0 ]
