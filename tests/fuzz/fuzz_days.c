/* Day lists of maintenance windows ("mon-fri", "sat,sun", "fri-mon"). */
#include <config.h>

#include "config/config.h"
#include "config/values.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size);
	uint8_t days;

	if (cfg_parse_days(s, &days) == 0)
		FUZZ_ASSERT(days != 0 && days <= 0x7f);
	free(s);
	return 0;
}
