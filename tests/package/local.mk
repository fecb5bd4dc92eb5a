# tests/package: the Debian package on a booted Debian 12 (issue 11).
dist_noinst_SCRIPTS += tests/package/test-package.sh tests/package/inside.sh
EXTRA_DIST += tests/deps/package.txt
# The packaging itself, so that a release tarball builds the .deb too.
EXTRA_DIST += \
	debian/NEWS \
	debian/changelog \
	debian/control \
	debian/copyright \
	debian/postinst \
	debian/postrm \
	debian/prerm \
	debian/rerouter.dirs \
	debian/rerouter.docs \
	debian/rerouter.examples \
	debian/rerouter.install \
	debian/rerouter.rerouterd.service \
	debian/rerouter.rerouterd@.service \
	debian/rerouter.sysusers \
	debian/rules \
	debian/source/format \
	debian/tests/control \
	debian/tests/installed
