#!/usr/bin/env bash
# The ten functions juno-analyze spends most of its time in (perf samples, self time, all
# threads), per capture and binary, side by side: the "perf top 10 before and after" of a
# change.
#
#   scripts/bench/top.sh CAPTURE... -- BINARY...
#
# e.g. scripts/bench/top.sh bench-data/redis.pcap -- /tmp/juno-analyze-before target/release/juno-analyze
#
# Each run is `logs --format zeek --threads 2` into a scratch directory (FORMAT=jsonl for JSON
# lines, THREADS to change the count) under `perf record -F 999` (the cpu-clock event where
# the machine has no hardware counters, as this VM). A row is a function's share of all the
# run's samples, kernel functions included; names are shortened to their last two path
# segments. Needs perf and python3.
set -euo pipefail

if [ $# -lt 3 ]; then
    sed -n '2,15p' "$0" >&2
    exit 2
fi
captures=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    captures+=("$1")
    shift
done
[ "${1:-}" = "--" ] || { echo "top.sh: missing -- before the binaries" >&2; exit 2; }
shift
binaries=("$@")
[ ${#binaries[@]} -gt 0 ] || { echo "top.sh: no binary" >&2; exit 2; }
format=${FORMAT:-zeek}
threads=${THREADS:-2}
command -v perf >/dev/null || { echo "top.sh: perf not found" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for c in "${captures[@]}"; do
    reports=()
    for i in "${!binaries[@]}"; do
        b=${binaries[$i]}
        rm -rf "$work/out"
        perf record -q -F 999 -o "$work/perf.data" -- \
            "$b" logs "$c" --format "$format" --threads "$threads" --out-dir "$work/out" -q \
            >/dev/null 2>"$work/perf.err" || { cat "$work/perf.err" >&2; exit 1; }
        perf report -i "$work/perf.data" --no-children --sort sym --stdio -g none \
            --percent-limit 0 2>/dev/null >"$work/report.$i.txt"
        reports+=("$work/report.$i.txt")
    done
    python3 - "$(basename "$c")" "${binaries[*]}" "${reports[@]}" <<'EOF'
import re
import sys

capture, binaries, reports = sys.argv[1], sys.argv[2].split(), sys.argv[3:]


def short(sym):
    # "[.] juno_analyze::proto::http1::headers::<impl juno_analyze::proto::http1::Http>::finish_header"
    sym = re.sub(r"^\[[.k]\]\s+", "", sym.strip())
    if "FnMut<A> for &F>::call_mut" in sym:
        return "a closure (FnMut::call_mut)"
    dropped = re.match(r".*drop_in_place<(.*)>$", sym)
    if dropped:
        return "drop " + dropped.group(1).split("::")[-1].rstrip(">")
    # "<impl Trait for Type>" (one level of generics inside) -> "Type".
    sym = re.sub(r"<impl (?:[^<>]|<[^<>]*>)*? for ((?:[^<>]|<[^<>]*>)*)>", r"\1", sym)
    sym = re.sub(r"<impl ((?:[^<>]|<[^<>]*>)*)>", r"\1", sym)
    sym = re.sub(r"<((?:[^<>]|<[^<>]*>)*) as (?:[^<>]|<[^<>]*>)*>", r"\1", sym)
    sym = re.sub(r"::\{\{closure\}\}", "::{closure}", sym)
    parts = [p for p in re.split(r"::", sym) if p]
    return "::".join(parts[-2:]) if len(parts) > 1 else sym


columns = []
for path in reports:
    rows = []
    for line in open(path, errors="replace"):
        m = re.match(r"\s*([\d.]+)%\s+(\S.*)$", line)
        if m:
            rows.append((float(m.group(1)), short(m.group(2))))
    columns.append(rows[:10])
print(f"\n{capture}\n")
print("| # | " + " | ".join(binaries) + " |")
print("|---|" + "---|" * len(binaries))
for k in range(10):
    cells = [f"{col[k][1]} {col[k][0]:.1f}%" if k < len(col) else "" for col in columns]
    print(f"| {k + 1} | " + " | ".join(cells) + " |")
EOF
done
