/* The malloc bdev module: a RAM disk. */
#ifndef DBK_BDEV_MALLOC_BDEV_MALLOC_H
#define DBK_BDEV_MALLOC_BDEV_MALLOC_H

#include <stdint.h>
#include <uuid/uuid.h>

struct dbk_bdev;
struct dbk_bdev_module;

extern struct dbk_bdev_module dbk_bdev_malloc_module;

/*
 * Create and register a RAM disk on the main reactor. name NULL or "": the
 * first free "MallocN". uuid NULL or all zero: generated. block_size a
 * non-zero multiple of 512, num_blocks > 0. Returns 0 (and *out, may be NULL),
 * -EINVAL, -EEXIST or -ENOMEM; on failure nothing is registered.
 */
int dbk_bdev_malloc_create(const char *name, const uuid_t uuid_or_null, uint64_t num_blocks, uint32_t block_size,
			   struct dbk_bdev **out);
/* Unregister and free; cb(arg, rc) runs once done (rc -ENODEV: no malloc bdev of that name). */
void dbk_bdev_malloc_delete(const char *name, void (*cb)(void *arg, int rc), void *arg);

#endif
