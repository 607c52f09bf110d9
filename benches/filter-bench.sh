#!/bin/sh
# Filter benchmarks side by side with unbound and dnsmasq (docs/performance.md).
# Usage: benches/filter-bench.sh [--quick]
# Needs unbound and dnsmasq (installed by .ci/setup); all servers run as
# foreground processes on loopback high ports and are stopped afterwards.
# Builds the release server first: its whole-process memory with every list
# loaded is measured too.
set -eu
cd "$(dirname "$0")/.."
for tool in unbound dnsmasq; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
        echo "filter-bench: $tool is missing; run .ci/setup" >&2
        exit 1
    }
done
cargo build --release --bin glory-hole
# A copy: `cargo bench` relinks target/release/glory-hole with its own profile.
mkdir -p target/filter-bench
cp target/release/glory-hole target/filter-bench/glory-hole
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d)"
GLORY_HOLE_BIN=target/filter-bench/glory-hole exec cargo bench --bench filter -- "$@"
