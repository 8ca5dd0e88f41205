"""Fault campaign: SIGKILL under verified write load, 20 times (DBK_FAULTS_SCALE scales it).

A host writes self-describing blocks {magic, LBA, version, seed} (1-8 blocks a
write, 16 in flight, never two on one block; the larger ones after R2T) to a
DAOS bdev and sends a FLUSH every few dozen writes. For each block it records
the last version acknowledged before a FLUSH was submitted whose completion it
then saw: that version is durable. At a random moment the daemon gets SIGKILL;
it is restarted from the configuration saved at the start (daosblk-tgt -c), and
every block of the region is read back: each must be an intact pattern of its
own LBA with a version at least the durable one (a later write, acknowledged
or still in flight at the kill, may have landed too; a block never durably
written may read zeros). Then the next round writes on.

DBK_DFS_ENGINE=daos runs it on a live DAOS (test/integration/daos/backend.py),
and exits 77 with the reason when no DAOS answers.
"""

import os
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults_lib as fl  # noqa: E402
from faults_lib import nt  # noqa: E402

BS = 4096
ROUNDS = fl.scale(int(os.environ.get("DBK_FAULTS_KILL_ROUNDS", "20")), floor=5)
SEED = int(os.environ.get("DBK_FAULTS_SEED", "0")) or random.randrange(1, 1 << 30)
REGION = 2048  # blocks (8 MiB)
QD = 16
FLUSH_EVERY = 40


