"""A DH-HMAC-CHAP host (NVMe in-band authentication) for raw-socket tests, written from the
specification with Python's standard library only: hmac/hashlib for the HMACs, pow() for the
finite-field Diffie-Hellman. The RFC 7919 primes are public constants; they are read once from the
openssl command line (PEM DH parameters), so that no prime is typed in by hand here.

It builds every message by hand so a test can also break each of them on purpose.
"""

import base64
import hashlib
import hmac
import os
import secrets
import struct
import subprocess
import zlib

import nvmetcp as nt

HASHES = {1: "sha256", 2: "sha384", 3: "sha512"}
HASH_LEN = {1: 32, 2: 48, 3: 64}
DHGROUPS = {0: None, 1: "ffdhe2048", 2: "ffdhe3072", 3: "ffdhe4096", 4: "ffdhe6144", 5: "ffdhe8192"}

# Failure reason code explanations
RCE_FAILED, RCE_NOT_USABLE, RCE_CONCAT, RCE_HASH, RCE_DHGROUP, RCE_PAYLOAD, RCE_MESSAGE = 1, 2, 3, 4, 5, 6, 7
SC_AUTH_REQUIRED = 0x91  # SCT 1

_PRIMES = {}


def _der_ints(der):
    """The INTEGERs of a DER SEQUENCE (enough for DHParameter)."""
    def length(b, i):
        n = b[i]
        if n < 0x80:
            return n, i + 1
        k = n & 0x7F
        return int.from_bytes(b[i + 1:i + 1 + k], "big"), i + 1 + k

    assert der[0] == 0x30
    _, i = length(der, 1)
    out = []
    while i < len(der):
        assert der[i] == 0x02
        n, i = length(der, i + 1)
        out.append(int.from_bytes(der[i:i + n], "big"))
        i += n
    return out


def prime(group):
    name = DHGROUPS[group]
    if name not in _PRIMES:
        pem = subprocess.run(["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:" + name],
                             capture_output=True, check=True, text=True).stdout
        body = pem.split("-----BEGIN DH PARAMETERS-----")[1].split("-----END DH PARAMETERS-----")[0]
        der = base64.b64decode("".join(body.split()))
        p, g = _der_ints(der)[:2]
        assert g == 2 and p.bit_length() == {1: 2048, 2: 3072, 3: 4096, 4: 6144, 5: 8192}[group]
        _PRIMES[name] = p
    return _PRIMES[name]


def make_secret(key, transform=0):
    """A DHHC-1 string for raw key bytes, with its CRC-32 (as nvme gen-dhchap-key writes it)."""
    return "DHHC-1:%02d:%s:" % (transform, base64.b64encode(key + struct.pack("<I", zlib.crc32(key))).decode())


def parse_secret(s):
    parts = s.split(":")
    raw = base64.b64decode(parts[2])
    return int(parts[1]), raw[:-4]


def transform(secret, nqn):
    t, key = parse_secret(secret)
    if t == 0:
        return key
    return hmac.new(key, nqn.encode() + b"NVMe-over-Fabrics", HASHES[t]).digest()


def response(hash_id, key, chal, seq, tid, first, second, controller):
    msg = chal + struct.pack("<IHB", seq, tid, 0) + (b"Controller" if controller else b"HostHost")
    msg += first.encode() + b"\0" + second.encode()
    return hmac.new(key, msg, HASHES[hash_id]).digest()


def augment(hash_id, skey, chal):
    hk = hashlib.new(HASHES[hash_id], skey).digest()
    return hmac.new(hk, chal, HASHES[hash_id]).digest()


# ---------------------------------------------------------------- commands

def auth_send(h, msg, tl=None, secp=0xE9, spsp0=1, spsp1=1, sgl_len=None):
    cid = h.next_cid()
    tl = len(msg) if tl is None else tl
    raw40 = bytes([0, spsp0, spsp1, secp]) + struct.pack("<I", tl) + b"\0" * 16
    cmd = nt.sqe(0x7F, cid, fctype=0x05, sgl_len=len(msg) if sgl_len is None else sgl_len, incapsule=True,
                 raw40=raw40)
    cpl, _ = h.command(cmd, msg)
    return cpl


def auth_recv(h, al=4096, secp=0xE9, spsp0=1, spsp1=1):
    cid = h.next_cid()
    raw40 = bytes([0, spsp0, spsp1, secp]) + struct.pack("<I", al) + b"\0" * 16
    cpl, data = h.command(nt.sqe(0x7F, cid, fctype=0x06, sgl_len=al, raw40=raw40), read_len=al)
    return cpl, data


