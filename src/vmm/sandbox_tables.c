/*
 * The seccomp allow-lists, one table per thread class, as data: each row
 * is a system call, the check on its arguments (if any) and why the class
 * needs it. Anything not listed ends the VMM (src/vmm/sandbox.c). The
 * models are Firecracker's per-thread filters and OpenBSD vmd's commented
 * pledge promises.
 *
 * Every class keeps what any thread of this process does without asking:
 * glibc's locks (futex), memory for malloc (mmap/mprotect/munmap/madvise,
 * never executable), a thread's start and end, signals returning, the
 * clock, writing a message. The tables then add what the class's own work
 * needs. A feature that needs a new system call at run time adds it to
 * its thread class's table, with a reason, and a test runs that feature
 * under the sandbox.
 *
 * Names are resolved by libseccomp for the host's architecture; a name
 * the architecture does not have is skipped.
 */
#include "vmm/sandbox.h"

#include <stddef.h>

#define ROW(name, check, why) { name, check, why }

/* What every thread of the VMM does. */
static const struct sandbox_rule common[] = {
	ROW("futex", SB_ANY, "every mutex and condition variable (glibc)"),
	ROW("mmap", SB_NO_EXEC, "malloc arenas and thread stacks; never executable"),
	ROW("mprotect", SB_NO_EXEC, "malloc grows an arena; thread stack guard pages; never executable"),
	ROW("munmap", SB_ANY, "malloc returns memory, a thread's stack is freed"),
	ROW("mremap", SB_ANY, "realloc grows or shrinks a large (mmap'd) block; keeps its protection"),
	ROW("madvise", SB_MADVISE, "malloc and glibc give memory back (DONTNEED, FREE)"),
	ROW("brk", SB_ANY, "malloc's main arena"),
	ROW("rt_sigprocmask", SB_ANY, "glibc masks signals around thread start and end"),
	ROW("rt_sigreturn", SB_ANY, "return from a signal handler (the sandbox's own)"),
	ROW("sigaltstack", SB_ANY, "glibc and sanitizers set up a thread's signal stack"),
	ROW("set_robust_list", SB_ANY, "a new thread registers its robust mutex list (glibc)"),
	ROW("rseq", SB_ANY, "a new thread registers restartable sequences (glibc)"),
	ROW("exit", SB_ANY, "a thread ends"),
	ROW("exit_group", SB_ANY, "the process ends"),
	ROW("clock_gettime", SB_ANY, "time when the vDSO falls back to the kernel"),
	ROW("gettimeofday", SB_ANY, "the same for gettimeofday"),
	ROW("clock_nanosleep", SB_ANY, "timed sleeps (pacing, back-off)"),
	ROW("nanosleep", SB_ANY, "timed sleeps"),
	ROW("sched_yield", SB_ANY, "spin loops give the CPU away"),
	ROW("getpid", SB_ANY, "glibc and messages ask for the process id"),
	ROW("gettid", SB_ANY, "the thread's own id (the sandbox finds its class by it)"),
	ROW("prctl", SB_PRCTL_NAME, "a thread names itself / reads its name (PR_SET_NAME, PR_GET_NAME); "
	    "confining a thread: no_new_privs, dropping capabilities (PR_CAPBSET_DROP, PR_CAP_AMBIENT)"),
	ROW("capget", SB_ANY, "confining a thread: its capabilities are read, then lowered"),
	ROW("capset", SB_ANY, "the same (a thread can only lower what it has)"),
	ROW("write", SB_ANY, "messages to standard error and log files, eventfd wake-ups"),
	ROW("writev", SB_ANY, "stdio's buffered writes"),
	ROW("close", SB_ANY, "closing what a class opened or accepted"),
	ROW("tgkill", SB_OWN_PROCESS, "signals between this process's threads only (raise, abort)"),
	ROW("getrandom", SB_ANY, "glibc's malloc and hash seeds"),
	ROW("geteuid", SB_ANY, "ownership checks (vsock's <uds>_<port>, sockets, images)"),
	ROW("getuid", SB_ANY, "the same"),
	ROW("getegid", SB_ANY, "the same"),
	ROW("getgid", SB_ANY, "the same"),
	ROW("restart_syscall", SB_ANY, "the kernel restarts a sleep after a signal"),
	ROW("ioctl", SB_IOCTL_TTY_RESTORE, "a fatal signal (or a call refused here) on any thread "
	    "puts the console's terminal back before the process ends (base/terminal.c)"),
};

