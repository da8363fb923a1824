/*
 * Unit tests for the per-VM API's configuration side, without sockets or a
 * VM: the shape checks (src/api/json_check.c), JSON to vm_config for every
 * section (src/vmm/config_json.c) with each class of bad input (unknown
 * field, wrong type, out of range, missing required field, id in the path
 * not matching the body, unknown id, missing or wrong files, rules across
 * sections) refused with a message naming the field and the configuration
 * left exactly as it was, --config-file documents and their round trip
 * through GET /vm/config, and the API router's Firecracker state rules
 * before InstanceStart (src/vmm/api.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/http.h"
#include "api/json_check.h"
#include "check.h"
#include "vmm/api.h"
#include "vmm/config_json.h"

struct t {
	struct check_counts c;
	char dir[64];
	char kernel[128], zeros[128], initrd[128], disk[128], disk2[128], ro_disk[128], qcow[128], share[128];
	char *bodies[512];
	size_t nbodies;
};

/* ------------------------------------------------------------ helpers */

static void write_file(const char *path, const void *data, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0 || write(fd, data, n) != (ssize_t)n) {
		fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
		exit(2);
	}
	close(fd);
	chmod(path, mode);
}

static void write_str(const char *path, const char *text)
{
	write_file(path, text, strlen(text), 0644);
}

static void setup(struct t *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/skiff-api-test-XXXXXX");
	if (!mkdtemp(t->dir)) {
		perror("mkdtemp");
		exit(2);
	}
	snprintf(t->kernel, sizeof(t->kernel), "%s/Image", t->dir);
	snprintf(t->initrd, sizeof(t->initrd), "%s/initrd", t->dir);
	snprintf(t->disk, sizeof(t->disk), "%s/disk.raw", t->dir);
	snprintf(t->disk2, sizeof(t->disk2), "%s/disk2.raw", t->dir);
	snprintf(t->ro_disk, sizeof(t->ro_disk), "%s/ro.raw", t->dir);
	snprintf(t->qcow, sizeof(t->qcow), "%s/disk.qcow2", t->dir);
	snprintf(t->share, sizeof(t->share), "%s/share", t->dir);
	static const char zeros[4096];
	/* A kernel is checked to be a RISC-V Image: a header (Linux
	 * Documentation/arch/riscv/boot-image-header.rst) with "RSC\x05" at 56. */
	char image[4096] = { 0 };
	memcpy(image + 8, "\0\0\x20\0\0\0\0\0", 8);       /* text_offset 2 MiB */
	memcpy(image + 16, "\0\x10\0\0\0\0\0\0", 8);      /* image_size 4 KiB */
	memcpy(image + 48, "RISCV\0\0\0RSC\x05", 12);
	write_file(t->kernel, image, sizeof(image), 0644);
	snprintf(t->zeros, sizeof(t->zeros), "%s/zeros", t->dir);
	write_file(t->zeros, zeros, sizeof(zeros), 0644);
	write_file(t->initrd, zeros, 512, 0644);
	write_file(t->disk, zeros, sizeof(zeros), 0644);
	write_file(t->disk2, zeros, sizeof(zeros), 0644);
	write_file(t->ro_disk, zeros, sizeof(zeros), 0444);
	write_file(t->qcow, "QFI\xfb\0\0\0\3", 8, 0644);
	mkdir(t->share, 0755);
}

static void cleanup(struct t *t)
{
	const char *files[] = { t->kernel, t->zeros, t->initrd, t->disk, t->disk2, t->ro_disk, t->qcow };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(files[i]);
	char p[192];
	snprintf(p, sizeof(p), "%s/log", t->dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/metrics", t->dir);
	unlink(p);
	rmdir(t->share);
	rmdir(t->dir);
	for (size_t i = 0; i < t->nbodies; i++)
		free(t->bodies[i]);
}

/* A body with %s and the like filled in; freed at the end. */
static const char *B(struct t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *B(struct t *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0 || t->nbodies == sizeof(t->bodies) / sizeof(t->bodies[0]))
		exit(2);
	va_end(ap);
	t->bodies[t->nbodies++] = s;
	return s;
}

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &e);
	if (!v) {
		fprintf(stderr, "test JSON does not parse: %s: %s\n", text, e.text);
		exit(2);
	}
	return v;
}

static char *dump(const struct vm_config *s)
{
	json_t *d = vm_config_to_json(s);
	char *txt = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(d);
	return txt ? txt : strdup("(null)");
}

/* Run one configuration request (with the path's id, or NULL); check
 * success or a failure naming `want`, and that a failure left the spec
 * unchanged. */
static void run(struct t *t, int line, struct vm_config *s, enum vm_config_request fn, const char *id,
		const char *body, const char *want)
{
	char err[1024];
	json_t *b = parse(body);
	char *before = dump(s);
	const char *e = vm_config_set(s, fn, id, b, NULL, err, sizeof(err));
	char *after = dump(s);
	if (want) {
		CHECK(&t->c, e && strstr(e, want), "line %d: body %s: wanted an error with \"%s\", got %s",
		      line, body, want, e ? e : "success");
		CHECK(&t->c, !strcmp(before, after), "line %d: a refused body changed the spec:\n%s\n%s",
		      line, before, after);
	} else {
		CHECK(&t->c, !e, "line %d: body %s: %s", line, body, e ? e : "");
	}
	free(before);
	free(after);
	json_decref(b);
}

#define OK(fn, body) run(t, __LINE__, s, fn, NULL, body, NULL)
#define BAD(fn, body, want) run(t, __LINE__, s, fn, NULL, body, want)
#define OK_ID(fn, id, body) run(t, __LINE__, s, fn, id, body, NULL)
#define BAD_ID(fn, id, body, want) run(t, __LINE__, s, fn, id, body, want)

/* ------------------------------------------------------------ json_check */

static const struct api_field inner_fields[] = {
	{ "n", API_T_UINT, true },
	{ NULL }
};

static const struct api_field outer_fields[] = {
	{ "name", API_T_STRING, true },
	{ "flag", API_T_BOOL },
	{ "ratio", API_T_NUMBER },
	{ "inner", API_T_OBJECT, false, inner_fields },
	{ "list", API_T_ARRAY, false, inner_fields, API_T_OBJECT, 2 },
	{ "names", API_T_ARRAY, false, NULL, API_T_STRING },
	{ NULL }
};

static void check_shape(struct t *t, const char *body, const char *want)
{
	char err[512];
	json_t *v = parse(body);
	const char *e = api_json_check_object(v, outer_fields, "x", err, sizeof(err));
	if (want)
		CHECK(&t->c, e && strstr(e, want), "shape %s: wanted \"%s\", got %s", body, want, e ? e : "ok");
	else
		CHECK(&t->c, !e, "shape %s: %s", body, e ? e : "");
	json_decref(v);
}

