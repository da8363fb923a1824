/*
 * skiffd's state on disk: each VM's definition (vm.json) written atomically,
 * read back at startup, the VM table lookups, and a VM's JSON description
 * for the API. See skiffd.h for the layout.
 */
#include "daemon/skiffd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/uhttp.h"
#include "vmm/config_json.h"

void skiffd_log(const char *fmt, ...)
{
	char when[32];
	time_t t = time(NULL);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s skiffd: %s\n", when, msg);
}

char *skiffd_vm_path(const struct skiffd_vm *vm, const char *file)
{
	char *p = NULL;
	return asprintf(&p, "%s/%s", vm->dir, file) < 0 ? NULL : p;
}

int skiffd_write_atomic(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
	char *tmp = NULL;
	if (asprintf(&tmp, "%s.tmp", path) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	size_t done = 0;
	while (done < len) {
		ssize_t w = write(fd, data + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(err, errlen, "cannot write %s: %s", tmp, w < 0 ? strerror(errno) : "short write");
			close(fd);
			unlink(tmp);
			free(tmp);
			return -1;
		}
		done += (size_t)w;
	}
	if (fsync(fd) || close(fd)) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		unlink(tmp);
		free(tmp);
		return -1;
	}
	if (rename(tmp, path)) {
		snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	/* Make the rename itself durable. */
	char *dcopy = strdup(path);
	if (dcopy) {
		int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		free(dcopy);
	}
	return 0;
}

static json_t *exit_json(const struct skiffd_exit *e)
{
	json_t *o = json_pack("{s:b,s:b,s:I}", "known", (int)e->known, "stopped", (int)e->stopped,
			      "at", (json_int_t)e->at);
	if (o && e->known) {
		if (e->signal)
			json_object_set_new(o, "signal", json_integer(e->signal));
		else
			json_object_set_new(o, "code", json_integer(e->code));
	}
	return o;
}

int skiffd_save_vm(const struct skiffd_vm *vm, char *err, size_t errlen)
{
	json_t *o = json_pack("{s:s,s:s?,s:I,s:O}", "id", vm->id, "name", vm->name,
			      "created_at", (json_int_t)vm->created_at, "config", vm->config);
	if (o && vm->has_exit)
		json_object_set_new(o, "last_exit", exit_json(&vm->last_exit));
	if (o && vm->restore)
		json_object_set(o, "restore", vm->restore);
	if (o && vm->jail_uid)
		json_object_set_new(o, "jail_uid", json_integer(vm->jail_uid));
	char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	char *path = skiffd_vm_path(vm, "vm.json");
	if (!text || !path) {
		free(text);
		free(path);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	size_t n = strlen(text);
	char *withnl = realloc(text, n + 2);
	if (withnl) {
		text = withnl;
		text[n++] = '\n';
		text[n] = 0;
	}
	int r = skiffd_write_atomic(path, text, n, err, errlen);
	free(text);
	free(path);
	return r;
}

struct skiffd_vm *skiffd_vm_alloc(const struct skiffd *d, const char *id, const char *name)
{
	struct skiffd_vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return NULL;
	pthread_mutex_init(&vm->op, NULL);
	vm->refs = 1;
	if (!(vm->id = strdup(id)) || (name && !(vm->name = strdup(name))) ||
	    asprintf(&vm->dir, "%s/%s", d->vms_dir, id) < 0) {
		vm->dir = NULL;
		skiffd_vm_free(vm);
		return NULL;
	}
	return vm;
}

void skiffd_vm_free(struct skiffd_vm *vm)
{
	if (!vm)
		return;
	pthread_mutex_destroy(&vm->op);
	free(vm->id);
	free(vm->name);
	free(vm->dir);
	free(vm->cgroup);
	json_decref(vm->config);
	json_decref(vm->restore);
	free(vm);
}

/* vcpus and memory from the machine-config section (the VMM's defaults
 * when absent). */
void skiffd_vm_machine(struct skiffd_vm *vm)
{
	vm->vcpus = 1;
	vm->mem_mib = VM_DEFAULT_MEM_MIB;
	json_t *mc = json_object_get(vm->config, "machine-config");
	json_t *c = json_object_get(mc, "vcpu_count");
	json_t *m = json_object_get(mc, "mem_size_mib");
	if (json_is_integer(c) && json_integer_value(c) > 0)
		vm->vcpus = (unsigned)json_integer_value(c);
	if (json_is_integer(m) && json_integer_value(m) > 0)
		vm->mem_mib = (uint64_t)json_integer_value(m);
}

bool skiffd_id_ok(const char *s)
{
	size_t n = strlen(s);
	return n >= 1 && n <= SKIFFD_MAX_ID && s[0] != '-' &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == n;
}

static struct skiffd_vm *load_one(struct skiffd *d, const char *id)
{
	char *dir = NULL, *path = NULL;
	if (asprintf(&dir, "%s/%s", d->vms_dir, id) < 0)
		return NULL;
	if (asprintf(&path, "%s/vm.json", dir) < 0) {
		free(dir);
		return NULL;
	}
	json_error_t je;
	json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!doc) {
		if (access(path, F_OK) == 0)
			skiffd_log("%s: unreadable (%s, line %d); this VM is left out", path, je.text, je.line);
		else
			skiffd_log("%s: no vm.json (a VM whose creation was interrupted); left out", dir);
		free(dir);
		free(path);
		return NULL;
	}
	const char *jid = json_string_value(json_object_get(doc, "id"));
	json_t *name = json_object_get(doc, "name");
	json_t *cfg = json_object_get(doc, "config");
	if (!jid || strcmp(jid, id) || !json_is_object(cfg) || (name && !json_is_string(name) && !json_is_null(name))) {
		skiffd_log("%s: not a VM definition for `%s`; this VM is left out", path, id);
		json_decref(doc);
		free(dir);
		free(path);
		return NULL;
	}
	struct skiffd_vm *vm = skiffd_vm_alloc(d, id, json_is_string(name) ? json_string_value(name) : NULL);
	free(dir);
	if (!vm) {
		json_decref(doc);
		free(path);
		return NULL;
	}
	vm->refs = 0;   /* the table's alone */
	vm->config = json_incref(cfg);
	vm->created_at = json_integer_value(json_object_get(doc, "created_at"));
	/* Checked against the range and the other VMs in skiffd_load_vms. */
	json_int_t juid = json_integer_value(json_object_get(doc, "jail_uid"));
	vm->jail_uid = juid > 0 && juid < 0xffffffffll ? (uid_t)juid : 0;
	json_t *rs = json_object_get(doc, "restore");
	if (json_is_object(rs))
		vm->restore = json_incref(rs);
	json_t *le = json_object_get(doc, "last_exit");
	if (json_is_object(le)) {
		vm->has_exit = true;
		vm->last_exit.known = json_is_true(json_object_get(le, "known"));
		vm->last_exit.stopped = json_is_true(json_object_get(le, "stopped"));
		vm->last_exit.code = (int)json_integer_value(json_object_get(le, "code"));
		vm->last_exit.signal = (int)json_integer_value(json_object_get(le, "signal"));
		vm->last_exit.at = json_integer_value(json_object_get(le, "at"));
	}
	skiffd_vm_machine(vm);
	json_decref(doc);
	free(path);
	return vm;
}

static int by_created(const void *a, const void *b)
{
	const struct skiffd_vm *x = *(struct skiffd_vm *const *)a, *y = *(struct skiffd_vm *const *)b;
	if (x->created_at != y->created_at)
		return x->created_at < y->created_at ? -1 : 1;
	return strcmp(x->id, y->id);
}

void skiffd_load_vms(struct skiffd *d)
{
	DIR *dir = opendir(d->vms_dir);
	if (!dir) {
		skiffd_log("%s: %s", d->vms_dir, strerror(errno));
		return;
	}
	struct skiffd_vm **all = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.' || !skiffd_id_ok(e->d_name))
			continue;
		struct skiffd_vm *vm = load_one(d, e->d_name);
		if (!vm)
			continue;
		struct skiffd_vm **na = realloc(all, (n + 1) * sizeof(*all));
		if (!na) {
			skiffd_vm_free(vm);
			break;
		}
		all = na;
		all[n++] = vm;
	}
	closedir(dir);
	if (n)
		qsort(all, n, sizeof(*all), by_created);
	struct skiffd_vm **tail = &d->vms;
	while (*tail)
		tail = &(*tail)->next;
	for (size_t i = 0; i < n; i++) {
		*tail = all[i];
		tail = &all[i]->next;
	}
	free(all);
	/* Each jailed VM keeps its uid across restarts of skiffd; one made by
	 * an older skiffd (none), or whose uid is outside this range or is
	 * another's, gets a new one, used from its next start (run/ is handed
	 * over then). */
	for (struct skiffd_vm *vm = d->vms; d->jail.on && vm; vm = vm->next) {
		uid_t had = vm->jail_uid;
		char err[512];
		if (skiffd_jail_assign(d, vm, err, sizeof(err))) {
			skiffd_log("vm %s: %s; it cannot start until one is", vm->id, err);
			continue;
		}
		if (vm->jail_uid == had)
			continue;
		if (had)
			skiffd_log("vm %s: jail uid %u is outside this skiffd's range or another VM's; it gets %u",
				   vm->id, (unsigned)had, (unsigned)vm->jail_uid);
		if (skiffd_save_vm(vm, err, sizeof(err)))
			skiffd_log("vm %s: %s", vm->id, err);
	}
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	int r = flag == FTW_DP ? rmdir(path) : unlink(path);
	return r && errno != ENOENT ? -1 : 0;
}

