/*
 * NVMe/TCP transport (target side).
 *
 * One connection = one qpair (struct tcp_conn embeds struct dbk_nvmf_qpair).
 * Receive: large recv() into a per-connection buffer, a strict byte-driven
 * PDU state machine (common header -> header(+digest) -> pad -> data ->
 * data digest) validating every header field before the rest is read. Large
 * data payloads are received with readv() straight into the request's data
 * buffers (with the receive buffer appended to pick up what follows).
 * Send: a per-connection FIFO of PDUs (headers live in the request / the
 * connection, data iovecs point at the request's buffers), flushed with one
 * sendmsg() of many PDUs at the end of each receive batch and from the poll
 * group's poller.
 * Requests: a fixed array per connection; data buffers come from the
 * request's own in-capsule buffer (small transfers) or from the poll group's
 * pool of io_unit_size buffers (FIFO wait queue when empty).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nvmf/tcp/nvme_tcp.h"
#include "nvmf/transport.h"
#include "thread/thread.h"
#include "util/crc32c.h"
#include "util/log.h"

#define TCP_MAXH2CDATA 131072u
#define TCP_ADMIN_ICD_SIZE 8192u		/* NVMe/TCP: admin queue in-capsule data size */
#define TCP_RBUF_SIZE (128u * 1024u)
#define TCP_SEND_IOVS 1024		/* iovecs per sendmsg (UIO_MAXIOV): a QD128 batch of 4K reads (3 each) in one call */
#define TCP_DIRECT_RECV_MIN 8192u
#define TCP_RX_EXACT_MIN 32768u		/* payloads this large: read only up to the next header after them */
#define TCP_MAX_RECV_ROUNDS 8
#define TCP_MAX_QUEUE_DEPTH 4096u
#define TCP_MAX_ICD_SIZE (1024u * 1024u)
#define TCP_REQ_HDR_SIZE (NVME_TCP_MAX_HDR_LEN + NVME_TCP_DIGEST_LEN)
#define TCP_ACCEPT_BATCH 64
#define TCP_SPLICE_MIN 16384u			/* lent C2H payloads this large go out by vmsplice+splice */
#define TCP_PIPE_SIZE (1024u * 1024u)
#define TCP_LEND_STALL_US 100000u		/* a connection whose sends stall this long stops holding lent memory */
#define TCP_ICREQ_TIMEOUT_MS 10000u		/* a connection that sends no ICReq this long is closed */

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

struct tcp_conn;
struct tcp_req;

/* ------------------------------------------------------------------ types */

struct tcp_transport {
	struct dbk_nvmf_transport base;	/* first */
	struct tcp_listener *listeners;
	uint32_t maxh2cdata;
	uint32_t icd_buf_size;		/* per-request buffer: in-capsule data and small transfers */
	uint32_t num_reqs;		/* request objects per connection */
	uint32_t bufs_per_group;
	uint32_t max_bufs_per_req;
	uint64_t icreq_timeout_ns;
};

struct tcp_listener {
	struct tcp_listener *next;
	struct tcp_transport *tt;
	struct dbk_nvmf_listen_addr addr;
	int fd;
	int refs;
	struct dbk_fd_handler *fdh;
};

enum tcp_pdu_kind { PDU_R2T, PDU_C2H, PDU_RSP, PDU_IC, PDU_TERM };

struct tcp_pdu {
	struct tcp_pdu *next;
	uint8_t *hdr;
	uint32_t hdr_len;		/* header + digest + pad */
	const struct iovec *iov;	/* data */
	int iovcnt;
	uint32_t data_len;
	uint32_t total;
	uint32_t sent;
	uint8_t ddgst[NVME_TCP_DIGEST_LEN];
	bool has_ddgst;
	bool queued;
	bool recycle_when_sent;
	bool splice;			/* data is lent bdev memory: send it by vmsplice + splice, no copy */
	uint8_t kind;
	struct tcp_req *req;
};

enum tcp_req_state {
	TR_FREE = 0,
	TR_RECV_CAPSULE,	/* header received, in-capsule data arriving */
	TR_NEED_BUF,		/* waiting in the group's buffer queue */
	TR_WAIT_H2C,		/* R2T sent, H2C data arriving */
	TR_EXEC,		/* held by the core */
	TR_SENDING,		/* response queued */
};

struct tcp_req {
	struct dbk_nvmf_request req;	/* first */
	struct tcp_conn *conn;
	struct tcp_req *next;		/* free list / group wait queue */
	uint16_t idx;			/* ttag */
	uint8_t state;
	bool cid_owned;		/* the command may run (its CID is not in use by another, or it is an AER) */
	bool cid_mapped;	/* this request set its CID's bit in cid_map */
	bool ddgst_err;
	bool r2t_active;
	bool big_h2c;			/* counted in conn->big_h2c */
	uint16_t nbufs;			/* pool buffers held */
	uint32_t orig_len;
	uint32_t h2c_done;		/* H2C bytes received */
	uint32_t r2t_end;		/* end offset of the current R2T window */
	uint8_t *icd;
	void *bounce;			/* private copy of lent data, when its connection stalled */
	struct iovec bounce_iov;
	struct nvme_cmd cmd;
	struct nvme_cpl rsp;
	void *bufs[DBK_NVMF_MAX_IOVS];
	struct tcp_pdu pdu_data;	/* R2T or C2HData */
	struct tcp_pdu pdu_rsp;
	uint8_t hdr_data[TCP_REQ_HDR_SIZE];
	uint8_t hdr_rsp[sizeof(struct nvme_tcp_rsp) + NVME_TCP_DIGEST_LEN];
};

enum tcp_rx_state { RS_CH, RS_HDR, RS_PAD, RS_DATA, RS_DDGST, RS_CLOSED };

struct tcp_stats {
	uint64_t rx_pdus, tx_pdus, rx_bytes, tx_bytes;
	uint64_t fatal_errors, hdgst_errors, ddgst_errors, term_reqs_rx;
	uint64_t buf_waits, send_blocked, conns;
	uint64_t rx_direct_bytes;	/* payload received straight into data buffers */
	uint64_t tx_zcopy_bytes;	/* C2H payload sent from lent bdev memory without a copy (spliced) */
	uint64_t tx_lent_pdus;		/* C2HData PDUs sent from lent bdev memory (spliced or not) */
	uint64_t lent_bounced;		/* lent payloads copied out because their connection stalled */
	uint64_t rx_lent_writes;	/* Writes whose data was received straight into lent bdev memory */
	uint64_t rx_zcopy_bytes;	/* ... their bytes */
	uint64_t lent_writes_bounced;	/* lent Writes moved to a private buffer because their host stalled */
	uint64_t icreq_timeouts;	/* connections closed for sending no ICReq in time */
	uint64_t r2ts_sent;		/* R2T PDUs sent */
};

struct tcp_conn {
	struct dbk_nvmf_qpair qp;	/* first */
	struct tcp_transport *tt;
	struct dbk_nvmf_transport_poll_group *pg;
	int fd;
	struct dbk_fd_handler *fdh;
	uint32_t ev;
	int busy;
	bool added;
	bool ic_done, hdgst, ddgst;
	bool closing;			/* no more reading; transport-only requests dropped */
	bool disconnect_pending, disconnected, fini_pending;
	bool write_dead;
	bool in_flush_list;
	bool no_splice;			/* pipe creation failed: copy instead */
	int pipe[2];			/* vmsplice -> splice path; -1 until first needed */
	uint32_t pipe_len;		/* bytes of the head PDU's data in the pipe, not yet in the socket */
	uint64_t tx_progress;		/* bumped by every send that moved bytes */
	uint64_t tx_progress_seen;	/* ... as the stall watchdog saw it last time */
	uint64_t rx_progress, rx_progress_seen;	/* the same for receives */
	uint32_t big_h2c;		/* requests waiting for >= TCP_RX_EXACT_MIN of H2C data */
	uint64_t added_ns;		/* when the poll group took it (ICReq deadline) */
	uint8_t hpda;
	uint32_t maxr2t;
	uint32_t c2h_pdo;
	uint16_t sqhd;

	/* receive */
	uint8_t *rbuf;
	uint32_t rpos, rlen;
	uint8_t rstate;
	uint8_t ptype, pflags;
	uint8_t hbuf[NVME_TCP_MAX_HDR_LEN + NVME_TCP_DIGEST_LEN];
	uint32_t hgot, hneed;
	uint32_t hlen, plen, pdo;
	bool hd, dd;
	uint32_t pad_left;
	uint32_t data_len, data_got;
	const struct iovec *diov;
	int diovcnt;
	uint32_t doff;
	struct iovec icd_iov;
	struct tcp_req *dreq;
	uint8_t ddbuf[NVME_TCP_DIGEST_LEN];
	uint32_t ddgot;

	/* requests */
	struct tcp_req *reqs;
	uint32_t nreqs;
	struct tcp_req *free_reqs;
	uint32_t active;
	uint8_t *icd_mem;
	size_t icd_mem_len;
	uint8_t cid_map[65536 / 8];

	/* send */
	struct tcp_pdu *sq_head, *sq_tail;
	struct tcp_pdu ic_pdu;
	uint8_t ic_hdr[sizeof(struct nvme_tcp_ic_resp)];
	struct tcp_pdu term_pdu;
	uint8_t term_hdr[sizeof(struct nvme_tcp_term_req_hdr) + NVME_TCP_TERM_REQ_MAX_DATA];
	bool term_sent;

	struct tcp_conn *flush_next;
	struct tcp_conn *grp_next, *grp_prev;
};

struct dbk_nvmf_transport_poll_group {
	struct tcp_transport *tt;
	uint8_t *pool_mem;
	size_t pool_len;
	void **free_bufs;
	uint32_t nfree, nbufs;
	struct tcp_req *wait_head, *wait_tail;
	struct tcp_conn *conns;
	struct tcp_conn *flush_head;
	struct dbk_poller *poller;
	struct dbk_poller *lend_poller;
	struct tcp_stats st;
};

static void conn_flush(struct tcp_conn *c);
static void conn_update_events(struct tcp_conn *c);
static void conn_free(struct tcp_conn *c);
static void req_start_data(struct tcp_req *r);
static void req_send_response(struct tcp_req *r);

/* ---------------------------------------------------------------- helpers */

static inline uint32_t get_le32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* Copy len bytes of src into the iovec list at byte offset off. */
static void iov_copy_in(const struct iovec *iov, int iovcnt, uint32_t off, const uint8_t *src, uint32_t len)
{
	for (int i = 0; i < iovcnt && len > 0; i++) {
		if (off >= iov[i].iov_len) {
			off -= (uint32_t)iov[i].iov_len;
			continue;
		}
		uint32_t n = MIN(len, (uint32_t)iov[i].iov_len - off);
		memcpy((uint8_t *)iov[i].iov_base + off, src, n);
		src += n;
		len -= n;
		off = 0;
	}
}

/* Describe [off, off+len) of an iovec list in out (at most max entries); returns the count. */
static int iov_slice(const struct iovec *iov, int iovcnt, uint32_t off, uint32_t len, struct iovec *out, int max)
{
	int n = 0;
	for (int i = 0; i < iovcnt && len > 0 && n < max; i++) {
		if (off >= iov[i].iov_len) {
			off -= (uint32_t)iov[i].iov_len;
			continue;
		}
		uint32_t k = MIN(len, (uint32_t)iov[i].iov_len - off);
		out[n].iov_base = (uint8_t *)iov[i].iov_base + off;
		out[n].iov_len = k;
		n++;
		len -= k;
		off = 0;
	}
	return n;
}

