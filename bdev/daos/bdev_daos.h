/* The DAOS bdev module: a file in a DFS (POSIX) container as a block device. */
#ifndef DBK_BDEV_DAOS_BDEV_DAOS_H
#define DBK_BDEV_DAOS_BDEV_DAOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uuid/uuid.h>

struct dbk_bdev;

/*
 * Engine selection, set by the daemon before dbk_bdev_subsystem_init:
 * engine "local" (default; root dir default /var/lib/daosblk) or "daos" (real
 * DAOS, only when built with DAOS). Returns 0 or -EINVAL (unknown engine,
 * "daos" not compiled in) with a message in err.
 */
int dbk_bdev_daos_set_engine(const char *engine, const char *root, char *err, size_t errlen);
/* The selected engine's name and root (root: local engine only). */
const char *dbk_bdev_daos_engine_name(void);
const char *dbk_bdev_daos_engine_root(void);

/* bdev_daos_create parameters (SPDK names). */
struct dbk_bdev_daos_opts {
	const char *name;	/* required */
	const char *pool;	/* required: label or UUID */
	const char *cont;	/* required: label or UUID */
	uint32_t block_size;	/* required: multiple of 512 */
	uint64_t num_blocks;	/* required: > 0 */
	uuid_t uuid;		/* all zero: the UUID stored with the file, or a new one */
	const char *oclass;	/* NULL: "SX" */
	const char *path;	/* NULL: "/<name>" (a file at the container's root) */
};

/* rc 0: bdev registered (bdev set); otherwise -errno and err says what is wrong. Runs on the main reactor. */
typedef void (*dbk_bdev_daos_create_cb)(void *ctx, struct dbk_bdev *bdev, int rc, const char *err);

/*
 * Create (main reactor). Validates the parameters (-EINVAL / -EEXIST with a
 * message naming the parameter, returned here with nothing started), then opens
 * a trial connection on the helper thread (pool, container, mount, file,
 * event queue) and checks/stores the bdev identity in the file's xattrs before
 * registering. Returns 0 when started: cb runs later, exactly once.
 */
int dbk_bdev_daos_create(const struct dbk_bdev_daos_opts *opts, dbk_bdev_daos_create_cb cb, void *ctx, char *err,
			 size_t errlen);
/* Delete (keeps the file): -ENODEV if no DAOS bdev has that name; else cb(ctx, rc) later. */
int dbk_bdev_daos_delete(const char *name, void (*cb)(void *ctx, int rc), void *ctx);
/*
 * Grow to new_size_mib MiB (main reactor): sets the file size and the stored
 * block count on the helper thread, then dbk_bdev_notify_blockcnt_change.
 * Returns -ENODEV/-EINVAL (shrinking) with err, or 0 when started: cb(ctx, rc, err) later.
 */
int dbk_bdev_daos_resize(const char *name, uint64_t new_size_mib, void (*cb)(void *ctx, int rc, const char *err),
			 void *ctx, char *err, size_t errlen);

/* Error injection (tests): the next count reads/writes of bdev name complete with -EIO.
 * type: "read", "write" or "all". count 0 clears. 0, -ENODEV, -EINVAL. */
int dbk_bdev_daos_inject_error(const char *name, const char *type, uint32_t count, char *err, size_t errlen);

#endif
