#!/usr/bin/env python3
"""A real Prometheus server (Debian's prometheus package: its own config in a temp dir, scrape_interval 1s,
its own TSDB dir and a free loopback port -- not the system service) scrapes daosblk-tgt --metrics while
daosblk-perf runs 4 KiB randrw (70 % reads) QD32 against a malloc bdev for 10 s. Through the Prometheus HTTP
API: increase() over the run window divided by the run's duration -- the read and write IOPS and bytes/s
Prometheus computes -- must match daosblk-perf's own figures within 5 %; the latency histogram's count must
match the ops; every expression of the Grafana dashboard must evaluate. A scrape also passes
`promtool check metrics`. Exit 77 (skip) when prometheus or promtool is not installed."""
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import metrics_lib as ml  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
RUN_S = 10
QD = 32
TOL = 0.05


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


class Prom:
    def __init__(self, target_port, workdir):
        self.port = ml.free_port()
        self.dir = workdir
        cfg = os.path.join(workdir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: daosblk\n    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{target_port}']\n")
        self.log = open(os.path.join(workdir, "prometheus.log"), "w+")
        self.proc = subprocess.Popen(["prometheus", f"--config.file={cfg}",
                                      f"--storage.tsdb.path={os.path.join(workdir, 'tsdb')}",
                                      f"--web.listen-address=127.0.0.1:{self.port}",
                                      "--storage.tsdb.retention.time=1h"],
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir)
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.proc.poll() is not None:
                msg = f"prometheus exited ({self.proc.returncode}):\n{self.logtext()}"
                self.stop()
                fail(msg)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        msg = "prometheus did not become ready:\n" + self.logtext()
        self.stop()
        fail(msg)

    def logtext(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()[-3000:]

    def query(self, q, at=None):
        args = {"query": q}
        if at is not None:
            args["time"] = repr(at)
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(args)
        with urllib.request.urlopen(url, timeout=30) as r:
            j = json.load(r)
        if j.get("status") != "success":
            raise RuntimeError(f"query {q}: {j}")
        return j["data"]

    def scalar(self, q, at=None):
        d = self.query(q, at)
        res = d["result"]
        if d["resultType"] != "vector" or len(res) != 1:
            raise RuntimeError(f"query {q} at {at}: expected one series, got {d}")
        return float(res[0]["value"][1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def samples(prom, series, window_s, at):
    """Raw (timestamp, value) samples of one series over the window ending at `at` (a range-vector query)."""
    d = prom.query(f"{series}[{window_s}s]", at)
    if d["resultType"] != "matrix" or len(d["result"]) != 1:
        raise RuntimeError(f"{series}: {d}")
    return [(float(t), float(v)) for t, v in d["result"][0]["values"]]


def main():
    for tool in ("prometheus", "promtool"):
        if not shutil.which(tool):
            print(f"SKIP: {tool} not found (Debian package 'prometheus'; scripts/install-deps.sh installs it)")
            return 77
    work = tempfile.mkdtemp(prefix="dbk_prom.")
    t = ml.Target(mask="0x1")
    prom = None
    try:
        t.setup_malloc(mib=256)
        # promtool's linter on a live scrape (families, names, units, HELP)
        st, _, body = ml.get(t.mport)
        if st != 200:
            fail(f"/metrics answered {st}")
        r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"promtool check metrics: {r.stdout}{r.stderr}")
        print("promtool check metrics: OK", flush=True)

        prom = Prom(t.mport, work)
        deadline = time.time() + 60
        while True:
            try:
                if prom.scalar('up{job="daosblk"}') == 1 and prom.scalar(
                        'daosblk_bdev_read_ops_total{bdev="Dev0"}') == 0:
                    break
            except RuntimeError:
                pass
            if time.time() > deadline:
                fail("prometheus never scraped the target:\n" + prom.logtext())
            time.sleep(0.5)
        time.sleep(1.5)  # one more scrape of the zero counters before the run
        t_before = time.time()
        p = subprocess.run([ml.PERF, "-r", t.trid(), "-q", str(QD), "-o", "4096", "-w", "randrw", "-M", "70",
                            "-t", str(RUN_S), "-c", "0x2", "--json", "--no-progress"], capture_output=True,
                           text=True, timeout=RUN_S + 120)
        if p.returncode != 0:
            fail(f"daosblk-perf failed: {p.stderr}")
        t_after = time.time()
        j = json.loads(p.stdout)
        elapsed = j["elapsed_s"]
        print(f"daosblk-perf: {j['read_iops']:.0f} read IOPS, {j['write_iops']:.0f} write IOPS over {elapsed:.3f} s "
              f"({j['reads']} reads, {j['writes']} writes)", flush=True)

        # Wait for two scrapes after the run: the counters' last samples are final.
        sel = 'daosblk_bdev_read_ops_total{bdev="Dev0"}'
        deadline = time.time() + 60
        while True:
            now = time.time()
            pts = samples(prom, sel, int(now - t_before) + 10, now)
            if len(pts) >= 3 and pts[-1][1] == pts[-2][1] and pts[-1][1] > 0 and pts[-2][0] > t_after:
                break
            if time.time() > deadline:
                fail(f"no settled samples after the run: {pts[-5:]}")
            time.sleep(1)
        at = pts[-1][0]  # evaluate exactly at the last scrape: no extrapolation past it
        # The window reaches back before the run; its first sample is 0, so increase() is not extrapolated
        # before it either: increase() is exactly the counter's growth over the run.
        win = int(math.ceil(at - t_before)) + 3
        first = [v for (ts, v) in pts if ts >= at - win]
        if not first or first[0] != 0:
            fail(f"the window does not start at zero: {pts[:5]}")
        checks = [
            ("read IOPS", f'increase(daosblk_bdev_read_ops_total{{bdev="Dev0"}}[{win}s]) / {elapsed}', j["read_iops"]),
            ("write IOPS", f'increase(daosblk_bdev_write_ops_total{{bdev="Dev0"}}[{win}s]) / {elapsed}',
             j["write_iops"]),
            ("read bytes/s", f'increase(daosblk_bdev_read_bytes_total{{bdev="Dev0"}}[{win}s]) / {elapsed}',
             j["read_iops"] * 4096),
            ("write bytes/s", f'increase(daosblk_bdev_write_bytes_total{{bdev="Dev0"}}[{win}s]) / {elapsed}',
             j["write_iops"] * 4096),
        ]
        # daosblk-perf counts what completes inside its measured window; the target also counts the (at most
        # QD) commands still in flight when that window closed, which complete a moment later. At the usual
        # tens of thousands of IOPS that is 0.01 %; on a starved machine it may not be, so it is allowed on top.
        tail = QD / elapsed
        for what, q, want in checks:
            got = prom.scalar(q, at)
            unit = 4096 if "bytes" in what else 1
            err = (got - want) / want
            print(f"{what}: prometheus {got:.1f}, daosblk-perf {want:.1f} ({err * 100:+.2f} %)  [{q}]", flush=True)
            if not want * (1 - TOL) <= got <= want * (1 + TOL) + tail * unit:
                fail(f"{what}: prometheus computes {got:.1f}, daosblk-perf reports {want:.1f}")
        # The latency histogram counts every read once.
        hc = prom.scalar(f'increase(daosblk_bdev_io_latency_seconds_count{{bdev="Dev0",type="read"}}[{win}s])', at)
        ops = prom.scalar(f'increase(daosblk_bdev_read_ops_total{{bdev="Dev0"}}[{win}s])', at)
        if hc != ops:
            fail(f"latency histogram count {hc} != read ops {ops}")
        p50 = prom.scalar('histogram_quantile(0.5, sum by (le) (increase(daosblk_bdev_io_latency_seconds_bucket'
                          f'{{bdev="Dev0",type="read"}}[{win}s])))', at)
        # bdev-layer latency is a part of what the host sees (the bucket interpolation can double it)
        if not 0 < p50 <= 2 * j["read_latency_us"]["p50"] / 1e6:
            fail(f"bdev read p50 {p50} s against the host's {j['read_latency_us']['p50']} us")
        print(f"bdev read latency p50 (histogram_quantile): {p50 * 1e6:.1f} us; host p50 "
              f"{j['read_latency_us']['p50']:.1f} us", flush=True)
        busy = prom.scalar(f'rate(daosblk_reactor_busy_seconds_total{{reactor="0"}}[{win}s])', at)
        if not 0 < busy <= 1.05:
            fail(f"reactor busy rate {busy}")

        # Every expression of the dashboard is valid PromQL and finds its series.
        with open(os.path.join(TOP, "contrib", "grafana", "daosblk.json")) as f:
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
        for e in exprs:
            q = (e.replace("$__rate_interval", f"{win}s").replace("$__range", f"{win}s")
                 .replace("$job", "daosblk").replace("$instance", f"127.0.0.1:{t.mport}")
                 .replace("$bdev", "Dev0").replace("$nqn", ml.NQN))
            q = re.sub(r'=~"\$[a-z_]+"', '=~".*"', q)
            d = prom.query(q, at)
            if not d["result"]:
                fail(f"dashboard expression finds nothing: {e}")
        print(f"{len(exprs)} dashboard expressions evaluate", flush=True)
        rc = t.stop()
        if rc != 0:
            fail(f"daosblk-tgt exited {rc}:\n{t.logtext()}")
        print("PASS", flush=True)
        return 0
    finally:
        if prom:
            prom.stop()
        t.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
