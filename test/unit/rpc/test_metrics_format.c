/*
 * The metrics endpoint's pure parts: the Prometheus text writer (escaping, exact decimals, histogram
 * buckets cumulative with +Inf == _count, family headers), the HTTP/1.x request-head parser (every
 * status it answers) and the --metrics ADDR:PORT parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include "rpc/metrics.h"
#include "rpc/prom.h"

/* ------------------------------------------------------------ writer */

static void test_label_escaping(void **state)
{
	struct dbk_prom_buf b;
	struct dbk_prom_label l[] = {{"bdev", "a\"b\\c\nd"}, {"empty", ""}, {"null", NULL}};

	(void)state;
	dbk_prom_init(&b);
	dbk_prom_sample_u64(&b, "x_total", l, 3, 42);
	assert_false(b.failed);
	assert_string_equal(b.data, "x_total{bdev=\"a\\\"b\\\\c\\nd\",empty=\"\",null=\"\"} 42\n");
	dbk_prom_free(&b);

	dbk_prom_init(&b);
	dbk_prom_sample_u64(&b, "plain", NULL, 0, 18446744073709551615ULL);
	assert_string_equal(b.data, "plain 18446744073709551615\n");
	dbk_prom_free(&b);
}

static void test_family_help_escaping(void **state)
{
	struct dbk_prom_buf b;

	(void)state;
	dbk_prom_init(&b);
	/* HELP escapes backslash and newline but not quotes */
	dbk_prom_family(&b, "m_seconds", "histogram", "a \"quoted\" \\ back\nslash");
	assert_string_equal(b.data, "# HELP m_seconds a \"quoted\" \\\\ back\\nslash\n# TYPE m_seconds histogram\n");
	dbk_prom_free(&b);
}

static void test_fixed_decimals(void **state)
{
	char s[48];

	(void)state;
	assert_string_equal(dbk_prom_fmt_fixed(s, sizeof(s), 0, 9), "0");
	assert_string_equal(dbk_prom_fmt_fixed(s, sizeof(s), 1, 6), "0.000001");
	assert_string_equal(dbk_prom_fmt_fixed(s, sizeof(s), 1048576, 6), "1.048576");
	assert_string_equal(dbk_prom_fmt_fixed(s, sizeof(s), 2000000, 6), "2");
	assert_string_equal(dbk_prom_fmt_fixed(s, sizeof(s), 1500000000, 9), "1.5");
	assert_string_equal(dbk_prom_fmt_fixed(s, sizeof(s), 123456789012ULL, 9), "123.456789012");
	assert_string_equal(dbk_prom_fmt_fixed(s, sizeof(s), 7, 0), "7");

	{
		struct dbk_prom_buf b;

		dbk_prom_init(&b);
		dbk_prom_sample_seconds(&b, "busy_seconds_total", NULL, 0, 5453564);
		assert_string_equal(b.data, "busy_seconds_total 0.005453564\n");
		dbk_prom_free(&b);
	}
}

