/* daosblk-perf: NVMe/TCP host queue pair (connection, PDUs, digests, R2T/H2CData, C2HData). */
#include "tools/perf/nvme_host.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/crc32c.h"
#ifdef DBK_PERF_TLS
#include "tools/perf/tls_host.h"
#endif

/* The queue pair's byte stream: the socket, or TLS over it. */
static ssize_t qp_readv(struct host_qpair *qp, const struct iovec *iov, int iovcnt)
{
#ifdef DBK_PERF_TLS
	if (qp->tls)
		return host_tls_readv(qp->tls, iov, iovcnt);
#endif
	if (iovcnt == 1)
		return recv(qp->fd, iov[0].iov_base, iov[0].iov_len, MSG_DONTWAIT);
	return readv(qp->fd, iov, iovcnt);
}

static ssize_t qp_writev(struct host_qpair *qp, struct iovec *iov, int iovcnt)
{
#ifdef DBK_PERF_TLS
	if (qp->tls)
		return host_tls_writev(qp->tls, iov, iovcnt);
#endif
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
	return sendmsg(qp->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Bytes the stream holds that poll(2) would not announce / bytes taken but not out yet. */
static bool qp_rx_held(const struct host_qpair *qp)
{
#ifdef DBK_PERF_TLS
	return qp->tls && host_tls_rx_pending(qp->tls);
#else
	(void)qp;
	return false;
#endif
}

static bool qp_tx_held(const struct host_qpair *qp)
{
#ifdef DBK_PERF_TLS
	return qp->tls && host_tls_tx_pending(qp->tls);
#else
	(void)qp;
	return false;
#endif
}

#define TX_BATCH 64

uint64_t host_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int fail(struct host_qpair *qp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct host_qpair *qp, const char *fmt, ...)
{
	if (qp->failed)
		return -1;
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(qp->err, sizeof(qp->err), "%.100s (qid %u): %.380s", qp->peer, qp->qid, msg);
	qp->failed = true;
	return -1;
}

const char *host_status_str(uint16_t status, char *buf, size_t len)
{
	unsigned sct = NVME_STATUS_GET_SCT(status), sc = NVME_STATUS_GET_SC(status);
	const char *name = "";
	if (sct == NVME_SCT_GENERIC) {
		switch (sc) {
		case NVME_SC_SUCCESS: name = "success"; break;
		case NVME_SC_INVALID_OPCODE: name = "invalid opcode"; break;
		case NVME_SC_INVALID_FIELD: name = "invalid field in command"; break;
		case NVME_SC_COMMAND_ID_CONFLICT: name = "command ID conflict"; break;
		case NVME_SC_DATA_TRANSFER_ERROR: name = "data transfer error"; break;
		case NVME_SC_INTERNAL_DEVICE_ERROR: name = "internal error"; break;
		case NVME_SC_ABORTED_BY_REQUEST: name = "aborted by request"; break;
		case NVME_SC_ABORTED_SQ_DELETION: name = "aborted: SQ deletion"; break;
		case NVME_SC_INVALID_NAMESPACE_OR_FORMAT: name = "invalid namespace or format"; break;
		case NVME_SC_COMMAND_SEQUENCE_ERROR: name = "command sequence error"; break;
		case NVME_SC_DATA_SGL_LENGTH_INVALID: name = "data SGL length invalid"; break;
		case NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID: name = "SGL descriptor type invalid"; break;
		case NVME_SC_INVALID_SGL_OFFSET: name = "invalid SGL offset"; break;
		case NVME_SC_KEEP_ALIVE_EXPIRED: name = "keep alive timer expired"; break;
		case NVME_SC_KEEP_ALIVE_INVALID: name = "keep alive timeout invalid"; break;
		case NVME_SC_TRANSIENT_TRANSPORT_ERROR: name = "transient transport error"; break;
		case NVME_SC_LBA_OUT_OF_RANGE: name = "LBA out of range"; break;
		case NVME_SC_CAPACITY_EXCEEDED: name = "capacity exceeded"; break;
		case NVME_SC_NAMESPACE_NOT_READY: name = "namespace not ready"; break;
		default: name = "generic"; break;
		}
	} else if (sct == NVME_SCT_COMMAND_SPECIFIC) {
		switch (sc) {
		case NVME_SC_INVALID_QUEUE_IDENTIFIER: name = "invalid queue identifier"; break;
		case NVME_SC_INVALID_QUEUE_SIZE: name = "invalid queue size"; break;
		case NVME_SC_INVALID_LOG_PAGE: name = "invalid log page"; break;
		case NVME_SC_INVALID_CONTROLLER_ID: name = "invalid controller ID"; break;
		case 0x80: name = "connect: incompatible format / conflicting attributes"; break;
		case 0x81: name = "connect: controller busy / invalid protection info"; break;
		case 0x82: name = "connect: invalid parameters / write to read-only range"; break;
		case 0x83: name = "connect: restart discovery"; break;
		case 0x84: name = "connect: invalid host"; break;
		case 0x85: name = "connect: invalid queue type"; break;
		default: name = "command specific"; break;
		}
	} else if (sct == NVME_SCT_MEDIA_ERROR) {
		name = "media/data integrity error";
	} else if (sct == NVME_SCT_PATH) {
		name = "path related";
	} else {
		name = "vendor/unknown";
	}
	snprintf(buf, len, "SCT 0x%x SC 0x%02x (%s%s)", sct, sc, name, (status & NVME_STATUS_DNR) ? ", DNR" : "");
	return buf;
}

/* ---------------------------------------------------------------- connect */

static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int rc;
	do {
		rc = poll(&pfd, 1, timeout_ms);
	} while (rc < 0 && errno == EINTR);
	return rc;
}

/* First line of a /proc file, or "?" */
static void read_line(const char *path, char *buf, size_t len)
{
	snprintf(buf, len, "?");
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = 0;
	fclose(f);
}

#define CC_AVAILABLE "/proc/sys/net/ipv4/tcp_available_congestion_control"
#define CC_ALLOWED "/proc/sys/net/ipv4/tcp_allowed_congestion_control"

static int set_congestion(int fd, const char *name, char *err, size_t errlen)
{
	char avail[160];
	/* The kernel silently cuts names at TCP_CA_NAME_MAX - 1 = 15 bytes. */
	if (!*name || strlen(name) > 15) {
		read_line(CC_AVAILABLE, avail, sizeof(avail));
		snprintf(err, errlen, "TCP congestion control '%.40s' is not available (names are 1..15 bytes); "
			 CC_AVAILABLE ": %s", name, avail);
		return -1;
	}
	if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, (socklen_t)strlen(name)) == 0)
		return 0;
	int e = errno;
	read_line(CC_AVAILABLE, avail, sizeof(avail));
	if (e == EPERM) {
		char allowed[160];
		read_line(CC_ALLOWED, allowed, sizeof(allowed));
		snprintf(err, errlen, "TCP congestion control '%s' is not allowed without CAP_NET_ADMIN (%s); "
			 CC_ALLOWED ": %s; " CC_AVAILABLE ": %s", name, strerror(e), allowed, avail);
	} else {
		snprintf(err, errlen, "TCP congestion control '%s' is not available (%s; a module may need loading: "
			 "modprobe tcp_%s); " CC_AVAILABLE ": %s", name, strerror(e), name, avail);
	}
	return -1;
}

