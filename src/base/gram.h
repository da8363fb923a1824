/*
 * Guest RAM: one host mapping that backs the guest-physical range
 * [base, base + size). Every access from the monitor or a device goes through
 * gram_ptr(), which checks address *and* length, so a hostile guest address
 * can never reach host memory outside the mapping.
 *
 * The engine caches decoded instructions per guest-physical page. Writes that
 * do not go through the engine's own store path (device DMA, the loader) must
 * call gram_written() so cached code for those pages is dropped; gram_write()
 * does both.
 *
 * RAM is either anonymous memory (a VM that booted) or a private,
 * copy-on-write mapping of a snapshot's memory file (a restored VM: nothing
 * is read up front, and VMs restored from one file share the pages none of
 * them wrote). For Diff snapshots the RAM can track which pages were
 * written: the engine marks a page when it fills a write translation for it
 * (so every hart's write translations must be dropped whenever the marks
 * are cleared), gram_written() marks what devices write.
 *
 * Anonymous RAM is mapped on a huge-page boundary and asked for transparent
 * huge pages (MADV_HUGEPAGE; the host decides): a boot then takes a third
 * of the page faults. A range given back (gram_discard) must not come back
 * whole on the guest's next touch of one 4 KiB page in it, so the huge
 * pages a discard touches are switched to small pages first; the RAM keeps
 * a bounded number of such runs and beyond that gives up huge pages for
 * all of it.
 */
#ifndef SKIFF_BASE_GRAM_H
#define SKIFF_BASE_GRAM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct thread_hook;

#define GRAM_PAGE_SHIFT 12
#define GRAM_PAGE_SIZE (1ull << GRAM_PAGE_SHIFT)
/* A transparent huge page of x86-64 and of most 4 KiB-page hosts (one page
 * table of small pages). On a host with other sizes the RAM is still right,
 * it only gets fewer huge pages. */
#define GRAM_HUGE_SHIFT 21
#define GRAM_HUGE_SIZE (1ull << GRAM_HUGE_SHIFT)
/* At most this many separate runs of huge pages switched to small pages
 * (each costs the host up to two more memory areas). */
#define GRAM_SMALL_RUNS_MAX 1024

struct gram {
	uint8_t *host;           /* host address of guest-physical `base` */
	uint64_t base;           /* first guest-physical address */
	uint64_t size;           /* bytes, multiple of the page size */
	uint64_t npages;
	/* Per page: non-zero while some hart holds decoded code from it. */
	_Atomic uint8_t *code;
	/* Per page: bumped whenever a code page is written; decoded blocks
	 * remember the value they were built under. */
	_Atomic uint32_t *gen;
	/* Bumped when a page becomes a code page: harts then drop their
	 * cached write translations so stores to it take the checked path. */
	_Atomic uint64_t code_epoch;
	/* Bumped after a page's gen: some hart's decoded code went out of
	 * date. A FENCE.I that sees it unchanged since the hart last emptied
	 * its jump cache has nothing to drop there. */
	_Atomic uint64_t code_writes;
	/* Per page: written since the marks were last cleared; NULL while
	 * dirty-page tracking is off. Set and cleared only while no hart runs. */
	_Atomic uint8_t *dirty;
	/* The snapshot memory file RAM is mapped from, or -1 (anonymous). */
	int file_fd;
	/* RAM mapped from a file: the guest-physical address plus one of the
	 * first page the file could no longer give (it was truncated under
	 * the VM, and the access raised SIGBUS); 0 while none. Such a page
	 * reads as zeros from then on: the VM's memory is no longer what the
	 * guest wrote, and the VMM must stop the VM (gram_catch_lost_pages). */
	_Atomic uint64_t lost;
	/* How the threads that serve this RAM's guest (device I/O, timers,
	 * network backends) start (thread_start): the VMM's sandbox confines
	 * each at its start, before it reads a byte of guest memory. NULL:
	 * plain threads. */
	const struct thread_hook *threads;
	/* Huge pages: `huge` while part of RAM may still be on them (anonymous
	 * RAM only; a memory file's private copies are small pages anyway).
	 * small[i] is set once huge page i was switched to small pages;
	 * small_runs counts the runs of set entries. Under small_lock. */
	bool huge;
	uint8_t *small;
	uint32_t small_runs;
	pthread_mutex_t small_lock;
};

