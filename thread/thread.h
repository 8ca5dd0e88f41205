/*
 * daosblk threading: reactors (one pinned pthread per core), pollers, fd
 * events, lock-free cross-thread messages, io_device/io_channel with SPDK's
 * semantics, and an unpinned helper pool for blocking work.
 *
 * Rules:
 *  - Every reactor owns exactly one dbk_thread. Work on a thread's objects
 *    (pollers, fds, channels) happens only on that thread; other threads reach
 *    it with dbk_thread_send_msg().
 *  - A reactor never blocks: blocking calls go through dbk_run_blocking().
 *  - A reactor sleeps (epoll_wait) when, in one iteration, no message was
 *    processed, no poller reported DBK_POLLER_BUSY and no fd event fired --
 *    unless busy polling is on. A poller that has outstanding asynchronous work
 *    it must poll for (e.g. an io_uring with I/O in flight) must return
 *    DBK_POLLER_BUSY until that work is done, so the reactor keeps running it.
 */
#ifndef DBK_THREAD_THREAD_H
#define DBK_THREAD_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dbk_thread;
struct dbk_poller;
struct dbk_fd_handler;
struct dbk_io_channel;
struct dbk_io_channel_iter;

typedef void (*dbk_msg_fn)(void *ctx);

/* ---------------------------------------------------------------- reactors */

#define DBK_MAX_REACTORS 128

struct dbk_reactor_opts {
	/* CPU cores, one reactor each, in order; reactor 0 ("main") is cores[0]. */
	uint32_t cores[DBK_MAX_REACTORS];
	int num_cores;
	bool pin;	/* pin each reactor to its core (the daemon: true; unit tests may not) */
	bool busy_poll;	/* never sleep: lowest latency, 100% CPU per reactor */
};

/*
 * Interrupt mode (busy_poll false): a reactor keeps polling (without
 * blocking) for this long after its last iteration that did work before it
 * sleeps, so the next request of a steady low-depth stream is picked up
 * without a wake-up. An idle reactor still sleeps (0% CPU). The environment
 * variable DBK_REACTOR_SPIN_US (0..1000000, 0 = sleep at once) overrides it.
 */
#define DBK_REACTOR_SPIN_US_DEFAULT 50


/*
 * Parse an SPDK core mask: hex ("0x3", "3") or list ("[0,1]", "[0-3,6]").
 * Fills cores[] ascending and *num_cores. Returns 0, or -EINVAL with a
 * message in err (bad syntax, empty mask, core >= DBK_MAX_REACTORS).
 */
int dbk_parse_core_mask(const char *mask, uint32_t *cores, int *num_cores, char *err, size_t errlen);
/* Checks every core is online and in this process's affinity set: 0 or -EINVAL with message. */
int dbk_check_cores_usable(const uint32_t *cores, int num_cores, char *err, size_t errlen);

/* Create the reactors' threads (not yet running). Returns 0 or -errno. */
int dbk_reactors_init(const struct dbk_reactor_opts *opts);
/*
 * Run the reactors. Reactor 0 runs on the calling thread; the others on new
 * pthreads. start_fn(ctx) runs first on reactor 0. Returns when
 * dbk_reactors_stop() was called and every reactor has left its loop.
 */
int dbk_reactors_start(dbk_msg_fn start_fn, void *ctx);
/* Ask all reactors to leave their loops (callable from any thread, also a signal-safe flag). */
void dbk_reactors_stop(void);
/* Free the reactors (after dbk_reactors_start returned). Leftover messages are dropped. */
void dbk_reactors_fini(void);

/*
 * Driving reactor 0 by hand instead of dbk_reactors_start() (fuzzers and
 * deterministic tests), with exactly one reactor: dbk_reactors_attach() makes
 * the calling thread reactor 0 (0, or -EINVAL: not initialized, more than one
 * reactor, already attached); dbk_reactor_poll() runs one iteration
 * (messages, pollers, due timed pollers, fd events), waiting up to
 * max_wait_us for an fd event or the next timed poller when there was nothing
 * to do, and returns whether anything ran; dbk_reactor_poll_idle() polls until
 * an iteration finds no work and no dbk_run_blocking() job is outstanding (0)
 * or timeout_us passed (-ETIMEDOUT). Timed pollers due later do not count as
 * work. dbk_reactors_detach() before dbk_reactors_fini(). These are for a
 * single-threaded driver only (reactor 0 polled by the calling thread).
 */
