/* daosblk-perf helpers: transport ID, histogram, verify pattern, option parsing. */
#include "tools/perf/perf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ transport ID */

static int set_field(char *dst, size_t dstlen, const char *key, const char *val, size_t vlen, char *err,
		     size_t errlen)
{
	if (vlen == 0) {
		snprintf(err, errlen, "empty value for '%s'", key);
		return -1;
	}
	if (vlen >= dstlen) {
		snprintf(err, errlen, "value for '%s' too long (max %zu)", key, dstlen - 1);
		return -1;
	}
	memcpy(dst, val, vlen);
	dst[vlen] = '\0';
	return 0;
}

int perf_trid_parse(const char *str, struct perf_trid *trid, char *err, size_t errlen)
{
	memset(trid, 0, sizeof(*trid));
	trid->adrfam = 4;
	snprintf(trid->trsvcid, sizeof(trid->trsvcid), "4420");
	if (!str) {
		snprintf(err, errlen, "no transport ID");
		return -1;
	}
	const char *p = str;
	while (*p) {
		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		const char *tok = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		size_t toklen = (size_t)(p - tok);
		const char *sep = NULL;
		for (size_t i = 0; i < toklen; i++) {
			if (tok[i] == ':' || tok[i] == '=') {
				sep = tok + i;
				break;
			}
		}
		if (!sep) {
			snprintf(err, errlen, "'%.*s': expected key:value", (int)toklen, tok);
			return -1;
		}
		char key[32];
		size_t klen = (size_t)(sep - tok);
		if (klen == 0 || klen >= sizeof(key)) {
			snprintf(err, errlen, "'%.*s': bad key", (int)toklen, tok);
			return -1;
		}
		memcpy(key, tok, klen);
		key[klen] = '\0';
		const char *val = sep + 1;
		size_t vlen = toklen - klen - 1;
		if (!strcasecmp(key, "trtype")) {
			if (vlen != 3 || strncasecmp(val, "tcp", 3)) {
				snprintf(err, errlen, "trtype '%.*s' not supported (only TCP)", (int)vlen, val);
				return -1;
			}
			snprintf(trid->trtype, sizeof(trid->trtype), "TCP");
		} else if (!strcasecmp(key, "adrfam")) {
			if (vlen == 4 && !strncasecmp(val, "ipv4", 4))
				trid->adrfam = 4;
			else if (vlen == 4 && !strncasecmp(val, "ipv6", 4))
				trid->adrfam = 6;
			else {
				snprintf(err, errlen, "adrfam '%.*s' not supported (IPv4 or IPv6)", (int)vlen, val);
				return -1;
			}
		} else if (!strcasecmp(key, "traddr")) {
			if (set_field(trid->traddr, sizeof(trid->traddr), key, val, vlen, err, errlen))
				return -1;
		} else if (!strcasecmp(key, "trsvcid")) {
			if (set_field(trid->trsvcid, sizeof(trid->trsvcid), key, val, vlen, err, errlen))
				return -1;
			char *end;
			errno = 0;
			long port = strtol(trid->trsvcid, &end, 10);
			if (errno || *end || port <= 0 || port > 65535) {
				snprintf(err, errlen, "trsvcid '%s' is not a port number", trid->trsvcid);
				return -1;
			}
		} else if (!strcasecmp(key, "subnqn")) {
			if (vlen > 223) {
				snprintf(err, errlen, "subnqn longer than 223 bytes");
				return -1;
			}
			if (set_field(trid->subnqn, sizeof(trid->subnqn), key, val, vlen, err, errlen))
				return -1;
		} else if (!strcasecmp(key, "hostnqn")) {
			if (vlen > 223) {
				snprintf(err, errlen, "hostnqn longer than 223 bytes");
				return -1;
			}
			if (set_field(trid->hostnqn, sizeof(trid->hostnqn), key, val, vlen, err, errlen))
				return -1;
		} else {
			snprintf(err, errlen, "unknown transport ID key '%s'", key);
			return -1;
		}
	}
	if (!trid->trtype[0]) {
		snprintf(err, errlen, "transport ID needs trtype:TCP");
		return -1;
	}
	if (!trid->traddr[0]) {
		snprintf(err, errlen, "transport ID needs traddr");
		return -1;
	}
	return 0;
}

/* -------------------------------------------------------------- histogram */

