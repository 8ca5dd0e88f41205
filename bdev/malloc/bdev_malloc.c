/* RAM disk bdev: memcpy from/to an anonymous mapping (reads and writes may lend the mapping instead). Completes inline. */
#include "bdev/malloc/bdev_malloc.h"
#include "bdev/bdev_module.h"
#include "thread/thread.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct malloc_disk {
	struct dbk_bdev bdev;
	uint8_t *buf;
	size_t len;
};

struct malloc_channel {
	uint64_t ios;
};

static int g_malloc_io_dev;

static int malloc_ch_create(void *dev, void *ctx)
{
	(void)dev;
	(void)ctx;
	return 0;
}

static void malloc_ch_destroy(void *dev, void *ctx)
{
	(void)dev;
	(void)ctx;
}

static int malloc_module_init(void)
{
	dbk_io_device_register(&g_malloc_io_dev, malloc_ch_create, malloc_ch_destroy, sizeof(struct malloc_channel),
			       "bdev_malloc");
	return 0;
}

static void malloc_module_fini(void)
{
	dbk_io_device_unregister(&g_malloc_io_dev, NULL);
}

static size_t malloc_ctx_size(void)
{
	return 0;
}

struct dbk_bdev_module dbk_bdev_malloc_module = {
	.name = "malloc",
	.module_init = malloc_module_init,
	.module_fini = malloc_module_fini,
	.get_ctx_size = malloc_ctx_size,
};

static void copy_iov(struct iovec *iov, int iovcnt, uint8_t *buf, size_t len, bool to_iov)
{
	for (int i = 0; i < iovcnt && len > 0; i++) {
		size_t n = iov[i].iov_len < len ? iov[i].iov_len : len;
		if (to_iov)
			memcpy(iov[i].iov_base, buf, n);
		else
			memcpy(buf, iov[i].iov_base, n);
		buf += n;
		len -= n;
	}
}

static bool cmp_iov(struct iovec *iov, int iovcnt, const uint8_t *buf, size_t len)
{
	for (int i = 0; i < iovcnt && len > 0; i++) {
		size_t n = iov[i].iov_len < len ? iov[i].iov_len : len;
		if (memcmp(iov[i].iov_base, buf, n) != 0)
			return false;
		buf += n;
		len -= n;
	}
	return true;
}

static void malloc_submit(struct dbk_io_channel *ch, struct dbk_bdev_io *io)
{
	struct malloc_disk *d = io->bdev->ctxt;
	struct malloc_channel *mch = dbk_io_channel_get_ctx(ch);
	size_t off = io->u.offset_blocks * d->bdev.blocklen;
	size_t len = io->u.num_blocks * d->bdev.blocklen;

	mch->ios++;
	switch (io->type) {
	case DBK_BDEV_IO_TYPE_READ:
		if (io->u.iovs[0].iov_base == NULL)	/* dbk_bdev_read_lend_blocks: lend, no copy */
			io->u.iovs[0].iov_base = d->buf + off;
		else
			copy_iov(io->u.iovs, io->u.iovcnt, d->buf + off, len, true);
		break;
	case DBK_BDEV_IO_TYPE_WRITE:
		if (io->u.iovs[0].iov_base == NULL)	/* dbk_bdev_write_lend_blocks: the caller writes in place */
			io->u.iovs[0].iov_base = d->buf + off;
		else
			copy_iov(io->u.iovs, io->u.iovcnt, d->buf + off, len, false);
		break;
	case DBK_BDEV_IO_TYPE_COMPARE:
		if (!cmp_iov(io->u.iovs, io->u.iovcnt, d->buf + off, len)) {
			dbk_bdev_io_complete_nvme_status(io, 2, 0x85);
			return;
		}
		break;
	case DBK_BDEV_IO_TYPE_UNMAP:
	case DBK_BDEV_IO_TYPE_WRITE_ZEROES:
		memset(d->buf + off, 0, len);
		break;
	case DBK_BDEV_IO_TYPE_FLUSH:
	case DBK_BDEV_IO_TYPE_RESET:
		break;
	default:
		dbk_bdev_io_complete_errno(io, -ENOTSUP);
		return;
	}
	dbk_bdev_io_complete(io, DBK_BDEV_IO_STATUS_SUCCESS);
}

