/*
 * The guest agent's file commands (QEMU's qga/qapi-schema.json):
 * guest-file-open (fopen modes), -read (base64 out, at most 48 MiB, 4 KiB
 * by default), -write (base64 in), -seek (whence as 0/1/2 or
 * "set"/"cur"/"end"), -flush, -close. Handles are small integers that
 * stay unique while the agent runs. The agent does no buffering of its
 * own, so guest-file-flush goes further than QEMU's (which only empties
 * stdio's buffer) and syncs the file to its disk: `skiff cp` relies on
 * the data being there once it says done.
 *
 * skiff extension: guest-file-hash {"path"} -> {"algorithm": "xxh64",
 * "digest" (16 hex digits, as xxhsum -H64 prints), "size"}, the file
 * read whole in the guest, so `skiff cp` can check a copy without running
 * sha256sum (which costs the guest about 80 instructions a byte; this
 * about one).
 */
#include "agent.h"
#include "xxh64.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FILE_READ_MAX (48ll * 1024 * 1024)
#define FILE_READ_DEFAULT 4096
#define HASH_BUF (256u * 1024)

static struct file *find_file(struct agent *a, const struct jval *args, char *err, size_t errlen)
{
	int64_t h;
	if (!arg_int(args, "handle", true, &h, err, errlen))
		return NULL;
	for (size_t i = 0; i < AGENT_MAX_FILES; i++)
		if (a->files[i].used && a->files[i].handle == h)
			return &a->files[i];
	snprintf(err, errlen, "handle '%lld' has not been found", (long long)h);
	return NULL;
}

/* fopen(3)'s modes as open(2) flags; -1 for a mode fopen would refuse. */
static int mode_flags(const char *m)
{
	int flags;
	switch (m[0]) {
	case 'r': flags = 0; break;
	case 'w': flags = O_CREAT | O_TRUNC; break;
	case 'a': flags = O_CREAT | O_APPEND; break;
	default: return -1;
	}
	bool plus = false;
	for (const char *p = m + 1; *p; p++) {
		if (*p == '+')
			plus = true;
		else if (*p != 'b' && *p != 'e' && *p != 'x')
			return -1;
		if (*p == 'x')
			flags |= O_EXCL;
	}
	if (plus)
		flags |= O_RDWR;
	else
		flags |= m[0] == 'r' ? O_RDONLY : O_WRONLY;
	return flags;
}

int cmd_file_open(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	const struct jval *path = arg_str(args, "path", true, err, errlen);
	if (!path)
		return -1;
	const struct jval *m = arg_str(args, "mode", false, err, errlen);
	if (!m && json_get(args, "mode"))
		return -1;
	const char *mode = m ? m->s : "r";
	int flags = mode_flags(mode);
	if (flags < 0) {
		snprintf(err, errlen, "invalid file open mode '%.20s'", mode);
		return -1;
	}
	struct file *slot = NULL;
	for (size_t i = 0; i < AGENT_MAX_FILES && !slot; i++)
		if (!a->files[i].used)
			slot = &a->files[i];
	if (!slot) {
		snprintf(err, errlen, "too many open files (%d)", AGENT_MAX_FILES);
		return -1;
	}
	if (strlen(path->s) != path->len) {
		snprintf(err, errlen, "Parameter 'path': a NUL byte in the path");
		return -1;
	}
	int fd = open(path->s, flags | O_CLOEXEC | O_NOCTTY, 0666);
	if (fd < 0) {
		snprintf(err, errlen, "failed to open file '%.300s' (mode: '%s'): %s", path->s, mode,
			 strerror(errno));
		return -1;
	}
	slot->used = true;
	slot->fd = fd;
	slot->handle = a->next_handle++;
	jb_printf(ret, "%lld", (long long)slot->handle);
	return 0;
}

