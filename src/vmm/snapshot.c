/*
 * Creating and restoring VM snapshots; see snapshot.h. The state file holds,
 * besides each hart's and device's own sections:
 *
 *   "CONF"  the configuration (the API's JSON), from which the restore
 *           builds the same machine before loading state into it
 *   "VM  "  guest time, each hart's HSM state and start address
 *   "MEM "  RAM size, Full or Diff, and for a Diff the memory files below
 *           it (the Full one first) with the pages each holds, then the
 *           pages of the Diff's own memory file
 *
 * Consistency: the harts are parked, and every virtio device stays
 * quiesced (its transport and queue locks held) from before its state is
 * saved until the memory file is written, so no device writes guest RAM
 * or moves a ring index in between.
 */
#include "vmm/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/gram_file.h"
#include "base/snapfile.h"
#include "vmm/devices.h"

#define TAG_CONF SNAP_TAG('C', 'O', 'N', 'F')
#define TAG_VM   SNAP_TAG('V', 'M', ' ', ' ')
#define TAG_MEM  SNAP_TAG('M', 'E', 'M', ' ')
#define CONF_VERSION 1
#define VM_VERSION 1
#define MEM_VERSION 1
#define MEM_FULL 0
#define MEM_DIFF 1
/* Memory files a Diff may stack on the Full one. */
#define MAX_LAYERS 64

/* One memory file of the chain RAM was last saved to (or restored from). */
struct mem_layer {
	char *path;
	struct gram_run *runs;     /* Diff layers: the pages it holds */
	size_t nruns;
};

struct vm_snap {
	struct mem_layer layer[MAX_LAYERS];
	size_t n;                  /* 0: no chain to build a Diff on */
	bool restored_pending;     /* restored paused: devices' restored work waits */
};

struct vm_snapshot_file {
	uint8_t *data;
	size_t len;
	struct snap_file f;
	char *conf;
};

/* Open an existing regular file for reading. The file is looked at through
 * an O_PATH descriptor first, so naming a device or a FIFO opens nothing
 * (opening some devices has effects). A descriptor or -errno. */
static int open_regular(const char *path)
{
	int pfd = open(path, O_PATH | O_CLOEXEC);
	if (pfd < 0)
		return -errno;
	struct stat sb;
	if (fstat(pfd, &sb) || !S_ISREG(sb.st_mode)) {
		close(pfd);
		return -EINVAL;
	}
	char proc[32];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	int fd = open(proc, O_RDONLY | O_CLOEXEC);
	int e = errno;
	close(pfd);
	return fd < 0 ? -e : fd;
}

static const char *open_error(int e)
{
	return e == -EINVAL ? "not a regular file" : strerror(-e);
}

static void chain_clear(struct vm_snap *c)
{
	for (size_t k = 0; k < c->n; k++) {
		free(c->layer[k].path);
		free(c->layer[k].runs);
	}
	c->n = 0;
}

void vm_snapshot_forget(struct vm *vm)
{
	if (vm->snap) {
		chain_clear(vm->snap);
		free(vm->snap);
		vm->snap = NULL;
	}
}

static struct vm_snap *chain_of(struct vm *vm)
{
	if (!vm->snap)
		vm->snap = calloc(1, sizeof(*vm->snap));
	return vm->snap;
}

int vm_snapshot_track_dirty(struct vm *vm, bool on, char *err, size_t errlen)
{
	if (gram_track_dirty(&vm->ram, on)) {
		snprintf(err, errlen, "out of memory for dirty page tracking");
		return -1;
	}
	/* Marks are set when a write translation is made: drop every hart's
	 * so that each page's next write is seen. */
	struct hart *harts[BOARD_MAX_HARTS];
	for (unsigned i = 0; i < vm->nharts; i++)
		harts[i] = vm->vcpu[i].hart;
	harts_flush(harts, vm->nharts, HART_FLUSH_TLB);
	return 0;
}

/* ------------------------------------------------------------ create */

