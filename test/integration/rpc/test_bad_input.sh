#!/bin/bash
# Bad input of every kind gets a clean error and the daemon keeps serving.
. "$(dirname "$0")/../lib/common.sh"
dbk_setup
dbk_start -m 0x1

# Bad params (server-side checks), through raw params so the client does not catch them first.
expect_rpc_error "block_size" bdev_malloc_create 0.9765625 1000 -b X
expect_rpc_error "-32602" bdev_get_bdevs -t -5
expect_rpc_error "subsystem 'nope' not found" framework_get_config nope
expect_rpc_error "-32601" no_such_method
expect_rpc_error "-32601" no_such_method '{"a":1}'
# Client-side argument errors: exit 1 with a message, nothing sent.
expect_rpc_error "missing argument BLOCK_SIZE" bdev_malloc_create 8
expect_rpc_error "not a whole number" bdev_malloc_create 0.001 4096
# Duplicate names.
rpc bdev_malloc_create 1 512 -b Dup >/dev/null || fail "create Dup"
expect_rpc_error "-17" bdev_malloc_create 1 512 -b Dup
expect_rpc_error "-17" bdev_null_create Dup 1 512
# Missing backing file, deleting what does not exist.
expect_rpc_error "error -" bdev_uring_create "$DBK_TMP/does-not-exist" U0
expect_rpc_error "error -" bdev_malloc_delete Nope
[ "$(json_get "$(rpc bdev_get_bdevs)" 'len(j)')" = 1 ] || fail "half-registered bdevs left"
dbk_alive

# Raw socket abuse: garbage, malformed, truncated-then-close, invalid requests, oversize, many at once.
python3 - "$DBK_SOCK" <<'PY' || fail "raw socket checks"
import json, socket, sys
path = sys.argv[1]

def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s

def read_all(s):
    data = b""
    while True:
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            break
        if not d:
            break
        data += d
    return data

def responses(data):
    dec, out, i = json.JSONDecoder(), [], 0
    text = data.decode()
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            break
        obj, i = dec.raw_decode(text, i)
        out.append(obj)
    return out

# Garbage: parse error, then closed.
s = conn(); s.sendall(b"\x00\xffgarbage!!"); r = responses(read_all(s))
assert len(r) == 1 and r[0]["error"]["code"] == -32700 and r[0]["id"] is None, r
# Malformed after a good request: the good one answered first.
s = conn(); s.sendall(b'{"jsonrpc":"2.0","method":"spdk_get_version","id":1}{"jsonrpc":"2.0",,}')
r = responses(read_all(s))
assert r[0]["id"] == 1 and "result" in r[0] and r[1]["error"]["code"] == -32700, r
# Invalid requests keep the connection open; answers in order.
s = conn()
s.sendall(b'[1]{"jsonrpc":"2.0","id":2}{"jsonrpc":"2.0","method":"x","params":3,"id":3}'
          b'{"jsonrpc":"2.0","method":"nope","id":4}{"jsonrpc":"2.0","method":"spdk_get_version","id":5}')
s.shutdown(socket.SHUT_WR)
r = responses(read_all(s))
assert [x.get("error", {}).get("code") for x in r] == [-32600, -32600, -32600, -32601, None], r
assert r[4]["id"] == 5
# Truncated request then disconnect: nothing breaks.
s = conn(); s.sendall(b'{"jsonrpc":"2.0","method":"spdk_get'); s.close()
# Oversize request: error, closed.
s = conn()
try:
    s.sendall(b'{"jsonrpc":"2.0","method":"x","params":{"s":"' + b"a" * (5 << 20))
except (BrokenPipeError, ConnectionResetError):
    pass
r = responses(read_all(s))
assert r and r[0]["error"]["code"] == -32600 and "too large" in r[0]["error"]["message"], r
# 32 clients at once.
cs = [conn() for _ in range(32)]
for i, c in enumerate(cs):
    c.sendall(json.dumps({"jsonrpc": "2.0", "method": "bdev_get_bdevs", "id": i}).encode())
for i, c in enumerate(cs):
    c.shutdown(socket.SHUT_WR)
    r = responses(read_all(c))
    assert len(r) == 1 and r[0]["id"] == i and isinstance(r[0]["result"], list), r
PY
dbk_alive
[ "$(json_get "$(rpc bdev_get_bdevs)" 'len(j)')" = 1 ] || fail "bdev list changed"

# A second daemon on the same live socket is refused and leaves the first alone.
"$DBK_TGT" -m 0x1 -r "$DBK_SOCK" >"$DBK_TMP/second.log" 2>&1 && fail "second daemon on a live socket started"
grep -q "another process is serving" "$DBK_TMP/second.log" || fail "second daemon: $(cat "$DBK_TMP/second.log")"
dbk_alive

dbk_stop
echo PASS