static void test_histogram(void **state)
{
	static const uint64_t counts[] = {3, 0, 5, 2};	/* last: overflow */
	static const uint64_t bounds[] = {1, 2, 4, UINT64_MAX};
	struct dbk_prom_label l[] = {{"bdev", "D\"0"}, {"type", "read"}};
	struct dbk_prom_buf b;

	(void)state;
	dbk_prom_init(&b);
	dbk_prom_histogram_us(&b, "lat_seconds", l, 2, counts, bounds, 4, 2500000000ULL);
	assert_false(b.failed);
	assert_string_equal(b.data,
			    "lat_seconds_bucket{bdev=\"D\\\"0\",type=\"read\",le=\"0.000001\"} 3\n"
			    "lat_seconds_bucket{bdev=\"D\\\"0\",type=\"read\",le=\"0.000002\"} 3\n"
			    "lat_seconds_bucket{bdev=\"D\\\"0\",type=\"read\",le=\"0.000004\"} 8\n"
			    "lat_seconds_bucket{bdev=\"D\\\"0\",type=\"read\",le=\"+Inf\"} 10\n"
			    "lat_seconds_sum{bdev=\"D\\\"0\",type=\"read\"} 2.5\n"
			    "lat_seconds_count{bdev=\"D\\\"0\",type=\"read\"} 10\n");
	dbk_prom_free(&b);

	/* no overflow bucket, no labels: +Inf still comes, equal to the count */
	{
		static const uint64_t c2[] = {1, 1};
		static const uint64_t b2[] = {1000000, 2000000};

		dbk_prom_init(&b);
		dbk_prom_histogram_us(&b, "h", NULL, 0, c2, b2, 2, 0);
		assert_string_equal(b.data, "h_bucket{le=\"1\"} 1\nh_bucket{le=\"2\"} 2\nh_bucket{le=\"+Inf\"} 2\n"
					    "h_sum 0\nh_count 2\n");
		dbk_prom_free(&b);
	}
}

static void test_long_output_and_sanitize(void **state)
{
	struct dbk_prom_buf b;
	char n[32];

	(void)state;
	dbk_prom_init(&b);
	for (int i = 0; i < 20000; i++)
		dbk_prom_printf(&b, "line %d\n", i);
	assert_false(b.failed);
	assert_true(b.len > 100000);
	assert_int_equal(strlen(b.data), b.len);
	assert_memory_equal(b.data + b.len - 11, "line 19999\n", 11);
	dbk_prom_free(&b);

	assert_string_equal(dbk_prom_sanitize_name(n, sizeof(n), "R2Ts-sent.x"), "r2ts_sent_x");
	assert_string_equal(dbk_prom_sanitize_name(n, sizeof(n), "9lives"), "_9lives");
	assert_string_equal(dbk_prom_sanitize_name(n, 5, "abcdefgh"), "abcd");
}

/* ------------------------------------------------------------ HTTP */

static int parse(const char *s, struct dbk_http_request *r)
{
	return dbk_http_parse_request(s, strlen(s), DBK_METRICS_MAX_REQUEST, r);
}

