/*
 * skiff-agent's main loop: find the agent port, read requests, frame and
 * parse them, run the command, write the reply; and the children's I/O in
 * between. See agent.h.
 *
 * Framing (QGA over a byte stream): a request is one JSON object; a 0xFF
 * byte discards whatever was received so far (the host sends one before
 * guest-sync-delimited after a time-out), and the reply to
 * guest-sync-delimited is preceded by 0xFF so the host can find it. Bytes
 * outside an object other than white space are dropped.
 *
 * Run as `skiff-agent [--port PATH | --fd N] [--misbehave garbage|huge|silent]`
 * (--fd: a channel already open, for tests that run the agent on the host);
 * `skiff.agent=MODE` on the kernel command line also sets the mode (tests
 * use it to make a guest whose agent lies or says nothing), and `off`
 * makes the agent exit at once. Called as skiff-clip it is the clipboard
 * tool (clip.c).
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "base64.h"

#define PORT_WAIT_FAST_MS 200
#define PORT_WAIT_SLOW_MS 5000
#define WRITE_TIMEOUT_MS 30000

uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool bytes_append(struct bytes *b, const uint8_t *p, size_t n)
{
	if (b->off + b->len + n > b->cap && b->off) {
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		size_t nc = b->cap ? b->cap : 4096;
		while (nc < b->len + n)
			nc *= 2;
		uint8_t *np = realloc(b->data, nc);
		if (!np)
			return false;
		b->data = np;
		b->cap = nc;
	}
	memcpy(b->data + b->off + b->len, p, n);
	b->len += n;
	return true;
}

void bytes_consume(struct bytes *b, size_t n)
{
	b->off += n;
	b->len -= n;
	if (!b->len)
		b->off = 0;
}

void bytes_free(struct bytes *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* ------------------------------------------------------------ arguments */

bool arg_int(const struct jval *args, const char *name, bool required, int64_t *out,
	     char *err, size_t errlen)
{
	const struct jval *v = json_get(args, name);
	if (!v) {
		if (required)
			snprintf(err, errlen, "Parameter '%s' missing", name);
		return !required;
	}
	if (v->type != J_INT) {
		snprintf(err, errlen, "Parameter '%s' expects integer", name);
		return false;
	}
	*out = v->i;
	return true;
}

bool arg_bool(const struct jval *args, const char *name, bool *out, char *err, size_t errlen)
{
	const struct jval *v = json_get(args, name);
	if (!v)
		return true;
	if (v->type != J_BOOL) {
		snprintf(err, errlen, "Parameter '%s' expects boolean", name);
		return false;
	}
	*out = v->b;
	return true;
}

const struct jval *arg_str(const struct jval *args, const char *name, bool required,
			   char *err, size_t errlen)
{
	const struct jval *v = json_get(args, name);
	if (!v) {
		if (required)
			snprintf(err, errlen, "Parameter '%s' missing", name);
		return NULL;
	}
	if (v->type != J_STRING) {
		snprintf(err, errlen, "Parameter '%s' expects string", name);
		return NULL;
	}
	return v;
}

bool arg_b64(const struct jval *args, const char *name, uint8_t **data, size_t *len,
	     char *err, size_t errlen)
{
	*data = NULL;
	*len = 0;
	const struct jval *v = json_get(args, name);
	if (!v)
		return true;
	if (v->type != J_STRING) {
		snprintf(err, errlen, "Parameter '%s' expects string", name);
		return false;
	}
	uint8_t *buf = malloc(v->len / 4 * 3 + 3);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	long n = base64_decode(v->s, v->len, buf);
	if (n < 0) {
		free(buf);
		snprintf(err, errlen, "Parameter '%s': invalid base64 data", name);
		return false;
	}
	*data = buf;
	*len = (size_t)n;
	return true;
}

/* ------------------------------------------------------------ the port */

/* The device of the virtio-console port named AGENT_PORT_NAME, from sysfs
 * (the /dev/virtio-ports link may not be made yet). */
