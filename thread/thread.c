/*
 * daosblk threading: reactors, lock-free messages, pollers, fd events,
 * io_device/io_channel and the blocking-work helper pool.
 *
 * Message queue: intrusive MPSC queue (producers atomically exchange the
 * head pointer, the single consumer walks from the tail, a stub node keeps
 * it non-empty). Message nodes come from a per-OS-thread cache, refilled in
 * batches from a small global pool (malloc when that is empty too).
 *
 * Sleeping: a reactor that found nothing to do sets t->sleeping, re-checks its
 * queue and only then blocks in epoll_wait. A sender that queues a message
 * and then sees sleeping set clears it and writes the eventfd. Both sides use
 * sequentially consistent atomics, so either the reactor sees the message or
 * the sender sees the flag: no lost wake-ups, and no eventfd write when the
 * target is awake.
 */
#include "thread/thread.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

/* ------------------------------------------------------------ message nodes */

/*
 * Message nodes are owned by the OS thread that allocated them (its
 * msg_cache). The consumer of a message hands the node back to its owner:
 * into its own free list if it is the owner, else onto the owner's
 * 'returned' stack (lock-free push; the owner takes the whole stack with one
 * atomic exchange, so there is no ABA). In steady state sending allocates
 * nothing and takes no lock. Caches are registered globally (mutex, only when
 * a thread sends for the first time and at thread exit) and are never freed
 * while a node may point at them: a dead thread's cache stays registered
 * (nodes returned to it are freed or parked) and is reused by the next new
 * sender thread; dbk_reactors_fini frees the dead ones.
 */
struct msg_cache;

struct msg_node {
	struct msg_node *_Atomic next;	/* queue link, then free-list/returned-stack link */
	dbk_msg_fn fn;
	void *ctx;
	/* Internal messages own ctx memory: free it if dropped at fini. */
	void (*drop_fn)(void *ctx);
	struct msg_cache *owner;
};

#define MSG_REFILL 32		/* nodes malloc'ed at once when a cache runs dry */
#define MSG_CACHE_MAX 4096	/* free nodes a thread keeps; beyond, they are freed */

struct msg_cache {
	struct msg_node *_Atomic returned;	/* pushed by consumers, taken whole by the owner */
	atomic_bool dead;			/* owner thread exited */
	struct msg_node *free_list;		/* owner only */
	int free_count;				/* owner only */
	struct msg_cache *reg_next;		/* g_caches, under g_cache_lock */
};

static __thread struct msg_cache *tls_cache;
static pthread_key_t g_cache_key;
static pthread_once_t g_cache_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t g_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct msg_cache *g_caches;

static void free_node_chain(struct msg_node *n)
{
	while (n) {
		struct msg_node *next = atomic_load_explicit(&n->next, memory_order_relaxed);
		free(n);
		n = next;
	}
}

/* Thread exit: free what we hold, mark dead; the struct stays registered for reuse. */
static void cache_destructor(void *arg)
{
	struct msg_cache *c = arg;

	tls_cache = NULL;
	free_node_chain(c->free_list);
	c->free_list = NULL;
	c->free_count = 0;
	free_node_chain(atomic_exchange(&c->returned, NULL));
	/*
	 * Last: from here another thread may adopt the cache. Nodes returned
	 * between the exchange and this store stay parked on 'returned' for
	 * the next owner (or fini).
	 */
	atomic_store(&c->dead, true);
}

static void cache_key_init(void)
{
	if (pthread_key_create(&g_cache_key, cache_destructor) != 0)
		abort();
}

static struct msg_cache *get_cache(void)
{
	struct msg_cache *c = tls_cache;

	if (c)
		return c;
	pthread_once(&g_cache_once, cache_key_init);
	pthread_mutex_lock(&g_cache_lock);
	for (c = g_caches; c; c = c->reg_next)
		if (atomic_load(&c->dead))
			break;
	if (c) {
		atomic_store(&c->dead, false);	/* reuse a dead thread's cache */
	} else {
		c = calloc(1, sizeof(*c));
		if (c) {
			c->reg_next = g_caches;
			g_caches = c;
		}
	}
	pthread_mutex_unlock(&g_cache_lock);
	if (!c)
		return NULL;
	if (pthread_setspecific(g_cache_key, c) != 0) {
		atomic_store(&c->dead, true);
		return NULL;
	}
	tls_cache = c;
	return c;
}

/*
 * dbk_reactors_fini: the caller's cache goes dead too, then every dead cache
 * is freed. Caches of threads still alive stay (their threads own them).
 */
static void caches_fini(void)
{
	struct msg_cache *c = tls_cache, **pp;

	if (c) {
		pthread_setspecific(g_cache_key, NULL);
		cache_destructor(c);
	}
	pthread_mutex_lock(&g_cache_lock);
	pp = &g_caches;
	while ((c = *pp)) {
		if (atomic_load(&c->dead)) {
			*pp = c->reg_next;
			free_node_chain(atomic_exchange(&c->returned, NULL));
			free(c);
		} else {
			pp = &c->reg_next;
		}
	}
	pthread_mutex_unlock(&g_cache_lock);
}

static struct msg_node *node_alloc(void)
{
	struct msg_cache *c = get_cache();
	struct msg_node *n;

	if (!c) {
		n = malloc(sizeof(*n));
		if (n)
			n->owner = NULL;
		return n;
	}
	if (!c->free_list) {
		/* Take back everything consumers returned, in one exchange. */
		n = atomic_exchange_explicit(&c->returned, NULL, memory_order_acquire);
		c->free_list = n;
		c->free_count = 0;
		for (; n; n = atomic_load_explicit(&n->next, memory_order_relaxed)) {
			if (++c->free_count == MSG_CACHE_MAX) {
				/* After a burst: keep a bounded reserve, free the rest. */
				free_node_chain(atomic_load_explicit(&n->next, memory_order_relaxed));
				atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
				break;
			}
		}
	}
	if (!c->free_list) {
		for (int i = 0; i < MSG_REFILL; i++) {
			n = malloc(sizeof(*n));
			if (!n)
				break;
			n->owner = c;
			atomic_store_explicit(&n->next, c->free_list, memory_order_relaxed);
			c->free_list = n;
			c->free_count++;
		}
		if (!c->free_list)
			return NULL;
	}
	n = c->free_list;
	c->free_list = atomic_load_explicit(&n->next, memory_order_relaxed);
	c->free_count--;
	return n;
}

/* Return a chain of nodes (head..tail, linked) that all belong to 'owner'. */
static void nodes_return(struct msg_cache *owner, struct msg_node *head, struct msg_node *tail, int count)
{
	struct msg_cache *self = tls_cache;

	if (!owner) {
		free_node_chain(head);
		return;
	}
	if (owner == self) {
		if (self->free_count + count > MSG_CACHE_MAX) {
			free_node_chain(head);	/* after a burst: do not hoard */
			return;
		}
		atomic_store_explicit(&tail->next, self->free_list, memory_order_relaxed);
		self->free_list = head;
		self->free_count += count;
		return;
	}
	if (atomic_load(&owner->dead)) {
		free_node_chain(head);
		return;
	}
	/* Treiber push of the whole chain (push-only + take-all: no ABA). */
	struct msg_node *old = atomic_load_explicit(&owner->returned, memory_order_relaxed);
	do {
		atomic_store_explicit(&tail->next, old, memory_order_relaxed);
	} while (!atomic_compare_exchange_weak_explicit(&owner->returned, &old, head, memory_order_release,
							memory_order_relaxed));
}

/* Batches returns to one owner so a drain pass costs one push per owner run. */
struct node_returns {
	struct msg_cache *owner;
	struct msg_node *head, *tail;
	int count;
};

static void returns_flush(struct node_returns *r)
{
	if (r->head)
		nodes_return(r->owner, r->head, r->tail, r->count);
	r->head = r->tail = NULL;
	r->count = 0;
}

