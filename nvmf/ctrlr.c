/*
 * Controllers: Connect, properties, admin commands, features, AERs,
 * keep-alive, Identify, log pages. A controller lives on its admin qpair's
 * reactor; registry lookups run on the main reactor (message round trips).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uuid/uuid.h>

#include "nvmf/ana.h"
#include "nvmf/nvmf_internal.h"
#include "util/log.h"

#define NVMF_VS_1_3 0x00010300u
#define NVMF_CAP_TO 15u	/* 7.5 s */

static inline struct dbk_thread *main_thread(void)
{
	return dbk_reactor_thread(0);
}

static inline struct dbk_thread *req_thread(struct dbk_nvmf_request *req)
{
	return req->qpair->group->thread;
}

static void complete_msg(void *arg)
{
	dbk_nvmf_request_complete(arg);
}

static void complete_status(struct dbk_nvmf_request *req, int sct, int sc)
{
	nvmf_req_status(req, sct, sc);
	dbk_nvmf_request_complete(req);
}

static void send_or_die(struct dbk_thread *t, dbk_msg_fn fn, void *arg)
{
	if (dbk_thread_send_msg(t, fn, arg) != 0) {
		/* Out of memory for a message: nothing sane to do but log; the reactor
		 * message queue is the only path between threads. */
		DBK_ERRLOG("cannot send a message between reactors (out of memory)");
	}
}

bool nvmf_ctrlr_vwc_present(const struct dbk_nvmf_subsystem *s)
{
	for (uint32_t i = 0; i < s->max_namespaces; i++)
		if (nvmf_ns_active(s->ns[i]) && dbk_bdev_has_write_cache(s->ns[i]->bdev))
			return true;
	return false;
}

/* ================================================================= Connect */

struct connect_ctx {
	struct dbk_nvmf_request *req;
	struct dbk_nvmf_qpair *q;
	struct nvmf_connect_data data;
	struct dbk_nvmf_listen_addr local;	/* where the connection came in */
	bool has_local;
	uint16_t qid;
	uint32_t kato;
	struct dbk_nvmf_ctrlr *ctrlr;
	int sct, sc;
	uint32_t dw0;
};

static void connect_fail_msg(void *arg)
{
	struct connect_ctx *c = arg;

	c->req->rsp->cdw0 = c->dw0;
	complete_status(c->req, c->sct, c->sc);
	free(c);
}

static void connect_fail(struct connect_ctx *c, int sct, int sc, uint32_t dw0)
{
	c->sct = sct;
	c->sc = sc;
	c->dw0 = dw0;
	send_or_die(req_thread(c->req), connect_fail_msg, c);
}

static uint32_t invalid_param(uint16_t ipo, bool in_data)
{
	return (uint32_t)ipo | ((uint32_t)(in_data ? 1 : 0) << 16);
}

static int ka_poll(void *arg);

static uint64_t ka_period_us(uint32_t kato_ms)
{
	return (uint64_t)(kato_ms < 1000 ? kato_ms : 1000) * 1000;
}
void nvmf_ctrlr_disconnect_qpairs_local(struct dbk_nvmf_ctrlr *ctrlr, bool admin_too);

static void admin_connected_msg(void *arg)
{
	struct connect_ctx *c = arg;
	struct dbk_nvmf_ctrlr *ctrlr = c->ctrlr;
	struct dbk_nvmf_qpair *q = c->q;

	q->ctrlr = ctrlr;
	ctrlr->last_ka_ns = dbk_get_ns();
	if (ctrlr->kato_ms)
		ctrlr->ka_poller = dbk_poller_register(ka_poll, ctrlr, ka_period_us(ctrlr->kato_ms), "nvmf_ka");
	q->group->admin_qpairs++;
	q->group->current_admin_qpairs++;
	DBK_INFOLOG("%s: controller %u created for %s (qpair %lu)", ctrlr->subsys->nqn, ctrlr->cntlid,
		    ctrlr->hostnqn, (unsigned long)q->core_id);
	c->req->rsp->cdw0 = ctrlr->cntlid;
	complete_status(c->req, 0, 0);
	free(c);
}

static void io_connected_msg(void *arg)
{
	struct connect_ctx *c = arg;
	struct dbk_nvmf_qpair *q = c->q;

	q->ctrlr = c->ctrlr;
	q->group->io_qpairs++;
	q->group->current_io_qpairs++;
	c->req->rsp->cdw0 = c->ctrlr->cntlid;
	complete_status(c->req, 0, 0);
	free(c);
}

static void io_connect_on_ctrlr(void *arg)
{
	struct connect_ctx *c = arg;
	struct dbk_nvmf_ctrlr *ctrlr = c->ctrlr;

	if (ctrlr->destroying || ctrlr->admin_gone) {
		connect_fail(c, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_CONNECT_INVALID_PARAMETERS,
			     invalid_param(offsetof(struct nvmf_connect_data, cntlid), true));
		return;
	}
	if (!(ctrlr->cc & NVME_CC_EN) || !(ctrlr->csts & NVME_CSTS_RDY)) {
		connect_fail(c, NVME_SCT_GENERIC, NVME_SC_COMMAND_SEQUENCE_ERROR, 0);
		return;
	}
	if (c->qid >= ctrlr->max_qpairs || ctrlr->qpairs[c->qid]) {
		connect_fail(c, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_CONNECT_INVALID_PARAMETERS,
			     invalid_param(offsetof(struct nvmf_connect_cmd, qid), false));
		return;
	}
	ctrlr->qpairs[c->qid] = c->q;
	ctrlr->num_qpairs++;
	send_or_die(req_thread(c->req), io_connected_msg, c);
}

static struct dbk_nvmf_subsystem *find_subsys_exact(const char *nqn)
{
	for (struct dbk_nvmf_subsystem *s = g_nvmf_tgt.subsystems; s; s = s->next)
		if (!s->deleting && strcmp(s->nqn, nqn) == 0)
			return s;
	return NULL;
}

static bool cntlid_in_use(const struct dbk_nvmf_subsystem *s, uint16_t id)
{
	for (const struct dbk_nvmf_ctrlr *c = s->ctrlrs; c; c = c->next)
		if (c->cntlid == id)
			return true;
	return false;
}

static uint16_t alloc_cntlid(struct dbk_nvmf_subsystem *s)
{
	uint32_t range = (uint32_t)s->max_cntlid - s->min_cntlid + 1;

	for (uint32_t i = 0; i < range; i++) {
		uint16_t id = s->next_cntlid;

		s->next_cntlid = id >= s->max_cntlid ? s->min_cntlid : (uint16_t)(id + 1);
		if (!cntlid_in_use(s, id))
			return id;
	}
	return 0;
}

/* An address as 16 bytes (IPv4 mapped into IPv6); false if it does not parse. */
static bool addr_bytes(const char *str, uint8_t out[16])
{
	struct in_addr a4;

	if (inet_pton(AF_INET6, str, out) == 1)
		return true;
	if (inet_pton(AF_INET, str, &a4) != 1)
		return false;
	memset(out, 0, 10);
	out[10] = out[11] = 0xFF;
	memcpy(out + 12, &a4, 4);
	return true;
}

