/* The uring bdev module: a file or block device driven through io_uring. */
#ifndef DBK_BDEV_URING_BDEV_URING_H
#define DBK_BDEV_URING_BDEV_URING_H

#include <stddef.h>
#include <stdint.h>
#include <uuid/uuid.h>

struct dbk_bdev;
struct dbk_bdev_module;

extern struct dbk_bdev_module dbk_bdev_uring_module;

/*
 * Open filename (regular file or block device) and register it as bdev name.
 * block_size 0: 512 for files, the logical block size for block devices;
 * otherwise a multiple of 512 (and of the device's logical block size).
 * num_blocks = size / block_size. Uses O_DIRECT when possible, buffered I/O
 * otherwise. Returns 0 or -errno with a message in err (if err != NULL);
 * on failure nothing is registered.
 */
int dbk_bdev_uring_create(const char *name, const char *filename, uint32_t block_size, const uuid_t uuid_or_null,
			  struct dbk_bdev **out, char *err, size_t errlen);
void dbk_bdev_uring_delete(const char *name, void (*cb)(void *arg, int rc), void *arg);

#endif
