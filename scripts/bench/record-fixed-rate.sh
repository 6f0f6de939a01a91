#!/usr/bin/env bash
# Benchmarks `juno-record` against `tcpdump -w` at a fixed request rate (not at saturation):
# what recording costs the whole machine per request, and what it does to latency, when the
# machine has room to spare — the usual state of a production node.
#
#   sudo scripts/bench/record-fixed-rate.sh [RATE] [SECONDS] [ROUNDS] [MIX]
#
# oha (from crates.io: `cargo install oha`; the script installs it into target/bench-tools if
# it is missing) sends RATE requests/s (default 8000: about half of what this 2-core VM
# serves at saturation with the small mix) over 16 keep-alive connections to nginx in a
# network namespace across a veth (the set-up of scripts/bench/lib-record.sh, MIX as there,
# default small), with latency correction (no coordinated omission). Each round runs every
# mode (nothing, juno-record packets / sockets / both / the pod's sockets / packets and the
# pod's sockets, tcpdump; MODES="off both tcpdump" picks some, as in record-vs-tcpdump.sh)
# for SECONDS (MODE+ARG,ARG: MODE with juno-record options besides, as in lib-record.sh);
# the tables give medians over rounds of:
# - the busy CPU time of the whole machine (/proc/stat) per request, and the extra over
#   nothing recording: what the recorder costs, wherever it runs (its process, its eBPF
#   programs in the applications' syscalls and in softirq, tcpdump's packet socket);
# - latency percentiles (p50, p99, p99.9) from oha, and p99 against nothing recording;
# - drops, bytes per request, and the exchanges juno-analyze finds in what was written.
set -euo pipefail
cd "$(dirname "$0")/../.."
rate=${1:-8000}
secs=${2:-15}
rounds=${3:-3}
mix=${4:-small}
[ "$(id -u)" = 0 ] || { echo "record-fixed-rate: must run as root" >&2; exit 1; }
cargo build --release -q -p juno-record -p juno-analyze
work=$(mktemp -d /tmp/juno-rfixed.XXXXXX)
chmod 755 "$work"
. scripts/bench/lib-record.sh
trap bench_cleanup EXIT
start_server
oha_setup

# Runs oha for $secs seconds at $rate; prints "requests p50_ms p99_ms p999_ms errors".
run_oha() {
    "$oha" -z "${secs}s" -q "$rate" -c 16 --latency-correction --no-tui --urls-from-file \
        -H "User-Agent: oha-bench" --output-format json -o "$work/oha.json" "$work/urls.txt" \
        >/dev/null 2>&1
    python3 - "$work/oha.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p = r["latencyPercentiles"]
n = sum(r["statusCodeDistribution"].values())
errors = sum(r.get("errorDistribution", {}).values())
print(n, p["p50"] * 1000, p["p99"] * 1000, p["p99.9"] * 1000, errors)
PY
}

# One measurement; appends to $work/results.tsv:
# mode round requests busy_s p50 p99 p999 errors cpu_s dropped bytes exchanges
measure() {
    local mode=$1 round=$2 n p50 p99 p999 errs b0 b1
    [ "$mode" != off ] && recorder_start "$mode"
    b0=$(busy_seconds)
    read -r n p50 p99 p999 errs < <(run_oha)
    b1=$(busy_seconds)
    if [ "$mode" = off ]; then
        cpu=0 dropped=0 bytes=0 ex=none
    else
        recorder_stop "$mode"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$round" "$n" \
        "$(echo "$b0 $b1" | awk '{print $2 - $1}')" "$p50" "$p99" "$p999" "$errs" "$cpu" \
        "${dropped:-0}" "$bytes" "$ex" >>"$work/results.tsv"
    printf '  %-11s %9s req  p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  errors %s  dropped %s  bytes %s  exchanges %s\n' \
        "$mode" "$n" "$p50" "$p99" "$p999" "$errs" "${dropped:-0}" "$bytes" "$ex" >&2
}

