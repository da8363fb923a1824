/*
 * libFuzzer target for skiff run's console input path (src/cli/console.c,
 * console_poll, and its key filter src/cli/console_keys.c, which `skiff
 * console` (src/cli/attach.c) uses too): the bytes typed on the host
 * terminal with QEMU-style
 * escapes after Ctrl-A (x or X quits, h, H or ? prints the keys, Ctrl-A
 * sends one Ctrl-A, any other key after Ctrl-A is dropped), read in pieces
 * of any size; a guest that takes fewer bytes than offered or none (its
 * receive FIFO full); standard input reaching its end; a stop signal.
 *
 * Input: the first byte's bit 0 says whether standard input is a terminal
 * (escapes apply only then); then a list of steps, each a byte choosing
 * what happens and the bytes it needs:
 *   type      up to 255 bytes written to standard input (a pipe);
 *   guest     how many bytes the guest takes per delivery from now on;
 *   poll      one console_poll(), as skiff run's loop calls it;
 *   eof       the writer of standard input closes it;
 *   signal    SIGTERM's byte arrives on the console's signal pipe.
 * The run ends at a quit, as skiff run stops the VM then.
 *
 * Checked after every poll against an independent model of the escape
 * rules run over every byte the console has read: what the guest got, then
 * what the console still holds for it, is exactly the model's output, in
 * order, nothing twice; the console quits in the poll that read the quit
 * key and never otherwise; a pending signal is reported (and nothing
 * else is); each help key prints the same text once; at the end of input
 * with nothing held the console stops reading.
 *
 * Build: tests/fuzz/meson.build (-Dfuzz=true for libFuzzer; every build
 * links fuzz-replay-NAME, which runs the files it is given once each).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/console.h"
#include "cursor.h"

#define CTRL_A 0x01
#define LOG_MAX 8192
#define MAX_STEPS 400
#define PIPE_ROOM 32768    /* never more unread in the stdin pipe */

/* The escape rules, as docs/skiff-run.md states them. */
struct model {
	bool tty, escape;
	size_t read;                 /* typed bytes run through the model */
	uint8_t out[LOG_MAX];        /* what the guest should get */
	size_t nout;
	unsigned helps;
	bool quit;
};

struct run {
	struct console con;
	struct model m;
	uint8_t typed[LOG_MAX];      /* everything written to stdin */
	size_t ntyped;
	uint8_t got[LOG_MAX];        /* what deliver() was given and took */
	size_t ngot;
	size_t take;                 /* deliver() takes at most this much */
	int in_w, out_r;             /* our ends of stdin and stdout */
	bool signal_pending;
	uint8_t help[1024];          /* the first help text printed */
	size_t help_len;
};

static int saved_stdin = -1, saved_stdout = -1;

static void die(const char *what)
{
	perror(what);
	exit(1);   /* the harness itself, not the input */
}

static void model_byte(struct model *m, uint8_t b)
{
	if (m->quit)
		return;
	if (m->tty && m->escape) {
		m->escape = false;
		if (b == 'x' || b == 'X') {
			m->quit = true;
			return;
		}
		if (b == 'h' || b == 'H' || b == '?')
			m->helps++;
		if (b != CTRL_A)
			return;
	} else if (m->tty && b == CTRL_A) {
		m->escape = true;
		return;
	}
	m->out[m->nout++] = b;
}

static size_t deliver(void *ctx, const uint8_t *buf, size_t n)
{
	struct run *r = ctx;
	if (n > sizeof(r->con.pending))
		abort();   /* more than the console can hold */
	size_t k = n < r->take ? n : r->take;
	if (r->ngot + k > LOG_MAX)
		abort();   /* more than was typed */
	memcpy(r->got + r->ngot, buf, k);
	r->ngot += k;
	return k;
}

/* Collect what the console printed during one poll: nothing, or the same
 * help text `helps` times. */
static void check_output(struct run *r, unsigned helps)
{
	uint8_t buf[65536];
	ssize_t n = read(r->out_r, buf, sizeof(buf));
	size_t len = n > 0 ? (size_t)n : 0;
	if (n < 0 && errno != EAGAIN)
		die("read stdout");
	if (!helps) {
		if (len)
			abort();   /* printed without a help key */
		return;
	}
	if (!r->help_len) {
		if (len % helps || len / helps > sizeof(r->help) || !len)
			abort();
		r->help_len = len / helps;
		memcpy(r->help, buf, r->help_len);
	}
	if (len != helps * r->help_len)
		abort();   /* not once per help key */
	for (size_t i = 0; i < len; i++)
		if (buf[i] != r->help[i % r->help_len])
			abort();
}

static size_t unread(struct run *r)
{
	int n = 0;
	if (ioctl(STDIN_FILENO, FIONREAD, &n) < 0)
		die("FIONREAD");
	return (size_t)n;
}

