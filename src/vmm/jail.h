/*
 * The jail: when skiff runs as root (`skiff run --jail DIR`), the VMM runs
 * in new mount, PID, IPC and UTS namespaces (and a network namespace when
 * it needs no host network), with DIR as its root directory, under an
 * unprivileged uid and gid, as Firecracker's jailer runs Firecracker.
 *
 * DIR gets a fresh tmpfs, seen by the jailed VMM only (its own mount
 * namespace), that holds nothing but what its configuration names (the
 * list of sandbox_paths.h), each bind-mounted at the same path it has on
 * the host, read only unless the VMM writes it, with no set-user-ID, no
 * device files and no executables; /dev/null; /dev/net/tun for TAP; a
 * /proc of its own PID namespace. The tmpfs is made read only before the
 * VMM enters it, so the VMM creates files only in the directories it was
 * given (its sockets' directories). Paths keep their meaning inside, so
 * the configuration needs no rewriting; a path given later through the API
 * (a snapshot's, a new drive's) resolves inside the jail.
 *
 * A PID namespace takes effect for children only: jail_enter() forks. The
 * parent stays outside, waits, passes SIGTERM, SIGINT and SIGHUP on, and
 * ends as the child ended; the child, process 1 of its namespace,
 * becomes the VMM. The files must be readable (and writable where the VMM
 * writes them) by the jail's uid or gid: the jail changes no owner.
 */
#ifndef SKIFF_VMM_JAIL_H
#define SKIFF_VMM_JAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "vmm/sandbox_paths.h"

/* The default uid and gid: in Debian's reserved range (65000-65533), so no
 * account of the host owns files as it. */
#define JAIL_DEFAULT_ID 65532

struct jail_opts {
	const char *dir;       /* the jail's root on the host; made if missing */
	uid_t uid;
	gid_t gid;
	bool new_net;          /* a network namespace of its own (no user net, no TAP) */
	const char *hostname;  /* the UTS namespace's name; NULL: "skiff" */
};

enum jail_side { JAIL_FAILED = -1, JAIL_INSIDE, JAIL_PARENT };

/* Fork into the jail. JAIL_INSIDE: the caller is the jailed VMM (root is
 * DIR, uid and gid changed); JAIL_PARENT: the caller is the parent after
 * the child ended, and *status is the exit status to end with (128 + N
 * when signal N ended the child, after raising the same signal when it
 * can); JAIL_FAILED: nothing was started, err says why. */
enum jail_side jail_enter(const struct jail_opts *o, const struct sandbox_paths *paths, int *status,
			  char *err, size_t errlen);

#endif
