/* The JIT's W^X code cache; see cache.h. */
#include "engine/jit/cache.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

int code_cache_init(struct code_cache *c, size_t size)
{
	c->rw = c->rx = NULL;
	c->used = c->high = 0;
	size = (size + 4095) & ~(size_t)4095;
	c->size = size;
	int fd = memfd_create("skiff-jit", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	int err = 0;
	if (ftruncate(fd, (off_t)size)) {
		err = -errno;
		goto out;
	}
	void *rw = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (rw == MAP_FAILED) {
		err = -errno;
		goto out;
	}
	void *rx = mmap(NULL, size, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
	if (rx == MAP_FAILED) {
		err = -errno;
		munmap(rw, size);
		goto out;
	}
	c->rw = rw;
	c->rx = rx;
out:
	close(fd); /* the mappings keep the file */
	return err;
}

void code_cache_destroy(struct code_cache *c)
{
	if (c->rw)
		munmap(c->rw, c->size);
	if (c->rx)
		munmap(c->rx, c->size);
	c->rw = c->rx = NULL;
}

void code_cache_reset(struct code_cache *c, int give_back)
{
	if (give_back && c->high) {
		/* Shared memory: MADV_DONTNEED would only unmap; MADV_REMOVE
		 * frees the pages (both views read zeros afterwards). */
		madvise(c->rw, (c->high + 4095) & ~(size_t)4095, MADV_REMOVE);
		c->high = 0;
	}
	c->used = 0;
}
