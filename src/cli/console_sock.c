/* The guest console on a Unix socket; see console_sock.h. */
#include "cli/console_sock.h"
#include "cli/log_cap.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/unix_sock.h"

struct console_sock {
	char *path;
	struct unix_sock_file file;
	int listen_fd;
	int client;          /* -1: none */
	int out_read;        /* guest output arrives here (the process's stdout) */
	int orig_out;        /* the original standard output */
	struct log_cap log;  /* orig_out kept under a size when it is a file */
	int orig_in;         /* the original standard input */
	int in_write;        /* client input goes here (the process's stdin) */
	int wake[2];         /* console_sock_stop tells the thread to finish */
	uint8_t in_buf[4096];
	size_t in_len;       /* client bytes not yet taken by the console */
	uint64_t dropped;    /* output the client missed and was not told of */
	pthread_t thread;
};

static void drop_client(struct console_sock *cs)
{
	close(cs->client);
	cs->client = -1;
	cs->in_len = 0;
	cs->dropped = 0;
}

/* One non-blocking send: the bytes sent, 0 when the client has no room
 * (or went away: it is closed). */
static size_t send_some(struct console_sock *cs, const uint8_t *p, size_t n)
{
	for (;;) {
		ssize_t w = send(cs->client, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (w <= 0) {
			drop_client(cs);
			return 0;
		}
		return (size_t)w;
	}
}

/* Tell the client how much output it missed, once it has room again;
 * false while it has none. */
static bool tell_dropped(struct console_sock *cs)
{
	char note[160];
	int len = snprintf(note, sizeof(note), "\r\n[skiff: %llu bytes of console output dropped: this client "
			   "read too slowly]\r\n", (unsigned long long)cs->dropped);
	size_t w = send_some(cs, (const uint8_t *)note, (size_t)len);
	if (cs->client < 0)
		return false;
	/* Part of the note is still a sign; the rest of it is not sent. */
	if (w)
		cs->dropped = 0;
	return w > 0;
}

/* Non-blocking send to the client: the guest never waits for a client. A
 * client too slow to read loses what does not fit, and is told how many
 * bytes before the next output it takes. */
static void to_client(struct console_sock *cs, const uint8_t *p, size_t n)
{
	if (cs->client >= 0 && cs->dropped && !tell_dropped(cs)) {
		if (cs->client >= 0)
			cs->dropped += n;
		return;
	}
	while (cs->client >= 0 && n) {
		size_t w = send_some(cs, p, n);
		if (!w) {
			if (cs->client >= 0)
				cs->dropped += n;
			return;
		}
		p += w;
		n -= w;
	}
}

static void say(struct console_sock *cs, const char *s)
{
	to_client(cs, (const uint8_t *)s, strlen(s));
}

static void take_client(struct console_sock *cs)
{
	int fd = accept4(cs->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		/* Out of descriptors: the listener stays readable, so wait a
		 * little instead of spinning on it. */
		if (errno == EMFILE || errno == ENFILE)
			usleep(100 * 1000);
		return;
	}
	if (cs->client >= 0) {
		say(cs, "\r\n[skiff: another console client attached; this one is detached]\r\n");
		if (cs->client >= 0)
			drop_client(cs);
	}
	cs->client = fd;
	cs->in_len = 0;
	cs->dropped = 0;
}

/* Pass guest output on; false once standard output was put back and all
 * of it has been read. */
static bool pump_output(struct console_sock *cs)
{
	uint8_t buf[8192];
	ssize_t r = read(cs->out_read, buf, sizeof(buf));
	if (r < 0)
		return errno == EINTR || errno == EAGAIN;
	if (r == 0)
		return false;
	log_cap_write(&cs->log, buf, (size_t)r);
	to_client(cs, buf, (size_t)r);
	return true;
}

static void pump_input(struct console_sock *cs)
{
	if (cs->in_len == 0) {
		ssize_t r = recv(cs->client, cs->in_buf, sizeof(cs->in_buf), MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
			drop_client(cs); /* the client went away */
			return;
		}
		if (r < 0)
			return;
		cs->in_len = (size_t)r;
	}
	ssize_t w = write(cs->in_write, cs->in_buf, cs->in_len);
	if (w > 0) {
		memmove(cs->in_buf, cs->in_buf + w, cs->in_len - (size_t)w);
		cs->in_len -= (size_t)w;
	}
}

static void *serve(void *arg)
{
	struct console_sock *cs = arg;
	bool stopping = false;
	for (;;) {
		struct pollfd p[4] = {
			{ .fd = cs->out_read, .events = POLLIN },
			{ .fd = stopping ? -1 : cs->listen_fd, .events = POLLIN },
			{ .fd = stopping ? -1 : cs->wake[0], .events = POLLIN },
			/* Read the client only when its last bytes have been taken;
			 * otherwise wait until standard input has room. */
			{ .fd = cs->client < 0 ? -1 : cs->in_len ? cs->in_write : cs->client,
			  .events = cs->in_len ? POLLOUT : POLLIN },
		};
		if (poll(p, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents && !pump_output(cs))
			break; /* standard output is back where it was: done */
		if (p[1].revents & POLLIN)
			take_client(cs);
		if (p[2].revents)
			stopping = true; /* keep draining output until EOF */
		if (cs->client >= 0 && p[3].revents)
			pump_input(cs);
	}
	return NULL;
}

struct console_sock *console_sock_start(const char *path, uint64_t log_max, char *err, size_t errlen)
{
	struct console_sock *cs = calloc(1, sizeof(*cs));
	if (!cs || !(cs->path = strdup(path))) {
		free(cs);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	cs->client = -1;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 };
	cs->wake[0] = cs->wake[1] = -1;
	cs->orig_in = cs->orig_out = -1;
	cs->log.rw_fd = -1;
	char why[400];
	cs->listen_fd = unix_listen(path, 4, &cs->file, why, sizeof(why));
	if (cs->listen_fd < 0) {
		snprintf(err, errlen, "console socket path %s", why);
		goto fail;
	}
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(cs->wake, O_CLOEXEC)) {
		snprintf(err, errlen, "console socket: %s", strerror(errno));
		goto fail;
	}
	/* The thread must never block on the console's input pipe. */
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	cs->orig_in = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
	cs->orig_out = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	if (cs->orig_in < 0 || cs->orig_out < 0 || dup2(in[0], STDIN_FILENO) < 0) {
		snprintf(err, errlen, "console socket: %s", strerror(errno));
		goto fail;
	}
	if (log_cap_init(&cs->log, cs->orig_out, log_max, err, errlen)) {
		dup2(cs->orig_in, STDIN_FILENO);
		goto fail;
	}
	if (dup2(out[1], STDOUT_FILENO) < 0) {
		snprintf(err, errlen, "console socket: %s", strerror(errno));
		dup2(cs->orig_in, STDIN_FILENO);
		goto fail;
	}
	close(in[0]);
	close(out[1]);
	cs->in_write = in[1];
	cs->out_read = out[0];
	if (pthread_create(&cs->thread, NULL, serve, cs) == 0) {
		pthread_setname_np(cs->thread, "console-sock");
	} else {
		dup2(cs->orig_in, STDIN_FILENO);
		dup2(cs->orig_out, STDOUT_FILENO);
		in[0] = out[1] = -1;
		in[1] = cs->in_write;
		out[0] = cs->out_read;
		snprintf(err, errlen, "console socket: cannot start its thread");
		goto fail;
	}
	return cs;

fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (cs->wake[i] >= 0)
			close(cs->wake[i]);
	}
	if (cs->orig_in >= 0)
		close(cs->orig_in);
	if (cs->orig_out >= 0)
		close(cs->orig_out);
	log_cap_close(&cs->log);
	if (cs->listen_fd >= 0) {
		close(cs->listen_fd);
		unix_listen_remove(path, &cs->file);
	}
	free(cs->path);
	free(cs);
	return NULL;
}

void console_sock_stop(struct console_sock *cs)
{
	if (!cs)
		return;
	/* Put standard output back: the pipe's last writer goes away, so the
	 * thread drains it, sees EOF and ends. */
	fflush(stdout);
	dup2(cs->orig_out, STDOUT_FILENO);
	dup2(cs->orig_in, STDIN_FILENO);
	uint8_t b = 1;
	if (write(cs->wake[1], &b, 1) < 0) {
		/* The thread still ends at the output pipe's EOF. */
	}
	pthread_join(cs->thread, NULL);
	if (cs->client >= 0)
		close(cs->client);
	close(cs->listen_fd);
	unix_listen_remove(cs->path, &cs->file);
	close(cs->out_read);
	close(cs->in_write);
	close(cs->orig_in);
	close(cs->orig_out);
	log_cap_close(&cs->log);
	close(cs->wake[0]);
	close(cs->wake[1]);
	free(cs->path);
	free(cs);
}
