# actions/: connectors, transport restart, hook, alert mail.
librerouter_la_SOURCES += \
	actions/actions.c \
	actions/actions.h \
	actions/alert.c \
	actions/alert.h
