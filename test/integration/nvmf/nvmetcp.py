"""A minimal NVMe/TCP host for protocol tests (Python standard library only).

It speaks just enough NVMe/TCP to drive the target the way a host would --
ICReq, Connect, properties, Identify, Read/Write -- and lets a test send
deliberately malformed PDUs. Also: starting the real daosblk-tgt daemon on a
temporary socket and configuring it with daosblk-rpc.
"""

import json
import os
import signal
import socket
import struct
import subprocess
import tempfile
import time

# ------------------------------------------------------------------ CRC32C

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283

# ------------------------------------------------------------- PDU types

IC_REQ, IC_RESP, H2C_TERM, C2H_TERM, CAPSULE_CMD, CAPSULE_RESP, H2C_DATA, C2H_DATA, R2T = 0, 1, 2, 3, 4, 5, 6, 7, 9
F_HDGST, F_DDGST, F_LAST, F_SUCCESS = 0x01, 0x02, 0x04, 0x08

DISC_NQN = "nqn.2014-08.org.nvmexpress.discovery"


class Closed(Exception):
    """The target closed the connection."""


class TermReq(Exception):
    """The target sent a C2HTermReq."""

    def __init__(self, fes, fei):
        super().__init__("C2HTermReq fes=%#x fei=%d" % (fes, fei))
        self.fes = fes
        self.fei = fei


class Cpl:
    def __init__(self, raw):
        self.cdw0, self.cdw1, self.sqhd, self.sqid, self.cid, status = struct.unpack("<IIHHHH", raw)
        self.sc = (status >> 1) & 0xFF
        self.sct = (status >> 9) & 0x7
        self.dnr = bool(status & 0x8000)

    @property
    def ok(self):
        return self.sc == 0 and self.sct == 0

    def __repr__(self):
        return "Cpl(sct=%d sc=%#x cdw0=%#x cid=%d)" % (self.sct, self.sc, self.cdw0, self.cid)


def sqe(opc, cid, nsid=0, cdw10=0, cdw11=0, cdw12=0, cdw13=0, cdw14=0, cdw15=0, sgl_len=0, incapsule=False,
        fctype=None, raw40=b""):
    """A 64-byte submission queue entry with an SGL data descriptor."""
    b = bytearray(64)
    b[0] = opc
    b[1] = 0x40  # PSDT: SGL
    struct.pack_into("<H", b, 2, cid)
    if fctype is not None:
        b[4] = fctype
    else:
        struct.pack_into("<I", b, 4, nsid)
    # SGL1 at 24: address(8) length(4) rsvd(3) type/subtype(1)
    struct.pack_into("<QI", b, 24, 0, sgl_len)
    b[39] = 0x01 if incapsule else 0x5A
    if raw40:
        b[40:40 + len(raw40)] = raw40
    else:
        struct.pack_into("<IIIIII", b, 40, cdw10, cdw11, cdw12, cdw13, cdw14, cdw15)
    return bytes(b)


