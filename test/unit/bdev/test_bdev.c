/*
 * Unit tests for bdev/: the core, malloc, null and uring modules, and the bdev
 * RPC methods, on two real (unpinned) reactors. The reactors run on a
 * background pthread; the cmocka test body drives them with messages and
 * waits on semaphores, so assertions run on the cmocka thread only.
 *
 * A test module ("testdisk", defined here) is a RAM disk with tiny split
 * limits, no native WRITE_ZEROES/COMPARE/UNMAP/FLUSH, and knobs to hold
 * completions (for reset and pool exhaustion) and to answer NOMEM.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bdev/bdev.h"
#include "bdev/bdev_module.h"
#include "bdev/malloc/bdev_malloc.h"
#include "bdev/null/bdev_null.h"
#include "bdev/uring/bdev_uring.h"
#ifdef DBK_TEST_RPC
#include "rpc/rpc.h"
#endif
#include "thread/thread.h"

/* ------------------------------------------------------------ harness */

static pthread_t g_reactor_tid;

static void *reactor_thread(void *arg)
{
	(void)arg;
	dbk_reactors_start(NULL, NULL);
	return NULL;
}

static void wait_sem(sem_t *s)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 20;
	if (sem_timedwait(s, &ts) != 0)
		fail_msg("timed out waiting for the reactors");
}

struct call {
	void (*fn)(void *ctx);
	void *ctx;
	sem_t done;
};

static void call_msg(void *arg)
{
	struct call *c = arg;

	c->fn(c->ctx);
	sem_post(&c->done);
}

/* Run fn(ctx) on reactor r and wait for it. */
static void run_on(int r, void (*fn)(void *ctx), void *ctx)
{
	struct call c = {.fn = fn, .ctx = ctx};

	sem_init(&c.done, 0, 0);
	assert_int_equal(dbk_thread_send_msg(dbk_reactor_thread(r), call_msg, &c), 0);
	wait_sem(&c.done);
	sem_destroy(&c.done);
}

static void init_bdev_layer(void *ctx)
{
	*(int *)ctx = dbk_bdev_subsystem_init();
}

static int group_setup(void **state)
{
	struct dbk_reactor_opts o;
	int rc = -1;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.cores[0] = 0;
	o.cores[1] = 1;
	o.num_cores = 2;
	o.pin = false;
	if (dbk_reactors_init(&o) != 0)
		return -1;
	pthread_create(&g_reactor_tid, NULL, reactor_thread, NULL);
	run_on(0, init_bdev_layer, &rc);
#ifdef DBK_TEST_RPC
	dbk_rpc_set_state(DBK_RPC_RUNTIME);
#endif
	return rc;
}

static sem_t g_fini_sem;

static void fini_done(void *ctx)
{
	(void)ctx;
	sem_post(&g_fini_sem);
}

static void fini_msg(void *ctx)
{
	(void)ctx;
	dbk_bdev_subsystem_fini(fini_done, NULL);
}

static int group_teardown(void **state)
{
	(void)state;
	sem_init(&g_fini_sem, 0, 0);
	dbk_thread_send_msg(dbk_reactor_thread(0), fini_msg, NULL);
	wait_sem(&g_fini_sem);
	dbk_reactors_stop();
	pthread_join(g_reactor_tid, NULL);
	dbk_reactors_fini();
	return 0;
}

/* --------------------------------------------------------- test module */

struct held_io {
	struct dbk_bdev_io *io;
	TAILQ_ENTRY(held_io) link;
};

struct testdisk {
	struct dbk_bdev bdev;
	uint8_t *buf;
	atomic_bool hold;	/* keep completions until released */
	atomic_int nomem_budget;	/* answer NOMEM this many times */
	atomic_uint submits;
	atomic_uint max_blocks_seen;
	atomic_uint max_iovs_seen;
	atomic_uint held_count;
	atomic_uint misaligned_ctx;
	sem_t gone;
};

struct td_channel {
	TAILQ_HEAD(, held_io) held;
};

struct td_ctx {
	struct held_io h;
};

static size_t td_ctx_size(void)
{
	return sizeof(struct td_ctx);
}

static struct dbk_bdev_module g_td_module = {
	.name = "testdisk",
	.get_ctx_size = td_ctx_size,
};

static int td_ch_create(void *dev, void *ctx)
{
	struct td_channel *c = ctx;

	(void)dev;
	TAILQ_INIT(&c->held);
	return 0;
}

static void td_ch_destroy(void *dev, void *ctx)
{
	(void)dev;
	(void)ctx;
}

static void td_execute(struct dbk_bdev_io *io)
{
	struct testdisk *d = io->bdev->ctxt;
	size_t off = io->u.offset_blocks * d->bdev.blocklen;
	size_t len = io->u.num_blocks * d->bdev.blocklen;

	for (int i = 0; i < io->u.iovcnt && len > 0; i++) {
		size_t n = io->u.iovs[i].iov_len < len ? io->u.iovs[i].iov_len : len;
		if (io->type == DBK_BDEV_IO_TYPE_READ)
			memcpy(io->u.iovs[i].iov_base, d->buf + off, n);
		else if (io->type == DBK_BDEV_IO_TYPE_WRITE)
			memcpy(d->buf + off, io->u.iovs[i].iov_base, n);
		off += n;
		len -= n;
	}
	dbk_bdev_io_complete(io, DBK_BDEV_IO_STATUS_SUCCESS);
}

static void td_submit(struct dbk_io_channel *ch, struct dbk_bdev_io *io)
{
	struct testdisk *d = io->bdev->ctxt;
	struct td_channel *c = dbk_io_channel_get_ctx(ch);
	struct td_ctx *x = io->driver_ctx;
	unsigned v;

	if (((uintptr_t)io->driver_ctx % 16) != 0)
		atomic_fetch_add(&d->misaligned_ctx, 1);
	atomic_fetch_add(&d->submits, 1);
	if (io->type == DBK_BDEV_IO_TYPE_READ || io->type == DBK_BDEV_IO_TYPE_WRITE) {
		v = atomic_load(&d->max_blocks_seen);
		if (io->u.num_blocks > v)
			atomic_store(&d->max_blocks_seen, (unsigned)io->u.num_blocks);
		v = atomic_load(&d->max_iovs_seen);
		if ((unsigned)io->u.iovcnt > v)
			atomic_store(&d->max_iovs_seen, (unsigned)io->u.iovcnt);
	}
	if (atomic_load(&d->nomem_budget) > 0) {
		atomic_fetch_sub(&d->nomem_budget, 1);
		dbk_bdev_io_complete(io, DBK_BDEV_IO_STATUS_NOMEM);
		return;
	}
	if (atomic_load(&d->hold)) {
		x->h.io = io;
		TAILQ_INSERT_TAIL(&c->held, &x->h, link);
		atomic_fetch_add(&d->held_count, 1);
		return;
	}
	td_execute(io);
}

static bool td_supported(void *ctx, enum dbk_bdev_io_type t)
{
	(void)ctx;
	return t == DBK_BDEV_IO_TYPE_READ || t == DBK_BDEV_IO_TYPE_WRITE || t == DBK_BDEV_IO_TYPE_RESET;
}

static struct dbk_io_channel *td_get_channel(void *ctx)
{
	return dbk_get_io_channel(ctx);
}

static void td_dev_gone(void *dev)
{
	struct testdisk *d = dev;

	dbk_bdev_destruct_done(&d->bdev, 0);
	sem_post(&d->gone);
}

static int td_destruct(void *ctx)
{
	dbk_io_device_unregister(ctx, td_dev_gone);
	return 1;
}

static const struct dbk_bdev_fn_table g_td_fn = {
	.submit_request = td_submit,
	.io_type_supported = td_supported,
	.get_io_channel = td_get_channel,
	.destruct = td_destruct,
};

struct td_create {
	struct testdisk *d;
	int rc;
};

static void td_register_msg(void *ctx)
{
	struct td_create *c = ctx;

	c->rc = dbk_bdev_register(&c->d->bdev);
	if (c->rc == 0)
		dbk_io_device_register(c->d, td_ch_create, td_ch_destroy, sizeof(struct td_channel), "testdisk");
}

static struct testdisk *td_create(const char *name, uint64_t blocks, uint32_t max_rw, uint32_t max_segs)
{
	struct testdisk *d = calloc(1, sizeof(*d));
	struct td_create c = {d, -1};

	d->buf = calloc(blocks, 512);
	d->bdev.name = (char *)name;
	d->bdev.product_name = "Test disk";
	d->bdev.blocklen = 512;
	d->bdev.blockcnt = blocks;
	d->bdev.max_rw_blocks = max_rw;
	d->bdev.max_segments = max_segs;
	d->bdev.ctxt = d;
	d->bdev.fn_table = &g_td_fn;
	d->bdev.module = &g_td_module;
	sem_init(&d->gone, 0, 0);
	run_on(0, td_register_msg, &c);
	assert_int_equal(c.rc, 0);
	return d;
}

static void td_release_msg(void *ctx)
{
	struct testdisk *d = ctx;
	struct dbk_io_channel *ch = dbk_get_io_channel(d);
	struct td_channel *c = dbk_io_channel_get_ctx(ch);
	struct held_io *h;

	while ((h = TAILQ_FIRST(&c->held)) != NULL) {
		TAILQ_REMOVE(&c->held, h, link);
		atomic_fetch_sub(&d->held_count, 1);
		td_execute(h->io);
	}
	dbk_put_io_channel(ch);
}

/* Complete everything held on reactor r's channel. */
static void td_release(struct testdisk *d, int r)
{
	run_on(r, td_release_msg, d);
}

static void unregister_done(void *arg, int rc)
{
	(void)rc;
	(void)arg;
}

static void td_unregister_msg(void *ctx)
{
	dbk_bdev_unregister(&((struct testdisk *)ctx)->bdev, unregister_done, NULL);
}

static void td_destroy(struct testdisk *d)
{
	assert_int_equal(atomic_load(&d->misaligned_ctx), 0);
	run_on(0, td_unregister_msg, d);
	wait_sem(&d->gone);
	sem_destroy(&d->gone);
	free(d->buf);
	free(d);
}

/* --------------------------------------------------- descriptors, channels */

struct opened {
	const char *name;
	bool write;
	struct dbk_bdev_desc *desc;
	struct dbk_io_channel *ch[2];
	atomic_int removes;
	atomic_int resizes;
	bool close_on_remove;
	int rc;
};

