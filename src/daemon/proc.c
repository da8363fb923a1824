/*
 * skiffd's VMM processes: starting one detached from skiffd (own session
 * and process group, console and messages to a log file, a pid file written
 * atomically), recognising one again after a skiffd restart (pid file, the
 * process's start time and command line, its API answering), stopping one,
 * and noticing when one has ended.
 *
 * Locking (skiffd.h): a start or stop runs with the VM's op lock held and
 * takes the daemon's lock only for the moments it reads or changes the
 * record, never while it waits for the VMM. Each started VMM is reaped by
 * its own pid (never waitpid(-1)), so the main thread's reaper cannot take
 * the status of a child another thread waits for (a start's, a jail
 * helper's).
 */
#include "daemon/skiffd.h"
#include "daemon/vm_image.h"
#include "base/fd_io.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/close_range.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/uhttp.h"

#define START_TIMEOUT_MS 20000
#define STOP_GRACE_MS 10000
#define KILL_WAIT_MS 5000

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int skiffd_read_proc_stat(pid_t pid, struct skiffd_proc_stat *st)
{
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (fd_read_small(path, buf, sizeof(buf)) <= 0)
		return -1;
	/* The command name may hold spaces and parentheses: fields start
	 * after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -1;
	p += 2;
	/* Fields from 3 (state) on. */
	char *save = NULL;
	int field = 3;
	memset(st, 0, sizeof(*st));
	for (char *tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
		switch (field) {
		case 3: st->state = tok[0]; break;
		case 4: st->ppid = (pid_t)strtol(tok, NULL, 10); break;
		case 14: st->utime = strtoull(tok, NULL, 10); break;
		case 15: st->stime = strtoull(tok, NULL, 10); break;
		case 20: st->threads = strtol(tok, NULL, 10); break;
		case 22: st->starttime = strtoull(tok, NULL, 10); break;
		case 24: st->rss_pages = strtol(tok, NULL, 10); return 0;
		}
	}
	return field > 22 ? 0 : -1;
}

bool skiffd_vm_alive(struct skiffd *d, struct skiffd_vm *vm)
{
	(void)d;
	struct skiffd_proc_stat st;
	if (vm->pid <= 0 || skiffd_read_proc_stat(vm->pid, &st))
		return false;
	return st.state != 'Z' && st.state != 'X' && st.starttime == vm->starttime;
}

uint64_t skiffd_running_mem_mib(struct skiffd *d)
{
	uint64_t sum = 0;
	for (struct skiffd_vm *vm = d->vms; vm; vm = vm->next)
		if (vm->pid > 0 || vm->starting)
			sum += vm->mem_mib;
	return sum;
}

/* Does /proc/PID/cmdline say `skiff run ... --api-sock API`? */
static bool cmdline_matches(pid_t pid, const char *api)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	char buf[8192];
	ssize_t n = fd_read_small(path, buf, sizeof(buf));
	if (n <= 0)
		return false;
	bool run = false;
	for (char *a = buf; a < buf + n; a += strlen(a) + 1) {
		if (!strcmp(a, "run"))
			run = true;
		if (run && !strcmp(a, "--api-sock")) {
			char *next = a + strlen(a) + 1;
			return next < buf + n && !strcmp(next, api);
		}
	}
	return false;
}

/* Does the VM's API socket answer GET /? */
static bool api_answers(struct skiffd_vm *vm, long timeout_ms)
{
	char *sock = skiffd_vm_sock(vm, "api.sock");
	if (!sock)
		return false;
	struct uhttp_reply r;
	char err[256];
	bool ok = false;
	if (uhttp_call(sock, "GET", "/", NULL, timeout_ms, &r, err, sizeof(err)) == 0) {
		ok = r.status == 200;
		uhttp_reply_free(&r);
	}
	free(sock);
	return ok;
}

static void unlink_in(struct skiffd_vm *vm, const char *file)
{
	char *p = skiffd_vm_path(vm, file);
	if (p)
		unlink(p);
	free(p);
}

