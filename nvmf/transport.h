/*
 * The seam between the NVMe-oF target core (nvmf/{tgt,subsystem,ctrlr,io}.c: subsystems,
 * controllers, discovery, command execution) and a transport (nvmf/tcp).
 *
 * Threads: the target has one poll group per reactor. A transport listens on
 * the main reactor; for each accepted connection it creates a qpair and hands
 * it to the core with dbk_nvmf_tgt_new_qpair() (main reactor). The core
 * picks a poll group (round robin) and, on that group's reactor, calls
 * ops->poll_group_add(); from then on everything about that qpair happens on
 * that reactor.
 *
 * Request life cycle (all on the qpair's reactor):
 *  1. The transport receives a command capsule into one of the qpair's
 *     preallocated dbk_nvmf_request objects, fills cmd, zeroes rsp, sets
 *     xfer/length from the SGL, attaches data buffers (iov), and for
 *     host-to-controller data first receives all of it (in-capsule or
 *     R2T/H2CData).
 *  2. It calls dbk_nvmf_request_exec(req). The core validates and executes the
 *     command (admin, fabrics or I/O), filling the C2H data buffers for reads.
 *  3. The core calls dbk_nvmf_request_complete(req) exactly once, which calls
 *     ops->req_complete(req): the transport sends the C2H data (for a
 *     successful C2H transfer, exactly rsp->... length bytes = req->length)
 *     and the response capsule, then recycles the request.
 *  Zero-copy reads: a transport that can send straight from the bdev's memory
 *  sets req->lend_ok before exec. The core may then complete a Read with
 *  req->lent set and req->iov pointing at memory the bdev lends (the transport's
 *  own buffers stay attached to the transport, untouched). The transport sends
 *  from it and calls dbk_nvmf_request_release(req) once it no longer needs that
 *  memory (data handed to the kernel, or dropped), at the latest when it
 *  recycles the request or finalises the qpair. Until then the core keeps the
 *  namespace's bdev channel (and so the bdev) alive.
 *  Zero-copy writes: for a Write whose data has not been received yet (xfer
 *  HOST_TO_CTRLR, length set, no buffers attached; R2T or in-capsule), a transport that set
 *  req->lend_ok may call dbk_nvmf_request_lend_write(req). If it returns true,
 *  req->iov (one iovec) is the bdev's own memory for the blocks and req->lent
 *  is set: the transport receives the data straight there, then calls
 *  dbk_nvmf_request_exec() as for any write, which completes without a copy.
 *  The bytes land in the bdev as they arrive, so only a transport that cannot
 *  reject them afterwards (no data digest) should ask. If it gives the memory
 *  up before exec (connection gone or stalled), it calls
 *  dbk_nvmf_request_release(req) and brings its own buffers.
 * The transport never frees a request the core holds: when a connection
 * dies it calls dbk_nvmf_qpair_disconnect(); the core stops taking commands,
 * waits until every request it executes has been completed (req_complete is
 * still called; the transport then just recycles without sending), detaches
 * the qpair from its controller, and finally calls ops->qpair_fini().
 */
#ifndef DBK_NVMF_TRANSPORT_H
#define DBK_NVMF_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <jansson.h>

#include "bdev/bdev.h"
#include "nvmf/nvme_spec.h"

struct dbk_nvmf_transport;
struct dbk_nvmf_transport_poll_group;
struct dbk_nvmf_qpair;
struct dbk_nvmf_ctrlr;
struct dbk_nvmf_poll_group;

/* nvmf_create_transport parameters (SPDK names; defaults are SPDK's TCP defaults). */
struct dbk_nvmf_transport_opts {
	uint16_t max_queue_depth;		/* 128 */
	uint16_t max_qpairs_per_ctrlr;		/* 128 (admin + I/O); RPC "max_io_qpairs_per_ctrlr" is this - 1 */
	uint32_t in_capsule_data_size;		/* 4096 */
	uint32_t max_io_size;			/* 131072 */
	uint32_t io_unit_size;			/* 131072 */
	uint32_t max_aq_depth;			/* 128 */
	uint32_t num_shared_buffers;		/* 511 */
	uint32_t buf_cache_size;		/* 32 */
	bool zcopy;				/* true (SPDK: false): zero-copy reads from bdevs that lend memory */
	bool c2h_success;			/* true */
	uint32_t sock_priority;			/* 0 */
	uint32_t abort_timeout_sec;		/* 1 */
	char congestion_control[16];		/* "": the system's; else TCP_CONGESTION for every connection */
};