static bool malloc_io_type_supported(void *ctx, enum dbk_bdev_io_type type)
{
	(void)ctx;
	return type < DBK_BDEV_NUM_IO_TYPES;
}

static struct dbk_io_channel *malloc_get_io_channel(void *ctx)
{
	(void)ctx;
	return dbk_get_io_channel(&g_malloc_io_dev);
}

static void malloc_free(struct malloc_disk *d)
{
	if (d->buf)
		munmap(d->buf, d->len);
	free(d->bdev.name);
	free(d);
}

static int malloc_destruct(void *ctx)
{
	malloc_free(ctx);
	return 0;
}

static void malloc_write_config(struct dbk_bdev *bdev, json_t *arr)
{
	char u[37];

	uuid_unparse_lower(bdev->uuid, u);
	json_array_append_new(arr, json_pack("{s:s,s:{s:s,s:I,s:i,s:s}}", "method", "bdev_malloc_create", "params",
					     "name", dbk_bdev_get_name(bdev), "num_blocks",
					     (json_int_t)dbk_bdev_get_num_blocks(bdev), "block_size",
					     (int)bdev->blocklen, "uuid", u));
}

static const struct dbk_bdev_fn_table malloc_fn_table = {
	.submit_request = malloc_submit,
	.io_type_supported = malloc_io_type_supported,
	.get_io_channel = malloc_get_io_channel,
	.destruct = malloc_destruct,
	.write_config_json = malloc_write_config,
};

int dbk_bdev_malloc_create(const char *name, const uuid_t uuid_or_null, uint64_t num_blocks, uint32_t block_size,
			   struct dbk_bdev **out)
{
	struct malloc_disk *d;
	char auto_name[32];
	int rc;

	if (block_size == 0 || block_size % 512 != 0 || num_blocks == 0 || num_blocks > SIZE_MAX / block_size)
		return -EINVAL;
	if (name == NULL || name[0] == '\0') {
		for (int i = 0;; i++) {
			snprintf(auto_name, sizeof(auto_name), "Malloc%d", i);
			if (dbk_bdev_get_by_name(auto_name) == NULL)
				break;
		}
		name = auto_name;
	}
	if (dbk_bdev_get_by_name(name) != NULL)
		return -EEXIST;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	d->len = num_blocks * block_size;
	d->buf = mmap(NULL, d->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (d->buf == MAP_FAILED) {
		d->buf = NULL;
		malloc_free(d);
		return -ENOMEM;
	}
	/*
	 * Transparent huge pages where the system allows them (fewer TLB misses and page-pinning work for
	 * lent reads). Pages are faulted in by first writes; never-written blocks read as zeroes from the
	 * kernel's zero page (correct, but a slower path for vmsplice than written memory).
	 */
	(void)madvise(d->buf, d->len, MADV_HUGEPAGE);
	d->bdev.name = strdup(name);
	if (d->bdev.name == NULL) {
		malloc_free(d);
		return -ENOMEM;
	}
	d->bdev.product_name = "Malloc disk";
	d->bdev.blocklen = block_size;
	d->bdev.blockcnt = num_blocks;
	if (uuid_or_null)
		uuid_copy(d->bdev.uuid, uuid_or_null);
	d->bdev.write_cache = false;
	d->bdev.ctxt = d;
	d->bdev.fn_table = &malloc_fn_table;
	d->bdev.lends_read = true;
	d->bdev.lends_write = true;	/* the mapping lives until destruct, after every channel is gone */
	d->bdev.module = &dbk_bdev_malloc_module;
	rc = dbk_bdev_register(&d->bdev);
	if (rc != 0) {
		malloc_free(d);
		return rc;
	}
	if (out)
		*out = &d->bdev;
	return 0;
}

void dbk_bdev_malloc_delete(const char *name, void (*cb)(void *arg, int rc), void *arg)
{
	int rc = dbk_bdev_unregister_by_name(name, &dbk_bdev_malloc_module, cb, arg);

	if (rc != 0 && cb)
		cb(arg, rc);
}
