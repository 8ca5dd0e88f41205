#!/usr/bin/env bash
# daosblk-dfs rm against the real daemon: a file a DAOS bdev (local engine) uses is refused, the one bdev_daos_delete
# left behind is removed; wrong pool/container/name give clear errors; ls labels its columns.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
dbk_setup
DFS="$DBK_BUILD_DIR/tools/dfs/daosblk-dfs"
ROOT="$DBK_TMP/dfs"
mkdir -p "$ROOT"
dfs() { "$DFS" --dfs-root "$ROOT" "$@"; }
# expect_dfs CODE TEXT ARGS...: exit CODE and TEXT in stdout+stderr
expect_dfs() {
	local code=$1 want=$2 out rc
	shift 2
	out=$(dfs "$@" 2>&1)
	rc=$?
	[ "$rc" -eq "$code" ] || fail "daosblk-dfs $* exited $rc, expected $code: $out"
	case "$out" in *"$want"*) ;; *) fail "daosblk-dfs $*: '$out' lacks '$want'" ;; esac
}

dfs pool create test-pool >/dev/null || fail "pool create"
dfs cont create test-pool test-cont --type POSIX >/dev/null || fail "cont create"
dbk_start --dfs-root "$ROOT"

rpc bdev_daos_create daosdev0 test-pool test-cont 16 4096 >/dev/null || fail "bdev_daos_create"
out=$(dfs ls test-pool test-cont) || fail "ls"
[ "$(echo "$out" | head -1 | tr -s ' ' | sed 's/^ //')" = "Size Allocated Name" ] || fail "ls header: $out"
echo "$out" | grep -Eq '^ +16777216 +[0-9]+  /daosdev0$' || fail "ls row for daosdev0: $out"

# in use: right after create (no channel open yet) and with the namespace's channels open
expect_dfs 1 "file '/daosdev0' is in use" rm test-pool test-cont daosdev0
rpc nvmf_create_transport -t TCP >/dev/null || fail "nvmf_create_transport"
rpc nvmf_create_subsystem nqn.2016-06.io.spdk:cnode1 -a >/dev/null || fail "nvmf_create_subsystem"
rpc nvmf_subsystem_add_ns nqn.2016-06.io.spdk:cnode1 daosdev0 >/dev/null || fail "nvmf_subsystem_add_ns"
expect_dfs 1 "bdev_daos_delete that bdev first" rm test-pool test-cont /daosdev0
dfs ls test-pool test-cont | grep -q '/daosdev0$' || fail "the refused rm removed the file"
rpc bdev_get_bdevs -b daosdev0 >/dev/null || fail "the bdev is gone after a refused rm"

# wrong pool, container, name
expect_dfs 1 "pool 'nopool' not found" rm nopool test-cont daosdev0
expect_dfs 1 "container 'nocont' not found in pool 'test-pool'" rm test-pool nocont daosdev0
expect_dfs 1 "file '/nofile' not found in container 'test-cont' of pool 'test-pool'" rm test-pool test-cont nofile
expect_dfs 1 "is not a file name at the container root" rm test-pool test-cont x/y
expect_dfs 2 "rm takes POOL, CONT and NAME" rm test-pool test-cont

# deleted: the file stays (bdev_daos_delete keeps the data) until rm
rpc nvmf_subsystem_remove_ns nqn.2016-06.io.spdk:cnode1 1 >/dev/null || fail "nvmf_subsystem_remove_ns"
rpc bdev_daos_delete daosdev0 >/dev/null || fail "bdev_daos_delete"
dfs ls test-pool test-cont | grep -q '/daosdev0$' || fail "bdev_daos_delete removed the file"
expect_dfs 0 "File '/daosdev0' removed from container 'test-cont'" rm test-pool test-cont daosdev0
expect_dfs 0 "No files in container 'test-cont'" ls test-pool test-cont
expect_dfs 1 "file '/daosdev0' not found" rm test-pool test-cont daosdev0

# the name is free again: a new bdev makes a new file (a new identity)
rpc bdev_daos_create daosdev0 test-pool test-cont 8 512 >/dev/null || fail "bdev_daos_create after rm"
bs=$(json_get "$(rpc bdev_get_bdevs -b daosdev0)" 'j[0]["block_size"]')
[ "$bs" = 512 ] || fail "recreated bdev has block_size $bs, not the new 512"
expect_dfs 1 "is in use" rm test-pool test-cont daosdev0
dbk_stop
# a stopped target holds nothing
expect_dfs 0 "removed" rm test-pool test-cont daosdev0
echo "PASS: daosblk-dfs rm refuses files in use and removes what bdev_daos_delete left"
