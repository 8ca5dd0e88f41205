/*
 * Unit tests for thread/: real reactors (2, unpinned unless a test says so),
 * real epoll/eventfd, real pthreads. Reactor-side code records results into
 * plain structs; cmocka asserts run on the main thread after the reactors
 * stopped (cmocka's failure longjmp must not leave a reactor loop).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "thread/thread.h"

/* ------------------------------------------------------------ harness */

#define WATCHDOG_US (15u * 1000 * 1000)

static atomic_bool g_timed_out;

struct harness {
	dbk_msg_fn start;
	void *ctx;
};

static int watchdog(void *ctx)
{
	(void)ctx;
	atomic_store(&g_timed_out, true);
	dbk_reactors_stop();
	return DBK_POLLER_BUSY;
}

static void harness_start(void *arg)
{
	struct harness *h = arg;

	/* Left registered on purpose: fini must free it. */
	dbk_poller_register(watchdog, NULL, WATCHDOG_US, "watchdog");
	h->start(h->ctx);
}

static void run_reactors_opts(dbk_msg_fn start, void *ctx, bool pin, bool busy_poll)
{
	struct dbk_reactor_opts o;
	struct harness h = { start, ctx };

	memset(&o, 0, sizeof(o));
	o.cores[0] = 0;
	o.cores[1] = 1;
	o.num_cores = 2;
	o.pin = pin;
	o.busy_poll = busy_poll;
	atomic_store(&g_timed_out, false);
	assert_int_equal(dbk_reactors_init(&o), 0);
	assert_int_equal(dbk_reactor_count(), 2);
	assert_int_equal(dbk_reactors_start(harness_start, &h), 0);
	assert_null(dbk_get_thread());
	dbk_reactors_fini();
	assert_false(atomic_load(&g_timed_out));
}

static void run_reactors(dbk_msg_fn start, void *ctx)
{
	run_reactors_opts(start, ctx, false, false);
}

static void stop_msg(void *ctx)
{
	(void)ctx;
	dbk_reactors_stop();
}

static int idx_self(void)
{
	return dbk_thread_get_index(dbk_get_thread());
}

/* --------------------------------------------------------- core masks */

