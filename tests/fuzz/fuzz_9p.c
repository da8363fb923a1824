/*
 * libFuzzer target for the 9P2000.L message parser (src/virtio/9p_proto.c)
 * and the server behind it (src/virtio/9p_server.c, src/backend/fs).
 *
 * Input: one flags byte, then messages as [len:u16 LE][len bytes]...
 *   flags bit 0: serve a writable share (a fresh directory each run)
 *                instead of a read-only one (a fixed tree)
 *   flags bit 1: overwrite each message's size field with its real length
 *                (so mutations reach the message bodies)
 *   flags bits 2-7: how much room the answers get (11 bytes .. 64 KiB)
 * Every message is first decoded on its own; what decodes is encoded again
 * and must come out byte for byte the same. Then the messages go to the
 * server after a Tversion + Tattach (fid 0) prologue, and each answer must
 * be a well-formed message of the room it was given, with the request's
 * tag. The shared trees hold symlinks to "/" and "..", a FIFO and nested
 * directories; a sentinel directory next to the share must stay untouched
 * (any file the server creates outside the share aborts the run).
 *
 * Build: tests/fuzz/meson.build (-Dfuzz=true for libFuzzer; every build
 * links fuzz-replay-NAME, which runs the files it is given once each).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/fs/fs.h"
#include "virtio/9p_proto.h"
#include "virtio/9p_server.h"

#define MAX_MSGS 64

struct fuzz_state {
	char base[160];           /* private temporary directory */
	char ro[192], outside[192], rw[192];
	struct p9_server *ro_srv;
	uint8_t *resp, *reenc, *arena;
	unsigned rw_seq;
};

static struct fuzz_state *state;   /* libFuzzer's entry points take no context */

static void die(const char *what)
{
	fprintf(stderr, "fuzz_9p: %s: %s\n", what, strerror(errno));
	abort();
}

static void put_file(const char *dir, const char *name, const char *text)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) < 0)
		die(p);
	close(fd);
}

static void make_tree(const char *dir)
{
	char p[256];
	if (mkdir(dir, 0755))
		die(dir);
	put_file(dir, "a", "alpha\n");
	snprintf(p, sizeof(p), "%s/d", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/d/e", dir);
	mkdir(p, 0755);
	put_file(dir, "d/b", "bravo bravo\n");
	put_file(dir, "d/e/c", "charlie\n");
	snprintf(p, sizeof(p), "%s/root", dir);
	symlink("/", p);
	snprintf(p, sizeof(p), "%s/d/up", dir);
	symlink("../..", p);
	snprintf(p, sizeof(p), "%s/fifo", dir);
	mkfifo(p, 0644);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static struct p9_server *server(const char *dir, bool ro)
{
	char err[256];
	struct fs_share *s = fs_share_open(dir, ro, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "fuzz_9p: %s\n", err);
		abort();
	}
	struct p9_server *srv = p9_server_create(s, err, sizeof(err));
	if (!srv) {
		fprintf(stderr, "fuzz_9p: %s\n", err);
		abort();
	}
	return srv;
}

static void cleanup(void)
{
	if (state)
		rm_tree(state->base);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	state = calloc(1, sizeof(*state));
	/* tmpfs when there is one: the writable runs make and remove a tree
	 * every time. FUZZ_9P_DIR overrides. */
	const char *where = getenv("FUZZ_9P_DIR");
	struct stat st;
	if (!where)
		where = stat("/dev/shm", &st) == 0 && access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(state->base, sizeof(state->base), "%s/skiff-fuzz-9p-XXXXXX", where);
	if (!mkdtemp(state->base))
		die("mkdtemp");
	snprintf(state->ro, sizeof(state->ro), "%s/ro", state->base);
	snprintf(state->outside, sizeof(state->outside), "%s/outside", state->base);
	snprintf(state->rw, sizeof(state->rw), "%s/rw", state->base);
	make_tree(state->ro);
	if (mkdir(state->outside, 0755))
		die("outside");
	put_file(state->outside, "sentinel", "untouched\n");
	state->ro_srv = server(state->ro, true);
	atexit(cleanup);
	state->resp = malloc(P9_SERVER_MAX_MSIZE);
	state->reenc = malloc(P9_SERVER_MAX_MSIZE + 64);
	state->arena = malloc(P9_ARENA_SIZE(65536));
	if (!state->resp || !state->reenc || !state->arena)
		die("malloc");
	return 0;
}

/* Nothing may appear next to the shares or change there. */
static void check_outside(void)
{
	DIR *d = opendir(state->outside);
	if (!d)
		die("opendir outside");
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	char p[256], buf[32] = { 0 };
	snprintf(p, sizeof(p), "%s/sentinel", state->outside);
	int fd = open(p, O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) != 10 || strcmp(buf, "untouched\n") || n != 1) {
		fprintf(stderr, "fuzz_9p: something changed outside the share\n");
		abort();
	}
	close(fd);
	DIR *b = opendir(state->base);
	n = 0;
	for (struct dirent *e; b && (e = readdir(b));)
		n++;
	if (b)
		closedir(b);
	if (n > 5) {   /* ".", "..", ro, outside, rw */
		fprintf(stderr, "fuzz_9p: a new entry appeared beside the shares\n");
		abort();
	}
}

