/*
 * Unit tests for the NVMe-oF target core (nvmf/): real reactors (2 threads),
 * real malloc bdevs, the real core, driven through a small in-test transport
 * ("TEST") that feeds real NVMe command capsules to dbk_nvmf_request_exec()
 * and records completions. The cmocka test body runs on the process's main
 * thread (not a reactor) and talks to the reactors with messages, waiting on
 * semaphores, so assertions never run inside a reactor loop.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bdev/bdev.h"
#include "bdev/bdev_module.h"
#include "bdev/malloc/bdev_malloc.h"
#include "bdev/uring/bdev_uring.h"
#include "nvmf/nvmf_internal.h"
#include "rpc/rpc.h"
#include "thread/thread.h"

#define HOSTNQN "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555"
#define HOSTNQN2 "nqn.2014-08.org.nvmexpress:uuid:99999999-2222-3333-4444-555555555555"
#define WAIT_S 10

/* ================================================================ test transport */

struct test_transport {
	struct dbk_nvmf_transport base;
};

struct tq;

struct treq {
	struct dbk_nvmf_request req;
	struct nvme_cmd cmd;
	struct nvme_cpl rsp;
	atomic_int ncompl;
	struct tq *tq;
};

#define TQ_REQS 16

struct tq {
	struct dbk_nvmf_qpair q;
	struct dbk_nvmf_listen_addr local;	/* reported by the transport when has_local */
	bool has_local;
	struct treq reqs[TQ_REQS];
	atomic_bool added;
	atomic_int nfini;
	atomic_int completions_after_fini;
};

static atomic_int g_listens, g_stop_listens;

static void t_opts_init(struct dbk_nvmf_transport_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_queue_depth = 128;
	o->max_qpairs_per_ctrlr = 4;
	o->in_capsule_data_size = 4096;
	o->max_io_size = 131072;
	o->io_unit_size = 131072;
	o->max_aq_depth = 32;
	o->num_shared_buffers = 511;
	o->buf_cache_size = 32;
	o->c2h_success = true;
	o->abort_timeout_sec = 1;
}

static struct dbk_nvmf_transport *t_create(const struct dbk_nvmf_transport_opts *opts, int *rc, char *err,
					   size_t errlen)
{
	struct test_transport *t;

	if (opts->max_queue_depth == 3) {
		*rc = -EINVAL;
		snprintf(err, errlen, "max_queue_depth 3 rejected by the test transport");
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	t->base.opts = *opts;
	return &t->base;
}

static void t_destroy(struct dbk_nvmf_transport *t)
{
	free(t);
}

static int t_listen(struct dbk_nvmf_transport *t, const struct dbk_nvmf_listen_addr *a)
{
	(void)t;
	if (strcmp(a->trsvcid, "1") == 0)
		return -EADDRINUSE;
	atomic_fetch_add(&g_listens, 1);
	return 0;
}

static void t_stop_listen(struct dbk_nvmf_transport *t, const struct dbk_nvmf_listen_addr *a)
{
	(void)t;
	(void)a;
	atomic_fetch_add(&g_stop_listens, 1);
}

static struct dbk_nvmf_transport_poll_group *t_pg_create(struct dbk_nvmf_transport *t)
{
	(void)t;
	return calloc(1, 16);
}

static void t_pg_destroy(struct dbk_nvmf_transport_poll_group *g)
{
	free(g);
}

static int t_pg_add(struct dbk_nvmf_transport_poll_group *g, struct dbk_nvmf_qpair *q)
{
	struct tq *tq = (struct tq *)q;

	(void)g;
	atomic_store(&tq->added, true);
	return 0;
}

static void t_req_complete(struct dbk_nvmf_request *req)
{
	struct treq *r = (struct treq *)req;

	if (atomic_load(&r->tq->nfini))
		atomic_fetch_add(&r->tq->completions_after_fini, 1);
	atomic_fetch_add(&r->ncompl, 1);
}

static void t_qpair_fini(struct dbk_nvmf_qpair *q)
{
	atomic_fetch_add(&((struct tq *)q)->nfini, 1);
}

static int t_local_addr(struct dbk_nvmf_qpair *q, struct dbk_nvmf_listen_addr *a)
{
	struct tq *tq = (struct tq *)q;

	if (!tq->has_local)
		return -ENOTCONN;
	*a = tq->local;
	return 0;
}

static int t_addr(struct dbk_nvmf_qpair *q, struct dbk_nvmf_listen_addr *a)
{
	(void)q;
	snprintf(a->trtype, sizeof(a->trtype), "TEST");
	snprintf(a->adrfam, sizeof(a->adrfam), "IPv4");
	snprintf(a->traddr, sizeof(a->traddr), "127.0.0.1");
	snprintf(a->trsvcid, sizeof(a->trsvcid), "4420");
	return 0;
}

static const struct dbk_nvmf_transport_ops g_test_ops = {
	.name = "TEST",
	.opts_init = t_opts_init,
	.create = t_create,
	.destroy = t_destroy,
	.listen = t_listen,
	.stop_listen = t_stop_listen,
	.poll_group_create = t_pg_create,
	.poll_group_destroy = t_pg_destroy,
	.poll_group_add = t_pg_add,
	.req_complete = t_req_complete,
	.qpair_fini = t_qpair_fini,
	.qpair_get_peer_addr = t_addr,
	.qpair_get_local_addr = t_local_addr,
};

/* ============================================================ reactor driver */

struct call {
	void (*fn)(struct call *c);
	sem_t sem;
	int rc;
	char err[512];
	const void *in[4];
	uint64_t u[4];
	json_t *result;
};

static pthread_t g_reactor_thread;
static sem_t g_ready;

static void wait_sem(sem_t *s)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_S;
	if (sem_timedwait(s, &ts) != 0) {
		fprintf(stderr, "timed out waiting for the reactors\n");
		abort();
	}
}

static void call_msg(void *arg)
{
	struct call *c = arg;

	c->fn(c);
}

static void call_done(struct call *c)
{
	sem_post(&c->sem);
}

/* Run c->fn on reactor idx; fn (or a later callback) calls call_done(c). */
static void run_on(int idx, struct call *c)
{
	sem_init(&c->sem, 0, 0);
	assert_int_equal(dbk_thread_send_msg(dbk_reactor_thread(idx), call_msg, c), 0);
	wait_sem(&c->sem);
	sem_destroy(&c->sem);
}

static void run_main(void (*fn)(struct call *c), struct call *c)
{
	c->fn = fn;
	run_on(0, c);
}

static void reactor_started(void *ctx)
{
	(void)ctx;
	sem_post(&g_ready);
}

static void *reactor_thread(void *arg)
{
	(void)arg;
	dbk_reactors_start(reactor_started, NULL);
	return NULL;
}

static bool wait_until(atomic_int *v, int want)
{
	for (int i = 0; i < WAIT_S * 1000; i++) {
		if (atomic_load(v) >= want)
			return true;
		usleep(1000);
	}
	return false;
}

/* ================================================================= setup */

static void done_cb(void *ctx, int rc, const char *err)
{
	struct call *c = ctx;

	c->rc = rc;
	snprintf(c->err, sizeof(c->err), "%s", err ? err : "");
	call_done(c);
}

static void init_fn(struct call *c)
{
	struct dbk_nvmf_transport_opts o;

	c->rc = dbk_bdev_subsystem_init();
	if (!c->rc)
		c->rc = dbk_nvmf_transport_register(&g_test_ops);
	if (!c->rc)
		c->rc = dbk_nvmf_tgt_init();
	dbk_rpc_set_state(DBK_RPC_RUNTIME);
	if (c->rc) {
		call_done(c);
		return;
	}
	t_opts_init(&o);
	dbk_nvmf_tgt_create_transport("TEST", &o, done_cb, c);
}

static int group_setup(void **state)
{
	struct dbk_reactor_opts o;
	struct call c = {0};

	(void)state;
	memset(&o, 0, sizeof(o));
	o.cores[0] = 0;
	o.cores[1] = 1;
	o.num_cores = 2;
	o.pin = false;
	if (dbk_reactors_init(&o) != 0)
		return -1;
	sem_init(&g_ready, 0, 0);
	pthread_create(&g_reactor_thread, NULL, reactor_thread, NULL);
	wait_sem(&g_ready);
	run_main(init_fn, &c);
	return c.rc;
}

static void bdev_fini_done(void *ctx)
{
	struct call *c = ctx;

	call_done(c);
}

static void tgt_fini_done(void *ctx)
{
	dbk_bdev_subsystem_fini(bdev_fini_done, ctx);
}

static void fini_fn(struct call *c)
{
	dbk_nvmf_tgt_fini(tgt_fini_done, c);
}

static void stop_fn(struct call *c)
{
	call_done(c);
	dbk_reactors_stop();
}

/* -------------------------------------------------------- registry helpers */

static void create_subsys_fn(struct call *c)
{
	struct dbk_nvmf_subsystem_opts o = {0};

	o.allow_any_host = c->u[0];
	o.serial_number = "SN0001";
	o.model_number = "Test Model";
	c->rc = dbk_nvmf_subsystem_create(c->in[0], &o, NULL, c->err, sizeof(c->err));
	call_done(c);
}

static int create_subsys(const char *nqn, bool any)
{
	struct call c = {0};

	c.in[0] = nqn;
	c.u[0] = any;
	run_main(create_subsys_fn, &c);
	return c.rc;
}

static void delete_subsys_fn(struct call *c)
{
	dbk_nvmf_subsystem_delete(c->in[0], done_cb, c);
}

static int delete_subsys(const char *nqn)
{
	struct call c = {0};

	c.in[0] = nqn;
	run_main(delete_subsys_fn, &c);
	return c.rc;
}

static void malloc_fn(struct call *c)
{
	c->rc = dbk_bdev_malloc_create(c->in[0], NULL, c->u[0], (uint32_t)c->u[1], NULL);
	call_done(c);
}

static void malloc_create(const char *name, uint64_t blocks, uint32_t bs)
{
	struct call c = {0};

	c.in[0] = name;
	c.u[0] = blocks;
	c.u[1] = bs;
	run_main(malloc_fn, &c);
	assert_int_equal(c.rc, 0);
}

static void malloc_del_cb(void *arg, int rc)
{
	struct call *c = arg;

	c->rc = rc;
	call_done(c);
}

static void malloc_del_fn(struct call *c)
{
	dbk_bdev_malloc_delete(c->in[0], malloc_del_cb, c);
}

static void malloc_delete(const char *name)
{
	struct call c = {0};

	c.in[0] = name;
	run_main(malloc_del_fn, &c);
	assert_int_equal(c.rc, 0);
}

static void add_ns_fn(struct call *c)
{
	struct dbk_nvmf_subsystem *s = dbk_nvmf_subsystem_find(c->in[0]);
	struct dbk_nvmf_ns_opts o = {0};

	o.nsid = (uint32_t)c->u[0];
	if (c->in[2]) {
		o.has_eui64 = true;
		memcpy(o.eui64, c->in[2], 8);
	}
	if (!s) {
		c->rc = -ENOENT;
		call_done(c);
		return;
	}
	dbk_nvmf_subsystem_add_ns(s, c->in[1], &o, done_cb, c);
}

static int add_ns(const char *nqn, const char *bdev, uint32_t nsid)
{
	struct call c = {0};

	c.in[0] = nqn;
	c.in[1] = bdev;
	c.u[0] = nsid;
	run_main(add_ns_fn, &c);
	return c.rc;
}

static void remove_ns_fn(struct call *c)
{
	dbk_nvmf_subsystem_remove_ns(dbk_nvmf_subsystem_find(c->in[0]), (uint32_t)c->u[0], done_cb, c);
}

static int remove_ns(const char *nqn, uint32_t nsid)
{
	struct call c = {0};

	c.in[0] = nqn;
	c.u[0] = nsid;
	run_main(remove_ns_fn, &c);
	return c.rc;
}