static bool addr_is_wildcard(const uint8_t b[16])
{
	static const uint8_t any6[16], any4[16] = { [10] = 0xFF, [11] = 0xFF };

	return memcmp(b, any6, 16) == 0 || memcmp(b, any4, 16) == 0;
}

/*
 * Main: may a connection that came in on local reach subsystem s? (Unparseable addresses are let through.)
 * *match is the subsystem listener it came in on, when one matches.
 */
static bool listener_allowed(const struct dbk_nvmf_subsystem *s, const struct dbk_nvmf_listen_addr *local,
			     struct nvmf_subsys_listener **match)
{
	uint8_t lb[16], cb[16];

	*match = NULL;
	if (s->discovery)
		return true;	/* discovery is served on every listener */
	if (!addr_bytes(local->traddr, cb))
		return true;
	for (const struct nvmf_subsys_listener *sl = s->listeners; sl; sl = sl->next) {
		const struct dbk_nvmf_listen_addr *la = &sl->listener->addr;

		if (strcasecmp(la->trtype, local->trtype) != 0 || strcmp(la->trsvcid, local->trsvcid) != 0)
			continue;
		if (!addr_bytes(la->traddr, lb) || addr_is_wildcard(lb) || memcmp(lb, cb, 16) == 0) {
			*match = (struct nvmf_subsys_listener *)sl;
			return true;
		}
	}
	return false;
}

static void connect_on_main(void *arg)
{
	struct connect_ctx *c = arg;
	struct dbk_nvmf_subsystem *s = find_subsys_exact(c->data.subnqn);
	struct nvmf_subsys_listener *sl = NULL;
	struct dbk_nvmf_ctrlr *ctrlr;
	uint16_t cntlid;

	if (!s || !g_nvmf_tgt.running || g_nvmf_tgt.stopping) {
		DBK_NOTICELOG("connect: unknown subsystem '%s'", c->data.subnqn);
		connect_fail(c, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_CONNECT_INVALID_PARAMETERS,
			     invalid_param(offsetof(struct nvmf_connect_data, subnqn), true));
		return;
	}
	if (c->has_local && !listener_allowed(s, &c->local, &sl)) {
		DBK_NOTICELOG("connect: %s does not listen on %s %s:%s", s->nqn, c->local.trtype, c->local.traddr,
			      c->local.trsvcid);
		connect_fail(c, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_CONNECT_INVALID_PARAMETERS,
			     invalid_param(offsetof(struct nvmf_connect_data, subnqn), true));
		return;
	}
	if (!nvmf_subsystem_host_allowed(s, c->data.hostnqn) || !nvmf_tls_connect_allowed(c->q, s, c->data.hostnqn)) {
		DBK_NOTICELOG("connect: host '%s' not allowed on %s", c->data.hostnqn, s->nqn);
		connect_fail(c, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_CONNECT_INVALID_HOST,
			     invalid_param(offsetof(struct nvmf_connect_data, hostnqn), true));
		return;
	}
	if (c->qid > 0) {
		if (s->discovery) {
			connect_fail(c, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_CONNECT_INVALID_PARAMETERS,
				     invalid_param(offsetof(struct nvmf_connect_cmd, qid), false));
			return;
		}
		for (ctrlr = s->ctrlrs; ctrlr; ctrlr = ctrlr->next)
			if (ctrlr->cntlid == c->data.cntlid)
				break;
		if (!ctrlr || ctrlr->destroying) {
			connect_fail(c, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_CONNECT_INVALID_PARAMETERS,
				     invalid_param(offsetof(struct nvmf_connect_data, cntlid), true));
			return;
		}
		if (strcmp(ctrlr->hostnqn, c->data.hostnqn) != 0) {
			connect_fail(c, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_CONNECT_INVALID_PARAMETERS,
				     invalid_param(offsetof(struct nvmf_connect_data, hostnqn), true));
			return;
		}
		/*
		 * Stricter than SPDK and nvmet (nvmf/COMPAT.md): with an empty HOSTNQN the HOSTID is all that names
		 * the host, and CNTLIDs are easy to guess; another host must not add queues to this controller.
		 */
		if (memcmp(ctrlr->hostid, c->data.hostid, 16) != 0) {
			connect_fail(c, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_CONNECT_INVALID_PARAMETERS,
				     invalid_param(offsetof(struct nvmf_connect_data, hostid), true));
			return;
		}
		c->ctrlr = ctrlr;
		send_or_die(ctrlr->thread, io_connect_on_ctrlr, c);
		return;
	}
	if (c->data.cntlid != 0xFFFF) {
		connect_fail(c, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_CONNECT_INVALID_PARAMETERS,
			     invalid_param(offsetof(struct nvmf_connect_data, cntlid), true));
		return;
	}
	cntlid = alloc_cntlid(s);
	ctrlr = cntlid ? calloc(1, sizeof(*ctrlr)) : NULL;
	if (ctrlr) {
		ctrlr->max_qpairs = c->q->transport->opts.max_qpairs_per_ctrlr;
		if (ctrlr->max_qpairs < 1)
			ctrlr->max_qpairs = 1;
		ctrlr->qpairs = calloc(ctrlr->max_qpairs, sizeof(*ctrlr->qpairs));
		if (!ctrlr->qpairs) {
			free(ctrlr);
			ctrlr = NULL;
		}
	}
	if (!ctrlr) {
		connect_fail(c, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_CONNECT_CONTROLLER_BUSY, 0);
		return;
	}
	ctrlr->subsys = s;
	ctrlr->transport = c->q->transport;
	ctrlr->group = c->q->group;
	ctrlr->thread = c->q->group->thread;
	ctrlr->cntlid = cntlid;
	snprintf(ctrlr->hostnqn, sizeof(ctrlr->hostnqn), "%.223s", c->data.hostnqn);
	memcpy(ctrlr->hostid, c->data.hostid, 16);
	ctrlr->admin_qpair = c->q;
	ctrlr->ana = nvmf_ana_ctrlr_port(s, sl);
	ctrlr->qpairs[0] = c->q;
	ctrlr->num_qpairs = 1;
	ctrlr->kato_ms = c->kato;
	ctrlr->vwc_present = nvmf_ctrlr_vwc_present(s);
	ctrlr->feat.vwc = ctrlr->vwc_present ? 1 : 0;
	ctrlr->feat.temp_threshold = 0x0157;	/* 343 K */
	ctrlr->next = s->ctrlrs;
	s->ctrlrs = ctrlr;
	s->num_ctrlrs++;
	c->ctrlr = ctrlr;
	send_or_die(ctrlr->thread, admin_connected_msg, c);
}

