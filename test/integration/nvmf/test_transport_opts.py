"""Transport options that change the data path, against the real daosblk-tgt over loopback:
zcopy (zero-copy reads from a lending bdev, on by default, off with --no-zcopy) and
congestion_control (TCP_CONGESTION on every connection; an unknown name fails the RPC)."""

import os
import shutil
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nvmetcp as nt  # noqa: E402

NQN = "nqn.2016-06.io.spdk:cnode1"
BS = 512


def tcp_stat(tgt, key):
    return sum(t.get(key, 0) for g in tgt.rpc("nvmf_get_stats")["poll_groups"] for t in g.get("transports", []))


def read_back(port, n=128 * 1024):
    """Write a pattern (in-capsule, 4 KiB at a time), read it back in one n-byte Read, return both."""
    h, cntlid = nt.admin_session(port, NQN)
    io = nt.io_session(port, NQN, cntlid)
    pattern = bytes((i * 13 + (i >> 12)) & 0xFF for i in range(n))
    for off in range(0, n, 4096):
        assert io.write_incapsule(1, 64 + off // BS, pattern[off:off + 4096], BS).ok
    cpl, back = io.read(1, 64, n // BS, BS)
    assert cpl.ok, cpl
    io.close()
    h.close()
    return pattern, back


class TransportOpts(unittest.TestCase):
    def start(self, *transport_args):
        self.port = nt.free_port()
        self.tgt = nt.Target()
        self.addCleanup(self.stop)
        self.tgt.export_malloc(NQN, self.port, size_mib=16, block=BS, transport_args=transport_args)

    def stop(self):
        rc = self.tgt.stop()
        self.assertEqual(rc, 0, "daosblk-tgt exited with %d:\n%s" % (rc, self.tgt.logtext()[-3000:]))

    def test_zcopy_default_on(self):
        self.start()
        t = self.tgt.rpc("nvmf_get_transports")[0]
        self.assertTrue(t["zcopy"])
        pattern, back = read_back(self.port)
        self.assertEqual(back, pattern)
        self.assertGreaterEqual(tcp_stat(self.tgt, "c2h_pdus_lent"), 1)
        self.assertGreaterEqual(tcp_stat(self.tgt, "bytes_sent_zcopy"), 128 * 1024)

    def test_no_zcopy(self):
        self.start("--no-zcopy")
        t = self.tgt.rpc("nvmf_get_transports")[0]
        self.assertFalse(t["zcopy"])
        pattern, back = read_back(self.port)
        self.assertEqual(back, pattern)
        self.assertEqual(tcp_stat(self.tgt, "c2h_pdus_lent"), 0)
        self.assertEqual(tcp_stat(self.tgt, "bytes_sent_zcopy"), 0)
        # save_config keeps the choice
        cfg = self.tgt.rpc("save_config")
        nvmf = [s for s in cfg["subsystems"] if s["subsystem"] == "nvmf"][0]
        ct = [c for c in nvmf["config"] if c["method"] == "nvmf_create_transport"][0]
        self.assertFalse(ct["params"]["zcopy"])

    def test_congestion_control_unknown_refused(self):
        self.tgt = nt.Target()
        self.addCleanup(self.stop)
        with self.assertRaises(RuntimeError) as e:
            self.tgt.rpc("nvmf_create_transport", "-t", "TCP", "--congestion-control", "no-such-cc")
        self.assertIn("congestion_control 'no-such-cc' is not available", str(e.exception))
        self.assertEqual(self.tgt.rpc("nvmf_get_transports"), [])

    @unittest.skipUnless(shutil.which("ss"), "ss (iproute2) not installed")
    def test_congestion_control_applied(self):
        with open("/proc/sys/net/ipv4/tcp_available_congestion_control") as f:
            avail = f.read().split()
        with open("/proc/sys/net/ipv4/tcp_congestion_control") as f:
            system = f.read().strip()
        other = [c for c in avail if c != system]
        if not other:
            self.skipTest("only one congestion control available")
        cc = other[0]
        self.start("--congestion-control", cc)
        self.assertEqual(self.tgt.rpc("nvmf_get_transports")[0]["congestion_control"], cc)
        h, _ = nt.admin_session(self.port, NQN)
        # the target's end of the connection: local port = the listener's
        out = subprocess.run(["ss", "-tni", "state", "established", "( sport = :%d )" % self.port],
                             capture_output=True, text=True, check=True).stdout
        h.close()
        self.assertIn(" %s " % cc, " " + out.replace("\n", " ") + " ", out)
        self.assertNotIn(" %s " % system, " " + out.replace("\n", " ") + " ", out)
        # and on the listening socket itself, so connections never start under the system default (whose
        # pacing, e.g. bbr's, would stay on after a later switch)
        lout = subprocess.run(["ss", "-tlni", "( sport = :%d )" % self.port],
                              capture_output=True, text=True, check=True).stdout
        self.assertIn(" %s " % cc, " " + lout.replace("\n", " ") + " ", lout)
        cfg = self.tgt.rpc("save_config")
        nvmf = [s for s in cfg["subsystems"] if s["subsystem"] == "nvmf"][0]
        ct = [c for c in nvmf["config"] if c["method"] == "nvmf_create_transport"][0]
        self.assertEqual(ct["params"]["congestion_control"], cc)


    def test_icreq_timeout(self):
        """A connection that never sends its ICReq is closed (here after 500 ms instead of 10 s)."""
        os.environ["DBK_TCP_ICREQ_TIMEOUT_MS"] = "500"
        try:
            self.start()
        finally:
            del os.environ["DBK_TCP_ICREQ_TIMEOUT_MS"]
        t0 = time.time()
        silent = socket.create_connection(("127.0.0.1", self.port))
        silent.settimeout(5)
        self.assertEqual(silent.recv(1), b"", "the silent connection was not closed")
        took = time.time() - t0
        self.assertGreater(took, 0.4)
        self.assertLess(took, 3.0)
        silent.close()
        self.assertEqual(tcp_stat(self.tgt, "icreq_timeouts"), 1)
        pattern, back = read_back(self.port)
        self.assertEqual(back, pattern)


if __name__ == "__main__":
    unittest.main(verbosity=2)
