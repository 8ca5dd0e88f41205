/*
 * The metrics HTTP endpoint: HTTP/1.0 and 1.1 on a TCP socket, run by the main reactor like the JSON-RPC
 * server (rpc/server.c): non-blocking sockets watched with fd handlers, never a blocking call.
 *
 * GET /metrics (HEAD too) answers the Prometheus text format from dbk_metrics_collect(); anything else is
 * 404 (other paths), 405 (other methods) or, for a request that is not HTTP/1.x or is malformed, 400 / 413
 * / 414 / 501 / 505 and the connection is closed once the answer is written. A request head is at most
 * DBK_METRICS_MAX_REQUEST bytes in a fixed per-connection buffer; requests on one connection are answered
 * one at a time, in order (keep-alive and pipelining work; no reading while a scrape is being gathered or
 * an answer is being sent). At most DBK_METRICS_MAX_CONNS connections; one that sends no complete request
 * or takes no data for DBK_METRICS_IDLE_MS is closed (a 1 s poller, registered only while connections exist).
 */
#include "rpc/metrics.h"

#include "thread/thread.h"
#include "util/accept_guard.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------ address */

int dbk_metrics_parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *sslen, char *err,
			   size_t errlen)
{
	char host[64];
	const char *colon, *port;
	unsigned long p;
	char *end;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (!spec || !*spec) {
		snprintf(err, errlen, "empty address (expected ADDR:PORT, e.g. 127.0.0.1:9100 or [::1]:9100)");
		return -EINVAL;
	}
	if (spec[0] == '[') {
		const char *rb = strchr(spec, ']');

		if (!rb || rb[1] != ':') {
			snprintf(err, errlen, "'%s': an IPv6 address goes in brackets: [ADDR]:PORT", spec);
			return -EINVAL;
		}
		hl = (size_t)(rb - spec - 1);
		if (hl >= sizeof(host))
			hl = sizeof(host) - 1;
		memcpy(host, spec + 1, hl);
		host[hl] = '\0';
		port = rb + 2;
	} else {
		colon = strrchr(spec, ':');
		if (!colon) {
			snprintf(err, errlen, "'%s' has no port (expected ADDR:PORT, e.g. 127.0.0.1:9100)", spec);
			return -EINVAL;
		}
		if (strchr(spec, ':') != colon) {
			snprintf(err, errlen, "'%s': an IPv6 address goes in brackets: [ADDR]:PORT", spec);
			return -EINVAL;
		}
		hl = (size_t)(colon - spec);
		if (hl == 0) {
			snprintf(err, errlen, "'%s' has no address (use 0.0.0.0:PORT for every IPv4 address)", spec);
			return -EINVAL;
		}
		if (hl >= sizeof(host))
			hl = sizeof(host) - 1;
		memcpy(host, spec, hl);
		host[hl] = '\0';
		port = colon + 1;
	}
	errno = 0;
	p = strtoul(port, &end, 10);
	if (!*port || *end || errno || p < 1 || p > 65535 || port[0] == '-' || port[0] == '+') {
		snprintf(err, errlen, "'%s': port must be a number from 1 to 65535", spec);
		return -EINVAL;
	}
	if (spec[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) {
			snprintf(err, errlen, "'%s' is not a numeric IPv6 address", host);
			return -EINVAL;
		}
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)p);
		*sslen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) {
			snprintf(err, errlen, "'%s' is not a numeric IPv4 address (IPv6 goes in brackets: [::1]:PORT)",
				 host);
			return -EINVAL;
		}
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)p);
		*sslen = sizeof(*s4);
	}
	return 0;
}

/* ------------------------------------------------------------ parser */

static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A line [s, e) without its line ending: next line starts after '\n'. */
static bool next_line(const char *buf, size_t len, size_t *pos, const char **ls, size_t *ll)
{
	const char *nl = memchr(buf + *pos, '\n', len - *pos);

	if (!nl)
		return false;
	*ls = buf + *pos;
	*ll = (size_t)(nl - *ls);
	if (*ll > 0 && (*ls)[*ll - 1] == '\r')
		(*ll)--;
	*pos = (size_t)(nl - buf) + 1;
	return true;
}

