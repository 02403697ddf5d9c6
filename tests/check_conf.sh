#!/bin/sh
# The shipped files agree with the code: conf/ctd.conf, uncommented,
# is exactly ctd's defaults (so no documented default can drift); every
# setting is in both man pages and the bash completion; the unit CMake
# generated starts the configured sbindir's ctd and passes
# `systemd-analyze verify` with this build's ctd; the default config path
# is the configured sysconfdir's; every example in conf/examples passes
# `ctd -t`.
# Usage: check_conf.sh CTD SOURCE_DIR UNIT SBINDIR CONFIG_FILE
set -eu
ctd=$1 src=$2 unit=$3 sbindir=$4 config=$5 tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sed 's/^#\([a-z]\)/\1/' "$src/conf/ctd.conf" > "$tmp/all.conf"
# Lines starting "ctd: " are notes (the check's verdict, what memory-max
# auto comes to here), not settings.
"$ctd" -t -v -c "$tmp/all.conf" | grep -v '^ctd: ' > "$tmp/example"
"$ctd" -t -v -c /dev/null | grep -v '^ctd: ' > "$tmp/defaults"
if ! diff -u "$tmp/defaults" "$tmp/example"; then
	echo "FAIL: conf/ctd.conf differs from ctd's defaults (above)"
	exit 1
fi
[ "$(grep -c '^#[a-z]' "$src/conf/ctd.conf")" -eq "$(wc -l < "$tmp/defaults")" ] || {
	echo "FAIL: conf/ctd.conf does not list every setting once"
	exit 1
}
# Every setting is documented: as a key in ctd.conf(5) and as an option
# in ctd(8).
missing=""
"$ctd" --complete > "$tmp/words"
for key in $(awk '{print $1}' "$tmp/defaults"); do
	esc=$(printf '%s' "$key" | sed 's/-/\\\\-/g')
	grep -Eq "^\.B[IR]? (|.*\\\\fP)$esc[ \"]" "$src/docs/ctd.conf.5" ||
		missing="$missing ctd.conf.5:$key"
	grep -Eq "^\.B[IR]? .*\\\\-\\\\-$esc([ \"]|\$)" "$src/docs/ctd.8" ||
		missing="$missing ctd.8:--$key"
	grep -Eq -- "(^|[[:space:]'])--$key([[:space:]')]|\$)" "$tmp/words" ||
		missing="$missing completion:--$key"
