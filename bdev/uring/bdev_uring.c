/*
 * uring bdev: a regular file or block device driven through io_uring, one
 * ring per channel, reaped by a period-0 poller. O_DIRECT when the geometry
 * and buffers allow it, buffered I/O otherwise.
 */
#include "bdev/uring/bdev_uring.h"
#include "bdev/bdev_module.h"
#include "thread/thread.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <liburing.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define URING_QUEUE_DEPTH 512
#define URING_MAX_SEGS 32

struct uring_disk {
	struct dbk_bdev bdev;
	char *filename;
	int fd;	       /* buffered */
	int fd_direct; /* O_DIRECT, or -1 */
	uint32_t dio_align;
	bool is_blkdev;
};

struct uring_channel {
	struct io_uring ring;
	struct dbk_poller *poller;
	uint32_t inflight;
	uint64_t submitted;
	uint64_t completed;
};

struct uring_task {
	struct dbk_bdev_io *io;
	struct uring_channel *uch;
	uint64_t done;
	uint64_t total;
	bool direct;
	int stage;
	int iovcnt;
	struct iovec iov[URING_MAX_SEGS];
};

static size_t uring_ctx_size(void)
{
	return sizeof(struct uring_task);
}

struct dbk_bdev_module dbk_bdev_uring_module = {
	.name = "uring",
	.get_ctx_size = uring_ctx_size,
};

static bool aligned_io(struct uring_disk *d, struct dbk_bdev_io *io)
{
	uint64_t a = d->dio_align;

	if (d->fd_direct < 0)
		return false;
	if ((io->u.offset_blocks * d->bdev.blocklen) % a)
		return false;
	for (int i = 0; i < io->u.iovcnt; i++)
		if (((uintptr_t)io->u.iovs[i].iov_base % a) || (io->u.iovs[i].iov_len % a))
			return false;
	return true;
}

/* Point t->iov at the part of the request not yet transferred. */
static void build_remainder(struct uring_task *t)
{
	struct dbk_bdev_io *io = t->io;
	uint64_t skip = t->done, left = t->total - t->done;
	int n = 0;

	for (int i = 0; i < io->u.iovcnt && left > 0 && n < URING_MAX_SEGS; i++) {
		size_t len = io->u.iovs[i].iov_len;
		char *base = io->u.iovs[i].iov_base;
		if (skip >= len) {
			skip -= len;
			continue;
		}
		base += skip;
		len -= skip;
		skip = 0;
		if (len > left)
			len = left;
		t->iov[n].iov_base = base;
		t->iov[n].iov_len = len;
		n++;
		left -= len;
	}
	t->iovcnt = n;
}

static int uring_queue(struct uring_task *t)
{
	struct dbk_bdev_io *io = t->io;
	struct uring_disk *d = io->bdev->ctxt;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&t->uch->ring);
	uint64_t off = io->u.offset_blocks * d->bdev.blocklen;
	uint64_t len = io->u.num_blocks * d->bdev.blocklen;
	int fd = t->direct ? d->fd_direct : d->fd;
	int rc;

	if (sqe == NULL)
		return -EAGAIN;
	switch (io->type) {
	case DBK_BDEV_IO_TYPE_READ:
	case DBK_BDEV_IO_TYPE_WRITE:
		if (t->done == 0 && (uint32_t)io->u.iovcnt <= URING_MAX_SEGS) {
			memcpy(t->iov, io->u.iovs, sizeof(struct iovec) * io->u.iovcnt);
			t->iovcnt = io->u.iovcnt;
			if (t->total < len)
				build_remainder(t);
		} else {
			build_remainder(t);
		}
		if (io->type == DBK_BDEV_IO_TYPE_READ)
			io_uring_prep_readv(sqe, fd, t->iov, t->iovcnt, off + t->done);
		else
			io_uring_prep_writev(sqe, fd, t->iov, t->iovcnt, off + t->done);
		break;
	case DBK_BDEV_IO_TYPE_FLUSH:
		io_uring_prep_fsync(sqe, d->fd, IORING_FSYNC_DATASYNC);
		break;
	case DBK_BDEV_IO_TYPE_UNMAP:
		io_uring_prep_fallocate(sqe, d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
		break;
	case DBK_BDEV_IO_TYPE_WRITE_ZEROES:
		io_uring_prep_fallocate(sqe, d->fd,
					t->stage == 0 ? FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE
						      : FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					off, len);
		break;
	default:
		return -ENOTSUP;
	}
	io_uring_sqe_set_data(sqe, t);
	rc = io_uring_submit(&t->uch->ring);
	if (rc < 0)
		return rc;
	t->uch->inflight++;
	t->uch->submitted++;
	return 0;
}

