/*
 * Which loads and stores of a block share one TLB probe.
 *
 * Compiled code reaches several fields off one pointer in a row (a stack
 * frame's saves and restores off sp, a structure's members), each of them
 * a full inline probe today (index, tag compare, addend load, ten host
 * instructions). The plan groups the integer loads (and, separately, the
 * stores) of a block that use the same base register while that register
 * is not written (other than moved by ADDI r, r, imm: a pointer stepping
 * through a buffer), whose offsets lie within PROBE_SPAN_MAX bytes of each
 * other. A follower computes its address from the register as it is then;
 * the leader's addend holds for any address on the same page. The group's first access (its leader) probes the whole range of
 * offsets at once: a hit means every member's bytes lie in one page with a
 * TLB entry, and the leader leaves the entry's addend in
 * h->jit_addend[group]. The later members (followers) add that addend to
 * their address and access memory directly. When the range probe misses
 * (a first touch, a page crossing, MMIO) the leader marks the slot invalid
 * and every member takes its own probe and slow path, as without a group,
 * so faults stay precise: a follower never faults in translated code.
 *
 * A TLB entry may only change its mapping at SFENCE.VMA, a satp or
 * sstatus write (all of which end a block) or at a flush done from C; the
 * plan also ends every group at the atomics and LR/SC (calls into C that
 * take the MMU's paths), so an addend stays good for the rest of its group.
 * Stores group only when every store may use the write TLB (not in
 * lockstep, whose stores all take the slow path).
 */
#ifndef SKIFF_ENGINE_JIT_PROBES_H
#define SKIFF_ENGINE_JIT_PROBES_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/hart.h"

/* Widest range of offsets one group may cover: small, so that a range
 * rarely straddles a page. */
#define PROBE_SPAN_MAX 256

struct probe_plan {
	int8_t group[ENGINE_BLOCK_MAX]; /* -1: probes alone */
	bool leader[ENGINE_BLOCK_MAX];
	/* Offsets covered by each group, from base register + lo to + hi - 1,
	 * the base register counted as the leader saw it (before any ADDI
	 * that moved it). */
	int32_t lo[JIT_PROBE_GROUPS], hi[JIT_PROBE_GROUPS];
	unsigned ngroups;
};

/* Plan the first n instructions of b. */
void jit_probe_plan(const struct block *b, unsigned n, bool group_stores, struct probe_plan *p);

#endif
