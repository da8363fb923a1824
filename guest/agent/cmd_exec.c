/*
 * The guest agent's process commands.
 *
 * QEMU's (qga/qapi-schema.json): guest-exec starts a program (path looked
 * up in PATH, arg, env replacing the environment when given, input-data
 * written to its stdin, capture-output true/false or a
 * GuestExecCaptureOutputMode name) and returns its pid; guest-exec-status
 * reports it, with the captured output (at most 16 MiB a stream, then
 * out-truncated/err-truncated) once it has exited and closed its output,
 * and forgets it then.
 *
 * skiff's extensions, for `skiff exec`: guest-exec-stream starts a program
 * with stdin, stdout and stderr kept as pipes (or all three on a new
 * pseudo-terminal with tty: true); guest-exec-io passes input to it
 * (input-data, input-close) and returns the output so far (out-data,
 * err-data, at most `count` bytes each) and, once all output has been
 * taken, exited/exitcode/signal; with wait-ms it waits for output first.
 * A stream buffers EXEC_STREAM_BUF bytes; beyond that the program's writes
 * wait, so output is never lost or held in the agent without bound.
 * guest-exec-kill signals a program's process group; guest-exec-resize sets
 * its terminal's size.
 *
 * Every program runs in its own session (setsid), with its own process
 * group, so guest-exec-kill reaches what it started too.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define IO_COUNT_DEFAULT (1u * 1024 * 1024)
#define IO_COUNT_MAX (4u * 1024 * 1024)
#define IO_WAIT_MAX_MS 5000

extern char **environ;

static struct proc *find_proc(struct agent *a, const struct jval *args, char *err, size_t errlen)
{
	int64_t pid;
	if (!arg_int(args, "pid", true, &pid, err, errlen))
		return NULL;
	for (size_t i = 0; i < AGENT_MAX_PROCS; i++)
		if (a->procs[i].used && a->procs[i].pid == pid)
			return &a->procs[i];
	snprintf(err, errlen, "Invalid parameter 'pid'");
	return NULL;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void proc_free(struct proc *p)
{
	close_fd(&p->in_fd);
	close_fd(&p->out_fd);
	close_fd(&p->err_fd);
	bytes_free(&p->in);
	bytes_free(&p->out);
	bytes_free(&p->err);
	memset(p, 0, sizeof(*p));
}

/* A NULL-terminated copy of a JSON array of strings (path first when
 * given), or NULL with err. An absent array gives just `first`. */