/* A listen address (also used for qpair local/peer addresses). */
struct dbk_nvmf_listen_addr {
	char trtype[8];		/* "TCP" */
	char adrfam[8];		/* "IPv4" / "IPv6" */
	char traddr[64];
	char trsvcid[32];	/* port */
	bool secure_channel;	/* listen: TLS 1.3 with a PSK required (--secure-channel); not part of the address */
};

enum dbk_nvmf_xfer {
	DBK_NVMF_XFER_NONE = 0,
	DBK_NVMF_XFER_HOST_TO_CTRLR,	/* write-like: data arrives before exec */
	DBK_NVMF_XFER_CTRLR_TO_HOST,	/* read-like: data sent after completion */
};

#define DBK_NVMF_MAX_IOVS 64

struct dbk_nvmf_request {
	struct dbk_nvmf_qpair *qpair;
	struct nvme_cmd *cmd;		/* transport-owned storage, valid until recycled */
	struct nvme_cpl *rsp;		/* zeroed by the transport before exec; cid/sqid set by the transport */
	enum dbk_nvmf_xfer xfer;
	uint32_t length;		/* data length from the SGL (bytes) */
	struct iovec iov[DBK_NVMF_MAX_IOVS];	/* data buffers covering length */
	int iovcnt;
	bool lend_ok;		/* set by the transport: a Read may complete with lent memory, a Write may lend */
	bool lent;		/* set by the core: iov is lent; call dbk_nvmf_request_release when done */
	/*
	 * Core-private from here (the transport does not touch these).
	 */
	struct dbk_bdev_io_wait_entry bdev_wait;	/* retry after -ENOMEM */
	uint32_t core_state;
	uint32_t core_count;	/* e.g. outstanding child I/Os of a DSM request */
	int core_status;
	void *core_ptr;
	struct dbk_nvmf_request *core_next;	/* core-owned lists (e.g. held AERs) */
	struct iovec core_lend_iov;
	void *core_lent_io;	/* the bdev I/O whose memory is lent */
	const void *core_lent_bdev;	/* ... and its bdev (a lent Write checks it is still the namespace's) */
};

/* A queue pair: one NVMe/TCP connection. Allocated by the transport (it may embed this). */
struct dbk_nvmf_qpair {
	struct dbk_nvmf_transport *transport;
	struct dbk_nvmf_transport_poll_group *tgroup;	/* set by the core before poll_group_add */
	struct dbk_nvmf_poll_group *group;		/* core's poll group (the reactor) */
	struct dbk_nvmf_ctrlr *ctrlr;			/* set by a successful Connect */
	uint16_t qid;					/* from Connect */
	uint16_t sq_size;				/* entries (Connect sqsize + 1) */
	bool sq_flow_control_disabled;			/* Connect cattr bit 2 */
	/*
	 * Set by the transport for a connection secured with TLS and a PSK (NULL for plain TCP): the host and
	 * subsystem NQNs of the PSK identity the host authenticated with. Connect must name the same two.
	 */
	const char *tls_hostnqn, *tls_subnqn;
	/* Core-private */
	int core_state;
	uint32_t core_outstanding;	/* requests held by the core */
	void *core_ctx;
	struct dbk_nvmf_qpair *core_next;
	uint64_t core_id;
};