static int open_port(struct agent *a)
{
	if (a->port_path)
		return open(a->port_path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	DIR *d = opendir("/sys/class/virtio-ports");
	if (!d)
		return -1;
	int fd = -1;
	struct dirent *e;
	while (fd < 0 && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[512], name[256];
		snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", e->d_name);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		bool match = fgets(name, sizeof(name), f) != NULL;
		fclose(f);
		name[strcspn(name, "\n")] = 0;
		if (match && !strcmp(name, AGENT_PORT_NAME)) {
			snprintf(path, sizeof(path), "/dev/%s", e->d_name);
			fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		}
	}
	closedir(d);
	return fd;
}

/* Write all of buf to the port; false if the host took nothing for
 * WRITE_TIMEOUT_MS (the reply is then dropped). */
static bool port_write(struct agent *a, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	uint64_t deadline = now_ms() + WRITE_TIMEOUT_MS;
	while (n) {
		ssize_t w = write(a->port, p, n);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			deadline = now_ms() + WRITE_TIMEOUT_MS;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN)
			return false;
		uint64_t t = now_ms();
		if (t >= deadline)
			return false;
		struct pollfd pf = { .fd = a->port, .events = POLLOUT };
		poll(&pf, 1, (int)(deadline - t));
	}
	return true;
}

static void send_reply(struct agent *a, struct jbuf *out)
{
	if (out->failed) {
		jb_free(out);
		static const char oom[] = "{\"error\": {\"class\": \"GenericError\", \"desc\": \"out of memory\"}}\n";
		port_write(a, oom, sizeof(oom) - 1);
		return;
	}
	jb_raw(out, "\n", 1);
	if (a->synced_reply) {
		static const uint8_t ff = 0xff;
		port_write(a, &ff, 1);
		a->synced_reply = false;
	}
	if (!out->failed)
		port_write(a, out->p, out->len);
	jb_free(out);
}

/* The id member of a request, echoed in its reply as QMP does. */
static void put_id(struct jbuf *out, const struct jval *req)
{
	const struct jval *id = json_get(req, "id");
	if (!id)
		return;
	if (id->type == J_INT) {
		jb_printf(out, ", \"id\": %lld", (long long)id->i);
	} else if (id->type == J_STRING) {
		jb_str(out, ", \"id\": ");
		jb_string(out, id->s, id->len);
	}
}

static void reply_error(struct agent *a, const struct jval *req, const char *cls, const char *desc)
{
	struct jbuf out = { 0 };
	jb_str(&out, "{\"error\": {\"class\": ");
	jb_cstring(&out, cls);
	jb_str(&out, ", \"desc\": ");
	jb_cstring(&out, desc);
	jb_str(&out, "}");
	put_id(&out, req);
	jb_str(&out, "}");
	send_reply(a, &out);
}

static void reply_return(struct agent *a, const struct jval *req, struct jbuf *ret)
{
	struct jbuf out = { 0 };
	jb_str(&out, "{\"return\": ");
	if (ret->len)
		jb_raw(&out, ret->p, ret->len);
	else
		jb_str(&out, "{}");
	put_id(&out, req);
	jb_str(&out, "}");
	out.failed |= ret->failed;
	send_reply(a, &out);
}

/* A misbehaving agent for tests: answers garbage, an endless reply, or
 * nothing at all. */
static void misbehave(struct agent *a)
{
	if (a->misbehave == MB_GARBAGE) {
		static const char junk[] = "\xff}{\"return\": [1, 2,\n\xfe not json \"\\u12 ]]]\n"
					   "{\"return\": 18446744073709551616}\n{\"error\": 5}\n";
		port_write(a, junk, sizeof(junk) - 1);
	} else if (a->misbehave == MB_HUGE) {
		/* One reply that never ends: an ever longer string. */
		static char chunk[64 * 1024];
		memset(chunk, 'A', sizeof(chunk));
		port_write(a, "\xff{\"return\": \"", 13);
		for (int i = 0; i < 1024; i++)   /* 64 MiB */
			if (!port_write(a, chunk, sizeof(chunk)))
				break;
	}
}

