/*
 * The block device layer as its users (nvmf, rpc, tests) see it.
 *
 * A bdev is opened into a descriptor; I/O is submitted on a per-thread
 * io_channel got from the descriptor. Every call below must be made on a
 * reactor thread; I/O completions run on the thread that submitted the I/O.
 * Registry changes (register, unregister, open, close, claims) are made on the
 * main reactor (reactor 0).
 */
#ifndef DBK_BDEV_BDEV_H
#define DBK_BDEV_BDEV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <uuid/uuid.h>

#include <jansson.h>

struct dbk_bdev;
struct dbk_bdev_desc;
struct dbk_bdev_io;
struct dbk_io_channel;

enum dbk_bdev_io_type {
	DBK_BDEV_IO_TYPE_READ = 0,
	DBK_BDEV_IO_TYPE_WRITE,
	DBK_BDEV_IO_TYPE_FLUSH,
	DBK_BDEV_IO_TYPE_UNMAP,
	DBK_BDEV_IO_TYPE_WRITE_ZEROES,
	DBK_BDEV_IO_TYPE_RESET,
	DBK_BDEV_IO_TYPE_COMPARE,
	DBK_BDEV_NUM_IO_TYPES
};
/* "read", "write", "flush", "unmap", "write_zeroes", "reset", "compare" (SPDK's supported_io_types keys). */
const char *dbk_bdev_io_type_name(enum dbk_bdev_io_type type);

enum dbk_bdev_event_type {
	DBK_BDEV_EVENT_REMOVE,	/* the bdev is being unregistered: close the descriptor */
	DBK_BDEV_EVENT_RESIZE,	/* num_blocks changed */
};
/* Runs on the thread that opened the descriptor. */
typedef void (*dbk_bdev_event_cb)(enum dbk_bdev_event_type type, struct dbk_bdev *bdev, void *event_ctx);

/* -------------------------------------------------------------- registry */

/* Look up by name, alias, or UUID string. NULL if none. */
struct dbk_bdev *dbk_bdev_get_by_name(const char *name);
/* Iterate the registry in registration order. */
struct dbk_bdev *dbk_bdev_first(void);
struct dbk_bdev *dbk_bdev_next(struct dbk_bdev *prev);

const char *dbk_bdev_get_name(const struct dbk_bdev *bdev);
const char *dbk_bdev_get_product_name(const struct dbk_bdev *bdev);
const char *dbk_bdev_get_module_name(const struct dbk_bdev *bdev);
uint32_t dbk_bdev_get_block_size(const struct dbk_bdev *bdev);
uint64_t dbk_bdev_get_num_blocks(const struct dbk_bdev *bdev);
const uuid_t *dbk_bdev_get_uuid(const struct dbk_bdev *bdev);
bool dbk_bdev_io_type_supported(struct dbk_bdev *bdev, enum dbk_bdev_io_type type);
/* True if the bdev has a volatile write cache (then FLUSH makes writes durable). */
bool dbk_bdev_has_write_cache(const struct dbk_bdev *bdev);
/* Largest single I/O in blocks the caller may submit (0 = no limit; the core splits anyway). */
uint32_t dbk_bdev_get_max_transfer_blocks(const struct dbk_bdev *bdev);
/* Module that claimed the bdev, or NULL. */
const char *dbk_bdev_get_claim_owner(const struct dbk_bdev *bdev);

/* ------------------------------------------------------- open and claims */

/*
 * Open by name/alias/uuid. Returns 0, -ENODEV (no such bdev, or being
 * unregistered), -EINVAL (event_cb NULL). A write open of a claimed bdev by a
 * non-owner is allowed (exclusivity is dbk_bdev_claim's job), so no -EPERM here.
 * I/O that modifies data on a read-only descriptor fails with -EBADF.
 */
int dbk_bdev_open_ext(const char *name, bool write, dbk_bdev_event_cb event_cb, void *event_ctx,
		      struct dbk_bdev_desc **desc);
