/*
 * NVMe/TCP over TLS 1.3 with PSKs, target side (see sock_tls.h): the handshake stage on the listener's thread
 * and the TLS stream under the PDU code (the socket seam's ops).
 *
 * The stream: readv decrypts with SSL_read_ex until the iovecs are full or OpenSSL needs more bytes from the
 * socket. OpenSSL reads ahead (up to TLS_RX_BUF per system call, not a record header and then its body), so it
 * may hold bytes no EPOLLIN announces: rx_pending reports them and the poller reads on. writev copies the batch
 * of PDUs into the connection's send buffer and encrypts it with SSL_write_ex into a buffering BIO, so the
 * records of a batch leave in one send() (a host wakes once for them, not once per 16 KiB record); what the
 * socket does not take stays there (tx_pending) and goes out first next time. The buffers are allocated with
 * the connection: nothing per I/O. No splice: without kernel TLS (the tls module), the PDU code copies lent
 * payloads into the stream instead (one copy, where plain TCP has none).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "nvmf/tcp/psk.h"
#include "nvmf/tcp/sock.h"
#include "nvmf/tcp/sock_tls.h"
#include "nvmf/transport.h"
#include "thread/thread.h"
#include "util/log.h"

#define TLS_TX_BUF (256u * 1024u)	/* send buffer per connection: a batch of PDUs (e.g. a 128 KiB C2H and more) */
#define TLS_RX_BUF (64u * 1024u)	/* OpenSSL's read-ahead buffer */
#define TLS_WBIO_BUF (256u * 1024u + 4096u)	/* encrypted records waiting for one send() */
#define TLS_HS_POLL_US 100000u		/* handshake deadline checks */
#define TLS_SECRET_MAX 256		/* interchange string from the keyring */

struct dbk_tls_server {
	SSL_CTX *ctx;
	struct dbk_nvmf_transport *transport;
	struct dbk_nvmf_listen_addr addr;
	uint64_t timeout_ns;
	struct tls_conn *pending;	/* handshakes under way */
	struct dbk_poller *timer;
};

struct tls_conn {
	SSL *ssl;
	int fd;
	/* handshake stage (on the listener's thread) */
	struct dbk_tls_server *srv;
	struct dbk_fd_handler *fdh;
	uint64_t deadline_ns;
	struct tls_conn *next;
	BIO *wbio;			/* buffering BIO over the socket's (owned by ssl) */
	const char *why;		/* why our PSK lookup refused the identity (for the log line) */
	bool psk_ok;			/* our PSK callback gave OpenSSL a key */
	/* the PSK identity the host authenticated with */
	char hostnqn[DBK_TLS_NQN_MAX + 1];
	char subnqn[DBK_TLS_NQN_MAX + 1];
	int id_version;
	/* established stream */
	bool established;
	bool failed;			/* a fatal TLS error: no close_notify */
	uint8_t *tx;
	size_t tx_off, tx_len;
};

static const struct dbk_tcp_sock_ops tls_ops;

/* ------------------------------------------------------------ helpers */

/* The last OpenSSL error as text (reasons only, never key material). */
static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	return r ? r : "unknown error";
}

static void conn_free(struct tls_conn *t)
{
	if (t->ssl) {
		if (t->established && !t->failed) {
			ERR_clear_error();
			(void)SSL_shutdown(t->ssl);	/* best effort close_notify; never waits */
		}
		SSL_free(t->ssl);
	}
	ERR_clear_error();
	if (t->fd >= 0)
		close(t->fd);
	if (t->tx) {
		dbk_tls_wipe(t->tx, TLS_TX_BUF);
		free(t->tx);
	}
	free(t);
}

/* -------------------------------------------------------- PSK lookup */

/*
 * OpenSSL asks for the key of an identity in the ClientHello. We answer with a TLS 1.3 session holding the TLS
 * PSK derived from the host's configured PSK, or with none: then the handshake fails (no certificate to fall
 * back to) and the host gets a handshake_failure alert and a closed socket.
 */
