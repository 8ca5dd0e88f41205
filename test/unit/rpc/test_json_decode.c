/* Params decoder: types, ranges, missing/unknown keys, nested objects, ANY, frees on error. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <uuid/uuid.h>

#include "rpc/rpc.h"

struct addr {
	char *trtype;
	char *traddr;
	char *trsvcid;
};

struct params {
	char *name;
	bool flag;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	int32_t i32;
	double d;
	uuid_t uuid;
	struct addr addr;
	json_t *any;
};

static const struct dbk_json_field addr_fields[] = {
	{"trtype", DBK_JSON_STRING, offsetof(struct addr, trtype), true, NULL, 0, NULL},
	{"traddr", DBK_JSON_STRING, offsetof(struct addr, traddr), true, NULL, 0, NULL},
	{"trsvcid", DBK_JSON_STRING, offsetof(struct addr, trsvcid), false, NULL, 0, NULL},
};

static const struct dbk_json_field fields[] = {
	{"name", DBK_JSON_STRING, offsetof(struct params, name), true, NULL, 0, NULL},
	{"flag", DBK_JSON_BOOL, offsetof(struct params, flag), false, NULL, 0, NULL},
	{"u16", DBK_JSON_U16, offsetof(struct params, u16), false, NULL, 0, NULL},
	{"u32", DBK_JSON_U32, offsetof(struct params, u32), false, NULL, 0, NULL},
	{"u64", DBK_JSON_U64, offsetof(struct params, u64), false, NULL, 0, NULL},
	{"i32", DBK_JSON_I32, offsetof(struct params, i32), false, NULL, 0, NULL},
	{"d", DBK_JSON_DOUBLE, offsetof(struct params, d), false, NULL, 0, NULL},
	{"uuid", DBK_JSON_UUID, offsetof(struct params, uuid), false, NULL, 0, NULL},
	{"addr", DBK_JSON_OBJECT, offsetof(struct params, addr), false, addr_fields, DBK_COUNTOF(addr_fields), NULL},
	{"any", DBK_JSON_ANY, offsetof(struct params, any), false, NULL, 0, NULL},
};

static int decode(const char *text, struct params *p, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *obj = text ? json_loads(text, JSON_DECODE_ANY, &jerr) : NULL;
	int rc;

	if (text)
		assert_non_null(obj);
	rc = dbk_json_decode_object(obj, fields, DBK_COUNTOF(fields), p, err, errlen);
	json_decref(obj);
	return rc;
}

/* Decoding must fail with a message containing want, leaving nothing allocated. */
static void expect_fail(const char *text, const char *want)
{
	struct params p = {.u32 = 7};
	char err[256];

	assert_int_equal(decode(text, &p, err, sizeof(err)), -EINVAL);
	if (!strstr(err, want))
		fail_msg("error '%s' does not contain '%s' (input %s)", err, want, text);
	/* Nothing left allocated (ASan would report a leak otherwise) and defaults untouched. */
	assert_null(p.name);
	assert_null(p.addr.trtype);
	assert_null(p.any);
	assert_int_equal(p.u32, 7);
}

static void test_all_types(void **state)
{
	struct params p = {0};
	char err[256], ustr[40];

	(void)state;
	assert_int_equal(decode("{\"name\":\"x\",\"flag\":true,\"u16\":65535,\"u32\":4294967295,"
				"\"u64\":9223372036854775807,\"i32\":-2147483648,\"d\":1.5,"
				"\"uuid\":\"0b0bd3ff-2aa5-4ad6-8c06-a1a1cf6e07f2\","
				"\"addr\":{\"trtype\":\"TCP\",\"traddr\":\"127.0.0.1\"},\"any\":[1,{\"a\":2}]}",
				&p, err, sizeof(err)),
			 0);
	assert_string_equal(p.name, "x");
	assert_true(p.flag);
	assert_int_equal(p.u16, 65535);
	assert_int_equal(p.u32, 4294967295u);
	assert_true(p.u64 == 9223372036854775807ull);
	assert_int_equal(p.i32, INT32_MIN);
	assert_true(p.d == 1.5);
	uuid_unparse_lower(p.uuid, ustr);
	assert_string_equal(ustr, "0b0bd3ff-2aa5-4ad6-8c06-a1a1cf6e07f2");
	assert_string_equal(p.addr.trtype, "TCP");
	assert_string_equal(p.addr.traddr, "127.0.0.1");
	assert_null(p.addr.trsvcid);
	assert_true(json_is_array(p.any));
	assert_int_equal(json_array_size(p.any), 2);
	dbk_json_free_object(fields, DBK_COUNTOF(fields), &p);
	assert_null(p.name);
	assert_null(p.any);
	assert_null(p.addr.traddr);
}

