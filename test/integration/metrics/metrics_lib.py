"""Helpers for the metrics tests: start the real daosblk-tgt with --metrics, configure it over JSON-RPC,
scrape and parse its /metrics (a strict parser of the 0.0.4 text format, written for the tests)."""
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

BUILD = os.environ.get("DBK_BUILD_DIR", "")
TGT = os.path.join(BUILD, "app", "daosblk-tgt")
RPC = os.path.join(BUILD, "tools", "rpc", "daosblk-rpc")
PERF = os.path.join(BUILD, "tools", "perf", "daosblk-perf")
NQN = "nqn.2016-06.io.spdk:cnode1"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Target:
    """daosblk-tgt -m MASK --metrics 127.0.0.1:PORT, a malloc bdev Dev0 in a subsystem listening on loopback."""

    def __init__(self, mask="0x1", extra=()):
        self.dir = tempfile.mkdtemp(prefix="dbk_metrics.")
        self.sock = os.path.join(self.dir, "rpc.sock")
        self.mport = free_port()
        self.nport = free_port()
        self.log = open(os.path.join(self.dir, "tgt.log"), "w+")
        self.proc = subprocess.Popen([TGT, "-m", mask, "-r", self.sock, "--metrics", f"127.0.0.1:{self.mport}",
                                      *extra], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                msg = f"daosblk-tgt exited early ({self.proc.returncode}):\n{self.logtext()}"
                self.cleanup()
                raise RuntimeError(msg)
            if os.path.exists(self.sock) and self.rpc_ok("framework_wait_init"):
                return
            time.sleep(0.1)
        msg = "daosblk-tgt did not become ready within 60 s:\n" + self.logtext()
        self.cleanup()	# no daemon left behind
        raise RuntimeError(msg)

    def logtext(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()[-4000:]

    def rpc(self, *args):
        r = subprocess.run([RPC, "-s", self.sock, "-t", "30", *args], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"daosblk-rpc {' '.join(args)}: {r.stderr}")
        return r.stdout

    def rpc_ok(self, *args):
        return subprocess.run([RPC, "-s", self.sock, "-t", "5", *args], capture_output=True).returncode == 0

    def setup_malloc(self, mib=64, block=4096):
        self.rpc("nvmf_create_transport", "-t", "TCP")
        self.rpc("bdev_malloc_create", str(mib), str(block), "-b", "Dev0")
        self.rpc("nvmf_create_subsystem", NQN, "-a", "-s", "SPDK00000000000001")
        self.rpc("nvmf_subsystem_add_ns", NQN, "Dev0")
        self.rpc("nvmf_subsystem_add_listener", NQN, "-t", "tcp", "-a", "127.0.0.1", "-s", str(self.nport))

    def trid(self):
        return f"trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:{self.nport} subnqn:{NQN}"

    def alive(self):
        return self.proc.poll() is None and self.rpc_ok("spdk_get_version")

    def stop(self, timeout=60):
        """SIGINT; returns the exit status (must be 0: ASan leak reports fail it)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -1

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        subprocess.run(["rm", "-rf", self.dir])


def http(port, raw, timeout=20):
    """Send raw bytes, read until the server closes (or timeout). Returns the bytes received."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(raw)
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                return out
            out += d
    finally:
        s.close()


def read_response(s):
    """Read one HTTP response from socket s: (status, headers dict lower-case, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise EOFError(f"connection closed inside a response head: {buf!r}")
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    return status, headers, rest, n


def get(port, path="/metrics", timeout=30):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        status, headers, body, n = read_response(s)
        while len(body) < n:
            d = s.recv(65536)
            if not d:
                break
            body += d
        return status, headers, body.decode()
    finally:
        s.close()


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse_exposition(text):
    """Strict enough parse of the text format: {family: {"type", "help", "samples": [(name, labels, value)]}}.
    Raises on a sample outside its family, a family declared twice, or a malformed line."""
    fams = {}
    cur = None
    for ln in text.split("\n"):
        if not ln:
            continue
        if ln.startswith("# HELP "):
            name = ln.split(" ", 3)[2]
            if name in fams:
                raise ValueError(f"family {name} declared twice")
            fams[name] = {"help": ln.split(" ", 3)[3] if ln.count(" ") >= 3 else "", "type": None, "samples": []}
            cur = name
            continue
        if ln.startswith("# TYPE "):
            _, _, name, typ = ln.split(" ")
            if name != cur:
                raise ValueError(f"TYPE for {name} outside its HELP")
            fams[name]["type"] = typ
            continue
        if ln.startswith("#"):
            continue
        m = _SAMPLE.match(ln)
        if not m:
            raise ValueError(f"malformed line {ln!r}")
        name, labels_s, value = m.group(1), m.group(3) or "", m.group(4)
        labels = {}
        pos = 0
        while pos < len(labels_s):
            lm = _LABEL.match(labels_s, pos)
            if not lm:
                raise ValueError(f"malformed labels in {ln!r}")
            labels[lm.group(1)] = re.sub(r'\\(.)', lambda x: {"n": "\n"}.get(x.group(1), x.group(1)), lm.group(2))
            pos = lm.end()
        base = name
        if cur and fams[cur]["type"] == "histogram":
            for suf in ("_bucket", "_sum", "_count"):
                if name == cur + suf:
                    base = cur
        if base != cur:
            raise ValueError(f"sample {name} outside its family (current {cur})")
        fams[cur]["samples"].append((name, labels, float(value)))
    return fams


def value(fams, name, **labels):
    """The value of the one sample of family `name` whose labels include `labels`."""
    fam = name
    for suf in ("_bucket", "_sum", "_count"):
        if name.endswith(suf) and name[: -len(suf)] in fams and fams[name[: -len(suf)]]["type"] == "histogram":
            fam = name[: -len(suf)]
    hits = [v for (n, l, v) in fams[fam]["samples"] if n == name and all(l.get(k) == w for k, w in labels.items())]
    if len(hits) != 1:
        raise KeyError(f"{name}{labels}: {len(hits)} samples")
    return hits[0]