read -r -a modes <<<"${MODES:-off packets sockets both pod-sockets pod-both tcpdump}"
echo "oha -q $rate -c 16 -z ${secs}s -> nginx across $HIF (mix: $mix); $rounds rounds of ${modes[*]}" >&2
secs_saved=$secs; secs=3; run_oha >/dev/null; secs=$secs_saved # warm-up
for r in $(seq "$rounds"); do
    echo "round $r" >&2
    k=$(((r - 1) % ${#modes[@]}))
    for i in $(seq 0 $((${#modes[@]} - 1))); do
        measure "${modes[$(((i + k) % ${#modes[@]}))]}" "$r"
        sleep 1
    done
done

python3 - "$work/results.tsv" "$rate" "${modes[*]}" <<'PY'
import statistics, sys
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    m, rnd, n, busy, p50, p99, p999, errs, cpu, drop, by, ex = line.rstrip("\n").split("\t")
    ex = {k: int(v) for k, v in (p.split("=") for p in ex.strip().split(",") if "=" in p)}
    rows[m].append(dict(rnd=rnd, n=int(n), busy=float(busy), p50=float(p50), p99=float(p99),
                        p999=float(p999), errs=int(errs), drop=int(drop), by=int(by), ex=ex))
med = lambda m, f: statistics.median(f(r) for r in rows[m])
cpu_req = lambda m: med(m, lambda r: r["busy"] / r["n"] * 1e6)
base_cpu, base_p99 = cpu_req("off"), med("off", lambda r: r["p99"])
# p99 over nothing recording's in the same round: rounds drift (the VM), pairs less so.
off_p99 = {r["rnd"]: r["p99"] for r in rows["off"]}
paired = lambda m: statistics.median(r["p99"] / off_p99[r["rnd"]] - 1 for r in rows[m] if r["rnd"] in off_p99)
tcp_extra = cpu_req("tcpdump") - base_cpu
names = {"off": "nothing recording", "packets": "juno-record, packets",
         "sockets": "juno-record, socket events", "both": "juno-record, packets and sockets",
         "pod-sockets": "juno-record, the pod's socket events",
         "pod-both": "juno-record, packets and the pod's sockets",
         "pod-ident": "juno-record, packets and the pod's sockets' processes (--socket-payload none)",
         "tcpdump": "tcpdump -w (same veth)"}
modes = sys.argv[3].split()
# "MODE+ARG,ARG": the mode with juno-record options besides (lib-record.sh).
for m in modes:
    kind, _, extra = m.partition("+")
    if extra:
        names[m] = f"{names[kind]}, {extra.replace(',', ' ')}"
print(f"rate: {sys.argv[2]} requests/s")
print("| recording | requests | machine CPU µs/request | extra µs/request | extra vs tcpdump's | p50 ms | p99 ms | p99 vs off | p99 vs off, same round | p99.9 ms | dropped | bytes/request | exchanges found / requests (lowest) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for m in modes:
    c = cpu_req(m)
    extra = c - base_cpu
    vs = "-" if m == "off" else f"{extra / tcp_extra:.2f}×" if tcp_extra > 0 else "-"
    p99 = med(m, lambda r: r["p99"])
    bpr = "-" if m == "off" else f"{med(m, lambda r: r['by'] / r['n']):,.0f}"
    vantages = sorted({k for r in rows[m] for k in r["ex"]})
    found = ", ".join(f"{k}: {min(r['ex'].get(k, 0) / r['n'] for r in rows[m]):.4f}" for k in vantages) or "-"
    drops = "/".join(str(r["drop"]) for r in rows[m])
    print(f"| {names[m]} | {med(m, lambda r: r['n']):,.0f} | {c:.2f} | {extra:+.2f} | {vs} "
          f"| {med(m, lambda r: r['p50']):.3f} | {p99:.3f} | {100 * (p99 / base_p99 - 1):+.1f}% "
          f"| {100 * paired(m):+.1f}% "
          f"| {med(m, lambda r: r['p999']):.3f} | {drops} | {bpr} | {found} |")
PY
echo "raw results: (mode round requests busy_s p50 p99 p99.9 errors cpu_s dropped bytes exchanges)" >&2
cat "$work/results.tsv" >&2
