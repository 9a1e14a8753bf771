#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Runtime overrides through the admin socket: drain (new connections avoid the backend while an
# established, throttled long transfer to it completes with its sha256 intact), undrain, backend
# add/remove, refusals that change nothing, tdctl status/services saying overrides are in
# effect, and a reload restoring the file's view. Usage: test_ops_drain.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"
if ! t_require_bins; then t_done; fi
source "$(dirname "$0")/ops_lib.sh"
ops_up
# a fourth server for backend add: b1 also answers on 8081 as "b1x"
topo_spawn "${TOPO_BACKENDS[0]}" "$TMP/srv-b1x.log" python3 "$T_NETNS_DIR/servers.py" \
	--name b1x --tcp 8081 --lifetime 300
ops_config "$CFG" "1 1 1"
if ! t_agent_start "$LB" "$CFG" "$BPFFS" "$TMP/agent.log"; then
	_t_record FAIL "tdagent ready" "ready:" "not ready"
	t_done
fi
declare -A ADDR=([b1]=10.10.11.2 [b2]=10.10.12.2 [b3]=10.10.13.2)

t_section "drain the backend of an established long transfer"
STREAM_BYTES=$((12 << 20))
ops_bg "$TMP/slow.json" ip netns exec "$CL" python3 "$T_NETNS_DIR/ops_load.py" slow \
	--addr 10.200.0.100 --port 80 --bytes "$STREAM_BYTES" --rate $((2 << 20)) \
	--port-file "$TMP/slow.port" --timeout 10
SLOW_PID=$OPS_LAST_PID
for _ in $(seq 1 50); do [[ -s $TMP/slow.port ]] && break; sleep 0.1; done
LPORT=$(cat "$TMP/slow.port" 2>/dev/null)
ops_ctl --json conntrack >"$TMP/ct.json"
SB=$(t_json "$TMP/ct.json" "[f['backend'] for f in d['flows'] if f['client_port']==${LPORT:-0}][0]")
NAME=""
for n in b1 b2 b3; do [[ ${ADDR[$n]} == "$SB" ]] && NAME=$n; done
t_true "the stream's backend is in conntrack" "b1|b2|b3" "${NAME:-none} ($SB, port ${LPORT:-?})" test -n "$NAME"
out=$(ops_ctl backend drain web "$SB:8080" 2>&1)
rc=$?
t_true "tdctl backend drain web $SB:8080" "rc 0, drained" "rc $rc: $out" test "$rc" -eq 0
ops_requests 150 "$TMP/after-drain.json"
t_eq "150 new connections after the drain all succeed" 150 "$(t_json "$TMP/after-drain.json" 'd["ok"]')"
t_eq "no new connection reaches the drained backend $NAME" 0 \
	"$(t_json "$TMP/after-drain.json" "d['counts'].get('$NAME', 0)")"
ops_ctl --json services >"$TMP/svc-d.json"
t_eq "services: drained backend has weight 0, drained true" "0 True" \
	"$(t_json "$TMP/svc-d.json" "' '.join(str(x) for x in [[b['weight'], b['drained']] for s in d['services'] for b in s['backends'] if b['address']=='$SB'][0])")"
t_eq "services: overrides_in_effect" True "$(t_json "$TMP/svc-d.json" 'd["overrides_in_effect"]')"
t_true "tdctl services (text) says runtime overrides are in effect" "a line about overrides" \
	"$(ops_ctl services 2>&1 | head -1)" test -n "$(ops_ctl services 2>&1 | grep 'runtime overrides in effect')"
t_true "tdctl status (text) lists the drain" "drain web $SB:8080" "$(ops_ctl status 2>&1 | grep -A1 overrides | tr -s ' ' | tr '\n' '|')" \
	test -n "$(ops_ctl status 2>&1 | grep -E "drain +web $SB:8080")"
ops_ctl --json status >"$TMP/st-d.json"
t_eq "status JSON: overrides" "[['drain', 'web', '$SB:8080']]" \
	"$(t_json "$TMP/st-d.json" '[[o["op"], o["service"], o["backend"]] for o in d["overrides"]]' | tr '"' "'")"
wait "$SLOW_PID"
t_eq "drained backend's long transfer: length" "$STREAM_BYTES" "$(t_json "$TMP/slow.json" 'd["bytes"]')"
t_eq "drained backend's long transfer: sha256" "$(t_json "$TMP/slow.json" 'd["expected_sha256"]')" \
	"$(t_json "$TMP/slow.json" 'd["sha256"]')"
echo "  stream took $(t_json "$TMP/slow.json" 'd["seconds"]') s $(t_json "$TMP/slow.json" 'd["error"]')"
t_ge "the transfer outlived the drain (seconds)" 3 "$(t_json "$TMP/slow.json" 'int(d["seconds"])')"
out=$(ops_ctl backend drain web "$SB:8080" 2>&1)
rc=$?
t_true "second drain: exit 0, unchanged" "rc 0, unchanged" "rc $rc: $out" test "$rc" -eq 0 -a -n "$(echo "$out" | grep unchanged)"

