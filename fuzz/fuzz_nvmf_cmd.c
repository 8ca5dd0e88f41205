/*
 * Fuzz harness: the NVMe-oF command path (nvmf/: fabrics Connect and
 * Property Get/Set, admin commands -- Identify, Get Log Page with its offsets
 * and lengths, Get/Set Features, AERs, Keep Alive, Abort --, and I/O commands
 * -- Read, Write, Compare, Write Zeroes, Flush, DSM ranges -- with their SGL
 * lengths and data buffers) against real malloc and null bdevs (4 KiB and 512-byte blocks).
 *
 * The harness is an in-process transport ("FUZZ", nvmf/transport.h) doing
 * what the TCP transport does before dbk_nvmf_request_exec(): direction from
 * the opcode, length from SGL1 (at most max_io_size; bidirectional and
 * duplicate-CID commands are refused there, so not passed on here), data
 * buffers split into iovecs as the input asks, zero-copy lending when allowed.
 * It checks the core's side of the contract: one completion per request, C2H
 * lengths within what was asked, every request back before qpair_fini.
 *
 * Input: u8 setup flags
 *          bit 0 connect the admin queue (else the input's own commands must), bit 1 enable the controller,
 *          bit 2 connect I/O queue 1, bit 3 the discovery subsystem instead of the NVM one,
 *          bit 4 (without bit 3) the subsystem with ANA reporting
 *        records:
 *          u8 sel: bit 0 I/O queue (else admin), bit 1 do not poll after this command (batch),
 *                  bit 2 lend_ok, bits 3-5 iovec layout
 *          64 bytes: the command (SQE)
 *          u16 n, n bytes: the first bytes of its host-to-controller data (the rest is zero)
 */
#include "fuzz/common/fuzz_env.h"

#include "bdev/malloc/bdev_malloc.h"
#include "bdev/null/bdev_null.h"
#include "nvmf/ana.h"
#include "nvmf/nvmf_internal.h"
#include "rpc/rpc.h"
#include "thread/thread.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUBNQN "nqn.2016-06.io.spdk:cnode1"
#define ANANQN "nqn.2016-06.io.spdk:ana"
#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:f0f0f0f0-1111-2222-3333-444444444444"
#define QREQS 32
#define MAX_IO (128u * 1024)

struct fq;

struct freq {
	struct dbk_nvmf_request req;
	struct nvme_cmd cmd;
	struct nvme_cpl rsp;
	struct fq *q;
	bool busy;		/* handed to the core, not completed */
	int ncompl;
	uint32_t len0;		/* length given to the core */
	void *bufs[DBK_NVMF_MAX_IOVS];
	int nbufs;
};

struct fq {
	struct dbk_nvmf_qpair q;
	struct freq reqs[QREQS];
	bool added, fini;
};

static struct fq g_q[2];
static volatile bool g_flag;
static int g_rc;
static volatile uint8_t g_sink;

/* ------------------------------------------------------------ transport */

static void t_opts_init(struct dbk_nvmf_transport_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_queue_depth = 128;
	o->max_qpairs_per_ctrlr = 4;
	o->in_capsule_data_size = 8192;
	o->max_io_size = MAX_IO;
	o->io_unit_size = MAX_IO;
	o->max_aq_depth = 32;
	o->num_shared_buffers = 511;
	o->buf_cache_size = 32;
	o->c2h_success = true;
	o->abort_timeout_sec = 1;
}

static int t_pg_add(struct dbk_nvmf_transport_poll_group *g, struct dbk_nvmf_qpair *q)
{
	(void)g;
	((struct fq *)q)->added = true;
	return 0;
}

static void req_free_bufs(struct freq *r)
{
	for (int i = 0; i < r->nbufs; i++)
		free(r->bufs[i]);
	r->nbufs = 0;
}

