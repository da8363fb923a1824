/*
 * `skiff cp`, `skiff shutdown`, and the dispatch of the agent commands
 * (exec is in agent_exec.c, clipboard in agent_clip.c); see agent.h.
 *
 *   skiff cp [--socket PATH] SRC DST   one of SRC and DST is VM:PATH; files
 *       of any size, in 1 MiB pieces through guest-file-read/-write, then
 *       the guest's hash of the file compared with the host's: XXH64 from
 *       skiff's agent (guest-file-hash, about a guest instruction a byte),
 *       or with another agent the guest's sha256sum; a progress bar when
 *       standard error is a terminal. A DST ending in '/' gets SRC's name.
 *   skiff shutdown [-t SECS] VM        the guest agent's guest-shutdown; if
 *       the agent cannot take it, Ctrl-Alt-Del; after SECS (default 30)
 *       with the VM still running, Ctrl-Alt-Del (when not sent yet), and at
 *       2 x SECS a hard stop (skiffd VMs).
 */
#include "cli/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/sha256.h"
#include "base/xxh64.h"
#include "cli/agent_call.h"

#define CHUNK (1u << 20)

int agent_cli_exec(int argc, char **argv);
int agent_cli_clipboard(int argc, char **argv);

/* ------------------------------------------------------------ cp */

struct progress {
	bool on;
	double t0, last;
	uint64_t total;
};

static void progress_show(struct progress *p, uint64_t done, bool final)
{
	if (!p->on)
		return;
	double t = clock_monotonic_s();
	if (!final && t - p->last < 0.2)
		return;
	p->last = t;
	double mib = (double)done / 1048576.0, rate = mib / (t - p->t0 > 0.001 ? t - p->t0 : 0.001);
	int pct = p->total ? (int)(done * 100 / p->total) : 100;
	int bar = pct * 30 / 100;
	fprintf(stderr, "\r[%.*s%*s] %3d%% %8.1f MiB %6.1f MiB/s", bar, "##############################",
		30 - bar, "", pct, mib, rate);
	if (final)
		fputc('\n', stderr);
}

static int file_op(struct target *t, json_int_t h, json_t *body, json_t **out, char *err, size_t errlen)
{
	char path[64];
	long st;
	snprintf(path, sizeof(path), "/agent/files/%lld", (long long)h);
	return target_call(t, "PUT", path, body, 120000, out, &st, err, errlen);
}

static json_int_t guest_open(struct target *t, const char *path, const char *mode, char *err, size_t errlen)
{
	json_t *res = NULL;
	long st;
	if (target_call(t, "PUT", "/agent/files", json_pack("{s:s,s:s}", "path", path, "mode", mode), 60000,
			&res, &st, err, errlen))
		return -1;
	json_int_t h = json_integer_value(json_object_get(res, "handle"));
	json_decref(res);
	return h;
}

/* The end-to-end check of a copy: the host hashes what it sends or
 * receives, the guest hashes the file it has. */
struct copy_check {
	bool xxh;              /* the agent has guest-file-hash; else sha256sum */
	struct xxh64 x;
	struct sha256 s;
};

static int check_init(struct target *t, struct copy_check *c, char *err, size_t errlen)
{
	json_t *info = NULL;
	long st;
	if (target_call(t, "GET", "/agent", NULL, 30000, &info, &st, err, errlen))
		return -1;
	if (!json_is_true(json_object_get(info, "answering"))) {
		const char *why = json_string_value(json_object_get(info, "error"));
		snprintf(err, errlen, "the guest agent does not answer%s%s", why ? ": " : "", why ? why : "");
		json_decref(info);
		return -1;
	}
	c->xxh = json_is_true(json_object_get(info, "file_hash"));
	json_decref(info);
	xxh64_init(&c->x, 0);
	sha256_init(&c->s);
	return 0;
}

static void check_update(struct copy_check *c, const void *data, size_t n)
{
	if (c->xxh)
		xxh64_update(&c->x, data, n);
	else
		sha256_update(&c->s, data, n);
}