/* Close; may be called on any reactor thread but must be the opening thread for event delivery to stop. */
void dbk_bdev_close(struct dbk_bdev_desc *desc);
struct dbk_bdev *dbk_bdev_desc_get_bdev(struct dbk_bdev_desc *desc);

/*
 * Exclusive-write claim (e.g. an NVMe namespace claims its bdev). A bdev has at
 * most one claim. Returns 0, or -EPERM naming nothing (caller reports owner via
 * dbk_bdev_get_claim_owner).
 */
int dbk_bdev_claim(struct dbk_bdev_desc *desc, const char *owner);
void dbk_bdev_release_claim(struct dbk_bdev_desc *desc);

/* ----------------------------------------------------------------- I/O */

/* The calling reactor's channel for this descriptor's bdev (put with dbk_put_io_channel). */
struct dbk_io_channel *dbk_bdev_get_io_channel(struct dbk_bdev_desc *desc);

/*
 * Completion: success or not. Call dbk_bdev_free_io(io) when done with it
 * (after reading its status). Runs on the submitting thread, never inside the
 * submit call itself? -- it MAY run inside the submit call for modules that
 * complete synchronously (malloc/null); callers must handle that.
 */
typedef void (*dbk_bdev_io_completion_cb)(struct dbk_bdev_io *io, bool success, void *cb_arg);

/*
 * Submission returns 0 (the callback will run), -EINVAL (range past the end,
 * zero length, unaligned iovecs for the length), -ENOTSUP (type not supported
 * and not emulated), or -ENOMEM (no free bdev_io on this channel: wait with
 * dbk_bdev_queue_io_wait and retry). offset/num are in blocks.
 */
int dbk_bdev_readv_blocks(struct dbk_bdev_desc *desc, struct dbk_io_channel *ch, struct iovec *iov, int iovcnt,
			  uint64_t offset_blocks, uint64_t num_blocks, dbk_bdev_io_completion_cb cb, void *cb_arg);
int dbk_bdev_writev_blocks(struct dbk_bdev_desc *desc, struct dbk_io_channel *ch, struct iovec *iov, int iovcnt,
			   uint64_t offset_blocks, uint64_t num_blocks, dbk_bdev_io_completion_cb cb, void *cb_arg);
/* Compare: succeeds only if the media equals iov; a miscompare completes with
 * NVMe status (SCT 2 media errors, SC 0x85 compare failure). */
int dbk_bdev_comparev_blocks(struct dbk_bdev_desc *desc, struct dbk_io_channel *ch, struct iovec *iov, int iovcnt,
			     uint64_t offset_blocks, uint64_t num_blocks, dbk_bdev_io_completion_cb cb, void *cb_arg);
int dbk_bdev_flush_blocks(struct dbk_bdev_desc *desc, struct dbk_io_channel *ch, uint64_t offset_blocks,
			  uint64_t num_blocks, dbk_bdev_io_completion_cb cb, void *cb_arg);
int dbk_bdev_unmap_blocks(struct dbk_bdev_desc *desc, struct dbk_io_channel *ch, uint64_t offset_blocks,
			  uint64_t num_blocks, dbk_bdev_io_completion_cb cb, void *cb_arg);
/* Emulated with zero-buffer writes when the module lacks WRITE_ZEROES. */
int dbk_bdev_write_zeroes_blocks(struct dbk_bdev_desc *desc, struct dbk_io_channel *ch, uint64_t offset_blocks,
				 uint64_t num_blocks, dbk_bdev_io_completion_cb cb, void *cb_arg);
/* Completes after every I/O submitted on this channel before it has completed. */
int dbk_bdev_reset(struct dbk_bdev_desc *desc, struct dbk_io_channel *ch, dbk_bdev_io_completion_cb cb, void *cb_arg);

/*
 * Zero-copy read: true if the bdev lends its own memory for reads (dbk_bdev_read_lend_blocks), e.g. malloc.
 */
