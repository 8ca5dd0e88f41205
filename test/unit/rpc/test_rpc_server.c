/*
 * The JSON-RPC server against real reactors and a real Unix socket in a temp
 * dir: framing (split, merged, truncated, malformed, oversize), request
 * validation, method errors, notifications, async answers after disconnect,
 * slow clients, stale/live socket files, local calls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "rpc/rpc.h"
#include "thread/thread.h"

static char g_dir[64];
static char g_sock[128];
static pthread_t g_reactor_thread;
static sem_t g_sem;
static atomic_int g_async_done;

/* ------------------------------------------------------- test methods */

static void m_echo(struct dbk_rpc_request *req, const json_t *params)
{
	dbk_rpc_send_result(req, params ? json_deep_copy(params) : json_null());
}

struct async_ctx {
	struct dbk_rpc_request *req;
	struct dbk_poller *poller;
	json_int_t n;
};

static int async_fire(void *arg)
{
	struct async_ctx *a = arg;

	dbk_poller_unregister(&a->poller);
	dbk_rpc_send_result(a->req, json_pack("{s:I}", "n", a->n));
	free(a);
	atomic_fetch_add(&g_async_done, 1);
	return DBK_POLLER_BUSY;
}

struct async_params {
	uint32_t delay_ms;
	uint64_t n;
};
static const struct dbk_json_field async_fields[] = {
	{"delay_ms", DBK_JSON_U32, offsetof(struct async_params, delay_ms), true, NULL, 0, NULL},
	{"n", DBK_JSON_U64, offsetof(struct async_params, n), false, NULL, 0, NULL},
};

/* Answers after delay_ms from a poller. */
static void m_async(struct dbk_rpc_request *req, const json_t *params)
{
	struct async_params p = {0};
	struct async_ctx *a;

	if (!dbk_rpc_decode_params(req, params, async_fields, DBK_COUNTOF(async_fields), &p))
		return;
	a = calloc(1, sizeof(*a));
	a->req = req;
	a->n = (json_int_t)p.n;
	a->poller = dbk_poller_register(async_fire, a, (uint64_t)p.delay_ms * 1000, "test_async");
}

static void m_fail(struct dbk_rpc_request *req, const json_t *params)
{
	(void)params;
	dbk_rpc_send_error(req, -ENOENT, "pool '%s' not found", "x");
}

static void m_startup_only(struct dbk_rpc_request *req, const json_t *params)
{
	(void)params;
	dbk_rpc_send_bool(req, true);
}

static const struct dbk_rpc_method g_test_methods[] = {
	{"test_echo", m_echo, DBK_RPC_STARTUP | DBK_RPC_RUNTIME},
	{"test_async", m_async, DBK_RPC_STARTUP | DBK_RPC_RUNTIME},
	{"test_fail", m_fail, DBK_RPC_RUNTIME},
	{"test_startup_only", m_startup_only, DBK_RPC_STARTUP},
	{NULL, NULL, 0},
};

/* ------------------------------------------------------- harness */

static int g_start_rc;
static int g_dup_rc, g_check_rc;

static void start_on_main(void *ctx)
{
	(void)ctx;
	g_start_rc = dbk_rpc_register_methods(g_test_methods);
	if (g_start_rc == 0)
		g_start_rc = dbk_rpc_server_start(g_sock);
	sem_post(&g_sem);
}

static void *reactor_main(void *arg)
{
	(void)arg;
	dbk_reactors_start(start_on_main, NULL);
	return NULL;
}

struct call_main {
	void (*fn)(void *);
	void *arg;
};

static void call_main_fn(void *ctx)
{
	struct call_main *c = ctx;

	c->fn(c->arg);
	sem_post(&g_sem);
}

/* Run fn(arg) on the main reactor and wait for it. */
static void run_on_main(void (*fn)(void *), void *arg)
{
	struct call_main c = {fn, arg};

	assert_int_equal(dbk_thread_send_msg(dbk_reactor_thread(0), call_main_fn, &c), 0);
	sem_wait(&g_sem);
}

static void stop_on_main(void *ctx)
{
	(void)ctx;
	dbk_rpc_server_stop();
	dbk_reactors_stop();
}

