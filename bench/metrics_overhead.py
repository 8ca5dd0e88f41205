#!/usr/bin/env python3
"""What scraping daosblk-tgt --metrics costs the reactors.

1. Throughput: daosblk-perf 4K randread QD32 (malloc bdev, prefilled; target -m 0x1 on core 0, daosblk-perf on
   core 1) for RUNTIME s, alternately without and with a scraper fetching /metrics every INTERVAL s over one
   keep-alive connection (as Prometheus does), PAIRS pairs; the median IOPS of each side and the difference.
2. Reactor time per scrape: on the idle target, the reactor's busy time (daosblk_reactor_busy_seconds_total)
   grows by how much per scrape, over SCRAPES scrapes at 10 per second, minus the same time without scrapes.

  DBK_BUILD_DIR=build bench/metrics_overhead.py        # PAIRS=5 RUNTIME=10 INTERVAL=1 SCRAPES=200
"""
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("DBK_BUILD_DIR", os.path.join(SRC, "build"))
TGT, RPC, PERF = (os.path.join(BUILD, p) for p in ("app/daosblk-tgt", "tools/rpc/daosblk-rpc", "tools/perf/daosblk-perf"))
PAIRS = int(os.environ.get("PAIRS", "5"))
RUNTIME = int(os.environ.get("RUNTIME", "10"))
INTERVAL = float(os.environ.get("INTERVAL", "1"))
SCRAPES = int(os.environ.get("SCRAPES", "200"))
NQN = "nqn.2016-06.io.spdk:cnode1"


def port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Scraper:
    """GET /metrics every `interval` s on one keep-alive connection until stopped."""

    def __init__(self, mport, interval):
        self.mport, self.interval, self.n = mport, interval, 0
        self.stop_ev = threading.Event()
        self.th = threading.Thread(target=self.run)
        self.th.start()

    def get(self, s):
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        head, _, body = buf.partition(b"\r\n\r\n")
        n = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        while len(body) < n:
            body += s.recv(65536)
        self.n += 1
        return body.decode()

    def run(self):
        s = socket.create_connection(("127.0.0.1", self.mport))
        nxt = time.time()
        while not self.stop_ev.is_set():
            self.get(s)
            nxt += self.interval
            self.stop_ev.wait(max(0, nxt - time.time()))
        s.close()

    def stop(self):
        self.stop_ev.set()
        self.th.join()


def busy_s(mport):
    s = socket.create_connection(("127.0.0.1", mport))
    sc = Scraper.__new__(Scraper)
    sc.n = 0
    body = Scraper.get(sc, s)
    s.close()
    m = re.search(r'^daosblk_reactor_busy_seconds_total\{reactor="0"[^}]*\} (\S+)$', body, re.M)
    return float(m.group(1))