/* The main thread: the console, the VM's lifecycle, and a guest reboot,
 * which builds the whole VM again in this process (images opened, RAM
 * mapped, device threads started, sockets bound). A new thread starts with
 * its starter's filter before it adds its own, so the main thread's filter
 * is these rows plus every other class's (sandbox.c adds them): the
 * widest list, on the thread that sees the least guest input. What it
 * still cannot do: run programs, trace, mount, make namespaces, open raw
 * or netlink sockets, load modules or BPF, map memory executable except
 * the JIT's read-execute view. */
static const struct sandbox_rule main_rules[] = {
	ROW("read", SB_ANY, "console input, files read at a reboot (kernel, initrd, images)"),
	ROW("pread64", SB_ANY, "image headers at a reboot"),
	ROW("pwrite64", SB_ANY, "image headers at a reboot (qcow2 autoclear bits)"),
	ROW("lseek", SB_ANY, "file sizes"),
	ROW("openat", SB_ANY, "a reboot reopens the kernel, initrd, images and shares"),
	ROW("openat2", SB_ANY, "backing files and shares, beneath their directories"),
	ROW("newfstatat", SB_ANY, "file checks at a reboot"),
	ROW("fstat", SB_ANY, "file checks at a reboot"),
	ROW("statfs", SB_ANY, "file system checks"),
	ROW("fstatfs", SB_ANY, "file system checks"),
	ROW("readlink", SB_ANY, "canonical paths (realpath)"),
	ROW("readlinkat", SB_ANY, "canonical paths (realpath)"),
	ROW("getdents64", SB_ANY, "the sandbox lists this process's threads"),
	ROW("flock", SB_ANY, "an image is locked while a VM uses it"),
	ROW("fcntl", SB_FCNTL, "descriptor flags (non-blocking, close-on-exec, duplicates)"),
	ROW("dup", SB_ANY, "the console socket keeps the original standard output"),
	ROW("dup2", SB_ANY, "the console socket reroutes standard input and output"),
	ROW("dup3", SB_ANY, "the same"),
	ROW("pipe2", SB_ANY, "the console socket's pipes"),
	ROW("ioctl", SB_IOCTL_MAIN, "the terminal (TCGETS, TCSETS*, TIOCGWINSZ), TAP setup at a reboot, block device sizes"),
	ROW("poll", SB_ANY, "waiting for console input"),
	ROW("ppoll", SB_ANY, "the same"),
	ROW("epoll_create1", SB_ANY, "a rebuilt vsock device's epoll set"),
	ROW("epoll_ctl", SB_ANY, "the same"),
	ROW("eventfd2", SB_ANY, "a rebuilt device's wake-up descriptor"),
	ROW("socket", SB_SOCKET_MAIN, "Unix sockets for ports and vsock, IPv4/IPv6 for the user network's forwards (rebuilt at a reboot)"),
	ROW("bind", SB_ANY, "the same sockets"),
	ROW("listen", SB_ANY, "the same sockets"),
	ROW("connect", SB_ANY, "probing a stale socket file"),
	ROW("setsockopt", SB_ANY, "socket options of the forwards"),
	ROW("getsockopt", SB_ANY, "socket options"),
	ROW("getsockname", SB_ANY, "a forward's bound address"),
	ROW("shutdown", SB_ANY, "closing sockets"),
	ROW("unlink", SB_ANY, "removing its own socket files at a reboot or exit"),
	ROW("unlinkat", SB_ANY, "the same"),
	ROW("chmod", SB_ANY, "socket files are made mode 0600"),
	ROW("fchmod", SB_ANY, "the same"),
	ROW("ftruncate", SB_ANY, "the JIT's code cache is sized at a reboot"),
	ROW("fdatasync", SB_ANY, "a qcow2 header update reaches the disk"),
	ROW("fsync", SB_ANY, "the same"),
	ROW("memfd_create", SB_ANY, "the JIT's code cache at a reboot (mapped twice, never writable and executable at once)"),
	ROW("clone", SB_CLONE_THREAD, "threads of the rebuilt VM; threads only, no new processes or namespaces"),
	ROW("clone3", SB_ENOSYS, "refused with ENOSYS so that glibc uses clone, whose flags can be checked"),
	ROW("rt_sigaction", SB_ANY, "signal handlers (the console's SIGWINCH and SIGTERM)"),
	ROW("sysinfo", SB_ANY, "glibc reads the number of CPUs and memory"),
	ROW("sched_getaffinity", SB_ANY, "glibc's CPU count"),
	ROW("prlimit64", SB_ANY, "reading the process's limits (malloc, the sandbox)"),
	ROW("uname", SB_ANY, "glibc"),
};

