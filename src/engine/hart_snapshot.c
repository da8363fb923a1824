/*
 * A hart's architectural state in a snapshot (section "HART", one per hart):
 * the integer and FP registers, pc, privilege, fcsr, the S-mode CSRs
 * (privileged spec chapter 10), the pending software interrupt, the Sstc
 * timer compare and the retired-instruction count.
 *
 * Not saved, because the hart rebuilds them: every translation (TLB),
 * decoded block and block link, the LR/SC reservation (an SC after a
 * restore fails and the guest retries, as after any trap), the external
 * interrupt line (the PLIC drives it again when it is loaded) and STIP
 * (recomputed from stimecmp and the time). A loaded value the hart could
 * never hold itself is refused, so a crafted file cannot put the engine in
 * a state its own rules exclude.
 */
#include "engine/hart.h"

#include <string.h>

#include "base/snapfile.h"

#define HART_SNAP_VERSION 1

#define SIE_MASK (IRQ_SSI | IRQ_STI | IRQ_SEI)
#define SATP_MODE_SHIFT 60
#define SATP_KEPT ((0xfull << 60) | (0xffffull << 44) | ((1ull << 44) - 1))

void hart_save(const struct hart *h, struct snap_writer *w)
{
	snap_section_begin(w, SNAP_TAG('H', 'A', 'R', 'T'), h->cfg.hartid, HART_SNAP_VERSION);
	for (unsigned i = 1; i < 32; i++)
		snap_put_u64(w, h->x[i]);
	for (unsigned i = 0; i < 32; i++)
		snap_put_u64(w, h->f[i]);
	snap_put_u64(w, h->pc);
	snap_put_u8(w, h->priv);
	snap_put_u8(w, (uint8_t)h->fflags);
	snap_put_u8(w, (uint8_t)h->frm);
	snap_put_u64(w, h->status);
	snap_put_u64(w, h->instret);
	snap_put_u64(w, atomic_load(&h->mip) & IRQ_SSI);
	snap_put_u64(w, h->sie);
	snap_put_u64(w, h->stvec);
	snap_put_u64(w, h->scounteren);
	snap_put_u64(w, h->senvcfg);
	snap_put_u64(w, h->sscratch);
	snap_put_u64(w, h->sepc);
	snap_put_u64(w, h->scause);
	snap_put_u64(w, h->stval);
	snap_put_u64(w, h->satp);
	snap_put_u64(w, h->stimecmp);
}

int hart_load(struct hart *h, struct snap_reader *r)
{
	if (r->version != HART_SNAP_VERSION) {
		snap_reader_fail(r, "hart state version %u is not known (this skiff has %u)",
				 r->version, HART_SNAP_VERSION);
		return -1;
	}
	uint64_t x[32] = { 0 }, f[32];
	for (unsigned i = 1; i < 32; i++)
		x[i] = snap_get_u64(r);
	for (unsigned i = 0; i < 32; i++)
		f[i] = snap_get_u64(r);
	uint64_t pc = snap_get_u64(r);
	uint8_t priv = snap_get_u8(r), fflags = snap_get_u8(r), frm = snap_get_u8(r);
	uint64_t status = snap_get_u64(r), instret = snap_get_u64(r), mip = snap_get_u64(r);
	uint64_t sie = snap_get_u64(r), stvec = snap_get_u64(r), scounteren = snap_get_u64(r);
	uint64_t senvcfg = snap_get_u64(r), sscratch = snap_get_u64(r), sepc = snap_get_u64(r);
	uint64_t scause = snap_get_u64(r), stval = snap_get_u64(r), satp = snap_get_u64(r);
	uint64_t stimecmp = snap_get_u64(r);
	if (r->overrun)
		return -1;
	unsigned mode = (unsigned)(satp >> SATP_MODE_SHIFT);
	if (priv != PRIV_U && priv != PRIV_S)
		snap_reader_fail(r, "privilege %u (only U and S run here)", priv);
	else if (pc & 1)
		snap_reader_fail(r, "pc %#llx is odd", (unsigned long long)pc);
	else if (fflags > 0x1f || frm > 7)
		snap_reader_fail(r, "fcsr fields out of range (fflags %#x, frm %u)", fflags, frm);
	else if (status & ~SSTATUS_WRITABLE)
		snap_reader_fail(r, "sstatus %#llx has bits this hart does not keep",
				 (unsigned long long)status);
	else if ((mip & ~IRQ_SSI) || (sie & ~SIE_MASK))
		snap_reader_fail(r, "sip/sie bits %#llx/%#llx out of range",
				 (unsigned long long)mip, (unsigned long long)sie);
	else if ((stvec & 3) > 1 || (sepc & 1) || scounteren > 0xffffffffull || (senvcfg & ~SENVCFG_WRITABLE))
		snap_reader_fail(r, "a CSR (stvec, sepc, scounteren or senvcfg) holds a value it "
				 "cannot take");
	else if ((mode != 0 && mode != 8 && mode != 9 && mode != 10) || (satp & ~SATP_KEPT) ||
		 (mode == 0 && satp))
		snap_reader_fail(r, "satp %#llx is not a mode this hart has", (unsigned long long)satp);
	if (r->invalid)
		return -1;

	memcpy(h->x, x, sizeof(x));
	h->x[32] = 0;
	memcpy(h->f, f, sizeof(f));
	h->pc = pc;
	h->priv = priv;
	h->fflags = fflags;
	h->frm = frm;
	h->status = status;
	h->instret = instret;
	atomic_store(&h->mip, mip);
	h->sie = sie;
	h->stvec = stvec;
	h->scounteren = scounteren;
	h->senvcfg = senvcfg;
	h->sscratch = sscratch;
	h->sepc = sepc;
	h->scause = scause;
	h->stval = stval;
	h->satp = satp;
	h->stimecmp = stimecmp;

	/* Everything derived from memory or from the old process goes. */
	h->resv_valid = false;
	h->storm = false;
	h->storm_count = 0;
	h->storm_instret = instret;
	h->pause_spins = 0;
	h->timer_countdown = 1;
	h->jit_deadline = 0;
	h->stip = 0;
	h->code_epoch = atomic_load(&h->ram->code_epoch);
	atomic_store(&h->kick, 0);
	atomic_store(&h->fence_i_done, atomic_load(&h->fence_i_req));
	atomic_store(&h->sfence_done, atomic_load(&h->sfence_req));
	tlb_flush_all(h);
	tlb_select(h);
	block_cache_flush(h);
	timer_update(h);
	atomic_store(&h->attention, 1);
	return 0;
}

void hart_set_time_base(struct hart *h, uint64_t time_base_ns)
{
	h->cfg.time_base_ns = time_base_ns;
	timer_update(h);
	atomic_store(&h->attention, 1);
}
