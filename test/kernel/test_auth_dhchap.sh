#!/usr/bin/env bash
# Issue 15: DH-HMAC-CHAP in-band authentication with the Linux kernel host (one guest boot):
# a missing and a wrong secret fail the connect; SHA-256 (null group), SHA-384 (ffdhe2048,
# bidirectional, ext4) and SHA-512 (ffdhe3072) succeed, each digest chosen by the target's
# nvmf_set_config; a key change with nvmf_subsystem_set_keys applies to the next connect; every
# queue (admin and I/O) authenticates.
#
# The guest kernel must have NVMe in-band authentication (CONFIG_NVME_AUTH in 6.1-6.6,
# CONFIG_NVME_HOST_AUTH from 6.7). Debian 12's 6.1 kernel has it off: then the test boots the
# bookworm-backports kernel (KT_AUTH_KERNEL_PKG, default: the newest linux-image-6.*-amd64 apt knows
# besides the default one) from a cache of its own (KT_AUTH_KI_CACHE, default ~/.cache/kernel-initiator-auth),
# prepared by guest_kernel.sh (downloaded with apt, the default guest's initramfs with that kernel's modules),
# so the other kernel tests keep their kernel. It skips (77) with the reason when no such kernel can be prepared.
KT_NAME=auth-dhchap
. "$(dirname "$0")/lib.sh"

guest_kernel_has_auth() { # CACHE: the kernel that CACHE's current.env boots has host-side in-band auth
    local env=$1/current.env kver
    [ -r "$env" ] || return 1
    kver=$(. "$env"; echo "$KI_KVER")
    grep -Eq '^CONFIG_NVME_(HOST_)?AUTH=[ym]' "$1/kernel/$kver/boot/config-$kver" 2>/dev/null
}

kt_setup
DEFAULT_CACHE=${KI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kernel-initiator}
if ! guest_kernel_has_auth "$DEFAULT_CACHE"; then
    pkg=${KT_AUTH_KERNEL_PKG:-$(apt-cache search --names-only '^linux-image-6\.[0-9.]+\+deb[0-9]+-amd64$' 2>/dev/null |
        awk '{print $1}' | sort -V | tail -n1)}
    [ -n "$pkg" ] || { kt_log "skipped: the guest kernel has no NVMe in-band authentication and apt knows no other kernel"; exit 77; }
    export KI_CACHE=${KT_AUTH_KI_CACHE:-$DEFAULT_CACHE-auth}
    kt_log "the default guest kernel has no NVMe in-band authentication; preparing $pkg in $KI_CACHE"
    if ! KI_DIR=$KI KI_BASE_CACHE=$DEFAULT_CACHE "$DBK_SOURCE_DIR/test/kernel/guest_kernel.sh" "$pkg" "$KI_CACHE" \
        >"$WORK/setup-auth.log" 2>&1; then
        tail -n 5 "$WORK/setup-auth.log" >&2
        kt_log "skipped: cannot prepare a guest with $pkg (see above)"
        exit 77
    fi
    guest_kernel_has_auth "$KI_CACHE" || { kt_log "skipped: $pkg has no NVMe in-band authentication either"; exit 77; }
fi

HOSTNQN=nqn.2014-08.org.nvmexpress:uuid:6c1f7a52-8d53-4d5a-a5a1-0d1bd3c0a115
KEYS=$WORK/keys
mkdir -m 0700 "$KEYS"
secret() { # secret TRANSFORM LEN: a fresh DHHC-1 secret (random key + CRC-32), as nvme gen-dhchap-key makes
    python3 -c 'import base64,os,sys,zlib
k=os.urandom(int(sys.argv[2]))
print("DHHC-1:%02d:%s:" % (int(sys.argv[1]), base64.b64encode(k+zlib.crc32(k).to_bytes(4,"little")).decode()))' "$1" "$2"
}
( umask 077
  secret 1 32 >"$KEYS/s1"; secret 2 48 >"$KEYS/s2"; secret 3 64 >"$KEYS/c2"; secret 0 48 >"$KEYS/s3"
  secret 0 32 >"$KEYS/wrong" )