static void add_listener_fn(struct call *c)
{
	struct dbk_nvmf_listen_addr a;

	memset(&a, 0, sizeof(a));
	snprintf(a.trtype, sizeof(a.trtype), "TEST");
	snprintf(a.adrfam, sizeof(a.adrfam), "%s", strchr(c->in[1], ':') ? "IPv6" : "IPv4");
	snprintf(a.traddr, sizeof(a.traddr), "%s", (const char *)c->in[1]);
	snprintf(a.trsvcid, sizeof(a.trsvcid), "%s", (const char *)c->in[2]);
	c->rc = c->u[0] ? dbk_nvmf_subsystem_add_listener(dbk_nvmf_subsystem_find(c->in[0]), &a, c->err,
							   sizeof(c->err))
			: dbk_nvmf_subsystem_remove_listener(dbk_nvmf_subsystem_find(c->in[0]), &a, c->err,
							      sizeof(c->err));
	call_done(c);
}

static int listener(const char *nqn, const char *addr, const char *port, bool add)
{
	struct call c = {0};

	c.in[0] = nqn;
	c.in[1] = addr;
	c.in[2] = port;
	c.u[0] = add;
	run_main(add_listener_fn, &c);
	return c.rc;
}

static void host_fn(struct call *c)
{
	struct dbk_nvmf_subsystem *s = dbk_nvmf_subsystem_find(c->in[0]);

	c->rc = c->u[0] ? dbk_nvmf_subsystem_add_host(s, c->in[1], c->err, sizeof(c->err))
			: dbk_nvmf_subsystem_remove_host(s, c->in[1], c->err, sizeof(c->err));
	call_done(c);
}

static int host(const char *nqn, const char *h, bool add)
{
	struct call c = {0};

	c.in[0] = nqn;
	c.in[1] = h;
	c.u[0] = add;
	run_main(host_fn, &c);
	return c.rc;
}

static void ctrlr_count_fn(struct call *c)
{
	struct dbk_nvmf_subsystem *s = dbk_nvmf_subsystem_find(c->in[0]);

	c->rc = s ? (int)s->num_ctrlrs : -1;
	call_done(c);
}

static int ctrlr_count(const char *nqn)
{
	struct call c = {0};

	c.in[0] = nqn;
	run_main(ctrlr_count_fn, &c);
	return c.rc;
}

static void genctr_fn(struct call *c)
{
	c->u[0] = dbk_nvmf_discovery_genctr();
	call_done(c);
}

static uint64_t genctr(void)
{
	struct call c = {0};

	run_main(genctr_fn, &c);
	return c.u[0];
}

/* ------------------------------------------------------------ qpair driver */

static void new_qpair_fn(struct call *c)
{
	struct tq *tq = (struct tq *)c->in[0];

	tq->q.transport = dbk_nvmf_tgt_find_transport("TEST");
	dbk_nvmf_tgt_new_qpair(&tq->q);
	call_done(c);
}

/* Local address the next tq_new() connections report (none by default). */
static struct dbk_nvmf_listen_addr g_next_local;
static bool g_next_has_local;

static void set_local(const char *traddr, const char *port)
{
	g_next_has_local = traddr != NULL;
	memset(&g_next_local, 0, sizeof(g_next_local));
	if (!traddr)
		return;
	snprintf(g_next_local.trtype, sizeof(g_next_local.trtype), "TEST");
	snprintf(g_next_local.adrfam, sizeof(g_next_local.adrfam), "%s", strchr(traddr, ':') ? "IPv6" : "IPv4");
	snprintf(g_next_local.traddr, sizeof(g_next_local.traddr), "%s", traddr);
	snprintf(g_next_local.trsvcid, sizeof(g_next_local.trsvcid), "%s", port);
}

static struct tq *tq_new(void)
{
	struct tq *tq = calloc(1, sizeof(*tq));
	struct call c = {0};

	tq->local = g_next_local;
	tq->has_local = g_next_has_local;

	for (int i = 0; i < TQ_REQS; i++)
		tq->reqs[i].tq = tq;
	c.in[0] = tq;
	run_main(new_qpair_fn, &c);
	for (int i = 0; i < WAIT_S * 1000 && !atomic_load(&tq->added); i++)
		usleep(1000);
	assert_true(atomic_load(&tq->added));
	return tq;
}

static void exec_msg(void *arg)
{
	dbk_nvmf_request_exec(arg);
}

static struct treq *submit(struct tq *tq, int slot, const struct nvme_cmd *cmd, enum dbk_nvmf_xfer xfer, void *buf,
			   uint32_t len)
{
	struct treq *r = &tq->reqs[slot];

	memset(&r->req, 0, sizeof(r->req));
	r->cmd = *cmd;
	r->cmd.cid = (uint16_t)slot;
	memset(&r->rsp, 0, sizeof(r->rsp));
	r->rsp.cid = (uint16_t)slot;
	r->req.qpair = &tq->q;
	r->req.cmd = &r->cmd;
	r->req.rsp = &r->rsp;
	r->req.xfer = xfer;
	r->req.length = len;
	r->req.iov[0].iov_base = buf;
	r->req.iov[0].iov_len = len;
	r->req.iovcnt = len ? 1 : 0;
	atomic_store(&r->ncompl, 0);
	assert_int_equal(dbk_thread_send_msg(tq->q.group->thread, exec_msg, &r->req), 0);
	return r;
}

static uint16_t wait_req(struct treq *r)
{
	assert_true(wait_until(&r->ncompl, 1));
	return nvme_cpl_status(&r->rsp) & 0x7FF;	/* SCT + SC */
}

static uint16_t do_cmd(struct tq *tq, const struct nvme_cmd *cmd, enum dbk_nvmf_xfer xfer, void *buf, uint32_t len,
		       struct nvme_cpl *cpl)
{
	struct treq *r = submit(tq, 0, cmd, xfer, buf, len);
	uint16_t st = wait_req(r);

	if (cpl)
		*cpl = r->rsp;
	return st;
}

#define ST(sct, sc) ((uint16_t)(((sct) << 8) | (sc)))

static uint16_t connect_q(struct tq *tq, uint16_t qid, uint16_t sqsize, uint16_t cntlid, const char *subnqn,
			  const char *hostnqn, uint32_t kato, uint16_t recfmt, struct nvme_cpl *cpl)
{
	struct nvmf_connect_data data;
	struct nvmf_connect_cmd c;
	struct nvme_cmd cmd;

	memset(&data, 0, sizeof(data));
	memset(data.hostid, 0xAB, 16);
	data.cntlid = cntlid;
	snprintf(data.subnqn, sizeof(data.subnqn), "%s", subnqn);
	snprintf(data.hostnqn, sizeof(data.hostnqn), "%s", hostnqn);
	memset(&c, 0, sizeof(c));
	c.opc = NVME_OPC_FABRIC;
	c.fctype = NVMF_FCTYPE_CONNECT;
	c.qid = qid;
	c.sqsize = sqsize;
	c.kato = kato;
	c.recfmt = recfmt;
	memcpy(&cmd, &c, sizeof(cmd));
	return do_cmd(tq, &cmd, DBK_NVMF_XFER_HOST_TO_CTRLR, &data, sizeof(data), cpl);
}

static uint16_t prop(struct tq *tq, bool set, uint32_t ofst, bool size8, uint64_t value, uint64_t *out)
{
	struct nvmf_property_cmd p;
	struct nvme_cmd cmd;
	struct nvme_cpl cpl;
	uint16_t st;

	memset(&p, 0, sizeof(p));
	p.opc = NVME_OPC_FABRIC;
	p.fctype = set ? NVMF_FCTYPE_PROPERTY_SET : NVMF_FCTYPE_PROPERTY_GET;
	p.attrib = size8 ? 1 : 0;
	p.ofst = ofst;
	p.value = value;
	memcpy(&cmd, &p, sizeof(cmd));
	st = do_cmd(tq, &cmd, DBK_NVMF_XFER_NONE, NULL, 0, &cpl);
	if (out)
		*out = (uint64_t)cpl.cdw0 | ((uint64_t)cpl.cdw1 << 32);
	return st;
}

static void enable(struct tq *tq)
{
	uint64_t v;

	assert_int_equal(prop(tq, true, NVME_REG_CC, false, NVME_CC_EN | (6u << 16) | (4u << 20), NULL), 0);
	assert_int_equal(prop(tq, false, NVME_REG_CSTS, false, 0, &v), 0);
	assert_true(v & NVME_CSTS_RDY);
}

static uint16_t admin_connect(struct tq **out, const char *subnqn, const char *hostnqn, uint32_t kato)
{
	struct tq *tq = tq_new();
	struct nvme_cpl cpl;

	assert_int_equal(connect_q(tq, 0, 31, 0xFFFF, subnqn, hostnqn, kato, 0, &cpl), 0);
	enable(tq);
	*out = tq;
	return (uint16_t)cpl.cdw0;
}

static struct tq *io_connect(uint16_t cntlid, const char *subnqn, uint16_t qid)
{
	struct tq *tq = tq_new();
	struct nvme_cpl cpl;

	assert_int_equal(connect_q(tq, qid, 127, cntlid, subnqn, HOSTNQN, 0, 0, &cpl), 0);
	assert_int_equal(cpl.cdw0 & 0xFFFF, cntlid);
	return tq;
}

static void disconnect_msg(void *arg)
{
	dbk_nvmf_qpair_disconnect(arg);
}

static void tq_disconnect(struct tq *tq)
{
	assert_int_equal(dbk_thread_send_msg(tq->q.group->thread, disconnect_msg, &tq->q), 0);
	assert_true(wait_until(&tq->nfini, 1));
	usleep(2000);
	assert_int_equal(atomic_load(&tq->nfini), 1);
	assert_int_equal(atomic_load(&tq->completions_after_fini), 0);
}

static void tq_close(struct tq *tq)
{
	tq_disconnect(tq);
	free(tq);
}

static uint16_t identify(struct tq *tq, uint8_t cns, uint32_t nsid, uint8_t *buf)
{
	struct nvme_cmd cmd;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = NVME_OPC_IDENTIFY;
	cmd.nsid = nsid;
	cmd.cdw10 = cns;
	memset(buf, 0xEE, 4096);
	return do_cmd(tq, &cmd, DBK_NVMF_XFER_CTRLR_TO_HOST, buf, 4096, NULL);
}

static uint16_t get_log(struct tq *tq, uint8_t lid, uint64_t offset, uint32_t len, void *buf)
{
	struct nvme_cmd cmd;
	uint32_t numd = len / 4 - 1;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = NVME_OPC_GET_LOG_PAGE;
	cmd.cdw10 = lid | ((numd & 0xFFFF) << 16);
	cmd.cdw11 = numd >> 16;
	cmd.cdw12 = (uint32_t)offset;
	cmd.cdw13 = (uint32_t)(offset >> 32);
	return do_cmd(tq, &cmd, DBK_NVMF_XFER_CTRLR_TO_HOST, buf, len, NULL);
}

static uint16_t feature(struct tq *tq, bool set, uint8_t fid, uint32_t cdw11, uint32_t *dw0)
{
	struct nvme_cmd cmd;
	struct nvme_cpl cpl;
	uint16_t st;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = set ? NVME_OPC_SET_FEATURES : NVME_OPC_GET_FEATURES;
	cmd.cdw10 = fid;
	cmd.cdw11 = cdw11;
	st = do_cmd(tq, &cmd, DBK_NVMF_XFER_NONE, NULL, 0, &cpl);
	if (dw0)
		*dw0 = cpl.cdw0;
	return st;
}

static void rw_cmd(struct nvme_cmd *cmd, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->opc = opc;
	cmd->nsid = nsid;
	cmd->cdw10 = (uint32_t)slba;
	cmd->cdw11 = (uint32_t)(slba >> 32);
	cmd->cdw12 = nlb - 1;
}

