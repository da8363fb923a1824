/*
 * Building and running one VM: reserve RAM through the allocator, create
 * the board's devices and put them on the MMIO map, load the kernel, initrd
 * and generated device tree, then run hart 0 at the kernel entry (a0 =
 * hartid, a1 = DTB address, per the Linux RISC-V boot protocol).
 */
#include "vmm/vm.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/random.h>

#include "base/clock.h"
#include "machine/fdt.h"
#include "machine/loader.h"
#include "virtio/console.h"
#include "vmm/devices.h"
#include "vmm/snapshot.h"

/* The console hook handed to the monitor and the UART: keep the tail for
 * the crash report, then pass the bytes on to the caller's console. */
static void console_write(void *ctx, const uint8_t *buf, size_t n)
{
	struct vm *vm = ctx;
	pthread_mutex_lock(&vm->tail_lock);
	for (size_t k = 0; k < n; k++) {
		vm->tail[vm->tail_pos] = buf[k];
		vm->tail_pos = (vm->tail_pos + 1) % VM_CONSOLE_TAIL;
	}
	vm->tail_len = vm->tail_len + n > VM_CONSOLE_TAIL ? VM_CONSOLE_TAIL : vm->tail_len + n;
	pthread_mutex_unlock(&vm->tail_lock);
	if (vm->console_sink.out)
		vm->console_sink.out(vm->console_sink.ctx, buf, n);
}

size_t vm_console_tail(struct vm *vm, uint8_t *buf, size_t cap)
{
	pthread_mutex_lock(&vm->tail_lock);
	size_t n = vm->tail_len < cap ? vm->tail_len : cap;
	size_t start = (vm->tail_pos + VM_CONSOLE_TAIL - n) % VM_CONSOLE_TAIL;
	for (size_t k = 0; k < n; k++)
		buf[k] = vm->tail[(start + k) % VM_CONSOLE_TAIL];
	pthread_mutex_unlock(&vm->tail_lock);
	return n;
}

size_t vm_console_input(struct vm *vm, const uint8_t *buf, size_t n)
{
	if (vm->devices && vm->devices->console)
		return virtio_console_input(vm->devices->console, 0, buf, n);
	return uart_input(&vm->uart, buf, n);
}

static void plic_ext(void *ctx, unsigned hart, bool level)
{
	struct vm *vm = ctx;
	if (hart >= vm->nharts)
		return;
	hart_set_irq(vm->vcpu[hart].hart, IRQ_SEI, level);
	if (level)
		vcpu_wake(&vm->vcpu[hart]);
}

static uint64_t aclint_time(void *ctx)
{
	struct vm *vm = ctx;
	return hart_time(vm->vcpu[0].hart);
}

static void syscon_power(void *ctx, enum power_action a)
{
	struct vm *vm = ctx;
	if (a == POWER_REBOOT) {
		vm_end(vm, VM_REBOOT);
	} else if (a == POWER_FAIL) {
		snprintf(vm->fail_why, sizeof(vm->fail_why), "the syscon failure register with code %u",
			 (unsigned)atomic_load(&vm->syscon.fail_code));
		vm_end(vm, VM_FAILED);
	} else {
		vm_end(vm, VM_POWEROFF);
	}
}

static int write_file(const char *path, const void *buf, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	const uint8_t *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0) {
			close(fd);
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return close(fd);
}

static const char *load_boot_images(struct vm *vm, const struct vm_config *cfg,
				    struct boot_layout *lay, char *err, size_t errlen)
{
	if (loader_load_kernel(&vm->ram, cfg->kernel, lay, err, errlen))
		return err;
	if (cfg->initrd && loader_load_initrd(&vm->ram, cfg->initrd, lay, err, errlen))
		return err;

