#!/usr/bin/env bash
# A block size that is not a multiple of 512 gets "must be a multiple of 512" from every bdev create RPC (malloc, null,
# uring, daos), both from daosblk-rpc (which checks BLOCK_SIZE before deriving num_blocks from a size in MiB) and from
# the daemon itself (raw JSON-RPC), and nothing is registered.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
dbk_setup
DFS="$DBK_BUILD_DIR/tools/dfs/daosblk-dfs"
ROOT="$DBK_TMP/dfs"
mkdir -p "$ROOT"
"$DFS" --dfs-root "$ROOT" pool create p >/dev/null && "$DFS" --dfs-root "$ROOT" cont create p c >/dev/null ||
	fail "daosblk-dfs pool/cont create"
truncate -s 8M "$DBK_TMP/u.img"
dbk_start --dfs-root "$ROOT"

# raw METHOD PARAMS-JSON: the daemon's error message (code:message), or "ok"
raw() {
	python3 - "$DBK_SOCK" "$1" "$2" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": sys.argv[2], "params": json.loads(sys.argv[3])}).encode())
buf = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
    try:
        r = json.loads(buf)
        break
    except ValueError:
        continue
print("%d:%s" % (r["error"]["code"], r["error"]["message"]) if "error" in r else "ok")
PY
}
expect_raw() { # expect_raw TEXT METHOD PARAMS
	local out
	out=$(raw "$2" "$3")
	case "$out" in *"$1"*) ;; *) fail "$2 $3: '$out' lacks '$1'" ;; esac
}

for bs in 1000 520 4095 513; do
	# daosblk-rpc (checks it before it derives num_blocks from the size in MiB)
	expect_rpc_error "block_size $bs must be a multiple of 512" bdev_malloc_create 16 "$bs" -b M
	expect_rpc_error "block_size $bs must be a multiple of 512" bdev_null_create N 16 "$bs"
	expect_rpc_error "block_size $bs must be a multiple of 512" bdev_daos_create D p c 16 "$bs"
	expect_rpc_error "block_size $bs must be a multiple of 512" bdev_uring_create "$DBK_TMP/u.img" U "$bs"
	# the daemon, whatever the client
	expect_raw "-22:block_size $bs must be a multiple of 512" bdev_malloc_create "{\"name\":\"M\",\"num_blocks\":64,\"block_size\":$bs}"
	expect_raw "-22:block_size $bs must be a multiple of 512" bdev_null_create "{\"name\":\"N\",\"num_blocks\":64,\"block_size\":$bs}"
	expect_raw "-22:parameter 'block_size': $bs must be a multiple of 512" bdev_daos_create \
		"{\"name\":\"D\",\"pool\":\"p\",\"cont\":\"c\",\"num_blocks\":64,\"block_size\":$bs}"
	expect_raw "-22:block_size $bs must be a multiple of 512" bdev_uring_create \
		"{\"name\":\"U\",\"filename\":\"$DBK_TMP/u.img\",\"block_size\":$bs}"
done
[ "$(json_get "$(rpc bdev_get_bdevs)" 'len(j)')" = 0 ] || fail "a refused create left a bdev: $(rpc bdev_get_bdevs)"
"$DFS" --dfs-root "$ROOT" ls p c | grep -q /D && fail "a refused bdev_daos_create made a file"
# the good ones still work
rpc bdev_malloc_create 16 4096 -b M >/dev/null || fail "malloc 4096"
rpc bdev_null_create N 16 512 >/dev/null || fail "null 512"
rpc bdev_daos_create D p c 16 1024 >/dev/null || fail "daos 1024"
rpc bdev_uring_create "$DBK_TMP/u.img" U 4096 >/dev/null || fail "uring 4096"
[ "$(json_get "$(rpc bdev_get_bdevs)" 'len(j)')" = 4 ] || fail "valid creates: $(rpc bdev_get_bdevs)"
dbk_stop
echo "PASS: block sizes must be a multiple of 512, and say so"
