/*
 * base/size: the one size parser (skiff run --mem and --jit-cache, skiff
 * create --mem, skiffd --mem-limit, --disk bw=): suffixes, the unit of a
 * plain number, and what is not a size.
 */
#include <stdint.h>

#include "base/size.h"
#include "check.h"

static struct check_counts C;

static uint64_t mib(const char *s)
{
	uint64_t v = 0;
	return size_parse(s, 1ull << 20, &v) ? UINT64_MAX : v;
}

int main(void)
{
	CHECK(&C, mib("512") == 512ull << 20, "a plain number is in the caller's unit (MiB)");
	CHECK(&C, mib("0") == 0, "zero is a size (the caller's range check refuses it)");
	CHECK(&C, mib("512M") == 512ull << 20, "M");
	CHECK(&C, mib("512m") == 512ull << 20, "m");
	CHECK(&C, mib("2G") == 2ull << 30, "G");
	CHECK(&C, mib("2GiB") == 2ull << 30, "GiB");
	CHECK(&C, mib("2Gi") == 2ull << 30, "Gi");
	CHECK(&C, mib("2GB") == 2ull << 30, "GB (binary, as everywhere in skiff)");
	CHECK(&C, mib("1T") == 1ull << 40, "T");
	CHECK(&C, mib("64k") == 64ull << 10, "k");
	CHECK(&C, mib("") == UINT64_MAX, "empty");
	CHECK(&C, mib("-1") == UINT64_MAX, "negative");
	CHECK(&C, mib("+1") == UINT64_MAX, "a sign");
	CHECK(&C, mib(" 1") == UINT64_MAX, "a blank");
	CHECK(&C, mib("0x10") == UINT64_MAX, "hex");
	CHECK(&C, mib("12X") == UINT64_MAX, "an unknown suffix");
	CHECK(&C, mib("12Mx") == UINT64_MAX, "junk after the suffix");
	CHECK(&C, mib("12MiBs") == UINT64_MAX, "junk after iB");
	CHECK(&C, mib("99999999999999999999") == UINT64_MAX, "too large");
	CHECK(&C, mib("18014398509481984G") == UINT64_MAX, "overflows when scaled");
	CHECK(&C, mib("17592186044416") == UINT64_MAX, "overflows in the plain unit");
	uint64_t v = 0;
	CHECK(&C, size_parse("2M", 1, &v) == 0 && v == 2ull << 20, "a suffix is the same in any unit");
	CHECK(&C, size_parse("1500", 1, &v) == 0 && v == 1500, "plain bytes");
	return check_summary(&C);
}
