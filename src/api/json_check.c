/* Shape checks for JSON request bodies and the fault body; see json_check.h. */
#include "api/json_check.h"
#include "api/json_load.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *api_json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number with a fraction";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "an unknown value";
}

static const char *want_name(enum api_type t)
{
	switch (t) {
	case API_T_STRING: return "a string";
	case API_T_BOOL: return "a boolean";
	case API_T_UINT: return "a non-negative integer";
	case API_T_NUMBER: return "a number";
	case API_T_OBJECT: return "an object";
	case API_T_ARRAY: return "an array";
	}
	return "?";
}

void api_json_printable(char *out, size_t cap, const char *s)
{
	if (!cap)
		return;
	size_t n = 0;
	for (; *s && n + 4 < cap && n < 64; s++)
		out[n++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	if (*s)
		for (int k = 0; k < 3 && n + 1 < cap; k++)
			out[n++] = '.';
	out[n] = 0;
}

static void join(char *out, size_t cap, const char *where, const char *name)
{
	char nm[80];
	api_json_printable(nm, sizeof(nm), name);
	if (where && *where)
		snprintf(out, cap, "%s.%s", where, nm);
	else
		snprintf(out, cap, "%s", nm);
}

static const char *check_value(const json_t *v, enum api_type type, const struct api_field *f,
			       const char *path, char *err, size_t errlen);

static const char *check_array(const json_t *v, const struct api_field *f, const char *path,
			       char *err, size_t errlen)
{
	size_t n = json_array_size(v);
	if (f->max_items && n > f->max_items) {
		snprintf(err, errlen, "%s: at most %zu entries are allowed, got %zu", path, f->max_items, n);
		return err;
	}
	for (size_t i = 0; i < n; i++) {
		char ipath[256];
		snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
		const json_t *it = json_array_get(v, i);
		if (json_is_null(it)) {
			snprintf(err, errlen, "%s: expected %s, got null", ipath, want_name(f->item));
			return err;
		}
		if (check_value(it, f->item, f, ipath, err, errlen))
			return err;
	}
	return NULL;
}

static const char *check_value(const json_t *v, enum api_type type, const struct api_field *f,
			       const char *path, char *err, size_t errlen)
{
	bool ok = false;
	switch (type) {
	case API_T_STRING: ok = json_is_string(v); break;
	case API_T_BOOL: ok = json_is_boolean(v); break;
	case API_T_UINT:
		ok = json_is_integer(v);
		if (ok && json_integer_value(v) < 0) {
			snprintf(err, errlen, "%s: must not be negative (got %lld)", path,
				 (long long)json_integer_value(v));
			return err;
		}
		break;
	case API_T_NUMBER:
		ok = json_is_number(v);
		if (ok && !isfinite(json_number_value(v))) {
			snprintf(err, errlen, "%s: must be a finite number", path);
			return err;
		}
		break;
	case API_T_OBJECT:
		if (!json_is_object(v))
			break;
		return api_json_check_object(v, f->object, path, err, errlen);
	case API_T_ARRAY:
		if (!json_is_array(v))
			break;
		return check_array(v, f, path, err, errlen);
	}
	if (type == API_T_OBJECT || type == API_T_ARRAY || !ok) {
		snprintf(err, errlen, "%s: expected %s, got %s", path, want_name(type),
			 api_json_type_name(v));
		return err;
	}
	return NULL;
}

static void known_list(char *out, size_t cap, const struct api_field *fields)
{
	size_t n = 0;
	out[0] = 0;
	for (const struct api_field *f = fields; f->name && n + 1 < cap; f++) {
		int w = snprintf(out + n, cap - n, "%s%s", n ? ", " : "", f->name);
		if (w < 0 || (size_t)w >= cap - n)
			break;
		n += (size_t)w;
	}
}

const char *api_json_check_object(const json_t *value, const struct api_field *fields,
				  const char *where, char *err, size_t errlen)
{
	const char *label = where && *where ? where : "the body";
	if (!json_is_object(value)) {
		snprintf(err, errlen, "%s: expected an object, got %s", label, api_json_type_name(value));
		return err;
	}
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)value, key, v) {
		const struct api_field *f = fields;
		while (f->name && strcmp(f->name, key))
			f++;
		char path[256];
		join(path, sizeof(path), where, key);
		if (!f->name) {
			char known[320], nm[80];
			known_list(known, sizeof(known), fields);
			api_json_printable(nm, sizeof(nm), key);
			snprintf(err, errlen, "%s: unknown field `%s` (known fields: %s)", label, nm, known);
			return err;
		}
		if (json_is_null(v))
			continue; /* null is absent; a required one is reported below */
		if (check_value(v, f->type, f, path, err, errlen))
			return err;
	}
	for (const struct api_field *f = fields; f->name; f++) {
		if (!f->required)
			continue;
		const json_t *m = json_object_get(value, f->name);
		if (!m || json_is_null(m)) {
			char path[256];
			join(path, sizeof(path), where, f->name);
			snprintf(err, errlen, "%s: missing required field `%s`", path, f->name);
			return err;
		}
	}
	return NULL;
}

