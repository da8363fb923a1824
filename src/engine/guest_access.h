/*
 * The guest's own accesses to its RAM, as the engine makes them for it:
 * loads, stores and instruction fetch, through a host pointer the TLB or
 * gram_ptr() gave. guest_copy() is memcpy in every ordinary build.
 *
 * In the ThreadSanitizer build (run-tests.sh's build-tsan) it is made by
 * code TSan does not instrument, as the JIT's translated code is: guest
 * RAM is the guest's hardware memory, shared by its harts and the devices
 * by design, and how the guest orders its accesses (its fences, LR/SC, the
 * virtio rings' protocol) is the guest's business, not a data race in the
 * host. Without this every racy guest algorithm (spinlocks, RCU, the
 * rings) would be reported against the engine. The host's side stays
 * checked: devices' accesses to guest RAM (gram_read/gram_write, the
 * virtqueue code) are instrumented, so two host threads racing on guest
 * memory are still found, and so is everything outside guest RAM.
 *
 * Accesses of 1, 2, 4 and 8 bytes stay single host loads and stores, so an
 * aligned guest access is single-copy atomic in this build too (RISC-V
 * unprivileged spec, "Memory Consistency Model", RVWMO).
 */
#ifndef SKIFF_ENGINE_GUEST_ACCESS_H
#define SKIFF_ENGINE_GUEST_ACCESS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SANITIZE_THREAD__)
#define SKIFF_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SKIFF_TSAN 1
#endif
#endif

#ifdef SKIFF_TSAN
/* Not inlined into instrumented callers (the attributes differ), and
 * with constant sizes the copies below are plain moves, not calls to the
 * memcpy TSan intercepts. */
static __attribute__((no_sanitize_thread, noinline, unused))
void guest_copy(void *dst, const void *src, size_t n)
{
	switch (n) {
	case 1: __builtin_memcpy(dst, src, 1); return;
	case 2: __builtin_memcpy(dst, src, 2); return;
	case 4: __builtin_memcpy(dst, src, 4); return;
	case 8: __builtin_memcpy(dst, src, 8); return;
	default: {
		volatile uint8_t *d = dst;
		const volatile uint8_t *s = src;
		while (n--)
			*d++ = *s++;
	}
	}
}
#else
static inline void guest_copy(void *dst, const void *src, size_t n)
{
	memcpy(dst, src, n);
}
#endif

#endif
