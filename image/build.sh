#!/bin/sh
# Assembles the SD card image offline from Debian arm64 packages (fetched by
# fetch-debs.sh), the static glory-hole binary and the rootfs overlay.
#
# usage: image/build.sh BINARY CACHE_DIR OUT_DIR
# Environment:
#   VERSION       the image's version (default: the crate's)
#   UPDATE_PUBKEYS  .pub files of the keys whose bundles it installs
#                 (default: the development key, keys/dev.pub)
#   GH_TEST_UNHEALTHY=1  a test image whose glory-hole never starts, for
#                 the roll-back check of image/update-test.py; never shipped.
#                 Nothing ever commits its trial boot, so its trial guard
#                 waits GH_TEST_TRIAL_DEADLINE seconds (default 20) instead
#                 of the shipped 150 before it restarts into the committed slot
# Output in OUT_DIR: glory-hole-rpi-arm64.img (+ .xz), the pieces the update
# bundle is made of (rootfs.squashfs, boot-a.vfat, boot-b.vfat) and sizes.txt.
set -eu

bin=$(realpath "${1:?usage: build.sh BINARY CACHE_DIR OUT_DIR}")
cache=$(realpath -m "${2:?}")
out=$(realpath -m "${3:?}")
repo=$(dirname "$(dirname "$(realpath "$0")")")
board=$repo/board/rpi-arm64
overlay=$repo/buildroot-overlay/rootfs-overlay
deb=$cache/root
work=$out/work
version=${VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)}
pubkeys=${UPDATE_PUBKEYS:-$repo/keys/dev.pub}

for tool in mksquashfs mkfs.vfat mcopy genimage depmod readelf cpio xz qemu-aarch64-static; do
    command -v "$tool" >/dev/null || { echo "build.sh: $tool missing: run image/setup.sh" >&2; exit 1; }
done
strip_tool=$(command -v aarch64-linux-gnu-strip || command -v llvm-strip || true)
[ -n "$strip_tool" ] || { echo "build.sh: no aarch64 strip: run image/setup.sh" >&2; exit 1; }

kver=$(ls "$deb/lib/modules")
[ "$(echo "$kver" | wc -l)" = 1 ] || { echo "build.sh: expected one kernel in $deb/lib/modules" >&2; exit 1; }
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

# ---- initramfs: finds the disk, makes/checks the data partition ----
sh "$board/mkinitramfs.sh" "$deb" "$mods" "$work/initramfs.xz"

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
# The appliance config must be one this very binary accepts.
qemu-aarch64-static "$bin" check-config "$overlay/etc/glory-hole/config.toml" >/dev/null
chmod 0755 "$rootfs/usr/bin/glory-hole"
# shellcheck disable=SC2086 # a list of files
sh "$board/rootfs-finish.sh" "$rootfs" "$version" $pubkeys
if [ "${GH_TEST_UNHEALTHY:-0}" = 1 ]; then
    echo "build.sh: TEST IMAGE: glory-hole is never started (GH_TEST_UNHEALTHY=1)" >&2
    printf '#!/bin/sh\nlogger -t glory-hole-run "test image: glory-hole not started"\nexec sleep 100000\n' \
        >"$rootfs/usr/libexec/glory-hole/run"
    # The same guard, the same restart; only the wait for a commit that
    # cannot come is shorter (2 minutes of CI saved).
    deadline=${GH_TEST_TRIAL_DEADLINE:-20}
    sed -i "s|^::once:/usr/libexec/glory-hole/trial-guard\$|& $deadline|" "$rootfs/etc/inittab"
    grep -q "^::once:/usr/libexec/glory-hole/trial-guard $deadline\$" "$rootfs/etc/inittab" || {
        echo "build.sh: the trial guard's line in etc/inittab was not found" >&2
        exit 1
    }
fi
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
sh "$board/mkimage.sh" "$bootfiles" "$work/rootfs.squashfs" "$out" "$work/genimage"
img=$out/glory-hole-rpi-arm64.img
cp "$work/rootfs.squashfs" "$out/"
# GH_IMAGE_XZ=0 skips the slowest step while iterating on the image.
if [ "${GH_IMAGE_XZ:-1}" != 0 ]; then
    xz -T0 -6 -k -f "$img"
else
    rm -f "$img.xz"
fi

size() { stat -c %s "$1"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
{
    echo "version:          $version"
    echo "kernel:           $kver"
    echo "binary stripped:  $(mib "$(size "$rootfs/usr/bin/glory-hole")") ($(size "$rootfs/usr/bin/glory-hole") bytes)"
    echo "root filesystem:  $(mib "$(size "$out/rootfs.squashfs")") (squashfs xz, $(size "$out/rootfs.squashfs") bytes)"
    echo "initramfs:        $(mib "$(size "$work/initramfs.xz")")"
    echo "kernel (gzip):    $(mib "$(size "$bootfiles/vmlinuz")")"
    echo "whole image:      $(mib "$(size "$img")") ($(size "$img") bytes, before first-boot growth)"
    [ ! -f "$img.xz" ] || echo "image .xz:        $(mib "$(size "$img.xz")")"
} | tee "$out/sizes.txt"
