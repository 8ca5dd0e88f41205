"""What daosblk-tgt takes from a host where SPDK's target and Linux nvmet both take it (nvmf/COMPAT.md).

Each case speaks raw NVMe/TCP to the real daemon over loopback: ICReq flags and PDU data offsets the other
two targets accept, the log pages and Identify structures both serve,
and the statuses both answer for property access they refuse. After every case the daemon still serves a
well-behaved host; at the end it must exit 0 on SIGINT (under ASan: nothing leaked).
"""

import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nvmetcp as nt  # noqa: E402

NQN = "nqn.2016-06.io.spdk:compat"
HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:0f0e0d0c-0b0a-0908-0706-050403020100"
BS = 512
CC_OK = (6 << 16) | (4 << 20) | 1       # CC.EN with IOSQES 6, IOCQES 4


def get_log(h, lid, nbytes, offset=0, cdw14=0, nsid=0xFFFFFFFF):
    cdw10 = lid | ((nbytes // 4 - 1) << 16)
    cmd = nt.sqe(0x02, h.next_cid(), nsid=nsid, cdw10=cdw10, cdw12=offset & 0xFFFFFFFF, cdw13=offset >> 32,
                 cdw14=cdw14, sgl_len=nbytes)
    return h.command(cmd, read_len=nbytes)


def identify(h, cns, nsid=0, csi=0):
    cmd = nt.sqe(0x06, h.next_cid(), nsid=nsid, cdw10=cns, cdw11=csi << 24, sgl_len=4096)
    return h.command(cmd, read_len=4096)


def dwords(data):
    return struct.unpack("<%dI" % (len(data) // 4), data)


class Compat(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = nt.free_port()
        cls.tgt = nt.Target()
        cls.tgt.export_malloc(NQN, cls.port, size_mib=8, block=BS)

    @classmethod
    def tearDownClass(cls):
        rc = cls.tgt.stop()
        if rc != 0:
            print(cls.tgt.logtext()[-4000:], file=sys.stderr)
        assert rc == 0, "daosblk-tgt exited with %d after SIGINT" % rc

    def tearDown(self):
        self.assertTrue(self.tgt.alive(), "daemon died:\n" + self.tgt.logtext()[-3000:])
        h, cntlid = nt.admin_session(self.port, NQN)
        io = nt.io_session(self.port, NQN, cntlid)
        self.assertTrue(io.write_incapsule(1, 7, b"\x5A" * BS, BS).ok)
        io.close()
        h.close()

    # ------------------------------------------------------------ NVMe/TCP
    def test_icreq_digest_flags_ignored(self):
        # ICReq carries no digests: HDGSTF/DDGSTF in its common header are ignored (SPDK, nvmet); the digest
        # choice is the ICReq's DGST field, here none.
        h = nt.Host(self.port)
        body = struct.pack("<HBBI", 0, 0, 0, 0) + b"\0" * 112
        h.send(struct.pack("<BBBBI", nt.IC_REQ, nt.F_HDGST | nt.F_DDGST, 128, 0, 128) + body)
        ptype, _, hdr, _ = h.recv_pdu()
        self.assertEqual(ptype, nt.IC_RESP)
        self.assertEqual(hdr[11], 0, "digests enabled by header flags")
        self.assertTrue(h.fabric_connect(NQN, HOSTNQN).ok)
        h.close()

    def test_unaligned_pdo(self):
        h, cntlid = nt.admin_session(self.port, NQN)
        io = nt.io_session(self.port, NQN, cntlid)
        # In-capsule data that starts 2 bytes after the header (PDO 74, not a multiple of 4): taken.
        data = bytes((i * 11 + 1) & 0xFF for i in range(BS))
        cmd = nt.sqe(0x01, io.next_cid(), nsid=1, cdw10=40, cdw12=0, sgl_len=BS, incapsule=True)
        io.send(io.pdu(nt.CAPSULE_CMD, cmd, data, pdo=74))
        cpl = io.wait_cpl()
        self.assertTrue(cpl.ok, cpl)
        cpl, back = io.read(1, 40, 1, BS)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(back, data)
        io.close()
        h.close()

    def test_stray_pdo_and_ddgst_without_data(self):
        h, cntlid = nt.admin_session(self.port, NQN)
        io = nt.io_session(self.port, NQN, cntlid)
        # A capsule without data whose PDO is non-zero and whose DDGST flag is set: nothing to describe, taken.
        io.send(io.pdu(nt.CAPSULE_CMD, nt.sqe(0x00, io.next_cid(), nsid=1), flags=nt.F_DDGST, pdo=72))
        cpl = io.wait_cpl()
        self.assertTrue(cpl.ok, cpl)
        io.close()
        h.close()

    # ------------------------------------------------------------ properties
    def test_property_access_refused_like_spdk_and_nvmet(self):
        h, cntlid = nt.admin_session(self.port, NQN)
        # An 8-byte Property Get at CAP+4 would span CAP and VS: Invalid Field (a 4-byte one is fine).
        cpl, _ = h.prop_get(0x04, size8=True)
        self.assertEqual((cpl.sct, cpl.sc), (0, 0x02), cpl)
        cpl, hi = h.prop_get(0x04, size8=False)
        self.assertTrue(cpl.ok, cpl)
        cpl, cap = h.prop_get(0x00, size8=True)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(hi, cap >> 32)
        # Property Get/Set on an I/O queue: Invalid Opcode.
        io = nt.io_session(self.port, NQN, cntlid)
        cpl, _ = io.prop_get(0x1C, size8=False)
        self.assertEqual((cpl.sct, cpl.sc), (0, 0x01), cpl)
        cpl = io.prop_set(0x14, CC_OK)
        self.assertEqual((cpl.sct, cpl.sc), (0, 0x01), cpl)
        io.close()
        h.close()

    def test_second_connect_invalid_opcode(self):
        # Connect on a queue that is connected already: Invalid Opcode, as SPDK's target and nvmet answer.
        h, cntlid = nt.admin_session(self.port, NQN)
        cpl = h.fabric_connect(NQN, HOSTNQN)
        self.assertEqual((cpl.sct, cpl.sc), (0, 0x01), cpl)
        io = nt.io_session(self.port, NQN, cntlid)
        cpl = io.fabric_connect(NQN, HOSTNQN, qid=1, sqsize=63, cntlid=cntlid, kato=0)
        self.assertEqual((cpl.sct, cpl.sc), (0, 0x01), cpl)
        io.close()
        h.close()

    def test_cid_of_an_outstanding_aer_is_reused(self):
        # SPDK's host completes its AERs locally at shutdown and reads CC with one of their CIDs; SPDK's target
        # and nvmet never check CIDs. An outstanding AER's CID is free for the next command; any other
        # outstanding command's CID still gets Command ID Conflict (unit test test_queue_depth_and_cid_conflict).
        h, _ = nt.admin_session(self.port, NQN)
        aer_cid = h.next_cid()
        h.submit(nt.sqe(0x0C, aer_cid))
        h.cid = aer_cid - 1  # the next command takes the AER's CID
        cpl, cc = h.prop_get(0x14, size8=False)
        self.assertEqual(cpl.cid, aer_cid)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(cc & 1, 1)
        h.close()

    # ------------------------------------------------------------ Identify
    def test_identify_cns_07_and_08(self):
        h, _ = nt.admin_session(self.port, NQN)
        # CNS 07h: the active namespace list of the NVM command set (CSI 0); another CSI is Invalid Field.
        cpl, data = identify(h, 0x07, nsid=0, csi=0)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(dwords(data)[:2], (1, 0))
        cpl, _ = identify(h, 0x07, nsid=0, csi=2)
        self.assertEqual((cpl.sct, cpl.sc), (0, 0x02), cpl)
        # CNS 08h: I/O command set independent Identify Namespace.
        cpl, data = identify(h, 0x08, nsid=1)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(data[1] & 1, 1, "NMIC: shared")
        self.assertEqual(data[13] & 1, 1, "NSTAT: ready")
        self.assertEqual(data[0] & 0x20, 0x20, "NSFEAT: a malloc bdev has no volatile write cache")
        cpl, data = identify(h, 0x08, nsid=5)  # a valid NSID that is not active: zero-filled
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(data, bytes(4096))
        for nsid in (0, 0xFFFFFFFF):
            cpl, _ = identify(h, 0x08, nsid=nsid)
            self.assertEqual((cpl.sct, cpl.sc), (0, 0x0B), "nsid %#x: %r" % (nsid, cpl))
        h.close()

    # ------------------------------------------------------------ log pages
    def test_log_pages_00_05_12(self):
        h, _ = nt.admin_session(self.port, NQN)
        cpl, idc = h.identify(1)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(idc[261] & 0x2, 0x2, "LPA: Commands Supported and Effects not advertised")
        # LID 00h: Supported Log Pages.
        cpl, data = get_log(h, 0x00, 1024)
        self.assertTrue(cpl.ok, cpl)
        lids = dwords(data)
        for lid in (0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x12):
            self.assertEqual(lids[lid] & 1, 1, "LID %#x not listed" % lid)
        for lid in (0x0C, 0x70, 0x80):
            self.assertEqual(lids[lid], 0, "LID %#x listed" % lid)
        # LID 05h: Commands Supported and Effects; the I/O half read at offset 1024.
        cpl, data = get_log(h, 0x05, 4096)
        self.assertTrue(cpl.ok, cpl)
        acs, iocs = dwords(data[:1024]), dwords(data[1024:2048])
        for opc in (0x02, 0x06, 0x08, 0x09, 0x0A, 0x0C, 0x18):
            self.assertEqual(acs[opc], 1, "admin opcode %#x" % opc)
        self.assertEqual(acs[0x0D], 0)  # Namespace Management: not supported
        self.assertEqual((iocs[0x00], iocs[0x01], iocs[0x02], iocs[0x08]), (1, 3, 1, 3))
        cpl, half = get_log(h, 0x05, 1024, offset=1024)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(half, data[1024:2048])
        cpl, _ = get_log(h, 0x05, 4096, cdw14=1 << 24)  # CSI 1: not a command set we have
        self.assertEqual((cpl.sct, cpl.sc), (0, 0x02), cpl)
        # LID 12h: Feature Identifiers Supported and Effects (controller scope: bit 21).
        cpl, data = get_log(h, 0x12, 1024)
        self.assertTrue(cpl.ok, cpl)
        fis = dwords(data)
        for fid in (0x07, 0x0B, 0x0F, 0x81):
            self.assertEqual(fis[fid], 1 | (1 << 21), "FID %#x" % fid)
        self.assertEqual(fis[0x06], 0, "VWC listed without a volatile write cache")
        self.assertEqual(fis[0x7D], 0)
        h.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
