/*
 * Fuzz harness: NVMe/TCP over TLS 1.3 with PSKs, target side (nvmf/tcp/sock_tls.c): the handshake stage (the
 * ClientHello callback that picks the cipher suite from the first PSK identity, the PSK lookup from the identity
 * through dbk_nvmf_tgt_tls_psk and psk.c's derivations), then the TLS stream under the PDU code (tls_readv,
 * tls_writev's send buffer and buffering BIO, rx_pending / tx_pending) with the real TCP transport and target
 * core behind it, Connect bound to the identity's host and subsystem.
 *
 * The connection is one end of a socketpair(AF_UNIX), handed to a TLS server of the harness's own
 * (dbk_tls_server_accept) the way the TCP listener hands it an accepted socket; the harness is the host on the
 * other end, with no network. Either the input's bytes are the host's stream as they are (a ClientHello and
 * whatever follows: the seeds hold ClientHellos recorded from the harness's own client), or the harness runs an
 * OpenSSL TLS 1.3 client whose PSK, identity and cipher suites the input chooses, and once the handshake is done
 * sends NVMe/TCP through it (an ICReq and a Connect of its own if asked, then the input's bytes), optionally
 * with one byte of a record changed on the way.
 *
 * The target: a TCP transport (8 KiB in-capsule data), subsystem nqn.2016-06.io.spdk:tls listening securely
 * (the address of an in-process transport of the harness's: nothing binds) with a 1 MiB RAM disk and hosts
 * 0: PSK 01 (32 bytes), 1: PSK 02 (48), 2: PSK 00 (48), 3: PSK 00 (32), 4: no PSK, 5: a PSK removed from the
 * keyring, 7: a damaged PSK (CRC), 8: PSK 01 and a 223-character NQN (a version 0 identity is too long for the
 * TLS PSK derivation); host 6 is not allowed; nqn.2016-06.io.spdk:tls2 has host 0 with its PSK but no secure
 * listener.
 *
 * Oracle besides the sanitizers: the target's bytes are TLS records (types 20-23, at most
 * 2^14 + 256 bytes); the handshake succeeds exactly when the identity names a host with a usable PSK on a
 * subsystem that listens securely (or the discovery subsystem), the key is the host's and the client offers the
 * identity's cipher suite; over the TLS stream the target writes well-formed PDUs, a Connect succeeds
 * exactly when it names the identity's host, and nvmf_subsystem_get_qpairs shows its queue with that TLS session; a changed record or the host's close ends the connection, and
 * every connection, established or not, is closed (the socket's end reads EOF) before the next input.
 *
 * Input: u8 mode: bit 0 the harness's OpenSSL client (else the rest is the host's raw stream, sent in chunks),
 *                bit 1 (raw) a TLS server of its own that is destroyed while the handshake is under way
 *        client: u8 host (mod 9), u8 flags: bit 0 identity version 1, bits 1-2 cipher suites offered (0 both,
 *                1 TLS_AES_128_GCM_SHA256, 2 TLS_AES_256_GCM_SHA384, 3 both, the other first), bit 3 a wrong
 *                key, bit 4 the identity names nqn.2016-06.io.spdk:tls2, bit 5 the discovery subsystem,
 *                bit 6 the identity is the input's (u8 n, n bytes)
 *                u8 conn: bit 0 send an ICReq and a Connect, bit 1 the Connect names another host,
 *                bit 2 change one byte (u16 offset) of what the client sends after the handshake
 *                then the host's NVMe/TCP bytes, sent in chunks
 * DBK_FUZZ_TLS_RECORD=FILE writes what the host sends to FILE as a raw-mode input (run one input).
 */
#include "fuzz/common/fuzz_env.h"

#include "bdev/malloc/bdev_malloc.h"
#include "keyring/keyring.h"
#include "nvmf/nvmf_internal.h"
#include "nvmf/tcp/nvme_tcp.h"
#include "nvmf/tcp/psk.h"
#include "nvmf/tcp/sock.h"
#include "nvmf/tcp/sock_tls.h"
#include "thread/thread.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <isa-l/crc.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#define SUBNQN "nqn.2016-06.io.spdk:tls"
#define SUBNQN2 "nqn.2016-06.io.spdk:tls2"
#define NHOSTS 9
#define H_NOPSK 4
#define H_REMOVED 5
#define H_UNKNOWN 6
#define H_BADPSK 7	/* its key in the keyring is not a PSK */
#define H_LONG 8	/* a 223-character NQN: a version 0 identity is too long to derive a TLS PSK from */
#define SPINS 4000	/* rounds of client, socket and reactor before the harness calls it a hang */

