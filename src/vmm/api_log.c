/* The VMM's log and metrics outputs; see api_log.h. */
#include "vmm/api_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

/* The kernel's own interfaces look like regular files (/proc/self/mem,
 * /sys/...) but writing them is not logging: refused by file system. */
static bool kernel_interface(const struct statfs *sf)
{
	switch ((unsigned long)sf->f_type) {
	case PROC_SUPER_MAGIC: case SYSFS_MAGIC: case DEBUGFS_MAGIC: case TRACEFS_MAGIC:
	case SECURITYFS_MAGIC: case CGROUP_SUPER_MAGIC: case CGROUP2_SUPER_MAGIC:
	case BPF_FS_MAGIC: case DEVPTS_SUPER_MAGIC:
		return true;
	}
	return false;
}

/* A file is created if missing; a named pipe is opened read-write so that
 * opening does not fail or block when nobody reads it yet. Only a regular
 * file or a named pipe, not a symlink (O_NOFOLLOW) and not a kernel
 * interface: the API names this path, and /proc/self/mem is a "regular
 * file" too. The file system is checked before opening (opening some
 * kernel files does something) and again on what was opened. */
static int open_output(const char *path, const char *what, char *err, size_t errlen)
{
	struct statfs sf;
	if (statfs(path, &sf) == 0 && kernel_interface(&sf)) {
		snprintf(err, errlen, "%s: '%s' is a kernel interface file, not a log file", what, path);
		return -1;
	}
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW,
		      0600);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: cannot open '%s': %s", what, path,
			 e == ELOOP ? "it is a symbolic link (give the file itself)" : strerror(e));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) || !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode))) {
		snprintf(err, errlen, "%s: '%s' is not a file or named pipe", what, path);
		close(fd);
		return -1;
	}
	if (fstatfs(fd, &sf) || kernel_interface(&sf)) {
		snprintf(err, errlen, "%s: '%s' is a kernel interface file, not a log file", what, path);
		close(fd);
		return -1;
	}
	return fd;
}

const char *vmm_logger_open(struct vmm_logger *out, const struct vmm_logger_config *cfg,
			    char *err, size_t errlen)
{
	int fd;
	if (cfg->log_path) {
		fd = open_output(cfg->log_path, "logger.log_path", err, errlen);
		if (fd < 0)
			return err;
	} else {
		fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			snprintf(err, errlen, "logger: cannot use standard error: %s", strerror(errno));
			return err;
		}
	}
	out->fd = fd;
	out->level = cfg->level;
	out->show_level = cfg->show_level;
	out->show_origin = cfg->show_log_origin;
	out->dropped = 0;
	return NULL;
}

void vmm_logger_close(struct vmm_logger *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}

bool vmm_write_line(int fd, const char *line)
{
	size_t n = strlen(line);
	char *buf = malloc(n + 1);
	if (!buf)
		return false;
	memcpy(buf, line, n);
	buf[n] = '\n';
	/* One write, so that lines from different writers never interleave. */
	ssize_t w;
	do
		w = write(fd, buf, n + 1);
	while (w < 0 && errno == EINTR);
	free(buf);
	return w == (ssize_t)(n + 1);
}

void vmm_logger_write(struct vmm_logger *l, const char *id, const char *thread,
		      enum vmm_log_level level, const char *file, int line, const char *msg)
{
	if (l->fd < 0 || level == VMM_LOG_OFF || level > l->level)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char when[40];
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	char tag[256];
	int n = snprintf(tag, sizeof(tag), "%s:%s", id, thread);
	if (l->show_level && n >= 0 && (size_t)n < sizeof(tag))
		n += snprintf(tag + n, sizeof(tag) - (size_t)n, ":%s", vmm_log_level_name(level));
	if (l->show_origin && n >= 0 && (size_t)n < sizeof(tag))
		snprintf(tag + n, sizeof(tag) - (size_t)n, ":%s:%d", file, line);
	char out[2048];
	snprintf(out, sizeof(out), "%s.%09ld [%s] %s", when, (long)ts.tv_nsec, tag, msg);
	/* A message may hold user input: keep it on one line. */
	for (char *p = out; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (!vmm_write_line(l->fd, out))
		l->dropped++;
}

int vmm_metrics_open(const char *path, char *err, size_t errlen)
{
	return open_output(path, "metrics.metrics_path", err, errlen);
}
