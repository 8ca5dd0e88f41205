/*
 * Unit tests of the DAOS bdev module (bdev/daos/bdev_daos.c) with the local
 * engine on a temporary root, on two real (unpinned) reactors, driven through
 * the bdev_daos_* RPC methods (rpc/rpc_daos.c) called in-process. The cmocka
 * thread sends messages to the reactors and waits on semaphores.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bdev/bdev.h"
#include "bdev/bdev_module.h"
#include "bdev/daos/bdev_daos.h"
#include "bdev/daos/dfs_engine.h"
#include "rpc/rpc.h"
#include "thread/thread.h"

static char g_root[128];
static pthread_t g_reactor_tid;

/* ------------------------------------------------------------ harness */

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

static int rm_tree(const char *p)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p);
	return system(cmd);
}

static int group_setup(void **state)
{
	struct dbk_reactor_opts o;
	char err[256];
	int rc = -1;

	(void)state;
	snprintf(g_root, sizeof(g_root), "/tmp/dbk-bdev-daos-XXXXXX");
	if (mkdtemp(g_root) == NULL)
		return -1;
	if (dbk_bdev_daos_set_engine("nosuch", NULL, err, sizeof(err)) != -EINVAL)
		return -1;
	if (dbk_bdev_daos_set_engine("local", g_root, err, sizeof(err)) != 0)
		return -1;
	if (dbk_dfs_local_pool_create(g_root, "test-pool", NULL, NULL, err, sizeof(err)) != 0 ||
	    dbk_dfs_local_cont_create(g_root, "test-pool", "test-cont", NULL, "POSIX", NULL, 0, NULL, err,
				      sizeof(err)) != 0 ||
	    dbk_dfs_local_cont_create(g_root, "test-pool", "h5", NULL, "HDF5", NULL, 0, NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	memset(&o, 0, sizeof(o));
	o.cores[0] = 0;
	o.cores[1] = 1;
	o.num_cores = 2;
	o.pin = false;
	if (dbk_reactors_init(&o) != 0)
		return -1;
	pthread_create(&g_reactor_tid, NULL, reactor_thread, NULL);
	run_on(0, init_bdev_layer, &rc);
	dbk_rpc_set_state(DBK_RPC_RUNTIME);
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
	rm_tree(g_root);
	return 0;
}

/* ----------------------------------------------------------------- RPC */

struct rpc_call {
	const char *method;
	json_t *params;
	json_t *result;
	int code;
	char msg[512];
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

/* Call method with params (stolen); returns the result (new ref) or NULL with *code and msg set. */
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

static json_t *create_params(const char *name, const char *pool, const char *cont, int bs, json_int_t blocks)
{
	return json_pack("{s:s,s:s,s:s,s:i,s:I}", "name", name, "pool", pool, "cont", cont, "block_size", bs,
			 "num_blocks", blocks);
}

static int create(json_t *params, char *msg)
{
	int code = 0;
	json_t *r = rpc("bdev_daos_create", params, &code, msg);

	if (r) {
		assert_int_equal(code, 0);
		json_decref(r);
	}
	return code;
}

static int delete(const char *name)
{
	int code = 0;
	char msg[512];
	json_t *r = rpc("bdev_daos_delete", json_pack("{s:s}", "name", name), &code, msg);

	json_decref(r);
	return code;
}

struct lookup {
	const char *name;
	bool found;
	json_t *info;
};

static void lookup_msg(void *ctx)
{
	struct lookup *l = ctx;
	struct dbk_bdev *b = dbk_bdev_get_by_name(l->name);

	l->found = b != NULL;
	l->info = b ? dbk_bdev_info_json(b) : NULL;
}

static bool bdev_exists(const char *name)
{
	struct lookup l = {.name = name};

	run_on(0, lookup_msg, &l);
	json_decref(l.info);
	return l.found;
}

/* bdev_get_bdevs entry (new ref). */
static json_t *bdev_info(const char *name)
{
	struct lookup l = {.name = name};

	run_on(0, lookup_msg, &l);
	assert_true(l.found);
	return l.info;
}

static int live_channels(const char *name)
{
	json_t *info = bdev_info(name);
	int n = (int)json_integer_value(
		json_object_get(json_object_get(json_object_get(info, "driver_specific"), "daos"), "channels"));

	json_decref(info);
	return n;
}

static bool wait_channels(const char *name, int want)
{
	for (int i = 0; i < 2000; i++) {
		if (live_channels(name) == want)
			return true;
		usleep(5000);
	}
	return false;
}

static void bdev_file(const char *name, char *out, size_t len)
{
	struct dbk_dfs_pool_info p;
	struct dbk_dfs_cont_info c;

	assert_int_equal(dbk_dfs_local_pool_query(g_root, "test-pool", &p, NULL, 0), 0);
	assert_int_equal(dbk_dfs_local_cont_query(g_root, "test-pool", "test-cont", &c, NULL, 0), 0);
	snprintf(out, len, "%s/pools/%s/conts/%s/data/%s", g_root, p.uuid, c.uuid, name);
}

/* ------------------------------------------------------------ open and I/O */

struct opened {
	const char *name;
	struct dbk_bdev_desc *desc;
	struct dbk_io_channel *ch[2];
	atomic_int resizes;
	atomic_int removes;
	int rc;
};

static void event_cb(enum dbk_bdev_event_type type, struct dbk_bdev *bdev, void *ctx)
{
	struct opened *o = ctx;

	(void)bdev;
	if (type == DBK_BDEV_EVENT_RESIZE)
		atomic_fetch_add(&o->resizes, 1);
	else
		atomic_fetch_add(&o->removes, 1);
}

static void open_msg(void *ctx)
{
	struct opened *o = ctx;

	o->rc = dbk_bdev_open_ext(o->name, true, event_cb, o, &o->desc);
}

static void close_msg(void *ctx)
{
	struct opened *o = ctx;

	dbk_bdev_close(o->desc);
	o->desc = NULL;
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

static struct opened *open_bdev(const char *name)
{
	struct opened *o = calloc(1, sizeof(*o));
	struct chan_op c = {o, 0};

	o->name = name;
	run_on(0, open_msg, o);
	assert_int_equal(o->rc, 0);
	run_on(0, get_ch_msg, &c);
	assert_non_null(o->ch[0]);
	return o;
}

static void get_channel(struct opened *o, int r)
{
	struct chan_op c = {o, r};

	run_on(r, get_ch_msg, &c);
	assert_non_null(o->ch[r]);
}

static void close_bdev(struct opened *o)
{
	for (int r = 0; r < 2; r++) {
		if (o->ch[r]) {
			struct chan_op c = {o, r};
			run_on(r, put_ch_msg, &c);
		}
	}
	if (o->desc)
		run_on(0, close_msg, o);
	free(o);
}

struct io_req {
	struct opened *o;
	int r;
	enum dbk_bdev_io_type type;
	struct iovec *iov;
	int iovcnt;
	uint64_t off, num;
	int submit_rc;
	bool success;
	int sct, sc, err;
	sem_t done;
};

static void io_cb(struct dbk_bdev_io *io, bool success, void *arg)
{
	struct io_req *q = arg;

	q->success = success;
	dbk_bdev_io_get_nvme_status(io, &q->sct, &q->sc);
	q->err = dbk_bdev_io_get_errno(io);
	dbk_bdev_free_io(io);
	sem_post(&q->done);
}

static void submit_msg(void *ctx)
{
	struct io_req *q = ctx;
	struct dbk_bdev_desc *desc = q->o->desc;
	struct dbk_io_channel *ch = q->o->ch[q->r];

	switch (q->type) {
	case DBK_BDEV_IO_TYPE_READ:
		q->submit_rc = dbk_bdev_readv_blocks(desc, ch, q->iov, q->iovcnt, q->off, q->num, io_cb, q);
		break;
	case DBK_BDEV_IO_TYPE_WRITE:
		q->submit_rc = dbk_bdev_writev_blocks(desc, ch, q->iov, q->iovcnt, q->off, q->num, io_cb, q);
		break;
	case DBK_BDEV_IO_TYPE_FLUSH:
		q->submit_rc = dbk_bdev_flush_blocks(desc, ch, q->off, q->num, io_cb, q);
		break;
	case DBK_BDEV_IO_TYPE_UNMAP:
		q->submit_rc = dbk_bdev_unmap_blocks(desc, ch, q->off, q->num, io_cb, q);
		break;
	case DBK_BDEV_IO_TYPE_WRITE_ZEROES:
		q->submit_rc = dbk_bdev_write_zeroes_blocks(desc, ch, q->off, q->num, io_cb, q);
		break;
	case DBK_BDEV_IO_TYPE_RESET:
		q->submit_rc = dbk_bdev_reset(desc, ch, io_cb, q);
		break;
	default:
		q->submit_rc = -EINVAL;
	}
}

/* Submit on reactor r and wait; returns true on success (q has the status). */
static bool do_io(struct io_req *q, struct opened *o, int r, enum dbk_bdev_io_type type, struct iovec *iov,
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
	assert_int_equal(q->submit_rc, 0);
	wait_sem(&q->done);
	sem_destroy(&q->done);
	return q->success;
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 9));
}

/* ------------------------------------------------------------------ tests */

static void expect_create_fails(json_t *params, int code, const char *needle)
{
	char msg[512];
	const char *name = json_string_value(json_object_get(params, "name"));
	char n[64];

	snprintf(n, sizeof(n), "%s", name ? name : "");
	assert_int_equal(create(params, msg), code);
	if (strstr(msg, needle) == NULL)
		fail_msg("message '%s' lacks '%s'", msg, needle);
	if (n[0] && strcmp(n, "dup") != 0)
		assert_false(bdev_exists(n));
}

static void test_create_failures(void **state)
{
	char msg[512], path[512];
	char longl[200];
	struct stat st;
	json_t *p;

	(void)state;
	expect_create_fails(create_params("bad0", "nopool", "test-cont", 4096, 100), -ENOENT, "pool 'nopool' not found");
	expect_create_fails(create_params("bad1", "test-pool", "nocont", 4096, 100), -ENOENT,
			    "container 'nocont' not found in pool 'test-pool'");
	expect_create_fails(create_params("bad2", "test-pool", "h5", 4096, 100), -ENOTSUP,
			    "container 'h5' is type 'HDF5', not POSIX");
	expect_create_fails(create_params("bad3", "test-pool", "test-cont", 1000, 100), -EINVAL, "block_size");
	expect_create_fails(create_params("bad4", "test-pool", "test-cont", 0, 100), -EINVAL, "block_size");
	expect_create_fails(create_params("bad5", "test-pool", "test-cont", 4096, 0), -EINVAL, "num_blocks");
	p = create_params("bad6", "test-pool", "test-cont", 4096, 100);
	json_object_set_new(p, "oclass", json_string("RP_7G1"));
	expect_create_fails(p, -EINVAL, "oclass");
	memset(longl, 'p', 128);
	longl[128] = '\0';
	expect_create_fails(create_params("bad7", longl, "test-cont", 4096, 100), -EINVAL, "'pool'");
	expect_create_fails(create_params("bad8", "test-pool", longl, 4096, 100), -EINVAL, "'cont'");
	p = create_params("bad9", "test-pool", "test-cont", 4096, 100);
	json_object_set_new(p, "path", json_string("/a/b"));
	expect_create_fails(p, -EINVAL, "path");
	/* missing required parameter: invalid params */
	p = json_pack("{s:s,s:s,s:i,s:i}", "name", "bad10", "pool", "test-pool", "block_size", 4096, "num_blocks", 1);
	assert_int_equal(create(p, msg), DBK_JSONRPC_INVALID_PARAMS);
	assert_false(bdev_exists("bad10"));
	/* no file was left behind by the failures that got as far as the container */
	bdev_file("bad0", path, sizeof(path));
	assert_int_not_equal(stat(path, &st), 0);

	/* duplicate name */
	assert_int_equal(create(create_params("dup", "test-pool", "test-cont", 4096, 256), msg), 0);
	expect_create_fails(create_params("dup", "test-pool", "test-cont", 4096, 256), -EEXIST, "already exists");
	assert_int_equal(delete("dup"), 0);
	assert_false(bdev_exists("dup"));
	assert_int_equal(delete("dup"), -ENODEV);
	/* a malloc bdev cannot be deleted through bdev_daos_delete */
}

static void test_io_roundtrip(void **state)
{
	char msg[512], path[512];
	uint8_t *w = malloc(64 * 1024), *r = malloc(64 * 1024), *z = calloc(1, 64 * 1024);
	struct iovec wv[3], rv[2];
	struct io_req q;
	struct opened *o;
	int fd;

	(void)state;
	assert_int_equal(create(create_params("rt", "test-pool", "test-cont", 4096, 1024), msg), 0);
	o = open_bdev("rt"); /* channel connecting: the first I/O waits for it */
	fill(w, 64 * 1024, 1);
	wv[0] = (struct iovec){w, 4096};
	wv[1] = (struct iovec){w + 4096, 8192};
	wv[2] = (struct iovec){w + 12288, 4096};
	assert_true(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_WRITE, wv, 3, 10, 4));
	memset(r, 0, 64 * 1024);
	rv[0] = (struct iovec){r, 6144};
	rv[1] = (struct iovec){r + 6144, 10240};
	assert_true(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_READ, rv, 2, 10, 4));
	assert_memory_equal(r, w, 16384);
	assert_true(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_FLUSH, NULL, 0, 0, 1024));
	/* the data is in the file at block 10 */
	bdev_file("rt", path, sizeof(path));
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, r, 16384, 10 * 4096), 16384);
	assert_memory_equal(r, w, 16384);
	{
		struct stat st;
		assert_int_equal(fstat(fd, &st), 0);
		assert_int_equal(st.st_size, 1024 * 4096);
	}
	close(fd);
	/* never-written blocks read zeros */
	memset(r, 0xaa, 16384);
	rv[0] = (struct iovec){r, 16384};
	assert_true(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_READ, rv, 1, 500, 4));
	assert_memory_equal(r, z, 16384);

	/* unmap then read zeros; write zeroes likewise */
	assert_true(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_UNMAP, NULL, 0, 11, 2));
	memset(r, 0xaa, 16384);
	assert_true(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_READ, rv, 1, 10, 4));
	assert_memory_equal(r, w, 4096);
	assert_memory_equal(r + 4096, z, 8192);
	assert_memory_equal(r + 12288, w + 12288, 4096);
	assert_true(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_WRITE_ZEROES, NULL, 0, 13, 1));
	assert_true(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_READ, rv, 1, 10, 4));
	assert_memory_equal(r, w, 4096);
	assert_memory_equal(r + 4096, z, 12288);
	/* reset completes */
	assert_true(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_RESET, NULL, 0, 0, 0));

	/* I/O past the end is refused by the core */
	close_bdev(o);
	assert_int_equal(delete("rt"), 0);
	free(w);
	free(r);
	free(z);
}