static uint32_t iov_crc(const struct iovec *iov, int iovcnt, uint32_t off, uint32_t len)
{
	uint32_t crc = DBK_CRC32C_INIT;
	for (int i = 0; i < iovcnt && len > 0; i++) {
		if (off >= iov[i].iov_len) {
			off -= (uint32_t)iov[i].iov_len;
			continue;
		}
		uint32_t k = MIN(len, (uint32_t)iov[i].iov_len - off);
		crc = dbk_crc32c_update(crc, (uint8_t *)iov[i].iov_base + off, k);
		len -= k;
		off = 0;
	}
	return dbk_crc32c_final(crc);
}

static inline struct tcp_conn *conn_of(struct dbk_nvmf_qpair *qp)
{
	return CONTAINER_OF(qp, struct tcp_conn, qp);
}

static inline struct tcp_req *treq_of(struct dbk_nvmf_request *req)
{
	return CONTAINER_OF(req, struct tcp_req, req);
}

static void conn_enter(struct tcp_conn *c)
{
	c->busy++;
}

/* Leave a transport entry point: run a pending disconnect / deferred free. */
static void conn_leave(struct tcp_conn *c)
{
	if (c->busy == 1 && c->disconnect_pending && !c->disconnected && c->added) {
		c->disconnected = true;
		dbk_nvmf_qpair_disconnect(&c->qp);	/* may call qpair_fini: deferred while busy */
	}
	if (--c->busy == 0 && c->fini_pending)
		conn_free(c);
}

static void schedule_flush(struct tcp_conn *c)
{
	if (c->in_flush_list || c->pg == NULL)
		return;
	c->in_flush_list = true;
	c->flush_next = c->pg->flush_head;
	c->pg->flush_head = c;
}

/* ------------------------------------------------------------ buffer pool */

static bool pool_take(struct dbk_nvmf_transport_poll_group *pg, struct tcp_req *r)
{
	uint32_t unit = pg->tt->base.opts.io_unit_size;
	uint32_t need = (r->req.length + unit - 1) / unit;
	if (pg->nfree < need)
		return false;
	uint32_t left = r->req.length;
	for (uint32_t i = 0; i < need; i++) {
		void *b = pg->free_bufs[--pg->nfree];
		r->bufs[i] = b;
		r->req.iov[i].iov_base = b;
		r->req.iov[i].iov_len = MIN(left, unit);
		left -= (uint32_t)r->req.iov[i].iov_len;
	}
	r->nbufs = (uint16_t)need;
	r->req.iovcnt = (int)need;
	return true;
}

static void pool_release(struct tcp_req *r)
{
	struct dbk_nvmf_transport_poll_group *pg = r->conn->pg;
	for (uint32_t i = 0; i < r->nbufs; i++)
		pg->free_bufs[pg->nfree++] = r->bufs[i];
	r->nbufs = 0;
}

/* Remove every request of c from the group's buffer wait queue. */
static void waitq_remove_conn(struct dbk_nvmf_transport_poll_group *pg, struct tcp_conn *c)
{
	struct tcp_req **pp = &pg->wait_head;
	pg->wait_tail = NULL;
	while (*pp) {
		if ((*pp)->conn == c) {
			*pp = (*pp)->next;
			continue;
		}
		pg->wait_tail = *pp;
		pp = &(*pp)->next;
	}
}

/* --------------------------------------------------------------- requests */

static inline void req_h2c_over(struct tcp_req *r)
{
	if (r->big_h2c) {
		r->big_h2c = false;
		r->conn->big_h2c--;
	}
}

static void req_recycle(struct tcp_req *r)
{
	struct tcp_conn *c = r->conn;
	if (r->state == TR_FREE)
		return;
	req_h2c_over(r);
	if (r->req.lent)
		dbk_nvmf_request_release(&r->req);
	free(r->bounce);
	r->bounce = NULL;
	if (r->nbufs)
		pool_release(r);
	if (r->cid_mapped)
		c->cid_map[r->cmd.cid >> 3] &= (uint8_t)~(1u << (r->cmd.cid & 7));
	r->cid_owned = false;
	r->cid_mapped = false;
	r->state = TR_FREE;
	r->r2t_active = false;
	r->next = c->free_reqs;
	c->free_reqs = r;
	c->active--;
}

/* Drop requests that only the transport holds (connection closing). */
static void conn_drop_transport_reqs(struct tcp_conn *c)
{
	if (c->pg)
		waitq_remove_conn(c->pg, c);
	for (uint32_t i = 0; i < c->nreqs; i++) {
		struct tcp_req *r = &c->reqs[i];
		if ((r->state == TR_RECV_CAPSULE || r->state == TR_NEED_BUF || r->state == TR_WAIT_H2C) &&
		    !r->pdu_data.queued && !r->pdu_rsp.queued)
			req_recycle(r);
	}
}

/* Stop reading; the connection will be disconnected when the current entry point returns. */
static void conn_close(struct tcp_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	c->rstate = RS_CLOSED;
	c->disconnect_pending = true;
	conn_drop_transport_reqs(c);
}

static void queue_pdu(struct tcp_conn *c, struct tcp_pdu *p)
{
	if (p->queued) {
		DBK_ERRLOG("nvmf_tcp: PDU already queued (kind %d)", p->kind);
		return;
	}
	p->total = p->hdr_len + p->data_len + (p->has_ddgst ? NVME_TCP_DIGEST_LEN : 0);
	p->sent = 0;
	p->next = NULL;
	p->queued = true;
	if (c->sq_tail)
		c->sq_tail->next = p;
	else
		c->sq_head = p;
	c->sq_tail = p;
}

/* Fatal PDU error: send C2HTermReq with the offending header and close. */
static void conn_fatal(struct tcp_conn *c, uint16_t fes, uint32_t fei)
{
	if (c->closing)
		return;
	if (c->pg)
		c->pg->st.fatal_errors++;
	DBK_NOTICELOG("nvmf_tcp: fatal PDU error on qpair (type %u): fes %u fei %u; closing", c->hbuf[0], fes,
		      fei);
	uint32_t copy = MIN(c->hgot, (uint32_t)NVME_TCP_TERM_REQ_MAX_DATA);
	struct nvme_tcp_term_req_hdr *t = (struct nvme_tcp_term_req_hdr *)(void *)c->term_hdr;
	memset(t, 0, sizeof(*t));
	t->common.pdu_type = NVME_TCP_PDU_C2H_TERM_REQ;
	t->common.hlen = sizeof(*t);
	t->common.plen = (uint32_t)sizeof(*t) + copy;
	t->fes = fes;
	t->fei = fei;
	memcpy(c->term_hdr + sizeof(*t), c->hbuf, copy);
	struct tcp_pdu *p = &c->term_pdu;
	memset(p, 0, sizeof(*p));
	p->hdr = c->term_hdr;
	p->hdr_len = t->common.plen;
	p->kind = PDU_TERM;
	queue_pdu(c, p);
	conn_close(c);
}

static void req_fail(struct tcp_req *r, int sct, int sc)
{
	req_h2c_over(r);
	r->req.xfer = DBK_NVMF_XFER_NONE;
	/* A transient transport error may be retried; everything else is final. */
	nvme_cpl_set_status(&r->rsp, sct, sc, sc != NVME_SC_TRANSIENT_TRANSPORT_ERROR);
	r->state = TR_EXEC;
	req_send_response(r);
}

static void req_exec(struct tcp_req *r)
{
	req_h2c_over(r);
	r->state = TR_EXEC;
	dbk_nvmf_request_exec(&r->req);
}

static void r2t_send(struct tcp_req *r)
{
	struct tcp_conn *c = r->conn;
	uint32_t len = MIN(r->req.length - r->h2c_done, c->tt->maxh2cdata);
	r->r2t_end = r->h2c_done + len;
	r->r2t_active = true;
	struct nvme_tcp_r2t_hdr *h = (struct nvme_tcp_r2t_hdr *)(void *)r->hdr_data;
	memset(h, 0, sizeof(*h));
	h->common.pdu_type = NVME_TCP_PDU_R2T;
	h->common.hlen = sizeof(*h);
	h->common.plen = sizeof(*h) + (c->hdgst ? NVME_TCP_DIGEST_LEN : 0);
	h->cccid = r->cmd.cid;
	h->ttag = r->idx;
	h->r2to = r->h2c_done;
	h->r2tl = len;
	struct tcp_pdu *p = &r->pdu_data;
	p->hdr = r->hdr_data;
	p->hdr_len = sizeof(*h);
	if (c->hdgst) {
		h->common.flags = NVME_TCP_F_HDGST;
		put_le32(r->hdr_data + sizeof(*h), dbk_crc32c(h, sizeof(*h)));
		p->hdr_len += NVME_TCP_DIGEST_LEN;
	}
	p->iov = NULL;
	p->iovcnt = 0;
	p->data_len = 0;
	p->has_ddgst = false;
	p->splice = false;
	p->recycle_when_sent = false;
	p->kind = PDU_R2T;
	c->pg->st.r2ts_sent++;
	queue_pdu(c, p);
}

/* Buffers are attached: send R2T for host-to-controller data or execute. */
static void req_start_data(struct tcp_req *r)
{
	if (r->req.xfer == DBK_NVMF_XFER_HOST_TO_CTRLR) {
		r->state = TR_WAIT_H2C;
		r->h2c_done = 0;
		if (r->req.length >= TCP_RX_EXACT_MIN) {
			r->big_h2c = true;
			r->conn->big_h2c++;
		}
		r2t_send(r);
		schedule_flush(r->conn);
	} else {
		req_exec(r);
	}
}

/* Attach data buffers; false if the request had to wait for the pool. */
static bool req_get_buffers(struct tcp_req *r)
{
	struct tcp_conn *c = r->conn;
	if (r->req.length <= c->tt->icd_buf_size) {
		r->req.iov[0].iov_base = r->icd;
		r->req.iov[0].iov_len = r->req.length;
		r->req.iovcnt = 1;
		return true;
	}
	struct dbk_nvmf_transport_poll_group *pg = c->pg;
	if (pg->wait_head == NULL && pool_take(pg, r))
		return true;
	pg->st.buf_waits++;
	r->state = TR_NEED_BUF;
	r->next = NULL;
	if (pg->wait_tail)
		pg->wait_tail->next = r;
	else
		pg->wait_head = r;
	pg->wait_tail = r;
	return false;
}

