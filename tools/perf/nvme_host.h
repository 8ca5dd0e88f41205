/*
 * daosblk-perf host side of NVMe/TCP: one queue pair = one TCP connection.
 * Non-blocking socket; the owner thread drives it with host_process() (busy poll) or host_exec_sync()
 * (poll(2) with a timeout, for admin commands). No allocation after host_qp_connect().
 */
#ifndef DBK_TOOLS_PERF_NVME_HOST_H
#define DBK_TOOLS_PERF_NVME_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "nvmf/tcp/nvme_tcp.h"

/* Receive path. C2HData payloads land straight in the I/O buffer (readv) when the staging buffer holds none of
 * them. While a read of at least HOST_RX_DIRECT_MIN bytes still waits for payload, reads into the staging buffer
 * stop after HOST_RX_LOOKAHEAD_HDRS PDU headers (and what the current state needs), so of a large payload only
 * the bytes that follow its header within that window are staged and copied; otherwise (small reads only) the
 * staging buffer takes whatever is there, and payloads of fewer than HOST_RX_DIRECT_ANY bytes are copied:
 * cheaper than an extra system call. */
#define HOST_RX_BUF_SIZE (256 * 1024)
#define HOST_RX_DIRECT_MIN (16 * 1024)
#define HOST_RX_DIRECT_ANY 2048
#define HOST_RX_LOOKAHEAD_HDRS 2

struct host_qpair;
struct host_req;
struct host_tls;
struct host_tls_opts;
typedef void (*host_cb)(struct host_qpair *qp, struct host_req *r, void *arg);

struct host_h2c_pdu {
	uint8_t hdr[sizeof(struct nvme_tcp_data_hdr) + NVME_TCP_DIGEST_LEN];
	uint32_t ddgst;
};

struct host_req {
	uint16_t cid;
	uint8_t opc;
	bool active;
	bool h2c;		/* data flows host -> controller */
	bool in_capsule;
	bool big_c2h;		/* counted in qp->big_c2h: a read of >= HOST_RX_DIRECT_MIN bytes, payload incomplete */
	void *buf;
	uint32_t len;
	uint32_t c2h_done;	/* bytes received in C2HData PDUs */
	uint32_t h2c_done;	/* bytes queued in H2CData PDUs */
	uint64_t submit_ns;
	struct nvme_cpl cpl;
	host_cb cb;
	void *cb_arg;
	uint64_t user;		/* caller's cookie */
	uint8_t cmd_hdr[sizeof(struct nvme_tcp_cmd) + NVME_TCP_DIGEST_LEN];
	uint32_t cmd_ddgst;
	struct host_h2c_pdu *h2c_pdus;
	unsigned h2c_next;
	uint32_t tx_pending;	/* entries of the tx ring (capsule, H2CData) that still point into this request */
	bool cpl_deferred;	/* completed by the target while tx_pending: the callback runs once they are sent */
};

enum host_rx_state { RX_CH, RX_PAD, RX_DATA, RX_DDGST };

struct host_qpair {
	int fd;
	struct host_tls *tls;	/* TLS 1.3 with a PSK (tls_host.h); NULL: plain TCP */
	uint16_t qid;
	bool hdgst, ddgst;
	uint32_t maxh2cdata;
	uint32_t icd_size;	/* in-capsule data bytes the controller accepts on this queue */
	char peer[300];
	char congestion[16];	/* TCP congestion control of the connection (getsockopt after connect) */
	int rcvbuf;		/* SO_RCVBUF of the connection as the kernel reports it (getsockopt after connect) */

	struct host_req *reqs;
	uint16_t nreqs;
	uint16_t *free_stack;
	uint16_t nfree;
	unsigned nh2c;
	unsigned big_c2h;	/* outstanding large reads with payload still to come: keep staging reads short */

	struct iovec *txr;	/* ring of pending iovecs */
	struct host_req **txo;	/* the request each ring entry belongs to */
	size_t txcap, txhead, txtail, txoff;

