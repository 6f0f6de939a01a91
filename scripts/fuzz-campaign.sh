#!/usr/bin/env bash
# A recorded fuzz campaign: every cargo-fuzz target (or those named) runs RUNS inputs
# (default 10^7) without a sanitizer, with the fuzz crate's overflow checks and debug
# assertions, starting from the seeds in fuzz/corpus/TARGET; inputs that found new coverage go
# to WORK/TARGET (never into the repository). Prints one line per target: inputs run, seconds,
# inputs/s, and "ok" or the crash file. Needs a nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`).
#
#   scripts/fuzz-campaign.sh [-n RUNS] [-w WORK] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
runs=10000000
work=/tmp/juno-fuzz
while getopts "n:w:" o; do
    case $o in
    n) runs=$OPTARG ;;
    w) work=$OPTARG ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
# Sanitizers off: the targets check their own invariants, and ASan would cost 2-3x the rate.
cargo +nightly fuzz build -s none >&2
bin=target/x86_64-unknown-linux-gnu/release
printf '%-16s %12s %8s %10s  %s\n' target inputs seconds inputs/s result
for t in "${targets[@]}"; do
    mkdir -p "$work/$t" "$work/crashes"
    seeds=()
    [ -d "corpus/$t" ] && seeds=("corpus/$t")
    start=$(date +%s)
    log="$work/$t.log"
    set +e
    "$bin/$t" "$work/$t" "${seeds[@]}" -runs="$runs" -print_final_stats=1 \
        -artifact_prefix="$work/crashes/$t-" >"$log" 2>&1
    rc=$?
    set -e
    secs=$(($(date +%s) - start))
    n=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
    n=${n:-?}
    rate=$([ "$n" != "?" ] && [ "$secs" -gt 0 ] && echo $((n / secs)) || echo "?")
    if [ $rc -eq 0 ]; then
        result=ok
    else
        result="FAILED: $(grep -m1 -o "Test unit written to [^ ]*" "$log" | cut -d" " -f5 || echo "exit $rc, see $log")"
    fi
    printf '%-16s %12s %8s %10s  %s\n' "$t" "$n" "$secs" "$rate" "$result"
done
