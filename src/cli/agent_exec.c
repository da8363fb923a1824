/*
 * `skiff exec [-t] [-e VAR=VALUE]... [--timeout SECS] VM -- CMD [ARGS...]`:
 * run a command in the guest through its agent, its output streamed here,
 * this terminal's input passed on, and its exit status as ours (128 +
 * signal when a signal ended it, 124 when --timeout killed it).
 *
 * With skiff's agent (guest-exec-stream) output arrives as it is written
 * and input as it is typed; -t gives the command a terminal (this one is
 * put in raw mode, its size passed on and kept up to date). With another
 * agent (Debian's qemu-guest-agent) the stock guest-exec is used: standard
 * input, when it is not a terminal, is read whole first, and the output
 * comes when the command has ended. Ctrl-C (SIGINT) and SIGTERM are passed
 * to the guest's command.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/fd_io.h"
#include "base/terminal.h"
#include "cli/agent.h"
#include "cli/agent_call.h"

/* Input is sent in pieces small enough for skiffd's proxy. */
#define IN_CHUNK (256u * 1024)
#define STOCK_INPUT_MAX (1u << 20)
#define IO_WAIT_MS 200

struct exec_state {
	volatile sig_atomic_t sig, winch;
};
/* Signal handlers can reach no other state: this is the one global. */
static struct exec_state *g_exec;

static void on_signal(int s)
{
	if (s == SIGWINCH)
		g_exec->winch = 1;
	else
		g_exec->sig = s;
}

/* Write the base64 member `name` of res to fd. */
static bool pass_output(json_t *res, const char *name, int fd)
{
	json_t *v = json_object_get(res, name);
	if (!v)
		return true;
	uint8_t *data;
	long n = b64_decode_json(v, &data);
	if (n < 0)
		return false;
	fd_write_all(fd, data, (size_t)n);
	free(data);
	return true;
}

static int exit_status(json_t *res)
{
	json_t *code = json_object_get(res, "exitcode"), *sig = json_object_get(res, "signal");
	if (json_is_integer(code))
		return (int)(json_integer_value(code) & 255);
	if (json_is_integer(sig))
		return 128 + (int)(json_integer_value(sig) & 127);
	return 255;
}

static void window(unsigned *rows, unsigned *cols)
{
	struct winsize ws;
	*rows = *cols = 0;
	if (!ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) || !ioctl(STDIN_FILENO, TIOCGWINSZ, &ws)) {
		*rows = ws.ws_row;
		*cols = ws.ws_col;
	}
}