int dbk_reactors_attach(void);
bool dbk_reactor_poll(uint64_t max_wait_us);
int dbk_reactor_poll_idle(uint64_t timeout_us);
/* Make every timed poller of reactor 0 due now (time skips ahead: waits for timers end at once). */
void dbk_reactor_expire_timers(void);
/* True while a dbk_run_blocking() job's completion is still to come. */
bool dbk_reactor_jobs_outstanding(void);
void dbk_reactors_detach(void);

int dbk_reactor_count(void);
struct dbk_thread *dbk_reactor_thread(int idx);	/* idx 0..count-1 */

struct dbk_reactor_info {
	uint32_t lcore;
	uint64_t busy_ns;	/* time in iterations that did work */
	uint64_t idle_ns;	/* time in iterations that did not (incl. sleep) */
	uint64_t iterations;
	uint64_t sleeps;	/* number of epoll_wait calls that blocked */
	int num_pollers;
	int num_fds;
	const char *thread_name;
};
/* Snapshot of a reactor's counters (racy but safe to read from any thread). */
void dbk_reactor_get_info(int idx, struct dbk_reactor_info *info);

/* ------------------------------------------------------------ the thread */

/* The dbk_thread of the calling reactor, or NULL on any other thread. */
struct dbk_thread *dbk_get_thread(void);
int dbk_thread_get_index(const struct dbk_thread *t);	/* == reactor idx */
const char *dbk_thread_get_name(const struct dbk_thread *t);
/* True when the calling thread is reactor 0. */
bool dbk_is_main_thread(void);

/*
 * Queue fn(ctx) to run on thread t. Callable from any thread (reactor,
 * helper, signal-free context). Lock-free (MPSC queue) and wakes the target.
 * Messages to one thread from one sender run in the order sent.
 * Returns 0, or -ENOMEM. Messages sent before dbk_reactors_start run once it starts.
 */
int dbk_thread_send_msg(struct dbk_thread *t, dbk_msg_fn fn, void *ctx);

/* Run fn(ctx) on every reactor in index order, then cpl(ctx) on the calling thread. */
int dbk_for_each_thread(dbk_msg_fn fn, void *ctx, dbk_msg_fn cpl);

/* Monotonic clock. */
uint64_t dbk_get_ns(void);
static inline uint64_t dbk_get_us(void) { return dbk_get_ns() / 1000; }

/*
 * Cheap "now" for hot paths on a reactor: the monotonic time (dbk_get_ns
 * scale) at which the current reactor iteration began (or its wait for
 * events ended), so it lags the true time by at most the iteration's run time
 * so far (typically microseconds; longer only if a handler runs long). Never
 * goes backwards. Outside a reactor it is dbk_get_ns().
 * dbk_thread_set_now_ns() lets code that has just read the clock refresh the
 * cached value (ignored unless newer), so later users in the iteration lag less.
 */
uint64_t dbk_thread_now_ns(void);
void dbk_thread_set_now_ns(uint64_t now);

/* ----------------------------------------------------------------- pollers */

#define DBK_POLLER_IDLE 0
#define DBK_POLLER_BUSY 1
/* Returns DBK_POLLER_BUSY if it did (or still has) work, DBK_POLLER_IDLE otherwise. */
typedef int (*dbk_poller_fn)(void *ctx);

/*
 * Register a poller on the calling reactor. period_us == 0: runs every
 * iteration; otherwise at most once per period (timer driven; a sleeping
 * reactor wakes for it). Returns NULL if not called on a reactor or on ENOMEM.
 */
struct dbk_poller *dbk_poller_register(dbk_poller_fn fn, void *ctx, uint64_t period_us, const char *name);
/* Unregister on the owning thread; safe from inside the poller's own callback. Sets *p = NULL. */
void dbk_poller_unregister(struct dbk_poller **p);

/* --------------------------------------------------------------- fd events */

/* events: EPOLLIN / EPOLLOUT / ... bits as returned by epoll. */
typedef void (*dbk_fd_fn)(void *ctx, uint32_t events);

