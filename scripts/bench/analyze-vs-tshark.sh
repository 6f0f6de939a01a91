#!/usr/bin/env bash
# Benchmarks `juno-analyze` against tshark on the same capture, in one run, on this machine:
# wall time, throughput (MB/s of capture, HTTP transactions/s), peak memory, and the ratio.
#
#   scripts/bench/analyze-vs-tshark.sh [CAPTURE] [RUNS]
#
# CAPTURE defaults to bench-data/http-wrk.pcap (made by make-http-capture.sh if missing, which
# needs root). The file is read once first so that every tool reads it from the page cache.
# tshark extracts the same HTTP fields juno-analyze writes to http.log, in one pass.
set -euo pipefail
cd "$(dirname "$0")/../.."
cap=${1:-bench-data/http-wrk.pcap}
runs=${2:-3}
if [ ! -e "$cap" ]; then
    mkdir -p "$(dirname "$cap")"
    scripts/bench/make-http-capture.sh "$cap" 1100
fi
cargo build --release -q -p juno-analyze
bin=target/release/juno-analyze
out=$(mktemp -d /tmp/juno-bench-out.XXXXXX)
trap 'rm -rf "$out"' EXIT
cat "$cap" >/dev/null
size=$(stat -c %s "$cap")
mb=$(python3 -c "print(f'{$size/1e6:.0f}')")

# Median of RUNS measurements: prints "seconds peak_kb user sys".
measure() {
    local i
    for i in $(seq "$runs"); do
        /usr/bin/time -o "$out/time" -f "%e %M %U %S" "$@" >/dev/null 2>"$out/stderr" || { cat "$out/stderr" >&2; return 1; }
        cat "$out/time"
    done | sort -n | awk -v n="$runs" 'NR == int((n + 1) / 2)'
}

row() { # name seconds peak_kb user sys transactions
    python3 - "$@" "$size" <<'PY'
import sys
name, secs, kb, user, sys_, tx, size = sys.argv[1:]
secs, size, tx = float(secs), int(size), int(tx)
print(f"| {name} | {secs:.2f} | {size/1e6/secs:.0f} | {tx/secs:,.0f} | {int(kb)/1024:.0f} | {float(user)+float(sys_):.2f} |")
PY
}

echo "capture: $cap ($mb MB, $(capinfos -c -M "$cap" | awk '/Number of packets/ {print $NF}') packets)" >&2
echo "tshark (1 run: it takes minutes) ..." >&2
# The same fields as http.log: connection, method, host, uri, version, user agent, status, reason, lengths.
tshark_cmd=(tshark -r "$cap" -Y http -T fields -e frame.time_epoch -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport
    -e http.request.method -e http.host -e http.request.uri -e http.request.version -e http.user_agent
    -e http.response.code -e http.response.phrase -e http.content_length)
read -r t_s t_kb t_u t_sys < <(runs=1 measure "${tshark_cmd[@]}")
"${tshark_cmd[@]}" 2>/dev/null >"$out/tshark.tsv"
t_tx=$(awk -F'\t' '$6 != ""' "$out/tshark.tsv" | awk -F'\t' '{n += split($6, a, ",")} END {print n}')

echo "juno-analyze ($runs runs each) ..." >&2
read -r z2_s z2_kb z2_u z2_sys < <(measure "$bin" --progress never logs "$cap" --format zeek --out-dir "$out/z2" --overwrite)
"$bin" --progress never logs "$cap" --format zeek --out-dir "$out/z"
j_tx=$(grep -vc '^#' "$out/z/http.log")
read -r z1_s z1_kb z1_u z1_sys < <(measure "$bin" --progress never --threads 1 logs "$cap" --format zeek --out-dir "$out/z1" --overwrite)
read -r c1_s c1_kb c1_u c1_sys < <(measure taskset -c 0 "$bin" --progress never --threads 1 logs "$cap" --format zeek --out-dir "$out/c1" --overwrite)
read -r j2_s j2_kb j2_u j2_sys < <(measure sh -c "$bin --progress never logs '$cap' > '$out/x.jsonl'")
read -r r2_s r2_kb r2_u r2_sys < <(measure "$bin" --progress never report "$cap")

echo
echo "| command | wall s | MB/s | transactions/s | peak RSS MiB | CPU s |"
echo "|---|---|---|---|---|---|"
row "tshark -Y http -T fields (HTTP fields)" "$t_s" "$t_kb" "$t_u" "$t_sys" "$t_tx"
row "juno-analyze logs --format zeek, 2 threads" "$z2_s" "$z2_kb" "$z2_u" "$z2_sys" "$j_tx"
row "juno-analyze logs --format zeek, 1 worker thread (reader on its own thread)" "$z1_s" "$z1_kb" "$z1_u" "$z1_sys" "$j_tx"
row "juno-analyze logs --format zeek, 1 core (taskset -c 0)" "$c1_s" "$c1_kb" "$c1_u" "$c1_sys" "$j_tx"
row "juno-analyze logs (JSON lines to a file), 2 threads" "$j2_s" "$j2_kb" "$j2_u" "$j2_sys" "$j_tx"
row "juno-analyze report, 2 threads" "$r2_s" "$r2_kb" "$r2_u" "$r2_sys" "$j_tx"
echo
python3 - "$t_s" "$z2_s" "$c1_s" "$t_tx" "$j_tx" <<'PY'
import sys
t, z2, c1, ttx, jtx = map(float, sys.argv[1:])
print(f"ratio tshark / juno-analyze (zeek logs): {t/z2:.0f}x on 2 cores, {t/c1:.0f}x on 1 core; 2 cores vs 1: {c1/z2:.2f}x")
print(f"HTTP requests: tshark {int(ttx)}, juno-analyze {int(jtx)} transactions")
PY
