/*
 * Unit tests of the local DFS engine's shared mapping (bdev/daos/engine_local.c,
 * DBK_DFS_LOCAL_MMAP): reads (and with "rw" writes) copied from and to a
 * MAP_SHARED mapping of the file.
 *  - coherent with other descriptors and other processes (their pwrite and
 *    their own mappings): no private cache, never stale data;
 *  - a file shrunk behind the engine's back (SIGBUS in the mapping) still gives
 *    the syscall path's answers (zeros past the end, a write that extends the
 *    file), and the process lives;
 *  - a SIGBUS that is not the engine's still ends the process;
 *  - a hole that cannot be allocated (ENOSPC, a full tmpfs in a private mount
 *    namespace) fails the write with -ENOSPC instead of killing the process.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "bdev/daos/dfs_engine.h"

static const struct dbk_dfs_engine *E = &dbk_dfs_engine_local;

struct done {
	int calls;
	int rc;
};

struct t {
	char root[256];
	char path[512];	/* the data file */
	struct dbk_dfs_pool *pool;
	struct dbk_dfs_cont *cont;
	struct dbk_dfs_fs *fs;
	struct dbk_dfs_file *file;
	struct dbk_dfs_eq *eq;
	struct dbk_dfs_op *op;
	struct done d;
};

static void op_cb(void *arg, int rc)
{
	struct done *d = arg;

	d->calls++;
	d->rc = rc;
}

static int wait_op(struct t *t)
{
	for (int i = 0; i < 100000 && t->d.calls == 0; i++) {
		int n = E->poll(t->eq, 16);
		if (n < 0)
			return n;
		if (t->d.calls == 0)
			usleep(100);
	}
	return t->d.calls == 1 ? t->d.rc : -ETIMEDOUT;
}

static int io(struct t *t, bool write, void *buf, size_t len, uint64_t off)
{
	struct iovec v = {buf, len};
	int rc;

	memset(&t->d, 0, sizeof(t->d));
	rc = write ? E->writev(t->eq, t->file, &v, 1, off, t->op) : E->readv(t->eq, t->file, &v, 1, off, t->op);
	return rc ? rc : wait_op(t);
}

/* Pool, container and file "/m" of size under root (made if needed), opened with DBK_DFS_LOCAL_MMAP=mode. */
static int t_open(struct t *t, const char *root, const char *mode, uint64_t size)
{
	struct dbk_dfs_pool_info pi;
	struct dbk_dfs_cont_info ci;
	struct dbk_dfs_file_opts fo = {.create = true};
	char err[256];

	memset(t, 0, sizeof(*t));
	snprintf(t->root, sizeof(t->root), "%s", root);
	if (dbk_dfs_local_pool_create(root, "mp", NULL, &pi, err, sizeof(err)) ||
	    dbk_dfs_local_cont_create(root, "mp", "mc", NULL, "POSIX", NULL, 0, &ci, err, sizeof(err)))
		return -1;
	snprintf(t->path, sizeof(t->path), "%s/pools/%s/conts/%s/data/m", root, pi.uuid, ci.uuid);
	setenv("DBK_DFS_LOCAL_MMAP", mode, 1);
	if (E->init(root, err, sizeof(err)) || E->pool_connect("mp", &t->pool, err, sizeof(err)) ||
	    E->cont_open(t->pool, "mc", &t->cont, err, sizeof(err)) || E->mount(t->pool, t->cont, &t->fs, err, sizeof(err)))
		return -1;
	/* size the file first, so that it is mapped at open as a bdev's file is */
	{
		int fd = open(t->path, O_RDWR | O_CREAT, 0600);
		if (fd < 0 || ftruncate(fd, (off_t)size) != 0)
			return -1;
		close(fd);
	}
	if (E->file_open(t->fs, "/m", &fo, &t->file, err, sizeof(err)) || E->eq_create(8, &t->eq, err, sizeof(err)))
		return -1;
	unsetenv("DBK_DFS_LOCAL_MMAP");
	t->op = aligned_alloc(16, sizeof(*t->op) + ((E->op_priv_size + 15) & ~(size_t)15));
	if (t->op == NULL)
		return -1;
	t->op->cb = op_cb;
	t->op->cb_arg = &t->d;
	return 0;
}