static void event_cb(enum dbk_bdev_event_type type, struct dbk_bdev *bdev, void *ctx)
{
	struct opened *o = ctx;

	(void)bdev;
	if (type == DBK_BDEV_EVENT_REMOVE) {
		atomic_fetch_add(&o->removes, 1);
		if (o->close_on_remove) {
			dbk_bdev_close(o->desc);
			o->desc = NULL;
		}
	} else {
		atomic_fetch_add(&o->resizes, 1);
	}
}

static void open_msg(void *ctx)
{
	struct opened *o = ctx;

	o->rc = dbk_bdev_open_ext(o->name, o->write, event_cb, o, &o->desc);
}

static void close_msg(void *ctx)
{
	struct opened *o = ctx;

	dbk_bdev_close(o->desc);
	o->desc = NULL;
}

static struct opened *open_bdev(const char *name)
{
	struct opened *o = calloc(1, sizeof(*o));

	o->name = name;
	o->write = true;
	run_on(0, open_msg, o);
	assert_int_equal(o->rc, 0);
	return o;
}

struct chan_op {
	struct opened *o;
	int r;
};

static void get_ch_msg(void *ctx)
{
	struct chan_op *c = ctx;

	c->o->ch[c->r] = dbk_bdev_get_io_channel(c->o->desc);
}

static void put_ch_msg(void *ctx)
{
	struct chan_op *c = ctx;

	dbk_put_io_channel(c->o->ch[c->r]);
	c->o->ch[c->r] = NULL;
}

static void get_channel(struct opened *o, int r)
{
	struct chan_op c = {o, r};

	run_on(r, get_ch_msg, &c);
	assert_non_null(o->ch[r]);
}

static void put_channel(struct opened *o, int r)
{
	struct chan_op c = {o, r};

	run_on(r, put_ch_msg, &c);
}

static void close_bdev(struct opened *o)
{
	for (int r = 0; r < 2; r++)
		if (o->ch[r])
			put_channel(o, r);
	if (o->desc)
		run_on(0, close_msg, o);
	free(o);
}

/* ------------------------------------------------------------------ I/O */

struct io_req {
	struct opened *o;
	int r;
	enum dbk_bdev_io_type type;
	struct iovec *iov;
	int iovcnt;
	uint64_t off, num;
	int submit_rc;
	atomic_bool completed;
	bool success;
	int sct, sc, err;
	sem_t done;
	bool no_wait;
	bool lend;			/* READ/WRITE through dbk_bdev_read/write_lend_blocks; the io kept in lent_io */
	struct dbk_bdev_io *lent_io;
};

static void io_cb(struct dbk_bdev_io *io, bool success, void *arg)
{
	struct io_req *q = arg;

	q->success = success;
	dbk_bdev_io_get_nvme_status(io, &q->sct, &q->sc);
	q->err = dbk_bdev_io_get_errno(io);
	dbk_bdev_free_io(io);
	atomic_store(&q->completed, true);
	sem_post(&q->done);
}

static void lend_cb(struct dbk_bdev_io *io, bool success, void *arg)
{
	struct io_req *q = arg;

	q->success = success;
	q->lent_io = io;	/* kept: the lent memory is valid until it is freed */
	atomic_store(&q->completed, true);
	sem_post(&q->done);
}

static void free_io_msg(void *ctx)
{
	dbk_bdev_free_io(ctx);
}

static int submit_req(struct io_req *q)
{
	struct dbk_bdev_desc *desc = q->o->desc;
	struct dbk_io_channel *ch = q->o->ch[q->r];

	switch (q->type) {
	case DBK_BDEV_IO_TYPE_READ:
		if (q->lend)
			return dbk_bdev_read_lend_blocks(desc, ch, q->iov, q->off, q->num, lend_cb, q);
		return dbk_bdev_readv_blocks(desc, ch, q->iov, q->iovcnt, q->off, q->num, io_cb, q);
	case DBK_BDEV_IO_TYPE_WRITE:
		if (q->lend)
			return dbk_bdev_write_lend_blocks(desc, ch, q->iov, q->off, q->num, lend_cb, q);
		return dbk_bdev_writev_blocks(desc, ch, q->iov, q->iovcnt, q->off, q->num, io_cb, q);
	case DBK_BDEV_IO_TYPE_COMPARE:
		return dbk_bdev_comparev_blocks(desc, ch, q->iov, q->iovcnt, q->off, q->num, io_cb, q);
	case DBK_BDEV_IO_TYPE_FLUSH:
		return dbk_bdev_flush_blocks(desc, ch, q->off, q->num, io_cb, q);
	case DBK_BDEV_IO_TYPE_UNMAP:
		return dbk_bdev_unmap_blocks(desc, ch, q->off, q->num, io_cb, q);
	case DBK_BDEV_IO_TYPE_WRITE_ZEROES:
		return dbk_bdev_write_zeroes_blocks(desc, ch, q->off, q->num, io_cb, q);
	case DBK_BDEV_IO_TYPE_RESET:
		return dbk_bdev_reset(desc, ch, io_cb, q);
	default:
		return -EINVAL;
	}
}

static void submit_msg(void *ctx)
{
	struct io_req *q = ctx;

	q->submit_rc = submit_req(q);
}

/* Submit on reactor r; returns the submit rc. The completion is awaited with io_wait(). */
static int io_start(struct io_req *q, struct opened *o, int r, enum dbk_bdev_io_type type, struct iovec *iov,
		    int iovcnt, uint64_t off, uint64_t num)
{
	memset(q, 0, sizeof(*q));
	sem_init(&q->done, 0, 0);
	q->o = o;
	q->r = r;
	q->type = type;
	q->iov = iov;
	q->iovcnt = iovcnt;
	q->off = off;
	q->num = num;
	run_on(r, submit_msg, q);
	return q->submit_rc;
}

static void io_wait(struct io_req *q)
{
	wait_sem(&q->done);
	sem_destroy(&q->done);
}

/* Submit and wait; returns the submit rc (0: q has the completion). */
static int do_io(struct io_req *q, struct opened *o, int r, enum dbk_bdev_io_type type, struct iovec *iov,
		 int iovcnt, uint64_t off, uint64_t num)
{
	int rc = io_start(q, o, r, type, iov, iovcnt, off, num);

	if (rc == 0)
		io_wait(q);
	else
		sem_destroy(&q->done);
	return rc;
}

static void *xalloc(size_t len)
{
	void *p = NULL;

	assert_int_equal(posix_memalign(&p, 4096, len), 0);
	return p;
}

static void fill_pattern(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7 + (i >> 9));
}

/* ------------------------------------------------------------ create/delete */

struct mcreate {
	const char *name;
	uuid_t uuid;
	bool use_uuid;
	uint64_t blocks;
	uint32_t bs;
	int rc;
	struct dbk_bdev *bdev;
	int kind; /* 0 malloc, 1 null */
};

static void mcreate_msg(void *ctx)
{
	struct mcreate *m = ctx;

	if (m->kind == 0)
		m->rc = dbk_bdev_malloc_create(m->name, m->use_uuid ? m->uuid : NULL, m->blocks, m->bs, &m->bdev);
	else
		m->rc = dbk_bdev_null_create(m->name, m->use_uuid ? m->uuid : NULL, m->blocks, m->bs, &m->bdev);
}

static int create_ram(int kind, const char *name, uint64_t blocks, uint32_t bs, const char *uuid_str,
		      struct dbk_bdev **out)
{
	struct mcreate m = {.name = name, .blocks = blocks, .bs = bs, .kind = kind};

	if (uuid_str) {
		assert_int_equal(uuid_parse(uuid_str, m.uuid), 0);
		m.use_uuid = true;
	}
	run_on(0, mcreate_msg, &m);
	if (out)
		*out = m.bdev;
	return m.rc;
}

struct mdelete {
	const char *name;
	int kind;
	int rc;
	sem_t done;
};

static void mdelete_cb(void *arg, int rc)
{
	struct mdelete *m = arg;

	m->rc = rc;
	sem_post(&m->done);
}

static void mdelete_msg(void *ctx)
{
	struct mdelete *m = ctx;

	if (m->kind == 0)
		dbk_bdev_malloc_delete(m->name, mdelete_cb, m);
	else if (m->kind == 1)
		dbk_bdev_null_delete(m->name, mdelete_cb, m);
	else
		dbk_bdev_uring_delete(m->name, mdelete_cb, m);
}

static int delete_bdev(int kind, const char *name)
{
	struct mdelete m = {.name = name, .kind = kind};

	sem_init(&m.done, 0, 0);
	run_on(0, mdelete_msg, &m);
	wait_sem(&m.done);
	sem_destroy(&m.done);
	return m.rc;
}

struct lookup {
	const char *name;
	struct dbk_bdev *bdev;
	const char *alias;
	int rc;
};

static void lookup_msg(void *ctx)
{
	struct lookup *l = ctx;

	l->bdev = dbk_bdev_get_by_name(l->name);
	if (l->alias && l->bdev)
		l->rc = dbk_bdev_alias_add(l->bdev, l->alias);
}

static struct dbk_bdev *lookup(const char *name)
{
	struct lookup l = {.name = name};

	run_on(0, lookup_msg, &l);
	return l.bdev;
}

/* ================================================================ tests */

