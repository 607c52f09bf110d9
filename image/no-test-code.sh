#!/bin/sh
# Fails if a firmware binary carries the test doubles (src/testing/, behind
# the `testing` cargo feature): the feature must be off in a build without
# dev-dependencies (what `make aarch64` does), and text that exists only in
# src/testing/ must be absent from BINARY.
set -eu
bin=${1:?usage: no-test-code.sh BINARY}
cd "$(dirname "$0")/.."
features=$(cargo tree -e no-dev,features -i glory-hole --target aarch64-unknown-linux-musl)
if printf '%s\n' "$features" | grep -q 'feature "testing"'; then
    printf 'no-test-code: the firmware build turns on the testing feature:\n%s\n' "$features" >&2
    exit 1
fi
# Panic messages of the stand-in upstream: kept in any build that links it.
for marker in "stand-in answers always encode" "stand-in: bad name"; do
    grep -rqF "$marker" src/testing/ || {
        echo "no-test-code: '$marker' is no longer in src/testing/; pick another marker" >&2
        exit 1
    }
    if grep -qF "$marker" "$bin"; then
        echo "no-test-code: $bin contains '$marker' from src/testing/" >&2
        exit 1
    fi
done
echo "$bin: no test code (feature \`testing\` off, src/testing/ markers absent)"
