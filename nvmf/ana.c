/*
 * Asymmetric Namespace Access: the per-listener group states, the ANA log page,
 * the Identify fields and the ANA change event (see nvmf/ana.h). ctrlr.c, io.c
 * and subsystem.c call in here through small hooks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmf/ana.h"
#include "util/log.h"

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

/* ------------------------------------------------------------------ ports */

struct nvmf_ana_port *nvmf_ana_port_new(uint32_t ngroups, uint8_t initial)
{
	struct nvmf_ana_port *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->refs = 1;
	p->ngroups = ngroups;
	p->grp_chgcnt = calloc(ngroups ? ngroups : 1, sizeof(*p->grp_chgcnt));
	p->state = calloc(ngroups ? ngroups : 1, sizeof(*p->state));
	if (!p->grp_chgcnt || !p->state) {
		free(p->grp_chgcnt);
		free((void *)p->state);
		free(p);
		return NULL;
	}
	for (uint32_t i = 0; i < ngroups; i++)
		atomic_init(&p->state[i], initial);
	return p;
}

struct nvmf_ana_port *nvmf_ana_port_get(struct nvmf_ana_port *p)
{
	if (p)
		p->refs++;
	return p;
}

void nvmf_ana_port_put(struct nvmf_ana_port *p)
{
	if (!p || --p->refs > 0)
		return;
	free(p->grp_chgcnt);
	free((void *)p->state);
	free(p);
}

static const struct {
	const char *name;
	uint8_t state;
} g_states[] = {
	{ "optimized", NVMF_ANA_OPTIMIZED },
	{ "non_optimized", NVMF_ANA_NON_OPTIMIZED },
	{ "inaccessible", NVMF_ANA_INACCESSIBLE },
	{ "persistent_loss", NVMF_ANA_PERSISTENT_LOSS },
	{ "change", NVMF_ANA_CHANGE },
};

int nvmf_ana_state_parse(const char *name, uint8_t *state)
{
	for (size_t i = 0; name && i < sizeof(g_states) / sizeof(g_states[0]); i++) {
		if (strcmp(name, g_states[i].name) == 0) {
			*state = g_states[i].state;
			return 0;
		}
	}
	return -EINVAL;
}

const char *nvmf_ana_state_name(uint8_t state)
{
	for (size_t i = 0; i < sizeof(g_states) / sizeof(g_states[0]); i++)
		if (g_states[i].state == state)
			return g_states[i].name;
	return "unknown";
}

static uint8_t port_state(const struct nvmf_ana_port *p, uint32_t grpid)
{
	if (!p || grpid == 0 || grpid > p->ngroups)
		return NVMF_ANA_OPTIMIZED;
	return atomic_load_explicit(&p->state[grpid - 1], memory_order_relaxed);
}

/* --------------------------------------------------------------- log page */

/* Does group g (1-based) hold an active namespace? */
static uint32_t group_nsids(const struct dbk_nvmf_subsystem *s, uint32_t g)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < s->max_namespaces; i++)
		if (nvmf_ns_active(s->ns[i]) && s->ns[i]->anagrpid == g)
			n++;
	return n;
}

size_t nvmf_ana_log_len(const struct dbk_nvmf_subsystem *s, bool rgo)
{
	size_t len = NVMF_ANA_LOG_HDR;

	for (uint32_t g = 1; g <= s->max_namespaces; g++) {
		uint32_t n = group_nsids(s, g);

		if (n)
			len += NVMF_ANA_LOG_DESC + (rgo ? 0 : 4u * n);
	}
	return len;
}

static size_t log_build(const struct dbk_nvmf_subsystem *s, const struct nvmf_ana_port *p, bool rgo, uint8_t *b)
{
	size_t off = NVMF_ANA_LOG_HDR;
	uint16_t ngrps = 0;

	put64(b, 0, p ? p->chgcnt : 0);
	for (uint32_t g = 1; g <= s->max_namespaces; g++) {
		uint32_t n = group_nsids(s, g);
		size_t d = off;

		if (!n)
			continue;
		ngrps++;
		put32(b, d, g);						/* ANAGRPID */
		put32(b, d + 4, rgo ? 0 : n);				/* NNSIDS */
		put64(b, d + 8, p && g <= p->ngroups ? p->grp_chgcnt[g - 1] : 0);
		b[d + 16] = port_state(p, g);				/* ANAS */
		off += NVMF_ANA_LOG_DESC;
		if (rgo)
			continue;
		for (uint32_t i = 0; i < s->max_namespaces; i++) {
			if (nvmf_ns_active(s->ns[i]) && s->ns[i]->anagrpid == g) {
				put32(b, off, s->ns[i]->nsid);
				off += 4;
			}
		}
	}
	put16(b, 8, ngrps);
	return off;
}

