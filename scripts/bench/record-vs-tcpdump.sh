#!/usr/bin/env bash
# Benchmarks `juno-record` against `tcpdump -w` on the same traffic, in one run, on this
# machine: wrk drives nginx in a network namespace across a veth pair at saturation, while
# nothing records, while juno-record records packets, socket events, or both, and while
# tcpdump writes a pcap of the same veth.
#
#   sudo scripts/bench/record-vs-tcpdump.sh [SECONDS] [ROUNDS] [MIX]
#
# MIX is "json", "gzip" or "small" (scripts/bench/lib-record.sh describes them). TLS=1 serves
# them over HTTPS (wrk's TLS and nginx's through OpenSSL); MODES may then add sockets-tls,
# pod-sockets-tls, both-tls (with --tls: TLS plaintext instead of ciphertext). GO=1 puts a
# Go net/http server in nginx's place (Go's own crypto/tls with TLS=1).
# JUNO_RECORD=PATH benchmarks another juno-record binary; JUNO_RECORD_ARGS adds options;
# KEEP=DIR keeps each juno-record run's archives in DIR/MODE-N;
# MODES="off both tcpdump" runs some of the modes (off and tcpdump are always needed): off,
# packets, sockets, both, pod-sockets, pod-both (socket events of nginx's cgroup only, as a
# DaemonSet recording pods: scripts/bench/lib-record.sh), pod-ident (packets, and the pod's
# sockets' processes without payload: --socket-payload none), tcpdump.
# A mode written MODE+ARG,ARG runs MODE with these juno-record options besides (nice=N: the
# recorder under nice; bin=PATH: another binary; lib-record.sh), to compare settings or builds
# in the same rounds, e.g. MODES="off packets packets+--snaplen=96 packets+bin=/tmp/jr tcpdump".
#
# Each round runs every mode once for SECONDS of wrk (the order rotates between rounds so
# that drift in the VM spreads over all modes); the tables give the median over rounds.
# Measured per run: wrk's requests/s; the recorder's (or tcpdump's) CPU time from
# /usr/bin/time; juno-record's own report of its eBPF programs' time; events it wrote and
# events it lost (the recorder's closing log line: kernel ring buffers and its own queue;
# tcpdump's "dropped by kernel"); the bytes it wrote; and, as a check that the bytes hold the
# traffic, the HTTP exchanges juno-analyze finds in them, against the requests wrk counted.
# As a yardstick for the bytes, the script also compresses the last tcpdump pcap with zstd -3
# in 1 MiB pieces: what compressing the packets alone, losslessly, in independent frames,
# would give.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-15}
rounds=${2:-3}
mix=${3:-json}
[ "$(id -u)" = 0 ] || { echo "record-vs-tcpdump: must run as root" >&2; exit 1; }
read -r -a modes <<<"${MODES:-off packets sockets both pod-sockets pod-both tcpdump}"
case " ${modes[*]} " in
*" off "*" tcpdump "* | *" tcpdump "*" off "*) ;;
*)
    echo "record-vs-tcpdump: MODES must include off and tcpdump (the ratios' yardsticks)" >&2
    exit 2
    ;;
esac
cargo build --release -q -p juno-record -p juno-analyze
work=$(mktemp -d /tmp/juno-rbench.XXXXXX)
chmod 755 "$work"
. scripts/bench/lib-record.sh
trap bench_cleanup EXIT
start_server

# Runs wrk for $secs seconds; prints "requests req_per_s".
run_wrk() {
    wrk -t 1 -c 32 -d "${secs}s" -s "$work/mix.lua" "$URL/" >"$work/wrk.log" 2>&1
    local n rps
    n=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$work/wrk.log")
    rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\)/\1/p' "$work/wrk.log")
    echo "$n $rps"
}

# One measurement; appends a TSV line to $work/results.tsv:
# mode round requests rps cpu_s events dropped bytes exchanges ebpf_share ebpf_ns ebpf_runs
measure() {
    local mode=$1 round=$2 n rps
    if [ "$mode" = off ]; then
        read -r n rps < <(run_wrk)
        cpu=0 events=0 dropped=0 bytes=0 ex=none ebpf_share=0 ebpf_ns=0 ebpf_runs=0
    else
        recorder_start "$mode"
        read -r n rps < <(run_wrk)
        recorder_stop "$mode"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$round" "$n" "$rps" "$cpu" \
        "${events:-0}" "${dropped:-0}" "$bytes" "$ex" "$ebpf_share" "$ebpf_ns" "$ebpf_runs" >>"$work/results.tsv"
    printf '  %-11s %9s req %10s req/s  cpu %5ss  ebpf %5s%%  events %9s  dropped %s  bytes %11s  exchanges %s\n' \
        "$mode" "$n" "$rps" "$cpu" "$ebpf_share" "${events:-0}" "${dropped:-0}" "$bytes" "$ex" >&2
    if [ "$mode" != off ] && [ "$mode" != tcpdump ]; then
        { grep 'cost of the whole run' "$work/rec.log" || true; } | while IFS= read -r l; do printf '    %s: %s\n' "$mode" "$l"; done >>"$work/costs.txt"
    fi
}