struct pskdef {
	int hash;
	size_t len;	/* 0: none */
};

static const struct pskdef g_pskdefs[NHOSTS] = {{1, 32}, {2, 48}, {0, 48}, {0, 32}, {0, 0},
						{1, 32}, {0, 0},  {1, 32}, {1, 32}};
static char g_hostnqn[NHOSTS][DBK_TLS_NQN_MAX + 1];
static struct dbk_tls_psk g_psk[NHOSTS];
static struct dbk_tls_server *g_srv;
static struct dbk_nvmf_listen_addr g_addr;
static SSL_CTX *g_cctx[4];
static struct fuzz_rng g_rng;

/* ------------------------------------------------ a transport for the address */

/* The secure listener's address belongs to this transport: listening on it binds nothing. */
static void t_opts_init(struct dbk_nvmf_transport_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_queue_depth = 32;
	o->max_qpairs_per_ctrlr = 2;
	o->max_io_size = 4096;
	o->io_unit_size = 4096;
	o->max_aq_depth = 32;
}

static int t_pg_add(struct dbk_nvmf_transport_poll_group *g, struct dbk_nvmf_qpair *q)
{
	(void)g;
	(void)q;
	return -ENOTSUP;
}

static void t_req_complete(struct dbk_nvmf_request *req)
{
	(void)req;
	abort();	/* it never has a qpair */
}

static void t_qpair_fini(struct dbk_nvmf_qpair *q)
{
	(void)q;
}

static const struct dbk_nvmf_transport_ops g_ops = {
	.name = "FUZZ",
	.opts_init = t_opts_init,
	.create = fuzz_transport_create,
	.destroy = fuzz_transport_destroy,
	.listen = fuzz_transport_listen,
	.stop_listen = fuzz_transport_stop_listen,
	.poll_group_create = fuzz_transport_pg_create,
	.poll_group_destroy = fuzz_transport_pg_destroy,
	.poll_group_add = t_pg_add,
	.req_complete = t_req_complete,
	.qpair_fini = t_qpair_fini,
};

/* ----------------------------------------------------------------- setup */

static volatile bool g_flag;
static int g_rc;

static void done_cb(void *ctx, int rc, const char *err)
{
	(void)ctx;
	(void)err;
	g_rc = rc;
	g_flag = true;
}

static void wait_done(const char *what)
{
	fuzz_poll_until(&g_flag, what);
	g_flag = false;
	if (g_rc < 0) {
		fprintf(fuzz_stderr, "fuzz_tls: %s failed: %d\n", what, g_rc);
		abort();
	}
}

/* The host's PSK in interchange format, in the keyring as fuzztls<h>. */
static void make_psk(int h)
{
	const struct pskdef *d = &g_pskdefs[h];
	uint8_t raw[52];
	char b64[80], s[128], path[128], name[32], err[256];
	uint32_t crc;
	int fd;

	for (size_t i = 0; i < d->len; i++)
		raw[i] = (uint8_t)(h * 41 + i * 3 + 9);
	crc = crc32_gzip_refl(0, raw, d->len);	/* the interchange format's CRC-32, as nvmf/tcp/psk.c computes it */
	for (int i = 0; i < 4; i++)
		raw[d->len + i] = (uint8_t)(crc >> (8 * i));
	EVP_EncodeBlock((unsigned char *)b64, raw, (int)d->len + 4);
	snprintf(s, sizeof(s), "NVMeTLSkey-1:%02d:%s:", d->hash, b64);
	if (dbk_tls_psk_parse(s, &g_psk[h], err, sizeof(err)) != 0) {
		fprintf(fuzz_stderr, "fuzz_tls: own PSK refused: %s\n", err);
		abort();
	}
	if (h == H_BADPSK)
		s[17] = s[17] == 'A' ? 'B' : 'A';	/* the keyring's copy: a CRC mismatch */
	snprintf(path, sizeof(path), "%s/psk%d", fuzz_tmpdir(), h);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, s, strlen(s)) < 0 || close(fd) != 0)
		abort();
	snprintf(name, sizeof(name), "fuzztls%d", h);
	if (dbk_keyring_file_add_key(name, path, err, sizeof(err)) != 0) {
		fprintf(fuzz_stderr, "fuzz_tls: %s\n", err);
		abort();
	}
}

static struct dbk_nvmf_subsystem *subsys(const char *nqn)
{
	struct dbk_nvmf_subsystem_opts so = {0};
	struct dbk_nvmf_subsystem *s;
	char err[256];

	so.serial_number = "FUZZTLS0001";
	if (dbk_nvmf_subsystem_create(nqn, &so, &s, err, sizeof(err)) != 0) {
		fprintf(fuzz_stderr, "fuzz_tls: %s\n", err);
		abort();
	}
	return s;
}

