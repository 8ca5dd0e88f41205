/*
 * A small in-memory stand-in for the DAOS client calls engine_daos.c makes:
 * handles with life-cycle checks, one flat namespace of files with xattrs,
 * and event queues whose events complete only when the test says so (in any
 * order), so completion ordering and error paths can be driven exactly.
 */
#include "daos_double.h"
#include "daos_event.h"
#include "daos_fs.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_FAILS 16
#define MAX_FILES 8
#define MAX_XATTRS 8
#define MAX_EVENTS 256
#define MAX_HANDLES 64

struct xattr {
	char name[64];
	char val[64];
	size_t len;
};

struct dd_file {
	bool used;
	char name[64];
	uint8_t *data;
	size_t size;
	struct xattr x[MAX_XATTRS];
	int nx;
};

struct dfs {
	int magic;
	uint64_t coh;
	int nobjs;
};

struct dfs_obj {
	struct dd_file *f;
	struct dfs *dfs;
};

struct dd_ev {
	daos_event_t *ev;
	uint64_t eq;
	int state; /* 0 free, 1 launched, 2 done (visible to poll) */
	uint64_t seq, done_seq;
	bool is_read;
	struct dd_file *f;
	d_sg_list_t *sgl;
	daos_off_t off;
	daos_size_t *read_size;
	int err;
};

/* One lock around the whole double: the module test calls it from reactors and the helper thread. */
static pthread_mutex_t g_mu = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

static void unlock_cb(int *unused)
{
	(void)unused;
	pthread_mutex_unlock(&g_mu);
}

#define LOCKED                            \
	pthread_mutex_lock(&g_mu);        \
	int dd_lock_ __attribute__((cleanup(unlock_cb), unused)) = 0

static bool g_autocomplete;
static char g_delay_fn[32];
static int g_delay_ms;

static struct {
	char fn[32];
	int rc;
} g_fails[MAX_FAILS];
static int g_next_ev_error;
static char g_log[4096];
static int g_inits;
static uint64_t g_next_cookie = 100;
static uint64_t g_pools[MAX_HANDLES], g_conts[MAX_HANDLES], g_eqs[MAX_HANDLES];
static uint64_t g_cont_pool[MAX_HANDLES];	/* pool of each g_conts slot */
static int g_cont_mounts[MAX_HANDLES];		/* mounts of each g_conts slot */
static int g_mounts, g_objs;
static struct dd_file g_files[MAX_FILES];
static struct dd_ev g_evs[MAX_EVENTS];
static uint64_t g_seq, g_done_seq;
static daos_oclass_id_t g_last_cid;
static int g_last_flags;

static void logc(const char *fn)
{
	size_t n = strlen(g_log);

	snprintf(g_log + n, sizeof(g_log) - n, "%s%s", n ? " " : "", fn);
}

static bool failing(const char *fn, int *rc)
{
	for (int i = 0; i < MAX_FAILS; i++) {
		if (g_fails[i].fn[0] && strcmp(g_fails[i].fn, fn) == 0) {
			*rc = g_fails[i].rc;
			g_fails[i].fn[0] = '\0';
			return true;
		}
	}
	return false;
}

static uint64_t *slot_find(uint64_t *set, uint64_t cookie)
{
	for (int i = 0; i < MAX_HANDLES; i++)
		if (set[i] == cookie)
			return &set[i];
	return NULL;
}

static uint64_t handle_new(uint64_t *set)
{
	uint64_t *s = slot_find(set, 0);

	if (s == NULL)
		abort();
	*s = g_next_cookie++;
	return *s;
}

static bool handle_drop(uint64_t *set, uint64_t cookie)
{
	uint64_t *s = cookie ? slot_find(set, cookie) : NULL;

	if (s == NULL)
		return false;
	*s = 0;
	return true;
}

static int count(const uint64_t *set)
{
	int n = 0;

	for (int i = 0; i < MAX_HANDLES; i++)
		n += set[i] != 0;
	return n;
}

/* ------------------------------------------------------------ control */

void dd_reset(void)
{
	LOCKED;
	for (int i = 0; i < MAX_FILES; i++)
		free(g_files[i].data);
	memset(g_fails, 0, sizeof(g_fails));
	memset(g_files, 0, sizeof(g_files));
	memset(g_evs, 0, sizeof(g_evs));
	memset(g_pools, 0, sizeof(g_pools));
	memset(g_conts, 0, sizeof(g_conts));
	memset(g_eqs, 0, sizeof(g_eqs));
	memset(g_cont_pool, 0, sizeof(g_cont_pool));
	memset(g_cont_mounts, 0, sizeof(g_cont_mounts));
	g_log[0] = '\0';
	g_next_ev_error = 0;
	g_inits = g_mounts = g_objs = 0;
	g_seq = g_done_seq = 0;
	g_last_cid = 0;
	g_last_flags = 0;
	g_autocomplete = false;
	g_delay_fn[0] = '\0';
}

