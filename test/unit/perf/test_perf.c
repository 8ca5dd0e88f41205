/* daosblk-perf helpers: transport ID parser, latency histogram, verify pattern, option parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tools/perf/perf.h"
#include "util/crc32c.h"

/* ------------------------------------------------------------ transport ID */

static void test_trid_full(void **state)
{
	(void)state;
	struct perf_trid t;
	char err[256];
	assert_int_equal(perf_trid_parse("trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:4420 "
					 "subnqn:nqn.2016-06.io.spdk:cnode1",
					 &t, err, sizeof(err)),
			 0);
	assert_string_equal(t.trtype, "TCP");
	assert_int_equal(t.adrfam, 4);
	assert_string_equal(t.traddr, "127.0.0.1");
	assert_string_equal(t.trsvcid, "4420");
	/* The value keeps its colons: only the first separator splits. */
	assert_string_equal(t.subnqn, "nqn.2016-06.io.spdk:cnode1");
}

static void test_trid_defaults_and_case(void **state)
{
	(void)state;
	struct perf_trid t;
	char err[256];
	assert_int_equal(perf_trid_parse("  TRTYPE=tcp   TrAddr:10.0.0.1  ", &t, err, sizeof(err)), 0);
	assert_string_equal(t.trsvcid, "4420");
	assert_int_equal(t.adrfam, 4);
	assert_string_equal(t.subnqn, "");
	assert_int_equal(perf_trid_parse("trtype:TCP adrfam:ipv6 traddr:fe80::1 trsvcid:4421 hostnqn:nqn.h:x", &t, err,
					 sizeof(err)),
			 0);
	assert_int_equal(t.adrfam, 6);
	assert_string_equal(t.traddr, "fe80::1");
	assert_string_equal(t.trsvcid, "4421");
	assert_string_equal(t.hostnqn, "nqn.h:x");
}

static void expect_trid_error(const char *s, const char *needle)
{
	struct perf_trid t;
	char err[256] = "";
	assert_int_equal(perf_trid_parse(s, &t, err, sizeof(err)), -1);
	if (!strstr(err, needle))
		fail_msg("'%s': error '%s' lacks '%s'", s, err, needle);
}

static void test_trid_errors(void **state)
{
	(void)state;
	expect_trid_error("trtype:RDMA traddr:1.2.3.4", "only TCP");
	expect_trid_error("traddr:1.2.3.4", "trtype");
	expect_trid_error("trtype:TCP", "traddr");
	expect_trid_error("trtype:TCP traddr:1.2.3.4 trsvcid:70000", "port");
	expect_trid_error("trtype:TCP traddr:1.2.3.4 trsvcid:44x", "port");
	expect_trid_error("trtype:TCP traddr:1.2.3.4 bogus:1", "unknown");
	expect_trid_error("trtype:TCP traddr", "key:value");
	expect_trid_error("trtype:TCP traddr:", "empty");
	expect_trid_error("trtype:TCP adrfam:FC traddr:1.1.1.1", "adrfam");
	char big[400];
	snprintf(big, sizeof(big), "trtype:TCP traddr:1.1.1.1 subnqn:%0300d", 0);
	expect_trid_error(big, "223");
}

/* -------------------------------------------------------------- histogram */

static void test_hist_index_monotonic(void **state)
{
	(void)state;
	/* Buckets are contiguous and ordered: every value falls in [lo, hi] of its bucket; the relative width
	 * stays below 1/64 beyond the linear range. */
	uint64_t vals[] = {0, 1, 63, 64, 127, 128, 129, 255, 256, 1000, 4095, 4096, 123456, 999999999,
			   (1ull << 40) + 12345, UINT64_MAX};
	unsigned prev = 0;
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		unsigned idx = perf_hist_index(vals[i]);
		assert_true(idx < PERF_HIST_BUCKETS);
		assert_true(idx >= prev);
		prev = idx;
		uint64_t lo, hi;
		perf_hist_bucket_range(idx, &lo, &hi);
		assert_true(lo <= vals[i] && vals[i] <= hi);
		if (vals[i] >= 2 * PERF_HIST_SUB)
			assert_true((hi - lo + 1) * 64 <= lo);
	}
	for (uint64_t v = 0; v < 100000; v++) {
		uint64_t lo, hi;
		perf_hist_bucket_range(perf_hist_index(v), &lo, &hi);
		assert_true(lo <= v && v <= hi);
		if (v > 0)
			assert_true(perf_hist_index(v) == perf_hist_index(v - 1) ||
				    perf_hist_index(v) == perf_hist_index(v - 1) + 1);
	}
}

