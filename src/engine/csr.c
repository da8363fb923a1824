/*
 * Supervisor-level CSRs, traps and interrupts (privileged spec chapter 10,
 * "Supervisor-Level ISA"; Sstc for stimecmp; Zicntr for the counters), and
 * the floating-point CSRs (unprivileged spec, "F" extension). The monitor
 * plays M-mode: every exception and S-level interrupt is delegated to S.
 */
#include "engine/hart.h"

#include <time.h>

#include "base/clock.h"

enum {
	CSR_FFLAGS = 0x001, CSR_FRM = 0x002, CSR_FCSR = 0x003,
	CSR_SSTATUS = 0x100, CSR_SIE = 0x104, CSR_STVEC = 0x105,
	CSR_SCOUNTEREN = 0x106, CSR_SENVCFG = 0x10a, CSR_SSCRATCH = 0x140,
	CSR_SEPC = 0x141, CSR_SCAUSE = 0x142, CSR_STVAL = 0x143, CSR_SIP = 0x144,
	CSR_STIMECMP = 0x14d, CSR_SATP = 0x180,
	CSR_CYCLE = 0xc00, CSR_TIME = 0xc01, CSR_INSTRET = 0xc02,
};

#define SIE_MASK (IRQ_SSI | IRQ_STI | IRQ_SEI)

uint64_t time_now(const struct hart *h)
{
	uint64_t ns = clock_monotonic_ns() - h->cfg.time_base_ns;
	/* ns * hz / 1e9 without overflow for any realistic uptime. */
	return (uint64_t)((unsigned __int128)ns * h->cfg.timebase_hz / 1000000000ull);
}

void timer_update(struct hart *h)
{
	uint64_t stip = time_now(h) >= h->stimecmp ? IRQ_STI : 0;
	if (stip != h->stip) {
		h->stip = stip;
		atomic_store_explicit(&h->attention, 1, memory_order_relaxed);
	}
}

static uint64_t sip_value(struct hart *h)
{
	return atomic_load_explicit(&h->mip, memory_order_relaxed) | h->stip;
}

uint64_t irq_deliverable(struct hart *h)
{
	uint64_t pend = sip_value(h) & h->sie;
	if (!pend)
		return 0;
	if (h->priv == PRIV_S && !(h->status & SSTATUS_SIE))
		return 0;
	/* Priority: SEI, SSI, STI (privileged spec 10.1.3). */
	if (pend & IRQ_SEI) return 9;
	if (pend & IRQ_SSI) return 1;
	return 5;
}

void trap_take(struct hart *h, uint64_t cause, uint64_t tval, uint64_t epc)
{
	if (!(cause & CAUSE_INTERRUPT)) {
		if (h->instret != h->storm_instret) {
			h->storm_instret = h->instret;
			h->storm_count = 0;
		} else if (++h->storm_count >= TRAP_STORM_LIMIT && !h->storm) {
			h->storm = true;
			h->storm_cause = cause;
			h->storm_tval = tval;
			h->storm_pc = epc;
			atomic_store_explicit(&h->attention, 1, memory_order_relaxed);
		}
	}
	h->sepc = epc;
	h->scause = cause;
	h->stval = tval;
	uint64_t s = h->status & ~(SSTATUS_SPP | SSTATUS_SPIE | SSTATUS_SIE);
	if (h->priv == PRIV_S)
		s |= SSTATUS_SPP;
	if (h->status & SSTATUS_SIE)
		s |= SSTATUS_SPIE;
	h->status = s;
	h->priv = PRIV_S;
	h->resv_valid = false;
	tlb_select(h);
	uint64_t base = h->stvec & ~3ull;
	if ((cause & CAUSE_INTERRUPT) && (h->stvec & 1))
		h->pc = base + 4 * (cause & 0xff);
	else
		h->pc = base;
}

void sret(struct hart *h)
{
	h->priv = (h->status & SSTATUS_SPP) ? PRIV_S : PRIV_U;
	uint64_t s = h->status & ~(SSTATUS_SPP | SSTATUS_SIE);
	if (s & SSTATUS_SPIE)
		s |= SSTATUS_SIE;
	s |= SSTATUS_SPIE;
	h->status = s;
	h->pc = h->sepc;
	tlb_select(h);
	atomic_store_explicit(&h->attention, 1, memory_order_relaxed);
}

static uint64_t sstatus_value(const struct hart *h)
{
	uint64_t s = h->status | SSTATUS_UXL;
	if ((s & SSTATUS_FS) == SSTATUS_FS)
		s |= SSTATUS_SD;
	return s;
}

static bool fp_enabled(const struct hart *h) { return h->status & SSTATUS_FS; }

/* Counter access from U-mode needs the scounteren bit (S-mode always may:
 * the absent M-mode's mcounteren reads as all ones). */
static bool counter_allowed(const struct hart *h, unsigned csr)
{
	return h->priv == PRIV_S || (h->scounteren >> (csr & 31) & 1);
}

