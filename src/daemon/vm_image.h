/* skiffd: a VM made from a system image (vm_image.c). */
#ifndef SKIFF_DAEMON_VM_IMAGE_H
#define SKIFF_DAEMON_VM_IMAGE_H

#include <stddef.h>

#include <jansson.h>

/* Completes the VM definition `cfg` from the image (boot-source where it has
 * none, a user network when it has no interface, the image's disk first
 * among the drives) and creates vm_dir with the VM's own overlay of the
 * image's disk in vm_dir/SKIFFD_OVERLAY_DIR. 0, or -1 with a message (nothing is left on disk). */
int skiffd_image_prepare(json_t *cfg, const char *image, const char *vm_dir, char *err, size_t errlen);

/* Removes what skiffd_image_prepare created, when the VM is not made after all. */
void skiffd_image_undo(const char *vm_dir);

/* The overlay's directory in STATE/vms/ID: nothing else is in it. */
#define SKIFFD_OVERLAY_DIR "overlay"

/* Before a start: a VM whose first drive is the overlay an older skiffd
 * made beside vm.json gets it moved into SKIFFD_OVERLAY_DIR (definition
 * saved); the overlay and its directory go to the VM's jail uid. 0, or -1
 * with err. */
struct skiffd;
struct skiffd_vm;
int skiffd_image_start(const struct skiffd *d, struct skiffd_vm *vm, char *err, size_t errlen);

#endif
