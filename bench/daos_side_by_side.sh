#!/usr/bin/env bash
# One DAOS pool served side by side: daosblk-tgt on the real DAOS engine, SPDK's nvmf_tgt with its bdev_daos,
# and daosblk-tgt on its embedded local engine, measured with the same client (SPDK's spdk_nvme_perf) and the
# same placement: target on TGT_CORE, client on CLIENT_CORE, NVMe/TCP over loopback.
#
#   SPDK_DIR=/opt/spdk/spdk DBK_BUILD_DIR=build-daos bench/daos_side_by_side.sh
#   SPDK_DIR=/opt/spdk TARGETS="local malloc" bench/daos_side_by_side.sh     # no DAOS needed
#   bench/local_vs_malloc.sh                                                  # the README's local-engine table
#
# Runs go in rounds: in each round every target in TARGETS is started, its bdev prefilled, every workload run
# once, and the target stopped; REPEAT rounds. The table gives per target and workload the median of the
# rounds, with the range of IOPS; with both local and malloc in TARGETS, a second table gives the local
# engine's IOPS as a share of malloc's, against issue 13's goals.
#
# Needs: for the daosblk and spdk targets a live DAOS (daos_agent running; the pool DAOS_POOL), daosblk built
# with -DDAOS_PREFIX, SPDK built --with-daos at SPDK_DIR (build/bin/nvmf_tgt, scripts/rpc.py); for CLIENT=spdk
# SPDK_DIR/build/bin/spdk_nvme_perf; root.
#
# Environment (all optional):
#   SPDK_DIR  DAOS_PREFIX (/opt/daos)  DAOS_POOL (test-pool)  SIZE_MB (1024)  BLOCK_SIZE (4096)
#   TARGETS ("daosblk spdk local"; also "malloc"; without daosblk and spdk no DAOS is needed)  WORKLOADS (all of: rr4k_q1 rr4k_q32 rr4k_q128 rw4k_q1 rw4k_q32 rw4k_q128
#   sr128k_q16 sw128k_q16; rrw4k_q32 = 4K randrw 70/30 is not in the default)  RUNTIME (10 s)  REPEAT (3)  TGT_CORE (0)  CLIENT_CORE (1)  PORT (4430)
#   CLIENT (spdk when SPDK_DIR/build/bin/spdk_nvme_perf exists, else daosblk: daosblk-perf, the same -q -o -w -M)
#   SPDK_MEM_MB (1024: SPDK runs with --no-huge -s SPDK_MEM_MB)  RESULTS_DIR (kept; default a temp dir)
#   DBK_TGT_ARGS (extra daosblk-tgt arguments, e.g. --busy-poll)
#   DBK_DFS_LOCAL_MMAP (the local engine's mapping: rw, the default; read; off) is passed on to daosblk-tgt
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${SPDK_DIR:=}"
: "${DBK_BUILD_DIR:=$top/build}"
: "${DAOS_PREFIX:=/opt/daos}" "${DAOS_POOL:=test-pool}" "${SIZE_MB:=1024}" "${BLOCK_SIZE:=4096}"
: "${TARGETS:=daosblk spdk local}" "${RUNTIME:=10}" "${REPEAT:=3}" "${TGT_CORE:=0}" "${CLIENT_CORE:=1}"
: "${PORT:=4430}" "${SPDK_MEM_MB:=1024}"
: "${WORKLOADS:=rr4k_q1 rr4k_q32 rr4k_q128 rw4k_q1 rw4k_q32 rw4k_q128 sr128k_q16 sw128k_q16}"
RESULTS_DIR=${RESULTS_DIR:-$(mktemp -d /tmp/dbk-side.XXXXXX)}
mkdir -p "$RESULTS_DIR"
NQN=nqn.2016-06.io.spdk:cnode1
TRID="trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:$PORT subnqn:$NQN"
TGT=$DBK_BUILD_DIR/app/daosblk-tgt
DRPC=$DBK_BUILD_DIR/tools/rpc/daosblk-rpc
DPERF=$DBK_BUILD_DIR/tools/perf/daosblk-perf
DFS=$DBK_BUILD_DIR/tools/dfs/daosblk-dfs
SNVMF=$SPDK_DIR/build/bin/nvmf_tgt
SPERF=$SPDK_DIR/build/bin/spdk_nvme_perf
SRPC=$SPDK_DIR/scripts/rpc.py
SOCK=$RESULTS_DIR/rpc.sock
# SPDK's binaries link libdaos (no RUNPATH to DAOS's library directory)
SPDK_ENV=(env "LD_LIBRARY_PATH=$DAOS_PREFIX/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
if [ -z "${CLIENT:-}" ]; then
    CLIENT=daosblk
    [ -n "$SPDK_DIR" ] && [ -x "$SPERF" ] && CLIENT=spdk
fi
case $CLIENT in spdk|daosblk) ;; *) echo "CLIENT must be spdk or daosblk" >&2; exit 2;; esac
for b in "$TGT" "$DRPC" "$DPERF" "$DFS"; do
    [ -x "$b" ] || { echo "missing $b" >&2; exit 2; }