/* A vCPU thread: runs guest code and emulates what traps (SBI, MMIO).
 * Device registers are written here, so a device's reset or feature
 * negotiation runs on this thread too. */
static const struct sandbox_rule vcpu_rules[] = {
	ROW("read", SB_ANY, "draining a device's wake-up eventfd on a register access"),
	ROW("madvise", SB_MADVISE_RAM, "an idle hart gives its JIT code cache back (MADV_REMOVE)"),
	ROW("ioctl", SB_IOCTL_TAP_OFFLOAD, "a TAP NIC's offloads follow what the guest negotiated (TUNSETOFFLOAD)"),
	ROW("clone", SB_CLONE_THREAD, "SBI HSM hart_start runs another hart's thread; threads only"),
	ROW("clone3", SB_ENOSYS, "refused with ENOSYS so that glibc uses clone, whose flags can be checked"),
	ROW("sched_getaffinity", SB_ANY, "glibc's CPU count at thread start"),
};

/* Device I/O threads: virtio queues (disk, 9p, console, rng, balloon,
 * vsock, net's queues), the console and port sockets, timers. Guest data
 * is parsed here. */
static const struct sandbox_rule io_rules[] = {
	ROW("read", SB_ANY, "sockets, eventfds, files"),
	ROW("readv", SB_ANY, "the same"),
	ROW("pread64", SB_ANY, "disk images, shared files"),
	ROW("preadv", SB_ANY, "disk images"),
	ROW("pwrite64", SB_ANY, "disk images, shared files"),
	ROW("pwritev", SB_ANY, "disk images"),
	ROW("lseek", SB_ANY, "9p directory offsets"),
	ROW("fdatasync", SB_ANY, "a guest's flush (virtio-blk, 9p fsync)"),
	ROW("fsync", SB_ANY, "the same"),
	ROW("fallocate", SB_ANY, "discard and write-zeroes (punch hole, zero range)"),
	ROW("ftruncate", SB_ANY, "9p setattr size; a qcow2 image grows"),
	ROW("ioctl", SB_IOCTL_BLOCK, "discard and write-zeroes on a block device (BLKDISCARD, BLKZEROOUT)"),
	ROW("openat", SB_ANY, "9p reopens a file through /proc/self/fd (beneath the share)"),
	ROW("openat2", SB_ANY, "9p resolves names with RESOLVE_BENEATH"),
	ROW("newfstatat", SB_ANY, "9p getattr; vsock checks a socket file's owner"),
	ROW("fstat", SB_ANY, "the same"),
	ROW("fstatfs", SB_ANY, "9p statfs"),
	ROW("getdents64", SB_ANY, "9p readdir"),
	ROW("mkdirat", SB_ANY, "9p mkdir (beneath the share)"),
	ROW("mknodat", SB_ANY, "9p mknod: regular files, FIFOs, sockets; never devices (fs.c)"),
	ROW("symlinkat", SB_ANY, "9p symlink"),
	ROW("linkat", SB_ANY, "9p link"),
	ROW("renameat", SB_ANY, "9p rename"),
	ROW("renameat2", SB_ANY, "9p rename"),
	ROW("unlinkat", SB_ANY, "9p remove"),
	ROW("readlinkat", SB_ANY, "9p readlink; finding a file's place beneath the share"),
	ROW("fchmod", SB_ANY, "9p setattr mode"),
	ROW("fchmodat", SB_ANY, "9p setattr mode through /proc/self/fd"),
	ROW("fchown", SB_ANY, "9p setattr owner (as root)"),
	ROW("fchownat", SB_ANY, "the same"),
	ROW("utimensat", SB_ANY, "9p setattr times"),
	ROW("fcntl", SB_FCNTL, "descriptor flags and duplicates (9p fid clones)"),
	ROW("dup", SB_ANY, "9p fid clones"),
	ROW("poll", SB_ANY, "console and port sockets wait for clients and data"),
	ROW("ppoll", SB_ANY, "the same"),
	ROW("epoll_wait", SB_ANY, "vsock's sockets"),
	ROW("epoll_pwait", SB_ANY, "the same"),
	ROW("epoll_ctl", SB_ANY, "vsock adds and removes connections"),
	ROW("accept4", SB_ANY, "console, port and vsock clients"),
	ROW("socket", SB_SOCKET_UNIX, "vsock connects a guest's connection to <uds>_<port>; Unix sockets only"),
	ROW("connect", SB_ANY, "the same"),
	ROW("getsockopt", SB_ANY, "SO_PEERCRED: who listens on <uds>_<port>"),
	ROW("recvfrom", SB_ANY, "socket data"),
	ROW("recvmsg", SB_ANY, "socket data"),
	ROW("sendto", SB_ANY, "socket data"),
	ROW("sendmsg", SB_ANY, "socket data"),
	ROW("shutdown", SB_ANY, "half-closing a connection (vsock, ports)"),
	ROW("madvise", SB_MADVISE_RAM, "the balloon gives guest pages back (DONTNEED, REMOVE)"),
};

