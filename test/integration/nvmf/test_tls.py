"""NVMe/TCP over TLS 1.3 with PSKs (issue 15, sections 3 and 4) against the real daosblk-tgt.

Hosts: OpenSSL's own client program (`openssl s_client -psk`, a TLS stack nobody here wrote) carrying this
directory's Python NVMe/TCP host, and daosblk-perf --psk. The PSK identities and TLS PSKs the s_client
host uses are derived here in Python (hmac, RFC 5869 / RFC 8446 written out), independently of the
target's C code. Negative cases: a wrong identity, a wrong key, an unsupported cipher suite, TLS 1.2, a
plaintext ICReq, garbage and truncated TLS records, a record corrupted after the handshake, a Connect naming
another host than the identity. Each gets a clean failure and a close; after every case the daemon still
serves a good TLS host, and at the end it exits 0 on SIGINT (under ASan: nothing leaked).
Skips (77) without the openssl program.
"""

import base64
import hashlib
import hmac
import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nvmetcp as nt  # noqa: E402

NQN = "nqn.2016-06.io.spdk:tls1"
PLAIN_NQN = "nqn.2016-06.io.spdk:plain1"
HOST1 = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555"
HOST2 = "nqn.2014-08.org.nvmexpress:uuid:66666666-7777-8888-9999-000000000000"
HOST3 = "nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"   # allowed, no PSK
BS = 512
OPENSSL = shutil.which("openssl")
HS_TIMEOUT_MS = 3000

# ------------------------------------------------------------- PSKs (independent of the target's code)


def interchange(key, hh):
    crc = struct.pack("<I", zlib.crc32(key) & 0xFFFFFFFF)
    return "NVMeTLSkey-1:%02d:%s:" % (hh, base64.b64encode(key + crc).decode())


def hkdf_expand_label(hname, secret, label, ctx, length):
    hl = hashlib.new(hname).digest_size
    prk = hmac.new(b"\0" * hl, secret, hname).digest()
    lab = b"tls13 " + label
    info = struct.pack(">H", length) + bytes([len(lab)]) + lab + bytes([len(ctx)]) + ctx
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hname).digest()
        out += t
        i += 1
    return out[:length]


def tls_psk(key, hh, hostnqn, subnqn, version=0):
    """(identity, TLS PSK) for a configured key with hash indicator hh."""
    cipher = hh if hh else (1 if len(key) == 32 else 2)
    hname = "sha256" if cipher == 1 else "sha384"
    retained = key if hh == 0 else hkdf_expand_label(hname, key, b"HostNQN", hostnqn.encode(), len(key))
    if version == 0:
        ident = "NVMe0R%02d %s %s" % (cipher, hostnqn, subnqn)
        ctx = ident.encode()
    else:
        digest = base64.b64encode(hmac.new(retained, ("%s %s NVMe-over-Fabrics" % (hostnqn, subnqn)).encode(),
                                           hname).digest()).decode()
        ident = "NVMe1R%02d %s %s %s" % (cipher, hostnqn, subnqn, digest)
        ctx = ("%02d %s" % (cipher, digest)).encode()
    return ident, hkdf_expand_label(hname, retained, b"nvme-tls-psk", ctx, len(key))


KEY1 = bytes.fromhex("5512DBB6737D0106F65975B773DFB011FFC344BCF442E2DD6D8BC4870B5D5B03")  # the spec's example
KEY2 = bytes(range(32, 64))
KEY384 = bytes(range(100, 148))

# ------------------------------------------------------------- a TLS "socket": openssl s_client


