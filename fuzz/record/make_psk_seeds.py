#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_psk (fuzz/corpus/psk/), in the harness's input format (the top of
fuzz/fuzz_psk.c): the DHHC-1 secrets and TLS PSKs of the unit and integration tests (test/unit/nvmf/test_auth.c,
test/unit/tcp, test/integration/nvmf/test_tls.py and test_auth.py: the TP 8018 example key among them), good
and broken; PSK identities as hosts send them (versions 0 and 1, both ciphers); keys built by the harness
(sel bit 2) of each length and hash, with a wrong CRC, without padding, edited; and derivations of a TLS PSK
and identity for the NQNs those tests use.

    fuzz/record/make_psk_seeds.py [DIR]      (default: fuzz/corpus/psk next to this script)
"""
import os
import struct
import sys

HOST = b"nqn.2014-08.org.nvmexpress:uuid:0f0e0d0c-0b0a-0908-0706-050403020100"
SUB = b"nqn.2016-06.io.spdk:cnode1"
DIGEST44 = b"gjS+0pk+PTRkkQpqh4YnmeJzDQp4E/5EvnUBF46HDz0="
DIGEST64 = b"vHW2dhTHgJaYuKIsr8bMdZK5vF7NNeFk0ooMUq8KV4C3uEBmlHKN/uU9/ntqRQaL"


def raw(sel, s):
    return bytes([sel]) + s


def built(sel, hh, lsel, key, flags=0, edits=(), tail=b""):
    e = b"".join(bytes(x) for x in edits)
    return bytes([sel | 4, hh, lsel]) + key + bytes([flags, len(edits)]) + e + tail


def key(n, seed):
    return bytes((seed * 31 + i * 7 + 1) & 0xFF for i in range(n))


SEEDS = {}
# DHHC-1 secrets as the tests write them (sel 0): transformations 00..03, 32/48/64 bytes, broken ones
for i, s in enumerate([
        b"DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:",
        b"DHHC-1:02:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTvGwQfg==:",
        b"DHHC-1:01:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKTvGwQfg==:",
        b"DHHC-1:03:yMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v8AAQIDBAUGB24FqBs=:",
        b"DHHC-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:",
        b"DHHC-1:00:AAECAwQF=gcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:",
        b"DHHC-1:00:AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:",
        b"DHHC-1:04:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:",
        b"DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd:",
        b"DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR",
]):
    SEEDS["dhchap-%02d" % i] = raw(0, s + b"\0" + HOST)
# TLS PSKs (sel 1)
for i, s in enumerate([
        b"NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:",
        b"NVMeTLSkey-1:00:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:",
        b"NVMeTLSkey-1:02:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwP/w0S89ELi3W2LxIcLXVsDn8kXZQ==:",
        b"NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9L=Z:",
        b"NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrY:",
        b"NVMeTLSkey-1:03:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:",
        b"NVMeTLSkey-1:01:AAAA:",
]):
    SEEDS["tls-psk-%02d" % i] = raw(1, s)
# PSK identities (sel 2)
for i, s in enumerate([
        b"NVMe0R01 " + HOST + b" " + SUB,
        b"NVMe0R02 " + HOST + b" " + SUB,
        b"NVMe1R01 " + HOST + b" " + SUB + b" " + DIGEST44,
        b"NVMe1R02 " + HOST + b" " + SUB + b" " + DIGEST64,
        b"NVMe0R01 " + HOST + b" " + SUB + b" " + DIGEST44,
        b"NVMe1R01 " + HOST + b" " + SUB,
        b"NVMe0R01  " + SUB,
        b"NVMe0R01 a\tb c",
        b"NVMe0G01 " + HOST + b" " + SUB,
        b"NVMe0R01 " + b"n" * 223 + b" " + b"s" * 223,
        b"NVMe0R01 " + b"n" * 224 + b" " + SUB,
]):
    SEEDS["identity-%02d" % i] = raw(2, s)
# built by the harness (sel 4 | what): each length and hash, a wrong CRC, no padding, edited
for i, (sel, hh, lsel, flags, edits) in enumerate([
        (0, 0, 0, 0, ()), (0, 1, 0, 0, ()), (0, 2, 1, 0, ()), (0, 3, 2, 0, ()), (0, 0, 2, 0, ()),
        (0, 2, 0, 0, ()), (0, 0, 0, 1, ()), (0, 3, 2, 2, ()), (0, 3, 2, 0, ((0, 100, ord("=")),)),
        (0, 0, 1, 0, ((1, 20, ord("A")),)), (0, 0, 3, 0, ()), (0, 9, 0, 0, ((2, 60, 0),)),
        (1, 0, 0, 0, ()), (1, 1, 0, 0, ()), (1, 2, 1, 0, ()), (1, 0, 1, 0, ()), (1, 1, 1, 0, ()),
        (1, 1, 0, 1, ()), (1, 2, 1, 2, ()), (1, 0, 2, 0, ()), (1, 1, 0, 0, ((0, 5, ord("X")),)),
]):
    klen = {0: 32, 1: 48, 2: 64}.get(lsel, 1 + lsel % 80)
    SEEDS["built-%02d" % i] = built(sel, hh, lsel, key(klen, i), flags, edits,
                                    HOST if sel == 0 else b"")
# derivations (sel 3, built): version 0 / 1, both hashes, the tests' NQNs, a short identity buffer, long NQNs
for i, (hh, lsel, ver, idlen, h, s) in enumerate([
        (1, 0, 0, 0, HOST, SUB), (1, 0, 1, 0, HOST, SUB), (2, 1, 0, 0, HOST, SUB), (2, 1, 1, 0, HOST, SUB),
        (0, 0, 1, 0, HOST, SUB), (0, 1, 0, 0, HOST, SUB), (1, 0, 1, 40, HOST, SUB),
        (1, 0, 0, 0, b"n" * 200, b"s" * 60), (1, 0, 1, 0, b"n" * 223, b"s" * 223),
        (2, 1, 1, 0, b"host with spaces", SUB),
]):
    klen = {0: 32, 1: 48}[lsel]
    SEEDS["derive-%02d" % i] = built(3, hh, lsel, key(klen, 40 + i), 0, (),
                                     bytes([ver]) + struct.pack("<H", idlen) + h + b"\0" + s)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                             "..", "corpus", "psk")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("%d seeds in %s" % (len(SEEDS), os.path.normpath(out)))


if __name__ == "__main__":
    main()
