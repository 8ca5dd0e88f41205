"""Fault campaign: more connections than the daemon has file descriptors.

The daemon runs with RLIMIT_NOFILE a little above what it uses plus the NVMe/TCP
transport's fd headroom (32). A flood of 150 connections must be refused
cleanly: the daemon does not spin on its listener (under half a core while the
flood waits), answers RPCs, does not flood its log, and every connection beyond
the limit is closed rather than left hanging; some get their ICResp. Once the
flood goes, a host connects and does verified I/O again.
"""

import os
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults_lib as fl  # noqa: E402
from faults_lib import nt  # noqa: E402

from slow_common import Base  # noqa: E402


class Emfile(Base):
    def test_emfile(self):
        probe = self.start()
        base = len(probe.fds())
        self.assertEqual(probe.stop(), 0)
        # Room for the target's fd headroom (32, nvmf/tcp) and a few connections, not for the flood.
        limit = base + 32 + 16
        d = self.start(nofile=limit)
        fl.log("daemon uses %d fds at rest; RLIMIT_NOFILE %d" % (base, limit))
        flood = []
        for _ in range(150):
            s = socket.socket()
            s.settimeout(5)
            try:
                s.connect(("127.0.0.1", self.port))
                s.sendall(struct.pack("<BBBBI", nt.IC_REQ, 0, 128, 0, 128) + b"\0" * 120)
            except OSError:
                pass
            flood.append(s)
        time.sleep(1.0)
        # The daemon is not spinning on its listener: RPCs answer, and its log is not flooded.
        cpu0 = self.cpu_s(d)
        t0 = time.time()
        time.sleep(1.0)
        busy = (self.cpu_s(d) - cpu0) / (time.time() - t0)
        self.assertTrue(d.rpc("spdk_get_version", timeout=10), "no RPC answer during the flood")
        fl.log("flood of %d connections: daemon busy %.0f%% of a core while it waits" % (len(flood), busy * 100))
        self.assertLess(busy, 0.5, "the daemon spins while it has no fd to accept with")
        lines = d.tail(1 << 22).count("\n")
        self.assertLess(lines, 200, "the daemon's log grew by %d lines under the flood:\n%s" % (lines, d.tail(3000)))
        # Connections past the limit are closed, not left waiting for an ICResp forever.
        answered = closed = hung = 0
        for s in flood:
            s.settimeout(0.05 if hung > 5 else 3)
            try:
                b = s.recv(128)
                if b:
                    answered += 1
                else:
                    closed += 1
            except socket.timeout:
                hung += 1
            except ConnectionError:
                closed += 1
        fl.log("flood: %d got an ICResp, %d were closed, %d heard nothing" % (answered, closed, hung))
        self.assertGreater(answered, 0)
        self.assertEqual(hung, 0, "%d connections past the fd limit were left hanging" % hung)
        for s in flood:
            s.close()
        # Service resumes.
        deadline = time.time() + 10
        while True:
            try:
                ops, _ = self.verified_io(1, "after the flood")
                break
            except (AssertionError, OSError, nt.Closed):
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        self.assertGreater(ops, 0)
        rc = d.stop()
        self.assertEqual(rc, 0, "daosblk-tgt exited with %d:\n%s" % (rc, d.tail()))

    @staticmethod
    def cpu_s(d):
        with open("/proc/%d/stat" % d.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    unittest.main(verbosity=2)
