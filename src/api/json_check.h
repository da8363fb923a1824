/*
 * Checking JSON request bodies against a declared shape before anything is
 * applied, the way Firecracker checks every body against its API spec: each
 * member must be known, of the declared type, and every required member
 * present. Messages name the offending member by its full path
 * ("drives.rate_limiter.bandwidth.size"). A member given as null counts as
 * absent (Firecracker's optional fields accept null).
 *
 * Also the small accessors the section parsers use once a body has passed,
 * and the {"fault_message": ...} error body shared by the VMM and skiffd.
 */
#ifndef SKIFF_API_JSON_CHECK_H
#define SKIFF_API_JSON_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum api_type {
	API_T_STRING,
	API_T_BOOL,
	API_T_UINT,    /* a JSON integer >= 0 (no fraction, no exponent) */
	API_T_NUMBER,  /* any JSON number */
	API_T_OBJECT,  /* members described by `object` */
	API_T_ARRAY,   /* items of type `item`; objects described by `object` */
};

/* Where api_json_store puts a member that passed its check, in the
 * caller's struct at `off`; API_S_NONE: the caller reads it itself. */
enum api_store {
	API_S_NONE,
	API_S_U16,      /* API_T_UINT in [min, max] into a uint16_t */
	API_S_U32,      /* ... into a uint32_t (or an unsigned) */
	API_S_U64,      /* ... into a uint64_t */
	API_S_MIB,      /* API_T_UINT MiB in [min, max], as bytes into a uint64_t */
	API_S_BOOL,     /* API_T_BOOL into a bool */
	API_S_NOT,      /* API_T_BOOL, negated, into a bool */
	API_S_POSITIVE, /* API_T_NUMBER > 0 into a double */
	API_S_STRING,   /* API_T_STRING (min 1: not empty), a copy into a
			 * char * (the one before is freed) */
};

struct api_field {
	const char *name;               /* NULL ends a table */
	enum api_type type;
	bool required;
	const struct api_field *object; /* for API_T_OBJECT, or arrays of objects */
	enum api_type item;             /* for API_T_ARRAY */
	size_t max_items;               /* for API_T_ARRAY; 0 = no limit */
	enum api_store store;           /* api_json_store: how, */
	size_t off;                     /* where (offsetof the destination), */
	uint64_t min, max;              /* the range (max 0: the type's own) */
	const char *hint;               /* and what a range message adds */
};

/* Check that `value` is an object whose members follow `fields`. `where`
 * names it in messages. NULL if it conforms, else `err` holding a message. */
const char *api_json_check_object(const json_t *value, const struct api_field *fields,
				  const char *where, char *err, size_t errlen);

/* Store the members of a checked object (api_json_check_object with the
 * same table) that are present and have a `store`, into `dst`, checking
 * their ranges. Absent members leave `dst` as it was. NULL, or `err` naming
 * the member ("machine-config.vcpu_count: 9 is out of range (1 to 8)"); on
 * an error `dst` may be partly written. */
const char *api_json_store(const json_t *obj, const struct api_field *fields, void *dst,
			   const char *where, char *err, size_t errlen);

/* "a string", "an integer", ... for messages. */
const char *api_json_type_name(const json_t *v);

/* Accessors for a checked object; absent and null are the same. */
const json_t *api_json_member(const json_t *obj, const char *name);
const char *api_json_string(const json_t *obj, const char *name);
bool api_json_bool(const json_t *obj, const char *name, bool dflt);
/* false when absent; the value must have passed API_T_UINT. */
bool api_json_uint(const json_t *obj, const char *name, uint64_t *out);
bool api_json_number(const json_t *obj, const char *name, double *out);

/* Parse a request body: one JSON object, no duplicate keys, nothing after
 * it. NULL with a message naming the line and column on failure. */
json_t *api_json_parse_body(const char *body, size_t len, char *err, size_t errlen);

/* `s` as it may appear in a message: printable ASCII only (others become
 * '?'), at most 64 characters then "...". */
void api_json_printable(char *out, size_t cap, const char *s);

/* {"fault_message": "<msg>"} as a malloc'd string (NULL if out of memory).
 * Bytes of msg that are not valid UTF-8 become '?'. */
char *api_fault_body(const char *msg);

#endif
