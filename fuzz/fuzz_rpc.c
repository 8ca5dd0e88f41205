/*
 * Fuzz harness: the JSON-RPC server from raw bytes.
 *
 * The input is what a local client writes on the RPC socket: JSON-RPC
 * requests back to back (SPDK framing), delivered through a socketpair in
 * chunks split at points drawn from the input itself. The real server
 * (rpc/server.c framing and dispatch), the params decoder (rpc/json_decode.c)
 * and every method run against a real, daemon-less target core in this
 * process: the bdev layer (malloc, null, uring, daos on the local engine in a
 * scratch directory) and the NVMe-oF target with its TCP transport, in a
 * network namespace of its own, so a listener an input asks for never touches
 * the host's network. After each input the connection is closed and the whole
 * core torn down, so nothing carries over to the next input.
 *
 * Oracle besides the sanitizers: everything the server writes back must be a
 * sequence of JSON-RPC 2.0 response objects.
 */
#include "fuzz/common/fuzz_env.h"

#include "bdev/daos/bdev_daos.h"
#include "rpc/rpc.h"
#include "thread/thread.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define OUT_CHECK_MAX (1u << 20)	/* responses kept for the check (the rest is drained unchecked) */

static char *g_out;
static size_t g_out_len;
static bool g_out_truncated;

static void shutdown_fn(void *ctx)
{
	(void)ctx;	/* spdk_kill_instance: nothing to stop in-process */
}

/* Read what the server wrote; true once it closed its end. */
static bool drain(int fd)
{
	char buf[65536];
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		size_t take = (size_t)n;

		if (g_out_len + take > OUT_CHECK_MAX) {
			take = OUT_CHECK_MAX - g_out_len;
			g_out_truncated = true;
		}
		memcpy(g_out + g_out_len, buf, take);
		g_out_len += take;
	}
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* Every byte the server wrote is part of a JSON-RPC 2.0 response object. */
static void check_responses(void)
{
	size_t pos = 0;

	while (pos < g_out_len) {
		json_error_t err;
		json_t *r = json_loadb(g_out + pos, g_out_len - pos, JSON_DISABLE_EOF_CHECK, &err);

		if (!r) {
			if (g_out_truncated)
				return;	/* cut by our cap */
			fprintf(fuzz_stderr, "fuzz_rpc: the server wrote something that is not JSON at byte %zu: %s\n", pos,
				err.text);
			abort();
		}
		if (!json_is_object(r) || !json_is_string(json_object_get(r, "jsonrpc")) ||
		    strcmp(json_string_value(json_object_get(r, "jsonrpc")), "2.0") != 0 ||
		    !json_object_get(r, "id") ||
		    !json_object_get(r, "result") == !json_object_get(r, "error")) {
			fprintf(fuzz_stderr, "fuzz_rpc: malformed response at byte %zu\n", pos);
			abort();
		}
		json_decref(r);
		pos += err.position;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	(void)argc;
	(void)argv;
	fuzz_env_init(FUZZ_NETNS);
	if (dbk_bdev_daos_set_engine("local", fuzz_tmpdir(), err, sizeof(err)) != 0) {
		fprintf(fuzz_stderr, "fuzz_rpc: %s\n", err);
		abort();
	}
	g_out = malloc(OUT_CHECK_MAX);
	if (!g_out)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rng rng;
	size_t off = 0;
	int sv[2];

	fuzz_core_up();
	dbk_rpc_framework_init_done(0);
	dbk_rpc_set_shutdown_fn(shutdown_fn, NULL);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	if (dbk_rpc_server_add_conn(sv[0]) != 0)
		abort();
	g_out_len = 0;
	g_out_truncated = false;
	fuzz_rng_seed(&rng, data, size);
	while (off < size) {
		size_t len = fuzz_rng_chunk(&rng, size - off);
		ssize_t n = send(sv[1], data + off, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			break;	/* the server closed the connection */
		if (n > 0)
			off += (size_t)n;
		fuzz_poll_idle();
		drain(sv[1]);
	}
	/* End of input: the client stops sending, then reads the rest and hangs up. */
	shutdown(sv[1], SHUT_WR);
	uint64_t deadline = dbk_get_ns() + 30ull * 1000 * 1000 * 1000;
	for (;;) {
		fuzz_poll_idle();
		if (drain(sv[1]))
			break;
		fuzz_poll_skip();	/* a method waiting on a timer (bdev_get_bdevs "timeout") answers now */
		if (dbk_get_ns() > deadline) {
			fprintf(fuzz_stderr, "fuzz_rpc: the server never closed the connection after the client's EOF\n");
			abort();
		}
	}
	close(sv[1]);
	fuzz_poll_idle();
	check_responses();
	dbk_rpc_server_stop();
	fuzz_core_down();
	return 0;
}
