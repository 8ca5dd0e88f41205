/* Null bdev: writes are discarded, reads return zeros. Completes inline. */
#include "bdev/null/bdev_null.h"
#include "bdev/bdev_module.h"
#include "thread/thread.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct null_disk {
	struct dbk_bdev bdev;
};

struct null_channel {
	uint64_t ios;
};

static int g_null_io_dev;

static int null_ch_create(void *dev, void *ctx)
{
	(void)dev;
	(void)ctx;
	return 0;
}

static void null_ch_destroy(void *dev, void *ctx)
{
	(void)dev;
	(void)ctx;
}

static int null_module_init(void)
{
	dbk_io_device_register(&g_null_io_dev, null_ch_create, null_ch_destroy, sizeof(struct null_channel),
			       "bdev_null");
	return 0;
}

static void null_module_fini(void)
{
	dbk_io_device_unregister(&g_null_io_dev, NULL);
}

static size_t null_ctx_size(void)
{
	return 0;
}

struct dbk_bdev_module dbk_bdev_null_module = {
	.name = "null",
	.module_init = null_module_init,
	.module_fini = null_module_fini,
	.get_ctx_size = null_ctx_size,
};

static void zero_iov(struct iovec *iov, int iovcnt, size_t len)
{
	for (int i = 0; i < iovcnt && len > 0; i++) {
		size_t n = iov[i].iov_len < len ? iov[i].iov_len : len;
		memset(iov[i].iov_base, 0, n);
		len -= n;
	}
}

static void null_submit(struct dbk_io_channel *ch, struct dbk_bdev_io *io)
{
	struct null_disk *d = io->bdev->ctxt;
	struct null_channel *mch = dbk_io_channel_get_ctx(ch);
	size_t len = io->u.num_blocks * d->bdev.blocklen;

	mch->ios++;
	switch (io->type) {
	case DBK_BDEV_IO_TYPE_READ:
		zero_iov(io->u.iovs, io->u.iovcnt, len);
		break;
	case DBK_BDEV_IO_TYPE_WRITE:
	case DBK_BDEV_IO_TYPE_UNMAP:
	case DBK_BDEV_IO_TYPE_FLUSH:
	case DBK_BDEV_IO_TYPE_RESET:
		break;
	default:
		dbk_bdev_io_complete_errno(io, -ENOTSUP);
		return;
	}
	dbk_bdev_io_complete(io, DBK_BDEV_IO_STATUS_SUCCESS);
}

static bool null_io_type_supported(void *ctx, enum dbk_bdev_io_type type)
{
	(void)ctx;
	/* no native WRITE_ZEROES or COMPARE: the core emulates them */
	return type == DBK_BDEV_IO_TYPE_READ || type == DBK_BDEV_IO_TYPE_WRITE || type == DBK_BDEV_IO_TYPE_UNMAP ||
	       type == DBK_BDEV_IO_TYPE_FLUSH || type == DBK_BDEV_IO_TYPE_RESET;
}

static struct dbk_io_channel *null_get_io_channel(void *ctx)
{
	(void)ctx;
	return dbk_get_io_channel(&g_null_io_dev);
}

static void null_free(struct null_disk *d)
{
	free(d->bdev.name);
	free(d);
}

static int null_destruct(void *ctx)
{
	null_free(ctx);
	return 0;
}

static void null_write_config(struct dbk_bdev *bdev, json_t *arr)
{
	char u[37];

	uuid_unparse_lower(bdev->uuid, u);
	json_array_append_new(arr, json_pack("{s:s,s:{s:s,s:I,s:i,s:s}}", "method", "bdev_null_create", "params",
					     "name", dbk_bdev_get_name(bdev), "num_blocks",
					     (json_int_t)dbk_bdev_get_num_blocks(bdev), "block_size",
					     (int)bdev->blocklen, "uuid", u));
}

static const struct dbk_bdev_fn_table null_fn_table = {
	.submit_request = null_submit,
	.io_type_supported = null_io_type_supported,
	.get_io_channel = null_get_io_channel,
	.destruct = null_destruct,
	.write_config_json = null_write_config,
};

int dbk_bdev_null_create(const char *name, const uuid_t uuid_or_null, uint64_t num_blocks, uint32_t block_size,
			   struct dbk_bdev **out)
{
	struct null_disk *d;
	int rc;

	if (block_size == 0 || block_size % 512 != 0 || num_blocks == 0 || num_blocks > UINT64_MAX / block_size)
		return -EINVAL;
	if (name == NULL || name[0] == '\0')
		return -EINVAL;
	if (dbk_bdev_get_by_name(name) != NULL)
		return -EEXIST;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	d->bdev.name = strdup(name);
	if (d->bdev.name == NULL) {
		null_free(d);
		return -ENOMEM;
	}
	d->bdev.product_name = "Null disk";
	d->bdev.blocklen = block_size;
	d->bdev.blockcnt = num_blocks;
	if (uuid_or_null)
		uuid_copy(d->bdev.uuid, uuid_or_null);
	d->bdev.write_cache = false;
	d->bdev.ctxt = d;
	d->bdev.fn_table = &null_fn_table;
	d->bdev.module = &dbk_bdev_null_module;
	rc = dbk_bdev_register(&d->bdev);
	if (rc != 0) {
		null_free(d);
		return rc;
	}
	if (out)
		*out = &d->bdev;
	return 0;
}

void dbk_bdev_null_delete(const char *name, void (*cb)(void *arg, int rc), void *arg)
{
	int rc = dbk_bdev_unregister_by_name(name, &dbk_bdev_null_module, cb, arg);

	if (rc != 0 && cb)
		cb(arg, rc);
}
