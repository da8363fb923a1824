/*
 * The interpreter's SBI routines: the monitor implements the Supervisor
 * Binary Interface v2.0 itself, so no firmware image runs in the guest.
 * Extensions: BASE, TIME, IPI, RFENCE, HSM, SRST, DBCN, and the legacy
 * console putchar/getchar, set_timer and shutdown (SBI spec v2.0, chapters
 * 3-12). Anything else answers SBI_ERR_NOT_SUPPORTED.
 */
#include "monitor/vm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum {
	SBI_SUCCESS = 0,
	SBI_ERR_FAILED = -1,
	SBI_ERR_NOT_SUPPORTED = -2,
	SBI_ERR_INVALID_PARAM = -3,
	SBI_ERR_DENIED = -4,
	SBI_ERR_INVALID_ADDRESS = -5,
	SBI_ERR_ALREADY_AVAILABLE = -6,
};

enum {
	EXT_LEGACY_SET_TIMER = 0x00,
	EXT_LEGACY_PUTCHAR = 0x01,
	EXT_LEGACY_GETCHAR = 0x02,
	EXT_LEGACY_SHUTDOWN = 0x08,
	EXT_BASE = 0x10,
	EXT_TIME = 0x54494d45,
	EXT_IPI = 0x735049,
	EXT_RFENCE = 0x52464e43,
	EXT_HSM = 0x48534d,
	EXT_SRST = 0x53525354,
	EXT_DBCN = 0x4442434e,
};

#define SBI_SPEC_VERSION ((2u << 24) | 0u)
#define SBI_IMPL_ID 0x534b4946 /* "SKIF": not a registered id; identifies skiff */
#define SBI_IMPL_VERSION 1

static void console_write(struct vm *vm, const uint8_t *buf, size_t n)
{
	if (n && vm->console.out)
		vm->console.out(vm->console.ctx, buf, n);
}

/* Write guest console bytes from the SBI paths: Linux's SBI earlycon sends
 * bare LF line ends (OpenSBI adds the CR), so add a CR before each LF that
 * lacks one. */
static void sbi_console(struct vm *vm, const uint8_t *buf, size_t n)
{
	size_t start = 0;
	for (size_t k = 0; k < n; k++) {
		bool after_cr = k ? buf[k - 1] == '\r' : vm->sbi_console_cr;
		if (buf[k] == '\n' && !after_cr) {
			console_write(vm, buf + start, k - start);
			console_write(vm, (const uint8_t *)"\r", 1);
			start = k;
		}
	}
	console_write(vm, buf + start, n - start);
	if (n)
		vm->sbi_console_cr = buf[n - 1] == '\r';
}

struct sbi_ret {
	int64_t error;
	uint64_t value;
};

static struct sbi_ret ok(uint64_t v) { return (struct sbi_ret){ SBI_SUCCESS, v }; }
static struct sbi_ret err(int64_t e) { return (struct sbi_ret){ e, 0 }; }

static bool ext_supported(uint64_t eid)
{
	switch (eid) {
	case EXT_LEGACY_SET_TIMER: case EXT_LEGACY_PUTCHAR: case EXT_LEGACY_GETCHAR:
	case EXT_LEGACY_SHUTDOWN: case EXT_BASE: case EXT_TIME: case EXT_IPI:
	case EXT_RFENCE: case EXT_HSM: case EXT_SRST: case EXT_DBCN:
		return true;
	}
	return false;
}

static struct sbi_ret base(struct vcpu *v, uint64_t fid, uint64_t a0)
{
	switch (fid) {
	case 0: return ok(SBI_SPEC_VERSION);
	case 1: return ok(SBI_IMPL_ID);
	case 2: return ok(SBI_IMPL_VERSION);
	case 3: return ok(ext_supported(a0));
	case 4: case 5: case 6: return ok(0); /* mvendorid, marchid, mimpid */
	}
	return err(SBI_ERR_NOT_SUPPORTED);
}

