#!/usr/bin/env bash
# Issue 4: data written and flushed by the host survives a SIGKILL of the
# target; restarted from its saved config, the host sees the same NGUID/UUID
# and intact data.
KT_NAME=daos-durability
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_daos.sh"
kt_setup
kt_make_pool
kt_start_target "${DFS_TGT_ARGS[@]}"
rpc bdev_daos_create daosdev0 "$DFS_POOL" "$DFS_CONT" 64 4096 >/dev/null
kt_export daosdev0
rpc save_config >"$WORK/config.json"
kt_guest durability.sh --env PHASE=write
sum=$(kt_guest_value sum); nguid=$(kt_guest_value nguid); uuid=$(kt_guest_value uuid)
[ -n "$sum" ] && [ -n "$nguid" ] || kt_fail "guest reported no checksum/NGUID"
kt_log "written: sum=$sum nguid=$nguid uuid=$uuid; killing the target"
kt_kill_target
kt_start_target "${DFS_TGT_ARGS[@]}" -c "$WORK/config.json"
kt_guest durability.sh --env PHASE=verify --env "SUM=$sum" --env "NGUID=$nguid" --env "UUID=$uuid"
grep -aq "durability-verify: OK" "$GUEST_LOG" || kt_fail "guest did not verify"
kt_stop_target
kt_log "PASS"