bool dbk_bdev_can_lend_read(const struct dbk_bdev *bdev);
/*
 * Read without a copy: iov is one iovec {NULL, num_blocks * block size} owned by the caller; on success the
 * bdev points iov->iov_base at its own memory holding the blocks. That memory stays valid, and the bdev
 * registered, until the caller frees the io with dbk_bdev_free_io() -- so a caller that keeps the data after
 * the callback keeps the io (and its channel) until it is done with it. The memory is the bdev's: a write
 * to the same blocks that completes later changes it, as it would change a later read. Returns what
 * dbk_bdev_readv_blocks returns, or -ENOTSUP if the bdev does not lend (or would have to split the read):
 * read into a buffer of your own then.
 */
int dbk_bdev_read_lend_blocks(struct dbk_bdev_desc *desc, struct dbk_io_channel *ch, struct iovec *iov,
			      uint64_t offset_blocks, uint64_t num_blocks, dbk_bdev_io_completion_cb cb, void *cb_arg);

/*
 * Zero-copy write: true if the bdev lends its own memory for writes (dbk_bdev_write_lend_blocks), e.g. malloc.
 */
bool dbk_bdev_can_lend_write(const struct dbk_bdev *bdev);
/*
 * Write without a copy: iov is one iovec {NULL, num_blocks * block size} owned by the caller; on success the
 * bdev points iov->iov_base at its own memory for the blocks, and the bytes the caller stores there ARE the
 * write: they are visible to reads as they land (no atomicity against concurrent reads of the same blocks),
 * and there is nothing to commit. The memory stays valid, and the bdev registered, until the caller frees the
 * io with dbk_bdev_free_io(). A lending module completes inline: cb runs before this returns. Returns what
 * dbk_bdev_writev_blocks returns, or -ENOTSUP if the bdev does not lend (or would have to split the write):
 * write from a buffer of your own then.
 */
int dbk_bdev_write_lend_blocks(struct dbk_bdev_desc *desc, struct dbk_io_channel *ch, struct iovec *iov,
			       uint64_t offset_blocks, uint64_t num_blocks, dbk_bdev_io_completion_cb cb, void *cb_arg);

void dbk_bdev_free_io(struct dbk_bdev_io *io);

/* Status of a completed I/O as an NVMe (sct, sc) pair; (0,0) on success, (0,6) internal error by default. */
void dbk_bdev_io_get_nvme_status(const struct dbk_bdev_io *io, int *sct, int *sc);
/* Negative errno of a failed I/O (-EIO if the module gave none), 0 on success. */
int dbk_bdev_io_get_errno(const struct dbk_bdev_io *io);

/* Wait entry for -ENOMEM: cb_fn(cb_arg) runs on this thread once a bdev_io is free. Caller owns the entry. */
struct dbk_bdev_io_wait_entry {
	struct dbk_bdev *bdev;
	void (*cb_fn)(void *cb_arg);
	void *cb_arg;
	struct dbk_bdev_io_wait_entry *next;	/* core-private */
};
int dbk_bdev_queue_io_wait(struct dbk_bdev *bdev, struct dbk_io_channel *ch, struct dbk_bdev_io_wait_entry *entry);

/* ------------------------------------------------------------- statistics */

/*
 * Latency histogram of successful I/O (submission to completion in the bdev core): fixed power-of-two
 * buckets, bucket i < DBK_BDEV_LAT_BUCKETS - 1 counts latencies in (2^(i-1), 2^i] microseconds (bucket 0:
 * up to 1 us), the last bucket everything above 2^(DBK_BDEV_LAT_BUCKETS - 2) us (about 33.6 s).
 */
#define DBK_BDEV_LAT_BUCKETS 27

/* Bucket of a latency in ns: the smallest i with ns <= 1000 * 2^i, capped at the overflow bucket. */
static inline unsigned dbk_bdev_lat_bucket(uint64_t ns)
{
	uint64_t us = ns / 1000 + (ns % 1000 != 0);	/* ns <= 1000 * 2^i  <=>  ceil(ns / 1000) <= 2^i */
	unsigned i = us <= 1 ? 0 : 64 - (unsigned)__builtin_clzll(us - 1);

	return i < DBK_BDEV_LAT_BUCKETS - 1 ? i : DBK_BDEV_LAT_BUCKETS - 1;
}

