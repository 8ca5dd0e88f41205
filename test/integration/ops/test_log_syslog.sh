#!/usr/bin/env bash
# daosblk-tgt --syslog sends its lines to syslog(3), i.e. datagrams on /dev/log, with facility daemon and the right
# priorities. The test runs in a private mount namespace with a private overlay on /dev, so the /dev/log it binds
# (and listens on) is seen only by itself and the daemon it starts: the machine's /dev is untouched.
set -u
if [ "${DBK_LOG_SYSLOG_NS:-}" != 1 ]; then
	if ! command -v unshare >/dev/null || ! unshare -m true 2>/dev/null; then
		echo "SKIP: cannot create a mount namespace (unshare -m; needs root)"
		exit 77
	fi
	DBK_LOG_SYSLOG_NS=1 exec unshare -m bash "${BASH_SOURCE[0]}" "$@"
fi

. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
dbk_setup
mount --make-rprivate / || fail "mount --make-rprivate /"
mkdir -p "$DBK_TMP/dev.up" "$DBK_TMP/dev.work"
if ! mount -t overlay overlay -o "lowerdir=/dev,upperdir=$DBK_TMP/dev.up,workdir=$DBK_TMP/dev.work" /dev 2>/dev/null; then
	echo "SKIP: cannot mount an overlay on /dev in the private namespace"
	exit 77
fi
# In this namespace only: our /dev/log, even if the machine has one.
rm -f /dev/log

SYSLOG_OUT="$DBK_TMP/syslog.txt"
python3 - "$SYSLOG_OUT" <<'PY' &
import os, signal, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
s.settimeout(240)  # never outlive a test that failed before it could stop us
out = open(sys.argv[1], "w")
signal.signal(signal.SIGTERM, lambda *a: (out.close(), sys.exit(0)))
open(sys.argv[1] + ".ready", "w").close()
while True:
    d = s.recv(65536)
    out.write(d.decode(errors="replace").rstrip("\n") + "\n")
    out.flush()
PY
listener=$!
trap 'kill -TERM "$listener" 2>/dev/null; dbk_cleanup' EXIT
for _ in $(seq 1 100); do [ -e "$SYSLOG_OUT.ready" ] && break; sleep 0.05; done
[ -e "$SYSLOG_OUT.ready" ] || fail "syslog listener did not start"

export DBK_LOG_LEVEL=info
dbk_start --syslog
rpc nvmf_create_transport -t TCP >/dev/null || fail "nvmf_create_transport"
rpc bdev_malloc_create 8 512 -b Malloc0 >/dev/null || fail "bdev_malloc_create"
rpc nvmf_create_subsystem nqn.2016-06.io.spdk:cnode1 -a >/dev/null || fail "nvmf_create_subsystem"
expect_rpc_error "" nvmf_subsystem_add_listener nqn.2016-06.io.spdk:cnode1 -t tcp -a 192.0.2.1 -s 4420
dbk_stop
sleep 0.2
kill -TERM "$listener"
wait "$listener"

pid='[0-9]+'
# <facility daemon (3) * 8 + priority>: 27 LOG_ERR, 29 LOG_NOTICE, 30 LOG_INFO; "ident[pid]: " as openlog(LOG_PID)
grep -Eq "^<30>.* daosblk-tgt\[$pid\]: INFO bdev \(reactor_0\) bdev\.c:[0-9]+ [a-z_]+: bdev Malloc0 registered" \
	"$SYSLOG_OUT" || { cat "$SYSLOG_OUT" >&2; fail "no LOG_INFO datagram for Malloc0"; }
grep -Eq "^<29>.* daosblk-tgt\[$pid\]: NOTICE nvmf \(reactor_0\) tgt\.c:[0-9]+ [a-z_]+: NVMe-oF transport TCP created" \
	"$SYSLOG_OUT" || { cat "$SYSLOG_OUT" >&2; fail "no LOG_NOTICE datagram for the transport"; }
grep -Eq "^<27>.* daosblk-tgt\[$pid\]: ERROR nvmf/tcp \(reactor_0\) tcp\.c:[0-9]+ [a-z_]+: nvmf_tcp: cannot listen on 192\.0\.2\.1" \
	"$SYSLOG_OUT" || { cat "$SYSLOG_OUT" >&2; fail "no LOG_ERR datagram for the listener"; }
# ... and those lines are not on stderr any more
grep -q "bdev Malloc0 registered\|transport TCP created\|cannot listen on" "$DBK_LOG" &&
	fail "--syslog still writes log lines to stderr"
echo "PASS: --syslog lines reach /dev/log with facility daemon and their priorities"
