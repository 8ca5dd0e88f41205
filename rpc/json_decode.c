/*
 * Params decoder: a JSON object into a C struct described by a field table.
 *
 * Two passes: validate everything first (types, ranges, unknown and missing
 * keys) without allocating, then assign. Only the assign pass allocates
 * (strdup, json_incref), and on an allocation failure it frees what it
 * allocated so far, so a failed decode leaves nothing allocated.
 */
#include "rpc/rpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#define PATH_MAX_LEN 256

static void *field_ptr(void *out, const struct dbk_json_field *f)
{
	return (char *)out + f->offset;
}

static void join_path(char *buf, size_t len, const char *prefix, const char *name)
{
	if (prefix && prefix[0])
		snprintf(buf, len, "%s.%s", prefix, name);
	else
		snprintf(buf, len, "%s", name);
}

static const struct dbk_json_field *find_field(const struct dbk_json_field *fields, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(fields[i].name, name) == 0)
			return &fields[i];
	return NULL;
}

static const char *type_desc(enum dbk_json_type t)
{
	switch (t) {
	case DBK_JSON_STRING: return "a string";
	case DBK_JSON_BOOL: return "a boolean (true or false)";
	case DBK_JSON_U16: return "an unsigned 16-bit integer (0..65535)";
	case DBK_JSON_U32: return "an unsigned 32-bit integer (0..4294967295)";
	case DBK_JSON_U64: return "an unsigned 64-bit integer";
	case DBK_JSON_I32: return "a signed 32-bit integer";
	case DBK_JSON_DOUBLE: return "a number";
	case DBK_JSON_UUID: return "a UUID string (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)";
	case DBK_JSON_OBJECT: return "an object";
	case DBK_JSON_ANY: return "a JSON value";
	}
	return "a valid value";
}

static int validate(const json_t *obj, const struct dbk_json_field *fields, size_t count, const char *prefix,
		    char *err, size_t errlen);

/* Validate one present value. */
static int validate_value(const json_t *v, const struct dbk_json_field *f, const char *path, char *err,
			  size_t errlen)
{
	bool ok = true;
	json_int_t iv;

	switch (f->type) {
	case DBK_JSON_STRING:
		ok = json_is_string(v);
		break;
	case DBK_JSON_BOOL:
		ok = json_is_boolean(v);
		break;
	case DBK_JSON_U16:
	case DBK_JSON_U32:
	case DBK_JSON_U64:
	case DBK_JSON_I32:
		if (!json_is_integer(v)) {
			ok = false;
			break;
		}
		iv = json_integer_value(v);
		if (f->type == DBK_JSON_U16)
			ok = iv >= 0 && iv <= UINT16_MAX;
		else if (f->type == DBK_JSON_U32)
			ok = iv >= 0 && iv <= (json_int_t)UINT32_MAX;
		else if (f->type == DBK_JSON_U64)
			ok = iv >= 0;
		else
			ok = iv >= INT32_MIN && iv <= INT32_MAX;
		break;
	case DBK_JSON_DOUBLE:
		ok = json_is_number(v);
		break;
	case DBK_JSON_UUID: {
		uuid_t u;
		ok = json_is_string(v) && uuid_parse(json_string_value(v), u) == 0;
		break;
	}
	case DBK_JSON_OBJECT:
		if (!json_is_object(v)) {
			ok = false;
			break;
		}
		return validate(v, f->nested, f->nested_count, path, err, errlen);
	case DBK_JSON_ANY:
		ok = v != NULL;
		break;
	}
	if (!ok) {
		snprintf(err, errlen, "parameter '%s' must be %s", path, type_desc(f->type));
		return -EINVAL;
	}
	return 0;
}

static int validate(const json_t *obj, const struct dbk_json_field *fields, size_t count, const char *prefix,
		    char *err, size_t errlen)
{
	char path[PATH_MAX_LEN];
	const char *key;
	json_t *v;
	int rc;

	if (obj && !json_is_object(obj)) {
		if (prefix && prefix[0])
			snprintf(err, errlen, "parameter '%s' must be an object", prefix);
		else
			snprintf(err, errlen, "params must be an object");
		return -EINVAL;
	}
	if (obj) {
		json_object_foreach((json_t *)obj, key, v) {
			const struct dbk_json_field *f = find_field(fields, count, key);

			join_path(path, sizeof(path), prefix, key);
			if (!f) {
				snprintf(err, errlen, "unknown parameter '%s'", path);
				return -EINVAL;
			}
			rc = validate_value(v, f, path, err, errlen);
			if (rc)
				return rc;
		}
	}
	for (size_t i = 0; i < count; i++) {
		if (fields[i].required && (!obj || !json_object_get(obj, fields[i].name))) {
			join_path(path, sizeof(path), prefix, fields[i].name);
			snprintf(err, errlen, "missing required parameter '%s'", path);
			return -EINVAL;
		}
	}
	return 0;
}

