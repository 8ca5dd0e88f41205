/*
 * daosblk-perf: user-space NVMe/TCP initiator and load generator.
 * Pieces shared by the tool and its unit tests: transport ID parsing,
 * latency histogram, verify pattern, option helpers.
 */
#ifndef DBK_TOOLS_PERF_PERF_H
#define DBK_TOOLS_PERF_PERF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ transport ID */

struct perf_trid {
	char trtype[8];		/* "TCP" */
	int adrfam;		/* 4 or 6 */
	char traddr[257];
	char trsvcid[33];	/* default "4420" */
	char subnqn[257];	/* empty: use the discovery subsystem */
	char hostnqn[257];	/* optional */
};

/* Parse "trtype:TCP adrfam:IPv4 traddr:1.2.3.4 trsvcid:4420 subnqn:nqn..." (':' or '=' separators,
 * keys case-insensitive). Returns 0, or -1 with a message in err. */
int perf_trid_parse(const char *str, struct perf_trid *trid, char *err, size_t errlen);

/* -------------------------------------------------------------- histogram */

/* Log-linear latency histogram in nanoseconds: 2^PERF_HIST_SUB_BITS linear sub-buckets per power of two
 * (relative error < 1/64). Fixed size, no allocation when recording. */
#define PERF_HIST_SUB_BITS 6
#define PERF_HIST_SUB (1u << PERF_HIST_SUB_BITS)
#define PERF_HIST_BUCKETS ((64 - PERF_HIST_SUB_BITS + 1) * PERF_HIST_SUB)

struct perf_hist {
	uint64_t count;
	uint64_t sum;
	uint64_t min;
	uint64_t max;
	uint64_t buckets[PERF_HIST_BUCKETS];
};

void perf_hist_init(struct perf_hist *h);
unsigned perf_hist_index(uint64_t v);
/* Lowest and highest value of bucket idx. */
void perf_hist_bucket_range(unsigned idx, uint64_t *lo, uint64_t *hi);
static inline void perf_hist_record(struct perf_hist *h, uint64_t v)
{
	h->buckets[perf_hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}
void perf_hist_merge(struct perf_hist *dst, const struct perf_hist *src);
/* Value at percentile p (0 < p <= 100): the midpoint of the bucket holding the ceil(p% * count)-th
 * smallest sample, clamped to [min, max]. 0 when empty. */
uint64_t perf_hist_percentile(const struct perf_hist *h, double p);

/* ---------------------------------------------------------- verify pattern */

#define PERF_PATTERN_MAGIC 0x6b6c62736f616444ull	/* "DaosblkP" little-endian-ish tag */

struct perf_pattern_hdr {
	uint64_t magic;
	uint64_t lba;
	uint64_t seed;
	uint32_t gen;
	uint32_t block_size;
};

/* Fill one logical block: header {magic, lba, seed, gen, block size} then a pseudo-random fill derived
 * from (lba, seed, gen). block_size >= 64 and a multiple of 8. */
void perf_pattern_fill(void *block, uint32_t block_size, uint64_t lba, uint64_t seed, uint32_t gen);
/* 0 when the block holds exactly the pattern for (lba, seed, gen); otherwise -1 and a description. */
int perf_pattern_check(const void *block, uint32_t block_size, uint64_t lba, uint64_t seed, uint32_t gen,
		       char *why, size_t whylen);

/* ----------------------------------------------------------- option helpers */

/* "4096", "4k", "128K", "1m" -> bytes. -1 on error. */
int64_t perf_parse_size(const char *s);
/* Core mask "0x3" / "3" (hex) or list "[0,2-3]" -> cores (ascending, unique). Returns count, -1 on error. */
int perf_parse_cores(const char *s, int *cores, int max);

/* splitmix64 / xorshift64* helpers */
static inline uint64_t perf_splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}
static inline uint64_t perf_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

#endif
