#!/usr/bin/env bash
# The privileged integration suite, in one command (root): network namespaces as stand-in
# pods, real nginx/redis servers and curl/redis-cli clients, the real juno-record binary, and
# the real juno-analyze binary on what it recorded (built here first: cargo builds only the
# binaries of the package under test).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "test-privileged: must run as root (it creates network namespaces and loads eBPF programs)" >&2
    exit 1
fi
cargo build --release -p juno-analyze --bin juno-analyze
cargo test --release -p juno-record --features privileged --test privileged -- --test-threads=1 "$@"
# TLS handshakes of real clients with nginx, recorded now (namespace jtls-srv), checked against
# tshark and what the clients reported (docs/tls.md). With the default features: built
# without them, cargo would replace target/release/juno-analyze by a binary without the
# export, which the container test and the export check after this suite use.
tls_dir=$(mktemp -d /tmp/jtls-priv.XXXXXX)
trap 'rm -rf "$tls_dir"' EXIT
fixtures/make-tls-nginx.sh "$tls_dir/tls-nginx.pcap"
JUNO_TLS_NGINX_PCAP="$tls_dir/tls-nginx.pcap" \
    cargo test --release -p juno-analyze --test tls tls_nginx_agrees_with_tshark_and_the_clients
