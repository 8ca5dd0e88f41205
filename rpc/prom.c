/* Prometheus text exposition format 0.0.4 writer (see rpc/prom.h). */
#include "rpc/prom.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dbk_prom_init(struct dbk_prom_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void dbk_prom_free(struct dbk_prom_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static bool reserve(struct dbk_prom_buf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->failed)
		return false;
	if (b->len + n + 1 <= b->cap)
		return true;
	cap = b->cap ? b->cap : 16384;
	while (cap < b->len + n + 1)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p) {
		b->failed = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void dbk_prom_append(struct dbk_prom_buf *b, const char *s, size_t n)
{
	if (n == 0 && b->data)
		return;
	if (!reserve(b, n))
		return;
	if (n)
		memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void append_str(struct dbk_prom_buf *b, const char *s)
{
	dbk_prom_append(b, s, strlen(s));
}

static void append_ch(struct dbk_prom_buf *b, char c)
{
	dbk_prom_append(b, &c, 1);
}

void dbk_prom_printf(struct dbk_prom_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if (!reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Append s escaped: backslash and newline always, the double quote when quote (label values). */
static void append_escaped(struct dbk_prom_buf *b, const char *s, bool quote)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = NULL;

		if (*s == '\\')
			esc = "\\\\";
		else if (*s == '\n')
			esc = "\\n";
		else if (quote && *s == '"')
			esc = "\\\"";
		if (!esc)
			continue;
		dbk_prom_append(b, run, (size_t)(s - run));
		dbk_prom_append(b, esc, 2);
		run = s + 1;
	}
	dbk_prom_append(b, run, (size_t)(s - run));
}

void dbk_prom_append_label_value(struct dbk_prom_buf *b, const char *v)
{
	append_escaped(b, v ? v : "", true);
}

void dbk_prom_append_help(struct dbk_prom_buf *b, const char *help)
{
	append_escaped(b, help ? help : "", false);
}

void dbk_prom_family(struct dbk_prom_buf *b, const char *name, const char *type, const char *help)
{
	append_str(b, "# HELP ");
	append_str(b, name);
	append_ch(b, ' ');
	dbk_prom_append_help(b, help);
	append_str(b, "\n# TYPE ");
	append_str(b, name);
	append_ch(b, ' ');
	append_str(b, type);
	append_ch(b, '\n');
}

/* name[suffix]{labels[,le="le"]} */
static void series(struct dbk_prom_buf *b, const char *name, const char *suffix, const struct dbk_prom_label *labels,
		   size_t nlabels, const char *le)
{
	bool any = nlabels > 0 || le;

	append_str(b, name);
	if (suffix)
		append_str(b, suffix);
	if (!any)
		return;
	append_ch(b, '{');
	for (size_t i = 0; i < nlabels; i++) {
		if (i)
			append_ch(b, ',');
		append_str(b, labels[i].name);
		append_str(b, "=\"");
		dbk_prom_append_label_value(b, labels[i].value);
		append_ch(b, '"');
	}
	if (le) {
		if (nlabels)
			append_ch(b, ',');
		append_str(b, "le=\"");
		append_str(b, le);
		append_ch(b, '"');
	}
	append_ch(b, '}');
}

/* Decimal digits of v, right-aligned ending at end; returns the first. (printf costs more than the rest
 * of a scrape together.) */
static char *u64_digits(char *end, uint64_t v)
{
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return end;
}

static void append_u64(struct dbk_prom_buf *b, uint64_t v)
{
	char d[24];
	char *p = u64_digits(d + sizeof(d), v);

	dbk_prom_append(b, p, (size_t)(d + sizeof(d) - p));
}

char *dbk_prom_fmt_fixed(char *out, size_t outlen, uint64_t v, unsigned digits)
{
	char tmp[48];
	char *end = tmp + sizeof(tmp), *p = end;
	uint64_t div = 1;
	uint64_t fp;
	size_t n;

	if (digits > 19)
		digits = 19;
	for (unsigned i = 0; i < digits; i++)
		div *= 10;
	fp = v % div;
	if (fp) {
		unsigned d = digits;

		while (fp % 10 == 0) {	/* trailing zeros of the fraction go */
			fp /= 10;
			d--;
		}
		for (; d > 0; d--) {
			*--p = (char)('0' + fp % 10);
			fp /= 10;
		}
		*--p = '.';
	}
	p = u64_digits(p, v / div);
	n = (size_t)(end - p);
	if (outlen == 0)
		return out;
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, p, n);
	out[n] = '\0';
	return out;
}

void dbk_prom_sample_u64(struct dbk_prom_buf *b, const char *name, const struct dbk_prom_label *labels,
			 size_t nlabels, uint64_t value)
{
	series(b, name, NULL, labels, nlabels, NULL);
	append_ch(b, ' ');
	append_u64(b, value);
	append_ch(b, '\n');
}

void dbk_prom_sample_seconds(struct dbk_prom_buf *b, const char *name, const struct dbk_prom_label *labels,
			     size_t nlabels, uint64_t ns)
{
	char v[48];

	series(b, name, NULL, labels, nlabels, NULL);
	append_ch(b, ' ');
	append_str(b, dbk_prom_fmt_fixed(v, sizeof(v), ns, 9));
	append_ch(b, '\n');
}

/* One histogram line: name suffix{labels le="le"} v (labels: the escaped label list, with a trailing comma). */
static void hist_line(struct dbk_prom_buf *b, const char *name, const char *suffix, const struct dbk_prom_buf *labels,
		      const char *le, const char *v)
{
	append_str(b, name);
	append_str(b, suffix);
	if (labels->len || le) {
		append_ch(b, '{');
		dbk_prom_append(b, labels->data, labels->len - (le ? 0 : 1));
		if (le) {
			append_str(b, "le=\"");
			append_str(b, le);
			append_ch(b, '"');
		}
		append_ch(b, '}');
	}
	append_ch(b, ' ');
	append_str(b, v);
	append_ch(b, '\n');
}

void dbk_prom_histogram_us(struct dbk_prom_buf *b, const char *name, const struct dbk_prom_label *labels,
			   size_t nlabels, const uint64_t *counts, const uint64_t *bound_us, size_t nbuckets,
			   uint64_t sum_ns)
{
	struct dbk_prom_buf lb;	/* the labels, escaped once: l1="v1",l2="v2", */
	uint64_t cum = 0;
	char le[48], v[48];

	dbk_prom_init(&lb);
	for (size_t i = 0; i < nlabels; i++) {
		append_str(&lb, labels[i].name);
		append_str(&lb, "=\"");
		dbk_prom_append_label_value(&lb, labels[i].value);
		append_str(&lb, "\",");
	}
	if (lb.failed) {
		b->failed = true;
		dbk_prom_free(&lb);
		return;
	}
	for (size_t i = 0; i < nbuckets; i++) {
		cum += counts[i];
		if (bound_us[i] == UINT64_MAX)
			continue;	/* the overflow bucket: only in +Inf */
		hist_line(b, name, "_bucket", &lb, dbk_prom_fmt_fixed(le, sizeof(le), bound_us[i], 6),
			  dbk_prom_fmt_fixed(v, sizeof(v), cum, 0));
	}
	dbk_prom_fmt_fixed(v, sizeof(v), cum, 0);
	hist_line(b, name, "_bucket", &lb, "+Inf", v);
	hist_line(b, name, "_sum", &lb, NULL, dbk_prom_fmt_fixed(le, sizeof(le), sum_ns, 9));
	hist_line(b, name, "_count", &lb, NULL, v);
	dbk_prom_free(&lb);
}

char *dbk_prom_sanitize_name(char *out, size_t outlen, const char *in)
{
	size_t o = 0;

	if (outlen == 0)
		return out;
	if (*in >= '0' && *in <= '9' && o + 1 < outlen)
		out[o++] = '_';
	for (; *in && o + 1 < outlen; in++) {
		char c = *in;

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			c = '_';
		out[o++] = c;
	}
	out[o] = '\0';
	return out;
}
