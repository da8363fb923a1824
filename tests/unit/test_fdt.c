/*
 * Unit tests for the device tree builder (src/machine/fdt.c): the blob must
 * decompile with dtc without a single warning (argv[1] is the dtc program;
 * without it the test is skipped), and must hold what Linux looks for: cpus
 * with their interrupt controllers, the PLIC's per-hart M/S contexts, the
 * devices with working phandles, virtio slots, memory and /chosen.
 */
#include <libfdt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "machine/board.h"
#include "machine/fdt.h"
#include "machine_test.h"

/* Run dtc on the blob; true if it succeeded and printed nothing. */
static bool dtc_clean(struct mt *t, const char *dtc, const void *fdt)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char in[1024], out[1100];
	snprintf(in, sizeof(in), "%s/skiff-fdt-XXXXXX", tmp);
	int fd = mkstemp(in);
	if (fd < 0) {
		printf("cannot create a temporary file in %s\n", tmp);
		return false;
	}
	bool ok = write(fd, fdt, fdt_totalsize(fdt)) == (ssize_t)fdt_totalsize(fdt);
	close(fd);
	snprintf(out, sizeof(out), "%s.dts", in);

	char cmd[4096];
	snprintf(cmd, sizeof(cmd), "'%s' -I dtb -O dts -o '%s' '%s' 2>&1", dtc, out, in);
	FILE *p = popen(cmd, "r");
	char line[512];
	size_t lines = 0;
	while (p && fgets(line, sizeof(line), p)) {
		printf("dtc: %s", line);
		lines++;
	}
	int status = p ? pclose(p) : -1;
	unlink(in);
	unlink(out);
	ok = ok && p && status == 0 && lines == 0;
	MT_CHECK(t, ok);
	return ok;
}

static const char *str_prop(const void *fdt, const char *path, const char *name)
{
	int node = fdt_path_offset(fdt, path);
	if (node < 0)
		return NULL;
	return fdt_getprop(fdt, node, name, NULL);
}

static uint64_t u64_prop(const void *fdt, const char *path, const char *name)
{
	int node = fdt_path_offset(fdt, path), len;
	if (node < 0)
		return ~0ull;
	const fdt32_t *p = fdt_getprop(fdt, node, name, &len);
	if (!p)
		return ~0ull;
	uint64_t v = 0;
	for (int i = 0; i < len / 4; i++)
		v = v << 32 | fdt32_to_cpu(p[i]);
	return v;
}

/* Does the node's reg (2 address cells, 2 size cells) say [base, +size)? */
static bool reg_is(const void *fdt, const char *path, uint64_t base, uint64_t size)
{
	int node = fdt_path_offset(fdt, path), len;
	const fdt32_t *reg = node >= 0 ? fdt_getprop(fdt, node, "reg", &len) : NULL;
	if (!reg || len != 16)
		return false;
	return ((uint64_t)fdt32_to_cpu(reg[0]) << 32 | fdt32_to_cpu(reg[1])) == base &&
	       ((uint64_t)fdt32_to_cpu(reg[2]) << 32 | fdt32_to_cpu(reg[3])) == size;
}

/* Is `s` one of the strings of a string-list property? */
static bool has_string(const void *fdt, const char *path, const char *name, const char *s)
{
	int node = fdt_path_offset(fdt, path);
	return node >= 0 && fdt_stringlist_search(fdt, node, name, s) >= 0;
}

