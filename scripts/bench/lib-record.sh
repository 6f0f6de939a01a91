# shellcheck shell=bash
# The set-up shared by the recorder benchmarks (record-vs-tcpdump.sh at saturation,
# record-fixed-rate.sh at a fixed rate): nginx in a network namespace behind a veth pair,
# serving JSON documents of a chosen mix; juno-record or tcpdump recording the veth; the
# exchanges juno-analyze finds in what they wrote. Source it after setting:
#   work   a scratch directory (removed by the caller)
#   mix    json | gzip | small
#   TLS    (optional) 1: nginx serves HTTPS on port 443 (a self-signed certificate made
#          here; URL gives the scheme and address); the "-tls" modes (sockets-tls,
#          pod-sockets-tls, both-tls) are the socket modes with --tls (TLS plaintext).
#   GO     (optional) 1: a Go net/http server (GOMAXPROCS=1, built here with Debian's Go)
#          serves the same documents instead of nginx — with TLS=1, Go's crypto/tls, which
#          --tls probes in the program itself.
# It defines SADDR (the server's address), URL, start_server, and the functions below.
#
# nginx runs in a cgroup v2 of its own (juno-rbench-pod), a stand-in for a pod's:
# the "pod-" modes trace the socket events of that cgroup only (--cgroup), as a DaemonSet
# that records pods (--pods-only) does, and tcpdump on the pod's veth does; the other modes
# trace every process's sockets, here the load generator's as well as nginx's.
#
# Mixes: "json": JSON documents of the sizes an API tier serves (256 B to 64 KiB, 61 different
# documents of each size with random ids, names, dates and scores) and 404s; "gzip": the same,
# nginx gzip-compressing responses of 20 KiB and more (bytes no recorder can shrink);
# "small": documents of 256 B to 1 KiB and 404s only — many small exchanges, where per-event
# costs dominate.
. scripts/lib-netns.sh

NS=juno-rbench HIF=jrb-h NIF=jrb-s HADDR=10.205.0.1 SADDR=10.205.0.2
POD_CGROUP=/juno-rbench-pod
# The cgroup v2 hierarchy: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host.
CG_ROOT=/sys/fs/cgroup
[ -e "$CG_ROOT/cgroup.controllers" ] || CG_ROOT=/sys/fs/cgroup/unified
case ${mix:?} in json | small) gzip=off ;; gzip) gzip=on ;; *) echo "MIX: json, gzip or small" >&2; exit 1 ;; esac

if [ "${TLS:-0}" = 1 ]; then URL=https://$SADDR; else URL=http://$SADDR; fi

rec=${JUNO_RECORD:-$PWD/target/release/juno-record}
ana=$PWD/target/release/juno-analyze

bench_cleanup() {
    [ -n "${REC_TIME_PID:-}" ] && kill "$REC_TIME_PID" 2>/dev/null || true
    pkill -f "$work/out" 2>/dev/null || true
    nginx_stop "$work/nginx.pid"
    [ "${GO:-0}" = 1 ] && rm -f "$work/nginx.pid"
    rmdir "$CG_ROOT$POD_CGROUP" 2>/dev/null || true
    netns_down "$NS" "$HIF"
    rm -rf "$work"
}

# Writes the documents, starts nginx in its namespace behind the veth, writes $work/paths.lua
# (the request paths of the mix, for wrk's and for oha's URL lists).
start_server() {
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
    for size in (256, 512, 1024, 2048, 16384, 65536):
        docs = [record(0)]
        while len(json.dumps(docs + [record(0)])) <= size:
            docs.append(record(len(docs)))
        with open(f"{sys.argv[1]}/r{size}-{v}.json", "w") as f:
            f.write(json.dumps(docs))
    with open(f"{sys.argv[1]}/list-{v}.json", "w") as f:
        f.write(json.dumps([record(i) for i in range(140)]))
PY
    local listen_tls=""
    if [ "${TLS:-0}" = 1 ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/tls.key" -out "$work/tls.crt" \
            -days 2 -subj /CN=juno-bench.test 2>/dev/null
        listen_tls="listen $SADDR:443 ssl; ssl_certificate $work/tls.crt; ssl_certificate_key $work/tls.key;"
    fi
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
        $listen_tls
        root $work/www;
        gzip $gzip;
        gzip_types application/json;
        gzip_min_length 20000;
        location = /api/missing { return 404; }
    }
}
CONF
    if [ "${GO:-0}" = 1 ]; then
        go_server_start
    else
        nginx_start "$NS" "$work/nginx.conf"
    fi
    wait_port "$SADDR" 80
    mkdir -p "$CG_ROOT$POD_CGROUP"
    local master
    master=$(cat "$work/nginx.pid")
    for pid in "$master" $(pgrep -P "$master"); do
        echo "$pid" >"$CG_ROOT$POD_CGROUP/cgroup.procs"
    done
    if [ "$mix" = small ]; then
        echo 'local paths = { "/api/r256-", "/api/r512-", "/api/r1024-", "/api/r1024-", "/api/missing" }'
    else
        echo 'local paths = { "/api/r256-", "/api/r256-", "/api/r2048-", "/api/r2048-",
  "/api/r16384-", "/api/r65536-", "/api/list-", "/api/missing" }'
    fi >"$work/paths.lua"
    cat "$work/paths.lua" - >"$work/mix.lua" <<'LUA'
