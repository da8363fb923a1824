/*
 * The guest agent's system commands (QEMU's qga/qapi-schema.json names and
 * fields): guest-sync, guest-sync-delimited, guest-ping, guest-info,
 * guest-get-time, guest-set-time, guest-get-osinfo, guest-get-host-name,
 * guest-network-get-interfaces, guest-shutdown; and the command table.
 */
#include "agent.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/rtc.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static int cmd_sync(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	int64_t id;
	if (!arg_int(args, "id", true, &id, err, errlen))
		return -1;
	jb_printf(ret, "%lld", (long long)id);
	return 0;
}

static int cmd_sync_delimited(struct agent *a, const struct jval *args, struct jbuf *ret,
			      char *err, size_t errlen)
{
	if (cmd_sync(a, args, ret, err, errlen))
		return -1;
	a->synced_reply = true;   /* the reply goes out after a 0xFF */
	return 0;
}

static int cmd_ping(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	return 0;
}

static int cmd_info(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	jb_str(ret, "{\"version\": ");
	jb_cstring(ret, AGENT_VERSION);
	jb_str(ret, ", \"supported_commands\": [");
	for (size_t i = 0; i < agent_ncmds; i++) {
		jb_str(ret, i ? ", {\"name\": " : "{\"name\": ");
		jb_cstring(ret, agent_cmds[i].name);
		jb_printf(ret, ", \"enabled\": true, \"success-response\": %s}",
			  agent_cmds[i].success_response ? "true" : "false");
	}
	jb_str(ret, "]}");
	return 0;
}

static int cmd_get_time(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	jb_printf(ret, "%lld", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	return 0;
}

/* guest-set-time: the given time (or, without one, the RTC's) becomes the
 * system time, and the system time is then written to the RTC, as the
 * schema describes. */
static int cmd_set_time(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	int64_t ns = 0;
	bool given = json_get(args, "time") != NULL;
	if (!arg_int(args, "time", false, &ns, err, errlen))
		return -1;
	int rtc = open("/dev/rtc0", O_RDONLY | O_CLOEXEC);
	struct timespec ts;
	if (given) {
		if (ns < 0) {
			snprintf(err, errlen, "Invalid parameter 'time'");
			if (rtc >= 0)
				close(rtc);
			return -1;
		}
		ts.tv_sec = ns / 1000000000LL;
		ts.tv_nsec = ns % 1000000000LL;
	} else {
		struct rtc_time rt;
		if (rtc < 0 || ioctl(rtc, RTC_RD_TIME, &rt)) {
			snprintf(err, errlen, "cannot read the RTC: %s", strerror(errno));
			if (rtc >= 0)
				close(rtc);
			return -1;
		}
		struct tm tm = { .tm_sec = rt.tm_sec, .tm_min = rt.tm_min, .tm_hour = rt.tm_hour,
				 .tm_mday = rt.tm_mday, .tm_mon = rt.tm_mon, .tm_year = rt.tm_year };
		ts.tv_sec = timegm(&tm);
		ts.tv_nsec = 0;
	}
	if (clock_settime(CLOCK_REALTIME, &ts)) {
		snprintf(err, errlen, "Failed to set time to guest: %s", strerror(errno));
		if (rtc >= 0)
			close(rtc);
		return -1;
	}
	if (given && rtc >= 0) {
		struct tm tm;
		time_t t = ts.tv_sec;
		gmtime_r(&t, &tm);
		struct rtc_time rt = { .tm_sec = tm.tm_sec, .tm_min = tm.tm_min, .tm_hour = tm.tm_hour,
				       .tm_mday = tm.tm_mday, .tm_mon = tm.tm_mon, .tm_year = tm.tm_year };
		if (ioctl(rtc, RTC_SET_TIME, &rt)) {
			snprintf(err, errlen, "the system time is set, but not the RTC: %s", strerror(errno));
			close(rtc);
			return -1;
		}
	}
	if (rtc >= 0)
		close(rtc);
	return 0;
}

/* One KEY=VALUE line of os-release(5), quotes removed. */
static void osrelease_field(struct jbuf *ret, const char *line, const char *key, const char *field)
{
	size_t k = strlen(key);
	if (strncmp(line, key, k) || line[k] != '=')
		return;
	char v[256];
	snprintf(v, sizeof(v), "%s", line + k + 1);
	v[strcspn(v, "\n")] = 0;
	char *s = v;
	size_t n = strlen(s);
	if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
		s[n - 1] = 0;
		s++;
	}
	jb_str(ret, ", \"");
	jb_str(ret, field);
	jb_str(ret, "\": ");
	jb_cstring(ret, s);
}