static void save_vm_section(struct vm *vm, struct snap_writer *w)
{
	snap_section_begin(w, TAG_VM, 0, VM_VERSION);
	snap_put_u32(w, vm->nharts);
	snap_put_u64(w, hart_time(vm->vcpu[0].hart));
	snap_put_u8(w, vm->sbi_console_cr);
	for (unsigned i = 0; i < vm->nharts; i++) {
		snap_put_u8(w, (uint8_t)atomic_load(&vm->vcpu[i].state));
		snap_put_u64(w, vm->vcpu[i].start_addr);
		snap_put_u64(w, vm->vcpu[i].start_opaque);
	}
}

static void put_runs(struct snap_writer *w, const struct gram_run *runs, size_t n)
{
	snap_put_u64(w, n);
	for (size_t k = 0; k < n; k++) {
		snap_put_u64(w, runs[k].first);
		snap_put_u64(w, runs[k].count);
	}
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	return !stat(a, &sa) && !stat(b, &sb) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Write the state file through a temporary name, so a failure never
 * leaves half a file where a good one may have been. */
static int write_state(const char *path, const uint8_t *data, size_t len, char *err, size_t errlen)
{
	char *tmp = NULL;
	if (asprintf(&tmp, "%s.tmp-XXXXXX", path) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "snapshot_path %s: cannot create a file next to it: %s",
			 path, strerror(errno));
		free(tmp);
		return -1;
	}
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			snprintf(err, errlen, "snapshot_path %s: write failed: %s", path,
				 n < 0 ? strerror(errno) : "no progress");
			close(fd);
			unlink(tmp);
			free(tmp);
			return -1;
		}
		done += (size_t)n;
	}
	if (close(fd) || rename(tmp, path)) {
		snprintf(err, errlen, "snapshot_path %s: %s", path, strerror(errno));
		unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	return 0;
}

static void quiesce_all(struct vm *vm, bool on)
{
	struct vm_devices *d = vm->devices;
	if (!d)
		return;
	if (on)
		for (unsigned n = 0; n < d->nslots; n++)
			virtio_dev_quiesce(d->slot[n].dev);
	else
		for (unsigned n = d->nslots; n-- > 0;)
			virtio_dev_unquiesce(d->slot[n].dev);
}

int vm_snapshot_create(struct vm *vm, const char *config_json, enum vm_snapshot_type type,
		       const char *state_path, const char *mem_path,
		       struct vm_snapshot_stats *st, char *err, size_t errlen)
{
	memset(st, 0, sizeof(*st));
	struct vm_snap *chain = chain_of(vm);
	if (!chain) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (type == VM_SNAPSHOT_DIFF && !vm->ram.dirty) {
		snprintf(err, errlen, "a Diff snapshot needs dirty page tracking "
			 "(track_dirty_pages in machine-config, or on snapshot load)");
		return -1;
	}
	if (type == VM_SNAPSHOT_DIFF && !chain->n) {
		snprintf(err, errlen, "a Diff snapshot builds on a Full one: take a Full snapshot "
			 "first (or restore from one)");
		return -1;
	}
	if (type == VM_SNAPSHOT_DIFF && chain->n >= MAX_LAYERS) {
		snprintf(err, errlen, "%d Diff snapshots stack on this Full one already: take a "
			 "Full snapshot", MAX_LAYERS - 1);
		return -1;
	}
	if (!strcmp(state_path, mem_path) || same_file(state_path, mem_path)) {
		snprintf(err, errlen, "snapshot_path and mem_file_path name the same file");
		return -1;
	}
	for (size_t k = 0; k < chain->n; k++) {
		if (same_file(mem_path, chain->layer[k].path)) {
			snprintf(err, errlen, "mem_file_path %s is a memory file this VM's memory "
				 "builds on (%s): choose another file", mem_path, chain->layer[k].path);
			return -1;
		}
	}