static void t_close(struct t *t)
{
	free(t->op);
	assert_int_equal(E->eq_destroy(t->eq), 0);
	assert_int_equal(E->file_close(t->file), 0);
	assert_int_equal(E->umount(t->fs), 0);
	assert_int_equal(E->cont_close(t->cont), 0);
	assert_int_equal(E->pool_disconnect(t->pool), 0);
	E->fini();
}

/* Whether this process maps path (/proc/self/maps). */
static bool mapped(const char *path)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[1024];
	bool found = false;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, path))
			found = true;
	fclose(f);
	return found;
}

static char g_root[256];

static int setup(void **state)
{
	(void)state;
	snprintf(g_root, sizeof(g_root), "/tmp/dbk-dfs-map-XXXXXX");
	return mkdtemp(g_root) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_root);
	return system(cmd) == 0 ? 0 : -1;
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(seed * 131 + i * 7 + 1);
}

/* Another process writes through its own mapping, or its own descriptor: the engine reads the new data. */
static void child_write(const char *path, bool via_map, uint64_t off, unsigned seed)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		uint8_t b[4096];
		int fd = open(path, O_RDWR);
		fill(b, sizeof(b), seed);
		if (fd < 0)
			_exit(1);
		if (via_map) {
			char *m = mmap(NULL, off + 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (m == MAP_FAILED)
				_exit(2);
			memcpy(m + off, b, sizeof(b));
		} else if (pwrite(fd, b, sizeof(b), (off_t)off) != (ssize_t)sizeof(b)) {
			_exit(3);
		}
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void coherent(const char *mode)
{
	struct t t;
	static uint8_t w[4096], r[8192], chk[4096];
	int fd;

	assert_int_equal(t_open(&t, g_root, mode, 1 << 20), 0);
	assert_true(mapped(t.path) == (strcmp(mode, "off") != 0));
	fd = open(t.path, O_RDWR);
	assert_true(fd >= 0);
	for (unsigned round = 0; round < 3; round++) {
		uint64_t off = 65536 + round * 4096;

		/* the engine writes, another descriptor reads */
		fill(w, sizeof(w), 10 + round);
		assert_int_equal(io(&t, true, w, sizeof(w), off), 0);
		assert_int_equal(pread(fd, chk, sizeof(chk), (off_t)off), (ssize_t)sizeof(chk));
		assert_memory_equal(chk, w, sizeof(w));
		assert_int_equal(io(&t, false, r, 4096, off), 0);
		assert_memory_equal(r, w, sizeof(w));
		/* another process writes through its mapping, then through pwrite: the engine sees each at once */
		child_write(t.path, true, off, 20 + round);
		fill(w, sizeof(w), 20 + round);
		assert_int_equal(io(&t, false, r, 4096, off), 0);
		assert_memory_equal(r, w, sizeof(w));
		child_write(t.path, false, off, 30 + round);
		fill(w, sizeof(w), 30 + round);
		assert_int_equal(io(&t, false, r, 4096, off), 0);
		assert_memory_equal(r, w, sizeof(w));
	}
	/* an unaligned write and a read across pages */
	memset(w, 0xa5, 1000);
	assert_int_equal(io(&t, true, w, 1000, 4096 + 100), 0);
	assert_int_equal(io(&t, false, r, 8192, 0), 0);
	assert_memory_equal(r + 4096 + 100, w, 1000);
	assert_int_equal(pread(fd, chk, 1000, 4096 + 100), 1000);
	assert_memory_equal(chk, w, 1000);
	/* a read past the end of the file: zeros */
	memset(r, 1, sizeof(r));
	assert_int_equal(io(&t, false, r, 4096, 1 << 20), 0);
	for (size_t i = 0; i < 4096; i++)
		assert_int_equal(r[i], 0);
	/* FLUSH */
	memset(&t.d, 0, sizeof(t.d));
	assert_int_equal(E->flush(t.eq, t.file, t.op), 0);
	assert_int_equal(wait_op(&t), 0);
	close(fd);
	t_close(&t);
}

static void test_map_coherent_read(void **state)
{
	(void)state;
	coherent("read");
}

static void test_map_coherent_rw(void **state)
{
	(void)state;
	coherent("rw");
}

static void test_map_off(void **state)
{
	(void)state;
	coherent("off");
}

/* The file shrinks behind the engine's back: the mapping faults (SIGBUS), the syscall path answers. */
static void test_map_truncated(void **state)
{
	struct t t;
	static uint8_t w[4096], r[4096], chk[4096];
	struct stat st;
	int fd;

	(void)state;
	assert_int_equal(t_open(&t, g_root, "rw", 1 << 20), 0);
	assert_true(mapped(t.path));
	fd = open(t.path, O_RDWR);
	assert_true(fd >= 0);
	fill(w, sizeof(w), 5);
	assert_int_equal(io(&t, true, w, sizeof(w), 512 * 1024), 0);
	assert_int_equal(io(&t, false, r, sizeof(r), 512 * 1024), 0);
	assert_memory_equal(r, w, sizeof(w));
	assert_int_equal(ftruncate(fd, 8192), 0);
	/* pass 0 faults in a read first, pass 1 (after the mapping's rest) in a write first */
	for (int pass = 0; pass < 2; pass++) {
		for (int step = 0; step < 2; step++) {
			if ((step == 0) == (pass == 0)) {
				/* past the new end: zeros, as a read past the end of the file always gives */
				memset(r, 1, sizeof(r));
				assert_int_equal(io(&t, false, r, sizeof(r), 512 * 1024), 0);
				for (size_t i = 0; i < sizeof(r); i++)
					assert_int_equal(r[i], 0);
			} else {
				/* a write there extends the file, as pwrite does */
				fill(w, sizeof(w), 6 + pass);
				assert_int_equal(io(&t, true, w, sizeof(w), 768 * 1024), 0);
				assert_int_equal(fstat(fd, &st), 0);
				assert_int_equal(st.st_size, 768 * 1024 + 4096);
				assert_int_equal(pread(fd, chk, sizeof(chk), 768 * 1024), (ssize_t)sizeof(chk));
				assert_memory_equal(chk, w, sizeof(w));
			}
		}
		assert_int_equal(ftruncate(fd, 8192), 0);
		usleep(150 * 1000); /* past the mapping's rest after the fault */
	}
	/* what is still inside the file reads and writes as before */
	fill(w, sizeof(w), 9);
	assert_int_equal(io(&t, true, w, sizeof(w), 4096), 0);
	assert_int_equal(io(&t, false, r, sizeof(r), 4096), 0);
	assert_memory_equal(r, w, sizeof(w));
	close(fd);
	t_close(&t);
}

/* A SIGBUS outside the engine's copies still ends the process (the handler passes it on). */
static void test_foreign_sigbus(void **state)
{
	pid_t pid;
	int st;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct t t;
		char other[300];
		volatile char *m;
		int fd;

		signal(SIGBUS, SIG_DFL); /* not cmocka's handler (which would carry on with the tests in here) */
		if (t_open(&t, g_root, "read", 1 << 20) != 0)
			_exit(10);
		snprintf(other, sizeof(other), "%s/other", g_root);
		fd = open(other, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || ftruncate(fd, 8192) != 0)
			_exit(11);
		m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED || ftruncate(fd, 0) != 0)
			_exit(12);
		m[4096] = 1; /* past the end of the file: SIGBUS */
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGBUS);
}