done
if [ "$CLIENT" = spdk ]; then
    [ -n "$SPDK_DIR" ] || { echo "CLIENT=spdk needs SPDK_DIR" >&2; exit 2; }
    [ -x "$SPERF" ] || { echo "missing $SPERF" >&2; exit 2; }
fi
case " $TARGETS " in *" spdk "*)
    [ -n "$SPDK_DIR" ] || { echo "TARGETS with spdk need SPDK_DIR" >&2; exit 2; }
    for b in "$SNVMF" "$SRPC"; do [ -x "$b" ] || { echo "missing $b" >&2; exit 2; }; done;; esac
for w in $WORKLOADS; do
    case $w in rr4k_q1|rr4k_q32|rr4k_q128|rw4k_q1|rw4k_q32|rw4k_q128|rrw4k_q32|sr128k_q16|sw128k_q16) ;;
        *) echo "unknown workload $w" >&2; exit 2;; esac
done
wl_args() { # name -> spdk_nvme_perf -q -o -w
    case $1 in
        rr4k_q*) echo "-q ${1#rr4k_q} -o 4096 -w randread";;
        rw4k_q*) echo "-q ${1#rw4k_q} -o 4096 -w randwrite";;
        rrw4k_q32) echo "-q 32 -o 4096 -w randrw -M 70";;
        sr128k_q16) echo "-q 16 -o 131072 -w read";;
        sw128k_q16) echo "-q 16 -o 131072 -w write";;
    esac
}

PID=""
CONT=dbk-bench-$$
LROOT=$RESULTS_DIR/dfs-root
cleanup() {
    set +e
    [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    [ "${NEED_DAOS:-0}" = 1 ] && "$DAOS_PREFIX/bin/daos" container destroy --force "$DAOS_POOL" "$CONT" >/dev/null 2>&1
}
trap cleanup EXIT
case " $TARGETS " in *" daosblk "*|*" spdk "*) NEED_DAOS=1;; *) NEED_DAOS=0;; esac
[ "$NEED_DAOS" = 1 ] && "$DAOS_PREFIX/bin/daos" container create "$DAOS_POOL" "$CONT" --type POSIX >/dev/null
mkdir -p "$LROOT"
"$DFS" --dfs-root "$LROOT" pool create bench-pool >/dev/null
"$DFS" --dfs-root "$LROOT" cont create bench-pool bench-cont --type POSIX >/dev/null

wait_sock() {
    local i
    for i in $(seq 1 300); do
        [ -S "$SOCK" ] && "$@" >/dev/null 2>&1 && return 0
        kill -0 "$PID" 2>/dev/null || { echo "target exited at start" >&2; return 1; }
        sleep 0.1
    done
    return 1
}

