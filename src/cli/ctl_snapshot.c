/*
 * `skiff snapshot VM DIR`, `skiff restore DIR` and `skiff clone VM N`: the
 * snapshot commands for VMs run by skiffd (its routes are in
 * src/daemon/routes.c and snapshots.c).
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/ctl.h"

enum { OPT_SOCKET = 1000, OPT_DIFF, OPT_NAME };

static const struct option opts[] = {
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "diff", no_argument, NULL, OPT_DIFF },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "help", no_argument, NULL, 'h' },
	{ 0 }
};

/* DIR as skiffd must see it: absolute (skiffd does not run here). */
static char *absolute(const char *p)
{
	if (p[0] == '/')
		return strdup(p);
	char cwd[PATH_MAX], *r = NULL;
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	return asprintf(&r, "%s/%s", cwd, p) < 0 ? NULL : r;
}

static int parse(struct ctl *c, int argc, char **argv, const char *usage, int nargs,
		 bool *diff, const char **name)
{
	int o;
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (o == OPT_SOCKET) {
			c->socket = optarg;
		} else if (o == OPT_DIFF && diff) {
			*diff = true;
		} else if (o == OPT_NAME && name) {
			*name = optarg;
		} else if (o == 'h') {
			fputs(usage, stdout);
			return 0;
		} else {
			fprintf(stderr, "skiff %s: %s '%s'\n%s", c->cmd,
				o == ':' ? "a value is missing after" : "unknown option",
				argv[optind - 1], usage);
			return 64;
		}
	}
	if (argc - optind != nargs) {
		fputs(usage, stderr);
		return 64;
	}
	return -1;
}

int ctl_snapshot(struct ctl *c, int argc, char **argv)
{
	static const char usage[] =
		"usage: skiff snapshot [--diff] VM DIR\n"
		"Save the running VM into DIR (its state, memory and writable disks); the VM\n"
		"pauses meanwhile and runs on. --diff writes only the memory changed since\n"
		"the VM's last snapshot (it needs track_dirty_pages in its machine-config).\n";
	bool diff = false;
	int r = parse(c, argc, argv, usage, 2, &diff, NULL);
	if (r >= 0)
		return r;
	char *dir = absolute(argv[optind + 1]), *path = NULL;
	json_t *body = dir ? json_pack("{s:s,s:s}", "dir", dir, "snapshot_type", diff ? "Diff" : "Full")
			   : NULL;
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (!text || asprintf(&path, "/vms/%s/snapshot", argv[optind]) < 0) {
		fprintf(stderr, "skiff snapshot: out of memory\n");
		r = 1;
	} else {
		r = ctl_call(c, "PUT", path, text, NULL) ? 1 : 0;
		if (!r)
			printf("%s\n", dir);
	}
	free(path);
	free(text);
	free(dir);
	json_decref(body);
	return r;
}

int ctl_restore(struct ctl *c, int argc, char **argv)
{
	static const char usage[] =
		"usage: skiff restore [--name NAME] DIR\n"
		"Make a new VM from the snapshot in DIR (see skiff snapshot) and start it\n"
		"where the snapshot left off; prints its id.\n";
	const char *name = NULL;
	int r = parse(c, argc, argv, usage, 1, NULL, &name);
	if (r >= 0)
		return r;
	char *dir = absolute(argv[optind]);
	json_t *body = dir ? json_pack("{s:s,s:s?}", "snapshot", dir, "name", name) : NULL;
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_t *out = NULL;
	if (!text) {
		fprintf(stderr, "skiff restore: out of memory\n");
		r = 1;
	} else {
		r = ctl_call(c, "POST", "/vms", text, &out) ? 1 : 0;
		if (!r)
			printf("%s\n", json_string_value(json_object_get(out, "id")) ?: "?");
	}
	json_decref(out);
	free(text);
	free(dir);
	json_decref(body);
	return r;
}

int ctl_clone(struct ctl *c, int argc, char **argv)
{
	static const char usage[] =
		"usage: skiff clone VM N\n"
		"Snapshot the running VM and start N clones of it, each with its own vsock\n"
		"CID, MAC addresses, copies of its writable disks and host sockets; prints\n"
		"their ids.\n";
	int r = parse(c, argc, argv, usage, 2, NULL, NULL);
	if (r >= 0)
		return r;
	char *end;
	long n = strtol(argv[optind + 1], &end, 10);
	if (*end || n < 1 || n > 64) {
		fprintf(stderr, "skiff clone: N must be a number from 1 to 64\n");
		return 64;
	}
	char *path = NULL, body[48];
	snprintf(body, sizeof(body), "{\"count\":%ld}", n);
	json_t *out = NULL;
	if (asprintf(&path, "/vms/%s/clone", argv[optind]) < 0) {
		fprintf(stderr, "skiff clone: out of memory\n");
		return 1;
	}
	r = ctl_call(c, "POST", path, body, &out) ? 1 : 0;
	json_t *ids = json_object_get(out, "clones");
	for (size_t k = 0; !r && k < json_array_size(ids); k++)
		printf("%s\n", json_string_value(json_array_get(ids, k)));
	json_decref(out);
	free(path);
	return r;
}
