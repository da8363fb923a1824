/*
 * libslirp's state in a snapshot section (user_state.c), for the user
 * network backend (user.c), which stops its thread around these calls.
 */
#ifndef SKIFF_BACKEND_NET_USER_STATE_H
#define SKIFF_BACKEND_NET_USER_STATE_H

#include <stddef.h>

#include <slirp/libslirp.h>

struct snap_writer;
struct snap_reader;

/* Append s's state to w. 0, or -1 with a message. */
int user_state_save(Slirp *s, struct snap_writer *w, char *err, size_t errlen);
/* Load what user_state_save wrote into s (s NULL: check its framing and
 * drop it); a malformed or unknown state is reported through
 * snap_reader_fail. */
void user_state_load(Slirp *s, struct snap_reader *r);

#endif
