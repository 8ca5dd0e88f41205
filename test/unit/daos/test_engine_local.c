/*
 * Unit tests of the local DFS engine (bdev/daos/engine_local.c): pools and
 * containers on a temporary root, look-ups by label and UUID, the metadata
 * files, POSIX-only mount, and file I/O through the io_uring event queue and
 * inline (page-cache reads and aligned writes done by the polling thread).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "bdev/daos/dfs_engine.h"

static char g_root[256];
static const struct dbk_dfs_engine *E = &dbk_dfs_engine_local;

static int rm_cmd(const char *path)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	return system(cmd);
}

static int setup(void **state)
{
	(void)state;
	snprintf(g_root, sizeof(g_root), "/tmp/dbk-dfs-test-XXXXXX");
	if (mkdtemp(g_root) == NULL)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rm_cmd(g_root);
	return 0;
}

/* Count entries of dir whose name contains needle. */
static int count_named(const char *dir, const char *needle)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, needle))
			n++;
	closedir(d);
	return n;
}

static void test_pool_create_lookup(void **state)
{
	struct dbk_dfs_pool_info info, q, *list;
	char err[256], upper[37], path[512];
	size_t n;
	json_t *j;
	json_error_t jerr;

	(void)state;
	assert_int_equal(dbk_dfs_local_pool_create(g_root, "pool-a", NULL, &info, err, sizeof(err)), 0);
	assert_string_equal(info.label, "pool-a");
	assert_int_equal(strlen(info.uuid), 36);
	/* same label again: -EEXIST naming the pool */
	assert_int_equal(dbk_dfs_local_pool_create(g_root, "pool-a", NULL, NULL, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "pool-a"));
	/* same uuid with another label: -EEXIST */
	assert_int_equal(dbk_dfs_local_pool_create(g_root, "pool-b", info.uuid, NULL, err, sizeof(err)), -EEXIST);
	/* bad labels */
	assert_int_equal(dbk_dfs_local_pool_create(g_root, "has space", NULL, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "invalid character"));
	assert_int_equal(dbk_dfs_local_pool_create(g_root, info.uuid, NULL, NULL, err, sizeof(err)), -EINVAL);
	{
		char longl[200];
		memset(longl, 'x', 128);
		longl[128] = '\0';
		assert_int_equal(dbk_dfs_local_pool_create(g_root, longl, NULL, NULL, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "127"));
	}
	/* given uuid */
	assert_int_equal(dbk_dfs_local_pool_create(g_root, "pool-b", "6f1d3a3e-1111-4a4a-9b9b-0123456789ab", &q, err,
						   sizeof(err)),
			 0);
	assert_string_equal(q.uuid, "6f1d3a3e-1111-4a4a-9b9b-0123456789ab");

	/* look-ups by label, by uuid, by upper-case uuid */
	assert_int_equal(dbk_dfs_local_pool_query(g_root, "pool-a", &q, err, sizeof(err)), 0);
	assert_string_equal(q.uuid, info.uuid);
	assert_int_equal(dbk_dfs_local_pool_query(g_root, info.uuid, &q, err, sizeof(err)), 0);
	assert_string_equal(q.label, "pool-a");
	for (int i = 0; i < 37; i++)
		upper[i] = (char)(info.uuid[i] >= 'a' && info.uuid[i] <= 'f' ? info.uuid[i] - 32 : info.uuid[i]);
	assert_int_equal(dbk_dfs_local_pool_query(g_root, upper, &q, err, sizeof(err)), 0);
	assert_string_equal(q.label, "pool-a");
	assert_int_equal(dbk_dfs_local_pool_query(g_root, "nope", &q, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "pool 'nope' not found");

	assert_int_equal(dbk_dfs_local_pool_list(g_root, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].label, "pool-a");
	assert_string_equal(list[1].label, "pool-b");
	free(list);

	/* metadata: valid JSON with label/uuid/created, no temporary or half-made entries left */
	snprintf(path, sizeof(path), "%s/pools/%s/pool.json", g_root, info.uuid);
	j = json_load_file(path, 0, &jerr);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "label")), "pool-a");
	assert_string_equal(json_string_value(json_object_get(j, "uuid")), info.uuid);
	assert_true(json_integer_value(json_object_get(j, "created")) > 0);
	json_decref(j);
	snprintf(path, sizeof(path), "%s/pools/%s", g_root, info.uuid);
	assert_int_equal(count_named(path, ".tmp"), 0);
	snprintf(path, sizeof(path), "%s/pools", g_root);
	assert_int_equal(count_named(path, "creating"), 0);

	/* a crash while creating leaves a hidden directory: it is not a pool */
	snprintf(path, sizeof(path), "%s/pools/.0a0a0a0a-1111-4a4a-9b9b-0123456789ab.creating", g_root);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(dbk_dfs_local_pool_list(g_root, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	free(list);

	assert_int_equal(dbk_dfs_local_pool_destroy(g_root, "pool-b", false, err, sizeof(err)), 0);
	assert_int_equal(dbk_dfs_local_pool_destroy(g_root, "pool-b", false, err, sizeof(err)), -ENOENT);
	assert_int_equal(dbk_dfs_local_pool_destroy(g_root, "pool-a", false, err, sizeof(err)), 0);
}

static void test_cont_create_lookup(void **state)
{
	struct dbk_dfs_cont_info c, q, *list;
	char err[256], path[512];
	size_t n;
	json_t *j;
	json_error_t jerr;
	struct dbk_dfs_pool_info p;

	(void)state;
	assert_int_equal(dbk_dfs_local_cont_create(g_root, "nopool", "c", NULL, "POSIX", NULL, 0, NULL, err,
						   sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "pool 'nopool' not found"));
	assert_int_equal(dbk_dfs_local_pool_create(g_root, "p1", NULL, &p, err, sizeof(err)), 0);
	assert_int_equal(dbk_dfs_local_cont_create(g_root, "p1", "c1", NULL, "posix", NULL, 0, &c, err, sizeof(err)),
			 0);
	assert_string_equal(c.type, "POSIX");
	assert_string_equal(c.oclass, "SX");
	assert_int_equal(c.chunk_size, 1048576);
	assert_int_equal(dbk_dfs_local_cont_create(g_root, p.uuid, "c1", NULL, "POSIX", NULL, 0, NULL, err, sizeof(err)),
			 -EEXIST);
	assert_int_equal(dbk_dfs_local_cont_create(g_root, "p1", "c2", NULL, "HDF5", "RP_2G1", 4 << 20, &q, err,
						   sizeof(err)),
			 0);
	assert_string_equal(q.oclass, "RP_2G1");
	assert_int_equal(dbk_dfs_local_cont_create(g_root, "p1", "c3", NULL, "POSIX", "RP_9G9", 0, NULL, err,
						   sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "RP_9G9"));
	assert_int_equal(dbk_dfs_local_cont_create(g_root, "p1", "c3", NULL, "NOTATYPE", NULL, 0, NULL, err,
						   sizeof(err)),
			 -EINVAL);

	assert_int_equal(dbk_dfs_local_cont_query(g_root, "p1", "c1", &q, err, sizeof(err)), 0);
	assert_string_equal(q.uuid, c.uuid);
	assert_int_equal(dbk_dfs_local_cont_query(g_root, p.uuid, c.uuid, &q, err, sizeof(err)), 0);
	assert_string_equal(q.label, "c1");
	assert_int_equal(dbk_dfs_local_cont_query(g_root, "p1", "zz", &q, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "container 'zz' not found in pool 'p1'");

	assert_int_equal(dbk_dfs_local_cont_list(g_root, "p1", &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].label, "c1");
	assert_string_equal(list[1].type, "HDF5");
	free(list);

	snprintf(path, sizeof(path), "%s/pools/%s/conts/%s/cont.json", g_root, p.uuid, c.uuid);
	j = json_load_file(path, 0, &jerr);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "POSIX");
	assert_string_equal(json_string_value(json_object_get(j, "oclass")), "SX");
	assert_int_equal(json_integer_value(json_object_get(j, "chunk_size")), 1048576);
	json_decref(j);

	/* the pool with containers refuses destroy without force */
	assert_int_equal(dbk_dfs_local_pool_destroy(g_root, "p1", false, err, sizeof(err)), -ENOTEMPTY);
	assert_non_null(strstr(err, "2 container"));
	assert_int_equal(dbk_dfs_local_cont_destroy(g_root, "p1", "c2", false, err, sizeof(err)), 0);
	assert_int_equal(dbk_dfs_local_cont_query(g_root, "p1", "c2", &q, err, sizeof(err)), -ENOENT);
	assert_int_equal(dbk_dfs_local_pool_destroy(g_root, "p1", true, err, sizeof(err)), 0);
	assert_int_equal(dbk_dfs_local_pool_query(g_root, "p1", NULL, err, sizeof(err)), -ENOENT);
}

struct done {
	int calls;
	int rc;
};

static void op_cb(void *arg, int rc)
{
	struct done *d = arg;

	d->calls++;
	d->rc = rc;
}

static int wait_op(struct dbk_dfs_eq *eq, struct done *d)
{
	for (int i = 0; i < 100000 && d->calls == 0; i++) {
		int n = E->poll(eq, 16);
		if (n < 0)
			return n;
		if (d->calls == 0)
			usleep(100);
	}
	return d->calls == 1 ? d->rc : -ETIMEDOUT;
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

/* io_uring's io-wq worker threads of this process (named iou-wrk-<tid>). */
static int count_iowq_workers(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		char path[300], comm[64] = "";
		FILE *f;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fgets(comm, sizeof(comm), f) && strncmp(comm, "iou-wrk", 7) == 0)
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

/*
 * Inline I/O: aligned writes and page-cache reads are done by the polling thread (no io-wq worker, which
 * a buffered write through io_uring needs on ext4), their callbacks run from poll() and not before, errors
 * come back the same way; unaligned writes, uncached reads and punches still go through the ring.
 */
static void test_engine_inline_io(void **state)
{
	struct dbk_dfs_pool *pool;
	struct dbk_dfs_cont *cont;
	struct dbk_dfs_fs *fs;
	struct dbk_dfs_file *file;
	struct dbk_dfs_eq *eq;
	struct dbk_dfs_file_opts fo = {.oclass = "SX", .create = true};
	struct done d;
	struct dbk_dfs_op *op;
	char err[256], path[512];
	struct dbk_dfs_pool_info pi;
	struct dbk_dfs_cont_info ci;
	static uint8_t w[64][4096], r[8192], chk[4096];
	struct iovec v;
	int fd;

	(void)state;
	/* Workers left by an earlier test of this process exit after a few seconds idle. */
	for (int i = 0; i < 80 && count_iowq_workers() > 0; i++)
		usleep(100 * 1000);
	assert_int_equal(count_iowq_workers(), 0);

	assert_int_equal(dbk_dfs_local_pool_create(g_root, "inl", NULL, &pi, err, sizeof(err)), 0);
	assert_int_equal(dbk_dfs_local_cont_create(g_root, "inl", "c", NULL, "POSIX", NULL, 0, &ci, err, sizeof(err)),
			 0);
	assert_int_equal(E->init(g_root, err, sizeof(err)), 0);
	assert_int_equal(E->pool_connect("inl", &pool, err, sizeof(err)), 0);
	assert_int_equal(E->cont_open(pool, "c", &cont, err, sizeof(err)), 0);
	assert_int_equal(E->mount(pool, cont, &fs, err, sizeof(err)), 0);
	assert_int_equal(E->file_open(fs, "/d", &fo, &file, err, sizeof(err)), 0);
	assert_int_equal(E->set_size(file, 1 << 20), 0);
	assert_int_equal(E->eq_create(8, &eq, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/pools/%s/conts/%s/data/d", g_root, pi.uuid, ci.uuid);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	op = new_op(&d);

	/* 64 aligned 4 KiB writes, each read back through the engine and through another descriptor */
	for (int i = 0; i < 64; i++) {
		uint64_t off = (uint64_t)((i * 37) % 256) * 4096;
		for (size_t k = 0; k < sizeof(w[i]); k++)
			w[i][k] = (uint8_t)(i * 31 + k * 3 + 1);
		v = (struct iovec){w[i], sizeof(w[i])};
		memset(&d, 0, sizeof(d));
		assert_int_equal(E->writev(eq, file, &v, 1, off, op), 0);
		assert_int_equal(d.calls, 0); /* the callback runs from poll, not from writev */
		assert_int_equal(E->inflight(eq), 1);
		assert_int_equal(wait_op(eq, &d), 0);
		assert_int_equal(pread(fd, chk, sizeof(chk), (off_t)off), (ssize_t)sizeof(chk));
		assert_memory_equal(chk, w[i], sizeof(chk));
		v = (struct iovec){r, 4096};
		memset(r, 0, sizeof(r));
		memset(&d, 0, sizeof(d));
		assert_int_equal(E->readv(eq, file, &v, 1, off, op), 0);
		assert_int_equal(d.calls, 0);
		assert_int_equal(wait_op(eq, &d), 0);
		assert_memory_equal(r, w[i], 4096);
	}
	assert_int_equal(count_iowq_workers(), 0);

	/* an inline write's error comes back through poll: past the largest file size */
	v = (struct iovec){w[0], 4096};
	memset(&d, 0, sizeof(d));
	assert_int_equal(E->writev(eq, file, &v, 1, 1ull << 62, op), 0);
	assert_int_equal(d.calls, 0);
	assert_int_equal(wait_op(eq, &d), -EFBIG);

	/* an unaligned write (through the ring) lands between inline ones */
	{
		uint8_t u[1000];
		memset(u, 0xa5, sizeof(u));
		v = (struct iovec){u, sizeof(u)};
		memset(&d, 0, sizeof(d));
		assert_int_equal(E->writev(eq, file, &v, 1, 4096 + 100, op), 0);
		assert_int_equal(wait_op(eq, &d), 0);
		v = (struct iovec){r, 8192};
		memset(&d, 0, sizeof(d));
		assert_int_equal(E->readv(eq, file, &v, 1, 0, op), 0);
		assert_int_equal(wait_op(eq, &d), 0);
		assert_memory_equal(r + 4096 + 100, u, sizeof(u));
		assert_int_equal(pread(fd, chk, sizeof(chk), 4096), (ssize_t)sizeof(chk));
		assert_memory_equal(r + 4096, chk, sizeof(chk));
	}

	/* a read of data no longer in the page cache (RWF_NOWAIT refuses it) goes through the ring */
	memset(&d, 0, sizeof(d));
	assert_int_equal(E->flush(eq, file, op), 0);
	assert_int_equal(wait_op(eq, &d), 0);
	assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	v = (struct iovec){r, 4096};
	memset(r, 0, sizeof(r));
	memset(&d, 0, sizeof(d));
	assert_int_equal(E->readv(eq, file, &v, 1, (uint64_t)((63 * 37) % 256) * 4096, op), 0);
	assert_int_equal(wait_op(eq, &d), 0);
	assert_memory_equal(r, w[63], 4096);

	/* punch, then an aligned write over part of the hole */
	memset(&d, 0, sizeof(d));
	assert_int_equal(E->punch_async(eq, file, 0, 1 << 20, op), 0);
	assert_int_equal(wait_op(eq, &d), 0);
	v = (struct iovec){w[5], 4096};
	memset(&d, 0, sizeof(d));
	assert_int_equal(E->writev(eq, file, &v, 1, 8192, op), 0);
	assert_int_equal(wait_op(eq, &d), 0);
	assert_int_equal(pread(fd, r, 8192, 4096), 8192);
	for (int k = 0; k < 4096; k++)
		assert_int_equal(r[k], 0);
	assert_memory_equal(r + 4096, w[5], 4096);

	close(fd);
	free(op);
	assert_int_equal(E->eq_destroy(eq), 0);
	assert_int_equal(E->file_close(file), 0);
	assert_int_equal(E->umount(fs), 0);
	assert_int_equal(E->cont_close(cont), 0);
	assert_int_equal(E->pool_disconnect(pool), 0);
	E->fini();
}

static void test_engine_io(void **state)
{
	struct dbk_dfs_pool *pool;
	struct dbk_dfs_cont *cont, *cont2;
	struct dbk_dfs_fs *fs;
	struct dbk_dfs_file *file;
	struct dbk_dfs_eq *eq;
	struct dbk_dfs_file_opts fo = {.oclass = "SX", .chunk_size = 0, .create = true};
	struct dbk_dfs_file_opts noc = {.create = false};
	struct dbk_dfs_file_info *files;
	struct done d;
	struct dbk_dfs_op *op;
	char err[256];
	uint8_t a[8192], b[4096], r1[6000], r2[6288];
	struct iovec wv[2], rv[2];
	uint64_t size;
	size_t n, len;
	char xv[64];

	(void)state;
	assert_int_equal(dbk_dfs_local_pool_create(g_root, "iop", NULL, NULL, err, sizeof(err)), 0);
	assert_int_equal(dbk_dfs_local_cont_create(g_root, "iop", "posix", NULL, "POSIX", NULL, 0, NULL, err,
						   sizeof(err)),
			 0);
	assert_int_equal(dbk_dfs_local_cont_create(g_root, "iop", "h5", NULL, "HDF5", NULL, 0, NULL, err, sizeof(err)),
			 0);

	/* not initialised */
	assert_int_equal(E->pool_connect("iop", &pool, err, sizeof(err)), -EINVAL);
	assert_int_equal(E->init(g_root, err, sizeof(err)), 0);
	assert_int_equal(E->init(g_root, err, sizeof(err)), 0); /* reference counted */
	assert_int_equal(E->init("/elsewhere", err, sizeof(err)), -EBUSY);
	E->fini();

	assert_int_equal(E->pool_connect("missing", &pool, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "pool 'missing' not found");
	assert_int_equal(E->pool_connect("iop", &pool, err, sizeof(err)), 0);
	assert_int_equal(E->cont_open(pool, "missing", &cont, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "container 'missing' not found in pool 'iop'");
	/* HDF5 containers do not mount */
	assert_int_equal(E->cont_open(pool, "h5", &cont2, err, sizeof(err)), 0);
	assert_int_equal(E->mount(pool, cont2, &fs, err, sizeof(err)), -ENOTSUP);
	assert_string_equal(err, "container 'h5' is type 'HDF5', not POSIX");
	E->cont_close(cont2);

	assert_int_equal(E->cont_open(pool, "posix", &cont, err, sizeof(err)), 0);
	assert_int_equal(E->mount(pool, cont, &fs, err, sizeof(err)), 0);
	assert_int_equal(E->file_open(fs, "/disk0", &noc, &file, err, sizeof(err)), -ENOENT);
	assert_int_equal(E->file_open(fs, "/../x", &fo, &file, err, sizeof(err)), -EINVAL);
	assert_int_equal(E->file_open(fs, "/a/b", &fo, &file, err, sizeof(err)), -EINVAL);
	assert_int_equal(E->file_open(fs, "/disk0", &fo, &file, err, sizeof(err)), 0);
	assert_int_equal(E->eq_create(4, &eq, err, sizeof(err)), 0);

	assert_int_equal(E->get_size(file, &size), 0);
	assert_int_equal(size, 0);
	assert_int_equal(E->set_size(file, 1 << 20), 0);
	assert_int_equal(E->get_size(file, &size), 0);
	assert_int_equal(size, 1 << 20);

	/* write 12 KiB from two iovecs at 4096, read back with a different split */
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)(i * 13 + 5);
	wv[0] = (struct iovec){a, sizeof(a)};
	wv[1] = (struct iovec){b, sizeof(b)};
	op = new_op(&d);
	assert_int_equal(E->writev(eq, file, wv, 2, 4096, op), 0);
	assert_int_equal(E->inflight(eq), 1);
	assert_int_equal(wait_op(eq, &d), 0);
	assert_int_equal(E->inflight(eq), 0);
	rv[0] = (struct iovec){r1, sizeof(r1)};
	rv[1] = (struct iovec){r2, sizeof(r2)};
	memset(&d, 0, sizeof(d));
	assert_int_equal(E->readv(eq, file, rv, 2, 4096, op), 0);
	assert_int_equal(wait_op(eq, &d), 0);
	assert_memory_equal(r1, a, sizeof(r1));
	assert_memory_equal(r2, a + sizeof(r1), sizeof(a) - sizeof(r1));
	assert_memory_equal(r2 + (sizeof(a) - sizeof(r1)), b, sizeof(b));

	/* never-written range reads zeros */
	memset(r1, 0xee, sizeof(r1));
	memset(&d, 0, sizeof(d));
	assert_int_equal(E->readv(eq, file, rv, 1, 512 * 1024, op), 0);
	assert_int_equal(wait_op(eq, &d), 0);
	for (size_t i = 0; i < sizeof(r1); i++)
		assert_int_equal(r1[i], 0);

	/* a read crossing the end of the file: data then zeros (short read zero-filled) */
	memset(r1, 0xee, sizeof(r1));
	memset(&d, 0, sizeof(d));
	{
		uint8_t tail[100];
		struct iovec tv = {tail, sizeof(tail)};
		memset(tail, 0x5a, sizeof(tail));
		assert_int_equal(E->writev(eq, file, &tv, 1, (1 << 20) - 100, op), 0);
		assert_int_equal(wait_op(eq, &d), 0);
		memset(&d, 0, sizeof(d));
		assert_int_equal(E->readv(eq, file, rv, 1, (1 << 20) - 100, op), 0);
		assert_int_equal(wait_op(eq, &d), 0);
		assert_memory_equal(r1, tail, 100);
		for (size_t i = 100; i < sizeof(r1); i++)
			assert_int_equal(r1[i], 0);
	}

	/* punch through the ring: the range reads zeros, the size stays */
	memset(&d, 0, sizeof(d));
	assert_int_equal(E->punch_async(eq, file, 8192, 4096, op), 0);
	assert_int_equal(wait_op(eq, &d), 0);
	memset(&d, 0, sizeof(d));
	rv[0] = (struct iovec){r2, sizeof(r2)};
	assert_int_equal(E->readv(eq, file, rv, 1, 4096, op), 0);
	assert_int_equal(wait_op(eq, &d), 0);
	assert_memory_equal(r2, a, 4096);
	for (size_t i = 4096; i < sizeof(r2); i++)
		assert_int_equal(r2[i], 0);
	/* blocking punch */
	assert_int_equal(E->punch(file, 4096, 4096), 0);
	memset(&d, 0, sizeof(d));
	assert_int_equal(E->readv(eq, file, rv, 1, 4096, op), 0);
	assert_int_equal(wait_op(eq, &d), 0);
	for (size_t i = 0; i < sizeof(r2); i++)
		assert_int_equal(r2[i], 0);
	assert_int_equal(E->get_size(file, &size), 0);
	assert_int_equal(size, 1 << 20);

	/* flush (fdatasync through the ring) */
	memset(&d, 0, sizeof(d));
	assert_int_equal(E->flush(eq, file, op), 0);
	assert_int_equal(wait_op(eq, &d), 0);

	/* queue depth: the fifth operation in flight is refused with -EAGAIN */
	{
		struct done dd[5];
		struct dbk_dfs_op *ops[5];
		struct iovec one = {a, 512};
		int queued = 0;
		for (int i = 0; i < 5; i++) {
			ops[i] = new_op(&dd[i]);
			int rc = E->writev(eq, file, &one, 1, (uint64_t)i * 512, ops[i]);
			if (i < 4)
				assert_int_equal(rc, 0);
			else
				assert_int_equal(rc, -EAGAIN);
			queued += rc == 0;
		}
		assert_int_equal(E->eq_destroy(eq), -EBUSY);
		for (int i = 0; i < 4; i++)
			assert_int_equal(wait_op(eq, &dd[i]), 0);
		for (int i = 0; i < 5; i++)
			free(ops[i]);
		assert_int_equal(queued, 4);
	}
	/* too many iovecs */
	{
		struct iovec many[DBK_DFS_MAX_IOV + 1];
		for (int i = 0; i <= DBK_DFS_MAX_IOV; i++)
			many[i] = (struct iovec){a, 8};
		assert_int_equal(E->writev(eq, file, many, DBK_DFS_MAX_IOV + 1, 0, op), -EINVAL);
	}

	/* xattrs */
	len = sizeof(xv);
	assert_int_equal(E->getxattr(file, "user.daosblk.uuid", xv, &len), -ENODATA);
	assert_int_equal(E->setxattr(file, "user.daosblk.uuid", "0123", 4), 0);
	len = sizeof(xv);
	assert_int_equal(E->getxattr(file, "user.daosblk.uuid", xv, &len), 0);
	assert_int_equal(len, 4);
	assert_memory_equal(xv, "0123", 4);
	len = 2;
	assert_int_equal(E->getxattr(file, "user.daosblk.uuid", xv, &len), -ERANGE);

	/* without user xattrs in the file system: a sidecar json in the container, same behaviour */
	setenv("DBK_DFS_LOCAL_NO_XATTR", "1", 1);
	len = sizeof(xv);
	assert_int_equal(E->getxattr(file, "user.daosblk.block_size", xv, &len), -ENODATA);
	assert_int_equal(E->setxattr(file, "user.daosblk.block_size", "4096", 4), 0);
	assert_int_equal(E->setxattr(file, "user.daosblk.num_blocks", "\x00\xff", 2), 0);
	len = sizeof(xv);
	assert_int_equal(E->getxattr(file, "user.daosblk.block_size", xv, &len), 0);
	assert_int_equal(len, 4);
	assert_memory_equal(xv, "4096", 4);
	len = sizeof(xv);
	assert_int_equal(E->getxattr(file, "user.daosblk.num_blocks", xv, &len), 0);
	assert_int_equal(len, 2);
	assert_memory_equal(xv, "\x00\xff", 2);
	len = 1;
	assert_int_equal(E->getxattr(file, "user.daosblk.block_size", xv, &len), -ERANGE);
	unsetenv("DBK_DFS_LOCAL_NO_XATTR");
	{
		char sc[512];
		struct stat st;
		struct dbk_dfs_pool_info pi;
		struct dbk_dfs_cont_info ci;
		assert_int_equal(dbk_dfs_local_pool_query(g_root, "iop", &pi, NULL, 0), 0);
		assert_int_equal(dbk_dfs_local_cont_query(g_root, "iop", "posix", &ci, NULL, 0), 0);
		snprintf(sc, sizeof(sc), "%s/pools/%s/conts/%s/xattrs/disk0.json", g_root, pi.uuid, ci.uuid);
		assert_int_equal(stat(sc, &st), 0);
	}
	/* with xattrs back, values only in the sidecar are still found */
	len = sizeof(xv);
	assert_int_equal(E->getxattr(file, "user.daosblk.block_size", xv, &len), 0);
	assert_memory_equal(xv, "4096", 4);

	assert_int_equal(E->eq_destroy(eq), 0);
	assert_int_equal(E->file_close(file), 0);
	assert_int_equal(E->umount(fs), 0);
	assert_int_equal(E->cont_close(cont), 0);
	assert_int_equal(E->pool_disconnect(pool), 0);
	E->fini();

	/* the file shows in ls with its size; the container refuses destroy without force */
	assert_int_equal(dbk_dfs_local_ls(g_root, "iop", "posix", &files, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_string_equal(files[0].name, "disk0");
	assert_int_equal(files[0].size, 1 << 20);
	free(files);
	assert_int_equal(dbk_dfs_local_cont_destroy(g_root, "iop", "posix", false, err, sizeof(err)), -ENOTEMPTY);
	assert_int_equal(dbk_dfs_local_cont_destroy(g_root, "iop", "posix", true, err, sizeof(err)), 0);
	free(op);
}

static void test_oclass_table(void **state)
{
	const char *ok[] = {"S1", "S2", "S4", "S8", "S16", "S32", "SX", "RP_2G1", "RP_2G2", "RP_2GX", "RP_3G1",
			    "RP_3GX", "EC_2P1G1", "EC_4P2G1", "EC_4P2G2", "EC_8P2G1", "EC_16P2G1", "EC_4P2GX",
			    "EC_16P2GX", "RP_128G1"};
	const char *bad[] = {"", "sx", "S3", "RP_1G1", "RP_2G3", "EC_3P1G1", "EC_4P2", "SXX", "RP_12G2"};
	size_t n = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_true(dbk_dfs_oclass_valid(ok[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(dbk_dfs_oclass_valid(bad[i]));
	assert_false(dbk_dfs_oclass_valid(NULL));
	while (dbk_dfs_oclass_at(n))
		n++;
	assert_true(n > 100);
	assert_non_null(dbk_dfs_engine_get("local"));
	assert_null(dbk_dfs_engine_get("nfs"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pool_create_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cont_create_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_engine_inline_io, setup, teardown),
		cmocka_unit_test_setup_teardown(test_engine_io, setup, teardown),
		cmocka_unit_test(test_oclass_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