/* Does the comma-separated list v[0..n) contain token tok (case-insensitive)? */
static bool list_has(const char *v, size_t n, const char *tok)
{
	size_t tl = strlen(tok), i = 0;

	while (i < n) {
		size_t s, e;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
			return true;
	}
	return false;
}

int dbk_http_parse_request(const char *buf, size_t len, size_t max, struct dbk_http_request *req)
{
	size_t pos = 0, ll, lim = len < max ? len : max;
	const char *ls, *p, *e, *sp1, *sp2;
	bool have_host = false, conn_close = false, conn_ka = false;
	int hosts = 0;

	memset(req, 0, sizeof(*req));
	/* Bytes no HTTP head may hold fail at once, not after 8 KiB: NUL and other controls, bare CR. */
	for (size_t i = 0; i < lim; i++) {
		unsigned char c = (unsigned char)buf[i];

		if ((c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c == 0x7f)
			return 400;
		if (c == '\r' && i + 1 < lim && buf[i + 1] != '\n')
			return 400;
	}
	/* Tolerate empty lines before the request line (RFC 9112 2.2). */
	while (pos < lim && (buf[pos] == '\r' || buf[pos] == '\n'))
		pos++;
	if (!next_line(buf, lim, &pos, &ls, &ll))
		return len >= max ? 413 : 1;
	/* request line: method SP target SP HTTP/1.x */
	e = ls + ll;
	sp1 = memchr(ls, ' ', ll);
	if (!sp1 || sp1 == ls)
		return 400;
	for (p = ls; p < sp1; p++)
		if (!is_tchar((unsigned char)*p))
			return 400;
	if ((size_t)(sp1 - ls) >= sizeof(req->method))
		return 400;
	memcpy(req->method, ls, (size_t)(sp1 - ls));
	sp2 = memchr(sp1 + 1, ' ', (size_t)(e - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1)
		return 400;
	for (p = sp1 + 1; p < sp2; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return 400;
	if (e - sp2 - 1 != 8 || strncmp(sp2 + 1, "HTTP/", 5) != 0 || sp2[6] < '0' || sp2[6] > '9' || sp2[7] != '.' ||
	    sp2[8] < '0' || sp2[8] > '9')
		return 400;
	if (sp2[6] != '1')
		return 505;
	req->minor = sp2[8] - '0';
	{
		const char *q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
		size_t pl = (size_t)((q ? q : sp2) - (sp1 + 1));

		if ((size_t)(sp2 - sp1 - 1) >= sizeof(req->path))
			return 414;
		memcpy(req->path, sp1 + 1, pl);
		req->path[pl] = '\0';
	}
	/* header fields until the empty line */
	for (;;) {
		const char *colon, *v, *ve;

		if (!next_line(buf, lim, &pos, &ls, &ll))
			return len >= max ? 413 : 1;
		if (ll == 0)
			break;
		if (ls[0] == ' ' || ls[0] == '\t')
			return 400;	/* obsolete line folding */
		colon = memchr(ls, ':', ll);
		if (!colon || colon == ls)
			return 400;
		for (p = ls; p < colon; p++)
			if (!is_tchar((unsigned char)*p))
				return 400;
		v = colon + 1;
		ve = ls + ll;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
#define IS(name) ((size_t)(colon - ls) == sizeof(name) - 1 && strncasecmp(ls, name, sizeof(name) - 1) == 0)
		if (IS("Host")) {
			have_host = true;
			hosts++;
		} else if (IS("Connection")) {
			conn_close |= list_has(v, (size_t)(ve - v), "close");
			conn_ka |= list_has(v, (size_t)(ve - v), "keep-alive");
		} else if (IS("Content-Length")) {
			unsigned long long n = 0;

			if (v == ve)
				return 400;
			for (p = v; p < ve; p++) {
				if (*p < '0' || *p > '9')
					return 400;
				if (n < 1000000000ULL)
					n = n * 10 + (unsigned)(*p - '0');
			}
			if (n > 0)
				return 413;	/* no request here has a body */
		} else if (IS("Transfer-Encoding")) {
			return 501;
		}
#undef IS
	}
	if (hosts > 1 || (req->minor >= 1 && !have_host))
		return 400;
	req->keep_alive = req->minor >= 1 ? !conn_close : (conn_ka && !conn_close);
	req->head_len = pos;
	return 0;
}

/* ------------------------------------------------------------ server */

struct mconn {
	int fd;
	struct dbk_fd_handler *h;
	int refs;		/* the event handler running, a scrape in flight */
	bool closed;
	bool busy;		/* a scrape is being gathered */
	bool close_after;	/* close once the output is written */
	bool peer_eof;
	bool head_only;		/* HEAD: no body */
	bool keep_alive;
	bool draining;		/* error answered, our side shut down: reading what the client still sends */
	uint32_t drained;
	uint32_t events;
	uint64_t last_ns;
	char *out;
	size_t out_len, out_off;
	size_t in_len;
	struct mconn *next, *prev;
	char in[DBK_METRICS_MAX_REQUEST];
};

#define DRAIN_MAX 65536	/* input read and dropped after an error answer before closing */
#define DRAIN_MS 2000ULL

static struct {
	bool running;
	int fd;
	struct dbk_fd_handler *h;
	struct mconn *conns;
	int nconns;
	int inflight;		/* scrapes being gathered (also for connections already closed) */
	struct dbk_poller *idle_poller;
	void (*stop_cb)(void *ctx);
	void *stop_ctx;
	struct dbk_accept_guard guard;	/* out of fds: refuse, never spin */
} g_m = {.fd = -1};

static void conn_process(struct mconn *c);

static void conn_free(struct mconn *c)
{
	free(c->out);
	free(c);
}

static void conn_close(struct mconn *c)
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
		g_m.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
	g_m.nconns--;
}

static void conn_put(struct mconn *c)
{
	if (--c->refs > 0 || !c->closed)
		return;
	conn_free(c);
}

static void conn_update_events(struct mconn *c)
{
	uint32_t ev = 0;

	if (c->closed)
		return;
	if (c->draining || (!c->busy && !c->close_after && !c->peer_eof && c->out_len == c->out_off))
		ev |= EPOLLIN;
	if (c->out_len > c->out_off)
		ev |= EPOLLOUT;
	if (ev != c->events) {
		c->events = ev;
		dbk_fd_modify(c->h, ev);
	}
}

/* Write what the socket takes. False if the connection got closed. */
static bool conn_flush(struct mconn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return true;
			conn_close(c);
			return false;
		}
		c->out_off += (size_t)n;
		c->last_ns = dbk_get_ns();
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	if (c->close_after && !c->peer_eof && !c->draining) {
		/*
		 * Closing with unread input makes the kernel send a reset, which may destroy the error answer
		 * before the client reads it: shut our side down, read and drop what still comes (at most
		 * DRAIN_MAX bytes or DRAIN_MS), then close.
		 */
		shutdown(c->fd, SHUT_WR);
		c->draining = true;
		c->in_len = 0;
		c->last_ns = dbk_get_ns();
		conn_update_events(c);
		return false;
	}
	if (c->close_after || (c->peer_eof && !c->busy && c->in_len == 0)) {
		conn_close(c);
		return false;
	}
	return true;
}

static void conn_drain(struct mconn *c)
{
	char scratch[4096];
	ssize_t n = recv(c->fd, scratch, sizeof(scratch), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0 || (c->drained += (uint32_t)n) > DRAIN_MAX)
		conn_close(c);
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

/* Queue an answer (head and a copy of body; HEAD: the head only, with the body's Content-Length). */
static void conn_answer(struct mconn *c, int status, const char *ctype, const char *body, size_t blen)
{
	char head[512];
	int hl;
	char *out;

	if (status != 200 || !c->keep_alive)
		c->close_after = true;	/* errors, HTTP/1.0 without keep-alive, Connection: close */
	hl = snprintf(head, sizeof(head),
		      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: %s\r\n\r\n", status,
		      reason(status), ctype, blen, status == 405 ? "Allow: GET, HEAD\r\n" : "",
		      c->keep_alive && !c->close_after ? "keep-alive" : "close");
	if (c->head_only)
		blen = 0;
	out = malloc((size_t)hl + blen);
	if (!out) {
		conn_close(c);
		return;
	}
	memcpy(out, head, (size_t)hl);
	if (blen)
		memcpy(out + hl, body, blen);
	free(c->out);
	c->out = out;
	c->out_len = (size_t)hl + blen;
	c->out_off = 0;
}

static void conn_error(struct mconn *c, int status, const char *msg)
{
	char body[256];
	int n = snprintf(body, sizeof(body), "%d %s: %s\n", status, reason(status), msg);

	conn_answer(c, status, "text/plain; charset=utf-8", body, (size_t)n);
}

static void stop_check(void)
{
	if (g_m.stop_cb && g_m.inflight == 0) {
		void (*cb)(void *) = g_m.stop_cb;

		g_m.stop_cb = NULL;
		cb(g_m.stop_ctx);
	}
}

static void scrape_done(void *ctx, struct dbk_prom_buf *text)
{
	struct mconn *c = ctx;

	g_m.inflight--;
	c->busy = false;
	if (!c->closed) {
		if (!text || text->failed)
			conn_error(c, 500, "out of memory gathering the metrics");
		else
			conn_answer(c, 200, DBK_PROM_CONTENT_TYPE, text->data ? text->data : "", text->len);
		c->last_ns = dbk_get_ns();
		if (!c->closed && conn_flush(c)) {
			conn_process(c);	/* a pipelined request may be waiting */
		}
	}
	if (text) {
		dbk_prom_free(text);
		free(text);
	}
	conn_put(c);
	stop_check();
}

static void handle(struct mconn *c, const struct dbk_http_request *r)
{
	bool head = strcmp(r->method, "HEAD") == 0;

	c->head_only = head;
	c->keep_alive = r->keep_alive;
	if (strcmp(r->path, "/metrics") != 0) {
		conn_error(c, 404, "the metrics are at /metrics");
		return;
	}
	if (!head && strcmp(r->method, "GET") != 0) {
		conn_error(c, 405, "only GET and HEAD");
		return;
	}
	c->busy = true;
	c->refs++;
	g_m.inflight++;
	if (dbk_metrics_collect(scrape_done, c) != 0) {
		c->busy = false;
		c->refs--;
		g_m.inflight--;
		conn_error(c, 500, "out of memory");
	}
}

static void conn_process(struct mconn *c)
{
	while (!c->closed && !c->busy && !c->close_after && c->out_len == 0) {
		struct dbk_http_request r;
		int rc = dbk_http_parse_request(c->in, c->in_len, sizeof(c->in), &r);

		if (rc == 1) {
			if (c->peer_eof && c->in_len > 0) {
				c->keep_alive = false;
				conn_error(c, 400, "connection closed inside a request");
			}
			break;
		}
		if (rc != 0) {
			char m[96];

			c->keep_alive = false;
			c->head_only = false;
			if (rc == 413)
				snprintf(m, sizeof(m), "the request is larger than %u bytes or has a body",
					 DBK_METRICS_MAX_REQUEST);
			else if (rc == 414)
				snprintf(m, sizeof(m), "the request target is too long");
			else if (rc == 501)
				snprintf(m, sizeof(m), "Transfer-Encoding is not supported");
			else if (rc == 505)
				snprintf(m, sizeof(m), "only HTTP/1.0 and HTTP/1.1");
			else
				snprintf(m, sizeof(m), "malformed HTTP request");
			conn_error(c, rc, m);
			c->in_len = 0;
			break;
		}
		memmove(c->in, c->in + r.head_len, c->in_len - r.head_len);
		c->in_len -= r.head_len;
		c->last_ns = dbk_get_ns();
		handle(c, &r);
	}
	if (!c->closed && c->out_len > c->out_off)
		conn_flush(c);
	else if (!c->closed && c->peer_eof && !c->busy && c->out_len == 0)
		conn_close(c);
	conn_update_events(c);
}

static void conn_event(void *ctx, uint32_t events)
{
	struct mconn *c = ctx;

	c->refs++;
	if (c->draining) {
		if (!c->closed)
			conn_drain(c);
		conn_put(c);
		return;
	}
	if ((events & EPOLLOUT) && !c->closed && conn_flush(c)) {
		conn_process(c);
	}
	if ((events & EPOLLIN) && !c->closed && !c->draining && !c->busy && c->out_len == 0 &&
	    c->in_len < sizeof(c->in)) {
		ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);

		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			conn_close(c);
		} else if (n == 0) {
			c->peer_eof = true;
			conn_process(c);
		} else if (n > 0) {
			c->in_len += (size_t)n;
			conn_process(c);
		}
	} else if ((events & (EPOLLHUP | EPOLLERR)) && !c->closed) {
		/* both directions gone (a scrape in flight then finds the connection closed and frees it) */
		conn_close(c);
	}
	conn_put(c);
}

