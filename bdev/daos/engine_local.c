/*
 * The local DFS engine: a DFS-like pool/container/file store on a local file
 * system, the default engine of the DAOS bdev module.
 *
 *   <root>/pools/<pool-uuid>/pool.json               {label, uuid, created}
 *   <root>/pools/<pool-uuid>/conts/<cont-uuid>/cont.json   {label, uuid, type, oclass, chunk_size, created}
 *   <root>/pools/<pool-uuid>/conts/<cont-uuid>/data/      the container's namespace (sparse files)
 *   <root>/pools/<pool-uuid>/conts/<cont-uuid>/xattrs/    sidecar xattrs when the file system has none
 *
 * Metadata files are written crash-safely (temporary file, fsync, rename,
 * fsync of the directory); pools and containers appear and disappear with one
 * rename, so a crash never leaves a half-made pool visible. Each event queue is
 * an io_uring instance for fsync, fallocate and the reads and writes that do
 * not run inline (below).
 *
 * Inline I/O. Page-cache reads and writes are done by the polling thread
 * itself, in the submitting call, and their callbacks run from the next poll():
 *  - a read is a copy from a shared mapping of the file (the page cache's own
 *    pages: no syscall; see "the mapping" below), or where the mapping cannot
 *    serve it, preadv2(RWF_NOWAIT): data in the page cache is copied at once;
 *    if any of it would need the disk (EAGAIN) the read goes through the ring.
 *    Two copies through the mapping that waited (MAP_SLOW_NS: a page read
 *    from the disk, a lock), fewer than MAP_SLOW_WINDOW copies apart, rest
 *    the mapping for BACKOFF_NS, twice as
 *    long each time the next try comes within one rest (up to
 *    MAP_REST_MAX_NS), so a cold page cache costs the polling thread a couple
 *    of blocking faults every few seconds, not one per read.
 *  - a write is a copy into the mapping too (DBK_DFS_LOCAL_MMAP=read: not).
 *    The mapping and the descriptor are MADV_RANDOM / POSIX_FADV_RANDOM, so
 *    the pages it faults in are 4 KiB folios (see map_open): a write fault
 *    marks its whole folio dirty, and in a large folio (ext4 builds them
 *    from read-ahead and large writes) a 4 KiB write would make writeback and
 *    the fdatasync of a FLUSH write the whole folio.
 *  - otherwise a write whose offset and length are multiples of the file's
 *    block and page size (so the kernel never reads a block to merge it) is a
 *    plain pwritev into the page cache. ext4 cannot do buffered writes without
 *    blocking (RWF_NOWAIT: EOPNOTSUPP), so io_uring hands every one of them to
 *    an io-wq worker thread, which on a small machine competes for the core
 *    with the polling thread: measured on ext4, every write went to a worker
 *    and 4K random writes ran at a fraction of the target's other bdevs. A
 *    write into the page cache returns in microseconds unless the kernel
 *    throttles dirty pages or the inode is locked; so writes go through the
 *    ring while a punch (fallocate) of this queue is in flight, and for
 *    BACKOFF_NS after an inline write that took longer than SLOW_NS.
 * Durability is the same either way: a completed write is in the page cache
 * (written through a descriptor or the mapping, the same pages), and flush() is
 * fdatasync, which writes back pages dirtied through any mapping.
 *
 * Locks (advisory, flock(2)): <root>/.lock, exclusive, serialises creates and
 * destroys across processes. Every open file holds a shared lock on itself
 * while open (a DAOS bdev keeps its file open while it exists), so
 * dbk_dfs_local_file_remove (daosblk-dfs rm), which needs an exclusive one,
 * refuses a file a running target uses.
 */
#include "bdev/daos/dfs_engine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/falloc.h>
#include <liburing.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <uuid/uuid.h>
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

/* ------------------------------------------------------------------ handles */

struct dbk_dfs_pool {
	char dir[PATH_MAX];
	struct dbk_dfs_pool_info info;
};

struct dbk_dfs_cont {
	char dir[PATH_MAX];
	char pool_label[DBK_DFS_LABEL_MAX + 1];
	struct dbk_dfs_cont_info info;
};

struct dbk_dfs_fs {
	int datafd;
	char xattr_dir[PATH_MAX];
};

struct dbk_dfs_file {
	int fd;
	uint32_t inline_align;	/* writes aligned to this go inline (block and page size); 0: never */
	bool map_writes;	/* writes go through the mapping too (DBK_DFS_LOCAL_MMAP) */
	char *map;		/* shared mapping of the file (map_reserve bytes), NULL: none */
	uint64_t map_reserve;	/* bytes mapped: the file's size at open and room to grow */
	uint64_t map_len;	/* bytes of the mapping inside the file (its size, page-aligned down) */
	uint64_t map_page;	/* the page size */
	uint64_t map_checked_ns;	/* when map_len was last refreshed from fstat (by I/O beyond it) */
	int map_failed;		/* an I/O on the file failed with EIO/EROFS: the mapping serves nothing more (atomic) */
	char name[256];
	char sidecar[PATH_MAX];	/* xattr sidecar json, used when the file system lacks user xattrs */
};

struct dbk_dfs_eq {
	struct io_uring ring;
	uint32_t depth;
	uint32_t inflight;		/* in the ring and completed inline, callbacks not yet run */
	uint32_t punches;		/* fallocates in the ring: writes go through the ring meanwhile */
	bool inline_reads;		/* false once the file system refused RWF_NOWAIT */
	uint64_t ring_writes_until;	/* CLOCK_MONOTONIC ns: writes go through the ring until then */
	uint64_t map_until;		/* CLOCK_MONOTONIC ns: no I/O through the mapping until then */
	uint32_t map_slow;		/* copies through the mapping slower than MAP_SLOW_NS, fewer than
					   MAP_SLOW_WINDOW fast ones apart */
	uint32_t map_fast;		/* fast copies since the last slow one */
	uint64_t map_rest_ns;		/* length of the mapping's last rest */
	struct dbk_dfs_op *done_head;	/* completed inline; callbacks run from poll() */
	struct dbk_dfs_op **done_tail;
};

/* An inline write slower than this (throttled, or waiting for the inode) sends writes to the ring for BACKOFF_NS. */
#define SLOW_NS (4ull * 1000 * 1000)
#define BACKOFF_NS (100ull * 1000 * 1000)
/*
 * A copy through the mapping slower than this waited for something (a page read from the disk, the
 * inode's invalidate lock, dirty throttling): no copies through the mapping for BACKOFF_NS. A 4 KiB
 * copy takes about a microsecond, with a minor fault a few; an SSD read takes 50-100 us.
 */
#define MAP_SLOW_NS (50ull * 1000)
/* ... plus this per page copied: a first write to a page faults (page_mkwrite, a few us on a 4 KiB folio). */
#define MAP_SLOW_PAGE_NS (10ull * 1000)
#define MAP_SLOW_RUN 2
#define MAP_SLOW_WINDOW 64
/* Rests that follow each other double, from BACKOFF_NS up to this. */
#define MAP_REST_MAX_NS (32 * BACKOFF_NS)
/* How often I/O beyond map_len may look at the file's size again (another process or handle grew it). */
#define MAP_RECHECK_NS (1000ull * 1000 * 1000)

enum lop_kind { LOP_READ, LOP_WRITE, LOP_FSYNC, LOP_PUNCH };

#define LOP_REM_IOV 16

/* Private part of struct dbk_dfs_op. */
struct lop {
	enum lop_kind kind;
	int fd;
	struct dbk_dfs_file *file;
	const struct iovec *iov;
	int iovcnt;
	int nrem;
	uint64_t off, done, total;
	struct dbk_dfs_op *next;	/* done list link */
	int res;			/* result of an inline read or write */
	struct iovec rem[LOP_REM_IOV];
};

static struct lop *lop_of(struct dbk_dfs_op *op)
{
	return (struct lop *)op->priv;
}

/* -------------------------------------------------------------- global init */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_refs;
static char g_root[PATH_MAX];

static int local_init(const char *root, char *err, size_t errlen)
{
	int rc = 0;

	if (root == NULL || root[0] == '\0')
		root = DBK_DFS_DEFAULT_ROOT;
	if (strlen(root) >= sizeof(g_root) - 128)
		return dbk_dfs_fail(err, errlen, -ENAMETOOLONG, "root directory '%s' is too long", root);
	pthread_mutex_lock(&g_lock);
	if (g_refs > 0 && strcmp(g_root, root) != 0) {
		rc = dbk_dfs_fail(err, errlen, -EBUSY, "local engine already in use with root '%s'", g_root);
	} else {
		snprintf(g_root, sizeof(g_root), "%s", root);
		g_refs++;
	}
	pthread_mutex_unlock(&g_lock);
	return rc;
}

static void local_fini(void)
{
	pthread_mutex_lock(&g_lock);
	if (g_refs > 0)
		g_refs--;
	pthread_mutex_unlock(&g_lock);
}

static int current_root(char *out, size_t len, char *err, size_t errlen)
{
	int rc = 0;

	pthread_mutex_lock(&g_lock);
	if (g_refs == 0)
		rc = dbk_dfs_fail(err, errlen, -EINVAL, "local DFS engine not initialised");
	else
		snprintf(out, len, "%s", g_root);
	pthread_mutex_unlock(&g_lock);
	return rc;
}