/* Without a HOSTNQN the host's address and HOSTID are what tell an operator which host this is. */
static void log_empty_hostnqn(struct dbk_nvmf_qpair *q, const struct nvmf_connect_data *d)
{
	struct dbk_nvmf_listen_addr peer = {0};
	char hostid[37];

	if (!q->transport->ops->qpair_get_peer_addr || q->transport->ops->qpair_get_peer_addr(q, &peer) != 0)
		snprintf(peer.traddr, sizeof(peer.traddr), "unknown");
	uuid_unparse_lower(d->hostid, hostid);
	DBK_NOTICELOG("connect: host %s:%s (hostid %s) sent an empty HOSTNQN for '%.223s'", peer.traddr,
		      peer.trsvcid, hostid, d->subnqn);
}

static void fabrics_connect(struct dbk_nvmf_request *req)
{
	struct nvmf_connect_cmd *cmd = (struct nvmf_connect_cmd *)req->cmd;
	struct dbk_nvmf_qpair *q = req->qpair;
	const struct dbk_nvmf_transport_opts *o = &q->transport->opts;
	struct connect_ctx *c;

	if (req->xfer != DBK_NVMF_XFER_HOST_TO_CTRLR || req->length < sizeof(struct nvmf_connect_data)) {
		complete_status(req, NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID);
		return;
	}
	if (cmd->recfmt != 0) {
		req->rsp->cdw0 = invalid_param(offsetof(struct nvmf_connect_cmd, recfmt), false);
		complete_status(req, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_CONNECT_INCOMPATIBLE_FORMAT);
		return;
	}
	if (cmd->sqsize == 0 || (cmd->qid == 0 && (uint32_t)cmd->sqsize + 1 > o->max_aq_depth) ||
	    (cmd->qid > 0 && (uint32_t)cmd->sqsize + 1 > o->max_queue_depth)) {
		req->rsp->cdw0 = invalid_param(offsetof(struct nvmf_connect_cmd, sqsize), false);
		complete_status(req, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_CONNECT_INVALID_PARAMETERS);
		return;
	}
	if (cmd->qid >= o->max_qpairs_per_ctrlr) {
		req->rsp->cdw0 = invalid_param(offsetof(struct nvmf_connect_cmd, qid), false);
		complete_status(req, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_CONNECT_INVALID_PARAMETERS);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		complete_status(req, NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);
		return;
	}
	nvmf_req_copy_from(req, 0, &c->data, sizeof(c->data));
	if (strnlen(c->data.subnqn, sizeof(c->data.subnqn)) > NVME_NQN_MAX_LEN || c->data.subnqn[0] == '\0') {
		free(c);
		req->rsp->cdw0 = invalid_param(offsetof(struct nvmf_connect_data, subnqn), true);
		complete_status(req, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_CONNECT_INVALID_PARAMETERS);
		return;
	}
	/*
	 * An empty HOSTNQN is accepted, as SPDK's target and Linux nvmet accept it: SPDK's initiator sends one on
	 * machines without DMI ids. It passes only where the subsystem allows any host (no allowed host has an
	 * empty NQN), and I/O queues must repeat it. Only an NQN longer than 223 bytes is refused.
	 */
	if (strnlen(c->data.hostnqn, sizeof(c->data.hostnqn)) > NVME_NQN_MAX_LEN) {
		free(c);
		req->rsp->cdw0 = invalid_param(offsetof(struct nvmf_connect_data, hostnqn), true);
		complete_status(req, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_CONNECT_INVALID_PARAMETERS);
		return;
	}
	if (c->data.hostnqn[0] == '\0' && cmd->qid == 0)
		log_empty_hostnqn(q, &c->data);
	c->req = req;
	c->q = q;
	c->has_local = q->transport->ops->qpair_get_local_addr &&
		       q->transport->ops->qpair_get_local_addr(q, &c->local) == 0;
	c->qid = cmd->qid;
	c->kato = cmd->kato;
	q->qid = cmd->qid;
	q->sq_size = (uint16_t)(cmd->sqsize + 1);
	q->sq_flow_control_disabled = (cmd->cattr & 0x4) != 0;
	if (dbk_thread_send_msg(main_thread(), connect_on_main, c) != 0) {
		free(c);
		complete_status(req, NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);
	}
}

/* ============================================================ teardown */

static void qpair_disconnect_msg(void *arg)
{
	dbk_nvmf_qpair_disconnect(arg);
}

/* Ctrlr thread: disconnect I/O qpairs (and the admin qpair if admin_too). */
void nvmf_ctrlr_disconnect_qpairs_local(struct dbk_nvmf_ctrlr *ctrlr, bool admin_too)
{
	for (uint16_t i = 1; i < ctrlr->max_qpairs; i++) {
		struct dbk_nvmf_qpair *q = ctrlr->qpairs[i];

		if (q)
			send_or_die(q->group->thread, qpair_disconnect_msg, q);
	}
	if (admin_too && ctrlr->admin_qpair)
		dbk_nvmf_qpair_disconnect(ctrlr->admin_qpair);
}

static void disconnect_all_msg(void *arg)
{
	struct dbk_nvmf_ctrlr *ctrlr = arg;

	if (!ctrlr->destroying)
		nvmf_ctrlr_disconnect_qpairs_local(ctrlr, true);
}

void nvmf_ctrlr_disconnect_all(struct dbk_nvmf_ctrlr *ctrlr)
{
	send_or_die(ctrlr->thread, disconnect_all_msg, ctrlr);
}

static void ctrlr_free_msg(void *arg)
{
	struct dbk_nvmf_ctrlr *ctrlr = arg;

	free(ctrlr->qpairs);
	free(ctrlr);
}

static void ctrlr_remove_on_main(void *arg)
{
	struct dbk_nvmf_ctrlr *ctrlr = arg;
	struct dbk_nvmf_subsystem *s = ctrlr->subsys;
	struct dbk_nvmf_ctrlr **pp;

	for (pp = &s->ctrlrs; *pp; pp = &(*pp)->next) {
		if (*pp == ctrlr) {
			*pp = ctrlr->next;
			break;
		}
	}
	s->num_ctrlrs--;
	nvmf_ana_port_put(ctrlr->ana);
	ctrlr->ana = NULL;
	DBK_INFOLOG("%s: controller %u destroyed", s->nqn, ctrlr->cntlid);
	send_or_die(ctrlr->thread, ctrlr_free_msg, ctrlr);
	nvmf_subsystem_ctrlr_removed(s);
}

struct detach_ctx {
	struct dbk_nvmf_qpair *q;
	struct dbk_nvmf_ctrlr *ctrlr;
	void (*done)(struct dbk_nvmf_qpair *q);
};

static void detach_ack_msg(void *arg)
{
	struct detach_ctx *d = arg;

	d->q->ctrlr = NULL;
	d->done(d->q);
	free(d);
}

static void detach_on_ctrlr(void *arg)
{
	struct detach_ctx *d = arg;
	struct dbk_nvmf_ctrlr *ctrlr = d->ctrlr;
	struct dbk_nvmf_qpair *q = d->q;

	if (q->qid < ctrlr->max_qpairs && ctrlr->qpairs[q->qid] == q) {
		ctrlr->qpairs[q->qid] = NULL;
		ctrlr->num_qpairs--;
	}
	if (ctrlr->admin_qpair == q) {
		ctrlr->admin_qpair = NULL;
		ctrlr->admin_gone = true;
		dbk_poller_unregister(&ctrlr->ka_poller);
		nvmf_ctrlr_disconnect_qpairs_local(ctrlr, false);
	}
	send_or_die(q->group->thread, detach_ack_msg, d);
	if (ctrlr->admin_gone && ctrlr->num_qpairs == 0 && !ctrlr->destroying) {
		ctrlr->destroying = true;
		send_or_die(main_thread(), ctrlr_remove_on_main, ctrlr);
	}
}