start_target() { # daosblk|spdk|local
    rm -f "$SOCK"
    case $1 in
    daosblk|local|malloc)
        local eng=(--dfs-engine daos) pool=$DAOS_POOL cont=$CONT
        [ "$1" = daosblk ] || { eng=(--dfs-root "$LROOT"); pool=bench-pool; cont=bench-cont; }
        taskset -c "$TGT_CORE" "$TGT" -m "[$TGT_CORE]" -r "$SOCK" "${eng[@]}" ${DBK_TGT_ARGS:-} >>"$RESULTS_DIR/$1.log" 2>&1 &
        PID=$!
        wait_sock "$DRPC" -s "$SOCK" framework_wait_init
        "$DRPC" -s "$SOCK" nvmf_create_transport -t TCP -u 131072 -i 131072 >/dev/null
        if [ "$1" = malloc ]; then
            "$DRPC" -s "$SOCK" bdev_malloc_create "$SIZE_MB" "$BLOCK_SIZE" -b bench0 >/dev/null
        else
            "$DRPC" -s "$SOCK" bdev_daos_create bench0 "$pool" "$cont" "$SIZE_MB" "$BLOCK_SIZE" >/dev/null
        fi
        "$DRPC" -s "$SOCK" nvmf_create_subsystem "$NQN" -a -s SPDK00000000000001 >/dev/null
        "$DRPC" -s "$SOCK" nvmf_subsystem_add_ns "$NQN" bench0 >/dev/null
        "$DRPC" -s "$SOCK" nvmf_subsystem_add_listener "$NQN" -t tcp -a 127.0.0.1 -s "$PORT" >/dev/null
        ;;
    spdk)
        "${SPDK_ENV[@]}" "$SNVMF" -m "[$TGT_CORE]" -r "$SOCK" --no-huge -s "$SPDK_MEM_MB" >>"$RESULTS_DIR/spdk.log" 2>&1 &
        PID=$!
        wait_sock "$SRPC" -s "$SOCK" framework_wait_init
        "$SRPC" -s "$SOCK" nvmf_create_transport -t TCP -u 131072 -i 131072 >/dev/null
        "$SRPC" -s "$SOCK" bdev_daos_create bench1 "$DAOS_POOL" "$CONT" "$SIZE_MB" "$BLOCK_SIZE" >/dev/null
        "$SRPC" -s "$SOCK" nvmf_create_subsystem "$NQN" -a -s SPDK00000000000001 >/dev/null
        "$SRPC" -s "$SOCK" nvmf_subsystem_add_ns "$NQN" bench1 >/dev/null
        "$SRPC" -s "$SOCK" nvmf_subsystem_add_listener "$NQN" -t tcp -a 127.0.0.1 -s "$PORT" >/dev/null
        ;;
    esac
}

stop_target() {
    kill -INT "$PID"
    local i
    for i in $(seq 1 300); do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }

echo "results in $RESULTS_DIR" >&2
for r in $(seq 1 "$REPEAT"); do
    for t in $TARGETS; do
        start_target "$t"
        if [ "$r" = 1 ]; then # each target's own file is written once, in round 1
            taskset -c "$CLIENT_CORE" "$DPERF" -r "$TRID" -w write -o 131072 -q 16 --prefill -t 1 --no-progress \
                >/dev/null 2>&1 || true
        fi
        for w in $WORKLOADS; do
            out=$RESULTS_DIR/$t.$w.$r.txt
            c0=$(cpu_ticks); t0=$(date +%s.%N)
            if [ "$CLIENT" = spdk ]; then
                # shellcheck disable=SC2046
                taskset -c "$CLIENT_CORE" "${SPDK_ENV[@]}" "$SPERF" --no-huge -s "$SPDK_MEM_MB" -c "[$CLIENT_CORE]" $(wl_args "$w") \
                    -t "$RUNTIME" -L -r "$TRID" >"$out" 2>&1 || echo "run $t $w $r failed (see $out)" >&2
            else
                # shellcheck disable=SC2046
                taskset -c "$CLIENT_CORE" "$DPERF" -c "[$CLIENT_CORE]" $(wl_args "$w") -t "$RUNTIME" -r "$TRID" --json \
                    --no-progress >"$out.json" 2>"$out" || echo "run $t $w $r failed (see $out)" >&2
            fi
            c1=$(cpu_ticks); t1=$(date +%s.%N)
            echo "tgt_cpu_pct $(echo "($c1 - $c0) * 100 / $(getconf CLK_TCK) / ($t1 - $t0)" | bc -l)" >>"$out"
            if [ "$CLIENT" = spdk ]; then
                echo "$t $w round $r: $(awk '/^Total/ {print int($3) " IOPS"}' "$out")" >&2
            else
                echo "$t $w round $r: $(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["iops"]), "IOPS")' "$out.json" 2>/dev/null)" >&2
            fi
        done
        stop_target
    done
