/* NVMe-oF JSON-RPC methods (SPDK names, parameters and result shapes). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nvmf/ana.h"
#include "nvmf/auth.h"
#include "nvmf/nvmf_internal.h"
#include "nvmf/referral.h"
#include "rpc/rpc.h"

static void done_bool(void *ctx, int rc, const char *err)
{
	struct dbk_rpc_request *req = ctx;

	if (rc < 0)
		dbk_rpc_send_error(req, rc, "%s", err ? err : strerror(-rc));
	else
		dbk_rpc_send_bool(req, true);
}

static bool tgt_ready(struct dbk_rpc_request *req)
{
	if (!dbk_nvmf_tgt_is_running()) {
		dbk_rpc_send_error(req, -ENODEV, "the NVMe-oF target is not running");
		return false;
	}
	return true;
}

static struct dbk_nvmf_subsystem *find_subsys(struct dbk_rpc_request *req, const char *nqn)
{
	struct dbk_nvmf_subsystem *s = dbk_nvmf_subsystem_find(nqn);

	if (!s)
		dbk_rpc_send_error(req, -ENOENT, "subsystem '%s' not found", nqn);
	return s;
}

/* ------------------------------------------------------------ transports */

struct create_transport_params {
	char *trtype;
	uint16_t max_queue_depth;
	uint16_t max_io_qpairs_per_ctrlr;
	uint32_t in_capsule_data_size;
	uint32_t max_io_size;
	uint32_t io_unit_size;
	uint32_t max_aq_depth;
	uint32_t num_shared_buffers;
	uint32_t buf_cache_size;
	bool zcopy;
	bool c2h_success;
	uint32_t sock_priority;
	uint32_t abort_timeout_sec;
	char *congestion_control;
	json_t *ignored[8];
	bool ignored_bool[5];
};

#define CTF(n, t) { #n, t, offsetof(struct create_transport_params, n), false, NULL, 0, NULL }
static const struct dbk_json_field create_transport_fields[] = {
	{ "trtype", DBK_JSON_STRING, offsetof(struct create_transport_params, trtype), true, NULL, 0, NULL },
	CTF(max_queue_depth, DBK_JSON_U16),
	CTF(max_io_qpairs_per_ctrlr, DBK_JSON_U16),
	CTF(in_capsule_data_size, DBK_JSON_U32),
	CTF(max_io_size, DBK_JSON_U32),
	CTF(io_unit_size, DBK_JSON_U32),
	CTF(max_aq_depth, DBK_JSON_U32),
	CTF(num_shared_buffers, DBK_JSON_U32),
	CTF(buf_cache_size, DBK_JSON_U32),
	CTF(zcopy, DBK_JSON_BOOL),
	CTF(c2h_success, DBK_JSON_BOOL),
	CTF(sock_priority, DBK_JSON_U32),
	CTF(abort_timeout_sec, DBK_JSON_U32),
	CTF(congestion_control, DBK_JSON_STRING),	/* daosblk's own */
	/* accepted for SPDK config compatibility, no effect */
	{ "dif_insert_or_strip", DBK_JSON_ANY, offsetof(struct create_transport_params, ignored[0]), false, NULL, 0, NULL },
	{ "control_msg_num", DBK_JSON_ANY, offsetof(struct create_transport_params, ignored[1]), false, NULL, 0, NULL },
	{ "acceptor_poll_rate", DBK_JSON_ANY, offsetof(struct create_transport_params, ignored[2]), false, NULL, 0, NULL },
	{ "ack_timeout", DBK_JSON_ANY, offsetof(struct create_transport_params, ignored[3]), false, NULL, 0, NULL },
	{ "data_wr_pool_size", DBK_JSON_ANY, offsetof(struct create_transport_params, ignored[4]), false, NULL, 0, NULL },
	{ "disable_command_passthru", DBK_JSON_ANY, offsetof(struct create_transport_params, ignored[5]), false, NULL, 0,
	  NULL },
	{ "tgt_name", DBK_JSON_ANY, offsetof(struct create_transport_params, ignored[6]), false, NULL, 0, NULL },
	/*
	 * SPDK's rpc.py always sends these (false unless a flag is given). They configure the RDMA
	 * (no_srq, no_wr_batching) and vfio-user (disable_mappable_bar0, disable_adaptive_irq,
	 * disable_shadow_doorbells) transports; SPDK's own TCP transport ignores them, and so do we.
	 */
	{ "no_srq", DBK_JSON_BOOL, offsetof(struct create_transport_params, ignored_bool[0]), false, NULL, 0, NULL },
	{ "no_wr_batching", DBK_JSON_BOOL, offsetof(struct create_transport_params, ignored_bool[1]), false, NULL, 0,
	  NULL },
	{ "disable_mappable_bar0", DBK_JSON_BOOL, offsetof(struct create_transport_params, ignored_bool[2]), false,
	  NULL, 0, NULL },
	{ "disable_adaptive_irq", DBK_JSON_BOOL, offsetof(struct create_transport_params, ignored_bool[3]), false,
	  NULL, 0, NULL },
	{ "disable_shadow_doorbells", DBK_JSON_BOOL, offsetof(struct create_transport_params, ignored_bool[4]), false,
	  NULL, 0, NULL },
};

