#!/bin/sh
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Checks that every metric family td can emit has a valid Prometheus name and is documented in docs/metrics.md.
#
# The families come from the code itself: `td_unit --metrics-sample` renders a snapshot in which
# every family has samples (td_metrics_render with agent info and health states). Checked:
#  - each "# TYPE" name matches [a-zA-Z_:][a-zA-Z0-9_:]*, starts with td_, and counters (only
#    counters) end in _total;
#  - each sample line belongs to a family declared before it;
#  - each family appears in the family table of docs/metrics.md (a row "| `NAME` | TYPE | ...")
#    with the same type, and the table lists no family the code does not emit;
#  - each td_datapath_* event/reason label value (all enum td_counter names) is in the docs.
# Exit 0 when all holds, 1 otherwise (every problem is listed), 2 on usage errors.
set -eu

usage() { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
[ $# -eq 1 ] || usage
BUILD=$1
BIN=$BUILD/bin/td_unit
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DOC=$ROOT/docs/metrics.md
[ -x "$BIN" ] || { echo "$0: $BIN not built (make $BIN)" >&2; exit 2; }
[ -r "$DOC" ] || { echo "$0: $DOC missing" >&2; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM HUP

"$BIN" --metrics-sample >"$TMP/sample" || { echo "$0: $BIN --metrics-sample failed" >&2; exit 1; }
[ -s "$TMP/sample" ] || { echo "$0: empty sample exposition" >&2; exit 1; }

# NAME TYPE of every family the code emits
awk '$1 == "#" && $2 == "TYPE" { print $3, $4 }' "$TMP/sample" >"$TMP/families"
# NAME TYPE of every row of the documented family table
sed -n 's/^| *`\([^`]*\)` *| *\([a-z]*\) *|.*/\1 \2/p' "$DOC" >"$TMP/documented"

fail=0
problem() { echo "check-metrics: $*" >&2; fail=1; }

[ -s "$TMP/families" ] || problem "no '# TYPE' line in the sample exposition"

while read -r name type; do
	echo "$name" | grep -Eq '^[a-zA-Z_:][a-zA-Z0-9_:]*$' ||
		problem "$name: not a valid Prometheus metric name"
	case $name in
	td_*) ;;
	*) problem "$name: does not start with td_" ;;
	esac
	case $type:$name in
	counter:*_total) ;;
	counter:*) problem "$name: counter without the _total suffix" ;;
	*:*_total) problem "$name: $type with the _total suffix (reserved for counters)" ;;
	esac
	doc_type=$(awk -v n="$name" '$1 == n { print $2; exit }' "$TMP/documented")
	if [ -z "$doc_type" ]; then
		problem "$name: not documented in docs/metrics.md (add a row | \`$name\` | $type | ... |)"
	elif [ "$doc_type" != "$type" ]; then
		problem "$name: documented as $doc_type, emitted as $type"
	fi
done <"$TMP/families"

# documented but never emitted
while read -r name type; do
	awk -v n="$name" '$1 == n { f = 1 } END { exit !f }' "$TMP/families" ||
		problem "$name: documented in docs/metrics.md but not emitted by the code"
done <"$TMP/documented"

# every sample belongs to the family declared last (counter/gauge samples carry its exact name)
awk '
	$1 == "#" && $2 == "TYPE" { fam = $3; next }
	/^#/ { next }
	{
		name = $0; sub(/[{ ].*/, "", name)
		if (name != fam) { printf "check-metrics: sample %s outside its family (last TYPE: %s)\n", name, fam; bad = 1 }
	}
	END { exit bad }
' "$TMP/sample" >&2 || fail=1

# every event and drop reason label value is explained in the docs (as `value`)
sed -n 's/^td_datapath_[a-z]*_total{[a-z]*="\([^"]*\)"}.*/\1/p' "$TMP/sample" >"$TMP/labels"
[ -s "$TMP/labels" ] || problem "no td_datapath_* sample in the sample exposition"
while read -r v; do
	grep -Fq "\`$v\`" "$DOC" || problem "event/reason \"$v\": not documented in docs/metrics.md"
done <"$TMP/labels"

n=$(wc -l <"$TMP/families")
if [ "$fail" -eq 0 ]; then
	echo "check-metrics: $n metric families, names valid and documented"
fi
exit "$fail"
