/*
 * A console log that cannot grow without bound: a guest can print for as
 * long as it runs (one wrote 4.9 MB a minute under skiffd), so the file
 * its output is appended to is kept under a size. When an append would
 * take the file past `max` bytes, its newest max/2 bytes move to the start,
 * the file is cut there and a line says so; the newest output is always
 * kept. The file is cut in place through a descriptor of its own, so the
 * name and the descriptors others append with (the VMM's standard error,
 * opened O_APPEND by skiffd) stay valid.
 */
#ifndef SKIFF_CLI_LOG_CAP_H
#define SKIFF_CLI_LOG_CAP_H

#include <stddef.h>
#include <stdint.h>

struct log_cap {
	int append_fd;   /* where output goes (O_APPEND expected) */
	int rw_fd;       /* the same file without O_APPEND, to move bytes; -1: not capped */
	uint64_t max;
};

/* Cap the regular file open at `fd` at `max` bytes (0: no cap, and for
 * anything but a regular file). Opens the second descriptor now, before
 * any sandbox hides /proc. -1 with err set when it cannot. */
int log_cap_init(struct log_cap *lc, int fd, uint64_t max, char *err, size_t errlen);
/* Append n bytes (all of them, retrying short writes). */
void log_cap_write(struct log_cap *lc, const uint8_t *p, size_t n);
void log_cap_close(struct log_cap *lc);

#endif
