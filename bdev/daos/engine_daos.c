/*
 * The DAOS DFS engine: the engine interface over libdaos + libdfs. Built only
 * when CMake found DAOS (DBK_HAVE_DAOS_ENGINE).
 *
 * Per connection: daos_pool_connect -> daos_cont_open -> dfs_mount -> dfs_open
 * -> daos_eq_create; teardown in reverse. I/O is dfs_read/dfs_write with a
 * daos_event_t per operation on the channel's event queue, reaped with
 * daos_eq_poll(DAOS_EQ_NOWAIT). Completed DAOS writes are durable, so there is
 * no volatile cache (FLUSH is a no-op in the module).
 *
 * Error conventions of the DAOS API: daos_* calls and event errors are
 * negative DER_* codes, dfs_* calls return positive errno values. Both are
 * mapped to negative errno here.
 */
#include "bdev/daos/dfs_engine.h"

#include <daos.h>
#include <daos_event.h>
#include <daos_fs.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct dbk_dfs_pool {
	daos_handle_t poh;
	char name[DBK_DFS_LABEL_MAX + 1];
};

struct dbk_dfs_cont {
	daos_handle_t coh;
	char name[DBK_DFS_LABEL_MAX + 1];
	char pool_name[DBK_DFS_LABEL_MAX + 1];
};

struct dbk_dfs_fs {
	dfs_t *dfs;
};

struct dbk_dfs_file {
	dfs_t *dfs;
	dfs_obj_t *obj;
};

struct dbk_dfs_eq {
	daos_handle_t eqh;
	uint32_t depth;
	uint32_t inflight;
};

/* ------------------------------------------------------- the DAOS client API */

/*
 * With DBK_DAOS_DLOPEN (the default of a DAOS build) libdaos and libdfs are loaded at run time, the first time
 * the engine is used, so one daosblk-tgt serves the local engine on a host without DAOS and the real one where
 * DAOS's client libraries are installed, and says which library is missing. Without it the engine links them.
 * Calls go through API(fn): a pointer filled by dlsym, or the function itself.
 */
#define DAOS_API_LIBDAOS(X)                                                                                         \
	X(daos_init) X(daos_fini) X(daos_pool_connect) X(daos_pool_disconnect) X(daos_cont_open) X(daos_cont_close) \
	X(daos_oclass_name2id) X(daos_eq_create) X(daos_eq_destroy) X(daos_event_init) X(daos_event_fini)           \
	X(daos_eq_poll)
#define DAOS_API_LIBDFS(X)                                                                                          \
	X(dfs_mount) X(dfs_umount) X(dfs_open) X(dfs_release) X(dfs_read) X(dfs_write) X(dfs_punch) X(dfs_get_size) \
	X(dfs_getxattr) X(dfs_setxattr)

#ifdef DBK_DAOS_DLOPEN
#ifndef DBK_DAOS_LIBDAOS_NAME
#define DBK_DAOS_LIBDAOS_NAME "libdaos.so.2"
#endif
#ifndef DBK_DAOS_LIBDFS_NAME
#define DBK_DAOS_LIBDFS_NAME "libdfs.so"
#endif
/* Some API names are macros for versioned symbols (daos_pool_connect -> daos_pool_connect2): expand, then quote. */
#define API_STR2(x) #x
#define API_STR(x) API_STR2(x)
#define API_MEMBER(fn) __typeof__(fn) *fn;
static struct {
	DAOS_API_LIBDAOS(API_MEMBER)
	DAOS_API_LIBDFS(API_MEMBER)
} g_api;
static void *g_libdaos, *g_libdfs;
#define API(fn) (g_api.fn)