static void test_register_lookup(void **state)
{
	struct dbk_bdev *b, *b2;
	struct lookup l = {0};
	char u[37];

	(void)state;
	assert_int_equal(create_ram(0, "M0", 64, 512, NULL, &b), 0);
	assert_ptr_equal(lookup("M0"), b);
	assert_string_equal(dbk_bdev_get_name(b), "M0");
	assert_string_equal(dbk_bdev_get_module_name(b), "malloc");
	assert_int_equal(dbk_bdev_get_block_size(b), 512);
	assert_int_equal(dbk_bdev_get_num_blocks(b), 64);
	assert_false(uuid_is_null(*dbk_bdev_get_uuid(b))); /* generated */
	uuid_unparse_lower(*dbk_bdev_get_uuid(b), u);
	assert_ptr_equal(lookup(u), b);

	/* duplicates and bad geometry */
	assert_int_equal(create_ram(0, "M0", 64, 512, NULL, NULL), -EEXIST);
	assert_int_equal(create_ram(0, "Mx", 64, 1000, NULL, NULL), -EINVAL);
	assert_int_equal(create_ram(0, "Mx", 0, 512, NULL, NULL), -EINVAL);
	assert_int_equal(create_ram(1, "Mx", 8, 0, NULL, NULL), -EINVAL);
	assert_null(lookup("Mx"));

	/* fixed uuid kept; the same uuid twice refused */
	assert_int_equal(create_ram(0, "M1", 16, 4096, "0b7c1f3a-9d5e-4f6a-8b2c-1d3e5f7a9b0c", &b2), 0);
	uuid_unparse_lower(*dbk_bdev_get_uuid(b2), u);
	assert_string_equal(u, "0b7c1f3a-9d5e-4f6a-8b2c-1d3e5f7a9b0c");
	assert_ptr_equal(lookup("0B7C1F3A-9D5E-4F6A-8B2C-1D3E5F7A9B0C"), b2);
	assert_int_equal(create_ram(0, "M2", 16, 4096, "0b7c1f3a-9d5e-4f6a-8b2c-1d3e5f7a9b0c", NULL), -EEXIST);

	/* aliases */
	l.name = "M1";
	l.alias = "disk-one";
	run_on(0, lookup_msg, &l);
	assert_int_equal(l.rc, 0);
	assert_ptr_equal(lookup("disk-one"), b2);
	l.alias = "M0";
	run_on(0, lookup_msg, &l);
	assert_int_equal(l.rc, -EEXIST);
	assert_int_equal(create_ram(0, "disk-one", 16, 512, NULL, NULL), -EEXIST);

	/* auto name */
	assert_int_equal(create_ram(0, NULL, 16, 512, NULL, &b), 0);
	assert_string_equal(dbk_bdev_get_name(b), "Malloc0");

	/* registration order */
	assert_string_equal(dbk_bdev_get_name(dbk_bdev_first()), "M0");
	assert_string_equal(dbk_bdev_get_name(dbk_bdev_next(dbk_bdev_first())), "M1");

	assert_int_equal(delete_bdev(0, "Malloc0"), 0);
	assert_int_equal(delete_bdev(0, "M1"), 0);
	assert_int_equal(delete_bdev(0, "M0"), 0);
	assert_int_equal(delete_bdev(0, "M0"), -ENODEV);
	assert_int_equal(create_ram(1, "N0", 16, 512, NULL, NULL), 0);
	assert_int_equal(delete_bdev(0, "N0"), -ENODEV); /* not a malloc bdev */
	assert_int_equal(delete_bdev(1, "N0"), 0);
	assert_null(lookup("M0"));
	assert_null(lookup("disk-one"));
	assert_null(dbk_bdev_first());
}

struct claim_op {
	struct opened *o;
	const char *owner;
	int rc;
	bool release;
	json_t *info;
};

static void claim_msg(void *ctx)
{
	struct claim_op *c = ctx;

	if (c->release)
		dbk_bdev_release_claim(c->o->desc);
	else if (c->owner)
		c->rc = dbk_bdev_claim(c->o->desc, c->owner);
	c->info = dbk_bdev_info_json(dbk_bdev_desc_get_bdev(c->o->desc));
}

struct resize_op {
	struct dbk_bdev *bdev;
	uint64_t cnt;
	int rc;
};

static void resize_msg(void *ctx)
{
	struct resize_op *r = ctx;

	r->rc = dbk_bdev_notify_blockcnt_change(r->bdev, r->cnt);
}

static void test_open_claim_remove(void **state)
{
	struct dbk_bdev *b;
	struct opened *o1, *o2, bad = {.name = "nope"};
	struct claim_op c = {0};
	struct resize_op rs;
	struct mdelete m = {.name = "C0", .kind = 0};

	(void)state;
	assert_int_equal(create_ram(0, "C0", 32, 512, NULL, &b), 0);
	run_on(0, open_msg, &bad);
	assert_int_equal(bad.rc, -ENODEV);

	o1 = open_bdev("C0");
	o2 = open_bdev("C0");
	assert_ptr_equal(dbk_bdev_desc_get_bdev(o1->desc), b);

	c.o = o1;
	c.owner = "nvmf_tgt";
	run_on(0, claim_msg, &c);
	assert_int_equal(c.rc, 0);
	assert_true(json_is_true(json_object_get(c.info, "claimed")));
	json_decref(c.info);
	assert_string_equal(dbk_bdev_get_claim_owner(b), "nvmf_tgt");
	c.o = o2;
	c.owner = "other";
	run_on(0, claim_msg, &c);
	assert_int_equal(c.rc, -EPERM);
	json_decref(c.info);
	assert_string_equal(dbk_bdev_get_claim_owner(b), "nvmf_tgt");
	c.o = o1;
	c.release = true;
	run_on(0, claim_msg, &c);
	assert_false(json_is_true(json_object_get(c.info, "claimed")));
	json_decref(c.info);
	assert_null(dbk_bdev_get_claim_owner(b));
	/* a claim goes with the descriptor */
	c.release = false;
	c.o = o2;
	c.owner = "o2";
	run_on(0, claim_msg, &c);
	assert_int_equal(c.rc, 0);
	json_decref(c.info);
	run_on(0, close_msg, o2);
	assert_null(dbk_bdev_get_claim_owner(b));
	free(o2);

	/* resize event */
	rs.bdev = b;
	rs.cnt = 48;
	run_on(0, resize_msg, &rs);
	assert_int_equal(rs.rc, 0);
	assert_int_equal(dbk_bdev_get_num_blocks(b), 48);
	for (int i = 0; i < 200 && atomic_load(&o1->resizes) == 0; i++)
		usleep(5000);
	assert_int_equal(atomic_load(&o1->resizes), 1);

	/* unregister: REMOVE reaches the open descriptor; completion waits for the close */
	o1->close_on_remove = true;
	sem_init(&m.done, 0, 0);
	run_on(0, mdelete_msg, &m);
	wait_sem(&m.done);
	sem_destroy(&m.done);
	assert_int_equal(m.rc, 0);
	assert_int_equal(atomic_load(&o1->removes), 1);
	assert_null(o1->desc);
	assert_null(lookup("C0"));
	free(o1);
}

static void test_malloc_rw_iovecs(void **state)
{
	const size_t len = 8 * 4096;
	uint8_t *src = xalloc(len), *dst = xalloc(len);
	struct iovec wiov[3] = {{src, 4096}, {src + 4096, 3 * 4096}, {src + 4 * 4096, 4 * 4096}};
	struct iovec riov[4] = {{dst, 2 * 4096}, {dst + 2 * 4096, 4096}, {dst + 3 * 4096, 4 * 4096}, {dst + 7 * 4096, 4096}};
	struct io_req q;
	struct opened *o;

	(void)state;
	assert_int_equal(create_ram(0, "R0", 256, 4096, NULL, NULL), 0);
	o = open_bdev("R0");
	get_channel(o, 1);
	fill_pattern(src, len, 3);
	memset(dst, 0, len);
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_WRITE, wiov, 3, 100, 8), 0);
	assert_true(q.success);
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_READ, riov, 4, 100, 8), 0);
	assert_true(q.success);
	assert_memory_equal(src, dst, len);
	/* neighbours untouched */
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_READ, riov, 1, 98, 2), 0);
	for (size_t i = 0; i < 2 * 4096; i++)
		assert_int_equal(dst[i], 0);
	/* native compare: equal, then a miscompare with NVMe (2, 0x85) */
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_COMPARE, wiov, 3, 100, 8), 0);
	assert_true(q.success);
	src[5000] ^= 0xff;
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_COMPARE, wiov, 3, 100, 8), 0);
	assert_false(q.success);
	assert_int_equal(q.sct, 2);
	assert_int_equal(q.sc, 0x85);
	/* unmap / write zeroes / flush natively */
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_UNMAP, NULL, 0, 101, 1), 0);
	assert_true(q.success);
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_WRITE_ZEROES, NULL, 0, 103, 2), 0);
	assert_true(q.success);
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_FLUSH, NULL, 0, 0, 256), 0);
	assert_true(q.success);
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_READ, riov, 4, 100, 8), 0);
	src[5000] ^= 0xff;
	memset(src + 4096, 0, 4096);
	memset(src + 3 * 4096, 0, 2 * 4096);
	assert_memory_equal(src, dst, len);
	close_bdev(o);
	assert_int_equal(delete_bdev(0, "R0"), 0);
	free(src);
	free(dst);
}

/* Zero-copy reads: malloc lends its memory (valid until the io is freed); null does not lend. */
static void test_read_lend(void **state)
{
	uint8_t *src = xalloc(8 * 4096);
	struct iovec wiov = {src, 8 * 4096};
	struct iovec liov = {(void *)0x1, 8 * 4096};	/* the base is ignored: set by the bdev */
	struct io_req q;
	struct opened *o;
	struct dbk_bdev *b, *z;

	(void)state;
	assert_int_equal(create_ram(0, "L0", 256, 4096, NULL, &b), 0);
	assert_int_equal(create_ram(1, "L1", 256, 4096, NULL, &z), 0);
	assert_true(dbk_bdev_can_lend_read(b));
	assert_false(dbk_bdev_can_lend_read(z));
	o = open_bdev("L0");
	get_channel(o, 1);
	fill_pattern(src, 8 * 4096, 9);
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_WRITE, &wiov, 1, 100, 8), 0);
	assert_true(q.success);

	memset(&q, 0, sizeof(q));
	sem_init(&q.done, 0, 0);
	q.o = o;
	q.r = 1;
	q.type = DBK_BDEV_IO_TYPE_READ;
	q.iov = &liov;
	q.iovcnt = 1;
	q.off = 100;
	q.num = 8;
	q.lend = true;
	run_on(1, submit_msg, &q);
	assert_int_equal(q.submit_rc, 0);
	io_wait(&q);
	assert_true(q.success);
	assert_non_null(q.lent_io);
	assert_true(liov.iov_base != (void *)0x1 && liov.iov_base != src);
	assert_memory_equal(liov.iov_base, src, 8 * 4096);
	/* The memory is the bdev's: a later write to those blocks shows through. */
	memset(src, 0xA5, 4096);
	wiov.iov_len = 4096;
	struct io_req w;
	assert_int_equal(do_io(&w, o, 1, DBK_BDEV_IO_TYPE_WRITE, &wiov, 1, 100, 1), 0);
	assert_true(w.success);
	assert_memory_equal(liov.iov_base, src, 4096);
	run_on(1, free_io_msg, q.lent_io);

	/* Wrong length: -EINVAL; past the end: -EINVAL; a bdev that does not lend: -ENOTSUP. */
	struct io_req e;
	liov.iov_len = 4096;
	memset(&e, 0, sizeof(e));
	e.o = o;
	e.r = 1;
	e.type = DBK_BDEV_IO_TYPE_READ;
	e.iov = &liov;
	e.iovcnt = 1;
	e.off = 100;
	e.num = 8;
	e.lend = true;
	run_on(1, submit_msg, &e);
	assert_int_equal(e.submit_rc, -EINVAL);
	liov.iov_len = 8 * 4096;
	e.off = 250;
	run_on(1, submit_msg, &e);
	assert_int_equal(e.submit_rc, -EINVAL);
	close_bdev(o);
	o = open_bdev("L1");
	get_channel(o, 1);
	e.o = o;
	e.off = 0;
	run_on(1, submit_msg, &e);
	assert_int_equal(e.submit_rc, -ENOTSUP);
	close_bdev(o);
	assert_int_equal(delete_bdev(0, "L0"), 0);
	assert_int_equal(delete_bdev(1, "L1"), 0);
	free(src);
}

