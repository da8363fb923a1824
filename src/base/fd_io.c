/*
 * Whole-buffer writes and error formatting (fd_io.h).
 */
#include "base/fd_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

static bool all(int fd, const void *buf, size_t n, bool sock, int flags)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t w = sock ? send(fd, p, n, flags) : write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

ssize_t fd_read_small(const char *path, char *buf, size_t len)
{
	if (!len)
		return -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	int e = errno;
	close(fd);
	if (n < 0) {
		errno = e;
		return -1;
	}
	buf[n] = 0;
	return n;
}

bool fd_write_all(int fd, const void *buf, size_t n)
{
	return all(fd, buf, n, false, 0);
}

bool fd_send_all(int fd, const void *buf, size_t n, int flags)
{
	return all(fd, buf, n, true, flags);
}

const char *errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return err;
}