static void *load_lib(const char *env, const char *dflt, char *err, size_t errlen, int *rc)
{
	const char *name = getenv(env);
	void *h;

	if (name == NULL || name[0] == '\0')
		name = dflt;
	h = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
	if (h == NULL)
		*rc = dbk_dfs_fail(err, errlen, -ELIBACC,
				   "the daos engine needs DAOS's client library %s, which cannot be loaded (%s); install "
				   "DAOS's client packages, or set LD_LIBRARY_PATH (or %s) to where it is",
				   name, dlerror(), env);
	return h;
}

/* Load libdaos and libdfs and resolve every function the engine calls. Caller holds g_lock. */
static int api_load_locked(char *err, size_t errlen)
{
	const char *missing = NULL, *lib = NULL;
	int rc = 0;
	void *sym;

	if (g_libdfs)
		return 0;
	g_libdaos = load_lib("DBK_DAOS_LIBDAOS", DBK_DAOS_LIBDAOS_NAME, err, errlen, &rc);
	if (g_libdaos == NULL)
		return rc;
	g_libdfs = load_lib("DBK_DAOS_LIBDFS", DBK_DAOS_LIBDFS_NAME, err, errlen, &rc);
	if (g_libdfs == NULL)
		goto fail;
/* Resolve fn from handle h of library libname into its slot, unless an earlier one is missing already. */
#define API_RESOLVE_FROM(h, libname, fn)                                                                            \
	if (missing == NULL) {                                                                                      \
		sym = dlsym(h, API_STR(fn));                                                                        \
		if (sym == NULL) {                                                                                  \
			missing = API_STR(fn);                                                                      \
			lib = libname;                                                                              \
		}                                                                                                   \
		memcpy(&g_api.fn, &sym, sizeof(sym));                                                               \
	}
#define API_RESOLVE_DAOS(fn) API_RESOLVE_FROM(g_libdaos, DBK_DAOS_LIBDAOS_NAME, fn)
#define API_RESOLVE_DFS(fn) API_RESOLVE_FROM(g_libdfs, DBK_DAOS_LIBDFS_NAME, fn)
	DAOS_API_LIBDAOS(API_RESOLVE_DAOS)
	DAOS_API_LIBDFS(API_RESOLVE_DFS)
	if (missing == NULL)
		return 0;
	rc = dbk_dfs_fail(err, errlen, -ELIBBAD,
			  "%s has no %s: this DAOS is not the version daosblk was built against (DAOS 2.6 API)", lib,
			  missing);
	dlclose(g_libdfs);
fail:
	dlclose(g_libdaos);
	g_libdaos = g_libdfs = NULL;
	memset(&g_api, 0, sizeof(g_api));
	return rc;
}
#else
#define API(fn) fn
static int api_load_locked(char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	return 0;
}
#endif

/* Private part of struct dbk_dfs_op; the event comes first so the op is found from it. */
struct dop {
	daos_event_t ev;
	d_sg_list_t sgl;
	daos_size_t read_size;
	uint64_t want;
	const struct iovec *iov;
	int iovcnt;
	bool is_read;
	d_iov_t iovs[DBK_DFS_MAX_IOV];
};

static struct dop *dop_of(struct dbk_dfs_op *op)
{
	return (struct dop *)op->priv;
}

static struct dbk_dfs_op *op_of_ev(daos_event_t *ev)
{
	return (struct dbk_dfs_op *)((char *)ev - offsetof(struct dbk_dfs_op, priv) - offsetof(struct dop, ev));
}

/* ------------------------------------------------------------ error codes */

static int der_to_errno(int der)
{
	switch (der) {
	case DER_NO_PERM:
		return EACCES;
	case DER_NO_HDL:
		return EBADF;
	case DER_INVAL:
		return EINVAL;
	case DER_EXIST:
		return EEXIST;
	case DER_NONEXIST:
	case DER_ENOENT:
		return ENOENT;
	case DER_UNREACH:
		return EHOSTUNREACH;
	case DER_NOSPACE:
		return ENOSPC;
	case DER_NOMEM:
		return ENOMEM;
	case DER_NOSYS:
		return ENOSYS;
	case DER_TIMEDOUT:
		return ETIMEDOUT;
	case DER_BUSY:
		return EBUSY;
	case DER_AGAIN:
		return EAGAIN;
	case DER_CANCELED:
		return ECANCELED;
	case DER_NOTSUPPORTED:
		return ENOTSUP;
	case DER_TRUNC:
	case DER_OVERFLOW:
		return EOVERFLOW;
	case DER_SHUTDOWN:
		return ESHUTDOWN;
	case DER_STALE:
		return ESTALE;
	case DER_IO:
	case DER_NVME_IO:
	default:
		return EIO;
	}
}