static void test_identity_and_config(void **state)
{
	char msg[512], u1[37];
	json_t *info, *p, *cfg;
	const char *u;
	int code;

	(void)state;
	assert_int_equal(create(create_params("idn", "test-pool", "test-cont", 4096, 256), msg), 0);
	info = bdev_info("idn");
	u = json_string_value(json_object_get(info, "uuid"));
	assert_non_null(u);
	snprintf(u1, sizeof(u1), "%s", u);
	json_decref(info);

	/* config: every parameter */
	cfg = rpc("framework_get_config", json_pack("{s:s}", "name", "bdev"), &code, msg);
	assert_non_null(cfg);
	{
		bool seen = false;
		size_t i;
		json_t *e;
		json_array_foreach(cfg, i, e) {
			json_t *pp = json_object_get(e, "params");
			if (strcmp(json_string_value(json_object_get(e, "method")), "bdev_daos_create") != 0)
				continue;
			if (strcmp(json_string_value(json_object_get(pp, "name")), "idn") != 0)
				continue;
			seen = true;
			assert_string_equal(json_string_value(json_object_get(pp, "pool")), "test-pool");
			assert_string_equal(json_string_value(json_object_get(pp, "cont")), "test-cont");
			assert_int_equal(json_integer_value(json_object_get(pp, "block_size")), 4096);
			assert_int_equal(json_integer_value(json_object_get(pp, "num_blocks")), 256);
			assert_string_equal(json_string_value(json_object_get(pp, "uuid")), u1);
			assert_string_equal(json_string_value(json_object_get(pp, "oclass")), "SX");
			assert_null(json_object_get(pp, "path"));
		}
		assert_true(seen);
	}
	json_decref(cfg);

	/* delete keeps the file; create again without uuid: same UUID */
	assert_int_equal(delete("idn"), 0);
	assert_int_equal(create(create_params("idn", "test-pool", "test-cont", 4096, 256), msg), 0);
	info = bdev_info("idn");
	assert_string_equal(json_string_value(json_object_get(info, "uuid")), u1);
	json_decref(info);
	assert_int_equal(delete("idn"), 0);

	/* a different UUID or block size is refused, nothing registered */
	p = create_params("idn", "test-pool", "test-cont", 4096, 256);
	json_object_set_new(p, "uuid", json_string("11111111-2222-4333-8444-555555555555"));
	assert_int_equal(create(p, msg), -EEXIST);
	assert_non_null(strstr(msg, u1));
	assert_false(bdev_exists("idn"));
	assert_int_equal(create(create_params("idn", "test-pool", "test-cont", 512, 2048), msg), -EINVAL);
	assert_non_null(strstr(msg, "block_size 4096"));
	assert_false(bdev_exists("idn"));

	/* the same file under another name with an explicit path and the stored uuid */
	p = create_params("idn-alias", "test-pool", "test-cont", 4096, 256);
	json_object_set_new(p, "path", json_string("/idn"));
	json_object_set_new(p, "uuid", json_string(u1));
	json_object_set_new(p, "oclass", json_string("RP_2G1"));
	assert_int_equal(create(p, msg), 0);
	info = bdev_info("idn-alias");
	assert_string_equal(json_string_value(json_object_get(info, "uuid")), u1);
	{
		json_t *d = json_object_get(json_object_get(info, "driver_specific"), "daos");
		assert_string_equal(json_string_value(json_object_get(d, "path")), "/idn");
		assert_string_equal(json_string_value(json_object_get(d, "oclass")), "RP_2G1");
		assert_string_equal(json_string_value(json_object_get(d, "engine")), "local");
	}
	json_decref(info);
	assert_int_equal(delete("idn-alias"), 0);
}

