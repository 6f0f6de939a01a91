#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what the tests need, then runs the
# whole suite — unit, property, golden, integration, the privileged recorder suite (root: it
# creates network namespaces and loads eBPF programs), the image and the DaemonSet's container
# (podman), the Zeek conformance run — and lints.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

echo "== format and lints"
cargo fmt --all --check
python3 scripts/check-layers.py
cargo clippy --release --workspace --all-targets --all-features -- -D warnings
cargo deny check licenses bans sources 2>&1 | tail -1

echo "== tests"
cargo test --release --workspace

echo "== tests with overflow checks and debug assertions (profile checked, Cargo.toml)"
cargo test --profile checked -p juno-analyze -p juno-archive -p juno-common --no-default-features

echo "== privileged integration suite (network namespaces, real servers, eBPF)"
./scripts/test-privileged.sh

echo "== the image and the DaemonSet's container (podman; the binaries just built)"
JUNO_BIN_DIR=target/release ./scripts/test-container.sh

echo "== dataframe export from Python (polars, pyarrow, DuckDB) and the notebook"
venv=${JUNO_VENV:-$HOME/.cache/juno/venv}
"$venv/bin/python" scripts/check-export.py target/release/juno-analyze
rm -rf target/notebook-export
target/release/juno-analyze --progress never -q export fixtures/*.pcap fixtures/*.pcap.zst \
    fixtures/*.pcapng.zst --out-dir target/notebook-export
# The notebook's partitioned dataset: two batches, as two nodes (docs/export.md).
rm -rf target/notebook-dataset
target/release/juno-analyze --progress never -q export fixtures/*.pcap --partition-by node,hour \
    --node node-a --out-dir target/notebook-dataset
target/release/juno-analyze --progress never -q export fixtures/*.pcap.zst fixtures/*.pcapng.zst \
    --partition-by node,hour --node node-b --out-dir target/notebook-dataset
JUNO_EXPORT=$PWD/target/notebook-export JUNO_DATASET=$PWD/target/notebook-dataset \
    "$venv/bin/jupyter" nbconvert --to notebook --execute \
    --ExecutePreprocessor.timeout=300 --output-dir target/notebook-run notebooks/explore-export.ipynb

echo "== Zeek conformance (../shared/conformance/score.py)"
out=$(python3 ../shared/conformance/score.py --corpus ../shared/corpus/zeek)
echo "$out" | tail -8
echo "$out" | grep -q '^failed runs: 0$' || { echo "conformance: some runs failed" >&2; exit 1; }
echo "== all passed"
