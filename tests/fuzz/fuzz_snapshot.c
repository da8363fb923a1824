/*
 * libFuzzer target for the snapshot loader: the input is a state file.
 * It goes through what PUT /snapshot/load does before any hart runs: the
 * container check (src/base/snapfile.c), the embedded configuration
 * (src/vmm/api_snapshot.c, src/vmm/config_json.c), building the VM and
 * loading every hart, board device and virtio device into it
 * (src/vmm/snapshot.c and each device's load), then the VM is destroyed.
 * Whatever the input, that must end in a VM or a clear error, without a
 * crash, a leak, a hang or a thread left behind.
 *
 * So that mutations get past the CRC-32, the harness writes the right file
 * length and CRC into an input that starts with the magic, except when the
 * input's last byte is odd (then the container's own checks are fuzzed).
 *
 * The configuration names host files; an input whose configuration names a
 * path outside FUZZ_DIR is skipped (opening some devices has effects), and
 * RAM always comes from FUZZ_DIR/mem. FUZZ_DIR holds that memory file, a
 * disk image and a directory to share, as the seeds name them. FUZZ_DIR in
 * an input stands for this process's own directory (scratch_dir.h: a name of
 * the same length, so the sections' lengths hold), so side-by-side runs
 * do not share files.
 *
 * Seeds: with SKIFF_SNAPSHOT_SEEDS=DIR set, the target writes state files
 * of small VMs (devices in reset, devices set up the way a driver does it,
 * a Full and a Diff snapshot) into DIR and exits (tests/fuzz/seed_snapshot.sh).
 *
 * Build: tests/fuzz/meson.build (-Dfuzz=true for libFuzzer; every build
 * links fuzz-replay-NAME, which runs the files it is given once each).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <zlib.h>

#include "base/snapfile.h"
#include "scratch_dir.h"
#include "machine/board.h"
#include "virtio/virtio_mmio.h"
#include "vmm/api_snapshot.h"
#include "vmm/devices.h"
#include "vmm/snapshot.h"

#define FUZZ_DIR "/tmp/skiff-fuzz-snapshot"

/* This process's directory in place of FUZZ_DIR (scratch_dir.h). */
static char dir[64];
#define MEM_MIB 128

static void discard(void *ctx, const uint8_t *buf, size_t n) { }

static void make_file(const char *name, off_t size)
{
	char path[96];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDWR | O_CREAT, 0600);
	if (fd < 0 || ftruncate(fd, size)) {
		perror(path);
		exit(1);
	}
	close(fd);
}

static void make_env(void)
{
	if (dir[0])
		return;
	fuzz_dir_make(FUZZ_DIR, dir);
	char path[96];
	snprintf(path, sizeof(path), "%s/d", dir);
	if (mkdir(path, 0700)) {
		perror(path);
		exit(1);
	}
	make_file("mem", (off_t)MEM_MIB << 20);
	make_file("disk.img", 1 << 20);
}

/* A state file's length and CRC-32 made right (after a change). */
static void fix_container(uint8_t *buf, size_t size)
{
	uint64_t total = size;
	memcpy(buf + 16, &total, 8);
	uint32_t crc = (uint32_t)crc32(0L, buf, (uInt)(size - 4));
	memcpy(buf + size - 4, &crc, 4);
}

/* Does every string in v that looks like a path lie in FUZZ_DIR? */
static int paths_ok(const json_t *v)
{
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t n = strlen(dir);
		return !strchr(s, '/') || (!strncmp(s, dir, n) && s[n] == '/' && !strstr(s, ".."));
	}
	if (json_is_object(v)) {
		const char *k;
		const json_t *e;
		json_object_foreach((json_t *)v, k, e)
			if (!paths_ok(e))
				return 0;
	}
	if (json_is_array(v))
		for (size_t i = 0; i < json_array_size(v); i++)
			if (!paths_ok(json_array_get(v, i)))
				return 0;
	return 1;
}