/* A hole that cannot be allocated: the write fails with -ENOSPC, the process lives. Needs a private tmpfs. */
static void test_map_enospc(void **state)
{
	pid_t pid;
	int st;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char dir[300];
		static uint8_t w[4096];
		struct t t;
		int rc = 0;

		snprintf(dir, sizeof(dir), "%s/small", g_root);
		if (mkdir(dir, 0700) != 0)
			_exit(20);
		if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
		    mount("dbk-map-test", dir, "tmpfs", 0, "size=256k") != 0)
			_exit(77);
		if (t_open(&t, dir, "rw", 4 << 20) != 0) {
			fprintf(stderr, "t_open on tmpfs: %s\n", strerror(errno));
			_exit(21);
		}
		fill(w, sizeof(w), 3);
		/* fill the holes until the tmpfs is full */
		for (uint64_t off = 0; off < (4 << 20) && rc == 0; off += 4096)
			rc = io(&t, true, w, sizeof(w), off);
		if (rc != -ENOSPC)
			_exit(22);
		/* what was written reads back */
		{
			static uint8_t r[4096];
			if (io(&t, false, r, sizeof(r), 0) != 0 || memcmp(r, w, sizeof(w)) != 0)
				_exit(23);
		}
		t_close(&t);
		umount(dir);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77) {
		printf("test_map_enospc: skipped: cannot mount a tmpfs in a private mount namespace (needs root)\n");
		return;
	}
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_map_coherent_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_coherent_rw, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_sigbus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_enospc, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
