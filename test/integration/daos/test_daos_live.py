"""The DAOS bdev on a live DAOS only (DBK_DFS_ENGINE=daos; see backend.py): what the local engine
cannot show.

- a pool the user may not open fails bdev_daos_create with an error naming the pool and the
  permission, and leaves nothing registered;
- each reactor has its own pool connection, counted from DAOS's side (the pool service's
  open_pool_handles gauge, read with daos_metrics);
- a DAOS engine restart while the target serves: I/O gets an error or waits, the target neither
  hangs nor crashes, and I/O goes on once DAOS is back, without restarting daosblk.

Needs dmg with a control configuration that reaches the server (DBK_DAOS_DMG_CONFIG, default
$DBK_DAOS_PREFIX/etc/daos_control.yml) and daos_metrics on this node. Exits 77 (skipped) with the
reason otherwise.
"""

import json
import os
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
PREFIX = os.environ.get("DBK_DAOS_PREFIX", "")
DMG_CONFIG = os.environ.get("DBK_DAOS_DMG_CONFIG", os.path.join(PREFIX, "etc", "daos_control.yml"))


def dmg(*args, check=True, timeout=180):
    p = subprocess.run([os.path.join(PREFIX, "bin", "dmg"), "-o", DMG_CONFIG] + list(args) + ["--json"],
                       capture_output=True, text=True, timeout=timeout)
    out = json.loads(p.stdout) if p.stdout.strip().startswith("{") else {"error": p.stdout + p.stderr}
    if check and (p.returncode != 0 or out.get("error")):
        raise RuntimeError("dmg %s: %s" % (" ".join(args), out.get("error") or p.stderr))
    return out


def pool_uuid(label):
    p = subprocess.run([os.path.join(PREFIX, "bin", "daos"), "pool", "query", label, "--json"],
                       capture_output=True, text=True, timeout=60, check=True)
    return json.loads(p.stdout)["response"]["uuid"]


def open_pool_handles(uuid):
    """The pool service's gauge of pool handles held by clients (engine rank 0's telemetry)."""
    p = subprocess.run([os.path.join(PREFIX, "bin", "daos_metrics"), "-S", "0", "-C"],
                       capture_output=True, text=True, timeout=60, check=True)
    for line in p.stdout.splitlines():  # "ID: 0/pool/<uuid>/svc/open_pool_handles,<value>"
        if "/pool/%s/svc/open_pool_handles," % uuid in line:
            return int(line.strip().split(",")[1])
    raise AssertionError("no open_pool_handles metric for pool %s in daos_metrics output" % uuid)


def skip_reason():
    why = be.backend().skip_reason()
    if why:
        return why
    if be.engine_name() != "daos":
        return "a live-DAOS-only test: set DBK_DFS_ENGINE=daos"
    for tool in ("dmg", "daos_metrics"):
        if not os.access(os.path.join(PREFIX, "bin", tool), os.X_OK):
            return "no %s in %s/bin" % (tool, PREFIX)
    try:
        dmg("system", "query", timeout=60)
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as e:
        return "dmg system query failed with %s: %s" % (DMG_CONFIG, e)
    return None