/* --------------------------------------------------------------- utilities */

static bool is_uuid(const char *s, char out[37])
{
	uuid_t u;

	if (s == NULL || strlen(s) != 36 || uuid_parse(s, u) != 0)
		return false;
	if (out)
		uuid_unparse_lower(u, out);
	return true;
}

int dbk_dfs_label_check(const char *what, const char *label, char *err, size_t errlen)
{
	size_t n = label ? strlen(label) : 0;

	if (n == 0)
		return dbk_dfs_fail(err, errlen, -EINVAL, "%s label must not be empty", what);
	if (n > DBK_DFS_LABEL_MAX)
		return dbk_dfs_fail(err, errlen, -EINVAL, "%s label '%.32s...' is longer than %d characters", what,
				    label, DBK_DFS_LABEL_MAX);
	for (size_t i = 0; i < n; i++) {
		char c = label[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '.' || c == ':' || c == '-'))
			return dbk_dfs_fail(err, errlen, -EINVAL,
					    "%s label '%s' has an invalid character '%c' (allowed: A-Z a-z 0-9 _ . : -)",
					    what, label, c);
	}
	if (is_uuid(label, NULL))
		return dbk_dfs_fail(err, errlen, -EINVAL, "%s label '%s' must not be a UUID", what, label);
	return 0;
}

static int join(char *out, size_t len, const char *a, const char *b)
{
	int n = snprintf(out, len, "%s/%s", a, b);

	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(tmp, mode) != 0 && errno != EEXIST)
				return -errno;
			*p = '/';
		}
	}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Write obj to dir/name crash-safely: temporary file, fsync, rename, fsync dir. */
static int write_json_atomic(const char *dir, const char *name, json_t *obj)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	char *text;
	size_t len, off = 0;
	int fd, rc = 0;

	if (snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.%d", dir, name, (int)getpid()) >= (int)sizeof(tmp) ||
	    join(dst, sizeof(dst), dir, name) != 0)
		return -ENAMETOOLONG;
	text = json_dumps(obj, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (text == NULL)
		return -ENOMEM;
	len = strlen(text);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		off += (size_t)w;
	}
	if (rc == 0 && write(fd, "\n", 1) != 1)
		rc = -EIO;
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, dst) != 0)
		rc = -errno;
	if (rc == 0)
		rc = fsync_dir(dir);
	if (rc != 0)
		unlink(tmp);
out:
	free(text);
	return rc;
}

static json_t *read_json(const char *dir, const char *name)
{
	char path[PATH_MAX];
	json_error_t jerr;

	if (join(path, sizeof(path), dir, name) != 0)
		return NULL;
	return json_load_file(path, 0, &jerr);
}

static void copy_str(char *dst, size_t len, json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	snprintf(dst, len, "%s", s ? s : "");
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		return rmdir(path) == 0 ? 0 : -1;
	return unlink(path) == 0 ? 0 : -1;
}

static int rm_rf(const char *path)
{
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -errno;
}

/* Exclusive lock on <root>/.lock for creates and destroys (across processes). */
static int lock_root(const char *root, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int fd, rc;

	if (join(path, sizeof(path), root, ".lock") != 0)
		return dbk_dfs_fail(err, errlen, -ENAMETOOLONG, "root path too long");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		return dbk_dfs_fail(err, errlen, rc, "cannot open lock file %s: %s", path, strerror(-rc));
	}
	while (flock(fd, LOCK_EX) != 0) {
		if (errno == EINTR)
			continue;
		rc = -errno;
		close(fd);
		return dbk_dfs_fail(err, errlen, rc, "cannot lock %s: %s", path, strerror(-rc));
	}
	return fd;
}

static void unlock_root(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* ------------------------------------------------------------------- pools */

static int pool_info_load(const char *dir, struct dbk_dfs_pool_info *info)
{
	json_t *j = read_json(dir, "pool.json");
	char conts[PATH_MAX];
	DIR *d;
	struct dirent *e;

	if (j == NULL)
		return -ENOENT;
	memset(info, 0, sizeof(*info));
	copy_str(info->label, sizeof(info->label), j, "label");
	copy_str(info->uuid, sizeof(info->uuid), j, "uuid");
	info->created = json_integer_value(json_object_get(j, "created"));
	json_decref(j);
	if (join(conts, sizeof(conts), dir, "conts") == 0 && (d = opendir(conts)) != NULL) {
		while ((e = readdir(d)) != NULL)
			if (e->d_name[0] != '.')
				info->num_conts++;
		closedir(d);
	}
	return 0;
}

static int pools_dir(const char *root, char *out, size_t len)
{
	return join(out, len, root, "pools");
}

/* Find a pool by label or UUID: fills dir and info. -ENOENT with message. */
static int pool_find(const char *root, const char *pool, char *dir, size_t dirlen, struct dbk_dfs_pool_info *info,
		     char *err, size_t errlen)
{
	char pdir[PATH_MAX], u[37];
	DIR *d;
	struct dirent *e;
	int rc = -ENOENT;

	if (pool == NULL || pool[0] == '\0')
		return dbk_dfs_fail(err, errlen, -EINVAL, "pool label or UUID must not be empty");
	if (strlen(pool) > DBK_DFS_LABEL_MAX)
		return dbk_dfs_fail(err, errlen, -EINVAL, "pool label '%.32s...' is longer than %d characters", pool,
				    DBK_DFS_LABEL_MAX);
	if (pools_dir(root, pdir, sizeof(pdir)) != 0)
		return dbk_dfs_fail(err, errlen, -ENAMETOOLONG, "root path too long");
	if (is_uuid(pool, u)) {
		if (join(dir, dirlen, pdir, u) == 0 && pool_info_load(dir, info) == 0)
			return 0;
		return dbk_dfs_fail(err, errlen, -ENOENT, "pool '%s' not found", pool);
	}
	d = opendir(pdir);
	if (d == NULL) {
		if (errno == EACCES)
			return dbk_dfs_fail(err, errlen, -EACCES, "pool '%s': permission denied reading %s", pool, pdir);
		return dbk_dfs_fail(err, errlen, -ENOENT, "pool '%s' not found (no pools under %s)", pool, root);
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (join(dir, dirlen, pdir, e->d_name) != 0 || pool_info_load(dir, info) != 0)
			continue;
		if (strcmp(info->label, pool) == 0) {
			rc = 0;
			break;
		}
	}
	closedir(d);
	if (rc != 0)
		return dbk_dfs_fail(err, errlen, -ENOENT, "pool '%s' not found", pool);
	return 0;
}

static void now_created(json_t *j)
{
	json_object_set_new(j, "created", json_integer((json_int_t)time(NULL)));
}

/* The UUID given (validated, lower case) or a new one. */
static int uuid_or_new(const char *uuid, char u[37], char *err, size_t errlen)
{
	uuid_t g;

	if (uuid) {
		if (!is_uuid(uuid, u))
			return dbk_dfs_fail(err, errlen, -EINVAL, "'%s' is not a UUID", uuid);
		return 0;
	}
	uuid_generate(g);
	uuid_unparse_lower(g, u);
	return 0;
}

/*
 * Crash-safe publication of a pool or container directory built in tmpdir:
 * its metadata file ("pool.json" / "container" -> "cont.json") is written
 * atomically, tmpdir is renamed to dir, and parent is fsynced. Takes meta.
 */
static int publish_dir(const char *tmpdir, const char *dir, const char *parent, const char *what, json_t *meta,
		       char *err, size_t errlen)
{
	int rc;

	now_created(meta);
	rc = write_json_atomic(tmpdir, strcmp(what, "pool") == 0 ? "pool.json" : "cont.json", meta);
	json_decref(meta);
	if (rc)
		return dbk_dfs_fail(err, errlen, rc, "cannot write %s metadata: %s", what, strerror(-rc));
	if (rename(tmpdir, dir) != 0) {
		rc = -errno;
		return dbk_dfs_fail(err, errlen, rc, "cannot create %s directory %s: %s", what, dir, strerror(-rc));
	}
	fsync_dir(parent);
	return 0;
}

int dbk_dfs_local_pool_create(const char *root, const char *label, const char *uuid, struct dbk_dfs_pool_info *out,
			      char *err, size_t errlen)
{
	char pdir[PATH_MAX], tmpdir[PATH_MAX], dir[PATH_MAX], sub[PATH_MAX], u[37], found[PATH_MAX];
	struct dbk_dfs_pool_info info;
	int lk, rc;

	rc = dbk_dfs_label_check("pool", label, err, errlen);
	if (rc)
		return rc;
	rc = uuid_or_new(uuid, u, err, errlen);
	if (rc)
		return rc;
	if (pools_dir(root, pdir, sizeof(pdir)) != 0)
		return dbk_dfs_fail(err, errlen, -ENAMETOOLONG, "root path too long");
	rc = mkdir_p(pdir, 0755);
	if (rc)
		return dbk_dfs_fail(err, errlen, rc, "cannot create %s: %s", pdir, strerror(-rc));
	lk = lock_root(root, err, errlen);
	if (lk < 0)
		return lk;
	if (pool_find(root, label, found, sizeof(found), &info, NULL, 0) == 0) {
		rc = dbk_dfs_fail(err, errlen, -EEXIST, "pool '%s' already exists (uuid %s)", label, info.uuid);
		goto out;
	}
	if (pool_find(root, u, found, sizeof(found), &info, NULL, 0) == 0) {
		rc = dbk_dfs_fail(err, errlen, -EEXIST, "a pool with uuid %s already exists ('%s')", u, info.label);
		goto out;
	}
	if ((size_t)snprintf(tmpdir, sizeof(tmpdir), "%s/.%s.creating", pdir, u) >= sizeof(tmpdir) ||
	    join(dir, sizeof(dir), pdir, u) != 0 || join(sub, sizeof(sub), tmpdir, "conts") != 0) {
		rc = dbk_dfs_fail(err, errlen, -ENAMETOOLONG, "root path too long");
		goto out;
	}
	rm_rf(tmpdir); /* leftover of a crash */
	if (mkdir(tmpdir, 0755) != 0 || mkdir(sub, 0755) != 0) {
		rc = -errno;
		dbk_dfs_fail(err, errlen, rc, "cannot create pool directory %s: %s", tmpdir, strerror(-rc));
		goto cleanup;
	}
	rc = publish_dir(tmpdir, dir, pdir, "pool", json_pack("{s:s,s:s}", "label", label, "uuid", u), err, errlen);
	if (rc)
		goto cleanup;
	if (out)
		pool_info_load(dir, out);
	goto out;
cleanup:
	rm_rf(tmpdir);
out:
	unlock_root(lk);
	return rc;
}

static int cmp_pool(const void *a, const void *b)
{
	return strcmp(((const struct dbk_dfs_pool_info *)a)->label, ((const struct dbk_dfs_pool_info *)b)->label);
}

int dbk_dfs_local_pool_list(const char *root, struct dbk_dfs_pool_info **infos, size_t *count, char *err,
			    size_t errlen)
{
	char pdir[PATH_MAX], dir[PATH_MAX];
	struct dbk_dfs_pool_info *arr = NULL;
	size_t n = 0, cap = 0;
	DIR *d;
	struct dirent *e;

	*infos = NULL;
	*count = 0;
	if (pools_dir(root, pdir, sizeof(pdir)) != 0)
		return dbk_dfs_fail(err, errlen, -ENAMETOOLONG, "root path too long");
	d = opendir(pdir);
	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		return dbk_dfs_fail(err, errlen, -errno, "cannot read %s: %s", pdir, strerror(errno));
	}
	while ((e = readdir(d)) != NULL) {
		struct dbk_dfs_pool_info info;
		if (e->d_name[0] == '.' || join(dir, sizeof(dir), pdir, e->d_name) != 0 ||
		    pool_info_load(dir, &info) != 0)
			continue;
		if (n == cap) {
			struct dbk_dfs_pool_info *na = realloc(arr, (cap ? cap * 2 : 8) * sizeof(*arr));
			if (na == NULL) {
				free(arr);
				closedir(d);
				return dbk_dfs_fail(err, errlen, -ENOMEM, "out of memory");
			}
			arr = na;
			cap = cap ? cap * 2 : 8;
		}
		arr[n++] = info;
	}
	closedir(d);
	if (n)
		qsort(arr, n, sizeof(*arr), cmp_pool);
	*infos = arr;
	*count = n;
	return 0;
}