static void test_resize(void **state)
{
	char msg[512], path[512];
	struct opened *o;
	struct stat st;
	json_t *r, *info;
	int code;
	uint8_t buf[4096];
	struct iovec iov = {buf, sizeof(buf)};
	struct io_req q;

	(void)state;
	assert_int_equal(create(create_params("rs", "test-pool", "test-cont", 4096, 16384), msg), 0); /* 64 MiB */
	o = open_bdev("rs");
	/* shrinking is refused */
	r = rpc("bdev_daos_resize", json_pack("{s:s,s:i}", "name", "rs", "new_size", 32), &code, msg);
	assert_null(r);
	assert_int_equal(code, -EINVAL);
	assert_non_null(strstr(msg, "only grow"));
	r = rpc("bdev_daos_resize", json_pack("{s:s,s:i}", "name", "nosuch", "new_size", 32), &code, msg);
	assert_null(r);
	assert_int_equal(code, -ENODEV);
	/* grow to 128 MiB */
	r = rpc("bdev_daos_resize", json_pack("{s:s,s:i}", "name", "rs", "new_size", 128), &code, msg);
	assert_non_null(r);
	json_decref(r);
	info = bdev_info("rs");
	assert_int_equal(json_integer_value(json_object_get(info, "num_blocks")), 32768);
	json_decref(info);
	for (int i = 0; i < 200 && atomic_load(&o->resizes) == 0; i++)
		usleep(5000);
	assert_int_equal(atomic_load(&o->resizes), 1);
	bdev_file("rs", path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 128ll << 20);
	/* the new blocks are usable */
	fill(buf, sizeof(buf), 9);
	assert_true(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_WRITE, &iov, 1, 32767, 1));
	close_bdev(o);
	/* the stored size follows: delete + create with the new size works, config shows it */
	assert_int_equal(delete("rs"), 0);
	assert_int_equal(create(create_params("rs", "test-pool", "test-cont", 4096, 32768), msg), 0);
	o = open_bdev("rs");
	memset(buf, 0, sizeof(buf));
	assert_true(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_READ, &iov, 1, 32767, 1));
	{
		uint8_t exp[4096];
		fill(exp, sizeof(exp), 9);
		assert_memory_equal(buf, exp, sizeof(buf));
	}
	close_bdev(o);
	assert_int_equal(delete("rs"), 0);
}

