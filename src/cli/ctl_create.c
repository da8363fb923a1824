/*
 * `skiff create`: define a VM in skiffd. The definition is one struct
 * vm_config, as for `skiff run`: a --config document is parsed into it
 * (with the VMM's own checks), the options apply over it, and the one
 * writer (vm_config_to_json) turns it into the POST /vms body. skiffd's
 * own members of that body (id, name, image) stay outside the VM's
 * configuration, as skiffd stores them (vm.json: id, name, config).
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/size.h"
#include "cli/ctl.h"
#include "cli/devopts.h"
#include "vmm/config_json.h"

static const char usage[] =
	"usage: skiff create [options]\n"
	"\n"
	"Define a VM in skiffd (it is not started; see --start). Prints its id.\n"
	"\n"
	"  --config FILE      a VM definition: the sections of a skiff run\n"
	"                     --config-file (boot-source, machine-config, drives, ...)\n"
	"  --name NAME        a name to use instead of the id (letters, digits, - _)\n"
	"  --id ID            choose the id (default: vm- and 8 hex digits)\n"
	"  --image NAME       a system image (skiff image ls): its kernel, initramfs and\n"
	"                     command line, a copy-on-write overlay of its disk kept with\n"
	"                     the VM as /dev/vda, a user network unless --net is given\n"
	"  --ssh-port PORT    with --image: forward host 127.0.0.1:PORT to the guest's SSH\n"
	"  --kernel IMAGE     kernel (default: the default guest, if built)\n"
	"  --initrd FILE      initial ramdisk\n"
	"  --append CMDLINE   kernel command line\n"
	"  --cpus N           harts\n"
	"  --mem SIZE         guest memory (MiB, or with K/M/G)\n"
	"  --disk PATH[,ro][,format=raw|qcow2][,root][,serial=S][,bw=B][,iops=N]\n"
	"                     a disk (repeatable), as for skiff run\n"
	"  --net user[,hostfwd=...][,mac=M] | tap,ifname=NAME[,mac=M]\n"
	"                     a network interface (repeatable), as for skiff run\n"
	"  --start            start it too\n"
	"  --json             print the new VM as JSON instead of its id\n"
	"  --socket PATH      skiffd's socket (default: $SKIFF_SOCKET, then skiffd's default)\n";

static const struct option opts[] = {
	{ "config", required_argument, NULL, 'c' }, { "name", required_argument, NULL, 'n' },
	{ "id", required_argument, NULL, 'i' }, { "kernel", required_argument, NULL, 'k' },
	{ "initrd", required_argument, NULL, 'r' }, { "append", required_argument, NULL, 'a' },
	{ "cpus", required_argument, NULL, 'C' }, { "mem", required_argument, NULL, 'm' },
	{ "disk", required_argument, NULL, 'D' }, { "net", required_argument, NULL, 'N' },
	{ "start", no_argument, NULL, 's' }, { "json", no_argument, NULL, CTL_OPT_JSON },
	{ "image", required_argument, NULL, 'G' }, { "ssh-port", required_argument, NULL, 'H' },
	{ "socket", required_argument, NULL, CTL_OPT_SOCKET }, { "help", no_argument, NULL, 'h' },
	{ 0 }
};

/* What the options say besides the VM's configuration. */
struct create_opts {
	const char *config, *name, *id, *image;
	long ssh_port;
	bool json, start, help, machine_given;
};

/* A path as skiffd must see it: skiffd runs the VM elsewhere. */
static char *abs_path(const char *p)
{
	char *r = realpath(p, NULL);
	if (r)
		return r;
	if (p[0] == '/')
		return strdup(p);
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return strdup(p);
	return asprintf(&r, "%s/%s", cwd, p) < 0 ? NULL : r;
}

/* Relative path members of a --config file (vm_config_json_paths), made
 * absolute before the document is parsed. */
static int make_absolute(json_t *obj, const char *key, const char *path, const char *where, void *ctx)
{
	(void)where;
	(void)ctx;
	if (path[0] != '/') {
		char *a = abs_path(path);
		if (a)
			json_object_set_new(obj, key, json_string(a));
		free(a);
	}
	return 0;
}

/* *slot = abs_path(p) (or a copy of p); false if out of memory. */
static bool set_path(char **slot, const char *p, bool absolute)
{
	char *v = absolute ? abs_path(p) : strdup(p);
	if (!v)
		return false;
	free(*slot);
	*slot = v;
	return true;
}

/*
 * With --image, a boot-source that names no kernel takes the image's (skiffd
 * fills it in): its initrd_path and boot_args apply as --initrd and --append
 * would, and the section is left for the image. 0, or -1 with a message.
 */
