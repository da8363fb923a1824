/*
 * `skiff create | ls | start | stop | kill | pause | resume | inspect | rm`
 * (and the dispatch to console and top): each one or a few calls to skiffd's
 * REST API over its Unix socket. Tables for people by default, --json for
 * scripts. A VM is named by its id or its name wherever one is asked for.
 * See ctl.h and docs/skiffd.md.
 */
#include "cli/ctl.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/size.h"
#include "cli/agent.h"
#include "cli/devopts.h"
#include "daemon/paths.h"
#include "daemon/uhttp.h"
#include "vmm/config_json.h"

#define CALL_TIMEOUT_MS 120000
/* skiff stop's status when a VM had to be stopped at once. */
#define CTL_STOP_HARD 2

static const char *const commands[] = {
	"create", "ls", "start", "stop", "kill", "pause", "resume", "console", "inspect", "top", "rm",
	"snapshot", "restore", "clone", NULL
};

bool ctl_is_command(const char *name)
{
	for (size_t i = 0; commands[i]; i++)
		if (!strcmp(name, commands[i]))
			return true;
	return false;
}

/* ------------------------------------------------------------ calls */

/* Like ctl_call, but the message goes to err instead of standard error;
 * on success `out` holds the answer. */
static int request(struct ctl *c, const char *method, const char *path, const char *body,
		   struct uhttp_reply *out, char *err, size_t errlen)
{
	if (uhttp_call(c->socket, method, path, body, CALL_TIMEOUT_MS, out, err, errlen)) {
		struct stat st;
		if (stat(c->socket, &st) && errno == ENOENT) {
			snprintf(err, errlen, "skiffd is not running: there is no socket at %s (start skiffd, or "
				 "point --socket or SKIFF_SOCKET at its socket)", c->socket);
			return -1;
		}
		char *why = strdup(err);
		snprintf(err, errlen, "cannot reach skiffd at %s: %s (is skiffd running? start it with `skiffd`, "
			 "or point --socket or SKIFF_SOCKET at its socket)", c->socket, why ? why : "?");
		free(why);
		return -1;
	}
	if (out->status >= 200 && out->status < 300)
		return 0;
	json_t *j = json_loads(out->body, 0, NULL);
	const char *fm = json_string_value(json_object_get(j, "fault_message"));
	if (fm)
		snprintf(err, errlen, "%s", fm);
	else
		snprintf(err, errlen, "skiffd answered %ld: %.300s", out->status, out->body);
	json_decref(j);
	uhttp_reply_free(out);
	return -1;
}

static int call_q(struct ctl *c, const char *method, const char *path, const char *body, json_t **out,
		  char *err, size_t errlen)
{
	struct uhttp_reply r;
	if (out)
		*out = NULL;
	if (request(c, method, path, body, &r, err, errlen))
		return -1;
	if (out && r.len) {
		json_error_t je;
		*out = json_loads(r.body, 0, &je);
		if (!*out) {
			snprintf(err, errlen, "skiffd's answer is not JSON: %s", je.text);
			uhttp_reply_free(&r);
			return -1;
		}
	}
	uhttp_reply_free(&r);
	return 0;
}

int ctl_call(struct ctl *c, const char *method, const char *path, const char *body, json_t **out)
{
	char err[1024];
	if (call_q(c, method, path, body, out, err, sizeof(err))) {
		fprintf(stderr, "skiff %s: %s\n", c->cmd, err);
		return -1;
	}
	return 0;
}

int ctl_call_text(struct ctl *c, const char *path, char **text)
{
	char err[1024];
	struct uhttp_reply r;
	if (request(c, "GET", path, NULL, &r, err, sizeof(err))) {
		fprintf(stderr, "skiff %s: %s\n", c->cmd, err);
		return -1;
	}
	*text = r.body;
	r.body = NULL;
	uhttp_reply_free(&r);
	return 0;
}

/* "/vms/NAME" + suffix */
char *ctl_vm_path(const char *name, const char *suffix)
{
	char *p = NULL;
	return asprintf(&p, "/vms/%s%s", name, suffix ? suffix : "") < 0 ? NULL : p;
}

int ctl_action(struct ctl *c, const char *name, const char *what, char *err, size_t errlen)
{
	char body[96];
	snprintf(body, sizeof(body), "{\"action_type\":\"%s\"}", what);
	char *p = ctl_vm_path(name, "/actions");
	int r = p ? call_q(c, "PUT", p, body, NULL, err, errlen) : -1;
	free(p);
	return r;
}