/* The user network (libslirp) and TAP threads: NAT for the guest's
 * frames through ordinary host sockets. */
static const struct sandbox_rule net_rules[] = {
	ROW("read", SB_ANY, "sockets, the TAP device, the wake-up eventfd"),
	ROW("readv", SB_ANY, "the TAP device"),
	ROW("writev", SB_ANY, "the TAP device"),
	ROW("poll", SB_ANY, "slirp's and the TAP's descriptors"),
	ROW("ppoll", SB_ANY, "the same"),
	ROW("socket", SB_SOCKET_INET, "outbound connections of the guest; IPv4 and IPv6 only"),
	ROW("connect", SB_ANY, "the same"),
	ROW("bind", SB_ANY, "UDP from the guest gets a host port"),
	ROW("accept", SB_ANY, "a forwarded port's connection"),
	ROW("accept4", SB_ANY, "the same"),
	ROW("recvfrom", SB_ANY, "socket data"),
	ROW("recvmsg", SB_ANY, "socket data"),
	ROW("sendto", SB_ANY, "socket data"),
	ROW("sendmsg", SB_ANY, "socket data"),
	ROW("shutdown", SB_ANY, "half-closing a guest's connection"),
	ROW("setsockopt", SB_ANY, "slirp's socket options (reuse, no delay, OOB inline)"),
	ROW("getsockopt", SB_ANY, "SO_ERROR of a connection in progress"),
	ROW("getsockname", SB_ANY, "addresses of slirp's sockets"),
	ROW("getpeername", SB_ANY, "the same"),
	ROW("fcntl", SB_FCNTL, "non-blocking sockets"),
	ROW("ioctl", SB_IOCTL_NET, "FIONREAD/FIONBIO on sockets; TAP offloads (TUNSETOFFLOAD)"),
	ROW("openat", SB_READ_ONLY, "slirp reads /etc/resolv.conf for the DNS forwarder; read-only"),
	ROW("newfstatat", SB_ANY, "the same file's size"),
	ROW("fstat", SB_ANY, "the same"),
	ROW("lseek", SB_ANY, "stdio reading /etc/resolv.conf"),
};