static void test_json_check(struct t *t)
{
	check_shape(t, "{\"name\": \"a\"}", NULL);
	check_shape(t, "{\"name\": \"a\", \"flag\": null, \"inner\": null}", NULL);
	check_shape(t, "{\"name\": \"a\", \"ratio\": 1, \"inner\": {\"n\": 0}, \"list\": [{\"n\": 1}], \"names\": []}", NULL);
	check_shape(t, "{}", "x.name: missing required field `name`");
	check_shape(t, "{\"name\": null}", "x.name: missing required field");
	check_shape(t, "{\"name\": \"a\", \"bogus\": 1}", "x: unknown field `bogus`");
	check_shape(t, "{\"name\": 1}", "x.name: expected a string, got an integer");
	check_shape(t, "{\"name\": \"a\", \"flag\": \"yes\"}", "x.flag: expected a boolean, got a string");
	check_shape(t, "{\"name\": \"a\", \"ratio\": \"1\"}", "x.ratio: expected a number");
	check_shape(t, "{\"name\": \"a\", \"inner\": {\"n\": -1}}", "x.inner.n: must not be negative");
	check_shape(t, "{\"name\": \"a\", \"inner\": {\"n\": 1.5}}", "x.inner.n: expected a non-negative integer, got a number with a fraction");
	check_shape(t, "{\"name\": \"a\", \"inner\": {\"n\": 1.0}}", "x.inner.n: expected a non-negative integer");
	check_shape(t, "{\"name\": \"a\", \"inner\": {}}", "x.inner.n: missing required field");
	check_shape(t, "{\"name\": \"a\", \"inner\": {\"n\": 1, \"m\": 2}}", "x.inner: unknown field `m`");
	check_shape(t, "{\"name\": \"a\", \"inner\": []}", "x.inner: expected an object, got an array");
	check_shape(t, "{\"name\": \"a\", \"list\": {}}", "x.list: expected an array, got an object");
	check_shape(t, "{\"name\": \"a\", \"list\": [{\"n\": 1}, {\"n\": \"2\"}]}", "x.list[1].n: expected a non-negative integer, got a string");
	check_shape(t, "{\"name\": \"a\", \"list\": [{\"n\": 1}, {\"n\": 2}, {\"n\": 3}]}", "x.list: at most 2 entries");
	check_shape(t, "{\"name\": \"a\", \"list\": [null]}", "x.list[0]: expected an object, got null");
	check_shape(t, "{\"name\": \"a\", \"names\": [\"a\", 3]}", "x.names[1]: expected a string");
	/* Control characters in an unknown name do not reach the message. */
	check_shape(t, "{\"name\": \"a\", \"b\\u0001\\n\": 1}", "unknown field `b??`");

	char err[512];
	json_t *v;
	CHECK(&t->c, !api_json_parse_body("{\"a\": 1, \"a\": 2}", 16, err, sizeof(err)) &&
	      strstr(err, "duplicate"), "duplicate keys: %s", err);
	CHECK(&t->c, !api_json_parse_body("[1]", 3, err, sizeof(err)) && strstr(err, "expected an object"),
	      "array body: %s", err);
	CHECK(&t->c, !api_json_parse_body("{\"a\": 1} x", 10, err, sizeof(err)), "trailing garbage accepted");
	CHECK(&t->c, !api_json_parse_body("{\"a\": \"\0\"}", 9, err, sizeof(err)), "NUL in a string accepted");
	CHECK(&t->c, !api_json_parse_body("{\"a\": \"\xff\"}", 9, err, sizeof(err)), "invalid UTF-8 accepted");
	CHECK(&t->c, !api_json_parse_body("{\"a\": 99999999999999999999}", 27, err, sizeof(err)),
	      "an integer beyond 64 bits accepted");
	char deep[5000];
	size_t n = 0;
	for (int i = 0; i < 2400; i++)
		deep[n++] = '[';
	deep[n] = 0;
	CHECK(&t->c, !api_json_parse_body(deep, n, err, sizeof(err)), "deep nesting accepted");
	v = api_json_parse_body("{\"a\": [1]}", 10, err, sizeof(err));
	CHECK(&t->c, v != NULL, "good body refused: %s", err);
	json_decref(v);

	char *f = api_fault_body("bad \xff\xfe byte \"quoted\"");
	CHECK(&t->c, f && !strcmp(f, "{\"fault_message\":\"bad ?? byte \\\"quoted\\\"\"}"), "fault body: %s", f ? f : "NULL");
	free(f);
}

/* ------------------------------------------------------------ sections */

static void test_boot_source(struct t *t)
{
	struct vm_config spec, *s = &spec;
	vm_config_init(s);
	enum vm_config_request fn = VM_PUT_BOOT_SOURCE;
	BAD(fn, "{}", "boot-source.kernel_image_path: missing required field");
	BAD(fn, "{\"kernel_image_path\": 5}", "boot-source.kernel_image_path: expected a string");
	BAD(fn, "{\"kernel_image_path\": \"\"}", "boot-source.kernel_image_path: must not be empty");
	BAD(fn, B(t, "{\"kernel_image_path\": \"%s/none\"}", t->dir), "boot-source.kernel_image_path: the kernel file");
	BAD(fn, B(t, "{\"kernel_image_path\": \"%s\"}", t->dir), "is not a regular file");
	BAD(fn, B(t, "{\"kernel_image_path\": \"%s\"}", t->zeros), "not a RISC-V Image (no magic");
	BAD(fn, B(t, "{\"kernel_image_path\": \"%s\", \"initrd_path\": \"%s/none\"}", t->kernel, t->dir),
	    "boot-source.initrd_path: the initrd file");
	BAD(fn, B(t, "{\"kernel_image_path\": \"%s\", \"root\": 1}", t->kernel), "boot-source: unknown field `root`");
	char longargs[1200];
	memset(longargs, 'a', sizeof(longargs) - 1);
	longargs[sizeof(longargs) - 1] = 0;
	BAD(fn, B(t, "{\"kernel_image_path\": \"%s\", \"boot_args\": \"%s\"}", t->kernel, longargs),
	    "boot-source.boot_args: 1199 bytes");
	BAD(fn, B(t, "{\"kernel_image_path\": \"%s\", \"boot_args\": \"a\\nb\"}", t->kernel), "boot-source.boot_args: must be one line");
	OK(fn, B(t, "{\"kernel_image_path\": \"%s\", \"initrd_path\": \"%s\", \"boot_args\": \"console=ttyS0\"}",
		 t->kernel, t->initrd));
	CHECK(&t->c, s->kernel && !strcmp(s->kernel, t->kernel) && s->initrd &&
	      s->append && !strcmp(s->append, "console=ttyS0"), "boot source not applied");
	/* PUT replaces the whole section. */
	OK(fn, B(t, "{\"kernel_image_path\": \"%s\"}", t->kernel));
	CHECK(&t->c, !s->initrd && !s->append, "PUT kept the old initrd/boot_args");
	vm_config_free(s);
}

static void test_machine_config(struct t *t)
{
	struct vm_config spec, *s = &spec;
	vm_config_init(s);
	enum vm_config_request put = VM_PUT_MACHINE, patch = VM_PATCH_MACHINE;
	CHECK(&t->c, s->ncpus == 1 && s->mem_bytes == 512ull << 20, "defaults");
	BAD(put, "{\"vcpu_count\": 2}", "machine-config.mem_size_mib: missing required field");
	BAD(put, "{\"mem_size_mib\": 256}", "machine-config.vcpu_count: missing required field");
	BAD(put, "{\"vcpu_count\": 0, \"mem_size_mib\": 256}", "machine-config.vcpu_count: 0 is out of range");
	BAD(put, "{\"vcpu_count\": 9, \"mem_size_mib\": 256}", "machine-config.vcpu_count: 9 is out of range");
	BAD(put, "{\"vcpu_count\": -1, \"mem_size_mib\": 256}", "machine-config.vcpu_count: must not be negative");
	BAD(put, "{\"vcpu_count\": \"2\", \"mem_size_mib\": 256}", "machine-config.vcpu_count: expected a non-negative integer, got a string");
	BAD(put, "{\"vcpu_count\": 2.5, \"mem_size_mib\": 256}", "machine-config.vcpu_count: expected a non-negative integer");
	BAD(put, "{\"vcpu_count\": 1, \"mem_size_mib\": 1}", "machine-config.mem_size_mib: 1 is out of range");
	BAD(put, "{\"vcpu_count\": 1, \"mem_size_mib\": 9223372036854775807}", "machine-config.mem_size_mib");
	BAD(put, "{\"vcpu_count\": 1, \"mem_size_mib\": 256, \"smt\": true}", "machine-config.smt");
	BAD(put, "{\"vcpu_count\": 1, \"mem_size_mib\": 256, \"smt\": 0}", "machine-config.smt: expected a boolean");
	BAD(put, "{\"vcpu_count\": 1, \"mem_size_mib\": 256, \"cpu_template\": \"T2\"}", "machine-config: unknown field `cpu_template`");
	BAD(put, "{\"vcpu_count\": 2, \"mem_size_mib\": 256, \"cpu_quota\": 0}", "machine-config.cpu_quota: must be more than 0");
	BAD(put, "{\"vcpu_count\": 2, \"mem_size_mib\": 256, \"cpu_quota\": -0.5}", "machine-config.cpu_quota");
	BAD(put, "{\"vcpu_count\": 2, \"mem_size_mib\": 256, \"cpu_quota\": 2.5}", "machine-config.cpu_quota: 2.5 is more than vcpu_count (2)");
	BAD(put, "{\"vcpu_count\": 2, \"mem_size_mib\": 256, \"cpu_quota\": \"1\"}", "machine-config.cpu_quota: expected a number");
	OK(put, "{\"vcpu_count\": 2, \"mem_size_mib\": 256, \"smt\": false, \"track_dirty_pages\": true, \"cpu_quota\": 1.5}");
	CHECK(&t->c, s->ncpus == 2 && s->mem_bytes == 256ull << 20 && s->cpu_quota == 1.5 &&
	      s->track_dirty_pages, "machine-config not applied");
	BAD(patch, "{}", "Empty PATCH request.");
	BAD(patch, "{\"vcpu_count\": 1}", "machine-config.cpu_quota: 1.5 is more than vcpu_count (1)");
	OK(patch, "{\"mem_size_mib\": 1024}");
	CHECK(&t->c, s->ncpus == 2 && s->mem_bytes == 1024ull << 20 && s->cpu_quota == 1.5,
	      "PATCH changed more than it named");
	/* PUT resets what it leaves out (Firecracker). */
	OK(put, "{\"vcpu_count\": 1, \"mem_size_mib\": 256}");
	CHECK(&t->c, s->cpu_quota == 0 && !s->track_dirty_pages, "PUT kept cpu_quota / track_dirty_pages");
	vm_config_free(s);
}

