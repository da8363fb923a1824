/*
 * seccomp for the VMM's threads; see sandbox.h. The tables are turned into
 * one BPF program per class with libseccomp when the sandbox is created;
 * confining a thread is then only prctl(PR_SET_NO_NEW_PRIVS) and
 * seccomp(SECCOMP_SET_MODE_FILTER), both safe in a signal handler.
 *
 * A call outside the list (mode on) traps: the SIGSYS handler writes which
 * thread, class and call it was, then makes the one call every filter
 * answers with SECCOMP_RET_KILL_PROCESS (vhangup), so the process ends by
 * SIGSYS as with a plain kill-process default, but with the report first.
 *
 * The signal handlers reach the sandbox through one process-wide pointer:
 * a handler has no argument, and seccomp is per-process state anyway.
 */
#include "vmm/sandbox.h"

#include "base/fd_io.h"
#include "base/terminal.h"
#include "monitor/vm.h"
#include "vmm/sandbox_paths.h"
#include "base/clock.h"
#include "base/thread_start.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/futex.h>

#define MAX_NR 512          /* system call numbers named in reports */
#define MAX_THREADS 256     /* threads confined in one pass */
#define ARM_TIMEOUT_MS 5000
#define NAME_TIMEOUT_MS 5000  /* for a new thread to name itself */
#define ALIVE_CHECK_MS 10     /* how often a pending answer's thread is looked for */
#define MAX_PASSES 8          /* rounds of signals in one confinement */

struct arm_slot {
	pid_t tid;
	unsigned long long start;   /* its start time (a tid can be reused) */
	enum sandbox_class cls;
	bool landlock;          /* restrict it with Landlock too (the first pass) */
	_Atomic int result;     /* 1: pending, 0: done, < 0: -errno */
};

struct sandbox {
	enum sandbox_mode mode;
	bool trigger;
	enum sandbox_class trigger_cls;
	struct sock_fprog prog[SB_CLASSES];
	const char *sysname[MAX_NR];
	int arm_signal;
	pthread_mutex_t lock;   /* one confinement pass at a time */
	_Atomic bool confined;  /* some thread has a filter: keep the report's names */
	_Atomic uint64_t caps;  /* capabilities kept (sandbox_caps_needed) */
	bool limits_set;
	/* A VM was built and started under this sandbox (sandbox_confine_self
	 * succeeded): a guest reboot builds the next one on the thread that
	 * built this one, whose filter allows it. */
	bool vm_built;
	/* Landlock: the paths besides the configuration's, the ruleset while
	 * the first pass applies it (else -1), and whether that pass is over. */
	struct sandbox_paths paths;
	int landlock_fd;
	bool landlock_done;
	/* Threads confined so far: tid and start time (a tid can be reused). */
	struct { pid_t tid; unsigned long long start; } done[MAX_THREADS * 4];
	size_t ndone;
	struct arm_slot slots[MAX_THREADS];
	_Atomic size_t nslots;
	/* How a VM's threads start (sandbox_vm_threads): each confines
	 * itself as it begins. While the first pass still has Landlock to
	 * apply, they leave it to that pass (its signal brings the Landlock
	 * domain the thread did not inherit; a filter installed first would
	 * refuse the Landlock call). */
	struct thread_hook hook;
	_Atomic bool landlock_pending;
	/* Threads already running were signalled as the VM began to be
	 * built; sandbox_vm_built collects their answers. */
	bool armed;
	/* Seccomp filters every thread had before this sandbox (a container
	 * runtime's, say), or -1 where the kernel does not count them: a
	 * thread with more carries one of ours. */
	int base_filters;
};

static struct sandbox *_Atomic sb_current;

static const char *const class_names[SB_CLASSES] = {
	[SB_COMMON] = "common", [SB_MAIN] = "main", [SB_VCPU] = "vcpu",
	[SB_IO] = "io", [SB_NET] = "net", [SB_API] = "api",
};

const char *sandbox_class_name(enum sandbox_class cls)
{
	return cls < SB_CLASSES ? class_names[cls] : "?";
}

/* Thread names (prefixes) and their classes. */
static const struct { const char *prefix; enum sandbox_class cls; } by_name[] = {
	{ "vcpu", SB_VCPU },
	{ "virtio-", SB_IO }, { "vsock", SB_IO }, { "net-limit", SB_IO },
	{ "balloon-stats", SB_IO }, { "port-sock", SB_IO }, { "console-sock", SB_IO },
	{ "cpu-quota", SB_IO },
	{ "slirp-", SB_NET }, { "tap-", SB_NET },
	{ "MHD-", SB_API }, { "api-call", SB_API }, { "agent-clock", SB_API },
};

