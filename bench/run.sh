#!/usr/bin/env bash
# daosblk benchmark: daosblk-tgt pinned to core 0, daosblk-perf pinned to core 1, NVMe/TCP over loopback.
#
#   bench/run.sh                      # malloc bdev, 15 s per run, 3 repeats (median)
#   RUNTIME=3 REPEAT=1 bench/run.sh   # quick look
#   BUSY_POLL=1 bench/run.sh          # target reactors never sleep (--busy-poll); same as: bench/run.sh --busy-poll
#   bench/run.sh --quick              # RUNTIME=3 REPEAT=1 unless set; --digests = DIGESTS=1
#   BDEV=uring URING_FILE=/mnt/nvme/bench.img bench/run.sh
#   BDEV=daos DAOS_POOL=pool0 DAOS_CONT=cont0 [DAOS_ENGINE=daos] bench/run.sh
#   CEILING=0 bench/run.sh            # skip the raw loopback TCP ceiling measurement
#
# Environment (all optional):
#   DBK_BUILD_DIR  build directory with app/daosblk-tgt, tools/rpc/daosblk-rpc, tools/perf/daosblk-perf,
#                  bench/daosblk-tcp-ceiling (./build)
#   BDEV           malloc | uring | daos (default malloc)
#   SIZE_MB        bdev size in MiB (default 512); BLOCK_SIZE (default 4096)
#   URING_FILE     backing file for BDEV=uring (created sparse with SIZE_MB if missing)
#   DAOS_POOL, DAOS_CONT   pool/container for BDEV=daos (default bench-pool/bench-cont; created in the local
#                  engine with daosblk-dfs when DAOS_ENGINE=local); DAOS_ENGINE local|daos; DFS_ROOT (local engine:
#                  default a directory in the bench's temporary directory, removed at the end; its file system
#                  type goes in the conditions)
#   LOCAL_CEILING  1 (default for BDEV=daos with the local engine when fio is installed): after the runs, the
#                  same workloads with bench/fio_ceiling.sh -- fio, io_uring, buffered, on the bdev's own file,
#                  no network, pinned to the target's core -- in a second table: what the file system and page
#                  cache give, without the engine and the transport. 0 skips it.
#   ADDR, PORT     listener (127.0.0.1, 4420); NQN (nqn.2016-06.io.spdk:cnode1)
#   TGT_MASK       target core mask (0x1); PERF_MASK perf core mask (0x2); BUSY_POLL=1 adds --busy-poll
#   RUNTIME        seconds per run (15); REPEAT runs per workload (3); WORKLOADS (space-separated names below)
#   ORDER          rounds (default): run 1 of every workload, then run 2 of every workload, ...; grouped: all
#                  runs of one workload, then the next. On a shared machine whose speed drifts over minutes,
#                  rounds keep a slow spell from deciding one workload's median.
#   DIGESTS=1      run daosblk-perf with -H -D (header and data digests)
#   PREFILL        1 (default): write the whole bdev once before the workloads, so reads hit written blocks
#                  (malloc: real pages, not the kernel's zero page; uring/daos: data, not holes); 0 skips it
#   CEILING        1: before the workloads (and before the target starts), measure plain loopback TCP with
#                  bench/daosblk-tcp-ceiling, RUNTIME s, REPEAT times, both directions: "read" = target core
#                  -> perf core, "write" = perf core -> target core (first core of TGT_MASK / PERF_MASK); the
#                  medians go in the conditions under the table. 0 skips it. Default 1 for BDEV=malloc, else 0.
#                  A reference, not a bound: it prices one copying send() of CEILING_SIZE per call; larger
#                  calls (daosblk-perf batches PDUs into one sendmsg) and zero-copy (the target's spliced
#                  reads) both go faster.
#   CEILING_SIZE   bytes per send() and recv() buffer for the ceiling (131072)
#   RESULTS_DIR    keep every run's JSON there (default: a temporary directory, path printed at the end)
#   TGT_ARGS / PERF_ARGS   extra arguments
#   TRANSPORT_ARGS extra nvmf_create_transport arguments, e.g. "--no-zcopy"
#   TCP_CC         TCP congestion control of every connection: the target's (congestion_control transport
#                  option), daosblk-perf's and the ceiling's (--congestion-control on each). Default cubic when
#                  the kernel has it: a pacing algorithm such as bbr (a common system default) costs 25-40 % of
#                  a core at these rates on loopback. TCP_CC=system keeps the system default
#                  (/proc/sys/net/ipv4/tcp_congestion_control) everywhere.
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
CEIL=$BUILD/bench/daosblk-tcp-ceiling