static void test_drives(struct t *t)
{
	struct vm_config spec, *s = &spec;
	vm_config_init(s);
	enum vm_config_request put = VM_PUT_DRIVE;
	BAD_ID(put, "rootfs", "{\"drive_id\": \"rootfs\", \"is_root_device\": true}", "drives.path_on_host: missing required field");
	BAD_ID(put, "rootfs", B(t, "{\"path_on_host\": \"%s\", \"is_root_device\": true}", t->disk), "drives.drive_id: missing required field");
	BAD_ID(put, "rootfs", B(t, "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\"}", t->disk), "drives.is_root_device: missing required field");
	BAD_ID(put, "rootfs", B(t, "{\"drive_id\": \"other\", \"path_on_host\": \"%s\", \"is_root_device\": true}", t->disk),
	       "drives.drive_id: The id from the path does not match the id from the body!");
	BAD_ID(put, "a-b", B(t, "{\"drive_id\": \"a-b\", \"path_on_host\": \"%s\", \"is_root_device\": false}", t->disk),
	       "drives.drive_id: `a-b` is not a valid id");
	BAD_ID(put, "rootfs", B(t, "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s/missing.ext4\", \"is_root_device\": true}", t->dir),
	       "drives.path_on_host: the drive file");
	BAD_ID(put, "rootfs", B(t, "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": \"yes\"}", t->disk),
	       "drives.is_root_device: expected a boolean");
	BAD_ID(put, "rootfs", B(t, "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true, \"cache_type\": \"Unsafe\"}", t->disk),
	       "drives: unknown field `cache_type`");
	BAD_ID(put, "rootfs", B(t, "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true, \"format\": \"vmdk\"}", t->disk),
	       "drives.format: must be \"raw\" or \"qcow2\"");
	BAD_ID(put, "rootfs", B(t, "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true, \"format\": \"qcow2\"}", t->disk),
	       "drives.format: '");
	BAD_ID(put, "rootfs", B(t, "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true, \"serial\": \"123456789012345678901\"}", t->disk),
	       "drives.serial: at most 20 characters");
	BAD_ID(put, "rootfs", B(t, "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true, \"serial\": \"a\\tb\"}", t->disk),
	       "drives.serial: printable ASCII only");
	BAD_ID(put, "rootfs", B(t, "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true, \"rate_limiter\": {\"ops\": {\"size\": 100}}}", t->disk),
	       "drives.rate_limiter.ops.refill_time: missing required field");
	BAD_ID(put, "rootfs", B(t, "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true, \"rate_limiter\": {\"bandwidth\": {\"size\": -5, \"refill_time\": 100}}}", t->disk),
	       "drives.rate_limiter.bandwidth.size: must not be negative");
	BAD_ID(put, "rootfs", B(t, "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true, \"rate_limiter\": {\"iops\": {}}}", t->disk),
	       "drives.rate_limiter: unknown field `iops`");
	if (geteuid() != 0)
		BAD_ID(put, "ro", B(t, "{\"drive_id\": \"ro\", \"path_on_host\": \"%s\", \"is_root_device\": false}", t->ro_disk),
		       "cannot be opened for writing");
	OK_ID(put, "ro", B(t, "{\"drive_id\": \"ro\", \"path_on_host\": \"%s\", \"is_root_device\": false, \"is_read_only\": true, \"format\": \"raw\", \"serial\": \"RO-1\"}", t->ro_disk));
	OK_ID(put, "rootfs", B(t, "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true, \"is_read_only\": false, "
			       "\"rate_limiter\": {\"bandwidth\": {\"size\": 1000, \"refill_time\": 100}, \"ops\": {\"size\": 10, \"one_time_burst\": 5, \"refill_time\": 1000}}}",
			       t->disk));
	CHECK(&t->c, s->ndrives == 2 && !strcmp(s->drives[0].id, "rootfs") && s->drives[0].root,
	      "the root drive is not first");
	CHECK(&t->c, s->drives[0].limiter.bandwidth.size == 1000 && s->drives[0].limiter.ops.one_time_burst == 5 &&
	      s->drives[0].limiter.ops.refill_time_ms == 1000, "rate limiter not applied");
	CHECK(&t->c, s->drives[1].read_only && s->drives[1].format == VM_DISK_RAW &&
	      !strcmp(s->drives[1].serial, "RO-1"), "ro drive fields");
	BAD_ID(put, "second", B(t, "{\"drive_id\": \"second\", \"path_on_host\": \"%s\", \"is_root_device\": true}", t->disk2),
	       "drives.is_root_device: A root block device already exists!");
	/* Replacing the root drive by itself is fine; so is qcow2 with its magic. */
	OK_ID(put, "rootfs", B(t, "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true}", t->disk2));
	OK_ID(put, "q", B(t, "{\"drive_id\": \"q\", \"path_on_host\": \"%s\", \"is_root_device\": false, \"format\": \"qcow2\"}", t->qcow));
	CHECK(&t->c, s->ndrives == 3 && !strcmp(s->drives[0].path, t->disk2), "replace in place");
	/* A format left out is settled now, once, and kept (drive_format.c):
	 * raw here; a writable image with a qcow2 header is refused; a
	 * read-only one is qcow2 unless its header names a backing file. */
	CHECK(&t->c, s->drives[0].format == VM_DISK_RAW, "format settled as raw: %d", s->drives[0].format);
	BAD_ID(put, "q", B(t, "{\"drive_id\": \"q\", \"path_on_host\": \"%s\", \"is_root_device\": false}", t->qcow),
	       "qcow2 header, but the format of a writable disk is never guessed");
	OK_ID(put, "q", B(t, "{\"drive_id\": \"q\", \"path_on_host\": \"%s\", \"is_root_device\": false, \"is_read_only\": true}", t->qcow));
	CHECK(&t->c, s->ndrives == 3 && s->drives[2].format == VM_DISK_QCOW2, "read-only qcow2 probed");
	char backed[160];
	snprintf(backed, sizeof(backed), "%s/backed.qcow2", t->dir);
	/* magic, version 3, backing_file_offset 0x100, backing_file_size 4 */
	write_file(backed, "QFI\xfb\0\0\0\3\0\0\0\0\0\0\1\0\0\0\0\4", 20, 0444);
	BAD_ID(put, "q", B(t, "{\"drive_id\": \"q\", \"path_on_host\": \"%s\", \"is_root_device\": false, \"is_read_only\": true}", backed),
	       "reads as qcow2 and names a backing file");
	unlink(backed);
	/* Backing chains: off unless asked for; backing_dirs are kept as
	 * canonical paths that must exist. */
	CHECK(&t->c, !s->drives[2].backing && s->drives[2].nbacking_dirs == 0, "backing off by default");
	BAD_ID(put, "q", B(t, "{\"drive_id\": \"q\", \"path_on_host\": \"%s\", \"is_root_device\": false, "
			   "\"format\": \"qcow2\", \"backing_dirs\": [\"%s/nothere\"]}", t->qcow, t->dir),
	       "drives.backing_dirs[0]: backing directory");
	BAD_ID(put, "q", B(t, "{\"drive_id\": \"q\", \"path_on_host\": \"%s\", \"is_root_device\": false, "
			   "\"format\": \"qcow2\", \"backing_dirs\": [\"%s\"]}", t->qcow, t->disk),
	       "not a directory or block device");
	BAD_ID(put, "q", B(t, "{\"drive_id\": \"q\", \"path_on_host\": \"%s\", \"is_root_device\": false, "
			   "\"backing\": \"yes\"}", t->qcow), "drives.backing: expected a boolean");
	OK_ID(put, "q", B(t, "{\"drive_id\": \"q\", \"path_on_host\": \"%s\", \"is_root_device\": false, "
			  "\"format\": \"qcow2\", \"backing_dirs\": [\"%s/share/../share\"]}", t->qcow, t->dir));
	CHECK(&t->c, s->drives[2].backing && s->drives[2].nbacking_dirs == 1 &&
	      !strcmp(s->drives[2].backing_dirs[0], t->share), "backing_dirs canonical: %s",
	      s->drives[2].nbacking_dirs ? s->drives[2].backing_dirs[0] : "none");
	OK_ID(put, "q", B(t, "{\"drive_id\": \"q\", \"path_on_host\": \"%s\", \"is_root_device\": false, "
			  "\"format\": \"qcow2\", \"backing\": true}", t->qcow));
	CHECK(&t->c, s->drives[2].backing && !s->drives[2].nbacking_dirs, "backing on");
	for (int i = 3; i < VM_MAX_DRIVES; i++) {
		char id[8];
		snprintf(id, sizeof(id), "d%d", i);
		OK_ID(put, id, B(t, "{\"drive_id\": \"%s\", \"path_on_host\": \"%s\", \"is_root_device\": false}", id, t->disk));
	}
	BAD_ID(put, "one_more", B(t, "{\"drive_id\": \"one_more\", \"path_on_host\": \"%s\", \"is_root_device\": false}", t->disk),
	       "drives: at most 8 drives");

	/* PATCH (after start): path and rate limiter of a known drive. */
	struct vm_drive_patch p;
	char err[1024];
	json_t *b = parse("{\"drive_id\": \"nope\", \"path_on_host\": \"x\"}");
	char *before = dump(s);
	CHECK(&t->c, vm_config_set(s, VM_PATCH_DRIVE, "nope", b, &p, err, sizeof(err)) && strstr(err, "drives.drive_id: no drive `nope`"),
	      "PATCH unknown drive: %s", err);
	json_decref(b);
	b = parse("{\"drive_id\": \"rootfs\", \"is_read_only\": true}");
	CHECK(&t->c, vm_config_set(s, VM_PATCH_DRIVE, "rootfs", b, &p, err, sizeof(err)) && strstr(err, "drives: unknown field `is_read_only`"),
	      "PATCH with a PUT-only field: %s", err);
	json_decref(b);
	b = parse("{\"drive_id\": \"rootfs\"}");
	CHECK(&t->c, vm_config_set(s, VM_PATCH_DRIVE, "ro", b, &p, err, sizeof(err)) && strstr(err, "does not match"),
	      "PATCH id mismatch: %s", err);
	/* A runtime update called without its result, a request with a
	 * result it has not, or no request at all: refused, nothing changed. */
	CHECK(&t->c, vm_config_set(s, VM_PATCH_DRIVE, "rootfs", b, NULL, err, sizeof(err)) &&
	      strstr(err, "drives: PATCH request called without its result"), "PATCH without a result: %s", err);
	CHECK(&t->c, vm_config_set(s, VM_PUT_VSOCK, NULL, b, &p, err, sizeof(err)) &&
	      strstr(err, "vsock: PUT request called with a result"), "PUT with a result: %s", err);
	CHECK(&t->c, vm_config_set(s, VM_CONFIG_NONE, NULL, b, NULL, err, sizeof(err)) &&
	      vm_config_set(s, VM_CONFIG_REQUESTS, NULL, b, NULL, err, sizeof(err)) &&
	      strstr(err, "no such request"), "no request: %s", err);
	json_decref(b);
	char *after = dump(s);
	CHECK(&t->c, !strcmp(before, after), "refused PATCHes changed the spec");
	free(after);
	b = parse("{\"drive_id\": \"rootfs\", \"rate_limiter\": {\"ops\": {\"size\": 0, \"refill_time\": 0}}}");
	CHECK(&t->c, !vm_config_set(s, VM_PATCH_DRIVE, "rootfs", b, &p, err, sizeof(err)) && p.index == 0 &&
	      p.limiter_changed && !p.path_changed, "PATCH limiter: %s", err);
	json_decref(b);
	CHECK(&t->c, s->drives[0].limiter.ops.size == 0, "PATCH ops bucket not replaced");
	/* A new path_on_host has its format settled as at PUT (drive_format.c):
	 * given, or probed only on a read-only drive; refused ones change
	 * nothing. */
	struct { const char *id, *path, *extra, *want; } bad[] = {
		{ "rootfs", t->qcow, "", "qcow2 header, but the format of a writable disk is never guessed" },
		{ "rootfs", t->disk, ", \"format\": \"qcow2\"", "not a qcow2 image" },
		{ "rootfs", t->disk, ", \"format\": \"vmdk\"", "drives.format: must be \"raw\" or \"qcow2\"" },
		{ "rootfs", NULL, ", \"format\": \"raw\"", "drives.format: only with a new path_on_host" },
	};
	free(before);
	before = dump(s);
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		b = bad[k].path ? parse(B(t, "{\"drive_id\": \"%s\", \"path_on_host\": \"%s\"%s}", bad[k].id,
					  bad[k].path, bad[k].extra))
				: parse(B(t, "{\"drive_id\": \"%s\"%s}", bad[k].id, bad[k].extra));
		CHECK(&t->c, vm_config_set(s, VM_PATCH_DRIVE, bad[k].id, b, &p, err, sizeof(err)) && strstr(err, bad[k].want),
		      "PATCH %zu: want '%s', got: %s", k, bad[k].want, err);
		json_decref(b);
	}
	after = dump(s);
	CHECK(&t->c, !strcmp(before, after), "refused path PATCHes changed the spec");
	free(after);
	b = parse(B(t, "{\"drive_id\": \"q\", \"path_on_host\": \"%s\"}", t->disk));
	CHECK(&t->c, !vm_config_set(s, VM_PATCH_DRIVE, "q", b, &p, err, sizeof(err)) && p.path_changed && !p.limiter_changed &&
	      !strcmp(s->drives[2].path, t->disk) && s->drives[2].format == VM_DISK_RAW && s->drives[2].backing,
	      "PATCH a qcow2 drive to a raw file without format: settled raw, backing kept: %s", err);
	json_decref(b);
	b = parse("{\"drive_id\": \"rootfs\", \"rate_limiter\": {\"bandwidth\": {\"size\": 4096, \"refill_time\": 100}}}");
	CHECK(&t->c, !vm_config_set(s, VM_PATCH_DRIVE, "rootfs", b, &p, err, sizeof(err)), "PATCH limiter: %s", err);
	json_decref(b);
	b = parse(B(t, "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"format\": \"qcow2\"}", t->qcow));
	CHECK(&t->c, !vm_config_set(s, VM_PATCH_DRIVE, "rootfs", b, &p, err, sizeof(err)) && p.path_changed &&
	      !strcmp(s->drives[0].path, t->qcow) && s->drives[0].format == VM_DISK_QCOW2 &&
	      s->drives[0].limiter.bandwidth.size == 4096, "PATCH path with format, limiter kept: %s", err);
	json_decref(b);
	b = parse(B(t, "{\"drive_id\": \"ro\", \"path_on_host\": \"%s\"}", t->qcow));
	CHECK(&t->c, !vm_config_set(s, VM_PATCH_DRIVE, "ro", b, &p, err, sizeof(err)) && p.path_changed &&
	      s->drives[1].format == VM_DISK_QCOW2 && s->drives[1].read_only, "PATCH a read-only drive: probed: %s", err);
	json_decref(b);
	free(before);
	vm_config_free(s);
}