class LiveDaos(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.be = be.backend().setup()
        cls.pool = cls.be.pool
        cls.cont = cls.be.create_cont("live")
        cls.port = nt.free_port()
        cls.tgt = nt.Target(mask="[0,1]", extra=cls.be.target_args())

    @classmethod
    def tearDownClass(cls):
        # After an engine restart the first DAOS RPC of each client context that talked to the old engine
        # waits out the RPC timeout (60 s by default) before DAOS retries it: teardown may take that long.
        rc = cls.tgt.stop(timeout=180)
        if rc != 0:
            print(cls.tgt.logtext()[-4000:], file=sys.stderr)
        cls.be.teardown()
        assert rc == 0, "daosblk-tgt exited with %d" % rc

    def bdevs(self):
        return sorted(b["name"] for b in self.tgt.rpc("bdev_get_bdevs"))

    def test_01_pool_without_permission(self):
        label = "%s-noperm" % self.be.tag
        dmg("pool", "create", label, "--size", "512MB")
        try:
            # the default ACL grants rw to OWNER@ and GROUP@ (root's group here): take both away
            dmg("pool", "delete-acl", label, "--principal", "OWNER@")
            dmg("pool", "delete-acl", label, "--principal", "GROUP@")
            with self.assertRaises(RuntimeError) as cm:
                self.tgt.rpc("bdev_daos_create", "d1", label, self.cont, 8, BS)
            msg = str(cm.exception)
            self.assertIn(label, msg)
            self.assertIn("permission", msg)
            self.assertEqual(self.bdevs(), [])
        finally:
            dmg("pool", "destroy", label, "--force", check=False)

    exported = False

    def export(self):
        if not type(self).exported:
            t = self.tgt
            t.rpc("nvmf_create_transport", "-t", "TCP")
            t.rpc("bdev_daos_create", "daosdev0", self.pool, self.cont, 64, BS)
            t.rpc("nvmf_create_subsystem", NQN, "-a", "-s", "SPDK00000000000001")
            t.rpc("nvmf_subsystem_add_ns", NQN, "daosdev0")
            t.rpc("nvmf_subsystem_add_listener", NQN, "-t", "tcp", "-a", "127.0.0.1", "-s", self.port)
            type(self).exported = True

    def test_02_connection_per_reactor(self):
        t = self.tgt
        uuid = pool_uuid(self.pool)
        before = open_pool_handles(uuid)
        self.export()
        admin, cntlid = nt.admin_session(self.port, NQN)
        q1 = nt.io_session(self.port, NQN, cntlid)
        q2 = nt.io_session(self.port, NQN, cntlid, qid=2)
        data = os.urandom(BS)
        self.assertTrue(q1.write_incapsule(1, 1, data, BS).ok)
        self.assertTrue(q2.write_incapsule(1, 2, data, BS).ok)
        info = t.rpc("bdev_get_bdevs", "-b", "daosdev0")[0]["driver_specific"]["daos"]
        self.assertEqual(info["channels"], 2, info)
        after = open_pool_handles(uuid)
        self.assertEqual(after - before, 2, "pool handles before %d, after %d" % (before, after))
        for h in (q1, q2, admin):
            h.close()

    def test_03_engine_restart(self):
        t = self.tgt
        self.export()
        admin, cntlid = nt.admin_session(self.port, NQN)
        q = nt.io_session(self.port, NQN, cntlid)
        data = os.urandom(BS)
        self.assertTrue(q.write_incapsule(1, 100, data, BS).ok)
        dmg("system", "stop", "--force")
        try:
            # While the engine is down: an I/O either fails with an NVMe error or waits; it never kills
            # the target, and the RPC server keeps answering.
            res = {}

            def io():
                try:
                    res["cpl"] = q.read(1, 100, 1, BS)[0]
                except Exception as e:  # noqa: BLE001 -- a dropped connection is also an answer
                    res["exc"] = e
            th = threading.Thread(target=io, daemon=True)
            th.start()
            th.join(20)
            self.assertTrue(t.alive(), "daosblk-tgt died with the DAOS engine down")
            t.rpc("bdev_get_bdevs", "-b", "daosdev0")
        finally:
            dmg("system", "start")
        deadline = time.time() + 240
        while time.time() < deadline:
            if all(m["state"] == "joined" for m in dmg("system", "query")["response"]["members"]):
                break
            time.sleep(2)
        th.join(240)
        self.assertFalse(th.is_alive(), "a read stayed unanswered 4 minutes after DAOS came back")
        self.assertTrue(t.alive())
        # I/O goes on without restarting daosblk: a new queue (the host side gave up on the old one), each
        # read given up to 60 s, tried again until DAOS answers.
        ok, last = False, None
        deadline = time.time() + 240
        while time.time() < deadline and not ok:
            try:
                h = nt.io_session(self.port, NQN, cntlid, qid=2)
                h.sock.settimeout(60)
                cpl, back = h.read(1, 100, 1, BS)
                ok = cpl.ok and back == data
                last = cpl
                h.close()
            except (OSError, AssertionError, RuntimeError) as e:
                last = e
                try:
                    admin.close()
                except OSError:
                    pass
                admin, cntlid = nt.admin_session(self.port, NQN)
            if not ok:
                time.sleep(3)
        print("first good read after the restart: %s (last answer %r)" % (ok, last))
        self.assertTrue(ok, "reads did not come back after the DAOS engine restart")
        admin.close()


if __name__ == "__main__":
    why = skip_reason()
    if why:
        print("SKIPPED: %s" % why)
        sys.exit(be.SKIP)
    unittest.main(verbosity=2)
