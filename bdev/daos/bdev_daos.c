/*
 * The DAOS bdev module: a file in a DFS (POSIX) container as a block device,
 * over the DFS engine interface (bdev/daos/dfs_engine.h), so the same code
 * drives the local engine and real DAOS.
 *
 * - One io_device per bdev; one channel per reactor thread, each with its own
 *   connection (pool, container, mount, file, event queue) and its own period-0
 *   poller draining the event queue.
 * - Connection setup and teardown run on the helper thread (dbk_run_blocking),
 *   never on a reactor: a new channel is "connecting" and queues I/O until the
 *   connection is up (or fails it if the connection fails); a destroyed
 *   channel hands its handles to the helper thread for release. The bdev's
 *   destruct completes only when every connection is released.
 * - bdev_daos_create opens a trial connection first, so a wrong pool,
 *   container or permission fails the call and nothing is registered. The
 *   bdev identity (UUID, block size, block count) lives in the file's xattrs.
 *   With an engine that asks for it (keep_open: the local engine, whose open
 *   files are locked "in use"), the trial connection stays open, without its
 *   event queue, until the bdev is destructed.
 */
/* Error messages are truncated to their buffers on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include "bdev/daos/bdev_daos.h"
#include "bdev/bdev_module.h"
#include "bdev/daos/dfs_engine.h"
#include "thread/thread.h"
#include "util/log.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#define XATTR_UUID "user.daosblk.uuid"
#define XATTR_BLOCK_SIZE "user.daosblk.block_size"
#define XATTR_NUM_BLOCKS "user.daosblk.num_blocks"
#define EQ_DEPTH 256
#define POLL_BATCH 64
/* A channel whose connect failed tries again on the first I/O after this long (fails I/O meanwhile). */
#define RECONNECT_NS (1000ull * 1000 * 1000)

/* ------------------------------------------------------------ module state */

static const struct dbk_dfs_engine *g_engine = &dbk_dfs_engine_local;
static char g_root[PATH_MAX] = DBK_DFS_DEFAULT_ROOT;
/* Helper-thread jobs of this module still running (trial connections, resizes, teardowns). */
static atomic_int g_helper_jobs;

struct daos_disk;

/* The handles of one connection (a channel's, or a trial/resize one). */
struct conn {
	struct daos_disk *disk;
	const struct dbk_dfs_engine *eng;
	char root[PATH_MAX];
	char pool_name[DBK_DFS_LABEL_MAX + 1];
	char cont_name[DBK_DFS_LABEL_MAX + 1];
	char path[PATH_MAX];
	char oclass[32];
	bool create;
	struct dbk_dfs_conn h;
	struct daos_channel *ch;	/* the channel waiting for it; NULL once that channel is gone */
	char err[512];
};

struct daos_disk {
	struct dbk_bdev bdev;
	const struct dbk_dfs_engine *eng;
	char root[PATH_MAX];
	char *pool, *cont, *oclass, *path;
	bool path_default;
	atomic_int refs;		/* registration + live connections */
	atomic_int live_channels;	/* channels whose connection is up */
	atomic_uint inject_read, inject_write;
	atomic_bool unregistering;
	bool resizing;		/* a resize is running (main reactor only) */
	struct dbk_thread *main_thread;
	struct conn *holder;	/* eng->keep_open: the trial connection, open while the bdev exists (holds a ref) */
};

enum ch_state { CH_CONNECTING, CH_READY, CH_FAILED };

struct daos_task;
TAILQ_HEAD(task_list, daos_task);

struct daos_channel {
	struct daos_disk *disk;
	struct conn *conn;
	enum ch_state state;
	int fail_rc;
	uint64_t failed_at_ns;	/* when the last connect failed: a new one is tried RECONNECT_NS later */
	struct dbk_poller *poller;
	uint32_t inflight;	/* accepted, not yet completed (queued while connecting included) */
	struct task_list pending;
	struct task_list resets;
	uint64_t reads, writes, flushes, punches, errors;
};

struct daos_task {
	struct dbk_bdev_io *io;
	struct daos_channel *ch;
	TAILQ_ENTRY(daos_task) link;
	bool inject;
	int rc;
	_Alignas(16) unsigned char op_space[];	/* struct dbk_dfs_op + engine private */
};

static struct dbk_dfs_op *task_op(struct daos_task *t)
{
	return (struct dbk_dfs_op *)t->op_space;
}

static size_t op_bytes(void)
{
	size_t m = dbk_dfs_engine_local.op_priv_size;
#ifdef DBK_HAVE_DAOS_ENGINE
	if (dbk_dfs_engine_daos.op_priv_size > m)
		m = dbk_dfs_engine_daos.op_priv_size;
#endif
	return sizeof(struct dbk_dfs_op) + ((m + 15) & ~(size_t)15);
}

static size_t daos_get_ctx_size(void)
{
	return sizeof(struct daos_task) + op_bytes();
}

static int daos_module_init(void);
static void daos_module_fini(void);

struct dbk_bdev_module dbk_bdev_daos_module = {
	.name = "daos",
	.module_init = daos_module_init,
	.module_fini = daos_module_fini,
	.get_ctx_size = daos_get_ctx_size,
};