	struct snap_writer w;
	snap_writer_init(&w);
	snap_section_begin(&w, TAG_CONF, 0, CONF_VERSION);
	snap_put_str(&w, config_json);
	save_vm_section(vm, &w);
	for (unsigned i = 0; i < vm->nharts; i++)
		hart_save(vm->vcpu[i].hart, &w);
	plic_save(&vm->plic, &w);
	aclint_save(&vm->aclint, &w);
	uart_save(&vm->uart, &w);
	rtc_save(&vm->rtc, &w);
	syscon_save(&vm->syscon, &w);
	vmgenid_save(&vm->vmgenid, &w);

	/* Host sides first, with no device lock held (virtio_host_save). */
	struct vm_devices *d = vm->devices;
	for (unsigned n = 0; d && n < d->nslots; n++) {
		if (virtio_host_save(d->slot[n].dev, n, &w, err, errlen)) {
			snap_writer_free(&w);
			return -1;
		}
	}

	int rc = -1, fd = -1;
	struct gram_run *runs = NULL;
	size_t nruns = 0;
	char *real = NULL;
	quiesce_all(vm, true);
	for (unsigned n = 0; d && n < d->nslots; n++)
		if (virtio_mmio_save(&d->slot[n].mmio, n, &w, err, errlen))
			goto out;

	fd = gram_file_create(mem_path);
	if (fd < 0) {
		snprintf(err, errlen, "mem_file_path %s: %s", mem_path,
			 fd == -EBUSY ? "a running VM's memory is mapped from this file" : strerror(-fd));
		goto out;
	}
	struct gram_save_stats gs;
	int r = type == VM_SNAPSHOT_FULL ? gram_save_full(&vm->ram, fd, &gs)
					 : gram_save_dirty(&vm->ram, fd, &runs, &nruns, &gs);
	if (r || close(fd)) {
		snprintf(err, errlen, "mem_file_path %s: writing guest memory failed: %s", mem_path,
			 strerror(r ? -r : errno));
		fd = -1;
		goto out;
	}
	fd = -1;
	st->mem_pages = gs.pages_written;
	st->mem_copied = gs.bytes_copied;
	real = realpath(mem_path, NULL);
	if (!real) {
		snprintf(err, errlen, "mem_file_path %s: %s", mem_path, strerror(errno));
		goto out;
	}

	snap_section_begin(&w, TAG_MEM, 0, MEM_VERSION);
	snap_put_u64(&w, vm->ram.size);
	snap_put_u8(&w, type == VM_SNAPSHOT_FULL ? MEM_FULL : MEM_DIFF);
	if (type == VM_SNAPSHOT_DIFF) {
		snap_put_u32(&w, (uint32_t)chain->n);
		for (size_t k = 0; k < chain->n; k++) {
			snap_put_str(&w, chain->layer[k].path);
			put_runs(&w, chain->layer[k].runs, chain->layer[k].nruns);
		}
		put_runs(&w, runs, nruns);
	}
	if (snap_writer_finish(&w)) {
		snprintf(err, errlen, "out of memory for the state file");
		goto out;
	}
	if (write_state(state_path, w.data, w.len, err, errlen))
		goto out;
	st->state_bytes = w.len;

	/* The memory now lives in this chain; tracking starts over. */
	if (type == VM_SNAPSHOT_FULL)
		chain_clear(chain);
	chain->layer[chain->n++] = (struct mem_layer){ .path = real, .runs = runs, .nruns = nruns };
	real = NULL;
	runs = NULL;
	if (vm->ram.dirty)
		vm_snapshot_track_dirty(vm, true, err, errlen);
	rc = 0;
out:
	quiesce_all(vm, false);
	if (fd >= 0)
		close(fd);
	free(real);
	free(runs);
	snap_writer_free(&w);
	return rc;
}

/* ------------------------------------------------------------ restore */

