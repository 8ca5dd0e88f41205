#!/usr/bin/env bash
# guest_kernel.sh PKG CACHE [MODULE...]: prepare a kernel-initiator guest that boots the Debian kernel
# package PKG (e.g. linux-image-6.12.118+deb12-amd64 from bookworm-backports) from the cache dir CACHE,
# so that "KI_CACHE=CACHE run-guest" boots it. The default guest (../shared/kernel-initiator's setup,
# Debian 12's 6.1 kernel, default cache) is prepared if needed and left as it is.
#
# The harness's setup handles only kernels like the default one (its modules uncompressed, no '+' in the
# version), so this script does it for newer ones and leaves the harness untouched:
#   1. runs the harness's setup for the default guest (its base initramfs holds the userland:
#      busybox, nvme-cli, e2fsprogs, /init);
#   2. downloads PKG with apt-get download (apt-get update first when apt does not know it) and
#      unpacks it with dpkg-deb -x into CACHE/kernel/KVER;
#   3. unpacks the base initramfs, replaces its lib/modules with PKG's modules: the ones the base image
#      ships (same names) plus MODULE..., with their dependency closure (modprobe --show-depends),
#      decompressed (.ko.xz/.ko.zst), depmod'ed; /etc/ki/modules.load keeps the base image's boot
#      modules in dependency order (plus MODULE...); repacks it as CACHE/initramfs/guest-KVER.cpio.gz;
#   4. writes CACHE/current.env (KI_KVER, KI_KERNEL, KI_INITRD), as the harness's setup does.
# Cached: the image is rebuilt only when PKG's version, the base image, MODULE... or this script change.
# Environment: KI_DIR (the harness, default ../shared/kernel-initiator), KI_BASE_CACHE (the default
# guest's cache, default ${XDG_CACHE_HOME:-$HOME/.cache}/kernel-initiator). Needs root, apt-get,
# dpkg-deb, cpio, gzip, xz/zstd, kmod (modprobe, depmod).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 PKG CACHE [MODULE...]" >&2; exit 2; }
PKG=$1 CACHE=$2; shift 2
EXTRA=("$@")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KI=${KI_DIR:-$HERE/../../../shared/kernel-initiator}
BASE_CACHE=${KI_BASE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kernel-initiator}
export PATH="$PATH:/usr/sbin:/sbin"
log() { printf '[guest-kernel] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"
case "$PKG" in linux-image-*) ;; *) die "PKG must be a linux-image-* package, not '$PKG'" ;; esac
KVER=${PKG#linux-image-}

# --- 1. the default guest (its initramfs is our base) -------------------------------------------------
KI_CACHE=$BASE_CACHE "$KI/setup" >&2 || die "the harness's setup failed"
BASE_INITRD=$(. "$BASE_CACHE/current.env"; echo "$KI_INITRD")
[ -r "$BASE_INITRD" ] || die "no base initramfs at $BASE_INITRD"

# --- 2. the kernel package ----------------------------------------------------------------------------
APT_OPTS=(-o DPkg::Lock::Timeout=900 -o APT::Sandbox::User=root -q)
candidate() { apt-cache policy "$PKG" 2>/dev/null | awk '/Candidate:/ { print $2; exit }'; }
kdir=$CACHE/kernel/$KVER
mkdir -p "$CACHE/kernel" "$CACHE/initramfs"
if [ ! -e "$kdir/.complete" ]; then
    ver=$(candidate)
    if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then apt-get "${APT_OPTS[@]}" update >/dev/null; ver=$(candidate); fi
    [ -n "$ver" ] && [ "$ver" != "(none)" ] || die "apt has no candidate for $PKG (is bookworm-backports in the apt sources?)"
    dl=$(mktemp -d "$CACHE/dl.XXXXXX")
    trap 'rm -rf "$dl"' EXIT
    log "downloading $PKG $ver"
    (cd "$dl" && apt-get "${APT_OPTS[@]}" download "$PKG" >&2) || die "apt-get download $PKG failed"
    deb=$(find "$dl" -maxdepth 1 -name "${PKG}_*.deb" | head -n1)
    [ -n "$deb" ] || die "apt-get download $PKG left no .deb"
    log "unpacking $(basename "$deb") ($(du -h "$deb" | cut -f1))"
    rm -rf "$kdir.tmp" "$kdir"
    dpkg-deb -x "$deb" "$kdir.tmp"
    depmod -b "$kdir.tmp" "$KVER"                 # the .deb ships no modules.dep
    dpkg-deb -f "$deb" Version >"$kdir.tmp/.pkg-version"
    mv "$kdir.tmp" "$kdir"
    touch "$kdir/.complete"
    rm -rf "$dl"; trap - EXIT
fi
vmlinuz=$kdir/boot/vmlinuz-$KVER
[ -r "$vmlinuz" ] || die "missing $vmlinuz"
moddir=$kdir/lib/modules/$KVER
[ -d "$moddir" ] || die "missing $moddir"

# --- 3. the initramfs ---------------------------------------------------------------------------------
initrd=$CACHE/initramfs/guest-$KVER.cpio.gz
fingerprint=$( { echo "$KVER $(cat "$kdir/.pkg-version")"; echo "extra ${EXTRA[*]}"
                 sha256sum "$BASE_INITRD" "${BASH_SOURCE[0]}"; } | sha256sum | cut -d' ' -f1)
if [ -s "$initrd" ] && [ "$(cat "$initrd.fingerprint" 2>/dev/null)" = "$fingerprint" ]; then
    log "initramfs up to date: $initrd"
else
    log "building $initrd from $BASE_INITRD"
    stage=$(mktemp -d "$CACHE/initramfs/stage.XXXXXX")
    trap 'rm -rf "$stage"' EXIT
    # The base image is gzip'd cpio padded with zeros (gzip ignores them).
    gzip -dc "$BASE_INITRD" | (cd "$stage" && cpio -idm --quiet --no-absolute-filenames)
    [ -x "$stage/init" ] && [ -r "$stage/etc/ki/modules.load" ] || die "$BASE_INITRD has no /init or /etc/ki/modules.load"
    name_of() { local b=${1##*/}; echo "${b%.ko*}"; }   # kernel/fs/ext4/ext4.ko -> ext4
    boot_names=() ship_names=()
    while read -r f; do [ -n "$f" ] && boot_names+=("$(name_of "$f")"); done <"$stage/etc/ki/modules.load"
    boot_names+=("${EXTRA[@]}")
    while read -r f; do ship_names+=("$(name_of "$f")"); done < <(find "$stage/lib/modules" -name '*.ko*')
    # deps NAME...: the .ko files of NAME... and their dependencies (soft ones too), dependencies first,
    # relative to moddir; built-in and unknown names print nothing.
    deps() {
        local m
        for m in "$@"; do
            modprobe -d "$kdir" -S "$KVER" --show-depends "$m" 2>/dev/null || true
        done | awk -v pre="$moddir/" '$1 == "insmod" && index($2, pre) == 1 { print substr($2, length(pre) + 1) }' |
            awk '!seen[$0]++'
    }
    mapfile -t boot < <(deps "${boot_names[@]}")
    mapfile -t ship < <(deps "${boot_names[@]}" "${ship_names[@]}")
    [ "${#boot[@]}" -gt 0 ] || die "none of the base image's modules are in $KVER"
    rm -rf "$stage/lib/modules/"*
    out=$stage/lib/modules/$KVER
    for f in "${ship[@]}"; do
        mkdir -p "$out/$(dirname "$f")"
        case "$f" in
        *.ko.xz) xz -dc "$moddir/$f" >"$out/${f%.xz}" ;;
        *.ko.zst) zstd -qdc "$moddir/$f" >"$out/${f%.zst}" ;;
        *.ko.gz) gzip -dc "$moddir/$f" >"$out/${f%.gz}" ;;
        *) cp "$moddir/$f" "$out/$f" ;;
        esac
    done
    for f in modules.order modules.builtin modules.builtin.modinfo; do
        [ -e "$moddir/$f" ] && sed -E 's/\.ko\.(xz|zst|gz)$/.ko/' "$moddir/$f" >"$out/$f"
    done
    depmod -b "$stage" "$KVER"
    printf '%s\n' "${boot[@]}" | sed -E 's/\.ko\.(xz|zst|gz)$/.ko/' >"$stage/etc/ki/modules.load"
    (cd "$stage" && find . -mindepth 1 -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner=0:0 --quiet) |
        gzip -6 >"$initrd.tmp"
    size=$(stat -c %s "$initrd.tmp")              # pad to 4 bytes: run-guest appends a plain cpio
    truncate -s $(( (size + 3) / 4 * 4 )) "$initrd.tmp"
    mv "$initrd.tmp" "$initrd"
    echo "$fingerprint" >"$initrd.fingerprint"
    rm -rf "$stage"; trap - EXIT
    log "initramfs: $initrd ($(du -h "$initrd" | cut -f1), ${#ship[@]} modules, ${#boot[@]} loaded at boot)"
fi

# --- 4. tell run-guest what to boot -------------------------------------------------------------------
printf "KI_KVER='%s'\nKI_KERNEL='%s'\nKI_INITRD='%s'\n" "$KVER" "$vmlinuz" "$initrd" >"$CACHE/current.env.tmp"
mv "$CACHE/current.env.tmp" "$CACHE/current.env"
log "ready: $KVER in $CACHE"