static void test_http_ok(void **state)
{
	struct dbk_http_request r;
	const char *s = "GET /metrics?x=1 HTTP/1.1\r\nHost: a:1\r\nUser-Agent: Prometheus/2.42\r\n"
			"Accept: text/plain;version=0.0.4\r\n\r\nGET /next";

	(void)state;
	assert_int_equal(parse(s, &r), 0);
	assert_string_equal(r.method, "GET");
	assert_string_equal(r.path, "/metrics");
	assert_int_equal(r.minor, 1);
	assert_true(r.keep_alive);
	assert_int_equal(r.head_len, strlen(s) - strlen("GET /next"));

	assert_int_equal(parse("HEAD /metrics HTTP/1.1\nHost: x\nConnection: Close\n\n", &r), 0);
	assert_string_equal(r.method, "HEAD");
	assert_false(r.keep_alive);
	/* HTTP/1.0: no Host needed, closes unless keep-alive is asked for */
	assert_int_equal(parse("GET /metrics HTTP/1.0\r\n\r\n", &r), 0);
	assert_false(r.keep_alive);
	assert_int_equal(parse("GET /metrics HTTP/1.0\r\nConnection: foo, Keep-Alive\r\n\r\n", &r), 0);
	assert_true(r.keep_alive);
	assert_int_equal(parse("\r\nGET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &r), 0);
	assert_string_equal(r.path, "/");
	/* unknown methods parse (the server answers 405) */
	assert_int_equal(parse("DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
	assert_string_equal(r.method, "DELETE");
}

static void test_http_incomplete(void **state)
{
	struct dbk_http_request r;

	(void)state;
	assert_int_equal(parse("", &r), 1);
	assert_int_equal(parse("GET /metr", &r), 1);
	assert_int_equal(parse("GET /metrics HTTP/1.1\r\n", &r), 1);
	assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n", &r), 1);
	assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r", &r), 1);
}

static void test_http_bad(void **state)
{
	struct dbk_http_request r;
	static const char *const bad400[] = {
		"HELLO\r\n\r\n",
		"GET\r\n\r\n",
		"GET /metrics\r\n\r\n",				/* HTTP/0.9 */
		"GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /metrics HTTP/1.1 x\r\nHost: x\r\n\r\n",
		"GET /metrics HTTP/1.1\r\n\r\n",			/* no Host */
		"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHost x\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHo st: x\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n",
		"GET /metrics HTTP/x.y\r\nHost: x\r\n\r\n",
		"G(T /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /metrics HTTP/1.1\rHost: x\r\n\r\n",		/* bare CR */
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",	/* a TLS ClientHello: fails at once */
	};
	char nul[] = "GET /met\0rics HTTP/1.1\r\nHost: x\r\n\r\n";

	(void)state;
	for (size_t i = 0; i < sizeof(bad400) / sizeof(bad400[0]); i++) {
		int rc = parse(bad400[i], &r);

		if (rc != 400)
			fail_msg("request %zu: got %d, expected 400", i, rc);
	}
	assert_int_equal(dbk_http_parse_request(nul, sizeof(nul) - 1, DBK_METRICS_MAX_REQUEST, &r), 400);
	assert_int_equal(parse("GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n", &r), 505);
	assert_int_equal(parse("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", &r), 413);
	assert_int_equal(parse("POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", &r), 501);

	/* a head that does not fit: 413 once max bytes are in without its end */
	{
		size_t n = DBK_METRICS_MAX_REQUEST;
		char *big = malloc(n + 1);
		const char *h = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ";

		memcpy(big, h, strlen(h));
		memset(big + strlen(h), 'a', n - strlen(h));
		big[n] = '\0';
		assert_int_equal(dbk_http_parse_request(big, n - 1, n, &r), 1);
		assert_int_equal(dbk_http_parse_request(big, n, n, &r), 413);
		/* a target longer than the path buffer */
		memcpy(big, "GET /", 5);
		memset(big + 5, 'p', 400);
		strcpy(big + 405, " HTTP/1.1\r\nHost: x\r\n\r\n");
		assert_int_equal(parse(big, &r), 414);
		free(big);
	}
}

/* ------------------------------------------------------------ --metrics */

static void test_addr(void **state)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	char err[256];
	static const char *const bad[] = {"", "9100", "127.0.0.1", "127.0.0.1:", ":9100", "127.0.0.1:0",
					  "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:+80", "127.0.0.1:80x",
					  "localhost:9100", "::1:9100", "[::1]9100", "[::1", "[nope]:9100",
					  "256.0.0.1:9100"};

	(void)state;
	assert_int_equal(dbk_metrics_parse_addr("127.0.0.1:9100", &ss, &sl, err, sizeof(err)), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 9100);
	assert_int_equal(sl, sizeof(struct sockaddr_in));
	assert_int_equal(dbk_metrics_parse_addr("[::1]:65535", &ss, &sl, err, sizeof(err)), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 65535);
	assert_int_equal(dbk_metrics_parse_addr("0.0.0.0:1", &ss, &sl, err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (dbk_metrics_parse_addr(bad[i], &ss, &sl, err, sizeof(err)) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_true(strlen(err) > 10);
	}
	dbk_metrics_parse_addr("127.0.0.1:0", &ss, &sl, err, sizeof(err));
	assert_non_null(strstr(err, "1 to 65535"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_family_help_escaping),
		cmocka_unit_test(test_fixed_decimals),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_long_output_and_sanitize),
		cmocka_unit_test(test_http_ok),
		cmocka_unit_test(test_http_incomplete),
		cmocka_unit_test(test_http_bad),
		cmocka_unit_test(test_addr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
