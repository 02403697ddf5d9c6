#!/bin/sh
# `cmake --install` puts every file an admin needs where the unit and the
# man pages say, and never overwrites an edited /etc/ctd/ctd.conf.
# Usage: check_install.sh SOURCE_DIR
set -eu
src=$1 tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake -S "$src" -B "$tmp/build" -DCMAKE_INSTALL_PREFIX=/usr -DCTD_TESTS=OFF >/dev/null
cmake --build "$tmp/build" -j "$(nproc)" >/dev/null
DESTDIR="$tmp/root" cmake --install "$tmp/build" >/dev/null
for f in usr/sbin/ctd usr/share/man/man8/ctd.8 usr/share/man/man5/ctd.conf.5 \
	 usr/lib/systemd/system/ctd.service etc/ctd/ctd.conf \
	 usr/share/bash-completion/completions/ctd usr/share/doc/ctd/README.md \
	 usr/share/doc/ctd/json-records.md usr/share/doc/ctd/examples/kafka.conf \
	 usr/share/doc/ctd/examples/ipfix-pmacct.conf usr/share/doc/ctd/examples/filters.conf \
	 usr/share/doc/ctd/examples/conntrackd-migration.conf; do
	[ -s "$tmp/root/$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done
"$tmp/root/usr/sbin/ctd" -t -c "$tmp/root/etc/ctd/ctd.conf" >/dev/null
grep -q '^ExecStart=/usr/sbin/ctd$' "$tmp/root/usr/lib/systemd/system/ctd.service" || {
	echo "FAIL: the unit does not start /usr/sbin/ctd"
	exit 1
}
"$tmp/root/usr/sbin/ctd" --help | grep -Fq "(default /etc/ctd/ctd.conf;" || {
	echo "FAIL: a /usr install does not read /etc/ctd/ctd.conf"
	exit 1
}
bash -c ". /usr/share/bash-completion/bash_completion 2>/dev/null; \
	. '$tmp/root/usr/share/bash-completion/completions/ctd' && complete -p ctd" \
	>/dev/null || { echo "FAIL: the bash completion does not load"; exit 1; }
echo "rcvbuf 16M" > "$tmp/root/etc/ctd/ctd.conf"
DESTDIR="$tmp/root" cmake --install "$tmp/build" >/dev/null
[ "$(cat "$tmp/root/etc/ctd/ctd.conf")" = "rcvbuf 16M" ] || {
	echo "FAIL: install overwrote an edited ctd.conf"
	exit 1
}
for page in ctd.8 ctd.conf.5; do
	man -l "$tmp/root/usr/share/man/man"*/"$page" >/dev/null 2>"$tmp/err" || true
	[ ! -s "$tmp/err" ] || { echo "FAIL: man $page: $(cat "$tmp/err")"; exit 1; }
done
echo "installed: ctd, unit, man pages, completion, docs, ctd.conf (kept when edited)"
