"""Fault campaign: the local engine's file system fills up, and fails.

ENOSPC: the daemon's --dfs-root is a small tmpfs (mounted here, removed at the
end) holding a 64 MiB sparse DAOS bdev and a ballast file. A host writes until
the space runs out: the failing write completes with Capacity Exceeded (SCT 0,
SC 0x81, DNR), as Linux nvmet reports ENOSPC; later writes keep getting it; the
target keeps serving (reads, FLUSH, admin commands, a malloc namespace beside
it); every block written before reads back intact; once the ballast is removed
writes succeed again.

EIO: the --dfs-root is an ext4 on a loop device made here. After blocks are
written and FLUSHed, the file system is shut down (EXT4_IOC_SHUTDOWN, what
xfs_io's "shutdown" and a dying disk give: every later I/O on it fails with
EIO). The FLUSH completes with Internal Error (SCT 0, SC 0x06, DNR; nvmet's
choice for EIO), and so does every write and every read of a block not in the
page cache after that FLUSH. Writes between the failure and the FLUSH depend on the
engine's mode: with writes through the file's mapping (DBK_DFS_LOCAL_MMAP=rw,
the default) the kernel still takes a copy into the page cache of a shut-down
ext4, so they may be acknowledged, as a disk with a volatile write cache
acknowledges writes it cannot keep, and the FLUSH that follows reports the
loss; with writes by syscall (=read) they fail at once. The malloc namespace
and the admin queue keep working, and SIGINT still stops the daemon cleanly.
The file system is then unmounted and mounted again, a new daemon re-creates
the bdev, and every block FLUSHed before the failure reads back intact.

Needs root (mount, losetup, mkfs.ext4); without them the test exits 77 with
the reason.
"""

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults_lib as fl  # noqa: E402
from faults_lib import nt  # noqa: E402

BS = 4096
SEED = 0x5EED
EXT4_IOC_SHUTDOWN = 0x8004587D  # _IOR('X', 125, __u32)
EXT4_GOING_FLAGS_NOLOGFLUSH = 0x2


def run(*args, check=True):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), (p.stderr or p.stdout).strip()))
    return p


def dfs(root, *args):
    exe = os.path.join(fl.build_dir(), "tools", "dfs", "daosblk-dfs")
    return run(exe, "--dfs-root", root, *args)


def skip(reason):
    print("SKIP: " + reason)
    sys.exit(fl.SKIP)