static void t_req_complete(struct dbk_nvmf_request *req)
{
	struct freq *r = (struct freq *)req;

	if (fuzz_verbose)
		fprintf(fuzz_stderr, "fuzz_nvmf_cmd: qid %u cid %u opc 0x%02x: status 0x%04x cdw0 0x%x length %u%s\n",
			r->q->q.qid, r->cmd.cid, r->cmd.opc, nvme_cpl_status(req->rsp), req->rsp->cdw0, req->length,
			req->lent ? " (lent)" : "");
	if (!r->busy || ++r->ncompl != 1) {
		fprintf(fuzz_stderr, "fuzz_nvmf_cmd: request (opc 0x%02x) completed %d times\n", r->cmd.opc, r->ncompl);
		abort();
	}
	if (nvme_cpl_status(req->rsp) == 0 && req->xfer == DBK_NVMF_XFER_CTRLR_TO_HOST && req->length > 0) {
		size_t have = 0;

		/* What the TCP transport would send: req->length bytes from the iovecs, never more than asked. */
		if (req->length > r->len0) {
			fprintf(fuzz_stderr, "fuzz_nvmf_cmd: opc 0x%02x: C2H length %u > the %u bytes asked for\n",
				r->cmd.opc, req->length, r->len0);
			abort();
		}
		for (int i = 0; i < req->iovcnt && have < req->length; i++) {
			size_t n = req->iov[i].iov_len < req->length - have ? req->iov[i].iov_len : req->length - have;
			const uint8_t *p = req->iov[i].iov_base;

			for (size_t k = 0; k < n; k += 64)
				g_sink ^= p[k];
			if (n)
				g_sink ^= p[n - 1];
			have += n;
		}
		if (have < req->length) {
			fprintf(fuzz_stderr, "fuzz_nvmf_cmd: opc 0x%02x: iovecs hold %zu of the %u C2H bytes\n",
				r->cmd.opc, have, req->length);
			abort();
		}
	}
	if (req->lent)
		dbk_nvmf_request_release(req);
	req_free_bufs(r);
	r->busy = false;
}