/* The capsule (and its in-capsule data) is complete. */
static void capsule_ready(struct tcp_req *r, uint32_t icd_len, bool ddgst_ok)
{
	struct tcp_conn *c = r->conn;
	if (!ddgst_ok) {
		req_fail(r, NVME_SCT_GENERIC, NVME_SC_TRANSIENT_TRANSPORT_ERROR);
		return;
	}
	if (!r->cid_owned) {
		/* Kept though SPDK and nvmet do not check (nvmf/COMPAT.md): responses and H2CData are matched by CID. */
		req_fail(r, NVME_SCT_GENERIC, NVME_SC_COMMAND_ID_CONFLICT);
		return;
	}
	const struct nvme_cmd *cmd = &r->cmd;
	unsigned dir;
	if (cmd->opc == NVME_OPC_FABRIC)
		dir = ((const struct nvmf_fabric_cmd *)(const void *)cmd)->fctype & 3;
	else
		dir = cmd->opc & 3;
	const struct nvme_sgl_desc *sgl = &cmd->sgl1;
	uint32_t len = sgl->length;

	if (dir == 3 && (len || icd_len)) {
		/* Bidirectional data transfers: no supported command has one. */
		req_fail(r, NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE);
		return;
	}
	if (dir == 0 || dir == 3 || len == 0) {
		if (icd_len) {
			req_fail(r, NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID);
			return;
		}
		r->req.xfer = DBK_NVMF_XFER_NONE;
		r->req.length = 0;
		r->req.iovcnt = 0;
		req_exec(r);
		return;
	}
	if (len > c->tt->base.opts.max_io_size) {
		req_fail(r, NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID);
		return;
	}
	if (sgl->type == NVME_SGL_TYPE_DATA_BLOCK && sgl->subtype == NVME_SGL_SUBTYPE_OFFSET) {
		if (dir != 1) {
			req_fail(r, NVME_SCT_GENERIC, NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID);
			return;
		}
		if (sgl->address != 0) {
			req_fail(r, NVME_SCT_GENERIC, NVME_SC_INVALID_SGL_OFFSET);
			return;
		}
		if (len != icd_len) {
			req_fail(r, NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID);
			return;
		}
		if (r->req.lent || r->bounce) {
			/* Received into lent bdev memory (icd_lend), or into a private copy when it stalled. */
			req_exec(r);
			return;
		}
		r->req.xfer = DBK_NVMF_XFER_HOST_TO_CTRLR;
		r->req.length = len;
		r->orig_len = len;
		r->req.iov[0].iov_base = r->icd;
		r->req.iov[0].iov_len = len;
		r->req.iovcnt = 1;
		req_exec(r);
		return;
	}
	if (sgl->type == NVME_SGL_TYPE_TRANSPORT_DATA_BLOCK && sgl->subtype == NVME_SGL_SUBTYPE_TRANSPORT) {
		if (icd_len) {
			req_fail(r, NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID);
			return;
		}
		r->req.xfer = dir == 1 ? DBK_NVMF_XFER_HOST_TO_CTRLR : DBK_NVMF_XFER_CTRLR_TO_HOST;
		/* Zero-copy: not with a data digest (a read's CRC must cover bytes that cannot change; a write's
		 * bytes could not be taken back when its digest fails). */
		r->req.lend_ok = c->tt->base.opts.zcopy && !c->ddgst;
		r->req.length = len;
		r->orig_len = len;
		if (dir == 1 && r->req.lend_ok && dbk_nvmf_request_lend_write(&r->req)) {
			/* H2C data goes straight into the bdev's memory: no buffer, no copy. */
			c->pg->st.rx_lent_writes++;
			req_start_data(r);
			return;
		}
		if (req_get_buffers(r))
			req_start_data(r);
		return;
	}
	req_fail(r, NVME_SCT_GENERIC, NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID);
}

/* The connection's pipe for vmsplice + splice sends, created on first use; false: copy instead. */
static bool conn_pipe(struct tcp_conn *c)
{
	if (c->pipe[0] >= 0)
		return true;
	if (c->no_splice)
		return false;
	if (pipe2(c->pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		DBK_NOTICELOG("nvmf_tcp: pipe: %s; sending lent data by copy on this connection", strerror(errno));
		c->pipe[0] = c->pipe[1] = -1;
		c->no_splice = true;
		return false;
	}
	/* Room for a whole 128 KiB..1 MiB payload per vmsplice; the default 64 KiB pipe works too, in more calls. */
	(void)fcntl(c->pipe[0], F_SETPIPE_SZ, (int)TCP_PIPE_SIZE);
	c->pipe_len = 0;
	return true;
}

/* Build and queue C2HData (successful C2H) and the CapsuleResp. */
static void req_send_response(struct tcp_req *r)
{
	struct tcp_conn *c = r->conn;
	if (c->closing || c->write_dead) {
		req_recycle(r);
		return;
	}
	r->state = TR_SENDING;
	r->rsp.cid = r->cmd.cid;
	r->rsp.sqid = c->qp.qid;
	if (c->qp.sq_size)
		c->sqhd = (uint16_t)((c->sqhd + 1u) % c->qp.sq_size);
	r->rsp.sqhd = c->sqhd;
	bool ok = nvme_cpl_status(&r->rsp) == 0;
	bool send_rsp = true;
	uint32_t hd = c->hdgst ? NVME_TCP_DIGEST_LEN : 0;

	if (ok && r->req.xfer == DBK_NVMF_XFER_CTRLR_TO_HOST && r->req.length > 0) {
		uint32_t len = MIN(r->req.length, r->orig_len);
		/* Trim the iovecs to len (the request is ours again). */
		uint32_t left = len;
		int cnt = 0;
		while (cnt < r->req.iovcnt && left > 0) {
			if (r->req.iov[cnt].iov_len > left)
				r->req.iov[cnt].iov_len = left;
			left -= (uint32_t)r->req.iov[cnt].iov_len;
			cnt++;
		}
		len -= left;
		struct nvme_tcp_data_hdr *h = (struct nvme_tcp_data_hdr *)(void *)r->hdr_data;
		memset(r->hdr_data, 0, c->c2h_pdo);
		h->common.pdu_type = NVME_TCP_PDU_C2H_DATA;
		h->common.hlen = sizeof(*h);
		h->common.flags = NVME_TCP_F_DATA_LAST;
		if (c->qp.sq_flow_control_disabled && c->tt->base.opts.c2h_success) {
			h->common.flags |= NVME_TCP_F_DATA_SUCCESS;
			send_rsp = false;
		}
		if (c->hdgst)
			h->common.flags |= NVME_TCP_F_HDGST;
		if (c->ddgst)
			h->common.flags |= NVME_TCP_F_DDGST;
		h->common.pdo = (uint8_t)c->c2h_pdo;
		h->common.plen = c->c2h_pdo + len + (c->ddgst ? NVME_TCP_DIGEST_LEN : 0);
		h->cccid = r->cmd.cid;
		h->datao = 0;
		h->datal = len;
		if (hd)
			put_le32(r->hdr_data + sizeof(*h), dbk_crc32c(h, sizeof(*h)));
		struct tcp_pdu *p = &r->pdu_data;
		p->hdr = r->hdr_data;
		p->hdr_len = c->c2h_pdo;
		p->iov = r->req.iov;
		p->iovcnt = cnt;
		p->data_len = len;
		p->has_ddgst = c->ddgst;
		if (c->ddgst)
			put_le32(p->ddgst, iov_crc(r->req.iov, cnt, 0, len));
		p->splice = r->req.lent && !c->ddgst && len >= TCP_SPLICE_MIN && conn_pipe(c);
		if (r->req.lent) {
			/* The payload comes from the bdev's memory: our buffers can serve waiting requests now. */
			if (r->nbufs)
				pool_release(r);
			if (c->pg)
				c->pg->st.tx_lent_pdus++;
		}
		p->recycle_when_sent = !send_rsp;
		p->kind = PDU_C2H;
		queue_pdu(c, p);
	}
	if (send_rsp) {
		struct nvme_tcp_rsp *h = (struct nvme_tcp_rsp *)(void *)r->hdr_rsp;
		memset(h, 0, sizeof(*h));
		h->common.pdu_type = NVME_TCP_PDU_CAPSULE_RESP;
		h->common.hlen = sizeof(*h);
		h->common.plen = sizeof(*h) + hd;
		h->rccqe = r->rsp;
		struct tcp_pdu *p = &r->pdu_rsp;
		p->hdr = r->hdr_rsp;
		p->hdr_len = sizeof(*h) + hd;
		if (hd) {
			h->common.flags = NVME_TCP_F_HDGST;
			put_le32(r->hdr_rsp + sizeof(*h), dbk_crc32c(h, sizeof(*h)));
		}
		p->iov = NULL;
		p->iovcnt = 0;
		p->data_len = 0;
		p->has_ddgst = false;
		p->splice = false;
		p->recycle_when_sent = true;
		p->kind = PDU_RSP;
		queue_pdu(c, p);
	}
	schedule_flush(c);
}

/* ------------------------------------------------------------ receive path */

static void rx_reset(struct tcp_conn *c)
{
	if (c->rstate == RS_CLOSED)
		return;
	c->rstate = RS_CH;
	c->hgot = 0;
	c->hneed = sizeof(struct nvme_tcp_common_hdr);
	c->dreq = NULL;
}

static void rx_enter_data(struct tcp_conn *c)
{
	c->data_got = 0;
	c->ddgot = 0;
	c->pad_left = c->pdo - c->hlen - (c->hd ? NVME_TCP_DIGEST_LEN : 0);
	c->rstate = c->pad_left ? RS_PAD : RS_DATA;
}

/* Validate the common header before reading anything else. */
static void rx_handle_ch(struct tcp_conn *c)
{
	const struct nvme_tcp_common_hdr *ch = (const struct nvme_tcp_common_hdr *)(const void *)c->hbuf;
	uint32_t exp_hlen;
	bool digests, data_allowed;

	if (!c->ic_done) {
		if (ch->pdu_type != NVME_TCP_PDU_IC_REQ) {
			conn_fatal(c, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0);
			return;
		}
	} else if (ch->pdu_type == NVME_TCP_PDU_IC_REQ) {
		conn_fatal(c, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0);
		return;
	}
	switch (ch->pdu_type) {
	case NVME_TCP_PDU_IC_REQ:
		exp_hlen = sizeof(struct nvme_tcp_ic_req);
		digests = false;
		data_allowed = false;
		break;
	case NVME_TCP_PDU_CAPSULE_CMD:
		exp_hlen = sizeof(struct nvme_tcp_cmd);
		digests = true;
		data_allowed = true;
		break;
	case NVME_TCP_PDU_H2C_DATA:
		exp_hlen = sizeof(struct nvme_tcp_data_hdr);
		digests = true;
		data_allowed = true;
		break;
	case NVME_TCP_PDU_H2C_TERM_REQ:
		if (ch->hlen != sizeof(struct nvme_tcp_term_req_hdr)) {
			conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, hlen));
			return;
		}
		if (c->pg)
			c->pg->st.term_reqs_rx++;
		DBK_NOTICELOG("nvmf_tcp: H2CTermReq received; closing the connection");
		conn_close(c);
		return;
	default:
		conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, pdu_type));
		return;
	}
	if (ch->hlen != exp_hlen) {
		conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, hlen));
		return;
	}
	/*
	 * On PDUs that may carry digests the digest flags must match what ICReq negotiated: they say where the
	 * data starts, and a digest taken for data would go to disk (nvmf/COMPAT.md). On ICReq, which has no
	 * digests, the flags mean nothing and are ignored, as SPDK's target and nvmet ignore them.
	 */
	bool hd = digests && c->hdgst;
	if (digests && !!(ch->flags & NVME_TCP_F_HDGST) != c->hdgst) {
		conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, flags));
		return;
	}
	uint32_t hdr_total = exp_hlen + (hd ? NVME_TCP_DIGEST_LEN : 0);
	uint32_t data_len = 0;
	bool dd = false;
	if (ch->plen < hdr_total) {
		conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, plen));
		return;
	}
	if (ch->plen == hdr_total) {
		/*
		 * No data: PDO and the DDGST flag describe nothing here, so stray values are ignored, as SPDK's
		 * target and nvmet ignore them; the length alone frames the PDU.
		 */
		if (ch->pdu_type == NVME_TCP_PDU_H2C_DATA) {
			conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, plen));
			return;
		}
	} else {
		if (!data_allowed) {
			conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, plen));
			return;
		}
		/*
		 * We answer CPDA 0, so the data may start anywhere after the header (+digest); padding before it is
		 * skipped. An unaligned PDO is taken, as SPDK's target and nvmet take it (nvmf/COMPAT.md). A PDO inside
		 * the header is refused: no reading of such a PDU is sure, and a wrong one writes wrong bytes.
		 */
		if (ch->pdo < hdr_total) {
			conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, pdo));
			return;
		}
		if (!!(ch->flags & NVME_TCP_F_DDGST) != c->ddgst) {
			conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, flags));
			return;
		}
		dd = c->ddgst;
		uint32_t dlen = dd ? NVME_TCP_DIGEST_LEN : 0;
		if (ch->plen <= (uint32_t)ch->pdo + dlen) {
			conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, plen));
			return;
		}
		data_len = ch->plen - ch->pdo - dlen;
		uint32_t limit;
		if (ch->pdu_type == NVME_TCP_PDU_CAPSULE_CMD)
			limit = c->qp.qid != 0 ? c->tt->base.opts.in_capsule_data_size : c->tt->icd_buf_size;
		else
			limit = c->tt->maxh2cdata;
		if (data_len > limit) {
			conn_fatal(c, NVME_TCP_FES_DATA_TRANSFER_LIMIT_EXCEEDED,
				   offsetof(struct nvme_tcp_common_hdr, plen));
			return;
		}
	}
	c->ptype = ch->pdu_type;
	c->pflags = ch->flags;
	c->hlen = exp_hlen;
	c->plen = ch->plen;
	c->pdo = ch->pdo;
	c->hd = hd;
	c->dd = dd;
	c->data_len = data_len;
	c->hneed = hdr_total;
	c->rstate = RS_HDR;
}