int host_congestion_check(const char *name, char *err, size_t errlen)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	int rc = set_congestion(fd, name, err, errlen);
	close(fd);
	return rc;
}

static int tcp_connect(struct host_qpair *qp, const char *traddr, const char *trsvcid, int adrfam,
		       const struct host_sock_opts *so)
{
	const char *congestion = so ? so->congestion : NULL;
	struct addrinfo hints = {.ai_family = adrfam == 6 ? AF_INET6 : AF_INET, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(traddr, trsvcid, &hints, &res);
	if (rc)
		return fail(qp, "cannot resolve %s port %s: %s", traddr, trsvcid, gai_strerror(rc));
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(res);
		return fail(qp, "socket: %s", strerror(errno));
	}
	if (congestion && *congestion) {
		char msg[380];
		if (set_congestion(fd, congestion, msg, sizeof(msg))) {
			freeaddrinfo(res);
			close(fd);
			return fail(qp, "%s", msg);
		}
	}
	/* Before connect(): the window scale is chosen from the receive buffer at SYN time. */
	if (so && so->rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &so->rcvbuf, sizeof(so->rcvbuf)) != 0) {
		int e = errno;
		freeaddrinfo(res);
		close(fd);
		return fail(qp, "SO_RCVBUF %d: %s", so->rcvbuf, strerror(e));
	}
	rc = connect(fd, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	if (rc < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		return fail(qp, "TCP connect failed: %s", strerror(e));
	}
	if (rc < 0) {
		rc = wait_fd(fd, POLLOUT, 10000);
		if (rc == 0) {
			close(fd);
			return fail(qp, "TCP connect timed out after 10 s");
		}
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr) {
			close(fd);
			return fail(qp, "TCP connect failed: %s", strerror(soerr));
		}
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	socklen_t cl = sizeof(qp->congestion) - 1;
	if (getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, qp->congestion, &cl))
		snprintf(qp->congestion, sizeof(qp->congestion), "?");
	socklen_t rl = sizeof(qp->rcvbuf);
	if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &qp->rcvbuf, &rl))
		qp->rcvbuf = -1;
	qp->fd = fd;
	return 0;
}

static int io_exact(struct host_qpair *qp, void *buf, size_t len, bool send_dir, int timeout_ms)
{
	uint64_t deadline = host_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	size_t done = 0;
	while (done < len) {
		struct iovec v = {.iov_base = (char *)buf + done, .iov_len = len - done};
		ssize_t n = send_dir ? qp_writev(qp, &v, 1) : qp_readv(qp, &v, 1);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n == 0)
			return fail(qp, "connection closed by the target during initialization");
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return fail(qp, "%s: %s", send_dir ? "send" : "recv", strerror(errno));
		uint64_t now = host_now_ns();
		if (now >= deadline)
			return fail(qp, "timed out after %d s waiting for %s", timeout_ms / 1000,
				    send_dir ? "the socket to drain" : "ICResp");
		wait_fd(qp->fd, send_dir ? POLLOUT : POLLIN, (int)((deadline - now) / 1000000ull) + 1);
	}
	return 0;
}

static int qp_start(struct host_qpair *qp, bool hdgst, bool ddgst, uint16_t nreqs, uint32_t max_io);

