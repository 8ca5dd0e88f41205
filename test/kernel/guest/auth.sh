# Issue 15: DH-HMAC-CHAP with the kernel host (nvme connect --dhchap-secret [--dhchap-ctrl-secret]).
# One boot, several connects; the target side changes keys and digests between the steps and tells
# us to go on by adding a marker subsystem that shows in the discovery log.
. /ki/files/common.sh
F=/ki/files
Q=$(cat /etc/nvme/hostnqn)

# wait_marker N: the target added nqn.2016-06.io.spdk:marker$N (its signal that step N may start).
wait_marker() {
    n=0
    while [ "$n" -lt 120 ]; do
        nvme discover -t tcp -a "$T" -s "$P" 2>/dev/null | grep -q "marker$1\$" && return 0
        sleep 1; n=$((n + 1))
    done
    die "target never signalled step $1"
}

# try_connect NAME ARGS...: nvme connect with ARGS; 0 if a namespace appeared
try_connect() {
    name=$1; shift
    step "connect ($name): nvme connect -t tcp -a $T -s $P -n $NQN -q $Q $*"
    nvme connect -t tcp -a "$T" -s "$P" -n "$NQN" -q "$Q" "$@" || return 1
    wait_ns 1 100 || return 1
    DEV=$(ns_devs | head -n1)
    echo "namespace: $DEV"
}

expect_refused() {
    name=$1
    if try_connect "$@"; then die "connect ($name) succeeded but must fail"; fi
    nvme disconnect -n "$NQN" >/dev/null 2>&1
    [ -z "$(ns_devs)" ] || die "a namespace is attached after the refused connect ($name)"
    echo "refused as expected: $name"
}

disconnect() {
    nvme disconnect -n "$NQN" || die "nvme disconnect failed"
    n=0; while [ -n "$(ns_devs)" ] && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
}

# step 1: SHA-256, null group; the key is transformed with SHA-256 (DHHC-1:01)
expect_refused "no secret"
expect_refused "wrong secret" --dhchap-secret="$(cat $F/wrong)"
try_connect "sha256" --dhchap-secret="$(cat $F/s1)" || die "connect with the right secret failed"
dd if="$DEV" of=/dev/null bs=4k count=16 2>/dev/null || die "read over the authenticated path failed"
disconnect
signal_host step1

# step 2: the target changed the keys (nvmf_subsystem_set_keys) and allows SHA-384 / ffdhe2048 only;
# bidirectional with a controller key (DHHC-1:02 host key, DHHC-1:03 controller key); ext4 on it
wait_marker 2
expect_refused "old secret after set_keys" --dhchap-secret="$(cat $F/s1)"
expect_refused "wrong controller secret" --dhchap-secret="$(cat $F/s2)" --dhchap-ctrl-secret="$(cat $F/wrong)"
try_connect "sha384 bidirectional" --dhchap-secret="$(cat $F/s2)" --dhchap-ctrl-secret="$(cat $F/c2)" ||
    die "bidirectional connect failed"
ext4_write "$DEV"
ext4_verify "$DEV" "$SUM"
disconnect
signal_host step2

# step 3: SHA-512 / ffdhe3072, a key of transformation 00 with the new host entry key
wait_marker 3
try_connect "sha512" --dhchap-secret="$(cat $F/s3)" || die "connect (sha512) failed"
ext4_verify "$DEV" "$SUM"
disconnect
signal_host step3
echo "auth: OK"