static void rpc_nvmf_create_transport(struct dbk_rpc_request *req, const json_t *params)
{
	struct create_transport_params p = {0};
	struct dbk_nvmf_transport_opts o;
	const struct dbk_nvmf_transport_ops *ops = NULL;
	const json_t *tr = params ? json_object_get(params, "trtype") : NULL;

	memset(&o, 0, sizeof(o));
	if (json_is_string(tr))
		ops = dbk_nvmf_transport_ops_find(json_string_value(tr));
	/* Defaults are the transport's own; an unknown trtype is refused after decoding. */
	if (ops && ops->opts_init)
		ops->opts_init(&o);
	p.max_queue_depth = o.max_queue_depth;
	p.max_io_qpairs_per_ctrlr = (uint16_t)(o.max_qpairs_per_ctrlr - 1);
	p.in_capsule_data_size = o.in_capsule_data_size;
	p.max_io_size = o.max_io_size;
	p.io_unit_size = o.io_unit_size;
	p.max_aq_depth = o.max_aq_depth;
	p.num_shared_buffers = o.num_shared_buffers;
	p.buf_cache_size = o.buf_cache_size;
	p.zcopy = o.zcopy;
	p.c2h_success = o.c2h_success;
	p.sock_priority = o.sock_priority;
	p.abort_timeout_sec = o.abort_timeout_sec;
	if (!dbk_rpc_decode_params(req, params, create_transport_fields, DBK_COUNTOF(create_transport_fields), &p))
		return;
	if (!tgt_ready(req))
		goto out;
	if (!ops) {
		dbk_rpc_send_error(req, -EINVAL, "unknown transport type '%s' (supported: TCP)", p.trtype);
		goto out;
	}
	if (p.max_io_qpairs_per_ctrlr == 0 || p.max_io_qpairs_per_ctrlr == 0xFFFF) {
		dbk_rpc_send_error(req, -EINVAL, "max_io_qpairs_per_ctrlr must be between 1 and 65534");
		goto out;
	}
	if (p.max_queue_depth < 2) {
		dbk_rpc_send_error(req, -EINVAL, "max_queue_depth must be at least 2");
		goto out;
	}
	if (p.max_aq_depth < 2 || p.max_aq_depth > 4096) {
		dbk_rpc_send_error(req, -EINVAL, "max_aq_depth must be between 2 and 4096");
		goto out;
	}
	if (p.congestion_control && strlen(p.congestion_control) >= sizeof(o.congestion_control)) {
		dbk_rpc_send_error(req, -EINVAL, "congestion_control '%s' is too long", p.congestion_control);
		goto out;
	}
	if (p.max_io_size < 4096 || p.io_unit_size == 0) {
		dbk_rpc_send_error(req, -EINVAL, "max_io_size must be at least 4096 and io_unit_size non-zero");
		goto out;
	}
	o.max_queue_depth = p.max_queue_depth;
	o.max_qpairs_per_ctrlr = (uint16_t)(p.max_io_qpairs_per_ctrlr + 1);
	o.in_capsule_data_size = p.in_capsule_data_size;
	o.max_io_size = p.max_io_size;
	o.io_unit_size = p.io_unit_size;
	o.max_aq_depth = p.max_aq_depth;
	o.num_shared_buffers = p.num_shared_buffers;
	o.buf_cache_size = p.buf_cache_size;
	o.zcopy = p.zcopy;
	o.c2h_success = p.c2h_success;
	o.sock_priority = p.sock_priority;
	o.abort_timeout_sec = p.abort_timeout_sec;
	if (p.congestion_control)
		snprintf(o.congestion_control, sizeof(o.congestion_control), "%s", p.congestion_control);
	dbk_nvmf_tgt_create_transport(ops->name, &o, done_bool, req);
out:
	dbk_json_free_object(create_transport_fields, DBK_COUNTOF(create_transport_fields), &p);
}

struct trtype_params {
	char *trtype;
	char *tgt_name;
};
static const struct dbk_json_field get_transports_fields[] = {
	{ "trtype", DBK_JSON_STRING, offsetof(struct trtype_params, trtype), false, NULL, 0, NULL },
	{ "tgt_name", DBK_JSON_STRING, offsetof(struct trtype_params, tgt_name), false, NULL, 0, NULL },
};

static void rpc_nvmf_get_transports(struct dbk_rpc_request *req, const json_t *params)
{
	struct trtype_params p = {0};
	json_t *arr;

	if (!dbk_rpc_decode_params(req, params, get_transports_fields, DBK_COUNTOF(get_transports_fields), &p))
		return;
	if (!tgt_ready(req))
		goto out;
	if (p.trtype && !dbk_nvmf_tgt_find_transport(p.trtype)) {
		dbk_rpc_send_error(req, -ENODEV, "transport '%s' does not exist", p.trtype);
		goto out;
	}
	arr = json_array();
	for (int i = 0; i < dbk_nvmf_tgt_num_transports(); i++) {
		struct dbk_nvmf_transport *t = dbk_nvmf_tgt_transport_at(i);

		if (t && (!p.trtype || strcasecmp(t->ops->name, p.trtype) == 0))
			json_array_append_new(arr, dbk_nvmf_transport_json(t));
	}
	dbk_rpc_send_result(req, arr);
out:
	dbk_json_free_object(get_transports_fields, DBK_COUNTOF(get_transports_fields), &p);
}

/* ------------------------------------------------------------ subsystems */

struct create_subsystem_params {
	char *nqn;
	char *serial_number;
	char *model_number;
	bool allow_any_host;
	uint32_t max_namespaces;
	bool ana_reporting;
	uint16_t min_cntlid;
	uint16_t max_cntlid;
	char *tgt_name;
	bool passthrough;
	bool enable_nssr;
};

#define CSF(n, t) { #n, t, offsetof(struct create_subsystem_params, n), false, NULL, 0, NULL }
static const struct dbk_json_field create_subsystem_fields[] = {
	{ "nqn", DBK_JSON_STRING, offsetof(struct create_subsystem_params, nqn), true, NULL, 0, NULL },
	CSF(serial_number, DBK_JSON_STRING),
	CSF(model_number, DBK_JSON_STRING),
	CSF(allow_any_host, DBK_JSON_BOOL),
	CSF(max_namespaces, DBK_JSON_U32),
	CSF(ana_reporting, DBK_JSON_BOOL),
	CSF(min_cntlid, DBK_JSON_U16),
	CSF(max_cntlid, DBK_JSON_U16),
	CSF(tgt_name, DBK_JSON_STRING),
	/* SPDK's rpc.py always sends both (false unless -p / --enable-nssr); true is refused below */
	CSF(passthrough, DBK_JSON_BOOL),
	CSF(enable_nssr, DBK_JSON_BOOL),
};

