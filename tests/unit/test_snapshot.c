/*
 * Snapshots without a guest: the state file container (sections, CRC,
 * versions; corrupt, truncated and foreign files refused with a message),
 * a hart's state round trip and the values a load refuses, guest RAM to and
 * from memory files (holes for zero pages, copy-on-write restore, Diff
 * pages from dirty tracking), and a whole VM (two in one process) saved
 * with a virtio device set up by a driver and restored into a new VM.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "base/gram_file.h"
#include "base/snapfile.h"
#include "machine/board.h"
#include "virtio/virtio_mmio.h"
#include "vmm/api_snapshot.h"
#include "vmm/devices.h"
#include "vmm/snapshot.h"
#include "check.h"

static struct check_counts C;
static char dir[64];

#define T1 SNAP_TAG('T', 'S', 'T', '1')
#define T2 SNAP_TAG('T', 'S', 'T', '2')

static void build_file(struct snap_writer *w)
{
	snap_writer_init(w);
	snap_section_begin(w, T1, 0, 1);
	snap_put_u32(w, 0xdeadbeef);
	snap_put_u64(w, 42);
	snap_put_str(w, "hello");
	snap_section_begin(w, T2, 3, 7);
	snap_put_u8(w, 9);
	snap_writer_finish(w);
}

static int parse(const uint8_t *d, size_t n, char *err)
{
	struct snap_file f;
	int r = snap_file_parse(&f, d, n, err, 256);
	snap_file_free(&f);
	return r;
}

static void test_container(void)
{
	struct snap_writer w;
	build_file(&w);
	CHECK(&C, !w.oom, "writer ran out of memory");
	struct snap_file f;
	char err[256] = "";
	CHECK(&C, snap_file_parse(&f, w.data, w.len, err, sizeof(err)) == 0, "parse: %s", err);
	CHECK(&C, f.nsec == 2, "two sections, got %zu", f.nsec);
	struct snap_section *s = snap_file_find(&f, T1, 0);
	CHECK(&C, s && s->version == 1, "T1 found");
	struct snap_reader r;
	snap_reader_init(&r, s);
	char str[16];
	CHECK(&C, snap_get_u32(&r) == 0xdeadbeef && snap_get_u64(&r) == 42, "values come back");
	CHECK(&C, snap_get_str(&r, str, sizeof(str)) && !strcmp(str, "hello"), "string comes back");
	CHECK(&C, snap_reader_end(&r, err, sizeof(err)) == 0, "exact read: %s", err);
	CHECK(&C, snap_file_unused(&f, err, sizeof(err)) && strstr(err, "TST2 3"),
	      "an unread section is reported: %s", err);
	/* Reading past the end, or leaving bytes, is an error naming it. */
	s = snap_file_find(&f, T2, 3);
	snap_reader_init(&r, s);
	snap_get_u32(&r);
	CHECK(&C, snap_reader_end(&r, err, sizeof(err)) && strstr(err, "TST2 3") && strstr(err, "too few"),
	      "overrun: %s", err);
	snap_reader_init(&r, s);
	CHECK(&C, snap_reader_end(&r, err, sizeof(err)) && strstr(err, "left over"), "left over: %s", err);
	snap_reader_init(&r, snap_file_find(&f, T1, 0));
	snap_get_u32(&r);
	snap_get_u64(&r);
	CHECK(&C, !snap_get_str(&r, str, 4) && snap_reader_end(&r, err, sizeof(err)),
	      "a string longer than the buffer is refused");
	CHECK(&C, snap_file_unused(&f, err, sizeof(err)) == NULL, "all used now");
	snap_file_free(&f);

	/* Corrupt, truncated, foreign, newer. */
	uint8_t *bad = malloc(w.len);
	memcpy(bad, w.data, w.len);
	bad[SNAP_HEADER_BYTES + 26] ^= 1;
	CHECK(&C, parse(bad, w.len, err) && strstr(err, "corrupt") && strstr(err, "CRC"), "flipped bit: %s", err);
	CHECK(&C, parse(w.data, w.len - 9, err) && strstr(err, "truncated"), "truncated: %s", err);
	CHECK(&C, parse(w.data, 10, err) && strstr(err, "not a skiff snapshot"), "short: %s", err);
	memcpy(bad, w.data, w.len);
	memcpy(bad, "SKIFFSNQ", 8);
	CHECK(&C, parse(bad, w.len, err) && strstr(err, "not a skiff snapshot"), "magic: %s", err);
	memcpy(bad, w.data, w.len);
	bad[8] = SNAP_FORMAT_VERSION + 1;
	CHECK(&C, parse(bad, w.len, err) && strstr(err, "newer skiff"), "version: %s", err);
	free(bad);
	snap_writer_free(&w);

	/* A section twice is refused (a loader would see only one). */
	snap_writer_init(&w);
	snap_section_begin(&w, T1, 0, 1);
	snap_section_begin(&w, T1, 0, 1);
	snap_writer_finish(&w);
	CHECK(&C, parse(w.data, w.len, err) && strstr(err, "twice"), "duplicate: %s", err);
	snap_writer_free(&w);
}