done

python3 - "$RESULTS_DIR" "$TARGETS" "$WORKLOADS" "$REPEAT" "$CLIENT" <<'PY'
import json, re, statistics, sys
d, targets, wls, rep = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), int(sys.argv[4])
def parse(path):
    r = {}
    try:
        txt = open(path).read()
    except OSError:
        return None
    try:  # daosblk-perf --json
        j = json.load(open(path + ".json"))
        r = {"iops": j["iops"], "mib": j["mibps"], "avg": float("nan"), "p50": j["latency_us"]["p50"],
             "p99": j["latency_us"]["p99"], "p999": j["latency_us"]["p99_9"]}
        mm = re.search(r"^tgt_cpu_pct ([\d.]+)", txt, re.M)
        r["cpu"] = float(mm.group(1)) if mm else float("nan")
        return r
    except (OSError, ValueError, KeyError):
        pass
    m = re.search(r"^Total\s*:\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)", txt, re.M)
    if not m:
        return None
    r["iops"], r["mib"], r["avg"] = map(float, m.groups())
    for name, pct in (("p50", "50.00000"), ("p99", "99.00000"), ("p999", "99.90000")):
        # the summary of the namespace's latency histogram: "  99.00000% :   123.456us"
        mm = re.search(r"^\s*" + re.escape(pct) + r"%\s*:\s*([\d.]+)us", txt, re.M)
        r[name] = float(mm.group(1)) if mm else float("nan")
    mm = re.search(r"^tgt_cpu_pct ([\d.]+)", txt, re.M)
    r["cpu"] = float(mm.group(1)) if mm else float("nan")
    return r
meds = {}
print("| workload | target | IOPS (median, range) | MiB/s | p50 us | p99 us | p99.9 us | target CPU % |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for w in wls:
    for t in targets:
        runs = [x for x in (parse("%s/%s.%s.%d.txt" % (d, t, w, i)) for i in range(1, rep + 1)) if x]
        if not runs:
            print("| %s | %s | failed | | | | | |" % (w, t))
            continue
        med = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
        lo, hi = min(x["iops"] for x in runs), max(x["iops"] for x in runs)
        print("| %s | %s | %.0f (%.0f-%.0f) | %.1f | %.0f | %.0f | %.0f | %.0f |" % (
            w, t, med["iops"], lo, hi, med["mib"], med["p50"], med["p99"], med["p999"], med["cpu"]))
        meds[(t, w)] = med["iops"]
if "local" in targets and "malloc" in targets:
    goal = {"rr4k_q1": 85, "rr4k_q32": 85, "rr4k_q128": 85, "rw4k_q1": 60, "rw4k_q32": 60, "rw4k_q128": 60,
            "rrw4k_q32": None, "sr128k_q16": 80, "sw128k_q16": 80}
    print()
    print("| workload | local IOPS | malloc IOPS | local / malloc | goal (issue 13) |")
    print("|---|---:|---:|---:|---|")
    for w in wls:
        a, b = meds.get(("local", w)), meds.get(("malloc", w))
        if a is None or not b:
            continue
        g = goal.get(w)
        print("| %s | %.0f | %.0f | %.0f %% | %s |" % (w, a, b, 100 * a / b,
              "-" if g is None else "%d %%, %s" % (g, "met" if 100 * a / b >= g else "not met")))
print()
print("Client: %s; medians of %d round(s)." % ("SPDK spdk_nvme_perf -L" if sys.argv[5] == "spdk" else "daosblk-perf", rep))
PY
echo
echo "Conditions: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$top" diff --quiet HEAD 2>/dev/null || echo ' (dirty tree)');" \
    "build $DBK_BUILD_DIR; kernel $(uname -r); $(nproc) cores; targets on core $TGT_CORE, client on core $CLIENT_CORE;" \
    "${SIZE_MB} MiB bdevs of ${BLOCK_SIZE} B blocks prefilled with 128K writes; local engine root on $(df -T "$LROOT" | awk 'NR == 2 {print $2}');" \
    "DBK_DFS_LOCAL_MMAP=${DBK_DFS_LOCAL_MMAP:-rw (default)}; ${RUNTIME} s runs; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