static void unlink_run(struct skiffd_vm *vm, const char *file)
{
	char *p = skiffd_vm_run_path(vm, file);
	if (p)
		unlink(p);
	free(p);
}

bool skiffd_vm_running(const struct skiffd_vm *vm)
{
	return vm->pid > 0;
}

/* The VMM process is gone: remember how it ended (d->lock held). A stop
 * asked for by InstanceStop or DELETE counts as stopped whoever saw the
 * end. */
static void record_exit(struct skiffd_vm *vm, bool known, int status, bool stopped)
{
	stopped = stopped || vm->stopping;
	vm->stopping = false;
	vm->has_exit = true;
	vm->last_exit = (struct skiffd_exit){ .known = known, .stopped = stopped, .at = time(NULL) };
	if (known) {
		if (WIFSIGNALED(status))
			vm->last_exit.signal = WTERMSIG(status);
		else
			vm->last_exit.code = WEXITSTATUS(status);
	}
	skiffd_log("vm %s (pid %d) ended: %s", vm->id, (int)vm->pid,
		   !known ? "while no skiffd was watching" :
		   WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "exited");
	vm->pid = 0;
	vm->vmm_pid = 0;
	vm->child = false;
	skiffd_cgroup_remove(vm);
	unlink_in(vm, "pid");
	unlink_run(vm, "api.sock");
	unlink_run(vm, "console.sock");
	/* old_layout stays until the next start (which clears it): it is
	 * read outside d->lock by whoever holds vm->op. */
	if (vm->old_layout) {
		unlink_in(vm, "api.sock");
		unlink_in(vm, "console.sock");
	}
	char err[512];
	if (skiffd_save_vm(vm, err, sizeof(err)))
		skiffd_log("vm %s: %s", vm->id, err);
}

void skiffd_adopt(struct skiffd *d, struct skiffd_vm *vm)
{
	char *pidf = skiffd_vm_path(vm, "pid"), *api = skiffd_vm_run_path(vm, "api.sock");
	FILE *f = pidf ? fopen(pidf, "re") : NULL;
	if (!f) {
		free(pidf);
		free(api);
		return; /* not running */
	}
	int pid = 0;
	unsigned long long start = 0;
	long long started_at = 0;
	int got = fscanf(f, "%d %llu %lld", &pid, &start, &started_at);
	fclose(f);
	vm->pid = pid;
	vm->starttime = start;
	vm->started_at = started_at;
	vm->child = false;
	/* One started by a skiffd before run/ has its sockets beside vm.json. */
	char *old = skiffd_vm_path(vm, "api.sock");
	vm->old_layout = api && old && got >= 2 && pid > 0 && !cmdline_matches(pid, api) &&
			 cmdline_matches(pid, old);
	free(old);
	if (vm->old_layout)
		skiffd_log("vm %s: its VMM (pid %d) was started by an older skiffd: not confined by this "
			   "one until it is started again", vm->id, pid);
	if (got < 2 || pid <= 0 || !skiffd_vm_alive(d, vm) || !api ||
	    (!vm->old_layout && !cmdline_matches(pid, api))) {
		skiffd_log("vm %s: its VMM (pid %d) is gone; listed as stopped", vm->id, pid);
		record_exit(vm, false, 0, false);
	} else {
		/* A VMM that was just starting may take a moment to answer. */
		bool ok = false;
		for (int i = 0; i < 10 && !ok; i++) {
			ok = api_answers(vm, 1000);
			if (!ok)
				sleep_ms(200);
		}
		vm->vmm_pid = skiffd_find_vmm(pid);
		skiffd_log("vm %s: adopted its running VMM (pid %d)%s", vm->id, pid,
			   ok ? "" : ", but its API does not answer (listed as unresponsive)");
	}
	free(pidf);
	free(api);
}

