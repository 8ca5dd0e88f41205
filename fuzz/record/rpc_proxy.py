#!/usr/bin/env python3
"""A Unix-socket proxy in front of daosblk-tgt's RPC socket that records what clients send.

  rpc_proxy.py LISTEN_PATH TARGET_PATH OUT_FILE

Every byte a client writes is appended to OUT_FILE (connections one after the other, in the order they
finish), and forwarded; answers go back unrecorded. Runs until killed.
"""
import os
import socket
import sys
import threading

listen_path, target_path, out_path = sys.argv[1:4]
lock = threading.Lock()


def pump(src, dst, rec):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            if rec is not None:
                rec.append(b)
            dst.sendall(b)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def serve(c):
    t = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    t.connect(target_path)
    rec = []
    a = threading.Thread(target=pump, args=(c, t, rec))
    b = threading.Thread(target=pump, args=(t, c, None))
    a.start()
    b.start()
    a.join()
    b.join()
    with lock, open(out_path, 'ab') as f:
        f.write(b''.join(rec))
    c.close()
    t.close()


if os.path.exists(listen_path):
    os.unlink(listen_path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(listen_path)
s.listen(16)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