static int setup(void **state)
{
	struct dbk_reactor_opts o = {.num_cores = 2, .cores = {0, 1}, .pin = false};

	(void)state;
	snprintf(g_dir, sizeof(g_dir), "/tmp/dbk_rpc_test.XXXXXX");
	if (!mkdtemp(g_dir))
		return -1;
	snprintf(g_sock, sizeof(g_sock), "%s/rpc.sock", g_dir);
	sem_init(&g_sem, 0, 0);
	if (dbk_reactors_init(&o) != 0)
		return -1;
	pthread_create(&g_reactor_thread, NULL, reactor_main, NULL);
	sem_wait(&g_sem);
	return g_start_rc;
}

static int teardown(void **state)
{
	(void)state;
	dbk_thread_send_msg(dbk_reactor_thread(0), stop_on_main, NULL);
	pthread_join(g_reactor_thread, NULL);
	dbk_reactors_fini();
	rmdir(g_dir);
	return 0;
}

/* ------------------------------------------------------- client side */

struct client {
	int fd;
	char buf[1 << 16];
	size_t len;
};

static void client_open(struct client *c)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	c->len = 0;
	c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(c->fd >= 0);
	strcpy(sa.sun_path, g_sock);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

static void client_close(struct client *c)
{
	close(c->fd);
	c->fd = -1;
}

static void send_str(struct client *c, const char *s, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(c->fd, s + off, len - off, MSG_NOSIGNAL);
		assert_true(n > 0);
		off += (size_t)n;
	}
}

static void send_text(struct client *c, const char *s)
{
	send_str(c, s, strlen(s));
}

/*
 * Next response within timeout_ms: a JSON object, NULL on timeout. If eof is
 * given, *eof is set when the server closed the connection instead.
 */
static json_t *recv_json(struct client *c, int timeout_ms, bool *eof)
{
	if (eof)
		*eof = false;
	for (;;) {
		size_t skip = 0;

		while (skip < c->len && (c->buf[skip] == ' ' || c->buf[skip] == '\n'))
			skip++;
		memmove(c->buf, c->buf + skip, c->len - skip);
		c->len -= skip;
		if (c->len > 0) {
			json_error_t jerr;
			json_t *j = json_loadb(c->buf, c->len, JSON_DISABLE_EOF_CHECK, &jerr);

			if (j) {
				size_t used = (size_t)jerr.position;

				memmove(c->buf, c->buf + used, c->len - used);
				c->len -= used;
				return j;
			}
		}
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		if (poll(&p, 1, timeout_ms) <= 0)
			return NULL;
		ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n <= 0) {
			if (eof)
				*eof = true;
			else
				fail_msg("server closed the connection");
			return NULL;
		}
		c->len += (size_t)n;
	}
}

/* Server closes the connection (after anything buffered). */
static void expect_closed(struct client *c)
{
	bool eof = false;
	json_t *j = recv_json(c, 2000, &eof);

	assert_null(j);
	assert_true(eof);
}

static void expect_result(json_t *resp, json_int_t id)
{
	assert_non_null(resp);
	assert_true(json_is_integer(json_object_get(resp, "id")));
	assert_int_equal(json_integer_value(json_object_get(resp, "id")), id);
	assert_string_equal(json_string_value(json_object_get(resp, "jsonrpc")), "2.0");
	assert_non_null(json_object_get(resp, "result"));
	assert_null(json_object_get(resp, "error"));
}

/* Error code and a message containing msg_part; id given as JSON text ("null", "3"). */
static void expect_error(json_t *resp, const char *id_json, int code, const char *msg_part)
{
	json_t *err, *want_id = json_loads(id_json, JSON_DECODE_ANY, NULL);

	assert_non_null(resp);
	err = json_object_get(resp, "error");
	assert_non_null(err);
	assert_true(json_equal(json_object_get(resp, "id"), want_id));
	assert_int_equal(json_integer_value(json_object_get(err, "code")), code);
	if (!strstr(json_string_value(json_object_get(err, "message")), msg_part))
		fail_msg("message '%s' lacks '%s'", json_string_value(json_object_get(err, "message")), msg_part);
	json_decref(want_id);
	json_decref(resp);
}

static const char *REQ1 = "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"params\":{\"a\":[1,\"}{\\\"\"]},\"id\":1}";

/* ------------------------------------------------------- tests */