void perf_hist_init(struct perf_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

unsigned perf_hist_index(uint64_t v)
{
	if (v < 2 * PERF_HIST_SUB)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - PERF_HIST_SUB_BITS;
	return shift * PERF_HIST_SUB + (unsigned)(v >> shift);
}

void perf_hist_bucket_range(unsigned idx, uint64_t *lo, uint64_t *hi)
{
	unsigned shift = idx < 2 * PERF_HIST_SUB ? 0 : idx / PERF_HIST_SUB - 1;
	uint64_t base = (uint64_t)(idx - shift * PERF_HIST_SUB) << shift;
	*lo = base;
	*hi = base + ((1ull << shift) - 1);
}

void perf_hist_merge(struct perf_hist *dst, const struct perf_hist *src)
{
	for (unsigned i = 0; i < PERF_HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t perf_hist_percentile(const struct perf_hist *h, double p)
{
	if (h->count == 0)
		return 0;
	if (p <= 0)
		return h->min;
	if (p >= 100)
		return h->max;
	double r = p / 100.0 * (double)h->count;
	uint64_t rank = (uint64_t)r;
	if ((double)rank < r)
		rank++;
	if (rank == 0)
		rank = 1;
	uint64_t cum = 0;
	for (unsigned i = 0; i < PERF_HIST_BUCKETS; i++) {
		cum += h->buckets[i];
		if (cum >= rank) {
			uint64_t lo, hi;
			perf_hist_bucket_range(i, &lo, &hi);
			uint64_t v = lo + (hi - lo) / 2;
			if (v < h->min)
				v = h->min;
			if (v > h->max)
				v = h->max;
			return v;
		}
	}
	return h->max;
}

/* ---------------------------------------------------------- verify pattern */

static uint64_t pattern_state(uint64_t lba, uint64_t seed, uint32_t gen)
{
	uint64_t s = perf_splitmix64(lba ^ perf_splitmix64(seed ^ ((uint64_t)gen << 32 | gen)));
	return s ? s : 0x1234567887654321ull;
}

void perf_pattern_fill(void *block, uint32_t block_size, uint64_t lba, uint64_t seed, uint32_t gen)
{
	struct perf_pattern_hdr hdr = {
		.magic = PERF_PATTERN_MAGIC, .lba = lba, .seed = seed, .gen = gen, .block_size = block_size};
	memcpy(block, &hdr, sizeof(hdr));
	uint64_t s = pattern_state(lba, seed, gen);
	uint8_t *b = block;
	for (uint32_t off = sizeof(hdr); off + 8 <= block_size; off += 8) {
		uint64_t w = perf_rand(&s);
		memcpy(b + off, &w, 8);
	}
}

int perf_pattern_check(const void *block, uint32_t block_size, uint64_t lba, uint64_t seed, uint32_t gen,
		       char *why, size_t whylen)
{
	struct perf_pattern_hdr hdr;
	memcpy(&hdr, block, sizeof(hdr));
	if (hdr.magic != PERF_PATTERN_MAGIC) {
		snprintf(why, whylen, "no pattern header (magic %016llx)", (unsigned long long)hdr.magic);
		return -1;
	}
	if (hdr.lba != lba || hdr.seed != seed || hdr.gen != gen || hdr.block_size != block_size) {
		snprintf(why, whylen, "header has lba %llu seed %llx gen %u bs %u, expected lba %llu seed %llx gen %u",
			 (unsigned long long)hdr.lba, (unsigned long long)hdr.seed, hdr.gen, hdr.block_size,
			 (unsigned long long)lba, (unsigned long long)seed, gen);
		return -1;
	}
	uint64_t s = pattern_state(lba, seed, gen);
	const uint8_t *b = block;
	for (uint32_t off = sizeof(hdr); off + 8 <= block_size; off += 8) {
		uint64_t w = perf_rand(&s), got;
		memcpy(&got, b + off, 8);
		if (got != w) {
			snprintf(why, whylen, "data differs at byte %u of the block (got %016llx want %016llx)", off,
				 (unsigned long long)got, (unsigned long long)w);
			return -1;
		}
	}
	return 0;
}

/* ----------------------------------------------------------- option helpers */

int64_t perf_parse_size(const char *s)
{
	if (!s || !*s)
		return -1;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return -1;
	unsigned long long mul = 1;
	if (*end) {
		switch (tolower((unsigned char)*end)) {
		case 'k': mul = 1024ull; break;
		case 'm': mul = 1024ull * 1024; break;
		case 'g': mul = 1024ull * 1024 * 1024; break;
		default: return -1;
		}
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'b' || *end == 'B')
			end++;
		if (*end)
			return -1;
	}
	if (v > (unsigned long long)INT64_MAX / mul)
		return -1;
	return (int64_t)(v * mul);
}

static int add_core(int *cores, int *n, int max, long c)
{
	if (c < 0 || c >= 1024)
		return -1;
	for (int i = 0; i < *n; i++)
		if (cores[i] == c)
			return 0;
	if (*n >= max)
		return -1;
	cores[(*n)++] = (int)c;
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

int perf_parse_cores(const char *s, int *cores, int max)
{
	int n = 0;
	if (!s || !*s)
		return -1;
	if (s[0] == '[') {
		const char *p = s + 1;
		for (;;) {
			while (isspace((unsigned char)*p))
				p++;
			if (!isdigit((unsigned char)*p))
				return -1;
			char *end;
			long a = strtol(p, &end, 10), b = a;
			p = end;
			if (*p == '-') {
				p++;
				if (!isdigit((unsigned char)*p))
					return -1;
				b = strtol(p, &end, 10);
				p = end;
				if (b < a)
					return -1;
			}
			for (long c = a; c <= b; c++)
				if (add_core(cores, &n, max, c))
					return -1;
			while (isspace((unsigned char)*p))
				p++;
			if (*p == ',') {
				p++;
				continue;
			}
			if (*p == ']' && p[1] == '\0')
				break;
			return -1;
		}
	} else {
		const char *p = s;
		if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
			p += 2;
		if (!*p)
			return -1;
		size_t len = strlen(p);
		for (size_t i = 0; i < len; i++) {
			char ch = p[len - 1 - i];
			int d;
			if (ch >= '0' && ch <= '9')
				d = ch - '0';
			else if (ch >= 'a' && ch <= 'f')
				d = ch - 'a' + 10;
			else if (ch >= 'A' && ch <= 'F')
				d = ch - 'A' + 10;
			else
				return -1;
			for (int bit = 0; bit < 4; bit++)
				if (d & (1 << bit))
					if (add_core(cores, &n, max, (long)(i * 4 + (size_t)bit)))
						return -1;
		}
	}
	if (n == 0)
		return -1;
	qsort(cores, (size_t)n, sizeof(int), cmp_int);
	return n;
}
