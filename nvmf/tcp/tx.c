/*
 * NVMe/TCP transport: the send path. A per-connection FIFO of PDUs, sent in
 * batches (one writev of many PDUs); lent C2H payloads go out without a copy
 * (vmsplice into a pipe, splice into the stream) when the sock can. Bytes go
 * to the connection's sock (sock.h) only.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>

#include "nvmf/tcp/tcp_internal.h"

/* --------------------------------------------------------------- send path */

static void pdu_sent(struct tcp_conn *c, struct tcp_pdu *p)
{
	p->queued = false;
	if (c->pg)
		c->pg->st.tx_pdus++;
	if (p->recycle_when_sent && p->req)
		tcp_req_recycle(p->req);
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

void tcp_sq_drain(struct tcp_conn *c)
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
	ssize_t n = c->sock.ops->splice(&c->sock, c->pipe[0], c->pipe_len, more ? DBK_SOCK_F_MORE : 0);
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
	tcp_sq_drain(c);
	tcp_conn_close(c);
}

/*
 * One sendmsg for as many queued PDUs as fit (TCP_SEND_IOVS iovecs); a PDU
 * whose payload is spliced ends the batch after its header (MSG_MORE), and its
 * payload follows by pdu_splice.
 */
void tcp_conn_flush(struct tcp_conn *c)
{
	struct iovec iov[TCP_SEND_IOVS];
	if (c->sq_head == NULL) {
		/* Nothing queued: only the stream's own backlog (sock.h tx_pending) may be left to push. */
		if (!c->write_dead && sock_tx_pending(c) && c->sock.ops->writev(&c->sock, NULL, 0, 0) < 0 &&
		    errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			conn_send_failed(c, "send");
		return;
	}
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
		ssize_t w = c->sock.ops->writev(&c->sock, iov, n, cork ? DBK_SOCK_F_MORE : 0);
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
		tcp_sq_drain(c);
}

void tcp_conn_update_events(struct tcp_conn *c)
{
	if (c->fdh == NULL)
		return;
	uint32_t want = 0;
	if (c->hs_want) {
		/* The stream's handshake: only what it waits for. */
		if (!c->closing)
			want = c->hs_want == DBK_SOCK_HS_WANT_WRITE ? EPOLLOUT : EPOLLIN;
	} else {
		if (!c->closing)
			want |= EPOLLIN;
		if ((c->sq_head || sock_tx_pending(c)) && !c->write_dead)
			want |= EPOLLOUT;
	}
	if (want == 0) {
		dbk_fd_unregister(&c->fdh);
		return;
	}
	if (want != c->ev) {
		if (dbk_fd_modify(c->fdh, want) == 0)
			c->ev = want;
	}
}

