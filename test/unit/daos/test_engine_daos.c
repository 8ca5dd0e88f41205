/*
 * Unit tests of the real DAOS engine (bdev/daos/engine_daos.c) against a test
 * double of exactly the DAOS calls it makes (daos_double/): the setup and
 * teardown call sequences, an error at each setup step (right errno, message,
 * and release of what was already opened), events completing out of order,
 * event errors, short reads, sizes, xattrs and punch. Builds without DAOS.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bdev/daos/dfs_engine.h"
#include "daos_double.h"

static const struct dbk_dfs_engine *E = &dbk_dfs_engine_daos;

#define SETUP_LOG "daos_init daos_pool_connect daos_cont_open dfs_mount dfs_open daos_eq_create"
#define TEARDOWN_LOG "daos_eq_destroy dfs_release dfs_umount daos_cont_close daos_pool_disconnect daos_fini"

static int reset(void **state)
{
	(void)state;
	dd_reset();
	return 0;
}

static int open_conn(struct dbk_dfs_conn *c, const char *oclass, char *err, size_t errlen)
{
	struct dbk_dfs_file_opts fo = {.oclass = oclass, .chunk_size = 0, .create = true};

	return dbk_dfs_conn_open(c, E, NULL, "pool0", "cont0", "/disk0", &fo, 4, err, errlen);
}

static void test_setup_teardown_order(void **state)
{
	struct dbk_dfs_conn c;
	char err[256];

	(void)state;
	assert_false(E->volatile_cache);
	assert_ptr_equal(dbk_dfs_engine_get("daos"), E);
	assert_int_equal(open_conn(&c, "RP_2G1", err, sizeof(err)), 0);
	assert_string_equal(dd_log(), SETUP_LOG);
	assert_int_equal(dd_live_handles(), 6);
	assert_int_equal(dd_last_open_cid(), daos_oclass_name2id("RP_2G1"));
	assert_int_equal(dd_last_open_flags(), O_RDWR | O_CREAT);
	dd_log_clear();
	dbk_dfs_conn_close(&c);
	assert_string_equal(dd_log(), TEARDOWN_LOG);
	assert_int_equal(dd_live_handles(), 0);
	/* closing again does nothing */
	dd_log_clear();
	dbk_dfs_conn_close(&c);
	assert_string_equal(dd_log(), "");

	/* two connections share one daos_init (reference counted) */
	{
		struct dbk_dfs_conn c2;
		assert_int_equal(open_conn(&c, NULL, err, sizeof(err)), 0);
		assert_int_equal(dd_last_open_cid(), 0); /* default class */
		dd_log_clear();
		assert_int_equal(open_conn(&c2, "SX", err, sizeof(err)), 0);
		assert_string_equal(dd_log(), "daos_pool_connect daos_cont_open dfs_mount dfs_open daos_eq_create");
		dd_log_clear();
		dbk_dfs_conn_close(&c);
		assert_string_equal(dd_log(),
				    "daos_eq_destroy dfs_release dfs_umount daos_cont_close daos_pool_disconnect");
		dd_log_clear();
		dbk_dfs_conn_close(&c2);
		assert_string_equal(dd_log(), TEARDOWN_LOG);
		assert_int_equal(dd_live_handles(), 0);
	}
}

struct step_case {
	const char *fn;
	int rc;
	int want;
	const char *log;
	const char *msg;
};

