/*
 * Unit tests for NVMe/TCP TLS PSKs (nvmf/tcp/psk.c): the interchange format, identities and derivations.
 * Known answers: the configured PSK and its interchange strings are the NVMe/TCP specification's example
 * (also libnvme's and SPDK's test key); the version 1 identities are libnvme's test vectors (test/psk.c);
 * the TLS PSKs were computed independently with Python's hmac module (RFC 5869 HKDF with the RFC 8446
 * HkdfLabel written out by hand), not with this code.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "nvmf/tcp/psk.h"

static const uint8_t KEY32[32] = {0x55, 0x12, 0xDB, 0xB6, 0x73, 0x7D, 0x01, 0x06, 0xF6, 0x59, 0x75,
				  0xB7, 0x73, 0xDF, 0xB0, 0x11, 0xFF, 0xC3, 0x44, 0xBC, 0xF4, 0x42,
				  0xE2, 0xDD, 0x6D, 0x8B, 0xC4, 0x87, 0x0B, 0x5D, 0x5B, 0x03};
#define SPEC01 "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:"
#define SPEC00 "NVMeTLSkey-1:00:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:"
#define SPEC02 "NVMeTLSkey-1:02:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwP/w0S89ELi3W2LxIcLXVsDn8kXZQ==:"
#define HOST "nqn.psk-test-host"
#define SUB "nqn.psk-test-subsys"

static void hex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(sscanf(s + 2 * i, "%2hhx", &out[i]), 1);
}

static void test_parse_spec_keys(void **state)
{
	(void)state;
	struct dbk_tls_psk k;
	char err[160];
	assert_int_equal(dbk_tls_psk_parse(SPEC01, &k, err, sizeof(err)), 0);
	assert_int_equal(k.len, 32);
	assert_int_equal(k.hash, 1);
	assert_memory_equal(k.key, KEY32, 32);
	assert_int_equal(dbk_tls_psk_cipher(&k), DBK_TLS_CIPHER_SHA256);
	assert_int_equal(dbk_tls_psk_parse(SPEC00, &k, err, sizeof(err)), 0);
	assert_int_equal(k.hash, 0);
	assert_int_equal(dbk_tls_psk_cipher(&k), DBK_TLS_CIPHER_SHA256);
	assert_int_equal(dbk_tls_psk_parse(SPEC02, &k, err, sizeof(err)), 0);
	assert_int_equal(k.len, 48);
	assert_int_equal(k.hash, 2);
	assert_memory_equal(k.key, KEY32, 32);
	assert_memory_equal(k.key + 32, KEY32 + 16, 16);
	assert_int_equal(dbk_tls_psk_cipher(&k), DBK_TLS_CIPHER_SHA384);
	assert_string_equal(dbk_tls_cipher_name(DBK_TLS_CIPHER_SHA384), "TLS_AES_256_GCM_SHA384");
}

static void expect_bad(const char *s, const char *msg_part)
{
	struct dbk_tls_psk k;
	char err[160] = "";
	assert_int_equal(dbk_tls_psk_parse(s, &k, err, sizeof(err)), -EINVAL);
	if (strstr(err, msg_part) == NULL)
		fail_msg("'%s': error '%s' lacks '%s'", s, err, msg_part);
	assert_int_equal(k.len, 0);
	/* The message never shows the key. */
	assert_null(strstr(err, "VRLbtnN9"));
}

static void test_parse_rejects(void **state)
{
	(void)state;
	expect_bad("NVMeTLSkey-2:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:", "interchange format");
	expect_bad("NVMeTLSkey-1:03:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:", "hash indicator");
	expect_bad("NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ", "end with ':'");
	expect_bad("NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ::", "end with ':'");
	/* one character changed: the CRC catches it */
	expect_bad("NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrY:", "CRC-32");
	expect_bad("NVMeTLSkey-1:01:WRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:", "CRC-32");
	/* SHA-384 needs 48 bytes, SHA-256 32 */
	expect_bad("NVMeTLSkey-1:02:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:", "needs a 48-byte key");
	expect_bad("NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwP/w0S89ELi3W2LxIcLXVsDn8kXZQ==:",
		   "needs a 32-byte key");
	expect_bad("NVMeTLSkey-1:01:AAAA:", "32 or 48 bytes");
	expect_bad("NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9L!Z:", "base64");
	expect_bad("NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9L=Z:", "base64");
	expect_bad("", "interchange format");
	expect_bad("DHHC-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:", "interchange format");
}