static void test_core_mask_good(void **state)
{
	uint32_t cores[DBK_MAX_REACTORS];
	int n = -1;
	char err[256];

	(void)state;
	assert_int_equal(dbk_parse_core_mask("0x3", cores, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(cores[0], 0);
	assert_int_equal(cores[1], 1);

	assert_int_equal(dbk_parse_core_mask("3", cores, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);

	assert_int_equal(dbk_parse_core_mask("0xA", cores, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(cores[0], 1);
	assert_int_equal(cores[1], 3);

	assert_int_equal(dbk_parse_core_mask("[0,1]", cores, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(cores[0], 0);
	assert_int_equal(cores[1], 1);

	assert_int_equal(dbk_parse_core_mask("[6,0-3]", cores, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 5);
	uint32_t want[] = { 0, 1, 2, 3, 6 };
	for (int i = 0; i < 5; i++)
		assert_int_equal(cores[i], want[i]);

	/* Duplicates collapse. */
	assert_int_equal(dbk_parse_core_mask("[1,1,0-1]", cores, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);

	/* Highest allowed core, in both syntaxes. */
	assert_int_equal(dbk_parse_core_mask("[127]", cores, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(cores[0], 127);
	assert_int_equal(dbk_parse_core_mask("0x80000000000000000000000000000000", cores, &n, err, sizeof(err)),
			 0);
	assert_int_equal(n, 1);
	assert_int_equal(cores[0], 127);
	/* Leading zero digits beyond 128 bits are fine. */
	assert_int_equal(dbk_parse_core_mask("0x0000000000000000000000000000000000001", cores, &n, err,
					     sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(cores[0], 0);
}

static void expect_bad_mask(const char *mask, const char *needle)
{
	uint32_t cores[DBK_MAX_REACTORS];
	int n = -7;
	char err[256] = "";

	assert_int_equal(dbk_parse_core_mask(mask, cores, &n, err, sizeof(err)), -EINVAL);
	assert_int_equal(n, -7);
	if (!strstr(err, needle))
		fail_msg("mask '%s': error '%s' does not mention '%s'", mask, err, needle);
}

static void test_core_mask_bad(void **state)
{
	(void)state;
	expect_bad_mask("", "empty");
	expect_bad_mask("   ", "empty");
	expect_bad_mask("0x", "no hex digits");
	expect_bad_mask("0x0", "no cores");
	expect_bad_mask("[]", "expected a core number");
	expect_bad_mask("[0,]", "expected a core number");
	expect_bad_mask("[0,1", "missing ']'");
	expect_bad_mask("[a]", "expected a core number");
	expect_bad_mask("[3-1]", "reversed");
	expect_bad_mask("[0-]", "bad range end");
	expect_bad_mask("[128]", ">= 128");
	expect_bad_mask("[0-200]", ">= 128");
	expect_bad_mask("[99999999999999999999999]", ">= 128");
	expect_bad_mask("0x100000000000000000000000000000000", "core 128");
	expect_bad_mask("0xzz", "not a hex digit");
	expect_bad_mask("banana", "not a hex digit");
	expect_bad_mask("[0;1]", "unexpected ';'");

	/* A NULL error buffer is allowed. */
	uint32_t cores[DBK_MAX_REACTORS];
	int n;
	assert_int_equal(dbk_parse_core_mask("junk", cores, &n, NULL, 0), -EINVAL);
}

static void test_cores_usable(void **state)
{
	cpu_set_t set;
	uint32_t c = UINT32_MAX;
	char err[256] = "";

	(void)state;
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	for (uint32_t i = 0; i < DBK_MAX_REACTORS; i++) {
		if (CPU_ISSET(i, &set)) {
			c = i;
			break;
		}
	}
	assert_true(c != UINT32_MAX);
	assert_int_equal(dbk_check_cores_usable(&c, 1, err, sizeof(err)), 0);

	/* Core 127 does not exist on this machine (or is not ours). */
	uint32_t bad[2] = { c, 127 };
	if (!CPU_ISSET(127, &set)) {
		assert_int_equal(dbk_check_cores_usable(bad, 2, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "core 127"));
	}
	/* A core that exists but is outside our affinity: restrict ourselves, then ask. */
	if (CPU_COUNT(&set) >= 2) {
		cpu_set_t one;
		uint32_t other = UINT32_MAX;

		for (uint32_t i = c + 1; i < DBK_MAX_REACTORS; i++)
			if (CPU_ISSET(i, &set)) {
				other = i;
				break;
			}
		CPU_ZERO(&one);
		CPU_SET(c, &one);
		assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
		int rc = dbk_check_cores_usable(&other, 1, err, sizeof(err));
		assert_int_equal(sched_setaffinity(0, sizeof(set), &set), 0);
		assert_int_equal(rc, -EINVAL);
		assert_non_null(strstr(err, "affinity"));
	}
	uint32_t dup[2] = { c, c };
	assert_int_equal(dbk_check_cores_usable(dup, 2, err, sizeof(err)), -EINVAL);
	assert_int_equal(dbk_check_cores_usable(&c, 0, err, sizeof(err)), -EINVAL);
}

/* ----------------------------------------------------------- messages */

#define XMSGS 20000		/* reactor 0 -> reactor 1 */
#define EXT_SENDERS 2
#define EXT_MSGS 50000		/* per non-reactor sender */

struct msg_test {
	/* Each sender's messages carry seq numbers; the receiver checks per-sender order. */
	uint64_t next_seq[1 + EXT_SENDERS];
	uint64_t received;
	uint64_t errors;
	int wrong_thread;
	bool pre_start_ran;
	bool start_fn_ran;
	pthread_t ext[EXT_SENDERS];
	atomic_int send_failures;
};

static struct msg_test g_mt;

struct seq_msg {
	int sender;
	uint64_t seq;
};

static void seq_recv(void *arg)
{
	struct seq_msg *m = arg;

	if (idx_self() != 1)
		g_mt.wrong_thread++;
	if (m->seq != g_mt.next_seq[m->sender])
		g_mt.errors++;
	g_mt.next_seq[m->sender] = m->seq + 1;
	g_mt.received++;
	free(m);
	if (g_mt.received == XMSGS + (uint64_t)EXT_SENDERS * EXT_MSGS)
		dbk_thread_send_msg(dbk_reactor_thread(0), stop_msg, NULL);
}

static void send_seq(int sender, uint64_t seq)
{
	struct seq_msg *m = malloc(sizeof(*m));

	m->sender = sender;
	m->seq = seq;
	while (dbk_thread_send_msg(dbk_reactor_thread(1), seq_recv, m) != 0)
		atomic_fetch_add(&g_mt.send_failures, 1);
}

static void *ext_sender(void *arg)
{
	int s = (int)(intptr_t)arg;

	if (dbk_get_thread() != NULL)
		atomic_fetch_add(&g_mt.send_failures, 1000000);
	for (uint64_t i = 0; i < EXT_MSGS; i++) {
		send_seq(s, i);
		if ((i & 1023) == 0)
			sched_yield();	/* let the reactor drain and go to sleep now and then */
	}
	return NULL;
}

static void pre_start_msg(void *arg)
{
	(void)arg;
	g_mt.pre_start_ran = true;
}

static uint64_t g_r0_sent;

static void r0_send_batch(void *arg)
{
	(void)arg;
	/* Send in chunks so reactor 0 also takes messages in between. */
	for (int i = 0; i < 1000 && g_r0_sent < XMSGS; i++)
		send_seq(0, g_r0_sent++);
	if (g_r0_sent < XMSGS)
		dbk_thread_send_msg(dbk_get_thread(), r0_send_batch, NULL);
}

static void msg_start(void *arg)
{
	(void)arg;
	g_mt.start_fn_ran = true;
	for (int s = 0; s < EXT_SENDERS; s++)
		pthread_create(&g_mt.ext[s], NULL, ext_sender, (void *)(intptr_t)(s + 1));
	r0_send_batch(NULL);
}

static void test_messages(void **state)
{
	struct dbk_reactor_opts o;

	(void)state;
	memset(&g_mt, 0, sizeof(g_mt));
	g_r0_sent = 0;
	memset(&o, 0, sizeof(o));
	o.cores[0] = 0;
	o.cores[1] = 1;
	o.num_cores = 2;
	assert_int_equal(dbk_reactors_init(&o), 0);
	/* Before start: queued, runs later on reactor 1 (the start_fn runs on reactor 0 first). */
	assert_int_equal(dbk_thread_send_msg(dbk_reactor_thread(1), pre_start_msg, NULL), 0);
	struct harness h = { msg_start, NULL };
	atomic_store(&g_timed_out, false);
	assert_int_equal(dbk_reactors_start(harness_start, &h), 0);
	for (int s = 0; s < EXT_SENDERS; s++)
		pthread_join(g_mt.ext[s], NULL);
	dbk_reactors_fini();
	assert_false(atomic_load(&g_timed_out));
	assert_true(g_mt.pre_start_ran);
	assert_int_equal(g_mt.received, XMSGS + (uint64_t)EXT_SENDERS * EXT_MSGS);
	assert_int_equal(g_mt.errors, 0);
	assert_int_equal(g_mt.wrong_thread, 0);
	assert_int_equal(g_mt.next_seq[0], XMSGS);
	for (int s = 1; s <= EXT_SENDERS; s++)
		assert_int_equal(g_mt.next_seq[s], EXT_MSGS);
	assert_int_equal(atomic_load(&g_mt.send_failures), 0);
}

/* Ping-pong between sleeping reactors: a lost wake-up would hang (watchdog). */
#define PINGPONGS 20000
static int g_pp_count;
static int g_pp_wrong;

static void pp_msg(void *arg)
{
	int expect = (int)(intptr_t)arg;

	if (idx_self() != expect)
		g_pp_wrong++;
	if (++g_pp_count >= PINGPONGS) {
		dbk_reactors_stop();
		return;
	}
	dbk_thread_send_msg(dbk_reactor_thread(1 - expect), pp_msg, (void *)(intptr_t)(1 - expect));
}

static void pp_start(void *arg)
{
	(void)arg;
	dbk_thread_send_msg(dbk_reactor_thread(1), pp_msg, (void *)(intptr_t)1);
}

static void test_ping_pong_wakeups(void **state)
{
	(void)state;
	g_pp_count = 0;
	g_pp_wrong = 0;
	run_reactors(pp_start, NULL);
	assert_int_equal(g_pp_count, PINGPONGS);
	assert_int_equal(g_pp_wrong, 0);
}

/*
 * Lost wake-up hunt: a non-reactor thread sends, spins until the reactor ran
 * the message, and sends the next one at once -- right when the reactor is on
 * its way to sleep. A lost wake-up shows up as an ack that never comes.
 */
#define RACE_ROUNDS 20000
struct race_test {
	atomic_int acked;
	int lost;
	int rounds_done;
};

static void race_ack(void *arg)
{
	struct race_test *r = arg;

	atomic_fetch_add(&r->acked, 1);
}

static void *race_sender(void *arg)
{
	struct race_test *r = arg;

	for (int i = 1; i <= RACE_ROUNDS; i++) {
		if (dbk_thread_send_msg(dbk_reactor_thread(1), race_ack, r) != 0) {
			r->lost++;
			break;
		}
		uint64_t t0 = dbk_get_ns();
		while (atomic_load(&r->acked) < i) {
			if (dbk_get_ns() - t0 > 3000000000ull) {
				r->lost++;
				break;
			}
		}
		if (r->lost)
			break;
		r->rounds_done = i;
	}
	dbk_thread_send_msg(dbk_reactor_thread(0), stop_msg, NULL);
	return NULL;
}

static pthread_t g_race_thread;

static void race_start(void *arg)
{
	pthread_create(&g_race_thread, NULL, race_sender, arg);
}

static void test_wakeup_race(void **state)
{
	struct race_test r;

	(void)state;
	memset(&r, 0, sizeof(r));
	run_reactors(race_start, &r);
	pthread_join(g_race_thread, NULL);
	assert_int_equal(r.lost, 0);
	assert_int_equal(r.rounds_done, RACE_ROUNDS);
}

/* for_each_thread: index order, cpl on the caller. */
struct fet {
	int order[8];
	int n;
	int cpl_thread;
	int cpl_calls;
};

static void fet_fn(void *arg)
{
	struct fet *f = arg;

	f->order[f->n++] = idx_self();
}

static void fet_cpl(void *arg)
{
	struct fet *f = arg;

	f->cpl_thread = idx_self();
	f->cpl_calls++;
	dbk_reactors_stop();
}

static void fet_go(void *arg)
{
	if (dbk_for_each_thread(fet_fn, arg, fet_cpl) != 0)
		dbk_reactors_stop();
}

static void fet_start(void *arg)
{
	/* Start from reactor 1 so "the caller" is not reactor 0. */
	dbk_thread_send_msg(dbk_reactor_thread(1), fet_go, arg);
}

static void test_for_each_thread(void **state)
{
	struct fet f;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.cpl_thread = -1;
	run_reactors(fet_start, &f);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.order[0], 0);
	assert_int_equal(f.order[1], 1);
	assert_int_equal(f.cpl_calls, 1);
	assert_int_equal(f.cpl_thread, 1);
	/* Not on a reactor. */
	assert_int_equal(dbk_for_each_thread(fet_fn, &f, fet_cpl), -EINVAL);
}

/* Thread identity API. */
struct ident {
	bool main_on_0, main_on_1;
	struct dbk_thread *t0, *t1;
	char name1[32];
};

static void ident_on1(void *arg)
{
	struct ident *id = arg;

	id->main_on_1 = dbk_is_main_thread();
	id->t1 = dbk_get_thread();
	snprintf(id->name1, sizeof(id->name1), "%s", dbk_thread_get_name(id->t1));
	dbk_thread_send_msg(dbk_reactor_thread(0), stop_msg, NULL);
}

static void ident_start(void *arg)
{
	struct ident *id = arg;

	id->main_on_0 = dbk_is_main_thread();
	id->t0 = dbk_get_thread();
	dbk_thread_send_msg(dbk_reactor_thread(1), ident_on1, id);
}

static void test_thread_identity(void **state)
{
	struct ident id;

	(void)state;
	memset(&id, 0, sizeof(id));
	assert_false(dbk_is_main_thread());
	assert_null(dbk_get_thread());
	run_reactors(ident_start, &id);
	assert_true(id.main_on_0);
	assert_false(id.main_on_1);
	assert_non_null(id.t0);
	assert_non_null(id.t1);
	assert_ptr_not_equal(id.t0, id.t1);
	assert_string_equal(id.name1, "reactor_1");
	assert_false(dbk_is_main_thread());
}

/* ------------------------------------------------------------ pollers */

struct poll_test {
	int fast, slow;		/* 10 ms, 50 ms */
	int every;		/* period 0 */
	int self_unreg;		/* unregisters itself on its 3rd call */
	int victim;		/* unregistered by another poller */
	int killer;
	int zkiller, zvictim;
	struct dbk_poller *p_zkiller, *p_zvictim;
	struct dbk_poller *p_fast, *p_slow, *p_every, *p_self, *p_victim, *p_killer, *p_stop;
	bool self_ptr_cleared;
	int wrong_thread;
};

static int fast_fn(void *arg)
{
	struct poll_test *pt = arg;

	pt->fast++;
	if (idx_self() != 1)
		pt->wrong_thread++;
	return DBK_POLLER_IDLE;
}

static int slow_fn(void *arg)
{
	((struct poll_test *)arg)->slow++;
	return DBK_POLLER_IDLE;
}

static int every_fn(void *arg)
{
	struct poll_test *pt = arg;

	pt->every++;
	if (pt->every == 100)
		dbk_poller_unregister(&pt->p_every);
	return DBK_POLLER_BUSY;
}

static int self_fn(void *arg)
{
	struct poll_test *pt = arg;

	if (++pt->self_unreg == 3) {
		dbk_poller_unregister(&pt->p_self);
		pt->self_ptr_cleared = pt->p_self == NULL;
	}
	return DBK_POLLER_IDLE;
}

static int victim_fn(void *arg)
{
	((struct poll_test *)arg)->victim++;
	return DBK_POLLER_IDLE;
}

/* Registered before the victim with the same period: runs first in the same pass. */
static int killer_fn(void *arg)
{
	struct poll_test *pt = arg;

	pt->killer++;
	dbk_poller_unregister(&pt->p_victim);
	dbk_poller_unregister(&pt->p_killer);
	return DBK_POLLER_IDLE;
}

/* Period 0: the killer runs before the victim in the same pass and removes it. */
static int zkiller_fn(void *arg)
{
	struct poll_test *pt = arg;

	pt->zkiller++;
	dbk_poller_unregister(&pt->p_zvictim);
	dbk_poller_unregister(&pt->p_zkiller);
	return DBK_POLLER_IDLE;
}

static int zvictim_fn(void *arg)
{
	((struct poll_test *)arg)->zvictim++;
	return DBK_POLLER_IDLE;
}

static int poll_stop_fn(void *arg)
{
	struct poll_test *pt = arg;

	dbk_poller_unregister(&pt->p_fast);
	dbk_poller_unregister(&pt->p_slow);
	dbk_poller_unregister(&pt->p_stop);
	dbk_thread_send_msg(dbk_reactor_thread(0), stop_msg, NULL);
	return DBK_POLLER_IDLE;
}

static void poll_on1(void *arg)
{
	struct poll_test *pt = arg;

	pt->p_fast = dbk_poller_register(fast_fn, pt, 10000, "fast");
	pt->p_slow = dbk_poller_register(slow_fn, pt, 50000, "slow");
	pt->p_zkiller = dbk_poller_register(zkiller_fn, pt, 0, "zkiller");
	pt->p_zvictim = dbk_poller_register(zvictim_fn, pt, 0, "zvictim");
	pt->p_every = dbk_poller_register(every_fn, pt, 0, "every");
	pt->p_self = dbk_poller_register(self_fn, pt, 5000, "self");
	/* Same period, killer registered first -> killer's deadline is earlier. */
	pt->p_killer = dbk_poller_register(killer_fn, pt, 20000, "killer");
	pt->p_victim = dbk_poller_register(victim_fn, pt, 20000, "victim");
	pt->p_stop = dbk_poller_register(poll_stop_fn, pt, 330000, "stopper");
}

static void poll_start(void *arg)
{
	dbk_thread_send_msg(dbk_reactor_thread(1), poll_on1, arg);
}

static void test_pollers(void **state)
{
	struct poll_test pt;

	(void)state;
	memset(&pt, 0, sizeof(pt));
	/* Not on a reactor: refused. */
	assert_null(dbk_poller_register(fast_fn, &pt, 0, "x"));
	run_reactors(poll_start, &pt);
	assert_int_equal(pt.wrong_thread, 0);
	/* 330 ms: ~33 fast and ~6 slow; assert loosely. */
	assert_in_range(pt.fast, 5, 40);
	assert_in_range(pt.slow, 2, 8);
	assert_true(pt.fast > pt.slow);
	assert_int_equal(pt.every, 100);
	assert_int_equal(pt.self_unreg, 3);
	assert_true(pt.self_ptr_cleared);
	assert_int_equal(pt.killer, 1);
	assert_int_equal(pt.victim, 0);
	assert_int_equal(pt.zkiller, 1);
	assert_int_equal(pt.zvictim, 0);
}

/* A sleeping reactor wakes for its timed poller (no message, no fd event). */
struct idle_test {
	uint64_t it_before, it_after, sleeps_before, sleeps_after;
	uint64_t r0_it_before, r0_it_after;
	uint64_t busy_after, idle_after;
	int num_pollers_r0;
	int ticks;
	struct dbk_poller *p;
};

static int idle_measure(void *arg)
{
	struct idle_test *it = arg;
	struct dbk_reactor_info i1, i0;

	dbk_reactor_get_info(1, &i1);
	dbk_reactor_get_info(0, &i0);
	if (it->ticks == 0) {
		it->it_before = i1.iterations;
		it->sleeps_before = i1.sleeps;
		it->r0_it_before = i0.iterations;
		it->num_pollers_r0 = i0.num_pollers;
	} else {
		it->it_after = i1.iterations;
		it->sleeps_after = i1.sleeps;
		it->r0_it_after = i0.iterations;
		it->busy_after = i1.busy_ns;
		it->idle_after = i1.idle_ns;
		dbk_poller_unregister(&it->p);
		dbk_reactors_stop();
	}
	it->ticks++;
	return DBK_POLLER_IDLE;
}

static void idle_start(void *arg)
{
	struct idle_test *it = arg;

	/* First sample now, second one 200 ms later. */
	it->p = dbk_poller_register(idle_measure, it, 200000, "measure");
	it->ticks = 0;
	idle_measure(it);
}

static void test_idle_reactor_sleeps(void **state)
{
	struct idle_test it;

	(void)state;
	memset(&it, 0, sizeof(it));
	run_reactors(idle_start, &it);
	assert_int_equal(it.ticks, 2);
	/* Reactor 1 has nothing to do: a handful of iterations, all sleeping. */
	assert_true(it.it_after - it.it_before < 20);
	assert_true(it.sleeps_after >= it.sleeps_before);
	/* Reactor 0 only wakes for its pollers (watchdog + measure). */
	assert_true(it.r0_it_after - it.r0_it_before < 50);
	assert_int_equal(it.num_pollers_r0, 2);
	assert_true(it.idle_after > it.busy_after);
}

/* Busy polling: never blocks, and still serves fd events and timers. */
struct busy_test {
	struct idle_test m;
	int efd;
	struct dbk_fd_handler *h;
	int fd_calls;
};

static void busy_fd_cb(void *arg, uint32_t events)
{
	struct busy_test *b = arg;
	uint64_t v;

	(void)events;
	if (read(b->efd, &v, sizeof(v)) == sizeof(v))
		b->fd_calls++;
	dbk_fd_unregister(&b->h);
}

static void busy_on1(void *arg)
{
	struct busy_test *b = arg;
	uint64_t one = 1;

	b->h = dbk_fd_register(b->efd, EPOLLIN, busy_fd_cb, b, "busyfd");
	if (write(b->efd, &one, sizeof(one)) != sizeof(one))
		b->fd_calls = -100;
}

static void busy_start(void *arg)
{
	struct busy_test *b = arg;

	dbk_thread_send_msg(dbk_reactor_thread(1), busy_on1, b);
	idle_start(&b->m);
}

static void test_busy_poll(void **state)
{
	struct busy_test b;

	(void)state;
	memset(&b, 0, sizeof(b));
	b.efd = eventfd(0, EFD_NONBLOCK);
	assert_true(b.efd >= 0);
	run_reactors_opts(busy_start, &b, false, true);
	assert_int_equal(b.m.ticks, 2);
	assert_int_equal(b.fd_calls, 1);
	/* Spinning: many iterations in 200 ms, no blocking waits at all. */
	assert_true(b.m.it_after - b.m.it_before > 1000);
	assert_int_equal(b.m.sleeps_after, 0);
	close(b.efd);
}

/* ---------------------------------------------------------- fd events */

struct fd_test {
	int efd;
	int efd_a, efd_b;
	struct dbk_fd_handler *h, *ha, *hb;
	int calls;
	int a_calls, b_calls;
	uint64_t total;
	int wrong_thread;
	int num_fds_seen;
	bool ptr_cleared;
	pthread_t writer;
};

static void fd_cb(void *arg, uint32_t events)
{
	struct fd_test *ft = arg;
	uint64_t v;

	if (idx_self() != 1 || !(events & EPOLLIN))
		ft->wrong_thread++;
	if (read(ft->efd, &v, sizeof(v)) == sizeof(v))
		ft->total += v;
	if (++ft->calls == 3) {
		dbk_fd_unregister(&ft->h);
		ft->ptr_cleared = ft->h == NULL;
		/* Both ready: each one's callback unregisters the other. */
		uint64_t one = 1;
		if (write(ft->efd_a, &one, sizeof(one)) != sizeof(one) ||
		    write(ft->efd_b, &one, sizeof(one)) != sizeof(one))
			ft->wrong_thread++;
	}
}

static void ab_cb(void *arg, uint32_t events)
{
	struct fd_test *ft = arg;
	struct dbk_reactor_info info;

	(void)events;
	/* Which of the two fired is unknown: use the handler that is still registered. */
	if (ft->ha && ft->hb) {
		/* Identify by readiness: a read drains the fd of the one we are. */
		uint64_t v;
		bool is_a = read(ft->efd_a, &v, sizeof(v)) == sizeof(v);

		if (is_a) {
			ft->a_calls++;
			dbk_fd_unregister(&ft->hb);
			dbk_fd_unregister(&ft->ha);
		} else {
			if (read(ft->efd_b, &v, sizeof(v)) != sizeof(v))
				ft->wrong_thread++;
			ft->b_calls++;
			dbk_fd_unregister(&ft->ha);
			dbk_fd_unregister(&ft->hb);
		}
		dbk_reactor_get_info(1, &info);
		ft->num_fds_seen = info.num_fds;
		dbk_thread_send_msg(dbk_reactor_thread(0), stop_msg, NULL);
	} else {
		ft->wrong_thread += 100;	/* called after being unregistered */
	}
}

static void *fd_writer(void *arg)
{
	struct fd_test *ft = arg;
	uint64_t one = 1;

	for (int i = 0; i < 3; i++) {
		usleep(20000);
		if (write(ft->efd, &one, sizeof(one)) != sizeof(one))
			return NULL;
	}
	return NULL;
}

static void fd_on1(void *arg)
{
	struct fd_test *ft = arg;

	ft->h = dbk_fd_register(ft->efd, EPOLLIN, fd_cb, ft, "efd");
	ft->ha = dbk_fd_register(ft->efd_a, EPOLLIN, ab_cb, ft, "a");
	ft->hb = dbk_fd_register(ft->efd_b, EPOLLIN, ab_cb, ft, "b");
	if (!ft->h || !ft->ha || !ft->hb) {
		dbk_reactors_stop();
		return;
	}
	/* Modify round trip: off then on again. */
	if (dbk_fd_modify(ft->h, 0) != 0 || dbk_fd_modify(ft->h, EPOLLIN) != 0)
		ft->wrong_thread += 1000;
	pthread_create(&ft->writer, NULL, fd_writer, ft);
}

static void fd_start(void *arg)
{
	dbk_thread_send_msg(dbk_reactor_thread(1), fd_on1, arg);
}

static void test_fd_handlers(void **state)
{
	struct fd_test ft;

	(void)state;
	memset(&ft, 0, sizeof(ft));
	ft.efd = eventfd(0, EFD_NONBLOCK);
	ft.efd_a = eventfd(0, EFD_NONBLOCK);
	ft.efd_b = eventfd(0, EFD_NONBLOCK);
	assert_true(ft.efd >= 0 && ft.efd_a >= 0 && ft.efd_b >= 0);
	assert_null(dbk_fd_register(ft.efd, EPOLLIN, fd_cb, &ft, "x"));	/* not on a reactor */
	assert_int_equal(dbk_thread_send_msg(NULL, stop_msg, NULL), -EINVAL);
	run_reactors(fd_start, &ft);
	pthread_join(ft.writer, NULL);
	assert_int_equal(ft.wrong_thread, 0);
	assert_int_equal(ft.calls, 3);
	assert_int_equal(ft.total, 3);
	assert_true(ft.ptr_cleared);
	/* Exactly one of a/b ran although both were ready in the same epoll batch. */
	assert_int_equal(ft.a_calls + ft.b_calls, 1);
	assert_int_equal(ft.num_fds_seen, 0);
	close(ft.efd);
	close(ft.efd_a);
	close(ft.efd_b);
}

/* ------------------------------------------------------- io channels */

struct dev_stats {
	int creates[2];
	int destroys[2];
	int wrong_ctx;
	int unreg_calls;
	int unreg_thread;
	int destroys_at_unreg;
	bool fail_create;
};

struct chan_ctx {
	uint64_t magic;
	int thread_idx;
};

static int dev_create(void *dev, void *buf)
{
	struct dev_stats *s = dev;
	struct chan_ctx *c = buf;

	if (s->fail_create)
		return -EIO;
	if (c->magic != 0)
		s->wrong_ctx++;	/* must start zeroed */
	c->magic = 0xfeedf00d;
	c->thread_idx = idx_self();
	s->creates[idx_self()]++;
	return 0;
}

static void dev_destroy(void *dev, void *buf)
{
	struct dev_stats *s = dev;
	struct chan_ctx *c = buf;

	if (c->magic != 0xfeedf00d || c->thread_idx != idx_self())
		s->wrong_ctx++;
	s->destroys[idx_self()]++;
}

static void dev_unreg_done(void *dev)
{
	struct dev_stats *s = dev;

	s->unreg_calls++;
	s->unreg_thread = idx_self();
	s->destroys_at_unreg = s->destroys[0] + s->destroys[1];
	dbk_reactors_stop();
}

/* Channel lifecycle on one reactor. */
struct chan_test {
	struct dev_stats s;
	struct dbk_io_channel *ch1, *ch2, *ch3;
	int step_errors;
	int after_put_destroys;
	int reused_destroys;
	bool same, reused_same;
	struct dbk_thread *owner;
	void *dev_back;
	bool from_ctx_ok;
	bool fail_null;
};

static void chan_step3(void *arg)
{
	struct chan_test *ct = arg;

	/* The deferred destroy of the re-got channel ran: nothing destroyed. */
	ct->reused_destroys = ct->s.destroys[0];
	dbk_put_io_channel(ct->ch3);
	dbk_io_device_unregister(&ct->s, dev_unreg_done);
}

static void chan_step2(void *arg)
{
	struct chan_test *ct = arg;

	/* The first deferred destroy has run now. */
	ct->after_put_destroys = ct->s.destroys[0];
	/* Re-create, put to zero, and re-get before the deferred destroy runs: reused. */
	ct->ch1 = dbk_get_io_channel(&ct->s);
	dbk_put_io_channel(ct->ch1);
	ct->ch3 = dbk_get_io_channel(&ct->s);
	ct->reused_same = ct->ch3 == ct->ch1;
	dbk_thread_send_msg(dbk_get_thread(), chan_step3, ct);
}

static void chan_start(void *arg)
{
	struct chan_test *ct = arg;

	dbk_io_device_register(&ct->s, dev_create, dev_destroy, sizeof(struct chan_ctx), "dev");
	ct->ch1 = dbk_get_io_channel(&ct->s);
	ct->ch2 = dbk_get_io_channel(&ct->s);
	ct->same = ct->ch1 && ct->ch1 == ct->ch2;
	if (!ct->ch1) {
		dbk_reactors_stop();
		return;
	}
	ct->owner = dbk_io_channel_get_thread(ct->ch1);
	ct->dev_back = dbk_io_channel_get_io_device(ct->ch1);
	ct->from_ctx_ok = dbk_io_channel_from_ctx(dbk_io_channel_get_ctx(ct->ch1)) == ct->ch1;
	/* Unknown device. */
	ct->fail_null = dbk_get_io_channel(&ct->step_errors) == NULL;
	dbk_put_io_channel(ct->ch1);
	dbk_put_io_channel(ct->ch2);
	/* Deferred: not destroyed synchronously. */
	if (ct->s.destroys[0] != 0)
		ct->step_errors++;
	dbk_thread_send_msg(dbk_get_thread(), chan_step2, ct);
}

static void test_channel_lifecycle(void **state)
{
	struct chan_test ct;

	(void)state;
	memset(&ct, 0, sizeof(ct));
	run_reactors(chan_start, &ct);
	assert_true(ct.same);
	assert_true(ct.fail_null);
	assert_true(ct.from_ctx_ok);
	assert_ptr_equal(ct.dev_back, &ct.s);
	assert_non_null(ct.owner);
	assert_int_equal(ct.step_errors, 0);
	assert_int_equal(ct.after_put_destroys, 1);
	assert_true(ct.reused_same);
	assert_int_equal(ct.reused_destroys, 1);
	assert_int_equal(ct.s.creates[0], 2);
	assert_int_equal(ct.s.destroys[0], 2);
	assert_int_equal(ct.s.creates[1], 0);
	assert_int_equal(ct.s.wrong_ctx, 0);
	assert_int_equal(ct.s.unreg_calls, 1);
	assert_int_equal(ct.s.unreg_thread, 0);
	assert_int_equal(ct.s.destroys_at_unreg, 2);
}

/* create_cb failure gives NULL and leaves nothing behind (unregister completes at once). */
static void chanfail_start(void *arg)
{
	struct dev_stats *s = arg;

	dbk_io_device_register(s, dev_create, dev_destroy, sizeof(struct chan_ctx), "failing");
	s->fail_create = true;
	if (dbk_get_io_channel(s) != NULL)
		s->wrong_ctx += 100;
	dbk_io_device_unregister(s, dev_unreg_done);
}

static void test_channel_create_fails(void **state)
{
	struct dev_stats s;

	(void)state;
	memset(&s, 0, sizeof(s));
	run_reactors(chanfail_start, &s);
	assert_int_equal(s.wrong_ctx, 0);
	assert_int_equal(s.unreg_calls, 1);
	assert_int_equal(s.creates[0] + s.creates[1] + s.destroys[0] + s.destroys[1], 0);
}

/* for_each_channel + unregister waiting for channels on both reactors. */
struct fec_test {
	struct dev_stats s;
	struct dbk_io_channel *ch[2];
	int visits[2];
	int visit_errors;
	int cpl_thread;
	int cpl_status;
	int cpl_calls;
	int stop_visits;
	int stop_cpl_status;
	bool get_after_unreg_null;
	int unreg_before_puts;
	int extra_ctx;
};

static void fec_get(void *arg)
{
	struct fec_test *f = arg;

	f->ch[idx_self()] = dbk_get_io_channel(&f->s);
}

static void fec_visit(struct dbk_io_channel_iter *i)
{
	struct fec_test *f = dbk_io_channel_iter_get_ctx(i);
	struct dbk_io_channel *ch = dbk_io_channel_iter_get_channel(i);
	int me = idx_self();

	f->visits[me]++;
	if (ch != f->ch[me] || dbk_io_channel_get_thread(ch) != dbk_get_thread() ||
	    dbk_io_channel_iter_get_io_device(i) != &f->s)
		f->visit_errors++;
	dbk_for_each_channel_continue(i, 0);
}

static void fec_put_on1(void *arg)
{
	struct fec_test *f = arg;

	f->unreg_before_puts = f->s.unreg_calls;
	dbk_put_io_channel(f->ch[1]);
}

static void fec_after_unreg(void *arg)
{
	struct fec_test *f = arg;

	/* Unregistering: no new channel; not completed while channels exist. */
	f->get_after_unreg_null = dbk_get_io_channel(&f->s) == NULL;
	dbk_put_io_channel(f->ch[0]);
	dbk_thread_send_msg(dbk_reactor_thread(1), fec_put_on1, f);
}

static void fec_stop_visit(struct dbk_io_channel_iter *i)
{
	struct fec_test *f = dbk_io_channel_iter_get_ctx(i);

	f->stop_visits++;
	dbk_for_each_channel_continue(i, -EAGAIN);
}

static void fec_stop_cpl(struct dbk_io_channel_iter *i, int status)
{
	struct fec_test *f = dbk_io_channel_iter_get_ctx(i);

	f->stop_cpl_status = status;
	/* Unregister from reactor 0 (the unregister_cb runs here). */
	dbk_io_device_unregister(&f->s, dev_unreg_done);
	fec_after_unreg(f);
}

static void fec_second(void *arg)
{
	struct fec_test *f = arg;

	dbk_for_each_channel(&f->s, fec_stop_visit, f, fec_stop_cpl);
}

static void fec_cpl_then(struct dbk_io_channel_iter *i, int status)
{
	struct fec_test *f = dbk_io_channel_iter_get_ctx(i);

	f->cpl_thread = idx_self();
	f->cpl_status = status;
	f->cpl_calls++;
	dbk_thread_send_msg(dbk_reactor_thread(0), fec_second, f);
}

static void fec_iterate(void *arg)
{
	struct fec_test *f = arg;

	/* Caller: reactor 1. */
	dbk_for_each_channel(&f->s, fec_visit, f, fec_cpl_then);
}

static void fec_got_all(void *arg)
{
	dbk_thread_send_msg(dbk_reactor_thread(1), fec_iterate, arg);
}

static void fec_start(void *arg)
{
	struct fec_test *f = arg;

	dbk_io_device_register(&f->s, dev_create, dev_destroy, sizeof(struct chan_ctx), "fec");
	dbk_for_each_thread(fec_get, f, fec_got_all);
}

static void test_for_each_channel_and_unregister(void **state)
{
	struct fec_test f;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.cpl_thread = -1;
	run_reactors(fec_start, &f);
	assert_non_null(f.ch[0]);
	assert_non_null(f.ch[1]);
	assert_int_equal(f.s.creates[0], 1);
	assert_int_equal(f.s.creates[1], 1);
	assert_int_equal(f.visits[0], 1);
	assert_int_equal(f.visits[1], 1);
	assert_int_equal(f.visit_errors, 0);
	assert_int_equal(f.cpl_calls, 1);
	assert_int_equal(f.cpl_thread, 1);
	assert_int_equal(f.cpl_status, 0);
	assert_int_equal(f.stop_visits, 1);
	assert_int_equal(f.stop_cpl_status, -EAGAIN);
	assert_true(f.get_after_unreg_null);
	assert_int_equal(f.unreg_before_puts, 0);
	assert_int_equal(f.s.unreg_calls, 1);
	assert_int_equal(f.s.unreg_thread, 0);
	assert_int_equal(f.s.destroys_at_unreg, 2);
	assert_int_equal(f.s.destroys[0], 1);
	assert_int_equal(f.s.destroys[1], 1);
	assert_int_equal(f.s.wrong_ctx, 0);
}

/* ---------------------------------------------------------- blocking */

struct blk_test {
	pthread_t reactor_tid[2];
	pthread_t helper_tid;
	bool helper_not_reactor;
	int helper_cpus;
	int proc_cpus;
	int reactor1_cpus;
	int cpl_thread;
	int cpl_rc;
	int cpl_calls;
	int rc_send;
	int nested_done;
	bool pinned;
};

static int blk_fn(void *arg)
{
	struct blk_test *b = arg;
	cpu_set_t set;

	b->helper_tid = pthread_self();
	b->helper_not_reactor = dbk_get_thread() == NULL && !pthread_equal(b->helper_tid, b->reactor_tid[0]) &&
				!pthread_equal(b->helper_tid, b->reactor_tid[1]);
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		b->helper_cpus = CPU_COUNT(&set);
	usleep(50000);	/* blocking is allowed here */
	return -ENOENT;
}

static void blk_cpl(void *arg, int rc)
{
	struct blk_test *b = arg;

	b->cpl_thread = idx_self();
	b->cpl_rc = rc;
	b->cpl_calls++;
	dbk_thread_send_msg(dbk_reactor_thread(0), stop_msg, NULL);
}

static void blk_on1(void *arg)
{
	struct blk_test *b = arg;
	cpu_set_t set;

	b->reactor_tid[1] = pthread_self();
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		b->reactor1_cpus = CPU_COUNT(&set);
	b->rc_send = dbk_run_blocking(blk_fn, blk_cpl, b);
}

static void blk_start(void *arg)
{
	struct blk_test *b = arg;

	b->reactor_tid[0] = pthread_self();
	dbk_thread_send_msg(dbk_reactor_thread(1), blk_on1, b);
}

static void check_blocking(struct blk_test *b)
{
	assert_int_equal(b->rc_send, 0);
	assert_true(b->helper_not_reactor);
	assert_int_equal(b->cpl_calls, 1);
	assert_int_equal(b->cpl_thread, 1);
	assert_int_equal(b->cpl_rc, -ENOENT);
	/* The helper may use every CPU the process may use, not one reactor's core. */
	assert_int_equal(b->helper_cpus, b->proc_cpus);
}

static void test_run_blocking(void **state)
{
	struct blk_test b;
	cpu_set_t set;

	(void)state;
	memset(&b, 0, sizeof(b));
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	b.proc_cpus = CPU_COUNT(&set);
	run_reactors(blk_start, &b);
	check_blocking(&b);
	/* Not on a reactor (and not initialized). */
	assert_int_equal(dbk_run_blocking(blk_fn, blk_cpl, &b), -EINVAL);
}

/* Many jobs from both reactors: at most 2 run at once, each completes on its caller. */
#define MANY_JOBS 24
struct many_jobs {
	atomic_int running;
	atomic_int max_running;
	atomic_int ran;
	int done[2];
	int done1_seen_on0;
	int wrong_thread;
	int bad_rc;
	int submit_errors;
};

struct job_arg {
	struct many_jobs *mj;
	int caller;
	int rc;
};

static struct job_arg g_job_args[MANY_JOBS];

static int many_fn(void *arg)
{
	struct job_arg *a = arg;
	struct many_jobs *mj = a->mj;
	int now = atomic_fetch_add(&mj->running, 1) + 1;
	int max = atomic_load(&mj->max_running);

	while (now > max && !atomic_compare_exchange_weak(&mj->max_running, &max, now))
		;
	usleep(5000);
	atomic_fetch_sub(&mj->running, 1);
	atomic_fetch_add(&mj->ran, 1);
	return a->rc;
}

static void many_note1(void *arg)
{
	struct many_jobs *mj = arg;

	mj->done1_seen_on0++;
}

static void many_cpl(void *arg, int rc)
{
	struct job_arg *a = arg;
	struct many_jobs *mj = a->mj;

	if (idx_self() != a->caller)
		mj->wrong_thread++;
	if (rc != a->rc)
		mj->bad_rc++;
	/* Completions land on two reactors: count there, stop once all are in. */
	mj->done[a->caller]++;
	if (a->caller == 1)
		dbk_thread_send_msg(dbk_reactor_thread(0), many_note1, mj);
}

static void many_done_on0(void *arg)
{
	(void)arg;
}

static int many_check(void *arg)
{
	struct many_jobs *mj = arg;

	if (mj->done[0] == MANY_JOBS / 2 && mj->done1_seen_on0 == MANY_JOBS / 2)
		dbk_reactors_stop();
	return DBK_POLLER_IDLE;
}

static void many_submit(void *arg)
{
	struct many_jobs *mj = arg;
	int me = idx_self();

	for (int k = me; k < MANY_JOBS; k += 2) {
		g_job_args[k].mj = mj;
		g_job_args[k].caller = me;
		g_job_args[k].rc = -k;
		if (dbk_run_blocking(many_fn, many_cpl, &g_job_args[k]) != 0)
			mj->submit_errors++;
	}
}

static void many_start(void *arg)
{
	dbk_poller_register(many_check, arg, 10000, "many_check");
	dbk_for_each_thread(many_submit, arg, many_done_on0);
}

static void test_run_blocking_many(void **state)
{
	struct many_jobs mj;

	(void)state;
	memset(&mj, 0, sizeof(mj));
	run_reactors(many_start, &mj);
	assert_int_equal(mj.submit_errors, 0);
	assert_int_equal(atomic_load(&mj.ran), MANY_JOBS);
	assert_int_equal(mj.done[0], MANY_JOBS / 2);
	assert_int_equal(mj.done[1], MANY_JOBS / 2);
	assert_int_equal(mj.wrong_thread, 0);
	assert_int_equal(mj.bad_rc, 0);
	assert_in_range(atomic_load(&mj.max_running), 1, 2);
}

/* Same with pinned reactors (needs cores 0 and 1): helpers must stay unpinned. */
static void test_run_blocking_pinned(void **state)
{
	struct blk_test b;
	cpu_set_t set;
	uint32_t cores[2] = { 0, 1 };
	char err[256];

	(void)state;
	if (dbk_check_cores_usable(cores, 2, err, sizeof(err)) != 0) {
		print_message("skipping: %s\n", err);
		skip();
	}
	memset(&b, 0, sizeof(b));
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	b.proc_cpus = CPU_COUNT(&set);
	run_reactors_opts(blk_start, &b, true, false);
	check_blocking(&b);
	assert_int_equal(b.reactor1_cpus, 1);
	/* The caller's own affinity is restored after start returns. */
	cpu_set_t after;
	assert_int_equal(sched_getaffinity(0, sizeof(after), &after), 0);
	assert_true(CPU_EQUAL(&set, &after));
}

/* ------------------------------------------------------ stop and fini */

static void on_signal(int sig)
{
	(void)sig;
	dbk_reactors_stop();
}

static void *signal_sender(void *arg)
{
	(void)arg;
	usleep(100000);
	kill(getpid(), SIGUSR1);
	return NULL;
}

static pthread_t g_sig_thread;

static void sig_start(void *arg)
{
	(void)arg;
	pthread_create(&g_sig_thread, NULL, signal_sender, NULL);
}

static void test_stop_from_signal(void **state)
{
	struct sigaction sa, old;

	(void)state;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	run_reactors(sig_start, NULL);
	pthread_join(g_sig_thread, NULL);
	sigaction(SIGUSR1, &old, NULL);
}

static int g_never_ran;

static void never_msg(void *arg)
{
	(void)arg;
	g_never_ran++;
}

static int g_self_never_ran;

static void self_never_msg(void *arg)
{
	(void)arg;
	g_self_never_ran++;
}

static int leftover_poller(void *arg)
{
	(void)arg;
	return DBK_POLLER_IDLE;
}

static void leftover_fd_cb(void *arg, uint32_t ev)
{
	(void)arg;
	(void)ev;
}

static int leftover_dev;
static int g_efd_leftover = -1;

static int slow_blocking(void *arg)
{
	(void)arg;
	usleep(100000);
	return 0;
}

static void blocking_never_cpl(void *arg, int rc)
{
	(void)arg;
	(void)rc;
	g_never_ran++;
}

static void leftovers_start(void *arg)
{
	(void)arg;
	/* Everything left behind here must be freed by fini (the ASan build checks leaks). */
	dbk_poller_register(leftover_poller, NULL, 0, "left0");
	dbk_poller_register(leftover_poller, NULL, 1000000, "left1");
	dbk_fd_register(g_efd_leftover, EPOLLIN, leftover_fd_cb, NULL, "leftfd");
	dbk_io_device_register(&leftover_dev, NULL, NULL, 64, "leftdev");
	dbk_get_io_channel(&leftover_dev);
	/* Its completion arrives after the stop: dropped with its job. */
	dbk_run_blocking(slow_blocking, blocking_never_cpl, NULL);
	for (int i = 0; i < 1000; i++)
		dbk_thread_send_msg(dbk_reactor_thread(1), never_msg, NULL);
	dbk_reactors_stop();
	/* After the stop request: these stay queued. */
	for (int i = 0; i < 1000; i++)
		dbk_thread_send_msg(dbk_get_thread(), self_never_msg, NULL);
}

static void test_fini_frees_leftovers(void **state)
{
	(void)state;
	g_never_ran = 0;
	g_self_never_ran = 0;
	g_efd_leftover = eventfd(0, 0);
	assert_true(g_efd_leftover >= 0);
	run_reactors(leftovers_start, NULL);
	/* Reactor 0 left its loop right after start_fn: its own messages never ran. */
	assert_int_equal(g_self_never_ran, 0);
	close(g_efd_leftover);

	/* Stop before start: start returns at once; messages queued before are dropped. */
	struct dbk_reactor_opts o;
	memset(&o, 0, sizeof(o));
	o.num_cores = 2;
	o.cores[1] = 1;
	assert_int_equal(dbk_reactors_init(&o), 0);
	g_never_ran = 0;
	for (int i = 0; i < 100; i++)
		assert_int_equal(dbk_thread_send_msg(dbk_reactor_thread(i % 2), never_msg, NULL), 0);
	dbk_reactors_stop();
	assert_int_equal(dbk_reactors_start(never_msg, NULL), 0);
	dbk_reactors_fini();
	assert_int_equal(g_never_ran, 0);

	/* Bad options. */
	o.num_cores = 0;
	assert_int_equal(dbk_reactors_init(&o), -EINVAL);
	o.num_cores = DBK_MAX_REACTORS + 1;
	assert_int_equal(dbk_reactors_init(&o), -EINVAL);
	assert_int_equal(dbk_reactor_count(), 0);
	assert_null(dbk_reactor_thread(0));
}

/* ------------------------------------------ reactor 0 driven by hand */

static int g_hand_msgs, g_hand_timer_runs, g_hand_fd_events, g_hand_job_done;

static void hand_msg(void *ctx)
{
	(void)ctx;
	g_hand_msgs++;
	if (g_hand_msgs < 3)
		dbk_thread_send_msg(dbk_get_thread(), hand_msg, NULL);	/* a chain: idle only after all three */
}

static int hand_timer(void *ctx)
{
	(void)ctx;
	g_hand_timer_runs++;
	return DBK_POLLER_BUSY;
}

static void hand_fd(void *ctx, uint32_t events)
{
	uint64_t v;

	(void)events;
	if (read(*(int *)ctx, &v, sizeof(v)) == sizeof(v))
		g_hand_fd_events++;
}

static int hand_job(void *ctx)
{
	(void)ctx;
	usleep(20000);
	return 7;
}

static void hand_job_cpl(void *ctx, int rc)
{
	(void)ctx;
	g_hand_job_done = rc;
}

static void test_reactor_by_hand(void **state)
{
	struct dbk_reactor_opts o;
	struct dbk_poller *p;
	struct dbk_fd_handler *h;
	uint64_t one = 1;
	int efd;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.num_cores = 2;
	o.cores[1] = 1;
	assert_int_equal(dbk_reactors_init(&o), 0);
	assert_int_equal(dbk_reactors_attach(), -EINVAL);	/* two reactors: not by hand */
	dbk_reactors_fini();
	o.num_cores = 1;
	assert_int_equal(dbk_reactors_init(&o), 0);
	assert_false(dbk_reactor_poll(0));			/* not attached: nothing runs */
	assert_int_equal(dbk_reactors_attach(), 0);
	assert_int_equal(dbk_reactors_attach(), -EINVAL);	/* already */
	assert_true(dbk_is_main_thread());

	/* Messages, also those sent from handlers, run; then the reactor is idle. */
	g_hand_msgs = 0;
	assert_int_equal(dbk_thread_send_msg(dbk_get_thread(), hand_msg, NULL), 0);
	assert_int_equal(dbk_reactor_poll_idle(1000000), 0);
	assert_int_equal(g_hand_msgs, 3);
	assert_false(dbk_reactor_poll(0));

	/* A timed poller due in an hour does not keep it busy, until time skips ahead. */
	g_hand_timer_runs = 0;
	p = dbk_poller_register(hand_timer, NULL, 3600ull * 1000 * 1000, "hand_timer");
	assert_non_null(p);
	assert_int_equal(dbk_reactor_poll_idle(1000000), 0);
	assert_int_equal(g_hand_timer_runs, 0);
	dbk_reactor_expire_timers();
	assert_true(dbk_reactor_poll(0));
	assert_int_equal(g_hand_timer_runs, 1);
	assert_false(dbk_reactor_poll(0));			/* rescheduled an hour on */
	dbk_poller_unregister(&p);

	/* fd events are delivered; poll(max_wait) waits for one. */
	efd = eventfd(0, EFD_NONBLOCK);
	assert_true(efd >= 0);
	g_hand_fd_events = 0;
	h = dbk_fd_register(efd, EPOLLIN, hand_fd, &efd, "hand_fd");
	assert_non_null(h);
	assert_false(dbk_reactor_poll(1000));
	assert_int_equal(write(efd, &one, sizeof(one)), (ssize_t)sizeof(one));
	assert_true(dbk_reactor_poll(0));
	assert_int_equal(g_hand_fd_events, 1);
	dbk_fd_unregister(&h);
	close(efd);

	/* Idle waits for a blocking job's completion. */
	g_hand_job_done = 0;
	assert_int_equal(dbk_run_blocking(hand_job, hand_job_cpl, NULL), 0);
	assert_true(dbk_reactor_jobs_outstanding());
	assert_int_equal(dbk_reactor_poll_idle(5000000), 0);
	assert_int_equal(g_hand_job_done, 7);
	assert_false(dbk_reactor_jobs_outstanding());

	dbk_reactors_detach();
	assert_null(dbk_get_thread());
	dbk_reactors_fini();
}

/* Several init/start/fini cycles in one process. */
static void cycle_start(void *arg)
{
	(void)arg;
	dbk_for_each_thread(never_msg, NULL, stop_msg);
}

static void test_restart_cycles(void **state)
{
	(void)state;
	for (int i = 0; i < 5; i++)
		run_reactors(cycle_start, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_mask_good),
		cmocka_unit_test(test_core_mask_bad),
		cmocka_unit_test(test_cores_usable),
		cmocka_unit_test(test_thread_identity),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_ping_pong_wakeups),
		cmocka_unit_test(test_wakeup_race),
		cmocka_unit_test(test_for_each_thread),
		cmocka_unit_test(test_pollers),
		cmocka_unit_test(test_idle_reactor_sleeps),
		cmocka_unit_test(test_busy_poll),
		cmocka_unit_test(test_fd_handlers),
		cmocka_unit_test(test_channel_lifecycle),
		cmocka_unit_test(test_channel_create_fails),
		cmocka_unit_test(test_for_each_channel_and_unregister),
		cmocka_unit_test(test_run_blocking),
		cmocka_unit_test(test_run_blocking_many),
		cmocka_unit_test(test_run_blocking_pinned),
		cmocka_unit_test(test_stop_from_signal),
		cmocka_unit_test(test_fini_frees_leftovers),
		cmocka_unit_test(test_restart_cycles),
		cmocka_unit_test(test_reactor_by_hand),
	};

	return cmocka_run_group_tests_name("thread", tests, NULL, NULL);
}