void nvmf_ctrlr_qpair_detach(struct dbk_nvmf_qpair *q, void (*done)(struct dbk_nvmf_qpair *q))
{
	struct dbk_nvmf_ctrlr *ctrlr = q->ctrlr;
	struct detach_ctx *d = calloc(1, sizeof(*d));

	if (q->qid == 0) {
		if (q->group->current_admin_qpairs)
			q->group->current_admin_qpairs--;
	} else if (q->group->current_io_qpairs) {
		q->group->current_io_qpairs--;
	}
	if (!d) {
		DBK_ERRLOG("out of memory detaching a qpair: leaking it");
		return;
	}
	d->q = q;
	d->ctrlr = ctrlr;
	d->done = done;
	send_or_die(ctrlr->thread, detach_on_ctrlr, d);
}

static int ka_poll(void *arg)
{
	struct dbk_nvmf_ctrlr *ctrlr = arg;
	uint64_t now = dbk_get_ns();

	if (ctrlr->kato_ms == 0 || ctrlr->destroying || ctrlr->admin_gone)
		return DBK_POLLER_IDLE;
	/* expiry granularity is KAS (1 s): allow that much slack for the host's timer */
	if (now - ctrlr->last_ka_ns <= ((uint64_t)ctrlr->kato_ms + DBK_NVMF_KAS_100MS * 100ull) * 1000000ull)
		return DBK_POLLER_IDLE;
	DBK_NOTICELOG("%s: controller %u (host %s): keep-alive timeout (%u ms) expired, disconnecting",
		      ctrlr->subsys->nqn, ctrlr->cntlid, ctrlr->hostnqn, ctrlr->kato_ms);
	dbk_poller_unregister(&ctrlr->ka_poller);
	nvmf_ctrlr_disconnect_qpairs_local(ctrlr, true);
	return DBK_POLLER_BUSY;
}

/* ================================================================= AERs */

void nvmf_ctrlr_abort_aers(struct dbk_nvmf_ctrlr *ctrlr)
{
	while (ctrlr->num_aer > 0) {
		struct dbk_nvmf_request *r = ctrlr->aer[--ctrlr->num_aer];

		ctrlr->aer[ctrlr->num_aer] = NULL;
		complete_status(r, NVME_SCT_GENERIC, NVME_SC_ABORTED_SQ_DELETION);
	}
}

static uint32_t event_dw0(uint32_t ev)
{
	if (ev == NVMF_EVENT_NS_ATTR)
		return NVME_AER_CPL_DW0(NVME_AER_TYPE_NOTICE, NVME_AER_INFO_NS_ATTR_CHANGED, NVME_LOG_CHANGED_NS_LIST);
	if (ev == NVMF_EVENT_ANA)
		return NVME_AER_CPL_DW0(NVME_AER_TYPE_NOTICE, NVME_AER_INFO_ANA_CHANGE, NVME_LOG_ANA);
	return NVME_AER_CPL_DW0(NVME_AER_TYPE_NOTICE, NVME_AER_INFO_DISCOVERY_LOG_CHANGE, NVME_LOG_DISCOVERY);
}

static void raise_event(struct dbk_nvmf_ctrlr *ctrlr, uint32_t ev)
{
	if (ctrlr->num_aer > 0 && ctrlr->admin_qpair && dbk_nvmf_qpair_is_active(ctrlr->admin_qpair)) {
		struct dbk_nvmf_request *r = ctrlr->aer[--ctrlr->num_aer];

		ctrlr->aer[ctrlr->num_aer] = NULL;
		r->rsp->cdw0 = event_dw0(ev);
		complete_status(r, 0, 0);
		return;
	}
	ctrlr->pending_events |= ev;
}

static void exec_aer(struct dbk_nvmf_request *req)
{
	struct dbk_nvmf_ctrlr *ctrlr = req->qpair->ctrlr;

	if (ctrlr->pending_events) {
		uint32_t ev = ctrlr->pending_events & -ctrlr->pending_events;	/* lowest pending */

		ctrlr->pending_events &= ~ev;
		req->rsp->cdw0 = event_dw0(ev);
		complete_status(req, 0, 0);
		return;
	}
	if (ctrlr->num_aer >= DBK_NVMF_MAX_AER) {
		complete_status(req, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED);
		return;
	}
	ctrlr->aer[ctrlr->num_aer++] = req;
}

struct ns_event_ctx {
	struct dbk_nvmf_ctrlr *ctrlr;
	uint32_t nsid;
	bool vwc_present;
};

static void ns_changed_msg(void *arg)
{
	struct ns_event_ctx *e = arg;
	struct dbk_nvmf_ctrlr *ctrlr = e->ctrlr;

	if (!ctrlr->destroying) {
		bool found = false;

		ctrlr->vwc_present = e->vwc_present;
		for (uint32_t i = 0; i < ctrlr->num_changed_ns; i++)
			if (ctrlr->changed_ns[i] == e->nsid)
				found = true;
		if (!found) {
			if (ctrlr->num_changed_ns < DBK_NVMF_MAX_CHANGED_NS)
				ctrlr->changed_ns[ctrlr->num_changed_ns++] = e->nsid;
			else
				ctrlr->changed_ns_overflow = true;
		}
		if (ctrlr->feat.aec & (1u << 8))
			raise_event(ctrlr, NVMF_EVENT_NS_ATTR);
	}
	free(e);
}

void nvmf_ctrlr_notify_ns_changed(struct dbk_nvmf_ctrlr *ctrlr, uint32_t nsid)
{
	struct ns_event_ctx *e = calloc(1, sizeof(*e));

	if (!e)
		return;
	e->ctrlr = ctrlr;
	e->nsid = nsid;
	e->vwc_present = nvmf_ctrlr_vwc_present(ctrlr->subsys);
	if (dbk_thread_send_msg(ctrlr->thread, ns_changed_msg, e) != 0)
		free(e);
}

static void disc_changed_msg(void *arg)
{
	struct dbk_nvmf_ctrlr *ctrlr = arg;

	if (!ctrlr->destroying && (ctrlr->feat.aec & (1u << 31)))
		raise_event(ctrlr, NVMF_EVENT_DISC_LOG);
}

void nvmf_ctrlr_notify_discovery_changed(struct dbk_nvmf_ctrlr *ctrlr)
{
	send_or_die(ctrlr->thread, disc_changed_msg, ctrlr);
}

static void ana_changed_msg(void *arg)
{
	struct dbk_nvmf_ctrlr *ctrlr = arg;

	if (!ctrlr->destroying && (ctrlr->feat.aec & (1u << 11)))
		raise_event(ctrlr, NVMF_EVENT_ANA);
}

