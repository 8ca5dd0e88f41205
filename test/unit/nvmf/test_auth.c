/*
 * Unit tests of the DH-HMAC-CHAP building blocks (nvmf/auth.c): DHHC-1 parsing, the key
 * transformation, the host and controller responses, the augmented challenge, and DH.
 *
 * The expected values were computed independently with Python's standard library (base64, zlib.crc32,
 * hmac, hashlib), e.g. the host response:
 *   hmac.new(key, chal + struct.pack("<IHB", seq, tid, 0) + b"HostHost" + hostnqn + b"\0" + subnqn,
 *            "sha256").hexdigest()
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "nvmf/auth.h"

static const char HOSTNQN[] = "nqn.2014-08.org.nvmexpress:uuid:0f0e0d0c-0b0a-0908-0706-050403020100";
static const char SUBNQN[] = "nqn.2016-06.io.spdk:cnode1";

static void unhex(const char *h, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sscanf(h + 2 * i, "%2hhx", &out[i]);
}

static void test_parse_valid(void **state)
{
	struct dbk_dhchap_secret s;
	char err[256];

	(void)state;
	assert_int_equal(dbk_dhchap_secret_parse("DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", &s, err,
						 sizeof(err)), 0);
	assert_int_equal(s.len, 32);
	assert_int_equal(s.hmac, 0);
	for (int i = 0; i < 32; i++)
		assert_int_equal(s.key[i], i);
	assert_int_equal(dbk_dhchap_secret_parse(
				 "DHHC-1:02:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTvGwQfg==:",
				 &s, err, sizeof(err)), 0);
	assert_int_equal(s.len, 48);
	assert_int_equal(s.hmac, 2);
	assert_int_equal(s.key[0], 100);
	assert_int_equal(dbk_dhchap_secret_parse("DHHC-1:03:yMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3"
						 "+Pn6+/z9/v8AAQIDBAUGB24FqBs=:", &s, err, sizeof(err)), 0);
	assert_int_equal(s.len, 64);
	assert_int_equal(s.hmac, 3);
	assert_int_equal(s.key[63], 7);
}

static void expect_bad(const char *str, const char *msg_part)
{
	struct dbk_dhchap_secret s;
	char err[256] = "";

	assert_int_equal(dbk_dhchap_secret_parse(str, &s, err, sizeof(err)), -22);
	if (!strstr(err, msg_part))
		fail_msg("'%s': error '%s' lacks '%s'", str, err, msg_part);
	/* the message never echoes the key material */
	assert_null(strstr(err, "AAECAwQF"));
}

static void test_parse_invalid(void **state)
{
	(void)state;
	expect_bad("DHHC-2:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", "not a DHHC-1");
	expect_bad("DHHC-1:04:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", "unknown transformation");
	expect_bad("DHHC-1:0x:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", "transformation field");
	/* CRC of a changed key byte */
	expect_bad("DHHC-1:00:AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", "CRC");
	/* no trailing colon, trailing garbage */
	expect_bad("DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR", "end with ':'");
	expect_bad("DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:x", "end with ':'");
	/* wrong lengths and characters */
	expect_bad("DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd:", "32, 48 or 64");
	expect_bad("DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+Kfia*:", "invalid base64");
	expect_bad("DHHC-1:00:AAECAwQF=gcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", "invalid base64");
	/*
	 * '=' before the last character, and the CRC still right: EVP_DecodeBlock reads that '=' as 0 and the pad
	 * count drops the byte after it (fuzz/regressions/psk/dhchap-equals-before-last)
	 */
	expect_bad("DHHC-1:00:w8jN0tfc4ebr8PX6/wQJDhMYHSInLDE2O0BFSk9UWV5jaG1yd3yBhouQlZqfpKmus7i9wsfM0dbb4OXq7/T5/od1g6=Q:",
		   "invalid base64");
	/* transformation 01 (SHA-256) needs 32 bytes: a 48-byte key is refused */
	expect_bad("DHHC-1:01:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTvGwQfg==:", "needs a 32-byte");
	expect_bad("", "not a DHHC-1");
	expect_bad("DHHC-1:", "transformation field");
}

static void test_transform(void **state)
{
	struct dbk_dhchap_secret s;
	uint8_t out[64], want[64];
	char err[128];

	(void)state;
	assert_int_equal(dbk_dhchap_secret_parse(
				 "DHHC-1:02:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTvGwQfg==:",
				 &s, err, sizeof(err)), 0);
	assert_int_equal(dbk_dhchap_transform(&s, HOSTNQN, out), 48);
	unhex("3805ff3a17f110adc123640d03c668aaccca4df8b650eeaad3cf7fd6c4c6c7678fe22c702b3607c0f17f22a6e5852fa9", want,
	      48);
	assert_memory_equal(out, want, 48);
	assert_int_equal(dbk_dhchap_secret_parse("DHHC-1:03:yMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3"
						 "+Pn6+/z9/v8AAQIDBAUGB24FqBs=:", &s, err, sizeof(err)), 0);
	assert_int_equal(dbk_dhchap_transform(&s, SUBNQN, out), 64);
	unhex("e1d67ad6dc6959d8354bf8032fd89a31c8c0d05cc5da60c6c3142239ab7f5b48701408079735d875fae80c40c5d3d1ef"
	      "a5b4fe55967d833e24847da676e38613", want, 64);
	assert_memory_equal(out, want, 64);
	/* transformation 00: the key as is */
	assert_int_equal(dbk_dhchap_secret_parse("DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", &s, err,
						 sizeof(err)), 0);
	assert_int_equal(dbk_dhchap_transform(&s, HOSTNQN, out), 32);
	assert_memory_equal(out, s.key, 32);
}

