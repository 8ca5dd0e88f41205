/*
 * The bdev core: registry, descriptors, claims, per-thread bdev channels with
 * a preallocated bdev_io pool, splitting, emulation (write zeroes, compare),
 * reset, NOMEM queueing, statistics and JSON.
 */
#include "bdev/bdev_module.h"
#include "thread/thread.h"
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

/*
 * Per channel: BDEV_IO_POOL_SIZE bdev_io for submissions, plus a reserve only
 * split children may use, so parents waiting for children always progress.
 */
#define BDEV_IO_POOL_SIZE 512
#define BDEV_IO_CHILD_RESERVE 32
#define BDEV_IO_POOL_TOTAL (BDEV_IO_POOL_SIZE + BDEV_IO_CHILD_RESERVE)
#define BDEV_IO_INLINE_IOVS 32
#define BDEV_ZERO_BUF_SIZE (1024 * 1024)
#define BDEV_CMP_BUF_SIZE (1024 * 1024) /* per channel, for emulated COMPARE */
#define BDEV_NOMEM_RETRY_US 100
#define BDEV_QOS_SLICE_NS 1000000ull /* QoS budget refill period: 1 ms */

struct bio;
TAILQ_HEAD(bio_list, bio);

/* The core's bdev_io: public part first, driver context after it. */
struct bio {
	struct dbk_bdev_io io;
	struct bdev_channel *ch;
	TAILQ_ENTRY(bio) link;	       /* free list, nomem queue, split wait, resets */
	TAILQ_ENTRY(bio) inflight_link; /* top-level in flight */
	uint64_t seq;
	uint64_t submit_ns;
	dbk_bdev_io_completion_cb cb;
	void *cb_arg;
	int status; /* enum dbk_bdev_io_status */
	int err;
	int sct, sc;
	bool top;
	bool in_use;
	bool on_inflight;
	bool queued_nomem;
	/* parent of a split / emulation */
	struct bio *parent;
	bool is_parent;
	bool zero_src; /* children write the shared zero buffer */
	bool compare_emul;
	bool splitting;
	bool split_waiting;
	bool split_failed;
	enum dbk_bdev_io_type child_type;
	struct iovec *src_iovs;
	int src_iovcnt;
	int src_idx;
	size_t src_off;
	uint64_t split_off;
	uint64_t split_left;
	uint32_t split_outstanding;
	struct iovec iovs[BDEV_IO_INLINE_IOVS];
};

struct bdev_channel {
	struct dbk_bdev *bdev;
	struct dbk_io_channel *mod_ch;
	struct dbk_thread *thread;
	char *pool;
	size_t stride;
	struct bio_list free_list;
	struct bio_list nomem_q;
	struct bio_list split_wait;
	struct bio_list inflight;
	struct bio_list resets;
	struct dbk_bdev_io_wait_entry *wait_head, *wait_tail;
	uint64_t next_seq;
	uint32_t module_outstanding;
	uint32_t free_count;
	struct dbk_poller *nomem_poller;
	struct bio_list qos_q;
	struct dbk_poller *qos_poller;
	/* completions reached inside a submit call wait here, delivered when the outermost submit returns */
	struct bio_list deferred;
	uint32_t submit_depth;
	bool draining;
	void *cmp_buf;		  /* emulated COMPARE: chunks are read here (allocated on first use) */
	struct bio *cmp_owner;	  /* the compare using cmp_buf */
	struct bio_list cmp_wait; /* compares waiting for it */
	bool retrying;
	bool in_waiters;
	struct dbk_bdev_io_stat stat;
};

struct dbk_bdev_desc {
	struct dbk_bdev *bdev;
	bool write;
	bool closed;
	dbk_bdev_event_cb event_cb;
	void *event_ctx;
	struct dbk_thread *thread;
	atomic_int refs;
	TAILQ_ENTRY(dbk_bdev_desc) link;
};

struct dbk_bdev_internal {
	struct dbk_bdev *bdev;
	char *name;
	char **aliases;
	int num_aliases;
	TAILQ_ENTRY(dbk_bdev_internal) link;
	TAILQ_HEAD(, dbk_bdev_desc) descs;
	char *claim_owner;
	struct dbk_bdev_desc *claim_desc;
	bool removing;
	bool dev_unregistering;
	void (*unreg_cb)(void *cb_arg, int rc);
	void *unreg_arg;
	pthread_mutex_t stat_lock;
	struct dbk_bdev_io_stat folded;
	/* QoS, shared by the channels of all threads: per-second limits and the current 1 ms slice's budgets */
	_Atomic uint64_t qos_limit[DBK_BDEV_QOS_NUM_LIMITS];
	_Atomic int64_t qos_budget[DBK_BDEV_QOS_NUM_LIMITS];
	_Atomic uint64_t qos_slice_start;
	atomic_bool qos_enabled;
};

static TAILQ_HEAD(bdev_list, dbk_bdev_internal) g_bdevs = TAILQ_HEAD_INITIALIZER(g_bdevs);
static void *g_zero_buf;
static bool g_initialized;

static const char *const g_io_type_names[DBK_BDEV_NUM_IO_TYPES] = {
	"read", "write", "flush", "unmap", "write_zeroes", "reset", "compare",
};

const char *dbk_bdev_io_type_name(enum dbk_bdev_io_type type)
{
	if ((unsigned)type >= DBK_BDEV_NUM_IO_TYPES)
		return "unknown";
	return g_io_type_names[type];
}

static inline struct bio *to_bio(struct dbk_bdev_io *io)
{
	return (struct bio *)io;
}

static inline const struct bio *to_cbio(const struct dbk_bdev_io *io)
{
	return (const struct bio *)io;
}

/* ------------------------------------------------------------------ registry */

static bool name_taken(const char *name)
{
	return dbk_bdev_get_by_name(name) != NULL;
}

struct dbk_bdev *dbk_bdev_get_by_name(const char *name)
{
	struct dbk_bdev_internal *in;
	uuid_t u;
	bool is_uuid;

	if (name == NULL)
		return NULL;
	is_uuid = uuid_parse(name, u) == 0;
	TAILQ_FOREACH(in, &g_bdevs, link) {
		if (strcmp(in->name, name) == 0)
			return in->bdev;
		for (int i = 0; i < in->num_aliases; i++)
			if (strcmp(in->aliases[i], name) == 0)
				return in->bdev;
		if (is_uuid && uuid_compare(u, in->bdev->uuid) == 0)
			return in->bdev;
	}
	return NULL;
}

struct dbk_bdev *dbk_bdev_first(void)
{
	struct dbk_bdev_internal *in = TAILQ_FIRST(&g_bdevs);
	return in ? in->bdev : NULL;
}

struct dbk_bdev *dbk_bdev_next(struct dbk_bdev *prev)
{
	struct dbk_bdev_internal *in = prev ? TAILQ_NEXT(prev->internal, link) : NULL;
	return in ? in->bdev : NULL;
}

const char *dbk_bdev_get_name(const struct dbk_bdev *bdev)
{
	return bdev->internal ? bdev->internal->name : bdev->name;
}

const char *dbk_bdev_get_product_name(const struct dbk_bdev *bdev)
{
	return bdev->product_name ? bdev->product_name : "";
}

const char *dbk_bdev_get_module_name(const struct dbk_bdev *bdev)
{
	return bdev->module ? bdev->module->name : "";
}

uint32_t dbk_bdev_get_block_size(const struct dbk_bdev *bdev)
{
	return bdev->blocklen;
}

uint64_t dbk_bdev_get_num_blocks(const struct dbk_bdev *bdev)
{
	return __atomic_load_n(&bdev->blockcnt, __ATOMIC_RELAXED);
}

const uuid_t *dbk_bdev_get_uuid(const struct dbk_bdev *bdev)
{
	return &bdev->uuid;
}

static bool native_supported(const struct dbk_bdev *bdev, enum dbk_bdev_io_type type)
{
	return bdev->fn_table->io_type_supported(bdev->ctxt, type);
}

bool dbk_bdev_io_type_supported(struct dbk_bdev *bdev, enum dbk_bdev_io_type type)
{
	switch (type) {
	case DBK_BDEV_IO_TYPE_RESET:
		return true;
	case DBK_BDEV_IO_TYPE_WRITE_ZEROES:
	case DBK_BDEV_IO_TYPE_COMPARE:
		return native_supported(bdev, type) ||
		       native_supported(bdev, type == DBK_BDEV_IO_TYPE_COMPARE ? DBK_BDEV_IO_TYPE_READ
									  : DBK_BDEV_IO_TYPE_WRITE);
	case DBK_BDEV_IO_TYPE_FLUSH:
		return native_supported(bdev, type) || !bdev->write_cache;
	default:
		if ((unsigned)type >= DBK_BDEV_NUM_IO_TYPES)
			return false;
		return native_supported(bdev, type);
	}
}