static void returns_add(struct node_returns *r, struct msg_node *n)
{
	if (r->head && r->owner != n->owner)
		returns_flush(r);
	r->owner = n->owner;
	atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
	if (r->tail)
		atomic_store_explicit(&r->tail->next, n, memory_order_relaxed);
	else
		r->head = n;
	r->tail = n;
	r->count++;
}

/* ---------------------------------------------------------- MPSC queue */

struct mpscq {
	alignas(64) struct msg_node *_Atomic head;	/* producers */
	alignas(64) struct msg_node *tail;		/* consumer */
	struct msg_node stub;
};

static void mpscq_init(struct mpscq *q)
{
	atomic_store(&q->stub.next, NULL);
	atomic_store(&q->head, &q->stub);
	q->tail = &q->stub;
}

static void mpscq_push(struct mpscq *q, struct msg_node *n)
{
	struct msg_node *prev;

	atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
	prev = atomic_exchange(&q->head, n);	/* seq_cst: orders against the 'sleeping' load */
	atomic_store_explicit(&prev->next, n, memory_order_release);
}

/* Consumer only. NULL when empty or when a producer is half-way through a push. */
static struct msg_node *mpscq_pop(struct mpscq *q)
{
	struct msg_node *tail = q->tail;
	struct msg_node *next = atomic_load_explicit(&tail->next, memory_order_acquire);

	if (tail == &q->stub) {
		if (!next)
			return NULL;
		q->tail = next;
		tail = next;
		next = atomic_load_explicit(&tail->next, memory_order_acquire);
	}
	if (next) {
		q->tail = next;
		return tail;
	}
	if (tail != atomic_load(&q->head))
		return NULL;
	mpscq_push(q, &q->stub);
	next = atomic_load_explicit(&tail->next, memory_order_acquire);
	if (next) {
		q->tail = next;
		return tail;
	}
	return NULL;
}

/* Consumer only: true when nothing is queued and no push is in progress. */
static bool mpscq_empty(struct mpscq *q)
{
	return atomic_load(&q->head) == &q->stub;
}

/* ----------------------------------------------------------------- types */

enum poller_state { POLLER_ACTIVE, POLLER_DEAD };

struct dbk_poller {
	TAILQ_ENTRY(dbk_poller) link;
	dbk_poller_fn fn;
	void *ctx;
	uint64_t period_ns;
	uint64_t deadline;
	struct dbk_thread *thread;
	enum poller_state state;
	bool in_timed_list;	/* otherwise in the period-0 list (or detached while running) */
	bool running;
	char name[32];
};
TAILQ_HEAD(poller_list, dbk_poller);

struct dbk_fd_handler {
	TAILQ_ENTRY(dbk_fd_handler) link;
	int fd;
	uint32_t events;
	dbk_fd_fn fn;
	void *ctx;
	struct dbk_thread *thread;
	bool dead;
	char name[32];
};
TAILQ_HEAD(fd_list, dbk_fd_handler);

struct io_device;

struct dbk_io_channel {
	TAILQ_ENTRY(dbk_io_channel) link;
	struct io_device *dev;
	struct dbk_thread *thread;
	uint32_t ref;
	bool destroy_pending;
	alignas(max_align_t) unsigned char ctx[];
};
TAILQ_HEAD(channel_list, dbk_io_channel);

struct dbk_thread {
	struct mpscq q;
	alignas(64) atomic_int sleeping;
	int idx;
	uint32_t lcore;
	int epfd;
	int evfd;
	pthread_t tid;
	bool pthread_started;
	char name[32];

	struct poller_list active_pollers;	/* period 0 */
	struct poller_list timed_pollers;	/* sorted by deadline */
	struct poller_list dead_pollers;
	struct fd_list fds;
	struct fd_list dead_fds;
	struct channel_list channels;

	_Atomic uint64_t busy_ns;
	_Atomic uint64_t idle_ns;
	_Atomic uint64_t iterations;
	_Atomic uint64_t sleeps;
	_Atomic uint64_t sleep_start;	/* ns when the current blocking wait began, 0 if awake */
	atomic_int num_pollers;
	atomic_int num_fds;
	uint64_t now_ns;	/* owner only: this iteration's start (or wake-up) time */
	uint64_t last_work_ns;	/* owner only: end of the last iteration that did work */
};

/* ---------------------------------------------------------------- globals */

static struct dbk_thread *g_threads[DBK_MAX_REACTORS];
static int g_num_threads;
static bool g_pin;
static bool g_busy_poll;
static uint64_t g_spin_ns = DBK_REACTOR_SPIN_US_DEFAULT * 1000ull;
static atomic_int g_stop;
static bool g_initialized;
static cpu_set_t g_proc_mask;	/* process affinity at init: helpers run here */
static __thread struct dbk_thread *tls_thread;

#define MSG_BATCH 64
#define EPOLL_BATCH 64

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

uint64_t dbk_get_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t dbk_thread_now_ns(void)
{
	struct dbk_thread *t = tls_thread;

	return t && t->now_ns ? t->now_ns : dbk_get_ns();
}

void dbk_thread_set_now_ns(uint64_t now)
{
	struct dbk_thread *t = tls_thread;

	if (t && now > t->now_ns)
		t->now_ns = now;
}

static void stat_add(_Atomic uint64_t *c, uint64_t v)
{
	/* Single writer (the owning reactor); readers may be anywhere. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v, memory_order_relaxed);
}

/* ------------------------------------------------------------- core masks */

static int parse_list(const char *s, bool *set, char *err, size_t errlen, const char *what)
{
	const char *p = s;
	int n = 0;

	for (;;) {
		char *end;
		unsigned long a, b;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p < '0' || *p > '9') {
			set_err(err, errlen, "invalid %s '%s': expected a core number at '%s'", what, s, p);
			return -EINVAL;
		}
		errno = 0;
		a = strtoul(p, &end, 10);
		if (errno || a >= DBK_MAX_REACTORS) {
			set_err(err, errlen, "invalid %s '%s': core %.20s is >= %d", what, s, p, DBK_MAX_REACTORS);
			return -EINVAL;
		}
		p = end;
		while (*p == ' ' || *p == '\t')
			p++;
		b = a;
		if (*p == '-') {
			p++;
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p < '0' || *p > '9') {
				set_err(err, errlen, "invalid %s '%s': bad range end at '%s'", what, s, p);
				return -EINVAL;
			}
			errno = 0;
			b = strtoul(p, &end, 10);
			if (errno || b >= DBK_MAX_REACTORS) {
				set_err(err, errlen, "invalid %s '%s': core %.20s is >= %d", what, s, p,
					DBK_MAX_REACTORS);
				return -EINVAL;
			}
			if (b < a) {
				set_err(err, errlen, "invalid %s '%s': range %lu-%lu is reversed", what, s, a, b);
				return -EINVAL;
			}
			p = end;
			while (*p == ' ' || *p == '\t')
				p++;
		}
		for (unsigned long c = a; c <= b; c++) {
			set[c] = true;
			n++;
		}
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p == '\0' || *p == '\n')
			break;
		set_err(err, errlen, "invalid %s '%s': unexpected '%c'", what, s, *p);
		return -EINVAL;
	}
	return n;
}

