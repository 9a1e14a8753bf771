#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Reload as a diff and the admin API's error handling: an invalid config (tdctl reload and SIGHUP)
# changes nothing (tdctl services and bpftool map dumps identical, exit status and FILE:LINE
# message); bad admin requests change nothing; a silent client blocks nobody; a valid reload
# rebuilds only changed rings, removes a service with its conntrack entries, adds one, and
# bumps the generation. Usage: test_ops_reload.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"
if ! t_require_bins; then t_done; fi
source "$(dirname "$0")/ops_lib.sh"
ops_up

EXTRA_A='    - name: dns
      vip: 10.200.0.100
      port: 53
      proto: udp
      backends:
        - { address: 10.10.11.2, port: 5353 }
        - { address: 10.10.12.2, port: 5353 }
    - name: old
      vip: 10.200.0.102
      port: 80
      proto: tcp
      backends:
        - { address: 10.10.13.2, port: 8080 }'
EXTRA_B='    - name: dns
      vip: 10.200.0.100
      port: 53
      proto: udp
      backends:
        - { address: 10.10.11.2, port: 5353 }
        - { address: 10.10.12.2, port: 5353 }
    - name: new
      vip: 10.200.0.103
      port: 80
      proto: tcp
      backends:
        - { address: 10.10.12.2, port: 8080 }'
ops_config "$CFG" "1 1 1" "$EXTRA_A"

t_section "agent and admin socket"
if ! t_agent_start "$LB" "$CFG" "$BPFFS" "$TMP/agent.log"; then
	_t_record FAIL "tdagent ready" "ready:" "not ready"
	t_done
fi
t_eq "admin socket mode" "600 root" "$(stat -c '%a %U' "$ADMIN" 2>&1)"
t_eq "admin socket directory mode" "700" "$(stat -c '%a' "$(dirname "$ADMIN")" 2>&1)"
out=$(runuser -u nobody -- "$TDCTL" --bpffs "$BPFFS" --socket "$ADMIN" reload 2>&1)
rc=$?
t_true "non-root tdctl reload is refused" "rc 1, permission denied" "rc $rc: $out" \
	test "$rc" -eq 1 -a -n "$(echo "$out" | grep -i 'permission denied')"

# traffic on every service so conntrack has entries of each
ops_requests 40 "$TMP/web.json"
ip netns exec "$CL" python3 "$T_NETNS_DIR/client.py" tcp --addr 10.200.0.102 --port 80 \
	--count 20 >"$TMP/old.json" 2>&1
t_eq "service old answers before the reload" 20 "$(t_json "$TMP/old.json" 'd["ok"]')"
ops_ctl --json conntrack >"$TMP/ct0.json"
t_eq "conntrack has flows of service old" 20 \
	"$(t_json "$TMP/ct0.json" 'sum(1 for f in d["flows"] if f["service"]=="old")')"
ops_ctl --json status >"$TMP/st0.json"
GEN0=$(t_json "$TMP/st0.json" 'd["generation"]')
t_ge "status reports a generation" 1 "$GEN0"
WEB_ID=$(ops_svc_id web)
DNS_ID=$(ops_svc_id dns)
WEB_RING0=$(ops_inner_id "$WEB_ID")
DNS_RING0=$(ops_inner_id "$DNS_ID")
t_ge "web has a ring (inner map id)" 1 "$WEB_RING0"

# ---- invalid configs: nothing changes ---------------------------------------------------
t_section "invalid reload via tdctl: running state unchanged"
ops_snapshot "$TMP/snap0.txt"
t_ge "snapshot holds the backends of every service (svc_id fields)" 6 "$(grep -o '"svc_id"' "$TMP/snap0.txt" | wc -l)"
cp "$CFG" "$TMP/good.yaml"
sed 's/vip: 10.200.0.102/vip: 10.200.0.300/' "$TMP/good.yaml" >"$TMP/bad.yaml"
BADLINE=$(grep -n 'vip: 10.200.0.300' "$TMP/bad.yaml" | cut -d: -f1)
cp "$TMP/bad.yaml" "$CFG"
out=$(ops_ctl reload 2>&1)
rc=$?
t_eq "tdctl reload of an invalid file: exit status" 1 "$rc"
if echo "$out" | grep -q "^$CFG:$BADLINE: "; then
	_t_record PASS "tdctl reload prints FILE:LINE: message" "$CFG:$BADLINE: ..." "$(echo "$out" | grep "^$CFG:$BADLINE: ")"
else
	_t_record FAIL "tdctl reload prints FILE:LINE: message" "$CFG:$BADLINE: ..." "$out"
