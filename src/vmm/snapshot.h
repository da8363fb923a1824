/*
 * Snapshots of a whole VM: create (Full or Diff) from a paused VM, restore
 * into a new one. What a snapshot is (Firecracker's model):
 *
 *   state file   the VM's configuration (as the API's JSON) and the state
 *                of every hart and device, in the sectioned format of
 *                base/snapfile.h
 *   memory file  the guest's RAM as a plain image (base/gram_file.h): all
 *                of it (Full), or only the pages written since the
 *                snapshot before (Diff), whose state file names the memory
 *                files below it and lists the pages of each
 *
 * A restore maps the Full memory file privately (copy-on-write): nothing is
 * read up front, and clones of one snapshot share every page none of them
 * wrote. A Diff restore maps the Full file it builds on and reads the
 * pages of each Diff above it.
 *
 * Disk images are not copied: a restored VM opens the same files and must
 * find them as they were when the snapshot was taken.
 */
#ifndef SKIFF_VMM_SNAPSHOT_H
#define SKIFF_VMM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/vm.h"

enum vm_snapshot_type { VM_SNAPSHOT_FULL, VM_SNAPSHOT_DIFF };

/* The two files of a snapshot directory (skiff snapshot, skiff restore,
 * skiff run --snapshot). */
#define SNAPSHOT_STATE_FILE "vmstate"
#define SNAPSHOT_MEM_FILE "memory"

struct vm_snapshot_stats {
	uint64_t state_bytes;      /* the state file */
	uint64_t mem_pages;        /* pages written into the memory file */
	uint64_t mem_copied;       /* bytes copied from the file RAM is mapped from */
};

/* Save the VM, whose harts must all be parked (vm_pause and wait), with
 * `config_json` (the configuration as the API shows it) embedded. The VM
 * may go on running afterwards. 0, or -1 with a message; on failure no
 * state file is left at state_path (an older one there is kept). */
int vm_snapshot_create(struct vm *vm, const char *config_json, enum vm_snapshot_type type,
		       const char *state_path, const char *mem_path,
		       struct vm_snapshot_stats *st, char *err, size_t errlen);

/* Turn dirty-page tracking on or off (Diff snapshots need it since the
 * snapshot they build on). Harts parked or not yet running. 0 or -1. */
int vm_snapshot_track_dirty(struct vm *vm, bool on, char *err, size_t errlen);

/* A state file read and checked, ready for a restore. */
struct vm_snapshot_file;
struct vm_snapshot_file *vm_snapshot_open(const char *state_path, char *err, size_t errlen);
void vm_snapshot_close(struct vm_snapshot_file *sf);
/* The configuration the VM was made from (JSON, NUL-terminated). */
const char *vm_snapshot_config(const struct vm_snapshot_file *sf);

/* Build a VM from `cfg` (the snapshot's configuration, with any host-side
 * overrides applied), its RAM from mem_path, and load every hart and
 * device. No hart runs yet. NULL with a message: nothing is left running
 * and no file is changed. */
struct vm *vm_restore(const struct vm_config *cfg, const struct vm_console *con,
		      const struct thread_hook *threads, struct vm_snapshot_file *sf,
		      const char *mem_path, bool track_dirty, char *err, size_t errlen);
/* Let a restored VM run: each started hart's thread, then the devices'
 * post-restore work (the vsock reset event, queues served). With
 * `paused`, the harts park at once and the devices stay frozen until
 * vm_resume_all. 0 or -1. */
int vm_restore_start(struct vm *vm, bool paused);

/* vm_resume_all's part: a VM restored paused does its devices'
 * post-restore work now. */
void vm_snapshot_resumed(struct vm *vm);
/* vm_destroy's part: free the snapshot memory chain. */
void vm_snapshot_forget(struct vm *vm);

#endif
