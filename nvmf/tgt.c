/*
 * The target: transports, poll groups (one per reactor), listeners, qpair
 * placement, request dispatch and qpair disconnect, init and fini.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nvmf/nvmf_internal.h"
#include "nvmf/referral.h"
#include "util/log.h"

struct nvmf_tgt g_nvmf_tgt;

/* --------------------------------------------------------- known transports */

#define MAX_KNOWN_OPS 8
static const struct dbk_nvmf_transport_ops *g_known_ops[MAX_KNOWN_OPS];
static int g_num_known_ops;

static void known_ops_init(void)
{
#ifdef DBK_HAVE_NVMF_TCP
	static bool done;

	if (!done) {
		done = true;
		dbk_nvmf_transport_register(&dbk_nvmf_tcp_transport_ops);
	}
#endif
}

int dbk_nvmf_transport_register(const struct dbk_nvmf_transport_ops *ops)
{
	for (int i = 0; i < g_num_known_ops; i++) {
		if (g_known_ops[i] == ops)
			return 0;
		if (strcasecmp(g_known_ops[i]->name, ops->name) == 0)
			return -EEXIST;
	}
	if (g_num_known_ops == MAX_KNOWN_OPS)
		return -ENOMEM;
	g_known_ops[g_num_known_ops++] = ops;
	return 0;
}

const struct dbk_nvmf_transport_ops *dbk_nvmf_transport_ops_find(const char *trtype)
{
	known_ops_init();
	for (int i = 0; i < g_num_known_ops; i++)
		if (trtype && strcasecmp(g_known_ops[i]->name, trtype) == 0)
			return g_known_ops[i];
	return NULL;
}

struct dbk_nvmf_transport *dbk_nvmf_tgt_find_transport(const char *trtype)
{
	for (int i = 0; i < g_nvmf_tgt.num_transports; i++) {
		struct dbk_nvmf_transport *t = g_nvmf_tgt.transports[i];

		if (t && trtype && strcasecmp(t->ops->name, trtype) == 0)
			return t;
	}
	return NULL;
}

int dbk_nvmf_tgt_num_transports(void)
{
	return g_nvmf_tgt.num_transports;
}

struct dbk_nvmf_transport *dbk_nvmf_tgt_transport_at(int idx)
{
	return idx >= 0 && idx < g_nvmf_tgt.num_transports ? g_nvmf_tgt.transports[idx] : NULL;
}

int nvmf_transport_index(const struct dbk_nvmf_transport *t)
{
	for (int i = 0; i < g_nvmf_tgt.num_transports; i++)
		if (g_nvmf_tgt.transports[i] == t)
			return i;
	return -1;
}

json_t *dbk_nvmf_transport_json(struct dbk_nvmf_transport *t)
{
	const struct dbk_nvmf_transport_opts *o = &t->opts;
	json_t *obj = json_object();

	json_object_set_new(obj, "trtype", json_string(t->ops->name));
	json_object_set_new(obj, "max_queue_depth", json_integer(o->max_queue_depth));
	json_object_set_new(obj, "max_io_qpairs_per_ctrlr", json_integer(o->max_qpairs_per_ctrlr - 1));
	json_object_set_new(obj, "in_capsule_data_size", json_integer(o->in_capsule_data_size));
	json_object_set_new(obj, "max_io_size", json_integer(o->max_io_size));
	json_object_set_new(obj, "io_unit_size", json_integer(o->io_unit_size));
	json_object_set_new(obj, "max_aq_depth", json_integer(o->max_aq_depth));
	json_object_set_new(obj, "num_shared_buffers", json_integer(o->num_shared_buffers));
	json_object_set_new(obj, "buf_cache_size", json_integer(o->buf_cache_size));
	json_object_set_new(obj, "zcopy", json_boolean(o->zcopy));
	json_object_set_new(obj, "c2h_success", json_boolean(o->c2h_success));
	json_object_set_new(obj, "sock_priority", json_integer(o->sock_priority));
	json_object_set_new(obj, "abort_timeout_sec", json_integer(o->abort_timeout_sec));
	if (o->congestion_control[0])
		json_object_set_new(obj, "congestion_control", json_string(o->congestion_control));
	if (t->ops->dump_opts_json)
		t->ops->dump_opts_json(t, obj);
	return obj;
}

