/*
 * Writing a whole buffer to a file descriptor, and formatting an error
 * message into a caller's buffer: the small loops and helpers that the CLI,
 * the board and the VMM each wrote for themselves.
 */
#ifndef SKIFF_BASE_FD_IO_H
#define SKIFF_BASE_FD_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Write all n bytes with write(2), again after EINTR. false when a write
 * fails (errno says why) or writes nothing. */
bool fd_write_all(int fd, const void *buf, size_t n);
/* The same with send(2) and its flags (MSG_NOSIGNAL: a peer that went
 * away is an error, not a SIGPIPE). */
bool fd_send_all(int fd, const void *buf, size_t n, int flags);

/* Read a small file (a /proc entry) with one read(2) into buf, which
 * gets a terminating NUL: at most len - 1 bytes. The bytes read, or -1
 * when it cannot be opened or read. */
ssize_t fd_read_small(const char *path, char *buf, size_t len);

/* snprintf into err (errlen bytes) and return err: for functions that
 * return their error message. */
const char *errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
