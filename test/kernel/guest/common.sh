# Sourced by the guest scripts (busybox sh inside the kernel-initiator guest).
T=${KI_TARGET_IP:-10.77.0.1}
P=${KI_TARGET_PORT:-4420}
NQN=${NQN:-nqn.2016-06.io.spdk:cnode1}
MNT=/mnt/nvme

step() { echo "==> $*"; }
die() { echo "GUEST-FAIL: $*"; dmesg | grep -i nvme | tail -n 20; exit 1; }
signal_host() { echo "@@DBK-SIGNAL:$1@@"; }
report() { echo "@@DBK-VALUE:$1=$2@@"; }

# ns_devs: every NVMe namespace block device (no partitions), one per line.
ns_devs() {
    for d in /dev/nvme*n*; do
        case "${d#/dev/}" in nvme*n*p*) continue ;; esac
        [ -b "$d" ] && echo "$d"
    done
    return 0
}

# wait_ns COUNT [TRIES]: wait until at least COUNT namespaces exist (0.1 s per try).
wait_ns() {
    n=0
    while [ "$n" -lt "${2:-100}" ]; do
        [ "$(ns_devs | wc -l)" -ge "$1" ] && return 0
        sleep 0.1; n=$((n + 1))
    done
    return 1
}

# connect_all: discovery + connect-all, no fallback; fails if no namespace appears.
connect_all() {
    step "nvme discover -t tcp -a $T -s $P"
    nvme discover -t tcp -a "$T" -s "$P" || die "nvme discover failed"
    step "nvme connect-all -t tcp -a $T -s $P"
    nvme connect-all -t tcp -a "$T" -s "$P" || die "nvme connect-all failed"
    wait_ns 1 100 || die "connect-all attached no namespace"
    DEV=$(ns_devs | head -n1)
    echo "namespace: $DEV"
}

# connect_digest: connect by NQN with header and data digests.
connect_digest() {
    step "nvme connect -t tcp -a $T -s $P -n $NQN -g -G"
    nvme connect -t tcp -a "$T" -s "$P" -n "$NQN" -g -G || die "nvme connect -g -G failed"
    wait_ns 1 100 || die "connect with digests attached no namespace"
    DEV=$(ns_devs | head -n1)
    echo "namespace: $DEV"
}

# ns_ids DEV: report the namespace's NGUID and UUID as the host sees them.
ns_ids() {
    nguid=$(nvme id-ns "$1" | awk '$1 == "nguid" { print $3 }')
    uuid=$(nvme ns-descs "$1" 2>/dev/null | awk '/uuid/ { print $NF; exit }')
    echo "nguid=$nguid uuid=$uuid"
    report nguid "$nguid"
    report uuid "$uuid"
}

size_mib() { echo $(($(cat "/sys/class/block/${1#/dev/}/size") / 2048)); }

# ext4_write DEV: mkfs.ext4 -F -O mmp, mount, write known data, sync, umount, fsck.
ext4_write() {
    step "mkfs.ext4 -F -O mmp $1"
    mkfs.ext4 -F -q -O mmp "$1" || die "mkfs.ext4 failed"
    mkdir -p "$MNT"
    mount -t ext4 "$1" "$MNT" || die "mount failed"
    echo "hello from the NVMe/TCP initiator" > "$MNT/hello.txt"
    seq 1 100000 > "$MNT/seq.txt"
    dd if=/dev/urandom of="$MNT/random.bin" bs=1M count=8 2>/dev/null || die "write failed"
    sync
    report sum "$(cat "$MNT/hello.txt" "$MNT/seq.txt" "$MNT/random.bin" | sha256sum | cut -d' ' -f1)"
    SUM=$(cat "$MNT/hello.txt" "$MNT/seq.txt" "$MNT/random.bin" | sha256sum | cut -d' ' -f1)
    umount "$MNT" || die "umount failed"
    step "e2fsck -fn $1"
    e2fsck -fn "$1" || die "e2fsck found problems"
}

# ext4_verify DEV SUM: fsck, mount, check the data, umount.
ext4_verify() {
    step "e2fsck -fn $1"
    e2fsck -fn "$1" || die "e2fsck found problems"
    mkdir -p "$MNT"
    mount -t ext4 "$1" "$MNT" || die "remount failed"
    got=$(cat "$MNT/hello.txt" "$MNT/seq.txt" "$MNT/random.bin" | sha256sum | cut -d' ' -f1)
    [ "$got" = "$2" ] || die "data differs after remount: $got != $2"
    [ "$(cat "$MNT/hello.txt")" = "hello from the NVMe/TCP initiator" ] || die "hello.txt differs"
    umount "$MNT"
    echo "contents verified"
}
