#!/usr/bin/env bash
# Per-protocol throughput of `juno-analyze` against tshark, in one run, on this machine: for
# each capture made by make-protocol-captures.sh, wall time, MB/s, peak memory and the ratio,
# and how many requests each tool found.
#
#   scripts/bench/protocols-vs-tshark.sh [DIR] [RUNS]
#
# DIR defaults to bench-data/protocols (made by make-protocol-captures.sh with 20 s per
# protocol if missing, which needs root). Every capture is read once first so that every tool
# reads it from the page cache. juno-analyze writes JSON lines (every field of every
# exchange, requests paired with responses); tshark extracts the fields a user would pull
# out for the same purpose, one pass, without pairing.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-bench-data/protocols}
runs=${2:-3}
protocols=(redis postgresql mysql dns http2)
for p in "${protocols[@]}"; do
    if [ ! -e "$dir/$p.pcap" ]; then
        scripts/bench/make-protocol-captures.sh "$dir" 20 "$p"
    fi
done
cargo build --release -q -p juno-analyze
bin=target/release/juno-analyze
out=$(mktemp -d /tmp/juno-bench-out.XXXXXX)
trap 'rm -rf "$out"' EXIT

# Median of RUNS measurements: prints "seconds peak_kb".
measure() {
    local i
    for i in $(seq "$runs"); do
        /usr/bin/time -o "$out/time" -f "%e %M" "$@" >/dev/null 2>"$out/stderr" || { cat "$out/stderr" >&2; return 1; }
        cat "$out/time"
    done | sort -n | awk -v n="$runs" 'NR == int((n + 1) / 2)'
}

conn=(-e frame.time_epoch -e ip.src -e tcp.srcport -e udp.srcport -e ip.dst -e tcp.dstport -e udp.dstport)
# tshark's fields per protocol, and an awk program counting the requests in its output
# (columns after the 7 connection columns).
tshark_fields() {
    case $1 in
    redis) echo "-Y resp -e resp.array.length -e resp.bulk_string.value -e resp.string -e resp.error -e resp.integer" ;;
    postgresql) echo "-Y pgsql -e pgsql.type -e pgsql.query -e pgsql.statement -e pgsql.tag -e pgsql.code -e pgsql.message" ;;
    mysql) echo "-Y mysql -e mysql.command -e mysql.query -e mysql.response_code -e mysql.error_code -e mysql.affected_rows" ;;
    dns) echo "-Y dns -e dns.id -e dns.flags.response -e dns.qry.name -e dns.qry.type -e dns.flags.rcode -e dns.a -e dns.aaaa -e dns.cname -e dns.ptr.domain_name -e dns.time" ;;
    http2) echo "-Y http2 -e http2.streamid -e http2.type -e http2.headers.method -e http2.headers.path -e http2.headers.status" ;;
    esac
}
# What counts as a request in tshark's output: Redis commands (arrays sent to port 6379);
# PostgreSQL statements run (CommandComplete or ErrorResponse messages); MySQL commands
# (mysql.command); DNS queries (dns.flags.response == 0); HTTP/2 requests (:method).
tshark_requests() {
    case $1 in
    redis) awk -F'\t' '$6 == 6379 && $8 != "" {n += split($8, a, ",")} END {print n + 0}' ;;
    postgresql) awk -F'\t' '{n += split($8, a, ","); for (i in a) if (a[i] == "Command completion" || a[i] == "Error") c++} END {print c + 0}' ;;
    mysql) awk -F'\t' '$8 != "" {n += split($8, a, ",")} END {print n + 0}' ;;
    dns) awk -F'\t' '$9 == "0" || $9 == "False" {n++} END {print n + 0}' ;;
    http2) awk -F'\t' '$10 != "" {n += split($10, a, ",")} END {print n + 0}' ;;
    esac
}

rows=()
for p in "${protocols[@]}"; do
    cap=$dir/$p.pcap
    cat "$cap" >/dev/null
    size=$(stat -c %s "$cap")
    packets=$(capinfos -c -M "$cap" | awk '/Number of packets/ {print $NF}')
    echo "$p: $cap ($((size / 1000000)) MB, $packets packets): tshark (1 run) ..." >&2
    # shellcheck disable=SC2207
    fields=($(tshark_fields "$p"))
    read -r t_s t_kb < <(runs=1 measure sh -c 'tshark "$@" > "$0"' "$out/tshark.tsv" \
        -r "$cap" -T fields "${conn[@]}" "${fields[@]}")
    t_req=$(tshark_requests "$p" <"$out/tshark.tsv")
    echo "$p: juno-analyze ($runs runs each) ..." >&2
    read -r j2_s j2_kb < <(measure sh -c "$bin --progress never logs '$cap' > '$out/x.jsonl'")
    read -r j1_s j1_kb < <(measure sh -c "taskset -c 0 $bin --progress never --threads 1 logs '$cap' > '$out/x.jsonl'")
    j_ex=$(grep -c "\"protocol\":\"$p\"" "$out/x.jsonl" || true)
    rows+=("$p $size $packets $t_s $t_kb $j2_s $j2_kb $j1_s $t_req $j_ex")
done

echo
echo "| protocol | capture MB | packets | tshark s | tshark MB/s | tshark peak MiB | juno-analyze s, 2 cores | MB/s | juno-analyze s, 1 core | peak MiB | ratio, 2 cores | ratio, 1 core | requests (tshark) | exchanges (juno-analyze) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for r in "${rows[@]}"; do
    # shellcheck disable=SC2086
    python3 - $r <<'PY'
import sys
p, size, packets, ts, tkb, j2, j2kb, j1, treq, jex = sys.argv[1:]
size, ts, j2, j1 = int(size), float(ts), float(j2), float(j1)
mb = size / 1e6
print(f"| {p} | {mb:.0f} | {int(packets):,} | {ts:.2f} | {mb/ts:.1f} | {int(tkb)/1024:.0f} | {j2:.2f} | {mb/j2:.0f} | {j1:.2f} | {int(j2kb)/1024:.0f} | {ts/j2:.0f}x | {ts/j1:.0f}x | {int(treq):,} | {int(jex):,} |")
PY
done
