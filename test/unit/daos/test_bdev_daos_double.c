/*
 * The DAOS bdev module with the real DAOS engine (engine_daos.c) over the
 * DAOS test double, on two real reactors: what the module does differently
 * for DAOS (no write cache, FLUSH without a sync, punch on the helper thread),
 * one DAOS connection per channel, every handle released by the time delete
 * answers, and DAOS errors reaching the bdev I/O as errno/NVMe statuses.
 */
#include "harness.h"

#include "bdev/daos/bdev_daos.h"
#include "bdev/daos/dfs_engine.h"
#include "daos_double.h"

static int group_setup(void **state)
{
	char err[256];

	(void)state;
	dd_reset();
	dd_set_autocomplete(true);
	if (dbk_bdev_daos_set_engine("daos", NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	return harness_start();
}

static int group_teardown(void **state)
{
	(void)state;
	harness_stop();
	return 0;
}

static void test_daos_create_failures(void **state)
{
	static const struct {
		const char *fn;
		int rc;
		int want;
		const char *msg;
	} cases[] = {
		{"daos_pool_connect", -DER_NONEXIST, -ENOENT, "pool 'pool0' not found"},
		{"daos_pool_connect", -DER_NO_PERM, -EACCES, "permission denied"},
		{"daos_cont_open", -DER_NONEXIST, -ENOENT, "container 'cont0' not found in pool 'pool0'"},
		{"dfs_mount", EINVAL, -ENOTSUP, "not a POSIX container"},
		{"dfs_open", EACCES, -EACCES, "file '/bad'"},
		{"daos_eq_create", -DER_NOMEM, -ENOMEM, "event queue"},
	};
	char msg[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dd_fail_next(cases[i].fn, cases[i].rc);
		assert_int_equal(create(create_params("bad", "pool0", "cont0", 4096, 64), msg), cases[i].want);
		if (strstr(msg, cases[i].msg) == NULL)
			fail_msg("%s: message '%s' lacks '%s'", cases[i].fn, msg, cases[i].msg);
		assert_false(bdev_exists("bad"));
		assert_int_equal(dd_live_handles(), 0);
	}
}

static void test_daos_io_and_teardown(void **state)
{
	char msg[512];
	struct opened *o;
	uint8_t w[16384], r[16384], z[8192];
	struct iovec wv[2] = {{w, 4096}, {w + 4096, 12288}}, rv = {r, sizeof(r)};
	struct io_req q;
	json_t *info;

	(void)state;
	memset(z, 0, sizeof(z));
	dd_log_clear();
	assert_int_equal(create(create_params("dd0", "pool0", "cont0", 4096, 256), msg), 0);
	/* the trial connection is open and closed again */
	assert_int_equal(dd_live_handles(), 0);
	assert_int_equal(dd_count_calls("daos_pool_connect"), 1);
	assert_int_equal(dd_count_calls("daos_pool_disconnect"), 1);
	assert_int_equal(dd_file_size("dd0"), 256 * 4096);
	info = bdev_info("dd0");
	assert_true(json_is_false(json_object_get(info, "write_cache")));
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_object_get(info, "driver_specific"), "daos"), "engine")),
			    "daos");
	json_decref(info);

	o = open_bdev("dd0");
	get_channel(o, 1);
	fill(w, sizeof(w), 7);
	assert_true(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_WRITE, wv, 2, 8, 4));
	assert_memory_equal(dd_file_data("dd0") + 8 * 4096, w, sizeof(w));
	assert_true(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_READ, &rv, 1, 8, 4));
	assert_memory_equal(r, w, sizeof(r));
	/* FLUSH: completed DAOS writes are durable, nothing to do */
	assert_true(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_FLUSH, NULL, 0, 0, 256));
	/* UNMAP and WRITE_ZEROES: dfs_punch on the helper thread; the range reads zeros */
	assert_true(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_UNMAP, NULL, 0, 9, 1));
	assert_true(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_WRITE_ZEROES, NULL, 0, 10, 1));
	assert_true(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_READ, &rv, 1, 8, 4));
	assert_memory_equal(r, w, 4096);
	assert_memory_equal(r + 4096, z, 8192);
	assert_memory_equal(r + 12288, w + 12288, 4096);

	/* DAOS errors reach the I/O: DER_IO -> -EIO (internal error), DER_NOSPACE -> -ENOSPC */
	dd_fail_next_event(-DER_IO);
	assert_false(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_WRITE, wv, 1, 0, 1));
	assert_int_equal(q.err, -EIO);
	assert_int_equal(q.sct, 0);
	assert_int_equal(q.sc, 6);
	dd_fail_next_event(-DER_NOSPACE);
	assert_false(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_WRITE, wv, 1, 0, 1));
	assert_int_equal(q.err, -ENOSPC);
	dd_fail_next("dfs_read", EIO);
	assert_false(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_READ, &rv, 1, 0, 1));
	assert_int_equal(q.err, -EIO);
	assert_true(do_io(&q, o, 1, DBK_BDEV_IO_TYPE_READ, &rv, 1, 8, 1));

	/* two reactors: two channels, each with its own DAOS connection and event queue */
	assert_true(wait_channels("dd0", 2));
	assert_int_equal(dd_count_calls("daos_pool_connect"), 3);
	assert_int_equal(dd_count_calls("daos_eq_create"), 3);
	assert_int_equal(dd_live_handles(), 2 * 5 + 1); /* 2 x (pool, cont, mount, file, eq) + one daos_init */
	close_bdev(o);
	assert_true(wait_channels("dd0", 0));
	/* delete answers only once every handle is released */
	assert_int_equal(delete("dd0"), 0);
	assert_int_equal(dd_live_handles(), 0);
	assert_int_equal(dd_count_calls("daos_init"), dd_count_calls("daos_fini"));
}

