/*
 * NVMe/TCP TLS pre-shared keys (NVMe/TCP transport specification, TP 8011 / TP 8018): the PSK interchange
 * format, PSK identities, and the retained and TLS PSK derivations. Shared by the target (sock_tls.c) and
 * daosblk-perf. Every primitive is OpenSSL's (HKDF, HMAC, base64) or ISA-L's (CRC-32).
 *
 *   configured PSK  "NVMeTLSkey-1:HH:<base64 of key || CRC-32 (little endian)>:" (nvme gen-tls-key)
 *                   HH: 00 no transformation, 01 SHA-256 (32-byte key), 02 SHA-384 (48-byte key)
 *   retained PSK    HH 00: the configured key; else HKDF-Expand-Label(HKDF-Extract(0, key), "HostNQN",
 *                   hostnqn, L) with HH's hash
 *   cipher suite    by hash: SHA-256 -> TLS_AES_128_GCM_SHA256 ("01"), SHA-384 -> TLS_AES_256_GCM_SHA384 ("02");
 *                   HH 00: by the key's length (32 / 48)
 *   identity        version 0: "NVMe0R<cc> <hostnqn> <subnqn>"
 *                   version 1: "NVMe1R<cc> <hostnqn> <subnqn> <digest>", digest = base64(HMAC(retained,
 *                   hostnqn " " subnqn " NVMe-over-Fabrics")) with the cipher's hash
 *   TLS PSK         HKDF-Expand-Label(HKDF-Extract(0, retained), "nvme-tls-psk", context, L): context is the
 *                   identity (version 0) or "<cc> <digest>" (version 1); L = the hash's length
 * ("R": retained; identities of generated PSKs, "G", come from DH-HMAC-CHAP secure channel concatenation,
 * which this target does not offer.)
 */
#ifndef DBK_NVMF_TCP_PSK_H
#define DBK_NVMF_TCP_PSK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DBK_TLS_PSK_MAX 48		/* bytes of a configured / retained / TLS PSK */
#define DBK_TLS_IDENTITY_MAX 640	/* "NVMe1R02 " + 2 NQNs of 223 + " " + a 64-character digest + NUL */
#define DBK_TLS_NQN_MAX 223

#define DBK_TLS_CIPHER_SHA256 1		/* TLS_AES_128_GCM_SHA256 */
#define DBK_TLS_CIPHER_SHA384 2		/* TLS_AES_256_GCM_SHA384 */

struct dbk_tls_psk {
	uint8_t key[DBK_TLS_PSK_MAX];
	size_t len;			/* 32 or 48 */
	int hash;			/* HH: 0 none, 1 SHA-256, 2 SHA-384 */
};

struct dbk_tls_identity {
	int version;			/* 0 or 1 */
	int cipher;			/* DBK_TLS_CIPHER_* */
	char hostnqn[DBK_TLS_NQN_MAX + 1];
	char subnqn[DBK_TLS_NQN_MAX + 1];
	char digest[100];		/* version 1 only */
};

/*
 * Parse a PSK in interchange format: checks the prefix, HH, the base64, the key length (32 or 48 bytes; with
 * HH 01/02 exactly the hash's length) and the CRC-32. 0, or -EINVAL with a message in err that never shows
 * the key. out is wiped on failure; the caller wipes it after use (dbk_tls_wipe).
 */
int dbk_tls_psk_parse(const char *interchange, struct dbk_tls_psk *out, char *err, size_t errlen);
/* The cipher suite a configured PSK goes with (DBK_TLS_CIPHER_*). */
int dbk_tls_psk_cipher(const struct dbk_tls_psk *k);
/* OpenSSL's name of a cipher suite ("TLS_AES_128_GCM_SHA256"), NULL when unknown. */
const char *dbk_tls_cipher_name(int cipher);

/*
 * The TLS PSK and the identity a host presents for (hostnqn, subnqn) with configured PSK k and identity version
 * (0 or 1). psk gets L bytes (32 / 48), returned; identity a NUL-terminated string. -EINVAL on bad input.
 */
int dbk_tls_psk_for(const struct dbk_tls_psk *k, int version, const char *hostnqn, const char *subnqn,
		    char *identity, size_t idlen, uint8_t *psk);

/*
 * Parse an identity the host sent (len bytes, no NUL needed): "NVMe<v>R<cc> <hostnqn> <subnqn>[ <digest>]".
 * 0, or -EINVAL (also for generated "G" identities and unknown versions or ciphers).
 */
int dbk_tls_identity_parse(const uint8_t *id, size_t len, struct dbk_tls_identity *out);

/* Wipe secrets (OPENSSL_cleanse). */
void dbk_tls_wipe(void *p, size_t len);

#endif