int skiffd_remove_vm_dir(const struct skiffd_vm *vm, char *err, size_t errlen)
{
	/* vm.json first: a half-removed directory is then ignored at startup. */
	char *def = skiffd_vm_path(vm, "vm.json");
	if (def && unlink(def) && errno != ENOENT) {
		snprintf(err, errlen, "cannot remove %s: %s", def, strerror(errno));
		free(def);
		return -1;
	}
	free(def);
	if (nftw(vm->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) && errno != ENOENT) {
		snprintf(err, errlen, "cannot remove %s: %s", vm->dir, strerror(errno));
		return -1;
	}
	return 0;
}

struct skiffd_vm *skiffd_find(struct skiffd *d, const char *key)
{
	for (struct skiffd_vm *vm = d->vms; vm; vm = vm->next)
		if (!vm->creating && !strcmp(vm->id, key))
			return vm;
	for (struct skiffd_vm *vm = d->vms; vm; vm = vm->next)
		if (!vm->creating && vm->name && !strcmp(vm->name, key))
			return vm;
	return NULL;
}

struct skiffd_vm *skiffd_get(struct skiffd *d, const char *key)
{
	struct skiffd_vm *vm = skiffd_find(d, key);
	if (vm)
		vm->refs++;
	return vm;
}

void skiffd_put(struct skiffd *d, struct skiffd_vm *vm)
{
	pthread_mutex_lock(&d->lock);
	bool last = --vm->refs == 0 && vm->removed;
	pthread_mutex_unlock(&d->lock);
	if (last)
		skiffd_vm_free(vm);
}

