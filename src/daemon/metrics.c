/*
 * GET /metrics: skiffd's view of its VMs in the Prometheus text exposition
 * format (version 0.0.4). For every VM: its state, configured vCPUs and
 * memory; for a running one also what the host sees of its VMM process
 * (/proc/PID/stat: CPU time, resident memory, threads; /proc/PID/io: bytes
 * read and written on host storage) and the counters the VMM itself keeps
 * (asked for with FlushMetrics and read back from its metrics file: exits
 * by reason per hart, SBI calls, WFI sleeps, API requests, and any other
 * numeric member a later VMM adds, under skiff_vmm_<section>_<name>).
 */
#include "daemon/skiffd.h"

#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/uhttp.h"
#include "base/fd_io.h"

/* The VMM's metrics file is cut back to nothing past this size. */
#define METRICS_FILE_MAX (1u << 20)

/* One metric family: its HELP and TYPE lines once, then its samples. */
struct family {
	char *name;
	char *text;
	size_t len, cap;
};

struct out {
	struct family *fam;
	size_t n, cap;
	bool oom;
};

static void append(struct out *o, struct family *f, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(struct out *o, struct family *f, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	if (f->len + (size_t)n + 1 > f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 1024;
		while (cap < f->len + (size_t)n + 1)
			cap *= 2;
		char *nt = realloc(f->text, cap);
		if (!nt) {
			o->oom = true;
			return;
		}
		f->text = nt;
		f->cap = cap;
	}
	memcpy(f->text + f->len, line, (size_t)n);
	f->len += (size_t)n;
	f->text[f->len] = 0;
}

static struct family *family(struct out *o, const char *name, const char *type, const char *help)
{
	for (size_t i = 0; i < o->n; i++)
		if (!strcmp(o->fam[i].name, name))
			return &o->fam[i];
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 32;
		struct family *nf = realloc(o->fam, cap * sizeof(*nf));
		if (!nf) {
			o->oom = true;
			return NULL;
		}
		o->fam = nf;
		o->cap = cap;
	}
	struct family *f = &o->fam[o->n];
	memset(f, 0, sizeof(*f));
	if (!(f->name = strdup(name))) {
		o->oom = true;
		return NULL;
	}
	o->n++;
	append(o, f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	return f;
}

/* One sample; `labels` is the text inside the braces (may be ""). */
static void sample(struct out *o, const char *name, const char *type, const char *help,
		   const char *labels, double v)
{
	struct family *f = family(o, name, type, help);
	if (!f)
		return;
	char num[48];
	if (v == (double)(int64_t)v && v < 9.2e18 && v > -9.2e18)
		snprintf(num, sizeof(num), "%" PRId64, (int64_t)v);
	else
		snprintf(num, sizeof(num), "%.10g", v);
	if (labels[0])
		append(o, f, "%s{%s} %s\n", name, labels, num);
	else
		append(o, f, "%s %s\n", name, num);
}

/* A metric name part from a JSON key: [a-z0-9_] only. */
static void name_part(char *out, size_t cap, const char *key)
{
	size_t k = 0;
	for (const char *p = key; *p && k + 1 < cap; p++)
		out[k++] = isalnum((unsigned char)*p) ? (char)tolower((unsigned char)*p) : '_';
	out[k] = 0;
}

/* A label value from a device id: the characters ids may have pass, any
 * other (a quote, a backslash, a newline) becomes '_'. */
static void label_value(char *out, size_t cap, const char *raw)
{
	size_t k = 0;
	for (const char *p = raw; *p && k + 1 < cap; p++)
		out[k++] = isalnum((unsigned char)*p) || strchr("-_.:", *p) ? *p : '_';
	out[k] = 0;
}

/* The last complete line of the VMM's metrics file (malloc'd), cutting the
 * file back when it has grown large and is skiffd's own. */
static char *last_metrics_line(const char *path, bool ours)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size == 0) {
		close(fd);
		return NULL;
	}
	size_t want = st.st_size > 65536 ? 65536 : (size_t)st.st_size;
	char *buf = malloc(want + 1);
	ssize_t n = buf ? pread(fd, buf, want, st.st_size - (off_t)want) : -1;
	if (n > 0 && ours && st.st_size > METRICS_FILE_MAX && ftruncate(fd, 0)) {
		/* Left to grow; the next scrape tries again. */
	}
	close(fd);
	if (n <= 0) {
		free(buf);
		return NULL;
	}
	buf[n] = 0;
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = 0;
	char *start = strrchr(buf, '\n');
	start = start ? start + 1 : buf;
	char *line = strdup(start);
	free(buf);
	return line;
}

