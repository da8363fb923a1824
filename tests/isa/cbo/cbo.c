/*
 * Zicboz CBO.ZERO from a user program. qemu-riscv64 7.2 has no Zicboz, so
 * this program is not one of the differential ones: check_cbo.py runs it
 * under skiff-isa-run alone, on every tier, and knows what it must print
 * and how each case must end.
 *
 * usage: cbo MODE BLOCK, BLOCK the cache-block size in bytes.
 *   zero   the block holding an address, aligned down, is zeroed and
 *          nothing else: within a page, at a page's last block, and a
 *          page block by block in a loop (clear_page's shape, hot enough to
 *          be translated); prints each run of zeroed bytes as offsets
 *   fault  CBO.ZERO at an address outside guest memory (no RAM, or not
 *          mapped under --mmu): prints it, then must trap with stval = it
 *   smc    a function copied to a block of its own, called until
 *          translated, then its block zeroed and FENCE.I: the next call
 *          must run the zeroed code (an illegal instruction at its
 *          address), not the old translation
 * Without --cbze given to the runner every mode traps as illegal at its
 * first CBO.ZERO.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t buf[3 * 4096] __attribute__((aligned(4096)));
/* Code runs from here (the runner maps every page executable). */
static uint32_t code[1024] __attribute__((aligned(4096)));

static void cbo_zero(const volatile void *p)
{
	/* cbo.zero (p): MISC-MEM, funct3 2, rd x0, imm 4 (the CMO chapter). */
	__asm__ volatile(".insn i 0x0f, 2, x0, %0, 4" : : "r"(p) : "memory");
}

/* Print the runs of zero bytes in buf, as offsets [from, to). */
static void show(const char *what)
{
	printf("%s:", what);
	size_t k = 0;
	while (k < sizeof(buf)) {
		if (buf[k]) {
			k++;
			continue;
		}
		size_t from = k;
		while (k < sizeof(buf) && !buf[k])
			k++;
		printf(" %#zx-%#zx", from, k);
	}
	printf("\n");
	fflush(stdout);
}

static void zero_cases(size_t block)
{
	memset(buf, 0xa5, sizeof(buf));
	cbo_zero(buf + 4096 + 3 * block + 13);
	show("inside");

	memset(buf, 0xa5, sizeof(buf));
	cbo_zero(buf + 2 * 4096 - 1);
	show("page end");

	memset(buf, 0xa5, sizeof(buf));
	for (int round = 0; round < 3; round++)
		for (uint8_t *p = buf + 4096; p < buf + 2 * 4096; p += block)
			cbo_zero(p);
	show("page");
}

static void smc_case(void)
{
	const uint32_t ret7[] = { 0x00700513u /* li a0, 7 */, 0x00008067u /* ret */ };
	memcpy(code, ret7, sizeof(ret7));
	__asm__ volatile("fence.i" : : : "memory");
	int (*f)(void) = (int (*)(void))(uintptr_t)code;
	int sum = 0;
	for (int k = 0; k < 20; k++)
		sum += f();
	printf("before: %d\ncode at %#" PRIxPTR "\n", sum, (uintptr_t)code);
	fflush(stdout);
	cbo_zero(code);
	__asm__ volatile("fence.i" : : : "memory");
	printf("after: %d (the old code ran)\n", f());
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	size_t block = strtoul(argv[2], NULL, 0);
	if (!strcmp(argv[1], "zero")) {
		zero_cases(block);
	} else if (!strcmp(argv[1], "fault")) {
		uintptr_t a = 0x40000000u + 0x1234 + 7;
		printf("address %#" PRIxPTR "\n", a);
		fflush(stdout);
		cbo_zero((const void *)a);
		printf("no fault\n");
	} else if (!strcmp(argv[1], "smc")) {
		smc_case();
	} else {
		return 2;
	}
	printf("done\n");
	return 0;
}