struct vm_snapshot_file *vm_snapshot_open(const char *state_path, char *err, size_t errlen)
{
	struct vm_snapshot_file *sf = calloc(1, sizeof(*sf));
	if (!sf) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	int fd = open_regular(state_path);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb)) {
		snprintf(err, errlen, "snapshot_path %s: %s", state_path,
			 fd < 0 ? open_error(fd) : strerror(errno));
		goto fail;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size > (off_t)SNAP_MAX_FILE) {
		snprintf(err, errlen, "snapshot_path %s: not a regular file of at most %u MiB",
			 state_path, SNAP_MAX_FILE >> 20);
		goto fail;
	}
	sf->len = (size_t)sb.st_size;
	sf->data = malloc(sf->len ? sf->len : 1);
	if (!sf->data) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t done = 0; done < sf->len;) {
		ssize_t n = read(fd, sf->data + done, sf->len - done);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			snprintf(err, errlen, "snapshot_path %s: %s", state_path,
				 n < 0 ? strerror(errno) : "shorter than it was a moment ago");
			goto fail;
		}
		done += (size_t)n;
	}
	close(fd);
	fd = -1;
	char why[300];
	if (snap_file_parse(&sf->f, sf->data, sf->len, why, sizeof(why))) {
		snprintf(err, errlen, "snapshot_path %s: %s", state_path, why);
		goto fail;
	}
	struct snap_section *s = snap_file_find(&sf->f, TAG_CONF, 0);
	if (!s) {
		snprintf(err, errlen, "snapshot_path %s: no configuration section", state_path);
		goto fail;
	}
	struct snap_reader r;
	snap_reader_init(&r, s);
	if (s->version != CONF_VERSION)
		snap_reader_fail(&r, "configuration version %u is not known", s->version);
	uint32_t n = snap_get_u32(&r);
	if (!r.invalid && !r.overrun && n != snap_reader_left(&r))
		snap_reader_fail(&r, "a configuration of %u bytes in %llu", n,
				 (unsigned long long)snap_reader_left(&r));
	if (!r.invalid && !r.overrun) {
		sf->conf = malloc((size_t)n + 1);
		if (sf->conf && snap_get_bytes(&r, sf->conf, n)) {
			sf->conf[n] = 0;
			if (strlen(sf->conf) != n)
				snap_reader_fail(&r, "the configuration holds a NUL byte");
		}
	}
	if (snap_reader_end(&r, why, sizeof(why)) || !sf->conf) {
		snprintf(err, errlen, "snapshot_path %s: %s", state_path, sf->conf ? why : "out of memory");
		goto fail;
	}
	return sf;
fail:
	if (fd >= 0)
		close(fd);
	vm_snapshot_close(sf);
	return NULL;
}

void vm_snapshot_close(struct vm_snapshot_file *sf)
{
	if (!sf)
		return;
	snap_file_free(&sf->f);
	free(sf->data);
	free(sf->conf);
	free(sf);
}

const char *vm_snapshot_config(const struct vm_snapshot_file *sf)
{
	return sf->conf;
}

/* The "MEM " section, read into a chain (layer paths and runs) plus the
 * runs of the top memory file. */
struct mem_plan {
	uint64_t ram_bytes;
	bool diff;
	struct vm_snap below;
	struct gram_run *top;
	size_t ntop;
};

static int get_runs(struct snap_reader *r, struct gram_run **out, size_t *n)
{
	uint64_t count = snap_get_u64(r);
	*out = NULL;
	*n = 0;
	if (r->overrun)
		return -1;
	if (count > snap_reader_left(r) / 16) {
		snap_reader_fail(r, "%llu page runs in %llu bytes", (unsigned long long)count,
				 (unsigned long long)snap_reader_left(r));
		return -1;
	}
	struct gram_run *v = calloc(count ? count : 1, sizeof(*v));
	if (!v) {
		snap_reader_fail(r, "out of memory");
		return -1;
	}
	for (uint64_t k = 0; k < count; k++) {
		v[k].first = snap_get_u64(r);
		v[k].count = snap_get_u64(r);
	}
	*out = v;
	*n = count;
	return 0;
}

