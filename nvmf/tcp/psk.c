/* NVMe/TCP TLS PSKs: interchange format, identities, derivations (see psk.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <isa-l/crc.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "nvmf/tcp/psk.h"

#define PSK_PREFIX "NVMeTLSkey-1:"

void dbk_tls_wipe(void *p, size_t len)
{
	OPENSSL_cleanse(p, len);
}

static const char *hash_name(int hash)
{
	return hash == 1 ? "SHA256" : hash == 2 ? "SHA384" : NULL;
}

static size_t hash_len(int hash)
{
	return hash == 1 ? 32 : hash == 2 ? 48 : 0;
}

const char *dbk_tls_cipher_name(int cipher)
{
	return cipher == DBK_TLS_CIPHER_SHA256 ? "TLS_AES_128_GCM_SHA256"
	       : cipher == DBK_TLS_CIPHER_SHA384 ? "TLS_AES_256_GCM_SHA384"
						  : NULL;
}

int dbk_tls_psk_cipher(const struct dbk_tls_psk *k)
{
	if (k->hash)
		return k->hash;
	return k->len == 48 ? DBK_TLS_CIPHER_SHA384 : DBK_TLS_CIPHER_SHA256;
}

#define FAIL(...)                                          \
	do {                                               \
		if (err && errlen)                         \
			snprintf(err, errlen, __VA_ARGS__); \
		dbk_tls_wipe(buf, sizeof(buf));            \
		dbk_tls_wipe(out, sizeof(*out));           \
		return -EINVAL;                            \
	} while (0)

int dbk_tls_psk_parse(const char *s, struct dbk_tls_psk *out, char *err, size_t errlen)
{
	uint8_t buf[80];
	memset(buf, 0, sizeof(buf));
	memset(out, 0, sizeof(*out));
	size_t plen = strlen(PSK_PREFIX);
	if (s == NULL || strncmp(s, PSK_PREFIX, plen) != 0)
		FAIL("not a TLS PSK in interchange format (expected NVMeTLSkey-1:HH:<base64>:)");
	s += plen;
	if (!(s[0] == '0' && (s[1] == '0' || s[1] == '1' || s[1] == '2') && s[2] == ':'))
		FAIL("TLS PSK: unknown hash indicator (00, 01 or 02 expected after NVMeTLSkey-1:)");
	out->hash = s[1] - '0';
	const char *b64 = s + 3;
	const char *end = strchr(b64, ':');
	if (end == NULL || end[1] != '\0')
		FAIL("TLS PSK: it must end with ':' after the base64 key");
	size_t n64 = (size_t)(end - b64);
	/* 32 or 48 key bytes + 4 CRC bytes: 48 or 72 base64 characters */
	if (n64 != 48 && n64 != 72)
		FAIL("TLS PSK: the key must be 32 or 48 bytes (48 or 72 base64 characters), not %zu characters", n64);
	for (size_t i = 0; i < n64; i++) {
		char c = b64[i];
		/* '=' only as padding: the last one or two characters */
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
			  c == '/' || (c == '=' && (i == n64 - 1 || (i == n64 - 2 && b64[n64 - 1] == '=')));
		if (!ok)
			FAIL("TLS PSK: invalid base64");
	}
	int n = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)n64);
	if (n < 0)
		FAIL("TLS PSK: invalid base64");
	for (size_t i = n64; i > 0 && b64[i - 1] == '='; i--)
		n--;	/* EVP_DecodeBlock counts the padding */
	if (n != 36 && n != 52)
		FAIL("TLS PSK: the key must be 32 or 48 bytes");
	size_t klen = (size_t)n - 4;
	if (out->hash && klen != hash_len(out->hash))
		FAIL("TLS PSK: hash indicator %02d needs a %zu-byte key, this one has %zu", out->hash,
		     hash_len(out->hash), klen);
	uint32_t crc = crc32_gzip_refl(0, buf, klen);
	uint32_t got = (uint32_t)buf[klen] | (uint32_t)buf[klen + 1] << 8 | (uint32_t)buf[klen + 2] << 16 |
		       (uint32_t)buf[klen + 3] << 24;
	if (crc != got)
		FAIL("TLS PSK: CRC-32 mismatch (the key is damaged or mistyped)");
	memcpy(out->key, buf, klen);
	out->len = klen;
	dbk_tls_wipe(buf, sizeof(buf));
	return 0;
}

/* HKDF-Expand-Label(HKDF-Extract(0, key), label, ctx, L) (RFC 8446 7.1 with RFC 5869) into out[L]. */
static int hkdf_expand_label(int hash, const uint8_t *key, size_t klen, const char *label, const void *ctx,
			     size_t ctxlen, uint8_t *out, size_t L)
{
	uint8_t info[2 + 1 + 255 + 1 + 255];
	size_t llen = strlen("tls13 ") + strlen(label);
	if (llen > 255 || ctxlen > 255 || hash_name(hash) == NULL)
		return -EINVAL;
	size_t pos = 0;
	info[pos++] = (uint8_t)(L >> 8);
	info[pos++] = (uint8_t)L;
	info[pos++] = (uint8_t)llen;
	memcpy(info + pos, "tls13 ", 6);
	memcpy(info + pos + 6, label, llen - 6);
	pos += llen;
	info[pos++] = (uint8_t)ctxlen;
	memcpy(info + pos, ctx, ctxlen);
	pos += ctxlen;

	int rc = -EINVAL;
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	if (kctx) {
		OSSL_PARAM params[5], *p = params;
		*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)hash_name(hash), 0);
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, klen);
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, pos);
		/* No salt: HKDF-Extract with a zero-length salt, i.e. HashLen zero bytes (RFC 5869 2.2). */
		*p = OSSL_PARAM_construct_end();
		if (EVP_KDF_derive(kctx, out, L, params) == 1)
			rc = 0;
	}
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	dbk_tls_wipe(info, sizeof(info));
	return rc;
}