/* ------------------------------------------------------------ formatting */

void ctl_fmt_mib(char *out, size_t cap, double mib)
{
	if (mib <= 0)
		snprintf(out, cap, "0");
	else if (mib >= 1024 * 1024)
		snprintf(out, cap, "%.4gT", mib / (1024 * 1024));
	else if (mib >= 1024)
		snprintf(out, cap, "%.4gG", mib / 1024);
	else if (mib >= 1)
		snprintf(out, cap, "%.4gM", mib);
	else
		snprintf(out, cap, "%.4gK", mib * 1024);
}

void ctl_fmt_age(char *out, size_t cap, int64_t s)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(out, cap, "%" PRId64 "s", s);
	else if (s < 3600)
		snprintf(out, cap, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, cap, "%" PRId64 "h%02" PRId64 "m", s / 3600, (s % 3600) / 60);
	else
		snprintf(out, cap, "%" PRId64 "d%02" PRId64 "h", s / 86400, (s % 86400) / 3600);
}

void ctl_print_json(const json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s)
		puts(s);
	free(s);
}

/* A table: rows of cells, columns padded to their widest cell. */
struct table {
	char *cell[256][8];
	size_t rows, cols;
};

static void table_row(struct table *t, const char *const *cells, size_t n)
{
	if (t->rows >= 256)
		return;
	for (size_t i = 0; i < n && i < 8; i++)
		t->cell[t->rows][i] = strdup(cells[i] ? cells[i] : "-");
	t->cols = n;
	t->rows++;
}

static void table_print(struct table *t)
{
	size_t w[8] = { 0 };
	for (size_t r = 0; r < t->rows; r++)
		for (size_t i = 0; i < t->cols; i++)
			if (t->cell[r][i] && strlen(t->cell[r][i]) > w[i])
				w[i] = strlen(t->cell[r][i]);
	for (size_t r = 0; r < t->rows; r++) {
		for (size_t i = 0; i < t->cols; i++) {
			const char *s = t->cell[r][i] ? t->cell[r][i] : "";
			if (i + 1 < t->cols)
				printf("%-*s  ", (int)w[i], s);
			else
				printf("%s\n", s);
			free(t->cell[r][i]);
		}
	}
	t->rows = 0;
}

/* ------------------------------------------------------------ options */


/* Handle the options every subcommand takes; false for others. */
bool ctl_common_opt(struct ctl *c, int o, bool *json)
{
	if (o == CTL_OPT_SOCKET) {
		c->socket = optarg;
		return true;
	}
	if (o == CTL_OPT_JSON && json) {
		*json = true;
		return true;
	}
	return false;
}

int ctl_bad_opt(struct ctl *c, int o, char **argv)
{
	if (o == ':')
		fprintf(stderr, "skiff %s: %s needs a value (see skiff %s --help)\n", c->cmd, argv[optind - 1], c->cmd);
	else
		fprintf(stderr, "skiff %s: unknown option '%s' (see skiff %s --help)\n", c->cmd, argv[optind - 1],
			c->cmd);
	return 64;
}

/* ------------------------------------------------------------ ls */

static const char *state_of(json_t *vm)
{
	const char *s = json_string_value(json_object_get(vm, "state"));
	return s ? s : "?";
}

/* Whether a running VM's guest agent answers, asked through skiffd (the
 * VMM pings the agent for at most 2 s; a closed port is answered at once):
 * "yes", "silent" (its port is open but nothing answers), "no" (no agent
 * has the port open), "-" (not running, or no agent port). */
static const char *agent_text(struct ctl *c, json_t *vm)
{
	if (json_integer_value(json_object_get(vm, "pid")) <= 0)
		return "-";
	char *p = ctl_vm_path(json_string_value(json_object_get(vm, "id")), "/agent");
	json_t *a = NULL;
	char err[512];
	int r = p ? call_q(c, "GET", p, NULL, &a, err, sizeof(err)) : -1;
	free(p);
	const char *t = r ? "-" : json_is_true(json_object_get(a, "answering")) ? "yes" :
			json_is_true(json_object_get(a, "connected")) ? "silent" : "no";
	json_decref(a);
	return t;
}

