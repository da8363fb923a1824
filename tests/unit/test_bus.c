/*
 * Unit tests for the MMIO bus (src/machine/bus.c): sorted insertion, lookups
 * at region edges and in gaps, overlap rejection, access dispatch with
 * region-relative offsets, and refusal of accesses that cross a region end.
 */
#include <string.h>

#include "machine/bus.h"
#include "machine_test.h"

struct fake_dev {
	uint64_t last_off, last_value;
	unsigned last_size;
	int reads, writes;
	bool refuse;
};

static bool fake_read(void *dev, uint64_t off, unsigned size, uint64_t *value)
{
	struct fake_dev *d = dev;
	d->reads++;
	d->last_off = off;
	d->last_size = size;
	*value = 0x1122334455667788ull + off;
	return !d->refuse;
}

static bool fake_write(void *dev, uint64_t off, unsigned size, uint64_t value)
{
	struct fake_dev *d = dev;
	d->writes++;
	d->last_off = off;
	d->last_size = size;
	d->last_value = value;
	return !d->refuse;
}

static const struct mmio_ops fake_ops = { .read = fake_read, .write = fake_write };

static void test_lookup_and_overlap(struct mt *t)
{
	struct mmio_bus bus = { 0 };
	struct fake_dev a = { 0 }, b = { 0 }, c = { 0 };

	MT_EQ(t, mmio_bus_add(&bus, 0x2000, 0x1000, &fake_ops, &b, "b"), 0);
	MT_EQ(t, mmio_bus_add(&bus, 0x1000, 0x800, &fake_ops, &a, "a"), 0);
	MT_EQ(t, mmio_bus_add(&bus, 0x10000, 0x100, &fake_ops, &c, "c"), 0);
	MT_EQ(t, bus.n, 3);
	MT_CHECK(t, bus.regions[0].base == 0x1000 && bus.regions[1].base == 0x2000 &&
		    bus.regions[2].base == 0x10000);

	MT_CHECK(t, mmio_bus_find(&bus, 0) == NULL);
	MT_CHECK(t, mmio_bus_find(&bus, 0xfff) == NULL);
	MT_CHECK(t, mmio_bus_find(&bus, 0x1000)->dev == &a);
	MT_CHECK(t, mmio_bus_find(&bus, 0x17ff)->dev == &a);
	MT_CHECK(t, mmio_bus_find(&bus, 0x1800) == NULL);
	MT_CHECK(t, mmio_bus_find(&bus, 0x2000)->dev == &b);
	MT_CHECK(t, mmio_bus_find(&bus, 0x2fff)->dev == &b);
	MT_CHECK(t, mmio_bus_find(&bus, 0x3000) == NULL);
	MT_CHECK(t, mmio_bus_find(&bus, 0x100ff)->dev == &c);
	MT_CHECK(t, mmio_bus_find(&bus, 0x10100) == NULL);
	MT_CHECK(t, mmio_bus_find(&bus, ~0ull) == NULL);

	/* Overlaps of every shape are refused and leave the map alone. */
	MT_EQ(t, mmio_bus_add(&bus, 0x2000, 0x1000, &fake_ops, &a, "same"), -1);
	MT_EQ(t, mmio_bus_add(&bus, 0x1f00, 0x200, &fake_ops, &a, "into start"), -1);
	MT_EQ(t, mmio_bus_add(&bus, 0x2f00, 0x200, &fake_ops, &a, "past end"), -1);
	MT_EQ(t, mmio_bus_add(&bus, 0x2100, 0x10, &fake_ops, &a, "inside"), -1);
	MT_EQ(t, mmio_bus_add(&bus, 0x0, 0x100000, &fake_ops, &a, "around"), -1);
	MT_EQ(t, mmio_bus_add(&bus, 0x17ff, 0x802, &fake_ops, &a, "bridge"), -1);
	MT_EQ(t, mmio_bus_add(&bus, 0x5000, 0, &fake_ops, &a, "empty"), -1);
	MT_EQ(t, mmio_bus_add(&bus, ~0ull - 0xff, 0x200, &fake_ops, &a, "wraps"), -1);
	MT_EQ(t, bus.n, 3);

	/* Touching neighbours are fine. */
	MT_EQ(t, mmio_bus_add(&bus, 0x1800, 0x800, &fake_ops, &c, "gap"), 0);
	MT_EQ(t, mmio_bus_add(&bus, ~0ull - 0xff, 0x100, &fake_ops, &c, "top"), 0);
	MT_CHECK(t, mmio_bus_find(&bus, 0x1800)->dev == &c);
	MT_CHECK(t, mmio_bus_find(&bus, ~0ull) != NULL);
	mmio_bus_destroy(&bus);
	MT_EQ(t, bus.n, 0);
}

