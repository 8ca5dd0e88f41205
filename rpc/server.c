/*
 * JSON-RPC 2.0 server on a Unix stream socket, run by the main reactor.
 *
 * Framing: JSON objects back to back with no delimiter. A connection keeps an
 * input buffer; a small scanner finds where the next top-level value ends
 * (brackets, strings and escapes), then jansson parses exactly that span. An
 * unfinished value waits for more bytes; anything that is not an object or
 * array, or a complete span jansson rejects, is a parse error: we answer
 * -32700 and close once the answer is written.
 *
 * Requests on one connection run one at a time, in order, so answers come
 * back in request order even when a method answers asynchronously. Writes
 * are non-blocking with an outbound buffer (EPOLLOUT while it drains); while
 * a lot of output is pending the connection stops reading, so a slow client
 * only slows itself. A request holds a reference on its connection: a method
 * may answer after the client went away, the answer is then dropped.
 */
#include "rpc/rpc_internal.h"

#include "thread/thread.h"
#include "util/accept_guard.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define READ_CHUNK 65536
#define OUT_HIGH_WATER (4u * 1024 * 1024)

struct rpc_conn {
	int fd;
	struct dbk_fd_handler *h;
	int refs;		/* holds: the event handler running, each live request, each queued resume */
	bool closed;		/* fd closed and unregistered */
	bool close_after_flush;	/* fatal input error: close once output is written */
	bool peer_eof;		/* read() returned 0 */
	bool busy;		/* a request is being handled */
	bool in_process;	/* inside conn_process (answers need no resume) */
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_off, out_len, out_cap;
	uint32_t events;	/* currently watched */
	struct rpc_conn *next, *prev;
};

struct dbk_rpc_request {
	struct rpc_conn *conn;	/* NULL for local calls */
	json_t *id;		/* NULL: notification (no answer sent) */
	dbk_rpc_local_cb local_cb;
	void *local_ctx;
};

static struct {
	int fd;
	struct dbk_fd_handler *h;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct rpc_conn *conns;
	bool running;
	struct dbk_accept_guard guard;	/* out of fds: refuse, never spin (the transports keep headroom for us) */
} g_srv = {.fd = -1};

static uint32_t g_state = DBK_RPC_STARTUP;

void dbk_rpc_set_state(uint32_t state)
{
	g_state = state;
}

uint32_t dbk_rpc_get_state(void)
{
	return g_state;
}

/* ---------------------------------------------------------- connections */

static void conn_process(struct rpc_conn *c);
static void conn_update_events(struct rpc_conn *c);

static void conn_free(struct rpc_conn *c)
{
	free(c->in);
	free(c->out);
	free(c);
}

/*
 * Drop a hold. A connection is freed only here (or at shutdown when nothing holds it): once it is closed and
 * the last hold is gone. conn_close() never frees, so a caller holding the connection may still look at it.
 */
static void conn_put(struct rpc_conn *c)
{
	if (--c->refs > 0 || !c->closed)
		return;
	conn_free(c);
}

static void conn_close(struct rpc_conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	dbk_fd_unregister(&c->h);
	close(c->fd);
	c->fd = -1;
	if (c->prev)
		c->prev->next = c->next;
	else
		g_srv.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

/* Write what we can; closes the connection on a write error. Returns false if closed. */
static bool conn_flush(struct rpc_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_close(c);
			return false;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
		if (c->close_after_flush || (c->peer_eof && !c->busy && c->in_len == 0)) {
			conn_close(c);
			return false;
		}
	}
	return true;
}

static void conn_append(struct rpc_conn *c, const char *data, size_t len)
{
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *p;

		/* Reclaim the written prefix first. */
		if (c->out_off > 0) {
			memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		while (cap < c->out_len + len)
			cap *= 2;
		if (cap != c->out_cap) {
			p = realloc(c->out, cap);
			if (!p) {
				DBK_ERRLOG("rpc: out of memory for a response; closing the connection");
				c->close_after_flush = true;
				return;
			}
			c->out = p;
			c->out_cap = cap;
		}
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
}

static void conn_send_json(struct rpc_conn *c, json_t *resp)
{
	char *s;

	if (c->closed)
		return;
	s = json_dumps(resp, JSON_COMPACT);
	if (!s) {
		DBK_ERRLOG("rpc: cannot serialise a response");
		c->close_after_flush = true;
	} else {
		conn_append(c, s, strlen(s));
		free(s);
	}
	if (conn_flush(c))
		conn_update_events(c);
}

static void conn_update_events(struct rpc_conn *c)
{
	uint32_t ev = 0;

	if (c->closed)
		return;
	if (!c->peer_eof && !c->close_after_flush && !c->busy && c->out_len - c->out_off < OUT_HIGH_WATER)
		ev |= EPOLLIN;
	if (c->out_len > c->out_off)
		ev |= EPOLLOUT;
	if (ev != c->events) {
		c->events = ev;
		dbk_fd_modify(c->h, ev);
	}
}

static json_t *error_object(json_t *id, int code, const char *msg)
{
	return json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id ? id : json_null(), "error", "code",
			 code, "message", msg);
}

