#!/bin/sh
# Buildroot post-build script: $1 is TARGET_DIR. Finishes the root tree
# the way image/build.sh does for the offline path.
set -eu
target=${1:?TARGET_DIR}

board=$BR2_EXTERNAL_GLORY_HOLE_PATH/../board/rpi-arm64
repo=$BR2_EXTERNAL_GLORY_HOLE_PATH/..

# The overlay's rcS and inittab replace Buildroot's numbered start scripts.
rm -f "$target"/etc/init.d/S[0-9]*
# Version and accepted update keys as `make image` has them: the
# development key unless RELEASE_KEY names a release key (its .pub beside it).
version=${VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)}
key=${RELEASE_KEY:-$repo/keys/dev.key}
sh "$board/rootfs-finish.sh" "$target" "$version" "${key%.key}.pub"
