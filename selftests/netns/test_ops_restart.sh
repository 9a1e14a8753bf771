#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Restart and reload without loss: a throttled long TCP transfer and a stream of new connections
# through the VIP while tdagent is stopped with SIGTERM and with SIGKILL and started again (it
# adopts the pinned maps), then while 50 reloads alternating valid and invalid configs are fired
# (tdctl reload and SIGHUP). Zero failed connections, sha256 intact; tdctl detach --all and
# tdagent --cleanup remove everything. Usage: test_ops_restart.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"
if ! t_require_bins; then t_done; fi
source "$(dirname "$0")/ops_lib.sh"
ops_up
ops_config "$CFG" "1 1 1"
if ! t_agent_start "$LB" "$CFG" "$BPFFS" "$TMP/agent.log"; then
	_t_record FAIL "tdagent ready" "ready:" "not ready"
	t_done
fi

STREAM_BYTES=$((16 << 20))

# load_start TAG: throttled stream (~8 s) + connection stream, until $TMP/stop-TAG exists
load_start() {
	rm -f "$TMP/stop-$1" "$TMP/$1.port"
	ops_bg "$TMP/$1-slow.json" ip netns exec "$CL" python3 "$T_NETNS_DIR/ops_load.py" slow \
		--addr 10.200.0.100 --port 80 --bytes "$STREAM_BYTES" --rate $((2 << 20)) \
		--port-file "$TMP/$1.port" --timeout 10
	SLOW_PID=$OPS_LAST_PID
	ops_bg "$TMP/$1-conns.json" ip netns exec "$CL" python3 "$T_NETNS_DIR/ops_load.py" conns \
		--addr 10.200.0.100 --port 80 --stop-file "$TMP/stop-$1" --max-seconds 50 --gap-ms 10
	CONNS_PID=$OPS_LAST_PID
	for _ in $(seq 1 50); do [[ -s $TMP/$1.port ]] && break; sleep 0.1; done
}

# load_check TAG: stop the connection stream, wait for the transfer, record the verdicts
load_check() {
	wait "$SLOW_PID"
	touch "$TMP/stop-$1"
	wait "$CONNS_PID"
	local s=$TMP/$1-slow.json c=$TMP/$1-conns.json
	t_eq "$1: long transfer length" "$STREAM_BYTES" "$(t_json "$s" 'd["bytes"]')"
	t_eq "$1: long transfer sha256" "$(t_json "$s" 'd["expected_sha256"]')" "$(t_json "$s" 'd["sha256"]')"
	echo "  transfer took $(t_json "$s" 'd["seconds"]') s $(t_json "$s" 'd["error"]')"
	t_ge "$1: new connections made during the test" 100 "$(t_json "$c" 'd["total"]')"
	t_eq "$1: failed connections" "0" "$(t_json "$c" 'd["errors"]')"
	[[ $(t_json "$c" 'd["errors"]') == 0 ]] || echo "  first errors: $(t_json "$c" 'd["first_errors"]')"
	t_eq "$1: connections spread over all backends" 3 "$(t_json "$c" 'len(d["counts"])')"
}

# ---- restart under load -----------------------------------------------------------------
t_section "agent SIGTERM and SIGKILL + restart under load"
ops_ctl --json services >"$TMP/svc0.json"
ops_ctl --json status >"$TMP/st0.json"
load_start restart
sleep 1
t_agent_stop TERM
t_eq "SIGTERM: exit status" 0 "$T_AGENT_RC"
t_true "SIGTERM: datapath still pinned" "$BPFFS/td_svc" "-" test -e "$BPFFS/td_svc"
sleep 1
if t_agent_start "$LB" "$CFG" "$BPFFS" "$TMP/agent2.log"; then
	_t_record PASS "restart after SIGTERM: ready" "ready:" "ready"
else
	_t_record FAIL "restart after SIGTERM: ready" "ready:" "not ready"
fi
t_eq "restart adopted the pinned maps" 1 "$(grep -c 'adopted (pinned maps reused)' "$TMP/agent2.log")"
t_eq "restart rebuilt no ring" 1 \
	"$(grep -c 'state apply: generation [0-9]*, 1 services (1 same, 0 rebuilt, 0 new, 0 removed)' "$TMP/agent2.log")"
sleep 1
kill -KILL "$T_AGENT_PID" 2>/dev/null
wait "$T_AGENT_PID" 2>/dev/null
T_AGENT_PID=""
t_true "SIGKILL: stale admin socket left behind" "socket exists" "-" test -S "$ADMIN"
sleep 1
if t_agent_start "$LB" "$CFG" "$BPFFS" "$TMP/agent3.log"; then
	_t_record PASS "restart after SIGKILL (stale socket): ready" "ready:" "ready"
else
	_t_record FAIL "restart after SIGKILL (stale socket): ready" "ready:" "not ready"
