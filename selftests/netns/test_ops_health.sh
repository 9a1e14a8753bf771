#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Health checks driving the Maglev ring from tdagent's loop: a backend whose server is killed
# leaves the ring within interval * fall (+1 interval) while a long transfer to another backend
# continues intact; it returns after rise passes; with every backend down the service fails open.
# Usage: test_ops_health.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"
if ! t_require_bins; then t_done; fi
source "$(dirname "$0")/ops_lib.sh"
ops_up
ops_config "$CFG" "1 1 1"
# interval 200 ms, fall 2: out within 600 ms; rise 2: back within 600 ms
sed -i 's/^      proto: tcp$/      proto: tcp\n      health: { type: tcp, interval: 200ms, timeout: 100ms, rise: 2, fall: 2 }/' "$CFG"
if ! t_agent_start "$LB" "$CFG" "$BPFFS" "$TMP/agent.log"; then
	_t_record FAIL "tdagent ready" "ready:" "not ready"
	t_done
fi
declare -A ADDR=([b1]=10.10.11.2 [b2]=10.10.12.2 [b3]=10.10.13.2)
declare -A IDX=([b1]=0 [b2]=1 [b3]=2)

# health_of ADDR: "health ring_weight" of a web backend from tdctl
health_of() {
	ops_ctl --json services 2>/dev/null | python3 -c "import json,sys
d=json.load(sys.stdin)
print(*[(b.get('health'), b['weight']) for s in d['services'] for b in s['backends'] if b['address']=='$1'][0])" 2>/dev/null
}
# wait_health ADDR WANT: seconds until health_of ADDR == WANT (or "timeout" after 5 s)
wait_health() {
	local t0 now
	t0=$(date +%s.%N)
	for _ in $(seq 1 100); do
		if [[ $(health_of "$1") == "$2" ]]; then
			now=$(date +%s.%N)
			python3 -c "print('%.2f' % ($now - $t0))"
			return 0
		fi
		sleep 0.05
	done
	echo timeout
}

sleep 0.5
t_eq "all backends up at start" "up 1|up 1|up 1" "$(health_of 10.10.11.2)|$(health_of 10.10.12.2)|$(health_of 10.10.13.2)"

t_section "kill one backend's server during a long transfer to another"
ops_bg "$TMP/slow.json" ip netns exec "$CL" python3 "$T_NETNS_DIR/ops_load.py" slow \
	--addr 10.200.0.100 --port 80 --bytes $((8 << 20)) --rate $((2 << 20)) \
	--port-file "$TMP/slow.port" --timeout 10
SLOW_PID=$OPS_LAST_PID
for _ in $(seq 1 50); do [[ -s $TMP/slow.port ]] && break; sleep 0.1; done
ops_ctl --json conntrack >"$TMP/ct.json"
SB=$(t_json "$TMP/ct.json" "[f['backend'] for f in d['flows'] if f['client_port']==$(cat "$TMP/slow.port" 2>/dev/null || echo 0)][0]")
VICTIM=b1
[[ $SB == "${ADDR[b1]}" ]] && VICTIM=b2
echo "  stream on $SB, killing $VICTIM (${ADDR[$VICTIM]})"
kill "${TOPO_PIDS[${IDX[$VICTIM]}]}"
dt=$(wait_health "${ADDR[$VICTIM]}" "down 0")
t_true "$VICTIM down and weight 0 within interval*fall+interval (+tdctl polling)" "<= 1.2 s" "$dt s" \
	python3 -c "import sys; sys.exit(0 if '$dt' != 'timeout' and float('$dt') <= 1.2 else 1)"
ops_requests 90 "$TMP/down.json"
t_eq "new connections all succeed with $VICTIM down" 90 "$(t_json "$TMP/down.json" 'd["ok"]')"
t_eq "none goes to $VICTIM" 0 "$(t_json "$TMP/down.json" "d['counts'].get('$VICTIM', 0)")"
wait "$SLOW_PID"
t_eq "long transfer to a healthy backend: sha256 intact" "$(t_json "$TMP/slow.json" 'd["expected_sha256"]')" \
	"$(t_json "$TMP/slow.json" 'd["sha256"]')"
t_eq "agent log: one down line" 1 "$(grep -c "health: web/${ADDR[$VICTIM]}:8080 is down" "$TMP/agent.log")"

t_section "restore it"
topo_spawn "${TOPO_BACKENDS[${IDX[$VICTIM]}]}" "$TMP/srv-again.log" python3 "$T_NETNS_DIR/servers.py" \
	--name "$VICTIM" --tcp 8080 --lifetime 120
dt=$(wait_health "${ADDR[$VICTIM]}" "up 1")
t_true "$VICTIM back after rise passes" "<= 2 s" "$dt s" \
	python3 -c "import sys; sys.exit(0 if '$dt' != 'timeout' and float('$dt') <= 2 else 1)"
ops_requests 90 "$TMP/up.json"
t_ge "new connections reach $VICTIM again" 5 "$(t_json "$TMP/up.json" "d['counts'].get('$VICTIM', 0)")"

t_section "every backend down: fail open"
for n in 0 1 2; do kill "${TOPO_PIDS[$n]}" 2>/dev/null; done
kill "$TOPO_LAST_PID" 2>/dev/null
dt=$(wait_health 10.10.13.2 "down 1")
t_true "all down: weights kept (fail open)" "down 1" "$(health_of 10.10.13.2) after $dt s" test "$dt" != timeout
sleep 0.3
t_eq "agent log: fail-open warning" 1 "$(grep -c 'every backend of 1 service(s) is down' "$TMP/agent.log")"
t_done
