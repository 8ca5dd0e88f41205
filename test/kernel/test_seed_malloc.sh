#!/usr/bin/env bash
# Issue 3: the seed workflow on a malloc bdev with the real Linux host:
# nvme discover, nvme connect-all (no fallback), mkfs.ext4 -F -O mmp, mount,
# write, e2fsck, remount, verify, nvme disconnect-all; then the target stops
# cleanly on SIGINT. The host's writes and reads go through the zero-copy paths.
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
# The host's writes went straight into the malloc bdev's memory (the large ones after R2T, the 4 KiB ones in
# their capsules: this mkfs, write and e2fsck send about 15 and 35), and mkfs, e2fsck and the verify read them
# back through the zero-copy read path.
kt_check_stat writes_lent 20
kt_check_stat bytes_received_zcopy 1000000
kt_check_stat c2h_pdus_lent 20
kt_stop_target
kt_log "PASS"
