/*
 * skiffd's VMs in cgroup v2 (Linux Documentation/admin-guide/cgroup-v2.rst):
 * one cgroup per VM, BASE/vm-ID, beneath the cgroup delegated to skiffd
 * (--cgroup, else the one skiffd runs in), with
 *   cpu.max     the VM's cpu_quota over a 100 ms period: every thread of
 *               the VMM counts, device threads too (skiff's own in-process
 *               quota, which stays, sees the vCPU threads only);
 *   memory.max  guest RAM plus an allowance for the VMM itself;
 *   pids.max    the VMM's threads (it starts no processes);
 *   io.max      for each disk with a rate limit, on the block device its
 *               image lives on (the sum of the limits of the VM's disks on
 *               that device).
 * The VMM enters its cgroup between fork and exec, so every byte it
 * allocates is charged there. Where no cgroup v2 is delegated (a cgroup v1
 * host, no cpu/memory/pids controller, no write access), skiffd says so
 * once at its start and the VMs run with the in-process quota alone.
 *
 * The "no internal processes" rule: a cgroup that hands controllers to its
 * children may hold no process itself (the root excepted), so skiffd first
 * moves itself into BASE/skiffd.
 */
#include "daemon/skiffd.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/fd_io.h"

#define CPU_PERIOD_US 100000
/* memory.max beyond guest RAM: the VMM's own heap, device buffers, the
 * user network's, page tables, plus each hart's JIT code cache (32 MiB by
 * default, memfd pages charged here) and translation state. */
#define MEM_OVERHEAD_MIB 256
#define MEM_PER_VCPU_MIB 64
#define PIDS_MAX 512

static int write_in(const char *dir, const char *file, const char *text)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	int e = errno;
	close(fd);
	errno = e;
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* skiffd's own cgroup v2 directory, from /proc/self/mountinfo (the cgroup2
 * mount) and /proc/self/cgroup (the "0::PATH" line). */
static char *own_cgroup(char *why, size_t whylen)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], mnt[PATH_MAX] = "", path[PATH_MAX] = "";
	while (f && fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - cgroup2 ");
		if (!sep)
			continue;
		/* Field 5 is the mount point. */
		char *p = line;
		for (int i = 0; i < 4 && p; i++)
			p = strchr(p + 1, ' ');
		if (p && sscanf(p + 1, "%4095s", mnt) == 1)
			break;
	}
	if (f)
		fclose(f);
	if (!mnt[0]) {
		snprintf(why, whylen, "no cgroup v2 file system is mounted");
		return NULL;
	}
	f = fopen("/proc/self/cgroup", "re");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(path, sizeof(path), "%s", line + 3);
		}
	if (f)
		fclose(f);
	if (!path[0]) {
		snprintf(why, whylen, "skiffd is in no cgroup v2 (/proc/self/cgroup)");
		return NULL;
	}
	/* The root cgroup is the whole machine's, not skiffd's to rearrange. */
	if (!strcmp(path, "/")) {
		snprintf(why, whylen, "skiffd runs in the root cgroup of %s; give --cgroup DIR, a cgroup "
			 "delegated to it", mnt);
		return NULL;
	}
	char *base = NULL;
	if (asprintf(&base, "%s%s", mnt, path) < 0)
		return NULL;
	return base;
}

static bool has_word(const char *list, const char *w)
{
	size_t n = strlen(w);
	for (const char *p = list; (p = strstr(p, w)); p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || !p[n]))
			return true;
	return false;
}

