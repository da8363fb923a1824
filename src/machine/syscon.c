/*
 * The power-control register (see syscon.h). The command values are those
 * of SiFive's test finisher as QEMU's virt board implements it; the guest's
 * device tree points syscon-poweroff and syscon-reboot at offset 0 with the
 * values 0x5555 and 0x7777. Linux's syscon drivers may read the register
 * before writing it (a regmap read-modify-write), so reads succeed as 0.
 * Its only state is the atomic failure code, so it needs no lock.
 */
#include "machine/syscon.h"

#include <stddef.h>

#include "base/snapfile.h"

void syscon_init(struct syscon *s, void (*power)(void *ctx, enum power_action a),
		 void *ctx)
{
	s->power = power;
	s->ctx = ctx;
	s->fail_code = 0;
}

static bool syscon_mmio_read(void *dev, uint64_t off, unsigned size, uint64_t *value)
{
	*value = 0;
	return true;
}

static bool syscon_mmio_write(void *dev, uint64_t off, unsigned size, uint64_t value)
{
	struct syscon *s = dev;
	if (off != 0 || size < 2 || !s->power)
		return true;
	switch (value & 0xffff) {
	case SYSCON_POWEROFF:
		s->power(s->ctx, POWER_OFF);
		break;
	case SYSCON_REBOOT:
		s->power(s->ctx, POWER_REBOOT);
		break;
	case SYSCON_FAIL:
		s->fail_code = (uint16_t)(value >> 16);
		s->power(s->ctx, POWER_FAIL);
		break;
	}
	return true;
}

const struct mmio_ops syscon_mmio_ops = {
	.read = syscon_mmio_read,
	.write = syscon_mmio_write,
};

/* ---- snapshots (section "SYSC"): the failure code, the only state ---- */

#define SYSCON_SNAP_VERSION 1

void syscon_save(struct syscon *s, struct snap_writer *w)
{
	snap_section_begin(w, SNAP_TAG('S', 'Y', 'S', 'C'), 0, SYSCON_SNAP_VERSION);
	snap_put_u16(w, atomic_load(&s->fail_code));
}

int syscon_load(struct syscon *s, struct snap_reader *r)
{
	if (r->version != SYSCON_SNAP_VERSION) {
		snap_reader_fail(r, "syscon state version %u is not known", r->version);
		return -1;
	}
	uint16_t code = snap_get_u16(r);
	if (r->overrun)
		return -1;
	atomic_store(&s->fail_code, code);
	return 0;
}
