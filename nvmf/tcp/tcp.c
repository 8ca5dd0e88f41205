/*
 * NVMe/TCP transport (target side): the transport, its poll groups,
 * listeners, addresses and qpair teardown. What the transport's files share,
 * and which file holds what: tcp_internal.h.
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

#include "nvmf/tcp/sock_tls.h"
#include "nvmf/tcp/tcp_internal.h"

/* Leave a transport entry point: run a pending disconnect / deferred free. */
void tcp_conn_leave(struct tcp_conn *c)
{
	if (c->busy == 1 && c->disconnect_pending && !c->disconnected && c->added) {
		c->disconnected = true;
		dbk_nvmf_qpair_disconnect(&c->qp);	/* may call qpair_fini: deferred while busy */
	}
	if (--c->busy == 0 && c->fini_pending)
		tcp_conn_free(c);
}

/* ------------------------------------------------------------- poll group */

/* A step of the stream's handshake (sock.h); a failure closes the connection before any PDU. */
static void conn_handshake(struct tcp_conn *c)
{
	int rc = c->sock.ops->handshake(&c->sock);
	if (rc < 0) {
		DBK_INFOLOG("nvmf_tcp: %s handshake failed; closing the connection", c->sock.ops->name);
		tcp_conn_close(c);
		return;
	}
	c->hs_want = (uint32_t)rc;
}

