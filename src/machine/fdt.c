/*
 * Device tree generation for the "virt" board (see fdt.h), written with
 * libfdt's sequential-write API. The shape follows the Devicetree
 * Specification 0.4 (/cpus, /memory, /chosen, /aliases), Linux's RISC-V
 * bindings (riscv/cpus.yaml: riscv,isa, riscv,isa-base,
 * riscv,isa-extensions, mmu-type, the per-cpu "riscv,cpu-intc"; the
 * sifive,plic-1.0.0 and sifive,clint0 bindings) and the layout of QEMU's
 * virt board, so the guest sees what it would see there: the PLIC's
 * contexts are listed per hart as M-mode external (11) then S-mode external
 * (9); the CLINT's as M software (3) then M timer (7).
 */
#include "machine/fdt.h"

#include <libfdt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/fd_io.h"
#include "machine/board.h"
#include "machine/syscon.h"

const char BOARD_FDT_ISA[] =
	"rv64imafdc_zicboz_zicntr_zicsr_zifencei_zihintpause_zba_zbb_zbs_sstc";
const char *const BOARD_FDT_ISA_EXTENSIONS[] = {
	"i", "m", "a", "f", "d", "c", "zicboz", "zicntr", "zicsr", "zifencei",
	"zihintpause", "zba", "zbb", "zbs", "sstc",
};
const size_t BOARD_FDT_N_ISA_EXTENSIONS =
	sizeof(BOARD_FDT_ISA_EXTENSIONS) / sizeof(BOARD_FDT_ISA_EXTENSIONS[0]);

/* Phandles, fixed so references can be written before their targets. */
#define PH_PLIC 1
#define PH_TEST 2
#define PH_CPU(h) (3 + (h))
#define PH_INTC(h) (3 + BOARD_MAX_HARTS + (h))

/* Interrupt numbers of the hart-local controller (privileged spec, mip). */
#define INTC_MSI 3
#define INTC_MTI 7
#define INTC_SEI 9
#define INTC_MEI 11

/* A writer that remembers the first libfdt error so calls can be chained. */
struct fdtw {
	void *fdt;
	int err;
	const char *what; /* the node or property that failed */
};

static void w_check(struct fdtw *w, int rc, const char *what)
{
	if (rc < 0 && !w->err) {
		w->err = rc;
		w->what = what;
	}
}

static void w_begin(struct fdtw *w, const char *name)
{
	if (!w->err)
		w_check(w, fdt_begin_node(w->fdt, name), name);
}

static void w_end(struct fdtw *w)
{
	if (!w->err)
		w_check(w, fdt_end_node(w->fdt), "end of node");
}

static void w_prop(struct fdtw *w, const char *name, const void *val, size_t len)
{
	if (!w->err)
		w_check(w, fdt_property(w->fdt, name, val, (int)len), name);
}

static void w_u32(struct fdtw *w, const char *name, uint32_t v)
{
	if (!w->err)
		w_check(w, fdt_property_u32(w->fdt, name, v), name);
}

static void w_u64(struct fdtw *w, const char *name, uint64_t v)
{
	if (!w->err)
		w_check(w, fdt_property_u64(w->fdt, name, v), name);
}

static void w_str(struct fdtw *w, const char *name, const char *s)
{
	if (!w->err)
		w_check(w, fdt_property_string(w->fdt, name, s), name);
}

static void w_empty(struct fdtw *w, const char *name)
{
	w_prop(w, name, NULL, 0);
}

/* A property of big-endian cells. */
static void w_cells(struct fdtw *w, const char *name, const uint32_t *cells, size_t n)
{
	fdt32_t be[4 * BOARD_MAX_HARTS];
	if (n > sizeof(be) / sizeof(be[0])) {
		w_check(w, -FDT_ERR_NOSPACE, name);
		return;
	}
	for (size_t i = 0; i < n; i++)
		be[i] = cpu_to_fdt32(cells[i]);
	w_prop(w, name, be, n * sizeof(be[0]));
}

