/* What a library does at load time that rerouterd does not need.
 *
 * libcurl (Debian's OpenSSL flavour) pulls in GnuTLS through librtmp and
 * libldap, and GnuTLS initialises itself from a constructor: its random
 * generator, its system configuration, p11-kit. rerouterd never speaks
 * rtmp or ldap (every transfer is limited to http, https or smtp), so that
 * work only costs memory (about 0.6 MiB of a run's peak RSS). This is
 * GnuTLS's own opt-out (GNUTLS_SKIP_GLOBAL_INIT in <gnutls/gnutls.h>): the
 * library calls this function, which the executable exports in place of the
 * library's weak one (see rerouterd_LDFLAGS). Without GnuTLS it is never
 * called. Linked into rerouterd only, not into the library, so that an
 * archive member nobody references cannot be dropped. */
#include "config.h"

/* The name is GnuTLS's, reserved as it looks. */
int _gnutls_global_init_skip(void); /* NOLINT(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp) */

int _gnutls_global_init_skip(void) /* NOLINT(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp) */
{
	return 1;
}