class FsErrors(unittest.TestCase):
    def setUp(self):
        self.mounts = []
        self.loops = []
        self.dirs = []
        self.d = None
        self.port = nt.free_port()

    def tearDown(self):
        if self.d is not None and self.d.alive():
            self.d.kill9()
        for m in reversed(self.mounts):
            run("umount", m, check=False)
        for lo in self.loops:
            run("losetup", "-d", lo, check=False)
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)

    def tmpdir(self, what):
        d = tempfile.mkdtemp(prefix="dbk-faults-%s-" % what)
        self.dirs.append(d)
        return d

    def start(self, root, env=None):
        self.d = fl.Daemon(mask="0x1", extra=("--dfs-root", root), env=env)
        d = self.d
        d.rpc("nvmf_create_transport", "-t", "TCP", "-u", 16384, "-i", 131072, "-c", 8192)
        d.rpc("bdev_malloc_create", 8, BS, "-b", "Malloc0")
        return d

    def export(self, d):
        d.rpc("nvmf_create_subsystem", fl.NQN, "-a", "-s", "SPDK00000000000001")
        d.rpc("nvmf_subsystem_add_ns", fl.NQN, "daosdev0")   # NSID 1
        d.rpc("nvmf_subsystem_add_ns", fl.NQN, "Malloc0")    # NSID 2
        d.rpc("nvmf_subsystem_add_listener", fl.NQN, "-t", "tcp", "-a", "127.0.0.1", "-s", self.port)
        a, cntlid = fl.admin(self.port)
        q = fl.IoHost.open(self.port, cntlid, incapsule=8192)
        return a, q

    def cmd(self, q, fn, *args):
        fn(*args)
        _, cpl, data = q.reap()
        return cpl, data

    def write(self, q, ns, lba, nlb, version):
        data = b"".join(fl.pattern(lba + i, version, SEED, BS) for i in range(nlb))
        return self.cmd(q, q.submit_write, ns, lba, data, BS)[0]

    def read_check(self, q, ns, lba, nlb, version, what):
        cpl, data = self.cmd(q, q.submit_read, ns, lba, nlb, BS)
        self.assertTrue(cpl.ok, "%s: read of %d+%d: %s" % (what, lba, nlb, fl.status_name(cpl)))
        for i in range(nlb):
            got = fl.check_block(data[i * BS:(i + 1) * BS], BS)
            self.assertEqual(got, (lba + i, version, SEED), "%s: block %d damaged (found %r)" % (what, lba + i, got))

    def still_serving(self, a, q, what):
        """The malloc namespace and the admin queue work."""
        self.assertTrue(self.write(q, 2, 7, 2, 99).ok, what + ": malloc write")
        self.read_check(q, 2, 7, 2, 99, what + ": malloc")
        cpl, _ = a.identify(1)
        self.assertTrue(cpl.ok, what + ": Identify Controller %r" % cpl)
        self.assertTrue(self.d.alive())

    def expect_status(self, cpl, sct, sc, what):
        self.assertEqual((cpl.sct, cpl.sc), (sct, sc), "%s: got %s" % (what, fl.status_name(cpl)))
        self.assertTrue(cpl.dnr, "%s: %s without DNR (a host would retry it in vain)" % (what, fl.status_name(cpl)))

    # ---------------------------------------------------------------- ENOSPC
    def test_enospc(self):
        mnt = self.tmpdir("enospc")
        p = run("mount", "-t", "tmpfs", "-o", "size=6m,mode=0700", "dbk-faults-enospc", mnt, check=False)
        if p.returncode != 0:
            skip("cannot mount a tmpfs (%s): needs root" % p.stderr.strip())
        self.mounts.append(mnt)
        dfs(mnt, "pool", "create", "test-pool")
        dfs(mnt, "cont", "create", "test-pool", "full-cont", "--type", "POSIX")
        ballast = os.path.join(mnt, "ballast")
        with open(ballast, "wb") as f:
            f.write(b"\xff" * (1024 * 1024))
        d = self.start(mnt)
        d.rpc("bdev_daos_create", "daosdev0", "test-pool", "full-cont", 64, BS)
        a, q = self.export(d)

        nlb = 16  # 64 KiB writes, after R2T
        acked = []
        lba = 0
        failed = None
        while lba + nlb <= 64 * 256:
            cpl = self.write(q, 1, lba, nlb, 1)
            if not cpl.ok:
                failed = cpl
                break
            acked.append(lba)
            lba += nlb
        self.assertIsNotNone(failed, "a 6 MiB tmpfs took 64 MiB of writes")
        fl.log("ENOSPC after %d KiB written: %s" % (len(acked) * nlb * 4, fl.status_name(failed)))
        self.assertGreater(len(acked), 8)
        self.expect_status(failed, 0, 0x81, "the write that hit ENOSPC")
        # It stays full: more writes (in-capsule and R2T) fail the same way, nothing crashes.
        for n in (1, 2, 16):
            self.expect_status(self.write(q, 1, lba + 32, n, 2), 0, 0x81, "a write to the full file system")
        self.still_serving(a, q, "full file system")
        cpl, _ = self.cmd(q, q.submit_flush, 1)
        self.assertTrue(cpl.ok, "FLUSH on the full file system: %s" % fl.status_name(cpl))
        for s in acked:
            self.read_check(q, 1, s, nlb, 1, "full file system")
        # Space comes back: the same namespace takes writes again.
        os.unlink(ballast)
        self.assertTrue(self.write(q, 1, lba, nlb, 3).ok, "a write after space was freed")
        self.read_check(q, 1, lba, nlb, 3, "after space was freed")
        for s in acked:
            self.read_check(q, 1, s, nlb, 1, "after space was freed")
        q.close()
        a.close()
        rc = d.stop()
        self.assertEqual(rc, 0, "daosblk-tgt exited with %d:\n%s" % (rc, d.tail()))

    # ---------------------------------------------------------------- EIO
    def test_eio(self):
        self.eio(None)

    def test_eio_syscall_writes(self):
        self.eio("read")

    def eio(self, mmap_mode):
        env = {"DBK_DFS_LOCAL_MMAP": mmap_mode} if mmap_mode else None
        work = self.tmpdir("eio")
        img = os.path.join(work, "fs.img")
        mnt = os.path.join(work, "mnt")
        os.mkdir(mnt)
        with open(img, "wb") as f:
            f.truncate(64 * 1024 * 1024)
        p = run("losetup", "-f", "--show", img, check=False)
        if p.returncode != 0:
            skip("no loop device (%s): needs root and loop support" % p.stderr.strip())
        lo = p.stdout.strip()
        self.loops.append(lo)
        run("mkfs.ext4", "-q", "-F", lo)
        p = run("mount", "-t", "ext4", lo, mnt, check=False)
        if p.returncode != 0:
            skip("cannot mount ext4 on %s (%s)" % (lo, p.stderr.strip()))
        self.mounts.append(mnt)
        dfs(mnt, "pool", "create", "test-pool")
        dfs(mnt, "cont", "create", "test-pool", "eio-cont", "--type", "POSIX")
        d = self.start(mnt, env)
        d.rpc("bdev_daos_create", "daosdev0", "test-pool", "eio-cont", 16, BS)
        a, q = self.export(d)
        ranges = [(0, 16), (100, 1), (1000, 32), (4000, 2)]
        for s, n in ranges:
            self.assertTrue(self.write(q, 1, s, n, 1).ok)
        cpl, _ = self.cmd(q, q.submit_flush, 1)
        self.assertTrue(cpl.ok, "FLUSH before the failure: %s" % fl.status_name(cpl))
        for s, n in ranges:
            self.read_check(q, 1, s, n, 1, "before the failure")

        fd = os.open(mnt, os.O_RDONLY)
        try:
            fcntl.ioctl(fd, EXT4_IOC_SHUTDOWN, EXT4_GOING_FLAGS_NOLOGFLUSH.to_bytes(4, "little"))
        except OSError as e:
            skip("EXT4_IOC_SHUTDOWN refused: %s" % e)
        finally:
            os.close(fd)
        fl.log("ext4 on %s shut down: its I/O now fails with EIO" % lo)
        early = [self.write(q, 1, 200, 1, 2), self.write(q, 1, 300, 16, 2)]
        for cpl, what in zip(early, ("an in-capsule write after EIO", "an R2T write after EIO")):
            if mmap_mode == "read" or not cpl.ok:
                self.expect_status(cpl, 0, 0x06, what)
        fl.log("writes before the FLUSH: %s" % ", ".join(fl.status_name(c) for c in early))
        if mmap_mode == "read":
            # The failed writes took the mapping out of service: the read goes by syscall, which reports EIO.
            cpl, _ = self.cmd(q, q.submit_read, 1, 2000, 8, BS)  # never read before: not in the page cache
            self.expect_status(cpl, 0, 0x06, "a read after EIO")
        cpl, _ = self.cmd(q, q.submit_flush, 1)
        self.expect_status(cpl, 0, 0x06, "a FLUSH after EIO")
        # After the failed FLUSH the mapping serves nothing: no copies into or out of the page cache of the
        # dead file system (a fault on a hole would read zeros without asking the disk).
        cpl, _ = self.cmd(q, q.submit_read, 1, 3000, 8, BS)
        self.expect_status(cpl, 0, 0x06, "a read after the failed FLUSH")
        self.expect_status(self.write(q, 1, 400, 1, 2), 0, 0x06, "an in-capsule write after the failed FLUSH")
        self.expect_status(self.write(q, 1, 500, 16, 2), 0, 0x06, "an R2T write after the failed FLUSH")
        self.expect_status(self.write(q, 1, 200, 1, 3), 0, 0x06, "a rewrite after the failed FLUSH")
        self.still_serving(a, q, "after EIO")
        q.close()
        a.close()
        rc = d.stop()
        self.assertEqual(rc, 0, "daosblk-tgt exited with %d on a failed file system:\n%s" % (rc, d.tail()))

        # Nothing FLUSHed before the failure is damaged.
        run("umount", mnt)
        self.mounts.remove(mnt)
        run("mount", "-t", "ext4", lo, mnt)
        self.mounts.append(mnt)
        d = self.start(mnt)
        d.rpc("bdev_daos_create", "daosdev0", "test-pool", "eio-cont", 16, BS)
        a, q = self.export(d)
        for s, n in ranges:
            self.read_check(q, 1, s, n, 1, "after the remount")
        q.close()
        a.close()
        rc = d.stop()
        self.assertEqual(rc, 0, "daosblk-tgt exited with %d:\n%s" % (rc, d.tail()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
