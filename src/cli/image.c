/*
 * `skiff image`: system images in the user's cache directory
 * (src/daemon/image_store.h).
 *
 *   create debian [options]   runs the builder, guest/debian/create.sh
 *   ls                        lists the images
 *   rm NAME...                removes images (not while a VM uses one)
 *   convert SRC DST           copies a raw disk into a new, compact qcow2
 *                             (the builder's step 7; all-zero clusters and
 *                             holes are left out)
 */
#include "cli/image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/disk/disk.h"
#include "daemon/image_store.h"

static const char usage[] =
	"usage: skiff image create debian [--name NAME] [--size 8G] [--suite stable]\n"
	"                                 [--packages A,B,C] [--ssh-key FILE] [--force] ...\n"
	"       skiff image ls\n"
	"       skiff image rm NAME...\n"
	"       skiff image convert RAW-DISK NEW.qcow2\n"
	"\n"
	"Images live in ${XDG_CACHE_HOME:-~/.cache}/skiff/images/NAME/; boot one with\n"
	"`skiff run --image NAME` (see docs/images.md). `skiff image create debian --help`\n"
	"lists the builder's options.\n";

/* The builder's directory: $SKIFF_GUEST_DIR, else the source tree's guest/
 * this skiff was built from. */
static const char *guest_dir(void)
{
	const char *env = getenv("SKIFF_GUEST_DIR");
	return env && *env ? env : SKIFF_GUEST_DIR;
}

static int image_create(int argc, char **argv)
{
	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "skiff image create: name the system to build: "
			"skiff image create debian [options]\n");
		return 64;
	}
	if (strcmp(argv[1], "debian")) {
		fprintf(stderr, "skiff image create: unknown system '%s' (known: debian)\n", argv[1]);
		return 64;
	}
	char script[PATH_MAX];
	int n = snprintf(script, sizeof(script), "%s/debian/create.sh", guest_dir());
	if (n < 0 || (size_t)n >= sizeof(script) || access(script, X_OK)) {
		fprintf(stderr, "skiff image create: the builder %s is missing (set SKIFF_GUEST_DIR "
			"to the guest/ directory of skiff's sources)\n", script);
		return 1;
	}
	/* The builder runs this very skiff for the second stage. */
	char self[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len > 0) {
		self[len] = 0;
		setenv("SKIFF", self, 1);
	}
	char **args = calloc((size_t)argc + 1, sizeof(*args));
	if (!args) {
		fprintf(stderr, "skiff image create: out of memory\n");
		return 1;
	}
	args[0] = script;
	for (int i = 2; i < argc; i++)
		args[i - 1] = argv[i];
	execv(script, args);
	fprintf(stderr, "skiff image create: cannot run %s: %s\n", script, strerror(errno));
	free(args);
	return 1;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Bytes the file takes on disk. */
static unsigned long long used_bytes(const char *path)
{
	struct stat st;
	return stat(path, &st) ? 0 : (unsigned long long)st.st_blocks * 512;
}

static int image_ls(void)
{
	char *store = image_store_dir();
	if (!store) {
		fprintf(stderr, "skiff image ls: neither XDG_CACHE_HOME nor HOME is set\n");
		return 1;
	}
	DIR *d = opendir(store);
	char **names = NULL;
	size_t count = 0, cap = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (!image_name_ok(e->d_name))
			continue;
		/* An image is a directory; a file beside the images (a key kept
		 * next to its image, say) is not one, and not an error. */
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, 0) || !S_ISDIR(st.st_mode))
			continue;
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = realloc(names, cap * sizeof(*nn));
			if (!nn)
				break;
			names = nn;
		}
		if (!(names[count] = strdup(e->d_name)))
			break;
		count++;
	}
	if (d)
		closedir(d);
	qsort(names, count, sizeof(*names), cmp_names);
	printf("%-16s %-10s %-8s %9s %9s  %-20s %s\n", "NAME", "SUITE", "RELEASE", "SIZE", "ON DISK",
	       "CREATED", "PACKAGES");
	int bad = 0;
	for (size_t i = 0; i < count; i++) {
		struct image_meta m;
		char err[512];
		if (image_meta_load(store, names[i], &m, err, sizeof(err))) {
			fprintf(stderr, "skiff image ls: %s\n", err);
			bad = 1;
			free(names[i]);
			continue;
		}
		printf("%-16s %-10s %-8s %8.1fG %8.1fG  %-20s %zu\n", m.name, m.suite, m.codename,
		       m.size / 1073741824.0, used_bytes(m.disk) / 1073741824.0, m.created,
		       m.npackages);
		image_meta_free(&m);
		free(names[i]);
	}
	free(names);
	free(store);
	return bad;
}

/* rm -r of an image directory's contents (flat, plus one level for the
 * builder's leftovers), then the directory. */
static int remove_tree(int dirfd, const char *name, int depth)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return unlinkat(dirfd, name, 0);
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	struct dirent *e;
	int ret = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (unlinkat(fd, e->d_name, 0) && errno == EISDIR && depth < 8)
			ret |= remove_tree(fd, e->d_name, depth + 1);
		else if (errno == EISDIR)
			ret = -1;
	}
	closedir(d);
	return ret | unlinkat(dirfd, name, AT_REMOVEDIR);
}