bool dbk_bdev_has_write_cache(const struct dbk_bdev *bdev)
{
	return bdev->write_cache;
}

uint32_t dbk_bdev_get_max_transfer_blocks(const struct dbk_bdev *bdev)
{
	return bdev->max_rw_blocks;
}

const char *dbk_bdev_get_claim_owner(const struct dbk_bdev *bdev)
{
	return bdev->internal ? bdev->internal->claim_owner : NULL;
}

static void stat_init(struct dbk_bdev_io_stat *s)
{
	memset(s, 0, sizeof(*s));
	for (int i = 0; i < DBK_BDEV_NUM_IO_TYPES; i++)
		s->lat_min_ns[i] = UINT64_MAX;
}

static void stat_add(struct dbk_bdev_io_stat *to, const struct dbk_bdev_io_stat *from)
{
	for (int i = 0; i < DBK_BDEV_NUM_IO_TYPES; i++) {
		to->ops[i] += from->ops[i];
		to->bytes[i] += from->bytes[i];
		to->errors[i] += from->errors[i];
		to->lat_total_ns[i] += from->lat_total_ns[i];
		if (from->lat_min_ns[i] < to->lat_min_ns[i])
			to->lat_min_ns[i] = from->lat_min_ns[i];
		if (from->lat_max_ns[i] > to->lat_max_ns[i])
			to->lat_max_ns[i] = from->lat_max_ns[i];
		for (int j = 0; j < DBK_BDEV_LAT_BUCKETS; j++)
			to->lat_hist[i][j] += from->lat_hist[i][j];
	}
}

/* ----------------------------------------------------------- channels */

static size_t align16(size_t n)
{
	return (n + 15) & ~(size_t)15;
}

static int bdev_channel_create(void *io_device, void *ctx_buf)
{
	struct dbk_bdev_internal *in = io_device;
	struct dbk_bdev *bdev = in->bdev;
	struct bdev_channel *bch = ctx_buf;
	size_t ctx_size = bdev->module && bdev->module->get_ctx_size ? bdev->module->get_ctx_size() : 0;

	bch->bdev = bdev;
	bch->thread = dbk_get_thread();
	TAILQ_INIT(&bch->free_list);
	TAILQ_INIT(&bch->nomem_q);
	TAILQ_INIT(&bch->split_wait);
	TAILQ_INIT(&bch->inflight);
	TAILQ_INIT(&bch->resets);
	TAILQ_INIT(&bch->qos_q);
	TAILQ_INIT(&bch->cmp_wait);
	TAILQ_INIT(&bch->deferred);
	stat_init(&bch->stat);
	bch->stride = align16(sizeof(struct bio)) + align16(ctx_size);
	if (posix_memalign((void **)&bch->pool, 64, bch->stride * BDEV_IO_POOL_TOTAL) != 0)
		return -ENOMEM;
	memset(bch->pool, 0, bch->stride * BDEV_IO_POOL_TOTAL);
	for (int i = 0; i < BDEV_IO_POOL_TOTAL; i++) {
		struct bio *b = (struct bio *)(bch->pool + (size_t)i * bch->stride);
		b->ch = bch;
		b->io.driver_ctx = ctx_size ? (char *)b + align16(sizeof(struct bio)) : NULL;
		TAILQ_INSERT_TAIL(&bch->free_list, b, link);
	}
	bch->free_count = BDEV_IO_POOL_TOTAL;
	bch->mod_ch = bdev->fn_table->get_io_channel(bdev->ctxt);
	if (bch->mod_ch == NULL) {
		free(bch->pool);
		return -ENOMEM;
	}
	return 0;
}

static void bdev_channel_destroy(void *io_device, void *ctx_buf)
{
	struct dbk_bdev_internal *in = io_device;
	struct bdev_channel *bch = ctx_buf;

	if (bch->free_count != BDEV_IO_POOL_TOTAL)
		DBK_WARNLOG("bdev %s: channel destroyed with %u bdev_io not freed", in->name,
			    BDEV_IO_POOL_TOTAL - bch->free_count);
	if (bch->nomem_poller)
		dbk_poller_unregister(&bch->nomem_poller);
	if (bch->qos_poller)
		dbk_poller_unregister(&bch->qos_poller);
	pthread_mutex_lock(&in->stat_lock);
	stat_add(&in->folded, &bch->stat);
	pthread_mutex_unlock(&in->stat_lock);
	dbk_put_io_channel(bch->mod_ch);
	free(bch->cmp_buf);
	free(bch->pool);
	bch->pool = NULL;
}

struct dbk_io_channel *dbk_bdev_get_io_channel(struct dbk_bdev_desc *desc)
{
	return dbk_get_io_channel(desc->bdev->internal);
}

struct dbk_io_channel *dbk_bdev_io_get_io_channel(struct dbk_bdev_io *io)
{
	return to_bio(io)->ch->mod_ch;
}

/* ------------------------------------------------------- register / unregister */

int dbk_bdev_register(struct dbk_bdev *bdev)
{
	struct dbk_bdev_internal *in;

	if (bdev == NULL || bdev->name == NULL || bdev->name[0] == '\0' || bdev->fn_table == NULL ||
	    bdev->fn_table->submit_request == NULL || bdev->fn_table->io_type_supported == NULL ||
	    bdev->fn_table->get_io_channel == NULL || bdev->fn_table->destruct == NULL) {
		DBK_ERRLOG("bdev registration: missing name or function table");
		return -EINVAL;
	}
	if (bdev->blocklen == 0 || bdev->blocklen % 512 != 0 || bdev->blockcnt == 0 ||
	    bdev->blockcnt > UINT64_MAX / bdev->blocklen) {
		DBK_ERRLOG("bdev %s: invalid geometry (block_size %u, num_blocks %lu)", bdev->name, bdev->blocklen,
			   (unsigned long)bdev->blockcnt);
		return -EINVAL;
	}
	if (name_taken(bdev->name)) {
		DBK_ERRLOG("bdev %s already exists", bdev->name);
		return -EEXIST;
	}
	if (uuid_is_null(bdev->uuid)) {
		uuid_generate(bdev->uuid);
	} else {
		char s[37];
		uuid_unparse_lower(bdev->uuid, s);
		if (name_taken(s)) {
			DBK_ERRLOG("bdev %s: uuid %s already in use", bdev->name, s);
			return -EEXIST;
		}
	}
	in = calloc(1, sizeof(*in));
	if (in == NULL)
		return -ENOMEM;
	in->name = strdup(bdev->name);
	if (in->name == NULL) {
		free(in);
		return -ENOMEM;
	}
	in->bdev = bdev;
	TAILQ_INIT(&in->descs);
	pthread_mutex_init(&in->stat_lock, NULL);
	stat_init(&in->folded);
	bdev->internal = in;
	dbk_io_device_register(in, bdev_channel_create, bdev_channel_destroy, sizeof(struct bdev_channel),
			       in->name);
	TAILQ_INSERT_TAIL(&g_bdevs, in, link);
	DBK_INFOLOG("bdev %s registered (%s, %lu x %u)", in->name, dbk_bdev_get_module_name(bdev),
		    (unsigned long)bdev->blockcnt, bdev->blocklen);
	return 0;
}

int dbk_bdev_alias_add(struct dbk_bdev *bdev, const char *alias)
{
	struct dbk_bdev_internal *in = bdev->internal;
	char **na;

	if (alias == NULL || alias[0] == '\0' || in == NULL)
		return -EINVAL;
	if (name_taken(alias))
		return -EEXIST;
	na = realloc(in->aliases, sizeof(char *) * (in->num_aliases + 1));
	if (na == NULL)
		return -ENOMEM;
	in->aliases = na;
	na[in->num_aliases] = strdup(alias);
	if (na[in->num_aliases] == NULL)
		return -ENOMEM;
	in->num_aliases++;
	return 0;
}

static void internal_free(struct dbk_bdev_internal *in)
{
	for (int i = 0; i < in->num_aliases; i++)
		free(in->aliases[i]);
	free(in->aliases);
	free(in->claim_owner);
	pthread_mutex_destroy(&in->stat_lock);
	free(in->name);
	free(in);
}

static void unregister_finish(struct dbk_bdev_internal *in, int rc)
{
	void (*cb)(void *, int) = in->unreg_cb;
	void *arg = in->unreg_arg;

	DBK_INFOLOG("bdev %s unregistered", in->name);
	internal_free(in);
	if (cb)
		cb(arg, rc);
}

void dbk_bdev_destruct_done(struct dbk_bdev *bdev, int rc)
{
	struct dbk_bdev_internal *in = bdev->internal;

	bdev->internal = NULL;
	unregister_finish(in, rc);
}

