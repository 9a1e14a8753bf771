#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Mesh kernel layer end to end: real processes in real cgroup2 folders (under this test's own
# prefix) and a private netns; VIP translation by weight (TCP v4/v6/v4-mapped, UDP), the VIP
# seen by getpeername/recvfrom, identity policy with EPERM and ring-buffer events, failover
# without touching open connections, missing-cgroup errors, detach. Usage: test_mesh_connect.sh BUILD
set -uo pipefail
source "$(dirname "$0")/lib.sh"

N_CONN=${TD_MESH_CONNECTIONS:-1000}
MESH_CTL=$T_BUILD/bin/td_mesh_ctl
PEERS=$T_REPO/selftests/mesh/mesh_peers.py

CG_MNT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
TMP=$(mktemp -d "/tmp/$T_PREFIX.XXXXXX")
BPFFS=/sys/fs/bpf/tdt-mesh-$T_ID-$$
CGR=${CG_MNT:-/nonexistent}/tdt-mesh-$T_ID-$$
NS=tdt-mesh-$T_ID-$$
PIDS=()
CLEANED=0

cleanup() {
	((CLEANED)) && return 0
	CLEANED=1
	local p d pid
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	if [[ -d $CGR ]]; then
		# every process left in our folders is ours: kill it, then remove the folders
		t_cgroup_kill "$CGR"
		for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
		[[ -d $BPFFS ]] && "$MESH_CTL" detach "$BPFFS" "$CGR" >/dev/null 2>&1
		t_cgroup_remove "$CGR"
	fi
	if [[ -d $BPFFS ]]; then
		"$MESH_CTL" unpin "$BPFFS" >/dev/null 2>&1
		rm -rf "$BPFFS"
	fi
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
# jq-like: j 'EXPR' <<< JSON  (python expression over d)
j() {
	python3 -c 'import json,sys; d=json.loads(sys.stdin.read() or "{}"); print(eval(sys.argv[1]))' "$1"
}

t_section "cgroups under $CGR, netns $NS, bpffs $BPFFS"
if [[ -z $CG_MNT ]]; then
	_t_record FAIL "cgroup2 mounted" "a cgroup2 line in /proc/mounts" "none"
	t_done
fi
topo_bpffs_mount
if [[ ! -x $MESH_CTL ]]; then
	_t_record FAIL "td_mesh_ctl built" "$MESH_CTL (make all)" "missing"
	t_done
fi
mkdir -p "$CGR"/{frontend,orders,intruder,frontend/worker}
ip netns add "$NS" && ip -n "$NS" link set lo up
sleep 0.5   # ::1 leaves tentative state

in_cg orders python3 "$PEERS" serve --lifetime 240 \
	--tcp 127.0.0.1,9001,o1 --tcp 127.0.0.1,9002,o2 --tcp 127.0.0.1,9003,o3 \
	--tcp ::1,9101,o6a --tcp ::1,9102,o6b --udp 127.0.0.1,9053,dns1 \
	--udp ::1,9153,dns6 >"$TMP/srv.log" 2>&1 &
PIDS+=($!)
in_cg frontend python3 "$PEERS" serve --lifetime 240 --tcp 127.0.0.1,9201,fe \
	>"$TMP/srv-fe.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do
	[[ $(cat "$TMP/srv.log" "$TMP/srv-fe.log" 2>/dev/null | grep -c ready) -ge 2 ]] && break
	sleep 0.1
done

cat >"$TMP/mesh.yaml" <<EOF
mesh:
  cgroup_root: $CGR
  default_policy: deny
  services:
    - name: orders
      cgroup: orders
      vip: 10.96.0.10
      port: 80
      backends:
        - { address: 127.0.0.1, port: 9001, weight: 1 }
        - { address: 127.0.0.1, port: 9002, weight: 3 }
        - { address: 127.0.0.1, port: 9003, weight: 0 }
    - name: orders6
      vip: fd00:96::10
      port: 80
      backends:
        - { address: "::1", port: 9101 }
        - { address: "::1", port: 9102 }
    - name: dns
      vip: 10.96.0.53
      port: 53
      proto: udp
      backends:
        - { address: 127.0.0.1, port: 9053 }
    - name: dns6
      vip: fd00:96::53
      port: 53
      proto: udp
      backends:
        - { address: "::1", port: 9153 }
    - name: frontend
      cgroup: frontend
      vip: 10.96.0.20
      port: 80
      backends:
        - { address: 127.0.0.1, port: 9201 }
  allow:
    - { from: frontend, to: orders, ports: [80] }
    - { from: frontend, to: orders6 }
    - { from: frontend, to: dns }
    - { from: frontend, to: dns6 }
EOF

t_section "load, apply, attach"
out=$("$MESH_CTL" load "$BPFFS" 2>&1)
t_eq "load creates the mesh maps" "created" "$out"
out=$("$MESH_CTL" load "$BPFFS" 2>&1)
t_eq "second load adopts the pinned maps" "adopted" "$out"
"$MESH_CTL" apply "$BPFFS" "$TMP/mesh.yaml" 2>"$TMP/apply.log"
t_eq "apply mesh config" "0" "$?"
"$MESH_CTL" attach "$BPFFS" "$CGR" 2>"$TMP/attach.log"
t_eq "attach to $CGR" "0" "$?"
"$MESH_CTL" attach "$BPFFS" "$CGR" 2>>"$TMP/attach.log"
n=$(bpftool cgroup show "$CGR" 2>/dev/null | grep -c ' td_m_')
t_eq "9 programs attached once (8 + sockops; re-attach is idempotent)" "9" "$n"

t_section "translation by weight (TCP IPv4)"
r=$(in_cg frontend python3 "$PEERS" many 10.96.0.10 80 "$N_CONN")
o1=$(j 'd["backends"].get("o1",0)' <<<"$r")
o2=$(j 'd["backends"].get("o2",0)' <<<"$r")
o3=$(j 'd["backends"].get("o3",0)' <<<"$r")
peers=$(j 'sorted(d["peers"].keys())' <<<"$r")
errs=$(j 'd["errors"]' <<<"$r")
t_eq "$N_CONN connections: no errors" "{}" "$errs"
t_eq "all $N_CONN reached o1 or o2" "$N_CONN" "$((o1 + o2))"
t_eq "weight 0 backend o3 never chosen" "0" "$o3"
# weights 1:3 -> 25%; 5 standard deviations of a binomial with n=1000 is about +-69
lo=$((N_CONN * 25 / 100 - N_CONN * 7 / 100)) hi=$((N_CONN * 25 / 100 + N_CONN * 7 / 100))
t_true "o1 share follows weight 1 of 4 ($lo..$hi)" "$lo..$hi" "$o1" test "$o1" -ge "$lo" -a "$o1" -le "$hi"
t_eq "getpeername shows the VIP on every connection" "['10.96.0.10:80']" "$peers"
out=$("$MESH_CTL" pair "$BPFFS" frontend orders)
t_eq "pair counter frontend->orders counts the connections" "connections $N_CONN" \
	"$(awk '{print $1, $2}' <<<"$out")"

t_section "nested cgroup, IPv6, v4-mapped"
r=$(in_cg frontend/worker python3 "$PEERS" one 10.96.0.10 80)
t_eq "a process in frontend/worker has frontend's identity" "True" "$(j 'd["ok"]' <<<"$r")"
r=$(in_cg frontend python3 "$PEERS" many fd00:96::10 80 200)
t_eq "IPv6: 200 connections, no errors" "{}" "$(j 'd["errors"]' <<<"$r")"
t_eq "IPv6: both backends used" "['o6a', 'o6b']" "$(j 'sorted(d["backends"].keys())' <<<"$r")"
t_eq "IPv6: getpeername shows the VIP" "['[fd00:96::10]:80']" "$(j 'sorted(d["peers"].keys())' <<<"$r")"
r=$(in_cg frontend python3 "$PEERS" one ::ffff:10.96.0.10 80 --family 6)
t_eq "v4-mapped IPv6 socket reaches an orders backend" "True" "$(j 'd["ok"] and d["backend"] in ("o1","o2")' <<<"$r")"
t_eq "v4-mapped getpeername shows the mapped VIP" "[::ffff:10.96.0.10]:80" "$(j 'd["peer"]' <<<"$r")"

t_section "UDP through sendmsg/recvmsg"
r=$(in_cg frontend python3 "$PEERS" udp 10.96.0.53 53)
t_eq "UDP sendto VIP: backend answers" "dns1" "$(j 'd["reply"]' <<<"$r")"
t_eq "UDP recvfrom shows the VIP as source" "10.96.0.53:53" "$(j 'd["source"]' <<<"$r")"
r=$(in_cg frontend python3 "$PEERS" udp 10.96.0.53 53 --connect)
t_eq "connected UDP: backend answers" "dns1" "$(j 'd["reply"]' <<<"$r")"
t_eq "connected UDP: getpeername shows the VIP" "10.96.0.53:53" "$(j 'd["peer"]' <<<"$r")"
r=$(in_cg frontend python3 "$PEERS" udp fd00:96::53 53)
t_eq "UDP IPv6 recvfrom shows the VIP" "dns6 [fd00:96::53]:53" "$(j 'd["reply"] + " " + d["source"]' <<<"$r")"

t_section "policy"
"$MESH_CTL" events "$BPFFS" 100 100 >/dev/null 2>&1   # drain anything earlier
r=$(in_cg intruder python3 "$PEERS" one 10.96.0.10 80)
t_eq "unknown cgroup denied under default deny" "EPERM" "$(j 'd["errno"]' <<<"$r")"
t_true "denial is immediate (< 100 ms)" "< 100" "$(j 'd["ms"]' <<<"$r")" \
	python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 100 else 1)" "$(j 'd["ms"]' <<<"$r")"
