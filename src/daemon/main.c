/*
 * skiffd: the supervisor daemon. Parses its options, takes the state
 * directory (one skiffd per state directory), loads the VM definitions,
 * adopts VMs whose VMM processes still run, serves the REST API on a Unix
 * socket (mode 0600), and reaps VMM processes until SIGTERM or SIGINT. It
 * never stops VMs when it ends: they keep running and the next skiffd adopts
 * them.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/http.h"
#include "base/size.h"
#include "daemon/paths.h"
#include "daemon/skiffd.h"
#include "daemon/uhttp.h"
#include "vmm/api_agent.h"

static const char usage[] =
	"usage: skiffd [options]\n"
	"\n"
	"Run many skiff VMs, each its own process, driven through a REST API on a\n"
	"Unix socket (see docs/skiffd.md and `skiff --help`).\n"
	"\n"
	"  --socket PATH      the API socket (default $XDG_RUNTIME_DIR/skiff/skiffd.sock,\n"
	"                     else /run/user/UID/skiff/skiffd.sock, else in the state dir)\n"
	"  --state-dir DIR    VM definitions and runtime files (default\n"
	"                     ${XDG_STATE_HOME:-~/.local/state}/skiff)\n"
	"  --mem-limit SIZE   total guest memory of running VMs (MiB, or K/M/G/T;\n"
	"                     default: the host's RAM)\n"
	"  --console-log-max SIZE  keep each VM's console.log under SIZE (K/M/G;\n"
	"                     default 4M); the newest half stays when it is cut\n"
	"  --vmm PATH         the skiff binary that runs each VM (default: the one\n"
	"                     next to skiffd, then $PATH)\n"
	"  --cgroup DIR|off   the cgroup v2 directory delegated to skiffd, in which each\n"
	"                     VM gets a cgroup with cpu.max, memory.max, pids.max and\n"
	"                     io.max (default: skiffd's own cgroup; off: none)\n"
	"  --jail on|off      as root: run each VM's VMM in a jail of its own (namespaces,\n"
	"                     a root holding only its files, an unprivileged uid; default\n"
	"                     on). As an ordinary user each VMM confines itself with Landlock\n"
	"  --jail-uid-base N  jailed VMMs run each as a uid of its own, taken at create\n"
	"                     from N, N+1, ... (default 1879048192); no account may use them\n"
	"  --jail-uid-count N how many such uids skiffd has, so how many VMs (default 65536)\n"
	"  --jail-gid N       the group every jailed VMM runs as (default 65532): the VMs'\n"
	"                     kernels and images must be readable, their writable disks\n"
	"                     writable, by it\n"
	"  --version          print the version\n"
	"  -h, --help         this text\n"
	"\n"
	"SIGTERM or SIGINT ends skiffd; running VMs keep running and are adopted by\n"
	"the next skiffd started with the same state directory.\n";

/* The API's threads, and so the connections it serves at once (a pool
 * splits the connection limit among its threads: one each). */
#define SKIFFD_API_THREADS 64
/* How long an ending skiffd waits for the answers of requests in flight. */
#define SKIFFD_DRAIN_MS 10000

static uint64_t host_ram_mib(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	if (!f)
		return 0;
	char line[256];
	unsigned long long kib = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &kib) == 1)
			break;
	fclose(f);
	return kib / 1024;
}

static bool executable(const char *p)
{
	struct stat st;
	return p && stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

/* The skiff binary: beside skiffd (installed), ../cli/skiff (build tree),
 * then $PATH. */
static char *find_vmm(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = 0;
		char *dir = dirname(self);
		char *p = NULL;
		if (asprintf(&p, "%s/skiff", dir) >= 0 && executable(p))
			return p;
		free(p);
		p = NULL;
		if (asprintf(&p, "%s/../cli/skiff", dir) >= 0 && executable(p)) {
			char *r = realpath(p, NULL);
			free(p);
			return r;
		}
		free(p);
	}
	const char *path = getenv("PATH");
	char *copy = path ? strdup(path) : NULL, *save = NULL;
	for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save)) {
		char *p = NULL;
		if (*d && asprintf(&p, "%s/skiff", d) >= 0 && executable(p)) {
			free(copy);
			return p;
		}
		free(p);
	}
	free(copy);
	return NULL;
}

static char *absolute(const char *p)
{
	if (p[0] == '/')
		return strdup(p);
	char cwd[PATH_MAX];
	char *r = NULL;
	if (!getcwd(cwd, sizeof(cwd)) || asprintf(&r, "%s/%s", cwd, p) < 0)
		return NULL;
	return r;
}

/* What main holds, given back on every way out of it (a start refused
 * for a held lock or a bad socket too), so the sanitizer build's leak
 * check sees nothing left. */
