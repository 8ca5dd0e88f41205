/*
 * The DFS engine interface: the narrow set of DAOS/DFS operations the DAOS
 * bdev module (and the daosblk-dfs tool) needs, behind a vtable with two
 * implementations:
 *
 *   "local" (engine_local.c, the default): a DFS-like store on a local file
 *           system. Pools and containers are directories under a root, files
 *           are sparse files, event queues are io_uring instances.
 *   "daos"  (engine_daos.c, built with DAOS): libdaos + libdfs.
 *
 * Conventions:
 *  - Every call returns 0 (or a count) on success and a negative errno on
 *    failure. Calls that take (err, errlen) also write a sentence a person can
 *    act on ("pool 'x' not found"); err may be NULL.
 *  - Setup, teardown, punch, size and xattr calls may block: the module runs
 *    them on the helper thread (dbk_run_blocking), never on a reactor.
 *  - readv/writev/flush/punch_async are asynchronous: they queue the operation
 *    on an event queue and return at once; the completion callback runs from
 *    poll() on the thread that polls that queue. An event queue and the
 *    operations on it belong to one thread.
 *  - Handles are independent: each channel has its own pool connection,
 *    container handle, mount, file handle and event queue.
 */
#ifndef DBK_BDEV_DAOS_DFS_ENGINE_H
#define DBK_BDEV_DAOS_DFS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Opaque handles, defined by each engine. */
struct dbk_dfs_pool;
struct dbk_dfs_cont;
struct dbk_dfs_fs;
struct dbk_dfs_file;
struct dbk_dfs_eq;

/* Most iovecs one readv/writev takes (the module sets bdev max_segments to it). */
#define DBK_DFS_MAX_IOV 64
/* Longest pool/container label (DAOS_PROP_LABEL_MAX_LEN). */
#define DBK_DFS_LABEL_MAX 127
/* Default chunk size of a file (DFS_DEFAULT_CHUNK_SIZE). */
#define DBK_DFS_DEFAULT_CHUNK (1024 * 1024)

/* Completion: rc 0 on success (reads are complete: a read past the end of the file is zero-filled), or -errno. */
typedef void (*dbk_dfs_cb)(void *cb_arg, int rc);

/*
 * One asynchronous operation, in memory the caller provides and keeps until
 * the callback: sizeof(struct dbk_dfs_op) + engine->op_priv_size bytes, 16-byte
 * aligned. The iovec array of readv/writev must stay valid until completion.
 */
struct dbk_dfs_op {
	dbk_dfs_cb cb;
	void *cb_arg;
	_Alignas(16) unsigned char priv[];
};

struct dbk_dfs_file_opts {
	const char *oclass;	/* DAOS object class name ("SX", "RP_2G1", ...), used on create; NULL: default */
	uint64_t chunk_size;	/* bytes, on create; 0: the container's default */
	bool create;		/* create the file if missing */
};

struct dbk_dfs_engine {
	const char *name;	/* "local" or "daos" */
	size_t op_priv_size;	/* bytes after struct dbk_dfs_op the engine uses */
	bool volatile_cache;	/* completed writes need flush() to be durable (local: page cache) */
	/*
	 * A bdev keeps its file open (one connection without an event queue) for as long as it
	 * exists. The local engine's file_open takes a shared flock(2) on the file, so an open
	 * file is "in use" and dbk_dfs_local_file_remove() refuses it.
	 */
	bool keep_open;

	/* Optional (NULL: nothing to check): can the engine run here at all? (daos: its libraries load.) */
	int (*probe)(char *err, size_t errlen);
	/* Reference-counted global init/fini. root: local engine's root directory (ignored by daos). */
	int (*init)(const char *root, char *err, size_t errlen);
	void (*fini)(void);

	/* pool: label or UUID string. */
	int (*pool_connect)(const char *pool, struct dbk_dfs_pool **out, char *err, size_t errlen);
	int (*pool_disconnect)(struct dbk_dfs_pool *pool);
	/* cont: label or UUID string. */
	int (*cont_open)(struct dbk_dfs_pool *pool, const char *cont, struct dbk_dfs_cont **out, char *err,
			 size_t errlen);
	int (*cont_close)(struct dbk_dfs_cont *cont);
	/* Mount the container's file system: fails (-ENOTSUP) unless the container is of type POSIX. */
	int (*mount)(struct dbk_dfs_pool *pool, struct dbk_dfs_cont *cont, struct dbk_dfs_fs **out, char *err,
		     size_t errlen);
	int (*umount)(struct dbk_dfs_fs *fs);
	/* path: "/name" (a file at the container's root). */
	int (*file_open)(struct dbk_dfs_fs *fs, const char *path, const struct dbk_dfs_file_opts *opts,
			 struct dbk_dfs_file **out, char *err, size_t errlen);
	int (*file_close)(struct dbk_dfs_file *file);

