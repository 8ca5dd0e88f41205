#!/bin/sh
# Runs inside the kernel-initiator guest (busybox sh, root): the guest kernel's own NVMe/TCP target
# (nvmet-tcp) on 127.0.0.1:4420 backed by a 64 MiB RAM disk, and daosblk-perf (static build, added with
# --add) against it: reads, in-capsule and R2T writes, digests, --verify, discovery, several cores, QD1,
# keep-alive, and a rejected Connect. Exit code = number of failed runs. Host side: run-nvmet-interop.sh.
modprobe brd rd_nr=1 rd_size=65536
modprobe nvmet-tcp
grep -q configfs /proc/mounts || mount -t configfs configfs /sys/kernel/config
NQN=nqn.2016-06.io.spdk:cnode1
S=/sys/kernel/config/nvmet/subsystems/$NQN
mkdir "$S"; echo 1 > "$S/attr_allow_any_host"
mkdir "$S/namespaces/1"; printf /dev/ram0 > "$S/namespaces/1/device_path"; echo 1 > "$S/namespaces/1/enable"
PORT=/sys/kernel/config/nvmet/ports/1
mkdir "$PORT"; echo tcp > "$PORT/addr_trtype"; echo ipv4 > "$PORT/addr_adrfam"
echo 127.0.0.1 > "$PORT/addr_traddr"; echo 4420 > "$PORT/addr_trsvcid"
ln -s "$S" "$PORT/subsystems/$NQN"
P=/ki/files/daosblk-perf
chmod +x $P
T="trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:4420 subnqn:$NQN"
fails=0
run() { echo "=== daosblk-perf $*"; $P --no-progress "$@"; rc=$?; echo "=== rc=$rc"; [ $rc -eq 0 ] || fails=$((fails+1)); }
run -r "$T" -w randread -q 16 -o 4096 -t 2 -c 0x1
run -r "$T" -w randwrite -q 16 -o 4096 -t 2 -c 0x1
run -r "$T" -w write -q 4 -o 131072 -t 2 -c 0x1
run -r "$T" -w randrw -M 70 -q 8 -o 8192 -t 2 -c 0x1 -H -D --verify
run -r "$T" -w write -q 4 -o 262144 -t 2 -c 0x1 -H -I --verify
run -r "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:4420" -w read -q 4 -o 65536 -t 2 -c 0x1 --json
run -r "$T" -w randread -q 4 -o 4096 -t 2 -c '[0,1]' --json
run -r "$T" -w randread -q 1 -o 512 -t 2 -c 0x1
run -r "$T" -w randread -q 8 -o 4096 -t 2 -c 0x1 --verify -H
run -r "$T" -w randrw -M 50 -q 128 -o 4096 -t 3 -c 0x2 -k 2000 --json
echo "=== negative: wrong subnqn (expect rc 1)"
$P -r "trtype:TCP traddr:127.0.0.1 trsvcid:4420 subnqn:nqn.x:none" -t 1; echo "=== rc=$?"
echo "PERF-GUEST fails=$fails"
exit $fails
