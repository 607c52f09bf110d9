#!/bin/sh
# Assembles the SD card image offline from Debian arm64 packages (fetched by
# fetch-debs.sh), the static glory-hole binary and the rootfs overlay.
#
# usage: image/build.sh BINARY CACHE_DIR OUT_DIR
# Output in OUT_DIR: glory-hole-rpi-arm64.img (+ .xz), and the pieces the
# update bundle reuses: rootfs.squashfs, boot-a.vfat; sizes.txt.
set -eu

bin=$(realpath "${1:?usage: build.sh BINARY CACHE_DIR OUT_DIR}")
cache=$(realpath -m "${2:?}")
out=$(realpath -m "${3:?}")
repo=$(dirname "$(dirname "$(realpath "$0")")")
board=$repo/board/rpi-arm64
overlay=$repo/buildroot-overlay/rootfs-overlay
deb=$cache/root
work=$out/work

for tool in mksquashfs mkfs.vfat mcopy genimage depmod readelf cpio xz qemu-aarch64-static; do
    command -v "$tool" >/dev/null || { echo "build.sh: $tool missing: run image/setup.sh" >&2; exit 1; }
done
strip_tool=$(command -v aarch64-linux-gnu-strip || command -v llvm-strip || true)
[ -n "$strip_tool" ] || { echo "build.sh: no aarch64 strip: run image/setup.sh" >&2; exit 1; }

kver=$(ls "$deb/lib/modules")
[ "$(echo "$kver" | wc -l)" = 1 ] || { echo "build.sh: expected one kernel in $deb/lib/modules" >&2; exit 1; }
disk_id=676c6f72 # the genimage.cfg disk-signature
rm -rf "$work"
mkdir -p "$work" "$out"

# ---- kernel modules: the list in board/ plus everything they depend on ----
depmod -b "$deb" "$kver"
mods=$work/modules
moddir=lib/modules/$kver
mkdir -p "$mods/$moddir"
grep -v '^#' "$board/modules.txt" | while read -r entry; do
    [ -n "$entry" ] || continue
    path=$deb/$moddir/kernel/$entry
    [ -e "$path" ] || { echo "build.sh: board/rpi-arm64/modules.txt: $entry not in kernel $kver" >&2; exit 1; }
    find "$path" -name '*.ko' | sed "s|^$deb/$moddir/||"
done >"$work/modules.wanted"
# modules.dep lines are "kernel/a.ko: kernel/b.ko kernel/c.ko".
awk -F': *' 'NR==FNR { want[$1] = 1; next }
    ($1 in want) { print $1; n = split($2, d, " "); for (i = 1; i <= n; i++) print d[i] }' \
    "$work/modules.wanted" "$deb/$moddir/modules.dep" | sort -u >"$work/modules.list"
while read -r m; do
    mkdir -p "$mods/$moddir/$(dirname "$m")"
    cp "$deb/$moddir/$m" "$mods/$moddir/$m"
done <"$work/modules.list"
cp "$deb/$moddir/modules.builtin" "$deb/$moddir/modules.builtin.modinfo" \
    "$deb/$moddir/modules.order" "$mods/$moddir/"
depmod -b "$mods" "$kver"

# ---- busybox with its applet links ----
install_busybox() {
    mkdir -p "$1/bin" "$1/sbin" "$1/usr/bin" "$1/usr/sbin"
    cp "$deb/bin/busybox" "$1/bin/busybox"
    qemu-aarch64-static "$deb/bin/busybox" --list-full | while read -r applet; do
        [ -e "$1/$applet" ] || ln -s /bin/busybox "$1/$applet"
    done
}

