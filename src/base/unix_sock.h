/*
 * Unix stream sockets at file system paths: the one listener behind every
 * socket skiff serves on the host (the VMM's API and skiffd's, the console
 * socket, named console ports, vsock's host side), and connecting to one.
 *
 * One rule for a file already at the path: a socket nobody listens on
 * (connecting to it is refused) is stale, left by a process that is gone,
 * and is replaced; anything else (a file that is not a socket, a socket a
 * program answers on, or one that cannot be probed) is refused and left
 * alone. A new socket file is mode 0600 from the moment it exists.
 */
#ifndef SKIFF_BASE_UNIX_SOCK_H
#define SKIFF_BASE_UNIX_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The longest path a sockaddr_un holds (its sun_path less the NUL). */
#define UNIX_SOCK_PATH_MAX 107

/* Which file a listener created, so that only that one is removed. */
struct unix_sock_file {
	dev_t dev;
	ino_t ino;
};

/* Listen at `path` (non-blocking, close-on-exec, `backlog` pending
 * connections). Returns the descriptor, or -1 with a message in err that
 * starts with the path in quotes ("'PATH' already exists and ..."). */
int unix_listen(const char *path, int backlog, struct unix_sock_file *file, char *err, size_t errlen);

/* Could unix_listen take `path` now: nothing there, or a stale socket?
 * NULL if so, else err (the same messages). For checking a configuration
 * before anything listens. */
const char *unix_listen_check(const char *path, char *err, size_t errlen);

/* Remove the socket file at `path` if it is still the one `file` names. */
void unix_listen_remove(const char *path, const struct unix_sock_file *file);

/* Connect to the socket at `path` (close-on-exec; non-blocking when asked,
 * then a connection still in progress counts as made). Returns the
 * descriptor, or -1 with errno set. */
int unix_connect(const char *path, bool nonblocking);

#endif