KT_TGT_ENV=(DBK_LOG_LEVEL=info)
kt_start_target
for k in s1 s2 c2 s3; do rpc keyring_file_add_key "$k" "$KEYS/$k" >/dev/null; done
rpc bdev_malloc_create 64 512 -b Malloc0 >/dev/null
rpc nvmf_create_transport -t TCP -u 2097152 -i 2097152 >/dev/null
rpc nvmf_create_subsystem "$NQN" -s SPDK00000000000001 -d SPDK_Virtual_Controller_1 >/dev/null
rpc nvmf_subsystem_add_ns "$NQN" Malloc0 >/dev/null
rpc nvmf_subsystem_add_listener "$NQN" -t tcp -a "$TARGET_IP" -s 4420 >/dev/null
rpc nvmf_subsystem_add_listener discovery -t tcp -a "$TARGET_IP" -s 4420 >/dev/null
rpc nvmf_subsystem_add_host "$NQN" "$HOSTNQN" --dhchap-key s1 >/dev/null
rpc nvmf_set_config --dhchap-digests sha256 --dhchap-dhgroups null >/dev/null

marker() { # the guest waits for this subsystem in the discovery log before its next step
    rpc nvmf_create_subsystem "nqn.2016-06.io.spdk:marker$1" -a -s "SPDK0000000000000$1" >/dev/null
    rpc nvmf_subsystem_add_listener "nqn.2016-06.io.spdk:marker$1" -t tcp -a "$TARGET_IP" -s 4420 >/dev/null
}
# authed DIGEST GROUP [bidirectional]: at least 2 queues (admin + I/O) authenticated that way since the last call
authed() {
    local want="($1, $2${3:+, bidirectional})" n
    n=$(grep -aF "authenticated $want" "$TGT_LOG" | wc -l)
    kt_log "queues authenticated $want: $n (in total $(grep -ac ' authenticated (' "$TGT_LOG"))"
    [ "$n" -ge 2 ] || kt_fail "expected the admin and I/O queues to authenticate $want"
}

kt_guest_start auth.sh --env "KI_HOSTNQN=$HOSTNQN" --add "$KEYS/s1" --add "$KEYS/s2" --add "$KEYS/c2" \
    --add "$KEYS/s3" --add "$KEYS/wrong"
kt_wait_signal step1
authed sha256 null
grep -aq "wrong response" "$TGT_LOG" || kt_fail "the wrong secret was not refused by a wrong response"
rpc nvmf_subsystem_set_keys "$NQN" "$HOSTNQN" --dhchap-key s2 --dhchap-ctrlr-key c2 >/dev/null
rpc nvmf_set_config --dhchap-digests sha384 --dhchap-dhgroups ffdhe2048 >/dev/null
marker 2
kt_wait_signal step2
authed sha384 ffdhe2048 bidirectional
[ "$(grep -ac "wrong response" "$TGT_LOG")" -ge 2 ] || kt_fail "the old secret after set_keys was not refused by a wrong response"
grep -aq "rejected the controller's response" "$TGT_LOG" ||
    kt_fail "the host did not report the wrong controller secret (Failure2)"
rpc nvmf_subsystem_set_keys "$NQN" "$HOSTNQN" --dhchap-key s3 >/dev/null
rpc nvmf_set_config --dhchap-digests sha512 --dhchap-dhgroups ffdhe3072 >/dev/null
marker 3
kt_wait_signal step3
authed sha512 ffdhe3072
kt_guest_wait || kt_fail "guest script failed"
grep -aq "auth: OK" "$GUEST_LOG" || kt_fail "guest did not report success"
kt_log "guest: $(tr -d '\r' <"$GUEST_LOG" | grep -ao 'init started (kernel [^)]*)' | head -n1)"
for k in s1 s2 c2 s3 wrong; do
    grep -aqF "$(cut -d: -f3 "$KEYS/$k")" "$TGT_LOG" && kt_fail "a secret is in the target's log"
done
kt_stop_target
kt_log "PASS"
