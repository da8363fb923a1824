/*
 * What the agent commands (src/cli/agent*.c) share: the VM they talk to
 * (a skiffd VM by id or name, or a `skiff run --api-sock` socket path) and
 * one call to its /agent routes, with the answer's fault_message turned
 * into a message.
 */
#ifndef SKIFF_CLI_AGENT_CALL_H
#define SKIFF_CLI_AGENT_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct target {
	const char *cmd;       /* "exec", ... for messages */
	char *sock;            /* the API socket: the VM's own, or skiffd's */
	char *prefix;          /* "" or "/vms/NAME" */
	bool skiffd;
	const char *vm;        /* as given */
};

/* Resolve VM (see above). 0, or -1 after printing why. */
int target_open(struct target *t, const char *cmd, const char *vm, const char *skiffd_socket);
void target_close(struct target *t);

/* METHOD PREFIX+path with body (consumed; NULL: none). 0 with *out (NULL
 * for an empty answer; out may be NULL), or -1 with err; *status is the
 * HTTP status (0 when no answer came). */
int target_call(struct target *t, const char *method, const char *path, json_t *body, long timeout_ms,
		json_t **out, long *status, char *err, size_t errlen);

/* Base64 of n bytes as a new JSON string; NULL when out of memory. */
json_t *b64_json(const void *data, size_t n);
/* Decode a base64 JSON string into a new buffer; -1 if it is not one. */
long b64_decode_json(const json_t *s, uint8_t **out);

/* Run a program in the guest to completion with the stock guest-exec (any
 * agent has it) and collect its output. 0 with the exit code, or -1 with
 * err. */
int guest_run(struct target *t, const char *const *argv, char **out, size_t *outlen, int *exitcode,
	      char *err, size_t errlen);

#endif