static int run_stream(struct target *t, json_t *start, bool tty, double timeout, struct exec_state *es)
{
	char err[1024];
	long st;
	json_t *res = NULL;
	unsigned rows = 0, cols = 0;
	if (tty) {
		window(&rows, &cols);
		json_object_set_new(start, "tty", json_true());
		if (rows && cols) {
			json_object_set_new(start, "rows", json_integer(rows));
			json_object_set_new(start, "cols", json_integer(cols));
		}
	}
	json_object_set_new(start, "stream", json_true());
	if (target_call(t, "PUT", "/agent/exec", start, 30000, &res, &st, err, sizeof(err))) {
		fprintf(stderr, "skiff exec: %s\n", err);
		return 126;
	}
	json_int_t pid = json_integer_value(json_object_get(res, "pid"));
	json_decref(res);
	char path[64];
	snprintf(path, sizeof(path), "/agent/exec/%lld", (long long)pid);

	bool raw = tty && terminal_raw_begin();
	uint8_t *in = malloc(IN_CHUNK);
	size_t in_len = 0;
	bool in_eof = !in, close_sent = false, timed_out = false, busy = true, took_some = false;
	double deadline = timeout > 0 ? clock_monotonic_s() + timeout : 0;
	int rc = 255;
	for (;;) {
		if (!in_eof && in_len < IN_CHUNK) {
			struct pollfd pf = { .fd = STDIN_FILENO, .events = POLLIN };
			if (poll(&pf, 1, 0) > 0) {
				ssize_t r = read(STDIN_FILENO, in + in_len, IN_CHUNK - in_len);
				if (r > 0)
					in_len += (size_t)r;
				else if (r == 0 || (errno != EINTR && errno != EAGAIN))
					in_eof = true;
			}
		}
		json_t *body = json_pack("{s:i}", "wait_ms", (in_len && took_some) || busy ? 0 : IO_WAIT_MS);
		if (in_len)
			json_object_set_new(body, "input_data", b64_json(in, in_len));
		if (in_eof && !close_sent)
			json_object_set_new(body, "input_close", json_true());
		if (es->sig) {
			json_object_set_new(body, "signal", json_integer(es->sig == SIGINT && tty ? SIGHUP : es->sig));
			es->sig = 0;
		}
		if (deadline && !timed_out && clock_monotonic_s() >= deadline) {
			json_object_set_new(body, "signal", json_integer(SIGKILL));
			timed_out = true;
		}
		if (es->winch) {
			es->winch = 0;
			window(&rows, &cols);
			if (tty && rows && cols) {
				json_object_set_new(body, "rows", json_integer(rows));
				json_object_set_new(body, "cols", json_integer(cols));
			}
		}
		if (target_call(t, "PUT", path, body, 60000, &res, &st, err, sizeof(err))) {
			fprintf(stderr, "%sskiff exec: %s\n", raw ? "\r\n" : "", err);
			rc = 255;
			break;
		}
		json_int_t took = json_integer_value(json_object_get(res, "input_count"));
		took_some = took > 0;
		if (took > 0 && (size_t)took <= in_len) {
			memmove(in, in + took, in_len - (size_t)took);
			in_len -= (size_t)took;
		}
		if (in_eof && !in_len)
			close_sent = true;
		size_t got = json_string_length(json_object_get(res, "out_data")) +
			     json_string_length(json_object_get(res, "err_data"));
		busy = got > 0;
		if (!pass_output(res, "out_data", STDOUT_FILENO) || !pass_output(res, "err_data", STDERR_FILENO)) {
			fprintf(stderr, "skiff exec: the guest agent's output is not base64\n");
			json_decref(res);
			break;
		}
		if (json_is_true(json_object_get(res, "exited"))) {
			rc = exit_status(res);
			json_decref(res);
			break;
		}
		json_decref(res);
	}
	free(in);
	if (raw)
		terminal_raw_end();
	if (timed_out) {
		fprintf(stderr, "skiff exec: the command ran longer than %.0f s and was killed\n", timeout);
		return 124;
	}
	return rc;
}

/* Debian's agent and others: guest-exec with the input given whole, the
 * output collected when it has ended. */
static int run_stock(struct target *t, json_t *start, double timeout, struct exec_state *es)
{
	char err[1024];
	long st;
	if (!isatty(STDIN_FILENO)) {
		uint8_t *in = malloc(STOCK_INPUT_MAX + 1);
		size_t n = 0;
		ssize_t r;
		while (in && n <= STOCK_INPUT_MAX && (r = read(STDIN_FILENO, in + n, STOCK_INPUT_MAX + 1 - n)) != 0) {
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				break;
			n += (size_t)r;
		}
		if (!in || n > STOCK_INPUT_MAX) {
			fprintf(stderr, "skiff exec: this guest's agent takes at most %u bytes of input "
					"(it has no guest-exec-stream)\n", STOCK_INPUT_MAX);
			free(in);
			json_decref(start);
			return 125;
		}
		json_object_set_new(start, "input_data", b64_json(in, n));
		free(in);
	}
	json_object_set_new(start, "capture_output", json_true());
	json_t *res = NULL;
	if (target_call(t, "PUT", "/agent/exec", start, 30000, &res, &st, err, sizeof(err))) {
		fprintf(stderr, "skiff exec: %s\n", err);
		return 126;
	}
	char path[64];
	snprintf(path, sizeof(path), "/agent/exec/%lld", (long long)json_integer_value(json_object_get(res, "pid")));
	json_decref(res);
	double deadline = timeout > 0 ? clock_monotonic_s() + timeout : 0;
	for (unsigned ms = 20;; ms = ms < 500 ? ms * 2 : 500) {
		if (target_call(t, "PUT", path, json_pack("{s:b}", "stream", 0), 60000, &res, &st, err, sizeof(err))) {
			fprintf(stderr, "skiff exec: %s\n", err);
			return 255;
		}
		if (json_is_true(json_object_get(res, "exited"))) {
			pass_output(res, "out_data", STDOUT_FILENO);
			pass_output(res, "err_data", STDERR_FILENO);
			if (json_is_true(json_object_get(res, "out_truncated")) ||
			    json_is_true(json_object_get(res, "err_truncated")))
				fprintf(stderr, "skiff exec: the guest agent kept only part of the output\n");
			int rc = exit_status(res);
			json_decref(res);
			return rc;
		}
		json_decref(res);
		if ((deadline && clock_monotonic_s() >= deadline) || es->sig) {
			fprintf(stderr, "skiff exec: %s; this guest's agent cannot stop the command, "
					"which goes on running\n", es->sig ? "interrupted" : "timed out");
			return es->sig ? 128 + es->sig : 124;
		}
		struct timespec ts = { 0, (long)ms * 1000000 };
		nanosleep(&ts, NULL);
	}
}

