#!/usr/bin/env bash
# Records one large capture of real traffic per protocol, for the per-protocol benchmarks
# against tshark: a real server in a network namespace, a real load generator on the host,
# tcpdump on the host side of the veth (MTU 1500, offloads off). Fails if tcpdump reports
# kernel drops.
#
#   sudo scripts/bench/make-protocol-captures.sh OUT_DIR [SECONDS] [PROTOCOL...]
#
# PROTOCOL is any of redis postgresql mysql dns http2 (default: all), each recorded for
# SECONDS (default 20) into OUT_DIR/PROTOCOL.pcap:
# - redis: redis-benchmark, 16 connections, pipelines of 2, 64-byte values, 150,000 each of
#   SET, GET, INCR, LPUSH, RPOP, HSET and MSET, then 10,000 LRANGE (100 elements) — counts,
#   not SECONDS: redis-benchmark has no duration and no rate limit;
# - postgresql: pgbench on a scale-10 database, SCRAM logins, 8 clients, half the time the
#   TPC-B-like transaction over the simple protocol, half select-only over prepared statements;
# - mysql: mariadb-slap, auto-generated mixed reads and writes (with a few errors' worth of
#   key collisions), 8 concurrent connections, re-run until the time is up;
# - dns: dnsperf at 20,000 queries/s against dnsmasq serving a local zone over UDP: A, AAAA,
#   CNAME, MX, TXT, SRV, PTR and NXDOMAIN names;
# - http2: h2load (h2c prior knowledge), 16 connections with up to 10 concurrent streams
#   each, 500 requests/s per connection, against nginx serving 256 B and 2 KiB JSON documents
#   and 404s.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib-netns.sh"
outdir=${1:?usage: make-protocol-captures.sh OUT_DIR [SECONDS] [PROTOCOL...]}
secs=${2:-20}
shift $(($# >= 2 ? 2 : 1))
protocols=("$@")
[ ${#protocols[@]} -gt 0 ] || protocols=(redis postgresql mysql dns http2)
mkdir -p "$outdir"
NS=juno-bench-proto HIF=jbp-h NIF=jbp-s HADDR=10.209.0.1 SADDR=10.209.0.2
work=$(mktemp -d /tmp/juno-bench.XXXXXX)
chmod 755 "$work"
stoppers=()
cleanup() {
    local s
    for s in "${stoppers[@]}"; do eval "$s" || true; done
    netns_down "$NS" "$HIF"
    rm -rf "$work"
}
trap cleanup EXIT

capture_start() {
    tcpdump -i "$HIF" -n --immediate-mode -s 0 -B 262144 -w "$work/cap.pcap" >"$work/tcpdump.log" 2>&1 &
    TCPDUMP_PID=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$work/tcpdump.log" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "tcpdump did not start: $(cat "$work/tcpdump.log")" >&2
    return 1
}

capture_end() {
    local name=$1
    tcpdump_stop "$work/tcpdump.log"
    mv "$work/cap.pcap" "$outdir/$name.pcap"
    echo "wrote $outdir/$name.pcap ($(stat -c %s "$outdir/$name.pcap") bytes)"
}

# Runs COMMAND... again and again until SECONDS have passed (for load generators that take a
# count, not a duration); the last run is cut off when the time is up.
for_seconds() {
    local n=$1
    shift
    timeout "$n" bash -c 'while "$@"; do :; done' _ "$@" || true
}

bench_redis() {
    ip netns exec "$NS" redis-server --bind "$SADDR" --port 6379 --protected-mode no \
        --daemonize yes --pidfile "$work/redis.pid" --dir "$work" --save '' --appendonly no \
        --logfile "$work/redis.log"
    stoppers+=('[ -s "$work/redis.pid" ] && kill "$(cat "$work/redis.pid")"')
    wait_port "$SADDR" 6379
    capture_start
    redis-benchmark -h "$SADDR" -q -c 16 -P 2 -d 64 -r 100000 -n 150000 \
        -t set,get,incr,lpush,rpop,hset,mset >/dev/null
    redis-benchmark -h "$SADDR" -q -c 16 -P 2 -d 64 -n 10000 -t lrange_100 >/dev/null
    capture_end redis
    kill "$(cat "$work/redis.pid")"
    rm -f "$work/redis.pid" # the stopper would race redis removing it
}

bench_postgresql() {
    local bin pgdir=$work/pg
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    mkdir -p "$pgdir"
    chown postgres: "$pgdir"
    echo bench >"$work/pw"
    chmod 644 "$work/pw"
    runuser -u postgres -- "$bin/initdb" -D "$pgdir/data" -U postgres --auth-local=trust \
        --auth-host=scram-sha-256 --pwfile="$work/pw" >"$work/initdb.log"
    cat >>"$pgdir/data/postgresql.conf" <<CONF
listen_addresses = '$SADDR'
port = 5432
unix_socket_directories = '$pgdir'
fsync = off
synchronous_commit = off
CONF
    echo "host all all $HADDR/32 scram-sha-256" >>"$pgdir/data/pg_hba.conf"
    ip netns exec "$NS" runuser -u postgres -- "$bin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w start >/dev/null
    stoppers+=("runuser -u postgres -- '$bin/pg_ctl' -D '$pgdir/data' -m immediate -w stop >/dev/null 2>&1")
    wait_port "$SADDR" 5432
    runuser -u postgres -- "$bin/psql" -X -q -h "$pgdir" -U postgres -d postgres \
        -c "CREATE ROLE juno LOGIN PASSWORD 'bench'" -c "CREATE DATABASE juno OWNER juno"
    export PGHOST=$SADDR PGPORT=5432 PGUSER=juno PGDATABASE=juno PGPASSWORD=bench PGSSLMODE=disable
    "$bin/pgbench" -q -i -s 10 -I dtGvp >"$work/pgbench-init.log" 2>&1
    capture_start
    "$bin/pgbench" -n -c 8 -j 2 -T $((secs / 2)) -M simple >"$work/pgbench-1.log" 2>&1
    "$bin/pgbench" -n -c 8 -j 2 -T $((secs - secs / 2)) -M prepared -S >"$work/pgbench-2.log" 2>&1
    capture_end postgresql
    runuser -u postgres -- "$bin/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null
    unset PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGSSLMODE
}

bench_mysql() {
    mariadb-install-db --no-defaults --datadir="$work/mdata" --user=root \
        --auth-root-authentication-method=normal --skip-test-db >"$work/install.log" 2>&1
    ip netns exec "$NS" mariadbd --no-defaults --datadir="$work/mdata" --user=root \
        --socket="$work/msock" --pid-file="$work/mariadbd.pid" --log-error="$work/mariadbd.err" \
        --bind-address="$SADDR" --port=3306 --skip-name-resolve --innodb-flush-log-at-trx-commit=0 &
    stoppers+=('[ -s "$work/mariadbd.pid" ] && kill "$(cat "$work/mariadbd.pid")" && sleep 2')
    wait_port "$SADDR" 3306
    mariadb --no-defaults --socket="$work/msock" -u root <<'SQL'
CREATE USER 'juno'@'%' IDENTIFIED BY 'bench-pw';
GRANT ALL ON *.* TO 'juno'@'%';
SQL
    capture_start
    for_seconds "$secs" mariadb-slap --no-defaults -h "$SADDR" -u juno -pbench-pw \
        --auto-generate-sql --auto-generate-sql-load-type=mixed --auto-generate-sql-add-autoincrement \
        --auto-generate-sql-write-number=1000 --concurrency=8 --number-of-queries=20000 \
        --number-char-cols=3 --number-int-cols=2 >/dev/null
    capture_end mysql
    kill "$(cat "$work/mariadbd.pid")"
    for _ in $(seq 100); do [ -e "$work/mariadbd.pid" ] || break; sleep 0.1; done
}

bench_dns() {
    cat >"$work/dnsmasq.conf" <<CONF
no-resolv
no-hosts
no-poll
bind-interfaces
listen-address=$SADDR
port=53
user=root
pid-file=$work/dnsmasq.pid
local=/bench.test/
local=/209.10.in-addr.arpa/
local-ttl=300
cache-size=10000
CONF
    local i
    for i in $(seq 1 200); do
        echo "host-record=h$i.bench.test,10.209.1.$i,fd00:209::$i"
        echo "cname=c$i.bench.test,h$i.bench.test"
    done >>"$work/dnsmasq.conf"
    echo 'mx-host=bench.test,h1.bench.test,10' >>"$work/dnsmasq.conf"
    echo 'txt-record=bench.test,"v=spf1 mx -all","juno benchmark"' >>"$work/dnsmasq.conf"
    echo 'srv-host=_http._tcp.bench.test,h1.bench.test,80,0,5' >>"$work/dnsmasq.conf"
    ip netns exec "$NS" dnsmasq --conf-file="$work/dnsmasq.conf"
    stoppers+=('[ -s "$work/dnsmasq.pid" ] && kill "$(cat "$work/dnsmasq.pid")"')
    wait_port "$SADDR" 53
    for i in $(seq 1 200); do
        echo "h$i.bench.test A"
        echo "h$i.bench.test AAAA"
        echo "c$i.bench.test A"
        echo "$i.1.209.10.in-addr.arpa PTR"
        echo "missing$i.bench.test A"
    done >"$work/queries.txt"
    printf 'bench.test MX\nbench.test TXT\n_http._tcp.bench.test SRV\n' >>"$work/queries.txt"
    capture_start
    dnsperf -s "$SADDR" -d "$work/queries.txt" -l "$secs" -Q 20000 -c 4 >"$work/dnsperf.log" 2>&1
    capture_end dns
    grep -E "Queries (sent|completed|lost)" "$work/dnsperf.log" >&2 || true
    kill "$(cat "$work/dnsmasq.pid")"
}

bench_http2() {
    mkdir -p "$work/www/api" "$work/tmp"
    local n
    for n in 256 2048; do
        python3 -c "import base64, os, sys; sys.stdout.write(base64.b64encode(os.urandom($n)).decode()[:$n])" >"$work/www/api/r$n.json"
    done
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
    keepalive_requests 1000000;
    server {
        listen $SADDR:80 http2;
        root $work/www;
    }
}
CONF
    nginx_start "$NS" "$work/nginx.conf"
    stoppers+=('nginx_stop "$work/nginx.pid"')
    wait_port "$SADDR" 80
    printf 'http://%s/api/r%s.json\n' "$SADDR" 256 "$SADDR" 256 "$SADDR" 2048 "$SADDR" 2048 >"$work/uris.txt"
    echo "http://$SADDR/api/missing" >>"$work/uris.txt"
    capture_start
    h2load -c 16 -m 10 --rps 500 -D "$secs" -i "$work/uris.txt" >"$work/h2load.log" 2>&1
    capture_end http2
    grep -E "^requests:" "$work/h2load.log" >&2 || true
    nginx_stop "$work/nginx.pid"
}

netns_up "$NS" "$HIF" "$NIF" "$HADDR/30" "$SADDR/30" 1500
for p in "${protocols[@]}"; do
    case $p in
    redis | postgresql | mysql | dns | http2) "bench_$p" ;;
    *) echo "unknown protocol: $p (redis postgresql mysql dns http2)" >&2; exit 2 ;;
    esac
done
