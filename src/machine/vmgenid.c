/*
 * The VM generation ID device (see vmgenid.h). Linux's driver reads the ID
 * when it probes and again in its interrupt handler, by memcpy from the
 * mapped window, so reads of any width and alignment inside the ID are
 * served byte by byte. The line goes down on the first read of the ID after
 * it was raised: by then the handler has run (or the driver probed after
 * the change and read the new ID itself), and a line left high would make
 * the PLIC's gateway pend the source again after the handler completes.
 */
#include "machine/vmgenid.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "base/snapfile.h"

static int draw(uint8_t id[VMGENID_BYTES])
{
	size_t got = 0;
	while (got < VMGENID_BYTES) {
		ssize_t n = getrandom(id + got, VMGENID_BYTES - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)n;
	}
	return 0;
}

int vmgenid_init(struct vmgenid *g, const struct irq_line *irq)
{
	memset(g, 0, sizeof(*g));
	if (irq)
		g->irq = *irq;
	if (draw(g->id))
		return -1;
	return pthread_mutex_init(&g->lock, NULL) ? -1 : 0;
}

void vmgenid_destroy(struct vmgenid *g)
{
	pthread_mutex_destroy(&g->lock);
}

int vmgenid_prepare(struct vmgenid *g)
{
	uint8_t id[VMGENID_BYTES];
	if (draw(id))
		return -1;
	pthread_mutex_lock(&g->lock);
	memcpy(g->next, id, sizeof(id));
	g->next_due = true;
	pthread_mutex_unlock(&g->lock);
	return 0;
}

void vmgenid_publish(struct vmgenid *g)
{
	pthread_mutex_lock(&g->lock);
	if (g->next_due) {
		g->next_due = false;
		memcpy(g->id, g->next, sizeof(g->id));
		g->raised = true;
		irq_set(&g->irq, true);
	}
	pthread_mutex_unlock(&g->lock);
}

static bool vmgenid_mmio_read(void *dev, uint64_t off, unsigned size, uint64_t *value)
{
	struct vmgenid *g = dev;
	uint64_t v = 0;
	pthread_mutex_lock(&g->lock);
	for (unsigned i = 0; i < size; i++)
		if (off + i < VMGENID_BYTES)
			v |= (uint64_t)g->id[off + i] << (8 * i);
	if (off < VMGENID_BYTES && g->raised) {
		g->raised = false;
		irq_set(&g->irq, false);
	}
	pthread_mutex_unlock(&g->lock);
	*value = v;
	return true;
}

static bool vmgenid_mmio_write(void *dev, uint64_t off, unsigned size, uint64_t value)
{
	return true;   /* the ID is the host's to change */
}

const struct mmio_ops vmgenid_mmio_ops = {
	.read = vmgenid_mmio_read,
	.write = vmgenid_mmio_write,
};

/* ---- snapshots (section "VGID") ---- */

#define VMGENID_SNAP_VERSION 1

void vmgenid_save(struct vmgenid *g, struct snap_writer *w)
{
	snap_section_begin(w, SNAP_TAG('V', 'G', 'I', 'D'), 0, VMGENID_SNAP_VERSION);
	pthread_mutex_lock(&g->lock);
	snap_put_bytes(w, g->id, sizeof(g->id));
	snap_put_u8(w, g->raised);
	pthread_mutex_unlock(&g->lock);
}

int vmgenid_load(struct vmgenid *g, struct snap_reader *r)
{
	if (r->version != VMGENID_SNAP_VERSION) {
		snap_reader_fail(r, "VM generation ID state version %u is not known", r->version);
		return -1;
	}
	uint8_t id[VMGENID_BYTES];
	snap_get_bytes(r, id, sizeof(id));
	uint8_t raised = snap_get_u8(r);
	if (r->overrun)
		return -1;
	if (raised > 1) {
		snap_reader_fail(r, "interrupt line %u is not 0 or 1", raised);
		return -1;
	}
	pthread_mutex_lock(&g->lock);
	memcpy(g->id, id, sizeof(id));
	g->raised = raised;
	irq_set(&g->irq, raised);
	pthread_mutex_unlock(&g->lock);
	return 0;
}
