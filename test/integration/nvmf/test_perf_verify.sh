#!/usr/bin/env bash
# Issue 3: data integrity over loopback NVMe/TCP with daosblk-perf --verify,
# across the in-capsule, R2T and multi-PDU paths (512 B .. 2 MiB), digests off
# and on, queue depth 1..128, malloc and uring bdevs, one and two reactors.
set -euo pipefail
: "${DBK_BUILD_DIR:?}"
TGT=$DBK_BUILD_DIR/app/daosblk-tgt
RPC=$DBK_BUILD_DIR/tools/rpc/daosblk-rpc
PERF=$DBK_BUILD_DIR/tools/perf/daosblk-perf
NQN=nqn.2016-06.io.spdk:cnode1
W=$(mktemp -d /tmp/dbk-perfverify.XXXXXX)
SOCK=$W/rpc.sock
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pid=""
cleanup() {
    local rc=$?
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    [ $rc -ne 0 ] && tail -n 30 "$W/tgt.log" >&2
    rm -rf "$W"
    exit $rc
}
trap cleanup EXIT
rpc() { "$RPC" -s "$SOCK" "$@"; }

start() {  # start MASK BDEV_KIND
    "$TGT" -m "$1" -r "$SOCK" >"$W/tgt.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do [ -S "$SOCK" ] && rpc framework_wait_init >/dev/null 2>&1 && break; sleep 0.1; done
    rpc nvmf_create_transport -t TCP -c 4096 -i 2097152 -u 131072 >/dev/null
    case "$2" in
        malloc) rpc bdev_malloc_create 64 512 -b Dev0 >/dev/null ;;
        uring)  truncate -s 64M "$W/disk.img"; rpc bdev_uring_create "$W/disk.img" Dev0 512 >/dev/null ;;
    esac
    rpc nvmf_create_subsystem "$NQN" -a -s SPDK00000000000001 >/dev/null
    rpc nvmf_subsystem_add_ns "$NQN" Dev0 >/dev/null
    rpc nvmf_subsystem_add_listener "$NQN" -t tcp -a 127.0.0.1 -s "$PORT" >/dev/null
}
stop() {
    kill -INT "$pid"; local rc=0; wait "$pid" || rc=$?; pid=""
    [ $rc -eq 0 ] || { echo "daosblk-tgt exited $rc"; return 1; }
}

runs=0
for mask in 0x1 '[0,1]'; do
    for kind in malloc uring; do
        start "$mask" "$kind"
        #    size    qd  digests  workload
        while read -r size qd dg wl; do
            flags=()
            [ "$dg" = on ] && flags=(-H -I)
            echo "== reactors $mask, $kind, ${size} B, QD $qd, digests $dg, $wl"
            "$PERF" -r "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:$PORT subnqn:$NQN" \
                -q "$qd" -o "$size" -w "$wl" -M 50 -t 1 -c 0x2 --verify "${flags[@]}" >"$W/perf.out" 2>&1 ||
                { cat "$W/perf.out"; echo "FAIL: verify run failed"; exit 1; }
            tail -n 3 "$W/perf.out"
            runs=$((runs + 1))
        done <<'RUNS'
512 1 off randrw
4096 32 off randrw
4096 128 on randrw
8192 16 off randrw
65536 8 on randrw
131072 16 on randrw
2097152 4 off randrw
RUNS
        stop
    done
done

# An empty HOSTNQN (what SPDK's initiator sends without DMI ids): admin and I/O queues connect, data verifies,
# and the target logs the host's address.
start '[0,1]' malloc
echo "== reactors [0,1], malloc, 4096 B, QD 32, empty HOSTNQN"
"$PERF" -r "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:$PORT subnqn:$NQN" --hostnqn '' \
    -q 32 -o 4096 -w randrw -M 50 -t 1 -c 0x2 --verify >"$W/perf.out" 2>&1 ||
    { cat "$W/perf.out"; echo "FAIL: verify run with an empty HOSTNQN failed"; exit 1; }
tail -n 3 "$W/perf.out"
grep -q 'connect: host 127.0.0.1:[0-9]* (hostid [0-9a-f-]*) sent an empty HOSTNQN' "$W/tgt.log" ||
    { echo "FAIL: the target did not log the empty-HOSTNQN host"; exit 1; }
runs=$((runs + 1))
stop
echo "$runs passed, 0 failed"
