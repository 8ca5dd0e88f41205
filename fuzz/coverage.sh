#!/usr/bin/env bash
# Line coverage of the parsers reached by a corpus: builds the harnesses with clang's source-based coverage
# (replay driver, no libFuzzer), replays CORPUS_DIR/<harness> (default: the seed corpora and regression
# inputs in the tree) and prints llvm-cov's per-file line coverage for the files each harness is about.
#   fuzz/coverage.sh [CORPUS_DIR]          e.g. fuzz/coverage.sh build-fuzz/fuzz-work/corpus
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
corpus=${1:-}
build=${DBK_COV_BUILD:-$top/build-cov}
ver=$(clang --version | sed -nE 's/.*clang version ([0-9]+).*/\1/p' | head -n 1)
prof=$(command -v llvm-profdata || command -v "llvm-profdata-$ver")
cov=$(command -v llvm-cov || command -v "llvm-cov-$ver")
cmake -S "$top" -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DDBK_COVERAGE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j "$(nproc)" --target fuzz_rpc fuzz_config fuzz_perf_host fuzz_nvmf_cmd fuzz_tcp_rx fuzz_auth fuzz_psk \
    fuzz_tls >/dev/null
declare -A files=(
    [rpc]="rpc/server.c rpc/json_decode.c rpc/rpc_framework.c rpc/rpc_bdev.c rpc/rpc_nvmf.c"
    [config]="app/json_config.c rpc/json_decode.c"
    [perf_host]="tools/perf/nvme_host.c"
    [nvmf_cmd]="nvmf/ctrlr.c nvmf/ctrlr_pages.c nvmf/io.c nvmf/subsystem.c"
    [tcp_rx]="nvmf/tcp/rx.c nvmf/tcp/req.c nvmf/tcp/tx.c nvmf/tcp/tcp.c"
    [auth]="nvmf/auth.c"
    [psk]="nvmf/tcp/psk.c nvmf/auth.c"
    [tls]="nvmf/tcp/sock_tls.c nvmf/tcp/psk.c nvmf/tls.c"
)
for h in rpc config perf_host nvmf_cmd tcp_rx auth psk tls; do
    dirs=()
    if [ -n "$corpus" ]; then
        [ -d "$corpus/$h" ] && dirs+=("$corpus/$h")
    else
        for d in "$here/corpus/$h" "$here/regressions/$h"; do [ -d "$d" ] && dirs+=("$d"); done
    fi
    [ ${#dirs[@]} -gt 0 ] || continue
    rm -f "$build"/fuzz/"$h"-*.profraw
    # One profile per process; the replay driver runs every input in one process.
    LLVM_PROFILE_FILE="$build/fuzz/$h-%p.profraw" "$build/fuzz/fuzz_$h" "${dirs[@]}" >/dev/null 2>&1 || true
    "$prof" merge -sparse "$build"/fuzz/"$h"-*.profraw -o "$build/fuzz/$h.profdata"
    echo "== $h ($(find "${dirs[@]}" -type f | wc -l) inputs)"
    srcs=()
    for f in ${files[$h]}; do srcs+=("$top/$f"); done
    "$cov" report "$build/fuzz/fuzz_$h" -instr-profile="$build/fuzz/$h.profdata" "${srcs[@]}" |
        awk 'BEGIN {printf "%-28s %8s %8s %8s\n", "file", "lines", "missed", "cover"}
             /\.c / || /^TOTAL/ {printf "%-28s %8s %8s %8s\n", $1, $8, $9, $10}' | sed "s|$top/||"
done