r=$(in_cg orders python3 "$PEERS" one 10.96.0.20 80)
t_eq "orders -> frontend (no rule) denied" "EPERM" "$(j 'd["errno"]' <<<"$r")"
r=$(in_cg orders python3 "$PEERS" udp 10.96.0.53 53)
t_eq "orders -> dns (UDP, no rule) denied at sendmsg" "EPERM" "$(j 'd["errno"]' <<<"$r")"
ev=$("$MESH_CTL" events "$BPFFS" 3 2000 2>&1)
printf '%s\n' "$ev" | sed 's/^/    event: /'
t_true "event names unknown -> orders" "a line 'denied unknown -> orders 10.96.0.10:80/tcp (connect)'" \
	"$(grep -c 'denied unknown -> orders 10.96.0.10:80/tcp (connect)' <<<"$ev") line(s)" \
	grep -q 'denied unknown -> orders 10.96.0.10:80/tcp (connect) pid [0-9]* comm python3 cgroup [0-9]' <<<"$ev"
t_true "event names orders -> frontend" "a line 'denied orders -> frontend'" \
	"$(grep -c 'denied orders -> frontend' <<<"$ev") line(s)" grep -q 'denied orders -> frontend' <<<"$ev"
t_true "event for the UDP denial (sendmsg)" "a line 'denied orders -> dns ... (sendmsg)'" \
	"$(grep -c '(sendmsg)' <<<"$ev") line(s)" grep -q 'denied orders -> dns 10.96.0.53:53/udp (sendmsg)' <<<"$ev"