int csr_read(struct hart *h, unsigned csr, uint64_t *v)
{
	switch (csr) {
	case CSR_FFLAGS: if (!fp_enabled(h)) return -1; *v = h->fflags; return 0;
	case CSR_FRM: if (!fp_enabled(h)) return -1; *v = h->frm; return 0;
	case CSR_FCSR: if (!fp_enabled(h)) return -1; *v = h->frm << 5 | h->fflags; return 0;
	case CSR_CYCLE: case CSR_INSTRET:
		if (!counter_allowed(h, csr)) return -1;
		*v = h->instret;
		return 0;
	case CSR_TIME:
		if (!counter_allowed(h, csr)) return -1;
		*v = time_now(h);
		return 0;
	}
	if (h->priv < ((csr >> 8) & 3))
		return -1;
	switch (csr) {
	case CSR_SSTATUS: *v = sstatus_value(h); return 0;
	case CSR_SIE: *v = h->sie; return 0;
	case CSR_STVEC: *v = h->stvec; return 0;
	case CSR_SCOUNTEREN: *v = h->scounteren; return 0;
	case CSR_SENVCFG: *v = h->senvcfg; return 0;
	case CSR_SSCRATCH: *v = h->sscratch; return 0;
	case CSR_SEPC: *v = h->sepc; return 0;
	case CSR_SCAUSE: *v = h->scause; return 0;
	case CSR_STVAL: *v = h->stval; return 0;
	case CSR_SIP: *v = sip_value(h); return 0;
	case CSR_STIMECMP: *v = h->stimecmp; return 0;
	case CSR_SATP: *v = h->satp; return 0;
	}
	return -1;
}

int csr_write(struct hart *h, unsigned csr, uint64_t v)
{
	if ((csr >> 10) == 3)
		return -1; /* read-only CSR */
	switch (csr) {
	case CSR_FFLAGS:
		if (!fp_enabled(h)) return -1;
		h->fflags = v & 0x1f;
		h->status |= SSTATUS_FS;
		return 0;
	case CSR_FRM:
		if (!fp_enabled(h)) return -1;
		h->frm = v & 7;
		h->status |= SSTATUS_FS;
		return 0;
	case CSR_FCSR:
		if (!fp_enabled(h)) return -1;
		h->fflags = v & 0x1f;
		h->frm = (v >> 5) & 7;
		h->status |= SSTATUS_FS;
		return 0;
	}
	if (h->priv < ((csr >> 8) & 3))
		return -1;
	switch (csr) {
	case CSR_SSTATUS: {
		uint64_t old = h->status;
		h->status = (old & ~SSTATUS_WRITABLE) | (v & SSTATUS_WRITABLE);
		if ((old ^ h->status) & SSTATUS_MXR)
			tlb_flush_all(h);
		tlb_select(h);
		atomic_store_explicit(&h->attention, 1, memory_order_relaxed);
		return 0;
	}
	case CSR_SIE:
		h->sie = v & SIE_MASK;
		atomic_store_explicit(&h->attention, 1, memory_order_relaxed);
		return 0;
	case CSR_STVEC:
		/* Modes 0 (direct) and 1 (vectored); reserved modes read as 0. */
		h->stvec = (v & 3) < 2 ? v : v & ~3ull;
		return 0;
	case CSR_SCOUNTEREN: h->scounteren = v & 0xffffffffull; return 0;
	case CSR_SENVCFG: h->senvcfg = v & SENVCFG_WRITABLE; return 0;
	case CSR_SSCRATCH: h->sscratch = v; return 0;
	case CSR_SEPC: h->sepc = v & ~1ull; return 0;
	case CSR_SCAUSE: h->scause = v; return 0;
	case CSR_STVAL: h->stval = v; return 0;
	case CSR_SIP:
		/* Only SSIP is writable from S-mode. */
		if (v & IRQ_SSI)
			atomic_fetch_or(&h->mip, IRQ_SSI);
		else
			atomic_fetch_and(&h->mip, ~IRQ_SSI);
		atomic_store_explicit(&h->attention, 1, memory_order_relaxed);
		return 0;
	case CSR_STIMECMP:
		h->stimecmp = v;
		timer_update(h);
		atomic_store_explicit(&h->attention, 1, memory_order_relaxed);
		return 0;
	case CSR_SATP: {
		unsigned mode = v >> 60;
		if (mode != 0 && mode != 8 && mode != 9 && mode != 10)
			return 0; /* unsupported mode: the write has no effect */
		uint64_t old = h->satp;
		h->satp = v & ((0xfull << 60) | (0xffffull << 44) | ((1ull << 44) - 1));
		if (mode == 0)
			h->satp = 0;
		h->mmu_stats.satp_writes++;
		h->mmu_stats.satp_same += old == h->satp;
		h->mmu_stats.flush_satp++;
		/* Another mode: Bare has no global mappings, and a walk of
		 * another depth may not agree with the old one on any. */
		if ((old ^ h->satp) >> 60)
			tlb_flush_all(h);
		else
			tlb_flush_nonglobal(h);
		return 0;
	}
	}
	return -1;
}
