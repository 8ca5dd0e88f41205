"""SPDK rpc.py compatibility, without SPDK.

The request objects below are the JSON-RPC params SPDK's scripts/rpc.py sent (captured with
`rpc.py --verbose DEBUG`) for the seed workflow and every other method daosblk implements, with
rpc.py's default arguments. rpc.py adds parameters of its own (no_srq, passthrough, hide_metadata,
with_batches, ...) that must be accepted; this test replays them verbatim over the Unix socket
against the real daosblk-tgt and checks each result and its shape. It then replays the config
rpc.py's save_config produced (load_config sends each entry as is) into a fresh daemon and checks
it saves back identically. Unknown parameters must still be rejected.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "nvmf"))
import nvmetcp as nt  # noqa: E402

NQN = "nqn.2016-06.io.spdk:cnode1"
HOST = "nqn.2014-08.org.nvmexpress:uuid:8c2a3b6e-5d1f-4f0a-9e7b-3c1d2e4f5a6b"
PORT = "@PORT@"       # replaced by a free loopback port
URING = "@URING@"     # replaced by a temporary file

# (method, params exactly as rpc.py sent them, or None when rpc.py sent no params)
SEED = [
    ("nvmf_create_transport",
     {"no_srq": False, "c2h_success": True, "trtype": "TCP", "max_io_size": 2097152, "io_unit_size": 2097152,
      "zcopy": False, "dif_insert_or_strip": False, "no_wr_batching": False, "disable_mappable_bar0": False,
      "disable_adaptive_irq": False, "disable_shadow_doorbells": False, "disable_command_passthru": False}),
    ("bdev_daos_create",
     {"num_blocks": 16384, "block_size": 4096, "name": "daosdev0", "pool": "test-pool", "cont": "test-cont"}),
    ("nvmf_create_subsystem",
     {"nqn": NQN, "serial_number": "SPDK00000000000001", "model_number": "SPDK_Virtual_Controller_1",
      "allow_any_host": True, "ana_reporting": False, "passthrough": False, "enable_nssr": False}),
    ("nvmf_subsystem_add_ns",
     {"nqn": NQN, "namespace": {"bdev_name": "daosdev0", "no_auto_visible": False, "hide_metadata": False}}),
    ("nvmf_subsystem_add_listener",
     {"nqn": NQN, "secure_channel": False,
      "listen_address": {"trtype": "tcp", "traddr": "127.0.0.1", "trsvcid": PORT}}),
]

MORE = [
    ("bdev_get_bdevs", None),
    ("bdev_get_bdevs", {"name": "daosdev0"}),
    ("bdev_get_iostat", {"per_channel": False}),
    ("bdev_get_iostat", {"per_channel": True}),
    ("bdev_malloc_create", {"num_blocks": 16384, "block_size": 512, "name": "Malloc0", "md_interleave": False,
                            "dif_is_head_of_md": False}),
    ("bdev_null_create", {"num_blocks": 16384, "block_size": 512, "name": "Null0", "dif_is_head_of_md": False}),
    ("bdev_uring_create", {"filename": URING, "name": "Uring0", "block_size": 512}),
    ("bdev_get_iostat", {"per_channel": True, "names": ["daosdev0", "Malloc0"]}),
    ("bdev_set_qos_limit", {"name": "Malloc0", "rw_ios_per_sec": 10000, "rw_mbytes_per_sec": 100,
                            "r_mbytes_per_sec": 50, "w_mbytes_per_sec": 40}),
    ("bdev_daos_resize", {"name": "daosdev0", "new_size": 128}),
    ("nvmf_get_transports", None),
    ("nvmf_get_transports", {"trtype": "TCP"}),
    ("nvmf_get_subsystems", None),
    ("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": "Malloc0", "nsid": 5, "no_auto_visible": False,
                                                         "hide_metadata": False}}),
    ("nvmf_subsystem_remove_ns", {"nqn": NQN, "nsid": 5}),
    ("nvmf_subsystem_add_host", {"nqn": NQN, "host": HOST}),
    ("nvmf_subsystem_remove_host", {"nqn": NQN, "host": HOST}),
    ("nvmf_subsystem_allow_any_host", {"nqn": NQN, "allow_any_host": False}),
    ("nvmf_subsystem_allow_any_host", {"nqn": NQN, "allow_any_host": True}),
    ("nvmf_subsystem_get_controllers", {"nqn": NQN}),
    ("nvmf_subsystem_get_qpairs", {"nqn": NQN}),
    ("nvmf_subsystem_get_listeners", {"nqn": NQN}),
    ("nvmf_get_stats", None),
    ("framework_get_reactors", None),
    ("rpc_get_methods", {"current": False, "include_aliases": False}),
    ("rpc_get_methods", {"current": True, "include_aliases": False}),
    ("spdk_get_version", None),
    # save_config: framework_get_subsystems, then framework_get_config per subsystem
    ("framework_get_subsystems", None),
    ("framework_get_config", {"name": "bdev", "with_batches": False}),
    ("framework_get_config", {"name": "nvmf", "with_batches": False}),
]

TEARDOWN = [
    ("nvmf_subsystem_remove_listener",
     {"nqn": NQN, "listen_address": {"trtype": "tcp", "traddr": "127.0.0.1", "trsvcid": PORT}}),
    ("nvmf_delete_subsystem", {"nqn": NQN}),
    ("bdev_malloc_delete", {"name": "Malloc0"}),
    ("bdev_null_delete", {"name": "Null0"}),
    ("bdev_uring_delete", {"name": "Uring0"}),
    ("bdev_daos_delete", {"name": "daosdev0"}),
]


def subst(v, port, uring):
    if isinstance(v, dict):
        return {k: subst(x, port, uring) for k, x in v.items()}
    if isinstance(v, list):
        return [subst(x, port, uring) for x in v]
    if v == PORT:
        return str(port)
    if v == URING:
        return uring
    return v


class Client:
    """A JSON-RPC 2.0 client on the Unix socket, framing as rpc.py does (objects back to back)."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(30)
        self.s.connect(path)
        self.buf = ""
        self.id = 0

    def call(self, method, params=None):
        self.id += 1
        req = {"jsonrpc": "2.0", "method": method, "id": self.id}
        if params is not None:
            req["params"] = params
        self.s.sendall(json.dumps(req).encode())
        dec = json.JSONDecoder()
        while True:
            text = self.buf.lstrip()
            if text:
                try:
                    resp, end = dec.raw_decode(text)
                    self.buf = text[end:]
                    break
                except ValueError:
                    pass
            chunk = self.s.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed waiting for %s" % method)
            self.buf += chunk.decode()
        assert resp.get("jsonrpc") == "2.0" and resp.get("id") == self.id, resp
        return resp

    def ok(self, method, params=None):
        resp = self.call(method, params)
        if "error" in resp:
            raise AssertionError("%s %s -> error %s" % (method, json.dumps(params), resp["error"]))
        return resp["result"]

    def close(self):
        self.s.close()


