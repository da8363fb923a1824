/*
 * The keys typed into a guest console, with QEMU's escapes after Ctrl-A:
 * one filter for both consoles, `skiff run`'s (console.c) and `skiff
 * console`'s (attach.c), so the `escape` fuzz target (tests/fuzz/
 * fuzz_escape.c, a separate model of these rules) checks both. Only the
 * meaning of the quit key differs (stop the guest, or detach), and that is
 * the caller's.
 */
#ifndef SKIFF_CLI_CONSOLE_KEYS_H
#define SKIFF_CLI_CONSOLE_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONSOLE_KEY_CTRL_A 0x01

struct console_keys {
	bool tty;       /* escapes apply only to a terminal's keys */
	bool escape;    /* the previous key was Ctrl-A */
};

/* Run in[0..n) through the rules (docs/skiff-run.md, "Keys"): a key for
 * the guest is appended to out (*nout bytes held, room for cap; keys past
 * that are dropped), each help key after Ctrl-A (h, H, ?) adds one to
 * *helps, Ctrl-A Ctrl-A is one Ctrl-A for the guest, any other key after
 * Ctrl-A is dropped. Returns true at the quit key (x or X after Ctrl-A),
 * leaving the keys after it unread. */
bool console_keys_filter(struct console_keys *k, const uint8_t *in, size_t n, uint8_t *out, size_t *nout,
			 size_t cap, unsigned *helps);

#endif