static void skiffd_free(struct skiffd *d)
{
	while (d->vms) {
		struct skiffd_vm *n = d->vms->next;
		skiffd_vm_free(d->vms);
		d->vms = n;
	}
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	free(d->state_dir);
	free(d->vms_dir);
	free(d->socket_path);
	free(d->vmm_path);
	free(d->cgroup.base);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "mem-limit", required_argument, NULL, 'm' },
		{ "vmm", required_argument, NULL, 'v' },
		{ "console-log-max", required_argument, NULL, 'L' },
		{ "cgroup", required_argument, NULL, 'C' },
		{ "jail", required_argument, NULL, 'J' },
		{ "jail-uid-base", required_argument, NULL, 'U' },
		{ "jail-uid-count", required_argument, NULL, 'N' },
		{ "jail-gid", required_argument, NULL, 'G' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct skiffd d = { .lock_fd = -1 };
	const char *sock_opt = NULL, *state_opt = NULL, *vmm_opt = getenv("SKIFF_VMM"), *mem_opt = NULL;
	const char *log_opt = "4M", *cgroup_opt = NULL, *jail_opt = "on";
	d.jail.gid = SKIFFD_JAIL_DEFAULT_GID;
	d.jail.uid_base = SKIFFD_JAIL_DEFAULT_UID_BASE;
	d.jail.uid_count = SKIFFD_JAIL_DEFAULT_UID_COUNT;
	bool jail_id_given = false;
	int o;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (o) {
		case 's': sock_opt = optarg; break;
		case 'd': state_opt = optarg; break;
		case 'm': mem_opt = optarg; break;
		case 'v': vmm_opt = optarg; break;
		case 'L': log_opt = optarg; break;
		case 'C': cgroup_opt = optarg; break;
		case 'J': jail_opt = optarg; break;
		case 'U':
		case 'N':
		case 'G': {
			const char *name = o == 'U' ? "jail-uid-base" : o == 'N' ? "jail-uid-count" : "jail-gid";
			char *end;
			errno = 0;
			unsigned long long id = strtoull(optarg, &end, 10);
			if (errno || *end || !*optarg || optarg[0] == '-' || id == 0 || id >= 0xffffffffull) {
				fprintf(stderr, "skiffd: --%s %s: a number from 1 to 4294967294\n", name, optarg);
				return 64;
			}
			if (o == 'U')
				d.jail.uid_base = (uid_t)id;
			else if (o == 'N')
				d.jail.uid_count = (uint32_t)id;
			else
				d.jail.gid = (gid_t)id;
			jail_id_given = true;
			break;
		}
		case 'V': printf("skiffd %s\n", SKIFF_VERSION); return 0;
		case 'h': fputs(usage, stdout); return 0;
		case ':':
			fprintf(stderr, "skiffd: %s needs a value (see skiffd --help)\n", argv[optind - 1]);
			return 64;
		default:
			fprintf(stderr, "skiffd: unknown option '%s' (see skiffd --help)\n", argv[optind - 1]);
			return 64;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "skiffd: unexpected argument '%s' (see skiffd --help)\n", argv[optind]);
		return 64;
	}

	if (strcmp(jail_opt, "on") && strcmp(jail_opt, "off")) {
		fprintf(stderr, "skiffd: --jail %s: must be on or off\n", jail_opt);
		return 64;
	}
	d.jail.on = !strcmp(jail_opt, "on") && geteuid() == 0;
	if (jail_id_given && !d.jail.on) {
		fprintf(stderr, "skiffd: --jail-uid-base, --jail-uid-count and --jail-gid are for a skiffd run as "
			"root with --jail on\n");
		return 64;
	}
	/* The last uid is below (uid_t)-1, which setresuid reads as "keep". */
	if ((uint64_t)d.jail.uid_base + d.jail.uid_count > 0xffffffffull) {
		fprintf(stderr, "skiffd: --jail-uid-base %u with --jail-uid-count %u goes past uid 4294967294\n",
			(unsigned)d.jail.uid_base, (unsigned)d.jail.uid_count);
		return 64;
	}

	/* A guest prints as much as it likes; its log may not grow with it. */
	uint64_t log_max = 0;
	if (size_parse(log_opt, 1ull << 20, &log_max) || log_max < (64u << 10)) {
		fprintf(stderr, "skiffd: --console-log-max %s: a size of at least 64K (examples: 4M, 512K)\n",
			log_opt);
		return 64;
	}
	snprintf(d.console_log_max, sizeof(d.console_log_max), "%lluK", (unsigned long long)(log_max >> 10));

	if (mem_opt) {
		uint64_t b = 0;
		if (size_parse(mem_opt, 1ull << 20, &b) || b < (1u << 20)) {
			fprintf(stderr, "skiffd: --mem-limit %s: not a size of at least 1 MiB (examples: 4096, 4G)\n",
				mem_opt);
			return 64;
		}
		d.mem_limit_mib = b >> 20;
		d.mem_limit_given = true;
	} else {
		d.mem_limit_mib = host_ram_mib();
		if (!d.mem_limit_mib) {
			fprintf(stderr, "skiffd: cannot read the host's RAM from /proc/meminfo; give --mem-limit\n");
			return 1;
		}
	}

	int rc = 1;
	d.state_dir = state_opt ? absolute(state_opt) : skiffd_default_state_dir();
	d.socket_path = sock_opt ? absolute(sock_opt) : skiffd_default_socket();
	d.vmm_path = vmm_opt ? absolute(vmm_opt) : find_vmm();
	if (!d.state_dir || !d.socket_path || asprintf(&d.vms_dir, "%s/vms", d.state_dir) < 0) {
		fprintf(stderr, "skiffd: out of memory\n");
		goto out;
	}
	if (!executable(d.vmm_path)) {
		fprintf(stderr, "skiffd: cannot find the skiff binary that runs VMs%s%s; give --vmm PATH\n",
			d.vmm_path ? " at " : "", d.vmm_path ? d.vmm_path : "");
		rc = 64;
		goto out;
	}
	umask(077);
	if (skiffd_mkdirs(d.vms_dir)) {
		fprintf(stderr, "skiffd: --state-dir %s: cannot create %s: %s\n", d.state_dir, d.vms_dir,
			strerror(errno));
		goto out;
	}
	char *sockdir = strdup(d.socket_path);
	if (!sockdir || skiffd_mkdirs(dirname(sockdir))) {
		fprintf(stderr, "skiffd: --socket %s: cannot create its directory: %s\n", d.socket_path,
			strerror(errno));
		free(sockdir);
		goto out;
	}
	free(sockdir);

	/* One skiffd per state directory. */
	char *lockp = NULL;
	if (asprintf(&lockp, "%s/skiffd.lock", d.state_dir) < 0)
		goto out;
	d.lock_fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d.lock_fd < 0 || flock(d.lock_fd, LOCK_EX | LOCK_NB)) {
		fprintf(stderr, "skiffd: %s: %s\n", lockp,
			errno == EWOULDBLOCK ? "another skiffd is using this state directory" : strerror(errno));
		free(lockp);
		goto out;
	}
	free(lockp);

	d.clk_tck = sysconf(_SC_CLK_TCK);
	d.page_size = sysconf(_SC_PAGESIZE);
	pthread_mutex_init(&d.lock, NULL);
	char uerr[256];
	if (uhttp_global_init(uerr, sizeof(uerr))) {
		fprintf(stderr, "skiffd: %s\n", uerr);
		goto out;
	}

	/* Signals are taken synchronously by the main thread only. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	skiffd_cgroup_init(&d, cgroup_opt);
	skiffd_load_vms(&d);
	size_t adopted = 0, total = 0;
	for (struct skiffd_vm *vm = d.vms; vm; vm = vm->next) {
		total++;
		skiffd_adopt(&d, vm);
		adopted += vm->pid > 0;
	}

	char err[512];
	struct api_server_config sc = {
		.socket_path = d.socket_path,
		.max_body = 1u << 20,
		/* a VM's guest agent routes, as the VMM takes them (skiff cp
		 * sends 1 MiB pieces, 1.4 MB in base64) */
		.large_prefix = "/vms/*/agent/",
		.large_max_body = VMM_AGENT_MAX_BODY,
		/* One VM's long request (a guest agent call, a snapshot, a
		 * start) must not hold up the others' (skiffd.h: the locks): a
		 * pool with a thread per connection it may have, so each thread
		 * serves one connection at a time and none waits behind
		 * another's long handler. */
		.max_connections = SKIFFD_API_THREADS,
		.pool_threads = SKIFFD_API_THREADS,
		.handler = skiffd_handle,
		.ctx = &d,
	};
	d.server = api_server_start(&sc, err, sizeof(err));
	if (!d.server) {
		fprintf(stderr, "skiffd: --socket: %s\n", err);
		goto out;
	}
	skiffd_log("serving on %s (state %s, %zu VMs, %zu running, memory limit %" PRIu64 " MiB, VMM %s)",
		   d.socket_path, d.state_dir, total, adopted, d.mem_limit_mib, d.vmm_path);
	if (d.jail.on)
		skiffd_log("each VM's VMM runs jailed as a uid of its own (%u-%u) and gid %u",
			   (unsigned)d.jail.uid_base, (unsigned)(d.jail.uid_base + d.jail.uid_count - 1),
			   (unsigned)d.jail.gid);
	else
		skiffd_log("each VM's VMM runs %s", geteuid() ? "under Landlock (as this user)" :
			   "as root, not jailed (--jail off)");

	for (;;) {
		struct timespec tick = { 1, 0 };
		siginfo_t si;
		int sig = sigtimedwait(&set, &si, &tick);
		if (sig == SIGTERM || sig == SIGINT) {
			skiffd_log("%s: ending; running VMs keep running", strsignal(sig));
			atomic_store(&d.ending, true);
			break;
		}
		pthread_mutex_lock(&d.lock);
		skiffd_reap(&d);
		pthread_mutex_unlock(&d.lock);
	}
	/* Requests in flight get their answers out (a proxied one gives up
	 * its wait within about a second: d.ending); a start or a snapshot
	 * may take longer, and the stop below still waits for its end. */
	if (!api_server_drain(d.server, SKIFFD_DRAIN_MS))
		skiffd_log("ending with requests still in progress");
	api_server_stop(d.server);
	rc = 0;
out:
	skiffd_free(&d);
	return rc;
}