static void test_identities_v1(void **state)
{
	(void)state;
	struct dbk_tls_psk k;
	char id[DBK_TLS_IDENTITY_MAX];
	uint8_t psk[DBK_TLS_PSK_MAX], want[32];
	assert_int_equal(dbk_tls_psk_parse(SPEC01, &k, NULL, 0), 0);
	assert_int_equal(dbk_tls_psk_for(&k, 1, HOST, SUB, id, sizeof(id), psk), 32);
	assert_string_equal(id, "NVMe1R01 " HOST " " SUB " iSbjiStwJ/1TrTvDlt2fjFmzvsytOJelidNnA+X5lEU=");
	hex("8fc3c0badfd4c0c66fa3ca33aadd0314f85536cc9bc47338b60f3e6e563786ca", want, 32);
	assert_memory_equal(psk, want, 32);
	assert_int_equal(dbk_tls_psk_parse(SPEC02, &k, NULL, 0), 0);
	assert_int_equal(dbk_tls_psk_for(&k, 1, HOST, SUB, id, sizeof(id), psk), 48);
	assert_string_equal(id, "NVMe1R02 " HOST " " SUB
				" QhW2+Rp6RzHlNtCslyRxMnwJ11tKKhz8JCAQpQ+XUD8f9td1VeH5h53yz2wKJG1a");
}

static void test_identities_v0(void **state)
{
	(void)state;
	struct dbk_tls_psk k;
	char id[DBK_TLS_IDENTITY_MAX];
	uint8_t psk[DBK_TLS_PSK_MAX], want[48];
	assert_int_equal(dbk_tls_psk_parse(SPEC01, &k, NULL, 0), 0);
	assert_int_equal(dbk_tls_psk_for(&k, 0, HOST, SUB, id, sizeof(id), psk), 32);
	assert_string_equal(id, "NVMe0R01 " HOST " " SUB);
	hex("05c6503551ad136e6ee32e6eeb3f6d500b69701d84ec71e328f65c7f51566f68", want, 32);
	assert_memory_equal(psk, want, 32);
	/* 00: the configured key is the retained key */
	assert_int_equal(dbk_tls_psk_parse(SPEC00, &k, NULL, 0), 0);
	assert_int_equal(dbk_tls_psk_for(&k, 0, HOST, SUB, id, sizeof(id), psk), 32);
	assert_string_equal(id, "NVMe0R01 " HOST " " SUB);
	hex("ec85300ba827726bd3bc4fc07f3a34aec5fe7c8ccac05fefc2f021c74e0df9ef", want, 32);
	assert_memory_equal(psk, want, 32);
	assert_int_equal(dbk_tls_psk_parse(SPEC02, &k, NULL, 0), 0);
	assert_int_equal(dbk_tls_psk_for(&k, 0, HOST, SUB, id, sizeof(id), psk), 48);
	assert_string_equal(id, "NVMe0R02 " HOST " " SUB);
	hex("f42ba63824cdfe421914c582921f85b5b5b7e2d4df084caeedc9be20b212e8bb0fe8a23e9d59a1c8fc6449da4970a78d", want,
	    48);
	assert_memory_equal(psk, want, 48);
	/* bad versions, an NQN too long */
	assert_int_equal(dbk_tls_psk_for(&k, 2, HOST, SUB, id, sizeof(id), psk), -EINVAL);
	char longnqn[300];
	memset(longnqn, 'a', sizeof(longnqn) - 1);
	longnqn[sizeof(longnqn) - 1] = '\0';
	assert_int_equal(dbk_tls_psk_for(&k, 0, longnqn, SUB, id, sizeof(id), psk), -EINVAL);
}

static int parse(const char *s, struct dbk_tls_identity *id)
{
	return dbk_tls_identity_parse((const uint8_t *)s, strlen(s), id);
}

static void test_identity_parse(void **state)
{
	(void)state;
	struct dbk_tls_identity id;
	assert_int_equal(parse("NVMe0R01 " HOST " " SUB, &id), 0);
	assert_int_equal(id.version, 0);
	assert_int_equal(id.cipher, 1);
	assert_string_equal(id.hostnqn, HOST);
	assert_string_equal(id.subnqn, SUB);
	assert_int_equal(parse("NVMe1R02 " HOST " " SUB " abc+/=", &id), 0);
	assert_int_equal(id.version, 1);
	assert_int_equal(id.cipher, 2);
	assert_string_equal(id.digest, "abc+/=");
	const char *bad[] = {
		"NVMe0G01 " HOST " " SUB,	/* generated PSK */
		"NVMe2R01 " HOST " " SUB,	/* unknown version */
		"NVMe0R03 " HOST " " SUB,	/* unknown cipher */
		"NVMe0R01 " HOST,		/* no subsystem */
		"NVMe0R01 " HOST " " SUB " x",	/* version 0 has no digest */
		"NVMe1R01 " HOST " " SUB,	/* version 1 needs one */
		"NVMe0R01  " HOST " " SUB,	/* empty field */
		"NVMe0R01 " HOST " " SUB " ",
		"nvme0R01 " HOST " " SUB,
		"NVMe0R01",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i], &id) != -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
	/* control characters and an NQN over 223 bytes */
	assert_int_equal(dbk_tls_identity_parse((const uint8_t *)"NVMe0R01 a\tb c", 14, &id), -EINVAL);
	char longid[600];
	memset(longid, 'a', sizeof(longid));
	memcpy(longid, "NVMe0R01 ", 9);
	longid[9 + 230] = ' ';
	assert_int_equal(dbk_tls_identity_parse((const uint8_t *)longid, 9 + 240, &id), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_spec_keys),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_identities_v1),
		cmocka_unit_test(test_identities_v0),
		cmocka_unit_test(test_identity_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