static void test_daos_channel_connect_failure(void **state)
{
	char msg[512];
	struct opened *o;
	uint8_t b[4096];
	struct iovec v = {b, sizeof(b)};
	struct io_req q;

	(void)state;
	assert_int_equal(create(create_params("dd1", "pool0", "cont0", 4096, 16), msg), 0);
	/* the channel's connect fails (pool gone): its queued I/O fails with the errno, nothing leaks */
	dd_fail_next("daos_pool_connect", -DER_NONEXIST);
	dd_log_clear();
	o = open_bdev("dd1");
	assert_false(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_WRITE, &v, 1, 0, 1));
	assert_int_equal(q.err, -ENOENT);
	/* within a second: failed at once, no new connect */
	assert_false(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_READ, &v, 1, 0, 1));
	assert_int_equal(q.err, -ENOENT);
	assert_int_equal(dd_count_calls("daos_pool_connect"), 1);
	assert_int_equal(live_channels("dd1"), 0);
	/* later the channel connects again on the next I/O (the pool is back) */
	usleep(1100 * 1000);
	memset(b, 0x3c, sizeof(b));
	assert_true(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_WRITE, &v, 1, 0, 1));
	assert_int_equal(dd_count_calls("daos_pool_connect"), 2);
	assert_int_equal(live_channels("dd1"), 1);
	assert_int_equal(dd_file_data("dd1")[0], 0x3c);
	close_bdev(o);
	assert_int_equal(delete("dd1"), 0);
	assert_int_equal(dd_live_handles(), 0);
}

static void test_daos_io_queued_while_connecting(void **state)
{
	char msg[512];
	struct opened *o;
	uint8_t w[3][4096], r[4096];
	struct iovec wv[3], rv = {r, sizeof(r)};
	struct io_req q[3], rq;

	(void)state;
	assert_int_equal(create(create_params("dd2", "pool0", "cont0", 4096, 16), msg), 0);
	/* the channel's pool connect takes 300 ms on the helper thread; the reactor keeps running */
	dd_delay_next("daos_pool_connect", 300);
	o = open_bdev("dd2");
	for (int i = 0; i < 3; i++) {
		memset(w[i], 0x21 + i, sizeof(w[i]));
		wv[i] = (struct iovec){w[i], sizeof(w[i])};
		assert_int_equal(io_start(&q[i], o, 0, DBK_BDEV_IO_TYPE_WRITE, &wv[i], 1, (uint64_t)i, 1), 0);
	}
	/* queued, not failed, and the reactor answers other work meanwhile */
	assert_int_equal(live_channels("dd2"), 0);
	for (int i = 0; i < 3; i++)
		assert_false(io_done(&q[i]));
	for (int i = 0; i < 3; i++)
		assert_true(io_wait(&q[i]));
	assert_int_equal(live_channels("dd2"), 1);
	for (int i = 0; i < 3; i++) {
		assert_true(do_io(&rq, o, 0, DBK_BDEV_IO_TYPE_READ, &rv, 1, (uint64_t)i, 1));
		assert_memory_equal(r, w[i], sizeof(r));
	}
	close_bdev(o);
	assert_int_equal(delete("dd2"), 0);
	assert_int_equal(dd_live_handles(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_daos_create_failures),
		cmocka_unit_test(test_daos_io_and_teardown),
		cmocka_unit_test(test_daos_channel_connect_failure),
		cmocka_unit_test(test_daos_io_queued_while_connecting),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
