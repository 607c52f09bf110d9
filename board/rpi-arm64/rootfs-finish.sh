#!/bin/sh
# Finishes a root tree the same way on both build paths: mount points,
# the version this image is, the update keys it accepts, its build time.
#
# usage: rootfs-finish.sh ROOT VERSION PUBKEY...
#   VERSION  e.g. 0.1.0 (up to four numeric parts, docs/update.md)
#   PUBKEY   .pub files whose bundles this image installs
#            (/etc/glory-hole/update-keys/, src/update/keys.rs)
set -eu
root=${1:?usage: rootfs-finish.sh ROOT VERSION PUBKEY...}
version=${2:?}
shift 2
[ $# -gt 0 ] || { echo "rootfs-finish: no update public key given" >&2; exit 1; }
echo "$version" | grep -Eqx '[0-9]+(\.[0-9]+){0,3}' \
    || { echo "rootfs-finish: version '$version' is not up to four numbers a.b.c.d" >&2; exit 1; }

# /data: the data partition; /boot/selector: GH-BOOT, read-write (rcS).
mkdir -p "$root/data" "$root/boot/selector" "$root/etc/glory-hole/update-keys"
echo "$version" >"$root/etc/glory-hole/version"
rm -f "$root"/etc/glory-hole/update-keys/*.pub
for pub in "$@"; do
    case "$pub" in *.pub) ;; *) echo "rootfs-finish: $pub is not a .pub file" >&2; exit 1 ;; esac
    grep -q '^[0-9a-f]\{64\}$' "$pub" || { echo "rootfs-finish: $pub holds no public key" >&2; exit 1; }
    cp "$pub" "$root/etc/glory-hole/update-keys/"
done
# The clock never starts before the image was made (/usr/libexec/glory-hole/clock).
echo "${SOURCE_DATE_EPOCH:-$(date +%s)}" >"$root/etc/glory-hole/build-time"
chmod 0600 "$root/etc/shadow"
