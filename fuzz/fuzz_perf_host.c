/*
 * Fuzz harness: daosblk-perf's NVMe/TCP host receive path (tools/perf/nvme_host.c)
 * against a hostile target.
 *
 * The harness plays the target through a socketpair; the real host queue
 * pair (host_qp_connect_fd: ICReq/ICResp, then host_submit / host_process
 * with its staging buffer, direct reads into I/O buffers, R2T handling,
 * digests) runs unchanged. Input:
 *
 *   u8 flags (bit 0 header digest, bit 1 data digest), u8 nreqs (0: 32),
 *   u8 in-capsule KiB, u32 max_io (bytes, clamped to 4 KiB..1 MiB),
 *   128 bytes: the target's ICResp,
 *   then records, in order:
 *     tag even: submit a command: u8 opc, u8 dir (0 none, 1 host to target, 2 target to host), u32 length
 *     tag odd:  u16 n, then n bytes the target sends (written in chunks split at points drawn from the input,
 *               host_process() after each)
 *
 * Commands get command ids the way daosblk-perf's do (its free-slot stack),
 * so a session recorded between daosblk-perf and the real target replays as
 * it happened (fuzz/record/). At the end the target hangs up. Each I/O buffer
 * is its own heap block of exactly the command's length: a write past it is
 * an ASan report.
 */
#include "fuzz/common/fuzz_env.h"

#include "tools/perf/nvme_host.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_IO_CAP (1u << 20)

static struct host_qpair g_qp;
static void *g_bufs[256];
static unsigned g_completed;

static void io_cb(struct host_qpair *qp, struct host_req *r, void *arg)
{
	(void)qp;
	(void)arg;
	/* The slot is free again: its buffer goes. */
	free(g_bufs[r->cid]);
	g_bufs[r->cid] = NULL;
	g_completed++;
}

/* Discard what the host sends (capsules, H2CData): the target here never looks. */
static void drain(int fd)
{
	char buf[65536];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/* Run the host until it makes no more progress on what has arrived. */
static void process(int peer)
{
	for (int i = 0; i < 1024 && !g_qp.failed; i++) {
		uint64_t c = g_qp.completions;
		size_t head = g_qp.rhead, tail = g_qp.rtail, txh = g_qp.txhead, txt = g_qp.txtail;
		uint32_t left = g_qp.rx_left;
		enum host_rx_state st = g_qp.rx_state;

		if (host_process(&g_qp) < 0)
			break;
		drain(peer);
		if (c == g_qp.completions && head == g_qp.rhead && tail == g_qp.rtail && txh == g_qp.txhead &&
		    txt == g_qp.txtail && left == g_qp.rx_left && st == g_qp.rx_state)
			break;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_env_init(0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct fuzz_rng rng;
	uint8_t icresp[128];
	int sv[2];

	uint8_t flags = fin_u8(&in), nreqs = fin_u8(&in), icd_kb = fin_u8(&in);
	uint32_t max_io = fin_u32(&in);
	size_t icn = fin_bytes(&in, icresp, sizeof(icresp));

	if (nreqs == 0)
		nreqs = 32;
	if (max_io < 4096)
		max_io = 4096;
	if (max_io > MAX_IO_CAP)
		max_io = MAX_IO_CAP;
	fuzz_rng_seed(&rng, data, size);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	/* The ICResp is there before the host asks; a short one is followed by the hang-up. */
	if (write(sv[1], icresp, icn) != (ssize_t)icn)
		abort();
	if (icn < sizeof(icresp))
		shutdown(sv[1], SHUT_WR);
	g_qp.qid = 0;
	g_completed = 0;
	if (host_qp_connect_fd(&g_qp, sv[0], flags & 1, flags & 2, nreqs, max_io) != 0) {
		close(sv[1]);
		return 0;
	}
	g_qp.icd_size = (uint32_t)icd_kb * 1024;
	drain(sv[1]);

	while (in.n && !g_qp.failed) {
		uint8_t tag = fin_u8(&in);

		if ((tag & 1) == 0) {
			struct nvme_cmd cmd;
			uint8_t opc = fin_u8(&in), dir = fin_u8(&in) % 3;
			uint32_t len = fin_u32(&in) % (max_io + 1);
			struct host_req *r = host_req_get(&g_qp);

			if (!r)
				continue;	/* daosblk-perf never submits without a free slot */
			if (dir == 0)
				len = 0;
			memset(&cmd, 0, sizeof(cmd));
			cmd.opc = opc;
			cmd.nsid = 1;
			g_bufs[r->cid] = len ? malloc(len) : NULL;
			if (len && !g_bufs[r->cid])
				abort();
			if (host_submit(&g_qp, r, &cmd, g_bufs[r->cid], len, dir == 1, io_cb, NULL) != 0)
				break;
			process(sv[1]);
		} else {
			size_t n = fin_u16(&in);

			if (n > in.n)
				n = in.n;
			while (n && !g_qp.failed) {
				size_t chunk = fuzz_rng_chunk(&rng, n);
				ssize_t w = send(sv[1], in.p, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);

				if (w <= 0) {
					if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
						break;
					w = 0;
				}
				in.p += w;
				in.n -= (size_t)w;
				n -= (size_t)w;
				process(sv[1]);
			}
		}
	}
	/* The target hangs up: the host must notice, whatever state it is in. */
	shutdown(sv[1], SHUT_WR);
	process(sv[1]);
	if (!g_qp.failed && host_process(&g_qp) >= 0 && !g_qp.failed) {
		fprintf(fuzz_stderr, "fuzz_perf_host: the host did not notice the target closing the connection\n");
		abort();
	}
	if (fuzz_verbose)
		fprintf(fuzz_stderr, "fuzz_perf_host: %u completions; host: %s\n", g_completed, g_qp.err);
	host_qp_close(&g_qp);
	close(sv[1]);
	for (unsigned i = 0; i < sizeof(g_bufs) / sizeof(g_bufs[0]); i++) {
		free(g_bufs[i]);
		g_bufs[i] = NULL;
	}
	return 0;
}
