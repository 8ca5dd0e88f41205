#!/usr/bin/env bash
# Shared by the kernel-host tests (test/kernel/test_*.sh): runs daosblk-tgt in
# the kernel-initiator's network namespace (nvtest, 10.77.0.1) and a script in
# a qemu guest running Debian's stock kernel NVMe/TCP host (10.77.0.2).
#
# Needs root, the harness in ../shared/kernel-initiator (prepared by its
# setup), and the built binaries in $DBK_BUILD_DIR. DBK_SKIP_KERNEL=1 skips
# (exit 77, reported by CTest as skipped).
set -euo pipefail

: "${DBK_BUILD_DIR:?DBK_BUILD_DIR must point at the build directory}"
: "${DBK_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
KI=${KI_DIR:-$DBK_SOURCE_DIR/../shared/kernel-initiator}
TGT=$DBK_BUILD_DIR/app/daosblk-tgt
RPC=$DBK_BUILD_DIR/tools/rpc/daosblk-rpc
DFS=$DBK_BUILD_DIR/tools/dfs/daosblk-dfs
GUEST_DIR=$DBK_SOURCE_DIR/test/kernel/guest
NETNS=${KI_NETNS:-nvtest}
TARGET_IP=${KI_HOST_IP:-10.77.0.1}
NQN=nqn.2016-06.io.spdk:cnode1

kt_log() { printf '[%s] %s\n' "${KT_NAME:-kernel-test}" "$*" >&2; }
kt_fail() { kt_log "FAIL: $*"; exit 1; }

if [ "${DBK_SKIP_KERNEL:-0}" = 1 ]; then kt_log "skipped (DBK_SKIP_KERNEL=1)"; exit 77; fi
[ "$(id -u)" -eq 0 ] || kt_fail "kernel-host tests need root (netns, tap, qemu)"
[ -x "$KI/run-guest" ] || kt_fail "kernel-initiator harness not found at $KI"
for b in "$TGT" "$RPC"; do [ -x "$b" ] || kt_fail "missing binary $b (build first)"; done

WORK=$(mktemp -d /tmp/dbk-kernel.XXXXXX)
SOCK=$WORK/rpc.sock
TGT_PID=""
GUEST_PID=""
KT_LOCKED=0
TGT_LOG=$WORK/tgt.log
GUEST_LOG=$WORK/guest.log

