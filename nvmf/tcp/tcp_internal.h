/*
 * NVMe/TCP transport (target side): what its files share.
 *
 * One connection = one qpair (struct tcp_conn embeds struct dbk_nvmf_qpair).
 * The transport's files, by section:
 *   tcp.c  transport, poll group, listeners, addresses, qpair teardown
 *   req.c  buffer pool, requests: capsules, R2T, responses
 *   rx.c   receive path: the PDU state machine and its validation
 *   tx.c   send path: the send queue, batched sends, zero copy (vmsplice + splice)
 * Below the PDU code a socket seam (sock.h): plain TCP (sock_plain.c) or any
 * other byte stream; the PDU code calls nothing else to move bytes.
 *
 * Receive: large reads into a per-connection buffer, a strict byte-driven
 * PDU state machine (common header -> header(+digest) -> pad -> data ->
 * data digest) validating every header field before the rest is read. Large
 * data payloads are received with readv straight into the request's data
 * buffers (with the receive buffer appended to pick up what follows).
 * Send: a per-connection FIFO of PDUs (headers live in the request / the
 * connection, data iovecs point at the request's buffers), flushed with one
 * writev of many PDUs at the end of each receive batch and from the poll
 * group's poller.
 * Requests: a fixed array per connection; data buffers come from the
 * request's own in-capsule buffer (small transfers) or from the poll group's
 * pool of io_unit_size buffers (FIFO wait queue when empty).
 */
#ifndef DBK_NVMF_TCP_INTERNAL_H
#define DBK_NVMF_TCP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "nvmf/tcp/nvme_tcp.h"
#include "nvmf/tcp/sock.h"
#include "nvmf/transport.h"
#include "thread/thread.h"
#include "util/accept_guard.h"
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
#define TCP_FD_HEADROOM 32u			/* new connections leave this many fds free (RPC, bdevs, pipes) */

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

struct tcp_conn;
struct tcp_req;

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
	struct dbk_accept_guard guard;	/* fd headroom; out of fds: refuse, never spin (util/accept_guard.h) */
	char what[128];			/* "nvmf_tcp ADDR:PORT", for its log lines */
	struct dbk_tls_server *tls;	/* secure channel (sock_tls.h); NULL: plain TCP */
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
	uint64_t pool_reads_bounced;	/* read payloads moved out of the buffer pool: their host stopped reading */
	uint64_t pool_writes_bounced;	/* R2T'd Writes moved out of the buffer pool: their host stopped sending */
	uint64_t icreq_timeouts;	/* connections closed for sending no ICReq in time */
	uint64_t r2ts_sent;		/* R2T PDUs sent */
};

struct tcp_conn {
	struct dbk_nvmf_qpair qp;	/* first */
	struct tcp_transport *tt;
	struct dbk_nvmf_transport_poll_group *pg;
	struct dbk_tcp_sock sock;	/* the byte stream under the PDUs (sock.h) */
	uint32_t hs_want;		/* events the sock's handshake waits for (0: none) */
	struct dbk_fd_handler *fdh;
	uint32_t ev;
	int busy;
	bool added;
	bool ic_done, hdgst, ddgst;
	bool closing;			/* no more reading; transport-only requests dropped */
	bool disconnect_pending, disconnected, fini_pending;
	bool write_dead;
	bool in_flush_list;
	bool rx_again;			/* read again from the poller: the stream holds bytes (sock.h rx_pending) */
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
static inline void iov_copy_in(const struct iovec *iov, int iovcnt, uint32_t off, const uint8_t *src, uint32_t len)
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
static inline int iov_slice(const struct iovec *iov, int iovcnt, uint32_t off, uint32_t len, struct iovec *out, int max)
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

static inline uint32_t iov_crc(const struct iovec *iov, int iovcnt, uint32_t off, uint32_t len)
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

/* The stream holds bytes writev took that are not out yet (sock.h tx_pending). */
static inline bool sock_tx_pending(struct tcp_conn *c)
{
	return c->sock.ops->tx_pending && c->sock.ops->tx_pending(&c->sock);
}

static inline void conn_enter(struct tcp_conn *c)
{
	c->busy++;
}

static inline void schedule_flush(struct tcp_conn *c)
{
	if (c->in_flush_list || c->pg == NULL)
		return;
	c->in_flush_list = true;
	c->flush_next = c->pg->flush_head;
	c->pg->flush_head = c;
}

static inline void req_h2c_over(struct tcp_req *r)
{
	if (r->big_h2c) {
		r->big_h2c = false;
		r->conn->big_h2c--;
	}
}

static inline void queue_pdu(struct tcp_conn *c, struct tcp_pdu *p)
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

/* ------------------------------------------------------ across the files */

/* tcp.c */
void tcp_conn_leave(struct tcp_conn *c);
void tcp_conn_free(struct tcp_conn *c);

/* req.c */
bool tcp_pool_take(struct dbk_nvmf_transport_poll_group *pg, struct tcp_req *r);
void tcp_pool_release(struct tcp_req *r);

/* pool_stall.c: a stalled connection's pool buffers go to private copies while others wait for the pool. */
bool tcp_pool_bounce_needed(const struct tcp_conn *c, const struct tcp_req *r);
bool tcp_pool_bounce_read(struct tcp_conn *c, struct tcp_pdu *p);	/* a queued C2H payload */
bool tcp_pool_bounce_write(struct tcp_conn *c, struct tcp_req *r);	/* an R2T'd Write waiting for data */
void tcp_waitq_remove_conn(struct dbk_nvmf_transport_poll_group *pg, struct tcp_conn *c);
void tcp_req_recycle(struct tcp_req *r);
void tcp_conn_close(struct tcp_conn *c);
void tcp_conn_fatal(struct tcp_conn *c, uint16_t fes, uint32_t fei);
void tcp_req_fail(struct tcp_req *r, int sct, int sc);
void tcp_req_exec(struct tcp_req *r);
void tcp_r2t_send(struct tcp_req *r);
void tcp_req_start_data(struct tcp_req *r);
void tcp_capsule_ready(struct tcp_req *r, uint32_t icd_len, bool ddgst_ok);
void tcp_req_send_response(struct tcp_req *r);

/* rx.c */
void tcp_conn_recv(struct tcp_conn *c);

/* tx.c */
void tcp_conn_flush(struct tcp_conn *c);
void tcp_sq_drain(struct tcp_conn *c);
void tcp_conn_update_events(struct tcp_conn *c);

#endif