static void restore_once(const char *path)
{
	char err[1024];
	struct vm_snapshot_file *sf = vm_snapshot_open(path, err, sizeof(err));
	if (!sf)
		return;
	json_t *conf = json_loads(vm_snapshot_config(sf), 0, NULL);
	int safe = conf && paths_ok(conf);
	json_decref(conf);
	if (safe) {
		struct vm_config spec;
		char mem[96];
		snprintf(mem, sizeof(mem), "%s/mem", dir);
		struct vmm_snapshot_load_req rq = { .state_path = path, .mem_path = mem };
		vm_config_init(&spec);
		if (!vmm_snapshot_spec(&spec, vm_snapshot_config(sf), &rq, err, sizeof(err)) &&
		    !vm_config_check(&spec, err, sizeof(err))) {
			struct vm_console con = { .out = discard };
			struct vm *vm = vm_restore(&spec, &con, NULL, sf, mem, true, err, sizeof(err));
			vm_destroy(vm);
		}
		vm_config_free(&spec);
	}
	vm_snapshot_close(sf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	make_env();
	if (size > (4u << 20))
		return 0;
	uint8_t *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	fuzz_dir_rewrite(buf, size, FUZZ_DIR, dir);
	if (size >= SNAP_HEADER_BYTES + 28 && !memcmp(buf, SNAP_MAGIC, 8) && !(buf[size - 1] & 1))
		fix_container(buf, size);
	char path[96];
	snprintf(path, sizeof(path), "%s/state-XXXXXX", dir);
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, buf, size) != (ssize_t)size) {
		perror("state file");
		exit(1);
	}
	close(fd);
	restore_once(path);
	unlink(path);
	free(buf);
	return 0;
}

/* ---- seeds ---- */

/* What a driver does to bring up queue q of the device in slot n: size 16,
 * the rings at `ring` in RAM, then DRIVER_OK (virtio 1.2 3.1.1). */
static void drive_slot(struct vm *vm, unsigned n, unsigned nq, uint64_t ring)
{
	uint64_t base = BOARD_VIRTIO_BASE + n * BOARD_VIRTIO_SIZE;
	uint64_t f0 = 0, f1 = 0;
	mmio_bus_write(&vm->bus, base + VIRTIO_MMIO_STATUS, 4, 1 | 2);
	mmio_bus_write(&vm->bus, base + VIRTIO_MMIO_DEVICE_FEATURES_SEL, 4, 0);
	mmio_bus_read(&vm->bus, base + VIRTIO_MMIO_DEVICE_FEATURES, 4, &f0);
	mmio_bus_write(&vm->bus, base + VIRTIO_MMIO_DEVICE_FEATURES_SEL, 4, 1);
	mmio_bus_read(&vm->bus, base + VIRTIO_MMIO_DEVICE_FEATURES, 4, &f1);
	mmio_bus_write(&vm->bus, base + VIRTIO_MMIO_DRIVER_FEATURES_SEL, 4, 0);
	mmio_bus_write(&vm->bus, base + VIRTIO_MMIO_DRIVER_FEATURES, 4, f0);
	mmio_bus_write(&vm->bus, base + VIRTIO_MMIO_DRIVER_FEATURES_SEL, 4, 1);
	mmio_bus_write(&vm->bus, base + VIRTIO_MMIO_DRIVER_FEATURES, 4, f1);
	mmio_bus_write(&vm->bus, base + VIRTIO_MMIO_STATUS, 4, 1 | 2 | 8);
	for (unsigned q = 0; q < nq; q++) {
		uint64_t at = ring + q * 0x1000;
		mmio_bus_write(&vm->bus, base + VIRTIO_MMIO_QUEUE_SEL, 4, q);
		mmio_bus_write(&vm->bus, base + VIRTIO_MMIO_QUEUE_NUM, 4, 16);
		mmio_bus_write(&vm->bus, base + VIRTIO_MMIO_QUEUE_DESC_LOW, 4, (uint32_t)at);
		mmio_bus_write(&vm->bus, base + VIRTIO_MMIO_QUEUE_DESC_HIGH, 4, at >> 32);
		mmio_bus_write(&vm->bus, base + VIRTIO_MMIO_QUEUE_DRIVER_LOW, 4, (uint32_t)(at + 0x400));
		mmio_bus_write(&vm->bus, base + VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 4, at >> 32);
		mmio_bus_write(&vm->bus, base + VIRTIO_MMIO_QUEUE_DEVICE_LOW, 4, (uint32_t)(at + 0x800));
		mmio_bus_write(&vm->bus, base + VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 4, at >> 32);
		mmio_bus_write(&vm->bus, base + VIRTIO_MMIO_QUEUE_READY, 4, 1);
	}
	mmio_bus_write(&vm->bus, base + VIRTIO_MMIO_STATUS, 4, 1 | 2 | 8 | 4);
}

