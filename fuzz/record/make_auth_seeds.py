#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_auth (fuzz/corpus/auth/): DH-HMAC-CHAP exchanges in the harness's input
format (the top of fuzz/fuzz_auth.c).

A seed is the host's side of an exchange, not its bytes: the Challenge is random, so a Reply cannot be
recorded; the seed asks the harness for the Reply it computes from the Challenge the target sent (op 3), and
the exchange is a real one each time it runs. The Negotiate messages are the ones the Linux host and
test/integration/nvmf/dhchap.py send (one DH-HMAC-CHAP descriptor, the ids weakest first); op 0 sends one as
raw bytes, as a host that is not the harness would. The exchanges are those of test_auth.py: each hash and DH
group, unidirectional and bidirectional, re-authentication, the I/O queue, each way a Negotiate or a Reply can
fail, keys changed or removed, and the AUTH commands' own fields broken.

    fuzz/record/make_auth_seeds.py [DIR]      (default: fuzz/corpus/auth next to this script)
"""
import os
import struct
import sys

# setup byte: host (0 unidirectional, 1 and 2 bidirectional, 3 no key, 4 removed key, 5 not allowed)
H_UNI, H_BI, H_BI3, H_NOKEY, H_REMOVED, H_UNKNOWN = range(6)
NO_CONNECT = 0x08
SHA256, SHA384, SHA512 = 0x02, 0x04, 0x08
ALL_H = SHA256 | SHA384 | SHA512
G_NULL, G_2048, G_3072, G_4096, G_6144, G_8192 = (1 << i for i in range(6))
ALL_G = 0x3F
WEAKEST_FIRST = 0x20
IO = 0x10
RACE = 0x20


def setup(host, digests=0, dhgroups=0):
    return bytes([host, digests, dhgroups])


def send_raw(msg, q=0, tweak=0):
    return bytes([0 | q, tweak]) + struct.pack("<H", len(msg)) + msg


def recv(q=0, al=0, tweak=0):
    return bytes([1 | q, tweak]) + struct.pack("<H", al)


def negotiate(q=0, tid=1, hashes=ALL_H, groups=ALL_G, flags=WEAKEST_FIRST, tweak=0, race=0):
    return bytes([2 | q | race, tweak]) + struct.pack("<HBBB", tid, hashes, groups, flags)


def reply(q=0, flags=0, s2=0x5EED0001, tweak=0):
    return bytes([3 | q, tweak, flags]) + struct.pack("<I", s2) + bytes((7 * i + 3) & 0xFF for i in range(64))


def success2(q=0, flags=0, tweak=0):
    return bytes([4 | q, tweak, flags])


def failure2(q=0, rc=1, rce=1, flags=0, tweak=0):
    return bytes([5 | q, tweak, rc, rce, flags])


def gate(q=0):
    return bytes([6 | q])


def connect_io():
    return bytes([7])


def keys(sel, q=0):
    return bytes([8 | q, sel])


def disconnect(q=0):
    return bytes([9 | q])


def negotiate_msg(tid, hashes=(1, 2, 3), groups=(0, 1, 2, 3, 4, 5)):
    """A Negotiate as test/integration/nvmf/dhchap.py's negotiate_msg() builds it."""
    d = bytearray(64)
    d[0] = 1
    d[2] = len(hashes)
    d[3] = len(groups)
    d[4:4 + len(hashes)] = bytes(hashes)
    d[34:34 + len(groups)] = bytes(groups)
    return struct.pack("<BBHHBB", 0, 0, 0, tid, 0, 1) + bytes(d)


def uni(q=0, tid=1, hashes=ALL_H, groups=ALL_G, rflags=0):
    return negotiate(q, tid, hashes, groups) + recv(q) + reply(q, rflags) + recv(q)


def bidi(q=0, tid=1, hashes=ALL_H, groups=ALL_G):
    return negotiate(q, tid, hashes, groups) + recv(q) + reply(q, 1) + recv(q) + success2(q)


