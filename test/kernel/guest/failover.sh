#!/bin/sh
# Issue 14, guest side: two gateways serve one namespace; native NVMe multipath carries the I/O through
# ANA changes and the death of gateway A. The host test (test_daos_failover.sh) acts on our signals:
#   connected        both paths are live (A optimized, B non-optimized)
#   set-inaccessible -> the host makes A inaccessible; we check I/O goes on (through B) with no error
#   set-optimized    -> the host makes A optimized again; I/O goes back to A
#   kill-a           -> the host SIGKILLs gateway A in the middle of the loops
#   a-down           A's path is gone and I/O went on through B -> the host restarts A from its saved config
#   done             A reconnected as a path; the loops stopped; everything verified
# Two loops run the whole time: files on ext4 (write, fsync, checksum) and mpath_probe on the raw device past
# the end of the file system (O_DIRECT|O_DSYNC write, read back, compare). No I/O error may reach either.
. /ki/files/common.sh
PA=${PORT_A:-4420}
PB=${PORT_B:-4421}
FS_MB=40
RAW_FIRST=$((48 * 256))	# 4 KiB blocks: the raw region starts at 48 MiB
RAW_N=256	# 1 MiB, overwritten round robin
trap 'touch /tmp/stop; umount "$MNT" 2>/dev/null; nvme disconnect-all >/dev/null 2>&1' EXIT

[ "$(cat /sys/module/nvme_core/parameters/multipath)" = Y ] || die "the guest kernel has no native NVMe multipath"

# ctrl_dir PORT: the sysfs directory of the I/O controller of $NQN that talks to $T:PORT
ctrl_dir() {
    for c in /sys/class/nvme/nvme*; do
        [ "$(cat "$c/subsysnqn" 2>/dev/null)" = "$NQN" ] || continue
        grep -q "trsvcid=$1" "$c/address" 2>/dev/null && { echo "$c"; return 0; }
    done
    return 1
}
ctrl_state() { c=$(ctrl_dir "$1") && cat "$c/state"; }
ana_state() { c=$(ctrl_dir "$1") && cat "$c"/nvme*c*n1/ana_state 2>/dev/null; }

# wait_for WHAT SECONDS CMD...: poll CMD every 0.2 s
wait_for() {
    what=$1; t=$(($2 * 5)); shift 2
    while [ "$t" -gt 0 ]; do
        "$@" && return 0
        sleep 0.2; t=$((t - 1))
    done
    die "timed out waiting for $what"
}
is_ana() { [ "$(ana_state "$1")" = "$2" ]; }
is_live() { [ "$(ctrl_state "$1")" = live ]; }
not_live() { [ "$(ctrl_state "$1")" != live ]; }

progress() { p=$(cat /tmp/probe.ops 2>/dev/null); f=$(cat /tmp/file.iters 2>/dev/null); echo "${p:-0} ${f:-0}"; }
# advance N: both loops complete N more operations (60 s at most: a longer stall fails the test)
advance() {
    set -- "$1" $(progress)
    want_p=$(($2 + $1)); want_f=$(($3 + $1)); t=300
    while [ "$t" -gt 0 ]; do
        set -- "$1" $(progress)
        [ "$2" -ge "$want_p" ] && [ "$3" -ge "$want_f" ] && return 0
        [ -s /tmp/errors ] && die "an I/O error reached the application: $(cat /tmp/errors)"
        sleep 0.2; t=$((t - 1))
    done
    die "I/O made no progress for 60 s (probe $2/$want_p, files $3/$want_f)"
}

# phase NAME: tell the host (a signal) and note when, on the clock mpath_probe uses (uptime)
phase() { report "t_$1" "$(cut -d' ' -f1 /proc/uptime)"; signal_host "$1"; }

centis() { u=$(cut -d' ' -f1 /proc/uptime); echo "${u%.*}${u#*.}"; }

file_loop() {
    i=0; max=0
    while [ ! -f /tmp/stop ]; do
        slot=$((i % 32))
        t0=$(centis)
        dd if=/dev/urandom of=/tmp/src bs=16k count=1 2>/dev/null
        if ! dd if=/tmp/src of="$MNT/f$slot" bs=16k conv=fsync 2>/tmp/dd.err; then
            echo "file write f$slot: $(cat /tmp/dd.err)" >>/tmp/errors
            continue
        fi
        sha256sum </tmp/src | cut -d' ' -f1 >"/tmp/sum.$slot"
        d=$(($(centis) - t0)); [ "$d" -gt "$max" ] && max=$d && echo "$max" >/tmp/file.maxcs
        i=$((i + 1)); echo "$i" >/tmp/file.iters
    done
}

