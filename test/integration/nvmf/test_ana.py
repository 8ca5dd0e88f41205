"""ANA (Asymmetric Namespace Access) and discovery referrals, over raw NVMe/TCP against the real daemon.

One target, one subsystem created with -r (ANA reporting), two malloc namespaces in ANA groups 1 and 2, and two
listeners on loopback. Each case checks what a multipath host relies on: the Identify fields (CMIC, OAES, ANATT,
ANACAP, ANAGRPMAX, NANAGRPID, MNAN, the namespace's ANAGRPID), the ANA log page (full, RGO, offsets and short
lengths), nvmf_subsystem_listener_set_ana_state with the AEN it raises on that listener's controllers only, the
path status codes I/O gets on an inaccessible / transitioning / lost group (and that no data comes with them),
the RPC errors, nvmf_subsystem_get_listeners, referrals in the discovery log, and that the ANA states and the
referrals come back after save_config and a restart from it. The daemon must exit 0 on SIGINT (ASan: no leak).
"""

import json
import os
import struct
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nvmetcp as nt  # noqa: E402

NQN = "nqn.2016-06.io.spdk:ana"
PLAIN = "nqn.2016-06.io.spdk:plain"
BS = 512

OPT, NONOPT, INACC, PLOSS, CHANGE = 1, 2, 3, 4, 0xF