static void add_host(struct dbk_nvmf_subsystem *s, int h, bool psk)
{
	struct dbk_nvmf_host_keys k = {0};
	char name[32], err[256];

	snprintf(name, sizeof(name), "fuzztls%d", h);
	if (psk)
		k.psk = name;
	if (dbk_nvmf_subsystem_add_host_ext(s, g_hostnqn[h], &k, err, sizeof(err)) != 0) {
		fprintf(fuzz_stderr, "fuzz_tls: add_host: %s\n", err);
		abort();
	}
}

static SSL_CTX *client_ctx(const char *suites);

static void setup_target(void)
{
	const struct dbk_nvmf_transport_ops *tcp = dbk_nvmf_transport_ops_find("TCP");
	struct dbk_nvmf_transport_opts o;
	struct dbk_nvmf_ns_opts no = {0};
	struct dbk_nvmf_listen_addr a2;
	struct dbk_nvmf_subsystem *s;
	char err[256];

	fuzz_core_up();
	if (!tcp || dbk_nvmf_transport_register(&g_ops) != 0)
		abort();
	tcp->opts_init(&o);
	o.in_capsule_data_size = 8192;
	dbk_nvmf_tgt_create_transport("TCP", &o, done_cb, NULL);
	wait_done("create_transport TCP");
	t_opts_init(&o);
	dbk_nvmf_tgt_create_transport("FUZZ", &o, done_cb, NULL);
	wait_done("create_transport FUZZ");
	for (int h = 0; h < NHOSTS; h++) {
		snprintf(g_hostnqn[h], sizeof(g_hostnqn[h]),
			 "nqn.2014-08.org.nvmexpress:uuid:b0b0b0b0-0000-4000-8000-00000000000%d", h);
		if (h == H_LONG) {
			snprintf(g_hostnqn[h], sizeof(g_hostnqn[h]), "nqn.2014-08.io.daosblk:");
			memset(g_hostnqn[h] + 23, 'h', DBK_TLS_NQN_MAX - 23);
			g_hostnqn[h][DBK_TLS_NQN_MAX] = '\0';
		}
		if (g_pskdefs[h].len)
			make_psk(h);
	}
	if (dbk_bdev_malloc_create("Malloc0", NULL, 2048, 512, NULL) != 0)
		abort();
	s = subsys(SUBNQN);
	dbk_nvmf_subsystem_add_ns(s, "Malloc0", &no, done_cb, NULL);
	wait_done("add_ns");
	for (int h = 0; h < NHOSTS; h++)
		if (h != H_UNKNOWN)
			add_host(s, h, g_pskdefs[h].len != 0);
	memset(&g_addr, 0, sizeof(g_addr));
	snprintf(g_addr.trtype, sizeof(g_addr.trtype), "FUZZ");
	snprintf(g_addr.adrfam, sizeof(g_addr.adrfam), "IPv4");
	snprintf(g_addr.traddr, sizeof(g_addr.traddr), "127.0.0.1");
	snprintf(g_addr.trsvcid, sizeof(g_addr.trsvcid), "4420");
	g_addr.secure_channel = true;
	if (dbk_nvmf_subsystem_add_listener(s, &g_addr, err, sizeof(err)) != 0) {
		fprintf(fuzz_stderr, "fuzz_tls: add_listener: %s\n", err);
		abort();
	}
	/* a subsystem where host 0 has its PSK, without a secure listener */
	s = subsys(SUBNQN2);
	add_host(s, 0, true);
	a2 = g_addr;
	snprintf(a2.trsvcid, sizeof(a2.trsvcid), "4421");
	a2.secure_channel = false;
	if (dbk_nvmf_subsystem_add_listener(s, &a2, err, sizeof(err)) != 0)
		abort();
	/* host 5's key is gone from the keyring (its entry still names it) */
	if (dbk_keyring_file_remove_key("fuzztls5", err, sizeof(err)) != 0)
		abort();
	g_srv = dbk_tls_server_create(dbk_nvmf_tgt_find_transport("TCP"), &g_addr, 30ull * 1000 * 1000 * 1000, err,
				      sizeof(err));
	if (!g_srv) {
		fprintf(fuzz_stderr, "fuzz_tls: %s\n", err);
		abort();
	}
	g_cctx[0] = client_ctx("TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384");
	g_cctx[1] = client_ctx("TLS_AES_128_GCM_SHA256");
	g_cctx[2] = client_ctx("TLS_AES_256_GCM_SHA384");
	g_cctx[3] = client_ctx("TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256");
	fuzz_poll_idle();
}