static void test_setup_errors(void **state)
{
	static const struct step_case cases[] = {
		{"daos_init", -DER_UNREACH, -EHOSTUNREACH, "daos_init", "daos_init failed"},
		{"daos_pool_connect", -DER_NONEXIST, -ENOENT, "daos_init daos_pool_connect daos_fini",
		 "pool 'pool0' not found"},
		{"daos_pool_connect", -DER_NO_PERM, -EACCES, "daos_init daos_pool_connect daos_fini",
		 "pool 'pool0': permission denied"},
		{"daos_pool_connect", -DER_TIMEDOUT, -ETIMEDOUT, "daos_init daos_pool_connect daos_fini",
		 "cannot connect to pool 'pool0'"},
		{"daos_cont_open", -DER_NONEXIST, -ENOENT,
		 "daos_init daos_pool_connect daos_cont_open daos_pool_disconnect daos_fini",
		 "container 'cont0' not found in pool 'pool0'"},
		{"daos_cont_open", -DER_NO_PERM, -EACCES,
		 "daos_init daos_pool_connect daos_cont_open daos_pool_disconnect daos_fini", "permission denied"},
		{"dfs_mount", EINVAL, -ENOTSUP,
		 "daos_init daos_pool_connect daos_cont_open dfs_mount daos_cont_close daos_pool_disconnect daos_fini",
		 "not a POSIX container"},
		{"dfs_mount", EIO, -EIO,
		 "daos_init daos_pool_connect daos_cont_open dfs_mount daos_cont_close daos_pool_disconnect daos_fini",
		 "cannot mount container 'cont0'"},
		{"dfs_open", EACCES, -EACCES,
		 "daos_init daos_pool_connect daos_cont_open dfs_mount dfs_open dfs_umount daos_cont_close "
		 "daos_pool_disconnect daos_fini",
		 "file '/disk0'"},
		{"daos_eq_create", -DER_NOMEM, -ENOMEM,
		 "daos_init daos_pool_connect daos_cont_open dfs_mount dfs_open daos_eq_create dfs_release dfs_umount "
		 "daos_cont_close daos_pool_disconnect daos_fini",
		 "event queue"},
	};
	struct dbk_dfs_conn c;
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dd_reset();
		dd_fail_next(cases[i].fn, cases[i].rc);
		err[0] = '\0';
		assert_int_equal(open_conn(&c, "SX", err, sizeof(err)), cases[i].want);
		if (strcmp(dd_log(), cases[i].log) != 0)
			fail_msg("case %zu (%s): log '%s', want '%s'", i, cases[i].fn, dd_log(), cases[i].log);
		if (strstr(err, cases[i].msg) == NULL)
			fail_msg("case %zu (%s): message '%s' lacks '%s'", i, cases[i].fn, err, cases[i].msg);
		assert_int_equal(dd_live_handles(), 0);
		/* nothing left to release */
		dd_log_clear();
		dbk_dfs_conn_close(&c);
		assert_string_equal(dd_log(), "");
	}
	/* an object class DAOS does not know: refused before dfs_open, everything released */
	dd_reset();
	assert_int_equal(open_conn(&c, "S3", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "S3"));
	assert_string_equal(dd_log(), "daos_init daos_pool_connect daos_cont_open dfs_mount dfs_umount daos_cont_close "
				      "daos_pool_disconnect daos_fini");
	assert_int_equal(dd_live_handles(), 0);
	/* a path that is not at the root */
	dd_reset();
	{
		struct dbk_dfs_file_opts fo = {.create = true};
		assert_int_equal(dbk_dfs_conn_open(&c, E, NULL, "p", "c", "/a/b", &fo, 4, err, sizeof(err)), -EINVAL);
		assert_int_equal(dd_live_handles(), 0);
	}
}

struct done {
	int order;
	int rc;
	int calls;
};

static int g_order;

static void op_cb(void *arg, int rc)
{
	struct done *d = arg;

	d->calls++;
	d->rc = rc;
	d->order = ++g_order;
}

static struct dbk_dfs_op *new_op(struct done *d)
{
	struct dbk_dfs_op *op = aligned_alloc(16, sizeof(*op) + ((E->op_priv_size + 15) & ~(size_t)15));

	assert_non_null(op);
	memset(d, 0, sizeof(*d));
	op->cb = op_cb;
	op->cb_arg = d;
	return op;
}