/* The API thread (libmicrohttpd) and the guest agent's clock thread:
 * requests on the API socket once the VM runs (before that the API
 * thread configures and builds the VM unconfined; the guest has not run
 * yet). Snapshots are made here. */
static const struct sandbox_rule api_rules[] = {
	ROW("read", SB_ANY, "request bodies, snapshot files"),
	ROW("poll", SB_ANY, "libmicrohttpd's event loop"),
	ROW("ppoll", SB_ANY, "the same"),
	ROW("accept4", SB_ANY, "API clients"),
	ROW("recvfrom", SB_ANY, "requests"),
	ROW("sendto", SB_ANY, "answers"),
	ROW("sendmsg", SB_ANY, "answers"),
	ROW("shutdown", SB_ANY, "closing a client"),
	ROW("setsockopt", SB_ANY, "libmicrohttpd's socket options"),
	ROW("getsockopt", SB_ANY, "the same"),
	ROW("fcntl", SB_FCNTL, "non-blocking client sockets"),
	ROW("openat", SB_ANY, "PUT /logger and /metrics, snapshot files, /etc/localtime for dates"),
	ROW("newfstatat", SB_ANY, "the same files"),
	ROW("fstat", SB_ANY, "the same"),
	ROW("statfs", SB_ANY, "a log path is not a kernel interface (api_log.c)"),
	ROW("fstatfs", SB_ANY, "the same"),
	ROW("lseek", SB_ANY, "files"),
	ROW("pread64", SB_ANY, "snapshot: guest memory pages, /proc/self/pagemap"),
	ROW("pwrite64", SB_ANY, "snapshot files"),
	ROW("ftruncate", SB_ANY, "snapshot memory file"),
	ROW("fsync", SB_ANY, "snapshot files reach the disk"),
	ROW("fdatasync", SB_ANY, "the same"),
	ROW("flock", SB_ANY, "a snapshot's files are locked while written"),
	ROW("copy_file_range", SB_ANY, "snapshot memory copied without a detour"),
	ROW("fallocate", SB_ANY, "a snapshot memory file's zero pages punched as holes"),
	ROW("renameat", SB_ANY, "snapshot files replace the old ones atomically"),
	ROW("rename", SB_ANY, "the same"),
	ROW("unlink", SB_ANY, "a failed snapshot's temporary file"),
	ROW("readlink", SB_ANY, "canonical snapshot paths (realpath)"),
	ROW("getcwd", SB_ANY, "the same, for a relative path"),
	ROW("mincore", SB_ANY, "metrics: the guest RAM's resident size (FlushMetrics; main's periodic metrics)"),
	ROW("getdents64", SB_ANY, "listing a snapshot directory"),
	ROW("ioctl", SB_IOCTL_BLKSIZE, "PATCH /drives path_on_host to a block device: its size "
	    "(BLKGETSIZE64)"),
	ROW("clone", SB_CLONE_THREAD, "the guest agent's clock thread; threads only"),
	ROW("clone3", SB_ENOSYS, "refused with ENOSYS so that glibc uses clone, whose flags can be checked"),
	ROW("sched_getaffinity", SB_ANY, "glibc's CPU count at thread start"),
};