	/* The command line, plus root= for a drive marked as the root device. */
	char *bootargs = NULL;
	const char *root = vm->devices->root_arg;
	if (asprintf(&bootargs, "%s%s%s", cfg->append ? cfg->append : "",
		     *root && cfg->append ? " " : "", root) < 0) {
		snprintf(err, errlen, "out of memory for the command line");
		return err;
	}
	uint8_t seed[32];
	if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		memset(seed, 0, sizeof(seed));
	struct board_fdt_desc d = {
		.nharts = vm->nharts,
		.isa = BOARD_FDT_ISA,
		.isa_extensions = BOARD_FDT_ISA_EXTENSIONS,
		.n_isa_extensions = BOARD_FDT_N_ISA_EXTENSIONS,
		.cboz_block_size = ENGINE_CBOZ_BLOCK,
		.timebase_hz = BOARD_TIMEBASE_HZ,
		.ram_base = vm->ram.base,
		.ram_size = vm->ram.size,
		.bootargs = bootargs,
		.initrd_start = lay->initrd_start,
		.initrd_end = lay->initrd_end,
		.rng_seed = seed,
		.rng_seed_len = sizeof(seed),
		.virtio = vm->devices->fdt,
		.n_virtio = vm->devices->nslots,
	};
	void *fdt = malloc(BOARD_FDT_MAX);
	if (!fdt) {
		free(bootargs);
		snprintf(err, errlen, "out of memory for the device tree");
		return err;
	}
	const char *e = board_fdt_build(&d, fdt, BOARD_FDT_MAX, err, errlen);
	if (!e)
		e = loader_load_dtb(&vm->ram, fdt, lay, err, errlen);
	if (!e && cfg->dump_dtb && write_file(cfg->dump_dtb, fdt, lay->dtb_size)) {
		snprintf(err, errlen, "--dump-dtb %s: cannot write the file", cfg->dump_dtb);
		e = err;
	}
	free(fdt);
	free(bootargs);
	return e;
}

/* Everything of a VM but its boot images: RAM (anonymous, or mapped from
 * the snapshot memory file mem_fd), harts, board devices, virtio devices. */
