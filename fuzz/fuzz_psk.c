/*
 * Fuzz harness: the parsers of the secrets a host or an operator hands the target, and the TLS PSK derivation:
 * dbk_dhchap_secret_parse (DHHC-1 secrets, nvmf/auth.c), dbk_tls_psk_parse (the PSK interchange format),
 * dbk_tls_identity_parse (the PSK identity a host presents in its ClientHello) and dbk_tls_psk_for
 * (nvmf/tcp/psk.c).
 *
 * Oracle besides the sanitizers: each parser is checked against a reference written here from the formats
 * (psk.h, auth.h; base64 with '=' only as the final padding, CRC-32 of zlib): it accepts exactly what the
 * reference accepts, with the same key, transformation or fields, and never says more than it parsed (an
 * identity it accepts is rebuilt byte for byte from the fields). A secret it accepts transforms, a PSK it
 * accepts derives a TLS PSK and an identity for any NQNs, and that identity parses back to the same host,
 * subsystem, version and cipher (when the NQNs fit in one), with the same PSK again.
 *
 * Input: u8 sel: bits 0-1 what: 0 DHHC-1 secret, 1 TLS PSK (interchange), 2 PSK identity, 3 a PSK's identity
 *                and TLS PSK; bit 2 (0, 1 and 3) build the string from key bytes (else the rest is the
 *                string, up to a NUL)
 *        what 0, 1, built: u8 transformation / hash indicator (printed as two digits, mod 100), u8 key length
 *                (0: 32, 1: 48, 2: 64, else 1 + (n mod 80)), the key bytes, u8 flags (bit 0 a wrong CRC,
 *                bit 1 no padding), u8 edit count, edits of 3 bytes (u8 op: 0 replace, 1 insert, 2 delete,
 *                3 swap with the next; u8 position: below 128 from the start, else pos - 128 from the end,
 *                mod the length; u8 character), then the NQN for the transformation (DHHC-1)
 *        what 2: the identity's bytes (no NUL needed)
 *        what 3: as 1 built (the PSK), then u8 identity version, u16 identity buffer size (0: 640), then the
 *                host NQN and the subsystem NQN, NUL-separated
 */
#include "fuzz/common/fuzz_env.h"

#include "nvmf/auth.h"
#include "nvmf/tcp/psk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define MAXS 1024

static void fail(const char *what, const char *s)
{
	fprintf(fuzz_stderr, "fuzz_psk: %s: '%s'\n", what, s ? s : "");
	abort();
}

/* ---------------------------------------------------------- references */

/* CRC-32 of zlib (reflected 0xEDB88320), written out here: the one DHHC-1 and the PSK interchange format use. */
static uint32_t ref_crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int b = 0; b < 8; b++)
			c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
	}
	return ~c;
}

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* base64 of RFC 4648: groups of 4, '=' only as the padding of the last one. Bytes, or -1. */
static int ref_b64(const char *s, size_t n, uint8_t *out)
{
	int len = 0;

	if (n == 0 || n % 4)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		bool last = i + 4 == n;
		int v[4], pad = 0;

		for (int k = 0; k < 4; k++) {
			v[k] = b64val(s[i + k]);
			if (v[k] < 0) {
				if (!(last && s[i + k] == '=' && k >= 2))
					return -1;
				v[k] = 0;
				pad++;
			} else if (pad) {
				return -1;	/* data after padding */
			}
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];

		out[len++] = (uint8_t)(w >> 16);
		if (pad < 2)
			out[len++] = (uint8_t)(w >> 8);
		if (pad < 1)
			out[len++] = (uint8_t)w;
	}
	return len;
}

/*
 * "<prefix>HH:<base64 of key || le32 CRC>:": the key and HH, or false. digits: the accepted HH values
 * (lo..hi); lens: the accepted key lengths; with HH != 0 the key is as long as HH's hash (hashlen(HH)).
 */
static bool ref_interchange(const char *s, const char *prefix, int hi, const size_t *lens, int nlens,
			    size_t (*hashlen)(int), uint8_t *key, size_t *klen, int *hh)
{
	size_t pl = strlen(prefix), n = strlen(s);
	uint8_t buf[MAXS];
	int len;

	if (n < pl + 4 || strncmp(s, prefix, pl) != 0)
		return false;
	s += pl;
	n -= pl;
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] != ':')
		return false;
	*hh = (s[0] - '0') * 10 + (s[1] - '0');
	if (*hh > hi)
		return false;
	s += 3;
	n -= 3;
	if (n < 1 || s[n - 1] != ':' || memchr(s, ':', n - 1))
		return false;
	len = ref_b64(s, n - 1, buf);
	if (len < 5)
		return false;
	*klen = (size_t)len - 4;
	bool lok = false;
	for (int i = 0; i < nlens; i++)
		lok |= *klen == lens[i];
	if (!lok || (*hh && *klen != hashlen(*hh)))
		return false;
	uint32_t crc = ref_crc32(buf, *klen);
	if (memcmp(buf + *klen, (uint8_t[4]){(uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16),
					      (uint8_t)(crc >> 24)}, 4) != 0)
		return false;
	memcpy(key, buf, *klen);
	return true;
}