int host_qp_connect(struct host_qpair *qp, const char *traddr, const char *trsvcid, int adrfam, bool hdgst,
		    bool ddgst, uint16_t nreqs, uint32_t max_io, const struct host_sock_opts *so)
{
	uint16_t qid = qp->qid;
	memset(qp, 0, sizeof(*qp));
	qp->qid = qid;
	qp->fd = -1;
	snprintf(qp->peer, sizeof(qp->peer), "%s%s%s:%s", adrfam == 6 ? "[" : "", traddr, adrfam == 6 ? "]" : "",
		 trsvcid);
	if (tcp_connect(qp, traddr, trsvcid, adrfam, so))
		return -1;
	if (so && so->tls) {
#ifdef DBK_PERF_TLS
		char terr[400];
		qp->tls = host_tls_handshake(qp->fd, so->tls, 10000, terr, sizeof(terr));
		if (!qp->tls) {
			fail(qp, "%s", terr);
			host_qp_close(qp);
			return -1;
		}
#else
		fail(qp, "TLS is not built into this daosblk-perf (static build)");
		host_qp_close(qp);
		return -1;
#endif
	}
	return qp_start(qp, hdgst, ddgst, nreqs, max_io);
}

int host_qp_connect_fd(struct host_qpair *qp, int fd, bool hdgst, bool ddgst, uint16_t nreqs, uint32_t max_io)
{
	uint16_t qid = qp->qid;
	memset(qp, 0, sizeof(*qp));
	qp->qid = qid;
	qp->fd = fd;
	qp->rcvbuf = -1;
	snprintf(qp->peer, sizeof(qp->peer), "fd %d", fd);
	snprintf(qp->congestion, sizeof(qp->congestion), "?");
	return qp_start(qp, hdgst, ddgst, nreqs, max_io);
}

/* On the connected socket qp->fd: ICReq/ICResp exchange and validation, request slots. */
static int qp_start(struct host_qpair *qp, bool hdgst, bool ddgst, uint16_t nreqs, uint32_t max_io)
{
	struct nvme_tcp_ic_req icreq;
	memset(&icreq, 0, sizeof(icreq));
	icreq.common.pdu_type = NVME_TCP_PDU_IC_REQ;
	icreq.common.hlen = sizeof(icreq);
	icreq.common.plen = sizeof(icreq);
	icreq.pfv = NVME_TCP_PFV_1_0;
	icreq.hpda = 0;
	icreq.dgst = (hdgst ? NVME_TCP_ICREQ_DGST_HDGST : 0) | (ddgst ? NVME_TCP_ICREQ_DGST_DDGST : 0);
	icreq.maxr2t = 0;
	struct nvme_tcp_ic_resp icresp;
	if (io_exact(qp, &icreq, sizeof(icreq), true, 10000) || io_exact(qp, &icresp, sizeof(icresp), false, 10000))
		goto err;
	if (icresp.common.pdu_type != NVME_TCP_PDU_IC_RESP) {
		if (icresp.common.pdu_type == NVME_TCP_PDU_C2H_TERM_REQ) {
			const struct nvme_tcp_term_req_hdr *t = (const void *)&icresp;
			fail(qp, "target rejected ICReq with C2HTermReq (FES 0x%x, FEI 0x%x)", t->fes, t->fei);
		} else {
			fail(qp, "invalid ICResp: PDU type %u, expected 1", icresp.common.pdu_type);
		}
		goto err;
	}
	if (icresp.common.hlen != 128 || icresp.common.plen != 128) {
		fail(qp, "invalid ICResp: hlen %u plen %u (expected 128/128)", icresp.common.hlen, icresp.common.plen);
		goto err;
	}
	if (icresp.pfv != 0) {
		fail(qp, "invalid ICResp: PFV %u (expected 0)", icresp.pfv);
		goto err;
	}
	if (icresp.cpda != 0) {
		fail(qp, "invalid ICResp: CPDA %u (only 0 is supported)", icresp.cpda);
		goto err;
	}
	if (icresp.dgst != icreq.dgst) {
		fail(qp, "invalid ICResp: digest bits 0x%x differ from the request 0x%x", icresp.dgst, icreq.dgst);
		goto err;
	}
	if (icresp.maxh2cdata < 4096 || icresp.maxh2cdata % 4) {
		fail(qp, "invalid ICResp: MAXH2CDATA %u (must be a multiple of 4 and >= 4096)", icresp.maxh2cdata);
		goto err;
	}
	qp->hdgst = hdgst;
	qp->ddgst = ddgst;
	qp->maxh2cdata = icresp.maxh2cdata;

	qp->nreqs = nreqs;
	qp->nh2c = (max_io + qp->maxh2cdata - 1) / qp->maxh2cdata + 1;
	qp->reqs = calloc(nreqs, sizeof(*qp->reqs));
	qp->free_stack = calloc(nreqs, sizeof(*qp->free_stack));
	qp->txcap = (size_t)nreqs * (3 + 3 * qp->nh2c) + 16;
	qp->txr = calloc(qp->txcap, sizeof(*qp->txr));
	qp->txo = calloc(qp->txcap, sizeof(*qp->txo));
	qp->rcap = HOST_RX_BUF_SIZE;
	qp->rbuf = malloc(qp->rcap);
	if (!qp->reqs || !qp->free_stack || !qp->txr || !qp->txo || !qp->rbuf) {
		fail(qp, "out of memory");
		goto err;
	}
	for (uint16_t i = 0; i < nreqs; i++) {
		qp->reqs[i].cid = i;
		qp->reqs[i].h2c_pdus = calloc(qp->nh2c, sizeof(struct host_h2c_pdu));
		if (!qp->reqs[i].h2c_pdus) {
			fail(qp, "out of memory");
			goto err;
		}
		qp->free_stack[qp->nfree++] = (uint16_t)(nreqs - 1 - i);
	}
	qp->rx_state = RX_CH;
	return 0;
err:
	host_qp_close(qp);
	return -1;
}