/* DER_* codes are >= 1000; smaller magnitudes are errno values (dfs_* return positive errno). */
static int to_errno(int rc)
{
	int a = rc < 0 ? -rc : rc;

	if (rc == 0)
		return 0;
	if (a >= 1000)
		return -der_to_errno(a);
	return -a;
}

/* -------------------------------------------------------------- init/fini */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_refs;

static int daos_engine_init(const char *root, char *err, size_t errlen)
{
	int rc = 0;

	(void)root;
	pthread_mutex_lock(&g_lock);
	if (g_refs == 0)
		rc = api_load_locked(err, errlen);
	if (g_refs == 0 && rc == 0) {
		rc = API(daos_init)();
		if (rc != 0) {
			rc = to_errno(rc);
			dbk_dfs_fail(err, errlen, rc, "daos_init failed: %s (is daos_agent running?)",
				     dbk_dfs_strerror(rc));
		}
	}
	if (rc == 0)
		g_refs++;
	pthread_mutex_unlock(&g_lock);
	return rc;
}

/* The libraries can be used (loaded and complete); nothing is connected. */
static int daos_engine_probe(char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&g_lock);
	rc = api_load_locked(err, errlen);
	pthread_mutex_unlock(&g_lock);
	return rc;
}

static void daos_engine_fini(void)
{
	pthread_mutex_lock(&g_lock);
	if (g_refs > 0 && --g_refs == 0)
		API(daos_fini)();
	pthread_mutex_unlock(&g_lock);
}

/* ------------------------------------------------------------------ setup */

static int daos_engine_pool_connect(const char *pool, struct dbk_dfs_pool **out, char *err, size_t errlen)
{
	struct dbk_dfs_pool *p = calloc(1, sizeof(*p));
	int rc;

	if (p == NULL)
		return dbk_dfs_fail(err, errlen, -ENOMEM, "out of memory");
	snprintf(p->name, sizeof(p->name), "%s", pool);
	rc = API(daos_pool_connect)(pool, NULL, DAOS_PC_RW, &p->poh, NULL, NULL);
	if (rc != 0) {
		free(p);
		if (rc == -DER_NONEXIST)
			return dbk_dfs_fail(err, errlen, -ENOENT, "pool '%s' not found", pool);
		if (rc == -DER_NO_PERM)
			return dbk_dfs_fail(err, errlen, -EACCES, "pool '%s': permission denied", pool);
		rc = to_errno(rc);
		return dbk_dfs_fail(err, errlen, rc, "cannot connect to pool '%s': %s", pool, dbk_dfs_strerror(rc));
	}
	*out = p;
	return 0;
}

static int daos_engine_pool_disconnect(struct dbk_dfs_pool *pool)
{
	int rc = API(daos_pool_disconnect)(pool->poh, NULL);

	free(pool);
	return to_errno(rc);
}