void dd_delay_next(const char *fn, int ms)
{
	LOCKED;
	snprintf(g_delay_fn, sizeof(g_delay_fn), "%s", fn);
	g_delay_ms = ms;
}

/* Sleep (without the lock) if fn is the function to delay. */
static void maybe_delay(const char *fn)
{
	int ms = 0;

	pthread_mutex_lock(&g_mu);
	if (g_delay_fn[0] && strcmp(g_delay_fn, fn) == 0) {
		ms = g_delay_ms;
		g_delay_fn[0] = '\0';
	}
	pthread_mutex_unlock(&g_mu);
	if (ms > 0)
		usleep((useconds_t)ms * 1000);
}

void dd_set_autocomplete(bool on)
{
	LOCKED;
	g_autocomplete = on;
}

int dd_count_calls(const char *fn)
{
	LOCKED;
	int n = 0;
	size_t len = strlen(fn);

	for (const char *p = g_log; (p = strstr(p, fn)) != NULL; p += len)
		if ((p == g_log || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0'))
			n++;
	return n;
}

void dd_fail_next(const char *fn, int rc)
{
	LOCKED;
	for (int i = 0; i < MAX_FAILS; i++) {
		if (g_fails[i].fn[0] == '\0') {
			snprintf(g_fails[i].fn, sizeof(g_fails[i].fn), "%s", fn);
			g_fails[i].rc = rc;
			return;
		}
	}
	abort();
}

void dd_fail_next_event(int ev_error)
{
	LOCKED;
	g_next_ev_error = ev_error;
}

const char *dd_log(void)
{
	return g_log;
}

void dd_log_clear(void)
{
	LOCKED;
	g_log[0] = '\0';
}

int dd_live_handles(void)
{
	LOCKED;
	return count(g_pools) + count(g_conts) + count(g_eqs) + g_mounts + g_objs + g_inits;
}

static struct dd_file *file_find(const char *name)
{
	for (int i = 0; i < MAX_FILES; i++)
		if (g_files[i].used && strcmp(g_files[i].name, name) == 0)
			return &g_files[i];
	return NULL;
}

size_t dd_file_size(const char *name)
{
	LOCKED;
	struct dd_file *f = file_find(name);

	return f ? f->size : 0;
}

const uint8_t *dd_file_data(const char *name)
{
	struct dd_file *f = file_find(name);

	return f ? f->data : NULL;
}

daos_oclass_id_t dd_last_open_cid(void)
{
	LOCKED;
	return g_last_cid;
}

int dd_last_open_flags(void)
{
	LOCKED;
	return g_last_flags;
}

static int file_resize(struct dd_file *f, size_t size)
{
	if (size > f->size) {
		uint8_t *n = realloc(f->data, size);
		if (n == NULL)
			return ENOMEM;
		memset(n + f->size, 0, size - f->size);
		f->data = n;
	}
	f->size = size;
	return 0;
}

static void finish_read(struct dd_ev *e)
{
	uint64_t pos = e->off, got = 0;

	for (uint32_t i = 0; i < e->sgl->sg_nr; i++) {
		d_iov_t *v = &e->sgl->sg_iovs[i];
		size_t n = v->iov_len;
		if (pos >= e->f->size)
			break;
		if (n > e->f->size - pos)
			n = e->f->size - pos;
		memcpy(v->iov_buf, e->f->data + pos, n);
		pos += n;
		got += n;
		if (n < v->iov_len)
			break;
	}
	*e->read_size = got;
}

int dd_pending(void)
{
	LOCKED;
	int n = 0;

	for (int i = 0; i < MAX_EVENTS; i++)
		n += g_evs[i].state == 1;
	return n;
}

int dd_complete(int nth)
{
	LOCKED;
	struct dd_ev *order[MAX_EVENTS];
	int n = 0;

	for (int i = 0; i < MAX_EVENTS; i++)
		if (g_evs[i].state == 1)
			order[n++] = &g_evs[i];
	/* launch order */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && order[j - 1]->seq > order[j]->seq; j--) {
			struct dd_ev *t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	if (nth < 0 || nth >= n)
		return -1;
	if (order[nth]->is_read && order[nth]->err == 0)
		finish_read(order[nth]);
	order[nth]->state = 2;
	order[nth]->done_seq = ++g_done_seq;
	return 0;
}

void dd_complete_all(void)
{
	LOCKED;
	while (dd_complete(0) == 0)
		;
}

/* --------------------------------------------------------------- daos_* */

int daos_init(void)
{
	LOCKED;
	int rc;

	logc("daos_init");
	if (failing("daos_init", &rc))
		return rc;
	g_inits++;
	return 0;
}

int daos_fini(void)
{
	LOCKED;
	logc("daos_fini");
	if (g_inits == 0)
		return -DER_INVAL;
	g_inits--;
	return 0;
}

int daos_pool_connect(const char *pool, const char *sys, unsigned int flags, daos_handle_t *poh,
		      daos_pool_info_t *info, daos_event_t *ev)
{
	maybe_delay("daos_pool_connect");
	LOCKED;
	int rc;

	logc("daos_pool_connect");
	if (g_inits == 0 || pool == NULL || sys != NULL || info != NULL || ev != NULL || flags != DAOS_PC_RW)
		return -DER_INVAL;
	if (failing("daos_pool_connect", &rc))
		return rc;
	poh->cookie = handle_new(g_pools);
	return 0;
}

int daos_pool_disconnect(daos_handle_t poh, daos_event_t *ev)
{
	LOCKED;
	logc("daos_pool_disconnect");
	if (ev != NULL)
		return -DER_INVAL;
	for (int i = 0; i < MAX_HANDLES; i++)
		if (g_conts[i] && g_cont_pool[i] == poh.cookie)
			return -DER_BUSY; /* the double insists on its containers being closed first */
	return handle_drop(g_pools, poh.cookie) ? 0 : -DER_NO_HDL;
}

int daos_cont_open(daos_handle_t poh, const char *cont, unsigned int flags, daos_handle_t *coh,
		   daos_cont_info_t *info, daos_event_t *ev)
{
	LOCKED;
	int rc;

	logc("daos_cont_open");
	if (slot_find(g_pools, poh.cookie) == NULL || poh.cookie == 0)
		return -DER_NO_HDL;
	if (cont == NULL || info != NULL || ev != NULL || flags != DAOS_COO_RW)
		return -DER_INVAL;
	if (failing("daos_cont_open", &rc))
		return rc;
	coh->cookie = handle_new(g_conts);
	g_cont_pool[slot_find(g_conts, coh->cookie) - g_conts] = poh.cookie;
	g_cont_mounts[slot_find(g_conts, coh->cookie) - g_conts] = 0;
	return 0;
}

int daos_cont_close(daos_handle_t coh, daos_event_t *ev)
{
	LOCKED;
	logc("daos_cont_close");
	if (ev != NULL)
		return -DER_INVAL;
	uint64_t *slot = coh.cookie ? slot_find(g_conts, coh.cookie) : NULL;

	if (slot == NULL)
		return -DER_NO_HDL;
	if (g_cont_mounts[slot - g_conts] > 0)
		return -DER_BUSY; /* unmount first */
	*slot = 0;
	return 0;
}

daos_oclass_id_t daos_oclass_name2id(const char *name)
{
	LOCKED;
	static const char *const known[] = {"SX", "S1", "S2", "RP_2G1", "RP_3GX", "EC_4P2G1"};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (name && strcmp(name, known[i]) == 0)
			return (daos_oclass_id_t)(i + 1);
	return 0;
}

/* ------------------------------------------------------------ events */

static bool eq_live(uint64_t cookie)
{
	return cookie != 0 && slot_find(g_eqs, cookie) != NULL;
}

int daos_eq_create(daos_handle_t *eqh)
{
	LOCKED;
	int rc;

	logc("daos_eq_create");
	if (failing("daos_eq_create", &rc))
		return rc;
	eqh->cookie = handle_new(g_eqs);
	return 0;
}

int daos_eq_destroy(daos_handle_t eqh, int flags)
{
	LOCKED;
	logc("daos_eq_destroy");
	(void)flags;
	if (!eq_live(eqh.cookie))
		return -DER_NO_HDL;
	for (int i = 0; i < MAX_EVENTS; i++)
		if (g_evs[i].state && g_evs[i].eq == eqh.cookie)
			return -DER_BUSY;
	handle_drop(g_eqs, eqh.cookie);
	return 0;
}

int daos_eq_poll(daos_handle_t eqh, int wait_running, int64_t timeout, unsigned int nevents, daos_event_t **events)
{
	LOCKED;
	unsigned int n = 0;

	(void)wait_running;
	if (!eq_live(eqh.cookie) || timeout != DAOS_EQ_NOWAIT)
		return -DER_INVAL;
	while (n < nevents) {
		struct dd_ev *best = NULL;
		for (int i = 0; i < MAX_EVENTS; i++)
			if (g_evs[i].state == 2 && g_evs[i].eq == eqh.cookie &&
			    (best == NULL || g_evs[i].done_seq < best->done_seq))
				best = &g_evs[i];
		if (best == NULL)
			break;
		best->ev->ev_error = best->err;
		best->state = 0;
		events[n++] = best->ev;
	}
	return (int)n;
}

int daos_event_init(daos_event_t *ev, daos_handle_t eqh, daos_event_t *parent)
{
	LOCKED;
	int rc;

	if (failing("daos_event_init", &rc))
		return rc;
	if (!eq_live(eqh.cookie) || parent != NULL)
		return -DER_INVAL;
	memset(ev, 0, sizeof(*ev));
	ev->ev_private.space[0] = eqh.cookie;
	ev->ev_private.space[1] = 0xe7e7;
	return 0;
}

int daos_event_fini(daos_event_t *ev)
{
	LOCKED;
	if (ev->ev_private.space[1] != 0xe7e7)
		return -DER_INVAL;
	for (int i = 0; i < MAX_EVENTS; i++)
		if (g_evs[i].state && g_evs[i].ev == ev)
			return -DER_BUSY; /* still in flight */
	ev->ev_private.space[1] = 0;
	return 0;
}

static int launch(daos_event_t *ev, bool is_read, struct dd_file *f, d_sg_list_t *sgl, daos_off_t off,
		  daos_size_t *read_size)
{
	if (ev == NULL || ev->ev_private.space[1] != 0xe7e7)
		return EINVAL; /* this double has no blocking I/O */
	for (int i = 0; i < MAX_EVENTS; i++) {
		if (g_evs[i].state == 0) {
			g_evs[i] = (struct dd_ev){.ev = ev, .eq = ev->ev_private.space[0], .state = 1, .seq = ++g_seq,
						  .is_read = is_read, .f = f, .sgl = sgl, .off = off,
						  .read_size = read_size, .err = g_next_ev_error};
			g_next_ev_error = 0;
			if (g_autocomplete) {
				if (is_read && g_evs[i].err == 0)
					finish_read(&g_evs[i]);
				g_evs[i].state = 2;
				g_evs[i].done_seq = ++g_done_seq;
			}
			return 0;
		}
	}
	return ENOMEM;
}

/* --------------------------------------------------------------- dfs_* */

int dfs_mount(daos_handle_t poh, daos_handle_t coh, int flags, dfs_t **dfs)
{
	LOCKED;
	int rc;

	logc("dfs_mount");
	if (slot_find(g_pools, poh.cookie) == NULL || slot_find(g_conts, coh.cookie) == NULL || poh.cookie == 0 ||
	    coh.cookie == 0)
		return EINVAL;
	if (flags != O_RDWR)
		return EINVAL;
	if (failing("dfs_mount", &rc))
		return rc;
	*dfs = calloc(1, sizeof(**dfs));
	(*dfs)->magic = 0xdf5;
	(*dfs)->coh = coh.cookie;
	g_cont_mounts[slot_find(g_conts, coh.cookie) - g_conts]++;
	g_mounts++;
	return 0;
}

int dfs_umount(dfs_t *dfs)
{
	LOCKED;
	logc("dfs_umount");
	if (dfs == NULL || dfs->magic != 0xdf5)
		return EINVAL;
	if (dfs->nobjs > 0)
		return EBUSY; /* release the objects first */
	if (slot_find(g_conts, dfs->coh))
		g_cont_mounts[slot_find(g_conts, dfs->coh) - g_conts]--;
	dfs->magic = 0;
	free(dfs);
	g_mounts--;
	return 0;
}

int dfs_open(dfs_t *dfs, dfs_obj_t *parent, const char *name, mode_t mode, int flags, daos_oclass_id_t cid,
	     daos_size_t chunk_size, const char *value, dfs_obj_t **obj)
{
	LOCKED;
	struct dd_file *f;
	int rc;

	(void)chunk_size;
	logc("dfs_open");
	if (dfs == NULL || dfs->magic != 0xdf5 || parent != NULL || value != NULL || name == NULL ||
	    strchr(name, '/') || (mode & 0170000) != 0100000)
		return EINVAL;
	g_last_cid = cid;
	g_last_flags = flags;
	if (failing("dfs_open", &rc))
		return rc;
	f = file_find(name);
	if (f == NULL) {
		if (!(flags & O_CREAT))
			return ENOENT;
		for (int i = 0; i < MAX_FILES && f == NULL; i++)
			if (!g_files[i].used)
				f = &g_files[i];
		if (f == NULL)
			return ENOSPC;
		memset(f, 0, sizeof(*f));
		f->used = true;
		snprintf(f->name, sizeof(f->name), "%s", name);
	}
	*obj = calloc(1, sizeof(**obj));
	(*obj)->f = f;
	(*obj)->dfs = dfs;
	dfs->nobjs++;
	g_objs++;
	return 0;
}

int dfs_release(dfs_obj_t *obj)
{
	LOCKED;
	logc("dfs_release");
	if (obj == NULL)
		return EINVAL;
	obj->dfs->nobjs--;
	free(obj);
	g_objs--;
	return 0;
}

int dfs_read(dfs_t *dfs, dfs_obj_t *obj, d_sg_list_t *sgl, daos_off_t off, daos_size_t *read_size,
	     daos_event_t *ev)
{
	LOCKED;
	int rc;

	if (dfs == NULL || obj == NULL || sgl == NULL || read_size == NULL)
		return EINVAL;
	if (failing("dfs_read", &rc))
		return rc;
	return launch(ev, true, obj->f, sgl, off, read_size);
}

int dfs_write(dfs_t *dfs, dfs_obj_t *obj, d_sg_list_t *sgl, daos_off_t off, daos_event_t *ev)
{
	LOCKED;
	uint64_t total = 0, pos = off;
	int everr = g_next_ev_error;
	int rc;

	if (dfs == NULL || obj == NULL || sgl == NULL)
		return EINVAL;
	if (failing("dfs_write", &rc))
		return rc;
	for (uint32_t i = 0; i < sgl->sg_nr; i++)
		total += sgl->sg_iovs[i].iov_len;
	rc = launch(ev, false, obj->f, sgl, off, NULL);
	if (rc)
		return rc;
	if (everr != 0)
		return 0; /* the write fails: nothing lands */
	if (off + total > obj->f->size && file_resize(obj->f, off + total) != 0)
		return ENOMEM;
	for (uint32_t i = 0; i < sgl->sg_nr; i++) {
		memcpy(obj->f->data + pos, sgl->sg_iovs[i].iov_buf, sgl->sg_iovs[i].iov_len);
		pos += sgl->sg_iovs[i].iov_len;
	}
	return 0;
}

int dfs_punch(dfs_t *dfs, dfs_obj_t *obj, daos_off_t offset, daos_size_t len)
{
	LOCKED;
	int rc;

	if (dfs == NULL || obj == NULL)
		return EINVAL;
	if (failing("dfs_punch", &rc))
		return rc;
	if (len == DFS_MAX_FSIZE)
		return file_resize(obj->f, offset);
	if (offset < obj->f->size) {
		if (len > obj->f->size - offset)
			len = obj->f->size - offset;
		memset(obj->f->data + offset, 0, len);
	}
	return 0;
}

int dfs_get_size(dfs_t *dfs, dfs_obj_t *obj, daos_size_t *size)
{
	LOCKED;
	if (dfs == NULL || obj == NULL)
		return EINVAL;
	*size = obj->f->size;
	return 0;
}

int dfs_getxattr(dfs_t *dfs, dfs_obj_t *obj, const char *name, void *value, daos_size_t *size)
{
	LOCKED;
	if (dfs == NULL || obj == NULL)
		return EINVAL;
	for (int i = 0; i < obj->f->nx; i++) {
		struct xattr *x = &obj->f->x[i];
		if (strcmp(x->name, name) == 0) {
			if (*size < x->len)
				return E2BIG; /* as DFS: the fetch fails with -DER_REC2BIG */
			memcpy(value, x->val, x->len);
			*size = x->len;
			return 0;
		}
	}
	return ENODATA;
}

int dfs_setxattr(dfs_t *dfs, dfs_obj_t *obj, const char *name, const void *value, daos_size_t size, int flags)
{
	LOCKED;
	struct xattr *x = NULL;

	if (dfs == NULL || obj == NULL || flags != 0 || size > sizeof(x->val))
		return EINVAL;
	for (int i = 0; i < obj->f->nx; i++)
		if (strcmp(obj->f->x[i].name, name) == 0)
			x = &obj->f->x[i];
	if (x == NULL) {
		if (obj->f->nx == MAX_XATTRS)
			return ENOSPC;
		x = &obj->f->x[obj->f->nx++];
		snprintf(x->name, sizeof(x->name), "%s", name);
	}
	memcpy(x->val, value, size);
	x->len = size;
	return 0;
}