/* Reserve `size` bytes of private anonymous memory (lazily backed) that
 * starts on a huge-page boundary and ask the host for transparent huge
 * pages there; *huge says whether it took the advice. MAP_FAILED on
 * failure. Guest RAM, and caches that fill a few MiB on every boot (the
 * engine's block arena), where a fault per 4 KiB costs more than zeroing
 * 2 MiB at once. */
void *gram_map_huge(uint64_t size, bool *huge);

/* Reserve `size` bytes of guest RAM at `base` (lazily backed by the host:
 * untouched pages cost nothing). Returns 0 or -errno. */
int gram_init(struct gram *r, uint64_t base, uint64_t size);
/* The same, mapped privately (copy-on-write) from the first `size` bytes
 * of the open file fd, which must be at least that long; gram keeps its own
 * descriptor. Returns 0 or -errno. */
int gram_init_file(struct gram *r, uint64_t base, uint64_t size, int fd);
void gram_destroy(struct gram *r);

/* Make an access to RAM mapped from a file that is no longer there (the
 * file was truncated or shrunk by another program while the VM ran; the
 * host raises SIGBUS) survivable: a page of zeros takes the lost page's
 * place, the access completes, and gram->lost says so, for the VMM to stop
 * that VM with an error rather than die by the signal. Installs a
 * process-wide SIGBUS handler once (it chains to the one before it for any
 * other address); call it before the sandbox confines the process and
 * after anything else that installs its own SIGBUS handler (the
 * terminal's). */
void gram_catch_lost_pages(void);

/* Turn dirty-page tracking on (every page starts clean) or off. 0 or
 * -ENOMEM. Only while no hart runs. */
int gram_track_dirty(struct gram *r, bool on);
/* Mark page number pn (counted from base) as written. */
static inline void gram_mark_dirty(struct gram *r, uint64_t pn)
{
	if (r->dirty)
		atomic_store_explicit(&r->dirty[pn], 1, memory_order_relaxed);
}

/* Host pointer for [gpa, gpa+len) if the whole range lies in RAM, else NULL. */
static inline void *gram_ptr(const struct gram *r, uint64_t gpa, uint64_t len)
{
	uint64_t off = gpa - r->base;
	if (gpa < r->base || off > r->size || len > r->size - off)
		return NULL;
	return r->host + off;
}

static inline bool gram_contains(const struct gram *r, uint64_t gpa, uint64_t len)
{
	return gram_ptr(r, gpa, len) != NULL;
}

/* Note that [gpa, gpa+len) was written behind the engine's back. */
void gram_written(struct gram *r, uint64_t gpa, uint64_t len);

/* Checked copies; return 0 or -1 when the range is not RAM. */
int gram_read(const struct gram *r, uint64_t gpa, void *dst, uint64_t len);
int gram_write(struct gram *r, uint64_t gpa, const void *src, uint64_t len);

/* Give the host back the backing of whole pages inside [gpa, gpa+len)
 * (balloon, free page reporting); they read as zero afterwards, or, in RAM
 * mapped from a snapshot's memory file, as that file holds them. The huge
 * pages the range touches are backed by small pages from then on. */
int gram_discard(struct gram *r, uint64_t gpa, uint64_t len);

/* Bytes of guest RAM the host backs right now (pages the guest touched and
 * that were not given back); for the metrics. */
uint64_t gram_resident_bytes(const struct gram *r);

/* Whether the huge page holding guest-physical gpa was switched to small
 * pages (by a discard, or all of RAM when the runs ran out); true too when
 * RAM never asked for huge pages. */
bool gram_small_pages(struct gram *r, uint64_t gpa);

#endif