/* An error for a request we could not dispatch (parse error, invalid request). */
static void conn_send_error(struct rpc_conn *c, json_t *id, int code, const char *msg)
{
	json_t *resp = error_object(id, code, msg);

	if (resp) {
		conn_send_json(c, resp);
		json_decref(resp);
	}
}

/*
 * Find the end of the top-level value starting at buf[0] (buf[0] is not
 * whitespace). Returns its length, 0 if unfinished, -1 if it cannot be a
 * JSON object or array.
 */
static long scan_value(const char *buf, size_t len)
{
	size_t depth = 0;
	bool in_str = false, esc = false;

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
			continue;
		}
		if (ch == '"') {
			in_str = true;
		} else if (ch == '{' || ch == '[') {
			depth++;
		} else if (ch == '}' || ch == ']') {
			if (--depth == 0)
				return (long)(i + 1);
		}
	}
	return 0;
}

static bool valid_id(const json_t *id)
{
	return json_is_string(id) || json_is_integer(id) || json_is_real(id) || json_is_null(id);
}

static void handle_request(struct rpc_conn *c, json_t *msg)
{
	struct dbk_rpc_request *req;
	json_t *id = NULL, *method, *params, *ver;

	if (!json_is_object(msg)) {
		conn_send_error(c, NULL, DBK_JSONRPC_INVALID_REQUEST, "Invalid request: not a JSON object");
		return;
	}
	id = json_object_get(msg, "id");
	if (id && !valid_id(id)) {
		conn_send_error(c, NULL, DBK_JSONRPC_INVALID_REQUEST,
				"Invalid request: 'id' must be a string, a number or null");
		return;
	}
	ver = json_object_get(msg, "jsonrpc");
	if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") != 0) {
		conn_send_error(c, id, DBK_JSONRPC_INVALID_REQUEST, "Invalid request: 'jsonrpc' must be \"2.0\"");
		return;
	}
	method = json_object_get(msg, "method");
	if (!json_is_string(method)) {
		conn_send_error(c, id, DBK_JSONRPC_INVALID_REQUEST,
				"Invalid request: 'method' is missing or not a string");
		return;
	}
	params = json_object_get(msg, "params");
	if (params && !json_is_object(params) && !json_is_array(params)) {
		conn_send_error(c, id, DBK_JSONRPC_INVALID_REQUEST,
				"Invalid request: 'params' must be an object or an array");
		return;
	}
	req = calloc(1, sizeof(*req));
	if (!req) {
		conn_send_error(c, id, DBK_JSONRPC_INTERNAL_ERROR, "Out of memory");
		return;
	}
	req->conn = c;
	req->id = id ? json_incref(id) : NULL;
	c->refs++;
	c->busy = true;
	dbk_rpc_dispatch(req, json_string_value(method), params);
}

static void conn_process(struct rpc_conn *c)
{
	size_t pos = 0;

	c->in_process = true;
	while (!c->closed && !c->close_after_flush && !c->busy && c->out_len - c->out_off < OUT_HIGH_WATER) {
		json_error_t jerr;
		json_t *msg;
		long n;

		while (pos < c->in_len && (c->in[pos] == ' ' || c->in[pos] == '\t' || c->in[pos] == '\n' ||
					   c->in[pos] == '\r'))
			pos++;
		if (pos == c->in_len)
			break;
		n = scan_value(c->in + pos, c->in_len - pos);
		if (n == 0) {
			if (c->in_len - pos > DBK_RPC_MAX_REQUEST) {
				char m[96];
				snprintf(m, sizeof(m), "Request too large (limit %u bytes)", DBK_RPC_MAX_REQUEST);
				conn_send_error(c, NULL, DBK_JSONRPC_INVALID_REQUEST, m);
				c->close_after_flush = true;
			} else if (c->peer_eof) {
				conn_send_error(c, NULL, DBK_JSONRPC_PARSE_ERROR,
						"Parse error: connection closed inside a JSON value");
				c->close_after_flush = true;
			}
			break;
		}
		msg = n < 0 ? NULL : json_loadb(c->in + pos, (size_t)n, JSON_DISABLE_EOF_CHECK, &jerr);
		if (!msg) {
			char m[256];
			if (n < 0)
				snprintf(m, sizeof(m), "Parse error: a request must be a JSON object");
			else
				snprintf(m, sizeof(m), "Parse error: %s", jerr.text);
			conn_send_error(c, NULL, DBK_JSONRPC_PARSE_ERROR, m);
			c->close_after_flush = true;
			break;
		}
		pos += (size_t)n;
		handle_request(c, msg);
		json_decref(msg);
	}
	if (!c->closed) {
		if (c->close_after_flush) {
			pos = c->in_len;	/* drop the rest */
		}
		if (pos > 0) {
			memmove(c->in, c->in + pos, c->in_len - pos);
			c->in_len -= pos;
		}
		c->in_process = false;
		if (conn_flush(c))
			conn_update_events(c);
	}
}

