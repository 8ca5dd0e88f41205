#!/usr/bin/env bash
# The I/O stall at gateway failover (issue 14), with the real Linux kernel host: KILLS (default 10) times,
# SIGKILL gateway A under a write-and-verify loop and time how long until gateway B completes the first write
# the host moved to it; then restart A from its saved config and wait for the host to reconnect it.
#
#   sudo DBK_BUILD_DIR=build bench/failover_stall.sh        # KILLS=N, GAP_MS=N (the wait between kills)
#
# Setup: two daosblk-tgt over one DFS file (local engine, --dfs-root in the work dir), same NQN and serial,
# ANA reporting, A 10.77.0.1:4420 optimized, B :4421 non-optimized (the host sends B nothing while A is up);
# the kernel-initiator guest (Debian 6.1, native multipath, qemu TCG) runs test/kernel/guest/mpath_probe
# (4 KiB O_DIRECT|O_DSYNC write + read back + compare, one at a time) on the multipath device, connected with
# connect-all through A (referral to B), --ctrl-loss-tmo=-1 --reconnect-delay=1.
# The stopwatch (bench/failover_poll.py) runs on the host: kill(2) of A, then B's bdev write counter polled
# over B's RPC socket about every millisecond until it moves. Takes the kernel tests' machine-wide lock.
KT_NAME=failover-stall
DBK_SOURCE_DIR=${DBK_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "$DBK_SOURCE_DIR/test/kernel/lib.sh"
. "$DBK_SOURCE_DIR/test/kernel/lib_daos.sh"
KILLS=${KILLS:-10}
GAP_MS=${GAP_MS:-2000}
PORT_A=4420
PORT_B=4421
SOCK_B=$WORK/rpc-b.sock
B_PID=""
kt_setup
kt_make_pool
kill_b() {
    if [ -n "$B_PID" ] && kill -0 "$B_PID" 2>/dev/null; then kill -KILL "$B_PID"; wait "$B_PID" 2>/dev/null || true; fi
    B_PID=""
}
prev_trap=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\\1/")
# shellcheck disable=SC2064
trap "kt_rc=\$?; kill_b; (exit \$kt_rc); $prev_trap" EXIT
rpcb() { "$RPC" -s "$SOCK_B" "$@"; }
gateway() {
    local c=$1
    $c nvmf_create_transport -t TCP -u 2097152 -i 2097152 >/dev/null
    $c bdev_daos_create daosdev0 "$DFS_POOL" "$DFS_CONT" 64 4096 >/dev/null
    $c nvmf_create_subsystem "$NQN" -a -s SPDK00000000000001 -d SPDK_Virtual_Controller_1 -r -i "$3" -I "$4" >/dev/null
    $c nvmf_subsystem_add_ns "$NQN" daosdev0 >/dev/null
    $c nvmf_subsystem_add_listener "$NQN" -t tcp -a "$TARGET_IP" -s "$2" >/dev/null
}
kt_start_target "${DFS_TGT_ARGS[@]}"
gateway rpc $PORT_A 1 999
rpc nvmf_discovery_add_referral -t tcp -a "$TARGET_IP" -s $PORT_B >/dev/null
rpc save_config >"$WORK/a.json"
ip netns exec "$NETNS" env "${KT_TGT_ENV[@]}" "$TGT" -m 0x1 -r "$SOCK_B" "${DFS_TGT_ARGS[@]}" >>"$WORK/tgt-b.log" 2>&1 9>&- &
B_PID=$!
for _ in $(seq 1 100); do [ -S "$SOCK_B" ] && rpcb framework_wait_init >/dev/null 2>&1 && break; sleep 0.1; done
gateway rpcb $PORT_B 1000 1999
rpcb nvmf_subsystem_listener_set_ana_state "$NQN" -n non_optimized -t tcp -a "$TARGET_IP" -s $PORT_B >/dev/null
cc -O2 -static -o "$WORK/mpath_probe" "$DBK_SOURCE_DIR/test/kernel/guest/mpath_probe.c" || kt_fail "cannot build mpath_probe"
KT_GUEST_TIMEOUT=$((200 + KILLS * 60))
kt_guest_start failover_bench.sh --add "$WORK/mpath_probe" --env "KILLS=$KILLS" --env "PORT_A=$PORT_A" \
    --env "PORT_B=$PORT_B"
kt_wait_signal running 300
: >"$WORK/stalls"
for i in $(seq 1 "$KILLS"); do
    sleep "$(awk "BEGIN { print $GAP_MS / 1000 }")"
    r=$(python3 "$DBK_SOURCE_DIR/bench/failover_poll.py" "$TGT_PID" "$SOCK_B" daosdev0 60) || kt_fail "kill $i: $r"
    wait "$TGT_PID" 2>/dev/null || true
    TGT_PID=""
    echo "${r%% *}" >>"$WORK/stalls"
    kt_log "kill $i: first write on B after ${r%% *} ms (${r##* } polls)"
    kt_start_target "${DFS_TGT_ARGS[@]}" -c "$WORK/a.json"
    kt_wait_signal "reconnected-$i" 180
done
rc=0
kt_guest_wait || rc=$?
[ "$rc" -eq 0 ] || kt_fail "guest failed ($rc)"
python3 - "$WORK/stalls" "$(kt_guest_value probe_max_gap_ms)" "$(kt_guest_value probe_errors)" \
    "$(kt_guest_value probe_ops)" <<'PY'
import statistics, sys
v = [float(x) for x in open(sys.argv[1]) if x.strip()]
print("failover stall, SIGKILL of A to B's first completed write, %d kills: median %.0f ms, max %.0f ms, "
      "min %.0f ms; all: %s" % (len(v), statistics.median(v), max(v), min(v), " ".join("%.0f" % x for x in v)))
print("guest probe: %s ops, %s errors, longest gap between completed writes %s ms" % (sys.argv[4], sys.argv[3],
                                                                                     sys.argv[2]))
PY
kill -INT "$B_PID"; wait "$B_PID" || true; B_PID=""
kt_stop_target
