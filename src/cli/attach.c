/*
 * `skiff console VM`: attach this terminal to a running VM's serial console
 * through the console socket its VMM serves (skiff run --console-sock). The
 * terminal goes into raw mode and is restored however this ends (detach, the
 * VM ending, a signal, a crash); the keys are those of skiff run, except
 * that Ctrl-A x detaches and leaves the VM running:
 *   C-a x    detach        C-a h    list the keys        C-a C-a  send C-a
 * (the filter is skiff run's, console_keys.c).
 * With standard input not a terminal the bytes pass unchanged (no escapes);
 * at its end skiff waits a moment for the answer, then detaches.
 */
#include "cli/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/fd_io.h"
#include "base/terminal.h"
#include "base/unix_sock.h"
#include "cli/console_keys.h"

static void out(const char *s, size_t n)
{
	fd_write_all(STDOUT_FILENO, s, n);
}

static void say(const char *s)
{
	out(s, strlen(s));
}

static int connect_to(const char *path, char *err, size_t errlen)
{
	int fd = unix_connect(path, false);
	if (fd < 0)
		snprintf(err, errlen, "cannot connect to %s: %s", path,
			 errno == ENAMETOOLONG ? "the path is too long for a socket" : strerror(errno));
	return fd;
}

enum end { END_DETACH, END_CLOSED, END_SIGNAL, END_INPUT };

/* Shuttle bytes until one side ends. `sigfd` reports SIGTERM/SIGINT/SIGHUP. */
static enum end shuttle(int fd, int sigfd, bool tty)
{
	struct console_keys keys = { .tty = tty };
	bool in_open = true;
	int linger_ms = -1;
	for (;;) {
		struct pollfd p[3] = {
			{ .fd = fd, .events = POLLIN },
			{ .fd = sigfd, .events = POLLIN },
			{ .fd = in_open ? STDIN_FILENO : -1, .events = POLLIN },
		};
		int n = poll(p, 3, linger_ms);
		if (n < 0 && errno != EINTR)
			return END_CLOSED;
		if (n == 0)
			return END_INPUT; /* input ended a while ago and the VM is quiet */
		if (p[1].revents)
			return END_SIGNAL;
		if (p[0].revents) {
			char buf[8192];
			ssize_t r = recv(fd, buf, sizeof(buf), 0);
			if (r <= 0 && !(r < 0 && errno == EINTR))
				return END_CLOSED;
			if (r > 0)
				out(buf, (size_t)r);
		}
		if (in_open && p[2].revents) {
			uint8_t in[1024], to[1024];
			size_t k = 0;
			ssize_t r = read(STDIN_FILENO, in, sizeof(in));
			if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
				in_open = false;
				linger_ms = 1000;
				continue;
			}
			if (r < 0)
				continue;
			unsigned helps = 0;
			bool detach = console_keys_filter(&keys, in, (size_t)r, to, &k, sizeof(to), &helps);
			while (helps--)
				say("\r\nC-a h    print this help\r\n"
				    "C-a x    detach (the VM keeps running)\r\n"
				    "C-a C-a  send C-a to the guest\r\n");
			/* The keys before a detach still go to the guest. */
			if (k && !fd_send_all(fd, to, k, MSG_NOSIGNAL))
				return detach ? END_DETACH : END_CLOSED;
			if (detach)
				return END_DETACH;
		}
	}
}

int ctl_console(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 1000 }, { "help", no_argument, NULL, 'h' }, { 0 }
	};
	int o;
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (o == 1000) {
			c->socket = optarg;
		} else if (o == 'h') {
			fputs("usage: skiff console [--socket PATH] VM\n\n"
			      "Attach to a running VM's serial console. C-a x detaches (the VM keeps\n"
			      "running), C-a h lists the keys, C-a C-a sends C-a.\n", stdout);
			return 0;
		} else {
			fprintf(stderr, "skiff console: unknown option or missing value '%s'\n", argv[optind - 1]);
			return 64;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: skiff console [--socket PATH] VM\n");
		return 64;
	}
	const char *name = argv[optind];
	char *path = NULL;
	if (asprintf(&path, "/vms/%s", name) < 0)
		return 1;
	json_t *vm = NULL;
	int r = ctl_call(c, "GET", path, NULL, &vm);
	free(path);
	if (r)
		return 1;
	const char *state = json_string_value(json_object_get(vm, "state"));
	const char *sock = json_string_value(json_object_get(vm, "console_socket"));
	if (!state || !strcmp(state, "stopped") || !sock) {
		fprintf(stderr, "skiff console: %s is not running (skiff start %s)\n", name, name);
		json_decref(vm);
		return 1;
	}
	char err[512];
	int fd = connect_to(sock, err, sizeof(err));
	json_decref(vm);
	if (fd < 0) {
		fprintf(stderr, "skiff console: %s: %s\n", name, err);
		return 1;
	}

	int sp[2];
	if (pipe2(sp, O_CLOEXEC | O_NONBLOCK)) {
		close(fd);
		return 1;
	}
	terminal_stop_signals(sp[1]);
	bool tty = terminal_raw_begin();
	if (tty) {
		fprintf(stderr, "[skiff: attached to %s; C-a x detaches, C-a h lists the keys]\r\n", name);
	}
	enum end how = shuttle(fd, sp[0], tty);
	terminal_raw_end();
	close(fd);
	terminal_stop_signals(-1);
	close(sp[0]);
	close(sp[1]);
	if (tty || how == END_CLOSED)
		fprintf(stderr, "\n[skiff: %s]\n", how == END_DETACH ? "detached; the VM keeps running" :
			how == END_CLOSED ? "the VM's console closed (the VM ended, or another client attached)" :
			how == END_SIGNAL ? "detached by a signal; the VM keeps running" : "detached");
	return how == END_CLOSED ? 1 : 0;
}