static void test_defaults_kept(void **state)
{
	struct params p = {.u16 = 11, .d = 2.5, .flag = true};
	char err[256];

	(void)state;
	assert_int_equal(decode("{\"name\":\"n\"}", &p, err, sizeof(err)), 0);
	assert_int_equal(p.u16, 11);
	assert_true(p.d == 2.5);
	assert_true(p.flag);
	/* A double field takes integers too. */
	assert_int_equal(decode("{\"name\":\"n\",\"d\":3}", &p, err, sizeof(err)), 0);
	assert_true(p.d == 3.0);
	dbk_json_free_object(fields, DBK_COUNTOF(fields), &p);
}

static void test_missing_and_unknown(void **state)
{
	(void)state;
	expect_fail(NULL, "missing required parameter 'name'");
	expect_fail("{}", "missing required parameter 'name'");
	expect_fail("{\"name\":\"x\",\"foo\":1}", "unknown parameter 'foo'");
	expect_fail("[\"x\"]", "params must be an object");
	expect_fail("\"x\"", "params must be an object");
}

static void test_wrong_types(void **state)
{
	(void)state;
	expect_fail("{\"name\":5}", "parameter 'name' must be a string");
	expect_fail("{\"name\":null}", "parameter 'name' must be a string");
	expect_fail("{\"name\":\"x\",\"flag\":1}", "parameter 'flag' must be a boolean");
	expect_fail("{\"name\":\"x\",\"flag\":\"true\"}", "parameter 'flag' must be a boolean");
	expect_fail("{\"name\":\"x\",\"u32\":\"5\"}", "parameter 'u32' must be an unsigned 32-bit integer");
	expect_fail("{\"name\":\"x\",\"u32\":1.0}", "parameter 'u32' must be an unsigned 32-bit integer");
	expect_fail("{\"name\":\"x\",\"u64\":1.5}", "parameter 'u64' must be an unsigned 64-bit integer");
	expect_fail("{\"name\":\"x\",\"d\":\"1\"}", "parameter 'd' must be a number");
	expect_fail("{\"name\":\"x\",\"uuid\":\"not-a-uuid\"}", "parameter 'uuid' must be a UUID");
	expect_fail("{\"name\":\"x\",\"uuid\":1}", "parameter 'uuid' must be a UUID");
	expect_fail("{\"name\":\"x\",\"addr\":\"tcp\"}", "parameter 'addr' must be an object");
}

static void test_ranges(void **state)
{
	(void)state;
	expect_fail("{\"name\":\"x\",\"u16\":65536}", "parameter 'u16' must be an unsigned 16-bit integer");
	expect_fail("{\"name\":\"x\",\"u16\":-1}", "parameter 'u16'");
	expect_fail("{\"name\":\"x\",\"u32\":4294967296}", "parameter 'u32'");
	expect_fail("{\"name\":\"x\",\"u32\":-1}", "parameter 'u32'");
	expect_fail("{\"name\":\"x\",\"u64\":-1}", "parameter 'u64'");
	expect_fail("{\"name\":\"x\",\"i32\":2147483648}", "parameter 'i32' must be a signed 32-bit integer");
	expect_fail("{\"name\":\"x\",\"i32\":-2147483649}", "parameter 'i32'");
}

static void test_nested_errors(void **state)
{
	(void)state;
	expect_fail("{\"name\":\"x\",\"addr\":{\"trtype\":\"TCP\"}}", "missing required parameter 'addr.traddr'");
	expect_fail("{\"name\":\"x\",\"addr\":{\"trtype\":\"TCP\",\"traddr\":\"a\",\"port\":1}}",
		    "unknown parameter 'addr.port'");
	expect_fail("{\"name\":\"x\",\"addr\":{\"trtype\":\"TCP\",\"traddr\":\"a\",\"trsvcid\":4420}}",
		    "parameter 'addr.trsvcid' must be a string");
	/* A failure after strings and ANY were seen allocates nothing. */
	expect_fail("{\"name\":\"x\",\"any\":{\"a\":1},\"addr\":{\"trtype\":\"TCP\",\"traddr\":\"a\"},\"u16\":70000}",
		    "parameter 'u16'");
}

static void test_replace_and_free(void **state)
{
	struct params p = {0};
	char err[256];

	(void)state;
	/* A heap default is replaced (and freed) when the key is present. */
	p.name = strdup("default");
	assert_int_equal(decode("{\"name\":\"given\",\"any\":null}", &p, err, sizeof(err)), 0);
	assert_string_equal(p.name, "given");
	assert_true(json_is_null(p.any));
	dbk_json_free_object(fields, DBK_COUNTOF(fields), &p);
	/* No error buffer is fine. */
	assert_int_equal(dbk_json_decode_object(NULL, fields, DBK_COUNTOF(fields), &p, NULL, 0), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_types),	  cmocka_unit_test(test_defaults_kept),
		cmocka_unit_test(test_missing_and_unknown), cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_ranges),		  cmocka_unit_test(test_nested_errors),
		cmocka_unit_test(test_replace_and_free),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
