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

/* ---------------------------------------------------- DH-HMAC-CHAP building blocks (unit-tested) */

/* Digest length of a hash id (32, 48, 64), 0 when unknown. */
size_t dbk_auth_hash_len(int hash);
/* Size in bytes of a DH group's prime (256 ... 1024), 0 for null or unknown. */
size_t dbk_auth_dhgroup_size(int dhgroup);
/*
 * The responses of the spec: HMAC-<hash>(key, C || le32(seq) || le16(tid) || sc_c || "HostHost" || hostnqn ||
 * 0x00 || subnqn) for the host, and with "Controller" || subnqn || 0x00 || hostnqn for the controller.
 * key is the transformed secret, chal the (augmented) challenge of hash_len bytes. 0 or -1.
 */
int dbk_dhchap_response(int hash, const uint8_t *key, size_t keylen, const uint8_t *chal, uint32_t seq,
			uint16_t tid, uint8_t sc_c, bool controller, const char *hostnqn, const char *subnqn,
			uint8_t *out);
/* Augmented challenge: HMAC-<hash>(H(shared secret), C). 0 or -1. */
int dbk_dhchap_augment(int hash, const uint8_t *skey, size_t skeylen, const uint8_t *chal, uint8_t *out);

/* Finite-field DH (RFC 7919 groups) with OpenSSL. */
struct dbk_dh;
struct dbk_dh *dbk_dh_new(int dhgroup);	/* new key pair; NULL on error */
void dbk_dh_free(struct dbk_dh *dh);
/* Public value, big-endian, padded to the prime's size (len must be that size). 0 or -1. */
int dbk_dh_public(struct dbk_dh *dh, uint8_t *out, size_t len);
/* Shared secret with the peer's public value (checked: 1 < y < p - 1, in the subgroup), padded to the prime's size. */
int dbk_dh_derive(struct dbk_dh *dh, const uint8_t *peer, size_t peerlen, uint8_t *out, size_t len);

/* ---------------------------------------------------- the per-queue protocol (hooks for nvmf/ctrlr.c, tgt.c) */

struct dbk_nvmf_subsystem;
struct dbk_nvmf_qpair;
struct dbk_nvmf_request;
struct nvmf_auth;

/* Time a host has for each step of an authentication transaction, and to start one after Connect. */
#define DBK_NVMF_AUTH_TIMEOUT_MS 10000u
/* Status of a command refused on a queue that has not authenticated: Authentication Required (SCT 1). */
#define DBK_NVME_SC_AUTH_REQUIRED 0x91
/* Connect response dword 0: authentication required (AUTHREQ.ATR). */
#define DBK_NVMF_CONNECT_AUTHREQ_ATR (1u << 17)

/*
 * Main reactor, during Connect: when the host entry of hostnqn has a DH-HMAC-CHAP key, build the queue's
 * authentication state (the secrets already transformed, the digests and groups allowed). 0 with *out
 * (NULL when the host needs no authentication), or -errno with a message in err (key removed or unusable).
 */
int nvmf_auth_prepare(const struct dbk_nvmf_subsystem *s, const char *hostnqn, struct nvmf_auth **out,
		      char *err, size_t errlen);
/* Free a prepared state that was not attached (Connect failed). */
void nvmf_auth_free(struct nvmf_auth *a);
/* Qpair thread, when the Connect succeeds: the queue now needs authentication (starts the timer). */
void nvmf_auth_attach(struct dbk_nvmf_qpair *q, struct nvmf_auth *a);
/* Qpair thread: AUTH_Send / AUTH_Receive. */
void nvmf_auth_exec(struct dbk_nvmf_request *req);
/* Qpair thread: {"auth": {state, digest, dhgroup}} into a nvmf_subsystem_get_qpairs entry (as SPDK). */
void nvmf_auth_qpair_json(const struct dbk_nvmf_qpair *q, json_t *o);
/* Qpair thread, qpair teardown. */
void nvmf_auth_qpair_fini(struct dbk_nvmf_qpair *q);
