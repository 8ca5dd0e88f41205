/*
 * NVMe/TCP over TLS 1.3 with pre-shared keys (TP 8011), target side, with OpenSSL.
 *
 * A secure listener has a TLS server (one SSL_CTX: TLS 1.3 only, PSK only, TLS_AES_128_GCM_SHA256 and
 * TLS_AES_256_GCM_SHA384, no tickets, no 0-RTT). An accepted connection first runs its handshake on the
 * listener's thread (the main reactor, which owns the subsystems and so the hosts' PSKs), driven by its fd
 * becoming ready; the PSK comes from the identity the host presents (psk.h) and dbk_nvmf_tgt_tls_psk. Only
 * a connection whose handshake succeeded becomes a qpair: over the socket seam (sock.h) with the TLS stream
 * ops, bound to its identity's host and subsystem (Connect checks them). A failed handshake (unknown
 * identity, wrong key, a cipher or version we do not take, plain NVMe/TCP, garbage) closes the socket: no
 * ICResp, nothing the host could use. A handshake that does not finish within the ICReq timeout is closed.
 */
#ifndef DBK_NVMF_TCP_SOCK_TLS_H
#define DBK_NVMF_TCP_SOCK_TLS_H

#include <stddef.h>
#include <stdint.h>

struct dbk_nvmf_transport;
struct dbk_nvmf_listen_addr;
struct dbk_tls_server;

/* On the listener's thread. NULL with a message in err when OpenSSL cannot be set up. */
struct dbk_tls_server *dbk_tls_server_create(struct dbk_nvmf_transport *transport,
					     const struct dbk_nvmf_listen_addr *addr, uint64_t timeout_ns, char *err,
					     size_t errlen);
/* Closes the handshakes still under way. */
void dbk_tls_server_destroy(struct dbk_tls_server *srv);
/* A connection accepted on the secure listener (non-blocking fd, now the server's). */
void dbk_tls_server_accept(struct dbk_tls_server *srv, int fd);

#endif