static int daos_engine_cont_open(struct dbk_dfs_pool *pool, const char *cont, struct dbk_dfs_cont **out, char *err,
				 size_t errlen)
{
	struct dbk_dfs_cont *c = calloc(1, sizeof(*c));
	int rc;

	if (c == NULL)
		return dbk_dfs_fail(err, errlen, -ENOMEM, "out of memory");
	snprintf(c->name, sizeof(c->name), "%s", cont);
	snprintf(c->pool_name, sizeof(c->pool_name), "%s", pool->name);
	rc = API(daos_cont_open)(pool->poh, cont, DAOS_COO_RW, &c->coh, NULL, NULL);
	if (rc != 0) {
		free(c);
		if (rc == -DER_NONEXIST)
			return dbk_dfs_fail(err, errlen, -ENOENT, "container '%s' not found in pool '%s'", cont,
					    pool->name);
		if (rc == -DER_NO_PERM)
			return dbk_dfs_fail(err, errlen, -EACCES, "container '%s' in pool '%s': permission denied", cont,
					    pool->name);
		rc = to_errno(rc);
		return dbk_dfs_fail(err, errlen, rc, "cannot open container '%s' in pool '%s': %s", cont, pool->name,
				    dbk_dfs_strerror(rc));
	}
	*out = c;
	return 0;
}

static int daos_engine_cont_close(struct dbk_dfs_cont *cont)
{
	int rc = API(daos_cont_close)(cont->coh, NULL);

	free(cont);
	return to_errno(rc);
}

static int daos_engine_mount(struct dbk_dfs_pool *pool, struct dbk_dfs_cont *cont, struct dbk_dfs_fs **out,
			     char *err, size_t errlen)
{
	struct dbk_dfs_fs *fs = calloc(1, sizeof(*fs));
	int rc;

	if (fs == NULL)
		return dbk_dfs_fail(err, errlen, -ENOMEM, "out of memory");
	rc = API(dfs_mount)(pool->poh, cont->coh, O_RDWR, &fs->dfs);
	if (rc != 0) {
		free(fs);
		if (rc == EINVAL)
			return dbk_dfs_fail(err, errlen, -ENOTSUP,
					    "container '%s' in pool '%s' is not a POSIX container (dfs_mount: %s)",
					    cont->name, cont->pool_name, strerror(rc));
		rc = to_errno(rc);
		return dbk_dfs_fail(err, errlen, rc, "cannot mount container '%s' in pool '%s': %s", cont->name,
				    cont->pool_name, dbk_dfs_strerror(rc));
	}
	*out = fs;
	return 0;
}

static int daos_engine_umount(struct dbk_dfs_fs *fs)
{
	int rc = API(dfs_umount)(fs->dfs);

	free(fs);
	return to_errno(rc);
}

static int daos_engine_file_open(struct dbk_dfs_fs *fs, const char *path, const struct dbk_dfs_file_opts *opts,
				 struct dbk_dfs_file **out, char *err, size_t errlen)
{
	const char *name = path;
	daos_oclass_id_t cid = 0;
	struct dbk_dfs_file *f;
	int flags = O_RDWR;
	int rc;