static void test_hart(void)
{
	struct gram ram;
	gram_init(&ram, BOARD_RAM_BASE, 1 << 20);
	struct hart_config hc = { .hartid = 0, .timebase_hz = BOARD_TIMEBASE_HZ };
	struct hart *a = hart_create(&ram, &hc), *b = hart_create(&ram, &hc);
	hart_reset(a, BOARD_RAM_BASE + 0x100, 77);
	for (unsigned i = 1; i < 32; i++)
		hart_set_reg(a, i, 0x1111111111111111ull * i);
	hart_csr_write(a, 0x105, BOARD_RAM_BASE + 0x400 + 1);   /* stvec, vectored */
	hart_csr_write(a, 0x140, 0xfeedull);                    /* sscratch */
	hart_csr_write(a, 0x104, 0x222);                        /* sie */
	hart_csr_write(a, 0x180, (8ull << 60) | 0x80123);       /* satp Sv39 */
	hart_csr_write(a, 0x003, 0x47);                         /* fcsr */
	hart_csr_write(a, 0x144, 2);                            /* sip.SSIP */
	hart_set_timecmp(a, 123456789);
	struct snap_writer w;
	snap_writer_init(&w);
	hart_save(a, &w);
	snap_writer_finish(&w);
	struct snap_file f;
	char err[256];
	CHECK(&C, snap_file_parse(&f, w.data, w.len, err, sizeof(err)) == 0, "%s", err);
	struct snap_reader r;
	snap_reader_init(&r, snap_file_find(&f, SNAP_TAG('H', 'A', 'R', 'T'), 0));
	CHECK(&C, hart_load(b, &r) == 0 && snap_reader_end(&r, err, sizeof(err)) == 0, "load: %s", err);
	int same = 1;
	for (unsigned i = 0; i < 32; i++)
		same &= hart_get_reg(a, i) == hart_get_reg(b, i);
	CHECK(&C, same && hart_get_pc(a) == hart_get_pc(b), "registers and pc come back");
	static const unsigned csrs[] = { 0x003, 0x100, 0x104, 0x105, 0x106, 0x140, 0x141, 0x142,
					 0x143, 0x144, 0x14d, 0x180 };
	for (unsigned k = 0; k < sizeof(csrs) / sizeof(csrs[0]); k++) {
		uint64_t va = 0, vb = 1;
		hart_csr_read(a, csrs[k], &va);
		hart_csr_read(b, csrs[k], &vb);
		CHECK(&C, va == vb, "CSR %#x: %#llx vs %#llx", csrs[k], (unsigned long long)va,
		      (unsigned long long)vb);
	}
	/* A privilege the hart never has is refused, the hart left alone. */
	uint8_t *bad = malloc(w.len);
	memcpy(bad, w.data, w.len);
	size_t priv_at = SNAP_HEADER_BYTES + SNAP_SECTION_HEADER_BYTES + 31 * 8 + 32 * 8 + 8;
	bad[priv_at] = 3;
	snap_file_free(&f);
	/* Fix the CRC so the hart's own check is what refuses it. */
	uint32_t crc = (uint32_t)crc32(0L, bad, (uInt)(w.len - 4));
	memcpy(bad + w.len - 4, &crc, 4);
	CHECK(&C, snap_file_parse(&f, bad, w.len, err, sizeof(err)) == 0, "%s", err);
	hart_set_reg(b, 5, 555);
	snap_reader_init(&r, snap_file_find(&f, SNAP_TAG('H', 'A', 'R', 'T'), 0));
	CHECK(&C, hart_load(b, &r) != 0 && snap_reader_end(&r, err, sizeof(err)) != 0 &&
		  strstr(err, "privilege 3"), "machine mode refused: %s", err);
	CHECK(&C, hart_get_reg(b, 5) == 555, "a refused load changes nothing");
	snap_file_free(&f);
	free(bad);
	snap_writer_free(&w);
	hart_destroy(a);
	hart_destroy(b);
	gram_destroy(&ram);
}