static void rx_icreq(struct tcp_conn *c)
{
	const struct nvme_tcp_ic_req *ic = (const struct nvme_tcp_ic_req *)(const void *)c->hbuf;
	if (ic->pfv != NVME_TCP_PFV_1_0) {
		conn_fatal(c, NVME_TCP_FES_INVALID_DATA_UNSUPPORTED_PARAMETER, offsetof(struct nvme_tcp_ic_req, pfv));
		return;
	}
	if (ic->hpda > 31) {
		conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_ic_req, hpda));
		return;
	}
	c->hpda = ic->hpda;
	c->hdgst = ic->dgst & NVME_TCP_ICREQ_DGST_HDGST;
	c->ddgst = ic->dgst & NVME_TCP_ICREQ_DGST_DDGST;
	c->maxr2t = ic->maxr2t;
	uint32_t align = (c->hpda + 1u) * 4u;
	uint32_t hdr = sizeof(struct nvme_tcp_data_hdr) + (c->hdgst ? NVME_TCP_DIGEST_LEN : 0);
	c->c2h_pdo = (hdr + align - 1) / align * align;

	struct nvme_tcp_ic_resp *rsp = (struct nvme_tcp_ic_resp *)(void *)c->ic_hdr;
	memset(rsp, 0, sizeof(*rsp));
	rsp->common.pdu_type = NVME_TCP_PDU_IC_RESP;
	rsp->common.hlen = sizeof(*rsp);
	rsp->common.plen = sizeof(*rsp);
	rsp->pfv = NVME_TCP_PFV_1_0;
	rsp->cpda = 0;
	rsp->dgst = ic->dgst & (NVME_TCP_ICREQ_DGST_HDGST | NVME_TCP_ICREQ_DGST_DDGST);
	rsp->maxh2cdata = c->tt->maxh2cdata;
	struct tcp_pdu *p = &c->ic_pdu;
	memset(p, 0, sizeof(*p));
	p->hdr = c->ic_hdr;
	p->hdr_len = sizeof(*rsp);
	p->kind = PDU_IC;
	queue_pdu(c, p);
	c->ic_done = true;
	rx_reset(c);
}

/*
 * A Write whose data comes in the capsule: when the bdev lends memory for the written blocks, receive the data
 * there instead of into the request's in-capsule buffer (one copy fewer; a large payload then goes from the
 * socket to the bdev with no copy at all). Only what capsule_ready would accept as it is; anything else takes
 * the buffer and capsule_ready reports the error. Not with a data digest (bytes that fail it could not be taken
 * back). False: no lend, nothing changed.
 */
static bool icd_lend(struct tcp_conn *c, struct tcp_req *r)
{
	const struct nvme_cmd *cmd = &r->cmd;
	const struct nvme_sgl_desc *sgl = &cmd->sgl1;
	if (!c->tt->base.opts.zcopy || c->ddgst || !r->cid_owned || cmd->opc == NVME_OPC_FABRIC ||
	    (cmd->opc & 3) != 1 || sgl->type != NVME_SGL_TYPE_DATA_BLOCK || sgl->subtype != NVME_SGL_SUBTYPE_OFFSET ||
	    sgl->address != 0 || sgl->length != c->data_len || c->data_len > c->tt->base.opts.max_io_size)
		return false;
	r->req.xfer = DBK_NVMF_XFER_HOST_TO_CTRLR;
	r->req.length = c->data_len;
	r->orig_len = c->data_len;
	r->req.lend_ok = true;
	if (!dbk_nvmf_request_lend_write(&r->req)) {
		r->req.xfer = DBK_NVMF_XFER_NONE;
		r->req.length = 0;
		r->orig_len = 0;
		r->req.lend_ok = false;
		return false;
	}
	if (c->pg)
		c->pg->st.rx_lent_writes++;
	return true;
}

static void rx_capsule(struct tcp_conn *c)
{
	const struct nvme_tcp_cmd *pc = (const struct nvme_tcp_cmd *)(const void *)c->hbuf;
	struct tcp_req *r = c->free_reqs;
	if (!dbk_nvmf_qpair_is_active(&c->qp)) {
		/* The core is tearing this qpair down: take nothing more. */
		conn_close(c);
		return;
	}
	if (r == NULL || (c->qp.sq_size && c->active >= c->qp.sq_size)) {
		DBK_NOTICELOG("nvmf_tcp: more commands outstanding than the queue depth (%u)", c->active);
		conn_fatal(c, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0);
		return;
	}
	c->free_reqs = r->next;
	r->next = NULL;
	c->active++;
	r->state = TR_RECV_CAPSULE;
	memcpy(&r->cmd, &pc->ccsqe, sizeof(r->cmd));
	memset(&r->rsp, 0, sizeof(r->rsp));
	r->req.xfer = DBK_NVMF_XFER_NONE;
	r->req.length = 0;
	r->req.iovcnt = 0;
	r->orig_len = 0;
	r->h2c_done = 0;
	r->r2t_end = 0;
	r->r2t_active = false;
	r->ddgst_err = false;
	r->req.lend_ok = false;
	uint16_t cid = r->cmd.cid;
	r->cid_mapped = false;
	if (r->cmd.opc == NVME_OPC_ASYNC_EVENT_REQUEST && c->qp.qid == 0) {
		/*
		 * An AER waits, without data, until an event: it takes no part in the CID check. SPDK's host
		 * completes its AERs locally at shutdown and reuses their CIDs for the Property Get of CC; SPDK's
		 * target and nvmet do not check CIDs at all (nvmf/COMPAT.md).
		 */
		r->cid_owned = true;
	} else if (c->cid_map[cid >> 3] & (1u << (cid & 7))) {
		r->cid_owned = false;
	} else {
		c->cid_map[cid >> 3] |= (uint8_t)(1u << (cid & 7));
		r->cid_owned = true;
		r->cid_mapped = true;
	}
	if (c->data_len) {
		const struct nvme_sgl_desc *sgl = &r->cmd.sgl1;
		if (sgl->type == NVME_SGL_TYPE_DATA_BLOCK && sgl->subtype == NVME_SGL_SUBTYPE_OFFSET &&
		    c->data_len > sgl->length) {
			/* In-capsule data beyond what the command describes. */
			conn_fatal(c, NVME_TCP_FES_DATA_TRANSFER_OUT_OF_RANGE, offsetof(struct nvme_tcp_common_hdr, plen));
			return;
		}
		if (icd_lend(c, r)) {
			/* In-capsule data of a Write goes straight into the bdev's memory. */
			c->diov = r->req.iov;
			c->diovcnt = r->req.iovcnt;
		} else {
			c->icd_iov.iov_base = r->icd;
			c->icd_iov.iov_len = c->data_len;
			c->diov = &c->icd_iov;
			c->diovcnt = 1;
		}
		c->doff = 0;
		c->dreq = r;
		rx_enter_data(c);
		return;
	}
	rx_reset(c);
	capsule_ready(r, 0, true);
}

static void rx_h2c(struct tcp_conn *c)
{
	const struct nvme_tcp_data_hdr *h = (const struct nvme_tcp_data_hdr *)(const void *)c->hbuf;
	if (h->ttag >= c->nreqs) {
		conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_data_hdr, ttag));
		return;
	}
	struct tcp_req *r = &c->reqs[h->ttag];
	if (r->state != TR_WAIT_H2C || !r->r2t_active || r->pdu_data.queued) {
		conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_data_hdr, ttag));
		return;
	}
	if (h->cccid != r->cmd.cid) {
		conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_data_hdr, cccid));
		return;
	}
	if (h->datal != c->data_len) {
		conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_data_hdr, datal));
		return;
	}
	if (h->datao != r->h2c_done) {
		conn_fatal(c, NVME_TCP_FES_DATA_TRANSFER_OUT_OF_RANGE, offsetof(struct nvme_tcp_data_hdr, datao));
		return;
	}
	if ((uint64_t)h->datao + h->datal > r->r2t_end) {
		conn_fatal(c, NVME_TCP_FES_DATA_TRANSFER_OUT_OF_RANGE, offsetof(struct nvme_tcp_data_hdr, datal));
		return;
	}
	/*
	 * Kept though SPDK and nvmet ignore the flag (nvmf/COMPAT.md): a LAST_PDU before the end means the host
	 * sends no more, and waiting would pin this command's buffer (or lent bdev memory) until KATO.
	 */
	if ((c->pflags & NVME_TCP_F_DATA_LAST) && h->datao + h->datal != r->r2t_end) {
		conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, flags));
		return;
	}
	c->diov = r->req.iov;
	c->diovcnt = r->req.iovcnt;
	c->doff = h->datao;
	c->dreq = r;
	rx_enter_data(c);
}

static void rx_handle_hdr(struct tcp_conn *c)
{
	if (c->hd) {
		uint32_t crc = dbk_crc32c(c->hbuf, c->hlen);
		if (crc != get_le32(c->hbuf + c->hlen)) {
			if (c->pg)
				c->pg->st.hdgst_errors++;
			conn_fatal(c, NVME_TCP_FES_HDGST_ERROR, 0);
			return;
		}
	}
	if (c->pg)
		c->pg->st.rx_pdus++;
	switch (c->ptype) {
	case NVME_TCP_PDU_IC_REQ:
		rx_icreq(c);
		break;
	case NVME_TCP_PDU_CAPSULE_CMD:
		rx_capsule(c);
		break;
	case NVME_TCP_PDU_H2C_DATA:
		rx_h2c(c);
		break;
	default:
		conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, 0);
		break;
	}
}