int dbk_bdev_daos_set_engine(const char *engine, const char *root, char *err, size_t errlen)
{
	const struct dbk_dfs_engine *e = dbk_dfs_engine_get(engine);

	if (e == NULL)
		return dbk_dfs_fail(err, errlen, -EINVAL, "unknown DFS engine '%s' (choose local%s)", engine ? engine : "",
#ifdef DBK_HAVE_DAOS_ENGINE
				    " or daos"
#else
				    "; 'daos' needs a build with DAOS: cmake -DDAOS_PREFIX=..."
#endif
		);
	if (e->probe && e->probe(err, errlen) != 0)
		return -ELIBACC;
	if (root && root[0]) {
		if (root[0] != '/')
			return dbk_dfs_fail(err, errlen, -EINVAL, "--dfs-root '%s' must be an absolute path", root);
		if (strlen(root) >= sizeof(g_root) - 256)
			return dbk_dfs_fail(err, errlen, -EINVAL, "--dfs-root path too long");
		snprintf(g_root, sizeof(g_root), "%s", root);
	}
	g_engine = e;
	return 0;
}

const char *dbk_bdev_daos_engine_name(void)
{
	return g_engine->name;
}

const char *dbk_bdev_daos_engine_root(void)
{
	return g_root;
}

static int daos_module_init(void)
{
	return 0;
}

static void daos_module_fini(void)
{
	/* Every bdev is gone (destruct waited for its connections); wait for stray helper jobs. */
	for (int i = 0; i < 10000 && atomic_load(&g_helper_jobs) > 0; i++)
		usleep(1000);
	if (atomic_load(&g_helper_jobs) > 0)
		DBK_WARNLOG("DAOS bdev module finishing with %d helper job(s) still running",
			    atomic_load(&g_helper_jobs));
}

/* ------------------------------------------------------------ connections */

static struct conn *conn_new(struct daos_disk *d, bool create)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->disk = d;
	c->eng = d->eng;
	snprintf(c->root, sizeof(c->root), "%s", d->root);
	snprintf(c->pool_name, sizeof(c->pool_name), "%s", d->pool);
	snprintf(c->cont_name, sizeof(c->cont_name), "%s", d->cont);
	snprintf(c->path, sizeof(c->path), "%s", d->path);
	snprintf(c->oclass, sizeof(c->oclass), "%s", d->oclass);
	c->create = create;
	return c;
}

/* Release everything c holds, in reverse order (helper thread). */
static void conn_close(struct conn *c)
{
	dbk_dfs_conn_close(&c->h);
}

/* Open pool, container, mount, file and event queue (helper thread). On failure nothing stays open. */
static int conn_open(struct conn *c)
{
	struct dbk_dfs_file_opts fo = {.oclass = c->oclass, .chunk_size = 0, .create = c->create};

	return dbk_dfs_conn_open(&c->h, c->eng, c->root, c->pool_name, c->cont_name, c->path, &fo, EQ_DEPTH, c->err,
				 sizeof(c->err));
}

/* ------------------------------------------------------------ disk lifetime */

static void disk_free(struct daos_disk *d)
{
	free(d->pool);
	free(d->cont);
	free(d->oclass);
	free(d->path);
	free(d->bdev.name);
	free(d);
}

static void destruct_finish(void *ctx)
{
	struct daos_disk *d = ctx;

	dbk_bdev_destruct_done(&d->bdev, 0);
	disk_free(d);
}

static void disk_put(struct daos_disk *d)
{
	if (atomic_fetch_sub(&d->refs, 1) == 1) {
		if (dbk_get_thread() == d->main_thread || dbk_thread_send_msg(d->main_thread, destruct_finish, d) != 0)
			destruct_finish(d);
	}
}

static int conn_close_job(void *ctx)
{
	conn_close(ctx);
	atomic_fetch_sub(&g_helper_jobs, 1);
	return 0;
}

static void conn_closed(void *ctx, int rc)
{
	struct conn *c = ctx;
	struct daos_disk *d = c->disk;

	(void)rc;
	free(c);
	disk_put(d);
}

/* Hand c's handles to the helper thread; the disk reference goes when they are released. */
static void conn_release_async(struct conn *c)
{
	atomic_fetch_add(&g_helper_jobs, 1);
	if (dbk_run_blocking(conn_close_job, conn_closed, c) != 0) {
		DBK_WARNLOG("%s: cannot hand the connection to the helper thread; closing it here", c->path);
		conn_close_job(c);
		conn_closed(c, 0);
	}
}

/* -------------------------------------------------------------------- I/O */

static void task_start(struct daos_task *t);
static int ch_connect_start(struct daos_channel *ch);

static void complete_resets(struct daos_channel *ch)
{
	while (ch->inflight == 0 && !TAILQ_EMPTY(&ch->resets)) {
		struct daos_task *r = TAILQ_FIRST(&ch->resets);
		TAILQ_REMOVE(&ch->resets, r, link);
		dbk_bdev_io_complete(r->io, DBK_BDEV_IO_STATUS_SUCCESS);
	}
}

static void task_done(struct daos_task *t, int rc)
{
	struct daos_channel *ch = t->ch;
	struct dbk_bdev_io *io = t->io;

	ch->inflight--;
	if (t->inject && rc == 0)
		rc = -EIO;
	if (rc == 0) {
		dbk_bdev_io_complete(io, DBK_BDEV_IO_STATUS_SUCCESS);
	} else if (rc == -EAGAIN || rc == -ENOMEM) {
		dbk_bdev_io_complete(io, DBK_BDEV_IO_STATUS_NOMEM);
	} else {
		ch->errors++;
		dbk_bdev_io_complete_errno(io, rc);
	}
	if (ch->inflight == 0)
		complete_resets(ch);
}

