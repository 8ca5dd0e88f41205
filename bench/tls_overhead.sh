#!/usr/bin/env bash
# What NVMe/TCP over TLS 1.3 costs: the same subsystem through a plain and a secure (--secure-channel)
# listener, daosblk-tgt pinned to core 0, daosblk-perf pinned to core 1, loopback, malloc bdev. Every round
# runs each workload once plainly and once over TLS (in alternating order), so a slow spell of a shared
# machine falls on both; the table shows medians, the ranges and the target's CPU per I/O.
#
#   bench/tls_overhead.sh                    # 10 s runs, 3 rounds
#   RUNTIME=3 ROUNDS=1 bench/tls_overhead.sh # quick look
#
# Environment: DBK_BUILD_DIR (./build), RUNTIME (10), ROUNDS (3), SIZE_MB (256), TGT_MASK (0x1),
# PERF_MASK (0x2), PSK_HASH 01 (TLS_AES_128_GCM_SHA256, default) or 02 (TLS_AES_256_GCM_SHA384),
# WORKLOADS (default "randread-4k-qd32 read-128k-qd16 write-128k-qd16"), RESULTS_DIR (kept JSON).
set -euo pipefail
SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${DBK_BUILD_DIR:-$SRC_DIR/build}
TGT=$BUILD/app/daosblk-tgt RPC=$BUILD/tools/rpc/daosblk-rpc PERF=$BUILD/tools/perf/daosblk-perf
RUNTIME=${RUNTIME:-10} ROUNDS=${ROUNDS:-3} SIZE_MB=${SIZE_MB:-256}
TGT_MASK=${TGT_MASK:-0x1} PERF_MASK=${PERF_MASK:-0x2} PSK_HASH=${PSK_HASH:-01}
WORKLOADS=${WORKLOADS:-randread-4k-qd32 read-128k-qd16 write-128k-qd16}
NQN=nqn.2016-06.io.spdk:tlsbench HOST=nqn.2016-06.io.spdk:tlsbench-host
die() { echo "tls_overhead: error: $*" >&2; exit 1; }
for b in "$TGT" "$RPC" "$PERF"; do [[ -x $b ]] || die "$b not built (set DBK_BUILD_DIR)"; done
[[ $PSK_HASH == 01 || $PSK_HASH == 02 ]] || die "PSK_HASH must be 01 or 02"
TMP=$(mktemp -d /tmp/dbk-tlsbench.XXXXXX)
RESULTS_DIR=${RESULTS_DIR:-$TMP}
mkdir -p "$RESULTS_DIR"
SOCK=$TMP/rpc.sock
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PLAIN_PORT=$(port) TLS_PORT=$(port)
TGT_PID=
cleanup() {
	[[ -n $TGT_PID ]] && kill -INT "$TGT_PID" 2>/dev/null && wait "$TGT_PID" 2>/dev/null
	rm -f "$TMP/psk"
	[[ $RESULTS_DIR == "$TMP" ]] || rm -rf "$TMP"
}
trap cleanup EXIT
rpc() { "$RPC" -s "$SOCK" "$@" >/dev/null || die "rpc $* failed (log: $TMP/tgt.log)"; }

# A random PSK in interchange format (what nvme gen-tls-key writes).
python3 - "$TMP/psk" "$PSK_HASH" <<'EOF'
import base64, os, struct, sys, zlib
n = 32 if sys.argv[2] == "01" else 48
k = os.urandom(n)
with open(sys.argv[1], "w") as f:
    f.write("NVMeTLSkey-1:%s:%s:" % (sys.argv[2], base64.b64encode(k + struct.pack("<I", zlib.crc32(k))).decode()))
EOF
chmod 600 "$TMP/psk"

"$TGT" -m "$TGT_MASK" -r "$SOCK" >"$TMP/tgt.log" 2>&1 &
TGT_PID=$!
for _ in $(seq 100); do
	[[ -S $SOCK ]] && "$RPC" -s "$SOCK" -t 2 spdk_get_version >/dev/null 2>&1 && break
	kill -0 "$TGT_PID" 2>/dev/null || die "daosblk-tgt exited: $(tail -3 "$TMP/tgt.log")"
	sleep 0.1
