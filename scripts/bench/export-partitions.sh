#!/usr/bin/env bash
# The partitioned export at fleet scale (docs/export.md, "Partitioned datasets"), in one run:
# per capture, `juno-analyze export --partition-by node,hour` (rows/s, files, file sizes,
# peak RSS) next to the plain Parquet export of the same capture; a second batch appended
# under another node name; then the service graph two ways on that two-batch dataset —
# DuckDB's documented `service_graph` query over the Parquet files against
# `juno-analyze graph --format json` over the same captures — and whether they give the same
# edges and request counts.
#
#   scripts/bench/export-partitions.sh [RUNS] [CAPTURE...]
#
# CAPTUREs default to bench-data/http-small.pcap (made by
# `sudo MIX=small scripts/bench/make-http-capture.sh bench-data/http-small.pcap 600`) and
# bench-data/protocols/redis.pcap (`sudo scripts/bench/make-protocol-captures.sh
# bench-data/protocols 20 redis`). DuckDB runs from the virtualenv scripts/setup.sh makes
# (JUNO_VENV, default ~/.cache/juno/venv). Captures are read once first (page cache).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
shift || true
caps=("$@")
[ ${#caps[@]} -gt 0 ] || caps=(bench-data/http-small.pcap bench-data/protocols/redis.pcap)
py=${JUNO_VENV:-$HOME/.cache/juno/venv}/bin/python
[ -x "$py" ] || { echo "$py is missing: run scripts/setup.sh" >&2; exit 1; }
cargo build --release -q -p juno-analyze
bin=target/release/juno-analyze
out=$(mktemp -d /tmp/juno-bench-part.XXXXXX)
trap 'rm -rf "$out"' EXIT

# Median of RUNS measurements of a command (the dataset directories emptied before each; the
# last run's output left in $out/stdout): prints "seconds peak_kb".
measure() {
    local i
    for i in $(seq "$runs"); do
        rm -rf "$out/ds" "$out/plain"
        /usr/bin/time -o "$out/time" -f "%e %M" "$@" >"$out/stdout" 2>"$out/stderr" \
            || { cat "$out/stderr" >&2; return 1; }
        cat "$out/time"
    done | sort -n | awk -v n="$runs" 'NR == int((n + 1) / 2)'
}

# Files, total MB, smallest and largest file (MB) of a table of the dataset.
files_of() {
    find "$out/ds/$1" -name '*.parquet' -printf '%s\n' | sort -n | awk '
        { n++; t += $1; if (n == 1) lo = $1; hi = $1 }
        END { printf "%d %.1f %.1f %.1f\n", n, t / 1e6, lo / 1e6, hi / 1e6 }'
}

# The documented service_graph query (docs/export.md) run by DuckDB over DIR, RUNS times;
# prints "median_seconds edges requests" and writes the edges as JSON to $out/sql.json.
duckdb_graph() {
    "$py" - "$1" "$runs" "$out/sql.json" <<'EOF'
import json, re, statistics, sys, time
from pathlib import Path
import duckdb
ds, runs, dump = sys.argv[1], int(sys.argv[2]), sys.argv[3]
text = Path("docs/export.md").read_text()
sql = next(b for b in re.findall(r"```sql\n(.*?)```", text, re.S)
           if b.startswith("-- service_graph:")).replace("DIR", ds)
times = []
for _ in range(runs):
    con = duckdb.connect()  # a fresh connection: no cached metadata between runs
    t = time.perf_counter()
    cur = con.execute(sql)
    rows = cur.fetchall()
    times.append(time.perf_counter() - t)
    cols = [d[0] for d in cur.description]
edges = {f"{r['client']} -> {r['server']} {r['protocol']}": r["requests"]
         for r in (dict(zip(cols, row)) for row in rows)}
json.dump(edges, open(dump, "w"), sort_keys=True)
print(f"{statistics.median(times):.2f} {len(edges)} {sum(edges.values())}")
EOF
}

# `juno-analyze graph --format json` edges as {"client -> server protocol": requests}.
graph_edges() {
    "$py" -c '
import json, sys
g = json.load(open(sys.argv[1]))
names = {n["id"]: n["name"] for n in g["nodes"]}
edges = {}
for e in g["edges"]:
    k = names[e["from"]] + " -> " + names[e["to"]] + " " + e["protocol"]
    edges[k] = edges.get(k, 0) + e["requests"]
json.dump(edges, open(sys.argv[2], "w"), sort_keys=True)
print(len(edges), sum(edges.values()))' "$1" "$2"
}

# Exchanges per second, or "-" when the time is too short to say.
rate() { awk -v r="$1" -v s="$2" 'BEGIN { if (s < 0.05) print "-"; else printf "%.0f", r / s }'; }

table=()
for cap in "${caps[@]}"; do
    [ -e "$cap" ] || { echo "$cap is missing (see the header of this script)" >&2; exit 1; }
    cat "$cap" >/dev/null
    mb=$(($(stat -c %s "$cap") / 1000000))
    rows=$("$bin" --progress never logs "$cap" | wc -l)
    name=$(basename "$cap")
    echo "$name: $mb MB, $rows exchanges" >&2

    echo "  export --format parquet ..." >&2
    read -r s kb < <(measure "$bin" --progress never export "$cap" --format parquet --out-dir "$out/plain")
    table+=("$name|export --format parquet (one file per table)|$s|$(rate "$rows" "$s")|$((kb / 1024))|-")

    echo "  export --partition-by node,hour ..." >&2
    read -r s kb < <(measure "$bin" --progress never export "$cap" --partition-by node,hour --node node-a --out-dir "$out/ds")
    # The last measured run's dataset is still there: describe it, then append a second batch.
    read -r nf tmb lo hi < <(files_of exchanges)
    hours=$(find "$out/ds/exchanges" -mindepth 2 -maxdepth 2 -type d -name 'hour=*' | wc -l)
    table+=("$name|export --partition-by node,hour (batch 1)|$s|$(rate "$rows" "$s")|$((kb / 1024))|exchanges: $nf files in $hours hour partitions, $tmb MB ($lo–$hi MB each)")
    /usr/bin/time -o "$out/time" -f "%e %M" "$bin" --progress never export "$cap" --partition-by node,hour \
        --node node-b --out-dir "$out/ds" >/dev/null 2>"$out/stderr" || { cat "$out/stderr" >&2; exit 1; }
    read -r s kb <"$out/time"
    read -r nf tmb lo hi < <(files_of exchanges)
    table+=("$name|export --partition-by node,hour (batch 2 appended, node-b)|$s|$(rate "$rows" "$s")|$((kb / 1024))|exchanges now: $nf files, $tmb MB")

    echo "  service graph: DuckDB over the dataset, juno-analyze over the captures ..." >&2
    read -r qs qedges qreq < <(duckdb_graph "$out/ds")
    # The same two batches as one graph run: the capture under each node name is the same
    # traffic, so the graph of the capture counts each edge once and the dataset twice.
    read -r gs gkb < <(measure "$bin" --progress never graph --format json "$cap")
    read -r gedges greq < <(graph_edges "$out/stdout" "$out/graph-edges.json")
    same=$("$py" -c '
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
print("yes" if a.keys() == b.keys() and all(a[k] == 2 * b[k] for k in a) else "NO")' "$out/sql.json" "$out/graph-edges.json")
    table+=("$name|DuckDB service_graph query (docs/export.md) over both batches|$qs|$(rate "$((2 * rows))" "$qs")|-|$qedges edges, $qreq requests (2 × the capture's); same edges as graph, counts doubled: $same")
    table+=("$name|juno-analyze graph --format json (the capture once)|$gs|$(rate "$rows" "$gs")|$((gkb / 1024))|$gedges edges, $greq requests")
done

echo
echo "| capture | command | wall s (median of $runs) | exchanges/s | peak RSS MiB | output |"
echo "|---|---|---|---|---|---|"
for r in "${table[@]}"; do
    IFS='|' read -r c name s rate mib note <<<"$r"
    echo "| $c | $name | $s | $rate | $mib | $note |"
done
