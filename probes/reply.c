/* The parsers of what http and smtp servers answer (see reply.h). */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "probes/reply.h"

static bool digit(char c)
{
	return c >= '0' && c <= '9';
}

static int three_digits(const char *p)
{
	if (p[0] < '1' || p[0] > '5' || !digit(p[1]) || !digit(p[2]))
		return -1;
	return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

long probe_http_status(const char *line)
{
	const char *p = line;
	int code;

	if (strncmp(p, "HTTP/", 5) != 0)
		return -1;
	for (p += 5; digit(*p) || *p == '.'; p++)
		;
	if (*p != ' ')
		return -1;
	code = three_digits(p + 1);
	if (code < 0 || (p[4] != ' ' && p[4] != '\0'))
		return -1;
	return code;
}

int probe_smtp_line(const char *line, size_t len, struct probe_smtp_line *ret)
{
	/* "250-STARTTLS", "250 OK", "220": three digits, then '-' for more. */
	if (len < 3 || (ret->code = three_digits(line)) < 0 ||
	    (line[3] && line[3] != ' ' && line[3] != '-'))
		return -1;
	ret->more = line[3] == '-';
	ret->text = len > 4 ? line + 4 : "";
	ret->starttls = strncasecmp(ret->text, "STARTTLS", 8) == 0 &&
			(ret->text[8] == '\0' || ret->text[8] == ' ');
	return 0;
}