/* Decode one message; if it decodes, encoding must give it back. */
static void round_trip(const uint8_t *m, size_t n)
{
	if (n > 65536)
		return;
	struct p9_tmsg t;
	if (p9_decode(m, n, (char *)state->arena, P9_ARENA_SIZE(65536), &t))
		return;
	size_t k = p9_encode_tmsg(&t, state->reenc, P9_SERVER_MAX_MSIZE + 64);
	/* Tfsync without datasync re-encodes with it; Tauth's fid mirrors afid. */
	if (t.type == P9_TFSYNC && n == P9_HDR_SIZE + 4)
		return;
	if (k != n || memcmp(m, state->reenc, n)) {
		fprintf(stderr, "fuzz_9p: type %u does not re-encode to the same bytes (%zu vs %zu)\n",
			t.type, n, k);
		abort();
	}
}

static void check_answer(const uint8_t *req, size_t reqlen, size_t n, size_t cap)
{
	if (n == 0)
		return;
	uint32_t size;
	uint8_t type;
	uint16_t tag, rtag;
	if (n > cap || p9_peek_header(state->resp, n, &size, &type, &rtag) || size != n) {
		fprintf(stderr, "fuzz_9p: malformed answer (%zu bytes, room %zu)\n", n, cap);
		abort();
	}
	if (reqlen >= P9_HDR_SIZE) {
		tag = (uint16_t)(req[5] | req[6] << 8);
		if (tag != rtag) {
			fprintf(stderr, "fuzz_9p: answer tag %u for request tag %u\n", rtag, tag);
			abort();
		}
	}
	if (type != P9_RLERROR && reqlen >= P9_HDR_SIZE && type != req[4] + 1) {
		fprintf(stderr, "fuzz_9p: answer type %u to request type %u\n", type, req[4]);
		abort();
	}
}

static void serve(struct p9_server *srv, const uint8_t *msg, size_t len, size_t cap)
{
	size_t n = p9_server_handle(srv, msg, len, state->resp, cap);
	check_answer(msg, len, n, cap);
}

static void prologue(struct p9_server *srv)
{
	uint8_t b[128];
	struct p9_tmsg m = { .type = P9_TVERSION, .tag = 1 };
	m.u.version.msize = 65536;
	m.u.version.version = "9P2000.L";
	size_t n = p9_encode_tmsg(&m, b, sizeof(b));
	serve(srv, b, n, P9_SERVER_MAX_MSIZE);
	struct p9_tmsg a = { .type = P9_TATTACH, .tag = 2 };
	a.u.attach.fid = 0;
	a.u.attach.afid = P9_NOFID;
	a.u.attach.uname = "root";
	a.u.attach.aname = "";
	n = p9_encode_tmsg(&a, b, sizeof(b));
	serve(srv, b, n, P9_SERVER_MAX_MSIZE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!state)
		LLVMFuzzerInitialize(NULL, NULL);
	if (size < 1)
		return 0;
	uint8_t flags = data[0];
	bool writable = flags & 1, fix_size = flags & 2;
	size_t cap = 11 + (((size_t)(flags >> 2) * 65536u) / 63u);
	if (cap > 65536)
		cap = 65536;

	struct p9_server *srv = state->ro_srv;
	char dir[256];
	if (writable) {
		snprintf(dir, sizeof(dir), "%s/share", state->rw);
		mkdir(state->rw, 0755);
		make_tree(dir);
		srv = server(dir, false);
	} else {
		p9_server_reset(srv);
	}
	prologue(srv);

	static uint8_t msg[65536 + 8];
	size_t pos = 1;
	for (int k = 0; k < MAX_MSGS && pos + 2 <= size; k++) {
		size_t len = (size_t)data[pos] | (size_t)data[pos + 1] << 8;
		pos += 2;
		if (len > size - pos)
			len = size - pos;
		memcpy(msg, data + pos, len);
		pos += len;
		if (fix_size && len >= 4) {
			msg[0] = (uint8_t)len;
			msg[1] = (uint8_t)(len >> 8);
			msg[2] = (uint8_t)(len >> 16);
			msg[3] = 0;
		}
		round_trip(msg, len);
		serve(srv, msg, len, cap);
	}

	if (writable) {
		p9_server_destroy(srv);
		rm_tree(state->rw);
	}
	check_outside();
	return 0;
}
