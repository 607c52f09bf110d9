#!/bin/sh
# Prints the stripped size of an aarch64 binary (the number docs/image.md
# quotes; target <= 8 MiB) without touching the build output.
set -eu
bin=${1:?usage: binary-size.sh BINARY}
strip_tool=$(command -v aarch64-linux-gnu-strip || command -v llvm-strip)
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
"$strip_tool" -o "$tmp" "$bin"
bytes=$(stat -c %s "$tmp")
awk -v b="$bytes" -v f="$bin" 'BEGIN { printf "%s: stripped %.2f MiB (%d bytes)\n", f, b / 1048576, b }'