static void op_done(void *arg, int rc)
{
	task_done(arg, rc);
}

static int punch_job(void *ctx)
{
	struct daos_task *t = ctx;
	struct dbk_bdev_io *io = t->io;
	struct daos_channel *ch = t->ch;
	uint32_t bs = io->bdev->blocklen;

	return ch->disk->eng->punch(ch->conn->h.file, io->u.offset_blocks * bs, io->u.num_blocks * bs);
}

static void punch_cpl(void *ctx, int rc)
{
	task_done(ctx, rc);
}

static bool take_injection(atomic_uint *counter)
{
	unsigned v = atomic_load(counter);

	while (v > 0)
		if (atomic_compare_exchange_weak(counter, &v, v - 1))
			return true;
	return false;
}

/* Hand the I/O to the engine on a connected channel. */
static void task_start(struct daos_task *t)
{
	struct daos_channel *ch = t->ch;
	struct daos_disk *d = ch->disk;
	const struct dbk_dfs_engine *e = d->eng;
	struct dbk_bdev_io *io = t->io;
	struct dbk_dfs_op *op = task_op(t);
	uint64_t off = io->u.offset_blocks * d->bdev.blocklen;
	int rc;

	op->cb = op_done;
	op->cb_arg = t;
	switch (io->type) {
	case DBK_BDEV_IO_TYPE_READ:
		t->inject = take_injection(&d->inject_read);
		ch->reads++;
		rc = e->readv(ch->conn->h.eq, ch->conn->h.file, io->u.iovs, io->u.iovcnt, off, op);
		break;
	case DBK_BDEV_IO_TYPE_WRITE:
		t->inject = take_injection(&d->inject_write);
		ch->writes++;
		rc = e->writev(ch->conn->h.eq, ch->conn->h.file, io->u.iovs, io->u.iovcnt, off, op);
		break;
	case DBK_BDEV_IO_TYPE_FLUSH:
		ch->flushes++;
		if (!e->volatile_cache || e->flush == NULL) {
			/* completed writes are durable already */
			task_done(t, 0);
			return;
		}
		rc = e->flush(ch->conn->h.eq, ch->conn->h.file, op);
		break;
	case DBK_BDEV_IO_TYPE_UNMAP:
	case DBK_BDEV_IO_TYPE_WRITE_ZEROES:
		ch->punches++;
		if (e->punch_async)
			rc = e->punch_async(ch->conn->h.eq, ch->conn->h.file, off, io->u.num_blocks * d->bdev.blocklen, op);
		else
			rc = dbk_run_blocking(punch_job, punch_cpl, t);
		break;
	default:
		rc = -ENOTSUP;
		break;
	}
	if (rc != 0)
		task_done(t, rc);
}

static void daos_submit(struct dbk_io_channel *ich, struct dbk_bdev_io *io)
{
	struct daos_channel *ch = dbk_io_channel_get_ctx(ich);
	struct daos_task *t = io->driver_ctx;

	t->io = io;
	t->ch = ch;
	t->inject = false;
	t->rc = 0;
	if (io->type == DBK_BDEV_IO_TYPE_RESET) {
		TAILQ_INSERT_TAIL(&ch->resets, t, link);
		complete_resets(ch);
		return;
	}
	ch->inflight++;
	switch (ch->state) {
	case CH_CONNECTING:
		TAILQ_INSERT_TAIL(&ch->pending, t, link);
		break;
	case CH_FAILED:
		/* try to connect again now and then (the pool may be back); fail the I/O in between */
		if (dbk_get_ns() - ch->failed_at_ns >= RECONNECT_NS && ch_connect_start(ch) == 0) {
			TAILQ_INSERT_TAIL(&ch->pending, t, link);
			break;
		}
		task_done(t, ch->fail_rc);
		break;
	case CH_READY:
		task_start(t);
		break;
	}
}

static int daos_poll(void *ctx)
{
	struct daos_channel *ch = ctx;
	const struct dbk_dfs_engine *e = ch->disk->eng;
	int n;

	if (ch->state != CH_READY)
		return DBK_POLLER_IDLE;
	n = e->poll(ch->conn->h.eq, POLL_BATCH);
	if (n < 0) {
		DBK_ERRLOG("bdev %s: event queue poll: %s", ch->disk->bdev.name, dbk_dfs_strerror(n));
		n = 0;
	}
	return (n > 0 || e->inflight(ch->conn->h.eq) > 0) ? DBK_POLLER_BUSY : DBK_POLLER_IDLE;
}

/* --------------------------------------------------------------- channels */

static int ch_connect_job(void *ctx)
{
	int rc = conn_open(ctx);

	atomic_fetch_sub(&g_helper_jobs, 1);
	return rc;
}