static void rpc_nvmf_create_subsystem(struct dbk_rpc_request *req, const json_t *params)
{
	struct create_subsystem_params p = {0};
	struct dbk_nvmf_subsystem_opts o = {0};
	char err[512];
	int rc;

	p.min_cntlid = DBK_NVMF_MIN_CNTLID;
	p.max_cntlid = DBK_NVMF_MAX_CNTLID;
	if (!dbk_rpc_decode_params(req, params, create_subsystem_fields, DBK_COUNTOF(create_subsystem_fields), &p))
		return;
	if (!tgt_ready(req))
		goto out;
	if (p.passthrough) {
		dbk_rpc_send_error(req, -ENOTSUP, "NVMe passthrough subsystems are not supported (namespaces are bdevs)");
		goto out;
	}
	if (p.enable_nssr) {
		dbk_rpc_send_error(req, -ENOTSUP, "NVM subsystem reset (enable_nssr) is not supported");
		goto out;
	}
	if (p.min_cntlid == 0 || p.max_cntlid == 0) {
		dbk_rpc_send_error(req, -EINVAL, "min_cntlid and max_cntlid must be within 1..65519");
		goto out;
	}
	o.serial_number = p.serial_number;
	o.model_number = p.model_number;
	o.allow_any_host = p.allow_any_host;
	o.max_namespaces = p.max_namespaces;
	o.min_cntlid = p.min_cntlid;
	o.max_cntlid = p.max_cntlid;
	o.ana_reporting = p.ana_reporting;
	rc = dbk_nvmf_subsystem_create(p.nqn, &o, NULL, err, sizeof(err));
	if (rc)
		dbk_rpc_send_error(req, rc, "%s", err);
	else
		dbk_rpc_send_bool(req, true);
out:
	dbk_json_free_object(create_subsystem_fields, DBK_COUNTOF(create_subsystem_fields), &p);
}

struct nqn_params {
	char *nqn;
	char *tgt_name;
};
static const struct dbk_json_field nqn_req_fields[] = {
	{ "nqn", DBK_JSON_STRING, offsetof(struct nqn_params, nqn), true, NULL, 0, NULL },
	{ "tgt_name", DBK_JSON_STRING, offsetof(struct nqn_params, tgt_name), false, NULL, 0, NULL },
};
static const struct dbk_json_field nqn_opt_fields[] = {
	{ "nqn", DBK_JSON_STRING, offsetof(struct nqn_params, nqn), false, NULL, 0, NULL },
	{ "tgt_name", DBK_JSON_STRING, offsetof(struct nqn_params, tgt_name), false, NULL, 0, NULL },
};

static void rpc_nvmf_delete_subsystem(struct dbk_rpc_request *req, const json_t *params)
{
	struct nqn_params p = {0};

	if (!dbk_rpc_decode_params(req, params, nqn_req_fields, DBK_COUNTOF(nqn_req_fields), &p))
		return;
	if (tgt_ready(req))
		dbk_nvmf_subsystem_delete(p.nqn, done_bool, req);
	dbk_json_free_object(nqn_req_fields, DBK_COUNTOF(nqn_req_fields), &p);
}

static void rpc_nvmf_get_subsystems(struct dbk_rpc_request *req, const json_t *params)
{
	struct nqn_params p = {0};
	struct dbk_nvmf_subsystem *s;

	if (!dbk_rpc_decode_params(req, params, nqn_opt_fields, DBK_COUNTOF(nqn_opt_fields), &p))
		return;
	if (!tgt_ready(req))
		goto out;
	if (p.nqn) {
		s = find_subsys(req, p.nqn);
		if (s)
			dbk_rpc_send_result(req, json_pack("[o]", dbk_nvmf_subsystem_json(s)));
	} else {
		dbk_rpc_send_result(req, dbk_nvmf_subsystems_json());
	}
out:
	dbk_json_free_object(nqn_opt_fields, DBK_COUNTOF(nqn_opt_fields), &p);
}

/* ------------------------------------------------------------- listeners */

struct listen_address_params {
	char *trtype;
	char *adrfam;
	char *traddr;
	char *trsvcid;
	char *priority;
};

struct listener_params {
	char *nqn;
	struct listen_address_params la;
	char *ana_state;
	uint32_t anagrpid;
	char *tgt_name;
	bool secure_channel;
};

static const struct dbk_json_field listen_address_fields[] = {
	{ "trtype", DBK_JSON_STRING, offsetof(struct listen_address_params, trtype), true, NULL, 0, NULL },
	{ "adrfam", DBK_JSON_STRING, offsetof(struct listen_address_params, adrfam), false, NULL, 0, NULL },
	{ "traddr", DBK_JSON_STRING, offsetof(struct listen_address_params, traddr), true, NULL, 0, NULL },
	{ "trsvcid", DBK_JSON_STRING, offsetof(struct listen_address_params, trsvcid), false, NULL, 0, NULL },
	{ "priority", DBK_JSON_STRING, offsetof(struct listen_address_params, priority), false, NULL, 0, NULL },
};

static const struct dbk_json_field listener_fields[] = {
	{ "nqn", DBK_JSON_STRING, offsetof(struct listener_params, nqn), true, NULL, 0, NULL },
	{ "listen_address", DBK_JSON_OBJECT, offsetof(struct listener_params, la), true, listen_address_fields,
	  DBK_COUNTOF(listen_address_fields), NULL },
	{ "ana_state", DBK_JSON_STRING, offsetof(struct listener_params, ana_state), false, NULL, 0, NULL },
	{ "anagrpid", DBK_JSON_U32, offsetof(struct listener_params, anagrpid), false, NULL, 0, NULL },
	{ "tgt_name", DBK_JSON_STRING, offsetof(struct listener_params, tgt_name), false, NULL, 0, NULL },
	{ "secure_channel", DBK_JSON_BOOL, offsetof(struct listener_params, secure_channel), false, NULL, 0, NULL },
};

/* Normalise an SPDK listen_address; false (error sent) if invalid. */
static bool parse_listen_addr(struct dbk_rpc_request *req, const struct listen_address_params *la,
			      struct dbk_nvmf_listen_addr *a)
{
	const struct dbk_nvmf_transport_ops *ops = dbk_nvmf_transport_ops_find(la->trtype);
	char *end;
	unsigned long port;

