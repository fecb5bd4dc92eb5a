/* Shared by the libFuzzer targets: the input as a NUL-terminated string
 * (every parser under test reads C strings, as inih hands them over). */
#pragma once

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline char *fuzz_str(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* A property that must hold: abort, so libFuzzer keeps the input. */
#define FUZZ_ASSERT(cond)         \
	do {                      \
		if (!(cond))      \
			abort();  \
	} while (0)