static size_t dhchap_hashlen(int h)
{
	return h == 1 ? 32 : h == 2 ? 48 : h == 3 ? 64 : 0;
}

static size_t tls_hashlen(int h)
{
	return h == 1 ? 32 : h == 2 ? 48 : 0;
}

/* ------------------------------------------------------------ building */

/* "<prefix>HH:<base64(key || crc)>:" with the input's edits. */
static void build_interchange(struct fuzz_in *in, const char *prefix, char *s, size_t cap)
{
	uint8_t hh = fin_u8(in), lsel = fin_u8(in), raw[84];
	size_t klen = lsel == 0 ? 32 : lsel == 1 ? 48 : lsel == 2 ? 64 : 1 + lsel % 80;
	char b64[130];
	uint8_t flags;
	size_t n;

	fin_bytes(in, raw, klen);
	flags = fin_u8(in);
	uint32_t crc = ref_crc32(raw, klen) ^ ((flags & 1) ? 0x10000u : 0);
	for (int i = 0; i < 4; i++)
		raw[klen + i] = (uint8_t)(crc >> (8 * i));
	EVP_EncodeBlock((unsigned char *)b64, raw, (int)klen + 4);
	if (flags & 2) {
		size_t e = strlen(b64);

		while (e && b64[e - 1] == '=')
			b64[--e] = '\0';
	}
	snprintf(s, cap, "%s%02u:%s:", prefix, hh % 100, b64);
	n = strlen(s);
	for (unsigned e = fin_u8(in); e > 0 && in->n >= 3; e--) {
		uint8_t op = fin_u8(in) % 4, pos = fin_u8(in), ch = fin_u8(in);
		size_t m = n + (op == 1), p = !m ? 0 : pos < 128 ? pos % m : m - 1 - (size_t)(pos - 128) % m;

		if (ch == 0)
			ch = '=';
		if (op == 3 && p + 1 < n) {
			char t = s[p];

			s[p] = s[p + 1];
			s[p + 1] = t;
		} else if (op == 0 && n) {
			s[p] = (char)ch;
		} else if (op == 1 && n + 1 < cap) {
			memmove(s + p + 1, s + p, n - p + 1);
			s[p] = (char)ch;
			n++;
		} else if (op == 2 && n) {
			memmove(s + p, s + p + 1, n - p);
			n--;
		}
	}
}

/* The rest of the input up to a NUL (or its end), as a string. */
static void take_string(struct fuzz_in *in, char *s, size_t cap)
{
	size_t n = 0;

	while (in->n && n + 1 < cap) {
		uint8_t c = fin_u8(in);

		if (c == 0)
			break;
		s[n++] = (char)c;
	}
	s[n] = '\0';
}

/* ------------------------------------------------------------- targets */

static void do_dhchap(struct fuzz_in *in, bool built)
{
	static const size_t lens[] = {32, 48, 64};
	char s[MAXS], nqn[MAXS], err[256];
	struct dbk_dhchap_secret sec;
	uint8_t key[MAXS], t[64];
	size_t klen = 0;
	int hh = 0;

	if (built)
		build_interchange(in, "DHHC-1:", s, sizeof(s));
	else
		take_string(in, s, sizeof(s));
	take_string(in, nqn, sizeof(nqn));
	int rc = dbk_dhchap_secret_parse(s, &sec, err, sizeof(err));
	bool ok = ref_interchange(s, "DHHC-1:", 3, lens, 3, dhchap_hashlen, key, &klen, &hh);

	if (rc != 0 && rc != -22)
		fail("dbk_dhchap_secret_parse returned neither 0 nor -EINVAL", s);
	if ((rc == 0) != ok)
		fail(ok ? "a well-formed DHHC-1 secret refused" : "a malformed DHHC-1 secret accepted", s);
	if (rc != 0) {
		if (!memchr(err, '\0', sizeof(err)) || !err[0])
			fail("a DHHC-1 secret refused without a message", s);
		return;
	}
	if (sec.len != klen || sec.hmac != hh || memcmp(sec.key, key, klen) != 0)
		fail("a DHHC-1 secret parsed into another key", s);
	int n = dbk_dhchap_transform(&sec, nqn, t);
	if (n != (int)(hh ? dhchap_hashlen(hh) : klen))
		fail("the transformed key has the wrong length", s);
	if (hh == 0 && memcmp(t, key, klen) != 0)
		fail("transformation 00 changed the key", s);
}

