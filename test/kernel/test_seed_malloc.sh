#!/usr/bin/env bash
# Issue 3: the seed workflow on a malloc bdev with the real Linux host:
# nvme discover, nvme connect-all (no fallback), mkfs.ext4 -F -O mmp, mount,
# write, e2fsck, remount, verify, nvme disconnect-all; then the target stops
# cleanly on SIGINT.
KT_NAME=seed-malloc
. "$(dirname "$0")/lib.sh"
kt_setup
kt_start_target
rpc bdev_malloc_create 64 4096 -b Malloc0 >/dev/null
kt_export Malloc0
kt_guest_start seed.sh
kt_wait_signal connected
kt_check_digests false
kt_guest_wait || kt_fail "guest script failed"
grep -aq "seed: OK" "$GUEST_LOG" || kt_fail "guest did not report success"
kt_stop_target
kt_log "PASS"