static int image_boot_source(json_t *doc, struct vm_config *cfg, char *err, size_t errlen)
{
	json_t *bs = json_object_get(doc, "boot-source");
	if (!json_is_object(bs) || json_object_get(bs, "kernel_image_path"))
		return 0;
	const char *key;
	json_t *v;
	json_object_foreach(bs, key, v) {
		char **slot = !strcmp(key, "initrd_path") ? &cfg->initrd :
			      !strcmp(key, "boot_args") ? &cfg->append : NULL;
		if (!slot) {
			snprintf(err, errlen, "boot-source.%s: unknown field (known fields: kernel_image_path, "
				 "initrd_path, boot_args)", key);
			return -1;
		}
		if (!json_is_string(v)) {
			snprintf(err, errlen, "boot-source.%s: must be a string", key);
			return -1;
		}
		if (!set_path(slot, json_string_value(v), false)) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	json_object_del(doc, "boot-source");
	return 0;
}

/* The --config document into cfg. 0, or 64 with the message printed. */
static int read_config(struct vm_config *cfg, struct create_opts *o)
{
	char err[1024], inner[768];
	json_t *doc = vmm_config_file_read(o->config, err, sizeof(err));
	if (!doc) {
		fprintf(stderr, "skiff create: --config %s\n", err);
		return 64;
	}
	vm_config_json_paths(doc, make_absolute, NULL);
	o->machine_given = json_object_get(doc, "machine-config") != NULL;
	const char *e = o->image && image_boot_source(doc, cfg, inner, sizeof(inner)) ? inner : NULL;
	if (!e)
		e = vm_config_from_json(cfg, doc, inner, sizeof(inner));
	json_decref(doc);
	if (e) {
		fprintf(stderr, "skiff create: --config %s: %s\n", o->config, e);
		return 64;
	}
	return 0;
}

/* The options that decide how the others are read, looked at first: the
 * --config (the last one given; read before the others, which then apply
 * over it), --image (how its boot-source is read) and --help (which reads
 * nothing). */
static void prescan(int argc, char **argv, struct create_opts *o)
{
	int opt;
	optind = 0; /* glibc: start afresh */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (opt == 'c')
			o->config = optarg;
		else if (opt == 'G')
			o->image = optarg;
		o->help |= opt == 'h';
	}
	optind = 0;
}

static long whole(const char *s, long lo, long hi)
{
	char *end;
	long v = strtol(s, &end, 10);
	return *end || end == s || v < lo || v > hi ? 0 : v;
}

/* One option into cfg or o. 0, -1 for one that is not ours, or 64 with a
 * message. */
static int apply_option(struct vm_config *cfg, struct create_opts *o, int opt, const char *arg)
{
	char err[1024];
	uint64_t mem = 0;
	switch (opt) {
	case 'c':
	case 'h':
		return 0;
	case 'n': o->name = arg; return 0;
	case 'i': o->id = arg; return 0;
	case 'G': o->image = arg; return 0;
	case 's': o->start = true; return 0;
	case 'k':
	case 'r':
	case 'a':
		if (!set_path(opt == 'k' ? &cfg->kernel : opt == 'r' ? &cfg->initrd : &cfg->append, arg,
			      opt != 'a')) {
			fprintf(stderr, "skiff create: out of memory\n");
			return 64;
		}
		return 0;
	case 'C':
		if (!(cfg->ncpus = (unsigned)whole(arg, 1, 64))) {
			fprintf(stderr, "skiff create: --cpus %s: not a number of harts\n", arg);
			return 64;
		}
		o->machine_given = true;
		return 0;
	case 'm':
		if (size_parse(arg, 1ull << 20, &mem) || !mem || mem % (1u << 20)) {
			fprintf(stderr, "skiff create: --mem %s: not a size in whole MiB (examples: 512, 512M, 2G)\n",
				arg);
			return 64;
		}
		cfg->mem_bytes = mem;
		o->machine_given = true;
		return 0;
	case 'D':
	case 'N':
		if ((opt == 'D' ? devopt_disk : devopt_net)(cfg, arg, err, sizeof(err))) {
			fprintf(stderr, "skiff create: %s\n", err);
			return 64;
		}
		return 0;
	case 'H':
		if (!(o->ssh_port = whole(arg, 1, 65535))) {
			fprintf(stderr, "skiff create: --ssh-port %s: a TCP port, 1 to 65535\n", arg);
			return 64;
		}
		return 0;
	}
	return -1;
}

static char *default_guest(const char *file)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char *p = NULL;
	int r = xdg && *xdg ? asprintf(&p, "%s/skiff/default/%s", xdg, file)
			    : asprintf(&p, "%s/.cache/skiff/default/%s", home ? home : ".", file);
	return r < 0 ? NULL : p;
}

/* What the options leave to defaults: the image's SSH forward, relative
 * disks made absolute, and with no kernel and no image the default guest
 * (as skiff run boots it). 0, or 64 with a message. */