static void test_net(struct t *t)
{
	struct vm_config spec, *s = &spec;
	vm_config_init(s);
	enum vm_config_request put = VM_PUT_NET;
	BAD_ID(put, "eth0", "{}", "network-interfaces.iface_id: missing required field");
	BAD_ID(put, "eth0", "{\"iface_id\": \"eth1\"}", "The id from the path does not match");
	BAD_ID(put, "eth0", "{\"iface_id\": \"eth0\", \"backend\": \"bridge\"}", "network-interfaces.backend: must be \"user\" or \"tap\"");
	BAD_ID(put, "eth0", "{\"iface_id\": \"eth0\", \"backend\": \"tap\"}", "network-interfaces.host_dev_name: required for the tap backend");
	BAD_ID(put, "eth0", "{\"iface_id\": \"eth0\", \"backend\": \"user\", \"host_dev_name\": \"tap0\"}", "network-interfaces.host_dev_name: only for the tap backend");
	BAD_ID(put, "eth0", "{\"iface_id\": \"eth0\", \"host_dev_name\": \"a-very-long-tap-name\"}", "network-interfaces.host_dev_name: a network interface name is 1 to 15 bytes");
	BAD_ID(put, "eth0", "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap/0\"}", "network-interfaces.host_dev_name: no '/'");
	BAD_ID(put, "eth0", "{\"iface_id\": \"eth0\", \"guest_mac\": \"06:00:ac:10:00\"}", "network-interfaces.guest_mac: not a MAC address");
	BAD_ID(put, "eth0", "{\"iface_id\": \"eth0\", \"guest_mac\": \"06:00:ac:10:00:0g\"}", "network-interfaces.guest_mac: not a MAC address");
	BAD_ID(put, "eth0", "{\"iface_id\": \"eth0\", \"guest_mac\": \"01:00:5e:00:00:01\"}", "is a multicast address");
	BAD_ID(put, "eth0", "{\"iface_id\": \"eth0\", \"mtu\": 1500}", "network-interfaces: unknown field `mtu`");
	BAD_ID(put, "eth0", "{\"iface_id\": \"eth0\", \"port_forwards\": [{\"protocol\": \"sctp\", \"host_port\": 2222, \"guest_port\": 22}]}",
	       "network-interfaces.port_forwards[0].protocol: must be \"tcp\" or \"udp\"");
	BAD_ID(put, "eth0", "{\"iface_id\": \"eth0\", \"port_forwards\": [{\"protocol\": \"tcp\", \"host_port\": 0, \"guest_port\": 22}]}",
	       "network-interfaces.port_forwards[0].host_port: 0 is out of range");
	BAD_ID(put, "eth0", "{\"iface_id\": \"eth0\", \"port_forwards\": [{\"protocol\": \"tcp\", \"host_port\": 2222, \"guest_port\": 70000}]}",
	       "network-interfaces.port_forwards[0].guest_port: 70000 is out of range");
	BAD_ID(put, "eth0", "{\"iface_id\": \"eth0\", \"port_forwards\": [{\"protocol\": \"tcp\", \"host_port\": 2222}]}",
	       "network-interfaces.port_forwards[0].guest_port: missing required field");
	BAD_ID(put, "eth0", "{\"iface_id\": \"eth0\", \"port_forwards\": [{\"protocol\": \"tcp\", \"host_address\": \"localhost\", \"host_port\": 2222, \"guest_port\": 22}]}",
	       "network-interfaces.port_forwards[0].host_address: not an IPv4 address");
	BAD_ID(put, "eth0", "{\"iface_id\": \"eth0\", \"port_forwards\": [{\"protocol\": \"tcp\", \"host_port\": 2222, \"guest_port\": 22}, "
			    "{\"protocol\": \"tcp\", \"host_address\": \"127.0.0.1\", \"host_port\": 2222, \"guest_port\": 23}]}",
	       "network-interfaces.port_forwards: host tcp 127.0.0.1:2222 is forwarded twice");
	BAD_ID(put, "eth0", "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"port_forwards\": [{\"protocol\": \"tcp\", \"host_port\": 2222, \"guest_port\": 22}]}",
	       "network-interfaces.port_forwards: only for the user backend");
	char many[4096];
	size_t n = (size_t)snprintf(many, sizeof(many), "{\"iface_id\": \"eth0\", \"port_forwards\": [");
	for (int i = 0; i <= VM_MAX_PORT_FORWARDS; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "%s{\"protocol\": \"udp\", \"host_port\": %d, \"guest_port\": 53}",
				      i ? ", " : "", 5000 + i);
	snprintf(many + n, sizeof(many) - n, "]}");
	BAD_ID(put, "eth0", many, "network-interfaces.port_forwards: at most 16 entries");
	BAD_ID(put, "eth0", "{\"iface_id\": \"eth0\", \"rx_rate_limiter\": {\"bandwidth\": {\"size\": 1, \"refill_time\": \"1\"}}}",
	       "network-interfaces.rx_rate_limiter.bandwidth.refill_time: expected a non-negative integer");

	OK_ID(put, "eth0", "{\"iface_id\": \"eth0\", \"guest_mac\": \"06:00:AC:10:00:02\", \"port_forwards\": "
			   "[{\"protocol\": \"tcp\", \"host_port\": 2222, \"guest_port\": 22}, {\"protocol\": \"udp\", \"host_address\": \"0.0.0.0\", \"host_port\": 5353, \"guest_port\": 53}]}");
	CHECK(&t->c, s->nnets == 1 && s->nets[0].backend == VM_NET_USER && s->nets[0].mac_set &&
	      s->nets[0].mac[2] == 0xac && s->nets[0].nfwd == 2 && s->nets[0].fwd[1].udp &&
	      !strcmp(s->nets[0].fwd[1].host_addr, "0.0.0.0"), "user net not applied");
	OK_ID(put, "tap_if", "{\"iface_id\": \"tap_if\", \"host_dev_name\": \"tap0\", \"tx_rate_limiter\": {\"ops\": {\"size\": 100, \"refill_time\": 1000}}}");
	CHECK(&t->c, s->nnets == 2 && s->nets[1].backend == VM_NET_TAP && !strcmp(s->nets[1].tap_name, "tap0") &&
	      s->nets[1].tx.ops.size == 100, "tap net not applied");
	BAD_ID(put, "other", "{\"iface_id\": \"other\", \"guest_mac\": \"06:00:ac:10:00:02\"}", "The MAC address is already in use: 06:00:ac:10:00:02");
	BAD_ID(put, "other", "{\"iface_id\": \"other\", \"host_dev_name\": \"tap0\"}", "The host device name is already in use: tap0");
	BAD_ID(put, "other", "{\"iface_id\": \"other\", \"port_forwards\": [{\"protocol\": \"tcp\", \"host_port\": 2222, \"guest_port\": 80}]}",
	       "host tcp 127.0.0.1:2222 is forwarded twice");
	/* restrict and host_loopback: user networking only; the default keeps
	 * QEMU's behaviour (the host's loopback at 10.0.2.2). */
	BAD_ID(put, "other", "{\"iface_id\": \"other\", \"host_dev_name\": \"tap1\", \"restrict\": true}",
	       "restrict and host_loopback are only for the user backend");
	BAD_ID(put, "n3", "{\"iface_id\": \"n3\", \"host_loopback\": \"off\"}",
	       "network-interfaces.host_loopback: expected a boolean");
	OK_ID(put, "n3", "{\"iface_id\": \"n3\", \"restrict\": true, \"host_loopback\": false}");
	CHECK(&t->c, s->nets[2].restricted && s->nets[2].no_host_loopback, "restrict, host_loopback");
	CHECK(&t->c, !s->nets[0].restricted && !s->nets[0].no_host_loopback, "QEMU's default");
	OK_ID(put, "n4", "{\"iface_id\": \"n4\"}");
	BAD_ID(put, "n5", "{\"iface_id\": \"n5\"}", "network-interfaces: at most 4 network interfaces");

	struct vm_net_patch p;
	char err[1024];
	json_t *b = parse("{\"iface_id\": \"wlan0\", \"rx_rate_limiter\": {}}");
	CHECK(&t->c, vm_config_set(s, VM_PATCH_NET, "wlan0", b, &p, err, sizeof(err)) && strstr(err, "no network interface `wlan0`"),
	      "PATCH unknown interface: %s", err);
	json_decref(b);
	b = parse("{\"iface_id\": \"eth0\", \"guest_mac\": \"06:00:00:00:00:01\"}");
	CHECK(&t->c, vm_config_set(s, VM_PATCH_NET, "eth0", b, &p, err, sizeof(err)) && strstr(err, "unknown field `guest_mac`"),
	      "PATCH a PUT-only field: %s", err);
	json_decref(b);
	b = parse("{\"iface_id\": \"tap_if\", \"rx_rate_limiter\": {\"bandwidth\": {\"size\": 5, \"refill_time\": 10}}}");
	CHECK(&t->c, !vm_config_set(s, VM_PATCH_NET, "tap_if", b, &p, err, sizeof(err)) && p.index == 1 && p.rx_changed && !p.tx_changed &&
	      s->nets[1].rx.bandwidth.size == 5 && s->nets[1].tx.ops.size == 100, "PATCH rx limiter: %s", err);
	json_decref(b);
	vm_config_free(s);
}

