#!/usr/bin/env bash
# Benchmarks `juno-record` against `tcpdump -w` on the same traffic, in one run, on this
# machine: wrk drives nginx in a network namespace across a veth pair at saturation, while
# nothing records, while juno-record records packets, socket events, or both, and while
# tcpdump writes a pcap of the same veth.
#
#   sudo scripts/bench/record-vs-tcpdump.sh [SECONDS] [ROUNDS] [MIX]
#
# MIX is "json" (every response plain JSON, as most east-west traffic in a cluster is) or
# "gzip" (nginx gzip-compresses responses of 20 KiB and more: bytes no recorder can shrink).
#
# Each round runs every mode once for SECONDS of wrk (the order rotates between rounds so
# that drift in the VM spreads over all modes); the tables give the median over rounds.
# Measured per run: wrk's requests/s; the recorder's (or tcpdump's) CPU time from
# /usr/bin/time; events it wrote and events it lost (the recorder's closing log line: kernel
# ring buffers and its own queue; tcpdump's "dropped by kernel"); the bytes it wrote; and, as
# a check that the bytes hold the traffic, the HTTP exchanges juno-analyze finds in them,
# against the requests wrk counted.
#
# The responses are JSON documents of the sizes an API tier serves (256 B to 64 KiB; 61
# different documents of each size, with random ids, names, dates and scores) and 404s, over
# 32 keep-alive connections. As a yardstick for the bytes, the script also compresses the
# last tcpdump pcap with zstd -3 in 1 MiB pieces: what compressing the packets alone,
# losslessly, in independent frames, would give.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib-netns.sh
secs=${1:-15}
rounds=${2:-3}
mix=${3:-json}
case $mix in json) gzip=off ;; gzip) gzip=on ;; *) echo "MIX: json or gzip" >&2; exit 1 ;; esac
[ "$(id -u)" = 0 ] || { echo "record-vs-tcpdump: must run as root" >&2; exit 1; }

cargo build --release -q -p juno-record -p juno-analyze
rec=$PWD/target/release/juno-record
ana=$PWD/target/release/juno-analyze

NS=juno-rbench HIF=jrb-h NIF=jrb-s HADDR=10.205.0.1 SADDR=10.205.0.2
work=$(mktemp -d /tmp/juno-rbench.XXXXXX)
chmod 755 "$work"
cleanup() {
    [ -n "${REC_TIME_PID:-}" ] && kill "$REC_TIME_PID" 2>/dev/null || true
    pkill -f "$work/out" 2>/dev/null || true
    nginx_stop "$work/nginx.pid"
    netns_down "$NS" "$HIF"
    rm -rf "$work"
}
trap cleanup EXIT
netns_up "$NS" "$HIF" "$NIF" "$HADDR/30" "$SADDR/30" 1500
mkdir -p "$work/www/api" "$work/tmp"
python3 - "$work/www/api" <<'PY'
import json, random, sys
random.seed(7)
words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november".split()
def record(i):
    return {"id": 100000 + random.randrange(900000), "name": " ".join(random.sample(words, 2)),
            "email": f"{random.choice(words)}.{random.randrange(1000)}@example.com",
            "created": f"2026-{random.randrange(1,13):02d}-{random.randrange(1,29):02d}T"
                       f"{random.randrange(24):02d}:{random.randrange(60):02d}:{random.randrange(60):02d}Z",
            "score": round(random.random(), 4), "active": random.random() < 0.8,
            "tags": random.sample(words, random.randrange(1, 4))}
# 61 different documents of each kind, so that a compressor sees as little repetition as
# an API serving varied data would give it.
for v in range(61):
    for size in (256, 2048, 16384, 65536):
        docs = [record(0)]
        while len(json.dumps(docs + [record(0)])) <= size:
            docs.append(record(len(docs)))
        with open(f"{sys.argv[1]}/r{size}-{v}.json", "w") as f:
            f.write(json.dumps(docs))
    with open(f"{sys.argv[1]}/list-{v}.json", "w") as f:
        f.write(json.dumps([record(i) for i in range(140)]))
