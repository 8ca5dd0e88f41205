#!/usr/bin/env bash
# bench_run_smoke: bench/run.sh end to end, briefly. It starts the real target, serves a malloc bdev over
# loopback NVMe/TCP and runs two workloads twice with daosblk-perf, in rounds; then the default side by
# side run (malloc and the daos bdev on the local engine, in turns, with fio's local ceiling when fio is
# installed) once, briefly. Checks that every run moved
# I/O, that the runs went in rounds, that the table has one row per workload with the IOPS of each run, and
# that the target is gone afterwards; and that a bad ORDER or workload name is refused before any target
# starts. Speed is not asserted (that is what the benchmark is for).
set -euo pipefail
: "${DBK_BUILD_DIR:?}" "${DBK_SOURCE_DIR:?}"
RUN=$DBK_SOURCE_DIR/bench/run.sh
W=$(mktemp -d /tmp/dbk-benchsmoke.XXXXXX)
trap 'rm -rf "$W"' EXIT
fail() {
	echo "FAIL: $*" >&2
	[[ -f $W/err ]] && tail -n 20 "$W/err" >&2
	exit 1
}

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cores=$(python3 -c 'import os; print(" ".join(map(str, sorted(os.sched_getaffinity(0)))))')
read -r c0 c1 _ <<<"$cores $cores"
export PORT RUNTIME=1 REPEAT=2 CEILING=0 SIZE_MB=16 RESULTS_DIR=$W/results TGT_MASK="[$c0]" PERF_MASK="[$c1]" BDEV=malloc
export WORKLOADS="randread-4k-qd1 write-128k-qd16"

bash "$RUN" >"$W/out" 2>"$W/err" || fail "bench/run.sh exited $?"
cat "$W/out"

# Every run's daosblk-perf JSON shows I/O done.
for n in $WORKLOADS; do
	for r in 1 2; do
		f=$RESULTS_DIR/$n.$r.json
		[[ -s $f ]] || fail "no result $f"
		python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["iops"] > 0 else 1)' "$f" ||
			fail "$f: no I/O: $(cat "$f")"
	done
done

# Rounds: run 1 of each workload, then run 2 of each.
order=$(sed -n 's/^bench: \([a-z0-9-]*\) run \([0-9]\)\/2 .*/\1.\2/p' "$W/err" | tr '\n' ' ')
[[ $order == "randread-4k-qd1.1 write-128k-qd16.1 randread-4k-qd1.2 write-128k-qd16.2 " ]] ||
	fail "runs not in rounds: $order"
grep -q 'taken in rounds' "$W/out" || fail "conditions do not say the runs were taken in rounds"
# daosblk-perf's receive buffer: --sock-rcvbuf's default 2 MiB, capped at rmem_max, doubled by the kernel.
rmem_max=$(cat /proc/sys/net/core/rmem_max)
want_rcvbuf=$((2 * (rmem_max < 2097152 ? rmem_max : 2097152)))
grep -q "SO_RCVBUF $want_rcvbuf B" "$W/out" || fail "conditions do not give daosblk-perf's SO_RCVBUF ($want_rcvbuf B)"

# The table: header, one row per workload, IOPS > 0 and two per-run figures.
grep -q '^| workload | IOPS | MiB/s | p50 us | p99 us | p99.9 us | target CPU % | IOPS of each run |$' "$W/out" ||
	fail "table header missing"
for n in $WORKLOADS; do
	row=$(grep "^| $n |" "$W/out") || fail "no table row for $n"
	iops=$(awk -F'|' '{gsub(/[ ,]/, "", $3); print $3}' <<<"$row")
	runs=$(awk -F'|' '{print $9}' <<<"$row")
	[[ $iops =~ ^[0-9]+$ && $iops -gt 0 ]] || fail "$n: IOPS column '$iops'"
	[[ $runs =~ ^\ [0-9]+K\ /\ [0-9]+K\ $ ]] || fail "$n: per-run column '$runs'"
done

# The target was stopped: nothing listens on the port any more.
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then fail "something still listens on $PORT"; fi

# The default: malloc and the local engine side by side, in rounds, one table with the local engine's share.
unset BDEV
RESULTS_DIR=$W/sbs WORKLOADS=randwrite-4k-qd32 bash "$RUN" >"$W/out" 2>"$W/err" || fail "side by side run exited $?"
cat "$W/out"
order=$(sed -n 's/^bench: \([a-z]*\) round \([0-9]\)\/2$/\1.\2/p' "$W/err" | tr '\n' ' ')
[[ $order == "malloc.1 daos.1 malloc.2 daos.2 " ]] || fail "side by side not in rounds: $order"
row=$(grep '^| randwrite-4k-qd32 | [0-9,]* | [0-9,]* | [0-9]* % |' "$W/out") || fail "no side by side row"
for f in malloc.1 malloc.2 daos.1 daos.2; do
	python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["iops"] > 0 else 1)' \
		"$W/sbs/$f/randwrite-4k-qd32.1.json" || fail "$f: no I/O"
done
grep -q '^### daos (local engine)$' "$W/out" || fail "no local engine table"
if command -v fio >/dev/null; then
	grep -q '^### local ceiling: fio' "$W/out" || fail "fio is installed but no local ceiling table"
	awk -F'|' '{print $6}' <<<"$row" | grep -q '[0-9]' || fail "no fio ceiling column: $row"
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then fail "something still listens on $PORT"; fi
export BDEV=malloc

# Bad settings are refused before a target starts.
for bad in "ORDER=sideways:ORDER must be rounds or grouped" "WORKLOADS=randread-4k-qd7:unknown workload randread-4k-qd7"; do
	setting=${bad%%:*} msg=${bad#*:}
	if env "$setting" bash "$RUN" >"$W/out" 2>"$W/err"; then fail "$setting was accepted"; fi
	grep -q "$msg" "$W/err" || fail "$setting: no '$msg' in: $(cat "$W/err")"
	if grep -q 'starting' "$W/err"; then fail "$setting: a target was started"; fi
done
echo "bench_run_smoke: ok"
