"""Two gateways, one DFS file (issue 14): two daosblk-tgt processes export the same file of one container under
the same NQN and serial, each on its own listener with a disjoint controller ID range and ANA reporting.

Over raw NVMe/TCP on loopback, a host must see one namespace with two paths: the same NSID, NGUID, UUID, EUI64,
size and block size through both, CMIC saying multi-controller (and ANA), distinct cntlids from each range. And
what one gateway writes, the other reads back at once, both ways, including a block the reader had already read
(nothing either gateway keeps may serve stale data): on the local engine both processes go through the kernel's
page cache of the same file; on a real DAOS, DAOS gives that coherence. Then gateway B is restarted from its
saved configuration and still serves the same identity and the data A wrote.

The engine is the local one unless DBK_DFS_ENGINE=daos (then a live DAOS through backend.py, or exit 77 with the
reason when none answers). Both daemons must exit 0 on SIGINT (under ASan: no leak).
"""

import json
import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "nvmf"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nvmetcp as nt  # noqa: E402
import backend as be  # noqa: E402

NQN = "nqn.2016-06.io.spdk:gateways"
SN = "DBKGW000000000000001"
BS = 4096
EUI64 = "0011223344556677"


def gateway(tgt, pool, cont, port, lo, hi):
    tgt.rpc("nvmf_create_transport", "-t", "TCP")
    tgt.rpc("bdev_daos_create", "gw0", pool, cont, 16, BS)
    tgt.rpc("nvmf_create_subsystem", NQN, "-a", "-s", SN, "-d", "daosblk gateway", "-r", "-i", lo, "-I", hi)
    tgt.rpc("nvmf_subsystem_add_ns", NQN, "gw0", "-e", EUI64)
    tgt.rpc("nvmf_subsystem_add_listener", NQN, "-t", "tcp", "-a", "127.0.0.1", "-s", port)


def session(port):
    h, cntlid = nt.admin_session(port, NQN)
    return h, nt.io_session(port, NQN, cntlid), cntlid


def identity(h):
    cpl, c = h.identify(1)
    assert cpl.ok, cpl
    cpl, n = h.identify(0, nsid=1)
    assert cpl.ok, cpl
    cpl, d = h.identify(3, nsid=1)
    assert cpl.ok, cpl
    cpl, act = h.identify(2)
    assert cpl.ok, cpl
    return {
        "sn": c[4:24], "mn": c[24:64], "subnqn": c[768:1024].rstrip(b"\0"), "cmic": c[76],
        "cntlid": struct.unpack_from("<H", c, 78)[0], "nsze": struct.unpack_from("<Q", n, 0)[0],
        "lbaf0": n[128:132], "nguid": n[104:120], "eui64": n[120:128], "nmic": n[30],
        "anagrpid": struct.unpack_from("<I", n, 92)[0], "descs": d[:64], "active": act[:16],
    }


