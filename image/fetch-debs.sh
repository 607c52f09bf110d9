#!/bin/sh
# Downloads the Debian arm64 packages the image is assembled from into
# $CACHE/debs and unpacks each into $CACHE/root. Uses a private apt state
# (its own sources, lists and architecture) so the host's apt is untouched;
# a second run with everything cached does no network I/O.
#
# usage: image/fetch-debs.sh CACHE_DIR
set -eu

cache=$(realpath -m "${1:?usage: fetch-debs.sh CACHE_DIR}")
here=$(dirname "$(realpath "$0")")
suite=bookworm
# Kept in one file so the image and the docs name the same package set.
packages=$(grep -v '^#' "$here/packages.txt" | tr '\n' ' ')

apt_dir=$cache/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" \
    "$apt_dir/etc/preferences.d" "$cache/debs" "$cache/root"
cat >"$apt_dir/etc/sources.list" <<EOF
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main non-free-firmware
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security $suite-security main non-free-firmware
EOF
: >"$apt_dir/status"

apt_opts="-o Dir::Etc::SourceList=$apt_dir/etc/sources.list
 -o Dir::Etc::SourceParts=/nonexistent -o Dir::Etc::PreferencesParts=$apt_dir/etc/preferences.d
 -o Dir::State=$apt_dir -o Dir::State::Lists=$apt_dir/lists -o Dir::State::status=$apt_dir/status
 -o Dir::Cache=$apt_dir -o Dir::Cache::archives=$apt_dir/archives
 -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Debug::NoLocking=1 -o APT::Sandbox::User=root"

stamp=$cache/debs/.fetched
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$packages" ]; then
    echo "fetch-debs: cached ($cache/debs)"
    exit 0
fi

# shellcheck disable=SC2086
apt-get $apt_opts -qq update
# linux-image-arm64 is a metapackage: resolve it to the versioned kernel.
# shellcheck disable=SC2086
kernel=$(apt-cache $apt_opts depends linux-image-arm64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kernel" ] || { echo "fetch-debs: cannot resolve linux-image-arm64" >&2; exit 1; }
echo "fetch-debs: kernel package $kernel"

cd "$cache/debs"
rm -f ./*.deb
# shellcheck disable=SC2086
apt-get $apt_opts -qq download $kernel $packages
rm -rf "$cache/root"
mkdir -p "$cache/root"
for deb in ./*.deb; do
    dpkg-deb -x "$deb" "$cache/root"
done
echo "$packages" >"$stamp"
ls -1 "$cache/debs"
