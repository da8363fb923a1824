/*
 * `skiff run`: one VM in the foreground with its console on the terminal.
 * With no kernel given it boots the default guest built by
 * guest/build-image.sh into the user's cache directory.
 */
#include "cli/run.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "base/size.h"
#include "cli/console.h"
#include "cli/console_sock.h"
#include "cli/devopts.h"
#include "cli/image_run.h"
#include "cli/run_api.h"
#include "engine/engine.h"
#include "vmm/api_snapshot.h"
#include "vmm/jail.h"
#include "vmm/sandbox.h"
#include "vmm/sandbox_paths.h"
#include "vmm/config_json.h"
#include "vmm/vm.h"

#define STR(x) #x
#define XSTR(x) STR(x)
#define JAIL_ID_TEXT XSTR(JAIL_DEFAULT_ID)
#define DEFAULT_ENGINE "jit on x86-64 hosts, else interp"

static const char usage[] =
	"usage: skiff run [options]\n"
	"\n"
	"Boot a RISC-V Linux guest with its console on this terminal. With no\n"
	"--kernel, boots the default guest (see guest/build-image.sh).\n"
	"\n"
	"  --image NAME       boot the system image NAME (skiff image ls): its kernel,\n"
	"                     initramfs and command line, its disk as /dev/vda, a user\n"
	"                     network unless --net is given, 1 GiB unless --mem is\n"
	"  --ephemeral        with --image: write to a throw-away overlay of the disk\n"
	"  --ssh-port PORT    with --image: forward host 127.0.0.1:PORT to the guest's SSH\n"
	"  --kernel IMAGE     RISC-V Linux kernel Image (uncompressed)\n"
	"  --initrd FILE      initial ramdisk\n"
	"  --append CMDLINE   kernel command line (default: \"" VMM_DEFAULT_BOOT_ARGS "\",\n"
	"                     with --console virtio \"" VMM_DEFAULT_BOOT_ARGS_HVC "\")\n"
	"  --cpus N           number of harts, 1 to 8 (default 1)\n"
	"  --mem SIZE         guest memory: MiB, or with a K/M/G suffix (default 512M)\n"
	"  --disk PATH[,ro][,format=raw|qcow2][,serial=S][,root][,bw=RATE][,iops=N]\n"
	"                     a virtio-blk disk (repeatable; the first is /dev/vda;\n"
	"                     root boots from it with root=/dev/vdX; bw and iops\n"
	"                     limit bytes/s (K/M/G suffix) and operations/s)\n"
	"  --console uart|virtio  the guest console: ttyS0 (default) or hvc0\n"
	"  --no-rng           no virtio-rng entropy device\n"
	"  --no-agent         no guest agent port (org.qemu.guest_agent.0, which the\n"
	"                     VMM otherwise owns: skiff exec, cp, shutdown, clipboard)\n"
	"  --cpu-quota F      host CPU the VM may use, in cores (e.g. 0.25; at most --cpus)\n"
	"  --engine interp|jit|lockstep  how harts run guest code: the executor, the\n"
	"                     x86-64 JIT, or the JIT checked against the executor block\n"
	"                     by block (slow; debugging). Default: " DEFAULT_ENGINE "\n"
	"  --jit-cache SIZE   the JIT's code cache per hart (default 32M)\n"
	"  --net user[,hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT][,mac=M]\n"
	"  --net tap,ifname=NAME[,mac=M]\n"
	"                     a virtio-net NIC (repeatable): user-mode NAT (guest\n"
	"                     10.0.2.15, host loopback at 10.0.2.2; hostfwd repeatable)\n"
	"                     or a host TAP interface\n"
	"  --vsock cid=N,uds=PATH  virtio-vsock; the host side is the Unix socket PATH\n"
	"                     (CONNECT <port>) and PATH_<port> for guest connections\n"
	"  --balloon[=deflate_on_oom][,target=MIB][,stats=SECONDS]\n"
	"                     virtio-balloon with free page reporting\n"
	"  --share HOSTDIR[,tag=NAME][,ro]\n"
	"                     share a host directory over virtio-9p (repeatable); the\n"
	"                     guest mounts it at /mnt/NAME (default tags share0, ...)\n"
	"  --port NAME,uds=PATH  a named virtio-console port (repeatable), in the\n"
	"                     guest /dev/virtio-ports/NAME; skiff listens on the Unix\n"
	"                     socket PATH, one client at a time; guest output with no\n"
	"                     client connected is dropped\n"
	"  --dump-dtb FILE    write the generated device tree to FILE and go on\n"
	"  --api-sock PATH    serve the VM's HTTP API (Firecracker's) on a new Unix\n"
	"                     socket; with no --kernel or --config-file the VM waits\n"
	"                     to be configured and started through it\n"
	"  --config-file FILE configure the VM from a JSON file (Firecracker's\n"
	"                     sections, see docs/skiff-run.md) and start it\n"
	"  --id ID            instance id reported by the API (letters, digits, - and _)\n"
	"  --snapshot DIR     restore the VM saved in DIR (DIR/vmstate and DIR/memory,\n"
	"                     as `skiff snapshot` writes them) and run it; no VM options\n"
	"  --console-sock PATH  also serve the guest console on a new Unix socket, one\n"
	"                     client at a time (what `skiff console` attaches to)\n"
	"  --console-log-max SIZE  with --console-sock and standard output a file:\n"
	"                     keep that file under SIZE (the newest half stays)\n"
	"  --seccomp on|log|off  confine every thread of the VMM to the system calls\n"
	"                     its class needs (on: others end the VMM with a report;\n"
	"                     log: allowed and logged by the kernel). Default: on\n"
	"  --jail DIR         as root: run the VMM in its own mount, PID, IPC and UTS\n"
	"                     namespaces (and network, when it has no NIC and no API)\n"
	"                     with DIR as its root, holding only the files its\n"
	"                     configuration names, under --jail-uid/--jail-gid\n"
	"  --jail-uid N       the jailed VMM's uid (default " JAIL_ID_TEXT ")\n"
	"  --jail-gid N       the jailed VMM's gid (default " JAIL_ID_TEXT ")\n"
	"  --landlock on|off  as an ordinary user: restrict the VMM with Landlock to the\n"
	"                     files its configuration names (default on)\n"
	"  -h, --help         this text\n"
	"\n"
	"Console keys: C-a x quits, C-a h lists the keys, C-a C-a sends C-a.\n"
	"Exit status: 0 when the guest powers off (or after C-a x), 1 when it\n"
	"reports failure, 2 when it crashes, 64 for bad options.\n";