t_section "undrain"
out=$(ops_ctl backend undrain web "$SB:8080" 2>&1)
t_true "tdctl backend undrain" "undrained" "$out" test -n "$(echo "$out" | grep undrained)"
ops_requests 150 "$TMP/after-undrain.json"
t_ge "new connections reach $NAME again" 10 "$(t_json "$TMP/after-undrain.json" "d['counts'].get('$NAME', 0)")"
ops_ctl --json status >"$TMP/st-u.json"
t_eq "no override left after undrain" "False 0" "$(t_json "$TMP/st-u.json" '"%s %d" % (d["overrides_in_effect"], len(d["overrides"]))')"

t_section "backend add and remove at runtime"
ops_snapshot "$TMP/snap0.txt"
while IFS='|' read -r desc args want; do
	# shellcheck disable=SC2086
	out=$(ops_ctl backend $args 2>&1)
	rc=$?
	t_true "refused: $desc (rc 1, one line)" "rc 1: ~$want" "rc $rc: $out" \
		test "$rc" -eq 1 -a "$(printf '%s' "$out" | grep -c '')" -eq 1 -a -n "$(echo "$out" | grep -- "$want")"
done <<'CASES'
unknown service|drain nope 10.10.11.2:8080|unknown service
unknown backend|remove web 10.10.11.9:8080|has no backend
duplicate add|add web 10.10.12.2:8080|already has
IPv6 backend on an IPv4 VIP|add web [fd00:11::2]:8080|IPv6
CASES
ops_snapshot "$TMP/snap1.txt"
t_true "refused changes leave the state identical" "no diff" \
	"$(diff "$TMP/snap0.txt" "$TMP/snap1.txt" | head -3 | tr '\n' ' ')" cmp -s "$TMP/snap0.txt" "$TMP/snap1.txt"
out=$(ops_ctl backend add web 10.10.11.2:8081 --weight 3 2>&1)
rc=$?
t_true "tdctl backend add web 10.10.11.2:8081 --weight 3" "rc 0" "rc $rc: $out" test "$rc" -eq 0
out=$(ops_ctl backend remove web 10.10.12.2:8080 2>&1)
rc=$?
t_true "tdctl backend remove web 10.10.12.2:8080" "rc 0" "rc $rc: $out" test "$rc" -eq 0
ops_requests 150 "$TMP/after-add.json"
t_eq "all connections succeed after add/remove" 150 "$(t_json "$TMP/after-add.json" 'd["ok"]')"
t_ge "the added backend (b1x, weight 3) gets new connections" 40 "$(t_json "$TMP/after-add.json" "d['counts'].get('b1x', 0)")"
t_eq "the removed backend b2 gets none" 0 "$(t_json "$TMP/after-add.json" "d['counts'].get('b2', 0)")"
ops_ctl --json services >"$TMP/svc-a.json"
t_eq "services: backends and sources" "10.10.11.2:8080:file,10.10.11.2:8081:runtime,10.10.13.2:8080:file" \
	"$(t_json "$TMP/svc-a.json" '",".join(sorted("%s:%d:%s" % (b["address"], b["port"], b["source"]) for s in d["services"] for b in s["backends"]))')"

t_section "reload restores the file's view"
out=$(ops_ctl reload 2>&1)
rc=$?
t_true "tdctl reload says the overrides were discarded" "rc 0, discarded" "rc $rc: $(echo "$out" | tail -1)" \
	test "$rc" -eq 0 -a -n "$(echo "$out" | grep 'discarded')"
t_eq "agent log says so" 1 "$(grep -c "runtime overrides discarded: the file's view is restored" "$TMP/agent.log")"
ops_ctl --json services >"$TMP/svc-r.json"
t_eq "services after reload = file" "10.10.11.2:8080,10.10.12.2:8080,10.10.13.2:8080 False" \
	"$(t_json "$TMP/svc-r.json" '",".join(sorted("%s:%d" % (b["address"], b["port"]) for s in d["services"] for b in s["backends"])) + " " + str(d["overrides_in_effect"])')"
ops_requests 150 "$TMP/after-reload.json"
t_eq "b1x gets nothing after the reload" 0 "$(t_json "$TMP/after-reload.json" "d['counts'].get('b1x', 0)")"
t_ge "b2 is back after the reload" 10 "$(t_json "$TMP/after-reload.json" "d['counts'].get('b2', 0)")"

t_section "tdctl falls back to the pinned maps when the agent is down"
t_agent_stop TERM
out=$(ops_ctl status 2>&1)
rc=$?
t_true "tdctl status with the agent down" "rc 0, says not answering" "rc $rc: $(echo "$out" | grep agent)" \
	test "$rc" -eq 0 -a -n "$(echo "$out" | grep 'not answering')"
ops_ctl --json services >"$TMP/svc-down.json" 2>&1
t_eq "tdctl services with the agent down: from the maps" "False 3" \
	"$(t_json "$TMP/svc-down.json" '"%s %d" % (d["agent"], len(d["services"][0]["backends"]))')"
out=$(ops_ctl backend drain web 10.10.11.2:8080 2>&1)
rc=$?
t_true "tdctl backend drain with the agent down: rc 1, one line" "rc 1: no tdagent answers" "rc $rc: $out" \
	test "$rc" -eq 1 -a "$(printf '%s' "$out" | grep -c '')" -eq 1 -a -n "$(echo "$out" | grep 'no tdagent answers')"
t_done