int dbk_parse_core_mask(const char *mask, uint32_t *cores, int *num_cores, char *err, size_t errlen)
{
	bool set[DBK_MAX_REACTORS] = { false };
	int n = 0;

	if (!mask || !cores || !num_cores) {
		set_err(err, errlen, "invalid core mask: NULL");
		return -EINVAL;
	}
	while (*mask == ' ' || *mask == '\t')
		mask++;
	size_t len = strlen(mask);
	while (len > 0 && (mask[len - 1] == ' ' || mask[len - 1] == '\t' || mask[len - 1] == '\n'))
		len--;
	if (len == 0) {
		set_err(err, errlen, "invalid core mask: empty");
		return -EINVAL;
	}

	if (mask[0] == '[') {
		char buf[1024];

		if (mask[len - 1] != ']') {
			set_err(err, errlen, "invalid core mask '%s': missing ']'", mask);
			return -EINVAL;
		}
		if (len - 2 >= sizeof(buf)) {
			set_err(err, errlen, "invalid core mask: too long");
			return -EINVAL;
		}
		memcpy(buf, mask + 1, len - 2);
		buf[len - 2] = '\0';
		int rc = parse_list(buf, set, err, errlen, "core list");
		if (rc < 0)
			return rc;
	} else {
		const char *p = mask;
		const char *end = mask + len;

		if (len >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
			p += 2;
		if (p == end) {
			set_err(err, errlen, "invalid core mask '%s': no hex digits", mask);
			return -EINVAL;
		}
		/* Walk from the least significant digit. */
		int bit = 0;
		for (const char *q = end; q > p; q--, bit += 4) {
			char ch = q[-1];
			int v;

			if (ch >= '0' && ch <= '9')
				v = ch - '0';
			else if (ch >= 'a' && ch <= 'f')
				v = ch - 'a' + 10;
			else if (ch >= 'A' && ch <= 'F')
				v = ch - 'A' + 10;
			else {
				set_err(err, errlen, "invalid core mask '%.*s': '%c' is not a hex digit "
					"(use hex like 0x3 or a list like [0,1])", (int)len, mask, ch);
				return -EINVAL;
			}
			for (int k = 0; k < 4; k++) {
				if (!(v & (1 << k)))
					continue;
				if (bit + k >= DBK_MAX_REACTORS) {
					set_err(err, errlen, "invalid core mask '%.*s': core %d is >= %d", (int)len,
						mask, bit + k, DBK_MAX_REACTORS);
					return -EINVAL;
				}
				set[bit + k] = true;
			}
		}
	}

	for (int c = 0; c < DBK_MAX_REACTORS; c++)
		if (set[c])
			cores[n++] = (uint32_t)c;
	if (n == 0) {
		set_err(err, errlen, "invalid core mask '%.*s': selects no cores", (int)len, mask);
		return -EINVAL;
	}
	*num_cores = n;
	return 0;
}

int dbk_check_cores_usable(const uint32_t *cores, int num_cores, char *err, size_t errlen)
{
	cpu_set_t aff;
	bool online[DBK_MAX_REACTORS];
	bool have_online = false;

	if (!cores || num_cores <= 0 || num_cores > DBK_MAX_REACTORS) {
		set_err(err, errlen, "no cores given");
		return -EINVAL;
	}
	CPU_ZERO(&aff);
	if (sched_getaffinity(0, sizeof(aff), &aff) != 0) {
		set_err(err, errlen, "sched_getaffinity: %s", strerror(errno));
		return -EINVAL;
	}
	FILE *f = fopen("/sys/devices/system/cpu/online", "r");
	if (f) {
		char line[1024];

		memset(online, 0, sizeof(online));
		if (fgets(line, sizeof(line), f)) {
			/* Cores beyond DBK_MAX_REACTORS make the parser fail; then rely on affinity only. */
			have_online = parse_list(line, online, NULL, 0, "online list") > 0;
		}
		fclose(f);
	}
	for (int i = 0; i < num_cores; i++) {
		uint32_t c = cores[i];

		if (c >= DBK_MAX_REACTORS) {
			set_err(err, errlen, "core %u is >= %d", c, DBK_MAX_REACTORS);
			return -EINVAL;
		}
		if (have_online && !online[c]) {
			set_err(err, errlen, "core %u is not online (see /sys/devices/system/cpu/online)", c);
			return -EINVAL;
		}
		if (!CPU_ISSET(c, &aff)) {
			set_err(err, errlen, "core %u is not in this process's CPU affinity set "
				"(restricted by taskset/cgroup cpuset?)", c);
			return -EINVAL;
		}
		for (int j = 0; j < i; j++) {
			if (cores[j] == c) {
				set_err(err, errlen, "core %u listed twice", c);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* --------------------------------------------------------------- messages */

static void wake_thread(struct dbk_thread *t)
{
	uint64_t one = 1;
	ssize_t rc;

	do {
		rc = write(t->evfd, &one, sizeof(one));
	} while (rc < 0 && errno == EINTR);
	/* EAGAIN means the counter is saturated: the reactor is awake anyway. */
}

static int send_msg_internal(struct dbk_thread *t, dbk_msg_fn fn, void *ctx, void (*drop_fn)(void *))
{
	struct msg_node *n;

	if (!t || !fn)
		return -EINVAL;
	n = node_alloc();
	if (!n)
		return -ENOMEM;
	n->fn = fn;
	n->ctx = ctx;
	n->drop_fn = drop_fn;
	mpscq_push(&t->q, n);
	/* seq_cst load after the seq_cst exchange in push: see the header comment. */
	if (atomic_load(&t->sleeping) && atomic_exchange(&t->sleeping, 0))
		wake_thread(t);
	return 0;
}

int dbk_thread_send_msg(struct dbk_thread *t, dbk_msg_fn fn, void *ctx)
{
	return send_msg_internal(t, fn, ctx, NULL);
}

/* Internal messages whose ctx is heap memory owned by the message. */
static int send_owned_msg(struct dbk_thread *t, dbk_msg_fn fn, void *ctx)
{
	return send_msg_internal(t, fn, ctx, free);
}

static int drain_messages(struct dbk_thread *t)
{
	struct node_returns r = { 0 };
	int n = 0;

	while (n < MSG_BATCH) {
		struct msg_node *m = mpscq_pop(&t->q);
		dbk_msg_fn fn;
		void *ctx;

		if (!m)
			break;
		fn = m->fn;
		ctx = m->ctx;
		/* Hand the node back first: fn may send (and reuse our own nodes). */
		if (m->owner == tls_cache) {
			/* m->next may still point into the queue (at the stub): cut it. */
			atomic_store_explicit(&m->next, NULL, memory_order_relaxed);
			nodes_return(m->owner, m, m, 1);
		}
		else
			returns_add(&r, m);
		fn(ctx);
		n++;
	}
	returns_flush(&r);
	return n;
}

/* ----------------------------------------------------------------- thread */

struct dbk_thread *dbk_get_thread(void)
{
	return tls_thread;
}

int dbk_thread_get_index(const struct dbk_thread *t)
{
	return t ? t->idx : -1;
}

const char *dbk_thread_get_name(const struct dbk_thread *t)
{
	return t ? t->name : NULL;
}

bool dbk_is_main_thread(void)
{
	return tls_thread != NULL && tls_thread->idx == 0;
}

int dbk_reactor_count(void)
{
	return g_num_threads;
}

struct dbk_thread *dbk_reactor_thread(int idx)
{
	if (idx < 0 || idx >= g_num_threads)
		return NULL;
	return g_threads[idx];
}

void dbk_reactor_get_info(int idx, struct dbk_reactor_info *info)
{
	struct dbk_thread *t = dbk_reactor_thread(idx);

	memset(info, 0, sizeof(*info));
	if (!t)
		return;
	info->lcore = t->lcore;
	info->busy_ns = atomic_load_explicit(&t->busy_ns, memory_order_relaxed);
	info->idle_ns = atomic_load_explicit(&t->idle_ns, memory_order_acquire);
	/* A reactor blocked in epoll_wait is idle right now: count the ongoing wait too. */
	uint64_t ss = atomic_load_explicit(&t->sleep_start, memory_order_relaxed);
	uint64_t now = dbk_get_ns();
	if (ss && now > ss)
		info->idle_ns += now - ss;
	info->iterations = atomic_load_explicit(&t->iterations, memory_order_relaxed);
	info->sleeps = atomic_load_explicit(&t->sleeps, memory_order_relaxed);
	info->num_pollers = atomic_load_explicit(&t->num_pollers, memory_order_relaxed);
	info->num_fds = atomic_load_explicit(&t->num_fds, memory_order_relaxed);
	info->thread_name = t->name;
}

struct thread_iter {
	dbk_msg_fn fn;
	dbk_msg_fn cpl;
	void *ctx;
	struct dbk_thread *orig;
	int idx;
};

static void thread_iter_cpl(void *arg)
{
	struct thread_iter *it = arg;

	it->cpl(it->ctx);
	free(it);
}

static void thread_iter_step(void *arg)
{
	struct thread_iter *it = arg;

	it->fn(it->ctx);
	it->idx++;
	if (it->idx < g_num_threads) {
		if (send_owned_msg(g_threads[it->idx], thread_iter_step, it) == 0)
			return;
		DBK_ERRLOG("for_each_thread: out of memory, stopping at reactor %d", it->idx);
	}
	if (!it->cpl) {
		free(it);
		return;
	}
	if (send_owned_msg(it->orig, thread_iter_cpl, it) != 0) {
		DBK_ERRLOG("for_each_thread: out of memory sending completion");
		free(it);
	}
}

int dbk_for_each_thread(dbk_msg_fn fn, void *ctx, dbk_msg_fn cpl)
{
	struct thread_iter *it;
	struct dbk_thread *orig = tls_thread;
	int rc;

	if (!fn)
		return -EINVAL;
	if (!orig) {
		DBK_ERRLOG("dbk_for_each_thread called outside a reactor");
		return -EINVAL;
	}
	it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->fn = fn;
	it->cpl = cpl;
	it->ctx = ctx;
	it->orig = orig;
	rc = send_owned_msg(g_threads[0], thread_iter_step, it);
	if (rc)
		free(it);
	return rc;
}

/* ---------------------------------------------------------------- pollers */

static void timed_insert(struct dbk_thread *t, struct dbk_poller *p)
{
	struct dbk_poller *it;

	/* Scan from the back: re-armed pollers usually go last. */
	TAILQ_FOREACH_REVERSE(it, &t->timed_pollers, poller_list, link) {
		if (it->deadline <= p->deadline) {
			TAILQ_INSERT_AFTER(&t->timed_pollers, it, p, link);
			p->in_timed_list = true;
			return;
		}
	}
	TAILQ_INSERT_HEAD(&t->timed_pollers, p, link);
	p->in_timed_list = true;
}

struct dbk_poller *dbk_poller_register(dbk_poller_fn fn, void *ctx, uint64_t period_us, const char *name)
{
	struct dbk_thread *t = tls_thread;
	struct dbk_poller *p;

	if (!t) {
		DBK_ERRLOG("poller '%s' registered outside a reactor", name ? name : "?");
		return NULL;
	}
	if (!fn)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->fn = fn;
	p->ctx = ctx;
	p->thread = t;
	p->state = POLLER_ACTIVE;
	/* Clamp absurd periods (~1 year) so deadlines cannot overflow. */
	if (period_us > 365ull * 24 * 3600 * 1000000)
		period_us = 365ull * 24 * 3600 * 1000000;
	p->period_ns = period_us * 1000;
	snprintf(p->name, sizeof(p->name), "%s", name ? name : "poller");
	if (p->period_ns) {
		p->deadline = dbk_get_ns() + p->period_ns;
		timed_insert(t, p);
	} else {
		TAILQ_INSERT_TAIL(&t->active_pollers, p, link);
	}
	atomic_fetch_add_explicit(&t->num_pollers, 1, memory_order_relaxed);
	return p;
}

void dbk_poller_unregister(struct dbk_poller **pp)
{
	struct dbk_poller *p;
	struct dbk_thread *t;

	if (!pp || !*pp)
		return;
	p = *pp;
	*pp = NULL;
	t = p->thread;
	if (t != tls_thread)
		DBK_ERRLOG("poller '%s' unregistered from a thread that does not own it", p->name);
	if (p->state == POLLER_DEAD)
		return;
	p->state = POLLER_DEAD;
	atomic_fetch_sub_explicit(&t->num_pollers, 1, memory_order_relaxed);
	if (p->running)
		return;	/* the run loop frees it when the callback returns */
	/* Move to the dead list: freed at the end of the iteration, so loops holding it stay safe. */
	if (p->in_timed_list)
		TAILQ_REMOVE(&t->timed_pollers, p, link);
	else
		TAILQ_REMOVE(&t->active_pollers, p, link);
	p->in_timed_list = false;
	TAILQ_INSERT_TAIL(&t->dead_pollers, p, link);
}

static void free_dead(struct dbk_thread *t)
{
	struct dbk_poller *p;
	struct dbk_fd_handler *h;

	while ((p = TAILQ_FIRST(&t->dead_pollers))) {
		TAILQ_REMOVE(&t->dead_pollers, p, link);
		free(p);
	}
	while ((h = TAILQ_FIRST(&t->dead_fds))) {
		TAILQ_REMOVE(&t->dead_fds, h, link);
		free(h);
	}
}

static int run_active_pollers(struct dbk_thread *t)
{
	struct dbk_poller *p, *next;
	int busy = 0;

	/*
	 * Pollers unregistered during this walk go to the dead list (freed
	 * later), so 'next' always points at a live element or a dead one
	 * whose link is still readable; take next after the callback.
	 */
	for (p = TAILQ_FIRST(&t->active_pollers); p; p = next) {
		p->running = true;
		int rc = p->fn(p->ctx);
		p->running = false;
		if (rc > 0)
			busy = 1;
		next = TAILQ_NEXT(p, link);
		if (p->state == POLLER_DEAD) {
			TAILQ_REMOVE(&t->active_pollers, p, link);
			TAILQ_INSERT_TAIL(&t->dead_pollers, p, link);
		}
	}
	return busy;
}

static int run_timed_pollers(struct dbk_thread *t, uint64_t now)
{
	struct dbk_poller *p;
	int busy = 0;

	while ((p = TAILQ_FIRST(&t->timed_pollers)) && p->deadline <= now) {
		TAILQ_REMOVE(&t->timed_pollers, p, link);
		p->in_timed_list = false;
		p->running = true;
		int rc = p->fn(p->ctx);
		p->running = false;
		if (rc > 0)
			busy = 1;
		if (p->state == POLLER_DEAD) {
			TAILQ_INSERT_TAIL(&t->dead_pollers, p, link);
			continue;
		}
		/* Next deadline: keep the cadence, but never schedule in the past. */
		p->deadline += p->period_ns;
		if (p->deadline <= now)
			p->deadline = now + p->period_ns;
		timed_insert(t, p);
	}
	return busy;
}

/* -------------------------------------------------------------- fd events */

struct dbk_fd_handler *dbk_fd_register(int fd, uint32_t events, dbk_fd_fn fn, void *ctx, const char *name)
{
	struct dbk_thread *t = tls_thread;
	struct dbk_fd_handler *h;
	struct epoll_event ev;

	if (!t) {
		DBK_ERRLOG("fd handler '%s' registered outside a reactor", name ? name : "?");
		return NULL;
	}
	if (fd < 0 || !fn)
		return NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->fd = fd;
	h->events = events;
	h->fn = fn;
	h->ctx = ctx;
	h->thread = t;
	snprintf(h->name, sizeof(h->name), "%s", name ? name : "fd");
	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = h;
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		DBK_ERRLOG("fd handler '%s': epoll_ctl(ADD, %d): %s", h->name, fd, strerror(errno));
		free(h);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&t->fds, h, link);
	atomic_fetch_add_explicit(&t->num_fds, 1, memory_order_relaxed);
	return h;
}

int dbk_fd_modify(struct dbk_fd_handler *h, uint32_t events)
{
	struct epoll_event ev;

	if (!h || h->dead)
		return -EINVAL;
	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = h;
	if (epoll_ctl(h->thread->epfd, EPOLL_CTL_MOD, h->fd, &ev) != 0)
		return -errno;
	h->events = events;
	return 0;
}

void dbk_fd_unregister(struct dbk_fd_handler **hp)
{
	struct dbk_fd_handler *h;
	struct dbk_thread *t;

	if (!hp || !*hp)
		return;
	h = *hp;
	*hp = NULL;
	if (h->dead)
		return;
	t = h->thread;
	if (t != tls_thread)
		DBK_ERRLOG("fd handler '%s' unregistered from a thread that does not own it", h->name);
	/* The fd may already be closed by the owner; EBADF/ENOENT are fine then. */
	epoll_ctl(t->epfd, EPOLL_CTL_DEL, h->fd, NULL);
	h->dead = true;
	TAILQ_REMOVE(&t->fds, h, link);
	TAILQ_INSERT_TAIL(&t->dead_fds, h, link);	/* freed after the current epoll batch */
	atomic_fetch_sub_explicit(&t->num_fds, 1, memory_order_relaxed);
}

/* ---------------------------------------------------------- reactor loop */

static uint64_t next_deadline(struct dbk_thread *t)
{
	struct dbk_poller *p = TAILQ_FIRST(&t->timed_pollers);

	return p ? p->deadline : UINT64_MAX;
}

static bool g_have_pwait2 = true;

static int wait_events(struct dbk_thread *t, struct epoll_event *evs, uint64_t timeout_ns, bool infinite)
{
	int n;

	if (infinite)
		return epoll_wait(t->epfd, evs, EPOLL_BATCH, -1);
	if (timeout_ns == 0)
		return epoll_wait(t->epfd, evs, EPOLL_BATCH, 0);
	if (__atomic_load_n(&g_have_pwait2, __ATOMIC_RELAXED)) {
		struct timespec ts = {
			.tv_sec = (time_t)(timeout_ns / 1000000000ull),
			.tv_nsec = (long)(timeout_ns % 1000000000ull),
		};
		n = epoll_pwait2(t->epfd, evs, EPOLL_BATCH, &ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		__atomic_store_n(&g_have_pwait2, false, __ATOMIC_RELAXED);
	}
	uint64_t ms = (timeout_ns + 999999) / 1000000;
	return epoll_wait(t->epfd, evs, EPOLL_BATCH, ms > INT_MAX ? INT_MAX : (int)ms);
}

/* Run the handlers of n epoll events (the wake-up eventfd is read and skipped). 1 if a handler ran. */
static int dispatch_events(struct dbk_thread *t, struct epoll_event *evs, int n)
{
	int fd_work = 0;

	for (int i = 0; i < n; i++) {
		struct dbk_fd_handler *h = evs[i].data.ptr;

		if (!h) {
			uint64_t v;

			if (read(t->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				DBK_ERRLOG("%s: eventfd read: %s", t->name, strerror(errno));
			continue;
		}
		if (h->dead)
			continue;	/* unregistered earlier in this batch */
		h->fn(h->ctx, evs[i].events);
		fd_work = 1;
	}
	return fd_work;
}

static bool stop_requested(void)
{
	return atomic_load_explicit(&g_stop, memory_order_relaxed);
}

/*
 * One clock read per iteration on the hot path: an iteration starts at the
 * previous one's end time (t->now_ns, also what dbk_thread_now_ns() returns
 * to pollers and handlers), and ends with a single read. Only an iteration
 * that goes to sleep reads the clock more: before the wait (timeout, and the
 * poller phase's end) and after it (so the wait counts as idle and the
 * events it delivered as busy). A non-sleeping iteration is charged whole to
 * busy_ns when any poller, message or fd handler did work, else to idle_ns.
 */
static void reactor_run(struct dbk_thread *t)
{
	struct epoll_event evs[EPOLL_BATCH];
	uint64_t t0 = dbk_get_ns();

	while (!stop_requested()) {
		int work = 0;

		t->now_ns = t0;
		work |= drain_messages(t) > 0;
		work |= run_active_pollers(t);
		work |= run_timed_pollers(t, t0);
		free_dead(t);

		uint64_t t1 = 0, t2 = 0;
		uint64_t timeout_ns = 0;
		bool infinite = false;
		bool sleep = false;

		/* Interrupt mode: keep polling for spin_ns after the last work before sleeping. */
		if (!work && !g_busy_poll && t0 - t->last_work_ns >= g_spin_ns) {
			uint64_t dl = next_deadline(t);

			t1 = dbk_get_ns();
			if (dl == UINT64_MAX)
				infinite = true;
			else if (dl > t1)
				timeout_ns = dl - t1;
			if (infinite || timeout_ns > 0) {
				atomic_store(&t->sleeping, 1);
				/* Re-check after announcing: a sender either sees the flag or we see its message. */
				if (!mpscq_empty(&t->q) || stop_requested()) {
					atomic_store(&t->sleeping, 0);
					infinite = false;
					timeout_ns = 0;
				} else {
					sleep = true;
					atomic_store_explicit(&t->sleep_start, t1, memory_order_relaxed);
				}
			}
		}

		int n = wait_events(t, evs, timeout_ns, infinite);
		int nerr = n < 0 ? errno : 0;
		if (sleep) {
			t2 = dbk_get_ns();
			t->now_ns = t2;
			atomic_store(&t->sleeping, 0);
			stat_add(&t->sleeps, 1);
		}
		int fd_work = 0;

		if (n < 0 && nerr != EINTR)
			DBK_ERRLOG("%s: epoll_wait: %s", t->name, strerror(nerr));
		fd_work = dispatch_events(t, evs, n);
		free_dead(t);

		uint64_t t3 = dbk_get_ns();
		if (sleep) {
			/* Poller phase (found no work) and the wait are idle; the delivered events busy or idle. */
			stat_add(&t->idle_ns, t1 - t0);
			/*
			 * Clear the marker, then publish (release) the idle time: a get_info
			 * that sees the new idle_ns (acquire) also sees the marker cleared,
			 * so the wait is never counted twice.
			 */
			atomic_store_explicit(&t->sleep_start, 0, memory_order_relaxed);
			atomic_store_explicit(&t->idle_ns,
					      atomic_load_explicit(&t->idle_ns, memory_order_relaxed) + (t2 - t1),
					      memory_order_release);
			stat_add(fd_work ? &t->busy_ns : &t->idle_ns, t3 - t2);
		} else {
			stat_add(work || fd_work ? &t->busy_ns : &t->idle_ns, t3 - t0);
		}
		stat_add(&t->iterations, 1);
		if (work || fd_work)
			t->last_work_ns = t3;
		t0 = t3;
	}
}

static void pin_self(struct dbk_thread *t)
{
	cpu_set_t set;
	int rc;

	CPU_ZERO(&set);
	CPU_SET(t->lcore, &set);
	rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (rc != 0)
		DBK_ERRLOG("%s: cannot pin to core %u: %s", t->name, t->lcore, strerror(rc));
}

static void *reactor_main(void *arg)
{
	struct dbk_thread *t = arg;

	tls_thread = t;
	dbk_log_set_thread_name(t->name);
	if (g_pin)
		pin_self(t);
	reactor_run(t);
	tls_thread = NULL;
	return NULL;
}

/* ------------------------------------------------------ blocking helpers */

#define NUM_HELPERS 2

struct blocking_job {
	STAILQ_ENTRY(blocking_job) link;
	dbk_blocking_fn fn;
	dbk_blocking_cpl cpl;
	void *ctx;
	struct dbk_thread *thread;
	int rc;
};

static pthread_mutex_t g_job_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_job_cond = PTHREAD_COND_INITIALIZER;
static STAILQ_HEAD(, blocking_job) g_jobs = STAILQ_HEAD_INITIALIZER(g_jobs);
static bool g_jobs_shutdown;
static atomic_int g_jobs_outstanding;	/* queued or running, completion not yet run (dbk_reactor_poll_idle) */
static pthread_t g_helpers[NUM_HELPERS];
static int g_num_helpers;

static void blocking_done(void *arg)
{
	struct blocking_job *job = arg;

	atomic_fetch_sub(&g_jobs_outstanding, 1);
	if (job->cpl)
		job->cpl(job->ctx, job->rc);
	free(job);
}

static void *helper_main(void *arg)
{
	(void)arg;
	dbk_log_set_thread_name("helper");
	pthread_mutex_lock(&g_job_lock);
	for (;;) {
		struct blocking_job *job = STAILQ_FIRST(&g_jobs);

		if (!job) {
			if (g_jobs_shutdown)
				break;
			pthread_cond_wait(&g_job_cond, &g_job_lock);
			continue;
		}
		STAILQ_REMOVE_HEAD(&g_jobs, link);
		pthread_mutex_unlock(&g_job_lock);
		job->rc = job->fn(job->ctx);
		if (send_owned_msg(job->thread, blocking_done, job) != 0) {
			DBK_ERRLOG("run_blocking: out of memory sending the completion");
			atomic_fetch_sub(&g_jobs_outstanding, 1);
			free(job);
		}
		pthread_mutex_lock(&g_job_lock);
	}
	pthread_mutex_unlock(&g_job_lock);
	return NULL;
}

int dbk_run_blocking(dbk_blocking_fn fn, dbk_blocking_cpl cpl, void *ctx)
{
	struct dbk_thread *t = tls_thread;
	struct blocking_job *job;

	if (!fn)
		return -EINVAL;
	if (!t) {
		DBK_ERRLOG("dbk_run_blocking called outside a reactor");
		return -EINVAL;
	}
	job = calloc(1, sizeof(*job));
	if (!job)
		return -ENOMEM;
	job->fn = fn;
	job->cpl = cpl;
	job->ctx = ctx;
	job->thread = t;
	pthread_mutex_lock(&g_job_lock);
	if (g_jobs_shutdown || g_num_helpers == 0) {
		pthread_mutex_unlock(&g_job_lock);
		free(job);
		return -ESHUTDOWN;
	}
	STAILQ_INSERT_TAIL(&g_jobs, job, link);
	atomic_fetch_add(&g_jobs_outstanding, 1);
	pthread_cond_signal(&g_job_cond);
	pthread_mutex_unlock(&g_job_lock);
	return 0;
}

static int helpers_start(void)
{
	pthread_attr_t attr;
	int rc;

	g_jobs_shutdown = false;
	g_num_helpers = 0;
	atomic_store(&g_jobs_outstanding, 0);
	rc = pthread_attr_init(&attr);
	if (rc)
		return -rc;
	/* Explicitly the whole process mask: never inherit a reactor's pinning. */
	rc = pthread_attr_setaffinity_np(&attr, sizeof(g_proc_mask), &g_proc_mask);
	if (rc) {
		pthread_attr_destroy(&attr);
		return -rc;
	}
	for (int i = 0; i < NUM_HELPERS; i++) {
		rc = pthread_create(&g_helpers[i], &attr, helper_main, NULL);
		if (rc) {
			DBK_ERRLOG("cannot start blocking helper thread: %s", strerror(rc));
			break;
		}
		pthread_setname_np(g_helpers[i], "dbk_helper");
		g_num_helpers++;
	}
	pthread_attr_destroy(&attr);
	return g_num_helpers ? 0 : -rc;
}

static void helpers_stop(void)
{
	pthread_mutex_lock(&g_job_lock);
	g_jobs_shutdown = true;
	pthread_cond_broadcast(&g_job_cond);
	pthread_mutex_unlock(&g_job_lock);
	for (int i = 0; i < g_num_helpers; i++)
		pthread_join(g_helpers[i], NULL);
	g_num_helpers = 0;
}

/* ------------------------------------------------------ reactors lifecycle */

static void thread_free(struct dbk_thread *t)
{
	struct msg_node *m;
	struct dbk_poller *p;
	struct dbk_fd_handler *h;
	struct dbk_io_channel *ch;

	if (!t)
		return;
	/* Drop leftover messages; internal ones free what they own. */
	while ((m = mpscq_pop(&t->q))) {
		if (m->drop_fn)
			m->drop_fn(m->ctx);
		free(m);
	}
	while ((p = TAILQ_FIRST(&t->active_pollers))) {
		TAILQ_REMOVE(&t->active_pollers, p, link);
		free(p);
	}
	while ((p = TAILQ_FIRST(&t->timed_pollers))) {
		TAILQ_REMOVE(&t->timed_pollers, p, link);
		free(p);
	}
	while ((h = TAILQ_FIRST(&t->fds))) {
		TAILQ_REMOVE(&t->fds, h, link);
		free(h);
	}
	free_dead(t);
	while ((ch = TAILQ_FIRST(&t->channels))) {
		DBK_WARNLOG("%s: channel still held at fini", t->name);
		TAILQ_REMOVE(&t->channels, ch, link);
		free(ch);
	}
	if (t->epfd >= 0)
		close(t->epfd);
	if (t->evfd >= 0)
		close(t->evfd);
	free(t);
}

static struct dbk_thread *thread_alloc(int idx, uint32_t lcore)
{
	struct dbk_thread *t = aligned_alloc(64, (sizeof(*t) + 63) & ~(size_t)63);
	struct epoll_event ev;

	if (!t)
		return NULL;
	memset(t, 0, sizeof(*t));
	mpscq_init(&t->q);
	atomic_init(&t->sleeping, 0);
	t->idx = idx;
	t->lcore = lcore;
	t->epfd = -1;
	t->evfd = -1;
	snprintf(t->name, sizeof(t->name), "reactor_%d", idx);
	TAILQ_INIT(&t->active_pollers);
	TAILQ_INIT(&t->timed_pollers);
	TAILQ_INIT(&t->dead_pollers);
	TAILQ_INIT(&t->fds);
	TAILQ_INIT(&t->dead_fds);
	TAILQ_INIT(&t->channels);
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	t->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->epfd < 0 || t->evfd < 0)
		goto fail;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;	/* NULL marks the wake-up eventfd */
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->evfd, &ev) != 0)
		goto fail;
	return t;
fail:
	DBK_ERRLOG("reactor %d: cannot create epoll/eventfd: %s", idx, strerror(errno));
	thread_free(t);
	return NULL;
}

int dbk_reactors_init(const struct dbk_reactor_opts *opts)
{
	int rc;

	if (!opts || opts->num_cores <= 0 || opts->num_cores > DBK_MAX_REACTORS)
		return -EINVAL;
	if (g_initialized) {
		DBK_ERRLOG("reactors already initialized");
		return -EBUSY;
	}
	for (int i = 0; i < opts->num_cores; i++)
		if (opts->cores[i] >= DBK_MAX_REACTORS)
			return -EINVAL;
	CPU_ZERO(&g_proc_mask);
	if (sched_getaffinity(0, sizeof(g_proc_mask), &g_proc_mask) != 0)
		return -errno;
	atomic_store(&g_stop, 0);
	g_pin = opts->pin;
	g_busy_poll = opts->busy_poll;
	g_spin_ns = DBK_REACTOR_SPIN_US_DEFAULT * 1000ull;
	const char *spin = getenv("DBK_REACTOR_SPIN_US");
	if (spin && *spin) {
		char *end;
		unsigned long long us = strtoull(spin, &end, 10);
		if (*end == '\0' && us <= 1000000)
			g_spin_ns = us * 1000ull;
		else
			DBK_ERRLOG("DBK_REACTOR_SPIN_US='%s' ignored (0..1000000 expected)", spin);
	}
	for (int i = 0; i < opts->num_cores; i++) {
		g_threads[i] = thread_alloc(i, opts->cores[i]);
		if (!g_threads[i]) {
			rc = -ENOMEM;
			goto fail;
		}
		g_num_threads = i + 1;
	}
	rc = helpers_start();
	if (rc)
		goto fail;
	g_initialized = true;
	return 0;
fail:
	helpers_stop();
	for (int i = 0; i < g_num_threads; i++) {
		thread_free(g_threads[i]);
		g_threads[i] = NULL;
	}
	g_num_threads = 0;
	return rc;
}

int dbk_reactors_start(dbk_msg_fn start_fn, void *ctx)
{
	struct dbk_thread *t0;
	cpu_set_t saved;
	bool restore = false;
	int rc = 0;

	if (!g_initialized || g_num_threads == 0)
		return -EINVAL;
	t0 = g_threads[0];
	for (int i = 1; i < g_num_threads; i++) {
		struct dbk_thread *t = g_threads[i];
		int e = pthread_create(&t->tid, NULL, reactor_main, t);

		if (e) {
			DBK_ERRLOG("cannot start %s: %s", t->name, strerror(e));
			rc = -e;
			dbk_reactors_stop();
			break;
		}
		t->pthread_started = true;
		pthread_setname_np(t->tid, t->name);
	}
	if (g_pin) {
		CPU_ZERO(&saved);
		restore = sched_getaffinity(0, sizeof(saved), &saved) == 0;
		pin_self(t0);
	}
	tls_thread = t0;
	dbk_log_set_thread_name(t0->name);
	if (rc == 0 && start_fn && !stop_requested())
		start_fn(ctx);
	reactor_run(t0);
	tls_thread = NULL;
	dbk_log_set_thread_name(NULL);
	for (int i = 1; i < g_num_threads; i++) {
		struct dbk_thread *t = g_threads[i];

		if (t->pthread_started) {
			pthread_join(t->tid, NULL);
			t->pthread_started = false;
		}
	}
	if (restore)
		sched_setaffinity(0, sizeof(saved), &saved);
	return rc;
}

void dbk_reactors_stop(void)
{
	/* Async-signal-safe: a lock-free atomic store and write(2). */
	atomic_store(&g_stop, 1);
	int n = __atomic_load_n(&g_num_threads, __ATOMIC_SEQ_CST);

	for (int i = 0; i < n; i++) {
		struct dbk_thread *t = __atomic_load_n(&g_threads[i], __ATOMIC_SEQ_CST);
		uint64_t one = 1;

		if (t && t->evfd >= 0) {
			int saved = errno;
			if (write(t->evfd, &one, sizeof(one)) < 0) {
				/* EAGAIN: counter saturated, a wake-up is pending anyway. */
			}
			errno = saved;
		}
	}
}

/* ------------------------------------------- driving reactor 0 by hand */

int dbk_reactors_attach(void)
{
	if (!g_initialized || g_num_threads != 1 || tls_thread)
		return -EINVAL;
	tls_thread = g_threads[0];
	dbk_log_set_thread_name(tls_thread->name);
	tls_thread->now_ns = dbk_get_ns();
	return 0;
}

void dbk_reactors_detach(void)
{
	if (tls_thread && tls_thread == g_threads[0]) {
		tls_thread = NULL;
		dbk_log_set_thread_name(NULL);
	}
}

bool dbk_reactor_poll(uint64_t max_wait_us)
{
	struct dbk_thread *t = tls_thread;
	struct epoll_event evs[EPOLL_BATCH];
	uint64_t now = dbk_get_ns(), timeout_ns = 0;
	int work = 0, n;

	if (!t || t != g_threads[0])
		return false;
	t->now_ns = now;
	work |= drain_messages(t) > 0;
	work |= run_active_pollers(t);
	work |= run_timed_pollers(t, now);
	free_dead(t);
	if (!work && max_wait_us && mpscq_empty(&t->q)) {
		uint64_t dl = next_deadline(t), cap = max_wait_us * 1000ull;

		now = dbk_get_ns();
		timeout_ns = dl <= now ? 0 : dl - now < cap ? dl - now : cap;
	}
	n = wait_events(t, evs, timeout_ns, false);
	t->now_ns = dbk_get_ns();
	work |= dispatch_events(t, evs, n);
	free_dead(t);
	stat_add(&t->iterations, 1);
	return work != 0;
}

void dbk_reactor_expire_timers(void)
{
	struct dbk_thread *t = tls_thread;
	struct dbk_poller *p;

	if (!t || t != g_threads[0])
		return;
	/* All due now; the list stays sorted (every deadline equal). */
	TAILQ_FOREACH(p, &t->timed_pollers, link)
		p->deadline = 0;
}

bool dbk_reactor_jobs_outstanding(void)
{
	return atomic_load(&g_jobs_outstanding) > 0;
}

int dbk_reactor_poll_idle(uint64_t timeout_us)
{
	uint64_t deadline = dbk_get_ns() + timeout_us * 1000ull;

	while (dbk_get_thread()) {
		bool jobs = atomic_load(&g_jobs_outstanding) > 0;

		/* No work now and no blocking job whose completion is still to come: idle. */
		if (!dbk_reactor_poll(jobs ? 1000 : 0) && !jobs && !atomic_load(&g_jobs_outstanding))
			return 0;
		if (dbk_get_ns() > deadline)
			return -ETIMEDOUT;
	}
	return -EINVAL;
}

static void io_devices_fini(void);

void dbk_reactors_fini(void)
{
	if (!g_initialized)
		return;
	/* Helpers finish queued jobs; their completions are queued and dropped below. */
	helpers_stop();
	/* Hide the reactors from a late dbk_reactors_stop() (signal handler) before freeing them. */
	int n = g_num_threads;
	__atomic_store_n(&g_num_threads, 0, __ATOMIC_SEQ_CST);
	for (int i = 0; i < n; i++) {
		struct dbk_thread *t = g_threads[i];

		__atomic_store_n(&g_threads[i], NULL, __ATOMIC_SEQ_CST);
		thread_free(t);
	}
	io_devices_fini();
	caches_fini();
	g_initialized = false;
}

/* ------------------------------------------------- io_device / io_channel */

struct io_device {
	TAILQ_ENTRY(io_device) link;
	void *io_device;
	dbk_io_channel_create_cb create_cb;
	dbk_io_channel_destroy_cb destroy_cb;
	uint32_t ctx_size;
	char name[64];
	/* Channels that exist plus for_each_channel iterations in flight. */
	uint32_t refcnt;
	bool unregistering;
	dbk_io_device_unregister_cb unregister_cb;
	struct dbk_thread *unreg_thread;
};

static pthread_mutex_t g_dev_lock = PTHREAD_MUTEX_INITIALIZER;
static TAILQ_HEAD(, io_device) g_devices = TAILQ_HEAD_INITIALIZER(g_devices);

/* Caller holds g_dev_lock. */
static struct io_device *dev_find(void *io_device)
{
	struct io_device *d;

	TAILQ_FOREACH(d, &g_devices, link)
		if (d->io_device == io_device)
			return d;
	return NULL;
}

static void dev_unregister_done(void *arg)
{
	struct io_device *d = arg;

	if (d->unregister_cb)
		d->unregister_cb(d->io_device);
	free(d);
}

/* Caller holds g_dev_lock; releases it. */
static void dev_put_locked(struct io_device *d)
{
	bool done;

	d->refcnt--;
	done = d->unregistering && d->refcnt == 0;
	if (done)
		TAILQ_REMOVE(&g_devices, d, link);
	pthread_mutex_unlock(&g_dev_lock);
	if (done && send_owned_msg(d->unreg_thread, dev_unregister_done, d) != 0) {
		DBK_ERRLOG("io_device '%s': out of memory sending the unregister completion", d->name);
		free(d);
	}
}

static void dev_put(struct io_device *d)
{
	pthread_mutex_lock(&g_dev_lock);
	dev_put_locked(d);
}

static void io_devices_fini(void)
{
	struct io_device *d;

	pthread_mutex_lock(&g_dev_lock);
	while ((d = TAILQ_FIRST(&g_devices))) {
		TAILQ_REMOVE(&g_devices, d, link);
		free(d);
	}
	pthread_mutex_unlock(&g_dev_lock);
}

void dbk_io_device_register(void *io_device, dbk_io_channel_create_cb create_cb,
			    dbk_io_channel_destroy_cb destroy_cb, uint32_t ctx_size, const char *name)
{
	struct io_device *d;

	if (!io_device) {
		DBK_ERRLOG("io_device_register: NULL device");
		return;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		DBK_ERRLOG("io_device_register '%s': out of memory", name ? name : "?");
		return;
	}
	d->io_device = io_device;
	d->create_cb = create_cb;
	d->destroy_cb = destroy_cb;
	d->ctx_size = ctx_size;
	snprintf(d->name, sizeof(d->name), "%s", name ? name : "io_device");
	pthread_mutex_lock(&g_dev_lock);
	if (dev_find(io_device)) {
		pthread_mutex_unlock(&g_dev_lock);
		DBK_ERRLOG("io_device %p ('%s') already registered", io_device, d->name);
		free(d);
		return;
	}
	TAILQ_INSERT_TAIL(&g_devices, d, link);
	pthread_mutex_unlock(&g_dev_lock);
}

void dbk_io_device_unregister(void *io_device, dbk_io_device_unregister_cb unregister_cb)
{
	struct io_device *d;
	struct dbk_thread *t = tls_thread;

	if (!t) {
		DBK_ERRLOG("io_device_unregister called outside a reactor; completing on reactor 0");
		t = g_threads[0];
	}
	pthread_mutex_lock(&g_dev_lock);
	d = dev_find(io_device);
	if (!d || d->unregistering) {
		pthread_mutex_unlock(&g_dev_lock);
		DBK_ERRLOG("io_device %p: %s", io_device, d ? "already unregistering" : "not registered");
		return;
	}
	d->unregistering = true;
	d->unregister_cb = unregister_cb;
	d->unreg_thread = t;
	/* Take a reference and drop it: completes now if no channel exists. */
	d->refcnt++;
	dev_put_locked(d);
}

struct dbk_io_channel *dbk_get_io_channel(void *io_device)
{
	struct dbk_thread *t = tls_thread;
	struct io_device *d;
	struct dbk_io_channel *ch;
	int rc;

	if (!t)
		return NULL;
	pthread_mutex_lock(&g_dev_lock);
	d = dev_find(io_device);
	if (!d || d->unregistering) {
		pthread_mutex_unlock(&g_dev_lock);
		return NULL;
	}
	TAILQ_FOREACH(ch, &t->channels, link) {
		if (ch->dev == d) {
			ch->ref++;	/* also revives a channel whose destroy is pending */
			pthread_mutex_unlock(&g_dev_lock);
			return ch;
		}
	}
	d->refcnt++;
	pthread_mutex_unlock(&g_dev_lock);

	ch = calloc(1, sizeof(*ch) + d->ctx_size);
	if (!ch) {
		dev_put(d);
		return NULL;
	}
	ch->dev = d;
	ch->thread = t;
	ch->ref = 1;
	if (d->create_cb) {
		rc = d->create_cb(d->io_device, ch->ctx);
		if (rc != 0) {
			DBK_DEBUGLOG("thread", "io_device '%s': channel create failed: %d", d->name, rc);
			free(ch);
			dev_put(d);
			return NULL;
		}
	}
	TAILQ_INSERT_TAIL(&t->channels, ch, link);
	return ch;
}

static void channel_destroy_deferred(void *arg)
{
	struct dbk_io_channel *ch = arg;
	struct io_device *d = ch->dev;

	ch->destroy_pending = false;
	if (ch->ref > 0)
		return;	/* got again before we ran: keep it */
	TAILQ_REMOVE(&ch->thread->channels, ch, link);
	if (d->destroy_cb)
		d->destroy_cb(d->io_device, ch->ctx);
	free(ch);
	dev_put(d);
}

void dbk_put_io_channel(struct dbk_io_channel *ch)
{
	if (!ch)
		return;
	if (ch->thread != tls_thread)
		DBK_ERRLOG("io_channel put from a thread that does not own it");
	if (ch->ref == 0) {
		DBK_ERRLOG("io_channel put with zero references");
		return;
	}
	ch->ref--;
	if (ch->ref > 0 || ch->destroy_pending)
		return;
	ch->destroy_pending = true;
	if (dbk_thread_send_msg(ch->thread, channel_destroy_deferred, ch) != 0) {
		DBK_ERRLOG("io_channel put: out of memory, destroying now");
		channel_destroy_deferred(ch);
	}
}

void *dbk_io_channel_get_ctx(struct dbk_io_channel *ch)
{
	return ch->ctx;
}

struct dbk_io_channel *dbk_io_channel_from_ctx(void *ctx)
{
	return (struct dbk_io_channel *)((unsigned char *)ctx - offsetof(struct dbk_io_channel, ctx));
}

void *dbk_io_channel_get_io_device(struct dbk_io_channel *ch)
{
	return ch->dev->io_device;
}

struct dbk_thread *dbk_io_channel_get_thread(struct dbk_io_channel *ch)
{
	return ch->thread;
}

/* ------------------------------------------------------ for_each_channel */

struct dbk_io_channel_iter {
	void *io_device;
	struct io_device *dev;	/* NULL if the device was not found */
	dbk_channel_msg fn;
	dbk_channel_for_each_cpl cpl;
	void *ctx;
	struct dbk_thread *orig;
	struct dbk_thread *cur;
	int idx;
	struct dbk_io_channel *ch;
	int status;
};

static void iter_cpl(void *arg)
{
	struct dbk_io_channel_iter *i = arg;

	i->ch = NULL;
	if (i->cpl)
		i->cpl(i, i->status);
	if (i->dev)
		dev_put(i->dev);
	free(i);
}

static void iter_finish(struct dbk_io_channel_iter *i)
{
	if (send_owned_msg(i->orig, iter_cpl, i) != 0) {
		/* Cannot happen on a healthy system; leaking the iterator is worse than running here. */
		DBK_ERRLOG("for_each_channel: out of memory sending the completion; running it here");
		iter_cpl(i);
	}
}

static void iter_step(void *arg);

static void iter_next(struct dbk_io_channel_iter *i)
{
	i->idx++;
	if (i->idx >= g_num_threads) {
		iter_finish(i);
		return;
	}
	if (send_owned_msg(g_threads[i->idx], iter_step, i) != 0) {
		DBK_ERRLOG("for_each_channel: out of memory");
		i->status = -ENOMEM;
		iter_finish(i);
	}
}

static void iter_step(void *arg)
{
	struct dbk_io_channel_iter *i = arg;
	struct dbk_thread *t = tls_thread;
	struct dbk_io_channel *ch;

	i->cur = t;
	TAILQ_FOREACH(ch, &t->channels, link) {
		/* A channel whose last reference was put (destroy pending) is skipped. */
		if (ch->dev == i->dev && ch->ref > 0) {
			ch->ref++;	/* keep it alive for this step */
			i->ch = ch;
			i->fn(i);
			return;
		}
	}
	iter_next(i);
}

void dbk_for_each_channel(void *io_device, dbk_channel_msg fn, void *ctx, dbk_channel_for_each_cpl cpl)
{
	struct dbk_io_channel_iter *i;
	struct dbk_thread *orig = tls_thread;

	if (!orig) {
		DBK_ERRLOG("for_each_channel called outside a reactor; completing on reactor 0");
		orig = g_threads[0];
	}
	i = calloc(1, sizeof(*i));
	if (!i) {
		DBK_ERRLOG("for_each_channel: out of memory");
		return;
	}
	i->io_device = io_device;
	i->fn = fn;
	i->cpl = cpl;
	i->ctx = ctx;
	i->orig = orig;
	i->idx = -1;
	pthread_mutex_lock(&g_dev_lock);
	i->dev = dev_find(io_device);
	if (i->dev)
		i->dev->refcnt++;	/* the device outlives the iteration */
	pthread_mutex_unlock(&g_dev_lock);
	if (!i->dev) {
		DBK_ERRLOG("for_each_channel: io_device %p not registered", io_device);
		i->status = -ENODEV;
		iter_finish(i);
		return;
	}
	iter_next(i);
}

void dbk_for_each_channel_continue(struct dbk_io_channel_iter *i, int status)
{
	struct dbk_io_channel *ch = i->ch;

	i->ch = NULL;
	if (ch)
		dbk_put_io_channel(ch);
	if (status != 0) {
		i->status = status;
		iter_finish(i);
		return;
	}
	iter_next(i);
}

void *dbk_io_channel_iter_get_io_device(struct dbk_io_channel_iter *i)
{
	return i->io_device;
}

struct dbk_io_channel *dbk_io_channel_iter_get_channel(struct dbk_io_channel_iter *i)
{
	return i->ch;
}

void *dbk_io_channel_iter_get_ctx(struct dbk_io_channel_iter *i)
{
	return i->ctx;
}
