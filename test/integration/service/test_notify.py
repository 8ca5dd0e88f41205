"""daosblk-tgt and systemd's Type=notify protocol, against a real notify socket of our own (what systemd
does: an AF_UNIX datagram socket named by $NOTIFY_SOCKET, sender checked by its credentials).

- READY=1 comes once the RPC socket answers and the -c configuration is applied: at that moment, with no
  retry, RPCs work, the subsystem has its namespace and the configured listener accepts connections.
  The configuration is the shipped example packaging/examples/seed.json (a DAOS bdev on the local engine).
- STOPPING=1 comes at SIGTERM, before the daemon exits 0.
- an abstract socket name (@...) works; an empty -c file starts the target with no configuration.
- a missing -c file, or one whose entry fails, ends the start with an error and never sends READY=1.
- a NOTIFY_SOCKET that is not a socket address is reported and does not stop the target.
"""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "nvmf"))
import nvmetcp as nt  # noqa: E402

BUILD = os.environ["DBK_BUILD_DIR"]
SRC = os.environ.get("DBK_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
TGT = os.path.join(BUILD, "app", "daosblk-tgt")
RPC = os.path.join(BUILD, "tools", "rpc", "daosblk-rpc")
DFS = os.path.join(BUILD, "tools", "dfs", "daosblk-dfs")
NQN = "nqn.2016-06.io.spdk:cnode1"


class Notify:
    """A notify socket as systemd has it: datagrams with the sender's credentials."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(address)

    def recv(self, timeout):
        """(pid, {KEY: VALUE}) of the next datagram, or None after timeout seconds."""
        self.sock.settimeout(timeout)
        try:
            data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            return None
        pid = None
        for level, typ, cdata in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", cdata[:12])[0]
        fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
        return pid, fields

    def close(self):
        self.sock.close()


class TargetNotify(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="dbk-notify-")
        self.rpc_sock = os.path.join(self.dir, "rpc.sock")
        self.proc = None
        self.log = None

    def tearDown(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.log:
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, notify_socket, args):
        env = dict(os.environ, NOTIFY_SOCKET=notify_socket)
        self.log = open(os.path.join(self.dir, "tgt.log"), "w+")
        self.proc = subprocess.Popen([TGT, "-m", "0x1", "-r", self.rpc_sock] + args, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def logtext(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def rpc(self, *args):
        p = subprocess.run([RPC, "-s", self.rpc_sock, "-t", "5"] + list(args), capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0, "daosblk-rpc %s: %s" % (args, p.stderr))
        return json.loads(p.stdout) if p.stdout.strip() else None

    def expect_ready(self, n):
        msg = n.recv(60)
        self.assertIsNotNone(msg, "no READY=1 within 60 s; log:\n" + self.logtext())
        pid, fields = msg
        self.assertEqual(fields.get("READY"), "1", "first message is not READY=1: %r" % fields)
        self.assertEqual(pid, self.proc.pid, "READY=1 not sent by the daemon's process")

    def sigterm_expect_stopping(self, n):
        self.proc.send_signal(signal.SIGTERM)
        msg = n.recv(30)
        self.assertIsNotNone(msg, "no STOPPING=1 after SIGTERM; log:\n" + self.logtext())
        self.assertEqual(msg[1].get("STOPPING"), "1", "expected STOPPING=1, got %r" % (msg[1],))
        self.assertEqual(msg[0], self.proc.pid)
        self.assertEqual(self.proc.wait(timeout=30), 0, "exit status after SIGTERM; log:\n" + self.logtext())
        self.assertIsNone(n.recv(0.2), "more messages after STOPPING=1")

    def test_ready_after_config_then_stopping(self):
        root = os.path.join(self.dir, "dfs")
        for args in (["pool", "create", "test-pool"], ["cont", "create", "test-pool", "test-cont", "--type", "POSIX"]):
            subprocess.run([DFS, "--dfs-root", root] + args, check=True, capture_output=True, timeout=30)
        port = nt.free_port()
        with open(os.path.join(SRC, "packaging", "examples", "seed.json")) as f:
            cfg = f.read()
        self.assertIn('"trsvcid": "4420"', cfg)
        cfg_path = os.path.join(self.dir, "seed.json")
        with open(cfg_path, "w") as f:
            f.write(cfg.replace('"trsvcid": "4420"', '"trsvcid": "%d"' % port))
        n = Notify(os.path.join(self.dir, "notify.sock"))
        try:
            self.start(n.sock.getsockname(), ["-c", cfg_path, "--dfs-root", root])
            self.expect_ready(n)
            # Right now, no retry: RPC answers, the configuration is in, the listener listens.
            subs = self.rpc("nvmf_get_subsystems")
            cnode = [s for s in subs if s["nqn"] == NQN]
            self.assertEqual(len(cnode), 1, subs)
            self.assertEqual([ns["bdev_name"] for ns in cnode[0]["namespaces"]], ["daosdev0"])
            self.assertEqual(cnode[0]["listen_addresses"][0]["trsvcid"], str(port))
            h, _ = nt.admin_session(port, NQN)
            h.close()
            self.sigterm_expect_stopping(n)
        finally:
            n.close()
        self.assertFalse(os.path.exists(self.rpc_sock))

    def test_abstract_socket_and_empty_config(self):
        name = "dbk-notify-test-%d" % os.getpid()
        cfg_path = os.path.join(self.dir, "empty.json")
        open(cfg_path, "w").close()
        n = Notify("\0" + name)
        try:
            self.start("@" + name, ["-c", cfg_path])
            self.expect_ready(n)
            self.assertEqual(self.rpc("bdev_get_bdevs"), [])
            self.assertIn("is empty: starting with no configuration", self.logtext())
            self.sigterm_expect_stopping(n)
        finally:
            n.close()

    def test_no_ready_when_the_start_fails(self):
        bad = os.path.join(self.dir, "bad.json")
        with open(bad, "w") as f:
            json.dump({"subsystems": [{"subsystem": "bdev", "config": [
                {"method": "bdev_malloc_create", "params": {"name": "A", "num_blocks": 8, "block_size": 1000}}]}]}, f)
        for cfg, text in ((os.path.join(self.dir, "missing.json"), "missing.json: cannot open"),
                          (bad, "entry 0 (bdev_malloc_create) failed")):
            n = Notify(os.path.join(self.dir, "notify.sock"))
            try:
                self.start(n.sock.getsockname(), ["-c", cfg])
                rc = self.proc.wait(timeout=60)
                self.assertNotEqual(rc, 0, "start with %s succeeded" % cfg)
                self.assertIn(text, self.logtext())
                msg = n.recv(0.5)
                self.assertTrue(msg is None or msg[1].get("READY") != "1", "READY=1 sent for a failed start")
            finally:
                n.close()
                os.unlink(os.path.join(self.dir, "notify.sock"))
                self.log.close()
                self.log = None

    def test_bad_notify_socket_is_reported(self):
        self.start("relative/notify.sock", [])
        for _ in range(600):
            if "ready (reactors" in self.logtext():
                break
            self.assertIsNone(self.proc.poll(), "daemon exited: " + self.logtext())
            time.sleep(0.05)
        self.assertIn("cannot notify the service manager (NOTIFY_SOCKET=relative/notify.sock)", self.logtext())
        self.rpc("spdk_get_version")
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(timeout=30), 0)
        self.assertEqual(self.logtext().count("cannot notify"), 1, "warned more than once:\n" + self.logtext())


if __name__ == "__main__":
    unittest.main(verbosity=2)
