"""DH-HMAC-CHAP in-band authentication against the real daosblk-tgt, from a raw socket.

The host side (dhchap.py) is written from the specification with Python's hmac/hashlib and pow():
a successful exchange for each digest, the null group and the ffdhe groups, unidirectional and
bidirectional, on the admin and the I/O queues; then every bad input: a wrong secret, no
authentication at all, a stall, malformed / truncated / replayed / out-of-order messages, bad DH
values, wrong command fields. Each gets a Failure1 or an NVMe status and no access, and the daemon
keeps serving; at the end it exits 0 (under ASan: nothing leaked).
"""

import os
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nvmetcp as nt  # noqa: E402
import dhchap as dc  # noqa: E402

NQN = "nqn.2016-06.io.spdk:cnode1"
HOST = "nqn.2014-08.org.nvmexpress:uuid:0f0e0d0c-0b0a-0908-0706-050403020100"
BIDI = "nqn.2014-08.org.nvmexpress:uuid:1f0e0d0c-0b0a-0908-0706-050403020101"
NOKEY = "nqn.2014-08.org.nvmexpress:uuid:2f0e0d0c-0b0a-0908-0706-050403020102"
HOST2 = "nqn.2014-08.org.nvmexpress:uuid:3f0e0d0c-0b0a-0908-0706-050403020103"
BS = 512

SECRET = dc.make_secret(os.urandom(32))
SECRET_T2 = dc.make_secret(os.urandom(48), 2)      # transformed with SHA-384
CTRL_SECRET = dc.make_secret(os.urandom(64), 3)    # transformed with SHA-512
OTHER = dc.make_secret(os.urandom(32))


def is_auth_required(cpl):
    return cpl.sct == 1 and cpl.sc == dc.SC_AUTH_REQUIRED