static uint16_t io(struct tq *tq, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb, void *buf, uint32_t len)
{
	struct nvme_cmd cmd;
	enum dbk_nvmf_xfer x = opc == NVME_OPC_READ ? DBK_NVMF_XFER_CTRLR_TO_HOST
			       : (opc == NVME_OPC_WRITE || opc == NVME_OPC_COMPARE) ? DBK_NVMF_XFER_HOST_TO_CTRLR
			       : DBK_NVMF_XFER_NONE;

	rw_cmd(&cmd, opc, nsid, slba, nlb);
	return do_cmd(tq, &cmd, x, buf, len, NULL);
}

static uint16_t le16(const uint8_t *b, size_t off)
{
	uint16_t v;

	memcpy(&v, b + off, 2);
	return v;
}

static uint32_t le32(const uint8_t *b, size_t off)
{
	uint32_t v;

	memcpy(&v, b + off, 4);
	return v;
}

static uint64_t le64(const uint8_t *b, size_t off)
{
	uint64_t v;

	memcpy(&v, b + off, 8);
	return v;
}

/* ==================================================================== tests */

#define NQN1 "nqn.2016-06.io.spdk:cnode1"

static void test_nqn_validation(void **state)
{
	char err[256];

	(void)state;
	assert_true(dbk_nvmf_nqn_is_valid(NQN1, err, sizeof(err)));
	assert_true(dbk_nvmf_nqn_is_valid(HOSTNQN, err, sizeof(err)));
	assert_true(dbk_nvmf_nqn_is_valid(NVME_DISC_SUBSYS_NQN, err, sizeof(err)));
	assert_false(dbk_nvmf_nqn_is_valid("nqn.2016-13.io.spdk:x", err, sizeof(err)));
	assert_false(dbk_nvmf_nqn_is_valid("nqn.2016-06.io.spdk", err, sizeof(err)));
	assert_false(dbk_nvmf_nqn_is_valid("iqn.2016-06.io.spdk:x", err, sizeof(err)));
	assert_false(dbk_nvmf_nqn_is_valid("nqn.2014-08.org.nvmexpress:uuid:not-a-uuid", err, sizeof(err)));
	assert_false(dbk_nvmf_nqn_is_valid("nqn.2016-06..spdk:x", err, sizeof(err)));
	char longnqn[300];

	snprintf(longnqn, sizeof(longnqn), "nqn.2016-06.io.spdk:%0250d", 1);
	assert_false(dbk_nvmf_nqn_is_valid(longnqn, err, sizeof(err)));
	assert_int_equal(create_subsys("bogus", true), -EINVAL);
}

static void test_connect_and_properties(void **state)
{
	struct tq *a, *io1, *bad;
	struct nvme_cpl cpl;
	uint64_t v;
	uint16_t cntlid, cntlid2;
	uint8_t buf[4096];

	(void)state;
	assert_int_equal(create_subsys(NQN1, false), 0);
	assert_int_equal(create_subsys(NQN1, false), -EEXIST);
	assert_int_equal(host(NQN1, HOSTNQN, true), 0);

	/* failures on the admin queue */
	bad = tq_new();
	assert_int_equal(connect_q(bad, 0, 31, 0xFFFF, "nqn.2016-06.io.spdk:nope", HOSTNQN, 0, 0, &cpl),
			 ST(1, NVME_SC_CONNECT_INVALID_PARAMETERS));
	assert_int_equal(cpl.cdw0, 256u | (1u << 16));
	assert_int_equal(connect_q(bad, 0, 31, 0xFFFF, NQN1, HOSTNQN2, 0, 0, &cpl), ST(1, NVME_SC_CONNECT_INVALID_HOST));
	assert_int_equal(connect_q(bad, 0, 31, 0xFFFF, NQN1, HOSTNQN, 0, 1, &cpl),
			 ST(1, NVME_SC_CONNECT_INCOMPATIBLE_FORMAT));
	assert_int_equal(connect_q(bad, 0, 200, 0xFFFF, NQN1, HOSTNQN, 0, 0, &cpl),
			 ST(1, NVME_SC_CONNECT_INVALID_PARAMETERS));
	assert_int_equal(cpl.cdw0, 44u);
	assert_int_equal(connect_q(bad, 9, 31, 0xFFFF, NQN1, HOSTNQN, 0, 0, &cpl),
			 ST(1, NVME_SC_CONNECT_INVALID_PARAMETERS));
	assert_int_equal(cpl.cdw0, 42u);
	/* admin commands before Connect */
	assert_int_equal(identify(bad, 1, 0, buf), ST(0, NVME_SC_COMMAND_SEQUENCE_ERROR));
	tq_close(bad);

	/* good admin connect */
	a = tq_new();
	assert_int_equal(connect_q(a, 0, 31, 0xFFFF, NQN1, HOSTNQN, 10000, 0, &cpl), 0);
	cntlid = (uint16_t)cpl.cdw0;
	assert_true(cntlid >= 1 && cntlid <= 0xFFEF);
	assert_int_equal(ctrlr_count(NQN1), 1);
	/* commands before CC.EN */
	assert_int_equal(identify(a, 1, 0, buf), ST(0, NVME_SC_COMMAND_SEQUENCE_ERROR));
	/* an I/O queue before CC.EN */
	io1 = tq_new();
	assert_int_equal(connect_q(io1, 1, 127, cntlid, NQN1, HOSTNQN, 0, 0, &cpl), ST(0, NVME_SC_COMMAND_SEQUENCE_ERROR));

	assert_int_equal(prop(a, false, NVME_REG_CAP, true, 0, &v), 0);
	assert_int_equal(v & 0xFFFF, 127);		/* MQES */
	assert_true(v & (1ull << 16));			/* CQR */
	assert_true(((v >> 24) & 0xFF) > 0);		/* TO */
	assert_true(v & (1ull << 37));			/* CSS NVM */
	assert_int_equal((v >> 48) & 0xF, 0);		/* MPSMIN 4K */
	assert_int_equal(prop(a, false, NVME_REG_VS, false, 0, &v), 0);
	assert_int_equal(v, 0x00010300);
	assert_int_equal(prop(a, false, NVME_REG_CSTS, false, 0, &v), 0);
	assert_int_equal(v & NVME_CSTS_RDY, 0);
	/* an 8-byte read must be 8-byte aligned (CAP+4 would span CAP and VS) */
	assert_int_equal(prop(a, false, NVME_REG_CAP + 4, true, 0, &v), ST(0, NVME_SC_INVALID_FIELD));
	assert_int_equal(prop(a, false, NVME_REG_CAP + 4, false, 0, &v), 0);
	assert_int_equal(v & 0xFFFF, 1u << (37 - 32));	/* CAP.CSS NVM */
	/* wrong queue entry sizes */
	assert_int_equal(prop(a, true, NVME_REG_CC, false, NVME_CC_EN | (7u << 16) | (4u << 20), NULL),
			 ST(0, NVME_SC_INVALID_FIELD));
	enable(a);
	assert_int_equal(prop(a, false, NVME_REG_CC, false, 0, &v), 0);
	assert_int_equal(v & 1, 1);
	assert_int_equal(prop(a, false, 0x40, false, 0, &v), ST(0, NVME_SC_INVALID_FIELD));

	/* Identify Controller fields the Linux host checks */
	assert_int_equal(identify(a, 1, 0, buf), 0);
	assert_int_equal(le16(buf, 78), cntlid);
	assert_memory_equal(buf + 4, "SN0001              ", 20);
	assert_memory_equal(buf + 24, "Test Model", 10);
	assert_int_equal(buf[24 + 10], ' ');
	assert_int_equal(buf[76] & 0x2, 0x2);		/* CMIC */
	assert_int_equal(buf[77], 5);			/* MDTS 128 KiB */
	assert_int_equal(le32(buf, 80), 0x00010300);
	assert_int_equal(le32(buf, 92) & (1u << 8), 1u << 8);
	assert_int_equal(buf[111], 1);			/* CNTRLTYPE I/O */
	assert_int_equal(buf[259], 3);			/* AERL */
	assert_true(le16(buf, 320) > 0);		/* KAS */
	assert_int_equal(buf[512], 0x66);
	assert_int_equal(buf[513], 0x44);
	assert_int_equal(le16(buf, 514), 128);		/* MAXCMD */
	assert_int_equal(le32(buf, 516), 32);		/* NN */
	assert_int_equal(le16(buf, 520), 0x0D);		/* ONCS */
	assert_int_equal(buf[525] & 1, 0);		/* malloc: no volatile cache */
	assert_int_equal(le32(buf, 536) & 0x3, 1);	/* SGLS */
	assert_true(le32(buf, 536) & (1u << 20));
	assert_string_equal((char *)buf + 768, NQN1);
	assert_int_equal(le32(buf, 1792), (64 + 4096) / 16);	/* IOCCSZ */
	assert_int_equal(le32(buf, 1796), 1);
	assert_int_equal(le16(buf, 1800), 0);
	assert_int_equal(buf[1803], 1);
	assert_int_equal(buf[261], 0x6);		/* LPA: extended data, commands supported and effects */
	assert_int_equal(identify(a, 0x1F, 0, buf), ST(0, NVME_SC_INVALID_FIELD));	/* unknown CNS */

	/* I/O queue connects: failures, then good ones */
	assert_int_equal(connect_q(io1, 1, 127, cntlid + 1, NQN1, HOSTNQN, 0, 0, &cpl),
			 ST(1, NVME_SC_CONNECT_INVALID_PARAMETERS));
	assert_int_equal(cpl.cdw0, 16u | (1u << 16));
	assert_int_equal(connect_q(io1, 1, 128, cntlid, NQN1, HOSTNQN, 0, 0, &cpl),
			 ST(1, NVME_SC_CONNECT_INVALID_PARAMETERS));
	assert_int_equal(connect_q(io1, 4, 127, cntlid, NQN1, HOSTNQN, 0, 0, &cpl),
			 ST(1, NVME_SC_CONNECT_INVALID_PARAMETERS));
	assert_int_equal(connect_q(io1, 1, 127, cntlid, NQN1, HOSTNQN, 0, 0, &cpl), 0);
	assert_int_equal(cpl.cdw0 & 0xFFFF, cntlid);
	/* the same qid twice */
	bad = tq_new();
	assert_int_equal(connect_q(bad, 1, 127, cntlid, NQN1, HOSTNQN, 0, 0, &cpl),
			 ST(1, NVME_SC_CONNECT_INVALID_PARAMETERS));
	tq_close(bad);
	/* admin commands on the I/O queue, Connect twice */
	assert_int_equal(identify(io1, 1, 0, buf), ST(0, NVME_SC_INVALID_OPCODE));
	assert_int_equal(connect_q(io1, 1, 127, cntlid, NQN1, HOSTNQN, 0, 0, &cpl), ST(0, NVME_SC_INVALID_OPCODE));

	/* fabrics: AUTH_Receive where the host needs no authentication is out of sequence; Disconnect ends the I/O queue */
	{
		struct nvme_cmd cmd;
		struct nvmf_fabric_cmd *f = (struct nvmf_fabric_cmd *)&cmd;

		memset(&cmd, 0, sizeof(cmd));
		f->opc = NVME_OPC_FABRIC;
		f->fctype = NVMF_FCTYPE_AUTHENTICATION_RECV;
		assert_int_equal(do_cmd(a, &cmd, DBK_NVMF_XFER_NONE, NULL, 0, NULL), ST(0, NVME_SC_COMMAND_SEQUENCE_ERROR));
		f->fctype = NVMF_FCTYPE_PROPERTY_GET;
		assert_int_equal(do_cmd(io1, &cmd, DBK_NVMF_XFER_NONE, NULL, 0, NULL), ST(0, NVME_SC_INVALID_OPCODE));
		f->fctype = NVMF_FCTYPE_DISCONNECT;
		assert_int_equal(do_cmd(io1, &cmd, DBK_NVMF_XFER_NONE, NULL, 0, NULL), 0);
		assert_true(wait_until(&io1->nfini, 1));
		free(io1);
		io1 = io_connect(cntlid, NQN1, 1);	/* the qid is free again */
	}

	/* a second controller gets another cntlid */
	struct tq *a2;

	cntlid2 = admin_connect(&a2, NQN1, HOSTNQN, 0);
	assert_int_not_equal(cntlid2, cntlid);
	assert_int_equal(ctrlr_count(NQN1), 2);
	tq_close(a2);

	/* shutdown notification */
	assert_int_equal(prop(a, true, NVME_REG_CC, false, NVME_CC_EN | (6u << 16) | (4u << 20) | (1u << 14), NULL), 0);
	assert_int_equal(prop(a, false, NVME_REG_CSTS, false, 0, &v), 0);
	assert_int_equal(v & (3u << 2), NVME_CSTS_SHST_COMPLETE);

	/* closing the admin queue tears the controller down, I/O queue included */
	tq_close(a);
	assert_true(wait_until(&io1->nfini, 1));
	free(io1);
	for (int i = 0; i < 1000 && ctrlr_count(NQN1) != 0; i++)
		usleep(1000);
	assert_int_equal(ctrlr_count(NQN1), 0);
	assert_int_equal(delete_subsys(NQN1), 0);
}