int agent_cli_exec(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tty", no_argument, NULL, 't' }, { "env", required_argument, NULL, 'e' },
		{ "timeout", required_argument, NULL, 'T' }, { "socket", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' }, { 0 }
	};
	static const char usage[] =
		"usage: skiff exec [-t] [-e VAR=VALUE]... [--timeout SECS] [--socket PATH] VM -- CMD [ARGS...]\n"
		"\n"
		"Run CMD in the guest through its agent, with its output here, this input\n"
		"passed on, and its exit status. -t gives it a terminal; -e sets its\n"
		"environment (it then replaces the agent's); --timeout kills it after SECS\n"
		"(exit status 124). VM is a skiffd VM or a `skiff run --api-sock` socket.\n";
	bool tty = false;
	double timeout = 0;
	const char *sock = NULL;
	json_t *env = json_array();
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "+hte:", opts, NULL)) != -1) {
		if (o == 't') {
			tty = true;
		} else if (o == 'e') {
			json_array_append_new(env, json_string(optarg));
		} else if (o == 'T') {
			char *end;
			timeout = strtod(optarg, &end);
			if (*end || timeout <= 0) {
				fprintf(stderr, "skiff exec: --timeout %s: not a number of seconds\n", optarg);
				json_decref(env);
				return 64;
			}
		} else if (o == 'S') {
			sock = optarg;
		} else if (o == 'h') {
			fputs(usage, stdout);
			json_decref(env);
			return 0;
		} else {
			fputs(usage, stderr);
			json_decref(env);
			return 64;
		}
	}
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	const char *vm = optind < argc ? argv[optind++] : NULL;
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	if (!vm || optind >= argc) {
		fputs(usage, stderr);
		json_decref(env);
		return 64;
	}
	struct target t;
	if (target_open(&t, "exec", vm, sock)) {
		json_decref(env);
		return 125;
	}
	char err[1024];
	long st;
	json_t *info = NULL;
	int rc;
	if (target_call(&t, "GET", "/agent", NULL, 30000, &info, &st, err, sizeof(err))) {
		fprintf(stderr, "skiff exec: %s\n", err);
		rc = 125;
	} else if (!json_is_true(json_object_get(info, "answering"))) {
		const char *why = json_string_value(json_object_get(info, "error"));
		fprintf(stderr, "skiff exec: %s: the guest agent does not answer%s%s\n", vm,
			why ? ": " : (json_is_true(json_object_get(info, "connected")) ? "" :
				      " (no agent has opened its port in the guest)"), why ? why : "");
		rc = 125;
	} else {
		json_t *args = json_array();
		for (int i = optind + 1; i < argc; i++)
			json_array_append_new(args, json_string(argv[i]));
		json_t *start = json_pack("{s:s,s:o}", "path", argv[optind], "args", args);
		if (json_array_size(env))
			json_object_set(start, "env", env);
		else if (tty) {
			/* a terminal wants TERM; the rest as the agent has it */
			const char *term = getenv("TERM");
			json_t *e = json_pack("[s,s,s]", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
					      "HOME=/root", "TERM=");
			json_array_set_new(e, 2, json_sprintf("TERM=%s", term && *term ? term : "vt100"));
			json_object_set_new(start, "env", e);
		}
		struct exec_state es = { 0 };
		g_exec = &es;
		struct sigaction sa = { .sa_handler = on_signal };
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGWINCH, &sa, NULL);
		signal(SIGPIPE, SIG_IGN);
		if (json_is_true(json_object_get(info, "exec_stream")))
			rc = run_stream(&t, start, tty, timeout, &es);
		else if (tty) {
			fprintf(stderr, "skiff exec: -t needs skiff's guest agent (this one has no guest-exec-stream)\n");
			json_decref(start);
			rc = 125;
		} else {
			rc = run_stock(&t, start, timeout, &es);
		}
		g_exec = NULL;
	}
	json_decref(info);
	json_decref(env);
	target_close(&t);
	return rc;
}
