/*
 * Prometheus text exposition format 0.0.4: a growable text buffer and the writers for families
 * (# HELP / # TYPE), samples with labels and histograms. No I/O, no globals: the metrics endpoint
 * (rpc/metrics.c) builds its answer with it and the unit tests check it.
 *
 * Rules kept here: label values escape backslash, double quote and newline (\\ \" \n); HELP text escapes
 * backslash and newline; histogram buckets are cumulative, end with le="+Inf" equal to _count, and come
 * with _sum and _count. Metric and label names are the caller's (constants in the code) and must already
 * be valid ([a-zA-Z_:][a-zA-Z0-9_:]*; dbk_prom_sanitize_name() makes one from arbitrary text).
 */
#ifndef DBK_RPC_PROM_H
#define DBK_RPC_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The content type of the text format. */
#define DBK_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct dbk_prom_buf {
	char *data;	/* NUL-terminated while not failed */
	size_t len, cap;
	bool failed;	/* out of memory at some point: the text is incomplete, do not serve it */
};

struct dbk_prom_label {
	const char *name;
	const char *value;	/* any bytes; escaped on output; NULL is written as "" */
};

void dbk_prom_init(struct dbk_prom_buf *b);
void dbk_prom_free(struct dbk_prom_buf *b);
void dbk_prom_append(struct dbk_prom_buf *b, const char *s, size_t n);
void dbk_prom_printf(struct dbk_prom_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Escaped forms, appended to b. */
void dbk_prom_append_label_value(struct dbk_prom_buf *b, const char *v);
void dbk_prom_append_help(struct dbk_prom_buf *b, const char *help);

/* "# HELP name help\n# TYPE name type\n"; type: "counter", "gauge", "histogram" or "untyped". */
void dbk_prom_family(struct dbk_prom_buf *b, const char *name, const char *type, const char *help);

/* name{l1="v1",...} value: an unsigned integer, or nanoseconds written as exact decimal seconds. */
void dbk_prom_sample_u64(struct dbk_prom_buf *b, const char *name, const struct dbk_prom_label *labels,
			 size_t nlabels, uint64_t value);
void dbk_prom_sample_seconds(struct dbk_prom_buf *b, const char *name, const struct dbk_prom_label *labels,
			     size_t nlabels, uint64_t ns);

/*
 * A histogram's samples (after its dbk_prom_family(..., "histogram", ...)): counts[i] is the number of
 * observations in bucket i alone (not cumulative) whose upper bound is bound_us[i] microseconds (written
 * in seconds as le="0.000001" ...); a bound of UINT64_MAX marks an overflow bucket (it must be the last),
 * counted only in le="+Inf". Writes name_bucket{labels,le=...} cumulatively, name_bucket{...,le="+Inf"}
 * = name_count = the sum of all counts, and name_sum = sum_ns in seconds.
 */
void dbk_prom_histogram_us(struct dbk_prom_buf *b, const char *name, const struct dbk_prom_label *labels,
			   size_t nlabels, const uint64_t *counts, const uint64_t *bound_us, size_t nbuckets,
			   uint64_t sum_ns);

/* Write an exact decimal of v / 10^digits ("1.048576", "0.000001", "3") into out. Returns out. */
char *dbk_prom_fmt_fixed(char *out, size_t outlen, uint64_t v, unsigned digits);

/* Copy in into out as a valid metric name part: [a-zA-Z0-9_] kept (lower-cased), anything else '_'; a
 * leading digit gets a '_' before it. Returns out (at most outlen - 1 characters). */
char *dbk_prom_sanitize_name(char *out, size_t outlen, const char *in);

#endif
