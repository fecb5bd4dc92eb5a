# tests/: the suite runner and what it shares; unit tests are listed by area.
dist_noinst_SCRIPTS += tests/run
EXTRA_DIST += tests/lib/bootstrap.sh tests/deps/base.txt
