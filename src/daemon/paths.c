/* Default locations of skiffd's socket and state, and size parsing; see
 * paths.h. */
#include "daemon/paths.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *home_dir(void)
{
	const char *h = getenv("HOME");
	return h && *h ? h : ".";
}

char *skiffd_default_state_dir(void)
{
	const char *xdg = getenv("XDG_STATE_HOME");
	char *p = NULL;
	int r;
	if (xdg && xdg[0] == '/')
		r = asprintf(&p, "%s/skiff", xdg);
	else
		r = asprintf(&p, "%s/.local/state/skiff", home_dir());
	return r < 0 ? NULL : p;
}

char *skiffd_default_socket(void)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char *p = NULL;
	int r;
	if (xdg && xdg[0] == '/') {
		r = asprintf(&p, "%s/skiff/skiffd.sock", xdg);
		return r < 0 ? NULL : p;
	}
	char run[64];
	snprintf(run, sizeof(run), "/run/user/%u", (unsigned)getuid());
	struct stat st;
	if (stat(run, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == getuid() &&
	    access(run, W_OK) == 0) {
		r = asprintf(&p, "%s/skiff/skiffd.sock", run);
		return r < 0 ? NULL : p;
	}
	char *state = skiffd_default_state_dir();
	if (!state)
		return NULL;
	r = asprintf(&p, "%s/skiffd.sock", state);
	free(state);
	return r < 0 ? NULL : p;
}

int skiffd_mkdirs(const char *path)
{
	char *p = strdup(path);
	if (!p)
		return -1;
	size_t n = strlen(p);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != 0)
			continue;
		char c = p[i];
		p[i] = 0;
		if (mkdir(p, 0700) && errno != EEXIST) {
			int e = errno;
			free(p);
			errno = e;
			return -1;
		}
		p[i] = c;
	}
	free(p);
	struct stat st;
	if (stat(path, &st))
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}
