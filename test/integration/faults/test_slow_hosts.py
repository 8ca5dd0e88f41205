"""Fault campaign: hosts that stall never stall the other hosts of their reactor.

The daemon has one reactor, so every host below shares it:
  - a zero-window host: a 4 KiB receive buffer, two I/O queues each with 127
    reads of 128 KiB outstanding (a DAOS bdev, whose reads are sent from the
    transport's buffer pool, and a malloc bdev, whose reads are sent from lent
    bdev memory), and it never reads;
  - a host with 100 writes of 128 KiB whose R2Ts it never answers (their
    buffers come from the same pool);
  - a host that sends its ICReq one byte per second, and one that sends a
    write capsule one byte per second.
Meanwhile a second host does verified writes and reads on both namespaces: each
command must complete (a liveness bound of 10 s a command, DBK_FAULTS_STALL_S;
no speed is asserted) and read back what was written. When the zero-window host
finally reads, it gets its data intact or a closed connection, never garbage;
once all are gone the pools are at rest.
"""

import os
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults_lib as fl  # noqa: E402
from faults_lib import nt  # noqa: E402

from slow_common import Base, Trickle, small_rcvbuf_host, BS, SEED, STALL_S, DURATION  # noqa: E402


class SlowHosts(Base):
    def test_slow_hosts(self):
        d = self.start()
        # Known data for the zero-window host to read back later.
        a0, cntlid0 = fl.admin(self.port)
        q0 = fl.IoHost.open(self.port, cntlid0, incapsule=8192)
        for ns in (1, 2):
            for lba in range(8192, 8192 + 32 * 127, 32):
                q0.submit_write(ns, lba, b"".join(fl.pattern(lba + i, 7, SEED, BS) for i in range(32)), BS)
                _, cpl, _ = q0.reap()
                self.assertTrue(cpl.ok)
        q0.close()
        a0.close()

        # The zero-window host.
        sa, scnt = fl.admin(self.port)
        slow = []
        for qid, ns in ((1, 1), (2, 2)):
            h = small_rcvbuf_host(self.port)
            h.connect_ic()
            cpl = h.fabric_connect(fl.NQN, fl.HOSTNQN, qid=qid, sqsize=127, cntlid=scnt, kato=0)
            self.assertTrue(cpl.ok, cpl)
            for lba in range(8192, 8192 + 32 * 127, 32):
                h.submit_read(ns, lba, 32, BS)
            slow.append((h, ns))
        # ... and a host that gets R2Ts for 100 writes of 128 KiB and never sends their data.
        silent = fl.IoHost.open(self.port, scnt, qid=3, sqsize=127)
        for lba in range(0, 32 * 100, 32):
            silent.submit(nt.sqe(0x01, silent._cid(), nsid=1, cdw10=20000 + lba, cdw12=31, sgl_len=32 * BS))
        trickles = [Trickle(self.port, struct.pack("<BBBBI", nt.IC_REQ, 0, 128, 0, 128) + b"\0" * 120)]
        cap = nt.sqe(0x01, 1, nsid=1, cdw10=0, cdw12=0, sgl_len=BS, incapsule=True)
        ic = struct.pack("<BBBBI", nt.IC_REQ, 0, 128, 0, 128) + b"\0" * 120
        trickles.append(Trickle(self.port, struct.pack("<BBBBI", nt.CAPSULE_CMD, 0, 72, 72, 72 + BS) + cap, ic))
        for t in trickles:
            t.start()
        time.sleep(0.5)
        fl.log("zero-window host: %d reads of 128 KiB outstanding; trickling hosts started" % (127 * len(slow)))
        stats = d.rpc("nvmf_get_stats")["poll_groups"][0]["transports"][0]
        fl.log("transport buffers while they stall: %d free of %d, %d requests waiting; moved out of the pool: "
               "%d read payloads, %d writes" % (stats["free_buffers"], stats["total_buffers"],
                                                stats["pending_buffer_requests"], stats["pool_reads_bounced"],
                                                stats["pool_writes_bounced"]))

        ops, worst = self.verified_io(DURATION, "beside a zero-window host")
        fl.log("second host: %d verified commands in %d s beside the stalled hosts, slowest %.3f s" %
               (ops, DURATION, worst))
        self.assertGreater(ops, 0)
        for t in trickles:
            t.stop.set()
        for t in trickles:
            t.join()

        # The zero-window host reads at last: its data, intact, or a closed connection.
        for h, ns in slow:
            got = 0
            try:
                h.sock.settimeout(STALL_S)
                while h.pending:
                    cid, cpl, data = h.reap()
                    self.assertTrue(cpl.ok, fl.status_name(cpl))
                    lba = struct.unpack_from("<Q", data, 8)[0]
                    for i in range(32):
                        self.assertEqual(fl.check_block(data[i * BS:(i + 1) * BS], BS), (lba + i, 7, SEED))
                    got += 1
            except (nt.Closed, ConnectionError):
                pass
            fl.log("zero-window host, ns %d: %d reads completed intact when it read again" % (ns, got))
            h.close()
        silent.close()
        sa.close()
        pools, bad = fl.wait_at_rest(d)
        self.assertEqual(bad, [], "pools not at rest: %s" % bad)
        rc = d.stop()
        self.assertEqual(rc, 0, "daosblk-tgt exited with %d:\n%s" % (rc, d.tail()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
