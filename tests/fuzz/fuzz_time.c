/* Times of maintenance windows (HH:MM). */
#include <config.h>

#include "config/config.h"
#include "config/values.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size);
	unsigned min;

	if (cfg_parse_time(s, &min) == 0)
		FUZZ_ASSERT(min < 24 * 60);
	free(s);
	return 0;
}