done
[ -z "$missing" ] || { echo "FAIL: undocumented settings:$missing"; exit 1; }
# The bash completion asks ctd itself (ctd --complete, from the rows):
# an output's option, its words and a path complete in a real bash.
[ -r /usr/share/bash-completion/bash_completion ] || {
	echo "FAIL: bash-completion is missing (apt-get install bash-completion)"
	exit 1
}
cat > "$tmp/complete.sh" <<EOS
. /usr/share/bash-completion/bash_completion
. '$src/conf/ctd.bash-completion'
comp() {
	COMP_WORDS=("\$@"); COMP_CWORD=\$((\${#COMP_WORDS[@]} - 1))
	COMP_LINE="\${COMP_WORDS[*]}"; COMP_POINT=\${#COMP_LINE}; COMPREPLY=()
	_ctd; echo "\${COMPREPLY[*]}"
}
comp '$ctd' --kafka-k
comp '$ctd' --syslog-level ''
comp '$ctd' --ipfix-shape u
comp '$ctd' --store '$tmp/completeme'
EOS
touch "$tmp/completeme"
printf '%s\n' "--kafka-key" "emerg alert crit err warning notice info debug" \
	"uniflow" "$tmp/completeme" > "$tmp/want"
bash "$tmp/complete.sh" > "$tmp/got" 2>&1
diff -u "$tmp/want" "$tmp/got" || { echo "FAIL: bash completion (above)"; exit 1; }
command -v systemd-analyze >/dev/null || {
	echo "FAIL: systemd-analyze is missing (apt-get install systemd)"
	exit 1
}
"$ctd" --help | grep -Fq "(default $config;" || {
	echo "FAIL: ctd --help does not name $config as the default config"
	exit 1
}
[ "$(grep -c "^Exec[A-Za-z]*=$sbindir/ctd" "$unit")" -eq 3 ] || {
	echo "FAIL: $unit does not start $sbindir/ctd"
	exit 1
}
sed "s|$sbindir/ctd|$ctd|g" "$unit" > "$tmp/ctd.service"
out=$(systemd-analyze verify --man=no "$tmp/ctd.service" 2>&1) || {
	echo "FAIL: systemd-analyze verify: $out"
	exit 1
}
[ -z "$out" ] || { echo "FAIL: systemd-analyze verify warned: $out"; exit 1; }
# The shipped alert rules load, and every series they name is one ctd has.
command -v promtool >/dev/null || {
	echo "FAIL: promtool is missing (apt-get install prometheus)"
	exit 1
}
rules=$src/docs/prometheus-alerts.yml
promtool check rules "$rules" >/dev/null || { promtool check rules "$rules"; exit 1; }
for series in $(grep -v '^ *#' "$rules" | grep -o 'ctd_[a-z_]*' | sort -u); do
	name=${series#ctd_}
	name=${name#output_}
	name=${name%_bucket}
	grep -rqF "$name" "$src/src" || {
		echo "FAIL: $rules names $series, which ctd does not export"
		exit 1
	}
done
# ctd -t -v says what store-max-size auto comes to on the store's disk.
"$ctd" -t -v -c /dev/null --store "$tmp/flows.db" | grep -q \
	"^ctd: store-max-size auto is [0-9]* bytes .* of $tmp/flows.db\$" || {
	echo "FAIL: ctd -t -v does not resolve store-max-size auto"; exit 1
}
# Every example shipped in /usr/share/doc/ctd/examples passes ctd -t, with
# ctd's directories (which -t wants to exist) moved to a scratch one.
n=0
mkdir "$tmp/var"
for example in "$src"/conf/examples/*.conf; do
	[ -e "$example" ] || { echo "FAIL: no examples in conf/examples"; exit 1; }
	sed "s|/var/log/ctd|$tmp/var|g; s|/var/lib/ctd|$tmp/var|g" "$example" \
		> "$tmp/example.conf"
	"$ctd" -t -c "$tmp/example.conf" > "$tmp/out" 2>&1 || {
		echo "FAIL: ctd -t refuses $example:"; cat "$tmp/out"; exit 1
	}
	n=$((n + 1))
done
[ "$n" -ge 4 ] || { echo "FAIL: only $n examples in conf/examples"; exit 1; }
echo "conf/examples: $n examples pass ctd -t"
# The unit's reload check (ExecReload=ctd -t) refusing a file says why at
# priority err when stderr is the journal: "<3>", as sd-daemon(3) has it.
echo "no-such-setting 1" > "$tmp/bad.conf"
: > "$tmp/journal"
JOURNAL_STREAM=$(stat -c '%d:%i' "$tmp/journal") \
	"$ctd" -t -c "$tmp/bad.conf" 2>> "$tmp/journal" && {
	echo "FAIL: ctd -t accepted an unknown setting"; exit 1
}
grep -q "^<3>$tmp/bad.conf:1: unknown setting" "$tmp/journal" || {
	echo "FAIL: ctd -t's refusal is not at priority err in the journal:"
	cat "$tmp/journal"; exit 1
}
# A filter on a query would be ignored (the answers cover the whole
# table): refused with one line, before any socket is tried.
for query in -l -s; do
	rc=0
	"$ctd" $query --filter-proto tcp --control "$tmp/none.sock" \
		> "$tmp/out" 2>&1 || rc=$?
	[ "$rc" -eq 2 ] && [ "$(wc -l < "$tmp/out")" -eq 1 ] &&
		grep -q -- "--filter-proto does not apply to -s or -l" "$tmp/out" || {
		echo "FAIL: ctd $query --filter-proto tcp (exit $rc):"; cat "$tmp/out"; exit 1
	}
done
# --sort orders -l's text lines; elsewhere it is refused, as is a bad key.
for args in "-s --sort bytes" "-l --json --sort bytes" "-l --sort size"; do
	rc=0
	"$ctd" $args --control "$tmp/none.sock" > "$tmp/out" 2>&1 || rc=$?
	[ "$rc" -eq 2 ] && [ "$(wc -l < "$tmp/out")" -eq 1 ] || {
		echo "FAIL: ctd $args (exit $rc):"; cat "$tmp/out"; exit 1
	}
done
# README's Layout names every source file, so a newcomer finds each one.
layout=$(sed -n '/^## Layout/,/^## /p' "$src/README.md")
for file in $(cd "$src/src" && ls *.c */*.c); do
	echo "$layout" | grep -qF "\`${file##*/}\`" || {
		echo "FAIL: README's Layout does not name src/$file"; exit 1
	}
done
echo "conf/ctd.conf = defaults ($(wc -l < "$tmp/defaults") settings, each in ctd.conf.5 and ctd.8); ctd.service verified"