static void ch_connected(void *ctx, int rc)
{
	struct conn *c = ctx;
	struct daos_channel *ch = c->ch;
	struct daos_disk *d = c->disk;
	struct task_list q;

	if (ch == NULL) {
		/* the channel went away while connecting */
		if (rc == 0) {
			conn_release_async(c);
		} else {
			free(c);
			disk_put(d);
		}
		return;
	}
	TAILQ_INIT(&q);
	TAILQ_CONCAT(&q, &ch->pending, link);
	if (rc != 0) {
		DBK_ERRLOG("bdev %s: channel on %s cannot connect: %s", d->bdev.name,
			   dbk_thread_get_name(dbk_get_thread()), c->err);
		ch->state = CH_FAILED;
		ch->fail_rc = rc;
		ch->failed_at_ns = dbk_get_ns();
		ch->conn = NULL;
		free(c);
		disk_put(d);
		while (!TAILQ_EMPTY(&q)) {
			struct daos_task *t = TAILQ_FIRST(&q);
			TAILQ_REMOVE(&q, t, link);
			task_done(t, rc);
		}
		return;
	}
	ch->state = CH_READY;
	atomic_fetch_add(&d->live_channels, 1);
	while (!TAILQ_EMPTY(&q)) {
		struct daos_task *t = TAILQ_FIRST(&q);
		TAILQ_REMOVE(&q, t, link);
		task_start(t);
	}
}

/* Start (re)connecting ch on the helper thread; ch->state becomes CH_CONNECTING. 0 or -errno. */
static int ch_connect_start(struct daos_channel *ch)
{
	struct daos_disk *d = ch->disk;
	struct conn *c = conn_new(d, false);
	int rc;

	if (c == NULL)
		return -ENOMEM;
	c->ch = ch;
	atomic_fetch_add(&d->refs, 1);
	atomic_fetch_add(&g_helper_jobs, 1);
	rc = dbk_run_blocking(ch_connect_job, ch_connected, c);
	if (rc != 0) {
		atomic_fetch_sub(&g_helper_jobs, 1);
		atomic_fetch_sub(&d->refs, 1);
		free(c);
		return rc;
	}
	ch->conn = c;
	ch->state = CH_CONNECTING;
	return 0;
}

static int daos_ch_create(void *dev, void *ctx)
{
	struct daos_disk *d = dev;
	struct daos_channel *ch = ctx;
	int rc;

	ch->disk = d;
	TAILQ_INIT(&ch->pending);
	TAILQ_INIT(&ch->resets);
	ch->poller = dbk_poller_register(daos_poll, ch, 0, "bdev_daos");
	if (ch->poller == NULL)
		return -ENOMEM;
	rc = ch_connect_start(ch);
	if (rc != 0) {
		dbk_poller_unregister(&ch->poller);
		return rc;
	}
	return 0;
}

static void daos_ch_destroy(void *dev, void *ctx)
{
	struct daos_disk *d = dev;
	struct daos_channel *ch = ctx;

	dbk_poller_unregister(&ch->poller);
	if (ch->inflight)
		DBK_WARNLOG("bdev %s: channel destroyed with %u I/O in flight", d->bdev.name, ch->inflight);
	switch (ch->state) {
	case CH_CONNECTING:
		ch->conn->ch = NULL; /* ch_connected releases it */
		break;
	case CH_READY:
		atomic_fetch_sub(&d->live_channels, 1);
		conn_release_async(ch->conn);
		break;
	case CH_FAILED:
		break;
	}
	ch->conn = NULL;
}

/* ------------------------------------------------------------ bdev fn table */

static bool daos_io_type_supported(void *ctx, enum dbk_bdev_io_type type)
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

static struct dbk_io_channel *daos_get_io_channel(void *ctx)
{
	return dbk_get_io_channel(ctx);
}

static void dev_gone(void *dev)
{
	struct daos_disk *d = dev;
	struct conn *h = d->holder;

	d->holder = NULL;
	if (h)
		conn_release_async(h); /* its reference goes once the file is closed */
	disk_put(d); /* the registration reference */
}

static int daos_destruct(void *ctx)
{
	struct daos_disk *d = ctx;

	atomic_store(&d->unregistering, true);
	d->main_thread = dbk_get_thread();
	dbk_io_device_unregister(d, dev_gone);
	return 1;
}

static void daos_dump_info(void *ctx, json_t *ds)
{
	struct daos_disk *d = ctx;
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i}", "pool", d->pool, "cont", d->cont, "oclass", d->oclass,
			      "path", d->path, "engine", d->eng->name, "channels", atomic_load(&d->live_channels));

	if (strcmp(d->eng->name, "local") == 0)
		json_object_set_new(o, "root", json_string(d->root));
	json_object_set_new(ds, "daos", o);
}

static void daos_write_config(struct dbk_bdev *bdev, json_t *arr)
{
	struct daos_disk *d = bdev->ctxt;
	char u[37];
	json_t *p;

	uuid_unparse_lower(bdev->uuid, u);
	p = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s}", "name", dbk_bdev_get_name(bdev), "pool", d->pool, "cont",
		      d->cont, "block_size", (json_int_t)bdev->blocklen, "num_blocks",
		      (json_int_t)dbk_bdev_get_num_blocks(bdev), "uuid", u, "oclass", d->oclass);
	if (!d->path_default)
		json_object_set_new(p, "path", json_string(d->path));
	json_array_append_new(arr, json_pack("{s:s,s:o}", "method", "bdev_daos_create", "params", p));
}

static void daos_dump_channel(struct dbk_io_channel *ich, json_t *obj)
{
	struct daos_channel *ch = dbk_io_channel_get_ctx(ich);
	static const char *const states[] = {"connecting", "connected", "failed"};
	json_t *o = json_pack("{s:s,s:i,s:I,s:I,s:I,s:I,s:I}", "state", states[ch->state], "inflight",
			      (int)ch->inflight, "reads", (json_int_t)ch->reads, "writes", (json_int_t)ch->writes,
			      "flushes", (json_int_t)ch->flushes, "punches", (json_int_t)ch->punches, "errors",
			      (json_int_t)ch->errors);

	json_object_set_new(o, "connection", json_boolean(ch->state == CH_READY));
	json_object_set_new(obj, "daos", o);
}