size_t nvmf_ana_log_read(const struct dbk_nvmf_subsystem *s, const struct nvmf_ana_port *p, bool rgo,
			 uint64_t offset, uint8_t *out, size_t len)
{
	size_t log_len = nvmf_ana_log_len(s, rgo), n;
	uint8_t *log;

	memset(out, 0, len);
	if (offset >= log_len)
		return 0;
	log = calloc(1, log_len);
	if (!log)
		return 0;
	log_build(s, p, rgo, log);
	n = log_len - offset < len ? log_len - (size_t)offset : len;
	memcpy(out, log + offset, n);
	free(log);
	return n;
}

static void complete_msg(void *arg)
{
	dbk_nvmf_request_complete(arg);
}

static void ana_log_on_main(void *arg)
{
	struct dbk_nvmf_request *req = arg;
	struct dbk_nvmf_ctrlr *ctrlr = req->qpair->ctrlr;
	const struct nvme_cmd *cmd = req->cmd;
	bool rgo = (cmd->cdw10 >> 8) & 1;	/* LSP bit 0: Return Groups Only */
	uint64_t numd = ((uint64_t)(cmd->cdw10 >> 16) | ((uint64_t)(cmd->cdw11 & 0xFFFF) << 16)) + 1;
	uint64_t offset = (uint64_t)cmd->cdw12 | ((uint64_t)cmd->cdw13 << 32);
	size_t len = (size_t)numd * 4;	/* <= req->length, checked by get_log_page */
	uint8_t *out = malloc(len ? len : 1);

	if (!out) {
		nvmf_req_status(req, NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);
	} else {
		nvmf_ana_log_read(ctrlr->subsys, ctrlr->ana, rgo, offset, out, len);
		nvmf_req_fill_data(req, out, len);
		free(out);
	}
	if (dbk_thread_send_msg(req->qpair->group->thread, complete_msg, req) != 0)
		DBK_ERRLOG("cannot send a message between reactors (out of memory)");
}

bool nvmf_ana_get_log_page(struct dbk_nvmf_request *req)
{
	if (!req->qpair->ctrlr->subsys->ana_reporting)
		return false;
	if (dbk_thread_send_msg(dbk_reactor_thread(0), ana_log_on_main, req) != 0) {
		nvmf_req_status(req, NVME_SCT_GENERIC, NVME_SC_INTERNAL_DEVICE_ERROR);
		dbk_nvmf_request_complete(req);
	}
	return true;
}

/* ---------------------------------------------------------------- Identify */

void nvmf_ana_identify_ctrlr(const struct dbk_nvmf_subsystem *s, uint8_t *b)
{
	uint32_t oaes;

	if (s->discovery || !s->ana_reporting)
		return;
	b[76] |= 0x8;				/* CMIC bit 3: ANA reporting */
	memcpy(&oaes, b + 92, 4);
	put32(b, 92, oaes | (1u << 11));	/* OAES: ANA change notices */
	b[343] = NVMF_ANA_ANATT_SEC;		/* ANATT */
	/* ANACAP: optimized, non-optimized, inaccessible, persistent loss, change states reported */
	b[344] = 0x1F;
	put32(b, 348, s->max_namespaces);	/* ANAGRPMAX */
	put32(b, 352, s->max_namespaces);	/* NANAGRPID */
	put32(b, 540, s->max_namespaces);	/* MNAN: Linux sizes its ANA log buffer from it */
}

void nvmf_ana_identify_ns(const struct nvmf_ns *ns, uint8_t *b)
{
	if (ns->subsys->ana_reporting)
		put32(b, 92, ns->anagrpid);	/* ANAGRPID */
}

void nvmf_ana_supported_pages(const struct dbk_nvmf_subsystem *s, uint8_t *b)
{
	if (s->ana_reporting)
		put32(b, 4u * NVME_LOG_ANA, 1u);
}

/* -------------------------------------------------------------- controllers */

struct nvmf_ana_port *nvmf_ana_ctrlr_port(const struct dbk_nvmf_subsystem *s, struct nvmf_subsys_listener *sl)
{
	if (!s->ana_reporting || !sl)
		return NULL;
	return nvmf_ana_port_get(sl->ana);
}

/* ---------------------------------------------------------------- control */