bool sandbox_class_of_name(const char *name, enum sandbox_class *cls)
{
	for (size_t i = 0; i < sizeof(by_name) / sizeof(by_name[0]); i++) {
		size_t n = strlen(by_name[i].prefix);
		if (!strncmp(name, by_name[i].prefix, n)) {
			*cls = by_name[i].cls;
			return true;
		}
	}
	return false;
}

enum sandbox_mode sandbox_mode(const struct sandbox *sb)
{
	return sb ? sb->mode : SANDBOX_OFF;
}

/* ------------------------------------------------------------ building */

static int add(scmp_filter_ctx ctx, uint32_t action, int nr, unsigned n, const struct scmp_arg_cmp *a)
{
	return seccomp_rule_add_array(ctx, action, nr, n, a);
}

/* Arguments compared are C ints or 32-bit request numbers: only their low
 * 32 bits are compared (the upper half of the register is not defined). */
static int add_values(scmp_filter_ctx ctx, int nr, unsigned arg, const uint64_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct scmp_arg_cmp c = { arg, SCMP_CMP_MASKED_EQ, 0xffffffffu, v[i] & 0xffffffffu };
		int r = add(ctx, SCMP_ACT_ALLOW, nr, 1, &c);
		if (r < 0)
			return r;
	}
	return 0;
}

#define VALUES(...) ((const uint64_t[]){ __VA_ARGS__ }), \
	(sizeof((const uint64_t[]){ __VA_ARGS__ }) / sizeof(uint64_t))

static int add_rule(scmp_filter_ctx ctx, int nr, enum sandbox_check check)
{
	struct scmp_arg_cmp c[2];
	switch (check) {
	case SB_ANY:
		return add(ctx, SCMP_ACT_ALLOW, nr, 0, NULL);
	case SB_NO_EXEC:
		c[0] = (struct scmp_arg_cmp){ 2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0 };
		return add(ctx, SCMP_ACT_ALLOW, nr, 1, c);
	case SB_MADVISE:
		return add_values(ctx, nr, 2, VALUES(MADV_DONTNEED, MADV_FREE, MADV_DONTDUMP,
						      MADV_HUGEPAGE, MADV_NOHUGEPAGE));
	case SB_MADVISE_RAM:
		return add_values(ctx, nr, 2, VALUES(MADV_DONTNEED, MADV_REMOVE));
	case SB_PRCTL_NAME:
		return add_values(ctx, nr, 0, VALUES(PR_SET_NAME, PR_GET_NAME, PR_SET_NO_NEW_PRIVS,
						      PR_GET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_CAP_AMBIENT));
	case SB_OWN_PROCESS:
		return add_values(ctx, nr, 0, VALUES((uint64_t)getpid()));
	case SB_FCNTL:
		return add_values(ctx, nr, 1, VALUES(F_GETFL, F_SETFL, F_GETFD, F_SETFD, F_DUPFD,
						      F_DUPFD_CLOEXEC, F_GETLK, F_SETLK, F_SETLKW,
						      F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW));
	case SB_IOCTL_MAIN:
		return add_values(ctx, nr, 1, VALUES(TCGETS, TCSETS, TCSETSW, TCSETSF, TIOCGWINSZ,
						      TIOCGPGRP, FIONBIO, FIONREAD, TUNSETIFF,
						      TUNSETVNETHDRSZ, TUNSETOFFLOAD, BLKGETSIZE64));
	case SB_IOCTL_TTY_RESTORE:
		/* glibc's tcsetattr reads the settings back (TCGETS) after TCSETS. */
		c[0] = (struct scmp_arg_cmp){ 0, SCMP_CMP_MASKED_EQ, 0xffffffffu, STDIN_FILENO };
		for (int i = 0; i < 2; i++) {
			c[1] = (struct scmp_arg_cmp){ 1, SCMP_CMP_MASKED_EQ, 0xffffffffu,
						      i ? TCGETS : TCSETS };
			int r = add(ctx, SCMP_ACT_ALLOW, nr, 2, c);
			if (r < 0)
				return r;
		}
		return 0;
	case SB_IOCTL_TAP_OFFLOAD:
		return add_values(ctx, nr, 1, VALUES(TUNSETOFFLOAD));
	case SB_IOCTL_BLOCK:
		return add_values(ctx, nr, 1, VALUES(BLKDISCARD, BLKZEROOUT));
	case SB_IOCTL_BLKSIZE:
		return add_values(ctx, nr, 1, VALUES(BLKGETSIZE64));
	case SB_IOCTL_NET:
		return add_values(ctx, nr, 1, VALUES(FIONREAD, FIONBIO, TUNSETOFFLOAD));
	case SB_SOCKET_MAIN:
		return add_values(ctx, nr, 0, VALUES(AF_UNIX, AF_INET, AF_INET6));
	case SB_SOCKET_UNIX:
		return add_values(ctx, nr, 0, VALUES(AF_UNIX));
	case SB_SOCKET_INET:
		return add_values(ctx, nr, 0, VALUES(AF_INET, AF_INET6));
	case SB_CLONE_THREAD: {
		const uint64_t ns = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
				    CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;
		c[0] = (struct scmp_arg_cmp){ 0, SCMP_CMP_MASKED_EQ, ns | CLONE_THREAD, CLONE_THREAD };
		return add(ctx, SCMP_ACT_ALLOW, nr, 1, c);
	}
	case SB_ENOSYS:
		return add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0, NULL);
	case SB_READ_ONLY:
		c[0] = (struct scmp_arg_cmp){ 2, SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC, O_RDONLY };
		return add(ctx, SCMP_ACT_ALLOW, nr, 1, c);
	}
	return -1;
}

