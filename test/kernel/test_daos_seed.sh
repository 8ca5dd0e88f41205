#!/usr/bin/env bash
# Issue 4: the seed workflow on the local engine with the real Linux host:
# daosblk-dfs pool/cont create, the five RPCs of the seed, nvme connect-all,
# mkfs.ext4 -F -O mmp, mount, write, e2fsck, remount, verify.
KT_NAME=daos-seed
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_daos.sh"
kt_setup
kt_make_pool
kt_start_target "${DFS_TGT_ARGS[@]}"
rpc nvmf_create_transport -t TCP -u 2097152 -i 2097152 >/dev/null
rpc bdev_daos_create daosdev0 "$DFS_POOL" "$DFS_CONT" 64 4096 >/dev/null
rpc nvmf_create_subsystem "$NQN" -a -s SPDK00000000000001 -d SPDK_Virtual_Controller_1 >/dev/null
rpc nvmf_subsystem_add_ns "$NQN" daosdev0 >/dev/null
rpc nvmf_subsystem_add_listener "$NQN" -t tcp -a "$TARGET_IP" -s 4420 >/dev/null
kt_guest seed.sh
grep -aq "seed: OK" "$GUEST_LOG" || kt_fail "guest did not report success"
kt_stop_target
kt_daos_file_check daosdev0
kt_log "PASS"