static void test_many(struct mt *t)
{
	struct mmio_bus bus = { 0 };
	struct fake_dev d = { 0 };
	/* 200 regions added in a scrambled order. */
	for (unsigned i = 0; i < 200; i++) {
		unsigned k = (i * 73) % 200;
		MT_EQ(t, mmio_bus_add(&bus, 0x100000ull + k * 0x1000, 0x1000, &fake_ops, &d,
				      "r"), 0);
	}
	bool sorted = true;
	for (size_t i = 1; i < bus.n; i++)
		sorted &= bus.regions[i - 1].base < bus.regions[i].base;
	MT_CHECK(t, sorted);
	bool found = true;
	for (unsigned k = 0; k < 200; k++) {
		const struct mmio_region *r = mmio_bus_find(&bus, 0x100000ull + k * 0x1000 + 0x7ff);
		found &= r && r->base == 0x100000ull + k * 0x1000;
	}
	MT_CHECK(t, found);
	mmio_bus_destroy(&bus);
}

static void test_access(struct mt *t)
{
	struct mmio_bus bus = { 0 };
	struct fake_dev a = { 0 };
	uint64_t v;
	MT_EQ(t, mmio_bus_add(&bus, 0x1000, 0x100, &fake_ops, &a, "a"), 0);

	MT_CHECK(t, mmio_bus_read(&bus, 0x1010, 4, &v));
	MT_EQ(t, a.last_off, 0x10);
	MT_EQ(t, a.last_size, 4);
	MT_EQ(t, v, (0x1122334455667788ull + 0x10) & 0xffffffff); /* width-masked */

	MT_CHECK(t, mmio_bus_write(&bus, 0x10f8, 8, 0xdeadbeefcafef00dull));
	MT_EQ(t, a.last_off, 0xf8);
	MT_EQ(t, a.last_value, 0xdeadbeefcafef00dull);
	MT_CHECK(t, mmio_bus_write(&bus, 0x1001, 1, 0x1ff));
	MT_EQ(t, a.last_value, 0xff);

	/* Crossing the region end, unmapped, odd sizes: refused. */
	int before = a.reads;
	MT_CHECK(t, !mmio_bus_read(&bus, 0x10fc, 8, &v));
	MT_EQ(t, v, 0);
	MT_CHECK(t, !mmio_bus_read(&bus, 0x2000, 4, &v));
	MT_CHECK(t, !mmio_bus_read(&bus, 0x1000, 3, &v));
	MT_CHECK(t, !mmio_bus_write(&bus, 0x10ff, 2, 0));
	MT_EQ(t, a.reads, before);

	/* A device refusing the access: false, and reads give 0. */
	a.refuse = true;
	MT_CHECK(t, !mmio_bus_read(&bus, 0x1000, 4, &v));
	MT_EQ(t, v, 0);
	MT_CHECK(t, !mmio_bus_write(&bus, 0x1000, 4, 1));
	mmio_bus_destroy(&bus);
}

int main(void)
{
	struct mt t = { 0 };
	test_lookup_and_overlap(&t);
	test_many(&t);
	test_access(&t);
	return mt_report(&t);
}
