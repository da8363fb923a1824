/*
 * Whole-buffer writes and error formatting (fd_io.h).
 */
#include "base/fd_io.h"

#include <errno.h>
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
