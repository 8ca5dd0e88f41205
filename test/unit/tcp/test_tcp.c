/*
 * Unit tests for the NVMe/TCP transport (nvmf/tcp/).
 *
 * The transport runs for real: one real reactor (thread library) in a
 * background pthread, a real listener on 127.0.0.1, real accepted sockets.
 * The test's main thread is the host: it speaks NVMe/TCP over a blocking
 * loopback socket and checks every PDU. The "core" below is a minimal
 * in-test executor implementing the core entry points of transport.h
 * (Connect, Read/Write against an in-memory disk, a "hold" opcode) -- a
 * harness that lets the transport run, not a replacement for the real core
 * (tested end to end elsewhere).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "nvmf/tcp/nvme_tcp.h"
#include "nvmf/tcp/sock.h"
#include "nvmf/transport.h"
#include "thread/thread.h"
#include "util/crc32c.h"

#define DISK_SIZE (4u << 20)
#define OPC_HOLD 0xC0	/* vendor, no data: the harness holds it until released */

/* ------------------------------------------------------------ the harness core */

struct harness {
	struct dbk_nvmf_transport *t;
	struct dbk_nvmf_transport_poll_group *pg;
	const struct dbk_nvmf_transport_ops *ops;
	int live, disconnects, finis, execs;
	uint8_t last_opc;
	uint32_t last_len;
	enum dbk_nvmf_xfer last_xfer;
	struct dbk_nvmf_request *held[512];
	int nheld;
	char hostnqn[257];
	struct dbk_nvmf_listen_addr peer, local;
	int peer_rc, local_rc;
	uint16_t port;
	bool lend;		/* this core double lends g_disk for reads the transport allows (lend_ok) */
	int lends, releases;
	bool lend_write;	/* ... and for writes (dbk_nvmf_request_lend_write) */
	int wlends, wlend_execs;
};

static struct harness H;
static uint8_t g_disk[DISK_SIZE];

static void complete_msg(void *ctx)
{
	dbk_nvmf_request_complete(ctx);
}

static void fini_msg(void *ctx)
{
	struct dbk_nvmf_qpair *qp = ctx;
	H.finis++;
	H.live--;
	H.ops->qpair_fini(qp);
}

void dbk_nvmf_tgt_new_qpair(struct dbk_nvmf_qpair *qp)
{
	H.live++;
	qp->tgroup = H.pg;
	qp->core_state = 0;
	qp->core_outstanding = 0;
	int rc = H.ops->poll_group_add(H.pg, qp);
	if (rc) {
		H.live--;
		H.ops->qpair_fini(qp);
		return;
	}
	H.peer_rc = H.ops->qpair_get_peer_addr(qp, &H.peer);
	H.local_rc = H.ops->qpair_get_local_addr(qp, &H.local);
}

/* No secure listener in these tests: no host has a TLS PSK. */
int dbk_nvmf_tgt_tls_psk(const char *subnqn, const char *hostnqn, const struct dbk_nvmf_listen_addr *local,
			 char *secret, size_t len)
{
	(void)subnqn;
	(void)hostnqn;
	(void)local;
	(void)secret;
	(void)len;
	return -ENOENT;
}

static void set_status(struct dbk_nvmf_request *req, int sct, int sc)
{
	nvme_cpl_set_status(req->rsp, sct, sc, 1);
}

static uint32_t iov_total(const struct dbk_nvmf_request *req)
{
	uint32_t n = 0;
	for (int i = 0; i < req->iovcnt; i++)
		n += (uint32_t)req->iov[i].iov_len;
	return n;
}

void dbk_nvmf_request_exec(struct dbk_nvmf_request *req)
{
	struct dbk_nvmf_qpair *qp = req->qpair;
	const struct nvme_cmd *cmd = req->cmd;
	qp->core_outstanding++;
	H.execs++;
	H.last_opc = cmd->opc;
	H.last_len = req->length;
	H.last_xfer = req->xfer;
	if (req->length && iov_total(req) < req->length)
		set_status(req, NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);
	else if (cmd->opc == NVME_OPC_FABRIC) {
		const struct nvmf_connect_cmd *cc = (const void *)cmd;
		if (cc->fctype != NVMF_FCTYPE_CONNECT || req->length != 1024 || req->iovcnt != 1) {
			set_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
		} else {
			const struct nvmf_connect_data *d = req->iov[0].iov_base;
			memcpy(H.hostnqn, d->hostnqn, 256);
			qp->qid = cc->qid;
			qp->sq_size = (uint16_t)(cc->sqsize + 1);
			qp->sq_flow_control_disabled = cc->cattr & 0x4;
			req->rsp->cdw0 = 1;
		}
	} else if (cmd->opc == NVME_OPC_WRITE && req->lent) {
		/* Zero-copy write: the transport received the data into g_disk itself. */
		assert_ptr_equal(req->iov[0].iov_base, g_disk + (uint64_t)cmd->cdw10 * 512);
		req->lent = false;
		H.wlend_execs++;
	} else if (cmd->opc == NVME_OPC_WRITE || cmd->opc == NVME_OPC_READ) {
		uint64_t off = (uint64_t)cmd->cdw10 * 512;
		if (off + req->length > DISK_SIZE) {
			set_status(req, NVME_SCT_GENERIC, NVME_SC_LBA_OUT_OF_RANGE);
		} else if (cmd->opc == NVME_OPC_READ && cmd->nsid == 0xBAD) {
			set_status(req, NVME_SCT_MEDIA_ERROR, NVME_SC_UNRECOVERED_READ_ERROR);
		} else if (cmd->opc == NVME_OPC_READ && H.lend && req->lend_ok) {
			/* Zero-copy read, as a lending bdev: the data buffer is g_disk itself. */
			req->iov[0].iov_base = g_disk + off;
			req->iov[0].iov_len = req->length;
			req->iovcnt = 1;
			req->lent = true;
			H.lends++;
		} else {
			uint32_t left = req->length;
			for (int i = 0; i < req->iovcnt && left; i++) {
				uint32_t n = (uint32_t)req->iov[i].iov_len < left ? (uint32_t)req->iov[i].iov_len : left;
				if (cmd->opc == NVME_OPC_WRITE)
					memcpy(g_disk + off, req->iov[i].iov_base, n);
				else
					memcpy(req->iov[i].iov_base, g_disk + off, n);
				off += n;
				left -= n;
			}
		}
	} else if (cmd->opc == NVME_OPC_FLUSH) {
		/* success */
	} else if (cmd->opc == OPC_HOLD) {
		H.held[H.nheld++] = req;
		return;
	} else {
		set_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE);
	}
	/* Complete asynchronously, as a bdev would. */
	dbk_thread_send_msg(dbk_get_thread(), complete_msg, req);
}

void dbk_nvmf_request_complete(struct dbk_nvmf_request *req)
{
	struct dbk_nvmf_qpair *qp = req->qpair;
	qp->core_outstanding--;
	H.ops->req_complete(req);
	if (qp->core_state && qp->core_outstanding == 0)
		dbk_thread_send_msg(dbk_get_thread(), fini_msg, qp);
}

static void release_held(void *arg)
{
	struct dbk_nvmf_qpair *only = arg;
	int keep = 0;
	for (int i = 0; i < H.nheld; i++) {
		struct dbk_nvmf_request *req = H.held[i];
		if (only && req->qpair != only) {
			H.held[keep++] = req;
			continue;
		}
		if (only)
			set_status(req, NVME_SCT_GENERIC, NVME_SC_ABORTED_SQ_DELETION);
		dbk_thread_send_msg(dbk_get_thread(), complete_msg, req);
	}
	H.nheld = keep;
}

void dbk_nvmf_request_release(struct dbk_nvmf_request *req)
{
	if (!req->lent)
		return;
	req->lent = false;
	H.releases++;
}

bool dbk_nvmf_request_lend_write(struct dbk_nvmf_request *req)
{
	const struct nvme_cmd *cmd = req->cmd;
	uint64_t off = (uint64_t)cmd->cdw10 * 512;
	if (!H.lend_write || !req->lend_ok || cmd->opc != NVME_OPC_WRITE || req->xfer != DBK_NVMF_XFER_HOST_TO_CTRLR ||
	    off + req->length > DISK_SIZE)
		return false;
	req->iov[0].iov_base = g_disk + off;
	req->iov[0].iov_len = req->length;
	req->iovcnt = 1;
	req->lent = true;
	H.wlends++;
	return true;
}

void dbk_nvmf_qpair_disconnect(struct dbk_nvmf_qpair *qp)
{
	if (qp->core_state)
		return;
	qp->core_state = 1;
	H.disconnects++;
	release_held(qp);
	if (qp->core_outstanding == 0)
		dbk_thread_send_msg(dbk_get_thread(), fini_msg, qp);
}

bool dbk_nvmf_qpair_is_active(const struct dbk_nvmf_qpair *qp)
{
	return qp->core_state == 0;
}

/* ------------------------------------------------------------- reactor plumbing */

static pthread_t g_reactor;
static sem_t g_ready;

static void reactor_started(void *ctx)
{
	(void)ctx;
	sem_post(&g_ready);
}

static void *reactor_main(void *arg)
{
	(void)arg;
	struct dbk_reactor_opts o;
	memset(&o, 0, sizeof(o));
	o.cores[0] = 0;
	o.num_cores = 1;
	o.pin = false;
	if (dbk_reactors_init(&o) != 0)
		abort();
	dbk_reactors_start(reactor_started, NULL);
	dbk_reactors_fini();
	return NULL;
}

struct call {
	void (*fn)(void *);
	void *arg;
	sem_t done;
};

static void call_tramp(void *ctx)
{
	struct call *c = ctx;
	c->fn(c->arg);
	sem_post(&c->done);
}

static void on_reactor(void (*fn)(void *), void *arg)
{
	struct call c = {.fn = fn, .arg = arg};
	sem_init(&c.done, 0, 0);
	dbk_thread_send_msg(dbk_reactor_thread(0), call_tramp, &c);
	sem_wait(&c.done);
	sem_destroy(&c.done);
}

struct env_args {
	struct dbk_nvmf_transport_opts opts;
	int rc;
	char err[128];
};

static void env_create(void *arg)
{
	struct env_args *a = arg;
	H.ops = &dbk_nvmf_tcp_transport_ops;
	H.t = H.ops->create(&a->opts, &a->rc, a->err, sizeof(a->err));
	if (!H.t)
		return;
	H.pg = H.ops->poll_group_create(H.t);
	struct dbk_nvmf_listen_addr addr;
	memset(&addr, 0, sizeof(addr));
	strcpy(addr.trtype, "TCP");
	strcpy(addr.adrfam, "IPv4");
	strcpy(addr.traddr, "127.0.0.1");
	snprintf(addr.trsvcid, sizeof(addr.trsvcid), "%u", H.port);
	a->rc = H.ops->listen(H.t, &addr);
}

static void env_destroy(void *arg)
{
	(void)arg;
	struct dbk_nvmf_listen_addr addr;
	memset(&addr, 0, sizeof(addr));
	strcpy(addr.adrfam, "IPv4");
	strcpy(addr.traddr, "127.0.0.1");
	snprintf(addr.trsvcid, sizeof(addr.trsvcid), "%u", H.port);
	H.ops->stop_listen(H.t, &addr);
	H.ops->poll_group_destroy(H.pg);
	H.ops->destroy(H.t);
	H.t = NULL;
	H.pg = NULL;
}

