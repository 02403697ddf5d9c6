#!/bin/sh
# The Debian package: `dpkg-buildpackage -us -uc -b` builds it from a
# clean copy of the source, lintian finds no error or warning, and
# installed with dpkg -i into a fresh Debian 12 root it has its system
# user, conffile, enabled unit, logrotate file, completion, man pages
# and docs; `ctd -t` passes there (as root and as ctd), ctd runs there as
# ctd with CAP_NET_ADMIN alone (as the unit runs it) and writes a record
# of a flow made in a namespace; an edited conffile survives a reinstall,
# and a purge leaves nothing behind. The conffile is root:ctd 0640, the
# records ctd:adm 0640, logrotate caps size besides age and signals the
# main process, README.Debian says where records live and what purge
# deletes, the examples are installed.
#
# The root is made once with debootstrap (Debian's mirror, or
# CTD_DEBIAN_MIRROR) and kept outside the build tree, in
# CTD_TEST_CACHE (default /var/cache/ctd-tests), so a fresh clone does
# not debootstrap again; it is made anew when it lacks a dependency the
# package has, and each run removes what it installed. The package is
# built with a job per CPU. Usage: check_package.sh SOURCE_DIR BUILD_DIR
set -eu
cache=${CTD_TEST_CACHE:-/var/cache/ctd-tests}
mkdir -p -m 0700 "$cache"
src=$1 work=$2/package root=$cache/debian12-root
mirror=${CTD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ns=ctdpkg-$$

fail() { echo "FAIL: $*"; exit 1; }
for tool in dpkg-buildpackage dh lintian debootstrap; do
	command -v $tool >/dev/null ||
		fail "$tool missing: apt-get install dpkg-dev debhelper lintian debootstrap"
done

cleanup() {
	ip netns del "$ns" 2>/dev/null || true
	umount "$root/proc" 2>/dev/null || true
	chroot "$root" dpkg --purge ctd >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Build-Depends names the package of every pkg-config module and library
# CMakeLists.txt asks for, so the package builds on a clean Debian 12, not
# only where the developer's host already had them.
bdeps=$(sed -n '/^Build-Depends:/,/^[A-Z]/p' "$src/debian/control")
for pc in $(sed -n 's/^pkg_check_modules([A-Z]* REQUIRED IMPORTED_TARGET \([^ )]*\)).*/\1/p' \
		"$src/CMakeLists.txt"); do
	pkg=$(dpkg -S "$pc.pc" 2>/dev/null | grep "/pkgconfig/$pc.pc$" | head -1 | cut -d: -f1)
	[ -n "$pkg" ] || fail "no installed package ships $pc.pc"
	echo "$bdeps" | grep -qw "$pkg" || fail "debian/control Build-Depends lacks $pkg ($pc)"
done
echo "$bdeps" | grep -qw libev-dev || fail "debian/control Build-Depends lacks libev-dev"

# Build from the files git knows (committed or not), not the build trees.
rm -rf "$work"
mkdir -p "$work/src"
(cd "$src" && git ls-files -co --exclude-standard | tar -cf - -T -) |
	tar -xf - -C "$work/src"
(cd "$work/src" && DEB_BUILD_OPTIONS="parallel=$(nproc)" \
	dpkg-buildpackage -us -uc -b) > "$work/build.log" 2>&1 ||
	{ tail -30 "$work/build.log"; fail "dpkg-buildpackage failed"; }
deb=$(ls "$work"/ctd_*.deb)
# (lintian's own stderr only says that it runs as root)
lintian --fail-on error,warning --display-level '>=warning' "$work"/ctd_*.changes \
	> "$work/lintian.log" 2> "$work/lintian.err" ||
	{ cat "$work/lintian.log" "$work/lintian.err"; fail "lintian"; }
[ ! -s "$work/lintian.log" ] || { cat "$work/lintian.log"; fail "lintian said something"; }

# The root has the package's dependencies (and logrotate) from the start:
# dpkg -i alone, as on a machine without network.
deps="$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/^ *//; s/[ (].*//' |
	grep .) logrotate"
for dep in $deps; do
	[ -e "$root/.ctd-root" ] && chroot "$root" dpkg -s "$dep" >/dev/null 2>&1 ||
		rm -f "$root/.ctd-root"
done
if [ ! -e "$root/.ctd-root" ]; then
	rm -rf "$root.tmp"
	debootstrap --variant=minbase --include="$(echo $deps | tr ' ' ',')" bookworm \
		"$root.tmp" "$mirror" > "$work/debootstrap.log" 2>&1 ||
		{ tail -20 "$work/debootstrap.log"; fail "debootstrap from $mirror"; }
	rm -rf "$root"
	mv "$root.tmp" "$root"
	touch "$root/.ctd-root"
fi
in_root() { chroot "$root" "$@"; }

cp "$deb" "$root/tmp/ctd.deb"
in_root dpkg -i /tmp/ctd.deb > "$work/dpkg.log" 2>&1 ||
	{ cat "$work/dpkg.log"; fail "dpkg -i"; }
in_root getent passwd ctd | grep -q '^ctd:x:[0-9]*:[0-9]*:.*:/usr/sbin/nologin$' ||
	fail "no system user ctd: $(in_root getent passwd ctd)"
in_root dpkg-query -W -f='${Conffiles}\n' ctd | grep -q '^ /etc/ctd/ctd.conf ' ||
	fail "/etc/ctd/ctd.conf is not a conffile"
unit=$root/lib/systemd/system/ctd.service
grep -q '^ExecStart=/usr/sbin/ctd$' "$unit" && grep -q '^User=ctd$' "$unit" ||
	fail "the unit does not start /usr/sbin/ctd as ctd"
sed "s|/usr/sbin/ctd|$root/usr/sbin/ctd|g" "$unit" > "$work/ctd.service"
out=$(systemd-analyze verify --man=no "$work/ctd.service" 2>&1) && [ -z "$out" ] ||
	fail "systemd-analyze verify of the package's unit: $out"
[ -L "$root/etc/systemd/system/multi-user.target.wants/ctd.service" ] ||
	fail "the unit is not enabled"
for f in usr/sbin/ctd usr/share/man/man8/ctd.8.gz usr/share/man/man5/ctd.conf.5.gz \
	 usr/share/bash-completion/completions/ctd etc/logrotate.d/ctd \
	 usr/share/doc/ctd/README.md.gz usr/share/doc/ctd/json-records.md.gz \
	 usr/share/doc/ctd/copyright \
	 usr/share/doc/ctd/examples/kafka.conf usr/share/doc/ctd/examples/filters.conf \
	 usr/share/doc/ctd/examples/ipfix-pmacct.conf \
	 usr/share/doc/ctd/examples/conntrackd-migration.conf; do
	[ -s "$root/$f" ] || fail "$f not installed"
done
grep -q 'systemctl kill --kill-whom=main -s USR1 ctd' "$root/etc/logrotate.d/ctd" ||
	fail "logrotate does not signal ctd's main process"
grep -Eq '^[[:space:]]*maxsize [0-9]+[kMG]?$' "$root/etc/logrotate.d/ctd" &&
	grep -Eq '^[[:space:]]*rotate 14$' "$root/etc/logrotate.d/ctd" ||
	fail "logrotate has no size cap beside 14 days"
# (dh_compress leaves a file under 4 KiB as it is)
zcat -f "$root"/usr/share/doc/ctd/README.Debian* > "$work/README.Debian" 2>/dev/null ||
	fail "README.Debian not installed"
for said in 'apt-get purge ctd' /var/log/ctd/flows.json /var/lib/ctd/flows.db \
	   '1 GiB' store-retention ctd:adm; do
	grep -qF -- "$said" "$work/README.Debian" || fail "README.Debian does not say $said"
done
# The maintainer scripts as built: the conffile made root:ctd 0640 (unless
# statoverridden), the records removed only at purge.
dpkg-deb -e "$deb" "$work/control"
grep -q 'chown root:ctd /etc/ctd/ctd.conf' "$work/control/postinst" &&
	grep -q 'chmod 0640 /etc/ctd/ctd.conf' "$work/control/postinst" ||
	fail "postinst does not make ctd.conf root:ctd 0640"
grep -A2 '"purge"' "$work/control/postrm" | grep -q 'rm -rf /var/log/ctd /var/lib/ctd' ||
	fail "postrm does not remove the records at purge (README.Debian says it does)"
[ "$(in_root stat -c '%U:%G %a' /etc/ctd/ctd.conf)" = "root:ctd 640" ] ||
	fail "/etc/ctd/ctd.conf is $(in_root stat -c '%U:%G %a' /etc/ctd/ctd.conf), not root:ctd 640"
grep -q '^Group=adm$' "$unit" && grep -q '^SupplementaryGroups=ctd$' "$unit" ||
	fail "the unit does not run ctd with group adm (and ctd for its config)"
in_root logrotate -d /etc/logrotate.d/ctd > "$work/logrotate.log" 2>&1 ||
	{ cat "$work/logrotate.log"; fail "logrotate -d"; }
in_root /usr/sbin/ctd -t | grep -q "/etc/ctd/ctd.conf is OK" || fail "ctd -t"
in_root setpriv --reuid=ctd --regid=adm --groups=ctd /usr/sbin/ctd -t >/dev/null ||
	fail "ctd -t as ctd"

# The service as the unit runs it: user ctd, group adm with ctd beside it,
# CAP_NET_ADMIN alone, its directories owned by ctd:adm (systemd's
# LogsDirectory/StateDirectory).
mount --bind /proc "$root/proc"
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
# Conntrack tracks a namespace's traffic once a rule uses it.
ip netns exec "$ns" nft 'add table inet f; add chain inet f c { type filter hook output priority 0; }; add rule inet f c ct state new counter'
mkdir -p "$root/var/log/ctd" "$root/var/lib/ctd"
in_root chown ctd:adm /var/log/ctd /var/lib/ctd
ip netns exec "$ns" chroot "$root" setpriv --reuid=ctd --regid=adm --groups=ctd \
	--inh-caps=-all,+net_admin --ambient-caps=-all,+net_admin \
	--bounding-set=-all,+net_admin /usr/sbin/ctd --control none \
	> "$work/ctd.log" 2>&1 &
ctd=$!
sleep 1
ip netns exec "$ns" python3 -c 'import socket
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 5599))'
ip netns exec "$ns" conntrack -F >/dev/null 2>&1
for _ in 1 2 3 4 5 6 7 8 9 10; do
	grep -q '"dport":5599' "$root/var/log/ctd/flows.json" 2>/dev/null && break
	sleep 0.5