void nvmf_ctrlr_notify_ana_changed(struct dbk_nvmf_ctrlr *ctrlr)
{
	send_or_die(ctrlr->thread, ana_changed_msg, ctrlr);
}

/* ============================================================ properties */

static uint64_t ctrlr_cap(const struct dbk_nvmf_ctrlr *ctrlr)
{
	uint64_t mqes = (uint64_t)(ctrlr->transport->opts.max_queue_depth - 1) & 0xFFFF;

	return mqes | (1ull << 16) /* CQR */ | ((uint64_t)NVMF_CAP_TO << 24) | (1ull << 37) /* CSS NVM */;
}

static void property_get(struct dbk_nvmf_request *req)
{
	struct nvmf_property_cmd *cmd = (struct nvmf_property_cmd *)req->cmd;
	struct dbk_nvmf_ctrlr *ctrlr = req->qpair->ctrlr;
	uint64_t v;

	if ((cmd->attrib & 0x7) != 0 && (cmd->ofst & 7) != 0) {
		/* an 8-byte read at CAP+4 would span CAP and VS: refused, as SPDK's target and nvmet do */
		complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
		return;
	}
	switch (cmd->ofst) {
	case NVME_REG_CAP:
		v = ctrlr_cap(ctrlr);
		break;
	case NVME_REG_CAP + 4:
		v = ctrlr_cap(ctrlr) >> 32;
		break;
	case NVME_REG_VS:
		v = NVMF_VS_1_3;
		break;
	case NVME_REG_CC:
		v = ctrlr->cc;
		break;
	case NVME_REG_CSTS:
		v = ctrlr->csts;
		break;
	default:
		complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
		return;
	}
	if ((cmd->attrib & 0x7) == 0)
		v &= 0xFFFFFFFFull;
	req->rsp->cdw0 = (uint32_t)v;
	req->rsp->cdw1 = (uint32_t)(v >> 32);
	complete_status(req, 0, 0);
}

static void property_set(struct dbk_nvmf_request *req)
{
	struct nvmf_property_cmd *cmd = (struct nvmf_property_cmd *)req->cmd;
	struct dbk_nvmf_ctrlr *ctrlr = req->qpair->ctrlr;
	uint32_t cc = (uint32_t)cmd->value, old = ctrlr->cc;

	if (cmd->ofst != NVME_REG_CC) {
		complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
		return;
	}
	if ((cc & NVME_CC_EN) && !(old & NVME_CC_EN)) {
		uint32_t iosqes = (cc >> NVME_CC_IOSQES_SHIFT) & 0xF, iocqes = (cc >> NVME_CC_IOCQES_SHIFT) & 0xF;

		/*
		 * Kept (nvmf/COMPAT.md): nvmet takes the write but sets CSTS.CFS instead of RDY, SPDK enables and
		 * refuses the I/O queues later; refusing the write is the plainest of the three answers.
		 */
		if (!ctrlr->subsys->discovery && (iosqes != 6 || iocqes != 4)) {
			DBK_NOTICELOG("controller %u: CC.EN with IOSQES %u / IOCQES %u rejected", ctrlr->cntlid,
				      iosqes, iocqes);
			complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
			return;
		}
		ctrlr->csts |= NVME_CSTS_RDY;
	} else if (!(cc & NVME_CC_EN) && (old & NVME_CC_EN)) {
		/* controller reset: I/O queues go away */
		nvmf_ctrlr_disconnect_qpairs_local(ctrlr, false);
		ctrlr->csts &= ~(NVME_CSTS_RDY | (3u << NVME_CSTS_SHST_SHIFT));
	}
	if ((cc & NVME_CC_SHN_MASK) && !(old & NVME_CC_SHN_MASK)) {
		ctrlr->csts = (ctrlr->csts & ~(3u << NVME_CSTS_SHST_SHIFT)) | NVME_CSTS_SHST_COMPLETE;
	} else if (!(cc & NVME_CC_SHN_MASK) && (old & NVME_CC_SHN_MASK)) {
		ctrlr->csts &= ~(3u << NVME_CSTS_SHST_SHIFT);
	}
	ctrlr->cc = cc;
	complete_status(req, 0, 0);
}

void nvmf_ctrlr_exec_fabrics(struct dbk_nvmf_request *req)
{
	struct nvmf_fabric_cmd *cmd = (struct nvmf_fabric_cmd *)req->cmd;
	struct dbk_nvmf_qpair *q = req->qpair;

	if (!q->ctrlr) {
		if (cmd->fctype == NVMF_FCTYPE_CONNECT)
			fabrics_connect(req);
		else
			complete_status(req, NVME_SCT_GENERIC, NVME_SC_COMMAND_SEQUENCE_ERROR);
		return;
	}
	if (q->qid == 0)
		q->ctrlr->last_ka_ns = dbk_get_ns();
	switch (cmd->fctype) {
	case NVMF_FCTYPE_CONNECT:
		/* a second Connect on a connected queue: Invalid Opcode, as SPDK's target and nvmet answer */
		complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE);
		break;
	case NVMF_FCTYPE_PROPERTY_GET:
	case NVMF_FCTYPE_PROPERTY_SET:
		if (q->qid != 0) {
			/* admin-queue-only fabrics commands: Invalid Opcode on an I/O queue, as SPDK and nvmet answer */
			complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE);
			break;
		}
		if (cmd->fctype == NVMF_FCTYPE_PROPERTY_GET)
			property_get(req);
		else
			property_set(req);
		break;
	case NVMF_FCTYPE_DISCONNECT:
		complete_status(req, 0, 0);
		dbk_nvmf_qpair_disconnect(q);
		break;
	default:
		complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE);
		break;
	}
}

/* ========================================================== identify */

static void put16(uint8_t *b, size_t off, uint16_t v)
{
	memcpy(b + off, &v, 2);
}

static void put32(uint8_t *b, size_t off, uint32_t v)
{
	memcpy(b + off, &v, 4);
}

static void put64(uint8_t *b, size_t off, uint64_t v)
{
	memcpy(b + off, &v, 8);
}

static void put_padded(uint8_t *b, size_t off, size_t len, const char *s)
{
	size_t n = strlen(s);

	memset(b + off, ' ', len);
	memcpy(b + off, s, n < len ? n : len);
}

static uint8_t log2u(uint64_t v)
{
	uint8_t r = 0;

	while (v > 1) {
		v >>= 1;
		r++;
	}
	return r;
}