/* Upper bound of bucket i in microseconds (2^i); UINT64_MAX for the overflow bucket. */
static inline uint64_t dbk_bdev_lat_bucket_bound_us(unsigned i)
{
	return i < DBK_BDEV_LAT_BUCKETS - 1 ? (uint64_t)1 << i : UINT64_MAX;
}

struct dbk_bdev_io_stat {
	uint64_t ops[DBK_BDEV_NUM_IO_TYPES];
	uint64_t bytes[DBK_BDEV_NUM_IO_TYPES];	/* read, write, unmap, write_zeroes, compare bytes */
	uint64_t errors[DBK_BDEV_NUM_IO_TYPES];
	uint64_t lat_total_ns[DBK_BDEV_NUM_IO_TYPES];
	uint64_t lat_min_ns[DBK_BDEV_NUM_IO_TYPES];	/* UINT64_MAX when no op */
	uint64_t lat_max_ns[DBK_BDEV_NUM_IO_TYPES];
	/* Per bucket (not cumulative); the buckets of a type add up to ops[type]. */
	uint64_t lat_hist[DBK_BDEV_NUM_IO_TYPES][DBK_BDEV_LAT_BUCKETS];
};
/* Aggregate over all channels (and those already destroyed); per_channel: also call
 * chan_cb for each live channel. Completion cb runs on the calling thread. */
typedef void (*dbk_bdev_stat_cb)(struct dbk_bdev *bdev, const struct dbk_bdev_io_stat *total,
				 json_t *per_channel /* array or NULL */, void *ctx, int rc);
void dbk_bdev_get_iostat(struct dbk_bdev *bdev, bool per_channel, dbk_bdev_stat_cb cb, void *ctx);
/* SPDK bdev_get_iostat counters of one stat (bytes_read, num_read_ops, read_latency_ticks,
 * max_/min_read_latency_ticks, ... io_error{}), ticks in ns. New reference. */
json_t *dbk_bdev_stat_to_json(const struct dbk_bdev_io_stat *s);

/* ------------------------------------------------------------------ QoS */

/* SPDK's bdev_set_qos_limit: per-bdev limits over all channels, 0 = unlimited. */
enum dbk_bdev_qos_limit {
	DBK_BDEV_QOS_RW_IOPS = 0,	/* rw_ios_per_sec (multiple of 1000) */
	DBK_BDEV_QOS_RW_BPS,		/* rw_mbytes_per_sec */
	DBK_BDEV_QOS_R_BPS,		/* r_mbytes_per_sec */
	DBK_BDEV_QOS_W_BPS,		/* w_mbytes_per_sec */
	DBK_BDEV_QOS_NUM_LIMITS
};
/* Set all limits (main reactor). 0, -EINVAL (rw_ios_per_sec not a multiple of 1000). I/O over
 * the budget waits in the channel (1 ms slices); FLUSH and RESET are not limited. */
int dbk_bdev_set_qos_limits(struct dbk_bdev *bdev, const uint64_t limits[DBK_BDEV_QOS_NUM_LIMITS]);
void dbk_bdev_get_qos_limits(const struct dbk_bdev *bdev, uint64_t limits[DBK_BDEV_QOS_NUM_LIMITS]);

/* ---------------------------------------------------------- JSON and config */

/* SPDK's bdev_get_bdevs entry: name, aliases, product_name, block_size, num_blocks,
 * uuid, claimed, supported_io_types, driver_specific. New reference. */
json_t *dbk_bdev_info_json(struct dbk_bdev *bdev);
/* Append {"method": ..., "params": ...} entries that recreate every bdev
 * (each module's write_config_json) to array. */
void dbk_bdev_write_config_json(json_t *array);

/* ------------------------------------------------------------- lifecycle */

/* Initialise the bdev layer and every module (on the main reactor). 0 or -errno. */
int dbk_bdev_subsystem_init(void);
/* Unregister every bdev (last registered first), finish modules, then cb(ctx) on the calling thread. */
void dbk_bdev_subsystem_fini(void (*cb)(void *ctx), void *ctx);

#endif
