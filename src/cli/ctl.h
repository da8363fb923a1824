/*
 * The `skiff` subcommands that drive skiffd (create, ls, start, stop, kill,
 * pause, resume, console, inspect, top, rm) and what they share: finding
 * skiffd's socket (--socket, else $SKIFF_SOCKET, else the default beside
 * skiffd's own), one call to its API with its errors turned into messages,
 * and small formatting helpers.
 */
#ifndef SKIFF_CLI_CTL_H
#define SKIFF_CLI_CTL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

/* Is `name` one of the subcommands here? */
bool ctl_is_command(const char *name);
/* Run one; argv[0] is the subcommand. Returns the exit status. */
int ctl_main(int argc, char **argv);

struct ctl {
	const char *cmd;       /* "ls", ... for messages */
	const char *socket;    /* skiffd's socket */
	char *socket_owned;
};

/*
 * `method` `path` with `body` (NULL: none). On a 2xx answer returns 0 and,
 * when `out` is given, the parsed JSON body (NULL if there was none). On any
 * failure prints "skiff CMD: <why>" (skiffd's fault_message when it gave
 * one) and returns -1.
 */
int ctl_call(struct ctl *c, const char *method, const char *path, const char *body, json_t **out);
/* The same for a text answer (GET /metrics): *text is malloc'd. */
int ctl_call_text(struct ctl *c, const char *path, char **text);

/* "512M", "1.5G" */
void ctl_fmt_mib(char *out, size_t cap, double mib);
/* "3m12s", "2h05m", "4d03h" */
void ctl_fmt_age(char *out, size_t cap, int64_t seconds);

/* The options every subcommand takes (getopt_long values). */
enum { CTL_OPT_SOCKET = 1000, CTL_OPT_JSON };
/* Handles --socket (and --json when `json` is given); false for others. */
bool ctl_common_opt(struct ctl *c, int o, bool *json);
/* The message and status (64) for an unknown option or a missing value. */
int ctl_bad_opt(struct ctl *c, int o, char **argv);
/* "/vms/NAME" + suffix (NULL: none); malloc'd, NULL if out of memory. */
char *ctl_vm_path(const char *name, const char *suffix);
/* PUT /vms/NAME/actions {"action_type": what}; 0, or -1 with a message. */
int ctl_action(struct ctl *c, const char *name, const char *what, char *err, size_t errlen);
/* The JSON on standard output, indented, in its own order. */
void ctl_print_json(const json_t *v);

/* skiff create (ctl_create.c). */
int ctl_create(struct ctl *c, int argc, char **argv);
/* skiff console NAME / skiff top (attach.c, top.c). */
int ctl_console(struct ctl *c, int argc, char **argv);
int ctl_top(struct ctl *c, int argc, char **argv);
/* skiff snapshot VM DIR / restore DIR / clone VM N (ctl_snapshot.c). */
int ctl_snapshot(struct ctl *c, int argc, char **argv);
int ctl_restore(struct ctl *c, int argc, char **argv);
int ctl_clone(struct ctl *c, int argc, char **argv);

#endif
