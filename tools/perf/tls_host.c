/* daosblk-perf: NVMe/TCP TLS 1.3 with a PSK, host side (see tls_host.h). */
#include "tools/perf/tls_host.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define TLS_TX_BUF (256u * 1024u)
#define TLS_RX_BUF (64u * 1024u)		/* OpenSSL's read-ahead buffer */
#define TLS_WBIO_BUF (256u * 1024u + 4096u)	/* encrypted records waiting for one send() */

struct host_tls {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *wbio;	/* buffering BIO over the socket's: a batch of records leaves in one send() */
	uint8_t psk[DBK_TLS_PSK_MAX];
	size_t psk_len;
	int cipher;
	char identity[DBK_TLS_IDENTITY_MAX];
	uint8_t *tx;
	size_t tx_off, tx_len;
	bool failed;
};

static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	return r ? r : "unknown error";
}

int host_tls_load_psk(const char *arg, struct dbk_tls_psk *out, char *err, size_t errlen)
{
	char buf[512];
	if (strncmp(arg, "NVMeTLSkey-1:", 13) == 0) {
		snprintf(buf, sizeof(buf), "%s", arg);
	} else {
		FILE *f = fopen(arg, "r");
		if (!f) {
			snprintf(err, errlen, "--psk: cannot open %s: %s", arg, strerror(errno));
			return -1;
		}
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
			buf[--n] = '\0';
	}
	char perr[160];
	int rc = dbk_tls_psk_parse(buf, out, perr, sizeof(perr));
	dbk_tls_wipe(buf, sizeof(buf));
	if (rc) {
		snprintf(err, errlen, "--psk: %s", perr);
		return -1;
	}
	return 0;
}

/* OpenSSL asks for the PSK to offer: a TLS 1.3 session with our TLS PSK, the identity and its cipher suite. */
static int psk_use_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen, SSL_SESSION **sess)
{
	struct host_tls *t = SSL_get_app_data(ssl);
	static const unsigned char aes128[2] = {0x13, 0x01}, aes256[2] = {0x13, 0x02};
	const SSL_CIPHER *c = SSL_CIPHER_find(ssl, t->cipher == DBK_TLS_CIPHER_SHA256 ? aes128 : aes256);
	*sess = NULL;
	if (c == NULL || (md != NULL && md != SSL_CIPHER_get_handshake_digest(c)))
		return 1;	/* a HelloRetryRequest for another hash: nothing to offer */
	SSL_SESSION *s = SSL_SESSION_new();
	if (s == NULL || SSL_SESSION_set1_master_key(s, t->psk, t->psk_len) != 1 ||
	    SSL_SESSION_set_cipher(s, c) != 1 || SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION) != 1) {
		SSL_SESSION_free(s);
		return 0;
	}
	*sess = s;
	*id = (const unsigned char *)t->identity;
	*idlen = strlen(t->identity);
	return 1;
}

