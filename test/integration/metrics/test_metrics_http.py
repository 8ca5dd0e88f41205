#!/usr/bin/env python3
"""daosblk-tgt --metrics: startup errors (bad address, port in use), the exposition after real NVMe/TCP I/O
(families, histogram invariants, counters equal to what daosblk-perf did), the HTTP endpoint against
malformed, oversized, slow and too many requests (raw sockets: an error status and a closed connection,
never a crash), keep-alive and pipelining, the Grafana dashboard's metric names, and a clean SIGINT while
scrapes are in flight."""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import metrics_lib as ml  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def run_tgt_expect_fail(args, timeout=60):
    d = tempfile.mkdtemp(prefix="dbk_metrics_bad.")
    try:
        r = subprocess.run([ml.TGT, "-r", os.path.join(d, "rpc.sock"), *args], capture_output=True, text=True,
                           timeout=timeout)
        return r.returncode, r.stdout + r.stderr
    finally:
        subprocess.run(["rm", "-rf", d])


class StartupErrors(unittest.TestCase):
    def test_bad_addresses(self):
        for spec, want in [("nonsense", "has no port"), ("127.0.0.1:0", "1 to 65535"),
                           ("127.0.0.1:70000", "1 to 65535"), ("host.example:9100", "not a numeric IPv4"),
                           ("::1:9100", "brackets"), (":9100", "no address")]:
            rc, out = run_tgt_expect_fail(["--metrics", spec])
            self.assertEqual(rc, 1, f"--metrics {spec}: {out}")
            self.assertIn("--metrics", out)
            self.assertIn(want, out, f"--metrics {spec}")

    def test_port_in_use(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        try:
            rc, out = run_tgt_expect_fail(["--metrics", f"127.0.0.1:{port}"])
        finally:
            s.close()
        self.assertEqual(rc, 1, out)
        self.assertIn(f"cannot serve metrics on 127.0.0.1:{port}: Address already in use", out)

    def test_not_a_local_address(self):
        rc, out = run_tgt_expect_fail(["--metrics", "192.0.2.1:9100"])  # TEST-NET-1
        self.assertEqual(rc, 1, out)
        self.assertIn("cannot serve metrics on 192.0.2.1:9100", out)

    def test_help(self):
        r = subprocess.run([ml.TGT, "--help"], capture_output=True, text=True)
        self.assertIn("--metrics ADDR:PORT", r.stdout)


class Endpoint(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = ml.Target()
        try:
            cls.t.setup_malloc()
        except Exception:
            cls.t.cleanup()	# tearDownClass does not run after a failed setUpClass
            raise
        cls.port = cls.t.mport

    @classmethod
    def tearDownClass(cls):
        rc = cls.t.stop()
        log = cls.t.logtext()
        cls.t.cleanup()
        if rc != 0:
            raise AssertionError(f"daosblk-tgt exited {rc} after SIGINT:\n{log}")

    def tearDown(self):
        self.assertTrue(self.t.alive(), "daosblk-tgt died:\n" + self.t.logtext())

    def scrape(self):
        st, hdr, body = ml.get(self.port)
        self.assertEqual(st, 200)
        self.assertEqual(hdr["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        return ml.parse_exposition(body)

    # -------------------------------------------------------------- exposition

    def test_counters_after_io(self):
        before = self.scrape()
        r0 = ml.value(before, "daosblk_bdev_read_ops_total", bdev="Dev0")
        w0 = ml.value(before, "daosblk_bdev_write_ops_total", bdev="Dev0")
        p = subprocess.run([ml.PERF, "-r", self.t.trid(), "-q", "8", "-o", "4096", "-w", "randrw", "-M", "70",
                            "-t", "2", "-c", "0x2", "--json", "--no-progress"], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        j = json.loads(p.stdout)
        after = self.scrape()
        dr = ml.value(after, "daosblk_bdev_read_ops_total", bdev="Dev0") - r0
        dw = ml.value(after, "daosblk_bdev_write_ops_total", bdev="Dev0") - w0
        # The target also completes what was still in flight when daosblk-perf's clock stopped (<= QD).
        self.assertGreaterEqual(dr, j["reads"])
        self.assertLessEqual(dr + dw, j["reads"] + j["writes"] + 8)
        self.assertGreater(j["writes"], 0)
        self.assertEqual(ml.value(after, "daosblk_bdev_read_bytes_total", bdev="Dev0")
                         - ml.value(before, "daosblk_bdev_read_bytes_total", bdev="Dev0"), dr * 4096)
        self.assertEqual(ml.value(after, "daosblk_bdev_write_bytes_total", bdev="Dev0")
                         - ml.value(before, "daosblk_bdev_write_bytes_total", bdev="Dev0"), dw * 4096)
        # histogram: cumulative, +Inf == _count == ops, _sum within [count*min bucket, count*max]
        fam = after["daosblk_bdev_io_latency_seconds"]
        self.assertEqual(fam["type"], "histogram")
        for typ, opsname in (("read", "daosblk_bdev_read_ops_total"), ("write", "daosblk_bdev_write_ops_total")):
            buckets = [(l["le"], v) for (n, l, v) in fam["samples"]
                       if n.endswith("_bucket") and l["bdev"] == "Dev0" and l["type"] == typ]
            self.assertEqual(buckets[-1][0], "+Inf")
            self.assertEqual(len(buckets), 27)
            les = [float(le) for le, _ in buckets[:-1]]
            self.assertEqual(les, [2 ** i / 1e6 for i in range(26)])
            counts = [v for _, v in buckets]
            self.assertEqual(counts, sorted(counts), f"{typ} buckets not cumulative")
            cnt = ml.value(after, "daosblk_bdev_io_latency_seconds_count", bdev="Dev0", type=typ)
            self.assertEqual(counts[-1], cnt)
            self.assertEqual(cnt, ml.value(after, opsname, bdev="Dev0"))
            self.assertGreater(ml.value(after, "daosblk_bdev_io_latency_seconds_sum", bdev="Dev0", type=typ), 0)
        self.assertEqual(ml.value(after, "daosblk_bdev_size_bytes", bdev="Dev0"), 64 << 20)
        self.assertEqual(ml.value(after, "daosblk_bdev_info", bdev="Dev0", module="malloc"), 1)
        # the run's connections are gone again; the transport counted them
        self.assertEqual(ml.value(after, "daosblk_nvmf_subsystem_controllers", nqn=ml.NQN), 0)
        self.assertEqual(ml.value(after, "daosblk_nvmf_listener_connections", trsvcid=str(self.t.nport)), 0)
        self.assertGreaterEqual(ml.value(after, "daosblk_nvmf_transport_accepted_qpairs_total", trtype="TCP"), 2)
        self.assertGreater(ml.value(after, "daosblk_nvmf_transport_received_pdus_total", trtype="TCP"),
                           ml.value(before, "daosblk_nvmf_transport_received_pdus_total", trtype="TCP") + dr)
        self.assertGreater(ml.value(after, "daosblk_reactor_busy_seconds_total", reactor="0"),
                           ml.value(before, "daosblk_reactor_busy_seconds_total", reactor="0"))
        for name, f in after.items():
            self.assertTrue(f["help"], f"{name} has no HELP")
            self.assertIn(f["type"], ("counter", "gauge", "histogram"), name)
            self.assertTrue(name.startswith("daosblk_"), name)
            if f["type"] == "counter":
                self.assertTrue(name.endswith("_total"), name)

    def test_connections_while_connected(self):
        p = subprocess.Popen([ml.PERF, "-r", self.t.trid(), "-q", "4", "-o", "4096", "-w", "randread",
                              "-t", "4", "-c", "0x2", "--no-progress"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        try:
            seen = None
            deadline = time.time() + 30
            while time.time() < deadline and p.poll() is None:
                f = self.scrape()
                if ml.value(f, "daosblk_nvmf_subsystem_qpairs", nqn=ml.NQN, queue="io") == 1:
                    seen = f
                    break
                time.sleep(0.2)
            self.assertIsNotNone(seen, "never saw the I/O queue pair")
            self.assertEqual(ml.value(seen, "daosblk_nvmf_subsystem_controllers", nqn=ml.NQN), 1)
            self.assertEqual(ml.value(seen, "daosblk_nvmf_subsystem_qpairs", nqn=ml.NQN, queue="admin"), 1)
            self.assertEqual(ml.value(seen, "daosblk_nvmf_listener_connections", traddr="127.0.0.1",
                                      trsvcid=str(self.t.nport)), 2)
            self.assertEqual(ml.value(seen, "daosblk_nvmf_transport_qpairs", trtype="TCP"), 2)
            self.assertEqual(ml.value(seen, "daosblk_nvmf_subsystem_namespaces", nqn=ml.NQN), 1)
        finally:
            _, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)

    def test_r2t_counter(self):
        # 64 KiB writes do not fit in the 4 KiB in-capsule data: each one takes at least one R2T. (A starved
        # machine may complete none in a second: then run again, up to 3 times.)
        for _ in range(3):
            before = self.scrape()
            p = subprocess.run([ml.PERF, "-r", self.t.trid(), "-q", "4", "-o", "65536", "-w", "randwrite",
                                "-t", "1", "-c", "0x2", "--json", "--no-progress"], capture_output=True, text=True,
                               timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            writes = json.loads(p.stdout)["writes"]
            if writes > 0:
                break
        after = self.scrape()
        d = (ml.value(after, "daosblk_nvmf_transport_sent_r2ts_total", trtype="TCP")
             - ml.value(before, "daosblk_nvmf_transport_sent_r2ts_total", trtype="TCP"))
        self.assertGreaterEqual(d, writes)
        self.assertGreater(writes, 0)

    def test_dashboard_names_exist(self):
        path = os.path.join(TOP, "contrib", "grafana", "daosblk.json")
        with open(path) as f:
            dash = json.load(f)
        exprs = []

        def walk(o):
            if isinstance(o, dict):
                if isinstance(o.get("expr"), str):
                    exprs.append(o["expr"])
                for v in o.values():
                    walk(v)
            elif isinstance(o, list):
                for v in o:
                    walk(v)
        walk(dash)
        self.assertGreater(len(exprs), 10)
        fams = self.scrape()
        names = set()
        for e in exprs:
            names.update(re.findall(r"\bdaosblk_[a-z0-9_]+", e))
        for n in sorted(names):
            base = re.sub(r"_(bucket|sum|count)$", "", n)
            self.assertTrue(n in fams or (base in fams and fams[base]["type"] == "histogram"),
                            f"dashboard uses {n}, which the target does not export")

    # -------------------------------------------------------------- HTTP

    def status_and_closed(self, raw):
        out = ml.http(self.port, raw)
        m = re.match(rb"HTTP/1\.1 (\d{3}) ", out)
        self.assertIsNotNone(m, f"no status line for {raw[:60]!r}: {out[:200]!r}")
        return int(m.group(1)), out

    def test_bad_requests(self):
        cases = [
            (b"HELLO\r\n\r\n", 400),
            (b"GET /metrics\r\n\r\n", 400),
            (b"GET /metrics HTTP/1.1\r\n\r\n", 400),  # no Host
            (b"GET /metrics HTTP/1.1\r\nHost x\r\n\r\n", 400),
            (b"GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)), 400),  # TLS ClientHello-ish
            (b"GET /met\x00rics HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            (b"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n", 505),
            (b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404),
            (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 404),
            (b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405),
            (b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789", 413),
            (b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501),
            (b"GET /" + b"a" * 1000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
            (b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n", 413),
            (b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 3000 + b"\r\n", 413),
        ]
        for raw, want in cases:
            st, out = self.status_and_closed(raw)  # http() returns only once the server closed
            self.assertEqual(st, want, f"{raw[:60]!r}: {out[:300]!r}")
            self.assertIn(b"Connection: close", out)
        st, out = self.status_and_closed(b"PUT /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(b"Allow: GET, HEAD", out)

    def test_truncated_and_abandoned(self):
        # closed inside a request: 400 if the server can still answer, never a crash
        s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHo")
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            out += d
        s.close()
        self.assertTrue(out.startswith(b"HTTP/1.1 400 "), out)
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            s.close()  # abandoned half way, with a reset
        st, _, _ = ml.get(self.port)
        self.assertEqual(st, 200)

    def test_idle_connection_is_closed(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        s.sendall(b"GET /metrics HTTP/1.1\r\n")
        t0 = time.time()
        d = s.recv(4096)
        waited = time.time() - t0
        s.close()
        self.assertEqual(d, b"")
        self.assertGreater(waited, 8)
        self.assertLess(waited, 25)

    def test_too_many_connections(self):
        socks = []
        try:
            for _ in range(40):
                socks.append(socket.create_connection(("127.0.0.1", self.port), timeout=20))
            for s in socks:
                s.setblocking(False)
            # The target accepts them as it gets to them (16 per event): wait until the 8 beyond the limit
            # have been turned away, then a little longer to see that no more are.
            closed = set()
            deadline = time.time() + 30
            settle = None
            while time.time() < deadline:
                for i, s in enumerate(socks):
                    if i in closed:
                        continue
                    try:
                        d = s.recv(4096)
                        if d == b"" or d.startswith(b"HTTP/1.1 503 "):
                            closed.add(i)
                    except BlockingIOError:
                        pass
                    except ConnectionResetError:
                        closed.add(i)
                if len(closed) >= 40 - 32 and settle is None:
                    settle = time.time() + 1
                if settle and time.time() > settle:
                    break
                time.sleep(0.05)
            self.assertEqual(len(closed), 40 - 32)
        finally:
            for s in socks:
                s.close()
        time.sleep(0.3)
        st, _, _ = ml.get(self.port)
        self.assertEqual(st, 200)

    def test_keep_alive_pipelining_head_http10(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        req = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
        s.sendall(req + req + b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = b""
        bodies = []
        for i in range(3):
            while b"\r\n\r\n" not in buf:
                d = s.recv(65536)
                self.assertTrue(d, f"closed before response {i}")
                buf += d
            head, _, buf = buf.partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 200 OK"), head)
            self.assertIn(b"Connection: keep-alive", head)
            n = int(re.search(rb"Content-Length: (\d+)", head).group(1))
            self.assertGreater(n, 1000)
            if i < 2:
                while len(buf) < n:
                    buf += s.recv(65536)
                bodies.append(buf[:n])
                buf = buf[n:]
        self.assertEqual(buf, b"")  # HEAD: no body
        ml.parse_exposition(bodies[1].decode())
        # the same connection still works, byte by byte, and Connection: close ends it
        for ch in b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n":
            s.sendall(bytes([ch]))
        out = buf
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
        s.close()
        self.assertTrue(out.startswith(b"HTTP/1.1 200 OK"))
        self.assertIn(b"Connection: close", out)
        # HTTP/1.0 (and HTTP/1.1 with Connection: close): answered, then closed at once -- not after the 10 s
        # idle timeout
        for req in (b"GET /metrics HTTP/1.0\r\n\r\n", b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            s.sendall(req)
            st, hdr, body, n = ml.read_response(s)
            self.assertEqual(st, 200)
            self.assertEqual(hdr["connection"], "close")
            while len(body) < n:
                body += s.recv(65536)
            ml.parse_exposition(body.decode())
            s.settimeout(8)
            self.assertEqual(s.recv(4096), b"", "the connection stayed open after Connection: close")
            s.close()


class ShutdownWhileScraping(unittest.TestCase):
    def test_sigint_during_scrapes(self):
        t = ml.Target(mask="[0,1]" if os.cpu_count() and os.cpu_count() > 1 else "0x1")
        try:
            t.setup_malloc()
            stop = threading.Event()
            ok = [0]

            def hammer():
                while not stop.is_set():
                    try:
                        s = socket.create_connection(("127.0.0.1", t.mport), timeout=5)
                        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 4)
                        if s.recv(100).startswith(b"HTTP/1.1 200"):
                            ok[0] += 1
                        s.close()
                    except OSError:
                        pass
            th = [threading.Thread(target=hammer) for _ in range(3)]
            for x in th:
                x.start()
            time.sleep(2)
            rc = t.stop()
            stop.set()
            for x in th:
                x.join()
            self.assertGreater(ok[0], 5)
            self.assertEqual(rc, 0, t.logtext())
        finally:
            t.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