/*
 * Watch fd on the calling reactor (level-triggered epoll). The callback runs
 * on this reactor whenever fd is ready. In busy-poll mode the reactor polls
 * its epoll set without blocking every iteration. Returns NULL on error.
 */
struct dbk_fd_handler *dbk_fd_register(int fd, uint32_t events, dbk_fd_fn fn, void *ctx, const char *name);
int dbk_fd_modify(struct dbk_fd_handler *h, uint32_t events);
/* Stop watching (does not close fd). Safe from inside the callback. Sets *h = NULL. */
void dbk_fd_unregister(struct dbk_fd_handler **h);

/* ------------------------------------------------- io_device / io_channel */

/* Called on the thread that gets the channel; ctx_buf is ctx_size zeroed bytes. Return 0 or -errno. */
typedef int (*dbk_io_channel_create_cb)(void *io_device, void *ctx_buf);
/* Called on the channel's thread when its last reference is put. */
typedef void (*dbk_io_channel_destroy_cb)(void *io_device, void *ctx_buf);
/* Called on the thread that called dbk_io_device_unregister once every channel is destroyed. */
typedef void (*dbk_io_device_unregister_cb)(void *io_device);

/* Register io_device (any unique pointer). Callable from any reactor. */
void dbk_io_device_register(void *io_device, dbk_io_channel_create_cb create_cb,
			    dbk_io_channel_destroy_cb destroy_cb, uint32_t ctx_size, const char *name);
/*
 * Unregister: no new channels may be got; unregister_cb (may be NULL) runs on
 * the calling reactor after every existing channel has been destroyed.
 */
void dbk_io_device_unregister(void *io_device, dbk_io_device_unregister_cb unregister_cb);

/*
 * Get the calling reactor's channel for io_device: created on first use (the
 * create_cb runs here), reference counted afterwards. NULL if the device is
 * unknown/unregistering, if create_cb failed, or if not on a reactor.
 */
struct dbk_io_channel *dbk_get_io_channel(void *io_device);
/* Drop a reference (on the channel's thread). At zero, destroy_cb runs from a deferred message. */
void dbk_put_io_channel(struct dbk_io_channel *ch);
void *dbk_io_channel_get_ctx(struct dbk_io_channel *ch);
struct dbk_io_channel *dbk_io_channel_from_ctx(void *ctx);
void *dbk_io_channel_get_io_device(struct dbk_io_channel *ch);
struct dbk_thread *dbk_io_channel_get_thread(struct dbk_io_channel *ch);

/*
 * Iterate over every channel of io_device: fn(iter) runs on each channel's
 * thread in turn and must call dbk_for_each_channel_continue(iter, status);
 * a non-zero status stops the iteration. Then cpl(iter, status) runs on the
 * calling thread. Channels are kept alive for the duration of their step.
 */
typedef void (*dbk_channel_msg)(struct dbk_io_channel_iter *i);
typedef void (*dbk_channel_for_each_cpl)(struct dbk_io_channel_iter *i, int status);
void dbk_for_each_channel(void *io_device, dbk_channel_msg fn, void *ctx, dbk_channel_for_each_cpl cpl);
void dbk_for_each_channel_continue(struct dbk_io_channel_iter *i, int status);
void *dbk_io_channel_iter_get_io_device(struct dbk_io_channel_iter *i);
struct dbk_io_channel *dbk_io_channel_iter_get_channel(struct dbk_io_channel_iter *i);
void *dbk_io_channel_iter_get_ctx(struct dbk_io_channel_iter *i);

/* --------------------------------------------------------- blocking work */

/* Runs on an unpinned helper thread; may block. Returns 0 or -errno. */
typedef int (*dbk_blocking_fn)(void *ctx);
/* Runs on the reactor that called dbk_run_blocking, with fn's return value. */
typedef void (*dbk_blocking_cpl)(void *ctx, int rc);
/*
 * Run fn(ctx) on the helper pool (threads not pinned to reactor cores), then
 * cpl(ctx, rc) as a message on the calling reactor. Returns 0 or -errno
 * (not on a reactor, ENOMEM). Works between dbk_reactors_init and _fini.
 */
int dbk_run_blocking(dbk_blocking_fn fn, dbk_blocking_cpl cpl, void *ctx);

#endif