static void test_hist_percentiles(void **state)
{
	(void)state;
	struct perf_hist *h = malloc(sizeof(*h));
	assert_non_null(h);
	perf_hist_init(h);
	assert_int_equal(perf_hist_percentile(h, 50), 0);
	/* 1..100000 ns uniformly: p50 ~ 50000, p99 ~ 99000, p99.9 ~ 99900 (within one bucket, < 1/64). */
	for (uint64_t v = 1; v <= 100000; v++)
		perf_hist_record(h, v);
	assert_int_equal(h->count, 100000);
	assert_int_equal(h->min, 1);
	assert_int_equal(h->max, 100000);
	assert_int_equal(h->sum, 100000ull * 100001 / 2);
	struct {
		double p;
		double want;
	} cases[] = {{50, 50000}, {99, 99000}, {99.9, 99900}, {10, 10000}};
	for (size_t i = 0; i < 4; i++) {
		double got = (double)perf_hist_percentile(h, cases[i].p);
		double rel = got > cases[i].want ? got / cases[i].want - 1 : 1 - got / cases[i].want;
		if (rel > 1.0 / 64)
			fail_msg("p%.1f = %.0f, want ~%.0f", cases[i].p, got, cases[i].want);
	}
	assert_int_equal(perf_hist_percentile(h, 100), 100000);
	assert_int_equal(perf_hist_percentile(h, 0), 1);

	/* Skewed: 990 fast (10 us), 10 slow (5 ms): p99 fast, p99.9 slow; merge doubles the counts. */
	struct perf_hist *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	assert_non_null(a);
	assert_non_null(b);
	perf_hist_init(a);
	perf_hist_init(b);
	for (int i = 0; i < 990; i++)
		perf_hist_record(a, 10000);
	for (int i = 0; i < 10; i++)
		perf_hist_record(b, 5000000);
	perf_hist_merge(a, b);
	assert_int_equal(a->count, 1000);
	assert_int_equal(a->min, 10000);
	assert_int_equal(a->max, 5000000);
	uint64_t p99 = perf_hist_percentile(a, 99), p991 = perf_hist_percentile(a, 99.1);
	assert_true(p99 >= 10000 && p99 <= 10000 + 10000 / 64);
	assert_true(p991 >= 5000000 - 5000000 / 64 && p991 <= 5000000);
	assert_int_equal(perf_hist_percentile(a, 50), p99);
	/* A single sample: every percentile is that sample (clamped to min/max). */
	perf_hist_init(b);
	perf_hist_record(b, 777777);
	assert_int_equal(perf_hist_percentile(b, 50), 777777);
	assert_int_equal(perf_hist_percentile(b, 99.9), 777777);
	free(a);
	free(b);
	free(h);
}

/* ---------------------------------------------------------- verify pattern */