def negotiate_msg(tid, hashes=(1, 2, 3), groups=(0, 1, 2, 3, 4, 5), sc_c=0, napd=1, authid=1, halen=None,
                  dhlen=None):
    d = bytearray(64)
    d[0] = authid
    d[2] = len(hashes) if halen is None else halen
    d[3] = len(groups) if dhlen is None else dhlen
    d[4:4 + len(hashes)] = bytes(hashes)
    d[34:34 + len(groups)] = bytes(groups)
    return struct.pack("<BBHHBB", 0, 0, 0, tid, sc_c, napd) + bytes(d)


def parse_challenge(m):
    t, i, _, tid, hl, _, hashid, dhgid, dhvlen, seq = struct.unpack_from("<BBHHBBBBHI", m, 0)
    assert (t, i) == (1, 1), "not a Challenge: %r" % m[:8]
    return {"tid": tid, "hl": hl, "hash": hashid, "dhgroup": dhgid, "seq": seq, "c1": m[16:16 + hl],
            "dhv": m[16 + hl:16 + hl + dhvlen]}


def failure(m):
    """(rescode, explanation) of a Failure1, or None."""
    if m[0] == 0 and m[1] == 0xF1:
        return m[6], m[7]
    return None


class Session:
    """One queue's authentication as a host would run it, step by step."""

    def __init__(self, h, hostnqn, subnqn, secret, ctrl_secret=None, tid=7):
        self.h, self.hostnqn, self.subnqn = h, hostnqn, subnqn
        self.secret, self.ctrl_secret, self.tid = secret, ctrl_secret, tid

    def negotiate(self, **kw):
        cpl = auth_send(self.h, negotiate_msg(self.tid, **kw))
        assert cpl.ok, cpl
        return cpl

    def challenge(self):
        cpl, m = auth_recv(self.h)
        assert cpl.ok, cpl
        if failure(m):
            return None, failure(m)
        self.ch = parse_challenge(m)
        return self.ch, None

    def reply_msg(self, bidirectional=None, corrupt_response=False, dh_override=None):
        ch = self.ch
        hid, hl = ch["hash"], ch["hl"]
        assert hl == HASH_LEN[hid]
        dhv = b""
        chal = ch["c1"]
        self.skey = None
        if ch["dhgroup"]:
            p = prime(ch["dhgroup"])
            plen = (p.bit_length() + 7) // 8
            x = secrets.randbits(512) | 1
            dhv = pow(2, x, p).to_bytes(plen, "big")
            y = int.from_bytes(ch["dhv"], "big")
            assert 1 < y < p - 1 and len(ch["dhv"]) == plen
            self.skey = pow(y, x, p).to_bytes(plen, "big")
            chal = augment(hid, self.skey, chal)
            if dh_override is not None:
                dhv = dh_override
        key = transform(self.secret, self.hostnqn)
        r = response(hid, key, chal, ch["seq"], self.tid, self.hostnqn, self.subnqn, False)
        if corrupt_response:
            r = bytes([r[0] ^ 1]) + r[1:]
        bidi = self.ctrl_secret is not None if bidirectional is None else bidirectional
        self.c2 = os.urandom(hl) if bidi else bytes(hl)
        self.s2 = secrets.randbits(32) | 1 if bidi else 0
        return struct.pack("<BBHHBBBBHI", 1, 2, 0, self.tid, hl, 0, 1 if bidi else 0, 0, len(dhv), self.s2) + \
            r + self.c2 + dhv

    def reply(self, **kw):
        cpl = auth_send(self.h, self.reply_msg(**kw))
        assert cpl.ok, cpl
        return cpl

    def success1(self):
        cpl, m = auth_recv(self.h)
        assert cpl.ok, cpl
        if failure(m):
            return failure(m)
        t, i, _, tid, hl, _, rvalid = struct.unpack_from("<BBHHBBB", m, 0)
        assert (t, i, tid) == (1, 3, self.tid), m[:16]
        if self.ctrl_secret is not None:
            assert rvalid == 1, "bidirectional: Success1 has no controller response"
            chal = self.c2 if self.skey is None else augment(self.ch["hash"], self.skey, self.c2)
            key = transform(self.ctrl_secret, self.subnqn)
            want = response(self.ch["hash"], key, chal, self.s2, self.tid, self.subnqn, self.hostnqn, True)
            self.ctrl_ok = hmac.compare_digest(want, m[16:16 + hl])
        return None

    def success2(self):
        cpl = auth_send(self.h, struct.pack("<BBHH", 1, 4, 0, self.tid) + b"\0" * 10)
        assert cpl.ok, cpl

    def run(self, **neg):
        """The whole exchange; returns None on success, or the Failure1 (rescode, explanation)."""
        self.negotiate(**neg)
        ch, f = self.challenge()
        if f:
            return f
        self.reply()
        f = self.success1()
        if f:
            return f
        if self.ctrl_secret is not None:
            assert self.ctrl_ok, "the controller's response does not verify"
            self.success2()
        return None