static void test_ram_files(void)
{
	const uint64_t size = 4 << 20;
	struct gram ram;
	gram_init(&ram, BOARD_RAM_BASE, size);
	uint8_t page[4096];
	memset(page, 0xa5, sizeof(page));
	gram_write(&ram, BOARD_RAM_BASE + 0x3000, page, sizeof(page));
	gram_write(&ram, BOARD_RAM_BASE + size - 4096, page, 16);
	char full[128], diff[128];
	snprintf(full, sizeof(full), "%s/full", dir);
	snprintf(diff, sizeof(diff), "%s/diff", dir);
	int fd = gram_file_create(full);
	struct gram_save_stats st;
	CHECK(&C, fd >= 0 && gram_save_full(&ram, fd, &st) == 0, "full save");
	struct stat sb;
	fstat(fd, &sb);
	CHECK(&C, (uint64_t)sb.st_size == size, "the file is RAM-sized: %lld", (long long)sb.st_size);
	CHECK(&C, st.pages_written == 2, "two non-zero pages written, %llu", (unsigned long long)st.pages_written);
	CHECK(&C, sb.st_blocks * 512 < 64 * 1024, "zero pages are holes: %lld bytes allocated",
	      (long long)sb.st_blocks * 512);

	struct gram back;
	CHECK(&C, gram_init_file(&back, BOARD_RAM_BASE, size, fd) == 0, "map the file");
	close(fd);
	CHECK(&C, memcmp(back.host, ram.host, size) == 0, "the mapping holds RAM as it was");
	/* The file is in use: a new memory file may not be made over it. */
	CHECK(&C, gram_file_create(full) == -EBUSY, "a mapped memory file is not emptied");
	/* Writes go to a private copy, never to the file. */
	CHECK(&C, gram_track_dirty(&back, true) == 0, "tracking on");
	memset(page, 0x5a, sizeof(page));
	gram_write(&back, BOARD_RAM_BASE + 0x8000, page, 100);
	gram_write(&back, BOARD_RAM_BASE + 0x9000, page, 100);
	gram_write(&back, BOARD_RAM_BASE + 0x20000, page, 1);
	uint8_t disk[100];
	fd = open(full, O_RDONLY);
	CHECK(&C, pread(fd, disk, 100, 0x8000) == 100 && disk[0] == 0, "the file did not change");
	close(fd);

	fd = gram_file_create(diff);
	struct gram_run *runs;
	size_t nruns;
	CHECK(&C, fd >= 0 && gram_save_dirty(&back, fd, &runs, &nruns, &st) == 0, "diff save");
	CHECK(&C, nruns == 2 && runs[0].first == 8 && runs[0].count == 2 && runs[1].first == 0x20 &&
		  runs[1].count == 1, "dirty runs: %zu", nruns);

	/* Full + Diff = the RAM at the Diff. */
	int ffd = open(full, O_RDONLY);
	struct gram again;
	CHECK(&C, gram_init_file(&again, BOARD_RAM_BASE, size, ffd) == 0, "map the Full file again");
	close(ffd);
	CHECK(&C, gram_load_runs(&again, fd, runs, nruns) == 0, "apply the Diff");
	CHECK(&C, memcmp(again.host, back.host, size) == 0, "Full + Diff equals the RAM");
	struct gram_run outside = { .first = size / 4096, .count = 1 };
	CHECK(&C, gram_load_runs(&again, fd, &outside, 1) == -ERANGE, "a run past RAM is refused");
	close(fd);
	free(runs);
	gram_destroy(&again);
	gram_destroy(&back);
	gram_destroy(&ram);
}