static void tls_free(struct host_tls *t)
{
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	dbk_tls_wipe(t->psk, sizeof(t->psk));
	if (t->tx) {
		dbk_tls_wipe(t->tx, TLS_TX_BUF);
		free(t->tx);
	}
	free(t);
	ERR_clear_error();
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct host_tls *host_tls_handshake(int fd, const struct host_tls_opts *o, int timeout_ms, char *err,
				    size_t errlen)
{
	struct host_tls *t = calloc(1, sizeof(*t));
	if (!t || !(t->tx = malloc(TLS_TX_BUF))) {
		snprintf(err, errlen, "out of memory");
		free(t);
		return NULL;
	}
	t->cipher = dbk_tls_psk_cipher(&o->psk);
	int L = dbk_tls_psk_for(&o->psk, o->identity_version, o->hostnqn, o->subnqn, t->identity,
				sizeof(t->identity), t->psk);
	if (L < 0) {
		snprintf(err, errlen, "cannot derive the TLS PSK for host '%s' and subsystem '%s' (NQNs too long?)",
			 o->hostnqn, o->subnqn);
		tls_free(t);
		return NULL;
	}
	t->psk_len = (size_t)L;
	ERR_clear_error();
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (!t->ctx || SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(t->ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_ciphersuites(t->ctx, dbk_tls_cipher_name(t->cipher)) != 1) {
		snprintf(err, errlen, "OpenSSL: %s", ssl_reason());
		tls_free(t);
		return NULL;
	}
	SSL_CTX_set_options(t->ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_psk_use_session_callback(t->ctx, psk_use_cb);
	SSL_CTX_set_default_read_buffer_len(t->ctx, TLS_RX_BUF);
	t->ssl = SSL_new(t->ctx);
	BIO *sock = BIO_new_socket(fd, BIO_NOCLOSE), *buf = BIO_new(BIO_f_buffer());
	if (!t->ssl || !sock || !buf || BIO_set_write_buffer_size(buf, TLS_WBIO_BUF) != 1 || BIO_up_ref(sock) != 1) {
		snprintf(err, errlen, "OpenSSL: %s", ssl_reason());
		BIO_free(sock);
		BIO_free(buf);
		tls_free(t);
		return NULL;
	}
	BIO_push(buf, sock);
	SSL_set_bio(t->ssl, sock, buf);
	t->wbio = buf;
	SSL_set_read_ahead(t->ssl, 1);
	SSL_set_app_data(t->ssl, t);
	SSL_set_connect_state(t->ssl);
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		ERR_clear_error();
		int rc = SSL_do_handshake(t->ssl);
		if (rc == 1)
			break;
		int e = SSL_get_error(t->ssl, rc);
		short ev;
		if (e == SSL_ERROR_WANT_READ) {
			ev = POLLIN;
		} else if (e == SSL_ERROR_WANT_WRITE) {
			ev = POLLOUT;
		} else {
			if (e == SSL_ERROR_SYSCALL || ERR_peek_last_error() == 0)
				snprintf(err, errlen, "TLS handshake failed: the target closed the connection (%s)",
					 errno ? strerror(errno) : "no alert");
			else
				snprintf(err, errlen, "TLS handshake failed: %s", ssl_reason());
			tls_free(t);
			return NULL;
		}
		uint64_t now = now_ms();
		if (now >= deadline) {
			snprintf(err, errlen, "TLS handshake timed out after %d s", timeout_ms / 1000);
			tls_free(t);
			return NULL;
		}
		struct pollfd p = {.fd = fd, .events = ev};
		(void)poll(&p, 1, (int)(deadline - now));
	}
	if (!SSL_session_reused(t->ssl)) {
		snprintf(err, errlen, "TLS handshake did not use the PSK");
		tls_free(t);
		return NULL;
	}
	return t;
}

ssize_t host_tls_readv(struct host_tls *t, const struct iovec *iov, int iovcnt)
{
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
			if (e == SSL_ERROR_ZERO_RETURN || total)
				return (ssize_t)total;
			if (e == SSL_ERROR_SYSCALL && errno)
				return -1;
			t->failed = true;
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

static int tls_push(struct host_tls *t)
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
		if (!(e == SSL_ERROR_SYSCALL && errno))
			errno = EPIPE;
		t->failed = true;
		return -1;
	}
	t->tx_off = t->tx_len = 0;
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

ssize_t host_tls_writev(struct host_tls *t, const struct iovec *iov, int iovcnt)
{
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

bool host_tls_rx_pending(struct host_tls *t)
{
	return SSL_has_pending(t->ssl) == 1;
}

bool host_tls_tx_pending(struct host_tls *t)
{
	return t->tx_off < t->tx_len || BIO_wpending(t->wbio) > 0;
}

const char *host_tls_cipher(struct host_tls *t)
{
	return SSL_CIPHER_get_name(SSL_get_current_cipher(t->ssl));
}

const char *host_tls_identity(struct host_tls *t)
{
	return t->identity;
}

void host_tls_close(struct host_tls *t)
{
	if (!t)
		return;
	if (!t->failed) {
		ERR_clear_error();
		(void)SSL_shutdown(t->ssl);
	}
	tls_free(t);
}