static void test_vsock_balloon_shares(struct t *t)
{
	struct vm_config spec, *s = &spec;
	vm_config_init(s);
	enum vm_config_request vs = VM_PUT_VSOCK;
	BAD(vs, "{\"guest_cid\": 3}", "vsock.uds_path: missing required field");
	BAD(vs, B(t, "{\"guest_cid\": 2, \"uds_path\": \"%s/v.sock\"}", t->dir), "vsock.guest_cid: 2 is out of range (3 to 4294967294)");
	BAD(vs, B(t, "{\"guest_cid\": 4294967295, \"uds_path\": \"%s/v.sock\"}", t->dir), "vsock.guest_cid: 4294967295 is out of range");
	BAD(vs, B(t, "{\"guest_cid\": 3, \"uds_path\": \"%s/nodir/v.sock\"}", t->dir), "vsock.uds_path: the directory");
	BAD(vs, B(t, "{\"guest_cid\": 3, \"uds_path\": \"%s\"}", t->kernel), "vsock.uds_path: '");
	char longp[200];
	memset(longp, 'x', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = 0;
	BAD(vs, B(t, "{\"guest_cid\": 3, \"uds_path\": \"/tmp/%s\"}", longp), "vsock.uds_path: must be 1 to");
	OK(vs, B(t, "{\"guest_cid\": 3, \"uds_path\": \"%s/v.sock\", \"vsock_id\": \"vsock0\"}", t->dir));
	CHECK(&t->c, s->vsock && s->vsock_cid == 3 && s->vsock_uds, "vsock not applied");

	enum vm_config_request bl = VM_PUT_BALLOON;
	BAD(bl, "{\"amount_mib\": 10}", "balloon.deflate_on_oom: missing required field");
	BAD(bl, "{\"amount_mib\": 600, \"deflate_on_oom\": true}", "balloon.amount_mib: 600 MiB is more than the guest memory");
	BAD(bl, "{\"amount_mib\": 10, \"deflate_on_oom\": true, \"free_page_hinting\": 1}", "balloon.free_page_hinting");
	BAD(bl, "{\"amount_mib\": 10, \"deflate_on_oom\": true, \"stats_polling_interval_s\": 4294967296}", "balloon.stats_polling_interval_s");
	json_t *none = vm_config_balloon_json(s);
	CHECK(&t->c, !none, "balloon JSON before PUT");
	char err[1024];
	json_t *b = parse("{\"amount_mib\": 1}");
	CHECK(&t->c, vm_config_set(s, VM_PATCH_BALLOON, NULL, b, NULL, err, sizeof(err)) && strstr(err, "balloon not configured"), "PATCH absent balloon: %s", err);
	json_decref(b);
	OK(bl, "{\"amount_mib\": 200, \"deflate_on_oom\": true, \"stats_polling_interval_s\": 5}");
	/* RAM cannot shrink below the balloon. */
	BAD(VM_PATCH_MACHINE, "{\"mem_size_mib\": 128}", "balloon.amount_mib: 200 MiB is more than the guest memory");
	b = parse("{\"amount_mib\": 2000}");
	CHECK(&t->c, vm_config_set(s, VM_PATCH_BALLOON, NULL, b, NULL, err, sizeof(err)) && strstr(err, "more than the guest memory"), "PATCH too big: %s", err);
	json_decref(b);
	b = parse("{\"amount_mib\": 50}");
	CHECK(&t->c, !vm_config_set(s, VM_PATCH_BALLOON, NULL, b, NULL, err, sizeof(err)) && s->balloon_target_mib == 50, "PATCH balloon: %s", err);
	json_decref(b);
	b = parse("{\"stats_polling_interval_s\": 0}");
	CHECK(&t->c, vm_config_set(s, VM_PATCH_BALLOON_STATS, NULL, b, NULL, err, sizeof(err)) && strstr(err, "cannot be turned on or off"),
	      "stats off after start: %s", err);
	json_decref(b);
	b = parse("{\"stats_polling_interval_s\": 1}");
	CHECK(&t->c, !vm_config_set(s, VM_PATCH_BALLOON_STATS, NULL, b, NULL, err, sizeof(err)) && s->balloon_stats_interval_s == 1,
	      "stats interval: %s", err);
	json_decref(b);
	json_t *bj = vm_config_balloon_json(s);
	CHECK(&t->c, bj && json_integer_value(json_object_get(bj, "amount_mib")) == 50 &&
	      json_is_true(json_object_get(bj, "deflate_on_oom")), "balloon JSON");
	json_decref(bj);

	enum vm_config_request sh = VM_PUT_SHARE;
	BAD_ID(sh, "data", "{}", "shares.path_on_host: missing required field");
	BAD_ID(sh, "data", B(t, "{\"path_on_host\": \"%s\"}", t->kernel), "shares.path_on_host: '");
	BAD_ID(sh, "data", B(t, "{\"path_on_host\": \"%s/none\"}", t->dir), "No such file");
	BAD_ID(sh, "data", B(t, "{\"tag\": \"other\", \"path_on_host\": \"%s\"}", t->share), "shares.tag: The id from the path does not match");
	BAD_ID(sh, "data", B(t, "{\"path_on_host\": \"%s\", \"is_read_only\": 1}", t->share), "shares.is_read_only: expected a boolean");
	BAD_ID(sh, "data", B(t, "{\"tag\": \"a b\", \"path_on_host\": \"%s\"}", t->share), "shares.tag: `a b` is not a valid tag");
	BAD_ID(sh, "data", B(t, "{\"tag\": \"-x\", \"path_on_host\": \"%s\"}", t->share), "shares.tag: `-x` is not a valid tag");
	OK_ID(sh, "my-share.v2", B(t, "{\"path_on_host\": \"%s\"}", t->share));
	OK_ID(sh, "data", B(t, "{\"path_on_host\": \"%s\", \"is_read_only\": true}", t->share));
	OK_ID(sh, "data", B(t, "{\"tag\": \"data\", \"path_on_host\": \"%s\"}", t->share));
	CHECK(&t->c, s->nshares == 2 && !s->shares[1].read_only && !strcmp(s->shares[1].tag, "data") &&
	      !strcmp(s->shares[0].tag, "my-share.v2"), "share replaced");
	/* The bools a table row stores (api_json_store) land in the entry. */
	OK_ID(sh, "dev", B(t, "{\"path_on_host\": \"%s\", \"is_read_only\": true, \"nodev\": true}", t->share));
	CHECK(&t->c, s->nshares == 3 && s->shares[2].read_only && s->shares[2].nodev, "share flags stored");

	enum vm_config_request lg = VM_PUT_LOGGER;
	BAD(lg, "{\"level\": \"Loud\"}", "logger.level: must be one of");
	BAD(lg, "{\"log_path\": \"\"}", "logger.log_path: must not be empty");
	BAD(lg, "{\"module\": \"api\"}", "logger: unknown field `module`");
	OK(lg, "{\"level\": \"debug\", \"show_level\": true}");
	CHECK(&t->c, s->logger.set && s->logger.level == VMM_LOG_DEBUG && s->logger.show_level, "logger");
	enum vm_config_request mt = VM_PUT_METRICS;
	BAD(mt, "{}", "metrics.metrics_path: missing required field");
	OK(mt, B(t, "{\"metrics_path\": \"%s/metrics\"}", t->dir));
	BAD(mt, B(t, "{\"metrics_path\": \"%s/metrics\"}", t->dir), "Reinitialization of metrics not allowed.");
	vm_config_free(s);
}

/* ------------------------------------------------------------ documents */

static void test_documents(struct t *t)
{
	struct vm_config spec, *s = &spec;
	vm_config_init(s);
	enum vm_config_request doc = VM_CONFIG_DOCUMENT;
	BAD(doc, "{\"cpu-config\": {}}", "unknown field `cpu-config`");
	BAD(doc, "{\"mmds-config\": {}}", "mmds-config.network_interfaces: missing required field");
	BAD(doc, "{\"entropy\": {\"rate_limiter\": {\"bandwidth\": {\"size\": -1}}}}", "entropy.rate_limiter.bandwidth.size");
	OK(doc, "{\"entropy\": {\"rate_limiter\": {\"bandwidth\": {\"size\": 100, \"refill_time\": 10}}}}");
	CHECK(&t->c, s->entropy && s->entropy_limiter.bandwidth.size == 100 &&
		s->entropy_limiter.bandwidth.refill_time_ms == 10 && s->entropy_limiter.ops.size == 0,
	      "the entropy section was not kept");
	BAD(doc, "{\"drives\": {}}", "drives: expected an array, got an object");
	BAD(doc, "{\"machine-config\": {\"vcpu_count\": 1}}", "machine-config.mem_size_mib: missing required field");
	BAD(doc, B(t, "{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"%s\", \"is_root_device\": false}, "
		      "{\"drive_id\": \"a\", \"path_on_host\": \"%s\", \"is_root_device\": false}]}", t->disk, t->disk2),
	    "drives[1].drive_id: `a` is used twice");
	BAD(doc, B(t, "{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"%s/none\", \"is_root_device\": false}]}", t->dir),
	    "drives[0].path_on_host: the drive file");
	BAD(doc, "{\"shares\": [{\"path_on_host\": \"/\"}]}", "shares[0].tag: missing required field");
	BAD(doc, "{\"network-interfaces\": [{\"iface_id\": \"eth0\", \"guest_mac\": \"zz\"}]}",
	    "network-interfaces[0].guest_mac: not a MAC address");
	BAD(doc, "{\"console-ports\": [{\"name\": \"a/b\", \"uds_path\": \"/tmp/p.sock\"}]}",
	    "console-ports[0].name: `a/b` is not a valid port name");
	BAD(doc, "{\"console-ports\": [{\"name\": \"..\", \"uds_path\": \"/tmp/p.sock\"}]}",
	    "console-ports[0].name: `..` is not a valid port name");
	BAD(doc, "{\"console-ports\": [{\"name\": \"a\"}]}", "console-ports[0].uds_path: missing required field");
	BAD(doc, "{\"console-ports\": [{\"name\": \"a\", \"uds_path\": \"\"}]}",
	    "console-ports[0].uds_path: must be 1 to 107 bytes");
	BAD(doc, "{\"console-ports\": [{\"name\": \"a\", \"uds_path\": \"/tmp/p.sock\"}, "
		 "{\"name\": \"a\", \"uds_path\": \"/tmp/q.sock\"}]}", "console-ports[1].name: `a` is used twice");
	BAD(doc, "{\"console-ports\": [{\"name\": \"a\", \"uds_path\": \"/tmp/p.sock\"}, "
		 "{\"name\": \"b\", \"uds_path\": \"/tmp/p.sock\"}]}",
	    "console-ports[1].uds_path: '/tmp/p.sock' is also the socket of port `a`");
	BAD(doc, B(t, "{\"console-ports\": [{\"name\": \"a\", \"uds_path\": \"%s/none/p.sock\"}]}", t->dir),
	    "console-ports[0].uds_path: the directory of");
	/* All or nothing: a good section before a bad one is not kept. */
	BAD(doc, B(t, "{\"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 256}, \"boot-source\": {\"kernel_image_path\": \"%s/none\"}}", t->dir),
	    "boot-source.kernel_image_path");
	CHECK(&t->c, s->ncpus == 1, "a refused document was partly applied");

	const char *full = B(t,
		"{\"boot-source\": {\"kernel_image_path\": \"%s\", \"initrd_path\": \"%s\", \"boot_args\": \"console=ttyS0 quiet\"},"
		" \"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 384, \"smt\": false, \"cpu_quota\": 0.5},"
		" \"drives\": [{\"drive_id\": \"data\", \"path_on_host\": \"%s\", \"is_root_device\": false, \"is_read_only\": true, \"serial\": \"S1\"},"
		"            {\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true, \"format\": \"raw\","
		"             \"rate_limiter\": {\"bandwidth\": {\"size\": 1048576, \"refill_time\": 1000}}}],"
		" \"network-interfaces\": [{\"iface_id\": \"eth0\", \"guest_mac\": \"06:00:00:00:00:01\","
		"             \"port_forwards\": [{\"protocol\": \"tcp\", \"host_port\": 2222, \"guest_port\": 22}]}],"
		" \"vsock\": {\"guest_cid\": 7, \"uds_path\": \"%s/v2.sock\"},"
		" \"balloon\": {\"amount_mib\": 64, \"deflate_on_oom\": false},"
		" \"logger\": {\"log_path\": \"%s/log\", \"level\": \"Warning\"},"
		" \"metrics\": {\"metrics_path\": \"%s/metrics\"},"
		" \"shares\": [{\"tag\": \"home\", \"path_on_host\": \"%s\", \"is_read_only\": true}],"
		" \"console-ports\": [{\"name\": \"org.skiff.agent.0\", \"uds_path\": \"%s/agent.sock\"}]}",
		t->kernel, t->initrd, t->ro_disk, t->disk, t->dir, t->dir, t->dir, t->share, t->dir);
	OK(doc, full);
	CHECK(&t->c, s->ndrives == 2 && s->drives[0].root && !strcmp(s->drives[1].id, "data"),
	      "document drives (root first)");
	CHECK(&t->c, s->ncpus == 2 && s->mem_bytes == 384ull << 20 && s->cpu_quota == 0.5 &&
	      s->nnets == 1 && s->vsock_cid == 7 && s->balloon && s->nshares == 1 &&
	      s->logger.level == VMM_LOG_WARNING && s->metrics.set, "document sections");
	CHECK(&t->c, s->nports == 1 && !strcmp(s->ports[0].name, "org.skiff.agent.0") &&
	      strstr(s->ports[0].uds_path, "agent.sock"), "document console ports");

	/* GET /vm/config reads back as the same configuration. */
	json_t *out = vm_config_to_json(s);
	struct vm_config again;
	vm_config_init(&again);
	char err[1024];
	CHECK(&t->c, out && !vm_config_from_json(&again, out, err, sizeof(err)), "round trip: %s", err);
	char *d1 = dump(s), *d2 = dump(&again);
	CHECK(&t->c, !strcmp(d1, d2), "round trip differs:\n%s\n%s", d1, d2);
	free(d1);
	free(d2);
	json_decref(out);
	vm_config_free(&again);

	/* Nulls are absent sections (the GET /vm/config of a fresh VMM). */
	struct vm_config fresh;
	vm_config_init(&fresh);
	out = vm_config_to_json(&fresh);
	struct vm_config fresh2;
	vm_config_init(&fresh2);
	CHECK(&t->c, out && !vm_config_from_json(&fresh2, out, err, sizeof(err)), "fresh round trip: %s", err);
	json_decref(out);
	vm_config_free(&fresh);
	vm_config_free(&fresh2);

	/* A file on disk. */
	char path[192];
	snprintf(path, sizeof(path), "%s/cfg.json", t->dir);
	write_str(path, "{\"machine-config\": {\"vcpu_count\": 3, \"mem_size_mib\": 256},\n \"bogus\": 1}");
	struct vm_config f;
	vm_config_init(&f);
	CHECK(&t->c, vm_config_load_file(&f, path, err, sizeof(err)) && strstr(err, "unknown field `bogus`") &&
	      strstr(err, "cfg.json"), "file with a bad section: %s", err);
	write_str(path, "{\"machine-config\": {\"vcpu_count\": 3,");
	CHECK(&t->c, vm_config_load_file(&f, path, err, sizeof(err)) && strstr(err, "line 1"), "truncated file: %s", err);
	write_str(path, "[]");
	CHECK(&t->c, vm_config_load_file(&f, path, err, sizeof(err)) && strstr(err, "must be a JSON object"), "array file: %s", err);
	write_str(path, "{\"machine-config\": {\"vcpu_count\": 3, \"mem_size_mib\": 256}}");
	CHECK(&t->c, !vm_config_load_file(&f, path, err, sizeof(err)) && f.ncpus == 3, "good file: %s", err);
	CHECK(&t->c, vm_config_load_file(&f, t->dir, err, sizeof(err)) != NULL, "a directory as config file");
	unlink(path);
	vm_config_free(&f);
	vm_config_free(s);
}

/* ------------------------------------------------------------ the router */

struct reply {
	unsigned status;
	char text[1200];   /* fault_message or the body */
};

static struct reply call(struct vmm *v, const char *method, const char *path, const char *body)
{
	struct api_request rq = {
		.method = !strcmp(method, "GET") ? API_GET : !strcmp(method, "PUT") ? API_PUT :
			  !strcmp(method, "PATCH") ? API_PATCH : API_OTHER,
		.method_name = method, .path = path, .body = body ? body : "", .body_len = body ? strlen(body) : 0,
	};
	struct api_response rs = { 0 };
	vmm_handle(v, &rq, &rs);
	struct reply r = { .status = rs.status };
	if (rs.body) {
		json_t *j = json_loads(rs.body, 0, NULL);
		const json_t *fm = j ? json_object_get(j, "fault_message") : NULL;
		snprintf(r.text, sizeof(r.text), "%s", fm ? json_string_value(fm) : rs.body);
		json_decref(j);
		free(rs.body);
	}
	return r;
}

static void expect(struct t *t, int line, struct vmm *v, const char *method, const char *path, const char *body,
		   unsigned status, const char *want)
{
	struct reply r = call(v, method, path, body);
	CHECK(&t->c, r.status == status && (!want || strstr(r.text, want)),
	      "line %d: %s %s: got %u \"%s\", wanted %u \"%s\"", line, method, path, r.status, r.text, status,
	      want ? want : "");
}

#define EXPECT(m, p, b, st, w) expect(t, __LINE__, v, m, p, b, st, w)

/* The answer has `status` and does not contain `unwanted`. */
static void expect_not(struct t *t, int line, struct vmm *v, const char *method, const char *path,
		       const char *body, unsigned status, const char *unwanted)
{
	struct reply r = call(v, method, path, body);
	CHECK(&t->c, r.status == status && !strstr(r.text, unwanted),
	      "line %d: %s %s: got %u \"%s\", wanted %u without \"%s\"", line, method, path, r.status,
	      r.text, status, unwanted);
}

#define EXPECT_NOT(m, p, b, st, w) expect_not(t, __LINE__, v, m, p, b, st, w)

static void discard(void *ctx, const uint8_t *buf, size_t n)
{
	(void)ctx; (void)buf; (void)n;
}

static void test_router(struct t *t)
{
	char err[256];
	struct vmm_params p = { .id = "unit", .version = "9.9", .console = { .out = discard } };
	struct vmm *v = vmm_new(&p, err, sizeof(err));
	CHECK(&t->c, v != NULL, "vmm_new: %s", err);
	if (!v)
		return;
	EXPECT("GET", "/", NULL, 200, "\"state\":\"Not started\"");
	EXPECT("GET", "/", NULL, 200, "\"id\":\"unit\"");
	EXPECT("GET", "/", NULL, 200, "\"app_name\":\"skiff\"");
	EXPECT("GET", "/version", NULL, 200, "{\"firecracker_version\":\"9.9\"}");
	EXPECT("GET", "/machine-config", NULL, 200, "\"vcpu_count\":1");
	EXPECT("GET", "/machine-config/", NULL, 200, "\"mem_size_mib\":512");
	/* Sections not set are left out, never null (Firecracker's schema). */
	EXPECT("GET", "/vm/config", NULL, 200, "\"machine-config\":{");
	EXPECT_NOT("GET", "/vm/config", NULL, 200, "null");
	EXPECT_NOT("GET", "/vm/config", NULL, 200, "boot-source");
	/* Firecracker operations without a meaning here: a clear 400. */
	EXPECT("PUT", "/cpu-config", "{}", 400, "RISC-V hart");
	EXPECT("PUT", "/hotplug/memory", "{\"total_size_mib\": 1024}", 400, "not supported");
	EXPECT("GET", "/hotplug/memory", NULL, 400, "not supported");
	EXPECT("PUT", "/pmem/p0", "{\"id\": \"p0\", \"path_on_host\": \"/x\"}", 400, "virtio-pmem");
	EXPECT("GET", "/balloon", NULL, 400, "balloon not configured");
	/* Calls only allowed after InstanceStart. */
	EXPECT("GET", "/balloon/statistics", NULL, 400, "not supported before starting the microVM");
	EXPECT("PATCH", "/balloon", "{\"amount_mib\": 1}", 400, "not supported before starting");
	EXPECT("PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 1}", 400, "not supported before starting");
	EXPECT("PATCH", "/vm", "{\"state\": \"Paused\"}", 400, "not supported before starting");
	EXPECT("PATCH", "/vm", "{\"state\": \"Resumed\"}", 400, "not supported before starting");
	EXPECT("PATCH", "/drives/rootfs", "{\"drive_id\": \"rootfs\"}", 400, "not supported before starting");
	EXPECT("PATCH", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\"}", 400, "not supported before starting");
	EXPECT("PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 400, "not supported before starting");
	EXPECT("PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 400, "not supported before starting");
	EXPECT("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400, "without kernel configuration");
	/* Bad requests of every kind. */
	EXPECT("PUT", "/actions", "{\"action_type\": \"Reboot\"}", 400, "actions.action_type: unknown action `Reboot`");
	EXPECT("PUT", "/actions", "{\"action_type\": 1}", 400, "actions.action_type: expected a string");
	EXPECT("PUT", "/actions", "{\"action\": \"InstanceStart\"}", 400, "actions: unknown field `action`");
	EXPECT("PATCH", "/vm", "{\"state\": \"Stopped\"}", 400, "vm.state: must be \"Paused\" or \"Resumed\"");
	EXPECT("GET", "/nothing", NULL, 400, "Invalid request method and/or path: GET /nothing.");
	EXPECT("POST", "/actions", "{}", 400, "Invalid request method and/or path: POST /actions.");
	EXPECT("DELETE", "/drives/x", NULL, 400, "Invalid request method and/or path");
	EXPECT("PUT", "/", "{}", 400, "Invalid request method and/or path");
	EXPECT("GET", "/drives/x", NULL, 400, "Invalid request method and/or path");
	EXPECT("PUT", "/drives/x/y", "{}", 400, "Invalid request method and/or path");
	EXPECT("PUT", "/machine-config/extra", "{}", 400, "Invalid request method and/or path");
	EXPECT("GET", "/version", "{}", 400, "GET request cannot have a body.");
	EXPECT("PUT", "/boot-source", NULL, 400, "Empty PUT request.");
	EXPECT("PATCH", "/machine-config", NULL, 400, "Empty PATCH request.");
	EXPECT("PUT", "/boot-source", "{\"kernel_image_path\": ", 400, "An error occurred when deserializing the json body");
	EXPECT("PUT", "/boot-source", "[\"kernel_image_path\"]", 400, "expected an object, got an array");
	EXPECT("PUT", "/boot-source", "\"x\"", 400, "deserializing");
	EXPECT("PUT", "/drives/", "{}", 400, "The ID cannot be empty.");
	EXPECT("PUT", "/drives", "{}", 400, "The ID cannot be empty.");
	EXPECT("PUT", "/drives/a.b", "{\"drive_id\": \"a.b\"}", 400, "API Resource IDs can only contain alphanumeric characters and underscores");
	char longid[200];
	snprintf(longid, sizeof(longid), "/drives/%0100d", 7);
	EXPECT("PUT", longid, "{}", 400, "API Resource IDs");
	EXPECT("PUT", "/shares/tag\xff", "{}", 400, "Share tags are 1 to 64");
	EXPECT("PUT", "/shares/.hidden", "{}", 400, "Share tags are 1 to 64");
	EXPECT("PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256, \"extra\": true}", 400,
	       "machine-config: unknown field `extra`");
	EXPECT("GET", "/machine-config", NULL, 200, "\"vcpu_count\":1");
	EXPECT("PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}", 204, NULL);
	EXPECT("PATCH", "/machine-config", "{\"vcpu_count\": 3}", 204, NULL);
	EXPECT("GET", "/machine-config", NULL, 200, "{\"vcpu_count\":3,\"mem_size_mib\":256,\"smt\":false,\"track_dirty_pages\":false}");
	EXPECT("PUT", "/drives/rootfs", B(t, "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s/missing\", \"is_root_device\": true}", t->dir),
	       400, "drives.path_on_host: the drive file");
	EXPECT("PUT", "/drives/rootfs", B(t, "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true}", t->disk), 204, NULL);
	EXPECT("PUT", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\", \"backend\": \"user\"}", 204, NULL);
	EXPECT("PUT", "/shares/home", B(t, "{\"path_on_host\": \"%s\"}", t->share), 204, NULL);
	EXPECT("PUT", "/balloon", "{\"amount_mib\": 16, \"deflate_on_oom\": true}", 204, NULL);
	EXPECT("GET", "/balloon", NULL, 200, "{\"amount_mib\":16,\"deflate_on_oom\":true,\"stats_polling_interval_s\":0,"
	       "\"free_page_hinting\":false,\"free_page_reporting\":true}");
	EXPECT("PUT", "/logger", B(t, "{\"log_path\": \"%s/log\", \"level\": \"Info\", \"show_level\": true, \"show_log_origin\": true}", t->dir), 204, NULL);
	EXPECT("PUT", "/logger", B(t, "{\"log_path\": \"%s/nodir/log\"}", t->dir), 400, "logger.log_path: cannot open");
	EXPECT("PUT", "/metrics", B(t, "{\"metrics_path\": \"%s/nodir/m\"}", t->dir), 400, "metrics.metrics_path: cannot open");
	/* Kernel interfaces and symlinks are not log files (issue 12). */
	EXPECT("PUT", "/logger", "{\"log_path\": \"/proc/self/mem\"}", 400,
	       "logger.log_path: '/proc/self/mem' is a kernel interface file");
	EXPECT("PUT", "/metrics", "{\"metrics_path\": \"/proc/self/mem\"}", 400, "kernel interface file");
	EXPECT("PUT", "/metrics", "{\"metrics_path\": \"/sys/kernel/mm/transparent_hugepage/enabled\"}", 400,
	       "metrics.metrics_path: ");
	char link[200], target[200];
	snprintf(link, sizeof(link), "%s/log-link", t->dir);
	snprintf(target, sizeof(target), "%s/log", t->dir);
	CHECK(&t->c, symlink(target, link) == 0, "symlink");
	EXPECT("PUT", "/logger", B(t, "{\"log_path\": \"%s\"}", link), 400, "is a symbolic link");
	unlink(link);
	EXPECT("PUT", "/metrics", B(t, "{\"metrics_path\": \"%s/metrics\"}", t->dir), 204, NULL);
	EXPECT("PUT", "/metrics", B(t, "{\"metrics_path\": \"%s/metrics\"}", t->dir), 400, "Reinitialization of metrics not allowed.");
	EXPECT("GET", "/vm/config", NULL, 200, "\"drive_id\":\"rootfs\"");
	EXPECT("GET", "/vm/config", NULL, 200, "\"shares\":[{\"tag\":\"home\"");
	EXPECT("GET", "/", NULL, 200, "Not started");

	/* The logger saw the requests, with level and origin. */
	char logp[192], logbuf[8192] = "";
	snprintf(logp, sizeof(logp), "%s/log", t->dir);
	int fd = open(logp, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, logbuf, sizeof(logbuf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	logbuf[n > 0 ? n : 0] = 0;
	CHECK(&t->c, strstr(logbuf, "[unit:main:Info:") && strstr(logbuf, "The API server received a GET request on \"/vm/config\"") &&
	      strstr(logbuf, ":Error:") && strstr(logbuf, "Reinitialization"), "log file:\n%s", logbuf);
	vmm_free(v);
}

int main(void)
{
	struct t t = { 0 };
	setup(&t);
	test_json_check(&t);
	test_boot_source(&t);
	test_machine_config(&t);
	test_drives(&t);
	test_net(&t);
	test_vsock_balloon_shares(&t);
	test_documents(&t);
	test_router(&t);
	cleanup(&t);
	return check_summary(&t.c);
}