static void test_events_out_of_order(void **state)
{
	struct dbk_dfs_conn c;
	char err[256];
	struct done d[3];
	struct dbk_dfs_op *ops[3];
	uint8_t w[3][4096], r[3][4096];
	struct iovec wv[3], rv[3][2];

	(void)state;
	assert_int_equal(open_conn(&c, "SX", err, sizeof(err)), 0);
	g_order = 0;
	for (int i = 0; i < 3; i++) {
		memset(w[i], 0x11 * (i + 1), sizeof(w[i]));
		wv[i] = (struct iovec){w[i], sizeof(w[i])};
		ops[i] = new_op(&d[i]);
		assert_int_equal(E->writev(c.eq, c.file, &wv[i], 1, (uint64_t)i * 4096, ops[i]), 0);
	}
	assert_int_equal(E->inflight(c.eq), 3);
	/* the fourth exceeds the queue depth (4 was asked; one slot left, then full) */
	assert_int_equal(E->poll(c.eq, 16), 0); /* nothing completed yet */
	/* complete C, then A, then B */
	assert_int_equal(dd_complete(2), 0);
	assert_int_equal(E->poll(c.eq, 16), 1);
	assert_int_equal(dd_complete(0), 0);
	assert_int_equal(dd_complete(0), 0);
	assert_int_equal(E->poll(c.eq, 16), 2);
	assert_int_equal(d[2].order, 1);
	assert_int_equal(d[0].order, 2);
	assert_int_equal(d[1].order, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(d[i].calls, 1);
		assert_int_equal(d[i].rc, 0);
	}
	assert_int_equal(E->inflight(c.eq), 0);
	assert_int_equal(dd_file_size("disk0"), 3 * 4096);

	/* reads with split iovecs, completed in reverse: each gets its own data */
	g_order = 0;
	for (int i = 0; i < 3; i++) {
		memset(r[i], 0, sizeof(r[i]));
		rv[i][0] = (struct iovec){r[i], 1000};
		rv[i][1] = (struct iovec){r[i] + 1000, 3096};
		memset(&d[i], 0, sizeof(d[i]));
		assert_int_equal(E->readv(c.eq, c.file, rv[i], 2, (uint64_t)i * 4096, ops[i]), 0);
	}
	assert_int_equal(dd_complete(2), 0);
	assert_int_equal(dd_complete(1), 0);
	assert_int_equal(dd_complete(0), 0);
	assert_int_equal(E->poll(c.eq, 1), 1); /* max respected */
	assert_int_equal(E->poll(c.eq, 16), 2);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(d[i].rc, 0);
		assert_memory_equal(r[i], w[i], 4096);
	}
	assert_int_equal(d[2].order, 1);
	assert_int_equal(d[1].order, 2);
	assert_int_equal(d[0].order, 3);

	/* queue depth 4: the fifth in flight is refused with -EAGAIN */
	{
		struct done dd5[5];
		struct dbk_dfs_op *o5[5];
		for (int i = 0; i < 5; i++) {
			o5[i] = new_op(&dd5[i]);
			assert_int_equal(E->writev(c.eq, c.file, &wv[0], 1, 0, o5[i]), i < 4 ? 0 : -EAGAIN);
		}
		/* the event queue cannot be destroyed with events in flight */
		assert_int_equal(E->eq_destroy(c.eq), -EBUSY);
		dd_complete_all();
		assert_int_equal(E->poll(c.eq, 16), 4);
		for (int i = 0; i < 5; i++)
			free(o5[i]);
	}
	for (int i = 0; i < 3; i++)
		free(ops[i]);
	dd_log_clear();
	dbk_dfs_conn_close(&c);
	assert_string_equal(dd_log(), TEARDOWN_LOG);
	assert_int_equal(dd_live_handles(), 0);
}

static void test_event_errors_and_short_reads(void **state)
{
	struct dbk_dfs_conn c;
	char err[256];
	struct done d;
	struct dbk_dfs_op *op;
	uint8_t buf[8192];
	struct iovec v = {buf, sizeof(buf)};

	(void)state;
	assert_int_equal(open_conn(&c, "SX", err, sizeof(err)), 0);
	op = new_op(&d);
	/* an event that fails: DER codes become errno values */
	dd_fail_next_event(-DER_IO);
	assert_int_equal(E->writev(c.eq, c.file, &v, 1, 0, op), 0);
	dd_complete_all();
	assert_int_equal(E->poll(c.eq, 8), 1);
	assert_int_equal(d.rc, -EIO);
	assert_int_equal(dd_file_size("disk0"), 0);
	memset(&d, 0, sizeof(d));
	dd_fail_next_event(-DER_NOSPACE);
	assert_int_equal(E->writev(c.eq, c.file, &v, 1, 0, op), 0);
	dd_complete_all();
	assert_int_equal(E->poll(c.eq, 8), 1);
	assert_int_equal(d.rc, -ENOSPC);
	/* a call that fails at once (dfs_* return errno): no event stays behind */
	dd_fail_next("dfs_read", EIO);
	assert_int_equal(E->readv(c.eq, c.file, &v, 1, 0, op), -EIO);
	assert_int_equal(dd_pending(), 0);
	assert_int_equal(E->inflight(c.eq), 0);
	dd_fail_next("daos_event_init", -DER_NOMEM);
	assert_int_equal(E->readv(c.eq, c.file, &v, 1, 0, op), -ENOMEM);
	assert_int_equal(E->inflight(c.eq), 0);

	/* the file is 4 KiB: an 8 KiB read gets the data then zeros */
	memset(buf, 0x5a, 4096);
	memset(&d, 0, sizeof(d));
	v.iov_len = 4096;
	assert_int_equal(E->writev(c.eq, c.file, &v, 1, 0, op), 0);
	dd_complete_all();
	assert_int_equal(E->poll(c.eq, 8), 1);
	memset(buf, 0xff, sizeof(buf));
	v.iov_len = sizeof(buf);
	memset(&d, 0, sizeof(d));
	assert_int_equal(E->readv(c.eq, c.file, &v, 1, 0, op), 0);
	dd_complete_all();
	assert_int_equal(E->poll(c.eq, 8), 1);
	assert_int_equal(d.rc, 0);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(buf[i], 0x5a);
	for (int i = 4096; i < 8192; i++)
		assert_int_equal(buf[i], 0);

	free(op);
	dbk_dfs_conn_close(&c);
	assert_int_equal(dd_live_handles(), 0);
}