/* Up to the last `max` bytes of the VM's console log, for messages. */
static void log_tail(struct skiffd_vm *vm, char *out, size_t max)
{
	out[0] = 0;
	char *p = skiffd_vm_path(vm, "console.log");
	int fd = p ? open(p, O_RDONLY | O_CLOEXEC) : -1;
	free(p);
	if (fd < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > (off_t)(max - 1) ? end - (off_t)(max - 1) : 0;
	ssize_t n = pread(fd, out, max - 1, from);
	close(fd);
	if (n < 0)
		n = 0;
	out[n] = 0;
	/* Trailing newlines out; other control bytes as spaces. */
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = 0;
	for (ssize_t i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 && out[i] != '\n')
			out[i] = ' ';
}

/* config.json for the VMM: the definition's sections, with a metrics file
 * in the VM's run/ directory unless the definition names its own. */
static int write_vmm_config(struct skiffd_vm *vm, char *err, size_t errlen)
{
	json_t *cfg = json_deep_copy(vm->config);
	char *metrics = skiffd_vm_run_path(vm, "metrics.json"), *path = skiffd_vm_path(vm, "config.json");
	int r = -1;
	if (cfg && metrics && path) {
		if (!json_object_get(cfg, "metrics"))
			json_object_set_new(cfg, "metrics", json_pack("{s:s}", "metrics_path", metrics));
		char *text = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS);
		if (text) {
			r = skiffd_write_atomic(path, text, strlen(text), err, errlen);
			free(text);
		} else {
			snprintf(err, errlen, "out of memory");
		}
	} else {
		snprintf(err, errlen, "out of memory");
	}
	json_decref(cfg);
	free(metrics);
	free(path);
	return r;
}

