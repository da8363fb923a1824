/*
 * The guest side of skiff's clipboard: text kept in a file the agent owns
 * (/run/skiff-agent/clipboard, at most CLIP_MAX bytes), which the host
 * reads and writes through the skiff extensions guest-clipboard-get and
 * guest-clipboard-set, and guest programs through `skiff-clip copy` (stdin
 * to the clipboard) and `skiff-clip paste` (the clipboard to stdout).
 * Writes replace the file by rename, so a reader never sees half of one.
 *
 *   guest-clipboard-set {"data": base64}           -> {}
 *   guest-clipboard-get                            -> {"data": base64, "stamp": int}
 * stamp changes with every write (the file's change time in nanoseconds),
 * so a host mirroring the clipboard can tell a new copy from the old one.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CLIP_DIR "/run/skiff-agent"

const char *clip_default_path(void)
{
	return CLIP_DIR "/clipboard";
}

static int clip_write(const char *path, const uint8_t *data, size_t n, char *err, size_t errlen)
{
	mkdir(CLIP_DIR, 0755);
	char tmp[512];
	snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "cannot write the clipboard: %s", strerror(errno));
		return -1;
	}
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(fd, data + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	if (close(fd) || done < n || rename(tmp, path)) {
		snprintf(err, errlen, "cannot write the clipboard: %s", strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* The clipboard's bytes (empty if never set) and stamp; -1 with err. */
static int clip_read(const char *path, uint8_t **data, size_t *n, int64_t *stamp,
		     char *err, size_t errlen)
{
	*data = NULL;
	*n = 0;
	*stamp = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : (snprintf(err, errlen, "cannot read the clipboard: %s",
						       strerror(errno)), -1);
	struct stat st;
	if (fstat(fd, &st) || st.st_size > CLIP_MAX) {
		snprintf(err, errlen, "the clipboard file is unreadable or over %u bytes", CLIP_MAX);
		close(fd);
		return -1;
	}
	*stamp = (int64_t)st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
	uint8_t *buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ssize_t r = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (r < 0) {
		free(buf);
		snprintf(err, errlen, "cannot read the clipboard: %s", strerror(errno));
		return -1;
	}
	*data = buf;
	*n = (size_t)r;
	return 0;
}

int cmd_clipboard_get(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	uint8_t *data;
	size_t n;
	int64_t stamp;
	if (clip_read(a->clip_path, &data, &n, &stamp, err, errlen))
		return -1;
	jb_str(ret, "{\"data\": ");
	jb_base64(ret, data, n);
	jb_printf(ret, ", \"stamp\": %lld}", (long long)stamp);
	free(data);
	return 0;
}

int cmd_clipboard_set(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	if (!json_get(args, "data")) {
		snprintf(err, errlen, "Parameter 'data' missing");
		return -1;
	}
	uint8_t *data;
	size_t n;
	if (!arg_b64(args, "data", &data, &n, err, errlen))
		return -1;
	int r = n > CLIP_MAX ? (snprintf(err, errlen, "the clipboard holds at most %u bytes", CLIP_MAX), -1)
			     : clip_write(a->clip_path, data, n, err, errlen);
	free(data);
	return r;
}

int clip_main(int argc, char **argv)
{
	char err[512];
	if (argc == 2 && !strcmp(argv[1], "copy")) {
		struct bytes b = { 0 };
		uint8_t buf[16384];
		ssize_t r;
		while ((r = read(0, buf, sizeof(buf))) > 0 || (r < 0 && errno == EINTR)) {
			if (r < 0)
				continue;
			if (b.len + (size_t)r > CLIP_MAX || !bytes_append(&b, buf, (size_t)r)) {
				fprintf(stderr, "skiff-clip: the clipboard holds at most %u bytes\n", CLIP_MAX);
				return 1;
			}
		}
		int rc = clip_write(clip_default_path(), b.data ? b.data + b.off : (const uint8_t *)"", b.len,
				    err, sizeof(err));
		bytes_free(&b);
		if (rc) {
			fprintf(stderr, "skiff-clip: %s\n", err);
			return 1;
		}
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "paste")) {
		uint8_t *data;
		size_t n;
		int64_t stamp;
		if (clip_read(clip_default_path(), &data, &n, &stamp, err, sizeof(err))) {
			fprintf(stderr, "skiff-clip: %s\n", err);
			return 1;
		}
		int rc = n && fwrite(data, 1, n, stdout) != n;
		free(data);
		return rc || fflush(stdout) ? 1 : 0;
	}
	fprintf(stderr, "usage: skiff-clip copy|paste\n"
			"  copy   put standard input on the clipboard shared with the host\n"
			"  paste  write the clipboard to standard output\n");
	return 2;
}