def oncpu_ns(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def main():
    d = tempfile.mkdtemp(prefix="dbk_mbench.")
    sock, mport, nport = os.path.join(d, "rpc.sock"), port(), port()
    tgt = subprocess.Popen([TGT, "-m", "0x1", "-r", sock, "--metrics", f"127.0.0.1:{mport}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rpc = lambda *a: subprocess.run([RPC, "-s", sock, *a], check=True, capture_output=True)  # noqa: E731
    try:
        for _ in range(100):
            if os.path.exists(sock) and subprocess.run([RPC, "-s", sock, "framework_wait_init"],
                                                       capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        rpc("nvmf_create_transport", "-t", "TCP")
        rpc("bdev_malloc_create", "512", "4096", "-b", "Malloc0")
        rpc("nvmf_create_subsystem", NQN, "-a")
        rpc("nvmf_subsystem_add_ns", NQN, "Malloc0")
        rpc("nvmf_subsystem_add_listener", NQN, "-t", "tcp", "-a", "127.0.0.1", "-s", str(nport))
        trid = f"trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:{nport} subnqn:{NQN}"
        perf = [PERF, "-r", trid, "-q", "32", "-o", "4096", "-c", "0x2", "--json", "--no-progress"]
        subprocess.run(perf + ["-w", "randread", "-t", "1", "--prefill"], check=True, capture_output=True)

        # 2. reactor time per scrape, idle target: the reactor's own busy accounting, and the CPU time the
        # kernel charged to its thread (reactor 0 runs on the process's main thread; schedstat: ns on CPU)
        t_idle = SCRAPES / 10.0
        b0, c0 = busy_s(mport), oncpu_ns(tgt.pid)
        time.sleep(t_idle)
        b1, c1 = busy_s(mport), oncpu_ns(tgt.pid)
        sc = Scraper(mport, 0.1)
        time.sleep(t_idle)
        sc.stop()
        b2, c2 = busy_s(mport), oncpu_ns(tgt.pid)
        n_idle = sc.n
        per_scrape_us = ((b2 - b1) - (b1 - b0)) / n_idle * 1e6
        cpu_per_scrape_us = ((c2 - c1) - (c1 - c0)) / n_idle / 1e3

        # 1. alternating runs
        res = {"off": [], "on": []}
        eff = {"off": [], "on": []}	# I/Os per second of CPU time the reactor's thread got
        failed = 0
        pair_iops, pair_eff = {}, {}
        for i in range(PAIRS):
            for mode in (("off", "on") if i % 2 == 0 else ("on", "off")):
                sc = Scraper(mport, INTERVAL) if mode == "on" else None
                c0 = oncpu_ns(tgt.pid)
                p = subprocess.run(perf + ["-w", "randread", "-t", str(RUNTIME)], capture_output=True, text=True)
                c1 = oncpu_ns(tgt.pid)
                if sc:
                    sc.stop()
                if p.returncode != 0:	# e.g. a command not completed in 10 s on a starved machine
                    print(f"pair {i + 1} scrape {mode}: daosblk-perf failed: {p.stderr.strip()[-300:]}", flush=True)
                    failed += 1
                    continue
                j = json.loads(p.stdout)
                res[mode].append(j["iops"])
                eff[mode].append(j["ios"] / ((c1 - c0) / 1e9))
                pair_iops.setdefault(i, {})[mode] = j["iops"]
                pair_eff.setdefault(i, {})[mode] = eff[mode][-1]
                print(f"pair {i + 1} scrape {mode:3}: {j['iops']:10.0f} IOPS, {eff[mode][-1]:10.0f} I/Os per reactor "
                      "CPU second" + (f" ({sc.n} scrapes)" if sc else ""), flush=True)
        load = os.getloadavg()
        if PAIRS:
            off, on = statistics.median(res["off"]), statistics.median(res["on"])
            print(f"\n4K randread QD32, malloc, {RUNTIME} s runs, {PAIRS} alternating pairs, scrape every {INTERVAL} s"
                  + (f"; {failed} runs failed (left out)" if failed else ""))
            print(f"median without scraping: {off:.0f} IOPS  (runs: {', '.join(f'{x / 1000:.0f}K' for x in res['off'])})")
            print(f"median with scraping:    {on:.0f} IOPS  (runs: {', '.join(f'{x / 1000:.0f}K' for x in res['on'])})")
            ratios = [d["on"] / d["off"] for d in pair_iops.values() if len(d) == 2]
            print(f"difference of the medians: {(on - off) / off * 100:+.1f} %; median of the pairs' ratios "
                  f"(with / without): {statistics.median(ratios):.3f} (pairs: {', '.join(f'{r:.2f}' for r in ratios)})")
            # The reactor's CPU time covers connection setup too, so this is a ratio, not a cost per I/O.
            er = [d["on"] / d["off"] for d in pair_eff.values() if len(d) == 2]
            print(f"I/Os per reactor CPU second (what a busy machine's preemption does not change): medians "
                  f"{statistics.median(eff['off']):.0f} without, {statistics.median(eff['on']):.0f} with scraping; "
                  f"median of the pairs' ratios {statistics.median(er):.3f} (pairs: {', '.join(f'{r:.2f}' for r in er)})")
        print(f"per scrape, idle target ({n_idle} scrapes at 10/s, minus as long without): reactor busy time "
              f"{per_scrape_us:.0f} us, CPU time of the reactor's thread {cpu_per_scrape_us:.0f} us; "
              f"at one scrape per {INTERVAL} s that is {cpu_per_scrape_us / 1e4 / INTERVAL:.3f} % of the core")
        print(f"conditions: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, load average {load[0]:.2f} {load[1]:.2f} "
              f"{load[2]:.2f}, {os.cpu_count()} CPUs, commit "
              + subprocess.run(["git", "-C", SRC, "rev-parse", "--short", "HEAD"], capture_output=True,
                               text=True).stdout.strip())
    finally:
        tgt.send_signal(signal.SIGINT)
        tgt.wait(60)
        subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    sys.exit(main())