static void test_two_reactors(void **state)
{
	char msg[512];
	struct opened *o;
	uint8_t a[8192], b[8192], r[8192];
	struct iovec av = {a, sizeof(a)}, bv = {b, sizeof(b)}, rv = {r, sizeof(r)};
	struct io_req q;
	json_t *st;
	int code;

	(void)state;
	assert_int_equal(create(create_params("two", "test-pool", "test-cont", 4096, 256), msg), 0);
	assert_int_equal(live_channels("two"), 0); /* the trial connection is closed */
	o = open_bdev("two");
	get_channel(o, 1);
	fill(a, sizeof(a), 3);
	fill(b, sizeof(b), 4);
	assert_true(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_WRITE, &av, 1, 0, 2));
	assert_true(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_WRITE, &bv, 1, 2, 2));
	assert_true(wait_channels("two", 2));
	/* each reactor sees the other's writes */
	assert_true(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_READ, &rv, 1, 0, 2));
	assert_memory_equal(r, a, sizeof(a));
	assert_true(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_READ, &rv, 1, 2, 2));
	assert_memory_equal(r, b, sizeof(b));
	/* per-channel iostat shows two connected channels */
	st = rpc("bdev_get_iostat", json_pack("{s:s,s:b}", "name", "two", "per_channel", 1), &code, msg);
	assert_non_null(st);
	{
		json_t *chans = json_object_get(json_array_get(json_object_get(st, "bdevs"), 0), "channels");
		size_t i, connected = 0;
		json_t *c;
		assert_int_equal(json_array_size(chans), 2);
		json_array_foreach(chans, i, c) {
			json_t *d = json_object_get(c, "daos");
			if (json_is_true(json_object_get(d, "connection")))
				connected++;
		}
		assert_int_equal(connected, 2);
	}
	json_decref(st);
	close_bdev(o);
	/* the channels' connections are released on the helper thread */
	assert_true(wait_channels("two", 0));
	assert_int_equal(delete("two"), 0);
}