def get_log(h, lid, nbytes, offset=0, lsp=0, rae=False, nsid=0xFFFFFFFF):
    cdw10 = lid | (lsp << 8) | ((1 << 15) if rae else 0) | ((nbytes // 4 - 1) << 16)
    cmd = nt.sqe(0x02, h.next_cid(), nsid=nsid, cdw10=cdw10, cdw12=offset & 0xFFFFFFFF, cdw13=offset >> 32,
                 sgl_len=nbytes)
    return h.command(cmd, read_len=nbytes)


def set_features(h, fid, cdw11):
    return h.command(nt.sqe(0x09, h.next_cid(), cdw10=fid, cdw11=cdw11))[0]


def parse_ana_log(data, rgo=False):
    chgcnt, ngrps = struct.unpack_from("<QH", data, 0)
    off, groups = 16, {}
    for _ in range(ngrps):
        grpid, nnsids, gchg, state = struct.unpack_from("<IIQB", data, off)
        off += 32
        nsids = list(struct.unpack_from("<%dI" % nnsids, data, off)) if nnsids else []
        off += 4 * nnsids
        groups[grpid] = (state & 0xF, nsids, gchg)
    return chgcnt, groups, off


class Ana(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port_a = nt.free_port()
        cls.port_b = nt.free_port()
        cls.tgt = nt.Target()
        t = cls.tgt
        t.rpc("nvmf_create_transport", "-t", "TCP")
        t.rpc("bdev_malloc_create", 8, BS, "-b", "M0")
        t.rpc("bdev_malloc_create", 8, BS, "-b", "M1")
        t.rpc("bdev_malloc_create", 8, BS, "-b", "M2")
        t.rpc("nvmf_create_subsystem", NQN, "-a", "-s", "DBKANA0001", "-r", "-m", "8", "-i", "100", "-I", "199")
        t.rpc("nvmf_subsystem_add_ns", NQN, "M0")                   # nsid 1, group 1 (= nsid)
        t.rpc("nvmf_subsystem_add_ns", NQN, "M1", "-n", "3", "-a", "2")  # nsid 3, group 2
        for p in (cls.port_a, cls.port_b):
            t.rpc("nvmf_subsystem_add_listener", NQN, "-t", "tcp", "-a", "127.0.0.1", "-s", p)
        t.rpc("nvmf_create_subsystem", PLAIN, "-a")
        t.rpc("nvmf_subsystem_add_ns", PLAIN, "M2")
        t.rpc("nvmf_subsystem_add_listener", PLAIN, "-t", "tcp", "-a", "127.0.0.1", "-s", cls.port_a)
        t.rpc("nvmf_subsystem_add_listener", "discovery", "-t", "tcp", "-a", "127.0.0.1", "-s", cls.port_a)

    @classmethod
    def tearDownClass(cls):
        rc = cls.tgt.stop()
        if rc != 0:
            print(cls.tgt.logtext()[-4000:], file=sys.stderr)
        assert rc == 0, "daosblk-tgt exited with %d after SIGINT" % rc

    def setUp(self):
        for p in (self.port_a, self.port_b):
            self.set_state(p, "optimized")

    def tearDown(self):
        self.assertTrue(self.tgt.alive(), "daemon died:\n" + self.tgt.logtext()[-3000:])

    def set_state(self, port, state, grp=None):
        args = ["nvmf_subsystem_listener_set_ana_state", NQN, "-n", state, "-t", "tcp", "-a", "127.0.0.1",
                "-s", port]
        if grp is not None:
            args += ["-g", grp]
        return self.tgt.rpc(*args)

    def session(self, port, nqn=NQN):
        h, cntlid = nt.admin_session(port, nqn)
        io = nt.io_session(port, nqn, cntlid)
        return h, io, cntlid

    # ------------------------------------------------------------ Identify

    def test_identify_fields(self):
        h, io, cntlid = self.session(self.port_a)
        cpl, d = h.identify(1)
        self.assertTrue(cpl.ok, cpl)
        self.assertTrue(100 <= cntlid <= 199, cntlid)
        self.assertEqual(struct.unpack_from("<H", d, 78)[0], cntlid)
        self.assertEqual(d[76], 0x0A, "CMIC: multi-controller and ANA reporting")
        self.assertTrue(struct.unpack_from("<I", d, 92)[0] & (1 << 11), "OAES: ANA change notices")
        self.assertEqual(d[343], 10, "ANATT")
        self.assertEqual(d[344] & 0x07, 0x07, "ANACAP: optimized, non-optimized, inaccessible")
        self.assertEqual(struct.unpack_from("<I", d, 348)[0], 8, "ANAGRPMAX = max_namespaces")
        self.assertEqual(struct.unpack_from("<I", d, 352)[0], 8, "NANAGRPID")
        self.assertEqual(struct.unpack_from("<I", d, 540)[0], 8, "MNAN")
        cpl, n1 = h.identify(0, nsid=1)
        self.assertTrue(cpl.ok)
        self.assertEqual(struct.unpack_from("<I", n1, 92)[0], 1, "ANAGRPID of nsid 1")
        cpl, n3 = h.identify(0, nsid=3)
        self.assertEqual(struct.unpack_from("<I", n3, 92)[0], 2, "ANAGRPID of nsid 3")
        # the supported log pages list the ANA log
        cpl, sp = get_log(h, 0x00, 1024)
        self.assertTrue(cpl.ok)
        self.assertEqual(struct.unpack_from("<I", sp, 4 * 0x0C)[0] & 1, 1)
        io.close()
        h.close()

    def test_plain_subsystem_has_no_ana(self):
        h, io, _ = self.session(self.port_a, PLAIN)
        cpl, d = h.identify(1)
        self.assertEqual(d[76] & 0x08, 0, "no ANA bit without -r")
        self.assertEqual(struct.unpack_from("<I", d, 92)[0] & (1 << 11), 0)
        cpl, _ = get_log(h, 0x0C, 4096)
        self.assertEqual((cpl.sct, cpl.sc), (0, 0x02), "no ANA log page without -r")
        with self.assertRaises(RuntimeError) as cm:
            self.tgt.rpc("nvmf_subsystem_listener_set_ana_state", PLAIN, "-n", "inaccessible", "-t", "tcp",
                         "-a", "127.0.0.1", "-s", self.port_a)
        self.assertIn("ANA reporting is disabled", str(cm.exception))
        self.assertTrue(io.write_incapsule(1, 0, b"\x11" * BS, BS).ok)
        io.close()
        h.close()

    # -------------------------------------------------------------- log page

    def test_log_page_full_rgo_offsets(self):
        self.set_state(self.port_a, "non_optimized", 2)
        h, io, _ = self.session(self.port_a)
        cpl, d = get_log(h, 0x0C, 4096)
        self.assertTrue(cpl.ok, cpl)
        chg, groups, size = parse_ana_log(d)
        self.assertEqual(sorted(groups), [1, 2])
        self.assertEqual(groups[1][:2], (OPT, [1]))
        self.assertEqual(groups[2][:2], (NONOPT, [3]))
        self.assertEqual(size, 16 + 2 * 32 + 2 * 4)
        self.assertTrue(all(b == 0 for b in d[size:]), "zero past the end of the log")
        self.assertGreaterEqual(chg, groups[2][2])
        # RGO (LSP bit 0): the descriptors without NSIDs
        cpl, r = get_log(h, 0x0C, 4096, lsp=1)
        self.assertTrue(cpl.ok)
        _, rg, rsize = parse_ana_log(r)
        self.assertEqual(rsize, 16 + 2 * 32)
        self.assertEqual({g: v[:2] for g, v in rg.items()}, {1: (OPT, []), 2: (NONOPT, [])})
        # offsets and short lengths: the same bytes, piece by piece
        pieces = b""
        for off in range(0, size, 12):
            cpl, p = get_log(h, 0x0C, 12, offset=off)
            self.assertTrue(cpl.ok, cpl)
            pieces += p
        self.assertEqual(pieces[:size], d[:size])
        cpl, p = get_log(h, 0x0C, 8, offset=size + 64)
        self.assertTrue(cpl.ok)
        self.assertEqual(p, b"\0" * 8, "an offset past the end reads zeroes")
        cpl, _ = get_log(h, 0x0C, 8, offset=2)
        self.assertEqual((cpl.sct, cpl.sc), (0, 0x02), "an offset that is not dword aligned is refused")
        # the other listener still reports optimized for group 2
        h2, io2, _ = self.session(self.port_b)
        _, g2, _ = parse_ana_log(get_log(h2, 0x0C, 4096)[1])
        self.assertEqual(g2[2][0], OPT)
        for x in (io, h, io2, h2):
            x.close()

    # ---------------------------------------------------------------- events

    def test_ana_change_event(self):
        ha, ioa, _ = self.session(self.port_a)
        hb, iob, _ = self.session(self.port_b)
        for h in (ha, hb):
            self.assertTrue(set_features(h, 0x0B, 1 << 11).ok)
            h.submit(nt.sqe(0x0C, h.next_cid()))
        self.set_state(self.port_a, "inaccessible")
        ha.sock.settimeout(5)
        cpl = ha.wait_cpl()
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(cpl.cdw0 & 0x7, 2, "AER type: notice")
        self.assertEqual((cpl.cdw0 >> 8) & 0xFF, 0x03, "AER info: ANA change")
        self.assertEqual((cpl.cdw0 >> 16) & 0xFF, 0x0C, "AER log page: ANA")
        _, g, _ = parse_ana_log(get_log(ha, 0x0C, 4096)[1])
        self.assertEqual((g[1][0], g[2][0]), (INACC, INACC))
        # the controller on the other listener got no event
        hb.sock.settimeout(0.5)
        with self.assertRaises(OSError):
            hb.wait_cpl()
        # setting the same state again raises nothing either
        ha.submit(nt.sqe(0x0C, ha.next_cid()))
        self.set_state(self.port_a, "inaccessible")
        ha.sock.settimeout(0.5)
        with self.assertRaises(OSError):
            ha.wait_cpl()
        for x in (ioa, ha, iob, hb):
            x.close()

    def test_no_event_without_aec_bit(self):
        h, io, _ = self.session(self.port_a)
        h.submit(nt.sqe(0x0C, h.next_cid()))
        self.set_state(self.port_a, "non_optimized")
        h.sock.settimeout(0.5)
        with self.assertRaises(OSError):
            h.wait_cpl()
        io.close()
        h.close()

    # ------------------------------------------------------- I/O status codes

    def test_io_status_per_state(self):
        h, io, _ = self.session(self.port_a)
        self.assertTrue(io.write_incapsule(1, 5, b"\xA5" * BS, BS).ok)
        for state, sc in (("inaccessible", 0x02), ("change", 0x03), ("persistent_loss", 0x01)):
            self.set_state(self.port_a, state, 1)
            cpl, data = io.read(1, 5, 1, BS)
            self.assertEqual((cpl.sct, cpl.sc), (3, sc), "read on %s" % state)
            self.assertEqual(data, b"\0" * BS, "no data on %s" % state)
            cpl = io.write_incapsule(1, 5, b"\xEE" * BS, BS)
            self.assertEqual((cpl.sct, cpl.sc), (3, sc), "write on %s" % state)
            cpl, _ = io.command(nt.sqe(0x00, io.next_cid(), nsid=1))   # flush
            self.assertEqual((cpl.sct, cpl.sc), (3, sc), "flush on %s" % state)
            self.assertFalse(cpl.dnr, "a path error must let the host retry elsewhere")
            # group 2 on the same path is untouched
            self.assertTrue(io.read(3, 0, 1, BS)[0].ok)
        # non-optimized serves I/O; the refused write never landed
        self.set_state(self.port_a, "non_optimized", 1)
        cpl, data = io.read(1, 5, 1, BS)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(data, b"\xA5" * BS)
        # the other path was never affected
        hb, iob, _ = self.session(self.port_b)
        self.assertTrue(iob.read(1, 5, 1, BS)[0].ok)
        # an inactive NSID still gets Invalid Namespace, not a path status
        self.set_state(self.port_a, "inaccessible")
        cpl, _ = io.read(2, 0, 1, BS)
        self.assertEqual((cpl.sct, cpl.sc), (0, 0x0B))
        for x in (io, h, iob, hb):
            x.close()

    # -------------------------------------------------------------------- RPC

    def test_rpc_errors_and_listeners(self):
        bad = [
            (["-n", "sideways"], "invalid ana_state"),
            (["-n", "optimized", "-g", "9"], "out of range"),
        ]
        for extra, msg in bad:
            with self.assertRaises(RuntimeError) as cm:
                self.tgt.rpc("nvmf_subsystem_listener_set_ana_state", NQN, "-t", "tcp", "-a", "127.0.0.1",
                             "-s", self.port_a, *extra)
            self.assertIn(msg, str(cm.exception))
        with self.assertRaises(RuntimeError) as cm:
            self.tgt.rpc("nvmf_subsystem_listener_set_ana_state", NQN, "-n", "optimized", "-t", "tcp", "-a",
                         "127.0.0.1", "-s", nt.free_port())
        self.assertIn("no listener", str(cm.exception))
        with self.assertRaises(RuntimeError) as cm:
            self.tgt.rpc("nvmf_subsystem_add_ns", NQN, "M2", "-a", "9")
        self.assertIn("anagrpid 9 out of range", str(cm.exception))
        self.set_state(self.port_b, "inaccessible", 2)
        ls = self.tgt.rpc("nvmf_subsystem_get_listeners", NQN)
        by_port = {x["address"]["trsvcid"]: x for x in ls}
        b = {s["ana_group"]: s["ana_state"] for s in by_port[str(self.port_b)]["ana_states"]}
        self.assertEqual(len(b), 8)
        self.assertEqual((b[1], b[2], b[8]), ("optimized", "inaccessible", "optimized"))
        sub = self.tgt.rpc("nvmf_get_subsystems", NQN)[0]
        self.assertTrue(sub["ana_reporting"])
        self.assertEqual({n["nsid"]: n["anagrpid"] for n in sub["namespaces"]}, {1: 1, 3: 2})

    # -------------------------------------------------------------- referrals

    def test_referrals_in_discovery_log(self):
        ref_port = nt.free_port()
        self.tgt.rpc("nvmf_discovery_add_referral", "-t", "tcp", "-a", "127.0.0.2", "-s", ref_port)
        self.tgt.rpc("nvmf_discovery_add_referral", "-t", "tcp", "-a", "127.0.0.2", "-s", ref_port)  # no duplicate
        refs = self.tgt.rpc("nvmf_discovery_get_referrals")
        self.assertEqual(len(refs), 1, refs)
        self.assertEqual(refs[0]["address"]["traddr"], "127.0.0.2")
        self.assertEqual(refs[0]["address"]["trsvcid"], str(ref_port))
        self.assertEqual(refs[0]["subnqn"], nt.DISC_NQN)
        h, _ = nt.admin_session(self.port_a, nt.DISC_NQN)
        cpl, log = get_log(h, 0x70, 8192, nsid=0)
        self.assertTrue(cpl.ok)
        numrec = struct.unpack_from("<Q", log, 8)[0]
        ents = [log[1024 * (i + 1):1024 * (i + 2)] for i in range(numrec)]
        refe = [e for e in ents if e[2] == 1]
        self.assertEqual(len(refe), 1, "one referral entry (subtype 1)")
        e = refe[0]
        self.assertEqual(e[0], 3)
        self.assertEqual(e[32:64].decode().strip(), str(ref_port))
        self.assertEqual(e[512:768].decode().strip(), "127.0.0.2")
        self.assertEqual(e[256:512].rstrip(b"\0").decode(), nt.DISC_NQN)
        h.close()
        with self.assertRaises(RuntimeError):
            self.tgt.rpc("nvmf_discovery_add_referral", "-t", "tcp", "-a", "127.0.0.2")  # no port
        with self.assertRaises(RuntimeError) as cm:
            self.tgt.rpc("nvmf_discovery_remove_referral", "-t", "tcp", "-a", "127.0.0.3", "-s", ref_port)
        self.assertIn("no discovery referral", str(cm.exception))
        self.tgt.rpc("nvmf_discovery_remove_referral", "-t", "tcp", "-a", "127.0.0.2", "-s", ref_port)
        self.assertEqual(self.tgt.rpc("nvmf_discovery_get_referrals"), [])

    # ------------------------------------------------------------ save / load

    def test_zz_save_and_restart(self):
        ref_port = nt.free_port()
        self.tgt.rpc("nvmf_discovery_add_referral", "-t", "tcp", "-a", "127.0.0.9", "-s", ref_port)
        self.set_state(self.port_a, "inaccessible", 2)
        self.set_state(self.port_b, "non_optimized")
        cfg = self.tgt.rpc("save_config")
        path = os.path.join(self.tgt.dir, "saved.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        before = {str(p): self.tgt.rpc("nvmf_subsystem_get_listeners", NQN) for p in (0,)}
        rc = self.tgt.stop()
        self.assertEqual(rc, 0)
        Ana.tgt = nt.Target(extra=("-c", path))
        after = {str(p): self.tgt.rpc("nvmf_subsystem_get_listeners", NQN) for p in (0,)}
        self.assertEqual(before, after)
        refs = self.tgt.rpc("nvmf_discovery_get_referrals")
        self.assertEqual([(r["address"]["traddr"], r["address"]["trsvcid"]) for r in refs],
                         [("127.0.0.9", str(ref_port))])
        sub = self.tgt.rpc("nvmf_get_subsystems", NQN)[0]
        self.assertTrue(sub["ana_reporting"])
        self.assertEqual({n["nsid"]: n["anagrpid"] for n in sub["namespaces"]}, {1: 1, 3: 2})
        self.assertEqual((sub["min_cntlid"], sub["max_cntlid"]), (100, 199))
        # load_config (the client replaying the file into a running target) gives the same
        self.assertEqual(self.tgt.stop(), 0)
        Ana.tgt = nt.Target()
        with open(path) as f:
            p = subprocess.run([self.tgt.rpc_bin, "-s", self.tgt.sock, "load_config"], stdin=f,
                               capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(after, {"0": self.tgt.rpc("nvmf_subsystem_get_listeners", NQN)})
        self.assertEqual(len(self.tgt.rpc("nvmf_discovery_get_referrals")), 1)
        # and the controller side agrees
        h, io, _ = self.session(self.port_a)
        _, g, _ = parse_ana_log(get_log(h, 0x0C, 4096)[1])
        self.assertEqual((g[1][0], g[2][0]), (OPT, INACC))
        self.assertEqual((io.read(3, 0, 1, BS)[0].sct, io.read(3, 0, 1, BS)[0].sc), (3, 2))
        io.close()
        h.close()
        self.tgt.rpc("nvmf_discovery_remove_referral", "-t", "tcp", "-a", "127.0.0.9", "-s", ref_port)


if __name__ == "__main__":
    unittest.main(verbosity=2)
