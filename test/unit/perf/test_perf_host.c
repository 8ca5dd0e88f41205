/*
 * daosblk-perf host queue pair against a scripted NVMe/TCP peer on loopback: the protocol corners a
 * well-behaved target never shows (padding, split transfers, DATA_SUCCESS, bad digests, TermReq, invalid ICResp,
 * silence) and checks of what the host puts on the wire (digests, SGLs, H2CData split by MAXH2CDATA).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
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
	int rc = host_qp_connect(qp, "127.0.0.1", p->port, 4, p->hd, p->dd, 4, 65536);
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
	assert_int_equal(host_qp_connect(&qp, "127.0.0.1", port, 4, false, false, 4, 4096), -1);
	assert_non_null(strstr(qp.err, "Connection refused"));
	close(fd);
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