done
rpc nvmf_create_transport -t TCP
rpc bdev_malloc_create "$SIZE_MB" 4096 -b TlsBench0
rpc keyring_file_add_key tlsbench-psk "$TMP/psk"
rpc nvmf_create_subsystem "$NQN" -s SPDK00000000000001
rpc nvmf_subsystem_add_ns "$NQN" TlsBench0
rpc nvmf_subsystem_add_host "$NQN" "$HOST" --psk tlsbench-psk
rpc nvmf_subsystem_add_listener "$NQN" -t tcp -a 127.0.0.1 -s "$PLAIN_PORT"
rpc nvmf_subsystem_add_listener "$NQN" -t tcp -a 127.0.0.1 -s "$TLS_PORT" --secure-channel

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$TGT_PID/stat"; }
trid() { echo "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:$1 subnqn:$NQN"; }
"$PERF" -r "$(trid "$PLAIN_PORT")" --hostnqn "$HOST" -w write -o 131072 -q 16 -t 1 --prefill -c "$PERF_MASK" \
	--no-progress --json >"$RESULTS_DIR/prefill.json" 2>&1 || die "prefill failed"

run() { # mode workload round
	local mode=$1 wl=$2 r=$3 pat size depth p args=()
	case $wl in
	randread-4k-qd32) pat=randread size=4096 depth=32 ;;
	read-128k-qd16) pat=read size=131072 depth=16 ;;
	write-128k-qd16) pat=write size=131072 depth=16 ;;
	randwrite-4k-qd32) pat=randwrite size=4096 depth=32 ;;
	*) die "unknown workload $wl" ;;
	esac
	p=$PLAIN_PORT
	[[ $mode == tls ]] && { p=$TLS_PORT; args=(--psk "$TMP/psk"); }
	local out=$RESULTS_DIR/$wl.$mode.$r.json c0 c1
	c0=$(cpu_ticks)
	"$PERF" -r "$(trid "$p")" --hostnqn "$HOST" "${args[@]}" -w "$pat" -o "$size" -q "$depth" -t "$RUNTIME" \
		-c "$PERF_MASK" --json --no-progress >"$out" 2>"$out.err" || die "$wl ($mode) failed: $(tail -2 "$out.err")"
	c1=$(cpu_ticks)
	python3 - "$out" "$((c1 - c0))" "$CLK_TCK" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
r["target_cpu_s"] = int(sys.argv[2]) / int(sys.argv[3])
json.dump(r, open(sys.argv[1], "w"))
EOF
	echo "tls_overhead: round $r $wl $mode: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%.0f IOPS" % r["iops"])' "$out")" >&2
}
for r in $(seq "$ROUNDS"); do
	for wl in $WORKLOADS; do
		if (( r % 2 )); then run plain "$wl" "$r"; run tls "$wl" "$r"; else run tls "$wl" "$r"; run plain "$wl" "$r"; fi
	done
done

commit=$(git -C "$SRC_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)
python3 - "$RESULTS_DIR" "$ROUNDS" "$RUNTIME" "$commit" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
	"$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)" $WORKLOADS <<'EOF'
import json, statistics, sys
d, rounds, runtime, commit, ncpu, load, cpu = sys.argv[1:8]
wls = sys.argv[8:]
rounds = int(rounds)
print("| workload | plain IOPS (median, range) | TLS IOPS (median, range) | TLS / plain | target CPU us per I/O plain / TLS | cipher suite |")
print("|---|---|---|---|---|---|")
for wl in wls:
    res = {m: [json.load(open("%s/%s.%s.%d.json" % (d, wl, m, i))) for i in range(1, rounds + 1)] for m in ("plain", "tls")}
    med = {m: statistics.median(r["iops"] for r in res[m]) for m in res}
    rng = {m: "%.1fK-%.1fK" % (min(r["iops"] for r in res[m]) / 1e3, max(r["iops"] for r in res[m]) / 1e3) for m in res}
    cpu_io = {m: statistics.median(1e6 * r["target_cpu_s"] / max(r["ios"], 1) for r in res[m]) for m in res}
    mib = {m: statistics.median(r["mibps"] for r in res[m]) for m in res}
    print("| %s | %.0f (%s), %.0f MiB/s | %.0f (%s), %.0f MiB/s | %.2f | %.1f / %.1f | %s |" % (
        wl, med["plain"], rng["plain"], mib["plain"], med["tls"], rng["tls"], mib["tls"], med["tls"] / med["plain"],
        cpu_io["plain"], cpu_io["tls"], res["tls"][0]["tls"]["cipher_suite"]))
print()
print("Conditions: commit %s, %d rounds of %s s per run, plain and TLS alternating; malloc bdev; target on "
      "core 0, daosblk-perf on core 1, loopback; %s CPUs (%s); load average at the end %s (a shared machine: "
      "other work ran beside it)." % (commit, rounds, runtime, ncpu, cpu, load))
EOF
echo "results: $RESULTS_DIR" >&2
