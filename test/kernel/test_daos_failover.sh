#!/usr/bin/env bash
# Issue 14: two gateways, one DFS file, native multipath on the real Linux host.
#
# Gateway A (10.77.0.1:4420, cntlids 1-999) and gateway B (10.77.0.1:4421, cntlids 1000-1999) are two
# daosblk-tgt processes over the same DFS file (the same --dfs-root on the local engine; the same container on
# the real one), exporting it under one NQN and serial with ANA reporting; B's listener is non-optimized so the
# host prefers A, and A's discovery service refers to B's. The guest (guest/failover.sh) runs connect-all
# through A, sees both paths, makes ext4 and runs two write-and-verify loops (files with fsync, raw O_DSYNC
# blocks). Meanwhile: A is made inaccessible (I/O must move to B: B's bdev counts the writes), optimized again
# (I/O returns to A), then SIGKILLed in the middle of the loops (I/O goes on through B) and restarted from its
# saved config, and the host reconnects it. At the end everything verifies, e2fsck -fn is clean, no I/O error
# reached the loops, and the longest stall is reported.
KT_NAME=daos-failover
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_daos.sh"
PORT_A=4420
PORT_B=4421
SOCK_B=$WORK/rpc-b.sock
B_LOG=$WORK/tgt-b.log
B_PID=""
kt_setup
kt_make_pool

kill_b() {
    if [ -n "$B_PID" ] && kill -0 "$B_PID" 2>/dev/null; then kill -KILL "$B_PID"; wait "$B_PID" 2>/dev/null || true; fi
    B_PID=""
}
prev_trap=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\\1/")
# shellcheck disable=SC2064
trap "kt_rc=\$?; kill_b; [ \$kt_rc -ne 0 ] && tail -n 40 '$B_LOG' 2>/dev/null | sed 's/^/  tgt-b| /' >&2; (exit \$kt_rc); $prev_trap" EXIT

rpcb() { "$RPC" -s "$SOCK_B" "$@"; }
start_b() {
    ip netns exec "$NETNS" env "${KT_TGT_ENV[@]}" "$TGT" -m 0x1 -r "$SOCK_B" "$@" >>"$B_LOG" 2>&1 9>&- &
    B_PID=$!
    local i
    for i in $(seq 1 100); do
        if [ -S "$SOCK_B" ] && rpcb framework_wait_init >/dev/null 2>&1; then return 0; fi
        kill -0 "$B_PID" 2>/dev/null || kt_fail "gateway B exited during start"
        sleep 0.1
    done
    kt_fail "gateway B did not answer RPCs within 10 s"
}

# gateway CLIENT PORT MIN MAX: the same DFS file, the same NQN and serial, its own listener and cntlid range
gateway() {
    local c=$1 port=$2
    $c nvmf_create_transport -t TCP -u 2097152 -i 2097152 >/dev/null
    $c bdev_daos_create daosdev0 "$DFS_POOL" "$DFS_CONT" 64 4096 >/dev/null
    $c nvmf_create_subsystem "$NQN" -a -s SPDK00000000000001 -d SPDK_Virtual_Controller_1 -r -i "$3" -I "$4" >/dev/null
    $c nvmf_subsystem_add_ns "$NQN" daosdev0 >/dev/null
    $c nvmf_subsystem_add_listener "$NQN" -t tcp -a "$TARGET_IP" -s "$port" >/dev/null
}
writes() {
    $1 bdev_get_iostat -b daosdev0 | python3 -c 'import json,sys; print(json.load(sys.stdin)["bdevs"][0]["num_write_ops"])'
}

kt_start_target "${DFS_TGT_ARGS[@]}"
gateway rpc $PORT_A 1 999
rpc nvmf_discovery_add_referral -t tcp -a "$TARGET_IP" -s $PORT_B >/dev/null
rpc save_config >"$WORK/a.json"
start_b "${DFS_TGT_ARGS[@]}"
gateway rpcb $PORT_B 1000 1999
rpcb nvmf_subsystem_listener_set_ana_state "$NQN" -n non_optimized -t tcp -a "$TARGET_IP" -s $PORT_B >/dev/null
rpc nvmf_subsystem_get_listeners "$NQN" | tr -d ' \n' | grep -q '"ana_state":"optimized"' || kt_fail "A not optimized"

cc -O2 -static -o "$WORK/mpath_probe" "$DBK_SOURCE_DIR/test/kernel/guest/mpath_probe.c" || kt_fail "cannot build mpath_probe"
KT_GUEST_TIMEOUT=${KT_GUEST_TIMEOUT:-500}
kt_guest_start failover.sh --add "$WORK/mpath_probe" --env "PORT_A=$PORT_A" --env "PORT_B=$PORT_B"

