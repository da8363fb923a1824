/*
 * Guest RAM to and from memory files; see gram_file.h.
 *
 * Which pages a Full snapshot must write comes from /proc/self/pagemap
 * (Linux's Documentation/admin-guide/mm/pagemap.rst): bit 63 "present",
 * bit 62 "swapped", bit 61 "file page or shared anonymous". In RAM's
 * private mapping a page that is present and not a file page, or swapped
 * out, is one this VM holds itself; every other page reads as zero
 * (anonymous RAM) or as the file RAM is mapped from. Without pagemap every
 * page is treated as the VM's own, which is slower but gives the same file.
 */
#include "base/gram_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define PM_PRESENT (1ull << 63)
#define PM_SWAP    (1ull << 62)
#define PM_FILE    (1ull << 61)
#define PAGEMAP_BATCH 4096
#define WRITE_MAX (1u << 20)        /* bytes per pwrite */

int gram_file_create(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	/* A VM restored from this file maps it: emptying it under that VM
	 * would take its RAM away (SIGBUS on the next access). */
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int e = errno == EWOULDBLOCK ? EBUSY : errno;
		close(fd);
		return -e;
	}
	if (ftruncate(fd, 0)) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static int write_all(int fd, const uint8_t *p, uint64_t len, uint64_t off)
{
	while (len) {
		size_t n = len > WRITE_MAX ? WRITE_MAX : (size_t)len;
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO;
		p += w;
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return 0;
}

static int read_all(int fd, uint8_t *p, uint64_t len, uint64_t off)
{
	while (len) {
		size_t n = len > WRITE_MAX ? WRITE_MAX : (size_t)len;
		ssize_t r = pread(fd, p, n, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;   /* the file is shorter than it said */
		p += r;
		off += (uint64_t)r;
		len -= (uint64_t)r;
	}
	return 0;
}

/* Copy the first len bytes of in to out (in-kernel where it can). */
static int copy_file(int in, int out, uint64_t len, uint64_t *copied)
{
	loff_t ioff = 0, ooff = 0;
	while ((uint64_t)ioff < len) {
		ssize_t n = copy_file_range(in, &ioff, out, &ooff, (size_t)(len - (uint64_t)ioff), 0);
		if (n > 0)
			continue;
		if (n == 0)
			return -EIO;
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
			return -errno;
		/* No in-kernel copy between these files: by hand. */
		uint8_t *buf = malloc(WRITE_MAX);
		if (!buf)
			return -ENOMEM;
		int rc = 0;
		while ((uint64_t)ioff < len && !rc) {
			uint64_t chunk = len - (uint64_t)ioff < WRITE_MAX ? len - (uint64_t)ioff : WRITE_MAX;
			rc = read_all(in, buf, chunk, (uint64_t)ioff);
			if (!rc)
				rc = write_all(out, buf, chunk, (uint64_t)ooff);
			ioff += (loff_t)chunk;
			ooff += (loff_t)chunk;
		}
		free(buf);
		if (rc)
			return rc;
	}
	*copied = (uint64_t)ioff;
	return 0;
}

static bool page_is_zero(const uint8_t *p)
{
	static const uint8_t zero[64];
	for (size_t i = 0; i < GRAM_PAGE_SIZE; i += sizeof(zero))
		if (memcmp(p + i, zero, sizeof(zero)))
			return false;
	return true;
}

int gram_save_full(const struct gram *r, int fd, struct gram_save_stats *st)
{
	memset(st, 0, sizeof(*st));
	bool based = r->file_fd >= 0;
	if (ftruncate(fd, (off_t)r->size))
		return -errno;
	if (based) {
		int rc = copy_file(r->file_fd, fd, r->size, &st->bytes_copied);
		if (rc)
			return rc;
	}
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t *ent = malloc(PAGEMAP_BATCH * sizeof(*ent));
	if (!ent) {
		if (pm >= 0)
			close(pm);
		return -ENOMEM;
	}
	int rc = 0;
	uint64_t run_start = 0, run_len = 0;
	for (uint64_t b = 0; b < r->npages && !rc; b += PAGEMAP_BATCH) {
		uint64_t n = r->npages - b < PAGEMAP_BATCH ? r->npages - b : PAGEMAP_BATCH;
		bool known = false;
		if (pm >= 0) {
			uint64_t vpn = ((uintptr_t)r->host >> GRAM_PAGE_SHIFT) + b;
			ssize_t got = pread(pm, ent, n * sizeof(*ent), (off_t)(vpn * sizeof(*ent)));
			known = got == (ssize_t)(n * sizeof(*ent));
		}
		for (uint64_t i = 0; i < n && !rc; i++) {
			uint64_t pn = b + i;
			const uint8_t *p = r->host + (pn << GRAM_PAGE_SHIFT);
			bool own = !known || (ent[i] & PM_SWAP) ||
				   ((ent[i] & PM_PRESENT) && !(ent[i] & PM_FILE));
			/* Over a copied file a page of zeros must still be
			 * written; in a file of its own it is a hole. */
			bool write = own && (based || !page_is_zero(p));
			if (write && run_len && run_start + run_len == pn) {
				run_len++;
				continue;
			}
			if (run_len)
				rc = write_all(fd, r->host + (run_start << GRAM_PAGE_SHIFT),
					       run_len << GRAM_PAGE_SHIFT, run_start << GRAM_PAGE_SHIFT);
			st->pages_written += rc ? 0 : run_len;
			run_len = write ? 1 : 0;
			run_start = pn;
		}
	}
	if (!rc && run_len) {
		rc = write_all(fd, r->host + (run_start << GRAM_PAGE_SHIFT),
			       run_len << GRAM_PAGE_SHIFT, run_start << GRAM_PAGE_SHIFT);
		st->pages_written += rc ? 0 : run_len;
	}
	free(ent);
	if (pm >= 0)
		close(pm);
	return rc;
}

int gram_save_dirty(const struct gram *r, int fd, struct gram_run **runs, size_t *nruns,
		    struct gram_save_stats *st)
{
	memset(st, 0, sizeof(*st));
	*runs = NULL;
	*nruns = 0;
	if (!r->dirty)
		return -EINVAL;
	if (ftruncate(fd, (off_t)r->size))
		return -errno;
	size_t n = 0, cap = 0;
	struct gram_run *v = NULL;
	for (uint64_t pn = 0; pn < r->npages; pn++) {
		if (!atomic_load_explicit(&r->dirty[pn], memory_order_relaxed))
			continue;
		if (n && v[n - 1].first + v[n - 1].count == pn) {
			v[n - 1].count++;
			continue;
		}
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 64;
			struct gram_run *nv = reallocarray(v, nc, sizeof(*nv));
			if (!nv) {
				free(v);
				return -ENOMEM;
			}
			v = nv;
			cap = nc;
		}
		v[n++] = (struct gram_run){ .first = pn, .count = 1 };
	}
	for (size_t k = 0; k < n; k++) {
		int rc = write_all(fd, r->host + (v[k].first << GRAM_PAGE_SHIFT),
				   v[k].count << GRAM_PAGE_SHIFT, v[k].first << GRAM_PAGE_SHIFT);
		if (rc) {
			free(v);
			return rc;
		}
		st->pages_written += v[k].count;
	}
	*runs = v;
	*nruns = n;
	return 0;
}

int gram_load_runs(struct gram *r, int fd, const struct gram_run *runs, size_t nruns)
{
	struct stat sb;
	if (fstat(fd, &sb))
		return -errno;
	uint64_t fpages = (uint64_t)sb.st_size >> GRAM_PAGE_SHIFT;
	for (size_t k = 0; k < nruns; k++) {
		const struct gram_run *g = &runs[k];
		if (g->count == 0 || g->first >= r->npages || g->count > r->npages - g->first ||
		    g->first + g->count > fpages)
			return -ERANGE;
	}
	for (size_t k = 0; k < nruns; k++) {
		uint64_t off = runs[k].first << GRAM_PAGE_SHIFT;
		int rc = read_all(fd, r->host + off, runs[k].count << GRAM_PAGE_SHIFT, off);
		if (rc)
			return rc;
		gram_written(r, r->base + off, runs[k].count << GRAM_PAGE_SHIFT);
	}
	return 0;
}