void skiffd_cgroup_init(struct skiffd *d, const char *opt)
{
	struct skiffd_cgroup *cg = &d->cgroup;
	memset(cg, 0, sizeof(*cg));
	if (opt && !strcmp(opt, "off")) {
		skiffd_log("cgroup: off (--cgroup off): VMs have skiff's in-process CPU quota only");
		return;
	}
	char why[PATH_MAX + 128] = "";
	char *base = opt ? strdup(opt) : own_cgroup(why, sizeof(why));
	char path[PATH_MAX], ctl[512] = "", leaf[PATH_MAX];
	if (!base)
		goto fallback;
	snprintf(path, sizeof(path), "%s/cgroup.controllers", base);
	if (fd_read_small(path, ctl, sizeof(ctl)) < 0) {
		snprintf(why, sizeof(why), "%s: %s", path, strerror(errno));
		goto fallback;
	}
	cg->cpu = has_word(ctl, "cpu");
	cg->memory = has_word(ctl, "memory");
	cg->pids = has_word(ctl, "pids");
	cg->io = has_word(ctl, "io");
	if (!cg->cpu && !cg->memory && !cg->pids) {
		ctl[strcspn(ctl, "\n")] = 0;
		snprintf(why, sizeof(why), "%s offers no cpu, memory or pids controller (it has: %s)", base,
			 ctl[0] ? ctl : "none");
		goto fallback;
	}
	/* Out of BASE, so that BASE may hand its controllers down. */
	snprintf(leaf, sizeof(leaf), "%s/skiffd", base);
	if ((mkdir(leaf, 0755) && errno != EEXIST) || write_in(leaf, "cgroup.procs", "0")) {
		snprintf(why, sizeof(why), "cannot move skiffd into %s: %s", leaf, strerror(errno));
		goto fallback;
	}
	char want[64] = "";
	snprintf(want, sizeof(want), "%s%s%s%s", cg->cpu ? "+cpu " : "", cg->memory ? "+memory " : "",
		 cg->pids ? "+pids " : "", cg->io ? "+io" : "");
	if (write_in(base, "cgroup.subtree_control", want)) {
		snprintf(why, sizeof(why), "cannot enable %sin %s/cgroup.subtree_control: %s", want, base,
			 strerror(errno));
		goto fallback;
	}
	cg->base = base;
	skiffd_log("cgroup: each VM gets its own cgroup under %s (%s)", base, want);
	return;
fallback:
	free(base);
	memset(cg, 0, sizeof(*cg));
	skiffd_log("cgroup: not used: %s; VMs keep skiff's in-process CPU quota (vCPU threads only) and "
		   "have no memory.max, pids.max or io.max", why[0] ? why : "out of memory");
}

/* The whole disk a file's data lives on, as "MAJ:MIN" (io.max takes
 * disks, not partitions). */
static int disk_of(const char *file, char *out, size_t len)
{
	struct stat st;
	if (stat(file, &st))
		return -1;
	dev_t dev = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
	char sys[96], buf[32];
	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/partition", major(dev), minor(dev));
	if (access(sys, F_OK) == 0) {
		snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/../dev", major(dev), minor(dev));
		if (fd_read_small(sys, buf, sizeof(buf)) < 0)
			return -1;
		buf[strcspn(buf, "\n")] = 0;
		snprintf(out, len, "%s", buf);
		return 0;
	}
	snprintf(out, len, "%u:%u", major(dev), minor(dev));
	return 0;
}

/* A token bucket's rate per second (size over refill_time ms), 0: none. */
static uint64_t rate_of(json_t *bucket)
{
	json_t *s = json_object_get(bucket, "size"), *t = json_object_get(bucket, "refill_time");
	if (!json_is_integer(s) || !json_is_integer(t) || json_integer_value(t) <= 0 ||
	    json_integer_value(s) <= 0)
		return 0;
	return (uint64_t)json_integer_value(s) * 1000 / (uint64_t)json_integer_value(t);
}