cg_intruder=$("$MESH_CTL" cgid "$CGR/intruder")
t_true "event carries the intruder's cgroup id" "cgroup $cg_intruder" "$(grep -o 'unknown.*cgroup [0-9]*' <<<"$ev" | head -1)" \
	grep -q "denied unknown.* cgroup $cg_intruder\$" <<<"$ev"
out=$("$MESH_CTL" counters "$BPFFS")
t_eq "deny_policy counter" "3" "$(awk '$1=="deny_policy"{print $2}' <<<"$out")"
out=$("$MESH_CTL" pair "$BPFFS" unknown orders)
t_eq "pair counter unknown->orders: 1 denial" "denials 1" "$(grep -o 'denials [0-9]*' <<<"$out")"
# outside the mesh root the hooks do not run: the VIP is not translated (no route in the netns)
r=$(sh -c 'exec nsenter --net="/run/netns/$0" python3 "$1" one 10.96.0.10 80' "$NS" "$PEERS")
t_eq "a process outside $CGR is not translated" "ENETUNREACH" "$(j 'd["errno"]' <<<"$r")"

t_section "failover: an unhealthy backend gets no new connections, open ones stay"
in_cg frontend python3 "$PEERS" hold 10.96.0.10 80 4 >"$TMP/hold.log" &
HOLD=$!
PIDS+=($HOLD)
for _ in $(seq 1 50); do [[ -s $TMP/hold.log ]] && break; sleep 0.1; done
held=$(head -1 "$TMP/hold.log" | j 'd["backend"]')
other=o1 other_port=9001
[[ $held == o1 ]] && other=o2 other_port=9002
"$MESH_CTL" backends "$BPFFS" orders "127.0.0.1,$other_port,1"
r=$(in_cg frontend python3 "$PEERS" many 10.96.0.10 80 200)
t_eq "after removing $held: all 200 new connections on $other" "{'$other': 200}" "$(j 'd["backends"]' <<<"$r")"
wait "$HOLD"
t_eq "the connection open on $held still works" "True" "$(tail -1 "$TMP/hold.log" | j 'd["echo_ok"]')"
"$MESH_CTL" backends "$BPFFS" orders
r=$(in_cg frontend python3 "$PEERS" one 10.96.0.10 80)
t_eq "no healthy backend: connect() fails with ECONNREFUSED" "ECONNREFUSED" "$(j 'd["errno"]' <<<"$r")"
ev=$("$MESH_CTL" events "$BPFFS" 1 2000 2>&1)
t_true "no-backend event" "'no healthy backend for frontend -> orders'" "$ev" \
	grep -q 'no healthy backend for frontend -> orders' <<<"$ev"

