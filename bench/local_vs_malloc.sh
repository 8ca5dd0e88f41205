#!/usr/bin/env bash
# The README's local-engine table (issue 13): the daos bdev on the embedded local engine against the malloc
# bdev, the same client, the target alone on core 0 and the client on core 1, 1 GiB bdevs prefilled with 128K
# writes, in rounds (bench/daos_side_by_side.sh with TARGETS="local malloc"), then the local engine's share
# of malloc against the goals. Run it on a quiet machine, as root:
#
#   bench/local_vs_malloc.sh                      # SPDK's spdk_nvme_perf from SPDK_DIR (/opt/spdk) if built there,
#                                                 # else daosblk-perf; RUNTIME=8 REPEAT=3
#   CLIENT=daosblk bench/local_vs_malloc.sh       # daosblk-perf even when SPDK is there
#   DBK_DFS_LOCAL_MMAP=read bench/local_vs_malloc.sh # writes by syscall, not through the mapping (see the README)
#
# Every other variable of bench/daos_side_by_side.sh applies (RESULTS_DIR keeps the raw results).
set -euo pipefail
case ${1:-} in -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;; esac
export TARGETS="local malloc"
export WORKLOADS=${WORKLOADS:-rr4k_q1 rr4k_q32 rw4k_q32 rrw4k_q32 sr128k_q16 sw128k_q16}
export RUNTIME=${RUNTIME:-8} REPEAT=${REPEAT:-3} SPDK_DIR=${SPDK_DIR:-/opt/spdk}
exec "$(dirname "${BASH_SOURCE[0]}")/daos_side_by_side.sh"
