# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
# Shared helpers for selftests/netns/test_*.sh: check recording, JSON queries, agent start/stop.
# A test sources this with its BUILD dir as $1. Every check prints what it expected and what it
# got; results go to $TD_RESULTS (one "PASS|FAIL<TAB>test<TAB>desc" line each) for run.sh.

T_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T_BUILD=${1:-${TD_BUILD:-build}}
[[ $T_BUILD == /* ]] || T_BUILD=$T_REPO/$T_BUILD
export TD_BUILD=$T_BUILD
T_NAME=$(basename "$0" .sh)
T_PASS=0
T_FAIL=0
T_ID=$(printf '%04x' $(((RANDOM << 1 ^ $$) & 0xffff)))
T_PREFIX=tdt-$T_ID
TDAGENT=$T_BUILD/bin/tdagent
TDCTL=$T_BUILD/bin/tdctl
T_NETNS_DIR=$T_REPO/selftests/netns
TD_RESULTS=${TD_RESULTS:-/dev/null}
export TD_ADMIN_SOCKET=/tmp/$T_PREFIX.admin.sock   # tdagent/tdctl admin socket: private per test

# shellcheck source=../../scripts/topo.sh
source "$T_REPO/scripts/topo.sh"

_t_record() { # _t_record PASS|FAIL desc expected got
	if [[ $1 == PASS ]]; then
		T_PASS=$((T_PASS + 1))
		printf '  ok    %s (expected %s, got %s)\n' "$2" "$3" "$4"
	else
		T_FAIL=$((T_FAIL + 1))
		printf '  FAIL  %s: expected %s, got %s\n' "$2" "$3" "$4"
	fi
	printf '%s\t%s\t%s\n' "$1" "$T_NAME" "$2" >>"$TD_RESULTS"
}

# t_eq DESC EXPECTED GOT: string equality.
t_eq() {
	if [[ "$2" == "$3" ]]; then _t_record PASS "$1" "$2" "$3"; else _t_record FAIL "$1" "$2" "$3"; fi
}

# t_true DESC EXPECTED_TEXT GOT_TEXT CMD...: passes when CMD succeeds.
t_true() {
	local d=$1 e=$2 g=$3
	shift 3
	if "$@"; then _t_record PASS "$d" "$e" "$g"; else _t_record FAIL "$d" "$e" "$g"; fi
}

# t_ge DESC MIN GOT: integer GOT >= MIN.
t_ge() {
	if [[ $3 =~ ^[0-9]+$ ]] && (($3 >= $2)); then
		_t_record PASS "$1" ">= $2" "$3"
	else
		_t_record FAIL "$1" ">= $2" "$3"
	fi
}

# t_lines: read "ok|FAIL<TAB>desc<TAB>expected<TAB>got" lines (from python checkers) and record them.
t_lines() {
	local st d e g
	while IFS=$'\t' read -r st d e g; do
		[[ -n $st ]] || continue
		if [[ $st == ok ]]; then _t_record PASS "$d" "$e" "$g"; else _t_record FAIL "$d" "$e" "$g"; fi
	done
}

# t_json FILE EXPR: evaluate a python expression over d = json.load(FILE); prints the result
# ("ERR:..." when the file is not JSON or the expression fails).
t_json() {
	python3 - "$1" "$2" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    r = eval(sys.argv[2], {"d": d, "len": len, "all": all, "any": any, "sorted": sorted,
                           "set": set, "sum": sum, "min": min, "max": max})
    print(json.dumps(r) if isinstance(r, (list, dict)) else r)
except Exception as e:
    print("ERR:%s" % type(e).__name__)
EOF
}

t_section() { printf '\n[%s] %s\n' "$T_NAME" "$*"; }

# t_done: print the per-test summary and exit with the verdict.
t_done() {
	printf '\n[%s] %d passed, %d failed\n' "$T_NAME" "$T_PASS" "$T_FAIL"
	((T_FAIL == 0))
	exit $?
}

# t_require_bins: record whether the binaries exist; returns 1 when one is missing.
t_require_bins() {
	local b ok=0
	for b in "$TDAGENT" "$TDCTL"; do
		if [[ -x $b ]]; then
			_t_record PASS "binary ${b#"$T_REPO"/} exists" "executable" "present"
		else
			_t_record FAIL "binary ${b#"$T_REPO"/} exists" "executable" "missing (make all)"
			ok=1
		fi
	done
	return $ok
}

# ---- agent in a namespace (nsenter keeps the bpffs visible) ------------------------------
T_AGENT_PID=""

# t_agent_start NS CONFIG BPFFS LOG: start tdagent in NS; waits for "ready:" (20 s).
# Returns 0 when ready, 1 when it died or timed out (the log tail is printed).
t_agent_start() {
	local ns=$1 cfg=$2 bpffs=$3 log=$4 i
	nsenter --net="/run/netns/$ns" "$TDAGENT" -c "$cfg" --bpffs "$bpffs" -v 2>"$log" >&2 &
	T_AGENT_PID=$!
	for i in $(seq 1 200); do
		if grep -q 'ready:' "$log" 2>/dev/null; then return 0; fi
		if ! kill -0 "$T_AGENT_PID" 2>/dev/null; then break; fi
		sleep 0.1
	done
	echo "  --- tdagent log (tail) ---"
	tail -n 20 "$log" | sed 's/^/  | /'
	return 1
}

# t_agent_stop [SIGNAL]: stop the agent; sets T_AGENT_RC to its exit status ("none" when it was
# not running, "killed" when it needed SIGKILL after 5 s).
T_AGENT_RC=none
t_agent_stop() {
	local pid=$T_AGENT_PID i
	T_AGENT_RC=none
	[[ -n $pid ]] || return 0
	kill "-${1:-TERM}" "$pid" 2>/dev/null
	for i in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		T_AGENT_RC=killed
	else
		wait "$pid" 2>/dev/null
		T_AGENT_RC=$?
	fi
	T_AGENT_PID=""
}

# t_nsctl NS ARGS...: tdctl inside NS.
t_nsctl() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$TDCTL" "$@"
}

# t_cgroup_kill DIR: SIGKILL every process in cgroup folder DIR and its sub-folders (ours only:
# tests call it on folders they created).
t_cgroup_kill() {
	local d pid
	[[ -d $1 ]] || return 0
	for d in $(find "$1" -mindepth 1 -type d | sort -r) "$1"; do
		for pid in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
	done
}

# t_cgroup_remove DIR: remove cgroup folder DIR and its sub-folders, deepest first, waiting up
# to 5 s each for the killed processes to leave.
t_cgroup_remove() {
	local d
	[[ -d $1 ]] || return 0
	for d in $(find "$1" -mindepth 1 -type d | sort -r) "$1"; do
		for _ in $(seq 1 50); do rmdir "$d" 2>/dev/null && break; sleep 0.1; done
	done
}

# t_mesh_teardown NETNS: the common end of a mesh scenario that ran tdagent in NETNS: stop the
# agent and the test's processes ($PIDS and everything in the cgroup folder $CGR), remove td
# from $BPFFS (agent --cleanup, then a direct detach of the cgroup programs in case the agent
# state was lost), then the cgroup folders. Uses $PIDS, $CGR, $BPFFS, $TDAGENT, $T_BUILD.
t_mesh_teardown() {
	local ns=$1 p
	t_agent_stop TERM
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	t_cgroup_kill "$CGR"
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	if [[ -d $BPFFS ]]; then
		nsenter --net="/run/netns/$ns" "$TDAGENT" --cleanup --bpffs "$BPFFS" >/dev/null 2>&1
		[[ -d $CGR ]] && "$T_BUILD/bin/td_mesh_ctl" detach "$BPFFS" "$CGR" >/dev/null 2>&1
		rm -rf "$BPFFS"
	fi
	t_cgroup_remove "$CGR"
}