class Host:
    """One NVMe/TCP connection (one queue)."""

    def __init__(self, port, addr="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((addr, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.hdgst = False
        self.ddgst = False
        self.cid = 0
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- raw I/O
    def send(self, data):
        self.sock.sendall(data)

    def _recv_exact(self, n):
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(1 << 16)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed("connection closed by the target")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_pdu(self):
        """Returns (type, flags, header_bytes, data_bytes); raises TermReq / Closed."""
        ch = self._recv_exact(8)
        ptype, flags, hlen, pdo, plen = struct.unpack("<BBBBI", ch)
        rest = self._recv_exact(plen - 8)
        pdu = ch + rest
        hdr = pdu[:hlen]
        if ptype == C2H_TERM:
            fes, fei = struct.unpack_from("<HI", pdu, 8)
            raise TermReq(fes, fei)
        data = b""
        if flags & F_HDGST:
            got = struct.unpack_from("<I", pdu, hlen)[0]
            assert got == crc32c(hdr), "bad header digest from target"
        if pdo:
            end = plen - (4 if flags & F_DDGST else 0)
            data = pdu[pdo:end]
            if flags & F_DDGST:
                got = struct.unpack_from("<I", pdu, end)[0]
                assert got == crc32c(data), "bad data digest from target"
        return ptype, flags, hdr, data

    def expect_close(self, timeout=5.0):
        """Drains until the target closes; returns the TermReq seen (or None)."""
        self.sock.settimeout(timeout)
        term = None
        try:
            while True:
                try:
                    self.recv_pdu()
                except TermReq as t:
                    term = t
        except (Closed, ConnectionResetError):
            return term

    # -- PDU builders
    def pdu(self, ptype, hdr_rest, data=b"", flags=0, pdo=None, plen=None, hlen=None, bad_hdgst=False,
            bad_ddgst=False):
        hl = 8 + len(hdr_rest) if hlen is None else hlen
        f = flags
        if self.hdgst:
            f |= F_HDGST
        if data and self.ddgst:
            f |= F_DDGST
        head_len = 8 + len(hdr_rest)
        dgst_len = 4 if self.hdgst else 0
        if pdo is None:
            pdo = head_len + dgst_len if data else 0
        total = head_len + dgst_len + (pdo - head_len - dgst_len if data else 0) + len(data) + (4 if data and self.ddgst else 0)
        if plen is None:
            plen = total
        ch = struct.pack("<BBBBI", ptype, f, hl, pdo, plen)
        hdr = ch + hdr_rest
        out = hdr
        if self.hdgst:
            d = crc32c(hdr) ^ (1 if bad_hdgst else 0)
            out += struct.pack("<I", d)
        if data:
            out += b"\0" * (pdo - len(out))
            out += data
            if self.ddgst:
                d = crc32c(data) ^ (1 if bad_ddgst else 0)
                out += struct.pack("<I", d)
        return out

    def icreq(self, hdgst=False, ddgst=False, pfv=0, maxr2t=0, hlen=128, plen=128):
        body = struct.pack("<HBBI", pfv, 0, (1 if hdgst else 0) | (2 if ddgst else 0), maxr2t) + b"\0" * 112
        self.send(struct.pack("<BBBBI", IC_REQ, 0, hlen, 0, plen) + body)

    def connect_ic(self, hdgst=False, ddgst=False):
        self.icreq(hdgst, ddgst)
        ptype, flags, hdr, _ = self.recv_pdu()
        assert ptype == IC_RESP, "expected ICResp, got type %d" % ptype
        assert len(hdr) == 128
        pfv, cpda, dgst, maxh2c = struct.unpack_from("<HBBI", hdr, 8)
        assert pfv == 0 and cpda == 0, (pfv, cpda)
        assert dgst == ((1 if hdgst else 0) | (2 if ddgst else 0)), "digest bits not echoed: %d" % dgst
        assert maxh2c >= 4096 and maxh2c % 4 == 0
        self.hdgst, self.ddgst, self.maxh2c = hdgst, ddgst, maxh2c
        return maxh2c

    def next_cid(self):
        self.cid = (self.cid + 1) & 0xFFFF
        return self.cid

    def submit(self, cmd, data=b""):
        self.send(self.pdu(CAPSULE_CMD, cmd, data))

    def wait_cpl(self, read_into=None):
        """Reads PDUs until a CapsuleResp (C2H data appended to read_into) or a DATA_SUCCESS C2HData."""
        while True:
            ptype, flags, hdr, data = self.recv_pdu()
            if ptype == CAPSULE_RESP:
                return Cpl(hdr[8:24])
            if ptype == C2H_DATA:
                cccid, _, datao, datal = struct.unpack_from("<HHII", hdr, 8)
                if read_into is not None:
                    read_into[datao:datao + datal] = data
                if flags & F_SUCCESS:
                    raw = struct.pack("<IIHHHH", 0, 0, 0, 0, cccid, 0)
                    return Cpl(raw)
                continue
            if ptype == R2T:
                return ("r2t",) + struct.unpack_from("<HHII", hdr, 8)
            raise AssertionError("unexpected PDU type %d" % ptype)

    def command(self, cmd, data=b"", read_len=0):
        buf = bytearray(read_len)
        self.submit(cmd, data)
        cpl = self.wait_cpl(buf)
        return cpl, bytes(buf)

    # -- fabrics / admin
    def fabric_connect(self, subnqn, hostnqn, qid=0, sqsize=31, cntlid=0xFFFF, kato=30000, hostid=None):
        cid = self.next_cid()
        raw40 = struct.pack("<HHHBBI", 0, qid, sqsize, 0, 0, kato) + b"\0" * 12
        cmd = sqe(0x7F, cid, fctype=0x01, sgl_len=1024, incapsule=True, raw40=raw40)
        data = bytearray(1024)
        data[0:16] = hostid or bytes(range(16))
        struct.pack_into("<H", data, 16, cntlid)
        n = subnqn.encode()
        data[256:256 + len(n)] = n
        h = hostnqn.encode()
        data[512:512 + len(h)] = h
        cpl, _ = self.command(cmd, bytes(data))
        return cpl

    def prop_get(self, ofst, size8=True):
        cid = self.next_cid()
        raw40 = struct.pack("<BBBBI", 1 if size8 else 0, 0, 0, 0, ofst) + b"\0" * 16
        cpl, _ = self.command(sqe(0x7F, cid, fctype=0x04, raw40=raw40))
        return cpl, cpl.cdw0 | (cpl.cdw1 << 32)

    def prop_set(self, ofst, value, size8=False):
        cid = self.next_cid()
        raw40 = struct.pack("<BBBBIQ", 1 if size8 else 0, 0, 0, 0, ofst, value) + b"\0" * 8
        cpl, _ = self.command(sqe(0x7F, cid, fctype=0x00, raw40=raw40))
        return cpl

    def enable(self):
        cpl = self.prop_set(0x14, (6 << 16) | (4 << 20) | 1)
        assert cpl.ok, cpl
        for _ in range(100):
            cpl, csts = self.prop_get(0x1C, size8=False)
            assert cpl.ok, cpl
            if csts & 1:
                return
            time.sleep(0.01)
        raise AssertionError("CSTS.RDY never set")

    def identify(self, cns, nsid=0):
        cid = self.next_cid()
        return self.command(sqe(0x06, cid, nsid=nsid, cdw10=cns, sgl_len=4096), read_len=4096)

    def read(self, nsid, slba, nlb, block_size):
        cid = self.next_cid()
        n = nlb * block_size
        return self.command(sqe(0x02, cid, nsid=nsid, cdw10=slba & 0xFFFFFFFF, cdw11=slba >> 32, cdw12=nlb - 1,
                                sgl_len=n), read_len=n)

    def write_incapsule(self, nsid, slba, data, block_size):
        cid = self.next_cid()
        nlb = len(data) // block_size
        cmd = sqe(0x01, cid, nsid=nsid, cdw10=slba & 0xFFFFFFFF, cdw11=slba >> 32, cdw12=nlb - 1,
                  sgl_len=len(data), incapsule=True)
        return self.command(cmd, data)[0]


def admin_session(port, subnqn, hostnqn="nqn.2014-08.org.nvmexpress:uuid:0f0e0d0c-0b0a-0908-0706-050403020100",
                  digests=False):
    """ICReq + admin Connect + CC.EN; returns (host, cntlid)."""
    h = Host(port)
    h.connect_ic(digests, digests)
    cpl = h.fabric_connect(subnqn, hostnqn)
    assert cpl.ok, "admin connect failed: %r" % cpl
    h.enable()
    return h, cpl.cdw0 & 0xFFFF


def io_session(port, subnqn, cntlid, hostnqn="nqn.2014-08.org.nvmexpress:uuid:0f0e0d0c-0b0a-0908-0706-050403020100",
               digests=False, qid=1):
    h = Host(port)
    h.connect_ic(digests, digests)
    cpl = h.fabric_connect(subnqn, hostnqn, qid=qid, sqsize=63, cntlid=cntlid, kato=0)
    assert cpl.ok, "I/O connect failed: %r" % cpl
    return h


# --------------------------------------------------------------- the daemon

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Target:
    """The real daosblk-tgt on a temporary RPC socket."""

    def __init__(self, mask="0x1", extra=()):
        build = os.environ["DBK_BUILD_DIR"]
        self.tgt = os.path.join(build, "app", "daosblk-tgt")
        self.rpc_bin = os.path.join(build, "tools", "rpc", "daosblk-rpc")
        self.dir = tempfile.mkdtemp(prefix="dbk-it-")
        self.sock = os.path.join(self.dir, "rpc.sock")
        self.log = open(os.path.join(self.dir, "tgt.log"), "w+")
        self.log_path = self.log.name
        self.proc = subprocess.Popen([self.tgt, "-m", mask, "-r", self.sock] + list(extra),
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(200):
            if self.proc.poll() is not None:
                raise RuntimeError("daosblk-tgt exited at start: " + self.logtext())
            if os.path.exists(self.sock):
                try:
                    self.rpc("framework_wait_init")
                    break
                except RuntimeError:
                    pass
            time.sleep(0.05)
        else:
            raise RuntimeError("daosblk-tgt did not start")

    def rpc(self, *args):
        p = subprocess.run([self.rpc_bin, "-s", self.sock] + [str(a) for a in args], capture_output=True,
                           text=True, timeout=30)
        if p.returncode != 0:
            raise RuntimeError("daosblk-rpc %s failed: %s" % (" ".join(map(str, args)), p.stderr.strip()))
        out = p.stdout.strip()
        return json.loads(out) if out else None

    def alive(self):
        return self.proc.poll() is None

    def logtext(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self, timeout=30):
        """SIGINT; returns the exit code (0 expected: clean shutdown, no leaks under ASan)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return -999
        self.log.close()
        return self.proc.returncode

    def export_malloc(self, nqn, port, size_mib=16, block=512, allow_any=True, transport_args=()):
        self.rpc("nvmf_create_transport", "-t", "TCP", *transport_args)
        self.rpc("bdev_malloc_create", size_mib, block, "-b", "Malloc0")
        args = ["nvmf_create_subsystem", nqn, "-s", "SPDK00000000000001"]
        if allow_any:
            args.append("-a")
        self.rpc(*args)
        self.rpc("nvmf_subsystem_add_ns", nqn, "Malloc0")
        self.rpc("nvmf_subsystem_add_listener", nqn, "-t", "tcp", "-a", "127.0.0.1", "-s", port)
