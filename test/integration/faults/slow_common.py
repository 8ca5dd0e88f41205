"""Shared by test_slow_hosts.py and test_emfile.py: the daemon they run and the verified second host."""

import os
import random
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults_lib as fl  # noqa: E402
from faults_lib import nt  # noqa: E402

BS = 4096
SEED = 0x510
STALL_S = float(os.environ.get("DBK_FAULTS_STALL_S", "10"))
DURATION = fl.scale(4, floor=2)


def small_rcvbuf_host(port, rcvbuf=4096):
    """An IoHost whose socket has a tiny receive buffer (set before connect, so the window stays small)."""
    h = fl.IoHost.__new__(fl.IoHost)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    h.sock, h.hdgst, h.ddgst, h.cid, h.buf, h.pending, h.incapsule = s, False, False, 0, b"", {}, 4096
    return h


class Trickle(threading.Thread):
    """Sends bytes one per second until stopped."""

    def __init__(self, port, payload, prefix=b""):
        super().__init__(daemon=True)
        self.port, self.payload, self.prefix = port, payload, prefix
        self.stop = threading.Event()
        self.sent = 0
        self.error = None

    def run(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            if self.prefix:
                s.sendall(self.prefix)
            for b in self.payload:
                if self.stop.wait(1.0):
                    break
                s.send(bytes([b]))
                self.sent += 1
            s.close()
        except OSError as e:
            self.error = e




class Base(unittest.TestCase):
    def setUp(self):
        self.be = fl.be.LocalBackend().setup()
        self.cont = self.be.create_cont("slow-cont")
        self.port = nt.free_port()
        self.d = None

    def tearDown(self):
        if self.d is not None and self.d.alive():
            self.d.kill9()
        self.be.teardown()

    def start(self, nofile=None):
        self.d = d = fl.Daemon(mask="0x1", extra=self.be.target_args(), nofile=nofile)
        d.rpc("nvmf_create_transport", "-t", "TCP", "-u", 16384, "-i", 131072, "-c", 8192)
        d.rpc("bdev_daos_create", "daosdev0", self.be.pool, self.cont, 64, BS)
        d.rpc("bdev_malloc_create", 64, BS, "-b", "Malloc0")
        d.rpc("nvmf_create_subsystem", fl.NQN, "-a", "-s", "SPDK00000000000001")
        d.rpc("nvmf_subsystem_add_ns", fl.NQN, "daosdev0")
        d.rpc("nvmf_subsystem_add_ns", fl.NQN, "Malloc0")
        d.rpc("nvmf_subsystem_add_listener", fl.NQN, "-t", "tcp", "-a", "127.0.0.1", "-s", self.port)
        return d

    def verified_io(self, seconds, what):
        """A second host: QD4 of verified 4-64 KiB writes and reads on both namespaces. Returns (ops, max s)."""
        a, cntlid = fl.admin(self.port, timeout=STALL_S)
        q = fl.IoHost.open(self.port, cntlid, qid=1, incapsule=8192, timeout=STALL_S)
        rng = random.Random(SEED)
        written = {}
        inflight = {}
        ops = 0
        worst = 0.0
        version = 0
        busy = set()
        end = time.time() + seconds
        try:
            while time.time() < end or inflight:
                while time.time() < end and len(inflight) < 4:
                    ns = rng.choice((1, 2))
                    nlb = rng.choice((1, 4, 16))
                    lba = rng.randrange(0, 4096 - 16) // 16 * 16
                    if (ns, lba) in busy:
                        continue
                    busy.add((ns, lba))
                    if (ns, lba, nlb) in written and rng.random() < 0.5:
                        cid = q.submit_read(ns, lba, nlb, BS)
                        inflight[cid] = ("r", ns, lba, nlb, written[(ns, lba, nlb)], time.time())
                    else:
                        version += 1
                        for k in [k for k in written if k[0] == ns and k[1] == lba]:
                            del written[k]
                        data = b"".join(fl.pattern(lba + i, version, SEED, BS) for i in range(nlb))
                        cid = q.submit_write(ns, lba, data, BS)
                        inflight[cid] = ("w", ns, lba, nlb, version, time.time())
                try:
                    cid, cpl, data = q.reap()
                except socket.timeout:
                    raise AssertionError("%s: a command of the second host got no answer in %.0f s: the target "
                                         "stalled\n%s" % (what, STALL_S, self.d.tail()))
                kind, ns, lba, nlb, v, t0 = inflight.pop(cid)
                busy.discard((ns, lba))
                worst = max(worst, time.time() - t0)
                self.assertTrue(cpl.ok, "%s: second host's %s: %s" % (what, kind, fl.status_name(cpl)))
                if kind == "w":
                    written[(ns, lba, nlb)] = v
                else:
                    for i in range(nlb):
                        got = fl.check_block(data[i * BS:(i + 1) * BS], BS)
                        self.assertEqual(got, (lba + i, v, SEED), "%s: ns %d block %d" % (what, ns, lba + i))
                ops += 1
        finally:
            q.close()
            a.close()
        return ops, worst

