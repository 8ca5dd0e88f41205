#!/usr/bin/env bash
# Issue 4: bdev_daos_resize grows the namespace; the connected kernel host
# sees the new size without reconnecting.
KT_NAME=daos-resize
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_daos.sh"
kt_setup
kt_make_pool
kt_start_target "${DFS_TGT_ARGS[@]}"
rpc bdev_daos_create daosdev0 "$DFS_POOL" "$DFS_CONT" 64 4096 >/dev/null
kt_export daosdev0
kt_guest_start resize.sh --env WANT_MIB=128
kt_wait_signal connected
rpc bdev_daos_resize daosdev0 128 >/dev/null
kt_guest_wait || kt_fail "guest script failed"
grep -aq "resize: OK" "$GUEST_LOG" || kt_fail "guest did not report success"
[ "$(kt_guest_value oldsize)" = 64 ] || kt_fail "old size $(kt_guest_value oldsize)"
kt_stop_target
kt_log "PASS"
