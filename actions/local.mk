# actions/: connectors, transport restart, hook, alert mail.
librerouter_la_SOURCES += \
	actions/actions.c \
	actions/actions.h \
	actions/alert.c \
	actions/alert.h
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