static bool ref_nqn_field(const char *p, size_t n, size_t max)
{
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((uint8_t)p[i] < 0x21 || (uint8_t)p[i] > 0x7e)
			return false;
	return true;
}

/* "NVMe<v>R<cc> <hostnqn> <subnqn>[ <digest>]": the fields, or false. */
static bool ref_identity(const uint8_t *id, size_t len, struct dbk_tls_identity *o)
{
	const char *s = (const char *)id, *f[4];
	size_t fl[4];
	int nf = 0;

	memset(o, 0, sizeof(*o));
	if (len < 9 || memcmp(s, "NVMe", 4) != 0 || (s[4] != '0' && s[4] != '1') || s[5] != 'R' || s[6] != '0' ||
	    (s[7] != '1' && s[7] != '2') || s[8] != ' ')
		return false;
	o->version = s[4] - '0';
	o->cipher = s[7] - '0';
	/* split at single spaces: an empty field (two spaces, a space at the end) is malformed */
	for (size_t i = 9, st = 9; i <= len; i++) {
		if (i == len || s[i] == ' ') {
			if (nf == 4)
				return false;
			f[nf] = s + st;
			fl[nf++] = i - st;
			st = i + 1;
		}
	}
	if (nf != (o->version ? 3 : 2))
		return false;
	if (!ref_nqn_field(f[0], fl[0], DBK_TLS_NQN_MAX) || !ref_nqn_field(f[1], fl[1], DBK_TLS_NQN_MAX) ||
	    (nf == 3 && !ref_nqn_field(f[2], fl[2], sizeof(o->digest) - 1)))
		return false;
	memcpy(o->hostnqn, f[0], fl[0]);
	memcpy(o->subnqn, f[1], fl[1]);
	if (nf == 3)
		memcpy(o->digest, f[2], fl[2]);
	return true;
}

static void check_identity(const uint8_t *id, size_t len)
{
	struct dbk_tls_identity got, want;
	char re[DBK_TLS_IDENTITY_MAX + 8];
	char shown[80];
	int rc = dbk_tls_identity_parse(id, len, &got);
	bool ok = ref_identity(id, len, &want);

	snprintf(shown, sizeof(shown), "%.*s", (int)(len < 60 ? len : 60), (const char *)id);
	if (rc != 0 && rc != -22)
		fail("dbk_tls_identity_parse returned neither 0 nor -EINVAL", shown);
	if ((rc == 0) != ok)
		fail(ok ? "a well-formed PSK identity refused" : "a malformed PSK identity accepted", shown);
	if (rc != 0)
		return;
	if (got.version != want.version || got.cipher != want.cipher || strcmp(got.hostnqn, want.hostnqn) != 0 ||
	    strcmp(got.subnqn, want.subnqn) != 0 || strcmp(got.digest, want.digest) != 0)
		fail("a PSK identity parsed into other fields", shown);
	int w = got.version ? snprintf(re, sizeof(re), "NVMe1R%02d %s %s %s", got.cipher, got.hostnqn, got.subnqn,
					  got.digest)
			    : snprintf(re, sizeof(re), "NVMe0R%02d %s %s", got.cipher, got.hostnqn, got.subnqn);
	if (w < 0 || (size_t)w != len || memcmp(re, id, len) != 0)
		fail("the fields of an accepted PSK identity do not make it up again", shown);
}

/* Parse a TLS PSK (checked against the reference); true with the key in k. */
static bool tls_psk(const char *s, struct dbk_tls_psk *k)
{
	static const size_t lens[] = {32, 48};
	char err[256];
	uint8_t key[MAXS];
	size_t klen = 0;
	int hh = 0;
	int rc = dbk_tls_psk_parse(s, k, err, sizeof(err));
	bool ok = ref_interchange(s, "NVMeTLSkey-1:", 2, lens, 2, tls_hashlen, key, &klen, &hh);

	if (rc != 0 && rc != -22)
		fail("dbk_tls_psk_parse returned neither 0 nor -EINVAL", s);
	if ((rc == 0) != ok)
		fail(ok ? "a well-formed TLS PSK refused" : "a malformed TLS PSK accepted", s);
	if (rc != 0) {
		static const struct dbk_tls_psk zero;

		if (memcmp(k, &zero, sizeof(zero)) != 0)
			fail("a refused TLS PSK left key bytes behind", s);
		if (!memchr(err, '\0', sizeof(err)) || !err[0])
			fail("a TLS PSK refused without a message", s);
		return false;
	}
	if (k->len != klen || k->hash != hh || memcmp(k->key, key, klen) != 0)
		fail("a TLS PSK parsed into another key", s);
	if (dbk_tls_psk_cipher(k) != (hh ? hh : klen == 48 ? DBK_TLS_CIPHER_SHA384 : DBK_TLS_CIPHER_SHA256))
		fail("a TLS PSK goes with the wrong cipher suite", s);
	return true;
}

