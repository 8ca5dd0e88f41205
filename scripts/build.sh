#!/usr/bin/env bash
# Builds daosblk. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
#   scripts/build.sh                      -> build/       (RelWithDebInfo)
#   scripts/build.sh build-asan -DDBK_SANITIZE=ON
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-build}
shift || true
case "$dir" in /*) ;; *) dir="$top/$dir" ;; esac
cmake -S "$top" -B "$dir" -G Ninja -DDBK_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j "$(nproc)"
