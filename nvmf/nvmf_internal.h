/*
 * NVMe-oF target core internals, and the C API the RPC layer and tests use.
 *
 * Threading model:
 *  - Main reactor (reactor 0) owns the registry: transports, listeners,
 *    subsystems (namespaces, hosts, listen addresses), the controller lists of
 *    subsystems, cntlid allocation and the discovery generation counter.
 *  - Each reactor has one core poll group (struct dbk_nvmf_poll_group) with one
 *    transport poll group per transport and the qpairs placed on it.
 *  - A controller lives on its admin qpair's reactor ("ctrlr thread"): CC/CSTS,
 *    features, AERs, keep-alive. I/O qpairs on other reactors join and leave
 *    it with messages.
 *  - Per subsystem, per poll group, a namespace table (subsys->pg_ns[group]) of
 *    bdev channels, touched only by that group's reactor after creation;
 *    namespace add/remove update it with dbk_for_each_thread messages.
 *  - Admin commands that read registry state (Identify, discovery log) run on
 *    the main reactor (message round trip) and complete on the qpair's reactor.
 */
#ifndef DBK_NVMF_NVMF_INTERNAL_H
#define DBK_NVMF_NVMF_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uuid/uuid.h>

#include <jansson.h>

#include "bdev/bdev.h"
#include "nvmf/nvme_spec.h"
#include "nvmf/nvmf.h"
#include "nvmf/transport.h"
#include "thread/thread.h"

#define DBK_NVMF_MAX_TRANSPORTS 4
#define DBK_NVMF_MAX_SUBSYSTEMS 1024
#define DBK_NVMF_DEFAULT_MAX_NAMESPACES 32
#define DBK_NVMF_MAX_NAMESPACES_LIMIT 1024
#define DBK_NVMF_MAX_AER 4
#define DBK_NVMF_MAX_CHANGED_NS 1024
#define DBK_NVMF_MIN_CNTLID 1
#define DBK_NVMF_MAX_CNTLID 0xFFEF
#define DBK_NVMF_DEFAULT_SN "00000000000000000000"
#define DBK_NVMF_DEFAULT_MN "daosblk Virtual Controller"
#define DBK_NVMF_FW_REV "0.1"
#define DBK_NVMF_KAS_100MS 10	/* Identify KAS: keep-alive granularity 1 s */
#define DBK_NVMF_DEFAULT_KATO_MS 120000

typedef void (*dbk_nvmf_done_cb)(void *ctx, int rc, const char *err);

/* ---------------------------------------------------------- transports */

/* Make a transport type known (tests register theirs; TCP is built in). 0, -EEXIST, -ENOMEM. */
int dbk_nvmf_transport_register(const struct dbk_nvmf_transport_ops *ops);
const struct dbk_nvmf_transport_ops *dbk_nvmf_transport_ops_find(const char *trtype);
/* Create a transport (poll groups get their transport poll group); cb(ctx, rc, err) on main. */
void dbk_nvmf_tgt_create_transport(const char *trtype, const struct dbk_nvmf_transport_opts *opts,
				   dbk_nvmf_done_cb cb, void *ctx);
struct dbk_nvmf_transport *dbk_nvmf_tgt_find_transport(const char *trtype);
int dbk_nvmf_tgt_num_transports(void);
struct dbk_nvmf_transport *dbk_nvmf_tgt_transport_at(int idx);
json_t *dbk_nvmf_transport_json(struct dbk_nvmf_transport *t);

/* ---------------------------------------------------------- subsystems */

struct dbk_nvmf_subsystem_opts {
	const char *serial_number;	/* NULL: default */
	const char *model_number;	/* NULL: default */
	bool allow_any_host;
	uint32_t max_namespaces;	/* 0: default 32 */
	uint16_t min_cntlid;		/* 0: 1 */
	uint16_t max_cntlid;		/* 0: 0xFFEF */
	bool ana_reporting;		/* ANA: CMIC bit 3, log page 0x0C, per-listener group states (nvmf/ana.c) */
};

