/*
 * daosblk-perf host queue pair against a scripted NVMe/TCP peer on loopback: the protocol corners a
 * well-behaved target never shows (padding, split transfers, DATA_SUCCESS, bad digests, TermReq, invalid ICResp,
 * silence) and checks of what the host puts on the wire (digests, SGLs, H2CData split by MAXH2CDATA); the receive
 * path (payloads in place vs staged) against streams of mixed PDUs cut at awkward places.
 */
#include <setjmp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tools/perf/nvme_host.h"
#include "util/crc32c.h"

struct peer {
	int lfd;
	char port[16];
	pthread_t tid;
	void (*script)(struct peer *p, int fd);
	/* ICResp knobs */
	uint8_t cpda, dgst_xor, pfv;
	uint32_t maxh2cdata;
	bool hd, dd;
	/* results checked by the test */
	int failures;
	char why[256];
	uint8_t data[65536];
	uint32_t got_len;
	void *ctx;	/* the script's own state */
};

static void peer_fail(struct peer *p, const char *m)
{
	if (!p->failures++)
		snprintf(p->why, sizeof(p->why), "%s", m);
}

static int rd(int fd, void *b, size_t n)
{
	size_t d = 0;
	while (d < n) {
		ssize_t r = recv(fd, (char *)b + d, n - d, 0);
		if (r <= 0)
			return -1;
		d += (size_t)r;
	}
	return 0;
}

