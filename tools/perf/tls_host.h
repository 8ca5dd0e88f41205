/*
 * daosblk-perf as an NVMe/TCP TLS 1.3 host (TP 8011), with OpenSSL: a PSK from the interchange format
 * (nvmf/tcp/psk.h), its identity (version 0: "NVMe0R0x <hostnqn> <subnqn>", as SPDK's and Linux's hosts
 * send by default; version 1 with the PSK digest), the TLS PSK derived from it, and the cipher suite its hash
 * names. Once connected, the queue pair's bytes go through host_tls_readv / host_tls_writev instead of the
 * socket calls (non-blocking, same returns). Not in the static guest build (DBK_PERF_STATIC).
 */
#ifndef DBK_TOOLS_PERF_TLS_HOST_H
#define DBK_TOOLS_PERF_TLS_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "nvmf/tcp/psk.h"

struct host_tls;

struct host_tls_opts {
	struct dbk_tls_psk psk;		/* the configured PSK */
	int identity_version;		/* 0 or 1 */
	const char *hostnqn;
	const char *subnqn;
};

/*
 * Load a PSK: the interchange string itself ("NVMeTLSkey-1:...") or the path of a file holding it. 0, or -1
 * with a message in err (never the key).
 */
int host_tls_load_psk(const char *arg, struct dbk_tls_psk *out, char *err, size_t errlen);
/* TLS handshake on the connected non-blocking socket fd (timeout_ms). NULL with a message in err. */
struct host_tls *host_tls_handshake(int fd, const struct host_tls_opts *o, int timeout_ms, char *err,
				    size_t errlen);
/* Like readv / sendmsg(MSG_DONTWAIT): bytes, 0 at the end of the stream (readv), -1 with errno. */
ssize_t host_tls_readv(struct host_tls *t, const struct iovec *iov, int iovcnt);
ssize_t host_tls_writev(struct host_tls *t, const struct iovec *iov, int iovcnt);
/* Decrypted bytes waiting (no poll needed) / bytes taken by writev not yet out (wait for POLLOUT). */
bool host_tls_rx_pending(struct host_tls *t);
bool host_tls_tx_pending(struct host_tls *t);
const char *host_tls_cipher(struct host_tls *t);
const char *host_tls_identity(struct host_tls *t);
/* close_notify (best effort) and free; the socket stays open. */
void host_tls_close(struct host_tls *t);

#endif