#define NQN2 "nqn.2016-06.io.spdk:cnode2"

static void test_namespaces_and_io(void **state)
{
	struct tq *a, *q;
	uint16_t cntlid;
	uint8_t id[4096];
	static uint8_t wbuf[8192], rbuf[8192];
	uint8_t eui[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct call c = {0};

	(void)state;
	malloc_create("nvmf_m0", 1024, 512);
	malloc_create("nvmf_m1", 256, 4096);
	assert_int_equal(create_subsys(NQN2, true), 0);
	assert_int_equal(add_ns(NQN2, "nvmf_m0", 0), 1);
	c.in[0] = NQN2;
	c.in[1] = "nvmf_m1";
	c.in[2] = eui;
	c.u[0] = 5;
	run_main(add_ns_fn, &c);
	assert_int_equal(c.rc, 5);
	assert_int_equal(add_ns(NQN2, "nvmf_nope", 0), -ENODEV);
	assert_int_equal(add_ns(NQN2, "nvmf_m0", 0), -EPERM);	/* claimed by the first namespace */
	assert_int_equal(add_ns(NQN2, "nvmf_m1", 5), -EEXIST);
	assert_int_equal(add_ns(NQN2, "nvmf_m1", 33), -EINVAL);
	malloc_create("nvmf_m1536", 16, 1536);
	assert_int_equal(add_ns(NQN2, "nvmf_m1536", 0), -EINVAL);	/* LBADS must be a power of two */
	malloc_delete("nvmf_m1536");	/* and the failed add released its claim/descriptor */

	cntlid = admin_connect(&a, NQN2, HOSTNQN, 0);
	q = io_connect(cntlid, NQN2, 1);

	/* Identify namespace */
	assert_int_equal(identify(a, 0, 1, id), 0);
	assert_int_equal(le64(id, 0), 1024);
	assert_int_equal(le64(id, 8), 1024);
	assert_int_equal(id[25], 0);
	assert_int_equal((le32(id, 128) >> 16) & 0xFF, 9);
	assert_int_equal(id[30] & 1, 1);
	assert_int_equal(identify(a, 0, 5, id), 0);
	assert_int_equal((le32(id, 128) >> 16) & 0xFF, 12);
	assert_memory_equal(id + 120, eui, 8);
	assert_int_equal(identify(a, 0, 2, id), 0);	/* inactive: zeros */
	assert_int_equal(le64(id, 0), 0);
	assert_int_equal(identify(a, 0, 0, id), ST(0, NVME_SC_INVALID_NAMESPACE_OR_FORMAT));
	assert_int_equal(identify(a, 0, 99, id), ST(0, NVME_SC_INVALID_NAMESPACE_OR_FORMAT));
	/* active list */
	assert_int_equal(identify(a, 2, 0, id), 0);
	assert_int_equal(le32(id, 0), 1);
	assert_int_equal(le32(id, 4), 5);
	assert_int_equal(le32(id, 8), 0);
	assert_int_equal(identify(a, 2, 1, id), 0);
	assert_int_equal(le32(id, 0), 5);
	assert_int_equal(le32(id, 4), 0);
	/* descriptors: EUI64, NGUID, UUID; NGUID/UUID = bdev UUID */
	assert_int_equal(identify(a, 3, 5, id), 0);
	assert_int_equal(id[0], 1);
	assert_int_equal(id[1], 8);
	assert_memory_equal(id + 4, eui, 8);
	assert_int_equal(id[12], 2);
	assert_int_equal(id[13], 16);
	assert_int_equal(id[32], 3);
	assert_int_equal(id[33], 16);
	assert_memory_equal(id + 16, id + 36, 16);
	assert_int_equal(identify(a, 3, 1, id), 0);
	assert_int_equal(id[0], 2);
	assert_int_equal(identify(a, 3, 2, id), ST(0, NVME_SC_INVALID_NAMESPACE_OR_FORMAT));
	/* I/O command set specific (NVM): Linux asks for CNS 6 and must not fail */
	assert_int_equal(identify(a, 6, 0, id), 0);
	assert_int_equal(le64(id, 0), 0);
	assert_int_equal(identify(a, 5, 1, id), 0);
	assert_int_equal(identify(a, 5, 2, id), ST(0, NVME_SC_INVALID_NAMESPACE_OR_FORMAT));

	/* write / read back / compare */
	for (size_t i = 0; i < sizeof(wbuf); i++)
		wbuf[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(io(q, NVME_OPC_WRITE, 1, 10, 16, wbuf, 8192), 0);
	memset(rbuf, 0, sizeof(rbuf));
	assert_int_equal(io(q, NVME_OPC_READ, 1, 10, 16, rbuf, 8192), 0);
	assert_memory_equal(rbuf, wbuf, 8192);
	assert_int_equal(io(q, NVME_OPC_COMPARE, 1, 10, 16, wbuf, 8192), 0);
	wbuf[100] ^= 0xFF;
	assert_int_equal(io(q, NVME_OPC_COMPARE, 1, 10, 16, wbuf, 8192), ST(2, NVME_SC_COMPARE_FAILURE));
	wbuf[100] ^= 0xFF;
	/* 4 KiB namespace */
	assert_int_equal(io(q, NVME_OPC_WRITE, 5, 255, 1, wbuf, 4096), 0);
	assert_int_equal(io(q, NVME_OPC_READ, 5, 255, 1, rbuf, 4096), 0);
	assert_memory_equal(rbuf, wbuf, 4096);
	/* flush (no volatile cache: success) */
	assert_int_equal(io(q, NVME_OPC_FLUSH, 1, 0, 1, NULL, 0), 0);
	/* write zeroes */
	assert_int_equal(io(q, NVME_OPC_WRITE_ZEROES, 1, 12, 2, NULL, 0), 0);
	assert_int_equal(io(q, NVME_OPC_READ, 1, 10, 16, rbuf, 8192), 0);
	assert_memory_equal(rbuf, wbuf, 1024);
	for (int i = 1024; i < 2048; i++)
		assert_int_equal(rbuf[i], 0);
	assert_memory_equal(rbuf + 2048, wbuf + 2048, 8192 - 2048);
	/* dataset management: two deallocate ranges */
	{
		struct nvme_dsm_range r[2] = { { 0, 2, 10 }, { 0, 1, 20 } };
		struct nvme_cmd cmd;

		memset(&cmd, 0, sizeof(cmd));
		cmd.opc = NVME_OPC_DATASET_MANAGEMENT;
		cmd.nsid = 1;
		cmd.cdw10 = 1;
		cmd.cdw11 = NVME_DSM_ATTR_DEALLOCATE;
		assert_int_equal(do_cmd(q, &cmd, DBK_NVMF_XFER_HOST_TO_CTRLR, r, sizeof(r), NULL), 0);
		r[1].starting_lba = 1023;
		r[1].length = 2;
		assert_int_equal(do_cmd(q, &cmd, DBK_NVMF_XFER_HOST_TO_CTRLR, r, sizeof(r), NULL),
				 ST(0, NVME_SC_LBA_OUT_OF_RANGE));
		assert_int_equal(do_cmd(q, &cmd, DBK_NVMF_XFER_HOST_TO_CTRLR, r, 16, NULL),
				 ST(0, NVME_SC_DATA_SGL_LENGTH_INVALID));
	}
	/* SMART / health: host commands and data units from the bdevs' statistics */
	assert_int_equal(get_log(a, NVME_LOG_HEALTH, 0, 512, id), 0);
	assert_int_equal(id[3], 100);
	assert_true(le64(id, 64) >= 3);		/* host read commands */
	assert_true(le64(id, 80) >= 2);		/* host write commands */
	assert_true(le64(id, 48) >= 1);		/* data units written */
	{
		struct nvme_cmd cmd;

		memset(&cmd, 0, sizeof(cmd));
		cmd.opc = NVME_OPC_GET_LOG_PAGE;
		cmd.nsid = 5;
		cmd.cdw10 = NVME_LOG_HEALTH | (127u << 16);
		assert_int_equal(do_cmd(a, &cmd, DBK_NVMF_XFER_CTRLR_TO_HOST, id, 512, NULL), 0);
		assert_int_equal(le64(id, 80), 1);	/* one write went to namespace 5 */
	}
	/* errors */
	assert_int_equal(io(q, NVME_OPC_READ, 1, 1020, 8, rbuf, 4096), ST(0, NVME_SC_LBA_OUT_OF_RANGE));
	assert_int_equal(io(q, NVME_OPC_READ, 1, 1ull << 40, 1, rbuf, 512), ST(0, NVME_SC_LBA_OUT_OF_RANGE));
	assert_int_equal(io(q, NVME_OPC_WRITE_ZEROES, 1, 1024, 1, NULL, 0), ST(0, NVME_SC_LBA_OUT_OF_RANGE));
	assert_int_equal(io(q, NVME_OPC_READ, 2, 0, 1, rbuf, 512), ST(0, NVME_SC_INVALID_NAMESPACE_OR_FORMAT));
	assert_int_equal(io(q, NVME_OPC_READ, 0xFFFFFFFF, 0, 1, rbuf, 512), ST(0, NVME_SC_INVALID_NAMESPACE_OR_FORMAT));
	assert_int_equal(io(q, NVME_OPC_READ, 1, 0, 2, rbuf, 512), ST(0, NVME_SC_DATA_SGL_LENGTH_INVALID));
	assert_int_equal(io(q, 0x7E, 1, 0, 1, NULL, 0), ST(0, NVME_SC_INVALID_OPCODE));
	/* an I/O opcode on the admin queue: 0x01 is Create I/O SQ there, not supported on fabrics */
	assert_int_equal(io(a, NVME_OPC_WRITE, 1, 0, 1, rbuf, 512), ST(0, NVME_SC_INVALID_OPCODE));
	{
		struct nvme_cmd cmd;

		rw_cmd(&cmd, 0x80, 1, 0, 1);
		assert_int_equal(do_cmd(a, &cmd, DBK_NVMF_XFER_NONE, NULL, 0, NULL), ST(0, NVME_SC_INVALID_OPCODE));
	}

	/* removing a namespace: I/O to it fails, identify says inactive */
	assert_int_equal(remove_ns(NQN2, 5), 0);
	assert_int_equal(remove_ns(NQN2, 5), -ENOENT);
	assert_int_equal(io(q, NVME_OPC_READ, 5, 0, 1, rbuf, 4096), ST(0, NVME_SC_INVALID_NAMESPACE_OR_FORMAT));
	assert_int_equal(identify(a, 2, 0, id), 0);
	assert_int_equal(le32(id, 0), 1);
	assert_int_equal(le32(id, 4), 0);
	/* re-add with the same identity (derived from the bdev UUID) */
	assert_int_equal(add_ns(NQN2, "nvmf_m1", 0), 2);
	assert_int_equal(identify(a, 3, 2, id), 0);
	assert_int_equal(id[0], 2);
	assert_int_equal(io(q, NVME_OPC_READ, 2, 255, 1, rbuf, 4096), 0);
	assert_memory_equal(rbuf, wbuf, 4096);

	/* bdev hot-remove removes the namespace */
	malloc_delete("nvmf_m1");
	assert_int_equal(io(q, NVME_OPC_READ, 2, 0, 1, rbuf, 4096), ST(0, NVME_SC_INVALID_NAMESPACE_OR_FORMAT));

	tq_close(q);
	tq_close(a);
	assert_int_equal(delete_subsys(NQN2), 0);
	malloc_delete("nvmf_m0");
}

#define NQN3 "nqn.2016-06.io.spdk:cnode3"
#define NQN4 "nqn.2016-06.io.spdk:cnode4"

static void test_discovery(void **state)
{
	struct tq *d;
	static uint8_t log[8192];
	uint8_t id[4096];
	uint16_t cntlid;
	uint64_t g0, g1;
	struct nvmf_discovery_log_header *h = (void *)log;
	struct nvmf_discovery_log_entry *e = (void *)(log + 1024);

	(void)state;
	assert_int_equal(create_subsys(NQN3, true), 0);
	assert_int_equal(create_subsys(NQN4, false), 0);
	assert_int_equal(host(NQN4, HOSTNQN2, true), 0);
	assert_int_equal(host(NQN4, HOSTNQN2, true), -EEXIST);
	assert_int_equal(listener(NQN3, "10.0.0.1", "4420", true), 0);
	assert_int_equal(listener(NQN3, "10.0.0.1", "4420", true), -EEXIST);
	assert_int_equal(listener(NQN4, "10.0.0.1", "4420", true), 0);	/* shared listener */
	assert_int_equal(listener(NQN4, "fe80::1", "4421", true), 0);
	assert_int_equal(listener(NQN4, "10.0.0.1", "1", true), -EADDRINUSE);
	assert_int_equal(listener("discovery", "10.0.0.1", "8009", true), 0);

	cntlid = admin_connect(&d, NVME_DISC_SUBSYS_NQN, HOSTNQN, 0);
	assert_true(cntlid > 0);
	assert_int_equal(identify(d, 1, 0, id), 0);
	assert_int_equal(id[111], 2);
	assert_string_equal((char *)id + 768, NVME_DISC_SUBSYS_NQN);
	assert_true(le32(id, 92) & (1u << 31));

	/* HOSTNQN only sees NQN3 */
	memset(log, 0xCC, sizeof(log));
	assert_int_equal(get_log(d, NVME_LOG_DISCOVERY, 0, 4096, log), 0);
	g0 = h->genctr;
	assert_int_equal(h->numrec, 1);
	assert_int_equal(h->recfmt, 0);
	assert_int_equal(e->trtype, 0);	/* TEST transport is not TCP */
	assert_int_equal(e->adrfam, NVMF_ADRFAM_IPV4);
	assert_int_equal(e->subtype, NVMF_SUBTYPE_NVME);
	assert_int_equal(e->treq, 0);
	assert_int_equal(e->cntlid, 0xFFFF);
	assert_memory_equal(e->trsvcid, "4420 ", 5);
	assert_memory_equal(e->traddr, "10.0.0.1 ", 9);
	assert_int_equal(e->traddr[255], ' ');
	assert_string_equal(e->subnqn, NQN3);
	assert_int_equal(log[2048], 0);		/* zero fill past the log */
	/* Get Log Page on a discovery controller: other pages are invalid */
	assert_int_equal(get_log(d, NVME_LOG_HEALTH, 0, 512, log), ST(0, NVME_SC_INVALID_FIELD));

	/* HOSTNQN2 sees NQN3 (any host) and NQN4 on both listeners */
	struct tq *d2;

	admin_connect(&d2, NVME_DISC_SUBSYS_NQN, HOSTNQN2, 0);
	assert_int_equal(get_log(d2, NVME_LOG_DISCOVERY, 0, 16, log), 0);	/* header only, partial */
	assert_int_equal(h->numrec, 3);
	assert_int_equal(h->genctr, g0);
	assert_int_equal(get_log(d2, NVME_LOG_DISCOVERY, 2048, 2048, log), 0);	/* entries 1..2 by offset */
	e = (void *)log;
	assert_string_equal(e[0].subnqn, NQN4);
	assert_string_equal(e[1].subnqn, NQN4);
	assert_true((e[0].adrfam == NVMF_ADRFAM_IPV6) != (e[1].adrfam == NVMF_ADRFAM_IPV6));
	assert_int_equal(get_log(d2, NVME_LOG_DISCOVERY, 1ull << 33, 1024, log), 0);	/* past the end: zeros */
	assert_int_equal(log[0], 0);
	assert_int_equal(get_log(d2, NVME_LOG_DISCOVERY, 2, 1024, log), ST(0, NVME_SC_INVALID_FIELD));

	/* discovery log change AER */
	uint32_t dw0;

	assert_int_equal(feature(d2, true, NVME_FEAT_ASYNC_EVENT_CONFIG, 1u << 31, NULL), 0);
	assert_int_equal(feature(d2, false, NVME_FEAT_ASYNC_EVENT_CONFIG, 0, &dw0), 0);
	assert_int_equal(dw0, 1u << 31);
	struct nvme_cmd aer;

	memset(&aer, 0, sizeof(aer));
	aer.opc = NVME_OPC_ASYNC_EVENT_REQUEST;
	struct treq *ar = submit(d2, 3, &aer, DBK_NVMF_XFER_NONE, NULL, 0);

	usleep(20000);
	assert_int_equal(atomic_load(&ar->ncompl), 0);
	assert_int_equal(host(NQN4, HOSTNQN2, false), 0);
	assert_int_equal(wait_req(ar), 0);
	assert_int_equal(ar->rsp.cdw0, NVME_AER_CPL_DW0(2, 0xF0, 0x70));
	g1 = genctr();
	assert_true(g1 > g0);
	assert_int_equal(get_log(d2, NVME_LOG_DISCOVERY, 0, 1024, log), 0);
	assert_int_equal(h->numrec, 1);
	assert_int_equal(h->genctr, g1);
	assert_int_equal(listener(NQN3, "10.0.0.1", "4420", false), 0);
	assert_int_equal(listener(NQN3, "10.0.0.1", "4420", false), -ENOENT);
	assert_true(genctr() > g1);
	assert_int_equal(get_log(d2, NVME_LOG_DISCOVERY, 0, 1024, log), 0);
	assert_int_equal(h->numrec, 0);

	/* no I/O queues on a discovery controller */
	struct tq *bad = tq_new();
	struct nvme_cpl cpl;

	assert_int_equal(connect_q(bad, 1, 31, cntlid, NVME_DISC_SUBSYS_NQN, HOSTNQN, 0, 0, &cpl),
			 ST(1, NVME_SC_CONNECT_INVALID_PARAMETERS));
	tq_close(bad);
	tq_close(d2);
	tq_close(d);
	int listens = atomic_load(&g_listens), stops = atomic_load(&g_stop_listens);

	assert_int_equal(delete_subsys(NQN4), 0);
	/* 10.0.0.1:4420 lost its last user (NQN3 removed it), fe80::1 too */
	assert_int_equal(atomic_load(&g_stop_listens) - stops, 2);
	assert_int_equal(atomic_load(&g_listens), listens);
	assert_int_equal(delete_subsys(NQN3), 0);
	assert_int_equal(listener("discovery", "10.0.0.1", "8009", false), 0);
	assert_int_equal(delete_subsys(NQN3), -ENOENT);
	assert_int_equal(delete_subsys(NVME_DISC_SUBSYS_NQN), -EINVAL);
}

#define NQN5 "nqn.2016-06.io.spdk:cnode5"

static void resize_fn(struct call *c)
{
	c->rc = dbk_bdev_notify_blockcnt_change(dbk_bdev_get_by_name(c->in[0]), c->u[0]);
	call_done(c);
}

static void test_features_aer(void **state)
{
	struct tq *a;
	uint32_t dw0;
	uint8_t buf[4096], hostid[16];
	struct nvme_cmd cmd;

	(void)state;
	malloc_create("nvmf_f0", 128, 512);
	assert_int_equal(create_subsys(NQN5, true), 0);
	admin_connect(&a, NQN5, HOSTNQN, 5000);

	assert_int_equal(feature(a, false, NVME_FEAT_NUMBER_OF_QUEUES, 0, &dw0), 0);
	assert_int_equal(dw0, 2u | (2u << 16));	/* 3 I/O queues, 0-based */
	assert_int_equal(feature(a, true, NVME_FEAT_NUMBER_OF_QUEUES, 0x003F003F, &dw0), 0);
	assert_int_equal(dw0, 2u | (2u << 16));
	assert_int_equal(feature(a, false, NVME_FEAT_KEEP_ALIVE_TIMER, 0, &dw0), 0);
	assert_int_equal(dw0, 5000);
	assert_int_equal(feature(a, true, NVME_FEAT_KEEP_ALIVE_TIMER, 7000, NULL), 0);
	assert_int_equal(feature(a, false, NVME_FEAT_KEEP_ALIVE_TIMER, 0, &dw0), 0);
	assert_int_equal(dw0, 7000);
	assert_int_equal(feature(a, false, NVME_FEAT_VOLATILE_WRITE_CACHE, 0, NULL), ST(0, NVME_SC_INVALID_FIELD));
	assert_int_equal(feature(a, true, NVME_FEAT_ARBITRATION, 0x1234, NULL), 0);
	assert_int_equal(feature(a, false, NVME_FEAT_ARBITRATION, 0, &dw0), 0);
	assert_int_equal(dw0, 0x1234);
	assert_int_equal(feature(a, true, NVME_FEAT_HOST_IDENTIFIER, 1, NULL), ST(0, NVME_SC_COMMAND_SEQUENCE_ERROR));
	assert_int_equal(feature(a, false, 0x7D, 0, NULL), ST(0, NVME_SC_INVALID_FIELD));
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = NVME_OPC_GET_FEATURES;
	cmd.cdw10 = NVME_FEAT_HOST_IDENTIFIER;
	cmd.cdw11 = 1;
	assert_int_equal(do_cmd(a, &cmd, DBK_NVMF_XFER_CTRLR_TO_HOST, hostid, 16, NULL), 0);
	for (int i = 0; i < 16; i++)
		assert_int_equal(hostid[i], 0xAB);
	/* keep alive, abort, unknown admin opcodes, log pages */
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = NVME_OPC_KEEP_ALIVE;
	assert_int_equal(do_cmd(a, &cmd, DBK_NVMF_XFER_NONE, NULL, 0, NULL), 0);
	struct nvme_cpl cpl;

	cmd.opc = NVME_OPC_ABORT;
	assert_int_equal(do_cmd(a, &cmd, DBK_NVMF_XFER_NONE, NULL, 0, &cpl), 0);
	assert_int_equal(cpl.cdw0 & 1, 1);
	cmd.opc = NVME_OPC_NS_MANAGEMENT;
	assert_int_equal(do_cmd(a, &cmd, DBK_NVMF_XFER_NONE, NULL, 0, NULL), ST(0, NVME_SC_INVALID_OPCODE));
	assert_int_equal(get_log(a, NVME_LOG_HEALTH, 0, 512, buf), 0);
	assert_int_equal(buf[3], 100);
	assert_int_equal(get_log(a, NVME_LOG_FIRMWARE_SLOT, 0, 512, buf), 0);
	assert_int_equal(buf[0], 1);
	assert_memory_equal(buf + 8, "0.1", 3);
	assert_int_equal(get_log(a, NVME_LOG_ERROR, 0, 64, buf), 0);
	assert_int_equal(get_log(a, NVME_LOG_DISCOVERY, 0, 1024, buf), ST(0, NVME_SC_INVALID_FIELD));
	assert_int_equal(get_log(a, 0x55, 0, 512, buf), ST(0, NVME_SC_INVALID_FIELD));
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = NVME_OPC_GET_LOG_PAGE;
	cmd.cdw10 = NVME_LOG_HEALTH | (2047u << 16);	/* 8 KiB asked, 4 KiB buffer */
	assert_int_equal(do_cmd(a, &cmd, DBK_NVMF_XFER_CTRLR_TO_HOST, buf, 4096, NULL), ST(0, NVME_SC_INVALID_FIELD));

	/* AER: namespace attribute changed on add, then on resize */
	assert_int_equal(feature(a, true, NVME_FEAT_ASYNC_EVENT_CONFIG, 1u << 8, NULL), 0);
	memset(&cmd, 0, sizeof(cmd));
	cmd.opc = NVME_OPC_ASYNC_EVENT_REQUEST;
	struct treq *r1 = submit(a, 4, &cmd, DBK_NVMF_XFER_NONE, NULL, 0);
	struct treq *r2 = submit(a, 5, &cmd, DBK_NVMF_XFER_NONE, NULL, 0);

	usleep(20000);
	assert_int_equal(atomic_load(&r1->ncompl) + atomic_load(&r2->ncompl), 0);
	assert_int_equal(add_ns(NQN5, "nvmf_f0", 3), 3);
	for (int i = 0; i < WAIT_S * 1000 && atomic_load(&r1->ncompl) + atomic_load(&r2->ncompl) == 0; i++)
		usleep(1000);
	usleep(20000);
	assert_int_equal(atomic_load(&r1->ncompl) + atomic_load(&r2->ncompl), 1);
	struct treq *fired = atomic_load(&r1->ncompl) ? r1 : r2, *held = fired == r1 ? r2 : r1;

	assert_int_equal(nvme_cpl_status(&fired->rsp), 0);
	assert_int_equal(fired->rsp.cdw0, NVME_AER_CPL_DW0(2, 0, 4));
	assert_int_equal(get_log(a, NVME_LOG_CHANGED_NS_LIST, 0, 4096, buf), 0);
	assert_int_equal(le32(buf, 0), 3);
	assert_int_equal(le32(buf, 4), 0);
	assert_int_equal(get_log(a, NVME_LOG_CHANGED_NS_LIST, 0, 4096, buf), 0);	/* cleared */
	assert_int_equal(le32(buf, 0), 0);

	struct call c = {0};

	c.in[0] = "nvmf_f0";
	c.u[0] = 256;
	run_main(resize_fn, &c);
	assert_int_equal(c.rc, 0);
	assert_int_equal(wait_req(held), 0);
	assert_int_equal(held->rsp.cdw0, NVME_AER_CPL_DW0(2, 0, 4));
	assert_int_equal(identify(a, 0, 3, buf), 0);
	assert_int_equal(le64(buf, 0), 256);
	/* AER limit: 4 held, the 5th fails */
	for (int i = 0; i < 4; i++)
		submit(a, 6 + i, &cmd, DBK_NVMF_XFER_NONE, NULL, 0);
	assert_int_equal(wait_req(submit(a, 10, &cmd, DBK_NVMF_XFER_NONE, NULL, 0)),
			 ST(1, NVME_SC_ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED));
	/* disconnecting the admin queue completes held AERs before qpair_fini */
	tq_disconnect(a);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(atomic_load(&a->reqs[6 + i].ncompl), 1);
		assert_int_equal(nvme_cpl_status(&a->reqs[6 + i].rsp) & 0x7FF, ST(0, NVME_SC_ABORTED_SQ_DELETION));
	}
	free(a);
	assert_int_equal(delete_subsys(NQN5), 0);
	malloc_delete("nvmf_f0");
}

#define NQN6 "nqn.2016-06.io.spdk:cnode6"

static void test_keep_alive_expiry(void **state)
{
	struct tq *a, *q;
	uint16_t cntlid;

	(void)state;
	assert_int_equal(create_subsys(NQN6, true), 0);
	cntlid = admin_connect(&a, NQN6, HOSTNQN, 300);
	q = io_connect(cntlid, NQN6, 1);
	/* silence: the controller goes away with its queues */
	assert_true(wait_until(&a->nfini, 1));
	assert_true(wait_until(&q->nfini, 1));
	for (int i = 0; i < 1000 && ctrlr_count(NQN6) != 0; i++)
		usleep(1000);
	assert_int_equal(ctrlr_count(NQN6), 0);
	free(a);
	free(q);
	/* keep-alives keep it alive */
	admin_connect(&a, NQN6, HOSTNQN, 300);
	for (int i = 0; i < 10; i++) {
		struct nvme_cmd cmd;

		memset(&cmd, 0, sizeof(cmd));
		cmd.opc = NVME_OPC_KEEP_ALIVE;
		assert_int_equal(do_cmd(a, &cmd, DBK_NVMF_XFER_NONE, NULL, 0, NULL), 0);
		usleep(100000);
	}
	assert_int_equal(atomic_load(&a->nfini), 0);
	tq_close(a);
	assert_int_equal(delete_subsys(NQN6), 0);
}

#define NQN7 "nqn.2016-06.io.spdk:cnode7"

static void exec_then_disconnect(void *arg)
{
	struct tq *tq = arg;

	for (int i = 0; i < 8; i++)
		dbk_nvmf_request_exec(&tq->reqs[i].req);
	dbk_nvmf_qpair_disconnect(&tq->q);
	dbk_nvmf_qpair_disconnect(&tq->q);	/* idempotent */
}

static void test_disconnect_inflight_and_delete(void **state)
{
	struct tq *a, *q;
	uint16_t cntlid;
	static uint8_t bufs[8][4096];

	(void)state;
	malloc_create("nvmf_d0", 1024, 512);
	assert_int_equal(create_subsys(NQN7, true), 0);
	assert_int_equal(add_ns(NQN7, "nvmf_d0", 0), 1);
	cntlid = admin_connect(&a, NQN7, HOSTNQN, 0);
	q = io_connect(cntlid, NQN7, 2);
	/* 8 writes in flight, then the connection dies: all complete, then fini */
	for (int i = 0; i < 8; i++) {
		struct treq *r = &q->reqs[i];
		struct nvme_cmd cmd;

		rw_cmd(&cmd, NVME_OPC_WRITE, 1, (uint64_t)i * 8, 8);
		memset(&r->req, 0, sizeof(r->req));
		r->cmd = cmd;
		memset(&r->rsp, 0, sizeof(r->rsp));
		r->req.qpair = &q->q;
		r->req.cmd = &r->cmd;
		r->req.rsp = &r->rsp;
		r->req.xfer = DBK_NVMF_XFER_HOST_TO_CTRLR;
		r->req.length = 4096;
		r->req.iov[0].iov_base = bufs[i];
		r->req.iov[0].iov_len = 4096;
		r->req.iovcnt = 1;
		atomic_store(&r->ncompl, 0);
	}
	assert_int_equal(dbk_thread_send_msg(q->q.group->thread, exec_then_disconnect, q), 0);
	assert_true(wait_until(&q->nfini, 1));
	for (int i = 0; i < 8; i++)
		assert_int_equal(atomic_load(&q->reqs[i].ncompl), 1);
	assert_int_equal(atomic_load(&q->completions_after_fini), 0);
	free(q);
	/* commands after a disconnect are refused */
	q = io_connect(cntlid, NQN7, 2);
	/* deleting the subsystem disconnects its controllers and releases the bdev */
	assert_int_equal(delete_subsys(NQN7), 0);
	assert_true(wait_until(&a->nfini, 1));
	assert_true(wait_until(&q->nfini, 1));
	free(a);
	free(q);
	assert_int_equal(create_subsys(NQN7, true), 0);
	assert_int_equal(add_ns(NQN7, "nvmf_d0", 0), 1);	/* claim was released */
	assert_int_equal(delete_subsys(NQN7), 0);
	malloc_delete("nvmf_d0");
}

#define NQN8 "nqn.2016-06.io.spdk:cnode8"

static void uring_fn(struct call *c)
{
	c->rc = dbk_bdev_uring_create(c->in[0], c->in[1], 4096, NULL, NULL, c->err, sizeof(c->err));
	call_done(c);
}

static void uring_del_fn(struct call *c)
{
	dbk_bdev_uring_delete(c->in[0], malloc_del_cb, c);
}

static void exec_range(void *arg)
{
	struct tq *tq = arg;

	for (int i = 0; i < 8; i++)
		dbk_nvmf_request_exec(&tq->reqs[i].req);
}

static void prep_rw(struct tq *tq, int slot, uint8_t opc, uint64_t slba, void *buf)
{
	struct treq *r = &tq->reqs[slot];

	rw_cmd(&r->cmd, opc, 1, slba, 1);
	r->cmd.cid = (uint16_t)slot;
	memset(&r->req, 0, sizeof(r->req));
	memset(&r->rsp, 0, sizeof(r->rsp));
	r->req.qpair = &tq->q;
	r->req.cmd = &r->cmd;
	r->req.rsp = &r->rsp;
	r->req.xfer = opc == NVME_OPC_READ ? DBK_NVMF_XFER_CTRLR_TO_HOST : DBK_NVMF_XFER_HOST_TO_CTRLR;
	r->req.length = 4096;
	r->req.iov[0].iov_base = buf;
	r->req.iov[0].iov_len = 4096;
	r->req.iovcnt = 1;
	atomic_store(&r->ncompl, 0);
}

static void iostat_cb(struct dbk_bdev *bdev, const struct dbk_bdev_io_stat *total, json_t *per_channel, void *ctx,
		      int rc)
{
	struct call *c = ctx;

	(void)bdev;
	(void)per_channel;
	c->rc = rc;
	c->u[0] = total ? total->ops[DBK_BDEV_IO_TYPE_FLUSH] : 0;
	call_done(c);
}

static void iostat_fn(struct call *c)
{
	dbk_bdev_get_iostat(dbk_bdev_get_by_name(c->in[0]), false, iostat_cb, c);
}

static uint64_t flush_count(const char *bdev)
{
	struct call c = {0};

	c.in[0] = bdev;
	run_main(iostat_fn, &c);
	assert_int_equal(c.rc, 0);
	return c.u[0];
}

/* Asynchronous bdev (io_uring on a file): I/O really in flight while the
 * namespace goes away, and while the connection dies. */
static void test_inflight_async_bdev(void **state)
{
	char path[] = "/tmp/nvmf_uring_XXXXXX";
	int fd = mkstemp(path);
	struct call c = {0};
	struct tq *a, *q;
	uint16_t cntlid;
	static uint8_t bufs[8][4096] __attribute__((aligned(4096)));

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4 << 20), 0);
	close(fd);
	c.in[0] = "nvmf_u0";
	c.in[1] = path;
	run_main(uring_fn, &c);
	assert_int_equal(c.rc, 0);
	assert_int_equal(create_subsys(NQN8, true), 0);
	assert_int_equal(add_ns(NQN8, "nvmf_u0", 0), 1);
	cntlid = admin_connect(&a, NQN8, HOSTNQN, 0);
	q = io_connect(cntlid, NQN8, 1);

	/* data path works on the async bdev */
	memset(bufs[0], 0x5A, 4096);
	assert_int_equal(io(q, NVME_OPC_WRITE, 1, 7, 1, bufs[0], 4096), 0);
	memset(bufs[1], 0, 4096);
	assert_int_equal(io(q, NVME_OPC_READ, 1, 7, 1, bufs[1], 4096), 0);
	assert_memory_equal(bufs[0], bufs[1], 4096);

	/* a volatile write cache: VWC, the feature, Flush and FUA reach the bdev */
	{
		uint8_t id[4096];
		uint32_t dw0;
		uint64_t f0 = flush_count("nvmf_u0");
		struct nvme_cmd cmd;

		assert_int_equal(identify(a, 1, 0, id), 0);
		assert_int_equal(id[525] & 1, 1);
		assert_int_equal(feature(a, false, NVME_FEAT_VOLATILE_WRITE_CACHE, 0, &dw0), 0);
		assert_int_equal(dw0, 1);
		assert_int_equal(io(q, NVME_OPC_FLUSH, 1, 0, 1, NULL, 0), 0);
		assert_int_equal(flush_count("nvmf_u0"), f0 + 1);
		rw_cmd(&cmd, NVME_OPC_WRITE, 1, 9, 1);
		cmd.cdw12 |= 1u << 30;	/* FUA */
		assert_int_equal(do_cmd(q, &cmd, DBK_NVMF_XFER_HOST_TO_CTRLR, bufs[0], 4096, NULL), 0);
		assert_int_equal(flush_count("nvmf_u0"), f0 + 2);
		assert_int_equal(io(q, NVME_OPC_WRITE, 1, 9, 1, bufs[0], 4096), 0);	/* no FUA: no flush */
		assert_int_equal(flush_count("nvmf_u0"), f0 + 2);
		/* the host turns the cache off: every write is written through */
		assert_int_equal(feature(a, true, NVME_FEAT_VOLATILE_WRITE_CACHE, 0, NULL), 0);
		assert_int_equal(io(q, NVME_OPC_WRITE, 1, 9, 1, bufs[0], 4096), 0);
		assert_int_equal(flush_count("nvmf_u0"), f0 + 3);
		assert_int_equal(feature(a, true, NVME_FEAT_VOLATILE_WRITE_CACHE, 1, NULL), 0);
		assert_int_equal(io(q, NVME_OPC_WRITE, 1, 9, 1, bufs[0], 4096), 0);
		assert_int_equal(flush_count("nvmf_u0"), f0 + 3);
	}

	/* 8 writes in flight while the namespace is removed */
	for (int i = 0; i < 8; i++)
		prep_rw(q, i, NVME_OPC_WRITE, (uint64_t)i, bufs[i]);
	assert_int_equal(dbk_thread_send_msg(q->q.group->thread, exec_range, q), 0);
	assert_int_equal(remove_ns(NQN8, 1), 0);
	for (int i = 0; i < 8; i++) {
		uint16_t st = wait_req(&q->reqs[i]);

		assert_true(st == 0 || st == ST(0, NVME_SC_INVALID_NAMESPACE_OR_FORMAT));
	}
	/* every channel was put: the bdev can go away, and come back */
	assert_int_equal(add_ns(NQN8, "nvmf_u0", 0), 1);

	/* 8 reads in flight when the connection dies: all complete, then qpair_fini */
	for (int i = 0; i < 8; i++)
		prep_rw(q, i, NVME_OPC_READ, (uint64_t)i, bufs[i]);
	assert_int_equal(dbk_thread_send_msg(q->q.group->thread, exec_then_disconnect, q), 0);
	assert_true(wait_until(&q->nfini, 1));
	for (int i = 0; i < 8; i++)
		assert_int_equal(atomic_load(&q->reqs[i].ncompl), 1);
	assert_int_equal(atomic_load(&q->completions_after_fini), 0);
	free(q);

	/* 8 writes in flight while the subsystem is deleted */
	q = io_connect(cntlid, NQN8, 1);
	for (int i = 0; i < 8; i++)
		prep_rw(q, i, NVME_OPC_WRITE, (uint64_t)i, bufs[i]);
	assert_int_equal(dbk_thread_send_msg(q->q.group->thread, exec_range, q), 0);
	assert_int_equal(delete_subsys(NQN8), 0);
	assert_true(wait_until(&q->nfini, 1));
	assert_true(wait_until(&a->nfini, 1));
	for (int i = 0; i < 8; i++)
		assert_int_equal(atomic_load(&q->reqs[i].ncompl), 1);
	free(q);
	free(a);
	c.in[0] = "nvmf_u0";
	run_main(uring_del_fn, &c);
	assert_int_equal(c.rc, 0);
	unlink(path);
}

