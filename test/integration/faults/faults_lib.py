"""Shared pieces of the fault campaigns (Python standard library only).

- Daemon: the real daosblk-tgt, started on a temporary RPC socket with optional
  -c CONFIG and a lower RLIMIT_NOFILE; SIGINT (clean stop, exit code checked:
  an ASan leak report fails it) or SIGKILL; its open fds and RSS from /proc.
- IoHost: an NVMe/TCP I/O queue (on nvmetcp.Host) with several commands in
  flight: writes in the capsule or after R2T (H2CData), reads, flushes.
- pattern()/check_block(): self-describing blocks {magic, LBA, version, seed}
  + a fill derived from them, so a read-back names what it found.
- scale(): DBK_FAULTS_SCALE multiplies the campaigns' counts and durations
  (default 1: the full campaign takes well under a minute in a release build
  and about as long under ASan), never below a floor.
"""

import atexit
import json
import os
import random
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "nvmf"))
sys.path.insert(0, os.path.join(HERE, "..", "daos"))
import nvmetcp as nt  # noqa: E402,F401
import backend as be  # noqa: E402,F401

SKIP = 77
NQN = "nqn.2016-06.io.spdk:cnode1"
HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:0f0e0d0c-0b0a-0908-0706-050403020100"


def build_dir():
    return os.environ["DBK_BUILD_DIR"]


def asan_build():
    try:
        with open(os.path.join(build_dir(), "CMakeCache.txt")) as f:
            return any(line.strip().upper() in ("DBK_SANITIZE:BOOL=ON", "DBK_SANITIZE:BOOL=TRUE") for line in f)
    except OSError:
        return False


def scale(n, floor=1):
    """n times DBK_FAULTS_SCALE (default 1), at least floor."""
    s = os.environ.get("DBK_FAULTS_SCALE")
    f = float(s) if s else 1.0
    return max(floor, int(round(n * f)))


_made_dirs = []


def _remove_dirs():
    if os.environ.get("DBK_FAULTS_KEEP") == "1":
        return
    for d in _made_dirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_remove_dirs)


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# ------------------------------------------------------------------ the daemon

class Daemon:
    """daosblk-tgt on its own RPC socket. nofile: RLIMIT_NOFILE (soft and hard) for the daemon only; env: variables
    added to the daemon's environment."""

    def __init__(self, mask="0x1", extra=(), config=None, nofile=None, tag="tgt", workdir=None, env=None):
        b = build_dir()
        self.tgt = os.path.join(b, "app", "daosblk-tgt")
        self.rpc_bin = os.path.join(b, "tools", "rpc", "daosblk-rpc")
        if workdir is None:
            workdir = tempfile.mkdtemp(prefix="dbk-faults-")
            _made_dirs.append(workdir)  # removed at exit (DBK_FAULTS_KEEP=1 keeps the logs)
        self.dir = workdir
        self.sock = os.path.join(self.dir, tag + ".sock")
        self.log_path = os.path.join(self.dir, tag + ".log")
        self.logf = open(self.log_path, "a")
        args = [self.tgt, "-m", mask, "-r", self.sock] + list(extra)
        if config:
            args += ["-c", config]

        def limit():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        if os.path.exists(self.sock):
            os.unlink(self.sock)
        penv = None
        if env:
            penv = dict(os.environ)
            penv.update(env)
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT, preexec_fn=limit, env=penv)
        self.pid = self.proc.pid
        deadline = time.time() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("daosblk-tgt exited at start (%d): %s" % (self.proc.returncode, self.tail()))
            if os.path.exists(self.sock):
                try:
                    self.rpc("framework_wait_init", timeout=10)
                    break
                except RuntimeError:
                    pass
            if time.time() > deadline:
                self.kill9()
                raise RuntimeError("daosblk-tgt did not answer framework_wait_init within 60 s: " + self.tail())
            time.sleep(0.05)

    def rpc_text(self, *args, timeout=60):
        p = subprocess.run([self.rpc_bin, "-s", self.sock, "-t", str(timeout)] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=timeout + 10)
        if p.returncode != 0:
            raise RuntimeError("daosblk-rpc %s failed: %s" % (" ".join(map(str, args)), p.stderr.strip()))
        return p.stdout

    def rpc(self, *args, timeout=60):
        out = self.rpc_text(*args, timeout=timeout).strip()
        return json.loads(out) if out else None

    def alive(self):
        return self.proc.poll() is None

    def tail(self, n=6000):
        try:
            with open(self.log_path) as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def stop(self, timeout=60):
        """SIGINT and wait: the exit code (0: a clean shutdown; under ASan also no leak)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.logf.close()
                return -999
        self.logf.close()
        return self.proc.returncode

    def kill9(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.logf.close()

    # -- what the process holds
    def fds(self):
        return sorted(os.listdir("/proc/%d/fd" % self.pid), key=int)

    def fd_targets(self):
        out = {}
        for fd in self.fds():
            try:
                out[fd] = os.readlink("/proc/%d/fd/%s" % (self.pid, fd))
            except OSError:
                pass
        return out

    def rss_kb(self):
        """The daemon's own resident memory: anonymous plus shared-memory pages (RssAnon + RssShmem). Not
        RssFile: the local engine maps each bdev's file (reads copy from the mapping), and the file's pages
        that the mapping touched are the kernel's page cache, which grows with every block read, not a leak."""
        kb = 0
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith(("RssAnon:", "RssShmem:")):
                    kb += int(line.split()[1])
        return kb

    def pools(self):
        """What must be back at rest once hosts are gone: the transport's buffer pool, the qpairs, the
        subsystems' controllers, the bdev_io pools of every channel and the DAOS channels' in-flight ops.
        A dict of name -> value."""
        out = {}
        for pg in self.rpc("nvmf_get_stats")["poll_groups"]:
            n = pg["name"]
            out[n + ".current_admin_qpairs"] = pg["current_admin_qpairs"]
            out[n + ".current_io_qpairs"] = pg["current_io_qpairs"]
            out[n + ".pending_bdev_io"] = pg["pending_bdev_io"]
            for t in pg["transports"]:
                out[n + ".tcp.current_qpairs"] = t["current_qpairs"]
                out[n + ".tcp.free_buffers"] = t["free_buffers"]
                out[n + ".tcp.total_buffers"] = t["total_buffers"]
                out[n + ".tcp.pending_buffer_requests"] = t["pending_buffer_requests"]
        for sub in self.rpc("nvmf_get_subsystems"):
            if sub.get("subtype") != "Discovery":
                out["%s.controllers" % sub["nqn"]] = len(self.rpc("nvmf_subsystem_get_controllers", sub["nqn"]))
        for b in self.rpc("bdev_get_iostat", "-c")["bdevs"]:
            for ch in b.get("channels", []):
                k = "%s.%s" % (b["name"], ch["thread_name"])
                out[k + ".bdev_io_pool_free"] = ch["bdev_io_pool_free"]
                out[k + ".bdev_io_pool_size"] = ch["bdev_io_pool_size"]
                if "daos" in ch:
                    out[k + ".daos_inflight"] = ch["daos"]["inflight"]
        return out


