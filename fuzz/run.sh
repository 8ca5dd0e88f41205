#!/usr/bin/env bash
# Runs the libFuzzer harnesses, each for SECONDS (default 60), one after the other.
#   fuzz/run.sh [SECONDS] [HARNESS...]        harnesses: rpc config perf_host nvmf_cmd tcp_rx auth psk tls (default: all)
# The fuzz build is $DBK_FUZZ_BUILD (default build-fuzz/ in the checkout); it is configured and built first
# if missing (clang, -DDBK_FUZZ=ON). New inputs go to $DBK_FUZZ_WORK/<harness> (default
# <build>/fuzz-work); the seed corpus (fuzz/corpus/<harness>) and the regression inputs
# (fuzz/regressions/<harness>) are read, never written. A crash, sanitizer report, leak, timeout or
# out-of-memory leaves its input in <work>/artifacts/ and makes the script exit non-zero; keep it as
# fuzz/regressions/<harness>/<name> with the fix. Extra libFuzzer flags: DBK_FUZZ_FLAGS="-jobs=2 ...".
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
secs=60
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
    secs=$1
    shift
fi
all=(rpc config perf_host nvmf_cmd tcp_rx auth psk tls)
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=("${all[@]}")
build=${DBK_FUZZ_BUILD:-$top/build-fuzz}
work=${DBK_FUZZ_WORK:-$build/fuzz-work}

if ! command -v clang >/dev/null 2>&1; then
    echo "run.sh: clang not found (apt-get install clang libclang-rt-dev); the fuzzers need it" >&2
    exit 77
fi
# DBK_FUZZ_NO_BUILD=1: use the binaries in $build/fuzz as they are (ctest, campaign.sh).
if [ -z "${DBK_FUZZ_NO_BUILD:-}" ]; then
    if [ ! -f "$build/CMakeCache.txt" ]; then
        echo "run.sh: configuring the fuzz build in $build"
        cmake -S "$top" -B "$build" -G Ninja -DDBK_FUZZ=ON -DCMAKE_C_COMPILER=clang \
            -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    fi
    # shellcheck disable=SC2046
    cmake --build "$build" -j "$(nproc)" --target $(printf 'fuzz_%s ' "${harnesses[@]}") >/dev/null
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
rc=0
for h in "${harnesses[@]}"; do
    bin=$build/fuzz/fuzz_$h
    if [ ! -x "$bin" ]; then
        echo "run.sh: $bin not built" >&2
        rc=1
        continue
    fi
    mkdir -p "$work/$h" "$work/artifacts"
    dirs=("$work/$h")
    for d in "$here/corpus/$h" "$here/regressions/$h"; do
        [ -d "$d" ] && dirs+=("$d")
    done
    case $h in
    rpc | config) dict=(-dict="$here/dict/json.dict") ;;
    auth | psk | tls) dict=(-dict="$here/dict/auth.dict") ;;
    *) dict=(-dict="$here/dict/nvme.dict") ;;
    esac
    echo "run.sh: $h for ${secs}s"
    set +e
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$secs" -timeout=60 -rss_limit_mb=2560 -max_len=65536 -detect_leaks=1 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/$h-" "${dict[@]}" ${DBK_FUZZ_FLAGS:-} \
        "${dirs[@]}" >"$work/$h.log" 2>&1
    st=$?
    set -e
    grep -E '^#[0-9]+.*DONE|^stat::|^(==[0-9]+==)?ERROR|^SUMMARY' "$work/$h.log" || true
    if [ $st != 0 ]; then
        echo "run.sh: $h FAILED (exit $st; log $work/$h.log, input in $work/artifacts/)" >&2
        tail -n 60 "$work/$h.log" >&2
        rc=1
    fi
done
exit $rc