/* Compare the host's hash with the guest's of path: 0, 1 when they differ
 * (both in mine/theirs), or -1 with err when the guest could not say. */
static int check_guest(struct target *t, struct copy_check *c, const char *path, char mine[65], char theirs[65],
		       char *err, size_t errlen)
{
	if (c->xxh) {
		xxh64_hex(&c->x, mine);
		json_t *res = NULL;
		long st;
		if (target_call(t, "PUT", "/agent/hash", json_pack("{s:s}", "path", path), 660000, &res, &st, err,
				errlen))
			return -1;
		const char *d = json_string_value(json_object_get(res, "digest"));
		const char *alg = json_string_value(json_object_get(res, "algorithm"));
		int rc = 0;
		if (!d || !alg || strcmp(alg, "xxh64") || strlen(d) != 16) {
			snprintf(err, errlen, "the guest agent's hash of %s is not an XXH64 digest", path);
			rc = -1;
		} else {
			snprintf(theirs, 65, "%s", d);
			rc = strcmp(mine, theirs) != 0;
		}
		json_decref(res);
		return rc;
	}
	sha256_hex(&c->s, mine);
	const char *argv[] = { "sha256sum", path, NULL };
	char *out = NULL;
	size_t n = 0;
	int code;
	if (guest_run(t, argv, &out, &n, &code, err, errlen))
		return -1;
	int rc = 0;
	if (code != 0 || n < 64) {
		snprintf(err, errlen, "sha256sum %s failed in the guest (exit status %d)", path, code);
		rc = -1;
	} else {
		memcpy(theirs, out, 64);
		theirs[64] = 0;
		rc = strcmp(mine, theirs) != 0;
	}
	free(out);
	return rc;
}

static int upload(struct target *t, const char *src, const char *dst)
{
	char err[1024];
	int fd = open(src, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		fprintf(stderr, "skiff cp: %s: %s\n", src, fd < 0 ? strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		return 1;
	}
	struct copy_check ck;
	json_int_t h = check_init(t, &ck, err, sizeof(err)) ? -1 : guest_open(t, dst, "w", err, sizeof(err));
	if (h < 0) {
		fprintf(stderr, "skiff cp: %s:%s: %s\n", t->vm, dst, err);
		close(fd);
		return 1;
	}
	uint8_t *buf = malloc(CHUNK);
	struct progress pr = { .on = isatty(STDERR_FILENO), .t0 = clock_monotonic_s(), .total = (uint64_t)sb.st_size };
	uint64_t done = 0;
	int rc = buf ? 0 : 1;
	while (!rc) {
		ssize_t r = read(fd, buf, CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "skiff cp: %s: %s\n", src, strerror(errno));
			rc = 1;
			break;
		}
		if (r == 0)
			break;
		check_update(&ck, buf, (size_t)r);
		json_t *res = NULL;
		if (file_op(t, h, json_pack("{s:s,s:o}", "op", "write", "data", b64_json(buf, (size_t)r)), &res,
			    err, sizeof(err))) {
			fprintf(stderr, "%sskiff cp: writing %s:%s: %s\n", pr.on ? "\n" : "", t->vm, dst, err);
			rc = 1;
			break;
		}
		if (json_integer_value(json_object_get(res, "count")) != r) {
			fprintf(stderr, "skiff cp: writing %s:%s: the guest wrote less than it was given\n", t->vm, dst);
			rc = 1;
		}
		json_decref(res);
		done += (uint64_t)r;
		progress_show(&pr, done, false);
	}
	free(buf);
	close(fd);
	if (!rc && file_op(t, h, json_pack("{s:s}", "op", "flush"), NULL, err, sizeof(err))) {
		fprintf(stderr, "skiff cp: %s:%s: %s\n", t->vm, dst, err);
		rc = 1;
	}
	if (file_op(t, h, json_pack("{s:s}", "op", "close"), NULL, err, sizeof(err)) && !rc) {
		fprintf(stderr, "skiff cp: %s:%s: %s\n", t->vm, dst, err);
		rc = 1;
	}
	if (rc)
		return rc;
	progress_show(&pr, done, true);
	char mine[65], theirs[65];
	int d = check_guest(t, &ck, dst, mine, theirs, err, sizeof(err));
	if (d < 0) {
		fprintf(stderr, "skiff cp: cannot check the copy: %s\n", err);
		return 1;
	}
	if (d) {
		fprintf(stderr, "skiff cp: %s:%s differs from %s after the copy (%s %s, expected %s)\n",
			t->vm, dst, src, ck.xxh ? "xxh64" : "sha256", theirs, mine);
		return 1;
	}
	return 0;
}