static void test_pattern_roundtrip_and_detection(void **state)
{
	(void)state;
	uint32_t bs = 4096;
	uint8_t *blk = malloc(bs), *other = malloc(bs);
	assert_non_null(blk);
	assert_non_null(other);
	char why[256];
	perf_pattern_fill(blk, bs, 1234, 0xabcdef, 7);
	assert_int_equal(perf_pattern_check(blk, bs, 1234, 0xabcdef, 7, why, sizeof(why)), 0);
	/* Wrong expectations are caught by the header. */
	assert_int_equal(perf_pattern_check(blk, bs, 1235, 0xabcdef, 7, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "lba 1234"));
	assert_int_equal(perf_pattern_check(blk, bs, 1234, 0xabcdee, 7, why, sizeof(why)), -1);
	assert_int_equal(perf_pattern_check(blk, bs, 1234, 0xabcdef, 8, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "gen 7"));
	/* A single flipped bit in the body is caught, at its offset. */
	blk[3001] ^= 0x10;
	assert_int_equal(perf_pattern_check(blk, bs, 1234, 0xabcdef, 7, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "byte 3000"));
	blk[3001] ^= 0x10;
	/* Zeroes (unwritten block) have no header. */
	memset(other, 0, bs);
	assert_int_equal(perf_pattern_check(other, bs, 1234, 0xabcdef, 7, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "no pattern header"));
	/* Different (lba, seed, gen) give different bodies, so a stale block with a forged header fails too. */
	perf_pattern_fill(other, bs, 1234, 0xabcdef, 6);
	assert_memory_not_equal(blk + 64, other + 64, bs - 64);
	memcpy(other, blk, sizeof(struct perf_pattern_hdr));
	assert_int_equal(perf_pattern_check(other, bs, 1234, 0xabcdef, 7, why, sizeof(why)), -1);
	/* 512-byte blocks work as well, deterministic across calls. */
	perf_pattern_fill(blk, 512, 9, 1, 1);
	perf_pattern_fill(other, 512, 9, 1, 1);
	assert_memory_equal(blk, other, 512);
	free(blk);
	free(other);
}

/* ----------------------------------------------------------- option parsing */

static void test_parse_size(void **state)
{
	(void)state;
	assert_int_equal(perf_parse_size("4096"), 4096);
	assert_int_equal(perf_parse_size("4k"), 4096);
	assert_int_equal(perf_parse_size("128K"), 131072);
	assert_int_equal(perf_parse_size("1m"), 1048576);
	assert_int_equal(perf_parse_size("1MiB"), 1048576);
	assert_int_equal(perf_parse_size(""), -1);
	assert_int_equal(perf_parse_size("-4"), -1);
	assert_int_equal(perf_parse_size("4x"), -1);
	assert_int_equal(perf_parse_size("k"), -1);
}

static void test_parse_cores(void **state)
{
	(void)state;
	int c[16];
	assert_int_equal(perf_parse_cores("0x1", c, 16), 1);
	assert_int_equal(c[0], 0);
	assert_int_equal(perf_parse_cores("0x6", c, 16), 2);
	assert_int_equal(c[0], 1);
	assert_int_equal(c[1], 2);
	assert_int_equal(perf_parse_cores("F0", c, 16), 4);
	assert_int_equal(c[0], 4);
	assert_int_equal(c[3], 7);
	assert_int_equal(perf_parse_cores("[3,0-1]", c, 16), 3);
	assert_int_equal(c[0], 0);
	assert_int_equal(c[1], 1);
	assert_int_equal(c[2], 3);
	assert_int_equal(perf_parse_cores("[1,1]", c, 16), 1);
	assert_int_equal(perf_parse_cores("0x0", c, 16), -1);
	assert_int_equal(perf_parse_cores("[2-1]", c, 16), -1);
	assert_int_equal(perf_parse_cores("[1,", c, 16), -1);
	assert_int_equal(perf_parse_cores("0xg", c, 16), -1);
	assert_int_equal(perf_parse_cores("[0-20]", c, 16), -1);	/* more than max */
}

/* The digest the tool uses is CRC32C (known vector from RFC 3720 B.4: 32 zero bytes). */
static void test_crc32c_vector(void **state)
{
	(void)state;
	uint8_t z[32] = {0};
	assert_int_equal(dbk_crc32c(z, sizeof(z)), 0x8a9136aa);
	assert_int_equal(dbk_crc32c("123456789", 9), 0xe3069283);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trid_full),
		cmocka_unit_test(test_trid_defaults_and_case),
		cmocka_unit_test(test_trid_errors),
		cmocka_unit_test(test_hist_index_monotonic),
		cmocka_unit_test(test_hist_percentiles),
		cmocka_unit_test(test_pattern_roundtrip_and_detection),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_cores),
		cmocka_unit_test(test_crc32c_vector),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
