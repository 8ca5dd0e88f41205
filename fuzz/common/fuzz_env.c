/* See fuzz_env.h. */
#include "fuzz/common/fuzz_env.h"

#include "bdev/bdev.h"
#include "nvmf/nvmf.h"
#include "nvmf/transport.h"
#include "rpc/rpc.h"
#include "thread/thread.h"
#include "util/log.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A hang: 30 s of wall time (a loaded machine can stall a process for many seconds; a real hang is forever). */
#define HANG_US (30u * 1000 * 1000)

static char g_tmpdir[64];
FILE *fuzz_stderr;
bool fuzz_verbose;

static void rm_tmpdir(void)
{
	char cmd[128];

	if (g_tmpdir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_tmpdir);
		if (system(cmd) != 0) {
			/* best effort */
		}
	}
}

const char *fuzz_tmpdir(void)
{
	return g_tmpdir;
}

void fuzz_env_init(unsigned flags)
{
	struct dbk_reactor_opts o;
	bool verbose = getenv("DBK_FUZZ_LOG") && getenv("DBK_FUZZ_LOG")[0] == '1';

	fuzz_stderr = stderr;
	fuzz_verbose = verbose;

	if (flags & FUZZ_NETNS) {
		/* Listeners an input asks for bind in a namespace of our own: never on the host's network. */
		if (unshare(CLONE_NEWNET) != 0) {
			fprintf(fuzz_stderr, "fuzz: SKIP: cannot create a network namespace (%s); run as root\n",
				strerror(errno));
			exit(77);
		}
	}
	snprintf(g_tmpdir, sizeof(g_tmpdir), "/tmp/dbk-fuzz.XXXXXX");
	if (!mkdtemp(g_tmpdir)) {
		fprintf(fuzz_stderr, "fuzz: mkdtemp failed\n");
		abort();
	}
	atexit(rm_tmpdir);
	if (!verbose) {
		/* Format every message (arguments from the input included) but write nothing. */
		dbk_log_open(DBK_LOG_DEST_NONE, NULL);
		dbk_log_set_level(DBK_LOG_DEBUG);
		dbk_log_enable_flag("all");
		if (flags & FUZZ_QUIET_STDIO) {
			/* libFuzzer and the sanitizers keep the real stderr (they took it before, or write fd 2). */
			FILE *null = fopen("/dev/null", "w");
			if (null)
				stderr = null;
		}
	}
	memset(&o, 0, sizeof(o));
	o.cores[0] = 0;
	o.num_cores = 1;
	o.pin = false;
	if (dbk_reactors_init(&o) != 0 || dbk_reactors_attach() != 0) {
		fprintf(fuzz_stderr, "fuzz: cannot set up the reactor\n");
		abort();
	}
}

void fuzz_poll_idle(void)
{
	if (dbk_reactor_poll_idle(HANG_US) != 0) {
		fprintf(fuzz_stderr, "fuzz: the reactor is still busy after 30 s (hang)\n");
		abort();
	}
}

void fuzz_poll_skip(void)
{
	/* Nothing to do but wait for a timer: skip ahead (teardown waits on 1 ms pollers). */
	if (!dbk_reactor_poll(0)) {
		if (dbk_reactor_jobs_outstanding())
			dbk_reactor_poll(1000);
		else
			dbk_reactor_expire_timers();
	}
}

void fuzz_poll_until(const volatile bool *flag, const char *what)
{
	uint64_t deadline = dbk_get_ns() + HANG_US * 1000ull;

	while (!*flag) {
		fuzz_poll_skip();
		if (!*flag && dbk_get_ns() > deadline) {
			fprintf(fuzz_stderr, "fuzz: %s did not finish within 30 s (hang)\n", what);
			abort();
		}
	}
}

void fuzz_core_up(void)
{
	int rc = dbk_bdev_subsystem_init();

	if (rc == 0)
		rc = dbk_nvmf_tgt_init();
	if (rc) {
		fprintf(fuzz_stderr, "fuzz: core init failed: %s\n", strerror(-rc));
		abort();
	}
	dbk_rpc_set_state(DBK_RPC_RUNTIME);
}

static volatile bool g_down;

static void bdev_down(void *ctx)
{
	(void)ctx;
	g_down = true;
}

static void nvmf_down(void *ctx)
{
	(void)ctx;
	dbk_bdev_subsystem_fini(bdev_down, NULL);
}

void fuzz_core_down(void)
{
	g_down = false;
	dbk_nvmf_tgt_fini(nvmf_down, NULL);
	fuzz_poll_until(&g_down, "target teardown");
	fuzz_poll_idle();
}

size_t fin_bytes(struct fuzz_in *in, void *dst, size_t len)
{
	size_t n = in->n < len ? in->n : len;

	memcpy(dst, in->p, n);
	memset((uint8_t *)dst + n, 0, len - n);
	in->p += n;
	in->n -= n;
	return n;
}

/* Reads every byte of the input: instrumented, its loop's compare callbacks took a third of fuzz_nvmf_cmd's
 * time with 64 KiB inputs. */
FUZZ_NO_COVERAGE void fuzz_rng_seed(struct fuzz_rng *r, const uint8_t *data, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;	/* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ data[i]) * 0x100000001b3ull;
	r->s = h ? h : 1;
}

uint32_t fuzz_rng_next(struct fuzz_rng *r)
{
	/* xorshift64* */
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return (uint32_t)((r->s * 0x2545f4914f6cdd1dull) >> 32);
}

size_t fuzz_rng_chunk(struct fuzz_rng *r, size_t max)
{
	uint32_t v = fuzz_rng_next(r);

	if (max <= 1)
		return 1;
	switch (v & 3) {
	case 0:
		return max;				/* all at once */
	case 1:
		return 1 + (v >> 8) % (max < 8 ? max : 8);	/* a few bytes */
	default:
		return 1 + (v >> 8) % max;		/* anywhere */
	}
}

/* ------------------------------------------------------------ the in-process transport's no-op parts */

struct dbk_nvmf_transport *fuzz_transport_create(const struct dbk_nvmf_transport_opts *opts, int *rc, char *err,
						 size_t errlen)
{
	struct dbk_nvmf_transport *t = calloc(1, sizeof(*t));

	(void)err;
	(void)errlen;
	if (!t) {
		*rc = -ENOMEM;
		return NULL;
	}
	t->opts = *opts;
	return t;
}

void fuzz_transport_destroy(struct dbk_nvmf_transport *t)
{
	free(t);
}

int fuzz_transport_listen(struct dbk_nvmf_transport *t, const struct dbk_nvmf_listen_addr *a)
{
	(void)t;
	(void)a;
	return 0;
}

void fuzz_transport_stop_listen(struct dbk_nvmf_transport *t, const struct dbk_nvmf_listen_addr *a)
{
	(void)t;
	(void)a;
}

struct dbk_nvmf_transport_poll_group *fuzz_transport_pg_create(struct dbk_nvmf_transport *t)
{
	(void)t;
	return calloc(1, 16);
}

void fuzz_transport_pg_destroy(struct dbk_nvmf_transport_poll_group *g)
{
	free(g);
}
