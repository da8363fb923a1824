/*
 * libFuzzer target for `skiff run`'s QEMU-style device option strings
 * (src/cli/devopts.c): --disk PATH,ro,format=,backing=,serial=,bw=,iops=,
 * --net user,hostfwd=tcp:ADDR:PORT-:PORT,mac=... / tap,ifname=, --vsock
 * cid=,uds=, --share DIR,tag=,ro,nodev, --port NAME,uds=, --balloon ...
 * and --console, applied one after another to one configuration as
 * getopt hands them over, then checked (vm_config_check) and written out
 * as the configuration document skiffd and snapshots keep.
 *
 * Input: options separated by NUL bytes, each a letter naming the option
 * (d disk, n net, v vsock, s share, p port, b balloon, c console, B plain
 * --balloon) and its argument. As in skiff run, the first refused option
 * ends it (its message must say why) and the configuration is freed; a
 * configuration that passes the check must copy (vm_config_copy) into the
 * same document.
 * LeakSanitizer sees every string an option allocates.
 *
 * disk_probe_format() is a stand-in: the parser's own logic is the target,
 * and the input must not make the fuzzer open (and maybe block on) host
 * files such as FIFOs. --share and backing= still stat() the paths they
 * name, as skiff does; nothing is opened for writing.
 *
 * Build: tests/fuzz/meson.build (-Dfuzz=true for libFuzzer; every build
 * links fuzz-replay-NAME, which runs the files it is given once each).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "backend/disk/disk.h"
#include "cli/devopts.h"
#include "engine/engine.h"
#include "vmm/config.h"
#include "vmm/config_json.h"

#define MAX_OPTIONS 32

/* The path's last character says what the "image" is: Q a qcow2 image,
 * B a qcow2 image naming a backing file, N a file that cannot be read,
 * anything else raw. */
int disk_probe_format(const char *path, struct disk_probe *out, char *err, size_t errlen)
{
	size_t n = strlen(path);
	char last = n ? path[n - 1] : 0;
	if (last == 'N') {
		snprintf(err, errlen, "%s: cannot open: No such file or directory", path);
		return -1;
	}
	out->format = last == 'Q' || last == 'B' ? DISK_FORMAT_QCOW2 : DISK_FORMAT_RAW;
	out->names_backing_file = last == 'B';
	return 0;
}

/* The engine is not linked: answer as an x86-64 host's engine does. */
bool engine_jit_available(void)
{
	return true;
}

static const char *apply(struct vm_config *c, char kind, const char *arg, char *err, size_t errlen)
{
	switch (kind) {
	case 'd': return devopt_disk(c, arg, err, errlen);
	case 'n': return devopt_net(c, arg, err, errlen);
	case 'v': return devopt_vsock(c, arg, err, errlen);
	case 's': return devopt_share(c, arg, err, errlen);
	case 'p': return devopt_port(c, arg, err, errlen);
	case 'b': return devopt_balloon(c, arg, err, errlen);
	case 'B': return devopt_balloon(c, NULL, err, errlen);
	case 'c': return devopt_console(c, arg, err, errlen);
	default: return NULL;
	}
}

static char *dump(const struct vm_config *c)
{
	json_t *j = vm_config_to_json(c);
	if (!j)
		abort();
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(j);
	if (!s)
		abort();
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* NUL-terminated copy: options are C strings. */
	char *buf = malloc(size + 1);
	if (!buf)
		abort();
	memcpy(buf, data, size);
	buf[size] = 0;

	struct vm_config c;
	vm_config_init(&c);
	char err[1024];
	int n = 0;
	const char *e = NULL;
	for (char *p = buf; p < buf + size && n < MAX_OPTIONS && !e; p += strlen(p) + 1, n++) {
		if (!*p)
			continue;
		err[0] = 0;
		e = apply(&c, p[0], p + 1, err, sizeof(err));
		if (e && (e != err || !err[0]))
			abort();   /* a refusal says why */
	}

	/* The checked configuration is copied as the API and skiffd copy it;
	 * the copy must be the same configuration. (Not vm_config_from_json:
	 * it opens the files a document names, and the input names any.) */
	if (!e && !vm_config_check(&c, err, sizeof(err))) {
		struct vm_config copy;
		vm_config_init(&copy);
		if (vm_config_copy(&copy, &c))
			abort();
		char *a = dump(&c), *b = dump(&copy);
		if (strcmp(a, b)) {
			fprintf(stderr, "fuzz_options: the copy differs:\n%s\n%s\n", a, b);
			abort();
		}
		free(a);
		free(b);
		vm_config_free(&copy);
	}
	vm_config_free(&c);
	free(buf);
	return 0;
}