static char *cache_path(const char *file)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char *p = NULL;
	int r;
	if (xdg && *xdg)
		r = asprintf(&p, "%s/skiff/default/%s", xdg, file);
	else
		r = asprintf(&p, "%s/.cache/skiff/default/%s", home ? home : ".", file);
	return r < 0 ? NULL : p;
}

static bool readable(const char *path)
{
	struct stat st;
	return path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* NULL if `path` is a readable regular file, else why not. */
static const char *file_problem(const char *path)
{
	struct stat st;
	if (stat(path, &st))
		return strerror(errno);
	if (!S_ISREG(st.st_mode))
		return "not a regular file";
	if (access(path, R_OK))
		return strerror(errno);
	return NULL;
}

static void report_crash(struct vm *vm)
{
	const char *what = vm->crash.what ? vm->crash.what : "unknown";
	if (vm->crash.hart < vm->nharts)
		fprintf(stderr, "\r\nskiff: the guest died on hart %u: %s\r\n", vm->crash.hart, what);
	else
		fprintf(stderr, "\r\nskiff: the guest died: %s\r\n", what);
	if (vm->crash.at_pc) {
		fprintf(stderr, "skiff:   pc 0x%016" PRIx64 ", cause %" PRIu64 ", tval 0x%" PRIx64 "\r\n",
			vm->crash.pc, vm->crash.cause, vm->crash.tval);
		uint64_t scause = 0, sepc = 0, stval = 0;
		struct hart *h = vm->vcpu[vm->crash.hart].hart;
		hart_csr_read(h, 0x142, &scause);
		hart_csr_read(h, 0x141, &sepc);
		hart_csr_read(h, 0x143, &stval);
		fprintf(stderr, "skiff:   the trap before it: scause 0x%" PRIx64 " at sepc 0x%016" PRIx64
			", stval 0x%" PRIx64 "\r\n", scause, sepc, stval);
	} else {
		fprintf(stderr, "skiff:   pc not known: no hart stopped at an instruction for it\r\n");
	}
	uint8_t tail[1024];
	size_t n = vm_console_tail(vm, tail, sizeof(tail));
	/* Show the last few lines only. */
	size_t start = n, lines = 0;
	while (start > 0 && lines < 10)
		if (tail[--start] == '\n')
			lines++;
	fprintf(stderr, "skiff: last console output:\r\n%.*s\r\n", (int)(n - start), tail + start);
}

static size_t deliver(void *ctx, const uint8_t *buf, size_t n)
{
	return vm_console_input(ctx, buf, n);
}

/* A VM from `cfg` in the foreground, again after each guest reboot;
 * returns the exit status. */
static int run_plain(const struct vm_config *cfg, struct sandbox *sb)
{
	char err[512];
	struct console con;
	if (console_open(&con)) {
		fprintf(stderr, "skiff run: cannot set up the console: %s\n", strerror(errno));
		return 1;
	}
	struct vm_console vc = { .out = console_output, .ctx = &con };
	for (;;) {
		struct vm *vm = vm_create(cfg, &vc, sandbox_vm_threads(sb, cfg), err, sizeof(err));
		if (!vm) {
			console_close(&con);
			fprintf(stderr, "skiff run: %s\n", err);
			return 64;
		}
		/* Confined after the VM is built, before its first instruction;
		 * a reboot builds it again inside the same confinement. */
		const char *bad = NULL;
		if (sandbox_vm_built(sb, vm, cfg, err, sizeof(err)))
			bad = err;
		else if (vm_start(vm))
			bad = "cannot start the first hart";
		else if (sandbox_confine_self(sb, err, sizeof(err)))
			bad = err;
		if (bad) {
			console_close(&con);
			fprintf(stderr, "skiff run: %s\n", bad);
			vm_destroy(vm);
			return 1;
		}
		bool quit = false;
		while (!atomic_load(&vm->end)) {
			enum console_event ev = console_poll(&con, 50, deliver, vm);
			quit |= ev == CONSOLE_QUIT;
			if (ev == CONSOLE_QUIT || ev == CONSOLE_SIGNAL)
				vm_end(vm, VM_STOPPED);
		}
		enum vm_end why = vm_wait(vm);
		if (why == VM_REBOOT) {
			vm_destroy(vm);
			continue;
		}
		console_close(&con);
		int status = 0;
		if (why == VM_CRASHED) {
			report_crash(vm);
			status = 2;
		} else if (why == VM_FAILED) {
			fprintf(stderr, "skiff: the guest powered off reporting a failure through %s\n",
				vm->fail_why);
			status = 1;
		} else if (why == VM_STOPPED && quit) {
			status = CONSOLE_QUIT_STATUS;
		}
		vm_destroy(vm);
		return status;
	}
}

/* Long options without a short letter. */
enum { OPT_IMAGE = 0x100, OPT_EPHEMERAL, OPT_SSH_PORT, OPT_JAIL, OPT_JAIL_UID, OPT_JAIL_GID,
       OPT_LANDLOCK };

/* Replace the string *dst by a copy of v; -1 when out of memory. */
static int set_str(char **dst, const char *v)
{
	char *copy = v ? strdup(v) : NULL;
	if (v && !copy)
		return -1;
	free(*dst);
	*dst = copy;
	return 0;
}

/* The --config-file among the options, if any (the last one given): it is
 * read before the other options, which then apply over it. None with
 * --help, which reads nothing. */
static const char *config_file_option(int argc, char **argv, const struct option *opts)
{
	const char *file = NULL;
	bool help = false;
	int o;
	optind = 0; /* glibc: start afresh */
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (o == 'F')
			file = optarg;
		help |= o == 'h';
	}
	return help ? NULL : file;
}