struct dbk_nvmf_ns_opts {
	uint32_t nsid;	/* 0: lowest free */
	bool has_nguid, has_eui64, has_uuid;
	uint8_t nguid[16];
	uint8_t eui64[8];
	uuid_t uuid;
	uint32_t anagrpid;	/* 0: the NSID (SPDK's default) */
};

struct dbk_nvmf_subsystem;

bool dbk_nvmf_nqn_is_valid(const char *nqn, char *err, size_t errlen);
struct dbk_nvmf_subsystem *dbk_nvmf_subsystem_find(const char *nqn);	/* "discovery" too */
int dbk_nvmf_subsystem_create(const char *nqn, const struct dbk_nvmf_subsystem_opts *opts,
			      struct dbk_nvmf_subsystem **out, char *err, size_t errlen);
/* Disconnect its controllers, release namespaces, free. cb on main. */
void dbk_nvmf_subsystem_delete(const char *nqn, dbk_nvmf_done_cb cb, void *ctx);
int dbk_nvmf_subsystem_add_listener(struct dbk_nvmf_subsystem *s, const struct dbk_nvmf_listen_addr *addr,
				    char *err, size_t errlen);
int dbk_nvmf_subsystem_remove_listener(struct dbk_nvmf_subsystem *s, const struct dbk_nvmf_listen_addr *addr,
				       char *err, size_t errlen);
bool dbk_nvmf_subsystem_has_listener(struct dbk_nvmf_subsystem *s, const struct dbk_nvmf_listen_addr *addr,
				     char *err, size_t errlen);
int dbk_nvmf_subsystem_add_host(struct dbk_nvmf_subsystem *s, const char *hostnqn, char *err, size_t errlen);
/* Key names (NULL: none), looked up in the keyring; the DH-HMAC-CHAP ones must hold DHHC-1 secrets. */
struct dbk_nvmf_host_keys {
	const char *dhchap_key;
	const char *dhchap_ctrlr_key;
	const char *psk;
};
int dbk_nvmf_subsystem_add_host_ext(struct dbk_nvmf_subsystem *s, const char *hostnqn,
				    const struct dbk_nvmf_host_keys *keys, char *err, size_t errlen);
/* nvmf_subsystem_set_keys: replace the host's DH-HMAC-CHAP keys (psk untouched); next authentication uses them. */
int dbk_nvmf_subsystem_set_host_keys(struct dbk_nvmf_subsystem *s, const char *hostnqn,
				     const struct dbk_nvmf_host_keys *keys, char *err, size_t errlen);
int dbk_nvmf_subsystem_remove_host(struct dbk_nvmf_subsystem *s, const char *hostnqn, char *err, size_t errlen);
int dbk_nvmf_subsystem_set_allow_any_host(struct dbk_nvmf_subsystem *s, bool allow, char *err, size_t errlen);
/* cb(ctx, rc, err): rc = nsid (> 0) on success, -errno otherwise. */
void dbk_nvmf_subsystem_add_ns(struct dbk_nvmf_subsystem *s, const char *bdev_name,
			       const struct dbk_nvmf_ns_opts *opts, dbk_nvmf_done_cb cb, void *ctx);
void dbk_nvmf_subsystem_remove_ns(struct dbk_nvmf_subsystem *s, uint32_t nsid, dbk_nvmf_done_cb cb, void *ctx);
bool dbk_nvmf_subsystem_is_discovery(const struct dbk_nvmf_subsystem *s);
const char *dbk_nvmf_subsystem_get_nqn(const struct dbk_nvmf_subsystem *s);

