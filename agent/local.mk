# agent/: the daemon's loop, voting, windows, persisted state, logging.
librerouter_la_SOURCES += \
	agent/agent.h \
	agent/change.h \
	agent/daemon.c \
	agent/log.c \
	agent/log.h
