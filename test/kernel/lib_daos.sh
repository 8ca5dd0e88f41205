# Sourced by the DAOS kernel tests after lib.sh: a local-engine pool and container.
DFS_ROOT=$WORK/dfs
[ -x "$DFS" ] || kt_fail "missing binary $DFS"
kt_make_pool() {
    "$DFS" --dfs-root "$DFS_ROOT" pool create test-pool >/dev/null || kt_fail "pool create failed"
    "$DFS" --dfs-root "$DFS_ROOT" cont create test-pool test-cont --type POSIX >/dev/null || kt_fail "cont create failed"
}
