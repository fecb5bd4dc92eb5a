# tests/surroundings: surroundings that break (issue 13): the mail server down,
# the bus and the transport unit failing, kill -9, SIGHUP storms, dripping
# targets, a soak, the daemon under valgrind. The heavy ones (kill9, soak,
# valgrind) skip in the sanitizer pass.
dist_noinst_SCRIPTS += tests/surroundings/test-mail-down.sh tests/surroundings/test-drip.sh \
	tests/surroundings/test-bus.sh tests/surroundings/test-kill9.sh \
	tests/surroundings/test-sighup.sh tests/surroundings/test-soak.sh \
	tests/surroundings/test-valgrind.sh \
	tests/surroundings/account.py tests/surroundings/drip.py tests/surroundings/storm.py
dist_noinst_DATA += tests/surroundings/sur.sh