fi
ops_snapshot "$TMP/snap1.txt"
t_true "tdctl services and map dumps identical after the invalid reload" "no diff" \
	"$(diff "$TMP/snap0.txt" "$TMP/snap1.txt" | head -3 | tr '\n' ' ')" cmp -s "$TMP/snap0.txt" "$TMP/snap1.txt"
ops_ctl --json status >"$TMP/st1.json"
t_eq "generation unchanged after the invalid reload" "$GEN0" "$(t_json "$TMP/st1.json" 'd["generation"]')"
t_eq "status: last reload rejected" False "$(t_json "$TMP/st1.json" 'd["last_reload"]["ok"]')"
t_eq "agent log names the error line" 1 "$(grep -c "error: $CFG:$BADLINE: " "$TMP/agent.log")"

t_section "invalid reload via SIGHUP"
sed 's/proto: udp/proto: sctp/' "$TMP/good.yaml" >"$CFG"
kill -HUP "$T_AGENT_PID"
for _ in $(seq 1 30); do grep -q "sctp" "$TMP/agent.log" && break; sleep 0.1; done
got=$(grep -c "error: $CFG:[0-9]*: .*sctp" "$TMP/agent.log")
t_eq "SIGHUP with an invalid file: FILE:LINE error logged" 1 "$got"
ops_snapshot "$TMP/snap2.txt"
t_true "state identical after the invalid SIGHUP" "no diff" \
	"$(diff "$TMP/snap0.txt" "$TMP/snap2.txt" | head -3 | tr '\n' ' ')" cmp -s "$TMP/snap0.txt" "$TMP/snap2.txt"
t_true "agent still running after invalid reloads" "alive" "pid $T_AGENT_PID" kill -0 "$T_AGENT_PID"