USER_CEILING=${CEILING:-}
BDEV=${BDEV:-malloc daos}
SIZE_MB=${SIZE_MB:-512}
BLOCK_SIZE=${BLOCK_SIZE:-4096}
ADDR=${ADDR:-127.0.0.1}
PORT=${PORT:-4420}
NQN=${NQN:-nqn.2016-06.io.spdk:cnode1}
TGT_MASK=${TGT_MASK:-0x1}
PERF_MASK=${PERF_MASK:-0x2}
RUNTIME=${RUNTIME:-15}
REPEAT=${REPEAT:-3}
ORDER=${ORDER:-rounds}
BUSY_POLL=${BUSY_POLL:-0}
DIGESTS=${DIGESTS:-0}
DAOS_ENGINE=${DAOS_ENGINE:-local}
DAOS_POOL=${DAOS_POOL:-bench-pool}
DAOS_CONT=${DAOS_CONT:-bench-cont}
TGT_ARGS=${TGT_ARGS:-}
PERF_ARGS=${PERF_ARGS:-}
CEILING=${CEILING:-$([[ $BDEV == malloc || $BDEV == "malloc "* ]] && echo 1 || echo 0)}
CEILING_SIZE=${CEILING_SIZE:-131072}
if [[ -z ${TCP_CC:-} ]]; then
	TCP_CC=system
	grep -qw cubic /proc/sys/net/ipv4/tcp_available_congestion_control 2>/dev/null && TCP_CC=cubic
fi
cc_args=()
[[ $TCP_CC != system ]] && cc_args=(--congestion-control "$TCP_CC")
CC_DESC=$([[ $TCP_CC == system ]] && echo "system default, $(cat /proc/sys/net/ipv4/tcp_congestion_control)" || echo "$TCP_CC")

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
[[ $ORDER == rounds || $ORDER == grouped ]] || die "ORDER must be rounds or grouped"
for name in $WORKLOADS; do
	echo "$ALL_WORKLOADS" | awk -v n="$name" '$1 == n {f = 1} END {exit !f}' ||
		die "unknown workload $name (known: $(echo "$ALL_WORKLOADS" | awk 'NF {print $1}' | tr '\n' ' '))"
done
[[ $CEILING == 0 || $CEILING == 1 ]] || die "CEILING must be 0 or 1"
[[ $CEILING_SIZE =~ ^[0-9]+$ && $CEILING_SIZE -ge 1 ]] || die "CEILING_SIZE must be a byte count"
[[ $CEILING == 0 || -x $CEIL ]] || die "$CEIL not found (build first, or CEILING=0)"

