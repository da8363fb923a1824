/*
 * Tiny check helpers shared by the machine (board device) unit tests: each
 * test program counts its checks in a struct mt and ends with mt_report(),
 * which prints "N passed, N failed" and gives the exit status.
 */
#ifndef SKIFF_TESTS_MACHINE_TEST_H
#define SKIFF_TESTS_MACHINE_TEST_H

#include <inttypes.h>
#include <stdio.h>

struct mt {
	int passed, failed;
};

#define MT_CHECK(t, cond) \
	mt_check((t), (cond), #cond, __FILE__, __LINE__)
#define MT_EQ(t, a, b) \
	mt_eq((t), (uint64_t)(a), (uint64_t)(b), #a " == " #b, __FILE__, __LINE__)

static inline void mt_check(struct mt *t, int ok, const char *what, const char *file, int line)
{
	if (ok) {
		t->passed++;
	} else {
		t->failed++;
		printf("FAIL %s:%d: %s\n", file, line, what);
	}
}

static inline void mt_eq(struct mt *t, uint64_t a, uint64_t b, const char *what,
			 const char *file, int line)
{
	if (a == b) {
		t->passed++;
	} else {
		t->failed++;
		printf("FAIL %s:%d: %s (0x%" PRIx64 " != 0x%" PRIx64 ")\n", file, line, what, a, b);
	}
}

static inline int mt_report(const struct mt *t)
{
	printf("%d passed, %d failed\n", t->passed, t->failed);
	/* A program that checked nothing has not shown anything works. */
	return t->failed || !t->passed ? 1 : 0;
}

#endif