static void test_basic_and_ids(void **state)
{
	struct client c;
	json_t *r;

	(void)state;
	client_open(&c);
	send_text(&c, REQ1);
	r = recv_json(&c, 2000, NULL);
	expect_result(r, 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(json_object_get(r, "result"), "a"), 1)),
			    "}{\"");
	json_decref(r);
	send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"spdk_get_version\",\"id\":\"abc\"}");
	r = recv_json(&c, 2000, NULL);
	assert_string_equal(json_string_value(json_object_get(r, "id")), "abc");
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "result"), "version")),
			    "daosblk v0.1.0");
	json_decref(r);
	client_close(&c);
}

static void test_split_byte_by_byte(void **state)
{
	struct client c;
	json_t *r;

	(void)state;
	client_open(&c);
	for (size_t i = 0; i < strlen(REQ1); i++) {
		struct timespec ts = {0, 200000};
		send_str(&c, REQ1 + i, 1);
		nanosleep(&ts, NULL);
		if (i + 1 < strlen(REQ1)) {
			/* Nothing may be answered before the value is complete. */
			struct pollfd p = {.fd = c.fd, .events = POLLIN};
			assert_int_equal(poll(&p, 1, 0), 0);
		}
	}
	r = recv_json(&c, 2000, NULL);
	expect_result(r, 1);
	json_decref(r);
	client_close(&c);
}

static void test_merged_in_order(void **state)
{
	struct client c;
	json_t *r;

	(void)state;
	client_open(&c);
	/* An async request, then two quick ones, in one write: answers in request order. */
	send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_async\",\"params\":{\"delay_ms\":50,\"n\":7},\"id\":10}"
		      "\n{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":11}"
		      "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"params\":[1],\"id\":12}");
	r = recv_json(&c, 2000, NULL);
	expect_result(r, 10);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "result"), "n")), 7);
	json_decref(r);
	r = recv_json(&c, 2000, NULL);
	expect_result(r, 11);
	json_decref(r);
	r = recv_json(&c, 2000, NULL);
	expect_result(r, 12);
	json_decref(r);
	client_close(&c);
}

static void test_truncated_waits(void **state)
{
	struct client c;
	size_t half = strlen(REQ1) / 2;
	json_t *r;

	(void)state;
	client_open(&c);
	send_str(&c, REQ1, half);
	assert_null(recv_json(&c, 200, NULL));
	send_text(&c, REQ1 + half);
	r = recv_json(&c, 2000, NULL);
	expect_result(r, 1);
	json_decref(r);
	/* Truncated inside a multi-byte UTF-8 character and a literal. */
	send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"params\":{\"s\":\"\xc3");
	assert_null(recv_json(&c, 100, NULL));
	send_text(&c, "\xa9\",\"t\":tr");
	assert_null(recv_json(&c, 100, NULL));
	send_text(&c, "ue},\"id\":2}");
	r = recv_json(&c, 2000, NULL);
	expect_result(r, 2);
	json_decref(r);
	client_close(&c);
}

static void test_malformed_closes(void **state)
{
	static const char *const bad[] = {
		"{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":1,}",
		"garbage",
		"{\"a\":tx}",
		"\x01\x02\x03{}",
		"{\"a\":1]",
		"123",
	};
	struct client c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		client_open(&c);
		/* A good request first: it is answered before the bad bytes close the connection. */
		send_text(&c, REQ1);
		send_text(&c, bad[i]);
		json_t *r = recv_json(&c, 2000, NULL);
		expect_result(r, 1);
		json_decref(r);
		expect_error(recv_json(&c, 2000, NULL), "null", DBK_JSONRPC_PARSE_ERROR, "Parse error");
		expect_closed(&c);
		client_close(&c);
	}
}

