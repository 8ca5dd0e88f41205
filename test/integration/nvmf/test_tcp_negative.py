"""Protocol-negative tests against the real daosblk-tgt from a raw socket.

Every malformed PDU or illegal command gets the right NVMe status or a
C2HTermReq and a closed connection, and after each case the daemon still
serves a well-behaved host. At the end the daemon must exit 0 on SIGINT
(under ASan: with nothing leaked).
"""

import os
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nvmetcp as nt  # noqa: E402

NQN = "nqn.2016-06.io.spdk:cnode1"
LOCKED_NQN = "nqn.2016-06.io.spdk:locked"
BS = 512
NUM_BLOCKS = 16 * 1024 * 1024 // BS


class TcpNegative(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = nt.free_port()
        cls.tgt = nt.Target()
        cls.tgt.export_malloc(NQN, cls.port, size_mib=16, block=BS, transport_args=("-c", "8192"))
        # A subsystem that allows no host at all.
        cls.tgt.rpc("bdev_malloc_create", 8, 512, "-b", "Malloc1")
        cls.tgt.rpc("nvmf_create_subsystem", LOCKED_NQN, "-s", "SPDK00000000000002")
        cls.tgt.rpc("nvmf_subsystem_add_ns", LOCKED_NQN, "Malloc1")
        cls.tgt.rpc("nvmf_subsystem_add_listener", LOCKED_NQN, "-t", "tcp", "-a", "127.0.0.1", "-s", cls.port)

    @classmethod
    def tearDownClass(cls):
        rc = cls.tgt.stop()
        if rc != 0:
            print(cls.tgt.logtext()[-4000:], file=sys.stderr)
        assert rc == 0, "daosblk-tgt exited with %d after SIGINT" % rc

    def tearDown(self):
        # After every case: the daemon is alive and serves a good host end to end.
        self.assertTrue(self.tgt.alive(), "daemon died:\n" + self.tgt.logtext()[-3000:])
        h, cntlid = nt.admin_session(self.port, NQN)
        cpl, data = h.identify(1)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(struct.unpack_from("<H", data, 78)[0], cntlid)
        io = nt.io_session(self.port, NQN, cntlid)
        pattern = bytes((i * 7) & 0xFF for i in range(4096))
        self.assertTrue(io.write_incapsule(1, 100, pattern, BS).ok)
        cpl, back = io.read(1, 100, 8, BS)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(back, pattern)
        io.close()
        h.close()

    def expect_term(self, h, fes=None):
        term = h.expect_close()
        self.assertIsNotNone(term, "connection closed without a C2HTermReq")
        if fes is not None:
            self.assertEqual(term.fes, fes, "FES %#x, want %#x" % (term.fes, fes))
        return term

    # ---------------------------------------------------------------- ICReq
    def test_icreq_wrong_hlen(self):
        h = nt.Host(self.port)
        h.icreq(hlen=64)
        self.expect_term(h, 0x01)

    def test_icreq_wrong_plen(self):
        h = nt.Host(self.port)
        h.icreq(plen=200)
        h.send(b"\0" * 72)
        self.expect_term(h, 0x01)

    def test_icreq_bad_pfv(self):
        h = nt.Host(self.port)
        h.icreq(pfv=1)
        term = h.expect_close()
        # Unsupported parameter (or invalid field); either way: terminated, closed.
        self.assertIsNotNone(term)
        self.assertIn(term.fes, (0x01, 0x06))

    def test_capsule_before_icreq(self):
        h = nt.Host(self.port)
        h.submit(nt.sqe(0x06, 1, cdw10=1, sgl_len=4096))
        self.expect_term(h, 0x02)

    def test_second_icreq(self):
        h = nt.Host(self.port)
        h.connect_ic()
        h.icreq()
        self.expect_term(h, 0x02)

    def test_unknown_pdu_type(self):
        h = nt.Host(self.port)
        h.connect_ic()
        h.send(struct.pack("<BBBBI", 0x0A, 0, 24, 0, 24) + b"\0" * 16)
        self.expect_term(h)

    def test_garbage_bytes(self):
        h = nt.Host(self.port)
        h.send(os.urandom(4096))
        # The target must close the connection (with or without a C2HTermReq):
        # expect_close raises TimeoutError if it stays open.
        h.expect_close()

    # ---------------------------------------------------------- capsules
    def test_capsule_plen_smaller_than_hlen(self):
        h = nt.Host(self.port)
        h.connect_ic()
        h.send(h.pdu(nt.CAPSULE_CMD, nt.sqe(0x06, 1, cdw10=1, sgl_len=4096), plen=40))
        self.expect_term(h, 0x01)

    def test_capsule_wrong_hlen(self):
        h = nt.Host(self.port)
        h.connect_ic()
        h.send(h.pdu(nt.CAPSULE_CMD, nt.sqe(0x06, 1, cdw10=1, sgl_len=4096), hlen=64))
        self.expect_term(h, 0x01)

    def test_bad_header_digest(self):
        h = nt.Host(self.port)
        h.connect_ic(hdgst=True)
        h.send(h.pdu(nt.CAPSULE_CMD, nt.sqe(0x06, 1, cdw10=1, sgl_len=4096), bad_hdgst=True))
        self.expect_term(h, 0x03)

    def test_bad_data_digest(self):
        h, cntlid = nt.admin_session(self.port, NQN)
        io = nt.Host(self.port)
        io.connect_ic(hdgst=True, ddgst=True)
        self.assertTrue(io.fabric_connect(NQN, "nqn.2014-08.org.nvmexpress:uuid:0f0e0d0c-0b0a-0908-0706-050403020100",
                                          qid=1, sqsize=15, cntlid=cntlid, kato=0).ok)
        data = b"\xAB" * 512
        cmd = nt.sqe(0x01, 9, nsid=1, cdw10=5, cdw12=0, sgl_len=512, incapsule=True)
        io.send(io.pdu(nt.CAPSULE_CMD, cmd, data, bad_ddgst=True))
        # A data digest error is a transport error: a failed command or a terminated connection.
        try:
            cpl = io.wait_cpl()
            self.assertFalse(cpl.ok, "write with a bad data digest succeeded")
        except (nt.TermReq, nt.Closed):
            pass
        io.close()
        h.close()

    def test_incapsule_data_beyond_sgl_length(self):
        h = nt.Host(self.port)
        h.connect_ic()
        cmd = nt.sqe(0x01, 1, nsid=1, cdw12=0, sgl_len=512, incapsule=True)
        h.send(h.pdu(nt.CAPSULE_CMD, cmd, b"\0" * 1024))
        term = h.expect_close()
        self.assertIsNotNone(term)

    def test_incapsule_data_larger_than_icdsz(self):
        h = nt.Host(self.port)
        h.connect_ic()
        cmd = nt.sqe(0x01, 1, nsid=1, cdw12=63, sgl_len=32768, incapsule=True)
        h.send(h.pdu(nt.CAPSULE_CMD, cmd, b"\0" * 32768))
        term = h.expect_close()
        self.assertIsNotNone(term)

    def test_h2c_data_unknown_ttag(self):
        h = nt.Host(self.port)
        h.connect_ic()
        hdr = struct.pack("<HHII", 1, 0x77, 0, 512) + b"\0" * 4
        h.send(h.pdu(nt.H2C_DATA, hdr, b"\0" * 512, flags=nt.F_LAST))
        self.expect_term(h)

    def test_h2c_data_beyond_r2t(self):
        h, cntlid = nt.admin_session(self.port, NQN)
        io = nt.io_session(self.port, NQN, cntlid)
        n = 64 * 1024
        io.submit(nt.sqe(0x01, 3, nsid=1, cdw10=0, cdw12=n // BS - 1, sgl_len=n))
        r = io.wait_cpl()
        self.assertEqual(r[0], "r2t", r)
        _, cccid, ttag, r2to, r2tl = r
        hdr = struct.pack("<HHII", cccid, ttag, r2to, r2tl + 4096) + b"\0" * 4
        io.send(io.pdu(nt.H2C_DATA, hdr, b"\0" * (r2tl + 4096), flags=nt.F_LAST))
        self.expect_term(io)
        h.close()

    def test_host_vanishes_mid_transfer(self):
        h, cntlid = nt.admin_session(self.port, NQN)
        io = nt.io_session(self.port, NQN, cntlid)
        n = 128 * 1024
        io.submit(nt.sqe(0x01, 4, nsid=1, cdw12=n // BS - 1, sgl_len=n))
        r = io.wait_cpl()
        self.assertEqual(r[0], "r2t", r)
        _, cccid, ttag, r2to, r2tl = r
        hdr = struct.pack("<HHII", cccid, ttag, r2to, 4096) + b"\0" * 4
        io.send(io.pdu(nt.H2C_DATA, hdr, b"\0" * 4096))  # part of the data, then gone
        io.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        io.close()
        h.close()
        time.sleep(0.2)

    def test_bdev_deleted_under_stalled_zero_copy_reads(self):
        """Reads sent from the malloc bdev's own memory (zero copy) to a host that stopped reading must
        not pin the bdev: deleting it completes promptly, the host can still vanish, nothing leaks."""
        nqn = "nqn.2016-06.io.spdk:zcopy"
        self.export_extra(nqn, "MallocZ", 32, "SPDK00000000000003")
        try:
            before = self.zcopy_stats()
            h, cntlid = nt.admin_session(self.port, nqn)
            io = nt.io_session(self.port, nqn, cntlid)
            n = 128 * 1024
            # 60 x 128 KiB = 7.5 MiB queued towards a host that reads nothing
            for i in range(60):
                io.submit(nt.sqe(0x02, 100 + i, nsid=1, cdw10=(i % 32) * (n // BS), cdw12=n // BS - 1, sgl_len=n))
            deadline = time.time() + 10
            while time.time() < deadline and self.zcopy_stats()[0] - before[0] < 60:
                time.sleep(0.05)
            lent, bounced = [a - b for a, b in zip(self.zcopy_stats(), before)]
            self.assertEqual(lent, 60, "reads not served from lent memory")
            t0 = time.time()
            self.tgt.rpc("bdev_malloc_delete", "MallocZ")
            took = time.time() - t0
            self.assertLess(took, 5.0, "bdev_malloc_delete waited %.1f s for a host that does not read" % took)
            self.assertGreater(self.zcopy_stats()[1] - before[1], 0, "no stalled payload was copied out")
            names = [b["name"] for b in self.tgt.rpc("bdev_get_bdevs")]
            self.assertNotIn("MallocZ", names)
            io.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            io.close()
            h.close()
        finally:
            self.tgt.rpc("nvmf_delete_subsystem", nqn)

    def test_bdev_deleted_under_stalled_zero_copy_write(self):
        """A Write whose data goes straight into the malloc bdev's memory (zero copy), from a host that stops
        sending half-way, must not pin the bdev: the write moves to a private buffer, deleting the bdev
        completes promptly; a complete zero-copy write reads back right first."""
        nqn = "nqn.2016-06.io.spdk:zcopyw"
        self.export_extra(nqn, "MallocW", 32, "SPDK00000000000004")
        try:
            before = self.wlend_stats()
            h, cntlid = nt.admin_session(self.port, nqn)
            io = nt.io_session(self.port, nqn, cntlid)
            n = 128 * 1024
            data = bytes((i * 7 + 3) & 0xFF for i in range(n))
            io.submit(nt.sqe(0x01, 5, nsid=1, cdw10=64, cdw12=n // BS - 1, sgl_len=n))
            r = io.wait_cpl()
            self.assertEqual(r[0], "r2t", r)
            _, cccid, ttag, r2to, r2tl = r
            self.assertEqual(r2tl, n)
            io.send(io.pdu(nt.H2C_DATA, struct.pack("<HHII", cccid, ttag, 0, n) + b"\0" * 4, data, flags=nt.F_LAST))
            cpl = io.wait_cpl()
            self.assertTrue(cpl.ok, cpl)
            cpl, got = io.read(1, 64, n // BS, BS)
            self.assertTrue(cpl.ok, cpl)
            self.assertEqual(got, data)
            lent, bounced = [a - b for a, b in zip(self.wlend_stats(), before)]
            self.assertEqual((lent, bounced), (1, 0))
            # now a write whose data stops after 40000 of 131072 bytes
            io.submit(nt.sqe(0x01, 6, nsid=1, cdw10=512, cdw12=n // BS - 1, sgl_len=n))
            r = io.wait_cpl()
            self.assertEqual(r[0], "r2t", r)
            _, cccid, ttag, r2to, r2tl = r
            pdu = io.pdu(nt.H2C_DATA, struct.pack("<HHII", cccid, ttag, 0, n) + b"\0" * 4, data, flags=nt.F_LAST)
            io.send(pdu[:24 + 40000])
            deadline = time.time() + 10
            while time.time() < deadline and self.wlend_stats()[1] - before[1] < 1:
                time.sleep(0.05)
            self.assertEqual(self.wlend_stats()[1] - before[1], 1, "the stalled write still holds bdev memory")
            t0 = time.time()
            self.tgt.rpc("bdev_malloc_delete", "MallocW")
            took = time.time() - t0
            self.assertLess(took, 5.0, "bdev_malloc_delete waited %.1f s for a host that does not send" % took)
            self.assertNotIn("MallocW", [b["name"] for b in self.tgt.rpc("bdev_get_bdevs")])
            io.send(pdu[24 + 40000:])
            cpl = io.wait_cpl()
            self.assertFalse(cpl.ok, "a write to a deleted namespace succeeded: %r" % cpl)
            io.close()
            h.close()
        finally:
            self.tgt.rpc("nvmf_delete_subsystem", nqn)

    def test_controller_gone_under_zero_copy_write(self):
        """The host's admin connection closes (the controller and all its queues are torn down by the target)
        while a zero-copy Write still waits for its data: the lent bdev memory is given back, so deleting
        the bdev afterwards completes."""
        nqn = "nqn.2016-06.io.spdk:zcopyw2"
        self.export_extra(nqn, "MallocW2", 8, "SPDK00000000000005")
        try:
            before = self.wlend_stats()
            h, cntlid = nt.admin_session(self.port, nqn)
            io = nt.io_session(self.port, nqn, cntlid)
            n = 64 * 1024
            io.submit(nt.sqe(0x01, 7, nsid=1, cdw10=0, cdw12=n // BS - 1, sgl_len=n))
            r = io.wait_cpl()
            self.assertEqual(r[0], "r2t", r)
            self.assertEqual(self.wlend_stats()[0] - before[0], 1)
            h.close()   # the controller goes; its I/O queue with it
            io.expect_close()
            t0 = time.time()
            self.tgt.rpc("bdev_malloc_delete", "MallocW2")
            self.assertLess(time.time() - t0, 5.0)
            self.assertNotIn("MallocW2", [b["name"] for b in self.tgt.rpc("bdev_get_bdevs")])
            io.close()
        finally:
            self.tgt.rpc("nvmf_delete_subsystem", nqn)

    def export_extra(self, nqn, bdev, size_mib, serial):
        """A malloc bdev (512 B blocks) as namespace 1 of a new subsystem on the test's listener."""
        self.tgt.rpc("bdev_malloc_create", size_mib, 512, "-b", bdev)
        self.tgt.rpc("nvmf_create_subsystem", nqn, "-a", "-s", serial)
        self.tgt.rpc("nvmf_subsystem_add_ns", nqn, bdev)
        self.tgt.rpc("nvmf_subsystem_add_listener", nqn, "-t", "tcp", "-a", "127.0.0.1", "-s", self.port)

    def wlend_stats(self):
        lent = bounced = 0
        for g in self.tgt.rpc("nvmf_get_stats")["poll_groups"]:
            for t in g.get("transports", []):
                lent += t.get("writes_lent", 0)
                bounced += t.get("lent_writes_bounced", 0)
        return lent, bounced

    def zcopy_stats(self):
        lent = bounced = 0
        for g in self.tgt.rpc("nvmf_get_stats")["poll_groups"]:
            for t in g.get("transports", []):
                lent += t.get("c2h_pdus_lent", 0)
                bounced += t.get("lent_payloads_bounced", 0)
        return lent, bounced

    # ---------------------------------------------------------- fabrics
    def test_connect_unknown_nqn(self):
        h = nt.Host(self.port)
        h.connect_ic()
        cpl = h.fabric_connect("nqn.2016-06.io.spdk:nosuch", "nqn.2014-08.org.nvmexpress:uuid:1")
        self.assertEqual((cpl.sct, cpl.sc), (1, 0x82), cpl)
        # Invalid parameter: the subnqn field (offset 256 in the connect data).
        self.assertEqual(cpl.cdw0 & 0xFFFF, 256)
        self.assertEqual((cpl.cdw0 >> 16) & 0xFF, 1)
        h.close()

    def test_connect_host_not_allowed(self):
        h = nt.Host(self.port)
        h.connect_ic()
        cpl = h.fabric_connect(LOCKED_NQN, "nqn.2014-08.org.nvmexpress:uuid:2")
        self.assertEqual((cpl.sct, cpl.sc), (1, 0x84), cpl)
        h.close()

    def test_connect_empty_hostnqn_allow_any_host(self):
        # SPDK's initiator sends an empty HOSTNQN on machines without DMI ids; SPDK's target
        # and Linux nvmet accept it where any host is allowed, and so do we.
        hostid = bytes(range(0x40, 0x50))
        h = nt.Host(self.port)
        h.connect_ic()
        cpl = h.fabric_connect(NQN, "", hostid=hostid)
        self.assertTrue(cpl.ok, cpl)
        cntlid = cpl.cdw0 & 0xFFFF
        h.enable()
        cpl, data = h.identify(1)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(struct.unpack_from("<H", data, 78)[0], cntlid)
        # An I/O queue with the same (empty) HOSTNQN and HOSTID joins the controller and does I/O.
        io = nt.Host(self.port)
        io.connect_ic()
        cpl = io.fabric_connect(NQN, "", qid=1, sqsize=63, cntlid=cntlid, kato=0, hostid=hostid)
        self.assertTrue(cpl.ok, cpl)
        pattern = bytes((i * 13) & 0xFF for i in range(4096))
        self.assertTrue(io.write_incapsule(1, 200, pattern, BS).ok)
        cpl, back = io.read(1, 200, 4096 // BS, BS)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(back, pattern)
        # An I/O queue that names a HOSTNQN the admin queue did not present is refused (IPO 512).
        other = nt.Host(self.port)
        other.connect_ic()
        cpl = other.fabric_connect(NQN, "nqn.2014-08.org.nvmexpress:uuid:9", qid=2, sqsize=63, cntlid=cntlid,
                                   kato=0, hostid=hostid)
        self.assertEqual((cpl.sct, cpl.sc), (1, 0x82), cpl)
        self.assertEqual(cpl.cdw0 & 0xFFFF, 512)
        other.close()
        # ... and so is one with the empty HOSTNQN but another HOSTID (IPO 0).
        other = nt.Host(self.port)
        other.connect_ic()
        cpl = other.fabric_connect(NQN, "", qid=2, sqsize=63, cntlid=cntlid, kato=0, hostid=bytes(16))
        self.assertEqual((cpl.sct, cpl.sc), (1, 0x82), cpl)
        self.assertEqual(cpl.cdw0 & 0xFFFF, 0)
        other.close()
        io.close()
        h.close()
        # The operator can still tell the host apart: its address and HOSTID are logged.
        deadline = time.monotonic() + 5
        want = "hostid 40414243-4445-4647-4849-4a4b4c4d4e4f) sent an empty HOSTNQN"
        while want not in self.tgt.logtext() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("connect: host 127.0.0.1:", self.tgt.logtext())
        self.assertIn(want, self.tgt.logtext())

    def test_connect_empty_hostnqn_host_list(self):
        # Where the subsystem has a host list, an empty HOSTNQN is not on it: Connect Invalid Host.
        h = nt.Host(self.port)
        h.connect_ic()
        cpl = h.fabric_connect(LOCKED_NQN, "")
        self.assertEqual((cpl.sct, cpl.sc), (1, 0x84), cpl)
        h.close()

    def test_connect_hostnqn_too_long(self):
        # A HOSTNQN with no NUL within 224 bytes is still refused: Invalid Parameters, IPO 512.
        h = nt.Host(self.port)
        h.connect_ic()
        cpl = h.fabric_connect(NQN, "nqn.2014-08.org.x:" + "a" * 230)
        self.assertEqual((cpl.sct, cpl.sc), (1, 0x82), cpl)
        self.assertEqual(cpl.cdw0 & 0xFFFF, 512)
        h.close()

    def test_io_connect_unknown_cntlid(self):
        h = nt.Host(self.port)
        h.connect_ic()
        cpl = h.fabric_connect(NQN, "nqn.2014-08.org.nvmexpress:uuid:3", qid=1, cntlid=0xABC, kato=0)
        self.assertEqual((cpl.sct, cpl.sc), (1, 0x82), cpl)
        h.close()

    def test_command_before_connect(self):
        h = nt.Host(self.port)
        h.connect_ic()
        cpl, _ = h.identify(1)
        self.assertFalse(cpl.ok, "identify before connect succeeded")
        h.close()

    def test_admin_command_before_cc_en(self):
        h = nt.Host(self.port)
        h.connect_ic()
        self.assertTrue(h.fabric_connect(NQN, "nqn.2014-08.org.nvmexpress:uuid:4").ok)
        cpl, _ = h.identify(1)
        self.assertEqual((cpl.sct, cpl.sc), (0, 0x0C), cpl)  # command sequence error
        h.close()

    def test_io_connect_before_cc_en(self):
        h = nt.Host(self.port)
        h.connect_ic()
        cpl = h.fabric_connect(NQN, "nqn.2014-08.org.nvmexpress:uuid:5")
        self.assertTrue(cpl.ok)
        cntlid = cpl.cdw0 & 0xFFFF
        io = nt.Host(self.port)
        io.connect_ic()
        cpl = io.fabric_connect(NQN, "nqn.2014-08.org.nvmexpress:uuid:5", qid=1, cntlid=cntlid, kato=0)
        self.assertFalse(cpl.ok, "I/O queue connected to a disabled controller")
        io.close()
        h.close()

    def test_keep_alive_expiry(self):
        # A controller whose host stays silent past KATO is torn down: both its
        # queues are closed by the target.
        h = nt.Host(self.port)
        h.connect_ic()
        cpl = h.fabric_connect(NQN, "nqn.2014-08.org.nvmexpress:uuid:6", kato=1000)
        self.assertTrue(cpl.ok, cpl)
        h.enable()
        io = nt.io_session(self.port, NQN, cpl.cdw0 & 0xFFFF, hostnqn="nqn.2014-08.org.nvmexpress:uuid:6")
        t0 = time.monotonic()
        h.expect_close(timeout=10)
        io.expect_close(timeout=10)
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, 8.0, "controller not torn down within 8 s of a 1 s KATO")
        h.close()
        io.close()

    def test_keep_alive_keeps_controller(self):
        # Keep Alive commands within KATO keep the controller alive.
        h = nt.Host(self.port)
        h.connect_ic()
        cpl = h.fabric_connect(NQN, "nqn.2014-08.org.nvmexpress:uuid:7", kato=1000)
        self.assertTrue(cpl.ok, cpl)
        h.enable()
        for _ in range(8):
            time.sleep(0.3)
            cpl, _ = h.command(nt.sqe(0x18, h.next_cid()))
            self.assertTrue(cpl.ok, cpl)
        h.close()

    # ---------------------------------------------------------- I/O
    def test_io_past_the_end(self):
        h, cntlid = nt.admin_session(self.port, NQN)
        io = nt.io_session(self.port, NQN, cntlid)
        cpl, _ = io.read(1, NUM_BLOCKS - 4, 8, BS)
        self.assertEqual((cpl.sct, cpl.sc), (0, 0x80), cpl)
        cpl = io.write_incapsule(1, NUM_BLOCKS, b"\0" * BS, BS)
        self.assertEqual((cpl.sct, cpl.sc), (0, 0x80), cpl)
        io.close()
        h.close()

    def test_invalid_opcode_and_namespace(self):
        h, cntlid = nt.admin_session(self.port, NQN)
        io = nt.io_session(self.port, NQN, cntlid)
        cpl, _ = io.command(nt.sqe(0x7E, io.next_cid(), nsid=1))
        self.assertEqual((cpl.sct, cpl.sc), (0, 0x01), cpl)
        cpl, _ = io.read(7, 0, 1, BS)
        self.assertEqual((cpl.sct, cpl.sc), (0, 0x0B), cpl)
        cpl, _ = h.command(nt.sqe(0xC3, h.next_cid()))
        self.assertEqual((cpl.sct, cpl.sc), (0, 0x01), cpl)
        io.close()
        h.close()

    def test_sgl_length_mismatch(self):
        h, cntlid = nt.admin_session(self.port, NQN)
        io = nt.io_session(self.port, NQN, cntlid)
        cmd = nt.sqe(0x02, io.next_cid(), nsid=1, cdw12=7, sgl_len=512)  # 8 blocks, 512 bytes
        cpl, _ = io.command(cmd, read_len=512)
        self.assertEqual((cpl.sct, cpl.sc), (0, 0x0F), cpl)
        io.close()
        h.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
