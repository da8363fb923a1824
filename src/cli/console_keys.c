/* The guest console's keys and their escapes; see console_keys.h. */
#include "cli/console_keys.h"

bool console_keys_filter(struct console_keys *k, const uint8_t *in, size_t n, uint8_t *out, size_t *nout,
			 size_t cap, unsigned *helps)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t b = in[i];
		if (k->tty && k->escape) {
			k->escape = false;
			if (b == 'x' || b == 'X')
				return true;
			if (b != CONSOLE_KEY_CTRL_A) {
				if (b == 'h' || b == 'H' || b == '?')
					(*helps)++;
				continue;
			}
		} else if (k->tty && b == CONSOLE_KEY_CTRL_A) {
			k->escape = true;
			continue;
		}
		if (*nout < cap)
			out[(*nout)++] = b;
	}
	return false;
}
