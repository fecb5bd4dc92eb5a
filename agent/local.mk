# agent/: the daemon's loop, voting, windows, persisted state, logging.
librerouter_la_SOURCES += \
	agent/agent.h \
	agent/check.c \
	agent/change.h \
	agent/clock.c \
	agent/clock.h \
	agent/clockwatch.c \
	agent/clockwatch.h \
	agent/ctl.c \
	agent/ctl_json.c \
	agent/curl_loop.c \
	agent/curl_loop.h \
	agent/daemon.c \
	agent/db.c \
	agent/db.h \
	agent/json.c \
	agent/json.h \
	agent/linkwatch.c \
	agent/linkwatch.h \
	agent/log.c \
	agent/log.h \
	agent/metrics.c \
	agent/metrics.h \
	agent/ops.c \
	agent/ops.h \
	agent/schedule.c \
	agent/schedule.h \
	agent/schema.c \
	agent/schema.h \
	agent/state.c \
	agent/state.h \
	agent/strbuf.c \
	agent/strbuf.h \
	agent/timer.c \
	agent/timer.h \
	agent/vote.c \
	agent/vote.h \
	agent/window.c \
	agent/window.h \
	agent/worker.c \
	agent/worker.h

if HAVE_CHECK
check_PROGRAMS += \
	tests/unit/check_vote \
	tests/unit/check_window \
	tests/unit/check_state
TESTS += \
	tests/unit/check_vote \
	tests/unit/check_window \
	tests/unit/check_state
tests_unit_check_vote_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_vote_LDADD = $(CHECK_TEST_LIBS)
tests_unit_check_window_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_window_LDADD = $(CHECK_TEST_LIBS)
tests_unit_check_state_CFLAGS = $(CHECK_TEST_CFLAGS) -DRR_TOP_SRCDIR=\"$(abs_top_srcdir)\"
tests_unit_check_state_LDADD = $(CHECK_TEST_LIBS)
endif

dist_noinst_SCRIPTS += tests/agent/test-daemon.sh tests/agent/test-linkwatch.sh
dist_man8_MANS = agent/rerouterd.8 agent/rerouterctl.8
