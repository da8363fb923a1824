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
	const char *config_file;    /* may be NULL */
	const char *snapshot_dir;   /* restore DIR/vmstate + DIR/memory; may be NULL */
	const char *id;             /* instance id; may be NULL */
	const char *version;
	/* The VM options given on the command line: they fill in (and override)
	 * the config file's sections (boot-source, machine-config, drives,
	 * network-interfaces, shares, vsock, balloon). */
	const struct vm_config *cli;
	bool kernel_given, initrd_given, append_given, cpus_given, mem_given;
	void (*report_crash)(struct vm *vm);
};

/* Returns the process exit status (as for skiff run). */
int run_api(const struct run_api_opts *o);

#endif