static void io_device_gone(void *io_device)
{
	struct dbk_bdev_internal *in = io_device;
	struct dbk_bdev *bdev = in->bdev;
	int rc;

	TAILQ_REMOVE(&g_bdevs, in, link);
	rc = bdev->fn_table->destruct(bdev->ctxt);
	if (rc == 1)
		return; /* dbk_bdev_destruct_done later */
	/* the module may have freed bdev */
	unregister_finish(in, rc < 0 ? rc : 0);
}

static void unregister_maybe_continue(struct dbk_bdev_internal *in)
{
	if (!in->removing || !TAILQ_EMPTY(&in->descs) || in->dev_unregistering)
		return;
	in->dev_unregistering = true;
	dbk_io_device_unregister(in, io_device_gone);
}

static void desc_put(struct dbk_bdev_desc *desc)
{
	if (atomic_fetch_sub(&desc->refs, 1) == 1)
		free(desc);
}

struct event_msg {
	struct dbk_bdev_desc *desc;
	enum dbk_bdev_event_type type;
};

static void event_msg_run(void *ctx)
{
	struct event_msg *m = ctx;

	if (!__atomic_load_n(&m->desc->closed, __ATOMIC_ACQUIRE) && m->desc->event_cb)
		m->desc->event_cb(m->type, m->desc->bdev, m->desc->event_ctx);
	desc_put(m->desc);
	free(m);
}

static void send_event(struct dbk_bdev_desc *desc, enum dbk_bdev_event_type type)
{
	struct event_msg *m = malloc(sizeof(*m));

	if (m == NULL) {
		DBK_ERRLOG("out of memory delivering bdev event");
		return;
	}
	m->desc = desc;
	m->type = type;
	atomic_fetch_add(&desc->refs, 1);
	if (dbk_thread_send_msg(desc->thread, event_msg_run, m) != 0) {
		desc_put(desc);
		free(m);
	}
}

void dbk_bdev_unregister(struct dbk_bdev *bdev, void (*cb)(void *cb_arg, int rc), void *cb_arg)
{
	struct dbk_bdev_internal *in = bdev ? bdev->internal : NULL;
	struct dbk_bdev_desc *d;

	if (in == NULL || in->removing) {
		if (cb)
			cb(cb_arg, in ? -EBUSY : -ENODEV);
		return;
	}
	in->removing = true;
	in->unreg_cb = cb;
	in->unreg_arg = cb_arg;
	TAILQ_FOREACH(d, &in->descs, link)
		send_event(d, DBK_BDEV_EVENT_REMOVE);
	unregister_maybe_continue(in);
}

int dbk_bdev_unregister_by_name(const char *name, struct dbk_bdev_module *mod, void (*cb)(void *cb_arg, int rc),
				void *cb_arg)
{
	struct dbk_bdev *bdev = dbk_bdev_get_by_name(name);

	if (bdev == NULL || (mod && bdev->module != mod))
		return -ENODEV;
	if (bdev->internal->removing)
		return -EBUSY;
	dbk_bdev_unregister(bdev, cb, cb_arg);
	return 0;
}

int dbk_bdev_notify_blockcnt_change(struct dbk_bdev *bdev, uint64_t blockcnt)
{
	struct dbk_bdev_desc *d;

	if (blockcnt == 0 || blockcnt > UINT64_MAX / bdev->blocklen)
		return -EINVAL;
	__atomic_store_n(&bdev->blockcnt, blockcnt, __ATOMIC_RELAXED);
	if (bdev->internal)
		TAILQ_FOREACH(d, &bdev->internal->descs, link)
			send_event(d, DBK_BDEV_EVENT_RESIZE);
	return 0;
}

/* ------------------------------------------------------------- open/close */

int dbk_bdev_open_ext(const char *name, bool write, dbk_bdev_event_cb event_cb, void *event_ctx,
		      struct dbk_bdev_desc **descp)
{
	struct dbk_bdev *bdev = dbk_bdev_get_by_name(name);
	struct dbk_bdev_desc *desc;

	if (bdev == NULL || bdev->internal->removing)
		return -ENODEV;
	if (event_cb == NULL)
		return -EINVAL;
	desc = calloc(1, sizeof(*desc));
	if (desc == NULL)
		return -ENOMEM;
	desc->bdev = bdev;
	desc->write = write;
	desc->event_cb = event_cb;
	desc->event_ctx = event_ctx;
	desc->thread = dbk_get_thread() ? dbk_get_thread() : dbk_reactor_thread(0);
	atomic_init(&desc->refs, 1);
	TAILQ_INSERT_TAIL(&bdev->internal->descs, desc, link);
	*descp = desc;
	return 0;
}

static void close_on_main(void *ctx)
{
	struct dbk_bdev_desc *desc = ctx;
	struct dbk_bdev_internal *in = desc->bdev->internal;

	if (in->claim_desc == desc) {
		free(in->claim_owner);
		in->claim_owner = NULL;
		in->claim_desc = NULL;
	}
	TAILQ_REMOVE(&in->descs, desc, link);
	desc_put(desc);
	unregister_maybe_continue(in);
}

void dbk_bdev_close(struct dbk_bdev_desc *desc)
{
	if (desc == NULL)
		return;
	__atomic_store_n(&desc->closed, true, __ATOMIC_RELEASE);
	if (dbk_is_main_thread() || dbk_get_thread() == NULL)
		close_on_main(desc);
	else
		dbk_thread_send_msg(dbk_reactor_thread(0), close_on_main, desc);
}

struct dbk_bdev *dbk_bdev_desc_get_bdev(struct dbk_bdev_desc *desc)
{
	return desc->bdev;
}

int dbk_bdev_claim(struct dbk_bdev_desc *desc, const char *owner)
{
	struct dbk_bdev_internal *in = desc->bdev->internal;

	if (in->claim_owner != NULL)
		return -EPERM;
	in->claim_owner = strdup(owner ? owner : "unknown");
	if (in->claim_owner == NULL)
		return -ENOMEM;
	in->claim_desc = desc;
	return 0;
}

void dbk_bdev_release_claim(struct dbk_bdev_desc *desc)
{
	struct dbk_bdev_internal *in = desc->bdev->internal;

	if (in->claim_desc != desc)
		return;
	free(in->claim_owner);
	in->claim_owner = NULL;
	in->claim_desc = NULL;
}

/* ---------------------------------------------------------------- I/O engine */

static struct bio *bio_get(struct bdev_channel *bch)
{
	struct bio *b = TAILQ_FIRST(&bch->free_list);

	if (b == NULL)
		return NULL;
	TAILQ_REMOVE(&bch->free_list, b, link);
	bch->free_count--;
	b->in_use = true;
	b->parent = NULL;
	b->is_parent = false;
	b->zero_src = false;
	b->compare_emul = false;
	b->splitting = false;
	b->split_waiting = false;
	b->split_failed = false;
	b->split_outstanding = 0;
	b->top = false;
	b->on_inflight = false;
	b->queued_nomem = false;
	b->status = DBK_BDEV_IO_STATUS_PENDING;
	b->err = 0;
	b->sct = b->sc = 0;
	b->cb = NULL;
	b->cb_arg = NULL;
	b->io.bdev = bch->bdev;
	return b;
}

static void bio_put(struct bdev_channel *bch, struct bio *b)
{
	b->in_use = false;
	TAILQ_INSERT_HEAD(&bch->free_list, b, link);
	bch->free_count++;
}

static void split_continue(struct bio *p);

static void process_waiters(struct bdev_channel *bch)
{
	if (bch->in_waiters)
		return;
	bch->in_waiters = true;
	while (!TAILQ_EMPTY(&bch->free_list)) {
		struct bio *p = TAILQ_FIRST(&bch->split_wait);
		if (p) {
			TAILQ_REMOVE(&bch->split_wait, p, link);
			p->split_waiting = false;
			split_continue(p);
			continue;
		}
		struct dbk_bdev_io_wait_entry *e = bch->wait_head;
		if (e == NULL || bch->free_count <= BDEV_IO_CHILD_RESERVE)
			break;
		bch->wait_head = e->next;
		if (bch->wait_head == NULL)
			bch->wait_tail = NULL;
		e->next = NULL;
		e->cb_fn(e->cb_arg);
	}
	bch->in_waiters = false;
}

void dbk_bdev_free_io(struct dbk_bdev_io *io)
{
	struct bio *b = to_bio(io);
	struct bdev_channel *bch = b->ch;

	if (!b->in_use) {
		DBK_ERRLOG("double free of bdev_io %p", (void *)io);
		return;
	}
	bio_put(bch, b);
	process_waiters(bch);
}

