#!/usr/bin/env bash
# Installs what Juno's tests and benchmarks need, idempotently: Debian packages (tshark,
# tcpdump, nginx, curl, wrk, ...) and checks the Rust toolchain. Safe to run repeatedly;
# installs only what is missing. Needs root for apt-get.
set -euo pipefail

PACKAGES=(
    tshark tcpdump nginx curl wrk zstd ethtool iproute2 python3 jq hyperfine time
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Non-root users may capture with tshark only via setcap; tests run as root, so say no.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
    echo "setup: cargo not found: install Rust (rustup) first" >&2
    exit 1
fi
# The workspace's rust-version; rustup picks the toolchain.
need=1.95
have=$(rustc --version | sed -E 's/rustc ([0-9]+\.[0-9]+).*/\1/')
if [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]; then
    echo "setup: rustc $have is older than $need" >&2
    exit 1
fi
# Dependency policy checks (licenses, bans, sources: deny.toml).
if ! command -v cargo-deny >/dev/null; then
    echo "setup: installing cargo-deny"
    cargo install --locked cargo-deny
fi
echo "setup: ok"