int cmd_file_close(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	struct file *f = find_file(a, args, err, errlen);
	if (!f)
		return -1;
	int r = close(f->fd);
	f->used = false;
	if (r && errno != EINTR) {
		snprintf(err, errlen, "failed to close handle: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int cmd_file_read(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	struct file *f = find_file(a, args, err, errlen);
	if (!f)
		return -1;
	int64_t count = FILE_READ_DEFAULT;
	if (!arg_int(args, "count", false, &count, err, errlen))
		return -1;
	if (count < 0 || count > FILE_READ_MAX) {
		snprintf(err, errlen, "value '%lld' is invalid for argument count", (long long)count);
		return -1;
	}
	uint8_t *buf = malloc(count ? (size_t)count : 1);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	size_t got = 0;
	bool eof = false;
	while (got < (size_t)count) {
		ssize_t r = read(f->fd, buf + got, (size_t)count - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "failed to read file: %s", strerror(errno));
			free(buf);
			return -1;
		}
		if (r == 0) {
			eof = true;
			break;
		}
		got += (size_t)r;
	}
	jb_printf(ret, "{\"count\": %zu, \"buf-b64\": ", got);
	jb_base64(ret, buf, got);
	jb_printf(ret, ", \"eof\": %s}", eof ? "true" : "false");
	free(buf);
	return 0;
}

int cmd_file_write(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	struct file *f = find_file(a, args, err, errlen);
	if (!f)
		return -1;
	if (!json_get(args, "buf-b64")) {
		snprintf(err, errlen, "Parameter 'buf-b64' missing");
		return -1;
	}
	uint8_t *data;
	size_t len;
	if (!arg_b64(args, "buf-b64", &data, &len, err, errlen))
		return -1;
	int64_t count = (int64_t)len;
	if (!arg_int(args, "count", false, &count, err, errlen) || count < 0 || (size_t)count > len) {
		if (count < 0 || (size_t)count > len)
			snprintf(err, errlen, "value '%lld' is invalid for argument count", (long long)count);
		free(data);
		return -1;
	}
	size_t done = 0;
	while (done < (size_t)count) {
		ssize_t w = write(f->fd, data + done, (size_t)count - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(err, errlen, "failed to write to file: %s", w < 0 ? strerror(errno) : "no progress");
			free(data);
			return -1;
		}
		done += (size_t)w;
	}
	free(data);
	jb_printf(ret, "{\"count\": %zu, \"eof\": false}", done);
	return 0;
}

int cmd_file_seek(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	struct file *f = find_file(a, args, err, errlen);
	if (!f)
		return -1;
	int64_t off;
	if (!arg_int(args, "offset", true, &off, err, errlen))
		return -1;
	const struct jval *w = json_get(args, "whence");
	int whence = -1;
	if (!w) {
		snprintf(err, errlen, "Parameter 'whence' missing");
		return -1;
	}
	/* GuestFileWhence: QGA's own numbers or names, not the host's SEEK_*. */
	if (w->type == J_INT && w->i >= 0 && w->i <= 2)
		whence = (int)w->i;
	else if (w->type == J_STRING)
		whence = !strcmp(w->s, "set") ? 0 : !strcmp(w->s, "cur") ? 1 : !strcmp(w->s, "end") ? 2 : -1;
	if (whence < 0) {
		snprintf(err, errlen, "Invalid parameter 'whence'");
		return -1;
	}
	static const int sys[3] = { SEEK_SET, SEEK_CUR, SEEK_END };
	off_t pos = lseek(f->fd, (off_t)off, sys[whence]);
	if (pos < 0) {
		snprintf(err, errlen, "failed to seek file: %s", strerror(errno));
		return -1;
	}
	jb_printf(ret, "{\"position\": %lld, \"eof\": false}", (long long)pos);
	return 0;
}

int cmd_file_flush(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	struct file *f = find_file(a, args, err, errlen);
	if (!f)
		return -1;
	if (fsync(f->fd) && errno != EINVAL && errno != EROFS) {
		snprintf(err, errlen, "failed to flush file: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int cmd_file_hash(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	const struct jval *path = arg_str(args, "path", true, err, errlen);
	if (!path)
		return -1;
	if (strlen(path->s) != path->len) {
		snprintf(err, errlen, "Parameter 'path': a NUL byte in the path");
		return -1;
	}
	int fd = open(path->s, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	uint8_t *buf = fd >= 0 ? malloc(HASH_BUF) : NULL;
	if (!buf) {
		snprintf(err, errlen, "failed to open file '%.300s': %s", path->s,
			 fd < 0 ? strerror(errno) : "out of memory");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	struct xxh64 h;
	xxh64_init(&h, 0);
	int rc = 0;
	for (;;) {
		ssize_t r = read(fd, buf, HASH_BUF);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "failed to read file '%.300s': %s", path->s, strerror(errno));
			rc = -1;
			break;
		}
		if (r == 0)
			break;
		xxh64_update(&h, buf, (size_t)r);
	}
	free(buf);
	close(fd);
	if (rc == 0) {
		char hex[17];
		xxh64_hex(&h, hex);
		jb_printf(ret, "{\"algorithm\": \"xxh64\", \"digest\": \"%s\", \"size\": %llu}", hex,
			  (unsigned long long)h.total);
	}
	return rc;
}