static int add_table(scmp_filter_ctx ctx, enum sandbox_class cls, char *err, size_t errlen)
{
	size_t n;
	const struct sandbox_rule *t = sandbox_table(cls, &n);
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(t[i].syscall);
		if (nr == __NR_SCMP_ERROR || nr < 0)
			continue;   /* not on this architecture */
		if (add_rule(ctx, nr, t[i].check) < 0) {
			snprintf(err, errlen, "sandbox: cannot add %s to the %s list", t[i].syscall,
				 sandbox_class_name(cls));
			return -1;
		}
	}
	return 0;
}

/* One class's program, exported from libseccomp into memory. */
static int build(struct sandbox *sb, enum sandbox_class cls, bool jit, char *err, size_t errlen)
{
	uint32_t dflt = sb->mode == SANDBOX_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP;
	scmp_filter_ctx ctx = seccomp_init(dflt);
	if (!ctx) {
		snprintf(err, errlen, "sandbox: libseccomp cannot start a filter");
		return -1;
	}
	int ret = -1, fd = -1;
	/* The one call that ends the process, for the SIGSYS handler. */
	if (seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(vhangup), 0) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(seccomp), 1,
			     SCMP_A0(SCMP_CMP_EQ, SECCOMP_SET_MODE_FILTER)) < 0) {
		snprintf(err, errlen, "sandbox: cannot start the %s list", sandbox_class_name(cls));
		goto out;
	}
	/* The class's rows before the common ones: a narrower common rule
	 * (the terminal's restore) that a broader one of the class (the main
	 * thread's terminal ioctls) covers is then dropped as it is added;
	 * added the other way, libseccomp 2.5 leaks the narrower rule's nodes
	 * (LeakSanitizer in test_sandbox_threads). */
	if (add_table(ctx, cls, err, errlen) || add_table(ctx, SB_COMMON, err, errlen) ||
	    add_table(ctx, SB_SANITIZER_THREAD, err, errlen))
		goto out;
	if (jit && cls == SB_MAIN) {
		/* A rebuilt hart's JIT code cache: its executable view is read
		 * and execute, shared (the same memfd's writable view is a
		 * separate mapping; engine/jit/cache.c). */
		struct scmp_arg_cmp x[2] = {
			{ 2, SCMP_CMP_MASKED_EQ, 0xffffffffu, PROT_READ | PROT_EXEC },
			{ 3, SCMP_CMP_MASKED_EQ, MAP_TYPE, MAP_SHARED },
		};
		if (add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 2, x) < 0) {
			snprintf(err, errlen, "sandbox: cannot add the JIT's mapping to the main list");
			goto out;
		}
	}
	/* A thread starts with its starter's filter, and the main thread
	 * starts every thread of a VM it rebuilds after a guest reboot; so
	 * its list holds every class's rows besides its own. */
	for (int c = SB_VCPU; cls == SB_MAIN && c <= SB_SANITIZER; c++)
		if (add_table(ctx, (enum sandbox_class)c, err, errlen))
			goto out;
	/* No need for libseccomp to set no_new_privs: the handler does. */
	fd = memfd_create("skiff-seccomp", MFD_CLOEXEC);
	if (fd < 0 || seccomp_export_bpf(ctx, fd) < 0) {
		snprintf(err, errlen, "sandbox: cannot export the %s filter", sandbox_class_name(cls));
		goto out;
	}
	off_t size = lseek(fd, 0, SEEK_END);
	struct sock_filter *f = size > 0 ? malloc((size_t)size) : NULL;
	if (!f || pread(fd, f, (size_t)size, 0) != size) {
		free(f);
		snprintf(err, errlen, "sandbox: cannot read the %s filter back", sandbox_class_name(cls));
		goto out;
	}
	sb->prog[cls].filter = f;
	sb->prog[cls].len = (unsigned short)(size / (off_t)sizeof(*f));
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return ret;
}