static const struct dbk_bdev_fn_table daos_fn_table = {
	.submit_request = daos_submit,
	.io_type_supported = daos_io_type_supported,
	.get_io_channel = daos_get_io_channel,
	.destruct = daos_destruct,
	.dump_info_json = daos_dump_info,
	.write_config_json = daos_write_config,
	.dump_channel_json = daos_dump_channel,
};

/* ------------------------------------------------------------------ create */

struct create_ctx {
	struct daos_disk *d;
	struct conn *c;
	uint32_t block_size;
	uint64_t num_blocks;
	uuid_t want_uuid;	/* all zero: none requested */
	uuid_t uuid;		/* result */
	dbk_bdev_daos_create_cb cb;
	void *cb_arg;
	char err[768];
	LIST_ENTRY(create_ctx) link;
};

/* Names of creates in progress (main reactor only), so two creates of one name cannot race. */
static LIST_HEAD(, create_ctx) g_creating = LIST_HEAD_INITIALIZER(g_creating);

static int get_u64_xattr(const struct dbk_dfs_engine *e, struct dbk_dfs_file *f, const char *name, uint64_t *v)
{
	char buf[32];
	size_t len = sizeof(buf) - 1;
	char *end;
	int rc = e->getxattr(f, name, buf, &len);

	if (rc)
		return rc;
	buf[len] = '\0';
	errno = 0;
	*v = strtoull(buf, &end, 10);
	if (errno || end == buf)
		return -EINVAL;
	return 0;
}

static int set_u64_xattr(const struct dbk_dfs_engine *e, struct dbk_dfs_file *f, const char *name, uint64_t v)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%" PRIu64, v);

	return e->setxattr(f, name, buf, (size_t)n);
}

static const char *where(const struct conn *c, char *buf, size_t len)
{
	snprintf(buf, len, "file '%s' in container '%s' of pool '%s'", c->path, c->cont_name, c->pool_name);
	return buf;
}

/* Check or store the identity, and size the file (helper thread, connection open). */
static int identity(struct create_ctx *x)
{
	struct conn *c = x->c;
	const struct dbk_dfs_engine *e = c->eng;
	char ubuf[40], w[PATH_MAX + 2 * DBK_DFS_LABEL_MAX + 64];
	size_t len = sizeof(ubuf) - 1;
	uuid_t stored;
	bool have_uuid = false;
	uint64_t v, size, want = x->num_blocks * x->block_size;
	int rc;

	rc = e->getxattr(c->h.file, XATTR_UUID, ubuf, &len);
	if (rc == 0) {
		ubuf[len] = '\0';
		if (uuid_parse(ubuf, stored) != 0) {
			snprintf(x->err, sizeof(x->err), "%s: stored bdev uuid '%s' is invalid", where(c, w, sizeof(w)),
				 ubuf);
			return -EINVAL;
		}
		have_uuid = true;
	} else if (rc != -ENODATA) {
		snprintf(x->err, sizeof(x->err), "%s: cannot read its bdev identity: %s", where(c, w, sizeof(w)),
			 dbk_dfs_strerror(rc));
		return rc;
	}
	if (have_uuid && !uuid_is_null(x->want_uuid) && uuid_compare(stored, x->want_uuid) != 0) {
		char a[37], b[37];
		uuid_unparse_lower(stored, a);
		uuid_unparse_lower(x->want_uuid, b);
		snprintf(x->err, sizeof(x->err),
			 "%s holds bdev uuid %s, not the requested %s (omit uuid to reuse the stored one)",
			 where(c, w, sizeof(w)), a, b);
		return -EEXIST;
	}
	rc = get_u64_xattr(e, c->h.file, XATTR_BLOCK_SIZE, &v);
	if (rc == 0 && v != x->block_size) {
		snprintf(x->err, sizeof(x->err), "%s was created with block_size %" PRIu64 ", not %u", where(c, w, sizeof(w)),
			 v, x->block_size);
		return -EINVAL;
	}
	if (rc != 0 && rc != -ENODATA) {
		snprintf(x->err, sizeof(x->err), "%s: cannot read its block size: %s", where(c, w, sizeof(w)),
			 dbk_dfs_strerror(rc));
		return rc;
	}
	if (get_u64_xattr(e, c->h.file, XATTR_NUM_BLOCKS, &v) == 0 && v > x->num_blocks)
		DBK_WARNLOG("%s held %" PRIu64 " blocks; the bdev now shows only %" PRIu64
			    " (the data beyond stays in the file)",
			    where(c, w, sizeof(w)), v, x->num_blocks);
	if (have_uuid)
		uuid_copy(x->uuid, stored);
	else if (!uuid_is_null(x->want_uuid))
		uuid_copy(x->uuid, x->want_uuid);
	else
		uuid_generate(x->uuid);
	if (!have_uuid) {
		char u[37];
		uuid_unparse_lower(x->uuid, u);
		rc = e->setxattr(c->h.file, XATTR_UUID, u, 36);
		if (rc == 0)
			rc = set_u64_xattr(e, c->h.file, XATTR_BLOCK_SIZE, x->block_size);
		if (rc) {
			snprintf(x->err, sizeof(x->err), "%s: cannot store the bdev identity: %s", where(c, w, sizeof(w)),
				 dbk_dfs_strerror(rc));
			return rc;
		}
	}
	rc = e->get_size(c->h.file, &size);
	if (rc == 0 && size < want)
		rc = e->set_size(c->h.file, want);
	if (rc == 0)
		rc = set_u64_xattr(e, c->h.file, XATTR_NUM_BLOCKS, x->num_blocks);
	if (rc) {
		snprintf(x->err, sizeof(x->err), "%s: cannot size it to %" PRIu64 " bytes: %s", where(c, w, sizeof(w)),
			 want, dbk_dfs_strerror(rc));
		return rc;
	}
	return 0;
}

