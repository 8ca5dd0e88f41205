/* The JSON-RPC client side of daosblk's tools (see rpc_client.h). */
#include "tools/rpc/rpc_client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

double dbk_rpc_client_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_server(struct dbk_rpc_client *c)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(c->sock) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "%s: socket path too long: %s\n", c->prog, c->sock);
		return -1;
	}
	strcpy(sa.sun_path, c->sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "%s: cannot connect to %s: %s (is daosblk-tgt running? -s selects the socket)\n", c->prog,
			c->sock, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	c->fd = fd;
	return 0;
}

/* Length of the complete JSON object/array at the start of buf, 0 if unfinished, -1 if garbage. */
static long scan_value(const char *buf, size_t len)
{
	size_t depth = 0;
	bool in_str = false, esc = false;

	if (len == 0)
		return 0;
	if (buf[0] != '{' && buf[0] != '[')
		return -1;
	for (size_t i = 0; i < len; i++) {
		char ch = buf[i];

		if (in_str) {
			if (esc)
				esc = false;
			else if (ch == '\\')
				esc = true;
			else if (ch == '"')
				in_str = false;
		} else if (ch == '"') {
			in_str = true;
		} else if (ch == '{' || ch == '[') {
			depth++;
		} else if ((ch == '}' || ch == ']') && --depth == 0) {
			return (long)(i + 1);
		}
	}
	return 0;
}

/* Read one response (back-to-back framing: keep any extra bytes for the next). NULL on failure. */
static json_t *read_response(struct dbk_rpc_client *c, double deadline)
{
	for (;;) {
		size_t skip = 0;
		long n;

		while (skip < c->len && strchr(" \t\r\n", c->buf[skip]))
			skip++;
		if (skip > 0) {
			memmove(c->buf, c->buf + skip, c->len - skip);
			c->len -= skip;
		}
		n = scan_value(c->buf, c->len);
		if (n < 0) {
			fprintf(stderr, "%s: the server sent something that is not JSON\n", c->prog);
			return NULL;
		}
		if (n > 0) {
			json_error_t jerr;
			json_t *resp = json_loadb(c->buf, (size_t)n, JSON_DISABLE_EOF_CHECK, &jerr);

			memmove(c->buf, c->buf + n, c->len - (size_t)n);
			c->len -= (size_t)n;
			if (!resp)
				fprintf(stderr, "%s: invalid JSON from the server: %s\n", c->prog, jerr.text);
			return resp;
		}
		if (c->cap - c->len < 65536) {
			size_t cap = c->cap ? c->cap * 2 : 131072;
			char *p = realloc(c->buf, cap);

			if (!p) {
				fprintf(stderr, "%s: out of memory\n", c->prog);
				return NULL;
			}
			c->buf = p;
			c->cap = cap;
		}
		double left = deadline - dbk_rpc_client_now();
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		int prc;

		if (left <= 0) {
			fprintf(stderr, "%s: timed out after %g s waiting for the answer (-t changes the limit)\n", c->prog,
				c->timeout_s);
			return NULL;
		}
		prc = poll(&pfd, 1, left > 1e6 ? 1000000000 : (int)(left * 1000) + 1);
		if (prc < 0 && errno == EINTR)
			continue;
		if (prc <= 0)
			continue;
		ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "%s: the server closed the connection without answering%s%s\n", c->prog,
				r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
			return NULL;
		}
		c->len += (size_t)r;
	}
}

/*
 * Call method with params (borrowed, may be NULL). Returns the result (new
 * reference) or NULL; on a JSON-RPC error *code / *msg (malloc'ed) are set.
 * *code == 0 with NULL result: transport failure (already reported).
 */
json_t *dbk_rpc_client_call(struct dbk_rpc_client *c, const char *method, json_t *params, int *code, char **msg)
{
	json_t *req, *resp, *err, *result;
	char *text;
	size_t off = 0, len;
	int id = c->next_id++;

	*code = 0;
	*msg = NULL;
	if (c->fd < 0 && connect_server(c) != 0)
		return NULL;
	req = json_pack("{s:s, s:s, s:i}", "jsonrpc", "2.0", "method", method, "id", id);
	if (params)
		json_object_set(req, "params", params);
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!text) {
		fprintf(stderr, "%s: out of memory\n", c->prog);
		return NULL;
	}
	if (c->verbose)
		fprintf(stderr, "request: %s\n", text);
	len = strlen(text);
	while (off < len) {
		ssize_t n = send(c->fd, text + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "%s: sending to %s failed: %s\n", c->prog, c->sock, strerror(errno));
			free(text);
			return NULL;
		}
		off += (size_t)n;
	}
	free(text);
	resp = read_response(c, dbk_rpc_client_now() + c->timeout_s);
	if (!resp)
		return NULL;
	if (c->verbose) {
		char *s = json_dumps(resp, JSON_COMPACT);
		fprintf(stderr, "response: %s\n", s ? s : "?");
		free(s);
	}
	err = json_object_get(resp, "error");
	if (err) {
		json_t *c = json_object_get(err, "code"), *m = json_object_get(err, "message");

		*code = json_is_integer(c) ? (int)json_integer_value(c) : -32603;
		*msg = strdup(json_is_string(m) ? json_string_value(m) : "(no message)");
		json_decref(resp);
		return NULL;
	}
	result = json_object_get(resp, "result");
	if (!result) {
		fprintf(stderr, "%s: the answer has neither result nor error\n", c->prog);
		json_decref(resp);
		return NULL;
	}
	json_incref(result);
	json_decref(resp);
	return result;
}

void dbk_rpc_client_close(struct dbk_rpc_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
}
