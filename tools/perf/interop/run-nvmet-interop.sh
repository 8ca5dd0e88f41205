#!/usr/bin/env bash
# Interop check of daosblk-perf with the Linux kernel's nvmet-tcp target, inside the qemu guest of
# ../shared/kernel-initiator (as root; TCG, about 40 s). Builds a static daosblk-perf (table CRC32C, no
# isa-l) in $BUILD_STATIC (default ./build-perf-static) and runs nvmet-guest.sh in the guest.
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
KI=${KI_DIR:-$SRC/../shared/kernel-initiator}
BUILD_STATIC=${BUILD_STATIC:-$SRC/build-perf-static}
[[ $(id -u) == 0 ]] || { echo "run as root (qemu + network namespace)" >&2; exit 1; }
[[ -x $KI/run-guest ]] || { echo "kernel-initiator harness not found at $KI (set KI_DIR)" >&2; exit 1; }
cmake -S "$SRC" -B "$BUILD_STATIC" -G Ninja -DDBK_PERF_STATIC=ON >/dev/null
cmake --build "$BUILD_STATIC" --target daosblk-perf
STAGE=$(mktemp -d /tmp/perf-interop.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
cp "$BUILD_STATIC/tools/perf/daosblk-perf" "$STAGE/daosblk-perf"
cp "$(dirname "${BASH_SOURCE[0]}")/nvmet-guest.sh" "$STAGE/nvmet-guest.sh"
"$KI/run-guest" --smp 2 --timeout "${TIMEOUT:-600}" --add "$STAGE/daosblk-perf" "$STAGE/nvmet-guest.sh"
