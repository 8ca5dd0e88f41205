#!/usr/bin/env bash
# Installs everything, builds daosblk (release, Release, ASan+UBSan, and the
# clang fuzz build) and runs every test: unit and integration tests under
# ASan+UBSan (leak check on), the fuzz harnesses for a bounded time each, then
# all tests -- unit, integration and the kernel-host interop tests -- on the
# release build. Run as root on Debian 12. CI runs exactly this.
#
#   DBK_SKIP_KERNEL=1   skip the qemu kernel-host tests (reported as skipped)
#   DBK_SKIP_ASAN=1     skip the sanitizer pass
#   DBK_SKIP_FUZZ=1     skip the fuzz pass (clang build of fuzz/, each harness fuzzed DBK_FUZZ_SECONDS, default 60)
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"

bash scripts/install-deps.sh
KI=${KI_DIR:-$top/../shared/kernel-initiator}
if [ "${DBK_SKIP_KERNEL:-0}" != 1 ]; then
    [ -x "$KI/setup" ] || { echo "test.sh: kernel-initiator harness not found at $KI (DBK_SKIP_KERNEL=1 to skip)" >&2; exit 1; }
    echo "test.sh: preparing the kernel-initiator guest"
    "$KI/setup" >/tmp/dbk-ki-setup.log 2>&1 || { cat /tmp/dbk-ki-setup.log >&2; exit 1; }
fi

echo "test.sh: building (release)"
bash scripts/build.sh build
# The plain Release type (-O3, no debug info) warns where RelWithDebInfo does not: build it with -Werror too.
echo "test.sh: building (Release, warnings as errors)"
bash scripts/build.sh build-Release -DCMAKE_BUILD_TYPE=Release
rc=0
if [ "${DBK_SKIP_ASAN:-0}" != 1 ]; then
    echo "test.sh: building (ASan+UBSan)"
    bash scripts/build.sh build-asan -DDBK_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
    echo "test.sh: unit + integration tests under ASan+UBSan"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir build-asan -L 'unit|integration' --output-on-failure --timeout 300 || rc=1
fi
if [ "${DBK_SKIP_FUZZ:-0}" != 1 ]; then
    if command -v clang >/dev/null 2>&1; then
        echo "test.sh: building the fuzz harnesses (clang, libFuzzer, ASan+UBSan)"
        bash scripts/build.sh build-fuzz -DDBK_FUZZ=ON -DCMAKE_C_COMPILER=clang \
            -DDBK_FUZZ_SECONDS="${DBK_FUZZ_SECONDS:-60}"
        echo "test.sh: replaying the kept fuzz inputs, then fuzzing each harness for ${DBK_FUZZ_SECONDS:-60} s"
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0:allocator_may_return_null=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            ctest --test-dir build-fuzz -L fuzz --output-on-failure --timeout 900 || rc=1
    else
        echo "test.sh: clang not installed: the fuzz pass is skipped"
    fi
fi
echo "test.sh: all tests (release build, incl. kernel-host interop)"
ctest --test-dir build --output-on-failure --timeout 900 || rc=1
exit $rc