static int psk_find_cb(SSL *ssl, const unsigned char *id, size_t idlen, SSL_SESSION **sess)
{
	struct tls_conn *t = SSL_get_app_data(ssl);
	struct dbk_tls_identity ident;
	char secret[TLS_SECRET_MAX], expect[DBK_TLS_IDENTITY_MAX];
	uint8_t psk[DBK_TLS_PSK_MAX];
	struct dbk_tls_psk k;
	int L;

	*sess = NULL;
	if (t->psk_ok)
		return 1;	/* a key for an earlier identity of this ClientHello is chosen already */
	if (dbk_tls_identity_parse(id, idlen, &ident) != 0) {
		t->why = "the PSK identity is not an NVMe retained-PSK identity (NVMe<0|1>R<01|02> <hostnqn> <subnqn>...)";
		return 1;
	}
	int n = dbk_nvmf_tgt_tls_psk(ident.subnqn, ident.hostnqn, &t->srv->addr, secret, sizeof(secret));
	if (n < 0) {
		DBK_NOTICELOG("nvmf_tcp: TLS: no PSK for host '%s' on subsystem '%s' through %s:%s%s", ident.hostnqn,
			      ident.subnqn, t->srv->addr.traddr, t->srv->addr.trsvcid,
			      n == -ENOKEY ? " (its key was removed from the keyring)" : "");
		t->why = "no PSK for that host and subsystem on this listener";
		return 1;
	}
	char err[160];
	int rc = dbk_tls_psk_parse(secret, &k, err, sizeof(err));
	dbk_tls_wipe(secret, sizeof(secret));
	if (rc != 0) {
		DBK_ERRLOG("nvmf_tcp: TLS: the PSK of host '%s' on '%s' is unusable: %s", ident.hostnqn, ident.subnqn,
			   err);
		t->why = "the host's configured PSK is unusable";
		return 1;
	}
	if (dbk_tls_psk_cipher(&k) != ident.cipher) {
		t->why = "the identity's hash does not match the host's PSK (01: SHA-256 / 32 bytes, 02: SHA-384 / 48)";
		dbk_tls_wipe(&k, sizeof(k));
		return 1;
	}
	L = dbk_tls_psk_for(&k, ident.version, ident.hostnqn, ident.subnqn, expect, sizeof(expect), psk);
	dbk_tls_wipe(&k, sizeof(k));
	if (L < 0) {
		t->why = "no TLS PSK can be derived for that identity (NQNs too long)";
		return 1;
	}
	if (strlen(expect) != idlen || memcmp(expect, id, idlen) != 0) {
		/* Version 1: the digest in the identity is an HMAC of the PSK; another key gives another digest. */
		t->why = "the identity's PSK digest does not match the host's PSK";
		dbk_tls_wipe(psk, sizeof(psk));
		return 1;
	}
	static const unsigned char aes128[2] = {0x13, 0x01}, aes256[2] = {0x13, 0x02};
	const SSL_CIPHER *c = SSL_CIPHER_find(ssl, ident.cipher == DBK_TLS_CIPHER_SHA256 ? aes128 : aes256);
	SSL_SESSION *s = c ? SSL_SESSION_new() : NULL;
	if (s == NULL || SSL_SESSION_set1_master_key(s, psk, (size_t)L) != 1 || SSL_SESSION_set_cipher(s, c) != 1 ||
	    SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION) != 1) {
		SSL_SESSION_free(s);
		dbk_tls_wipe(psk, sizeof(psk));
		t->why = "OpenSSL could not take the PSK";
		return 0;
	}
	dbk_tls_wipe(psk, sizeof(psk));
	snprintf(t->hostnqn, sizeof(t->hostnqn), "%s", ident.hostnqn);
	snprintf(t->subnqn, sizeof(t->subnqn), "%s", ident.subnqn);
	t->id_version = ident.version;
	t->psk_ok = true;
	*sess = s;
	return 1;
}

/*
 * Before OpenSSL picks the cipher suite: the one the first offered identity's hash names (NVMe<v>R01: SHA-256,
 * R02: SHA-384), so the PSK can be used. Hosts offer several suites (OpenSSL's s_client prefers
 * TLS_AES_256_GCM_SHA384); picked by preference alone, a suite of the other hash makes OpenSSL skip the PSK.
 * Anything malformed here is left to OpenSSL and the PSK lookup to refuse.
 */
