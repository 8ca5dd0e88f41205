/*
 * daosblk-perf: user-space NVMe/TCP initiator and load generator (spdk_nvme_perf-like).
 * One admin queue driven by the main thread (setup, keep-alive, shutdown) and one I/O queue pair per core,
 * each owned by a pinned thread that busy-polls its socket.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "tools/perf/nvme_host.h"
#include "tools/perf/perf.h"
#ifdef DBK_PERF_TLS
#include "tools/perf/tls_host.h"
#endif

#define CMD_TIMEOUT_MS 10000
#define MAX_CORES 256
#define MAX_MISMATCH_PRINT 8

enum workload { WL_READ, WL_WRITE, WL_RANDREAD, WL_RANDWRITE, WL_RW, WL_RANDRW };
static const char *wl_names[] = {"read", "write", "randread", "randwrite", "rw", "randrw"};

static struct {
	struct perf_trid trid;
	char trid_str[1024];
	int depth;
	uint32_t io_size;
	enum workload wl;
	int rwmix;	/* read percentage */
	int time_s;
	int cores[MAX_CORES];
	int ncores;
	bool hdgst, ddgst;
	uint32_t nsid;
	char hostnqn[257];
	bool hostnqn_set;	/* --hostnqn given, possibly empty */
	bool json;
	bool verify;
	uint64_t seed;
	bool progress;
	uint32_t kato_ms;
	bool sqfc_disable;
	bool prefill;
	char congestion[16];	/* TCP congestion control for every connection ("": system default) */
	int rcvbuf;		/* SO_RCVBUF of every connection (0: the kernel's autotuning) */
	bool tls;		/* --psk: TLS 1.3 with that PSK on every connection */
#ifdef DBK_PERF_TLS
	struct host_tls_opts tls_opts;
#endif
} g_opt;

#define PERF_DEFAULT_RCVBUF (2 * 1024 * 1024)

/* The options of every connection to subsystem subnqn (TLS: the PSK identity names it). */
static struct host_sock_opts sock_opts(const char *subnqn)
{
	struct host_sock_opts so = {.congestion = g_opt.congestion, .rcvbuf = g_opt.rcvbuf};
#ifdef DBK_PERF_TLS
	if (g_opt.tls) {
		g_opt.tls_opts.hostnqn = g_opt.hostnqn;
		g_opt.tls_opts.subnqn = subnqn;
		so.tls = &g_opt.tls_opts;
	}
#else
	(void)subnqn;
#endif
	return so;
}

/* ----------------------------------------------------------------- controller */

struct ctrl {
	struct host_qpair aq;
	char traddr[257], trsvcid[33], subnqn[257];
	int adrfam;
	uint8_t hostid[16];
	uint16_t cntlid;
	uint64_t cap;
	uint32_t mqes;		/* max entries (1-based) */
	uint32_t max_xfer;	/* bytes, 0 = no limit */
	uint32_t icd_size;
	uint16_t maxcmd;
	char sn[21], mn[41], fr[9];
	uint64_t nsze;
	uint32_t block_size;
	bool enabled;
};

static void die_cleanup(void);
static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "daosblk-perf: error: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	die_cleanup();
	exit(1);
}

static void trim_copy(char *dst, const void *src, size_t n)
{
	memcpy(dst, src, n);
	dst[n] = '\0';
	for (size_t i = n; i > 0 && (dst[i - 1] == ' ' || dst[i - 1] == '\0'); i--)
		dst[i - 1] = '\0';
}

static int admin_cmd(struct ctrl *c, const struct nvme_cmd *cmd, void *buf, uint32_t len, bool h2c,
		     struct nvme_cpl *cpl, const char *what)
{
	if (host_exec_sync(&c->aq, cmd, buf, len, h2c, cpl, CMD_TIMEOUT_MS)) {
		fprintf(stderr, "daosblk-perf: error: %s: %s\n", what, c->aq.err);
		return -1;
	}
	uint16_t st = nvme_cpl_status(cpl);
	if (st) {
		char sb[128];
		fprintf(stderr, "daosblk-perf: error: %s failed: %s\n", what, host_status_str(st, sb, sizeof(sb)));
		return -1;
	}
	return 0;
}

static int fabric_connect(struct host_qpair *qp, uint16_t qid, uint16_t sqsize, uint32_t kato, uint16_t cntlid,
			  const char *subnqn, const char *hostnqn, const uint8_t hostid[16], uint8_t cattr,
			  uint16_t *cntlid_out)
{
	struct nvmf_connect_cmd cc;
	memset(&cc, 0, sizeof(cc));
	cc.opc = NVME_OPC_FABRIC;
	cc.fctype = NVMF_FCTYPE_CONNECT;
	cc.recfmt = 0;
	cc.qid = qid;
	cc.sqsize = sqsize;
	cc.cattr = cattr;
	cc.kato = kato;
	struct nvmf_connect_data data;
	memset(&data, 0, sizeof(data));
	memcpy(data.hostid, hostid, 16);
	data.cntlid = cntlid;
	snprintf(data.subnqn, sizeof(data.subnqn), "%.255s", subnqn);
	snprintf(data.hostnqn, sizeof(data.hostnqn), "%.255s", hostnqn);
	struct nvme_cmd cmd;
	memcpy(&cmd, &cc, sizeof(cmd));
	struct nvme_cpl cpl;
	if (host_exec_sync(qp, &cmd, &data, sizeof(data), true, &cpl, CMD_TIMEOUT_MS)) {
		fprintf(stderr, "daosblk-perf: error: Connect (qid %u): %s\n", qid, qp->err);
		return -1;
	}
	uint16_t st = nvme_cpl_status(&cpl);
	if (st) {
		char sb[160];
		fprintf(stderr, "daosblk-perf: error: Connect to %s (qid %u, sqsize %u) rejected: %s", subnqn, qid,
			sqsize, host_status_str(st, sb, sizeof(sb)));
		if (NVME_STATUS_GET_SCT(st) == NVME_SCT_COMMAND_SPECIFIC &&
		    NVME_STATUS_GET_SC(st) == NVME_SC_CONNECT_INVALID_PARAMETERS) {
			unsigned ipo = cpl.cdw0 & 0xffff, iattr = (cpl.cdw0 >> 16) & 0xff;
			const char *field = "?";
			if (iattr & 1) {
				field = ipo == 0 ? "hostid" : ipo == 16 ? "cntlid" : ipo == 256 ? "subnqn" : ipo == 512 ? "hostnqn" : "?";
			} else {
				field = ipo == 42 ? "qid" : ipo == 44 ? "sqsize" : ipo == 46 ? "cattr" : ipo == 48 ? "kato" : ipo == 40 ? "recfmt" : "?";
			}
			fprintf(stderr, "; invalid parameter at offset %u in the %s (%s)", ipo,
				(iattr & 1) ? "connect data" : "command", field);
		}
		fprintf(stderr, "\n");
		return -1;
	}
	*cntlid_out = (uint16_t)(cpl.cdw0 & 0xffff);
	return 0;
}

static int prop_get(struct ctrl *c, uint32_t ofst, bool size8, uint64_t *val, const char *what)
{
	struct nvmf_property_cmd pc;
	memset(&pc, 0, sizeof(pc));
	pc.opc = NVME_OPC_FABRIC;
	pc.fctype = NVMF_FCTYPE_PROPERTY_GET;
	pc.attrib = size8 ? 1 : 0;
	pc.ofst = ofst;
	struct nvme_cmd cmd;
	memcpy(&cmd, &pc, sizeof(cmd));
	struct nvme_cpl cpl;
	if (admin_cmd(c, &cmd, NULL, 0, false, &cpl, what))
		return -1;
	*val = size8 ? ((uint64_t)cpl.cdw1 << 32 | cpl.cdw0) : cpl.cdw0;
	return 0;
}