static int cmd_osinfo(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	struct utsname u;
	uname(&u);
	jb_str(ret, "{\"kernel-release\": ");
	jb_cstring(ret, u.release);
	jb_str(ret, ", \"kernel-version\": ");
	jb_cstring(ret, u.version);
	jb_str(ret, ", \"machine\": ");
	jb_cstring(ret, u.machine);
	FILE *f = fopen("/etc/os-release", "re");
	if (!f)
		f = fopen("/usr/lib/os-release", "re");
	if (f) {
		static const char *const keys[][2] = {
			{ "ID", "id" }, { "NAME", "name" }, { "PRETTY_NAME", "pretty-name" },
			{ "VERSION", "version" }, { "VERSION_ID", "version-id" },
			{ "VARIANT", "variant" }, { "VARIANT_ID", "variant-id" },
		};
		char line[512];
		while (fgets(line, sizeof(line), f))
			for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
				osrelease_field(ret, line, keys[i][0], keys[i][1]);
		fclose(f);
	}
	jb_str(ret, "}");
	return 0;
}

static int cmd_host_name(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	char name[256] = "";
	gethostname(name, sizeof(name) - 1);
	jb_str(ret, "{\"host-name\": ");
	jb_cstring(ret, name);
	jb_str(ret, "}");
	return 0;
}

/* Counters of one interface from /proc/net/dev, in GuestNetworkInterfaceStat
 * order; false if it is not listed. */
static bool iface_stats(const char *name, unsigned long long st[8])
{
	FILE *f = fopen("/proc/net/dev", "re");
	if (!f)
		return false;
	char line[512];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = 0;
		char *n = line;
		while (*n == ' ')
			n++;
		if (strcmp(n, name))
			continue;
		unsigned long long v[16];
		if (sscanf(colon + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9],
			   &v[10], &v[11]) == 12) {
			/* receive: bytes packets errs drop ...; transmit from the 9th */
			unsigned long long o[8] = { v[0], v[1], v[2], v[3], v[8], v[9], v[10], v[11] };
			memcpy(st, o, sizeof(o));
			found = true;
		}
	}
	fclose(f);
	return found;
}

static int prefix_len(const struct sockaddr *mask)
{
	const uint8_t *p;
	size_t n;
	if (mask->sa_family == AF_INET) {
		p = (const uint8_t *)&((const struct sockaddr_in *)mask)->sin_addr;
		n = 4;
	} else {
		p = (const uint8_t *)&((const struct sockaddr_in6 *)mask)->sin6_addr;
		n = 16;
	}
	int bits = 0;
	for (size_t i = 0; i < n; i++)
		bits += __builtin_popcount(p[i]);
	return bits;
}

