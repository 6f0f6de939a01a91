#!/usr/bin/env bash
# Where juno-analyze's wall time goes, step by step, on 1 and 2 threads, and how far this
# machine lets two cores go on the same work when nothing is shared between them.
#
#   scripts/bench/stages.sh RUNS CAPTURE...
#
# e.g. scripts/bench/stages.sh 5 bench-data/{http-small,redis,dns,postgresql}.pcap
#
# For each capture: RUNS runs of `logs --format zeek` with --threads 1 and with --threads 2,
# alternated; the median run (by wall time) of each is shown with its summary's
# `wall_time_us` (docs/jsonl.md): waiting for input, decoding, connections (reassembly,
# parsers, matching; parallel), ordering (serial), output (formatting parallel, writing
# serial), freeing (serial). Then the same capture analysed by two processes at once, each
# pinned to its own core with one worker (`taskset`), against one such process alone: the
# ratio is what two cores give when the work shares nothing (no batches, no allocator, no
# output) — the ceiling the 2-thread run is measured against. Needs /usr/bin/time, taskset,
# python3; BIN overrides the binary (default target/release/juno-analyze).
set -euo pipefail

if [ $# -lt 2 ]; then
    sed -n '2,17p' "$0" >&2
    exit 2
fi
runs=$1
shift
bin=${BIN:-target/release/juno-analyze}
[ -x "$bin" ] || { echo "stages.sh: $bin not built (cargo build --release -p juno-analyze)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "stages.sh: needs two CPUs" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One run: prints "wall cpu summary.json-path".
one() {
    local threads=$1 cap=$2 tag=$3 pin=${4:-}
    local out="$work/$tag"
    rm -rf "$out"
    local cmd=("$bin" logs --format zeek --threads "$threads" --out-dir "$out" -q "$cap")
    [ -n "$pin" ] && cmd=(taskset -c "$pin" "${cmd[@]}")
    /usr/bin/time -f '%e %U %S' -o "$work/$tag.time" "${cmd[@]}" >/dev/null
    read -r wall user sys <"$work/$tag.time"
    echo "$wall $(echo "$user + $sys" | bc) $out/summary.json"
}

rows="$work/rows.txt"
: >"$rows"
for cap in "$@"; do
    name=$(basename "$cap" .pcap)
    for r in $(seq "$runs"); do
        for t in 1 2; do
            read -r wall cpu sum < <(one "$t" "$cap" "t$t")
            echo "stage $name $t $wall $cpu $(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); t=s["wall_time_us"]; print(s["exchanges"]["written"], *(t[k] for k in ("total","input_wait","decode","connections","order","output","free")))' "$sum")" >>"$rows"
        done
        # Two single-worker processes at once, one per core, against one alone on core 0.
        read -r alone _ _ < <(one 1 "$cap" solo 0)
        one 1 "$cap" pa 0 >"$work/pa.res" &
        one 1 "$cap" pb 1 >"$work/pb.res" &
        wait
        read -r a _ _ <"$work/pa.res"
        read -r b _ _ <"$work/pb.res"
        echo "pair $name $alone $a $b" >>"$rows"
    done
done

python3 - "$rows" <<'EOF'
import statistics, sys
stage, pair = {}, {}
for line in open(sys.argv[1]):
    f = line.split()
    if f[0] == "stage":
        stage.setdefault((f[1], int(f[2])), []).append([float(x) for x in f[3:]])
    else:
        pair.setdefault(f[1], []).append([float(x) for x in f[2:]])
names = ["input_wait", "decode", "connections", "order", "output", "free"]
print("| capture | threads | wall s (median) | exchanges/s | CPUs busy | " + " | ".join(n + " ms" for n in names) + " | serial: order + free |")
print("|---|---|---|---|---|" + "---|" * len(names) + "---|")
med = {}
for (cap, t), rs in stage.items():
    rs.sort(key=lambda r: r[0])
    r = rs[(len(rs) - 1) // 2]
    med[(cap, t)] = max(r[0], 0.01)
    # (/usr/bin/time has hundredths: a tiny capture's run can read 0.)
    wall, cpu, ex, total = max(r[0], 0.01), r[1], r[2], max(r[3], 1)
    steps = r[4:]
    ms = [s / 1000 for s in steps]
    serial = (steps[3] + steps[5]) / total
    print(f"| {cap} | {t} | {wall:.2f} | {ex / wall:,.0f} | {cpu / wall:.2f} | " + " | ".join(f"{m:.0f} ({100 * s / total:.0f}%)" for m, s in zip(ms, steps)) + f" | {100 * serial:.0f}% |")
print()
print("| capture | 1 thread s | 2 threads s | 2 threads / 1 | one process alone s (1 core) | two at once s (each on its core) | two cores, nothing shared |")
print("|---|---|---|---|---|---|---|")
for cap, ps in pair.items():
    alone = max(statistics.median(p[0] for p in ps), 0.01)
    both = max(statistics.median(max(p[1], p[2]) for p in ps), 0.01)
    one, two = med.get((cap, 1)), med.get((cap, 2))
    print(f"| {cap} | {one:.2f} | {two:.2f} | {one / two:.2f}x | {alone:.2f} | {both:.2f} | {2 * alone / both:.2f}x |")
EOF