static char **string_list(const struct jval *arr, const char *name, const char *first,
			  char *err, size_t errlen)
{
	if (arr && arr->type != J_ARRAY) {
		snprintf(err, errlen, "Parameter '%s' expects array", name);
		return NULL;
	}
	size_t n = arr ? arr->len : 0;
	char **v = calloc(n + 2, sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	size_t k = 0;
	if (first)
		v[k++] = (char *)first;
	for (size_t i = 0; i < n; i++) {
		const struct jval *s = &arr->items[i];
		if (s->type != J_STRING || strlen(s->s) != s->len) {
			snprintf(err, errlen, "Parameter '%s.%zu' expects a string without NUL bytes", name, i);
			free(v);
			return NULL;
		}
		v[k++] = s->s;
	}
	return v;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

enum capture { CAP_NONE, CAP_STDOUT, CAP_STDERR, CAP_SEPARATED, CAP_MERGED };

struct spawn {
	const char *path;
	char **argv, **envp;     /* envp NULL: the agent's environment */
	bool want_in;            /* stdin a pipe (else /dev/null) */
	enum capture cap;
	bool tty;
	unsigned rows, cols;
};

/* Start a program; fill p's descriptors. 0, or -1 with err (also when the
 * program could not be executed: the child reports its errno through a
 * close-on-exec pipe). */
static int spawn(const struct spawn *s, struct proc *p, char *err, size_t errlen)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 }, rep[2] = { -1, -1 };
	int master = -1, slave = -1;
	p->in_fd = p->out_fd = p->err_fd = -1;
	if (pipe2(rep, O_CLOEXEC))
		goto sys_fail;
	if (s->tty) {
		master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (master < 0 || grantpt(master) || unlockpt(master))
			goto sys_fail;
		const char *name = ptsname(master);
		slave = name ? open(name, O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
		if (slave < 0)
			goto sys_fail;
		struct winsize ws = { .ws_row = (unsigned short)(s->rows ? s->rows : 24),
				      .ws_col = (unsigned short)(s->cols ? s->cols : 80) };
		ioctl(master, TIOCSWINSZ, &ws);
	} else {
		if ((s->want_in && pipe2(in, O_CLOEXEC)) ||
		    (s->cap != CAP_NONE && s->cap != CAP_STDERR && pipe2(out, O_CLOEXEC)) ||
		    ((s->cap == CAP_STDERR || s->cap == CAP_SEPARATED) && pipe2(errp, O_CLOEXEC)))
			goto sys_fail;
	}
	pid_t pid = fork();
	if (pid < 0)
		goto sys_fail;
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		setsid();
		int null = open("/dev/null", O_RDWR);
		int fd0, fd1, fd2;
		if (s->tty) {
			ioctl(slave, TIOCSCTTY, 0);
			fd0 = fd1 = fd2 = slave;
		} else {
			fd0 = s->want_in ? in[0] : null;
			fd1 = out[1] >= 0 ? out[1] : null;
			fd2 = errp[1] >= 0 ? errp[1] : s->cap == CAP_MERGED ? out[1] : null;
		}
		if (dup2(fd0, 0) < 0 || dup2(fd1, 1) < 0 || dup2(fd2, 2) < 0)
			_exit(127);
		if (s->envp)
			execvpe(s->path, s->argv, s->envp);
		else
			execvp(s->path, s->argv);
		int e = errno;
		if (write(rep[1], &e, sizeof(e)) < 0) {
			/* the parent sees end of file and a failed exec anyway */
		}
		_exit(127);
	}
	close_fd(&rep[1]);
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&errp[1]);
	close_fd(&slave);
	int e = 0;
	ssize_t r;
	do
		r = read(rep[0], &e, sizeof(e));
	while (r < 0 && errno == EINTR);
	close_fd(&rep[0]);
	if (r == (ssize_t)sizeof(e)) {
		/* The child is reaped by exec_reap: it is not in the table,
		 * so its status is dropped. */
		snprintf(err, errlen, "Failed to execute child process '%.200s' (%s)",
			 s->path, strerror(e));
		close_fd(&in[1]);
		close_fd(&out[0]);
		close_fd(&errp[0]);
		close_fd(&master);
		return -1;
	}
	p->pid = pid;
	p->tty = s->tty;
	if (s->tty) {
		p->in_fd = dup(master);
		p->out_fd = master;
		if (p->in_fd < 0) {
			p->in_fd = -1;
		} else {
			fcntl(p->in_fd, F_SETFD, FD_CLOEXEC);
			set_nonblock(p->in_fd);
		}
		set_nonblock(master);
	} else {
		p->in_fd = in[1];
		p->out_fd = out[0];
		p->err_fd = errp[0];
		if (p->in_fd >= 0)
			set_nonblock(p->in_fd);
		if (p->out_fd >= 0)
			set_nonblock(p->out_fd);
		if (p->err_fd >= 0)
			set_nonblock(p->err_fd);
	}
	return 0;
sys_fail:
	snprintf(err, errlen, "cannot start the process: %s", strerror(errno));
	close_fd(&rep[0]);
	close_fd(&rep[1]);
	close_fd(&in[0]);
	close_fd(&in[1]);
	close_fd(&out[0]);
	close_fd(&out[1]);
	close_fd(&errp[0]);
	close_fd(&errp[1]);
	close_fd(&master);
	close_fd(&slave);
	return -1;
}

static struct proc *free_slot(struct agent *a, char *err, size_t errlen)
{
	for (size_t i = 0; i < AGENT_MAX_PROCS; i++)
		if (!a->procs[i].used)
			return &a->procs[i];
	snprintf(err, errlen, "too many processes started and not yet reported (%d)", AGENT_MAX_PROCS);
	return NULL;
}

/* path, arg, env of guest-exec and guest-exec-stream. */
static bool common_args(const struct jval *args, struct spawn *s, char *err, size_t errlen)
{
	const struct jval *path = arg_str(args, "path", true, err, errlen);
	if (!path)
		return false;
	if (strlen(path->s) != path->len) {
		snprintf(err, errlen, "Parameter 'path': a NUL byte in the path");
		return false;
	}
	s->path = path->s;
	s->argv = string_list(json_get(args, "arg"), "arg", path->s, err, errlen);
	if (!s->argv)
		return false;
	const struct jval *env = json_get(args, "env");
	if (env) {
		s->envp = string_list(env, "env", NULL, err, errlen);
		if (!s->envp) {
			free(s->argv);
			return false;
		}
	}
	return true;
}