/* ------------------------------------------------------------ installing */

static void say(const char *s)
{
	size_t n = strlen(s);
	while (n) {
		ssize_t w = write(STDERR_FILENO, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* Capabilities are per thread: each thread drops its own, keeping only
 * those in `keep`, from its bounding, ambient, inheritable, permitted and
 * effective sets. Errors are ignored: a thread without CAP_SETPCAP has no
 * bounding set to drop from, and a capability the kernel lacks is EINVAL. */
static void drop_caps(uint64_t keep)
{
	for (int c = 0; c < 64; c++)
		if (!(keep >> c & 1))
			prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		return;
	for (int i = 0; i < 2; i++) {
		uint32_t k = (uint32_t)(keep >> (32 * i));
		d[i].effective &= k;
		d[i].permitted &= k;
		d[i].inheritable = 0;
	}
	syscall(SYS_capset, &h, d);
}

/* landlock: a Landlock ruleset to restrict the thread to, or -1. */
static int install(struct sandbox *sb, const struct sock_fprog *p, int landlock)
{
	atomic_store(&sb->confined, true);
	drop_caps(atomic_load(&sb->caps));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (landlock >= 0) {
		int r = sandbox_landlock_restrict(landlock);
		if (r)
			return r;
	}
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, p) < 0)
		return -errno;
	return 0;
}

/* Test builds: the thread of the class named in SKIFF_SANDBOX_TRIGGER
 * makes a call no class may make, right after confining itself. With no
 * target it fails (EFAULT) even where it is let through (--seccomp=log,
 * as root), so the trigger itself changes nothing on the host. */
static void maybe_trigger(const struct sandbox *sb, enum sandbox_class cls)
{
	if (sb->trigger && sb->trigger_cls == cls)
		syscall(SYS_mount, NULL, NULL, NULL, 0, NULL);
}

static void on_arm(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	struct sandbox *sb = atomic_load(&sb_current);
	if (!sb)
		return;
	pid_t me = (pid_t)syscall(SYS_gettid);
	size_t n = atomic_load(&sb->nslots);
	for (size_t i = 0; i < n; i++) {
		struct arm_slot *s = &sb->slots[i];
		if (s->tid != me || atomic_load(&s->result) != 1)
			continue;
		int r = install(sb, &sb->prog[s->cls], s->landlock ? sb->landlock_fd : -1);
		atomic_store(&s->result, r);
		/* The confining thread sleeps on the result (futex is in every
		 * class's table). */
		syscall(SYS_futex, &s->result, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
		if (r == 0)
			maybe_trigger(sb, s->cls);
		return;
	}
}

/* SIGSYS from a filter: report, then end the process. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	struct sandbox *sb = atomic_load(&sb_current);
	char name[17] = "?";
	prctl(PR_GET_NAME, name, 0, 0, 0);
	name[16] = 0;
	enum sandbox_class cls = SB_MAIN;
	bool known = syscall(SYS_gettid) == getpid() || sandbox_class_of_name(name, &cls);
	int nr = si->si_syscall;
	char num[16], *p = num + sizeof(num);
	*--p = 0;
	unsigned v = nr < 0 ? 0 : (unsigned)nr;
	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10));
	const char *call = sb && nr >= 0 && nr < MAX_NR && sb->sysname[nr] ? sb->sysname[nr] : "?";
	/* One write: threads of a class that fault at once (API threads)
	 * must not interleave their reports. */
	const char *part[] = {
		"\r\nskiff: sandbox: the ", known ? sandbox_class_name(cls) : "unclassed",
		" thread '", name, "' made the system call ", call, " (", p,
		"), which its class's list does not allow (src/vmm/sandbox_tables.c); ending the VMM\n",
	};
	char msg[512];
	size_t len = 0;
	for (size_t i = 0; i < sizeof(part) / sizeof(part[0]); i++)
		for (const char *c = part[i]; *c && len < sizeof(msg) - 1; c++)
			msg[len++] = *c;
	msg[len] = 0;
	say(msg);
	/* The console's terminal back first, as after any fatal signal. */
	terminal_raw_end();
	syscall(SYS_vhangup);
	/* Not reached: vhangup is answered by SECCOMP_RET_KILL_PROCESS. */
	_exit(159);
}

static unsigned long long start_time(pid_t tid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	if (fd_read_small(path, buf, sizeof(buf)) <= 0)
		return 0;
	char *p = strrchr(buf, ')');
	unsigned long long st = 0;
	/* Field 22 (starttime) is the 20th after the name's ')'. */
	for (int field = 2; p && *p; p++) {
		if (*p != ' ')
			continue;
		if (++field == 22) {
			st = strtoull(p + 1, NULL, 10);
			break;
		}
	}
	return st;
}

static bool thread_name(pid_t tid, char *out, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)tid);
	if (fd_read_small(path, out, len) <= 0)
		return false;
	out[strcspn(out, "\n")] = 0;
	return true;
}