mask_core() { # first core of a core mask (0x3, 3) or list ([1,2]); fails on anything else
	local m=$1 c=0
	if [[ $m =~ ^\[([0-9]+) ]]; then echo "${BASH_REMATCH[1]}"; return 0; fi
	[[ $m =~ ^(0[xX][0-9a-fA-F]+|[0-9]+)$ ]] || return 1
	m=$((m))
	((m > 0)) || return 1
	while ((!(m & 1))); do m=$((m >> 1)); c=$((c + 1)); done
	echo "$c"
}

# ------------------------------------------------------------------ side by side (BDEV is a list)
# Each round serves every bdev of the list in turn (a target of its own, REPEAT=1, this script once per
# bdev), so a slow spell of the machine costs one round of every bdev, not all runs of one. The local
# engine's file stays in one DFS_ROOT across the rounds (written once, in round 1); malloc is prefilled each
# time. Then the local ceiling (fio on the local engine's file), and the tables.
if [[ $BDEV == *" "* ]]; then
	for b in $BDEV; do
		[[ $b == malloc || $b == uring || $b == daos ]] || die "BDEV must be malloc, uring or daos, or a list of them"
	done
	[[ " $BDEV " != *" daos "* || $DAOS_ENGINE == local ]] || die "a BDEV list serves the daos bdev on the local engine only"
	SBS=$(mktemp -d /tmp/daosblk-bench.XXXXXX)
	RESULTS_DIR=${RESULTS_DIR:-$SBS/results}
	mkdir -p "$RESULTS_DIR"
	SBS_DFS_ROOT=${DFS_ROOT:-$SBS/dfs}
	SBS_LOCAL_CEILING=${LOCAL_CEILING:-$([[ " $BDEV " == *" daos "* ]] && command -v fio >/dev/null && echo 1 || echo 0)}
	[[ $SBS_LOCAL_CEILING == 0 || " $BDEV " == *" daos "* ]] || die "LOCAL_CEILING=1 needs daos in BDEV"
	[[ $SBS_LOCAL_CEILING == 0 ]] || command -v fio >/dev/null || die "LOCAL_CEILING=1 needs fio (apt-get install fio)"
	trap '[[ -n ${DFS_ROOT:-} ]] || rm -rf "$SBS_DFS_ROOT"; rmdir "$SBS" 2>/dev/null || true' EXIT
	trap 'exit 130' INT TERM
	sbs_load=$(cut -d' ' -f1-3 /proc/loadavg)
	for rep in $(seq "$REPEAT"); do
		for b in $BDEV; do
			d=$RESULTS_DIR/$b.$rep
			# the raw TCP ceiling once, with the first bdev of round 1 (before its target starts)
			ceil=0
			[[ $rep == 1 && $b == "${BDEV%% *}" ]] && ceil=${USER_CEILING:-$([[ $b == malloc ]] && echo 1 || echo 0)}
			pre=${PREFILL:-1}
			[[ $b == daos && $rep -gt 1 ]] && pre=0
			log "$b round $rep/$REPEAT"
			BDEV=$b REPEAT=1 RESULTS_DIR=$d DFS_ROOT=$SBS_DFS_ROOT LOCAL_CEILING=0 CEILING=$ceil PREFILL=$pre \
				bash "${BASH_SOURCE[0]}" >"$d.md" 2>"$d.err" || die "$b round $rep failed: $(tail -3 "$d.err")"
		done
	done
	ceiling_md=
	if [[ $SBS_LOCAL_CEILING == 1 ]]; then
		bdev_file=$(ls "$SBS_DFS_ROOT"/pools/*/conts/*/data/Bench0 2>/dev/null | head -1)
		[[ -f $bdev_file ]] || die "cannot find the daos bdev's file under $SBS_DFS_ROOT"
		log "local ceiling: fio on $bdev_file"
		ceiling_md=$RESULTS_DIR/fio_ceiling.md
		# shellcheck disable=SC2086
		CORE=$(mask_core "$TGT_MASK") RUNTIME=$RUNTIME REPEAT=$REPEAT WORKLOADS="$WORKLOADS" \
			"$SRC_DIR/bench/fio_ceiling.sh" "$bdev_file" >"$ceiling_md" 2>"$RESULTS_DIR/fio_ceiling.err" ||
			die "local ceiling failed: $(tail -3 "$RESULTS_DIR/fio_ceiling.err")"
	fi
	echo "## daosblk bench: $BDEV side by side$([[ $BUSY_POLL == 1 ]] && echo ', --busy-poll')$([[ $DIGESTS == 1 ]] && echo ', header+data digests')"
	echo
	# shellcheck disable=SC2086
	python3 - "$RESULTS_DIR" "$REPEAT" "$BDEV" "$ceiling_md" $WORKLOADS <<'EOF'
import json, re, statistics, sys
d, rep, bdevs, ceil, names = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4], sys.argv[5:]
label = {"malloc": "malloc", "daos": "daos (local engine)", "uring": "uring"}
runs = {b: {n: [json.load(open(f"{d}/{b}.{i}/{n}.1.json")) for i in range(1, rep + 1)] for n in names} for b in bdevs}
fio = {}
if ceil:
    for line in open(ceil):
        m = re.match(r"^\| (\S+) \| ([\d,]+) \|", line)
        if m:
            fio[m.group(1)] = float(m.group(2).replace(",", ""))
