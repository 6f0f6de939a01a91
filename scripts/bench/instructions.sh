#!/usr/bin/env bash
# Counts what juno-analyze executes on the first packets of captures, for comparing builds on
# a machine whose run times are too noisy to tell a few percent apart (a shared VM): the
# instructions, first-level data cache misses and last-level misses of one worker thread's
# run under cachegrind (deterministic for the same binary and input), and the calls to malloc
# and realloc (uprobes on libc, when perf can place them).
#
#   scripts/bench/instructions.sh PACKETS CAPTURE... -- BINARY...
#
# e.g. scripts/bench/instructions.sh 40000 bench-data/redis.pcap bench-data/dns.pcap -- \
#        /tmp/juno-analyze-before target/release/juno-analyze
#
# Every run is `logs --format zeek --threads 1` (FORMAT=jsonl: JSON lines) into a scratch
# directory; the rows of the protocols' logs (the exchanges' JSON lines) are counted so that
# figures can be read per exchange. Needs valgrind and tcpdump (to cut
# the captures), perf for the allocation counts.
set -euo pipefail

if [ $# -lt 4 ]; then
    sed -n '2,16p' "$0" >&2
    exit 2
fi
packets=$1
shift
captures=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    captures+=("$1")
    shift
done
[ "${1:-}" = "--" ] || { echo "instructions.sh: missing -- before the binaries" >&2; exit 2; }
shift
binaries=("$@")
format=${FORMAT:-zeek}
case "$format" in zeek | jsonl) ;; *) echo "instructions.sh: FORMAT is zeek or jsonl" >&2; exit 2 ;; esac
[ ${#binaries[@]} -gt 0 ] || { echo "instructions.sh: no binary" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind not found" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Allocation counts: uprobes on libc's malloc and realloc (added once; left in place).
libc=$(ldd "${binaries[0]}" | awk '/libc.so.6/ {print $3}')
allocs=0
if command -v perf >/dev/null && [ -n "$libc" ]; then
    for f in malloc realloc; do
        perf probe -q -x "$libc" "$f" 2>/dev/null || true
    done
    case "$(perf probe -l 2>/dev/null || true)" in
        *probe_libc:malloc*) allocs=1 ;;
    esac
fi

printf '%-28s %-34s %8s %14s %12s %10s %10s %10s\n' capture binary rows instructions D1-misses LL-misses malloc realloc
for c in "${captures[@]}"; do
    cut="$work/$(basename "$c").$packets.pcap"
    tcpdump -q -r "$c" -c "$packets" -w "$cut" 2>/dev/null
    for b in "${binaries[@]}"; do
        out="$work/out"
        rm -rf "$out"
        valgrind --tool=cachegrind --cache-sim=yes --cachegrind-out-file=/dev/null \
            "$b" logs "$cut" --format "$format" --out-dir "$out" --threads 1 -q \
            >"$work/cg.txt" 2>&1 || { cat "$work/cg.txt" >&2; exit 1; }
        num() { grep -E "$1" "$work/cg.txt" | head -1 | sed -E 's/.*: *([0-9,]+).*/\1/' | tr -d ,; }
        ir=$(num 'I +refs')
        d1=$(num 'D1 +misses')
        ll=$(num 'LL misses')
        # Exchanges: the rows of the protocols' logs (not conn.log's or weird.log's).
        if [ "$format" = jsonl ]; then
            rows=$(wc -l <"$out/exchanges.jsonl")
        else
            rows=$(find "$out" -name '*.log' ! -name conn.log ! -name weird.log -exec cat {} + |
                grep -vc '^#' || true)
        fi
        m=-
        r=-
        if [ "$allocs" = 1 ]; then
            perf stat -x, -e probe_libc:malloc -e probe_libc:realloc -o "$work/ps.txt" \
                "$b" logs "$cut" --format "$format" --out-dir "$out" --overwrite --threads 1 -q >/dev/null 2>&1
            m=$(awk -F, '/probe_libc:malloc/ {print $1}' "$work/ps.txt")
            r=$(awk -F, '/probe_libc:realloc/ {print $1}' "$work/ps.txt")
        fi
        printf '%-28s %-34s %8s %14s %12s %10s %10s %10s\n' "$(basename "$c")" "$b" "$rows" "$ir" "$d1" "$ll" "$m" "$r"
    done
done