int dbk_bdev_queue_io_wait(struct dbk_bdev *bdev, struct dbk_io_channel *ch, struct dbk_bdev_io_wait_entry *entry)
{
	struct bdev_channel *bch = dbk_io_channel_get_ctx(ch);

	if (entry == NULL || entry->cb_fn == NULL || bch->bdev != bdev)
		return -EINVAL;
	if (bch->free_count > BDEV_IO_CHILD_RESERVE && TAILQ_EMPTY(&bch->split_wait))
		return -EINVAL; /* bdev_io available: retry now */
	entry->bdev = bdev;
	entry->next = NULL;
	if (bch->wait_tail)
		bch->wait_tail->next = entry;
	else
		bch->wait_head = entry;
	bch->wait_tail = entry;
	return 0;
}

static void module_submit(struct bio *b)
{
	struct bdev_channel *bch = b->ch;

	bch->module_outstanding++;
	b->status = DBK_BDEV_IO_STATUS_PENDING;
	bch->bdev->fn_table->submit_request(bch->mod_ch, &b->io);
}

static uint64_t io_bytes(const struct bio *b)
{
	switch (b->io.type) {
	case DBK_BDEV_IO_TYPE_FLUSH:
	case DBK_BDEV_IO_TYPE_RESET:
		return 0;
	default:
		return b->io.u.num_blocks * b->io.bdev->blocklen;
	}
}

static void check_resets(struct bdev_channel *bch);

static void complete_top_now(struct bio *b)
{
	struct bdev_channel *bch = b->ch;
	struct dbk_bdev_io_stat *st = &bch->stat;
	enum dbk_bdev_io_type t = b->io.type;
	bool ok = b->status == DBK_BDEV_IO_STATUS_SUCCESS;
	/* One clock read per I/O: refresh the reactor's cached time for the submits that follow. */
	uint64_t now = dbk_get_ns();
	uint64_t lat = now > b->submit_ns ? now - b->submit_ns : 0;

	dbk_thread_set_now_ns(now);

	if (ok) {
		st->ops[t]++;
		st->bytes[t] += io_bytes(b);
		st->lat_total_ns[t] += lat;
		if (lat < st->lat_min_ns[t])
			st->lat_min_ns[t] = lat;
		if (lat > st->lat_max_ns[t])
			st->lat_max_ns[t] = lat;
		st->lat_hist[t][dbk_bdev_lat_bucket(lat)]++;
	} else {
		st->errors[t]++;
	}
	if (b->on_inflight) {
		TAILQ_REMOVE(&bch->inflight, b, inflight_link);
		b->on_inflight = false;
	}
	b->cb(&b->io, ok, b->cb_arg);
	check_resets(bch);
}

/*
 * Deliver a top-level completion. Inside a submit call (a module that
 * completes synchronously) it is deferred to the end of the outermost submit,
 * so callbacks that submit again iterate instead of recursing.
 */
static void complete_top(struct bio *b)
{
	struct bdev_channel *bch = b->ch;

	if (bch->submit_depth > 0 || bch->draining) {
		TAILQ_INSERT_TAIL(&bch->deferred, b, link);
		return;
	}
	complete_top_now(b);
}

static void drain_deferred(struct bdev_channel *bch)
{
	struct bio *b;

	bch->draining = true;
	while ((b = TAILQ_FIRST(&bch->deferred)) != NULL) {
		TAILQ_REMOVE(&bch->deferred, b, link);
		complete_top_now(b);
	}
	bch->draining = false;
}

/* Compare len bytes of iov, starting skip bytes in, with buf. */
static bool iov_equal_at(const struct iovec *iov, int iovcnt, size_t skip, const uint8_t *buf, size_t len)
{
	size_t off = 0;

	for (int i = 0; i < iovcnt && off < len; i++) {
		size_t n = iov[i].iov_len;
		const uint8_t *base = iov[i].iov_base;
		if (skip >= n) {
			skip -= n;
			continue;
		}
		base += skip;
		n -= skip;
		skip = 0;
		if (n > len - off)
			n = len - off;
		if (memcmp(base, buf + off, n) != 0)
			return false;
		off += n;
	}
	return off == len;
}

static void dispatch(struct bio *b);

static void parent_finish(struct bio *p)
{
	if (p->split_waiting) {
		TAILQ_REMOVE(&p->ch->split_wait, p, link);
		p->split_waiting = false;
	}
	if (!p->split_failed)
		p->status = DBK_BDEV_IO_STATUS_SUCCESS;
	if (p->compare_emul) {
		struct bdev_channel *bch = p->ch;
		struct bio *next = TAILQ_FIRST(&bch->cmp_wait);
		bch->cmp_owner = NULL;
		if (next)
			TAILQ_REMOVE(&bch->cmp_wait, next, link);
		complete_top(p);
		if (next)
			dispatch(next);
		return;
	}
	complete_top(p);
}

/* Build the next child of p into c; false if the iovecs cannot form a whole block. */
static bool build_child(struct bio *p, struct bio *c)
{
	struct dbk_bdev *bdev = p->io.bdev;
	uint32_t bl = bdev->blocklen;
	uint64_t blocks = p->split_left;
	size_t want, avail = 0, got;
	int max_segs = BDEV_IO_INLINE_IOVS, idx, n = 0;
	size_t off;

	if (bdev->max_rw_blocks && blocks > bdev->max_rw_blocks)
		blocks = bdev->max_rw_blocks;
	c->parent = p;
	c->io.type = p->child_type;
	c->io.u.offset_blocks = p->split_off;
	if (p->zero_src || p->compare_emul) {
		if (blocks > BDEV_ZERO_BUF_SIZE / bl)
			blocks = BDEV_ZERO_BUF_SIZE / bl;
		c->iovs[0].iov_base = p->zero_src ? g_zero_buf : p->ch->cmp_buf;
		c->iovs[0].iov_len = blocks * bl;
		c->io.u.iovs = c->iovs;
		c->io.u.iovcnt = 1;
		c->io.u.num_blocks = blocks;
		return true;
	}
	if (bdev->max_segments && bdev->max_segments < (uint32_t)max_segs)
		max_segs = (int)bdev->max_segments;
	want = blocks * bl;
	idx = p->src_idx;
	off = p->src_off;
	for (int i = 0; i < max_segs && idx < p->src_iovcnt && avail < want; i++, idx++, off = 0)
		avail += p->src_iovs[idx].iov_len - off;
	got = avail < want ? avail : want;
	got -= got % bl;
	if (got == 0)
		return false;
	c->io.u.num_blocks = got / bl;
	want = got;
	while (want > 0) {
		size_t len = p->src_iovs[p->src_idx].iov_len - p->src_off;
		if (len > want)
			len = want;
		c->iovs[n].iov_base = (char *)p->src_iovs[p->src_idx].iov_base + p->src_off;
		c->iovs[n].iov_len = len;
		n++;
		want -= len;
		p->src_off += len;
		if (p->src_off == p->src_iovs[p->src_idx].iov_len) {
			p->src_idx++;
			p->src_off = 0;
		}
	}
	c->io.u.iovs = c->iovs;
	c->io.u.iovcnt = n;
	return true;
}

static void split_continue(struct bio *p)
{
	struct bdev_channel *bch = p->ch;

	if (p->splitting)
		return;
	p->splitting = true;
	/* an emulated compare reads one chunk at a time into the channel's compare buffer */
	while (p->split_left > 0 && !p->split_failed && !(p->compare_emul && p->split_outstanding > 0)) {
		struct bio *c = bio_get(bch);
		if (c == NULL) {
			if (!p->split_waiting) {
				TAILQ_INSERT_TAIL(&bch->split_wait, p, link);
				p->split_waiting = true;
			}
			break;
		}
		if (!build_child(p, c)) {
			bio_put(bch, c);
			p->split_failed = true;
			p->status = DBK_BDEV_IO_STATUS_FAILED;
			p->err = -EINVAL;
			break;
		}
		p->split_off += c->io.u.num_blocks;
		p->split_left -= c->io.u.num_blocks;
		p->split_outstanding++;
		module_submit(c);
	}
	p->splitting = false;
	if (p->split_outstanding == 0 && (p->split_left == 0 || p->split_failed))
		parent_finish(p);
}

static void child_done(struct bio *c)
{
	struct bio *p = c->parent;
	struct bdev_channel *bch = c->ch;

	if (c->status != DBK_BDEV_IO_STATUS_SUCCESS && !p->split_failed) {
		p->split_failed = true;
		p->status = c->status;
		p->err = c->err;
		p->sct = c->sct;
		p->sc = c->sc;
	} else if (p->compare_emul && !p->split_failed) {
		uint32_t bl = p->io.bdev->blocklen;
		if (!iov_equal_at(p->io.u.iovs, p->io.u.iovcnt, (c->io.u.offset_blocks - p->io.u.offset_blocks) * bl,
				  bch->cmp_buf, c->io.u.num_blocks * bl)) {
			p->split_failed = true;
			p->status = DBK_BDEV_IO_STATUS_NVME_ERROR;
			p->sct = 2;
			p->sc = 0x85; /* compare failure */
			p->err = -EILSEQ;
		}
	}
	p->split_outstanding--;
	bio_put(bch, c);
	split_continue(p);
	process_waiters(bch);
}

