/*
 * The host files a VMM may reach once it is confined: those its VM's
 * configuration names (kernel, initrd, disks and their allowed backing
 * directories, 9p shares, the directories of its Unix sockets, its log and
 * metrics files, the snapshot it restores, /dev/net/tun for TAP,
 * /etc/resolv.conf for user networking's DNS forwarder), each with the
 * access it needs. The jail (jail.c) bind-mounts exactly these into
 * the VMM's new root; Landlock (sandbox_landlock.c) allows exactly these.
 *
 * A socket's whole directory is listed (read and write): the VMM makes,
 * removes and makes again its sockets there (vsock's PATH_<port> too), and
 * paths given later through the API (PUT /snapshot/create, PATCH /drives)
 * can resolve there. docs/security.md says so.
 */
#ifndef SKIFF_VMM_SANDBOX_PATHS_H
#define SKIFF_VMM_SANDBOX_PATHS_H

#include <stdbool.h>
#include <stddef.h>

struct vm_config;

struct sandbox_path {
	char *path;      /* absolute, without "." or ".." components */
	bool dir;        /* a directory (with everything beneath it) */
	bool write;      /* read and write; else read only */
};

struct sandbox_paths {
	struct sandbox_path *v;
	size_t n;
};

/* Add one path (made absolute against the working directory, "." and ".."
 * folded by name); a path already listed keeps the wider access. 0, or -1
 * when out of memory or the working directory is unknown. */
int sandbox_paths_add(struct sandbox_paths *p, const char *path, bool dir, bool write);
/* A Unix socket's path: its directory, read and write. */
int sandbox_paths_add_socket(struct sandbox_paths *p, const char *sock);
/* Every file cfg names (the list above). */
int sandbox_paths_of_config(struct sandbox_paths *p, const struct vm_config *cfg);
void sandbox_paths_free(struct sandbox_paths *p);

/* The absolute, folded form of `path` (malloc'd), or NULL. */
char *sandbox_path_absolute(const char *path);

#endif
