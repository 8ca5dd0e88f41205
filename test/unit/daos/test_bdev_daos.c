/*
 * Unit tests of the DAOS bdev module (bdev/daos/bdev_daos.c) with the local
 * engine on a temporary root, on two real (unpinned) reactors, driven through
 * the bdev_daos_* RPC methods (rpc/rpc_daos.c) called in-process.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "harness.h"

#include "bdev/daos/bdev_daos.h"
#include "bdev/daos/dfs_engine.h"

static char g_root[128];

static int group_setup(void **state)
{
	char err[256];

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
	return harness_start();
}

static int group_teardown(void **state)
{
	(void)state;
	harness_stop();
	rm_tree(g_root);
	return 0;
}

static void bdev_file(const char *name, char *out, size_t len)
{
	struct dbk_dfs_pool_info p;
	struct dbk_dfs_cont_info c;

	assert_int_equal(dbk_dfs_local_pool_query(g_root, "test-pool", &p, NULL, 0), 0);
	assert_int_equal(dbk_dfs_local_cont_query(g_root, "test-pool", "test-cont", &c, NULL, 0), 0);
	snprintf(out, len, "%s/pools/%s/conts/%s/data/%s", g_root, p.uuid, c.uuid, name);
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
	/* a malloc bdev cannot be deleted through bdev_daos_delete, nor resized as a DAOS bdev */
	{
		int code;
		json_t *r = rpc("bdev_malloc_create",
				json_pack("{s:s,s:i,s:i}", "name", "m0", "num_blocks", 64, "block_size", 512), &code,
				msg);
		assert_non_null(r);
		json_decref(r);
		assert_int_equal(delete("m0"), -ENODEV);
		assert_true(bdev_exists("m0"));
		r = rpc("bdev_daos_resize", json_pack("{s:s,s:i}", "name", "m0", "new_size", 1), &code, msg);
		assert_null(r);
		assert_int_equal(code, -ENODEV);
		r = rpc("bdev_malloc_delete", json_pack("{s:s}", "name", "m0"), &code, msg);
		json_decref(r);
		assert_false(bdev_exists("m0"));
	}
}

static void test_pool_cont_by_uuid(void **state)
{
	struct dbk_dfs_pool_info p;
	struct dbk_dfs_cont_info c;
	char msg[512];
	json_t *info, *d;

	(void)state;
	assert_int_equal(dbk_dfs_local_pool_query(g_root, "test-pool", &p, NULL, 0), 0);
	assert_int_equal(dbk_dfs_local_cont_query(g_root, "test-pool", "test-cont", &c, NULL, 0), 0);
	assert_int_equal(create(create_params("byuuid", p.uuid, c.uuid, 512, 128), msg), 0);
	info = bdev_info("byuuid");
	d = json_object_get(json_object_get(info, "driver_specific"), "daos");
	assert_string_equal(json_string_value(json_object_get(d, "pool")), p.uuid);
	assert_string_equal(json_string_value(json_object_get(d, "cont")), c.uuid);
	assert_int_equal(json_integer_value(json_object_get(info, "block_size")), 512);
	json_decref(info);
	assert_int_equal(delete("byuuid"), 0);
	/* the same file by labels: the identity is the file's */
	assert_int_equal(create(create_params("byuuid", "test-pool", "test-cont", 512, 128), msg), 0);
	assert_int_equal(delete("byuuid"), 0);
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

struct two_calls {
	struct rpc_call a, b;
};

static void two_resizes_msg(void *ctx)
{
	struct two_calls *t = ctx;

	dbk_rpc_call_local(t->a.method, t->a.params, rpc_cb, &t->a);
	dbk_rpc_call_local(t->b.method, t->b.params, rpc_cb, &t->b);
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
	/* a second resize while one runs is refused (-EBUSY), the first one goes through */
	{
		struct two_calls t = {.a = {.method = "bdev_daos_resize"}, .b = {.method = "bdev_daos_resize"}};
		t.a.params = json_pack("{s:s,s:i}", "name", "rs", "new_size", 160);
		t.b.params = json_pack("{s:s,s:i}", "name", "rs", "new_size", 144);
		sem_init(&t.a.done, 0, 0);
		sem_init(&t.b.done, 0, 0);
		run_on(0, two_resizes_msg, &t);
		wait_sem(&t.a.done);
		wait_sem(&t.b.done);
		assert_int_equal(t.a.code, 0);
		assert_int_equal(t.b.code, -EBUSY);
		assert_non_null(strstr(t.b.msg, "being resized"));
		json_decref(t.a.result);
		json_decref(t.a.params);
		json_decref(t.b.params);
		sem_destroy(&t.a.done);
		sem_destroy(&t.b.done);
		info = bdev_info("rs");
		assert_int_equal(json_integer_value(json_object_get(info, "num_blocks")), 40960);
		json_decref(info);
		for (int i = 0; i < 200 && atomic_load(&o->resizes) < 2; i++)
			usleep(5000);
		assert_int_equal(atomic_load(&o->resizes), 2);
	}
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
	/* a second later the next I/O tries to connect again: still gone, still -ENOENT */
	usleep(1100 * 1000);
	assert_false(do_io(&q, o, 0, DBK_BDEV_IO_TYPE_READ, &av, 1, 0, 1));
	assert_int_equal(q.err, -ENOENT);
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
		cmocka_unit_test(test_pool_cont_by_uuid),
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
