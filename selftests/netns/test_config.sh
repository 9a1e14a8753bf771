#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Config validation and CLI errors: tdagent --check accepts the example and rejects broken files
# with FILE:LINE: lines and exit 2; tdctl usage errors exit 2 with one line; tdctl on a missing
# bpffs dir fails with one clear line. tdctl runs inside a scratch namespace of its own.
# Usage: test_config.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"

if ! t_require_bins; then t_done; fi

TMP=$(mktemp -d "/tmp/$T_PREFIX.XXXXXX")
NS=$T_PREFIX-cfg
cleanup() {
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM
ip netns add "$NS"

# ---- tdagent --check ----------------------------------------------------------------------
t_section "tdagent --check"
EX=$T_REPO/docs/examples/td.yaml
out=$("$TDAGENT" --check -c "$EX" 2>&1)
rc=$?
t_true "docs/examples/td.yaml is accepted" "rc 0" "rc $rc: $(echo "$out" | head -2 | tr '\n' ' ')" test "$rc" -eq 0

# A valid base; each case replaces one line (1-based) and names the line the error must cite.
BASE='node:
  interfaces:
    - { name: lb-c, xdp_mode: native }
l4:
  services:
    - name: web
      vip: 10.200.0.100
      port: 80
      proto: tcp
      mode: nat
      backends:
        - { address: 10.10.11.2, port: 8080, weight: 1 }'

printf '%s\n' "$BASE" >"$TMP/base.yaml"
out=$("$TDAGENT" --check -c "$TMP/base.yaml" 2>&1)
rc=$?
t_true "base config of the bad cases is accepted" "rc 0" "rc $rc: $(echo "$out" | head -2 | tr '\n' ' ')" test "$rc" -eq 0

# case: name|line to replace|new text|line the error must cite
CASES=(
	"bad_vip|7|      vip: 10.200.0.300|7"
	"bad_port|8|      port: 70000|8"
	"bad_proto|9|      proto: sctp|9"
	"bad_mode|10|      mode: tunnel|10"
	"bad_xdp_mode|3|    - { name: lb-c, xdp_mode: turbo }|3"
	"unknown_key|4|l4x:|4"
	"dsr_port_change|10|      mode: dsr|12"
	"backend_family|12|        - { address: \"fd00:11::2\", port: 8080 }|12"
	"bad_weight|12|        - { address: 10.10.11.2, port: 8080, weight: -1 }|12"
	"yaml_syntax|12|        - { address: 10.10.11.2, port: 8080|any"
)
for c in "${CASES[@]}"; do
	IFS='|' read -r name ln text want <<<"$c"
	f=$TMP/$name.yaml
	printf '%s\n' "$BASE" | awk -v n="$ln" -v t="$text" 'NR == n { print t; next } { print }' >"$f"
	out=$("$TDAGENT" --check -c "$f" 2>&1)
	rc=$?
	first=$(echo "$out" | head -1)
	t_eq "$name: exit status" 2 "$rc"
	if [[ $want == any ]]; then
		pat="^$f:[0-9]+: "
		exp="a line '$f:<line>: ...'"
	else
		pat="^$f:$want: "
		exp="a line '$f:$want: ...'"
	fi
	if echo "$out" | grep -Eq -- "$pat"; then
		_t_record PASS "$name: error cites file and line" "$exp" "$(echo "$out" | grep -E -- "$pat" | head -1)"
	else
		_t_record FAIL "$name: error cites file and line" "$exp" "${first:-no output}"
	fi
done

# Two problems at once: both are reported (nothing applied, all errors listed).
f=$TMP/two_errors.yaml
printf '%s\n' "$BASE" | sed -e '8s/.*/      port: 0x/' -e '9s/.*/      proto: sctp/' >"$f"
out=$("$TDAGENT" --check -c "$f" 2>&1)
rc=$?
got=$(echo "$out" | grep -Ec -- "^$f:(8|9): ")
t_eq "two errors (lines 8 and 9): both reported, exit 2" "2 lines, rc 2" "$got lines, rc $rc"

out=$("$TDAGENT" --check -c "$TMP/does-not-exist.yaml" 2>&1)
rc=$?
t_true "missing config file: non-zero exit and names the file" "rc != 0, mentions does-not-exist.yaml" \
	"rc $rc: $(echo "$out" | head -1)" test "$rc" -ne 0 -a -n "$(echo "$out" | grep does-not-exist.yaml)"

# ---- tdctl usage errors ---------------------------------------------------------------------
t_section "tdctl usage errors"
ctl() { nsenter --net="/run/netns/$NS" "$TDCTL" "$@"; }
USAGE=(
	""
	"frobnicate"
	"attach"
	"detach"
	"attach lo --mode turbo"
	"conntrack --bogus"
)
for u in "${USAGE[@]}"; do
	# shellcheck disable=SC2086
	out=$(ctl $u 2>&1)
	rc=$?
	lines=$(printf '%s' "$out" | grep -c '')
	t_true "tdctl ${u:-(no arguments)}: exit 2 with one line" "rc 2, 1 line" \
		"rc $rc, $lines line(s): $(echo "$out" | head -1 | cut -c1-70)" test "$rc" -eq 2 -a "$lines" -eq 1
done

t_section "tdctl on a missing bpffs dir"
MISSING=/sys/fs/bpf/$T_PREFIX-missing
topo_bpffs_mount
for cmd in status services stats conntrack; do
	out=$(ctl --bpffs "$MISSING" "$cmd" 2>&1)
	rc=$?
	lines=$(printf '%s' "$out" | grep -c '')
	if ((rc != 0 && lines == 1)) && [[ $out == *"$MISSING"* ]]; then
		_t_record PASS "tdctl $cmd, missing bpffs: one line naming it, non-zero" "rc != 0, 1 line" "rc $rc: $out"
	else
		_t_record FAIL "tdctl $cmd, missing bpffs: one line naming it, non-zero" "rc != 0, 1 line with $MISSING" "rc $rc, $lines line(s): $(echo "$out" | head -2 | tr '\n' ' ')"
	fi
done
t_done
