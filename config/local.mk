# config/: the INI parser and validator, the sample configuration.
librerouter_la_SOURCES += \
	config/config.c \
	config/config.h \
	config/internal.h \
	config/parse.c \
	config/validate.c \
	config/values.c \
	config/values.h
EXTRA_DIST += config/rerouter.conf