int dbk_dfs_local_pool_query(const char *root, const char *pool, struct dbk_dfs_pool_info *out, char *err,
			     size_t errlen)
{
	char dir[PATH_MAX];

	return pool_find(root, pool, dir, sizeof(dir), out, err, errlen);
}

/* Make dir disappear with one rename into a hidden name, then remove it. */
static int remove_tree(const char *parent, const char *dir, const char *uuid)
{
	char gone[PATH_MAX];
	int rc;

	if (snprintf(gone, sizeof(gone), "%s/.%s.destroying", parent, uuid) >= (int)sizeof(gone))
		return -ENAMETOOLONG;
	rm_rf(gone);
	if (rename(dir, gone) != 0)
		return -errno;
	fsync_dir(parent);
	rc = rm_rf(gone);
	return rc;
}

int dbk_dfs_local_pool_destroy(const char *root, const char *pool, bool force, char *err, size_t errlen)
{
	char dir[PATH_MAX], pdir[PATH_MAX];
	struct dbk_dfs_pool_info info;
	int lk, rc;

	lk = lock_root(root, err, errlen);
	if (lk < 0) {
		if (lk == -ENOENT)
			return dbk_dfs_fail(err, errlen, -ENOENT, "pool '%s' not found (no pools under %s)", pool, root);
		return lk;
	}
	rc = pool_find(root, pool, dir, sizeof(dir), &info, err, errlen);
	if (rc)
		goto out;
	if (info.num_conts > 0 && !force) {
		rc = dbk_dfs_fail(err, errlen, -ENOTEMPTY,
				  "pool '%s' has %u container(s); destroy them first or use --force", pool,
				  info.num_conts);
		goto out;
	}
	if (pools_dir(root, pdir, sizeof(pdir)) != 0) {
		rc = dbk_dfs_fail(err, errlen, -ENAMETOOLONG, "root path too long");
		goto out;
	}
	rc = remove_tree(pdir, dir, info.uuid);
	if (rc)
		dbk_dfs_fail(err, errlen, rc, "cannot remove pool '%s' (%s): %s", pool, dir, strerror(-rc));
out:
	unlock_root(lk);
	return rc;
}

/* -------------------------------------------------------------- containers */

static int cont_info_load(const char *dir, struct dbk_dfs_cont_info *info)
{
	json_t *j = read_json(dir, "cont.json");

	if (j == NULL)
		return -ENOENT;
	memset(info, 0, sizeof(*info));
	copy_str(info->label, sizeof(info->label), j, "label");
	copy_str(info->uuid, sizeof(info->uuid), j, "uuid");
	copy_str(info->type, sizeof(info->type), j, "type");
	copy_str(info->oclass, sizeof(info->oclass), j, "oclass");
	info->chunk_size = (uint64_t)json_integer_value(json_object_get(j, "chunk_size"));
	info->created = json_integer_value(json_object_get(j, "created"));
	json_decref(j);
	return 0;
}

static int cont_find(const char *pool_dir, const char *pool_name, const char *cont, char *dir, size_t dirlen,
		     struct dbk_dfs_cont_info *info, char *err, size_t errlen)
{
	char cdir[PATH_MAX], u[37];
	DIR *d;
	struct dirent *e;
	int rc = -ENOENT;

	if (cont == NULL || cont[0] == '\0')
		return dbk_dfs_fail(err, errlen, -EINVAL, "container label or UUID must not be empty");
	if (strlen(cont) > DBK_DFS_LABEL_MAX)
		return dbk_dfs_fail(err, errlen, -EINVAL, "container label '%.32s...' is longer than %d characters",
				    cont, DBK_DFS_LABEL_MAX);
	if (join(cdir, sizeof(cdir), pool_dir, "conts") != 0)
		return dbk_dfs_fail(err, errlen, -ENAMETOOLONG, "root path too long");
	if (is_uuid(cont, u)) {
		if (join(dir, dirlen, cdir, u) == 0 && cont_info_load(dir, info) == 0)
			return 0;
		return dbk_dfs_fail(err, errlen, -ENOENT, "container '%s' not found in pool '%s'", cont, pool_name);
	}
	d = opendir(cdir);
	if (d == NULL)
		return dbk_dfs_fail(err, errlen, errno == EACCES ? -EACCES : -ENOENT,
				    "container '%s' not found in pool '%s'", cont, pool_name);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (join(dir, dirlen, cdir, e->d_name) != 0 || cont_info_load(dir, info) != 0)
			continue;
		if (strcmp(info->label, cont) == 0) {
			rc = 0;
			break;
		}
	}
	closedir(d);
	if (rc != 0)
		return dbk_dfs_fail(err, errlen, -ENOENT, "container '%s' not found in pool '%s'", cont, pool_name);
	return 0;
}

static const char *const g_cont_types[] = {"POSIX", "HDF5", "PYTHON", "SPARK", "DATABASE", "ROOT", "SEISMIC",
					   "METEO", "UNKNOWN"};

static const char *normalize_type(const char *type)
{
	if (type == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(g_cont_types) / sizeof(g_cont_types[0]); i++)
		if (strcasecmp(type, g_cont_types[i]) == 0)
			return g_cont_types[i];
	return NULL;
}