/* JSON views (main reactor). */
json_t *dbk_nvmf_subsystem_json(struct dbk_nvmf_subsystem *s);		/* nvmf_get_subsystems entry */
json_t *dbk_nvmf_subsystems_json(void);
json_t *dbk_nvmf_subsystem_listeners_json(struct dbk_nvmf_subsystem *s);
json_t *dbk_nvmf_subsystem_ctrlrs_json(struct dbk_nvmf_subsystem *s);
/* Async (visits every poll group); cb(ctx, result or NULL) on main, result is a new reference. */
typedef void (*dbk_nvmf_json_cb)(void *ctx, json_t *result);
void dbk_nvmf_subsystem_qpairs_json(struct dbk_nvmf_subsystem *s, dbk_nvmf_json_cb cb, void *ctx);
void dbk_nvmf_stats_json(dbk_nvmf_json_cb cb, void *ctx);

uint64_t dbk_nvmf_discovery_genctr(void);
bool dbk_nvmf_tgt_is_running(void);

/* =============================================================== internals */

struct nvmf_listener {
	struct dbk_nvmf_listen_addr addr;
	struct dbk_nvmf_transport *transport;
	uint32_t refcnt;
	uint16_t portid;
	bool stopped;	/* target shutting down: no longer listening */
	struct nvmf_listener *next;
};

struct nvmf_ns {
	uint32_t nsid;
	struct dbk_nvmf_subsystem *subsys;
	struct dbk_bdev_desc *desc;
	struct dbk_bdev *bdev;
	uint32_t block_size;
	uint8_t nguid[16];
	uint8_t eui64[8];
	uuid_t uuid;
	bool has_eui64;
	uint32_t anagrpid;	/* 1..max_namespaces */
	bool attached;	/* every poll group has its channel: visible to hosts */
	bool removing;
};

static inline bool nvmf_ns_active(const struct nvmf_ns *ns)
{
	return ns && ns->attached && !ns->removing;
}

/* One poll group's view of one namespace (owned by that group's reactor). */
struct nvmf_pg_ns {
	struct nvmf_ns *ns;		/* NULL: not attached here */
	struct dbk_io_channel *ch;
	struct dbk_io_channel *old_ch;	/* detached, put once outstanding == 0 */
	uint32_t outstanding;
};

struct dbk_key;
struct nvmf_host {
	char nqn[NVME_NQN_MAX_LEN + 1];
	/* keyring references (NULL: none); changed on main only, read on main (Connect) */
	struct dbk_key *dhchap_key;		/* the host must authenticate (DH-HMAC-CHAP) */
	struct dbk_key *dhchap_ctrlr_key;	/* ... and the controller too (bidirectional) */
	struct dbk_key *psk;			/* TLS pre-shared key */
	struct nvmf_host *next;
};

struct nvmf_ana_port;	/* nvmf/ana.h */

struct nvmf_subsys_listener {
	struct nvmf_listener *listener;
	struct nvmf_ana_port *ana;	/* ANA group states of this listener (NULL for discovery) */
	struct nvmf_subsys_listener *next;
};

struct dbk_nvmf_subsystem {
	char nqn[NVME_NQN_MAX_LEN + 1];
	bool discovery;
	char sn[21];
	char mn[41];
	bool allow_any_host;
	bool ana_reporting;
	uint32_t max_namespaces;
	uint16_t min_cntlid, max_cntlid;
	uint16_t next_cntlid;
	uint32_t id;
	struct nvmf_ns **ns;			/* [max_namespaces], main's view */
	struct nvmf_pg_ns **pg_ns;		/* [num_groups][max_namespaces] */
	struct nvmf_host *hosts;
	struct nvmf_subsys_listener *listeners;
	struct dbk_nvmf_ctrlr *ctrlrs;		/* main's list */
	uint32_t num_ctrlrs;
	bool deleting;
	uint32_t pending_ns_ops;
	dbk_nvmf_done_cb delete_cb;
	void *delete_ctx;
	struct dbk_nvmf_subsystem *next;
};

