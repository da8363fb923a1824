/*
 * A scratch directory of the fuzz process's own, for targets whose inputs
 * name files in it (fuzz_api.c, fuzz_snapshot.c). The inputs and seeds
 * spell the directory as a fixed token (say /tmp/skiff-fuzz-api); each
 * process makes a directory whose name has the token's length and puts it
 * in place of the token in every input, so that runs of the same target
 * side by side (the smoke test beside a long run) never share or remove
 * each other's files, and byte offsets inside an input (a state file's
 * sections) stay right. The directory is removed at exit.
 */
#ifndef SKIFF_TESTS_FUZZ_SCRATCH_DIR_H
#define SKIFF_TESTS_FUZZ_SCRATCH_DIR_H

#include <stddef.h>

/* Make the directory for `token` (an absolute path of at least 12 bytes,
 * at most 63) into dir[64]: /tmp/sfz-<name>-XXXXXX cut or padded to the
 * token's length. Exits on failure: the harness cannot run without it. */
void fuzz_dir_make(const char *token, char dir[64]);

/* Replace every occurrence of `from` in buf[0..n) by `to` (same length). */
void fuzz_dir_rewrite(void *buf, size_t n, const char *from, const char *to);

#endif
