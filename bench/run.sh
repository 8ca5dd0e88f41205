#!/usr/bin/env bash
# daosblk benchmark: daosblk-tgt pinned to core 0, daosblk-perf pinned to core 1, NVMe/TCP over loopback.
#
#   bench/run.sh                      # malloc bdev, 15 s per run, 3 repeats (median)
#   RUNTIME=3 REPEAT=1 bench/run.sh   # quick look
#   BUSY_POLL=1 bench/run.sh          # target reactors never sleep (--busy-poll); same as: bench/run.sh --busy-poll
#   bench/run.sh --quick              # RUNTIME=3 REPEAT=1 unless set; --digests = DIGESTS=1
#   BDEV=uring URING_FILE=/mnt/nvme/bench.img bench/run.sh
#   BDEV=daos DAOS_POOL=pool0 DAOS_CONT=cont0 [DAOS_ENGINE=daos] bench/run.sh
#
# Environment (all optional):
#   DBK_BUILD_DIR  build directory with app/daosblk-tgt, tools/rpc/daosblk-rpc, tools/perf/daosblk-perf (./build)
#   BDEV           malloc | uring | daos (default malloc)
#   SIZE_MB        bdev size in MiB (default 512); BLOCK_SIZE (default 4096)
#   URING_FILE     backing file for BDEV=uring (created sparse with SIZE_MB if missing)
#   DAOS_POOL, DAOS_CONT   pool/container for BDEV=daos (default bench-pool/bench-cont; created in the local
#                  engine with daosblk-dfs when DAOS_ENGINE=local); DAOS_ENGINE local|daos; DFS_ROOT (local engine)
#   ADDR, PORT     listener (127.0.0.1, 4420); NQN (nqn.2016-06.io.spdk:cnode1)
#   TGT_MASK       target core mask (0x1); PERF_MASK perf core mask (0x2); BUSY_POLL=1 adds --busy-poll
#   RUNTIME        seconds per run (15); REPEAT runs per workload (3); WORKLOADS (space-separated names below)
#   DIGESTS=1      run daosblk-perf with -H -D (header and data digests)
#   PREFILL        1: write the whole bdev once before the workloads (default 1 for uring/daos, 0 for malloc),
#                  so reads hit written blocks rather than holes
#   RESULTS_DIR    keep every run's JSON there (default: a temporary directory, path printed at the end)
#   TGT_ARGS / PERF_ARGS   extra arguments
set -euo pipefail

for arg in "$@"; do
	case $arg in
	--busy-poll) BUSY_POLL=1 ;;
	--digests) DIGESTS=1 ;;
	--quick) RUNTIME=${RUNTIME:-3}; REPEAT=${REPEAT:-1} ;;
	-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench: unknown argument $arg (--busy-poll, --digests, --quick; the rest is environment)" >&2; exit 2 ;;
	esac
done

SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${DBK_BUILD_DIR:-$SRC_DIR/build}
TGT=$BUILD/app/daosblk-tgt
RPC=$BUILD/tools/rpc/daosblk-rpc
PERF=$BUILD/tools/perf/daosblk-perf
DFS=$BUILD/tools/dfs/daosblk-dfs

BDEV=${BDEV:-malloc}
SIZE_MB=${SIZE_MB:-512}
BLOCK_SIZE=${BLOCK_SIZE:-4096}
ADDR=${ADDR:-127.0.0.1}
PORT=${PORT:-4420}
NQN=${NQN:-nqn.2016-06.io.spdk:cnode1}
TGT_MASK=${TGT_MASK:-0x1}
PERF_MASK=${PERF_MASK:-0x2}
RUNTIME=${RUNTIME:-15}
REPEAT=${REPEAT:-3}
BUSY_POLL=${BUSY_POLL:-0}
DIGESTS=${DIGESTS:-0}
DAOS_ENGINE=${DAOS_ENGINE:-local}
DAOS_POOL=${DAOS_POOL:-bench-pool}
DAOS_CONT=${DAOS_CONT:-bench-cont}
TGT_ARGS=${TGT_ARGS:-}
PERF_ARGS=${PERF_ARGS:-}

# name  pattern  io-size  depth  read%
ALL_WORKLOADS="
randread-4k-qd1     randread  4096   1   -
randread-4k-qd32    randread  4096   32  -
randread-4k-qd128   randread  4096   128 -
randwrite-4k-qd32   randwrite 4096   32  -
randrw70-4k-qd32    randrw    4096   32  70
read-128k-qd16      read      131072 16  -
write-128k-qd16     write     131072 16  -
"
WORKLOADS=${WORKLOADS:-$(echo "$ALL_WORKLOADS" | awk 'NF {print $1}' | tr '\n' ' ')}