static int settle(struct vm_config *cfg, const struct create_opts *o)
{
	char err[1024];
	if (o->ssh_port && !o->image) {
		fprintf(stderr, "skiff create: --ssh-port goes with --image NAME\n");
		return 64;
	}
	if (o->ssh_port && cfg->nnets) {
		fprintf(stderr, "skiff create: --ssh-port makes the VM's user network; with --net, add "
			"hostfwd=tcp:127.0.0.1:%ld-:22 to it instead\n", o->ssh_port);
		return 64;
	}
	if (o->ssh_port) {
		char net[64];
		snprintf(net, sizeof(net), "user,hostfwd=tcp:127.0.0.1:%ld-:22", o->ssh_port);
		if (devopt_net(cfg, net, err, sizeof(err))) {
			fprintf(stderr, "skiff create: %s\n", err);
			return 64;
		}
	}
	for (size_t i = 0; i < cfg->ndrives; i++)
		if (cfg->drives[i].path[0] != '/' && !set_path(&cfg->drives[i].path, cfg->drives[i].path, true))
			return 64;
	if (o->image || cfg->kernel)
		return 0;
	struct stat st;
	cfg->kernel = default_guest("Image");
	if (!cfg->kernel || stat(cfg->kernel, &st)) {
		fprintf(stderr, "skiff create: no --kernel, and the default guest is not built (looked for %s); "
			"build it with guest/build-image.sh\n", cfg->kernel ? cfg->kernel : "?");
		return 64;
	}
	if (!cfg->initrd && (cfg->initrd = default_guest("initrd.cpio.gz")) && stat(cfg->initrd, &st)) {
		free(cfg->initrd);
		cfg->initrd = NULL;
	}
	return 0;
}

/*
 * The POST /vms body: the configuration as the one writer writes it, plus
 * skiffd's id, name and image. With --image and no machine-config from the
 * user, that section is left out, so the image's default (1 GiB) applies.
 */
static char *body_of(const struct vm_config *cfg, const struct create_opts *o)
{
	json_t *doc = vm_config_to_json(cfg);
	if (!doc)
		return NULL;
	if (o->image && !o->machine_given)
		json_object_del(doc, "machine-config");
	const char *const extra[][2] = { { "id", o->id }, { "name", o->name }, { "image", o->image } };
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
		if (extra[i][1])
			json_object_set_new(doc, extra[i][0], json_string(extra[i][1]));
	char *body = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(doc);
	return body;
}

/* Send it; with --start start it; print its id or (--json) the VM. */
static int post(struct ctl *c, const char *body, const struct create_opts *o)
{
	char err[1024];
	json_t *vm = NULL;
	if (ctl_call(c, "POST", "/vms", body, &vm)) {
		json_decref(vm);
		return 1;
	}
	int rc = 0;
	const char *newid = json_string_value(json_object_get(vm, "id"));
	if (o->start && newid && ctl_action(c, newid, "InstanceStart", err, sizeof(err))) {
		fprintf(stderr, "skiff create: created %s but could not start it: %s\n", newid, err);
		rc = 1;
	}
	if (o->json) {
		if (o->start && !rc) {
			json_t *now = NULL;
			char *p = ctl_vm_path(newid, NULL);
			if (p && ctl_call(c, "GET", p, NULL, &now) == 0 && now) {
				json_decref(vm);
				vm = now;
			}
			free(p);
		}
		ctl_print_json(vm);
	} else if (newid) {
		puts(newid);
	}
	json_decref(vm);
	return rc;
}

static int create_vm(struct ctl *c, int argc, char **argv, struct vm_config *cfg)
{
	struct create_opts o = { 0 };
	int rc, opt;
	prescan(argc, argv, &o);
	if (o.help) {
		fputs(usage, stdout);
		return 0;
	}
	if (o.config && (rc = read_config(cfg, &o)))
		return rc;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ctl_common_opt(c, opt, &o.json))
			continue;
		rc = apply_option(cfg, &o, opt, optarg);
		if (rc < 0)
			return ctl_bad_opt(c, opt, argv);
		if (rc)
			return rc;
	}
	if (optind < argc) {
		fprintf(stderr, "skiff create: unexpected argument '%s' (see skiff create --help)\n", argv[optind]);
		return 64;
	}
	if ((rc = settle(cfg, &o)))
		return rc;
	char *body = body_of(cfg, &o);
	if (!body) {
		fprintf(stderr, "skiff create: out of memory\n");
		return 1;
	}
	rc = post(c, body, &o);
	free(body);
	return rc;
}

int ctl_create(struct ctl *c, int argc, char **argv)
{
	struct vm_config *cfg = malloc(sizeof(*cfg));
	if (!cfg) {
		fprintf(stderr, "skiff create: out of memory\n");
		return 1;
	}
	vm_config_init(cfg);
	int rc = create_vm(c, argc, argv, cfg);
	vm_config_free(cfg);
	free(cfg);
	return rc;
}
