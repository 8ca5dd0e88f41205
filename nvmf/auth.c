/*
 * In-band authentication: DH-HMAC-CHAP (NVMe Base Specification 2.x, "Authentication"). See auth.h.
 * All cryptography goes through OpenSSL (HMAC, SHA-2, finite-field DH with the RFC 7919 groups).
 */
#include "nvmf/auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "util/log.h"

/* ------------------------------------------------------------------ names */

static const char *const g_digest_names[] = {NULL, "sha256", "sha384", "sha512"};
static const char *const g_dhgroup_names[] = {"null", "ffdhe2048", "ffdhe3072", "ffdhe4096", "ffdhe6144",
					      "ffdhe8192"};

int dbk_auth_digest_from_name(const char *name)
{
	for (int i = 1; i <= 3; i++)
		if (strcmp(name, g_digest_names[i]) == 0)
			return i;
	return -1;
}

int dbk_auth_dhgroup_from_name(const char *name)
{
	for (int i = 0; i <= 5; i++)
		if (strcmp(name, g_dhgroup_names[i]) == 0)
			return i;
	return -1;
}

const char *dbk_auth_digest_name(int id)
{
	return id >= 1 && id <= 3 ? g_digest_names[id] : NULL;
}

const char *dbk_auth_dhgroup_name(int id)
{
	return id >= 0 && id <= 5 ? g_dhgroup_names[id] : NULL;
}

/* ------------------------------------------------------------------ configuration */

static uint32_t g_digests = DBK_AUTH_DIGESTS_ALL;
static uint32_t g_dhgroups = DBK_AUTH_DHGROUPS_ALL;

int dbk_nvmf_auth_set_config(uint32_t digests, uint32_t dhgroups, char *err, size_t errlen)
{
	if ((digests & ~DBK_AUTH_DIGESTS_ALL) || (dhgroups & ~DBK_AUTH_DHGROUPS_ALL)) {
		snprintf(err, errlen, "unknown digest or DH group");
		return -EINVAL;
	}
	if (digests)
		g_digests = digests;
	if (dhgroups)
		g_dhgroups = dhgroups;
	return 0;
}

void dbk_nvmf_auth_get_config(uint32_t *digests, uint32_t *dhgroups)
{
	*digests = g_digests;
	*dhgroups = g_dhgroups;
}

json_t *dbk_nvmf_auth_config_json(void)
{
	json_t *d = json_array(), *g = json_array();

	for (int i = 1; i <= 3; i++)
		if (g_digests & (1u << i))
			json_array_append_new(d, json_string(g_digest_names[i]));
	for (int i = 0; i <= 5; i++)
		if (g_dhgroups & (1u << i))
			json_array_append_new(g, json_string(g_dhgroup_names[i]));
	return json_pack("{s:o, s:o}", "dhchap_digests", d, "dhchap_dhgroups", g);
}

/* ------------------------------------------------------------------ DHHC-1 secrets */

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32) that DHHC-1 appends to the key: a checksum, not crypto. */
static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int b = 0; b < 8; b++)
			c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
	}
	return ~c;
}

const EVP_MD *dbk_auth_md(int hash);

const EVP_MD *dbk_auth_md(int hash)
{
	switch (hash) {
	case DBK_AUTH_HASH_SHA256:
		return EVP_sha256();
	case DBK_AUTH_HASH_SHA384:
		return EVP_sha384();
	case DBK_AUTH_HASH_SHA512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

int dbk_dhchap_secret_parse(const char *str, struct dbk_dhchap_secret *out, char *err, size_t errlen)
{
	uint8_t buf[3 * 128 / 4 + 4];
	const char *b64, *end;
	size_t b64len;
	int hmac, n, pad = 0;
	uint32_t crc;

	memset(out, 0, sizeof(*out));
	if (strncmp(str, "DHHC-1:", 7) != 0) {
		snprintf(err, errlen, "not a DHHC-1 secret (expected DHHC-1:XX:<base64>:)");
		return -EINVAL;
	}
	if (!(str[7] >= '0' && str[7] <= '9') || !(str[8] >= '0' && str[8] <= '9') || str[9] != ':') {
		snprintf(err, errlen, "DHHC-1 secret: bad transformation field (expected 00, 01, 02 or 03)");
		return -EINVAL;
	}
	hmac = (str[7] - '0') * 10 + (str[8] - '0');
	if (hmac > 3) {
		snprintf(err, errlen, "DHHC-1 secret: unknown transformation %02d (expected 00 to 03)", hmac);
		return -EINVAL;
	}
	b64 = str + 10;
	end = strchr(b64, ':');
	if (!end || end[1] != '\0') {
		snprintf(err, errlen, "DHHC-1 secret: it must end with ':' after the base64 key");
		return -EINVAL;
	}
	b64len = (size_t)(end - b64);
	/* 32, 48 or 64 key bytes + 4 CRC bytes: 48, 68 or 92 base64 characters */
	if (b64len != 48 && b64len != 72 && b64len != 92) {
		snprintf(err, errlen, "DHHC-1 secret: the key must be 32, 48 or 64 bytes");
		return -EINVAL;
	}
	for (size_t i = 0; i < b64len; i++) {
		char c = b64[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
		      c == '/' || (c == '=' && i >= b64len - 2))) {
			snprintf(err, errlen, "DHHC-1 secret: invalid base64");
			return -EINVAL;
		}
	}
	pad = (b64[b64len - 1] == '=') + (b64[b64len - 2] == '=');
	n = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)b64len);
	if (n < 0) {
		snprintf(err, errlen, "DHHC-1 secret: invalid base64");
		return -EINVAL;
	}
	n -= pad;
	if (n != 36 && n != 52 && n != 68) {
		OPENSSL_cleanse(buf, sizeof(buf));
		snprintf(err, errlen, "DHHC-1 secret: the key must be 32, 48 or 64 bytes");
		return -EINVAL;
	}
	crc = crc32_ieee(buf, (size_t)n - 4);
	if ((uint32_t)buf[n - 4] != (crc & 0xFF) || buf[n - 3] != ((crc >> 8) & 0xFF) ||
	    buf[n - 2] != ((crc >> 16) & 0xFF) || buf[n - 1] != (crc >> 24)) {
		OPENSSL_cleanse(buf, sizeof(buf));
		snprintf(err, errlen, "DHHC-1 secret: CRC mismatch (the key is damaged or mistyped)");
		return -EINVAL;
	}
	memcpy(out->key, buf, (size_t)n - 4);
	out->len = (size_t)n - 4;
	out->hmac = hmac;
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

int dbk_dhchap_transform(const struct dbk_dhchap_secret *s, const char *nqn, uint8_t *out)
{
	static const char tag[] = "NVMe-over-Fabrics";
	unsigned int len = 0;
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	size_t outl = 0;
	int rc = -1;

	if (s->hmac == 0) {
		memcpy(out, s->key, s->len);
		return (int)s->len;
	}
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!mac)
		return -1;
	ctx = EVP_MAC_CTX_new(mac);
	params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)EVP_MD_get0_name(dbk_auth_md(s->hmac)), 0);
	params[1] = OSSL_PARAM_construct_end();
	if (ctx && EVP_MAC_init(ctx, s->key, s->len, params) && EVP_MAC_update(ctx, (const uint8_t *)nqn, strlen(nqn)) &&
	    EVP_MAC_update(ctx, (const uint8_t *)tag, sizeof(tag) - 1) && EVP_MAC_final(ctx, out, &outl, 64))
		rc = (int)outl;
	(void)len;
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return rc;
}
