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
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/dh.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

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

size_t dbk_auth_hash_len(int hash)
{
	return hash == 1 ? 32 : hash == 2 ? 48 : hash == 3 ? 64 : 0;
}

size_t dbk_auth_dhgroup_size(int g)
{
	static const size_t sz[] = {0, 256, 384, 512, 768, 1024};

	return g >= 0 && g <= 5 ? sz[g] : 0;
}

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

static const EVP_MD *dbk_auth_md(int hash)
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

		/* '=' only as padding: the last character, or the last two (EVP_DecodeBlock takes it anywhere, as 0) */
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
		      c == '/' || (c == '=' && (i == b64len - 1 || (i == b64len - 2 && b64[b64len - 1] == '='))))) {
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
	if (hmac != 0 && (size_t)n - 4 != dbk_auth_hash_len(hmac)) {
		OPENSSL_cleanse(buf, sizeof(buf));
		snprintf(err, errlen, "DHHC-1 secret: transformation %02d needs a %zu-byte key, not %d bytes", hmac,
			 dbk_auth_hash_len(hmac), n - 4);
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

/* ------------------------------------------------------------------ HMAC, responses, DH */

/* HMAC over a list of pieces; returns 0 or -1. */
struct piece {
	const void *p;
	size_t n;
};

static int hmac_pieces(int hash, const uint8_t *key, size_t keylen, const struct piece *pc, int npc, uint8_t *out)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	const EVP_MD *md = dbk_auth_md(hash);
	OSSL_PARAM params[2];
	size_t outl = 0;
	int rc = -1;

	if (!ctx || !md)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)EVP_MD_get0_name(md), 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_init(ctx, key, keylen, params))
		goto out;
	for (int i = 0; i < npc; i++)
		if (pc[i].n && !EVP_MAC_update(ctx, pc[i].p, pc[i].n))
			goto out;
	if (EVP_MAC_final(ctx, out, &outl, 64) && outl == dbk_auth_hash_len(hash))
		rc = 0;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return rc;
}

int dbk_dhchap_response(int hash, const uint8_t *key, size_t keylen, const uint8_t *chal, uint32_t seq,
			uint16_t tid, uint8_t sc_c, bool controller, const char *hostnqn, const char *subnqn,
			uint8_t *out)
{
	uint8_t seqb[4] = {(uint8_t)seq, (uint8_t)(seq >> 8), (uint8_t)(seq >> 16), (uint8_t)(seq >> 24)};
	uint8_t tidb[2] = {(uint8_t)tid, (uint8_t)(tid >> 8)};
	static const uint8_t zero;
	const char *first = controller ? subnqn : hostnqn, *second = controller ? hostnqn : subnqn;
	struct piece pc[] = {
		{chal, dbk_auth_hash_len(hash)},
		{seqb, 4},
		{tidb, 2},
		{&sc_c, 1},
		{controller ? "Controller" : "HostHost", controller ? 10 : 8},
		{first, strlen(first)},
		{&zero, 1},
		{second, strlen(second)},
	};

	return hmac_pieces(hash, key, keylen, pc, (int)(sizeof(pc) / sizeof(pc[0])), out);
}

int dbk_dhchap_augment(int hash, const uint8_t *skey, size_t skeylen, const uint8_t *chal, uint8_t *out)
{
	uint8_t hk[EVP_MAX_MD_SIZE];
	unsigned int hl = 0;
	struct piece pc[] = {{chal, dbk_auth_hash_len(hash)}};
	int rc;

	if (!dbk_auth_md(hash) || !EVP_Digest(skey, skeylen, hk, &hl, dbk_auth_md(hash), NULL))
		return -1;
	rc = hmac_pieces(hash, hk, hl, pc, 1, out);
	OPENSSL_cleanse(hk, sizeof(hk));
	return rc;
}

struct dbk_dh {
	EVP_PKEY *key;
	int group;
};

struct dbk_dh *dbk_dh_new(int dhgroup)
{
	const char *name = dbk_auth_dhgroup_name(dhgroup);
	EVP_PKEY_CTX *ctx;
	OSSL_PARAM params[2];
	struct dbk_dh *dh;

