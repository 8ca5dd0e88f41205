/*
 * NVMe/TCP transport: the poll group's buffer pool and the requests (capsule
 * checks, data buffers, R2T, C2HData and CapsuleResp), connection close and
 * fatal errors (C2HTermReq).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nvmf/tcp/tcp_internal.h"

/* ------------------------------------------------------------ buffer pool */

bool tcp_pool_take(struct dbk_nvmf_transport_poll_group *pg, struct tcp_req *r)
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

void tcp_pool_release(struct tcp_req *r)
{
	struct dbk_nvmf_transport_poll_group *pg = r->conn->pg;
	for (uint32_t i = 0; i < r->nbufs; i++)
		pg->free_bufs[pg->nfree++] = r->bufs[i];
	r->nbufs = 0;
}

/* Remove every request of c from the group's buffer wait queue. */
void tcp_waitq_remove_conn(struct dbk_nvmf_transport_poll_group *pg, struct tcp_conn *c)
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

void tcp_req_recycle(struct tcp_req *r)
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
		tcp_pool_release(r);
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
		tcp_waitq_remove_conn(c->pg, c);
	for (uint32_t i = 0; i < c->nreqs; i++) {
		struct tcp_req *r = &c->reqs[i];
		if ((r->state == TR_RECV_CAPSULE || r->state == TR_NEED_BUF || r->state == TR_WAIT_H2C) &&
		    !r->pdu_data.queued && !r->pdu_rsp.queued)
			tcp_req_recycle(r);
	}
}

/* Stop reading; the connection will be disconnected when the current entry point returns. */
void tcp_conn_close(struct tcp_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	c->rstate = RS_CLOSED;
	c->disconnect_pending = true;
	conn_drop_transport_reqs(c);
}

/* Fatal PDU error: send C2HTermReq with the offending header and close. */
void tcp_conn_fatal(struct tcp_conn *c, uint16_t fes, uint32_t fei)
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
	tcp_conn_close(c);
}

void tcp_req_fail(struct tcp_req *r, int sct, int sc)
{
	req_h2c_over(r);
	r->req.xfer = DBK_NVMF_XFER_NONE;
	/* A transient transport error may be retried; everything else is final. */
	nvme_cpl_set_status(&r->rsp, sct, sc, sc != NVME_SC_TRANSIENT_TRANSPORT_ERROR);
	r->state = TR_EXEC;
	tcp_req_send_response(r);
}

void tcp_req_exec(struct tcp_req *r)
{
	req_h2c_over(r);
	r->state = TR_EXEC;
	dbk_nvmf_request_exec(&r->req);
}

void tcp_r2t_send(struct tcp_req *r)
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
void tcp_req_start_data(struct tcp_req *r)
{
	if (r->req.xfer == DBK_NVMF_XFER_HOST_TO_CTRLR) {
		r->state = TR_WAIT_H2C;
		r->h2c_done = 0;
		if (r->req.length >= TCP_RX_EXACT_MIN) {
			r->big_h2c = true;
			r->conn->big_h2c++;
		}
		tcp_r2t_send(r);
		schedule_flush(r->conn);
	} else {
		tcp_req_exec(r);
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
	if (pg->wait_head == NULL && tcp_pool_take(pg, r))
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
void tcp_capsule_ready(struct tcp_req *r, uint32_t icd_len, bool ddgst_ok)
{
	struct tcp_conn *c = r->conn;
	if (!ddgst_ok) {
		tcp_req_fail(r, NVME_SCT_GENERIC, NVME_SC_TRANSIENT_TRANSPORT_ERROR);
		return;
	}
	if (!r->cid_owned) {
		/* Kept though SPDK and nvmet do not check (nvmf/COMPAT.md): responses and H2CData are matched by CID. */
		tcp_req_fail(r, NVME_SCT_GENERIC, NVME_SC_COMMAND_ID_CONFLICT);
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
		tcp_req_fail(r, NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE);
		return;
	}
	if (dir == 0 || dir == 3 || len == 0) {
		if (icd_len) {
			tcp_req_fail(r, NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID);
			return;
		}
		r->req.xfer = DBK_NVMF_XFER_NONE;
		r->req.length = 0;
		r->req.iovcnt = 0;
		tcp_req_exec(r);
		return;
	}
	if (len > c->tt->base.opts.max_io_size) {
		tcp_req_fail(r, NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID);
		return;
	}
	if (sgl->type == NVME_SGL_TYPE_DATA_BLOCK && sgl->subtype == NVME_SGL_SUBTYPE_OFFSET) {
		if (dir != 1) {
			tcp_req_fail(r, NVME_SCT_GENERIC, NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID);
			return;
		}
		if (sgl->address != 0) {
			tcp_req_fail(r, NVME_SCT_GENERIC, NVME_SC_INVALID_SGL_OFFSET);
			return;
		}
		if (len != icd_len) {
			tcp_req_fail(r, NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID);
			return;
		}
		if (r->req.lent || r->bounce) {
			/* Received into lent bdev memory (icd_lend), or into a private copy when it stalled. */
			tcp_req_exec(r);
			return;
		}
		r->req.xfer = DBK_NVMF_XFER_HOST_TO_CTRLR;
		r->req.length = len;
		r->orig_len = len;
		r->req.iov[0].iov_base = r->icd;
		r->req.iov[0].iov_len = len;
		r->req.iovcnt = 1;
		tcp_req_exec(r);
		return;
	}
	if (sgl->type == NVME_SGL_TYPE_TRANSPORT_DATA_BLOCK && sgl->subtype == NVME_SGL_SUBTYPE_TRANSPORT) {
		if (icd_len) {
			tcp_req_fail(r, NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID);
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
			tcp_req_start_data(r);
			return;
		}
		if (req_get_buffers(r))
			tcp_req_start_data(r);
		return;
	}
	tcp_req_fail(r, NVME_SCT_GENERIC, NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID);
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
void tcp_req_send_response(struct tcp_req *r)
{
	struct tcp_conn *c = r->conn;
	if (c->closing || c->write_dead) {
		tcp_req_recycle(r);
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
				tcp_pool_release(r);
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