static int read_mem_plan(struct snap_file *f, struct mem_plan *p, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	struct snap_section *s = snap_file_find(f, TAG_MEM, 0);
	if (!s) {
		snprintf(err, errlen, "the snapshot has no memory section");
		return -1;
	}
	struct snap_reader r;
	snap_reader_init(&r, s);
	if (s->version != MEM_VERSION) {
		snap_reader_fail(&r, "memory section version %u is not known", s->version);
		return snap_reader_end(&r, err, errlen);
	}
	p->ram_bytes = snap_get_u64(&r);
	uint8_t kind = snap_get_u8(&r);
	if (!r.overrun && kind != MEM_FULL && kind != MEM_DIFF)
		snap_reader_fail(&r, "memory kind %u", kind);
	p->diff = kind == MEM_DIFF;
	if (p->diff && !r.overrun && !r.invalid) {
		uint32_t n = snap_get_u32(&r);
		if (!r.overrun && (n == 0 || n >= MAX_LAYERS))
			snap_reader_fail(&r, "%u memory files below the Diff (1 to %d)", n, MAX_LAYERS - 1);
		for (uint32_t k = 0; k < n && !r.overrun && !r.invalid; k++) {
			struct mem_layer *l = &p->below.layer[k];
			char path[PATH_MAX];
			if (!snap_get_str(&r, path, sizeof(path)))
				break;
			if (path[0] != '/') {
				snap_reader_fail(&r, "memory file path \"%.80s\" is not absolute", path);
				break;
			}
			l->path = strdup(path);
			p->below.n++;
			if (!l->path) {
				snap_reader_fail(&r, "out of memory");
				break;
			}
			if (get_runs(&r, &l->runs, &l->nruns))
				break;
		}
		if (!r.overrun && !r.invalid)
			get_runs(&r, &p->top, &p->ntop);
	}
	if (snap_reader_end(&r, err, errlen)) {
		chain_clear(&p->below);
		free(p->top);
		return -1;
	}
	return 0;
}

static int open_mem(const char *path, const char *what, char *err, size_t errlen)
{
	int fd = open_regular(path);
	if (fd < 0)
		snprintf(err, errlen, "%s %s: %s", what, path, open_error(fd));
	return fd;
}

/* Read the pages of one Diff memory file into RAM. */
static int apply_layer(struct vm *vm, const char *path, const struct gram_run *runs, size_t n,
		       char *err, size_t errlen)
{
	int fd = open_mem(path, "Diff memory file", err, errlen);
	if (fd < 0)
		return -1;
	int r = gram_load_runs(&vm->ram, fd, runs, n);
	close(fd);
	if (r) {
		snprintf(err, errlen, "Diff memory file %s: %s", path,
			 r == -ERANGE ? "it does not hold the pages the snapshot lists (a different "
					"or truncated file)" : strerror(-r));
		return -1;
	}
	return 0;
}

static int load_vm_section(struct vm *vm, struct snap_file *f, char *err, size_t errlen)
{
	struct snap_section *s = snap_file_find(f, TAG_VM, 0);
	if (!s) {
		snprintf(err, errlen, "the snapshot has no VM section");
		return -1;
	}
	struct snap_reader r;
	snap_reader_init(&r, s);
	if (s->version != VM_VERSION) {
		snap_reader_fail(&r, "VM section version %u is not known", s->version);
		return snap_reader_end(&r, err, errlen);
	}
	uint32_t n = snap_get_u32(&r);
	uint64_t ticks = snap_get_u64(&r);
	uint8_t cr = snap_get_u8(&r);
	if (!r.overrun && (n != vm->nharts || cr > 1)) {
		snap_reader_fail(&r, "%u harts where the configuration says %u", n, vm->nharts);
		return snap_reader_end(&r, err, errlen);
	}
	uint8_t state[BOARD_MAX_HARTS];
	uint64_t addr[BOARD_MAX_HARTS], opaque[BOARD_MAX_HARTS];
	for (unsigned i = 0; i < n && !r.overrun; i++) {
		state[i] = snap_get_u8(&r);
		addr[i] = snap_get_u64(&r);
		opaque[i] = snap_get_u64(&r);
		if (state[i] != HSM_STARTED && state[i] != HSM_STOPPED)
			snap_reader_fail(&r, "hart %u in HSM state %u (started or stopped only)", i,
					 state[i]);
	}
	if (snap_reader_end(&r, err, errlen))
		return -1;
	/* Guest time goes on from where it stood (the guest does not see
	 * the time the snapshot spent on disk). */
	uint64_t ns = (uint64_t)((unsigned __int128)ticks * 1000000000ull / BOARD_TIMEBASE_HZ);
	vm->time_base_ns = clock_monotonic_ns() - ns;
	vm->sbi_console_cr = cr;
	for (unsigned i = 0; i < n; i++) {
		hart_set_time_base(vm->vcpu[i].hart, vm->time_base_ns);
		atomic_store(&vm->vcpu[i].state, state[i]);
		vm->vcpu[i].start_addr = addr[i];
		vm->vcpu[i].start_opaque = opaque[i];
	}
	return 0;
}