/* How many seccomp filters the thread has, or -1 if unknown. */
static int filter_count(pid_t tid)
{
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	if (fd_read_small(path, buf, sizeof(buf)) <= 0)
		return -1;
	const char *p = strstr(buf, "\nSeccomp_filters:");
	return p ? atoi(p + strlen("\nSeccomp_filters:")) : -1;
}

static bool is_done(const struct sandbox *sb, pid_t tid, unsigned long long st)
{
	for (size_t i = 0; i < sb->ndone; i++)
		if (sb->done[i].tid == tid && sb->done[i].start == st)
			return true;
	return false;
}

static void mark_done(struct sandbox *sb, pid_t tid, unsigned long long st)
{
	if (sb->ndone == sizeof(sb->done) / sizeof(sb->done[0])) {
		/* Forget the oldest half: those threads have long ended or
		 * would only get their filter once more. */
		size_t half = sb->ndone / 2;
		memmove(sb->done, sb->done + half, (sb->ndone - half) * sizeof(sb->done[0]));
		sb->ndone -= half;
	}
	sb->done[sb->ndone].tid = tid;
	sb->done[sb->ndone].start = st;
	sb->ndone++;
}

static int thread_begin(void *arg, const char *name);
static void thread_noted(void *arg, pid_t tid);

static enum sandbox_class class_of(pid_t tid, const char *name, bool *ok)
{
	enum sandbox_class cls = SB_MAIN;
	*ok = tid == getpid() || sandbox_class_of_name(name, &cls);
	return cls;
}

struct sandbox *sandbox_create(const struct sandbox_opts *o, char *err, size_t errlen)
{
	struct sandbox *sb = calloc(1, sizeof(*sb));
	if (!sb) {
		snprintf(err, errlen, "sandbox: out of memory");
		return NULL;
	}
	sb->mode = o->seccomp;
	sb->landlock_fd = -1;
	sb->base_filters = filter_count((pid_t)syscall(SYS_gettid));
	sb->hook = (struct thread_hook){ .start = thread_begin, .started = thread_noted, .ctx = sb };
	sb->landlock_done = !o->landlock;
	pthread_mutex_init(&sb->lock, NULL);
	for (size_t i = 0; o->paths && i < o->paths->n; i++)
		if (sandbox_paths_add(&sb->paths, o->paths->v[i].path, o->paths->v[i].dir,
				      o->paths->v[i].write)) {
			snprintf(err, errlen, "sandbox: out of memory");
			sandbox_destroy(sb);
			return NULL;
		}
	if (sb->mode == SANDBOX_OFF)
		return sb;
	if (o->test_trigger) {
		const char *t = getenv("SKIFF_SANDBOX_TRIGGER");
		for (int c = SB_MAIN; t && c < SB_CLASSES; c++)
			if (!strcmp(t, class_names[c])) {
				sb->trigger = true;
				sb->trigger_cls = (enum sandbox_class)c;
			}
	}
	for (int c = SB_MAIN; c < SB_CLASSES; c++)
		if (build(sb, (enum sandbox_class)c, o->jit, err, errlen)) {
			sandbox_destroy(sb);
			return NULL;
		}
	for (int nr = 0; nr < MAX_NR; nr++)
		sb->sysname[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
	sb->arm_signal = SIGRTMIN + 4;
	struct sigaction sa = { .sa_sigaction = on_arm, .sa_flags = SA_SIGINFO | SA_RESTART };
	struct sigaction ss = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };
	sigemptyset(&sa.sa_mask);
	sigemptyset(&ss.sa_mask);
	struct sandbox *none = NULL;
	if (!atomic_compare_exchange_strong(&sb_current, &none, sb)) {
		snprintf(err, errlen, "sandbox: a process has one sandbox");
		sandbox_destroy(sb);
		return NULL;
	}
	if (sigaction(sb->arm_signal, &sa, NULL) || sigaction(SIGSYS, &ss, NULL)) {
		snprintf(err, errlen, "sandbox: cannot set its signal handlers: %s", strerror(errno));
		sandbox_destroy(sb);
		return NULL;
	}
	return sb;
}

