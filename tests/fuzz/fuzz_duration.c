/* Durations ("2m", "500ms", "90"): what parses formats back to the same value. */
#include <config.h>

#include <stdio.h>

#include "config/config.h"
#include "config/values.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size), buf[32];
	uint64_t u, v, n;

	if (cfg_parse_duration(s, &u) == 0) {
		cfg_format_duration(u, buf, sizeof buf);
		/* "us" is the formatter's own unit, not one the parser takes. */
		if (!strstr(buf, "us")) {
			FUZZ_ASSERT(cfg_parse_duration(buf, &v) == 0);
			FUZZ_ASSERT(u == v);
		}
	}
	(void)cfg_parse_uint(s, 0, UINT64_MAX, &n);
	free(s);
	return 0;
}