struct nvmf_features {
	uint32_t arbitration;
	uint32_t power_mgmt;
	uint32_t temp_threshold;
	uint32_t error_recovery;
	uint32_t vwc;
	uint32_t irq_coalescing;
	uint32_t write_atomicity;
	uint32_t aec;
};

#define NVMF_EVENT_NS_ATTR 0x1u
#define NVMF_EVENT_DISC_LOG 0x2u
#define NVMF_EVENT_ANA 0x4u

struct dbk_nvmf_ctrlr {
	struct dbk_nvmf_subsystem *subsys;
	struct dbk_nvmf_transport *transport;
	struct dbk_nvmf_poll_group *group;	/* ctrlr thread */
	struct dbk_thread *thread;
	uint16_t cntlid;
	char hostnqn[NVME_NQN_MAX_LEN + 1];
	uint8_t hostid[16];
	struct dbk_nvmf_qpair *admin_qpair;
	struct nvmf_ana_port *ana;		/* listener the admin queue came in on, with ana_reporting (ref held) */
	struct dbk_nvmf_qpair **qpairs;		/* [max_qpairs_per_ctrlr], ctrlr thread */
	uint16_t max_qpairs;
	uint32_t num_qpairs;			/* attached or reserved, incl. admin */
	uint32_t cc, csts;
	uint32_t kato_ms;
	uint64_t last_ka_ns;
	struct dbk_poller *ka_poller;
	struct dbk_nvmf_request *aer[DBK_NVMF_MAX_AER];
	uint32_t num_aer;
	uint32_t pending_events;
	uint32_t changed_ns[DBK_NVMF_MAX_CHANGED_NS];
	uint32_t num_changed_ns;
	bool changed_ns_overflow;
	struct nvmf_features feat;
	bool vwc_present;
	atomic_bool write_through;		/* host disabled the volatile write cache (read by I/O qpairs) */
	bool destroying;
	bool admin_gone;
	struct dbk_nvmf_ctrlr *next;		/* subsys list (main) */
};

struct dbk_nvmf_poll_group {
	int idx;
	struct dbk_thread *thread;
	struct dbk_nvmf_transport_poll_group *tgroups[DBK_NVMF_MAX_TRANSPORTS];
	struct dbk_nvmf_qpair *qpairs;		/* list through core_next */
	uint64_t admin_qpairs, io_qpairs;
	uint64_t current_admin_qpairs, current_io_qpairs;
	uint64_t pending_bdev_io;
};

/* qpair core_state */
enum {
	NVMF_QPAIR_UNINIT = 0,
	NVMF_QPAIR_ACTIVE,
	NVMF_QPAIR_DISCONNECTING,
	NVMF_QPAIR_DETACHING,
	NVMF_QPAIR_DONE,
};

/* Target-wide state (main reactor unless noted). */
struct nvmf_tgt {
	bool running;
	bool stopping;
	int num_groups;
	struct dbk_nvmf_poll_group *groups;
	struct dbk_nvmf_transport *transports[DBK_NVMF_MAX_TRANSPORTS];
	int num_transports;
	struct nvmf_listener *listeners;
	uint16_t next_portid;
	struct dbk_nvmf_subsystem *subsystems;	/* discovery first */
	struct dbk_nvmf_subsystem *discovery;
	struct dbk_nvmf_subsystem *by_id[DBK_NVMF_MAX_SUBSYSTEMS];
	struct nvmf_referral *referrals;	/* nvmf/referral.c */
	uint64_t genctr;
	uint32_t rr_next;
	uint64_t next_qpair_id;
	atomic_int live_qpairs;	/* qpairs handed to the core and not yet finished */
};
extern struct nvmf_tgt g_nvmf_tgt;

/* tgt.c */
struct dbk_nvmf_poll_group *nvmf_group_of_thread(void);
struct nvmf_listener *nvmf_listener_get(const struct dbk_nvmf_listen_addr *addr, char *err, size_t errlen,
				       int *rc);