kt_cleanup() {
    local rc=$?
    set +e
    [ -n "$GUEST_PID" ] && kill "$GUEST_PID" 2>/dev/null && wait "$GUEST_PID" 2>/dev/null
    if [ -n "$TGT_PID" ] && kill -0 "$TGT_PID" 2>/dev/null; then
        kill -KILL "$TGT_PID" 2>/dev/null; wait "$TGT_PID" 2>/dev/null
    fi
    [ "$KT_LOCKED" = 1 ] && "$KI/net-down" >/dev/null 2>&1
    if [ "$rc" -ne 0 ]; then
        kt_log "target log (last 40 lines):"; tail -n 40 "$TGT_LOG" 2>/dev/null | sed 's/^/  tgt| /' >&2
        kt_log "guest log (last 60 lines):"; tail -n 60 "$GUEST_LOG" 2>/dev/null | sed 's/^/  guest| /' >&2
        kt_log "work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap kt_cleanup EXIT

kt_setup() {
    # One guest and one nvtest namespace per machine: kernel tests of every build tree and checkout take
    # turns (CTest's RESOURCE_LOCK covers only one ctest run).
    exec 9>"${KT_LOCK:-/tmp/dbk-kernel-tests.lock}"
    flock -w "${KT_LOCK_WAIT:-1800}" 9 || kt_fail "another kernel test held the lock for too long"
    KT_LOCKED=1
    "$KI/setup" >"$WORK/setup.log" 2>&1 || { cat "$WORK/setup.log" >&2; kt_fail "kernel-initiator setup failed"; }
    "$KI/net-up" >/dev/null
}

rpc() { "$RPC" -s "$SOCK" "$@"; }

# kt_start_target [daosblk-tgt args...]: start in the namespace, wait until it serves RPCs.
# KT_TGT_ENV (an array of NAME=VALUE) is added to the target's environment.
KT_TGT_ENV=()
kt_start_target() {
    ip netns exec "$NETNS" env "${KT_TGT_ENV[@]}" "$TGT" -m 0x1 -r "$SOCK" "$@" >>"$TGT_LOG" 2>&1 &
    TGT_PID=$!
    local i
    for i in $(seq 1 100); do
        if [ -S "$SOCK" ] && rpc framework_wait_init >/dev/null 2>&1; then return 0; fi
        kill -0 "$TGT_PID" 2>/dev/null || kt_fail "daosblk-tgt exited during start"
        sleep 0.1
    done
    kt_fail "daosblk-tgt did not answer RPCs within 10 s"
}

# kt_stop_target: SIGINT, expect a clean exit 0.
kt_stop_target() {
    kill -INT "$TGT_PID"
    local rc=0
    wait "$TGT_PID" || rc=$?
    TGT_PID=""
    [ "$rc" -eq 0 ] || kt_fail "daosblk-tgt exited with $rc after SIGINT"
}

# kt_kill_target: SIGKILL (crash), no checks.
kt_kill_target() {
    kill -KILL "$TGT_PID"; wait "$TGT_PID" 2>/dev/null || true; TGT_PID=""
}

# kt_export BDEV [extra transport args]: the seed's NVMe/TCP configuration for one bdev.
kt_export() {
    local bdev=$1; shift
    rpc nvmf_create_transport -t TCP -u 2097152 -i 2097152 "$@" >/dev/null
    rpc nvmf_create_subsystem "$NQN" -a -s SPDK00000000000001 -d SPDK_Virtual_Controller_1 >/dev/null
    rpc nvmf_subsystem_add_ns "$NQN" "$bdev" >/dev/null
    rpc nvmf_subsystem_add_listener "$NQN" -t tcp -a "$TARGET_IP" -s 4420 >/dev/null
}

# kt_guest_start SCRIPT [run-guest options]: boot the guest in the background.
kt_guest_start() {
    local script=$1; shift
    : >"$GUEST_LOG"
    "$KI/run-guest" --quiet --timeout "${KT_GUEST_TIMEOUT:-400}" --log "$GUEST_LOG" \
        --add "$GUEST_DIR/common.sh" "$@" "$GUEST_DIR/$script" >"$WORK/run-guest.out" 2>&1 &
    GUEST_PID=$!
}

# kt_guest_wait: wait for the guest to finish; returns its script's exit code.
kt_guest_wait() {
    local rc=0
    wait "$GUEST_PID" || rc=$?
    GUEST_PID=""
    return "$rc"
}

# kt_guest SCRIPT [opts]: boot, run, and require exit 0.
kt_guest() {
    kt_guest_start "$@"
    local rc=0
    kt_guest_wait || rc=$?
    [ "$rc" -eq 0 ] || kt_fail "guest script $1 exited with $rc"
}

# kt_wait_signal NAME [timeout_s]: wait for the guest to print @@DBK-SIGNAL:NAME@@.
kt_wait_signal() {
    local name=$1 t=${2:-300} i
    for i in $(seq 1 $((t * 5))); do
        tr -d '\r' <"$GUEST_LOG" 2>/dev/null | grep -aq "@@DBK-SIGNAL:$name@@" && return 0
        [ -n "$GUEST_PID" ] && ! kill -0 "$GUEST_PID" 2>/dev/null && kt_fail "guest ended before signalling $name"
        sleep 0.2
    done
    kt_fail "guest did not signal $name within ${t}s"
}

# kt_guest_value KEY: the last value the guest printed as @@DBK-VALUE:KEY=VALUE@@.
kt_guest_value() {
    tr -d '\r' <"$GUEST_LOG" | grep -ao "@@DBK-VALUE:$1=[^@]*@@" | tail -n1 | sed -E "s/@@DBK-VALUE:$1=(.*)@@/\\1/"
}

# kt_check_stat NAME MIN: the TCP transport's counter NAME (nvmf_get_stats, summed over
# the poll groups) is at least MIN.
kt_check_stat() {
    local s
    s=$(rpc nvmf_get_stats)
    python3 - "$1" "$2" "$s" <<'PY' || kt_fail "transport counter check failed: $1 < $2"
import json, sys
name, want, st = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
v = sum(t.get(name, 0) for g in st["poll_groups"] for t in g["transports"])
print("%s = %d (want >= %d)" % (name, v, want))
sys.exit(0 if v >= want else 1)
PY
}

# kt_check_digests WANT(true|false): every queue of the subsystem negotiated
# header and data digests as WANT (asked while the guest is connected).
kt_check_digests() {
    local q
    q=$(rpc nvmf_subsystem_get_qpairs "$NQN")
    python3 - "$1" "$q" <<'PY' || kt_fail "digest check failed: $q"
import json, sys
want = sys.argv[1] == "true"
qs = json.loads(sys.argv[2])
assert len(qs) >= 2, "expected the admin queue and at least one I/O queue, got %d" % len(qs)
for q in qs:
    assert q["header_digest"] is want and q["data_digest"] is want, q
print("digests %s on %d queues" % (want, len(qs)))
PY
}
