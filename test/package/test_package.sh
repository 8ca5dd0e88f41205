#!/usr/bin/env bash
# The Debian package, end to end on this machine (root): dpkg-buildpackage -us -uc -b builds
# daosblk_<version>_<arch>.deb from a copy of the source; lintian reports no errors; the .deb has the
# programs, man pages, unit, conffile and /var/lib/daosblk; apt installs it; the service starts
# (systemctl under systemd, else the unit's ExecStart line as is, with a notify socket of our own as
# systemd's Type=notify has it: READY=1 must come); daosblk-rpc configures it (transport, a DAOS bdev
# of the local engine in /var/lib/daosblk, subsystem, namespace, listener on 127.0.0.1:free port);
# daosblk-perf --verify does I/O; save_config into /etc/daosblk/daosblk.json; stop (STOPPING=1, exit 0);
# start again from that file, I/O again, stop; dpkg --purge leaves none of the package's files, no
# /etc/daosblk and no unit or enablement link behind.
# Skips (77) when it cannot run here: not root, no dpkg-buildpackage/debhelper/lintian, daosblk
# already installed, or another daosblk-tgt on the default RPC socket.
set -uo pipefail
SRC=${DBK_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
say() { echo "== $*"; }

[ "$(id -u)" -eq 0 ] || skip "needs root (installs and purges the package)"
for t in dpkg-buildpackage dh lintian apt-get dpkg-deb python3; do
    command -v "$t" >/dev/null || skip "$t not found (scripts/install-deps.sh installs the packaging tools)"
done
dpkg-query -W -f='${Status}' daosblk 2>/dev/null | grep -q "installed" &&
    skip "a daosblk package is installed on this machine; not replacing it"
for f in /usr/bin/daosblk-tgt /etc/daosblk /lib/systemd/system/daosblk-tgt.service; do
    [ -e "$f" ] && skip "$f exists (not from a package); not overwriting it"
done
# The Linux kernel host (../shared/kernel-initiator): where it is at hand and systemd is not PID 1, the unit's
# ExecStart runs in the guest's namespace, so the kernel host attaches to the installed target and runs the
# seed workflow (mkfs.ext4, e2fsck, verify) on it. DBK_SKIP_KERNEL=1 leaves it out.
KI=${KI_DIR:-$SRC/../shared/kernel-initiator}
NETNS=${KI_NETNS:-nvtest}
kernel=0
[ "${DBK_SKIP_KERNEL:-0}" != 1 ] && [ -x "$KI/run-guest" ] && [ "$(cat /proc/1/comm)" != systemd ] && kernel=1
SOCK=/var/tmp/daosblk.sock
[ -e "$SOCK" ] && skip "$SOCK exists (another daosblk-tgt on the default RPC socket?)"

W=$(mktemp -d /tmp/dbk-pkg.XXXXXX)
installed=0 tgt="" notifier="" pool="" kernel_up=0
POOL=dbk-pkgtest-$$
NQN=nqn.2016-06.io.spdk:pkgtest
dpkg_lock() {  # dpkg/apt command, retried while another dpkg holds the lock (up to 10 min)
    local out rc i
    for i in $(seq 1 120); do
        out=$("$@" 2>&1); rc=$?
        if [ $rc -ne 0 ] && grep -qi "lock" <<<"$out"; then sleep 5; continue; fi
        echo "$out" | tail -n 5
        return $rc
    done
    return 1
}
cleanup() {
    local rc=$?
    set +e
    [ -n "$tgt" ] && kill -KILL "$tgt" 2>/dev/null && wait "$tgt" 2>/dev/null
    [ -n "$notifier" ] && kill "$notifier" 2>/dev/null
    [ -n "$pool" ] && /usr/bin/daosblk-dfs pool destroy "$pool" --force >/dev/null 2>&1
    rm -f "$SOCK"
    [ "$kernel_up" = 1 ] && "$KI/net-down" >/dev/null 2>&1
    [ $installed = 1 ] && dpkg_lock dpkg --purge daosblk >/dev/null
    if [ $rc -ne 0 ]; then
        echo "--- target log ---"; tail -n 30 "$W/tgt.log" 2>/dev/null
        echo "--- build log ---"; tail -n 30 "$W/build.log" 2>/dev/null
    fi
    rm -rf "$W"
    exit $rc
}
trap cleanup EXIT

# ---------------------------------------------------------------- build
say "dpkg-buildpackage -us -uc -b (a copy of $SRC)"
mkdir "$W/src"
tar -C "$SRC" --exclude=./.git --exclude='./build' --exclude='./build-*' --exclude='./obj-*' \
    --exclude=./debian/daosblk --exclude=./debian/.debhelper -c . | tar -C "$W/src" -x || fail "copying the source"
( cd "$W/src" && DEB_BUILD_OPTIONS="nocheck parallel=2" nice -n 15 dpkg-buildpackage -us -uc -b ) \
    >"$W/build.log" 2>&1 || fail "dpkg-buildpackage failed"
ver=$(dpkg-parsechangelog -l "$W/src/debian/changelog" -S Version)
DEB=$W/daosblk_${ver}_$(dpkg --print-architecture).deb
[ -f "$DEB" ] || fail "no $DEB (got: $(ls "$W"))"
say "built $(basename "$DEB")"

say "lintian"
lintian "$DEB" >"$W/lintian.out" 2>&1
grep -v "running with root privileges" "$W/lintian.out"
grep -q "^E: " "$W/lintian.out" && fail "lintian reports errors"

dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|; s|/$||' | grep -v '^$' >"$W/contents"
for f in /usr/bin/daosblk-tgt /usr/bin/daosblk-rpc /usr/bin/daosblk-perf /usr/bin/daosblk-dfs \
         /usr/share/man/man8/daosblk-tgt.8.gz /usr/share/man/man8/daosblk-rpc.8.gz \
         /usr/share/man/man8/daosblk-dfs.8.gz /usr/share/man/man1/daosblk-perf.1.gz \
         /lib/systemd/system/daosblk-tgt.service /etc/daosblk/daosblk.json /var/lib/daosblk; do
    grep -qx "$f" "$W/contents" || fail "$f is not in the package"
done
dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles | grep -qx /etc/daosblk/daosblk.json ||
    fail "/etc/daosblk/daosblk.json is not a conffile"
# What exists before the install: dpkg must leave exactly that after the purge.
while read -r p; do [ -e "$p" ] && echo "$p"; done <"$W/contents" >"$W/preexisting"

# ---------------------------------------------------------------- install
say "apt-get install $(basename "$DEB")"
installed=1
dpkg_lock apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "$DEB" >/dev/null ||
    fail "installing the package failed"
dpkg-query -W -f='${Status}\n' daosblk | grep -q "install ok installed" || fail "daosblk not installed"
dpkg -L daosblk >"$W/dpkg-L"
UNIT=$(grep '/daosblk-tgt\.service$' "$W/dpkg-L") || fail "dpkg -L lists no daosblk-tgt.service"
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify "$UNIT" >"$W/verify.out" 2>&1
    grep -i "daosblk" "$W/verify.out" && fail "systemd-analyze verify $UNIT complains"
    say "systemd-analyze verify $UNIT: clean"
fi

under_systemd=0
[ "$(cat /proc/1/comm)" = systemd ] && [ -d /run/systemd/system ] && under_systemd=1
EXEC=$(sed -n 's/^ExecStart=//p' "$UNIT")
[ "$EXEC" = "/usr/bin/daosblk-tgt -c /etc/daosblk/daosblk.json" ] || fail "unexpected ExecStart: $EXEC"
grep -qx "Type=notify" "$UNIT" || fail "the unit is not Type=notify"

rpc() { /usr/bin/daosblk-rpc -t 20 "$@"; }
start_service() {
    if [ $under_systemd = 1 ]; then
        say "systemctl restart daosblk-tgt"
        systemctl restart daosblk-tgt || { journalctl -u daosblk-tgt -n 30 --no-pager; fail "systemctl restart"; }
        systemctl is-active -q daosblk-tgt || fail "daosblk-tgt.service is not active"
        return
    fi
    say "systemd is not PID 1 here: running the unit's ExecStart ($EXEC), NOTIFY_SOCKET of our own"
    rm -f "$W/notify.sock" "$W/notify.log"
    python3 - "$W/notify.sock" "$W/notify.log" <<'PY' &
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
s.settimeout(900)
while True:
    data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = struct.unpack("iII", anc[0][2][:12])[0] if anc else 0
    with open(sys.argv[2], "a") as f:
        f.write("pid=%d %s\n" % (pid, data.decode().replace("\n", " ")))
    if b"STOPPING=1" in data:
        break
PY
    notifier=$!
    for _ in $(seq 1 100); do [ -S "$W/notify.sock" ] && break; sleep 0.1; done
    # shellcheck disable=SC2086  # the command line, split as systemd splits it (no quoting in it)
    if [ $kernel = 1 ]; then
        # shellcheck disable=SC2086
        ip netns exec "$NETNS" env NOTIFY_SOCKET="$W/notify.sock" $EXEC >>"$W/tgt.log" 2>&1 &
    else
        # shellcheck disable=SC2086
        NOTIFY_SOCKET=$W/notify.sock $EXEC >>"$W/tgt.log" 2>&1 &
    fi
    tgt=$!
    for _ in $(seq 1 600); do
        grep -q "READY=1" "$W/notify.log" 2>/dev/null && break
        kill -0 "$tgt" 2>/dev/null || fail "daosblk-tgt exited at start"
        sleep 0.1
    done
    grep -q "^pid=$tgt READY=1" "$W/notify.log" || fail "no READY=1 from daosblk-tgt (pid $tgt) within 60 s"
    rpc spdk_get_version >/dev/null || fail "no RPC right after READY=1"
}
stop_service() {
    if [ $under_systemd = 1 ]; then
        systemctl stop daosblk-tgt || fail "systemctl stop"
        systemctl is-active -q daosblk-tgt && fail "still active after systemctl stop"
        return
    fi
    kill -TERM "$tgt"
    local rc=0
    timeout 60 tail --pid="$tgt" -f /dev/null || fail "daosblk-tgt did not stop within 60 s of SIGTERM"
    wait "$tgt" || rc=$?
    tgt=""
    [ $rc -eq 0 ] || fail "daosblk-tgt exited $rc after SIGTERM"
    wait "$notifier" 2>/dev/null
    notifier=""
    grep -q "STOPPING=1" "$W/notify.log" || fail "no STOPPING=1 at SIGTERM"
    [ ! -e "$SOCK" ] || fail "$SOCK left behind"
    say "stopped: STOPPING=1, exit 0"
}
IN_NS=()
perf_verify() {
    "${IN_NS[@]}" /usr/bin/daosblk-perf -r "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:$PORT subnqn:$NQN" \
        -q 16 -o 4096 -w randrw -M 50 -t 2 --verify --no-progress >"$W/perf.out" 2>&1 ||
        { cat "$W/perf.out"; fail "daosblk-perf --verify against the installed target failed"; }
    grep -E "^(Total|Verify)" "$W/perf.out"
    grep -q "Verify: [1-9][0-9]* blocks checked, 0 mismatches" "$W/perf.out" || fail "nothing verified"
}

# ---------------------------------------------------------------- run, configure, I/O, persist
if [ $kernel = 1 ]; then
    exec 9>"${KT_LOCK:-/tmp/dbk-kernel-tests.lock}"   # one guest per machine (see test/kernel/lib.sh)
    flock -w 1800 9 || fail "another kernel test held the lock for too long"
    "$KI/setup" >"$W/ki-setup.log" 2>&1 || { cat "$W/ki-setup.log"; fail "kernel-initiator setup failed"; }
    "$KI/net-up" >/dev/null || fail "kernel-initiator net-up failed"
    kernel_up=1
    ip -n "$NETNS" link set lo up
    IN_NS=(ip netns exec "$NETNS")
fi
start_service
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
say "configure by RPC: DAOS bdev in /var/lib/daosblk (pool $POOL), $NQN on 127.0.0.1:$PORT"
/usr/bin/daosblk-dfs pool create "$POOL" >/dev/null || fail "daosblk-dfs pool create"
pool=$POOL
/usr/bin/daosblk-dfs cont create "$POOL" c0 --type POSIX >/dev/null || fail "daosblk-dfs cont create"
rpc nvmf_create_transport -t TCP >/dev/null || fail "nvmf_create_transport"
rpc bdev_daos_create pkg0 "$POOL" c0 64 4096 >/dev/null || fail "bdev_daos_create"
rpc nvmf_create_subsystem "$NQN" -a -s SPDK00000000000042 >/dev/null || fail "nvmf_create_subsystem"
rpc nvmf_subsystem_add_ns "$NQN" pkg0 >/dev/null || fail "nvmf_subsystem_add_ns"
rpc nvmf_subsystem_add_listener "$NQN" -t tcp -a 127.0.0.1 -s "$PORT" >/dev/null || fail "add_listener"
perf_verify
if [ $kernel = 1 ]; then
    say "the Linux kernel host: nvme connect-all to ${KI_HOST_IP:-10.77.0.1}:4420, mkfs.ext4 -F -O mmp, e2fsck, verify"
    # the guest's connect-all connects to every entry of the discovery log: only the one it can reach, meanwhile
    rpc nvmf_subsystem_remove_listener "$NQN" -t tcp -a 127.0.0.1 -s "$PORT" >/dev/null || fail "remove_listener"
    rpc nvmf_subsystem_add_listener "$NQN" -t tcp -a "${KI_HOST_IP:-10.77.0.1}" -s 4420 >/dev/null ||
        fail "add_listener for the kernel host"
    "$KI/run-guest" --quiet --timeout 400 --log "$W/guest.log" --env "NQN=$NQN" \
        --add "$SRC/test/kernel/guest/common.sh" "$SRC/test/kernel/guest/seed.sh" >"$W/run-guest.out" 2>&1 ||
        { tail -n 40 "$W/guest.log"; fail "the kernel host's seed workflow failed on the installed target"; }
    grep -aq "seed: OK" "$W/guest.log" || { tail -n 40 "$W/guest.log"; fail "the guest did not report success"; }
    say "kernel host: seed: OK"
    rpc nvmf_subsystem_add_listener "$NQN" -t tcp -a 127.0.0.1 -s "$PORT" >/dev/null || fail "add_listener again"
else
    say "kernel host left out (DBK_SKIP_KERNEL=1, no ../shared/kernel-initiator, or under systemd)"
fi
rpc save_config >/etc/daosblk/daosblk.json.new && mv /etc/daosblk/daosblk.json.new /etc/daosblk/daosblk.json ||
    fail "save_config into /etc/daosblk/daosblk.json"
stop_service

say "start again from the saved /etc/daosblk/daosblk.json"
start_service
rpc nvmf_get_subsystems | grep -q "\"$NQN\"" || fail "the saved subsystem is not back after the restart"
perf_verify
stop_service

# ---------------------------------------------------------------- purge
/usr/bin/daosblk-dfs pool destroy "$POOL" --force >/dev/null || fail "daosblk-dfs pool destroy"
pool=""
say "dpkg --purge daosblk"
dpkg_lock dpkg --purge daosblk || fail "dpkg --purge daosblk failed"
installed=0
dpkg-query -W -f='${Status}' daosblk 2>/dev/null | grep -q "installed" && fail "still installed after the purge"
left=()
while read -r p; do
    [ "$p" = /. ] && continue
    [ -e "$p" ] || [ -L "$p" ] || continue
    grep -qx "$p" "$W/preexisting" || left+=("$p")
done <"$W/dpkg-L"
for p in /etc/daosblk /var/lib/daosblk "$UNIT" /etc/systemd/system/multi-user.target.wants/daosblk-tgt.service \
         /var/lib/systemd/deb-systemd-helper-enabled/daosblk-tgt.service.dsh-also; do
    { [ -e "$p" ] || [ -L "$p" ]; } && ! grep -qx "$p" "$W/preexisting" && left+=("$p")
done
[ ${#left[@]} -eq 0 ] || fail "left behind after the purge: ${left[*]}"
say "purged: nothing of the package left"
echo PASS
