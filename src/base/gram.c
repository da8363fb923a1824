/* Guest RAM reservation and checked access; see gram.h. */
#include "base/gram.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <ucontext.h>
#include <unistd.h>

void *gram_map_huge(uint64_t size, bool *huge)
{
	*huge = false;
	uint64_t len = size + GRAM_HUGE_SIZE;
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_NORESERVE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return p;
	uint8_t *a = (uint8_t *)(((uintptr_t)p + GRAM_HUGE_SIZE - 1) & ~(uintptr_t)(GRAM_HUGE_SIZE - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (a + size < p + len)
		munmap(a + size, (size_t)(p + len - (a + size)));
	/* A host without transparent huge pages refuses the advice (or
	 * ignores it): the memory then stays on small pages, as before. */
	*huge = madvise(a, size, MADV_HUGEPAGE) == 0;
	return a;
}

/* RAM on huge pages: keep the book of which were switched to small ones. */
static int track_huge(struct gram *r)
{
	uint64_t n = (r->size + GRAM_HUGE_SIZE - 1) >> GRAM_HUGE_SHIFT;
	r->small = calloc(n, 1);
	if (!r->small) {
		gram_destroy(r);
		return -ENOMEM;
	}
	pthread_mutex_init(&r->small_lock, NULL);
	r->huge = true;
	return 0;
}

/* RAM mapped from files, for the SIGBUS handler, which gets nothing but the
 * faulting address: the one piece of process-wide state here, because a
 * signal handler cannot reach a struct vm. Slots are claimed and freed
 * atomically; a RAM that finds none is left as before (a truncated file
 * then ends the process by the signal). */
#define FILE_RAMS 16
static struct gram *_Atomic file_rams[FILE_RAMS];
static struct sigaction prev_sigbus;
static pthread_once_t sigbus_once = PTHREAD_ONCE_INIT;

static void file_ram_add(struct gram *r)
{
	for (int i = 0; i < FILE_RAMS; i++) {
		struct gram *none = NULL;
		if (atomic_compare_exchange_strong(&file_rams[i], &none, r))
			return;
	}
}

static void file_ram_remove(struct gram *r)
{
	for (int i = 0; i < FILE_RAMS; i++) {
		struct gram *me = r;
		atomic_compare_exchange_strong(&file_rams[i], &me, NULL);
	}
}

/* A page of file-mapped RAM whose file no longer reaches it (Linux:
 * SIGBUS, BUS_ADRERR, on a private file mapping past the file's end):
 * map zeros over that page and note it; the access then completes.
 * Only async-signal-safe calls (mmap, atomics). */
static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	uint8_t *a = si->si_addr;
	for (int i = 0; si->si_code == BUS_ADRERR && i < FILE_RAMS; i++) {
		struct gram *r = atomic_load(&file_rams[i]);
		if (!r || a < r->host || a >= r->host + r->size)
			continue;
		uint64_t off = (uint64_t)(a - r->host) & ~(GRAM_PAGE_SIZE - 1);
		int e = errno;
		void *p = mmap(r->host + off, GRAM_PAGE_SIZE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		errno = e;
		if (p == MAP_FAILED)
			break;
		uint64_t none = 0;
		atomic_compare_exchange_strong(&r->lost, &none, r->base + off + 1);
		return;
	}
	/* Not guest RAM (or no page to put there): the handler there was
	 * before (the console's puts the terminal back), then the default
	 * action, which ends the process. The thread may be confined
	 * (vmm/sandbox.c) and not allowed to change a signal's action, so
	 * SIGBUS stays blocked after this handler returns instead: the
	 * faulting access runs again, and the kernel answers a fault whose
	 * signal is blocked with the default action. (A previous handler
	 * that raised SIGBUS again leaves it pending and blocked: no loop.) */
	if (prev_sigbus.sa_flags & SA_SIGINFO)
		prev_sigbus.sa_sigaction(sig, si, uc);
	else if (prev_sigbus.sa_handler != SIG_DFL && prev_sigbus.sa_handler != SIG_IGN)
		prev_sigbus.sa_handler(sig);
	sigaddset(&((ucontext_t *)uc)->uc_sigmask, SIGBUS);
}

static void install_sigbus(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &prev_sigbus);
}

void gram_catch_lost_pages(void)
{
	pthread_once(&sigbus_once, install_sigbus);
}

static int map_ram(struct gram *r, uint64_t base, uint64_t size, int fd)
{
	memset(r, 0, sizeof(*r));
	r->file_fd = -1;
	if (size == 0 || (size & (GRAM_PAGE_SIZE - 1)) || base & (GRAM_PAGE_SIZE - 1))
		return -EINVAL;
	if (fd >= 0) {
		struct stat st;
		if (fstat(fd, &st))
			return -errno;
		if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < size)
			return -EINVAL;
		r->file_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (r->file_fd < 0)
			return -errno;
		/* Held while mapped: gram_file_create() will not empty a file
		 * a VM's RAM is made of. */
		if (flock(r->file_fd, LOCK_SH | LOCK_NB)) {
			int e = errno == EWOULDBLOCK ? EBUSY : errno;
			close(r->file_fd);
			r->file_fd = -1;
			return -e;
		}
	}
	/* Every aligned 2 MiB of guest-physical RAM (the guest's own huge
	 * pages, free page reporting's blocks) is then one host huge page. */
	bool huge = false;
	void *p = fd >= 0 ? mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE,
				 r->file_fd, 0)
			  : gram_map_huge(size, &huge);
	if (p == MAP_FAILED) {
		int e = errno;
		if (r->file_fd >= 0)
			close(r->file_fd);
		r->file_fd = -1;
		return -e;
	}
	r->host = p;
	r->base = base;
	r->size = size;
	r->npages = size >> GRAM_PAGE_SHIFT;
	if (fd >= 0)
		file_ram_add(r);
	r->code = calloc(r->npages, sizeof(*r->code));
	r->gen = calloc(r->npages, sizeof(*r->gen));
	if (!r->code || !r->gen) {
		gram_destroy(r);
		return -ENOMEM;
	}
	if (huge)
		return track_huge(r);
	return 0;
}