static void test_invalid_requests(void **state)
{
	struct client c;

	(void)state;
	client_open(&c);
	send_text(&c, "[1,2]");
	expect_error(recv_json(&c, 2000, NULL), "null", DBK_JSONRPC_INVALID_REQUEST, "not a JSON object");
	send_text(&c, "{\"method\":\"test_echo\",\"id\":3}");
	expect_error(recv_json(&c, 2000, NULL), "3", DBK_JSONRPC_INVALID_REQUEST, "jsonrpc");
	send_text(&c, "{\"jsonrpc\":\"1.0\",\"method\":\"test_echo\",\"id\":3}");
	expect_error(recv_json(&c, 2000, NULL), "3", DBK_JSONRPC_INVALID_REQUEST, "jsonrpc");
	send_text(&c, "{\"jsonrpc\":\"2.0\",\"id\":4}");
	expect_error(recv_json(&c, 2000, NULL), "4", DBK_JSONRPC_INVALID_REQUEST, "method");
	send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":5,\"id\":5}");
	expect_error(recv_json(&c, 2000, NULL), "5", DBK_JSONRPC_INVALID_REQUEST, "method");
	send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"params\":\"x\",\"id\":6}");
	expect_error(recv_json(&c, 2000, NULL), "6", DBK_JSONRPC_INVALID_REQUEST, "params");
	send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":{}}");
	expect_error(recv_json(&c, 2000, NULL), "null", DBK_JSONRPC_INVALID_REQUEST, "id");
	send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"no_such_method\",\"id\":7}");
	expect_error(recv_json(&c, 2000, NULL), "7", DBK_JSONRPC_METHOD_NOT_FOUND, "no_such_method");
	send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_async\",\"params\":{\"delay_ms\":-1},\"id\":8}");
	expect_error(recv_json(&c, 2000, NULL), "8", DBK_JSONRPC_INVALID_PARAMS, "'delay_ms'");
	send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_async\",\"params\":{},\"id\":9}");
	expect_error(recv_json(&c, 2000, NULL), "9", DBK_JSONRPC_INVALID_PARAMS,
		     "missing required parameter 'delay_ms'");
	send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_fail\",\"id\":10}");
	expect_error(recv_json(&c, 2000, NULL), "10", -ENOENT, "pool 'x' not found");
	send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_startup_only\",\"id\":11}");
	expect_error(recv_json(&c, 2000, NULL), "11", -1, "only be called at startup");
	send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"spdk_get_version\",\"params\":{\"x\":1},\"id\":12}");
	expect_error(recv_json(&c, 2000, NULL), "12", DBK_JSONRPC_INVALID_PARAMS, "unknown parameter 'x'");
	send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"framework_get_config\",\"params\":{\"name\":\"zz\"},\"id\":13}");
	expect_error(recv_json(&c, 2000, NULL), "13", -ENODEV, "subsystem 'zz' not found");
	/* The connection survived all of that. */
	send_text(&c, REQ1);
	json_t *r = recv_json(&c, 2000, NULL);
	expect_result(r, 1);
	json_decref(r);
	client_close(&c);
}

static void test_notifications(void **state)
{
	struct client c;
	json_t *r;

	(void)state;
	client_open(&c);
	atomic_store(&g_async_done, 0);
	send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\"}"
		      "{\"jsonrpc\":\"2.0\",\"method\":\"test_async\",\"params\":{\"delay_ms\":10}}"
		      "{\"jsonrpc\":\"2.0\",\"method\":\"no_such_method\"}"
		      "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":20}");
	r = recv_json(&c, 2000, NULL);
	expect_result(r, 20);
	json_decref(r);
	assert_int_equal(atomic_load(&g_async_done), 1);
	assert_null(recv_json(&c, 100, NULL));
	client_close(&c);
}

static void test_oversize(void **state)
{
	struct client c;
	size_t total = 5u * 1024 * 1024;
	char *big = malloc(65536);

	(void)state;
	memset(big, 'x', 65536);
	client_open(&c);
	send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"params\":{\"s\":\"");
	for (size_t sent = 0; sent < total; sent += 65536) {
		ssize_t n = send(c.fd, big, 65536, MSG_NOSIGNAL);
		if (n <= 0)
			break;	/* the server closed on us: fine */
	}
	free(big);
	expect_error(recv_json(&c, 5000, NULL), "null", DBK_JSONRPC_INVALID_REQUEST, "too large");
	expect_closed(&c);
	client_close(&c);
}

static void test_disconnect_before_async_answer(void **state)
{
	struct client c, d;
	json_t *r;

	(void)state;
	atomic_store(&g_async_done, 0);
	client_open(&c);
	send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"test_async\",\"params\":{\"delay_ms\":100},\"id\":1}"
		      "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":2}");
	usleep(20000);
	client_close(&c);
	for (int i = 0; i < 200 && atomic_load(&g_async_done) == 0; i++)
		usleep(10000);
	assert_int_equal(atomic_load(&g_async_done), 1);
	/* The server is fine and serves others. */
	client_open(&d);
	send_text(&d, REQ1);
	r = recv_json(&d, 2000, NULL);
	expect_result(r, 1);
	json_decref(r);
	client_close(&d);
}