static void t_qpair_fini(struct dbk_nvmf_qpair *q)
{
	struct fq *f = (struct fq *)q;

	for (int i = 0; i < QREQS; i++) {
		if (f->reqs[i].busy) {
			fprintf(fuzz_stderr, "fuzz_nvmf_cmd: qpair_fini with request (opc 0x%02x) still held\n",
				f->reqs[i].cmd.opc);
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

static void wait_done(const char *what)
{
	fuzz_poll_until(&g_flag, what);
	g_flag = false;
}

/*
 * The target stays up across inputs (bringing the bdev layer up costs more than most inputs): a zero-copy
 * FUZZ transport, subsystem SUBNQN with namespaces 1 = Malloc0 (1 MiB, 4 KiB blocks), 2 = Null0 (1 GiB,
 * 4 KiB blocks), 3 = Malloc1 (1 MiB, 512-byte blocks), any host, listener FUZZ 127.0.0.1:4420; and the
 * discovery subsystem; and ANANQN with ANA reporting (namespace 1 = Malloc2, 4 KiB blocks, optimized;
 * 2 = Malloc3, 512-byte blocks, inaccessible). Each input gets a new admin and I/O qpair (so a new controller); they are gone,
 * with their controller, before the next input.
 */
static void setup_target(void)
{
	struct dbk_nvmf_transport_opts o;
	struct dbk_nvmf_subsystem_opts so = {0};
	struct dbk_nvmf_ns_opts no = {0};
	struct dbk_nvmf_listen_addr a;
	struct dbk_nvmf_subsystem *s;
	char err[256];

	fuzz_core_up();
	t_opts_init(&o);
	o.zcopy = true;
	g_flag = false;
	dbk_nvmf_tgt_create_transport("FUZZ", &o, done_cb, NULL);
	wait_done("create_transport");
	if (g_rc)
		abort();
	if (dbk_bdev_malloc_create("Malloc0", NULL, (1u << 20) / 4096, 4096, NULL) != 0 ||
	    dbk_bdev_null_create("Null0", NULL, (1ull << 30) / 4096, 4096, NULL) != 0 ||
	    dbk_bdev_malloc_create("Malloc1", NULL, (1u << 20) / 512, 512, NULL) != 0)
		abort();
	so.allow_any_host = true;
	so.serial_number = "FUZZ0001";
	so.model_number = "daosblk fuzz";
	if (dbk_nvmf_subsystem_create(SUBNQN, &so, &s, err, sizeof(err)) != 0)
		abort();
	dbk_nvmf_subsystem_add_ns(s, "Malloc0", &no, done_cb, NULL);
	wait_done("add_ns 1");
	dbk_nvmf_subsystem_add_ns(s, "Null0", &no, done_cb, NULL);
	wait_done("add_ns 2");
	dbk_nvmf_subsystem_add_ns(s, "Malloc1", &no, done_cb, NULL);
	wait_done("add_ns 3");
	t_addr(NULL, &a);
	if (dbk_nvmf_subsystem_add_listener(s, &a, err, sizeof(err)) != 0)
		abort();
	/* With ANA reporting: namespace 1 optimized, 2 inaccessible on the listener (path-related status). */
	so.ana_reporting = true;
	so.max_namespaces = 4;
	if (dbk_bdev_malloc_create("Malloc2", NULL, (1u << 20) / 4096, 4096, NULL) != 0 ||
	    dbk_bdev_malloc_create("Malloc3", NULL, (1u << 20) / 512, 512, NULL) != 0 ||
	    dbk_nvmf_subsystem_create(ANANQN, &so, &s, err, sizeof(err)) != 0)
		abort();
	dbk_nvmf_subsystem_add_ns(s, "Malloc2", &no, done_cb, NULL);
	wait_done("add_ns ana 1");
	dbk_nvmf_subsystem_add_ns(s, "Malloc3", &no, done_cb, NULL);
	wait_done("add_ns ana 2");
	if (dbk_nvmf_subsystem_add_listener(s, &a, err, sizeof(err)) != 0 ||
	    dbk_nvmf_subsystem_set_ana_state(s, &a, "inaccessible", 2, err, sizeof(err)) != 0) {
		fprintf(fuzz_stderr, "fuzz_nvmf_cmd: %s\n", err);
		abort();
	}
	fuzz_poll_idle();
}

static void new_qpairs(void)
{
	memset(g_q, 0, sizeof(g_q));
	for (int i = 0; i < 2; i++) {
		for (int k = 0; k < QREQS; k++)
			g_q[i].reqs[k].q = &g_q[i];
		g_q[i].q.transport = dbk_nvmf_tgt_find_transport("FUZZ");
		dbk_nvmf_tgt_new_qpair(&g_q[i].q);
	}
	fuzz_poll_idle();
	if (!g_q[0].added || !g_q[1].added)
		abort();
}

/* ------------------------------------------------------------- commands */

FUZZ_NO_COVERAGE static struct freq *free_slot(struct fq *f, uint16_t cid)
{
	struct freq *slot = NULL;

	for (int i = 0; i < QREQS; i++) {
		if (f->reqs[i].busy) {
			if (f->reqs[i].cmd.cid == cid)
				return NULL;	/* the TCP transport refuses a CID in use */
		} else if (!slot) {
			slot = &f->reqs[i];
		}
	}
	return slot;
}

/* Lay len bytes out in iovecs (each its own heap block) the way layout says. */
static bool attach_bufs(struct freq *r, uint32_t len, unsigned layout, struct fuzz_rng *rng)
{
	uint32_t off = 0;
	int n = 0;

	while (off < len) {
		uint32_t chunk = len - off;

		if (n == DBK_NVMF_MAX_IOVS - 1)
			chunk = len - off;	/* the last iovec takes the rest */
		else if (layout == 1)
			chunk = chunk < 512 ? chunk : 512;
		else if (layout == 2)
			chunk = chunk < 4096 ? chunk : 4096;
		else if (layout == 3)
			chunk = 1 + fuzz_rng_next(rng) % chunk;
		else if (layout == 4 && n == 0)
			chunk = 1;
		r->bufs[n] = malloc(chunk);
		if (!r->bufs[n])
			return false;
		r->req.iov[n].iov_base = r->bufs[n];
		r->req.iov[n].iov_len = chunk;
		n++;
		r->nbufs = n;
		off += chunk;
	}
	r->req.iovcnt = n;
	return true;
}

static void copy_to_iov(struct dbk_nvmf_request *req, const uint8_t *src, size_t len)
{
	size_t off = 0;

	for (int i = 0; i < req->iovcnt && off < len; i++) {
		size_t n = req->iov[i].iov_len < len - off ? req->iov[i].iov_len : len - off;

		memcpy(req->iov[i].iov_base, src + off, n);
		off += n;
	}
}

/* Hand one command to the core as the TCP transport would. Returns the request, or NULL if not passed on. */
static struct freq *submit(struct fq *f, const struct nvme_cmd *cmd, const uint8_t *data, size_t dlen, bool lend_ok,
			   unsigned layout, struct fuzz_rng *rng)
{
	struct freq *r;
	unsigned dir;
	uint32_t len = cmd->sgl1.length;

	if (f->fini || !dbk_nvmf_qpair_is_active(&f->q))
		return NULL;
	r = free_slot(f, cmd->cid);
	if (!r) {
		fuzz_poll_idle();
		r = free_slot(f, cmd->cid);
		if (!r)
			return NULL;
	}
	if (cmd->opc == NVME_OPC_FABRIC)
		dir = ((const struct nvmf_fabric_cmd *)(const void *)cmd)->fctype & 3;
	else
		dir = cmd->opc & 3;
	if (dir == 3 && len)
		return NULL;	/* TCP: invalid opcode, not passed on */
	if (len > MAX_IO)
		return NULL;	/* TCP: SGL length invalid */
	memset(&r->req, 0, sizeof(r->req));
	r->cmd = *cmd;
	memset(&r->rsp, 0, sizeof(r->rsp));
	r->rsp.cid = cmd->cid;
	r->rsp.sqid = f->q.qid;
	r->req.qpair = &f->q;
	r->req.cmd = &r->cmd;
	r->req.rsp = &r->rsp;
	r->ncompl = 0;
	r->nbufs = 0;
	if (dir == 0 || dir == 3 || len == 0) {
		r->req.xfer = DBK_NVMF_XFER_NONE;
		len = 0;
	} else {
		r->req.xfer = dir == 1 ? DBK_NVMF_XFER_HOST_TO_CTRLR : DBK_NVMF_XFER_CTRLR_TO_HOST;
		r->req.lend_ok = lend_ok;
	}
	r->req.length = len;
	r->len0 = len;
	r->busy = true;
	if (dir == 1 && len && lend_ok && dbk_nvmf_request_lend_write(&r->req)) {
		/* The data goes straight into the bdev's memory. */
		if (r->req.iovcnt != 1 || r->req.iov[0].iov_len < len) {
			fprintf(fuzz_stderr, "fuzz_nvmf_cmd: lent write buffer of %zu bytes for %u\n",
				r->req.iovcnt ? r->req.iov[0].iov_len : 0, len);
			abort();
		}
	} else if (len && !attach_bufs(r, len, layout, rng)) {
		abort();
	}
	if (len && dir == 1) {
		for (int i = 0; i < r->req.iovcnt; i++)
			memset(r->req.iov[i].iov_base, 0, r->req.iov[i].iov_len);
		copy_to_iov(&r->req, data, dlen < len ? dlen : len);
	}
	dbk_nvmf_request_exec(&r->req);
	return r;
}

/* A command of the harness's own (setup), run to completion: its status, or -1 if not passed on. */
static int run_cmd(struct fq *f, const struct nvme_cmd *cmd, const void *data, size_t dlen, uint32_t *cdw0)
{
	struct freq *r = submit(f, cmd, data, dlen, false, 0, NULL);
	uint64_t deadline = dbk_get_ns() + 30ull * 1000 * 1000 * 1000;

	if (!r)
		return -1;
	while (r->busy) {
		dbk_reactor_poll(1000);
		if (dbk_get_ns() > deadline)
			abort();
	}
	if (cdw0)
		*cdw0 = r->rsp.cdw0;
	return nvme_cpl_status(&r->rsp);
}

static int do_connect(struct fq *f, uint16_t qid, uint16_t cntlid, const char *subnqn, uint32_t *cdw0)
{
	struct nvmf_connect_cmd cc;
	struct nvmf_connect_data d;

	memset(&cc, 0, sizeof(cc));
	cc.opc = NVME_OPC_FABRIC;
	cc.cid = 0xf000;
	cc.fctype = NVMF_FCTYPE_CONNECT;
	cc.sgl1.length = sizeof(d);
	cc.sgl1.type = NVME_SGL_TYPE_DATA_BLOCK;
	cc.sgl1.subtype = NVME_SGL_SUBTYPE_OFFSET;
	cc.qid = qid;
	cc.sqsize = QREQS - 1;
	memset(&d, 0, sizeof(d));
	memset(d.hostid, 0x5a, sizeof(d.hostid));
	d.cntlid = cntlid;
	snprintf(d.subnqn, sizeof(d.subnqn), "%s", subnqn);
	snprintf(d.hostnqn, sizeof(d.hostnqn), "%s", HOSTNQN);
	return run_cmd(f, (const struct nvme_cmd *)(const void *)&cc, &d, sizeof(d), cdw0);
}

static int prop_set_cc(struct fq *f, uint32_t cc)
{
	struct nvmf_property_cmd pc;

	memset(&pc, 0, sizeof(pc));
	pc.opc = NVME_OPC_FABRIC;
	pc.cid = 0xf001;
	pc.fctype = NVMF_FCTYPE_PROPERTY_SET;
	pc.ofst = NVME_REG_CC;
	pc.value = cc;
	return run_cmd(f, (const struct nvme_cmd *)(const void *)&pc, NULL, 0, NULL);
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
	struct fuzz_rng rng;
	uint8_t flags = fin_u8(&in);
	const char *subnqn = (flags & 0x8) ? NVME_DISC_SUBSYS_NQN : (flags & 0x10) ? ANANQN : SUBNQN;
	uint32_t cdw0 = 0;

	fuzz_rng_seed(&rng, data, size);
	new_qpairs();
	if ((flags & 1) && do_connect(&g_q[0], 0, 0xffff, subnqn, &cdw0) == 0) {
		uint16_t cntlid = (uint16_t)cdw0;

		if (flags & 2)
			prop_set_cc(&g_q[0], NVME_CC_EN | (6u << NVME_CC_IOSQES_SHIFT) | (4u << NVME_CC_IOCQES_SHIFT));
		if (flags & 4)
			do_connect(&g_q[1], 1, cntlid, subnqn, NULL);
	}
	while (in.n) {
		struct nvme_cmd cmd;
		uint8_t sel = fin_u8(&in);
		size_t dlen;

		fin_bytes(&in, &cmd, sizeof(cmd));
		dlen = fin_u16(&in);
		if (dlen > in.n)
			dlen = in.n;
		submit(&g_q[sel & 1], &cmd, in.p, dlen, (sel & 4) != 0, (sel >> 3) & 7, &rng);
		in.p += dlen;
		in.n -= dlen;
		if (!(sel & 2))
			fuzz_poll_idle();
	}
	fuzz_poll_idle();
	/* The host goes away: every request the core holds comes back, then qpair_fini. */
	for (int i = 0; i < 2; i++)
		if (!g_q[i].fini)
			dbk_nvmf_qpair_disconnect(&g_q[i].q);
	uint64_t deadline = dbk_get_ns() + 30ull * 1000 * 1000 * 1000;
	while (!g_q[0].fini || !g_q[1].fini) {
		fuzz_poll_skip();
		if (dbk_get_ns() > deadline) {
			fprintf(fuzz_stderr, "fuzz_nvmf_cmd: qpairs not finished 30 s after the disconnect\n");
			abort();
		}
	}
	fuzz_poll_idle();	/* the controller goes too */
	return 0;
}
