/*
 * Fuzz harness: the NVMe/TCP transport's receive state machine from raw bytes
 * (nvmf/tcp: rx.c's PDU parsing -- ICReq, CapsuleCmd with in-capsule data,
 * H2CData, digests, H2CTermReq --, req.c's SGL checks and buffers, tx.c's
 * answers) with the real target core behind it.
 *
 * The input is what a host sends on one connection. It reaches the real TCP
 * transport through the socket seam (nvmf/tcp/sock.h) with an in-memory stream
 * as the socket: the bytes are released PDU by PDU (by the PLEN at each PDU
 * start), split at points drawn from the input, sometimes everything at once,
 * and the connection is polled after each chunk (dbk_nvmf_tcp_qpair_poll);
 * after the last byte the stream ends, as when the host closes, and the
 * connection must go away (its close op runs) with every request it held.
 *
 * The target stays up across inputs: a TCP transport (8 KiB in-capsule data),
 * subsystems nqn.2016-06.io.spdk:cnode1 (any host; namespaces 1 = 1 MiB RAM
 * disk with 4 KiB blocks, 2 = 1 GiB null bdev, 3 = 1 MiB RAM disk with 512-byte
 * blocks), nqn.2016-06.io.spdk:compat (any host) and nqn.2016-06.io.spdk:locked
 * (no host allowed), nqn.2016-06.io.spdk:zcopy (any host) and
 * nqn.2016-06.io.spdk:ana (any host, ANA reporting), as the tests the seeds
 * were recorded from set up.
 *
 * Oracle besides the sanitizers: what the target writes is a sequence of
 * well-formed controller-to-host PDUs, and nothing follows a C2HTermReq.
 */
#include "fuzz/common/fuzz_env.h"

#include "bdev/malloc/bdev_malloc.h"
#include "bdev/null/bdev_null.h"
#include "nvmf/nvmf_internal.h"
#include "nvmf/tcp/nvme_tcp.h"
#include "nvmf/tcp/sock.h"
#include "thread/thread.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------- memory stream */

struct mem_stream {
	const uint8_t *in;
	size_t released;	/* bytes the "host" has sent so far */
	size_t pos;		/* bytes the transport has read */
	bool eof;		/* the host closed: readv returns 0 once everything is read */
	bool closed;		/* the transport released the stream */
	uint64_t out_bytes;
	/* output checker: the current PDU's common header, and what is left of the PDU */
	uint8_t hdr[8];
	unsigned hdr_have;
	uint64_t pdu_left;
	bool term_sent;
};

static struct mem_stream g_m;

static ssize_t mem_readv(struct dbk_tcp_sock *s, const struct iovec *iov, int iovcnt)
{
	struct mem_stream *m = s->ctx;
	size_t n = 0;

	for (int i = 0; i < iovcnt && m->pos < m->released; i++) {
		size_t k = iov[i].iov_len < m->released - m->pos ? iov[i].iov_len : m->released - m->pos;

		memcpy(iov[i].iov_base, m->in + m->pos, k);
		m->pos += k;
		n += k;
	}
	if (n == 0 && !(m->eof && m->pos == m->released)) {
		errno = EAGAIN;
		return -1;
	}
	return (ssize_t)n;
}

static void bad_output(const char *why, const struct mem_stream *m)
{
	fprintf(fuzz_stderr, "fuzz_tcp_rx: the target wrote %s (PDU type %u hlen %u, %llu bytes out so far)\n", why,
		m->hdr[0], m->hdr[2], (unsigned long long)m->out_bytes);
	abort();
}