static void test_content(struct mt *t, const char *dtc)
{
	static uint8_t buf[BOARD_FDT_MAX];
	char err[256];
	struct board_fdt_virtio v[3] = {
		{ BOARD_VIRTIO_BASE, BOARD_IRQ_VIRTIO0 },
		{ BOARD_VIRTIO_BASE + 2 * BOARD_VIRTIO_SIZE, BOARD_IRQ_VIRTIO0 + 2 },
		{ BOARD_VIRTIO_BASE + 5 * BOARD_VIRTIO_SIZE, BOARD_IRQ_VIRTIO0 + 5 },
	};
	uint8_t seed[16] = { 1, 2, 3 };
	struct board_fdt_desc d = {
		.nharts = 2, .isa = BOARD_FDT_ISA,
		.isa_extensions = BOARD_FDT_ISA_EXTENSIONS,
		.n_isa_extensions = BOARD_FDT_N_ISA_EXTENSIONS, .cboz_block_size = 64,
		.ram_base = BOARD_RAM_BASE, .ram_size = 3ull << 30,
		.bootargs = "console=ttyS0 root=/dev/vda rw",
		.initrd_start = 0x9e000000, .initrd_end = 0x9f123456,
		.virtio = v, .n_virtio = 3, .rng_seed = seed, .rng_seed_len = sizeof(seed),
	};
	const char *e = board_fdt_build(&d, buf, sizeof(buf), err, sizeof(err));
	MT_CHECK(t, e == NULL);
	if (e) {
		printf("%s\n", e);
		return;
	}
	MT_EQ(t, fdt_check_header(buf), 0);
	if (dtc)
		dtc_clean(t, dtc, buf);

	/* /chosen */
	MT_CHECK(t, !strcmp(str_prop(buf, "/chosen", "bootargs"), d.bootargs));
	MT_EQ(t, u64_prop(buf, "/chosen", "linux,initrd-start"), 0x9e000000);
	MT_EQ(t, u64_prop(buf, "/chosen", "linux,initrd-end"), 0x9f123456);
	{
		int len = 0, node = fdt_path_offset(buf, "/chosen");
		const void *rs = fdt_getprop(buf, node, "rng-seed", &len);
		MT_CHECK(t, rs && len == 16 && !memcmp(rs, seed, 16));
	}
	const char *stdout_path = str_prop(buf, "/chosen", "stdout-path");
	MT_CHECK(t, stdout_path && !strcmp(stdout_path, "/soc/serial@10000000"));
	MT_CHECK(t, has_string(buf, stdout_path, "compatible", "ns16550a"));
	MT_EQ(t, u64_prop(buf, stdout_path, "clock-frequency"), 3686400);
	MT_EQ(t, u64_prop(buf, stdout_path, "interrupts"), BOARD_IRQ_UART);
	MT_CHECK(t, reg_is(buf, stdout_path, BOARD_UART_BASE, BOARD_UART_SIZE));

	MT_CHECK(t, reg_is(buf, "/memory@80000000", BOARD_RAM_BASE, 3ull << 30));
	MT_CHECK(t, !strcmp(str_prop(buf, "/memory@80000000", "device_type"), "memory"));
	MT_CHECK(t, reg_is(buf, "/soc/plic@c000000", BOARD_PLIC_BASE, BOARD_PLIC_SIZE));
	MT_CHECK(t, reg_is(buf, "/soc/clint@2000000", BOARD_ACLINT_BASE, BOARD_ACLINT_SIZE));
	MT_CHECK(t, reg_is(buf, "/soc/rtc@101000", BOARD_RTC_BASE, BOARD_RTC_SIZE));
	MT_CHECK(t, reg_is(buf, "/soc/test@100000", BOARD_SYSCON_BASE, BOARD_SYSCON_SIZE));
	MT_CHECK(t, reg_is(buf, "/soc/virtio_mmio@10003000",
			   BOARD_VIRTIO_BASE + 2 * BOARD_VIRTIO_SIZE, BOARD_VIRTIO_SIZE));

	/* cpus */
	MT_EQ(t, u64_prop(buf, "/cpus", "timebase-frequency"), BOARD_TIMEBASE_HZ);
	MT_CHECK(t, fdt_path_offset(buf, "/cpus/cpu@0") >= 0);
	MT_CHECK(t, fdt_path_offset(buf, "/cpus/cpu@1") >= 0);
	MT_CHECK(t, fdt_path_offset(buf, "/cpus/cpu@2") < 0);
	MT_CHECK(t, !strcmp(str_prop(buf, "/cpus/cpu@1", "riscv,isa"), BOARD_FDT_ISA));
	MT_CHECK(t, !strcmp(str_prop(buf, "/cpus/cpu@1", "riscv,isa-base"), "rv64i"));
	MT_CHECK(t, !strcmp(str_prop(buf, "/cpus/cpu@1", "mmu-type"), "riscv,sv57"));
	MT_CHECK(t, has_string(buf, "/cpus/cpu@1", "riscv,isa-extensions", "zihintpause"));
	MT_CHECK(t, has_string(buf, "/cpus/cpu@1", "riscv,isa-extensions", "sstc"));
	MT_CHECK(t, has_string(buf, "/cpus/cpu@1", "riscv,isa-extensions", "zicboz"));
	MT_CHECK(t, strstr(BOARD_FDT_ISA, "_zicboz_") != NULL);
	MT_EQ(t, u64_prop(buf, "/cpus/cpu@1", "riscv,cboz-block-size"), 64);
	MT_CHECK(t, has_string(buf, "/cpus/cpu@0/interrupt-controller", "compatible",
			       "riscv,cpu-intc"));
	MT_CHECK(t, fdt_path_offset(buf, "/cpus/cpu-map/cluster0/core1") >= 0);
	MT_EQ(t, u64_prop(buf, "/cpus/cpu-map/cluster0/core1", "cpu"),
	      fdt_get_phandle(buf, fdt_path_offset(buf, "/cpus/cpu@1")));

	/* PLIC: <intc0 11 intc0 9 intc1 11 intc1 9>, and it is the parent. */
	const char *plic = "/soc/plic@c000000";
	MT_CHECK(t, has_string(buf, plic, "compatible", "sifive,plic-1.0.0"));
	MT_CHECK(t, has_string(buf, plic, "compatible", "riscv,plic0"));
	MT_EQ(t, u64_prop(buf, plic, "riscv,ndev"), BOARD_PLIC_NDEV);
	{
		int node = fdt_path_offset(buf, plic), len;
		const fdt32_t *ie = fdt_getprop(buf, node, "interrupts-extended", &len);
		MT_CHECK(t, ie && len == 4 * 4 * 2);
		for (unsigned h = 0; ie && len == 32 && h < 2; h++) {
			char path[64];
			snprintf(path, sizeof(path), "/cpus/cpu@%u/interrupt-controller", h);
			uint32_t intc = fdt_get_phandle(buf, fdt_path_offset(buf, path));
			MT_CHECK(t, intc != 0);
			MT_EQ(t, fdt32_to_cpu(ie[4 * h + 0]), intc);
			MT_EQ(t, fdt32_to_cpu(ie[4 * h + 1]), 11);
			MT_EQ(t, fdt32_to_cpu(ie[4 * h + 2]), intc);
			MT_EQ(t, fdt32_to_cpu(ie[4 * h + 3]), 9);
		}
		uint32_t ph = fdt_get_phandle(buf, node);
		MT_CHECK(t, ph != 0);
		MT_EQ(t, u64_prop(buf, stdout_path, "interrupt-parent"), ph);
		MT_EQ(t, u64_prop(buf, "/soc/rtc@101000", "interrupt-parent"), ph);
		MT_EQ(t, u64_prop(buf, "/soc/virtio_mmio@10006000", "interrupt-parent"), ph);
	}

	MT_CHECK(t, has_string(buf, "/soc/clint@2000000", "compatible", "sifive,clint0"));
	MT_CHECK(t, has_string(buf, "/soc/rtc@101000", "compatible", "google,goldfish-rtc"));
	MT_EQ(t, u64_prop(buf, "/soc/rtc@101000", "interrupts"), BOARD_IRQ_RTC);
	MT_CHECK(t, has_string(buf, "/soc", "compatible", "simple-bus"));

	/* virtio slots present, and only those. */
	MT_EQ(t, u64_prop(buf, "/soc/virtio_mmio@10001000", "interrupts"), 32);
	MT_EQ(t, u64_prop(buf, "/soc/virtio_mmio@10003000", "interrupts"), 34);
	MT_EQ(t, u64_prop(buf, "/soc/virtio_mmio@10006000", "interrupts"), 37);
	MT_CHECK(t, fdt_path_offset(buf, "/soc/virtio_mmio@10002000") < 0);
	MT_CHECK(t, has_string(buf, "/soc/virtio_mmio@10003000", "compatible", "virtio,mmio"));

	/* Power: syscon nodes point at the test device. */
	uint32_t test_ph = fdt_get_phandle(buf, fdt_path_offset(buf, "/soc/test@100000"));
	MT_CHECK(t, test_ph != 0);
	MT_CHECK(t, has_string(buf, "/soc/test@100000", "compatible", "syscon"));
	MT_CHECK(t, has_string(buf, "/soc/test@100000", "compatible", "sifive,test0"));
	MT_CHECK(t, has_string(buf, "/poweroff", "compatible", "syscon-poweroff"));
	MT_EQ(t, u64_prop(buf, "/poweroff", "regmap"), test_ph);
	MT_EQ(t, u64_prop(buf, "/poweroff", "value"), 0x5555);
	MT_EQ(t, u64_prop(buf, "/poweroff", "offset"), 0);
	MT_CHECK(t, has_string(buf, "/reboot", "compatible", "syscon-reboot"));
	MT_EQ(t, u64_prop(buf, "/reboot", "regmap"), test_ph);
	MT_EQ(t, u64_prop(buf, "/reboot", "value"), 0x7777);

	/* Phandles are unique. */
	uint32_t max = 0;
	MT_EQ(t, fdt_find_max_phandle(buf, &max), 0);
	bool unique = true;
	for (uint32_t ph = 1; ph <= max; ph++) {
		int first = fdt_node_offset_by_phandle(buf, ph);
		int count = 0;
		for (int n = fdt_next_node(buf, -1, NULL); n >= 0; n = fdt_next_node(buf, n, NULL))
			count += fdt_get_phandle(buf, n) == ph;
		unique &= count <= 1 && (count == 0 || first >= 0);
	}
	MT_CHECK(t, unique);
}