die() { echo "bench: error: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

for b in "$TGT" "$RPC" "$PERF"; do
	[[ -x $b ]] || die "$b not found (build first, or set DBK_BUILD_DIR)"
done
command -v python3 >/dev/null || die "python3 is needed to read daosblk-perf's JSON"
[[ $RUNTIME =~ ^[0-9]+$ && $RUNTIME -ge 1 ]] || die "RUNTIME must be a positive integer"
[[ $REPEAT =~ ^[0-9]+$ && $REPEAT -ge 1 ]] || die "REPEAT must be a positive integer"

WORK=$(mktemp -d /tmp/daosblk-bench.XXXXXX)
RESULTS_DIR=${RESULTS_DIR:-$WORK/results}
mkdir -p "$RESULTS_DIR"
SOCK=$WORK/rpc.sock
TGT_LOG=$WORK/tgt.log
TGT_PID=

cleanup() {
	if [[ -n $TGT_PID ]] && kill -0 "$TGT_PID" 2>/dev/null; then
		kill -INT "$TGT_PID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$TGT_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$TGT_PID" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rpc() { "$RPC" -s "$SOCK" "$@" >/dev/null || die "rpc $* failed (target log: $TGT_LOG)"; }

# ------------------------------------------------------------------ target
tgt_args=(-m "$TGT_MASK" -r "$SOCK")
[[ $BUSY_POLL == 1 ]] && tgt_args+=(--busy-poll)
if [[ $BDEV == daos && -n ${DFS_ROOT:-} ]]; then tgt_args+=(--dfs-root "$DFS_ROOT"); fi
if [[ $BDEV == daos ]]; then tgt_args+=(--dfs-engine "$DAOS_ENGINE"); fi
# shellcheck disable=SC2206
tgt_args+=($TGT_ARGS)

if (exec 3<>"/dev/tcp/$ADDR/$PORT") 2>/dev/null; then
	die "something already listens on $ADDR:$PORT (set PORT)"
fi
log "starting $TGT ${tgt_args[*]}"
"$TGT" "${tgt_args[@]}" >"$TGT_LOG" 2>&1 &
TGT_PID=$!
for _ in $(seq 100); do
	[[ -S $SOCK ]] && "$RPC" -s "$SOCK" -t 2 spdk_get_version >/dev/null 2>&1 && break
	kill -0 "$TGT_PID" 2>/dev/null || die "daosblk-tgt exited: $(tail -5 "$TGT_LOG")"
	sleep 0.1
done
[[ -S $SOCK ]] || die "daosblk-tgt RPC socket $SOCK did not appear"

rpc nvmf_create_transport -t TCP
case $BDEV in
malloc)
	rpc bdev_malloc_create "$SIZE_MB" "$BLOCK_SIZE" -b Bench0
	;;
uring)
	[[ -n ${URING_FILE:-} ]] || die "BDEV=uring needs URING_FILE (a file or block device)"
	if [[ ! -e $URING_FILE ]]; then
		truncate -s "${SIZE_MB}M" "$URING_FILE" || die "cannot create $URING_FILE"
	fi
	rpc bdev_uring_create "$URING_FILE" Bench0 "$BLOCK_SIZE"
	;;
daos)
	if [[ $DAOS_ENGINE == local ]]; then
		[[ -x $DFS ]] || die "$DFS not found (needed to create the local pool/container)"
		dfs_args=()
		[[ -n ${DFS_ROOT:-} ]] && dfs_args=(--dfs-root "$DFS_ROOT")
		"$DFS" "${dfs_args[@]}" pool create "$DAOS_POOL" --if-absent >/dev/null
		"$DFS" "${dfs_args[@]}" cont create "$DAOS_POOL" "$DAOS_CONT" --if-absent >/dev/null
	fi
	rpc bdev_daos_create Bench0 "$DAOS_POOL" "$DAOS_CONT" "$SIZE_MB" "$BLOCK_SIZE"
	;;
*) die "BDEV must be malloc, uring or daos" ;;
esac
rpc nvmf_create_subsystem "$NQN" -a -s SPDK00000000000001 -d daosblk_bench
rpc nvmf_subsystem_add_ns "$NQN" Bench0
rpc nvmf_subsystem_add_listener "$NQN" -t tcp -a "$ADDR" -s "$PORT"

# ------------------------------------------------------------------ runs
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { # utime + stime of the target (all threads), in clock ticks
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$TGT_PID/stat"
}
now_ns() { date +%s%N; }

trid="trtype:TCP adrfam:IPv4 traddr:$ADDR trsvcid:$PORT subnqn:$NQN"
digest_args=()
[[ $DIGESTS == 1 ]] && digest_args=(-H -D)