PY
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
user root;
daemon on;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/tmp;
    proxy_temp_path $work/tmp;
    fastcgi_temp_path $work/tmp;
    uwsgi_temp_path $work/tmp;
    scgi_temp_path $work/tmp;
    types { application/json json; }
    keepalive_requests 1000;
    server {
        listen $SADDR:80;
        root $work/www;
        gzip $gzip;
        gzip_types application/json;
        gzip_min_length 20000;
        location = /api/missing { return 404; }
    }
}
CONF
nginx_start "$NS" "$work/nginx.conf"
wait_port "$SADDR" 80
cat >"$work/mix.lua" <<'LUA'
local paths = { "/api/r256-", "/api/r256-", "/api/r2048-", "/api/r2048-",
  "/api/r16384-", "/api/r65536-", "/api/list-", "/api/missing" }
local i = 0
request = function()
  i = i + 1
  local p = paths[(i % #paths) + 1]
  if p ~= "/api/missing" then p = p .. (i % 61) .. ".json" end
  p = p .. "?n=" .. i
  return wrk.format("GET", p, { ["User-Agent"] = "wrk-bench", ["Accept-Encoding"] = "gzip" })
end
LUA

# Runs wrk for $secs seconds; prints "requests req_per_s".
run_wrk() {
    wrk -t 1 -c 32 -d "${secs}s" -s "$work/mix.lua" "http://$SADDR/" >"$work/wrk.log" 2>&1
    local n rps
    n=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$work/wrk.log")
    rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\)/\1/p' "$work/wrk.log")
    echo "$n $rps"
}

# HTTP exchanges juno-analyze finds in what a recorder wrote (a file or a directory), per
# vantage point: "packets=N" for the veth, "socket:COMM=N" per process whose syscalls carried
# them (with both ends traced, every exchange is seen by wrk's and by nginx's syscalls).
exchanges() {
    "$ana" --progress never -q logs "$1" >"$work/x.jsonl"
    python3 - "$work/x.jsonl" <<'PY'
import collections, json, sys
c = collections.Counter()
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("protocol") == "http":
        v = e["vantage"]
        c["packets" if v["kind"] == "packets" else f"socket:{v['comm']}"] += 1
print(",".join(f"{k}={n}" for k, n in sorted(c.items())) or "none")
PY
}

# One measurement; appends a TSV line to $work/results.tsv:
# mode round requests rps cpu_s events dropped bytes exchanges
measure() {
    local mode=$1 round=$2 n rps cpu=0 events=0 dropped=0 bytes=0 ex=0
    rm -rf "$work/out" && mkdir -p "$work/out"
    case $mode in
    off)
        read -r n rps < <(run_wrk)
        ;;
    packets | sockets | both)
        local flags=()
        [ "$mode" = packets ] && flags=(--no-sockets)
        [ "$mode" = sockets ] && flags=(--no-packets)
        /usr/bin/time -o "$work/time" -f "%U %S" "$rec" --out-dir "$work/out" \
            --iface "^$HIF\$" "${flags[@]}" >"$work/rec.log" 2>&1 &
        REC_TIME_PID=$!
        for _ in $(seq 200); do grep -q "recording into" "$work/rec.log" && break; sleep 0.05; done
        grep -q "recording into" "$work/rec.log" || { cat "$work/rec.log" >&2; exit 1; }
        read -r n rps < <(run_wrk)
        kill -INT "$(cat "$work/out/.juno-record.pid")"
        wait "$REC_TIME_PID"
        REC_TIME_PID=
        cpu=$(awk '{print $1 + $2}' "$work/time")
        events=$(sed -n 's/.*stopped: \([0-9]*\) events.*/\1/p' "$work/rec.log")
        dropped=$(sed -n 's/.*dropped: \([0-9]*\) .*/\1/p' "$work/rec.log")
        bytes=$(find "$work/out" -name 'juno-*.pcapng.zst' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
        ex=$(exchanges "$work/out")
        ;;
    tcpdump)
        /usr/bin/time -o "$work/time" -f "%U %S" tcpdump -i "$HIF" -n -w "$work/out/cap.pcap" \
            >"$work/tcpdump.log" 2>&1 &
        REC_TIME_PID=$!
        for _ in $(seq 200); do grep -q "listening on" "$work/tcpdump.log" && break; sleep 0.05; done
        read -r n rps < <(run_wrk)
        sleep 0.5
        pkill -INT -x tcpdump
        wait "$REC_TIME_PID"
        REC_TIME_PID=
        cpu=$(awk '{print $1 + $2}' "$work/time")
        events=$(sed -n 's/^\([0-9]*\) packets captured$/\1/p' "$work/tcpdump.log")
        dropped=$(sed -n 's/^\([0-9]*\) packets dropped by kernel$/\1/p' "$work/tcpdump.log")
        bytes=$(stat -c %s "$work/out/cap.pcap")
        split -b 1M --filter='zstd -q -3 -c | wc -c' "$work/out/cap.pcap" |
            awk -v b="$bytes" '{s += $1} END {printf "%.3f\n", s / b}' >"$work/zstd-ratio"
        ex=$(exchanges "$work/out/cap.pcap")
        ;;
    esac
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$round" "$n" "$rps" "$cpu" "${events:-0}" \
        "${dropped:-0}" "$bytes" "$ex" >>"$work/results.tsv"
    printf '  %-8s %9s req %10s req/s  cpu %5ss  events %9s  dropped %s  bytes %11s  exchanges %s\n' \
        "$mode" "$n" "$rps" "$cpu" "${events:-0}" "${dropped:-0}" "$bytes" "$ex" >&2
}

