# tests/: the scripts that drive the suite; unit tests are listed by area.
dist_noinst_SCRIPTS += tests/run
# tests/lib: shell helpers sourced by the integration tests and the lab.
dist_noinst_DATA += \
	tests/lib/common.sh \
	tests/lib/wan.sh \
	tests/lib/sink.sh \
	tests/lib/systemd.sh \
	tests/lib/postfix.sh