static void do_derive(struct fuzz_in *in, const struct dbk_tls_psk *k, const char *s)
{
	uint8_t version = fin_u8(in) & 1;
	size_t idlen = fin_u16(in);
	char host[MAXS], sub[MAXS], id[DBK_TLS_IDENTITY_MAX], id2[DBK_TLS_IDENTITY_MAX];
	uint8_t psk[DBK_TLS_PSK_MAX], psk2[DBK_TLS_PSK_MAX];
	int cipher = dbk_tls_psk_cipher(k);
	size_t L = cipher == DBK_TLS_CIPHER_SHA384 ? 48 : 32, hl, sl;

	if (idlen == 0 || idlen > sizeof(id))
		idlen = sizeof(id);
	take_string(in, host, sizeof(host));
	take_string(in, sub, sizeof(sub));
	hl = strlen(host);
	sl = strlen(sub);
	int rc = dbk_tls_psk_for(k, version, host, sub, id, idlen, psk);
	/* what it must make: "NVMe<v>R<cc> host sub" (+ " " and the base64 of an L-byte HMAC for version 1) */
	size_t want_len = 9 + hl + 1 + sl + (version ? 1 + (L + 2) / 3 * 4 : 0);
	bool can = hl <= DBK_TLS_NQN_MAX && sl <= DBK_TLS_NQN_MAX && want_len < idlen &&
		   (version == 1 || want_len <= 255);	/* v0: the identity is HKDF-Expand-Label's context */

	if (rc >= 0 && !can)
		fail("dbk_tls_psk_for derived from NQNs or into a buffer it cannot take", s);
	if (rc < 0) {
		if (can)
			fail("dbk_tls_psk_for failed for NQNs it can take", s);
		return;
	}
	if ((size_t)rc != L || strlen(id) != want_len)
		fail("dbk_tls_psk_for made a TLS PSK or an identity of the wrong length", s);
	check_identity((const uint8_t *)id, want_len);
	struct dbk_tls_identity ident;
	bool fits = ref_nqn_field(host, hl, DBK_TLS_NQN_MAX) && ref_nqn_field(sub, sl, DBK_TLS_NQN_MAX);

	if ((dbk_tls_identity_parse((const uint8_t *)id, want_len, &ident) == 0) != fits)
		fail("the identity of a PSK does not parse back (or parses, from NQNs with spaces)", s);
	if (fits && (ident.version != version || ident.cipher != cipher || strcmp(ident.hostnqn, host) != 0 ||
		     strcmp(ident.subnqn, sub) != 0))
		fail("the identity of a PSK parses back into other fields", s);
	if (dbk_tls_psk_for(k, version, host, sub, id2, sizeof(id2), psk2) != rc || strcmp(id, id2) != 0 ||
	    memcmp(psk, psk2, L) != 0)
		fail("dbk_tls_psk_for is not deterministic", s);
	dbk_tls_wipe(psk, sizeof(psk));
	dbk_tls_wipe(psk2, sizeof(psk2));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_env_init(0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	uint8_t sel = fin_u8(&in);
	bool built = (sel & 4) != 0;
	char s[MAXS];
	struct dbk_tls_psk k;

	switch (sel & 3) {
	case 0:
		do_dhchap(&in, built);
		break;
	case 1:
		if (built)
			build_interchange(&in, "NVMeTLSkey-1:", s, sizeof(s));
		else
			take_string(&in, s, sizeof(s));
		if (tls_psk(s, &k))
			dbk_tls_wipe(&k, sizeof(k));
		break;
	case 2:
		check_identity(in.p, in.n);
		break;
	default:
		build_interchange(&in, "NVMeTLSkey-1:", s, sizeof(s));
		if (tls_psk(s, &k)) {
			do_derive(&in, &k, s);
			dbk_tls_wipe(&k, sizeof(k));
		}
		break;
	}
	return 0;
}