/* The vCPUs named by (hart_mask, hart_mask_base), base -1 meaning all, into
 * out[]; their number, or an SBI error (< 0) for a mask naming absent harts
 * (then none is named). */
static int64_t harts_of(struct vm *vm, uint64_t mask, uint64_t mask_base, struct vcpu **out)
{
	unsigned n = 0;
	if (mask_base == ~0ull) {
		for (unsigned i = 0; i < vm->nharts; i++)
			out[n++] = &vm->vcpu[i];
		return n;
	}
	for (unsigned bit = 0; bit < 64; bit++) {
		if (!(mask >> bit & 1))
			continue;
		uint64_t id = mask_base + bit;
		if (id < mask_base || id >= vm->nharts)
			return SBI_ERR_INVALID_PARAM;
		out[n++] = &vm->vcpu[id];
	}
	return n;
}

static int64_t send_ipis(struct vm *vm, uint64_t mask, uint64_t base)
{
	struct vcpu *t[BOARD_MAX_HARTS];
	int64_t n = harts_of(vm, mask, base, t);
	for (int64_t k = 0; k < n; k++) {
		hart_set_irq(t[k]->hart, IRQ_SSI, true);
		vcpu_wake(t[k]);
	}
	return n < 0 ? n : SBI_SUCCESS;
}

/* The named harts flush together (see harts_flush). */
static int64_t flush_harts(struct vm *vm, uint64_t mask, uint64_t base, enum hart_flush what)
{
	struct vcpu *t[BOARD_MAX_HARTS];
	struct hart *harts[BOARD_MAX_HARTS];
	int64_t n = harts_of(vm, mask, base, t);
	for (int64_t k = 0; k < n; k++)
		harts[k] = t[k]->hart;
	if (n > 0)
		harts_flush(harts, (unsigned)n, what);
	return n < 0 ? n : SBI_SUCCESS;
}

static struct sbi_ret rfence(struct vcpu *v, uint64_t fid, uint64_t mask, uint64_t base)
{
	switch (fid) {
	case 0: return (struct sbi_ret){ flush_harts(v->vm, mask, base, HART_FLUSH_CODE), 0 };
	case 1: case 2:
		/* By address or ASID: a full flush is always correct. */
		return (struct sbi_ret){ flush_harts(v->vm, mask, base, HART_FLUSH_TLB), 0 };
	}
	return err(SBI_ERR_NOT_SUPPORTED); /* hypervisor fences: no H extension */
}

static struct sbi_ret hsm(struct vcpu *v, uint64_t fid, uint64_t a0, uint64_t a1, uint64_t a2)
{
	struct vm *vm = v->vm;
	switch (fid) {
	case 0: { /* hart_start(hartid, start_addr, opaque) */
		if (a0 >= vm->nharts)
			return err(SBI_ERR_INVALID_PARAM);
		if (!gram_contains(&vm->ram, a1, 4))
			return err(SBI_ERR_INVALID_ADDRESS);
		int r = allocator_hart_start(vm, (unsigned)a0, a1, a2);
		if (r == -EALREADY)
			return err(SBI_ERR_ALREADY_AVAILABLE);
		return r ? err(SBI_ERR_FAILED) : ok(0);
	}
	case 1: /* hart_stop: the thread ends when it sees the state */
		atomic_store(&v->state, HSM_STOPPED);
		return ok(0);
	case 2: /* hart_get_status */
		if (a0 >= vm->nharts)
			return err(SBI_ERR_INVALID_PARAM);
		return ok((uint64_t)atomic_load(&vm->vcpu[a0].state));
	case 3: { /* hart_suspend(type, resume_addr, opaque) */
		uint32_t type = (uint32_t)a0;
		if (type == 0)
			return ok(0); /* retentive: a wakeup at once is allowed */
		if (type == 0x80000000u)
			return err(SBI_ERR_NOT_SUPPORTED); /* non-retentive: not offered */
		return err(SBI_ERR_INVALID_PARAM);
	}
	}
	return err(SBI_ERR_NOT_SUPPORTED);
}