/* Read the --config-file `path` into cfg (which holds the defaults). */
static int read_config_file(struct vm_config *cfg, const char *path)
{
	char err[1024], inner[768];
	json_t *doc = vmm_config_file_read(path, err, sizeof(err));
	if (!doc) {
		fprintf(stderr, "skiff run: --config-file %s\n", err);
		return 64;
	}
	const char *e = vm_config_from_json(cfg, doc, inner, sizeof(inner));
	json_decref(doc);
	if (e) {
		fprintf(stderr, "skiff run: --config-file %s: %s\n", path, inner);
		return 64;
	}
	return 0;
}

/* The paths the VMM needs besides its configuration's: the directories
 * of its API and console sockets, the snapshot it restores. */
static int extra_paths(struct sandbox_paths *p, const char *api_sock, const char *console_sock,
		       const char *snapshot_dir)
{
	int r = 0;
	if (api_sock)
		r |= sandbox_paths_add_socket(p, api_sock);
	if (console_sock)
		r |= sandbox_paths_add_socket(p, console_sock);
	if (snapshot_dir)
		r |= sandbox_paths_add(p, snapshot_dir, true, false);
	return r;
}

/* The files of the VM saved in `dir` (its configuration is inside its
 * state file), for --jail --snapshot. 0, or -1 with err. */
