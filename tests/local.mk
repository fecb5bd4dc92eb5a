# tests/: the scripts that drive the suite; unit tests are listed by area.
dist_noinst_SCRIPTS += tests/run