/* reg = <addr-hi addr-lo size-hi size-lo> for #address-cells = #size-cells = 2. */
static void w_reg(struct fdtw *w, uint64_t base, uint64_t size)
{
	uint32_t c[4] = { (uint32_t)(base >> 32), (uint32_t)base,
			  (uint32_t)(size >> 32), (uint32_t)size };
	w_cells(w, "reg", c, 4);
}

/* A string list property from NUL-separated parts given as an array. */
static void w_strlist(struct fdtw *w, const char *name, const char *const *s, size_t n)
{
	char buf[1024];
	size_t len = 0;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(s[i]) + 1;
		if (l > sizeof(buf) - len) {
			w_check(w, -FDT_ERR_NOSPACE, name);
			return;
		}
		memcpy(buf + len, s[i], l);
		len += l;
	}
	w_prop(w, name, buf, len);
}

static void node_name(char *buf, size_t n, const char *prefix, uint64_t addr)
{
	snprintf(buf, n, "%s@%llx", prefix, (unsigned long long)addr);
}

/* A device node with one PLIC interrupt and nothing else to say:
 * "prefix@base", its compatible string, registers and interrupt. */
static void w_irq_device(struct fdtw *w, const char *prefix, const char *compat, uint64_t base,
			 uint64_t size, uint32_t irq)
{
	char name[32];
	node_name(name, sizeof(name), prefix, base);
	w_begin(w, name);
	w_str(w, "compatible", compat);
	w_reg(w, base, size);
	w_u32(w, "interrupts", irq);
	w_u32(w, "interrupt-parent", PH_PLIC);
	w_end(w);
}

static void build_cpus(struct fdtw *w, const struct board_fdt_desc *d)
{
	char name[32];
	w_begin(w, "cpus");
	w_u32(w, "#address-cells", 1);
	w_u32(w, "#size-cells", 0);
	w_u32(w, "timebase-frequency", (uint32_t)(d->timebase_hz ? d->timebase_hz
							     : BOARD_TIMEBASE_HZ));
	for (unsigned h = 0; h < d->nharts; h++) {
		snprintf(name, sizeof(name), "cpu@%x", h);
		w_begin(w, name);
		w_str(w, "device_type", "cpu");
		w_u32(w, "reg", h);
		w_str(w, "status", "okay");
		w_str(w, "compatible", "riscv");
		w_str(w, "riscv,isa", d->isa);
		w_str(w, "riscv,isa-base", "rv64i");
		w_strlist(w, "riscv,isa-extensions", d->isa_extensions, d->n_isa_extensions);
		w_str(w, "mmu-type", d->mmu_type ? d->mmu_type : "riscv,sv57");
		/* Linux keeps Zicboz only with this (riscv/cpus.yaml). */
		if (d->cboz_block_size)
			w_u32(w, "riscv,cboz-block-size", d->cboz_block_size);
		w_u32(w, "phandle", PH_CPU(h));
		w_begin(w, "interrupt-controller");
		w_str(w, "compatible", "riscv,cpu-intc");
		w_u32(w, "#address-cells", 0);
		w_u32(w, "#interrupt-cells", 1);
		w_empty(w, "interrupt-controller");
		w_u32(w, "phandle", PH_INTC(h));
		w_end(w);
		w_end(w);
	}
	w_begin(w, "cpu-map");
	w_begin(w, "cluster0");
	for (unsigned h = 0; h < d->nharts; h++) {
		snprintf(name, sizeof(name), "core%u", h);
		w_begin(w, name);
		w_u32(w, "cpu", PH_CPU(h));
		w_end(w);
	}
	w_end(w);
	w_end(w);
	w_end(w);
}