static void wr(int fd, const void *b, size_t n)
{
	assert_int_equal(send(fd, b, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	int fd = accept(p->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	struct nvme_tcp_ic_req req;
	if (rd(fd, &req, sizeof(req))) {
		close(fd);
		return NULL;
	}
	if (req.common.pdu_type != 0 || req.common.plen != 128 || req.pfv != 0 || req.hpda != 0 || req.maxr2t != 0)
		peer_fail(p, "bad ICReq");
	struct nvme_tcp_ic_resp resp;
	memset(&resp, 0, sizeof(resp));
	resp.common.pdu_type = NVME_TCP_PDU_IC_RESP;
	resp.common.hlen = 128;
	resp.common.plen = 128;
	resp.pfv = p->pfv;
	resp.cpda = p->cpda;
	resp.dgst = req.dgst ^ p->dgst_xor;
	resp.maxh2cdata = p->maxh2cdata ? p->maxh2cdata : 131072;
	wr(fd, &resp, sizeof(resp));
	if (p->script)
		p->script(p, fd);
	close(fd);
	return NULL;
}

static void peer_start(struct peer *p)
{
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(p->lfd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(p->lfd, 1), 0);
	socklen_t l = sizeof(a);
	getsockname(p->lfd, (struct sockaddr *)&a, &l);
	snprintf(p->port, sizeof(p->port), "%u", ntohs(a.sin_port));
	assert_int_equal(pthread_create(&p->tid, NULL, peer_main, p), 0);
}

static void peer_stop(struct peer *p)
{
	pthread_join(p->tid, NULL);
	close(p->lfd);
	if (p->failures)
		fail_msg("peer: %s", p->why);
}

static struct peer *peer_new(bool hd, bool dd)
{
	struct peer *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	p->hd = hd;
	p->dd = dd;
	return p;
}

/* Read one capsule; returns the SQE, checks the header digest, stores in-capsule data in p->data. */
static int read_capsule(struct peer *p, int fd, struct nvme_cmd *cmd)
{
	struct nvme_tcp_cmd c;
	if (rd(fd, &c, sizeof(c)))
		return -1;
	if (c.common.pdu_type != NVME_TCP_PDU_CAPSULE_CMD || c.common.hlen != 72)
		peer_fail(p, "not a capsule");
	if (!!(c.common.flags & NVME_TCP_F_HDGST) != p->hd)
		peer_fail(p, "capsule HDGST flag");
	if (c.ccsqe.psdt != 1)
		peer_fail(p, "PSDT is not 01b");
	uint32_t hd = p->hd ? 4 : 0, dd = p->dd ? 4 : 0;
	if (hd) {
		uint32_t g;
		rd(fd, &g, 4);
		if (g != dbk_crc32c(&c, sizeof(c)))
			peer_fail(p, "capsule header digest wrong");
	}
	uint32_t dlen = c.common.plen - 72 - hd;
	if (dlen) {
		dlen -= dd;
		if (c.common.pdo != 72 + hd || dlen != c.ccsqe.sgl1.length || c.ccsqe.sgl1.type != 0 ||
		    c.ccsqe.sgl1.subtype != 1)
			peer_fail(p, "in-capsule data layout");
		rd(fd, p->data, dlen);
		p->got_len = dlen;
		if (dd) {
			uint32_t g;
			rd(fd, &g, 4);
			if (g != dbk_crc32c(p->data, dlen))
				peer_fail(p, "capsule data digest wrong");
		}
	} else if (c.ccsqe.sgl1.length && (c.ccsqe.sgl1.type != 5 || c.ccsqe.sgl1.subtype != 0xA)) {
		peer_fail(p, "transport SGL expected");
	}
	*cmd = c.ccsqe;
	return 0;
}

static void send_hdr(struct peer *p, int fd, void *h, size_t len, bool corrupt)
{
	wr(fd, h, len);
	if (p->hd) {
		uint32_t d = dbk_crc32c(h, len) ^ (corrupt ? 1u : 0u);
		wr(fd, &d, 4);
	}
}

static void send_resp(struct peer *p, int fd, uint16_t cid, uint16_t status, bool corrupt)
{
	struct nvme_tcp_rsp r;
	memset(&r, 0, sizeof(r));
	r.common.pdu_type = NVME_TCP_PDU_CAPSULE_RESP;
	r.common.flags = p->hd ? NVME_TCP_F_HDGST : 0;
	r.common.hlen = 24;
	r.common.plen = 24 + (p->hd ? 4 : 0);
	r.rccqe.cid = cid;
	r.rccqe.status = (uint16_t)(status << 1);
	send_hdr(p, fd, &r, sizeof(r), corrupt);
}

static void send_c2h(struct peer *p, int fd, uint16_t cid, uint32_t off, const uint8_t *data, uint32_t len,
		     uint8_t pad, uint8_t flags, bool bad_ddgst)
{
	uint32_t hd = p->hd ? 4 : 0, dd = p->dd ? 4 : 0;
	struct nvme_tcp_data_hdr h;
	memset(&h, 0, sizeof(h));
	h.common.pdu_type = NVME_TCP_PDU_C2H_DATA;
	h.common.flags = (uint8_t)(flags | (hd ? NVME_TCP_F_HDGST : 0) | (dd ? NVME_TCP_F_DDGST : 0));
	h.common.hlen = 24;
	h.common.pdo = (uint8_t)(24 + hd + pad);
	h.common.plen = 24 + hd + pad + len + dd;
	h.cccid = cid;
	h.datao = off;
	h.datal = len;
	send_hdr(p, fd, &h, sizeof(h), false);
	uint8_t zeros[64] = {0};
	if (pad)
		wr(fd, zeros, pad);
	wr(fd, data, len);
	if (dd) {
		uint32_t d = dbk_crc32c(data, len) ^ (bad_ddgst ? 0x100u : 0u);
		wr(fd, &d, 4);
	}
}

static struct host_qpair *connect_host(struct peer *p, int expect_rc)
{
	struct host_qpair *qp = calloc(1, sizeof(*qp));
	assert_non_null(qp);
	qp->qid = 1;
	int rc = host_qp_connect(qp, "127.0.0.1", p->port, 4, p->hd, p->dd, 4, 65536, NULL);
	assert_int_equal(rc, expect_rc);
	qp->icd_size = 4096;
	return qp;
}

static void fill(uint8_t *b, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(seed + i * 7 + (i >> 8));
}

static struct nvme_cmd read_cmd(void)
{
	struct nvme_cmd c;
	memset(&c, 0, sizeof(c));
	c.opc = NVME_OPC_READ;
	c.nsid = 1;
	return c;
}

/* ----------------------------------------------------------------- scripts */

static void script_read_padded(struct peer *p, int fd)
{
	struct nvme_cmd cmd;
	if (read_capsule(p, fd, &cmd))
		return;
	uint8_t d[8192];
	fill(d, sizeof(d), 3);
	send_c2h(p, fd, cmd.cid, 0, d, 4096, 8, 0, false);
	send_c2h(p, fd, cmd.cid, 4096, d + 4096, 4096, 0, NVME_TCP_F_DATA_LAST, false);
	send_resp(p, fd, cmd.cid, 0, false);
}

static void test_read_digests_padding(void **state)
{
	(void)state;
	struct peer *p = peer_new(true, true);
	p->script = script_read_padded;
	peer_start(p);
	struct host_qpair *qp = connect_host(p, 0);
	uint8_t buf[8192], want[8192];
	fill(want, sizeof(want), 3);
	memset(buf, 0, sizeof(buf));
	struct nvme_cmd c = read_cmd();
	struct nvme_cpl cpl;
	assert_int_equal(host_exec_sync(qp, &c, buf, sizeof(buf), false, &cpl, 5000), 0);
	assert_int_equal(nvme_cpl_status(&cpl), 0);
	assert_memory_equal(buf, want, sizeof(buf));
	assert_int_equal(qp->data_success, 0);
	host_qp_close(qp);
	peer_stop(p);
	free(qp);
	free(p);
}

static void script_write_r2t(struct peer *p, int fd)
{
	struct nvme_cmd cmd;
	if (read_capsule(p, fd, &cmd))
		return;
	if (cmd.sgl1.length != 12288)
		peer_fail(p, "SGL length");
	struct nvme_tcp_r2t_hdr r;
	memset(&r, 0, sizeof(r));
	r.common.pdu_type = NVME_TCP_PDU_R2T;
	r.common.flags = p->hd ? NVME_TCP_F_HDGST : 0;
	r.common.hlen = 24;
	r.common.plen = 24 + (p->hd ? 4 : 0);
	r.cccid = cmd.cid;
	r.ttag = 0x77;
	r.r2to = 0;
	r.r2tl = 12288;
	send_hdr(p, fd, &r, sizeof(r), false);
	uint32_t got = 0;
	for (int i = 0; i < 3; i++) {
		struct nvme_tcp_data_hdr h;
		if (rd(fd, &h, sizeof(h)))
			return peer_fail(p, "eof in H2CData");
		if (h.common.pdu_type != NVME_TCP_PDU_H2C_DATA || h.cccid != cmd.cid || h.ttag != 0x77 ||
		    h.datao != got || h.datal != 4096 || h.common.pdo != 24 + (p->hd ? 4 : 0))
			peer_fail(p, "H2CData header fields");
		if (!!(h.common.flags & NVME_TCP_F_DATA_LAST) != (i == 2))
			peer_fail(p, "DATA_LAST only on the last H2CData of the R2T");
		if (p->hd) {
			uint32_t g;
			rd(fd, &g, 4);
			if (g != dbk_crc32c(&h, sizeof(h)))
				peer_fail(p, "H2CData header digest");
		}
		rd(fd, p->data + got, h.datal);
		if (p->dd) {
			uint32_t g;
			rd(fd, &g, 4);
			if (g != dbk_crc32c(p->data + got, h.datal))
				peer_fail(p, "H2CData data digest");
		}
		got += h.datal;
	}
	p->got_len = got;
	send_resp(p, fd, cmd.cid, 0, false);
}

static void test_write_r2t_split_by_maxh2cdata(void **state)
{
	(void)state;
	struct peer *p = peer_new(true, true);
	p->script = script_write_r2t;
	p->maxh2cdata = 4096;
	peer_start(p);
	struct host_qpair *qp = connect_host(p, 0);
	assert_int_equal(qp->maxh2cdata, 4096);
	static uint8_t buf[12288];
	fill(buf, sizeof(buf), 9);
	struct nvme_cmd c = read_cmd();
	c.opc = NVME_OPC_WRITE;
	struct nvme_cpl cpl;
	assert_int_equal(host_exec_sync(qp, &c, buf, sizeof(buf), true, &cpl, 5000), 0);
	assert_int_equal(nvme_cpl_status(&cpl), 0);
	host_qp_close(qp);
	peer_stop(p);
	assert_int_equal(p->got_len, sizeof(buf));
	assert_memory_equal(p->data, buf, sizeof(buf));
	free(qp);
	free(p);
}

static void script_incapsule(struct peer *p, int fd)
{
	struct nvme_cmd cmd;
	if (read_capsule(p, fd, &cmd))
		return;
	send_resp(p, fd, cmd.cid, NVME_STATUS(0, NVME_SC_LBA_OUT_OF_RANGE) | NVME_STATUS_DNR, false);
}

static void test_write_in_capsule_and_status(void **state)
{
	(void)state;
	struct peer *p = peer_new(false, true);
	p->script = script_incapsule;
	peer_start(p);
	struct host_qpair *qp = connect_host(p, 0);
	uint8_t buf[4096];
	fill(buf, sizeof(buf), 1);
	struct nvme_cmd c = read_cmd();
	c.opc = NVME_OPC_WRITE;
	struct nvme_cpl cpl;
	assert_int_equal(host_exec_sync(qp, &c, buf, sizeof(buf), true, &cpl, 5000), 0);
	uint16_t st = nvme_cpl_status(&cpl);
	assert_int_equal(NVME_STATUS_GET_SC(st), NVME_SC_LBA_OUT_OF_RANGE);
	char s[128];
	assert_non_null(strstr(host_status_str(st, s, sizeof(s)), "LBA out of range"));
	host_qp_close(qp);
	peer_stop(p);
	assert_int_equal(p->got_len, 4096);
	assert_memory_equal(p->data, buf, 4096);
	free(qp);
	free(p);
}

static void script_data_success(struct peer *p, int fd)
{
	struct nvme_cmd cmd;
	if (read_capsule(p, fd, &cmd))
		return;
	uint8_t d[4096];
	fill(d, sizeof(d), 5);
	send_c2h(p, fd, cmd.cid, 0, d, 4096, 0, NVME_TCP_F_DATA_LAST | NVME_TCP_F_DATA_SUCCESS, false);
	/* No CapsuleResp: the next command must still work. */
	if (read_capsule(p, fd, &cmd))
		return;
	send_resp(p, fd, cmd.cid, 0, false);
}

static void test_read_data_success(void **state)
{
	(void)state;
	struct peer *p = peer_new(false, false);
	p->script = script_data_success;
	peer_start(p);
	struct host_qpair *qp = connect_host(p, 0);
	uint8_t buf[4096], want[4096];
	fill(want, sizeof(want), 5);
	struct nvme_cmd c = read_cmd();
	struct nvme_cpl cpl;
	assert_int_equal(host_exec_sync(qp, &c, buf, sizeof(buf), false, &cpl, 5000), 0);
	assert_int_equal(nvme_cpl_status(&cpl), 0);
	assert_memory_equal(buf, want, sizeof(buf));
	assert_int_equal(qp->data_success, 1);
	c.opc = NVME_OPC_FLUSH;
	assert_int_equal(host_exec_sync(qp, &c, NULL, 0, false, &cpl, 5000), 0);
	host_qp_close(qp);
	peer_stop(p);
	free(qp);
	free(p);
}

static void script_bad_ddgst(struct peer *p, int fd)
{
	struct nvme_cmd cmd;
	if (read_capsule(p, fd, &cmd))
		return;
	uint8_t d[4096];
	fill(d, sizeof(d), 5);
	send_c2h(p, fd, cmd.cid, 0, d, 4096, 0, NVME_TCP_F_DATA_LAST, true);
	send_resp(p, fd, cmd.cid, 0, false);
	char x;
	rd(fd, &x, 1);	/* until the host closes */
}

static void script_bad_hdgst(struct peer *p, int fd)
{
	struct nvme_cmd cmd;
	if (read_capsule(p, fd, &cmd))
		return;
	send_resp(p, fd, cmd.cid, 0, true);
	char x;
	rd(fd, &x, 1);
}

static void script_termreq(struct peer *p, int fd)
{
	struct nvme_cmd cmd;
	if (read_capsule(p, fd, &cmd))
		return;
	uint8_t buf[24 + 8];
	memset(buf, 0, sizeof(buf));
	struct nvme_tcp_term_req_hdr *t = (void *)buf;
	t->common.pdu_type = NVME_TCP_PDU_C2H_TERM_REQ;
	t->common.hlen = 24;
	t->common.plen = sizeof(buf);
	t->fes = NVME_TCP_FES_INVALID_HEADER_FIELD;
	t->fei = 2;
	wr(fd, buf, sizeof(buf));
	char x;
	rd(fd, &x, 1);
}

static void script_silent(struct peer *p, int fd)
{
	struct nvme_cmd cmd;
	if (read_capsule(p, fd, &cmd))
		return;
	char x;
	rd(fd, &x, 1);
}

static void expect_exec_error(void (*script)(struct peer *, int), bool hd, bool dd, int timeout_ms,
			      const char *needle)
{
	struct peer *p = peer_new(hd, dd);
	p->script = script;
	peer_start(p);
	struct host_qpair *qp = connect_host(p, 0);
	uint8_t buf[4096];
	struct nvme_cmd c = read_cmd();
	struct nvme_cpl cpl;
	assert_int_equal(host_exec_sync(qp, &c, buf, sizeof(buf), false, &cpl, timeout_ms), -1);
	assert_true(qp->failed);
	if (!strstr(qp->err, needle))
		fail_msg("error '%s' lacks '%s'", qp->err, needle);
	host_qp_close(qp);
	peer_stop(p);
	free(qp);
	free(p);
}

static void test_bad_data_digest(void **state)
{
	(void)state;
	expect_exec_error(script_bad_ddgst, false, true, 5000, "data digest error");
}

static void test_bad_header_digest(void **state)
{
	(void)state;
	expect_exec_error(script_bad_hdgst, true, false, 5000, "header digest error");
}

static void test_c2h_term_req(void **state)
{
	(void)state;
	expect_exec_error(script_termreq, false, false, 5000, "C2HTermReq: FES 0x1");
}

static void test_command_timeout(void **state)
{
	(void)state;
	expect_exec_error(script_silent, false, false, 300, "timed out");
}

static void expect_connect_error(struct peer *p, const char *needle)
{
	peer_start(p);
	struct host_qpair *qp = connect_host(p, -1);
	if (!strstr(qp->err, needle))
		fail_msg("error '%s' lacks '%s'", qp->err, needle);
	assert_int_equal(qp->fd, -1);
	peer_stop(p);
	free(qp);
	free(p);
}

static void test_icresp_validation(void **state)
{
	(void)state;
	struct peer *p = peer_new(true, false);
	p->cpda = 1;
	expect_connect_error(p, "CPDA");
	p = peer_new(true, false);
	p->dgst_xor = NVME_TCP_ICREQ_DGST_DDGST;
	expect_connect_error(p, "digest bits");
	p = peer_new(false, false);
	p->pfv = 1;
	expect_connect_error(p, "PFV");
	p = peer_new(false, false);
	p->maxh2cdata = 1000;
	expect_connect_error(p, "MAXH2CDATA");
}

static void test_connect_refused(void **state)
{
	(void)state;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t l = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &l);
	char port[16];
	snprintf(port, sizeof(port), "%u", ntohs(a.sin_port));
	/* Bound but not listening: the connect is refused. */
	struct host_qpair qp;
	memset(&qp, 0, sizeof(qp));
	assert_int_equal(host_qp_connect(&qp, "127.0.0.1", port, 4, false, false, 4, 4096, NULL), -1);
	assert_non_null(strstr(qp.err, "Connection refused"));
	close(fd);
}

/* ------------------------------------------------------ in-place C2HData receive
 *
 * The host has a mix of commands in flight: reads of 512 B .. 2 MiB (some at and around HOST_RX_DIRECT_MIN), an
 * in-capsule write, a write on R2T and a large read that fails without data. The peer answers with one byte
 * stream -- R2T, C2HData PDUs of the reads interleaved (split at the case's PDU size, optionally padded, with
 * DATA_SUCCESS and no CapsuleResp for some), CapsuleResps -- and sends it whole, cut around every PDU boundary
 * (inside headers, digests, right after headers) or in random pieces, with short pauses so the host sees the
 * partial states. Every read must arrive intact, and of the large reads' payloads only a lookahead's worth per
 * PDU may go through the staging buffer. */

enum { SPLIT_WHOLE, SPLIT_EDGES, SPLIT_RANDOM };

struct xcmd {
	uint32_t len;
	bool write;
	bool fail;	/* the peer ends it with an error status and no data */
};

static const struct xcmd g_xcmds[] = {
	{131072, false, false}, {4096, true, false},  {512, false, false},   {2097152, false, false},
	{16896, false, false},	{65536, true, false}, {4096, false, false},  {HOST_RX_DIRECT_MIN, false, false},
	{HOST_RX_DIRECT_MIN - 1, false, false},	      {65536, false, true},
};
#define NX (sizeof(g_xcmds) / sizeof(g_xcmds[0]))

struct xcase {
	uint8_t pad;
	bool success;	/* DATA_SUCCESS (no CapsuleResp) on every other read */
	uint32_t pdu;	/* max C2HData payload, 0: one PDU per read */
	int split;
	uint64_t seed;
	/* filled by the peer */
	uint8_t wdata[4096];
	uint32_t big_pdus;	/* C2HData PDUs of reads >= HOST_RX_DIRECT_MIN */
};

struct obuf {
	uint8_t *b;
	size_t len, cap;
	size_t *pdu;	/* offsets where PDUs start */
	size_t npdu, pducap;
};

static void ob_put(struct obuf *o, const void *p, size_t n)
{
	if (o->len + n > o->cap) {
		o->cap = (o->len + n) * 2;
		o->b = realloc(o->b, o->cap);
		assert_non_null(o->b);
	}
	memcpy(o->b + o->len, p, n);
	o->len += n;
}

static void ob_pdu(struct obuf *o)
{
	if (o->npdu == o->pducap) {
		o->pducap = o->pducap ? o->pducap * 2 : 64;
		o->pdu = realloc(o->pdu, o->pducap * sizeof(*o->pdu));
		assert_non_null(o->pdu);
	}
	o->pdu[o->npdu++] = o->len;
}

static void ob_hdr(struct peer *p, struct obuf *o, const void *h, size_t len)
{
	ob_pdu(o);
	ob_put(o, h, len);
	if (p->hd) {
		uint32_t d = dbk_crc32c(h, len);
		ob_put(o, &d, 4);
	}
}

static void ob_resp(struct peer *p, struct obuf *o, uint16_t cid, uint16_t status)
{
	struct nvme_tcp_rsp r;
	memset(&r, 0, sizeof(r));
	r.common.pdu_type = NVME_TCP_PDU_CAPSULE_RESP;
	r.common.flags = p->hd ? NVME_TCP_F_HDGST : 0;
	r.common.hlen = 24;
	r.common.plen = 24 + (p->hd ? 4 : 0);
	r.rccqe.cid = cid;
	r.rccqe.status = (uint16_t)(status << 1);
	ob_hdr(p, o, &r, sizeof(r));
}

static void ob_c2h(struct peer *p, struct obuf *o, uint16_t cid, uint32_t off, const uint8_t *data, uint32_t len,
		   uint8_t pad, uint8_t flags)
{
	uint32_t hd = p->hd ? 4 : 0, dd = p->dd ? 4 : 0;
	struct nvme_tcp_data_hdr h;
	memset(&h, 0, sizeof(h));
	h.common.pdu_type = NVME_TCP_PDU_C2H_DATA;
	h.common.flags = (uint8_t)(flags | (hd ? NVME_TCP_F_HDGST : 0) | (dd ? NVME_TCP_F_DDGST : 0));
	h.common.hlen = 24;
	h.common.pdo = (uint8_t)(24 + hd + pad);
	h.common.plen = 24 + hd + pad + len + dd;
	h.cccid = cid;
	h.datao = off;
	h.datal = len;
	ob_hdr(p, o, &h, sizeof(h));
	static const uint8_t junk[255] = {0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee};
	ob_put(o, junk, pad);
	ob_put(o, data, len);
	if (dd) {
		uint32_t d = dbk_crc32c(data, len);
		ob_put(o, &d, 4);
	}
}

static uint64_t xrand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

/* Send o->b[from, to), pausing now and then so that the host sees what has arrived so far. */
static void send_piece(int fd, const struct obuf *o, size_t from, size_t to, uint64_t *rs)
{
	if (to <= from)
		return;
	wr(fd, o->b + from, to - from);
	if (xrand(rs) % 3 == 0)
		usleep(20);
}

static void send_split(struct peer *p, int fd, struct obuf *o, int split, uint64_t seed)
{
	uint64_t rs = seed | 1;
	if (split == SPLIT_WHOLE) {
		wr(fd, o->b, o->len);
		return;
	}
	if (split == SPLIT_RANDOM) {
		size_t off = 0;
		while (off < o->len) {
			static const size_t lim[] = {8, 100, 5000, 70000};
			size_t n = 1 + xrand(&rs) % lim[xrand(&rs) % 4];
			if (n > o->len - off)
				n = o->len - off;
			send_piece(fd, o, off, off + n, &rs);
			off += n;
		}
		return;
	}
	/* Cuts inside the previous PDU's digest, around and inside each header, right after it. */
	size_t hdr = 24 + (p->hd ? 4 : 0), ncut = 0;
	size_t *cut = calloc(o->npdu * 8 + 1, sizeof(*cut));
	assert_non_null(cut);
	static const long rel[] = {-3, -1, 1, 7, -1000, 0, 1, 9};	/* -1000: hdr - 1; 0: hdr; 1, 9: hdr + 1, 9 */
	for (size_t i = 0; i < o->npdu; i++)
		for (int k = 0; k < 8; k++) {
			long at = k < 4 ? (long)o->pdu[i] + rel[k] : (long)(o->pdu[i] + hdr) + (k == 4 ? -1 : rel[k]);
			if (at > 0 && (size_t)at < o->len)
				cut[ncut++] = (size_t)at;
		}
	qsort(cut, ncut, sizeof(*cut), cmp_size);
	size_t off = 0;
	for (size_t i = 0; i < ncut; i++) {
		send_piece(fd, o, off, cut[i], &rs);
		if (cut[i] > off)
			off = cut[i];
	}
	send_piece(fd, o, off, o->len, &rs);
	free(cut);
}

static void xfill(uint8_t *b, uint32_t len, unsigned idx, uint64_t seed)
{
	uint64_t s = seed * 31 + idx + 1;
	for (uint32_t i = 0; i < len; i++) {
		if (i % 8 == 0)
			xrand(&s);
		b[i] = (uint8_t)(s >> (8 * (i % 8)));
	}
}

/* Read H2CData PDUs for command cid until len bytes, into p->data. */
static void read_h2c(struct peer *p, int fd, uint16_t cid, uint16_t ttag, uint32_t len)
{
	uint32_t got = 0;
	while (got < len) {
		struct nvme_tcp_data_hdr h;
		if (rd(fd, &h, sizeof(h)))
			return peer_fail(p, "eof in H2CData");
		if (h.common.pdu_type != NVME_TCP_PDU_H2C_DATA || h.cccid != cid || h.ttag != ttag || h.datao != got ||
		    h.datal > len - got || h.datal > sizeof(p->data) - got)
			return peer_fail(p, "H2CData header fields");
		uint32_t x;
		if (p->hd)
			rd(fd, &x, 4);
		rd(fd, p->data + got, h.datal);
		if (p->dd) {
			rd(fd, &x, 4);
			if (x != dbk_crc32c(p->data + got, h.datal))
				peer_fail(p, "H2CData data digest");
		}
		got += h.datal;
	}
	p->got_len = got;
}

static void script_mixed(struct peer *p, int fd)
{
	struct xcase *xc = p->ctx;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	uint16_t cid[NX];
	for (unsigned i = 0; i < NX; i++) {
		struct nvme_cmd cmd;
		if (read_capsule(p, fd, &cmd))
			return peer_fail(p, "eof reading capsules");
		if (cmd.cdw10 >= NX)
			return peer_fail(p, "unknown command");
		cid[cmd.cdw10] = cmd.cid;
		if (cmd.cdw10 == 1)
			memcpy(xc->wdata, p->data, sizeof(xc->wdata));
	}
	struct obuf o = {0};
	/* R2T for the large write first: its H2CData is read after the stream. */
	struct nvme_tcp_r2t_hdr r2t;
	memset(&r2t, 0, sizeof(r2t));
	r2t.common.pdu_type = NVME_TCP_PDU_R2T;
	r2t.common.flags = p->hd ? NVME_TCP_F_HDGST : 0;
	r2t.common.hlen = 24;
	r2t.common.plen = 24 + (p->hd ? 4 : 0);
	r2t.cccid = cid[5];
	r2t.ttag = 9;
	r2t.r2tl = g_xcmds[5].len;
	ob_hdr(p, &o, &r2t, sizeof(r2t));
	/* Reads' PDUs interleaved: a random read with data left sends its next PDU. */
	uint32_t sent[NX] = {0};
	uint8_t *src[NX] = {0};
	unsigned left = 0;
	for (unsigned i = 0; i < NX; i++) {
		if (g_xcmds[i].write || g_xcmds[i].fail)
			continue;
		src[i] = malloc(g_xcmds[i].len);
		assert_non_null(src[i]);
		xfill(src[i], g_xcmds[i].len, i, xc->seed);
		left++;
	}
	uint64_t rs = xc->seed;
	ob_resp(p, &o, cid[1], 0);
	ob_resp(p, &o, cid[9], NVME_STATUS(0, NVME_SC_LBA_OUT_OF_RANGE));
	while (left) {
		unsigned i = (unsigned)(xrand(&rs) % NX);
		if (!src[i] || sent[i] == g_xcmds[i].len)
			continue;
		uint32_t n = g_xcmds[i].len - sent[i];
		if (xc->pdu && n > xc->pdu)
			n = xc->pdu;
		bool last = sent[i] + n == g_xcmds[i].len, success = last && xc->success && i % 2 == 0;
		ob_c2h(p, &o, cid[i], sent[i], src[i] + sent[i], n, xc->pad,
		       (uint8_t)((last ? NVME_TCP_F_DATA_LAST : 0) | (success ? NVME_TCP_F_DATA_SUCCESS : 0)));
		if (g_xcmds[i].len >= HOST_RX_DIRECT_MIN)
			xc->big_pdus++;
		sent[i] += n;
		if (last) {
			if (!success)
				ob_resp(p, &o, cid[i], 0);
			left--;
		}
	}
	send_split(p, fd, &o, xc->split, xc->seed);
	read_h2c(p, fd, cid[5], 9, g_xcmds[5].len);
	send_resp(p, fd, cid[5], 0, false);
	for (unsigned i = 0; i < NX; i++)
		free(src[i]);
	free(o.b);
	free(o.pdu);
	char x;
	rd(fd, &x, 1);	/* until the host closes */
}

struct xio {
	bool done;
	uint16_t status;
};

static void xio_cb(struct host_qpair *qp, struct host_req *r, void *arg)
{
	(void)qp;
	struct xio *x = arg;
	x->done = true;
	x->status = nvme_cpl_status(&r->cpl);
}

static void run_mixed(bool hd, bool dd, struct xcase *xc)
{
	struct peer *p = peer_new(hd, dd);
	p->script = script_mixed;
	p->ctx = xc;
	peer_start(p);
	struct host_qpair *qp = calloc(1, sizeof(*qp));
	assert_non_null(qp);
	qp->qid = 1;
	assert_int_equal(host_qp_connect(qp, "127.0.0.1", p->port, 4, hd, dd, 16, 2 * 1024 * 1024, NULL), 0);
	qp->icd_size = 4096;
	uint8_t *buf[NX];
	struct xio io[NX];
	memset(io, 0, sizeof(io));
	uint64_t reads = 0, small = 0;
	for (unsigned i = 0; i < NX; i++) {
		buf[i] = malloc(g_xcmds[i].len);
		assert_non_null(buf[i]);
		if (g_xcmds[i].write)
			xfill(buf[i], g_xcmds[i].len, 100 + i, xc->seed);
		else
			memset(buf[i], 0x5a, g_xcmds[i].len);
		if (!g_xcmds[i].write && !g_xcmds[i].fail) {
			reads += g_xcmds[i].len;
			if (g_xcmds[i].len < HOST_RX_DIRECT_MIN)
				small += g_xcmds[i].len;
		}
		struct nvme_cmd c = read_cmd();
		c.opc = g_xcmds[i].write ? NVME_OPC_WRITE : NVME_OPC_READ;
		c.cdw10 = i;
		struct host_req *r = host_req_get(qp);
		assert_non_null(r);
		assert_int_equal(host_submit(qp, r, &c, buf[i], g_xcmds[i].len, g_xcmds[i].write, xio_cb, &io[i]), 0);
	}
	uint64_t deadline = host_now_ns() + 20000000000ull;
	for (unsigned ndone = 0; ndone < NX;) {
		if (host_process(qp) < 0)
			fail_msg("host: %s", qp->err);
		if (host_now_ns() > deadline)
			fail_msg("timed out");
		ndone = 0;
		for (unsigned i = 0; i < NX; i++)
			ndone += io[i].done;
	}
	for (unsigned i = 0; i < NX; i++) {
		if (g_xcmds[i].fail) {
			assert_int_equal(NVME_STATUS_GET_SC(io[i].status), NVME_SC_LBA_OUT_OF_RANGE);
			continue;
		}
		assert_int_equal(io[i].status, 0);
		if (g_xcmds[i].write)
			continue;
		uint8_t *want = malloc(g_xcmds[i].len);
		assert_non_null(want);
		xfill(want, g_xcmds[i].len, i, xc->seed);
		if (memcmp(buf[i], want, g_xcmds[i].len))
			fail_msg("read %u (%u bytes) differs", i, g_xcmds[i].len);
		free(want);
	}
	assert_int_equal(qp->big_c2h, 0);
	assert_int_equal(qp->data_success, xc->success ? 5 : 0);	/* reads 0, 2, 4, 6, 8; 3 and 7 get a CapsuleResp */
	assert_int_equal(qp->c2h_staged + qp->c2h_direct, reads);
	/* Of a large read's PDU at most the lookahead after its header is staged; small reads may be staged whole. */
	uint64_t bound = small + (uint64_t)xc->big_pdus * HOST_RX_LOOKAHEAD_HDRS * (24 + (hd ? 4 : 0));
	if (qp->c2h_staged > bound)
		fail_msg("%" PRIu64 " payload bytes staged, at most %" PRIu64 " expected (%u large-read PDUs, %" PRIu64
			 " bytes of small reads)",
			 qp->c2h_staged, bound, xc->big_pdus, small);
	host_qp_close(qp);
	peer_stop(p);
	assert_int_equal(p->got_len, g_xcmds[5].len);
	assert_memory_equal(p->data, buf[5], g_xcmds[5].len);
	assert_memory_equal(xc->wdata, buf[1], 4096);
	for (unsigned i = 0; i < NX; i++)
		free(buf[i]);
	free(qp);
	free(p);
}

static void test_c2h_in_place_mixed(void **state)
{
	(void)state;
	static const uint32_t pdus[] = {0, 32768, 4100};
	unsigned n = 0;
	for (int split = SPLIT_WHOLE; split <= SPLIT_RANDOM; split++)
		for (unsigned pi = 0; pi < 3; pi++)
			for (int m = 0; m < 16; m++) {
				struct xcase *xc = calloc(1, sizeof(*xc));
				assert_non_null(xc);
				xc->pad = (m & 4) ? 8 : 0;
				xc->success = m & 8;
				xc->pdu = pdus[pi];
				xc->split = split;
				xc->seed = 0x9e3779b97f4a7c15ull * (++n);
				run_mixed(m & 1, m & 2, xc);
				free(xc);
			}
}

/* ------------------------------------------------------------ congestion control */

static void read_proc(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, (int)len, f));
	buf[strcspn(buf, "\n")] = 0;
	fclose(f);
}

