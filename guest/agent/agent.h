/*
 * skiff's guest agent: a small QEMU guest agent (QGA) for the default
 * guest. It speaks the QGA protocol (JSON requests and replies, one at a
 * time, over the virtio-console port org.qemu.guest_agent.0; the host's
 * guest-sync-delimited and a 0xFF byte resynchronise) and implements the
 * subset of QEMU's qga/qapi-schema.json that skiff uses, with the same
 * command, argument and field names, plus skiff's extensions (streamed
 * exec, clipboard, file hash), which it lists in guest-info so a host can tell.
 *
 * One thread: a poll loop over the port, the children's pipes and a
 * signalfd for SIGCHLD. A command answers at once, except guest-exec-io
 * with wait-ms, which is held (no further request is read meanwhile, so
 * replies stay in order) until its process has output or exits, or the
 * wait ends.
 */
#ifndef SKIFF_AGENT_AGENT_H
#define SKIFF_AGENT_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <sys/types.h>

#include "json.h"

#define AGENT_VERSION "skiff-agent 1"
#define AGENT_PORT_NAME "org.qemu.guest_agent.0"
/* Largest request read (a file-write chunk of 1 MiB is 1.4 MB of base64). */
#define AGENT_MAX_REQUEST (8u * 1024 * 1024)
#define AGENT_MAX_PROCS 32
#define AGENT_MAX_FILES 64
/* Stock guest-exec keeps up to 16 MiB of each stream, as QEMU's agent. */
#define EXEC_CAPTURE_MAX (16u * 1024 * 1024)
/* Streamed exec: what each stream buffers before the child has to wait. */
#define EXEC_STREAM_BUF (1u * 1024 * 1024)
#define CLIP_MAX (1u * 1024 * 1024)

/* A byte buffer: data[off, off + len). */
struct bytes {
	uint8_t *data;
	size_t off, len, cap;
};

struct proc {
	bool used;
	pid_t pid;
	bool stream;             /* started by guest-exec-stream */
	bool capture;            /* stock guest-exec with capture-output */
	int in_fd, out_fd, err_fd;   /* -1 when closed */
	struct bytes in, out, err;
	bool in_close;           /* close stdin once `in` is written */
	bool out_trunc, err_trunc;
	bool exited;             /* reaped: status is valid */
	int status;
	bool tty;                /* out_fd is a pty master (err_fd unused) */
};

struct file {
	bool used;
	int64_t handle;
	int fd;
};

enum misbehave { MB_NONE, MB_GARBAGE, MB_HUGE, MB_SILENT };

struct agent {
	int port;                /* -1 until the port is found */
	const char *port_path;   /* NULL: look the port up by name */
	bool fd_given;           /* --fd: the port was open at start */
	int sigfd;
	uint8_t *req;            /* a request being received */
	size_t req_len, req_cap;
	int depth;               /* framing: nesting of the request so far */
	bool in_string, escape, skipping;
	bool synced_reply;       /* the next reply is prefixed with 0xFF */

	struct proc procs[AGENT_MAX_PROCS];
	struct file files[AGENT_MAX_FILES];
	int64_t next_handle;

	/* A guest-exec-io held until data, exit or the deadline. */
	bool held;
	struct jval *held_req;
	int64_t held_pid;
	int64_t held_input;      /* input-count of the held (or current) guest-exec-io */
	uint64_t held_deadline_ms;

	char *clip_path;
	enum misbehave misbehave;
};

/* A command: fill `ret` with the JSON of the return value and give 0, or
 * give -1 with a message in err (an error reply, class GenericError), or 1
 * when no reply is due now (guest-shutdown; a held guest-exec-io). */
typedef int (*agent_cmd_fn)(struct agent *a, const struct jval *args, struct jbuf *ret,
			    char *err, size_t errlen);

struct agent_cmd {
	const char *name;
	agent_cmd_fn fn;
	bool success_response;
};

extern const struct agent_cmd agent_cmds[];
extern const size_t agent_ncmds;

/* Argument helpers: false with "Parameter 'x' ..." in err. */
bool arg_int(const struct jval *args, const char *name, bool required, int64_t *out,
	     char *err, size_t errlen);
bool arg_bool(const struct jval *args, const char *name, bool *out, char *err, size_t errlen);
/* The string, or NULL (then err says why if it was required or of the wrong type). */
const struct jval *arg_str(const struct jval *args, const char *name, bool required,
			   char *err, size_t errlen);
/* Decode a base64 argument into a new buffer; false with err. */
bool arg_b64(const struct jval *args, const char *name, uint8_t **data, size_t *len,
	     char *err, size_t errlen);

uint64_t now_ms(void);

/* bytes helpers */
bool bytes_append(struct bytes *b, const uint8_t *p, size_t n);
void bytes_consume(struct bytes *b, size_t n);
void bytes_free(struct bytes *b);

/* cmd_exec.c: poll set and event handling for the children. */
size_t exec_poll_fds(struct agent *a, struct pollfd *fds, size_t max);
void exec_poll_events(struct agent *a, const struct pollfd *fds, size_t n);
void exec_reap(struct agent *a);
/* Whether the held guest-exec-io can be answered now. */
bool exec_held_ready(struct agent *a);
int cmd_exec_io_answer(struct agent *a, const struct jval *args, struct jbuf *ret,
		       char *err, size_t errlen);

/* The commands (cmd_*.c, clip.c). */
#define AGENT_CMD(name) int name(struct agent *a, const struct jval *args, struct jbuf *ret, \
				 char *err, size_t errlen)
AGENT_CMD(cmd_exec);
AGENT_CMD(cmd_exec_status);
AGENT_CMD(cmd_exec_stream);
AGENT_CMD(cmd_exec_io);
AGENT_CMD(cmd_exec_kill);
AGENT_CMD(cmd_exec_resize);
AGENT_CMD(cmd_file_open);
AGENT_CMD(cmd_file_close);
AGENT_CMD(cmd_file_read);
AGENT_CMD(cmd_file_write);
AGENT_CMD(cmd_file_seek);
AGENT_CMD(cmd_file_flush);
AGENT_CMD(cmd_file_hash);
AGENT_CMD(cmd_clipboard_get);
AGENT_CMD(cmd_clipboard_set);

/* clip.c: the `skiff-clip copy|paste` tool. */
int clip_main(int argc, char **argv);
const char *clip_default_path(void);

#endif