static void build_soc(struct fdtw *w, const struct board_fdt_desc *d)
{
	char name[48];
	uint32_t cells[4 * BOARD_MAX_HARTS];

	w_begin(w, "soc");
	w_u32(w, "#address-cells", 2);
	w_u32(w, "#size-cells", 2);
	w_str(w, "compatible", "simple-bus");
	w_empty(w, "ranges");

	node_name(name, sizeof(name), "test", BOARD_SYSCON_BASE);
	w_begin(w, name);
	static const char *const test_compat[] = { "sifive,test1", "sifive,test0", "syscon" };
	w_strlist(w, "compatible", test_compat, 3);
	w_reg(w, BOARD_SYSCON_BASE, BOARD_SYSCON_SIZE);
	w_u32(w, "phandle", PH_TEST);
	w_end(w);

	w_irq_device(w, "rtc", "google,goldfish-rtc", BOARD_RTC_BASE, BOARD_RTC_SIZE, BOARD_IRQ_RTC);

	/* Linux's vmgenid driver (Documentation/devicetree/bindings/rng/
	 * microsoft,vmgenid.yaml): the ID's window and its interrupt. */
	w_irq_device(w, "vmgenid", "microsoft,vmgenid", BOARD_VMGENID_BASE, BOARD_VMGENID_SIZE,
		     BOARD_IRQ_VMGENID);

	node_name(name, sizeof(name), "clint", BOARD_ACLINT_BASE);
	w_begin(w, name);
	static const char *const clint_compat[] = { "sifive,clint0", "riscv,clint0" };
	w_strlist(w, "compatible", clint_compat, 2);
	w_reg(w, BOARD_ACLINT_BASE, BOARD_ACLINT_SIZE);
	for (unsigned h = 0; h < d->nharts; h++) {
		cells[4 * h + 0] = PH_INTC(h);
		cells[4 * h + 1] = INTC_MSI;
		cells[4 * h + 2] = PH_INTC(h);
		cells[4 * h + 3] = INTC_MTI;
	}
	w_cells(w, "interrupts-extended", cells, 4 * d->nharts);
	w_end(w);

	node_name(name, sizeof(name), "plic", BOARD_PLIC_BASE);
	w_begin(w, name);
	static const char *const plic_compat[] = { "sifive,plic-1.0.0", "riscv,plic0" };
	w_strlist(w, "compatible", plic_compat, 2);
	w_reg(w, BOARD_PLIC_BASE, BOARD_PLIC_SIZE);
	w_u32(w, "#address-cells", 0);
	w_u32(w, "#interrupt-cells", 1);
	w_empty(w, "interrupt-controller");
	w_u32(w, "riscv,ndev", BOARD_PLIC_NDEV);
	for (unsigned h = 0; h < d->nharts; h++) {
		cells[4 * h + 0] = PH_INTC(h);
		cells[4 * h + 1] = INTC_MEI; /* context 2h: M-mode */
		cells[4 * h + 2] = PH_INTC(h);
		cells[4 * h + 3] = INTC_SEI; /* context 2h+1: S-mode */
	}
	w_cells(w, "interrupts-extended", cells, 4 * d->nharts);
	w_u32(w, "phandle", PH_PLIC);
	w_end(w);

	node_name(name, sizeof(name), "serial", BOARD_UART_BASE);
	w_begin(w, name);
	w_str(w, "compatible", "ns16550a");
	w_reg(w, BOARD_UART_BASE, BOARD_UART_SIZE);
	w_u32(w, "clock-frequency", BOARD_FDT_UART_CLOCK_HZ);
	w_u32(w, "interrupts", BOARD_IRQ_UART);
	w_u32(w, "interrupt-parent", PH_PLIC);
	w_end(w);

	for (size_t i = 0; i < d->n_virtio; i++)
		w_irq_device(w, "virtio_mmio", "virtio,mmio", d->virtio[i].base, BOARD_VIRTIO_SIZE,
			     d->virtio[i].irq);
	w_end(w);
}

/* A syscon power node at the root, as Linux's syscon-poweroff/-reboot
 * bindings describe: a regmap phandle, the register offset, the value. */
static void w_syscon_power(struct fdtw *w, const char *name, const char *compat, uint32_t value)
{
	w_begin(w, name);
	w_str(w, "compatible", compat);
	w_u32(w, "regmap", PH_TEST);
	w_u32(w, "offset", 0);
	w_u32(w, "value", value);
	w_end(w);
}

static void build_power(struct fdtw *w)
{
	w_syscon_power(w, "poweroff", "syscon-poweroff", SYSCON_POWEROFF);
	w_syscon_power(w, "reboot", "syscon-reboot", SYSCON_REBOOT);
}