struct qos_set;
static int set_qos(const char *name, uint64_t iops);

/*
 * Zero-copy write: the bdev lends the blocks' memory, completing inline (before the submit returns); what
 * the caller stores there is what reads return. Wrong length and past the end: -EINVAL; a bdev that does
 * not lend, or one under QoS (which may hold an I/O back): -ENOTSUP.
 */
static void test_write_lend(void **state)
{
	uint8_t *src = xalloc(8 * 4096), *rd = xalloc(8 * 4096);
	struct iovec liov = {(void *)0x1, 8 * 4096};
	struct iovec riov = {rd, 8 * 4096};
	struct io_req q, r;
	struct opened *o;
	struct dbk_bdev *b, *z;

	(void)state;
	assert_int_equal(create_ram(0, "W0", 256, 4096, NULL, &b), 0);
	assert_int_equal(create_ram(1, "W1", 256, 4096, NULL, &z), 0);
	assert_true(dbk_bdev_can_lend_write(b));
	assert_false(dbk_bdev_can_lend_write(z));
	o = open_bdev("W0");
	get_channel(o, 1);
	memset(&q, 0, sizeof(q));
	sem_init(&q.done, 0, 0);
	q.o = o;
	q.r = 1;
	q.type = DBK_BDEV_IO_TYPE_WRITE;
	q.iov = &liov;
	q.iovcnt = 1;
	q.off = 40;
	q.num = 8;
	q.lend = true;
	run_on(1, submit_msg, &q);
	assert_int_equal(q.submit_rc, 0);
	assert_true(atomic_load(&q.completed));	/* inline: done by the time the submit returned */
	io_wait(&q);
	assert_true(q.success);
	assert_non_null(q.lent_io);
	assert_true(liov.iov_base != (void *)0x1);
	fill_pattern(src, 8 * 4096, 31);
	memcpy(liov.iov_base, src, 8 * 4096);	/* the write, in place */
	assert_int_equal(do_io(&r, o, 1, DBK_BDEV_IO_TYPE_READ, &riov, 1, 40, 8), 0);
	assert_true(r.success);
	assert_memory_equal(rd, src, 8 * 4096);
	run_on(1, free_io_msg, q.lent_io);

	struct io_req e;
	memset(&e, 0, sizeof(e));
	e.o = o;
	e.r = 1;
	e.type = DBK_BDEV_IO_TYPE_WRITE;
	e.iov = &liov;
	e.iovcnt = 1;
	e.num = 8;
	e.lend = true;
	liov.iov_len = 4096;
	run_on(1, submit_msg, &e);
	assert_int_equal(e.submit_rc, -EINVAL);
	liov.iov_len = 8 * 4096;
	e.off = 250;
	run_on(1, submit_msg, &e);
	assert_int_equal(e.submit_rc, -EINVAL);
	e.off = 0;
	assert_int_equal(set_qos("W0", 1000000), 0);
	run_on(1, submit_msg, &e);
	assert_int_equal(e.submit_rc, -ENOTSUP);
	assert_int_equal(set_qos("W0", 0), 0);
	close_bdev(o);
	o = open_bdev("W1");
	get_channel(o, 1);
	e.o = o;
	run_on(1, submit_msg, &e);
	assert_int_equal(e.submit_rc, -ENOTSUP);
	close_bdev(o);
	assert_int_equal(delete_bdev(0, "W0"), 0);
	assert_int_equal(delete_bdev(1, "W1"), 0);
	free(src);
	free(rd);
}

static void test_null(void **state)
{
	uint8_t *buf = xalloc(4096);
	struct iovec iov = {buf, 4096};
	struct io_req q;
	struct opened *o;
	struct dbk_bdev *b;

	(void)state;
	assert_int_equal(create_ram(1, "Z0", 1024, 512, NULL, &b), 0);
	assert_true(dbk_bdev_io_type_supported(b, DBK_BDEV_IO_TYPE_WRITE_ZEROES)); /* emulated */
	o = open_bdev("Z0");
	get_channel(o, 0);
	memset(buf, 0x5a, 4096);
	assert_int_equal(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_WRITE, &iov, 1, 8, 8), 0);
	assert_true(q.success);
	assert_int_equal(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_READ, &iov, 1, 8, 8), 0);
	assert_true(q.success);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(buf[i], 0);
	assert_int_equal(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_WRITE_ZEROES, NULL, 0, 0, 1024), 0);
	assert_true(q.success);
	close_bdev(o);
	assert_int_equal(delete_bdev(1, "Z0"), 0);
	free(buf);
}

static void test_split(void **state)
{
	const uint64_t nb = 37;
	uint8_t *src = xalloc(nb * 512), *dst = xalloc(nb * 512);
	struct iovec wiov[7], riov[5];
	size_t cuts[7] = {1000, 24, 3000, 512, 5000, 4000, 0};
	size_t off = 0;
	struct io_req q;
	struct opened *o;
	struct testdisk *d;

	(void)state;
	d = td_create("T0", 4096, 4, 2);
	o = open_bdev("T0");
	get_channel(o, 1);
	fill_pattern(src, nb * 512, 9);
	for (int i = 0; i < 6; i++) {
		wiov[i].iov_base = src + off;
		wiov[i].iov_len = cuts[i];
		off += cuts[i];
	}
	wiov[6].iov_base = src + off;
	wiov[6].iov_len = nb * 512 - off;
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_WRITE, wiov, 7, 10, nb), 0);
	assert_true(q.success);
	assert_memory_equal(d->buf + 10 * 512, src, nb * 512);
	assert_true(atomic_load(&d->max_blocks_seen) <= 4);
	assert_true(atomic_load(&d->max_iovs_seen) <= 2);
	assert_true(atomic_load(&d->submits) >= 10);

	/* read back through another iovec layout */
	for (int i = 0; i < 5; i++) {
		riov[i].iov_base = dst + i * 3584;
		riov[i].iov_len = i < 4 ? 3584 : nb * 512 - 4 * 3584;
	}
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_READ, riov, 5, 10, nb), 0);
	assert_true(q.success);
	assert_memory_equal(src, dst, nb * 512);

	/* emulated compare through splits */
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_COMPARE, riov, 5, 10, nb), 0);
	assert_true(q.success);
	dst[nb * 512 - 1] ^= 1;
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_COMPARE, riov, 5, 10, nb), 0);
	assert_false(q.success);
	assert_int_equal(q.sct, 2);
	assert_int_equal(q.sc, 0x85);

	close_bdev(o);
	td_destroy(d);
	free(src);
	free(dst);
}

/* A split needing more children than the pool holds, with completions held. */
static void test_split_pool_exhaustion(void **state)
{
	const uint64_t nb = 1500;
	uint8_t *src = xalloc(nb * 512);
	struct iovec iov = {src, nb * 512};
	struct io_req q;
	struct opened *o;
	struct testdisk *d;

	(void)state;
	d = td_create("T1", 2048, 1, 0);
	o = open_bdev("T1");
	get_channel(o, 0);
	fill_pattern(src, nb * 512, 77);
	atomic_store(&d->hold, true);
	assert_int_equal(io_start(&q, o, 0, DBK_BDEV_IO_TYPE_WRITE, &iov, 1, 5, nb), 0);
	for (int i = 0; i < 2000 && !atomic_load(&q.completed); i++) {
		assert_true(atomic_load(&d->held_count) <= 544); /* pool + child reserve */
		td_release(d, 0);
	}
	io_wait(&q);
	assert_true(q.success);
	assert_int_equal(atomic_load(&d->submits), nb);
	assert_memory_equal(d->buf + 5 * 512, src, nb * 512);
	atomic_store(&d->hold, false);
	close_bdev(o);
	td_destroy(d);
	free(src);
}

static void test_write_zeroes_emulation(void **state)
{
	const uint64_t nb = 4096; /* 2 MiB: more than the shared zero buffer */
	uint8_t *buf = xalloc(nb * 512);
	struct io_req q;
	struct opened *o;
	struct testdisk *d;
	struct iovec iov = {buf, nb * 512};

	(void)state;
	d = td_create("T2", nb, 0, 0);
	assert_false(td_supported(d, DBK_BDEV_IO_TYPE_WRITE_ZEROES));
	assert_true(dbk_bdev_io_type_supported(&d->bdev, DBK_BDEV_IO_TYPE_WRITE_ZEROES));
	assert_false(dbk_bdev_io_type_supported(&d->bdev, DBK_BDEV_IO_TYPE_UNMAP));
	o = open_bdev("T2");
	get_channel(o, 1);
	memset(d->buf, 0xab, nb * 512);
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_WRITE_ZEROES, NULL, 0, 7, 3000), 0);
	assert_true(q.success);
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_READ, &iov, 1, 0, nb), 0);
	assert_true(q.success);
	for (uint64_t i = 0; i < nb * 512; i++)
		assert_int_equal(buf[i], (i >= 7 * 512 && i < 3007 * 512) ? 0 : 0xab);
	/* emulated compare over more than the 1 MiB compare buffer: equal, then a late miscompare */
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_COMPARE, &iov, 1, 0, nb), 0);
	assert_true(q.success);
	buf[nb * 512 - 700] ^= 0x10;
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_COMPARE, &iov, 1, 0, nb), 0);
	assert_false(q.success);
	assert_int_equal(q.sct, 2);
	assert_int_equal(q.sc, 0x85);
	assert_int_equal(q.err, -EILSEQ);
	buf[nb * 512 - 700] ^= 0x10;
	/* three emulated compares at once share the channel's buffer in turn */
	{
		struct io_req cq[3];
		struct iovec civ[3] = {{buf, 8 * 512}, {buf + 100 * 512, 8 * 512}, {buf + 3004 * 512, 8 * 512}};
		uint64_t coff[3] = {0, 100, 3004};
		atomic_store(&d->hold, true);
		for (int k = 0; k < 3; k++)
			assert_int_equal(io_start(&cq[k], o, 1, DBK_BDEV_IO_TYPE_COMPARE, &civ[k], 1, coff[k], 8), 0);
		assert_int_equal(atomic_load(&d->held_count), 1);
		atomic_store(&d->hold, false);
		td_release(d, 1);
		for (int k = 0; k < 3; k++) {
			io_wait(&cq[k]);
			assert_true(cq[k].success);
		}
	}
	/* not supported and not emulated */
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_UNMAP, NULL, 0, 0, 8), -ENOTSUP);
	/* no write cache: FLUSH completes successfully */
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_FLUSH, NULL, 0, 0, 8), 0);
	assert_true(q.success);
	close_bdev(o);
	td_destroy(d);
	free(buf);
}