/* Is byte off of the file at path in a hole (SEEK_DATA skips it)? */
static bool in_hole(const char *path, off_t off)
{
	int fd = open(path, O_RDONLY);
	off_t d = lseek(fd, off, SEEK_DATA);
	close(fd);
	return d != off;
}

static long long allocated(const char *path)
{
	struct stat sb;
	return stat(path, &sb) ? -1 : (long long)sb.st_blocks * 512;
}

/* Zero pages stay holes: a Diff whose dirty pages were zeroed again, and a
 * Full taken from RAM that is mapped from a memory file (its copy must not
 * fill the file's holes, and pages zeroed since must become holes). What
 * is checked is where the file has data, not how long anything took. */
static void test_zero_holes(void)
{
	const uint64_t size = 8 << 20, big = 2 << 20;
	struct gram ram;
	gram_init(&ram, BOARD_RAM_BASE, size);
	uint8_t page[4096];
	memset(page, 0xa5, sizeof(page));
	for (uint64_t off = 0; off < big; off += sizeof(page))
		gram_write(&ram, BOARD_RAM_BASE + off, page, sizeof(page));
	gram_write(&ram, BOARD_RAM_BASE + size - 4096, page, 16);
	char full[128], diff[128], full2[128];
	snprintf(full, sizeof(full), "%s/zfull", dir);
	snprintf(diff, sizeof(diff), "%s/zdiff", dir);
	snprintf(full2, sizeof(full2), "%s/zfull2", dir);
	int fd = gram_file_create(full);
	struct gram_save_stats st;
	CHECK(&C, fd >= 0 && gram_save_full(&ram, fd, &st) == 0, "full save");
	CHECK(&C, !in_hole(full, 0x1000) && in_hole(full, big), "the Full file has data where RAM does");

	/* The VM restored from it zeroes the 2 MiB it had written (as a
	 * guest clearing a buffer does) and writes one page of data. */
	struct gram back;
	CHECK(&C, gram_init_file(&back, BOARD_RAM_BASE, size, fd) == 0, "map the file");
	close(fd);
	CHECK(&C, gram_track_dirty(&back, true) == 0, "tracking on");
	uint8_t zero[4096] = { 0 };
	for (uint64_t off = 0; off < big; off += sizeof(zero))
		gram_write(&back, BOARD_RAM_BASE + off, zero, sizeof(zero));
	memset(page, 0x3c, sizeof(page));
	gram_write(&back, BOARD_RAM_BASE + big + 0x10000, page, sizeof(page));

	fd = gram_file_create(diff);
	struct gram_run *runs;
	size_t nruns;
	CHECK(&C, fd >= 0 && gram_save_dirty(&back, fd, &runs, &nruns, &st) == 0, "diff save");
	CHECK(&C, st.pages_written == 1, "one page of the Diff holds data, %llu written",
	      (unsigned long long)st.pages_written);
	CHECK(&C, in_hole(diff, 0) && in_hole(diff, big - 4096) && !in_hole(diff, big + 0x10000),
	      "the Diff's zeroed pages are holes, its data page is not");
	long long a = allocated(diff);
	CHECK(&C, a >= 0 && a < (long long)big / 4, "the Diff holds %lld bytes, not the 2 MiB zeroed", a);
	/* Full + Diff is the RAM: the zeros go over the Full file's data. */
	int ffd = open(full, O_RDONLY);
	struct gram again;
	CHECK(&C, gram_init_file(&again, BOARD_RAM_BASE, size, ffd) == 0, "map the Full file again");
	close(ffd);
	CHECK(&C, gram_load_runs(&again, fd, runs, nruns) == 0, "apply the Diff");
	CHECK(&C, memcmp(again.host, back.host, size) == 0, "Full + Diff equals the RAM");
	close(fd);
	free(runs);
	gram_destroy(&again);

	/* A Full snapshot of the restored VM: the old file's holes stay holes,
	 * the zeroed 2 MiB become holes again, the data is all there. */
	fd = gram_file_create(full2);
	CHECK(&C, fd >= 0 && gram_save_full(&back, fd, &st) == 0, "full save over a memory file");
	close(fd);
	CHECK(&C, in_hole(full2, 0) && in_hole(full2, big - 4096) && in_hole(full2, big + 0x20000) &&
		  !in_hole(full2, big + 0x10000) && !in_hole(full2, size - 4096),
	      "the second Full file has data only where RAM does");
	a = allocated(full2);
	CHECK(&C, a >= 0 && a < (long long)big / 4, "the second Full holds %lld bytes", a);
	ffd = open(full2, O_RDONLY);
	CHECK(&C, gram_init_file(&again, BOARD_RAM_BASE, size, ffd) == 0, "map the second Full file");
	close(ffd);
	CHECK(&C, memcmp(again.host, back.host, size) == 0, "it holds the RAM");
	gram_destroy(&again);
	gram_destroy(&back);
	gram_destroy(&ram);
}

