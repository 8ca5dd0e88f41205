#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_tls (fuzz/corpus/tls/), in the harness's input format (the top of
fuzz/fuzz_tls.c).

client-*: sessions of the harness's OpenSSL client (mode 1): each host and PSK (hash 01, 02, 00 of 32 and 48
bytes, none, removed, not allowed, damaged, with a 223-character NQN), identity versions 0 and 1, the cipher suites offered, a wrong key, an
identity naming a subsystem without a secure listener or the discovery subsystem, an identity of the input's
own; then an ICReq and a Connect (of the identity's host or another), admin commands over the TLS stream
(Property Set CC.EN, Identify with its 4 KiB of C2H data, Get Log Page, Keep Alive), and records with a byte
changed on the way.

raw-*: the bytes a host sent in some of those sessions (its ClientHello, Finished and records), recorded from
the harness's client with DBK_FUZZ_TLS_RECORD (real handshakes with the target: the ClientHello carries a
PSK binder that verifies; the rest belongs to a server random of the past), as raw-mode inputs, one ClientHello
to a server destroyed during the handshake, and a few that are not TLS (plain NVMe/TCP, HTTP).

    fuzz/record/make_tls_seeds.py [DIR] [--record HARNESS_BINARY]   (default DIR: fuzz/corpus/tls)
