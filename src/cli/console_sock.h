/*
 * `skiff run --console-sock PATH`: the guest console on a Unix socket as
 * well as on standard output, for VMs that run detached (skiffd starts them
 * with standard output going to a log file) and a later `skiff console`.
 *
 * It works below the console code rather than beside it: standard input
 * and output are replaced with pipes served by one thread. Everything the
 * guest prints still reaches the original standard output (the log), and
 * also the connected client; what the client sends becomes the console's
 * standard input. One client at a time: a new connection takes over and the
 * old one is told and closed. A client too slow to read loses output rather
 * than stalling the guest, and is told how many bytes it lost (a line
 * "[skiff: N bytes of console output dropped: ...]") before the next output
 * it has room for. The console code then sees plain pipes, so no
 * escape keys are interpreted here (`skiff console` handles those).
 */
#ifndef SKIFF_CLI_CONSOLE_SOCK_H
#define SKIFF_CLI_CONSOLE_SOCK_H

#include <stddef.h>
#include <stdint.h>

struct console_sock;

/* Create the socket (mode 0600; a stale socket file is replaced) and
 * reroute standard input and output. Call before the console is opened.
 * When standard output is a regular file and log_max is not 0, the file is
 * kept under log_max bytes (log_cap.h). NULL with a message in err on
 * failure (nothing is changed then). */
struct console_sock *console_sock_start(const char *path, uint64_t log_max, char *err, size_t errlen);

/* Put standard input and output back, pass on the output still buffered,
 * close the client, remove the socket file. NULL is ignored. */
void console_sock_stop(struct console_sock *cs);

#endif