class TwoGateways(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.be = be.backend().setup()
        cls.cont = cls.be.create_cont("gw-cont")
        cls.port_a, cls.port_b = nt.free_port(), nt.free_port()
        cls.a = cls.b = None
        try:
            cls.a = nt.Target(extra=cls.be.target_args())
            cls.b = nt.Target(extra=cls.be.target_args())
            gateway(cls.a, cls.be.pool, cls.cont, cls.port_a, 1, 99)
            gateway(cls.b, cls.be.pool, cls.cont, cls.port_b, 100, 199)
        except BaseException:
            # tearDownClass does not run when setUpClass fails: stop what started, so no daemon is left behind
            for t in (cls.a, cls.b):
                if t is not None:
                    print(t.logtext()[-4000:], file=sys.stderr)
                    t.stop()
            cls.be.teardown()
            raise

    @classmethod
    def tearDownClass(cls):
        rcs = []
        for t in (cls.a, cls.b):
            rc = t.stop()
            if rc != 0:
                print(t.logtext()[-4000:], file=sys.stderr)
            rcs.append(rc)
        cls.be.teardown()
        assert rcs == [0, 0], "daosblk-tgt exit codes %r" % rcs

    def test_1_one_namespace_two_paths(self):
        ha, ioa, ca = session(self.port_a)
        hb, iob, cb = session(self.port_b)
        ia, ib = identity(ha), identity(hb)
        self.assertTrue(1 <= ca <= 99 and 100 <= cb <= 199, (ca, cb))
        self.assertEqual((ia["cntlid"], ib["cntlid"]), (ca, cb))
        for k in ("sn", "mn", "subnqn", "nsze", "lbaf0", "nguid", "eui64", "descs", "active", "anagrpid", "nmic"):
            self.assertEqual(ia[k], ib[k], "%s differs between the gateways" % k)
        self.assertEqual(ia["cmic"], 0x0A, "multi-controller and ANA")
        self.assertEqual(ia["sn"].decode().strip(), SN)
        self.assertNotEqual(ia["nguid"], b"\0" * 16)
        self.assertEqual(ia["eui64"], bytes.fromhex(EUI64))
        self.assertEqual(ia["nmic"] & 1, 1, "the namespace may be shared")
        # the descriptors: EUI64, NGUID and UUID, byte for byte the same through both
        types = []
        off = 0
        while off < 64 and ia["descs"][off]:
            types.append(ia["descs"][off])
            off += 4 + ia["descs"][off + 1]
        self.assertEqual(types, [1, 2, 3])
        nsa = self.a.rpc("nvmf_get_subsystems", NQN)[0]["namespaces"][0]
        nsb = self.b.rpc("nvmf_get_subsystems", NQN)[0]["namespaces"][0]
        self.assertEqual((nsa["nsid"], nsa["nguid"], nsa["uuid"]), (nsb["nsid"], nsb["nguid"], nsb["uuid"]))
        for x in (ioa, ha, iob, hb):
            x.close()

    def test_2_write_one_read_other(self):
        ha, ioa, _ = session(self.port_a)
        hb, iob, _ = session(self.port_b)
        blocks = range(0, 4096, 97)     # spread over the 16 MiB file
        # B reads first, so whatever it could cache holds the old contents
        for lba in blocks:
            self.assertTrue(iob.read(1, lba, 1, BS)[0].ok)
        for rnd, (wr, rd) in enumerate(((ioa, iob), (iob, ioa), (ioa, iob))):
            data = {lba: os.urandom(BS) for lba in blocks}
            for lba, d in data.items():
                cpl = wr.write_incapsule(1, lba, d, BS)
                self.assertTrue(cpl.ok, cpl)
            for lba, d in data.items():
                cpl, got = rd.read(1, lba, 1, BS)
                self.assertTrue(cpl.ok, cpl)
                self.assertEqual(got, d, "round %d: block %d read through the other gateway is stale" % (rnd, lba))
        # the same block written alternately and read at once through the other
        for i in range(32):
            wr, rd = (ioa, iob) if i % 2 == 0 else (iob, ioa)
            d = struct.pack("<I", i) * (BS // 4)
            self.assertTrue(wr.write_incapsule(1, 7, d, BS).ok)
            cpl, got = rd.read(1, 7, 1, BS)
            self.assertTrue(cpl.ok)
            self.assertEqual(got, d, "write %d of block 7 not seen through the other gateway" % i)
        for io in (ioa, iob):
            self.assertTrue(io.command(nt.sqe(0x00, io.next_cid(), nsid=1))[0].ok)   # flush
        type(self).last = d
        for x in (ioa, ha, iob, hb):
            x.close()

    def test_3_restart_b_from_config(self):
        cfg = self.b.rpc("save_config")
        path = os.path.join(self.b.dir, "b.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        hb, iob, _ = session(self.port_b)
        before = identity(hb)
        iob.close()
        hb.close()
        self.assertEqual(self.b.stop(), 0)
        TwoGateways.b = nt.Target(extra=self.be.target_args() + ("-c", path))
        hb, iob, cb = session(self.port_b)
        after = identity(hb)
        self.assertTrue(100 <= cb <= 199, cb)
        for k in ("sn", "subnqn", "nsze", "nguid", "eui64", "descs", "cmic"):
            self.assertEqual(before[k], after[k], k)
        cpl, got = iob.read(1, 7, 1, BS)
        self.assertTrue(cpl.ok)
        self.assertEqual(got, getattr(self, "last", got))
        ha, ioa, _ = session(self.port_a)
        d = os.urandom(BS)
        self.assertTrue(ioa.write_incapsule(1, 9, d, BS).ok)
        self.assertEqual(iob.read(1, 9, 1, BS)[1], d)
        for x in (ioa, ha, iob, hb):
            x.close()


if __name__ == "__main__":
    why = be.backend().skip_reason()
    if why:
        print("SKIPPED (%s engine): %s" % (be.engine_name(), why))
        sys.exit(be.SKIP)
    unittest.main(verbosity=2)
