/* `skiff run`: see run.c. */
#ifndef SKIFF_CLI_RUN_H
#define SKIFF_CLI_RUN_H

int cmd_run(int argc, char **argv);

#endif