echo "wrk -t 1 -c 32 -d ${secs}s -> nginx across $HIF (mix: $mix); $rounds rounds of ${modes[*]}" >&2
run_wrk >/dev/null # warm-up
for r in $(seq "$rounds"); do
    echo "round $r" >&2
    k=$(((r - 1) % ${#modes[@]}))
    for i in $(seq 0 $((${#modes[@]} - 1))); do
        measure "${modes[$(((i + k) % ${#modes[@]}))]}" "$r"
        sleep 1
    done
done

python3 - "$work/results.tsv" "$secs" "$(cat "$work/zstd-ratio")" "${modes[*]}" <<'PY'
import statistics, sys
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    mode, rnd, n, rps, cpu, ev, drop, by, ex, eshare, ens, eruns = line.rstrip("\n").split("\t")
    ex = {k: int(v) for k, v in (p.split("=") for p in ex.strip().split(",") if "=" in p)}
    rows[mode].append(dict(n=int(n), rps=float(rps), cpu=float(cpu), ev=int(ev), drop=int(drop),
                           by=int(by), ex=ex, eshare=float(eshare), ens=int(ens), eruns=int(eruns)))
secs = float(sys.argv[2])
med = lambda m, k: statistics.median(r[k] for r in rows[m])
base = med("off", "rps")
tcp = med("tcpdump", "rps")
names = {"off": "nothing recording", "packets": "juno-record, packets (tc on the veth)",
         "sockets": "juno-record, socket events and payload",
         "both": "juno-record, packets and sockets",
         "pod-sockets": "juno-record, socket events of the pod (nginx's cgroup)",
         "pod-both": "juno-record, packets and the pod's socket events",
         "pod-ident": "juno-record, packets and the pod's sockets' processes (--socket-payload none)",
         "tcpdump": "tcpdump -w (same veth)"}
for m in list(names):
    if m in ("sockets", "both", "pod-sockets", "pod-both"):
        names[m + "-tls"] = names[m] + ", --tls (TLS plaintext)"
modes = sys.argv[4].split()
# "MODE+ARG,ARG": the mode with juno-record options besides (lib-record.sh).
for m in modes:
    kind, _, extra = m.partition("+")
    if extra:
        names[m] = f"{names[kind]}, {extra.replace(',', ' ')}"
print("| recording | req/s | vs off | vs tcpdump | process CPU % of a core | eBPF CPU % of a core | eBPF ns/run | events/s | dropped | bytes/request | HTTP exchanges found / wrk's requests (lowest over rounds) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for m in modes:
    rps = med(m, "rps")
    if m == "off":
        print(f"| {names[m]} | {rps:,.0f} | - | {rps / tcp:.2f}× | - | - | - | - | - | - | - |")
        continue
    bpr = statistics.median(r["by"] / r["n"] for r in rows[m])
    vantages = sorted({k for r in rows[m] for k in r["ex"]})
    found = ", ".join(
        f"{k}: {min(r['ex'].get(k, 0) / r['n'] for r in rows[m]):.4f}" for k in vantages)
    drops = "/".join(str(r["drop"]) for r in rows[m])
    ebpf = "-" if m == "tcpdump" else f"{med(m, 'eshare'):.1f}"
    per_run = "-" if m == "tcpdump" else f"{statistics.median(r['ens'] / max(r['eruns'], 1) for r in rows[m]):,.0f}"
    print(f"| {names[m]} | {rps:,.0f} | {100 * (rps / base - 1):+.1f}% | {rps / tcp:.2f}× "
          f"| {100 * med(m, 'cpu') / secs:.1f} | {ebpf} | {per_run} "
          f"| {med(m, 'ev') / secs:,.0f} | {drops} | {bpr:,.0f} | {found} |")
t = statistics.median(r["by"] / r["n"] for r in rows["tcpdump"])
for m in modes:
    if m in ("off", "tcpdump"):
        continue
    b = statistics.median(r["by"] / r["n"] for r in rows[m])
    print(f"- bytes per request, {m} / tcpdump: {b / t:.3f} (1/{t / b:.1f})")
z = float(sys.argv[3])
print(f"- tcpdump's pcap through zstd -3 in 1 MiB pieces: {z:.3f} (1/{1 / z:.1f}) of its size")
PY
echo "juno-record's own cost lines (each run):"
cat "$work/costs.txt"
echo "raw results: (mode round requests req/s cpu_s events dropped bytes exchanges ebpf_share% ebpf_ns ebpf_runs)" >&2
cat "$work/results.tsv" >&2