static void test_invalid_io(void **state)
{
	uint8_t *buf = xalloc(8192);
	struct iovec iov = {buf, 8192}, shortiov = {buf, 1000};
	struct io_req q;
	struct opened *o, *ro;
	struct testdisk *d;

	(void)state;
	d = td_create("T3", 100, 0, 0);
	o = open_bdev("T3");
	get_channel(o, 0);
	assert_int_equal(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_READ, &iov, 1, 100, 1), -EINVAL);
	assert_int_equal(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_READ, &iov, 1, 99, 2), -EINVAL);
	assert_int_equal(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_READ, &iov, 1, 0, 0), -EINVAL);
	assert_int_equal(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_WRITE, &iov, 1, UINT64_MAX, 2), -EINVAL);
	assert_int_equal(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_WRITE, &shortiov, 1, 0, 2), -EINVAL);
	assert_int_equal(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_WRITE_ZEROES, NULL, 0, 90, 11), -EINVAL);
	assert_int_equal(atomic_load(&d->submits), 0);
	assert_int_equal(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_READ, &iov, 1, 84, 16), 0);
	assert_true(q.success);

	/* read-only descriptor cannot write */
	ro = calloc(1, sizeof(*ro));
	ro->name = "T3";
	ro->write = false;
	run_on(0, open_msg, ro);
	assert_int_equal(ro->rc, 0);
	get_channel(ro, 0);
	assert_int_equal(do_io(&q, ro, 0, DBK_BDEV_IO_TYPE_WRITE, &iov, 1, 0, 1), -EBADF);
	assert_int_equal(do_io(&q, ro, 0, DBK_BDEV_IO_TYPE_READ, &iov, 1, 0, 1), 0);
	put_channel(ro, 0);
	run_on(1, close_msg, ro); /* closing on another reactor is forwarded to the main one */
	close_bdev(ro);
	close_bdev(o);
	td_destroy(d);
	free(buf);
}

/* ENOMEM from the pool, dbk_bdev_queue_io_wait, and module NOMEM retries. */
struct waiter {
	struct dbk_bdev_io_wait_entry e;
	struct io_req *q;
	atomic_int called;
};

static void waiter_cb(void *arg)
{
	struct waiter *w = arg;

	atomic_fetch_add(&w->called, 1);
	w->q->submit_rc = submit_req(w->q);
}

struct qwait {
	struct waiter *w;
	struct opened *o;
	int rc;
};

static void qwait_msg(void *ctx)
{
	struct qwait *x = ctx;

	x->w->e.cb_fn = waiter_cb;
	x->w->e.cb_arg = x->w;
	x->rc = dbk_bdev_queue_io_wait(dbk_bdev_desc_get_bdev(x->o->desc), x->o->ch[1], &x->w->e);
}

static void test_enomem_and_nomem(void **state)
{
	enum { N = 512 };
	uint8_t *buf = xalloc(512);
	struct iovec iov = {buf, 512};
	struct io_req *qs = calloc(N + 1, sizeof(*qs));
	struct io_req q;
	struct waiter w = {0};
	struct qwait x;
	struct opened *o;
	struct testdisk *d;

	(void)state;
	d = td_create("T4", 64, 0, 0);
	o = open_bdev("T4");
	get_channel(o, 1);
	atomic_store(&d->hold, true);
	for (int i = 0; i < N; i++)
		assert_int_equal(io_start(&qs[i], o, 1, DBK_BDEV_IO_TYPE_READ, &iov, 1, i % 64, 1), 0);
	assert_int_equal(io_start(&qs[N], o, 1, DBK_BDEV_IO_TYPE_READ, &iov, 1, 0, 1), -ENOMEM);
	/* wait for a free bdev_io, then resubmit from the callback */
	memset(&qs[N], 0, sizeof(qs[N]));
	sem_init(&qs[N].done, 0, 0);
	qs[N].o = o;
	qs[N].r = 1;
	qs[N].type = DBK_BDEV_IO_TYPE_READ;
	qs[N].iov = &iov;
	qs[N].iovcnt = 1;
	qs[N].num = 1;
	qs[N].submit_rc = -1;
	w.q = &qs[N];
	x.w = &w;
	x.o = o;
	run_on(1, qwait_msg, &x);
	assert_int_equal(x.rc, 0);
	assert_int_equal(atomic_load(&w.called), 0);
	atomic_store(&d->hold, false);
	td_release(d, 1);
	for (int i = 0; i < N; i++) {
		io_wait(&qs[i]);
		assert_true(qs[i].success);
	}
	assert_int_equal(atomic_load(&w.called), 1);
	assert_int_equal(qs[N].submit_rc, 0);
	io_wait(&qs[N]);
	assert_true(qs[N].success);

	/* module answers NOMEM three times: the core queues and retries */
	atomic_store(&d->submits, 0);
	atomic_store(&d->nomem_budget, 3);
	memset(buf, 0x42, 512);
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_WRITE, &iov, 1, 9, 1), 0);
	assert_true(q.success);
	assert_int_equal(atomic_load(&d->submits), 4);
	assert_int_equal(d->buf[9 * 512 + 100], 0x42);
	close_bdev(o);
	td_destroy(d);
	free(qs);
	free(buf);
}

static void test_reset_waits(void **state)
{
	uint8_t *buf = xalloc(3 * 512);
	struct iovec iov[3] = {{buf, 512}, {buf + 512, 512}, {buf + 1024, 512}};
	struct io_req w[3], r, after;
	struct opened *o;
	struct testdisk *d;

	(void)state;
	memset(buf, 0x77, 3 * 512);
	d = td_create("T5", 64, 0, 0);
	o = open_bdev("T5");
	get_channel(o, 0);
	atomic_store(&d->hold, true);
	for (int i = 0; i < 3; i++)
		assert_int_equal(io_start(&w[i], o, 0, DBK_BDEV_IO_TYPE_WRITE, &iov[i], 1, i, 1), 0);
	assert_int_equal(io_start(&r, o, 0, DBK_BDEV_IO_TYPE_RESET, NULL, 0, 0, 0), 0);
	usleep(50000);
	assert_false(atomic_load(&r.completed));
	assert_int_equal(atomic_load(&d->held_count), 3);
	atomic_store(&d->hold, false);
	td_release(d, 0);
	for (int i = 0; i < 3; i++) {
		io_wait(&w[i]);
		assert_true(w[i].success);
	}
	io_wait(&r);
	assert_true(r.success);
	/* a reset with nothing in flight completes at once */
	assert_int_equal(do_io(&after, o, 0, DBK_BDEV_IO_TYPE_RESET, NULL, 0, 0, 0), 0);
	assert_true(after.success);
	assert_int_equal(d->buf[1024 + 5], 0x77);
	close_bdev(o);
	td_destroy(d);
	free(buf);
}

struct stat_get {
	const char *name;
	bool per_channel;
	struct dbk_bdev_io_stat st;
	json_t *channels;
	int rc;
	sem_t done;
};

static void stat_cb(struct dbk_bdev *bdev, const struct dbk_bdev_io_stat *total, json_t *per_channel, void *ctx,
		    int rc)
{
	struct stat_get *s = ctx;

	(void)bdev;
	s->rc = rc;
	if (total)
		s->st = *total;
	s->channels = per_channel ? json_deep_copy(per_channel) : NULL;
	sem_post(&s->done);
}

static void stat_msg(void *ctx)
{
	struct stat_get *s = ctx;

	dbk_bdev_get_iostat(dbk_bdev_get_by_name(s->name), s->per_channel, stat_cb, s);
}

static void get_stats(struct stat_get *s, const char *name, bool per_channel)
{
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->per_channel = per_channel;
	sem_init(&s->done, 0, 0);
	run_on(0, stat_msg, s);
	wait_sem(&s->done);
	sem_destroy(&s->done);
}

static void test_stats(void **state)
{
	uint8_t *buf = xalloc(8 * 512);
	struct iovec iov = {buf, 8 * 512};
	struct io_req q;
	struct stat_get s;
	struct opened *o;

	(void)state;
	assert_int_equal(create_ram(0, "S0", 128, 512, NULL, NULL), 0);
	o = open_bdev("S0");
	get_channel(o, 0);
	get_channel(o, 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(do_io(&q, o, i % 2, DBK_BDEV_IO_TYPE_WRITE, &iov, 1, i * 8, 8), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_READ, &iov, 1, 0, 4), 0);
	assert_int_equal(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_UNMAP, NULL, 0, 0, 16), 0);
	get_stats(&s, "S0", true);
	assert_int_equal(s.rc, 0);
	assert_int_equal(s.st.ops[DBK_BDEV_IO_TYPE_WRITE], 3);
	assert_int_equal(s.st.bytes[DBK_BDEV_IO_TYPE_WRITE], 3 * 8 * 512);
	assert_int_equal(s.st.ops[DBK_BDEV_IO_TYPE_READ], 2);
	assert_int_equal(s.st.bytes[DBK_BDEV_IO_TYPE_READ], 2 * 4 * 512);
	assert_int_equal(s.st.ops[DBK_BDEV_IO_TYPE_UNMAP], 1);
	assert_int_equal(s.st.bytes[DBK_BDEV_IO_TYPE_UNMAP], 16 * 512);
	assert_true(s.st.lat_min_ns[DBK_BDEV_IO_TYPE_WRITE] <= s.st.lat_max_ns[DBK_BDEV_IO_TYPE_WRITE]);
	assert_true(s.st.lat_total_ns[DBK_BDEV_IO_TYPE_WRITE] >= s.st.lat_max_ns[DBK_BDEV_IO_TYPE_WRITE]);
	assert_int_equal(s.st.lat_min_ns[DBK_BDEV_IO_TYPE_COMPARE], UINT64_MAX);
	assert_non_null(s.channels);
	assert_int_equal(json_array_size(s.channels), 2);
	{
		json_int_t w = 0;
		size_t i;
		json_t *c;
		json_array_foreach(s.channels, i, c) {
			w += json_integer_value(json_object_get(c, "num_write_ops"));
			assert_non_null(json_object_get(c, "thread_name"));
		}
		assert_int_equal(w, 3);
	}
	json_decref(s.channels);
	/* a destroyed channel's counts stay in the totals */
	put_channel(o, 1);
	usleep(20000);
	get_stats(&s, "S0", false);
	assert_null(s.channels);
	assert_int_equal(s.st.ops[DBK_BDEV_IO_TYPE_WRITE], 3);
	assert_int_equal(s.st.ops[DBK_BDEV_IO_TYPE_READ], 2);
	close_bdev(o);
	assert_int_equal(delete_bdev(0, "S0"), 0);
	free(buf);
}