class Auth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = nt.free_port()
        cls.tgt = nt.Target()
        t = cls.tgt
        t.export_malloc(NQN, cls.port, size_mib=8, block=BS, allow_any=False)
        for name, sec in (("key0", SECRET), ("key1", SECRET_T2), ("ckey1", CTRL_SECRET), ("other", OTHER)):
            path = os.path.join(t.dir, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, (sec + "\n").encode())
            os.close(fd)
            t.rpc("keyring_file_add_key", name, path)
        t.rpc("nvmf_subsystem_add_host", NQN, HOST, "--dhchap-key", "key0")
        t.rpc("nvmf_subsystem_add_host", NQN, BIDI, "--dhchap-key", "key1", "--dhchap-ctrlr-key", "ckey1")
        t.rpc("nvmf_subsystem_add_host", NQN, NOKEY)

    @classmethod
    def tearDownClass(cls):
        rc = cls.tgt.stop()
        log = cls.tgt.logtext()
        if rc != 0:
            print(log[-4000:], file=sys.stderr)
        assert rc == 0, "daosblk-tgt exited with %d after SIGINT" % rc
        for s in (SECRET, SECRET_T2, CTRL_SECRET, OTHER):
            assert s.split(":")[2] not in log, "a secret is in the log"

    def setUp(self):
        self.tgt.rpc("nvmf_set_config", "--dhchap-digests", "sha256,sha384,sha512", "--dhchap-dhgroups",
                     "null,ffdhe2048,ffdhe3072,ffdhe4096,ffdhe6144,ffdhe8192")

    def tearDown(self):
        self.assertTrue(self.tgt.alive(), "daemon died:\n" + self.tgt.logtext()[-3000:])
        # after every case a good host still authenticates and does I/O
        h, cntlid = self.authed_admin(HOST, SECRET)
        io = self.authed_io(HOST, SECRET, cntlid)
        self.io_roundtrip(io)
        io.close()
        h.close()

    # ------------------------------------------------------------ helpers

    def connect(self, hostnqn, qid=0, cntlid=0xFFFF):
        h = nt.Host(self.port, timeout=30.0)   # ffdhe8192 on a loaded 2-core machine takes its time
        h.connect_ic()
        cpl = h.fabric_connect(NQN, hostnqn, qid=qid, cntlid=cntlid, sqsize=31 if qid == 0 else 63,
                               kato=30000 if qid == 0 else 0)
        self.assertTrue(cpl.ok, cpl)
        return h, cpl

    def authed_admin(self, hostnqn, secret, ctrl=None, **neg):
        h, cpl = self.connect(hostnqn)
        self.assertTrue(cpl.cdw0 & (1 << 17), "Connect did not ask for authentication: %#x" % cpl.cdw0)
        cntlid = cpl.cdw0 & 0xFFFF
        self.assertIsNone(dc.Session(h, hostnqn, NQN, secret, ctrl).run(**neg))
        h.enable()
        cpl, data = h.identify(1)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(struct.unpack_from("<H", data, 78)[0], cntlid)
        return h, cntlid

    def authed_io(self, hostnqn, secret, cntlid, ctrl=None):
        io, cpl = self.connect(hostnqn, qid=1, cntlid=cntlid)
        self.assertTrue(cpl.cdw0 & (1 << 17), "I/O Connect did not ask for authentication")
        self.assertIsNone(dc.Session(io, hostnqn, NQN, secret, ctrl, tid=99).run())
        return io

    def io_roundtrip(self, io):
        pattern = os.urandom(4096)
        self.assertTrue(io.write_incapsule(1, 64, pattern, BS).ok)
        cpl, back = io.read(1, 64, 8, BS)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(back, pattern)

    def expect_failure1(self, s, rce, al=4096):
        cpl, m = dc.auth_recv(s.h, al)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(dc.failure(m), (1, rce), "expected Failure1 explanation %d, got %r" % (rce, m[:8]))
        # no access afterwards, and the queue is closed
        cpl, _ = s.h.prop_get(0)
        self.assertTrue(is_auth_required(cpl), cpl)
        self.assertIsNone(s.h.expect_close(timeout=5))
        s.h.close()

    # ------------------------------------------------------------ successful exchanges

    def test_each_digest_null_group(self):
        for digest, hid in (("sha256", 1), ("sha384", 2), ("sha512", 3)):
            self.tgt.rpc("nvmf_set_config", "--dhchap-digests", digest, "--dhchap-dhgroups", "null")
            h, cpl = self.connect(HOST)
            s = dc.Session(h, HOST, NQN, SECRET)
            s.negotiate()
            ch, f = s.challenge()
            self.assertIsNone(f)
            self.assertEqual((ch["hash"], ch["hl"], ch["dhgroup"], len(ch["dhv"])), (hid, dc.HASH_LEN[hid], 0, 0))
            s.reply()
            self.assertIsNone(s.success1())
            h.enable()
            h.close()

    def test_each_dh_group_bidirectional_and_io_queue(self):
        for g in (1, 2, 3, 4, 5):
            self.tgt.rpc("nvmf_set_config", "--dhchap-dhgroups", dc.DHGROUPS[g])
            h, cntlid = self.authed_admin(BIDI, SECRET_T2, CTRL_SECRET)
            io = self.authed_io(BIDI, SECRET_T2, cntlid, CTRL_SECRET)
            self.io_roundtrip(io)
            io.close()
            h.close()

    def test_strongest_offered_is_chosen(self):
        h, _ = self.connect(HOST)
        s = dc.Session(h, HOST, NQN, SECRET)
        s.negotiate(hashes=(1, 2), groups=(0, 1, 2))
        ch, _ = s.challenge()
        self.assertEqual((ch["hash"], ch["dhgroup"]), (2, 2))
        s.reply()
        self.assertIsNone(s.success1())
        h.close()

    def test_reauthentication(self):
        h, _ = self.authed_admin(HOST, SECRET)
        self.assertIsNone(dc.Session(h, HOST, NQN, SECRET, tid=3).run())
        cpl, _ = h.identify(1)
        self.assertTrue(cpl.ok, cpl)
        h.close()
        # a key changed with nvmf_subsystem_set_keys applies to the re-authentication of a connected queue
        host3 = "nqn.2014-08.org.nvmexpress:uuid:4f0e0d0c-0b0a-0908-0706-050403020104"
        self.tgt.rpc("nvmf_subsystem_add_host", NQN, host3, "--dhchap-key", "other")
        h, _ = self.authed_admin(host3, OTHER)
        self.tgt.rpc("nvmf_subsystem_set_keys", NQN, host3, "--dhchap-key", "key0")
        self.assertIsNone(dc.Session(h, host3, NQN, SECRET, tid=4).run())
        cpl, _ = h.identify(1)
        self.assertTrue(cpl.ok, cpl)
        self.assertEqual(dc.Session(h, host3, NQN, OTHER, tid=5).run(), (1, dc.RCE_FAILED))
        cpl, _ = h.identify(1)
        self.assertTrue(is_auth_required(cpl), cpl)
        self.assertIsNone(h.expect_close(timeout=5))
        h.close()
        self.tgt.rpc("nvmf_subsystem_remove_host", NQN, host3)

    # ------------------------------------------------------------ no access without authentication

    def test_commands_refused_before_authentication(self):
        h, cpl = self.connect(HOST)
        cpl, _ = h.prop_get(0)
        self.assertTrue(is_auth_required(cpl), cpl)
        cpl, _ = h.identify(1)
        self.assertTrue(is_auth_required(cpl), cpl)
        h.close()
        # an authenticated admin queue does not open an unauthenticated I/O queue
        a, cntlid = self.authed_admin(HOST, SECRET)
        io, cpl = self.connect(HOST, qid=1, cntlid=cntlid)
        cpl, _ = io.read(1, 0, 1, BS)
        self.assertTrue(is_auth_required(cpl), cpl)
        io.close()
        a.close()

    def test_wrong_secret(self):
        h, _ = self.connect(HOST)
        s = dc.Session(h, HOST, NQN, OTHER)
        s.negotiate()
        s.challenge()
        s.reply()
        self.assertEqual(s.success1(), (1, dc.RCE_FAILED))
        cpl, _ = h.identify(1)
        self.assertTrue(is_auth_required(cpl), cpl)
        self.assertIsNone(h.expect_close(timeout=5))

    def test_wrong_response_bit(self):
        h, _ = self.connect(BIDI)
        s = dc.Session(h, BIDI, NQN, SECRET_T2, CTRL_SECRET)
        s.negotiate(groups=(1,))
        s.challenge()
        s.reply(corrupt_response=True)
        self.assertEqual(s.success1(), (1, dc.RCE_FAILED))
        self.assertIsNone(h.expect_close(timeout=5))

    def test_host_without_key_needs_no_auth(self):
        h, cpl = self.connect(NOKEY)
        self.assertFalse(cpl.cdw0 & (1 << 17))
        h.enable()
        # and AUTH commands there are a sequence error
        cpl = dc.auth_send(h, dc.negotiate_msg(1))
        self.assertEqual((cpl.sct, cpl.sc), (0, 0x0C))
        h.close()

    def test_stall_is_timed_out(self):
        t0 = time.monotonic()
        idle, _ = self.connect(HOST)                     # never starts
        mid, _ = self.connect(HOST)                      # stops after Negotiate
        dc.Session(mid, HOST, NQN, SECRET).negotiate()
        re, _ = self.authed_admin(HOST, SECRET)           # an authenticated queue that starts to re-authenticate
        s = dc.Session(re, HOST, NQN, SECRET, tid=11)
        s.negotiate()
        s.challenge()
        self.assertIsNone(idle.expect_close(timeout=20))
        self.assertIsNone(mid.expect_close(timeout=20))
        self.assertGreater(time.monotonic() - t0, 8)
        time.sleep(1)
        # an abandoned re-authentication is not fatal (as SPDK): the queue keeps its access
        cpl, _ = re.identify(1)
        self.assertTrue(cpl.ok, cpl)
        idle.close()
        mid.close()
        re.close()

    def test_qpairs_show_auth(self):
        h, cntlid = self.authed_admin(BIDI, SECRET_T2, CTRL_SECRET, groups=(2,))
        pending, _ = self.connect(HOST)
        qs = self.tgt.rpc("nvmf_subsystem_get_qpairs", NQN)
        mine = [q["auth"] for q in qs if q["cntlid"] == cntlid]
        self.assertEqual(mine, [{"state": "completed", "digest": "sha512", "dhgroup": "ffdhe3072"}])
        self.assertIn({"state": "negotiate", "digest": "unknown", "dhgroup": "unknown"}, [q.get("auth") for q in qs])
        pending.close()
        h.close()

    def test_bidirectional_without_controller_key(self):
        h, _ = self.connect(HOST)
        s = dc.Session(h, HOST, NQN, SECRET)
        s.negotiate()
        s.challenge()
        s.reply(bidirectional=True)
        self.assertEqual(s.success1(), (1, dc.RCE_FAILED))
        self.assertIsNone(h.expect_close(timeout=5))

    def test_key_removed_and_keys_changed(self):
        self.tgt.rpc("nvmf_subsystem_add_host", NQN, HOST2, "--dhchap-key", "other")
        h, _ = self.authed_admin(HOST2, OTHER)
        h.close()
        self.tgt.rpc("nvmf_subsystem_set_keys", NQN, HOST2, "--dhchap-key", "key0")
        h, _ = self.connect(HOST2)
        self.assertEqual(dc.Session(h, HOST2, NQN, OTHER).run(), (1, dc.RCE_FAILED))
        h.close()
        h, _ = self.authed_admin(HOST2, SECRET)
        h.close()
        # a removed key: the host can no longer connect at all
        self.tgt.rpc("keyring_file_add_key", "tmp", os.path.join(self.tgt.dir, "key0"))
        self.tgt.rpc("nvmf_subsystem_set_keys", NQN, HOST2, "--dhchap-key", "tmp")
        self.tgt.rpc("keyring_file_remove_key", "tmp")
        h = nt.Host(self.port)
        h.connect_ic()
        cpl = h.fabric_connect(NQN, HOST2)
        self.assertEqual((cpl.sct, cpl.sc), (1, 0x84), cpl)
        h.close()
        self.tgt.rpc("nvmf_subsystem_remove_host", NQN, HOST2)

    # ------------------------------------------------------------ malformed commands

    def test_bad_command_fields(self):
        h, _ = self.connect(HOST)
        msg = dc.negotiate_msg(1)
        for kw in ({"secp": 0xEA}, {"spsp0": 2}, {"spsp1": 0}, {"tl": 0}, {"tl": 100000}):
            cpl = dc.auth_send(h, msg, **kw)
            self.assertEqual((cpl.sct, cpl.sc), (0, 0x02), (kw, cpl))
        cpl = dc.auth_send(h, msg, tl=len(msg) - 8)     # tl disagrees with the data sent
        self.assertEqual((cpl.sct, cpl.sc), (0, 0x0F), cpl)
        cpl, _ = dc.auth_recv(h, secp=0)
        self.assertEqual((cpl.sct, cpl.sc), (0, 0x02), cpl)
        # none of it started anything: a normal exchange still works on this queue
        self.assertIsNone(dc.Session(h, HOST, NQN, SECRET).run())
        h.close()

    # ------------------------------------------------------------ malformed messages

    def negotiate_fails(self, msg, rce):
        h, _ = self.connect(HOST)
        cpl = dc.auth_send(h, msg)
        self.assertTrue(cpl.ok, cpl)
        self.expect_failure1(dc.Session(h, HOST, NQN, SECRET), rce)

    def test_malformed_negotiate(self):
        good = dc.negotiate_msg(5)
        self.negotiate_fails(good[:6] + b"\0\0", dc.RCE_PAYLOAD)               # 8 bytes, no descriptor
        self.negotiate_fails(good[:40], dc.RCE_PAYLOAD)                        # truncated descriptor
        self.negotiate_fails(dc.negotiate_msg(5, napd=0), dc.RCE_PAYLOAD)
        self.negotiate_fails(dc.negotiate_msg(5, napd=3), dc.RCE_PAYLOAD)      # says 3, carries 1
        self.negotiate_fails(dc.negotiate_msg(5, authid=2), dc.RCE_NOT_USABLE) # not DH-HMAC-CHAP
        self.negotiate_fails(dc.negotiate_msg(5, halen=31), dc.RCE_PAYLOAD)
        self.negotiate_fails(dc.negotiate_msg(5, hashes=(9, 0)), dc.RCE_HASH)
        self.negotiate_fails(dc.negotiate_msg(5, groups=(6, 7)), dc.RCE_DHGROUP)
        self.negotiate_fails(dc.negotiate_msg(5, sc_c=1), dc.RCE_CONCAT)
        self.negotiate_fails(b"\x05\x00\x00\x00\x05\x00\x00\x01" + bytes(64), dc.RCE_MESSAGE)
        self.tgt.rpc("nvmf_set_config", "--dhchap-digests", "sha512")
        self.negotiate_fails(dc.negotiate_msg(5, hashes=(1, 2)), dc.RCE_HASH)

    def start(self, host=HOST, secret=SECRET, ctrl=None, groups=(1,)):
        h, _ = self.connect(host)
        s = dc.Session(h, host, NQN, secret, ctrl)
        s.negotiate(groups=groups)
        ch, f = s.challenge()
        self.assertIsNone(f)
        return s

    def test_truncated_reply(self):
        s = self.start()
        m = s.reply_msg()
        self.assertTrue(dc.auth_send(s.h, m[:-10]).ok)
        self.expect_failure1(s, dc.RCE_PAYLOAD)
        s = self.start()
        self.assertTrue(dc.auth_send(s.h, s.reply_msg()[:12]).ok)
        self.expect_failure1(s, dc.RCE_PAYLOAD)

    def test_reply_bad_lengths(self):
        s = self.start()
        m = bytearray(s.reply_msg())
        m[6] = 48                                  # hl of SHA-384 while SHA-512 was chosen
        self.assertTrue(dc.auth_send(s.h, bytes(m)).ok)
        self.expect_failure1(s, dc.RCE_PAYLOAD)
        s = self.start()
        m = bytearray(s.reply_msg())
        struct.pack_into("<H", m, 10, 128)          # DH value length of no group
        self.assertTrue(dc.auth_send(s.h, bytes(m)).ok)
        self.expect_failure1(s, dc.RCE_PAYLOAD)
        s = self.start()
        m = bytearray(s.reply_msg())
        m[8] = 2                                    # CVALID is 0 or 1
        self.assertTrue(dc.auth_send(s.h, bytes(m)).ok)
        self.expect_failure1(s, dc.RCE_PAYLOAD)
        s = self.start(host=BIDI, secret=SECRET_T2, ctrl=CTRL_SECRET)
        m = bytearray(s.reply_msg())
        struct.pack_into("<I", m, 12, 0)            # a controller challenge with sequence number 0
        self.assertTrue(dc.auth_send(s.h, bytes(m)).ok)
        self.expect_failure1(s, dc.RCE_PAYLOAD)

    def test_bad_dh_values(self):
        p = dc.prime(1)
        for y in (0, 1, p - 1, p, (1 << 2048) - 1):
            s = self.start()
            self.assertTrue(dc.auth_send(s.h, s.reply_msg(dh_override=y.to_bytes(256, "big"))).ok)
            self.expect_failure1(s, dc.RCE_DHGROUP)

    def test_wrong_transaction_id(self):
        s = self.start()
        m = bytearray(s.reply_msg())
        struct.pack_into("<H", m, 4, s.tid + 1)
        self.assertTrue(dc.auth_send(s.h, bytes(m)).ok)
        self.expect_failure1(s, dc.RCE_PAYLOAD)

    def test_out_of_order(self):
        # AUTH_Receive before any Negotiate
        h, _ = self.connect(HOST)
        self.expect_failure1(dc.Session(h, HOST, NQN, SECRET), dc.RCE_MESSAGE)
        # Reply before the Challenge was read
        h, _ = self.connect(HOST)
        s = dc.Session(h, HOST, NQN, SECRET)
        s.negotiate()
        s.ch = {"hash": 3, "hl": 64, "c1": bytes(64), "seq": 1, "dhgroup": 0, "dhv": b""}
        self.assertTrue(dc.auth_send(h, s.reply_msg()).ok)
        self.expect_failure1(s, dc.RCE_MESSAGE)
        # Success2 in a unidirectional exchange
        s = self.start()
        s.reply()
        self.assertTrue(dc.auth_send(s.h, struct.pack("<BBHH", 1, 4, 0, s.tid) + bytes(10)).ok)
        self.expect_failure1(s, dc.RCE_MESSAGE)

    def test_replayed_reply(self):
        # a Reply captured from one connection does not open another (new challenge, new sequence number)
        s = self.start(groups=(0,))
        captured = s.reply_msg()
        self.assertTrue(dc.auth_send(s.h, captured).ok)
        self.assertIsNone(s.success1())
        s.h.close()
        s2 = self.start(groups=(0,))
        self.assertTrue(dc.auth_send(s2.h, captured).ok)
        self.expect_failure1(s2, dc.RCE_FAILED)
        # and replaying it on the queue it authenticated is out of sequence: the queue loses its access
        s3 = self.start(groups=(0,))
        m = s3.reply_msg()
        self.assertTrue(dc.auth_send(s3.h, m).ok)
        self.assertIsNone(s3.success1())
        self.assertTrue(dc.auth_send(s3.h, m).ok)
        self.expect_failure1(s3, dc.RCE_MESSAGE)

    def test_short_receive_buffer(self):
        h, _ = self.connect(HOST)
        s = dc.Session(h, HOST, NQN, SECRET)
        s.negotiate(groups=(1,))
        cpl, _ = dc.auth_recv(h, al=64)     # a Challenge with ffdhe2048 needs 16 + 64 + 256 bytes
        self.assertEqual((cpl.sct, cpl.sc), (0, 0x02), cpl)
        ch, f = s.challenge()               # the step was not consumed
        self.assertIsNone(f)
        s.reply()
        self.assertIsNone(s.success1())
        h.close()

    def test_failed_queue_cannot_be_kept_open(self):
        # after a Failure1, asking again and again does not delay the close
        h, _ = self.connect(HOST)
        s = dc.Session(h, HOST, NQN, OTHER)
        self.assertEqual(s.run(), (1, dc.RCE_FAILED))
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < 5:
            try:
                cpl, m = dc.auth_recv(h)
            except (nt.Closed, OSError):
                closed = True
                break
            self.assertEqual(dc.failure(m), (1, dc.RCE_FAILED))
            time.sleep(0.2)
        self.assertTrue(closed, "the failed queue is still open after 5 s")
        h.close()

    def test_garbage_messages(self):
        for blob in (b"\xff" * 8, bytes(7), b"\x01\x02" + bytes(2000), os.urandom(512)):
            h, _ = self.connect(HOST)
            cpl = dc.auth_send(h, blob)
            self.assertTrue(cpl.ok or (cpl.sct, cpl.sc) == (0, 0x02), cpl)
            cpl, m = dc.auth_recv(h)
            self.assertTrue(cpl.ok, cpl)
            self.assertIsNotNone(dc.failure(m), m[:8])
            self.assertIsNone(h.expect_close(timeout=5))


if __name__ == "__main__":
    unittest.main(verbosity=2)
