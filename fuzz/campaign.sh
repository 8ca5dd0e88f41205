#!/usr/bin/env bash
# A long fuzzing campaign: the harnesses in turns of TURN seconds (default 600), in LANES parallel lanes
# (default 2), for HOURS hours (default 1; fractions too: 0.5), at the lowest CPU priority; corpora grow in $DBK_FUZZ_WORK
# (default <fuzz build>/fuzz-work) across turns. Each turn's libFuzzer figures (executions, cov:, ft:) are
# appended to <work>/campaign.tsv; a finding stops that lane (its input is in <work>/artifacts/).
# While <work>/pause exists, no new turn starts (a benchmark can have the CPU; running turns finish).
#   fuzz/campaign.sh [HOURS] [HARNESS...]
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
hours=${1:-1}
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(nvmf_cmd tcp_rx perf_host rpc config auth psk tls)
turn=${TURN:-600}
lanes=${LANES:-2}
build=${DBK_FUZZ_BUILD:-$here/../build-fuzz}
work=${DBK_FUZZ_WORK:-$build/fuzz-work}
mkdir -p "$work"
end=$(( $(date +%s) + $(awk -v h="$hours" 'BEGIN {printf "%d", h * 3600}') ))
tsv=$work/campaign.tsv
[ -f "$tsv" ] || printf 'time\tharness\tseconds\texecs\tcov\tft\tcorpus\tstatus\n' >"$tsv"
lane() {
    local i=$1 n=0
    while [ "$(date +%s)" -lt $end ]; do
        while [ -e "$work/pause" ] && [ "$(date +%s)" -lt $end ]; do sleep 5; done
        local h=${harnesses[$(( (n * lanes + i) % ${#harnesses[@]} ))]}
        local left=$(( end - $(date +%s) ))
        local t=$(( left < turn ? left : turn ))
        [ $t -ge 10 ] || break
        DBK_FUZZ_WORK=$work/lane$i DBK_FUZZ_NO_BUILD=1 DBK_FUZZ_BUILD=$build nice -n 19 "$here/run.sh" $t "$h" \
            >"$work/lane$i.out" 2>&1
        local st=$?
        local log=$work/lane$i/$h.log
        local done_line execs cov ft corp
        done_line=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
        execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
        cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$done_line")
        ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$done_line")
        corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$done_line")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$h" "$t" "${execs:-0}" "${cov:-}" \
            "${ft:-}" "${corp:-}" "$st" >>"$tsv"
        # Corpora are per harness, shared by the lanes' turns.
        mkdir -p "$work/corpus/$h"
        cp -n "$work/lane$i/$h"/* "$work/corpus/$h/" 2>/dev/null
        rm -rf "${work:?}/lane$i/$h"
        cp -r "$work/corpus/$h" "$work/lane$i/$h"
        [ $st = 0 ] || { echo "campaign: $h failed in lane $i (see $work/lane$i.out)"; break; }
        n=$((n + 1))
    done
}
for i in $(seq 0 $((lanes - 1))); do lane "$i" & done
wait
awk -F'\t' 'NR > 1 {e[$2] += $4; t += $4} END {for (h in e) printf "%-10s %14d executions\n", h, e[h]; printf "%-10s %14d executions\n", "total", t}' "$tsv"