static int idle_poll(void *arg)
{
	uint64_t now = dbk_get_ns();
	struct mconn *c = g_m.conns, *next;

	(void)arg;
	for (; c; c = next) {
		next = c->next;
		uint64_t limit_ms = c->draining ? DRAIN_MS : DBK_METRICS_IDLE_MS;

		char peek;

		/*
		 * Input the fd handler is about to read is not idleness (a reactor that did not get the CPU for
		 * longer than the limit finds the clock past it): then it waits for the next round.
		 */
		if (!c->busy && now - c->last_ns > limit_ms * 1000000 &&
		    (c->draining || !(c->events & EPOLLIN) || recv(c->fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) <= 0)) {
			c->refs++;
			conn_close(c);
			conn_put(c);
		}
	}
	if (!g_m.conns)
		dbk_poller_unregister(&g_m.idle_poller);
	return DBK_POLLER_IDLE;
}

static void accept_event(void *ctx, uint32_t events)
{
	(void)ctx;
	(void)events;
	for (int i = 0; i < 16; i++) {
		static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
					   "Content-Length: 22\r\nConnection: close\r\n\r\ntoo many connections\r\n";
		struct mconn *c;
		int fd = dbk_accept_guarded(&g_m.guard, g_m.fd);

		if (fd < 0) {
			if (errno == EMFILE)
				continue;	/* refused and closed; more may be waiting */
			return;
		}
		if (g_m.nconns >= DBK_METRICS_MAX_CONNS) {
			ssize_t rc = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);

			(void)rc;
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			return;
		}
		c->fd = fd;
		c->events = EPOLLIN;
		c->last_ns = dbk_get_ns();
		c->h = dbk_fd_register(fd, EPOLLIN, conn_event, c, "metrics_conn");
		if (!c->h) {
			close(fd);
			free(c);
			return;
		}
		c->next = g_m.conns;
		if (c->next)
			c->next->prev = c;
		g_m.conns = c;
		g_m.nconns++;
		if (!g_m.idle_poller)
			g_m.idle_poller = dbk_poller_register(idle_poll, NULL, 1000000, "metrics_idle");
	}
}