t_section "config changes: default allow, missing cgroup"
sed 's/default_policy: deny/default_policy: allow/' "$TMP/mesh.yaml" >"$TMP/allow.yaml"
"$MESH_CTL" apply "$BPFFS" "$TMP/allow.yaml" 2
r=$(in_cg intruder python3 "$PEERS" one 10.96.0.10 80)
t_eq "default allow: unknown reaches orders (backends restored by apply)" "True" "$(j 'd["ok"]' <<<"$r")"
sed 's|cgroup: orders|cgroup: orders/missing|' "$TMP/mesh.yaml" >"$TMP/missing.yaml"
"$MESH_CTL" apply "$BPFFS" "$TMP/missing.yaml" 3 2>"$TMP/missing.log"
rc=$?
t_eq "apply with a missing cgroup fails" "1" "$rc"
t_true "the error names the service and the cgroup" "service 'orders': cgroup $CGR/orders/missing does not exist" \
	"$(head -1 "$TMP/missing.log")" grep -q "service 'orders': cgroup $CGR/orders/missing does not exist" "$TMP/missing.log"
r=$(in_cg intruder python3 "$PEERS" one 10.96.0.10 80)
t_eq "nothing was applied: default allow still in force" "True" "$(j 'd["ok"]' <<<"$r")"

t_section "detach"
n=$("$MESH_CTL" detach "$BPFFS" "$CGR")
t_eq "detach removes the 9 programs (8 + sockops)" "9" "$n"
n=$(bpftool cgroup show "$CGR" 2>/dev/null | grep -c ' td_m_')
t_eq "nothing td left attached to $CGR" "0" "$n"
r=$(in_cg frontend python3 "$PEERS" one 10.96.0.10 80)
t_eq "after detach the VIP is not translated" "ENETUNREACH" "$(j 'd["errno"]' <<<"$r")"

t_done
