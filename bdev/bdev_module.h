/*
 * The bdev module interface: what a backend (malloc, null, uring, daos)
 * implements and the core calls. Modules are listed in bdev/modules.c.
 */
#ifndef DBK_BDEV_BDEV_MODULE_H
#define DBK_BDEV_BDEV_MODULE_H

#include "bdev/bdev.h"

#include <stddef.h>

struct dbk_bdev_internal;

enum dbk_bdev_io_status {
	DBK_BDEV_IO_STATUS_NVME_ERROR = -3,	/* see dbk_bdev_io_complete_nvme_status */
	DBK_BDEV_IO_STATUS_NOMEM = -2,		/* module out of resources: the core queues and retries */
	DBK_BDEV_IO_STATUS_FAILED = -1,
	DBK_BDEV_IO_STATUS_PENDING = 0,
	DBK_BDEV_IO_STATUS_SUCCESS = 1,
};

struct dbk_bdev_fn_table {
	/* Required. Submit on the channel's thread; complete with dbk_bdev_io_complete*(). */
	void (*submit_request)(struct dbk_io_channel *ch, struct dbk_bdev_io *io);
	/* Required. */
	bool (*io_type_supported)(void *ctx, enum dbk_bdev_io_type type);
	/* Required: the calling thread's channel for this bdev (usually dbk_get_io_channel(some io_device)). */
	struct dbk_io_channel *(*get_io_channel)(void *ctx);
	/*
	 * Required. Free the module's bdev. Return 0 when done synchronously, or 1
	 * when asynchronous: then call dbk_bdev_destruct_done(bdev, rc) later (on
	 * the main reactor). Negative: failure.
	 */
	int (*destruct)(void *ctx);
	/* Optional: fill driver_specific (an object) for bdev_get_bdevs. */
	void (*dump_info_json)(void *ctx, json_t *driver_specific);
	/* Optional: append {"method", "params"} that recreates this bdev. */
	void (*write_config_json)(struct dbk_bdev *bdev, json_t *config_array);
	/* Optional: per-channel info object for bdev_get_iostat per_channel (ch on its own thread). */
	void (*dump_channel_json)(struct dbk_io_channel *ch, json_t *obj);
};

struct dbk_bdev_module {
	const char *name;
	/* Called once at dbk_bdev_subsystem_init on the main reactor. 0 or -errno. */
	int (*module_init)(void);
	/* Called after all bdevs are gone. */
	void (*module_fini)(void);
	/* Bytes of per-I/O driver context (io->driver_ctx). */
	size_t (*get_ctx_size)(void);
};

struct dbk_bdev {
	/* Filled by the module before dbk_bdev_register. */
	char *name;			/* unique; the core copies it */
	const char *product_name;	/* e.g. "Malloc disk", "DAOS disk" */
	uint32_t blocklen;		/* bytes, multiple of 512 */
	uint64_t blockcnt;
	uuid_t uuid;			/* all zero: the core generates one */
	bool write_cache;		/* volatile write cache: FLUSH needed for durability */
	uint32_t max_rw_blocks;		/* split READ/WRITE larger than this (0: no limit) */
	uint32_t max_segments;		/* split requests with more iovecs than this (0: no limit) */
	uint32_t required_alignment;	/* log2 of buffer alignment the module needs (0: none) */
	/*
	 * The module lends memory for reads: a READ whose single iovec has iov_base NULL
	 * (dbk_bdev_read_lend_blocks) gets iov_base pointed at the module's memory holding the
	 * blocks, which must stay valid while the bdev is registered.
	 */
	bool lends_read;
	/*
	 * The module lends memory for writes: a WRITE whose single iovec has iov_base NULL
	 * (dbk_bdev_write_lend_blocks) gets iov_base pointed at the module's memory for the blocks
	 * (what the caller then stores there is the write) and completes inline, before submit returns.
	 */
	bool lends_write;
	void *ctxt;			/* module's bdev context, passed to the fn_table calls */
	const struct dbk_bdev_fn_table *fn_table;
	struct dbk_bdev_module *module;

	struct dbk_bdev_internal *internal;	/* core-private */
};

/* The I/O request as the module sees it. */
struct dbk_bdev_io {
	struct dbk_bdev *bdev;
	enum dbk_bdev_io_type type;
	struct {
		struct iovec *iovs;	/* READ/WRITE/COMPARE data */
		int iovcnt;
		uint64_t offset_blocks;	/* all types but RESET */
		uint64_t num_blocks;
	} u;
	/* core-private fields follow in the implementation; the module's context is: */
	void *driver_ctx;	/* get_ctx_size() bytes, aligned to 16 */
};

/* Register (name must be unique among names and aliases). 0, -EEXIST, -EINVAL. */
int dbk_bdev_register(struct dbk_bdev *bdev);
/* Add an alias (unique). */
int dbk_bdev_alias_add(struct dbk_bdev *bdev, const char *alias);
/*
 * Unregister: open descriptors get DBK_BDEV_EVENT_REMOVE; once all are
 * closed and all channels destroyed, fn_table->destruct runs, then cb(cb_arg, rc)
 * on the calling (main) thread.
 */
void dbk_bdev_unregister(struct dbk_bdev *bdev, void (*cb)(void *cb_arg, int rc), void *cb_arg);
/* Unregister by name, restricted to bdevs of module mod: -ENODEV if no such bdev of that module. */
int dbk_bdev_unregister_by_name(const char *name, struct dbk_bdev_module *mod, void (*cb)(void *cb_arg, int rc),
				void *cb_arg);
void dbk_bdev_destruct_done(struct dbk_bdev *bdev, int rc);
/* Change the size (grow or shrink past no open range); open descriptors get DBK_BDEV_EVENT_RESIZE. */
int dbk_bdev_notify_blockcnt_change(struct dbk_bdev *bdev, uint64_t blockcnt);

/* Completion, called on the I/O's channel thread. */
void dbk_bdev_io_complete(struct dbk_bdev_io *io, enum dbk_bdev_io_status status);
void dbk_bdev_io_complete_nvme_status(struct dbk_bdev_io *io, int sct, int sc);
/* Failure carrying an errno (mapped to an NVMe status: -ENOSPC -> capacity exceeded, -EIO/-other -> internal error, ...). */
void dbk_bdev_io_complete_errno(struct dbk_bdev_io *io, int neg_errno);

/* The channel the I/O was submitted on (module's own channel). */
struct dbk_io_channel *dbk_bdev_io_get_io_channel(struct dbk_bdev_io *io);

/* Module table (bdev/modules.c). */
extern struct dbk_bdev_module *const dbk_bdev_modules[];

#endif
