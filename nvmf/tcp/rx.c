/*
 * NVMe/TCP transport: the receive path. A strict byte-driven PDU state
 * machine (common header -> header(+digest) -> pad -> data -> data digest)
 * validating every header field before the rest is read; large payloads are
 * read straight into the request's data buffers. Bytes come from the
 * connection's sock (sock.h) only.
 */
#include <errno.h>
#include <string.h>

#include "nvmf/tcp/tcp_internal.h"

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
			tcp_conn_fatal(c, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0);
			return;
		}
	} else if (ch->pdu_type == NVME_TCP_PDU_IC_REQ) {
		tcp_conn_fatal(c, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0);
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
			tcp_conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, hlen));
			return;
		}
		if (c->pg)
			c->pg->st.term_reqs_rx++;
		DBK_NOTICELOG("nvmf_tcp: H2CTermReq received; closing the connection");
		tcp_conn_close(c);
		return;
	default:
		tcp_conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, pdu_type));
		return;
	}
	if (ch->hlen != exp_hlen) {
		tcp_conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, hlen));
		return;
	}
	/*
	 * On PDUs that may carry digests the digest flags must match what ICReq negotiated: they say where the
	 * data starts, and a digest taken for data would go to disk (nvmf/COMPAT.md). On ICReq, which has no
	 * digests, the flags mean nothing and are ignored, as SPDK's target and nvmet ignore them.
	 */
	bool hd = digests && c->hdgst;
	if (digests && !!(ch->flags & NVME_TCP_F_HDGST) != c->hdgst) {
		tcp_conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, flags));
		return;
	}
	uint32_t hdr_total = exp_hlen + (hd ? NVME_TCP_DIGEST_LEN : 0);
	uint32_t data_len = 0;
	bool dd = false;
	if (ch->plen < hdr_total) {
		tcp_conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, plen));
		return;
	}
	if (ch->plen == hdr_total) {
		/*
		 * No data: PDO and the DDGST flag describe nothing here, so stray values are ignored, as SPDK's
		 * target and nvmet ignore them; the length alone frames the PDU.
		 */
		if (ch->pdu_type == NVME_TCP_PDU_H2C_DATA) {
			tcp_conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, plen));
			return;
		}
	} else {
		if (!data_allowed) {
			tcp_conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, plen));
			return;
		}
		/*
		 * We answer CPDA 0, so the data may start anywhere after the header (+digest); padding before it is
		 * skipped. An unaligned PDO is taken, as SPDK's target and nvmet take it (nvmf/COMPAT.md). A PDO inside
		 * the header is refused: no reading of such a PDU is sure, and a wrong one writes wrong bytes.
		 */
		if (ch->pdo < hdr_total) {
			tcp_conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, pdo));
			return;
		}
		if (!!(ch->flags & NVME_TCP_F_DDGST) != c->ddgst) {
			tcp_conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, flags));
			return;
		}
		dd = c->ddgst;
		uint32_t dlen = dd ? NVME_TCP_DIGEST_LEN : 0;
		if (ch->plen <= (uint32_t)ch->pdo + dlen) {
			tcp_conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, plen));
			return;
		}
		data_len = ch->plen - ch->pdo - dlen;
		uint32_t limit;
		if (ch->pdu_type == NVME_TCP_PDU_CAPSULE_CMD)
			limit = c->qp.qid != 0 ? c->tt->base.opts.in_capsule_data_size : c->tt->icd_buf_size;
		else
			limit = c->tt->maxh2cdata;
		if (data_len > limit) {
			tcp_conn_fatal(c, NVME_TCP_FES_DATA_TRANSFER_LIMIT_EXCEEDED,
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
		tcp_conn_fatal(c, NVME_TCP_FES_INVALID_DATA_UNSUPPORTED_PARAMETER, offsetof(struct nvme_tcp_ic_req, pfv));
		return;
	}
	if (ic->hpda > 31) {
		tcp_conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_ic_req, hpda));
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
 * socket to the bdev with no copy at all). Only what tcp_capsule_ready would accept as it is; anything else takes
 * the buffer and tcp_capsule_ready reports the error. Not with a data digest (bytes that fail it could not be taken
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
		tcp_conn_close(c);
		return;
	}
	if (r == NULL || (c->qp.sq_size && c->active >= c->qp.sq_size)) {
		DBK_NOTICELOG("nvmf_tcp: more commands outstanding than the queue depth (%u)", c->active);
		tcp_conn_fatal(c, NVME_TCP_FES_PDU_SEQUENCE_ERROR, 0);
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
			tcp_conn_fatal(c, NVME_TCP_FES_DATA_TRANSFER_OUT_OF_RANGE, offsetof(struct nvme_tcp_common_hdr, plen));
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
	tcp_capsule_ready(r, 0, true);
}