static void start_split(struct bio *p, enum dbk_bdev_io_type child_type, struct iovec *src, int srccnt)
{
	p->is_parent = true;
	p->child_type = child_type;
	p->src_iovs = src;
	p->src_iovcnt = srccnt;
	p->src_idx = 0;
	p->src_off = 0;
	p->split_off = p->io.u.offset_blocks;
	p->split_left = p->io.u.num_blocks;
	split_continue(p);
}

static int nomem_poll(void *ctx);

static void retry_nomem(struct bdev_channel *bch)
{
	size_t n = 0;
	struct bio *b;

	if (bch->retrying)
		return;
	bch->retrying = true;
	TAILQ_FOREACH(b, &bch->nomem_q, link)
		n++;
	while (n-- > 0 && (b = TAILQ_FIRST(&bch->nomem_q)) != NULL) {
		TAILQ_REMOVE(&bch->nomem_q, b, link);
		b->queued_nomem = false;
		module_submit(b);
		if (b->queued_nomem)
			break; /* still out of resources */
	}
	bch->retrying = false;
	if (TAILQ_EMPTY(&bch->nomem_q) && bch->nomem_poller)
		dbk_poller_unregister(&bch->nomem_poller);
}

static int nomem_poll(void *ctx)
{
	struct bdev_channel *bch = ctx;

	if (TAILQ_EMPTY(&bch->nomem_q)) {
		dbk_poller_unregister(&bch->nomem_poller);
		return DBK_POLLER_IDLE;
	}
	retry_nomem(bch);
	return DBK_POLLER_BUSY;
}

static void io_done(struct bio *b)
{
	if (b->parent)
		child_done(b);
	else if (b->is_parent)
		; /* never completed by a module */
	else
		complete_top(b);
}

void dbk_bdev_io_complete(struct dbk_bdev_io *io, enum dbk_bdev_io_status status)
{
	struct bio *b = to_bio(io);
	struct bdev_channel *bch = b->ch;

	bch->module_outstanding--;
	if (status == DBK_BDEV_IO_STATUS_NOMEM) {
		b->queued_nomem = true;
		TAILQ_INSERT_TAIL(&bch->nomem_q, b, link);
		if (bch->nomem_poller == NULL)
			bch->nomem_poller = dbk_poller_register(nomem_poll, bch, BDEV_NOMEM_RETRY_US, "bdev_nomem");
		return;
	}
	if (status == DBK_BDEV_IO_STATUS_PENDING)
		status = DBK_BDEV_IO_STATUS_FAILED;
	b->status = status;
	if (status == DBK_BDEV_IO_STATUS_FAILED && b->err == 0)
		b->err = -EIO;
	io_done(b);
	if (!TAILQ_EMPTY(&bch->nomem_q))
		retry_nomem(bch);
}

void dbk_bdev_io_complete_nvme_status(struct dbk_bdev_io *io, int sct, int sc)
{
	struct bio *b = to_bio(io);

	if (sct == 0 && sc == 0) {
		dbk_bdev_io_complete(io, DBK_BDEV_IO_STATUS_SUCCESS);
		return;
	}
	b->sct = sct;
	b->sc = sc;
	b->err = (sct == 2 && sc == 0x85) ? -EILSEQ : -EIO;
	dbk_bdev_io_complete(io, DBK_BDEV_IO_STATUS_NVME_ERROR);
}

static void errno_to_nvme(int err, int *sct, int *sc)
{
	*sct = 0;
	switch (-err) {
	case ENOSPC:
		*sc = 0x81; /* capacity exceeded */
		break;
	case EINVAL:
		*sc = 0x02; /* invalid field */
		break;
	case ERANGE:
		*sc = 0x80; /* LBA out of range */
		break;
	case ENOTSUP:
		*sc = 0x01; /* invalid opcode */
		break;
	case EROFS:
	case EACCES:
	case EPERM:
		*sc = 0x20; /* namespace is write protected */
		break;
	case EAGAIN:
	case EBUSY:
	case ENODEV:
	case ENXIO:
		*sc = 0x82; /* namespace not ready */
		break;
	case ECANCELED:
	case ETIMEDOUT:
		*sc = 0x07; /* command abort requested */
		break;
	case EILSEQ:
		*sct = 2;
		*sc = 0x85; /* compare failure */
		break;
	case ENODATA:
		*sct = 2;
		*sc = 0x81; /* unrecovered read error */
		break;
	default:
		*sc = 0x06; /* internal error */
		break;
	}
}

void dbk_bdev_io_complete_errno(struct dbk_bdev_io *io, int neg_errno)
{
	struct bio *b = to_bio(io);

	if (neg_errno == 0) {
		dbk_bdev_io_complete(io, DBK_BDEV_IO_STATUS_SUCCESS);
		return;
	}
	if (neg_errno > 0)
		neg_errno = -neg_errno;
	b->err = neg_errno;
	errno_to_nvme(neg_errno, &b->sct, &b->sc);
	dbk_bdev_io_complete(io, DBK_BDEV_IO_STATUS_FAILED);
}

void dbk_bdev_io_get_nvme_status(const struct dbk_bdev_io *io, int *sct, int *sc)
{
	const struct bio *b = to_cbio(io);

	switch (b->status) {
	case DBK_BDEV_IO_STATUS_SUCCESS:
		*sct = 0;
		*sc = 0;
		break;
	case DBK_BDEV_IO_STATUS_NVME_ERROR:
		*sct = b->sct;
		*sc = b->sc;
		break;
	default:
		errno_to_nvme(b->err ? b->err : -EIO, sct, sc);
		break;
	}
}

int dbk_bdev_io_get_errno(const struct dbk_bdev_io *io)
{
	const struct bio *b = to_cbio(io);

	if (b->status == DBK_BDEV_IO_STATUS_SUCCESS)
		return 0;
	return b->err ? b->err : -EIO;
}

static void check_resets(struct bdev_channel *bch)
{
	struct bio *r;

	while ((r = TAILQ_FIRST(&bch->resets)) != NULL) {
		struct bio *oldest = TAILQ_FIRST(&bch->inflight);
		if (oldest && oldest->seq < r->seq)
			return;
		TAILQ_REMOVE(&bch->resets, r, link);
		if (native_supported(bch->bdev, DBK_BDEV_IO_TYPE_RESET)) {
			module_submit(r);
		} else {
			r->status = DBK_BDEV_IO_STATUS_SUCCESS;
			complete_top(r);
		}
	}
}

static size_t iov_total(const struct iovec *iov, int iovcnt)
{
	size_t t = 0;

	for (int i = 0; i < iovcnt; i++)
		t += iov[i].iov_len;
	return t;
}

/* ------------------------------------------------------------------ QoS */

static bool qos_limited(struct dbk_bdev *bdev, enum dbk_bdev_io_type type)
{
	return atomic_load_explicit(&bdev->internal->qos_enabled, memory_order_relaxed) &&
	       type != DBK_BDEV_IO_TYPE_RESET && type != DBK_BDEV_IO_TYPE_FLUSH;
}

/* Amount of limit i a bio consumes (0: not subject to it). */
static int64_t qos_cost(const struct bio *b, int i)
{
	enum dbk_bdev_io_type t = b->io.type;
	bool r = t == DBK_BDEV_IO_TYPE_READ || t == DBK_BDEV_IO_TYPE_COMPARE;
	bool w = t == DBK_BDEV_IO_TYPE_WRITE;
	int64_t bytes = (int64_t)(b->io.u.num_blocks * b->io.bdev->blocklen);

	switch (i) {
	case DBK_BDEV_QOS_RW_IOPS:
		return 1;
	case DBK_BDEV_QOS_RW_BPS:
		return (r || w) ? bytes : 0;
	case DBK_BDEV_QOS_R_BPS:
		return r ? bytes : 0;
	default:
		return w ? bytes : 0;
	}
}

static int64_t qos_quota(uint64_t per_sec, int i)
{
	uint64_t q = i == DBK_BDEV_QOS_RW_IOPS ? per_sec : per_sec * 1024 * 1024;

	q = q * BDEV_QOS_SLICE_NS / 1000000000ull;
	return q ? (int64_t)q : 1;
}

