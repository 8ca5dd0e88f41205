#!/usr/bin/env bash
# Installs everything, builds daosblk, and serves a DAOS bdev (embedded local
# engine) over NVMe/TCP -- the seed workflow. Run as root on Debian 12.
# Stays in the foreground; Ctrl-C stops the target cleanly.
#
#   DBK_ADDR (127.0.0.1)  DBK_PORT (4420)  DBK_MASK ([0,1])
#   DBK_DFS_ROOT (/var/lib/daosblk)  DBK_SOCK (/var/tmp/daosblk.sock)
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
ADDR=${DBK_ADDR:-127.0.0.1}
PORT=${DBK_PORT:-4420}
MASK=${DBK_MASK:-[0,1]}
ROOT=${DBK_DFS_ROOT:-/var/lib/daosblk}
SOCK=${DBK_SOCK:-/var/tmp/daosblk.sock}
NQN=nqn.2016-06.io.spdk:cnode1

bash scripts/install-deps.sh
bash scripts/build.sh build
B=$top/build
rpc() { "$B/tools/rpc/daosblk-rpc" -s "$SOCK" "$@"; }

# The pool and the POSIX container of the seed, created once.
"$B/tools/dfs/daosblk-dfs" --dfs-root "$ROOT" pool create test-pool --if-absent
"$B/tools/dfs/daosblk-dfs" --dfs-root "$ROOT" cont create test-pool test-cont --type POSIX --if-absent

"$B/app/daosblk-tgt" -m "$MASK" -r "$SOCK" --dfs-root "$ROOT" &
tgt=$!
trap 'kill -INT $tgt 2>/dev/null; wait $tgt' INT TERM
for _ in $(seq 1 100); do
    [ -S "$SOCK" ] && rpc framework_wait_init >/dev/null 2>&1 && break
    kill -0 $tgt 2>/dev/null || { echo "run.sh: daosblk-tgt failed to start" >&2; exit 1; }
    sleep 0.1
done

rpc nvmf_create_transport -t TCP -u 2097152 -i 2097152
rpc bdev_daos_create daosdev0 test-pool test-cont 64 4096
rpc nvmf_create_subsystem "$NQN" -a -s SPDK00000000000001 -d SPDK_Virtual_Controller_1
rpc nvmf_subsystem_add_ns "$NQN" daosdev0
rpc nvmf_subsystem_add_listener "$NQN" -t tcp -a "$ADDR" -s "$PORT"

cat <<MSG

daosblk-tgt is serving DAOS bdev daosdev0 (pool test-pool, container test-cont,
64 MiB, 4 KiB blocks, files under $ROOT) as $NQN on $ADDR:$PORT.
On a host:  nvme connect-all -t tcp -a $ADDR -s $PORT && mkfs.ext4 -F -O mmp /dev/nvme0n1
Load test:  $B/tools/perf/daosblk-perf -r 'trtype:TCP adrfam:IPv4 traddr:$ADDR trsvcid:$PORT subnqn:$NQN' -q 32 -o 4096 -w randread -t 10
Ctrl-C stops the target.
MSG
wait $tgt
