/* The host files a confined VMM may reach; see sandbox_paths.h. */
#include "vmm/sandbox_paths.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/config.h"

#define RESOLV_CONF "/etc/resolv.conf"

char *sandbox_path_absolute(const char *path)
{
	if (!path || !*path)
		return NULL;
	char cwd[PATH_MAX] = "";
	if (path[0] != '/' && !getcwd(cwd, sizeof(cwd)))
		return NULL;
	size_t len = strlen(cwd) + 1 + strlen(path) + 1;
	char *in = malloc(len), *out = malloc(len + 1);
	if (!in || !out) {
		free(in);
		free(out);
		return NULL;
	}
	snprintf(in, len, "%s/%s", cwd, path);
	/* Fold by name: "a/./b" is "a/b", "a/x/../b" is "a/b". */
	size_t o = 0;
	char *save = NULL;
	for (char *c = strtok_r(in, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, "..")) {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
			continue;
		}
		out[o++] = '/';
		memcpy(out + o, c, strlen(c));
		o += strlen(c);
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = 0;
	free(in);
	return out;
}

int sandbox_paths_add(struct sandbox_paths *p, const char *path, bool dir, bool write)
{
	char *abs = sandbox_path_absolute(path);
	if (!abs)
		return -1;
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->v[i].path, abs) && p->v[i].dir == dir) {
			p->v[i].write |= write;
			free(abs);
			return 0;
		}
	struct sandbox_path *v = realloc(p->v, (p->n + 1) * sizeof(*v));
	if (!v) {
		free(abs);
		return -1;
	}
	p->v = v;
	p->v[p->n++] = (struct sandbox_path){ abs, dir, write };
	return 0;
}

/* The directory `path` lies in. */
static int add_parent(struct sandbox_paths *p, const char *path, bool write)
{
	char *abs = sandbox_path_absolute(path);
	if (!abs)
		return -1;
	char *slash = strrchr(abs, '/');
	slash[slash == abs ? 1 : 0] = 0;
	int r = sandbox_paths_add(p, abs, true, write);
	free(abs);
	return r;
}

int sandbox_paths_add_socket(struct sandbox_paths *p, const char *sock)
{
	return add_parent(p, sock, true);
}

/* A file the VMM writes that may not exist yet (a log, metrics): the file
 * when it exists, else its directory, where the VMM makes it. */
static int add_output(struct sandbox_paths *p, const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode))
		return sandbox_paths_add(p, path, false, true);
	return add_parent(p, path, true);
}

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int sandbox_paths_of_config(struct sandbox_paths *p, const struct vm_config *cfg)
{
	int r = 0;
	if (cfg->kernel)
		r |= sandbox_paths_add(p, cfg->kernel, false, false);
	if (cfg->initrd)
		r |= sandbox_paths_add(p, cfg->initrd, false, false);
	if (cfg->dump_dtb)
		r |= add_parent(p, cfg->dump_dtb, true);
	for (size_t i = 0; i < cfg->ndrives; i++) {
		const struct vm_drive *d = &cfg->drives[i];
		/* A backing chain resolves beneath the image's directory or a
		 * listed one (directories or block devices), read only. */
		if (d->backing) {
			r |= add_parent(p, d->path, false);
			for (size_t k = 0; k < d->nbacking_dirs; k++)
				r |= sandbox_paths_add(p, d->backing_dirs[k], is_dir(d->backing_dirs[k]), false);
		}
		r |= sandbox_paths_add(p, d->path, false, !d->read_only);
	}
	for (size_t i = 0; i < cfg->nshares; i++)
		r |= sandbox_paths_add(p, cfg->shares[i].path, true, !cfg->shares[i].read_only);
	for (size_t i = 0; i < cfg->nports; i++)
		r |= sandbox_paths_add_socket(p, cfg->ports[i].uds_path);
	if (cfg->vsock && cfg->vsock_uds)
		r |= sandbox_paths_add_socket(p, cfg->vsock_uds);
	for (size_t i = 0; i < cfg->nnets; i++) {
		if (cfg->nets[i].backend == VM_NET_TAP)
			r |= sandbox_paths_add(p, "/dev/net/tun", false, true);
		/* libslirp reads the host's resolver list when the guest asks
		 * its DNS forwarder (10.0.2.3), at run time. */
		struct stat st;
		if (cfg->nets[i].backend == VM_NET_USER && stat(RESOLV_CONF, &st) == 0)
			r |= sandbox_paths_add(p, RESOLV_CONF, false, false);
	}
	if (cfg->logger.log_path)
		r |= add_output(p, cfg->logger.log_path);
	if (cfg->metrics.path)
		r |= add_output(p, cfg->metrics.path);
	return r ? -1 : 0;
}

void sandbox_paths_free(struct sandbox_paths *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].path);
	free(p->v);
	p->v = NULL;
	p->n = 0;
}