	if (!name || dhgroup == DBK_AUTH_DHGROUP_NULL)
		return NULL;
	dh = calloc(1, sizeof(*dh));
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
	if (!dh || !ctx || EVP_PKEY_keygen_init(ctx) <= 0)
		goto fail;
	params[0] = OSSL_PARAM_construct_utf8_string("group", (char *)name, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_PKEY_CTX_set_params(ctx, params) <= 0 || EVP_PKEY_generate(ctx, &dh->key) <= 0)
		goto fail;
	EVP_PKEY_CTX_free(ctx);
	dh->group = dhgroup;
	return dh;
fail:
	EVP_PKEY_CTX_free(ctx);
	free(dh);
	return NULL;
}

void dbk_dh_free(struct dbk_dh *dh)
{
	if (dh) {
		EVP_PKEY_free(dh->key);
		free(dh);
	}
}

int dbk_dh_public(struct dbk_dh *dh, uint8_t *out, size_t len)
{
	BIGNUM *pub = NULL;
	int rc = -1;

	if (len != dbk_auth_dhgroup_size(dh->group))
		return -1;
	if (EVP_PKEY_get_bn_param(dh->key, "pub", &pub) && BN_bn2binpad(pub, out, (int)len) == (int)len)
		rc = 0;
	BN_free(pub);
	return rc;
}

