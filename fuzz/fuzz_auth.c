/*
 * Fuzz harness: NVMe in-band authentication, DH-HMAC-CHAP (nvmf/auth.c), on
 * the target's real command path: Connect of a host that must authenticate,
 * then the host's AUTH_Send / AUTH_Receive commands (Negotiate, Reply,
 * Success2, Failure2, and any bytes at all) with hostile lengths and fields,
 * delivered the way fuzz_nvmf_cmd delivers commands: an in-process transport
 * ("FUZZ", nvmf/transport.h) that does what the TCP transport does before
 * dbk_nvmf_request_exec(), with the data split over iovecs at points drawn
 * from the input.
 *
 * The harness is also the host: it can answer the Challenge it received with
 * a correct Reply (its own DH key pair, the augmented challenge, the response
 * with the host's secret: nvmf/auth.h), ask for bidirectional authentication
 * and check the controller's response in Success1, so inputs get past the
 * challenge to the success path, re-authenticate, or break one thing on purpose.
 *
 * The target stays up across inputs: subsystem nqn.2016-06.io.spdk:auth (no
 * namespace), five allowed hosts (host 0: a DHHC-1:00 key, unidirectional;
 * 1: a 01 key and a 02 controller key; 2: a 03 key and a 00 controller key;
 * 3: no key; 4: a key removed from the keyring) and a sixth host not allowed.
 * Each input gets an admin and an I/O qpair; they are gone, with their
 * controller, and any key change is undone before the next input.
 *
 * Oracle besides the sanitizers: every completion's status is one the
 * command can have; an AUTH_Receive's data is a well-formed Challenge
 * (lengths agree with the hash and the DH group, both allowed by the target's
 * configuration and offered by the host, sequence number not 0, a DH value
 * the host can use), Success1 or Failure1 (reason code explanation 1..7), and
 * zeros after it; a controller's response in Success1 is the right one; a
 * Success1 only answers a Reply whose response is the host's (the harness's
 * own Replies, and the input's with the null DH group); once a Failure1 came,
 * nothing but Failure1 and Authentication Required (a failed transaction
 * stays failed, whatever raced it). Where the harness knows the transaction's
 * state (the commands it built, answered one at a time) it predicts what the
 * target does: which hash and group it picks, that a broken Reply fails and a
 * correct one succeeds, the reason code, and whether the queue takes other
 * commands (Authentication Required until it has authenticated).
 *
 * Input: u8 setup: bits 0-2 the host of both queues' Connect (5: not allowed; 6, 7: hosts 0, 1),
 *                  bit 3 no admin Connect (AUTH commands on an unconnected queue)
 *        u8 the hash functions the target allows (bits 1-3 = SHA-256/384/512; none of them: all)
 *        u8 the DH groups the target allows (bits 0-5 = null, ffdhe2048 ... ffdhe8192; none of them: all)
 *        records: u8 op: bits 0-3 kind, bit 4 the I/O queue (else the admin queue), bit 5 do not wait for
 *                        the completion (the next command races it; the harness stops predicting)
 *                 kinds 0-5 (AUTH commands) then u8 tweak: 1 SECP not 0xE9, 2 SPSP0 not 1, 3 SPSP1 not 1,
 *                        4 SGL length TL+1, 5 SGL length TL-1, 6 TL/AL 0, 7 TL/AL 8193; else none
 *          0 AUTH_Send, any message: u16 n, n bytes (TL = n)
 *          1 AUTH_Receive: u16 AL (0: 1104, room for any message)
 *          2 AUTH_Send Negotiate: u16 tid, u8 hash ids (bits 1-3; bit 0: also ids 0, 4 and 0xff),
 *            u8 DH group ids (bits 0-5; bit 6: also ids 6 and 0xff), u8 flags: bit 0 SC_C 1,
 *            bit 1 another protocol's descriptor first, bit 2 no DH-HMAC-CHAP descriptor, bit 3 HALEN 31,
 *            bit 4 NAPD one more than the message holds, bit 5 the ids weakest first
 *          3 AUTH_Send Reply to the queue's last Challenge, computed: u8 flags: bit 0 CVALID (bidirectional),
 *            bit 1 a wrong response, bit 2 another host's key, bit 3 a bad DH value, bit 4 a wrong tid,
 *            bit 5 a wrong HL (with S2 bit 8: a wrong DHVLEN), bit 6 CVALID 2, bit 7 one byte short; u32 S2;
 *            64 bytes C2 (HL of them)
 *          4 AUTH_Send Success2: u8 flags: bit 0 a wrong tid, bit 1 8 bytes long
 *          5 AUTH_Send Failure2: u8 rc, u8 rce, u8 flags: bit 0 a wrong tid
 *          6 a command behind the authentication gate: Property Get CAP (admin), Flush (I/O)
 *          7 enable the controller (Property Set CC.EN on the admin queue), then Connect the I/O queue
 *          8 change the host's keys (nvmf_subsystem_set_keys, keyring_file_remove_key): u8 sel: 0 its own,
 *            1 others (another controller key too), 2 its own host key only, 3 none; 4 remove its keys from
 *            the keyring (a Negotiate then fails, as does a Connect)
 *          9 Disconnect (fabrics) on the queue
 *          10-15: kind - 10
 */
#include "fuzz/common/fuzz_env.h"

#include "keyring/keyring.h"
#include "nvmf/auth.h"
#include "nvmf/nvmf_internal.h"
#include "rpc/rpc.h"
#include "thread/thread.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#define SUBNQN "nqn.2016-06.io.spdk:auth"
#define QREQS 32
#define MAX_IO (16u * 1024)
#define MAX_AUTH_MSG 8192	/* nvmf/auth.c: larger TL/AL are refused */
#define RECV_DEFAULT (16u + 64 + 1024)
#define NHOSTS 6
#define H_NOKEY 3
#define H_REMOVED 4

/* ----------------------------------------------------------------- keys */

/* One DHHC-1 secret: transformation, length; its key bytes are a pattern of (host, id). */
struct keydef {
	int hmac;
	size_t len;		/* 0: none */
};

/* Per host: [0] host key, [1] controller key, [2] the other host key, [3] the other controller key. */
static const struct keydef g_keydefs[NHOSTS][4] = {
	{{0, 32}, {0, 0}, {2, 48}, {1, 32}},
	{{1, 32}, {2, 48}, {0, 64}, {3, 64}},
	{{3, 64}, {0, 48}, {0, 48}, {0, 32}},
	{{0, 0}, {0, 0}, {0, 0}, {0, 0}},
	{{2, 48}, {0, 0}, {0, 0}, {0, 0}},
	{{0, 0}, {0, 0}, {0, 0}, {0, 0}},
};

/* Key sets of op 8: which keydefs the host entry names (-1: none). */
static const int g_sets[4][2] = {{0, 1}, {2, 3}, {0, -1}, {-1, -1}};

static char g_hostnqn[NHOSTS][80];
static char g_keypath[NHOSTS][4][96];
static char g_secret[NHOSTS][4][128];
/* transformed: host keys with the host NQN, controller keys with the subsystem NQN */
static uint8_t g_tkey[NHOSTS][4][64];
static size_t g_tkey_len[NHOSTS][4];

/* The host entries now (op 8 changes them; undone after each input). */
static int g_cur_set[NHOSTS];
static bool g_removed[NHOSTS][4];	/* taken out of the keyring */
static bool g_keys_changed;

static bool keyed_host(int h)
{
	return h <= 2;
}

static const char *key_name(int h, int id, char *buf, size_t len)
{
	snprintf(buf, len, "fuzzauth%d_%d", h, id);
	return buf;
}

/* CRC-32 (zlib's) that DHHC-1 appends to the key. */
static uint32_t crc32_le(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int b = 0; b < 8; b++)
			c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
	}
	return ~c;
}