static double num(const json_t *v)
{
	return json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);
}

/* A device section of the VMM's metrics: an array of objects, one per
 * device, each with its "id" and counters; skiff_vm_<section>_<counter>_total
 * with an id label. */
static void device_metrics(struct out *o, const char *lbl, const char *section, const json_t *arr)
{
	char labels[512], name[160], a[64], b[64], id[64];
	size_t i;
	json_t *dev;
	name_part(a, sizeof(a), section);
	json_array_foreach((json_t *)arr, i, dev) {
		const char *raw_id = json_string_value(json_object_get(dev, "id"));
		if (!json_is_object(dev) || !raw_id)
			continue;
		label_value(id, sizeof(id), raw_id);
		snprintf(labels, sizeof(labels), "%s,id=\"%s\"", lbl, id);
		const char *k;
		json_t *v;
		json_object_foreach(dev, k, v) {
			if (!json_is_number(v))
				continue;
			name_part(b, sizeof(b), k);
			snprintf(name, sizeof(name), "skiff_vm_%s_%s_total", a, b);
			sample(o, name, "counter", "A per-device counter of the VMM.", labels, num(v));
		}
	}
}

/* The VMM's own counters, from one line of its metrics file. */
static void vmm_metrics(struct out *o, const char *lbl, const json_t *m)
{
	char labels[512], name[160], a[64], b[64];
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)m, key, v) {
		if (!strcmp(key, "vcpus") && json_is_array(v)) {
			size_t i;
			json_t *c;
			json_array_foreach(v, i, c) {
				json_t *h = json_object_get(c, "hart");
				long hart = json_is_integer(h) ? (long)json_integer_value(h) : (long)i;
				const char *ck;
				json_t *cv;
				json_object_foreach(c, ck, cv) {
					if (!strcmp(ck, "exits") && json_is_object(cv)) {
						const char *reason;
						json_t *count;
						json_object_foreach(cv, reason, count) {
							if (!json_is_number(count))
								continue;
							name_part(a, sizeof(a), reason);
							snprintf(labels, sizeof(labels), "%s,hart=\"%ld\",reason=\"%s\"", lbl, hart, a);
							sample(o, "skiff_vm_exits_total", "counter",
							       "Exits from the engine to the monitor, by hart and reason.",
							       labels, num(count));
						}
					} else if (json_is_number(cv) && strcmp(ck, "hart")) {
						name_part(a, sizeof(a), ck);
						snprintf(name, sizeof(name), "skiff_vm_%s_total", a);
						snprintf(labels, sizeof(labels), "%s,hart=\"%ld\"", lbl, hart);
						sample(o, name, "counter", "A per-hart counter of the VMM.", labels, num(cv));
					}
				}
			}
		} else if (json_is_array(v)) {
			device_metrics(o, lbl, key, v);
		} else if (json_is_object(v) && !strcmp(key, "memory")) {
			const char *k2;
			json_t *v2;
			json_object_foreach(v, k2, v2) {
				if (!json_is_number(v2))
					continue;
				name_part(b, sizeof(b), k2);
				snprintf(name, sizeof(name), "skiff_vm_memory_%s", b);
				bool total = strlen(b) > 6 && !strcmp(b + strlen(b) - 6, "_total");
				sample(o, name, total ? "counter" : "gauge",
				       "Guest memory as the VMM sees it (configured, backed by the host, "
				       "held or given back by the balloon).", lbl, num(v2));
			}
		} else if (json_is_object(v)) {
			const char *k2;
			json_t *v2;
			name_part(a, sizeof(a), key);
			const char *state = json_string_value(json_object_get(v, "state"));
			if (!strcmp(key, "vmm") && state)
				sample(o, "skiff_vm_paused", "gauge", "1 while the VM is paused.", lbl,
				       !strcmp(state, "Paused"));
			json_object_foreach(v, k2, v2) {
				if (!json_is_number(v2))
					continue;
				name_part(b, sizeof(b), k2);
				if (!strcmp(key, "vmm") && !strcmp(k2, "uptime_ms")) {
					sample(o, "skiff_vm_guest_uptime_seconds", "gauge",
					       "Time since the guest was started (InstanceStart).", lbl, num(v2) / 1000.0);
					continue;
				}
				if (!strcmp(key, "api_server") && (!strcmp(k2, "requests") || !strcmp(k2, "failed_requests"))) {
					snprintf(name, sizeof(name), "skiff_vm_api_%s_total", b);
					sample(o, name, "counter", "Requests to the VM's own API.", lbl, num(v2));
					continue;
				}
				snprintf(name, sizeof(name), "skiff_vmm_%s_%s", a, b);
				sample(o, name, "untyped", "A value from the VMM's metrics.", lbl, num(v2));
			}
		}
	}
}