/* All data (and its digest) of the current PDU is in. */
static void rx_pdu_data_done(struct tcp_conn *c, bool ddgst_ok)
{
	struct tcp_req *r = c->dreq;
	uint8_t type = c->ptype;
	uint32_t len = c->data_len;
	if (!ddgst_ok && c->pg)
		c->pg->st.ddgst_errors++;
	rx_reset(c);
	if (type == NVME_TCP_PDU_CAPSULE_CMD) {
		if (r->req.lent && c->pg)
			c->pg->st.rx_zcopy_bytes += len;
		capsule_ready(r, len, ddgst_ok);
		return;
	}
	/* H2CData */
	r->h2c_done += len;
	if (r->req.lent && c->pg)
		c->pg->st.rx_zcopy_bytes += len;
	if (!ddgst_ok)
		r->ddgst_err = true;
	if (r->h2c_done < r->r2t_end)
		return;
	r->r2t_active = false;
	if (r->h2c_done < r->req.length) {
		r2t_send(r);
		schedule_flush(c);
		return;
	}
	if (r->ddgst_err)
		req_fail(r, NVME_SCT_GENERIC, NVME_SC_TRANSIENT_TRANSPORT_ERROR);
	else
		req_exec(r);
}

static void rx_data_complete(struct tcp_conn *c)
{
	if (c->dd) {
		c->rstate = RS_DDGST;
		c->ddgot = 0;
	} else {
		rx_pdu_data_done(c, true);
	}
}

/* Parse everything in rbuf[rpos, rlen). */
static void rx_consume(struct tcp_conn *c)
{
	while (c->rpos < c->rlen && c->rstate != RS_CLOSED) {
		uint32_t avail = c->rlen - c->rpos;
		const uint8_t *p = c->rbuf + c->rpos;
		uint32_t take;
		switch (c->rstate) {
		case RS_CH:
		case RS_HDR:
			take = MIN(avail, c->hneed - c->hgot);
			memcpy(c->hbuf + c->hgot, p, take);
			c->hgot += take;
			c->rpos += take;
			if (c->hgot == c->hneed) {
				if (c->rstate == RS_CH)
					rx_handle_ch(c);
				else
					rx_handle_hdr(c);
			}
			break;
		case RS_PAD:
			take = MIN(avail, c->pad_left);
			c->pad_left -= take;
			c->rpos += take;
			if (c->pad_left == 0)
				c->rstate = RS_DATA;
			break;
		case RS_DATA:
			take = MIN(avail, c->data_len - c->data_got);
			iov_copy_in(c->diov, c->diovcnt, c->doff + c->data_got, p, take);
			c->data_got += take;
			c->rpos += take;
			if (c->data_got == c->data_len)
				rx_data_complete(c);
			break;
		case RS_DDGST:
			take = MIN(avail, NVME_TCP_DIGEST_LEN - c->ddgot);
			memcpy(c->ddbuf + c->ddgot, p, take);
			c->ddgot += take;
			c->rpos += take;
			if (c->ddgot == NVME_TCP_DIGEST_LEN) {
				uint32_t crc = iov_crc(c->diov, c->diovcnt, c->doff, c->data_len);
				rx_pdu_data_done(c, crc == get_le32(c->ddbuf));
			}
			break;
		default:
			return;
		}
	}
}

/*
 * While large H2C data is expected, or the tail of a large payload is being read, read little more than the
 * rest of the current PDU and the next header (a command capsule's, the largest): a large payload behind it
 * (H2CData, or a big capsule after a big capsule) then goes straight to its buffer instead of through rbuf and
 * a copy. Costs a receive per PDU, which large transfers can afford.
 */
static size_t rx_small_want(const struct tcp_conn *c)
{
	size_t left;
	switch (c->rstate) {
	case RS_CH:
	case RS_HDR:
		left = c->hneed - c->hgot;
		break;
	case RS_PAD:
		left = c->pad_left;
		break;
	case RS_DATA:
		left = c->data_len - c->data_got + (c->dd ? NVME_TCP_DIGEST_LEN : 0);
		break;
	case RS_DDGST:
		left = NVME_TCP_DIGEST_LEN - c->ddgot;
		break;
	default:
		left = 0;
		break;
	}
	left += sizeof(struct nvme_tcp_cmd) + NVME_TCP_DIGEST_LEN;
	return MIN(left, (size_t)TCP_RBUF_SIZE);
}

static void conn_recv(struct tcp_conn *c)
{
	struct iovec iov[DBK_NVMF_MAX_IOVS + 1];
	for (int round = 0; round < TCP_MAX_RECV_ROUNDS && !c->closing; round++) {
		ssize_t n;
		size_t want;
		c->rpos = c->rlen = 0;
		uint32_t remaining = c->data_len - c->data_got;
		if (c->rstate == RS_DATA && remaining >= TCP_DIRECT_RECV_MIN) {
			/* Large payload: straight into the data buffers, then whatever follows into rbuf. */
			int cnt = iov_slice(c->diov, c->diovcnt, c->doff + c->data_got, remaining, iov,
					    DBK_NVMF_MAX_IOVS);
			size_t direct = 0;
			for (int i = 0; i < cnt; i++)
				direct += iov[i].iov_len;
			iov[cnt].iov_base = c->rbuf;
			iov[cnt].iov_len = TCP_RBUF_SIZE;
			if (c->data_len >= TCP_RX_EXACT_MIN) {
				/* Large payloads come in runs (H2CData after H2CData, big capsule after big capsule):
				 * take only this PDU's digest and the next header of the same type, so the next
				 * payload goes straight to its buffer too instead of through rbuf and a copy. */
				iov[cnt].iov_len = (c->dd ? NVME_TCP_DIGEST_LEN : 0) + (c->hd ? NVME_TCP_DIGEST_LEN : 0) +
						   (c->ptype == NVME_TCP_PDU_H2C_DATA ? sizeof(struct nvme_tcp_data_hdr)
										    : sizeof(struct nvme_tcp_cmd));
			}
			want = direct + iov[cnt].iov_len;
			n = readv(c->fd, iov, cnt + 1);
			if (n > 0) {
				uint32_t d = (uint32_t)MIN((size_t)n, direct);
				c->data_got += d;
				c->rlen = (uint32_t)((size_t)n - d);
				c->rx_progress++;
				if (c->pg) {
					c->pg->st.rx_bytes += (uint64_t)n;
					c->pg->st.rx_direct_bytes += d;
				}
				if (c->data_got == c->data_len)
					rx_data_complete(c);
			}
		} else {
			want = TCP_RBUF_SIZE;
			if (c->big_h2c || (c->rstate == RS_DATA && c->data_len >= TCP_RX_EXACT_MIN))
				want = rx_small_want(c);	/* a large payload may follow: see rx_small_want */
			n = recv(c->fd, c->rbuf, want, 0);
			if (n > 0) {
				c->rlen = (uint32_t)n;
				c->rx_progress++;
				if (c->pg)
					c->pg->st.rx_bytes += (uint64_t)n;
			}
		}
		if (n == 0) {
			DBK_INFOLOG("nvmf_tcp: connection closed by the host");
			conn_close(c);
			break;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				DBK_INFOLOG("nvmf_tcp: recv: %s", strerror(errno));
				conn_close(c);
			}
			break;
		}
		rx_consume(c);
		if ((size_t)n < want)
			break;
	}
}

/* --------------------------------------------------------------- send path */

static void pdu_sent(struct tcp_conn *c, struct tcp_pdu *p)
{
	p->queued = false;
	if (c->pg)
		c->pg->st.tx_pdus++;
	if (p->recycle_when_sent && p->req)
		req_recycle(p->req);
}

static void sq_pop(struct tcp_conn *c)
{
	struct tcp_pdu *p = c->sq_head;
	c->sq_head = p->next;
	if (c->sq_head == NULL)
		c->sq_tail = NULL;
	p->next = NULL;
	pdu_sent(c, p);
}

static void sq_drain(struct tcp_conn *c)
{
	while (c->sq_head)
		sq_pop(c);
}

static int pdu_fill_iov(struct tcp_pdu *p, struct iovec *iov, int max)
{
	int n = 0;
	uint32_t skip = p->sent;
	if (skip < p->hdr_len) {
		iov[n].iov_base = p->hdr + skip;
		iov[n].iov_len = p->hdr_len - skip;
		n++;
		skip = 0;
	} else {
		skip -= p->hdr_len;
	}
	if (p->data_len) {
		if (skip < p->data_len) {
			n += iov_slice(p->iov, p->iovcnt, skip, p->data_len - skip, iov + n, max - n);
			skip = 0;
		} else {
			skip -= p->data_len;
		}
	}
	if (p->has_ddgst && n < max) {
		iov[n].iov_base = p->ddgst + skip;
		iov[n].iov_len = NVME_TCP_DIGEST_LEN - skip;
		n++;
	}
	return n;
}

/*
 * Send the head PDU's lent payload without copying it: vmsplice the bdev's
 * pages into the connection's pipe (the pipe holds page references, not
 * copies), then splice the pipe into the socket. The header went out before
 * (sendmsg with MSG_MORE). Returns 1 on progress, 0 when the socket is full,
 * -1 on a connection error. A vmsplice failure with an empty pipe falls back
 * to copying (the PDU continues through sendmsg from where it is).
 */
static int pdu_splice(struct tcp_conn *c, struct tcp_pdu *p)
{
	uint32_t doff = p->sent - p->hdr_len;
	if (c->pipe_len == 0 && p->iov == &p->req->bounce_iov) {
		p->splice = false;	/* bounced while its pipe drained: the rest goes by copy */
		return 1;
	}
	if (c->pipe_len == 0) {
		struct iovec v[DBK_NVMF_MAX_IOVS];
		int nv = iov_slice(p->iov, p->iovcnt, doff, p->data_len - doff, v, DBK_NVMF_MAX_IOVS);
		ssize_t m = vmsplice(c->pipe[1], v, (unsigned long)nv, SPLICE_F_NONBLOCK);
		if (m <= 0) {
			if (m < 0 && errno == EINTR)
				return 1;
			DBK_NOTICELOG("nvmf_tcp: vmsplice: %s; sending this payload by copy",
				      m < 0 ? strerror(errno) : "no progress");
			p->splice = false;
			return 1;
		}
		c->pipe_len = (uint32_t)m;
	}
	bool more = doff + c->pipe_len < p->data_len || p->next != NULL;
	ssize_t n = splice(c->pipe[0], NULL, c->fd, NULL, c->pipe_len,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK | (more ? SPLICE_F_MORE : 0));
	if (n < 0) {
		if (errno == EINTR)
			return 1;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		DBK_INFOLOG("nvmf_tcp: splice: %s", strerror(errno));
		return -1;
	}
	if (n == 0)
		return 0;
	c->pipe_len -= (uint32_t)n;
	c->tx_progress++;
	p->sent += (uint32_t)n;
	if (c->pg) {
		c->pg->st.tx_bytes += (uint64_t)n;
		c->pg->st.tx_zcopy_bytes += (uint64_t)n;
	}
	if (p->sent == p->total)
		sq_pop(c);
	return 1;
}

