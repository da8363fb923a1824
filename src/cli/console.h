/*
 * The host side of the guest console for `skiff run` (and later `skiff
 * console`): the terminal in raw mode when stdin is one, always restored
 * however the process ends; QEMU-style escapes after Ctrl-A (x quits, h
 * lists them, Ctrl-A sends Ctrl-A; console_keys.c, shared with `skiff
 * console`); plain pipes when stdin is not a terminal.
 */
#ifndef SKIFF_CLI_CONSOLE_H
#define SKIFF_CLI_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/console_keys.h"

struct console {
	struct console_keys keys;   /* tty: escapes apply */
	bool stdin_open;
	int sig_pipe[2];    /* signals that must end the VM arrive here */
	uint8_t pending[256];
	size_t npending;
};

int console_open(struct console *c);
void console_close(struct console *c);

/* Write guest output to the terminal. Any thread. */
void console_output(void *ctx, const uint8_t *buf, size_t n);

enum console_event { CONSOLE_NONE, CONSOLE_QUIT, CONSOLE_SIGNAL };

/* skiff's exit status when the user quit with Ctrl-A x: the guest was
 * stopped, it did not power off (0), so a script can tell the two apart
 * (docs/skiff-run.md "Exit status"). */
#define CONSOLE_QUIT_STATUS 3

/* Wait up to timeout_ms for input; deliver guest-bound bytes through
 * `deliver` (which returns how many it accepted). */
enum console_event console_poll(struct console *c, int timeout_ms,
				size_t (*deliver)(void *ctx, const uint8_t *buf, size_t n),
				void *ctx);

#endif
