#!/bin/sh
# A namespace added on the target while the host is connected appears on the
# host (namespace attribute changed AEN -> rescan), and takes I/O.
. /ki/files/common.sh
trap 'nvme disconnect-all >/dev/null 2>&1' EXIT
connect_all
[ "$(ns_devs | wc -l)" -eq 1 ] || die "expected exactly one namespace at first"
signal_host connected
step "waiting for the second namespace"
wait_ns 2 600 || die "second namespace did not appear within 60 s"
NEW=$(ns_devs | sed -n 2p)
echo "new namespace: $NEW ($(size_mib "$NEW") MiB)"
report newsize "$(size_mib "$NEW")"
dd if=/dev/urandom of=/tmp/blk bs=4096 count=16 2>/dev/null
dd if=/tmp/blk of="$NEW" bs=4096 count=16 oflag=direct 2>/dev/null || die "write to new namespace failed"
dd if="$NEW" of=/tmp/back bs=4096 count=16 iflag=direct 2>/dev/null || die "read from new namespace failed"
cmp /tmp/blk /tmp/back || die "new namespace returned different data"
nvme disconnect-all
echo "hotadd: OK"
