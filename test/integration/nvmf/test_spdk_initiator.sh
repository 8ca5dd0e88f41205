#!/usr/bin/env bash
# Issue 13: SPDK's user-space initiator, as it comes, attaches to daosblk-tgt. Without DMI ids (as on this
# machine) it sends an empty HOSTNQN. Needs an SPDK build beside the project (never committed):
# DBK_SPDK_DIR (default: /opt/spdk/spdk or /opt/spdk, the first that has them) with build/bin/spdk_nvme_identify and spdk_nvme_perf. Skips (77) without.
set -euo pipefail
: "${DBK_BUILD_DIR:?}"
if [ -z "${DBK_SPDK_DIR:-}" ]; then
    for d in /opt/spdk/spdk /opt/spdk; do [ -x "$d/build/bin/spdk_nvme_perf" ] && { DBK_SPDK_DIR=$d; break; }; done
fi
SPDK=${DBK_SPDK_DIR:-/opt/spdk/spdk}
ID=$SPDK/build/bin/spdk_nvme_identify
SPERF=$SPDK/build/bin/spdk_nvme_perf
if [ ! -x "$ID" ] || [ ! -x "$SPERF" ]; then
    echo "SKIP: no SPDK initiator at $SPDK/build/bin (set DBK_SPDK_DIR)"
    exit 77
fi
# An SPDK built --with-daos links libdaos: DBK_SPDK_LIBPATH (or the DAOS prefix's lib64) goes on the library path.
for d in ${DBK_SPDK_LIBPATH:-} ${DBK_DAOS_PREFIX:+$DBK_DAOS_PREFIX/lib64} /opt/daos/lib64; do
    [ -d "$d" ] && export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
done
missing=$(ldd "$ID" "$SPERF" 2>/dev/null | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')
if [ -n "$missing" ]; then
    echo "SKIP: the SPDK build at $SPDK cannot run here: $missing not found (set DBK_SPDK_LIBPATH)"
    exit 77
fi
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
NQN=nqn.2016-06.io.spdk:cnode1
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dbk_setup
W=$DBK_TMP
dbk_start -m 0x1
rpc nvmf_create_transport -t TCP >/dev/null
rpc bdev_malloc_create 64 512 -b Malloc0 >/dev/null
rpc nvmf_create_subsystem "$NQN" -a -s SPDK00000000000001 >/dev/null
rpc nvmf_subsystem_add_ns "$NQN" Malloc0 >/dev/null
rpc nvmf_subsystem_add_listener "$NQN" -t tcp -a 127.0.0.1 -s "$PORT" >/dev/null
TRID="trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:$PORT subnqn:$NQN"

timeout 60 "$ID" --no-huge -s 1024 -r "$TRID" >"$W/identify.out" 2>&1 ||
    { cat "$W/identify.out"; echo "FAIL: spdk_nvme_identify"; exit 1; }
grep -q 'Serial Number: *SPDK00000000000001' "$W/identify.out" ||
    { cat "$W/identify.out"; echo "FAIL: identify shows no serial"; exit 1; }
grep -q 'Namespace ID:1' "$W/identify.out" || { cat "$W/identify.out"; echo "FAIL: no namespace 1"; exit 1; }

timeout 60 "$SPERF" --no-huge -s 1024 -q 16 -o 4096 -w randrw -M 70 -t 2 -r "$TRID" >"$W/perf.out" 2>&1 ||
    { cat "$W/perf.out"; echo "FAIL: spdk_nvme_perf"; exit 1; }
iops=$(awk '/^Total/ {print int($3)}' "$W/perf.out")
[ "${iops:-0}" -gt 0 ] || { cat "$W/perf.out"; echo "FAIL: spdk_nvme_perf did no I/O"; exit 1; }
# SPDK's host reuses the CIDs of its AERs for the Property Get of CC at shutdown (see nvmf/COMPAT.md)
if grep -q "Failed to read the CC register" "$W/perf.out"; then
    cat "$W/perf.out"; echo "FAIL: spdk_nvme_perf could not read CC at shutdown"; exit 1
fi
echo "spdk_nvme_perf: $iops IOPS"
if [ ! -e /sys/class/dmi/id/product_uuid ]; then
    grep -q 'sent an empty HOSTNQN' "$DBK_LOG" || { echo "FAIL: no empty-HOSTNQN connect logged"; exit 1; }
fi
dbk_stop
echo "2 passed, 0 failed"
