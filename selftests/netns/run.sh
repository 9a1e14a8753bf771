#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Run every selftests/netns/test_*.sh (or the ones named) against BUILD; print a summary and a
# last line "N passed, M failed" (checks, over all tests). Exit 1 when anything failed.
#   selftests/netns/run.sh BUILD [test_l4 ...]
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-build}
shift || true
TIMEOUT=${TD_NETNS_TIMEOUT:-300}   # per test script, seconds

if [[ $EUID -ne 0 ]]; then
	echo "netns: needs root (network namespaces, XDP, bpffs)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

if (($#)); then
	TESTS=()
	for t in "$@"; do TESTS+=("$HERE/${t%.sh}.sh"); done
else
	TESTS=("$HERE"/test_*.sh)
fi

RESULTS=$(mktemp /tmp/tdt-results.XXXXXX)
trap 'rm -f "$RESULTS"' EXIT
SUMMARY=()
for t in "${TESTS[@]}"; do
	name=$(basename "$t" .sh)
	echo "=== $name"
	before=$(wc -l <"$RESULTS")
	t0=$(date +%s)
	TD_RESULTS=$RESULTS timeout --foreground -k 10 "$TIMEOUT" bash "$t" "$BUILD"
	rc=$?
	dt=$(($(date +%s) - t0))
	p=$(tail -n +"$((before + 1))" "$RESULTS" | grep -c '^PASS')
	f=$(tail -n +"$((before + 1))" "$RESULTS" | grep -c '^FAIL')
	if ((rc != 0 && f == 0)); then
		# crashed or timed out without recording why: that is a failure of its own
		why="exited with status $rc"
		((rc == 124)) && why="timed out after ${TIMEOUT}s"
		printf 'FAIL\t%s\t%s\n' "$name" "$why" >>"$RESULTS"
		echo "  FAIL  $name $why"
		f=1
	fi
	SUMMARY+=("$(printf '%-16s %3d passed %3d failed  %4ds' "$name" "$p" "$f" "$dt")")
done

echo
echo "=== netns summary"
printf '  %s\n' "${SUMMARY[@]}"
if grep -q '^FAIL' "$RESULTS"; then
	echo "  failed checks:"
	grep '^FAIL' "$RESULTS" | awk -F'\t' '{printf "    %s: %s\n", $2, $3}'
fi
P=$(grep -c '^PASS' "$RESULTS")
F=$(grep -c '^FAIL' "$RESULTS")
echo "$P passed, $F failed"
((F == 0))