	memset(a, 0, sizeof(*a));
	if (!ops) {
		dbk_rpc_send_error(req, -EINVAL, "unknown trtype '%s' (supported: TCP)", la->trtype);
		return false;
	}
	snprintf(a->trtype, sizeof(a->trtype), "%s", ops->name);
	if (!la->adrfam) {
		snprintf(a->adrfam, sizeof(a->adrfam), "%s", strchr(la->traddr, ':') ? "IPv6" : "IPv4");
	} else if (strcasecmp(la->adrfam, "ipv4") == 0) {
		snprintf(a->adrfam, sizeof(a->adrfam), "IPv4");
	} else if (strcasecmp(la->adrfam, "ipv6") == 0) {
		snprintf(a->adrfam, sizeof(a->adrfam), "IPv6");
	} else {
		dbk_rpc_send_error(req, -EINVAL, "unsupported adrfam '%s' (IPv4 or IPv6)", la->adrfam);
		return false;
	}
	if (!la->traddr[0] || strlen(la->traddr) >= sizeof(a->traddr)) {
		dbk_rpc_send_error(req, -EINVAL, "invalid traddr '%s'", la->traddr);
		return false;
	}
	snprintf(a->traddr, sizeof(a->traddr), "%s", la->traddr);
	if (!la->trsvcid) {
		snprintf(a->trsvcid, sizeof(a->trsvcid), "4420");
	} else {
		port = strtoul(la->trsvcid, &end, 10);
		if (!la->trsvcid[0] || *end || port == 0 || port > 65535) {
			dbk_rpc_send_error(req, -EINVAL, "invalid trsvcid '%s': expected a port number 1..65535",
					   la->trsvcid);
			return false;
		}
		snprintf(a->trsvcid, sizeof(a->trsvcid), "%lu", port);
	}
	return true;
}

static void listener_common(struct dbk_rpc_request *req, const json_t *params, bool add)
{
	struct listener_params p = {0};
	struct dbk_nvmf_listen_addr a;
	struct dbk_nvmf_subsystem *s;
	char err[512];
	uint8_t st = 0;
	int rc;

	if (!dbk_rpc_decode_params(req, params, listener_fields, DBK_COUNTOF(listener_fields), &p))
		return;
	if (!tgt_ready(req))
		goto out;
	s = find_subsys(req, p.nqn);
	if (!s)
		goto out;
	if (!parse_listen_addr(req, &p.la, &a))
		goto out;
	if (add && p.ana_state && (nvmf_ana_state_parse(p.ana_state, &st) != 0 ||
				   (st != NVMF_ANA_OPTIMIZED && !s->ana_reporting))) {
		dbk_rpc_send_error(req, -EINVAL, "%s", st ? "ANA reporting is disabled on this subsystem (-r)"
							 : "invalid ana_state (optimized, non_optimized, inaccessible)");
		goto out;
	}
	/* TLS 1.3 with PSKs (nvmf/tcp/sock_tls.c); on remove the flag does not matter. */
	a.secure_channel = add && p.secure_channel;
	rc = add ? dbk_nvmf_subsystem_add_listener(s, &a, err, sizeof(err))
		 : dbk_nvmf_subsystem_remove_listener(s, &a, err, sizeof(err));
	if (rc == 0 && add && st && st != NVMF_ANA_OPTIMIZED)
		rc = dbk_nvmf_subsystem_set_ana_state(s, &a, p.ana_state, 0, err, sizeof(err));
	if (rc)
		dbk_rpc_send_error(req, rc, "%s", err);
	else
		dbk_rpc_send_bool(req, true);
out:
	dbk_json_free_object(listener_fields, DBK_COUNTOF(listener_fields), &p);
}

static void rpc_nvmf_subsystem_add_listener(struct dbk_rpc_request *req, const json_t *params)
{
	listener_common(req, params, true);
}

static void rpc_nvmf_subsystem_remove_listener(struct dbk_rpc_request *req, const json_t *params)
{
	listener_common(req, params, false);
}

static void rpc_nvmf_subsystem_listener_set_ana_state(struct dbk_rpc_request *req, const json_t *params)
{
	struct listener_params p = {0};
	struct dbk_nvmf_listen_addr a;
	struct dbk_nvmf_subsystem *s;
	char err[512];
	int rc;

	if (!dbk_rpc_decode_params(req, params, listener_fields, DBK_COUNTOF(listener_fields), &p))
		return;
	if (!tgt_ready(req) || !(s = find_subsys(req, p.nqn)) || !parse_listen_addr(req, &p.la, &a))
		goto out;
	if (!p.ana_state) {
		dbk_rpc_send_error(req, DBK_JSONRPC_INVALID_PARAMS, "missing required parameter 'ana_state'");
	} else if ((rc = dbk_nvmf_subsystem_set_ana_state(s, &a, p.ana_state, p.anagrpid, err, sizeof(err))) != 0) {
		dbk_rpc_send_error(req, rc, "%s", err);
	} else {
		dbk_rpc_send_bool(req, true);
	}
out:
	dbk_json_free_object(listener_fields, DBK_COUNTOF(listener_fields), &p);
}

static void rpc_nvmf_subsystem_get_listeners(struct dbk_rpc_request *req, const json_t *params)
{
	struct nqn_params p = {0};
	struct dbk_nvmf_subsystem *s;

	if (!dbk_rpc_decode_params(req, params, nqn_req_fields, DBK_COUNTOF(nqn_req_fields), &p))
		return;
	if (tgt_ready(req) && (s = find_subsys(req, p.nqn)))
		dbk_rpc_send_result(req, dbk_nvmf_subsystem_listeners_json(s));
	dbk_json_free_object(nqn_req_fields, DBK_COUNTOF(nqn_req_fields), &p);
}

/* ------------------------------------------------------------ namespaces */

struct ns_params {
	char *bdev_name;
	uint32_t nsid;
	char *nguid;
	char *eui64;
	uuid_t uuid;
	uint32_t anagrpid;
	char *ptpl_file;
	bool no_auto_visible;
	bool hide_metadata;
};

