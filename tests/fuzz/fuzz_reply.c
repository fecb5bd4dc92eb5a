/* What servers answer the http and smtp checks (probes/reply.c): a status
 * line, an SMTP reply line; with the NULs a hostile server may send inside
 * a line (talk.c passes the line's length, not strlen). */
#include <config.h>

#include <strings.h>

#include "probes/reply.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size);
	struct probe_smtp_line l;
	long status = probe_http_status(s);

	FUZZ_ASSERT(status == -1 || (status >= 100 && status <= 599 && strncmp(s, "HTTP/", 5) == 0));
	if (probe_smtp_line(s, size, &l) == 0) {
		FUZZ_ASSERT(l.code >= 100 && l.code <= 599);
		FUZZ_ASSERT(l.text[0] == '\0' || (l.text == s + 4 && size > 4));
		FUZZ_ASSERT(!l.starttls || strncasecmp(l.text, "STARTTLS", 8) == 0);
	}
	free(s);
	return 0;
}
