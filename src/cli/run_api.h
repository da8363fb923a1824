/*
 * `skiff run --api-sock PATH` and `skiff run --config-file FILE`: the VMM
 * configured through the per-VM API and/or a Firecracker-style config file
 * (see vmm/api.h), with the guest console on this terminal as in a plain
 * `skiff run`. The process ends when the guest does.
 */
#ifndef SKIFF_CLI_RUN_API_H
#define SKIFF_CLI_RUN_API_H

#include <stdbool.h>

#include "vmm/config.h"

struct vm;

struct run_api_opts {
	const char *api_sock;       /* may be NULL */
	const char *snapshot_dir;   /* restore DIR/vmstate + DIR/memory; may be NULL */
	const char *version;
	/* The configuration: a --config-file's with the command line's options
	 * over it (checked), its name the instance id (may be NULL). */
	const struct vm_config *cfg;
	bool configured;            /* a config file or VM options were given */
	bool start;                 /* start now (else wait for InstanceStart) */
	void (*report_crash)(struct vm *vm);
	struct sandbox *sandbox;    /* may be NULL */
};

/* Returns the process exit status (as for skiff run). */
int run_api(const struct run_api_opts *o);

#endif
