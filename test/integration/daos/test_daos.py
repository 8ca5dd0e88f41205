"""The DAOS bdev end to end through the real daemon: RPC validation (nothing
half-registered), per-reactor connections, unmap/zeros, injected engine errors
reaching the host as NVMe errors, and identity + data surviving a restart.
NVMe/TCP over loopback.

The engine is the embedded local one unless DBK_DFS_ENGINE=daos: then the same
cases run against a live DAOS (see backend.py), or the test exits 77 (skipped)
with the reason when none is reachable.
"""

import json
import os
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "nvmf"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nvmetcp as nt  # noqa: E402
import backend as be  # noqa: E402

NQN = "nqn.2016-06.io.spdk:cnode1"
BS = 4096


def dsm_deallocate(h, nsid, slba, nlb):
    rng = struct.pack("<IIQ", 0, nlb, slba)
    cmd = nt.sqe(0x09, h.next_cid(), nsid=nsid, cdw10=0, cdw11=1 << 2, sgl_len=16, incapsule=True)
    return h.command(cmd, rng)[0]


class DaosBdev(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.be = be.backend().setup()
        cls.pool = cls.be.pool
        cls.cont = cls.be.create_cont("test-cont")
        cls.hdf = cls.be.create_cont("hdf-cont", "HDF5")
        cls.port = nt.free_port()
        cls.tgt = nt.Target(mask="[0,1]", extra=cls.be.target_args())

    @classmethod
    def tearDownClass(cls):
        rc = cls.tgt.stop()
        if rc != 0:
            print(cls.tgt.logtext()[-4000:], file=sys.stderr)
        cls.be.teardown()
        assert rc == 0, "daosblk-tgt exited with %d" % rc

    def bdevs(self):
        return sorted(b["name"] for b in self.tgt.rpc("bdev_get_bdevs"))

    def create_fails(self, args, words):
        before = self.bdevs()
        with self.assertRaises(RuntimeError) as cm:
            self.tgt.rpc("bdev_daos_create", *args)
        msg = str(cm.exception)
        for w in words:
            self.assertIn(w, msg, "error message %r does not mention %r" % (msg, w))
        self.assertEqual(self.bdevs(), before, "a failed create left something registered")

    def test_01_validation(self):
        self.create_fails(("d1", "no-pool", self.cont, 64, 4096), ["no-pool"])
        self.create_fails(("d1", self.pool, "no-cont", 64, 4096), ["no-cont"])
        self.create_fails(("d1", self.pool, self.hdf, 64, 4096), ["POSIX"])
        self.create_fails(("d1", self.pool, self.cont, 64, 256), ["block_size"])
        with self.assertRaises(RuntimeError):  # 0 MiB: refused by the CLI or the target
            self.tgt.rpc("bdev_daos_create", "d1", self.pool, self.cont, 0, 4096)
        self.assertEqual(self.bdevs(), [])
        self.create_fails(("d1", self.pool, self.cont, 64, 4096, "-o", "NOPE_9"), ["NOPE_9"])
        self.assertEqual(self.tgt.rpc("bdev_daos_create", "d1", self.pool, self.cont, 8, 4096), "d1")
        self.create_fails(("d1", self.pool, self.cont, 8, 4096), ["d1"])
        self.tgt.rpc("bdev_daos_delete", "d1")
        self.assertEqual(self.bdevs(), [])
        # The file stays in the container; a re-create keeps its identity, a new block size is refused.
        names = self.be.file_names(self.cont)
        if names is not None:
            self.assertIn("d1", names)
        self.create_fails(("d1", self.pool, self.cont, 8, 512), ["block"])

    def test_02_io_channels_unmap_errors(self):
        t = self.tgt
        t.rpc("nvmf_create_transport", "-t", "TCP", "-u", 131072, "-i", 131072)
        t.rpc("bdev_daos_create", "daosdev0", self.pool, self.cont, 64, BS)
        t.rpc("nvmf_create_subsystem", NQN, "-a", "-s", "SPDK00000000000001")
        t.rpc("nvmf_subsystem_add_ns", NQN, "daosdev0")
        t.rpc("nvmf_subsystem_add_listener", NQN, "-t", "tcp", "-a", "127.0.0.1", "-s", self.port)
        admin, cntlid = nt.admin_session(self.port, NQN)
        # Two I/O queues: the target places them on its two reactors.
        q1 = nt.io_session(self.port, NQN, cntlid)
        q2 = nt.io_session(self.port, NQN, cntlid, qid=2)
        data = os.urandom(2 * BS)
        self.assertTrue(q1.write_incapsule(1, 10, data[:BS], BS).ok)
        self.assertTrue(q2.write_incapsule(1, 11, data[BS:], BS).ok)
        cpl, back = q1.read(1, 10, 2, BS)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(back, data)
        info = t.rpc("bdev_get_bdevs", "-b", "daosdev0")[0]["driver_specific"]["daos"]
        self.assertEqual(info["channels"], 2, info)
        self.assertEqual(info["engine"], self.be.name)
        self.assertEqual(info["oclass"], "SX")

        # Unmap (DSM deallocate) then read: zeros.
        self.assertTrue(dsm_deallocate(q2, 1, 10, 2).ok)
        cpl, back = q1.read(1, 10, 2, BS)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(back, b"\0" * (2 * BS))
        # Never-written blocks read zeros.
        cpl, back = q1.read(1, 5000, 1, BS)
        self.assertTrue(cpl.ok and back == b"\0" * BS)

        # Injected engine errors reach the host as NVMe errors; the target keeps serving.
        t.rpc("bdev_daos_inject_error", json.dumps({"name": "daosdev0", "io_type": "read", "count": 2}))
        fails = 0
        for q in (q1, q2, q1, q2):
            cpl, _ = q.read(1, 0, 1, BS)
            if not cpl.ok:
                fails += 1
                self.assertNotEqual((cpl.sct, cpl.sc), (0, 0))
        self.assertEqual(fails, 2, "expected exactly the 2 injected read failures")
        t.rpc("bdev_daos_inject_error", json.dumps({"name": "daosdev0", "io_type": "write", "count": 1}))
        self.assertFalse(q1.write_incapsule(1, 20, data[:BS], BS).ok)
        self.assertTrue(q1.write_incapsule(1, 20, data[:BS], BS).ok)

        # A volatile write cache only on the local engine (page cache); a completed DAOS write is durable.
        cpl, idc = admin.identify(1)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(idc[525] & 1, 1 if self.be.name == "local" else 0, "Identify Controller VWC")
        # Flush, then the data survives a restart of the whole target with the same UUID.
        cpl, _ = q2.command(nt.sqe(0x00, q2.next_cid(), nsid=1))
        self.assertTrue(cpl.ok, cpl)
        uuid = t.rpc("bdev_get_bdevs", "-b", "daosdev0")[0]["uuid"]
        for h in (q1, q2, admin):
            h.close()
        rc = t.stop()
        self.assertEqual(rc, 0, t.logtext()[-3000:])
        type(self).tgt = t = nt.Target(mask="[0,1]", extra=self.be.target_args())
        t.rpc("bdev_daos_create", "daosdev0", self.pool, self.cont, 64, BS)
        self.assertEqual(t.rpc("bdev_get_bdevs", "-b", "daosdev0")[0]["uuid"], uuid)
        t.rpc("nvmf_create_transport", "-t", "TCP")
        t.rpc("nvmf_create_subsystem", NQN, "-a")
        t.rpc("nvmf_subsystem_add_ns", NQN, "daosdev0")
        t.rpc("nvmf_subsystem_add_listener", NQN, "-t", "tcp", "-a", "127.0.0.1", "-s", self.port)
        admin, cntlid = nt.admin_session(self.port, NQN)
        q = nt.io_session(self.port, NQN, cntlid)
        cpl, back = q.read(1, 20, 1, BS)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(back, data[:BS])
        # The namespace identity the host sees is derived from the bdev UUID.
        cpl, desc = admin.identify(3, nsid=1)
        self.assertTrue(cpl.ok, cpl)
        self.assertIn(bytes.fromhex(uuid.replace("-", "")), desc)
        q.close()
        admin.close()

    def test_03_sigkill_under_writes(self):
        """SIGKILL of the target while writes are in flight, a restart from the saved configuration: the
        same bdev UUID, and every write the host saw acknowledged reads back."""
        t = self.tgt
        t.stop()
        type(self).tgt = t = nt.Target(mask="[0,1]", extra=self.be.target_args())
        cont = self.be.create_cont("kill-cont")
        t.rpc("nvmf_create_transport", "-t", "TCP")
        t.rpc("bdev_daos_create", "killdev", self.pool, cont, 16, BS)
        t.rpc("nvmf_create_subsystem", NQN, "-a", "-s", "SPDK00000000000001")
        t.rpc("nvmf_subsystem_add_ns", NQN, "killdev")
        t.rpc("nvmf_subsystem_add_listener", NQN, "-t", "tcp", "-a", "127.0.0.1", "-s", self.port)
        uuid = t.rpc("bdev_get_bdevs", "-b", "killdev")[0]["uuid"]
        cfg = os.path.join(t.dir, "config.json")
        with open(cfg, "w") as f:
            json.dump(t.rpc("save_config"), f)
        admin, cntlid = nt.admin_session(self.port, NQN)
        qs = [nt.io_session(self.port, NQN, cntlid, qid=i) for i in (1, 2)]
        acked = {}
        stop = threading.Event()

        def writer(q, first):
            lba, gen = first, 0
            while not stop.is_set():
                data = struct.pack("<QQ", lba, gen) + os.urandom(BS - 16)
                try:
                    cpl = q.write_incapsule(1, lba, data, BS)
                except (OSError, RuntimeError, AssertionError):
                    return
                if not cpl.ok:
                    return
                acked[lba] = data
                lba = first + (lba - first + 1) % 2048
                gen += 1

        ths = [threading.Thread(target=writer, args=(q, i * 2048), daemon=True) for i, q in enumerate(qs)]
        for th in ths:
            th.start()
        deadline = time.time() + 60
        while len(acked) < 200 and time.time() < deadline:
            time.sleep(0.05)
        t.proc.kill()  # SIGKILL, with both writers in the middle of a write
        t.proc.wait()
        stop.set()
        for th in ths:
            th.join(10)
        self.assertGreaterEqual(len(acked), 200, "the writers made too little progress before the kill")
        for h in qs + [admin]:
            try:
                h.close()
            except OSError:
                pass
        t.log.close()
        type(self).tgt = t = nt.Target(mask="[0,1]", extra=self.be.target_args() + ("-c", cfg))
        self.assertEqual(t.rpc("bdev_get_bdevs", "-b", "killdev")[0]["uuid"], uuid)
        admin, cntlid = nt.admin_session(self.port, NQN)
        q = nt.io_session(self.port, NQN, cntlid)
        lost = []
        for lba, data in sorted(acked.items()):
            cpl, back = q.read(1, lba, 1, BS)
            self.assertTrue(cpl.ok, cpl)
            if back != data:
                lost.append(lba)
        self.assertEqual(lost, [], "%d of %d acknowledged writes lost" % (len(lost), len(acked)))
        print("%d acknowledged writes checked after SIGKILL and restart" % len(acked))
        q.close()
        admin.close()


if __name__ == "__main__":
    why = be.backend().skip_reason()
    if why:
        print("SKIPPED (%s engine): %s" % (be.engine_name(), why))
        sys.exit(be.SKIP)
    unittest.main(verbosity=2)