run_one() { # name pattern size depth mix rep
	local name=$1 pat=$2 size=$3 depth=$4 mix=$5 rep=$6 out=$RESULTS_DIR/$1.$6.json
	local args=(-r "$trid" -w "$pat" -o "$size" -q "$depth" -t "$RUNTIME" -c "$PERF_MASK" --json --no-progress)
	[[ $mix != - ]] && args+=(-M "$mix")
	# shellcheck disable=SC2206
	args+=("${digest_args[@]}" $PERF_ARGS)
	local t0 c0 t1 c1
	t0=$(now_ns); c0=$(cpu_ticks)
	if ! "$PERF" "${args[@]}" >"$out" 2>"$out.err"; then
		cat "$out.err" >&2
		die "daosblk-perf failed for $name (run $rep): see $out.err"
	fi
	t1=$(now_ns); c1=$(cpu_ticks)
	# Target CPU over the perf process lifetime (connect + run + shutdown), % of one core.
	python3 - "$out" "$c0" "$c1" "$t0" "$t1" "$CLK_TCK" <<'EOF'
import json, sys
path, c0, c1, t0, t1, tck = sys.argv[1], *map(int, sys.argv[2:])
with open(path) as f:
    r = json.load(f)
r["target_cpu_pct"] = 100.0 * (c1 - c0) / tck / ((t1 - t0) / 1e9)
with open(path, "w") as f:
    json.dump(r, f)
EOF
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
if [[ ${PREFILL:-$([[ $BDEV == malloc ]] && echo 0 || echo 1)} == 1 ]]; then
	log "prefilling the bdev (one sequential 128 KiB write pass)"
	"$PERF" -r "$trid" -w write -o 131072 -q 16 -t 1 --prefill -c "$PERF_MASK" --json --no-progress \
		>"$RESULTS_DIR/prefill.json" 2>"$RESULTS_DIR/prefill.err" || die "prefill failed: $(tail -3 "$RESULTS_DIR/prefill.err")"
fi

for name in $WORKLOADS; do
	line=$(echo "$ALL_WORKLOADS" | awk -v n="$name" '$1 == n')
	[[ -n $line ]] || die "unknown workload $name (known: $(echo "$ALL_WORKLOADS" | awk 'NF {print $1}' | tr '\n' ' '))"
	read -r _ pat size depth mix <<<"$line"
	for rep in $(seq "$REPEAT"); do
		log "$name run $rep/$REPEAT (${RUNTIME}s)"
		run_one "$name" "$pat" "$size" "$depth" "$mix" "$rep"
	done
done

# ------------------------------------------------------------------ report
commit=$(git -C "$SRC_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ $commit != unknown ]] && ! git -C "$SRC_DIR" diff --quiet HEAD 2>/dev/null; then commit="$commit (dirty tree)"; fi
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
build_type=$(awk -F= '/^CMAKE_BUILD_TYPE:/ {print $2}' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
sanitize=$(awk -F= '/^DBK_SANITIZE:/ {print $2}' "$BUILD/CMakeCache.txt" 2>/dev/null || true)

echo "## daosblk bench: BDEV=$BDEV$([[ $BUSY_POLL == 1 ]] && echo ', --busy-poll')$([[ $DIGESTS == 1 ]] && echo ', header+data digests')"
echo
# shellcheck disable=SC2086  # one argument per workload name
python3 - "$RESULTS_DIR" "$REPEAT" $WORKLOADS <<'EOF'
import json, statistics, sys
d, rep, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print("| workload | IOPS | MiB/s | p50 us | p99 us | p99.9 us | target CPU % |")
print("|---|---:|---:|---:|---:|---:|---:|")
for n in names:
    rs = [json.load(open(f"{d}/{n}.{i}.json")) for i in range(1, rep + 1)]
    m = lambda f: statistics.median(f(r) for r in rs)
    print(f"| {n} | {m(lambda r: r['iops']):,.0f} | {m(lambda r: r['mibps']):,.1f} "
          f"| {m(lambda r: r['latency_us']['p50']):.1f} | {m(lambda r: r['latency_us']['p99']):.1f} "
          f"| {m(lambda r: r['latency_us']['p99_9']):.1f} | {m(lambda r: r['target_cpu_pct']):.0f} |")
EOF
echo
echo "Conditions: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $commit; build ${build_type:-RelWithDebInfo (default)}${sanitize:+ (sanitize=$sanitize)};"
echo "machine: ${cpu_model:-unknown CPU}, $(nproc) online cores, $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo); kernel $(uname -r);"
echo "target: daosblk-tgt -m $TGT_MASK$([[ $BUSY_POLL == 1 ]] && echo ' --busy-poll'), bdev $BDEV ${SIZE_MB} MiB / ${BLOCK_SIZE} B blocks;"
echo "initiator: daosblk-perf -c $PERF_MASK over $ADDR:$PORT (loopback TCP); ${RUNTIME} s per run, median of $REPEAT run(s) per column;"
echo "load average before the runs: $LOAD_START (other work on these cores skews the numbers; bench on an idle machine);"
echo "target CPU % = utime+stime delta of the daosblk-tgt process over each daosblk-perf run (100 = one core)."
echo
log "raw results: $RESULTS_DIR"