static void make_keys(void)
{
	for (int h = 0; h < NHOSTS; h++) {
		snprintf(g_hostnqn[h], sizeof(g_hostnqn[h]),
			 "nqn.2014-08.org.nvmexpress:uuid:a0a0a0a0-0000-4000-8000-00000000000%d", h);
		for (int id = 0; id < 4; id++) {
			const struct keydef *d = &g_keydefs[h][id];
			uint8_t raw[68];
			char b64[100];
			struct dbk_dhchap_secret sec;
			char err[160];
			uint32_t crc;
			int fd;

			if (!d->len)
				continue;
			for (size_t i = 0; i < d->len; i++)
				raw[i] = (uint8_t)(h * 61 + id * 17 + i * 7 + 1);
			crc = crc32_le(raw, d->len);
			for (int i = 0; i < 4; i++)
				raw[d->len + i] = (uint8_t)(crc >> (8 * i));
			EVP_EncodeBlock((unsigned char *)b64, raw, (int)d->len + 4);
			snprintf(g_secret[h][id], sizeof(g_secret[h][id]), "DHHC-1:%02d:%s:", d->hmac, b64);
			if (dbk_dhchap_secret_parse(g_secret[h][id], &sec, err, sizeof(err)) != 0) {
				fprintf(fuzz_stderr, "fuzz_auth: own secret refused: %s\n", err);
				abort();
			}
			int n = dbk_dhchap_transform(&sec, (id & 1) ? SUBNQN : g_hostnqn[h], g_tkey[h][id]);
			if (n <= 0)
				abort();
			g_tkey_len[h][id] = (size_t)n;
			snprintf(g_keypath[h][id], sizeof(g_keypath[h][id]), "%s/key%d_%d", fuzz_tmpdir(), h, id);
			fd = open(g_keypath[h][id], O_WRONLY | O_CREAT | O_TRUNC, 0600);
			if (fd < 0 || write(fd, g_secret[h][id], strlen(g_secret[h][id])) < 0 || close(fd) != 0)
				abort();
		}
	}
}

static void add_key(int h, int id)
{
	char name[32], err[256];

	if (dbk_keyring_file_add_key(key_name(h, id, name, sizeof(name)), g_keypath[h][id], err, sizeof(err)) != 0) {
		fprintf(fuzz_stderr, "fuzz_auth: keyring_file_add_key: %s\n", err);
		abort();
	}
}

/* nvmf_subsystem_set_keys for host h: key set `set`. 0 or -errno (a key of the set is not in the keyring). */
static int set_keys(int h, int set)
{
	struct dbk_nvmf_subsystem *s = dbk_nvmf_subsystem_find(SUBNQN);
	struct dbk_nvmf_host_keys k = {0};
	char n0[32], n1[32], err[256];
	int a = g_sets[set][0], b = g_sets[set][1];

	if (a >= 0 && g_keydefs[h][a].len)
		k.dhchap_key = key_name(h, a, n0, sizeof(n0));
	if (b >= 0 && g_keydefs[h][b].len)
		k.dhchap_ctrlr_key = key_name(h, b, n1, sizeof(n1));
	return dbk_nvmf_subsystem_set_host_keys(s, g_hostnqn[h], &k, err, sizeof(err));
}

/* The keys host h's entry names now, if readable: host key id (-1: none), controller key id (-1: none). */
static void cur_keys(int h, int *hk, int *ck, bool *removed)
{
	int a = g_sets[g_cur_set[h]][0], b = g_sets[g_cur_set[h]][1];

	*hk = a >= 0 && g_keydefs[h][a].len ? a : -1;
	*ck = b >= 0 && g_keydefs[h][b].len ? b : -1;
	*removed = (*hk >= 0 && g_removed[h][*hk]) || (*ck >= 0 && g_removed[h][*ck]);
}

static void restore_keys(void)
{
	if (!g_keys_changed)
		return;
	for (int h = 0; h < NHOSTS; h++) {
		if (!keyed_host(h))
			continue;
		bool readd = false;

		for (int id = 0; id < 4; id++) {
			if (g_removed[h][id]) {
				add_key(h, id);
				g_removed[h][id] = false;
				readd = true;
			}
		}
		/* the entry still holds the removed keys: it takes the ones just added */
		if (g_cur_set[h] != 0 || readd) {
			if (set_keys(h, 0) != 0)
				abort();
			g_cur_set[h] = 0;
		}
	}
	g_keys_changed = false;
}

/* ------------------------------------------------------------ transport */

struct fq;

struct freq {
	struct dbk_nvmf_request req;
	struct nvme_cmd cmd;
	struct nvme_cpl rsp;
	struct fq *q;
	bool busy;
	int ncompl;
	uint32_t len0;
	void *bufs[4];
	int nbufs;
	/* what the harness checks when it completes */
	int kind;		/* K_* */
	int tweak;
	bool model;		/* the queue's model was valid when it was submitted */
	uint32_t al;		/* the command's TL / AL */
	uint16_t status;	/* result */
	uint32_t cdw0;
	bool done;
};

/* The harness's view of the controller's authentication step on a queue (T_UNKNOWN: not predicted). */
/* The host's response (R1) in the last Reply the controller took: a Success1 answers only a right one. */
enum { R1_NONE, R1_RIGHT, R1_WRONG, R1_UNKNOWN };

enum tstep { T_UNKNOWN, T_NEGOTIATE, T_CHALLENGE, T_REPLY, T_SUCCESS1, T_SUCCESS2, T_FAILURE1, T_DONE, T_FAILED };
enum authed { A_UNKNOWN, A_NO, A_YES };

struct fq {
	struct dbk_nvmf_qpair q;
	struct freq reqs[QREQS];
	bool added, fini;
	/* the host's side */
	uint16_t qid;
	int host;
	bool connected;		/* Connect succeeded */
	bool auth;		/* ... with AUTHREQ.ATR: the queue must authenticate */
	enum tstep step;
	enum authed authed;
	bool failed;		/* a Failure1 came: the transaction failed for good, whatever raced it */
	int r1;			/* the last Reply since the last Challenge: R1_* */
	int exp_rce;		/* reason code explanation of the Failure1 to come, 0: not predicted */
	bool tid_known;
	uint16_t tid;
	int hash, dhgroup;	/* of the transaction (0 / -1: not known) */
	int txhk, txck;		/* keys the controller took at the last Negotiate (ids, -1: none) */
	/* the last Challenge */
	bool chal;
	uint16_t ctid;
	int chash, cdh;
	size_t hl;
	uint32_t s1;
	uint8_t c1[64];
	uint8_t dhv[1024];
	/* the last correct Reply: what a controller's response must be made of */
	bool replied;
	bool cvalid;
	uint32_t s2;
	uint16_t rtid;
	int rhash;
	uint8_t c2[64];
	uint8_t skey[1024];
	size_t skey_len;
	int rck;		/* controller key id the Reply's transaction uses */
};

enum { K_SEND, K_RECV, K_NEGOTIATE, K_REPLY, K_SUCCESS2, K_FAILURE2, K_GATE, K_CONNECT, K_KEYS, K_DISCONNECT,
       K_SETUP };

static struct fq g_q[2];
static volatile bool g_flag;
static int g_rc;
static uint32_t g_digests, g_dhgroups;	/* the target's configuration for this input */
static bool g_predict;			/* off once a command raced another */
static struct fuzz_rng g_rng;

static void t_opts_init(struct dbk_nvmf_transport_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_queue_depth = 128;
	o->max_qpairs_per_ctrlr = 4;
	o->in_capsule_data_size = 8192;
	o->max_io_size = MAX_IO;
	o->io_unit_size = MAX_IO;
	o->max_aq_depth = 32;
	o->num_shared_buffers = 63;
	o->buf_cache_size = 8;
	o->c2h_success = true;
	o->abort_timeout_sec = 1;
}

static int t_pg_add(struct dbk_nvmf_transport_poll_group *g, struct dbk_nvmf_qpair *q)
{
	(void)g;
	((struct fq *)q)->added = true;
	return 0;
}

static void check_completion(struct freq *r);

static void t_req_complete(struct dbk_nvmf_request *req)
{
	struct freq *r = (struct freq *)req;

	if (!r->busy || ++r->ncompl != 1) {
		fprintf(fuzz_stderr, "fuzz_auth: request (fctype/opc 0x%02x) completed %d times\n", r->cmd.opc,
			r->ncompl);
		abort();
	}
	r->status = nvme_cpl_status(req->rsp) & 0x7ff;	/* SCT and SC */
	r->cdw0 = req->rsp->cdw0;
	if (nvme_cpl_status(req->rsp) == 0 && req->xfer == DBK_NVMF_XFER_CTRLR_TO_HOST && req->length > r->len0) {
		fprintf(fuzz_stderr, "fuzz_auth: C2H length %u > the %u bytes asked for\n", req->length, r->len0);
		abort();
	}
	check_completion(r);
	for (int i = 0; i < r->nbufs; i++)
		free(r->bufs[i]);
	r->nbufs = 0;
	r->done = true;
	r->busy = false;
}

static void t_qpair_fini(struct dbk_nvmf_qpair *q)
{
	struct fq *f = (struct fq *)q;

	for (int i = 0; i < QREQS; i++) {
		if (f->reqs[i].busy) {
			fprintf(fuzz_stderr, "fuzz_auth: qpair_fini with a request still held\n");
			abort();
		}
	}
	f->fini = true;
}