kt_wait_signal connected 200
ca=$(rpc nvmf_subsystem_get_controllers "$NQN"); cb=$(rpcb nvmf_subsystem_get_controllers "$NQN")
python3 - "$ca" "$cb" <<'PY' || kt_fail "controllers: A $ca, B $cb"
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert len(a) == 1 and 1 <= a[0]["cntlid"] <= 999, a
assert len(b) == 1 and 1000 <= b[0]["cntlid"] <= 1999, b
assert a[0]["hostnqn"] == b[0]["hostnqn"], (a, b)
print("controllers: A cntlid %d, B cntlid %d, host %s" % (a[0]["cntlid"], b[0]["cntlid"], a[0]["hostnqn"]))
PY

kt_wait_signal set-inaccessible 200
b0=$(writes rpcb)
rpc nvmf_subsystem_listener_set_ana_state "$NQN" -n inaccessible -t tcp -a "$TARGET_IP" -s $PORT_A >/dev/null
kt_log "A inaccessible (B had $b0 writes)"

kt_wait_signal set-optimized 200
b1=$(writes rpcb)
[ "$b1" -ge $((b0 + 10)) ] || kt_fail "I/O did not move to B while A was inaccessible (B writes $b0 -> $b1)"
a1=$(writes rpc)
rpc nvmf_subsystem_listener_set_ana_state "$NQN" -n optimized -t tcp -a "$TARGET_IP" -s $PORT_A >/dev/null
kt_log "A optimized again (B took $((b1 - b0)) writes meanwhile)"

kt_wait_signal kill-a 200
a2=$(writes rpc)
[ "$a2" -ge $((a1 + 10)) ] || kt_fail "I/O did not come back to A once optimized (A writes $a1 -> $a2)"
b2=$(writes rpcb)
kt_log "SIGKILL gateway A (A took $((a2 - a1)) writes since it was optimized again)"
kt_kill_target

kt_wait_signal a-down 200
b3=$(writes rpcb)
[ "$b3" -ge $((b2 + 10)) ] || kt_fail "I/O did not go on through B after A died (B writes $b2 -> $b3)"
kt_log "I/O went on through B ($((b3 - b2)) writes); restarting A from its saved config"
kt_start_target "${DFS_TGT_ARGS[@]}" -c "$WORK/a.json"

kt_wait_signal done 300
a4=$(writes rpc)
rc=0
kt_guest_wait || rc=$?
[ "$rc" -eq 0 ] || kt_fail "guest script failed ($rc)"
grep -aq "failover: OK" "$GUEST_LOG" || kt_fail "guest did not report success"
[ "$a4" -ge 10 ] || kt_fail "the restarted A served no I/O after the host reconnected it ($a4 writes)"
[ "$(kt_guest_value probe_errors)" = 0 ] || kt_fail "the raw loop saw I/O errors"
kt_log "raw loop: $(kt_guest_value probe_ops) write+read pairs, $(kt_guest_value probe_verified) blocks verified"
kt_log "longest stall: raw O_DSYNC write+read $(kt_guest_value probe_max_gap_ms) ms, ext4 write+fsync $(kt_guest_value file_max_ms) ms"
# the raw loop's gaps (>= 100 ms) by phase, on the guest's clock
python3 - "$GUEST_LOG" "$(kt_guest_value probe_t0)" "$(kt_guest_value t_set-inaccessible)" \
    "$(kt_guest_value t_set-optimized)" "$(kt_guest_value t_kill-a)" "$(kt_guest_value t_a-down)" \
    "$(kt_guest_value t_end)" <<'PY' >&2 || true
import re, sys
log = open(sys.argv[1], errors="replace").read().replace("\r", "")
t0, ph = float(sys.argv[2]), [float(x) for x in sys.argv[3:]]
names = ["before", "A inaccessible", "A optimized again", "A killed (until its path dropped and 10 ops via B)",
         "A down, restart and reconnect", "after"]
worst = [0.0] * len(names)
for m in re.finditer(r"@@DBK-GAP:([0-9.]+),([0-9.]+)@@", log):
    t, ms = t0 + float(m.group(1)), float(m.group(2))
    i = sum(1 for p in ph if t >= p)
    worst[i] = max(worst[i], ms)
for n, w in zip(names, worst):
    print("  [daos-failover] longest raw-loop gap, %s: %.0f ms" % (n, w))
PY
kill -INT "$B_PID"; brc=0; wait "$B_PID" || brc=$?; B_PID=""
[ "$brc" -eq 0 ] || kt_fail "gateway B exited with $brc after SIGINT"
kt_stop_target
kt_log "PASS"