done
kill -TERM $ctd
wait $ctd || { cat "$work/ctd.log"; fail "ctd as ctd exited with $?"; }
grep -q '"dport":5599' "$root/var/log/ctd/flows.json" ||
	{ cat "$work/ctd.log"; fail "no record of the flow from ctd running as ctd"; }
perm=$(in_root stat -c '%U:%G %a' /var/log/ctd/flows.json)
[ "$perm" = "ctd:adm 640" ] || fail "flows.json is $perm, not ctd:adm 640 (readable by adm)"
umount "$root/proc"

echo "rcvbuf 16M" > "$root/etc/ctd/ctd.conf"
in_root dpkg -i /tmp/ctd.deb > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "reinstall"; }
[ "$(cat "$root/etc/ctd/ctd.conf")" = "rcvbuf 16M" ] || fail "reinstall replaced the edited conffile"
in_root dpkg --purge ctd > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "purge"; }
for f in etc/ctd usr/sbin/ctd var/log/ctd var/lib/ctd etc/logrotate.d/ctd \
	 etc/systemd/system/multi-user.target.wants/ctd.service; do
	[ ! -e "$root/$f" ] || fail "$f left after purge"
done
rm -f "$root/tmp/ctd.deb"
echo "package: $(basename "$deb") built, lintian clean; installed in a Debian 12 root:" \
	"user ctd, conffile, unit verified and enabled, ctd -t OK, a record written as ctd;" \
	"edited conffile kept on reinstall, purge clean"