static void uring_fail_or_nomem(struct uring_task *t, int rc)
{
	if (rc == -EAGAIN || rc == -EBUSY || rc == -ENOMEM)
		dbk_bdev_io_complete(t->io, DBK_BDEV_IO_STATUS_NOMEM);
	else
		dbk_bdev_io_complete_errno(t->io, rc);
}

static void uring_submit(struct dbk_io_channel *ch, struct dbk_bdev_io *io)
{
	struct uring_disk *d = io->bdev->ctxt;
	struct uring_task *t = io->driver_ctx;
	int rc;

	if (io->type == DBK_BDEV_IO_TYPE_RESET) {
		dbk_bdev_io_complete(io, DBK_BDEV_IO_STATUS_SUCCESS);
		return;
	}
	t->io = io;
	t->uch = dbk_io_channel_get_ctx(ch);
	t->done = 0;
	t->total = io->u.num_blocks * d->bdev.blocklen;
	t->stage = 0;
	t->iovcnt = 0;
	t->direct = (io->type == DBK_BDEV_IO_TYPE_READ || io->type == DBK_BDEV_IO_TYPE_WRITE) && aligned_io(d, io);
	rc = uring_queue(t);
	if (rc != 0)
		uring_fail_or_nomem(t, rc);
}

static void uring_handle(struct uring_task *t, int res)
{
	struct dbk_bdev_io *io = t->io;
	int rc;

	if (res == -EAGAIN || res == -EINTR)
		goto resubmit;
	if (res == -EINVAL && t->direct) {
		t->direct = false; /* the file system refused O_DIRECT: buffered */
		goto resubmit;
	}
	if (io->type == DBK_BDEV_IO_TYPE_WRITE_ZEROES && t->stage == 0 &&
	    (res == -EOPNOTSUPP || res == -EINVAL || res == -ENODEV)) {
		t->stage = 1; /* no ZERO_RANGE here: punch a hole (reads back zeros) */
		goto resubmit;
	}
	if (res < 0) {
		dbk_bdev_io_complete_errno(io, res);
		return;
	}
	if (io->type == DBK_BDEV_IO_TYPE_READ || io->type == DBK_BDEV_IO_TYPE_WRITE) {
		t->done += (uint64_t)res;
		if (t->done < t->total) {
			if (res == 0) {
				if (io->type == DBK_BDEV_IO_TYPE_WRITE) {
					dbk_bdev_io_complete_errno(io, -ENOSPC);
					return;
				}
				/* end of file: the rest reads as zeros */
				build_remainder(t);
				for (int i = 0; i < t->iovcnt; i++)
					memset(t->iov[i].iov_base, 0, t->iov[i].iov_len);
				dbk_bdev_io_complete(io, DBK_BDEV_IO_STATUS_SUCCESS);
				return;
			}
			goto resubmit;
		}
	}
	dbk_bdev_io_complete(io, DBK_BDEV_IO_STATUS_SUCCESS);
	return;
resubmit:
	rc = uring_queue(t);
	if (rc != 0)
		uring_fail_or_nomem(t, rc);
}

static int uring_poll(void *ctx)
{
	struct uring_channel *uch = ctx;
	struct io_uring_cqe *cqe;
	int n = 0;

	while (io_uring_peek_cqe(&uch->ring, &cqe) == 0) {
		struct uring_task *t = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&uch->ring, cqe);
		uch->inflight--;
		uch->completed++;
		uring_handle(t, res);
		n++;
	}
	return (n > 0 || uch->inflight > 0) ? DBK_POLLER_BUSY : DBK_POLLER_IDLE;
}

static int uring_ch_create(void *dev, void *ctx)
{
	struct uring_channel *uch = ctx;
	int rc;

	(void)dev;
	rc = io_uring_queue_init(URING_QUEUE_DEPTH, &uch->ring, 0);
	if (rc < 0) {
		DBK_ERRLOG("io_uring_queue_init: %s", strerror(-rc));
		return rc;
	}
	uch->poller = dbk_poller_register(uring_poll, uch, 0, "bdev_uring");
	if (uch->poller == NULL) {
		io_uring_queue_exit(&uch->ring);
		return -ENOMEM;
	}
	return 0;
}

