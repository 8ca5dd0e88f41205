"""Fault campaign: connection churn against the real daemon.

1,000 cycles (DBK_FAULTS_SCALE scales the count) of connect / I/O / disconnect
by short-lived hosts, in a seeded random mix of endings:
  clean      admin + I/O queue, verified write + read, FIN
  rst        commands in flight (reads, in-capsule and R2T writes), then an RST (SO_LINGER 0)
  mid_r2t    a large write, the R2T answered with part of its data, then FIN or RST
  mid_cap    a capsule with in-capsule data cut short (or a PDU header cut short), then FIN or RST
  mid_ic     an ICReq cut short, or an admin Connect and nothing more
while another host (daosblk-perf --verify, in back-to-back runs) keeps doing
verified I/O on a namespace of its own. The target has two reactors and three
namespaces: a DAOS bdev on the local engine for the verified host, and a malloc
bdev (zero-copy: lent reads and writes) and a second DAOS bdev for the churn.

Afterwards, with every host gone: the daemon's open fds are the same as before
the churn, its RSS (anonymous + shared memory: not the file pages the local engine's
mapping touches) is back within a small margin (not checked under ASan, whose
quarantine holds freed memory), the transport's buffer pool, every channel's
bdev_io pool, the DAOS channels' in-flight ops and the qpair counts are at rest,
and SIGINT stops it with exit code 0 (under ASan: no leak).
"""

import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults_lib as fl  # noqa: E402
from faults_lib import nt  # noqa: E402

BS = 4096
CYCLES = fl.scale(int(os.environ.get("DBK_FAULTS_CHURN_CYCLES", "1000")), floor=50)
SEED = int(os.environ.get("DBK_FAULTS_SEED", "0")) or random.randrange(1, 1 << 30)
RSS_SLACK_KB = 4 * 1024
NS_PERF, NS_MALLOC, NS_DAOS = 1, 2, 3
NS_BLOCKS = 64 * 1024 * 1024 // BS
MALLOC_MIB = 16
MALLOC_BLOCKS = MALLOC_MIB * 1024 * 1024 // BS
# Clean cycles verify in the lower half; the others write into the upper half only: a write of a host that
# vanished may still land after the next host's write (nothing orders two hosts' writes), so they never share LBAs.
HALF = MALLOC_BLOCKS // 2