static int snapshot_paths(struct sandbox_paths *p, const char *dir, char *err, size_t errlen)
{
	char *state = NULL;
	if (asprintf(&state, "%s/" SNAPSHOT_STATE_FILE, dir) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	struct vm_snapshot_file *sf = vm_snapshot_open(state, err, errlen);
	free(state);
	if (!sf)
		return -1;
	struct vm_config c;
	vm_config_init(&c);
	struct vmm_snapshot_load_req none = { 0 };
	int r = vmm_snapshot_spec(&c, vm_snapshot_config(sf), &none, err, errlen) ? -1 : 0;
	if (!r && sandbox_paths_of_config(p, &c)) {
		snprintf(err, errlen, "out of memory");
		r = -1;
	}
	vm_config_free(&c);
	vm_snapshot_close(sf);
	return r;
}

/* --jail: -1 in the jailed child (go on as the VMM), else the status to
 * end with. */
static int enter_jail(struct jail_opts *j, const struct vm_config *cfg, const char *api_sock,
		      const char *console_sock, const char *snapshot_dir)
{
	struct sandbox_paths paths = { 0 };
	int r = sandbox_paths_of_config(&paths, cfg);
	r |= extra_paths(&paths, api_sock, console_sock, snapshot_dir);
	if (r) {
		sandbox_paths_free(&paths);
		fprintf(stderr, "skiff run: --jail: out of memory\n");
		return 1;
	}
	char err[512];
	if (snapshot_dir && snapshot_paths(&paths, snapshot_dir, err, sizeof(err))) {
		sandbox_paths_free(&paths);
		fprintf(stderr, "skiff run: --snapshot %s: %s\n", snapshot_dir, err);
		return 64;
	}
	/* The host's network stays for user networking, TAP, and whatever
	 * the API or a snapshot may still add. */
	j->new_net = !cfg->nnets && !api_sock && !snapshot_dir;
	j->hostname = cfg->name;
	int status = 0;
	enum jail_side side = jail_enter(j, &paths, &status, err, sizeof(err));
	sandbox_paths_free(&paths);
	if (side == JAIL_FAILED) {
		fprintf(stderr, "skiff run: --jail %s: %s\n", j->dir, err);
		return 64;
	}
	return side == JAIL_PARENT ? status : -1;
}

/* skiff run with the configuration `cfg` (the defaults) to fill in from a
 * --config-file and the options; with --image, `use` holds the image until
 * the caller ends it. */
static int run(struct vm_config *cfg, struct image_use *use, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "append", required_argument, NULL, 'a' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "mem", required_argument, NULL, 'm' },
		{ "dump-dtb", required_argument, NULL, 'd' },
		{ "disk", required_argument, NULL, 'D' },
		{ "console", required_argument, NULL, 'C' },
		{ "no-rng", no_argument, NULL, 'R' },
		{ "no-agent", no_argument, NULL, 'G' },
		{ "cpu-quota", required_argument, NULL, 'Q' },
		{ "engine", required_argument, NULL, 'E' },
		{ "jit-cache", required_argument, NULL, 'J' },
		{ "net", required_argument, NULL, 'N' },
		{ "vsock", required_argument, NULL, 'V' },
		{ "balloon", optional_argument, NULL, 'B' },
		{ "share", required_argument, NULL, 'S' },
		{ "port", required_argument, NULL, 'P' },
		{ "api-sock", required_argument, NULL, 'A' },
		{ "config-file", required_argument, NULL, 'F' },
		{ "id", required_argument, NULL, 'I' },
		{ "console-sock", required_argument, NULL, 'O' },
		{ "console-log-max", required_argument, NULL, 'L' },
		{ "seccomp", required_argument, NULL, 'X' },
		{ "snapshot", required_argument, NULL, 'Z' },
		{ "image", required_argument, NULL, OPT_IMAGE },
		{ "ephemeral", no_argument, NULL, OPT_EPHEMERAL },
		{ "ssh-port", required_argument, NULL, OPT_SSH_PORT },
		{ "jail", required_argument, NULL, OPT_JAIL },
		{ "jail-uid", required_argument, NULL, OPT_JAIL_UID },
		{ "jail-gid", required_argument, NULL, OPT_JAIL_GID },
		{ "landlock", required_argument, NULL, OPT_LANDLOCK },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	bool kernel_given = false, initrd_given = false, append_given = false, mem_given = false;
	const char *api_sock = NULL, *snapshot_dir = NULL;
	const char *config_file = config_file_option(argc, argv, opts);
	const char *vm_option = NULL;   /* one VM option given, for --snapshot's message */
	const char *console_sock = NULL;
	struct image_use_opts image = { 0 };
	uint64_t console_log_max = 0;
	enum sandbox_mode seccomp = SANDBOX_ON;
	struct jail_opts jail = { .uid = JAIL_DEFAULT_ID, .gid = JAIL_DEFAULT_ID };
	bool jail_id_given = false, landlock = true;
	char err[512];
	int o;
	if (config_file && read_config_file(cfg, config_file))
		return 64;
	optind = 0;
	opterr = 0; /* one line of our own instead of getopt's message */
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		for (const struct option *op = opts; op->name && o > 0; op++)
			if (op->val == o && (strchr("kiacmdDCRQNVPBSF", o) || (o >= OPT_IMAGE && o < OPT_JAIL)))
				vm_option = op->name;
		switch (o) {
		case 'k':
		case 'i':
		case 'a':
		case 'd':
			if (set_str(o == 'k' ? &cfg->kernel : o == 'i' ? &cfg->initrd :
				    o == 'a' ? &cfg->append : &cfg->dump_dtb, optarg))
				goto oom;
			kernel_given |= o == 'k';
			initrd_given |= o == 'i';
			append_given |= o == 'a';
			break;
		case 'c': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || end == optarg || n < 1 || n > BOARD_MAX_HARTS) {
				fprintf(stderr, "skiff run: --cpus %s: must be a number from 1 to %d\n",
					optarg, BOARD_MAX_HARTS);
				return 64;
			}
			cfg->ncpus = (unsigned)n;
			break;
		}
		case 'm':
			mem_given = true;
			if (size_parse(optarg, 1ull << 20, &cfg->mem_bytes)) {
				fprintf(stderr, "skiff run: --mem %s: not a size (examples: 512, 512M, 2G)\n", optarg);
				return 64;
			}
			if (cfg->mem_bytes < (uint64_t)VM_MIN_MEM_MIB << 20 ||
			    cfg->mem_bytes > (uint64_t)VM_MAX_MEM_MIB << 20 || (cfg->mem_bytes & ((1u << 20) - 1))) {
				fprintf(stderr, "skiff run: --mem %s: must be whole MiB from %u MiB to %u GiB\n",
					optarg, VM_MIN_MEM_MIB, VM_MAX_MEM_MIB >> 10);
				return 64;
			}
			break;
		case 'D':
			if (devopt_disk(cfg, optarg, err, sizeof(err))) {
				fprintf(stderr, "skiff run: %s\n", err);
				return 64;
			}
			break;
		case 'C':
			if (devopt_console(cfg, optarg, err, sizeof(err))) {
				fprintf(stderr, "skiff run: %s\n", err);
				return 64;
			}
			break;
		case 'R': cfg->rng = false; break;
		case 'G': cfg->agent = false; break;
		case 'E': {
			enum engine_tier t = ENGINE_JIT;
			cfg->jit_lockstep = !strcmp(optarg, "lockstep");
			if (!cfg->jit_lockstep && engine_tier_parse(optarg, &t)) {
				fprintf(stderr, "skiff run: --engine %s: must be interp, jit or lockstep\n", optarg);
				return 64;
			}
			cfg->engine = (int)t;
			cfg->engine_set = true;
			break;
		}
		case 'J':
			if (size_parse(optarg, 1ull << 20, &cfg->jit_cache_bytes) ||
			    cfg->jit_cache_bytes < (1u << 20)) {
				fprintf(stderr, "skiff run: --jit-cache %s: must be a size of at least 1M\n", optarg);
				return 64;
			}
			break;
		case 'Q': {
			char *end;
			cfg->cpu_quota = strtod(optarg, &end);
			if (*end || end == optarg || !(cfg->cpu_quota > 0)) {
				fprintf(stderr, "skiff run: --cpu-quota %s: must be a positive fraction of a "
					"host core (e.g. 0.5)\n", optarg);
				return 64;
			}
			break;
		}
		case 'N':
		case 'V':
		case 'P':
		case 'B': {
			const char *e = o == 'N' ? devopt_net(cfg, optarg, err, sizeof(err)) :
					o == 'V' ? devopt_vsock(cfg, optarg, err, sizeof(err)) :
					o == 'P' ? devopt_port(cfg, optarg, err, sizeof(err)) :
						   devopt_balloon(cfg, optarg, err, sizeof(err));
			if (e) {
				fprintf(stderr, "skiff run: %s\n", err);
				return 64;
			}
			break;
		}
		case 'S':
			if (devopt_share(cfg, optarg, err, sizeof(err))) {
				fprintf(stderr, "skiff run: %s\n", err);
				return 64;
			}
			break;
		case 'Z': snapshot_dir = optarg; break;
		case 'A': api_sock = optarg; break;
		case 'O': console_sock = optarg; break;
		case 'L':
			if (size_parse(optarg, 1ull << 20, &console_log_max) ||
			    console_log_max < 64 << 10) {
				fprintf(stderr, "skiff run: --console-log-max %s: a size of at least 64K "
					"(examples: 4M, 512K)\n", optarg);
				return 64;
			}
			break;
		case 'X':
			if (!strcmp(optarg, "on"))
				seccomp = SANDBOX_ON;
			else if (!strcmp(optarg, "log"))
				seccomp = SANDBOX_LOG;
			else if (!strcmp(optarg, "off"))
				seccomp = SANDBOX_OFF;
			else {
				fprintf(stderr, "skiff run: --seccomp %s: must be on, log or off\n", optarg);
				return 64;
			}
			break;
		case 'F': break; /* read first */
		case 'I': {
			size_t len = strlen(optarg);
			if (len < 1 || len > 64 || strspn(optarg, "abcdefghijklmnopqrstuvwxyz"
							  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != len) {
				fprintf(stderr, "skiff run: --id %s: 1 to 64 letters, digits, '-' and '_'\n", optarg);
				return 64;
			}
			if (set_str(&cfg->name, optarg))
				goto oom;
			break;
		}
		case OPT_IMAGE: image.name = optarg; break;
		case OPT_EPHEMERAL: image.ephemeral = true; break;
		case OPT_SSH_PORT: {
			char *end;
			long p = strtol(optarg, &end, 10);
			if (*end || end == optarg || p < 1 || p > 65535) {
				fprintf(stderr, "skiff run: --ssh-port %s: a TCP port, 1 to 65535\n", optarg);
				return 64;
			}
			image.ssh_port = (unsigned)p;
			break;
		}
		case OPT_JAIL: jail.dir = optarg; break;
		case OPT_LANDLOCK:
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "skiff run: --landlock %s: must be on or off\n", optarg);
				return 64;
			}
			landlock = !strcmp(optarg, "on");
			break;
		case OPT_JAIL_UID:
		case OPT_JAIL_GID: {
			/* Any id but root's and (uid_t)-1, which setresuid
			 * reads as "leave it" (skiffd gives each VM its own
			 * from a range above 65535). */
			char *end;
			errno = 0;
			unsigned long long id = strtoull(optarg, &end, 10);
			if (errno || *end || end == optarg || optarg[0] == '-' || id < 1 || id > 4294967294ull) {
				fprintf(stderr, "skiff run: --%s %s: a number from 1 to 4294967294 (not root)\n",
					o == OPT_JAIL_UID ? "jail-uid" : "jail-gid", optarg);
				return 64;
			}
			if (o == OPT_JAIL_UID)
				jail.uid = (uid_t)id;
			else
				jail.gid = (gid_t)id;
			jail_id_given = true;
			break;
		}
		case 'h': fputs(usage, stdout); return 0;
		case ':':
			fprintf(stderr, "skiff run: %s needs a value (see skiff run --help)\n",
				argv[optind - 1]);
			return 64;
		default:
			fprintf(stderr, "skiff run: unknown option '%s' (see skiff run --help)\n",
				argv[optind - 1]);
			return 64;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "skiff run: unexpected argument '%s' (see skiff run --help)\n", argv[optind]);
		return 64;
	}
	if (snapshot_dir && vm_option) {
		fprintf(stderr, "skiff run: --snapshot restores the VM as it was saved; --%s cannot "
			"change it\n", vm_option);
		return 64;
	}
	if (!image.name && (image.ephemeral || image.ssh_port)) {
		fprintf(stderr, "skiff run: --ephemeral and --ssh-port go with --image NAME\n");
		return 64;
	}
	if (image.name) {
		if (api_sock || config_file) {
			fprintf(stderr, "skiff run: --image cannot be combined with --api-sock or --config-file\n");
			return 64;
		}
		if (image_use_begin(use, cfg, &image, err, sizeof(err))) {
			fprintf(stderr, "skiff run: %s\n", err);
			return 64;
		}
		if (!mem_given)
			cfg->mem_bytes = 1ull << 30;
		append_given = true;   /* the image's command line */
	}
	if (console_log_max && !console_sock) {
		fprintf(stderr, "skiff run: --console-log-max caps the log a --console-sock VM writes "
			"to standard output; give --console-sock too\n");
		return 64;
	}
	/* Without the API or a config file, no kernel means the default guest. */
	bool api = api_sock || config_file || snapshot_dir;
	if (!cfg->kernel && !api) {
		char *kernel = cache_path("Image"), *initrd = cache_path("initrd.cpio.gz");
		bool built = readable(kernel) && readable(initrd);
		if (!built)
			fprintf(stderr, "skiff run: the default guest is not built yet (looked for %s).\n"
				"skiff run: build it with guest/build-image.sh, or give --kernel IMAGE.\n",
				kernel ? kernel : "?");
		if (built) {
			cfg->kernel = kernel;
			kernel = NULL;
			if (!cfg->initrd) {
				cfg->initrd = initrd;
				initrd = NULL;
			}
		}
		free(kernel);
		free(initrd);
		if (!built)
			return 64;
	}
	if (!append_given && !api && set_str(&cfg->append, cfg->virtio_console ? VMM_DEFAULT_BOOT_ARGS_HVC : VMM_DEFAULT_BOOT_ARGS))
		goto oom;
	const char *why;
	if ((kernel_given || !api) && (why = file_problem(cfg->kernel))) {
		fprintf(stderr, "skiff run: --kernel %s: %s\n", cfg->kernel, why);
		return 64;
	}
	if (cfg->initrd && (initrd_given || !api) && (why = file_problem(cfg->initrd))) {
		fprintf(stderr, "skiff run: --initrd %s: %s\n", cfg->initrd, why);
		return 64;
	}
	if (vm_config_check(cfg, err, sizeof(err))) {
		fprintf(stderr, "skiff run: %s\n", err);
		return 64;
	}
	if (jail_id_given && !jail.dir) {
		fprintf(stderr, "skiff run: --jail-uid and --jail-gid go with --jail DIR\n");
		return 64;
	}
	if (jail.dir) {
		int st = enter_jail(&jail, cfg, api_sock, console_sock, snapshot_dir);
		if (st >= 0)
			return st;   /* the parent, after the jailed VMM ended, or a failure */
		/* The jailed VMM: the parent removes an ephemeral overlay. */
		free(use->overlay);
		use->overlay = NULL;
	}
	struct console_sock *csock = NULL;
	if (console_sock && !(csock = console_sock_start(console_sock, console_log_max, err, sizeof(err)))) {
		fprintf(stderr, "skiff run: --console-sock: %s\n", err);
		return 64;
	}
	/* The filters are built now, while everything is still allowed; the
	 * threads are confined once the VM is built (sandbox.h). The main
	 * thread's list allows the JIT's executable mapping unless the
	 * executor was asked for (a config file or the API may still ask
	 * for the JIT). */
	struct sandbox_paths extra = { 0 };
	if (extra_paths(&extra, api_sock, console_sock, snapshot_dir)) {
		sandbox_paths_free(&extra);
		console_sock_stop(csock);
		goto oom;
	}
	struct sandbox_opts so = {
		.seccomp = seccomp,
		.paths = &extra,
		.landlock = landlock,
		.jit = engine_jit_available() && !(cfg->engine_set && cfg->engine == ENGINE_INTERP && !api),
#ifdef SKIFF_TEST_HOOKS
		.test_trigger = true,
#endif
	};
	struct sandbox *sb = sandbox_create(&so, err, sizeof(err));
	sandbox_paths_free(&extra);
	if (!sb) {
		fprintf(stderr, "skiff run: %s\n", err);
		console_sock_stop(csock);
		return 1;
	}
	int status;
	if (api) {
		struct run_api_opts ao = {
			.api_sock = api_sock, .snapshot_dir = snapshot_dir,
			.version = SKIFF_VERSION, .cfg = cfg,
			.configured = config_file || vm_option,
			.start = config_file || kernel_given || !api_sock,
			.report_crash = report_crash,
			.sandbox = sb,
		};
		status = run_api(&ao);
	} else {
		status = run_plain(cfg, sb);
	}
	console_sock_stop(csock);
	sandbox_destroy(sb);
	return status;
oom:
	fprintf(stderr, "skiff run: out of memory\n");
	return 1;
}

int cmd_run(int argc, char **argv)
{
	struct vm_config cfg;
	vm_config_init(&cfg);
	struct image_use use = { .lock_fd = -1 };
	int status = run(&cfg, &use, argc, argv);
	vm_config_free(&cfg);
	image_use_end(&use);            /* removes an ephemeral overlay */
	return status;
}
