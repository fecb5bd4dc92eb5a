#!/bin/bash
# tests/run's fuzzing step: tests/fuzz/run-fuzz.sh over every target, for
# RR_FUZZ_SECS seconds each (15; tests/run --long: 60). It builds its own
# sanitized binaries with clang, so it runs once, in the pass over the plain
# build: skipped when RR_BUILDDIR is the ASan build (or RR_FUZZ=no).
set -u
: "${RR_SRCDIR:?}" "${RR_BUILDDIR:?}"
case $RR_BUILDDIR in
*build-asan | *build-asan/) echo "SKIP: fuzzing runs once, with the plain pass"; exit 77 ;;
esac
[ "${RR_FUZZ:-yes}" = no ] && { echo "SKIP: RR_FUZZ=no"; exit 77; }
RR_FUZZ_BUILDDIR=${RR_FUZZ_BUILDDIR:-$RR_SRCDIR/build-fuzz} exec "$RR_SRCDIR/tests/fuzz/run-fuzz.sh"