int dbk_dfs_local_cont_create(const char *root, const char *pool, const char *label, const char *uuid,
			      const char *type, const char *oclass, uint64_t chunk_size, struct dbk_dfs_cont_info *out,
			      char *err, size_t errlen)
{
	char pool_dir[PATH_MAX], cdir[PATH_MAX], tmpdir[PATH_MAX], dir[PATH_MAX], data[PATH_MAX], found[PATH_MAX];
	char u[37];
	struct dbk_dfs_pool_info pinfo;
	struct dbk_dfs_cont_info cinfo;
	const char *ntype = normalize_type(type ? type : "POSIX");
	int lk, rc;

	rc = dbk_dfs_label_check("container", label, err, errlen);
	if (rc)
		return rc;
	if (ntype == NULL)
		return dbk_dfs_fail(err, errlen, -EINVAL,
				    "unknown container type '%s' (POSIX, HDF5, PYTHON, SPARK, DATABASE, ROOT, SEISMIC, "
				    "METEO)",
				    type);
	if (oclass == NULL)
		oclass = "SX";
	if (!dbk_dfs_oclass_valid(oclass))
		return dbk_dfs_fail(err, errlen, -EINVAL, "unknown object class '%s' (e.g. SX, S1, RP_2G1, EC_4P2G1)",
				    oclass);
	if (chunk_size == 0)
		chunk_size = DBK_DFS_DEFAULT_CHUNK;
	rc = uuid_or_new(uuid, u, err, errlen);
	if (rc)
		return rc;
	lk = lock_root(root, NULL, 0);
	if (lk < 0) {
		if (lk == -ENOENT)
			return dbk_dfs_fail(err, errlen, -ENOENT, "pool '%s' not found (no pools under %s)", pool, root);
		return dbk_dfs_fail(err, errlen, lk, "cannot lock %s: %s", root, strerror(-lk));
	}
	rc = pool_find(root, pool, pool_dir, sizeof(pool_dir), &pinfo, err, errlen);
	if (rc)
		goto out;
	if (cont_find(pool_dir, pool, label, found, sizeof(found), &cinfo, NULL, 0) == 0) {
		rc = dbk_dfs_fail(err, errlen, -EEXIST, "container '%s' already exists in pool '%s' (uuid %s)", label,
				  pool, cinfo.uuid);
		goto out;
	}
	if (cont_find(pool_dir, pool, u, found, sizeof(found), &cinfo, NULL, 0) == 0) {
		rc = dbk_dfs_fail(err, errlen, -EEXIST, "a container with uuid %s already exists in pool '%s'", u,
				  pool);
		goto out;
	}
	if (join(cdir, sizeof(cdir), pool_dir, "conts") != 0 || join(dir, sizeof(dir), cdir, u) != 0 ||
	    snprintf(tmpdir, sizeof(tmpdir), "%s/.%s.creating", cdir, u) >= (int)sizeof(tmpdir) ||
	    join(data, sizeof(data), tmpdir, "data") != 0) {
		rc = dbk_dfs_fail(err, errlen, -ENAMETOOLONG, "root path too long");
		goto out;
	}
	mkdir(cdir, 0755);
	rm_rf(tmpdir);
	if (mkdir(tmpdir, 0755) != 0 || mkdir(data, 0755) != 0) {
		rc = -errno;
		dbk_dfs_fail(err, errlen, rc, "cannot create container directory %s: %s", tmpdir, strerror(-rc));
		goto cleanup;
	}
	rc = publish_dir(tmpdir, dir, cdir, "container",
			 json_pack("{s:s,s:s,s:s,s:s,s:I}", "label", label, "uuid", u, "type", ntype, "oclass", oclass,
				   "chunk_size", (json_int_t)chunk_size),
			 err, errlen);
	if (rc)
		goto cleanup;
	if (out)
		cont_info_load(dir, out);
	goto out;
cleanup:
	rm_rf(tmpdir);
out:
	unlock_root(lk);
	return rc;
}

static int cmp_cont(const void *a, const void *b)
{
	return strcmp(((const struct dbk_dfs_cont_info *)a)->label, ((const struct dbk_dfs_cont_info *)b)->label);
}

int dbk_dfs_local_cont_list(const char *root, const char *pool, struct dbk_dfs_cont_info **infos, size_t *count,
			    char *err, size_t errlen)
{
	char pool_dir[PATH_MAX], cdir[PATH_MAX], dir[PATH_MAX];
	struct dbk_dfs_pool_info pinfo;
	struct dbk_dfs_cont_info *arr = NULL;
	size_t n = 0, cap = 0;
	DIR *d;
	struct dirent *e;
	int rc;

	*infos = NULL;
	*count = 0;
	rc = pool_find(root, pool, pool_dir, sizeof(pool_dir), &pinfo, err, errlen);
	if (rc)
		return rc;
	if (join(cdir, sizeof(cdir), pool_dir, "conts") != 0)
		return dbk_dfs_fail(err, errlen, -ENAMETOOLONG, "root path too long");
	d = opendir(cdir);
	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		struct dbk_dfs_cont_info info;
		if (e->d_name[0] == '.' || join(dir, sizeof(dir), cdir, e->d_name) != 0 ||
		    cont_info_load(dir, &info) != 0)
			continue;
		if (n == cap) {
			struct dbk_dfs_cont_info *na = realloc(arr, (cap ? cap * 2 : 8) * sizeof(*arr));
			if (na == NULL) {
				free(arr);
				closedir(d);
				return dbk_dfs_fail(err, errlen, -ENOMEM, "out of memory");
			}
			arr = na;
			cap = cap ? cap * 2 : 8;
		}
		arr[n++] = info;
	}
	closedir(d);
	if (n)
		qsort(arr, n, sizeof(*arr), cmp_cont);
	*infos = arr;
	*count = n;
	return 0;
}

int dbk_dfs_local_cont_query(const char *root, const char *pool, const char *cont, struct dbk_dfs_cont_info *out,
			     char *err, size_t errlen)
{
	char pool_dir[PATH_MAX], dir[PATH_MAX];
	struct dbk_dfs_pool_info pinfo;
	int rc;

	rc = pool_find(root, pool, pool_dir, sizeof(pool_dir), &pinfo, err, errlen);
	if (rc)
		return rc;
	return cont_find(pool_dir, pool, cont, dir, sizeof(dir), out, err, errlen);
}

static int count_files(const char *cont_dir, size_t *n)
{
	char data[PATH_MAX];
	DIR *d;
	struct dirent *e;

	*n = 0;
	if (join(data, sizeof(data), cont_dir, "data") != 0)
		return -ENAMETOOLONG;
	d = opendir(data);
	if (d == NULL)
		return -errno;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			(*n)++;
	closedir(d);
	return 0;
}

int dbk_dfs_local_cont_destroy(const char *root, const char *pool, const char *cont, bool force, char *err,
			       size_t errlen)
{
	char pool_dir[PATH_MAX], cdir[PATH_MAX], dir[PATH_MAX];
	struct dbk_dfs_pool_info pinfo;
	struct dbk_dfs_cont_info cinfo;
	size_t nfiles = 0;
	int lk, rc;

	lk = lock_root(root, NULL, 0);
	if (lk < 0)
		return dbk_dfs_fail(err, errlen, -ENOENT, "pool '%s' not found (no pools under %s)", pool, root);
	rc = pool_find(root, pool, pool_dir, sizeof(pool_dir), &pinfo, err, errlen);
	if (rc)
		goto out;
	rc = cont_find(pool_dir, pool, cont, dir, sizeof(dir), &cinfo, err, errlen);
	if (rc)
		goto out;
	count_files(dir, &nfiles);
	if (nfiles > 0 && !force) {
		rc = dbk_dfs_fail(err, errlen, -ENOTEMPTY, "container '%s' holds %zu file(s); use --force to destroy it",
				  cont, nfiles);
		goto out;
	}
	if (join(cdir, sizeof(cdir), pool_dir, "conts") != 0) {
		rc = dbk_dfs_fail(err, errlen, -ENAMETOOLONG, "root path too long");
		goto out;
	}
	rc = remove_tree(cdir, dir, cinfo.uuid);
	if (rc)
		dbk_dfs_fail(err, errlen, rc, "cannot remove container '%s' (%s): %s", cont, dir, strerror(-rc));
out:
	unlock_root(lk);
	return rc;
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct dbk_dfs_file_info *)a)->name, ((const struct dbk_dfs_file_info *)b)->name);
}

int dbk_dfs_local_ls(const char *root, const char *pool, const char *cont, struct dbk_dfs_file_info **infos,
		     size_t *count, char *err, size_t errlen)
{
	char pool_dir[PATH_MAX], dir[PATH_MAX], data[PATH_MAX];
	struct dbk_dfs_pool_info pinfo;
	struct dbk_dfs_cont_info cinfo;
	struct dbk_dfs_file_info *arr = NULL;
	size_t n = 0, cap = 0;
	DIR *d;
	struct dirent *e;
	int rc;

	*infos = NULL;
	*count = 0;
	rc = pool_find(root, pool, pool_dir, sizeof(pool_dir), &pinfo, err, errlen);
	if (rc)
		return rc;
	rc = cont_find(pool_dir, pool, cont, dir, sizeof(dir), &cinfo, err, errlen);
	if (rc)
		return rc;
	if (join(data, sizeof(data), dir, "data") != 0)
		return dbk_dfs_fail(err, errlen, -ENAMETOOLONG, "root path too long");
	d = opendir(data);
	if (d == NULL)
		return dbk_dfs_fail(err, errlen, -errno, "cannot read %s: %s", data, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (n == cap) {
			struct dbk_dfs_file_info *na = realloc(arr, (cap ? cap * 2 : 8) * sizeof(*arr));
			if (na == NULL) {
				free(arr);
				closedir(d);
				return dbk_dfs_fail(err, errlen, -ENOMEM, "out of memory");
			}
			arr = na;
			cap = cap ? cap * 2 : 8;
		}
		snprintf(arr[n].name, sizeof(arr[n].name), "%s", e->d_name);
		arr[n].size = (uint64_t)st.st_size;
		arr[n].allocated = (uint64_t)st.st_blocks * 512;
		n++;
	}
	closedir(d);
	if (n)
		qsort(arr, n, sizeof(*arr), cmp_file);
	*infos = arr;
	*count = n;
	return 0;
}