static void test_size_xattr_punch(void **state)
{
	struct dbk_dfs_conn c;
	char err[256], x[64];
	uint64_t size;
	size_t len;

	(void)state;
	assert_int_equal(open_conn(&c, "SX", err, sizeof(err)), 0);
	assert_int_equal(E->get_size(c.file, &size), 0);
	assert_int_equal(size, 0);
	assert_int_equal(E->set_size(c.file, 1 << 20), 0); /* dfs_punch(size, DFS_MAX_FSIZE) extends */
	assert_int_equal(E->get_size(c.file, &size), 0);
	assert_int_equal(size, 1 << 20);
	assert_int_equal(dd_file_size("disk0"), 1 << 20);

	len = sizeof(x);
	assert_int_equal(E->getxattr(c.file, "user.daosblk.uuid", x, &len), -ENODATA);
	assert_int_equal(E->setxattr(c.file, "user.daosblk.uuid", "abcd", 4), 0);
	len = sizeof(x);
	assert_int_equal(E->getxattr(c.file, "user.daosblk.uuid", x, &len), 0);
	assert_int_equal(len, 4);
	assert_memory_equal(x, "abcd", 4);
	len = 2;
	assert_int_equal(E->getxattr(c.file, "user.daosblk.uuid", x, &len), -ERANGE);

	/* punch zeroes a range and keeps the size */
	{
		struct done d;
		struct dbk_dfs_op *op = new_op(&d);
		uint8_t b[8192];
		struct iovec v = {b, sizeof(b)};
		memset(b, 0x77, sizeof(b));
		assert_int_equal(E->writev(c.eq, c.file, &v, 1, 0, op), 0);
		dd_complete_all();
		assert_int_equal(E->poll(c.eq, 8), 1);
		assert_int_equal(E->punch(c.file, 4096, 4096), 0);
		assert_int_equal(dd_file_data("disk0")[4095], 0x77);
		assert_int_equal(dd_file_data("disk0")[4096], 0);
		assert_int_equal(dd_file_data("disk0")[8191], 0);
		assert_int_equal(E->get_size(c.file, &size), 0);
		assert_int_equal(size, 1 << 20);
		dd_fail_next("dfs_punch", EROFS);
		assert_int_equal(E->punch(c.file, 0, 4096), -EROFS);
		free(op);
	}
	dbk_dfs_conn_close(&c);
	assert_int_equal(dd_live_handles(), 0);
}

#ifdef DBK_DAOS_DLOPEN
/* Run first, before anything is loaded: a library that cannot be loaded is named, and nothing stays half loaded. */
static void test_dlopen_missing_library(void **state)
{
	char err[512] = "";

	(void)state;
	setenv("DBK_DAOS_LIBDFS", "/nonexistent/libdfs.so", 1);
	assert_int_equal(E->probe(err, sizeof(err)), -ELIBACC);
	assert_non_null(strstr(err, "/nonexistent/libdfs.so"));
	assert_non_null(strstr(err, "cannot be loaded"));
	assert_int_equal(E->init(NULL, err, sizeof(err)), -ELIBACC);
	unsetenv("DBK_DAOS_LIBDFS");
	err[0] = '\0';
	assert_int_equal(E->probe(err, sizeof(err)), 0);
	assert_string_equal(err, "");
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
#ifdef DBK_DAOS_DLOPEN
		cmocka_unit_test(test_dlopen_missing_library),
#endif
		cmocka_unit_test_setup(test_setup_teardown_order, reset),
		cmocka_unit_test_setup(test_setup_errors, reset),
		cmocka_unit_test_setup(test_events_out_of_order, reset),
		cmocka_unit_test_setup(test_event_errors_and_short_reads, reset),
		cmocka_unit_test_setup(test_size_xattr_punch, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