static void handle_request(struct agent *a, const uint8_t *text, size_t n)
{
	char err[512] = "";
	struct jval *req = json_parse((const char *)text, n, err, sizeof(err));
	if (!req) {
		reply_error(a, NULL, "GenericError", err);
		return;
	}
	if (a->misbehave != MB_NONE) {
		misbehave(a);
		json_free(req);
		return;
	}
	const struct jval *exe = json_get(req, "execute");
	const struct jval *args = json_get(req, "arguments");
	if (req->type != J_OBJECT || !exe || exe->type != J_STRING) {
		reply_error(a, req, "GenericError", "QMP input must be an object with 'execute' (a string)");
		json_free(req);
		return;
	}
	if (args && args->type != J_OBJECT) {
		reply_error(a, req, "GenericError", "QMP input member 'arguments' must be an object");
		json_free(req);
		return;
	}
	const struct agent_cmd *cmd = NULL;
	for (size_t i = 0; i < agent_ncmds; i++)
		if (!strcmp(agent_cmds[i].name, exe->s))
			cmd = &agent_cmds[i];
	if (!cmd) {
		snprintf(err, sizeof(err), "The command %.200s has not been found", exe->s);
		reply_error(a, req, "CommandNotFound", err);
		json_free(req);
		return;
	}
	struct jval empty = { .type = J_OBJECT };
	struct jbuf ret = { 0 };
	int r = cmd->fn(a, args ? args : &empty, &ret, err, sizeof(err));
	if (r == 0)
		reply_return(a, req, &ret);
	else if (r < 0)
		reply_error(a, req, "GenericError", err);
	jb_free(&ret);
	if (r == 1 && a->held && !a->held_req) {
		a->held_req = req;   /* answered later from the loop */
		return;
	}
	json_free(req);
}

/* Answer the held guest-exec-io if its process has something to say or
 * its wait is over. */
static void answer_held(struct agent *a, bool force)
{
	if (!a->held || (!force && !exec_held_ready(a) && now_ms() < a->held_deadline_ms))
		return;
	struct jval *req = a->held_req;
	a->held = false;
	a->held_req = NULL;
	const struct jval *args = json_get(req, "arguments");
	struct jval empty = { .type = J_OBJECT };
	struct jbuf ret = { 0 };
	char err[512] = "";
	if (cmd_exec_io_answer(a, args ? args : &empty, &ret, err, sizeof(err)) == 0)
		reply_return(a, req, &ret);
	else
		reply_error(a, req, "GenericError", err);
	jb_free(&ret);
	json_free(req);
}

static void reset_framing(struct agent *a)
{
	a->req_len = 0;
	a->depth = 0;
	a->in_string = a->escape = a->skipping = false;
}

/* Append n bytes to the request being received, unless it is being
 * skipped; one over AGENT_MAX_REQUEST is dropped (the host times out and
 * resynchronises). */
static void req_store(struct agent *a, const uint8_t *p, size_t n)
{
	if (a->skipping)
		return;
	if (a->req_len + n > a->req_cap) {
		size_t nc = a->req_cap ? a->req_cap : 4096;
		while (nc < a->req_len + n && nc <= AGENT_MAX_REQUEST)
			nc *= 2;
		uint8_t *np = nc <= AGENT_MAX_REQUEST ? realloc(a->req, nc) : NULL;
		if (!np) {
			a->skipping = true;
			a->req_len = 0;
			return;
		}
		a->req = np;
		a->req_cap = nc;
	}
	memcpy(a->req + a->req_len, p, n);
	a->req_len += n;
}

/* Feed received bytes through the framer; run each complete request. Stops
 * early when a request is held (the rest stays in the port). Returns the
 * bytes used. */
static size_t take_input(struct agent *a, const uint8_t *buf, size_t n)
{
	size_t i = 0;
	while (i < n && !a->held) {
		if (a->in_string && !a->escape) {
			/* Inside a string (all of a file piece's base64): copy up to
			 * the next byte that means something. */
			size_t run = json_plain_run((const char *)buf + i, n - i);
			if (run) {
				req_store(a, buf + i, run);
				i += run;
				continue;
			}
		}
		uint8_t c = buf[i++];
		if (c == 0xff) {
			reset_framing(a);
			continue;
		}
		if (a->depth == 0) {
			if (c != '{')
				continue;   /* white space or stray bytes between requests */
			a->skipping = false;
		}
		req_store(a, &c, 1);
		if (a->in_string) {
			if (a->escape)
				a->escape = false;
			else if (c == '\\')
				a->escape = true;
			else if (c == '"')
				a->in_string = false;
			continue;
		}
		if (c == '"') {
			a->in_string = true;
		} else if (c == '{' || c == '[') {
			a->depth++;
		} else if (c == '}' || c == ']') {
			if (--a->depth == 0) {
				if (!a->skipping)
					handle_request(a, a->req, a->req_len);
				else
					reply_error(a, NULL, "GenericError", "request too large");
				reset_framing(a);
			}
		}
	}
	return i;
}

