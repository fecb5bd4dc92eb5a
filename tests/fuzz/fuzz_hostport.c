/* host:port of tcp and smtp targets ([v6]:port), hosts of ping targets,
 * sources, marks: each reader on the same input. */
#include <config.h>

#include "config/config.h"
#include "config/values.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size), *host = NULL;
	uint16_t port = 0;
	uint32_t mark;
	bool ifname;

	if (cfg_parse_hostport(s, &host, &port) == 0) {
		FUZZ_ASSERT(port >= 1 && host && host[0]);
		FUZZ_ASSERT(cfg_valid_ip(host) || cfg_valid_hostname(host));
		free(host);
		host = NULL;
	}
	if (cfg_parse_host(s, &host) == 0) {
		FUZZ_ASSERT(host && host[0] && !strchr(host, ']'));
		free(host);
	}
	(void)cfg_parse_source(s, &ifname);
	(void)cfg_parse_mark(s, &mark);
	(void)cfg_valid_ifname(s);
	free(s);
	return 0;
}