void sandbox_destroy(struct sandbox *sb)
{
	if (!sb)
		return;
	/* Filters stay with the threads until the process ends, and so do
	 * the names the SIGSYS report uses (still reachable: not a leak). */
	if (atomic_load(&sb->confined))
		return;
	struct sandbox *me = sb;
	atomic_compare_exchange_strong(&sb_current, &me, NULL);
	sandbox_paths_free(&sb->paths);
	for (int c = 0; c < SB_CLASSES; c++)
		free(sb->prog[c].filter);
	for (int nr = 0; nr < MAX_NR; nr++)
		free((void *)sb->sysname[nr]);
	pthread_mutex_destroy(&sb->lock);
	free(sb);
}

/* Signal every thread not confined yet but the caller (and those that
 * confine themselves), each to install its class's filter; the answers
 * are waited for by collect(), so the caller may work meanwhile. Called
 * with sb->lock held. */
static int arm_others(struct sandbox *sb, char *err, size_t errlen)
{
	pid_t me = (pid_t)syscall(SYS_gettid), pid = getpid();
	int ret = 0;
	DIR *d = opendir("/proc/self/task");
	if (!d) {
		snprintf(err, errlen, "sandbox: cannot list the threads: %s", strerror(errno));
		return -1;
	}
	size_t n = 0;
	struct dirent *e;
	atomic_store(&sb->nslots, 0);
	while ((e = readdir(d))) {
		pid_t tid = (pid_t)atoi(e->d_name);
		if (tid <= 0 || tid == me)
			continue;
		unsigned long long st = start_time(tid);
		if (is_done(sb, tid, st))
			continue;
		/* Started by a confined thread (the API server's thread per
		 * connection): it inherited that thread's filter and Landlock
		 * domain; a second filter would only cost, and a second
		 * Landlock call is not in any class's list. */
		int filters = sb->base_filters >= 0 ? filter_count(tid) : -1;
		if (filters > sb->base_filters) {
			mark_done(sb, tid, st);
			continue;
		}
		char name[32];
		if (!thread_name(tid, name, sizeof(name)))
			continue;   /* it has ended */
		bool ok;
		enum sandbox_class cls = class_of(tid, name, &ok);
		/* A thread may name itself as it begins (libmicrohttpd's API
		 * thread does): one just created may not have run yet under a
		 * loaded host, and carries the process's name until it does. */
		bool ended = false;
		for (int waited = 0; !ok && !ended && waited < NAME_TIMEOUT_MS; waited++) {
			struct timespec nap = { 0, 1000000 };
			nanosleep(&nap, NULL);
			ended = !thread_name(tid, name, sizeof(name));
			if (!ended)
				cls = class_of(tid, name, &ok);
		}
		if (ended)
			continue;
		if (!ok) {
			snprintf(err, errlen, "sandbox: thread %d '%s' has no class (sandbox.c's list of "
				 "thread names): it would run unconfined", (int)tid, name);
			ret = -1;
			break;
		}
		if (n == MAX_THREADS) {
			snprintf(err, errlen, "sandbox: more than %d threads to confine", MAX_THREADS);
			ret = -1;
			break;
		}
		sb->slots[n].tid = tid;
		sb->slots[n].start = st;
		sb->slots[n].cls = cls;
		sb->slots[n].landlock = sb->landlock_fd >= 0;
		atomic_store(&sb->slots[n].result, 1);
		n++;
	}
	closedir(d);
	atomic_store(&sb->nslots, ret ? 0 : n);
	for (size_t i = 0; !ret && i < n; i++)
		if (syscall(SYS_tgkill, pid, sb->slots[i].tid, sb->arm_signal) < 0)
			atomic_store(&sb->slots[i].result, 0);   /* it has ended */
	return ret;
}

/* Wait for the answers of the threads arm_others() signalled. Called with
 * sb->lock held. */
