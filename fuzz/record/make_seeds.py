#!/usr/bin/env python3
"""Turn recorded NVMe/TCP traffic (pcap files from record.sh) into seed inputs for the fuzz harnesses.

  make_seeds.py [--max N] [--tag NAME] OUTDIR CAPTURE.pcap...

writes, for every NVMe/TCP connection found (the client's first bytes are an ICReq):
  OUTDIR/nvmf_cmd/<tag>-<n>   its command capsules with their data (fuzz_nvmf_cmd.c input format)
  OUTDIR/perf_host/<tag>-<n>  the target's side, with the host's submissions in between (fuzz_perf_host.c);
                              command ids are renumbered the way daosblk-perf's host allocates them
  OUTDIR/tcp_rx/<tag>-<n>     the host's raw byte stream (fuzz_tcp_rx.c)
Each seed is cut to a few KiB of commands / 32 KiB of bytes; identical seeds are written once.
"""
import argparse
import hashlib
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcap_streams  # noqa: E402

ICREQ_PREFIX = b'\x00\x00\x80\x00\x80\x00\x00\x00'
SUBNQN = b'nqn.2016-06.io.spdk:cnode1'
ANANQN = b'nqn.2016-06.io.spdk:ana'   # fuzz_nvmf_cmd's subsystem with ANA reporting (setup flag 0x10)
DISC = b'nqn.2014-08.org.nvmexpress.discovery'
MAX_SEED = 32 * 1024
MAX_RECORDS = 64
MAX_DATA = 8192


def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_T = _crc32c_table()


def crc32c(b):
    c = 0xffffffff
    for x in b:
        c = _T[(c ^ x) & 0xff] ^ (c >> 8)
    return c ^ 0xffffffff


class PduReader:
    """Splits a byte stream into PDUs (by PLEN) as it arrives."""

    def __init__(self):
        self.buf = b''

    def feed(self, data):
        self.buf += data
        out = []
        while len(self.buf) >= 8:
            plen = struct.unpack('<I', self.buf[4:8])[0]
            if plen < 8 or plen > (1 << 24):
                self.buf = b''
                break
            if len(self.buf) < plen:
                break
            out.append(self.buf[:plen])
            self.buf = self.buf[plen:]
        return out


def capsule_info(pdu, hd):
    sqe = pdu[8:72].ljust(64, b'\0')
    opc = sqe[0]
    cid = struct.unpack('<H', sqe[2:4])[0]
    sgl_len = struct.unpack('<I', sqe[32:36])[0]
    if opc == 0x7f:
        dirn = sqe[4] & 3
    else:
        dirn = opc & 3
    pdo = pdu[3] if len(pdu) > 3 else 0
    dd = 4 if pdu[1] & 0x02 else 0
    icd = pdu[pdo:len(pdu) - dd] if pdo else b''
    return sqe, opc, cid, sgl_len, dirn, icd


def conv_nvmf_cmd(conn):
    """Records for fuzz_nvmf_cmd: the capsules with their data."""
    rd = PduReader()
    first = None
    ana = False
    recs = []
    pending = {}  # cid -> [sqe, data, sgl_len]
    hd = 0
    for d, data in conn['events']:
        if d != 'c':
            continue
        for pdu in rd.feed(data):
            t = pdu[0]
            if t == 0:
                hd = 4 if len(pdu) > 11 and pdu[11] & 1 else 0
                continue
            if t == 4:
                sqe, opc, cid, sgl_len, dirn, icd = capsule_info(pdu, hd)
                if first is None:
                    if opc != 0x7f or sqe[4] != 0x01:
                        return None  # not a Connect first
                    qid = struct.unpack('<H', sqe[42:44])[0]
                    first = qid
                    data_ = bytearray(icd.ljust(1024, b'\0'))
                    nqn = bytes(data_[256:512]).split(b'\0')[0]
                    ana = nqn == ANANQN
                    if qid != 0:
                        continue  # the harness connects I/O queue 1 itself
                    # Raw admin queue: the recorded Connect goes through, to the harness's subsystem.
                    data_[256:512] = (nqn if nqn in (DISC, ANANQN) else SUBNQN).ljust(256, b'\0')
                    icd = bytes(data_)
                if dirn == 1 and sgl_len and not icd:
                    pending[cid] = [sqe, b'', sgl_len]
                    continue
                recs.append((sqe, icd))
            elif t == 6 and len(pdu) >= 20:
                cid, _, datao, datal = struct.unpack('<HHII', pdu[8:20])
                p = pending.get(cid)
                if p is None:
                    continue
                pdo = pdu[3]
                p[1] += pdu[pdo:pdo + datal]
                if len(p[1]) >= p[2]:
                    recs.append((p[0], p[1]))
                    del pending[cid]
    if first is None or not recs:
        return None
    sel = 0 if first == 0 else 1
    flags = 0x00 if first == 0 else (0x17 if ana else 0x07)
    out = bytes([flags])
    for sqe, dat in recs[:MAX_RECORDS]:
        dat = dat[:MAX_DATA]
        out += bytes([sel]) + sqe + struct.pack('<H', len(dat)) + dat
        if len(out) > MAX_SEED:
            break
    return out