/* What the text needs of one VM, copied under the daemon's lock so that
 * the VMMs are asked with no lock held (a busy VMM holds up only this
 * request). */
struct vm_view {
	char lbl[256];
	bool running;
	unsigned vcpus;
	uint64_t mem_mib;
	pid_t pid;             /* the process that runs the guest */
	int64_t started_at;
	char *sock;            /* its API socket */
	char *user_path;       /* the definition's metrics file, or NULL */
	char *own_path;        /* else run/metrics.json */
};

static void process_metrics(struct out *o, struct skiffd *d, const struct vm_view *v)
{
	struct skiffd_proc_stat st;
	const char *lbl = v->lbl;
	if (skiffd_read_proc_stat(v->pid, &st))
		return;
	char labels[512];
	double tck = d->clk_tck > 0 ? (double)d->clk_tck : 100.0;
	snprintf(labels, sizeof(labels), "%s,mode=\"user\"", lbl);
	sample(o, "skiff_vm_cpu_seconds_total", "counter",
	       "Host CPU time used by the VM's VMM process (all its threads).", labels, (double)st.utime / tck);
	snprintf(labels, sizeof(labels), "%s,mode=\"system\"", lbl);
	sample(o, "skiff_vm_cpu_seconds_total", "counter",
	       "Host CPU time used by the VM's VMM process (all its threads).", labels, (double)st.stime / tck);
	sample(o, "skiff_vm_resident_memory_bytes", "gauge",
	       "Host memory resident for the VM's VMM process.", lbl, (double)st.rss_pages * (double)d->page_size);
	sample(o, "skiff_vm_threads", "gauge", "Threads of the VM's VMM process.", lbl, (double)st.threads);
	sample(o, "skiff_vm_process_start_time_seconds", "gauge",
	       "When the VM's VMM process started (unix time).", lbl, (double)v->started_at);

	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/io", (int)v->pid);
	if (fd_read_small(path, buf, sizeof(buf)) > 0) {
		char *p = strstr(buf, "\nread_bytes: "), *q = strstr(buf, "\nwrite_bytes: ");
		if (p && q) {
			unsigned long long rb = strtoull(p + 13, NULL, 10);
			unsigned long long wb = strtoull(q + 14, NULL, 10);
			sample(o, "skiff_vm_host_read_bytes_total", "counter",
			       "Bytes the VMM process read from host storage.", lbl, (double)rb);
			sample(o, "skiff_vm_host_write_bytes_total", "counter",
			       "Bytes the VMM process wrote to host storage.", lbl, (double)wb);
		}
	}

	/* The VMM's own counters: have it write them now, then read them. */
	struct uhttp_reply r;
	char err[256];
	if (v->sock && (v->user_path || v->own_path) &&
	    uhttp_call(v->sock, "PUT", "/actions", "{\"action_type\":\"FlushMetrics\"}", 2000, &r, err,
		       sizeof(err)) == 0) {
		bool flushed = r.status == 204;
		uhttp_reply_free(&r);
		char *line = flushed ? last_metrics_line(v->user_path ? v->user_path : v->own_path, !v->user_path) :
			     NULL;
		json_t *m = line ? json_loads(line, 0, NULL) : NULL;
		if (json_is_object(m))
			vmm_metrics(o, lbl, m);
		json_decref(m);
		free(line);
	}
}

