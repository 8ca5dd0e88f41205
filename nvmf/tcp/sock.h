/*
 * The NVMe/TCP transport's socket seam: the byte stream under the PDU code.
 *
 * A connection moves its bytes only through the ops of its struct dbk_tcp_sock:
 * plain TCP (sock_plain.c), TLS, or an in-memory stream (tests, fuzzing). The
 * calls follow the system calls they replace: a byte count, 0 for the end of
 * the stream (readv), or -1 with errno set (EAGAIN / EWOULDBLOCK: not now,
 * EINTR: try again). Every call is non-blocking and made on the connection's
 * poll group thread. Hot path: the ops allocate nothing and take no locks.
 */
#ifndef DBK_NVMF_TCP_SOCK_H
#define DBK_NVMF_TCP_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <jansson.h>

struct dbk_nvmf_transport;
struct dbk_nvmf_qpair;
struct dbk_tcp_sock;

/* writev / splice flags */
#define DBK_SOCK_F_MORE 0x1u	/* more follows at once: the stream may hold these bytes back (MSG_MORE) */

/* What handshake() returns while it is not done (its events to wait for on fd). */
#define DBK_SOCK_HS_WANT_READ 1
#define DBK_SOCK_HS_WANT_WRITE 2

struct dbk_tcp_sock_ops {
	const char *name;
	/* Like readv(2). */
	ssize_t (*readv)(struct dbk_tcp_sock *s, const struct iovec *iov, int iovcnt);
	/* Like sendmsg(2) with MSG_DONTWAIT | MSG_NOSIGNAL: the bytes taken (the rest stays the caller's). */
	ssize_t (*writev)(struct dbk_tcp_sock *s, const struct iovec *iov, int iovcnt, unsigned flags);
	/*
	 * Optional (NULL: no zero copy; the PDU code copies through writev instead): move up to len bytes out of the
	 * pipe pipe_rd into the stream without copying them (splice(2)); returns as writev.
	 */
	ssize_t (*splice)(struct dbk_tcp_sock *s, int pipe_rd, size_t len, unsigned flags);
	/*
	 * Optional (NULL: none): a step of the stream's handshake before any PDU; 0 done, DBK_SOCK_HS_WANT_READ or
	 * DBK_SOCK_HS_WANT_WRITE still under way (call again when fd is ready), -1 failed (close the connection).
	 */
	int (*handshake)(struct dbk_tcp_sock *s);
	/* Optional: bytes the stream holds for readv already, which fd's readiness does not announce. */
	size_t (*rx_pending)(struct dbk_tcp_sock *s);
	/* Optional: the stream still holds bytes writev took (call writev, with no iovecs, when fd is writable). */
	bool (*tx_pending)(struct dbk_tcp_sock *s);
	/* Release the stream and its context, closing fd. */
	void (*close)(struct dbk_tcp_sock *s);
	/* Optional: the stream's details for nvmf_subsystem_get_qpairs (e.g. TLS version and cipher suite). */
	void (*dump_json)(struct dbk_tcp_sock *s, json_t *obj);
};

struct dbk_tcp_sock {
	const struct dbk_tcp_sock_ops *ops;
	void *ctx;		/* the implementation's */
	int fd;			/* what the poll group waits on; -1: none (the owner drives the connection) */
};

/* Plain TCP over a connected non-blocking socket fd (ctx unused). */
extern const struct dbk_tcp_sock_ops dbk_tcp_sock_plain_ops;

/*
 * A new connection (qpair) of a TCP transport over any stream: ops + ctx, and fd for the poller (-1: none; then
 * the owner calls dbk_nvmf_tcp_qpair_poll to make it read and send). The qpair then goes to the target like an
 * accepted one (dbk_nvmf_tgt_new_qpair). The connection owns the stream from here on: its close op runs when the
 * qpair is freed, also when this fails (NULL).
 */
struct dbk_nvmf_qpair *dbk_nvmf_tcp_qpair_create(struct dbk_nvmf_transport *transport,
						 const struct dbk_tcp_sock_ops *ops, void *ctx, int fd);

/* On the qpair's poll group thread: do what a readable + writable fd would make the connection do. */
void dbk_nvmf_tcp_qpair_poll(struct dbk_nvmf_qpair *qp);

#endif