static int t_addr(struct dbk_nvmf_qpair *q, struct dbk_nvmf_listen_addr *a)
{
	(void)q;
	memset(a, 0, sizeof(*a));
	snprintf(a->trtype, sizeof(a->trtype), "FUZZ");
	snprintf(a->adrfam, sizeof(a->adrfam), "IPv4");
	snprintf(a->traddr, sizeof(a->traddr), "127.0.0.1");
	snprintf(a->trsvcid, sizeof(a->trsvcid), "4420");
	return 0;
}

static const struct dbk_nvmf_transport_ops g_ops = {
	.name = "FUZZ",
	.opts_init = t_opts_init,
	.create = fuzz_transport_create,
	.destroy = fuzz_transport_destroy,
	.listen = fuzz_transport_listen,
	.stop_listen = fuzz_transport_stop_listen,
	.poll_group_create = fuzz_transport_pg_create,
	.poll_group_destroy = fuzz_transport_pg_destroy,
	.poll_group_add = t_pg_add,
	.req_complete = t_req_complete,
	.qpair_fini = t_qpair_fini,
	.qpair_get_peer_addr = t_addr,
	.qpair_get_local_addr = t_addr,
};

/* ---------------------------------------------------------------- setup */

static void done_cb(void *ctx, int rc, const char *err)
{
	(void)ctx;
	(void)err;
	g_rc = rc;
	g_flag = true;
}

static void setup_target(void)
{
	struct dbk_nvmf_transport_opts o;
	struct dbk_nvmf_subsystem_opts so = {0};
	struct dbk_nvmf_listen_addr a;
	struct dbk_nvmf_subsystem *s;
	char err[256];

	fuzz_core_up();
	make_keys();
	for (int h = 0; h < NHOSTS; h++)
		for (int id = 0; id < 4; id++)
			if (g_keydefs[h][id].len)
				add_key(h, id);
	t_opts_init(&o);
	g_flag = false;
	dbk_nvmf_tgt_create_transport("FUZZ", &o, done_cb, NULL);
	fuzz_poll_until(&g_flag, "create_transport");
	if (g_rc)
		abort();
	so.serial_number = "FUZZAUTH0001";
	so.model_number = "daosblk fuzz auth";
	if (dbk_nvmf_subsystem_create(SUBNQN, &so, &s, err, sizeof(err)) != 0)
		abort();
	for (int h = 0; h < NHOSTS - 1; h++) {
		struct dbk_nvmf_host_keys k = {0};
		char n0[32], n1[32];

		if (g_keydefs[h][0].len)
			k.dhchap_key = key_name(h, 0, n0, sizeof(n0));
		if (g_keydefs[h][1].len)
			k.dhchap_ctrlr_key = key_name(h, 1, n1, sizeof(n1));
		if (dbk_nvmf_subsystem_add_host_ext(s, g_hostnqn[h], &k, err, sizeof(err)) != 0) {
			fprintf(fuzz_stderr, "fuzz_auth: add_host: %s\n", err);
			abort();
		}
	}
	/* host 4's key is gone from the keyring; its entry still holds it, unreadable */
	{
		char name[32];

		if (dbk_keyring_file_remove_key(key_name(H_REMOVED, 0, name, sizeof(name)), err, sizeof(err)) != 0)
			abort();
		g_removed[H_REMOVED][0] = true;
	}
	t_addr(NULL, &a);
	if (dbk_nvmf_subsystem_add_listener(s, &a, err, sizeof(err)) != 0)
		abort();
	fuzz_poll_idle();
}

static void new_qpairs(int host)
{
	memset(g_q, 0, sizeof(g_q));
	for (int i = 0; i < 2; i++) {
		for (int k = 0; k < QREQS; k++)
			g_q[i].reqs[k].q = &g_q[i];
		g_q[i].q.transport = dbk_nvmf_tgt_find_transport("FUZZ");
		g_q[i].qid = (uint16_t)i;
		g_q[i].host = host;
		g_q[i].step = T_UNKNOWN;
		g_q[i].authed = A_UNKNOWN;
		g_q[i].dhgroup = -1;
		g_q[i].txhk = g_q[i].txck = -1;
		dbk_nvmf_tgt_new_qpair(&g_q[i].q);
	}
	fuzz_poll_idle();
	if (!g_q[0].added || !g_q[1].added)
		abort();
}

/* ------------------------------------------------------------- commands */

FUZZ_NO_COVERAGE static struct freq *free_slot(struct fq *f, uint16_t *cid)
{
	static uint16_t next_cid;

	for (int i = 0; i < QREQS; i++) {
		if (!f->reqs[i].busy) {
			*cid = ++next_cid;
			return &f->reqs[i];
		}
	}
	return NULL;
}

/* Lay len bytes out in up to 4 iovecs (each its own heap block), split where the input's PRNG says. */
static void attach_bufs(struct freq *r, uint32_t len)
{
	uint32_t off = 0;
	int n = 0;
	uint32_t v = fuzz_rng_next(&g_rng);

	while (off < len) {
		uint32_t chunk = len - off;

		if (n < 3 && (v & 3) != 0)
			chunk = 1 + fuzz_rng_next(&g_rng) % chunk;
		r->bufs[n] = malloc(chunk);
		if (!r->bufs[n])
			abort();
		r->req.iov[n].iov_base = r->bufs[n];
		r->req.iov[n].iov_len = chunk;
		n++;
		r->nbufs = n;
		off += chunk;
	}
	r->req.iovcnt = n;
}

static bool queue_usable(struct fq *f)
{
	return !f->fini && dbk_nvmf_qpair_is_active(&f->q);
}

/* Hand one command to the core as the TCP transport would (direction from the opcode, length from SGL1). */
static struct freq *submit(struct fq *f, struct nvme_cmd *cmd, const uint8_t *data, size_t dlen, int kind)
{
	struct freq *r;
	unsigned dir;
	uint32_t len = cmd->sgl1.length;
	uint16_t cid;

	if (!queue_usable(f))
		return NULL;
	r = free_slot(f, &cid);
	if (!r) {
		fuzz_poll_idle();
		r = free_slot(f, &cid);
		if (!r)
			return NULL;
	}
	if (cmd->opc == NVME_OPC_FABRIC)
		dir = ((const struct nvmf_fabric_cmd *)(const void *)cmd)->fctype & 3;
	else
		dir = cmd->opc & 3;
	if ((dir == 3 && len) || len > MAX_IO)
		return NULL;	/* TCP: not passed on */
	cmd->cid = cid;
	cmd->psdt = 2;
	memset(&r->req, 0, sizeof(r->req));
	r->cmd = *cmd;
	memset(&r->rsp, 0, sizeof(r->rsp));
	r->rsp.cid = cid;
	r->rsp.sqid = f->qid;
	r->req.qpair = &f->q;
	r->req.cmd = &r->cmd;
	r->req.rsp = &r->rsp;
	r->ncompl = 0;
	r->nbufs = 0;
	r->kind = kind;
	r->tweak = 0;
	r->done = false;
	r->model = false;
	if (dir == 0 || dir == 3 || len == 0) {
		r->req.xfer = DBK_NVMF_XFER_NONE;
		len = 0;
	} else {
		r->req.xfer = dir == 1 ? DBK_NVMF_XFER_HOST_TO_CTRLR : DBK_NVMF_XFER_CTRLR_TO_HOST;
	}
	r->req.length = len;
	r->len0 = len;
	r->busy = true;
	if (len)
		attach_bufs(r, len);
	if (len && dir == 1) {
		size_t off = 0;

		for (int i = 0; i < r->req.iovcnt; i++) {
			size_t n = r->req.iov[i].iov_len;
			size_t k = off < dlen ? (dlen - off < n ? dlen - off : n) : 0;

			memcpy(r->req.iov[i].iov_base, data + off, k);
			memset((uint8_t *)r->req.iov[i].iov_base + k, 0, n - k);
			off += n;
		}
	}
	return r;
}

static void exec(struct freq *r)
{
	dbk_nvmf_request_exec(&r->req);
}

/* Wait for r (the harness's own commands, and any command not raced). */
static void wait_req(struct freq *r)
{
	uint64_t deadline = dbk_get_ns() + 30ull * 1000 * 1000 * 1000;

	while (!r->done) {
		fuzz_poll_skip();
		if (dbk_get_ns() > deadline) {
			fprintf(fuzz_stderr, "fuzz_auth: a command did not complete within 30 s (hang)\n");
			abort();
		}
	}
	fuzz_poll_idle();
}

static void bad(const struct fq *f, const char *what)
{
	fprintf(fuzz_stderr, "fuzz_auth: qid %u (host %d): %s\n", f->qid, f->host, what);
	abort();
}

