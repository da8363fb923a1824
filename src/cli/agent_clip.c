/*
 * `skiff clipboard [--socket PATH] [--sync [--interval SECS]] VM [copy|paste]`:
 * the guest agent's clipboard (guest-clipboard-get/-set, a skiff
 * extension; src/vmm/api_agent.h's /agent/clipboard).
 *
 *   copy          standard input to the guest's clipboard
 *   paste         the guest's clipboard to standard output
 *   --sync        mirror the host's clipboard and the guest's both ways
 *                 until interrupted (SIGINT, SIGTERM): whichever changes is
 *                 copied to the other, checked every SECS (default 0.5).
 *                 The first copy goes host to guest (copy, or neither) or
 *                 guest to host (paste). The host's clipboard is reached
 *                 through wl-paste/wl-copy under Wayland (WAYLAND_DISPLAY
 *                 set) or xclip under X11 (DISPLAY set), found on PATH.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/agent_call.h"

#define CLIP_MAX (1u << 20)

/* ------------------------------------------------------------ the guest's */

static int guest_get(struct target *t, uint8_t **data, size_t *len, json_int_t *stamp, char *err, size_t errlen)
{
	json_t *res = NULL;
	long st;
	if (target_call(t, "GET", "/agent/clipboard", NULL, 30000, &res, &st, err, errlen))
		return -1;
	long n = b64_decode_json(json_object_get(res, "data"), data);
	if (stamp)
		*stamp = json_integer_value(json_object_get(res, "stamp"));
	json_decref(res);
	if (n < 0) {
		snprintf(err, errlen, "the guest's clipboard data is not base64");
		return -1;
	}
	*len = (size_t)n;
	return 0;
}

static int guest_set(struct target *t, const uint8_t *data, size_t len, char *err, size_t errlen)
{
	long st;
	return target_call(t, "PUT", "/agent/clipboard", json_pack("{s:o}", "data", b64_json(data, len)), 30000,
			   NULL, &st, err, errlen);
}

/* Read f to its end into a new buffer (at most CLIP_MAX bytes): 0, 1 when
 * there is more, -1 when it cannot be read. */
static int read_all(FILE *f, uint8_t **data, size_t *len)
{
	uint8_t *buf = malloc(CLIP_MAX + 1);
	size_t n = 0, r;
	if (!buf)
		return -1;
	while (n <= CLIP_MAX && (r = fread(buf + n, 1, CLIP_MAX + 1 - n, f)) > 0)
		n += r;
	if (ferror(f) || n > CLIP_MAX) {
		free(buf);
		return n > CLIP_MAX ? 1 : -1;
	}
	*data = buf;
	*len = n;
	return 0;
}

/* ------------------------------------------------------------ the host's */

struct host_clip {
	const char *get, *set;   /* shell commands */
	const char *name;
};

/* Whether `prog` is an executable file in a PATH directory. */
static bool on_path(const char *prog)
{
	const char *path = getenv("PATH");
	if (!path)
		return false;
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");
		char full[4096];
		if (n && snprintf(full, sizeof(full), "%.*s/%s", (int)n, p, prog) < (int)sizeof(full) &&
		    access(full, X_OK) == 0)
			return true;
		p += n + (p[n] == ':');
	}
	return false;
}

static bool host_clip_find(struct host_clip *h)
{
	const char *wl = getenv("WAYLAND_DISPLAY"), *x = getenv("DISPLAY");
	if (wl && *wl && on_path("wl-paste") && on_path("wl-copy")) {
		*h = (struct host_clip){ "wl-paste --no-newline 2>/dev/null", "wl-copy 2>/dev/null", "wl-copy" };
		return true;
	}
	if (x && *x && on_path("xclip")) {
		*h = (struct host_clip){ "xclip -o -selection clipboard 2>/dev/null",
					 "xclip -i -selection clipboard 2>/dev/null", "xclip" };
		return true;
	}
	return false;
}

/* The host's clipboard; an empty or unreadable one gives 1 (nothing to
 * mirror: wl-paste fails when the clipboard is empty). */