/* Free what assign() put into out for the first n fields present in obj. */
static void free_present(const json_t *obj, const struct dbk_json_field *fields, size_t n, void *out)
{
	for (size_t i = 0; i < n && obj; i++) {
		const struct dbk_json_field *f = &fields[i];
		json_t *v = json_object_get(obj, f->name);

		if (!v)
			continue;
		if (f->type == DBK_JSON_STRING) {
			char **p = field_ptr(out, f);
			free(*p);
			*p = NULL;
		} else if (f->type == DBK_JSON_ANY) {
			json_t **p = field_ptr(out, f);
			json_decref(*p);
			*p = NULL;
		} else if (f->type == DBK_JSON_OBJECT) {
			free_present(v, f->nested, f->nested_count, field_ptr(out, f));
		}
	}
}

/* Assign validated values; -ENOMEM (with everything allocated here freed) or 0. */
static int assign(const json_t *obj, const struct dbk_json_field *fields, size_t count, void *out, char *err,
		  size_t errlen)
{
	if (!obj)
		return 0;
	for (size_t i = 0; i < count; i++) {
		const struct dbk_json_field *f = &fields[i];
		json_t *v = json_object_get(obj, f->name);
		void *p = field_ptr(out, f);

		if (!v)
			continue;
		switch (f->type) {
		case DBK_JSON_STRING: {
			char *s = strdup(json_string_value(v));
			if (!s)
				goto nomem;
			free(*(char **)p);
			*(char **)p = s;
			break;
		}
		case DBK_JSON_BOOL:
			*(bool *)p = json_is_true(v);
			break;
		case DBK_JSON_U16:
			*(uint16_t *)p = (uint16_t)json_integer_value(v);
			break;
		case DBK_JSON_U32:
			*(uint32_t *)p = (uint32_t)json_integer_value(v);
			break;
		case DBK_JSON_U64:
			*(uint64_t *)p = (uint64_t)json_integer_value(v);
			break;
		case DBK_JSON_I32:
			*(int32_t *)p = (int32_t)json_integer_value(v);
			break;
		case DBK_JSON_DOUBLE:
			*(double *)p = json_number_value(v);
			break;
		case DBK_JSON_UUID:
			uuid_parse(json_string_value(v), *(uuid_t *)p);
			break;
		case DBK_JSON_OBJECT:
			if (assign(v, f->nested, f->nested_count, p, err, errlen))
				goto nomem_nested;
			break;
		case DBK_JSON_ANY:
			json_decref(*(json_t **)p);
			*(json_t **)p = json_incref(v);
			break;
		}
		continue;
nomem:
		snprintf(err, errlen, "out of memory decoding parameter '%s'", f->name);
nomem_nested:
		/* Fields before i that are present were assigned here: free them. */
		free_present(obj, fields, i, out);
		return -ENOMEM;
	}
	return 0;
}

int dbk_json_decode_object(const json_t *obj, const struct dbk_json_field *fields, size_t count, void *out,
			   char *err, size_t errlen)
{
	char dummy[8];
	int rc;

	if (!err || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	rc = validate(obj, fields, count, "", err, errlen);
	if (rc)
		return rc;
	return assign(obj, fields, count, out, err, errlen);
}

static void free_fields(const struct dbk_json_field *fields, size_t count, void *out)
{
	for (size_t i = 0; i < count; i++) {
		const struct dbk_json_field *f = &fields[i];
		void *p = field_ptr(out, f);

		if (f->type == DBK_JSON_STRING) {
			free(*(char **)p);
			*(char **)p = NULL;
		} else if (f->type == DBK_JSON_ANY) {
			json_decref(*(json_t **)p);
			*(json_t **)p = NULL;
		} else if (f->type == DBK_JSON_OBJECT) {
			free_fields(f->nested, f->nested_count, p);
		}
	}
}

void dbk_json_free_object(const struct dbk_json_field *fields, size_t count, void *out)
{
	free_fields(fields, count, out);
}
