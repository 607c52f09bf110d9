#!/bin/sh
# Buildroot post-build script: $1 is TARGET_DIR. Finishes the root tree
# the way image/build.sh does for the offline path.
set -eu
target=${1:?TARGET_DIR}

mkdir -p "$target/data"
# The overlay's rcS and inittab replace Buildroot's numbered start scripts.
rm -f "$target"/etc/init.d/S[0-9]*
# The clock never starts before the image was made.
echo "${SOURCE_DATE_EPOCH:-$(date +%s)}" >"$target/etc/glory-hole/build-time"
chmod 0600 "$target/etc/shadow"
