#!/bin/bash
# daosblk-tgt's command line: bad masks and options refused, help/version, --wait-for-rpc, two reactors.
. "$(dirname "$0")/../lib/common.sh"
dbk_setup

for mask in "0x0" "zz" "[0," "[5-2]" "0x" "[200]" "0x10000000000000000000000000000000000"; do
	"$DBK_TGT" -m "$mask" -r "$DBK_SOCK" >"$DBK_TMP/m.log" 2>&1 && fail "mask '$mask' accepted"
	rc=$?
	[ "$rc" -eq 1 ] || fail "mask '$mask': exit status $rc"
	grep -q "invalid core mask" "$DBK_TMP/m.log" || fail "mask '$mask': $(cat "$DBK_TMP/m.log")"
	[ ! -e "$DBK_SOCK" ] || fail "socket created for a refused mask"
done
"$DBK_TGT" --bogus >"$DBK_TMP/o.log" 2>&1 && fail "unknown option accepted"
"$DBK_TGT" extra-arg >"$DBK_TMP/o.log" 2>&1 && fail "stray argument accepted"
"$DBK_TGT" -L '' >"$DBK_TMP/o.log" 2>&1 && fail "empty log flag accepted"
"$DBK_TGT" -h | grep -q -- "--cpumask" || fail "help text"
[ "$("$DBK_TGT" -v)" = "daosblk v0.1.0" ] || fail "version"
"$DBK_RPC" -s "$DBK_TMP/none.sock" spdk_get_version 2>"$DBK_TMP/c.log" && fail "client without a server succeeded"
grep -q "cannot connect" "$DBK_TMP/c.log" || fail "client connect error: $(cat "$DBK_TMP/c.log")"

# --wait-for-rpc: runtime methods refused until framework_start_init.
DBK_START_COUNT=$((DBK_START_COUNT + 1))
DBK_LOG="$DBK_TMP/wait.log"
"$DBK_TGT" -m 0x1 -r "$DBK_SOCK" --wait-for-rpc >"$DBK_LOG" 2>&1 &
DBK_TGT_PID=$!
for i in $(seq 1 100); do [ -S "$DBK_SOCK" ] && break; sleep 0.1; done
[ -S "$DBK_SOCK" ] || fail "--wait-for-rpc: no socket"
expect_rpc_error "framework_start_init" bdev_malloc_create 1 512 -b Early
rpc rpc_get_methods --current | grep -q framework_start_init || fail "start_init not listed as current"
[ "$(rpc framework_start_init)" = true ] || fail "framework_start_init"
[ "$(rpc framework_wait_init)" = true ] || fail "framework_wait_init after start"
rpc bdev_malloc_create 1 512 -b W >/dev/null || fail "bdev create after start_init"
expect_rpc_error "-1" framework_start_init
dbk_stop

# Two reactors (if this machine has two usable cores).
if [ "$(nproc)" -ge 2 ]; then
	dbk_start -m '[0,1]'
	r=$(rpc framework_get_reactors) || fail "framework_get_reactors"
	[ "$(json_get "$r" '[x["lcore"] for x in j["reactors"]]')" = "[0, 1]" ] || fail "reactors: $r"
	grep -q "reactors on cores 0,1" "$DBK_LOG" || fail "ready line: $(cat "$DBK_LOG")"
	# SIGTERM works too.
	kill -TERM "$DBK_TGT_PID"; wait "$DBK_TGT_PID"; rc=$?; DBK_TGT_PID=""
	[ "$rc" -eq 0 ] || fail "SIGTERM exit status $rc"
fi

# spdk_kill_instance shuts down cleanly.
dbk_start -m 0x1
[ "$(rpc spdk_kill_instance SIGINT)" = true ] || fail "spdk_kill_instance"
for i in $(seq 1 100); do kill -0 "$DBK_TGT_PID" 2>/dev/null || break; sleep 0.1; done
wait "$DBK_TGT_PID"; rc=$?; DBK_TGT_PID=""
[ "$rc" -eq 0 ] || fail "spdk_kill_instance exit status $rc"
echo PASS