struct vm *vm_build(const struct vm_config *cfg, const struct vm_console *con,
		    const struct thread_hook *threads, int mem_fd, char *err, size_t errlen)
{
	if (vm_config_check(cfg, err, errlen))
		return NULL;
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	vm->nharts = cfg->ncpus;
	vm->cpu_quota = cfg->cpu_quota;
	vm->console_sink = *con;
	vm->console = (struct vm_console){ .out = console_write, .ctx = vm };
	vm->time_base_ns = clock_monotonic_ns();
	pthread_mutex_init(&vm->tail_lock, NULL);
	pthread_mutex_init(&vm->state_lock, NULL);
	pthread_cond_init(&vm->state_cond, NULL);

	int r = mem_fd >= 0 ? allocator_ram_init_file(vm, cfg->mem_bytes, mem_fd)
			    : allocator_ram_init(vm, cfg->mem_bytes);
	if (r) {
		if (mem_fd >= 0)
			snprintf(err, errlen, "cannot map the memory file as %llu MiB of guest "
				 "memory: %s", (unsigned long long)(cfg->mem_bytes >> 20),
				 r == -EINVAL ? "it is not a regular file of at least that size" :
				 r == -EBUSY ? "it is locked" : strerror(-r));
		else
			snprintf(err, errlen, "cannot reserve %llu MiB of guest memory: %s",
				 (unsigned long long)(cfg->mem_bytes >> 20), strerror(-r));
		free(vm);
		return NULL;
	}
	/* Before any device exists: their threads start through it. */
	if (threads)
		vm->thread_hook = *threads;
	vm->ram.threads = &vm->thread_hook;

	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	for (unsigned i = 0; i < vm->nharts; i++) {
		struct vcpu *v = &vm->vcpu[i];
		struct hart_config hc = { .hartid = i, .time_base_ns = vm->time_base_ns,
					  .timebase_hz = BOARD_TIMEBASE_HZ,
					  .engine = cfg->engine_set ? (enum engine_tier)cfg->engine
								    : engine_default_tier(),
					  .jit_cache_bytes = cfg->jit_cache_bytes,
					  .jit_lockstep = cfg->jit_lockstep };
		v->vm = vm;
		v->id = i;
		v->hart = hart_create(&vm->ram, &hc);
		atomic_store(&v->state, HSM_STOPPED);
		pthread_mutex_init(&v->lock, NULL);
		pthread_cond_init(&v->wake, &ca);
		if (!v->hart) {
			snprintf(err, errlen, "cannot create hart %u (engine %s)", i,
				 engine_tier_name(hc.engine));
			vm_destroy(vm);
			return NULL;
		}
	}
	pthread_condattr_destroy(&ca);

	struct uart_config uc = { .tx = console_write, .ctx = vm,
				  .irq = plic_irq_line(&vm->plic, BOARD_IRQ_UART) };
	struct plic_config pc = { .nharts = vm->nharts, .set_ext = plic_ext, .ctx = vm };
	struct aclint_config ac = { .nharts = vm->nharts, .time = aclint_time, .ctx = vm };
	struct irq_line rtc_irq = plic_irq_line(&vm->plic, BOARD_IRQ_RTC);
	struct irq_line genid_irq = plic_irq_line(&vm->plic, BOARD_IRQ_VMGENID);
	if (plic_init(&vm->plic, &pc) || uart_init(&vm->uart, &uc) ||
	    aclint_init(&vm->aclint, &ac) || rtc_init(&vm->rtc, &rtc_irq) ||
	    vmgenid_init(&vm->vmgenid, &genid_irq)) {
		snprintf(err, errlen, "cannot create the board's devices");
		vm_destroy(vm);
		return NULL;
	}
	syscon_init(&vm->syscon, syscon_power, vm);
	if (mmio_bus_add(&vm->bus, BOARD_SYSCON_BASE, BOARD_SYSCON_SIZE, &syscon_mmio_ops, &vm->syscon, "syscon") ||
	    mmio_bus_add(&vm->bus, BOARD_RTC_BASE, BOARD_RTC_SIZE, &rtc_mmio_ops, &vm->rtc, "rtc") ||
	    mmio_bus_add(&vm->bus, BOARD_VMGENID_BASE, BOARD_VMGENID_SIZE, &vmgenid_mmio_ops,
			 &vm->vmgenid, "vmgenid") ||
	    mmio_bus_add(&vm->bus, BOARD_ACLINT_BASE, BOARD_ACLINT_SIZE, &aclint_mmio_ops, &vm->aclint, "aclint") ||
	    mmio_bus_add(&vm->bus, BOARD_PLIC_BASE, BOARD_PLIC_SIZE, &plic_mmio_ops, &vm->plic, "plic") ||
	    mmio_bus_add(&vm->bus, BOARD_UART_BASE, BOARD_UART_SIZE, &uart_mmio_ops, &vm->uart, "uart")) {
		snprintf(err, errlen, "cannot build the MMIO map");
		vm_destroy(vm);
		return NULL;
	}

	vm->devices = calloc(1, sizeof(*vm->devices));
	if (!vm->devices) {
		snprintf(err, errlen, "out of memory");
		vm_destroy(vm);
		return NULL;
	}
	if (vm_devices_create(vm, vm->devices, cfg, err, errlen)) {
		vm_destroy(vm);
		return NULL;
	}
	return vm;
}

struct vm *vm_create(const struct vm_config *cfg, const struct vm_console *con,
		     const struct thread_hook *threads, char *err, size_t errlen)
{
	if (!cfg->kernel || !*cfg->kernel) {
		snprintf(err, errlen, "kernel: no kernel image given");
		return NULL;
	}
	struct vm *vm = vm_build(cfg, con, threads, -1, err, errlen);
	if (!vm)
		return NULL;
	struct boot_layout lay;
	if (load_boot_images(vm, cfg, &lay, err, errlen)) {
		vm_destroy(vm);
		return NULL;
	}
	vm->vcpu[0].start_addr = lay.kernel_addr;
	vm->vcpu[0].start_opaque = lay.dtb_addr;
	return vm;
}

int vm_start(struct vm *vm)
{
	if (allocator_cpu_quota_start(vm, vm->cpu_quota))
		return -1;
	vm->vcpu[0].host_started = true;
	return allocator_hart_start(vm, 0, vm->vcpu[0].start_addr, vm->vcpu[0].start_opaque);
}

