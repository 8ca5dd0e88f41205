#!/usr/bin/env bash
# daosblk-dfs: the local engine's admin CLI, its outputs and exit codes, on a temporary root.
set -u
DFS="${DBK_BUILD_DIR:?DBK_BUILD_DIR not set}/tools/dfs/daosblk-dfs"
ROOT=$(mktemp -d /tmp/dbk-dfs-cli-XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
fails=0

# expect CODE CMD...: run daosblk-dfs --dfs-root ROOT CMD..., check the exit code; output in $OUT / $ERR.
expect() {
	local want=$1
	shift
	OUT=$("$DFS" --dfs-root "$ROOT" "$@" 2>"$ROOT/.err")
	local rc=$?
	ERR=$(cat "$ROOT/.err")
	if [ "$rc" != "$want" ]; then
		echo "FAIL: daosblk-dfs $* -> exit $rc, want $want; stdout: $OUT; stderr: $ERR"
		fails=$((fails + 1))
	fi
}
has() { # has TEXT WHAT
	case "$1" in *"$2"*) ;; *) echo "FAIL: '$1' lacks '$2'"; fails=$((fails + 1)) ;; esac
}

expect 0 --help;                           has "$OUT" "pool create LABEL"
expect 0 pool --help;                      has "$OUT" "pool destroy"
expect 0 cont create --help;               has "$OUT" "--chunk-size"
expect 0 ls --help;                        has "$OUT" "ls POOL CONT"
expect 0 rm --help;                        has "$OUT" "rm POOL CONT NAME"; has "$OUT" "flock"
expect 0 --help;                           has "$OUT" "rm POOL CONT NAME"
expect 2;                                  has "$ERR" "missing command"
expect 2 frobnicate;                       has "$ERR" "unknown command 'frobnicate'"
expect 2 pool create;                      has "$ERR" "exactly one LABEL"
expect 2 pool create a --bogus;            has "$ERR" "unknown option '--bogus'"
expect 2 pool create a --uuid;             has "$ERR" "--uuid needs a value"
expect 0 pool list;                        has "$OUT" "No pools"

expect 0 pool create test-pool;            has "$OUT" "Pool created: label test-pool UUID "
PUUID=$(echo "$OUT" | awk '{print $NF}')
expect 1 pool create test-pool;            has "$ERR" "pool 'test-pool' already exists"
expect 0 pool create test-pool --if-absent; has "$OUT" "$PUUID"
expect 1 pool create 'bad label';          has "$ERR" "invalid character"
expect 0 pool create p2 --uuid 6F1D3A3E-1111-4A4A-9B9B-0123456789AB; has "$OUT" "6f1d3a3e-1111-4a4a-9b9b-0123456789ab"
expect 1 pool create p3 --uuid 6f1d3a3e-1111-4a4a-9b9b-0123456789ab; has "$ERR" "already exists"
expect 0 pool list;                        has "$OUT" "test-pool"; has "$OUT" "$PUUID"
expect 0 pool list --json;                 has "$OUT" "\"label\": \"p2\""
expect 0 pool query "$PUUID";              has "$OUT" "label: test-pool"
expect 1 pool query nope;                  has "$ERR" "pool 'nope' not found"

expect 0 cont create test-pool test-cont --type POSIX; has "$OUT" "type POSIX oclass SX chunk_size 1048576"
expect 0 cont create "$PUUID" h5 --type HDF5 --oclass RP_2G1 --chunk-size 4MiB; has "$OUT" "chunk_size 4194304"
expect 1 cont create test-pool test-cont;  has "$ERR" "container 'test-cont' already exists in pool 'test-pool'"
expect 0 cont create test-pool test-cont --if-absent; has "$OUT" "exists"
expect 1 cont create test-pool c3 --oclass XX; has "$ERR" "unknown object class 'XX'"
expect 1 cont create test-pool c3 --type NOPE; has "$ERR" "unknown container type 'NOPE'"
expect 2 cont create test-pool c3 --chunk-size 1XB; has "$ERR" "invalid --chunk-size"
expect 1 cont create nopool c3;            has "$ERR" "pool 'nopool' not found"
expect 2 pool create x --oclass SX;        has "$ERR" "belong to 'cont create'"
expect 0 cont list test-pool;              has "$OUT" "test-cont"; has "$OUT" "HDF5"
expect 0 cont query test-pool h5 --json;   has "$OUT" "\"oclass\": \"RP_2G1\""
expect 1 cont query test-pool nocont;      has "$ERR" "container 'nocont' not found in pool 'test-pool'"
expect 0 ls test-pool test-cont;           has "$OUT" "No files in container 'test-cont' of pool 'test-pool'"
# a file in the namespace shows with its size
CUUID=$("$DFS" --dfs-root "$ROOT" cont query test-pool test-cont --json | sed -n 's/.*"uuid": "\(.*\)".*/\1/p')
truncate -s 64M "$ROOT/pools/$PUUID/conts/$CUUID/data/daosdev0"
expect 0 ls test-pool test-cont;           has "$OUT" "67108864"; has "$OUT" "/daosdev0"
# the first line labels the columns
[ "$(echo "$OUT" | head -1 | tr -s ' ' | sed 's/^ //')" = "Size Allocated Name" ] ||
	{ echo "FAIL: ls header: $(echo "$OUT" | head -1)"; fails=$((fails + 1)); }
