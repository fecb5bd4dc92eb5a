# tests/: the suite runner and what it shares; unit tests are listed by area.
dist_noinst_SCRIPTS += tests/run
EXTRA_DIST += tests/lib/bootstrap.sh tests/deps/base.txt \
	tests/fixtures/v0-state.sql tests/fixtures/v0-transport.sql
# tests/lib: shell helpers sourced by the integration tests and the lab.
dist_noinst_DATA += \
	tests/lib/common.sh \
	tests/lib/wan.sh \
	tests/lib/sink.sh \
	tests/lib/systemd.sh \
	tests/lib/postfix.sh
# tests/lab: the lab site, its demo (README command 1) and the end-to-end test.
dist_noinst_SCRIPTS += tests/lab/demo tests/lab/test-e2e.sh
dist_noinst_DATA += tests/lab/lab.sh
# tests/hooks: hooks that hang, fork, flood or fail, run by the real daemon (issue 13).
dist_noinst_SCRIPTS += tests/hooks/test-hooks.sh
# tests/fuzz: libFuzzer targets for every parser of outside input (issue 13),
# built by run-fuzz.sh with clang in its own directory, not by make.
dist_noinst_SCRIPTS += tests/fuzz/run-fuzz.sh tests/fuzz/test-fuzz.sh
EXTRA_DIST += tests/fuzz/fuzz.h tests/fuzz/fuzz_config.c tests/fuzz/fuzz_duration.c \
	tests/fuzz/fuzz_days.c tests/fuzz/fuzz_time.c tests/fuzz/fuzz_hostport.c \
	tests/fuzz/fuzz_url.c tests/fuzz/fuzz_reply.c tests/fuzz/config.dict tests/fuzz/corpus tests/deps/fuzz.txt
# tests/static: cppcheck, clang-tidy (.clang-tidy) and scan-build, all clean.
dist_noinst_SCRIPTS += tests/static/test-static.sh
EXTRA_DIST += .clang-tidy tests/static/cppcheck.supp tests/deps/static.txt
# tests/ops: check, --json, metrics, connector management (issue 14).
dist_noinst_SCRIPTS += tests/ops/test-ops.sh tests/ops/test-connector.sh \
	tests/ops/test-readonly.sh tests/ops/test-completion.sh tests/ops/test-transport.sh
EXTRA_DIST += tests/deps/ops.txt
# tests/bench: issue 12's benchmark (figures, not tests; not run by tests/run).
dist_noinst_SCRIPTS += tests/bench/run tests/bench/bench-failover.sh tests/bench/bench-probes.sh \
	tests/bench/bench-cost.sh tests/bench/bench-idle.sh tests/bench/report.py tests/bench/idle-figures.py
EXTRA_DIST += tests/bench/deps.txt