/* Take the bio's cost from the current slice's budgets; false when a budget is spent (overdraft allowed). */
static bool qos_take(struct dbk_bdev *bdev, struct bio *b)
{
	struct dbk_bdev_internal *in = bdev->internal;

	if (!atomic_load(&in->qos_enabled))
		return true;	/* the common case: no clock read, nothing shared written */
	uint64_t now = dbk_get_ns();
	uint64_t start = atomic_load(&in->qos_slice_start);
	if (now - start >= BDEV_QOS_SLICE_NS &&
	    atomic_compare_exchange_strong(&in->qos_slice_start, &start, now)) {
		for (int i = 0; i < DBK_BDEV_QOS_NUM_LIMITS; i++) {
			uint64_t lim = atomic_load(&in->qos_limit[i]);
			int64_t left = atomic_load(&in->qos_budget[i]);
			if (lim)
				atomic_store(&in->qos_budget[i], (left < 0 ? left : 0) + qos_quota(lim, i));
		}
	}
	for (int i = 0; i < DBK_BDEV_QOS_NUM_LIMITS; i++)
		if (atomic_load(&in->qos_limit[i]) && qos_cost(b, i) && atomic_load(&in->qos_budget[i]) <= 0)
			return false;
	for (int i = 0; i < DBK_BDEV_QOS_NUM_LIMITS; i++)
		if (atomic_load(&in->qos_limit[i]))
			atomic_fetch_sub(&in->qos_budget[i], qos_cost(b, i));
	return true;
}

static void dispatch(struct bio *b);

static int qos_poll(void *ctx)
{
	struct bdev_channel *bch = ctx;
	struct bio *b;
	int n = 0;

	while ((b = TAILQ_FIRST(&bch->qos_q)) != NULL && qos_take(bch->bdev, b)) {
		TAILQ_REMOVE(&bch->qos_q, b, link);
		dispatch(b);
		n++;
	}
	if (TAILQ_EMPTY(&bch->qos_q))
		dbk_poller_unregister(&bch->qos_poller);
	return n ? DBK_POLLER_BUSY : DBK_POLLER_IDLE;
}

int dbk_bdev_set_qos_limits(struct dbk_bdev *bdev, const uint64_t limits[DBK_BDEV_QOS_NUM_LIMITS])
{
	struct dbk_bdev_internal *in = bdev->internal;
	bool any = false;

	if (in == NULL)
		return -ENODEV;
	if (limits[DBK_BDEV_QOS_RW_IOPS] % 1000 != 0)
		return -EINVAL;
	for (int i = 0; i < DBK_BDEV_QOS_NUM_LIMITS; i++) {
		atomic_store(&in->qos_limit[i], limits[i]);
		atomic_store(&in->qos_budget[i], limits[i] ? qos_quota(limits[i], i) : 0);
		any |= limits[i] != 0;
	}
	atomic_store(&in->qos_slice_start, dbk_get_ns());
	atomic_store(&in->qos_enabled, any);
	return 0;
}

void dbk_bdev_get_qos_limits(const struct dbk_bdev *bdev, uint64_t limits[DBK_BDEV_QOS_NUM_LIMITS])
{
	for (int i = 0; i < DBK_BDEV_QOS_NUM_LIMITS; i++)
		limits[i] = bdev->internal ? atomic_load(&bdev->internal->qos_limit[i]) : 0;
}

/* Hand a top-level I/O (validated, on the in-flight list) to the module, splitting or emulating. */
static void dispatch(struct bio *b)
{
	struct dbk_bdev *bdev = b->io.bdev;
	bool native = native_supported(bdev, b->io.type);

	switch (b->io.type) {
	case DBK_BDEV_IO_TYPE_READ:
	case DBK_BDEV_IO_TYPE_WRITE:
	case DBK_BDEV_IO_TYPE_COMPARE:
		if (!native) { /* compare emulated: read chunks into the channel's buffer, memcmp */
			struct bdev_channel *bch = b->ch;
			if (bch->cmp_buf == NULL) {
				size_t align = (size_t)1 << (bdev->required_alignment > 12 ? bdev->required_alignment : 12);
				if (bdev->blocklen > BDEV_CMP_BUF_SIZE ||
				    posix_memalign(&bch->cmp_buf, align, BDEV_CMP_BUF_SIZE) != 0) {
					bch->cmp_buf = NULL;
					b->status = DBK_BDEV_IO_STATUS_FAILED;
					b->err = -ENOMEM;
					complete_top(b);
					return;
				}
			}
			if (bch->cmp_owner) {
				TAILQ_INSERT_TAIL(&bch->cmp_wait, b, link);
				return;
			}
			bch->cmp_owner = b;
			b->compare_emul = true;
			start_split(b, DBK_BDEV_IO_TYPE_READ, NULL, 0);
		} else if ((bdev->max_rw_blocks && b->io.u.num_blocks > bdev->max_rw_blocks) ||
			   (bdev->max_segments && (uint32_t)b->io.u.iovcnt > bdev->max_segments)) {
			start_split(b, b->io.type, b->io.u.iovs, b->io.u.iovcnt);
		} else {
			module_submit(b);
		}
		break;
	case DBK_BDEV_IO_TYPE_WRITE_ZEROES:
		if (native) {
			module_submit(b);
		} else {
			b->zero_src = true;
			start_split(b, DBK_BDEV_IO_TYPE_WRITE, NULL, 0);
		}
		break;
	case DBK_BDEV_IO_TYPE_FLUSH:
		if (native) {
			module_submit(b);
		} else {
			b->status = DBK_BDEV_IO_STATUS_SUCCESS;
			complete_top(b);
		}
		break;
	default:
		module_submit(b);
		break;
	}
}

static int submit_inner(struct dbk_bdev_desc *desc, struct dbk_io_channel *ch, enum dbk_bdev_io_type type,
			struct iovec *iov, int iovcnt, uint64_t offset, uint64_t num, dbk_bdev_io_completion_cb cb,
			void *cb_arg)
{
	struct dbk_bdev *bdev;
	struct bdev_channel *bch;
	struct bio *b;
	bool data = type == DBK_BDEV_IO_TYPE_READ || type == DBK_BDEV_IO_TYPE_WRITE ||
		    type == DBK_BDEV_IO_TYPE_COMPARE;
	bool native;

	if (desc == NULL || ch == NULL || cb == NULL)
		return -EINVAL;
	bdev = desc->bdev;
	bch = dbk_io_channel_get_ctx(ch);
	if (bch->bdev != bdev)
		return -EINVAL;
	if (type != DBK_BDEV_IO_TYPE_RESET) {
		uint64_t cnt = dbk_bdev_get_num_blocks(bdev);
		if (num == 0 || offset >= cnt || num > cnt - offset)
			return -EINVAL;
	}
	if (!desc->write && type != DBK_BDEV_IO_TYPE_READ && type != DBK_BDEV_IO_TYPE_COMPARE &&
	    type != DBK_BDEV_IO_TYPE_FLUSH && type != DBK_BDEV_IO_TYPE_RESET)
		return -EBADF;
	if (data) {
		if (iov == NULL || iovcnt <= 0 || iov_total(iov, iovcnt) < num * bdev->blocklen)
			return -EINVAL;
	}
	native = type == DBK_BDEV_IO_TYPE_RESET || native_supported(bdev, type);
	if (!native && !dbk_bdev_io_type_supported(bdev, type))
		return -ENOTSUP;

	if (bch->free_count <= BDEV_IO_CHILD_RESERVE)
		return -ENOMEM;
	b = bio_get(bch);
	b->top = true;
	b->io.type = type;
	b->io.u.iovs = iov;
	b->io.u.iovcnt = data ? iovcnt : 0;
	b->io.u.offset_blocks = offset;
	b->io.u.num_blocks = num;
	b->cb = cb;
	b->cb_arg = cb_arg;
	/*
	 * Latency stats start from the reactor's cached time (this iteration's
	 * start, refreshed by each completion): early by at most the work done
	 * earlier in the iteration, which the I/O did wait behind.
	 */
	b->submit_ns = dbk_thread_now_ns();

	if (type == DBK_BDEV_IO_TYPE_RESET) {
		b->seq = bch->next_seq;
		TAILQ_INSERT_TAIL(&bch->resets, b, link);
		check_resets(bch);
		return 0;
	}
	b->seq = bch->next_seq++;
	TAILQ_INSERT_TAIL(&bch->inflight, b, inflight_link);
	b->on_inflight = true;

	if (qos_limited(bdev, type) && (!TAILQ_EMPTY(&bch->qos_q) || !qos_take(bdev, b))) {
		TAILQ_INSERT_TAIL(&bch->qos_q, b, link);
		if (bch->qos_poller == NULL)
			bch->qos_poller = dbk_poller_register(qos_poll, bch, BDEV_QOS_SLICE_NS / 1000, "bdev_qos");
		return 0;
	}
	dispatch(b);
	return 0;
}

static int submit(struct dbk_bdev_desc *desc, struct dbk_io_channel *ch, enum dbk_bdev_io_type type,
		  struct iovec *iov, int iovcnt, uint64_t offset, uint64_t num, dbk_bdev_io_completion_cb cb,
		  void *cb_arg)
{
	struct bdev_channel *bch;
	int rc;

	if (ch == NULL)
		return -EINVAL;
	bch = dbk_io_channel_get_ctx(ch);
	bch->submit_depth++;
	rc = submit_inner(desc, ch, type, iov, iovcnt, offset, num, cb, cb_arg);
	bch->submit_depth--;
	if (bch->submit_depth == 0 && !bch->draining && !TAILQ_EMPTY(&bch->deferred))
		drain_deferred(bch);
	return rc;
}