static const char *check_desc(const struct board_fdt_desc *d, char *err, size_t errlen)
{
	if (d->nharts == 0 || d->nharts > BOARD_MAX_HARTS)
		return errf(err, errlen, "device tree: %u harts (1..%u supported)",
			    d->nharts, BOARD_MAX_HARTS);
	if (!d->isa || !d->isa_extensions || d->n_isa_extensions == 0)
		return errf(err, errlen, "device tree: no ISA string or extension list");
	if (d->ram_size == 0 || d->ram_base + d->ram_size < d->ram_base)
		return errf(err, errlen, "device tree: bad RAM range %#llx+%#llx",
			    (unsigned long long)d->ram_base, (unsigned long long)d->ram_size);
	uint64_t tb = d->timebase_hz ? d->timebase_hz : BOARD_TIMEBASE_HZ;
	if (tb > UINT32_MAX)
		return errf(err, errlen, "device tree: timebase %llu Hz does not fit 32 bits",
			    (unsigned long long)tb);
	if (d->initrd_end < d->initrd_start)
		return errf(err, errlen, "device tree: initrd ends before it starts");
	if (d->n_virtio > BOARD_VIRTIO_SLOTS)
		return errf(err, errlen, "device tree: %zu virtio slots (at most %d)",
			    d->n_virtio, BOARD_VIRTIO_SLOTS);
	for (size_t i = 0; i < d->n_virtio; i++) {
		const struct board_fdt_virtio *v = &d->virtio[i];
		if (v->irq == 0 || v->irq > BOARD_PLIC_NDEV)
			return errf(err, errlen, "device tree: virtio-mmio at %#llx has IRQ %u "
				    "(1..%d valid)", (unsigned long long)v->base, v->irq,
				    BOARD_PLIC_NDEV);
		for (size_t j = 0; j < i; j++)
			if (d->virtio[j].base == v->base)
				return errf(err, errlen, "device tree: two virtio-mmio "
					    "devices at %#llx", (unsigned long long)v->base);
	}
	return NULL;
}

const char *board_fdt_build(const struct board_fdt_desc *d, void *buf, size_t cap,
			    char *err, size_t errlen)
{
	const char *e = check_desc(d, err, errlen);
	if (e)
		return e;
	if (cap > INT32_MAX)
		cap = INT32_MAX;

	struct fdtw w = { .fdt = buf };
	w_check(&w, fdt_create(buf, (int)cap), "header");
	w_check(&w, w.err ? 0 : fdt_finish_reservemap(buf), "reserve map");

	w_begin(&w, "");
	w_u32(&w, "#address-cells", 2);
	w_u32(&w, "#size-cells", 2);
	static const char *const root_compat[] = { "skiff,virt", "riscv-virtio" };
	w_strlist(&w, "compatible", root_compat, 2);
	w_str(&w, "model", "skiff virt");

	w_begin(&w, "chosen");
	if (d->bootargs)
		w_str(&w, "bootargs", d->bootargs);
	if (d->initrd_end > d->initrd_start) {
		w_u64(&w, "linux,initrd-start", d->initrd_start);
		w_u64(&w, "linux,initrd-end", d->initrd_end);
	}
	if (d->rng_seed && d->rng_seed_len)
		w_prop(&w, "rng-seed", d->rng_seed, d->rng_seed_len);
	w_str(&w, "stdout-path", BOARD_FDT_STDOUT_PATH);
	w_end(&w);

	w_begin(&w, "aliases");
	w_str(&w, "serial0", BOARD_FDT_STDOUT_PATH);
	w_end(&w);

	char name[32];
	node_name(name, sizeof(name), "memory", d->ram_base);
	w_begin(&w, name);
	w_str(&w, "device_type", "memory");
	w_reg(&w, d->ram_base, d->ram_size);
	w_end(&w);

	build_cpus(&w, d);
	build_soc(&w, d);
	build_power(&w);

	w_end(&w);
	if (!w.err)
		w_check(&w, fdt_finish(buf), "finish");
	if (w.err)
		return errf(err, errlen, "device tree: %s at \"%s\"%s", fdt_strerror(w.err),
			    w.what, w.err == -FDT_ERR_NOSPACE ? " (buffer too small)" : "");
	return NULL;
}