static void uring_ch_destroy(void *dev, void *ctx)
{
	struct uring_channel *uch = ctx;

	(void)dev;
	if (uch->inflight)
		DBK_WARNLOG("uring channel destroyed with %u I/O in flight", uch->inflight);
	dbk_poller_unregister(&uch->poller);
	io_uring_queue_exit(&uch->ring);
}

static bool uring_io_type_supported(void *ctx, enum dbk_bdev_io_type type)
{
	(void)ctx;
	switch (type) {
	case DBK_BDEV_IO_TYPE_READ:
	case DBK_BDEV_IO_TYPE_WRITE:
	case DBK_BDEV_IO_TYPE_FLUSH:
	case DBK_BDEV_IO_TYPE_UNMAP:
	case DBK_BDEV_IO_TYPE_WRITE_ZEROES:
	case DBK_BDEV_IO_TYPE_RESET:
		return true;
	default:
		return false;
	}
}

static struct dbk_io_channel *uring_get_io_channel(void *ctx)
{
	return dbk_get_io_channel(ctx);
}

static void uring_free(struct uring_disk *d)
{
	if (d->fd >= 0)
		close(d->fd);
	if (d->fd_direct >= 0)
		close(d->fd_direct);
	free(d->filename);
	free(d->bdev.name);
	free(d);
}

static void uring_dev_gone(void *dev)
{
	struct uring_disk *d = dev;

	dbk_bdev_destruct_done(&d->bdev, 0);
	uring_free(d);
}

static int uring_destruct(void *ctx)
{
	dbk_io_device_unregister(ctx, uring_dev_gone);
	return 1;
}

static void uring_dump_info(void *ctx, json_t *ds)
{
	struct uring_disk *d = ctx;

	json_object_set_new(ds, "uring", json_pack("{s:s,s:b}", "filename", d->filename, "direct_io",
						   d->fd_direct >= 0));
}

static void uring_write_config(struct dbk_bdev *bdev, json_t *arr)
{
	struct uring_disk *d = bdev->ctxt;
	char u[37];

	uuid_unparse_lower(bdev->uuid, u);
	json_array_append_new(arr, json_pack("{s:s,s:{s:s,s:s,s:i,s:s}}", "method", "bdev_uring_create", "params",
					     "name", dbk_bdev_get_name(bdev), "filename", d->filename,
					     "block_size", (int)bdev->blocklen, "uuid", u));
}

static void uring_dump_channel(struct dbk_io_channel *ch, json_t *obj)
{
	struct uring_channel *uch = dbk_io_channel_get_ctx(ch);

	json_object_set_new(obj, "uring_inflight", json_integer(uch->inflight));
}

static const struct dbk_bdev_fn_table uring_fn_table = {
	.submit_request = uring_submit,
	.io_type_supported = uring_io_type_supported,
	.get_io_channel = uring_get_io_channel,
	.destruct = uring_destruct,
	.dump_info_json = uring_dump_info,
	.write_config_json = uring_write_config,
	.dump_channel_json = uring_dump_channel,
};

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static uint32_t file_dio_align(int fd)
{
#ifdef STATX_DIOALIGN
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 && (stx.stx_mask & STATX_DIOALIGN) &&
	    stx.stx_dio_offset_align != 0) {
		uint32_t a = stx.stx_dio_offset_align;
		if (stx.stx_dio_mem_align > a)
			a = stx.stx_dio_mem_align;
		return a;
	}
#endif
	(void)fd;
	return 4096;
}