class Kill9(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.be = fl.be.backend()
        reason = cls.be.skip_reason()
        if reason:
            print("SKIP: " + reason)
            sys.exit(fl.SKIP)
        cls.be.setup()
        cls.cont = cls.be.create_cont("kill9-cont")
        cls.port = nt.free_port()
        cls.d = None

    @classmethod
    def tearDownClass(cls):
        if cls.d is not None and cls.d.alive():
            cls.d.kill9()
        cls.be.teardown()

    def start(self, config=None):
        type(self).d = fl.Daemon(mask="0x1", extra=self.be.target_args(), config=config,
                                 workdir=getattr(self, "workdir", None), tag="tgt%d" % self.starts)
        self.workdir = self.d.dir
        self.starts += 1
        return self.d

    # ------------------------------------------------------------------ state
    def reset_state(self):
        self.written = {}   # lba -> set of versions ever submitted
        self.durable = {}   # lba -> version acknowledged before a completed FLUSH
        self.version = 0
        self.flushes = 0
        self.acked_writes = 0

    def verify(self, q, rnd):
        damaged = []
        checked = 0
        for slba in range(0, REGION, 32):
            q.submit_read(1, slba, 32, BS)
            _, cpl, data = q.reap()
            self.assertTrue(cpl.ok, "round %d: read of %d+32 after the restart: %s" % (rnd, slba, fl.status_name(cpl)))
            for i in range(32):
                lba = slba + i
                blk = data[i * BS:(i + 1) * BS]
                got = fl.check_block(blk, BS)
                dur = self.durable.get(lba, 0)
                if got == "zero":
                    ok = dur == 0
                elif got is None:
                    ok = False
                else:
                    glba, gver, gseed = got
                    ok = glba == lba and gseed == SEED and gver >= dur and gver in self.written.get(lba, ())
                if not ok:
                    damaged.append("lba %d: found %r, durable version %d, written %s" %
                                   (lba, got, dur, sorted(self.written.get(lba, ()))[-5:]))
                checked += 1
        self.assertEqual(damaged, [], "round %d (seed %d): %d of %d blocks lost or damaged after SIGKILL:\n%s" %
                         (rnd, SEED, len(damaged), checked, "\n".join(damaged[:20])))
        return checked

    def write_until_killed(self, q, rng, kill_at):
        """Writes and flushes until the connection dies; returns why it stopped."""
        busy = set()         # blocks with a write in flight
        inflight = {}        # cid -> ("w", lba, nlb, version) | ("f", snapshot)
        acked = {}           # lba -> last acknowledged version
        killer = threading.Timer(kill_at, self.d.kill9)
        killer.start()
        since_flush = 0
        try:
            while True:
                while len(inflight) < QD:
                    if since_flush >= FLUSH_EVERY:
                        cid = q.submit_flush(1)
                        inflight[cid] = ("f", dict(acked))
                        since_flush = 0
                        continue
                    nlb = rng.choice((1, 1, 1, 2, 4, 8))
                    lba = rng.randrange(0, REGION - nlb + 1)
                    if any(b in busy for b in range(lba, lba + nlb)):
                        continue
                    self.version += 1
                    v = self.version
                    data = b"".join(fl.pattern(lba + i, v, SEED, BS) for i in range(nlb))
                    for b in range(lba, lba + nlb):
                        busy.add(b)
                        self.written.setdefault(b, set()).add(v)
                    cid = q.submit_write(1, lba, data, BS)
                    inflight[cid] = ("w", lba, nlb, v)
                    since_flush += 1
                cid, cpl, _ = q.reap()
                what = inflight.pop(cid)
                self.assertTrue(cpl.ok, "%s failed under load: %s" % ("write" if what[0] == "w" else "flush",
                                                                     fl.status_name(cpl)))
                if what[0] == "w":
                    _, lba, nlb, v = what
                    for b in range(lba, lba + nlb):
                        busy.discard(b)
                        acked[b] = v
                    self.acked_writes += 1
                else:
                    for b, v in what[1].items():
                        if v > self.durable.get(b, 0):
                            self.durable[b] = v
                    self.flushes += 1
        except (nt.Closed, ConnectionError, OSError) as e:
            return repr(e)
        finally:
            killer.cancel()
            killer.join()

    def test_kill9(self):
        rng = random.Random(SEED)
        self.starts = 0
        self.reset_state()
        d = self.start()
        d.rpc("nvmf_create_transport", "-t", "TCP", "-u", 16384, "-i", 131072, "-c", 8192)
        d.rpc("bdev_daos_create", "daosdev0", self.be.pool, self.cont, 64, BS)
        d.rpc("nvmf_create_subsystem", fl.NQN, "-a", "-s", "SPDK00000000000001")
        d.rpc("nvmf_subsystem_add_ns", fl.NQN, "daosdev0")
        d.rpc("nvmf_subsystem_add_listener", fl.NQN, "-t", "tcp", "-a", "127.0.0.1", "-s", self.port)
        cfg = os.path.join(self.workdir, "saved.json")
        with open(cfg, "w") as f:
            f.write(d.rpc_text("save_config"))
        fl.log("kill -9: %d rounds, seed %d, engine %s" % (ROUNDS, SEED, self.be.name))
        t0 = time.time()
        for rnd in range(ROUNDS):
            a, cntlid = fl.admin(self.port)
            q = fl.IoHost.open(self.port, cntlid, sqsize=QD + 4, incapsule=8192)
            checked = self.verify(q, rnd)
            why = self.write_until_killed(q, rng, rng.uniform(0.2, 1.2))
            q.close()
            a.close()
            self.assertFalse(self.d.alive())
            fl.log("round %d: %d blocks intact; then %d writes acked, %d flushes completed, %d blocks durable; "
                   "killed (%s)" % (rnd, checked, self.acked_writes, self.flushes, len(self.durable), why[:60]))
            self.start(config=cfg)
        # The last restart: everything durable is there, and the target stops cleanly.
        a, cntlid = fl.admin(self.port)
        q = fl.IoHost.open(self.port, cntlid)
        self.verify(q, ROUNDS)
        q.close()
        a.close()
        fl.log("%d rounds in %.1f s" % (ROUNDS, time.time() - t0))
        self.assertGreater(self.flushes, ROUNDS // 2, "too few flushes completed to prove anything")
        self.assertGreater(len(self.durable), REGION // 4)
        rc = self.d.stop()
        self.assertEqual(rc, 0, "daosblk-tgt exited with %d:\n%s" % (rc, self.d.tail()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