The raw-* seeds are written only with --record (e.g. build/fuzz/fuzz_tls, the gcc build's replay binary).
"""
import os
import struct
import subprocess
import sys
import tempfile

H0_01, H1_02, H2_00_48, H3_00_32, H_NOPSK, H_REMOVED, H_UNKNOWN, H_BADPSK, H_LONG = range(9)
V1 = 1
SUITE_128, SUITE_256, SUITE_BOTH_REV = 2, 4, 6
WRONG_KEY, TLS2, DISCOVERY, OWN_ID = 8, 0x10, 0x20, 0x40
CONNECT, OTHER_HOST, TAMPER = 1, 2, 4


def capsule(opc, cid, cdw10=0, nsid=0, length=0, fctype=None, ofst=None, value=None):
    """A CapsuleCmd PDU for an admin command without in-capsule data (C2H data through the SGL)."""
    sqe = bytearray(64)
    sqe[0] = opc
    struct.pack_into("<H", sqe, 2, cid)
    struct.pack_into("<I", sqe, 4, nsid)
    # SGL1: transport data block (0x5a) of length bytes
    struct.pack_into("<QIxxxB", sqe, 24, 0, length, 0x5A)
    if fctype is not None:
        sqe[4] = fctype
        sqe[5:8] = b"\0\0\0"
        if ofst is not None:
            struct.pack_into("<I", sqe, 44, ofst)
        if value is not None:
            struct.pack_into("<Q", sqe, 48, value)
    else:
        struct.pack_into("<I", sqe, 40, cdw10)
    return struct.pack("<BBBBI", 4, 0, 72, 0, 72) + bytes(sqe)


ADMIN = (capsule(0x7F, 1, fctype=0x00, ofst=0x14, value=0x460001)   # Property Set CC.EN
         + capsule(0x7F, 2, fctype=0x04, ofst=0x1C)                  # Property Get CSTS
         + capsule(0x06, 3, cdw10=1, length=4096)                    # Identify controller
         + capsule(0x06, 4, cdw10=2, length=4096)                    # Identify active namespaces
         + capsule(0x02, 5, cdw10=(127 << 16) | 2, nsid=0xFFFFFFFF, length=512)  # Get Log Page SMART
         + capsule(0x18, 6))                                          # Keep Alive


def client(host, flags=0, conn=CONNECT, tamper_at=0, own_id=b"", tail=b""):
    b = bytes([1, host, flags])
    if flags & OWN_ID:
        b += bytes([len(own_id)]) + own_id
    return b + bytes([conn]) + struct.pack("<H", tamper_at) + tail


HOST0 = b"nqn.2014-08.org.nvmexpress:uuid:b0b0b0b0-0000-4000-8000-000000000000"
SEEDS = {
    "client-h0-v0": client(H0_01),
    "client-h0-v1": client(H0_01, V1),
    "client-h1-v0": client(H1_02),
    "client-h1-v1-admin": client(H1_02, V1, tail=ADMIN),
    "client-h2-v0-admin": client(H2_00_48, 0, tail=ADMIN),
    "client-h3-v1": client(H3_00_32, V1),
    "client-h0-admin": client(H0_01, 0, tail=ADMIN),
    "client-h0-suite-128": client(H0_01, SUITE_128),
    "client-h1-suite-256": client(H1_02, SUITE_256),
    "client-h1-suite-128": client(H1_02, SUITE_128),
    "client-h0-suite-256": client(H0_01, SUITE_256),
    "client-h3-suites-reversed": client(H3_00_32, SUITE_BOTH_REV),
    "client-nopsk": client(H_NOPSK),
    "client-removed": client(H_REMOVED),
    "client-unknown": client(H_UNKNOWN),
    "client-damaged-psk": client(H_BADPSK),
    "client-long-nqn-v0": client(H_LONG),
    "client-long-nqn-v1": client(H_LONG, V1, tail=ADMIN),
    "client-wrong-key": client(H0_01, WRONG_KEY),
    "client-wrong-key-v1": client(H1_02, WRONG_KEY | V1),
    "client-tls2": client(H0_01, TLS2),
    "client-discovery": client(H0_01, DISCOVERY),
    "client-discovery-v1": client(H1_02, DISCOVERY | V1),
    "client-other-host": client(H0_01, 0, CONNECT | OTHER_HOST),
    "client-no-connect": client(H0_01, 0, 0, tail=ADMIN),
    "client-tamper-first": client(H0_01, 0, CONNECT | TAMPER, 0),
    "client-tamper-later": client(H0_01, 0, CONNECT | TAMPER, 1400, tail=ADMIN),
    "client-own-identity": client(H0_01, OWN_ID, own_id=b"NVMe0R01 " + HOST0 + b" nqn.2016-06.io.spdk:tls"),
    "client-own-identity-garbage": client(H0_01, OWN_ID, own_id=b"NVMe0R01  x"),
    "client-own-identity-generated": client(H0_01, OWN_ID, own_id=b"NVMe1G01 a b c"),
}
RECORD = ["client-h0-v0", "client-h0-v1", "client-h1-v1-admin", "client-h2-v0-admin", "client-h0-suite-128",
          "client-discovery", "client-wrong-key", "client-nopsk"]
NOT_TLS = {
    "raw-plain-icreq": bytes([0]) + struct.pack("<BBBBIHBBI", 0, 0, 128, 0, 128, 0, 0, 0, 0) + bytes(112),
    "raw-http": bytes([0]) + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "raw-short-record": bytes([0, 0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00]),
}


def main():
    args = sys.argv[1:]
    binary = None
    if "--record" in args:
        i = args.index("--record")
        binary = args[i + 1]
        del args[i:i + 2]
    out = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus", "tls")
    os.makedirs(out, exist_ok=True)
    seeds = dict(SEEDS)
    seeds.update(NOT_TLS)
    for name, data in sorted(seeds.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    n = len(seeds)
    if binary:
        with tempfile.TemporaryDirectory() as tmp:
            for name in RECORD:
                src = os.path.join(tmp, name)
                with open(src, "wb") as f:
                    f.write(SEEDS[name])
                dst = os.path.join(out, "raw-" + name[len("client-"):])
                env = dict(os.environ, DBK_FUZZ_TLS_RECORD=dst)
                subprocess.run([binary, src], env=env, check=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                n += 1
        # the first record of a recorded session (its ClientHello) to a server destroyed meanwhile (mode 2)
        with open(os.path.join(out, "raw-h0-v0"), "rb") as f:
            b = f.read()[1:]
        with open(os.path.join(out, "raw-server-destroyed"), "wb") as f:
            f.write(bytes([2]) + b[:5 + (b[3] << 8 | b[4])])
        n += 1
    print("%d seeds in %s" % (n, os.path.normpath(out)))


if __name__ == "__main__":
    main()
