#!/usr/bin/env python3
"""Reassemble the TCP byte streams of a pcap file (tcpdump -w, Ethernet/Linux cooked/raw IP; IPv4 and IPv6).

streams(path) -> list of connections, in the order they opened; each is a dict
  {'client': (ip, port), 'server': (ip, port), 'events': [(dir, bytes), ...]}
with dir 'c' (client to server) or 's' (server to client), in capture order, retransmissions dropped.
The client is the side that sent the SYN (or, without one, the first payload).
"""
import struct


def _packets(path):
    with open(path, 'rb') as f:
        hdr = f.read(24)
        magic = struct.unpack('<I', hdr[:4])[0]
        if magic in (0xa1b2c3d4, 0xa1b23c4d):
            e = '<'
        elif magic in (0xd4c3b2a1, 0x4d3cb2a1):
            e = '>'
        else:
            raise ValueError('%s: not a pcap file (pcapng? use tcpdump -w)' % path)
        linktype = struct.unpack(e + 'I', hdr[20:24])[0]
        while True:
            ph = f.read(16)
            if len(ph) < 16:
                return
            _, _, incl, _ = struct.unpack(e + 'IIII', ph)
            yield linktype, f.read(incl)


def _ip_payload(linktype, frame):
    if linktype == 1:  # Ethernet
        off, etype = 14, struct.unpack('>H', frame[12:14])[0]
        while etype == 0x8100:
            etype = struct.unpack('>H', frame[off + 2:off + 4])[0]
            off += 4
    elif linktype == 113:  # Linux cooked
        off, etype = 16, struct.unpack('>H', frame[14:16])[0]
    elif linktype == 276:  # Linux cooked v2
        off, etype = 20, struct.unpack('>H', frame[0:2])[0]
    elif linktype in (12, 101):  # raw IP
        off, etype = 0, 0x0800 if frame[0] >> 4 == 4 else 0x86dd
    else:
        return None
    return etype, frame[off:]


def _tcp(etype, ip):
    if etype == 0x0800:
        ihl = (ip[0] & 0xf) * 4
        total = struct.unpack('>H', ip[2:4])[0]
        if ip[9] != 6:
            return None
        src, dst, seg = ip[12:16], ip[16:20], ip[ihl:total]
    elif etype == 0x86dd:
        plen = struct.unpack('>H', ip[4:6])[0]
        if ip[6] != 6:
            return None
        src, dst, seg = ip[8:24], ip[24:40], ip[40:40 + plen]
    else:
        return None
    sport, dport, seq = struct.unpack('>HHI', seg[:8])
    doff = (seg[12] >> 4) * 4
    flags = seg[13]
    return (src, sport), (dst, dport), seq, flags, seg[doff:]


def streams(path):
    conns = {}
    order = []
    for linktype, frame in _packets(path):
        p = _ip_payload(linktype, frame)
        if not p:
            continue
        t = _tcp(*p)
        if not t:
            continue
        a, b, seq, flags, data = t
        key = tuple(sorted([a, b]))
        c = conns.get(key)
        syn, ack = flags & 0x02, flags & 0x10
        if c is None or (syn and not ack and c.get('done')):
            if c is not None:
                order.append(c)
            if not syn and not data:
                continue
            client = a if (syn and not ack) or data else b
            c = conns[key] = {'client': client, 'server': b if client == a else a, 'events': [], 'next': {}}
        if flags & 0x05:  # FIN or RST
            c['done'] = True
        d = 'c' if a == c['client'] else 's'
        nxt = c['next']
        if syn:
            nxt[d] = (seq + 1) & 0xffffffff
            continue
        if not data:
            continue
        if d not in nxt:
            nxt[d] = seq
        exp = nxt[d]
        delta = (seq - exp) & 0xffffffff
        if delta >= 0x80000000:  # (partly) retransmitted
            skip = (exp - seq) & 0xffffffff
            if skip >= len(data):
                continue
            data = data[skip:]
            seq = exp
        elif delta:
            continue  # a gap (lost in the capture): ignore out-of-order data
        nxt[d] = (seq + len(data)) & 0xffffffff
        ev = c['events']
        if ev and ev[-1][0] == d:
            ev[-1] = (d, ev[-1][1] + data)
        else:
            ev.append((d, data))
    order.extend(v for v in conns.values() if v not in order)
    for c in order:
        c.pop('next', None)
    return [c for c in order if c['events']]
