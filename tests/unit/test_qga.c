/*
 * The host's QGA client (src/api/qga.c, qga_reader.c) against skiff's own
 * guest agent (guest/agent/, built for the host here) over a socketpair:
 * resynchronisation, the commands `skiff exec` and `skiff cp` use, agent
 * errors, and agents that misbehave (garbage, an endless reply, silence),
 * which must cost a call no more than its time-out and its size limit.
 * Also the reader alone on hand-made byte streams.
 *
 * argv[1]: the host build of skiff-agent.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/qga.h"
#include "api/qga_reader.h"
#include "base/base64.h"
#include "base/clock.h"
#include "base/xxh64.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c); failures++; } } while (0)

/* ---------------------------------------------------------------- a channel */

struct chan {
	int fd;
	pid_t agent;
	struct qga_client *c;
	pthread_t reader;
};

static int chan_send(void *ctx, const void *buf, size_t n, uint64_t deadline)
{
	struct chan *ch = ctx;
	const char *p = buf;
	while (n) {
		ssize_t w = send(ch->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		uint64_t now = clock_monotonic_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd pf = { .fd = ch->fd, .events = POLLOUT };
		poll(&pf, 1, (int)((deadline - now) / 1000000 + 1));
	}
	return 0;
}

static void *chan_read(void *arg)
{
	struct chan *ch = arg;
	uint8_t buf[65536];
	ssize_t r;
	while ((r = read(ch->fd, buf, sizeof(buf))) > 0)
		qga_client_feed(ch->c, buf, (size_t)r);
	return NULL;
}

static void chan_open(struct chan *ch, const char *agent, const char *mode)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		perror("socketpair");
		exit(1);
	}
	ch->agent = fork();
	if (ch->agent == 0) {
		char fdarg[16];
		int fd = dup(sv[1]);   /* without close-on-exec */
		snprintf(fdarg, sizeof(fdarg), "%d", fd);
		if (mode)
			execl(agent, agent, "--fd", fdarg, "--misbehave", mode, (char *)NULL);
		else
			execl(agent, agent, "--fd", fdarg, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	ch->fd = sv[0];
	struct qga_transport t = { .send = chan_send, .ctx = ch };
	ch->c = qga_client_new(&t);
	pthread_create(&ch->reader, NULL, chan_read, ch);
}

static void chan_close(struct chan *ch)
{
	shutdown(ch->fd, SHUT_RDWR);
	pthread_join(ch->reader, NULL);
	close(ch->fd);
	kill(ch->agent, SIGKILL);
	waitpid(ch->agent, NULL, 0);
	qga_client_free(ch->c);
}

static char err[1024], cls[64];
/* This run's own scratch directory: several runs of this test (two builds,
 * other checkouts) may share the machine's /tmp. */
static char scratch[64];

static const char *scratch_path(const char *name)
{
	static char p[2][128];
	static int k;
	k ^= 1;
	snprintf(p[k], sizeof(p[k]), "%s/%s", scratch, name);
	return p[k];
}

static json_t *call(struct chan *ch, const char *cmd, json_t *args, enum qga_status want)
{
	json_t *ret = NULL;
	/* 30 s: only a hang; the time-outs themselves are checked with small ones */
	enum qga_status st = qga_call(ch->c, cmd, args, 8u << 20, 30000, &ret, err, sizeof(err), cls, sizeof(cls));
	json_decref(args);
	if (st != want)
		fprintf(stderr, "  %s: status %d (wanted %d): %s\n", cmd, st, want, err);
	CHECK(st == want);
	return ret;
}

/* ---------------------------------------------------------------- tests */

static void test_basic(const char *agent)
{
	struct chan ch;
	chan_open(&ch, agent, NULL);
	json_t *r = call(&ch, "guest-ping", NULL, QGA_OK);
	CHECK(json_is_object(r) && json_object_size(r) == 0);
	json_decref(r);

	r = call(&ch, "guest-info", NULL, QGA_OK);
	json_t *cmds = json_object_get(r, "supported_commands");
	bool has_stream = false;
	size_t i;
	json_t *v;
	json_array_foreach(cmds, i, v)
		has_stream |= !strcmp(json_string_value(json_object_get(v, "name")) ?: "", "guest-exec-stream");
	CHECK(json_is_string(json_object_get(r, "version")) && has_stream);
	json_decref(r);

	r = call(&ch, "no-such-command", NULL, QGA_E_AGENT);
	CHECK(!strcmp(cls, "CommandNotFound"));
	CHECK(strstr(err, "no-such-command") != NULL);
	json_decref(r);
	/* An agent error leaves the channel in step: the next call works. */
	r = call(&ch, "guest-get-time", NULL, QGA_OK);
	CHECK(json_is_integer(r) && json_integer_value(r) > 0);
	json_decref(r);

	/* guest-exec with input and captured output; exit code 3 */
	r = call(&ch, "guest-exec", json_pack("{s:s,s:[s,s],s:s,s:b}", "path", "sh", "arg", "-c",
					      "tr a-z A-Z; echo oops >&2; exit 3",
					      "input-data", "aGVsbG8K" /* hello\n */, "capture-output", 1), QGA_OK);
	json_int_t pid = json_integer_value(json_object_get(r, "pid"));
	CHECK(pid > 0);
	json_decref(r);
	json_t *st = NULL;
	/* Up to 30 s, as exec_output: only a hang is caught (the program
	 * starts as a process of its own, which a loaded host may delay). */
	for (int k = 0; k < 3000; k++) {
		st = call(&ch, "guest-exec-status", json_pack("{s:I}", "pid", pid), QGA_OK);
		if (json_is_true(json_object_get(st, "exited")))
			break;
		json_decref(st);
		st = NULL;
		usleep(10000);
	}
	CHECK(st != NULL);
	CHECK(json_integer_value(json_object_get(st, "exitcode")) == 3);
	CHECK(!strcmp(json_string_value(json_object_get(st, "out-data")) ?: "", "SEVMTE8K"));   /* HELLO\n */
	CHECK(!strcmp(json_string_value(json_object_get(st, "err-data")) ?: "", "b29wcwo="));   /* oops\n */
	json_decref(st);
	/* reported once, then forgotten */
	json_decref(call(&ch, "guest-exec-status", json_pack("{s:I}", "pid", pid), QGA_E_AGENT));

	/* a program that does not exist */
	json_decref(call(&ch, "guest-exec", json_pack("{s:s}", "path", "/no/such/program"), QGA_E_AGENT));
	if (!strstr(err, "No such file"))
		fprintf(stderr, "  error was: %s\n", err);
	CHECK(strstr(err, "No such file") != NULL);

	/* files: write, seek, read back */
	const char *path = scratch_path("qga.bin");
	r = call(&ch, "guest-file-open", json_pack("{s:s,s:s}", "path", path, "mode", "w+"), QGA_OK);
	json_int_t h = json_integer_value(r);
	json_decref(r);
	r = call(&ch, "guest-file-write", json_pack("{s:I,s:s}", "handle", h, "buf-b64", "AAEC/w=="), QGA_OK);
	CHECK(json_integer_value(json_object_get(r, "count")) == 4);
	json_decref(r);
	r = call(&ch, "guest-file-seek", json_pack("{s:I,s:i,s:s}", "handle", h, "offset", 1, "whence", "set"), QGA_OK);
	CHECK(json_integer_value(json_object_get(r, "position")) == 1);
	json_decref(r);
	r = call(&ch, "guest-file-read", json_pack("{s:I,s:i}", "handle", h, "count", 100), QGA_OK);
	CHECK(json_integer_value(json_object_get(r, "count")) == 3);
	CHECK(!strcmp(json_string_value(json_object_get(r, "buf-b64")) ?: "", "AQL/"));
	CHECK(json_is_true(json_object_get(r, "eof")));
	json_decref(r);
	json_decref(call(&ch, "guest-file-flush", json_pack("{s:I}", "handle", h), QGA_OK));
	json_decref(call(&ch, "guest-file-close", json_pack("{s:I}", "handle", h), QGA_OK));
	json_decref(call(&ch, "guest-file-close", json_pack("{s:I}", "handle", h), QGA_E_AGENT));
	unlink(path);
	json_decref(call(&ch, "guest-file-open", json_pack("{s:s}", "path", "/no/such/dir/f"), QGA_E_AGENT));

	/* Stale bytes in the channel (half a request) are cleared by the
	 * client's resynchronisation after it is told the channel reset. */
	chan_send(&ch, "{\"execute\": \"guest-ping\", \"argu", 32, clock_monotonic_ns() + 1000000000ull);
	qga_client_reset(ch.c);
	json_decref(call(&ch, "guest-ping", NULL, QGA_OK));
	chan_close(&ch);
}

/* Run a program to its end with guest-exec; its decoded stdout (NUL-ended)
 * and exit code. */
static char *exec_output(struct chan *ch, json_t *exec_args, int *code)
{
	json_t *r = call(ch, "guest-exec", exec_args, QGA_OK);
	json_int_t pid = json_integer_value(json_object_get(r, "pid"));
	json_decref(r);
	for (int k = 0; k < 3000; k++) {
		json_t *st = call(ch, "guest-exec-status", json_pack("{s:I}", "pid", pid), QGA_OK);
		if (!st)
			return NULL;
		if (json_is_true(json_object_get(st, "exited"))) {
			const char *b64 = json_string_value(json_object_get(st, "out-data")) ?: "";
			char *out = malloc(strlen(b64) + 1);
			long n = base64_decode(b64, strlen(b64), (uint8_t *)out);
			out[n < 0 ? 0 : n] = 0;
			*code = (int)json_integer_value(json_object_get(st, "exitcode"));
			json_decref(st);
			return out;
		}
		json_decref(st);
		usleep(10000);
	}
	return NULL;
}

/* The agent's framing and string parsing skip plain runs eight bytes at a
 * time: escapes, quotes, UTF-8 and 0x7F at every position around a word
 * boundary must come through as they went in (one long argument holds
 * each of them after runs of 0 to 19 plain bytes). */
static void test_strings(const char *agent)
{
	struct chan ch;
	chan_open(&ch, agent, NULL);
	static const char *const specials[] = { "\"", "\\", "\n", "\t", "\x7f", "\xc3\xa9", "}", "{[", "\\u" };
	char arg[8192];
	size_t len = 0;
	for (size_t k = 0; k < 20; k++)
		for (size_t s = 0; s < sizeof(specials) / sizeof(specials[0]); s++)
			len += (size_t)snprintf(arg + len, sizeof(arg) - len, "%.*s%s", (int)k,
						"abcdefghijklmnopqrstuvwxyz", specials[s]);
	int code = -1;
	char *out = exec_output(&ch, json_pack("{s:s,s:[s,s],s:b}", "path", "printf", "arg", "%s", arg,
					       "capture-output", 1), &code);
	if (!out || strcmp(out, arg))
		fprintf(stderr, "  printf %%s gave back %zu of %zu bytes, or other ones\n", out ? strlen(out) : 0, len);
	CHECK(out && !strcmp(out, arg) && code == 0);
	free(out);
	chan_close(&ch);
}

/* guest-file-hash (skiff extension): XXH64 of a file as the host computes
 * it, and an error for a path that does not exist. */
static void test_file_hash(const char *agent)
{
	struct chan ch;
	chan_open(&ch, agent, NULL);
	static uint8_t data[300000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + (i >> 9));
	const char *path = scratch_path("hash.bin");
	json_t *r = call(&ch, "guest-file-open", json_pack("{s:s,s:s}", "path", path, "mode", "w"), QGA_OK);
	json_int_t h = json_integer_value(r);
	json_decref(r);
	char *b64 = malloc(base64_encoded_len(sizeof(data)) + 1);
	base64_encode(data, sizeof(data), b64);
	b64[base64_encoded_len(sizeof(data))] = 0;
	json_decref(call(&ch, "guest-file-write", json_pack("{s:I,s:s}", "handle", h, "buf-b64", b64), QGA_OK));
	free(b64);
	json_decref(call(&ch, "guest-file-close", json_pack("{s:I}", "handle", h), QGA_OK));
	struct xxh64 x;
	xxh64_init(&x, 0);
	xxh64_update(&x, data, sizeof(data));
	char want[17];
	xxh64_hex(&x, want);
	r = call(&ch, "guest-file-hash", json_pack("{s:s}", "path", path), QGA_OK);
	CHECK(!strcmp(json_string_value(json_object_get(r, "algorithm")) ?: "", "xxh64"));
	CHECK(!strcmp(json_string_value(json_object_get(r, "digest")) ?: "", want));
	CHECK(json_integer_value(json_object_get(r, "size")) == (json_int_t)sizeof(data));
	json_decref(r);
	unlink(path);
	json_decref(call(&ch, "guest-file-hash", json_pack("{s:s}", "path", path), QGA_E_AGENT));
	CHECK(strstr(err, "No such file") != NULL);
	chan_close(&ch);
}

/* A streamed program: input in, 3 MB out (more than the agent buffers, so
 * the program waits for the host), exit code. */
static void test_stream(const char *agent)
{
	struct chan ch;
	chan_open(&ch, agent, NULL);
	json_t *r = call(&ch, "guest-exec-stream", json_pack("{s:s,s:[s,s]}", "path", "sh", "arg", "-c",
							     "head -c 3000000 /dev/zero; cat; exit 7"), QGA_OK);
	json_int_t pid = json_integer_value(json_object_get(r, "pid"));
	json_decref(r);
	size_t out = 0;
	bool zeros_ok = true;
	bool exited = false, sent = false;
	int code = -1;
	for (int k = 0; k < 2000 && !exited; k++) {
		json_t *args = json_pack("{s:I,s:i}", "pid", pid, "wait-ms", 100);
		if (!sent) {
			json_object_set_new(args, "input-data", json_string("ZW5kCg==")); /* end\n */
			json_object_set_new(args, "input-close", json_true());
		}
		r = call(&ch, "guest-exec-io", args, QGA_OK);
		if (!r)
			break;
		sent |= json_integer_value(json_object_get(r, "input-count")) == 4;
		const char *b64 = json_string_value(json_object_get(r, "out-data")) ?: "";
		uint8_t *piece = malloc(strlen(b64) / 4 * 3 + 3);
		long n = piece ? base64_decode(b64, strlen(b64), piece) : -1;
		CHECK(n >= 0);
		for (long i = 0; i < n && i < 3000000 - (long)out; i++)   /* the zeros first */
			zeros_ok &= piece[i] == 0;
		out += n > 0 ? (size_t)n : 0;
		free(piece);
		exited = json_is_true(json_object_get(r, "exited"));
		if (exited)
			code = (int)json_integer_value(json_object_get(r, "exitcode"));
		json_decref(r);
	}
	CHECK(exited && code == 7);
	/* 3000000 zeros and "end\n", exactly (the count used to be estimated
	 * from the base64 lengths, with a slack of padding for at most 100
	 * replies: a loaded machine made more of them and failed the check) */
	CHECK(out == 3000004 && zeros_ok);
	chan_close(&ch);
}

/* A call that times out leaves its reply on the way; the next call must
 * not take that late reply for its own (it resynchronises first). */
static void test_late_reply(const char *agent)
{
	struct chan ch;
	chan_open(&ch, agent, NULL);
	json_t *r = call(&ch, "guest-exec-stream", json_pack("{s:s,s:[s]}", "path", "sleep", "arg", "3"), QGA_OK);
	json_int_t pid = json_integer_value(json_object_get(r, "pid"));
	json_decref(r);
	json_t *args = json_pack("{s:I,s:i}", "pid", pid, "wait-ms", 1500);
	enum qga_status st = qga_call(ch.c, "guest-exec-io", args, QGA_REPLY_SMALL, 300, &r,
				      err, sizeof(err), NULL, 0);
	json_decref(args);
	CHECK(st == QGA_E_TIMEOUT);
	r = call(&ch, "guest-get-time", NULL, QGA_OK);
	CHECK(json_is_integer(r));
	json_decref(r);
	json_decref(call(&ch, "guest-exec-kill", json_pack("{s:I}", "pid", pid), QGA_OK));
	chan_close(&ch);
}

/* Misbehaving agents: each call fails with a time-out, with a message, and
 * the client stays usable. The time-out is measured from below (the client
 * waited it out); above, only a hang is caught: a loaded machine (this
 * test ran beside other builds' tests) may take seconds to wake the
 * caller, so no tighter bound holds. */
static void test_misbehaving(const char *agent, const char *mode, enum qga_status want)
{
	struct chan ch;
	chan_open(&ch, agent, mode);
	for (int k = 0; k < 2; k++) {
		uint64_t t0 = clock_monotonic_ns();
		json_t *ret = NULL;
		enum qga_status st = qga_call(ch.c, "guest-ping", NULL, QGA_REPLY_SMALL, 700, &ret,
					      err, sizeof(err), NULL, 0);
		uint64_t ms = (clock_monotonic_ns() - t0) / 1000000;
		if (st != want)
			fprintf(stderr, "  --misbehave %s: status %d (%s)\n", mode, st, err);
		CHECK(st == want && ret == NULL && *err);
		CHECK(ms >= 700 && ms < 60000);
	}
	chan_close(&ch);
}

/* qga_client_close() from another thread ends a call that waits for its
 * answer (here from an agent that never answers: the transport swallows
 * what is sent), and later calls fail at once. The close comes only once
 * the call has sent, so it is the wait that it ends. */
struct mute {
	pthread_mutex_t lock;
	pthread_cond_t sent_cond;
	bool sent;
	struct qga_client *c;
	enum qga_status st;
	char err[256];
};

static int mute_send(void *ctx, const void *buf, size_t n, uint64_t deadline)
{
	struct mute *m = ctx;
	pthread_mutex_lock(&m->lock);
	m->sent = true;
	pthread_cond_broadcast(&m->sent_cond);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static void *mute_call(void *arg)
{
	struct mute *m = arg;
	json_t *ret = NULL;
	m->st = qga_call(m->c, "guest-ping", NULL, QGA_REPLY_SMALL, 120000, &ret, m->err, sizeof(m->err), NULL, 0);
	json_decref(ret);
	return NULL;
}

static void test_close(void)
{
	struct mute m = { .lock = PTHREAD_MUTEX_INITIALIZER, .sent_cond = PTHREAD_COND_INITIALIZER };
	struct qga_transport t = { .send = mute_send, .ctx = &m };
	m.c = qga_client_new(&t);
	pthread_t th;
	pthread_create(&th, NULL, mute_call, &m);
	pthread_mutex_lock(&m.lock);
	while (!m.sent)
		pthread_cond_wait(&m.sent_cond, &m.lock);
	pthread_mutex_unlock(&m.lock);
	qga_client_close(m.c);
	pthread_join(th, NULL);
	if (m.st != QGA_E_CHANNEL)
		fprintf(stderr, "  close: status %d: %s\n", m.st, m.err);
	CHECK(m.st == QGA_E_CHANNEL && strstr(m.err, "closed while waiting") != NULL);
	json_t *ret = NULL;
	enum qga_status st = qga_call(m.c, "guest-ping", NULL, QGA_REPLY_SMALL, 120000, &ret, err, sizeof(err), NULL, 0);
	CHECK(st == QGA_E_CHANNEL && ret == NULL && strstr(err, "closed") != NULL);
	qga_client_free(m.c);
}

/* ---------------------------------------------------------------- reader alone */

struct seen {
	int n, kinds[16];
	json_int_t last_int;
	bool last_delim;
};

static void record(void *ctx, const struct qga_reply *r)
{
	struct seen *s = ctx;
	if (s->n < 16)
		s->kinds[s->n] = r->kind;
	s->n++;
	s->last_delim = r->after_delimiter;
	if (r->kind == QGA_REPLY_RETURN && json_is_integer(r->value))
		s->last_int = json_integer_value(r->value);
}

static void test_reader(void)
{
	struct qga_reader rd;
	struct seen s = { 0 };
	qga_reader_init(&rd, 64, record, &s);
	const char *in = "junk {\"return\": 5}\n{\"error\": {\"class\": \"X\", \"desc\": \"y\"}}"
			 "{\"return\": \"a}b\\\"}\"}{\"retur";
	/* byte by byte: framing must not depend on how the bytes arrive */
	for (const char *p = in; *p; p++)
		qga_reader_feed(&rd, (const uint8_t *)p, 1);
	CHECK(s.n == 3 && s.kinds[0] == QGA_REPLY_RETURN && s.kinds[1] == QGA_REPLY_ERROR &&
	      s.kinds[2] == QGA_REPLY_RETURN);
	/* 0xFF drops the partial reply and marks the next one */
	qga_reader_feed(&rd, (const uint8_t *)"\xff{\"return\": 42}", 16);
	CHECK(s.n == 4 && s.kinds[3] == QGA_REPLY_RETURN && s.last_int == 42 && s.last_delim);
	/* over the limit: skipped, reported, and the next reply is fine */
	char big[300];
	snprintf(big, sizeof(big), "{\"return\": \"%0200d\"}{\"return\": 1}", 0);
	qga_reader_feed(&rd, (const uint8_t *)big, strlen(big));
	CHECK(s.n == 6 && s.kinds[4] == QGA_REPLY_TOO_LARGE && s.kinds[5] == QGA_REPLY_RETURN);
	/* not replies */
	const char *junk = "{\"x\": 1}{\"return\": 1, \"error\": {}}{bad}";
	qga_reader_feed(&rd, (const uint8_t *)junk, strlen(junk));
	CHECK(s.n == 9 && s.kinds[6] == QGA_REPLY_GARBAGE && s.kinds[7] == QGA_REPLY_GARBAGE &&
	      s.kinds[8] == QGA_REPLY_GARBAGE);
	/* too deep */
	char deep[200];
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	deep[0] = '{';
	deep[199] = '}';
	qga_reader_feed(&rd, (const uint8_t *)deep, sizeof(deep));
	CHECK(s.n == 10 && s.kinds[9] == QGA_REPLY_TOO_LARGE);
	qga_reader_free(&rd);

	/* An agent's message keeps its UTF-8 (QEMU's agent quotes with
	 * U+201C/U+201D), loses trailing white space, has other control
	 * characters replaced, and a long one is cut between characters. */
	struct qga_reply rep;
	const char *quoted = "{\"error\": {\"class\": \"GenericError\", \"desc\": "
			     "\"Failed \u201c/x\u201d:\\tgone \\n\"}}";
	qga_reply_decode((const uint8_t *)quoted, strlen(quoted), &rep);
	CHECK(rep.kind == QGA_REPLY_ERROR && !strcmp(rep.err_desc, "Failed \xe2\x80\x9c/x\xe2\x80\x9d:?gone"));
	char longdesc[2000];
	int k = snprintf(longdesc, sizeof(longdesc), "{\"error\": {\"class\": \"X\", \"desc\": \"ab");
	for (int i = 0; i < 400; i++)
		k += snprintf(longdesc + k, sizeof(longdesc) - (size_t)k, "\xc3\xa9");
	snprintf(longdesc + k, sizeof(longdesc) - (size_t)k, "\"}}");
	qga_reply_decode((const uint8_t *)longdesc, strlen(longdesc), &rep);
	size_t dl = strlen(rep.err_desc);
	CHECK(rep.kind == QGA_REPLY_ERROR && dl > 400 && dl % 2 == 0);   /* "ab" and whole two-byte characters */
	json_t *js = json_string(rep.err_desc);   /* valid UTF-8 */
	CHECK(js != NULL);
	json_decref(js);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: test_qga SKIFF-AGENT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(scratch, sizeof(scratch), "/tmp/skiff-test-qga-XXXXXX");
	if (!mkdtemp(scratch)) {
		perror("mkdtemp");
		return 2;
	}
	test_reader();
	test_close();
	test_basic(argv[1]);
	test_strings(argv[1]);
	test_file_hash(argv[1]);
	test_stream(argv[1]);
	test_late_reply(argv[1]);
	test_misbehaving(argv[1], "silent", QGA_E_TIMEOUT);
	test_misbehaving(argv[1], "garbage", QGA_E_TIMEOUT);
	test_misbehaving(argv[1], "huge", QGA_E_TIMEOUT);
	rmdir(scratch);
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("qga: all checks passed\n");
	return 0;
}
