/* System images in the user's cache directory; see image_store.h. */
#include "daemon/image_store.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/disk/disk.h"

char *image_store_dir(void)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char *p = NULL;
	int r;
	if (xdg && xdg[0] == '/')
		r = asprintf(&p, "%s/skiff/images", xdg);
	else if (home && *home)
		r = asprintf(&p, "%s/.cache/skiff/images", home);
	else
		return NULL;
	return r < 0 ? NULL : p;
}

bool image_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	return n >= 1 && n <= 64 && name[0] != '.' &&
	       strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

void image_meta_free(struct image_meta *m)
{
	free(m->dir);
	free(m->name);
	free(m->suite);
	free(m->codename);
	free(m->created);
	free(m->kernel_release);
	free(m->disk);
	free(m->kernel);
	free(m->initrd);
	free(m->cmdline);
	memset(m, 0, sizeof(*m));
}

static char *dup_or_empty(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return strdup(s ? s : "");
}

/* The full path of a file the metadata names: a plain name, which exists as
 * a regular file in the image's directory. */
static char *member(const struct image_meta *m, json_t *o, const char *key, char *err, size_t errlen)
{
	const char *f = json_string_value(json_object_get(o, key));
	if (!f || !*f || strchr(f, '/') || !strcmp(f, ".") || !strcmp(f, "..")) {
		snprintf(err, errlen, "image '%s': image.json: \"%s\" must name a file in %s",
			 m->name, key, m->dir);
		return NULL;
	}
	char *p = NULL;
	if (asprintf(&p, "%s/%s", m->dir, f) < 0) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	struct stat st;
	if (stat(p, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "image '%s': %s: %s", m->name, p,
			 errno && !S_ISREG(st.st_mode) ? strerror(errno) : "not a regular file");
		free(p);
		return NULL;
	}
	return p;
}

int image_meta_load(const char *store, const char *name, struct image_meta *m,
		    char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	if (!image_name_ok(name)) {
		snprintf(err, errlen, "bad image name '%s' (letters, digits, '.', '_', '-')", name);
		return -1;
	}
	char *own = store ? NULL : image_store_dir();
	if (!store && !own) {
		snprintf(err, errlen, "neither XDG_CACHE_HOME nor HOME is set: no image directory");
		return -1;
	}
	int r = asprintf(&m->dir, "%s/%s", store ? store : own, name);
	free(own);
	if (r < 0) {
		m->dir = NULL;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	m->name = strdup(name);
	char *path = NULL;
	if (!m->name || asprintf(&path, "%s/image.json", m->dir) < 0) {
		snprintf(err, errlen, "out of memory");
		image_meta_free(m);
		return -1;
	}
	struct stat st;
	if (stat(m->dir, &st)) {
		snprintf(err, errlen, "no image '%s' (%s does not exist; see skiff image ls)", name, m->dir);
		free(path);
		image_meta_free(m);
		return -1;
	}
	json_error_t je;
	json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!o || !json_is_object(o)) {
		snprintf(err, errlen, "image '%s': %s: %s", name, path,
			 o ? "not a JSON object" : je.text);
		json_decref(o);
		free(path);
		image_meta_free(m);
		return -1;
	}
	free(path);
	const char *fmt = json_string_value(json_object_get(o, "format"));
	const char *dfmt = json_string_value(json_object_get(o, "disk_format"));
	json_t *size = json_object_get(o, "size");
	if (!fmt || strcmp(fmt, "skiff-image 1")) {
		snprintf(err, errlen, "image '%s': image.json is not a skiff image description "
			 "(format \"%s\")", name, fmt ? fmt : "");
		goto fail;
	}
	if (!dfmt || strcmp(dfmt, "qcow2")) {
		snprintf(err, errlen, "image '%s': disk_format must be qcow2", name);
		goto fail;
	}
	if (!(m->disk = member(m, o, "disk", err, errlen)) ||
	    !(m->kernel = member(m, o, "kernel", err, errlen)) ||
	    !(m->initrd = member(m, o, "initrd", err, errlen)))
		goto fail;
	const char *cmdline = json_string_value(json_object_get(o, "cmdline"));
	if (!cmdline || strlen(cmdline) > 1024) {
		snprintf(err, errlen, "image '%s': image.json has no usable \"cmdline\"", name);
		goto fail;
	}
	m->cmdline = strdup(cmdline);
	m->suite = dup_or_empty(o, "suite");
	m->codename = dup_or_empty(o, "codename");
	m->created = dup_or_empty(o, "created");
	m->kernel_release = dup_or_empty(o, "kernel_release");
	m->size = json_is_integer(size) && json_integer_value(size) > 0 ?
		  (uint64_t)json_integer_value(size) : 0;
	m->npackages = json_array_size(json_object_get(o, "packages"));
	json_t *secs = json_object_get(o, "create_seconds");
	m->create_seconds = json_is_integer(secs) ? (long)json_integer_value(secs) : -1;
	if (!m->cmdline || !m->suite || !m->codename || !m->created || !m->kernel_release) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	json_decref(o);
	return 0;
fail:
	json_decref(o);
	image_meta_free(m);
	return -1;
}

int image_overlay_create(const struct image_meta *m, const char *overlay, char *err, size_t errlen)
{
	/* Relative to the overlay when it sits in the image's directory, so the
	 * backing file resolves beneath the overlay's own directory. */
	size_t dl = strlen(m->dir);
	const char *slash = strrchr(overlay, '/');
	bool beside = slash && (size_t)(slash - overlay) == dl && !strncmp(overlay, m->dir, dl);
	const char *backing = beside ? strrchr(m->disk, '/') + 1 : m->disk;
	struct disk_create_opts o = {
		.size = 0, .backing_file = backing, .backing_format = DISK_FORMAT_QCOW2,
	};
	char sub[512];
	if (disk_create_qcow2(overlay, &o, sub, sizeof(sub)) < 0) {
		snprintf(err, errlen, "image '%s': cannot create the overlay: %s", m->name, sub);
		return -1;
	}
	return 0;
}
