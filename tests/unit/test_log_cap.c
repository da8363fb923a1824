/*
 * Unit test for the capped console log (src/cli/log_cap.c): 2 MiB appended
 * in uneven pieces, with another O_APPEND descriptor (standard error's)
 * writing in between, never leaves the file above its cap, keeps the
 * newest bytes in order, and says where it was cut. A FIFO or a cap of 0
 * is passed through untouched.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "cli/log_cap.h"

static uint8_t byte_at(uint64_t i)
{
	return (uint8_t)('a' + (i * 7 + i / 251) % 26);
}

int main(void)
{
	struct check_counts c = { 0 };
	char dir[] = "/tmp/skiff-logcap-XXXXXX", path[64];
	if (!mkdtemp(dir))
		return 2;
	snprintf(path, sizeof(path), "%s/console.log", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	int other = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	struct log_cap lc;
	char err[256];
	const uint64_t cap = 64 << 10;
	CHECK(&c, fd >= 0 && other >= 0 && log_cap_init(&lc, fd, cap, err, sizeof(err)) == 0, "init: %s", err);
	static uint8_t buf[40000];
	uint64_t sent = 0, biggest = 0;
	size_t n = 0;
	for (int round = 0; sent < (2u << 20); round++) {
		/* Standard error's bytes land between the console's. */
		if (round % 50 == 0 && write(other, "E", 1) != 1)
			c.failed++;
		n = 1 + (size_t)(round * 7919) % sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = byte_at(sent + i);
		log_cap_write(&lc, buf, n);
		sent += n;
		struct stat st;
		fstat(fd, &st);
		if ((uint64_t)st.st_size > biggest)
			biggest = (uint64_t)st.st_size;
	}
	CHECK(&c, biggest <= cap, "the file grew to %llu bytes (cap %llu)", (unsigned long long)biggest,
	      (unsigned long long)cap);
	/* The newest bytes are the last piece sent, in order. */
	static uint8_t back[64 << 10];
	int rfd = open(path, O_RDONLY);
	ssize_t got = read(rfd, back, sizeof(back));
	close(rfd);
	CHECK(&c, got > 1024, "read back %zd", got);
	size_t tail = n < 1024 ? n : 1024;
	bool same = got > 0;
	for (size_t i = 0; same && i < tail; i++)
		same = back[got - (ssize_t)tail + (ssize_t)i] == byte_at(sent - tail + i);
	CHECK(&c, same, "the newest %zu bytes are what was sent last", tail);
	CHECK(&c, got > 0 && memmem(back, (size_t)got, "console log cut to its newest 32 KiB", 36),
	      "the cut is reported in the file");
	log_cap_close(&lc);

	/* A cap of 0 and a FIFO: plain writes, nothing cut. */
	CHECK(&c, log_cap_init(&lc, fd, 0, err, sizeof(err)) == 0 && lc.rw_fd == -1, "no cap");
	int p[2];
	CHECK(&c, pipe(p) == 0 && log_cap_init(&lc, p[1], cap, err, sizeof(err)) == 0 && lc.rw_fd == -1,
	      "a pipe is not capped");
	log_cap_write(&lc, (const uint8_t *)"abc", 3);
	char three[4] = { 0 };
	CHECK(&c, read(p[0], three, 3) == 3 && !strcmp(three, "abc"), "passed through");
	close(fd);
	close(other);
	unlink(path);
	rmdir(dir);
	return check_summary(&c);
}