int dbk_bdev_readv_blocks(struct dbk_bdev_desc *desc, struct dbk_io_channel *ch, struct iovec *iov, int iovcnt,
			  uint64_t offset_blocks, uint64_t num_blocks, dbk_bdev_io_completion_cb cb, void *cb_arg)
{
	return submit(desc, ch, DBK_BDEV_IO_TYPE_READ, iov, iovcnt, offset_blocks, num_blocks, cb, cb_arg);
}

bool dbk_bdev_can_lend_read(const struct dbk_bdev *bdev)
{
	return bdev && bdev->lends_read && native_supported(bdev, DBK_BDEV_IO_TYPE_READ);
}

/* Zero-copy read or write: one {NULL, len} iovec the bdev points at its own memory (see bdev.h). */
static int lend_blocks(struct dbk_bdev_desc *desc, struct dbk_io_channel *ch, enum dbk_bdev_io_type type,
		       struct iovec *iov, uint64_t offset_blocks, uint64_t num_blocks, dbk_bdev_io_completion_cb cb,
		       void *cb_arg)
{
	struct dbk_bdev *bdev;
	bool can;

	if (desc == NULL || iov == NULL)
		return -EINVAL;
	bdev = desc->bdev;
	/* A write lend must complete inline, and QoS may hold an I/O back. */
	can = type == DBK_BDEV_IO_TYPE_READ ? dbk_bdev_can_lend_read(bdev)
					    : dbk_bdev_can_lend_write(bdev) && !qos_limited(bdev, type);
	if (!can || (bdev->max_rw_blocks && num_blocks > bdev->max_rw_blocks))
		return -ENOTSUP;
	if (num_blocks > SIZE_MAX / bdev->blocklen || iov->iov_len != num_blocks * bdev->blocklen)
		return -EINVAL;
	iov->iov_base = NULL;
	return submit(desc, ch, type, iov, 1, offset_blocks, num_blocks, cb, cb_arg);
}

int dbk_bdev_read_lend_blocks(struct dbk_bdev_desc *desc, struct dbk_io_channel *ch, struct iovec *iov,
			      uint64_t offset_blocks, uint64_t num_blocks, dbk_bdev_io_completion_cb cb, void *cb_arg)
{
	return lend_blocks(desc, ch, DBK_BDEV_IO_TYPE_READ, iov, offset_blocks, num_blocks, cb, cb_arg);
}

bool dbk_bdev_can_lend_write(const struct dbk_bdev *bdev)
{
	return bdev && bdev->lends_write && !bdev->required_alignment && native_supported(bdev, DBK_BDEV_IO_TYPE_WRITE);
}

int dbk_bdev_write_lend_blocks(struct dbk_bdev_desc *desc, struct dbk_io_channel *ch, struct iovec *iov,
			       uint64_t offset_blocks, uint64_t num_blocks, dbk_bdev_io_completion_cb cb, void *cb_arg)
{
	return lend_blocks(desc, ch, DBK_BDEV_IO_TYPE_WRITE, iov, offset_blocks, num_blocks, cb, cb_arg);
}

int dbk_bdev_writev_blocks(struct dbk_bdev_desc *desc, struct dbk_io_channel *ch, struct iovec *iov, int iovcnt,
			   uint64_t offset_blocks, uint64_t num_blocks, dbk_bdev_io_completion_cb cb, void *cb_arg)
{
	return submit(desc, ch, DBK_BDEV_IO_TYPE_WRITE, iov, iovcnt, offset_blocks, num_blocks, cb, cb_arg);
}

int dbk_bdev_comparev_blocks(struct dbk_bdev_desc *desc, struct dbk_io_channel *ch, struct iovec *iov, int iovcnt,
			     uint64_t offset_blocks, uint64_t num_blocks, dbk_bdev_io_completion_cb cb, void *cb_arg)
{
	return submit(desc, ch, DBK_BDEV_IO_TYPE_COMPARE, iov, iovcnt, offset_blocks, num_blocks, cb, cb_arg);
}

int dbk_bdev_flush_blocks(struct dbk_bdev_desc *desc, struct dbk_io_channel *ch, uint64_t offset_blocks,
			  uint64_t num_blocks, dbk_bdev_io_completion_cb cb, void *cb_arg)
{
	return submit(desc, ch, DBK_BDEV_IO_TYPE_FLUSH, NULL, 0, offset_blocks, num_blocks, cb, cb_arg);
}

int dbk_bdev_unmap_blocks(struct dbk_bdev_desc *desc, struct dbk_io_channel *ch, uint64_t offset_blocks,
			  uint64_t num_blocks, dbk_bdev_io_completion_cb cb, void *cb_arg)
{
	return submit(desc, ch, DBK_BDEV_IO_TYPE_UNMAP, NULL, 0, offset_blocks, num_blocks, cb, cb_arg);
}

int dbk_bdev_write_zeroes_blocks(struct dbk_bdev_desc *desc, struct dbk_io_channel *ch, uint64_t offset_blocks,
				 uint64_t num_blocks, dbk_bdev_io_completion_cb cb, void *cb_arg)
{
	return submit(desc, ch, DBK_BDEV_IO_TYPE_WRITE_ZEROES, NULL, 0, offset_blocks, num_blocks, cb, cb_arg);
}

int dbk_bdev_reset(struct dbk_bdev_desc *desc, struct dbk_io_channel *ch, dbk_bdev_io_completion_cb cb, void *cb_arg)
{
	return submit(desc, ch, DBK_BDEV_IO_TYPE_RESET, NULL, 0, 0, 0, cb, cb_arg);
}

/* ------------------------------------------------------------- statistics */

struct iostat_ctx {
	struct dbk_bdev *bdev;
	bool per_channel;
	dbk_bdev_stat_cb cb;
	void *ctx;
	struct dbk_bdev_io_stat total;
	json_t *channels;
};

static void iostat_channel(struct dbk_io_channel_iter *it)
{
	struct iostat_ctx *c = dbk_io_channel_iter_get_ctx(it);
	struct dbk_io_channel *ch = dbk_io_channel_iter_get_channel(it);
	struct bdev_channel *bch = dbk_io_channel_get_ctx(ch);

	stat_add(&c->total, &bch->stat);
	if (c->channels) {
		json_t *o = dbk_bdev_stat_to_json(&bch->stat);
		struct dbk_thread *t = dbk_get_thread();
		json_object_set_new(o, "thread_name", json_string(t ? dbk_thread_get_name(t) : ""));
		json_object_set_new(o, "thread_id", json_integer(t ? dbk_thread_get_index(t) : -1));
		/* the channel's bdev_io pool: free == size when nothing is in flight (the fault tests check it) */
		json_object_set_new(o, "bdev_io_pool_free", json_integer(bch->free_count));
		json_object_set_new(o, "bdev_io_pool_size", json_integer(BDEV_IO_POOL_TOTAL));
		if (c->bdev->fn_table->dump_channel_json)
			c->bdev->fn_table->dump_channel_json(bch->mod_ch, o);
		json_array_append_new(c->channels, o);
	}
	dbk_for_each_channel_continue(it, 0);
}

static void iostat_done(struct dbk_io_channel_iter *it, int status)
{
	struct iostat_ctx *c = dbk_io_channel_iter_get_ctx(it);
	struct dbk_bdev_internal *in = c->bdev->internal;

	if (in) {
		pthread_mutex_lock(&in->stat_lock);
		stat_add(&c->total, &in->folded);
		pthread_mutex_unlock(&in->stat_lock);
	}
	c->cb(c->bdev, &c->total, c->channels, c->ctx, status);
	json_decref(c->channels);
	free(c);
}

void dbk_bdev_get_iostat(struct dbk_bdev *bdev, bool per_channel, dbk_bdev_stat_cb cb, void *ctx)
{
	struct iostat_ctx *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		cb(bdev, NULL, NULL, ctx, -ENOMEM);
		return;
	}
	c->bdev = bdev;
	c->per_channel = per_channel;
	c->cb = cb;
	c->ctx = ctx;
	stat_init(&c->total);
	if (per_channel)
		c->channels = json_array();
	dbk_for_each_channel(bdev->internal, iostat_channel, c, iostat_done);
}

/* ---------------------------------------------------------------- JSON */