static void sock_cc(int fd, char *buf, size_t len)
{
	memset(buf, 0, len);
	socklen_t l = (socklen_t)len - 1;
	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, buf, &l), 0);
}

/* One 4 KiB in-capsule Write through qp to peer p (script_incapsule) completes; then qp is closed and p is
 * stopped and freed. */
static void write_once_and_close(struct host_qpair *qp, struct peer *p)
{
	qp->icd_size = 4096;
	uint8_t buf[4096] = {0};
	struct nvme_cmd c = read_cmd();
	c.opc = NVME_OPC_WRITE;
	struct nvme_cpl cpl;
	assert_int_equal(host_exec_sync(qp, &c, buf, sizeof(buf), true, &cpl, 5000), 0);
	host_qp_close(qp);
	peer_stop(p);
	free(p);
}

static void test_congestion_control(void **state)
{
	(void)state;
	char avail[256], def[32], got[32], err[512];
	read_proc("/proc/sys/net/ipv4/tcp_available_congestion_control", avail, sizeof(avail));
	read_proc("/proc/sys/net/ipv4/tcp_congestion_control", def, sizeof(def));
	/* Something other than the system default (reno is always built in). */
	const char *pick = strcmp(def, "reno") ? "reno" : strstr(avail, "cubic") ? "cubic" : NULL;
	if (!pick)
		skip();
	assert_int_equal(host_congestion_check(pick, err, sizeof(err)), 0);

	struct peer *p = peer_new(false, false);
	p->script = script_incapsule;
	peer_start(p);
	struct host_qpair *qp = calloc(1, sizeof(*qp));
	assert_non_null(qp);
	qp->qid = 1;
	struct host_sock_opts so = {.congestion = pick};
	assert_int_equal(host_qp_connect(qp, "127.0.0.1", p->port, 4, false, false, 4, 65536, &so), 0);
	sock_cc(qp->fd, got, sizeof(got));
	assert_string_equal(got, pick);
	assert_string_equal(qp->congestion, pick);
	/* The connection works. */
	write_once_and_close(qp, p);

	/* Without a name: the system default, reported as such. */
	p = peer_new(false, false);
	peer_start(p);
	memset(qp, 0, sizeof(*qp));
	so.congestion = "";
	assert_int_equal(host_qp_connect(qp, "127.0.0.1", p->port, 4, false, false, 4, 65536, &so), 0);
	sock_cc(qp->fd, got, sizeof(got));
	assert_string_equal(got, def);
	assert_string_equal(qp->congestion, def);
	host_qp_close(qp);
	peer_stop(p);
	free(p);
	free(qp);
}