class Churn(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        fl.log("churn: %d cycles, seed %d (DBK_FAULTS_SEED=%d repeats this mix)" % (CYCLES, SEED, SEED))
        cls.rng = random.Random(SEED)
        cls.be = fl.be.LocalBackend().setup()
        cls.cont = cls.be.create_cont("churn-cont")
        cls.port = nt.free_port()
        cls.d = fl.Daemon(mask="[0,1]", extra=cls.be.target_args())
        try:
            d = cls.d
            d.rpc("nvmf_create_transport", "-t", "TCP", "-u", 16384, "-i", 131072, "-c", 4096)
            d.rpc("bdev_daos_create", "daosdev0", cls.be.pool, cls.cont, 64, BS)
            d.rpc("bdev_malloc_create", MALLOC_MIB, BS, "-b", "Malloc0")
            d.rpc("bdev_daos_create", "daosdev1", cls.be.pool, cls.cont, 64, BS)
            d.rpc("nvmf_create_subsystem", fl.NQN, "-a", "-s", "SPDK00000000000001")
            for b in ("daosdev0", "Malloc0", "daosdev1"):
                d.rpc("nvmf_subsystem_add_ns", fl.NQN, b)
            d.rpc("nvmf_subsystem_add_listener", fl.NQN, "-t", "tcp", "-a", "127.0.0.1", "-s", cls.port)
        except Exception:
            cls.d.kill9()
            cls.be.teardown()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.d.alive():
            cls.d.kill9()
        cls.be.teardown()

    # ------------------------------------------------------------- cycles
    def io_pair(self):
        a, cntlid = fl.admin(self.port)
        q = fl.IoHost.open(self.port, cntlid)
        return a, q

    def cyc_clean(self, rng):
        a, q = self.io_pair()
        ns = rng.choice((NS_MALLOC, NS_DAOS))
        lba = rng.randrange(0, HALF - 32)
        nlb = rng.choice((1, 1, 2, 8, 32))  # 32 blocks = 128 KiB: R2T in several H2CData
        data = b"".join(fl.pattern(lba + i, self.gen, SEED, BS) for i in range(nlb))
        q.submit_write(ns, lba, data, BS)
        _, cpl, _ = q.reap()
        self.assertTrue(cpl.ok, "clean cycle: write %s" % fl.status_name(cpl))
        q.submit_read(ns, lba, nlb, BS)
        _, cpl, back = q.reap()
        self.assertTrue(cpl.ok, "clean cycle: read %s" % fl.status_name(cpl))
        self.assertEqual(back, data, "clean cycle: read back differs (ns %d lba %d nlb %d)" % (ns, lba, nlb))
        q.close()
        a.close()

    def cyc_rst(self, rng):
        a, q = self.io_pair()
        for _ in range(rng.randrange(1, 12)):
            ns = rng.choice((NS_MALLOC, NS_DAOS, NS_PERF))
            lba = rng.randrange(HALF, MALLOC_BLOCKS - 32)
            if ns == NS_PERF or rng.random() < 0.5:
                q.submit_read(ns, lba, rng.choice((1, 8, 32)), BS)
            else:
                nlb = rng.choice((1, 16))
                q.submit_write(ns, lba, b"\xa5" * (nlb * BS), BS)
        if rng.random() < 0.5:
            time.sleep(0.001)
        q.rst()
        if rng.random() < 0.5:
            a.rst()
        else:
            a.close()

    def cyc_mid_r2t(self, rng):
        a, q = self.io_pair()
        ns = rng.choice((NS_MALLOC, NS_DAOS))
        nlb = rng.choice((8, 32))
        cid = q._cid()
        q.submit(nt.sqe(0x01, cid, nsid=ns, cdw10=rng.randrange(HALF, MALLOC_BLOCKS - 32), cdw12=nlb - 1,
                        sgl_len=nlb * BS))
        ptype, _, hdr, _ = q.recv_pdu()
        self.assertEqual(ptype, nt.R2T, "mid_r2t: expected an R2T")
        cccid, ttag, r2to, r2tl = struct.unpack_from("<HHII", hdr, 8)
        part = rng.choice((0, 512, 4096, r2tl // 2))
        if part:
            q.h2c(cccid, ttag, r2to, b"\x5a" * part, False)
        if rng.random() < 0.3:
            time.sleep(0.12)  # past the target's 100 ms stall limit for lent writes
        (q.rst if rng.random() < 0.5 else q.close)()
        (a.rst if rng.random() < 0.5 else a.close)()

    def cyc_mid_cap(self, rng):
        a, q = self.io_pair()
        ns = rng.choice((NS_MALLOC, NS_DAOS))
        cid = q._cid()
        cmd = nt.sqe(0x01, cid, nsid=ns, cdw10=rng.randrange(HALF, MALLOC_BLOCKS), cdw12=0, sgl_len=BS, incapsule=True)
        pdu = q.pdu(nt.CAPSULE_CMD, cmd, b"\x3c" * BS)
        cut = rng.choice((3, 8, 40, 72, 72 + 100, len(pdu) - 1))
        q.send(pdu[:cut])
        (q.rst if rng.random() < 0.5 else q.close)()
        (a.rst if rng.random() < 0.5 else a.close)()

    def cyc_mid_ic(self, rng):
        if rng.random() < 0.5:
            h = nt.Host(self.port)
            h.send(struct.pack("<BBBBI", nt.IC_REQ, 0, 128, 0, 128) + b"\0" * rng.randrange(0, 100))
            h.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.close()
        else:
            a, _ = fl.admin(self.port)
            if rng.random() < 0.5:
                a.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            a.close()

    # ------------------------------------------------------------- the campaign
    def perf_loop(self, stop, results):
        perf = os.path.join(fl.build_dir(), "tools", "perf", "daosblk-perf")
        trid = "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:%d subnqn:%s" % (self.port, fl.NQN)
        while not stop.is_set():
            p = subprocess.run([perf, "-r", trid, "-n", str(NS_PERF), "-q", "8", "-o", "4096", "-w", "randrw",
                                "-M", "50", "-t", "2", "-c", "0x1", "--verify", "--json", "--no-progress"],
                               capture_output=True, text=True, timeout=120)
            try:
                j = json.loads(p.stdout)
            except ValueError:
                j = None
            results.append((p.returncode, j, p.stderr[-2000:]))
            if p.returncode != 0:
                return

    def run_cycles(self, n, rng):
        kinds = [("clean", self.cyc_clean, 3), ("rst", self.cyc_rst, 3), ("mid_r2t", self.cyc_mid_r2t, 2),
                 ("mid_cap", self.cyc_mid_cap, 2), ("mid_ic", self.cyc_mid_ic, 1)]
        weights = [k[2] for k in kinds]
        counts = {}
        for i in range(n):
            name, fn, _ = rng.choices(kinds, weights)[0]
            self.gen = i + 1
            try:
                fn(rng)
            except Exception as e:
                raise AssertionError("cycle %d (%s, seed %d) failed: %r\n%s" % (i, name, SEED, e, self.d.tail()))
            counts[name] = counts.get(name, 0) + 1
        return counts

    def test_churn(self):
        d = self.d
        # Warm up: every kind of cycle and the verified host once, so that the channels, the lazily made
        # buffers and the allocator's arenas exist before the baseline.
        self.run_cycles(60, random.Random(SEED + 1))
        self.one_perf()
        # ... and every page of the malloc bdev and of the transport's buffer pool (64 x 128 KiB writes in
        # flight take all of it) touched, so that RSS counts them before as after.
        self.one_perf(ns=NS_MALLOC, args=("-q", "64", "-o", "131072", "-w", "write", "-t", "1"))
        base_pools, bad = fl.wait_at_rest(d)
        self.assertEqual(bad, [], "not at rest before the churn")
        base_fds = self.quiet_fds()
        base_rss = d.rss_kb()
        fl.log("baseline: %d fds, RSS %d KiB" % (len(base_fds), base_rss))

        results = []
        stop = threading.Event()
        th = threading.Thread(target=self.perf_loop, args=(stop, results))
        th.start()
        t0 = time.time()
        try:
            counts = self.run_cycles(CYCLES, self.rng)
        finally:
            stop.set()
            th.join()
        fl.log("%d cycles in %.1f s: %s; verified host: %d runs" % (CYCLES, time.time() - t0, counts, len(results)))
        self.assertTrue(results, "the verified host never ran")
        for rc, j, err in results:
            self.assertEqual(rc, 0, "verified host failed during the churn: %s\n%s" % (err, d.tail()))
            self.assertIsNotNone(j)
            self.assertEqual(j["verify"]["mismatches"], 0, j)
            self.assertEqual(j["errors"], 0, j)
            self.assertGreater(j["verify"]["blocks_checked"], 0, j)

        pools, bad = fl.wait_at_rest(d)
        self.assertEqual(bad, [], "pools not back at rest after the churn: %s" % bad)
        self.assertEqual(sorted(pools), sorted(base_pools))
        fds = self.settled_fds(base_fds)
        # The RPC connection of a daosblk-rpc call just made may still be open in either snapshot: no more
        # after than before, and the same files, event queues and pipes.
        self.assertLessEqual(len(fds), len(base_fds),
                         "open fds: %d before, %d after: %s" % (len(base_fds), len(fds),
                                                                sorted(set(fds.items()) ^ set(base_fds.items()))))
        nonsock = lambda m: sorted(v for v in m.values() if not v.startswith("socket:"))  # noqa: E731
        self.assertEqual(nonsock(fds), nonsock(base_fds))
        rss = d.rss_kb()
        fl.log("after: %d fds, RSS %d KiB (%+d KiB)" % (len(fds), rss, rss - base_rss))
        if not fl.asan_build():
            self.assertLess(rss, base_rss + RSS_SLACK_KB, "RSS grew from %d to %d KiB" % (base_rss, rss))
        self.one_perf()  # still serving
        rc = d.stop()
        self.assertEqual(rc, 0, "daosblk-tgt exited with %d after the churn:\n%s" % (rc, d.tail()))
        self.assertNotIn("not freed", d.tail(1 << 20), "a channel was destroyed with bdev_io in use")

    def quiet_fds(self, samples=10):
        """The fewest open fds over a second: without the RPC connections still closing."""
        best = None
        for _ in range(samples):
            fds = self.d.fd_targets()
            if best is None or len(fds) < len(best):
                best = fds
            time.sleep(0.1)
        return best

    def settled_fds(self, base, timeout=10.0):
        deadline = time.time() + timeout
        while True:
            fds = self.d.fd_targets()
            if len(fds) <= len(base) or time.time() > deadline:
                return fds
            time.sleep(0.1)

    def one_perf(self, ns=NS_PERF, args=("-q", "8", "-o", "4096", "-w", "randrw", "-M", "50", "-t", "1",
                                         "--verify")):
        perf = os.path.join(fl.build_dir(), "tools", "perf", "daosblk-perf")
        trid = "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:%d subnqn:%s" % (self.port, fl.NQN)
        p = subprocess.run([perf, "-r", trid, "-n", str(ns), "-c", "0x1", "--json", "--no-progress"] + list(args),
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, "verified host: %s\n%s" % (p.stderr[-2000:], self.d.tail()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
