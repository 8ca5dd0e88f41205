# Shared helpers for integration tests (source me). Uses only temp dirs and temp sockets.
#   dbk_setup                 temp dir $DBK_TMP, socket $DBK_SOCK, binaries $DBK_TGT / $DBK_RPC
#   dbk_start [tgt args...]   start daosblk-tgt on $DBK_SOCK and wait for framework_wait_init
#   dbk_stop                  SIGINT, wait, require exit status 0 (ASan leak reports fail it)
#   rpc ARGS...               daosblk-rpc -s $DBK_SOCK
#   expect_rpc_error TEXT ARGS...   the call must fail (exit 1) and print TEXT on stderr
set -u

: "${DBK_BUILD_DIR:?DBK_BUILD_DIR must point at the build directory}"
DBK_TGT="$DBK_BUILD_DIR/app/daosblk-tgt"
DBK_RPC="$DBK_BUILD_DIR/tools/rpc/daosblk-rpc"
DBK_TGT_PID=""
DBK_START_COUNT=0

fail() {
	echo "FAIL: $*" >&2
	if [ -n "${DBK_LOG:-}" ] && [ -f "$DBK_LOG" ]; then
		echo "--- daemon log ($DBK_LOG) ---" >&2
		tail -n 40 "$DBK_LOG" >&2
	fi
	exit 1
}

dbk_cleanup() {
	if [ -n "$DBK_TGT_PID" ] && kill -0 "$DBK_TGT_PID" 2>/dev/null; then
		kill -KILL "$DBK_TGT_PID" 2>/dev/null
		wait "$DBK_TGT_PID" 2>/dev/null
	fi
	[ -n "${DBK_TMP:-}" ] && rm -rf "$DBK_TMP"
}

dbk_setup() {
	[ -x "$DBK_TGT" ] || fail "daosblk-tgt not built at $DBK_TGT"
	[ -x "$DBK_RPC" ] || fail "daosblk-rpc not built at $DBK_RPC"
	DBK_TMP=$(mktemp -d /tmp/dbk_it.XXXXXX)
	DBK_SOCK="$DBK_TMP/rpc.sock"
	trap dbk_cleanup EXIT
	# Leaks must fail the run under ASan; keep the report short.
	export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
}

rpc() {
	"$DBK_RPC" -s "$DBK_SOCK" -t 20 "$@"
}

# dbk_start [args]: the daemon must answer framework_wait_init within 30 s.
dbk_start() {
	DBK_START_COUNT=$((DBK_START_COUNT + 1))
	DBK_LOG="$DBK_TMP/tgt.$DBK_START_COUNT.log"
	"$DBK_TGT" -r "$DBK_SOCK" "$@" >"$DBK_LOG" 2>&1 &
	DBK_TGT_PID=$!
	local i
	for i in $(seq 1 300); do
		if ! kill -0 "$DBK_TGT_PID" 2>/dev/null; then
			wait "$DBK_TGT_PID"
			fail "daosblk-tgt $* exited early with status $?"
		fi
		if [ -S "$DBK_SOCK" ] && "$DBK_RPC" -s "$DBK_SOCK" -t 5 framework_wait_init >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	fail "daosblk-tgt $* did not become ready within 30 s"
}

# dbk_stop: SIGINT; exit status must be 0 within 30 s.
dbk_stop() {
	[ -n "$DBK_TGT_PID" ] || fail "dbk_stop: no daemon running"
	kill -INT "$DBK_TGT_PID"
	local i rc
	for i in $(seq 1 300); do
		if ! kill -0 "$DBK_TGT_PID" 2>/dev/null; then
			wait "$DBK_TGT_PID"
			rc=$?
			DBK_TGT_PID=""
			[ "$rc" -eq 0 ] || fail "daosblk-tgt exited with status $rc after SIGINT"
			[ ! -e "$DBK_SOCK" ] || fail "socket $DBK_SOCK left behind after shutdown"
			return 0
		fi
		sleep 0.1
	done
	fail "daosblk-tgt did not exit within 30 s of SIGINT"
}

# The daemon is still alive and answering.
dbk_alive() {
	kill -0 "$DBK_TGT_PID" 2>/dev/null || fail "daosblk-tgt died"
	rpc spdk_get_version >/dev/null || fail "daosblk-tgt no longer answers"
}

# expect_rpc_error TEXT ARGS...: daosblk-rpc ARGS must exit 1 with TEXT in its stderr.
expect_rpc_error() {
	local want="$1"
	shift
	local err rc
	err=$(rpc "$@" 2>&1 >/dev/null)
	rc=$?
	[ "$rc" -eq 1 ] || fail "daosblk-rpc $* exited $rc, expected 1 (stderr: $err)"
	case "$err" in
	*"$want"*) ;;
	*) fail "daosblk-rpc $*: stderr '$err' does not contain '$want'" ;;
	esac
}

# json_get JSON PYEXPR: evaluate a python expression over the parsed JSON `j`.
json_get() {
	python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}
