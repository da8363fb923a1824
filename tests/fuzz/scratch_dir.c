/* A fuzz process's own scratch directory; see scratch_dir.h. */
#include "scratch_dir.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The one directory of this process (atexit takes no argument). */
static char made[64];

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void remove_dir(void)
{
	nftw(made, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

void fuzz_dir_make(const char *token, char dir[64])
{
	size_t len = strlen(token);
	/* "/tmp/sfz-" + filler + "-XXXXXX": at least 9 + 7 bytes. */
	if (len < 16 || len > 63 || made[0]) {
		fprintf(stderr, "fuzz_dir_make: token %s: 16..63 bytes, once per process\n", token);
		exit(1);
	}
	char t[64];
	size_t fill = len - 9 - 7;
	memcpy(t, "/tmp/sfz-", 9);
	memset(t + 9, 'd', fill);
	memcpy(t + 9 + fill, "-XXXXXX", 8);
	if (!mkdtemp(t)) {
		perror("mkdtemp");
		exit(1);
	}
	memcpy(made, t, len + 1);
	memcpy(dir, t, len + 1);
	atexit(remove_dir);
}

void fuzz_dir_rewrite(void *buf, size_t n, const char *from, const char *to)
{
	size_t len = strlen(from);
	char *p = buf, *end = p + n;
	while ((p = memmem(p, (size_t)(end - p), from, len))) {
		memcpy(p, to, len);
		p += len;
	}
}
