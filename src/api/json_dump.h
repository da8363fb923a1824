/*
 * JSON text for the guest agent's data-carrying messages, where one member
 * is a long base64 string (a 1 MiB piece of a file is 1.4 MB of text):
 * jansson's json_dumps looks at every character of it as UTF-8 (about 10
 * ns a byte here), which made the host's JSON work cost as much as the
 * guest's whole copy. json_dump_text copies strings that need no escaping
 * as they are (eight bytes a step) and hands any value it does not take on
 * (a real number, a string with an escape) to json_dumps: the text is
 * what json_dumps(v, JSON_COMPACT) gives, byte for byte.
 */
#ifndef SKIFF_API_JSON_DUMP_H
#define SKIFF_API_JSON_DUMP_H

#include <jansson.h>

/* A new NUL-terminated text (free() it), or NULL when out of memory or v
 * is NULL. */
char *json_dump_text(const json_t *v);

#endif