void skiffd_unlink(struct skiffd *d, struct skiffd_vm *vm)
{
	for (struct skiffd_vm **p = &d->vms; *p; p = &(*p)->next) {
		if (*p == vm) {
			*p = vm->next;
			break;
		}
	}
	vm->next = NULL;
	vm->removed = true;
}

/* The state the VM's own API at `sock` reports: running, paused,
 * starting; or unresponsive when it does not answer. */
static const char *live_state(const char *sock)
{
	struct uhttp_reply r;
	char err[256];
	const char *state = "unresponsive";
	if (uhttp_call(sock, "GET", "/", NULL, 2000, &r, err, sizeof(err)) == 0) {
		json_t *o = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
		const char *s = json_string_value(json_object_get(o, "state"));
		if (s && !strcmp(s, "Paused"))
			state = "paused";
		else if (s && !strcmp(s, "Not started"))
			state = "starting";
		else if (s)
			state = "running";
		json_decref(o);
		uhttp_reply_free(&r);
	}
	return state;
}

void skiffd_vm_json_live(json_t *o)
{
	const char *sock = json_string_value(json_object_get(o, "api_socket"));
	if (sock && !strcmp(json_string_value(json_object_get(o, "state")) ?: "", "running"))
		json_object_set_new(o, "state", json_string(live_state(sock)));
}

json_t *skiffd_vm_json(struct skiffd *d, struct skiffd_vm *vm)
{
	bool running = vm->pid > 0;
	const char *state = !running ? "stopped" : "running";
	char *api = skiffd_vm_sock(vm, "api.sock"), *con = skiffd_vm_sock(vm, "console.sock");
	char *log = skiffd_vm_path(vm, "console.log");
	json_t *o = json_pack("{s:s,s:s?,s:s,s:i,s:I,s:I,s:s?,s:s?,s:s?,s:s?,s:O}",
			      "id", vm->id, "name", vm->name, "state", state,
			      "vcpu_count", (int)vm->vcpus, "mem_size_mib", (json_int_t)vm->mem_mib,
			      "created_at", (json_int_t)vm->created_at,
			      "dir", vm->dir, "api_socket", api, "console_socket", con, "console_log", log,
			      "config", vm->config);
	free(api);
	free(con);
	free(log);
	if (!o)
		return NULL;
	if (running) {
		/* The process that runs the guest (in a jail, the child of the
		 * one skiffd started). */
		json_object_set_new(o, "pid", json_integer(vm->vmm_pid > 0 ? vm->vmm_pid : vm->pid));
		json_object_set_new(o, "started_at", json_integer(vm->started_at));
	} else {
		json_object_set_new(o, "pid", json_null());
	}
	if (vm->has_exit)
		json_object_set_new(o, "last_exit", exit_json(&vm->last_exit));
	if (d->jail.on)
		json_object_set_new(o, "jail_uid", vm->jail_uid ? json_integer(vm->jail_uid) : json_null());
	return o;
}
