"""SIGTERM under write load: the daemon stops cleanly (exit 0, in bounded time), and after a restart
every write it acknowledged is there.

A DAOS bdev on the local engine (temp --dfs-root), two reactors. daosblk-perf keeps a second namespace
busy with random writes (the load); this test's own host writes each 4 KiB block of the first namespace
once, with content unique to the block, 32 commands in flight, records every completion, and SIGTERMs
the target in the middle of it. After a restart from the saved configuration every acknowledged block
reads back exactly; a block whose write was not acknowledged holds its new content or zeros, nothing else.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "nvmf"))
import nvmetcp as nt  # noqa: E402

BUILD = os.environ["DBK_BUILD_DIR"]
TGT = os.path.join(BUILD, "app", "daosblk-tgt")
RPC = os.path.join(BUILD, "tools", "rpc", "daosblk-rpc")
DFS = os.path.join(BUILD, "tools", "dfs", "daosblk-dfs")
PERF = os.path.join(BUILD, "tools", "perf", "daosblk-perf")
NQN = "nqn.2016-06.io.spdk:cnode1"
BS = 4096
QD = 32
NBLOCKS = 65536          # 256 MiB
SC_ABORTED_SQ_DELETION = 0x08


def block(lba, seed):
    head = hashlib.sha256(b"%d:%d" % (seed, lba)).digest()
    return (head * (BS // len(head)))[:BS]


HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:0f0e0d0c-0b0a-0908-0706-050403020100"


def sessions(port):
    """Admin + one I/O queue, as nvmetcp's helpers, with a patient timeout (busy machine, ASan)."""
    adm = nt.Host(port, timeout=30)
    adm.connect_ic()
    cpl = adm.fabric_connect(NQN, HOSTNQN)
    assert cpl.ok, "admin connect failed: %r" % cpl
    adm.enable()
    io = nt.Host(port, timeout=30)
    io.connect_ic()
    cpl = io.fabric_connect(NQN, HOSTNQN, qid=1, sqsize=63, cntlid=cpl.cdw0 & 0xFFFF, kato=0)
    assert cpl.ok, "I/O connect failed: %r" % cpl
    return adm, io