class SClient:
    """The byte stream of `openssl s_client -psk`, with the socket calls nvmetcp.Host makes."""

    def __init__(self, port, identity, psk, extra=(), timeout=5.0):
        args = [OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port, "-quiet", "-tls1_3",
                "-psk_identity", identity, "-psk", psk.hex()] + list(extra)
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.timeout = timeout
        self.err = b""

    def setsockopt(self, *a):
        pass

    def settimeout(self, t):
        self.timeout = t

    def sendall(self, data):
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise ConnectionResetError("s_client is gone")

    def recv(self, n):
        r, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        if not r:
            raise socket.timeout("no data from s_client")
        return os.read(self.proc.stdout.fileno(), n)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, self.err = self.proc.communicate(timeout=5)
        except (subprocess.TimeoutExpired, ValueError):
            self.proc.kill()
            self.proc.wait()

    def wait_exit(self, timeout=10):
        """The client's exit status once the target has closed (it must exit by itself)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        rc = self.proc.wait(timeout=timeout)
        self.err = self.proc.stderr.read()
        return rc


def tls_host(port, identity, psk, extra=()):
    h = nt.Host.__new__(nt.Host)
    h.sock = SClient(port, identity, psk, extra)
    h.hdgst = h.ddgst = False
    h.cid = 0
    h.buf = b""
    return h


def tls_admin(port, hostnqn=HOST1, key=KEY1, hh=1, version=0, subnqn=NQN, connect_as=None):
    ident, psk = tls_psk(key, hh, hostnqn, subnqn, version)
    h = tls_host(port, ident, psk)
    h.connect_ic()
    cpl = h.fabric_connect(subnqn, connect_as or hostnqn)
    return h, cpl


def get_log(h, lid, nbytes):
    cmd = nt.sqe(0x02, h.next_cid(), nsid=0xFFFFFFFF, cdw10=lid | ((nbytes // 4 - 1) << 16), sgl_len=nbytes)
    return h.command(cmd, read_len=nbytes)


@unittest.skipIf(OPENSSL is None, "no openssl program")
class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.environ["DBK_TCP_ICREQ_TIMEOUT_MS"] = str(HS_TIMEOUT_MS)
        cls.port = nt.free_port()
        cls.plain_port = nt.free_port()
        cls.tgt = nt.Target()
        t = cls.tgt
        t.rpc("nvmf_create_transport", "-t", "TCP")
        t.rpc("bdev_malloc_create", 16, BS, "-b", "Malloc0")
        t.rpc("bdev_malloc_create", 8, BS, "-b", "Malloc1")
        cls.keys = {}
        for name, key, hh in (("key1", KEY1, 1), ("key2", KEY2, 1), ("key384", KEY384, 2)):
            path = os.path.join(t.dir, name)
            with open(path, "w") as f:
                f.write(interchange(key, hh) + "\n")
            os.chmod(path, 0o600)
            cls.keys[name] = path
            t.rpc("keyring_file_add_key", name, path)
        t.rpc("nvmf_create_subsystem", NQN, "-s", "SPDK00000000000001")
        t.rpc("nvmf_subsystem_add_ns", NQN, "Malloc0")
        t.rpc("nvmf_subsystem_add_listener", NQN, "-t", "tcp", "-a", "127.0.0.1", "-s", cls.port, "--secure-channel")
        t.rpc("nvmf_subsystem_add_host", NQN, HOST1, "--psk", "key1")
        t.rpc("nvmf_subsystem_add_host", NQN, HOST2, "--psk", "key384")
        t.rpc("nvmf_subsystem_add_host", NQN, HOST3)
        # A plain subsystem on a plain listener (discovery is served there too).
        t.rpc("nvmf_create_subsystem", PLAIN_NQN, "-a", "-s", "SPDK00000000000002")
        t.rpc("nvmf_subsystem_add_ns", PLAIN_NQN, "Malloc1")
        t.rpc("nvmf_subsystem_add_listener", PLAIN_NQN, "-t", "tcp", "-a", "127.0.0.1", "-s", cls.plain_port)

    @classmethod
    def tearDownClass(cls):
        rc = cls.tgt.stop()
        if rc != 0:
            print(cls.tgt.logtext()[-4000:], file=sys.stderr)
        assert rc == 0, "daosblk-tgt exited with %d after SIGINT" % rc

    def tearDown(self):
        self.assertTrue(self.tgt.alive(), "daemon died:\n" + self.tgt.logtext()[-3000:])
        h, cpl = tls_admin(self.port)
        self.assertTrue(cpl.ok, cpl)
        h.enable()
        cpl, data = h.identify(1)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(data[4:24].rstrip(b" \0"), b"SPDK00000000000001")
        h.close()

    def expect_refused(self, h):
        """The handshake fails: no ICResp, the target closes, s_client exits by itself with an error."""
        try:
            h.icreq()
        except ConnectionResetError:
            pass
        with self.assertRaises((nt.Closed, ConnectionResetError, socket.timeout)):
            h.recv_pdu()
        rc = h.sock.wait_exit()
        self.assertNotEqual(rc, 0, "s_client said the handshake worked")
        return h.sock.err.decode(errors="replace")

    def log_since(self, mark):
        return self.tgt.logtext()[mark:]

    def raw_refused(self, data, wait=None):
        """Raw bytes on the secure port: the target closes, and nothing it sends is an ICResp."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        if data:
            s.sendall(data)
        got = b""
        t0 = time.monotonic()
        while True:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        elapsed = time.monotonic() - t0
        s.close()
        # Anything the target sent is a TLS alert record (type 21), never an NVMe/TCP PDU.
        if got:
            self.assertEqual(got[0], 21, "target answered %r" % got[:16])
        if wait is not None:
            self.assertLess(elapsed, wait)
        return got, elapsed

    # ------------------------------------------------------------------ working hosts
    def test_session_sha256_v0(self):
        h, cpl = tls_admin(self.port)
        self.assertTrue(cpl.ok, cpl)
        cntlid = cpl.cdw0 & 0xFFFF
        h.enable()
        ident, psk = tls_psk(KEY1, 1, HOST1, NQN)
        io = tls_host(self.port, ident, psk)
        io.connect_ic()
        self.assertTrue(io.fabric_connect(NQN, HOST1, qid=1, cntlid=cntlid).ok)
        pattern = bytes((i * 13) & 0xFF for i in range(4096))
        self.assertTrue(io.write_incapsule(1, 64, pattern, BS).ok)
        cpl, back = io.read(1, 64, 8, BS)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(back, pattern)
        qps = self.tgt.rpc("nvmf_subsystem_get_qpairs", NQN)
        tls = [q.get("tls") for q in qps]
        self.assertTrue(tls and all(tls), qps)
        self.assertEqual(tls[0]["cipher_suite"], "TLS_AES_128_GCM_SHA256")
        self.assertEqual(tls[0]["version"], "TLSv1.3")
        self.assertEqual(tls[0]["hostnqn"], HOST1)
        io.close()
        h.close()

    def test_session_identity_v1(self):
        h, cpl = tls_admin(self.port, version=1)
        self.assertTrue(cpl.ok, cpl)
        h.close()

    def test_perf_sha384_and_discovery(self):
        perf = os.path.join(os.environ["DBK_BUILD_DIR"], "tools", "perf", "daosblk-perf")
        base = [perf, "--hostnqn", HOST2, "--psk", self.keys["key384"], "-t", "1", "--no-progress", "--json"]
        for extra in (["-r", "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:%d subnqn:%s" % (self.port, NQN),
                       "-w", "randrw", "-o", "65536", "-q", "8", "--verify"],
                      # no subnqn: discovery over TLS (the discovery NQN with HOST2's PSK), then the subsystem
                      ["-r", "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:%d" % self.port,
                       "--psk-identity-version", "1", "-w", "randread", "-q", "16"]):
            p = subprocess.run(base + extra, capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            r = json.loads(p.stdout)
            self.assertEqual(r["tls"]["cipher_suite"], "TLS_AES_256_GCM_SHA384")
            self.assertGreater(r["ios"], 0)
            self.assertEqual(r["errors"], 0, r)
            if "--verify" in extra:
                self.assertEqual(r["verify"]["mismatches"], 0, r)
                self.assertGreater(r["verify"]["blocks_checked"], 0, r)

    def test_discovery_treq(self):
        h, cntlid = nt.admin_session(self.plain_port, nt.DISC_NQN, hostnqn=HOST1)
        cpl, data = get_log(h, 0x70, 4096)
        self.assertTrue(cpl.ok, cpl)
        numrec = struct.unpack_from("<Q", data, 8)[0]
        seen = {}
        for i in range(numrec):
            e = data[1024 + i * 1024:2048 + i * 1024]
            port = int(e[32:64].rstrip(b" \0"))
            seen[port] = (e[3], e[768])	# TREQ, TSAS SECTYPE
        self.assertEqual(seen[self.port][0] & 3, 1, "secure listener: TREQ 'required' expected: %r" % seen)
        self.assertEqual(seen[self.port][1], 2, "secure listener: SECTYPE TLS 1.3 expected: %r" % seen)
        self.assertEqual(seen[self.plain_port], (0, 0), "plain listener: 'not specified', no SECTYPE: %r" % seen)
        h.close()

    def test_listener_config(self):
        ls = self.tgt.rpc("nvmf_subsystem_get_listeners", NQN)
        self.assertTrue(ls[0].get("secure_channel"), ls)
        self.assertNotIn("secure_channel", self.tgt.rpc("nvmf_subsystem_get_listeners", PLAIN_NQN)[0])
        cfg = self.tgt.rpc("save_config")
        listeners = [m["params"] for sub in cfg["subsystems"] for m in sub.get("config", [])
                     if m["method"] == "nvmf_subsystem_add_listener"]
        secure = [p for p in listeners if p["nqn"] == NQN]
        self.assertTrue(secure and secure[0].get("secure_channel"), listeners)
        hosts = [m["params"] for sub in cfg["subsystems"] for m in sub.get("config", [])
                 if m["method"] == "nvmf_subsystem_add_host" and m["params"]["nqn"] == NQN]
        self.assertIn({"nqn": NQN, "host": HOST1, "psk": "key1"}, hosts)
        self.assertNotIn(base64.b64encode(KEY1).decode()[:20], json.dumps(cfg))
        # One socket per address: the plain subsystem cannot share the secure listener as plain.
        with self.assertRaises(RuntimeError) as e:
            self.tgt.rpc("nvmf_subsystem_add_listener", PLAIN_NQN, "-t", "tcp", "-a", "127.0.0.1", "-s", self.port)
        self.assertIn("secure channel", str(e.exception))

    # ------------------------------------------------------------------ refused handshakes
    def test_identity_of_host_without_psk(self):
        mark = len(self.tgt.logtext())
        ident, psk = tls_psk(KEY1, 1, HOST3, NQN)
        self.expect_refused(tls_host(self.port, ident, psk))
        self.assertIn("no PSK for host '%s'" % HOST3, self.log_since(mark))

    def test_identity_unknown_subsystem_and_malformed(self):
        for ident in ("NVMe0R01 %s nqn.2016-06.io.spdk:nosuch" % HOST1, "psk.spdk.io", "NVMe0G01 %s %s" % (HOST1, NQN)):
            self.expect_refused(tls_host(self.port, ident, tls_psk(KEY1, 1, HOST1, NQN)[1]))

    def test_wrong_key(self):
        mark = len(self.tgt.logtext())
        ident, _ = tls_psk(KEY1, 1, HOST1, NQN)
        _, wrong = tls_psk(KEY2, 1, HOST1, NQN)
        self.expect_refused(tls_host(self.port, ident, wrong))
        self.assertIn("TLS handshake on 127.0.0.1:%d failed" % self.port, self.log_since(mark))

    def test_wrong_hash_in_identity(self):
        # HOST1's key is a SHA-256 one: an identity saying 02 (SHA-384) is refused.
        ident, psk = tls_psk(KEY1, 1, HOST1, NQN)
        self.expect_refused(tls_host(self.port, ident.replace("NVMe0R01", "NVMe0R02"), psk))

    def test_unsupported_cipher(self):
        ident, psk = tls_psk(KEY1, 1, HOST1, NQN)
        self.expect_refused(tls_host(self.port, ident, psk, ["-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"]))

    def test_tls12_refused(self):
        ident, psk = tls_psk(KEY1, 1, HOST1, NQN)
        sc = SClient.__new__(SClient)
        sc.proc = subprocess.Popen([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % self.port, "-quiet", "-tls1_2",
                                    "-psk_identity", ident, "-psk", psk.hex()],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        sc.timeout = 5.0
        h = nt.Host.__new__(nt.Host)
        h.sock, h.hdgst, h.ddgst, h.cid, h.buf = sc, False, False, 0, b""
        self.expect_refused(h)

    def test_key_removed(self):
        path = os.path.join(self.tgt.dir, "key_tmp")
        with open(path, "w") as f:
            f.write(interchange(KEY2, 1))
        os.chmod(path, 0o600)
        host = "nqn.2014-08.org.nvmexpress:uuid:12121212-3434-5656-7878-909090909090"
        self.tgt.rpc("keyring_file_add_key", "key_tmp", path)
        self.tgt.rpc("nvmf_subsystem_add_host", NQN, host, "--psk", "key_tmp")
        h, cpl = tls_admin(self.port, hostnqn=host, key=KEY2)
        self.assertTrue(cpl.ok, cpl)
        h.close()
        self.tgt.rpc("keyring_file_remove_key", "key_tmp")
        ident, psk = tls_psk(KEY2, 1, host, NQN)
        self.expect_refused(tls_host(self.port, ident, psk))
        self.tgt.rpc("nvmf_subsystem_remove_host", NQN, host)

    # ------------------------------------------------------------------ raw bytes on a secure listener
    def test_plaintext_icreq(self):
        icreq = struct.pack("<BBBBI", 0, 0, 128, 0, 128) + struct.pack("<HBBI", 0, 0, 0, 0) + b"\0" * 112
        self.raw_refused(icreq, wait=HS_TIMEOUT_MS / 1000.0)

    def test_garbage(self):
        self.raw_refused(os.urandom(3000), wait=HS_TIMEOUT_MS / 1000.0)
        # A handshake record whose length is past what TLS allows.
        self.raw_refused(b"\x16\x03\x01\xff\xff" + os.urandom(100), wait=HS_TIMEOUT_MS / 1000.0)
        # A ClientHello cut short: the target waits for the rest, then gives up at the handshake deadline.
        self.raw_refused(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(20))

    def test_silent_connection(self):
        _, elapsed = self.raw_refused(b"")
        self.assertGreater(elapsed, HS_TIMEOUT_MS / 1000.0 * 0.5)

    def test_corrupted_record_after_handshake(self):
        """A proxy flips one bit in the host's first record after its Finished: the target drops the connection."""
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        pport = lsock.getsockname()[1]
        flipped = threading.Event()

        def proxy():
            c, _ = lsock.accept()
            s = socket.create_connection(("127.0.0.1", self.port))
            buf, appdata = b"", 0

            def up():
                nonlocal buf, appdata
                while True:
                    try:
                        d = c.recv(65536)
                    except OSError:
                        d = b""
                    if not d:
                        break
                    buf += d
                    out = b""
                    while len(buf) >= 5:
                        n = struct.unpack(">H", buf[3:5])[0]
                        if len(buf) < 5 + n:
                            break
                        rec, buf = bytearray(buf[:5 + n]), buf[5 + n:]
                        if rec[0] == 23:
                            appdata += 1
                            if appdata == 2:      # 1: the host's Finished; 2: its ICReq
                                rec[5 + n // 2] ^= 0x01
                                flipped.set()
                        out += rec
                    try:
                        s.sendall(out)
                    except OSError:
                        break
                s.close()

            def down():
                while True:
                    try:
                        d = s.recv(65536)
                    except OSError:
                        d = b""
                    if not d:
                        break
                    try:
                        c.sendall(d)
                    except OSError:
                        break
                c.close()

            a, b = threading.Thread(target=up), threading.Thread(target=down)
            a.start()
            b.start()
            a.join(15)
            b.join(15)

        th = threading.Thread(target=proxy, daemon=True)
        th.start()
        mark = len(self.tgt.logtext())
        ident, psk = tls_psk(KEY1, 1, HOST1, NQN)
        h = tls_host(pport, ident, psk)
        h.icreq()
        with self.assertRaises((nt.Closed, ConnectionResetError, socket.timeout)):
            h.recv_pdu()
        h.close()
        self.assertTrue(flipped.is_set(), "the proxy saw no record to corrupt")
        lsock.close()
        th.join(15)
        for _ in range(50):
            if "TLS receive" in self.log_since(mark):
                break
            time.sleep(0.1)
        self.assertIn("TLS receive", self.log_since(mark))

    # ------------------------------------------------------------------ the identity binds the Connect
    def test_connect_must_name_identity_host(self):
        # HOST1's TLS channel, a Connect as HOST2 (allowed on NQN with its own key): refused.
        h, cpl = tls_admin(self.port, connect_as=HOST2)
        self.assertFalse(cpl.ok, cpl)
        self.assertEqual((cpl.sct, cpl.sc), (1, 0x84), cpl)
        h.close()

    def test_connect_must_name_identity_subsystem(self):
        # A TLS channel for NQN, a Connect to the plain subsystem (which does not listen here anyway).
        ident, psk = tls_psk(KEY1, 1, HOST1, NQN)
        h = tls_host(self.port, ident, psk)
        h.connect_ic()
        cpl = h.fabric_connect(PLAIN_NQN, HOST1)
        self.assertFalse(cpl.ok, cpl)
        h.close()


if __name__ == "__main__":
    if OPENSSL is None:
        print("SKIP: no openssl program (Debian package openssl)")
        sys.exit(77)
    unittest.main(verbosity=2)