/* ------------------------------------------------------- transport creation */

struct create_transport_ctx {
	struct dbk_nvmf_transport *t;
	int idx;
	bool failed;
	bool destroying;
	dbk_nvmf_done_cb cb;
	void *ctx;
	char err[256];
};

static void ct_destroy_group(void *arg)
{
	struct create_transport_ctx *c = arg;
	struct dbk_nvmf_poll_group *g = nvmf_group_of_thread();

	if (g && g->tgroups[c->idx]) {
		c->t->ops->poll_group_destroy(g->tgroups[c->idx]);
		g->tgroups[c->idx] = NULL;
	}
}

static void ct_destroy_done(void *arg)
{
	struct create_transport_ctx *c = arg;

	c->t->ops->destroy(c->t);
	g_nvmf_tgt.transports[c->idx] = NULL;
	if (c->idx == g_nvmf_tgt.num_transports - 1)
		g_nvmf_tgt.num_transports--;
	c->cb(c->ctx, -ENOMEM, c->err);
	free(c);
}

static void ct_create_group(void *arg)
{
	struct create_transport_ctx *c = arg;
	struct dbk_nvmf_poll_group *g = nvmf_group_of_thread();

	if (!g)
		return;
	g->tgroups[c->idx] = c->t->ops->poll_group_create(c->t);
	if (!g->tgroups[c->idx])
		c->failed = true;
}

static void ct_create_done(void *arg)
{
	struct create_transport_ctx *c = arg;

	if (c->failed) {
		snprintf(c->err, sizeof(c->err), "transport %s: cannot create a poll group", c->t->ops->name);
		if (dbk_for_each_thread(ct_destroy_group, c, ct_destroy_done) != 0)
			ct_destroy_done(c);
		return;
	}
	DBK_NOTICELOG("NVMe-oF transport %s created", c->t->ops->name);
	/* the transport is visible since its slot was taken */
	c->cb(c->ctx, 0, NULL);
	free(c);
}

void dbk_nvmf_tgt_create_transport(const char *trtype, const struct dbk_nvmf_transport_opts *opts,
				   dbk_nvmf_done_cb cb, void *ctx)
{
	const struct dbk_nvmf_transport_ops *ops = dbk_nvmf_transport_ops_find(trtype);
	struct create_transport_ctx *c;
	char err[256] = "";
	int rc = 0, idx = -1;

	if (!g_nvmf_tgt.running || g_nvmf_tgt.stopping) {
		cb(ctx, -ENODEV, "NVMe-oF target is not running");
		return;
	}
	if (!ops) {
		snprintf(err, sizeof(err), "unknown transport type '%s' (supported: TCP)", trtype ? trtype : "");
		cb(ctx, -EINVAL, err);
		return;
	}
	if (dbk_nvmf_tgt_find_transport(ops->name)) {
		snprintf(err, sizeof(err), "transport %s already exists", ops->name);
		cb(ctx, -EEXIST, err);
		return;
	}
	for (int i = 0; i < DBK_NVMF_MAX_TRANSPORTS; i++) {
		if (i >= g_nvmf_tgt.num_transports || g_nvmf_tgt.transports[i] == NULL) {
			idx = i;
			break;
		}
	}
	if (idx < 0) {
		cb(ctx, -ENOSPC, "too many transports");
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		cb(ctx, -ENOMEM, "out of memory");
		return;
	}
	c->t = ops->create(opts, &rc, err, sizeof(err));
	if (!c->t) {
		free(c);
		cb(ctx, rc ? rc : -EINVAL, err[0] ? err : "cannot create the transport");
		return;
	}
	c->t->ops = ops;
	c->idx = idx;
	c->cb = cb;
	c->ctx = ctx;
	g_nvmf_tgt.transports[idx] = c->t;
	if (idx >= g_nvmf_tgt.num_transports)
		g_nvmf_tgt.num_transports = idx + 1;
	if (dbk_for_each_thread(ct_create_group, c, ct_create_done) != 0) {
		c->failed = true;
		ct_create_done(c);
	}
}