static int collect(struct sandbox *sb, char *err, size_t errlen)
{
	/* Woken by each thread's handler as soon as it is done: a fixed
	 * nap here cost a restored VM a millisecond or more per thread. */
	uint64_t deadline = clock_monotonic_ns() + ARM_TIMEOUT_MS * 1000000ull;
	size_t n = atomic_load(&sb->nslots);
	int ret = 0;
	for (size_t i = 0; i < n; i++) {
		bool gone = false;
		for (;;) {
			uint64_t now = clock_monotonic_ns();
			if (atomic_load(&sb->slots[i].result) != 1 || now >= deadline)
				break;
			/* A thread that was ending when signalled (a connection's
			 * thread after its client left) never runs the handler:
			 * glibc blocks signals as a thread ends. It is no longer
			 * in the process, and needs no filter. */
			if (start_time(sb->slots[i].tid) != sb->slots[i].start) {
				gone = true;
				break;
			}
			uint64_t wait = deadline - now;
			if (wait > ALIVE_CHECK_MS * 1000000ull)
				wait = ALIVE_CHECK_MS * 1000000ull;
			struct timespec left = clock_timespec(wait);
			syscall(SYS_futex, &sb->slots[i].result, FUTEX_WAIT_PRIVATE, 1, &left, NULL, 0);
		}
		int r = atomic_load(&sb->slots[i].result);
		if (gone && r == 1)
			continue;
		if (r) {
			snprintf(err, errlen, "sandbox: thread %d (%s class) did not confine itself: %s",
				 (int)sb->slots[i].tid, sandbox_class_name(sb->slots[i].cls),
				 r == 1 ? "no answer" : strerror(-r));
			ret = -1;
			break;
		}
		mark_done(sb, sb->slots[i].tid, sb->slots[i].start);
	}
	atomic_store(&sb->nslots, 0);
	sb->armed = false;
	return ret;
}

int sandbox_confine_others(struct sandbox *sb, char *err, size_t errlen)
{
	if (!sb || sb->mode == SANDBOX_OFF)
		return 0;
	pthread_mutex_lock(&sb->lock);
	/* Those signalled while the VM was built first (sandbox_vm_threads),
	 * then any thread that does not confine itself and was not among
	 * them. */
	int ret = sb->armed ? collect(sb, err, errlen) : 0;
	/* A thread not confined yet may start another meanwhile (the API's
	 * listener on a new connection), which inherits nothing: passes go
	 * on until one finds no thread left to signal. */
	int pass = 0;
	while (!ret) {
		ret = arm_others(sb, err, errlen);
		if (ret || atomic_load(&sb->nslots) == 0)
			break;
		ret = collect(sb, err, errlen);
		if (!ret && ++pass == MAX_PASSES) {
			snprintf(err, errlen, "sandbox: threads kept starting unconfined "
				 "through %d passes", MAX_PASSES);
			ret = -1;
		}
	}
	atomic_store(&sb->nslots, 0);
	sb->armed = false;
	pthread_mutex_unlock(&sb->lock);
	return ret;
}

int sandbox_confine_self(struct sandbox *sb, char *err, size_t errlen)
{
	if (!sb || sb->mode == SANDBOX_OFF)
		return 0;
	pthread_mutex_lock(&sb->lock);
	pid_t me = (pid_t)syscall(SYS_gettid);
	unsigned long long st = start_time(me);
	int ret = 0;
	if (!is_done(sb, me, st)) {
		char name[32] = "";
		bool ok;
		prctl(PR_GET_NAME, name, 0, 0, 0);
		enum sandbox_class cls = class_of(me, name, &ok);
		int r = ok ? install(sb, &sb->prog[cls], -1) : -EPERM;
		if (r) {
			snprintf(err, errlen, "sandbox: thread '%s' cannot confine itself: %s", name,
				 ok ? strerror(-r) : "it has no class");
			ret = -1;
		} else {
			mark_done(sb, me, st);
			maybe_trigger(sb, cls);
		}
	}
	if (!ret)
		sb->vm_built = true;
	pthread_mutex_unlock(&sb->lock);
	return ret;
}

/* Build the Landlock ruleset for cfg and restrict the calling thread. */
static int landlock_begin(struct sandbox *sb, const struct vm_config *cfg, char *err, size_t errlen)
{
	struct sandbox_paths all = { 0 };
	int fd = -1;
	if (sandbox_paths_of_config(&all, cfg))
		goto oom;
	for (size_t i = 0; i < sb->paths.n; i++)
		if (sandbox_paths_add(&all, sb->paths.v[i].path, sb->paths.v[i].dir, sb->paths.v[i].write))
			goto oom;
	fd = sandbox_landlock_ruleset(&all, err, errlen);
	sandbox_paths_free(&all);
	if (fd == -2) {
		/* Said once: a VM rebuilt later does not come here again. */
		fprintf(stderr, "skiff: sandbox: %s\n", err);
		sb->landlock_done = true;
		return 0;
	}
	if (fd < 0)
		return -1;
	int r = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ? -errno : sandbox_landlock_restrict(fd);
	if (r) {
		close(fd);
		snprintf(err, errlen, "sandbox: cannot restrict the VMM with Landlock: %s", strerror(-r));
		return -1;
	}
	sb->landlock_fd = fd;
	return 0;
oom:
	sandbox_paths_free(&all);
	snprintf(err, errlen, "sandbox: out of memory");
	return -1;
}

