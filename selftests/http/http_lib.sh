# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Shared set-up of the engine scenarios (test_http_engine.sh, test_http_tunnel.sh): a private
# netns with loopback up, a temp dir, background processes killed in the EXIT trap.
#   source selftests/netns/lib.sh; source selftests/http/http_lib.sh; http_setup SUFFIX
# Sets TOOL, HTTP_DIR, NS, TMP, PIDS; provides nsx, start_bg, wait_log.

TOOL=$T_BUILD/bin/td_http_tool
HTTP_DIR=$T_REPO/selftests/http
PIDS=()

http_cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	sleep 0.2
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	ip netns del "$NS" 2>/dev/null
	rm -rf "$TMP"
}

# http_setup SUFFIX: netns $T_PREFIX-SUFFIX and a temp dir, or the test ends with a failure
http_setup() {
	NS=$T_PREFIX-$1
	TMP=$(mktemp -d "/tmp/$T_PREFIX.$1.XXXXXX")
	trap http_cleanup EXIT
	if [[ -x $TOOL ]]; then
		_t_record PASS "binary ${TOOL#"$T_REPO"/} exists" executable present
	else
		_t_record FAIL "binary ${TOOL#"$T_REPO"/} exists" executable "missing (make all)"
		t_done
	fi
	ip netns add "$NS" || { _t_record FAIL "netns $NS" created failed; t_done; }
	ip -n "$NS" link set lo up
}

nsx() { ip netns exec "$NS" "$@"; }

# start_bg NAME CMD...: run CMD in the netns, output to $TMP/NAME.log, pid in PID_<NAME>
start_bg() {
	local name=$1
	shift
	ip netns exec "$NS" "$@" >"$TMP/$name.log" 2>&1 &	# the process itself (no subshell)
	PIDS+=($!)
	printf -v "PID_$name" '%s' $!
}

# wait_log NAME TEXT: until the log shows TEXT (5 s)
wait_log() {
	for _ in $(seq 1 50); do
		grep -q "$2" "$TMP/$1.log" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "  --- $1 log ---"
	tail -n 10 "$TMP/$1.log" | sed 's/^/  | /'
	return 1
}
