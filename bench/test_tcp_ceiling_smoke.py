#!/usr/bin/env python3
"""bench_tcp_ceiling_smoke: daosblk-tcp-ceiling moves real bytes over loopback for 1 s.

Fails unless the tool exits 0 and its JSON shows data moved (bytes, messages, GB/s all > 0) with the
sender's and receiver's totals equal; also checks that bad usage is refused with exit status 2.
"""
import json
import os
import subprocess
import sys

build = os.environ.get("DBK_BUILD_DIR") or os.path.join(os.path.dirname(__file__), "..", "build")
tool = os.path.join(build, "bench", "daosblk-tcp-ceiling")
cores = sorted(os.sched_getaffinity(0))
send_core, recv_core = cores[0], cores[1] if len(cores) > 1 else cores[0]


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


args = [tool, "--size", "128K", "--seconds", "1", "--send-core", str(send_core),
        "--recv-core", str(recv_core), "--json"]
p = subprocess.run(args, capture_output=True, text=True, timeout=30)
if p.returncode != 0:
    fail(f"{' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
try:
    r = json.loads(p.stdout)
except ValueError as e:
    fail(f"output is not JSON ({e}): {p.stdout!r}")
print(json.dumps(r))

if not (isinstance(r.get("bytes"), int) and r["bytes"] > 0):
    fail(f"no data moved: bytes={r.get('bytes')!r}")
if not (r.get("messages", 0) > 0 and r.get("gbps", 0) > 0):
    fail(f"messages={r.get('messages')!r} gbps={r.get('gbps')!r}")
if r["messages"] * 131072 > r["sent_total"]:
    fail(f"{r['messages']} messages of 128 KiB but only {r['sent_total']} bytes sent")
if r["sent_total"] != r["received_total"] or r["received_total"] < r["bytes"]:
    fail(f"sent {r['sent_total']} received {r['received_total']} window {r['bytes']}")
if r.get("ok") is not True or r["size"] != 131072:
    fail(f"ok={r.get('ok')!r} size={r.get('size')!r}")
if not 0.5 < r["seconds"] < 5:
    fail(f"window {r['seconds']} s for --seconds 1")
for side, core in (("sender", send_core), ("receiver", recv_core)):
    s = r[side]
    if s["core"] != core or s["bytes"] <= 0 or s["calls"] <= 0 or s["cpu_pct"] <= 0:
        fail(f"{side}: {s}")

with open("/proc/sys/net/ipv4/tcp_congestion_control") as f:
    system_cc = f.read().strip()
if r.get("congestion_control") != system_cc:
    fail(f"congestion_control {r.get('congestion_control')!r}, the system's is {system_cc!r}")
# reno is always built in: asked for, it is what the connection runs
p = subprocess.run([tool, "--seconds", "0.2", "--congestion-control", "reno", "--json"], capture_output=True,
                   text=True, timeout=30)
if p.returncode != 0 or json.loads(p.stdout).get("congestion_control") != "reno":
    fail(f"--congestion-control reno: exit {p.returncode}, {p.stdout.strip()} {p.stderr.strip()}")

for bad in (["--congestion-control", "nosuch"], ["--size", "0"], ["--seconds", "0"], ["--send-core", "x"], ["--bogus"], ["extra"]):
    p = subprocess.run([tool, *bad], capture_output=True, text=True, timeout=30)
    if p.returncode != 2:
        fail(f"{bad} exited {p.returncode}, expected 2 (bad usage)")
p = subprocess.run([tool, "--help"], capture_output=True, text=True, timeout=30)
if p.returncode != 0 or "--send-core" not in p.stdout:
    fail("--help")
print("ok")
