# config/: the INI parser and validator, the sample configuration.
librerouter_la_SOURCES += \
	config/config.c \
	config/config.h
EXTRA_DIST += config/rerouter.conf
