# Sourced by the DAOS kernel tests after lib.sh: the pool and container the seed uses (test-pool/test-cont),
# on the engine DBK_DFS_ENGINE names.
#
#   local (default)  the embedded engine: a pool and container made with daosblk-dfs under $WORK/dfs.
#   daos             a live DAOS: the pool DBK_DAOS_POOL (default test-pool) must exist; the test creates its
#                    own POSIX container dbk-kernel-test (replacing one left by an earlier run) and destroys it
#                    at the end, so an operator's test-cont is never touched.
#                    daosblk-tgt runs in the test namespace, so it reaches the DAOS engine through a veth
#                    pair (dbkv0 here, dbkv1 there) and a host route to the engine's fabric address; an
#                    engine listening on loopback cannot be reached from there and the test skips.
#                    Skips (77) with the reason unless the build has the real engine and
#                    `daos pool query` succeeds.
#
# After kt_make_pool, DFS_TGT_ARGS holds the daosblk-tgt arguments that select the engine, and DFS_POOL and
# DFS_CONT the labels bdev_daos_create takes.
DFS_ENGINE=${DBK_DFS_ENGINE:-local}
DFS_POOL=test-pool
DFS_CONT=test-cont
DFS_ROOT=$WORK/dfs
DFS_TGT_ARGS=()
DAOS_CONT_MADE=0

kt_daos_skip() { kt_log "SKIPPED (daos engine): $*"; exit 77; }

if [ "$DFS_ENGINE" = daos ]; then
    DAOS_PREFIX=${DBK_DAOS_PREFIX:-}
    DAOS_POOL=${DBK_DAOS_POOL:-test-pool}
    DFS_POOL=$DAOS_POOL
    DFS_CONT=dbk-kernel-test
    DAOS_BIN=$DAOS_PREFIX/bin/daos
    DMG_BIN=$DAOS_PREFIX/bin/dmg
    [ "${DBK_HAVE_DAOS:-0}" = 1 ] || kt_daos_skip "this daosblk build has no real DAOS engine (configure with -DDAOS_PREFIX)"
    [ -x "$DAOS_BIN" ] || kt_daos_skip "no daos CLI at DBK_DAOS_PREFIX='$DAOS_PREFIX'"
    q=$(timeout 60 "$DAOS_BIN" pool query "$DAOS_POOL" 2>&1) || kt_daos_skip "daos pool query $DAOS_POOL failed: $(echo "$q" | tail -n1)"
else
    [ -x "$DFS" ] || kt_fail "missing binary $DFS"
fi

# The engine's fabric address (ofi+tcp://A.B.C.D:PORT), from dmg system query.
kt_daos_engine_addr() {
    "$DMG_BIN" -i system query --verbose --json 2>/dev/null | python3 -c '
import json, re, sys
d = json.load(sys.stdin)
for m in d["response"]["members"]:
    u = m.get("fabric_uri") or m.get("addr") or ""
    r = re.search(r"://([0-9.]+):", u)
    if r:
        print(r.group(1)); break'
}

# A path from the test namespace to the DAOS engine: veth dbkv0 (10.78.0.1) <-> dbkv1 (10.78.0.2, in the
# namespace), and a host route to the engine's address through it. Torn down with the namespace.
kt_daos_net_up() {
    local addr
    addr=$(kt_daos_engine_addr)
    [ -n "$addr" ] || kt_fail "cannot read the DAOS engine's fabric address from dmg system query"
    case "$addr" in 127.*) kt_daos_skip "the DAOS engine listens on loopback ($addr); the test namespace cannot reach it (set fabric_iface to a non-loopback interface)";; esac
    ip link del dbkv0 2>/dev/null || true
    ip link add dbkv0 type veth peer name dbkv1
    ip link set dbkv1 netns "$NETNS"
    ip addr add 10.78.0.1/30 dev dbkv0
    ip link set dbkv0 up
    ip -n "$NETNS" addr add 10.78.0.2/30 dev dbkv1
    ip -n "$NETNS" link set dbkv1 up
    ip -n "$NETNS" link set lo up
    ip -n "$NETNS" route add "$addr/32" via 10.78.0.1
    # the DAOS client in the target uses the namespace's end of the pair (the agent, outside, would name its own)
    KT_TGT_ENV=(D_INTERFACE=dbkv1 D_PROVIDER=ofi+tcp)
    kt_log "DAOS engine at $addr, reached from $NETNS through dbkv1"
}

kt_make_pool() {
    if [ "$DFS_ENGINE" = daos ]; then
        kt_daos_net_up
        "$DAOS_BIN" container destroy --force "$DAOS_POOL" "$DFS_CONT" >/dev/null 2>&1 || true
        "$DAOS_BIN" container create "$DAOS_POOL" "$DFS_CONT" --type POSIX >"$WORK/cont-create.log" 2>&1 ||
            { cat "$WORK/cont-create.log" >&2; kt_fail "daos container create failed"; }
        DAOS_CONT_MADE=1
        DFS_TGT_ARGS=(--dfs-engine daos)
        trap 'kt_daos_cleanup; kt_cleanup' EXIT
    else
        "$DFS" --dfs-root "$DFS_ROOT" pool create test-pool >/dev/null || kt_fail "pool create failed"
        "$DFS" --dfs-root "$DFS_ROOT" cont create test-pool test-cont --type POSIX >/dev/null || kt_fail "cont create failed"
        DFS_TGT_ARGS=(--dfs-root "$DFS_ROOT")
    fi
}

kt_daos_cleanup() {
    local rc=$?
    if [ "$DAOS_CONT_MADE" = 1 ]; then
        [ -n "$TGT_PID" ] && kill -KILL "$TGT_PID" 2>/dev/null && wait "$TGT_PID" 2>/dev/null
        TGT_PID=""
        "$DAOS_BIN" container destroy --force "$DAOS_POOL" "$DFS_CONT" >/dev/null 2>&1 || true
    fi
    ip link del dbkv0 2>/dev/null || true
    return $rc
}

# kt_daos_file_check NAME: the local engine lists the bdev's file in the container (the daos CLI lists no
# files; the real-engine tests check the file through a re-open instead).
kt_daos_file_check() {
    [ "$DFS_ENGINE" = daos ] && return 0
    "$DFS" --dfs-root "$DFS_ROOT" ls test-pool test-cont | grep -q "$1" || kt_fail "$1 file not in the container"
}
