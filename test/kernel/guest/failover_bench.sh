#!/bin/sh
# bench/failover_stall.sh, guest side: connect-all through gateway A (referral to B), then mpath_probe's
# O_DSYNC write-and-verify loop on the raw multipath device while the host kills and restarts A KILLS times.
# After each kill we wait for A's path to drop and to come back live and optimized, and signal
# reconnected-N; the host measures the stall on its side (SIGKILL to B's first completed write).
. /ki/files/common.sh
PA=${PORT_A:-4420}
PB=${PORT_B:-4421}
KILLS=${KILLS:-10}
trap 'touch /tmp/stop; nvme disconnect-all >/dev/null 2>&1' EXIT
ctrl_dir() {
    for c in /sys/class/nvme/nvme*; do
        [ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$NQN" ] || continue
        grep -q "trsvcid=$1" "$c/address" 2>/dev/null && { echo "$c"; return 0; }
    done
    return 1
}
ctrl_state() { c=$(ctrl_dir "$1") && cat "$c/state"; }
ana_state() { c=$(ctrl_dir "$1") && cat "$c"/nvme*c*n1/ana_state 2>/dev/null; }
wait_for() {
    what=$1; t=$(($2 * 10)); shift 2
    while [ "$t" -gt 0 ]; do "$@" && return 0; sleep 0.1; t=$((t - 1)); done
    die "timed out waiting for $what"
}
is_up() { [ "$(ctrl_state "$1")" = live ] && [ "$(ana_state "$1")" = "$2" ]; }
is_down() { [ "$(ctrl_state "$1")" != live ]; }

nvme connect-all -t tcp -a "$T" -s "$PA" --ctrl-loss-tmo=-1 --reconnect-delay=1 || die "nvme connect-all failed"
wait_for "A live optimized" 30 is_up "$PA" optimized
wait_for "B live non-optimized" 30 is_up "$PB" non-optimized
DEV=$(ns_devs)
nvme list-subsys "$DEV"
rm -f /tmp/stop
/ki/files/mpath_probe "$DEV" 0 256 /tmp/stop /tmp/probe.ops >/tmp/probe.out 2>&1 &
PROBE=$!
sleep 2
signal_host running
i=1
while [ "$i" -le "$KILLS" ]; do
    wait_for "kill $i" 120 is_down "$PA"
    wait_for "A back after kill $i" 120 is_up "$PA" optimized
    signal_host "reconnected-$i"
    i=$((i + 1))
done
sleep 1
touch /tmp/stop
wait "$PROBE"; prc=$?
cat /tmp/probe.out
[ "$prc" -eq 0 ] || die "mpath_probe failed (rc $prc)"
nvme disconnect-all
echo "failover-bench: OK"