int gram_init(struct gram *r, uint64_t base, uint64_t size)
{
	return map_ram(r, base, size, -1);
}

int gram_init_file(struct gram *r, uint64_t base, uint64_t size, int fd)
{
	if (fd < 0)
		return -EBADF;
	return map_ram(r, base, size, fd);
}

void gram_destroy(struct gram *r)
{
	/* A gram that was never set up is all zeros: fd 0 is not ours. */
	if (r->host && r->file_fd >= 0) {
		file_ram_remove(r);
		close(r->file_fd);
	}
	if (r->host)
		munmap(r->host, r->size);
	free((void *)r->code);
	free((void *)r->gen);
	free((void *)r->dirty);
	if (r->small) {
		free(r->small);
		pthread_mutex_destroy(&r->small_lock);
	}
	memset(r, 0, sizeof(*r));
	r->file_fd = -1;
}

int gram_track_dirty(struct gram *r, bool on)
{
	if (!on) {
		free((void *)r->dirty);
		r->dirty = NULL;
		return 0;
	}
	if (r->dirty) {
		memset((void *)r->dirty, 0, r->npages);
		return 0;
	}
	r->dirty = calloc(r->npages, 1);
	return r->dirty ? 0 : -ENOMEM;
}

uint64_t gram_resident_bytes(const struct gram *r)
{
	unsigned char vec[4096];
	const uint64_t chunk = sizeof(vec) << GRAM_PAGE_SHIFT;
	uint64_t pages = 0;
	for (uint64_t off = 0; off < r->size; off += chunk) {
		uint64_t len = r->size - off < chunk ? r->size - off : chunk;
		if (mincore(r->host + off, len, vec))
			return 0;
		for (uint64_t i = 0; i < len >> GRAM_PAGE_SHIFT; i++)
			pages += vec[i] & 1;
	}
	return pages << GRAM_PAGE_SHIFT;
}

