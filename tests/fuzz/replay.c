/*
 * The fuzz targets without libFuzzer: a main() that hands each file named
 * on the command line (or each file in a directory named there, such as a
 * seed corpus) to the target's LLVMFuzzerTestOneInput once, after its
 * LLVMFuzzerInitialize if it has one. Every build links each target with
 * this (tests/fuzz/meson.build), so a target that stops linking stops the
 * build; it also replays a crash input under a debugger or valgrind.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return 1;
	}
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			uint8_t *b = realloc(buf, cap);
			if (!b) {
				fprintf(stderr, "%s: out of memory\n", path);
				free(buf);
				fclose(f);
				return 1;
			}
			buf = b;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		perror(path);
		free(buf);
		return 1;
	}
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	int status = 0, inputs = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			DIR *d = opendir(argv[i]);
			struct dirent *e;
			while (d && (e = readdir(d))) {
				char path[4096];
				snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
				if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
					status |= run_file(path);
					inputs++;
				}
			}
			if (d)
				closedir(d);
		} else {
			status |= run_file(argv[i]);
			inputs++;
		}
	}
	printf("replayed %d inputs\n", inputs);
	return status;
}