# ---- bad admin requests: one error each, nothing changes ---------------------------------
t_section "bad admin requests"
cp "$TMP/good.yaml" "$CFG"
adm() { nsenter --net="/run/netns/$LB" python3 "$T_NETNS_DIR/ops_load.py" admin --socket "$ADMIN" "$@"; }
while IFS='|' read -r desc req want; do
	ans=$(adm --raw "$req" | python3 -c 'import json,sys; print(json.load(sys.stdin)["answer"])')
	ok=$(echo "$ans" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(d["ok"], d["error"])' 2>&1)
	if [[ $ok == "False "*"$want"* ]]; then
		_t_record PASS "admin: $desc" "ok false, error ~ $want" "$ans"
	else
		_t_record FAIL "admin: $desc" "ok false, error ~ $want" "$ans"
	fi
done <<'REQS'
malformed JSON|{"cmd":"status"|malformed JSON
not an object|["status"]|JSON object
unknown command|{"cmd":"reboot"}|unknown command
unknown key|{"cmd":"reload","force":true}|unknown key
unknown service|{"cmd":"drain","service":"nope","backend":"10.10.11.2:8080"}|unknown service
unknown backend|{"cmd":"drain","service":"web","backend":"10.10.11.9:8080"}|has no backend
bad backend|{"cmd":"undrain","service":"web","backend":"10.10.11.2"}|invalid backend
bad weight|{"cmd":"backend_add","service":"web","backend":"10.10.11.2:9","weight":-1}|weight
existing backend|{"cmd":"backend_add","service":"web","backend":"10.10.11.2:8080"}|already has
wrong family|{"cmd":"backend_add","service":"web","backend":"[fd00:11::2]:8080"}|IPv6
REQS
ans=$(adm --big 70000 | python3 -c 'import json,sys; print(json.load(sys.stdin)["answer"])')
t_true "admin: request over 64 KiB refused" "error: request larger" "$ans" \
	test -n "$(echo "$ans" | grep 'request larger')"
adm --silent-then '{"cmd":"status"}' >"$TMP/silent.json"
t_eq "admin: a silent client does not block another" True \
	"$(t_json "$TMP/silent.json" 'json_ok' 2>/dev/null | sed 's/ERR.*//')$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.loads(d["answer"])["ok"] and d["seconds"] < 2)' "$TMP/silent.json" 2>&1)"
ops_snapshot "$TMP/snap3.txt"
t_true "state identical after the bad requests" "no diff" \
	"$(diff "$TMP/snap0.txt" "$TMP/snap3.txt" | head -3 | tr '\n' ' ')" cmp -s "$TMP/snap0.txt" "$TMP/snap3.txt"
for u in "backend" "backend drain web" "backend drain web 10.10.11.2" "backend frob web 10.10.11.2:80" \
	"backend add web 10.10.11.2:80 --weight x" "backend drain web 10.10.11.2:80 --weight 2" "reload now"; do
	# shellcheck disable=SC2086
	out=$(ops_ctl $u 2>&1)
	rc=$?
	t_true "tdctl $u: usage error, one line" "rc 2, 1 line" "rc $rc: $out" \
		test "$rc" -eq 2 -a "$(printf '%s' "$out" | grep -c '')" -eq 1
done

# ---- valid reload: a diff ---------------------------------------------------------------
t_section "valid reload: web reweighted, dns unchanged, old removed, new added"
ops_config "$CFG" "1 2 3" "$EXTRA_B"
out=$(ops_ctl --json reload 2>&1)
rc=$?
echo "$out" >"$TMP/reload.json"
t_eq "tdctl reload of a valid file: exit status" 0 "$rc"
t_eq "reload: unchanged/rebuilt/added/removed" "1/1/1/1" \
	"$(t_json "$TMP/reload.json" '"%d/%d/%d/%d" % (d["unchanged"], d["rebuilt"], d["added"], d["removed"])')"
t_eq "reload: td_ct + td_rnat entries of the removed service flushed" 40 "$(t_json "$TMP/reload.json" 'd["conntrack_flushed"]')"
t_eq "generation + 1" "$((GEN0 + 1))" "$(t_json "$TMP/reload.json" 'd["generation"]')"
t_eq "dns ring not rebuilt (same inner map)" "$DNS_RING0" "$(ops_inner_id "$DNS_ID")"
got=$(ops_inner_id "$WEB_ID")
t_true "web ring swapped (new inner map)" "!= $WEB_RING0" "$got" test -n "$got" -a "$got" != "$WEB_RING0"
ops_ctl --json conntrack >"$TMP/ct1.json"
t_eq "no conntrack entry left for the removed VIP" 0 \
	"$(t_json "$TMP/ct1.json" 'sum(1 for f in d["flows"] if f["vip"]=="10.200.0.102")')"
t_ge "web's conntrack entries kept" 40 \
	"$(t_json "$TMP/ct1.json" 'sum(1 for f in d["flows"] if f["service"]=="web")')"
ops_ctl --json services >"$TMP/svc1.json"
t_eq "services after reload" "dns,new,web" "$(t_json "$TMP/svc1.json" '",".join(sorted(s["name"] for s in d["services"]))')"
t_eq "web weights after reload" "[1, 2, 3]" \
	"$(t_json "$TMP/svc1.json" '[sorted(b["weight"] for b in s["backends"]) for s in d["services"] if s["name"]=="web"][0]')"
ops_bpftool -j map dump pinned "$BPFFS/td_svc_info" >"$TMP/info.json"
t_eq "td_svc_info.generation of every service" "[$((GEN0 + 1))]" \
	"$(t_json "$TMP/info.json" 'sorted(set(e["formatted"]["value"]["generation"] for e in d if e["formatted"]["value"]["in_use"]))')"
ip netns exec "$CL" python3 "$T_NETNS_DIR/client.py" tcp --addr 10.200.0.102 --port 80 \
	--count 3 --timeout 0.5 --max-errors 3 >"$TMP/old2.json" 2>&1
t_eq "removed service no longer balanced" 0 "$(t_json "$TMP/old2.json" 'd["ok"]')"
ip netns exec "$CL" python3 "$T_NETNS_DIR/client.py" tcp --addr 10.200.0.103 --port 80 \
	--count 20 >"$TMP/new.json" 2>&1
t_eq "added service balanced" '{"b2": 20}' "$(t_json "$TMP/new.json" 'd["counts"]')"
ops_requests 60 "$TMP/web2.json"
t_eq "web still answers after the reload" 60 "$(t_json "$TMP/web2.json" 'd["ok"]')"
ops_ctl --json status >"$TMP/st2.json"
t_eq "status: last reload ok" True "$(t_json "$TMP/st2.json" 'd["last_reload"]["ok"]')"
t_eq "agent log: one line for the reload" 1 \
	"$(grep -c "reloaded $CFG: generation $((GEN0 + 1)), 3 services (1 unchanged, 1 rebuilt, 1 added, 1 removed" "$TMP/agent.log")"

t_section "no-op reload rebuilds nothing"
out=$(ops_ctl --json reload 2>&1)
echo "$out" >"$TMP/reload2.json"
t_eq "identical file: all unchanged" "3/0" "$(t_json "$TMP/reload2.json" '"%d/%d" % (d["unchanged"], d["rebuilt"])')"

t_agent_stop TERM
t_eq "tdagent exit status on SIGTERM" 0 "$T_AGENT_RC"
t_true "admin socket removed on exit" "no $ADMIN" "$(ls "$ADMIN" 2>&1)" test ! -e "$ADMIN"
t_done
