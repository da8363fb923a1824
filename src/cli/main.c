/*
 * The `skiff` command: dispatches to its subcommands. `skiff` alone is
 * `skiff run`, which boots the default guest.
 */
#include <stdio.h>
#include <string.h>

#include "cli/agent.h"
#include "cli/ctl.h"
#include "cli/image.h"
#include "cli/run.h"

static const char usage[] =
	"usage: skiff [run] [options]    boot a guest with its console here\n"
	"       skiff create|ls|start|stop|kill|pause|resume|console|inspect|top|rm|snapshot|restore|clone ...\n"
	"                                VMs run by skiffd (see docs/skiffd.md)\n"
	"       skiff exec|cp|shutdown|clipboard ...\n"
	"                                reach into a guest through its agent\n"
	"       skiff image create|ls|rm ...  system images (see docs/images.md)\n"
	"       skiff --version\n"
	"\n"
	"See `skiff run --help` for the options, `skiff COMMAND --help` for the others.\n";

int main(int argc, char **argv)
{
	if (argc < 2)
		return cmd_run(argc, argv);
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "--version")) {
		printf("skiff %s\n", SKIFF_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		fputs(usage, stdout);
		return 0;
	}
	if (!strcmp(argv[1], "image"))
		return cmd_image(argc - 1, argv + 1);
	if (argv[1][0] == '-')
		return cmd_run(argc, argv);
	if (ctl_is_command(argv[1]))
		return ctl_main(argc - 1, argv + 1);
	if (agent_cli_is_command(argv[1]))
		return agent_cli_main(argc - 1, argv + 1);
	fprintf(stderr, "skiff: unknown command '%s'\n%s", argv[1], usage);
	return 64;
}
