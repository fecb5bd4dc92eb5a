# agent/: the daemon's loop, voting, windows, persisted state, logging.
librerouter_la_SOURCES += \
	agent/agent.h \
	agent/change.h \
	agent/curl_loop.c \
	agent/curl_loop.h \
	agent/daemon.c \
	agent/log.c \
	agent/log.h