static void test_injected_errors(void **state)
{
	char msg[512];
	struct opened *o;
	uint8_t a[4096];
	struct iovec av = {a, sizeof(a)};
	struct io_req q;
	json_t *r;
	int code;

	(void)state;
	assert_int_equal(create(create_params("inj", "test-pool", "test-cont", 4096, 256), msg), 0);
	o = open_bdev("inj");
	fill(a, sizeof(a), 5);
	r = rpc("bdev_daos_inject_error", json_pack("{s:s,s:s,s:i}", "name", "inj", "io_type", "write", "count", 2),
		&code, msg);
	assert_non_null(r);
	json_decref(r);
	r = rpc("bdev_daos_inject_error", json_pack("{s:s,s:s}", "name", "inj", "io_type", "bogus"), &code, msg);
	assert_null(r);
	assert_int_equal(code, -EINVAL);
	r = rpc("bdev_daos_inject_error", json_pack("{s:s}", "name", "nope"), &code, msg);
	assert_null(r);
	assert_int_equal(code, -ENODEV);

	for (int i = 0; i < 2; i++) {
		assert_false(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_WRITE, &av, 1, 0, 1));
		assert_int_equal(q.err, -EIO);
		assert_int_equal(q.sct, 0);
		assert_int_equal(q.sc, 6); /* internal device error */
	}
	/* reads are not affected; the third write succeeds */
	assert_true(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_READ, &av, 1, 0, 1));
	assert_true(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_WRITE, &av, 1, 0, 1));
	r = rpc("bdev_daos_inject_error", json_pack("{s:s,s:s,s:i}", "name", "inj", "io_type", "read", "count", 1),
		&code, msg);
	json_decref(r);
	assert_false(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_READ, &av, 1, 0, 1));
	assert_int_equal(q.err, -EIO);
	assert_true(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_READ, &av, 1, 0, 1));
	close_bdev(o);
	assert_int_equal(delete("inj"), 0);
}