static int sock_rcvbuf(int fd)
{
	int v = 0;
	socklen_t l = sizeof(v);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &l), 0);
	return v;
}

/* --sock-rcvbuf: SO_RCVBUF is set before connect() (so the window scale allows it), reported in qp->rcvbuf;
 * 0 leaves the kernel's default (autotuned) buffer alone. */
static void test_sock_rcvbuf(void **state)
{
	(void)state;
	char line[128];
	read_proc("/proc/sys/net/core/rmem_max", line, sizeof(line));
	long rmem_max = atol(line);
	read_proc("/proc/sys/net/ipv4/tcp_rmem", line, sizeof(line));
	long rmem_def = 0;
	assert_int_equal(sscanf(line, "%*d %ld", &rmem_def), 1);
	const int want = 1024 * 1024;
	/* The kernel doubles the request (bookkeeping overhead) after capping it at rmem_max. */
	const long expect = 2 * (want < rmem_max ? want : rmem_max);
	assert_true(expect != rmem_def);

	struct host_qpair *qp = calloc(1, sizeof(*qp));
	assert_non_null(qp);
	struct host_sock_opts so = {.rcvbuf = want};
	struct peer *p = peer_new(false, false);
	p->script = script_incapsule;
	peer_start(p);
	qp->qid = 1;
	assert_int_equal(host_qp_connect(qp, "127.0.0.1", p->port, 4, false, false, 4, 65536, &so), 0);
	assert_int_equal(sock_rcvbuf(qp->fd), expect);
	assert_int_equal(qp->rcvbuf, expect);
	/* The connection works with it. */
	write_once_and_close(qp, p);

	/* 0: untouched, the system's initial TCP receive buffer (net.ipv4.tcp_rmem's default). */
	so.rcvbuf = 0;
	p = peer_new(false, false);
	peer_start(p);
	memset(qp, 0, sizeof(*qp));
	assert_int_equal(host_qp_connect(qp, "127.0.0.1", p->port, 4, false, false, 4, 65536, &so), 0);
	assert_int_equal(qp->rcvbuf, rmem_def);
	assert_int_equal(sock_rcvbuf(qp->fd), rmem_def);
	host_qp_close(qp);
	peer_stop(p);
	free(p);
	free(qp);
}