static int download(struct target *t, const char *src, const char *dst)
{
	char err[1024];
	struct copy_check ck;
	json_int_t h = check_init(t, &ck, err, sizeof(err)) ? -1 : guest_open(t, src, "r", err, sizeof(err));
	if (h < 0) {
		fprintf(stderr, "skiff cp: %s:%s: %s\n", t->vm, src, err);
		return 1;
	}
	json_t *res = NULL;
	uint64_t total = 0;
	if (!file_op(t, h, json_pack("{s:s,s:i,s:s}", "op", "seek", "offset", 0, "whence", "end"), &res, err, sizeof(err)))
		total = (uint64_t)json_integer_value(json_object_get(res, "position"));
	json_decref(res);
	file_op(t, h, json_pack("{s:s,s:i,s:s}", "op", "seek", "offset", 0, "whence", "set"), NULL, err, sizeof(err));
	char *tmp = NULL;
	if (asprintf(&tmp, "%s.skiff-cp.%d", dst, (int)getpid()) < 0)
		tmp = NULL;
	int fd = tmp ? open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644) : -1;
	if (fd < 0) {
		fprintf(stderr, "skiff cp: %s: %s\n", dst, strerror(errno));
		file_op(t, h, json_pack("{s:s}", "op", "close"), NULL, err, sizeof(err));
		free(tmp);
		return 1;
	}
	struct progress pr = { .on = isatty(STDERR_FILENO), .t0 = clock_monotonic_s(), .total = total };
	uint64_t done = 0;
	int rc = 0;
	for (;;) {
		if (file_op(t, h, json_pack("{s:s,s:i}", "op", "read", "count", CHUNK), &res, err, sizeof(err))) {
			fprintf(stderr, "%sskiff cp: reading %s:%s: %s\n", pr.on ? "\n" : "", t->vm, src, err);
			rc = 1;
			break;
		}
		uint8_t *data;
		long n = b64_decode_json(json_object_get(res, "data"), &data);
		bool eof = json_is_true(json_object_get(res, "eof"));
		json_decref(res);
		if (n < 0) {
			fprintf(stderr, "skiff cp: reading %s:%s: the agent's data is not base64\n", t->vm, src);
			rc = 1;
			break;
		}
		check_update(&ck, data, (size_t)n);
		ssize_t w = 0;
		for (long off = 0; off < n; off += w) {
			w = write(fd, data + off, (size_t)(n - off));
			if (w <= 0) {
				fprintf(stderr, "skiff cp: %s: %s\n", dst, strerror(errno));
				rc = 1;
				break;
			}
		}
		free(data);
		done += (uint64_t)n;
		progress_show(&pr, done, false);
		if (rc || eof || n == 0)
			break;
	}
	file_op(t, h, json_pack("{s:s}", "op", "close"), NULL, err, sizeof(err));
	if (close(fd) && !rc) {
		fprintf(stderr, "skiff cp: %s: %s\n", dst, strerror(errno));
		rc = 1;
	}
	char mine[65], theirs[65];
	if (!rc) {
		progress_show(&pr, done, true);
		int d = check_guest(t, &ck, src, mine, theirs, err, sizeof(err));
		if (d < 0) {
			fprintf(stderr, "skiff cp: cannot check the copy: %s\n", err);
			rc = 1;
		} else if (d) {
			fprintf(stderr, "skiff cp: the copy of %s:%s differs (%s %s, the guest has %s)\n",
				t->vm, src, ck.xxh ? "xxh64" : "sha256", mine, theirs);
			rc = 1;
		} else if (rename(tmp, dst)) {
			fprintf(stderr, "skiff cp: %s: %s\n", dst, strerror(errno));
			rc = 1;
		}
	}
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