modes=(off packets sockets both tcpdump)
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

python3 - "$work/results.tsv" "$secs" "$(cat "$work/zstd-ratio")" <<'PY'
import statistics, sys
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    mode, rnd, n, rps, cpu, ev, drop, by, ex = line.split("\t")
    ex = {k: int(v) for k, v in (p.split("=") for p in ex.strip().split(",") if "=" in p)}
    rows[mode].append(dict(n=int(n), rps=float(rps), cpu=float(cpu), ev=int(ev), drop=int(drop),
                           by=int(by), ex=ex))
secs = float(sys.argv[2])
med = lambda m, k: statistics.median(r[k] for r in rows[m])
base = med("off", "rps")
names = {"off": "nothing recording", "packets": "juno-record, packets (tc on the veth)",
         "sockets": "juno-record, socket events and payload (syscall tracepoints)",
         "both": "juno-record, packets and sockets", "tcpdump": "tcpdump -w (same veth)"}
print("| recording | req/s | vs off | CPU % of a core | events/s | dropped | bytes/request | HTTP exchanges found / wrk's requests (lowest over rounds) |")
print("|---|---|---|---|---|---|---|---|")
for m in ["off", "packets", "sockets", "both", "tcpdump"]:
    rps = med(m, "rps")
    if m == "off":
        print(f"| {names[m]} | {rps:,.0f} | - | - | - | - | - | - |")
        continue
    bpr = statistics.median(r["by"] / r["n"] for r in rows[m])
    # Per vantage point: the lowest and highest share of wrk's requests found, over rounds.
    vantages = sorted({k for r in rows[m] for k in r["ex"]})
    found = ", ".join(
        f"{k}: {min(r['ex'].get(k, 0) / r['n'] for r in rows[m]):.4f}" for k in vantages)
    drops = "/".join(str(r["drop"]) for r in rows[m])
    print(f"| {names[m]} | {rps:,.0f} | {100 * (rps / base - 1):+.1f}% | {100 * med(m, 'cpu') / secs:.1f} "
          f"| {med(m, 'ev') / secs:,.0f} | {drops} | {bpr:,.0f} | {found} |")
t = statistics.median(r["by"] / r["n"] for r in rows["tcpdump"])
for m in ["packets", "sockets", "both"]:
    b = statistics.median(r["by"] / r["n"] for r in rows[m])
    print(f"- bytes per request, {m} / tcpdump: {b / t:.3f} (1/{t / b:.1f})")
z = float(sys.argv[3])
print(f"- tcpdump's pcap through zstd -3 in 1 MiB pieces: {z:.3f} (1/{1 / z:.1f}) of its size")
PY
echo "raw results: (mode round requests req/s cpu_s events dropped bytes exchanges)" >&2
cat "$work/results.tsv" >&2