/* ------------------------------------------------ the target's bytes */

struct out_check {
	/* TLS record layer */
	uint8_t rh[5];
	unsigned rh_have;
	size_t rec_left;
	bool eof;
	uint64_t bytes;
	/* NVMe/TCP PDUs decrypted by the client */
	uint8_t ph[24];
	unsigned ph_have;
	uint64_t pdu_left;
	bool term_sent;
	bool icresp;
	int connect_status;	/* -1: no answer yet */
};

static struct out_check g_out;

static void bad(const char *what)
{
	fprintf(fuzz_stderr, "fuzz_tls: %s\n", what);
	abort();
}

/* What the target wrote on the socket: TLS records, nothing after the end of the stream. */
static void check_records(const uint8_t *p, size_t n)
{
	g_out.bytes += n;
	while (n) {
		if (g_out.rec_left) {
			size_t k = n < g_out.rec_left ? n : g_out.rec_left;

			g_out.rec_left -= k;
			p += k;
			n -= k;
			continue;
		}
		g_out.rh[g_out.rh_have++] = *p++;
		n--;
		if (g_out.rh_have < 5)
			continue;
		g_out.rh_have = 0;
		size_t len = (size_t)g_out.rh[3] << 8 | g_out.rh[4];

		if (g_out.rh[0] < 20 || g_out.rh[0] > 23)
			bad("the target wrote a TLS record of an unknown content type");
		/* (no check of the legacy version: an alert before one is agreed echoes whatever the ClientHello said) */
		if (len == 0 || len > 16384 + 256)
			bad("the target wrote a TLS record of a length TLS 1.3 does not allow");
		g_out.rec_left = len;
	}
}

/* The NVMe/TCP stream the client decrypted: well-formed controller-to-host PDUs; the Connect's answer. */
static void check_pdus(const uint8_t *p, size_t len)
{
	while (len) {
		if (g_out.pdu_left) {
			size_t k = len < g_out.pdu_left ? len : (size_t)g_out.pdu_left;

			g_out.pdu_left -= k;
			p += k;
			len -= k;
			continue;
		}
		if (g_out.term_sent)
			bad("bytes after a C2HTermReq");
		g_out.ph[g_out.ph_have++] = *p++;
		len--;
		/* a CapsuleResp is read whole (its CQE); other PDUs by their common header */
		if (g_out.ph_have < 8 || (g_out.ph[0] == NVME_TCP_PDU_CAPSULE_RESP && g_out.ph_have < 24))
			continue;
		uint8_t type = g_out.ph[0], hlen = g_out.ph[2];
		uint32_t plen;

		memcpy(&plen, g_out.ph + 4, 4);
		switch (type) {
		case NVME_TCP_PDU_IC_RESP:
			if (hlen != 128 || plen != 128 || g_out.icresp)
				bad("a malformed or second ICResp");
			g_out.icresp = true;
			break;
		case NVME_TCP_PDU_C2H_TERM_REQ:
			if (hlen != 24 || plen < 24 || plen > 24 + NVME_TCP_TERM_REQ_MAX_DATA)
				bad("a malformed C2HTermReq");
			g_out.term_sent = true;
			break;
		case NVME_TCP_PDU_CAPSULE_RESP:
			if (hlen != 24 || (plen != 24 && plen != 28))
				bad("a malformed CapsuleResp");
			if (!g_out.icresp)
				bad("a CapsuleResp before the ICResp");
			{
				struct nvme_cpl c;

				memcpy(&c, g_out.ph + 8, sizeof(c));
				if (c.cid == 0xC0DE && g_out.connect_status < 0)
					g_out.connect_status = nvme_cpl_status(&c) & 0x7ff;
			}
			break;
		case NVME_TCP_PDU_R2T:
			if (hlen != 24 || (plen != 24 && plen != 28))
				bad("a malformed R2T");
			break;
		case NVME_TCP_PDU_C2H_DATA:
			if (hlen != 24 || plen <= 24)
				bad("a malformed C2HData");
			break;
		default:
			bad("a PDU type a controller never sends");
		}
		g_out.pdu_left = plen - g_out.ph_have;
		g_out.ph_have = 0;
	}
}

/* ---------------------------------------------------------- the host's side */

struct client {
	int fd;			/* the host's end of the socketpair */
	SSL *ssl;		/* NULL: raw mode */
	BIO *rbio, *wbio;	/* memory BIOs: the harness moves their bytes to and from fd */
	char identity[DBK_TLS_IDENTITY_MAX + 1];
	size_t idlen;
	uint8_t psk[DBK_TLS_PSK_MAX];
	size_t psk_len;
	int cipher;
	bool tamper;		/* a byte is still to be changed */
	bool tampered;		/* ... and was */
	size_t tamper_at;	/* offset in what the client sends after the handshake */
	uint64_t sent_after_hs;
	bool hs_done;
	/* the client's records after the handshake: only a byte of a record's body is changed */
	uint8_t rh[5];
	unsigned rh_have;
	size_t body_left;
};