static void conn_send_failed(struct tcp_conn *c, const char *what)
{
	DBK_INFOLOG("nvmf_tcp: %s: %s", what, strerror(errno));
	c->write_dead = true;
	sq_drain(c);
	conn_close(c);
}

/*
 * One sendmsg for as many queued PDUs as fit (TCP_SEND_IOVS iovecs); a PDU
 * whose payload is spliced ends the batch after its header (MSG_MORE), and its
 * payload follows by pdu_splice.
 */
static void conn_flush(struct tcp_conn *c)
{
	struct iovec iov[TCP_SEND_IOVS];
	while (c->sq_head && !c->write_dead) {
		struct tcp_pdu *h = c->sq_head;
		if (h->splice && h->sent >= h->hdr_len) {
			int rc = pdu_splice(c, h);
			if (rc < 0) {
				conn_send_failed(c, "splice");
				break;
			}
			if (rc == 0) {
				if (c->pg)
					c->pg->st.send_blocked++;
				break;
			}
			continue;
		}
		int n = 0;
		size_t want = 0;
		bool cork = false;
		for (struct tcp_pdu *p = c->sq_head; p; p = p->next) {
			if (n > 0 && n + p->iovcnt + 2 > TCP_SEND_IOVS)
				break;
			if (p->splice) {
				/* Its header now, its payload by splice right after. */
				iov[n].iov_base = p->hdr + p->sent;
				iov[n].iov_len = p->hdr_len - p->sent;
				want += iov[n].iov_len;
				n++;
				cork = true;
				break;
			}
			n += pdu_fill_iov(p, iov + n, TCP_SEND_IOVS - n);
			want += p->total - p->sent;
		}
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT | (cork ? MSG_MORE : 0));
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (c->pg)
					c->pg->st.send_blocked++;
				break;
			}
			conn_send_failed(c, "send");
			break;
		}
		if (c->pg)
			c->pg->st.tx_bytes += (uint64_t)w;
		if (w > 0)
			c->tx_progress++;
		size_t left = (size_t)w;
		while (left > 0 && c->sq_head) {
			struct tcp_pdu *p = c->sq_head;
			if (p->splice) {
				p->sent += (uint32_t)left;	/* only (part of) its header was in this batch */
				left = 0;
				break;
			}
			uint32_t rem = p->total - p->sent;
			if (left >= rem) {
				left -= rem;
				sq_pop(c);
			} else {
				p->sent += (uint32_t)left;
				left = 0;
			}
		}
		if ((size_t)w < want)
			break;	/* socket buffer full (or more PDUs than one call): EPOLLOUT decides */
	}
	if (c->write_dead)
		sq_drain(c);
}

static void conn_update_events(struct tcp_conn *c)
{
	if (c->fdh == NULL)
		return;
	uint32_t want = 0;
	if (!c->closing)
		want |= EPOLLIN;
	if (c->sq_head && !c->write_dead)
		want |= EPOLLOUT;
	if (want == 0) {
		dbk_fd_unregister(&c->fdh);
		return;
	}
	if (want != c->ev) {
		if (dbk_fd_modify(c->fdh, want) == 0)
			c->ev = want;
	}
}

static void conn_fd_cb(void *ctx, uint32_t events)
{
	struct tcp_conn *c = ctx;
	conn_enter(c);
	if (!c->closing && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		conn_recv(c);
	if (c->sq_head)
		conn_flush(c);
	if (c->closing && (events & (EPOLLHUP | EPOLLERR)) && c->sq_head) {
		c->write_dead = true;
		sq_drain(c);
	}
	conn_update_events(c);
	conn_leave(c);
}

/* ------------------------------------------------------------- poll group */

/*
 * Lent memory must not be held hostage by a host that stopped reading: it pins
 * the bdev (its deletion or the namespace's removal would wait for the host).
 * Every TCP_LEND_STALL_US, a connection that has queued lent payloads and sent
 * nothing since the last look gets private copies of them (a cold path: one
 * allocation per payload) and gives the lent memory back. Bytes already in the
 * pipe are page references the kernel holds; they go out as they are.
 */
static void conn_bounce_lent(struct tcp_conn *c)
{
	for (struct tcp_pdu *p = c->sq_head; p; p = p->next) {
		struct tcp_req *r = p->req;
		if (p->kind != PDU_C2H || r == NULL || !r->req.lent || r->bounce)
			continue;
		void *b = malloc(p->data_len ? p->data_len : 1);
		if (b == NULL)
			continue;	/* try again next time */
		uint32_t done = 0;
		for (int i = 0; i < p->iovcnt && done < p->data_len; i++) {
			uint32_t n = MIN((uint32_t)p->iov[i].iov_len, p->data_len - done);
			memcpy((uint8_t *)b + done, p->iov[i].iov_base, n);
			done += n;
		}
		r->bounce = b;
		r->bounce_iov.iov_base = b;
		r->bounce_iov.iov_len = p->data_len;
		p->iov = &r->bounce_iov;
		p->iovcnt = 1;
		if (!(p == c->sq_head && c->pipe_len > 0))
			p->splice = false;	/* a bounce buffer is recycled: never splice it */
		dbk_nvmf_request_release(&r->req);
		if (c->pg)
			c->pg->st.lent_bounced++;
	}
}

/*
 * A connection that received nothing for a watchdog period while Writes wait for their data (H2C or in-capsule)
 * in lent bdev memory: move them to private buffers (what arrived so far copied), so a host that stops sending never pins
 * a bdev. Cold path.
 */
static bool conn_bounce_lent_writes(struct tcp_conn *c)
{
	bool any = false;
	for (uint32_t i = 0; i < c->nreqs; i++) {
		struct tcp_req *r = &c->reqs[i];
		if ((r->state != TR_WAIT_H2C && r->state != TR_RECV_CAPSULE) || !r->req.lent || r->bounce)
			continue;
		any = true;
		void *b = malloc(r->req.length);
		if (b == NULL)
			continue;	/* try again next time */
		/* All of it: the PDU being received may have part of its data in already (not in h2c_done). */
		memcpy(b, r->req.iov[0].iov_base, r->req.length);
		dbk_nvmf_request_release(&r->req);
		r->bounce = b;
		r->req.iov[0].iov_base = b;
		r->req.iov[0].iov_len = r->req.length;
		r->req.iovcnt = 1;	/* c->diov may point at r->req.iov: it follows */
		if (c->pg)
			c->pg->st.lent_writes_bounced++;
	}
	return any;
}

/* Every 100 ms: stalled lent payloads (above), and connections that never sent their ICReq. */
static int group_watchdog(void *ctx)
{
	struct dbk_nvmf_transport_poll_group *pg = ctx;
	uint64_t now = dbk_thread_now_ns();
	int busy = 0;
	for (struct tcp_conn *c = pg->conns, *next; c; c = next) {
		next = c->grp_next;
		if (!c->ic_done && !c->closing && now - c->added_ns > pg->tt->icreq_timeout_ns) {
			DBK_NOTICELOG("nvmf_tcp: no ICReq within %llu ms of connecting; closing the connection",
				      (unsigned long long)(pg->tt->icreq_timeout_ns / 1000000u));
			pg->st.icreq_timeouts++;
			conn_enter(c);
			conn_close(c);
			conn_update_events(c);
			conn_leave(c);	/* may free c */
			busy = 1;
			continue;
		}
		if (c->sq_head && c->tx_progress == c->tx_progress_seen) {
			for (struct tcp_pdu *p = c->sq_head; p; p = p->next) {
				if (p->kind == PDU_C2H && p->req && p->req->req.lent) {
					conn_bounce_lent(c);
					busy = 1;
					break;
				}
			}
		}
		c->tx_progress_seen = c->tx_progress;
		if (c->active && c->rx_progress == c->rx_progress_seen && !c->closing && conn_bounce_lent_writes(c))
			busy = 1;
		c->rx_progress_seen = c->rx_progress;
	}
	return busy ? DBK_POLLER_BUSY : DBK_POLLER_IDLE;
}

static int group_poll(void *ctx)
{
	struct dbk_nvmf_transport_poll_group *pg = ctx;
	int busy = 0;
	while (pg->wait_head) {
		struct tcp_req *r = pg->wait_head;
		uint32_t unit = pg->tt->base.opts.io_unit_size;
		if (pg->nfree < (r->req.length + unit - 1) / unit)
			break;
		pg->wait_head = r->next;
		if (pg->wait_head == NULL)
			pg->wait_tail = NULL;
		r->next = NULL;
		pool_take(pg, r);
		struct tcp_conn *c = r->conn;
		conn_enter(c);
		req_start_data(r);
		conn_leave(c);
		busy = 1;
	}
	while (pg->flush_head) {
		struct tcp_conn *c = pg->flush_head;
		pg->flush_head = c->flush_next;
		c->flush_next = NULL;
		c->in_flush_list = false;
		conn_enter(c);
		conn_flush(c);
		conn_update_events(c);
		conn_leave(c);
		busy = 1;
	}
	return busy ? DBK_POLLER_BUSY : DBK_POLLER_IDLE;
}

static struct dbk_nvmf_transport_poll_group *tcp_poll_group_create(struct dbk_nvmf_transport *transport)
{
	struct tcp_transport *tt = (struct tcp_transport *)transport;
	struct dbk_nvmf_transport_poll_group *pg = calloc(1, sizeof(*pg));
	if (pg == NULL)
		return NULL;
	pg->tt = tt;
	pg->nbufs = tt->bufs_per_group;
	pg->pool_len = (size_t)pg->nbufs * tt->base.opts.io_unit_size;
	/* Reserve address space only: pages are committed when first touched (LIFO reuse keeps it small). */
	pg->pool_mem = mmap(NULL, pg->pool_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			    -1, 0);
	pg->free_bufs = calloc(pg->nbufs, sizeof(void *));
	if (pg->pool_mem == MAP_FAILED || pg->free_bufs == NULL) {
		if (pg->pool_mem != MAP_FAILED)
			munmap(pg->pool_mem, pg->pool_len);
		free(pg->free_bufs);
		free(pg);
		return NULL;
	}
	/* Stack order: buffer 0 is taken first. */
	for (uint32_t i = 0; i < pg->nbufs; i++)
		pg->free_bufs[i] = pg->pool_mem + (size_t)(pg->nbufs - 1 - i) * tt->base.opts.io_unit_size;
	pg->nfree = pg->nbufs;
	pg->poller = dbk_poller_register(group_poll, pg, 0, "nvmf_tcp_group");
	pg->lend_poller = dbk_poller_register(group_watchdog, pg, TCP_LEND_STALL_US, "nvmf_tcp_watchdog");
	if (pg->poller == NULL || pg->lend_poller == NULL) {
		dbk_poller_unregister(&pg->poller);
		dbk_poller_unregister(&pg->lend_poller);
		munmap(pg->pool_mem, pg->pool_len);
		free(pg->free_bufs);
		free(pg);
		return NULL;
	}
	return pg;
}

static void tcp_poll_group_destroy(struct dbk_nvmf_transport_poll_group *pg)
{
	if (pg == NULL)
		return;
	while (pg->conns) {
		DBK_WARNLOG("nvmf_tcp: poll group destroyed with a live connection");
		struct tcp_conn *c = pg->conns;
		c->busy = 0;
		conn_free(c);
	}
	dbk_poller_unregister(&pg->poller);
	dbk_poller_unregister(&pg->lend_poller);
	munmap(pg->pool_mem, pg->pool_len);
	free(pg->free_bufs);
	free(pg);
}

static int tcp_poll_group_add(struct dbk_nvmf_transport_poll_group *pg, struct dbk_nvmf_qpair *qp)
{
	struct tcp_conn *c = conn_of(qp);
	struct tcp_transport *tt = c->tt;
	c->pg = pg;
	c->nreqs = tt->num_reqs;
	c->reqs = calloc(c->nreqs, sizeof(*c->reqs));
	c->rbuf = malloc(TCP_RBUF_SIZE);
	c->icd_mem_len = (size_t)c->nreqs * tt->icd_buf_size;
	c->icd_mem = mmap(NULL, c->icd_mem_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			   -1, 0);
	if (c->icd_mem == MAP_FAILED)
		c->icd_mem = NULL;
	if (c->reqs == NULL || c->rbuf == NULL || c->icd_mem == NULL)
		return -ENOMEM;
	for (uint32_t i = c->nreqs; i-- > 0;) {
		struct tcp_req *r = &c->reqs[i];
		r->conn = c;
		r->idx = (uint16_t)i;
		r->icd = c->icd_mem + (size_t)i * tt->icd_buf_size;
		r->req.qpair = qp;
		r->req.cmd = &r->cmd;
		r->req.rsp = &r->rsp;
		r->pdu_data.req = r;
		r->pdu_rsp.req = r;
		r->state = TR_FREE;
		r->next = c->free_reqs;
		c->free_reqs = r;
	}
	c->rstate = RS_CH;
	c->hgot = 0;
	c->hneed = sizeof(struct nvme_tcp_common_hdr);
	c->ev = EPOLLIN;
	c->fdh = dbk_fd_register(c->fd, EPOLLIN, conn_fd_cb, c, "nvmf_tcp_conn");
	if (c->fdh == NULL)
		return -ENOMEM;
	c->added = true;
	c->added_ns = dbk_thread_now_ns();
	c->grp_next = pg->conns;
	if (pg->conns)
		pg->conns->grp_prev = c;
	pg->conns = c;
	pg->st.conns++;
	return 0;
}

static void tcp_poll_group_dump_stats(struct dbk_nvmf_transport_poll_group *pg, json_t *obj)
{
	uint32_t n = 0;
	for (struct tcp_conn *c = pg->conns; c; c = c->grp_next)
		n++;
	uint32_t waiting = 0;
	for (struct tcp_req *r = pg->wait_head; r; r = r->next)
		waiting++;
	json_object_set_new(obj, "trtype", json_string("TCP"));
	json_object_set_new(obj, "current_qpairs", json_integer(n));
	json_object_set_new(obj, "total_qpairs", json_integer((json_int_t)pg->st.conns));
	json_object_set_new(obj, "pdus_received", json_integer((json_int_t)pg->st.rx_pdus));
	json_object_set_new(obj, "pdus_sent", json_integer((json_int_t)pg->st.tx_pdus));
	json_object_set_new(obj, "bytes_received", json_integer((json_int_t)pg->st.rx_bytes));
	json_object_set_new(obj, "bytes_sent", json_integer((json_int_t)pg->st.tx_bytes));
	json_object_set_new(obj, "bytes_received_direct", json_integer((json_int_t)pg->st.rx_direct_bytes));
	json_object_set_new(obj, "bytes_sent_zcopy", json_integer((json_int_t)pg->st.tx_zcopy_bytes));
	json_object_set_new(obj, "c2h_pdus_lent", json_integer((json_int_t)pg->st.tx_lent_pdus));
	json_object_set_new(obj, "lent_payloads_bounced", json_integer((json_int_t)pg->st.lent_bounced));
	json_object_set_new(obj, "writes_lent", json_integer((json_int_t)pg->st.rx_lent_writes));
	json_object_set_new(obj, "bytes_received_zcopy", json_integer((json_int_t)pg->st.rx_zcopy_bytes));
	json_object_set_new(obj, "lent_writes_bounced", json_integer((json_int_t)pg->st.lent_writes_bounced));
	json_object_set_new(obj, "icreq_timeouts", json_integer((json_int_t)pg->st.icreq_timeouts));
	json_object_set_new(obj, "r2ts_sent", json_integer((json_int_t)pg->st.r2ts_sent));
	json_object_set_new(obj, "fatal_pdu_errors", json_integer((json_int_t)pg->st.fatal_errors));
	json_object_set_new(obj, "header_digest_errors", json_integer((json_int_t)pg->st.hdgst_errors));
	json_object_set_new(obj, "data_digest_errors", json_integer((json_int_t)pg->st.ddgst_errors));
	json_object_set_new(obj, "term_reqs_received", json_integer((json_int_t)pg->st.term_reqs_rx));
	json_object_set_new(obj, "buffer_waits", json_integer((json_int_t)pg->st.buf_waits));
	json_object_set_new(obj, "pending_buffer_requests", json_integer(waiting));
	json_object_set_new(obj, "send_blocked", json_integer((json_int_t)pg->st.send_blocked));
	json_object_set_new(obj, "free_buffers", json_integer(pg->nfree));
	json_object_set_new(obj, "total_buffers", json_integer(pg->nbufs));
}

/* ------------------------------------------------------------- completion */

static void tcp_req_complete(struct dbk_nvmf_request *req)
{
	struct tcp_req *r = treq_of(req);
	if (r->state != TR_EXEC) {
		DBK_ERRLOG("nvmf_tcp: completion of a request not held by the core (state %u)", r->state);
		return;
	}
	req_send_response(r);
}

/* ------------------------------------------------------------ qpair teardown */

static void conn_free(struct tcp_conn *c)
{
	struct dbk_nvmf_transport_poll_group *pg = c->pg;
	/* Best effort: hand what is queued (e.g. a Connect error, a C2HTermReq) to the kernel. */
	if (c->sq_head && c->fd >= 0 && !c->write_dead) {
		c->busy++;
		conn_flush(c);
		c->busy--;
	}
	sq_drain(c);
	if (c->fdh)
		dbk_fd_unregister(&c->fdh);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->pipe[0] >= 0) {
		close(c->pipe[0]);
		close(c->pipe[1]);
		c->pipe[0] = c->pipe[1] = -1;
	}
	if (pg) {
		waitq_remove_conn(pg, c);
		if (c->in_flush_list) {
			struct tcp_conn **pp = &pg->flush_head;
			while (*pp && *pp != c)
				pp = &(*pp)->flush_next;
			if (*pp)
				*pp = c->flush_next;
		}
		if (c->added) {
			if (c->grp_prev)
				c->grp_prev->grp_next = c->grp_next;
			else
				pg->conns = c->grp_next;
			if (c->grp_next)
				c->grp_next->grp_prev = c->grp_prev;
		}
	}
	/* Requests the transport still had (e.g. a Write waiting for its data when the core tore the qpair
	 * down): give back pool buffers, lent bdev memory and private copies. */
	for (uint32_t i = 0; c->reqs && i < c->nreqs; i++) {
		struct tcp_req *r = &c->reqs[i];
		if (pg && r->nbufs)
			pool_release(r);
		if (r->req.lent)
			dbk_nvmf_request_release(&r->req);
		free(r->bounce);
		r->bounce = NULL;
	}
	if (c->icd_mem)
		munmap(c->icd_mem, c->icd_mem_len);
	free(c->reqs);
	free(c->rbuf);
	free(c);
}

