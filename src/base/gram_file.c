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

/* Copy bytes [from, to) of in to out at the same offsets (in-kernel where
 * it can). */
static int copy_range(int in, int out, uint64_t from, uint64_t to, uint64_t *copied)
{
	loff_t ioff = (loff_t)from, ooff = (loff_t)from;
	uint64_t len = to;
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
	*copied += (uint64_t)ioff - from;
	return 0;
}

/* Copy the first len bytes of in to out, only where in has data: its holes
 * stay holes in out (an in-kernel copy would fill them with allocated
 * zeros). A file system that cannot tell holes apart gets a whole copy. */
static int copy_file(int in, int out, uint64_t len, uint64_t *copied)
{
	*copied = 0;
	uint64_t off = 0;
	while (off < len) {
		off_t data = lseek(in, (off_t)off, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			return 0;   /* only holes from here on */
		if (data < 0)
			return copy_range(in, out, off, len, copied);
		if ((uint64_t)data >= len)
			return 0;
		off_t hole = lseek(in, data, SEEK_HOLE);
		uint64_t end = hole < 0 || (uint64_t)hole > len ? len : (uint64_t)hole;
		int rc = copy_range(in, out, (uint64_t)data, end, copied);
		if (rc)
			return rc;
		off = end;
	}
	return 0;
}

/* Make bytes [off, off+len) of fd read as zeros, as a hole where the file
 * system can (fallocate(2) FALLOC_FL_PUNCH_HOLE), else written zeros. */
static int zero_range(int fd, uint64_t off, uint64_t len)
{
	if (!fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len))
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return -errno;
	static const uint8_t zero[GRAM_PAGE_SIZE];
	for (uint64_t k = 0; k < len; k += sizeof(zero)) {
		int rc = write_all(fd, zero, sizeof(zero), off + k);
		if (rc)
			return rc;
	}
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

/* Pages that go into the file together: written from RAM, or zeros. */
struct span {
	uint64_t first, count;
	bool zero;
};

static int span_flush(struct span *s, const struct gram *r, int fd, struct gram_save_stats *st)
{
	if (!s->count)
		return 0;
	uint64_t off = s->first << GRAM_PAGE_SHIFT, len = s->count << GRAM_PAGE_SHIFT;
	int rc = s->zero ? zero_range(fd, off, len) : write_all(fd, r->host + off, len, off);
	if (!rc && !s->zero)
		st->pages_written += s->count;
	s->count = 0;
	return rc;
}

/* Add page pn to s, writing s out first if pn does not continue it. */
static int span_add(struct span *s, uint64_t pn, const struct gram *r, int fd,
		    struct gram_save_stats *st)
{
	if (s->count && s->first + s->count == pn) {
		s->count++;
		return 0;
	}
	int rc = span_flush(s, r, fd, st);
	s->first = pn;
	s->count = 1;
	return rc;
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
	struct span data = { 0 }, zeros = { .zero = true };
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
			bool own = !known || (ent[i] & PM_SWAP) ||
				   ((ent[i] & PM_PRESENT) && !(ent[i] & PM_FILE));
			if (!own)
				continue;
			/* A page of zeros is a hole: in a file of its own it is
			 * never written; over a copied file it is punched (the
			 * copy may hold data there). */
			if (!page_is_zero(r->host + (pn << GRAM_PAGE_SHIFT)))
				rc = span_add(&data, pn, r, fd, st);
			else if (based)
				rc = span_add(&zeros, pn, r, fd, st);
		}
	}
	if (!rc)
		rc = span_flush(&data, r, fd, st);
	if (!rc)
		rc = span_flush(&zeros, r, fd, st);
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
	/* The file starts as one hole (ftruncate): a dirty page of zeros is
	 * left as one, it reads as the zeros it holds. */
	for (size_t k = 0; k < n; k++) {
		uint64_t end = v[k].first + v[k].count;
		for (uint64_t pn = v[k].first; pn < end;) {
			if (page_is_zero(r->host + (pn << GRAM_PAGE_SHIFT))) {
				pn++;
				continue;
			}
			uint64_t last = pn + 1;
			while (last < end && !page_is_zero(r->host + (last << GRAM_PAGE_SHIFT)))
				last++;
			int rc = write_all(fd, r->host + (pn << GRAM_PAGE_SHIFT),
					   (last - pn) << GRAM_PAGE_SHIFT, pn << GRAM_PAGE_SHIFT);
			if (rc) {
				free(v);
				return rc;
			}
			st->pages_written += last - pn;
			pn = last;
		}
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