static void test_lat_bucket(void **state)
{
	(void)state;
	assert_int_equal(dbk_bdev_lat_bucket(0), 0);
	assert_int_equal(dbk_bdev_lat_bucket(1000), 0);
	assert_int_equal(dbk_bdev_lat_bucket(1001), 1);
	assert_int_equal(dbk_bdev_lat_bucket(2000), 1);
	assert_int_equal(dbk_bdev_lat_bucket(2001), 2);
	assert_int_equal(dbk_bdev_lat_bucket(4000), 2);
	assert_int_equal(dbk_bdev_lat_bucket(4001), 3);
	assert_int_equal(dbk_bdev_lat_bucket(1000ULL << 20), 20);
	assert_int_equal(dbk_bdev_lat_bucket((1000ULL << 20) + 1), 21);
	assert_int_equal(dbk_bdev_lat_bucket(1000ULL << 25), 25);
	assert_int_equal(dbk_bdev_lat_bucket((1000ULL << 25) + 1), DBK_BDEV_LAT_BUCKETS - 1);
	assert_int_equal(dbk_bdev_lat_bucket(UINT64_MAX), DBK_BDEV_LAT_BUCKETS - 1);
	for (unsigned i = 0; i < DBK_BDEV_LAT_BUCKETS - 1; i++) {
		assert_int_equal(dbk_bdev_lat_bucket(dbk_bdev_lat_bucket_bound_us(i) * 1000), i);
		assert_int_equal(dbk_bdev_lat_bucket(dbk_bdev_lat_bucket_bound_us(i) * 1000 + 1), i + 1);
	}
	assert_true(dbk_bdev_lat_bucket_bound_us(DBK_BDEV_LAT_BUCKETS - 1) == UINT64_MAX);
}

static uint64_t hist_sum(const struct dbk_bdev_io_stat *st, enum dbk_bdev_io_type t)
{
	uint64_t n = 0;

	for (int j = 0; j < DBK_BDEV_LAT_BUCKETS; j++)
		n += st->lat_hist[t][j];
	return n;
}

/* The latency histogram: every successful I/O in one bucket, the bucket its latency belongs in, on every
 * channel, destroyed channels included. */
static void test_latency_histogram(void **state)
{
	uint8_t *buf = xalloc(8 * 512);
	struct iovec iov = {buf, 8 * 512};
	struct io_req q;
	struct stat_get s;
	struct opened *o;
	struct testdisk *d;
	int lo = -1, hi = -1;

	(void)state;
	d = td_create("H0", 1024, 0, 0);
	o = open_bdev("H0");
	get_channel(o, 0);
	get_channel(o, 1);
	for (int i = 0; i < 5; i++)
		assert_int_equal(do_io(&q, o, i % 2, DBK_BDEV_IO_TYPE_READ, &iov, 1, 0, 8), 0);
	/* one read held for >= 20 ms: its bucket is at least (16.4 ms, 32.8 ms] */
	atomic_store(&d->hold, true);
	assert_int_equal(io_start(&q, o, 1, DBK_BDEV_IO_TYPE_READ, &iov, 1, 0, 8), 0);
	usleep(20000);
	atomic_store(&d->hold, false);
	td_release(d, 1);
	io_wait(&q);
	assert_true(q.success);
	assert_int_equal(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_WRITE, &iov, 1, 8, 8), 0);
	/* past the end: fails at submission (not counted at all) */
	assert_int_equal(io_start(&q, o, 0, DBK_BDEV_IO_TYPE_READ, &iov, 1, 1020, 8), -EINVAL);
	sem_destroy(&q.done);

	get_stats(&s, "H0", false);
	assert_int_equal(s.rc, 0);
	assert_int_equal(s.st.ops[DBK_BDEV_IO_TYPE_READ], 6);
	assert_int_equal(hist_sum(&s.st, DBK_BDEV_IO_TYPE_READ), 6);
	assert_int_equal(hist_sum(&s.st, DBK_BDEV_IO_TYPE_WRITE), 1);
	for (int t = 0; t < DBK_BDEV_NUM_IO_TYPES; t++)
		assert_int_equal(hist_sum(&s.st, (enum dbk_bdev_io_type)t), s.st.ops[t]);
	for (int j = 0; j < DBK_BDEV_LAT_BUCKETS; j++) {
		if (s.st.lat_hist[DBK_BDEV_IO_TYPE_READ][j] == 0)
			continue;
		if (lo < 0)
			lo = j;
		hi = j;
	}
	/* the fastest and the slowest read are where min and max say */
	assert_int_equal(lo, dbk_bdev_lat_bucket(s.st.lat_min_ns[DBK_BDEV_IO_TYPE_READ]));
	assert_int_equal(hi, dbk_bdev_lat_bucket(s.st.lat_max_ns[DBK_BDEV_IO_TYPE_READ]));
	assert_true(s.st.lat_max_ns[DBK_BDEV_IO_TYPE_READ] >= 20000000);
	assert_true(hi >= 15);
	assert_int_equal(s.st.lat_hist[DBK_BDEV_IO_TYPE_READ][hi], 1);
	assert_true(lo < hi);

	/* a destroyed channel's buckets stay in the totals */
	put_channel(o, 1);
	usleep(20000);
	get_stats(&s, "H0", false);
	assert_int_equal(hist_sum(&s.st, DBK_BDEV_IO_TYPE_READ), 6);
	assert_int_equal(s.st.lat_hist[DBK_BDEV_IO_TYPE_READ][hi], 1);
	close_bdev(o);
	td_destroy(d);
	free(buf);
}

/* Each completion submits the next I/O: synchronous (malloc) completions must not recurse without bound. */
struct chain {
	struct opened *o;
	struct iovec iov;
	int left;
	int done;
	int rc;
	sem_t fin;
};

static void chain_next(struct chain *c);

static void chain_cb(struct dbk_bdev_io *io, bool success, void *arg)
{
	struct chain *c = arg;

	dbk_bdev_free_io(io);
	if (!success)
		c->rc = -EIO;
	c->done++;
	if (--c->left > 0 && c->rc == 0)
		chain_next(c);
	else
		sem_post(&c->fin);
}

static void chain_next(struct chain *c)
{
	int rc = dbk_bdev_readv_blocks(c->o->desc, c->o->ch[1], &c->iov, 1, c->left % 64, 1, chain_cb, c);

	if (rc != 0) {
		c->rc = rc;
		sem_post(&c->fin);
	}
}

static void chain_start(void *ctx)
{
	chain_next(ctx);
}

static void test_completion_chain(void **state)
{
	struct chain *c = calloc(1, sizeof(*c));
	uint8_t *buf = xalloc(512);

	(void)state;
	assert_int_equal(create_ram(0, "CH", 64, 512, NULL, NULL), 0);
	c->o = open_bdev("CH");
	get_channel(c->o, 1);
	c->iov.iov_base = buf;
	c->iov.iov_len = 512;
	c->left = 200000;
	sem_init(&c->fin, 0, 0);
	run_on(1, chain_start, c);
	wait_sem(&c->fin);
	sem_destroy(&c->fin);
	assert_int_equal(c->rc, 0);
	assert_int_equal(c->done, 200000);
	close_bdev(c->o);
	assert_int_equal(delete_bdev(0, "CH"), 0);
	free(c);
	free(buf);
}

/* --------------------------------------------------------------- uring */

struct ucreate {
	const char *name, *file;
	uint32_t bs;
	int rc;
	char err[256];
	struct dbk_bdev *bdev;
};

static void ucreate_msg(void *ctx)
{
	struct ucreate *u = ctx;

	u->rc = dbk_bdev_uring_create(u->name, u->file, u->bs, NULL, &u->bdev, u->err, sizeof(u->err));
}

static void uring_roundtrip(uint32_t bs, bool unaligned)
{
	char path[] = "/tmp/dbk_uring_XXXXXX";
	int fd = mkstemp(path);
	const size_t fsize = 4 << 20;
	const uint64_t nb = 48;
	uint8_t *raw = xalloc(nb * bs + 4096), *src = unaligned ? raw + 8 : raw;
	uint8_t *dst = xalloc(nb * bs), *chk = malloc(nb * bs);
	struct iovec iov = {src, nb * bs}, riov = {dst, nb * bs};
	struct iovec many[40];
	struct ucreate u = {.name = "U0", .file = path, .bs = bs};
	struct io_req q;
	struct opened *o;
	json_t *info, *ds;

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, fsize), 0);
	run_on(0, ucreate_msg, &u);
	assert_int_equal(u.rc, 0);
	assert_int_equal(dbk_bdev_get_num_blocks(u.bdev), fsize / bs);
	assert_true(dbk_bdev_has_write_cache(u.bdev));
	info = dbk_bdev_info_json(u.bdev);
	ds = json_object_get(json_object_get(info, "driver_specific"), "uring");
	assert_string_equal(json_string_value(json_object_get(ds, "filename")), path);
	json_decref(info);

	o = open_bdev("U0");
	get_channel(o, 1);
	fill_pattern(src, nb * bs, bs + unaligned);
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_WRITE, &iov, 1, 3, nb), 0);
	assert_true(q.success);
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_FLUSH, NULL, 0, 0, fsize / bs), 0);
	assert_true(q.success);
	assert_int_equal(pread(fd, chk, nb * bs, 3 * bs), (ssize_t)(nb * bs));
	assert_memory_equal(chk, src, nb * bs);
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_READ, &riov, 1, 3, nb), 0);
	assert_true(q.success);
	assert_memory_equal(dst, src, nb * bs);

	/* 40 iovecs: more than the module's max_segments, split by the core */
	for (int i = 0; i < 40; i++) {
		many[i].iov_base = dst + (size_t)i * bs;
		many[i].iov_len = bs;
	}
	memset(dst, 0, 40 * bs);
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_READ, many, 40, 3, 40), 0);
	assert_true(q.success);
	assert_memory_equal(dst, src, 40 * bs);

	/* unmap then read zeros (through the bdev and the file) */
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_UNMAP, NULL, 0, 3, 8), 0);
	assert_true(q.success);
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_READ, &riov, 1, 3, nb), 0);
	assert_true(q.success);
	for (size_t i = 0; i < nb * bs; i++)
		assert_int_equal(dst[i], i < 8 * bs ? 0 : src[i]);
	/* write zeroes */
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_WRITE_ZEROES, NULL, 0, 11, 2), 0);
	assert_true(q.success);
	assert_int_equal(pread(fd, chk, nb * bs, 3 * bs), (ssize_t)(nb * bs));
	for (size_t i = 0; i < nb * bs; i++)
		assert_int_equal(chk[i], (i < 8 * bs || (i >= 8 * bs && i < 10 * bs)) ? 0 : src[i]);
	/* past the end */
	assert_int_equal(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_READ, &riov, 1, fsize / bs - 1, 2), -EINVAL);
	close_bdev(o);
	assert_int_equal(delete_bdev(2, "U0"), 0);
	assert_null(lookup("U0"));
	close(fd);
	unlink(path);
	free(raw);
	free(dst);
	free(chk);
}