static void tcp_qpair_fini(struct dbk_nvmf_qpair *qp)
{
	struct tcp_conn *c = conn_of(qp);
	if (c->busy > 0) {
		c->fini_pending = true;
		c->closing = true;
		c->rstate = RS_CLOSED;
		return;
	}
	conn_free(c);
}

/* ------------------------------------------------------------- addresses */

static int sockaddr_to_addr(const struct sockaddr_storage *ss, struct dbk_nvmf_listen_addr *addr)
{
	memset(addr, 0, sizeof(*addr));
	snprintf(addr->trtype, sizeof(addr->trtype), "TCP");
	uint16_t port;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)ss;
		snprintf(addr->adrfam, sizeof(addr->adrfam), "IPv4");
		if (!inet_ntop(AF_INET, &s->sin_addr, addr->traddr, sizeof(addr->traddr)))
			return -errno;
		port = ntohs(s->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)(const void *)ss;
		snprintf(addr->adrfam, sizeof(addr->adrfam), "IPv6");
		if (!inet_ntop(AF_INET6, &s->sin6_addr, addr->traddr, sizeof(addr->traddr)))
			return -errno;
		port = ntohs(s->sin6_port);
	} else {
		return -EINVAL;
	}
	snprintf(addr->trsvcid, sizeof(addr->trsvcid), "%u", port);
	return 0;
}

static int tcp_qpair_get_peer_addr(struct dbk_nvmf_qpair *qp, struct dbk_nvmf_listen_addr *addr)
{
	struct tcp_conn *c = conn_of(qp);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (c->fd < 0 || getpeername(c->fd, (struct sockaddr *)&ss, &len) != 0)
		return c->fd < 0 ? -ENOTCONN : -errno;
	return sockaddr_to_addr(&ss, addr);
}

static void tcp_qpair_dump_json(struct dbk_nvmf_qpair *qp, json_t *obj)
{
	struct tcp_conn *c = (struct tcp_conn *)qp;

	json_object_set_new(obj, "header_digest", json_boolean(c->hdgst));
	json_object_set_new(obj, "data_digest", json_boolean(c->ddgst));
}

static int tcp_qpair_get_local_addr(struct dbk_nvmf_qpair *qp, struct dbk_nvmf_listen_addr *addr)
{
	struct tcp_conn *c = conn_of(qp);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (c->fd < 0 || getsockname(c->fd, (struct sockaddr *)&ss, &len) != 0)
		return c->fd < 0 ? -ENOTCONN : -errno;
	return sockaddr_to_addr(&ss, addr);
}

/* --------------------------------------------------------------- listening */

static void listener_cb(void *ctx, uint32_t events)
{
	struct tcp_listener *l = ctx;
	(void)events;
	for (int i = 0; i < TCP_ACCEPT_BATCH; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				DBK_ERRLOG("nvmf_tcp: accept on %s:%s: %s", l->addr.traddr, l->addr.trsvcid,
					   strerror(errno));
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (l->tt->base.opts.sock_priority)
			setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &l->tt->base.opts.sock_priority, sizeof(int));
		/* Normally inherited from the listener already (then a no-op). */
		const char *cc = l->tt->base.opts.congestion_control;
		if (cc[0] && setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc, (socklen_t)strlen(cc)) != 0)
			DBK_WARNLOG("nvmf_tcp: TCP_CONGESTION %s: %s (the system's default stays)", cc, strerror(errno));
		struct tcp_conn *c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->pipe[0] = c->pipe[1] = -1;
		c->tt = l->tt;
		c->qp.transport = &l->tt->base;
		c->rstate = RS_CH;
		c->hneed = sizeof(struct nvme_tcp_common_hdr);
		dbk_nvmf_tgt_new_qpair(&c->qp);
	}
}

static bool addr_eq(const struct dbk_nvmf_listen_addr *a, const struct dbk_nvmf_listen_addr *b)
{
	return strcmp(a->traddr, b->traddr) == 0 && strcmp(a->trsvcid, b->trsvcid) == 0 &&
	       strcasecmp(a->adrfam, b->adrfam) == 0;
}