static uint16_t free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &l), 0);
	close(s);
	return ntohs(a.sin_port);
}

static void default_opts(struct dbk_nvmf_transport_opts *o)
{
	dbk_nvmf_tcp_transport_ops.opts_init(o);
	o->max_io_size = 1u << 20;
	o->io_unit_size = 65536;
	o->num_shared_buffers = 64;
}

static int setup_opts(const struct dbk_nvmf_transport_opts *o)
{
	struct env_args a;
	memset(&a, 0, sizeof(a));
	a.opts = *o;
	memset(&H, 0, sizeof(H));
	H.port = free_port();
	on_reactor(env_create, &a);
	if (a.rc != 0 || H.t == NULL || H.pg == NULL) {
		fprintf(stderr, "setup failed: %d %s\n", a.rc, a.err);
		return -1;
	}
	return 0;
}

static int setup(void **state)
{
	(void)state;
	struct dbk_nvmf_transport_opts o;
	default_opts(&o);
	return setup_opts(&o);
}

static void read_live(void *arg)
{
	*(int *)arg = H.live;
}

static void wait_no_qpairs(void)
{
	int live = 1;
	for (int i = 0; i < 500; i++) {
		on_reactor(read_live, &live);
		if (live == 0)
			break;
		usleep(10000);
	}
	assert_int_equal(live, 0);
}

static int teardown(void **state)
{
	(void)state;
	wait_no_qpairs();
	on_reactor(env_destroy, NULL);
	return 0;
}

/* ---------------------------------------------------------------- host side */

struct host {
	int fd;
	bool hd, dd;
};

static uint8_t g_rx[(2u << 20) + 4096];

