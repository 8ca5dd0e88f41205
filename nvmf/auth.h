/*
 * In-band authentication (NVMe Base Specification 2.x, "Authentication": AUTH_Send / AUTH_Receive,
 * DH-HMAC-CHAP). The protocol state machine lives in nvmf/auth.c; nvmf/ctrlr.c only calls the hooks below.
 *
 * Identifiers are the spec's: hash functions 1 = SHA-256, 2 = SHA-384, 3 = SHA-512; DH groups 0 = null,
 * 1 = ffdhe2048, 2 = ffdhe3072, 3 = ffdhe4096, 4 = ffdhe6144, 5 = ffdhe8192. Configuration masks have
 * bit (1 << id) set for each allowed one.
 */
#ifndef DBK_NVMF_AUTH_H
#define DBK_NVMF_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define DBK_AUTH_HASH_SHA256 1
#define DBK_AUTH_HASH_SHA384 2
#define DBK_AUTH_HASH_SHA512 3
#define DBK_AUTH_DHGROUP_NULL 0
#define DBK_AUTH_DHGROUP_2048 1
#define DBK_AUTH_DHGROUP_3072 2
#define DBK_AUTH_DHGROUP_4096 3
#define DBK_AUTH_DHGROUP_6144 4
#define DBK_AUTH_DHGROUP_8192 5
#define DBK_AUTH_DIGESTS_ALL ((1u << 1) | (1u << 2) | (1u << 3))
#define DBK_AUTH_DHGROUPS_ALL 0x3Fu

/* ---------------------------------------------------- names (SPDK's: "sha256", "ffdhe2048", "null") */
int dbk_auth_digest_from_name(const char *name);	/* id or -1 */
int dbk_auth_dhgroup_from_name(const char *name);	/* id or -1 */
const char *dbk_auth_digest_name(int id);		/* NULL when unknown */
const char *dbk_auth_dhgroup_name(int id);

/* ---------------------------------------------------- target-wide configuration (main reactor) */
/* nvmf_set_config: masks of allowed digests / DH groups (0: leave unchanged). 0 or -EINVAL. */
int dbk_nvmf_auth_set_config(uint32_t digests, uint32_t dhgroups, char *err, size_t errlen);
void dbk_nvmf_auth_get_config(uint32_t *digests, uint32_t *dhgroups);
/* The params of nvmf_set_config as save_config writes them. */
json_t *dbk_nvmf_auth_config_json(void);

/* ---------------------------------------------------- DHHC-1 secrets */
#define DBK_DHCHAP_MAX_KEY 64

struct dbk_dhchap_secret {
	uint8_t key[DBK_DHCHAP_MAX_KEY];
	size_t len;		/* 32, 48 or 64 */
	int hmac;		/* transformation: 0 none, 1/2/3 = HMAC-SHA-256/384/512 */
};

/*
 * Parse "DHHC-1:XX:<base64 of key || CRC-32 (little endian)>:". Checks the transformation id, the
 * key length (32, 48 or 64 bytes; with a transformation, the length of its hash), and the CRC.
 * 0, or -EINVAL with a message in err that does not show the secret.
 */
int dbk_dhchap_secret_parse(const char *str, struct dbk_dhchap_secret *out, char *err, size_t errlen);
/*
 * The transformed key of the spec: the key itself for transformation 0, else
 * HMAC-<hash>(key, NQN || "NVMe-over-Fabrics"). out must hold 64 bytes. Returns its length or -1.
 */
int dbk_dhchap_transform(const struct dbk_dhchap_secret *s, const char *nqn, uint8_t *out);

#endif