static void test_slow_client_does_not_stall_others(void **state)
{
	struct client slow, fast;
	char *req = "{\"jsonrpc\":\"2.0\",\"method\":\"framework_get_reactors\",\"id\":1}";
	int sent = 0;

	(void)state;
	client_open(&slow);
	/* Pipeline requests and never read: the server's output for this client piles up. */
	for (int i = 0; i < 20000; i++) {
		ssize_t n = send(slow.fd, req, strlen(req), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n != (ssize_t)strlen(req))
			break;
		sent++;
	}
	assert_true(sent > 100);
	client_open(&fast);
	for (int i = 0; i < 20; i++) {
		send_text(&fast, REQ1);
		json_t *r = recv_json(&fast, 2000, NULL);
		expect_result(r, 1);
		json_decref(r);
	}
	client_close(&fast);
	client_close(&slow);
}

static void test_many_clients(void **state)
{
	struct client c[16];

	(void)state;
	for (int i = 0; i < 16; i++)
		client_open(&c[i]);
	for (int i = 0; i < 16; i++) {
		char req[128];
		snprintf(req, sizeof(req), "{\"jsonrpc\":\"2.0\",\"method\":\"test_echo\",\"id\":%d}", 100 + i);
		send_text(&c[i], req);
	}
	for (int i = 15; i >= 0; i--) {
		json_t *r = recv_json(&c[i], 2000, NULL);
		expect_result(r, 100 + i);
		json_decref(r);
		client_close(&c[i]);
	}
}

