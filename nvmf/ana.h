/*
 * Asymmetric Namespace Access (NVMe base spec 2.0, 8.1.1): per listener of a
 * subsystem, one state per ANA group (a group per possible NSID, as SPDK's
 * target: ANAGRPMAX = NANAGRPID = max_namespaces; a namespace's group defaults
 * to its NSID). A controller reports the states of the listener its admin
 * queue came in on, in the ANA log page (LID 0Ch) and through the ANA change
 * asynchronous event; I/O on a group that is inaccessible, persistently lost
 * or in transition is answered with the path-related status (SCT 3h) and no
 * data, so a multipath host retries it on another path.
 *
 * Threads: struct nvmf_ana_port is owned by the main reactor (reference count,
 * change counters); the states are atomics, written on main and read without
 * a lock by the I/O path on every reactor.
 */
#ifndef DBK_NVMF_ANA_H
#define DBK_NVMF_ANA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "nvmf/nvmf_internal.h"

enum {
	NVMF_ANA_OPTIMIZED = 0x1,
	NVMF_ANA_NON_OPTIMIZED = 0x2,
	NVMF_ANA_INACCESSIBLE = 0x3,
	NVMF_ANA_PERSISTENT_LOSS = 0x4,
	NVMF_ANA_CHANGE = 0xF,
};

#define NVMF_ANA_ANATT_SEC 10	/* ANA transition time reported in Identify (SPDK's and nvmet's value) */
#define NVMF_ANA_LOG_HDR 16
#define NVMF_ANA_LOG_DESC 32

struct nvmf_ana_port {
	uint32_t refs;			/* main: the subsystem listener + every controller on it */
	uint32_t ngroups;		/* = the subsystem's max_namespaces */
	uint64_t chgcnt;		/* main: ANA log header CHGCNT */
	uint64_t *grp_chgcnt;		/* main: [ngroups], the descriptor's CHGCNT */
	_Atomic uint8_t *state;		/* [ngroups], index ANAGRPID - 1 */
};

/* Main. A new port with every group in state initial; NULL if out of memory. */
struct nvmf_ana_port *nvmf_ana_port_new(uint32_t ngroups, uint8_t initial);
struct nvmf_ana_port *nvmf_ana_port_get(struct nvmf_ana_port *p);
void nvmf_ana_port_put(struct nvmf_ana_port *p);

/* "optimized", "non_optimized", "inaccessible" (SPDK's three), "persistent_loss", "change" (daosblk's own). */
int nvmf_ana_state_parse(const char *name, uint8_t *state);
const char *nvmf_ana_state_name(uint8_t state);

/* Any reactor, per I/O: 0, or the SCT 3h status code the command gets on this path. */
static inline int nvmf_ana_path_sc(const struct nvmf_ana_port *p, const struct nvmf_ns *ns)
{
	uint8_t st;

	if (p == NULL || ns->anagrpid == 0 || ns->anagrpid > p->ngroups)
		return 0;
	st = atomic_load_explicit(&p->state[ns->anagrpid - 1], memory_order_relaxed);
	switch (st) {
	case NVMF_ANA_OPTIMIZED:
	case NVMF_ANA_NON_OPTIMIZED:
		return 0;
	case NVMF_ANA_INACCESSIBLE:
		return NVME_SC_ASYMMETRIC_ACCESS_INACCESSIBLE;
	case NVMF_ANA_PERSISTENT_LOSS:
		return NVME_SC_ASYMMETRIC_ACCESS_PERSISTENT_LOSS;
	default:
		return NVME_SC_ASYMMETRIC_ACCESS_TRANSITION;
	}
}

/*
 * The ANA log page of subsystem s as seen through port p (NULL: every group optimized): the groups that hold
 * at least one active namespace, in ascending ANAGRPID, each with its NSIDs unless rgo (Return Groups Only).
 * nvmf_ana_log_len() is its size; nvmf_ana_log_read() copies len bytes from offset into out (zero past the
 * end, as any log page) and returns how many bytes came from the log. Main reactor (reads s->ns).
 */
size_t nvmf_ana_log_len(const struct dbk_nvmf_subsystem *s, bool rgo);
size_t nvmf_ana_log_read(const struct dbk_nvmf_subsystem *s, const struct nvmf_ana_port *p, bool rgo,
			 uint64_t offset, uint8_t *out, size_t len);

/* Hooks of ctrlr.c (the controller's thread unless noted). */
void nvmf_ana_identify_ctrlr(const struct dbk_nvmf_subsystem *s, uint8_t *b);	/* main */
void nvmf_ana_identify_ns(const struct nvmf_ns *ns, uint8_t *b);			/* main */
void nvmf_ana_supported_pages(const struct dbk_nvmf_subsystem *s, uint8_t *b);
/* Get Log Page LID 0Ch: takes the request (answered from the main reactor); false: no ANA here. */
bool nvmf_ana_get_log_page(struct dbk_nvmf_request *req);
/* Main, at admin Connect: the port a new controller of s reports (a reference), or NULL. */
struct nvmf_ana_port *nvmf_ana_ctrlr_port(const struct dbk_nvmf_subsystem *s, struct nvmf_subsys_listener *sl);

/* Main. State of one group (anagrpid > 0) or of all (0) on the listener addr of s; AENs to its controllers. */
int dbk_nvmf_subsystem_set_ana_state(struct dbk_nvmf_subsystem *s, const struct dbk_nvmf_listen_addr *addr,
				     const char *state, uint32_t anagrpid, char *err, size_t errlen);
/* Main: "ana_states" of a listener (nvmf_subsystem_get_listeners), and its config entries (save_config). */
json_t *nvmf_ana_listener_json(const struct dbk_nvmf_subsystem *s, const struct nvmf_subsys_listener *sl);
void nvmf_ana_write_config(json_t *array, const struct dbk_nvmf_subsystem *s, const struct nvmf_subsys_listener *sl,
			   json_t *listen_address);

#endif