int dbk_dfs_local_file_remove(const char *root, const char *pool, const char *cont, const char *name, char *err,
			      size_t errlen)
{
	char pool_dir[PATH_MAX], dir[PATH_MAX], data[PATH_MAX], side[PATH_MAX];
	struct dbk_dfs_pool_info pinfo;
	struct dbk_dfs_cont_info cinfo;
	const char *n = name ? name : "";
	struct stat st;
	int lk, dfd = -1, fd = -1, rc;

	if (n[0] == '/')
		n++;
	if (n[0] == '\0' || strchr(n, '/') || strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || strlen(n) > 255)
		return dbk_dfs_fail(err, errlen, -EINVAL, "'%s' is not a file name at the container root ('NAME' or '/NAME')",
				    name ? name : "");
	lk = lock_root(root, NULL, 0);
	if (lk < 0)
		return dbk_dfs_fail(err, errlen, -ENOENT, "pool '%s' not found (no pools under %s)", pool, root);
	rc = pool_find(root, pool, pool_dir, sizeof(pool_dir), &pinfo, err, errlen);
	if (rc)
		goto out;
	rc = cont_find(pool_dir, pool, cont, dir, sizeof(dir), &cinfo, err, errlen);
	if (rc)
		goto out;
	if (join(data, sizeof(data), dir, "data") != 0 ||
	    snprintf(side, sizeof(side), "%s/xattrs/%s.json", dir, n) >= (int)sizeof(side)) {
		rc = dbk_dfs_fail(err, errlen, -ENAMETOOLONG, "root path too long");
		goto out;
	}
	dfd = open(data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = dbk_dfs_fail(err, errlen, -errno, "cannot open %s: %s", data, strerror(errno));
		goto out;
	}
	fd = openat(dfd, n, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ENOENT)
			dbk_dfs_fail(err, errlen, rc, "file '/%s' not found in container '%s' of pool '%s'", n, cont, pool);
		else
			dbk_dfs_fail(err, errlen, rc, "cannot open file '/%s': %s", n, strerror(-rc));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = dbk_dfs_fail(err, errlen, -EINVAL, "'/%s' in container '%s' is not a regular file", n, cont);
		goto out;
	}
	do
		rc = flock(fd, LOCK_EX | LOCK_NB);
	while (rc != 0 && errno == EINTR);
	if (rc != 0 && errno == EWOULDBLOCK) {
		rc = dbk_dfs_fail(err, errlen, -EBUSY,
				  "file '/%s' is in use: a bdev of a running daosblk-tgt has it open "
				  "(bdev_daos_delete that bdev first)",
				  n);
		goto out;
	}
	/* locked (or a file system without flock): nothing opens it through the engine now */
	if (unlinkat(dfd, n, 0) != 0) {
		rc = dbk_dfs_fail(err, errlen, -errno, "cannot remove '/%s': %s", n, strerror(errno));
		goto out;
	}
	rc = 0;
	if (unlink(side) != 0 && errno != ENOENT)
		dbk_dfs_fail(err, errlen, 0, "removed '/%s', but not its xattrs %s: %s", n, side, strerror(errno));
	fsync(dfd);
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	unlock_root(lk);
	return rc;
}

/* ------------------------------------------------------ engine: setup calls */

static int local_pool_connect(const char *pool, struct dbk_dfs_pool **out, char *err, size_t errlen)
{
	char root[PATH_MAX];
	struct dbk_dfs_pool *p;
	int rc;

	rc = current_root(root, sizeof(root), err, errlen);
	if (rc)
		return rc;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return dbk_dfs_fail(err, errlen, -ENOMEM, "out of memory");
	rc = pool_find(root, pool, p->dir, sizeof(p->dir), &p->info, err, errlen);
	if (rc == 0 && access(p->dir, R_OK | W_OK | X_OK) != 0) {
		rc = -errno;
		dbk_dfs_fail(err, errlen, rc, "cannot connect to pool '%s': %s", pool, strerror(-rc));
	}
	if (rc) {
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

static int local_pool_disconnect(struct dbk_dfs_pool *pool)
{
	free(pool);
	return 0;
}

static int local_cont_open(struct dbk_dfs_pool *pool, const char *cont, struct dbk_dfs_cont **out, char *err,
			   size_t errlen)
{
	struct dbk_dfs_cont *c = calloc(1, sizeof(*c));
	const char *pname = pool->info.label[0] ? pool->info.label : pool->info.uuid;
	int rc;

	if (c == NULL)
		return dbk_dfs_fail(err, errlen, -ENOMEM, "out of memory");
	rc = cont_find(pool->dir, pname, cont, c->dir, sizeof(c->dir), &c->info, err, errlen);
	if (rc) {
		free(c);
		return rc;
	}
	snprintf(c->pool_label, sizeof(c->pool_label), "%s", pname);
	*out = c;
	return 0;
}

static int local_cont_close(struct dbk_dfs_cont *cont)
{
	free(cont);
	return 0;
}

static int local_mount(struct dbk_dfs_pool *pool, struct dbk_dfs_cont *cont, struct dbk_dfs_fs **out, char *err,
		       size_t errlen)
{
	char data[PATH_MAX];
	struct dbk_dfs_fs *fs;
	int rc;

	(void)pool;
	if (strcmp(cont->info.type, "POSIX") != 0)
		return dbk_dfs_fail(err, errlen, -ENOTSUP, "container '%s' is type '%s', not POSIX", cont->info.label,
				    cont->info.type);
	fs = calloc(1, sizeof(*fs));
	if (fs == NULL)
		return dbk_dfs_fail(err, errlen, -ENOMEM, "out of memory");
	if (join(data, sizeof(data), cont->dir, "data") != 0 ||
	    join(fs->xattr_dir, sizeof(fs->xattr_dir), cont->dir, "xattrs") != 0) {
		free(fs);
		return dbk_dfs_fail(err, errlen, -ENAMETOOLONG, "root path too long");
	}
	fs->datafd = open(data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->datafd < 0) {
		rc = -errno;
		free(fs);
		return dbk_dfs_fail(err, errlen, rc, "cannot mount container '%s' in pool '%s': %s: %s",
				    cont->info.label, cont->pool_label, data, strerror(-rc));
	}
	*out = fs;
	return 0;
}

static int local_umount(struct dbk_dfs_fs *fs)
{
	close(fs->datafd);
	free(fs);
	return 0;
}

/* ------------------------------------------------------------ the mapping */

/*
 * Each open file is also mapped MAP_SHARED: its pages are the page cache's own,
 * the ones pread and pwrite copy from and to, so another process's writes
 * (through its descriptor or its own mapping) are seen at once and durability
 * is the same (fdatasync writes back pages dirtied through any mapping).
 *
 * An access to the mapping can raise SIGBUS instead of returning an error: past
 * the end of a file another process shrank, a page that cannot be read (EIO), a
 * hole that cannot be allocated (ENOSPC, EDQUOT). Copies run under a guard: the
 * SIGBUS handler jumps out of a guarded copy whose address is in its mapping,
 * and the I/O is done again by syscall, which gets the real error. Any other
 * SIGBUS goes to the handler installed before ours, or ends the process as
 * without us.
 *
 * What the mapping serves: [0, map_len), the file's size when last looked at
 * (open, get_size, set_size, and I/O beyond it, at most once per
 * MAP_RECHECK_NS), page-aligned down, so a copy never touches the part of the
 * last page past the end; nothing while a punch of this queue is in flight
 * (the punch holds the invalidate lock a fault waits for). The cost: pages
 * touched through it count in the process's RSS (shared file pages, reclaimed
 * as page cache), and its page tables take 8 bytes per 4 KiB page touched.
 */
static __thread sigjmp_buf *volatile t_guard_env;
static __thread char *volatile t_guard_lo;
static __thread char *volatile t_guard_hi;
static struct sigaction g_old_bus;

static void bus_handler(int sig, siginfo_t *si, void *uc)
{
	sigjmp_buf *env = t_guard_env;
	char *a = si->si_addr;

	if (env != NULL && si->si_code > 0 && a >= t_guard_lo && a < t_guard_hi) {
		t_guard_env = NULL;
		siglongjmp(*env, 1);
	}
	if (g_old_bus.sa_handler != SIG_DFL && g_old_bus.sa_handler != SIG_IGN) {
		if (g_old_bus.sa_flags & SA_SIGINFO)
			g_old_bus.sa_sigaction(sig, si, uc);
		else
			g_old_bus.sa_handler(sig);
		return;
	}
	/* the default action (a fault's SIGBUS cannot be ignored): it comes when the access runs again on return */
	{
		struct sigaction dfl;
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigaction(SIGBUS, &dfl, NULL);
	}
	if (si->si_code <= 0)
		raise(SIGBUS);
}

/*
 * Install bus_handler unless it is SIGBUS's handler already (called at each file open: a library that set
 * its own handler since is then chained behind ours).
 */
static bool bus_install(void)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct sigaction sa, cur;
	bool ok = true;

	pthread_mutex_lock(&lock);
	if (sigaction(SIGBUS, NULL, &cur) != 0) {
		ok = false;
	} else if (!((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == bus_handler)) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = bus_handler;
		/* SA_NODEFER: the jump out of the handler leaves SIGBUS unblocked (sigsetjmp does not save the mask) */
		sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
		sigemptyset(&sa.sa_mask);
		g_old_bus = cur;
		ok = sigaction(SIGBUS, &sa, NULL) == 0;
	}
	pthread_mutex_unlock(&lock);
	return ok;
}

/*
 * A copy into the mapping: with non-temporal stores where both sides allow (x86-64, 16-byte aligned, a
 * multiple of 64 bytes). The destination is a page-cache page the polling thread rarely has in its caches,
 * and a plain store first reads each line from memory; nothing in this process reads it back soon.
 */
static inline void map_store(char *dst, const char *src, size_t len)
{
#if defined(__x86_64__)
	if ((((uintptr_t)dst | (uintptr_t)src) & 15) == 0 && len % 64 == 0) {
		for (size_t i = 0; i < len; i += 64) {
			__m128i a = _mm_load_si128((const __m128i *)(const void *)(src + i));
			__m128i b = _mm_load_si128((const __m128i *)(const void *)(src + i + 16));
			__m128i c = _mm_load_si128((const __m128i *)(const void *)(src + i + 32));
			__m128i d = _mm_load_si128((const __m128i *)(const void *)(src + i + 48));
			_mm_stream_si128((__m128i *)(void *)(dst + i), a);
			_mm_stream_si128((__m128i *)(void *)(dst + i + 16), b);
			_mm_stream_si128((__m128i *)(void *)(dst + i + 32), c);
			_mm_stream_si128((__m128i *)(void *)(dst + i + 48), d);
		}
		return;
	}
#endif
	memcpy(dst, src, len);
}

/*
 * Copy between iov and the file's mapping at off (to the mapping if write); false if the mapping faulted.
 * noinline: nothing of the caller's lives across the jump.
 */
static __attribute__((noinline)) bool map_copy(struct dbk_dfs_file *f, const struct iovec *iov, int iovcnt, uint64_t off,
					       bool write)
{
	sigjmp_buf env;
	char *p;

	if (sigsetjmp(env, 0) != 0)
		return false;
	p = f->map + off;	/* set after the jump point: nothing changed after it is read after a jump */
	t_guard_lo = f->map;
	t_guard_hi = f->map + f->map_reserve;
	t_guard_env = &env;
	atomic_signal_fence(memory_order_seq_cst);
	for (int i = 0; i < iovcnt; i++) {
		if (write)
			map_store(p, iov[i].iov_base, iov[i].iov_len);
		else
			memcpy(iov[i].iov_base, p, iov[i].iov_len);
		p += iov[i].iov_len;
	}
#if defined(__x86_64__)
	if (write)
		_mm_sfence();	/* the streamed stores are visible before the write completes */
#endif
	atomic_signal_fence(memory_order_seq_cst);
	t_guard_env = NULL;
	return true;
}

/*
 * DBK_DFS_LOCAL_MMAP: which I/O goes through the mapping. "rw" (the default): reads and writes; "read":
 * reads; "off": none (all I/O by syscall). Anything else: the default.
 */
enum { MAP_OFF, MAP_READ, MAP_RW };

static int map_mode(void)
{
	const char *v = getenv("DBK_DFS_LOCAL_MMAP");

	if (v != NULL && (strcmp(v, "off") == 0 || strcmp(v, "0") == 0))
		return MAP_OFF;
	if (v != NULL && strcmp(v, "read") == 0)
		return MAP_READ;
	return MAP_RW;
}

static void map_set_len(struct dbk_dfs_file *f, uint64_t size)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);

	size -= size % page;
	f->map_len = size < f->map_reserve ? size : f->map_reserve;
}