static void identify_ctrlr(struct dbk_nvmf_ctrlr *ctrlr, uint8_t *b)
{
	struct dbk_nvmf_subsystem *s = ctrlr->subsys;
	const struct dbk_nvmf_transport_opts *o = &ctrlr->transport->opts;
	uint32_t mdts_pages = o->max_io_size / 4096;

	put16(b, 0, 0);			/* VID */
	put16(b, 2, 0);			/* SSVID */
	put_padded(b, 4, 20, s->sn);
	put_padded(b, 24, 40, s->mn);
	put_padded(b, 64, 8, DBK_NVMF_FW_REV);
	b[72] = 6;			/* RAB */
	b[76] = s->discovery ? 0 : 0x2;	/* CMIC: multiple controllers */
	b[77] = mdts_pages ? log2u(mdts_pages) : 0;
	put16(b, 78, ctrlr->cntlid);
	put32(b, 80, NVMF_VS_1_3);
	put32(b, 92, s->discovery ? (1u << 31) : (1u << 8));	/* OAES */
	put32(b, 96, 0);		/* CTRATT */
	b[111] = s->discovery ? 2 : 1;	/* CNTRLTYPE */
	put16(b, 256, 0);		/* OACS */
	b[258] = 3;			/* ACL */
	b[259] = DBK_NVMF_MAX_AER - 1;	/* AERL */
	b[260] = 0x3;			/* FRMW: 1 slot, slot 1 read-only */
	b[261] = s->discovery ? 0x4 : 0x6;	/* LPA: extended data; Commands Supported and Effects (I/O) */
	b[262] = 127;			/* ELPE */
	b[263] = 0;			/* NPSS */
	put16(b, 320, DBK_NVMF_KAS_100MS);
	b[512] = 0x66;			/* SQES */
	b[513] = 0x44;			/* CQES */
	put16(b, 514, o->max_queue_depth);
	put32(b, 516, s->max_namespaces);
	if (!s->discovery) {
		put16(b, 520, (1u << 0) | (1u << 2) | (1u << 3));	/* ONCS: compare, DSM, write zeroes */
		b[525] = nvmf_ctrlr_vwc_present(s) ? 1 : 0;
	}
	put32(b, 536, (1u << 0) | (1u << 20));	/* SGLS */
	snprintf((char *)b + 768, 256, "%s", s->nqn);
	put32(b, 1792, (64 + o->in_capsule_data_size) / 16);	/* IOCCSZ */
	put32(b, 1796, 1);		/* IORCSZ */
	put16(b, 1800, 0);		/* ICDOFF */
	b[1802] = 0;			/* FCATT */
	b[1803] = 1;			/* MSDBD */
	nvmf_ana_identify_ctrlr(s, b);
}

static void identify_ns(const struct nvmf_ns *ns, uint8_t *b)
{
	uint64_t n = dbk_bdev_get_num_blocks(ns->bdev);

	put64(b, 0, n);
	put64(b, 8, n);
	put64(b, 16, n);
	b[24] = 0;		/* NSFEAT */
	b[25] = 0;		/* NLBAF: one format */
	b[26] = 0;		/* FLBAS */
	b[30] = 1;		/* NMIC: may be shared */
	memcpy(b + 104, ns->nguid, 16);
	if (ns->has_eui64)
		memcpy(b + 120, ns->eui64, 8);
	put32(b, 128, (uint32_t)log2u(ns->block_size) << 16);	/* LBAF0 */
	nvmf_ana_identify_ns(ns, b);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static size_t ns_descs(const struct nvmf_ns *ns, uint8_t *b)
{
	size_t off = 0;

	if (ns->has_eui64) {
		b[off] = 1;
		b[off + 1] = 8;
		memcpy(b + off + 4, ns->eui64, 8);
		off += 12;
	}
	/* an all-zero identifier means "none" to hosts: do not report it */
	if (!all_zero(ns->nguid, 16)) {
		b[off] = 2;
		b[off + 1] = 16;
		memcpy(b + off + 4, ns->nguid, 16);
		off += 20;
	}
	if (!all_zero(ns->uuid, 16)) {
		b[off] = 3;
		b[off + 1] = 16;
		memcpy(b + off + 4, ns->uuid, 16);
		off += 20;
	}
	return off;
}

static void identify_on_main(void *arg)
{
	struct dbk_nvmf_request *req = arg;
	struct dbk_nvmf_ctrlr *ctrlr = req->qpair->ctrlr;
	struct dbk_nvmf_subsystem *s = ctrlr->subsys;
	uint8_t cns = req->cmd->cdw10 & 0xFF;
	uint32_t nsid = req->cmd->nsid;
	uint8_t b[4096];
	struct nvmf_ns *ns = NULL;

	memset(b, 0, sizeof(b));
	switch (cns) {
	case NVME_ID_CNS_CTRLR:
		identify_ctrlr(ctrlr, b);
		break;
	case NVME_ID_CNS_NS:
	case NVME_ID_CNS_NS_DESC_LIST:
		if (s->discovery || nsid == 0 || nsid > s->max_namespaces) {
			nvmf_req_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_NAMESPACE_OR_FORMAT);
			goto done;
		}
		ns = s->ns[nsid - 1];
		if (!nvmf_ns_active(ns))
			ns = NULL;
		if (cns == NVME_ID_CNS_NS) {
			if (ns)
				identify_ns(ns, b);
		} else {
			if (!ns) {
				nvmf_req_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_NAMESPACE_OR_FORMAT);
				goto done;
			}
			ns_descs(ns, b);
		}
		break;
	case NVME_ID_CNS_CS_CTRLR:
		/* I/O command set specific controller data: NVM (CSI 0) has no limits to report */
		if ((req->cmd->cdw11 >> 24) != 0) {
			nvmf_req_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
			goto done;
		}
		break;
	case NVME_ID_CNS_CS_NS:
		if ((req->cmd->cdw11 >> 24) != 0 || s->discovery) {
			nvmf_req_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
			goto done;
		}
		if (nsid == 0 || nsid > s->max_namespaces || !nvmf_ns_active(s->ns[nsid - 1])) {
			nvmf_req_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_NAMESPACE_OR_FORMAT);
			goto done;
		}
		break;	/* NVM: all fields zero */
	case NVME_ID_CNS_CS_INDEPENDENT_NS:
		if (s->discovery || nsid == 0 || nsid > s->max_namespaces) {
			nvmf_req_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_NAMESPACE_OR_FORMAT);
			goto done;
		}
		if (nvmf_ns_active(s->ns[nsid - 1]))
			nvmf_identify_ns_cs_indep(s->ns[nsid - 1], b);
		break;	/* an inactive NSID: all zero, as CNS 00h */
	case NVME_ID_CNS_ACTIVE_NS_LIST_CS:
		/* the active namespace list of one command set: all ours are NVM (CSI 0) */
		if ((req->cmd->cdw11 >> 24) != 0) {
			nvmf_req_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
			goto done;
		}
		/* fall through */
	case NVME_ID_CNS_ACTIVE_NS_LIST: {
		uint32_t n = 0;

		if (nsid >= 0xFFFFFFFEu) {
			nvmf_req_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_NAMESPACE_OR_FORMAT);
			goto done;
		}
		for (uint32_t i = nsid; i < s->max_namespaces && n < 1024; i++) {
			if (nvmf_ns_active(s->ns[i]))
				put32(b, 4 * n++, i + 1);
		}
		break;
	}
	default:
		nvmf_req_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
		goto done;
	}
	nvmf_req_fill_data(req, b, sizeof(b));
