#!/bin/sh
# The layer order of src/ and include/ctd/: a file in a folder includes
# ctd headers of its own folder or of folders below it, never above. The
# top level (main.c, route.c, reload.c and their headers) may include
# anything. The order, lowest first:
#   base     log, time, safe files, write buffer, listening sockets, the
#            counters struct
#   kernel   the ctnetlink socket and parser, dumps, labels, the kernel-
#            pressure governor and its guard
#   flows    flow table, expiry, engine, records, filters, sysctls
#   format   JSON, text, conntrackd log, IPFIX and Kafka message encoding
#   service  daemon, notify, restart, run lock
#   config   settings, command line, start-up checks
#   outputs  the output table, settle, each output
#   delivery dying list, spool, write-ahead log, read-back, deliver
#   sync     reconcile (+ its loop adapter), namespaces
#   control  control socket, report, alerts, counters
# Usage: check_layers.sh SOURCE_DIR
set -eu
top=$1
order="base kernel flows format service config outputs delivery sync control"
rank() {
	i=0
	for f in $order; do
		[ "$f" = "$1" ] && { echo $i; return; }
		i=$((i + 1))
	done
	echo "FAIL: unknown folder $1 (add it to the order in $0)" >&2
	exit 1
}
bad=0 files=0 arrows=0
for dir in $order; do
	r=$(rank "$dir")
	for file in "$top"/src/"$dir"/*.c "$top"/include/ctd/"$dir"/*.h; do
		[ -e "$file" ] || continue
		files=$((files + 1))
		for inc in $(sed -n 's|^#include "ctd/\([a-z_]*\)/[a-z_]*\.h".*|\1|p' "$file"); do
			arrows=$((arrows + 1))
			if [ "$(rank "$inc")" -gt "$r" ]; then
				echo "FAIL: ${file#$top/} ($dir) includes from $inc, above it"
				bad=$((bad + 1))
			fi
		done
		if grep -q '^#include "ctd/[a-z_]*\.h"' "$file"; then
			echo "FAIL: ${file#$top/} includes a top-level header"
			bad=$((bad + 1))
		fi
	done
done
for file in "$top"/src/*/ "$top"/include/ctd/*/; do
	d=$(basename "$file")
	rank "$d" > /dev/null
done
[ "$bad" -eq 0 ] || exit 1
echo "layers: $files files in $(echo $order | wc -w) folders, $arrows includes between ctd headers, none up the order"
