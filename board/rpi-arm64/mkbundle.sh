#!/bin/sh
# Writes the update bundle from an image build's outputs: slot A's and
# slot B's boot images and the root squashfs, signed (docs/update.md).
#
# usage: mkbundle.sh OUT_DIR KEY VERSION MIN_VERSION GLORY_HOLE...
#   OUT_DIR      holds boot-a.vfat, boot-b.vfat, rootfs.squashfs (mkimage.sh)
#   KEY          the signing key (.key); its .pub must be in the image
#   GLORY_HOLE   how to run glory-hole on this host, e.g.
#                `qemu-aarch64-static target/.../glory-hole`
# Writes OUT_DIR/glory-hole-VERSION-rpi-arm64.ghb.
set -eu
out=$(realpath "${1:?usage: mkbundle.sh OUT_DIR KEY VERSION MIN_VERSION GLORY_HOLE...}")
key=${2:?}
version=${3:?}
min_version=${4:?}
shift 4
[ $# -gt 0 ] || { echo "mkbundle: how to run glory-hole?" >&2; exit 1; }
bundle=$out/glory-hole-$version-rpi-arm64.ghb
repo=$(dirname "$(dirname "$(dirname "$(realpath "$0")")")")
# The one secret key allowed in the repository is the marked development key.
case "$(realpath "$key")" in
    "$repo/keys/dev.key") ;;
    "$repo"/*) echo "mkbundle: $key is inside the repository; release keys never enter it (docs/update.md)" >&2; exit 1 ;;
esac
[ -f "${key%.key}.pub" ] || { echo "mkbundle: ${key%.key}.pub (the public half, put into the image) is missing" >&2; exit 1; }

"$@" bundle create --key "$key" --version "$version" --min-version "$min_version" \
    --board rpi-arm64 --root "$out/rootfs.squashfs" \
    --payload "boot-a=$out/boot-a.vfat" --payload "boot-b=$out/boot-b.vfat" -o "$bundle"
"$@" bundle verify --pubkey "${key%.key}.pub" --board rpi-arm64 --running "$min_version" "$bundle"