static int tcp_listen(struct dbk_nvmf_transport *transport, const struct dbk_nvmf_listen_addr *addr)
{
	struct tcp_transport *tt = (struct tcp_transport *)transport;
	for (struct tcp_listener *l = tt->listeners; l; l = l->next) {
		if (addr_eq(&l->addr, addr)) {
			l->refs++;
			return 0;
		}
	}
	int family;
	if (addr->adrfam[0] == '\0' || strcasecmp(addr->adrfam, "IPv4") == 0)
		family = AF_INET;
	else if (strcasecmp(addr->adrfam, "IPv6") == 0)
		family = AF_INET6;
	else
		return -EINVAL;
	struct addrinfo hints = {.ai_family = family, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
	struct addrinfo *res = NULL;
	if (addr->traddr[0] == '\0' || addr->trsvcid[0] == '\0' ||
	    getaddrinfo(addr->traddr, addr->trsvcid, &hints, &res) != 0 || res == NULL)
		return -EINVAL;
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int rc = -errno;
		freeaddrinfo(res);
		return rc;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* On the listening socket, so accepted connections start with it: a connection that began under the
	 * system default (e.g. bbr) keeps that default's pacing even after switching, at a high CPU cost. */
	const char *cc = tt->base.opts.congestion_control;
	if (cc[0] && setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc, (socklen_t)strlen(cc)) != 0)
		DBK_WARNLOG("nvmf_tcp: TCP_CONGESTION %s on the listener: %s", cc, strerror(errno));
	if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 512) != 0) {
		int rc = -errno;
		freeaddrinfo(res);
		close(fd);
		DBK_ERRLOG("nvmf_tcp: cannot listen on %s:%s: %s", addr->traddr, addr->trsvcid, strerror(-rc));
		return rc == -EADDRINUSE || rc == -EADDRNOTAVAIL ? rc : (rc == -EACCES ? rc : -EINVAL);
	}
	freeaddrinfo(res);
	struct tcp_listener *l = calloc(1, sizeof(*l));
	if (l == NULL) {
		close(fd);
		return -ENOMEM;
	}
	l->tt = tt;
	l->addr = *addr;
	l->fd = fd;
	l->refs = 1;
	l->fdh = dbk_fd_register(fd, EPOLLIN, listener_cb, l, "nvmf_tcp_listen");
	if (l->fdh == NULL) {
		close(fd);
		free(l);
		return -ENOMEM;
	}
	l->next = tt->listeners;
	tt->listeners = l;
	DBK_NOTICELOG("NVMe/TCP target listening on %s port %s", addr->traddr, addr->trsvcid);
	return 0;
}

static void listener_free(struct tcp_listener *l)
{
	if (l->fdh)
		dbk_fd_unregister(&l->fdh);
	close(l->fd);
	free(l);
}

static void tcp_stop_listen(struct dbk_nvmf_transport *transport, const struct dbk_nvmf_listen_addr *addr)
{
	struct tcp_transport *tt = (struct tcp_transport *)transport;
	for (struct tcp_listener **pp = &tt->listeners; *pp; pp = &(*pp)->next) {
		struct tcp_listener *l = *pp;
		if (!addr_eq(&l->addr, addr))
			continue;
		if (--l->refs > 0)
			return;
		*pp = l->next;
		listener_free(l);
		return;
	}
}

/* --------------------------------------------------------------- transport */

static void tcp_opts_init(struct dbk_nvmf_transport_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_queue_depth = 128;
	o->max_qpairs_per_ctrlr = 128;
	o->in_capsule_data_size = 4096;
	o->max_io_size = 131072;
	o->io_unit_size = 131072;
	o->max_aq_depth = 128;
	o->num_shared_buffers = 511;
	o->buf_cache_size = 32;
	o->zcopy = true;	/* SPDK's default is false; ours: reads from bdevs that lend memory are zero-copy */
	o->c2h_success = true;
	o->sock_priority = 0;
	o->abort_timeout_sec = 1;
}

static struct dbk_nvmf_transport *tcp_create(const struct dbk_nvmf_transport_opts *opts, int *rc, char *err,
					     size_t errlen)
{
	struct dbk_nvmf_transport_opts o = *opts;
	/*
	 * splice() into a socket the peer reset raises SIGPIPE (it has no MSG_NOSIGNAL): a target
	 * must see EPIPE instead. Only a default disposition is changed; a handler someone set stays.
	 */
	struct sigaction sa;
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
#define BAD(...)                                     \
	do {                                         \
		if (err && errlen)                   \
			snprintf(err, errlen, __VA_ARGS__); \
		if (rc)                              \
			*rc = -EINVAL;               \
		return NULL;                         \
	} while (0)
	if (o.max_queue_depth < 2 || o.max_queue_depth > TCP_MAX_QUEUE_DEPTH)
		BAD("max_queue_depth %u out of range [2, %u]", o.max_queue_depth, TCP_MAX_QUEUE_DEPTH);
	if (o.max_aq_depth < 2 || o.max_aq_depth > TCP_MAX_QUEUE_DEPTH)
		BAD("max_aq_depth %u out of range [2, %u]", o.max_aq_depth, TCP_MAX_QUEUE_DEPTH);
	if (o.max_qpairs_per_ctrlr < 2)
		BAD("max_qpairs_per_ctrlr %u must be at least 2", o.max_qpairs_per_ctrlr);
	if (o.max_io_size < 4096 || o.max_io_size % 4)
		BAD("max_io_size %u must be a multiple of 4 and at least 4096", o.max_io_size);
	if (o.io_unit_size < 512)
		BAD("io_unit_size %u must be at least 512", o.io_unit_size);
	if (o.io_unit_size > o.max_io_size)
		o.io_unit_size = o.max_io_size;
	if (o.in_capsule_data_size > TCP_MAX_ICD_SIZE)
		BAD("in_capsule_data_size %u exceeds %u", o.in_capsule_data_size, TCP_MAX_ICD_SIZE);
	uint32_t per_req = (o.max_io_size + o.io_unit_size - 1) / o.io_unit_size;
	if (per_req > DBK_NVMF_MAX_IOVS)
		BAD("max_io_size %u / io_unit_size %u needs more than %d buffers", o.max_io_size, o.io_unit_size,
		    DBK_NVMF_MAX_IOVS);
	if (o.congestion_control[0]) {
		/* Refuse a name the kernel does not offer now rather than warn on every connection. */
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), e = 0;
		if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, o.congestion_control,
					  (socklen_t)strlen(o.congestion_control)) != 0)
			e = errno;
		if (fd >= 0)
			close(fd);
		if (e)
			BAD("congestion_control '%s' is not available: %s (see "
			    "/proc/sys/net/ipv4/tcp_available_congestion_control)",
			    o.congestion_control, strerror(e));
	}
#undef BAD
	struct tcp_transport *tt = calloc(1, sizeof(*tt));
	if (tt == NULL) {
		if (rc)
			*rc = -ENOMEM;
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		return NULL;
	}
	tt->base.ops = &dbk_nvmf_tcp_transport_ops;
	tt->base.opts = o;
	tt->maxh2cdata = TCP_MAXH2CDATA;
	/* DBK_TCP_ICREQ_TIMEOUT_MS (tests): how long a new connection may stay silent before its ICReq. */
	uint64_t icreq_ms = TCP_ICREQ_TIMEOUT_MS;
	const char *ev = getenv("DBK_TCP_ICREQ_TIMEOUT_MS");
	if (ev && *ev) {
		char *end = NULL;
		unsigned long long v = strtoull(ev, &end, 10);
		if (end && *end == '\0' && v >= 1 && v <= 3600000)
			icreq_ms = v;
		else
			DBK_ERRLOG("DBK_TCP_ICREQ_TIMEOUT_MS='%s' ignored (1..3600000 expected)", ev);
	}
	tt->icreq_timeout_ns = icreq_ms * 1000000ull;
	tt->icd_buf_size = (MAX(o.in_capsule_data_size, TCP_ADMIN_ICD_SIZE) + 63u) & ~63u;
	tt->num_reqs = MAX((uint32_t)o.max_queue_depth, o.max_aq_depth);
	tt->max_bufs_per_req = per_req;
	int groups = dbk_reactor_count();
	if (groups < 1)
		groups = 1;
	tt->bufs_per_group = MAX(o.num_shared_buffers / (uint32_t)groups, MAX(o.buf_cache_size, per_req));
	if (rc)
		*rc = 0;
	return &tt->base;
}

static void tcp_destroy(struct dbk_nvmf_transport *transport)
{
	struct tcp_transport *tt = (struct tcp_transport *)transport;
	if (tt == NULL)
		return;
	while (tt->listeners) {
		struct tcp_listener *l = tt->listeners;
		tt->listeners = l->next;
		listener_free(l);
	}
	free(tt);
}

static void tcp_dump_opts_json(struct dbk_nvmf_transport *transport, json_t *obj)
{
	const struct dbk_nvmf_transport_opts *o = &transport->opts;
	json_object_set_new(obj, "trtype", json_string("TCP"));
	json_object_set_new(obj, "max_queue_depth", json_integer(o->max_queue_depth));
	json_object_set_new(obj, "max_io_qpairs_per_ctrlr", json_integer(o->max_qpairs_per_ctrlr - 1));
	json_object_set_new(obj, "in_capsule_data_size", json_integer(o->in_capsule_data_size));
	json_object_set_new(obj, "max_io_size", json_integer(o->max_io_size));
	json_object_set_new(obj, "io_unit_size", json_integer(o->io_unit_size));
	json_object_set_new(obj, "max_aq_depth", json_integer(o->max_aq_depth));
	json_object_set_new(obj, "num_shared_buffers", json_integer(o->num_shared_buffers));
	json_object_set_new(obj, "buf_cache_size", json_integer(o->buf_cache_size));
	json_object_set_new(obj, "dif_insert_or_strip", json_false());
	json_object_set_new(obj, "zcopy", json_boolean(o->zcopy));
	json_object_set_new(obj, "c2h_success", json_boolean(o->c2h_success));
	json_object_set_new(obj, "sock_priority", json_integer(o->sock_priority));
	json_object_set_new(obj, "abort_timeout_sec", json_integer(o->abort_timeout_sec));
	if (o->congestion_control[0])
		json_object_set_new(obj, "congestion_control", json_string(o->congestion_control));
}

const struct dbk_nvmf_transport_ops dbk_nvmf_tcp_transport_ops = {
	.name = "TCP",
	.opts_init = tcp_opts_init,
	.create = tcp_create,
	.destroy = tcp_destroy,
	.listen = tcp_listen,
	.stop_listen = tcp_stop_listen,
	.poll_group_create = tcp_poll_group_create,
	.poll_group_destroy = tcp_poll_group_destroy,
	.poll_group_add = tcp_poll_group_add,
	.poll_group_dump_stats = tcp_poll_group_dump_stats,
	.req_complete = tcp_req_complete,
	.qpair_fini = tcp_qpair_fini,
	.qpair_get_peer_addr = tcp_qpair_get_peer_addr,
	.qpair_get_local_addr = tcp_qpair_get_local_addr,
	.qpair_dump_json = tcp_qpair_dump_json,
	.dump_opts_json = tcp_dump_opts_json,
};