local i = 0
request = function()
  i = i + 1
  local p = paths[(i % #paths) + 1]
  if p ~= "/api/missing" then p = p .. (i % 61) .. ".json" end
  p = p .. "?n=" .. i
  return wrk.format("GET", p, { ["User-Agent"] = "wrk-bench", ["Accept-Encoding"] = "gzip" })
end
LUA
}

# The Go server (GO=1): nginx's documents, 404 for /api/missing, HTTPS on 443 with TLS=1;
# one OS thread running Go code at a time, like nginx's single worker. Its pid goes where
# nginx's would.
go_server_start() {
    cat >"$work/gosrv.go" <<'GO'
package main

import (
	"net/http"
	"os"
)

func main() {
	files := http.FileServer(http.Dir(os.Args[2]))
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/missing" {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
	if len(os.Args) > 3 {
		go func() { panic(http.ListenAndServeTLS(os.Args[1]+":443", os.Args[3], os.Args[4], nil)) }()
	}
	panic(http.ListenAndServe(os.Args[1]+":80", nil))
}
GO
    (cd "$work" && HOME=$work GOCACHE=/var/cache/juno/go-build GOFLAGS=-buildvcs=false         go build -o juno-bench-go gosrv.go)
    local tls_args=()
    [ "${TLS:-0}" = 1 ] && tls_args=("$work/tls.crt" "$work/tls.key")
    GOMAXPROCS=1 ip netns exec "$NS" "$work/juno-bench-go" "$SADDR" "$work/www" "${tls_args[@]}" \
        >"$work/gosrv.log" 2>&1 &
    echo $! >"$work/nginx.pid"
}

# HTTP exchanges juno-analyze finds in what a recorder wrote (a file or a directory), per
# vantage point: "packets=N" for the veth, "socket:COMM=N" per process whose syscalls carried
# them (with both ends traced, every exchange is seen by the client's and by nginx's sockets).
exchanges() {
    "$ana" --progress never -q logs "$1" >"$work/x.jsonl"
    python3 - "$work/x.jsonl" <<'PY'
import collections, json, sys
c = collections.Counter()
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("protocol") == "http":
        v = e["vantage"]
        c["packets" if v["kind"] == "packets" else f"{v['kind']}:{v['comm']}"] += 1
print(",".join(f"{k}={n}" for k, n in sorted(c.items())) or "none")
PY
}

# Starts a recorder for MODE (packets | sockets | both | pod-sockets | pod-both | pod-ident
# | tcpdump; pod-ident: packets with payload, and the pod's sockets' process and addresses
# only: --socket-payload none) into $work/out, in the
# background under /usr/bin/time, and waits until it records.
recorder_start() {
    local mode=${1%%+*} variant=()
    # MODE+ARG,ARG...: the mode with these juno-record options besides (e.g.
    # pod-ident+--compression-nice=19), so that settings are compared in the same sitting; an
    # ARG nice=N runs the whole recorder under `nice -n N` instead, and bin=PATH runs another
    # juno-record binary (builds compared in the same sitting).
    local wrap=() bin=$rec
    if [ "$mode" != "$1" ]; then
        local arg args
        IFS=, read -r -a args <<<"${1#*+}"
        for arg in "${args[@]}"; do
            case $arg in
            nice=*) wrap=(nice -n "${arg#nice=}") ;;
            bin=*) bin=${arg#bin=} ;;
            *) variant+=("$arg") ;;
            esac
        done
    fi
    rm -rf "$work/out" && mkdir -p "$work/out"
    case $mode in
    packets | sockets | both | pod-sockets | pod-both | pod-ident | *-tls)
        local flags=("${variant[@]}") base=${mode%-tls}
        [ "$base" != "$mode" ] && flags+=(--tls)
        [ "$base" = packets ] && flags+=(--no-sockets)
        [ "$base" = sockets ] && flags+=(--no-packets)
        [ "$base" = pod-sockets ] && flags+=(--no-packets --cgroup "$POD_CGROUP")
        [ "$base" = pod-both ] && flags+=(--cgroup "$POD_CGROUP")
        [ "$base" = pod-ident ] && flags+=(--cgroup "$POD_CGROUP" --socket-payload none)
        /usr/bin/time -o "$work/time" -f "%U %S" "${wrap[@]}" "$bin" --out-dir "$work/out" \
            --iface "^$HIF\$" "${flags[@]}" ${JUNO_RECORD_ARGS:-} >"$work/rec.log" 2>&1 &
        REC_TIME_PID=$!
        for _ in $(seq 200); do grep -q "recording into" "$work/rec.log" && break; sleep 0.05; done
        grep -q "recording into" "$work/rec.log" || { cat "$work/rec.log" >&2; exit 1; }
        ;;
    tcpdump)
        /usr/bin/time -o "$work/time" -f "%U %S" tcpdump -i "$HIF" -n -w "$work/out/cap.pcap" \
            >"$work/tcpdump.log" 2>&1 &
        REC_TIME_PID=$!
        for _ in $(seq 200); do grep -q "listening on" "$work/tcpdump.log" && break; sleep 0.05; done
        ;;
    esac
}

