#!/usr/bin/env bash
# Replays every kept input of one harness: fuzz/regressions/<harness>/* (inputs that once found a bug) and
# fuzz/corpus/<harness>/* (the seed corpus). Usage: fuzz/replay.sh BINARY HARNESS
# BINARY is a libFuzzer binary (clang, DBK_FUZZ=ON) or the same harness linked with the replay driver (gcc):
# both run each file named once and exit non-zero on a crash, a sanitizer report or a leak.
set -euo pipefail
bin=$1
h=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
files=()
for d in "$here/regressions/$h" "$here/corpus/$h"; do
    [ -d "$d" ] || continue
    while IFS= read -r -d '' f; do files+=("$f"); done < <(find "$d" -type f ! -name '*.md' -print0 | sort -z)
done
if [ ${#files[@]} -eq 0 ]; then
    echo "replay.sh: no inputs for $h" >&2
    exit 1
fi
echo "replay.sh: $h: ${#files[@]} inputs"
# libFuzzer runs each file given as an argument once; the replay driver does the same.
exec "$bin" "${files[@]}"