static struct sbi_ret srst(struct vcpu *v, uint64_t type, uint64_t reason)
{
	if (type > 2)
		return err(SBI_ERR_INVALID_PARAM);
	if (reason > 1 && reason < 0xe0000000u)
		return err(SBI_ERR_INVALID_PARAM);
	if (type == 0 && reason == 1) {
		snprintf(v->vm->fail_why, sizeof(v->vm->fail_why),
			 "SBI system reset with reason \"system failure\"");
		vm_end(v->vm, VM_FAILED);
	} else if (type == 0) {
		vm_end(v->vm, VM_POWEROFF);
	}
	else
		vm_end(v->vm, VM_REBOOT);
	return ok(0);
}

static struct sbi_ret dbcn(struct vcpu *v, uint64_t fid, uint64_t a0, uint64_t a1, uint64_t a2)
{
	struct vm *vm = v->vm;
	switch (fid) {
	case 0: { /* console_write(num_bytes, base_lo, base_hi): physical */
		if (a2 != 0)
			return err(SBI_ERR_INVALID_PARAM);
		const uint8_t *p = gram_ptr(&vm->ram, a1, a0);
		if (!p)
			return err(SBI_ERR_INVALID_PARAM);
		sbi_console(vm, p, a0);
		return ok(a0);
	}
	case 1: /* console_read: input goes to the UART; nothing to read here */
		if (a2 != 0 || !gram_contains(&vm->ram, a1, a0))
			return err(SBI_ERR_INVALID_PARAM);
		return ok(0);
	case 2: {
		uint8_t c = (uint8_t)a0;
		sbi_console(vm, &c, 1);
		return ok(0);
	}
	}
	return err(SBI_ERR_NOT_SUPPORTED);
}

void sbi_call(struct vcpu *v)
{
	struct hart *h = v->hart;
	uint64_t a0 = hart_get_reg(h, 10), a1 = hart_get_reg(h, 11), a2 = hart_get_reg(h, 12);
	uint64_t fid = hart_get_reg(h, 16), eid = hart_get_reg(h, 17);
	struct sbi_ret r;
	atomic_fetch_add_explicit(&v->sbi_calls, 1, memory_order_relaxed);

	switch (eid) {
	case EXT_LEGACY_SET_TIMER:
		hart_set_timecmp(h, a0);
		hart_set_reg(h, 10, 0);
		goto done;
	case EXT_LEGACY_PUTCHAR: {
		uint8_t c = (uint8_t)a0;
		sbi_console(v->vm, &c, 1);
		hart_set_reg(h, 10, 0);
		goto done;
	}
	case EXT_LEGACY_GETCHAR:
		hart_set_reg(h, 10, (uint64_t)-1); /* input arrives through the UART */
		goto done;
	case EXT_LEGACY_SHUTDOWN:
		vm_end(v->vm, VM_POWEROFF);
		goto done;
	case EXT_BASE: r = base(v, fid, a0); break;
	case EXT_TIME:
		if (fid != 0) { r = err(SBI_ERR_NOT_SUPPORTED); break; }
		hart_set_timecmp(h, a0);
		r = ok(0);
		break;
	case EXT_IPI:
		r = fid == 0 ? (struct sbi_ret){ send_ipis(v->vm, a0, a1), 0 }
			     : err(SBI_ERR_NOT_SUPPORTED);
		break;
	case EXT_RFENCE: r = rfence(v, fid, a0, a1); break;
	case EXT_HSM: r = hsm(v, fid, a0, a1, a2); break;
	case EXT_SRST: r = fid == 0 ? srst(v, a0, a1) : err(SBI_ERR_NOT_SUPPORTED); break;
	case EXT_DBCN: r = dbcn(v, fid, a0, a1, a2); break;
	default: r = err(SBI_ERR_NOT_SUPPORTED); break;
	}
	hart_set_reg(h, 10, (uint64_t)r.error);
	hart_set_reg(h, 11, r.value);
done:
	hart_set_pc(h, hart_get_pc(h) + 4);
}