int cmd_exec(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	struct spawn s = { 0 };
	struct proc *p = free_slot(a, err, errlen);
	if (!p)
		return -1;
	/* capture-output: a bool (QEMU 2.5 on) or a mode name (QEMU 8.1 on). */
	const struct jval *cap = json_get(args, "capture-output");
	if (!cap || (cap->type == J_BOOL && !cap->b)) {
		s.cap = CAP_NONE;
	} else if (cap->type == J_BOOL) {
		s.cap = CAP_SEPARATED;
	} else if (cap->type == J_STRING) {
		static const char *const names[] = { "none", "stdout", "stderr", "separated", "merged" };
		s.cap = (enum capture)-1;
		for (int i = 0; i < 5; i++)
			if (!strcmp(cap->s, names[i]))
				s.cap = (enum capture)i;
		if ((int)s.cap < 0) {
			snprintf(err, errlen, "Invalid parameter 'capture-output'");
			return -1;
		}
	} else {
		snprintf(err, errlen, "Invalid parameter type for 'capture-output', expected: boolean");
		return -1;
	}
	uint8_t *input;
	size_t input_len;
	if (!arg_b64(args, "input-data", &input, &input_len, err, errlen))
		return -1;
	s.want_in = json_get(args, "input-data") != NULL;
	if (!common_args(args, &s, err, errlen)) {
		free(input);
		return -1;
	}
	memset(p, 0, sizeof(*p));
	int r = spawn(&s, p, err, errlen);
	free(s.argv);
	free(s.envp);
	if (r) {
		free(input);
		return -1;
	}
	p->used = true;
	p->capture = s.cap != CAP_NONE;
	if (s.want_in) {
		if (input_len && !bytes_append(&p->in, input, input_len)) {
			snprintf(err, errlen, "out of memory");
			free(input);
			kill(p->pid, SIGKILL);
			proc_free(p);
			return -1;
		}
		p->in_close = true;
	}
	free(input);
	jb_printf(ret, "{\"pid\": %lld}", (long long)p->pid);
	return 0;
}

/* All output read and the process reaped. */
static bool finished(const struct proc *p)
{
	return p->exited && p->out_fd < 0 && p->err_fd < 0;
}

static void put_status(struct jbuf *ret, const struct proc *p)
{
	if (WIFEXITED(p->status))
		jb_printf(ret, ", \"exitcode\": %d", WEXITSTATUS(p->status));
	else if (WIFSIGNALED(p->status))
		jb_printf(ret, ", \"signal\": %d", WTERMSIG(p->status));
}

int cmd_exec_status(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	struct proc *p = find_proc(a, args, err, errlen);
	if (!p)
		return -1;
	if (!finished(p)) {
		jb_str(ret, "{\"exited\": false}");
		return 0;
	}
	jb_str(ret, "{\"exited\": true");
	put_status(ret, p);
	if (p->capture && !p->stream) {
		if (p->out.len) {
			jb_str(ret, ", \"out-data\": ");
			jb_base64(ret, p->out.data + p->out.off, p->out.len);
		}
		if (p->err.len) {
			jb_str(ret, ", \"err-data\": ");
			jb_base64(ret, p->err.data + p->err.off, p->err.len);
		}
		if (p->out_trunc)
			jb_str(ret, ", \"out-truncated\": true");
		if (p->err_trunc)
			jb_str(ret, ", \"err-truncated\": true");
	}
	jb_str(ret, "}");
	if (ret->failed) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	proc_free(p);   /* reported: forgotten, as QEMU's agent does */
	return 0;
}

int cmd_exec_stream(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	struct spawn s = { .want_in = true, .cap = CAP_SEPARATED };
	struct proc *p = free_slot(a, err, errlen);
	if (!p)
		return -1;
	int64_t rows = 0, cols = 0;
	if (!arg_bool(args, "tty", &s.tty, err, errlen) ||
	    !arg_int(args, "rows", false, &rows, err, errlen) ||
	    !arg_int(args, "cols", false, &cols, err, errlen))
		return -1;
	if (rows < 0 || rows > 10000 || cols < 0 || cols > 10000) {
		snprintf(err, errlen, "Invalid parameter 'rows' or 'cols'");
		return -1;
	}
	s.rows = (unsigned)rows;
	s.cols = (unsigned)cols;
	if (!common_args(args, &s, err, errlen))
		return -1;
	memset(p, 0, sizeof(*p));
	int r = spawn(&s, p, err, errlen);
	free(s.argv);
	free(s.envp);
	if (r)
		return -1;
	p->used = true;
	p->stream = true;
	jb_printf(ret, "{\"pid\": %lld}", (long long)p->pid);
	return 0;
}

