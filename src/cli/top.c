/*
 * `skiff top`: a live per-VM view built from skiffd's GET /metrics (the
 * Prometheus text): state, vCPUs, configured memory, resident memory of the
 * VMM process, host CPU use and exits per second over the last interval,
 * guest uptime. Refreshes every -d seconds until interrupted; --once takes
 * two samples one interval apart, prints one table (or --json) and ends.
 */
#include "cli/ctl.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"

#define MAX_VMS 512

struct vm_sample {
	char id[72], name[72];
	bool running, paused;
	double vcpus, mem, rss, cpu, exits, uptime;
	bool has_exits, has_uptime;
};

struct snapshot {
	struct vm_sample vm[MAX_VMS];
	size_t n;
	double limit, used;
	double when;
};

/* The value of label `key` in a label list `a="x",b="y"`; "" if absent. */
static void label(const char *labels, const char *key, char *out, size_t cap)
{
	out[0] = 0;
	size_t kl = strlen(key);
	const char *p = labels;
	while (p && *p) {
		while (*p == ',' || *p == ' ')
			p++;
		const char *eq = strchr(p, '=');
		if (!eq || eq[1] != '"')
			return;
		bool match = (size_t)(eq - p) == kl && !strncmp(p, key, kl);
		size_t k = 0;
		const char *v = eq + 2;
		while (*v && *v != '"') {
			char ch = *v;
			if (ch == '\\' && v[1]) {
				v++;
				ch = *v == 'n' ? '\n' : *v;
			}
			if (match && k + 1 < cap)
				out[k++] = ch;
			v++;
		}
		if (match) {
			out[k] = 0;
			return;
		}
		p = *v ? v + 1 : v;
	}
}

static struct vm_sample *vm_of(struct snapshot *s, const char *id, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->vm[i].id, id))
			return &s->vm[i];
	if (s->n == MAX_VMS)
		return NULL;
	struct vm_sample *v = &s->vm[s->n++];
	memset(v, 0, sizeof(*v));
	snprintf(v->id, sizeof(v->id), "%s", id);
	snprintf(v->name, sizeof(v->name), "%s", name);
	return v;
}

static void parse(struct snapshot *s, char *text)
{
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#' || !line[0])
			continue;
		char *brace = strchr(line, '{'), *space;
		char labels[512] = "";
		if (brace && (!(space = strchr(line, ' ')) || brace < space)) {
			char *close = strrchr(line, '}');
			if (!close)
				continue;
			*brace = 0;
			*close = 0;
			snprintf(labels, sizeof(labels), "%s", brace + 1);
			space = close + 1;
		} else {
			space = strchr(line, ' ');
			if (!space)
				continue;
			*space = 0;
			space++;
		}
		const char *name = line;
		double v = strtod(space, NULL);
		if (!strcmp(name, "skiffd_mem_limit_bytes")) {
			s->limit = v;
			continue;
		}
		if (!strcmp(name, "skiffd_mem_running_bytes")) {
			s->used = v;
			continue;
		}
		char id[72], vname[72];
		label(labels, "vm", id, sizeof(id));
		if (!id[0] || strncmp(name, "skiff_vm_", 9))
			continue;
		label(labels, "name", vname, sizeof(vname));
		struct vm_sample *m = vm_of(s, id, vname);
		if (!m)
			continue;
		const char *what = name + 9;
		if (!strcmp(what, "running"))
			m->running = v != 0;
		else if (!strcmp(what, "paused"))
			m->paused = v != 0;
		else if (!strcmp(what, "vcpus"))
			m->vcpus = v;
		else if (!strcmp(what, "memory_configured_bytes"))
			m->mem = v;
		else if (!strcmp(what, "resident_memory_bytes"))
			m->rss = v;
		else if (!strcmp(what, "cpu_seconds_total"))
			m->cpu += v;
		else if (!strcmp(what, "exits_total"))
			m->exits += v, m->has_exits = true;
		else if (!strcmp(what, "guest_uptime_seconds"))
			m->uptime = v, m->has_uptime = true;
	}
}

static int take(struct ctl *c, struct snapshot *s)
{
	char *text = NULL;
	if (ctl_call_text(c, "/metrics", &text))
		return -1;
	s->n = 0;
	s->limit = s->used = 0;
	s->when = clock_monotonic_s();
	parse(s, text);
	free(text);
	return 0;
}

static const struct vm_sample *before(const struct snapshot *s, const char *id)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (!strcmp(s->vm[i].id, id))
			return &s->vm[i];
	return NULL;
}

struct row {
	const struct vm_sample *v;
	double cpu_pct, exit_rate;
	bool rates;
};

static void rows_of(const struct snapshot *now, const struct snapshot *prev, struct row *rows)
{
	double dt = prev ? now->when - prev->when : 0;
	for (size_t i = 0; i < now->n; i++) {
		const struct vm_sample *v = &now->vm[i], *p = before(prev, v->id);
		rows[i] = (struct row){ .v = v };
		if (p && dt > 0.05 && v->running && p->running) {
			rows[i].rates = true;
			rows[i].cpu_pct = fmax(0, (v->cpu - p->cpu) / dt * 100.0);
			rows[i].exit_rate = fmax(0, (v->exits - p->exits) / dt);
		}
	}
}