#define NQN9 "nqn.2016-06.io.spdk:cnode9"

/* A connection reaches an NVM subsystem only through one of its listeners. */
static void test_connect_listener_check(void **state)
{
	struct tq *t, *a;
	struct nvme_cpl cpl;

	(void)state;
	assert_int_equal(create_subsys(NQN9, true), 0);
	assert_int_equal(listener(NQN9, "10.1.1.1", "4420", true), 0);
	assert_int_equal(listener(NQN9, "0.0.0.0", "4430", true), 0);
	assert_int_equal(listener(NQN9, "fe80::0001", "4440", true), 0);
	set_local("10.1.1.1", "4420");
	admin_connect(&a, NQN9, HOSTNQN, 0);
	tq_close(a);
	set_local("10.1.1.7", "4430");	/* wildcard listener */
	admin_connect(&a, NQN9, HOSTNQN, 0);
	tq_close(a);
	set_local("fe80::1", "4440");	/* same address, other spelling */
	admin_connect(&a, NQN9, HOSTNQN, 0);
	tq_close(a);
	set_local("10.1.1.2", "4420");
	t = tq_new();
	assert_int_equal(connect_q(t, 0, 31, 0xFFFF, NQN9, HOSTNQN, 0, 0, &cpl),
			 ST(1, NVME_SC_CONNECT_INVALID_PARAMETERS));
	assert_int_equal(cpl.cdw0, 256u | (1u << 16));
	tq_close(t);
	set_local("10.1.1.1", "4421");
	t = tq_new();
	assert_int_equal(connect_q(t, 0, 31, 0xFFFF, NQN9, HOSTNQN, 0, 0, &cpl),
			 ST(1, NVME_SC_CONNECT_INVALID_PARAMETERS));
	/* the discovery subsystem answers on any listener */
	assert_int_equal(connect_q(t, 0, 31, 0xFFFF, NVME_DISC_SUBSYS_NQN, HOSTNQN, 0, 0, &cpl), 0);
	tq_close(t);
	set_local(NULL, NULL);
	assert_int_equal(delete_subsys(NQN9), 0);
}