static void test_extremes(struct mt *t, const char *dtc)
{
	static uint8_t buf[BOARD_FDT_MAX];
	char err[256];
	struct board_fdt_virtio v[BOARD_VIRTIO_SLOTS];
	for (unsigned i = 0; i < BOARD_VIRTIO_SLOTS; i++)
		v[i] = (struct board_fdt_virtio){ BOARD_VIRTIO_BASE + i * BOARD_VIRTIO_SIZE,
						  BOARD_IRQ_VIRTIO0 + i };
	struct board_fdt_desc d = {
		.nharts = BOARD_MAX_HARTS, .isa = BOARD_FDT_ISA,
		.isa_extensions = BOARD_FDT_ISA_EXTENSIONS,
		.n_isa_extensions = BOARD_FDT_N_ISA_EXTENSIONS,
		.ram_base = BOARD_RAM_BASE, .ram_size = 64ull << 30,
		.virtio = v, .n_virtio = BOARD_VIRTIO_SLOTS,
	};
	/* Most harts, every slot, no bootargs and no initrd. */
	MT_CHECK(t, board_fdt_build(&d, buf, sizeof(buf), err, sizeof(err)) == NULL);
	if (dtc)
		dtc_clean(t, dtc, buf);
	MT_CHECK(t, str_prop(buf, "/chosen", "bootargs") == NULL);
	MT_CHECK(t, str_prop(buf, "/chosen", "linux,initrd-start") == NULL);
	MT_CHECK(t, fdt_path_offset(buf, "/cpus/cpu@7") >= 0);
	MT_CHECK(t, fdt_path_offset(buf, "/soc/virtio_mmio@10020000") >= 0);

	/* One hart: the smallest tree. */
	d.nharts = 1;
	d.n_virtio = 0;
	d.ram_size = 128ull << 20;
	MT_CHECK(t, board_fdt_build(&d, buf, sizeof(buf), err, sizeof(err)) == NULL);
	if (dtc)
		dtc_clean(t, dtc, buf);

	/* Errors name the problem. */
	d.nharts = 0;
	const char *e = board_fdt_build(&d, buf, sizeof(buf), err, sizeof(err));
	MT_CHECK(t, e && strstr(e, "harts"));
	d.nharts = BOARD_MAX_HARTS + 1;
	MT_CHECK(t, board_fdt_build(&d, buf, sizeof(buf), err, sizeof(err)) != NULL);
	d.nharts = 1;
	e = board_fdt_build(&d, buf, 256, err, sizeof(err));
	MT_CHECK(t, e && strstr(e, "too small"));
	struct board_fdt_virtio bad = { BOARD_VIRTIO_BASE, 0 };
	d.virtio = &bad;
	d.n_virtio = 1;
	e = board_fdt_build(&d, buf, sizeof(buf), err, sizeof(err));
	MT_CHECK(t, e && strstr(e, "IRQ"));
	struct board_fdt_virtio dup[2] = { { BOARD_VIRTIO_BASE, 32 }, { BOARD_VIRTIO_BASE, 33 } };
	d.virtio = dup;
	d.n_virtio = 2;
	MT_CHECK(t, board_fdt_build(&d, buf, sizeof(buf), err, sizeof(err)) != NULL);
}

int main(int argc, char **argv)
{
	struct mt t = { 0 };
	const char *dtc = argc > 1 ? argv[1] : NULL;
	test_content(&t, dtc);
	test_extremes(&t, dtc);
	int rc = mt_report(&t);
	if (!dtc && rc == 0) {
		printf("dtc not given: the warning check was skipped\n");
		return 77;
	}
	return rc;
}