/* In the child between fork and exec: only async-signal-safe calls. */
static void child_exec(const char *dir, int logfd, int failfd, int cgfd, const char *prog,
		       char *const argv[])
{
	setsid();
	/* Into the VM's cgroup before anything is allocated (cgroup.c). */
	if (cgfd >= 0) {
		ssize_t w = write(cgfd, "0", 1);
		(void)w;
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	static const int sigs[] = { SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGQUIT };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	int err = 0;
	if (chdir(dir))
		err = errno;
	int nullfd = open("/dev/null", O_RDONLY);
	if (!err && (nullfd < 0 || dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0))
		err = errno;
	if (!err) {
		/* Nothing else of skiffd's (its API socket, its lock) goes along;
		 * failfd is close-on-exec already, so it closes on success. */
		if (close_range(3, ~0u, CLOSE_RANGE_CLOEXEC))
			for (int fd = 3; fd < 4096; fd++)
				fcntl(fd, F_SETFD, FD_CLOEXEC);
		execv(prog, argv);
		err = errno;
	}
	ssize_t w = write(failfd, &err, sizeof(err));
	(void)w;
	_exit(127);
}

/* Wait for the started VMM's API to answer, or for it to end (a
 * configuration it refuses); vm->op held, d->lock not. 0 once it answers
 * (or is left running after START_TIMEOUT_MS), -1 with err once it ended. */
static int wait_started(struct skiffd *d, struct skiffd_vm *vm, pid_t pid, const char *api, char *err,
			size_t errlen)
{
	for (long waited = 0; waited < START_TIMEOUT_MS; waited += 50) {
		pthread_mutex_lock(&d->lock);
		int status;
		if (vm->pid == pid && waitpid(pid, &status, WNOHANG) == pid)
			record_exit(vm, true, status, false);
		/* Ended: recorded here, or by the reaper, or stopped by a DELETE. */
		bool ended = vm->pid != pid;
		struct skiffd_exit ex = vm->last_exit;
		pthread_mutex_unlock(&d->lock);
		if (ended) {
			char tail[600];
			log_tail(vm, tail, sizeof(tail));
			/* The usual cause when jailed: a file the jail's uid cannot use. */
			char hint[160] = "";
			if (d->jail.on && strstr(tail, "Permission denied"))
				snprintf(hint, sizeof(hint), " (skiffd runs this VM's VMM as uid %u gid %u: "
					 "its files must be readable, and writable disks writable, by them)",
					 (unsigned)vm->jail_uid, (unsigned)d->jail.gid);
			if (ex.stopped)
				snprintf(err, errlen, "vm `%s` was stopped while it started", vm->id);
			else
				snprintf(err, errlen, "vm `%s`: the VMM ended at start (%s %d): %s%s", vm->id,
					 ex.signal ? "signal" : "status", ex.signal ? ex.signal : ex.code,
					 tail[0] ? tail : "(no output)", hint);
			return -1;
		}
		if (access(api, F_OK) == 0 && api_answers(vm, 1000))
			return 0;
		sleep_ms(50);
	}
	skiffd_log("vm %s: its API did not answer within %d s; it is left running", vm->id,
		   START_TIMEOUT_MS / 1000);
	return 0;
}

/* The checks and reservations of a start, under d->lock: not running, its
 * memory within the limit (counted as running from now on), its jail uid.
 * 0 or -1 with err. */
static int start_admit(struct skiffd *d, struct skiffd_vm *vm, char *err, size_t errlen)
{
	if (vm->removed || vm->deleting) {
		snprintf(err, errlen, "vm `%s` is being deleted", vm->id);
		return -1;
	}
	if (vm->pid > 0) {
		snprintf(err, errlen, "vm `%s` is already running (pid %d)", vm->id, (int)vm->pid);
		return -1;
	}
	uint64_t used = skiffd_running_mem_mib(d);
	if (used + vm->mem_mib > d->mem_limit_mib) {
		snprintf(err, errlen,
			 "cannot start vm `%s`: it needs %" PRIu64 " MiB of guest memory, running VMs already have "
			 "%" PRIu64 " MiB, and the limit is %" PRIu64 " MiB (%s); %" PRIu64 " MiB is free",
			 vm->id, vm->mem_mib, used, d->mem_limit_mib,
			 d->mem_limit_given ? "skiffd --mem-limit" : "the host's RAM; set skiffd --mem-limit",
			 used < d->mem_limit_mib ? d->mem_limit_mib - used : 0);
		return -1;
	}
	/* A VM that had no jail uid free when skiffd started may get one now. */
	uid_t had = vm->jail_uid;
	if (skiffd_jail_assign(d, vm, err, errlen))
		return -1;
	if (vm->jail_uid != had && skiffd_save_vm(vm, err, errlen))
		return -1;
	if (skiffd_image_start(d, vm, err, errlen))
		return -1;
	vm->starting = true;
	return 0;
}

int skiffd_start_vm(struct skiffd *d, struct skiffd_vm *vm, char *err, size_t errlen)
{
	pthread_mutex_lock(&d->lock);
	skiffd_reap(d);   /* a VM that just ended must not count */
	int admitted = start_admit(d, vm, err, errlen);
	pthread_mutex_unlock(&d->lock);
	if (admitted)
		return -1;
	char *api = skiffd_vm_run_path(vm, "api.sock"), *con = skiffd_vm_run_path(vm, "console.sock");
	char *cfg = skiffd_vm_path(vm, "config.json"), *log = skiffd_vm_path(vm, "console.log");
	char *old = skiffd_vm_path(vm, "console.log.1"), *pidf = skiffd_vm_path(vm, "pid");
	int rc = -1, logfd = -1, cgfd = -1, pipefd[2] = { -1, -1 };
	char kerr_buf[512];
	if (!api || !con || !cfg || !log || !old || !pidf) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* Made from a snapshot: the first start loads it through the API. */
	if (skiffd_vm_run_dir(d, vm, NULL, err, errlen) || (!vm->restore && write_vmm_config(vm, err, errlen)))
		goto out;
	/* Left over from a VMM that did not end cleanly. */
	unlink(api);
	unlink(con);
	/* The previous run's log is kept as console.log.1. */
	if (rename(log, old) && errno != ENOENT)
		skiffd_log("vm %s: cannot keep the old console log: %s", vm->id, strerror(errno));
	logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (logfd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", log, strerror(errno));
		goto out;
	}
	/* A capped log is reopened by the VMM (cli/log_cap.c), in its jail. */
	if (skiffd_hand_over(d, vm, logfd, err, errlen))
		goto out;
	if (pipe2(pipefd, O_CLOEXEC)) {
		snprintf(err, errlen, "cannot start vm `%s`: %s", vm->id, strerror(errno));
		goto out;
	}
	/* Jailed as root; as an ordinary user Landlock is the VMM's default.
	 * Either way it writes only in run/ (vm_jail.c). */
	char root[PATH_MAX], ids[2][16];
	const char *jail[7];
	size_t njail = skiffd_sandbox_args(d, vm, root, sizeof(root), ids, jail);
	const char *argv[24] = { d->vmm_path, "run", "--id", vm->id, "--api-sock", api, "--console-sock",
				 con, "--console-log-max", d->console_log_max };
	size_t argc = 10;
	for (size_t i = 0; i < njail; i++)
		argv[argc++] = jail[i];
	if (!vm->restore) {   /* else configured by the snapshot */
		argv[argc++] = "--config-file";
		argv[argc++] = cfg;
	}
	argv[argc] = NULL;
	pthread_mutex_lock(&d->lock);
	cgfd = skiffd_cgroup_prepare(d, vm);
	pthread_mutex_unlock(&d->lock);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "cannot start vm `%s`: fork: %s", vm->id, strerror(errno));
		goto out;
	}
	if (pid == 0)
		child_exec(vm->dir, logfd, pipefd[1], cgfd, d->vmm_path, (char *const *)argv);
	if (cgfd >= 0)
		close(cgfd);
	cgfd = -1;
	close(pipefd[1]);
	pipefd[1] = -1;
	int child_err = 0;
	ssize_t got;
	do {
		got = read(pipefd[0], &child_err, sizeof(child_err));
	} while (got < 0 && errno == EINTR);
	if (got > 0) {
		/* Nobody else reaps a child that is not in the record yet. */
		waitpid(pid, NULL, 0);
		snprintf(err, errlen, "cannot run the VMM %s for vm `%s`: %s", d->vmm_path, vm->id,
			 strerror(child_err));
		goto out;
	}
	struct skiffd_proc_stat st;
	unsigned long long starttime = skiffd_read_proc_stat(pid, &st) == 0 ? st.starttime : 0;
	pthread_mutex_lock(&d->lock);
	vm->pid = pid;
	vm->vmm_pid = pid;     /* until its API answers (a jail's VMM is its child) */
	vm->child = true;
	vm->started_at = time(NULL);
	vm->starttime = starttime;
	vm->starting = false;
	vm->stopping = false;
	vm->old_layout = false;
	char line[96];
	int len = snprintf(line, sizeof(line), "%d %llu %lld\n", (int)pid, vm->starttime,
			   (long long)vm->started_at);
	char werr[512];
	if (skiffd_write_atomic(pidf, line, (size_t)len, werr, sizeof(werr)))
		skiffd_log("vm %s: %s (a restarted skiffd will not adopt it)", vm->id, werr);
	/* A DELETE that came while the process was not in the record yet. */
	if (vm->deleting)
		skiffd_signal_stop(vm);
	pthread_mutex_unlock(&d->lock);
	skiffd_log("vm %s: started its VMM (pid %d, %u vCPUs, %" PRIu64 " MiB)", vm->id, (int)pid,
		   vm->vcpus, vm->mem_mib);

	if (wait_started(d, vm, pid, api, err, errlen))
		goto out;
	rc = 0;
	/* Its API answers: a jailed VMM runs by now. */
	pid_t inner = skiffd_find_vmm(pid);
	pthread_mutex_lock(&d->lock);
	if (vm->pid == pid)
		vm->vmm_pid = inner;
	int brought = vm->restore ? skiffd_bring_in_config(d, vm, err, errlen) : 0;
	pthread_mutex_unlock(&d->lock);
	if (vm->restore && (brought || skiffd_vm_load_snapshot(vm, err, errlen))) {
		char kerr[256];
		skiffd_stop_vm(d, vm, kerr, sizeof(kerr));
		rc = -1;
	} else if (vm->restore) {
		pthread_mutex_lock(&d->lock);
		json_decref(vm->restore);
		vm->restore = NULL;
		if (skiffd_save_vm(vm, kerr_buf, sizeof(kerr_buf)))
			skiffd_log("vm %s: %s", vm->id, kerr_buf);
		pthread_mutex_unlock(&d->lock);
	}