class RpcCompat(unittest.TestCase):
    def setUp(self):
        build = os.environ["DBK_BUILD_DIR"]
        self.dir = tempfile.mkdtemp(prefix="dbk-compat-")
        self.dfs = os.path.join(self.dir, "dfs")
        dfs_bin = os.path.join(build, "tools", "dfs", "daosblk-dfs")
        subprocess.run([dfs_bin, "--dfs-root", self.dfs, "pool", "create", "test-pool"], check=True,
                       capture_output=True)
        subprocess.run([dfs_bin, "--dfs-root", self.dfs, "cont", "create", "test-pool", "test-cont", "--type",
                        "POSIX"], check=True, capture_output=True)
        self.uring = os.path.join(self.dir, "uring.img")
        with open(self.uring, "wb") as f:
            f.truncate(8 << 20)
        self.port = nt.free_port()
        self.tgts = []

    def start(self):
        tgt = nt.Target(extra=("--dfs-root", self.dfs))
        self.tgts.append(tgt)
        return tgt, Client(tgt.sock)

    def tearDown(self):
        for tgt in self.tgts:
            rc = tgt.stop()
            if rc != 0:
                print(tgt.logtext()[-4000:], file=sys.stderr)
            self.assertEqual(rc, 0, "daosblk-tgt exited with %d after SIGINT" % rc)

    def req(self, entry):
        method, params = entry
        return method, subst(params, self.port, self.uring)

    def test_rpc_py_requests(self):
        tgt, c = self.start()
        results = {}
        for entry in SEED + MORE:
            method, params = self.req(entry)
            results.setdefault(method, []).append(c.ok(method, params))

        # seed workflow: results as SPDK's, and the listener really serves the namespace
        self.assertEqual(results["nvmf_create_transport"], [True])
        self.assertEqual(results["bdev_daos_create"], ["daosdev0"])
        self.assertEqual(results["nvmf_create_subsystem"], [True])
        self.assertEqual(results["nvmf_subsystem_add_ns"], [1, 5])
        self.assertEqual(results["nvmf_subsystem_add_listener"], [True])
        h, _ = nt.admin_session(self.port, NQN)
        cpl, data = h.identify(0, nsid=1)
        self.assertTrue(cpl.ok, cpl)
        # NSZE after bdev_daos_resize to 128 MiB with 4 KiB blocks
        self.assertEqual(int.from_bytes(data[0:8], "little"), 128 * 1024 * 1024 // 4096)
        h.close()

        # result shapes rpc.py prints
        bdevs = results["bdev_get_bdevs"]
        self.assertEqual({b["name"] for b in bdevs[0]}, {"daosdev0"})
        self.assertEqual(bdevs[1][0]["name"], "daosdev0")
        self.assertEqual(bdevs[1][0]["block_size"], 4096)
        self.assertEqual(bdevs[1][0]["num_blocks"], 16384)
        io = results["bdev_get_iostat"]
        for r in io:
            self.assertIn("tick_rate", r)
            self.assertIn("ticks", r)
        self.assertEqual([b["name"] for b in io[0]["bdevs"]], ["daosdev0"])
        self.assertIn("channels", io[1]["bdevs"][0])
        self.assertEqual(sorted(b["name"] for b in io[2]["bdevs"]), ["Malloc0", "daosdev0"])
        self.assertEqual(results["bdev_malloc_create"], ["Malloc0"])
        self.assertEqual(results["bdev_null_create"], ["Null0"])
        self.assertEqual(results["bdev_uring_create"], ["Uring0"])
        self.assertEqual(results["bdev_set_qos_limit"], [True])
        self.assertEqual(results["bdev_daos_resize"], [True])
        tr = results["nvmf_get_transports"]
        self.assertEqual(tr[0], tr[1])
        self.assertEqual(tr[0][0]["trtype"], "TCP")
        self.assertEqual(tr[0][0]["max_io_size"], 2097152)
        self.assertEqual(tr[0][0]["io_unit_size"], 2097152)
        subs = {s["nqn"]: s for s in results["nvmf_get_subsystems"][0]}
        self.assertEqual(subs[NQN]["serial_number"], "SPDK00000000000001")
        self.assertEqual(subs[NQN]["model_number"], "SPDK_Virtual_Controller_1")
        self.assertTrue(subs[NQN]["allow_any_host"])
        self.assertEqual([n["bdev_name"] for n in subs[NQN]["namespaces"]], ["daosdev0"])
        self.assertEqual(results["nvmf_subsystem_remove_ns"], [True])
        self.assertEqual(results["nvmf_subsystem_add_host"], [True])
        self.assertEqual(results["nvmf_subsystem_remove_host"], [True])
        self.assertEqual(results["nvmf_subsystem_allow_any_host"], [True, True])
        self.assertIsInstance(results["nvmf_subsystem_get_controllers"][0], list)
        self.assertIsInstance(results["nvmf_subsystem_get_qpairs"][0], list)
        la = results["nvmf_subsystem_get_listeners"][0][0]["address"]
        self.assertEqual((la["traddr"], la["trsvcid"]), ("127.0.0.1", str(self.port)))
        self.assertIn("poll_groups", results["nvmf_get_stats"][0])
        self.assertIn("reactors", results["framework_get_reactors"][0])
        for methods in results["rpc_get_methods"]:
            for m in ("framework_get_config", "framework_get_subsystems", "bdev_daos_create", "nvmf_get_stats"):
                self.assertIn(m, methods)
        self.assertIn("version", results["spdk_get_version"][0])
        self.assertEqual({s["subsystem"] for s in results["framework_get_subsystems"][0]}, {"keyring", "bdev", "nvmf"})
        bdev_cfg, nvmf_cfg = results["framework_get_config"]
        self.assertIn("bdev_daos_create", [e["method"] for e in bdev_cfg])
        self.assertIn("nvmf_subsystem_add_listener", [e["method"] for e in nvmf_cfg])

        # rpc.py's load_config replays every saved entry as is, into a fresh daemon
        saved = {"bdev": bdev_cfg, "nvmf": nvmf_cfg}
        c.close()
        self.assertEqual(tgt.stop(), 0)
        self.tgts.remove(tgt)
        tgt2, c2 = self.start()
        c2.ok("rpc_get_methods", {"include_aliases": False})
        for sub in ("bdev", "nvmf"):
            for e in saved[sub]:
                c2.ok(e["method"], e.get("params"))
        again = {sub: c2.ok("framework_get_config", {"name": sub, "with_batches": False}) for sub in saved}
        self.assertEqual(again, saved)

        for entry in TEARDOWN:
            method, params = self.req(entry)
            self.assertEqual(c2.ok(method, params), True, method)
        self.assertEqual(c2.ok("bdev_get_bdevs"), [])
        c2.close()

    def test_rpc_py_flags_that_we_refuse_or_ignore(self):
        tgt, c = self.start()
        # RDMA / vfio-user switches rpc.py can set: ignored on TCP, as SPDK's TCP transport does
        c.ok("nvmf_create_transport", {"trtype": "TCP", "no_srq": True, "no_wr_batching": True,
                                       "disable_mappable_bar0": True, "disable_adaptive_irq": True,
                                       "disable_shadow_doorbells": True})
        c.ok("bdev_malloc_create", {"num_blocks": 2048, "block_size": 512, "name": "Malloc0"})
        # features daosblk lacks: a clear error, nothing created
        for k in ("passthrough", "enable_nssr"):
            r = c.call("nvmf_create_subsystem", {"nqn": NQN, k: True})
            self.assertEqual(r["error"]["code"], -95, r)
            self.assertIn(k if k == "enable_nssr" else "passthrough", r["error"]["message"])
        self.assertEqual([s["nqn"] for s in c.ok("nvmf_get_subsystems")], ["nqn.2014-08.org.nvmexpress.discovery"])
        c.ok("nvmf_create_subsystem", {"nqn": NQN, "allow_any_host": True, "passthrough": False})
        # hide_metadata: no bdev has metadata, so true exposes the same namespace
        self.assertEqual(c.ok("nvmf_subsystem_add_ns",
                              {"nqn": NQN, "namespace": {"bdev_name": "Malloc0", "hide_metadata": True}}), 1)
        r = c.call("bdev_get_iostat", {"per_channel": False, "reset_mode": "all"})
        self.assertEqual(r["error"]["code"], -95, r)
        r = c.call("bdev_get_iostat", {"names": ["Malloc0", "nope"]})
        self.assertEqual(r["error"]["code"], -19, r)
        r = c.call("bdev_get_iostat", {"names": "Malloc0"})
        self.assertEqual(r["error"]["code"], -32602, r)
        self.assertEqual(len(c.ok("bdev_get_iostat", {"names": ["Malloc0"], "reset_mode": "none"})["bdevs"]), 1)
        c.ok("framework_get_config", {"name": "bdev", "with_batches": True})
        # unknown parameters are still refused, at top level and nested
        for method, params, key in (
                ("nvmf_create_transport", {"trtype": "TCP", "no_such_opt": False}, "no_such_opt"),
                ("nvmf_create_subsystem", {"nqn": "nqn.2016-06.io.spdk:x", "bogus": 1}, "bogus"),
                ("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": "Malloc0", "bogus": False}},
                 "namespace.bogus"),
                ("framework_get_config", {"name": "bdev", "with_batch": False}, "with_batch"),
                ("bdev_get_iostat", {"name_list": []}, "name_list")):
            r = c.call(method, params)
            self.assertEqual(r["error"]["code"], -32602, r)
            self.assertIn("unknown parameter '%s'" % key, r["error"]["message"])
        c.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