[ "$(echo "$OUT" | sed -n 2p | awk '{print $1, $3}')" = "67108864 /daosdev0" ] ||
	{ echo "FAIL: ls row: $OUT"; fails=$((fails + 1)); }
expect 0 ls test-pool test-cont --json;    has "$OUT" "\"size\": 67108864"

# rm: bad arguments, missing pool/container/file, a file in use (a shared flock, as an open bdev holds), success
DATA="$ROOT/pools/$PUUID/conts/$CUUID/data"
truncate -s 1M "$DATA/f1"
mkdir -p "$ROOT/pools/$PUUID/conts/$CUUID/xattrs"
echo '{}' >"$ROOT/pools/$PUUID/conts/$CUUID/xattrs/f1.json"
expect 2 rm test-pool test-cont;           has "$ERR" "rm takes POOL, CONT and NAME"
expect 1 rm nopool test-cont f1;           has "$ERR" "pool 'nopool' not found"
expect 1 rm test-pool nocont f1;           has "$ERR" "container 'nocont' not found in pool 'test-pool'"
expect 1 rm test-pool test-cont nofile;    has "$ERR" "file '/nofile' not found in container 'test-cont' of pool 'test-pool'"
expect 0 rm test-pool test-cont nofile --if-exists
expect 1 rm nopool test-cont f1 --if-exists; has "$ERR" "pool 'nopool' not found"
expect 1 rm test-pool test-cont a/b;       has "$ERR" "is not a file name at the container root"
expect 1 rm test-pool test-cont ..;        has "$ERR" "is not a file name at the container root"
mkdir "$DATA/adir"
expect 1 rm test-pool test-cont adir;      has "$ERR" "is not a regular file"
rmdir "$DATA/adir"
python3 -c 'import fcntl, sys, time; f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_SH); time.sleep(30)' "$DATA/f1" &
holder=$!
for _ in $(seq 1 50); do flock -n -x "$DATA/f1" true || break; sleep 0.1; done
expect 1 rm test-pool test-cont f1;        has "$ERR" "file '/f1' is in use"
[ -f "$DATA/f1" ] || { echo "FAIL: rm removed a file in use"; fails=$((fails + 1)); }
kill "$holder"; wait "$holder" 2>/dev/null
expect 0 rm test-pool test-cont /f1;       has "$OUT" "File '/f1' removed from container 'test-cont'"
[ ! -e "$DATA/f1" ] || { echo "FAIL: f1 still there"; fails=$((fails + 1)); }
[ ! -e "$ROOT/pools/$PUUID/conts/$CUUID/xattrs/f1.json" ] || { echo "FAIL: f1's xattrs still there"; fails=$((fails + 1)); }
expect 0 ls test-pool test-cont;           case "$OUT" in *f1*) echo "FAIL: ls still lists f1"; fails=$((fails + 1)) ;; esac

expect 1 pool destroy test-pool;           has "$ERR" "has 2 container(s)"
expect 1 cont destroy test-pool test-cont; has "$ERR" "holds 1 file(s)"
expect 0 cont destroy test-pool test-cont --force
expect 1 cont destroy test-pool test-cont; has "$ERR" "not found"
expect 0 cont destroy test-pool test-cont --if-exists
expect 0 pool destroy test-pool --force
expect 1 pool destroy test-pool;           has "$ERR" "pool 'test-pool' not found"
expect 0 pool destroy test-pool --if-exists
expect 0 pool destroy p2
expect 0 pool list;                        has "$OUT" "No pools"
# DBK_DFS_ROOT is the default root
OUT=$(DBK_DFS_ROOT="$ROOT" "$DFS" pool create envpool) || { echo "FAIL: DBK_DFS_ROOT"; fails=$((fails + 1)); }
expect 0 pool list;                        has "$OUT" "envpool"

if [ "$fails" -ne 0 ]; then
	echo "$fails failure(s)"
	exit 1
fi
echo "daosblk-dfs CLI: all checks passed"
