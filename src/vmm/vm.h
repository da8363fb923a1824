/*
 * One VM's lifecycle: build it from a configuration (RAM, board devices,
 * boot images, device tree), start it, wait for it to end, tear it down.
 */
#ifndef SKIFF_VMM_VM_H
#define SKIFF_VMM_VM_H

#include "monitor/vm.h"
#include "vmm/config.h"

/* NULL on failure with a message in err. Every thread the VM starts
 * goes through threads (vm->thread_hook: the VMM's sandbox; NULL: none). */
struct vm *vm_create(const struct vm_config *cfg, const struct vm_console *con,
		     const struct thread_hook *threads, char *err, size_t errlen);
/* The same without boot images, RAM mapped privately from the snapshot
 * memory file mem_fd (>= 0) or anonymous (-1): the start of a restore. No
 * hart runs yet. */
struct vm *vm_build(const struct vm_config *cfg, const struct vm_console *con,
		    const struct thread_hook *threads, int mem_fd, char *err, size_t errlen);
/* Start hart 0 at the kernel entry. */
int vm_start(struct vm *vm);
/* Pause the whole VM: every hart parked (on return) and every device
 * frozen, so nothing changes guest memory or device state until
 * vm_resume_all (which also finishes a restore that left the VM paused). */
void vm_pause_all(struct vm *vm);
void vm_resume_all(struct vm *vm);
/* Block until the VM ends; all vCPU threads have finished on return. */
enum vm_end vm_wait(struct vm *vm);
/* A restored VM whose memory file was truncated under it (gram.lost, see
 * gram_catch_lost_pages): part of its RAM is gone and reads as zeros, so
 * it cannot go on. Ends it as a crash that says so (vm->crash) and returns
 * true; false while its RAM is whole. A VM a hart's crash ended first (of
 * those zeros) gets the lost RAM named as the cause too. Call it often
 * (the console loop) and once more after vm_wait, before a crash report. */
bool vm_check_ram(struct vm *vm);
void vm_destroy(struct vm *vm);

/* Host input for the guest console. Returns bytes accepted. */
size_t vm_console_input(struct vm *vm, const uint8_t *buf, size_t n);
/* Copy the last console output (at most cap bytes) into buf. */
size_t vm_console_tail(struct vm *vm, uint8_t *buf, size_t cap);

#endif