int dbk_metrics_server_start(const char *spec, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1, rc;

	if (g_m.running) {
		snprintf(err, errlen, "the metrics server is already running");
		return -EALREADY;
	}
	rc = dbk_metrics_parse_addr(spec, &ss, &sl, err, errlen);
	if (rc)
		return rc;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "socket: %s", strerror(-rc));
		return rc;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 16) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s%s", spec, strerror(-rc),
			 rc == -EADDRINUSE ? " (another process listens on that port)"
			 : rc == -EADDRNOTAVAIL ? " (not an address of this host)" : "");
		close(fd);
		return rc;
	}
	g_m.h = dbk_fd_register(fd, EPOLLIN, accept_event, NULL, "metrics_listen");
	if (!g_m.h) {
		close(fd);
		snprintf(err, errlen, "cannot watch the listening socket");
		return -ENOMEM;
	}
	g_m.fd = fd;
	dbk_accept_guard_init(&g_m.guard, "metrics", 0);
	g_m.running = true;
	return 0;
}

void dbk_metrics_server_stop(void (*done)(void *ctx), void *ctx)
{
	if (g_m.running) {
		dbk_fd_unregister(&g_m.h);
		close(g_m.fd);
		g_m.fd = -1;
		dbk_accept_guard_fini(&g_m.guard);
		g_m.running = false;
		while (g_m.conns) {
			struct mconn *c = g_m.conns;

			conn_close(c);
			if (c->refs == 0)
				conn_free(c);	/* otherwise the scrape in flight frees it */
		}
		dbk_poller_unregister(&g_m.idle_poller);
	}
	if (!done)
		return;
	g_m.stop_cb = done;
	g_m.stop_ctx = ctx;
	stop_check();
}
