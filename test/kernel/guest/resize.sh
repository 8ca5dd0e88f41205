#!/bin/sh
# The target grows the namespace while the host is connected; the host sees the
# new size (namespace attribute changed AEN) without reconnecting, and I/O
# beyond the old end works.
. /ki/files/common.sh
trap 'nvme disconnect-all >/dev/null 2>&1' EXIT
connect_all
old=$(size_mib "$DEV")
report oldsize "$old"
signal_host connected
step "waiting for $DEV to grow to ${WANT_MIB} MiB"
n=0
while [ "$(size_mib "$DEV")" -lt "$WANT_MIB" ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
report newsize "$(size_mib "$DEV")"
[ "$(size_mib "$DEV")" -eq "$WANT_MIB" ] || die "size is $(size_mib "$DEV") MiB, want $WANT_MIB"
dd if=/dev/urandom of=/tmp/blk bs=4096 count=4 2>/dev/null
seek=$((old * 256 + 8))
dd if=/tmp/blk of="$DEV" bs=4096 seek=$seek count=4 oflag=direct 2>/dev/null || die "write past the old end failed"
dd if="$DEV" of=/tmp/back bs=4096 skip=$seek count=4 iflag=direct 2>/dev/null || die "read past the old end failed"
cmp /tmp/blk /tmp/back || die "data past the old end differs"
nvme disconnect-all
echo "resize: OK"