struct add_ns_params {
	char *nqn;
	struct ns_params ns;
	char *tgt_name;
};

static const struct dbk_json_field ns_fields[] = {
	{ "bdev_name", DBK_JSON_STRING, offsetof(struct ns_params, bdev_name), true, NULL, 0, NULL },
	{ "nsid", DBK_JSON_U32, offsetof(struct ns_params, nsid), false, NULL, 0, NULL },
	{ "nguid", DBK_JSON_STRING, offsetof(struct ns_params, nguid), false, NULL, 0, NULL },
	{ "eui64", DBK_JSON_STRING, offsetof(struct ns_params, eui64), false, NULL, 0, NULL },
	{ "uuid", DBK_JSON_UUID, offsetof(struct ns_params, uuid), false, NULL, 0, NULL },
	{ "anagrpid", DBK_JSON_U32, offsetof(struct ns_params, anagrpid), false, NULL, 0, NULL },
	{ "ptpl_file", DBK_JSON_STRING, offsetof(struct ns_params, ptpl_file), false, NULL, 0, NULL },
	{ "no_auto_visible", DBK_JSON_BOOL, offsetof(struct ns_params, no_auto_visible), false, NULL, 0, NULL },
	/*
	 * SPDK's rpc.py always sends it (false unless --hide-metadata). It hides a bdev's separate
	 * metadata from the host; daosblk bdevs have no metadata, so either value exposes the same
	 * namespace and it is accepted with no effect.
	 */
	{ "hide_metadata", DBK_JSON_BOOL, offsetof(struct ns_params, hide_metadata), false, NULL, 0, NULL },
};

static const struct dbk_json_field add_ns_fields[] = {
	{ "nqn", DBK_JSON_STRING, offsetof(struct add_ns_params, nqn), true, NULL, 0, NULL },
	{ "namespace", DBK_JSON_OBJECT, offsetof(struct add_ns_params, ns), true, ns_fields, DBK_COUNTOF(ns_fields),
	  NULL },
	{ "tgt_name", DBK_JSON_STRING, offsetof(struct add_ns_params, tgt_name), false, NULL, 0, NULL },
};