static struct client g_c;

/* Move what the target wrote into the client's BIO (or only check it, raw mode). false once the target closed. */
static bool pull(void)
{
	uint8_t buf[16384];

	for (;;) {
		ssize_t n = read(g_c.fd, buf, sizeof(buf));

		if (n > 0) {
			if (g_out.eof)
				bad("bytes after the end of the stream");
			check_records(buf, (size_t)n);
			if (g_c.ssl && BIO_write(g_c.rbio, buf, (int)n) != (int)n)
				abort();
			continue;
		}
		if (n == 0) {
			g_out.eof = true;
			return false;
		}
		if (errno == EAGAIN || errno == EINTR)
			return true;
		g_out.eof = true;	/* ECONNRESET: closed with bytes unread */
		return false;
	}
}

/* Write bytes the host sends; what the socket does not take now stays in *pending (a queue of one buffer). */
static uint8_t g_wq[1 << 20];
static size_t g_wq_len;

/* DBK_FUZZ_TLS_RECORD=FILE: what the host sent, as a raw-mode input (mode 0 and the bytes), for the seeds. */
static FILE *g_record;

static void push_bytes(const uint8_t *p, size_t n)
{
	if (g_record && fwrite(p, 1, n, g_record) != n)
		abort();
	if (g_wq_len + n > sizeof(g_wq))
		n = sizeof(g_wq) - g_wq_len;	/* the host gives up on the rest */
	memcpy(g_wq + g_wq_len, p, n);
	g_wq_len += n;
}

static void flush_wq(void)
{
	size_t off = 0;

	while (off < g_wq_len) {
		ssize_t n = send(g_c.fd, g_wq + off, g_wq_len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n <= 0)
			break;	/* full (EAGAIN), or the target closed (EPIPE) */
		off += (size_t)n;
	}
	memmove(g_wq, g_wq + off, g_wq_len - off);
	g_wq_len -= off;
}

/* The client's encrypted bytes: to the socket queue, one of them changed if the input says so. */
static void drain_client(void)
{
	uint8_t buf[16384];
	int n;

	while ((n = BIO_read(g_c.wbio, buf, sizeof(buf))) > 0) {
		for (int i = 0; g_c.hs_done && i < n; i++, g_c.sent_after_hs++) {
			if (g_c.body_left) {
				/* the first body byte at or after the offset (a changed header would only stall) */
				if (g_c.tamper && g_c.sent_after_hs >= g_c.tamper_at) {
					buf[i] ^= 0x20;
					g_c.tamper = false;
					g_c.tampered = true;
				}
				g_c.body_left--;
				continue;
			}
			g_c.rh[g_c.rh_have++] = buf[i];
			if (g_c.rh_have == 5) {
				g_c.rh_have = 0;
				g_c.body_left = (size_t)g_c.rh[3] << 8 | g_c.rh[4];
			}
		}
		push_bytes(buf, (size_t)n);
	}
}

/* One round: the client's bytes out, the target runs, its bytes in. */
static void spin(void)
{
	if (g_c.ssl)
		drain_client();
	flush_wq();
	dbk_reactor_poll(0);
	fuzz_poll_idle();
	pull();
}

static int psk_use_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen, SSL_SESSION **sess)
{
	static const unsigned char aes128[2] = {0x13, 0x01}, aes256[2] = {0x13, 0x02};
	const SSL_CIPHER *c = SSL_CIPHER_find(ssl, g_c.cipher == DBK_TLS_CIPHER_SHA256 ? aes128 : aes256);
	SSL_SESSION *s;

	*sess = NULL;
	if (c == NULL || (md != NULL && md != SSL_CIPHER_get_handshake_digest(c)))
		return 1;
	s = SSL_SESSION_new();
	if (s == NULL || SSL_SESSION_set1_master_key(s, g_c.psk, g_c.psk_len) != 1 ||
	    SSL_SESSION_set_cipher(s, c) != 1 ||
	    SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION) != 1) {
		SSL_SESSION_free(s);
		return 0;
	}
	*sess = s;
	*id = (const unsigned char *)g_c.identity;
	*idlen = g_c.idlen;
	return 1;
}

