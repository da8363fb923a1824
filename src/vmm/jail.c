/*
 * The jail (see jail.h): namespaces, a tmpfs root holding bind mounts of
 * the VM's own files, pivot_root, then the unprivileged uid and gid. The
 * steps follow Firecracker's jailer (a new root per VM, files brought in
 * by bind mounts or links, a dedicated uid/gid); the system calls are
 * those of namespaces(7), pivot_root(2) and mount(2).
 *
 * The child does the setup and tells the parent how it went through a
 * pipe: a message means it failed and has ended; the pipe closing with
 * nothing in it means the child is jailed and runs the VMM.
 */
#include "vmm/jail.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG(...) (snprintf(err, errlen, __VA_ARGS__), -1)

/* mkdir -p of `path` (absolute) beneath `root`; the last component too
 * unless `leaf_file`, when it is made an empty file (a mount point). */
static int make_point(const char *root, const char *path, bool leaf_file, char *err, size_t errlen)
{
	char full[PATH_MAX];
	if (snprintf(full, sizeof(full), "%s%s", root, path) >= (int)sizeof(full))
		return MSG("jail: %s: path too long", path);
	size_t rootlen = strlen(root);
	for (char *p = full + rootlen + 1;; p++) {
		if (*p != '/' && *p)
			continue;
		char c = *p;
		*p = 0;
		bool leaf = c == 0;
		struct stat st;
		if (leaf && leaf_file && lstat(full, &st) == 0)
			return 0;   /* there already: in a directory bound before (read only, maybe) */
		if (leaf && leaf_file) {
			int fd = open(full, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
			if (fd < 0 && errno != EISDIR)
				return MSG("jail: cannot make the mount point %s: %s", full, strerror(errno));
			if (fd >= 0)
				close(fd);
		} else if (mkdir(full, 0755) && errno != EEXIST) {
			return MSG("jail: cannot make %s: %s", full, strerror(errno));
		}
		if (leaf)
			return 0;
		*p = c;
	}
}

/* Bind `src` at the same path beneath `root`, then make it read only
 * unless `write`; no set-user-ID, no executables, and no device files
 * unless the source is one. */
static int bind_in(const char *root, const char *src, bool write, char *err, size_t errlen)
{
	struct stat st;
	if (stat(src, &st))
		return MSG("jail: %s: %s", src, strerror(errno));
	bool dev = S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode);
	if (make_point(root, src, !S_ISDIR(st.st_mode), err, errlen))
		return -1;
	char dst[PATH_MAX];
	snprintf(dst, sizeof(dst), "%s%s", root, src);
	if (mount(src, dst, NULL, MS_BIND, NULL))
		return MSG("jail: cannot bring %s in: %s", src, strerror(errno));
	unsigned long fl = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC | (dev ? 0 : MS_NODEV) |
			   (write ? 0 : MS_RDONLY);
	if (mount(NULL, dst, NULL, fl, NULL))
		return MSG("jail: cannot restrict %s: %s", src, strerror(errno));
	return 0;
}

/* Directories before files, parents before what lies beneath them: a file
 * bound inside a bound directory stays visible. */
static int order(const void *a, const void *b)
{
	const struct sandbox_path *x = a, *y = b;
	if (x->dir != y->dir)
		return x->dir ? -1 : 1;
	size_t lx = strlen(x->path), ly = strlen(y->path);
	return lx < ly ? -1 : lx > ly;
}

static int build_tree(const struct jail_opts *o, const struct sandbox_paths *paths, const char *cwd,
		      char *err, size_t errlen);

/* Everything the child does as root, in its new namespaces. */
static int build_root(const struct jail_opts *o, const struct sandbox_paths *paths, const char *cwd,
		      char *err, size_t errlen)
{
	/* The jail's directories must be searchable by its uid whatever
	 * umask skiff was started with (skiffd's is 077). */
	mode_t old_mask = umask(022);
	int r = build_tree(o, paths, cwd, err, errlen);
	umask(old_mask);
	return r;
}

/* build_root's steps, under umask 022. */
static int build_tree(const struct jail_opts *o, const struct sandbox_paths *paths, const char *cwd,
		      char *err, size_t errlen)
{
	const char *root = o->dir;
	/* Nothing mounted here leaks back to the host's namespace. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return MSG("jail: cannot make the mounts private: %s", strerror(errno));
	if (mkdir(root, 0700) && errno != EEXIST)
		return MSG("jail: cannot make %s: %s", root, strerror(errno));
	if (mount("skiff-jail", root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "mode=0755,size=1m,nr_inodes=4096"))
		return MSG("jail: cannot mount a tmpfs on %s: %s", root, strerror(errno));
	struct sandbox_path *v = malloc((paths->n + 1) * sizeof(*v));
	if (!v)
		return MSG("jail: out of memory");
	memcpy(v, paths->v, paths->n * sizeof(*v));
	qsort(v, paths->n, sizeof(*v), order);
	int r = 0;
	for (size_t i = 0; !r && i < paths->n; i++)
		r = bind_in(root, v[i].path, v[i].write, err, errlen);
	free(v);
	if (r || bind_in(root, "/dev/null", true, err, errlen))
		return -1;
	char proc[PATH_MAX];
	snprintf(proc, sizeof(proc), "%s/proc", root);
	if (mkdir(proc, 0555) ||
	    mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
		return MSG("jail: cannot mount /proc: %s", strerror(errno));
	if (cwd && make_point(root, cwd, false, err, errlen))
		return -1;
	/* The root itself is read only: the VMM writes only where it was given. */
	if (mount(NULL, root, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
		return MSG("jail: cannot make the root read only: %s", strerror(errno));
	if (chdir(root) || syscall(SYS_pivot_root, ".", ".") || umount2(".", MNT_DETACH))
		return MSG("jail: cannot enter %s (pivot_root): %s", root, strerror(errno));
	if (chdir(cwd && *cwd ? cwd : "/") && chdir("/"))
		return MSG("jail: no working directory: %s", strerror(errno));
	const char *host = o->hostname ? o->hostname : "skiff";
	if (sethostname(host, strlen(host)))
		return MSG("jail: cannot set the host name: %s", strerror(errno));
	if (setgroups(0, NULL) || setresgid(o->gid, o->gid, o->gid) || setresuid(o->uid, o->uid, o->uid))
		return MSG("jail: cannot become uid %u gid %u: %s", (unsigned)o->uid, (unsigned)o->gid,
			   strerror(errno));
	/* Changing uid made the process undumpable, which gives its own
	 * /proc/self/fd and pagemap to root: 9p and snapshots read them. (Core
	 * dumps stay off: the sandbox's core limit is 0.) The parent-death
	 * signal was cleared too. */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) || prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0))
		return MSG("jail: prctl: %s", strerror(errno));
	return 0;
}