static void conn_resume(void *ctx)
{
	struct rpc_conn *c = ctx;

	if (!c->closed && !c->in_process)
		conn_process(c);
	conn_put(c);
}

static void conn_read(struct rpc_conn *c)
{
	ssize_t n;

	if (c->in_cap - c->in_len < READ_CHUNK) {
		size_t cap = c->in_cap ? c->in_cap * 2 : READ_CHUNK * 2;
		char *p;

		while (cap - c->in_len < READ_CHUNK)
			cap *= 2;
		p = realloc(c->in, cap);
		if (!p) {
			DBK_ERRLOG("rpc: out of memory reading a request; closing the connection");
			conn_close(c);
			return;
		}
		c->in = p;
		c->in_cap = cap;
	}
	n = recv(c->fd, c->in + c->in_len, READ_CHUNK, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		conn_close(c);
		return;
	}
	if (n == 0) {
		/* Peer done sending: answer what is buffered, then close (below or in conn_flush). */
		c->peer_eof = true;
	} else {
		c->in_len += (size_t)n;
	}
	conn_process(c);
	if (!c->closed && c->peer_eof && !c->busy && c->out_len == c->out_off)
		conn_close(c);
}

static void conn_event(void *ctx, uint32_t events)
{
	struct rpc_conn *c = ctx;

	c->refs++;
	if ((events & EPOLLOUT) && !c->closed) {
		if (conn_flush(c)) {
			conn_update_events(c);
			/* Output drained below the high-water mark: continue with buffered input. */
			if (!c->busy && c->in_len > 0 && !c->closed)
				conn_process(c);
		}
	}
	if ((events & EPOLLIN) && !c->closed)
		conn_read(c);
	else if ((events & (EPOLLHUP | EPOLLERR)) && !c->closed)
		conn_close(c);
	conn_put(c);
}

int dbk_rpc_server_add_conn(int fd)
{
	struct rpc_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->fd = fd;
	c->events = EPOLLIN;
	c->h = dbk_fd_register(fd, EPOLLIN, conn_event, c, "rpc_conn");
	if (!c->h) {
		free(c);
		return -EINVAL;
	}
	c->next = g_srv.conns;
	if (c->next)
		c->next->prev = c;
	g_srv.conns = c;
	return 0;
}

static void accept_event(void *ctx, uint32_t events)
{
	(void)ctx;
	(void)events;
	for (int i = 0; i < 16; i++) {
		int fd = dbk_accept_guarded(&g_srv.guard, g_srv.fd);

		if (fd < 0) {
			if (errno == EMFILE)
				continue;	/* refused and closed; more may be waiting */
			return;
		}
		if (dbk_rpc_server_add_conn(fd) != 0) {
			close(fd);
			return;
		}
	}
}

/* --------------------------------------------------------------- server */

int dbk_rpc_server_start(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char err[256];
	struct stat st;
	mode_t old;
	int fd, rc;

	if (g_srv.running)
		return -EALREADY;
	rc = dbk_rpc_check_methods(err, sizeof(err));
	if (rc) {
		DBK_ERRLOG("rpc: %s", err);
		return rc;
	}
	if (!path || strlen(path) >= sizeof(sa.sun_path)) {
		DBK_ERRLOG("rpc: socket path '%s' is too long (max %zu bytes)", path ? path : "", sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);

	if (lstat(path, &st) == 0) {
		int probe;

		if (!S_ISSOCK(st.st_mode)) {
			DBK_ERRLOG("rpc: '%s' exists and is not a socket; refusing to replace it", path);
			return -EEXIST;
		}
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe < 0)
			return -errno;
		rc = connect(probe, (struct sockaddr *)&sa, sizeof(sa));
		close(probe);
		if (rc == 0) {
			DBK_ERRLOG("rpc: another process is serving on '%s' (is a daemon already running?)", path);
			return -EADDRINUSE;
		}
		unlink(path);	/* stale socket left by a dead daemon */
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	old = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || chmod(path, 0600) < 0 || listen(fd, 64) < 0) {
		rc = -errno;
		DBK_ERRLOG("rpc: cannot listen on '%s': %s", path, strerror(-rc));
		close(fd);
		return rc;
	}
	g_srv.h = dbk_fd_register(fd, EPOLLIN, accept_event, NULL, "rpc_listen");
	if (!g_srv.h) {
		close(fd);
		unlink(path);
		return -ENOMEM;
	}
	g_srv.fd = fd;
	dbk_accept_guard_init(&g_srv.guard, "rpc", 0);
	snprintf(g_srv.path, sizeof(g_srv.path), "%s", path);
	g_srv.running = true;
	return 0;
}