# Copies dynamically linked Debian programs with the libraries they need.
install_with_libs() {
    dest=$1
    shift
    for prog in "$@"; do
        mkdir -p "$dest/$(dirname "$prog")"
        rm -f "$dest/$prog"
        cp "$deb/$prog" "$dest/$prog"
    done
    mkdir -p "$dest/lib/aarch64-linux-gnu"
    cp "$deb/lib/ld-linux-aarch64.so.1" "$dest/lib/" 2>/dev/null \
        || cp -L "$deb/usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1" "$dest/lib/"
    todo=$*
    while [ -n "$todo" ]; do
        next=""
        for f in $todo; do
            for lib in $(readelf -d "$dest/$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
                [ -e "$dest/lib/aarch64-linux-gnu/$lib" ] && continue
                src=""
                for d in lib/aarch64-linux-gnu usr/lib/aarch64-linux-gnu; do
                    [ -e "$deb/$d/$lib" ] && src=$deb/$d/$lib && break
                done
                [ -n "$src" ] || { echo "build.sh: $f needs $lib, not in the fetched packages" >&2; exit 1; }
                cp -L "$src" "$dest/lib/aarch64-linux-gnu/$lib"
                next="$next lib/aarch64-linux-gnu/$lib"
            done
        done
        todo=$next
    done
}

# ---- initramfs: finds the disk, makes/checks the data partition ----
initrd=$work/initramfs
mkdir -p "$initrd/proc" "$initrd/sys" "$initrd/dev" "$initrd/newroot" "$initrd/boot" "$initrd/etc"
install_busybox "$initrd"
install_with_libs "$initrd" sbin/sfdisk sbin/mke2fs sbin/e2fsck
cp "$deb/etc/mke2fs.conf" "$overlay/etc/mdev.conf" "$initrd/etc/"
cp -a "$mods/lib" "$initrd/"
install -m 0755 "$board/initramfs-init" "$initrd/init"
(cd "$initrd" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) \
    | xz -6 --check=crc32 >"$work/initramfs.xz"

# ---- root filesystem: busybox, glory-hole, modules, overlay ----
rootfs=$work/rootfs
mkdir -p "$rootfs"
for d in proc sys dev run tmp data root; do mkdir -p "$rootfs/$d"; done
ln -s /run "$rootfs/var"
install_busybox "$rootfs"
cp -a "$mods/lib" "$rootfs/"
cp -a "$overlay/." "$rootfs/"
mkdir -p "$rootfs/usr/bin"
"$strip_tool" -o "$rootfs/usr/bin/glory-hole" "$bin"
chmod 0755 "$rootfs/usr/bin/glory-hole"
# The clock never starts before the image was made (see /usr/libexec/glory-hole/clock).
echo "${SOURCE_DATE_EPOCH:-$(date +%s)}" >"$rootfs/etc/glory-hole/build-time"
chmod 0600 "$rootfs/etc/shadow"
mksquashfs "$rootfs" "$work/rootfs.squashfs" -comp xz -b 256K -all-root -noappend -quiet >/dev/null

# ---- boot partitions ----
bootfiles=$work/bootfiles
mkdir -p "$bootfiles"
grep -v '^#' "$board/firmware.txt" | while read -r f; do
    [ -n "$f" ] && cp "$deb/usr/lib/raspi-firmware/$f" "$bootfiles/"
done
grep -v '^#' "$board/dtbs.txt" | while read -r f; do
    [ -n "$f" ] && cp "$deb/usr/lib/linux-image-$kver/broadcom/$f" "$bootfiles/"
done
# The Pi firmware and QEMU both load a gzip-compressed arm64 Image.
gzip -9n <"$deb/boot/vmlinuz-$kver" >"$bootfiles/vmlinuz"
cp "$work/initramfs.xz" "$bootfiles/initramfs"
sed -e 's/@KERNEL@/vmlinuz/' -e 's/@INITRD@/initramfs/' "$board/config.txt" >"$bootfiles/config.txt"

# make_vfat IMAGE LABEL ROOT_PART [EXTRA_FILE...]
make_vfat() {
    img=$1 label=$2 rootpart=$3
    shift 3
    rm -f "$img"
    mkfs.vfat -C -n "$label" "$img" $((32 * 1024)) >/dev/null
    sed -e "s/@DISKID@/$disk_id/g" -e "s/@ROOTPART@/$rootpart/" "$board/cmdline.txt" >"$work/cmdline.txt"
    mcopy -i "$img" "$bootfiles"/* "$work/cmdline.txt" "$@" ::
}
gi=$work/genimage
mkdir -p "$gi/in" "$gi/root"
make_vfat "$gi/in/bootsel.vfat" GH-BOOT 05 "$board/autoboot.txt"
make_vfat "$gi/in/boot-a.vfat" GH-BOOT-A 05
rm -f "$gi/in/boot-b.vfat"
mkfs.vfat -C -n GH-BOOT-B "$gi/in/boot-b.vfat" $((32 * 1024)) >/dev/null
cp "$work/rootfs.squashfs" "$gi/in/"
genimage --config "$board/genimage.cfg" --inputpath "$gi/in" --outputpath "$out" \
    --tmppath "$gi/tmp" --rootpath "$gi/root" >"$work/genimage.log" 2>&1 \
    || { cat "$work/genimage.log" >&2; exit 1; }
img=$out/glory-hole-rpi-arm64.img
cp "$work/rootfs.squashfs" "$gi/in/boot-a.vfat" "$out/"
# The QEMU test boots these directly (-kernel/-initrd).
cp "$bootfiles/vmlinuz" "$work/initramfs.xz" "$out/"
xz -T0 -6 -k -f "$img"

size() { stat -c %s "$1"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
{
    echo "kernel:           $kver"
    echo "binary stripped:  $(mib "$(size "$rootfs/usr/bin/glory-hole")") ($(size "$rootfs/usr/bin/glory-hole") bytes)"
    echo "root filesystem:  $(mib "$(size "$out/rootfs.squashfs")") (squashfs xz, $(size "$out/rootfs.squashfs") bytes)"
    echo "initramfs:        $(mib "$(size "$work/initramfs.xz")")"
    echo "kernel (gzip):    $(mib "$(size "$bootfiles/vmlinuz")")"
    echo "whole image:      $(mib "$(size "$img")") ($(size "$img") bytes, before first-boot growth)"
    echo "image .xz:        $(mib "$(size "$img.xz")")"
} | tee "$out/sizes.txt"
