#!/usr/bin/env bash
# How fast juno-analyze reads a Juno archive, against `zstd -dc > /dev/null` on the same file,
# in one run (issue 14: "Juno archives read at >= 50% of zstd -dc throughput").
#
#   scripts/bench/archive-read.sh [CAPTURE] [RUNS]
#
# CAPTURE (default bench-data/http-small.pcap) is written into a Juno archive first, framed
# and compressed as juno-record does (archive/examples/pcap-to-archive.rs); a directory is
# taken as juno-record's archives themselves (e.g. KEEP=DIR record-vs-tcpdump.sh's). Then, alternated,
# RUNS times each (medians): zstd -dc; the analyzer's reading stage alone (decompression,
# pcapng blocks, the time-ordered merge into batches: analyzer/examples/read-only.rs) on 2
# threads and on one core; and the whole `logs --format zeek` on the archive. Throughput is
# the archive's decompressed bytes (the pcapng stream) per second of wall time.
set -euo pipefail
cd "$(dirname "$0")/../.."
cap=${1:-bench-data/http-small.pcap}
runs=${2:-5}
cargo build --release -q -p juno-analyze --example read-only
cargo build --release -q -p juno-archive --example pcap-to-archive
cargo build --release -q -p juno-analyze
out=$(mktemp -d /tmp/juno-archive-read.XXXXXX)
trap 'rm -rf "$out"' EXIT
if [ -d "$cap" ]; then
    # A directory of juno-record's archives (record-vs-tcpdump.sh with KEEP=DIR), read whole.
    arc=$(find "$cap" -name 'juno-*.pcapng.zst' | sort | tr '\n' ' ')
else
    arc=$out/capture.pcapng.zst
    target/release/examples/pcap-to-archive "$cap" "$arc"
fi
# shellcheck disable=SC2086
plain=$(zstd -dcq $arc | wc -c)
# shellcheck disable=SC2086
echo "archive: $(cat $arc | wc -c) bytes, $plain bytes decompressed (from $cap)" >&2

# One timed run: prints wall seconds and CPU seconds.
timed() {
    /usr/bin/time -o "$out/time" -f "%e %U %S" "$@" >/dev/null 2>"$out/stderr" || { cat "$out/stderr" >&2; return 1; }
    awk '{printf "%s %.2f\n", $1, $2 + $3}' "$out/time"
}
names=(zstd read2 read1 logs2)
declare -A cmd=(
    [zstd]="zstd -dcq $arc"
    [read2]="target/release/examples/read-only $arc"
    [read1]="taskset -c 0 target/release/examples/read-only $arc"
    [logs2]="target/release/juno-analyze --progress never -q logs --format zeek --overwrite --out-dir $out/z $arc"
)
# shellcheck disable=SC2086
cat $arc >/dev/null
for i in $(seq "$runs"); do
    for n in "${names[@]}"; do
        # shellcheck disable=SC2086
        timed ${cmd[$n]} >>"$out/$n"
    done
done
median() { sort -n "$1" | awk -v n="$runs" 'NR == int((n + 1) / 2)'; }
read -r z_s _ < <(median "$out/zstd")
echo "| what | wall s (median of $runs) | CPU s | MB/s decompressed | vs zstd -dc |"
echo "|---|---|---|---|---|"
for n in "${names[@]}"; do
    read -r s c < <(median "$out/$n")
    label=$(case $n in
        zstd) echo "zstd -dc > /dev/null (1 thread)" ;;
        read2) echo "juno-analyze reading stage, 2 threads" ;;
        read1) echo "juno-analyze reading stage, 1 core (taskset -c 0)" ;;
        logs2) echo "juno-analyze logs --format zeek, 2 threads (whole analysis)" ;;
    esac)
    python3 -c "
s, c, z, b = $s, $c, $z_s, $plain
print(f'| $label | {s:.2f} | {c:.2f} | {b/1e6/s:,.0f} | {z/s:.2f} |')"
done