	/* Event queue: one per channel; depth = most operations in flight (beyond: -EAGAIN). */
	int (*eq_create)(uint32_t depth, struct dbk_dfs_eq **out, char *err, size_t errlen);
	/* Only when nothing is in flight (else -EBUSY). */
	int (*eq_destroy)(struct dbk_dfs_eq *eq);

	/*
	 * Asynchronous I/O: 0 queued (op->cb will run from poll), -EAGAIN queue full, -errno.
	 * Queued operations make progress only while the queue is polled (an engine may
	 * batch the submission into the next poll), so poll while inflight() > 0.
	 */
	int (*readv)(struct dbk_dfs_eq *eq, struct dbk_dfs_file *file, const struct iovec *iov, int iovcnt,
		     uint64_t offset, struct dbk_dfs_op *op);
	int (*writev)(struct dbk_dfs_eq *eq, struct dbk_dfs_file *file, const struct iovec *iov, int iovcnt,
		      uint64_t offset, struct dbk_dfs_op *op);
	/* Make completed writes durable (fdatasync). Only called when volatile_cache. */
	int (*flush)(struct dbk_dfs_eq *eq, struct dbk_dfs_file *file, struct dbk_dfs_op *op);
	/* Optional (NULL: use punch() on the helper thread): asynchronous punch. */
	int (*punch_async)(struct dbk_dfs_eq *eq, struct dbk_dfs_file *file, uint64_t offset, uint64_t len,
			   struct dbk_dfs_op *op);
	/* Reap up to max completions, running their callbacks. Returns the number completed or -errno. */
	int (*poll)(struct dbk_dfs_eq *eq, int max);
	/* Operations queued and not yet completed. */
	uint32_t (*inflight)(struct dbk_dfs_eq *eq);

	/* Blocking calls. Punched ranges read back as zeros; the size does not change. */
	int (*punch)(struct dbk_dfs_file *file, uint64_t offset, uint64_t len);
	int (*get_size)(struct dbk_dfs_file *file, uint64_t *size);
	/* Set the file size (grow: sparse; shrink: truncate). */
	int (*set_size)(struct dbk_dfs_file *file, uint64_t size);
	/* Extended attributes ("user.daosblk.*"). get: *len in = buffer size, out = value size; -ENODATA if absent. */
	int (*getxattr)(struct dbk_dfs_file *file, const char *name, void *buf, size_t *len);
	int (*setxattr)(struct dbk_dfs_file *file, const char *name, const void *val, size_t len);
};

/*
 * One connection: the handles a channel (or a trial) holds, opened in order
 * engine init -> pool connect -> container open -> mount -> file open -> event
 * queue, and released in exactly the reverse order. Blocking (helper thread).
 */
struct dbk_dfs_conn {
	const struct dbk_dfs_engine *eng;
	bool engine_ref;
	struct dbk_dfs_pool *pool;
	struct dbk_dfs_cont *cont;
	struct dbk_dfs_fs *fs;
	struct dbk_dfs_file *file;
	struct dbk_dfs_eq *eq;
};
/* Open all of c (zeroed by the call). On failure nothing stays open and err says which step failed. */
int dbk_dfs_conn_open(struct dbk_dfs_conn *c, const struct dbk_dfs_engine *eng, const char *root, const char *pool,
		      const char *cont, const char *path, const struct dbk_dfs_file_opts *fo, uint32_t eq_depth,
		      char *err, size_t errlen);
/* Release whatever c holds, in reverse order; safe on a partly opened or closed c. */
void dbk_dfs_conn_close(struct dbk_dfs_conn *c);

/* The engines compiled in. */
extern const struct dbk_dfs_engine dbk_dfs_engine_local;
#ifdef DBK_HAVE_DAOS_ENGINE
extern const struct dbk_dfs_engine dbk_dfs_engine_daos;
#endif
/* By name ("local", "daos"); NULL if unknown or not compiled in. */
const struct dbk_dfs_engine *dbk_dfs_engine_get(const char *name);

