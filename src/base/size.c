/* Parsing sizes with binary suffixes; see size.h. */
#include "base/size.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int size_parse(const char *s, uint64_t plain_unit, uint64_t *out)
{
	/* strtoull would also take blanks, a sign or hex. */
	if (!s || *s < '0' || *s > '9')
		return -1;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	uint64_t mult = plain_unit;
	if (*end) {
		switch (*end) {
		case 'k': case 'K': mult = 1ull << 10; break;
		case 'm': case 'M': mult = 1ull << 20; break;
		case 'g': case 'G': mult = 1ull << 30; break;
		case 't': case 'T': mult = 1ull << 40; break;
		default: return -1;
		}
		const char *tail = end + 1;
		if (*tail && strcmp(tail, "i") && strcmp(tail, "B") && strcmp(tail, "iB"))
			return -1;
	}
	if (mult && v > UINT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}