static int cmd_net(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	struct if_nameindex *ifs = if_nameindex();
	if (!ifs) {
		snprintf(err, errlen, "cannot list the network interfaces: %s", strerror(errno));
		return -1;
	}
	struct ifaddrs *addrs = NULL;
	getifaddrs(&addrs);
	jb_str(ret, "[");
	for (struct if_nameindex *i = ifs; i->if_index; i++) {
		jb_str(ret, i == ifs ? "{\"name\": " : ", {\"name\": ");
		jb_cstring(ret, i->if_name);
		char path[300], mac[64] = "";
		snprintf(path, sizeof(path), "/sys/class/net/%s/address", i->if_name);
		FILE *f = fopen(path, "re");
		if (f) {
			if (fgets(mac, sizeof(mac), f))
				mac[strcspn(mac, "\n")] = 0;
			fclose(f);
		}
		if (*mac) {
			jb_str(ret, ", \"hardware-address\": ");
			jb_cstring(ret, mac);
		}
		jb_str(ret, ", \"ip-addresses\": [");
		bool first = true;
		for (struct ifaddrs *ia = addrs; ia; ia = ia->ifa_next) {
			if (!ia->ifa_addr || strcmp(ia->ifa_name, i->if_name))
				continue;
			int fam = ia->ifa_addr->sa_family;
			if (fam != AF_INET && fam != AF_INET6)
				continue;
			char ip[INET6_ADDRSTRLEN];
			const void *src = fam == AF_INET ? (const void *)&((struct sockaddr_in *)ia->ifa_addr)->sin_addr
							 : (const void *)&((struct sockaddr_in6 *)ia->ifa_addr)->sin6_addr;
			inet_ntop(fam, src, ip, sizeof(ip));
			jb_str(ret, first ? "{\"ip-address\": " : ", {\"ip-address\": ");
			first = false;
			jb_cstring(ret, ip);
			jb_printf(ret, ", \"ip-address-type\": \"%s\", \"prefix\": %d}",
				  fam == AF_INET ? "ipv4" : "ipv6",
				  ia->ifa_netmask ? prefix_len(ia->ifa_netmask) : 0);
		}
		jb_str(ret, "]");
		unsigned long long st[8];
		if (iface_stats(i->if_name, st))
			jb_printf(ret, ", \"statistics\": {\"rx-bytes\": %llu, \"rx-packets\": %llu, "
				  "\"rx-errs\": %llu, \"rx-dropped\": %llu, \"tx-bytes\": %llu, "
				  "\"tx-packets\": %llu, \"tx-errs\": %llu, \"tx-dropped\": %llu}",
				  st[0], st[1], st[2], st[3], st[4], st[5], st[6], st[7]);
		jb_str(ret, "}");
	}
	jb_str(ret, "]");
	if (addrs)
		freeifaddrs(addrs);
	if_freenameindex(ifs);
	return 0;
}

/* guest-shutdown: ask init for a clean halt, power-off or reboot (busybox
 * init: SIGUSR1 halts, SIGUSR2 powers off, SIGTERM reboots; it runs the
 * inittab's shutdown action, which unmounts and syncs, first). Like QEMU's
 * agent, no reply on success. */
static int cmd_shutdown(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	const struct jval *m = arg_str(args, "mode", false, err, errlen);
	if (!m && json_get(args, "mode"))
		return -1;
	const char *mode = m ? m->s : "powerdown";
	int sig;
	if (!strcmp(mode, "powerdown"))
		sig = SIGUSR2;
	else if (!strcmp(mode, "halt"))
		sig = SIGUSR1;
	else if (!strcmp(mode, "reboot"))
		sig = SIGTERM;
	else {
		snprintf(err, errlen, "Invalid parameter 'mode'");
		return -1;
	}
	sync();
	if (kill(1, sig)) {
		snprintf(err, errlen, "cannot signal init: %s", strerror(errno));
		return -1;
	}
	return 1;
}

const struct agent_cmd agent_cmds[] = {
	{ "guest-sync-delimited", cmd_sync_delimited, true },
	{ "guest-sync", cmd_sync, true },
	{ "guest-ping", cmd_ping, true },
	{ "guest-info", cmd_info, true },
	{ "guest-get-time", cmd_get_time, true },
	{ "guest-set-time", cmd_set_time, true },
	{ "guest-get-osinfo", cmd_osinfo, true },
	{ "guest-get-host-name", cmd_host_name, true },
	{ "guest-network-get-interfaces", cmd_net, true },
	{ "guest-shutdown", cmd_shutdown, false },
	{ "guest-exec", cmd_exec, true },
	{ "guest-exec-status", cmd_exec_status, true },
	{ "guest-file-open", cmd_file_open, true },
	{ "guest-file-close", cmd_file_close, true },
	{ "guest-file-read", cmd_file_read, true },
	{ "guest-file-write", cmd_file_write, true },
	{ "guest-file-seek", cmd_file_seek, true },
	{ "guest-file-flush", cmd_file_flush, true },
	/* skiff extensions */
	{ "guest-exec-stream", cmd_exec_stream, true },
	{ "guest-exec-io", cmd_exec_io, true },
	{ "guest-exec-kill", cmd_exec_kill, true },
	{ "guest-exec-resize", cmd_exec_resize, true },
	{ "guest-clipboard-get", cmd_clipboard_get, true },
	{ "guest-clipboard-set", cmd_clipboard_set, true },
	{ "guest-file-hash", cmd_file_hash, true },
};
const size_t agent_ncmds = sizeof(agent_cmds) / sizeof(agent_cmds[0]);
