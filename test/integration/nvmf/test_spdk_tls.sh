#!/usr/bin/env bash
# Issue 15: SPDK's user-space initiator, a TLS stack (OpenSSL through SPDK's ssl sock) and PSK code nobody here
# wrote, does I/O with daosblk-tgt over NVMe/TCP TLS 1.3: a SHA-256 and a SHA-384 PSK in interchange format
# (spdk_nvme_perf -S ssl --psk-path, identity NVMe0R0x as SPDK derives it); the qpairs show TLS on the target;
# a wrong key gets no connection and the daemon serves on. Needs an SPDK build beside the project (never
# committed): DBK_SPDK_DIR (default /opt/spdk/spdk or /opt/spdk) with build/bin/spdk_nvme_perf. Skips (77) without.
set -euo pipefail
: "${DBK_BUILD_DIR:?}"
SPDK=${DBK_SPDK_DIR:-}
if [ -z "$SPDK" ]; then
    for d in /opt/spdk/spdk /opt/spdk; do
        [ -x "$d/build/bin/spdk_nvme_perf" ] && { SPDK=$d; break; }
    done
fi
SPERF=${SPDK:-/opt/spdk}/build/bin/spdk_nvme_perf
if [ ! -x "$SPERF" ]; then
    echo "SKIP: no SPDK initiator (spdk_nvme_perf) under /opt/spdk/spdk or /opt/spdk (set DBK_SPDK_DIR)"
    exit 77
fi
for d in ${DBK_SPDK_LIBPATH:-} ${DBK_DAOS_PREFIX:+$DBK_DAOS_PREFIX/lib64} /opt/daos/lib64; do
    [ -d "$d" ] && export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
done
missing=$(ldd "$SPERF" 2>/dev/null | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')
if [ -n "$missing" ]; then
    echo "SKIP: the SPDK build at $SPDK cannot run here: $missing not found (set DBK_SPDK_LIBPATH)"
    exit 77
fi
if ! "$SPERF" --help-full 2>&1 | grep -q -- '--psk-path'; then
    echo "SKIP: $SPERF has no --psk-path (an SPDK without TLS)"
    exit 77
fi
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
NQN=nqn.2016-06.io.spdk:cnode1
H256=nqn.2016-06.io.spdk:host-sha256
H384=nqn.2016-06.io.spdk:host-sha384
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dbk_setup
W=$DBK_TMP
# The NVMe/TCP specification's example key (SHA-256) and a 48-byte one (SHA-384), in interchange format.
python3 - "$W" <<'PY'
import base64, struct, sys, zlib
def ic(key, hh):
    return "NVMeTLSkey-1:%02d:%s:" % (hh, base64.b64encode(key + struct.pack("<I", zlib.crc32(key))).decode())
k256 = bytes.fromhex("5512DBB6737D0106F65975B773DFB011FFC344BCF442E2DD6D8BC4870B5D5B03")
for name, key, hh in (("k256", k256, 1), ("k384", bytes(range(7, 55)), 2), ("wrong", bytes(range(32)), 1)):
    with open("%s/%s" % (sys.argv[1], name), "w") as f:
        f.write(ic(key, hh))
PY
chmod 600 "$W/k256" "$W/k384" "$W/wrong"
dbk_start -m 0x1
rpc nvmf_create_transport -t TCP >/dev/null
rpc bdev_malloc_create 64 512 -b Malloc0 >/dev/null
rpc keyring_file_add_key k256 "$W/k256" >/dev/null
rpc keyring_file_add_key k384 "$W/k384" >/dev/null
rpc nvmf_create_subsystem "$NQN" -s SPDK00000000000001 >/dev/null
rpc nvmf_subsystem_add_ns "$NQN" Malloc0 >/dev/null
rpc nvmf_subsystem_add_listener "$NQN" -t tcp -a 127.0.0.1 -s "$PORT" --secure-channel >/dev/null
rpc nvmf_subsystem_add_host "$NQN" "$H256" --psk k256 >/dev/null
rpc nvmf_subsystem_add_host "$NQN" "$H384" --psk k384 >/dev/null

passed=0
run_tls() { # host keyfile expected-cipher
    local host=$1 key=$2 cipher=$3 out=$W/perf.$1.out
    timeout 60 "$SPERF" --no-huge -s 1024 -S ssl --psk-path "$key" -q 16 -o 4096 -w randrw -M 70 -t 3 \
        -r "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:$PORT subnqn:$NQN hostnqn:$host" >"$out" 2>&1 &
    local pid=$!
    # While it runs: its qpairs on the target are TLS ones with the expected cipher suite.
    local q="" i
    for i in $(seq 1 60); do
        q=$(rpc nvmf_subsystem_get_qpairs "$NQN")
        echo "$q" | grep -q "\"cipher_suite\": \"$cipher\"" && break
        sleep 0.1
    done
    wait "$pid" || { cat "$out"; echo "FAIL: spdk_nvme_perf with $key"; exit 1; }
    echo "$q" | grep -q "\"cipher_suite\": \"$cipher\"" || { echo "$q"; echo "FAIL: no $cipher qpair seen"; exit 1; }
    echo "$q" | grep -q "\"hostnqn\": \"$host\"" || { echo "$q"; echo "FAIL: qpair not bound to $host"; exit 1; }
    local iops
    iops=$(awk '/^Total/ {print int($3)}' "$out")
    [ "${iops:-0}" -gt 0 ] || { cat "$out"; echo "FAIL: spdk_nvme_perf did no I/O with $key"; exit 1; }
    echo "spdk_nvme_perf over TLS ($cipher): $iops IOPS"
    passed=$((passed + 1))
}
run_tls "$H256" "$W/k256" TLS_AES_128_GCM_SHA256
run_tls "$H384" "$W/k384" TLS_AES_256_GCM_SHA384

# The wrong key: no connection, a log line naming the failed handshake, and the daemon serves on.
# (spdk_nvme_perf exits 0 when it finds no controller: its output tells.)
timeout 60 "$SPERF" --no-huge -s 1024 -S ssl --psk-path "$W/wrong" -q 4 -o 4096 -w read -t 1 \
    -r "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:$PORT subnqn:$NQN hostnqn:$H256" >"$W/wrong.out" 2>&1 || true
if grep -q '^Total' "$W/wrong.out" || ! grep -q 'No valid NVMe controllers found' "$W/wrong.out"; then
    cat "$W/wrong.out"; echo "FAIL: spdk_nvme_perf attached with the wrong key"; exit 1
fi
grep -q "TLS handshake on 127.0.0.1:$PORT failed" "$DBK_LOG" || { echo "FAIL: no failed handshake logged"; exit 1; }
kill -0 "$DBK_TGT_PID" || { echo "FAIL: daemon died"; exit 1; }
passed=$((passed + 1))
run_tls "$H256" "$W/k256" TLS_AES_128_GCM_SHA256
dbk_stop
echo "$passed passed, 0 failed"