static void test_uring(void **state)
{
	(void)state;
	uring_roundtrip(4096, false);
	uring_roundtrip(512, false);
	uring_roundtrip(4096, true);
}

static void test_uring_errors(void **state)
{
	char path[] = "/tmp/dbk_uring_XXXXXX";
	int fd = mkstemp(path);
	struct ucreate u = {.name = "UE", .file = "/nonexistent/dbk.img", .bs = 512};

	(void)state;
	run_on(0, ucreate_msg, &u);
	assert_int_equal(u.rc, -ENOENT);
	assert_non_null(strstr(u.err, "cannot open '/nonexistent/dbk.img'"));
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	u.file = path;
	u.bs = 1000;
	run_on(0, ucreate_msg, &u);
	assert_int_equal(u.rc, -EINVAL);
	assert_non_null(strstr(u.err, "block_size 1000 must be a multiple of 512"));
	assert_int_equal(ftruncate(fd, 100), 0);
	u.bs = 512;
	run_on(0, ucreate_msg, &u);
	assert_int_equal(u.rc, -EINVAL);
	assert_null(lookup("UE"));
	close(fd);
	unlink(path);
}


/* The file shrinks under the bdev: a read across the new end gets the data, then zeros (short reads resubmitted). */
static void test_uring_short_read(void **state)
{
	char path[] = "/tmp/dbk_uring_XXXXXX";
	int fd = mkstemp(path);
	struct ucreate u = {.name = "US", .file = path, .bs = 4096};
	uint8_t *src = xalloc(16 * 4096), *dst = xalloc(16 * 4096);
	struct iovec iov = {src, 16 * 4096}, riov = {dst, 16 * 4096};
	struct io_req q;
	struct opened *o;
	const size_t cut = 4 * 4096 + 4096 * 4 + 100; /* mid-block, inside the range read below */

	(void)state;
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	run_on(0, ucreate_msg, &u);
	assert_int_equal(u.rc, 0);
	o = open_bdev("US");
	get_channel(o, 0);
	fill_pattern(src, 16 * 4096, 5);
	assert_int_equal(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_WRITE, &iov, 1, 4, 16), 0);
	assert_true(q.success);
	assert_int_equal(ftruncate(fd, cut), 0);
	memset(dst, 0xee, 16 * 4096);
	assert_int_equal(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_READ, &riov, 1, 4, 16), 0);
	assert_true(q.success);
	for (size_t i = 0; i < 16 * 4096; i++)
		assert_int_equal(dst[i], i < cut - 4 * 4096 ? src[i] : 0);
	close_bdev(o);
	assert_int_equal(delete_bdev(2, "US"), 0);
	close(fd);
	unlink(path);
	free(src);
	free(dst);
}

/* ---------------------------------------------------------------- JSON */

struct cfg {
	json_t *arr;
};

static void cfg_msg(void *ctx)
{
	struct cfg *c = ctx;

	c->arr = json_array();
	dbk_bdev_write_config_json(c->arr);
}

static void test_json(void **state)
{
	struct dbk_bdev *b;
	json_t *info, *types;
	struct cfg c;
	size_t i;
	json_t *e;
	bool seen_m = false, seen_n = false;
	static const char *const keys[] = {"name", "aliases", "product_name", "block_size", "num_blocks", "uuid",
					   "claimed", "zoned", "supported_io_types", "driver_specific"};
	static const char *const tkeys[] = {"read", "write", "unmap", "write_zeroes", "flush", "reset", "compare"};

	(void)state;
	assert_int_equal(create_ram(0, "J0", 2048, 4096, "11111111-2222-3333-4444-555555555555", &b), 0);
	assert_int_equal(create_ram(1, "J1", 100, 512, NULL, NULL), 0);
	info = dbk_bdev_info_json(b);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_non_null(json_object_get(info, keys[i]));
	assert_string_equal(json_string_value(json_object_get(info, "name")), "J0");
	assert_string_equal(json_string_value(json_object_get(info, "product_name")), "Malloc disk");
	assert_int_equal(json_integer_value(json_object_get(info, "block_size")), 4096);
	assert_int_equal(json_integer_value(json_object_get(info, "num_blocks")), 2048);
	assert_string_equal(json_string_value(json_object_get(info, "uuid")), "11111111-2222-3333-4444-555555555555");
	assert_true(json_is_false(json_object_get(info, "claimed")));
	assert_true(json_is_false(json_object_get(info, "zoned")));
	assert_true(json_is_array(json_object_get(info, "aliases")));
	assert_true(json_is_object(json_object_get(info, "driver_specific")));
	types = json_object_get(info, "supported_io_types");
	for (i = 0; i < sizeof(tkeys) / sizeof(tkeys[0]); i++)
		assert_true(json_is_true(json_object_get(types, tkeys[i])));
	json_decref(info);

	run_on(0, cfg_msg, &c);
	json_array_foreach(c.arr, i, e) {
		const char *m = json_string_value(json_object_get(e, "method"));
		json_t *p = json_object_get(e, "params");
		assert_non_null(m);
		assert_true(json_is_object(p));
		if (strcmp(m, "bdev_malloc_create") == 0) {
			seen_m = true;
			assert_string_equal(json_string_value(json_object_get(p, "name")), "J0");
			assert_int_equal(json_integer_value(json_object_get(p, "num_blocks")), 2048);
			assert_int_equal(json_integer_value(json_object_get(p, "block_size")), 4096);
			assert_string_equal(json_string_value(json_object_get(p, "uuid")),
					    "11111111-2222-3333-4444-555555555555");
		} else if (strcmp(m, "bdev_null_create") == 0) {
			seen_n = true;
			assert_string_equal(json_string_value(json_object_get(p, "name")), "J1");
			assert_non_null(json_object_get(p, "uuid"));
		}
	}
	assert_true(seen_m && seen_n);
	json_decref(c.arr);
	assert_int_equal(delete_bdev(0, "J0"), 0);
	assert_int_equal(delete_bdev(1, "J1"), 0);
}

#ifdef DBK_TEST_RPC
/* ----------------------------------------------------------------- RPC */

struct rpc_call {
	const char *method;
	json_t *params;
	json_t *result;
	int code;
	char msg[256];
	sem_t done;
};

static void rpc_cb(void *ctx, const json_t *result, int code, const char *message)
{
	struct rpc_call *c = ctx;

	c->code = code;
	c->result = result ? json_deep_copy(result) : NULL;
	snprintf(c->msg, sizeof(c->msg), "%s", message ? message : "");
	sem_post(&c->done);
}

static void rpc_msg(void *ctx)
{
	struct rpc_call *c = ctx;

	dbk_rpc_call_local(c->method, c->params, rpc_cb, c);
}

/* Call method with params (stolen); returns the result (new ref) or NULL with *code set. */
static json_t *rpc(const char *method, json_t *params, int *code, char *msg)
{
	struct rpc_call c = {.method = method, .params = params};

	sem_init(&c.done, 0, 0);
	run_on(0, rpc_msg, &c);
	wait_sem(&c.done);
	sem_destroy(&c.done);
	json_decref(params);
	if (code)
		*code = c.code;
	if (msg)
		strcpy(msg, c.msg);
	return c.result;
}

