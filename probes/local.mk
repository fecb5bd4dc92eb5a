# probes/: ping, http, tcp and smtp checks, all of a run at once.
librerouter_la_SOURCES += \
	probes/check.h \
	probes/curl_check.c \
	probes/http.c \
	probes/icmp.c \
	probes/once.c \
	probes/probe.h \
	probes/reply.c \
	probes/reply.h \
	probes/resolve.c \
	probes/route.c \
	probes/run.c \
	probes/smtp.c \
	probes/talk.c \
	probes/tcp.c

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_probes
TESTS += tests/unit/check_probes
tests_unit_check_probes_SOURCES = tests/unit/check_probes.c
tests_unit_check_probes_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_probes_LDADD = $(CHECK_TEST_LIBS)
endif

dist_noinst_SCRIPTS += tests/probes/test-probes.sh tests/probes/test-tls.sh
EXTRA_DIST += tests/probes/peers.py tests/probes/tlspeers.py
# Not part of the suite: a benchmark that reports figures (tests/run --report).
EXTRA_DIST += tests/bench/bench-probes.sh tests/bench/bench-failover.sh
