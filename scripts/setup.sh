#!/usr/bin/env bash
# Installs what Juno's builds, tests and benchmarks need, idempotently: every step checks
# first and does nothing when it is done, so a second run takes a second.
#
# - Debian packages: capture and analysis tools, the servers and clients the tests run;
# - the eBPF toolchain: LLVM 22 development packages, bpf-linker built against them, rust-src
#   for the pinned toolchain (rust-toolchain.toml), tracefs mounted;
# - cargo-deny for the dependency policy check.
#
# Needs root (apt-get, mount). Facts behind the pins: ../shared/notes/ebpf-on-this-machine.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf 'setup: %s\n' "$*"; }

LLVM_MAJOR=22
BPF_LINKER_VERSION=0.13.0
TOOLCHAIN=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)

PACKAGES=(
    # capture and analysis
    tshark tcpdump zstd ethtool iproute2 jq hyperfine time linux-perf
    # load generators of the benchmarks (scripts/bench/): DNS (h2load is in nghttp2-client)
    dnsperf
    # servers and clients the tests start
    nginx curl wrk iputils-ping python3 redis-server redis-tools dnsmasq-base bind9-dnsutils
    postgresql postgresql-client openssl
    # a ClusterIP's DNAT (kube-proxy's rule) in the privileged suite
    nftables
    # the HTML report is checked in a headless browser
    chromium
    # the image build and the DaemonSet's container (scripts/test-container.sh): podman with
    # runc (crun refuses this machine's hybrid cgroups), debootstrap for a local base image,
    # PyYAML for the manifest's translation
    podman runc debootstrap python3-yaml
    # HTTP/2 and gRPC fixture: nghttp (multiplexing client), Debian's grpcio and h2 for
    # /usr/bin/python3 (the gRPC server and client, the h2c upgrade server)
    nghttp2-client python3-grpcio python3-h2
    # tunnel fixture: the userspace tunnel ends (GRE, ERSPAN, Geneve, IP in IP) where the
    # kernel has no such device (fixtures/tunnel-end.py)
    python3-scapy
    # the virtualenv of the export check and the notebook (packages from PyPI, below)
    python3-venv
    # the Go TLS client and server of the privileged suite (built with the standard library)
    golang-go
    mariadb-server mariadb-client mariadb-test
    # eBPF toolchain (bpf-linker links LLVM 22 from bookworm-security)
    "llvm-$LLVM_MAJOR-dev" "libpolly-$LLVM_MAJOR-dev" libzstd-dev zlib1g-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Non-root users may capture with tshark only via setcap; tests run as root, so say no.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    # The packaged servers must not run as services: tests start their own instances.
    for svc in nginx redis-server postgresql mariadb; do
        systemctl disable --now "$svc" >/dev/null 2>&1 || service "$svc" stop >/dev/null 2>&1 || true
    done
fi

# kubectl renders deploy/ in the tests (kustomize is built in); Debian's package provides it.
if ! command -v kubectl >/dev/null; then
    log "installing kubectl (kubernetes-client)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends kubernetes-client
fi

command -v rustup >/dev/null || { log "rustup not found: install Rust first"; exit 1; }
if ! rustc +"$TOOLCHAIN" -V >/dev/null 2>&1; then
    log "installing toolchain $TOOLCHAIN"
    rustup toolchain install "$TOOLCHAIN" --profile minimal --no-self-update
fi
llvm_of() { rustc +"$1" -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p'; }
if [ "$(llvm_of "$TOOLCHAIN")" != "$LLVM_MAJOR" ]; then
    log "rustc $TOOLCHAIN is not on LLVM $LLVM_MAJOR: bpf-linker cannot link its eBPF objects"
    exit 1
fi
for comp in rust-src clippy rustfmt; do
    if ! rustup component list --toolchain "$TOOLCHAIN" --installed | grep -q "^$comp"; then
        log "adding $comp to $TOOLCHAIN"
        rustup component add "$comp" --toolchain "$TOOLCHAIN"
    fi
done

linker_llvm() {
    ldd "$(command -v bpf-linker)" 2>/dev/null | sed -n 's/.*libLLVM\.so\.\([0-9]*\).*/\1/p' | head -1
}
have=$(bpf-linker --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$BPF_LINKER_VERSION" ] || [ "$(linker_llvm)" != "$LLVM_MAJOR" ]; then
    log "building bpf-linker $BPF_LINKER_VERSION against LLVM $LLVM_MAJOR (about a minute)"
    env PATH="/usr/lib/llvm-$LLVM_MAJOR/bin:$PATH" "LLVM_SYS_${LLVM_MAJOR}1_PREFIX=/usr/lib/llvm-$LLVM_MAJOR" \
        cargo +"$TOOLCHAIN" install bpf-linker --version "=$BPF_LINKER_VERSION" --locked --force \
        --no-default-features --features "llvm-$LLVM_MAJOR"
fi

if ! mountpoint -q /sys/kernel/tracing 2>/dev/null; then
    mount -t tracefs tracefs /sys/kernel/tracing && log "mounted tracefs"
fi

# Python packages of the export check, the notebook and the Community ID check (communityid:
# the spec's reference implementation), from PyPI, pinned, in a virtualenv
# (Debian's python3 stays untouched). `pip install` of what is already there is a no-op.
# DuckDB reads the partitioned export in analyzer/tests/export_dataset.rs and the notebook.
VENV=${JUNO_VENV:-$HOME/.cache/juno/venv}
PY_PACKAGES=(polars==2.1.0 pyarrow==26.0.1 communityid==1.5.0 matplotlib==3.11.2 nbconvert==7.17.2 nbclient==0.11.0 ipykernel==7.4.0
    duckdb==2.0.1)
if [ ! -x "$VENV/bin/python" ]; then
    log "creating the virtualenv $VENV"
    /usr/bin/python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PACKAGES[@]}"

# Dependency policy checks (licenses, bans, sources: deny.toml).
if ! command -v cargo-deny >/dev/null; then
    log "installing cargo-deny"
    cargo install --locked cargo-deny
fi
log "ok"