/*
 * Map the file: its size and as much again (at most 1 TiB more; 2 GiB at least) to grow into without a new
 * mapping. I/O beyond what is mapped goes by syscall. MADV_DONTFORK: a child process gets none of it.
 */
static void map_open(struct dbk_dfs_file *f, const struct stat *st)
{
	const uint64_t gib = 1ull << 30;
	uint64_t size = (uint64_t)st->st_size, want;
	int mode = map_mode();
	void *m;

	if (mode == MAP_OFF || !S_ISREG(st->st_mode) || size > (1ull << 46))
		return;
	if (!bus_install())
		return;
	want = size + (size < (1ull << 40) ? size : (1ull << 40));
	want = want < 2 * gib ? 2 * gib : (want + gib - 1) / gib * gib;
	m = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, f->fd, 0);
	if (m == MAP_FAILED)
		return;
	(void)madvise(m, want, MADV_DONTFORK);
	/*
	 * Random access, no read-ahead, on the mapping and the descriptor. Besides sparing reads of pages nobody
	 * asked for, this keeps the page cache of the file in 4 KiB folios: ext4 builds large folios (up to
	 * 128 KiB and more) from read-ahead and from large writes, and then every 4 KiB write, by pwritev or by
	 * a write fault, goes over the folio's 32 buffer heads (~5-7 us instead of ~2), and a fault marks the
	 * whole folio dirty, so writeback and FLUSH write 128 KiB for 4 KiB. A fault on a MADV_RANDOM mapping
	 * and a read on a POSIX_FADV_RANDOM descriptor bring in exactly the pages asked for, in 4 KiB folios.
	 * What pwritev creates stays as it is (a write of N pages makes an N-page folio): the writes that still go
	 * by syscall (the mapping resting, beyond its end) and what other processes wrote.
	 */
	(void)madvise(m, want, MADV_RANDOM);
	(void)posix_fadvise(f->fd, 0, 0, POSIX_FADV_RANDOM);
	f->map = m;
	f->map_page = (uint64_t)sysconf(_SC_PAGESIZE);
	f->map_reserve = want;
	f->map_writes = mode == MAP_RW;
	map_set_len(f, size);
}

static void map_close(struct dbk_dfs_file *f)
{
	if (f->map)
		munmap(f->map, f->map_reserve);
	f->map = NULL;
}

static int local_file_open(struct dbk_dfs_fs *fs, const char *path, const struct dbk_dfs_file_opts *opts,
			   struct dbk_dfs_file **out, char *err, size_t errlen)
{
	const char *name = path;
	struct dbk_dfs_file *f;
	int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW;
	int rc;

	if (name && name[0] == '/')
		name++;
	if (name == NULL || name[0] == '\0' || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
	    strlen(name) > 255)
		return dbk_dfs_fail(err, errlen, -EINVAL, "path '%s' must be '/<file name>' at the container root",
				    path ? path : "");
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return dbk_dfs_fail(err, errlen, -ENOMEM, "out of memory");
	snprintf(f->name, sizeof(f->name), "%s", name);
	if (snprintf(f->sidecar, sizeof(f->sidecar), "%s/%s.json", fs->xattr_dir, name) >= (int)sizeof(f->sidecar)) {
		free(f);
		return dbk_dfs_fail(err, errlen, -ENAMETOOLONG, "path too long");
	}
	if (opts && opts->create)
		flags |= O_CREAT;
	f->fd = openat(fs->datafd, name, flags, 0600);
	if (f->fd < 0) {
		rc = -errno;
		free(f);
		if (rc == -ENOENT)
			return dbk_dfs_fail(err, errlen, rc, "file '/%s' not found in the container", name);
		return dbk_dfs_fail(err, errlen, rc, "cannot open file '/%s': %s", name, strerror(-rc));
	}
	/*
	 * In use while open: a shared lock (per open file description, dropped by close) that
	 * dbk_dfs_local_file_remove's exclusive one cannot get. A file system without flock(2)
	 * just goes without the protection.
	 */
	do
		rc = flock(f->fd, LOCK_SH | LOCK_NB);
	while (rc != 0 && errno == EINTR);
	if (rc != 0 && errno == EWOULDBLOCK) {
		rc = dbk_dfs_fail(err, errlen, -EBUSY, "file '/%s' is being removed", name);
	} else {
		struct stat st;
		/* removed between our open and our lock: the name is gone, do not serve the orphan */
		rc = 0;
		if (fstat(f->fd, &st) == 0 && st.st_nlink == 0)
			rc = dbk_dfs_fail(err, errlen, -ENOENT, "file '/%s' not found in the container", name);
	}
	if (rc) {
		close(f->fd);
		free(f);
		return rc;
	}
	{
		struct stat st;
		long page = sysconf(_SC_PAGESIZE);

		if (fstat(f->fd, &st) == 0 && S_ISREG(st.st_mode) && page > 0 && st.st_blksize > 0 &&
		    st.st_blksize <= (1 << 20)) {
			f->inline_align = (uint32_t)(st.st_blksize > page ? st.st_blksize : page);
			map_open(f, &st);
		}
	}
	*out = f;
	return 0;
}

static int local_file_close(struct dbk_dfs_file *file)
{
	map_close(file);
	close(file->fd);
	free(file);
	return 0;
}

/* -------------------------------------------------------- engine: the ring */