void gram_written(struct gram *r, uint64_t gpa, uint64_t len)
{
	if (len == 0 || !gram_contains(r, gpa, len))
		return;
	uint64_t first = (gpa - r->base) >> GRAM_PAGE_SHIFT;
	uint64_t last = (gpa - r->base + len - 1) >> GRAM_PAGE_SHIFT;
	for (uint64_t p = first; p <= last; p++) {
		gram_mark_dirty(r, p);
		if (atomic_load_explicit(&r->code[p], memory_order_relaxed)) {
			atomic_store_explicit(&r->code[p], 0, memory_order_relaxed);
			atomic_fetch_add_explicit(&r->gen[p], 1, memory_order_release);
			atomic_fetch_add_explicit(&r->code_writes, 1, memory_order_release);
		}
	}
}

int gram_read(const struct gram *r, uint64_t gpa, void *dst, uint64_t len)
{
	const void *p = gram_ptr(r, gpa, len);
	if (!p)
		return -1;
	memcpy(dst, p, len);
	return 0;
}

int gram_write(struct gram *r, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = gram_ptr(r, gpa, len);
	if (!p)
		return -1;
	memcpy(p, src, len);
	gram_written(r, gpa, len);
	return 0;
}

/* All of RAM on small pages: one host memory area again, no runs to count.
 * Under small_lock. */
static void all_small(struct gram *r)
{
	/* If even this fails, discards still free what they give back; only a
	 * later touch may bring a whole huge page back. */
	(void)madvise(r->host, r->size, MADV_NOHUGEPAGE);
	memset(r->small, 1, (r->size + GRAM_HUGE_SIZE - 1) >> GRAM_HUGE_SHIFT);
	r->huge = false;
}

/* Switch the huge pages that [gpa, gpa+len) touches to small pages before
 * they are discarded: the next touch of one page in them then brings back
 * that page, not 2 MiB. (A huge page already mapped is split by the
 * discard itself; the setting decides what a later fault maps.) */
static void to_small_pages(struct gram *r, uint64_t gpa, uint64_t len)
{
	if (!r->small)
		return;
	uint64_t n = (r->size + GRAM_HUGE_SIZE - 1) >> GRAM_HUGE_SHIFT;
	uint64_t first = (gpa - r->base) >> GRAM_HUGE_SHIFT;
	uint64_t last = (gpa - r->base + len - 1) >> GRAM_HUGE_SHIFT;
	pthread_mutex_lock(&r->small_lock);
	for (uint64_t i = first; i <= last && r->huge; i++) {
		if (r->small[i])
			continue;
		/* A run of small huge pages is one memory area on the host:
		 * joining two runs ends one, touching none starts one. */
		bool left = i > 0 && r->small[i - 1], right = i + 1 < n && r->small[i + 1];
		uint32_t runs = r->small_runs + (!left && !right) - (left && right);
		uint64_t off = i << GRAM_HUGE_SHIFT;
		uint64_t l = r->size - off < GRAM_HUGE_SIZE ? r->size - off : GRAM_HUGE_SIZE;
		if (runs > GRAM_SMALL_RUNS_MAX || madvise(r->host + off, l, MADV_NOHUGEPAGE)) {
			all_small(r);
			break;
		}
		r->small[i] = 1;
		r->small_runs = runs;
	}
	pthread_mutex_unlock(&r->small_lock);
}

bool gram_small_pages(struct gram *r, uint64_t gpa)
{
	if (!r->small || !gram_contains(r, gpa, 1))
		return true;
	pthread_mutex_lock(&r->small_lock);
	bool small = r->small[(gpa - r->base) >> GRAM_HUGE_SHIFT];
	pthread_mutex_unlock(&r->small_lock);
	return small;
}

int gram_discard(struct gram *r, uint64_t gpa, uint64_t len)
{
	uint64_t start = (gpa + GRAM_PAGE_SIZE - 1) & ~(GRAM_PAGE_SIZE - 1);
	uint64_t end = (gpa + len) & ~(GRAM_PAGE_SIZE - 1);
	if (!gram_contains(r, gpa, len))
		return -1;
	if (end <= start)
		return 0;
	gram_written(r, start, end - start);
	to_small_pages(r, start, end - start);
	return madvise(gram_ptr(r, start, end - start), end - start, MADV_DONTNEED) ? -1 : 0;
}