/* Load one board section with its loader; 0 or -1 with a message. */
/* Load section (tag, inst) with `call` (which reads it through `rd`); a
 * missing section is an error unless `optional`. */
#define LOAD_SECTION(tag, inst, optional, call) do {                                   \
		struct snap_section *s_ = snap_file_find(f, (tag), (inst));            \
		char tn_[5];                                                            \
		if (!s_ && (optional))                                                  \
			break;                                                          \
		if (!s_) {                                                              \
			snprintf(err, errlen, "the snapshot has no %s %u section",     \
				 snap_tag_name((tag), tn_), (unsigned)(inst));          \
			return -1;                                                      \
		}                                                                       \
		struct snap_reader r_;                                                  \
		snap_reader_init(&r_, s_);                                              \
		struct snap_reader *rd = &r_;                                           \
		call;                                                                   \
		if (snap_reader_end(&r_, err, errlen))                                 \
			return -1;                                                      \
	} while (0)
#define LOAD_ONE(tag, inst, call) LOAD_SECTION(tag, inst, false, call)

static int load_machine(struct vm *vm, struct snap_file *f, char *err, size_t errlen)
{
	if (load_vm_section(vm, f, err, errlen))
		return -1;
	for (unsigned i = 0; i < vm->nharts; i++)
		LOAD_ONE(SNAP_TAG('H', 'A', 'R', 'T'), i, hart_load(vm->vcpu[i].hart, rd));
	/* After the harts: the PLIC tells each its external interrupt level. */
	LOAD_ONE(SNAP_TAG('P', 'L', 'I', 'C'), 0, plic_load(&vm->plic, rd));
	LOAD_ONE(SNAP_TAG('A', 'C', 'L', 'I'), 0, aclint_load(&vm->aclint, rd));
	LOAD_ONE(SNAP_TAG('U', 'A', 'R', 'T'), 0, uart_load(&vm->uart, rd));
	LOAD_ONE(SNAP_TAG('R', 'T', 'C', ' '), 0, rtc_load(&vm->rtc, rd));
	LOAD_ONE(SNAP_TAG('S', 'Y', 'S', 'C'), 0, syscon_load(&vm->syscon, rd));
	/* Snapshots from before the generation ID have no section: their
	 * guest never saw the device, and the fresh ID is as good as any. */
	LOAD_SECTION(SNAP_TAG('V', 'G', 'I', 'D'), 0, true, vmgenid_load(&vm->vmgenid, rd));
	/* A restored VM is a new generation: the guest reseeds its random
	 * number generator when it sees the new ID (devices_restored). */
	if (vmgenid_prepare(&vm->vmgenid)) {
		snprintf(err, errlen, "cannot draw a new VM generation ID: %s", strerror(errno));
		return -1;
	}
	struct vm_devices *d = vm->devices;
	for (unsigned n = 0; d && n < d->nslots; n++)
		if (virtio_mmio_load(&d->slot[n].mmio, n, f, err, errlen))
			return -1;
	/* After the device state (a NIC's saved MAC), without its locks. */
	for (unsigned n = 0; d && n < d->nslots; n++)
		if (virtio_host_load(d->slot[n].dev, n, f, err, errlen))
			return -1;
	if (snap_file_unused(f, err, errlen))
		return -1;
	return 0;
}

