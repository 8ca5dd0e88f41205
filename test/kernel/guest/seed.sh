#!/bin/sh
# The seed workflow from the host's side: discover, connect (connect-all, or
# by NQN with header+data digests when MODE=digest), mkfs.ext4 -F -O mmp,
# mount, write, e2fsck, remount, verify, disconnect-all.
. /ki/files/common.sh
trap 'nvme disconnect-all >/dev/null 2>&1' EXIT
if [ "${MODE:-connect-all}" = digest ]; then connect_digest; else connect_all; fi
signal_host connected
sleep 2   # the host inspects the live queues meanwhile
nvme list
echo "using $DEV ($(size_mib "$DEV") MiB)"
ns_ids "$DEV"
ext4_write "$DEV"
ext4_verify "$DEV" "$SUM"
step "nvme disconnect-all"
nvme disconnect-all || die "disconnect-all failed"
[ "$(ns_devs | wc -l)" -eq 0 ] || die "namespaces left after disconnect-all"
echo "seed: OK"