static void status_text(json_t *vm, char *out, size_t cap)
{
	int64_t now = time(NULL);
	char age[32];
	if (json_integer_value(json_object_get(vm, "pid")) > 0) {
		ctl_fmt_age(age, sizeof(age), now - json_integer_value(json_object_get(vm, "started_at")));
		snprintf(out, cap, "up %s", age);
		return;
	}
	json_t *le = json_object_get(vm, "last_exit");
	if (!json_is_object(le)) {
		snprintf(out, cap, "never started");
		return;
	}
	ctl_fmt_age(age, sizeof(age), now - json_integer_value(json_object_get(le, "at")));
	json_t *sig = json_object_get(le, "signal");
	if (!json_is_true(json_object_get(le, "known")))
		snprintf(out, cap, "%s %s ago", json_is_true(json_object_get(le, "stopped")) ? "stopped" : "ended", age);
	else if (json_is_true(json_object_get(le, "stopped")))
		snprintf(out, cap, "stopped %s ago", age);
	else if (sig)
		snprintf(out, cap, "killed by signal %d %s ago", (int)json_integer_value(sig), age);
	else
		snprintf(out, cap, "exited (%d) %s ago", (int)json_integer_value(json_object_get(le, "code")), age);
}

static int cmd_ls(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, CTL_OPT_JSON }, { "quiet", no_argument, NULL, 'q' },
		{ "socket", required_argument, NULL, CTL_OPT_SOCKET }, { "help", no_argument, NULL, 'h' }, { 0 }
	};
	bool json = false, quiet = false;
	int o;
	while ((o = getopt_long(argc, argv, ":hq", opts, NULL)) != -1) {
		if (ctl_common_opt(c, o, &json))
			continue;
		if (o == 'q')
			quiet = true;
		else if (o == 'h') {
			fputs("usage: skiff ls [--json] [-q] [--socket PATH]\n\n"
			      "List the VMs skiffd knows, running or not (-q: ids only). AGENT: whether\n"
			      "the guest agent answers (yes; silent: its port is open, no answer in 2 s;\n"
			      "no: no agent has its port open).\n", stdout);
			return 0;
		} else
			return ctl_bad_opt(c, o, argv);
	}
	json_t *vms = NULL;
	if (ctl_call(c, "GET", "/vms", NULL, &vms))
		return 1;
	if (json) {
		ctl_print_json(vms);
		json_decref(vms);
		return 0;
	}
	size_t i;
	json_t *vm;
	if (quiet) {
		json_array_foreach(vms, i, vm)
			puts(json_string_value(json_object_get(vm, "id")));
		json_decref(vms);
		return 0;
	}
	struct table t = { 0 };
	static const char *const head[] = { "ID", "NAME", "STATE", "CPUS", "MEM", "PID", "AGENT", "STATUS" };
	table_row(&t, head, 8);
	json_array_foreach(vms, i, vm) {
		char cpus[16], mem[16], pid[16], status[64];
		snprintf(cpus, sizeof(cpus), "%d", (int)json_integer_value(json_object_get(vm, "vcpu_count")));
		ctl_fmt_mib(mem, sizeof(mem), (double)json_integer_value(json_object_get(vm, "mem_size_mib")));
		json_t *p = json_object_get(vm, "pid");
		snprintf(pid, sizeof(pid), json_is_integer(p) ? "%d" : "-", (int)json_integer_value(p));
		status_text(vm, status, sizeof(status));
		const char *row[] = { json_string_value(json_object_get(vm, "id")),
				      json_string_value(json_object_get(vm, "name")), state_of(vm), cpus, mem, pid,
				      agent_text(c, vm), status };
		table_row(&t, row, 8);
		if (t.rows == 256)
			table_print(&t);
	}
	table_print(&t);
	json_decref(vms);
	return 0;
}

/* ------------------------------------------------------------ one VM at a time */

static int wait_stopped(struct ctl *c, const char *name, double seconds)
{
	char *p = ctl_vm_path(name, NULL);
	char err[1024];
	double t0 = clock_monotonic_s();
	int r = 1;
	for (;;) {
		json_t *vm = NULL;
		if (!p || call_q(c, "GET", p, NULL, &vm, err, sizeof(err))) {
			r = -1;
			break;
		}
		bool stopped = !strcmp(state_of(vm), "stopped");
		json_decref(vm);
		if (stopped) {
			r = 0;
			break;
		}
		if (clock_monotonic_s() - t0 >= seconds)
			break;
		struct timespec ts = { 0, 250000000 };
		nanosleep(&ts, NULL);
	}
	free(p);
	return r;
}

/* stop: ask the guest to shut down through its agent (guest-shutdown; the
 * file systems are synced), else with Ctrl-Alt-Del, which it also gets when
 * the agent's shutdown has not ended it after `timeout` seconds; stop it at
 * once when Ctrl-Alt-Del has not ended it after `timeout` more. Each
 * fallback is said on standard error. 0: the guest shut down;
 * CTL_STOP_HARD: it had to be stopped at once; 1: an error. */
