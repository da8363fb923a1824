/*
 * Where skiffd keeps its socket and state when not told otherwise, shared by
 * skiffd and the `skiff` client so both agree without configuration:
 *
 *   socket: $XDG_RUNTIME_DIR/skiff/skiffd.sock, else /run/user/UID/skiff/
 *           skiffd.sock when /run/user/UID exists, else the state directory's
 *           skiffd.sock
 *   state:  ${XDG_STATE_HOME:-~/.local/state}/skiff
 *
 * Also the size parser both use for memory amounts ("512", "512M", "2G").
 */
#ifndef SKIFF_DAEMON_PATHS_H
#define SKIFF_DAEMON_PATHS_H

#include <stdint.h>

/* malloc'd paths; NULL if out of memory. */
char *skiffd_default_state_dir(void);
char *skiffd_default_socket(void);


/* mkdir -p with mode 0700 for the parts it creates; 0 or -1 with errno. */
int skiffd_mkdirs(const char *path);

#endif
