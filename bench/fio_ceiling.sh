#!/usr/bin/env bash
# The local ceiling of the DAOS bdev's local engine: fio with io_uring on the engine's own backing file, no
# network, no NVMe/TCP, buffered (as the engine does), pinned to the target's core. Set beside bench/run.sh's
# BDEV=daos table, it shows what the file system and page cache cost and what is left for the engine and the
# transport.
#
#   bench/fio_ceiling.sh FILE                      # the bench workloads, RUNTIME s each, REPEAT runs, medians
#   CORE=0 RUNTIME=15 REPEAT=3 WORKLOADS="randwrite-4k-qd32" bench/fio_ceiling.sh FILE
#
# FILE: the bdev's file, <dfs-root>/pools/<pool-uuid>/conts/<cont-uuid>/data/<bdev name> (bench/run.sh prints
# it), or any file; it is used as it is (not created, not truncated, the page cache left as it is:
# --invalidate=0). Writes change its contents. Needs fio (Debian package fio) with the io_uring engine.
# Output: a markdown table (IOPS, MiB/s, p50/p99 us, fio's CPU % of one core, the IOPS of each run).
set -euo pipefail

case ${1:-} in
-h|--help|'') sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; [[ -n ${1:-} ]]; exit $? ;;
esac
FILE=$1
CORE=${CORE:-0}
RUNTIME=${RUNTIME:-15}
REPEAT=${REPEAT:-3}
ALL="randread-4k-qd1 randread-4k-qd32 randread-4k-qd128 randwrite-4k-qd32 randrw70-4k-qd32 read-128k-qd16 write-128k-qd16"
WORKLOADS=${WORKLOADS:-$ALL}

die() { echo "fio_ceiling: error: $*" >&2; exit 1; }
command -v fio >/dev/null || die "fio not found (apt-get install fio)"
[[ -f $FILE ]] || die "$FILE is not a file"
[[ $RUNTIME =~ ^[0-9]+$ && $RUNTIME -ge 1 ]] || die "RUNTIME must be a positive integer"
[[ $REPEAT =~ ^[0-9]+$ && $REPEAT -ge 1 ]] || die "REPEAT must be a positive integer"
[[ $CORE =~ ^[0-9]+$ ]] || die "CORE must be a core number"
size=$(stat -c %s "$FILE")
((size >= 131072)) || die "$FILE is smaller than 128 KiB"

args_of() { # workload -> fio arguments
	case $1 in
	randread-4k-qd1) echo "--rw=randread --bs=4k --iodepth=1" ;;
	randread-4k-qd32) echo "--rw=randread --bs=4k --iodepth=32" ;;
	randread-4k-qd128) echo "--rw=randread --bs=4k --iodepth=128" ;;
	randwrite-4k-qd32) echo "--rw=randwrite --bs=4k --iodepth=32" ;;
	randrw70-4k-qd32) echo "--rw=randrw --rwmixread=70 --bs=4k --iodepth=32" ;;
	read-128k-qd16) echo "--rw=read --bs=128k --iodepth=16" ;;
	write-128k-qd16) echo "--rw=write --bs=128k --iodepth=16" ;;
	*) return 1 ;;
	esac
}
for w in $WORKLOADS; do args_of "$w" >/dev/null || die "unknown workload $w (known: $ALL)"; done

OUT=$(mktemp -d /tmp/daosblk-fio.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
for rep in $(seq "$REPEAT"); do
	for w in $WORKLOADS; do
		echo "fio_ceiling: $w run $rep/$REPEAT (${RUNTIME}s)" >&2
		# shellcheck disable=SC2046
		fio --name="$w" --filename="$FILE" --size="$size" --ioengine=io_uring --direct=0 --invalidate=0 \
			--norandommap --randrepeat=0 --time_based --runtime="$RUNTIME" --cpus_allowed="$CORE" \
			--output-format=json $(args_of "$w") >"$OUT/$w.$rep.json" 2>"$OUT/$w.$rep.err" ||
			die "fio failed for $w: $(tail -3 "$OUT/$w.$rep.err")"
	done
done

echo "| workload | IOPS | MiB/s | p50 us | p99 us | fio CPU % | IOPS of each run |"
echo "|---|---:|---:|---:|---:|---:|---|"
# shellcheck disable=SC2086
python3 - "$OUT" "$REPEAT" $WORKLOADS <<'EOF'
import json, statistics, sys
d, rep, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
for n in names:
    rs = []
    for i in range(1, rep + 1):
        j = json.load(open(f"{d}/{n}.{i}.json"))["jobs"][0]
        t = j["job_runtime"] / 1000.0
        ios = j["read"]["total_ios"] + j["write"]["total_ios"]
        by = j["read"]["io_bytes"] + j["write"]["io_bytes"]
        side = j["read"] if j["read"]["total_ios"] >= j["write"]["total_ios"] else j["write"]
        pct = side["clat_ns"].get("percentile", {})
        rs.append({"iops": ios / t, "mibps": by / t / 2**20, "p50": pct.get("50.000000", 0) / 1000,
                   "p99": pct.get("99.000000", 0) / 1000, "cpu": j["usr_cpu"] + j["sys_cpu"]})
    m = lambda k: statistics.median(r[k] for r in rs)
    print(f"| {n} | {m('iops'):,.0f} | {m('mibps'):,.1f} | {m('p50'):.1f} | {m('p99'):.1f} | {m('cpu'):.0f} "
          f"| {' / '.join(format(r['iops'] / 1000, '.0f') + 'K' for r in rs)} |")
EOF
echo
echo "Conditions: $(date -u '+%Y-%m-%d %H:%M UTC'); fio $(fio --version) --ioengine=io_uring --direct=0 --invalidate=0 on $FILE" \
	"($((size / 1048576)) MiB, file system $(df -T "$FILE" | awk 'NR == 2 {print $2}')), pinned to core $CORE;" \
	"${RUNTIME} s per run, median of $REPEAT run(s); fio CPU % counts fio's own thread, not io_uring's io-wq workers."