/* One poll; false when the console quit (the run ends). */
static bool poll_once(struct run *r)
{
	struct console *c = &r->con;
	bool held = c->npending > 0, sig = r->signal_pending;
	bool at_end = r->in_w < 0 && !unread(r);   /* only EOF is left to read */
	size_t before = r->m.read;
	unsigned helps_before = r->m.helps;
	enum console_event ev = console_poll(c, 0, deliver, r);
	size_t read_now = r->ntyped - unread(r);
	if (read_now < before)
		abort();
	/* The model reads what the console read. */
	while (r->m.read < read_now)
		model_byte(&r->m, r->typed[r->m.read++]);
	check_output(r, r->m.helps - helps_before);

	if (sig) {
		if (ev != CONSOLE_SIGNAL || read_now != before)
			abort();   /* a signal comes first; stdin waits */
		char b;
		if (read(c->sig_pipe[0], &b, 1) != 1)
			die("read signal pipe");
		r->signal_pending = false;
	} else if (ev == CONSOLE_SIGNAL) {
		abort();
	}
	if (r->m.quit != (ev == CONSOLE_QUIT))
		abort();   /* a quit missed, or made up */
	/* Delivered, then held, is the model's output exactly. */
	if (r->ngot + c->npending != r->m.nout || memcmp(r->got, r->m.out, r->ngot) ||
	    memcmp(c->pending, r->m.out + r->ngot, c->npending))
		abort();
	if (at_end && !held && !sig && c->stdin_open)
		abort();   /* the end of input was not seen */
	return ev != CONSOLE_QUIT;
}

/* Does step `what` poll the console afterwards? */
static bool polls(uint8_t what)
{
	return (what & 7) == 2 || (what & 7) >= 5;
}

static void step(struct run *r, struct cursor *cur, uint8_t what)
{
	switch (what & 7) {
	case 0: {   /* type */
		size_t n = (size_t)take(cur, 1);
		uint8_t buf[256];
		for (size_t i = 0; i < n; i++) {
			/* Escape keys often: the high bit maps small bytes to
			 * Ctrl-A and the keys after it. */
			uint8_t b = (uint8_t)take(cur, 1);
			buf[i] = what & 0x80 && b < 0x40 ? (b & 1 ? CTRL_A : "xXhH?a\x01"[b % 7]) : b;
		}
		if (r->in_w < 0 || unread(r) + n > PIPE_ROOM || r->ntyped + n > LOG_MAX)
			break;
		ssize_t w = write(r->in_w, buf, n);
		if (w != (ssize_t)n)
			die("write stdin");
		memcpy(r->typed + r->ntyped, buf, n);
		r->ntyped += n;
		break;
	}
	case 1:     /* the guest's appetite */
		r->take = what & 0x80 ? SIZE_MAX : (size_t)take(cur, 1) % 8;
		break;
	case 3:     /* the end of input */
		if (r->in_w >= 0)
			close(r->in_w);
		r->in_w = -1;
		break;
	case 4:     /* a stop signal */
		if (!r->signal_pending) {
			char b = 15;   /* SIGTERM, as terminal.c writes it */
			if (write(r->con.sig_pipe[1], &b, 1) != 1)
				die("write signal pipe");
			r->signal_pending = true;
		}
		break;
	default:
		break;   /* a poll only */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (saved_stdin < 0 && ((saved_stdin = dup(STDIN_FILENO)) < 0 ||
				(saved_stdout = dup(STDOUT_FILENO)) < 0))
		die("dup");
	struct run *r = calloc(1, sizeof(*r));
	if (!r)
		die("calloc");
	struct cursor cur = { data, size };
	r->m.tty = take(&cur, 1) & 1;
	r->take = SIZE_MAX;
	/* The console as console_open() leaves it, without touching this
	 * process's terminal or signal handlers: stdin and stdout are pipes. */
	struct console *c = &r->con;
	c->keys.tty = r->m.tty;
	c->stdin_open = true;
	int in[2], out[2];
	if (pipe2(c->sig_pipe, O_CLOEXEC | O_NONBLOCK) || pipe2(in, O_CLOEXEC) ||
	    pipe2(out, O_CLOEXEC | O_NONBLOCK))
		die("pipe2");
	if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0)
		die("dup2");
	close(in[0]);
	close(out[1]);
	r->in_w = in[1];
	r->out_r = out[0];

	bool going = true;
	for (int n = 0; going && cur.n && n < MAX_STEPS; n++) {
		uint8_t what = (uint8_t)take(&cur, 1);
		step(r, &cur, what);
		if (polls(what) || !cur.n)
			going = poll_once(r);
	}
	/* Whatever is left: the guest takes everything, as it would in time. */
	r->take = SIZE_MAX;
	for (int n = 0; going && n < 64 && (c->npending || (c->stdin_open && unread(r))); n++)
		going = poll_once(r);

	if (dup2(saved_stdin, STDIN_FILENO) < 0 || dup2(saved_stdout, STDOUT_FILENO) < 0)
		die("dup2");
	if (r->in_w >= 0)
		close(r->in_w);
	close(r->out_r);
	close(c->sig_pipe[0]);
	close(c->sig_pipe[1]);
	free(r);
	return 0;
}
