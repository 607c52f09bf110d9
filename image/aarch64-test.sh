#!/bin/sh
# Runs the static aarch64 binary under qemu-aarch64-static with a config
# like the embedded default (DNS on 127.0.0.1:1053) plus one local record,
# and asks it for that record: an answer the binary makes itself, so no
# upstream (no internet) is needed.
set -eu
bin=$(realpath "${1:?usage: aarch64-test.sh BINARY}")
work=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

qemu-aarch64-static "$bin" --version
cat >"$work/config.toml" <<EOT
data_dir = "$work/data"
[dns]
listen = ["127.0.0.1:1053"]
[[local.records]]
name = "probe.lan"
type = "A"
value = "192.0.2.53"
[web]
enabled = false
EOT
qemu-aarch64-static "$bin" --config "$work/config.toml" >"$work/log" 2>&1 &
pid=$!

tries=0
until answer=$(dig +time=1 +tries=1 +short @127.0.0.1 -p 1053 probe.lan A 2>/dev/null) && [ -n "$answer" ]; do
    tries=$((tries + 1))
    if [ $tries -gt 60 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "aarch64-test: no answer from the aarch64 binary; its log:" >&2
        cat "$work/log" >&2
        echo "0 passed, 1 failed"
        exit 1
    fi
    sleep 0.5
done
echo "aarch64-test: probe.lan A -> $answer (from the aarch64 binary under qemu-aarch64-static)"
if [ "$answer" != "192.0.2.53" ]; then
    echo "0 passed, 1 failed"
    exit 1
fi
sh "$(dirname "$0")/binary-size.sh" "$bin"
echo "1 passed, 0 failed"
