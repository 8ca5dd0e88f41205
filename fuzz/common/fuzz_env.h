/*
 * What every daosblk fuzz harness shares: one reactor driven by hand on the
 * fuzzer's own thread (thread/thread.h dbk_reactors_attach / dbk_reactor_poll),
 * the target core brought up and torn down around each input, quiet logs, and
 * a little reader for structured inputs.
 *
 * Every harness leaves nothing behind between inputs: what an input creates is
 * destroyed before LLVMFuzzerTestOneInput returns (LeakSanitizer checks it),
 * and a hang (the reactor never going idle, a teardown never finishing) is
 * reported as a crash (abort() after 30 s).
 */
#ifndef DBK_FUZZ_FUZZ_ENV_H
#define DBK_FUZZ_FUZZ_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* On the harness's own bookkeeping loops (input hashing, slot searches): they are not under test, and their
 * coverage callbacks cost libFuzzer executions without guiding it. */
#if defined(__clang__)
#define FUZZ_NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define FUZZ_NO_COVERAGE
#endif

#define FUZZ_NETNS 0x1u		/* run in a new network namespace (RPC methods may open listeners) */
#define FUZZ_QUIET_STDIO 0x2u	/* send the code's own stdio stderr output (not libFuzzer's) to /dev/null */

/* The real stderr, for the harnesses' own messages (stderr itself may be /dev/null: FUZZ_QUIET_STDIO). */
extern FILE *fuzz_stderr;
/* DBK_FUZZ_LOG=1: logs go to stderr as in the daemon, and harnesses say what they do. */
extern bool fuzz_verbose;

/* Once per process (LLVMFuzzerInitialize). Aborts on failure. */
void fuzz_env_init(unsigned flags);
/* A private scratch directory (removed at exit). */
const char *fuzz_tmpdir(void);

/* Poll the reactor until it is idle; abort() after 30 s (a hang is a finding). */
void fuzz_poll_idle(void);
/* One iteration; when it finds nothing to do, time skips ahead (every timed poller is due now), or, with a
 * blocking job outstanding, it waits up to 1 ms for its completion. */
void fuzz_poll_skip(void);
/* Poll (skipping time ahead when idle) until *flag is true; abort() naming what after 30 s. */
void fuzz_poll_until(const volatile bool *flag, const char *what);

/* Bring up the bdev layer and the NVMe-oF target (RPC state runtime, init done); abort on failure. */
void fuzz_core_up(void);
/* Tear both down (every subsystem, qpair, bdev) and wait for it. */
void fuzz_core_down(void);

/*
 * The parts of an in-process transport ("FUZZ") that do nothing a harness checks: create/destroy copy the
 * options into a plain struct dbk_nvmf_transport, listening binds nothing, a poll group is an empty
 * allocation. A harness supplies the rest of its dbk_nvmf_transport_ops (poll_group_add, the request hooks).
 */
struct dbk_nvmf_transport;
struct dbk_nvmf_transport_opts;
struct dbk_nvmf_transport_poll_group;
struct dbk_nvmf_listen_addr;
struct dbk_nvmf_transport *fuzz_transport_create(const struct dbk_nvmf_transport_opts *opts, int *rc, char *err,
						 size_t errlen);
void fuzz_transport_destroy(struct dbk_nvmf_transport *t);
int fuzz_transport_listen(struct dbk_nvmf_transport *t, const struct dbk_nvmf_listen_addr *a);
void fuzz_transport_stop_listen(struct dbk_nvmf_transport *t, const struct dbk_nvmf_listen_addr *a);
struct dbk_nvmf_transport_poll_group *fuzz_transport_pg_create(struct dbk_nvmf_transport *t);
void fuzz_transport_pg_destroy(struct dbk_nvmf_transport_poll_group *g);

/* ----------------------------------------------------------- input reader */

struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fin_u8(struct fuzz_in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static inline uint16_t fin_u16(struct fuzz_in *in)
{
	uint16_t v = fin_u8(in);
	return (uint16_t)(v | (uint16_t)fin_u8(in) << 8);
}

static inline uint32_t fin_u32(struct fuzz_in *in)
{
	uint32_t v = fin_u16(in);
	return v | (uint32_t)fin_u16(in) << 16;
}

/* Copy up to len bytes (zero-fill the rest); returns bytes taken from the input. */
size_t fin_bytes(struct fuzz_in *in, void *dst, size_t len);

/* Deterministic split points: a small PRNG seeded from the input itself. */
struct fuzz_rng {
	uint64_t s;
};
void fuzz_rng_seed(struct fuzz_rng *r, const uint8_t *data, size_t len);
uint32_t fuzz_rng_next(struct fuzz_rng *r);
/* A chunk length in 1..max, biased to small values and to max. */
size_t fuzz_rng_chunk(struct fuzz_rng *r, size_t max);

#endif
