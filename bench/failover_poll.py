#!/usr/bin/env python3
"""bench/failover_stall.sh's stopwatch: SIGKILL gateway A, then poll gateway B's bdev_get_iostat over its RPC
socket (one persistent JSON-RPC connection, no process per poll) until B's write count grows; print the time
from the kill to that first write B completed, in milliseconds.

    failover_poll.py PID_A SOCK_B BDEV [TIMEOUT_S]

B is the non-optimized path, so the host sends it no writes while A is up: its first new write after the kill
is the first I/O the host completed on the surviving path (completion at the host follows one loopback round
trip later). The poll interval is one RPC round trip (0.1-2 ms here), which bounds the resolution.
"""
import json
import os
import signal
import socket
import sys
import time


class Rpc:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = b""
        self.id = 0
        self.dec = json.JSONDecoder()

    def call(self, method, params):
        self.id += 1
        self.s.sendall(json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": self.id}).encode())
        while True:
            text = self.buf.decode(errors="replace").lstrip()
            try:
                obj, end = self.dec.raw_decode(text)
                self.buf = text[end:].encode()
                if obj.get("id") == self.id:
                    if "error" in obj:
                        raise RuntimeError(obj["error"])
                    return obj["result"]
                continue
            except ValueError:
                pass
            chunk = self.s.recv(65536)
            if not chunk:
                raise RuntimeError("RPC connection closed")
            self.buf += chunk


def writes(rpc, bdev):
    return rpc.call("bdev_get_iostat", {"name": bdev})["bdevs"][0]["num_write_ops"]


def main():
    pid, sock, bdev = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 60.0
    rpc = Rpc(sock)
    base = writes(rpc, bdev)
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    polls = 0
    while True:
        polls += 1
        if writes(rpc, bdev) > base:
            t = time.monotonic()
            break
        if time.monotonic() - t0 > timeout:
            print("timeout", flush=True)
            return 1
    print("%.1f %d" % ((t - t0) * 1e3, polls), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