int dbk_nvmf_subsystem_set_ana_state(struct dbk_nvmf_subsystem *s, const struct dbk_nvmf_listen_addr *addr,
				     const char *state, uint32_t anagrpid, char *err, size_t errlen)
{
	struct nvmf_subsys_listener *sl;
	struct nvmf_ana_port *p;
	uint8_t st;
	bool changed = false;

	if (nvmf_ana_state_parse(state, &st) != 0) {
		snprintf(err, errlen,
			 "invalid ana_state '%s' (optimized, non_optimized, inaccessible, persistent_loss, change)",
			 state ? state : "");
		return -EINVAL;
	}
	if (anagrpid > s->max_namespaces) {
		snprintf(err, errlen, "anagrpid %u out of range for %s (1..%u, max_namespaces; 0 or none: all)", anagrpid,
			 s->nqn, s->max_namespaces);
		return -EINVAL;
	}
	for (sl = s->listeners; sl; sl = sl->next)
		if (nvmf_listen_addr_equal(&sl->listener->addr, addr))
			break;
	if (!sl) {
		snprintf(err, errlen, "%s has no listener on %s %s:%s", s->nqn, addr->trtype, addr->traddr,
			 addr->trsvcid);
		return -ENOENT;
	}
	if (s->discovery || !s->ana_reporting || !sl->ana) {
		/* without ANA reporting every listener is optimized: setting that is a no-op, anything else an error */
		if (st == NVMF_ANA_OPTIMIZED)
			return 0;
		snprintf(err, errlen, "ANA reporting is disabled on %s (nvmf_create_subsystem -r/--ana-reporting)",
			 s->nqn);
		return -EINVAL;
	}
	p = sl->ana;
	for (uint32_t g = 1; g <= p->ngroups; g++) {
		if (anagrpid != 0 && g != anagrpid)
			continue;
		if (atomic_load_explicit(&p->state[g - 1], memory_order_relaxed) == st)
			continue;
		if (!changed)
			p->chgcnt++;
		changed = true;
		p->grp_chgcnt[g - 1] = p->chgcnt;
		atomic_store_explicit(&p->state[g - 1], st, memory_order_relaxed);
	}
	if (!changed)
		return 0;
	if (anagrpid)
		DBK_NOTICELOG("%s: listener %s %s:%s: ANA group %u now %s", s->nqn, addr->trtype, addr->traddr,
			      addr->trsvcid, anagrpid, nvmf_ana_state_name(st));
	else
		DBK_NOTICELOG("%s: listener %s %s:%s: every ANA group now %s", s->nqn, addr->trtype, addr->traddr,
			      addr->trsvcid, nvmf_ana_state_name(st));
	for (struct dbk_nvmf_ctrlr *c = s->ctrlrs; c; c = c->next)
		if (c->ana == p)
			nvmf_ctrlr_notify_ana_changed(c);
	return 0;
}

json_t *nvmf_ana_listener_json(const struct dbk_nvmf_subsystem *s, const struct nvmf_subsys_listener *sl)
{
	json_t *arr = json_array();

	for (uint32_t g = 1; g <= s->max_namespaces; g++)
		json_array_append_new(arr, json_pack("{s:i, s:s}", "ana_group", (int)g, "ana_state",
						     nvmf_ana_state_name(port_state(sl->ana, g))));
	return arr;
}

void nvmf_ana_write_config(json_t *array, const struct dbk_nvmf_subsystem *s, const struct nvmf_subsys_listener *sl,
			   json_t *listen_address)
{
	uint8_t first = port_state(sl->ana, 1);
	bool uniform = true;

	if (!s->ana_reporting || !sl->ana) {
		json_decref(listen_address);
		return;
	}
	for (uint32_t g = 2; g <= s->max_namespaces; g++)
		if (port_state(sl->ana, g) != first)
			uniform = false;
	if (uniform) {
		if (first != NVMF_ANA_OPTIMIZED)
			json_array_append_new(array, json_pack("{s:s, s:{s:s, s:O, s:s}}", "method",
							       "nvmf_subsystem_listener_set_ana_state", "params", "nqn",
							       s->nqn, "listen_address", listen_address, "ana_state",
							       nvmf_ana_state_name(first)));
		json_decref(listen_address);
		return;
	}
	for (uint32_t g = 1; g <= s->max_namespaces; g++) {
		uint8_t st = port_state(sl->ana, g);

		if (st == NVMF_ANA_OPTIMIZED)
			continue;
		json_array_append_new(array, json_pack("{s:s, s:{s:s, s:O, s:s, s:i}}", "method",
						       "nvmf_subsystem_listener_set_ana_state", "params", "nqn", s->nqn,
						       "listen_address", listen_address, "ana_state",
						       nvmf_ana_state_name(st), "anagrpid", (int)g));
	}
	json_decref(listen_address);
}