void host_qp_close(struct host_qpair *qp)
{
#ifdef DBK_PERF_TLS
	host_tls_close(qp->tls);
#endif
	qp->tls = NULL;
	if (qp->fd >= 0)
		close(qp->fd);
	qp->fd = -1;
	if (qp->reqs)
		for (uint16_t i = 0; i < qp->nreqs; i++)
			free(qp->reqs[i].h2c_pdus);
	free(qp->reqs);
	free(qp->free_stack);
	free(qp->txr);
	free(qp->txo);
	free(qp->rbuf);
	qp->reqs = NULL;
	qp->free_stack = NULL;
	qp->txr = NULL;
	qp->txo = NULL;
	qp->rbuf = NULL;
	qp->nfree = 0;
}

/* --------------------------------------------------------------------- tx */

static void run_completion(struct host_qpair *qp, struct host_req *r);

/* Queue len bytes at base, which belong to request r (until sent, r is not completed). */
static void tx_push(struct host_qpair *qp, struct host_req *r, void *base, size_t len)
{
	/* The ring is sized for the worst case of every slot in flight; overflow is a bug. */
	if (qp->txtail - qp->txhead >= qp->txcap)
		abort();
	qp->txr[qp->txtail % qp->txcap] = (struct iovec){.iov_base = base, .iov_len = len};
	qp->txo[qp->txtail % qp->txcap] = r;
	r->tx_pending++;
	qp->txtail++;
}

bool host_tx_pending(const struct host_qpair *qp)
{
	return qp->txtail != qp->txhead || qp_tx_held(qp);
}

/* The entry at txhead is sent (or empty): drop it, and complete its request if that waited for it. */
static void tx_pop(struct host_qpair *qp)
{
	struct host_req *r = qp->txo[qp->txhead % qp->txcap];

	qp->txhead++;
	qp->txoff = 0;
	if (--r->tx_pending == 0 && r->cpl_deferred)
		run_completion(qp, r);
}