static int retained_psk(const struct dbk_tls_psk *k, const char *hostnqn, uint8_t *out)
{
	if (k->hash == 0) {
		memcpy(out, k->key, k->len);
		return 0;
	}
	return hkdf_expand_label(k->hash, k->key, k->len, "HostNQN", hostnqn, strlen(hostnqn), out, k->len);
}

/* base64(HMAC-<cipher's hash>(retained, hostnqn " " subnqn " NVMe-over-Fabrics")) */
static int psk_digest(int cipher, const uint8_t *retained, size_t len, const char *hostnqn, const char *subnqn,
		      char *out, size_t outlen)
{
	uint8_t mac[64];
	size_t maclen = 0;
	int rc = -EINVAL;
	EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
	if (ctx) {
		OSSL_PARAM params[2];
		params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)hash_name(cipher), 0);
		params[1] = OSSL_PARAM_construct_end();
		if (EVP_MAC_init(ctx, retained, len, params) == 1 &&
		    EVP_MAC_update(ctx, (const uint8_t *)hostnqn, strlen(hostnqn)) == 1 &&
		    EVP_MAC_update(ctx, (const uint8_t *)" ", 1) == 1 &&
		    EVP_MAC_update(ctx, (const uint8_t *)subnqn, strlen(subnqn)) == 1 &&
		    EVP_MAC_update(ctx, (const uint8_t *)" NVMe-over-Fabrics", 18) == 1 &&
		    EVP_MAC_final(ctx, mac, &maclen, sizeof(mac)) == 1 && (maclen + 2) / 3 * 4 < outlen) {
			EVP_EncodeBlock((unsigned char *)out, mac, (int)maclen);
			rc = 0;
		}
	}
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(m);
	return rc;
}

int dbk_tls_psk_for(const struct dbk_tls_psk *k, int version, const char *hostnqn, const char *subnqn,
		    char *identity, size_t idlen, uint8_t *psk)
{
	uint8_t retained[DBK_TLS_PSK_MAX];
	char digest[100], ctx[104];
	int cipher = dbk_tls_psk_cipher(k);
	size_t L = hash_len(cipher);
	int rc = -EINVAL;
	if ((version != 0 && version != 1) || strlen(hostnqn) > DBK_TLS_NQN_MAX || strlen(subnqn) > DBK_TLS_NQN_MAX ||
	    (k->len != 32 && k->len != 48))
		return -EINVAL;
	if (retained_psk(k, hostnqn, retained) != 0)
		goto out;
	int w;
	if (version == 0) {
		w = snprintf(identity, idlen, "NVMe0R%02d %s %s", cipher, hostnqn, subnqn);
		if (w < 0 || (size_t)w >= idlen)
			goto out;
		rc = hkdf_expand_label(cipher, retained, k->len, "nvme-tls-psk", identity, (size_t)w, psk, L);
	} else {
		if (psk_digest(cipher, retained, k->len, hostnqn, subnqn, digest, sizeof(digest)) != 0)
			goto out;
		w = snprintf(identity, idlen, "NVMe1R%02d %s %s %s", cipher, hostnqn, subnqn, digest);
		if (w < 0 || (size_t)w >= idlen)
			goto out;
		int cl = snprintf(ctx, sizeof(ctx), "%02d %s", cipher, digest);
		rc = hkdf_expand_label(cipher, retained, k->len, "nvme-tls-psk", ctx, (size_t)cl, psk, L);
	}
out:
	dbk_tls_wipe(retained, sizeof(retained));
	return rc == 0 ? (int)L : rc;
}

/* Copy the next space-separated field of [*p, end) into out (at most max chars); false if empty or too long. */
static bool next_field(const uint8_t **p, const uint8_t *end, char *out, size_t max, bool last)
{
	const uint8_t *s = *p, *e = s;
	while (e < end && *e != ' ')
		e++;
	if (e == s || (size_t)(e - s) > max || (last && e != end) || (!last && e == end))
		return false;
	for (const uint8_t *q = s; q < e; q++)
		if (*q < 0x21 || *q > 0x7e)
			return false;	/* NQNs and digests are printable ASCII */
	memcpy(out, s, (size_t)(e - s));
	out[e - s] = '\0';
	*p = e < end ? e + 1 : e;
	return true;
}

int dbk_tls_identity_parse(const uint8_t *id, size_t len, struct dbk_tls_identity *out)
{
	memset(out, 0, sizeof(*out));
	/* "NVMe" v "R" cc " " */
	if (len < 10 || memcmp(id, "NVMe", 4) != 0 || (id[4] != '0' && id[4] != '1') || id[5] != 'R' ||
	    id[6] != '0' || (id[7] != '1' && id[7] != '2') || id[8] != ' ')
		return -EINVAL;
	out->version = id[4] - '0';
	out->cipher = id[7] - '0';
	const uint8_t *p = id + 9, *end = id + len;
	if (!next_field(&p, end, out->hostnqn, DBK_TLS_NQN_MAX, false))
		return -EINVAL;
	if (!next_field(&p, end, out->subnqn, DBK_TLS_NQN_MAX, out->version == 0))
		return -EINVAL;
	if (out->version == 1 && !next_field(&p, end, out->digest, sizeof(out->digest) - 1, true))
		return -EINVAL;
	return 0;
}