def conv_perf_host(conn):
    """fuzz_perf_host input: header, ICResp, then submissions and the target's bytes in capture order."""
    cr, sr = PduReader(), PduReader()
    icreq = icresp = None
    hd = 0
    subs = []   # (event index) records built below
    # Pass 1: what the host submitted, sizes.
    max_io, icd_max, outstanding, max_out = 4096, 0, 0, 1
    for d, data in conn['events']:
        for pdu in (cr if d == 'c' else sr).feed(data):
            if d == 'c' and pdu[0] == 0:
                icreq = pdu
            elif d == 's' and pdu[0] == 1:
                icresp = pdu
            elif d == 'c' and pdu[0] == 4:
                sqe, opc, cid, sgl_len, dirn, icd = capsule_info(pdu, 0)
                max_io = max(max_io, sgl_len)
                if icd:
                    icd_max = max(icd_max, len(icd))
                outstanding += 1
                max_out = max(max_out, outstanding)
            elif d == 's' and (pdu[0] == 5 or (pdu[0] == 7 and pdu[1] & 0x0c == 0x0c)):
                outstanding = max(outstanding - 1, 0)
    if icreq is None or icresp is None or len(icreq) < 12 or len(icresp) != 128:
        return None
    hd = 4 if icreq[11] & 1 else 0
    nreqs = min(max(max_out, 1), 255)
    out = bytearray([icreq[11] & 3, nreqs, min((icd_max + 1023) // 1024, 255)])
    out += struct.pack('<I', min(max_io, 1 << 20)) + icresp
    # Pass 2: renumber command ids as the harness's host allocates them (a LIFO stack of free slots).
    free = list(range(nreqs - 1, -1, -1))
    cmap = {}
    cr, sr = PduReader(), PduReader()
    seen_icresp = False
    for d, data in conn['events']:
        if len(out) > MAX_SEED:
            break
        if d == 'c':
            for pdu in cr.feed(data):
                if pdu[0] != 4:
                    continue
                sqe, opc, cid, sgl_len, dirn, icd = capsule_info(pdu, 0)
                if not free:
                    continue
                cmap[cid] = free.pop()
                dirc = 0 if sgl_len == 0 or dirn in (0, 3) else (1 if dirn == 1 else 2)
                out += bytes([0, opc, dirc]) + struct.pack('<I', sgl_len)
        else:
            chunk = bytearray()
            for pdu in sr.feed(data):
                pdu = bytearray(pdu)
                t = pdu[0]
                if t == 1 and not seen_icresp:
                    seen_icresp = True
                    continue
                done = None
                if t == 5:
                    off = 8 + 12
                    cid = struct.unpack('<H', pdu[off:off + 2])[0]
                    done = cid
                elif t in (7, 9):
                    off = 8
                    cid = struct.unpack('<H', pdu[off:off + 2])[0]
                    if t == 7 and pdu[1] & 0x0c == 0x0c:
                        done = cid
                else:
                    chunk += pdu
                    continue
                if cid in cmap:
                    struct.pack_into('<H', pdu, off, cmap[cid])
                    if hd and pdu[1] & 1:
                        struct.pack_into('<I', pdu, pdu[2], crc32c(bytes(pdu[:pdu[2]])))
                if done is not None and done in cmap:
                    free.append(cmap.pop(done))
                chunk += pdu
            for i in range(0, len(chunk), 65535):
                part = chunk[i:i + 65535][:MAX_SEED - len(out)]
                out += bytes([1]) + struct.pack('<H', len(part)) + part
                if len(out) >= MAX_SEED:
                    break
    return bytes(out)


def conv_tcp_rx(conn):
    raw = b''.join(data for d, data in conn['events'] if d == 'c')
    return raw[:MAX_SEED]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--max', type=int, default=12, help='seeds per harness and tag')
    ap.add_argument('--tag', default='rec')
    ap.add_argument('outdir')
    ap.add_argument('pcaps', nargs='+')
    a = ap.parse_args()
    convs = {'nvmf_cmd': conv_nvmf_cmd, 'perf_host': conv_perf_host, 'tcp_rx': conv_tcp_rx}
    written = {k: 0 for k in convs}
    seen = set()
    for p in a.pcaps:
        for conn in pcap_streams.streams(p):
            ev = conn['events']
            if not ev or ev[0][0] != 'c' or not ev[0][1].startswith(ICREQ_PREFIX):
                continue
            for h, fn in convs.items():
                if written[h] >= a.max:
                    continue
                seed = fn(conn)
                if not seed:
                    continue
                digest = hashlib.sha1(h.encode() + seed).hexdigest()
                if digest in seen:
                    continue
                seen.add(digest)
                os.makedirs(os.path.join(a.outdir, h), exist_ok=True)
                path = os.path.join(a.outdir, h, '%s-%02d' % (a.tag, written[h]))
                with open(path, 'wb') as f:
                    f.write(seed)
                written[h] += 1
    for h, n in written.items():
        print('%s: %d seeds' % (h, n))


if __name__ == '__main__':
    main()
