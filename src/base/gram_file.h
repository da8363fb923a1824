/*
 * Guest RAM to and from a snapshot's memory file. The memory file is the
 * guest's RAM as a plain image, byte n of the file being guest-physical
 * address base + n: a Full snapshot's file holds all of it (pages that read
 * as zero are left as holes), a Diff snapshot's file holds only the pages
 * written since the snapshot before (at their own offsets, holes elsewhere)
 * and the state file lists which those are.
 *
 * Restoring maps a Full file privately (gram_init_file), so nothing is read
 * up front; the runs of each Diff file above it are then read in.
 */
#ifndef SKIFF_BASE_GRAM_FILE_H
#define SKIFF_BASE_GRAM_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "base/gram.h"

/* A run of pages: page numbers counted from the start of RAM. */
struct gram_run {
	uint64_t first, count;
};

struct gram_save_stats {
	uint64_t pages_written;   /* pages written from RAM */
	uint64_t bytes_copied;    /* from the file RAM is mapped from */
};

/* Open `path` for a new memory file: created if missing (mode 0600), never
 * one that a VM's RAM is mapped from (those hold a shared lock: see
 * gram_init_file), emptied. Returns the descriptor, or -errno. */
int gram_file_create(const char *path);

/* Write all of RAM into fd (an empty file, see gram_file_create) as a Full
 * memory file, pages of zeros as holes. With RAM mapped from a file, that
 * file's data is copied first (its holes stay holes) and only the pages this
 * VM wrote go over it (a written page of zeros punches a hole). 0 or
 * -errno. */
int gram_save_full(const struct gram *r, int fd, struct gram_save_stats *st);

/* Write the pages marked dirty into fd at their offsets, and return them as
 * runs (*runs to free()); a dirty page of zeros is listed but left as a
 * hole (it reads as zeros). Tracking must be on. 0 or -errno. */
int gram_save_dirty(const struct gram *r, int fd, struct gram_run **runs, size_t *nruns,
		    struct gram_save_stats *st);

/* Read runs of pages from fd (a Diff memory file) into RAM. The runs must
 * lie inside RAM and inside the file. 0 or -errno. */
int gram_load_runs(struct gram *r, int fd, const struct gram_run *runs, size_t nruns);

#endif