static void host_connect(struct host *h)
{
	memset(h, 0, sizeof(*h));
	h->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(h->fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(H.port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(connect(h->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	int one = 1;
	setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct timeval tv = {.tv_sec = 5};
	setsockopt(h->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static void host_close(struct host *h)
{
	close(h->fd);
	h->fd = -1;
}

/* Vanish: close with an RST (no FIN, unread data dropped), then wait until the target has dropped the qpairs. */
static void host_reset(struct host *h)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(h->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	host_close(h);
	wait_no_qpairs();
}

static void host_send(struct host *h, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = send(h->fd, p, len, MSG_NOSIGNAL);
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

/* 0 ok, -1 EOF / error / timeout */
static int host_recv(struct host *h, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = recv(h->fd, p, len, 0);
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Receive one PDU into g_rx; returns its type or -1. */
static int host_recv_pdu(struct host *h)
{
	if (host_recv(h, g_rx, 8) != 0)
		return -1;
	const struct nvme_tcp_common_hdr *ch = (const void *)g_rx;
	assert_true(ch->plen >= 8 && ch->plen <= sizeof(g_rx));
	if (host_recv(h, g_rx + 8, ch->plen - 8) != 0)
		return -1;
	return ch->pdu_type;
}

static void host_expect_eof(struct host *h)
{
	uint8_t b;
	ssize_t n = recv(h->fd, &b, 1, 0);
	assert_int_equal(n, 0);
}

static void build_icreq(uint8_t *buf, uint8_t dgst, uint16_t pfv)
{
	struct nvme_tcp_ic_req *ic = (void *)buf;
	memset(ic, 0, sizeof(*ic));
	ic->common.pdu_type = NVME_TCP_PDU_IC_REQ;
	ic->common.hlen = 128;
	ic->common.plen = 128;
	ic->pfv = pfv;
	ic->dgst = dgst;
	ic->maxr2t = 0;
}

static void host_ic(struct host *h, uint8_t dgst)
{
	uint8_t buf[128];
	build_icreq(buf, dgst, 0);
	host_send(h, buf, sizeof(buf));
	assert_int_equal(host_recv_pdu(h), NVME_TCP_PDU_IC_RESP);
	const struct nvme_tcp_ic_resp *r = (const void *)g_rx;
	assert_int_equal(r->common.hlen, 128);
	assert_int_equal(r->common.plen, 128);
	assert_int_equal(r->common.pdo, 0);
	assert_int_equal(r->pfv, 0);
	assert_int_equal(r->cpda, 0);
	assert_int_equal(r->dgst, dgst);
	assert_int_equal(r->maxh2cdata, 131072);
	h->hd = dgst & 1;
	h->dd = dgst & 2;
}

/* Build a CapsuleCmd PDU (with digests as negotiated); returns its length. */
static size_t build_capsule(const struct host *h, uint8_t *out, const struct nvme_cmd *cmd, const void *data,
			    uint32_t len)
{
	struct nvme_tcp_cmd *pc = (void *)out;
	memset(pc, 0, sizeof(*pc));
	pc->common.pdu_type = NVME_TCP_PDU_CAPSULE_CMD;
	pc->common.hlen = 72;
	pc->ccsqe = *cmd;
	size_t off = 72;
	if (h->hd)
		pc->common.flags |= NVME_TCP_F_HDGST;
	if (len && h->dd)
		pc->common.flags |= NVME_TCP_F_DDGST;
	if (h->hd)
		off += 4;
	if (len) {
		pc->common.pdo = (uint8_t)off;
		memcpy(out + off, data, len);
		off += len;
		if (h->dd) {
			uint32_t c = dbk_crc32c(data, len);
			memcpy(out + off, &c, 4);
			off += 4;
		}
	}
	pc->common.plen = (uint32_t)off;
	if (h->hd) {
		uint32_t c = dbk_crc32c(out, 72);
		memcpy(out + 72, &c, 4);
	}
	return off;
}

static uint8_t g_tx[(2u << 20) + 8192];

static void host_capsule(struct host *h, const struct nvme_cmd *cmd, const void *data, uint32_t len)
{
	size_t n = build_capsule(h, g_tx, cmd, data, len);
	host_send(h, g_tx, n);
}

static size_t build_h2c(const struct host *h, uint8_t *out, uint16_t cccid, uint16_t ttag, uint32_t datao,
			const void *data, uint32_t len, bool last)
{
	struct nvme_tcp_data_hdr *d = (void *)out;
	memset(d, 0, sizeof(*d));
	d->common.pdu_type = NVME_TCP_PDU_H2C_DATA;
	d->common.hlen = 24;
	d->common.flags = (uint8_t)((last ? NVME_TCP_F_DATA_LAST : 0) | (h->hd ? NVME_TCP_F_HDGST : 0) |
				    (h->dd ? NVME_TCP_F_DDGST : 0));
	d->cccid = cccid;
	d->ttag = ttag;
	d->datao = datao;
	d->datal = len;
	size_t off = 24 + (h->hd ? 4 : 0);
	d->common.pdo = (uint8_t)off;
	memcpy(out + off, data, len);
	off += len;
	if (h->dd) {
		uint32_t c = dbk_crc32c(data, len);
		memcpy(out + off, &c, 4);
		off += 4;
	}
	d->common.plen = (uint32_t)off;
	if (h->hd) {
		uint32_t c = dbk_crc32c(out, 24);
		memcpy(out + 24, &c, 4);
	}
	return off;
}

static void make_cmd(struct nvme_cmd *c, uint8_t opc, uint16_t cid, uint32_t slba, uint32_t len, bool incapsule)
{
	memset(c, 0, sizeof(*c));
	c->opc = opc;
	c->cid = cid;
	c->nsid = 1;
	c->psdt = 1;
	c->cdw10 = slba;
	c->sgl1.length = len;
	if (incapsule) {
		c->sgl1.type = NVME_SGL_TYPE_DATA_BLOCK;
		c->sgl1.subtype = NVME_SGL_SUBTYPE_OFFSET;
	} else {
		c->sgl1.type = NVME_SGL_TYPE_TRANSPORT_DATA_BLOCK;
		c->sgl1.subtype = NVME_SGL_SUBTYPE_TRANSPORT;
	}
}

/* Check a received header digest (if negotiated) of the PDU in g_rx. */
static void check_hdgst(const struct host *h)
{
	const struct nvme_tcp_common_hdr *ch = (const void *)g_rx;
	assert_int_equal(!!(ch->flags & NVME_TCP_F_HDGST), h->hd);
	if (h->hd) {
		uint32_t c;
		memcpy(&c, g_rx + ch->hlen, 4);
		assert_int_equal(c, dbk_crc32c(g_rx, ch->hlen));
	}
}

static void expect_rsp(struct host *h, uint16_t cid, uint16_t status)
{
	assert_int_equal(host_recv_pdu(h), NVME_TCP_PDU_CAPSULE_RESP);
	const struct nvme_tcp_rsp *r = (const void *)g_rx;
	assert_int_equal(r->common.hlen, 24);
	assert_int_equal(r->common.plen, 24 + (h->hd ? 4 : 0));
	check_hdgst(h);
	assert_int_equal(r->rccqe.cid, cid);
	assert_int_equal(nvme_cpl_status(&r->rccqe), status);
}

static void expect_term(struct host *h, uint16_t fes, uint32_t fei, const void *hdr, uint32_t hdrlen)
{
	assert_int_equal(host_recv_pdu(h), NVME_TCP_PDU_C2H_TERM_REQ);
	const struct nvme_tcp_term_req_hdr *t = (const void *)g_rx;
	assert_int_equal(t->common.hlen, 24);
	assert_int_equal(t->fes, fes);
	assert_int_equal(t->fei, fei);
	if (hdr) {
		assert_int_equal(t->common.plen, 24 + hdrlen);
		assert_memory_equal(g_rx + 24, hdr, hdrlen);
	}
	host_expect_eof(h);
}

#define ST_OK 0
#define ST(sct, sc) NVME_STATUS(sct, sc)

static void host_fabric_connect(struct host *h, uint16_t qid, uint16_t sqsize, uint8_t cattr)
{
	struct nvmf_connect_cmd cc;
	memset(&cc, 0, sizeof(cc));
	cc.opc = NVME_OPC_FABRIC;
	cc.cid = 0x77;
	cc.fctype = NVMF_FCTYPE_CONNECT;
	cc.sgl1.type = NVME_SGL_TYPE_DATA_BLOCK;
	cc.sgl1.subtype = NVME_SGL_SUBTYPE_OFFSET;
	cc.sgl1.length = 1024;
	cc.qid = qid;
	cc.sqsize = sqsize;
	cc.cattr = cattr;
	struct nvmf_connect_data d;
	memset(&d, 0, sizeof(d));
	d.cntlid = 0xFFFF;
	strcpy(d.subnqn, "nqn.2016-06.io.spdk:cnode1");
	strcpy(d.hostnqn, "nqn.2014-08.org.nvmexpress:uuid:test");
	host_capsule(h, (const struct nvme_cmd *)&cc, &d, sizeof(d));
	expect_rsp(h, 0x77, ST_OK);
	const struct nvme_tcp_rsp *r = (const void *)g_rx;
	assert_int_equal(r->rccqe.cdw0, 1);
	assert_int_equal(r->rccqe.sqid, qid);
}

/* Read len bytes at slba via C2HData; returns the data in g_rx + pdo. Checks everything. */
static const uint8_t *host_read(struct host *h, uint16_t cid, uint32_t slba, uint32_t len, bool expect_success)
{
	struct nvme_cmd c;
	make_cmd(&c, NVME_OPC_READ, cid, slba, len, false);
	host_capsule(h, &c, NULL, 0);
	assert_int_equal(host_recv_pdu(h), NVME_TCP_PDU_C2H_DATA);
	const struct nvme_tcp_data_hdr *d = (const void *)g_rx;
	assert_int_equal(d->common.hlen, 24);
	check_hdgst(h);
	assert_int_equal(d->cccid, cid);
	assert_int_equal(d->datao, 0);
	assert_int_equal(d->datal, len);
	assert_true(d->common.flags & NVME_TCP_F_DATA_LAST);
	assert_int_equal(!!(d->common.flags & NVME_TCP_F_DATA_SUCCESS), expect_success);
	assert_int_equal(d->common.pdo, 24 + (h->hd ? 4 : 0));
	assert_int_equal(d->common.plen, d->common.pdo + len + (h->dd ? 4 : 0));
	assert_int_equal(!!(d->common.flags & NVME_TCP_F_DDGST), h->dd);
	if (h->dd) {
		uint32_t crc;
		memcpy(&crc, g_rx + d->common.pdo + len, 4);
		assert_int_equal(crc, dbk_crc32c(g_rx + d->common.pdo, len));
	}
	static uint8_t copy[1u << 20];
	assert_true(len <= sizeof(copy));
	memcpy(copy, g_rx + d->common.pdo, len);
	if (!expect_success)
		expect_rsp(h, cid, ST_OK);
	return copy;
}

static void fill_pattern(uint8_t *p, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)((i * 131u + seed * 7u + (i >> 9)) & 0xff);
}

static void host_session(struct host *h, uint8_t dgst)
{
	host_connect(h);
	host_ic(h, dgst);
	host_fabric_connect(h, 0, 31, 0);
}

/* -------------------------------------------------------------------- tests */

static void test_icreq_digests(void **state)
{
	(void)state;
	for (uint8_t dgst = 0; dgst < 4; dgst++) {
		struct host h;
		host_connect(&h);
		host_ic(&h, dgst);
		host_close(&h);
	}
	wait_no_qpairs();
	assert_int_equal(H.finis, 4);
	assert_int_equal(H.peer_rc, 0);
	assert_int_equal(H.local_rc, 0);
	assert_string_equal(H.peer.traddr, "127.0.0.1");
	assert_string_equal(H.local.adrfam, "IPv4");
	char port[16];
	snprintf(port, sizeof(port), "%u", H.port);
	assert_string_equal(H.local.trsvcid, port);
}

static void test_icreq_bad_pfv(void **state)
{
	(void)state;
	struct host h;
	uint8_t buf[128];
	host_connect(&h);
	build_icreq(buf, 0, 1);
	host_send(&h, buf, sizeof(buf));
	expect_term(&h, NVME_TCP_FES_INVALID_DATA_UNSUPPORTED_PARAMETER, 8, buf, 128);
	host_close(&h);
}

static void test_icreq_bad_hlen_plen(void **state)
{
	(void)state;
	struct host h;
	uint8_t buf[256];
	host_connect(&h);
	build_icreq(buf, 0, 0);
	buf[2] = 127; /* hlen */
	host_send(&h, buf, 128);
	expect_term(&h, NVME_TCP_FES_INVALID_HEADER_FIELD, 2, buf, 8);
	host_close(&h);

	host_connect(&h);
	build_icreq(buf, 0, 0);
	((struct nvme_tcp_common_hdr *)(void *)buf)->plen = 132;
	host_send(&h, buf, 132);
	expect_term(&h, NVME_TCP_FES_INVALID_HEADER_FIELD, 4, buf, 8);
	host_close(&h);

	/* An ICReq with digest flags set in its common header: ICReq has no digests, the flags are ignored. */
	host_connect(&h);
	build_icreq(buf, 0, 0);
	buf[1] = NVME_TCP_F_HDGST | NVME_TCP_F_DDGST;
	host_send(&h, buf, 128);
	assert_int_equal(host_recv_pdu(&h), NVME_TCP_PDU_IC_RESP);
	assert_int_equal(((const struct nvme_tcp_ic_resp *)(const void *)g_rx)->dgst, 0);
	host_close(&h);
}

static void test_sequence_errors(void **state)
{
	(void)state;
	struct host h;
	struct nvme_cmd c;
	/* A capsule before ICReq. */
	host_connect(&h);
	make_cmd(&c, NVME_OPC_FLUSH, 1, 0, 0, false);
	host_capsule(&h, &c, NULL, 0);
	expect_term(&h, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0, g_tx, 8);
	host_close(&h);
	/* A second ICReq. */
	host_connect(&h);
	host_ic(&h, 0);
	uint8_t buf[128];
	build_icreq(buf, 0, 0);
	host_send(&h, buf, 128);
	expect_term(&h, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0, buf, 8);
	host_close(&h);
	assert_int_equal(H.execs, 0);
}

static void test_unknown_pdu_type(void **state)
{
	(void)state;
	struct host h;
	uint8_t types[] = {0x0F, NVME_TCP_PDU_C2H_DATA, NVME_TCP_PDU_R2T, NVME_TCP_PDU_CAPSULE_RESP};
	for (size_t i = 0; i < sizeof(types); i++) {
		host_connect(&h);
		host_ic(&h, 0);
		uint8_t buf[24] = {0};
		struct nvme_tcp_common_hdr *ch = (void *)buf;
		ch->pdu_type = types[i];
		ch->hlen = 24;
		ch->plen = 24;
		host_send(&h, buf, sizeof(buf));
		expect_term(&h, NVME_TCP_FES_INVALID_HEADER_FIELD, 0, buf, 8);
		host_close(&h);
	}
}

static void test_incapsule_write_and_read(void **state)
{
	(void)state;
	struct host h;
	host_session(&h, 0);
	assert_string_equal(H.hostnqn, "nqn.2014-08.org.nvmexpress:uuid:test");
	uint8_t data[4096];
	fill_pattern(data, sizeof(data), 1);
	struct nvme_cmd c;
	make_cmd(&c, NVME_OPC_WRITE, 5, 16, sizeof(data), true);
	host_capsule(&h, &c, data, sizeof(data));
	expect_rsp(&h, 5, ST_OK);
	assert_int_equal(H.last_xfer, DBK_NVMF_XFER_HOST_TO_CTRLR);
	assert_memory_equal(g_disk + 16 * 512, data, sizeof(data));

	const uint8_t *rd = host_read(&h, 6, 16, sizeof(data), false);
	assert_memory_equal(rd, data, sizeof(data));

	/* A failed read: only the CapsuleResp, with the status. */
	make_cmd(&c, NVME_OPC_READ, 7, 0, 4096, false);
	c.nsid = 0xBAD;
	host_capsule(&h, &c, NULL, 0);
	expect_rsp(&h, 7, ST(NVME_SCT_MEDIA_ERROR, NVME_SC_UNRECOVERED_READ_ERROR) | NVME_STATUS_DNR);

	/* No data: flush. */
	make_cmd(&c, NVME_OPC_FLUSH, 8, 0, 0, false);
	host_capsule(&h, &c, NULL, 0);
	expect_rsp(&h, 8, ST_OK);
	assert_int_equal(H.last_xfer, DBK_NVMF_XFER_NONE);
	host_close(&h);
}

static void test_r2t_write_multi(void **state)
{
	(void)state;
	struct host h;
	host_session(&h, 0);
	const uint32_t len = 300000;
	static uint8_t data[300000];
	fill_pattern(data, len, 2);
	struct nvme_cmd c;
	make_cmd(&c, NVME_OPC_WRITE, 9, 100, len, false);
	host_capsule(&h, &c, NULL, 0);
	uint32_t done = 0;
	int r2ts = 0;
	while (done < len) {
		assert_int_equal(host_recv_pdu(&h), NVME_TCP_PDU_R2T);
		const struct nvme_tcp_r2t_hdr *r = (const void *)g_rx;
		assert_int_equal(r->common.hlen, 24);
		assert_int_equal(r->common.plen, 24);
		assert_int_equal(r->cccid, 9);
		assert_int_equal(r->r2to, done);
		uint32_t exp = len - done < 131072 ? len - done : 131072;
		assert_int_equal(r->r2tl, exp);
		uint16_t ttag = r->ttag;
		r2ts++;
		/* Three H2CData PDUs of uneven sizes per R2T, all sent in one write. */
		uint32_t parts[3] = {exp / 3, exp / 3 + 1, exp - 2 * (exp / 3) - 1};
		size_t n = 0;
		uint32_t o = done;
		for (int i = 0; i < 3; i++) {
			n += build_h2c(&h, g_tx + n, 9, ttag, o, data + o, parts[i], i == 2);
			o += parts[i];
		}
		host_send(&h, g_tx, n);
		done = o;
	}
	assert_int_equal(r2ts, 3);
	expect_rsp(&h, 9, ST_OK);
	assert_memory_equal(g_disk + 100 * 512, data, len);

	const uint8_t *rd = host_read(&h, 10, 100, len, false);
	assert_memory_equal(rd, data, len);
	host_close(&h);
}

static void test_c2h_data_success(void **state)
{
	(void)state;
	struct host h;
	host_connect(&h);
	host_ic(&h, 0);
	host_fabric_connect(&h, 1, 63, 0x4); /* SQ flow control disabled */
	fill_pattern(g_disk, 8192, 3);
	const uint8_t *rd = host_read(&h, 11, 0, 8192, true);
	assert_memory_equal(rd, g_disk, 8192);
	/* No CapsuleResp for the read: the next PDU is the flush's response. */
	struct nvme_cmd c;
	make_cmd(&c, NVME_OPC_FLUSH, 12, 0, 0, false);
	host_capsule(&h, &c, NULL, 0);
	expect_rsp(&h, 12, ST_OK);
	host_close(&h);
}

static void test_c2h_success_off(void **state)
{
	(void)state;
	struct host h;
	host_connect(&h);
	host_ic(&h, 0);
	host_fabric_connect(&h, 1, 63, 0x4);
	host_read(&h, 11, 0, 4096, false); /* c2h_success = false: response follows */
	host_close(&h);
}

static void test_digests(void **state)
{
	(void)state;
	struct host h;
	host_session(&h, 3);
	uint8_t data[4096];
	fill_pattern(data, sizeof(data), 4);
	struct nvme_cmd c;
	make_cmd(&c, NVME_OPC_WRITE, 20, 8, sizeof(data), true);
	host_capsule(&h, &c, data, sizeof(data));
	expect_rsp(&h, 20, ST_OK);
	const uint8_t *rd = host_read(&h, 21, 8, sizeof(data), false);
	assert_memory_equal(rd, data, sizeof(data));

	/* R2T path with digests. */
	static uint8_t big[20000];
	fill_pattern(big, sizeof(big), 5);
	make_cmd(&c, NVME_OPC_WRITE, 22, 64, sizeof(big), false);
	host_capsule(&h, &c, NULL, 0);
	assert_int_equal(host_recv_pdu(&h), NVME_TCP_PDU_R2T);
	check_hdgst(&h);
	const struct nvme_tcp_r2t_hdr *r = (const void *)g_rx;
	assert_int_equal(r->common.plen, 28);
	assert_int_equal(r->r2tl, sizeof(big));
	uint16_t ttag = r->ttag;
	size_t n = build_h2c(&h, g_tx, 22, ttag, 0, big, sizeof(big), true);
	host_send(&h, g_tx, n);
	expect_rsp(&h, 22, ST_OK);
	assert_memory_equal(g_disk + 64 * 512, big, sizeof(big));

	/* Bad data digest on in-capsule data: transient transport error, connection stays. */
	int execs0 = H.execs;
	make_cmd(&c, NVME_OPC_WRITE, 23, 200, sizeof(data), true);
	n = build_capsule(&h, g_tx, &c, data, sizeof(data));
	g_tx[n - 1] ^= 0x5a;
	host_send(&h, g_tx, n);
	expect_rsp(&h, 23, ST(NVME_SCT_GENERIC, NVME_SC_TRANSIENT_TRANSPORT_ERROR));

	/* Bad data digest on H2CData: transient transport error after all data. */
	int execs = H.execs;
	assert_int_equal(execs, execs0);
	make_cmd(&c, NVME_OPC_WRITE, 24, 300, sizeof(big), false);
	host_capsule(&h, &c, NULL, 0);
	assert_int_equal(host_recv_pdu(&h), NVME_TCP_PDU_R2T);
	ttag = ((const struct nvme_tcp_r2t_hdr *)(const void *)g_rx)->ttag;
	n = build_h2c(&h, g_tx, 24, ttag, 0, big, sizeof(big), true);
	g_tx[n - 2] ^= 1;
	host_send(&h, g_tx, n);
	expect_rsp(&h, 24, ST(NVME_SCT_GENERIC, NVME_SC_TRANSIENT_TRANSPORT_ERROR));
	assert_int_equal(H.execs, execs);

	/* Bad header digest: fatal. */
	make_cmd(&c, NVME_OPC_FLUSH, 25, 0, 0, false);
	n = build_capsule(&h, g_tx, &c, NULL, 0);
	g_tx[72] ^= 0xff;
	host_send(&h, g_tx, n);
	expect_term(&h, NVME_TCP_FES_HDGST_ERROR, 0, g_tx, 76);
	host_close(&h);

	/* Digest flags inconsistent with the negotiation. */
	host_session(&h, 0);
	h.hd = true;
	make_cmd(&c, NVME_OPC_FLUSH, 26, 0, 0, false);
	n = build_capsule(&h, g_tx, &c, NULL, 0);
	host_send(&h, g_tx, n);
	expect_term(&h, NVME_TCP_FES_INVALID_HEADER_FIELD, 1, g_tx, 8);
	host_close(&h);
}

/* Start a 20000-byte R2T write with cid; returns the ttag. */
static uint16_t start_r2t_write(struct host *h, uint16_t cid)
{
	struct nvme_cmd c;
	make_cmd(&c, NVME_OPC_WRITE, cid, 0, 20000, false);
	host_capsule(h, &c, NULL, 0);
	assert_int_equal(host_recv_pdu(h), NVME_TCP_PDU_R2T);
	return ((const struct nvme_tcp_r2t_hdr *)(const void *)g_rx)->ttag;
}

static void test_h2c_errors(void **state)
{
	(void)state;
	static uint8_t data[40000];
	struct host h;
	size_t n;

	/* Wrong ttag. */
	host_session(&h, 0);
	uint16_t ttag = start_r2t_write(&h, 30);
	n = build_h2c(&h, g_tx, 30, (uint16_t)(ttag + 1), 0, data, 20000, true);
	host_send(&h, g_tx, n);
	expect_term(&h, NVME_TCP_FES_INVALID_HEADER_FIELD, 10, g_tx, 24);
	host_close(&h);

	/* ttag beyond the request array. */
	host_session(&h, 0);
	ttag = start_r2t_write(&h, 30);
	n = build_h2c(&h, g_tx, 30, 60000, 0, data, 20000, true);
	host_send(&h, g_tx, n);
	expect_term(&h, NVME_TCP_FES_INVALID_HEADER_FIELD, 10, g_tx, 24);
	host_close(&h);

	/* Wrong cccid. */
	host_session(&h, 0);
	ttag = start_r2t_write(&h, 31);
	n = build_h2c(&h, g_tx, 32, ttag, 0, data, 20000, true);
	host_send(&h, g_tx, n);
	expect_term(&h, NVME_TCP_FES_INVALID_HEADER_FIELD, 8, g_tx, 24);
	host_close(&h);

	/* Wrong offset. */
	host_session(&h, 0);
	ttag = start_r2t_write(&h, 33);
	n = build_h2c(&h, g_tx, 33, ttag, 4, data, 1000, false);
	host_send(&h, g_tx, n);
	expect_term(&h, NVME_TCP_FES_DATA_TRANSFER_OUT_OF_RANGE, 12, g_tx, 24);
	host_close(&h);

	/* More data than the R2T asked for. */
	host_session(&h, 0);
	ttag = start_r2t_write(&h, 34);
	n = build_h2c(&h, g_tx, 34, ttag, 0, data, 20004, true);
	host_send(&h, g_tx, n);
	expect_term(&h, NVME_TCP_FES_DATA_TRANSFER_OUT_OF_RANGE, 16, g_tx, 24);
	host_close(&h);

	/* datal disagrees with plen. */
	host_session(&h, 0);
	ttag = start_r2t_write(&h, 35);
	n = build_h2c(&h, g_tx, 35, ttag, 0, data, 1000, false);
	((struct nvme_tcp_data_hdr *)(void *)g_tx)->datal = 999;
	host_send(&h, g_tx, n);
	expect_term(&h, NVME_TCP_FES_INVALID_HEADER_FIELD, 16, g_tx, 24);
	host_close(&h);

	/* H2CData above maxh2cdata. */
	host_session(&h, 0);
	struct nvme_tcp_data_hdr d;
	memset(&d, 0, sizeof(d));
	d.common.pdu_type = NVME_TCP_PDU_H2C_DATA;
	d.common.hlen = 24;
	d.common.pdo = 24;
	d.common.plen = 24 + 131072 + 4;
	host_send(&h, &d, sizeof(d));
	expect_term(&h, NVME_TCP_FES_DATA_TRANSFER_LIMIT_EXCEEDED, 4, &d, 8);
	host_close(&h);

	/* H2CData without an R2T. */
	host_session(&h, 0);
	n = build_h2c(&h, g_tx, 1, 0, 0, data, 100, true);
	host_send(&h, g_tx, n);
	expect_term(&h, NVME_TCP_FES_INVALID_HEADER_FIELD, 10, g_tx, 24);
	host_close(&h);

	/* DATA_LAST before the end of the R2T. */
	host_session(&h, 0);
	ttag = start_r2t_write(&h, 36);
	n = build_h2c(&h, g_tx, 36, ttag, 0, data, 1000, true);
	host_send(&h, g_tx, n);
	expect_term(&h, NVME_TCP_FES_INVALID_HEADER_FIELD, 1, g_tx, 24);
	host_close(&h);
}

static void test_capsule_length_errors(void **state)
{
	(void)state;
	struct host h;
	struct nvme_cmd c;
	static uint8_t data[16384];
	host_session(&h, 0);
	int execs = H.execs;

	/* Bidirectional opcode without data: up to the core; with data: Invalid Opcode without exec. */
	make_cmd(&c, 0xC3, 39, 0, 0, false);
	host_capsule(&h, &c, NULL, 0);
	expect_rsp(&h, 39, ST(NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE) | NVME_STATUS_DNR);
	assert_int_equal(H.execs, execs + 1);
	assert_int_equal(H.last_opc, 0xC3);
	assert_int_equal(H.last_xfer, DBK_NVMF_XFER_NONE);
	execs = H.execs;
	make_cmd(&c, 0xC3, 40, 0, 4096, false);
	host_capsule(&h, &c, NULL, 0);
	expect_rsp(&h, 40, ST(NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE) | NVME_STATUS_DNR);
	/* SGL says in-capsule but less data present. */
	make_cmd(&c, NVME_OPC_WRITE, 41, 0, 2048, true);
	host_capsule(&h, &c, data, 1024);
	expect_rsp(&h, 41, ST(NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID) | NVME_STATUS_DNR);
	/* In-capsule offset != 0. */
	make_cmd(&c, NVME_OPC_WRITE, 42, 0, 1024, true);
	c.sgl1.address = 16;
	host_capsule(&h, &c, data, 1024);
	expect_rsp(&h, 42, ST(NVME_SCT_GENERIC, NVME_SC_INVALID_SGL_OFFSET) | NVME_STATUS_DNR);
	/* Transfer larger than max_io_size: failed without exec. */
	make_cmd(&c, NVME_OPC_READ, 43, 0, (1u << 20) + 4096, false);
	host_capsule(&h, &c, NULL, 0);
	expect_rsp(&h, 43, ST(NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID) | NVME_STATUS_DNR);
	/* Unsupported SGL type. */
	make_cmd(&c, NVME_OPC_READ, 44, 0, 4096, false);
	c.sgl1.type = 0x2;
	c.sgl1.subtype = 0;
	host_capsule(&h, &c, NULL, 0);
	expect_rsp(&h, 44, ST(NVME_SCT_GENERIC, NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID) | NVME_STATUS_DNR);
	assert_int_equal(H.execs, execs);
	/* Still usable. */
	make_cmd(&c, NVME_OPC_FLUSH, 45, 0, 0, false);
	host_capsule(&h, &c, NULL, 0);
	expect_rsp(&h, 45, ST_OK);
	/* In-capsule data beyond the admin queue limit (8192): fatal. */
	make_cmd(&c, NVME_OPC_WRITE, 46, 0, 8196, true);
	size_t n = build_capsule(&h, g_tx, &c, data, 8196);
	host_send(&h, g_tx, n);
	expect_term(&h, NVME_TCP_FES_DATA_TRANSFER_LIMIT_EXCEEDED, 4, g_tx, 8);
	host_close(&h);

	/* I/O queue: in-capsule limit is in_capsule_data_size (4096). */
	host_connect(&h);
	host_ic(&h, 0);
	host_fabric_connect(&h, 1, 127, 0);
	make_cmd(&c, NVME_OPC_WRITE, 47, 0, 4100, true);
	n = build_capsule(&h, g_tx, &c, data, 4100);
	host_send(&h, g_tx, n);
	expect_term(&h, NVME_TCP_FES_DATA_TRANSFER_LIMIT_EXCEEDED, 4, g_tx, 8);
	host_close(&h);

	/* In-capsule data beyond the SGL's length: fatal (data beyond the declared length). */
	host_session(&h, 0);
	make_cmd(&c, NVME_OPC_WRITE, 50, 0, 512, true);
	n = build_capsule(&h, g_tx, &c, data, 1024);
	host_send(&h, g_tx, n);
	expect_term(&h, NVME_TCP_FES_DATA_TRANSFER_OUT_OF_RANGE, 4, g_tx, 72);
	host_close(&h);

	/* Bad pdo / plen. */
	host_session(&h, 0);
	make_cmd(&c, NVME_OPC_WRITE, 48, 0, 512, true);
	n = build_capsule(&h, g_tx, &c, data, 512);
	((struct nvme_tcp_common_hdr *)(void *)g_tx)->pdo = 70;
	host_send(&h, g_tx, n);
	expect_term(&h, NVME_TCP_FES_INVALID_HEADER_FIELD, 3, g_tx, 8);
	host_close(&h);
	host_session(&h, 0);
	make_cmd(&c, NVME_OPC_FLUSH, 49, 0, 0, false);
	n = build_capsule(&h, g_tx, &c, NULL, 0);
	((struct nvme_tcp_common_hdr *)(void *)g_tx)->plen = 71;
	host_send(&h, g_tx, n);
	expect_term(&h, NVME_TCP_FES_INVALID_HEADER_FIELD, 4, g_tx, 8);
	host_close(&h);
}

static void test_byte_by_byte(void **state)
{
	(void)state;
	struct host h;
	host_connect(&h);
	static uint8_t stream[32768];
	size_t n = 0;
	build_icreq(stream, 3, 0);
	n += 128;
	h.hd = h.dd = true;
	struct nvmf_connect_cmd cc;
	memset(&cc, 0, sizeof(cc));
	cc.opc = NVME_OPC_FABRIC;
	cc.cid = 1;
	cc.fctype = NVMF_FCTYPE_CONNECT;
	cc.sgl1.type = NVME_SGL_TYPE_DATA_BLOCK;
	cc.sgl1.subtype = NVME_SGL_SUBTYPE_OFFSET;
	cc.sgl1.length = 1024;
	cc.sqsize = 31;
	struct nvmf_connect_data d;
	memset(&d, 0, sizeof(d));
	strcpy(d.hostnqn, "nqn.bytewise");
	n += build_capsule(&h, stream + n, (const struct nvme_cmd *)&cc, &d, sizeof(d));
	uint8_t data[2048];
	fill_pattern(data, sizeof(data), 6);
	struct nvme_cmd c;
	make_cmd(&c, NVME_OPC_WRITE, 2, 1000, sizeof(data), true);
	n += build_capsule(&h, stream + n, &c, data, sizeof(data));
	make_cmd(&c, NVME_OPC_READ, 3, 1000, sizeof(data), false);
	n += build_capsule(&h, stream + n, &c, NULL, 0);
	for (size_t i = 0; i < n; i++) {
		host_send(&h, stream + i, 1);
		if (i % 4 == 0)
			usleep(20);
	}
	assert_int_equal(host_recv_pdu(&h), NVME_TCP_PDU_IC_RESP);
	expect_rsp(&h, 1, ST_OK);
	assert_string_equal(H.hostnqn, "nqn.bytewise");
	expect_rsp(&h, 2, ST_OK);
	assert_int_equal(host_recv_pdu(&h), NVME_TCP_PDU_C2H_DATA);
	assert_memory_equal(g_rx + 28, data, sizeof(data));
	expect_rsp(&h, 3, ST_OK);

	/* An R2T write whose H2CData arrives byte by byte (pool buffers). */
	static uint8_t big[12000];
	fill_pattern(big, sizeof(big), 7);
	make_cmd(&c, NVME_OPC_WRITE, 4, 2000, sizeof(big), false);
	host_capsule(&h, &c, NULL, 0);
	assert_int_equal(host_recv_pdu(&h), NVME_TCP_PDU_R2T);
	uint16_t ttag = ((const struct nvme_tcp_r2t_hdr *)(const void *)g_rx)->ttag;
	n = build_h2c(&h, stream, 4, ttag, 0, big, sizeof(big), true);
	for (size_t i = 0; i < n; i++) {
		host_send(&h, stream + i, 1);
		if (i % 16 == 0)
			usleep(20);
	}
	expect_rsp(&h, 4, ST_OK);
	assert_memory_equal(g_disk + 2000 * 512, big, sizeof(big));
	host_close(&h);
}

static void test_merged_pdus(void **state)
{
	(void)state;
	struct host h;
	host_connect(&h);
	host_ic(&h, 0);
	host_fabric_connect(&h, 1, 127, 0);
	/* 32 in-capsule writes and 64 reads in one send. */
	static uint8_t stream[32 * (72 + 1024) + 64 * 72];
	size_t n = 0;
	uint8_t data[1024];
	struct nvme_cmd c;
	for (int i = 0; i < 32; i++) {
		fill_pattern(data, sizeof(data), 100 + (uint32_t)i);
		make_cmd(&c, NVME_OPC_WRITE, (uint16_t)(100 + i), 3000 + (uint32_t)i * 2, sizeof(data), true);
		n += build_capsule(&h, stream + n, &c, data, sizeof(data));
	}
	host_send(&h, stream, n);
	bool seen[32] = {false};
	for (int i = 0; i < 32; i++) {
		assert_int_equal(host_recv_pdu(&h), NVME_TCP_PDU_CAPSULE_RESP);
		const struct nvme_tcp_rsp *r = (const void *)g_rx;
		assert_int_equal(nvme_cpl_status(&r->rccqe), 0);
		assert_true(r->rccqe.cid >= 100 && r->rccqe.cid < 132);
		seen[r->rccqe.cid - 100] = true;
	}
	for (int i = 0; i < 32; i++)
		assert_true(seen[i]);
	n = 0;
	for (int i = 0; i < 64; i++) {
		make_cmd(&c, NVME_OPC_READ, (uint16_t)(200 + i), 3000 + (uint32_t)(i % 32) * 2, 1024, false);
		n += build_capsule(&h, stream + n, &c, NULL, 0);
	}
	host_send(&h, stream, n);
	int got = 0, rsps = 0;
	while (got < 64 || rsps < 64) {
		int t = host_recv_pdu(&h);
		if (t == NVME_TCP_PDU_C2H_DATA) {
			const struct nvme_tcp_data_hdr *dh = (const void *)g_rx;
			int i = dh->cccid - 200;
			assert_true(i >= 0 && i < 64);
			fill_pattern(data, sizeof(data), 100 + (uint32_t)(i % 32));
			assert_memory_equal(g_rx + 24, data, sizeof(data));
			got++;
		} else {
			assert_int_equal(t, NVME_TCP_PDU_CAPSULE_RESP);
			rsps++;
		}
	}
	host_close(&h);
}

static void test_queue_depth_and_cid_conflict(void **state)
{
	(void)state;
	struct host h;
	struct nvme_cmd c;
	host_connect(&h);
	host_ic(&h, 0);
	host_fabric_connect(&h, 1, 3, 0); /* 4 entries */
	make_cmd(&c, OPC_HOLD, 7, 0, 0, false);
	host_capsule(&h, &c, NULL, 0);
	/* Same CID while 7 is outstanding: Command ID Conflict, not executed. */
	int execs;
	usleep(20000);
	execs = H.execs;
	make_cmd(&c, NVME_OPC_FLUSH, 7, 0, 0, false);
	host_capsule(&h, &c, NULL, 0);
	expect_rsp(&h, 7, ST(NVME_SCT_GENERIC, NVME_SC_COMMAND_ID_CONFLICT) | NVME_STATUS_DNR);
	assert_int_equal(H.execs, execs);
	on_reactor(release_held, NULL);
	expect_rsp(&h, 7, ST_OK);

	/* Fill the queue (4) and send one more: fatal. */
	for (uint16_t i = 0; i < 4; i++) {
		make_cmd(&c, OPC_HOLD, (uint16_t)(50 + i), 0, 0, false);
		host_capsule(&h, &c, NULL, 0);
	}
	make_cmd(&c, OPC_HOLD, 60, 0, 0, false);
	host_capsule(&h, &c, NULL, 0);
	expect_term(&h, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0, g_tx, 72);
	host_close(&h);
	wait_no_qpairs();
	assert_int_equal(H.nheld, 0);
}

static void test_h2c_term_req_and_eof(void **state)
{
	(void)state;
	struct host h;
	host_session(&h, 0);
	struct nvme_tcp_term_req_hdr t;
	memset(&t, 0, sizeof(t));
	t.common.pdu_type = NVME_TCP_PDU_H2C_TERM_REQ;
	t.common.hlen = 24;
	t.common.plen = 24;
	t.fes = 1;
	host_send(&h, &t, sizeof(t));
	host_expect_eof(&h);
	host_close(&h);
	/* EOF in the middle of an R2T transfer: pool buffers come back. */
	host_session(&h, 0);
	start_r2t_write(&h, 5);
	host_close(&h);
	wait_no_qpairs();
	assert_int_equal(H.disconnects, 2);
}

static void dump_stats(void *arg)
{
	H.ops->poll_group_dump_stats(H.pg, arg);
}

static void dump_opts(void *arg)
{
	H.ops->dump_opts_json(H.t, arg);
}

static void test_stats_and_opts(void **state)
{
	(void)state;
	struct host h;
	host_session(&h, 0);
	host_read(&h, 1, 0, 100000, false);
	host_close(&h);
	wait_no_qpairs();
	json_t *s = json_object();
	on_reactor(dump_stats, s);
	assert_true(json_integer_value(json_object_get(s, "pdus_received")) >= 3);
	assert_true(json_integer_value(json_object_get(s, "bytes_sent")) >= 100000);
	assert_int_equal(json_integer_value(json_object_get(s, "free_buffers")),
			 json_integer_value(json_object_get(s, "total_buffers")));
	json_decref(s);
	json_t *o = json_object();
	on_reactor(dump_opts, o);
	assert_int_equal(json_integer_value(json_object_get(o, "max_io_size")), 1u << 20);
	assert_int_equal(json_integer_value(json_object_get(o, "io_unit_size")), 65536);
	assert_int_equal(json_integer_value(json_object_get(o, "max_io_qpairs_per_ctrlr")), 127);
	assert_true(json_is_true(json_object_get(o, "c2h_success")));
	json_decref(o);
}

/* A large H2CData payload arriving after its header: received straight into the data buffers. */
static void test_direct_recv(void **state)
{
	(void)state;
	struct host h;
	host_session(&h, 2);
	static uint8_t data[100000];
	fill_pattern(data, sizeof(data), 11);
	struct nvme_cmd c;
	make_cmd(&c, NVME_OPC_WRITE, 70, 500, sizeof(data), false);
	host_capsule(&h, &c, NULL, 0);
	assert_int_equal(host_recv_pdu(&h), NVME_TCP_PDU_R2T);
	uint16_t ttag = ((const struct nvme_tcp_r2t_hdr *)(const void *)g_rx)->ttag;
	size_t n = build_h2c(&h, g_tx, 70, ttag, 0, data, sizeof(data), true);
	/* Header and a few bytes, then (after the target drained its socket) the rest plus a flush capsule. */
	host_send(&h, g_tx, 24 + 100);
	usleep(50000);
	make_cmd(&c, NVME_OPC_FLUSH, 71, 0, 0, false);
	n += build_capsule(&h, g_tx + n, &c, NULL, 0);
	host_send(&h, g_tx + 124, n - 124);
	expect_rsp(&h, 70, ST_OK);
	expect_rsp(&h, 71, ST_OK);
	assert_memory_equal(g_disk + 500 * 512, data, sizeof(data));
	host_close(&h);
	wait_no_qpairs();
	json_t *s = json_object();
	on_reactor(dump_stats, s);
	assert_true(json_integer_value(json_object_get(s, "bytes_received_direct")) > 50000);
	json_decref(s);
}

static void read_lends(void *arg)
{
	int *v = arg;
	v[0] = H.lends;
	v[1] = H.releases;
}

static void set_lend(void *arg)
{
	H.lend = *(bool *)arg;
	H.lends = H.releases = 0;
}

/*
 * Zero-copy reads: the core lends its memory; payloads of 16 KiB and more go out by vmsplice+splice,
 * smaller ones by sendmsg from the lent memory; the host gets the right bytes and every lent buffer is
 * released by the time the qpair is gone.
 */
static void test_lent_reads(void **state)
{
	(void)state;
	bool on = true;
	on_reactor(set_lend, &on);
	struct host h;
	host_session(&h, 0);
	fill_pattern(g_disk, DISK_SIZE, 21);
	static const uint32_t sizes[] = {4096, 16384, 131072, 1u << 20, 20480};
	uint32_t slba = 0, spliced = 0;
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		const uint8_t *rd = host_read(&h, (uint16_t)(80 + i), slba, sizes[i], false);
		assert_memory_equal(rd, g_disk + (size_t)slba * 512, sizes[i]);
		if (sizes[i] >= 16384)
			spliced += sizes[i];
		slba += sizes[i] / 512 + 3;
	}
	/* Two reads back to back: the second PDU's header follows the first's spliced payload. */
	struct nvme_cmd c;
	make_cmd(&c, NVME_OPC_READ, 90, 8, 65536, false);
	size_t n = build_capsule(&h, g_tx, &c, NULL, 0);
	make_cmd(&c, NVME_OPC_READ, 91, 1000, 32768, false);
	n += build_capsule(&h, g_tx + n, &c, NULL, 0);
	host_send(&h, g_tx, n);
	for (uint16_t cid = 90; cid <= 91; cid++) {
		assert_int_equal(host_recv_pdu(&h), NVME_TCP_PDU_C2H_DATA);
		const struct nvme_tcp_data_hdr *d = (const void *)g_rx;
		assert_int_equal(d->cccid, cid);
		assert_memory_equal(g_rx + d->common.pdo, g_disk + (cid == 90 ? 8 : 1000) * 512, d->datal);
		expect_rsp(&h, cid, ST_OK);
	}
	spliced += 65536 + 32768;
	host_close(&h);
	wait_no_qpairs();
	int lr[2];
	on_reactor(read_lends, lr);
	assert_int_equal(lr[0], 7);
	assert_int_equal(lr[1], 7);
	json_t *s = json_object();
	on_reactor(dump_stats, s);
	assert_int_equal(json_integer_value(json_object_get(s, "bytes_sent_zcopy")), spliced);
	assert_int_equal(json_integer_value(json_object_get(s, "c2h_pdus_lent")), 7);
	json_decref(s);
	on = false;
	on_reactor(set_lend, &on);
}

/* With a data digest nothing is lent (the CRC must cover bytes that cannot change under it). */
static void test_lent_reads_not_with_ddgst(void **state)
{
	(void)state;
	bool on = true;
	on_reactor(set_lend, &on);
	struct host h;
	host_session(&h, 2);
	fill_pattern(g_disk, 262144, 5);
	const uint8_t *rd = host_read(&h, 5, 0, 262144, false);
	assert_memory_equal(rd, g_disk, 262144);
	host_close(&h);
	wait_no_qpairs();
	int lr[2];
	on_reactor(read_lends, lr);
	assert_int_equal(lr[0], 0);
	on = false;
	on_reactor(set_lend, &on);
}

static void send_reads(struct host *h, uint16_t first, uint16_t count)
{
	size_t n = 0;
	struct nvme_cmd c;
	for (uint16_t cid = first; cid < first + count; cid++) {
		make_cmd(&c, NVME_OPC_READ, cid, (uint32_t)(cid % 16u) * 256u, 131072, false);
		n += build_capsule(h, g_tx + n, &c, NULL, 0);
	}
	host_send(h, g_tx, n);
}

static void wait_lends(int want_lends, int want_releases, int *lr)
{
	for (int i = 0; i < 500 && (lr[0] < want_lends || lr[1] < want_releases); i++) {
		usleep(10000);
		on_reactor(read_lends, lr);
	}
}

/*
 * A host that stops reading with 12.5 MiB of lent payload queued: within a fraction of a second the
 * stalled payloads are copied out and the lent memory given back (so the bdev is not pinned by the
 * host); the host, reading again, gets the right bytes. Then a host that vanishes with payload queued.
 */
static void test_lent_reads_stalled_host(void **state)
{
	(void)state;
	bool on = true;
	on_reactor(set_lend, &on);
	fill_pattern(g_disk, DISK_SIZE, 33);
	struct host h;
	host_connect(&h);
	host_ic(&h, 0);
	host_fabric_connect(&h, 1, 127, 0);
	send_reads(&h, 1, 100);
	int lr[2] = {0, 0};
	wait_lends(100, 100, lr);
	assert_int_equal(lr[0], 100);
	assert_int_equal(lr[1], 100);	/* all given back while the host still does not read */
	json_t *s = json_object();
	on_reactor(dump_stats, s);
	assert_true(json_integer_value(json_object_get(s, "lent_payloads_bounced")) > 0);
	json_decref(s);
	for (uint16_t cid = 1; cid <= 100; cid++) {
		assert_int_equal(host_recv_pdu(&h), NVME_TCP_PDU_C2H_DATA);
		const struct nvme_tcp_data_hdr *d = (const void *)g_rx;
		assert_int_equal(d->cccid, cid);
		assert_int_equal(d->datal, 131072);
		assert_memory_equal(g_rx + d->common.pdo, g_disk + (size_t)(cid % 16u) * 131072u, 131072);
		expect_rsp(&h, cid, ST_OK);
	}
	/* Vanish (RST) with payload queued: everything is released once the qpair is gone. */
	send_reads(&h, 101, 100);
	wait_lends(200, 0, lr);
	host_reset(&h);
	on_reactor(read_lends, lr);
	assert_int_equal(lr[0], 200);
	assert_int_equal(lr[1], 200);
	on = false;
	on_reactor(set_lend, &on);
}

static void read_wlends(void *arg)
{
	int *v = arg;
	v[0] = H.wlends;
	v[1] = H.wlend_execs;
	v[2] = H.releases;
}

static void set_lend_write(void *arg)
{
	H.lend_write = *(bool *)arg;
	H.wlends = H.wlend_execs = H.releases = 0;
}

/* Poll the write-lend counters (v: lends, in-place execs, releases) until releases >= want or 3 s pass. */
static void wait_wlend_releases(int want, int *v)
{
	for (int i = 0; i < 300 && v[2] < want; i++) {
		usleep(10000);
		on_reactor(read_wlends, v);
	}
}

static int64_t stat_of(const char *name)
{
	json_t *s = json_object();
	on_reactor(dump_stats, s);
	int64_t v = json_integer_value(json_object_get(s, name));
	json_decref(s);
	return v;
}

/* One R2T write of len bytes at slba, its H2CData cut into pieces of at most piece bytes. */
static void host_r2t_write(struct host *h, uint16_t cid, uint32_t slba, const uint8_t *data, uint32_t len,
			   uint32_t piece)
{
	struct nvme_cmd c;
	make_cmd(&c, NVME_OPC_WRITE, cid, slba, len, false);
	host_capsule(h, &c, NULL, 0);
	uint32_t done = 0;
	while (done < len) {
		assert_int_equal(host_recv_pdu(h), NVME_TCP_PDU_R2T);
		const struct nvme_tcp_r2t_hdr *r = (const void *)g_rx;
		assert_int_equal(r->cccid, cid);
		assert_int_equal(r->r2to, done);
		uint16_t ttag = r->ttag;
		uint32_t end = done + r->r2tl;
		size_t n = 0;
		while (done < end) {
			uint32_t p = end - done < piece ? end - done : piece;
			n += build_h2c(h, g_tx + n, cid, ttag, done, data + done, p, done + p == end);
			done += p;
		}
		host_send(h, g_tx, n);
	}
	expect_rsp(h, cid, ST_OK);
}

/*
 * Zero-copy writes: H2C data lands straight in the (core double's) bdev memory, across one or several R2Ts
 * and H2CData PDUs of uneven sizes; so does in-capsule data; a capsule whose data does not match its command is
 * refused as before, without touching the bdev; nothing stays lent after the qpair is gone.
 */
static void test_lent_writes(void **state)
{
	(void)state;
	bool on = true;
	on_reactor(set_lend_write, &on);
	struct host h;
	host_session(&h, 0);
	static uint8_t data[1u << 20];
	static const uint32_t sizes[] = {8192, 131072, 300000 / 512 * 512, 1u << 20};
	uint32_t slba = 7, lent_bytes = 0;
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		fill_pattern(data, sizes[i], 40 + i);
		host_r2t_write(&h, (uint16_t)(20 + i), slba, data, sizes[i], i == 2 ? 50000 : 131072);
		assert_memory_equal(g_disk + (size_t)slba * 512, data, sizes[i]);
		lent_bytes += sizes[i];
		slba += sizes[i] / 512 + 5;
	}
	/* In-capsule data: received into the lent blocks too. */
	fill_pattern(data, 4096, 50);
	struct nvme_cmd c;
	make_cmd(&c, NVME_OPC_WRITE, 30, 3000, 4096, true);
	host_capsule(&h, &c, data, 4096);
	expect_rsp(&h, 30, ST_OK);
	assert_memory_equal(g_disk + 3000 * 512, data, 4096);
	lent_bytes += 4096;
	/* A capsule carrying less data than its command describes: refused, and the bdev is not written. */
	memset(g_disk + 3100 * 512, 0xEE, 8192);
	make_cmd(&c, NVME_OPC_WRITE, 31, 3100, 8192, true);
	host_capsule(&h, &c, data, 4096);
	expect_rsp(&h, 31, ST(NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID) | NVME_STATUS_DNR);
	for (int i = 0; i < 8192; i++)
		assert_int_equal(g_disk[3100 * 512 + i], 0xEE);
	host_close(&h);
	wait_no_qpairs();
	int v[3];
	on_reactor(read_wlends, v);
	assert_int_equal(v[0], 5);	/* lent */
	assert_int_equal(v[1], 5);	/* executed in place */
	assert_int_equal(v[2], 0);	/* none had to be given back */
	assert_int_equal(stat_of("writes_lent"), 5);
	assert_int_equal(stat_of("bytes_received_zcopy"), lent_bytes);
	on = false;
	on_reactor(set_lend_write, &on);
}

/* With a data digest no write is lent (bytes already in the bdev could not be taken back on a bad digest). */
static void test_lent_writes_not_with_ddgst(void **state)
{
	(void)state;
	bool on = true;
	on_reactor(set_lend_write, &on);
	struct host h;
	host_session(&h, 2);
	static uint8_t data[65536];
	fill_pattern(data, sizeof(data), 60);
	host_r2t_write(&h, 5, 64, data, sizeof(data), 65536);
	assert_memory_equal(g_disk + 64 * 512, data, sizeof(data));
	struct nvme_cmd c;
	make_cmd(&c, NVME_OPC_WRITE, 6, 1024, 4096, true);
	host_capsule(&h, &c, data + 4096, 4096);
	expect_rsp(&h, 6, ST_OK);
	assert_memory_equal(g_disk + 1024 * 512, data + 4096, 4096);
	host_close(&h);
	wait_no_qpairs();
	int v[3];
	on_reactor(read_wlends, v);
	assert_int_equal(v[0], 0);
	on = false;
	on_reactor(set_lend_write, &on);
}

/*
 * A host that stops sending in the middle of a lent write's data: within a fraction of a second the
 * write moves to a private buffer (the bytes so far copied) and the bdev memory is given back; when the
 * host resumes, the write completes with the right bytes. Then a host that vanishes mid-data.
 */
static void test_lent_writes_stalled_host(void **state)
{
	(void)state;
	bool on = true;
	on_reactor(set_lend_write, &on);
	struct host h;
	host_session(&h, 0);
	static uint8_t data[131072];
	fill_pattern(data, sizeof(data), 70);
	memset(g_disk + 256 * 512, 0, sizeof(data));
	struct nvme_cmd c;
	make_cmd(&c, NVME_OPC_WRITE, 40, 256, sizeof(data), false);
	host_capsule(&h, &c, NULL, 0);
	assert_int_equal(host_recv_pdu(&h), NVME_TCP_PDU_R2T);
	uint16_t ttag = ((const struct nvme_tcp_r2t_hdr *)(const void *)g_rx)->ttag;
	size_t n = build_h2c(&h, g_tx, 40, ttag, 0, data, sizeof(data), true);
	size_t first = 24 + 50000;
	host_send(&h, g_tx, first);	/* header and 50000 bytes of data, then silence */
	int v[3] = {0, 0, 0};
	wait_wlend_releases(1, v);
	assert_int_equal(v[0], 1);
	assert_int_equal(v[2], 1);	/* given back while the host is silent */
	assert_int_equal(stat_of("lent_writes_bounced"), 1);
	host_send(&h, g_tx + first, n - first);
	expect_rsp(&h, 40, ST_OK);
	assert_memory_equal(g_disk + 256 * 512, data, sizeof(data));
	on_reactor(read_wlends, v);
	assert_int_equal(v[1], 0);	/* executed from the private buffer, not in place */

	/* Vanish (RST) in the middle of the data: the lent memory is released with the qpair. */
	make_cmd(&c, NVME_OPC_WRITE, 41, 512, sizeof(data), false);
	host_capsule(&h, &c, NULL, 0);
	assert_int_equal(host_recv_pdu(&h), NVME_TCP_PDU_R2T);
	ttag = ((const struct nvme_tcp_r2t_hdr *)(const void *)g_rx)->ttag;
	n = build_h2c(&h, g_tx, 41, ttag, 0, data, sizeof(data), true);
	host_send(&h, g_tx, 24 + 1000);
	host_reset(&h);
	on_reactor(read_wlends, v);
	assert_int_equal(v[0], 2);
	assert_int_equal(v[2], 2);
	on = false;
	on_reactor(set_lend_write, &on);
}

/*
 * Large in-capsule writes (in_capsule_data_size 128 KiB) go from the socket straight into the lent blocks:
 * several back to back in one send, then one whose host stops halfway through its data (it moves to a private
 * buffer and completes with the right bytes when the host resumes), then a host that vanishes mid-capsule (the
 * lent memory is given back with the qpair).
 */
static void test_lent_incapsule_writes(void **state)
{
	(void)state;
	bool on = true;
	on_reactor(set_lend_write, &on);
	struct host h;
	host_session(&h, 0);
	static uint8_t data[4][131072];
	struct nvme_cmd c;
	size_t n = 0;
	for (int i = 0; i < 4; i++) {
		fill_pattern(data[i], sizeof(data[i]), 80 + (uint32_t)i);
		make_cmd(&c, NVME_OPC_WRITE, (uint16_t)(50 + i), 2048 + (uint32_t)i * 300, sizeof(data[i]), true);
		n += build_capsule(&h, g_tx + n, &c, data[i], sizeof(data[i]));
	}
	int64_t direct0 = stat_of("bytes_received_direct");
	host_send(&h, g_tx, n);
	for (int i = 0; i < 4; i++)
		expect_rsp(&h, (uint16_t)(50 + i), ST_OK);
	for (int i = 0; i < 4; i++)
		assert_memory_equal(g_disk + (2048 + (size_t)i * 300) * 512, data[i], sizeof(data[i]));
	int v[3];
	on_reactor(read_wlends, v);
	assert_int_equal(v[0], 4);
	assert_int_equal(v[1], 4);
	assert_int_equal(stat_of("bytes_received_zcopy"), 4 * 131072);
	/* Most of it went from the socket to the lent blocks without passing through the staging buffer. */
	assert_true(stat_of("bytes_received_direct") - direct0 >= 3 * 131072);

	/* Silence halfway through the data. */
	memset(g_disk + 6000 * 512, 0, 131072);
	fill_pattern(data[0], 131072, 90);
	make_cmd(&c, NVME_OPC_WRITE, 60, 6000, 131072, true);
	n = build_capsule(&h, g_tx, &c, data[0], 131072);
	host_send(&h, g_tx, 72 + 60000);
	wait_wlend_releases(1, v);
	assert_int_equal(v[0], 5);
	assert_int_equal(v[2], 1);	/* given back while the host is silent */
	assert_int_equal(stat_of("lent_writes_bounced"), 1);
	host_send(&h, g_tx + 72 + 60000, n - 72 - 60000);
	expect_rsp(&h, 60, ST_OK);
	assert_memory_equal(g_disk + 6000 * 512, data[0], 131072);
	on_reactor(read_wlends, v);
	assert_int_equal(v[1], 4);	/* executed from the private buffer, not in place */

	/* Vanish (RST) mid-capsule. */
	make_cmd(&c, NVME_OPC_WRITE, 61, 7000, 131072, true);
	n = build_capsule(&h, g_tx, &c, data[1], 131072);
	host_send(&h, g_tx, 72 + 1000);
	host_reset(&h);
	on_reactor(read_wlends, v);
	assert_int_equal(v[0], 6);
	assert_int_equal(v[2], 2);
	on = false;
	on_reactor(set_lend_write, &on);
}

/* HPDA: C2HData PDO aligned to (hpda + 1) * 4 bytes, pad zeroed. */
static void test_hpda(void **state)
{
	(void)state;
	struct host h;
	host_connect(&h);
	uint8_t buf[128];
	build_icreq(buf, 1, 0);
	((struct nvme_tcp_ic_req *)(void *)buf)->hpda = 7; /* 32-byte alignment */
	host_send(&h, buf, sizeof(buf));
	assert_int_equal(host_recv_pdu(&h), NVME_TCP_PDU_IC_RESP);
	h.hd = true;
	host_fabric_connect(&h, 0, 31, 0);
	fill_pattern(g_disk, 4096, 12);
	struct nvme_cmd c;
	make_cmd(&c, NVME_OPC_READ, 80, 0, 4096, false);
	host_capsule(&h, &c, NULL, 0);
	assert_int_equal(host_recv_pdu(&h), NVME_TCP_PDU_C2H_DATA);
	check_hdgst(&h);
	const struct nvme_tcp_data_hdr *d = (const void *)g_rx;
	assert_int_equal(d->common.pdo, 32);
	assert_int_equal(d->common.plen, 32 + 4096);
	for (int i = 28; i < 32; i++)
		assert_int_equal(g_rx[i], 0);
	assert_memory_equal(g_rx + 32, g_disk, 4096);
	expect_rsp(&h, 80, ST_OK);
	host_close(&h);

	/* HPDA above 31 is invalid. */
	host_connect(&h);
	build_icreq(buf, 0, 0);
	((struct nvme_tcp_ic_req *)(void *)buf)->hpda = 32;
	host_send(&h, buf, sizeof(buf));
	expect_term(&h, NVME_TCP_FES_INVALID_HEADER_FIELD, 10, buf, 128);
	host_close(&h);
}

static uint32_t g_rng = 12345;
static uint32_t rnd(void)
{
	g_rng = g_rng * 1103515245u + 12345u;
	return g_rng >> 8;
}

static void send_tolerant(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

/* Valid streams with a few random bytes changed, sent in random pieces: the target never crashes,
 * leaks or hangs (ASan/UBSan builds check the memory side), and still serves a clean session after. */
static void test_fuzz_mutations(void **state)
{
	(void)state;
	static uint8_t stream[65536];
	static uint8_t data[20000];
	fill_pattern(data, sizeof(data), 13);
	for (int iter = 0; iter < 300; iter++) {
		struct host h;
		host_connect(&h);
		struct timeval tv = {.tv_usec = 20000};
		setsockopt(h.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		uint8_t dgst = (uint8_t)(rnd() & 3);
		size_t n = 0;
		build_icreq(stream, dgst, 0);
		n += 128;
		h.hd = dgst & 1;
		h.dd = dgst & 2;
		struct nvmf_connect_cmd cc;
		memset(&cc, 0, sizeof(cc));
		cc.opc = NVME_OPC_FABRIC;
		cc.cid = 1;
		cc.fctype = NVMF_FCTYPE_CONNECT;
		cc.sgl1.type = NVME_SGL_TYPE_DATA_BLOCK;
		cc.sgl1.subtype = NVME_SGL_SUBTYPE_OFFSET;
		cc.sgl1.length = 1024;
		cc.qid = (uint16_t)(rnd() & 1);
		cc.sqsize = 31;
		cc.cattr = (uint8_t)(rnd() & 4);
		struct nvmf_connect_data d;
		memset(&d, 0, sizeof(d));
		n += build_capsule(&h, stream + n, (const struct nvme_cmd *)&cc, &d, sizeof(d));
		struct nvme_cmd c;
		make_cmd(&c, NVME_OPC_WRITE, 2, 8, 2048, true);
		n += build_capsule(&h, stream + n, &c, data, 2048);
		make_cmd(&c, NVME_OPC_READ, 4, 8, 30000, false);
		n += build_capsule(&h, stream + n, &c, NULL, 0);
		make_cmd(&c, OPC_HOLD, 5, 0, 0, false);
		n += build_capsule(&h, stream + n, &c, NULL, 0);
		make_cmd(&c, NVME_OPC_FLUSH, 6, 0, 0, false);
		n += build_capsule(&h, stream + n, &c, NULL, 0);
		/* Last: an R2T write whose H2CData may or may not guess the transfer tag. */
		make_cmd(&c, NVME_OPC_WRITE, 3, 64, sizeof(data), false);
		n += build_capsule(&h, stream + n, &c, NULL, 0);
		size_t h2c_at = n;
		n += build_h2c(&h, stream + n, 3, (uint16_t)(rnd() % 4), 0, data, sizeof(data), true);
		int muts = 1 + (int)(rnd() % 4);
		size_t lo = (rnd() % 8) == 0 ? 0 : 128;
		for (int m = 0; m < muts; m++)
			stream[lo + rnd() % (h2c_at + 64 - lo)] ^= (uint8_t)(1u << (rnd() % 8));
		size_t off = 0;
		while (off < n) {
			size_t k = 1 + rnd() % 3000;
			if (off < h2c_at && off + k > h2c_at)
				k = h2c_at - off;
			if (k > n - off)
				k = n - off;
			send_tolerant(h.fd, stream + off, k);
			off += k;
			if (off == h2c_at)
				usleep(2000);
		}
		/* Drain whatever the target answered, briefly. */
		while (recv(h.fd, g_rx, sizeof(g_rx), 0) > 0)
			;
		host_close(&h);
	}
	wait_no_qpairs();
	on_reactor(release_held, NULL);
	struct host h;
	host_session(&h, 3);
	host_read(&h, 9, 0, 4096, false);
	host_close(&h);
}

/* Random garbage after a valid ICReq. */
static void test_fuzz_garbage(void **state)
{
	(void)state;
	static uint8_t junk[16384];
	for (int iter = 0; iter < 200; iter++) {
		struct host h;
		host_connect(&h);
		host_ic(&h, (uint8_t)(iter & 3));
		struct timeval tv = {.tv_usec = 20000};
		setsockopt(h.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		size_t n = 1 + rnd() % sizeof(junk);
		for (size_t i = 0; i < n; i++)
			junk[i] = (uint8_t)rnd();
		/* Sometimes a plausible type/hlen so that deeper states are reached. */
		if (iter & 1) {
			static const uint8_t types[] = {NVME_TCP_PDU_CAPSULE_CMD, NVME_TCP_PDU_H2C_DATA};
			junk[0] = types[rnd() & 1];
			junk[2] = junk[0] == NVME_TCP_PDU_CAPSULE_CMD ? 72 : 24;
			junk[1] &= 0x0F;
		}
		send_tolerant(h.fd, junk, n);
		while (recv(h.fd, g_rx, sizeof(g_rx), 0) > 0)
			;
		host_close(&h);
	}
	wait_no_qpairs();
	on_reactor(release_held, NULL);
}

/* Pool of 16 x 64 KiB buffers: 4 x 256 KiB reads need 16, the rest wait and resume. */
static void test_buffer_wait(void **state)
{
	(void)state;
	struct host h;
	host_session(&h, 0);
	fill_pattern(g_disk, 1u << 20, 9);
	static uint8_t stream[16 * 72];
	size_t n = 0;
	struct nvme_cmd c;
	for (int i = 0; i < 12; i++) {
		make_cmd(&c, NVME_OPC_READ, (uint16_t)(300 + i), (uint32_t)i * 8, 262144, false);
		n += build_capsule(&h, stream + n, &c, NULL, 0);
	}
	host_send(&h, stream, n);
	int got = 0, rsps = 0;
	while (got < 12 || rsps < 12) {
		int t = host_recv_pdu(&h);
		if (t == NVME_TCP_PDU_C2H_DATA) {
			const struct nvme_tcp_data_hdr *dh = (const void *)g_rx;
			int i = dh->cccid - 300;
			assert_true(i >= 0 && i < 12);
			assert_int_equal(dh->datal, 262144);
			assert_memory_equal(g_rx + 24, g_disk + (size_t)i * 8 * 512, 262144);
			got++;
		} else {
			assert_int_equal(t, NVME_TCP_PDU_CAPSULE_RESP);
			rsps++;
		}
	}
	host_close(&h);
	wait_no_qpairs();
	json_t *s = json_object();
	on_reactor(dump_stats, s);
	assert_true(json_integer_value(json_object_get(s, "buffer_waits")) > 0);
	assert_int_equal(json_integer_value(json_object_get(s, "free_buffers")), 16);
	json_decref(s);
}

static int setup_small_pool(void **state)
{
	(void)state;
	struct dbk_nvmf_transport_opts o;
	default_opts(&o);
	o.num_shared_buffers = 16;
	o.buf_cache_size = 4;
	return setup_opts(&o);
}

static int setup_big_icd(void **state)
{
	(void)state;
	struct dbk_nvmf_transport_opts o;
	default_opts(&o);
	o.in_capsule_data_size = 131072;
	return setup_opts(&o);
}

static int setup_no_c2h_success(void **state)
{
	(void)state;
	struct dbk_nvmf_transport_opts o;
	default_opts(&o);
	o.c2h_success = false;
	return setup_opts(&o);
}

static void create_bad(void *arg)
{
	struct env_args *a = arg;
	struct dbk_nvmf_transport *t = dbk_nvmf_tcp_transport_ops.create(&a->opts, &a->rc, a->err, sizeof(a->err));
	if (t)
		dbk_nvmf_tcp_transport_ops.destroy(t);
}

static void test_create_bad_opts(void **state)
{
	(void)state;
	struct env_args a;
	memset(&a, 0, sizeof(a));
	default_opts(&a.opts);
	a.opts.io_unit_size = 4096; /* 1 MiB / 4 KiB = 256 buffers > 64 iovs */
	on_reactor(create_bad, &a);
	assert_int_equal(a.rc, -EINVAL);
	assert_true(strlen(a.err) > 0);
	default_opts(&a.opts);
	a.opts.max_queue_depth = 1;
	a.rc = 0;
	on_reactor(create_bad, &a);
	assert_int_equal(a.rc, -EINVAL);
}

static void listen_twice(void *arg)
{
	int *rc = arg;
	struct dbk_nvmf_listen_addr addr;
	memset(&addr, 0, sizeof(addr));
	strcpy(addr.adrfam, "IPv4");
	strcpy(addr.traddr, "127.0.0.1");
	snprintf(addr.trsvcid, sizeof(addr.trsvcid), "%u", H.port);
	rc[0] = H.ops->listen(H.t, &addr); /* same address: shared */
	H.ops->stop_listen(H.t, &addr);
	strcpy(addr.traddr, "not-an-address");
	rc[1] = H.ops->listen(H.t, &addr);
	strcpy(addr.adrfam, "IPv6");
	strcpy(addr.traddr, "::1");
	snprintf(addr.trsvcid, sizeof(addr.trsvcid), "%u", H.port);
	rc[2] = H.ops->listen(H.t, &addr);
	if (rc[2] == 0)
		H.ops->stop_listen(H.t, &addr);
}

/* ------------------------------------------------ the socket seam (sock.h) */

/*
 * An in-memory stream under a connection: no socket at all. in[] is what the "host" sent, out[] what the
 * transport wrote; the handshake takes hs_steps calls (each wanting a read) before any PDU may be read.
 */
struct mem_stream {
	uint8_t in[4096];
	size_t in_len, in_pos;
	uint8_t out[4096];
	size_t out_len;
	int hs_steps, hs_calls;
	int reads_before_hs;	/* readv calls made while the handshake was not done: must stay 0 */
	bool closed;
};

static ssize_t mem_readv(struct dbk_tcp_sock *s, const struct iovec *iov, int iovcnt)
{
	struct mem_stream *m = s->ctx;
	if (m->hs_calls < m->hs_steps)
		m->reads_before_hs++;
	size_t n = 0;
	for (int i = 0; i < iovcnt && m->in_pos < m->in_len; i++) {
		size_t k = iov[i].iov_len < m->in_len - m->in_pos ? iov[i].iov_len : m->in_len - m->in_pos;
		memcpy(iov[i].iov_base, m->in + m->in_pos, k);
		m->in_pos += k;
		n += k;
	}
	if (n == 0) {
		errno = EAGAIN;
		return -1;
	}
	return (ssize_t)n;
}

static ssize_t mem_writev(struct dbk_tcp_sock *s, const struct iovec *iov, int iovcnt, unsigned flags)
{
	struct mem_stream *m = s->ctx;
	(void)flags;
	size_t n = 0;
	for (int i = 0; i < iovcnt; i++) {
		assert_true(m->out_len + iov[i].iov_len <= sizeof(m->out));
		memcpy(m->out + m->out_len, iov[i].iov_base, iov[i].iov_len);
		m->out_len += iov[i].iov_len;
		n += iov[i].iov_len;
	}
	return (ssize_t)n;
}

static int mem_handshake(struct dbk_tcp_sock *s)
{
	struct mem_stream *m = s->ctx;
	return ++m->hs_calls < m->hs_steps ? DBK_SOCK_HS_WANT_READ : 0;
}

static void mem_close(struct dbk_tcp_sock *s)
{
	((struct mem_stream *)s->ctx)->closed = true;
}

static const struct dbk_tcp_sock_ops mem_ops = {
	.name = "memory",
	.readv = mem_readv,
	.writev = mem_writev,
	.handshake = mem_handshake,
	.close = mem_close,
};

struct mem_conn {
	struct mem_stream *m;
	struct dbk_nvmf_qpair *qp;
	int peer_rc;
};

static void mem_conn_create(void *arg)
{
	struct mem_conn *mc = arg;
	mc->qp = dbk_nvmf_tcp_qpair_create(H.t, &mem_ops, mc->m, -1);
	assert_non_null(mc->qp);
	dbk_nvmf_tgt_new_qpair(mc->qp);
	mc->peer_rc = H.peer_rc;
}

static void mem_conn_poll(void *arg)
{
	dbk_nvmf_tcp_qpair_poll(((struct mem_conn *)arg)->qp);
}

/* A connection over a stream that is no socket: the PDU code moves bytes through the seam only. */
static void test_sock_seam_memory_stream(void **state)
{
	(void)state;
	static struct mem_stream m;
	memset(&m, 0, sizeof(m));
	m.hs_steps = 3;
	build_icreq(m.in, 0, 0);
	m.in_len = 128;
	struct mem_conn mc = {.m = &m};
	on_reactor(mem_conn_create, &mc);
	assert_int_equal(mc.peer_rc, -ENOTCONN);	/* no fd: no address */
	/* The handshake first: two polls leave it pending and read nothing; the third completes it and reads. */
	on_reactor(mem_conn_poll, &mc);
	on_reactor(mem_conn_poll, &mc);
	assert_int_equal(m.hs_calls, 2);
	assert_int_equal(m.in_pos, 0);
	assert_int_equal(m.out_len, 0);
	on_reactor(mem_conn_poll, &mc);
	assert_int_equal(m.hs_calls, 3);
	assert_int_equal(m.reads_before_hs, 0);
	assert_int_equal(m.in_pos, 128);
	/* The ICResp went out through the stream's writev. */
	assert_int_equal(m.out_len, sizeof(struct nvme_tcp_ic_resp));
	const struct nvme_tcp_ic_resp *r = (const void *)m.out;
	assert_int_equal(r->common.pdu_type, NVME_TCP_PDU_IC_RESP);
	assert_int_equal(r->common.plen, 128);
	assert_int_equal(r->maxh2cdata, 131072);
	/* A second ICReq is a sequence error: C2HTermReq, and the connection closes. */
	build_icreq(m.in + m.in_len, 0, 0);
	m.in_len += 128;
	on_reactor(mem_conn_poll, &mc);
	assert_int_equal(m.out_len, sizeof(struct nvme_tcp_ic_resp) + sizeof(struct nvme_tcp_term_req_hdr) +
					   sizeof(struct nvme_tcp_common_hdr));	/* + the offending common header */
	assert_int_equal(m.out[sizeof(struct nvme_tcp_ic_resp)], NVME_TCP_PDU_C2H_TERM_REQ);
	/* The core disconnects and frees the qpair; freeing it closes its stream. */
	wait_no_qpairs();
	assert_true(m.closed);
}

static void test_listen(void **state)
{
	(void)state;
	int rc[3];
	on_reactor(listen_twice, rc);
	assert_int_equal(rc[0], 0);
	assert_int_equal(rc[1], -EINVAL);
	assert_true(rc[2] == 0 || rc[2] == -EADDRNOTAVAIL || rc[2] == -EINVAL); /* no IPv6 in some sandboxes */
	/* Still listening after the shared stop. */
	struct host h;
	host_connect(&h);
	host_ic(&h, 0);
	host_close(&h);
}

int main(void)
{
	sem_init(&g_ready, 0, 0);
	pthread_create(&g_reactor, NULL, reactor_main, NULL);
	sem_wait(&g_ready);

	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_icreq_digests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_icreq_bad_pfv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_icreq_bad_hlen_plen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sequence_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_pdu_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incapsule_write_and_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_r2t_write_multi, setup, teardown),
		cmocka_unit_test_setup_teardown(test_c2h_data_success, setup, teardown),
		cmocka_unit_test_setup_teardown(test_c2h_success_off, setup_no_c2h_success, teardown),
		cmocka_unit_test_setup_teardown(test_digests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_h2c_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capsule_length_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_byte_by_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merged_pdus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_depth_and_cid_conflict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_h2c_term_req_and_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stats_and_opts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffer_wait, setup_small_pool, teardown),
		cmocka_unit_test_setup_teardown(test_direct_recv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hpda, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lent_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lent_reads_not_with_ddgst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lent_reads_stalled_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lent_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lent_writes_not_with_ddgst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lent_writes_stalled_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lent_incapsule_writes, setup_big_icd, teardown),
		cmocka_unit_test_setup_teardown(test_fuzz_mutations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fuzz_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_bad_opts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sock_seam_memory_stream, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	dbk_reactors_stop();
	pthread_join(g_reactor, NULL);
	return rc;
}