static int trial_job(void *ctx)
{
	struct create_ctx *x = ctx;
	struct conn *c = x->c;
	int rc = conn_open(c);

	if (rc)
		snprintf(x->err, sizeof(x->err), "%s", c->err);
	else
		rc = identity(x);
	if (rc == 0 && c->eng->keep_open) {
		/* kept as the bdev's holder: the file stays open, the event queue is not needed */
		c->eng->eq_destroy(c->h.eq);
		c->h.eq = NULL;
	} else {
		conn_close(c);
	}
	atomic_fetch_sub(&g_helper_jobs, 1);
	return rc;
}

static int holder_discard_job(void *ctx)
{
	conn_close(ctx);
	atomic_fetch_sub(&g_helper_jobs, 1);
	return 0;
}

static void holder_discarded(void *ctx, int rc)
{
	(void)rc;
	free(ctx);
}

/* Close a kept trial connection of a bdev that is not registered after all (no disk reference). */
static void holder_discard(struct conn *c)
{
	atomic_fetch_add(&g_helper_jobs, 1);
	if (dbk_run_blocking(holder_discard_job, holder_discarded, c) != 0) {
		holder_discard_job(c);
		free(c);
	}
}

static void unregistered_free(void *dev)
{
	disk_free(dev);
}

static void trial_done(void *ctx, int rc)
{
	struct create_ctx *x = ctx;
	struct daos_disk *d = x->d;

	LIST_REMOVE(x, link);
	if (rc == 0 && d->eng->keep_open)
		d->holder = x->c;
	else
		free(x->c);
	x->c = NULL;
	if (rc == 0 && dbk_bdev_get_by_name(d->bdev.name)) {
		rc = -EEXIST;
		snprintf(x->err, sizeof(x->err), "bdev '%s' already exists", d->bdev.name);
	}
	if (rc == 0) {
		char u[37];
		uuid_unparse_lower(x->uuid, u);
		if (dbk_bdev_get_by_name(u)) {
			rc = -EEXIST;
			snprintf(x->err, sizeof(x->err), "uuid %s (stored with the file) is already used by bdev '%s'", u,
				 dbk_bdev_get_name(dbk_bdev_get_by_name(u)));
		}
	}
	if (rc != 0) {
		x->cb(x->cb_arg, NULL, rc, x->err);
		if (d->holder)
			holder_discard(d->holder);
		disk_free(d);
		free(x);
		return;
	}
	uuid_copy(d->bdev.uuid, x->uuid);
	atomic_store(&d->refs, d->holder ? 2 : 1);
	dbk_io_device_register(d, daos_ch_create, daos_ch_destroy,
			       (uint32_t)sizeof(struct daos_channel), d->bdev.name);
	rc = dbk_bdev_register(&d->bdev);
	if (rc != 0) {
		snprintf(x->err, sizeof(x->err), "cannot register bdev '%s': %s", d->bdev.name,
			 rc == -EEXIST ? "the name or uuid is in use" : strerror(-rc));
		x->cb(x->cb_arg, NULL, rc, x->err);
		if (d->holder)
			holder_discard(d->holder);
		d->holder = NULL;
		dbk_io_device_unregister(d, unregistered_free);
		free(x);
		return;
	}
	DBK_NOTICELOG("bdev %s: %s file %s in pool '%s' container '%s' (%" PRIu64 " x %u bytes, oclass %s)",
		      d->bdev.name, d->eng->name, d->path, d->pool, d->cont, d->bdev.blockcnt, d->bdev.blocklen,
		      d->oclass);
	x->cb(x->cb_arg, &d->bdev, 0, NULL);
	free(x);
}

static bool valid_file_name(const char *s)
{
	return s[0] != '\0' && strchr(s, '/') == NULL && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 &&
	       strlen(s) <= 255;
}

