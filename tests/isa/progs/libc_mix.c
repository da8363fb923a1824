/*
 * Ordinary compiled C through glibc: formatted output of integers and
 * doubles, string and memory routines on unaligned buffers, malloc of small
 * and large blocks (brk and mmap), qsort, setjmp/longjmp, 128-bit
 * arithmetic, libm. Catches engine bugs that only show in the instruction
 * mixes a compiler and a C library produce.
 */
#include "common.h"

#include <math.h>
#include <setjmp.h>
#include <stdlib.h>

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;
	return x < y ? -1 : x > y;
}

static u64 xs(u64 *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint32_t crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & -(c & 1));
	}
	return ~c;
}

static jmp_buf jb;

static __attribute__((noinline)) void deep(int n)
{
	if (n < 0)
		return;
	if (n == 0)
		longjmp(jb, 42);
	deep(n - 1);
}

int main(void)
{
	/* Formatting. */
	static const double ds[] = { 0.0, -0.0, 1.0, 0.1, 1.0 / 3.0, 1e300, 1e-300, 5e-324,
				     123456789.125, -2.5, 6.02214076e23 };
	for (size_t i = 0; i < N_ELEMS(ds); i++)
		printf("%.17g %a %e %f\n", ds[i], ds[i], ds[i], ds[i]);
	printf("%d %ld %lu %x %o %s %c %5.2f|%-8s|\n", -42, (long)INT64_MIN, (unsigned long)UINT64_MAX,
	       0xbeefu, 0777u, "str", 'q', 3.14159, "left");
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%.30f", 0.1);
	printf("snprintf -> %s\n", tmp);
	printf("strtod -> %.17g %.17g %.17g\n", strtod("2.718281828459045235360287", NULL),
	       strtod("1e-310", NULL), strtod("0x1.fffffffffffffp1023", NULL));
	printf("strtoull -> %llu %lld\n", strtoull("18446744073709551615", NULL, 10),
	       strtoll("-9223372036854775808", NULL, 10));

	/* Memory routines at all alignments. */
	uint8_t *a = malloc(4096 + 64), *b = malloc(4096 + 64);
	u64 seed = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 4096 + 64; i++)
		a[i] = (uint8_t)xs(&seed);
	uint32_t acc = 0;
	for (int sa = 0; sa < 8; sa++)
		for (int da = 0; da < 8; da++)
			for (size_t n = 0; n < 300; n += 37) {
				memset(b, 0x5a, 4096 + 64);
				memcpy(b + da, a + sa, n);
				memmove(b + da + 1, b + da, n);
				acc = acc * 31 + crc32(b, 600) + (uint32_t)memcmp(a + sa, b + da + 1, n);
			}
	printf("mem routines -> %08x\n", acc);
	a[100] = 0;
	printf("strlen/strchr -> %zu %d\n", strlen((char *)a + 3), strchr("hello world", 'w') != NULL);
	free(a);
	free(b);

	/* Large allocation (mmap) and brk growth. */
	size_t big = 8u << 20;
	uint8_t *m = malloc(big);
	for (size_t i = 0; i < big; i += 4096)
		m[i] = (uint8_t)(i >> 12);
	u64 sum = 0;
	for (size_t i = 0; i < big; i += 4096)
		sum += m[i];
	m = realloc(m, big * 2);
	m[big * 2 - 1] = 7;
	sum += m[big * 2 - 1] + m[4096 * 3];
	free(m);
	void *ps[200];
	for (int i = 0; i < 200; i++) {
		ps[i] = malloc((size_t)(i * 97 % 5000) + 1);
		memset(ps[i], i, (size_t)(i * 97 % 5000) + 1);
	}
	for (int i = 0; i < 200; i += 2)
		free(ps[i]);
	for (int i = 1; i < 200; i += 2)
		sum += ((uint8_t *)ps[i])[0], free(ps[i]);
	printf("malloc -> %" PRIu64 "\n", sum);

	/* qsort. */
	u64 arr[1000];
	for (int i = 0; i < 1000; i++)
		arr[i] = xs(&seed);
	qsort(arr, 1000, sizeof(arr[0]), cmp_u64);
	int sorted = 1;
	for (int i = 1; i < 1000; i++)
		sorted &= arr[i - 1] <= arr[i];
	printf("qsort -> %d %016" PRIx64 " %016" PRIx64 "\n", sorted, arr[0], arr[999]);

	/* setjmp/longjmp. */
	int v = setjmp(jb);
	if (v == 0)
		deep(50);
	printf("longjmp -> %d\n", v);

	/* 128-bit arithmetic (libgcc). */
	unsigned __int128 x = (unsigned __int128)0x123456789abcdef0ull * 0xfedcba9876543210ull;
	unsigned __int128 q = x / 0x1234567ull, r = x % 0x1234567ull;
	printf("int128 -> %016" PRIx64 "%016" PRIx64 " %016" PRIx64 " %016" PRIx64 "\n",
	       (u64)(x >> 64), (u64)x, (u64)q, (u64)r);

	/* libm. */
	volatile double h = 0.7;
	printf("libm -> %.17g %.17g %.17g %.17g %.17g %.17g %.17g\n", sqrt(h), exp(h), log(h),
	       sin(h), pow(h, 3.3), fma(h, h, -0.49), floor(-h));
	volatile float hf = 0.7f;
	printf("libmf -> %.9g %.9g %.9g\n", (double)sqrtf(hf), (double)expf(hf), (double)sinf(hf));
	done();
	return 0;
}