/* io.max lines for the VM's rate-limited disks, summed per device. */
static void write_io_max(const char *dir, json_t *drives, const char *id)
{
	struct { char dev[32]; uint64_t bps, iops; } per[16];
	size_t n = 0, i;
	json_t *dr;
	json_array_foreach(drives, i, dr) {
		json_t *rl = json_object_get(dr, "rate_limiter");
		uint64_t bps = rate_of(json_object_get(rl, "bandwidth"));
		uint64_t iops = rate_of(json_object_get(rl, "ops"));
		const char *path = json_string_value(json_object_get(dr, "path_on_host"));
		char dev[32];
		if ((!bps && !iops) || !path || disk_of(path, dev, sizeof(dev)))
			continue;
		size_t k = 0;
		while (k < n && strcmp(per[k].dev, dev))
			k++;
		if (k == n) {
			if (n == sizeof(per) / sizeof(per[0]))
				continue;
			snprintf(per[n].dev, sizeof(per[n].dev), "%s", dev);
			per[n].bps = per[n].iops = 0;
			n++;
		}
		per[k].bps += bps;
		per[k].iops += iops;
	}
	for (size_t k = 0; k < n; k++) {
		char line[256], b[64] = "", o[64] = "";
		if (per[k].bps)
			snprintf(b, sizeof(b), " rbps=%" PRIu64 " wbps=%" PRIu64, per[k].bps, per[k].bps);
		if (per[k].iops)
			snprintf(o, sizeof(o), " riops=%" PRIu64 " wiops=%" PRIu64, per[k].iops, per[k].iops);
		if (snprintf(line, sizeof(line), "%s%s%s", per[k].dev, b, o) >= (int)sizeof(line))
			continue;
		if (write_in(dir, "io.max", line))
			skiffd_log("vm %s: cgroup io.max '%s': %s", id, line, strerror(errno));
	}
}

int skiffd_cgroup_prepare(struct skiffd *d, struct skiffd_vm *vm)
{
	const struct skiffd_cgroup *cg = &d->cgroup;
	if (!cg->base)
		return -1;
	char *dir = NULL;
	if (asprintf(&dir, "%s/vm-%s", cg->base, vm->id) < 0)
		return -1;
	if (mkdir(dir, 0755) && errno != EEXIST) {
		skiffd_log("vm %s: cannot make its cgroup %s: %s; it runs without one", vm->id, dir,
			   strerror(errno));
		free(dir);
		return -1;
	}
	json_t *mc = json_object_get(vm->config, "machine-config");
	json_t *q = json_object_get(mc, "cpu_quota");
	char v[64];
	bool ok = true;
	if (cg->cpu) {
		if (json_is_number(q) && json_number_value(q) > 0)
			snprintf(v, sizeof(v), "%lld %d", (long long)(json_number_value(q) * CPU_PERIOD_US),
				 CPU_PERIOD_US);
		else
			snprintf(v, sizeof(v), "max %d", CPU_PERIOD_US);
		ok &= !write_in(dir, "cpu.max", v);
	}
	if (cg->memory) {
		uint64_t mib = vm->mem_mib + MEM_OVERHEAD_MIB + (uint64_t)vm->vcpus * MEM_PER_VCPU_MIB;
		snprintf(v, sizeof(v), "%" PRIu64, mib << 20);
		ok &= !write_in(dir, "memory.max", v);
	}
	if (cg->pids) {
		snprintf(v, sizeof(v), "%d", PIDS_MAX);
		ok &= !write_in(dir, "pids.max", v);
	}
	if (!ok) {
		skiffd_log("vm %s: cannot set its cgroup's limits in %s: %s; it runs without one", vm->id,
			   dir, strerror(errno));
		rmdir(dir);
		free(dir);
		return -1;
	}
	if (cg->io)
		write_io_max(dir, json_object_get(vm->config, "drives"), vm->id);
	char procs[PATH_MAX];
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	int fd = open(procs, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		skiffd_log("vm %s: %s: %s; it runs without a cgroup", vm->id, procs, strerror(errno));
		rmdir(dir);
		free(dir);
		return -1;
	}
	free(vm->cgroup);
	vm->cgroup = dir;
	return fd;
}

void skiffd_cgroup_remove(struct skiffd_vm *vm)
{
	if (!vm->cgroup)
		return;
	rmdir(vm->cgroup);
	free(vm->cgroup);
	vm->cgroup = NULL;
}
