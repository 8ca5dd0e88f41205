/*
 * Metrics for Prometheus: the collector (rpc/metrics.c) and the HTTP endpoint (rpc/metrics_http.c) that
 * daosblk-tgt --metrics ADDR:PORT serves at /metrics. Everything runs on the main reactor.
 *
 * The collector gathers through the same functions the RPCs use (dbk_reactor_get_info as
 * framework_get_reactors, dbk_bdev_get_iostat as bdev_get_iostat, the nvmf_get_subsystems /
 * nvmf_subsystem_get_controllers / nvmf_subsystem_get_qpairs / nvmf_get_stats builders), one step at a
 * time: each asynchronous step is one message per reactor (per channel for a bdev), so a scrape never
 * stops a reactor for longer than it takes to copy its counters.
 */
#ifndef DBK_RPC_METRICS_H
#define DBK_RPC_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rpc/prom.h"

/* ------------------------------------------------------------ collector */

/* The answer: text->data/len is the exposition (the callee owns text and frees it with dbk_prom_free);
 * text->failed means out of memory. Runs on the main reactor, never inside dbk_metrics_collect. */
typedef void (*dbk_metrics_cb)(void *ctx, struct dbk_prom_buf *text);
/* Main reactor. Returns 0 (cb will run) or -ENOMEM (it will not). */
int dbk_metrics_collect(dbk_metrics_cb cb, void *ctx);

/* ------------------------------------------------------------ HTTP endpoint */

#define DBK_METRICS_MAX_REQUEST 8192	/* request line + headers; more: 413 and close */
#define DBK_METRICS_MAX_CONNS 32	/* more at once are closed at accept */
#define DBK_METRICS_IDLE_MS 10000	/* no complete request (or no send progress) for this long: close */

/*
 * Parse "ADDR:PORT": an IPv4 address ("127.0.0.1:9100", "0.0.0.0:9100") or a bracketed IPv6 one
 * ("[::1]:9100"); numeric only, port 1-65535. 0, or -EINVAL with a message in err.
 */
int dbk_metrics_parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *sslen, char *err,
			   size_t errlen);
/* Listen on spec (main reactor). 0, or -errno with a message in err (bad address, port in use, ...). */
int dbk_metrics_server_start(const char *spec, char *err, size_t errlen);
/*
 * Stop listening and close every connection. done(ctx) (may be NULL) runs on the main reactor once no
 * scrape is being gathered any more -- at once (inside this call) when none is -- so the caller may then
 * take the bdev and nvmf layers down.
 */
void dbk_metrics_server_stop(void (*done)(void *ctx), void *ctx);

/* One parsed HTTP/1.x request head. */
struct dbk_http_request {
	char method[16];
	char path[256];		/* the target up to '?' */
	int minor;		/* HTTP/1.<minor> */
	bool keep_alive;	/* the connection stays open after the answer */
	size_t head_len;	/* bytes of the request (line + headers + blank line) */
};

/*
 * Parse the request at buf[0..len): 0 when the head is complete (req filled), 1 when more bytes are
 * needed (and len < max), or the HTTP status to answer before closing: 400 (malformed: request line,
 * header syntax, control characters, missing Host in HTTP/1.1, bad Content-Length), 413 (the head does
 * not fit in max bytes, or the request has a body), 414 (target longer than req->path), 501
 * (Transfer-Encoding), 505 (not HTTP/1.x).
 */
int dbk_http_parse_request(const char *buf, size_t len, size_t max, struct dbk_http_request *req);

#endif