int sandbox_vm_built(struct sandbox *sb, struct vm *vm, const struct vm_config *cfg,
		     char *err, size_t errlen)
{
	if (!sb || sb->mode == SANDBOX_OFF)
		return 0;
	/* The first VM built: Landlock for an ordinary user (as root, the
	 * jail confines the files when asked). The caller now, every other
	 * thread below; threads started later inherit it. */
	if (!sb->landlock_done && geteuid() != 0 &&
	    landlock_begin(sb, cfg, err, errlen))
		return -1;
	if (!sb->limits_set) {
		if (sandbox_set_limits(vm, cfg, err, errlen))
			return -1;
		sb->limits_set = true;
		atomic_store(&sb->caps, sandbox_caps_needed(cfg));
	}
	vm->thread_hook = sb->hook;
	int r = sandbox_confine_others(sb, err, errlen);
	if (sb->landlock_fd >= 0) {
		close(sb->landlock_fd);
		sb->landlock_fd = -1;
	}
	sb->landlock_done = true;
	atomic_store(&sb->landlock_pending, false);
	return r;
}

/* thread_hook.start: on a VM's new thread, named, before its work. */
static int thread_begin(void *arg, const char *name)
{
	struct sandbox *sb = arg;
	if (!sb || sb->mode == SANDBOX_OFF || atomic_load(&sb->landlock_pending))
		return 0;
	enum sandbox_class cls;
	if (!sandbox_class_of_name(name, &cls)) {
		say("skiff: sandbox: a thread named '");
		say(name);
		say("' has no class (sandbox.c's list of thread names): it does not run\n");
		return -1;
	}
	/* It inherited its starter's Landlock domain, if any. */
	int r = install(sb, &sb->prog[cls], -1);
	if (r) {
		say("skiff: sandbox: the thread '");
		say(name);
		say("' could not confine itself: it does not run\n");
		return -1;
	}
	maybe_trigger(sb, cls);
	return 0;
}

/* thread_hook.started: on the starting thread. The new thread confines
 * itself before its work, so the pass over the process's threads leaves
 * it alone (no signal round trip for it), whether or not it has run yet. */
static void thread_noted(void *arg, pid_t tid)
{
	struct sandbox *sb = arg;
	if (!sb || sb->mode == SANDBOX_OFF || tid <= 0 || atomic_load(&sb->landlock_pending))
		return;
	unsigned long long st = start_time(tid);
	if (!st)
		return;   /* it has ended already */
	pthread_mutex_lock(&sb->lock);
	mark_done(sb, tid, st);
	pthread_mutex_unlock(&sb->lock);
}

bool sandbox_spent(struct sandbox *sb)
{
	if (!sb || sb->mode == SANDBOX_OFF)
		return false;
	pthread_mutex_lock(&sb->lock);
	/* armed: the threads that ran before the build (the API's, the main
	 * one) were signalled and confine themselves when they run, and only
	 * a finished build collects them; limits_set: a build got as far as
	 * confining the others. (Threads that confined themselves as they
	 * started, a console socket's, never build a VM: they do not count.)
	 * Once a build succeeded, the only next one is a guest reboot's, on
	 * the thread that waits for the VM, which the filters allow. */
	bool spent = !sb->vm_built && (sb->armed || sb->limits_set);
	pthread_mutex_unlock(&sb->lock);
	return spent;
}

const struct thread_hook *sandbox_vm_threads(struct sandbox *sb, const struct vm_config *cfg)
{
	if (!sb || sb->mode == SANDBOX_OFF)
		return NULL;
	/* The threads drop capabilities as they confine themselves: those
	 * the first VM needs are known now. */
	if (!sb->limits_set)
		atomic_store(&sb->caps, sandbox_caps_needed(cfg));
	atomic_store(&sb->landlock_pending, !sb->landlock_done && geteuid() != 0);
	/* The threads already running (the main thread, the console's) are
	 * signalled now and answer while the VM is built. Not while the
	 * first pass has Landlock to bring: its ruleset needs the built VM's
	 * paths, and a filter installed first would refuse the call. */
	if (!atomic_load(&sb->landlock_pending)) {
		pthread_mutex_lock(&sb->lock);
		char err[256];
		if (!sb->armed && arm_others(sb, err, sizeof(err)) == 0)
			sb->armed = true;
		else if (!sb->armed)
			atomic_store(&sb->nslots, 0);   /* the pass after the build says why */
		pthread_mutex_unlock(&sb->lock);
	}
	return &sb->hook;
}
