/*
 * The per-VM API's guest agent routes (skiff's own; Firecracker has none;
 * their rows are in api_routes.c, their handlers in api_agent.c):
 * each runs one or two QGA commands (src/api/qga.h) through the VM's agent
 * channel (src/vmm/agent.h) and answers in the API's JSON style. With no
 * agent port, a guest that has not opened it, a paused VM or an agent that
 * does not answer in time the answer is 503 with a fault_message; an error
 * from the agent (a file that does not exist, a program that cannot run)
 * is 400 with the agent's message.
 *
 *   GET /agent                 {"connected", "answering", "version",
 *                               "exec_stream", "clipboard", "file_hash",
 *                               "clock_sync": {"pending", "last", "ok",
 *                               "error"}} (a ping, 2 s; exec_stream ..
 *                               file_hash: whether the agent has skiff's
 *                               extensions; clock_sync: the last setting
 *                               of the guest's clock, "last" its reason)
 *   PUT /agent/exec            start: {"path", "args", "env", "input_data"
 *                               (base64), "capture_output", "stream", "tty",
 *                               "rows", "cols"} -> {"pid", "stream"}
 *   PUT /agent/exec/{pid}      a streamed process: {"input_data",
 *                               "input_close", "wait_ms", "count",
 *                               "signal", "rows", "cols"}; any process:
 *                               {"stream": false} polls guest-exec-status.
 *                               -> {"exited", "exitcode", "signal",
 *                               "out_data", "err_data", "input_count",
 *                               "out_truncated", "err_truncated"}
 *   PUT /agent/files           {"path", "mode"} -> {"handle"}
 *   PUT /agent/files/{handle}  {"op": "read", "count"} -> {"data", "count", "eof"}
 *                              {"op": "write", "data"} -> {"count"}
 *                              {"op": "seek", "offset", "whence"} -> {"position"}
 *                              {"op": "flush"|"close"} -> 204
 *   PUT /agent/hash            {"path"} -> {"algorithm": "xxh64", "digest",
 *                               "size"} (skiff's agent: the file read whole)
 *   PUT /agent/shutdown        {"mode": "powerdown"|"halt"|"reboot"} -> 204
 *   GET /agent/time            {"guest_ns", "host_ns"}
 *   PUT /agent/time            {"time_ns"} (default: the host's clock now) -> 204
 *   GET /agent/clipboard       {"data" (base64), "stamp"}
 *   PUT /agent/clipboard       {"data"} -> 204
 *   PUT /agent/command         {"execute", "arguments"} -> {"return": ...}
 *                              (any QGA command, for what has no route)
 */
#ifndef SKIFF_VMM_API_AGENT_H
#define SKIFF_VMM_API_AGENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "api/http.h"
#include "monitor/vm.h"

/* Largest request body on /agent/ paths (a 1 MiB file chunk in base64). */
#define VMM_AGENT_MAX_BODY (2u * 1024 * 1024)

/* Whether the VM has the VMM's agent port. */
bool vmm_agent_present(struct vm *vm);
/* Have the guest's clock set to the host's through the agent soon (after a
 * resume, a restore, a host suspend; why names which): returns at once,
 * the agent channel's own thread does it (src/vmm/agent.h). Nothing
 * happens without an agent port. */
void vmm_agent_sync_time(struct vm *vm, const char *why);

#endif