int dbk_bdev_daos_create(const struct dbk_bdev_daos_opts *o, dbk_bdev_daos_create_cb cb, void *ctx, char *err,
			 size_t errlen)
{
	const char *oclass = o->oclass && o->oclass[0] ? o->oclass : "SX";
	struct create_ctx *x, *it;
	struct daos_disk *d;
	int rc;

	if (o->name == NULL || o->name[0] == '\0')
		return dbk_dfs_fail(err, errlen, -EINVAL, "parameter 'name' must not be empty");
	if (o->pool == NULL || o->pool[0] == '\0')
		return dbk_dfs_fail(err, errlen, -EINVAL, "parameter 'pool' must not be empty");
	if (strlen(o->pool) > DBK_DFS_LABEL_MAX)
		return dbk_dfs_fail(err, errlen, -EINVAL, "parameter 'pool': label longer than %d characters",
				    DBK_DFS_LABEL_MAX);
	if (o->cont == NULL || o->cont[0] == '\0')
		return dbk_dfs_fail(err, errlen, -EINVAL, "parameter 'cont' must not be empty");
	if (strlen(o->cont) > DBK_DFS_LABEL_MAX)
		return dbk_dfs_fail(err, errlen, -EINVAL, "parameter 'cont': label longer than %d characters",
				    DBK_DFS_LABEL_MAX);
	if (o->block_size == 0 || o->block_size % 512 != 0)
		return dbk_dfs_fail(err, errlen, -EINVAL, "parameter 'block_size': %u must be a multiple of 512 (e.g. 512 or 4096)",
				    o->block_size);
	if (o->num_blocks == 0)
		return dbk_dfs_fail(err, errlen, -EINVAL, "parameter 'num_blocks' must be greater than 0");
	if (o->num_blocks > (uint64_t)INT64_MAX / o->block_size)
		return dbk_dfs_fail(err, errlen, -EINVAL, "parameters 'num_blocks' x 'block_size' overflow");
	if (!dbk_dfs_oclass_valid(oclass))
		return dbk_dfs_fail(err, errlen, -EINVAL,
				    "parameter 'oclass': unknown object class '%s' (e.g. SX, S1, S2, RP_2G1, RP_3GX, "
				    "EC_4P2G1, EC_8P2GX)",
				    oclass);
	if (o->path) {
		if (o->path[0] != '/' || !valid_file_name(o->path + 1))
			return dbk_dfs_fail(err, errlen, -EINVAL,
					    "parameter 'path': '%s' must be '/<file name>' at the container root",
					    o->path);
	} else if (!valid_file_name(o->name)) {
		return dbk_dfs_fail(err, errlen, -EINVAL,
				    "parameter 'name': '%s' cannot be a file name; give 'path' as well", o->name);
	}
	if (dbk_bdev_get_by_name(o->name))
		return dbk_dfs_fail(err, errlen, -EEXIST, "bdev '%s' already exists", o->name);
	LIST_FOREACH(it, &g_creating, link)
		if (strcmp(it->d->bdev.name, o->name) == 0)
			return dbk_dfs_fail(err, errlen, -EEXIST, "bdev '%s' is being created", o->name);
	if (!uuid_is_null(o->uuid)) {
		char u[37];
		uuid_unparse_lower(o->uuid, u);
		if (dbk_bdev_get_by_name(u))
			return dbk_dfs_fail(err, errlen, -EEXIST, "parameter 'uuid': %s is already used by bdev '%s'",
					    u, dbk_bdev_get_name(dbk_bdev_get_by_name(u)));
	}

	d = calloc(1, sizeof(*d));
	x = calloc(1, sizeof(*x));
	if (d == NULL || x == NULL)
		goto nomem;
	d->eng = g_engine;
	snprintf(d->root, sizeof(d->root), "%s", g_root);
	d->bdev.name = strdup(o->name);
	d->pool = strdup(o->pool);
	d->cont = strdup(o->cont);
	d->oclass = strdup(oclass);
	d->path_default = o->path == NULL;
	if (o->path) {
		d->path = strdup(o->path);
	} else if (d->bdev.name && (d->path = malloc(strlen(o->name) + 2)) != NULL) {
		d->path[0] = '/';
		strcpy(d->path + 1, o->name);
	}
	if (!d->bdev.name || !d->pool || !d->cont || !d->oclass || !d->path)
		goto nomem;
	d->bdev.product_name = "DAOS disk";
	d->bdev.blocklen = o->block_size;
	d->bdev.blockcnt = o->num_blocks;
	d->bdev.write_cache = d->eng->volatile_cache;
	d->bdev.max_segments = DBK_DFS_MAX_IOV;
	d->bdev.ctxt = d;
	d->bdev.fn_table = &daos_fn_table;
	d->bdev.module = &dbk_bdev_daos_module;
	d->main_thread = dbk_get_thread();

	x->d = d;
	x->block_size = o->block_size;
	x->num_blocks = o->num_blocks;
	uuid_copy(x->want_uuid, o->uuid);
	x->cb = cb;
	x->cb_arg = ctx;
	x->c = conn_new(d, true);
	if (x->c == NULL)
		goto nomem;
	atomic_fetch_add(&g_helper_jobs, 1);
	rc = dbk_run_blocking(trial_job, trial_done, x);
	if (rc != 0) {
		atomic_fetch_sub(&g_helper_jobs, 1);
		free(x->c);
		free(x);
		disk_free(d);
		return dbk_dfs_fail(err, errlen, rc, "cannot start the trial connection: %s", strerror(-rc));
	}
	LIST_INSERT_HEAD(&g_creating, x, link);
	return 0;
nomem:
	if (x)
		free(x->c);
	free(x);
	if (d)
		disk_free(d);
	return dbk_dfs_fail(err, errlen, -ENOMEM, "out of memory");
}

/* ------------------------------------------------------------------ delete */

int dbk_bdev_daos_delete(const char *name, void (*cb)(void *ctx, int rc), void *ctx)
{
	return dbk_bdev_unregister_by_name(name, &dbk_bdev_daos_module, cb, ctx);
}

static struct daos_disk *find_disk(const char *name)
{
	struct dbk_bdev *b = name ? dbk_bdev_get_by_name(name) : NULL;

	if (b == NULL || b->module != &dbk_bdev_daos_module)
		return NULL;
	return b->ctxt;
}

/* ------------------------------------------------------------------ resize */

