#!/bin/sh
# Buildroot post-image script: $1 is BINARIES_DIR. Makes the initramfs and
# the SD card image with the same board/rpi-arm64 scripts as `make image`.
set -eu
binaries=${1:?BINARIES_DIR}
board=$BR2_EXTERNAL_GLORY_HOLE_PATH/../board/rpi-arm64
work=$BUILD_DIR/glory-hole-image
boot=$work/bootfiles

rm -rf "$work"
mkdir -p "$boot"
# Storage drivers are built in (board/linux.fragment): no modules needed.
sh "$board/mkinitramfs.sh" "$TARGET_DIR" - "$boot/initramfs"
grep -v '^#' "$board/firmware.txt" | while read -r f; do
    [ -z "$f" ] || [ ! -e "$binaries/rpi-firmware/$f" ] || cp "$binaries/rpi-firmware/$f" "$boot/"
done
grep -v '^#' "$board/dtbs.txt" | while read -r f; do
    [ -z "$f" ] || cp "$binaries/$f" "$boot/"
done
cp "$binaries/Image.gz" "$boot/vmlinuz"
sh "$board/mkimage.sh" "$boot" "$binaries/rootfs.squashfs" "$binaries" "$work/genimage"
echo "post-image: $binaries/glory-hole-rpi-arm64.img"

# The update bundle, signed as `make image` signs it (post-build.sh put the
# matching .pub into the image): glory-hole itself, run by host-qemu.
repo=$BR2_EXTERNAL_GLORY_HOLE_PATH/..
version=${VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)}
sh "$board/mkbundle.sh" "$binaries" "${RELEASE_KEY:-$repo/keys/dev.key}" "$version" \
    "${MIN_VERSION:-0.1.0}" "$HOST_DIR/bin/qemu-aarch64" "$TARGET_DIR/usr/bin/glory-hole"