	if (name && name[0] == '/')
		name++;
	if (name == NULL || name[0] == '\0' || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return dbk_dfs_fail(err, errlen, -EINVAL, "path '%s' must be '/<file name>' at the container root",
				    path ? path : "");
	if (opts && opts->oclass && opts->oclass[0]) {
		cid = API(daos_oclass_name2id)(opts->oclass);
		if (cid == 0)
			return dbk_dfs_fail(err, errlen, -EINVAL, "object class '%s' is unknown to DAOS", opts->oclass);
	}
	if (opts && opts->create)
		flags |= O_CREAT;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return dbk_dfs_fail(err, errlen, -ENOMEM, "out of memory");
	f->dfs = fs->dfs;
	rc = API(dfs_open)(fs->dfs, NULL, name, S_IFREG | 0600, flags, cid, opts ? opts->chunk_size : 0, NULL, &f->obj);
	if (rc != 0) {
		free(f);
		rc = to_errno(rc);
		if (rc == -ENOENT)
			return dbk_dfs_fail(err, errlen, rc, "file '/%s' not found in the container", name);
		return dbk_dfs_fail(err, errlen, rc, "cannot open file '/%s': %s", name, dbk_dfs_strerror(rc));
	}
	*out = f;
	return 0;
}

static int daos_engine_file_close(struct dbk_dfs_file *file)
{
	int rc = API(dfs_release)(file->obj);

	free(file);
	return to_errno(rc);
}

/* ----------------------------------------------------------- event queues */

static int daos_engine_eq_create(uint32_t depth, struct dbk_dfs_eq **out, char *err, size_t errlen)
{
	struct dbk_dfs_eq *eq = calloc(1, sizeof(*eq));
	int rc;

	if (eq == NULL)
		return dbk_dfs_fail(err, errlen, -ENOMEM, "out of memory");
	rc = API(daos_eq_create)(&eq->eqh);
	if (rc != 0) {
		free(eq);
		rc = to_errno(rc);
		return dbk_dfs_fail(err, errlen, rc, "cannot create a DAOS event queue: %s", dbk_dfs_strerror(rc));
	}
	eq->depth = depth ? depth : 256;
	*out = eq;
	return 0;
}

static int daos_engine_eq_destroy(struct dbk_dfs_eq *eq)
{
	int rc;

	if (eq->inflight)
		return -EBUSY;
	rc = API(daos_eq_destroy)(eq->eqh, 0);
	free(eq);
	return to_errno(rc);
}

static uint32_t daos_engine_inflight(struct dbk_dfs_eq *eq)
{
	return eq->inflight;
}

static int start_rw(struct dbk_dfs_eq *eq, struct dbk_dfs_file *file, bool is_read, const struct iovec *iov,
		    int iovcnt, uint64_t offset, struct dbk_dfs_op *op)
{
	struct dop *d = dop_of(op);
	int rc;

	if (iovcnt <= 0 || iovcnt > DBK_DFS_MAX_IOV)
		return -EINVAL;
	if (eq->inflight >= eq->depth)
		return -EAGAIN;
	d->want = 0;
	for (int i = 0; i < iovcnt; i++) {
		d->iovs[i].iov_buf = iov[i].iov_base;
		d->iovs[i].iov_buf_len = iov[i].iov_len;
		d->iovs[i].iov_len = iov[i].iov_len;
		d->want += iov[i].iov_len;
	}
	d->sgl.sg_nr = (uint32_t)iovcnt;
	d->sgl.sg_nr_out = 0;
	d->sgl.sg_iovs = d->iovs;
	d->read_size = 0;
	d->iov = iov;
	d->iovcnt = iovcnt;
	d->is_read = is_read;
	rc = API(daos_event_init)(&d->ev, eq->eqh, NULL);
	if (rc != 0)
		return to_errno(rc);
	if (is_read)
		rc = API(dfs_read)(file->dfs, file->obj, &d->sgl, offset, &d->read_size, &d->ev);
	else
		rc = API(dfs_write)(file->dfs, file->obj, &d->sgl, offset, &d->ev);
	if (rc != 0) {
		API(daos_event_fini)(&d->ev);
		return to_errno(rc);
	}
	eq->inflight++;
	return 0;
}

static int daos_engine_readv(struct dbk_dfs_eq *eq, struct dbk_dfs_file *file, const struct iovec *iov, int iovcnt,
			     uint64_t offset, struct dbk_dfs_op *op)
{
	return start_rw(eq, file, true, iov, iovcnt, offset, op);
}

static int daos_engine_writev(struct dbk_dfs_eq *eq, struct dbk_dfs_file *file, const struct iovec *iov,
			      int iovcnt, uint64_t offset, struct dbk_dfs_op *op)
{
	return start_rw(eq, file, false, iov, iovcnt, offset, op);
}

/* A read that ended early hit the end of the file: the rest reads as zeros. */
static void zero_tail(struct dop *d)
{
	uint64_t skip = d->read_size;

	for (int i = 0; i < d->iovcnt; i++) {
		size_t len = d->iov[i].iov_len;
		if (skip >= len) {
			skip -= len;
			continue;
		}
		memset((char *)d->iov[i].iov_base + skip, 0, len - skip);
		skip = 0;
	}
}

#define POLL_MAX 64

static int daos_engine_poll(struct dbk_dfs_eq *eq, int max)
{
	daos_event_t *evs[POLL_MAX];
	int n, rc;

	if (max > POLL_MAX)
		max = POLL_MAX;
	if (max <= 0 || eq->inflight == 0)
		return 0;
	n = API(daos_eq_poll)(eq->eqh, 0, DAOS_EQ_NOWAIT, (unsigned int)max, evs);
	if (n < 0)
		return to_errno(n);
	for (int i = 0; i < n; i++) {
		struct dbk_dfs_op *op = op_of_ev(evs[i]);
		struct dop *d = dop_of(op);

		rc = to_errno(evs[i]->ev_error);
		API(daos_event_fini)(evs[i]);
		eq->inflight--;
		if (rc == 0 && d->is_read && d->read_size < d->want)
			zero_tail(d);
		op->cb(op->cb_arg, rc);
	}
	return n;
}

/* --------------------------------------------------------------- blocking */

static int daos_engine_punch(struct dbk_dfs_file *file, uint64_t offset, uint64_t len)
{
	if (len == 0)
		return 0;
	return to_errno(API(dfs_punch)(file->dfs, file->obj, offset, len));
}

static int daos_engine_get_size(struct dbk_dfs_file *file, uint64_t *size)
{
	daos_size_t s = 0;
	int rc = API(dfs_get_size)(file->dfs, file->obj, &s);

	if (rc == 0)
		*size = s;
	return to_errno(rc);
}

static int daos_engine_set_size(struct dbk_dfs_file *file, uint64_t size)
{
	/* punch to DFS_MAX_FSIZE truncates or extends the file to size */
	return to_errno(API(dfs_punch)(file->dfs, file->obj, size, DFS_MAX_FSIZE));
}

static int daos_engine_getxattr(struct dbk_dfs_file *file, const char *name, void *buf, size_t *len)
{
	daos_size_t size = *len;
	int rc = API(dfs_getxattr)(file->dfs, file->obj, name, buf, &size);

	/* DFS: ENODATA when absent; E2BIG (-DER_REC2BIG) when the value is longer than the buffer */
	if (rc == E2BIG)
		return -ERANGE;
	if (rc != 0)
		return to_errno(rc);
	if (size > *len)
		return -ERANGE;
	*len = size;
	return 0;
}

static int daos_engine_setxattr(struct dbk_dfs_file *file, const char *name, const void *val, size_t len)
{
	return to_errno(API(dfs_setxattr)(file->dfs, file->obj, name, val, len, 0));
}

const struct dbk_dfs_engine dbk_dfs_engine_daos = {
	.name = "daos",
	.op_priv_size = sizeof(struct dop),
	.volatile_cache = false,
	.probe = daos_engine_probe,
	.init = daos_engine_init,
	.fini = daos_engine_fini,
	.pool_connect = daos_engine_pool_connect,
	.pool_disconnect = daos_engine_pool_disconnect,
	.cont_open = daos_engine_cont_open,
	.cont_close = daos_engine_cont_close,
	.mount = daos_engine_mount,
	.umount = daos_engine_umount,
	.file_open = daos_engine_file_open,
	.file_close = daos_engine_file_close,
	.eq_create = daos_engine_eq_create,
	.eq_destroy = daos_engine_eq_destroy,
	.readv = daos_engine_readv,
	.writev = daos_engine_writev,
	.flush = NULL,
	.punch_async = NULL,
	.poll = daos_engine_poll,
	.inflight = daos_engine_inflight,
	.punch = daos_engine_punch,
	.get_size = daos_engine_get_size,
	.set_size = daos_engine_set_size,
	.getxattr = daos_engine_getxattr,
	.setxattr = daos_engine_setxattr,
};