const json_t *api_json_member(const json_t *obj, const char *name)
{
	const json_t *v = json_object_get(obj, name);
	return v && !json_is_null(v) ? v : NULL;
}

const char *api_json_string(const json_t *obj, const char *name)
{
	const json_t *v = api_json_member(obj, name);
	return v && json_is_string(v) ? json_string_value(v) : NULL;
}

bool api_json_bool(const json_t *obj, const char *name, bool dflt)
{
	const json_t *v = api_json_member(obj, name);
	return v && json_is_boolean(v) ? json_is_true(v) : dflt;
}

bool api_json_uint(const json_t *obj, const char *name, uint64_t *out)
{
	const json_t *v = api_json_member(obj, name);
	if (!v || !json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

bool api_json_number(const json_t *obj, const char *name, double *out)
{
	const json_t *v = api_json_member(obj, name);
	if (!v || !json_is_number(v))
		return false;
	*out = json_number_value(v);
	return true;
}

json_t *api_json_parse_body(const char *body, size_t len, char *err, size_t errlen)
{
	/* An agent file piece is 1.4 MB of base64: read plain JSON without
	 * jansson's byte-at-a-time string scan; anything else (and every
	 * error) goes through jansson. */
	json_t *v = json_load_plain(body, len, NULL);
	if (json_is_object(v))
		return v;
	json_decref(v);
	json_error_t je;
	v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!v) {
		snprintf(err, errlen,
			 "An error occurred when deserializing the json body of a request: %s at line %d column %d.",
			 je.text, je.line, je.column);
		return NULL;
	}
	if (!json_is_object(v)) {
		snprintf(err, errlen,
			 "An error occurred when deserializing the json body of a request: "
			 "expected an object, got %s.", api_json_type_name(v));
		json_decref(v);
		return NULL;
	}
	return v;
}

/* Length of the valid UTF-8 sequence at p (1 to 4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *p)
{
	unsigned c = p[0];
	size_t n;
	unsigned min;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) { n = 2; min = 0x80; c &= 0x1f; }
	else if ((c & 0xf0) == 0xe0) { n = 3; min = 0x800; c &= 0x0f; }
	else if ((c & 0xf8) == 0xf0) { n = 4; min = 0x10000; c &= 0x07; }
	else return 0;
	for (size_t k = 1; k < n; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0; /* also stops at the terminating NUL */
		c = (c << 6) | (p[k] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return n;
}

char *api_fault_body(const char *msg)
{
	if (!msg)
		msg = "";
	size_t len = strlen(msg);
	char *clean = malloc(len + 1);
	if (!clean)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq((const unsigned char *)msg + i);
		if (!n) {
			clean[o++] = '?';
			i++;
			continue;
		}
		memcpy(clean + o, msg + i, n);
		o += n;
		i += n;
	}
	clean[o] = 0;
	json_t *obj = json_pack("{s:s}", "fault_message", clean);
	free(clean);
	if (!obj)
		return NULL;
	char *s = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	return s;
}