static int client_hello_cb(SSL *ssl, int *al, void *arg)
{
	const unsigned char *ext;
	size_t len;
	(void)al;
	(void)arg;
	/* pre_shared_key (41): identities<7..2^16-1> = { uint16 length, identity, uint32 age }... */
	if (SSL_client_hello_get0_ext(ssl, 41, &ext, &len) != 1 || len < 4)
		return SSL_CLIENT_HELLO_SUCCESS;
	size_t ids = (size_t)ext[0] << 8 | ext[1], il = (size_t)ext[2] << 8 | ext[3];
	if (ids + 2 > len || il + 2 > ids || il < 9)
		return SSL_CLIENT_HELLO_SUCCESS;
	const unsigned char *id = ext + 4;
	if (memcmp(id, "NVMe", 4) == 0 && id[5] == 'R' && id[6] == '0' && (id[7] == '1' || id[7] == '2'))
		SSL_set_ciphersuites(ssl, dbk_tls_cipher_name(id[7] - '0'));
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* ------------------------------------------------------ handshake stage */

static void pending_unlink(struct tls_conn *t)
{
	for (struct tls_conn **pp = &t->srv->pending; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	t->next = NULL;
	if (t->fdh)
		dbk_fd_unregister(&t->fdh);
}

static void hs_fail(struct tls_conn *t, const char *what)
{
	DBK_NOTICELOG("nvmf_tcp: TLS handshake on %s:%s failed: %s; closing the connection", t->srv->addr.traddr,
		      t->srv->addr.trsvcid, what);
	pending_unlink(t);
	t->failed = true;
	conn_free(t);
}

static void hs_done(struct tls_conn *t)
{
	struct dbk_tls_server *srv = t->srv;
	if (!t->psk_ok || !SSL_session_reused(t->ssl)) {
		hs_fail(t, "no PSK was agreed");
		return;
	}
	t->tx = malloc(TLS_TX_BUF);
	if (t->tx == NULL) {
		hs_fail(t, "out of memory");
		return;
	}
	pending_unlink(t);
	t->established = true;
	t->srv = NULL;
	DBK_INFOLOG("nvmf_tcp: TLS %s with host '%s' for '%s' (identity version %d)",
		    SSL_CIPHER_get_name(SSL_get_current_cipher(t->ssl)), t->hostnqn, t->subnqn, t->id_version);
	struct dbk_nvmf_qpair *qp = dbk_nvmf_tcp_qpair_create(srv->transport, &tls_ops, t, t->fd);
	if (qp == NULL)
		return;	/* the stream is closed already */
	qp->tls_hostnqn = t->hostnqn;
	qp->tls_subnqn = t->subnqn;
	dbk_nvmf_tgt_new_qpair(qp);
}

static void hs_step(struct tls_conn *t)
{
	ERR_clear_error();
	int rc = SSL_do_handshake(t->ssl);
	if (rc == 1) {
		hs_done(t);
		return;
	}
	switch (SSL_get_error(t->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		dbk_fd_modify(t->fdh, EPOLLIN);
		return;
	case SSL_ERROR_WANT_WRITE:
		dbk_fd_modify(t->fdh, EPOLLOUT);
		return;
	case SSL_ERROR_SYSCALL:
		hs_fail(t, errno ? strerror(errno) : "the host closed the connection");
		return;
	default:
		hs_fail(t, t->why ? t->why : ssl_reason());
		return;
	}
}

static void hs_fd_cb(void *ctx, uint32_t events)
{
	(void)events;
	hs_step(ctx);
}

static int hs_timer(void *ctx)
{
	struct dbk_tls_server *srv = ctx;
	uint64_t now = dbk_thread_now_ns();
	int busy = 0;
	for (struct tls_conn *t = srv->pending, *next; t; t = next) {
		next = t->next;
		if (now >= t->deadline_ns) {
			hs_fail(t, "no complete handshake within the ICReq timeout");
			busy = 1;
		}
	}
	return busy ? DBK_POLLER_BUSY : DBK_POLLER_IDLE;
}

void dbk_tls_server_accept(struct dbk_tls_server *srv, int fd)
{
	struct tls_conn *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		close(fd);
		return;
	}
	t->fd = fd;
	t->srv = srv;
	t->ssl = SSL_new(srv->ctx);
	BIO *sock = BIO_new_socket(fd, BIO_NOCLOSE), *buf = BIO_new(BIO_f_buffer());
	if (t->ssl == NULL || sock == NULL || buf == NULL || BIO_set_write_buffer_size(buf, TLS_WBIO_BUF) != 1 ||
	    BIO_up_ref(sock) != 1) {
		DBK_ERRLOG("nvmf_tcp: TLS: cannot set up a connection: %s", ssl_reason());
		BIO_free(sock);
		BIO_free(buf);
		conn_free(t);
		return;
	}
	/* Reads straight from the socket, writes through the buffer; ssl owns both (sock referenced twice). */
	BIO_push(buf, sock);
	SSL_set_bio(t->ssl, sock, buf);
	t->wbio = buf;
	SSL_set_read_ahead(t->ssl, 1);
	SSL_set_app_data(t->ssl, t);
	SSL_set_accept_state(t->ssl);
	t->deadline_ns = dbk_thread_now_ns() + srv->timeout_ns;
	t->fdh = dbk_fd_register(fd, EPOLLIN, hs_fd_cb, t, "nvmf_tcp_tls_hs");
	if (t->fdh == NULL) {
		conn_free(t);
		return;
	}
	t->next = srv->pending;
	srv->pending = t;
}

struct dbk_tls_server *dbk_tls_server_create(struct dbk_nvmf_transport *transport,
					     const struct dbk_nvmf_listen_addr *addr, uint64_t timeout_ns, char *err,
					     size_t errlen)
{
	struct dbk_tls_server *srv = calloc(1, sizeof(*srv));
	if (srv == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->transport = transport;
	srv->addr = *addr;
	srv->timeout_ns = timeout_ns;
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	/* TLS 1.3 only, its two NVMe/TCP cipher suites, PSK only (no certificate), no tickets, no 0-RTT. */
	if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256") != 1 ||
	    SSL_CTX_set_num_tickets(ctx, 0) != 1 || SSL_CTX_set_max_early_data(ctx, 0) != 1 ||
	    SSL_CTX_set_recv_max_early_data(ctx, 0) != 1) {
		snprintf(err, errlen, "OpenSSL: cannot set up TLS 1.3: %s", ssl_reason());
		SSL_CTX_free(ctx);
		free(srv);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_psk_find_session_callback(ctx, psk_find_cb);
	SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, NULL);
	SSL_CTX_set_default_read_buffer_len(ctx, TLS_RX_BUF);
	srv->ctx = ctx;
	srv->timer = dbk_poller_register(hs_timer, srv, TLS_HS_POLL_US, "nvmf_tcp_tls_hs");
	if (srv->timer == NULL) {
		snprintf(err, errlen, "cannot register the TLS handshake timer");
		SSL_CTX_free(ctx);
		free(srv);
		return NULL;
	}
	return srv;
}

void dbk_tls_server_destroy(struct dbk_tls_server *srv)
{
	if (srv == NULL)
		return;
	while (srv->pending) {
		struct tls_conn *t = srv->pending;
		pending_unlink(t);
		t->failed = true;
		conn_free(t);
	}
	dbk_poller_unregister(&srv->timer);
	SSL_CTX_free(srv->ctx);
	free(srv);
}

/* ---------------------------------------------------- the TLS stream */

static ssize_t tls_readv(struct dbk_tcp_sock *s, const struct iovec *iov, int iovcnt)
{
	struct tls_conn *t = s->ctx;
	size_t total = 0;
	for (int i = 0; i < iovcnt; i++) {
		size_t off = 0;
		while (off < iov[i].iov_len) {
			size_t n = 0;
			ERR_clear_error();
			if (SSL_read_ex(t->ssl, (uint8_t *)iov[i].iov_base + off, iov[i].iov_len - off, &n) == 1) {
				off += n;
				total += n;
				continue;
			}
			int e = SSL_get_error(t->ssl, 0);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				goto out;
			if (e == SSL_ERROR_ZERO_RETURN)
				return (ssize_t)total;	/* close_notify (or EOF): 0 once the data before it is read */
			if (total)
				return (ssize_t)total;	/* the error comes back on the next call */
			if (e == SSL_ERROR_SYSCALL && errno)
				return -1;
			t->failed = true;
			/* A record that does not decrypt or verify (tampered, or not TLS at all): a security event. */
			DBK_NOTICELOG("nvmf_tcp: TLS receive: %s; closing the connection", ssl_reason());
			errno = EPROTO;
			return -1;
		}
	}
out:
	if (total)
		return (ssize_t)total;
	errno = EAGAIN;
	return -1;
}

/* Encrypt and send the send buffer; 0 when all of it is out, -1 with errno (EAGAIN: the socket is full). */
static int tls_push(struct tls_conn *t)
{
	while (t->tx_off < t->tx_len) {
		size_t n = 0;
		ERR_clear_error();
		if (SSL_write_ex(t->ssl, t->tx + t->tx_off, t->tx_len - t->tx_off, &n) == 1) {
			t->tx_off += n;
			continue;
		}
		int e = SSL_get_error(t->ssl, 0);
		if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
			errno = EAGAIN;
			return -1;
		}
		if (!(e == SSL_ERROR_SYSCALL && errno)) {
			DBK_INFOLOG("nvmf_tcp: TLS send: %s", ssl_reason());
			errno = EPIPE;
		}
		t->failed = true;
		return -1;
	}
	t->tx_off = t->tx_len = 0;
	/* The records of the batch, in one send() (or what of them the socket takes). */
	if (BIO_wpending(t->wbio) > 0) {
		ERR_clear_error();
		if (BIO_flush(t->wbio) <= 0) {
			if (BIO_should_retry(t->wbio)) {
				errno = EAGAIN;
				return -1;
			}
			t->failed = true;
			if (errno == 0)
				errno = EPIPE;
			return -1;
		}
	}
	return 0;
}

static ssize_t tls_writev(struct dbk_tcp_sock *s, const struct iovec *iov, int iovcnt, unsigned flags)
{
	struct tls_conn *t = s->ctx;
	(void)flags;
	/* What an earlier call took goes first, and must go whole: OpenSSL retries a write with the same bytes. */
	if ((t->tx_len || BIO_wpending(t->wbio) > 0) && tls_push(t) != 0)
		return -1;
	size_t taken = 0;
	for (int i = 0; i < iovcnt && t->tx_len < TLS_TX_BUF; i++) {
		size_t n = iov[i].iov_len < TLS_TX_BUF - t->tx_len ? iov[i].iov_len : TLS_TX_BUF - t->tx_len;
		memcpy(t->tx + t->tx_len, iov[i].iov_base, n);
		t->tx_len += n;
		taken += n;
	}
	if (tls_push(t) != 0 && errno != EAGAIN)
		return -1;
	return (ssize_t)taken;
}

static size_t tls_rx_pending(struct dbk_tcp_sock *s)
{
	struct tls_conn *t = s->ctx;
	/* Decrypted bytes, or read-ahead bytes not yet decrypted: either way the socket will not announce them. */
	return SSL_has_pending(t->ssl) ? 1 : 0;
}

static bool tls_tx_pending(struct dbk_tcp_sock *s)
{
	struct tls_conn *t = s->ctx;
	return t->tx_off < t->tx_len || BIO_wpending(t->wbio) > 0;
}

static void tls_close(struct dbk_tcp_sock *s)
{
	conn_free(s->ctx);
	s->ctx = NULL;
	s->fd = -1;
}

static void tls_dump_json(struct dbk_tcp_sock *s, json_t *obj)
{
	struct tls_conn *t = s->ctx;
	json_t *o = json_object();
	json_object_set_new(o, "version", json_string(SSL_get_version(t->ssl)));
	json_object_set_new(o, "cipher_suite", json_string(SSL_CIPHER_get_name(SSL_get_current_cipher(t->ssl))));
	json_object_set_new(o, "psk_identity_version", json_integer(t->id_version));
	json_object_set_new(o, "hostnqn", json_string(t->hostnqn));
	json_object_set_new(o, "subnqn", json_string(t->subnqn));
	json_object_set_new(obj, "tls", o);
}

static const struct dbk_tcp_sock_ops tls_ops = {
	.name = "TLS",
	.readv = tls_readv,
	.writev = tls_writev,
	.rx_pending = tls_rx_pending,
	.tx_pending = tls_tx_pending,
	.close = tls_close,
	.dump_json = tls_dump_json,
};
