#!/bin/sh
# Makes the initramfs (board/rpi-arm64/initramfs-init and the tools it
# calls) from an arm64 root tree. Used by both build paths: the offline
# builder passes the unpacked Debian packages, Buildroot its TARGET_DIR.
#
# usage: mkinitramfs.sh ROOT MODULES_ROOT OUT
#   ROOT          tree with bin/busybox, sbin/sfdisk, sbin/mke2fs, sbin/e2fsck
#                 and their libraries
#   MODULES_ROOT  tree whose lib/modules/ goes in as is ("-" for none: a
#                 kernel with the storage drivers built in)
#   OUT           the xz-compressed cpio archive to write
set -eu

root=$(realpath "${1:?usage: mkinitramfs.sh ROOT MODULES_ROOT OUT}")
mods=${2:?}
out=$(realpath -m "${3:?}")
here=$(dirname "$(realpath "$0")")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# What initramfs-init runs, plus a little for the rescue shell.
applets="sh mount umount mkdir cat cp sed sort xargs find modprobe dd od tr
sleep blockdev setsid cttyhack switch_root ls dmesg"
tools="sbin/sfdisk sbin/mke2fs sbin/e2fsck"

mkdir -p "$work/bin" "$work/sbin" "$work/proc" "$work/sys" "$work/dev" \
    "$work/newroot" "$work/boot" "$work/etc"
cp "$root/bin/busybox" "$work/bin/busybox"
for a in $applets; do
    ln -s busybox "$work/bin/$a"
done
# The kernel runs /sbin/modprobe itself for what it needs on demand
# (crc32c for ext4, the FAT character sets).
ln -s ../bin/busybox "$work/sbin/modprobe"

# Copies a file from ROOT, following symlinks, to the same path.
take() {
    mkdir -p "$work/$(dirname "$1")"
    cp -L "$root/$1" "$work/$1"
}
# The shared libraries a program needs, found under ROOT like ld.so would.
find_lib() {
    for d in lib/aarch64-linux-gnu usr/lib/aarch64-linux-gnu lib64 usr/lib64 lib usr/lib; do
        [ -e "$root/$d/$1" ] && { echo "$d/$1"; return 0; }
    done
    return 1
}
todo=""
for t in $tools; do
    take "$t"
    todo="$todo $t"
done
interp=$(readelf -l "$root/sbin/sfdisk" | sed -n 's/.*interpreter: \/\(.*\)\]/\1/p')
[ -z "$interp" ] || take "$interp"
while [ -n "$todo" ]; do
    next=""
    for f in $todo; do
        for lib in $(readelf -d "$work/$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
            path=$(find_lib "$lib") || { echo "mkinitramfs: $f needs $lib, not under $root" >&2; exit 1; }
            [ -e "$work/$path" ] && continue
            take "$path"
            next="$next $path"
        done
    done
    todo=$next
done

[ ! -f "$root/etc/mke2fs.conf" ] || cp "$root/etc/mke2fs.conf" "$work/etc/"
if [ "$mods" != - ]; then
    mkdir -p "$work/lib"
    cp -a "$mods/lib/modules" "$work/lib/"
fi
install -m 0755 "$here/initramfs-init" "$work/init"

(cd "$work" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) \
    | xz -6 --check=crc32 >"$out"