static void test_rpc(void **state)
{
	json_t *r;
	int code;
	char msg[256];
	char path[] = "/tmp/dbk_uring_XXXXXX";
	int fd = mkstemp(path);

	(void)state;
	r = rpc("bdev_malloc_create", json_pack("{s:i,s:i}", "num_blocks", 256, "block_size", 512), &code, msg);
	assert_int_equal(code, 0);
	assert_string_equal(json_string_value(r), "Malloc0");
	json_decref(r);
	r = rpc("bdev_malloc_create", json_pack("{s:s,s:i,s:i}", "name", "Malloc0", "num_blocks", 8, "block_size",
						512), &code, msg);
	assert_null(r);
	assert_int_equal(code, -EEXIST);
	assert_non_null(strstr(msg, "already exists"));
	r = rpc("bdev_malloc_create", json_pack("{s:i,s:i}", "num_blocks", 8, "block_size", 1000), &code, msg);
	assert_int_equal(code, -EINVAL);
	assert_non_null(strstr(msg, "block_size 1000 must be a multiple of 512"));
	r = rpc("bdev_malloc_create", json_pack("{s:s,s:I,s:i}", "name", "Huge", "num_blocks", (json_int_t)1 << 40,
						"block_size", 4096), &code, msg);
	assert_int_equal(code, -ENOMEM);
	assert_non_null(strstr(msg, "cannot allocate"));
	assert_null(lookup("Huge"));
	r = rpc("bdev_malloc_create", json_pack("{s:i}", "num_blocks", 8), &code, msg);
	assert_int_equal(code, DBK_JSONRPC_INVALID_PARAMS);
	assert_non_null(strstr(msg, "block_size"));
	r = rpc("bdev_null_create", json_pack("{s:s,s:i,s:i,s:s}", "name", "Null7", "num_blocks", 64, "block_size",
					      4096, "uuid", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"), &code, msg);
	assert_int_equal(code, 0);
	json_decref(r);

	r = rpc("bdev_get_bdevs", NULL, &code, msg);
	assert_int_equal(code, 0);
	assert_int_equal(json_array_size(r), 2);
	json_decref(r);
	r = rpc("bdev_get_bdevs", json_pack("{s:s}", "name", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"), &code, msg);
	assert_int_equal(code, 0);
	assert_string_equal(json_string_value(json_object_get(json_array_get(r, 0), "name")), "Null7");
	json_decref(r);
	r = rpc("bdev_get_bdevs", json_pack("{s:s}", "name", "nope"), &code, msg);
	assert_int_equal(code, -ENODEV);
	assert_non_null(strstr(msg, "bdev 'nope' not found"));
	r = rpc("bdev_get_bdevs", json_pack("{s:s,s:i}", "name", "nope", "timeout", 30), &code, msg);
	assert_int_equal(code, -ENODEV);

	r = rpc("bdev_get_iostat", NULL, &code, msg);
	assert_int_equal(code, 0);
	assert_int_equal(json_integer_value(json_object_get(r, "tick_rate")), 1000000000);
	assert_int_equal(json_array_size(json_object_get(r, "bdevs")), 2);
	assert_non_null(json_object_get(json_array_get(json_object_get(r, "bdevs"), 0), "num_read_ops"));
	json_decref(r);
	r = rpc("bdev_get_iostat", json_pack("{s:s,s:b}", "name", "Null7", "per_channel", 1), &code, msg);
	assert_int_equal(code, 0);
	assert_int_equal(json_array_size(json_object_get(r, "bdevs")), 1);
	assert_true(json_is_array(json_object_get(json_array_get(json_object_get(r, "bdevs"), 0), "channels")));
	json_decref(r);

	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	r = rpc("bdev_uring_create", json_pack("{s:s,s:s}", "name", "Ur0", "filename", path), &code, msg);
	assert_int_equal(code, 0);
	assert_string_equal(json_string_value(r), "Ur0");
	json_decref(r);
	r = rpc("bdev_uring_create", json_pack("{s:s,s:s}", "name", "Ur1", "filename", "/no/such"), &code, msg);
	assert_int_equal(code, -ENOENT);
	assert_non_null(strstr(msg, "No such file or directory"));

	r = rpc("bdev_null_delete", json_pack("{s:s}", "name", "Malloc0"), &code, msg);
	assert_int_equal(code, -ENODEV);
	r = rpc("bdev_malloc_delete", json_pack("{s:s}", "name", "Malloc0"), &code, msg);
	assert_int_equal(code, 0);
	assert_true(json_is_true(r));
	json_decref(r);
	r = rpc("bdev_malloc_delete", json_pack("{s:s}", "name", "Malloc0"), &code, msg);
	assert_int_equal(code, -ENODEV);
	r = rpc("bdev_null_delete", json_pack("{s:s}", "name", "Null7"), &code, msg);
	assert_int_equal(code, 0);
	json_decref(r);
	r = rpc("bdev_uring_delete", json_pack("{s:s}", "name", "Ur0"), &code, msg);
	assert_int_equal(code, 0);
	json_decref(r);
	assert_null(dbk_bdev_first());
	close(fd);
	unlink(path);
}



static void test_rpc_qos(void **state)
{
	json_t *r, *lim;
	int code;
	char msg[256];

	(void)state;
	assert_int_equal(create_ram(0, "Q1", 64, 512, NULL, NULL), 0);
	r = rpc("bdev_set_qos_limit", json_pack("{s:s,s:i}", "name", "Q1", "rw_ios_per_sec", 1500), &code, msg);
	assert_int_equal(code, -EINVAL);
	assert_non_null(strstr(msg, "multiple of 1000"));
	r = rpc("bdev_set_qos_limit", json_pack("{s:s}", "name", "Q1"), &code, msg);
	assert_int_equal(code, DBK_JSONRPC_INVALID_PARAMS);
	r = rpc("bdev_set_qos_limit", json_pack("{s:s,s:i}", "name", "nope", "rw_ios_per_sec", 1000), &code, msg);
	assert_int_equal(code, -ENODEV);
	r = rpc("bdev_set_qos_limit", json_pack("{s:s,s:i,s:i}", "name", "Q1", "rw_ios_per_sec", 2000,
						"w_mbytes_per_sec", 10), &code, msg);
	assert_int_equal(code, 0);
	json_decref(r);
	/* absent limits stay as they were */
	r = rpc("bdev_set_qos_limit", json_pack("{s:s,s:i}", "name", "Q1", "r_mbytes_per_sec", 5), &code, msg);
	assert_int_equal(code, 0);
	json_decref(r);
	r = rpc("bdev_get_bdevs", json_pack("{s:s}", "name", "Q1"), &code, msg);
	lim = json_object_get(json_array_get(r, 0), "assigned_rate_limits");
	assert_int_equal(json_integer_value(json_object_get(lim, "rw_ios_per_sec")), 2000);
	assert_int_equal(json_integer_value(json_object_get(lim, "w_mbytes_per_sec")), 10);
	assert_int_equal(json_integer_value(json_object_get(lim, "r_mbytes_per_sec")), 5);
	assert_int_equal(json_integer_value(json_object_get(lim, "rw_mbytes_per_sec")), 0);
	json_decref(r);
	assert_int_equal(delete_bdev(0, "Q1"), 0);
}
#endif /* DBK_TEST_RPC */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct qos_set {
	const char *name;
	uint64_t iops;
	int rc;
};

static void qos_set_msg(void *ctx)
{
	struct qos_set *q = ctx;
	uint64_t l[DBK_BDEV_QOS_NUM_LIMITS] = {q->iops, 0, 0, 0};

	q->rc = dbk_bdev_set_qos_limits(dbk_bdev_get_by_name(q->name), l);
}

static int set_qos(const char *name, uint64_t iops)
{
	struct qos_set q = {name, iops, -1};

	run_on(0, qos_set_msg, &q);
	return q.rc;
}

/* QoS: 1000 IO/s lets about one I/O per 1 ms slice through; the limit shows in JSON and config. */
static void test_qos(void **state)
{
	enum { N = 40 };
	uint8_t *buf = xalloc(512);
	struct iovec iov = {buf, 512};
	struct io_req *qs = calloc(N, sizeof(*qs));
	struct opened *o;
	struct cfg c;
	json_t *r, *lim, *e;
	int done_early = 0;
	uint64_t t0, elapsed;
	size_t i;
	bool seen = false;

	(void)state;
	assert_int_equal(create_ram(0, "Q0", 64, 512, NULL, NULL), 0);
	assert_int_equal(set_qos("Q0", 1500), -EINVAL);
	assert_int_equal(set_qos("Q0", 1000), 0);
	r = dbk_bdev_info_json(lookup("Q0"));
	lim = json_object_get(r, "assigned_rate_limits");
	assert_int_equal(json_integer_value(json_object_get(lim, "rw_ios_per_sec")), 1000);
	assert_int_equal(json_integer_value(json_object_get(lim, "w_mbytes_per_sec")), 0);
	json_decref(r);
	run_on(0, cfg_msg, &c);
	json_array_foreach(c.arr, i, e) {
		if (strcmp(json_string_value(json_object_get(e, "method")), "bdev_set_qos_limit") == 0) {
			seen = true;
			assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "params"),
									    "rw_ios_per_sec")), 1000);
		}
	}
	assert_true(seen);
	json_decref(c.arr);

	o = open_bdev("Q0");
	get_channel(o, 1);
	t0 = now_ns();
	for (int k = 0; k < N; k++)
		assert_int_equal(io_start(&qs[k], o, 1, DBK_BDEV_IO_TYPE_READ, &iov, 1, k, 1), 0);
	for (int k = 0; k < N; k++)
		done_early += atomic_load(&qs[k].completed);
	assert_true(done_early < N);
	for (int k = 0; k < N; k++) {
		io_wait(&qs[k]);
		assert_true(qs[k].success);
	}
	elapsed = now_ns() - t0;
	/* a throttle proves itself by a lower bound: N I/Os need at least N-2 slices */
	assert_true(elapsed >= (uint64_t)(N - 2) * 1000000ull);

	/* 0 lifts the limit */
	assert_int_equal(set_qos("Q0", 0), 0);
	for (int k = 0; k < N; k++)
		assert_int_equal(io_start(&qs[k], o, 1, DBK_BDEV_IO_TYPE_READ, &iov, 1, k, 1), 0);
	for (int k = 0; k < N; k++) {
		assert_true(atomic_load(&qs[k].completed)); /* malloc completes inline when not throttled */
		io_wait(&qs[k]);
	}
	close_bdev(o);
	assert_int_equal(delete_bdev(0, "Q0"), 0);
	free(qs);
	free(buf);
}

/*
 * fini with bdevs and open descriptors: REMOVE closes one at once; another
 * bdev is already being deleted and waits for a descriptor closed later --
 * fini waits for it too. Then init again works.
 */
static void test_fini_reinit(void **state)
{
	struct opened *o, *late;
	struct mdelete m = {.name = "F2", .kind = 0};
	int rc = -1;

	(void)state;
	assert_int_equal(create_ram(0, "F0", 16, 512, NULL, NULL), 0);
	assert_int_equal(create_ram(1, "F1", 16, 512, NULL, NULL), 0);
	assert_int_equal(create_ram(0, "F2", 16, 512, NULL, NULL), 0);
	o = open_bdev("F0");
	o->close_on_remove = true;
	late = open_bdev("F2");
	sem_init(&m.done, 0, 0);
	run_on(0, mdelete_msg, &m);
	sem_init(&g_fini_sem, 0, 0);
	dbk_thread_send_msg(dbk_reactor_thread(0), fini_msg, NULL);
	usleep(50000);
	assert_int_equal(sem_trywait(&g_fini_sem), -1); /* F2 still has a descriptor */
	assert_int_equal(atomic_load(&late->removes), 1);
	assert_int_equal(atomic_load(&o->removes), 1);
	assert_null(o->desc);
	close_bdev(late);
	wait_sem(&m.done);
	sem_destroy(&m.done);
	assert_int_equal(m.rc, 0);
	wait_sem(&g_fini_sem);
	assert_null(dbk_bdev_first());
	free(o);
	run_on(0, init_bdev_layer, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(create_ram(0, "F0", 16, 512, NULL, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_lookup),
		cmocka_unit_test(test_open_claim_remove),
		cmocka_unit_test(test_malloc_rw_iovecs),
		cmocka_unit_test(test_null),
		cmocka_unit_test(test_read_lend),
		cmocka_unit_test(test_write_lend),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_split_pool_exhaustion),
		cmocka_unit_test(test_write_zeroes_emulation),
		cmocka_unit_test(test_invalid_io),
		cmocka_unit_test(test_enomem_and_nomem),
		cmocka_unit_test(test_reset_waits),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_lat_bucket),
		cmocka_unit_test(test_latency_histogram),
		cmocka_unit_test(test_completion_chain),
		cmocka_unit_test(test_uring),
		cmocka_unit_test(test_uring_errors),
		cmocka_unit_test(test_uring_short_read),
		cmocka_unit_test(test_json),
#ifdef DBK_TEST_RPC
		cmocka_unit_test(test_rpc),
		cmocka_unit_test(test_rpc_qos),
#endif
		cmocka_unit_test(test_qos),
		cmocka_unit_test(test_fini_reinit),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
