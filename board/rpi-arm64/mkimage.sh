#!/bin/sh
# Lays out the SD card image from a directory of boot files and a root
# filesystem image, by genimage.cfg. Used by both build paths.
#
# usage: mkimage.sh BOOTFILES ROOTFS OUT_DIR WORK_DIR
#   BOOTFILES  firmware, DTBs, vmlinuz, initramfs (config.txt and
#              cmdline.txt are written here from this directory's templates)
#   ROOTFS     the squashfs root filesystem
#   OUT_DIR    gets glory-hole-rpi-arm64.img and boot-a.vfat
set -eu

boot=$(realpath "${1:?usage: mkimage.sh BOOTFILES ROOTFS OUT_DIR WORK_DIR}")
rootfs=$(realpath "${2:?}")
out=$(realpath -m "${3:?}")
work=$(realpath -m "${4:?}")
here=$(dirname "$(realpath "$0")")
# Must match disk-signature in genimage.cfg.
disk_id=676c6f72
boot_mib=32

rm -rf "$work/in" "$work/tmp" "$work/root"
mkdir -p "$work/in" "$work/root" "$out"
sed -e 's/@KERNEL@/vmlinuz/' -e 's/@INITRD@/initramfs/' "$here/config.txt" >"$boot/config.txt"
rm -f "$boot/cmdline.txt"

# make_vfat IMAGE LABEL ROOT_PARTITION [EXTRA_FILE...]
make_vfat() {
    img=$1 label=$2 rootpart=$3
    shift 3
    rm -f "$img"
    mkfs.vfat -C -n "$label" "$img" $((boot_mib * 1024)) >/dev/null
    sed -e "s/@DISKID@/$disk_id/g" -e "s/@ROOTPART@/$rootpart/" "$here/cmdline.txt" \
        >"$work/cmdline.txt"
    mcopy -i "$img" "$boot"/* "$work/cmdline.txt" "$@" ::
}
# Slot A's files in the selector too: Pi 3 and Zero 2 W boot from p1 only.
make_vfat "$work/in/bootsel.vfat" GH-BOOT 05 "$here/autoboot.txt"
make_vfat "$work/in/boot-a.vfat" GH-BOOT-A 05
rm -f "$work/in/boot-b.vfat"
mkfs.vfat -C -n GH-BOOT-B "$work/in/boot-b.vfat" $((boot_mib * 1024)) >/dev/null
cp "$rootfs" "$work/in/rootfs.squashfs"

genimage --config "$here/genimage.cfg" --inputpath "$work/in" --outputpath "$out" \
    --tmppath "$work/tmp" --rootpath "$work/root" >"$work/genimage.log" 2>&1 \
    || { cat "$work/genimage.log" >&2; exit 1; }
cp "$work/in/boot-a.vfat" "$out/"