	uint8_t *rbuf;
	size_t rcap, rhead, rtail;
	enum host_rx_state rx_state;
	struct host_req *rx_req;
	uint8_t *rx_dst;
	uint32_t rx_left, rx_pad, rx_datal, rx_crc;
	uint8_t rx_flags, rx_ddgst[4], rx_ddgst_have;

	uint64_t completions;
	uint64_t data_success;	/* reads completed by C2HData DATA_SUCCESS (no CapsuleResp) */
	uint64_t c2h_staged;	/* C2HData payload bytes received into the staging buffer, then copied */
	uint64_t c2h_direct;	/* C2HData payload bytes received straight into the I/O buffer */
	bool failed;
	char err[512];
};

uint64_t host_now_ns(void);

/* Socket options set before connect(); NULL or zeroed: the system's defaults. */
struct host_sock_opts {
	/* TCP congestion control (so the system default, e.g. bbr with its pacing, is never initialised on the
	 * connection); NULL or "" for the system default. */
	const char *congestion;
	/* SO_RCVBUF in bytes (the kernel doubles it and caps the request at net.core.rmem_max); 0 keeps the
	 * kernel's receive buffer autotuning. */
	int rcvbuf;
	/* TLS 1.3 with a PSK (tls_host.h) right after the TCP connect; NULL: plain NVMe/TCP. */
	const struct host_tls_opts *tls;
};

/* TCP connect (10 s timeout), ICReq/ICResp exchange and validation, allocation of nreqs request slots able to
 * carry up to max_io bytes each, with the socket options of so (NULL: system defaults). Returns 0, or -1 with
 * qp->err set (qp is then closed). */
int host_qp_connect(struct host_qpair *qp, const char *traddr, const char *trsvcid, int adrfam, bool hdgst,
		    bool ddgst, uint16_t nreqs, uint32_t max_io, const struct host_sock_opts *so);
/* The same on an already connected, non-blocking stream socket fd (taken over; closed by host_qp_close, also on
 * failure): the fuzz harness plays the target through a socketpair. */
int host_qp_connect_fd(struct host_qpair *qp, int fd, bool hdgst, bool ddgst, uint16_t nreqs, uint32_t max_io);
/* Whether TCP congestion control `name` can be set on a TCP socket by this process: 0, or -1 with a message
 * naming what is available (/proc/sys/net/ipv4/tcp_available_congestion_control) in err. */
int host_congestion_check(const char *name, char *err, size_t errlen);
void host_qp_close(struct host_qpair *qp);

/* A free request slot or NULL. */
struct host_req *host_req_get(struct host_qpair *qp);
/* Queue a command (cid, SGL and PSDT are filled in). h2c: buf is sent to the controller (in-capsule when
 * len <= icd_size, otherwise on R2T). The callback runs from host_process() once the command completed;
 * the slot is already free again then. Returns 0 or -1 (qp->err). */
int host_submit(struct host_qpair *qp, struct host_req *r, const struct nvme_cmd *cmd, void *buf, uint32_t len,
		bool h2c, host_cb cb, void *arg);
/* Send what is queued and receive/parse what arrived, without blocking. Returns completions run, -1 on a fatal
 * error (qp->err). */
int host_process(struct host_qpair *qp);
bool host_tx_pending(const struct host_qpair *qp);
/* Run one command to completion (timeout_ms). Returns 0 when it completed (status in *cpl), -1 otherwise. */
int host_exec_sync(struct host_qpair *qp, const struct nvme_cmd *cmd, void *buf, uint32_t len, bool h2c,
		   struct nvme_cpl *cpl, int timeout_ms);
/* Oldest outstanding command's age in ns (0 when idle). */
uint64_t host_oldest_ns(const struct host_qpair *qp, uint64_t now);

/* "SCT 0x1 SC 0x82 (Connect: invalid parameters)" */
const char *host_status_str(uint16_t status, char *buf, size_t len);

#endif