done:
	send_or_die(req_thread(req), complete_msg, req);
}

/* ========================================================== log pages */

static void copy_log(struct dbk_nvmf_request *req, const void *log, size_t log_len, uint64_t offset, uint32_t len)
{
	size_t avail = offset < log_len ? log_len - offset : 0;

	nvmf_req_fill_data(req, (const uint8_t *)log + (avail ? offset : 0), avail < len ? avail : len);
}

static void discovery_log_on_main(void *arg)
{
	struct dbk_nvmf_request *req = arg;
	struct dbk_nvmf_cmd_log {
		uint64_t offset;
		uint32_t len;
	} p;
	size_t log_len = 0;
	void *log;

	p.offset = (uint64_t)req->cmd->cdw12 | ((uint64_t)req->cmd->cdw13 << 32);
	p.len = ((req->cmd->cdw10 >> 16) | ((req->cmd->cdw11 & 0xFFFF) << 16)) + 1;
	p.len = p.len * 4 > req->length ? req->length : p.len * 4;
	log = nvmf_discovery_log_build(req->qpair->ctrlr->hostnqn, &log_len);
	if (!log) {
		nvmf_req_status(req, NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);
	} else {
		copy_log(req, log, log_len, p.offset, p.len);
		free(log);
	}
	send_or_die(req_thread(req), complete_msg, req);
}

struct health_ctx {
	struct dbk_nvmf_request *req;
	uint32_t next;		/* next namespace index to visit */
	uint64_t bytes_read, bytes_written, reads, writes;
};

static void health_next(struct health_ctx *h);

static void health_stat_cb(struct dbk_bdev *bdev, const struct dbk_bdev_io_stat *total, json_t *per_channel,
			   void *ctx, int rc)
{
	struct health_ctx *h = ctx;

	(void)bdev;
	(void)per_channel;
	if (rc == 0 && total) {
		h->bytes_read += total->bytes[DBK_BDEV_IO_TYPE_READ];
		h->bytes_written += total->bytes[DBK_BDEV_IO_TYPE_WRITE];
		h->reads += total->ops[DBK_BDEV_IO_TYPE_READ];
		h->writes += total->ops[DBK_BDEV_IO_TYPE_WRITE];
	}
	health_next(h);
}

static void put128(uint8_t *b, size_t off, uint64_t v)
{
	put64(b, off, v);
	put64(b, off + 8, 0);
}

/* Main reactor: visit the namespaces' bdevs one by one, then answer. */
static void health_next(struct health_ctx *h)
{
	struct dbk_nvmf_request *req = h->req;
	struct dbk_nvmf_subsystem *s = req->qpair->ctrlr->subsys;
	uint32_t nsid = req->cmd->nsid;
	uint64_t offset = (uint64_t)req->cmd->cdw12 | ((uint64_t)req->cmd->cdw13 << 32);
	uint32_t len = (((req->cmd->cdw10 >> 16) | ((req->cmd->cdw11 & 0xFFFF) << 16)) + 1) * 4;
	uint8_t b[512];

	while (h->next < s->max_namespaces) {
		struct nvmf_ns *ns = s->ns[h->next++];

		if (!nvmf_ns_active(ns) || (nsid != 0 && nsid != 0xFFFFFFFFu && nsid != ns->nsid))
			continue;
		dbk_bdev_get_iostat(ns->bdev, false, health_stat_cb, h);
		return;
	}
	memset(b, 0, sizeof(b));
	put16(b, 1, 293);	/* composite temperature, Kelvin */
	b[3] = 100;		/* available spare % */
	b[4] = 10;		/* spare threshold % */
	/* data units: thousands of 512-byte units, rounded up */
	put128(b, 32, (h->bytes_read + 511999) / 512000);
	put128(b, 48, (h->bytes_written + 511999) / 512000);
	put128(b, 64, h->reads);
	put128(b, 80, h->writes);
	copy_log(req, b, sizeof(b), offset, len);
	free(h);
	send_or_die(req_thread(req), complete_msg, req);
}

static void health_on_main(void *arg)
{
	struct dbk_nvmf_request *req = arg;
	struct health_ctx *h = calloc(1, sizeof(*h));

	if (!h) {
		nvmf_req_status(req, NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);
		send_or_die(req_thread(req), complete_msg, req);
		return;
	}
	h->req = req;
	health_next(h);
}

static void get_log_page(struct dbk_nvmf_request *req)
{
	struct dbk_nvmf_ctrlr *ctrlr = req->qpair->ctrlr;
	struct nvme_cmd *cmd = req->cmd;
	uint8_t lid = cmd->cdw10 & 0xFF;
	bool rae = (cmd->cdw10 >> 15) & 1;
	uint64_t numd = ((uint64_t)(cmd->cdw10 >> 16) | ((uint64_t)(cmd->cdw11 & 0xFFFF) << 16)) + 1;
	uint64_t offset = (uint64_t)cmd->cdw12 | ((uint64_t)cmd->cdw13 << 32);
	uint32_t len;
	uint8_t b[4096];

	if (req->xfer != DBK_NVMF_XFER_CTRLR_TO_HOST || numd * 4 > req->length || (offset & 3)) {
		complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
		return;
	}
	len = (uint32_t)(numd * 4);
	memset(b, 0, sizeof(b));
	if (ctrlr->subsys->discovery) {
		if (lid != NVME_LOG_DISCOVERY) {
			complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
			return;
		}
		if (dbk_thread_send_msg(main_thread(), discovery_log_on_main, req) != 0)
			complete_status(req, NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);
		return;
	}
	switch (lid) {
	case NVME_LOG_SUPPORTED_PAGES:
		nvmf_ana_supported_pages(ctrlr->subsys, b);
		copy_log(req, b, nvmf_log_supported_pages(b), offset, len);
		break;
	case NVME_LOG_ANA:
		if (!nvmf_ana_get_log_page(req))
			complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
		return;
	case NVME_LOG_COMMAND_EFFECTS:
		if ((cmd->cdw14 >> 24) != 0) {	/* CSI: only NVM */
			complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
			return;
		}
		copy_log(req, b, nvmf_log_cmd_effects(b), offset, len);
		break;
	case NVME_LOG_FEATURE_IDS:
		copy_log(req, b, nvmf_log_feature_ids(ctrlr, b), offset, len);
		break;
	case NVME_LOG_ERROR:
		nvmf_req_fill_data(req, b, 0);	/* no errors recorded: all zero */
		break;
	case NVME_LOG_HEALTH:
		/* counters come from the bdevs' statistics, gathered on the main reactor */
		if (dbk_thread_send_msg(main_thread(), health_on_main, req) != 0)
			complete_status(req, NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);
		return;
	case NVME_LOG_FIRMWARE_SLOT:
		b[0] = 1;		/* AFI: slot 1 active */
		put_padded(b, 8, 8, DBK_NVMF_FW_REV);
		copy_log(req, b, 512, offset, len);
		break;
	case NVME_LOG_CHANGED_NS_LIST:
		if (ctrlr->changed_ns_overflow) {
			put32(b, 0, 0xFFFFFFFFu);
		} else {
			for (uint32_t i = 0; i < ctrlr->num_changed_ns; i++)
				put32(b, 4 * i, ctrlr->changed_ns[i]);
		}
		copy_log(req, b, 4096, offset, len);
		if (!rae) {
			ctrlr->num_changed_ns = 0;
			ctrlr->changed_ns_overflow = false;
		}
		break;
	default:
		complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
		return;
	}
	complete_status(req, 0, 0);
}