/* VM:PATH? (a local name with a ':' is written ./name) */
static bool split_remote(const char *arg, char **vm, const char **path)
{
	const char *colon = strchr(arg, ':');
	if (!colon || colon == arg || arg[0] == '.')
		return false;
	*vm = strndup(arg, (size_t)(colon - arg));
	*path = colon + 1;
	return *vm != NULL;
}

static int cmd_cp(int argc, char **argv)
{
	const char *sock = NULL;
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 'S' }, { "help", no_argument, NULL, 'h' }, { 0 }
	};
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (o == 'S')
			sock = optarg;
		else {
			fputs("usage: skiff cp [--socket PATH] SRC DST   (one of them VM:PATH)\n",
			      o == 'h' ? stdout : stderr);
			return o == 'h' ? 0 : 64;
		}
	}
	if (argc - optind != 2) {
		fputs("usage: skiff cp [--socket PATH] SRC DST   (one of them VM:PATH)\n", stderr);
		return 64;
	}
	const char *src = argv[optind], *dst = argv[optind + 1];
	char *vm_s = NULL, *vm_d = NULL;
	const char *p_s, *p_d;
	bool rs = split_remote(src, &vm_s, &p_s), rd = split_remote(dst, &vm_d, &p_d);
	int rc = 64;
	if (rs == rd) {
		fprintf(stderr, "skiff cp: exactly one of SRC and DST must be VM:PATH\n");
	} else {
		struct target t;
		const char *gp = rs ? p_s : p_d, *lp = rs ? dst : src;
		char *full = NULL;
		/* DST ending in '/': keep SRC's name */
		const char *to = rs ? lp : gp;
		const char *from = rs ? gp : lp;
		size_t tl = strlen(to);
		if (tl && to[tl - 1] == '/') {
			char *copy = strdup(from);
			if (copy && asprintf(&full, "%s%s", to, basename(copy)) < 0)
				full = NULL;
			free(copy);
		}
		if (target_open(&t, "cp", rs ? vm_s : vm_d, sock) == 0) {
			rc = rs ? download(&t, gp, full ? full : lp) : upload(&t, lp, full ? full : gp);
			target_close(&t);
		} else {
			rc = 1;
		}
		free(full);
	}
	free(vm_s);
	free(vm_d);
	return rc;
}

/* ------------------------------------------------------------ shutdown */

/* Whether the VM still runs: skiffd says so, or its API socket answers. */
static bool running(struct target *t)
{
	char err[256];
	long st;
	json_t *res = NULL;
	if (target_call(t, "GET", "", NULL, 5000, &res, &st, err, sizeof(err)))
		return t->skiffd && st != 0 && st != 404 && st != 400 ? true : false;
	const char *state = json_string_value(json_object_get(res, "state"));
	bool r = !t->skiffd || (state && strcmp(state, "stopped") && strcmp(state, "created"));
	json_decref(res);
	return r;
}

static bool wait_end(struct target *t, double seconds)
{
	double end = clock_monotonic_s() + seconds;
	while (clock_monotonic_s() < end) {
		if (!running(t))
			return true;
		struct timespec ts = { 0, 200 * 1000000 };
		nanosleep(&ts, NULL);
	}
	return !running(t);
}

static int ctrl_alt_del(struct target *t, char *err, size_t errlen)
{
	long st;
	return target_call(t, "PUT", "/actions", json_pack("{s:s}", "action_type", "SendCtrlAltDel"), 30000,
			   NULL, &st, err, errlen);
}