static void discard(void *ctx, const uint8_t *buf, size_t n) { }

/* Set up queue 0 of the device in slot n as a driver would. */
static void drive(struct vm *vm, unsigned n, uint64_t ring)
{
	uint64_t b = BOARD_VIRTIO_BASE + n * BOARD_VIRTIO_SIZE;
	mmio_bus_write(&vm->bus, b + VIRTIO_MMIO_STATUS, 4, 3);
	mmio_bus_write(&vm->bus, b + VIRTIO_MMIO_DRIVER_FEATURES_SEL, 4, 1);
	mmio_bus_write(&vm->bus, b + VIRTIO_MMIO_DRIVER_FEATURES, 4, 1);   /* VERSION_1 */
	mmio_bus_write(&vm->bus, b + VIRTIO_MMIO_STATUS, 4, 11);
	mmio_bus_write(&vm->bus, b + VIRTIO_MMIO_QUEUE_SEL, 4, 0);
	mmio_bus_write(&vm->bus, b + VIRTIO_MMIO_QUEUE_NUM, 4, 8);
	mmio_bus_write(&vm->bus, b + VIRTIO_MMIO_QUEUE_DESC_LOW, 4, (uint32_t)ring);
	mmio_bus_write(&vm->bus, b + VIRTIO_MMIO_QUEUE_DESC_HIGH, 4, 0);
	mmio_bus_write(&vm->bus, b + VIRTIO_MMIO_QUEUE_DRIVER_LOW, 4, (uint32_t)ring + 0x200);
	mmio_bus_write(&vm->bus, b + VIRTIO_MMIO_QUEUE_DEVICE_LOW, 4, (uint32_t)ring + 0x400);
	mmio_bus_write(&vm->bus, b + VIRTIO_MMIO_QUEUE_READY, 4, 1);
	mmio_bus_write(&vm->bus, b + VIRTIO_MMIO_STATUS, 4, 15);
}

static uint64_t reg(struct vm *vm, unsigned n, unsigned off)
{
	uint64_t v = 0;
	mmio_bus_read(&vm->bus, BOARD_VIRTIO_BASE + n * BOARD_VIRTIO_SIZE + off, 4, &v);
	return v;
}

