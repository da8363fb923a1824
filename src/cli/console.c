/* The host terminal as the guest console; see console.h. */
#include "cli/console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fd_io.h"
#include "base/terminal.h"

int console_open(struct console *c)
{
	memset(c, 0, sizeof(*c));
	c->stdin_open = true;
	if (pipe2(c->sig_pipe, O_CLOEXEC | O_NONBLOCK))
		return -1;
	terminal_stop_signals(c->sig_pipe[1]);
	c->keys.tty = isatty(STDIN_FILENO);
	if (c->keys.tty)
		terminal_raw_begin();
	return 0;
}

void console_close(struct console *c)
{
	terminal_raw_end();
	terminal_stop_signals(-1);
	close(c->sig_pipe[0]);
	close(c->sig_pipe[1]);
}

void console_output(void *ctx, const uint8_t *buf, size_t n)
{
	(void)ctx;
	/* A terminal that went away drops guest output. */
	fd_write_all(STDOUT_FILENO, buf, n);
}

static void say(const char *s)
{
	console_output(NULL, (const uint8_t *)s, strlen(s));
}

static void help(void)
{
	say("\r\nC-a h    print this help\r\n"
	    "C-a x    exit skiff (the guest is stopped)\r\n"
	    "C-a C-a  send C-a to the guest\r\n");
}

/* Turn raw terminal bytes into guest bytes, acting on escapes. */
static enum console_event filter(struct console *c, const uint8_t *in, size_t n)
{
	unsigned helps = 0;
	bool quit = console_keys_filter(&c->keys, in, n, c->pending, &c->npending, sizeof(c->pending), &helps);
	while (helps--)
		help();
	return quit ? CONSOLE_QUIT : CONSOLE_NONE;
}

enum console_event console_poll(struct console *c, int timeout_ms,
				size_t (*deliver)(void *ctx, const uint8_t *buf, size_t n),
				void *ctx)
{
	if (c->npending) {
		size_t took = deliver(ctx, c->pending, c->npending);
		memmove(c->pending, c->pending + took, c->npending - took);
		c->npending -= took;
		if (c->npending && timeout_ms > 10)
			timeout_ms = 10; /* the guest's buffer is full: retry soon */
	}
	struct pollfd p[2] = {
		{ .fd = c->sig_pipe[0], .events = POLLIN },
		{ .fd = STDIN_FILENO, .events = POLLIN },
	};
	/* Read only when the bytes can be held. */
	int nfds = c->stdin_open && c->npending == 0 ? 2 : 1;
	if (poll(p, (nfds_t)nfds, timeout_ms) <= 0)
		return CONSOLE_NONE;
	if (p[0].revents & POLLIN)
		return CONSOLE_SIGNAL;
	if (nfds == 2 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
		uint8_t buf[sizeof(c->pending)];
		ssize_t r = read(STDIN_FILENO, buf, sizeof(buf));
		if (r <= 0) {
			if (r == 0 || (errno != EINTR && errno != EAGAIN))
				c->stdin_open = false; /* EOF: the guest keeps running */
			return CONSOLE_NONE;
		}
		enum console_event ev = filter(c, buf, (size_t)r);
		if (ev != CONSOLE_NONE)
			return ev;
		size_t took = deliver(ctx, c->pending, c->npending);
		memmove(c->pending, c->pending + took, c->npending - took);
		c->npending -= took;
	}
	return CONSOLE_NONE;
}