/* Message helper: the errno's text, with engine-specific names ("-ENOENT: No such file or directory"). */
const char *dbk_dfs_strerror(int rc);
/* Write a message into err (if err && errlen) and return rc: `return dbk_dfs_fail(err, errlen, -ENOENT, ...)`. */
int dbk_dfs_fail(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Object class names (DAOS CLI notation) known to daosblk: true if name is one. */
bool dbk_dfs_oclass_valid(const char *name);
/* The i-th known class name (NULL past the end), for help texts. */
const char *dbk_dfs_oclass_at(size_t i);

/*
 * ---------------------------------------------------------------------------
 * Local engine administration (daosblk-dfs, tests). Blocking, process-safe
 * (a lock file under the root serialises creates and destroys). Pools live in
 * <root>/pools/<uuid>/pool.json, containers in <pool>/conts/<uuid>/cont.json
 * with their namespace in <cont>/data/. Metadata is written crash-safely.
 * ---------------------------------------------------------------------------
 */

#define DBK_DFS_DEFAULT_ROOT "/var/lib/daosblk"

struct dbk_dfs_pool_info {
	char label[DBK_DFS_LABEL_MAX + 1];
	char uuid[37];
	int64_t created;	/* unix seconds */
	uint32_t num_conts;
};

struct dbk_dfs_cont_info {
	char label[DBK_DFS_LABEL_MAX + 1];
	char uuid[37];
	char type[32];		/* "POSIX", "HDF5", ... */
	char oclass[32];
	uint64_t chunk_size;
	int64_t created;
};

struct dbk_dfs_file_info {
	char name[256];
	uint64_t size;		/* logical size */
	uint64_t allocated;	/* bytes on disk */
};

/* Label syntax: 1..127 chars of [A-Za-z0-9_.:-], not a UUID. 0 or -EINVAL with message. */
int dbk_dfs_label_check(const char *what, const char *label, char *err, size_t errlen);

/* uuid: NULL (generate) or a UUID string. -EEXIST if the label or UUID is taken. */
int dbk_dfs_local_pool_create(const char *root, const char *label, const char *uuid, struct dbk_dfs_pool_info *out,
			      char *err, size_t errlen);
/* Fill *infos (malloc'ed, caller frees) and *count. */
int dbk_dfs_local_pool_list(const char *root, struct dbk_dfs_pool_info **infos, size_t *count, char *err,
			    size_t errlen);
int dbk_dfs_local_pool_query(const char *root, const char *pool, struct dbk_dfs_pool_info *out, char *err,
			     size_t errlen);
/* -ENOTEMPTY unless force when the pool has containers. */
int dbk_dfs_local_pool_destroy(const char *root, const char *pool, bool force, char *err, size_t errlen);

/* type: "POSIX" (or another DAOS type name); oclass NULL: "SX"; chunk_size 0: 1 MiB. */
int dbk_dfs_local_cont_create(const char *root, const char *pool, const char *label, const char *uuid,
			      const char *type, const char *oclass, uint64_t chunk_size, struct dbk_dfs_cont_info *out,
			      char *err, size_t errlen);
int dbk_dfs_local_cont_list(const char *root, const char *pool, struct dbk_dfs_cont_info **infos, size_t *count,
			    char *err, size_t errlen);
int dbk_dfs_local_cont_query(const char *root, const char *pool, const char *cont, struct dbk_dfs_cont_info *out,
			     char *err, size_t errlen);
/* -ENOTEMPTY unless force when the container holds files. */
int dbk_dfs_local_cont_destroy(const char *root, const char *pool, const char *cont, bool force, char *err,
			       size_t errlen);
/*
 * Remove the file NAME ("name" or "/name", at the container's root) and its xattrs. -EBUSY while
 * anything holds it open through the engine (a bdev of a running daosblk-tgt: file_open holds a
 * shared flock(2), the removal needs an exclusive one), -ENOENT if there is no such pool,
 * container or file, -EINVAL for a bad name.
 */
int dbk_dfs_local_file_remove(const char *root, const char *pool, const char *cont, const char *name, char *err,
			      size_t errlen);
/* Files at the container's root. */
int dbk_dfs_local_ls(const char *root, const char *pool, const char *cont, struct dbk_dfs_file_info **infos,
		     size_t *count, char *err, size_t errlen);

#endif