out:
	pthread_mutex_lock(&d->lock);
	vm->starting = false;
	if (cgfd >= 0)
		close(cgfd);
	if (rc && !vm->pid)
		skiffd_cgroup_remove(vm);
	pthread_mutex_unlock(&d->lock);
	if (logfd >= 0)
		close(logfd);
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	free(api);
	free(con);
	free(cfg);
	free(log);
	free(old);
	free(pidf);
	return rc;
}

/* Wait up to `ms` for the VM's process `pid` to end; true once it has
 * (and it is recorded: here, or by the reaper). vm->op held. */
static bool wait_gone(struct skiffd *d, struct skiffd_vm *vm, pid_t pid, long ms)
{
	for (long waited = 0;; waited += 20) {
		pthread_mutex_lock(&d->lock);
		bool gone = vm->pid != pid;
		if (!gone && vm->child) {
			int status;
			pid_t r = waitpid(pid, &status, WNOHANG);
			if (r == pid) {
				record_exit(vm, true, status, true);
				gone = true;
			} else if (r < 0 && errno == ECHILD) {
				vm->child = false; /* reaped elsewhere; fall through to /proc */
			}
		}
		if (!gone && !vm->child && !skiffd_vm_alive(d, vm)) {
			record_exit(vm, false, 0, true);
			gone = true;
		}
		pthread_mutex_unlock(&d->lock);
		if (gone)
			return true;
		if (waited >= ms)
			return false;
		sleep_ms(20);
	}
}