void nvmf_listener_put(struct nvmf_listener *l);
int nvmf_transport_index(const struct dbk_nvmf_transport *t);
bool nvmf_listen_addr_equal(const struct dbk_nvmf_listen_addr *a, const struct dbk_nvmf_listen_addr *b);
void nvmf_qpair_list_remove(struct dbk_nvmf_poll_group *g, struct dbk_nvmf_qpair *q);

/* subsystem.c */
void nvmf_discovery_changed(void);
bool nvmf_subsystem_host_allowed(const struct dbk_nvmf_subsystem *s, const char *hostnqn);
struct nvmf_host *nvmf_subsystem_find_host(const struct dbk_nvmf_subsystem *s, const char *hostnqn);
/* Build the discovery log for hostnqn; returns malloc'ed buffer, *len bytes. */
void *nvmf_discovery_log_build(const char *hostnqn, size_t *len);
int nvmf_subsystems_init(void);
void nvmf_subsystems_destroy_all(void (*cb)(void *ctx), void *ctx);
void nvmf_subsystem_ctrlr_removed(struct dbk_nvmf_subsystem *s);

/* tls.c: a qpair secured with TLS connects only as the host and to the subsystem of its PSK identity. */
bool nvmf_tls_connect_allowed(const struct dbk_nvmf_qpair *q, const struct dbk_nvmf_subsystem *s,
			      const char *hostnqn);

/* ctrlr.c */
void nvmf_ctrlr_exec_fabrics(struct dbk_nvmf_request *req);
void nvmf_ctrlr_exec_admin(struct dbk_nvmf_request *req);
/* Qpair thread: detach qpair from its controller, then done(qpair) on the qpair thread. */
void nvmf_ctrlr_qpair_detach(struct dbk_nvmf_qpair *qpair, void (*done)(struct dbk_nvmf_qpair *qpair));
/* Main: notify a controller (message to its thread). */
void nvmf_ctrlr_notify_ns_changed(struct dbk_nvmf_ctrlr *ctrlr, uint32_t nsid);
void nvmf_ctrlr_notify_discovery_changed(struct dbk_nvmf_ctrlr *ctrlr);
void nvmf_ctrlr_notify_ana_changed(struct dbk_nvmf_ctrlr *ctrlr);
/* Main: disconnect every qpair of the controller (message). */
void nvmf_ctrlr_disconnect_all(struct dbk_nvmf_ctrlr *ctrlr);
/* Qpair thread (admin qpair): fail held AERs. */
void nvmf_ctrlr_abort_aers(struct dbk_nvmf_ctrlr *ctrlr);
bool nvmf_ctrlr_vwc_present(const struct dbk_nvmf_subsystem *s);
/* ctrlr_pages.c: builders of further log pages and Identify structures (b zeroed, big enough; return sizes) */
size_t nvmf_log_supported_pages(uint8_t *b);
size_t nvmf_log_cmd_effects(uint8_t *b);
size_t nvmf_log_feature_ids(const struct dbk_nvmf_ctrlr *ctrlr, uint8_t *b);
void nvmf_identify_ns_cs_indep(const struct nvmf_ns *ns, uint8_t *b);

/* io.c */
void nvmf_io_exec(struct dbk_nvmf_request *req);

/* helpers */
static inline void nvmf_req_status(struct dbk_nvmf_request *req, int sct, int sc)
{
	nvme_cpl_set_status(req->rsp, sct, sc, sct == 0 && sc == 0 ? 0 : 1);
}
/* Copy from / to a request's iovecs at offset; returns bytes copied. */
size_t nvmf_req_copy_to(struct dbk_nvmf_request *req, size_t off, const void *src, size_t len);
size_t nvmf_req_copy_from(struct dbk_nvmf_request *req, size_t off, void *dst, size_t len);
/* Complete a request with data buf[len] at log/identify semantics (zero-fill to req->length). */
void nvmf_req_fill_data(struct dbk_nvmf_request *req, const void *buf, size_t len);

#endif