static void expect_cc_error(int lfd, const char *port, const char *name, const char *needle)
{
	struct host_qpair qp;
	memset(&qp, 0, sizeof(qp));
	struct host_sock_opts so = {.congestion = name};
	assert_int_equal(host_qp_connect(&qp, "127.0.0.1", port, 4, false, false, 4, 4096, &so), -1);
	if (!strstr(qp.err, needle) || !strstr(qp.err, "/proc/sys/net/ipv4/tcp_available_congestion_control"))
		fail_msg("error '%s' lacks '%s' or the /proc file", qp.err, needle);
	assert_int_equal(qp.fd, -1);
	/* Refused before connect(): nothing reached the listener. */
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
	if (fd >= 0)
		fail_msg("a connection was made with congestion control '%s'", name);
	char err[512];
	assert_int_equal(host_congestion_check(name, err, sizeof(err)), -1);
	if (!strstr(err, needle))
		fail_msg("check: '%s' lacks '%s'", err, needle);
}

static void test_congestion_control_unknown(void **state)
{
	(void)state;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	socklen_t l = sizeof(a);
	getsockname(lfd, (struct sockaddr *)&a, &l);
	char port[16];
	snprintf(port, sizeof(port), "%u", ntohs(a.sin_port));
	expect_cc_error(lfd, port, "no-such-cc", "'no-such-cc' is not available");
	expect_cc_error(lfd, port, "cubic-but-longer-than-15", "1..15 bytes");
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_digests_padding),
		cmocka_unit_test(test_write_r2t_split_by_maxh2cdata),
		cmocka_unit_test(test_write_in_capsule_and_status),
		cmocka_unit_test(test_read_data_success),
		cmocka_unit_test(test_bad_data_digest),
		cmocka_unit_test(test_bad_header_digest),
		cmocka_unit_test(test_c2h_term_req),
		cmocka_unit_test(test_command_timeout),
		cmocka_unit_test(test_icresp_validation),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_c2h_in_place_mixed),
		cmocka_unit_test(test_congestion_control),
		cmocka_unit_test(test_congestion_control_unknown),
		cmocka_unit_test(test_sock_rcvbuf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