static int local_eq_create(uint32_t depth, struct dbk_dfs_eq **out, char *err, size_t errlen)
{
	struct dbk_dfs_eq *eq = calloc(1, sizeof(*eq));
	int rc;

	if (eq == NULL)
		return dbk_dfs_fail(err, errlen, -ENOMEM, "out of memory");
	if (depth == 0)
		depth = 256;
	rc = io_uring_queue_init(depth, &eq->ring, 0);
	if (rc < 0) {
		free(eq);
		return dbk_dfs_fail(err, errlen, rc, "cannot create an io_uring event queue: %s", strerror(-rc));
	}
	eq->depth = depth;
	eq->inline_reads = true;
	eq->done_tail = &eq->done_head;
	*out = eq;
	return 0;
}

static int local_eq_destroy(struct dbk_dfs_eq *eq)
{
	if (eq->inflight)
		return -EBUSY;
	io_uring_queue_exit(&eq->ring);
	free(eq);
	return 0;
}

static uint32_t local_inflight(struct dbk_dfs_eq *eq)
{
	return eq->inflight;
}

/* Point l->rem at the part of the transfer not yet done (at most LOP_REM_IOV segments). */
static void build_remainder(struct lop *l)
{
	uint64_t skip = l->done, left = l->total - l->done;
	int n = 0;

	for (int i = 0; i < l->iovcnt && left > 0 && n < LOP_REM_IOV; i++) {
		size_t len = l->iov[i].iov_len;
		char *base = l->iov[i].iov_base;
		if (skip >= len) {
			skip -= len;
			continue;
		}
		base += skip;
		len -= skip;
		skip = 0;
		if (len > left)
			len = left;
		l->rem[n].iov_base = base;
		l->rem[n].iov_len = len;
		left -= len;
		n++;
	}
	l->nrem = n;
}

static void zero_remainder(struct lop *l)
{
	uint64_t skip = l->done;

	for (int i = 0; i < l->iovcnt; i++) {
		size_t len = l->iov[i].iov_len;
		if (skip >= len) {
			skip -= len;
			continue;
		}
		memset((char *)l->iov[i].iov_base + skip, 0, len - skip);
		skip = 0;
	}
	l->done = l->total;
}

static int ring_queue(struct dbk_dfs_eq *eq, struct dbk_dfs_op *op)
{
	struct lop *l = lop_of(op);
	struct io_uring_sqe *sqe;

	if (eq->inflight >= eq->depth)
		return -EAGAIN;
	sqe = io_uring_get_sqe(&eq->ring);
	if (sqe == NULL)
		return -EAGAIN;
	switch (l->kind) {
	case LOP_READ:
	case LOP_WRITE:
		if (l->done == 0) {
			if (l->kind == LOP_READ)
				io_uring_prep_readv(sqe, l->fd, l->iov, l->iovcnt, l->off);
			else
				io_uring_prep_writev(sqe, l->fd, l->iov, l->iovcnt, l->off);
		} else {
			build_remainder(l);
			if (l->kind == LOP_READ)
				io_uring_prep_readv(sqe, l->fd, l->rem, l->nrem, l->off + l->done);
			else
				io_uring_prep_writev(sqe, l->fd, l->rem, l->nrem, l->off + l->done);
		}
		break;
	case LOP_FSYNC:
		io_uring_prep_fsync(sqe, l->fd, IORING_FSYNC_DATASYNC);
		break;
	case LOP_PUNCH:
		io_uring_prep_fallocate(sqe, l->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, l->off, l->total);
		eq->punches++;
		break;
	}
	io_uring_sqe_set_data(sqe, op);
	/* submitted in batches by poll(): one io_uring_enter per poller run, not per I/O */
	eq->inflight++;
	return 0;
}

/* Hand the prepared entries to the kernel; on a transient failure they stay queued for the next poll. */
static void ring_submit(struct dbk_dfs_eq *eq)
{
	if (io_uring_sq_ready(&eq->ring) > 0)
		io_uring_submit(&eq->ring);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Whether [off, off + len) may go through the mapping now (see the top of the file). */
static bool map_usable(struct dbk_dfs_eq *eq, struct dbk_dfs_file *f, const struct lop *l, uint64_t now)
{
	if (f->map == NULL || (l->kind == LOP_WRITE && !f->map_writes) || eq->punches > 0 || now < eq->map_until ||
	    __atomic_load_n(&f->map_failed, __ATOMIC_RELAXED))
		return false;
	if (l->off > f->map_len || l->total > f->map_len - l->off) {
		struct stat st;
		/* beyond the size we know: the file may have grown (another handle or process); look now and then */
		if (l->off > f->map_reserve || l->total > f->map_reserve - l->off || now - f->map_checked_ns < MAP_RECHECK_NS)
			return false;
		f->map_checked_ns = now;
		if (fstat(f->fd, &st) != 0)
			return false;
		map_set_len(f, (uint64_t)st.st_size);
		return l->off <= f->map_len && l->total <= f->map_len - l->off;
	}
	return true;
}

/*
 * pwritev in pieces of one page (at most 8 segments each), so that pages the write brings into the page cache
 * are 4 KiB folios, as the mapping's faults make them (see map_open), and not one folio of the write's size.
 * Returns the bytes written (short after a short or failed piece) or -1 with errno if none.
 */
static ssize_t pwrite_pages(int fd, const struct iovec *iov, int iovcnt, uint64_t off, uint64_t total, uint64_t page)
{
	uint64_t done = 0;
	size_t ioff = 0;
	int i = 0;

	while (done < total) {
		struct iovec v[8];
		uint64_t want = total - done < page ? total - done : page, got = 0;
		int n = 0;
		ssize_t r;

		while (got < want && i < iovcnt && n < 8) {
			size_t take = iov[i].iov_len - ioff;

			if (take > want - got)
				take = (size_t)(want - got);
			v[n].iov_base = (char *)iov[i].iov_base + ioff;
			v[n].iov_len = take;
			n++;
			got += take;
			ioff += take;
			if (ioff == iov[i].iov_len) {
				i++;
				ioff = 0;
			}
		}
		if (n == 0)
			break;
		r = pwritev(fd, v, n, (off_t)(off + done));
		if (r < 0)
			return done > 0 ? (ssize_t)done : -1;
		done += (uint64_t)r;
		if ((uint64_t)r < got)
			break;
	}
	return (ssize_t)done;
}

/*
 * Do a read or write inline (see the top of the file): true if done, the result in l->res and the op on
 * the done list; false to go through the ring.
 */
static bool try_inline(struct dbk_dfs_eq *eq, struct dbk_dfs_file *file, struct lop *l, struct dbk_dfs_op *op)
{
	uint64_t t0;
	ssize_t r;

	if (eq->inflight >= eq->depth || l->total > INT32_MAX)
		return false;
	t0 = mono_ns();
	if (map_usable(eq, file, l, t0)) {
		bool ok = map_copy(file, l->iov, l->iovcnt, l->off, l->kind == LOP_WRITE);
		uint64_t t1 = mono_ns();

		/*
		 * Waited (a fault that read the disk or waited for a page being read, a lock, throttling): two
		 * such copies fewer than MAP_SLOW_WINDOW apart and the mapping rests. One alone may be the thread's
		 * preemption on a busy machine; a cold page cache makes many copies wait, if not all (read-ahead
		 * brings some pages in).
		 */
		if (t1 - t0 > MAP_SLOW_NS + (l->total / 4096) * MAP_SLOW_PAGE_NS) {
			eq->map_slow++;
			eq->map_fast = 0;
		} else if (++eq->map_fast >= MAP_SLOW_WINDOW) {
			eq->map_slow = 0;
		}
		if (!ok || eq->map_slow >= MAP_SLOW_RUN) {
			/* again within one rest of the last: a cold cache, rest twice as long (up to MAP_REST_MAX_NS) */
			if (eq->map_rest_ns > 0 && t1 < eq->map_until + eq->map_rest_ns)
				eq->map_rest_ns = eq->map_rest_ns * 2 > MAP_REST_MAX_NS ? MAP_REST_MAX_NS : eq->map_rest_ns * 2;
			else
				eq->map_rest_ns = BACKOFF_NS;
			eq->map_until = t1 + eq->map_rest_ns;
			eq->map_slow = 0;
		}
		if (ok) {
			r = (ssize_t)l->total;
			goto done;
		}
		/* faulted (SIGBUS): by syscall, which gets the error */
	}
	if (l->kind == LOP_READ) {
		if (!eq->inline_reads)
			return false;
		r = preadv2(l->fd, l->iov, l->iovcnt, (off_t)l->off, RWF_NOWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EOPNOTSUPP)) {
			if (errno == EOPNOTSUPP)
				eq->inline_reads = false;
			return false;
		}
	} else {
		uint64_t a = file->inline_align;

		if (a == 0 || eq->punches > 0 || l->off % a != 0 || l->total % a != 0)
			return false;
		if (t0 < eq->ring_writes_until)
			return false;
		if (file->map != NULL && l->total > file->map_page)
			r = pwrite_pages(l->fd, l->iov, l->iovcnt, l->off, l->total, file->map_page);
		else
			r = pwritev(l->fd, l->iov, l->iovcnt, (off_t)l->off);
		if (mono_ns() - t0 > SLOW_NS)
			eq->ring_writes_until = t0 + BACKOFF_NS;
	}
done:
	l->res = r < 0 ? -errno : (int)r;
	l->next = NULL;
	*eq->done_tail = op;
	eq->done_tail = &l->next;
	eq->inflight++;
	return true;
}

