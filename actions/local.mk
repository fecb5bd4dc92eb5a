# actions/: connectors, transport restart, hook, alert mail.
librerouter_la_SOURCES += \
	actions/actions.c \
	actions/actions.h \
	actions/alert.c \
	actions/alert.h \
	actions/connectors.c \
	actions/connectors.h \
	actions/exec.c \
	actions/exec.h \
	actions/transport.c \
	actions/transport.h
EXTRA_DIST += \
	actions/POSTFIX.md \
	config/postfix-transport.cf \
	config/rerouter-polkit.rules

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_connectors tests/unit/check_exec
TESTS += tests/unit/check_connectors tests/unit/check_exec
tests_unit_check_connectors_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_connectors_LDADD = $(CHECK_TEST_LIBS)
tests_unit_check_exec_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_exec_LDADD = $(CHECK_TEST_LIBS)
endif

# Stands in for the agent in tests/actions/test-actions.sh.
noinst_PROGRAMS = tests/actions/rr-actions-driver
tests_actions_rr_actions_driver_SOURCES = tests/actions/rr-actions-driver.c
tests_actions_rr_actions_driver_LDADD = librerouter.la
dist_noinst_SCRIPTS += tests/actions/test-actions.sh