/* A seed written by this process names its directory: put the token back
 * (scratch_dir.h), then the container's length and CRC. */
static void seed_tokens(const char *path)
{
	FILE *f = fopen(path, "r+b");
	static uint8_t buf[1 << 20];
	size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
	if (!n || n == sizeof(buf) || n < SNAP_HEADER_BYTES + 28) {
		fprintf(stderr, "seed %s: cannot read it back\n", path);
		exit(1);
	}
	fuzz_dir_rewrite(buf, n, dir, FUZZ_DIR);
	fix_container(buf, n);
	if (fseek(f, 0, SEEK_SET) || fwrite(buf, 1, n, f) != n || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void make_seed(const char *out, const char *name, const char *config_text, bool drive,
		      bool diff)
{
	char err[1024], state[512], mem[512], diffstate[512];
	struct vm_config spec;
	vm_config_init(&spec);
	char *config = strdup(config_text);
	if (!config)
		exit(1);
	fuzz_dir_rewrite(config, strlen(config), FUZZ_DIR, dir);
	json_t *doc = json_loads(config, 0, NULL);
	free(config);
	if (!doc || vm_config_from_json(&spec, doc, err, sizeof(err))) {
		fprintf(stderr, "seed %s: %s\n", name, doc ? err : "bad JSON");
		exit(1);
	}
	json_decref(doc);
	spec.name = strdup("seed");
	spec.rng = true;
	struct vm_console con = { .out = discard };
	struct vm *vm = vm_build(&spec, &con, NULL, -1, err, sizeof(err));
	if (!vm) {
		fprintf(stderr, "seed %s: %s\n", name, err);
		exit(1);
	}
	vm_snapshot_track_dirty(vm, true, err, sizeof(err));
	for (unsigned n = 0; drive && n < vm->devices->nslots; n++)
		drive_slot(vm, n, vm->devices->slot[n].dev->nqueues, BOARD_RAM_BASE + (n + 1) * 0x10000);
	atomic_store(&vm->vcpu[0].state, HSM_STARTED);
	char *conf = vmm_snapshot_conf(&spec);
	struct vm_snapshot_stats st;
	snprintf(state, sizeof(state), "%s/%s", out, name);
	snprintf(mem, sizeof(mem), "%s/mem", dir);
	if (!conf || vm_snapshot_create(vm, conf, VM_SNAPSHOT_FULL, state, mem, &st, err, sizeof(err))) {
		fprintf(stderr, "seed %s: %s\n", name, err);
		exit(1);
	}
	if (diff) {
		uint32_t word = 0x12345678;
		gram_write(&vm->ram, BOARD_RAM_BASE + 0x5000, &word, 4);
		snprintf(diffstate, sizeof(diffstate), "%s/%s-diff", out, name);
		char diffmem[96];
		snprintf(diffmem, sizeof(diffmem), "%s/diffmem", dir);
		if (vm_snapshot_create(vm, conf, VM_SNAPSHOT_DIFF, diffstate, diffmem, &st,
				       err, sizeof(err))) {
			fprintf(stderr, "seed %s diff: %s\n", name, err);
			exit(1);
		}
		seed_tokens(diffstate);
	}
	seed_tokens(state);
	free(conf);
	vm_destroy(vm);
	vm_config_free(&spec);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *out = getenv("SKIFF_SNAPSHOT_SEEDS");
	if (!out)
		return 0;
	make_env();
	make_seed(out, "plain", "{\"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 128}}",
		  false, false);
	make_seed(out, "devices",
		  "{\"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 128},"
		  " \"drives\": [{\"drive_id\": \"d0\", \"path_on_host\": \"" FUZZ_DIR "/disk.img\","
		  "   \"is_root_device\": false, \"is_read_only\": false}],"
		  " \"network-interfaces\": [{\"iface_id\": \"n0\", \"backend\": \"user\"}],"
		  " \"shares\": [{\"tag\": \"s\", \"path_on_host\": \"" FUZZ_DIR "/d\"}],"
		  " \"balloon\": {\"amount_mib\": 0, \"deflate_on_oom\": true,"
		  "   \"stats_polling_interval_s\": 1}}",
		  true, true);
	exit(0);
}
