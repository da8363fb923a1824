/* A console log kept under a size; see log_cap.h. */
#include "cli/log_cap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fd_io.h"

int log_cap_init(struct log_cap *lc, int fd, uint64_t max, char *err, size_t errlen)
{
	memset(lc, 0, sizeof(*lc));
	lc->append_fd = fd;
	lc->rw_fd = -1;
	lc->max = max;
	struct stat st;
	if (max == 0 || fstat(fd, &st) || !S_ISREG(st.st_mode))
		return 0;
	/* A new open file description of the same file: pwrite on the
	 * O_APPEND one would append whatever the offset (Linux). */
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	lc->rw_fd = open(self, O_RDWR | O_CLOEXEC);
	struct stat st2;
	if (lc->rw_fd < 0 || fstat(lc->rw_fd, &st2) || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
		snprintf(err, errlen, "cannot reopen the console log to cap it: %s",
			 lc->rw_fd < 0 ? strerror(errno) : "it is another file");
		if (lc->rw_fd >= 0)
			close(lc->rw_fd);
		lc->rw_fd = -1;
		return -1;
	}
	return 0;
}

/* Moves the newest `keep` bytes of the file (size `size`) to its start and
 * cuts it there. Forward copy: the source always lies after what has been
 * written. */
static void cut(struct log_cap *lc, uint64_t size, uint64_t keep)
{
	uint8_t buf[65536];
	uint64_t from = size - keep, done = 0;
	while (done < keep) {
		size_t want = keep - done < sizeof(buf) ? (size_t)(keep - done) : sizeof(buf);
		ssize_t r = pread(lc->rw_fd, buf, want, (off_t)(from + done));
		if (r <= 0)
			break;
		ssize_t w = pwrite(lc->rw_fd, buf, (size_t)r, (off_t)done);
		if (w != r)
			break;
		done += (uint64_t)r;
	}
	if (ftruncate(lc->rw_fd, (off_t)done) < 0) {
		/* Nothing better to do: the next append tries again. */
	}
}

void log_cap_write(struct log_cap *lc, const uint8_t *p, size_t n)
{
	if (lc->rw_fd < 0) {
		fd_write_all(lc->append_fd, p, n);
		return;
	}
	/* Pieces of at most a quarter of the cap, so one piece never fills
	 * what the cut keeps. */
	size_t piece = lc->max / 4 ? (size_t)(lc->max / 4) : 1;
	while (n) {
		size_t k = n < piece ? n : piece;
		struct stat st;
		/* fstat each time: others append too (standard error). */
		if (fstat(lc->rw_fd, &st) == 0 && (uint64_t)st.st_size + k > lc->max) {
			cut(lc, (uint64_t)st.st_size, lc->max / 2 < (uint64_t)st.st_size ?
			    lc->max / 2 : (uint64_t)st.st_size);
			char note[128];
			int len = snprintf(note, sizeof(note), "\r\n[skiff: console log cut to its newest %llu KiB "
					   "(cap %llu KiB)]\r\n", (unsigned long long)(lc->max / 2 >> 10),
					   (unsigned long long)(lc->max >> 10));
			fd_write_all(lc->append_fd, (const uint8_t *)note, (size_t)len);
		}
		fd_write_all(lc->append_fd, p, k);
		p += k;
		n -= k;
	}
}

void log_cap_close(struct log_cap *lc)
{
	if (lc->rw_fd >= 0)
		close(lc->rw_fd);
	lc->rw_fd = -1;
}
