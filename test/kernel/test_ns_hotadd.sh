#!/usr/bin/env bash
# Issue 3: a namespace added while the host is connected appears on the host.
KT_NAME=ns-hotadd
. "$(dirname "$0")/lib.sh"
kt_setup
kt_start_target
rpc bdev_malloc_create 32 4096 -b Malloc0 >/dev/null
rpc bdev_malloc_create 16 4096 -b Malloc1 >/dev/null
kt_export Malloc0
kt_guest_start hotadd.sh
kt_wait_signal connected
rpc nvmf_subsystem_add_ns "$NQN" Malloc1 >/dev/null
kt_guest_wait || kt_fail "guest script failed"
grep -aq "hotadd: OK" "$GUEST_LOG" || kt_fail "guest did not report success"
[ "$(kt_guest_value newsize)" = 16 ] || kt_fail "new namespace size $(kt_guest_value newsize) MiB, want 16"
kt_stop_target
kt_log "PASS"
