/*
 * The VMM's sandbox: after a VM is built and before its first guest
 * instruction, every thread of the process confines itself to the system
 * calls its class needs (seccomp, one allow-list per class in
 * sandbox_tables.c) with no_new_privs set; anything else ends the process
 * with a report naming the thread, its class and the call. The layers that
 * do not depend on seccomp (capabilities, rlimits, the file system) are in
 * sandbox_*.c beside this one; docs/security.md tells the whole model.
 *
 * Files: a VMM run by an ordinary user is also restricted with Landlock to
 * the files its configuration names (sandbox_landlock.c, sandbox_paths.h),
 * every thread once, in the first confinement; later threads inherit it.
 * As root, the jail (jail.h) confines the files instead.
 *
 * Classes are found by thread name (vcpuN, virtio-*, slirp-*, MHD-*, ...;
 * the process's first thread is "main"); a thread whose name has no class
 * stops the confinement with an error, so a new kind of thread cannot slip
 * through unconfined. Every thread the host starts for a VM (its devices'
 * threads, vCPUs, the CPU quota's controller) confines itself as it
 * begins, before it does any work (sandbox_vm_threads, vm->thread_hook,
 * base/thread_start.h); threads already running when a VM is built (the
 * main thread, the console's) are confined through a signal whose handler
 * installs the thread's filter. Any thread inherits its starter's filter,
 * and filters stack (the narrowest wins).
 *
 * Modes: on (the default: a call outside the list ends the VMM), log (the
 * call is allowed and the kernel logs it: `audit: type=1326` in the kernel
 * log), off.
 */
#ifndef SKIFF_VMM_SANDBOX_H
#define SKIFF_VMM_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sandbox_mode { SANDBOX_ON, SANDBOX_LOG, SANDBOX_OFF };

enum sandbox_class {
	SB_COMMON,   /* rows every class has */
	SB_MAIN,
	SB_VCPU,
	SB_IO,
	SB_NET,
	SB_API,
	SB_CLASSES,
	SB_SANITIZER = SB_CLASSES,  /* rows added to main in sanitizer builds */
	SB_SANITIZER_THREAD,        /* rows added to every class in sanitizer builds */
};

/* The check on a call's arguments (sandbox.c turns each into comparisons). */
enum sandbox_check {
	SB_ANY,
	SB_NO_EXEC,            /* mmap/mprotect: prot without PROT_EXEC */
	SB_MADVISE,            /* DONTNEED, FREE, DONTDUMP, HUGEPAGE, NOHUGEPAGE */
	SB_MADVISE_RAM,        /* REMOVE too (the balloon, the JIT) */
	SB_PRCTL_NAME,         /* names, no_new_privs, dropping capabilities */
	SB_OWN_PROCESS,        /* tgkill: the first argument is this process */
	SB_FCNTL,              /* F_GETFL/SETFL/GETFD/SETFD/DUPFD_CLOEXEC/locks */
	SB_IOCTL_MAIN,         /* terminal, TAP setup, block device size */
	SB_IOCTL_TTY_RESTORE,  /* TCSETS, TCGETS on standard input only */
	SB_IOCTL_TAP_OFFLOAD,  /* TUNSETOFFLOAD */
	SB_IOCTL_BLOCK,        /* BLKDISCARD, BLKZEROOUT */
	SB_IOCTL_BLKSIZE,      /* BLKGETSIZE64 */
	SB_IOCTL_NET,          /* FIONREAD, FIONBIO, TUNSETOFFLOAD */
	SB_SOCKET_MAIN,        /* AF_UNIX, AF_INET, AF_INET6 */
	SB_SOCKET_UNIX,        /* AF_UNIX */
	SB_SOCKET_INET,        /* AF_INET, AF_INET6 */
	SB_CLONE_THREAD,       /* clone with CLONE_THREAD, no namespace flags */
	SB_ENOSYS,             /* not allowed, but answered ENOSYS (clone3) */
	SB_READ_ONLY,          /* openat: O_RDONLY, no O_CREAT */
};

struct sandbox_rule {
	const char *syscall;
	enum sandbox_check check;
	const char *why;
};