static int prop_set(struct ctrl *c, uint32_t ofst, uint32_t val, const char *what)
{
	struct nvmf_property_cmd pc;
	memset(&pc, 0, sizeof(pc));
	pc.opc = NVME_OPC_FABRIC;
	pc.fctype = NVMF_FCTYPE_PROPERTY_SET;
	pc.attrib = 0;
	pc.ofst = ofst;
	pc.value = val;
	struct nvme_cmd cmd;
	memcpy(&cmd, &pc, sizeof(cmd));
	struct nvme_cpl cpl;
	return admin_cmd(c, &cmd, NULL, 0, false, &cpl, what);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Connect the admin queue and enable the controller. */
static int ctrl_connect(struct ctrl *c, const char *subnqn)
{
	snprintf(c->subnqn, sizeof(c->subnqn), "%s", subnqn);
	c->aq.qid = 0;
	struct host_sock_opts so = sock_opts(subnqn);
	if (host_qp_connect(&c->aq, c->traddr, c->trsvcid, c->adrfam, g_opt.hdgst, g_opt.ddgst, 32, 8192, &so)) {
		fprintf(stderr, "daosblk-perf: error: admin queue: %s\n", c->aq.err);
		return -1;
	}
	c->aq.icd_size = 8192;
	if (fabric_connect(&c->aq, 0, 31, g_opt.kato_ms, 0xFFFF, subnqn, g_opt.hostnqn, c->hostid, 0, &c->cntlid))
		return -1;
	if (prop_get(c, NVME_REG_CAP, true, &c->cap, "Property Get CAP"))
		return -1;
	c->mqes = (uint32_t)(c->cap & 0xffff) + 1;
	uint64_t to_ms = ((c->cap >> 24) & 0xff) * 500;
	if (to_ms == 0)
		to_ms = 500;
	uint64_t cc;
	if (prop_get(c, NVME_REG_CC, false, &cc, "Property Get CC"))
		return -1;
	uint32_t ncc = NVME_CC_EN | (6u << NVME_CC_IOSQES_SHIFT) | (4u << NVME_CC_IOCQES_SHIFT);
	if (prop_set(c, NVME_REG_CC, ncc, "Property Set CC.EN"))
		return -1;
	uint64_t deadline = host_now_ns() + to_ms * 1000000ull;
	for (;;) {
		uint64_t csts;
		if (prop_get(c, NVME_REG_CSTS, false, &csts, "Property Get CSTS"))
			return -1;
		if (csts & NVME_CSTS_CFS) {
			fprintf(stderr, "daosblk-perf: error: controller fatal status (CSTS 0x%" PRIx64 ")\n", csts);
			return -1;
		}
		if (csts & NVME_CSTS_RDY)
			break;
		if (host_now_ns() > deadline) {
			fprintf(stderr, "daosblk-perf: error: CSTS.RDY not set within CAP.TO (%" PRIu64 " ms)\n", to_ms);
			return -1;
		}
		sleep_ms(10);
	}
	c->enabled = true;
	return 0;
}

static void ctrl_shutdown(struct ctrl *c)
{
	if (c->enabled && !c->aq.failed) {
		uint32_t ncc = NVME_CC_EN | (6u << NVME_CC_IOSQES_SHIFT) | (4u << NVME_CC_IOCQES_SHIFT) |
			       (1u << NVME_CC_SHN_SHIFT);
		if (prop_set(c, NVME_REG_CC, ncc, "Property Set CC.SHN") == 0) {
			uint64_t deadline = host_now_ns() + (uint64_t)CMD_TIMEOUT_MS * 1000000ull;
			for (;;) {
				uint64_t csts;
				if (prop_get(c, NVME_REG_CSTS, false, &csts, "Property Get CSTS"))
					break;
				if ((csts & (3u << NVME_CSTS_SHST_SHIFT)) == NVME_CSTS_SHST_COMPLETE)
					break;
				if (host_now_ns() > deadline) {
					fprintf(stderr, "daosblk-perf: warning: shutdown not complete after 10 s\n");
					break;
				}
				sleep_ms(5);
			}
		}
	}
	c->enabled = false;
	host_qp_close(&c->aq);
}

static int identify(struct ctrl *c, uint8_t cns, uint32_t nsid, void *buf, const char *what)
{
	struct nvme_cmd cmd;
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = NVME_OPC_IDENTIFY;
	cmd.nsid = nsid;
	cmd.cdw10 = cns;
	struct nvme_cpl cpl;
	return admin_cmd(c, &cmd, buf, 4096, false, &cpl, what);
}

static int get_log_page(struct ctrl *c, uint8_t lid, void *buf, uint32_t len, uint64_t offset)
{
	struct nvme_cmd cmd;
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = NVME_OPC_GET_LOG_PAGE;
	uint32_t numd = len / 4 - 1;
	cmd.cdw10 = lid | ((numd & 0xffff) << 16);
	cmd.cdw11 = numd >> 16;
	cmd.cdw12 = (uint32_t)offset;
	cmd.cdw13 = (uint32_t)(offset >> 32);
	struct nvme_cpl cpl;
	return admin_cmd(c, &cmd, buf, len, false, &cpl, "Get Log Page");
}

static int keep_alive(struct ctrl *c)
{
	struct nvme_cmd cmd;
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = NVME_OPC_KEEP_ALIVE;
	struct nvme_cpl cpl;
	return admin_cmd(c, &cmd, NULL, 0, false, &cpl, "Keep Alive");
}

/* No subnqn given: read the discovery log and pick the first NVM subsystem reachable over TCP. */
static int discover(struct ctrl *c)
{
	if (ctrl_connect(c, NVME_DISC_SUBSYS_NQN))
		goto err;
	uint8_t *buf = aligned_alloc(4096, 4096);
	if (!buf || get_log_page(c, NVME_LOG_DISCOVERY, buf, 4096, 0)) {
		free(buf);
		goto err;
	}
	struct nvmf_discovery_log_header hdr;
	memcpy(&hdr, buf, sizeof(hdr));
	uint64_t numrec = hdr.numrec;
	if (numrec > 1024)
		numrec = 1024;
	if (numrec > 3) {
		uint32_t len = (uint32_t)(1024 + numrec * 1024);
		free(buf);
		buf = aligned_alloc(4096, (len + 4095) & ~4095u);
		if (!buf || get_log_page(c, NVME_LOG_DISCOVERY, buf, len, 0)) {
			free(buf);
			goto err;
		}
	}
	/* The first NVM subsystem over TCP, preferring a record for the address we are talking to. */
	int64_t found = -1;
	for (int pass = 0; pass < 2 && found < 0; pass++) {
		for (uint64_t i = 0; i < numrec; i++) {
			struct nvmf_discovery_log_entry e;
			memcpy(&e, buf + 1024 + i * 1024, sizeof(e));
			if (e.subtype != NVMF_SUBTYPE_NVME || e.trtype != NVMF_TRTYPE_TCP)
				continue;
			char traddr[257], trsvcid[33];
			trim_copy(traddr, e.traddr, 256);
			trim_copy(trsvcid, e.trsvcid, 32);
			if (pass == 0 && (strcmp(traddr, c->traddr) || strcmp(trsvcid, c->trsvcid)))
				continue;
			found = (int64_t)i;
			break;
		}
	}
	if (found >= 0) {
		struct nvmf_discovery_log_entry e;
		memcpy(&e, buf + 1024 + (uint64_t)found * 1024, sizeof(e));
		char subnqn[257], traddr[257], trsvcid[33];
		trim_copy(subnqn, e.subnqn, 256);
		trim_copy(traddr, e.traddr, 256);
		trim_copy(trsvcid, e.trsvcid, 32);
		fprintf(stderr, "daosblk-perf: discovery: using %s at %s port %s\n", subnqn, traddr, trsvcid);
		snprintf(g_opt.trid.subnqn, sizeof(g_opt.trid.subnqn), "%s", subnqn);
		if (traddr[0] && strcmp(traddr, "0.0.0.0") && strcmp(traddr, "::")) {
			snprintf(c->traddr, sizeof(c->traddr), "%s", traddr);
			c->adrfam = e.adrfam == NVMF_ADRFAM_IPV6 ? 6 : 4;
		}
		if (trsvcid[0])
			snprintf(c->trsvcid, sizeof(c->trsvcid), "%s", trsvcid);
	}
	free(buf);
	ctrl_shutdown(c);
	if (found < 0) {
		fprintf(stderr, "daosblk-perf: error: the discovery log (%" PRIu64 " records) lists no NVM subsystem over TCP\n",
			hdr.numrec);
		return -1;
	}
	return 0;
err:
	ctrl_shutdown(c);
	return -1;
}

static int ctrl_setup(struct ctrl *c)
{
	if (ctrl_connect(c, g_opt.trid.subnqn))
		return -1;
	uint8_t *id = aligned_alloc(4096, 4096);
	if (!id)
		return -1;
	if (identify(c, NVME_ID_CNS_CTRLR, 0, id, "Identify Controller"))
		goto err;
	trim_copy(c->sn, id + 4, 20);
	trim_copy(c->mn, id + 24, 40);
	trim_copy(c->fr, id + 64, 8);
	uint8_t mdts = id[77];
	uint32_t mpsmin = 4096u << ((c->cap >> 48) & 0xf);
	c->max_xfer = mdts ? (mdts + __builtin_ctz(mpsmin) >= 32 ? 0 : mpsmin << mdts) : 0;
	uint32_t ioccsz;
	memcpy(&ioccsz, id + 1792, 4);
	memcpy(&c->maxcmd, id + 514, 2);
	c->icd_size = ioccsz >= 4 ? ioccsz * 16 - 64 : 0;
	uint16_t idcntlid;
	memcpy(&idcntlid, id + 78, 2);
	if (idcntlid != c->cntlid)
		fprintf(stderr, "daosblk-perf: warning: Identify cntlid %u differs from Connect's %u\n", idcntlid,
			c->cntlid);
	memset(id, 0, 4096);
	if (identify(c, NVME_ID_CNS_NS, g_opt.nsid, id, "Identify Namespace"))
		goto err;
	memcpy(&c->nsze, id, 8);
	uint8_t flbas = id[26];
	unsigned fmt = (flbas & 0xf) | (((flbas >> 5) & 3u) << 4);
	uint32_t lbaf;
	memcpy(&lbaf, id + 128 + 4 * fmt, 4);
	unsigned lbads = (lbaf >> 16) & 0xff;
	if (c->nsze == 0) {
		fprintf(stderr, "daosblk-perf: error: namespace %u is not active (size 0)\n", g_opt.nsid);
		goto err;
	}
	if (lbads < 9 || lbads > 20) {
		fprintf(stderr, "daosblk-perf: error: namespace %u has an unsupported LBA data size 2^%u\n", g_opt.nsid,
			lbads);
		goto err;
	}
	c->block_size = 1u << lbads;
	free(id);
	return 0;
err:
	free(id);
	return -1;
}

static int set_num_queues(struct ctrl *c, int n)
{
	struct nvme_cmd cmd;
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = NVME_OPC_SET_FEATURES;
	cmd.cdw10 = NVME_FEAT_NUMBER_OF_QUEUES;
	cmd.cdw11 = (uint32_t)(n - 1) | ((uint32_t)(n - 1) << 16);
	struct nvme_cpl cpl;
	if (admin_cmd(c, &cmd, NULL, 0, false, &cpl, "Set Features Number of Queues"))
		return -1;
	int nsq = (int)(cpl.cdw0 & 0xffff) + 1, ncq = (int)(cpl.cdw0 >> 16) + 1;
	if (nsq < n || ncq < n) {
		fprintf(stderr, "daosblk-perf: error: the controller grants %d I/O queues, %d cores need %d\n",
			nsq < ncq ? nsq : ncq, n, n);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------- workers */

enum phase { PH_PREFILL, PH_RUN, PH_READBACK };

struct io_ctx {
	uint64_t slot;
	uint32_t gen;
	bool write;
};

struct worker {
	int idx, core;
	pthread_t tid;
	struct host_qpair qp;
	uint8_t *bufs;
	struct io_ctx *ctx;
	uint64_t slot_begin, slot_end, cursor;
	uint64_t rng;
	int inflight;
	enum phase phase;
	uint64_t start_ns, end_ns;
	struct perf_hist hist, hist_rd, hist_wr;
	uint64_t part_begin, part_end;	/* this worker's share of the namespace (prefill) */
	uint64_t reads, writes, read_bytes, write_bytes;
	uint64_t errors, mismatches, blocks_checked;
	_Atomic uint64_t prog_ios, prog_bytes;
	uint16_t first_err_status;
	bool failed;
	char err[600];
};

static struct ctrl g_ctrl;

/* A setup error after the controller was enabled: shut it down cleanly before exiting (main thread only). */
static void die_cleanup(void)
{
	if (g_ctrl.enabled)
		ctrl_shutdown(&g_ctrl);
}
static struct worker *g_workers;
static uint32_t g_nlb;		/* blocks per I/O */
static uint64_t g_nslots;
static uint32_t *g_gen;		/* verify: last generation written per slot (0 = unknown) */
static uint8_t *g_busy;		/* verify: slot has an I/O in flight */
static atomic_int g_abort;
static atomic_int g_ready;
static atomic_int g_go;
static volatile sig_atomic_t g_interrupted;
static uint64_t g_keep_alives;
static uint64_t g_data_success;
static uint64_t g_c2h_staged, g_c2h_direct;	/* C2HData payload bytes copied from the staging buffer / received in place */
static double g_elapsed_s;	/* measured run phase (shorter than -t when interrupted) */

static void on_sigint(int sig)
{
	(void)sig;
	g_interrupted = 1;
}
static atomic_int g_done;
static _Atomic uint64_t g_mismatch_printed;

static void worker_fail(struct worker *w, const char *msg)
{
	if (!w->failed) {
		w->failed = true;
		snprintf(w->err, sizeof(w->err), "core %d: %s", w->core, msg);
	}
	atomic_store(&g_abort, 1);
}

static void io_done(struct host_qpair *qp, struct host_req *r, void *arg)
{
	(void)qp;
	struct worker *w = arg;
	struct io_ctx *x = &w->ctx[r->cid];
	uint64_t now = host_now_ns();
	uint16_t st = nvme_cpl_status(&r->cpl);
	w->inflight--;
	if (st) {
		w->errors++;
		if (!w->first_err_status)
			w->first_err_status = st;
		if (g_opt.verify && x->write)
			g_gen[x->slot] = 0;	/* contents unknown now */
	} else if (g_opt.verify && !x->write && x->gen) {
		const uint8_t *buf = w->bufs + (size_t)r->cid * g_opt.io_size;
		for (uint32_t i = 0; i < g_nlb; i++) {
			uint64_t lba = x->slot * g_nlb + i;
			char why[256];
			w->blocks_checked++;
			if (perf_pattern_check(buf + (size_t)i * g_ctrl.block_size, g_ctrl.block_size, lba, g_opt.seed,
					       x->gen, why, sizeof(why))) {
				w->mismatches++;
				if (atomic_fetch_add(&g_mismatch_printed, 1) < MAX_MISMATCH_PRINT)
					fprintf(stderr, "daosblk-perf: verify mismatch at LBA %" PRIu64 ": %s\n", lba, why);
			}
		}
	}
	if (g_opt.verify)
		g_busy[x->slot] = 0;
	if (w->phase == PH_RUN && now <= w->end_ns) {
		perf_hist_record(&w->hist, now - r->submit_ns);
		perf_hist_record(x->write ? &w->hist_wr : &w->hist_rd, now - r->submit_ns);
		if (x->write) {
			w->writes++;
			w->write_bytes += g_opt.io_size;
		} else {
			w->reads++;
			w->read_bytes += g_opt.io_size;
		}
		atomic_fetch_add_explicit(&w->prog_ios, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&w->prog_bytes, g_opt.io_size, memory_order_relaxed);
	}
}

static bool wl_random(void)
{
	return g_opt.wl == WL_RANDREAD || g_opt.wl == WL_RANDWRITE || g_opt.wl == WL_RANDRW;
}

/* Next slot for the run phase; UINT64_MAX when every candidate is busy. */
static uint64_t pick_slot(struct worker *w)
{
	uint64_t n = w->slot_end - w->slot_begin, s;
	if (wl_random())
		s = w->slot_begin + perf_rand(&w->rng) % n;
	else {
		s = w->cursor++;
		if (w->cursor >= w->slot_end)
			w->cursor = w->slot_begin;
	}
	if (!g_opt.verify)
		return s;
	for (uint64_t i = 0; i < n; i++) {
		if (!g_busy[s])
			return s;
		if (++s >= w->slot_end)
			s = w->slot_begin;
	}
	return UINT64_MAX;
}

static int submit_io(struct worker *w, struct host_req *r, uint64_t slot, bool write)
{
	struct io_ctx *x = &w->ctx[r->cid];
	uint8_t *buf = w->bufs + (size_t)r->cid * g_opt.io_size;
	x->slot = slot;
	x->write = write;
	x->gen = 0;
	if (g_opt.verify) {
		g_busy[slot] = 1;
		if (write) {
			uint32_t gen = g_gen[slot] + 1;
			if (gen == 0)
				gen = 1;
			g_gen[slot] = gen;
			x->gen = gen;
			for (uint32_t i = 0; i < g_nlb; i++)
				perf_pattern_fill(buf + (size_t)i * g_ctrl.block_size, g_ctrl.block_size,
						  slot * g_nlb + i, g_opt.seed, gen);
		} else {
			x->gen = g_gen[slot];
		}
	}
	struct nvme_cmd cmd;
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = write ? NVME_OPC_WRITE : NVME_OPC_READ;
	cmd.nsid = g_opt.nsid;
	uint64_t slba = slot * g_nlb;
	cmd.cdw10 = (uint32_t)slba;
	cmd.cdw11 = (uint32_t)(slba >> 32);
	cmd.cdw12 = g_nlb - 1;
	if (host_submit(&w->qp, r, &cmd, buf, g_opt.io_size, write, io_done, w))
		return -1;
	w->inflight++;
	return 0;
}

static bool want_write(struct worker *w)
{
	switch (g_opt.wl) {
	case WL_WRITE:
	case WL_RANDWRITE: return true;
	case WL_READ:
	case WL_RANDREAD: return false;
	default: return (int)(perf_rand(&w->rng) % 100) >= g_opt.rwmix;
	}
}

/* Poll once; check the oldest command's age every ~100 ms. */
static int poll_once(struct worker *w, uint64_t *last_check)
{
	if (host_process(&w->qp) < 0) {
		worker_fail(w, w->qp.err);
		return -1;
	}
	uint64_t now = host_now_ns();
	if (now - *last_check > 100000000ull) {
		*last_check = now;
		uint64_t age = host_oldest_ns(&w->qp, now);
		if (age > (uint64_t)CMD_TIMEOUT_MS * 1000000ull) {
			char m[128];
			snprintf(m, sizeof(m), "an I/O command did not complete within %d s", CMD_TIMEOUT_MS / 1000);
			worker_fail(w, m);
			return -1;
		}
	}
	return 0;
}

static int drain(struct worker *w)
{
	uint64_t last = host_now_ns();
	while (w->inflight > 0) {
		if (atomic_load_explicit(&g_abort, memory_order_relaxed))
			return -1;
		if (poll_once(w, &last))
			return -1;
	}
	return 0;
}

/* Sequential pass over the worker's slots (prefill writes / readback reads). */
static int sweep(struct worker *w, bool write, uint64_t begin, uint64_t end)
{
	uint64_t next = begin, last = host_now_ns();
	while (next < end) {
		if (atomic_load_explicit(&g_abort, memory_order_relaxed))
			return -1;
		struct host_req *r;
		while (next < end && w->inflight < g_opt.depth && (r = host_req_get(&w->qp))) {
			if (!write && g_gen[next] == 0) {
				next++;
				w->qp.free_stack[w->qp.nfree++] = r->cid;
				continue;
			}
			if (submit_io(w, r, next++, write)) {
				worker_fail(w, w->qp.err);
				return -1;
			}
		}
		if (poll_once(w, &last))
			return -1;
	}
	return drain(w);
}

static int run(struct worker *w)
{
	uint64_t last = host_now_ns();
	for (;;) {
		if (atomic_load_explicit(&g_abort, memory_order_relaxed))
			return -1;
		uint64_t now = host_now_ns();
		if (now >= w->end_ns)
			break;
		if (g_interrupted) {
			w->end_ns = now;
			break;
		}
		struct host_req *r;
		while (w->inflight < g_opt.depth && (r = host_req_get(&w->qp))) {
			uint64_t slot = pick_slot(w);
			if (slot == UINT64_MAX) {
				w->qp.free_stack[w->qp.nfree++] = r->cid;
				break;
			}
			if (submit_io(w, r, slot, want_write(w))) {
				worker_fail(w, w->qp.err);
				return -1;
			}
		}
		if (poll_once(w, &last))
			return -1;
	}
	return drain(w);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(w->core, &set);
	int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (rc) {
		char m[128];
		snprintf(m, sizeof(m), "cannot pin to core %d: %s", w->core, strerror(rc));
		worker_fail(w, m);
		atomic_fetch_add(&g_ready, 1);
		goto out;
	}
	/* Read-only workloads need known contents: write every slot once first. Workloads that write track the
	 * generation of what they wrote and only check those blocks. */
	if (g_opt.prefill || (g_opt.verify && (g_opt.wl == WL_READ || g_opt.wl == WL_RANDREAD))) {
		w->phase = PH_PREFILL;
		if (sweep(w, true, w->part_begin, w->part_end)) {
			atomic_fetch_add(&g_ready, 1);
			goto out;
		}
	}
	atomic_fetch_add(&g_ready, 1);
	while (!atomic_load(&g_go) && !atomic_load(&g_abort))
		usleep(100);
	if (atomic_load(&g_abort))
		goto out;
	w->phase = PH_RUN;
	w->start_ns = host_now_ns();
	w->end_ns = w->start_ns + (uint64_t)g_opt.time_s * 1000000000ull;
	if (run(w))
		goto out;
	if (g_opt.verify) {
		w->phase = PH_READBACK;
		sweep(w, false, w->slot_begin, w->slot_end);
	}
out:
	atomic_fetch_add(&g_done, 1);
	return NULL;
}

/* ----------------------------------------------------------------------- CLI */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: daosblk-perf -r TRID [options]\n"
		"  -r, --transport-id TRID  'trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:4420 [subnqn:NQN]'\n"
		"                           (no subnqn: use the first NVM subsystem of the discovery log)\n"
		"  -q, --io-depth N         commands in flight per core (default 32)\n"
		"  -o, --io-size BYTES      I/O size, multiple of the block size (default 4096; k/m suffixes)\n"
		"  -w, --io-pattern P       read|write|randread|randwrite|rw|randrw (default randread)\n"
		"  -M, --rwmixread PCT      read percentage for rw/randrw (default 50)\n"
		"  -t, --time SEC           run time in seconds (default 10)\n"
		"  -c, --core-mask MASK     hex mask (0x3) or list ([0,2-3]); one thread + I/O queue per core (default 0x1)\n"
		"  -H, --enable-tcp-hdgst   header digest\n"
		"  -D, -I, --enable-tcp-ddgst  data digest\n"
		"  -n, --nsid N             namespace ID (default 1)\n"
		"  -k, --keepalive MS       keep alive timeout (default 30000; sent every KATO/2)\n"
		"      --hostnqn NQN        host NQN (default nqn.2014-08.org.nvmexpress:uuid:<random>); '' sends an\n"
		"                           empty one, as SPDK's initiator does on machines without DMI ids\n"
		"      --json               print the result as one JSON object on stdout\n"
		"      --verify             write verifiable patterns (header {magic, LBA, seed, generation} + fill) and\n"
		"                           check every read of a block written in this run; read/randread prefill\n"
		"                           the range first; at the end every written block is read back and checked\n"
		"      --seed N             verify pattern seed (default: random)\n"
		"      --prefill            write every block once (sequential, -q deep, -o sized) before the measured phase\n"
		"      --disable-sqfc       ask for SQ flow control disabled (target may use C2HData DATA_SUCCESS)\n"
		"      --congestion-control NAME  TCP congestion control (TCP_CONGESTION) of every connection, set before\n"
		"                           connect() so the system default (e.g. bbr and its pacing) never runs on it;\n"
		"                           one of /proc/sys/net/ipv4/tcp_available_congestion_control (default: the\n"
		"                           system's, net.ipv4.tcp_congestion_control)\n"
		"      --sock-rcvbuf BYTES  SO_RCVBUF of every connection, set before connect() (default 2m, as SPDK's\n"
		"                           posix sockets; the kernel doubles it and caps it at net.core.rmem_max);\n"
		"                           0 leaves the kernel's receive buffer autotuning on. Large reads at depth\n"
		"                           want a window of several MiB\n"
		"      --psk FILE|KEY       NVMe/TCP over TLS 1.3 with this PSK (nvme gen-tls-key's interchange format\n"
		"                           NVMeTLSkey-1:01:...: or a file holding it); the PSK identity names the\n"
		"                           host NQN (--hostnqn) and the subsystem, the cipher suite follows the key\n"
		"                           (01: TLS_AES_128_GCM_SHA256, 02: TLS_AES_256_GCM_SHA384)\n"
		"      --psk-identity-version N  0 (default: NVMe0R0x <hostnqn> <subnqn>, as SPDK and Linux send) or 1\n"
		"                           (NVMe1R0x ... with the PSK digest)\n"
		"      --no-progress        no per-second progress lines on stderr\n"
		"      --time-based         accepted for compatibility (runs are always time based)\n"
		"  -h, --help               this help\n");
}

static int parse_int(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 0);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static void parse_args(int argc, char **argv)
{
	enum { O_HOSTNQN = 256, O_JSON, O_VERIFY, O_SEED, O_NOPROG, O_TIMEBASED, O_SQFC, O_PREFILL, O_CC, O_RCVBUF,
	       O_PSK, O_PSKVER };
	static const struct option lopts[] = {
		{"transport-id", required_argument, NULL, 'r'},
		{"io-depth", required_argument, NULL, 'q'},
		{"io-size", required_argument, NULL, 'o'},
		{"io-pattern", required_argument, NULL, 'w'},
		{"rwmixread", required_argument, NULL, 'M'},
		{"time", required_argument, NULL, 't'},
		{"core-mask", required_argument, NULL, 'c'},
		{"enable-tcp-hdgst", no_argument, NULL, 'H'},
		{"enable-tcp-ddgst", no_argument, NULL, 'D'},
		{"nsid", required_argument, NULL, 'n'},
		{"keepalive", required_argument, NULL, 'k'},
		{"hostnqn", required_argument, NULL, O_HOSTNQN},
		{"json", no_argument, NULL, O_JSON},
		{"verify", no_argument, NULL, O_VERIFY},
		{"seed", required_argument, NULL, O_SEED},
		{"no-progress", no_argument, NULL, O_NOPROG},
		{"time-based", no_argument, NULL, O_TIMEBASED},
		{"disable-sqfc", no_argument, NULL, O_SQFC},
		{"prefill", no_argument, NULL, O_PREFILL},
		{"congestion-control", required_argument, NULL, O_CC},
		{"sock-rcvbuf", required_argument, NULL, O_RCVBUF},
		{"psk", required_argument, NULL, O_PSK},
		{"psk-identity-version", required_argument, NULL, O_PSKVER},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	g_opt.depth = 32;
	g_opt.io_size = 4096;
	g_opt.wl = WL_RANDREAD;
	g_opt.rwmix = -1;
	g_opt.time_s = 10;
	g_opt.cores[0] = 0;
	g_opt.ncores = 1;
	g_opt.nsid = 1;
	g_opt.progress = true;
	g_opt.kato_ms = 30000;
	g_opt.rcvbuf = PERF_DEFAULT_RCVBUF;
	bool have_trid = false, have_seed = false;
	int opt;
	long v;
	while ((opt = getopt_long(argc, argv, "r:q:o:w:M:t:c:HDIn:k:h", lopts, NULL)) != -1) {
		switch (opt) {
		case 'r': {
			char err[256];
			if (perf_trid_parse(optarg, &g_opt.trid, err, sizeof(err)))
				die("-r: %s", err);
			snprintf(g_opt.trid_str, sizeof(g_opt.trid_str), "%s", optarg);
			have_trid = true;
			break;
		}
		case 'q':
			if (parse_int(optarg, 1, 65535, &v))
				die("-q: queue depth must be 1..65535");
			g_opt.depth = (int)v;
			break;
		case 'o': {
			int64_t s = perf_parse_size(optarg);
			if (s <= 0 || s > (1 << 30))
				die("-o: bad I/O size '%s'", optarg);
			g_opt.io_size = (uint32_t)s;
			break;
		}
		case 'w': {
			int i;
			for (i = 0; i < 6; i++)
				if (!strcmp(optarg, wl_names[i]))
					break;
			if (i == 6)
				die("-w: unknown pattern '%s' (read|write|randread|randwrite|rw|randrw)", optarg);
			g_opt.wl = (enum workload)i;
			break;
		}
		case 'M':
			if (parse_int(optarg, 0, 100, &v))
				die("-M: read percentage must be 0..100");
			g_opt.rwmix = (int)v;
			break;
		case 't':
			if (parse_int(optarg, 1, 86400 * 7, &v))
				die("-t: time must be 1..604800 seconds");
			g_opt.time_s = (int)v;
			break;
		case 'c':
			g_opt.ncores = perf_parse_cores(optarg, g_opt.cores, MAX_CORES);
			if (g_opt.ncores <= 0)
				die("-c: bad core mask '%s' (hex mask like 0x3 or list like [0,2-3])", optarg);
			break;
		case 'H': g_opt.hdgst = true; break;
		case 'D':
		case 'I': g_opt.ddgst = true; break;
		case 'n':
			if (parse_int(optarg, 1, 0xfffffffe, &v))
				die("-n: bad namespace ID");
			g_opt.nsid = (uint32_t)v;
			break;
		case 'k':
			if (parse_int(optarg, 0, 3600000, &v))
				die("-k: keep alive must be 0..3600000 ms");
			g_opt.kato_ms = (uint32_t)v;
			break;
		case O_HOSTNQN:
			if (strlen(optarg) > NVME_NQN_MAX_LEN)
				die("--hostnqn: at most 223 bytes");
			snprintf(g_opt.hostnqn, sizeof(g_opt.hostnqn), "%s", optarg);
			g_opt.hostnqn_set = true;
			break;
		case O_JSON: g_opt.json = true; break;
		case O_VERIFY: g_opt.verify = true; break;
		case O_SEED: {
			char *end;
			errno = 0;
			g_opt.seed = strtoull(optarg, &end, 0);
			if (errno || *end || end == optarg)
				die("--seed: bad number");
			have_seed = true;
			break;
		}
		case O_NOPROG: g_opt.progress = false; break;
		case O_TIMEBASED: break;
		case O_SQFC: g_opt.sqfc_disable = true; break;
		case O_PREFILL: g_opt.prefill = true; break;
		case O_CC: {
			char err[512];
			if (host_congestion_check(optarg, err, sizeof(err)))
				die("--congestion-control: %s", err);
			snprintf(g_opt.congestion, sizeof(g_opt.congestion), "%s", optarg);
			break;
		}
		case O_RCVBUF: {
			int64_t sz = perf_parse_size(optarg);
			if (sz < 0 || sz > (1 << 30))
				die("--sock-rcvbuf: bad size '%s' (bytes, k/m suffixes, 0..1g)", optarg);
			g_opt.rcvbuf = (int)sz;
			break;
		}
		case O_PSK: {
#ifdef DBK_PERF_TLS
			char err[256];
			if (host_tls_load_psk(optarg, &g_opt.tls_opts.psk, err, sizeof(err)))
				die("%s", err);
			g_opt.tls = true;
#else
			die("--psk: TLS is not built into this daosblk-perf (static build)");
#endif
			break;
		}
		case O_PSKVER:
			if (parse_int(optarg, 0, 1, &v))
				die("--psk-identity-version: 0 or 1");
#ifdef DBK_PERF_TLS
			g_opt.tls_opts.identity_version = (int)v;
#endif
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(1);
		}
	}
	if (optind < argc)
		die("unexpected argument '%s'", argv[optind]);
	if (!have_trid) {
		usage(stderr);
		die("-r TRID is required");
	}
	if (g_opt.rwmix >= 0 && g_opt.wl != WL_RW && g_opt.wl != WL_RANDRW)
		die("-M only applies to -w rw or randrw");
	if (g_opt.rwmix < 0)
		g_opt.rwmix = (g_opt.wl == WL_READ || g_opt.wl == WL_RANDREAD) ? 100 : (g_opt.wl == WL_RW || g_opt.wl == WL_RANDRW) ? 50 : 0;
	if (!g_opt.hostnqn_set && g_opt.trid.hostnqn[0])
		snprintf(g_opt.hostnqn, sizeof(g_opt.hostnqn), "%s", g_opt.trid.hostnqn);
	if (!have_seed) {
		uint64_t s = 0;
		if (getrandom(&s, sizeof(s), 0) != sizeof(s))
			s = host_now_ns() ^ (uint64_t)getpid();
		g_opt.seed = s & 0xffffffffffffull;
	}
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	for (int i = 0; i < g_opt.ncores; i++)
		if (g_opt.cores[i] >= ncpu)
			die("-c: core %d does not exist (%ld CPUs)", g_opt.cores[i], ncpu);
}

/* ---------------------------------------------------------------------- main */

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static struct perf_hist g_tot_rd, g_tot_wr;

static void json_lat(const char *name, const struct perf_hist *h)
{
	printf("\"%s\":{\"avg\":%.2f,\"min\":%.2f,\"max\":%.2f,\"p50\":%.2f,\"p99\":%.2f,\"p99_9\":%.2f},", name,
	       h->count ? (double)h->sum / (double)h->count / 1000.0 : 0, h->count ? us(h->min) : 0, us(h->max),
	       us(perf_hist_percentile(h, 50)), us(perf_hist_percentile(h, 99)), us(perf_hist_percentile(h, 99.9)));
}

static void report(struct perf_hist *tot, uint64_t reads, uint64_t writes, uint64_t rbytes, uint64_t wbytes,
		   uint64_t errors, uint64_t mismatches, uint64_t checked, bool failed)
{
	double t = g_elapsed_s > 0 ? g_elapsed_s : g_opt.time_s;
	uint64_t ios = reads + writes;
	double iops = (double)ios / t, mibs = (double)(rbytes + wbytes) / t / (1024.0 * 1024.0);
	double avg = tot->count ? (double)tot->sum / (double)tot->count / 1000.0 : 0;
	double mn = tot->count ? us(tot->min) : 0, mx = us(tot->max);
	double p50 = us(perf_hist_percentile(tot, 50)), p99 = us(perf_hist_percentile(tot, 99)),
	       p999 = us(perf_hist_percentile(tot, 99.9));
	if (g_opt.json) {
		printf("{\"trid\":\"trtype:TCP adrfam:IPv%d traddr:%s trsvcid:%s subnqn:%s\",", g_opt.trid.adrfam,
		       g_ctrl.traddr, g_ctrl.trsvcid, g_ctrl.subnqn);
		printf("\"nsid\":%u,\"block_size\":%u,\"ns_blocks\":%" PRIu64 ",", g_opt.nsid, g_ctrl.block_size,
		       g_ctrl.nsze);
		/* What the kernel reports for the admin queue's socket (the I/O queues are set up alike). */
		printf("\"congestion_control\":\"%s\",\"sock_rcvbuf\":%d,", g_ctrl.aq.congestion, g_ctrl.aq.rcvbuf);
#ifdef DBK_PERF_TLS
		if (g_ctrl.aq.tls)
			printf("\"tls\":{\"cipher_suite\":\"%s\",\"psk_identity\":\"%s\"},", host_tls_cipher(g_ctrl.aq.tls),
			       host_tls_identity(g_ctrl.aq.tls));
#endif
		printf("\"workload\":\"%s\",\"rwmixread\":%d,\"io_size\":%u,\"queue_depth\":%d,\"cores\":%d,"
		       "\"runtime_s\":%d,\"elapsed_s\":%.3f,\"interrupted\":%s,\"keep_alives\":%" PRIu64 ",\"data_success_completions\":%" PRIu64 ",\"hdgst\":%s,\"ddgst\":%s,",
		       wl_names[g_opt.wl], g_opt.rwmix, g_opt.io_size, g_opt.depth, g_opt.ncores, g_opt.time_s, t,
		       g_interrupted ? "true" : "false", g_keep_alives, g_data_success, g_opt.hdgst ? "true" : "false", g_opt.ddgst ? "true" : "false");
		printf("\"ios\":%" PRIu64 ",\"reads\":%" PRIu64 ",\"writes\":%" PRIu64 ",\"iops\":%.1f,"
		       "\"read_iops\":%.1f,\"write_iops\":%.1f,\"mibps\":%.2f,",
		       ios, reads, writes, iops, (double)reads / t, (double)writes / t, mibs);
		printf("\"latency_us\":{\"avg\":%.2f,\"min\":%.2f,\"max\":%.2f,\"p50\":%.2f,\"p99\":%.2f,\"p99_9\":%.2f},",
		       avg, mn, mx, p50, p99, p999);
		/* Whole run (prefill and verify read-back included), I/O queues only. */
		printf("\"c2h_staged_bytes\":%" PRIu64 ",\"c2h_direct_bytes\":%" PRIu64 ",", g_c2h_staged, g_c2h_direct);
		json_lat("read_latency_us", &g_tot_rd);
		json_lat("write_latency_us", &g_tot_wr);
		printf("\"errors\":%" PRIu64 ",\"verify\":{\"enabled\":%s,\"seed\":%" PRIu64
		       ",\"blocks_checked\":%" PRIu64 ",\"mismatches\":%" PRIu64 "},\"failed\":%s}\n",
		       errors, g_opt.verify ? "true" : "false", g_opt.seed, checked, mismatches,
		       failed ? "true" : "false");
		fflush(stdout);
		return;
	}
	printf("========================================================================================\n");
	printf("%-40s %12s %10s %10s %10s %10s\n", "", "", "", "Latency(us)", "", "");
	printf("%-40s %12s %10s %10s %10s %10s\n", "Device Information", "IOPS", "MiB/s", "Average", "min", "max");
	for (int i = 0; i < g_opt.ncores; i++) {
		struct worker *w = &g_workers[i];
		char name[64];
		snprintf(name, sizeof(name), "TCP NSID %u from core %d", g_opt.nsid, w->core);
		double wavg = w->hist.count ? (double)w->hist.sum / (double)w->hist.count / 1000.0 : 0;
		printf("%-40s %12.2f %10.2f %10.2f %10.2f %10.2f\n", name, (double)(w->reads + w->writes) / t,
		       (double)(w->read_bytes + w->write_bytes) / t / 1048576.0, wavg,
		       w->hist.count ? us(w->hist.min) : 0, us(w->hist.max));
	}
	printf("========================================================================================\n");
	printf("%-40s %12.2f %10.2f %10.2f %10.2f %10.2f\n", "Total", iops, mibs, avg, mn, mx);
	printf("\nLatency percentiles (us): p50 %.2f  p99 %.2f  p99.9 %.2f\n", p50, p99, p999);
	if (g_opt.wl == WL_RW || g_opt.wl == WL_RANDRW) {
		printf("Reads  %.2f IOPS, latency p50 %.2f  p99 %.2f  p99.9 %.2f us\n", (double)reads / t,
		       us(perf_hist_percentile(&g_tot_rd, 50)), us(perf_hist_percentile(&g_tot_rd, 99)),
		       us(perf_hist_percentile(&g_tot_rd, 99.9)));
		printf("Writes %.2f IOPS, latency p50 %.2f  p99 %.2f  p99.9 %.2f us\n", (double)writes / t,
		       us(perf_hist_percentile(&g_tot_wr, 50)), us(perf_hist_percentile(&g_tot_wr, 99)),
		       us(perf_hist_percentile(&g_tot_wr, 99.9)));
	}
	printf("Errors: %" PRIu64 "\n", errors);
	if (g_opt.verify)
		printf("Verify: %" PRIu64 " blocks checked, %" PRIu64 " mismatches (seed 0x%" PRIx64 ")\n", checked,
		       mismatches, g_opt.seed);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	parse_args(argc, argv);
	struct ctrl *c = &g_ctrl;
	snprintf(c->traddr, sizeof(c->traddr), "%s", g_opt.trid.traddr);
	snprintf(c->trsvcid, sizeof(c->trsvcid), "%s", g_opt.trid.trsvcid);
	c->adrfam = g_opt.trid.adrfam;
	if (getrandom(c->hostid, sizeof(c->hostid), 0) != sizeof(c->hostid))
		die("getrandom: %s", strerror(errno));
	c->hostid[6] = (uint8_t)((c->hostid[6] & 0x0f) | 0x40);
	c->hostid[8] = (uint8_t)((c->hostid[8] & 0x3f) | 0x80);
	if (!g_opt.hostnqn_set && !g_opt.hostnqn[0]) {
		const uint8_t *u = c->hostid;
		snprintf(g_opt.hostnqn, sizeof(g_opt.hostnqn),
			 "nqn.2014-08.org.nvmexpress:uuid:%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
			 u[15]);
	}

	if (!g_opt.trid.subnqn[0] && discover(c))
		return 1;
	if (ctrl_setup(c)) {
		ctrl_shutdown(c);
		return 1;
	}
	if (g_opt.io_size % c->block_size)
		die("-o %u is not a multiple of the block size %u", g_opt.io_size, c->block_size);
	if (c->max_xfer && g_opt.io_size > c->max_xfer)
		die("-o %u exceeds the controller's maximum transfer size (MDTS) of %u bytes", g_opt.io_size,
		    c->max_xfer);
	g_nlb = g_opt.io_size / c->block_size;
	if (g_nlb > 65536)
		die("-o %u: more than 65536 blocks per command", g_opt.io_size);
	g_nslots = c->nsze / g_nlb;
	if (g_nslots == 0)
		die("namespace (%" PRIu64 " blocks of %u) is smaller than one I/O", c->nsze, c->block_size);
	int depth = g_opt.depth;
	if ((uint32_t)depth > c->mqes) {
		fprintf(stderr, "daosblk-perf: warning: -q %d exceeds CAP.MQES+1 = %u, using %u\n", depth, c->mqes,
			c->mqes);
		g_opt.depth = depth = (int)c->mqes;
	}
	if (c->maxcmd && (uint32_t)depth > c->maxcmd) {
		fprintf(stderr, "daosblk-perf: warning: -q %d exceeds Identify MAXCMD %u, using %u\n", depth, c->maxcmd,
			c->maxcmd);
		g_opt.depth = depth = c->maxcmd;
	}
	if (g_opt.verify) {
		if (g_nslots / (uint64_t)g_opt.ncores < (uint64_t)depth)
			die("--verify needs at least queue-depth I/Os worth of blocks per core (%" PRIu64 " slots, %d cores, -q %d)",
			    g_nslots, g_opt.ncores, depth);
		if (g_nslots > (1ull << 28))
			die("--verify tracks 5 bytes per I/O-sized slot; %" PRIu64 " slots is too many (use a larger -o)",
			    g_nslots);
		g_gen = calloc(g_nslots, sizeof(*g_gen));
		g_busy = calloc(g_nslots, 1);
		if (!g_gen || !g_busy)
			die("out of memory for the verify map");
	}
	if (set_num_queues(c, g_opt.ncores)) {
		ctrl_shutdown(c);
		return 1;
	}
	char mix[32] = "";
	if (g_opt.wl == WL_RW || g_opt.wl == WL_RANDRW)
		snprintf(mix, sizeof(mix), " (%d%% reads)", g_opt.rwmix);
	if (!g_opt.json)
		printf("Attached to %s at %s%s%s:%s (cntlid %u, %s %s %s), NSID %u: %" PRIu64 " blocks of %u bytes\n"
		       "Workload %s%s, I/O size %u, queue depth %d, %d core(s), %d s%s%s%s\n",
		       c->subnqn, c->adrfam == 6 ? "[" : "", c->traddr, c->adrfam == 6 ? "]" : "", c->trsvcid, c->cntlid, c->mn, c->sn, c->fr, g_opt.nsid, c->nsze,
		       c->block_size, wl_names[g_opt.wl], mix, g_opt.io_size, depth,
		       g_opt.ncores, g_opt.time_s, g_opt.hdgst ? ", header digest" : "",
		       g_opt.ddgst ? ", data digest" : "", g_opt.verify ? ", verify" : "");

	g_workers = calloc((size_t)g_opt.ncores, sizeof(*g_workers));
	if (!g_workers)
		die("out of memory");
	uint64_t per = g_nslots / (uint64_t)g_opt.ncores;
	int rc = 0;
	for (int i = 0; i < g_opt.ncores; i++) {
		struct worker *w = &g_workers[i];
		w->idx = i;
		w->core = g_opt.cores[i];
		perf_hist_init(&w->hist);
		perf_hist_init(&w->hist_rd);
		perf_hist_init(&w->hist_wr);
		w->part_begin = per * (uint64_t)i;
		w->part_end = i == g_opt.ncores - 1 ? g_nslots : per * (uint64_t)(i + 1);
		w->rng = perf_splitmix64(g_opt.seed ^ ((uint64_t)i << 40) ^ host_now_ns());
		if (wl_random() && !g_opt.verify) {
			w->slot_begin = 0;
			w->slot_end = g_nslots;
		} else {
			w->slot_begin = per * (uint64_t)i;
			w->slot_end = i == g_opt.ncores - 1 ? g_nslots : per * (uint64_t)(i + 1);
		}
		w->cursor = w->slot_begin;
		/* aligned_alloc wants the size to be a multiple of the alignment (512 B x QD1 is not). */
		w->bufs = aligned_alloc(4096, ((size_t)depth * g_opt.io_size + 4095) & ~(size_t)4095);
		w->ctx = calloc((size_t)depth, sizeof(*w->ctx));
		if (!w->bufs || !w->ctx)
			die("out of memory for I/O buffers");
		for (int k = 0; k < depth; k++)
			for (uint32_t b = 0; b < g_nlb; b++)
				perf_pattern_fill(w->bufs + (size_t)k * g_opt.io_size + (size_t)b * c->block_size,
						  c->block_size, b, g_opt.seed, 0);
		w->qp.qid = (uint16_t)(i + 1);
		struct host_sock_opts so = sock_opts(c->subnqn);
		if (host_qp_connect(&w->qp, c->traddr, c->trsvcid, c->adrfam, g_opt.hdgst, g_opt.ddgst,
				    (uint16_t)depth, g_opt.io_size, &so)) {
			fprintf(stderr, "daosblk-perf: error: I/O queue %d: %s\n", i + 1, w->qp.err);
			rc = 1;
			break;
		}
		w->qp.icd_size = c->icd_size;
		uint16_t cntlid;
		/* SQSIZE is 0-based and must be >= 1; fabrics hosts keep SQSIZE+1 commands in flight (as Linux does). */
		uint16_t sqsize = (uint16_t)(depth > 1 ? depth - 1 : 1);
		if (fabric_connect(&w->qp, (uint16_t)(i + 1), sqsize, 0, c->cntlid, c->subnqn,
				   g_opt.hostnqn, c->hostid, g_opt.sqfc_disable ? 0x4 : 0, &cntlid)) {
			rc = 1;
			break;
		}
		if (cntlid != c->cntlid)
			fprintf(stderr, "daosblk-perf: warning: I/O queue %d Connect returned cntlid %u, admin %u\n", i + 1,
				cntlid, c->cntlid);
	}
	if (rc) {
		for (int i = 0; i < g_opt.ncores; i++)
			host_qp_close(&g_workers[i].qp);
		ctrl_shutdown(c);
		return 1;
	}

	int started = 0;
	for (int i = 0; i < g_opt.ncores; i++) {
		if (pthread_create(&g_workers[i].tid, NULL, worker_main, &g_workers[i])) {
			worker_fail(&g_workers[i], "pthread_create failed");
			break;
		}
		started++;
	}

	/* Main thread: keep-alive, go signal, progress. */
	uint64_t ka_interval = (uint64_t)g_opt.kato_ms / 2 * 1000000ull;
	uint64_t last_ka = host_now_ns();
	bool admin_ok = true, went = false;
	uint64_t go_ns = 0, next_tick = 0, prev_ios = 0, prev_bytes = 0;
	int sec = 0;
	while (atomic_load(&g_done) < started) {
		uint64_t now = host_now_ns();
		if (!went && g_interrupted)
			atomic_store(&g_abort, 1);
		if (!went && atomic_load(&g_ready) >= started) {
			went = true;
			go_ns = host_now_ns();
			next_tick = go_ns + 1000000000ull;
			atomic_store(&g_go, 1);
		}
		if (admin_ok && g_opt.kato_ms && now - last_ka >= ka_interval) {
			last_ka = now;
			g_keep_alives++;
			if (keep_alive(c)) {
				admin_ok = false;
				atomic_store(&g_abort, 1);
			}
		}
		if (went && g_opt.progress && sec < g_opt.time_s && now >= next_tick) {
			uint64_t ios = 0, bytes = 0;
			for (int i = 0; i < started; i++) {
				ios += atomic_load_explicit(&g_workers[i].prog_ios, memory_order_relaxed);
				bytes += atomic_load_explicit(&g_workers[i].prog_bytes, memory_order_relaxed);
			}
			sec++;
			fprintf(stderr, "[%2ds] %" PRIu64 " IOPS %.1f MiB/s\n", sec, ios - prev_ios,
				(double)(bytes - prev_bytes) / 1048576.0);
			prev_ios = ios;
			prev_bytes = bytes;
			next_tick += 1000000000ull;
		}
		sleep_ms(10);
	}
	for (int i = 0; i < started; i++)
		pthread_join(g_workers[i].tid, NULL);
	if (g_interrupted && !went) {
		fprintf(stderr, "daosblk-perf: interrupted before the measured phase\n");
		for (int i = 0; i < g_opt.ncores; i++)
			host_qp_close(&g_workers[i].qp);
		ctrl_shutdown(c);
		return 1;
	}
	if (g_interrupted) {
		uint64_t longest = 0;
		for (int i = 0; i < started; i++)
			if (g_workers[i].end_ns > g_workers[i].start_ns && g_workers[i].end_ns - g_workers[i].start_ns > longest)
				longest = g_workers[i].end_ns - g_workers[i].start_ns;
		g_elapsed_s = longest ? (double)longest / 1e9 : 0;
		fprintf(stderr, "daosblk-perf: interrupted after %.1f s\n", g_elapsed_s);
	}
	if (went && g_opt.progress && sec < g_opt.time_s && !atomic_load(&g_abort) && !g_interrupted) {
		uint64_t ios = 0, bytes = 0;
		for (int i = 0; i < started; i++) {
			ios += atomic_load(&g_workers[i].prog_ios);
			bytes += atomic_load(&g_workers[i].prog_bytes);
		}
		fprintf(stderr, "[%2ds] %" PRIu64 " IOPS %.1f MiB/s\n", sec + 1, ios - prev_ios,
			(double)(bytes - prev_bytes) / 1048576.0);
	}

	struct perf_hist *tot = malloc(sizeof(*tot));
	if (!tot)
		die("out of memory");
	perf_hist_init(tot);
	perf_hist_init(&g_tot_rd);
	perf_hist_init(&g_tot_wr);
	uint64_t reads = 0, writes = 0, rb = 0, wb = 0, errors = 0, mism = 0, checked = 0;
	bool failed = false;
	for (int i = 0; i < g_opt.ncores; i++) {
		struct worker *w = &g_workers[i];
		perf_hist_merge(tot, &w->hist);
		perf_hist_merge(&g_tot_rd, &w->hist_rd);
		perf_hist_merge(&g_tot_wr, &w->hist_wr);
		reads += w->reads;
		writes += w->writes;
		rb += w->read_bytes;
		wb += w->write_bytes;
		errors += w->errors;
		mism += w->mismatches;
		checked += w->blocks_checked;
		if (w->failed) {
			failed = true;
			fprintf(stderr, "daosblk-perf: error: %s\n", w->err);
		}
		if (w->first_err_status) {
			char sb[128];
			fprintf(stderr, "daosblk-perf: core %d: %" PRIu64 " I/O errors, first: %s\n", w->core, w->errors,
				host_status_str(w->first_err_status, sb, sizeof(sb)));
		}
		g_data_success += w->qp.data_success;
		g_c2h_staged += w->qp.c2h_staged;
		g_c2h_direct += w->qp.c2h_direct;
		host_qp_close(&w->qp);
		free(w->bufs);
		free(w->ctx);
	}
	if (!admin_ok)
		failed = true;
	report(tot, reads, writes, rb, wb, errors, mism, checked, failed);
	free(tot);
	ctrl_shutdown(c);
	free(g_workers);
	free(g_gen);
	free(g_busy);
	if (failed || errors || mism) {
		if (mism)
			fprintf(stderr, "daosblk-perf: verify FAILED: %" PRIu64 " mismatching blocks\n", mism);
		return 1;
	}
	return 0;
}
