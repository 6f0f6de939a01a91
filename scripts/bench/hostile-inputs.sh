#!/usr/bin/env bash
# Peak memory and time of juno-analyze on hostile-but-ordinary inputs (issue 16), at the
# default memory budget: the "Hostile inputs" table of docs/benchmarks.md. Not a throughput
# benchmark: each command runs once, under /usr/bin/time (peak RSS is the kernel's maximum
# resident set of the process), with its run summary (what the budget cut) beside it.
#
#   scripts/bench/hostile-inputs.sh [DIR] [THREADS_FOR_FRAMES]
#
# DIR (default bench-data/hostile) receives the inputs, written by the generators of
# analyzer/tests/common/hostile.rs (the ignored test `write_hostile_inputs`): about 250 MB.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-bench-data/hostile}
threads=${2:-32}
if [ ! -e "$dir/files-1500" ] || [ ! -e "$dir/tiny-frames-400k.pcapng.zst" ]; then
    JUNO_HOSTILE_DIR=$PWD/$dir cargo test --release -q -p juno-analyze --no-default-features \
        --test hostile -- --ignored write_hostile_inputs >&2
fi
# After the generator: its build (without default features) leaves a juno-analyze binary
# without `export` in the same target directory.
cargo build --release -q -p juno-analyze
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/juno-analyze
out=$(mktemp -d /tmp/juno-hostile.XXXXXX)
trap 'rm -rf "$out"' EXIT

# Runs a command once: prints "seconds peak_kb status".
measure() {
    rm -rf "$out/x" "$out/summary.json"
    local status=0
    /usr/bin/time -o "$out/time" -f "%e %M" "$@" >/dev/null 2>"$out/stderr" || status=$?
    # /usr/bin/time exits with the command's status; its output still has the measurement.
    echo "$(tail -1 "$out/time") $status"
}

cuts() {
    [ -s "$out/summary.json" ] || { echo "- (no summary: $(head -c 200 "$out/stderr" | tr '\n|' '  '))"; return; }
    python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
c = {k: v for k, v in s["memory_budget_cuts"].items() if v}
print(", ".join(f"{k} {v:,}" for k, v in c.items()) or "none")' "$out/summary.json"
}

size() { du -sb "$1" | awk '{ printf "%.0f", $1 / 1e6 }'; }

echo "| input (size) | command | wall s | peak RSS MiB | exit | cut by the budget |"
echo "|---|---|---|---|---|---|"
run() {
    local name=$1 input=$2; shift 2
    read -r s kb status < <(measure "$bin" --progress never --summary "$out/summary.json" "$@")
    printf '| %s (%s MB) | %s | %s | %d | %s | %s |\n' "$name" "$(size "$input")" \
        "$(echo "$*" | sed "s|$out/x|DIR|; s|$PWD/||g; s|$dir/||g")" "$s" $((kb / 1024)) "$status" "$(cuts)"
}
f=$dir/syn-1m.pcap
run "1M SYNs within 1 s" "$f" logs "$f" --out-dir "$out/x"
run "1M SYNs within 1 s" "$f" export "$f" --out-dir "$out/x"
f=$dir/dns-100k-clients.pcap
run "100k DNS clients of one server" "$f" graph "$f" --format json
run "100k DNS clients of one server" "$f" export "$f" --out-dir "$out/x"
run "100k DNS clients of one server" "$f" report "$f" -o "$out/r.html"
run "100k DNS clients of one server" "$f" graph "$f" --format svg
f=$dir/http-300k-unanswered.pcap
run "300k HTTP connections left unanswered" "$f" export "$f" --out-dir "$out/x"
f=$dir/pg-1m-pipelined.pcap
run "1M pipelined PostgreSQL queries, no reply" "$f" logs "$f" --out-dir "$out/x"
f=$dir/redis-2m-pipelined.pcap
run "2M pipelined Redis commands, no reply" "$f" logs "$f" --out-dir "$out/x"
f=$dir/frames-24x60m.pcapng.zst
run "archive of 24 frames of 60 MiB" "$f" --threads "$threads" logs "$f" --out-dir "$out/x"
f=$dir/tiny-frames-400k.pcapng.zst
run "400k zstd frames of one packet each" "$f" logs "$f" --out-dir "$out/x"
f=$dir/files-1500
run "1,500 small pcaps in one directory" "$f" logs "$f" --out-dir "$out/x"