static void test_channel_connect_failure(void **state)
{
	char msg[512], err[256];
	struct opened *o;
	uint8_t a[4096];
	struct iovec av = {a, sizeof(a)};
	struct io_req q;

	(void)state;
	assert_int_equal(dbk_dfs_local_cont_create(g_root, "test-pool", "doomed", NULL, "POSIX", NULL, 0, NULL, err,
						   sizeof(err)),
			 0);
	assert_int_equal(create(create_params("doom", "test-pool", "doomed", 4096, 64), msg), 0);
	/* the container disappears after create: a new channel cannot connect and fails its I/O */
	assert_int_equal(dbk_dfs_local_cont_destroy(g_root, "test-pool", "doomed", true, err, sizeof(err)), 0);
	o = open_bdev("doom");
	assert_false(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_WRITE, &av, 1, 0, 1));
	assert_int_equal(q.err, -ENOENT);
	assert_false(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_READ, &av, 1, 0, 1));
	assert_int_equal(live_channels("doom"), 0);
	close_bdev(o);
	assert_int_equal(delete("doom"), 0);
}

static void test_delete_while_connecting(void **state)
{
	char msg[512];
	struct opened *o;

	(void)state;
	/* open, get a channel (connect starts), drop it and delete at once: teardown waits for the connect */
	for (int i = 0; i < 5; i++) {
		assert_int_equal(create(create_params("quick", "test-pool", "test-cont", 4096, 64), msg), 0);
		o = open_bdev("quick");
		get_channel(o, 1);
		close_bdev(o);
		assert_int_equal(delete("quick"), 0);
		assert_false(bdev_exists("quick"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_failures),
		cmocka_unit_test(test_io_roundtrip),
		cmocka_unit_test(test_identity_and_config),
		cmocka_unit_test(test_resize),
		cmocka_unit_test(test_two_reactors),
		cmocka_unit_test(test_injected_errors),
		cmocka_unit_test(test_channel_connect_failure),
		cmocka_unit_test(test_delete_while_connecting),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