def pools_at_rest(p):
    """The problems with a pools() snapshot taken with no host connected (empty list: all at rest)."""
    bad = []
    for k, v in p.items():
        if k.endswith("qpairs") or k.endswith("pending_bdev_io") or k.endswith("pending_buffer_requests") or \
                k.endswith("daos_inflight") or k.endswith(".controllers"):
            if v != 0:
                bad.append("%s = %d (want 0)" % (k, v))
        elif k.endswith(".tcp.free_buffers"):
            tot = p[k[:-len("free_buffers")] + "total_buffers"]
            if v != tot:
                bad.append("%s = %d of %d" % (k, v, tot))
        elif k.endswith(".bdev_io_pool_free"):
            tot = p[k[:-len("free")] + "size"]
            if v != tot:
                bad.append("%s = %d of %d" % (k, v, tot))
    return bad


def wait_at_rest(d, timeout=20.0):
    """Polls pools() until at rest; returns the last snapshot and its problems."""
    deadline = time.time() + timeout
    while True:
        p = d.pools()
        bad = pools_at_rest(p)
        if not bad or time.time() > deadline:
            return p, bad
        time.sleep(0.1)


def export(d, bdev_rpc, port, nqn=NQN, transport_args=("-u", 16384, "-i", 131072, "-c", 4096), addr="127.0.0.1"):
    """Transport, the bdev (bdev_rpc: the create call's args), a subsystem with it as NSID 1, a listener."""
    d.rpc("nvmf_create_transport", "-t", "TCP", *transport_args)
    d.rpc(*bdev_rpc)
    d.rpc("nvmf_create_subsystem", nqn, "-a", "-s", "SPDK00000000000001")
    d.rpc("nvmf_subsystem_add_ns", nqn, bdev_rpc[1] if bdev_rpc[0] == "bdev_daos_create" else bdev_rpc[-1])
    d.rpc("nvmf_subsystem_add_listener", nqn, "-t", "tcp", "-a", addr, "-s", port)


# ------------------------------------------------------------ data patterns

MAGIC = 0x44424B46  # "DBKF"


