/*
 * api_json_store (json_check.h): a body's members into the caller's struct
 * by the same table that declared their shape, so a section's field is one
 * row (name, type, destination, range) rather than a read, a range check
 * and an assignment written out for each. The members have passed
 * api_json_check_object already: only the ranges are checked here.
 */
#include "api/json_check.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The largest value a store kind holds. */
static uint64_t type_max(enum api_store s)
{
	switch (s) {
	case API_S_U16: return UINT16_MAX;
	case API_S_U32: return UINT32_MAX;
	case API_S_MIB: return UINT64_MAX >> 20;
	default: return UINT64_MAX;
	}
}

static const char *store_uint(const json_t *v, const struct api_field *f, char *at, const char *where,
			      char *err, size_t errlen)
{
	uint64_t x = (uint64_t)json_integer_value(v);
	uint64_t max = f->max ? f->max : type_max(f->store);
	if (x < f->min || x > max) {
		snprintf(err, errlen, "%s.%s: %" PRIu64 " is out of range (%" PRIu64 " to %" PRIu64 ")%s%s",
			 where, f->name, x, f->min, max, f->hint ? "; " : "", f->hint ? f->hint : "");
		return err;
	}
	switch (f->store) {
	case API_S_U16: *(uint16_t *)at = (uint16_t)x; break;
	case API_S_U32: *(uint32_t *)at = (uint32_t)x; break;
	case API_S_MIB: *(uint64_t *)at = x << 20; break;
	default: *(uint64_t *)at = x; break;
	}
	return NULL;
}

static const char *store_one(const json_t *v, const struct api_field *f, char *at, const char *where,
			     char *err, size_t errlen)
{
	switch (f->store) {
	case API_S_NONE:
		return NULL;
	case API_S_U16:
	case API_S_U32:
	case API_S_U64:
	case API_S_MIB:
		return store_uint(v, f, at, where, err, errlen);
	case API_S_BOOL:
	case API_S_NOT:
		*(bool *)at = json_is_true(v) != (f->store == API_S_NOT);
		return NULL;
	case API_S_POSITIVE: {
		double q = json_number_value(v);
		if (!(q > 0)) {
			snprintf(err, errlen, "%s.%s: must be more than 0 (got %g)%s%s", where, f->name, q,
				 f->hint ? "; " : "", f->hint ? f->hint : "");
			return err;
		}
		*(double *)at = q;
		return NULL;
	}
	case API_S_STRING: {
		const char *s = json_string_value(v);
		if (strlen(s) < f->min) {
			snprintf(err, errlen, "%s.%s: must not be empty", where, f->name);
			return err;
		}
		char *copy = strdup(s);
		if (!copy) {
			snprintf(err, errlen, "out of memory");
			return err;
		}
		free(*(char **)at);
		*(char **)at = copy;
		return NULL;
	}
	}
	return NULL;
}

const char *api_json_store(const json_t *obj, const struct api_field *fields, void *dst,
			   const char *where, char *err, size_t errlen)
{
	for (const struct api_field *f = fields; f->name; f++) {
		const json_t *v = api_json_member(obj, f->name);
		if (v && store_one(v, f, (char *)dst + f->off, where, err, errlen))
			return err;
	}
	return NULL;
}
