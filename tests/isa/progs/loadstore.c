/*
 * Loads and stores (unprivileged spec 2.6, 5.3, F/D loads and stores):
 * every width, signed and unsigned, at aligned and misaligned addresses,
 * including accesses that straddle a page boundary, with the extreme
 * immediate offsets. Misaligned accesses are allowed to be handled in
 * hardware or emulated (spec 2.6); Linux user programs see them succeed, so
 * they must succeed here too.
 */
#include "common.h"

#define PAGE 4096
static uint8_t buf[3 * PAGE] __attribute__((aligned(PAGE)));

static void fill(void)
{
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)((i * 37 + 11) ^ (i >> 8));
}

#define LOAD(fn, insn)                                                      \
	static u64 fn(const void *p)                                        \
	{                                                                   \
		u64 r;                                                      \
		__asm__ volatile(insn " %0, 0(%1)" : "=r"(r) : "r"(p) : "memory"); \
		return r;                                                   \
	}
LOAD(ld_b, "lb")
LOAD(ld_h, "lh")
LOAD(ld_w, "lw")
LOAD(ld_d, "ld")
LOAD(ld_bu, "lbu")
LOAD(ld_hu, "lhu")
LOAD(ld_wu, "lwu")

static u64 ld_flw(const void *p)
{
	u64 r;
	__asm__ volatile("flw ft0, 0(%1)\n\tfmv.x.d %0, ft0" : "=r"(r) : "r"(p) : "ft0", "memory");
	return r;
}

static u64 ld_fld(const void *p)
{
	u64 r;
	__asm__ volatile("fld ft0, 0(%1)\n\tfmv.x.d %0, ft0" : "=r"(r) : "r"(p) : "ft0", "memory");
	return r;
}

#define STORE(fn, insn)                                                          \
	static void fn(void *p, u64 v)                                           \
	{                                                                        \
		__asm__ volatile(insn " %1, 0(%0)" : : "r"(p), "r"(v) : "memory"); \
	}
STORE(st_b, "sb")
STORE(st_h, "sh")
STORE(st_w, "sw")
STORE(st_d, "sd")

static void st_fsw(void *p, u64 v)
{
	__asm__ volatile("fmv.d.x ft0, %1\n\tfsw ft0, 0(%0)" : : "r"(p), "r"(v) : "ft0", "memory");
}

static void st_fsd(void *p, u64 v)
{
	__asm__ volatile("fmv.d.x ft0, %1\n\tfsd ft0, 0(%0)" : : "r"(p), "r"(v) : "ft0", "memory");
}

static const struct {
	const char *name;
	u64 (*fn)(const void *);
} loads[] = {
	{ "lb", ld_b }, { "lh", ld_h }, { "lw", ld_w }, { "ld", ld_d },
	{ "lbu", ld_bu }, { "lhu", ld_hu }, { "lwu", ld_wu },
	{ "flw", ld_flw }, { "fld", ld_fld },
};

static const struct {
	const char *name;
	void (*fn)(void *, u64);
} stores[] = {
	{ "sb", st_b }, { "sh", st_h }, { "sw", st_w }, { "sd", st_d },
	{ "fsw", st_fsw }, { "fsd", st_fsd },
};

/* Offsets: aligned, every misalignment, and around the page boundary. */
static const unsigned offsets[] = {
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 100, 127, 128, 129,
	PAGE - 8, PAGE - 7, PAGE - 6, PAGE - 5, PAGE - 4, PAGE - 3, PAGE - 2, PAGE - 1,
	PAGE, PAGE + 1, 2 * PAGE - 3, 2 * PAGE - 1,
};

static void dump16(unsigned off)
{
	unsigned lo = off >= 8 ? off - 8 : 0;
	for (unsigned i = lo; i < lo + 24; i++)
		printf("%02x", buf[i]);
	putchar('\n');
}

static void extreme_offsets(void)
{
	uint8_t *mid = buf + PAGE + PAGE / 2;
	u64 a, b, c, d;
	__asm__ volatile("ld %0, 2047(%4)\n\tld %1, -2048(%4)\n\t"
			 "lw %2, -1(%4)\n\tlhu %3, 2045(%4)"
			 : "=&r"(a), "=&r"(b), "=&r"(c), "=&r"(d) : "r"(mid) : "memory");
	printf("offsets -> %016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64 "\n", a, b, c, d);
	__asm__ volatile("sd %1, 2040(%0)\n\tsw %1, -2048(%0)\n\tsh %1, -3(%0)\n\tsb %1, 2047(%0)"
			 : : "r"(mid), "r"(0x1122334455667788ull) : "memory");
	dump16(PAGE + PAGE / 2 + 2040);
	dump16(PAGE + PAGE / 2 - 2048);
	dump16(PAGE + PAGE / 2 - 3);
	dump16(PAGE + PAGE / 2 + 2047);
	/* A load into x0 still happens and changes nothing. */
	u64 z;
	__asm__ volatile("lw x0, 0(%1)\n\tmv %0, x0" : "=r"(z) : "r"(mid) : "memory");
	printf("lw x0 -> %016" PRIx64 "\n", z);
}

int main(void)
{
	fill();
	for (size_t l = 0; l < N_ELEMS(loads); l++)
		for (size_t o = 0; o < N_ELEMS(offsets); o++)
			printf("%s +%u -> %016" PRIx64 "\n", loads[l].name, offsets[o],
			       loads[l].fn(buf + offsets[o]));
	static const u64 vals[] = { 0x8899aabbccddeeffull, 0x0123456789abcdefull, 0xffffffff7f800001ull };
	for (size_t s = 0; s < N_ELEMS(stores); s++)
		for (size_t o = 0; o < N_ELEMS(offsets); o++)
			for (size_t v = 0; v < N_ELEMS(vals); v++) {
				fill();
				stores[s].fn(buf + offsets[o], vals[v]);
				printf("%s +%u %016" PRIx64 " -> ", stores[s].name, offsets[o], vals[v]);
				dump16(offsets[o]);
				/* Read it back with the matching load. */
				printf("  back %016" PRIx64 "\n", ld_d(buf + offsets[o]));
			}
	fill();
	extreme_offsets();
	done();
	return 0;
}