/* Wait (bounded) until every running hart has parked after vm_pause. */
static void wait_parked(struct vm *vm)
{
	for (int tries = 0; tries < 1000; tries++) {
		unsigned running = 0;
		for (unsigned i = 0; i < vm->nharts; i++) {
			int st = atomic_load(&vm->vcpu[i].state);
			running += st == HSM_STARTED || st == HSM_SUSPENDED;
		}
		pthread_mutex_lock(&vm->state_lock);
		unsigned parked = vm->paused_harts;
		pthread_mutex_unlock(&vm->state_lock);
		if (parked >= running || atomic_load(&vm->end))
			return;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
}

static void freeze_devices(struct vm *vm, bool frozen)
{
	for (unsigned n = 0; vm->devices && n < vm->devices->nslots; n++)
		virtio_dev_freeze(vm->devices->slot[n].dev, frozen);
}

void vm_pause_all(struct vm *vm)
{
	vm_pause(vm);
	wait_parked(vm);
	freeze_devices(vm, true);
}

void vm_resume_all(struct vm *vm)
{
	freeze_devices(vm, false);
	vm_snapshot_resumed(vm);
	vm_resume(vm);
}

bool vm_check_ram(struct vm *vm)
{
	uint64_t lost = atomic_load(&vm->ram.lost);
	if (!lost)
		return false;
	/* A hart may have died of the zeros first (its code or its trap
	 * handler gone): the lost RAM is still the cause, named first. Under
	 * the lock a hart's crash takes, so that neither report overwrites
	 * half of the other. */
	pthread_mutex_lock(&vm->state_lock);
	int end = atomic_load(&vm->end);
	bool ends_now = false;
	if ((end == VM_RUNNING || end == VM_CRASHED) && vm->crash.what != vm->crash.why) {
		const char *then = vm->crash.what;
		snprintf(vm->crash.why, sizeof(vm->crash.why),
			 "its RAM at 0x%" PRIx64 " is gone: the snapshot memory file it was restored "
			 "from was truncated while it ran%s%s",
			 lost - 1, then ? "; then: " : "", then ? then : "");
		vm->crash.what = vm->crash.why;
		if (!then) {
			/* The harts are still running: no one of them, no pc. */
			vm->crash.hart = vm->nharts;
			vm->crash.at_pc = false;
			vm->crash.cause = 0;
			vm->crash.tval = lost - 1;
			ends_now = true;
		}
	}
	pthread_mutex_unlock(&vm->state_lock);
	if (ends_now)
		vm_end(vm, VM_CRASHED);
	return true;
}

enum vm_end vm_wait(struct vm *vm)
{
	pthread_mutex_lock(&vm->state_lock);
	while (!atomic_load(&vm->end))
		pthread_cond_wait(&vm->state_cond, &vm->state_lock);
	pthread_mutex_unlock(&vm->state_lock);
	allocator_harts_join(vm);
	allocator_cpu_quota_stop(vm);
	return (enum vm_end)atomic_load(&vm->end);
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	if (!atomic_load(&vm->end))
		vm_end(vm, VM_STOPPED);
	allocator_harts_join(vm);
	allocator_cpu_quota_stop(vm);
	for (unsigned i = 0; i < vm->nharts; i++) {
		hart_destroy(vm->vcpu[i].hart);
		pthread_mutex_destroy(&vm->vcpu[i].lock);
		pthread_cond_destroy(&vm->vcpu[i].wake);
	}
	if (vm->devices) {
		vm_devices_destroy(vm->devices);
		free(vm->devices);
	}
	vm_snapshot_forget(vm);
	mmio_bus_destroy(&vm->bus);
	uart_destroy(&vm->uart);
	plic_destroy(&vm->plic);
	aclint_destroy(&vm->aclint);
	rtc_destroy(&vm->rtc);
	vmgenid_destroy(&vm->vmgenid);
	gram_destroy(&vm->ram);
	free(vm);
}