int cmd_exec_io_answer(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	struct proc *p = find_proc(a, args, err, errlen);
	if (!p)
		return -1;
	int64_t count = IO_COUNT_DEFAULT;
	arg_int(args, "count", false, &count, err, errlen);
	if (count <= 0 || count > IO_COUNT_MAX)
		count = IO_COUNT_MAX;
	size_t no = p->out.len < (size_t)count ? p->out.len : (size_t)count;
	size_t ne = p->err.len < (size_t)count ? p->err.len : (size_t)count;
	jb_str(ret, "{\"out-data\": ");
	jb_base64(ret, p->out.data ? p->out.data + p->out.off : NULL, no);
	jb_str(ret, ", \"err-data\": ");
	jb_base64(ret, p->err.data ? p->err.data + p->err.off : NULL, ne);
	bool done = finished(p) && no == p->out.len && ne == p->err.len;
	jb_printf(ret, ", \"input-count\": %lld, \"exited\": %s", (long long)a->held_input,
		  done ? "true" : "false");
	if (done)
		put_status(ret, p);
	jb_str(ret, "}");
	if (ret->failed) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	bytes_consume(&p->out, no);
	bytes_consume(&p->err, ne);
	if (done)
		proc_free(p);
	return 0;
}

int cmd_exec_io(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	struct proc *p = find_proc(a, args, err, errlen);
	if (!p)
		return -1;
	if (!p->stream) {
		snprintf(err, errlen, "process %d was not started by guest-exec-stream", (int)p->pid);
		return -1;
	}
	bool close_in = false;
	int64_t wait = 0;
	uint8_t *input;
	size_t len;
	if (!arg_bool(args, "input-close", &close_in, err, errlen) ||
	    !arg_int(args, "wait-ms", false, &wait, err, errlen) ||
	    !arg_b64(args, "input-data", &input, &len, err, errlen))
		return -1;
	/* Input beyond what the stream buffers is refused; input-count tells
	 * the host how much was taken, and it sends the rest later. */
	size_t room = p->in_fd < 0 || p->in_close ? 0 :
		      p->in.len < EXEC_STREAM_BUF ? EXEC_STREAM_BUF - p->in.len : 0;
	size_t take = len < room ? len : room;
	if (p->in_fd < 0 || p->in_close)
		take = len;   /* stdin is gone: the input is dropped, as a closed pipe would */
	else if (take && !bytes_append(&p->in, input, take))
		take = 0;
	free(input);
	if (close_in && take == len)
		p->in_close = true;
	a->held_input = (int64_t)take;
	if (wait > IO_WAIT_MAX_MS)
		wait = IO_WAIT_MAX_MS;
	if (wait > 0 && !p->out.len && !p->err.len && !finished(p)) {
		a->held = true;
		a->held_pid = p->pid;
		a->held_deadline_ms = now_ms() + (uint64_t)wait;
		return 1;
	}
	return cmd_exec_io_answer(a, args, ret, err, errlen);
}

bool exec_held_ready(struct agent *a)
{
	for (size_t i = 0; i < AGENT_MAX_PROCS; i++) {
		struct proc *p = &a->procs[i];
		if (p->used && p->pid == a->held_pid)
			return p->out.len || p->err.len || finished(p);
	}
	return true;   /* gone: answer (with an error) now */
}

int cmd_exec_kill(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	struct proc *p = find_proc(a, args, err, errlen);
	if (!p)
		return -1;
	int64_t sig = SIGKILL;
	if (!arg_int(args, "signal", false, &sig, err, errlen))
		return -1;
	if (sig < 1 || sig > 64) {
		snprintf(err, errlen, "Invalid parameter 'signal'");
		return -1;
	}
	if (!p->exited && kill(-p->pid, (int)sig) && kill(p->pid, (int)sig)) {
		snprintf(err, errlen, "cannot signal process %d: %s", (int)p->pid, strerror(errno));
		return -1;
	}
	return 0;
}

