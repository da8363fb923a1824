/*
 * base/unix_sock: the one listener's rule for a file already at the path
 * (a stale socket is replaced; a file that is not a socket, or a socket a
 * program listens on, is refused and left as it was), the socket file's
 * mode, removal of only the file the listener made, and connecting.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/unix_sock.h"
#include "check.h"

static struct check_counts C;

/* A socket file that nobody listens on any more. */
static void make_stale(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	memcpy(a.sun_path, path, strlen(path) + 1);
	CHECK(&C, bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind %s: %s", path, strerror(errno));
	close(fd);
}

int main(void)
{
	char dir[] = "/tmp/skiff-unix-sock-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	char path[100], err[512];
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	struct unix_sock_file file;

	/* Nothing there: it listens, mode 0600, and a client connects. */
	int fd = unix_listen(path, 4, &file, err, sizeof(err));
	CHECK(&C, fd >= 0, "a new path: %s", err);
	struct stat st;
	CHECK(&C, stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600,
	      "a socket file of mode 0600, got %o", (unsigned)st.st_mode);
	int c = unix_connect(path, false);
	CHECK(&C, c >= 0, "connect: %s", strerror(errno));
	close(c);

	/* While it listens, the path is refused, and the file stays. */
	struct unix_sock_file other;
	CHECK(&C, unix_listen(path, 4, &other, err, sizeof(err)) < 0 &&
	      strstr(err, "a program is listening"), "a live socket is refused: %s", err);
	CHECK(&C, unix_listen_check(path, err, sizeof(err)) != NULL, "the check says the same");
	CHECK(&C, unix_connect(path, false) >= 0, "the first listener still answers");

	/* Removed at the end only while it is still the listener's file: here
	 * another one was put in its place (while the first still exists, so
	 * the new one cannot reuse its inode). */
	char path2[100];
	snprintf(path2, sizeof(path2), "%s/t.sock", dir);
	make_stale(path2);
	CHECK(&C, rename(path2, path) == 0, "rename: %s", strerror(errno));
	unix_listen_remove(path, &file);
	CHECK(&C, access(path, F_OK) == 0, "another process's file is not removed");
	close(fd);

	/* A stale socket is replaced. */
	CHECK(&C, unix_listen_check(path, err, sizeof(err)) == NULL, "a stale socket is usable: %s", err);
	fd = unix_listen(path, 4, &file, err, sizeof(err));
	CHECK(&C, fd >= 0, "a stale socket is replaced: %s", err);
	c = unix_connect(path, true);
	CHECK(&C, c >= 0, "non-blocking connect: %s", strerror(errno));
	close(c);
	close(fd);
	unix_listen_remove(path, &file);
	CHECK(&C, access(path, F_OK) != 0, "its own file is removed");
	CHECK(&C, unix_connect(path, false) < 0 && errno == ENOENT, "nothing to connect to");

	/* A file that is not a socket is refused and kept. */
	FILE *f = fopen(path, "w");
	fputs("keep me\n", f);
	fclose(f);
	CHECK(&C, unix_listen(path, 4, &file, err, sizeof(err)) < 0 && strstr(err, "is not a socket"),
	      "a regular file is refused: %s", err);
	char buf[16] = "";
	f = fopen(path, "r");
	CHECK(&C, f && fgets(buf, sizeof(buf), f) && !strcmp(buf, "keep me\n"), "and kept");
	if (f)
		fclose(f);
	unlink(path);

	/* Paths a sockaddr_un cannot hold. */
	char longp[UNIX_SOCK_PATH_MAX + 8];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = 0;
	CHECK(&C, unix_listen(longp, 4, &file, err, sizeof(err)) < 0 && strstr(err, "must be 1 to 107"),
	      "too long: %s", err);
	CHECK(&C, unix_listen("", 4, &file, err, sizeof(err)) < 0, "empty");
	CHECK(&C, unix_connect(longp, false) < 0 && errno == ENAMETOOLONG, "connect: too long");

	rmdir(dir);
	return check_summary(&C);
}