static void test_vm(void)
{
	char err[1024];
	struct vm_config spec;
	vm_config_init(&spec);
	json_t *doc = json_loads("{\"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 128},"
				 " \"balloon\": {\"amount_mib\": 4, \"deflate_on_oom\": false}}", 0, NULL);
	CHECK(&C, vm_config_from_json(&spec, doc, err, sizeof(err)) == NULL, "config: %s", err);
	json_decref(doc);
	spec.name = strdup("unit");
	spec.rng = true;
	struct vm_console con = { .out = discard };
	struct vm *a = vm_build(&spec, &con, NULL, -1, err, sizeof(err));
	CHECK(&C, a != NULL, "build: %s", err);
	if (!a)
		return;
	/* Slot 0 is virtio-rng (the first device with rng and no drives). */
	drive(a, 0, BOARD_RAM_BASE + 0x10000);
	uint32_t magic = 0xc0ffee;
	gram_write(&a->ram, BOARD_RAM_BASE + 0x123000, &magic, 4);
	plic_set_irq(&a->plic, 5, true);
	uint64_t prio = 0;
	mmio_bus_write(&a->bus, BOARD_PLIC_BASE + 4 * 5, 4, 3);
	char state[128], mem[128];
	snprintf(state, sizeof(state), "%s/vmstate", dir);
	snprintf(mem, sizeof(mem), "%s/memory", dir);
	char *conf = vmm_snapshot_conf(&spec);
	struct vm_snapshot_stats st;
	CHECK(&C, vm_snapshot_create(a, conf, VM_SNAPSHOT_DIFF, state, mem, &st, err, sizeof(err)) != 0 &&
		  strstr(err, "dirty page tracking"), "a Diff without tracking is refused: %s", err);
	CHECK(&C, vm_snapshot_create(a, conf, VM_SNAPSHOT_FULL, state, state, &st, err, sizeof(err)) != 0,
	      "state and memory in one file are refused");
	CHECK(&C, vm_snapshot_create(a, conf, VM_SNAPSHOT_FULL, state, mem, &st, err, sizeof(err)) == 0,
	      "create: %s", err);

	struct vm_snapshot_file *sf = vm_snapshot_open(state, err, sizeof(err));
	CHECK(&C, sf != NULL, "open: %s", err);
	struct vm_config rs;
	vm_config_init(&rs);
	struct vmm_snapshot_load_req rq = { .state_path = state, .mem_path = mem };
	rs.virtio_console = true;
	rs.rng = false;
	CHECK(&C, sf && !vmm_snapshot_spec(&rs, vm_snapshot_config(sf), &rq, err, sizeof(err)),
	      "the embedded configuration applies: %s", err);
	CHECK(&C, rs.ncpus == 2 && rs.mem_bytes == 128ull << 20 && rs.balloon &&
		  !rs.virtio_console && rs.rng, "the configuration comes back");
	rs.name = strdup("unit2");
	struct vm *b = sf ? vm_restore(&rs, &con, NULL, sf, mem, false, err, sizeof(err)) : NULL;
	CHECK(&C, b != NULL, "restore: %s", err);
	vm_snapshot_close(sf);
	if (b) {
		uint32_t got = 0;
		gram_read(&b->ram, BOARD_RAM_BASE + 0x123000, &got, 4);
		CHECK(&C, got == magic, "RAM comes back: %#x", got);
		CHECK(&C, reg(b, 0, VIRTIO_MMIO_STATUS) == 15 && reg(b, 0, VIRTIO_MMIO_QUEUE_READY) == 1 &&
			  reg(b, 0, VIRTIO_MMIO_QUEUE_DESC_LOW) == (uint32_t)(BOARD_RAM_BASE + 0x10000),
		      "the driver's queue comes back live");
		mmio_bus_read(&b->bus, BOARD_PLIC_BASE + 4 * 5, 4, &prio);
		uint64_t pend = 0;
		mmio_bus_read(&b->bus, BOARD_PLIC_BASE + 0x1000, 4, &pend);
		CHECK(&C, prio == 3 && (pend & (1u << 5)), "PLIC priority and pending come back");
		/* The restored VM's RAM is the file, privately: writing it
		 * leaves the file (and any other VM mapped from it) alone. */
		magic = 1;
		gram_write(&b->ram, BOARD_RAM_BASE + 0x123000, &magic, 4);
		int fd = open(mem, O_RDONLY);
		uint32_t disk = 0;
		CHECK(&C, pread(fd, &disk, 4, 0x123000) == 4 && disk == 0xc0ffee, "the file is unchanged");
		close(fd);
		vm_destroy(b);
	}
	/* A configuration that does not match the state: 1 hart for 2. */
	sf = vm_snapshot_open(state, err, sizeof(err));
	rs.ncpus = 1;
	b = vm_restore(&rs, &con, NULL, sf, mem, false, err, sizeof(err));
	CHECK(&C, !b && strstr(err, "hart"), "a VM of another shape is refused: %s", err);
	vm_snapshot_close(sf);
	vm_config_free(&rs);
	free(conf);
	vm_destroy(a);
	vm_config_free(&spec);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/skiff-test-snapshot-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_container();
	test_hart();
	test_ram_files();
	test_zero_holes();
	test_vm();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", dir);
	return check_summary(&C);
}
