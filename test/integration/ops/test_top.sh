#!/usr/bin/env bash
# daosblk-top against the real daemon under load from daosblk-perf (NVMe/TCP over loopback): the columns are there, the
# IOPS and MiB/s it shows agree with what daosblk-perf measured, reactor load adds up; --once, -n, errors.
# A bdev QoS limit keeps the load steady on this shared machine, so a one-second report compares with perf's average.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
dbk_setup
TOP="$DBK_BUILD_DIR/tools/top/daosblk-top"
PERF="$DBK_BUILD_DIR/tools/perf/daosblk-perf"
NQN=nqn.2016-06.io.spdk:cnode1
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
[ -x "$TOP" ] || fail "daosblk-top not built at $TOP"

# usage errors, help, no target
"$TOP" --help | grep -q -- "--once" || fail "--help lacks --once"
for bad in "-i 0" "-i x" "-n 0" "-n -3" "--once -n 2" "extra"; do
	# shellcheck disable=SC2086
	"$TOP" -s "$DBK_SOCK" $bad >/dev/null 2>"$DBK_TMP/err" && fail "daosblk-top $bad succeeded"
	[ $? -eq 2 ] || fail "daosblk-top $bad: exit status $? instead of 2"
done
out=$("$TOP" -s "$DBK_TMP/nothing.sock" --once 2>&1) && fail "daosblk-top without a target succeeded"
case "$out" in *"cannot connect to $DBK_TMP/nothing.sock"*) ;; *) fail "no target: '$out'" ;; esac

dbk_start -m '[0,1]'
rpc nvmf_create_transport -t TCP >/dev/null || fail "nvmf_create_transport"
rpc bdev_malloc_create 64 4096 -b Malloc0 >/dev/null || fail "bdev_malloc_create"
rpc bdev_null_create Null0 16 512 >/dev/null || fail "bdev_null_create"
rpc bdev_set_qos_limit Malloc0 --rw_ios_per_sec 4000 >/dev/null || fail "bdev_set_qos_limit"
rpc nvmf_create_subsystem "$NQN" -a >/dev/null || fail "nvmf_create_subsystem"
rpc nvmf_subsystem_add_ns "$NQN" Malloc0 >/dev/null || fail "nvmf_subsystem_add_ns"
rpc nvmf_subsystem_add_listener "$NQN" -t tcp -a 127.0.0.1 -s "$PORT" >/dev/null || fail "add_listener"

# idle: one report, all zeros, both reactors and both bdevs, no escape codes
"$TOP" -s "$DBK_SOCK" --once -i 0.5 >"$DBK_TMP/idle.txt" || fail "daosblk-top --once"
grep -q $'\033' "$DBK_TMP/idle.txt" && fail "--once wrote escape codes"
grep -Eq '^reactor +core +busy% +idle% +iter/s +sleeps/s +pollers +fds$' "$DBK_TMP/idle.txt" ||
	fail "reactor header: $(cat "$DBK_TMP/idle.txt")"
grep -Eq '^bdev +IOPS +read/s +write/s +other/s +rMiB/s +wMiB/s +lat_us +rlat_us +wlat_us$' "$DBK_TMP/idle.txt" ||
	fail "bdev header: $(cat "$DBK_TMP/idle.txt")"
grep -Eq '^reactor_0 +0 ' "$DBK_TMP/idle.txt" && grep -Eq '^reactor_1 +1 ' "$DBK_TMP/idle.txt" ||
	fail "reactor rows: $(cat "$DBK_TMP/idle.txt")"
grep -Eq '^Malloc0 +0 +0 +0 +0 +0\.0 +0\.0 ' "$DBK_TMP/idle.txt" || fail "idle Malloc0 row: $(cat "$DBK_TMP/idle.txt")"
grep -Eq '^Null0 ' "$DBK_TMP/idle.txt" || fail "Null0 row missing"
out=$("$TOP" -s "$DBK_SOCK" --once -i 0.2 -b Null0) || fail "-b Null0"
echo "$out" | grep -q '^Malloc0' && fail "-b Null0 shows Malloc0"
out=$("$TOP" -s "$DBK_SOCK" --once -i 0.2 -b nosuch 2>&1) && fail "-b nosuch succeeded"
case "$out" in *"bdev_get_iostat"*"nosuch"*) ;; *) fail "-b nosuch: '$out'" ;; esac

# under load: 8 s of 4K randrw 70/30 at QD 16; reports from second 2 to 6
"$PERF" -r "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:$PORT subnqn:$NQN" -q 16 -o 4096 -w randrw -M 70 -t 8 \
	-c 0x2 --json >"$DBK_TMP/perf.json" 2>"$DBK_TMP/perf.err" &
perf=$!
sleep 2
"$TOP" -s "$DBK_SOCK" -n 2 -i 2 >"$DBK_TMP/load.txt" || fail "daosblk-top -n 2"
wait "$perf" || fail "daosblk-perf failed: $(cat "$DBK_TMP/perf.err")"
[ "$(grep -c '^daosblk-top ' "$DBK_TMP/load.txt")" = 2 ] || fail "-n 2 printed $(grep -c '^daosblk-top ' "$DBK_TMP/load.txt") reports"
python3 - "$DBK_TMP/perf.json" "$DBK_TMP/load.txt" <<'PY' || fail "daosblk-top and daosblk-perf disagree (above)"
import json, sys
perf = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
text = open(sys.argv[2]).read()
rows = [l.split() for l in text.splitlines() if l.startswith("Malloc0 ")]
reactors = [l.split() for l in text.splitlines() if l.startswith("reactor_")]
assert len(rows) == 2 and len(reactors) == 4, text
print("perf: %.0f IOPS (%.0f read, %.0f write), %.2f MiB/s, avg latency %.1f us" %
      (perf["iops"], perf["read_iops"], perf["write_iops"], perf["mibps"], perf["latency_us"]["avg"]))
for r in rows:
    iops, rd, wr, other, rmib, wmib, lat = (float(x) for x in r[1:8])
    print("top:  %.0f IOPS (%.0f read, %.0f write), %.2f MiB/s, avg latency %.1f us" % (iops, rd, wr, rmib + wmib, lat))
    assert abs(iops - (rd + wr + other)) <= 2, r
    assert 0.7 * perf["iops"] <= iops <= 1.3 * perf["iops"], ("IOPS", iops, perf["iops"])
    assert 0.7 * perf["mibps"] <= rmib + wmib <= 1.3 * perf["mibps"], ("MiB/s", rmib + wmib, perf["mibps"])
    assert abs(rmib - rd * 4096 / 1048576) <= 0.1 + 0.01 * rmib, ("read MiB/s vs read/s", r)
    assert 0.5 <= rd / max(wr, 1) / (70 / 30) <= 2, ("read/write mix", r)
    # the bdev core's latency is part of what the host sees: not more, and (the QoS queue dominates) not far less
    assert 0.25 * perf["latency_us"]["avg"] <= lat <= 1.1 * perf["latency_us"]["avg"], ("latency", lat)
for r in reactors:
    busy, idle = float(r[2]), float(r[3])
    assert 0 <= busy <= 100 and abs(busy + idle - 100) <= 0.2, ("reactor busy/idle", r)
print("ok")
PY
dbk_stop
echo "PASS: daosblk-top shows what daosblk-perf measured"
