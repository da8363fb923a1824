/* Unix stream sockets at paths, one rule for stale ones; see unix_sock.h. */
#include "base/unix_sock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MSG(...) (snprintf(err, errlen, __VA_ARGS__), err)

static bool make_addr(const char *path, struct sockaddr_un *a)
{
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(a->sun_path))
		return false;
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	memcpy(a->sun_path, path, n + 1);
	return true;
}

int unix_connect(const char *path, bool nonblocking)
{
	struct sockaddr_un a;
	if (!make_addr(path, &a)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) && !(nonblocking && errno == EINPROGRESS)) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Is a program listening at `path`? When that cannot be told (no socket to
 * probe with), say yes: a live socket must never be taken over. */
static bool listened_on(const char *path)
{
	int fd = unix_connect(path, false);
	if (fd >= 0) {
		close(fd);
		return true;
	}
	return errno != ECONNREFUSED;
}

const char *unix_listen_check(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un a;
	if (!make_addr(path, &a))
		return MSG("'%s' must be 1 to %d bytes long", path, UNIX_SOCK_PATH_MAX);
	struct stat st;
	if (lstat(path, &st))
		return NULL;
	if (!S_ISSOCK(st.st_mode))
		return MSG("'%s' already exists and is not a socket", path);
	if (listened_on(path))
		return MSG("'%s' already exists and a program is listening on it", path);
	return NULL;
}

int unix_listen(const char *path, int backlog, struct unix_sock_file *file, char *err, size_t errlen)
{
	if (unix_listen_check(path, err, errlen))
		return -1;
	/* Stale (or nothing there): remove it. */
	if (unlink(path) && errno != ENOENT) {
		snprintf(err, errlen, "'%s': cannot remove the stale socket: %s", path, strerror(errno));
		return -1;
	}
	struct sockaddr_un a;
	make_addr(path, &a);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create a socket for '%s': %s", path, strerror(errno));
		return -1;
	}
	/* On Linux the socket file takes the mode of the socket's inode, so set
	 * it before bind: the file never exists with looser permissions. */
	if (fchmod(fd, 0600) || bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		snprintf(err, errlen, "'%s': %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	struct stat st;
	if (chmod(path, 0600) || lstat(path, &st) || listen(fd, backlog)) {
		snprintf(err, errlen, "'%s': %s", path, strerror(errno));
		unlink(path);
		close(fd);
		return -1;
	}
	file->dev = st.st_dev;
	file->ino = st.st_ino;
	return fd;
}

void unix_listen_remove(const char *path, const struct unix_sock_file *file)
{
	struct stat st;
	if (lstat(path, &st) == 0 && st.st_dev == file->dev && st.st_ino == file->ino)
		unlink(path);
}