# Stops the recorder of MODE; sets cpu (s), events, dropped, bytes, ex (exchanges found), and
# for juno-record ebpf_share (its self-reported eBPF share of a CPU, % over the time it was
# measured), ebpf_ns / ebpf_runs (run time and runs counted while measured).
recorder_stop() {
    local mode=${1%%+*}
    cpu=0 events=0 dropped=0 bytes=0 ex=none ebpf_share=0 ebpf_ns=0 ebpf_runs=0
    case $mode in
    packets | sockets | both | pod-sockets | pod-both | pod-ident | *-tls)
        kill -INT "$(cat "$work/out/.juno-record.pid")"
        wait "$REC_TIME_PID"
        REC_TIME_PID=
        events=$(sed -n 's/.*stopped: \([0-9]*\) events.*/\1/p' "$work/rec.log")
        dropped=$(sed -n 's/.*dropped: \([0-9]*\) .*/\1/p' "$work/rec.log")
        bytes=$(find "$work/out" -name 'juno-*.pcapng.zst' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
        # "cost of the whole run: ... eBPF 12.3% of a CPU (...; tc_egress 290 ns × 1234; ...)"
        # → its share of a CPU (over the time it was measured), and total ns and runs.
        read -r ebpf_share ebpf_ns ebpf_runs < <({ grep 'cost of the whole run' "$work/rec.log" || true; } | python3 -c '
import re, sys
text = sys.stdin.read()
ns = runs = 0
for m in re.finditer(r"; ([a-z_0-9]+) ([0-9.]+) (ns|µs) × ([0-9]+)", text):
    per = float(m.group(2)) * (1000 if m.group(3) == "µs" else 1)
    ns += per * int(m.group(4)); runs += int(m.group(4))
share = re.search(r"eBPF ([0-9.]+)% of a CPU", text)
print(share.group(1) if share else 0, int(ns), runs)')
        ex=$(exchanges "$work/out")
        # KEEP=DIR keeps what the recorder wrote (DIR/MODE-N), e.g. for archive-read.sh.
        if [ -n "${KEEP:-}" ]; then
            local n=1
            while [ -e "$KEEP/$mode-$n" ]; do n=$((n + 1)); done
            mkdir -p "$KEEP" && cp -r "$work/out" "$KEEP/$mode-$n"
        fi
        ;;
    tcpdump)
        sleep 0.5
        pkill -INT -x tcpdump
        wait "$REC_TIME_PID"
        REC_TIME_PID=
        events=$(sed -n 's/^\([0-9]*\) packets captured$/\1/p' "$work/tcpdump.log")
        dropped=$(sed -n 's/^\([0-9]*\) packets dropped by kernel$/\1/p' "$work/tcpdump.log")
        bytes=$(stat -c %s "$work/out/cap.pcap")
        split -b 1M --filter='zstd -q -3 -c | wc -c' "$work/out/cap.pcap" |
            awk -v b="$bytes" '{s += $1} END {printf "%.3f\n", s / b}' >"$work/zstd-ratio"
        ex=$(exchanges "$work/out/cap.pcap")
        ;;
    esac
    [ -e "$work/time" ] && cpu=$(awk '{print $1 + $2}' "$work/time")
    return 0
}

# The load generator at a fixed rate: sets $oha (installing oha into target/bench-tools once
# if it is not in PATH) and writes the mix's paths (start_server's $work/paths.lua) as oha's
# URL list, $work/urls.txt (oha cycles through it).
oha_setup() {
    oha=$(command -v oha || echo "$PWD/target/bench-tools/bin/oha")
    if [ ! -x "$oha" ]; then
        echo "installing oha into target/bench-tools (once)" >&2
        cargo install -q --locked oha --root "$PWD/target/bench-tools"
    fi
    python3 - "$work/paths.lua" "$SADDR" >"$work/urls.txt" <<'PY'
import re, sys
paths = re.findall(r'"([^"]+)"', open(sys.argv[1]).read())
for i in range(61 * len(paths)):
    p = paths[i % len(paths)]
    print(f"http://{sys.argv[2]}{p}{'' if p == '/api/missing' else f'{i % 61}.json'}?n={i}")
PY
}

# Busy CPU time of the whole machine so far, in seconds: user, nice, system, irq and softirq
# time from /proc/stat (not steal: time the hypervisor gave to other machines).
busy_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '/^cpu / {printf "%.2f\n", ($2 + $3 + $4 + $7 + $8) / hz}' /proc/stat
}