static void test_responses(void **state)
{
	uint8_t key[64], chal[64], out[64], want[64];

	(void)state;
	for (int i = 0; i < 32; i++) {
		key[i] = (uint8_t)i;
		chal[i] = (uint8_t)(64 + i);
	}
	assert_int_equal(dbk_dhchap_response(DBK_AUTH_HASH_SHA256, key, 32, chal, 0x12345678, 0xabcd, 0, false, HOSTNQN,
					     SUBNQN, out), 0);
	unhex("53f2dd0e515d1c85d85c37db048cfb80be07580419f62326a533d485fa412da5", want, 32);
	assert_memory_equal(out, want, 32);

	for (int i = 0; i < 64; i++) {
		key[i] = (uint8_t)(i < 56 ? 200 + i : i - 56);
		chal[i] = (uint8_t)i;
	}
	assert_int_equal(dbk_dhchap_response(DBK_AUTH_HASH_SHA512, key, 64, chal, 7, 3, 0, true, HOSTNQN, SUBNQN, out), 0);
	unhex("c52c73d95ee9dbb8523f7d4d4467ee4d3b1b62bcc87b09182379927d3dd143e33e99cafc88907b3779869cb8b6a57ff9"
	      "0a244d50c3b96566101809db52650f31", want, 64);
	assert_memory_equal(out, want, 64);
	assert_int_equal(dbk_dhchap_response(9, key, 64, chal, 7, 3, 0, true, HOSTNQN, SUBNQN, out), -1);
}

static void test_augment(void **state)
{
	uint8_t skey[256], chal[32], out[32], want[32];

	(void)state;
	for (int i = 0; i < 256; i++)
		skey[i] = (uint8_t)i;
	for (int i = 0; i < 32; i++)
		chal[i] = (uint8_t)(64 + i);
	assert_int_equal(dbk_dhchap_augment(DBK_AUTH_HASH_SHA256, skey, sizeof(skey), chal, out), 0);
	unhex("ee33acef1402d9ce81ddd89b5c3b67fc765868286bc2cf444bf133d5e59cd370", want, 32);
	assert_memory_equal(out, want, 32);
}

static void test_dh(void **state)
{
	(void)state;
	for (int g = DBK_AUTH_DHGROUP_2048; g <= DBK_AUTH_DHGROUP_4096; g++) {
		size_t n = dbk_auth_dhgroup_size(g);
		struct dbk_dh *a = dbk_dh_new(g), *b = dbk_dh_new(g);
		uint8_t pa[1024], pb[1024], sa[1024], sb[1024], bad[1024];

		assert_non_null(a);
		assert_non_null(b);
		assert_int_equal(dbk_dh_public(a, pa, n), 0);
		assert_int_equal(dbk_dh_public(b, pb, n), 0);
		assert_memory_not_equal(pa, pb, n);
		assert_int_equal(dbk_dh_derive(a, pb, n, sa, n), 0);
		assert_int_equal(dbk_dh_derive(b, pa, n, sb, n), 0);
		assert_memory_equal(sa, sb, n);
		/* refused: 0, 1, p (all ones is above p), a wrong length */
		memset(bad, 0, n);
		assert_int_equal(dbk_dh_derive(a, bad, n, sa, n), -1);
		bad[n - 1] = 1;
		assert_int_equal(dbk_dh_derive(a, bad, n, sa, n), -1);
		memset(bad, 0xff, n);
		assert_int_equal(dbk_dh_derive(a, bad, n, sa, n), -1);
		assert_int_equal(dbk_dh_derive(a, pb, n - 1, sa, n), -1);
		assert_int_equal(dbk_dh_public(a, pa, n + 1), -1);
		dbk_dh_free(a);
		dbk_dh_free(b);
	}
	assert_null(dbk_dh_new(DBK_AUTH_DHGROUP_NULL));
	assert_null(dbk_dh_new(6));
}

static void test_names(void **state)
{
	(void)state;
	assert_int_equal(dbk_auth_digest_from_name("sha384"), 2);
	assert_int_equal(dbk_auth_digest_from_name("md5"), -1);
	assert_int_equal(dbk_auth_dhgroup_from_name("null"), 0);
	assert_int_equal(dbk_auth_dhgroup_from_name("ffdhe8192"), 5);
	assert_string_equal(dbk_auth_dhgroup_name(3), "ffdhe4096");
	assert_null(dbk_auth_digest_name(0));
	assert_int_equal(dbk_auth_hash_len(3), 64);
	assert_int_equal(dbk_auth_dhgroup_size(5), 1024);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),  cmocka_unit_test(test_parse_invalid), cmocka_unit_test(test_transform),
		cmocka_unit_test(test_responses),    cmocka_unit_test(test_augment),	    cmocka_unit_test(test_dh),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