int dbk_bdev_uring_create(const char *name, const char *filename, uint32_t block_size, const uuid_t uuid_or_null,
			  struct dbk_bdev **out, char *err, size_t errlen)
{
	struct uring_disk *d;
	struct stat st;
	struct io_uring probe;
	uint64_t size;
	uint32_t lbs = 512;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (name == NULL || name[0] == '\0')
		return fail(err, errlen, -EINVAL, "name must not be empty");
	if (filename == NULL || filename[0] == '\0')
		return fail(err, errlen, -EINVAL, "filename must not be empty");
	if (block_size % 512 != 0)
		return fail(err, errlen, -EINVAL, "block_size %u must be a multiple of 512 (e.g. 512 or 4096)", block_size);
	if (dbk_bdev_get_by_name(name) != NULL)
		return fail(err, errlen, -EEXIST, "bdev '%s' already exists", name);
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return fail(err, errlen, -ENOMEM, "out of memory");
	d->fd_direct = -1;
	d->fd = open(filename, O_RDWR | O_CLOEXEC);
	if (d->fd < 0) {
		rc = -errno;
		d->fd = -1;
		uring_free(d);
		return fail(err, errlen, rc, "cannot open '%s': %s", filename, strerror(-rc));
	}
	if (fstat(d->fd, &st) != 0) {
		rc = -errno;
		uring_free(d);
		return fail(err, errlen, rc, "cannot stat '%s': %s", filename, strerror(-rc));
	}
	if (S_ISBLK(st.st_mode)) {
		int ss = 0;
		d->is_blkdev = true;
		if (ioctl(d->fd, BLKGETSIZE64, &size) != 0) {
			rc = -errno;
			uring_free(d);
			return fail(err, errlen, rc, "cannot get the size of '%s': %s", filename, strerror(-rc));
		}
		if (ioctl(d->fd, BLKSSZGET, &ss) == 0 && ss > 0)
			lbs = (uint32_t)ss;
		d->dio_align = lbs;
		if (block_size == 0)
			block_size = lbs;
		if (block_size % lbs != 0) {
			uring_free(d);
			return fail(err, errlen, -EINVAL,
				    "block_size %u must be a multiple of the logical block size %u of '%s'", block_size,
				    lbs, filename);
		}
	} else if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
		if (block_size == 0)
			block_size = 512;
		d->dio_align = file_dio_align(d->fd);
	} else {
		uring_free(d);
		return fail(err, errlen, -EINVAL, "'%s' is neither a regular file nor a block device", filename);
	}
	if (size / block_size == 0) {
		uring_free(d);
		return fail(err, errlen, -EINVAL, "'%s' (%lu bytes) is smaller than one block of %u bytes", filename,
			    (unsigned long)size, block_size);
	}
	if (block_size % d->dio_align == 0) {
		d->fd_direct = open(filename, O_RDWR | O_DIRECT | O_CLOEXEC);
		if (d->fd_direct < 0) {
			DBK_NOTICELOG("uring bdev %s: O_DIRECT open of '%s' failed (%s), using buffered I/O", name,
				      filename, strerror(errno));
			d->fd_direct = -1;
		}
	}
	/* trial ring: fail now, not at the first I/O, when io_uring is unavailable */
	rc = io_uring_queue_init(4, &probe, 0);
	if (rc < 0) {
		uring_free(d);
		return fail(err, errlen, rc, "cannot create an io_uring: %s", strerror(-rc));
	}
	io_uring_queue_exit(&probe);

	d->filename = strdup(filename);
	d->bdev.name = strdup(name);
	if (d->filename == NULL || d->bdev.name == NULL) {
		uring_free(d);
		return fail(err, errlen, -ENOMEM, "out of memory");
	}
	d->bdev.product_name = "URING bdev";
	d->bdev.blocklen = block_size;
	d->bdev.blockcnt = size / block_size;
	if (uuid_or_null)
		uuid_copy(d->bdev.uuid, uuid_or_null);
	d->bdev.write_cache = true;
	d->bdev.max_segments = URING_MAX_SEGS;
	d->bdev.ctxt = d;
	d->bdev.fn_table = &uring_fn_table;
	d->bdev.module = &dbk_bdev_uring_module;
	rc = dbk_bdev_register(&d->bdev);
	if (rc != 0) {
		uring_free(d);
		return fail(err, errlen, rc, rc == -EEXIST ? "bdev '%s' already exists" : "cannot register bdev '%s'",
			    name);
	}
	/* no channel can be got before this returns (we are on the main reactor) */
	dbk_io_device_register(d, uring_ch_create, uring_ch_destroy, sizeof(struct uring_channel), d->bdev.name);
	if (out)
		*out = &d->bdev;
	return 0;
}

void dbk_bdev_uring_delete(const char *name, void (*cb)(void *arg, int rc), void *arg)
{
	int rc = dbk_bdev_unregister_by_name(name, &dbk_bdev_uring_module, cb, arg);

	if (rc != 0 && cb)
		cb(arg, rc);
}
