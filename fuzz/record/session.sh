#!/usr/bin/env bash
# One recording session (run by record.sh inside its network namespace): a real daosblk-tgt configured with
# the seed workflow through daosblk-rpc (recorded by rpc_proxy.py), then daosblk-perf runs against it
# (captured by record.sh's tcpdump), then save_config. Usage: session.sh BUILD_DIR OUT_DIR
set -euo pipefail
B=$1
O=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TGT=$B/app/daosblk-tgt
RPC=$B/tools/rpc/daosblk-rpc
PERF=$B/tools/perf/daosblk-perf
NQN=nqn.2016-06.io.spdk:cnode1
mkdir -p "$O/dfs"
"$TGT" -m 0x1 -r "$O/tgt.sock" --dfs-root "$O/dfs" >"$O/tgt.log" 2>&1 &
tgt=$!
python3 "$here/rpc_proxy.py" "$O/rpc.sock" "$O/tgt.sock" "$O/rpc-session.bin" &
proxy=$!
trap 'kill $proxy 2>/dev/null; kill -INT $tgt 2>/dev/null; wait $tgt 2>/dev/null' EXIT
for _ in $(seq 1 100); do [ -S "$O/tgt.sock" ] && [ -S "$O/rpc.sock" ] && break; sleep 0.1; done
r() { "$RPC" -s "$O/rpc.sock" "$@"; }
r framework_wait_init >/dev/null
r rpc_get_methods >/dev/null
r spdk_get_version >/dev/null
r nvmf_create_transport -t TCP -u 131072 -i 131072 -c 8192 >/dev/null
r bdev_malloc_create 1 4096 -b Malloc0 >/dev/null
r bdev_malloc_create 1 512 -b Malloc1 >/dev/null
r bdev_null_create Null0 1024 4096 >/dev/null
r nvmf_create_subsystem "$NQN" -a -s SPDK00000000000001 -d SPDK_Virtual_Controller_1 >/dev/null
r nvmf_subsystem_add_ns "$NQN" Malloc0 >/dev/null
r nvmf_subsystem_add_ns "$NQN" Null0 >/dev/null
r nvmf_subsystem_add_ns "$NQN" Malloc1 >/dev/null
r nvmf_subsystem_add_listener "$NQN" -t tcp -a 127.0.0.1 -s 4420 >/dev/null
r nvmf_subsystem_add_listener discovery -t tcp -a 127.0.0.1 -s 4420 >/dev/null 2>&1 || true
r nvmf_get_subsystems >/dev/null
r nvmf_get_transports >/dev/null
r bdev_get_bdevs >/dev/null
r bdev_get_bdevs -b Malloc0 >/dev/null
r bdev_get_iostat >/dev/null
r framework_get_reactors >/dev/null
r nvmf_get_stats >/dev/null
r save_config >"$O/config-full.json"
# Errors the methods report (recorded too).
r bdev_malloc_create 0 4096 -b Bad >/dev/null 2>&1 || true
r nvmf_subsystem_add_ns nqn.bad Malloc0 >/dev/null 2>&1 || true
r bdev_get_bdevs -b NoSuch >/dev/null 2>&1 || true
r nvmf_create_subsystem "bad nqn" >/dev/null 2>&1 || true
cp "$O/rpc-session.bin" "$O/rpc-seed.bin"

# Traffic: daosblk-perf against namespace 1 (4 KiB blocks) and 3 (512 B), digests off and on, discovery too.
T="trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:4420"
for args in "-n 1 -q 4 -o 4096 -w randrw -M 50" "-n 1 -q 2 -o 65536 -w write" "-n 1 -q 2 -o 131072 -w read" \
    "-n 3 -q 8 -o 512 -w randrw -M 70" "-n 1 -q 4 -o 4096 -w randrw -M 50 -H -I" "-n 1 -q 1 -o 16384 -w randrw --verify"; do
    # shellcheck disable=SC2086
    timeout 20 "$PERF" -r "$T subnqn:$NQN" $args -t 1 -c 0x1 >"$O/perf.out" 2>&1 ||
        echo "session.sh: perf $args failed: $(tail -n 2 "$O/perf.out")" >&2
done
timeout 20 "$PERF" -r "$T" -q 1 -o 4096 -w read -t 1 -c 0x1 >"$O/perf.out" 2>&1 || true

# The RPC traffic of a second client session: deletes and teardown.
: >"$O/rpc-session.bin"
r nvmf_subsystem_remove_ns "$NQN" 3 >/dev/null
r nvmf_subsystem_remove_listener "$NQN" -t tcp -a 127.0.0.1 -s 4420 >/dev/null
r nvmf_delete_subsystem "$NQN" >/dev/null
r bdev_malloc_delete Malloc1 >/dev/null
r save_config >"$O/config-partial.json"
cp "$O/rpc-session.bin" "$O/rpc-teardown.bin"