static bool st_is(uint16_t st, int sct, int sc)
{
	return st == NVME_STATUS(sct, sc);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* ------------------------------------------------------------ the model */

static void model_off(struct fq *f)
{
	f->step = T_UNKNOWN;
	f->authed = A_UNKNOWN;
	f->exp_rce = 0;
	f->tid_known = false;
}

/* A message the controller takes makes its transaction fail (fail1 in nvmf/auth.c). */
static void predict_fail(struct fq *f, int rce)
{
	if (f->step == T_FAILED)
		return;	/* nothing more is taken */
	if (f->step == T_UNKNOWN) {
		/* failed either way (or failed already, and nothing taken): not authenticated */
		f->authed = A_NO;
		f->exp_rce = 0;
		return;
	}
	f->step = T_FAILURE1;
	f->authed = A_NO;
	f->exp_rce = rce;
}

static int best(uint32_t mask, int lo, int hi)
{
	for (int i = hi; i >= lo; i--)
		if (mask & (1u << i))
			return i;
	return -1;
}

/* The harness has no model for what an AUTH_Send it did not build does. */
static void predict_raw(struct fq *f, const uint8_t *m, size_t tl)
{
	if (tl < 8 || (m[0] != 0x00 && m[0] != 0x01)) {
		predict_fail(f, 0x07);
		return;
	}
	if (f->step == T_FAILED)
		return;
	model_off(f);
}

/* ------------------------------------------------------ checking answers */

static size_t dh_size(int g)
{
	return dbk_auth_dhgroup_size(g);
}

/*
 * The answer of an AUTH_Receive. model: the harness predicted the controller's step (f->step) and checks the
 * answer against it; sync (no command raced another so far): the answer tells the step from here on. The
 * controller's response in Success1 is checked whenever the harness sent the Reply it answers (f->replied).
 */
static void check_failure1(struct fq *f, const uint8_t *m, size_t n, bool model, bool sync)
{
	static const uint8_t head[4] = {0x00, 0xF1, 0x00, 0x00};

	for (size_t i = 0; i < n && i < 4; i++)
		if (m[i] != head[i])
			bad(f, "AUTH_Receive data is not a Challenge, Success1 or Failure1");
	if (n >= 6 && model && f->tid_known && get16(m + 4) != f->tid)
		bad(f, "Failure1 with another transaction's identifier");
	if (n >= 7 && m[6] != 0x01)
		bad(f, "Failure1 reason code is not 'authentication failure' (1)");
	if (n >= 8 && (m[7] < 0x01 || m[7] > 0x07))
		bad(f, "Failure1 reason code explanation is not one of 1..7");
	if (n >= 8 && model && f->exp_rce && m[7] != f->exp_rce) {
		fprintf(fuzz_stderr, "fuzz_auth: Failure1 explanation %u, expected %d\n", m[7], f->exp_rce);
		bad(f, "Failure1 with another reason than predicted");
	}
	for (size_t i = 8; i < n; i++)
		if (m[i])
			bad(f, "bytes after Failure1");
	f->failed = true;
	/* the transaction has failed: the queue is closed soon, and takes nothing more */
	f->step = sync ? T_FAILED : T_UNKNOWN;
	f->authed = A_NO;
	if (sync && n >= 6) {
		f->tid = get16(m + 4);
		f->tid_known = true;
	}
	f->chal = false;
	f->replied = false;
}

/* A Challenge: check it, and keep what a Reply is computed from. */
static void check_challenge(struct fq *f, const uint8_t *m, size_t n, bool model, bool sync)
{
	int hash = m[8], dh = m[9];
	size_t hl = dbk_auth_hash_len(hash), dhv = get16(m + 10);

	if (f->failed)
		bad(f, "a Challenge after Failure1: a failed transaction went on");
	if (m[2] || m[3] || m[7])
		bad(f, "Challenge with reserved bytes set");
	if (!hl || m[6] != hl)
		bad(f, "Challenge: HL does not match its hash function");
	if (!(g_digests & (1u << hash)))
		bad(f, "Challenge with a hash function the target does not allow");
	if (dh > 5 || !(g_dhgroups & (1u << dh)))
		bad(f, "Challenge with a DH group the target does not allow");
	if (dhv != dh_size(dh))
		bad(f, "Challenge: DHVLEN does not match its DH group");
	if (16 + hl + dhv > n)
		bad(f, "Challenge longer than AL");
	if (get32(m + 12) == 0)
		bad(f, "Challenge with sequence number 0");
	for (size_t i = 16 + hl + dhv; i < n; i++)
		if (m[i])
			bad(f, "bytes after the Challenge");
	if (model) {
		if (f->tid_known && get16(m + 4) != f->tid)
			bad(f, "Challenge with another transaction's identifier");
		if (hash != f->hash || dh != f->dhgroup) {
			fprintf(fuzz_stderr, "fuzz_auth: Challenge hash %d group %d, predicted %d %d\n", hash, dh,
				f->hash, f->dhgroup);
			bad(f, "Challenge with another hash or DH group than the strongest offered and allowed");
		}
	}
	f->chal = true;
	f->replied = false;
	f->r1 = R1_NONE;
	f->ctid = get16(m + 4);
	f->chash = hash;
	f->cdh = dh;
	f->hl = hl;
	f->s1 = get32(m + 12);
	memcpy(f->c1, m + 16, hl);
	memcpy(f->dhv, m + 16 + hl, dhv);
	f->step = sync ? T_REPLY : T_UNKNOWN;
	if (sync) {
		f->tid = f->ctid;
		f->tid_known = true;
		f->hash = hash;
		f->dhgroup = dh;
		f->exp_rce = 0;
	}
}

static void check_success1(struct fq *f, const uint8_t *m, size_t n, bool model, bool sync)
{
	if (f->failed)
		bad(f, "Success1 after Failure1: a failed transaction went on");
	if (f->r1 == R1_NONE || f->r1 == R1_WRONG)
		bad(f, f->r1 == R1_NONE ? "Success1 without a Reply to the Challenge"
				       : "Success1 to a Reply whose response is not the host's");
	if (m[2] || m[3] || m[7] || m[9] || m[10] || m[11] || m[12] || m[13] || m[14] || m[15])
		bad(f, "Success1 with reserved bytes set");
	if (m[6] != 32 && m[6] != 48 && m[6] != 64)
		bad(f, "Success1: HL is not a hash length");
	if (m[8] > 1)
		bad(f, "Success1: RVALID not 0 or 1");
	if (16 + (size_t)m[6] > n)
		bad(f, "Success1 longer than AL");
	for (size_t i = 16 + m[6]; i < n; i++)
		if (m[i])
			bad(f, "bytes after Success1");
	if (model && !f->replied)
		bad(f, "Success1 predicted without a Reply");
	if (f->replied) {
		/* it answers the Reply the harness sent: the controller's response must be the right one */
		size_t hl = dbk_auth_hash_len(f->rhash);
		uint8_t chal[64], want[64];

		if (get16(m + 4) != f->rtid || m[6] != hl)
			bad(f, "Success1 of another transaction (tid or HL)");
		if (m[8] != f->cvalid)
			bad(f, f->cvalid ? "Success1 without the controller's response the host asked for"
					 : "Success1 with a controller's response the host did not ask for");
		if (f->cvalid) {
			if (f->rck < 0)
				bad(f, "bidirectional Success1 without a controller key");
			if (f->skey_len) {
				if (dbk_dhchap_augment(f->rhash, f->skey, f->skey_len, f->c2, chal) != 0)
					abort();
			} else {
				memcpy(chal, f->c2, hl);
			}
			if (dbk_dhchap_response(f->rhash, g_tkey[f->host][f->rck], g_tkey_len[f->host][f->rck], chal,
						f->s2, f->rtid, 0, true, g_hostnqn[f->host], SUBNQN, want) != 0)
				abort();
			if (memcmp(want, m + 16, hl) != 0)
				bad(f, "Success1: the controller's response R2 is wrong");
		} else {
			for (size_t i = 16; i < 16 + hl; i++)
				if (m[i])
					bad(f, "Success1 without RVALID but with a response");
		}
	}
	f->chal = false;
	if (!sync) {
		f->step = T_UNKNOWN;
		f->authed = m[8] ? A_UNKNOWN : A_YES;
		f->replied = false;
		return;
	}
	f->tid = get16(m + 4);
	f->tid_known = true;
	if (m[8]) {
		/* the host checks R2 and answers Success2 or Failure2; authenticated already if re-authenticating */
		f->step = T_SUCCESS2;
		if (!model)
			f->authed = A_UNKNOWN;
	} else {
		f->step = T_DONE;
		f->authed = A_YES;	/* Success1 without RVALID: the controller is done */
		f->replied = false;
	}
}

static void check_recv(struct freq *r, struct fq *f)
{
	uint8_t m[MAX_IO];
	size_t n = r->len0, got = 0;
	bool model = r->model, sync = g_predict;
	enum tstep st = f->step;

	for (int i = 0; i < r->req.iovcnt && got < n; i++) {
		size_t k = r->req.iov[i].iov_len < n - got ? r->req.iov[i].iov_len : n - got;

		memcpy(m + got, r->req.iov[i].iov_base, k);
		got += k;
	}
	if (got != n)
		bad(f, "AUTH_Receive data not all in the buffers");
	if (fuzz_verbose && n >= 16 && m[0] == 0x01 && m[1] == 0x01)
		fprintf(fuzz_stderr, "fuzz_auth: qid %u: Challenge tid %u hash %u DH group %u\n", f->qid, get16(m + 4),
			m[8], m[9]);
	else if (fuzz_verbose && n >= 16 && m[0] == 0x01 && m[1] == 0x03)
		fprintf(fuzz_stderr, "fuzz_auth: qid %u: Success1 tid %u rvalid %u\n", f->qid, get16(m + 4), m[8]);
	else if (fuzz_verbose && n >= 8)
		fprintf(fuzz_stderr, "fuzz_auth: qid %u: Failure1 tid %u rc %u rce %u\n", f->qid, get16(m + 4), m[6],
			m[7]);
	if (n >= 16 && m[0] == 0x01 && m[1] == 0x01) {
		if (model && st != T_CHALLENGE)
			bad(f, "a Challenge where the harness predicted none");
		check_challenge(f, m, n, model, sync);
	} else if (n >= 16 && m[0] == 0x01 && m[1] == 0x03) {
		if (model && st != T_SUCCESS1)
			bad(f, "Success1 where the harness predicted none");
		check_success1(f, m, n, model, sync);
	} else {
		if (model && (st == T_CHALLENGE || st == T_SUCCESS1))
			bad(f, "no Challenge or Success1 where the harness predicted one");
		if (model && st != T_FAILURE1 && st != T_FAILED)
			f->exp_rce = 0x07;	/* AUTH_Receive out of sequence */
		check_failure1(f, m, n, model, sync);
	}
}

/* Status the command may have, and what it tells the model. */
static void check_completion(struct freq *r)
{
	struct fq *f = r->q;
	uint16_t st = r->status;
	bool authcmd = r->kind <= K_FAILURE2;

	if (fuzz_verbose)
		fprintf(fuzz_stderr, "fuzz_auth: qid %u kind %d tweak %d: status 0x%03x cdw0 0x%x\n", f->qid, r->kind,
			r->tweak, st, r->cdw0);
	if (st_is(st, NVME_SCT_GENERIC, NVME_SC_ABORTED_SQ_DELETION))
		return;	/* the queue was going away */
	if (authcmd) {
		if (!f->connected) {
			if (!st_is(st, NVME_SCT_GENERIC, NVME_SC_COMMAND_SEQUENCE_ERROR))
				bad(f, "an AUTH command before Connect did not get Command Sequence Error");
			return;
		}
		if (!f->auth) {
			if (!st_is(st, NVME_SCT_GENERIC, NVME_SC_COMMAND_SEQUENCE_ERROR))
				bad(f, "an AUTH command of a host without a key did not get Command Sequence Error");
			return;
		}
		/* the fields first (nvmf_auth_exec), then the SGL length against TL / AL (auth_send / auth_recv) */
		if ((r->tweak >= 1 && r->tweak <= 3) || r->al == 0 || r->al > MAX_AUTH_MSG) {
			if (!st_is(st, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD))
				bad(f, "an AUTH command with a bad SECP, SPSP or TL/AL did not get Invalid Field");
			return;
		}
		if (r->tweak == 4 || r->tweak == 5) {
			if (!st_is(st, NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID))
				bad(f, "an AUTH command whose SGL length is not TL/AL did not get SGL Length Invalid");
			return;
		}
		if (r->kind != K_RECV) {
			if (st != 0)
				bad(f, "an AUTH_Send failed");
			return;
		}
		if (st_is(st, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD)) {
			/* AL too small for the Challenge or Success1 (nothing changes) */
			if (r->model && f->step != T_CHALLENGE && f->step != T_SUCCESS1)
				bad(f, "AUTH_Receive refused (Invalid Field) where no Challenge or Success1 is due");
			if (r->model && f->step == T_CHALLENGE && r->al >= 16 + dbk_auth_hash_len(f->hash) +
									 dh_size(f->dhgroup))
				bad(f, "AUTH_Receive refused (Invalid Field) with room for the Challenge");
			if (r->model && f->step == T_SUCCESS1 && r->al >= 16 + 64)
				bad(f, "AUTH_Receive refused (Invalid Field) with room for Success1");
			return;
		}
		if (st != 0)
			bad(f, "AUTH_Receive status is neither success nor Invalid Field");
		check_recv(r, f);
		return;
	}
	if (r->kind == K_DISCONNECT && f->connected && st != 0)
		bad(f, "Disconnect failed (it needs no authentication)");
	if (r->kind == K_GATE) {
		bool denied = st_is(st, NVME_SCT_COMMAND_SPECIFIC, DBK_NVME_SC_AUTH_REQUIRED);

		if (!f->connected) {
			if (!st_is(st, NVME_SCT_GENERIC, NVME_SC_COMMAND_SEQUENCE_ERROR))
				bad(f, "a command before Connect did not get Command Sequence Error");
			return;
		}
		if (!f->auth || f->authed == A_YES) {
			if (denied)
				bad(f, "Authentication Required on a queue that needs none or has authenticated");
			if (f->qid == 0 && st != 0)
				bad(f, "a Property Get/Set failed on an authenticated admin queue");
		} else if ((f->authed == A_NO || f->failed) && !denied) {
			bad(f, "a command on a queue that has not authenticated did not get Authentication Required");
		}
	}
}

/* ------------------------------------------------------------ AUTH commands */

/* An AUTH_Send (0x05) or AUTH_Receive (0x06) capsule; len = TL / AL; the tweak breaks one field. */
static void auth_cmd(struct nvme_cmd *cmd, bool send, uint32_t len, int tweak, uint32_t *sgl_len)
{
	uint8_t *c = (uint8_t *)cmd;

	memset(cmd, 0, sizeof(*cmd));
	cmd->opc = NVME_OPC_FABRIC;
	c[4] = send ? NVMF_FCTYPE_AUTHENTICATION_SEND : NVMF_FCTYPE_AUTHENTICATION_RECV;
	cmd->sgl1.type = NVME_SGL_TYPE_DATA_BLOCK;
	cmd->sgl1.subtype = NVME_SGL_SUBTYPE_OFFSET;
	c[41] = 0x01;	/* SPSP0 */
	c[42] = 0x01;	/* SPSP1 */
	c[43] = 0xE9;	/* SECP: NVMe in-band authentication */
	*sgl_len = len;
	switch (tweak) {
	case 1:
		c[43] = 0xEA;
		break;
	case 2:
		c[41] = 0x02;
		break;
	case 3:
		c[42] = 0x00;
		break;
	case 4:
		*sgl_len = len + 1;
		break;
	case 5:
		*sgl_len = len - 1;
		break;
	case 6:
		len = 0;
		break;
	case 7:
		len = *sgl_len = MAX_AUTH_MSG + 1;
		break;
	default:
		break;
	}
	put32(c + 44, len);
	cmd->sgl1.length = *sgl_len;
}

/* Send message m (tl bytes) with the tweak; kind is what the harness built it as. */
static struct freq *auth_send(struct fq *f, const uint8_t *m, size_t tl, int tweak, int kind)
{
	struct nvme_cmd cmd;
	uint32_t sl;
	struct freq *r;

	if (tl == 0 && (tweak == 0 || tweak == 4 || tweak == 5))
		tweak = 6;	/* TL 0: refused as a field before the SGL length is looked at */
	auth_cmd(&cmd, true, (uint32_t)tl, tweak, &sl);
	r = submit(f, &cmd, m, tl, kind);
	if (r) {
		r->tweak = tweak;
		r->al = get32((uint8_t *)&cmd + 44);
	}
	return r;
}

/* Does an AUTH command with this tweak reach the protocol (nvmf/auth.c's auth_send / auth_recv)? */
static bool reaches_protocol(const struct fq *f, int tweak)
{
	return f->connected && f->auth && (tweak == 0 || tweak > 7);
}

/* Negotiate: 8-byte header + descriptors of 64 bytes (AUTH ID, rsvd, HALEN, DHLEN, 30 hash ids, 30 DH ids). */
static size_t build_negotiate(uint8_t *m, uint16_t tid, uint8_t hmask, uint8_t gmask, uint8_t flags,
			      uint32_t *offered_h, uint32_t *offered_g)
{
	uint8_t *d;
	uint8_t hid[8], gid[10];
	int nh = 0, ng = 0;
	int napd = 1;

	memset(m, 0, 8 + 128);
	m[0] = 0x00;
	m[1] = 0x00;
	put16(m + 4, tid);
	m[6] = (flags & 1) ? 1 : 0;	/* SC_C */
	d = m + 8;
	if (flags & 2) {
		/* a descriptor of another authentication protocol first */
		d[0] = 0x02;
		d[2] = 1;
		d[4] = 1;
		d += 64;
		napd = 2;
	}
	*offered_h = *offered_g = 0;
	for (int i = 1; i <= 3; i++)
		if (hmask & (1u << i)) {
			hid[nh++] = (uint8_t)i;
			*offered_h |= 1u << i;
		}
	if (hmask & 1) {
		hid[nh++] = 0;
		hid[nh++] = 4;
		hid[nh++] = 0xff;
	}
	for (int i = 0; i <= 5; i++)
		if (gmask & (1u << i)) {
			gid[ng++] = (uint8_t)i;
			*offered_g |= 1u << i;
		}
	if (gmask & 0x40) {
		gid[ng++] = 6;
		gid[ng++] = 0xff;
	}
	d[0] = (flags & 4) ? 0x03 : 0x01;	/* AUTH ID: DH-HMAC-CHAP */
	d[2] = (uint8_t)nh;
	d[3] = (uint8_t)ng;
	for (int i = 0; i < nh; i++)
		d[4 + i] = (flags & 0x20) ? hid[i] : hid[nh - 1 - i];
	for (int i = 0; i < ng; i++)
		d[34 + i] = (flags & 0x20) ? gid[i] : gid[ng - 1 - i];
	if (flags & 8)
		d[2] = 31;
	m[7] = (uint8_t)(napd + ((flags & 0x10) ? 1 : 0));
	return 8 + 64 * (size_t)napd;
}

static void op_negotiate(struct fq *f, struct fuzz_in *in, int tweak, bool race)
{
	uint8_t m[8 + 128];
	uint16_t tid = fin_u16(in);
	uint8_t hmask = fin_u8(in), gmask = fin_u8(in), flags = fin_u8(in);
	uint32_t oh, og;
	size_t tl = build_negotiate(m, tid, hmask, gmask, flags, &oh, &og);
	bool model = g_predict && f->step != T_UNKNOWN && reaches_protocol(f, tweak);
	int hk, ck;
	bool removed;

	cur_keys(f->host, &hk, &ck, &removed);
	struct freq *r = auth_send(f, m, tl, tweak, K_NEGOTIATE);
	if (!r)
		return;
	if (reaches_protocol(f, tweak)) {
		if (f->step != T_FAILED) {
			f->txhk = hk;
			f->txck = ck;
		}
		if (!model) {
			if (f->step != T_FAILED)
				model_off(f);
		} else if (f->step != T_FAILED) {
			int h = best(oh & g_digests, 1, 3), g = best(og & g_dhgroups, 0, 5);

			f->tid = tid;
			f->tid_known = true;
			f->chal = false;
			f->replied = false;
			f->hash = 0;
			f->dhgroup = -1;
			if (removed || hk < 0)
				predict_fail(f, 0x01);	/* the keys of now cannot be had */
			else if (flags & 0x10)
				predict_fail(f, 0x06);
			else if (flags & 1)
				predict_fail(f, 0x03);
			else if (flags & 4)
				predict_fail(f, 0x02);
			else if (flags & 8)
				predict_fail(f, 0x06);
			else if (h < 0)
				predict_fail(f, 0x04);
			else if (g < 0)
				predict_fail(f, 0x05);
			else {
				f->step = T_CHALLENGE;
				f->hash = h;
				f->dhgroup = g;
				f->exp_rce = 0;
			}
		}
	}
	r->model = false;
	exec(r);
	if (!race)
		wait_req(r);
}

/*
 * Whether the harness knows the key the controller checks a response with: the one the host entry named at the
 * last Negotiate (f->txhk); unsure once keys changed while a Negotiate may have been under way.
 */
static bool r1_known(void)
{
	return g_predict || !g_keys_changed;
}

/* A Reply of the input's own: is its response the host's, for the last Challenge? (null DH group only) */
static int raw_r1(const struct fq *f, const uint8_t *m, size_t n)
{
	uint8_t want[64];
	size_t hl = f->hl;

	if (!r1_known() || !f->chal || f->cdh != 0 || !keyed_host(f->host) || f->txhk < 0)
		return R1_UNKNOWN;
	if (m[6] != hl || n < 16 + 2 * hl || get16(m + 4) != f->ctid)
		return R1_WRONG;	/* refused before the response is looked at */
	if (dbk_dhchap_response(f->chash, g_tkey[f->host][f->txhk], g_tkey_len[f->host][f->txhk], f->c1, f->s1,
				f->ctid, 0, false, g_hostnqn[f->host], SUBNQN, want) != 0)
		abort();
	return memcmp(want, m + 16, hl) == 0 ? R1_RIGHT : R1_WRONG;
}

static void store_reply(struct fq *f, bool cvalid, uint32_t s2, uint16_t tid, int hash, const uint8_t *c2,
			const uint8_t *skey, size_t skey_len)
{
	f->replied = true;
	f->cvalid = cvalid;
	f->s2 = s2;
	f->rtid = tid;
	f->rhash = hash;
	f->rck = f->txck;
	memcpy(f->c2, c2, dbk_auth_hash_len(hash));
	memcpy(f->skey, skey, skey_len);
	f->skey_len = skey_len;
}

/* Reply: 16-byte header, R1 (HL), C2 (HL), the host's DH value. */
static void op_reply(struct fq *f, struct fuzz_in *in, int tweak, bool race)
{
	uint8_t flags = fin_u8(in);
	uint32_t s2 = fin_u32(in);
	uint8_t c2[64];
	uint8_t m[16 + 128 + 1024];
	uint8_t chal[64], skey[1024];
	size_t skey_len = 0;
	bool model = g_predict && f->step != T_UNKNOWN && reaches_protocol(f, tweak);
	int hash = f->chal ? f->chash : 1, dh = f->chal ? f->cdh : 0;
	size_t hl = dbk_auth_hash_len(hash), dhv = dh_size(dh), tl = 16 + 2 * hl + dhv;
	uint16_t tid = f->chal ? f->ctid : f->tid;
	int hk = f->txhk >= 0 ? f->txhk : 0;
	bool cvalid = flags & 1;
	struct freq *r;

	fin_bytes(in, c2, sizeof(c2));
	memset(m, 0, sizeof(m));
	memset(chal, 0, sizeof(chal));
	m[0] = 0x01;
	m[1] = 0x02;
	put16(m + 4, (flags & 0x10) ? (uint16_t)(tid ^ 1) : tid);
	/* bit 5: a wrong HL, or (S2 bit 8) a wrong DHVLEN */
	m[6] = (flags & 0x20) && !(s2 & 0x100) ? (uint8_t)(hl ^ 0x40) : (uint8_t)hl;
	m[8] = (flags & 0x40) ? 2 : cvalid;
	put16(m + 10, (flags & 0x20) && (s2 & 0x100) ? (uint16_t)(dhv + 4) : (uint16_t)dhv);
	put32(m + 12, s2);
	memcpy(m + 16 + hl, c2, hl);
	if (f->chal && dhv) {
		struct dbk_dh *d = dbk_dh_new(dh);

		if (!d || dbk_dh_public(d, m + 16 + 2 * hl, dhv) != 0)
			abort();
		if (dbk_dh_derive(d, f->dhv, dhv, skey, dhv) != 0)
			bad(f, "the Challenge's DH value is not one the host can use");
		dbk_dh_free(d);
		skey_len = dhv;
		if (dbk_dhchap_augment(hash, skey, skey_len, f->c1, chal) != 0)
			abort();
		if (flags & 8) {
			/* a public value that is no use: 0, 1, p - 1 (all ones is > p), or whatever the input says */
			uint8_t *y = m + 16 + 2 * hl;

			switch (s2 & 3) {
			case 0:
				memset(y, 0, dhv);
				break;
			case 1:
				memset(y, 0, dhv);
				y[dhv - 1] = 1;
				break;
			case 2:
				memset(y, 0xff, dhv);
				break;
			default:
				y[dhv / 2] ^= 0x5a;
				break;
			}
		}
	} else if (f->chal) {
		memcpy(chal, f->c1, hl);
	}
	{
		const uint8_t *key = g_tkey[f->host][hk];
		size_t klen = g_tkey_len[f->host][hk];
		uint8_t other[64];

		if (!keyed_host(f->host) || !klen) {
			key = g_tkey[0][0];
			klen = g_tkey_len[0][0];
		}
		if (flags & 4) {
			memcpy(other, key, klen);
			other[klen - 1] ^= 0x80;	/* another secret of the same length */
			key = other;
		}
		if (dbk_dhchap_response(hash, key, klen, chal, f->chal ? f->s1 : 0, tid, 0, false, g_hostnqn[f->host],
					SUBNQN, m + 16) != 0)
			abort();
	}
	if (flags & 2)
		m[16] ^= 1;
	if (reaches_protocol(f, tweak)) {
		bool right = f->chal && keyed_host(f->host) && f->txhk >= 0 && !(flags & 6) && !((flags & 8) && dhv);

		f->r1 = !r1_known() ? R1_UNKNOWN : right ? R1_RIGHT : R1_WRONG;
	}
	if (flags & 0x80)
		tl--;
	r = auth_send(f, m, tl, tweak, K_REPLY);
	if (!r)
		return;
	if (reaches_protocol(f, tweak) && f->step != T_FAILED) {
		if (!model) {
			/* a correct Reply, whatever the controller's step: a Success1 that answers it is checked */
			bool clean = !(flags & 0xfe) || ((flags & 0xfe) == 8 && !dhv);

			model_off(f);
			f->replied = false;
			if (clean && f->chal && g_predict)
				store_reply(f, cvalid, s2, tid, hash, c2, skey, skey_len);
		} else {
			int rce = 0;
			bool fail = true;

			if (f->step == T_DONE)
				rce = 0x07;
			else if (f->step != T_NEGOTIATE && (flags & 0x10))
				rce = 0x06;
			else if (f->step != T_REPLY || !f->chal)
				rce = 0x07;
			else if (flags & (0x20 | 0x40 | 0x80))
				rce = 0x06;
			else if (cvalid && s2 == 0)
				rce = 0x06;
			else if ((flags & 8) && dhv)
				rce = 0;	/* refused as a DH value (5) or as a wrong response (1): either */
			else if (flags & 6)
				rce = 0x01;
			else if (cvalid && f->txck < 0)
				rce = 0x01;	/* bidirectional, but no controller key */
			else
				fail = false;
			if (fail) {
				predict_fail(f, rce);
				f->replied = false;
			} else {
				f->step = T_SUCCESS1;
				store_reply(f, cvalid, s2, tid, hash, c2, skey, skey_len);
			}
		}
		f->chal = false;
	}
	exec(r);
	if (!race)
		wait_req(r);
}

static void op_success2(struct fq *f, struct fuzz_in *in, int tweak, bool race)
{
	uint8_t flags = fin_u8(in);
	uint8_t m[16];
	uint16_t tid = f->replied ? f->rtid : f->tid;
	bool model = g_predict && f->step != T_UNKNOWN && reaches_protocol(f, tweak);
	size_t tl = (flags & 2) ? 8 : 16;
	struct freq *r;

	memset(m, 0, sizeof(m));
	m[0] = 0x01;
	m[1] = 0x04;
	put16(m + 4, (flags & 1) ? (uint16_t)(tid ^ 1) : tid);
	r = auth_send(f, m, tl, tweak, K_SUCCESS2);
	if (!r)
		return;
	if (reaches_protocol(f, tweak) && f->step != T_FAILED) {
		if (!model) {
			model_off(f);
		} else if (f->step == T_DONE) {
			predict_fail(f, 0x07);
		} else if (f->step != T_NEGOTIATE && (flags & 1)) {
			predict_fail(f, 0x06);
		} else if (f->step != T_SUCCESS2) {
			predict_fail(f, 0x07);
		} else if (flags & 2) {
			predict_fail(f, 0x06);
		} else {
			f->step = T_DONE;
			f->authed = A_YES;
		}
		f->replied = false;
	}
	exec(r);
	if (!race)
		wait_req(r);
}

static void op_failure2(struct fq *f, struct fuzz_in *in, int tweak, bool race)
{
	uint8_t rc = fin_u8(in), rce = fin_u8(in), flags = fin_u8(in);
	uint8_t m[8];
	uint16_t tid = f->replied ? f->rtid : f->tid;
	bool model = g_predict && f->step != T_UNKNOWN && reaches_protocol(f, tweak);
	struct freq *r;

	m[0] = 0x00;
	m[1] = 0xF0;
	m[2] = m[3] = 0;
	put16(m + 4, (flags & 1) ? (uint16_t)(tid ^ 1) : tid);
	m[6] = rc;
	m[7] = rce;
	r = auth_send(f, m, sizeof(m), tweak, K_FAILURE2);
	if (!r)
		return;
	if (reaches_protocol(f, tweak) && f->step != T_FAILED) {
		if (!model) {
			model_off(f);
		} else if (f->step == T_SUCCESS2 && !(flags & 1)) {
			/* the host refused the controller's response: the transaction ends, the queue closes */
			f->step = T_FAILED;
			f->authed = A_NO;
		} else if (f->step == T_DONE) {
			predict_fail(f, 0x07);
		} else if (f->step != T_NEGOTIATE && (flags & 1)) {
			predict_fail(f, 0x06);
		} else {
			predict_fail(f, 0x07);
		}
		f->replied = false;
	}
	exec(r);
	if (!race)
		wait_req(r);
}

static void op_raw_send(struct fq *f, struct fuzz_in *in, int tweak, bool race)
{
	size_t n = fin_u16(in);
	struct freq *r;

	if (n > in->n)
		n = in->n;
	r = auth_send(f, in->p, n, tweak, K_SEND);
	if (r && reaches_protocol(f, r->tweak) && n <= MAX_AUTH_MSG) {
		if (n >= 8 && in->p[0] == 0x00 && in->p[1] == 0x00 && f->step != T_FAILED) {
			int hk, ck;
			bool removed;

			cur_keys(f->host, &hk, &ck, &removed);
			f->txhk = hk;
			f->txck = ck;
		}
		if (n >= 16 && in->p[0] == 0x01 && in->p[1] == 0x02)
			f->r1 = raw_r1(f, in->p, n);
		predict_raw(f, in->p, n);
		f->replied = false;
	}
	in->p += n;
	in->n -= n;
	if (!r)
		return;
	exec(r);
	if (!race)
		wait_req(r);
}

static void op_recv(struct fq *f, struct fuzz_in *in, int tweak, bool race)
{
	uint32_t al = fin_u16(in), sl;
	struct nvme_cmd cmd;
	struct freq *r;

	if (al == 0)
		al = RECV_DEFAULT;
	auth_cmd(&cmd, false, al, tweak, &sl);
	r = submit(f, &cmd, NULL, 0, K_RECV);
	if (!r)
		return;
	r->tweak = tweak;
	r->al = get32((uint8_t *)&cmd + 44);
	r->model = g_predict && !race && f->step != T_UNKNOWN;
	exec(r);
	if (!race)
		wait_req(r);
	else
		model_off(f);
}

/* ------------------------------------------------------ other commands */

static int connect_queue(struct fq *f, uint16_t cntlid, uint32_t *cdw0)
{
	struct nvmf_connect_cmd cc;
	struct nvmf_connect_data d;
	struct freq *r;
	int hk, ck;
	bool removed;
	bool allowed = f->host < NHOSTS - 1;

	memset(&cc, 0, sizeof(cc));
	cc.opc = NVME_OPC_FABRIC;
	cc.fctype = NVMF_FCTYPE_CONNECT;
	cc.sgl1.length = sizeof(d);
	cc.sgl1.type = NVME_SGL_TYPE_DATA_BLOCK;
	cc.sgl1.subtype = NVME_SGL_SUBTYPE_OFFSET;
	cc.qid = f->qid;
	cc.sqsize = QREQS - 1;
	memset(&d, 0, sizeof(d));
	memset(d.hostid, 0x5a, sizeof(d.hostid));
	d.cntlid = cntlid;
	snprintf(d.subnqn, sizeof(d.subnqn), "%s", SUBNQN);
	snprintf(d.hostnqn, sizeof(d.hostnqn), "%s", g_hostnqn[f->host]);
	cur_keys(f->host, &hk, &ck, &removed);
	r = submit(f, (struct nvme_cmd *)(void *)&cc, (const uint8_t *)&d, sizeof(d), K_SETUP);
	if (!r)
		return -1;
	exec(r);
	wait_req(r);
	if (fuzz_verbose)
		fprintf(fuzz_stderr, "fuzz_auth: Connect qid %u host %d: status 0x%03x cdw0 0x%x\n", f->qid, f->host,
			r->status, r->cdw0);
	if (r->status == 0) {
		if (!allowed || removed)
			bad(f, "Connect of a host not allowed, or whose key was removed, succeeded");
		f->connected = true;
		f->auth = (r->cdw0 & DBK_NVMF_CONNECT_AUTHREQ_ATR) != 0;
		if (f->auth != (hk >= 0))
			bad(f, f->auth ? "Connect asks a host without a key to authenticate"
				       : "Connect does not ask a host with a key to authenticate");
		f->step = f->auth ? T_NEGOTIATE : T_UNKNOWN;
		f->authed = f->auth ? A_NO : A_YES;
		f->tid_known = true;	/* 0 until a Negotiate */
		f->tid = 0;
		f->txhk = hk;
		f->txck = ck;
		if (cdw0)
			*cdw0 = r->cdw0;
	} else if (f->qid == 0 && (allowed && !removed)) {
		bad(f, "Connect of an allowed host failed");
	} else if ((!allowed || removed) &&
		   !st_is(r->status, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_CONNECT_INVALID_HOST)) {
		bad(f, "Connect of a host not allowed did not get Connect Invalid Host");
	}
	return r->status;
}

static uint16_t g_cntlid;

static void op_gate(struct fq *f, bool race)
{
	struct nvme_cmd cmd;
	struct freq *r;

	memset(&cmd, 0, sizeof(cmd));
	if (f->qid == 0) {
		struct nvmf_property_cmd *pc = (struct nvmf_property_cmd *)(void *)&cmd;

		pc->opc = NVME_OPC_FABRIC;
		pc->fctype = NVMF_FCTYPE_PROPERTY_GET;
		pc->attrib = 1;
		pc->ofst = NVME_REG_CAP;
	} else {
		cmd.opc = NVME_OPC_FLUSH;
		cmd.nsid = 1;
	}
	r = submit(f, &cmd, NULL, 0, K_GATE);
	if (!r)
		return;
	exec(r);
	if (!race)
		wait_req(r);
}

static void op_connect_io(void)
{
	struct fq *a = &g_q[0], *io = &g_q[1];
	struct nvmf_property_cmd pc;
	struct freq *r;

	if (io->connected || !queue_usable(io))
		return;
	memset(&pc, 0, sizeof(pc));
	pc.opc = NVME_OPC_FABRIC;
	pc.fctype = NVMF_FCTYPE_PROPERTY_SET;
	pc.ofst = NVME_REG_CC;
	pc.value = NVME_CC_EN | (6u << NVME_CC_IOSQES_SHIFT) | (4u << NVME_CC_IOCQES_SHIFT);
	r = submit(a, (struct nvme_cmd *)(void *)&pc, NULL, 0, K_GATE);
	if (r) {
		exec(r);
		wait_req(r);
	}
	connect_queue(io, g_cntlid, NULL);
}

static void op_keys(struct fq *f, uint8_t sel)
{
	int h = f->host;

	if (!keyed_host(h))
		return;
	sel %= 5;
	g_keys_changed = true;
	if (sel < 4) {
		if (set_keys(h, sel) == 0)
			g_cur_set[h] = sel;
		return;
	}
	for (int i = 0; i < 2; i++) {
		int id = g_sets[g_cur_set[h]][i];
		char name[32], err[256];

		if (id < 0 || !g_keydefs[h][id].len || g_removed[h][id])
			continue;
		if (dbk_keyring_file_remove_key(key_name(h, id, name, sizeof(name)), err, sizeof(err)) != 0)
			abort();
		g_removed[h][id] = true;
	}
}

static void op_disconnect(struct fq *f, bool race)
{
	struct nvmf_fabric_cmd cmd;
	struct freq *r;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = NVME_OPC_FABRIC;
	cmd.fctype = 0x08;	/* Disconnect */
	r = submit(f, (struct nvme_cmd *)(void *)&cmd, NULL, 0, K_DISCONNECT);
	if (!r)
		return;
	exec(r);
	if (!race)
		wait_req(r);
}

/* The queue's "auth" in nvmf_subsystem_get_qpairs: present when it must authenticate, its state the model's. */
static void check_json(struct fq *f)
{
	static const char *const states[] = {"negotiate", "challenge", "reply", "success1",
					     "success2",  "failure1",  "completed", "error"};
	json_t *o, *a;
	const char *st;
	int i;

	if (f->fini)
		return;
	o = json_object();
	nvmf_auth_qpair_json(&f->q, o);
	a = json_object_get(o, "auth");
	if ((a != NULL) != (f->connected && f->auth))
		bad(f, "nvmf_subsystem_get_qpairs: \"auth\" for a queue that needs none, or none for one that does");
	if (a) {
		st = json_string_value(json_object_get(a, "state"));
		for (i = 0; st && i < 8; i++)
			if (strcmp(st, states[i]) == 0)
				break;
		if (!st || i == 8 || !json_is_string(json_object_get(a, "digest")) ||
		    !json_is_string(json_object_get(a, "dhgroup")))
			bad(f, "a malformed \"auth\" object in nvmf_subsystem_get_qpairs");
		if (g_predict && f->step == T_DONE && strcmp(st, "completed") != 0)
			bad(f, "nvmf_subsystem_get_qpairs does not show an authenticated queue as completed");
		if (g_predict && f->step == T_FAILED && strcmp(st, "error") != 0)
			bad(f, "nvmf_subsystem_get_qpairs does not show a failed queue as error");
	}
	json_decref(o);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_env_init(0);
	if (dbk_nvmf_transport_register(&g_ops) != 0)
		abort();
	setup_target();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	uint8_t setup = fin_u8(&in);
	uint8_t dg = fin_u8(&in) & DBK_AUTH_DIGESTS_ALL, gg = fin_u8(&in) & DBK_AUTH_DHGROUPS_ALL;
	int host = (setup & 7) % NHOSTS;
	char err[128];
	uint32_t cdw0 = 0;

	fuzz_rng_seed(&g_rng, data, size);
	g_predict = true;
	g_digests = dg ? dg : DBK_AUTH_DIGESTS_ALL;
	g_dhgroups = gg ? gg : DBK_AUTH_DHGROUPS_ALL;
	if (dbk_nvmf_auth_set_config(g_digests, g_dhgroups, err, sizeof(err)) != 0)
		abort();
	new_qpairs(host);
	g_cntlid = 0xffff;
	if (!(setup & 8) && connect_queue(&g_q[0], 0xffff, &cdw0) == 0)
		g_cntlid = (uint16_t)cdw0;
	while (in.n) {
		uint8_t op = fin_u8(&in);
		int kind = (op & 15) >= 10 ? (op & 15) - 10 : op & 15;
		struct fq *f = &g_q[(op >> 4) & 1];
		bool race = (op & 0x20) != 0;
		int tweak = kind <= K_FAILURE2 ? fin_u8(&in) : 0;

		if (tweak > 7)
			tweak = 0;
		if (race)
			g_predict = false;
		if (!g_predict) {
			model_off(&g_q[0]);
			model_off(&g_q[1]);
		}
		switch (kind) {
		case K_SEND:
			op_raw_send(f, &in, tweak, race);
			break;
		case K_RECV:
			op_recv(f, &in, tweak, race);
			break;
		case K_NEGOTIATE:
			op_negotiate(f, &in, tweak, race);
			break;
		case K_REPLY:
			op_reply(f, &in, tweak, race);
			break;
		case K_SUCCESS2:
			op_success2(f, &in, tweak, race);
			break;
		case K_FAILURE2:
			op_failure2(f, &in, tweak, race);
			break;
		case K_GATE:
			op_gate(f, race);
			break;
		case K_CONNECT:
			fuzz_poll_idle();
			op_connect_io();
			break;
		case K_KEYS:
			op_keys(f, fin_u8(&in));
			break;
		default:
			op_disconnect(f, race);
			break;
		}
	}
	fuzz_poll_idle();
	for (int i = 0; i < 2; i++)
		check_json(&g_q[i]);
	/* The host goes away: every request the core holds comes back, then qpair_fini. */
	for (int i = 0; i < 2; i++)
		if (!g_q[i].fini)
			dbk_nvmf_qpair_disconnect(&g_q[i].q);
	uint64_t deadline = dbk_get_ns() + 30ull * 1000 * 1000 * 1000;
	while (!g_q[0].fini || !g_q[1].fini) {
		fuzz_poll_skip();
		if (dbk_get_ns() > deadline) {
			fprintf(fuzz_stderr, "fuzz_auth: qpairs not finished 30 s after the disconnect\n");
			abort();
		}
	}
	fuzz_poll_idle();
	restore_keys();
	return 0;
}