step "nvme discover / connect-all through gateway A ($T:$PA); its referral leads to B ($T:$PB)"
nvme discover -t tcp -a "$T" -s "$PA" || die "nvme discover failed"
nvme connect-all -t tcp -a "$T" -s "$PA" --ctrl-loss-tmo=-1 --reconnect-delay=1 || die "nvme connect-all failed"
wait_for "the path through A" 30 is_live "$PA"
wait_for "the path through B (the referral)" 30 is_live "$PB"
wait_for "A optimized" 30 is_ana "$PA" optimized
wait_for "B non-optimized" 30 is_ana "$PB" non-optimized
wait_ns 1 100 || die "no namespace"
[ "$(ns_devs | wc -l)" -eq 1 ] || die "expected one multipath namespace, got: $(ns_devs)"
DEV=$(ns_devs)
# nvme-cli 2.3 prints the paths' ANA states when list-subsys is given the namespace
nvme list-subsys "$DEV" | tee /tmp/subsys
grep -q "trsvcid=$PA.* live optimized" /tmp/subsys || die "list-subsys does not show A live optimized"
grep -q "trsvcid=$PB.* live non-optimized" /tmp/subsys || die "list-subsys does not show B live non-optimized"
signal_host connected

step "mkfs.ext4 -F -O mmp $DEV (${FS_MB} MiB), mount, start the loops"
mkfs.ext4 -F -q -O mmp "$DEV" "${FS_MB}M" || die "mkfs.ext4 failed"
mkdir -p "$MNT"
mount -t ext4 "$DEV" "$MNT" || die "mount failed"
: >/tmp/errors
rm -f /tmp/stop
/ki/files/mpath_probe "$DEV" "$RAW_FIRST" "$RAW_N" /tmp/stop /tmp/probe.ops >/tmp/probe.out 2>&1 &
PROBE=$!
file_loop &
FLOOP=$!
advance 10

step "A inaccessible: I/O moves to B"
phase set-inaccessible
wait_for "A inaccessible" 30 is_ana "$PA" inaccessible
advance 10
phase set-optimized
step "A optimized again"
wait_for "A optimized" 30 is_ana "$PA" optimized
advance 10

step "SIGKILL of gateway A under I/O"
phase kill-a
wait_for "A's path to drop" 30 not_live "$PA"
advance 10
phase a-down
step "A restarted from its saved config: waiting for the host to reconnect it"
wait_for "A to reconnect" 120 is_live "$PA"
wait_for "A optimized after the reconnect" 30 is_ana "$PA" optimized
advance 10
report t_end "$(cut -d' ' -f1 /proc/uptime)"
nvme list-subsys "$DEV"

step "stop the loops, verify everything that was written and fsynced"
touch /tmp/stop
wait "$FLOOP"
wait "$PROBE"; prc=$?
cat /tmp/probe.out
[ "$prc" -eq 0 ] || die "mpath_probe failed (rc $prc)"
[ -s /tmp/errors ] && die "I/O errors reached the application: $(cat /tmp/errors)"
sync
echo 3 >/proc/sys/vm/drop_caches
n=0
for s in /tmp/sum.*; do
    slot=${s#/tmp/sum.}
    got=$(sha256sum <"$MNT/f$slot" | cut -d' ' -f1)
    [ "$got" = "$(cat "$s")" ] || die "file f$slot differs after failover"
    n=$((n + 1))
done
echo "files verified: $n, file loop iterations: $(cat /tmp/file.iters)"
umount "$MNT" || die "umount failed"
e2fsck -fn "$DEV" || die "e2fsck found problems"
report file_max_ms "$(($(cat /tmp/file.maxcs 2>/dev/null || echo 0) * 10))"
dmesg | grep -i -E "nvme|I/O error" | tail -n 30
dmesg | grep -q -E "(I/O|critical medium) error, dev nvme[0-9]+n" && die "the kernel logged an I/O error on the multipath device"
nvme disconnect-all
signal_host done
echo "failover: OK"