class Daemon:
    def __init__(self, d, root, n, extra=()):
        self.sock = os.path.join(d, "rpc.sock")
        self.log = open(os.path.join(d, "tgt.%d.log" % n), "w+")
        self.proc = subprocess.Popen([TGT, "-m", "[0,1]", "-r", self.sock, "--dfs-root", root] + list(extra),
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(600):
            if self.proc.poll() is not None:
                raise AssertionError("daosblk-tgt exited at start:\n" + self.text())
            if os.path.exists(self.sock) and subprocess.run([RPC, "-s", self.sock, "-t", "5", "framework_wait_init"],
                                                            capture_output=True).returncode == 0:
                return
            time.sleep(0.05)
        raise AssertionError("daosblk-tgt did not start:\n" + self.text())

    def rpc(self, *args):
        p = subprocess.run([RPC, "-s", self.sock, "-t", "20"] + [str(a) for a in args], capture_output=True,
                           text=True, timeout=60)
        if p.returncode != 0:
            raise AssertionError("daosblk-rpc %s: %s" % (" ".join(map(str, args)), p.stderr))
        return p.stdout

    def text(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class SigtermDrain(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="dbk-drain-")
        self.root = os.path.join(self.dir, "dfs")
        self.daemons, self.perf = [], None

    def tearDown(self):
        if self.perf and self.perf.poll() is None:
            self.perf.kill()
            self.perf.wait()
        for d in self.daemons:
            d.kill()
            d.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_sigterm_under_load_keeps_every_acknowledged_write(self):
        for args in (["pool", "create", "p"], ["cont", "create", "p", "c", "--type", "POSIX"]):
            subprocess.run([DFS, "--dfs-root", self.root] + args, check=True, capture_output=True, timeout=30)
        port = nt.free_port()
        t = Daemon(self.dir, self.root, 1)
        self.daemons.append(t)
        t.rpc("nvmf_create_transport", "-t", "TCP")
        t.rpc("bdev_daos_create", "D0", "p", "c", NBLOCKS * BS >> 20, BS)
        t.rpc("bdev_daos_create", "D1", "p", "c", 64, BS)
        t.rpc("nvmf_create_subsystem", NQN, "-a", "-s", "SPDK00000000000001")
        t.rpc("nvmf_subsystem_add_ns", NQN, "D0")
        t.rpc("nvmf_subsystem_add_ns", NQN, "D1")
        t.rpc("nvmf_subsystem_add_listener", NQN, "-t", "tcp", "-a", "127.0.0.1", "-s", port)
        cfg = os.path.join(self.dir, "config.json")
        with open(cfg, "w") as f:
            f.write(t.rpc("save_config"))

        # The load: random 4 KiB writes at QD 32 on namespace 2, until the target goes away. Wait until it
        # runs (namespace 2's bdev counts writes); on a machine this busy its connect may time out (10 s
        # for the ICResp under ASan): start it again then, it is only the load.
        for attempt in range(3):
            self.perf = subprocess.Popen([PERF, "-r", "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:%d subnqn:%s"
                                          % (port, NQN), "-n", "2", "-q", "32", "-o", "4096", "-w", "randwrite",
                                          "-t", "60", "--no-progress"],
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(1200):
                st = json.loads(t.rpc("bdev_get_iostat", "-b", "D1"))
                if st["bdevs"][0]["num_write_ops"] > 1000 or self.perf.poll() is not None:
                    break
                time.sleep(0.05)
            if self.perf.poll() is None:
                break
            print("daosblk-perf (the load) ended at start, again:\n" + self.perf.communicate()[0])
        else:
            self.fail("daosblk-perf cannot start its load")
        self.assertGreater(json.loads(t.rpc("bdev_get_iostat", "-b", "D1"))["bdevs"][0]["num_write_ops"], 1000,
                           "daosblk-perf's writes do not arrive")

        seed = int(time.time())
        adm, io = sessions(port)
        inflight = {}      # cid -> lba
        acked, aborted = set(), set()
        submitted = 0
        next_lba = 0
        term_at = None     # acks before SIGTERM
        acked_after_term = 0
        can_submit = True

        def submit_one():
            nonlocal next_lba, submitted, can_submit
            cid = io.next_cid()
            lba = next_lba
            cmd = nt.sqe(0x01, cid, nsid=1, cdw10=lba, cdw11=0, cdw12=0, sgl_len=BS, incapsule=True)
            try:
                io.submit(cmd, block(lba, seed))
            except OSError:
                can_submit = False
                return
            inflight[cid] = lba
            next_lba += 1
            submitted += 1

        for _ in range(QD):
            submit_one()
        t0 = time.monotonic()
        while inflight:
            try:
                cpl = io.wait_cpl()
            except (nt.Closed, OSError):
                break
            self.assertIsInstance(cpl, nt.Cpl, "unexpected %r" % (cpl,))
            lba = inflight.pop(cpl.cid)
            if cpl.ok:
                acked.add(lba)
                if term_at is not None:
                    acked_after_term += 1
            else:
                self.assertEqual((cpl.sct, cpl.sc), (0, SC_ABORTED_SQ_DELETION),
                                 "write of LBA %d failed: %r" % (lba, cpl))
                aborted.add(lba)
            if term_at is None and len(acked) >= 500 and (time.monotonic() - t0 > 1.5 or len(acked) > NBLOCKS // 2):
                if self.perf.poll() is not None:
                    self.fail("the load ended early:\n" + self.perf.communicate()[0])
                t.proc.send_signal(signal.SIGTERM)
                term_at = len(acked)
            if can_submit and next_lba < NBLOCKS:
                submit_one()
        self.assertIsNotNone(term_at, "never got to SIGTERM (%d acknowledged)" % len(acked))
        io.close()
        adm.close()
        rc = t.proc.wait(timeout=60)
        self.assertEqual(rc, 0, "exit status %d after SIGTERM:\n%s" % (rc, t.text()))
        self.assertIn("SIGTERM received, shutting down", t.text())
        perf_out = self.perf.communicate(timeout=60)[0]
        print("writes submitted %d, acknowledged %d (%d after SIGTERM), aborted %d, unanswered %d; "
              "load: daosblk-perf exit %d" % (submitted, len(acked), acked_after_term, len(aborted),
                                              len(inflight), self.perf.returncode))
        print("daosblk-perf (the load):\n" + perf_out[-1500:])
        self.assertGreater(len(acked), 0)

        # Restart from the saved configuration and read every block that was written.
        t2 = Daemon(self.dir, self.root, 2, ["-c", cfg])
        self.daemons.append(t2)
        adm, io = sessions(port)
        zeros = bytes(BS)
        lost, torn = [], []
        per = 32
        for slba in range(0, next_lba, per):
            nlb = min(per, next_lba - slba)
            cpl, data = io.read(1, slba, nlb, BS)
            self.assertTrue(cpl.ok, "read of LBA %d: %r" % (slba, cpl))
            for i in range(nlb):
                lba = slba + i
                got = data[i * BS:(i + 1) * BS]
                if got == block(lba, seed):
                    continue
                if lba in acked:
                    lost.append(lba)
                elif got != zeros:
                    torn.append(lba)
        io.close()
        adm.close()
        self.assertEqual(lost, [], "%d acknowledged writes missing after the restart (first LBAs %s)"
                         % (len(lost), lost[:8]))
        self.assertEqual(torn, [], "blocks that are neither the new data nor zeros: %s" % torn[:8])
        t2.proc.send_signal(signal.SIGTERM)
        self.assertEqual(t2.proc.wait(timeout=60), 0, t2.text())


if __name__ == "__main__":
    unittest.main(verbosity=2)
