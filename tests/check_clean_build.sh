#!/bin/sh
# The package builds on a clean Debian 12 from its Build-Depends alone:
# in a fresh minbase root (debootstrap), `apt-get build-dep ./` installs
# what debian/control names and `dpkg-buildpackage -us -uc -b` builds
# the .deb, which lintian (the host's) passes. A build dependency missing
# from debian/control fails here, where the developer's host would hide it.
#
# The minbase root is made once with debootstrap (Debian's mirror, or
# CTD_DEBIAN_MIRROR) and kept in the build tree, with the .debs apt
# fetched; each run builds in a throw-away copy of it. Slow (minutes,
# the network): ctest label clean, not part of tests/run.
# Usage: check_clean_build.sh SOURCE_DIR BUILD_DIR
set -eu
src=$1 base=$2/debian12-minbase cache=$2/debian12-apt-cache
mirror=${CTD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
root=$(mktemp -d "$2/clean-build.XXXXXX")

fail() { echo "FAIL: $*"; exit 1; }
for tool in debootstrap lintian; do
	command -v $tool >/dev/null ||
		fail "$tool missing: apt-get install debootstrap lintian"
done

cleanup() {
	umount "$root/var/cache/apt/archives" 2>/dev/null || true
	umount "$root/proc" 2>/dev/null || true
	rm -rf "$root"
}
trap cleanup EXIT

if [ ! -x "$base/usr/bin/apt-get" ]; then
	rm -rf "$base"
	debootstrap --variant=minbase bookworm "$base" "$mirror" \
		> "$2/debian12-minbase.log" 2>&1 ||
		{ tail -20 "$2/debian12-minbase.log"; fail "debootstrap"; }
	echo "deb-src $mirror bookworm main" >> "$base/etc/apt/sources.list"
fi
cp -a "$base/." "$root/"
mkdir -p "$cache/partial" "$root/build/src"
mount --bind "$cache" "$root/var/cache/apt/archives"
mount -t proc proc "$root/proc"
(cd "$src" && git ls-files -co --exclude-standard | tar -cf - -T -) |
	tar -xf - -C "$root/build/src"

in_root() { chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }
in_root apt-get update -qq > "$root/apt.log" 2>&1 ||
	{ tail -20 "$root/apt.log"; fail "apt-get update in the clean root"; }
in_root sh -c 'cd /build/src && apt-get build-dep -y -qq ./' \
	>> "$root/apt.log" 2>&1 ||
	{ tail -20 "$root/apt.log"; fail "apt-get build-dep ./ in the clean root"; }
in_root sh -c 'cd /build/src && dpkg-buildpackage -us -uc -b' \
	> "$root/build.log" 2>&1 ||
	{ tail -30 "$root/build.log"; fail "dpkg-buildpackage in the clean root"; }
deb=$(ls "$root"/build/ctd_*.deb) || fail "no .deb built"
lintian --fail-on error,warning --display-level '>=warning' \
	"$root"/build/ctd_*.changes > "$root/lintian.log" 2>/dev/null ||
	{ cat "$root/lintian.log"; fail "lintian"; }
[ ! -s "$root/lintian.log" ] || { cat "$root/lintian.log"; fail "lintian said something"; }
echo "clean build: $(basename "$deb") built in a fresh Debian 12 minbase root from Build-Depends alone ($(in_root dpkg-query -W -f='${binary:Package}\n' | wc -l) packages installed), lintian clean"