/* ------------------------------------------------------------------- RPC */

static void rpc_cb(void *ctx, const json_t *result, int code, const char *msg)
{
	struct call *c = ctx;

	c->rc = code;
	snprintf(c->err, sizeof(c->err), "%s", msg ? msg : "");
	c->result = result ? json_deep_copy(result) : NULL;
	call_done(c);
}

static void rpc_fn(struct call *c)
{
	json_error_t e;
	json_t *p = c->in[1] ? json_loads(c->in[1], 0, &e) : NULL;

	dbk_rpc_call_local(c->in[0], p, rpc_cb, c);
	json_decref(p);
}

static int rpc(const char *method, const char *params, json_t **result)
{
	struct call c = {0};

	c.in[0] = method;
	c.in[1] = params;
	run_main(rpc_fn, &c);
	if (result)
		*result = c.result;
	else
		json_decref(c.result);
	if (c.rc)
		fprintf(stderr, "  %s -> %d %s\n", method, c.rc, c.err);
	return c.rc;
}

static void config_fn(struct call *c)
{
	c->result = json_array();
	dbk_nvmf_write_config_json(c->result);
	call_done(c);
}

static void test_rpc(void **state)
{
	json_t *r;
	const char *n = "\"nqn\":\"nqn.2016-06.io.spdk:rpc1\"";
	char p[1024];

	(void)state;
	malloc_create("nvmf_r0", 64, 512);
	assert_int_equal(rpc("nvmf_create_transport", "{\"trtype\":\"TEST\"}", NULL), -EEXIST);
	assert_int_equal(rpc("nvmf_create_transport", "{\"trtype\":\"FOO\"}", NULL), -EINVAL);
	assert_int_equal(rpc("nvmf_create_transport", "{}", NULL), DBK_JSONRPC_INVALID_PARAMS);
	assert_int_equal(rpc("nvmf_get_transports", NULL, &r), 0);
	assert_true(json_array_size(r) >= 1);
	json_t *t0 = NULL;

	for (size_t i = 0; i < json_array_size(r); i++)
		if (strcmp(json_string_value(json_object_get(json_array_get(r, i), "trtype")), "TEST") == 0)
			t0 = json_array_get(r, i);
	assert_non_null(t0);
	assert_int_equal(json_integer_value(json_object_get(t0, "max_io_qpairs_per_ctrlr")), 3);
	assert_int_equal(json_integer_value(json_object_get(t0, "max_queue_depth")), 128);
	assert_non_null(json_object_get(t0, "abort_timeout_sec"));
	json_decref(r);

	snprintf(p, sizeof(p), "{%s, \"serial_number\":\"SPDK001\", \"model_number\":\"M\", \"max_namespaces\":8}", n);
	assert_int_equal(rpc("nvmf_create_subsystem", p, &r), 0);
	assert_true(json_is_true(r));
	json_decref(r);
	assert_int_equal(rpc("nvmf_create_subsystem", p, NULL), -EEXIST);
	assert_int_equal(rpc("nvmf_create_subsystem", "{\"nqn\":\"nqn.x\"}", NULL), -EINVAL);
	assert_int_equal(rpc("nvmf_create_subsystem",
			     "{\"nqn\":\"nqn.2016-06.io.spdk:rpc2\",\"serial_number\":\"012345678901234567890\"}", NULL),
			 -EINVAL);
	snprintf(p, sizeof(p), "{%s, \"namespace\":{\"bdev_name\":\"nvmf_nope\"}}", n);
	assert_int_equal(rpc("nvmf_subsystem_add_ns", p, NULL), -ENODEV);
	snprintf(p, sizeof(p),
		 "{%s, \"namespace\":{\"bdev_name\":\"nvmf_r0\", \"nsid\":4, \"nguid\":\"000102030405060708090A0B0C0D0E0F\","
		 "\"uuid\":\"6b5b7c8e-9d0a-4b1c-8d2e-3f4a5b6c7d8e\"}}", n);
	assert_int_equal(rpc("nvmf_subsystem_add_ns", p, &r), 0);
	assert_int_equal(json_integer_value(r), 4);
	json_decref(r);
	snprintf(p, sizeof(p), "{%s, \"namespace\":{\"bdev_name\":\"nvmf_r0\", \"nguid\":\"xyz\"}}", n);
	assert_int_equal(rpc("nvmf_subsystem_add_ns", p, NULL), -EINVAL);
	snprintf(p, sizeof(p), "{%s, \"host\":\"%s\"}", n, HOSTNQN);
	assert_int_equal(rpc("nvmf_subsystem_add_host", p, NULL), 0);
	snprintf(p, sizeof(p),
		 "{%s, \"listen_address\":{\"trtype\":\"test\",\"adrfam\":\"ipv4\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"4420\"}}",
		 n);
	assert_int_equal(rpc("nvmf_subsystem_add_listener", p, NULL), 0);
	assert_int_equal(rpc("nvmf_subsystem_add_listener", p, NULL), -EEXIST);
	snprintf(p, sizeof(p),
		 "{%s, \"listen_address\":{\"trtype\":\"tcpx\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"4420\"}}", n);
	assert_int_equal(rpc("nvmf_subsystem_add_listener", p, NULL), -EINVAL);
	snprintf(p, sizeof(p),
		 "{%s, \"listen_address\":{\"trtype\":\"TEST\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"1\"}}", n);
	assert_int_equal(rpc("nvmf_subsystem_add_listener", p, NULL), -EADDRINUSE);
	snprintf(p, sizeof(p),
		 "{\"nqn\":\"discovery\", \"listen_address\":{\"trtype\":\"TEST\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"8009\"}}");
	assert_int_equal(rpc("nvmf_subsystem_add_listener", p, NULL), 0);

	assert_int_equal(rpc("nvmf_get_subsystems", "{\"nqn\":\"nqn.2016-06.io.spdk:rpc1\"}", &r), 0);
	json_t *s = json_array_get(r, 0);

	assert_string_equal(json_string_value(json_object_get(s, "subtype")), "NVMe");
	assert_string_equal(json_string_value(json_object_get(s, "serial_number")), "SPDK001");
	assert_int_equal(json_integer_value(json_object_get(s, "max_namespaces")), 8);
	assert_false(json_is_true(json_object_get(s, "allow_any_host")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(s, "hosts"), 0), "nqn")),
			    HOSTNQN);
	json_t *la = json_array_get(json_object_get(s, "listen_addresses"), 0);

	assert_string_equal(json_string_value(json_object_get(la, "trtype")), "TEST");
	assert_string_equal(json_string_value(json_object_get(la, "adrfam")), "IPv4");
	assert_string_equal(json_string_value(json_object_get(la, "trsvcid")), "4420");
	json_t *ns = json_array_get(json_object_get(s, "namespaces"), 0);

	assert_int_equal(json_integer_value(json_object_get(ns, "nsid")), 4);
	assert_string_equal(json_string_value(json_object_get(ns, "bdev_name")), "nvmf_r0");
	assert_string_equal(json_string_value(json_object_get(ns, "nguid")), "000102030405060708090A0B0C0D0E0F");
	assert_string_equal(json_string_value(json_object_get(ns, "uuid")), "6b5b7c8e-9d0a-4b1c-8d2e-3f4a5b6c7d8e");
	json_decref(r);
	assert_int_equal(rpc("nvmf_get_subsystems", NULL, &r), 0);
	assert_string_equal(json_string_value(json_object_get(json_array_get(r, 0), "subtype")), "Discovery");
	json_decref(r);
	assert_int_equal(rpc("nvmf_get_subsystems", "{\"nqn\":\"nqn.2016-06.io.spdk:none\"}", NULL), -ENOENT);

	/* controllers and qpairs */
	struct tq *a;

	set_local("127.0.0.1", "4420");
	admin_connect(&a, "nqn.2016-06.io.spdk:rpc1", HOSTNQN, 0);
	snprintf(p, sizeof(p), "{%s}", n);
	assert_int_equal(rpc("nvmf_subsystem_get_controllers", p, &r), 0);
	assert_int_equal(json_array_size(r), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(r, 0), "hostnqn")), HOSTNQN);
	json_decref(r);
	assert_int_equal(rpc("nvmf_subsystem_get_qpairs", p, &r), 0);
	assert_int_equal(json_array_size(r), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "qid")), 0);
	assert_string_equal(json_string_value(json_object_get(json_array_get(r, 0), "state")), "active");
	json_decref(r);
	assert_int_equal(rpc("nvmf_subsystem_get_listeners", p, &r), 0);
	assert_int_equal(json_array_size(r), 1);
	json_decref(r);
	assert_int_equal(rpc("nvmf_get_stats", NULL, &r), 0);
	assert_int_equal(json_array_size(json_object_get(r, "poll_groups")), 2);
	json_int_t cur = 0;

	for (size_t i = 0; i < 2; i++)
		cur += json_integer_value(json_object_get(json_array_get(json_object_get(r, "poll_groups"), i),
							  "current_admin_qpairs"));
	assert_int_equal(cur, 1);
	json_decref(r);

	/* config: rebuild commands, identities included */
	struct call c = {0};

	run_main(config_fn, &c);
	char *dump = json_dumps(c.result, JSON_COMPACT);

	assert_non_null(strstr(dump, "\"method\":\"nvmf_create_transport\""));
	assert_non_null(strstr(dump, "\"nguid\":\"000102030405060708090A0B0C0D0E0F\""));
	assert_non_null(strstr(dump, "\"uuid\":\"6b5b7c8e-9d0a-4b1c-8d2e-3f4a5b6c7d8e\""));
	assert_non_null(strstr(dump, "\"method\":\"nvmf_subsystem_add_host\""));
	assert_non_null(strstr(dump, "\"nqn\":\"discovery\""));
	assert_non_null(strstr(dump, "\"trsvcid\":\"8009\""));
	free(dump);
	/* every entry replays through its own RPC method name */
	for (size_t i = 0; i < json_array_size(c.result); i++)
		assert_non_null(dbk_rpc_find_method(json_string_value(json_object_get(json_array_get(c.result, i),
										      "method"))));
	json_decref(c.result);

	snprintf(p, sizeof(p),
		 "{%s, \"ana_state\":\"optimized\", \"listen_address\":{\"trtype\":\"TEST\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"4420\"}}",
		 n);
	assert_int_equal(rpc("nvmf_subsystem_listener_set_ana_state", p, NULL), 0);
	snprintf(p, sizeof(p),
		 "{%s, \"ana_state\":\"optimized\", \"listen_address\":{\"trtype\":\"TEST\",\"traddr\":\"127.0.0.2\",\"trsvcid\":\"4420\"}}",
		 n);
	assert_int_equal(rpc("nvmf_subsystem_listener_set_ana_state", p, NULL), -ENOENT);
	/* removing the listener a controller came in through disconnects it */
	struct tq *b;

	admin_connect(&b, "nqn.2016-06.io.spdk:rpc1", HOSTNQN, 0);
	snprintf(p, sizeof(p),
		 "{%s, \"listen_address\":{\"trtype\":\"TEST\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"4420\"}}", n);
	assert_int_equal(rpc("nvmf_subsystem_remove_listener", p, NULL), 0);
	assert_true(wait_until(&a->nfini, 1));
	assert_true(wait_until(&b->nfini, 1));
	free(a);
	free(b);
	set_local(NULL, NULL);
	/* removing a host disconnects its controllers */
	admin_connect(&a, "nqn.2016-06.io.spdk:rpc1", HOSTNQN, 0);
	snprintf(p, sizeof(p), "{%s, \"host\":\"%s\"}", n, HOSTNQN);
	assert_int_equal(rpc("nvmf_subsystem_remove_host", p, NULL), 0);
	assert_true(wait_until(&a->nfini, 1));	/* its controller was disconnected */
	free(a);
	assert_int_equal(rpc("nvmf_subsystem_remove_host", p, NULL), -ENOENT);
	snprintf(p, sizeof(p), "{%s, \"allow_any_host\":true}", n);
	assert_int_equal(rpc("nvmf_subsystem_allow_any_host", p, NULL), 0);
	snprintf(p, sizeof(p), "{%s, \"nsid\":4}", n);
	assert_int_equal(rpc("nvmf_subsystem_remove_ns", p, NULL), 0);
	assert_int_equal(rpc("nvmf_subsystem_remove_ns", p, NULL), -ENOENT);
	/* only a UUID given: the NGUID follows it */
	snprintf(p, sizeof(p),
		 "{%s, \"namespace\":{\"bdev_name\":\"nvmf_r0\", \"uuid\":\"0a0b0c0d-0102-0304-0506-0708090a0b0c\"}}", n);
	assert_int_equal(rpc("nvmf_subsystem_add_ns", p, &r), 0);
	assert_int_equal(json_integer_value(r), 1);
	json_decref(r);
	assert_int_equal(rpc("nvmf_get_subsystems", "{\"nqn\":\"nqn.2016-06.io.spdk:rpc1\"}", &r), 0);
	ns = json_array_get(json_object_get(json_array_get(r, 0), "namespaces"), 0);
	assert_string_equal(json_string_value(json_object_get(ns, "nguid")), "0A0B0C0D0102030405060708090A0B0C");
	json_decref(r);
	snprintf(p, sizeof(p), "{%s, \"nsid\":1}", n);
	assert_int_equal(rpc("nvmf_subsystem_remove_ns", p, NULL), 0);
	snprintf(p, sizeof(p),
		 "{\"nqn\":\"discovery\", \"listen_address\":{\"trtype\":\"TEST\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"8009\"}}");
	assert_int_equal(rpc("nvmf_subsystem_remove_listener", p, NULL), 0);
	snprintf(p, sizeof(p), "{%s}", n);
	assert_int_equal(rpc("nvmf_delete_subsystem", p, NULL), 0);
	assert_int_equal(rpc("nvmf_delete_subsystem", p, NULL), -ENOENT);
	/* cntlid range: one controller fits, the next is refused as busy */
	assert_int_equal(rpc("nvmf_create_subsystem",
			     "{\"nqn\":\"nqn.2016-06.io.spdk:rpc3\",\"allow_any_host\":true,\"min_cntlid\":7,\"max_cntlid\":7}",
			     NULL), 0);
	assert_int_equal(rpc("nvmf_create_subsystem",
			     "{\"nqn\":\"nqn.2016-06.io.spdk:rpc4\",\"min_cntlid\":9,\"max_cntlid\":8}", NULL), -EINVAL);
	assert_int_equal(admin_connect(&a, "nqn.2016-06.io.spdk:rpc3", HOSTNQN, 0), 7);
	b = tq_new();
	struct nvme_cpl cpl;

	assert_int_equal(connect_q(b, 0, 31, 0xFFFF, "nqn.2016-06.io.spdk:rpc3", HOSTNQN, 0, 0, &cpl),
			 ST(1, NVME_SC_CONNECT_CONTROLLER_BUSY));
	tq_close(b);
	tq_close(a);
	for (int i = 0; i < 1000 && ctrlr_count("nqn.2016-06.io.spdk:rpc3") != 0; i++)
		usleep(1000);
	assert_int_equal(admin_connect(&a, "nqn.2016-06.io.spdk:rpc3", HOSTNQN, 0), 7);	/* freed, reused */
	tq_close(a);
	assert_int_equal(delete_subsys("nqn.2016-06.io.spdk:rpc3"), 0);
	malloc_delete("nvmf_r0");
}