static int stop_one(struct ctl *c, const char *name, double timeout)
{
	char err[1024];
	if (agent_cli_request_shutdown(c->socket, name, err, sizeof(err)) == 0) {
		if (wait_stopped(c, name, timeout) == 0)
			return 0;
		fprintf(stderr, "skiff stop: %s: still running %.0f s after the guest agent's shutdown; "
			"sending Ctrl-Alt-Del\n", name, timeout);
	} else if (strstr(err, "not running") || strstr(err, "no VM")) {
		fprintf(stderr, "skiff stop: %s\n", err);
		return 1;
	} else {
		fprintf(stderr, "skiff stop: %s: the guest agent cannot shut it down (%s); sending Ctrl-Alt-Del\n",
			name, err);
	}
	if (ctl_action(c, name, "SendCtrlAltDel", err, sizeof(err))) {
		if (strstr(err, "not running"))
			return 0; /* it ended meanwhile */
		fprintf(stderr, "skiff stop: %s: the guest cannot be asked to shut down (%s); stopping it at once\n",
			name, err);
	} else if (wait_stopped(c, name, timeout) == 0) {
		return 0;
	} else {
		fprintf(stderr, "skiff stop: %s: still running after %.0f s; stopping it at once\n", name, timeout);
	}
	if (ctl_action(c, name, "InstanceStop", err, sizeof(err))) {
		if (strstr(err, "not running"))
			return 0; /* it ended meanwhile */
		fprintf(stderr, "skiff stop: %s\n", err);
		return 1;
	}
	return CTL_STOP_HARD;
}

static int each(struct ctl *c, int argc, char **argv, const char *usage_text)
{
	static const struct option opts[] = {
		{ "time", required_argument, NULL, 't' }, { "force", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, CTL_OPT_JSON },
		{ "socket", required_argument, NULL, CTL_OPT_SOCKET }, { "help", no_argument, NULL, 'h' }, { 0 }
	};
	double timeout = 30;
	bool force = false, json = false;
	bool stop = !strcmp(c->cmd, "stop"), rm = !strcmp(c->cmd, "rm"), inspect = !strcmp(c->cmd, "inspect");
	int o;
	while ((o = getopt_long(argc, argv, stop ? ":ht:" : rm ? ":hf" : ":h", opts, NULL)) != -1) {
		if (ctl_common_opt(c, o, &json))
			continue;
		if (o == 'h') {
			fputs(usage_text, stdout);
			return 0;
		}
		if (o == 't' && stop) {
			char *end;
			timeout = strtod(optarg, &end);
			if (*end || end == optarg || timeout < 0) {
				fprintf(stderr, "skiff stop: -t %s: not a number of seconds\n", optarg);
				return 64;
			}
		} else if (o == 'f' && rm) {
			force = true;
		} else {
			return ctl_bad_opt(c, o, argv);
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "skiff %s: name a VM (its id or name)\n%s", c->cmd, usage_text);
		return 64;
	}
	(void)json;
	int rc = 0;
	json_t *all = inspect && argc - optind > 1 ? json_array() : NULL;
	for (int i = optind; i < argc; i++) {
		const char *name = argv[i];
		char err[1024];
		int r = 0;
		if (inspect) {
			json_t *vm = NULL;
			char *p = ctl_vm_path(name, NULL);
			r = p ? ctl_call(c, "GET", p, NULL, &vm) : -1;
			free(p);
			if (!r && all)
				json_array_append_new(all, vm);
			else if (!r) {
				ctl_print_json(vm);
				json_decref(vm);
			}
		} else if (stop) {
			r = stop_one(c, name, timeout);
			if (r == CTL_STOP_HARD) {
				/* Stopped, but not as asked: status 2 unless
				 * another VM failed outright. */
				if (!rc)
					rc = CTL_STOP_HARD;
				continue;
			}
		} else if (rm) {
			char *p = ctl_vm_path(name, NULL);
			json_t *vm = NULL;
			r = p ? ctl_call(c, "GET", p, NULL, &vm) : -1;
			if (!r && strcmp(state_of(vm), "stopped") && !force) {
				fprintf(stderr, "skiff rm: %s is %s; stop it first, or use rm -f\n", name, state_of(vm));
				r = -1;
			}
			json_decref(vm);
			if (!r)
				r = ctl_call(c, "DELETE", p, NULL, NULL);
			free(p);
		} else if (!strcmp(c->cmd, "pause") || !strcmp(c->cmd, "resume")) {
			char *p = ctl_vm_path(name, "/vm");
			r = p ? call_q(c, "PATCH", p, c->cmd[0] == 'p' ? "{\"state\":\"Paused\"}" : "{\"state\":\"Resumed\"}",
				       NULL, err, sizeof(err)) : -1;
			free(p);
			if (r)
				fprintf(stderr, "skiff %s: %s: %s\n", c->cmd, name, err);
		} else {
			r = ctl_action(c, name, !strcmp(c->cmd, "start") ? "InstanceStart" : "InstanceStop", err, sizeof(err));
			if (r)
				fprintf(stderr, "skiff %s: %s\n", c->cmd, err);
		}
		if (r)
			rc = 1;
	}
	if (all) {
		ctl_print_json(all);
		json_decref(all);
	}
	return rc;
}

