#!/bin/sh
# Lays out the SD card image from a directory of boot files and a root
# filesystem image, by genimage.cfg. Used by both build paths.
#
# usage: mkimage.sh BOOTFILES ROOTFS OUT_DIR WORK_DIR
#   BOOTFILES  firmware, DTBs, vmlinuz, initramfs (config.txt is written
#              here from this directory's template)
#   ROOTFS     the squashfs root filesystem
#   OUT_DIR    gets glory-hole-rpi-arm64.img and the update bundle's boot
#              images boot-a.vfat and boot-b.vfat (each slot's cmdline.txt
#              names its own root partition)
set -eu

boot=$(realpath "${1:?usage: mkimage.sh BOOTFILES ROOTFS OUT_DIR WORK_DIR}")
rootfs=$(realpath "${2:?}")
out=$(realpath -m "${3:?}")
work=$(realpath -m "${4:?}")
here=$(dirname "$(realpath "$0")")
# Must match disk-signature in genimage.cfg.
disk_id=676c6f72
boot_mib=32
# The selector holds the firmware and two slots' kernels for the Pi 3.
selector_mib=64

rm -rf "$work/in" "$work/tmp" "$work/root" "$work/os"
mkdir -p "$work/in" "$work/root" "$work/os" "$out"
sed -e 's/@KERNEL@/vmlinuz/' -e 's/@INITRD@/initramfs/' "$here/config.txt" >"$boot/config.txt"
rm -f "$boot/cmdline.txt"

# The firmware (firmware.txt) and the slot's own files (everything else).
firmware=$(grep -v '^#' "$here/firmware.txt" | sed '/^$/d')
for f in "$boot"/*; do
    name=${f##*/}
    echo "$firmware" | grep -qx "$name" || cp "$f" "$work/os/"
done

# cmdline ROOT_PARTITION: writes $work/cmdline.txt naming that root.
cmdline() {
    sed -e "s/@DISKID@/$disk_id/g" -e "s/@ROOTPART@/$1/" "$here/cmdline.txt" >"$work/cmdline.txt"
}
# make_vfat IMAGE LABEL MIB: an empty FAT image.
make_vfat() {
    rm -f "$1"
    mkfs.vfat -C -n "$2" "$1" $(($3 * 1024)) >/dev/null
}

# Boot slots A and B: firmware, config.txt, kernel, initramfs, DTBs and
# the cmdline.txt naming the slot's root (5 or 6).
for slot in A:05 B:06; do
    cmdline "${slot#*:}"
    img=$work/boot-$(echo "${slot%:*}" | tr '[:upper:]' '[:lower:]').vfat
    make_vfat "$img" "GH-BOOT-${slot%:*}" $boot_mib
    mcopy -i "$img" "$boot"/* "$work/cmdline.txt" ::
done

# The selector: autoboot.txt for the Pi 4/5 bootloader; for the Pi 3 /
# Zero 2 W firmware, which reads partition 1 only, the firmware files,
# config.txt (slot A) and tryboot.txt (slot B), and slot A's files in
# slot-a/. The updater copies slot B's there when it installs one.
cmdline 05
sel=$work/in/bootsel.vfat
make_vfat "$sel" GH-BOOT $selector_mib
for f in $firmware; do
    [ ! -e "$boot/$f" ] || mcopy -i "$sel" "$boot/$f" ::
done
mcopy -i "$sel" "$here/autoboot.txt" ::autoboot.txt
mcopy -i "$sel" "$here/selector-config.txt" ::config.txt
mcopy -i "$sel" "$here/selector-tryboot.txt" ::tryboot.txt
mmd -i "$sel" ::slot-a
mcopy -i "$sel" "$work/os"/* "$work/cmdline.txt" ::slot-a/

cp "$work/boot-a.vfat" "$work/in/boot-a.vfat"
make_vfat "$work/in/boot-b-empty.vfat" GH-BOOT-B $boot_mib
cp "$rootfs" "$work/in/rootfs.squashfs"

genimage --config "$here/genimage.cfg" --inputpath "$work/in" --outputpath "$out" \
    --tmppath "$work/tmp" --rootpath "$work/root" >"$work/genimage.log" 2>&1 \
    || { cat "$work/genimage.log" >&2; exit 1; }
cp "$work/boot-a.vfat" "$work/boot-b.vfat" "$out/"