SEEDS = {
    # the success path, each hash and group (the target picks the strongest offered and allowed)
    "uni-sha256-null": setup(H_UNI) + uni(hashes=SHA256, groups=G_NULL) + gate(),
    "uni-sha384-2048": setup(H_UNI) + uni(hashes=SHA384, groups=G_2048) + gate(),
    "uni-sha512-3072": setup(H_UNI) + uni(hashes=SHA512, groups=G_3072) + gate(),
    "uni-config-sha384-4096": setup(H_UNI, SHA384 | SHA256, G_4096 | G_NULL) + uni() + gate(),
    "bidi-sha256-null": setup(H_BI) + bidi(hashes=SHA256, groups=G_NULL) + gate(),
    "bidi-sha512-2048": setup(H_BI3) + bidi(hashes=SHA512, groups=G_2048) + gate(),
    "bidi-sha384-6144": setup(H_BI, 0, G_6144 | G_NULL) + bidi() + gate(),
    "bidi-sha512-8192": setup(H_BI3, SHA512, G_8192) + bidi() + gate(),
    "bidi-unasked": setup(H_BI) + uni(hashes=SHA256, groups=G_NULL) + gate(),
    "gate-before-after": setup(H_UNI) + gate() + uni(hashes=SHA256, groups=G_2048) + gate(),
    "reauth": setup(H_BI) + bidi(groups=G_NULL) + gate() + bidi(tid=2, groups=G_2048) + gate(),
    "reauth-fails": setup(H_UNI) + uni(groups=G_NULL) + negotiate(tid=2, groups=G_NULL) + recv() + gate()
    + reply(flags=2) + gate() + recv() + gate(),
    "io-queue": setup(H_BI) + bidi(groups=G_NULL) + connect_io() + gate(IO) + bidi(IO, 7, SHA384, G_2048)
    + gate(IO),
    "io-queue-unauthenticated-admin": setup(H_UNI) + connect_io() + gate() + uni(groups=G_NULL) + connect_io()
    + gate(IO) + uni(IO, 3, SHA256, G_NULL) + gate(IO),
    # Negotiates the target refuses
    "neg-no-hash": setup(H_UNI, SHA512) + negotiate(hashes=SHA256) + recv() + gate(),
    "neg-no-group": setup(H_UNI, 0, G_NULL) + negotiate(groups=G_2048 | G_8192) + recv(),
    "neg-sc_c": setup(H_UNI) + negotiate(flags=WEAKEST_FIRST | 1) + recv(),
    "neg-other-protocol-first": setup(H_UNI) + negotiate(groups=G_NULL, flags=2) + recv() + reply() + recv()
    + gate(),
    "neg-no-dhchap": setup(H_UNI) + negotiate(flags=6) + recv(),
    "neg-halen-31": setup(H_UNI) + negotiate(flags=8) + recv(),
    "neg-napd-too-many": setup(H_UNI) + negotiate(flags=0x10) + recv() + recv() + gate(),
    "neg-odd-ids": setup(H_UNI) + negotiate(hashes=SHA384 | 1, groups=G_2048 | 0x40) + recv() + reply() + recv(),
    "neg-restart": setup(H_UNI) + negotiate(tid=5) + negotiate(tid=6, groups=G_NULL) + recv() + reply() + recv(),
    # Replies the target refuses
    "reply-wrong-response": setup(H_UNI) + uni(groups=G_NULL, rflags=2) + recv() + gate(),
    "reply-wrong-key": setup(H_BI) + uni(groups=G_2048, rflags=4 | 1) + gate(),
    "reply-dh-zero": setup(H_UNI) + negotiate(groups=G_2048) + recv() + reply(flags=8, s2=0) + recv(),
    "reply-dh-one": setup(H_UNI) + negotiate(groups=G_2048) + recv() + reply(flags=8, s2=1) + recv(),
    "reply-dh-ones": setup(H_UNI) + negotiate(groups=G_3072) + recv() + reply(flags=8, s2=2) + recv(),
    "reply-dh-other": setup(H_UNI) + negotiate(groups=G_2048) + recv() + reply(flags=8, s2=3) + recv(),
    "reply-wrong-tid": setup(H_UNI) + uni(groups=G_NULL, rflags=0x10),
    "reply-wrong-hl": setup(H_UNI) + uni(groups=G_NULL, rflags=0x20),
    "reply-wrong-dhvlen": setup(H_UNI) + negotiate(groups=G_2048) + recv() + reply(flags=0x20, s2=0x100) + recv(),
    "reply-cvalid-2": setup(H_BI) + uni(groups=G_NULL, rflags=0x40),
    "reply-short": setup(H_UNI) + uni(groups=G_2048, rflags=0x80),
    "reply-bidi-no-ctrl-key": setup(H_UNI) + uni(groups=G_NULL, rflags=1),
    "reply-bidi-s2-zero": setup(H_BI) + negotiate(groups=G_NULL) + recv() + reply(flags=1, s2=0) + recv(),
    "reply-twice": setup(H_UNI) + negotiate(groups=G_NULL) + recv() + reply() + reply() + recv() + recv(),
    # out of sequence, Success2 / Failure2
    "recv-first": setup(H_UNI) + recv() + recv() + gate(),
    "reply-first": setup(H_UNI) + reply() + recv(),
    "success2-wrong-tid": setup(H_BI) + negotiate(groups=G_NULL) + recv() + reply(flags=1) + recv()
    + success2(flags=1) + recv() + gate(),
    "success2-short": setup(H_BI) + negotiate(groups=G_NULL) + recv() + reply(flags=1) + recv() + success2(flags=2)
    + recv(),
    "success2-unasked": setup(H_UNI) + uni(groups=G_NULL) + success2() + recv() + gate(),
    "failure2": setup(H_BI3) + negotiate(groups=G_NULL) + recv() + reply(flags=1) + recv()
    + failure2(rc=1, rce=1) + gate() + recv(),
    "failure2-wrong-tid": setup(H_BI) + negotiate(groups=G_NULL) + recv() + reply(flags=1) + recv()
    + failure2(flags=1) + recv(),
    "failure2-early": setup(H_UNI) + negotiate(groups=G_NULL) + failure2() + recv(),
    # AL too small, the commands' own fields
    "recv-small-al": setup(H_UNI) + negotiate(groups=G_2048) + recv(al=8) + recv(al=16 + 64 + 255) + recv()
    + reply() + recv(al=4) + recv(),
    "failure1-short-al": setup(H_UNI) + recv(al=3) + recv(al=1) + recv(al=8),
    "tweaks-send": setup(H_UNI) + b"".join(negotiate(groups=G_NULL, tweak=t) for t in range(1, 8))
    + uni(groups=G_NULL) + gate(),
    "tweaks-recv": setup(H_BI) + negotiate(groups=G_NULL) + b"".join(recv(tweak=t) for t in range(1, 8))
    + recv() + reply(flags=1) + b"".join(recv(tweak=t) for t in range(1, 8)) + recv() + success2() + gate(),
    # hosts without a usable key, no Connect
    "host-no-key": setup(H_NOKEY) + negotiate() + recv() + gate() + connect_io() + gate(IO) + recv(IO),
    "host-removed-key": setup(H_REMOVED) + negotiate() + recv() + gate(),
    "host-not-allowed": setup(H_UNKNOWN) + negotiate() + recv() + gate(),
    "no-connect": setup(H_UNI | NO_CONNECT) + negotiate() + recv() + gate() + connect_io(),
    # keys changed (nvmf_subsystem_set_keys) or removed from the keyring (keyring_file_remove_key)
    "keys-others-bidi": setup(H_UNI) + keys(1) + bidi(groups=G_NULL) + gate(),
    "keys-others-reauth": setup(H_BI) + bidi(groups=G_2048) + keys(1) + bidi(tid=2, groups=G_NULL) + gate(),
    "keys-host-only": setup(H_BI3) + keys(2) + uni(groups=G_NULL, rflags=1) + uni(tid=2, groups=G_NULL) + gate(),
    "keys-none": setup(H_BI) + keys(3) + negotiate() + recv() + connect_io() + gate(IO),
    "keys-removed": setup(H_BI) + bidi(groups=G_NULL) + keys(4) + negotiate(tid=2) + recv() + gate()
    + connect_io(),
    # raw messages (a host that is not the harness), races, disconnects
    "raw-negotiate": setup(H_BI) + send_raw(negotiate_msg(9, (1, 2, 3), (0,))) + recv() + reply(flags=1) + recv()
    + success2() + gate(),
    "raw-negotiate-2048": setup(H_UNI) + send_raw(negotiate_msg(4, (1,), (0, 1))) + recv() + reply() + recv()
    + gate(),
    "raw-garbage": setup(H_UNI) + send_raw(bytes([2, 0, 0, 0, 1, 0, 0, 0])) + recv() + gate(),
    "raw-short": setup(H_UNI) + send_raw(bytes([0, 0, 0, 0])) + recv(),
    "race-negotiate-recv": setup(H_UNI) + negotiate(groups=G_NULL, race=RACE) + recv() + recv() + reply() + recv(),
    "disconnect-mid-auth": setup(H_BI) + negotiate(groups=G_2048) + recv() + disconnect() + reply(flags=1) + recv(),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                             "..", "corpus", "auth")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("%d seeds in %s" % (len(SEEDS), os.path.normpath(out)))


if __name__ == "__main__":
    main()