static int start_rw(struct dbk_dfs_eq *eq, struct dbk_dfs_file *file, enum lop_kind kind, const struct iovec *iov,
		    int iovcnt, uint64_t offset, struct dbk_dfs_op *op)
{
	struct lop *l = lop_of(op);

	if (iovcnt <= 0 || iovcnt > DBK_DFS_MAX_IOV)
		return -EINVAL;
	memset(l, 0, offsetof(struct lop, rem));
	l->kind = kind;
	l->fd = file->fd;
	l->file = file;
	l->iov = iov;
	l->iovcnt = iovcnt;
	l->off = offset;
	for (int i = 0; i < iovcnt; i++)
		l->total += iov[i].iov_len;
	if (try_inline(eq, file, l, op))
		return 0;
	return ring_queue(eq, op);
}

static int local_readv(struct dbk_dfs_eq *eq, struct dbk_dfs_file *file, const struct iovec *iov, int iovcnt,
		       uint64_t offset, struct dbk_dfs_op *op)
{
	return start_rw(eq, file, LOP_READ, iov, iovcnt, offset, op);
}

static int local_writev(struct dbk_dfs_eq *eq, struct dbk_dfs_file *file, const struct iovec *iov, int iovcnt,
			uint64_t offset, struct dbk_dfs_op *op)
{
	return start_rw(eq, file, LOP_WRITE, iov, iovcnt, offset, op);
}

static int local_flush(struct dbk_dfs_eq *eq, struct dbk_dfs_file *file, struct dbk_dfs_op *op)
{
	struct lop *l = lop_of(op);

	memset(l, 0, offsetof(struct lop, rem));
	l->kind = LOP_FSYNC;
	l->fd = file->fd;
	l->file = file;
	return ring_queue(eq, op);
}

static int local_punch_async(struct dbk_dfs_eq *eq, struct dbk_dfs_file *file, uint64_t offset, uint64_t len,
			     struct dbk_dfs_op *op)
{
	struct lop *l = lop_of(op);

	memset(l, 0, offsetof(struct lop, rem));
	l->kind = LOP_PUNCH;
	l->fd = file->fd;
	l->file = file;
	l->off = offset;
	l->total = len;
	return ring_queue(eq, op);
}

/* One completion: 1 if the op finished (callback run), 0 if resubmitted. */
static void handle_cqe(struct dbk_dfs_eq *eq, struct dbk_dfs_op *op, int res)
{
	struct lop *l = lop_of(op);
	int rc;

	if (res == -EAGAIN || res == -EINTR)
		goto resubmit;
	if (res < 0) {
		/*
		 * The file's storage failed (EIO; EROFS: the file system went read-only): from now on its I/O goes by
		 * syscall, which reports the failure, and not through the mapping, which would still serve the page
		 * cache (or zeros for a hole) from a dead file system.
		 */
		if ((res == -EIO || res == -EROFS) && l->file != NULL)
			__atomic_store_n(&l->file->map_failed, 1, __ATOMIC_RELAXED);
		op->cb(op->cb_arg, res);
		return;
	}
	if (l->kind == LOP_READ || l->kind == LOP_WRITE) {
		l->done += (uint64_t)res;
		if (l->done < l->total) {
			if (res == 0) {
				if (l->kind == LOP_WRITE) {
					op->cb(op->cb_arg, -ENOSPC);
					return;
				}
				zero_remainder(l); /* past the end of the file: zeros */
			} else {
				goto resubmit;
			}
		}
	}
	op->cb(op->cb_arg, 0);
	return;
resubmit:
	rc = ring_queue(eq, op);
	if (rc != 0)
		op->cb(op->cb_arg, rc == -EAGAIN ? -EIO : rc);
}

static int local_poll(struct dbk_dfs_eq *eq, int max)
{
	struct io_uring_cqe *cqe;
	struct dbk_dfs_op *op = eq->done_head;
	int n = 0;

	/* Inline completions first, all of them (I/O their callbacks start inline waits for the next poll). */
	eq->done_head = NULL;
	eq->done_tail = &eq->done_head;
	while (op != NULL) {
		struct dbk_dfs_op *next = lop_of(op)->next;

		eq->inflight--;
		handle_cqe(eq, op, lop_of(op)->res);
		n++;
		op = next;
	}
	ring_submit(eq);
	while (n < max && io_uring_peek_cqe(&eq->ring, &cqe) == 0) {
		int res = cqe->res;

		op = io_uring_cqe_get_data(cqe);
		io_uring_cqe_seen(&eq->ring, cqe);
		eq->inflight--;
		if (lop_of(op)->kind == LOP_PUNCH)
			eq->punches--;
		handle_cqe(eq, op, res);
		n++;
	}
	ring_submit(eq); /* resubmitted remainders and I/O queued by the callbacks */
	return n;
}

/* ------------------------------------------------------ engine: blocking */

static int local_punch(struct dbk_dfs_file *file, uint64_t offset, uint64_t len)
{
	if (len == 0)
		return 0;
	if (fallocate(file->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)len) != 0)
		return -errno;
	return 0;
}

static int local_get_size(struct dbk_dfs_file *file, uint64_t *size)
{
	struct stat st;

	if (fstat(file->fd, &st) != 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	map_set_len(file, *size);
	return 0;
}

static int local_set_size(struct dbk_dfs_file *file, uint64_t size)
{
	if (size > (uint64_t)INT64_MAX)
		return -EFBIG;
	if (ftruncate(file->fd, (off_t)size) != 0)
		return -errno;
	map_set_len(file, size);
	return 0;
}

static bool no_xattr_support(int e)
{
	return e == ENOTSUP || e == EOPNOTSUPP || e == EPERM;
}

/* DBK_DFS_LOCAL_NO_XATTR=1 behaves as on a file system without user xattrs (tests the sidecar). */
static bool force_sidecar(void)
{
	const char *v = getenv("DBK_DFS_LOCAL_NO_XATTR");

	return v && v[0] && strcmp(v, "0") != 0;
}

static json_t *sidecar_load(struct dbk_dfs_file *file)
{
	json_error_t jerr;
	json_t *j = json_load_file(file->sidecar, 0, &jerr);

	return json_is_object(j) ? j : (json_decref(j), json_object());
}

static int local_getxattr(struct dbk_dfs_file *file, const char *name, void *buf, size_t *len)
{
	ssize_t n;
	json_t *j, *v;
	const char *hex;
	size_t hl;

	if (force_sidecar()) {
		n = -1;
		errno = ENOTSUP;
	} else {
		n = fgetxattr(file->fd, name, buf, *len);
	}
	if (n >= 0) {
		*len = (size_t)n;
		return 0;
	}
	if (errno == ENODATA) {
		/* maybe written to the sidecar earlier */
		if (access(file->sidecar, F_OK) != 0)
			return -ENODATA;
	} else if (!no_xattr_support(errno)) {
		return -errno;
	}
	j = sidecar_load(file);
	v = json_object_get(j, name);
	hex = json_string_value(v);
	if (hex == NULL) {
		json_decref(j);
		return -ENODATA;
	}
	hl = strlen(hex) / 2;
	if (hl > *len) {
		json_decref(j);
		return -ERANGE;
	}
	for (size_t i = 0; i < hl; i++) {
		unsigned x;
		sscanf(hex + 2 * i, "%2x", &x);
		((unsigned char *)buf)[i] = (unsigned char)x;
	}
	*len = hl;
	json_decref(j);
	return 0;
}

static int local_setxattr(struct dbk_dfs_file *file, const char *name, const void *val, size_t len)
{
	char dir[PATH_MAX];
	char *hex, *slash;
	json_t *j;
	int rc;

	if (force_sidecar())
		errno = ENOTSUP;
	else if (fsetxattr(file->fd, name, val, len, 0) == 0)
		return 0;
	if (!no_xattr_support(errno))
		return -errno;
	/* no user xattrs here: a sidecar json next to the namespace */
	snprintf(dir, sizeof(dir), "%s", file->sidecar);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		return -EINVAL;
	*slash = '\0';
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return -errno;
	hex = malloc(len * 2 + 1);
	if (hex == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++)
		sprintf(hex + 2 * i, "%02x", ((const unsigned char *)val)[i]);
	hex[len * 2] = '\0';
	j = sidecar_load(file);
	json_object_set_new(j, name, json_string(hex));
	free(hex);
	rc = write_json_atomic(dir, slash + 1, j);
	json_decref(j);
	return rc;
}

const struct dbk_dfs_engine dbk_dfs_engine_local = {
	.name = "local",
	.op_priv_size = sizeof(struct lop),
	.volatile_cache = true,
	.keep_open = true,
	.init = local_init,
	.fini = local_fini,
	.pool_connect = local_pool_connect,
	.pool_disconnect = local_pool_disconnect,
	.cont_open = local_cont_open,
	.cont_close = local_cont_close,
	.mount = local_mount,
	.umount = local_umount,
	.file_open = local_file_open,
	.file_close = local_file_close,
	.eq_create = local_eq_create,
	.eq_destroy = local_eq_destroy,
	.readv = local_readv,
	.writev = local_writev,
	.flush = local_flush,
	.punch_async = local_punch_async,
	.poll = local_poll,
	.inflight = local_inflight,
	.punch = local_punch,
	.get_size = local_get_size,
	.set_size = local_set_size,
	.getxattr = local_getxattr,
	.setxattr = local_setxattr,
};