def pattern(lba, version, seed, bs=4096):
    head = struct.pack("<IIQQQ", MAGIC, 0, lba, version, seed)
    r = random.Random((seed << 40) ^ (lba << 20) ^ version)
    fill = r.getrandbits(8 * 64).to_bytes(64, "little")
    return head + (fill * (bs // 64 + 1))[:bs - len(head)]


def check_block(blk, bs=4096):
    """(lba, version, seed) of an intact pattern block, 'zero' for all zeros, or None (damaged/foreign)."""
    if blk == b"\0" * len(blk):
        return "zero"
    magic, _, lba, version, seed = struct.unpack_from("<IIQQQ", blk, 0)
    if magic != MAGIC:
        return None
    if pattern(lba, version, seed, bs) != blk:
        return None
    return (lba, version, seed)


# -------------------------------------------------------------- the host

class IoHost(nt.Host):
    """An I/O queue with several commands in flight. submit_*() return the cid; reap() returns
    (cid, Cpl, data) for one completed command, answering R2Ts and gathering C2HData on the way."""

    def __init__(self, port, addr="127.0.0.1", timeout=10.0):
        super().__init__(port, addr, timeout)
        self.pending = {}
        self.incapsule = 0

    @classmethod
    def open(cls, port, cntlid, qid=1, sqsize=63, incapsule=4096, timeout=10.0):
        h = cls(port, timeout=timeout)
        h.connect_ic()
        cpl = h.fabric_connect(NQN, HOSTNQN, qid=qid, sqsize=sqsize, cntlid=cntlid, kato=0)
        if not cpl.ok:
            h.close()
            raise AssertionError("I/O connect failed: %r" % cpl)
        h.incapsule = incapsule
        return h

    def _cid(self):
        while True:
            c = self.next_cid()
            if c not in self.pending and c != 0xFFFF:
                return c

    def submit_write(self, nsid, slba, data, bs):
        cid = self._cid()
        nlb = len(data) // bs
        inc = len(data) <= self.incapsule
        cmd = nt.sqe(0x01, cid, nsid=nsid, cdw10=slba & 0xFFFFFFFF, cdw11=slba >> 32, cdw12=nlb - 1,
                     sgl_len=len(data), incapsule=inc)
        self.pending[cid] = {"op": "write", "data": data}
        self.submit(cmd, data if inc else b"")
        return cid

    def submit_read(self, nsid, slba, nlb, bs):
        cid = self._cid()
        n = nlb * bs
        cmd = nt.sqe(0x02, cid, nsid=nsid, cdw10=slba & 0xFFFFFFFF, cdw11=slba >> 32, cdw12=nlb - 1, sgl_len=n)
        self.pending[cid] = {"op": "read", "buf": bytearray(n)}
        self.submit(cmd)
        return cid

    def submit_flush(self, nsid):
        cid = self._cid()
        self.pending[cid] = {"op": "flush"}
        self.submit(nt.sqe(0x00, cid, nsid=nsid))
        return cid

    def h2c(self, cccid, ttag, off, data, last):
        hdr = struct.pack("<HHII", cccid, ttag, off, len(data)) + b"\0" * 4
        self.send(self.pdu(nt.H2C_DATA, hdr, data, flags=nt.F_LAST if last else 0))

    def reap(self):
        while True:
            ptype, flags, hdr, data = self.recv_pdu()
            if ptype == nt.CAPSULE_RESP:
                cpl = nt.Cpl(hdr[8:24])
                p = self.pending.pop(cpl.cid, None)
                if p is None:
                    raise AssertionError("completion of unknown cid %d" % cpl.cid)
                return cpl.cid, cpl, bytes(p.get("buf", b""))
            if ptype == nt.C2H_DATA:
                cccid, _, datao, datal = struct.unpack_from("<HHII", hdr, 8)
                p = self.pending[cccid]
                p["buf"][datao:datao + datal] = data
                if flags & nt.F_SUCCESS:
                    self.pending.pop(cccid)
                    return cccid, nt.Cpl(struct.pack("<IIHHHH", 0, 0, 0, 0, cccid, 0)), bytes(p["buf"])
                continue
            if ptype == nt.R2T:
                cccid, ttag, r2to, r2tl = struct.unpack_from("<HHII", hdr, 8)
                d = self.pending[cccid]["data"]
                step = self.maxh2c
                off = r2to
                while off < r2to + r2tl:
                    n = min(step, r2to + r2tl - off)
                    self.h2c(cccid, ttag, off, d[off:off + n], off + n == r2to + r2tl)
                    off += n
                continue
            raise AssertionError("unexpected PDU type %d" % ptype)

    def sync(self, cid_fn):
        """Submit one command and wait for it (nothing else may be pending)."""
        cid_fn()
        return self.reap()

    def rst(self):
        """Vanish with an RST (SO_LINGER 0) instead of a FIN."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()


def admin(port, timeout=10.0):
    """Admin queue (ICReq, Connect, CC.EN): (IoHost, cntlid)."""
    h = IoHost(port, timeout=timeout)
    h.connect_ic()
    cpl = h.fabric_connect(NQN, HOSTNQN)
    if not cpl.ok:
        h.close()
        raise AssertionError("admin connect failed: %r" % cpl)
    h.enable()
    return h, cpl.cdw0 & 0xFFFF


def status_name(cpl):
    names = {(0, 0x00): "success", (0, 0x06): "internal error", (0, 0x81): "capacity exceeded",
             (0, 0x80): "LBA out of range", (2, 0x80): "write fault", (2, 0x81): "unrecovered read error",
             (0, 0x82): "namespace not ready"}
    return "%s (sct %d sc %#x%s)" % (names.get((cpl.sct, cpl.sc), "?"), cpl.sct, cpl.sc, " dnr" if cpl.dnr else "")