/* Check the target's byte stream PDU by PDU, without keeping more than a common header. */
static void check_out(struct mem_stream *m, const uint8_t *p, size_t len)
{
	while (len) {
		if (m->pdu_left) {
			size_t k = len < m->pdu_left ? len : (size_t)m->pdu_left;

			m->pdu_left -= k;
			p += k;
			len -= k;
			continue;
		}
		if (m->term_sent)
			bad_output("bytes after a C2HTermReq", m);
		m->hdr[m->hdr_have++] = *p++;
		len--;
		if (m->hdr_have < sizeof(m->hdr))
			continue;
		m->hdr_have = 0;
		uint8_t type = m->hdr[0], hlen = m->hdr[2];
		uint32_t plen;

		memcpy(&plen, m->hdr + 4, 4);
		switch (type) {
		case NVME_TCP_PDU_IC_RESP:
			if (hlen != 128 || plen != 128)
				bad_output("a malformed ICResp", m);
			break;
		case NVME_TCP_PDU_C2H_TERM_REQ:
			if (hlen != 24 || plen < 24 || plen > 24 + NVME_TCP_TERM_REQ_MAX_DATA)
				bad_output("a malformed C2HTermReq", m);
			m->term_sent = true;
			break;
		case NVME_TCP_PDU_CAPSULE_RESP:
		case NVME_TCP_PDU_R2T:
			if (hlen != 24 || (plen != 24 && plen != 28))
				bad_output("a malformed CapsuleResp or R2T", m);
			break;
		case NVME_TCP_PDU_C2H_DATA:
			if (hlen != 24 || plen <= 24)
				bad_output("a malformed C2HData", m);
			break;
		default:
			bad_output("a PDU type a controller never sends", m);
		}
		m->pdu_left = plen - 8;
	}
}

static ssize_t mem_writev(struct dbk_tcp_sock *s, const struct iovec *iov, int iovcnt, unsigned flags)
{
	struct mem_stream *m = s->ctx;
	size_t n = 0;

	(void)flags;
	for (int i = 0; i < iovcnt; i++) {
		check_out(m, iov[i].iov_base, iov[i].iov_len);
		n += iov[i].iov_len;
	}
	m->out_bytes += n;
	return (ssize_t)n;
}

static void mem_close(struct dbk_tcp_sock *s)
{
	struct mem_stream *m = s->ctx;

	if (m->closed) {
		fprintf(fuzz_stderr, "fuzz_tcp_rx: the stream was closed twice\n");
		abort();
	}
	m->closed = true;
}

static const struct dbk_tcp_sock_ops g_mem_ops = {
	.name = "fuzz-memory",
	.readv = mem_readv,
	.writev = mem_writev,
	.close = mem_close,
};

/* ---------------------------------------------------------------- target */

static volatile bool g_flag;
static int g_rc;

static void done_cb(void *ctx, int rc, const char *err)
{
	(void)ctx;
	(void)err;
	g_rc = rc;
	g_flag = true;
}

static void wait_done(const char *what)
{
	fuzz_poll_until(&g_flag, what);
	g_flag = false;
	if (g_rc < 0) {
		fprintf(fuzz_stderr, "fuzz_tcp_rx: %s failed: %d\n", what, g_rc);
		abort();
	}
}

static struct dbk_nvmf_subsystem *subsys(const char *nqn, bool any)
{
	struct dbk_nvmf_subsystem_opts so = {0};
	struct dbk_nvmf_subsystem *s;
	char err[256];

	so.allow_any_host = any;
	so.serial_number = "SPDK00000000000001";
	if (dbk_nvmf_subsystem_create(nqn, &so, &s, err, sizeof(err)) != 0) {
		fprintf(fuzz_stderr, "fuzz_tcp_rx: %s\n", err);
		abort();
	}
	return s;
}

static void add_ns(struct dbk_nvmf_subsystem *s, const char *bdev)
{
	struct dbk_nvmf_ns_opts no = {0};

	dbk_nvmf_subsystem_add_ns(s, bdev, &no, done_cb, NULL);
	wait_done("add_ns");
}

