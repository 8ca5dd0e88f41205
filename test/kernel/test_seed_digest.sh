#!/usr/bin/env bash
# Issue 3: the seed workflow with header and data digests on (nvme connect -g -G).
KT_NAME=seed-digest
. "$(dirname "$0")/lib.sh"
kt_setup
kt_start_target
rpc bdev_malloc_create 64 512 -b Malloc0 >/dev/null
kt_export Malloc0
kt_guest_start seed.sh --env MODE=digest
kt_wait_signal connected
kt_check_digests true
kt_guest_wait || kt_fail "guest script failed"
grep -aq "seed: OK" "$GUEST_LOG" || kt_fail "guest did not report success"
kt_stop_target
kt_log "PASS"
