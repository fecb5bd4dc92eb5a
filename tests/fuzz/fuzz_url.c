/* URLs: http(s) targets, the smtp(s) mail server, proxies; with the check
 * for credentials in the authority and the other list-shaped values. */
#include <config.h>

#include "config/config.h"
#include "config/values.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const http[] = { "http", "https", NULL };
	static const char *const smtp[] = { "smtp", "smtps", NULL };
	static const char *const proxy[] = { "http", "https", "socks4", "socks5", "socks5h", NULL };
	char *s = fuzz_str(data, size);
	struct cfg_range r[CFG_MAX_EXPECT];
	struct cfg_list l = { 0 };
	size_t n;

	if (cfg_parse_url(s, http) == 0 || cfg_parse_url(s, smtp) == 0 || cfg_parse_url(s, proxy) == 0)
		FUZZ_ASSERT(strstr(s, "://") && cfg_find_ctrl(s) < 0);
	(void)cfg_url_has_userinfo(s);
	if (cfg_parse_expect(s, r, CFG_MAX_EXPECT, &n) == 0) {
		FUZZ_ASSERT(n >= 1 && n <= CFG_MAX_EXPECT);
		for (size_t i = 0; i < n; i++)
			FUZZ_ASSERT(r[i].lo >= 100 && r[i].lo <= r[i].hi && r[i].hi <= 599);
	}
	if (cfg_parse_list(s, ",;", &l) == 0) {
		FUZZ_ASSERT(l.n >= 1 && l.v[l.n] == NULL);
		cfg_list_free(&l);
	}
	if (cfg_split_argv(s, &l) == 0)
		cfg_list_free(&l);
	(void)cfg_valid_address(s);
	free(s);
	return 0;
}