/* The stop signals the parent passes on. */
static const int stop_sigs[] = { SIGTERM, SIGINT, SIGHUP };

/* The child is process 1 of its PID namespace, to which the kernel
 * delivers a signal from outside only when it has a handler, and drops
 * it otherwise. Until the VMM installs its own (base/terminal.c, which
 * also unblocks them), this one is there and the signals stay blocked, so
 * that one sent meanwhile waits instead of being lost. */
static void held(int sig)
{
	(void)sig;
}

/* The parent: pass the stop signals on until the child ends. */
static int wait_child(pid_t child, const sigset_t *set)
{
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(set, &si);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		int status;
		pid_t r = waitpid(child, &status, WNOHANG);
		if (r != child)
			continue;
		if (WIFEXITED(status))
			return WEXITSTATUS(status);
		int s = WTERMSIG(status);
		/* End the same way, so callers see the signal; no core file. */
		struct rlimit none = { 0, 0 };
		setrlimit(RLIMIT_CORE, &none);
		signal(s, SIG_DFL);
		sigset_t one;
		sigemptyset(&one);
		sigaddset(&one, s);
		sigprocmask(SIG_UNBLOCK, &one, NULL);
		raise(s);
		return 128 + s;
	}
}

enum jail_side jail_enter(const struct jail_opts *o, const struct sandbox_paths *paths, int *status,
			  char *err, size_t errlen)
{
	if (geteuid() != 0) {
		snprintf(err, errlen, "--jail needs root (as an ordinary user the VMM is confined by Landlock)");
		return JAIL_FAILED;
	}
	char cwd[PATH_MAX];
	bool have_cwd = getcwd(cwd, sizeof(cwd)) != NULL;
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC)) {
		snprintf(err, errlen, "jail: pipe: %s", strerror(errno));
		return JAIL_FAILED;
	}
	/* Our own PID namespace, to go back to for later children (below). */
	int own_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	if (own_pidns < 0 || unshare(CLONE_NEWPID)) {
		snprintf(err, errlen, "jail: cannot make a PID namespace: %s", strerror(errno));
		if (own_pidns >= 0)
			close(own_pidns);
		close(pipefd[0]);
		close(pipefd[1]);
		return JAIL_FAILED;
	}
	sigset_t set, old;
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(stop_sigs) / sizeof(stop_sigs[0]); i++)
		sigaddset(&set, stop_sigs[i]);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &old);
	pid_t child = fork();
	if (child < 0) {
		snprintf(err, errlen, "jail: fork: %s", strerror(errno));
		sigprocmask(SIG_SETMASK, &old, NULL);
		setns(own_pidns, CLONE_NEWPID);   /* as below */
		close(own_pidns);
		close(pipefd[0]);
		close(pipefd[1]);
		return JAIL_FAILED;
	}
	if (child == 0) {
		sigset_t mask = old;
		struct sigaction h = { .sa_handler = held };
		sigemptyset(&h.sa_mask);
		for (size_t i = 0; i < sizeof(stop_sigs) / sizeof(stop_sigs[0]); i++) {
			sigaction(stop_sigs[i], &h, NULL);
			sigaddset(&mask, stop_sigs[i]);
		}
		sigprocmask(SIG_SETMASK, &mask, NULL);
		close(pipefd[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		int ns = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (o->new_net ? CLONE_NEWNET : 0);
		int r = unshare(ns) ? MSG("jail: cannot make namespaces: %s", strerror(errno)) :
			build_root(o, paths, have_cwd ? cwd : NULL, err, errlen);
		if (r) {
			ssize_t w = write(pipefd[1], err, strlen(err));
			(void)w;
			_exit(64);
		}
		close(own_pidns);
		close(pipefd[1]);
		return JAIL_INSIDE;
	}
	/* The parent's later children go to its own namespace again: once
	 * the jail's process 1 ends, its namespace takes no new process, and
	 * a fork then (LeakSanitizer's tracer at exit, in sanitizer builds)
	 * fails. */
	if (setns(own_pidns, CLONE_NEWPID))
		fprintf(stderr, "skiff run: jail: cannot return to the PID namespace: %s\n", strerror(errno));
	close(own_pidns);
	close(pipefd[1]);
	ssize_t n;
	do
		n = read(pipefd[0], err, errlen - 1);
	while (n < 0 && errno == EINTR);
	close(pipefd[0]);
	if (n > 0) {
		err[n] = 0;
		waitpid(child, NULL, 0);
		sigprocmask(SIG_SETMASK, &old, NULL);
		return JAIL_FAILED;
	}
	*status = wait_child(child, &set);
	return JAIL_PARENT;
}