static void print_table(const struct snapshot *now, const struct row *rows)
{
	size_t running = 0;
	for (size_t i = 0; i < now->n; i++)
		running += now->vm[i].running;
	char used[16], limit[16];
	ctl_fmt_mib(used, sizeof(used), now->used / 1048576.0);
	ctl_fmt_mib(limit, sizeof(limit), now->limit / 1048576.0);
	printf("skiff top: %zu VMs, %zu running; guest memory %s of %s\n\n", now->n, running, used, limit);
	printf("%-16s %-16s %-8s %4s %7s %7s %6s %9s %9s\n", "ID", "NAME", "STATE", "CPUS", "MEM", "RSS", "CPU%",
	       "EXITS/s", "UPTIME");
	for (size_t i = 0; i < now->n; i++) {
		const struct vm_sample *v = rows[i].v;
		char mem[16], rss[16] = "-", cpu[16] = "-", ex[16] = "-", up[24] = "-";
		ctl_fmt_mib(mem, sizeof(mem), v->mem / 1048576.0);
		if (v->running) {
			ctl_fmt_mib(rss, sizeof(rss), v->rss / 1048576.0);
			if (rows[i].rates) {
				snprintf(cpu, sizeof(cpu), "%.1f", rows[i].cpu_pct);
				if (v->has_exits)
					snprintf(ex, sizeof(ex), "%.0f", rows[i].exit_rate);
			}
			if (v->has_uptime)
				ctl_fmt_age(up, sizeof(up), (int64_t)v->uptime);
		}
		printf("%-16s %-16s %-8s %4.0f %7s %7s %6s %9s %9s\n", v->id, v->name[0] ? v->name : "-",
		       !v->running ? "stopped" : v->paused ? "paused" : "running", v->vcpus, mem, rss, cpu, ex, up);
	}
	fflush(stdout);
}

static void print_json(const struct snapshot *now, const struct row *rows)
{
	json_t *a = json_array();
	for (size_t i = 0; i < now->n; i++) {
		const struct vm_sample *v = rows[i].v;
		json_t *o = json_pack("{s:s,s:s?,s:s,s:i,s:I}", "id", v->id, "name", v->name[0] ? v->name : NULL,
				      "state", !v->running ? "stopped" : v->paused ? "paused" : "running",
				      "vcpu_count", (int)v->vcpus, "mem_bytes", (json_int_t)v->mem);
		if (o && v->running) {
			json_object_set_new(o, "rss_bytes", json_integer((json_int_t)v->rss));
			json_object_set_new(o, "cpu_seconds", json_real(v->cpu));
			if (rows[i].rates)
				json_object_set_new(o, "cpu_percent", json_real(rows[i].cpu_pct));
			if (v->has_exits) {
				json_object_set_new(o, "exits", json_integer((json_int_t)v->exits));
				if (rows[i].rates)
					json_object_set_new(o, "exits_per_second", json_real(rows[i].exit_rate));
			}
			if (v->has_uptime)
				json_object_set_new(o, "guest_uptime_seconds", json_real(v->uptime));
		}
		json_array_append_new(a, o);
	}
	char *s = json_dumps(a, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s)
		puts(s);
	free(s);
	json_decref(a);
}

int ctl_top(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "once", no_argument, NULL, '1' }, { "delay", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' }, { "socket", required_argument, NULL, 1000 },
		{ "help", no_argument, NULL, 'h' }, { 0 }
	};
	bool once = false, json = false;
	double delay = 2;
	int o;
	while ((o = getopt_long(argc, argv, ":hd:", opts, NULL)) != -1) {
		switch (o) {
		case '1': once = true; break;
		case 'j': json = true; break;
		case 1000: c->socket = optarg; break;
		case 'd': {
			char *end;
			delay = strtod(optarg, &end);
			if (*end || end == optarg || !(delay >= 0.1 && delay <= 3600)) {
				fprintf(stderr, "skiff top: -d %s: seconds from 0.1 to 3600\n", optarg);
				return 64;
			}
			break;
		}
		case 'h':
			fputs("usage: skiff top [--once] [--json] [-d SECONDS] [--socket PATH]\n\n"
			      "Per-VM CPU, memory and exits, refreshed every SECONDS (default 2) until\n"
			      "interrupted. --once prints one table measured over one interval (--json:\n"
			      "as JSON) and ends.\n", stdout);
			return 0;
		default:
			fprintf(stderr, "skiff top: unknown option or missing value '%s'\n", argv[optind - 1]);
			return 64;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "skiff top: unexpected argument '%s'\n", argv[optind]);
		return 64;
	}
	if (json && !once) {
		fprintf(stderr, "skiff top: --json needs --once\n");
		return 64;
	}
	struct snapshot *s[2] = { calloc(1, sizeof(struct snapshot)), calloc(1, sizeof(struct snapshot)) };
	struct row *rows = calloc(MAX_VMS, sizeof(*rows));
	int rc = 0;
	if (!s[0] || !s[1] || !rows || take(c, s[0])) {
		rc = 1;
		goto out;
	}
	bool tty = isatty(STDOUT_FILENO);
	for (unsigned k = 1;; k++) {
		struct timespec ts = { (time_t)delay, (long)((delay - (double)(time_t)delay) * 1e9) };
		if (!once && k == 1) {
			/* Something to look at right away, rates from the next one. */
			rows_of(s[0], NULL, rows);
			if (tty)
				fputs("\033[H\033[2J", stdout);
			print_table(s[0], rows);
		}
		nanosleep(&ts, NULL);
		struct snapshot *now = s[k & 1], *prev = s[(k & 1) ^ 1];
		if (take(c, now)) {
			rc = 1;
			break;
		}
		rows_of(now, prev, rows);
		if (once) {
			if (json)
				print_json(now, rows);
			else
				print_table(now, rows);
			break;
		}
		if (tty)
			fputs("\033[H\033[2J", stdout);
		print_table(now, rows);
	}
out:
	free(s[0]);
	free(s[1]);
	free(rows);
	return rc;
}
