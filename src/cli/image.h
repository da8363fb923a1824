/* `skiff image`: create, list, remove and convert system images (image.c). */
#ifndef SKIFF_CLI_IMAGE_H
#define SKIFF_CLI_IMAGE_H

/* argv[0] is "image". Returns the exit status. */
int cmd_image(int argc, char **argv);

#endif
