#!/usr/bin/env bash
# Installs everything, builds daosblk, and serves a DAOS bdev (embedded local
# engine) over NVMe/TCP -- the seed workflow. Run as root on Debian 12.
# Stays in the foreground; Ctrl-C (SIGINT) or SIGTERM stops the target cleanly.
# On every other way out (a failed step, e.g. the port in use) it stops the
# target it started too, and says which step failed.
#
#   DBK_ADDR (127.0.0.1)  DBK_PORT (4420)  DBK_MASK ([0,1])
#   DBK_DFS_ROOT (/var/lib/daosblk)  DBK_SOCK (/var/tmp/daosblk.sock)
#   DBK_NO_BUILD=1: skip install and build, use the binaries in DBK_BUILD_DIR (default build/)
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
ADDR=${DBK_ADDR:-127.0.0.1}
PORT=${DBK_PORT:-4420}
MASK=${DBK_MASK:-[0,1]}
ROOT=${DBK_DFS_ROOT:-/var/lib/daosblk}
SOCK=${DBK_SOCK:-/var/tmp/daosblk.sock}
NQN=nqn.2016-06.io.spdk:cnode1

B=$top/build
if [ "${DBK_NO_BUILD:-0}" = 1 ]; then
    B=${DBK_BUILD_DIR:-$B}
else
    bash scripts/install-deps.sh
    bash scripts/build.sh build
fi
rpc() {
    "$B/tools/rpc/daosblk-rpc" -s "$SOCK" "$@" ||
        { echo "run.sh: 'daosblk-rpc $*' failed (see above); stopping" >&2; return 1; }
}

# The pool and the POSIX container of the seed, created once.
"$B/tools/dfs/daosblk-dfs" --dfs-root "$ROOT" pool create test-pool --if-absent
"$B/tools/dfs/daosblk-dfs" --dfs-root "$ROOT" cont create test-pool test-cont --type POSIX --if-absent

tgt=""
# Stop the target we started (SIGINT: a clean shutdown; SIGKILL if it hangs), whatever the way out.
stop_target() {
    [ -n "$tgt" ] || return 0
    local pid=$tgt rc=0
    tgt=""
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "run.sh: daosblk-tgt (pid $pid) did not stop within 30 s of SIGINT; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || rc=$?
    return $rc
}
on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    stop_target || true
    exit $rc
}
on_signal() {  # Ctrl-C / SIGTERM: the requested way to stop; exit with the target's status
    local rc=0
    trap - EXIT INT TERM
    stop_target || rc=$?
    exit $rc
}
trap on_exit EXIT
trap on_signal INT TERM

"$B/app/daosblk-tgt" -m "$MASK" -r "$SOCK" --dfs-root "$ROOT" &
tgt=$!
for _ in $(seq 1 300); do    # 30 s
    [ -S "$SOCK" ] && "$B/tools/rpc/daosblk-rpc" -s "$SOCK" framework_wait_init >/dev/null 2>&1 && break
    kill -0 "$tgt" 2>/dev/null || { echo "run.sh: daosblk-tgt failed to start" >&2; exit 1; }
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
# The target exiting by itself (spdk_kill_instance, a crash) ends run.sh with its status.
rc=0
wait "$tgt" || rc=$?
tgt=""
exit $rc
