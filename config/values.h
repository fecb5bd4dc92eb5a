/* Typed readers for configuration values (SPEC section 2). Pure functions:
 * they allocate only their results and never report; the caller turns a
 * -EINVAL into a "FILE:LINE: [section] key: expected ..., got '...'" error. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* A decimal whole number in [min, max]; no sign, no blanks. */
int cfg_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
/* Decimal or 0x hexadecimal, fitting 32 bits. */
int cfg_parse_mark(const char *s, uint32_t *ret);
/* A host name (RFC 1123 labels, '_' tolerated) or an IP address; for IPv6
 * also "[addr]". *ret_host gets the host without brackets. */
int cfg_parse_host(const char *s, char **ret_host);
bool cfg_valid_hostname(const char *s);
bool cfg_valid_ip(const char *s);
bool cfg_valid_ifname(const char *s);
/* An IP address, or an interface name (*ret_is_ifname set). */
int cfg_parse_source(const char *s, bool *ret_is_ifname);
/* scheme://[userinfo@]host[:port][/path...] with scheme one of schemes
 * (NULL-terminated), a valid host and a port in 1..65535 when written. */
int cfg_parse_url(const char *s, const char *const *schemes);
/* The authority of a URL carries user information ("user:pass@host"). */
bool cfg_url_has_userinfo(const char *s);
/* The offset of the first control character (below 0x20, or 0x7f), or -1. */
long cfg_find_ctrl(const char *s);
/* "200-399", "200", "200,204,300-399": codes 100..599, lo <= hi. */
int cfg_parse_expect(const char *s, struct cfg_range *v, size_t max, size_t *ret_n);
/* mon..sun, ranges and lists; "fri-mon" wraps. Bit 0 = Monday. */
int cfg_parse_days(const char *s, uint8_t *ret);
/* HH:MM, 00:00..23:59, as minutes after midnight. */
int cfg_parse_time(const char *s, unsigned *ret_min);
/* Items separated by any of seps, blanks around them trimmed; an empty
 * item (or an empty value) is -EINVAL. */
int cfg_parse_list(const char *s, const char *seps, struct cfg_list *ret);
/* Split on blanks into an argv (no quoting, no shell). Empty: n == 0. */
int cfg_split_argv(const char *s, struct cfg_list *ret);
/* local@domain, no blanks, no angle brackets, a valid domain. */
bool cfg_valid_address(const char *s);
void cfg_list_free(struct cfg_list *l);

/* "2m", "500ms", "90s": the largest unit that is exact. */
void cfg_format_duration(uint64_t usec, char *buf, size_t n);