struct dbk_nvmf_transport_ops {
	const char *name;	/* "TCP" */
	void (*opts_init)(struct dbk_nvmf_transport_opts *opts);
	/* Main reactor. Returns NULL and an errno in *rc with a message in err on bad opts. */
	struct dbk_nvmf_transport *(*create)(const struct dbk_nvmf_transport_opts *opts, int *rc, char *err,
					     size_t errlen);
	/* Main reactor, after every poll group is destroyed. */
	void (*destroy)(struct dbk_nvmf_transport *transport);
	/* Main reactor: start / stop accepting on addr. 0 or -errno (-EADDRINUSE, -EADDRNOTAVAIL, -EINVAL). */
	int (*listen)(struct dbk_nvmf_transport *transport, const struct dbk_nvmf_listen_addr *addr);
	void (*stop_listen)(struct dbk_nvmf_transport *transport, const struct dbk_nvmf_listen_addr *addr);
	/* On the group's reactor. */
	struct dbk_nvmf_transport_poll_group *(*poll_group_create)(struct dbk_nvmf_transport *transport);
	void (*poll_group_destroy)(struct dbk_nvmf_transport_poll_group *tgroup);
	/* On the group's reactor: start serving qpair. 0, or -errno (the core then calls qpair_fini). */
	int (*poll_group_add)(struct dbk_nvmf_transport_poll_group *tgroup, struct dbk_nvmf_qpair *qpair);
	/* Optional: stats of the group for nvmf_get_stats (fill obj). */
	void (*poll_group_dump_stats)(struct dbk_nvmf_transport_poll_group *tgroup, json_t *obj);
	/* On the qpair's reactor: send data (for successful C2H) + response, then recycle req. */
	void (*req_complete)(struct dbk_nvmf_request *req);
	/* On the qpair's reactor: close the connection and free the qpair; no request is held by the core. */
	void (*qpair_fini)(struct dbk_nvmf_qpair *qpair);
	/* Addresses of the connection: peer (host) and local (listener). 0 or -errno. */
	int (*qpair_get_peer_addr)(struct dbk_nvmf_qpair *qpair, struct dbk_nvmf_listen_addr *addr);
	int (*qpair_get_local_addr)(struct dbk_nvmf_qpair *qpair, struct dbk_nvmf_listen_addr *addr);
	/* Optional: transport details of a qpair (e.g. negotiated digests) into obj (nvmf_subsystem_get_qpairs). */
	void (*qpair_dump_json)(struct dbk_nvmf_qpair *qpair, json_t *obj);
	/* Optional: write the transport's options into obj (nvmf_get_transports / config). */
	void (*dump_opts_json)(struct dbk_nvmf_transport *transport, json_t *obj);
};

/* Base of every transport object (the transport embeds it first). */
struct dbk_nvmf_transport {
	const struct dbk_nvmf_transport_ops *ops;
	struct dbk_nvmf_transport_opts opts;
};

/* --- the core's entry points for transports --- */

/* Main reactor: a new connection is ready; the core owns its placement from here. */
void dbk_nvmf_tgt_new_qpair(struct dbk_nvmf_qpair *qpair);
/*
 * Main reactor: the TLS PSK (interchange format, NUL-terminated, into secret[len]) that host hostnqn must use for
 * subsystem subnqn through the secure listener local: the host must be allowed on the subsystem with --psk, and
 * the subsystem must listen on local with --secure-channel. The length, or -ENOENT (no such subsystem, host,
 * listener or PSK; nothing secret in the log line either way), -ENOKEY (its key was removed), -ENOBUFS.
 */
int dbk_nvmf_tgt_tls_psk(const char *subnqn, const char *hostnqn, const struct dbk_nvmf_listen_addr *local,
			 char *secret, size_t len);
/* Qpair's reactor: a command (with its host-to-controller data, if any) is ready. */
void dbk_nvmf_request_exec(struct dbk_nvmf_request *req);
/* Qpair's reactor: the core (only) finishes a request; calls ops->req_complete. */
void dbk_nvmf_request_complete(struct dbk_nvmf_request *req);
/* Qpair's reactor: the transport is done with a lent data buffer (req->lent); no-op otherwise. */
void dbk_nvmf_request_release(struct dbk_nvmf_request *req);
/* Qpair's reactor: before receiving a Write's data, ask for the bdev's memory to receive it in (see above). */
bool dbk_nvmf_request_lend_write(struct dbk_nvmf_request *req);
/* Qpair's reactor: the connection is gone or broken (idempotent). */
void dbk_nvmf_qpair_disconnect(struct dbk_nvmf_qpair *qpair);
/* True if the qpair still accepts commands (not disconnecting). */
bool dbk_nvmf_qpair_is_active(const struct dbk_nvmf_qpair *qpair);

/* Transports known to the target (nvmf/transport.c or the core lists them). */
extern const struct dbk_nvmf_transport_ops dbk_nvmf_tcp_transport_ops;

#endif