static int cmd_shutdown(int argc, char **argv)
{
	const char *sock = NULL;
	double secs = 30;
	static const struct option opts[] = {
		{ "time", required_argument, NULL, 't' }, { "socket", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' }, { 0 }
	};
	static const char usage[] = "usage: skiff shutdown [-t SECS] [--socket PATH] VM\n"
				    "Shut the guest down cleanly: through its agent, else Ctrl-Alt-Del;\n"
				    "stopped hard when still running after 2 x SECS (default 30).\n";
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "+ht:", opts, NULL)) != -1) {
		if (o == 't') {
			secs = strtod(optarg, NULL);
			if (secs <= 0) {
				fprintf(stderr, "skiff shutdown: -t %s: not a number of seconds\n", optarg);
				return 64;
			}
		} else if (o == 'S') {
			sock = optarg;
		} else {
			fputs(usage, o == 'h' ? stdout : stderr);
			return o == 'h' ? 0 : 64;
		}
	}
	if (argc - optind != 1) {
		fputs(usage, stderr);
		return 64;
	}
	struct target t;
	if (target_open(&t, "shutdown", argv[optind], sock))
		return 1;
	char err[1024];
	long st;
	int rc = 0;
	bool cad = false;
	if (target_call(&t, "PUT", "/agent/shutdown", json_pack("{s:s}", "mode", "powerdown"), 30000, NULL, &st,
			err, sizeof(err))) {
		fprintf(stderr, "skiff shutdown: %s: the guest agent cannot shut it down (%s); "
				"sending Ctrl-Alt-Del\n", t.vm, err);
		if (ctrl_alt_del(&t, err, sizeof(err)))
			fprintf(stderr, "skiff shutdown: %s: Ctrl-Alt-Del: %s\n", t.vm, err);
		cad = true;
	}
	if (!wait_end(&t, secs)) {
		if (!cad) {
			fprintf(stderr, "skiff shutdown: %s: still running after %.0f s; sending Ctrl-Alt-Del\n",
				t.vm, secs);
			ctrl_alt_del(&t, err, sizeof(err));
		}
		if (!wait_end(&t, cad ? 0 : secs)) {
			if (t.skiffd && !target_call(&t, "PUT", "/actions",
						     json_pack("{s:s}", "action_type", "InstanceStop"), 30000,
						     NULL, &st, err, sizeof(err))) {
				fprintf(stderr, "skiff shutdown: %s: did not shut down; stopped it\n", t.vm);
			} else {
				fprintf(stderr, "skiff shutdown: %s: did not shut down%s%s\n", t.vm,
					t.skiffd ? ": " : " (stop its process: a skiff run VM has no stop call)",
					t.skiffd ? err : "");
				rc = 1;
			}
		}
	}
	target_close(&t);
	return rc;
}

int agent_cli_request_shutdown(const char *sock, const char *vm, char *err, size_t errlen)
{
	struct target t;
	if (target_open(&t, "stop", vm, sock))
		return -1;
	long st;
	int r = target_call(&t, "PUT", "/agent/shutdown", json_pack("{s:s}", "mode", "powerdown"), 30000, NULL,
			    &st, err, errlen);
	target_close(&t);
	return r;
}

/* ------------------------------------------------------------ dispatch */

bool agent_cli_is_command(const char *name)
{
	return !strcmp(name, "exec") || !strcmp(name, "cp") || !strcmp(name, "shutdown") ||
	       !strcmp(name, "clipboard");
}

int agent_cli_main(int argc, char **argv)
{
	opterr = 1;
	if (!strcmp(argv[0], "exec"))
		return agent_cli_exec(argc, argv);
	if (!strcmp(argv[0], "cp"))
		return cmd_cp(argc, argv);
	if (!strcmp(argv[0], "shutdown"))
		return cmd_shutdown(argc, argv);
	return agent_cli_clipboard(argc, argv);
}