void skiffd_signal_stop(struct skiffd_vm *vm)
{
	if (vm->pid <= 0)
		return;
	vm->stopping = true;
	/* A child is ours until reaped (its pid cannot be reused); an adopted
	 * one is checked first. */
	if (vm->child || skiffd_vm_alive(NULL, vm))
		kill(vm->pid, SIGTERM);
}

int skiffd_stop_vm(struct skiffd *d, struct skiffd_vm *vm, char *err, size_t errlen)
{
	pthread_mutex_lock(&d->lock);
	pid_t pid = vm->pid;
	bool ended = pid > 0 && !vm->child && !skiffd_vm_alive(d, vm);
	if (ended)
		record_exit(vm, false, 0, true);
	else if (pid > 0)
		skiffd_signal_stop(vm);   /* SIGTERM: the VMM ends the guest at once and exits cleanly */
	pthread_mutex_unlock(&d->lock);
	if (pid <= 0) {
		snprintf(err, errlen, "vm `%s` is not running", vm->id);
		return -1;
	}
	if (ended || wait_gone(d, vm, pid, STOP_GRACE_MS))
		return 0;
	skiffd_log("vm %s: pid %d did not end within %d s of SIGTERM; sending SIGKILL", vm->id, (int)pid,
		   STOP_GRACE_MS / 1000);
	pthread_mutex_lock(&d->lock);
	if (vm->pid == pid && (vm->child || skiffd_vm_alive(d, vm)))
		kill(pid, SIGKILL);
	pthread_mutex_unlock(&d->lock);
	if (wait_gone(d, vm, pid, KILL_WAIT_MS))
		return 0;
	snprintf(err, errlen, "vm `%s`: pid %d did not end even after SIGKILL", vm->id, (int)pid);
	return -1;
}

void skiffd_reap(struct skiffd *d)
{
	for (struct skiffd_vm *vm = d->vms; vm; vm = vm->next) {
		if (vm->pid <= 0)
			continue;
		int status;
		if (vm->child) {
			pid_t r = waitpid(vm->pid, &status, WNOHANG);
			if (r == vm->pid)
				record_exit(vm, true, status, false);
			else if (r < 0 && errno == ECHILD)
				vm->child = false;
		}
		if (vm->pid > 0 && !vm->child && !skiffd_vm_alive(d, vm))
			record_exit(vm, false, 0, false);
	}
}
