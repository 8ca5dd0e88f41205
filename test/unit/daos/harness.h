/*
 * Shared harness of the DAOS bdev module tests: two real (unpinned) reactors
 * on a background pthread, in-process RPC calls, bdev open/channel/I-O
 * helpers. The cmocka thread sends messages and waits on semaphores.
 */
#ifndef DBK_TEST_DAOS_HARNESS_H
#define DBK_TEST_DAOS_HARNESS_H

#include <errno.h>
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bdev/bdev.h"
#include "bdev/bdev_module.h"
#include "rpc/rpc.h"
#include "thread/thread.h"

#pragma GCC diagnostic ignored "-Wunused-function"

/* ------------------------------------------------------------ reactors */

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

/* Start two reactors and the bdev layer. */
static int harness_start(void)
{
	struct dbk_reactor_opts o;
	int rc = -1;

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

/* Finish the bdev layer (every bdev unregistered and destructed) and stop the reactors. */
static void harness_stop(void)
{
	sem_init(&g_fini_sem, 0, 0);
	dbk_thread_send_msg(dbk_reactor_thread(0), fini_msg, NULL);
	wait_sem(&g_fini_sem);
	dbk_reactors_stop();
	pthread_join(g_reactor_tid, NULL);
	dbk_reactors_fini();
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

/* Submit on reactor r without waiting; returns the submit rc. */
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

/* True if q completed (without waiting). */
static bool io_done(struct io_req *q)
{
	int v = 0;

	sem_getvalue(&q->done, &v);
	return v > 0;
}

/* Wait for q (started with io_start); returns its success. */
static bool io_wait(struct io_req *q)
{
	wait_sem(&q->done);
	sem_destroy(&q->done);
	return q->success;
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

#endif