med = lambda rs, f: statistics.median(f(r) for r in rs)
iops = lambda b, n: med(runs[b][n], lambda r: r["iops"])
base = bdevs[0]
hdr = ["workload"] + [f"{label[b]} IOPS" for b in bdevs] + [f"{label[b]} / {base}" for b in bdevs[1:]]
if fio:
    hdr += ["fio ceiling IOPS (no network)", "daos / fio ceiling"]
print("| " + " | ".join(hdr) + " |")
print("|" + "---|" + "---:|" * (len(hdr) - 1))
for n in names:
    row = [n] + [f"{iops(b, n):,.0f}" for b in bdevs] + [f"{100 * iops(b, n) / iops(base, n):.0f} %" for b in bdevs[1:]]
    if fio:
        c = fio.get(n)
        row += [f"{c:,.0f}" if c else "-", f"{100 * iops('daos', n) / c:.0f} %" if c and "daos" in bdevs else "-"]
    print("| " + " | ".join(row) + " |")
print()
for b in bdevs:
    print(f"### {label[b]}")
    print()
    print("| workload | IOPS | MiB/s | p50 us | p99 us | p99.9 us | target CPU % | IOPS of each round |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for n in names:
        rs = runs[b][n]
        m = lambda f: med(rs, f)
        print(f"| {n} | {m(lambda r: r['iops']):,.0f} | {m(lambda r: r['mibps']):,.1f} "
              f"| {m(lambda r: r['latency_us']['p50']):.1f} | {m(lambda r: r['latency_us']['p99']):.1f} "
              f"| {m(lambda r: r['latency_us']['p99_9']):.1f} | {m(lambda r: r['target_cpu_pct']):.0f} "
              f"| {' / '.join(format(r['iops'] / 1000, '.0f') + 'K' for r in rs)} |")
    print()
EOF
	if [[ -n $ceiling_md ]]; then
		echo "### local ceiling: fio on the daos bdev's file (no network; bench/fio_ceiling.sh)"
		echo
		cat "$ceiling_md"
		echo
	fi
	echo "Side by side: $REPEAT round(s); in each, every bdev of '$BDEV' in turn, a target of its own, every workload once"
	echo "(${RUNTIME} s); medians of the rounds. Load average before the first round: $sbs_load. Each bdev's conditions:"
	for b in $BDEV; do
		echo
		echo "$b, round 1: $(sed -n '/^Conditions:/,$p' "$RESULTS_DIR/$b.1.md" | sed '/^$/d' | tr '\n' ' ')"
	done
	echo
	log "raw results: $RESULTS_DIR"
	exit 0
fi

WORK=$(mktemp -d /tmp/daosblk-bench.XXXXXX)
RESULTS_DIR=${RESULTS_DIR:-$WORK/results}
mkdir -p "$RESULTS_DIR"
SOCK=$WORK/rpc.sock
TGT_LOG=$WORK/tgt.log
TGT_PID=
if [[ $BDEV == daos && $DAOS_ENGINE == local && -z ${DFS_ROOT:-} ]]; then DFS_ROOT=$WORK/dfs; TMP_DFS_ROOT=1; fi
LOCAL_CEILING=${LOCAL_CEILING:-$([[ $BDEV == daos && $DAOS_ENGINE == local ]] && command -v fio >/dev/null && echo 1 || echo 0)}
[[ $LOCAL_CEILING == 0 || ($BDEV == daos && $DAOS_ENGINE == local) ]] || die "LOCAL_CEILING=1 needs BDEV=daos with DAOS_ENGINE=local"
[[ $LOCAL_CEILING == 0 ]] || command -v fio >/dev/null || die "LOCAL_CEILING=1 needs fio (apt-get install fio)"

# ------------------------------------------------------------------ raw TCP ceiling
# Before the target starts (a --busy-poll reactor would otherwise share the sender's core).
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
if [[ $CEILING == 1 ]]; then
	tgt_core=$(mask_core "$TGT_MASK") || die "cannot read a core from TGT_MASK=$TGT_MASK"
	perf_core=$(mask_core "$PERF_MASK") || die "cannot read a core from PERF_MASK=$PERF_MASK"
	for rep in $(seq "$REPEAT"); do
		for dir in read write; do
			if [[ $dir == read ]]; then s=$tgt_core r=$perf_core; else s=$perf_core r=$tgt_core; fi
			log "raw TCP ceiling, $dir direction (core $s -> core $r) run $rep/$REPEAT (${RUNTIME}s)"
			out=$RESULTS_DIR/ceiling-$dir.$rep.json
			"$CEIL" --size "$CEILING_SIZE" --seconds "$RUNTIME" --send-core "$s" --recv-core "$r" --json "${cc_args[@]}" \
				>"$out" 2>"$out.err" || die "daosblk-tcp-ceiling failed ($dir, run $rep): $(tail -3 "$out.err")"
		done
	done
fi

cleanup() {
	if [[ -n $TGT_PID ]] && kill -0 "$TGT_PID" 2>/dev/null; then
		kill -INT "$TGT_PID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$TGT_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$TGT_PID" 2>/dev/null || true
	fi
	if [[ ${TMP_DFS_ROOT:-0} == 1 ]]; then rm -rf "$DFS_ROOT"; fi
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

# shellcheck disable=SC2086
rpc nvmf_create_transport -t TCP "${cc_args[@]}" ${TRANSPORT_ARGS:-}
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
	args+=("${digest_args[@]}" "${cc_args[@]}" $PERF_ARGS)
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

if [[ ${PREFILL:-1} == 1 ]]; then
	log "prefilling the bdev (one sequential 128 KiB write pass)"
	"$PERF" -r "$trid" -w write -o 131072 -q 16 -t 1 --prefill -c "$PERF_MASK" --json --no-progress \
		>"$RESULTS_DIR/prefill.json" 2>"$RESULTS_DIR/prefill.err" || die "prefill failed: $(tail -3 "$RESULTS_DIR/prefill.err")"
fi

run_workload() { # name rep
	local line pat size depth mix
	line=$(echo "$ALL_WORKLOADS" | awk -v n="$1" '$1 == n')
	read -r _ pat size depth mix <<<"$line"
	log "$1 run $2/$REPEAT (${RUNTIME}s)"
	run_one "$1" "$pat" "$size" "$depth" "$mix" "$2"
}
if [[ $ORDER == rounds ]]; then
	# Round after round of every workload: a slow spell of the machine lands on one run of each workload
	# instead of on all runs of one.
	for rep in $(seq "$REPEAT"); do
		for name in $WORKLOADS; do run_workload "$name" "$rep"; done
	done
else
	for name in $WORKLOADS; do
		for rep in $(seq "$REPEAT"); do run_workload "$name" "$rep"; done
	done
fi

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
print("| workload | IOPS | MiB/s | p50 us | p99 us | p99.9 us | target CPU % | IOPS of each run |")
print("|---|---:|---:|---:|---:|---:|---:|---|")
for n in names:
    rs = [json.load(open(f"{d}/{n}.{i}.json")) for i in range(1, rep + 1)]
    m = lambda f: statistics.median(f(r) for r in rs)
    print(f"| {n} | {m(lambda r: r['iops']):,.0f} | {m(lambda r: r['mibps']):,.1f} "
          f"| {m(lambda r: r['latency_us']['p50']):.1f} | {m(lambda r: r['latency_us']['p99']):.1f} "
          f"| {m(lambda r: r['latency_us']['p99_9']):.1f} | {m(lambda r: r['target_cpu_pct']):.0f} "
          f"| {' / '.join(format(r['iops'] / 1000, '.0f') + 'K' for r in rs)} |")
EOF
echo
echo "Conditions: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $commit; build ${build_type:-RelWithDebInfo (default)}${sanitize:+ (sanitize=$sanitize)};"
echo "machine: ${cpu_model:-unknown CPU}, $(nproc) online cores, $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo); kernel $(uname -r);"
echo "target: daosblk-tgt -m $TGT_MASK$([[ $BUSY_POLL == 1 ]] && echo ' --busy-poll'), bdev $BDEV ${SIZE_MB} MiB / ${BLOCK_SIZE} B blocks; nvmf_create_transport -t TCP${cc_args[*]:+ ${cc_args[*]}}${TRANSPORT_ARGS:+ $TRANSPORT_ARGS};"
echo "TCP congestion control of the target's, daosblk-perf's and the ceiling's connections: $CC_DESC (TCP_CC);"
first_json=$RESULTS_DIR/$(echo $WORKLOADS | awk '{print $1}').1.json
perf_rcvbuf=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("sock_rcvbuf", "?"))' "$first_json" 2>/dev/null || echo "?")
echo "initiator: daosblk-perf -c $PERF_MASK over $ADDR:$PORT (loopback TCP), SO_RCVBUF $perf_rcvbuf B as the kernel reports it (--sock-rcvbuf, default 2m doubled, as SPDK's posix sockets); ${RUNTIME} s per run, median of $REPEAT run(s) per column$([[ $ORDER == rounds ]] && echo ', taken in rounds (run 1 of every workload, then run 2, ...)');"
echo "load average before the runs: $LOAD_START (other work on these cores skews the numbers; bench on an idle machine);"
echo "target CPU % = utime+stime delta of the daosblk-tgt process over each daosblk-perf run (100 = one core)."
if [[ $CEILING == 1 ]]; then
	python3 - "$RESULTS_DIR" "$REPEAT" "$tgt_core" "$perf_core" "$RUNTIME" "$CEILING_SIZE" <<'EOF'
import json, statistics, sys
d, rep, tc, pc, rt, size = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
size = int(size)
what = f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"
def med(dir):
    rs = [json.load(open(f"{d}/ceiling-{dir}.{i}.json")) for i in range(1, rep + 1)]
    gb = statistics.median(r["gbps"] for r in rs)
    busy = lambda side: statistics.median(r[side]["busy_pct"] for r in rs)
    cpu = lambda side: statistics.median(r[side]["cpu_pct"] for r in rs)
    return gb, gb * 1e9 / 2**20, busy("sender"), busy("receiver"), cpu("sender"), cpu("receiver")
r, w = med("read"), med("write")
print(f"raw loopback TCP ceiling at the time: read direction {r[0]:.2f} GB/s, write direction {w[0]:.2f} GB/s "
      f"({what} send()s, no NVMe);")
print(f"  = {r[1]:,.0f} / {w[1]:,.0f} MiB/s; bench/daosblk-tcp-ceiling, read = core {tc} -> core {pc}, "
      f"write = core {pc} -> core {tc}, {rt} s, median of {rep}, measured before the target started;")
print(f"  a reference, not a bound: one copying send() of {what} per call; larger calls (daosblk-perf batches "
      f"PDUs into one sendmsg) and zero-copy (the target's spliced reads) go faster;")
print(f"  sender/receiver CPU % read {r[4]:.0f}/{r[5]:.0f}, write {w[4]:.0f}/{w[5]:.0f} (both poll: below 100 "
      f"means other work took the core); % of the run inside send()/recv() calls that moved data: "
      f"read {r[2]:.0f}/{r[3]:.0f}, write {w[2]:.0f}/{w[3]:.0f}.")
EOF
fi
if [[ $BDEV == daos && $DAOS_ENGINE == local ]]; then
	echo "local engine root: $DFS_ROOT ($(df -T "$DFS_ROOT" | awk 'NR == 2 {print $2 " on " $1}'))."
fi
if [[ $LOCAL_CEILING == 1 ]]; then
	bdev_file=$(ls "$DFS_ROOT"/pools/*/conts/*/data/Bench0 2>/dev/null | head -1)
	[[ -f $bdev_file ]] || die "cannot find the bdev's file under $DFS_ROOT"
	echo
	echo "### local ceiling: fio on the bdev's file (no network; bench/fio_ceiling.sh)"
	echo
	# shellcheck disable=SC2086
	CORE=$(mask_core "$TGT_MASK") RUNTIME=$RUNTIME REPEAT=$REPEAT WORKLOADS="$WORKLOADS" \
		"$SRC_DIR/bench/fio_ceiling.sh" "$bdev_file" 2>"$RESULTS_DIR/fio_ceiling.err" ||
		die "local ceiling failed: $(tail -3 "$RESULTS_DIR/fio_ceiling.err")"
fi
echo
log "raw results: $RESULTS_DIR"
