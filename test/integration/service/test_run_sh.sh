#!/usr/bin/env bash
# scripts/run.sh stops the daosblk-tgt it started on every way out:
#  1. the listener's port is taken: run.sh fails, names the port, and no daosblk-tgt of it is left
#     (before, the target stayed and the next run met "transport TCP already exists");
#  2. the next run, on the same RPC socket and the same pool, serves; SIGTERM to run.sh stops the
#     target cleanly (exit 0) and leaves nothing running, as does SIGINT.
# DBK_NO_BUILD=1: run.sh uses the binaries of $DBK_BUILD_DIR instead of installing and building.
set -uo pipefail
: "${DBK_BUILD_DIR:?}"
SRC=${DBK_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
W=$(mktemp -d /tmp/dbk-runsh.XXXXXX)
holder=""
runpid=""

# daosblk-tgt processes whose command line names our socket (only ours: it is in our temp dir).
our_targets() {
    local p
    for p in /proc/[0-9]*; do
        tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q "daosblk-tgt .*$W/rpc.sock" && echo "${p#/proc/}"
    done
    return 0
}
cleanup() {
    local rc=$? p
    [ -n "$runpid" ] && kill -KILL "$runpid" 2>/dev/null
    [ -n "$holder" ] && kill "$holder" 2>/dev/null
    for p in $(our_targets); do kill -KILL "$p" 2>/dev/null; done
    [ $rc -ne 0 ] && { echo "--- run.sh output (last run) ---"; tail -n 30 "$W/run.out" 2>/dev/null; }
    rm -rf "$W"
    exit $rc
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export DBK_NO_BUILD=1 DBK_BUILD_DIR DBK_ADDR=127.0.0.1 DBK_PORT=$PORT DBK_MASK=0x1 \
       DBK_DFS_ROOT=$W/dfs DBK_SOCK=$W/rpc.sock

# 1. Someone listens on the port already.
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
open(sys.argv[2], "w").close(); time.sleep(600)' "$PORT" "$W/holding" &
holder=$!
for _ in $(seq 1 100); do [ -e "$W/holding" ] && break; sleep 0.1; done
[ -e "$W/holding" ] || fail "could not occupy port $PORT"
timeout 120 bash "$SRC/scripts/run.sh" >"$W/run.out" 2>&1
rc=$?
[ $rc -ne 0 ] || fail "run.sh succeeded with port $PORT taken"
[ $rc -ne 124 ] || fail "run.sh hung with port $PORT taken"
left=$(our_targets)
[ -z "$left" ] || fail "daosblk-tgt left running after the failed run (pid $left)"
[ ! -e "$W/rpc.sock" ] || fail "RPC socket left behind after the failed run"
grep -q "127.0.0.1:$PORT: Address already in use" "$W/run.out" || fail "the error does not name the port $PORT"
grep -q "run.sh: 'daosblk-rpc nvmf_subsystem_add_listener .* -s $PORT' failed" "$W/run.out" ||
    fail "run.sh does not say which step failed"
echo "ok: port taken -> run.sh exit $rc, error names 127.0.0.1:$PORT, no daosblk-tgt left"
kill "$holder"; wait "$holder" 2>/dev/null; holder=""

# 2. Port free: serves; SIGTERM (then SIGINT) to run.sh stops it.
for sig in TERM INT; do
    # Emptied here, before the job starts: the job's own redirection truncates it only once it runs, and
    # until then the loop below would find the last round's "serving" line.
    : >"$W/run.out"
    # A background job of a script starts with SIGINT ignored (which a shell cannot trap): undo that,
    # as for run.sh in the foreground of a terminal.
    python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp("bash", ["bash", sys.argv[1]])' \
        "$SRC/scripts/run.sh" >"$W/run.out" 2>&1 &
    runpid=$!
    for _ in $(seq 1 600); do
        grep -q "daosblk-tgt is serving" "$W/run.out" && break
        kill -0 "$runpid" 2>/dev/null || { wait "$runpid"; fail "run.sh exited with status $? (port free)"; }
        sleep 0.1
    done
    grep -q "daosblk-tgt is serving" "$W/run.out" || fail "run.sh did not get to serving within 60 s"
    grep -q "already exists" "$W/run.out" && fail "run.sh met a leftover target"
    python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5).close()' "$PORT" ||
        fail "nothing listens on $PORT"
    [ -n "$(our_targets)" ] || fail "no daosblk-tgt while serving"
    kill -"$sig" "$runpid"
    rc=0
    timeout 60 tail --pid="$runpid" -f /dev/null || fail "run.sh did not end within 60 s of SIG$sig"
    wait "$runpid" || rc=$?
    runpid=""
    [ $rc -eq 0 ] || fail "run.sh exited $rc after SIG$sig (the target's clean stop is 0)"
    grep -q "SIGINT received, shutting down" "$W/run.out" || fail "the target was not stopped with SIGINT"
    left=$(our_targets)
    [ -z "$left" ] || fail "daosblk-tgt left running after SIG$sig to run.sh (pid $left)"
    echo "ok: serving, SIG$sig to run.sh -> exit 0, no daosblk-tgt left"
done
echo PASS
