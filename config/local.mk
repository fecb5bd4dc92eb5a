# config/: the INI parser and validator, the sample configuration.
librerouter_la_SOURCES += \
	config/config.c \
	config/config.h \
	config/instance.c \
	config/instance.h \
	config/internal.h \
	config/parse.c \
	config/validate.c \
	config/values.c \
	config/values.h
EXTRA_DIST += config/rerouter.conf
dist_man5_MANS = config/rerouter.conf.5

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_config
TESTS += tests/unit/check_config
tests_unit_check_config_SOURCES = tests/unit/check_config.c
tests_unit_check_config_CPPFLAGS = $(AM_CPPFLAGS) -DSRCDIR=\"$(abs_top_srcdir)\"
tests_unit_check_config_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_config_LDADD = $(CHECK_TEST_LIBS)
endif

dist_noinst_SCRIPTS += tests/config/test-check-config.sh

# Bash completion for both programs (the Debian package takes it from the install).
bashcompletiondir = $(datadir)/bash-completion/completions
dist_bashcompletion_DATA = config/completion/rerouterctl config/completion/rerouterd
