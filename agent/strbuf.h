/* The one growing string: an allocation failure sticks, and strbuf_take()
 * reports it at the end, so callers check once. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct strbuf {
	char *s;
	size_t len, cap;
	bool failed;
};

void strbuf_addn(struct strbuf *b, const char *s, size_t n);
void strbuf_add(struct strbuf *b, const char *s);
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 0 and the string in *ret (the caller frees it), or -ENOMEM; either way the
 * buffer is left empty. */
int strbuf_take(struct strbuf *b, char **ret);
