/*
 * The process's terminal while skiff is a console (skiff run, skiff
 * console, skiff exec -t): standard input in raw mode, put back however the
 * process ends (a return, exit(), a fatal signal); and the signals that end
 * a console session (SIGTERM, SIGINT, SIGHUP) turned into a byte on a pipe
 * the session polls, with SIGPIPE ignored.
 *
 * The saved terminal state is process-wide, as the terminal is, and a
 * signal handler must reach it: the one static state here.
 */
#ifndef SKIFF_BASE_TERMINAL_H
#define SKIFF_BASE_TERMINAL_H

#include <stdbool.h>

/* Raw mode when standard input is a terminal; true if it now is. */
bool terminal_raw_begin(void);
/* Put the terminal back as it was (nothing if it is not raw). */
void terminal_raw_end(void);

/* From now on SIGTERM, SIGINT and SIGHUP each write their number as one
 * byte to `fd` (a non-blocking pipe); -1 makes them do nothing more. */
void terminal_stop_signals(int fd);

#endif
