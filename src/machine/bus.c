/*
 * The MMIO bus (see bus.h): an array of regions kept sorted by base address.
 * Adding a region is an insertion into the sorted array after checking it
 * overlaps neither neighbour; finding the owner of an address is a binary
 * search. The map is built before any vCPU runs and is read-only afterwards,
 * so lookups take no lock; each device serialises its own state.
 */
#include "machine/bus.h"

#include <stdlib.h>
#include <string.h>

/* Index of the last region whose base is <= addr, or -1 if there is none. */
static ptrdiff_t bus_floor(const struct mmio_bus *bus, uint64_t addr)
{
	size_t lo = 0, hi = bus->n; /* answer lies in [lo - 1, hi - 1] */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (bus->regions[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (ptrdiff_t)lo - 1;
}

int mmio_bus_add(struct mmio_bus *bus, uint64_t base, uint64_t size,
		 const struct mmio_ops *ops, void *dev, const char *name)
{
	if (size == 0 || !ops)
		return -1;
	uint64_t last = base + size - 1;
	if (last < base) /* wraps past the top of the address space */
		return -1;

	/* The new region goes right after `prev`; it must end before the
	 * next region starts and start after `prev` ends. */
	ptrdiff_t prev = bus_floor(bus, base);
	if (prev >= 0) {
		const struct mmio_region *p = &bus->regions[prev];
		if (base - p->base < p->size)
			return -1;
	}
	size_t at = (size_t)(prev + 1);
	if (at < bus->n && bus->regions[at].base <= last)
		return -1;

	if (bus->n == bus->cap) {
		size_t cap = bus->cap ? bus->cap * 2 : 16;
		struct mmio_region *r = realloc(bus->regions, cap * sizeof(*r));
		if (!r)
			return -1;
		bus->regions = r;
		bus->cap = cap;
	}
	memmove(&bus->regions[at + 1], &bus->regions[at],
		(bus->n - at) * sizeof(bus->regions[0]));
	bus->regions[at] = (struct mmio_region){
		.base = base, .size = size, .ops = ops, .dev = dev, .name = name,
	};
	bus->n++;
	return 0;
}

const struct mmio_region *mmio_bus_find(const struct mmio_bus *bus, uint64_t addr)
{
	ptrdiff_t i = bus_floor(bus, addr);
	if (i < 0)
		return NULL;
	const struct mmio_region *r = &bus->regions[i];
	return addr - r->base < r->size ? r : NULL;
}

void mmio_bus_destroy(struct mmio_bus *bus)
{
	free(bus->regions);
	memset(bus, 0, sizeof(*bus));
}

/* The region owning all of [addr, addr + size), with a valid access size. */
static const struct mmio_region *bus_access(const struct mmio_bus *bus,
					    uint64_t addr, unsigned size)
{
	if (size != 1 && size != 2 && size != 4 && size != 8)
		return NULL;
	const struct mmio_region *r = mmio_bus_find(bus, addr);
	if (!r || size > r->size - (addr - r->base))
		return NULL;
	return r;
}

bool mmio_bus_read(const struct mmio_bus *bus, uint64_t addr, unsigned size, uint64_t *value)
{
	*value = 0;
	const struct mmio_region *r = bus_access(bus, addr, size);
	if (!r || !r->ops->read)
		return false;
	if (!r->ops->read(r->dev, addr - r->base, size, value)) {
		*value = 0;
		return false;
	}
	/* Devices return the access width only. */
	if (size < 8)
		*value &= (1ull << (size * 8)) - 1;
	return true;
}

bool mmio_bus_write(const struct mmio_bus *bus, uint64_t addr, unsigned size, uint64_t value)
{
	const struct mmio_region *r = bus_access(bus, addr, size);
	if (!r || !r->ops->write)
		return false;
	if (size < 8)
		value &= (1ull << (size * 8)) - 1;
	return r->ops->write(r->dev, addr - r->base, size, value);
}
