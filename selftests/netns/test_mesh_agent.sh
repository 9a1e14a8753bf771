#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# tdagent drives the mesh: a real agent with a mesh: section (own bpffs, admin socket, metrics
# port, cgroup root under this test's prefix), real processes in real cgroups: translation,
# denials logged with both identities (rate-limited), tdctl mesh and metrics, health failover
# without touching an open connection, reload of the allow rules, invalid reload, mesh: removed
# and back, agent restart under an open connection, --cleanup. Usage: test_mesh_agent.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"

PEERS=$T_REPO/selftests/mesh/mesh_peers.py
CG_MNT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
TMP=$(mktemp -d "/tmp/$T_PREFIX.XXXXXX")
BPFFS=/sys/fs/bpf/tdt-magent-$T_ID-$$
CGR=${CG_MNT:-/nonexistent}/tdt-magent-$T_ID-$$
NS=tdt-magent-$T_ID-$$
ADMIN=$TMP/admin.sock
export TD_ADMIN_SOCKET=$ADMIN
MPORT=9469                      # inside the test's own netns
CFG=$TMP/td.yaml
LOG=$TMP/agent.log
PIDS=()
CLEANED=0

cleanup() {
	((CLEANED)) && return 0
	CLEANED=1
	t_mesh_teardown "$NS"
	ip netns del "$NS" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# in_cg NAME CMD...: run CMD inside cgroup folder NAME (relative to $CGR) and the test netns
in_cg() {
	local cg=$1
	shift
	sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec nsenter --net="/run/netns/$0" "$@"' \
		"$NS" "$CGR/$cg" "$@"
}
j() { python3 -c 'import json,sys; d=json.loads(sys.stdin.read() or "{}"); print(eval(sys.argv[1]))' "$1"; }
ctl() { nsenter --net="/run/netns/$NS" "$TDCTL" --bpffs "$BPFFS" --socket "$ADMIN" "$@"; }
scrape() { ip netns exec "$NS" curl -sS -m 3 "http://127.0.0.1:$MPORT/metrics"; }
n_progs() { bpftool cgroup show "$CGR" 2>/dev/null | grep -c ' td_m_'; }
# serve NAME PORT: one backend server process in cgroup orders (killable on its own)
serve() {
	# no function in between: $! is the server itself (sh execs nsenter execs python3)
	sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec nsenter --net="/run/netns/$0" "$@"' \
		"$NS" "$CGR/orders" python3 "$PEERS" serve --lifetime 120 --tcp "127.0.0.1,$2,$1" \
		>"$TMP/srv-$1.log" 2>&1 &
	PIDS+=($!)
	eval "PID_$1=$!"
}

# config [ALLOW_LINES] [EXTRA_SERVICE_YAML]: the test's config, written atomically
config() {
	local allow=${1:-"    - { from: frontend, to: orders, ports: [80] }"}
	cat >"$CFG.tmp" <<EOF
node:
  bpffs: $BPFFS
  admin_socket: $ADMIN
  metrics_listen: 127.0.0.1:$MPORT
mesh:
  cgroup_root: $CGR
  default_policy: deny
  services:
    - name: orders
      cgroup: orders
      vip: 10.96.0.10
      port: 80
      backends:
        - { address: 127.0.0.1, port: 9001 }
        - { address: 127.0.0.1, port: 9002 }
        - { address: 127.0.0.1, port: 9003 }
    - name: frontend
      cgroup: frontend
      vip: 10.96.0.20
      port: 80
      backends:
        - { address: 127.0.0.1, port: 9201 }
${2:-}
  allow:
$allow
EOF
	mv "$CFG.tmp" "$CFG"
}
# mesh_maps: what a reload decides, for before/after comparisons
mesh_maps() {
	local m
	for m in td_m_svc td_m_cg td_m_allow td_m_conf td_m_names; do
		echo "== $m"
		bpftool -j map dump pinned "$BPFFS/$m" 2>&1 | python3 -c 'import json,sys
d=json.load(sys.stdin); print(json.dumps(sorted(d, key=lambda x: json.dumps(x, sort_keys=True)), sort_keys=True))'
	done
	echo "== programs"
	bpftool cgroup show "$CGR" 2>&1
}
# wait_log PATTERN [TENTHS]: 0 when the agent log has a line matching PATTERN
wait_log() {
	local i
	for i in $(seq 1 "${2:-30}"); do
		grep -q -- "$1" "$LOG" && return 0
		sleep 0.1
	done
	return 1
}

t_section "cgroups under $CGR, netns $NS, bpffs $BPFFS"
if [[ -z $CG_MNT ]]; then
	_t_record FAIL "cgroup2 mounted" "a cgroup2 line in /proc/mounts" "none"
	t_done
fi
t_require_bins || t_done
topo_bpffs_mount
mkdir -p "$CGR"/{frontend,orders,intruder}
ip netns add "$NS" && ip -n "$NS" link set lo up
serve o1 9001
serve o2 9002
serve o3 9003
in_cg frontend python3 "$PEERS" serve --lifetime 120 --tcp 127.0.0.1,9201,fe >"$TMP/srv-fe.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do
	[[ $(cat "$TMP"/srv-*.log 2>/dev/null | grep -c ready) -ge 4 ]] && break
	sleep 0.1
done
config

t_section "start-up"
if ! t_agent_start "$NS" "$CFG" "$BPFFS" "$LOG"; then
	_t_record FAIL "tdagent ready with a mesh: section" "ready:" "not ready (log above)"
	t_done
fi
ready=$(grep -m1 -o 'ready:.*' "$LOG")
t_true "ready line names the mesh and its cgroup root" "'2 mesh service(s) on cgroup $CGR'" \
	"$ready" grep -qF "2 mesh service(s) on cgroup $CGR" <<<"$ready"
t_eq "no 'not applied' warning any more" "0" "$(grep -c 'not applied' "$LOG")"
t_ge "mesh programs attached to the test's cgroup root" 8 "$(n_progs)"

t_section "translation through the agent"
r=$(in_cg frontend python3 "$PEERS" many 10.96.0.10 80 300)
t_eq "300 connections to the VIP: no errors" "{}" "$(j 'd["errors"]' <<<"$r")"
t_eq "spread over the three backends" "['o1', 'o2', 'o3']" "$(j 'sorted(d["backends"].keys())' <<<"$r")"
t_eq "getpeername shows the VIP" "['10.96.0.10:80']" "$(j 'sorted(d["peers"].keys())' <<<"$r")"

t_section "denials: EPERM, one log line naming both identities, rate limit"
r=$(in_cg intruder python3 "$PEERS" one 10.96.0.10 80)
t_eq "unknown -> orders refused" "EPERM" "$(j 'd["errno"]' <<<"$r")"
r=$(in_cg orders python3 "$PEERS" one 10.96.0.20 80)
t_eq "orders -> frontend (no rule) refused" "EPERM" "$(j 'd["errno"]' <<<"$r")"
wait_log 'mesh: denied orders -> frontend'
t_true "agent logs 'denied unknown -> orders' with pid, comm, cgroup" "one line" \
	"$(grep -m1 'denied unknown -> orders' "$LOG" | sed 's/.*mesh:/mesh:/')" \
	grep -q 'mesh: denied unknown -> orders 10.96.0.10:80/tcp (connect) pid [0-9]* comm python3 cgroup [0-9]' "$LOG"
t_true "agent logs 'denied orders -> frontend'" "one line" \
	"$(grep -c 'denied orders -> frontend' "$LOG") line(s)" grep -q 'mesh: denied orders -> frontend 10.96.0.20:80' "$LOG"
sleep 1.1   # a fresh rate-limit window
before=$(grep -c 'mesh: denied' "$LOG")
r=$(in_cg intruder python3 "$PEERS" many 10.96.0.10 80 200)
t_eq "200 denied connects in a loop" "{'EPERM': 200}" "$(j 'd["errors"]' <<<"$r")"
wait_log 'more denial(s) in the last second not logged' 25
logged=$(($(grep -c 'mesh: denied' "$LOG") - before))
t_true "the loop cannot flood the log (<= 20 lines for 200 denials)" "<= 20" "$logged" test "$logged" -le 20
t_true "suppressed denials are reported as a count" "a 'N more denial(s)' line" \
	"$(grep -m1 -o '[0-9]* more denial(s)' "$LOG")" grep -q 'more denial(s) in the last second not logged' "$LOG"

t_section "tdctl mesh, tdctl status, metrics"
ctl --json mesh >"$TMP/mesh.json" 2>"$TMP/mesh.err"
t_eq "tdctl mesh: frontend -> orders connections" "300" \
	"$(t_json "$TMP/mesh.json" "[p['connections'] for p in d['pairs'] if p['src']=='frontend' and p['dst']=='orders'][0]")"
t_eq "tdctl mesh: unknown -> orders denials" "201" \
	"$(t_json "$TMP/mesh.json" "[p['denials'] for p in d['pairs'] if p['src']=='unknown' and p['dst']=='orders'][0]")"
t_eq "tdctl mesh: attached cgroup" "[\"$CGR\"]" "$(t_json "$TMP/mesh.json" "d['attached']")"
out=$(ctl mesh)
t_true "tdctl mesh table has the frontend -> orders row" "frontend orders 300" \
	"$(grep '^frontend' <<<"$out" | head -1)" grep -Eq '^frontend +orders +300 ' <<<"$out"
out=$(ctl mesh --watch 1 --count 2)
t_eq "tdctl mesh --watch 1 --count 2 prints two tables" "2" "$(grep -c '^SOURCE' <<<"$out")"
ctl mesh --watch 0 >/dev/null 2>&1
t_eq "tdctl mesh --watch 0 is a usage error" "2" "$?"
out=$(ctl status)
t_true "tdctl status mentions the mesh root" "attached to cgroup $CGR" \
	"$(grep '^mesh' <<<"$out" | head -1)" grep -qF "attached to cgroup $CGR" <<<"$out"
t_true "tdctl status shows the agent's mesh view" "'2 service(s) on cgroup'" \
	"$(grep 'agent: ' <<<"$out" | head -1)" grep -q 'mesh       agent: 2 service(s) on cgroup' <<<"$out"
scrape >"$TMP/m.prom" 2>&1
t_eq "metric td_mesh_connections_total{frontend,orders}" "300" \
	"$(awk '$1 == "td_mesh_connections_total{src=\"frontend\",dst=\"orders\"}" { print $2 }' "$TMP/m.prom")"
t_eq "metric td_mesh_denials_total{unknown,orders}" "201" \
	"$(awk '$1 == "td_mesh_denials_total{src=\"unknown\",dst=\"orders\"}" { print $2 }' "$TMP/m.prom")"
t_eq "metric td_mesh_events_total{deny_policy}" "202" \
	"$(awk '$1 == "td_mesh_events_total{event=\"deny_policy\"}" { print $2 }' "$TMP/m.prom")"
t_eq "metric td_mesh_bytes_total has both directions" "2" \
	"$(grep -c '^td_mesh_bytes_total{src="frontend",dst="orders",direction="[tr]x"}' "$TMP/m.prom")"

t_section "health failover: a killed backend leaves the table, an open connection stays"
in_cg frontend python3 "$PEERS" hold 10.96.0.10 80 7 >"$TMP/hold1.log" 2>&1 &
PIDS+=($!)
HOLD1=$!
for _ in $(seq 1 30); do [[ -s $TMP/hold1.log ]] && break; sleep 0.1; done
held=$(j 'd["backend"]' <"$TMP/hold1.log")
victim=o1
[[ $held == o1 ]] && victim=o2
vpid=PID_$victim
kill "${!vpid}" 2>/dev/null
t0=$(date +%s.%N)
ok=0
for _ in $(seq 1 30); do   # 6 s at most
	r=$(in_cg frontend python3 "$PEERS" many 10.96.0.10 80 30)
	if [[ $(j 'd["errors"] == {} and "'"$victim"'" not in d["backends"]' <<<"$r") == True ]]; then
		ok=1
		break
	fi
	sleep 0.2
done
dt=$(python3 -c "print(round($(date +%s.%N) - $t0, 1))")
t_eq "new connections avoid the killed backend $victim" "1" "$ok"
t_true "within interval*fall + 1 interval (3 s, +0.5 s slack)" "<= 3.5 s" "$dt s" \
	python3 -c "import sys; sys.exit(0 if $dt <= 3.5 else 1)"
t_true "agent logs the backend down" "health: mesh:orders/127.0.0.1:900x is down" \
	"$(grep -o "health: mesh:orders/[^ ]* is down" "$LOG" | head -1)" grep -q "health: mesh:orders/127.0.0.1:900[12] is down" "$LOG"
r=$(in_cg frontend python3 "$PEERS" many 10.96.0.10 80 100)
t_eq "100 more connections: none to $victim, no errors" "{} 0" \
	"$(j 'str(d["errors"]) + " " + str(d["backends"].get("'"$victim"'", 0))' <<<"$r")"
wait "$HOLD1"
t_eq "the connection held on $held still echoes" "True" "$(tail -n1 "$TMP/hold1.log" | j 'd["echo_ok"]')"
out=$(ctl status)
t_true "tdctl status lists the down mesh backend" "down: orders ..." \
	"$(grep 'down:' <<<"$out" | head -1)" grep -q 'down: orders 127.0.0.1:900[12]' <<<"$out"
vport=900${victim#o}
serve "$victim" "$vport"
wait_log "health: mesh:orders/127.0.0.1:$vport is up" 40
t_true "the restarted backend comes back (rise 2)" "is up" "$(grep -c "127.0.0.1:$vport is up" "$LOG")" \
	grep -q "health: mesh:orders/127.0.0.1:$vport is up" "$LOG"

t_section "reload: allow rules change, invalid reload changes nothing"
config "    - { from: orders, to: frontend }"
out=$(ctl reload 2>&1)
t_eq "reload with new allow rules accepted" "0" "$?"
r=$(in_cg frontend python3 "$PEERS" one 10.96.0.10 80)
t_eq "frontend -> orders now refused" "EPERM" "$(j 'd["errno"]' <<<"$r")"
r=$(in_cg orders python3 "$PEERS" one 10.96.0.20 80)
t_eq "orders -> frontend now allowed (reaches fe)" "True fe" "$(j 'str(d["ok"]) + " " + d["backend"]' <<<"$r")"
mesh_maps >"$TMP/before"
cp "$CFG" "$TMP/good.yaml"
config "    - { from: frontend, to: orders }" "    - name: billing
      cgroup: billing-missing
      vip: 10.96.0.30
      port: 80
      backends:
        - { address: 127.0.0.1, port: 9301 }"
out=$(ctl reload 2>&1)
rc=$?
t_true "reload naming a missing cgroup rejected" "exit 1 and the folder in the error" "exit $rc: $(head -c 160 <<<"$out")" \
	grep -q "billing-missing does not exist" <<<"$out"
printf 'mesh:\n  services: [ { name: x } ]\n' >"$CFG"
ctl reload >/dev/null 2>&1
t_eq "syntactically invalid reload rejected" "1" "$?"
mesh_maps >"$TMP/after"
t_true "invalid reloads left the mesh maps and programs as they were" "identical" \
	"$(diff "$TMP/before" "$TMP/after" | head -3 | tr '\n' ' ')" cmp -s "$TMP/before" "$TMP/after"
r=$(in_cg frontend python3 "$PEERS" one 10.96.0.10 80)
t_eq "frontend -> orders still refused" "EPERM" "$(j 'd["errno"]' <<<"$r")"
cp "$TMP/good.yaml" "$CFG"

t_section "mesh: section removed, then back"
sed '/^mesh:/,$d' "$TMP/good.yaml" >"$CFG"
ctl reload >/dev/null 2>&1
t_eq "reload without mesh: accepted" "0" "$?"
t_eq "programs detached from the cgroup root" "0" "$(n_progs)"
t_true "mesh pins stay" "$BPFFS/td_m_sk" "$(ls "$BPFFS" | grep -c '^td_m_') td_m_* pins" test -e "$BPFFS/td_m_sk"
r=$(in_cg orders python3 "$PEERS" one 10.96.0.20 80)
t_true "the VIP is no longer translated" "not ok" "$r" test "$(j 'd["ok"]' <<<"$r")" = False
config
ctl reload >/dev/null 2>&1
t_eq "reload with mesh: again accepted" "0" "$?"
t_ge "programs attached again" 8 "$(n_progs)"
r=$(in_cg frontend python3 "$PEERS" many 10.96.0.10 80 20)
t_eq "frontend -> orders translated again" "{}" "$(j 'd["errors"]' <<<"$r")"

t_section "agent restart keeps established connections"
in_cg frontend python3 "$PEERS" hold 10.96.0.10 80 4 >"$TMP/hold2.log" 2>&1 &
PIDS+=($!)
HOLD2=$!
for _ in $(seq 1 30); do [[ -s $TMP/hold2.log ]] && break; sleep 0.1; done
t_agent_stop TERM
t_eq "agent stopped cleanly" "0" "$T_AGENT_RC"
t_ge "programs stay attached while the agent is down" 8 "$(n_progs)"
r=$(in_cg frontend python3 "$PEERS" one 10.96.0.10 80)
t_eq "translation works with the agent down" "True" "$(j 'd["ok"]' <<<"$r")"
ctl --json mesh >"$TMP/mesh2.json" 2>&1
t_true "tdctl mesh works with the agent down" "frontend -> orders row" "$(head -c 120 "$TMP/mesh2.json")" \
	test "$(t_json "$TMP/mesh2.json" "len([p for p in d['pairs'] if p['src']=='frontend' and p['dst']=='orders'])")" = 1
mv "$LOG" "$TMP/agent1.log"
if t_agent_start "$NS" "$CFG" "$BPFFS" "$LOG"; then
	t_true "restart adopts the pinned mesh" "'programs adopted'" "$(grep -o 'mesh: programs [a-z]*' "$LOG")" \
		grep -q 'mesh: programs adopted' "$LOG"
else
	_t_record FAIL "agent restarts" "ready:" "not ready"
fi
wait "$HOLD2"
t_eq "connection opened before the restart still echoes" "True" "$(tail -n1 "$TMP/hold2.log" | j 'd["echo_ok"]')"
r=$(in_cg frontend python3 "$PEERS" many 10.96.0.10 80 20)
t_eq "new connections after the restart" "{}" "$(j 'd["errors"]' <<<"$r")"
t_ge "programs attached once after the restart (not doubled)" 8 "$(n_progs)"
t_true "... and not doubled" "<= 9" "$(n_progs)" test "$(n_progs)" -le 9

t_section "tdctl detach --all, tdagent --cleanup"
t_agent_stop TERM
out=$(ctl detach --all 2>&1)
t_true "tdctl detach --all detaches the mesh programs" "detached N mesh cgroup program(s)" \
	"$(tr '\n' ' ' <<<"$out")" grep -Eq '^detached (8|9) mesh cgroup program' <<<"$out"
t_eq "nothing attached to $CGR after detach --all" "0" "$(n_progs)"
mv "$LOG" "$TMP/agent2.log"
t_agent_start "$NS" "$CFG" "$BPFFS" "$LOG" || _t_record FAIL "agent restarts" "ready:" "not ready"
t_ge "a new agent attaches again" 8 "$(n_progs)"
t_agent_stop TERM
nsenter --net="/run/netns/$NS" "$TDAGENT" --cleanup --bpffs "$BPFFS" >"$TMP/cleanup.log" 2>&1
t_eq "tdagent --cleanup exits 0" "0" "$?"
t_eq "bpftool cgroup show $CGR is empty" "" "$(bpftool cgroup show "$CGR" 2>&1)"
t_true "no pins left" "$BPFFS gone" "$(ls "$BPFFS" 2>&1 | head -2 | tr '\n' ' ')" test ! -e "$BPFFS"
t_done
