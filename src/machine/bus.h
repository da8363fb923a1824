/*
 * The MMIO map: which device owns which guest-physical range. Kept sorted so
 * a lookup is a binary search, never a scan. Device callbacks may run on any
 * vCPU thread at once; each device serialises its own state.
 */
#ifndef SKIFF_MACHINE_BUS_H
#define SKIFF_MACHINE_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mmio_ops {
	/* `off` is relative to the region base; size is 1, 2, 4 or 8 and the
	 * access never crosses the region end. Return false to signal an
	 * access fault to the guest. */
	bool (*read)(void *dev, uint64_t off, unsigned size, uint64_t *value);
	bool (*write)(void *dev, uint64_t off, unsigned size, uint64_t value);
};

struct mmio_region {
	uint64_t base, size;
	const struct mmio_ops *ops;
	void *dev;
	const char *name;
};

struct mmio_bus {
	struct mmio_region *regions; /* sorted by base, non-overlapping */
	size_t n, cap;
};

/* 0, or -1 if the range is empty or overlaps a registered one. */
int mmio_bus_add(struct mmio_bus *bus, uint64_t base, uint64_t size,
		 const struct mmio_ops *ops, void *dev, const char *name);
const struct mmio_region *mmio_bus_find(const struct mmio_bus *bus, uint64_t addr);
void mmio_bus_destroy(struct mmio_bus *bus);

/* Perform an access; false when no device owns [addr, addr+size) or the
 * device refused it. Reads of a refused access return 0. */
bool mmio_bus_read(const struct mmio_bus *bus, uint64_t addr, unsigned size, uint64_t *value);
bool mmio_bus_write(const struct mmio_bus *bus, uint64_t addr, unsigned size, uint64_t value);

/* An interrupt line into the interrupt controller (level triggered). */
struct irq_line {
	void (*set)(void *ctrl, unsigned irq, bool level);
	void *ctrl;
	unsigned irq;
};

static inline void irq_set(const struct irq_line *l, bool level)
{
	if (l->set)
		l->set(l->ctrl, l->irq, level);
}

#endif