static void test_socket_mode(void **state)
{
	struct stat st;

	(void)state;
	assert_int_equal(stat(g_sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
}

/* Server start on a live, stale or non-socket path. */
static int g_rc;
static char g_path[160];

static void try_start(void *arg)
{
	(void)arg;
	g_rc = dbk_rpc_server_start(g_path);
}

static void stop_srv(void *arg)
{
	(void)arg;
	dbk_rpc_server_stop();
}

static void test_socket_files(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;

	(void)state;
	snprintf(g_path, sizeof(g_path), "%s", g_sock);
	run_on_main(try_start, NULL);
	assert_int_equal(g_rc, -EALREADY);
	run_on_main(stop_srv, NULL);
	assert_int_equal(stat(g_sock, &st), -1);	/* stop removes the socket file */

	/* A live socket of someone else (we play the other daemon): refused, left alone. */
	snprintf(g_path, sizeof(g_path), "%s/other.sock", g_dir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sa.sun_path, g_path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	run_on_main(try_start, NULL);
	assert_int_equal(g_rc, -EADDRINUSE);
	assert_int_equal(stat(g_path, &st), 0);
	/* The other daemon died without removing its socket: stale, replaced. */
	close(fd);
	run_on_main(try_start, NULL);
	assert_int_equal(g_rc, 0);
	run_on_main(stop_srv, NULL);

	/* A regular file is never replaced. */
	snprintf(g_path, sizeof(g_path), "%s/file", g_dir);
	fclose(fopen(g_path, "w"));
	run_on_main(try_start, NULL);
	assert_int_equal(g_rc, -EEXIST);
	unlink(g_path);

	/* A path too long for a Unix socket. */
	memset(g_path, 'a', sizeof(g_path) - 1);
	g_path[sizeof(g_path) - 1] = '\0';
	g_path[0] = '/';
	run_on_main(try_start, NULL);
	assert_int_equal(g_rc, -ENAMETOOLONG);
}

/* framework_wait_init answers only once initialisation is done. */
static void init_done(void *arg)
{
	(void)arg;
	dbk_rpc_framework_init_done(0);
}

static void test_wait_init(void **state)
{
	struct client c, d;
	json_t *r;

	(void)state;
	client_open(&c);
	client_open(&d);
	send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"framework_wait_init\",\"id\":1}");
	/* Startup state: runtime-only methods refused, startup ones allowed. */
	send_text(&d, "{\"jsonrpc\":\"2.0\",\"method\":\"test_fail\",\"id\":2}");
	expect_error(recv_json(&d, 2000, NULL), "2", -1, "framework_start_init");
	send_text(&d, "{\"jsonrpc\":\"2.0\",\"method\":\"rpc_get_methods\",\"params\":{\"current\":true},\"id\":3}");
	r = recv_json(&d, 2000, NULL);
	expect_result(r, 3);
	{
		json_t *v;
		size_t i;
		bool startup_only = false, fail = false;
		json_array_foreach(json_object_get(r, "result"), i, v) {
			startup_only |= strcmp(json_string_value(v), "test_startup_only") == 0;
			fail |= strcmp(json_string_value(v), "test_fail") == 0;
		}
		assert_true(startup_only);
		assert_false(fail);
	}
	json_decref(r);
	assert_null(recv_json(&c, 200, NULL));
	/* A client that gave up waiting: its request is freed when answered. */
	client_close(&d);
	run_on_main(init_done, NULL);
	r = recv_json(&c, 2000, NULL);
	expect_result(r, 1);
	assert_true(json_is_true(json_object_get(r, "result")));
	json_decref(r);
	/* Now answered at once. */
	send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"framework_wait_init\",\"id\":4}");
	r = recv_json(&c, 2000, NULL);
	expect_result(r, 4);
	json_decref(r);
	client_close(&c);
}

/* Duplicate method names are refused. */
static const struct dbk_rpc_method g_dup_methods[] = {
	{"spdk_get_version", m_echo, DBK_RPC_RUNTIME},
	{NULL, NULL, 0},
};

static void try_register_dup(void *arg)
{
	char err[128] = "";

	(void)arg;
	g_dup_rc = dbk_rpc_register_methods(g_dup_methods);
	g_check_rc = dbk_rpc_check_methods(err, sizeof(err));
}

static void test_duplicate_methods(void **state)
{
	(void)state;
	run_on_main(try_register_dup, NULL);
	assert_int_equal(g_dup_rc, -EEXIST);
	assert_int_equal(g_check_rc, 0);
	assert_non_null(dbk_rpc_find_method("framework_get_config"));
	assert_null(dbk_rpc_find_method("no_such"));
}

/* dbk_rpc_call_local: sync, async and unknown methods. */
struct local_res {
	json_t *result;
	int code;
	char msg[128];
	bool done;
};
static struct local_res g_local;
static const char *g_local_method;
static json_t *g_local_params;

static void local_cb(void *ctx, const json_t *result, int code, const char *msg)
{
	struct local_res *l = ctx;

	l->result = result ? json_deep_copy(result) : NULL;
	l->code = code;
	snprintf(l->msg, sizeof(l->msg), "%s", msg ? msg : "");
	l->done = true;
	sem_post(&g_sem);
}

static void local_call(void *arg)
{
	(void)arg;
	dbk_rpc_call_local(g_local_method, g_local_params, local_cb, &g_local);
}

static void run_local(const char *method, const char *params)
{
	memset(&g_local, 0, sizeof(g_local));
	g_local_method = method;
	g_local_params = params ? json_loads(params, 0, NULL) : NULL;
	run_on_main(local_call, NULL);
	sem_wait(&g_sem);	/* local_cb */
	json_decref(g_local_params);
}

static void test_call_local(void **state)
{
	(void)state;
	run_local("test_echo", "{\"x\":1}");
	assert_int_equal(g_local.code, 0);
	assert_int_equal(json_integer_value(json_object_get(g_local.result, "x")), 1);
	json_decref(g_local.result);
	run_local("test_async", "{\"delay_ms\":20,\"n\":5}");
	assert_int_equal(g_local.code, 0);
	assert_int_equal(json_integer_value(json_object_get(g_local.result, "n")), 5);
	json_decref(g_local.result);
	run_local("test_fail", NULL);
	assert_int_equal(g_local.code, -ENOENT);
	assert_string_equal(g_local.msg, "pool 'x' not found");
	run_local("nope", NULL);
	assert_int_equal(g_local.code, DBK_JSONRPC_METHOD_NOT_FOUND);
	run_local("test_async", "{\"delay_ms\":\"x\"}");
	assert_int_equal(g_local.code, DBK_JSONRPC_INVALID_PARAMS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wait_init),
		cmocka_unit_test(test_basic_and_ids),
		cmocka_unit_test(test_split_byte_by_byte),
		cmocka_unit_test(test_merged_in_order),
		cmocka_unit_test(test_truncated_waits),
		cmocka_unit_test(test_malformed_closes),
		cmocka_unit_test(test_invalid_requests),
		cmocka_unit_test(test_notifications),
		cmocka_unit_test(test_oversize),
		cmocka_unit_test(test_disconnect_before_async_answer),
		cmocka_unit_test(test_slow_client_does_not_stall_others),
		cmocka_unit_test(test_many_clients),
		cmocka_unit_test(test_socket_mode),
		cmocka_unit_test(test_call_local),
		cmocka_unit_test(test_duplicate_methods),
		cmocka_unit_test(test_socket_files),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