int dbk_dh_derive(struct dbk_dh *dh, const uint8_t *peer, size_t peerlen, uint8_t *out, size_t len)
{
	size_t plen = dbk_auth_dhgroup_size(dh->group), outl = len;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *fctx = NULL, *dctx = NULL;
	EVP_PKEY *pk = NULL;
	BIGNUM *y = NULL;
	int rc = -1;

	if (peerlen != plen || len != plen)
		return -1;
	y = BN_bin2bn(peer, (int)peerlen, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (!y || !bld || !OSSL_PARAM_BLD_push_utf8_string(bld, "group", dbk_auth_dhgroup_name(dh->group), 0) ||
	    !OSSL_PARAM_BLD_push_BN(bld, "pub", y) || !(params = OSSL_PARAM_BLD_to_param(bld)))
		goto out;
	fctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL);
	if (!fctx || EVP_PKEY_fromdata_init(fctx) <= 0 || EVP_PKEY_fromdata(fctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		goto out;
	dctx = EVP_PKEY_CTX_new(dh->key, NULL);
	/* validate_peer = 1: OpenSSL checks 1 < y < p - 1 and the subgroup (a bad public value is refused) */
	if (!dctx || EVP_PKEY_derive_init(dctx) <= 0 || EVP_PKEY_CTX_set_dh_pad(dctx, 1) <= 0 ||
	    EVP_PKEY_derive_set_peer_ex(dctx, pk, 1) <= 0 || EVP_PKEY_derive(dctx, out, &outl) <= 0 || outl != plen)
		goto out;
	rc = 0;
out:
	EVP_PKEY_CTX_free(dctx);
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(fctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(y);
	return rc;
}

/* ================================================================== the per-queue protocol */

#include "keyring/keyring.h"
#include "nvmf/nvmf_internal.h"

#define SECP_DHCHAP 0xE9	/* AUTH_Send/Receive security protocol: NVMe in-band authentication */
#define AUTHID_DHCHAP 0x01	/* protocol descriptor: DH-HMAC-CHAP */
#define MSG_COMMON 0x00		/* auth_type of Negotiate and the Failure messages */
#define MSG_DHCHAP 0x01
#define ID_NEGOTIATE 0x00
#define ID_CHALLENGE 0x01
#define ID_REPLY 0x02
#define ID_SUCCESS1 0x03
#define ID_SUCCESS2 0x04
#define ID_FAILURE2 0xF0
#define ID_FAILURE1 0xF1
/* Failure reason code and explanations */
#define RC_FAILED 0x01
#define RCE_FAILED 0x01
#define RCE_NOT_USABLE 0x02
#define RCE_CONCAT_MISMATCH 0x03
#define RCE_HASH_UNUSABLE 0x04
#define RCE_DHGROUP_UNUSABLE 0x05
#define RCE_INCORRECT_PAYLOAD 0x06
#define RCE_INCORRECT_MESSAGE 0x07
#define MAX_AUTH_MSG 8192	/* larger than any DH-HMAC-CHAP message (Negotiate with 127 descriptors) */

enum auth_step {
	STEP_NEGOTIATE,	/* waiting for AUTH_Send(Negotiate) */
	STEP_CHALLENGE,	/* waiting for AUTH_Receive: send the Challenge */
	STEP_REPLY,	/* waiting for AUTH_Send(Reply) */
	STEP_SUCCESS1,	/* waiting for AUTH_Receive: send Success1 */
	STEP_SUCCESS2,	/* waiting for AUTH_Send(Success2 or Failure2) (bidirectional) */
	STEP_FAILURE1,	/* waiting for AUTH_Receive: send Failure1, then give up */
	STEP_DONE,	/* authenticated (a new Negotiate re-authenticates) */
	STEP_FAILED,	/* failed: the queue is closed shortly */
};

struct nvmf_auth {
	struct dbk_nvmf_qpair *q;
	char hostnqn[NVME_NQN_MAX_LEN + 1];
	char subnqn[NVME_NQN_MAX_LEN + 1];
	uint8_t host_key[64];	/* transformed with the host NQN */
	size_t host_key_len;
	uint8_t ctrl_key[64];	/* transformed with the subsystem NQN; ctrl_key_len 0: none */
	size_t ctrl_key_len;
	uint32_t digests, dhgroups;
	enum auth_step step;
	bool authenticated;
	uint16_t tid;
	int hash, dhgroup;
	size_t hl;
	uint32_t s1, s2;
	uint8_t c1[64], c2[64];
	bool bidirectional;
	uint8_t rce;		/* reason code explanation of a pending Failure1 */
	struct dbk_dh *dh;
	uint8_t skey[1024];	/* DH shared secret */
	size_t skey_len;
	uint64_t deadline_ns;
	struct dbk_poller *timer;
	bool timer_disconnect;	/* the deadline closes the queue */
};

static void wipe_free(struct nvmf_auth *a)
{
	if (!a)
		return;
	dbk_dh_free(a->dh);
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
}

void nvmf_auth_free(struct nvmf_auth *a)
{
	wipe_free(a);
}

/* Read, parse and transform one key into out; returns its length or -errno with err. */
static int load_key(struct dbk_key *k, const char *nqn, uint8_t *out, char *err, size_t errlen)
{
	struct dbk_dhchap_secret sec;
	char buf[DBK_KEY_MAX_SIZE + 1], perr[160];
	int rc = dbk_key_get_secret(k, buf, sizeof(buf));

	if (rc < 0) {
		snprintf(err, errlen, "key '%s' %s", dbk_key_get_name(k),
			 rc == -ENOKEY ? "was removed from the keyring" : "cannot be read");
		OPENSSL_cleanse(buf, sizeof(buf));
		return rc;
	}
	rc = dbk_dhchap_secret_parse(buf, &sec, perr, sizeof(perr));
	OPENSSL_cleanse(buf, sizeof(buf));
	if (rc) {
		snprintf(err, errlen, "key '%s': %s", dbk_key_get_name(k), perr);
		return rc;
	}
	rc = dbk_dhchap_transform(&sec, nqn, out);
	OPENSSL_cleanse(&sec, sizeof(sec));
	if (rc < 0) {
		snprintf(err, errlen, "key '%s': transformation failed", dbk_key_get_name(k));
		return -EIO;
	}
	return rc;
}

int nvmf_auth_prepare(const struct dbk_nvmf_subsystem *s, const char *hostnqn, struct nvmf_auth **out, char *err,
		      size_t errlen)
{
	const struct nvmf_host *h = nvmf_subsystem_find_host(s, hostnqn);
	struct nvmf_auth *a;
	int rc;

	*out = NULL;
	if (!h || !h->dhchap_key)
		return 0;
	a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(a->hostnqn, sizeof(a->hostnqn), "%s", hostnqn);
	snprintf(a->subnqn, sizeof(a->subnqn), "%s", s->nqn);
	rc = load_key(h->dhchap_key, a->hostnqn, a->host_key, err, errlen);
	if (rc < 0)
		goto fail;
	a->host_key_len = (size_t)rc;
	if (h->dhchap_ctrlr_key) {
		rc = load_key(h->dhchap_ctrlr_key, a->subnqn, a->ctrl_key, err, errlen);
		if (rc < 0)
			goto fail;
		a->ctrl_key_len = (size_t)rc;
	}
	dbk_nvmf_auth_get_config(&a->digests, &a->dhgroups);
	a->step = STEP_NEGOTIATE;
	*out = a;
	return 0;
fail:
	wipe_free(a);
	return rc;
}

static int auth_timer(void *arg);
static void end_transaction(struct nvmf_auth *a);

static void arm_timer(struct nvmf_auth *a, uint64_t ms, bool disconnect)
{
	a->deadline_ns = dbk_get_ns() + ms * 1000000ull;
	a->timer_disconnect = disconnect;
	if (!a->timer)
		a->timer = dbk_poller_register(auth_timer, a, 200000, "nvmf_auth");
}

static void disarm_timer(struct nvmf_auth *a)
{
	if (a->timer)
		dbk_poller_unregister(&a->timer);
}

static int auth_timer(void *arg)
{
	struct nvmf_auth *a = arg;

	if (dbk_get_ns() < a->deadline_ns)
		return DBK_POLLER_IDLE;
	disarm_timer(a);
	if (a->authenticated && a->step != STEP_FAILED) {
		/* a re-authentication the host left unfinished: the queue keeps the access it had */
		DBK_NOTICELOG("%s: host %s qid %u: re-authentication not completed within %u ms, abandoned", a->subnqn,
			      a->hostnqn, a->q->qid, DBK_NVMF_AUTH_TIMEOUT_MS);
		a->step = STEP_DONE;
		end_transaction(a);
		return DBK_POLLER_BUSY;
	}
	if (a->step == STEP_FAILED) {
		DBK_INFOLOG("%s: host %s qid %u: authentication failed, closing the queue", a->subnqn, a->hostnqn,
			    a->q->qid);
	} else {
		DBK_NOTICELOG("%s: host %s qid %u: authentication not completed within %u ms, closing the queue",
			      a->subnqn, a->hostnqn, a->q->qid, DBK_NVMF_AUTH_TIMEOUT_MS);
		a->step = STEP_FAILED;
		a->q->core_unauthenticated = true;
	}
	dbk_nvmf_qpair_disconnect(a->q);
	return DBK_POLLER_BUSY;
}

void nvmf_auth_attach(struct dbk_nvmf_qpair *q, struct nvmf_auth *a)
{
	a->q = q;
	q->core_auth = a;
	q->core_unauthenticated = true;
	arm_timer(a, DBK_NVMF_AUTH_TIMEOUT_MS, true);
}

void nvmf_auth_qpair_fini(struct dbk_nvmf_qpair *q)
{
	struct nvmf_auth *a = q->core_auth;

	if (!a)
		return;
	disarm_timer(a);
	q->core_auth = NULL;
	wipe_free(a);
}

/* Forget the transaction's secrets (the keys stay for a re-authentication). */
static void end_transaction(struct nvmf_auth *a)
{
	dbk_dh_free(a->dh);
	a->dh = NULL;
	OPENSSL_cleanse(a->skey, sizeof(a->skey));
	OPENSSL_cleanse(a->c1, sizeof(a->c1));
	OPENSSL_cleanse(a->c2, sizeof(a->c2));
	a->skey_len = 0;
}

/* A protocol error: the next AUTH_Receive gets Failure1 with this explanation. */
static void fail1(struct nvmf_auth *a, uint8_t rce, const char *why)
{
	DBK_NOTICELOG("%s: host %s qid %u: authentication failed: %s", a->subnqn, a->hostnqn, a->q->qid, why);
	a->rce = rce;
	a->step = STEP_FAILURE1;
	a->authenticated = false;
	a->q->core_unauthenticated = true;
	end_transaction(a);
}

static void give_up(struct nvmf_auth *a)
{
	a->step = STEP_FAILED;
	a->authenticated = false;
	a->q->core_unauthenticated = true;
	end_transaction(a);
	/* let the host read the last answer, then close */
	arm_timer(a, 1000, true);
}

static void authenticated(struct nvmf_auth *a)
{
	a->step = STEP_DONE;
	a->authenticated = true;
	a->q->core_unauthenticated = false;
	end_transaction(a);
	disarm_timer(a);
	DBK_INFOLOG("%s: host %s qid %u authenticated (%s, %s%s)", a->subnqn, a->hostnqn, a->q->qid,
		    dbk_auth_digest_name(a->hash), dbk_auth_dhgroup_name(a->dhgroup),
		    a->bidirectional ? ", bidirectional" : "");
}

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t new_seqnum(void)
{
	uint32_t s = 0;

	while (s == 0)
		if (RAND_bytes((uint8_t *)&s, sizeof(s)) != 1)
			return 1;
	return s;
}

/* Negotiate: 8-byte header, napd 64-byte protocol descriptors. */
static void on_negotiate(struct nvmf_auth *a, const uint8_t *m, size_t len)
{
	const uint8_t *d = NULL;
	uint8_t napd;

	end_transaction(a);
	a->tid = get16(m + 4);
	a->bidirectional = false;
	if (len < 8 + 64) {
		fail1(a, RCE_INCORRECT_PAYLOAD, "Negotiate message too short");
		return;
	}
	napd = m[7];
	if (napd == 0 || len < 8 + 64 * (size_t)napd) {
		fail1(a, RCE_INCORRECT_PAYLOAD, "Negotiate: descriptor count does not match its length");
		return;
	}
	if (m[6] != 0) {
		fail1(a, RCE_CONCAT_MISMATCH, "Negotiate asks for secure channel concatenation (not supported)");
		return;
	}
	for (unsigned i = 0; i < napd; i++)
		if (m[8 + 64 * i] == AUTHID_DHCHAP)
			d = m + 8 + 64 * i;
	if (!d) {
		fail1(a, RCE_NOT_USABLE, "Negotiate offers no DH-HMAC-CHAP descriptor");
		return;
	}
	if (d[2] > 30 || d[3] > 30) {
		fail1(a, RCE_INCORRECT_PAYLOAD, "Negotiate: more than 30 hash or DH group identifiers");
		return;
	}
	/* the strongest digest and DH group offered that this target allows */
	a->hash = 0;
	for (unsigned i = 0; i < d[2]; i++) {
		uint8_t h = d[4 + i];

		if (h >= 1 && h <= 3 && (a->digests & (1u << h)) && h > a->hash)
			a->hash = h;
	}
	if (!a->hash) {
		fail1(a, RCE_HASH_UNUSABLE, "no offered hash function is allowed (nvmf_set_config --dhchap-digests)");
		return;
	}
	a->dhgroup = -1;
	for (unsigned i = 0; i < d[3]; i++) {
		uint8_t g = d[34 + i];

		if (g <= 5 && (a->dhgroups & (1u << g)) && (int)g > a->dhgroup)
			a->dhgroup = g;
	}
	if (a->dhgroup < 0) {
		fail1(a, RCE_DHGROUP_UNUSABLE, "no offered DH group is allowed (nvmf_set_config --dhchap-dhgroups)");
		return;
	}
	a->hl = dbk_auth_hash_len(a->hash);
	a->step = STEP_CHALLENGE;
}

/* Challenge: 16-byte header, C1 (hl), our DH public value. */
static size_t build_challenge(struct nvmf_auth *a, uint8_t *m)
{
	size_t dhv = dbk_auth_dhgroup_size(a->dhgroup);

	a->s1 = new_seqnum();
	if (RAND_bytes(a->c1, (int)a->hl) != 1)
		return 0;
	if (dhv) {
		a->dh = dbk_dh_new(a->dhgroup);
		if (!a->dh || dbk_dh_public(a->dh, m + 16 + a->hl, dhv) != 0)
			return 0;
	}
	m[0] = MSG_DHCHAP;
	m[1] = ID_CHALLENGE;
	put16(m + 4, a->tid);
	m[6] = (uint8_t)a->hl;
	m[8] = (uint8_t)a->hash;
	m[9] = (uint8_t)a->dhgroup;
	put16(m + 10, (uint16_t)dhv);
	put32(m + 12, a->s1);
	memcpy(m + 16, a->c1, a->hl);
	return 16 + a->hl + dhv;
}

/* Reply: 16-byte header, R1 (hl), C2 (hl), the host's DH public value. */
static void on_reply(struct nvmf_auth *a, const uint8_t *m, size_t len)
{
	uint8_t want[64], chal[64];
	size_t dhv = dbk_auth_dhgroup_size(a->dhgroup), hl = a->hl;
	uint16_t dhvlen;
	int ok;

	if (len < 16 || m[6] != hl) {
		fail1(a, RCE_INCORRECT_PAYLOAD, "Reply: wrong hash length");
		return;
	}
	dhvlen = get16(m + 10);
	if (m[8] > 1 || (m[8] && get32(m + 12) == 0)) {
		fail1(a, RCE_INCORRECT_PAYLOAD, "Reply: CVALID not 0 or 1, or a controller challenge with sequence number 0");
		return;
	}
	if (dhvlen != dhv) {
		fail1(a, RCE_INCORRECT_PAYLOAD, "Reply: DH value length does not match the group");
		return;
	}
	if (len < 16 + 2 * hl + dhvlen) {
		fail1(a, RCE_INCORRECT_PAYLOAD, "Reply message truncated");
		return;
	}
	if (dhv) {
		a->skey_len = dhv;
		if (dbk_dh_derive(a->dh, m + 16 + 2 * hl, dhv, a->skey, dhv) != 0) {
			fail1(a, RCE_DHGROUP_UNUSABLE, "Reply: invalid DH public value");
			return;
		}
		if (dbk_dhchap_augment(a->hash, a->skey, a->skey_len, a->c1, chal) != 0) {
			fail1(a, RCE_FAILED, "cannot compute the augmented challenge");
			return;
		}
	} else {
		memcpy(chal, a->c1, hl);
	}
	if (dbk_dhchap_response(a->hash, a->host_key, a->host_key_len, chal, a->s1, a->tid, 0, false, a->hostnqn,
				a->subnqn, want) != 0) {
		fail1(a, RCE_FAILED, "cannot compute the expected response");
		return;
	}
	ok = CRYPTO_memcmp(want, m + 16, hl) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	if (!ok) {
		OPENSSL_cleanse(chal, sizeof(chal));
		fail1(a, RCE_FAILED, "wrong response (the host's secret does not match its dhchap_key)");
		return;
	}
	if (m[8]) {	/* cvalid: the host authenticates the controller too */
		if (!a->ctrl_key_len) {
			OPENSSL_cleanse(chal, sizeof(chal));
			fail1(a, RCE_FAILED, "the host asks for bidirectional authentication but no dhchap_ctrlr_key is set");
			return;
		}
		a->s2 = get32(m + 12);
		memcpy(a->c2, m + 16 + hl, hl);
		a->bidirectional = true;
	}
	OPENSSL_cleanse(chal, sizeof(chal));
	a->step = STEP_SUCCESS1;
}

/* Success1: 16-byte header, R2 (hl) when bidirectional. */
static size_t build_success1(struct nvmf_auth *a, uint8_t *m)
{
	m[0] = MSG_DHCHAP;
	m[1] = ID_SUCCESS1;
	put16(m + 4, a->tid);
	m[6] = (uint8_t)a->hl;
	if (a->bidirectional) {
		uint8_t chal[64];
		int rc = 0;

		if (a->skey_len)
			rc = dbk_dhchap_augment(a->hash, a->skey, a->skey_len, a->c2, chal);
		else
			memcpy(chal, a->c2, a->hl);
		if (rc == 0)
			rc = dbk_dhchap_response(a->hash, a->ctrl_key, a->ctrl_key_len, chal, a->s2, a->tid, 0, true,
						 a->hostnqn, a->subnqn, m + 16);
		OPENSSL_cleanse(chal, sizeof(chal));
		if (rc)
			return 0;
		m[8] = 1;	/* rvalid */
	}
	return 16 + a->hl;
}

static size_t build_failure1(struct nvmf_auth *a, uint8_t *m)
{
	m[0] = MSG_COMMON;
	m[1] = ID_FAILURE1;
	put16(m + 4, a->tid);
	m[6] = RC_FAILED;
	m[7] = a->rce;
	return 8;
}

static void complete(struct dbk_nvmf_request *req, int sct, int sc)
{
	nvmf_req_status(req, sct, sc);
	dbk_nvmf_request_complete(req);
}

/* After an AUTH_Send was handled: wipe the message, keep the step timer running, complete. */
static void send_done(struct dbk_nvmf_request *req, struct nvmf_auth *a, uint8_t *m, uint32_t tl)
{
	OPENSSL_cleanse(m, tl);
	free(m);
	if (a->step != STEP_DONE && a->step != STEP_FAILED)
		arm_timer(a, DBK_NVMF_AUTH_TIMEOUT_MS, true);
	complete(req, 0, 0);
}

/*
 * A Negotiate starts a transaction with the host entry's keys and the target's digests and groups as they
 * are now (nvmf_subsystem_set_keys and nvmf_set_config apply to a re-authentication too): a round trip to
 * the main reactor, which owns the host entries. The request stays outstanding meanwhile, so the queue
 * and this state live until it completes.
 */
struct refresh {
	struct dbk_nvmf_request *req;
	struct nvmf_auth *a;	/* only its immutable NQNs are read on main */
	uint8_t *m;
	uint32_t tl;
	int rc;
	char err[320];
	uint8_t host_key[64], ctrl_key[64];
	size_t host_key_len, ctrl_key_len;
	uint32_t digests, dhgroups;
};

static void refresh_done(void *arg)
{
	struct refresh *r = arg;
	struct nvmf_auth *a = r->a;

	if (a->step == STEP_FAILED) {
		/*
		 * The transaction failed while the keys were fetched (the host read its Failure1 meanwhile): nothing
		 * more is taken, and the queue still closes at the time give_up() set.
		 */
	} else if (r->rc) {
		end_transaction(a);
		a->tid = get16(r->m + 4);
		fail1(a, RCE_FAILED, r->err);
	} else {
		memcpy(a->host_key, r->host_key, sizeof(a->host_key));
		memcpy(a->ctrl_key, r->ctrl_key, sizeof(a->ctrl_key));
		a->host_key_len = r->host_key_len;
		a->ctrl_key_len = r->ctrl_key_len;
		a->digests = r->digests;
		a->dhgroups = r->dhgroups;
		on_negotiate(a, r->m, r->tl);
	}
	send_done(r->req, a, r->m, r->tl);
	OPENSSL_cleanse(r, sizeof(*r));
	free(r);
}

static void refresh_on_main(void *arg)
{
	struct refresh *r = arg;
	struct dbk_nvmf_subsystem *s = dbk_nvmf_subsystem_find(r->a->subnqn);
	struct nvmf_auth *fresh = NULL;

	if (!s) {
		r->rc = -ENOENT;
		snprintf(r->err, sizeof(r->err), "the subsystem is gone");
	} else {
		r->rc = nvmf_auth_prepare(s, r->a->hostnqn, &fresh, r->err, sizeof(r->err));
		if (r->rc == 0 && !fresh) {
			r->rc = -ENOKEY;
			snprintf(r->err, sizeof(r->err), "the host entry no longer has a DH-HMAC-CHAP key");
		}
	}
	if (fresh) {
		memcpy(r->host_key, fresh->host_key, sizeof(r->host_key));
		memcpy(r->ctrl_key, fresh->ctrl_key, sizeof(r->ctrl_key));
		r->host_key_len = fresh->host_key_len;
		r->ctrl_key_len = fresh->ctrl_key_len;
		r->digests = fresh->digests;
		r->dhgroups = fresh->dhgroups;
		wipe_free(fresh);
	}
	if (dbk_thread_send_msg(r->req->qpair->group->thread, refresh_done, r) != 0)
		DBK_ERRLOG("cannot send a message between reactors (out of memory)");
}

static void auth_send(struct dbk_nvmf_request *req, struct nvmf_auth *a, uint32_t tl)
{
	uint8_t *m;

	if (req->xfer != DBK_NVMF_XFER_HOST_TO_CTRLR || req->length != tl) {
		complete(req, NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID);
		return;
	}
	m = malloc(tl);
	if (!m) {
		complete(req, NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);
		return;
	}
	if (nvmf_req_copy_from(req, 0, m, tl) != tl) {
		free(m);
		complete(req, NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID);
		return;
	}
	if (a->step == STEP_FAILED) {
		/* nothing more is taken once a transaction has failed */
	} else if (tl < 8 || (m[0] != MSG_COMMON && m[0] != MSG_DHCHAP)) {
		fail1(a, RCE_INCORRECT_MESSAGE, "not an authentication message");
	} else if (m[0] == MSG_COMMON && m[1] == ID_NEGOTIATE) {
		/* starts, restarts or re-authenticates: with the keys of now */
		struct refresh *r = calloc(1, sizeof(*r));

		if (r) {
			r->req = req;
			r->a = a;
			r->m = m;
			r->tl = tl;
			if (dbk_thread_send_msg(dbk_reactor_thread(0), refresh_on_main, r) == 0)
				return;
			free(r);
		}
		on_negotiate(a, m, tl);	/* out of memory: with the keys taken at Connect */
	} else if (m[0] == MSG_COMMON && m[1] == ID_FAILURE2 && a->step == STEP_SUCCESS2 && get16(m + 4) == a->tid) {
		DBK_NOTICELOG("%s: host %s qid %u: the host rejected the controller's response (Failure2, reason %u/%u)",
			      a->subnqn, a->hostnqn, a->q->qid, m[6], m[7]);
		/* an AUTH_Receive from here on gets Failure1: with a reason, not the reserved explanation 0 */
		a->rce = RCE_FAILED;
		give_up(a);
	} else if (a->step == STEP_DONE && a->authenticated) {
		/* an authenticated queue takes only a new Negotiate */
		fail1(a, RCE_INCORRECT_MESSAGE, "unexpected message on an authenticated queue");
	} else if (get16(m + 4) != a->tid && a->step != STEP_NEGOTIATE) {
		fail1(a, RCE_INCORRECT_PAYLOAD, "wrong transaction identifier");
	} else if (m[0] == MSG_DHCHAP && m[1] == ID_REPLY && a->step == STEP_REPLY) {
		on_reply(a, m, tl);
	} else if (m[0] == MSG_DHCHAP && m[1] == ID_SUCCESS2 && a->step == STEP_SUCCESS2) {
		if (tl < 16)
			fail1(a, RCE_INCORRECT_PAYLOAD, "Success2 message too short");
		else
			authenticated(a);
	} else {
		fail1(a, RCE_INCORRECT_MESSAGE, "message out of sequence");
	}
	send_done(req, a, m, tl);
}

static void auth_recv(struct dbk_nvmf_request *req, struct nvmf_auth *a, uint32_t al)
{
	uint8_t m[16 + 64 + 1024];
	size_t n = 0;

	if (req->xfer != DBK_NVMF_XFER_CTRLR_TO_HOST || req->length != al) {
		complete(req, NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID);
		return;
	}
	memset(m, 0, sizeof(m));
	switch (a->step) {
	case STEP_CHALLENGE:
		if (al < 16 + a->hl + dbk_auth_dhgroup_size(a->dhgroup)) {
			complete(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);	/* too small for the message */
			return;
		}
		n = build_challenge(a, m);
		if (!n) {
			fail1(a, RCE_FAILED, "cannot build the challenge (DH or random generator failure)");
			break;
		}
		a->step = STEP_REPLY;
		break;
	case STEP_SUCCESS1:
		if (al < 16 + a->hl) {
			complete(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
			return;
		}
		n = build_success1(a, m);
		if (!n) {
			fail1(a, RCE_FAILED, "cannot compute the controller's response");
			break;
		}
		if (a->bidirectional)
			a->step = STEP_SUCCESS2;
		else
			authenticated(a);
		break;
	case STEP_FAILURE1:
		break;
	case STEP_FAILED:
		/* the Failure1 again; the queue closes at the time already set (asking again does not delay it) */
		n = build_failure1(a, m);
		break;
	default:
		fail1(a, RCE_INCORRECT_MESSAGE, "AUTH_Receive out of sequence");
		break;
	}
	if (a->step == STEP_FAILURE1) {
		memset(m, 0, sizeof(m));
		n = build_failure1(a, m);
		give_up(a);
	}
	if (al < n)
		n = al;	/* a Failure1 in a short buffer: what fits */
	nvmf_req_fill_data(req, m, n);
	OPENSSL_cleanse(m, sizeof(m));
	if (a->step != STEP_DONE && a->step != STEP_FAILED)
		arm_timer(a, DBK_NVMF_AUTH_TIMEOUT_MS, true);
	complete(req, 0, 0);
}

void nvmf_auth_exec(struct dbk_nvmf_request *req)
{
	const uint8_t *c = (const uint8_t *)req->cmd;
	struct nvmf_auth *a = req->qpair->core_auth;
	uint32_t len = get32(c + 44);	/* tl (Send) or al (Receive) */

	if (!a) {
		/* this host needs no authentication: there is no transaction to take part in */
		complete(req, NVME_SCT_GENERIC, NVME_SC_COMMAND_SEQUENCE_ERROR);
		return;
	}
	if (c[43] != SECP_DHCHAP || c[41] != 0x01 || c[42] != 0x01 || len == 0 || len > MAX_AUTH_MSG) {
		complete(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
		return;
	}
	if (c[4] == NVMF_FCTYPE_AUTHENTICATION_SEND)
		auth_send(req, a, len);
	else
		auth_recv(req, a, len);
}

void nvmf_auth_qpair_json(const struct dbk_nvmf_qpair *q, json_t *o)
{
	static const char *const names[] = {"negotiate", "challenge", "reply", "success1",
					    "success2",  "failure1",  "completed", "error"};
	const struct nvmf_auth *a = q->core_auth;
	const char *d, *g;

	if (!a)
		return;
	d = a->hash ? dbk_auth_digest_name(a->hash) : NULL;
	g = a->hash ? dbk_auth_dhgroup_name(a->dhgroup) : NULL;
	json_object_set_new(o, "auth", json_pack("{s:s, s:s, s:s}", "state", names[a->step], "digest",
						 d ? d : "unknown", "dhgroup", g ? g : "unknown"));
}