static void rx_h2c(struct tcp_conn *c)
{
	const struct nvme_tcp_data_hdr *h = (const struct nvme_tcp_data_hdr *)(const void *)c->hbuf;
	if (h->ttag >= c->nreqs) {
		tcp_conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_data_hdr, ttag));
		return;
	}
	struct tcp_req *r = &c->reqs[h->ttag];
	if (r->state != TR_WAIT_H2C || !r->r2t_active || r->pdu_data.queued) {
		tcp_conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_data_hdr, ttag));
		return;
	}
	if (h->cccid != r->cmd.cid) {
		tcp_conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_data_hdr, cccid));
		return;
	}
	if (h->datal != c->data_len) {
		tcp_conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_data_hdr, datal));
		return;
	}
	if (h->datao != r->h2c_done) {
		tcp_conn_fatal(c, NVME_TCP_FES_DATA_TRANSFER_OUT_OF_RANGE, offsetof(struct nvme_tcp_data_hdr, datao));
		return;
	}
	if ((uint64_t)h->datao + h->datal > r->r2t_end) {
		tcp_conn_fatal(c, NVME_TCP_FES_DATA_TRANSFER_OUT_OF_RANGE, offsetof(struct nvme_tcp_data_hdr, datal));
		return;
	}
	/*
	 * Kept though SPDK and nvmet ignore the flag (nvmf/COMPAT.md): a LAST_PDU before the end means the host
	 * sends no more, and waiting would pin this command's buffer (or lent bdev memory) until KATO.
	 */
	if ((c->pflags & NVME_TCP_F_DATA_LAST) && h->datao + h->datal != r->r2t_end) {
		tcp_conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, offsetof(struct nvme_tcp_common_hdr, flags));
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
			tcp_conn_fatal(c, NVME_TCP_FES_HDGST_ERROR, 0);
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
		tcp_conn_fatal(c, NVME_TCP_FES_INVALID_HEADER_FIELD, 0);
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
		tcp_capsule_ready(r, len, ddgst_ok);
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
		tcp_r2t_send(r);
		schedule_flush(c);
		return;
	}
	if (r->ddgst_err)
		tcp_req_fail(r, NVME_SCT_GENERIC, NVME_SC_TRANSIENT_TRANSPORT_ERROR);
	else
		tcp_req_exec(r);
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

void tcp_conn_recv(struct tcp_conn *c)
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
			n = c->sock.ops->readv(&c->sock, iov, cnt + 1);
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
			struct iovec one = {.iov_base = c->rbuf, .iov_len = want};
			n = c->sock.ops->readv(&c->sock, &one, 1);
			if (n > 0) {
				c->rlen = (uint32_t)n;
				c->rx_progress++;
				if (c->pg)
					c->pg->st.rx_bytes += (uint64_t)n;
			}
		}
		if (n == 0) {
			DBK_INFOLOG("nvmf_tcp: connection closed by the host");
			tcp_conn_close(c);
			break;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				DBK_INFOLOG("nvmf_tcp: recv: %s", strerror(errno));
				tcp_conn_close(c);
			}
			break;
		}
		rx_consume(c);
		if ((size_t)n < want)
			break;
	}
	if (c->sock.ops->rx_pending && !c->closing && c->sock.ops->rx_pending(&c->sock)) {
		/* Bytes the stream holds that no EPOLLIN will announce: read again from the poller. */
		c->rx_again = true;
		schedule_flush(c);
	}
}