static SSL_CTX *client_ctx(const char *suites)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 || SSL_CTX_set_ciphersuites(ctx, suites) != 1)
		abort();
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_psk_use_session_callback(ctx, psk_use_cb);
	return ctx;
}

/* SSL_read everything the client can decrypt; false on a fatal TLS error (a changed record, the close). */
static bool client_read(void)
{
	uint8_t buf[16384];

	for (;;) {
		size_t n = 0;

		ERR_clear_error();
		if (SSL_read_ex(g_c.ssl, buf, sizeof(buf), &n) == 1) {
			check_pdus(buf, n);
			continue;
		}
		int e = SSL_get_error(g_c.ssl, 0);

		ERR_clear_error();
		return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
	}
}

static void client_write(const uint8_t *p, size_t n)
{
	while (n) {
		size_t w = 0;

		ERR_clear_error();
		if (SSL_write_ex(g_c.ssl, p, n, &w) != 1) {
			ERR_clear_error();
			return;	/* the connection failed */
		}
		p += w;
		n -= w;
		spin();
		client_read();
	}
}

/* An ICReq and a Connect (admin queue, cid 0xC0DE) of host h to subnqn, as one burst. */
static void send_connect(int h, const char *subnqn)
{
	uint8_t b[128 + 72 + 1024];
	struct nvme_tcp_ic_req *ic = (struct nvme_tcp_ic_req *)(void *)b;
	struct nvme_tcp_cmd *cc = (struct nvme_tcp_cmd *)(void *)(b + 128);
	struct nvmf_connect_cmd *c = (struct nvmf_connect_cmd *)(void *)&cc->ccsqe;
	struct nvmf_connect_data *d = (struct nvmf_connect_data *)(void *)(b + 128 + 72);

	memset(b, 0, sizeof(b));
	ic->common.pdu_type = NVME_TCP_PDU_IC_REQ;
	ic->common.hlen = 128;
	ic->common.plen = 128;
	ic->maxr2t = 0;
	cc->common.pdu_type = NVME_TCP_PDU_CAPSULE_CMD;
	cc->common.hlen = 72;
	cc->common.pdo = 72;
	cc->common.plen = 72 + 1024;
	c->opc = NVME_OPC_FABRIC;
	c->cid = 0xC0DE;
	c->fctype = NVMF_FCTYPE_CONNECT;
	c->sgl1.type = NVME_SGL_TYPE_DATA_BLOCK;
	c->sgl1.subtype = NVME_SGL_SUBTYPE_OFFSET;
	c->sgl1.length = 1024;
	c->sqsize = 31;
	c->kato = 0;
	memset(d->hostid, 0x5b, sizeof(d->hostid));
	d->cntlid = 0xffff;
	snprintf(d->subnqn, sizeof(d->subnqn), "%s", subnqn);
	snprintf(d->hostnqn, sizeof(d->hostnqn), "%.223s", g_hostnqn[h]);
	client_write(b, sizeof(b));
}

/* Run until the target is done with the connection (it closed its end). */
static void wait_closed(void)
{
	for (int i = 0; i < SPINS && !g_out.eof; i++) {
		spin();
		if (g_c.ssl && !g_out.eof)
			client_read();
		if (!g_out.eof && i > 16)
			fuzz_poll_skip();
	}
	if (!g_out.eof)
		bad("the target did not close the connection after the host closed it (hang or leak)");
}

static void raw_session(struct fuzz_in *in)
{
	while (in->n && !g_out.eof) {
		size_t k = fuzz_rng_chunk(&g_rng, in->n);

		push_bytes(in->p, k);
		in->p += k;
		in->n -= k;
		for (int i = 0; i < 3; i++)
			spin();
	}
}

static json_t *g_qpairs;
static volatile bool g_qpairs_done;

static void qpairs_cb(void *ctx, json_t *result)
{
	(void)ctx;
	g_qpairs = result;	/* ours now */
	g_qpairs_done = true;
}

