#!/bin/sh
# Installs the host tools that `make image`, `make image-test`, `make aarch64`
# and `make aarch64-test` need. Idempotent: a second run only checks.
set -eu

need=""
have() { command -v "$1" >/dev/null 2>&1; }
want() { have "$1" || need="$need $2"; }

want qemu-aarch64-static qemu-user-static
want qemu-system-aarch64 qemu-system-arm
want mkfs.vfat dosfstools
want mcopy mtools
want mksquashfs squashfs-tools
want mkfs.ext4 e2fsprogs
want sfdisk fdisk
want cpio cpio
want xz xz-utils
want depmod kmod
want readelf binutils
want aarch64-linux-gnu-strip binutils-aarch64-linux-gnu
want genimage genimage
want shellcheck shellcheck
want dig bind9-dnsutils
want curl curl
want python3 python3

if [ -n "$need" ]; then
    echo "image/setup: installing Debian packages:$need"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

if have rustup; then
    rustup target list --installed | grep -qx aarch64-unknown-linux-musl \
        || rustup target add aarch64-unknown-linux-musl
fi
have cargo-zigbuild || pip install --quiet cargo-zigbuild
python3 -c 'import kconfiglib' 2>/dev/null || pip install --quiet kconfiglib
echo "image/setup: ok"