struct vm *vm_restore(const struct vm_config *cfg, const struct vm_console *con,
		      const struct thread_hook *threads, struct vm_snapshot_file *sf,
		      const char *mem_path, bool track_dirty, char *err, size_t errlen)
{
	struct mem_plan plan;
	if (read_mem_plan(&sf->f, &plan, err, errlen))
		return NULL;
	struct vm *vm = NULL;
	char *real = NULL;
	if (plan.ram_bytes != cfg->mem_bytes) {
		snprintf(err, errlen, "the snapshot's RAM is %llu MiB but its configuration says "
			 "%llu MiB", (unsigned long long)(plan.ram_bytes >> 20),
			 (unsigned long long)(cfg->mem_bytes >> 20));
		goto fail;
	}
	real = realpath(mem_path, NULL);
	if (!real) {
		snprintf(err, errlen, "memory file %s: %s", mem_path, strerror(errno));
		goto fail;
	}
	/* RAM comes from the Full file; each Diff's pages go on top. */
	const char *base = plan.diff ? plan.below.layer[0].path : real;
	int fd = open_mem(base, plan.diff ? "Full memory file (below the Diff)" : "memory file",
			  err, errlen);
	if (fd < 0)
		goto fail;
	char why[512];
	vm = vm_build(cfg, con, threads, fd, why, sizeof(why));
	close(fd);
	if (!vm) {
		snprintf(err, errlen, "%s", why);
		goto fail;
	}
	if (plan.diff) {
		for (size_t k = 1; k < plan.below.n; k++)
			if (apply_layer(vm, plan.below.layer[k].path, plan.below.layer[k].runs,
					plan.below.layer[k].nruns, err, errlen))
				goto fail;
		if (apply_layer(vm, real, plan.top, plan.ntop, err, errlen))
			goto fail;
	}
	if (load_machine(vm, &sf->f, err, errlen))
		goto fail;
	struct vm_snap *chain = chain_of(vm);
	if (!chain) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	*chain = plan.below;
	chain->layer[chain->n++] = (struct mem_layer){ .path = real, .runs = plan.top,
						       .nruns = plan.ntop };
	if (track_dirty && vm_snapshot_track_dirty(vm, true, err, errlen)) {
		vm_destroy(vm);
		return NULL;
	}
	return vm;
fail:
	vm_destroy(vm);
	chain_clear(&plan.below);
	free(plan.top);
	free(real);
	return NULL;
}

static void devices_restored(struct vm *vm)
{
	vmgenid_publish(&vm->vmgenid);
	struct vm_devices *d = vm->devices;
	for (unsigned n = 0; d && n < d->nslots; n++)
		virtio_dev_restored(d->slot[n].dev);
}

int vm_restore_start(struct vm *vm, bool paused)
{
	atomic_store(&vm->paused, paused);
	struct vm_devices *d = vm->devices;
	if (paused) {
		for (unsigned n = 0; d && n < d->nslots; n++)
			virtio_dev_freeze(d->slot[n].dev, true);
		vm->snap->restored_pending = true;
	}
	if (allocator_cpu_quota_start(vm, vm->cpu_quota))
		return -1;
	for (unsigned i = 0; i < vm->nharts; i++)
		if (atomic_load(&vm->vcpu[i].state) == HSM_STARTED && allocator_hart_restored(vm, i))
			return -1;
	if (!paused)
		devices_restored(vm);
	return 0;
}

void vm_snapshot_resumed(struct vm *vm)
{
	if (vm->snap && vm->snap->restored_pending) {
		vm->snap->restored_pending = false;
		devices_restored(vm);
	}
}