json_t *dbk_bdev_stat_to_json(const struct dbk_bdev_io_stat *s)
{
	static const struct {
		const char *prefix;
		enum dbk_bdev_io_type t;
	} kinds[] = {
		{"read", DBK_BDEV_IO_TYPE_READ},
		{"write", DBK_BDEV_IO_TYPE_WRITE},
		{"unmap", DBK_BDEV_IO_TYPE_UNMAP},
		{"write_zeroes", DBK_BDEV_IO_TYPE_WRITE_ZEROES},
		{"compare", DBK_BDEV_IO_TYPE_COMPARE},
		{"flush", DBK_BDEV_IO_TYPE_FLUSH},
		{"reset", DBK_BDEV_IO_TYPE_RESET},
	};
	static const char *const bytes_names[] = {"bytes_read", "bytes_written", "bytes_unmapped",
						  "bytes_zeroed", "bytes_compared", NULL, NULL};
	static const char *const ops_names[] = {"num_read_ops", "num_write_ops", "num_unmap_ops",
						"num_write_zeroes_ops", "num_compare_ops", "num_flush_ops",
						"num_reset_ops"};
	json_t *o = json_object();
	json_t *errs = json_object();
	char key[64];

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		enum dbk_bdev_io_type t = kinds[i].t;
		if (bytes_names[i])
			json_object_set_new(o, bytes_names[i], json_integer((json_int_t)s->bytes[t]));
		json_object_set_new(o, ops_names[i], json_integer((json_int_t)s->ops[t]));
		snprintf(key, sizeof(key), "%s_latency_ticks", kinds[i].prefix);
		json_object_set_new(o, key, json_integer((json_int_t)s->lat_total_ns[t]));
		snprintf(key, sizeof(key), "max_%s_latency_ticks", kinds[i].prefix);
		json_object_set_new(o, key, json_integer((json_int_t)s->lat_max_ns[t]));
		snprintf(key, sizeof(key), "min_%s_latency_ticks", kinds[i].prefix);
		json_object_set_new(o, key,
				    json_integer(s->lat_min_ns[t] == UINT64_MAX ? 0 : (json_int_t)s->lat_min_ns[t]));
		json_object_set_new(errs, kinds[i].prefix, json_integer((json_int_t)s->errors[t]));
	}
	json_object_set_new(o, "io_error", errs);
	return o;
}

json_t *dbk_bdev_info_json(struct dbk_bdev *bdev)
{
	json_t *o = json_object();
	json_t *aliases = json_array();
	json_t *types = json_object();
	json_t *ds = json_object();
	struct dbk_bdev_internal *in = bdev->internal;
	char u[37];

	json_object_set_new(o, "name", json_string(dbk_bdev_get_name(bdev)));
	for (int i = 0; in && i < in->num_aliases; i++)
		json_array_append_new(aliases, json_string(in->aliases[i]));
	json_object_set_new(o, "aliases", aliases);
	json_object_set_new(o, "product_name", json_string(dbk_bdev_get_product_name(bdev)));
	json_object_set_new(o, "block_size", json_integer(bdev->blocklen));
	json_object_set_new(o, "num_blocks", json_integer((json_int_t)dbk_bdev_get_num_blocks(bdev)));
	uuid_unparse_lower(bdev->uuid, u);
	json_object_set_new(o, "uuid", json_string(u));
	{
		uint64_t l[DBK_BDEV_QOS_NUM_LIMITS];
		dbk_bdev_get_qos_limits(bdev, l);
		json_object_set_new(o, "assigned_rate_limits",
				    json_pack("{s:I,s:I,s:I,s:I}", "rw_ios_per_sec", (json_int_t)l[0],
					      "rw_mbytes_per_sec", (json_int_t)l[1], "r_mbytes_per_sec",
					      (json_int_t)l[2], "w_mbytes_per_sec", (json_int_t)l[3]));
	}
	json_object_set_new(o, "claimed", json_boolean(in && in->claim_owner));
	if (in && in->claim_owner)
		json_object_set_new(o, "claim_type", json_string("exclusive_write"));
	json_object_set_new(o, "zoned", json_false());
	json_object_set_new(o, "write_cache", json_boolean(bdev->write_cache));
	json_object_set_new(o, "max_rw_blocks", json_integer(bdev->max_rw_blocks));
	for (int t = 0; t < DBK_BDEV_NUM_IO_TYPES; t++)
		json_object_set_new(types, g_io_type_names[t],
				    json_boolean(dbk_bdev_io_type_supported(bdev, (enum dbk_bdev_io_type)t)));
	json_object_set_new(types, "nvme_admin", json_false());
	json_object_set_new(types, "nvme_io", json_false());
	json_object_set_new(types, "zcopy", json_false());
	json_object_set_new(types, "abort", json_false());
	json_object_set_new(o, "supported_io_types", types);
	json_object_set_new(o, "module", json_string(dbk_bdev_get_module_name(bdev)));
	if (bdev->fn_table->dump_info_json)
		bdev->fn_table->dump_info_json(bdev->ctxt, ds);
	json_object_set_new(o, "driver_specific", ds);
	return o;
}

void dbk_bdev_write_config_json(json_t *array)
{
	struct dbk_bdev_internal *in;

	TAILQ_FOREACH(in, &g_bdevs, link) {
		if (in->removing)
			continue;
		if (in->bdev->fn_table->write_config_json)
			in->bdev->fn_table->write_config_json(in->bdev, array);
	}
	TAILQ_FOREACH(in, &g_bdevs, link) {
		uint64_t l[DBK_BDEV_QOS_NUM_LIMITS];
		if (in->removing || !atomic_load(&in->qos_enabled))
			continue;
		dbk_bdev_get_qos_limits(in->bdev, l);
		json_array_append_new(array, json_pack("{s:s,s:{s:s,s:I,s:I,s:I,s:I}}", "method", "bdev_set_qos_limit",
						       "params", "name", in->name, "rw_ios_per_sec", (json_int_t)l[0],
						       "rw_mbytes_per_sec", (json_int_t)l[1], "r_mbytes_per_sec",
						       (json_int_t)l[2], "w_mbytes_per_sec", (json_int_t)l[3]));
	}
}

/* ------------------------------------------------------------- lifecycle */

int dbk_bdev_subsystem_init(void)
{
	int rc;
	int i;

	if (g_initialized)
		return 0;
	if (posix_memalign(&g_zero_buf, 4096, BDEV_ZERO_BUF_SIZE) != 0) {
		g_zero_buf = NULL;
		return -ENOMEM;
	}
	memset(g_zero_buf, 0, BDEV_ZERO_BUF_SIZE);
	for (i = 0; dbk_bdev_modules[i] != NULL; i++) {
		if (dbk_bdev_modules[i]->module_init == NULL)
			continue;
		rc = dbk_bdev_modules[i]->module_init();
		if (rc != 0) {
			DBK_ERRLOG("bdev module %s failed to initialise: %s", dbk_bdev_modules[i]->name, strerror(-rc));
			while (--i >= 0)
				if (dbk_bdev_modules[i]->module_fini)
					dbk_bdev_modules[i]->module_fini();
			free(g_zero_buf);
			g_zero_buf = NULL;
			return rc;
		}
	}
	g_initialized = true;
	return 0;
}

struct fini_ctx {
	void (*cb)(void *ctx);
	void *ctx;
	struct dbk_poller *poller;
};

static void fini_step(struct fini_ctx *f);

static int fini_poll(void *arg)
{
	struct fini_ctx *f = arg;

	dbk_poller_unregister(&f->poller);
	fini_step(f);
	return DBK_POLLER_BUSY;
}

static void fini_next(void *arg, int rc);
static void fini_next_msg(void *arg);

static void fini_step(struct fini_ctx *f)
{
	struct dbk_bdev_internal *in;

	TAILQ_FOREACH_REVERSE(in, &g_bdevs, bdev_list, link) {
		if (!in->removing) {
			dbk_bdev_unregister(in->bdev, fini_next, f);
			return;
		}
	}
	if (!TAILQ_EMPTY(&g_bdevs)) {
		/* another unregistration is in progress: look again in 1 ms */
		f->poller = dbk_poller_register(fini_poll, f, 1000, "bdev_fini");
		if (f->poller == NULL)
			dbk_thread_send_msg(dbk_get_thread(), fini_next_msg, f);
		return;
	}
	if (g_initialized) {
		for (int i = 0; dbk_bdev_modules[i] != NULL; i++)
			if (dbk_bdev_modules[i]->module_fini)
				dbk_bdev_modules[i]->module_fini();
	}
	free(g_zero_buf);
	g_zero_buf = NULL;
	g_initialized = false;
	f->cb(f->ctx);
	free(f);
}

static void fini_next_msg(void *arg)
{
	fini_step(arg);
}

static void fini_next(void *arg, int rc)
{
	(void)rc;
	/* continue from a fresh stack */
	dbk_thread_send_msg(dbk_get_thread(), fini_next_msg, arg);
}

void dbk_bdev_subsystem_fini(void (*cb)(void *ctx), void *ctx)
{
	struct fini_ctx *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		cb(ctx);
		return;
	}
	f->cb = cb;
	f->ctx = ctx;
	fini_step(f);
}