static int image_rm(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "skiff image rm: name the image(s) to remove (see skiff image ls)\n");
		return 64;
	}
	char *store = image_store_dir();
	if (!store) {
		fprintf(stderr, "skiff image rm: neither XDG_CACHE_HOME nor HOME is set\n");
		return 1;
	}
	int status = 0;
	int sfd = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (int i = 1; i < argc; i++) {
		const char *name = argv[i];
		struct stat st;
		if (!image_name_ok(name)) {
			fprintf(stderr, "skiff image rm: bad image name '%s'\n", name);
			status = 1;
			continue;
		}
		if (sfd < 0 || fstatat(sfd, name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, "skiff image rm: no image '%s' in %s\n", name, store);
			status = 1;
			continue;
		}
		/* A VM holds the image's lock (shared) while it runs. */
		char lock[PATH_MAX];
		snprintf(lock, sizeof(lock), "%s/%s/.lock", store, name);
		int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB)) {
			fprintf(stderr, "skiff image rm: image '%s' is in use by a running VM\n", name);
			close(lfd);
			status = 1;
			continue;
		}
		if (remove_tree(sfd, name, 0)) {
			fprintf(stderr, "skiff image rm: %s/%s: %s\n", store, name, strerror(errno));
			status = 1;
		} else {
			printf("removed %s\n", name);
		}
		if (lfd >= 0)
			close(lfd);
	}
	if (sfd >= 0)
		close(sfd);
	free(store);
	return status;
}

static bool all_zero(const unsigned char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

/* Copies the data of `src` (a raw file: holes are skipped with SEEK_DATA)
 * into the new qcow2 `dst`, leaving out all-zero clusters. */
static int image_convert(const char *src, const char *dst)
{
	enum { CLUSTER = 65536, CHUNK = 16 * CLUSTER };
	int fd = open(src, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "skiff image convert: %s: %s\n", src,
			fd < 0 ? strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		return 1;
	}
	char err[768];
	struct disk_create_opts co = { .size = (uint64_t)st.st_size };
	if (disk_create_qcow2(dst, &co, err, sizeof(err)) < 0) {
		fprintf(stderr, "skiff image convert: %s\n", err);
		close(fd);
		return 1;
	}
	struct disk_open_opts oo = { .format = DISK_FORMAT_QCOW2 };
	struct disk *out;
	if (disk_open(dst, &oo, &out, err, sizeof(err)) < 0) {
		fprintf(stderr, "skiff image convert: %s\n", err);
		close(fd);
		unlink(dst);
		return 1;
	}
	unsigned char *buf = malloc(CHUNK);
	int ret = buf ? 0 : -ENOMEM;
	uint64_t size = (uint64_t)st.st_size, written = 0;
	off_t pos = 0;
	while (ret == 0 && (uint64_t)pos < size) {
		off_t data = lseek(fd, pos, SEEK_DATA);
		if (data < 0) {
			if (errno != ENXIO)
				ret = -errno;
			break;       /* ENXIO: only a hole is left */
		}
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0) {
			ret = -errno;
			break;
		}
		uint64_t from = (uint64_t)data & ~(uint64_t)(CLUSTER - 1);
		uint64_t to = ((uint64_t)hole + CLUSTER - 1) & ~(uint64_t)(CLUSTER - 1);
		if (to > size)
			to = size;
		for (uint64_t off = from; ret == 0 && off < to; off += CHUNK) {
			size_t n = (size_t)(to - off < CHUNK ? to - off : CHUNK);
			ssize_t got = pread(fd, buf, n, (off_t)off);
			if (got != (ssize_t)n) {
				ret = got < 0 ? -errno : -EIO;
				break;
			}
			/* Runs of clusters that hold data, one write each. */
			size_t i = 0;
			while (ret == 0 && i < n) {
				size_t c = n - i < CLUSTER ? n - i : CLUSTER;
				if (all_zero(buf + i, c)) {
					i += c;
					continue;
				}
				size_t j = i + c;
				while (j < n) {
					size_t cj = n - j < CLUSTER ? n - j : CLUSTER;
					if (all_zero(buf + j, cj))
						break;
					j += cj;
				}
				struct iovec v = { buf + i, j - i };
				ret = disk_pwritev(out, &v, 1, off + i);
				written += j - i;
				i = j;
			}
		}
		pos = (off_t)to;
	}
	if (ret == 0)
		ret = disk_flush(out);
	free(buf);
	disk_close(out);
	close(fd);
	if (ret < 0) {
		fprintf(stderr, "skiff image convert: %s -> %s: %s\n", src, dst, strerror(-ret));
		unlink(dst);
		return 1;
	}
	printf("%s: %llu MiB of data in a %llu MiB qcow2 disk\n", dst,
	       (unsigned long long)(written >> 20), (unsigned long long)(size >> 20));
	return 0;
}

int cmd_image(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 64 : 0;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "create"))
		return image_create(argc - 1, argv + 1);
	if (!strcmp(sub, "ls") || !strcmp(sub, "list")) {
		if (argc > 2) {
			fprintf(stderr, "skiff image ls: takes no arguments\n");
			return 64;
		}
		return image_ls();
	}
	if (!strcmp(sub, "rm"))
		return image_rm(argc - 1, argv + 1);
	if (!strcmp(sub, "convert")) {
		if (argc != 4) {
			fprintf(stderr, "usage: skiff image convert RAW-DISK NEW.qcow2\n");
			return 64;
		}
		return image_convert(argv[2], argv[3]);
	}
	fprintf(stderr, "skiff image: unknown command '%s'\n%s", sub, usage);
	return 64;
}
