/*
 * The `skiff` commands that reach into a running guest through its agent
 * (the per-VM API's /agent routes, src/vmm/api_agent.h): exec, cp,
 * shutdown, clipboard. VM is a skiffd VM (id or name; its API is reached
 * through skiffd's /vms/VM/...) or, when it contains a '/', the API socket
 * of a `skiff run --api-sock` VM.
 */
#ifndef SKIFF_CLI_AGENT_H
#define SKIFF_CLI_AGENT_H

#include <stdbool.h>
#include <stddef.h>

/* Is `name` one of the commands here? */
bool agent_cli_is_command(const char *name);
/* Run one; argv[0] is the command. Returns the exit status. */
int agent_cli_main(int argc, char **argv);

/* Ask a skiffd VM to power off through its agent (skiffd socket `sock`).
 * 0 when the agent took the request; -1 with err otherwise. */
int agent_cli_request_shutdown(const char *sock, const char *vm, char *err, size_t errlen);

#endif