static int group_teardown(void **state)
{
	struct call c = {0};
	struct tq *a, *q;
	struct nvme_cmd aer;
	uint16_t cntlid;

	(void)state;
	/* the target stops with a live controller, a held AER and a namespace */
	malloc_create("nvmf_fini0", 64, 512);
	assert_int_equal(create_subsys("nqn.2016-06.io.spdk:fini", true), 0);
	assert_int_equal(add_ns("nqn.2016-06.io.spdk:fini", "nvmf_fini0", 0), 1);
	assert_int_equal(listener("nqn.2016-06.io.spdk:fini", "10.9.9.9", "4420", true), 0);
	cntlid = admin_connect(&a, "nqn.2016-06.io.spdk:fini", HOSTNQN, 10000);
	q = io_connect(cntlid, "nqn.2016-06.io.spdk:fini", 1);
	memset(&aer, 0, sizeof(aer));
	aer.opc = NVME_OPC_ASYNC_EVENT_REQUEST;
	submit(a, 1, &aer, DBK_NVMF_XFER_NONE, NULL, 0);
	int stops = atomic_load(&g_stop_listens);

	run_main(fini_fn, &c);
	assert_int_equal(atomic_load(&a->nfini), 1);
	assert_int_equal(atomic_load(&q->nfini), 1);
	assert_int_equal(atomic_load(&a->reqs[1].ncompl), 1);
	assert_int_equal(atomic_load(&g_stop_listens) - stops, 1);
	free(a);
	free(q);
	run_main(stop_fn, &c);
	pthread_join(g_reactor_thread, NULL);
	dbk_reactors_fini();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nqn_validation),
		cmocka_unit_test(test_connect_and_properties),
		cmocka_unit_test(test_namespaces_and_io),
		cmocka_unit_test(test_discovery),
		cmocka_unit_test(test_features_aer),
		cmocka_unit_test(test_keep_alive_expiry),
		cmocka_unit_test(test_disconnect_inflight_and_delete),
		cmocka_unit_test(test_inflight_async_bdev),
		cmocka_unit_test(test_connect_listener_check),
		cmocka_unit_test(test_rpc),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