/* The rows of one class (SB_COMMON: those every class gets). */
const struct sandbox_rule *sandbox_table(enum sandbox_class cls, size_t *n);
const char *sandbox_class_name(enum sandbox_class cls);
/* The class of a thread by its name; false if it has none. */
bool sandbox_class_of_name(const char *name, enum sandbox_class *cls);

struct sandbox;
struct sandbox_paths;

struct sandbox_opts {
	enum sandbox_mode seccomp;
	/* The main thread may map a JIT code cache executable (a guest
	 * reboot builds new harts); PROT_READ|PROT_EXEC, MAP_SHARED only. */
	bool jit;
	/* Test builds: SKIFF_SANDBOX_TRIGGER=CLASS makes a thread of that
	 * class call a system call outside its list (sandbox.c). */
	bool test_trigger;
	/* Paths the VMM needs besides those of its VM's configuration (its
	 * API and console sockets, a snapshot it restores), for Landlock;
	 * copied. May be NULL. */
	const struct sandbox_paths *paths;
	/* Landlock for an ordinary user (skiff run --landlock). */
	bool landlock;
};

/* Prepare the filters (nothing is confined yet). NULL with err on failure. */
struct sandbox *sandbox_create(const struct sandbox_opts *o, char *err, size_t errlen);
void sandbox_destroy(struct sandbox *sb);
enum sandbox_mode sandbox_mode(const struct sandbox *sb);

/* Whether a VM began to be built under this sandbox in a way that
 * confined (or is about to confine) threads that outlive it, and no build
 * succeeded: the API's and the main thread keep their filters, so a build
 * that failed after that point cannot be tried again in this process (its
 * setup calls would be refused). False with no sandbox, and after a
 * successful build (a guest reboot builds the next VM). */
bool sandbox_spent(struct sandbox *sb);
/* Confine every thread not confined yet except the calling one, each by
 * its class. Call after a VM is built, before it starts. */
int sandbox_confine_others(struct sandbox *sb, char *err, size_t errlen);
/* Confine the calling thread by its class (main for the first thread). */
int sandbox_confine_self(struct sandbox *sb, char *err, size_t errlen);
struct vm;
struct vm_config;
struct thread_hook;
/* How the threads of a VM about to be built from cfg start (vm_build's
 * threads): each confines itself by the class of its name as it begins,
 * before it does any work (a device thread before it reads the guest's
 * memory), and the confining pass of sandbox_vm_built leaves it alone.
 * The first VM of an ordinary user under Landlock is the exception: its
 * threads are confined by that pass, which brings them the Landlock
 * domain too. NULL with no sandbox. */
const struct thread_hook *sandbox_vm_threads(struct sandbox *sb, const struct vm_config *cfg);
/* A VM was built from cfg (its threads from sandbox_vm_threads) and is
 * about to start: the process's limits are set (sandbox_limits.c: no core
 * dumps, open files, file size), the capabilities the VM does not need
 * are dropped from every thread, its later threads (vCPUs) will confine
 * themselves (vm->thread_hook), every other thread but the caller that
 * does not confine itself is confined now. Then start the VM
 * and call sandbox_confine_self(). A NULL sandbox does nothing. */
int sandbox_vm_built(struct sandbox *sb, struct vm *vm, const struct vm_config *cfg,
		     char *err, size_t errlen);

/* sandbox_landlock.c: a Landlock ruleset allowing `paths` and the
 * process's own /proc/PID: its descriptor, -1 on failure, -2 when the
 * kernel has no Landlock (err says so either way). Then, per thread,
 * restrict the caller to it (no_new_privs must be set): 0 or -errno;
 * async-signal-safe. */
int sandbox_landlock_ruleset(const struct sandbox_paths *paths, char *err, size_t errlen);
int sandbox_landlock_restrict(int ruleset);

/* sandbox_limits.c: the capabilities a VM built from cfg still needs at
 * run time (a bit per CAP_*), and the process's resource limits for it. */
uint64_t sandbox_caps_needed(const struct vm_config *cfg);
int sandbox_set_limits(struct vm *vm, const struct vm_config *cfg, char *err, size_t errlen);

#endif