static int tx_flush(struct host_qpair *qp)
{
	if (qp->txhead == qp->txtail && qp_tx_held(qp)) {
		/* Only the TLS stream's own backlog is left. */
		if (qp_writev(qp, NULL, 0) < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return fail(qp, "send failed: %s", strerror(errno));
		return 0;
	}
	while (qp->txhead != qp->txtail) {
		struct iovec iov[TX_BATCH];
		int n = 0;
		for (size_t i = qp->txhead; i != qp->txtail && n < TX_BATCH; i++)
			iov[n++] = qp->txr[i % qp->txcap];
		iov[0].iov_base = (char *)iov[0].iov_base + qp->txoff;
		iov[0].iov_len -= qp->txoff;
		ssize_t sent = qp_writev(qp, iov, n);
		if (sent < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return fail(qp, "send failed: %s", strerror(errno));
		}
		size_t left = (size_t)sent;
		while (left > 0) {
			struct iovec *cur = &qp->txr[qp->txhead % qp->txcap];
			size_t rem = cur->iov_len - qp->txoff;
			if (left >= rem) {
				left -= rem;
				tx_pop(qp);
			} else {
				qp->txoff += left;
				left = 0;
			}
		}
		/* Skip zero-length entries. */
		while (qp->txhead != qp->txtail && qp->txr[qp->txhead % qp->txcap].iov_len == 0)
			tx_pop(qp);
	}
	return 0;
}

/* ------------------------------------------------------------------ submit */

struct host_req *host_req_get(struct host_qpair *qp)
{
	if (qp->nfree == 0)
		return NULL;
	return &qp->reqs[qp->free_stack[--qp->nfree]];
}

static void put_le32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

int host_submit(struct host_qpair *qp, struct host_req *r, const struct nvme_cmd *cmd, void *buf, uint32_t len,
		bool h2c, host_cb cb, void *arg)
{
	if (qp->failed)
		return -1;
	uint32_t hd = qp->hdgst ? NVME_TCP_DIGEST_LEN : 0, dd = qp->ddgst ? NVME_TCP_DIGEST_LEN : 0;
	r->active = true;
	r->opc = cmd->opc;
	r->h2c = h2c && len > 0;
	r->in_capsule = r->h2c && len <= qp->icd_size;
	r->buf = buf;
	r->len = len;
	r->c2h_done = 0;
	r->h2c_done = 0;
	r->h2c_next = 0;
	r->big_c2h = !r->h2c && len >= HOST_RX_DIRECT_MIN;
	qp->big_c2h += r->big_c2h;
	r->cb = cb;
	r->cb_arg = arg;
	memset(&r->cpl, 0, sizeof(r->cpl));

	struct nvme_tcp_cmd *pdu = (struct nvme_tcp_cmd *)r->cmd_hdr;
	memset(pdu, 0, sizeof(*pdu));
	pdu->ccsqe = *cmd;
	pdu->ccsqe.cid = r->cid;
	pdu->ccsqe.psdt = 1;	/* SGL, metadata pointer to a contiguous buffer (what Linux sends) */
	pdu->ccsqe.fuse = 0;
	struct nvme_sgl_desc *sgl = &pdu->ccsqe.sgl1;
	memset(sgl, 0, sizeof(*sgl));
	sgl->length = len;
	if (r->in_capsule) {
		sgl->type = NVME_SGL_TYPE_DATA_BLOCK;
		sgl->subtype = NVME_SGL_SUBTYPE_OFFSET;
	} else {
		sgl->type = NVME_SGL_TYPE_TRANSPORT_DATA_BLOCK;
		sgl->subtype = NVME_SGL_SUBTYPE_TRANSPORT;
	}
	pdu->common.pdu_type = NVME_TCP_PDU_CAPSULE_CMD;
	pdu->common.hlen = sizeof(struct nvme_tcp_cmd);
	pdu->common.flags = qp->hdgst ? NVME_TCP_F_HDGST : 0;
	if (r->in_capsule) {
		if (qp->ddgst)
			pdu->common.flags |= NVME_TCP_F_DDGST;
		pdu->common.pdo = (uint8_t)(sizeof(struct nvme_tcp_cmd) + hd);
		pdu->common.plen = (uint32_t)(sizeof(struct nvme_tcp_cmd) + hd + len + dd);
	} else {
		pdu->common.pdo = 0;
		pdu->common.plen = (uint32_t)(sizeof(struct nvme_tcp_cmd) + hd);
	}
	if (hd)
		put_le32(r->cmd_hdr + sizeof(struct nvme_tcp_cmd), dbk_crc32c(pdu, sizeof(*pdu)));
	r->submit_ns = host_now_ns();
	r->tx_pending = 0;
	r->cpl_deferred = false;
	tx_push(qp, r, r->cmd_hdr, sizeof(struct nvme_tcp_cmd) + hd);
	if (r->in_capsule) {
		tx_push(qp, r, buf, len);
		if (dd) {
			r->cmd_ddgst = dbk_crc32c(buf, len);
			tx_push(qp, r, &r->cmd_ddgst, dd);
		}
	}
	return 0;
}

/* --------------------------------------------------------------------- rx */

/* The read's payload is complete (or will never come): it no longer holds staging reads short. */
static void big_c2h_done(struct host_qpair *qp, struct host_req *r)
{
	if (r->big_c2h) {
		r->big_c2h = false;
		qp->big_c2h--;
	}
}

static void run_completion(struct host_qpair *qp, struct host_req *r)
{
	r->cpl_deferred = false;
	r->active = false;
	qp->free_stack[qp->nfree++] = r->cid;
	qp->completions++;
	if (r->cb)
		r->cb(qp, r, r->cb_arg);
}

/*
 * The target completed r. While the tx ring still points into r (its capsule or H2CData not all sent: a target
 * may answer before it has read them), the slot and its buffer stay ours and the callback waits until they are
 * sent; otherwise the callback's owner could reuse the buffer, or the slot's PDU headers, under bytes not sent.
 */
static void complete(struct host_qpair *qp, struct host_req *r)
{
	big_c2h_done(qp, r);
	if (r->tx_pending) {
		r->cpl_deferred = true;
		return;
	}
	run_completion(qp, r);
}

static struct host_req *lookup(struct host_qpair *qp, uint16_t cid, const char *what)
{
	if (cid >= qp->nreqs || !qp->reqs[cid].active) {
		fail(qp, "%s for unknown command id %u", what, cid);
		return NULL;
	}
	if (qp->reqs[cid].cpl_deferred) {
		fail(qp, "%s for command id %u, which the target has completed already", what, cid);
		return NULL;
	}
	return &qp->reqs[cid];
}

static int handle_r2t(struct host_qpair *qp, const struct nvme_tcp_r2t_hdr *h)
{
	struct host_req *r = lookup(qp, h->cccid, "R2T");
	if (!r)
		return -1;
	if (!r->h2c || r->in_capsule)
		return fail(qp, "R2T for command %u which has no data to send (opc 0x%x)", r->cid, r->opc);
	if (h->r2tl == 0 || (uint64_t)h->r2to + h->r2tl > r->len)
		return fail(qp, "R2T out of range: offset %u length %u, command %u has %u bytes", h->r2to, h->r2tl,
			    r->cid, r->len);
	if (h->r2to != r->h2c_done)
		return fail(qp, "R2T offset %u, expected %u (data already sent)", h->r2to, r->h2c_done);
	/* MAXR2T is 0 (one R2T at a time): the next one only once the target can have read all the data asked for
	 * (and the command itself), i.e. once all of it left the tx ring. */
	if (r->tx_pending)
		return fail(qp, "R2T for command %u before the data of its previous R2T (or the command) was sent",
			    r->cid);
	uint32_t hd = qp->hdgst ? NVME_TCP_DIGEST_LEN : 0, dd = qp->ddgst ? NVME_TCP_DIGEST_LEN : 0;
	uint32_t off = h->r2to, end = h->r2to + h->r2tl;
	while (off < end) {
		uint32_t chunk = end - off;
		if (chunk > qp->maxh2cdata)
			chunk = qp->maxh2cdata;
		struct host_h2c_pdu *p = &r->h2c_pdus[r->h2c_next++ % qp->nh2c];
		struct nvme_tcp_data_hdr *d = (struct nvme_tcp_data_hdr *)p->hdr;
		memset(d, 0, sizeof(*d));
		d->common.pdu_type = NVME_TCP_PDU_H2C_DATA;
		d->common.flags = (uint8_t)((hd ? NVME_TCP_F_HDGST : 0) | (dd ? NVME_TCP_F_DDGST : 0) |
					    (off + chunk == end ? NVME_TCP_F_DATA_LAST : 0));
		d->common.hlen = sizeof(*d);
		d->common.pdo = (uint8_t)(sizeof(*d) + hd);
		d->common.plen = (uint32_t)(sizeof(*d) + hd + chunk + dd);
		d->cccid = r->cid;
		d->ttag = h->ttag;
		d->datao = off;
		d->datal = chunk;
		if (hd)
			put_le32(p->hdr + sizeof(*d), dbk_crc32c(d, sizeof(*d)));
		tx_push(qp, r, p->hdr, sizeof(*d) + hd);
		tx_push(qp, r, (uint8_t *)r->buf + off, chunk);
		if (dd) {
			p->ddgst = dbk_crc32c((uint8_t *)r->buf + off, chunk);
			tx_push(qp, r, &p->ddgst, dd);
		}
		off += chunk;
	}
	r->h2c_done = end;
	return 0;
}

static int finish_c2h(struct host_qpair *qp)
{
	struct host_req *r = qp->rx_req;
	qp->rx_state = RX_CH;
	qp->rx_req = NULL;
	/* c2h_done counts this PDU since its header: equal to len once its last byte (and digest) is in. */
	if (r->c2h_done == r->len)
		big_c2h_done(qp, r);
	if (qp->rx_flags & NVME_TCP_F_DATA_SUCCESS) {
		if (!(qp->rx_flags & NVME_TCP_F_DATA_LAST))
			return fail(qp, "C2HData with DATA_SUCCESS but without DATA_LAST");
		if (r->c2h_done != r->len)
			return fail(qp, "C2HData DATA_SUCCESS after %u of %u bytes", r->c2h_done, r->len);
		memset(&r->cpl, 0, sizeof(r->cpl));
		r->cpl.cid = r->cid;
		qp->data_success++;
		complete(qp, r);
	}
	return 0;
}

/* Parse one PDU header at rbuf[rhead] if complete. Returns 1 consumed, 0 need more, -1 error. */
static int parse_header(struct host_qpair *qp)
{
	size_t avail = qp->rtail - qp->rhead;
	if (avail < sizeof(struct nvme_tcp_common_hdr))
		return 0;
	uint8_t *p = qp->rbuf + qp->rhead;
	const struct nvme_tcp_common_hdr *ch = (const void *)p;
	uint32_t hd = qp->hdgst ? NVME_TCP_DIGEST_LEN : 0, dd = qp->ddgst ? NVME_TCP_DIGEST_LEN : 0;

	if (ch->pdu_type == NVME_TCP_PDU_C2H_TERM_REQ) {
		if (ch->hlen != sizeof(struct nvme_tcp_term_req_hdr) || ch->plen < ch->hlen ||
		    ch->plen > (uint32_t)ch->hlen + NVME_TCP_TERM_REQ_MAX_DATA)
			return fail(qp, "malformed C2HTermReq (hlen %u plen %u)", ch->hlen, ch->plen);
		if (avail < ch->plen)
			return 0;
		const struct nvme_tcp_term_req_hdr *t = (const void *)p;
		return fail(qp, "target sent C2HTermReq: FES 0x%x, FEI 0x%x (%u bytes of the offending PDU)", t->fes,
			    t->fei, ch->plen - ch->hlen);
	}
	uint8_t hlen;
	switch (ch->pdu_type) {
	case NVME_TCP_PDU_CAPSULE_RESP:
	case NVME_TCP_PDU_C2H_DATA:
	case NVME_TCP_PDU_R2T:
		hlen = 24;
		break;
	default:
		return fail(qp, "unexpected PDU type %u", ch->pdu_type);
	}
	if (ch->hlen != hlen)
		return fail(qp, "PDU type %u with hlen %u (expected %u)", ch->pdu_type, ch->hlen, hlen);
	if (!!(ch->flags & NVME_TCP_F_HDGST) != !!hd)
		return fail(qp, "PDU type %u: HDGST flag %s but header digest %snegotiated", ch->pdu_type,
			    (ch->flags & NVME_TCP_F_HDGST) ? "set" : "clear", hd ? "" : "not ");
	if (avail < (size_t)hlen + hd)
		return 0;
	if (hd) {
		uint32_t want = dbk_crc32c(p, hlen), got = get_le32(p + hlen);
		if (want != got)
			return fail(qp, "header digest error on PDU type %u: got 0x%08x, computed 0x%08x", ch->pdu_type,
				    got, want);
	}
	switch (ch->pdu_type) {
	case NVME_TCP_PDU_CAPSULE_RESP: {
		if (ch->plen != hlen + hd)
			return fail(qp, "CapsuleResp plen %u (expected %u)", ch->plen, hlen + hd);
		const struct nvme_tcp_rsp *rsp = (const void *)p;
		struct host_req *r = lookup(qp, rsp->rccqe.cid, "CapsuleResp");
		if (!r)
			return -1;
		qp->rhead += hlen + hd;
		r->cpl = rsp->rccqe;
		if (nvme_cpl_status(&r->cpl) == 0) {
			if (!r->h2c && r->len && r->c2h_done != r->len)
				return fail(qp, "command %u (opc 0x%x) succeeded after only %u of %u data bytes", r->cid,
					    r->opc, r->c2h_done, r->len);
			if (r->h2c && !r->in_capsule && r->h2c_done != r->len)
				return fail(qp, "write %u succeeded before all data was requested (%u of %u bytes)",
					    r->cid, r->h2c_done, r->len);
		}
		complete(qp, r);
		return 1;
	}
	case NVME_TCP_PDU_R2T: {
		if (ch->plen != hlen + hd)
			return fail(qp, "R2T plen %u (expected %u)", ch->plen, hlen + hd);
		struct nvme_tcp_r2t_hdr r2t;
		memcpy(&r2t, p, sizeof(r2t));
		qp->rhead += hlen + hd;
		return handle_r2t(qp, &r2t) ? -1 : 1;
	}
	case NVME_TCP_PDU_C2H_DATA: {
		const struct nvme_tcp_data_hdr *d = (const void *)p;
		if (!!(ch->flags & NVME_TCP_F_DDGST) != !!dd)
			return fail(qp, "C2HData: DDGST flag %s but data digest %snegotiated",
				    (ch->flags & NVME_TCP_F_DDGST) ? "set" : "clear", dd ? "" : "not ");
		if (d->datal == 0)
			return fail(qp, "C2HData with DATAL 0");
		if (ch->pdo < hlen + hd || ch->plen != (uint64_t)ch->pdo + d->datal + dd)
			return fail(qp, "C2HData PDO %u / PLEN %u inconsistent with DATAL %u", ch->pdo, ch->plen,
				    d->datal);
		struct host_req *r = lookup(qp, d->cccid, "C2HData");
		if (!r)
			return -1;
		if (r->h2c || r->len == 0)
			return fail(qp, "C2HData for command %u (opc 0x%x) that reads no data", r->cid, r->opc);
		if (d->datao != r->c2h_done || (uint64_t)d->datao + d->datal > r->len)
			return fail(qp, "C2HData offset %u length %u out of order/range (have %u of %u bytes)",
				    d->datao, d->datal, r->c2h_done, r->len);
		if ((ch->flags & NVME_TCP_F_DATA_LAST) && d->datao + d->datal != r->len &&
		    (ch->flags & NVME_TCP_F_DATA_SUCCESS))
			return fail(qp, "C2HData DATA_LAST|DATA_SUCCESS before the end of the data");
		qp->rx_req = r;
		qp->rx_dst = (uint8_t *)r->buf + d->datao;
		qp->rx_left = d->datal;
		qp->rx_datal = d->datal;
		qp->rx_pad = ch->pdo - (hlen + hd);
		qp->rx_flags = ch->flags;
		qp->rx_crc = DBK_CRC32C_INIT;
		qp->rx_ddgst_have = 0;
		r->c2h_done += d->datal;
		qp->rhead += hlen + hd;
		qp->rx_state = qp->rx_pad ? RX_PAD : RX_DATA;
		return 1;
	}
	}
	return fail(qp, "unreachable");
}

static void rx_data_bytes(struct host_qpair *qp, const uint8_t *src, uint32_t n, bool copy)
{
	if (copy) {
		memcpy(qp->rx_dst, src, n);
		qp->c2h_staged += n;
	} else {
		qp->c2h_direct += n;
	}
	if (qp->ddgst)
		qp->rx_crc = dbk_crc32c_update(qp->rx_crc, qp->rx_dst, n);
	qp->rx_dst += n;
	qp->rx_left -= n;
	if (qp->rx_left == 0)
		qp->rx_state = qp->ddgst ? RX_DDGST : RX_CH;
}

static int after_data(struct host_qpair *qp)
{
	if (qp->rx_state == RX_CH && qp->rx_req)
		return finish_c2h(qp);
	return 0;
}

static int parse(struct host_qpair *qp)
{
	for (;;) {
		size_t avail = qp->rtail - qp->rhead;
		switch (qp->rx_state) {
		case RX_CH: {
			int rc = parse_header(qp);
			if (rc <= 0)
				return rc;
			break;
		}
		case RX_PAD: {
			if (!avail)
				return 0;
			uint32_t n = avail < qp->rx_pad ? (uint32_t)avail : qp->rx_pad;
			qp->rhead += n;
			qp->rx_pad -= n;
			if (!qp->rx_pad)
				qp->rx_state = RX_DATA;
			break;
		}
		case RX_DATA: {
			if (!avail)
				return 0;
			uint32_t n = avail < qp->rx_left ? (uint32_t)avail : qp->rx_left;
			rx_data_bytes(qp, qp->rbuf + qp->rhead, n, true);
			qp->rhead += n;
			if (after_data(qp))
				return -1;
			break;
		}
		case RX_DDGST: {
			if (!avail)
				return 0;
			while (qp->rx_ddgst_have < 4 && qp->rhead < qp->rtail)
				qp->rx_ddgst[qp->rx_ddgst_have++] = qp->rbuf[qp->rhead++];
			if (qp->rx_ddgst_have < 4)
				return 0;
			uint32_t want = dbk_crc32c_final(qp->rx_crc), got = get_le32(qp->rx_ddgst);
			if (want != got)
				return fail(qp, "data digest error on C2HData for command %u: got 0x%08x, computed 0x%08x",
					    qp->rx_req->cid, got, want);
			qp->rx_state = RX_CH;
			if (finish_c2h(qp))
				return -1;
			break;
		}
		}
		if (qp->failed)
			return -1;
	}
}

/* Bytes of HOST_RX_LOOKAHEAD_HDRS PDU headers: every PDU a host receives (CapsuleResp, C2HData, R2T,
 * C2HTermReq) starts with a 24-byte header, plus the header digest when negotiated. */
static size_t rx_lookahead(const struct host_qpair *qp)
{
	return HOST_RX_LOOKAHEAD_HDRS * (sizeof(struct nvme_tcp_data_hdr) + (qp->hdgst ? NVME_TCP_DIGEST_LEN : 0));
}

/* How many bytes to receive into the staging buffer (at rtail) now. parse() has consumed everything it can,
 * so the staging buffer holds at most an incomplete header, pad or data digest. */
static size_t rx_stage_len(const struct host_qpair *qp)
{
	size_t room = qp->rcap - qp->rtail;
	if (!qp->big_c2h)
		return room;
	size_t have = qp->rtail - qp->rhead, want;
	switch (qp->rx_state) {
	case RX_CH:
		/* A complete header still waiting is a C2HTermReq wanting its data: the connection ends there. */
		want = have < rx_lookahead(qp) ? rx_lookahead(qp) - have : room;
		break;
	case RX_PAD:
		want = qp->rx_pad;	/* then the payload goes in place */
		break;
	case RX_DDGST:
		want = (size_t)(NVME_TCP_DIGEST_LEN - qp->rx_ddgst_have) + rx_lookahead(qp);
		break;
	case RX_DATA:
	default:
		want = qp->rx_left;	/* not reached: rx() reads the payload in place */
		break;
	}
	return want < room ? want : room;
}

static int rx(struct host_qpair *qp)
{
	if (qp->rhead == qp->rtail) {
		qp->rhead = qp->rtail = 0;
	} else if (qp->rcap - qp->rtail < NVME_TCP_MAX_HDR_LEN + 64) {
		memmove(qp->rbuf, qp->rbuf + qp->rhead, qp->rtail - qp->rhead);
		qp->rtail -= qp->rhead;
		qp->rhead = 0;
	}
	ssize_t n;
	if (qp->rx_state == RX_DATA && qp->rhead == qp->rtail && (qp->rx_left >= HOST_RX_DIRECT_ANY || qp->big_c2h)) {
		/* The payload straight into the I/O buffer, what follows (data digest, next PDUs) into the staging
		 * buffer: everything that is there, or only the digest and the next headers while a large read waits
		 * for its payload. */
		size_t tail = qp->rcap;
		if (qp->big_c2h)
			tail = (qp->ddgst ? NVME_TCP_DIGEST_LEN : 0) + rx_lookahead(qp);
		struct iovec iov[2] = {{.iov_base = qp->rx_dst, .iov_len = qp->rx_left},
				       {.iov_base = qp->rbuf, .iov_len = tail}};
		n = qp_readv(qp, iov, 2);
		if (n > 0) {
			uint32_t direct = (size_t)n < qp->rx_left ? (uint32_t)n : qp->rx_left;
			qp->rhead = 0;
			qp->rtail = (size_t)n - direct;
			rx_data_bytes(qp, qp->rx_dst, direct, false);
			if (after_data(qp))
				return -1;
			return 1;
		}
	} else {
		struct iovec v = {.iov_base = qp->rbuf + qp->rtail, .iov_len = rx_stage_len(qp)};
		n = qp_readv(qp, &v, 1);
		if (n > 0) {
			qp->rtail += (size_t)n;
			return 1;
		}
	}
	if (n == 0)
		return fail(qp, "connection closed by the target");
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return 0;
	return fail(qp, "recv failed: %s", strerror(errno));
}

int host_process(struct host_qpair *qp)
{
	if (qp->failed)
		return -1;
	uint64_t before = qp->completions;
	if (tx_flush(qp))
		return -1;
	int rc = rx(qp);
	if (rc < 0)
		return -1;
	if (parse(qp) < 0)
		return -1;
	/* Completions may have queued new commands or R2T answers. */
	if (host_tx_pending(qp) && tx_flush(qp))
		return -1;
	return (int)(qp->completions - before);
}

struct sync_ctx {
	bool done;
	struct nvme_cpl cpl;
};

static void sync_cb(struct host_qpair *qp, struct host_req *r, void *arg)
{
	(void)qp;
	struct sync_ctx *c = arg;
	c->cpl = r->cpl;
	c->done = true;
}

int host_exec_sync(struct host_qpair *qp, const struct nvme_cmd *cmd, void *buf, uint32_t len, bool h2c,
		   struct nvme_cpl *cpl, int timeout_ms)
{
	struct host_req *r = host_req_get(qp);
	if (!r)
		return fail(qp, "no free command slot");
	struct sync_ctx c = {0};
	if (host_submit(qp, r, cmd, buf, len, h2c, sync_cb, &c))
		return -1;
	uint64_t deadline = host_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	while (!c.done) {
		if (host_process(qp) < 0)
			return -1;
		if (c.done)
			break;
		uint64_t now = host_now_ns();
		if (now >= deadline)
			return fail(qp, "command opc 0x%02x timed out after %d s", cmd->opc, timeout_ms / 1000);
		if (!qp_rx_held(qp))
			wait_fd(qp->fd, (short)(POLLIN | (host_tx_pending(qp) ? POLLOUT : 0)),
				(int)((deadline - now) / 1000000ull) + 1);
	}
	*cpl = c.cpl;
	return 0;
}

uint64_t host_oldest_ns(const struct host_qpair *qp, uint64_t now)
{
	uint64_t oldest = 0;
	for (uint16_t i = 0; i < qp->nreqs; i++)
		if (qp->reqs[i].active && now - qp->reqs[i].submit_ns > oldest)
			oldest = now - qp->reqs[i].submit_ns;
	return oldest;
}