/* Hex string (dashes allowed) of exactly n bytes. */
static bool parse_hex(const char *s, uint8_t *out, size_t n)
{
	size_t got = 0;
	int hi = -1;

	for (; *s; s++) {
		int v;

		if (*s == '-')
			continue;
		if (!isxdigit((unsigned char)*s))
			return false;
		v = isdigit((unsigned char)*s) ? *s - '0' : (tolower((unsigned char)*s) - 'a' + 10);
		if (hi < 0) {
			hi = v;
		} else {
			if (got == n)
				return false;
			out[got++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	return got == n && hi < 0;
}

static void add_ns_done(void *ctx, int rc, const char *err)
{
	struct dbk_rpc_request *req = ctx;

	if (rc < 0)
		dbk_rpc_send_error(req, rc, "%s", err ? err : strerror(-rc));
	else
		dbk_rpc_send_result(req, json_integer(rc));
}

static void rpc_nvmf_subsystem_add_ns(struct dbk_rpc_request *req, const json_t *params)
{
	struct add_ns_params p = {0};
	struct dbk_nvmf_ns_opts o = {0};
	struct dbk_nvmf_subsystem *s;

	if (!dbk_rpc_decode_params(req, params, add_ns_fields, DBK_COUNTOF(add_ns_fields), &p))
		return;
	if (!tgt_ready(req) || !(s = find_subsys(req, p.nqn)))
		goto out;
	if (p.ns.nguid) {
		if (!parse_hex(p.ns.nguid, o.nguid, 16)) {
			dbk_rpc_send_error(req, -EINVAL, "invalid nguid '%s': expected 32 hex digits", p.ns.nguid);
			goto out;
		}
		o.has_nguid = true;
	}
	if (p.ns.eui64) {
		if (!parse_hex(p.ns.eui64, o.eui64, 8)) {
			dbk_rpc_send_error(req, -EINVAL, "invalid eui64 '%s': expected 16 hex digits", p.ns.eui64);
			goto out;
		}
		o.has_eui64 = true;
	}
	if (!uuid_is_null(p.ns.uuid)) {
		uuid_copy(o.uuid, p.ns.uuid);
		o.has_uuid = true;
	}
	if (p.ns.ptpl_file || p.ns.no_auto_visible) {
		dbk_rpc_send_error(req, -ENOTSUP, "ptpl_file and no_auto_visible are not supported");
		goto out;
	}
	o.nsid = p.ns.nsid;
	o.anagrpid = p.ns.anagrpid;
	dbk_nvmf_subsystem_add_ns(s, p.ns.bdev_name, &o, add_ns_done, req);
out:
	dbk_json_free_object(add_ns_fields, DBK_COUNTOF(add_ns_fields), &p);
}

struct remove_ns_params {
	char *nqn;
	uint32_t nsid;
	char *tgt_name;
};
static const struct dbk_json_field remove_ns_fields[] = {
	{ "nqn", DBK_JSON_STRING, offsetof(struct remove_ns_params, nqn), true, NULL, 0, NULL },
	{ "nsid", DBK_JSON_U32, offsetof(struct remove_ns_params, nsid), true, NULL, 0, NULL },
	{ "tgt_name", DBK_JSON_STRING, offsetof(struct remove_ns_params, tgt_name), false, NULL, 0, NULL },
};

static void rpc_nvmf_subsystem_remove_ns(struct dbk_rpc_request *req, const json_t *params)
{
	struct remove_ns_params p = {0};
	struct dbk_nvmf_subsystem *s;

	if (!dbk_rpc_decode_params(req, params, remove_ns_fields, DBK_COUNTOF(remove_ns_fields), &p))
		return;
	if (tgt_ready(req) && (s = find_subsys(req, p.nqn)))
		dbk_nvmf_subsystem_remove_ns(s, p.nsid, done_bool, req);
	dbk_json_free_object(remove_ns_fields, DBK_COUNTOF(remove_ns_fields), &p);
}

/* ------------------------------------------------------------------ hosts */

struct host_params {
	char *nqn;
	char *host;
	char *dhchap_key;
	char *dhchap_ctrlr_key;
	char *psk;
	char *tgt_name;
};
static const struct dbk_json_field host_fields[] = {
	{ "nqn", DBK_JSON_STRING, offsetof(struct host_params, nqn), true, NULL, 0, NULL },
	{ "host", DBK_JSON_STRING, offsetof(struct host_params, host), true, NULL, 0, NULL },
	{ "dhchap_key", DBK_JSON_STRING, offsetof(struct host_params, dhchap_key), false, NULL, 0, NULL },
	{ "dhchap_ctrlr_key", DBK_JSON_STRING, offsetof(struct host_params, dhchap_ctrlr_key), false, NULL, 0, NULL },
	{ "psk", DBK_JSON_STRING, offsetof(struct host_params, psk), false, NULL, 0, NULL },
	{ "tgt_name", DBK_JSON_STRING, offsetof(struct host_params, tgt_name), false, NULL, 0, NULL },
};

static void host_common(struct dbk_rpc_request *req, const json_t *params, bool add)
{
	struct host_params p = {0};
	struct dbk_nvmf_subsystem *s;
	char err[512];
	int rc;

	if (!dbk_rpc_decode_params(req, params, host_fields, DBK_COUNTOF(host_fields), &p))
		return;
	if (!tgt_ready(req) || !(s = find_subsys(req, p.nqn)))
		goto out;
	if (!add && (p.dhchap_key || p.dhchap_ctrlr_key || p.psk)) {
		dbk_rpc_send_error(req, DBK_JSONRPC_INVALID_PARAMS, "nvmf_subsystem_remove_host takes no keys");
		goto out;
	}
	if (add) {
		struct dbk_nvmf_host_keys k = {p.dhchap_key, p.dhchap_ctrlr_key, p.psk};

		rc = dbk_nvmf_subsystem_add_host_ext(s, p.host, &k, err, sizeof(err));
	} else {
		rc = dbk_nvmf_subsystem_remove_host(s, p.host, err, sizeof(err));
	}
	if (rc)
		dbk_rpc_send_error(req, rc, "%s", err);
	else
		dbk_rpc_send_bool(req, true);
out:
	dbk_json_free_object(host_fields, DBK_COUNTOF(host_fields), &p);
}

static void rpc_nvmf_subsystem_add_host(struct dbk_rpc_request *req, const json_t *params)
{
	host_common(req, params, true);
}

static void rpc_nvmf_subsystem_remove_host(struct dbk_rpc_request *req, const json_t *params)
{
	host_common(req, params, false);
}

static const struct dbk_json_field set_keys_fields[] = {
	{ "nqn", DBK_JSON_STRING, offsetof(struct host_params, nqn), true, NULL, 0, NULL },
	{ "host", DBK_JSON_STRING, offsetof(struct host_params, host), true, NULL, 0, NULL },
	{ "dhchap_key", DBK_JSON_STRING, offsetof(struct host_params, dhchap_key), false, NULL, 0, NULL },
	{ "dhchap_ctrlr_key", DBK_JSON_STRING, offsetof(struct host_params, dhchap_ctrlr_key), false, NULL, 0, NULL },
	{ "tgt_name", DBK_JSON_STRING, offsetof(struct host_params, tgt_name), false, NULL, 0, NULL },
};

/* As SPDK: keys not given are cleared (no dhchap_key: the host no longer authenticates). */
static void rpc_nvmf_subsystem_set_keys(struct dbk_rpc_request *req, const json_t *params)
{
	struct host_params p = {0};
	struct dbk_nvmf_subsystem *s;
	char err[512];
	int rc;

	if (!dbk_rpc_decode_params(req, params, set_keys_fields, DBK_COUNTOF(set_keys_fields), &p))
		return;
	if (tgt_ready(req) && (s = find_subsys(req, p.nqn))) {
		struct dbk_nvmf_host_keys k = {p.dhchap_key, p.dhchap_ctrlr_key, NULL};

		rc = dbk_nvmf_subsystem_set_host_keys(s, p.host, &k, err, sizeof(err));
		if (rc)
			dbk_rpc_send_error(req, rc, "%s", err);
		else
			dbk_rpc_send_bool(req, true);
	}
	dbk_json_free_object(set_keys_fields, DBK_COUNTOF(set_keys_fields), &p);
}

/* ------------------------------------------------------------ nvmf_set_config */

struct set_config_params {
	json_t *dhchap_digests;
	json_t *dhchap_dhgroups;
	json_t *acceptor_poll_rate;
	json_t *admin_cmd_passthru;
	char *discovery_filter;
	char *poll_groups_mask;
};
static const struct dbk_json_field set_config_fields[] = {
	{ "dhchap_digests", DBK_JSON_ANY, offsetof(struct set_config_params, dhchap_digests), false, NULL, 0, NULL },
	{ "dhchap_dhgroups", DBK_JSON_ANY, offsetof(struct set_config_params, dhchap_dhgroups), false, NULL, 0, NULL },
	/* SPDK's other options: accepted where they mean what daosblk does anyway */
	{ "acceptor_poll_rate", DBK_JSON_ANY, offsetof(struct set_config_params, acceptor_poll_rate), false, NULL, 0, NULL },
	{ "admin_cmd_passthru", DBK_JSON_ANY, offsetof(struct set_config_params, admin_cmd_passthru), false, NULL, 0, NULL },
	{ "discovery_filter", DBK_JSON_STRING, offsetof(struct set_config_params, discovery_filter), false, NULL, 0, NULL },
	{ "poll_groups_mask", DBK_JSON_STRING, offsetof(struct set_config_params, poll_groups_mask), false, NULL, 0, NULL },
};

/* A JSON array of names -> mask; 0 and a message when it is not one or names something unknown. */
static uint32_t names_mask(const json_t *arr, const char *param, int (*lookup)(const char *), const char *known,
			   char *err, size_t errlen)
{
	uint32_t mask = 0;
	size_t i;
	json_t *v;

	if (!json_is_array(arr) || json_array_size(arr) == 0) {
		snprintf(err, errlen, "parameter '%s' must be a non-empty array of names (%s)", param, known);
		return 0;
	}
	json_array_foreach(arr, i, v) {
		int id = json_is_string(v) ? lookup(json_string_value(v)) : -1;

		if (id < 0) {
			snprintf(err, errlen, "parameter '%s': unknown name %s%.64s%s (known: %s)", param,
				 json_is_string(v) ? "'" : "", json_is_string(v) ? json_string_value(v) : "(not a string)",
				 json_is_string(v) ? "'" : "", known);
			return 0;
		}
		mask |= 1u << id;
	}
	return mask;
}

static void rpc_nvmf_set_config(struct dbk_rpc_request *req, const json_t *params)
{
	struct set_config_params p = {0};
	uint32_t digests = 0, dhgroups = 0;
	char err[256];
	int rc;

	if (!dbk_rpc_decode_params(req, params, set_config_fields, DBK_COUNTOF(set_config_fields), &p))
		return;
	if (p.discovery_filter && strcmp(p.discovery_filter, "match_any") != 0) {
		dbk_rpc_send_error(req, -ENOTSUP, "discovery_filter '%s' is not supported (only match_any)",
				   p.discovery_filter);
		goto out;
	}
	if (p.poll_groups_mask) {
		dbk_rpc_send_error(req, -ENOTSUP, "poll_groups_mask is not supported (one poll group per reactor)");
		goto out;
	}
	if (p.admin_cmd_passthru && json_is_object(p.admin_cmd_passthru) &&
	    json_is_true(json_object_get(p.admin_cmd_passthru, "identify_ctrlr"))) {
		dbk_rpc_send_error(req, -ENOTSUP, "admin_cmd_passthru is not supported");
		goto out;
	}
	if (p.dhchap_digests &&
	    !(digests = names_mask(p.dhchap_digests, "dhchap_digests", dbk_auth_digest_from_name,
				   "sha256, sha384, sha512", err, sizeof(err)))) {
		dbk_rpc_send_error(req, DBK_JSONRPC_INVALID_PARAMS, "%s", err);
		goto out;
	}
	if (p.dhchap_dhgroups &&
	    !(dhgroups = names_mask(p.dhchap_dhgroups, "dhchap_dhgroups", dbk_auth_dhgroup_from_name,
				    "null, ffdhe2048, ffdhe3072, ffdhe4096, ffdhe6144, ffdhe8192", err, sizeof(err)))) {
		dbk_rpc_send_error(req, DBK_JSONRPC_INVALID_PARAMS, "%s", err);
		goto out;
	}
	rc = dbk_nvmf_auth_set_config(digests, dhgroups, err, sizeof(err));
	if (rc)
		dbk_rpc_send_error(req, rc, "%s", err);
	else
		dbk_rpc_send_bool(req, true);
out:
	dbk_json_free_object(set_config_fields, DBK_COUNTOF(set_config_fields), &p);
}

struct allow_any_params {
	char *nqn;
	bool allow_any_host;
	char *tgt_name;
};
static const struct dbk_json_field allow_any_fields[] = {
	{ "nqn", DBK_JSON_STRING, offsetof(struct allow_any_params, nqn), true, NULL, 0, NULL },
	{ "allow_any_host", DBK_JSON_BOOL, offsetof(struct allow_any_params, allow_any_host), true, NULL, 0, NULL },
	{ "tgt_name", DBK_JSON_STRING, offsetof(struct allow_any_params, tgt_name), false, NULL, 0, NULL },
};

static void rpc_nvmf_subsystem_allow_any_host(struct dbk_rpc_request *req, const json_t *params)
{
	struct allow_any_params p = {0};
	struct dbk_nvmf_subsystem *s;
	char err[256];
	int rc;

	if (!dbk_rpc_decode_params(req, params, allow_any_fields, DBK_COUNTOF(allow_any_fields), &p))
		return;
	if (tgt_ready(req) && (s = find_subsys(req, p.nqn))) {
		rc = dbk_nvmf_subsystem_set_allow_any_host(s, p.allow_any_host, err, sizeof(err));
		if (rc)
			dbk_rpc_send_error(req, rc, "%s", err);
		else
			dbk_rpc_send_bool(req, true);
	}
	dbk_json_free_object(allow_any_fields, DBK_COUNTOF(allow_any_fields), &p);
}

/* ------------------------------------------------- controllers, qpairs, stats */

static void rpc_nvmf_subsystem_get_controllers(struct dbk_rpc_request *req, const json_t *params)
{
	struct nqn_params p = {0};
	struct dbk_nvmf_subsystem *s;

	if (!dbk_rpc_decode_params(req, params, nqn_req_fields, DBK_COUNTOF(nqn_req_fields), &p))
		return;
	if (tgt_ready(req) && (s = find_subsys(req, p.nqn)))
		dbk_rpc_send_result(req, dbk_nvmf_subsystem_ctrlrs_json(s));
	dbk_json_free_object(nqn_req_fields, DBK_COUNTOF(nqn_req_fields), &p);
}

static void json_done(void *ctx, json_t *result)
{
	struct dbk_rpc_request *req = ctx;

	if (!result)
		dbk_rpc_send_error(req, -ENOMEM, "out of memory");
	else
		dbk_rpc_send_result(req, result);
}

static void rpc_nvmf_subsystem_get_qpairs(struct dbk_rpc_request *req, const json_t *params)
{
	struct nqn_params p = {0};
	struct dbk_nvmf_subsystem *s;

	if (!dbk_rpc_decode_params(req, params, nqn_req_fields, DBK_COUNTOF(nqn_req_fields), &p))
		return;
	if (tgt_ready(req) && (s = find_subsys(req, p.nqn)))
		dbk_nvmf_subsystem_qpairs_json(s, json_done, req);
	dbk_json_free_object(nqn_req_fields, DBK_COUNTOF(nqn_req_fields), &p);
}

static const struct dbk_json_field stats_fields[] = {
	{ "tgt_name", DBK_JSON_STRING, offsetof(struct nqn_params, tgt_name), false, NULL, 0, NULL },
};

static void rpc_nvmf_get_stats(struct dbk_rpc_request *req, const json_t *params)
{
	struct nqn_params p = {0};

	if (!dbk_rpc_decode_params(req, params, stats_fields, DBK_COUNTOF(stats_fields), &p))
		return;
	if (tgt_ready(req))
		dbk_nvmf_stats_json(json_done, req);
	dbk_json_free_object(stats_fields, DBK_COUNTOF(stats_fields), &p);
}

/* ------------------------------------------------------------- referrals */

struct referral_params {
	struct listen_address_params la;
	char *subnqn;
	bool secure_channel;
	char *tgt_name;
};

static const struct dbk_json_field referral_fields[] = {
	{ "address", DBK_JSON_OBJECT, offsetof(struct referral_params, la), true, listen_address_fields,
	  DBK_COUNTOF(listen_address_fields), NULL },
	{ "subnqn", DBK_JSON_STRING, offsetof(struct referral_params, subnqn), false, NULL, 0, NULL },
	{ "secure_channel", DBK_JSON_BOOL, offsetof(struct referral_params, secure_channel), false, NULL, 0, NULL },
	{ "tgt_name", DBK_JSON_STRING, offsetof(struct referral_params, tgt_name), false, NULL, 0, NULL },
};

static void referral_common(struct dbk_rpc_request *req, const json_t *params, bool add)
{
	struct referral_params p = {0};
	struct dbk_nvmf_listen_addr a;
	char err[512];
	int rc;

	if (!dbk_rpc_decode_params(req, params, referral_fields, DBK_COUNTOF(referral_fields), &p))
		return;
	if (!tgt_ready(req))
		goto out;
	if (!p.la.trsvcid) {
		dbk_rpc_send_error(req, -EINVAL, "a TCP referral needs trsvcid (-s PORT)");
		goto out;
	}
	if (!parse_listen_addr(req, &p.la, &a))
		goto out;
	rc = add ? dbk_nvmf_referral_add(&a, p.subnqn, p.secure_channel, err, sizeof(err))
		 : dbk_nvmf_referral_remove(&a, p.subnqn, err, sizeof(err));
	if (rc)
		dbk_rpc_send_error(req, rc, "%s", err);
	else
		dbk_rpc_send_bool(req, true);
out:
	dbk_json_free_object(referral_fields, DBK_COUNTOF(referral_fields), &p);
}

static void rpc_nvmf_discovery_add_referral(struct dbk_rpc_request *req, const json_t *params)
{
	referral_common(req, params, true);
}

static void rpc_nvmf_discovery_remove_referral(struct dbk_rpc_request *req, const json_t *params)
{
	referral_common(req, params, false);
}

static const struct dbk_json_field tgt_name_fields[] = {
	{ "tgt_name", DBK_JSON_STRING, offsetof(struct nqn_params, tgt_name), false, NULL, 0, NULL },
};

static void rpc_nvmf_discovery_get_referrals(struct dbk_rpc_request *req, const json_t *params)
{
	struct nqn_params p = {0};

	if (!dbk_rpc_decode_params(req, params, tgt_name_fields, DBK_COUNTOF(tgt_name_fields), &p))
		return;
	if (tgt_ready(req))
		dbk_rpc_send_result(req, dbk_nvmf_referrals_json());
	dbk_json_free_object(tgt_name_fields, DBK_COUNTOF(tgt_name_fields), &p);
}

#define RT DBK_RPC_RUNTIME
const struct dbk_rpc_method dbk_rpc_nvmf_methods[] = {
	{ "nvmf_create_transport", rpc_nvmf_create_transport, RT },
	{ "nvmf_get_transports", rpc_nvmf_get_transports, RT },
	{ "nvmf_create_subsystem", rpc_nvmf_create_subsystem, RT },
	{ "nvmf_delete_subsystem", rpc_nvmf_delete_subsystem, RT },
	{ "nvmf_get_subsystems", rpc_nvmf_get_subsystems, RT },
	{ "nvmf_subsystem_add_listener", rpc_nvmf_subsystem_add_listener, RT },
	{ "nvmf_subsystem_remove_listener", rpc_nvmf_subsystem_remove_listener, RT },
	{ "nvmf_subsystem_listener_set_ana_state", rpc_nvmf_subsystem_listener_set_ana_state, RT },
	{ "nvmf_subsystem_get_listeners", rpc_nvmf_subsystem_get_listeners, RT },
	{ "nvmf_subsystem_add_ns", rpc_nvmf_subsystem_add_ns, RT },
	{ "nvmf_subsystem_remove_ns", rpc_nvmf_subsystem_remove_ns, RT },
	{ "nvmf_subsystem_add_host", rpc_nvmf_subsystem_add_host, RT },
	{ "nvmf_subsystem_remove_host", rpc_nvmf_subsystem_remove_host, RT },
	{ "nvmf_subsystem_set_keys", rpc_nvmf_subsystem_set_keys, RT },
	{ "nvmf_set_config", rpc_nvmf_set_config, DBK_RPC_STARTUP | RT },
	{ "nvmf_subsystem_allow_any_host", rpc_nvmf_subsystem_allow_any_host, RT },
	{ "nvmf_subsystem_get_controllers", rpc_nvmf_subsystem_get_controllers, RT },
	{ "nvmf_subsystem_get_qpairs", rpc_nvmf_subsystem_get_qpairs, RT },
	{ "nvmf_get_stats", rpc_nvmf_get_stats, RT },
	{ "nvmf_discovery_add_referral", rpc_nvmf_discovery_add_referral, RT },
	{ "nvmf_discovery_remove_referral", rpc_nvmf_discovery_remove_referral, RT },
	{ "nvmf_discovery_get_referrals", rpc_nvmf_discovery_get_referrals, RT },
	{ NULL, NULL, 0 },
};
