/* The null bdev module: writes are discarded, reads return zeros. */
#ifndef DBK_BDEV_NULL_BDEV_NULL_H
#define DBK_BDEV_NULL_BDEV_NULL_H

#include <stdint.h>
#include <uuid/uuid.h>

struct dbk_bdev;
struct dbk_bdev_module;

extern struct dbk_bdev_module dbk_bdev_null_module;

/* name required. Same rules and return values as dbk_bdev_malloc_create. */
int dbk_bdev_null_create(const char *name, const uuid_t uuid_or_null, uint64_t num_blocks, uint32_t block_size,
			 struct dbk_bdev **out);
void dbk_bdev_null_delete(const char *name, void (*cb)(void *arg, int rc), void *arg);

#endif