/* ---------------------------------------------------------------- listeners */

bool nvmf_listen_addr_equal(const struct dbk_nvmf_listen_addr *a, const struct dbk_nvmf_listen_addr *b)
{
	return strcasecmp(a->trtype, b->trtype) == 0 && strcasecmp(a->adrfam, b->adrfam) == 0 &&
	       strcmp(a->traddr, b->traddr) == 0 && strcmp(a->trsvcid, b->trsvcid) == 0;
}

struct nvmf_listener *nvmf_listener_get(const struct dbk_nvmf_listen_addr *addr, char *err, size_t errlen, int *rc)
{
	struct dbk_nvmf_transport *t = dbk_nvmf_tgt_find_transport(addr->trtype);
	struct nvmf_listener *l;

	if (!t) {
		snprintf(err, errlen, "transport '%s' does not exist: create it first with nvmf_create_transport",
			 addr->trtype);
		*rc = -ENODEV;
		return NULL;
	}
	for (l = g_nvmf_tgt.listeners; l; l = l->next) {
		if (nvmf_listen_addr_equal(&l->addr, addr)) {
			if (l->addr.secure_channel != addr->secure_channel) {
				/* One socket per address: TLS for every subsystem on it, or for none. */
				snprintf(err, errlen, "%s %s:%s is already a listener %s a secure channel (--secure-channel)",
					 addr->trtype, addr->traddr, addr->trsvcid,
					 l->addr.secure_channel ? "with" : "without");
				*rc = -EINVAL;
				return NULL;
			}
			l->refcnt++;
			return l;
		}
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		*rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	*rc = t->ops->listen(t, addr);
	if (*rc) {
		snprintf(err, errlen, "cannot listen on %s %s:%s: %s", addr->trtype, addr->traddr, addr->trsvcid,
			 strerror(-*rc));
		free(l);
		return NULL;
	}
	DBK_INFOLOG("NVMe/%s listener %s port %s added", addr->trtype, addr->traddr, addr->trsvcid);
	l->addr = *addr;
	l->transport = t;
	l->refcnt = 1;
	l->portid = ++g_nvmf_tgt.next_portid;
	l->next = g_nvmf_tgt.listeners;
	g_nvmf_tgt.listeners = l;
	return l;
}

void nvmf_listener_put(struct nvmf_listener *l)
{
	struct nvmf_listener **pp;

	if (--l->refcnt > 0)
		return;
	for (pp = &g_nvmf_tgt.listeners; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	if (!l->stopped)
		l->transport->ops->stop_listen(l->transport, &l->addr);
	free(l);
}

/* -------------------------------------------------------------- poll groups */

struct dbk_nvmf_poll_group *nvmf_group_of_thread(void)
{
	struct dbk_thread *t = dbk_get_thread();
	int idx;

	if (!t || !g_nvmf_tgt.groups)
		return NULL;
	idx = dbk_thread_get_index(t);
	if (idx < 0 || idx >= g_nvmf_tgt.num_groups)
		return NULL;
	return &g_nvmf_tgt.groups[idx];
}

bool dbk_nvmf_tgt_is_running(void)
{
	return g_nvmf_tgt.running && !g_nvmf_tgt.stopping;
}

int dbk_nvmf_tgt_init(void)
{
	int n = dbk_reactor_count();
	int rc;

	if (g_nvmf_tgt.running)
		return -EALREADY;
	if (!dbk_is_main_thread() || n <= 0)
		return -EINVAL;
	known_ops_init();
	memset(&g_nvmf_tgt, 0, sizeof(g_nvmf_tgt));
	g_nvmf_tgt.groups = calloc((size_t)n, sizeof(*g_nvmf_tgt.groups));
	if (!g_nvmf_tgt.groups)
		return -ENOMEM;
	g_nvmf_tgt.num_groups = n;
	for (int i = 0; i < n; i++) {
		g_nvmf_tgt.groups[i].idx = i;
		g_nvmf_tgt.groups[i].thread = dbk_reactor_thread(i);
	}
	g_nvmf_tgt.genctr = 1;
	rc = nvmf_subsystems_init();
	if (rc) {
		free(g_nvmf_tgt.groups);
		memset(&g_nvmf_tgt, 0, sizeof(g_nvmf_tgt));
		return rc;
	}
	g_nvmf_tgt.running = true;
	return 0;
}

/* ------------------------------------------------------------------- qpairs */

struct nvmf_qpair_priv {
	bool continue_pending;
};

void nvmf_qpair_list_remove(struct dbk_nvmf_poll_group *g, struct dbk_nvmf_qpair *q)
{
	struct dbk_nvmf_qpair **pp;

	for (pp = &g->qpairs; *pp; pp = &(*pp)->core_next) {
		if (*pp == q) {
			*pp = q->core_next;
			q->core_next = NULL;
			return;
		}
	}
}

static void qpair_release(struct dbk_nvmf_qpair *q)
{
	struct dbk_nvmf_poll_group *g = q->group;

	q->core_state = NVMF_QPAIR_DONE;
	if (g)
		nvmf_qpair_list_remove(g, q);
	free(q->core_ctx);
	q->core_ctx = NULL;
	atomic_fetch_sub_explicit(&g_nvmf_tgt.live_qpairs, 1, memory_order_acq_rel);
	q->transport->ops->qpair_fini(q);
}

static void qpair_add_msg(void *arg)
{
	struct dbk_nvmf_qpair *q = arg;
	struct dbk_nvmf_poll_group *g = q->group;
	int rc;

	q->core_next = g->qpairs;
	g->qpairs = q;
	if (!q->tgroup || g_nvmf_tgt.stopping) {
		qpair_release(q);
		return;
	}
	q->core_state = NVMF_QPAIR_ACTIVE;
	rc = q->transport->ops->poll_group_add(q->tgroup, q);
	if (rc) {
		DBK_ERRLOG("poll_group_add failed: %d", rc);
		/* if the transport already started a disconnect, that path finishes it */
		if (q->core_state == NVMF_QPAIR_ACTIVE)
			qpair_release(q);
	}
}

void dbk_nvmf_tgt_new_qpair(struct dbk_nvmf_qpair *q)
{
	struct dbk_nvmf_poll_group *g;
	int tidx;

	atomic_fetch_add_explicit(&g_nvmf_tgt.live_qpairs, 1, memory_order_acq_rel);
	q->core_state = NVMF_QPAIR_UNINIT;
	q->core_outstanding = 0;
	q->core_next = NULL;
	q->ctrlr = NULL;
	q->core_ctx = calloc(1, sizeof(struct nvmf_qpair_priv));
	tidx = nvmf_transport_index(q->transport);
	if (!g_nvmf_tgt.running || g_nvmf_tgt.stopping || !q->core_ctx || tidx < 0) {
		q->group = NULL;
		qpair_release(q);
		return;
	}
	q->core_id = ++g_nvmf_tgt.next_qpair_id;
	g = &g_nvmf_tgt.groups[g_nvmf_tgt.rr_next++ % (uint32_t)g_nvmf_tgt.num_groups];
	q->group = g;
	q->tgroup = g->tgroups[tidx];
	if (dbk_thread_send_msg(g->thread, qpair_add_msg, q) != 0) {
		q->group = NULL;
		qpair_release(q);
	}
}

bool dbk_nvmf_qpair_is_active(const struct dbk_nvmf_qpair *q)
{
	return q->core_state == NVMF_QPAIR_ACTIVE;
}

static void qpair_detached(struct dbk_nvmf_qpair *q)
{
	qpair_release(q);
}

static void qpair_disconnect_continue(void *arg)
{
	struct dbk_nvmf_qpair *q = arg;
	struct nvmf_qpair_priv *p = q->core_ctx;

	p->continue_pending = false;
	if (q->core_state != NVMF_QPAIR_DISCONNECTING || q->core_outstanding > 0)
		return;
	q->core_state = NVMF_QPAIR_DETACHING;
	if (q->ctrlr)
		nvmf_ctrlr_qpair_detach(q, qpair_detached);
	else
		qpair_release(q);
}

static void schedule_continue(struct dbk_nvmf_qpair *q)
{
	struct nvmf_qpair_priv *p = q->core_ctx;

	if (p->continue_pending)
		return;
	p->continue_pending = true;
	if (dbk_thread_send_msg(dbk_get_thread(), qpair_disconnect_continue, q) != 0) {
		p->continue_pending = false;
		DBK_ERRLOG("cannot schedule qpair disconnect");
	}
}

void dbk_nvmf_qpair_disconnect(struct dbk_nvmf_qpair *q)
{
	if (q->core_state != NVMF_QPAIR_ACTIVE)
		return;
	q->core_state = NVMF_QPAIR_DISCONNECTING;
	if (q->ctrlr && q->qid == 0 && q->ctrlr->admin_qpair == q)
		nvmf_ctrlr_abort_aers(q->ctrlr);
	schedule_continue(q);
}

/* ----------------------------------------------------------------- requests */

void dbk_nvmf_request_complete(struct dbk_nvmf_request *req)
{
	struct dbk_nvmf_qpair *q = req->qpair;

	q->transport->ops->req_complete(req);
	q->core_outstanding--;
	if (q->core_outstanding == 0 && q->core_state == NVMF_QPAIR_DISCONNECTING)
		schedule_continue(q);
}

void dbk_nvmf_request_exec(struct dbk_nvmf_request *req)
{
	struct dbk_nvmf_qpair *q = req->qpair;
	struct nvme_cmd *cmd = req->cmd;

	q->core_outstanding++;
	if (q->core_state != NVMF_QPAIR_ACTIVE) {
		nvmf_req_status(req, NVME_SCT_GENERIC, NVME_SC_ABORTED_SQ_DELETION);
		dbk_nvmf_request_complete(req);
		return;
	}
	if (cmd->opc == NVME_OPC_FABRIC) {
		nvmf_ctrlr_exec_fabrics(req);
		return;
	}
	if (!q->ctrlr) {
		nvmf_req_status(req, NVME_SCT_GENERIC, NVME_SC_COMMAND_SEQUENCE_ERROR);
		dbk_nvmf_request_complete(req);
		return;
	}
	if (q->qid == 0)
		nvmf_ctrlr_exec_admin(req);
	else
		nvmf_io_exec(req);
}

/* ------------------------------------------------------------ data helpers */

size_t nvmf_req_copy_to(struct dbk_nvmf_request *req, size_t off, const void *src, size_t len)
{
	size_t done = 0;

	for (int i = 0; i < req->iovcnt && done < len; i++) {
		size_t l = req->iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		size_t n = l - off < len - done ? l - off : len - done;
		memcpy((char *)req->iov[i].iov_base + off, (const char *)src + done, n);
		done += n;
		off = 0;
	}
	return done;
}

size_t nvmf_req_copy_from(struct dbk_nvmf_request *req, size_t off, void *dst, size_t len)
{
	size_t done = 0;

	for (int i = 0; i < req->iovcnt && done < len; i++) {
		size_t l = req->iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		size_t n = l - off < len - done ? l - off : len - done;
		memcpy((char *)dst + done, (const char *)req->iov[i].iov_base + off, n);
		done += n;
		off = 0;
	}
	return done;
}

void nvmf_req_fill_data(struct dbk_nvmf_request *req, const void *buf, size_t len)
{
	static const uint8_t zeros[4096];
	size_t n = len < req->length ? len : req->length;
	size_t off;

	nvmf_req_copy_to(req, 0, buf, n);
	for (off = n; off < req->length;) {
		size_t c = req->length - off < sizeof(zeros) ? req->length - off : sizeof(zeros);

		nvmf_req_copy_to(req, off, zeros, c);
		off += c;
	}
}

/* --------------------------------------------------------------------- fini */

struct fini_ctx {
	void (*cb)(void *ctx);
	void *ctx;
	struct dbk_poller *poller;
};

static void fini_disconnect_group(void *arg)
{
	struct dbk_nvmf_poll_group *g = nvmf_group_of_thread();
	struct dbk_nvmf_qpair *q, *next;

	(void)arg;
	if (!g)
		return;
	for (q = g->qpairs; q; q = next) {
		next = q->core_next;
		dbk_nvmf_qpair_disconnect(q);
	}
}

static void fini_destroy_group(void *arg)
{
	struct dbk_nvmf_poll_group *g = nvmf_group_of_thread();

	(void)arg;
	if (!g)
		return;
	for (int i = 0; i < g_nvmf_tgt.num_transports; i++) {
		if (g->tgroups[i]) {
			g_nvmf_tgt.transports[i]->ops->poll_group_destroy(g->tgroups[i]);
			g->tgroups[i] = NULL;
		}
	}
}

static void fini_groups_destroyed(void *arg)
{
	struct fini_ctx *f = arg;

	for (int i = 0; i < g_nvmf_tgt.num_transports; i++) {
		if (g_nvmf_tgt.transports[i])
			g_nvmf_tgt.transports[i]->ops->destroy(g_nvmf_tgt.transports[i]);
		g_nvmf_tgt.transports[i] = NULL;
	}
	g_nvmf_tgt.num_transports = 0;
	free(g_nvmf_tgt.groups);
	g_nvmf_tgt.groups = NULL;
	g_nvmf_tgt.num_groups = 0;
	g_nvmf_tgt.running = false;
	g_nvmf_tgt.stopping = false;
	DBK_INFOLOG("NVMe-oF target stopped");
	if (f->cb)
		f->cb(f->ctx);
	free(f);
}

void nvmf_listeners_free_all(void);

static void fini_subsystems_gone(void *arg)
{
	struct fini_ctx *f = arg;

	nvmf_listeners_free_all();
	nvmf_referrals_free();

	if (dbk_for_each_thread(fini_destroy_group, f, fini_groups_destroyed) != 0)
		fini_groups_destroyed(f);
}

static int fini_wait_qpairs(void *arg)
{
	struct fini_ctx *f = arg;

	if (atomic_load_explicit(&g_nvmf_tgt.live_qpairs, memory_order_acquire) > 0)
		return DBK_POLLER_IDLE;
	dbk_poller_unregister(&f->poller);
	nvmf_subsystems_destroy_all(fini_subsystems_gone, f);
	return DBK_POLLER_BUSY;
}

static void fini_qpairs_disconnecting(void *arg)
{
	struct fini_ctx *f = arg;

	f->poller = dbk_poller_register(fini_wait_qpairs, f, 1000, "nvmf_fini");
	if (!f->poller)
		nvmf_subsystems_destroy_all(fini_subsystems_gone, f);
}

void dbk_nvmf_tgt_fini(void (*cb)(void *ctx), void *ctx)
{
	struct fini_ctx *f;
	struct nvmf_listener *l;

	if (!g_nvmf_tgt.running || g_nvmf_tgt.stopping) {
		if (cb)
			cb(ctx);
		return;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		DBK_ERRLOG("out of memory stopping the NVMe-oF target");
		if (cb)
			cb(ctx);
		return;
	}
	f->cb = cb;
	f->ctx = ctx;
	g_nvmf_tgt.stopping = true;
	/* 1. no new connections: stop every listener (subsystems drop their references later) */
	for (l = g_nvmf_tgt.listeners; l; l = l->next) {
		l->transport->ops->stop_listen(l->transport, &l->addr);
		l->stopped = true;
	}
	/* 2. disconnect every qpair; in-flight requests complete first */
	if (dbk_for_each_thread(fini_disconnect_group, f, fini_qpairs_disconnecting) != 0)
		fini_qpairs_disconnecting(f);
}

/* Fini, once subsystems are gone: free the (already stopped) listeners. */
void nvmf_listeners_free_all(void)
{
	struct nvmf_listener *l, *next;

	for (l = g_nvmf_tgt.listeners; l; l = next) {
		next = l->next;
		free(l);
	}
	g_nvmf_tgt.listeners = NULL;
}
