/* Raw terminal mode, put back however the process ends; see terminal.h. */
#include "base/terminal.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved_tty;
static volatile sig_atomic_t tty_raw;
static volatile sig_atomic_t stop_fd = -1;
static bool exit_hook_set;

void terminal_raw_end(void)
{
	if (tty_raw) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
		tty_raw = 0;
	}
}

/* A fatal signal: the terminal back first, then the default action (a core
 * dump where that is the default). It may come on any thread, a confined
 * one too (vmm/sandbox.c), so it makes no call that only the main thread's
 * list allows: the restore is an ioctl every class may make on standard
 * input, SA_RESETHAND has already put the default action back, and the
 * signal raised again waits until this handler returns. */
static void on_fatal(int sig)
{
	terminal_raw_end();
	raise(sig);
}

bool terminal_raw_begin(void)
{
	if (tty_raw)
		return true;
	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tty))
		return false;
	struct sigaction fa = { .sa_handler = on_fatal, .sa_flags = SA_RESETHAND };
	sigemptyset(&fa.sa_mask);
	const int fatal[] = { SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE };
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		sigaction(fatal[i], &fa, NULL);
	if (!exit_hook_set) {
		atexit(terminal_raw_end);
		exit_hook_set = true;
	}
	struct termios raw = saved_tty;
	cfmakeraw(&raw);
	tty_raw = 1;
	tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	return true;
}

static void on_stop(int sig)
{
	uint8_t b = (uint8_t)sig;
	if (stop_fd >= 0 && write(stop_fd, &b, 1) < 0) {
		/* A full pipe already holds a stop; nothing more to do here. */
	}
}

void terminal_stop_signals(int fd)
{
	stop_fd = fd;
	struct sigaction sa = { .sa_handler = on_stop };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* They may have been held blocked until a handler was there (the
	 * jailed VMM, process 1 of its PID namespace, vmm/jail.c): one that
	 * came meanwhile is delivered now. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_UNBLOCK, &stop, NULL);
}