/* nvmf_subsystem_get_qpairs of subnqn after a Connect of host h: its queue shows the TLS session it came by. */
static void check_qpairs(int h, const char *subnqn, int version)
{
	struct dbk_nvmf_subsystem *s = dbk_nvmf_subsystem_find(subnqn);
	size_t i;
	json_t *q;
	int found = 0;

	if (!s)
		abort();
	g_qpairs = NULL;
	g_qpairs_done = false;
	dbk_nvmf_subsystem_qpairs_json(s, qpairs_cb, NULL);
	fuzz_poll_until(&g_qpairs_done, "nvmf_subsystem_get_qpairs");
	if (!json_is_array(g_qpairs))
		bad("nvmf_subsystem_get_qpairs failed");
	json_array_foreach(g_qpairs, i, q) {
		json_t *t = json_object_get(q, "tls");
		const char *v = json_string_value(json_object_get(t, "version")),
			   *cs = json_string_value(json_object_get(t, "cipher_suite")),
			   *hn = json_string_value(json_object_get(t, "hostnqn")),
			   *sn = json_string_value(json_object_get(t, "subnqn"));

		if (!t || !v || !cs || !hn || !sn)
			bad("a queue over TLS without its \"tls\" details in nvmf_subsystem_get_qpairs");
		if (strcmp(v, "TLSv1.3") != 0 || strcmp(cs, dbk_tls_cipher_name(g_c.cipher)) != 0 ||
		    strcmp(hn, g_hostnqn[h]) != 0 || strcmp(sn, subnqn) != 0 ||
		    json_integer_value(json_object_get(t, "psk_identity_version")) != version)
			bad("nvmf_subsystem_get_qpairs shows another TLS session than the host's");
		found++;
	}
	if (found != 1)
		bad("nvmf_subsystem_get_qpairs does not show the one queue connected over TLS");
	json_decref(g_qpairs);
	g_qpairs = NULL;
}

/* May a handshake with this identity and key succeed (and must it)? */
static bool expect_handshake(int h, uint8_t flags, bool own_identity)
{
	int suites = (flags >> 1) & 3;
	int cipher = dbk_tls_psk_cipher(&g_psk[h]);

	if (own_identity || h == H_NOPSK || h == H_REMOVED || h == H_UNKNOWN || h == H_BADPSK || (flags & 8) ||
	    (flags & 0x30) == 0x10 || (h == H_LONG && !(flags & 1)))
		return false;
	if ((suites == 1 && cipher != DBK_TLS_CIPHER_SHA256) || (suites == 2 && cipher != DBK_TLS_CIPHER_SHA384))
		return false;
	return true;
}

