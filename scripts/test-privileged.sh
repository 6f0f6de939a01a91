#!/usr/bin/env bash
# The privileged integration suite, in one command (root): network namespaces as stand-in
# pods, real nginx/redis servers and curl/redis-cli clients, the real juno-record binary, and
# the real juno-analyze binary on what it recorded (built here first, with the workspace's
# tests: `cargo test` builds only the binaries of the packages it tests).
#
# Every cargo command here selects the whole workspace, as `cargo test --release --workspace`
# in scripts/test.sh does: features are then resolved as there, and what that run built is
# reused. Selecting one package (`-p`) resolves its dependencies' features on their own and
# rebuilt polars and the other shared crates twice on an empty build cache (6 min 26 s and
# 2 min 23 s of a 45-minute cold CI run, 2026-12-07).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "test-privileged: must run as root (it creates network namespaces and loads eBPF programs)" >&2
    exit 1
fi
cargo test --release --workspace --no-run
cargo test --release --workspace --features juno-record/privileged --test privileged -- \
    --test-threads=1 "$@"
# TLS handshakes of real clients with nginx, recorded now (namespace jtls-srv), checked against
# tshark and what the clients reported (docs/tls.md). With the workspace's features: built
# otherwise, cargo would replace target/release/juno-analyze by another build, which the
# container test and the export check after this suite use.
tls_dir=$(mktemp -d /tmp/jtls-priv.XXXXXX)
trap 'rm -rf "$tls_dir"' EXIT
fixtures/make-tls-nginx.sh "$tls_dir/tls-nginx.pcap"
JUNO_TLS_NGINX_PCAP="$tls_dir/tls-nginx.pcap" \
    cargo test --release --workspace --test tls tls_nginx_agrees_with_tshark_and_the_clients