void dbk_rpc_server_stop(void)
{
	if (g_srv.running) {
		dbk_fd_unregister(&g_srv.h);
		close(g_srv.fd);
		g_srv.fd = -1;
		dbk_accept_guard_fini(&g_srv.guard);
		unlink(g_srv.path);
		g_srv.running = false;
	}
	/* Connections (also those given with dbk_rpc_server_add_conn without a listener). */
	while (g_srv.conns) {
		struct rpc_conn *c = g_srv.conns;

		conn_close(c);
		if (c->refs == 0)
			conn_free(c);	/* otherwise the last request's answer frees it */
	}
	dbk_rpc_framework_fini();
	dbk_rpc_methods_fini();
}

/* ------------------------------------------------------------ answering */

static void request_finish(struct dbk_rpc_request *req, json_t *resp)
{
	struct rpc_conn *c = req->conn;

	if (resp && req->id && !c->closed)
		conn_send_json(c, resp);
	json_decref(resp);
	json_decref(req->id);
	free(req);
	c->busy = false;
	if (!c->closed && !c->in_process) {
		/* Answered later: continue with the next buffered request from a fresh stack. */
		c->refs++;
		if (dbk_thread_send_msg(dbk_get_thread(), conn_resume, c) != 0) {
			c->refs--;
			conn_update_events(c);
		}
	}
	conn_put(c);
}

void dbk_rpc_send_result(struct dbk_rpc_request *req, json_t *result)
{
	if (!result)
		result = json_null();
	if (!req->conn) {
		req->local_cb(req->local_ctx, result, 0, NULL);
		json_decref(result);
		free(req);
		return;
	}
	if (!req->id) {
		json_decref(result);
		request_finish(req, NULL);
		return;
	}
	request_finish(req, json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", req->id, "result", result));
}

void dbk_rpc_send_bool(struct dbk_rpc_request *req, bool value)
{
	dbk_rpc_send_result(req, json_boolean(value));
}

void dbk_rpc_send_error(struct dbk_rpc_request *req, int code, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (!req->conn) {
		req->local_cb(req->local_ctx, NULL, code ? code : -1, msg ? msg : "error");
		free(msg);
		free(req);
		return;
	}
	request_finish(req, req->id ? error_object(req->id, code, msg ? msg : "error") : NULL);
	free(msg);
}

bool dbk_rpc_decode_params(struct dbk_rpc_request *req, const json_t *params, const struct dbk_json_field *fields,
			   size_t count, void *out)
{
	char err[256];

	if (dbk_json_decode_object(params, fields, count, out, err, sizeof(err)) == 0)
		return true;
	dbk_rpc_send_error(req, DBK_JSONRPC_INVALID_PARAMS, "%s", err);
	return false;
}

void dbk_rpc_dispatch(struct dbk_rpc_request *req, const char *name, const json_t *params)
{
	const struct dbk_rpc_method *m = dbk_rpc_find_method(name);

	if (!m) {
		dbk_rpc_send_error(req, DBK_JSONRPC_METHOD_NOT_FOUND, "Method not found: '%s'", name);
		return;
	}
	if (!(m->state_mask & g_state)) {
		if (g_state == DBK_RPC_STARTUP)
			dbk_rpc_send_error(req, -1,
					   "Method '%s' may only be called after initialization; call "
					   "framework_start_init first",
					   name);
		else
			dbk_rpc_send_error(req, -1, "Method '%s' may only be called at startup (--wait-for-rpc)",
					   name);
		return;
	}
	m->handler(req, params);
}

void dbk_rpc_call_local(const char *method, const json_t *params, dbk_rpc_local_cb cb, void *ctx)
{
	struct dbk_rpc_request *req = calloc(1, sizeof(*req));

	if (!req) {
		cb(ctx, NULL, -ENOMEM, "out of memory");
		return;
	}
	req->local_cb = cb;
	req->local_ctx = ctx;
	if (params && !json_is_object(params) && !json_is_array(params)) {
		dbk_rpc_send_error(req, DBK_JSONRPC_INVALID_REQUEST, "'params' must be an object or an array");
		return;
	}
	dbk_rpc_dispatch(req, method, params);
}