char *skiffd_metrics_text(struct skiffd *d)
{
	struct out o = { 0 };
	size_t counts[2] = { 0 }; /* stopped, running */
	size_t nv = 0;
	pthread_mutex_lock(&d->lock);
	for (struct skiffd_vm *vm = d->vms; vm; vm = vm->next)
		nv++;
	struct vm_view *views = calloc(nv ? nv : 1, sizeof(*views));
	nv = 0;
	for (struct skiffd_vm *vm = d->vms; vm && views; vm = vm->next) {
		if (vm->creating)
			continue;
		struct vm_view *v = &views[nv++];
		/* ids and names are [A-Za-z0-9_-]: nothing to escape. */
		snprintf(v->lbl, sizeof(v->lbl), "vm=\"%s\",name=\"%s\"", vm->id, vm->name ? vm->name : "");
		v->running = vm->pid > 0;
		v->vcpus = vm->vcpus;
		v->mem_mib = vm->mem_mib;
		v->pid = vm->vmm_pid > 0 ? vm->vmm_pid : vm->pid;
		v->started_at = vm->started_at;
		if (v->running) {
			const char *user = json_string_value(json_object_get(json_object_get(vm->config, "metrics"),
									     "metrics_path"));
			v->sock = skiffd_vm_sock(vm, "api.sock");
			v->user_path = user ? strdup(user) : NULL;
			v->own_path = user ? NULL : skiffd_vm_run_path(vm, "metrics.json");
		}
		counts[v->running]++;
	}
	uint64_t mem_running = skiffd_running_mem_mib(d);
	pthread_mutex_unlock(&d->lock);
	if (!views)
		return NULL;

	sample(&o, "skiffd_mem_limit_bytes", "gauge",
	       "Guest memory skiffd lets running VMs have in total (--mem-limit).", "",
	       (double)d->mem_limit_mib * 1048576.0);
	sample(&o, "skiffd_mem_running_bytes", "gauge", "Guest memory configured for the running VMs.", "",
	       (double)mem_running * 1048576.0);
	sample(&o, "skiffd_vms", "gauge", "VMs known to skiffd, by state.", "state=\"running\"", (double)counts[1]);
	sample(&o, "skiffd_vms", "gauge", "VMs known to skiffd, by state.", "state=\"stopped\"", (double)counts[0]);

	for (size_t i = 0; i < nv; i++) {
		struct vm_view *v = &views[i];
		sample(&o, "skiff_vm_running", "gauge", "1 while the VM's VMM process runs.", v->lbl, v->running);
		sample(&o, "skiff_vm_vcpus", "gauge", "vCPUs configured.", v->lbl, v->vcpus);
		sample(&o, "skiff_vm_memory_configured_bytes", "gauge", "Guest memory configured.", v->lbl,
		       (double)v->mem_mib * 1048576.0);
		if (v->running)
			process_metrics(&o, d, v);
		free(v->sock);
		free(v->user_path);
		free(v->own_path);
	}
	free(views);

	size_t total = 1;
	for (size_t i = 0; i < o.n; i++)
		total += o.fam[i].len;
	char *text = o.oom ? NULL : malloc(total);
	size_t at = 0;
	for (size_t i = 0; i < o.n; i++) {
		if (text && o.fam[i].text) {
			memcpy(text + at, o.fam[i].text, o.fam[i].len);
			at += o.fam[i].len;
		}
		free(o.fam[i].name);
		free(o.fam[i].text);
	}
	free(o.fam);
	if (text)
		text[at] = 0;
	return text;
}
