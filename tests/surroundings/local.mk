# tests/surroundings: surroundings that break (issue 13): the mail server down,
# the bus and the transport unit failing, kill -9, SIGHUP storms, dripping
# targets, a soak, the daemon under valgrind.
dist_noinst_SCRIPTS += tests/surroundings/test-mail-down.sh tests/surroundings/test-drip.sh \
	tests/surroundings/account.py tests/surroundings/drip.py
dist_noinst_DATA += tests/surroundings/sur.sh
dist_noinst_SCRIPTS += tests/surroundings/test-bus.sh