#ifdef __SANITIZE_ADDRESS__
/* Sanitizer builds only (tests): LeakSanitizer checks for leaks at exit
 * on the main thread by stopping the process's threads from a helper task
 * that traces them. Release builds have none of these rows. */
static const struct sandbox_rule sanitizer_rules[] = {
	ROW("clone", SB_ANY, "LeakSanitizer's tracer task (not a thread)"),
	ROW("ptrace", SB_ANY, "LeakSanitizer stops and reads the threads"),
	ROW("wait4", SB_ANY, "LeakSanitizer waits for its tracer and the threads"),
	ROW("prctl", SB_ANY, "LeakSanitizer: PR_SET_PTRACER, PR_SET_PDEATHSIG, dumpable"),
	ROW("rt_sigaction", SB_ANY, "LeakSanitizer's tracer sets its handlers"),
	ROW("getppid", SB_ANY, "LeakSanitizer's tracer checks its parent"),
	ROW("openat", SB_ANY, "sanitizers read /proc/self/maps"),
	ROW("open", SB_ANY, "LeakSanitizer opens /proc/self/task by the old call"),
	ROW("getdents", SB_ANY, "LeakSanitizer lists the threads by the old call"),
	ROW("read", SB_ANY, "the same"),
	ROW("getdents64", SB_ANY, "LeakSanitizer lists the threads"),
	ROW("sched_getaffinity", SB_ANY, "sanitizer internals"),
	ROW("pipe2", SB_ANY, "sanitizer internals"),
	ROW("dup2", SB_ANY, "sanitizer internals"),
	ROW("newfstatat", SB_ANY, "sanitizer internals"),
	ROW("lseek", SB_ANY, "sanitizer internals"),
	ROW("getrlimit", SB_ANY, "sanitizer internals"),
	ROW("prlimit64", SB_ANY, "sanitizer internals"),
	ROW("kill", SB_ANY, "LeakSanitizer's tracer"),
};

/* Sanitizer builds only, every class: a thread is confined from a signal
 * (sandbox.c) that may arrive as soon as glibc unblocks signals in the new
 * thread, before AddressSanitizer's own start code in it has run; that
 * code reads the thread's stack bounds with pthread_getattr_np, which asks
 * for the CPU affinity. (A device thread armed that early was killed for
 * it under load: test_skiffd_lifecycle on build-asan, about 1 run in 4.) */
static const struct sandbox_rule sanitizer_thread_rules[] = {
	ROW("sched_getaffinity", SB_ANY, "AddressSanitizer's thread start (pthread_getattr_np)"),
};
#endif

const struct sandbox_rule *sandbox_table(enum sandbox_class cls, size_t *n)
{
	switch (cls) {
#ifdef __SANITIZE_ADDRESS__
	case SB_SANITIZER: *n = sizeof(sanitizer_rules) / sizeof(sanitizer_rules[0]); return sanitizer_rules;
	case SB_SANITIZER_THREAD:
		*n = sizeof(sanitizer_thread_rules) / sizeof(sanitizer_thread_rules[0]);
		return sanitizer_thread_rules;
#else
	case SB_SANITIZER: *n = 0; return NULL;
	case SB_SANITIZER_THREAD: *n = 0; return NULL;
#endif
	case SB_COMMON: *n = sizeof(common) / sizeof(common[0]); return common;
	case SB_MAIN: *n = sizeof(main_rules) / sizeof(main_rules[0]); return main_rules;
	case SB_VCPU: *n = sizeof(vcpu_rules) / sizeof(vcpu_rules[0]); return vcpu_rules;
	case SB_IO: *n = sizeof(io_rules) / sizeof(io_rules[0]); return io_rules;
	case SB_NET: *n = sizeof(net_rules) / sizeof(net_rules[0]); return net_rules;
	case SB_API: *n = sizeof(api_rules) / sizeof(api_rules[0]); return api_rules;
	default: *n = 0; return NULL;
	}
}
