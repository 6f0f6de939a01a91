#!/usr/bin/env bash
# Throughput and peak memory of `juno-analyze export` (Parquet, Arrow IPC, CSV) next to JSON
# lines and to tshark writing the same kind of table (one CSV row per Redis message with its
# fields), in one run, on this machine; then whether export memory grows with the capture:
# the same export on the second half of each capture and on all of it.
#
#   scripts/bench/export-vs-tshark.sh [ROWS_CAPTURE] [LARGE_CAPTURE] [RUNS]
#
# ROWS_CAPTURE defaults to bench-data/protocols/redis.pcap (about a million exchanges; made
# by make-protocol-captures.sh), LARGE_CAPTURE to bench-data/http-wrk.pcap (1.15 GB; made by
# make-http-capture.sh). Captures are read once first (page cache).
set -euo pipefail
cd "$(dirname "$0")/../.."
cap=${1:-bench-data/protocols/redis.pcap}
large=${2:-bench-data/http-wrk.pcap}
runs=${3:-3}
[ -e "$cap" ] || scripts/bench/make-protocol-captures.sh "$(dirname "$cap")" 20 redis
[ -e "$large" ] || scripts/bench/make-http-capture.sh "$large" 1100
cargo build --release -q -p juno-analyze
bin=target/release/juno-analyze
out=$(mktemp -d /tmp/juno-bench-out.XXXXXX)
trap 'rm -rf "$out"' EXIT

# Median of RUNS measurements: prints "seconds peak_kb".
measure() {
    local i
    for i in $(seq "$runs"); do
        rm -rf "$out/x"
        /usr/bin/time -o "$out/time" -f "%e %M" "$@" >/dev/null 2>"$out/stderr" || { cat "$out/stderr" >&2; return 1; }
        cat "$out/time"
    done | sort -n | awk -v n="$runs" 'NR == int((n + 1) / 2)'
}

cat "$cap" "$large" >/dev/null
rows=$("$bin" --progress never logs "$cap" | wc -l)
mb=$(($(stat -c %s "$cap") / 1000000))
echo "capture: $cap ($mb MB, $rows exchanges)" >&2

table=()
row() { table+=("$1|$2|$3"); }
for f in parquet ipc csv; do
    echo "export $f ..." >&2
    read -r s kb < <(measure "$bin" --progress never export "$cap" --format "$f" --out-dir "$out/x")
    row "juno-analyze export --format $f" "$s" "$kb"
done
echo "logs (JSON lines) ..." >&2
read -r s kb < <(measure sh -c "$bin --progress never logs '$cap' > '$out/x.jsonl'")
row "juno-analyze logs (JSON lines to a file)" "$s" "$kb"
echo "tshark (1 run) ..." >&2
read -r s kb < <(runs=1 measure sh -c "tshark -r '$cap' -Y resp -T fields -E header=y -E separator=, -E quote=d \
    -e frame.time_epoch -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport -e resp.array.length \
    -e resp.bulk_string.value -e resp.string -e resp.error -e resp.integer > '$out/tshark.csv'")
trows=$(($(wc -l <"$out/tshark.csv") - 1))
row "tshark -T fields -E separator=, (RESP fields, one row per packet: $trows rows)" "$s" "$kb"

echo
echo "| command | wall s | exchanges/s | MB/s | peak RSS MiB |"
echo "|---|---|---|---|---|"
for r in "${table[@]}"; do
    IFS='|' read -r name s kb <<<"$r"
    python3 -c "import sys; n, s, kb, rows, mb = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]); print(f'| {n} | {s:.2f} | {rows/s:,.0f} | {mb/s:.0f} | {kb/1024:.0f} |')" \
        "$name" "$s" "$kb" "$rows" "$mb"
done

# Memory against capture size: the second half of each capture, then all of it (the second
# half, not the first: it has the same mix of messages as the end of the whole).
echo
echo "| export --format parquet of | MB | exchanges | wall s | exchanges/s | peak RSS MiB |"
echo "|---|---|---|---|---|---|"
for whole in "$large" "$cap"; do
    packets=$(capinfos -c -M "$whole" | awk '/Number of packets/ {print $NF}')
    editcap -r "$whole" "$out/half.pcap" "$((packets / 2))-$packets"
    for c in "$out/half.pcap" "$whole"; do
        n=$("$bin" --progress never logs "$c" | wc -l)
        read -r s kb < <(measure "$bin" --progress never export "$c" --out-dir "$out/x")
        name=$whole
        [ "$c" = "$whole" ] || name="second half of $whole (editcap)"
        python3 -c "import sys; n, mb, rows, s, kb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]); print(f'| {n} | {mb} | {rows:,} | {s:.2f} | {rows/s:,.0f} | {kb/1024:.0f} |')" \
            "$name" "$(($(stat -c %s "$c") / 1000000))" "$n" "$s" "$kb"
    done
done
