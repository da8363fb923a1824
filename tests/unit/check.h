/* A minimal check harness for skiff's C unit tests: CHECK records a pass or
 * a failure with its location, check_summary() prints "N passed, N failed"
 * and gives the exit status. */
#ifndef SKIFF_TESTS_CHECK_H
#define SKIFF_TESTS_CHECK_H

#include <stdio.h>

struct check_counts { int passed, failed; };

#define CHECK(counts, cond, ...) do {                                            \
		if (cond) {                                                     \
			(counts)->passed++;                                     \
		} else {                                                        \
			(counts)->failed++;                                     \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                           \
			fputc('\n', stderr);                                    \
		}                                                               \
	} while (0)

static inline int check_summary(const struct check_counts *c)
{
	printf("%d passed, %d failed\n", c->passed, c->failed);
	return c->failed || !c->passed ? 1 : 0;
}

#endif