static enum misbehave cmdline_mode(bool *off)
{
	*off = false;
	FILE *f = fopen("/proc/cmdline", "re");
	if (!f)
		return MB_NONE;
	char line[4096];
	enum misbehave m = MB_NONE;
	if (fgets(line, sizeof(line), f)) {
		for (char *tok = strtok(line, " \n"); tok; tok = strtok(NULL, " \n")) {
			if (strncmp(tok, "skiff.agent=", 12))
				continue;
			const char *v = tok + 12;
			m = !strcmp(v, "garbage") ? MB_GARBAGE : !strcmp(v, "huge") ? MB_HUGE :
			    !strcmp(v, "silent") ? MB_SILENT : MB_NONE;
			*off = !strcmp(v, "off");
		}
	}
	fclose(f);
	return m;
}

static int run(struct agent *a)
{
	static uint8_t buf[64 * 1024];
	size_t pending_off = 0, pending_len = 0;   /* read but not yet framed (held request) */
	uint64_t port_wait_start = now_ms();
	for (;;) {
		if (a->port < 0) {
			a->port = open_port(a);
			if (a->port < 0) {
				bool fast = now_ms() - port_wait_start < 30000;
				usleep((fast ? PORT_WAIT_FAST_MS : PORT_WAIT_SLOW_MS) * 1000);
				continue;
			}
			reset_framing(a);
		}
		if (!a->held && pending_len) {
			size_t used = take_input(a, buf + pending_off, pending_len);
			pending_off += used;
			pending_len -= used;
			continue;
		}
		struct pollfd fds[2 + 3 * AGENT_MAX_PROCS];
		size_t nfds = 0;
		fds[nfds++] = (struct pollfd){ .fd = a->held ? -1 : a->port, .events = POLLIN };
		fds[nfds++] = (struct pollfd){ .fd = a->sigfd, .events = POLLIN };
		nfds += exec_poll_fds(a, fds + nfds, sizeof(fds) / sizeof(fds[0]) - nfds);
		int timeout = -1;
		if (a->held) {
			uint64_t t = now_ms();
			timeout = a->held_deadline_ms > t ? (int)(a->held_deadline_ms - t) : 0;
		}
		int r = poll(fds, nfds, timeout);
		if (r < 0 && errno != EINTR)
			return 1;
		if (r > 0 && fds[1].revents) {
			struct signalfd_siginfo si;
			while (read(a->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			}
		}
		exec_poll_events(a, fds + 2, nfds - 2);
		exec_reap(a);
		answer_held(a, false);
		if (r > 0 && fds[0].revents) {
			ssize_t n = read(a->port, buf, sizeof(buf));
			if (n > 0) {
				if (a->misbehave == MB_SILENT)
					continue;
				size_t used = take_input(a, buf, (size_t)n);
				pending_off = used;
				pending_len = (size_t)n - used;
			} else if (n == 0 && a->port_path == NULL && a->fd_given) {
				return 0;   /* --fd: the other end is gone */
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				/* The host side went away: wait a little and go on. */
				usleep(100 * 1000);
				if (n < 0 && errno != EAGAIN) {
					close(a->port);
					a->port = -1;
				}
			}
		}
	}
}

int main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	if (!strcmp(base, "skiff-clip"))
		return clip_main(argc, argv);

	struct agent a = { .port = -1, .next_handle = 1000 };
	bool off;
	a.misbehave = cmdline_mode(&off);
	if (off)
		return 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc) {
			a.port_path = argv[++i];
		} else if (!strcmp(argv[i], "--fd") && i + 1 < argc) {
			a.port = atoi(argv[++i]);   /* an inherited channel (tests) */
			a.fd_given = true;
			if (a.port < 0 || fcntl(a.port, F_SETFL, O_NONBLOCK)) {
				fprintf(stderr, "skiff-agent: --fd %s is not an open descriptor\n", argv[i]);
				return 2;
			}
		} else if (!strcmp(argv[i], "--misbehave") && i + 1 < argc) {
			const char *v = argv[++i];
			a.misbehave = !strcmp(v, "garbage") ? MB_GARBAGE : !strcmp(v, "huge") ? MB_HUGE :
				      !strcmp(v, "silent") ? MB_SILENT : MB_NONE;
		} else {
			fprintf(stderr, "usage: skiff-agent [--port PATH | --fd N] [--misbehave garbage|huge|silent]\n");
			return 2;
		}
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	a.sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (a.sigfd < 0) {
		perror("skiff-agent: signalfd");
		return 1;
	}
	a.clip_path = strdup(clip_default_path());
	return run(&a);
}
