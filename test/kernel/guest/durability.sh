#!/bin/sh
# PHASE=write: connect, mkfs + write + sync + umount (the host flushes), report
# the data checksum and the namespace identity, disconnect.
# PHASE=verify (SUM, NGUID, UUID given): connect to the restarted target, check
# the identity is unchanged, fsck and verify the data.
. /ki/files/common.sh
trap 'nvme disconnect-all >/dev/null 2>&1' EXIT
connect_all
ns_ids "$DEV"
if [ "$PHASE" = write ]; then
    ext4_write "$DEV"
    nvme flush "$DEV" -n 1 || die "nvme flush failed"
else
    [ "$nguid" = "$NGUID" ] || die "NGUID changed across the restart: $nguid != $NGUID"
    [ "$uuid" = "$UUID" ] || die "UUID changed across the restart: $uuid != $UUID"
    ext4_verify "$DEV" "$SUM"
fi
nvme disconnect-all
echo "durability-$PHASE: OK"