/* ============================================================ features */

static uint32_t num_queues_dw0(const struct dbk_nvmf_ctrlr *ctrlr)
{
	uint32_t n = ctrlr->max_qpairs > 1 ? ctrlr->max_qpairs - 1u : 1u;	/* I/O queues */

	return (n - 1) | ((n - 1) << 16);
}

static uint32_t *feature_slot(struct dbk_nvmf_ctrlr *ctrlr, uint8_t fid)
{
	switch (fid) {
	case NVME_FEAT_ARBITRATION:
		return &ctrlr->feat.arbitration;
	case NVME_FEAT_POWER_MANAGEMENT:
		return &ctrlr->feat.power_mgmt;
	case NVME_FEAT_TEMPERATURE_THRESHOLD:
		return &ctrlr->feat.temp_threshold;
	case NVME_FEAT_ERROR_RECOVERY:
		return &ctrlr->feat.error_recovery;
	case NVME_FEAT_INTERRUPT_COALESCING:
		return &ctrlr->feat.irq_coalescing;
	case NVME_FEAT_WRITE_ATOMICITY:
		return &ctrlr->feat.write_atomicity;
	case NVME_FEAT_ASYNC_EVENT_CONFIG:
		return &ctrlr->feat.aec;
	default:
		return NULL;
	}
}

static void get_features(struct dbk_nvmf_request *req)
{
	struct dbk_nvmf_ctrlr *ctrlr = req->qpair->ctrlr;
	uint8_t fid = req->cmd->cdw10 & 0xFF;
	uint32_t *slot = feature_slot(ctrlr, fid);

	if (slot) {
		req->rsp->cdw0 = *slot;
	} else {
		switch (fid) {
		case NVME_FEAT_VOLATILE_WRITE_CACHE:
			if (!ctrlr->vwc_present) {
				complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
				return;
			}
			req->rsp->cdw0 = ctrlr->feat.vwc;
			break;
		case NVME_FEAT_NUMBER_OF_QUEUES:
			req->rsp->cdw0 = num_queues_dw0(ctrlr);
			break;
		case NVME_FEAT_KEEP_ALIVE_TIMER:
			req->rsp->cdw0 = ctrlr->kato_ms;
			break;
		case NVME_FEAT_HOST_IDENTIFIER:
			if (!(req->cmd->cdw11 & 1) || req->length < 16) {
				complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
				return;
			}
			nvmf_req_fill_data(req, ctrlr->hostid, 16);
			break;
		default:
			complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
			return;
		}
	}
	complete_status(req, 0, 0);
}

static void set_features(struct dbk_nvmf_request *req)
{
	struct dbk_nvmf_ctrlr *ctrlr = req->qpair->ctrlr;
	uint8_t fid = req->cmd->cdw10 & 0xFF;
	uint32_t v = req->cmd->cdw11;
	uint32_t *slot;

	if (req->cmd->cdw10 & (1u << 31)) {
		complete_status(req, NVME_SCT_COMMAND_SPECIFIC, NVME_SC_FEATURE_ID_NOT_SAVEABLE);
		return;
	}
	slot = feature_slot(ctrlr, fid);
	if (slot) {
		*slot = v;
		req->rsp->cdw0 = 0;
		complete_status(req, 0, 0);
		return;
	}
	switch (fid) {
	case NVME_FEAT_VOLATILE_WRITE_CACHE:
		if (!ctrlr->vwc_present) {
			complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
			return;
		}
		ctrlr->feat.vwc = v & 1;
		atomic_store_explicit(&ctrlr->write_through, !(v & 1), memory_order_relaxed);
		break;
	case NVME_FEAT_NUMBER_OF_QUEUES:
		if (ctrlr->num_qpairs > 1) {
			complete_status(req, NVME_SCT_GENERIC, NVME_SC_COMMAND_SEQUENCE_ERROR);
			return;
		}
		if ((v & 0xFFFF) == 0xFFFF || (v >> 16) == 0xFFFF) {
			complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
			return;
		}
		req->rsp->cdw0 = num_queues_dw0(ctrlr);
		break;
	case NVME_FEAT_KEEP_ALIVE_TIMER:
		ctrlr->kato_ms = v;
		ctrlr->last_ka_ns = dbk_get_ns();
		dbk_poller_unregister(&ctrlr->ka_poller);
		if (v)
			ctrlr->ka_poller = dbk_poller_register(ka_poll, ctrlr, ka_period_us(v), "nvmf_ka");
		break;
	case NVME_FEAT_HOST_IDENTIFIER:
		complete_status(req, NVME_SCT_GENERIC, NVME_SC_COMMAND_SEQUENCE_ERROR);
		return;
	default:
		complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_FIELD);
		return;
	}
	complete_status(req, 0, 0);
}

/* ============================================================ dispatch */

void nvmf_ctrlr_exec_admin(struct dbk_nvmf_request *req)
{
	struct dbk_nvmf_ctrlr *ctrlr = req->qpair->ctrlr;
	struct nvme_cmd *cmd = req->cmd;

	ctrlr->last_ka_ns = dbk_get_ns();
	if (!(ctrlr->cc & NVME_CC_EN) || !(ctrlr->csts & NVME_CSTS_RDY)) {
		complete_status(req, NVME_SCT_GENERIC, NVME_SC_COMMAND_SEQUENCE_ERROR);
		return;
	}
	switch (cmd->opc) {
	case NVME_OPC_IDENTIFY:
		if (req->xfer != DBK_NVMF_XFER_CTRLR_TO_HOST || req->length < 4096) {
			complete_status(req, NVME_SCT_GENERIC, NVME_SC_DATA_SGL_LENGTH_INVALID);
			return;
		}
		if (dbk_thread_send_msg(main_thread(), identify_on_main, req) != 0)
			complete_status(req, NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);
		return;
	case NVME_OPC_GET_LOG_PAGE:
		get_log_page(req);
		return;
	case NVME_OPC_GET_FEATURES:
		get_features(req);
		return;
	case NVME_OPC_SET_FEATURES:
		set_features(req);
		return;
	case NVME_OPC_ASYNC_EVENT_REQUEST:
		exec_aer(req);
		return;
	case NVME_OPC_KEEP_ALIVE:
		complete_status(req, 0, 0);
		return;
	case NVME_OPC_ABORT:
		req->rsp->cdw0 = 1;	/* not aborted */
		complete_status(req, 0, 0);
		return;
	default:
		complete_status(req, NVME_SCT_GENERIC, NVME_SC_INVALID_OPCODE);
		return;
	}
}