fi
t_true "both restarts happened during the long transfer" "transfer still running" "pid $SLOW_PID" kill -0 "$SLOW_PID"
load_check restart
ops_ctl --json services >"$TMP/svc1.json"
t_eq "services and backend ids identical after two restarts" \
	"$(t_json "$TMP/svc0.json" '[(s["id"], s["name"], [(b["id"], b["address"], b["weight"]) for b in s["backends"]]) for s in d["services"]]')" \
	"$(t_json "$TMP/svc1.json" '[(s["id"], s["name"], [(b["id"], b["address"], b["weight"]) for b in s["backends"]]) for s in d["services"]]')"
out=$(nsenter --net="/run/netns/$LB" "$TDAGENT" -c "$CFG" --bpffs "$BPFFS" 2>&1)
rc=$?
t_true "a second agent on the same admin socket refuses to start" "rc 1, another tdagent" "rc $rc: $(echo "$out" | tail -1)" \
	test "$rc" -eq 1 -a -n "$(echo "$out" | grep 'another tdagent is serving')"

# ---- 50 reloads under load ----------------------------------------------------------------
t_section "50 reloads alternating valid and invalid under load"
ops_ctl --json status >"$TMP/st1.json"
GEN1=$(t_json "$TMP/st1.json" 'd["generation"]')
EXTRA='    - name: tmp
      vip: 10.200.0.104
      port: 80
      proto: tcp
      backends:
        - { address: 10.10.13.2, port: 8080 }'
load_start reloads
ok=0
rejected=0
unexpected=""
for i in $(seq 1 50); do
	if ((i % 2)); then
		# valid: web's weights and the extra service alternate
		if ((i % 4 == 1)); then ops_config "$CFG" "1 2 3" "$EXTRA"; else ops_config "$CFG" "1 1 1"; fi
		want=0
	else
		ops_config "$CFG" "1 1 1" "    - name: broken
      vip: 10.200.0.$((300 + i))
      port: 80"
		want=1
	fi
	if ((i % 5 == 0)); then
		# every fifth through SIGHUP: wait for the agent's verdict in its log
		n0=$(grep -c -E 'reloaded |reload: .* is invalid' "$TMP/agent3.log")
		kill -HUP "$T_AGENT_PID"
		for _ in $(seq 1 50); do
			(($(grep -c -E 'reloaded |reload: .* is invalid' "$TMP/agent3.log") > n0)) && break
			sleep 0.05
		done
		if grep -E 'reloaded |reload: .* is invalid' "$TMP/agent3.log" | tail -n 1 |
			grep -q 'is invalid'; then rc=1; else rc=0; fi
	else
		ops_ctl reload >"$TMP/reload-$i.out" 2>&1
		rc=$?
	fi
	((rc == 0)) && ok=$((ok + 1))
	((rc == 1)) && rejected=$((rejected + 1))
	((rc == want)) || unexpected+=" #$i(rc $rc)"
done
t_true "the 50 reloads happened during the long transfer" "transfer still running" "pid $SLOW_PID" kill -0 "$SLOW_PID"
t_eq "reloads: accepted/rejected" "25/25" "$ok/$rejected"
t_eq "every reload got the expected verdict" "" "$unexpected"
load_check reloads
ops_ctl --json status >"$TMP/st2.json"
t_eq "generation advanced once per accepted reload" "$((GEN1 + 25))" "$(t_json "$TMP/st2.json" 'd["generation"]')"
t_true "agent alive after 50 reloads" "alive" "pid $T_AGENT_PID" kill -0 "$T_AGENT_PID"
# the last valid config (#49) has web 1:2:3 and tmp; #50 was rejected
t_eq "running state = last valid config" "tmp,web [1, 2, 3]" \
	"$(ops_ctl --json services | python3 -c 'import json,sys; d=json.load(sys.stdin)["services"]; print(",".join(sorted(s["name"] for s in d)), [sorted(b["weight"] for b in s["backends"]) for s in d if s["name"]=="web"][0])')"

# ---- removal ----------------------------------------------------------------------------------
t_section "detach --all and --cleanup remove everything"
t_agent_stop TERM
out=$(ops_ctl detach --all 2>&1)
t_eq "tdctl detach --all" "detached 4 interface(s)" "$out"
got=0
for i in lb-b1 lb-b2 lb-b3 lb-c; do
	ip -n "$LB" -d link show "$i" | grep -q 'prog/xdp' && got=$((got + 1))
	[[ -n $(tc -n "$LB" filter show dev "$i" egress 2>/dev/null) ]] && got=$((got + 1))
done
t_eq "no XDP/TC attachment left" 0 "$got"
nsenter --net="/run/netns/$LB" "$TDAGENT" --cleanup --bpffs "$BPFFS" >/dev/null 2>&1
t_eq "tdagent --cleanup: no pins left" 0 "$(find "$BPFFS" -mindepth 1 2>/dev/null | wc -l)"
t_done