/* ------------------------------------------------------------ dispatch */

static const char ctl_usage[] =
	"usage: skiff COMMAND [options] ...   (with skiffd running; see docs/skiffd.md)\n"
	"\n"
	"  create [--config FILE] [--name N] [--kernel K] [--cpus N] [--mem SIZE] ...\n"
	"                       define a VM (prints its id)\n"
	"  ls [--json]          list VMs\n"
	"  start VM...          start VMs\n"
	"  stop [-t SECS] VM... ask the guests to shut down; stop them after SECS (30)\n"
	"  kill VM...           stop VMs at once\n"
	"  pause VM...          pause VMs\n"
	"  resume VM...         resume paused VMs\n"
	"  console VM           attach to a VM's console (C-a x detaches)\n"
	"  inspect VM...        a VM's definition and state as JSON\n"
	"  top [--once]         live CPU and memory per VM\n"
	"  rm [-f] VM...        remove VMs (-f: stop them first if they run)\n"
	"  snapshot [--diff] VM DIR  save a running VM into DIR; it runs on\n"
	"  restore [--name N] DIR    a new VM from the snapshot in DIR, started\n"
	"  clone VM N           N clones of a running VM, started\n"
	"\n"
	"VM is an id or a name. Every command takes --socket PATH (default:\n"
	"$SKIFF_SOCKET, then skiffd's default socket); ls, create and top take --json.\n";

int ctl_main(int argc, char **argv)
{
	struct ctl c = { .cmd = argv[0] };
	const char *env = getenv("SKIFF_SOCKET");
	if (env && *env)
		c.socket = env;
	else
		c.socket = c.socket_owned = skiffd_default_socket();
	char err[256];
	if (!c.socket) {
		fprintf(stderr, "skiff %s: out of memory\n", c.cmd);
		return 1;
	}
	if (uhttp_global_init(err, sizeof(err))) {
		fprintf(stderr, "skiff %s: %s\n", c.cmd, err);
		free(c.socket_owned);
		return 1;
	}
	optind = 1;
	opterr = 0;
	int rc;
	const char *cmd = argv[0];
	char usage[384];
	snprintf(usage, sizeof(usage), "usage: skiff %s [options] VM...\n%s", cmd,
		 !strcmp(cmd, "stop") ? "  -t SECS   how long the guest may take to shut down through its agent,\n"
					"            and again after Ctrl-Alt-Del, before it is stopped (default 30)\n"
					"exit status 2: a VM had to be stopped at once\n" :
		 !strcmp(cmd, "rm") ? "  -f        stop a running VM first\n" : "");
	if (!strcmp(cmd, "create"))
		rc = ctl_create(&c, argc, argv);
	else if (!strcmp(cmd, "ls"))
		rc = cmd_ls(&c, argc, argv);
	else if (!strcmp(cmd, "console"))
		rc = ctl_console(&c, argc, argv);
	else if (!strcmp(cmd, "top"))
		rc = ctl_top(&c, argc, argv);
	else if (!strcmp(cmd, "snapshot"))
		rc = ctl_snapshot(&c, argc, argv);
	else if (!strcmp(cmd, "restore"))
		rc = ctl_restore(&c, argc, argv);
	else if (!strcmp(cmd, "clone"))
		rc = ctl_clone(&c, argc, argv);
	else if (ctl_is_command(cmd))
		rc = each(&c, argc, argv, usage);
	else {
		fputs(ctl_usage, stderr);
		rc = 64;
	}
	free(c.socket_owned);
	return rc;
}
