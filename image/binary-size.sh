#!/bin/sh
# Prints the stripped size of an aarch64 binary (the number docs/image.md
# quotes) without touching the build output, and fails if it is over the
# 9 MiB target (8 MiB until the round that added the SQL table, export,
# the Pi-hole API and the reader's own forwarder: docs/performance.md).
set -eu
bin=${1:?usage: binary-size.sh BINARY}
limit=$((9 * 1048576))
strip_tool=$(command -v aarch64-linux-gnu-strip || command -v llvm-strip)
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
"$strip_tool" -o "$tmp" "$bin"
bytes=$(stat -c %s "$tmp")
awk -v b="$bytes" -v f="$bin" 'BEGIN { printf "%s: stripped %.2f MiB (%d bytes)\n", f, b / 1048576, b }'
if [ "$bytes" -gt "$limit" ]; then
    echo "binary-size: $bin is over the 9 MiB target ($bytes > $limit bytes)" >&2
    exit 1
fi