static void setup_target(void)
{
	const struct dbk_nvmf_transport_ops *ops = dbk_nvmf_transport_ops_find("TCP");
	struct dbk_nvmf_transport_opts o;
	struct dbk_nvmf_subsystem *s;

	fuzz_core_up();
	if (!ops)
		abort();
	ops->opts_init(&o);
	o.in_capsule_data_size = 8192;
	dbk_nvmf_tgt_create_transport("TCP", &o, done_cb, NULL);
	wait_done("create_transport");
	if (dbk_bdev_malloc_create("Malloc0", NULL, 256, 4096, NULL) || dbk_bdev_null_create("Null0", NULL, 262144,
											     4096, NULL) ||
	    dbk_bdev_malloc_create("Malloc1", NULL, 2048, 512, NULL) ||
	    dbk_bdev_malloc_create("Malloc2", NULL, 2048, 512, NULL) ||
	    dbk_bdev_malloc_create("Malloc3", NULL, 256, 4096, NULL) ||
	    dbk_bdev_malloc_create("Malloc4", NULL, 256, 4096, NULL) ||
	    dbk_bdev_malloc_create("Malloc5", NULL, 2048, 512, NULL))
		abort();
	s = subsys("nqn.2016-06.io.spdk:cnode1", true);
	add_ns(s, "Malloc0");
	add_ns(s, "Null0");
	add_ns(s, "Malloc1");
	add_ns(subsys("nqn.2016-06.io.spdk:compat", true), "Malloc2");
	add_ns(subsys("nqn.2016-06.io.spdk:locked", false), "Malloc3");
	add_ns(subsys("nqn.2016-06.io.spdk:zcopy", true), "Malloc4");
	/* With ANA reporting, as test_ana.py sets it up (its listener's groups keep their default state). */
	{
		struct dbk_nvmf_subsystem_opts so = {0};
		char err[256];

		so.allow_any_host = true;
		so.ana_reporting = true;
		so.max_namespaces = 8;
		so.serial_number = "DBKANA0001";
		if (dbk_nvmf_subsystem_create("nqn.2016-06.io.spdk:ana", &so, &s, err, sizeof(err)) != 0)
			abort();
		add_ns(s, "Malloc5");
	}
	fuzz_poll_idle();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_env_init(0);
	setup_target();
	return 0;
}

/* Poll the connection and the reactor until neither moves. */
static void settle(struct dbk_nvmf_qpair *qp)
{
	for (int i = 0; i < 256 && !g_m.closed; i++) {
		size_t pos = g_m.pos;
		uint64_t out = g_m.out_bytes;

		dbk_nvmf_tcp_qpair_poll(qp);
		fuzz_poll_idle();
		if (pos == g_m.pos && out == g_m.out_bytes)
			return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dbk_nvmf_qpair *qp;
	struct fuzz_rng rng;

	memset(&g_m, 0, sizeof(g_m));
	g_m.in = data;
	fuzz_rng_seed(&rng, data, size);
	qp = dbk_nvmf_tcp_qpair_create(dbk_nvmf_tgt_find_transport("TCP"), &g_mem_ops, &g_m, -1);
	if (!qp)
		abort();
	dbk_nvmf_tgt_new_qpair(qp);
	fuzz_poll_idle();
	size_t pdu_end = 0;

	while (g_m.released < size && !g_m.closed) {
		/*
		 * Mostly up to the end of the PDU that starts here (by its PLEN), in one piece or split at random points,
		 * as a host that keeps to the queue depth sends (a recorded session at once would overrun it); sometimes
		 * whatever is left, all at once.
		 */
		uint32_t v = fuzz_rng_next(&rng);
		size_t left = size - g_m.released;

		if (g_m.released >= pdu_end) {
			uint32_t plen = 8;

			if (left >= 8)
				memcpy(&plen, data + g_m.released + 4, 4);
			pdu_end = g_m.released + (plen < 8 ? 8 : plen > left ? left : plen);
		}
		if ((v & 63) == 0)
			g_m.released = size;
		else if (v & 16)
			g_m.released = pdu_end;
		else
			g_m.released += fuzz_rng_chunk(&rng, pdu_end - g_m.released);
		settle(qp);
	}
	/* The host hangs up: the connection must go, and with it every request it held. */
	g_m.eof = true;
	g_m.released = size;
	uint64_t deadline = dbk_get_ns() + 30ull * 1000 * 1000 * 1000;
	while (!g_m.closed) {
		dbk_nvmf_tcp_qpair_poll(qp);
		fuzz_poll_skip();
		if (dbk_get_ns() > deadline) {
			fprintf(fuzz_stderr, "fuzz_tcp_rx: the connection is still open 30 s after the host closed it\n");
			abort();
		}
	}
	fuzz_poll_idle();
	return 0;
}