static void client_session(struct fuzz_in *in)
{
	int h = fin_u8(in) % NHOSTS;
	uint8_t flags = fin_u8(in);
	int suites = (flags >> 1) & 3;
	bool own_id = (flags & 0x40) != 0;
	const char *subnqn = (flags & 0x20) ? NVME_DISC_SUBSYS_NQN : (flags & 0x10) ? SUBNQN2 : SUBNQN;
	struct dbk_tls_psk k = g_pskdefs[h].len ? g_psk[h] : g_psk[0];
	int L;

	if (flags & 8)
		k.key[k.len - 1] ^= 1;	/* the host's key, one bit off */
	g_c.cipher = dbk_tls_psk_cipher(&k);
	L = dbk_tls_psk_for(&k, flags & 1, g_hostnqn[h], subnqn, g_c.identity, sizeof(g_c.identity), g_c.psk);
	dbk_tls_wipe(&k, sizeof(k));
	if (L < 0) {
		/* a version 0 identity of 255 bytes and more: no TLS PSK (HKDF-Expand-Label's context) for it */
		if (h != H_LONG || (flags & 1))
			abort();
		snprintf(g_c.identity, sizeof(g_c.identity), "NVMe0R01 %.223s %.223s", g_hostnqn[h], subnqn);
		memset(g_c.psk, 0x77, 32);
		L = 32;
	}
	g_c.psk_len = (size_t)L;
	g_c.idlen = strlen(g_c.identity);
	if (own_id) {
		g_c.idlen = fin_u8(in);
		g_c.idlen = fin_bytes(in, g_c.identity, g_c.idlen);
		if (g_c.idlen == 0)
			g_c.identity[g_c.idlen++] = 'N';
	}
	uint8_t conn = fin_u8(in);

	g_c.tamper = (conn & 4) != 0;
	g_c.tamper_at = fin_u16(in);
	g_c.ssl = SSL_new(g_cctx[suites]);
	g_c.rbio = BIO_new(BIO_s_mem());
	g_c.wbio = BIO_new(BIO_s_mem());
	if (!g_c.ssl || !g_c.rbio || !g_c.wbio)
		abort();
	SSL_set_bio(g_c.ssl, g_c.rbio, g_c.wbio);
	SSL_set_connect_state(g_c.ssl);

	bool ok = false;

	for (int i = 0; i < SPINS; i++) {
		ERR_clear_error();
		int rc = SSL_do_handshake(g_c.ssl);

		if (rc == 1) {
			ok = true;
			break;
		}
		int e = SSL_get_error(g_c.ssl, rc);

		ERR_clear_error();
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			break;
		spin();
		if (g_out.eof && !BIO_ctrl_pending(g_c.rbio)) {
			/* the target closed: let the client read the alert, then stop */
			SSL_do_handshake(g_c.ssl);
			ERR_clear_error();
			break;
		}
	}
	bool want = expect_handshake(h, flags, own_id);

	if (fuzz_verbose)
		fprintf(fuzz_stderr, "fuzz_tls: host %d flags 0x%02x: handshake %s (expected %s)\n", h, flags,
			ok ? "done" : "failed",
			own_id ? "either way: the input's identity" : want ? "to succeed" : "to fail");
	if (ok && !SSL_session_reused(g_c.ssl))
		bad("a handshake without the PSK succeeded");
	if (ok && !want && !own_id)
		bad("a TLS handshake succeeded that the target must refuse");
	if (!ok && want)
		bad("a TLS handshake failed that the target must accept");
	if (!ok)
		return;
	drain_client();	/* the client's Finished: the last of the handshake */
	g_c.hs_done = true;
	spin();
	if (conn & 1) {
		int ch = (conn & 2) ? (h + 1) % NHOSTS : h;

		g_out.connect_status = -1;
		send_connect(ch, subnqn);
		for (int i = 0; i < 64 && g_out.connect_status < 0 && !g_out.eof; i++) {
			spin();
			client_read();
		}
		if (!own_id && (!(conn & 4) || g_c.tamper_at >= 128 + 72 + 1024 + 64)) {
			/* untouched: the Connect is answered, and succeeds exactly for the identity's host */
			bool match = ch == h;

			if (fuzz_verbose)
				fprintf(fuzz_stderr, "fuzz_tls: Connect of host %d: status 0x%x\n", ch,
					g_out.connect_status);
			if (g_out.connect_status < 0)
				bad("no answer to the Connect over TLS");
			if ((g_out.connect_status == 0) != match)
				bad(match ? "a Connect of the identity's host failed over TLS"
					  : "a Connect of another host than the identity's succeeded over TLS");
			if (match)
				check_qpairs(h, subnqn, flags & 1);
		}
	}
	while (in->n && !g_out.eof) {
		size_t k2 = fuzz_rng_chunk(&g_rng, in->n);

		client_write(in->p, k2);
		in->p += k2;
		in->n -= k2;
		spin();
		client_read();
	}
	spin();
	client_read();
	if (g_c.tampered) {
		/* a record that does not verify ends the connection, before the host closes it */
		for (int i = 0; i < 64 && !g_out.eof; i++) {
			spin();
			client_read();
		}
		if (!g_out.eof)
			bad("the target took a TLS record with a changed byte");
	}
	/* the host closes: close_notify */
	ERR_clear_error();
	SSL_shutdown(g_c.ssl);
	ERR_clear_error();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_env_init(0);
	setup_target();
	if (getenv("DBK_FUZZ_TLS_RECORD")) {
		g_record = fopen(getenv("DBK_FUZZ_TLS_RECORD"), "wb");
		if (!g_record || fputc(0, g_record) == EOF)
			abort();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	uint8_t mode = fin_u8(&in);
	int sv[2];

	fuzz_rng_seed(&g_rng, data, size);
	memset(&g_out, 0, sizeof(g_out));
	memset(&g_c, 0, sizeof(g_c));
	g_out.connect_status = -1;
	g_wq_len = 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	g_c.fd = sv[1];
	if (!(mode & 1) && (mode & 2)) {
		/* a TLS server of its own, destroyed while the handshake is under way (a listener removed) */
		char err[256];
		struct dbk_tls_server *srv = dbk_tls_server_create(dbk_nvmf_tgt_find_transport("TCP"), &g_addr,
								   30ull * 1000 * 1000 * 1000, err, sizeof(err));

		if (!srv)
			abort();
		dbk_tls_server_accept(srv, sv[0]);
		raw_session(&in);
		dbk_tls_server_destroy(srv);
		fuzz_poll_idle();
	} else {
		dbk_tls_server_accept(g_srv, sv[0]);
		if (mode & 1)
			client_session(&in);
		else
			raw_session(&in);
	}
	if (g_c.ssl)
		drain_client();
	flush_wq();
	shutdown(g_c.fd, SHUT_WR);
	wait_closed();
	SSL_free(g_c.ssl);
	dbk_tls_wipe(g_c.psk, sizeof(g_c.psk));
	close(g_c.fd);
	fuzz_poll_idle();
	/* the connection's qpair, if the handshake made one, is gone with it */
	for (int i = 0; i < 1000 && atomic_load(&g_nvmf_tgt.live_qpairs) != 0; i++)
		fuzz_poll_skip();
	if (atomic_load(&g_nvmf_tgt.live_qpairs) != 0)
		bad("a qpair is left after its TLS connection closed");
	ERR_clear_error();
	return 0;
}