static void conn_fd_cb(void *ctx, uint32_t events)
{
	struct tcp_conn *c = ctx;
	conn_enter(c);
	if (c->hs_want && !c->closing)
		conn_handshake(c);
	if (!c->hs_want && !c->closing && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		tcp_conn_recv(c);
	if (c->sq_head || sock_tx_pending(c))
		tcp_conn_flush(c);
	if (c->closing && (events & (EPOLLHUP | EPOLLERR)) && c->sq_head) {
		c->write_dead = true;
		tcp_sq_drain(c);
	}
	tcp_conn_update_events(c);
	tcp_conn_leave(c);
}

/*
 * Lent memory must not be held hostage by a host that stopped reading: it pins
 * the bdev (its deletion or the namespace's removal would wait for the host).
 * Every TCP_LEND_STALL_US, a connection that has queued lent payloads and sent
 * nothing since the last look gets private copies of them (a cold path: one
 * allocation per payload) and gives the lent memory back. Bytes already in the
 * pipe are page references the kernel holds; they go out as they are.
 * Payloads in the shared buffer pool: pool_stall.c.
 */
static void conn_bounce_lent(struct tcp_conn *c)
{
	for (struct tcp_pdu *p = c->sq_head; p; p = p->next) {
		struct tcp_req *r = p->req;
		if (p->kind != PDU_C2H || r == NULL || r->bounce)
			continue;
		if (!r->req.lent) {
			if (tcp_pool_bounce_needed(c, r))
				tcp_pool_bounce_read(c, p);
			continue;
		}
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
		if (!r->bounce && tcp_pool_bounce_needed(c, r) && tcp_pool_bounce_write(c, r))
			any = true;
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
			tcp_conn_close(c);
			tcp_conn_update_events(c);
			tcp_conn_leave(c);	/* may free c */
			busy = 1;
			continue;
		}
		if (c->sq_head && c->tx_progress == c->tx_progress_seen) {
			for (struct tcp_pdu *p = c->sq_head; p; p = p->next) {
				if (p->kind == PDU_C2H && p->req && (p->req->req.lent || tcp_pool_bounce_needed(c, p->req))) {
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
		tcp_pool_take(pg, r);
		struct tcp_conn *c = r->conn;
		conn_enter(c);
		tcp_req_start_data(r);
		tcp_conn_leave(c);
		busy = 1;
	}
	while (pg->flush_head) {
		struct tcp_conn *c = pg->flush_head;
		pg->flush_head = c->flush_next;
		c->flush_next = NULL;
		c->in_flush_list = false;
		conn_enter(c);
		if (c->rx_again) {
			/* The stream holds bytes its fd does not announce (sock.h rx_pending). */
			c->rx_again = false;
			if (!c->closing && !c->hs_want)
				tcp_conn_recv(c);
		}
		tcp_conn_flush(c);
		tcp_conn_update_events(c);
		tcp_conn_leave(c);
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
		tcp_conn_free(c);
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
	if (c->sock.fd >= 0) {
		c->fdh = dbk_fd_register(c->sock.fd, EPOLLIN, conn_fd_cb, c, "nvmf_tcp_conn");
		if (c->fdh == NULL)
			return -ENOMEM;
	}
	c->added = true;
	c->added_ns = dbk_thread_now_ns();
	if (c->sock.ops->rx_pending && c->sock.ops->rx_pending(&c->sock)) {
		/* The stream read ahead (e.g. the ICReq behind a TLS handshake): no EPOLLIN will come for it. */
		c->rx_again = true;
		schedule_flush(c);
	}
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
	json_object_set_new(obj, "pool_reads_bounced", json_integer((json_int_t)pg->st.pool_reads_bounced));
	json_object_set_new(obj, "pool_writes_bounced", json_integer((json_int_t)pg->st.pool_writes_bounced));
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
	tcp_req_send_response(r);
}

/* ------------------------------------------------------------ qpair teardown */

void tcp_conn_free(struct tcp_conn *c)
{
	struct dbk_nvmf_transport_poll_group *pg = c->pg;
	/* Best effort: hand what is queued (e.g. a Connect error, a C2HTermReq) to the kernel. */
	if ((c->sq_head || sock_tx_pending(c)) && !c->write_dead) {
		c->busy++;
		tcp_conn_flush(c);
		c->busy--;
	}
	tcp_sq_drain(c);
	if (c->fdh)
		dbk_fd_unregister(&c->fdh);
	if (c->sock.ops)
		c->sock.ops->close(&c->sock);
	c->sock.ops = NULL;
	c->sock.fd = -1;
	if (c->pipe[0] >= 0) {
		close(c->pipe[0]);
		close(c->pipe[1]);
		c->pipe[0] = c->pipe[1] = -1;
	}
	if (pg) {
		tcp_waitq_remove_conn(pg, c);
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
			tcp_pool_release(r);
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
	tcp_conn_free(c);
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
	if (c->sock.fd < 0 || getpeername(c->sock.fd, (struct sockaddr *)&ss, &len) != 0)
		return c->sock.fd < 0 ? -ENOTCONN : -errno;
	return sockaddr_to_addr(&ss, addr);
}

static void tcp_qpair_dump_json(struct dbk_nvmf_qpair *qp, json_t *obj)
{
	struct tcp_conn *c = (struct tcp_conn *)qp;

	json_object_set_new(obj, "header_digest", json_boolean(c->hdgst));
	json_object_set_new(obj, "data_digest", json_boolean(c->ddgst));
	if (c->sock.ops && c->sock.ops->dump_json)
		c->sock.ops->dump_json(&c->sock, obj);
}

static int tcp_qpair_get_local_addr(struct dbk_nvmf_qpair *qp, struct dbk_nvmf_listen_addr *addr)
{
	struct tcp_conn *c = conn_of(qp);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (c->sock.fd < 0 || getsockname(c->sock.fd, (struct sockaddr *)&ss, &len) != 0)
		return c->sock.fd < 0 ? -ENOTCONN : -errno;
	return sockaddr_to_addr(&ss, addr);
}

/* --------------------------------------------------------------- listening */

struct dbk_nvmf_qpair *dbk_nvmf_tcp_qpair_create(struct dbk_nvmf_transport *transport,
						 const struct dbk_tcp_sock_ops *ops, void *ctx, int fd)
{
	struct tcp_transport *tt = (struct tcp_transport *)transport;
	struct tcp_conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		struct dbk_tcp_sock s = {.ops = ops, .ctx = ctx, .fd = fd};
		ops->close(&s);
		return NULL;
	}
	c->sock.ops = ops;
	c->sock.ctx = ctx;
	c->sock.fd = fd;
	c->hs_want = ops->handshake ? DBK_SOCK_HS_WANT_READ : 0;
	c->no_splice = ops->splice == NULL;	/* zero copy needs the stream's splice: copy otherwise */
	c->pipe[0] = c->pipe[1] = -1;
	c->tt = tt;
	c->qp.transport = &tt->base;
	c->rstate = RS_CH;
	c->hneed = sizeof(struct nvme_tcp_common_hdr);
	return &c->qp;
}

void dbk_nvmf_tcp_qpair_poll(struct dbk_nvmf_qpair *qp)
{
	conn_fd_cb(conn_of(qp), EPOLLIN | EPOLLOUT);
}

static void listener_cb(void *ctx, uint32_t events)
{
	struct tcp_listener *l = ctx;
	(void)events;
	for (int i = 0; i < TCP_ACCEPT_BATCH; i++) {
		int fd = dbk_accept_guarded(&l->guard, l->fd);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
				continue;	/* EMFILE: refused and closed; more may be waiting */
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
		if (l->tls) {
			/* Secure channel: the TLS handshake first, on this thread; a qpair only if it succeeds. */
			dbk_tls_server_accept(l->tls, fd);
			continue;
		}
		struct dbk_nvmf_qpair *qp = dbk_nvmf_tcp_qpair_create(&l->tt->base, &dbk_tcp_sock_plain_ops, NULL, fd);
		if (qp)
			dbk_nvmf_tgt_new_qpair(qp);
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
			if (!!l->tls != addr->secure_channel)
				return -EINVAL;	/* one socket: TLS for all or for none (the core says so first) */
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
	snprintf(l->what, sizeof(l->what), "nvmf_tcp %s:%s", addr->traddr, addr->trsvcid);
	dbk_accept_guard_init(&l->guard, l->what, TCP_FD_HEADROOM);
	if (addr->secure_channel) {
		char err[256];
		l->tls = dbk_tls_server_create(&tt->base, addr, tt->icreq_timeout_ns, err, sizeof(err));
		if (l->tls == NULL) {
			DBK_ERRLOG("nvmf_tcp: cannot listen with TLS on %s:%s: %s", addr->traddr, addr->trsvcid, err);
			dbk_accept_guard_fini(&l->guard);
			close(fd);
			free(l);
			return -EINVAL;
		}
	}
	l->fdh = dbk_fd_register(fd, EPOLLIN, listener_cb, l, "nvmf_tcp_listen");
	if (l->fdh == NULL) {
		dbk_tls_server_destroy(l->tls);
		dbk_accept_guard_fini(&l->guard);
		close(fd);
		free(l);
		return -ENOMEM;
	}
	l->next = tt->listeners;
	tt->listeners = l;
	DBK_NOTICELOG("NVMe/TCP target listening on %s port %s%s", addr->traddr, addr->trsvcid,
		      l->tls ? " (secure channel: TLS 1.3 with PSK)" : "");
	return 0;
}

static void listener_free(struct tcp_listener *l)
{
	if (l->fdh)
		dbk_fd_unregister(&l->fdh);
	dbk_tls_server_destroy(l->tls);
	close(l->fd);
	dbk_accept_guard_fini(&l->guard);
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
