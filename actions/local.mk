# actions/: connectors, transport restart, hook, alert mail.
librerouter_la_SOURCES += \
	actions/actions.c \
	actions/actions.h \
	actions/alert.c \
	actions/alert.h \
	actions/connector_ctl.c \
	actions/connectors.c \
	actions/connectors.h \
	actions/exec.c \
	actions/exec.h \
	actions/queue.c \
	actions/queue.h \
	actions/reconcile.c \
	actions/reconcile.h \
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

# alerts (issue 6): the mail queue, composition and SMTP transfer.
librerouter_la_SOURCES += \
	actions/mail.c \
	actions/mail.h
check_PROGRAMS += tests/alerts/rr-alerts-driver
tests_alerts_rr_alerts_driver_SOURCES = tests/alerts/rr-alerts-driver.c
tests_alerts_rr_alerts_driver_LDADD = librerouter.la
dist_noinst_SCRIPTS += tests/alerts/test-alerts.sh
EXTRA_DIST += tests/alerts/smtp-test-server.py
if HAVE_CHECK
check_PROGRAMS += tests/unit/check_alert
TESTS += tests/unit/check_alert
tests_unit_check_alert_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_alert_LDADD = $(CHECK_TEST_LIBS)
endif
EXTRA_DIST += tests/deps/alerts.txt
