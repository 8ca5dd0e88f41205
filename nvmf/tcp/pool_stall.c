/*
 * A stalled host must not hold the poll group's shared buffer pool.
 *
 * Reads of a non-lending bdev are sent from pool buffers, and Writes after R2T
 * receive their data into them. A host that stops reading (a zero receive
 * window) with hundreds of reads outstanding, or that never answers its R2Ts,
 * would keep those buffers for as long as it stays connected, and every other
 * host of the poll group would then wait for buffers behind it: one bad host
 * stalls them all. So the watchdog (tcp.c, every TCP_LEND_STALL_US) moves the
 * pool-held payloads of a connection that made no progress in that direction
 * for a watchdog period into private copies and gives the buffers back, as it
 * does for lent bdev memory -- but only while requests wait for buffers, so a
 * pool nobody else needs is left alone. The copies are bounded by the
 * connection's queue depth times the largest I/O. Cold path: nothing here runs
 * per I/O.
 */
#include "nvmf/tcp/tcp_internal.h"

#include <stdlib.h>

bool tcp_pool_bounce_needed(const struct tcp_conn *c, const struct tcp_req *r)
{
	return r->nbufs > 0 && c->pg != NULL && c->pg->wait_head != NULL;
}

/* Gather len bytes of an iovec list into dst. */
static void gather(void *dst, const struct iovec *iov, int iovcnt, uint32_t len)
{
	uint32_t done = 0;
	for (int i = 0; i < iovcnt && done < len; i++) {
		uint32_t n = MIN((uint32_t)iov[i].iov_len, len - done);
		memcpy((uint8_t *)dst + done, iov[i].iov_base, n);
		done += n;
	}
}

bool tcp_pool_bounce_read(struct tcp_conn *c, struct tcp_pdu *p)
{
	struct tcp_req *r = p->req;
	void *b = malloc(p->data_len ? p->data_len : 1);
	if (b == NULL)
		return false;	/* try again next time */
	/* p->iov is the whole payload (p->sent counts what went out), so a half-sent PDU goes on from the copy. */
	gather(b, p->iov, p->iovcnt, p->data_len);
	r->bounce = b;
	r->bounce_iov.iov_base = b;
	r->bounce_iov.iov_len = p->data_len;
	p->iov = &r->bounce_iov;
	p->iovcnt = 1;
	tcp_pool_release(r);	/* r->req.iov points at given-back buffers now: only p->iov is used from here */
	c->pg->st.pool_reads_bounced++;
	return true;
}

bool tcp_pool_bounce_write(struct tcp_conn *c, struct tcp_req *r)
{
	/* Not the one a PDU is being received into: c->diov points into its iovecs. */
	if (r->state != TR_WAIT_H2C || (c->dreq == r && c->rstate != RS_CH && c->rstate != RS_HDR))
		return false;
	void *b = malloc(r->req.length);
	if (b == NULL)
		return false;
	gather(b, r->req.iov, r->req.iovcnt, r->req.length);	/* what arrived so far, and the rest */
	tcp_pool_release(r);
	r->bounce = b;
	r->req.iov[0].iov_base = b;
	r->req.iov[0].iov_len = r->req.length;
	r->req.iovcnt = 1;	/* the next H2CData PDU is placed by offset into these iovecs */
	c->pg->st.pool_writes_bounced++;
	return true;
}