struct resize_ctx {
	struct daos_disk *d;
	struct conn *c;
	uint64_t new_blocks;
	void (*cb)(void *ctx, int rc, const char *err);
	void *cb_arg;
	char err[768];
};

static int resize_job(void *ctx)
{
	struct resize_ctx *r = ctx;
	struct conn *c = r->c;
	uint64_t size, want = r->new_blocks * r->d->bdev.blocklen;
	char w[PATH_MAX + 2 * DBK_DFS_LABEL_MAX + 64];
	int rc = conn_open(c);

	if (rc) {
		snprintf(r->err, sizeof(r->err), "%s", c->err);
		goto out;
	}
	rc = c->eng->get_size(c->h.file, &size);
	if (rc == 0 && size < want)
		rc = c->eng->set_size(c->h.file, want);
	if (rc == 0)
		rc = set_u64_xattr(c->eng, c->h.file, XATTR_NUM_BLOCKS, r->new_blocks);
	if (rc)
		snprintf(r->err, sizeof(r->err), "%s: cannot grow it to %" PRIu64 " bytes: %s", where(c, w, sizeof(w)),
			 want, dbk_dfs_strerror(rc));
	conn_close(c);
out:
	atomic_fetch_sub(&g_helper_jobs, 1);
	return rc;
}

static void resize_done(void *ctx, int rc)
{
	struct resize_ctx *r = ctx;
	struct daos_disk *d = r->d;

	if (rc == 0) {
		if (atomic_load(&d->unregistering)) {
			rc = -ENODEV;
			snprintf(r->err, sizeof(r->err), "bdev '%s' was deleted during the resize", d->bdev.name);
		} else if (r->new_blocks > dbk_bdev_get_num_blocks(&d->bdev)) {
			rc = dbk_bdev_notify_blockcnt_change(&d->bdev, r->new_blocks);
			if (rc)
				snprintf(r->err, sizeof(r->err), "bdev '%s': cannot change the block count: %s",
					 d->bdev.name, strerror(-rc));
		}
	}
	d->resizing = false;
	r->cb(r->cb_arg, rc, rc ? r->err : NULL);
	free(r->c);
	disk_put(d);
	free(r);
}

int dbk_bdev_daos_resize(const char *name, uint64_t new_size_mib, void (*cb)(void *ctx, int rc, const char *err),
			 void *ctx, char *err, size_t errlen)
{
	struct daos_disk *d = find_disk(name);
	struct resize_ctx *r;
	uint64_t cur, nb;
	int rc;

	if (d == NULL || atomic_load(&d->unregistering))
		return dbk_dfs_fail(err, errlen, -ENODEV, "DAOS bdev '%s' not found", name ? name : "");
	if (d->resizing)
		return dbk_dfs_fail(err, errlen, -EBUSY, "bdev '%s' is being resized; try again when that finishes",
				    name);
	if (new_size_mib == 0 || new_size_mib > (uint64_t)INT64_MAX / (1024 * 1024))
		return dbk_dfs_fail(err, errlen, -EINVAL, "parameter 'new_size': %" PRIu64 " MiB is out of range",
				    new_size_mib);
	cur = dbk_bdev_get_num_blocks(&d->bdev);
	nb = new_size_mib * 1024 * 1024 / d->bdev.blocklen;
	if (nb < cur)
		return dbk_dfs_fail(err, errlen, -EINVAL,
				    "parameter 'new_size': %" PRIu64 " MiB (%" PRIu64
				    " blocks) is smaller than the current %" PRIu64 " blocks; DAOS bdevs only grow",
				    new_size_mib, nb, cur);
	r = calloc(1, sizeof(*r));
	if (r == NULL || (r->c = conn_new(d, false)) == NULL) {
		free(r);
		return dbk_dfs_fail(err, errlen, -ENOMEM, "out of memory");
	}
	r->d = d;
	r->new_blocks = nb;
	r->cb = cb;
	r->cb_arg = ctx;
	atomic_fetch_add(&d->refs, 1);
	atomic_fetch_add(&g_helper_jobs, 1);
	d->resizing = true;
	rc = dbk_run_blocking(resize_job, resize_done, r);
	if (rc) {
		d->resizing = false;
		atomic_fetch_sub(&g_helper_jobs, 1);
		atomic_fetch_sub(&d->refs, 1);
		free(r->c);
		free(r);
		return dbk_dfs_fail(err, errlen, rc, "cannot start the resize: %s", strerror(-rc));
	}
	return 0;
}

/* --------------------------------------------------------- error injection */

int dbk_bdev_daos_inject_error(const char *name, const char *type, uint32_t count, char *err, size_t errlen)
{
	struct daos_disk *d = find_disk(name);
	bool rd, wr;

	if (d == NULL)
		return dbk_dfs_fail(err, errlen, -ENODEV, "DAOS bdev '%s' not found", name ? name : "");
	if (type == NULL || strcmp(type, "all") == 0 || strcmp(type, "rw") == 0) {
		rd = wr = true;
	} else if (strcmp(type, "read") == 0) {
		rd = true;
		wr = false;
	} else if (strcmp(type, "write") == 0) {
		rd = false;
		wr = true;
	} else {
		return dbk_dfs_fail(err, errlen, -EINVAL, "parameter 'io_type': '%s' is not read, write or all", type);
	}
	if (rd)
		atomic_store(&d->inject_read, count);
	if (wr)
		atomic_store(&d->inject_write, count);
	return 0;
}