static int host_get(const struct host_clip *h, uint8_t **data, size_t *len)
{
	FILE *f = popen(h->get, "r");
	if (!f)
		return -1;
	int r = read_all(f, data, len);
	int st = pclose(f);
	if (r == 0 && (!WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
		free(*data);
		*data = NULL;
		return 1;
	}
	return r;
}

static int host_set(const struct host_clip *h, const uint8_t *data, size_t len)
{
	FILE *f = popen(h->set, "w");
	if (!f)
		return -1;
	bool ok = fwrite(data, 1, len, f) == len;
	int st = pclose(f);
	return ok && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------ --sync */

static volatile sig_atomic_t g_stop;   /* the signal handler's only way out */

static void on_stop(int sig)
{
	g_stop = sig;
}

static bool same(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	return an == bn && (!an || !memcmp(a, b, an));
}

static int sync_loop(struct target *t, const struct host_clip *h, bool guest_first, double interval)
{
	struct sigaction sa = { .sa_handler = on_stop };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	char err[1024];
	uint8_t *last = NULL;   /* what both sides were last made to hold */
	size_t last_len = 0;
	bool have_last = false, first = true;
	json_int_t seen_stamp = -1;
	int rc = 0;
	fprintf(stderr, "skiff clipboard: mirroring %s's clipboard and the host's (%s) until interrupted\n",
		t->vm, h->name);
	while (!g_stop) {
		uint8_t *g = NULL, *hd = NULL;
		size_t gl = 0, hl = 0;
		json_int_t stamp;
		if (guest_get(t, &g, &gl, &stamp, err, sizeof(err))) {
			fprintf(stderr, "skiff clipboard: %s\n", err);
			rc = 1;
			break;
		}
		int hr = host_get(h, &hd, &hl);
		bool guest_new = stamp != seen_stamp && !(have_last && same(g, gl, last, last_len));
		bool host_new = hr == 0 && !(have_last && same(hd, hl, last, last_len));
		seen_stamp = stamp;
		if (first) {   /* the first copy goes the way asked, if that side has something */
			guest_new = guest_new && (guest_first || !host_new) && gl;
			host_new = host_new && !guest_new && hl;
			first = false;
		}
		if (guest_new) {
			if (host_set(h, g, gl)) {
				fprintf(stderr, "skiff clipboard: %s failed\n", h->name);
				rc = 1;
			}
			free(last);
			last = g, last_len = gl, have_last = true;
			g = NULL;
		} else if (host_new) {
			if (guest_set(t, hd, hl, err, sizeof(err))) {
				fprintf(stderr, "skiff clipboard: %s\n", err);
				rc = 1;
			}
			free(last);
			last = hd, last_len = hl, have_last = true;
			hd = NULL;
		}
		free(g);
		free(hd);
		if (rc)
			break;
		struct timespec ts = { (time_t)interval, (long)((interval - (double)(time_t)interval) * 1e9) };
		nanosleep(&ts, NULL);
	}
	free(last);
	return rc;
}

/* ------------------------------------------------------------ the command */

int agent_cli_clipboard(int argc, char **argv)
{
	const char *sock = NULL;
	bool sync = false;
	double interval = 0.5;
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 'S' }, { "sync", no_argument, NULL, 's' },
		{ "interval", required_argument, NULL, 'i' }, { "help", no_argument, NULL, 'h' }, { 0 }
	};
	static const char usage[] =
		"usage: skiff clipboard [--socket PATH] VM copy|paste\n"
		"       skiff clipboard [--socket PATH] --sync [--interval SECS] VM [copy|paste]\n"
		"  copy    standard input to the guest's clipboard\n"
		"  paste   the guest's clipboard to standard output\n"
		"  --sync  mirror the host's clipboard (wl-paste/wl-copy, or xclip) and the\n"
		"          guest's both ways until interrupted; copy/paste: the first way\n";
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (o == 'S') {
			sock = optarg;
		} else if (o == 's') {
			sync = true;
		} else if (o == 'i') {
			char *end;
			interval = strtod(optarg, &end);
			if (*end || !(interval >= 0.05 && interval <= 3600)) {
				fprintf(stderr, "skiff clipboard: --interval %s: seconds from 0.05 to 3600\n", optarg);
				return 64;
			}
		} else {
			fputs(usage, o == 'h' ? stdout : stderr);
			return o == 'h' ? 0 : 64;
		}
	}
	int left = argc - optind;
	const char *what = left == 2 ? argv[optind + 1] : NULL;
	if (!(left == 2 || (sync && left == 1)) || (what && strcmp(what, "copy") && strcmp(what, "paste"))) {
		fputs(usage, stderr);
		return 64;
	}
	struct host_clip h;
	if (sync && !host_clip_find(&h)) {
		fprintf(stderr, "skiff clipboard: --sync needs the host's clipboard tools: wl-paste and wl-copy "
				"(Wayland, with WAYLAND_DISPLAY set) or xclip (X11, with DISPLAY set); none was "
				"found on PATH\n");
		return 1;
	}
	struct target t;
	if (target_open(&t, "clipboard", argv[optind], sock))
		return 1;
	char err[1024];
	int rc = 0;
	uint8_t *data = NULL;
	size_t n = 0;
	if (sync) {
		rc = sync_loop(&t, &h, what && !strcmp(what, "paste"), interval);
	} else if (!strcmp(what, "copy")) {
		int r = read_all(stdin, &data, &n);
		if (r) {
			if (r > 0)
				fprintf(stderr, "skiff clipboard: the clipboard holds at most %u bytes\n", CLIP_MAX);
			else
				fprintf(stderr, "skiff clipboard: cannot read standard input\n");
			rc = 1;
		} else if (guest_set(&t, data, n, err, sizeof(err))) {
			fprintf(stderr, "skiff clipboard: %s\n", err);
			rc = 1;
		}
	} else {
		if (guest_get(&t, &data, &n, NULL, err, sizeof(err))) {
			fprintf(stderr, "skiff clipboard: %s\n", err);
			rc = 1;
		} else if (n && fwrite(data, 1, n, stdout) != n) {
			rc = 1;
		}
	}
	free(data);
	target_close(&t);
	return rc;
}