int cmd_exec_resize(struct agent *a, const struct jval *args, struct jbuf *ret, char *err, size_t errlen)
{
	struct proc *p = find_proc(a, args, err, errlen);
	if (!p)
		return -1;
	int64_t rows, cols;
	if (!arg_int(args, "rows", true, &rows, err, errlen) || !arg_int(args, "cols", true, &cols, err, errlen))
		return -1;
	if (!p->tty || p->out_fd < 0 || rows <= 0 || rows > 10000 || cols <= 0 || cols > 10000) {
		snprintf(err, errlen, p->tty ? "Invalid parameter 'rows' or 'cols'" : "process %d has no terminal",
			 (int)p->pid);
		return -1;
	}
	struct winsize ws = { .ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols };
	if (ioctl(p->out_fd, TIOCSWINSZ, &ws)) {
		snprintf(err, errlen, "cannot set the terminal size: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ I/O pumping */

static bool want_read(const struct proc *p, const struct bytes *b)
{
	return !p->stream || b->len < EXEC_STREAM_BUF;
}

size_t exec_poll_fds(struct agent *a, struct pollfd *fds, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < AGENT_MAX_PROCS && n + 3 <= max; i++) {
		struct proc *p = &a->procs[i];
		if (!p->used)
			continue;
		if (p->in_fd >= 0 && p->in_close && !p->in.len)
			close_fd(&p->in_fd);   /* all input written: end of file */
		if (p->in_fd >= 0 && p->in.len)
			fds[n++] = (struct pollfd){ .fd = p->in_fd, .events = POLLOUT };
		if (p->out_fd >= 0 && want_read(p, &p->out))
			fds[n++] = (struct pollfd){ .fd = p->out_fd, .events = POLLIN };
		if (p->err_fd >= 0 && want_read(p, &p->err))
			fds[n++] = (struct pollfd){ .fd = p->err_fd, .events = POLLIN };
	}
	return n;
}

/* Read what fd has into b (stock capture: up to EXEC_CAPTURE_MAX, the rest
 * is read and dropped); closes fd at end of file. */
static void pump_out(struct proc *p, int *fd, struct bytes *b, bool *trunc)
{
	uint8_t buf[16 * 1024];
	for (int rounds = 0; rounds < 16; rounds++) {
		size_t want = sizeof(buf);
		if (p->stream && EXEC_STREAM_BUF - b->len < want)
			want = EXEC_STREAM_BUF - b->len;
		if (!want)
			return;
		ssize_t r = read(*fd, buf, want);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0) {   /* end of file, or EIO from a pty whose slave closed */
			close_fd(fd);
			return;
		}
		size_t keep = (size_t)r;
		if (!p->stream) {
			size_t room = b->len < EXEC_CAPTURE_MAX ? EXEC_CAPTURE_MAX - b->len : 0;
			if (keep > room) {
				keep = room;
				*trunc = true;
			}
			if (!p->capture)
				keep = 0;
		}
		if (keep && !bytes_append(b, buf, keep))
			*trunc = true;
	}
}

static void pump_in(struct proc *p)
{
	while (p->in.len) {
		ssize_t w = write(p->in_fd, p->in.data + p->in.off, p->in.len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w <= 0) {   /* the program closed its stdin: drop the rest */
			bytes_free(&p->in);
			close_fd(&p->in_fd);
			return;
		}
		bytes_consume(&p->in, (size_t)w);
	}
}

void exec_poll_events(struct agent *a, const struct pollfd *fds, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		if (!fds[k].revents)
			continue;
		for (size_t i = 0; i < AGENT_MAX_PROCS; i++) {
			struct proc *p = &a->procs[i];
			if (!p->used)
				continue;
			if (fds[k].fd == p->in_fd)
				pump_in(p);
			else if (fds[k].fd == p->out_fd)
				pump_out(p, &p->out_fd, &p->out, &p->out_trunc);
			else if (fds[k].fd == p->err_fd)
				pump_out(p, &p->err_fd, &p->err, &p->err_trunc);
		}
	}
}

void exec_reap(struct agent *a)
{
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid <= 0)
			return;
		for (size_t i = 0; i < AGENT_MAX_PROCS; i++) {
			struct proc *p = &a->procs[i];
			if (p->used && p->pid == pid) {
				p->exited = true;
				p->status = st;
				if (p->tty)   /* its stdin is the terminal: no one reads it now */
					close_fd(&p->in_fd);
			}
		}
	}
}
