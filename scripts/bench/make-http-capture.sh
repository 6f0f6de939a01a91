#!/usr/bin/env bash
# Records a large capture of real HTTP traffic for benchmarks: wrk drives nginx in a network
# namespace across a veth (MTU 1500, offloads off), tcpdump records the host side until the
# file reaches SIZE_MB. Fails if tcpdump reports kernel drops.
#
#   sudo [MIX=small] scripts/bench/make-http-capture.sh OUT.pcap [SIZE_MB]
#
# The responses mix sizes (256 B, 2 KiB, 16 KiB, 64 KiB, some gzip) over keep-alive
# connections, the way an API or web tier looks. MIX=small serves one 936-byte JSON document
# for every request instead: many small exchanges, the case where per-exchange cost dominates.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib-netns.sh"
out=${1:?usage: make-http-capture.sh OUT.pcap [SIZE_MB]}
size_mb=${2:-1100}
NS=juno-bench-srv HIF=jbh-h NIF=jbh-s HADDR=10.202.0.1 SADDR=10.202.0.2
work=$(mktemp -d /tmp/juno-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
    [ -n "${WRK_PID:-}" ] && kill "$WRK_PID" 2>/dev/null || true
    nginx_stop "$work/nginx.pid"
    netns_down "$NS" "$HIF"
    rm -rf "$work"
}
trap cleanup EXIT
netns_up "$NS" "$HIF" "$NIF" "$HADDR/30" "$SADDR/30" 1500
mkdir -p "$work/www/api" "$work/tmp"
for n in 256 2048 16384 65536; do
    python3 -c "import base64, os, sys; sys.stdout.write(base64.b64encode(os.urandom($n)).decode()[:$n])" >"$work/www/api/r$n.json"
done
python3 -c "import sys; sys.stdout.write(('{\"id\": 1, \"items\": [' + ', '.join(['\"item\"'] * 200))[:934] + ']}')" >"$work/www/api/item.json"
python3 -c "import sys; sys.stdout.write(''.join('{\"id\": %d, \"name\": \"item %d\", \"tags\": [\"a\", \"b\"]}\n' % (i, i) for i in range(400)))" >"$work/www/api/list.json"
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
        gzip on;
        gzip_types application/json;
        gzip_min_length 20000;
        location = /api/missing { return 404; }
    }
}
CONF
nginx_start "$NS" "$work/nginx.conf"
wait_port "$SADDR" 80
if [ "${MIX:-}" = small ]; then
    paths='"/api/item.json"'
else
    paths='"/api/r256.json", "/api/r256.json", "/api/r2048.json", "/api/r2048.json",
  "/api/r16384.json", "/api/r65536.json", "/api/list.json", "/api/missing"'
fi
cat >"$work/mix.lua" <<LUA
local paths = { $paths }
local i = 0
request = function()
  i = i + 1
  local p = paths[(i % #paths) + 1] .. "?n=" .. i
  return wrk.format("GET", p, { ["User-Agent"] = "wrk-bench", ["Accept-Encoding"] = "gzip" })
end
LUA
tcpdump -i "$HIF" -n -s 0 -B 262144 -w "$work/cap.pcap" >"$work/tcpdump.log" 2>&1 &
TCPDUMP_PID=$!
sleep 1
wrk -t 1 -c 32 -d 600s -s "$work/mix.lua" "http://$SADDR/" >"$work/wrk.log" 2>&1 &
WRK_PID=$!
limit=$((size_mb * 1024 * 1024))
while [ "$(stat -c %s "$work/cap.pcap" 2>/dev/null || echo 0)" -lt "$limit" ]; do
    kill -0 "$WRK_PID" 2>/dev/null || break
    sleep 0.5
done
kill -INT "$WRK_PID" 2>/dev/null || true
wait "$WRK_PID" 2>/dev/null || true
WRK_PID=
tcpdump_stop "$work/tcpdump.log"
cat "$work/tcpdump.log" | grep -E "captured|received|dropped" >&2 || true
mv "$work/cap.pcap" "$out"
echo "wrote $out ($(stat -c %s "$out") bytes)"
