# probes/: ping, http, tcp and smtp checks, all of a run at once.
librerouter_la_SOURCES += \
	probes/probe.h \
	probes/run.c
