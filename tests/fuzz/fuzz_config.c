/* The whole configuration file: pass 1 (INI) and pass 2 (typed values,
 * cross-checks), as --check-config and a SIGHUP reload run them. */
#include <config.h>

#include <errno.h>

#include "config/config.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_errors errs = { 0 };
	struct cfg *c = NULL;
	char *text = fuzz_str(data, size);
	int r = cfg_load_string("fuzz.conf", text, &c, &errs);

	/* Either a configuration or errors, never both, never neither. */
	FUZZ_ASSERT((r == 0) == (c != NULL));
	FUZZ_ASSERT(r != -EINVAL || errs.n > 0);
	for (size_t i = 0; i < errs.n; i++)
		FUZZ_ASSERT(strncmp(errs.v[i], "fuzz.conf:", 10) == 0);
	if (c) {
		FUZZ_ASSERT(c->n_link_checks > 0 && c->agent.failed_checks <= c->n_link_checks);
		FUZZ_ASSERT(c->agent.failed_runs <= c->agent.runs && c->agent.passed_runs <= c->agent.runs);
		for (size_t i = 0; i < c->n_checks; i++)
			FUZZ_ASSERT(c->checks[i].target != NULL);
	}
	cfg_free(c);
	cfg_errors_clear(&errs);
	free(text);
	return 0;
}
