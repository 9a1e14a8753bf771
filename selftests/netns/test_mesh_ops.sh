#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The mesh under the agent's operations (issue 4): a) agent restarts (SIGTERM, SIGKILL) and
# reloads (valid, invalid, several times) while 20 paced streams flow through the sockmap
# redirect path between two opted-in services: every byte verified, the redirect counters
# prove the path, and the SOCKHASH keeps every live member; b) a service whose backend is on
# another host (a server in another netns behind a veth): translation, getpeername and policy
# apply, the socket is not redirected; c) an IPv6 and a UDP service through the agent.
# Real processes in real cgroups under this test's own prefix. Usage: test_mesh_ops.sh BUILD
#
# Namespaces: $NSA runs the agent and the clients of b) and c) (10.77.0.1/24 on a veth to $NSR,
# the "other host" at 10.77.0.2); the streams of a) run in $NSW, whose loopback is its own: the
# agent health-checks orders' backend 127.0.0.1:9601 in $NSA (a plain listener there), so its
# checks never touch the verified stream server (cgroup hooks and maps are not per netns).
set -uo pipefail
source "$(dirname "$0")/lib.sh"

PEERS=$T_REPO/selftests/mesh/mesh_peers.py
CTL=$T_BUILD/bin/td_mesh_ctl
CG_MNT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
TMP=$(mktemp -d "/tmp/$T_PREFIX.XXXXXX")
BPFFS=/sys/fs/bpf/tdt-mops-$T_ID-$$
CGR=${CG_MNT:-/nonexistent}/tdt-mops-$T_ID-$$
NSA=tdt-mops-a-$T_ID-$$
NSR=tdt-mops-r-$T_ID-$$
NSW=tdt-mops-w-$T_ID-$$
ADMIN=$TMP/admin.sock
export TD_ADMIN_SOCKET=$ADMIN
CFG=$TMP/td.yaml
LOG=$TMP/agent.log
STREAMS=20
SBYTES=${TD_MOPS_BYTES:-134217728}   # 128 MiB over the 20 streams, both directions
PACE_MS=12000                        # the streams' payload is spread over 12 s
PIDS=()
CLEANED=0

cleanup() {
	((CLEANED)) && return 0
	CLEANED=1
	local p
	t_mesh_teardown "$NSA"
	for p in "$NSA" "$NSR" "$NSW"; do ip netns del "$p" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# in_cg NS FOLDER CMD...: CMD in cgroup $CGR/FOLDER and netns NS, at most 120 s
in_cg() {
	local ns=$1 cg=$2
	shift 2
	sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec nsenter --net="/run/netns/$0" timeout -k 5 120 "$@"' \
		"$ns" "$CGR/$cg" "$@"
}
j() { python3 -c 'import json,sys; d=json.loads(sys.stdin.read() or "{}"); print(eval(sys.argv[1]))' "$1"; }
ctl() { nsenter --net="/run/netns/$NSA" "$TDCTL" --bpffs "$BPFFS" --socket "$ADMIN" "$@"; }
cnt() { "$CTL" counters "$BPFFS" | awk -v k="$1" '$1 == k { print $2 }'; }
socks() { "$CTL" socks "$BPFFS"; }
n_progs() { bpftool cgroup show "$CGR" 2>/dev/null | grep -c ' td_m_'; }

# config [ORDERS_SOCKMAP] [EXTRA_ALLOW_LINE]: the test's config, written atomically
config() {
	cat >"$CFG.tmp" <<EOF
node:
  bpffs: $BPFFS
  admin_socket: $ADMIN
  metrics_listen: off
mesh:
  cgroup_root: $CGR
  default_policy: deny
  services:
    - name: orders
      cgroup: orders
      vip: 10.96.2.10
      port: 80
      sockmap: ${1:-true}
      backends:
        - { address: 127.0.0.1, port: 9601 }
    - name: frontend
      cgroup: frontend
      vip: 10.96.2.20
      port: 80
      sockmap: true
    - name: remote
      vip: 10.96.2.50
      port: 80
      sockmap: true
      backends:
        - { address: 10.77.0.2, port: 9001 }
    - name: v6
      vip: "fd00:96::10"
      port: 80
      backends:
        - { address: "::1", port: 9610 }
    - name: dns
      vip: 10.96.2.53
      port: 53
      proto: udp
      backends:
        - { address: 127.0.0.1, port: 9653 }
  allow:
    - { from: frontend, to: orders, ports: [80] }
    - { from: frontend, to: remote }
    - { from: frontend, to: v6 }
    - { from: frontend, to: dns }
${2:-}
EOF
	mv "$CFG.tmp" "$CFG"
}
# wait_log PATTERN [TENTHS]
wait_log() {
	local i
	for i in $(seq 1 "${2:-30}"); do
		grep -q -- "$1" "$LOG" && return 0
		sleep 0.1
	done
	return 1
}
# serve NS CGFOLDER|- NAME ARGS...: a mesh_peers server (in a cgroup of the test, or "-": none)
serve() {
	local ns=$1 cg=$2 name=$3
	shift 3
	if [[ $cg == - ]]; then
		ip netns exec "$ns" python3 "$PEERS" serve --lifetime 120 "$@" >"$TMP/srv-$name.log" 2>&1 &
	else
		in_cg "$ns" "$cg" python3 "$PEERS" serve --lifetime 120 "$@" >"$TMP/srv-$name.log" 2>&1 &
	fi
	PIDS+=($!)
}
AGENTS=1
# restart_agent SIGNAL: stop the agent with SIGNAL, check the members, start a new one
MEMBERS_SEEN=()
restart_agent() {
	local sig=$1 n
	t_agent_stop "$sig"
	n=$(socks)
	MEMBERS_SEEN+=("$n")
	t_eq "agent stopped with SIG$sig: live SOCKHASH members kept" "$N0" "$n"
	t_eq "programs stay attached while no agent runs" "9" "$(n_progs)"
	mv "$LOG" "$TMP/agent$AGENTS.log"
	AGENTS=$((AGENTS + 1))
	if t_agent_start "$NSA" "$CFG" "$BPFFS" "$LOG"; then
		t_true "new agent after SIG$sig adopts the pinned mesh" "'mesh: programs adopted'" \
			"$(grep -o 'mesh: programs [a-z]*' "$LOG")" grep -q 'mesh: programs adopted' "$LOG"
	else
		_t_record FAIL "new agent after SIG$sig ready" "ready:" "not ready (log above)"
	fi
	n=$(socks)
	MEMBERS_SEEN+=("$n")
	t_eq "after the new agent's start: members kept, programs attached once" "$N0 9" "$n $(n_progs)"
}
# reload_ok DESC / reload_bad DESC: tdctl reload with the file as it is now
reload_ok() {
	local out rc n
	out=$(ctl reload 2>&1)
	rc=$?
	n=$(socks)
	MEMBERS_SEEN+=("$n")
	t_eq "valid reload ($1): accepted, members kept" "0 $N0" "$rc $n"
	((rc == 0)) || sed 's/^/    | /' <<<"$out"
}
reload_bad() {
	local out rc n
	out=$(ctl reload 2>&1)
	rc=$?
	n=$(socks)
	MEMBERS_SEEN+=("$n")
	t_eq "invalid reload ($1): rejected, members kept" "1 $N0" "$rc $n"
	((rc == 1)) || sed 's/^/    | /' <<<"$out"
}

t_section "cgroups under $CGR, netns $NSA/$NSR/$NSW, bpffs $BPFFS"
if [[ -z $CG_MNT || ! -x $CTL ]]; then
	_t_record FAIL "cgroup2 mounted and td_mesh_ctl built" "both" "cgroup2 '$CG_MNT', $CTL"
	t_done
fi
t_require_bins || t_done
topo_bpffs_mount
mkdir -p "$CGR"/{frontend,orders,intruder}
for ns in "$NSA" "$NSR" "$NSW"; do
	ip netns add "$ns" && ip -n "$ns" link set lo up
done
# the "other host": $NSR behind a veth, no route anywhere else
ip -n "$NSA" link add va type veth peer name vr netns "$NSR"
ip -n "$NSA" addr add 10.77.0.1/24 dev va
ip -n "$NSR" addr add 10.77.0.2/24 dev vr
ip -n "$NSA" link set va up
ip -n "$NSR" link set vr up
serve "$NSR" - far --tcp 10.77.0.2,9001,far          # outside the mesh: a remote host
serve "$NSA" - hc --tcp 127.0.0.1,9601,hc            # what the agent health-checks for orders
serve "$NSA" orders v6 --tcp ::1,9610,v6 --udp 127.0.0.1,9653,dns
for _ in $(seq 1 50); do
	[[ $(cat "$TMP"/srv-*.log 2>/dev/null | grep -c ready) -ge 3 ]] && break
	sleep 0.1
done
config

t_section "start-up"
if ! t_agent_start "$NSA" "$CFG" "$BPFFS" "$LOG"; then
	_t_record FAIL "tdagent ready with a mesh: section" "ready:" "not ready (log above)"
	t_done
fi
t_eq "mesh programs attached to the test's cgroup root (8 + sockops)" "9" "$(n_progs)"

t_section "c) IPv6 and UDP services through the agent (right after its start)"
r=$(in_cg "$NSA" frontend python3 "$PEERS" one fd00:96::10 80)
t_eq "IPv6: connect to [fd00:96::10]:80 reaches ::1:9610, getpeername shows the VIP" \
	"True v6 [fd00:96::10]:80" "$(j 'str(d["ok"]) + " " + d["backend"] + " " + d["peer"]' <<<"$r")"
r=$(in_cg "$NSA" frontend python3 "$PEERS" udp 10.96.2.53 53)
t_eq "UDP: sendto 10.96.2.53:53 answered by 127.0.0.1:9653, recvfrom shows the VIP" \
	"dns 10.96.2.53:53" "$(j 'd["reply"] + " " + d["source"] + d["errno"]' <<<"$r")"
r=$(in_cg "$NSA" intruder python3 "$PEERS" one fd00:96::10 80)
t_eq "IPv6: unknown -> v6 refused" "EPERM" "$(j 'd["errno"]' <<<"$r")"

t_section "b) a backend on another host (10.77.0.2:9001 in $NSR, over a veth)"
ja=$(cnt sock_join_active) jp=$(cnt sock_join_passive) mr=$(cnt msg_redirect) np=$(cnt msg_pass_no_peer)
rx0=$(ip -n "$NSR" -j -s link show vr | j 'd[0]["stats64"]["rx"]["packets"]')
r=$(in_cg "$NSA" frontend python3 "$PEERS" hold 10.96.2.50 80 0.2)
echo "    $r" | tr '\n' ' '
echo
t_eq "remote: connect to 10.96.2.50:80 reaches 'far', getpeername shows the VIP" "True far 10.96.2.50:80" \
	"$(head -1 <<<"$r" | j 'str(d["ok"]) + " " + d["backend"] + " " + d["peer"]')"
t_eq "remote: a line echoed over the TCP path" "True" "$(tail -1 <<<"$r" | j 'd.get("echo_ok")')"
rx1=$(ip -n "$NSR" -j -s link show vr | j 'd[0]["stats64"]["rx"]["packets"]')
t_ge "remote: the packets crossed the veth into $NSR" 4 "$((rx1 - rx0))"
t_eq "remote: the client socket joined (both services opted in), no passive join (remote end)" \
	"1 0" "$(($(cnt sock_join_active) - ja)) $(($(cnt sock_join_passive) - jp))"
t_eq "remote: not redirected: 0 msg_redirect, its message took the TCP path (msg_pass_no_peer)" \
	"0 1" "$(($(cnt msg_redirect) - mr)) $(($(cnt msg_pass_no_peer) - np))"
r=$(in_cg "$NSA" intruder python3 "$PEERS" one 10.96.2.50 80)
t_eq "remote: policy applies: unknown -> remote refused" "EPERM" "$(j 'd["errno"]' <<<"$r")"
r=$(in_cg "$NSA" orders python3 "$PEERS" one 10.96.2.50 80)
t_eq "remote: policy applies: orders -> remote (no rule) refused" "EPERM" "$(j 'd["errno"]' <<<"$r")"
out=$("$CTL" pair "$BPFFS" frontend remote)
t_eq "remote: pair frontend -> remote counts the connection" "1" "$(awk '{ print $2 }' <<<"$out")"
wait_log 'mesh: denied orders -> remote'
t_true "remote: the denial is logged with both identities" "'denied orders -> remote 10.96.2.50:80/tcp'" \
	"$(grep -c 'denied orders -> remote' "$LOG") line(s)" grep -q 'mesh: denied orders -> remote 10.96.2.50:80/tcp' "$LOG"

t_section "a) restart and reload while $STREAMS paced streams flow through the redirect path"
in_cg "$NSW" orders "$CTL" stress-server 127.0.0.1 9601 "$STREAMS" 90 31 >"$TMP/srv-live.out" 2>"$TMP/srv-live.err" &
SPID=$!
PIDS+=("$SPID")
for _ in $(seq 1 50); do grep -q ready "$TMP/srv-live.out" 2>/dev/null && break; sleep 0.1; done
in_cg "$NSW" frontend "$CTL" stress-client 10.96.2.10 80 "$STREAMS" "$SBYTES" 90 31 0 "$PACE_MS" \
	>"$TMP/cli-live.out" 2>"$TMP/cli-live.err" &
CPID=$!
PIDS+=("$CPID")
sleep 1
N0=$(socks)
M0=$(cnt msg_redirect)
t_eq "all $STREAMS streams joined at establishment (both ends: members)" "$((STREAMS * 2))" "$N0"
restart_agent TERM
restart_agent KILL
config false
reload_ok "orders sockmap: false"
j1=$(cnt sock_join_active)
r=$(in_cg "$NSA" frontend python3 "$PEERS" one 10.96.2.10 80)
t_eq "after sockmap: false a new connection is translated but does not join" "True hc 0" \
	"$(j 'str(d["ok"]) + " " + d["backend"]' <<<"$r") $(($(cnt sock_join_active) - j1))"
config true
reload_ok "orders sockmap: true again"
config true "    - { from: orders, to: remote }"
reload_ok "an allow rule added"
printf '  bad: [unclosed\n' >>"$CFG"
reload_bad "YAML syntax error"
config true "    - { from: frontend, to: orders, ports: [81] }"
reload_bad "an allow rule on a port orders does not have"
config true
sed -i 's/cgroup: orders$/cgroup: orders-missing/' "$CFG"
reload_bad "a cgroup folder that does not exist"
config true
reload_ok "back to the start"
restart_agent TERM
M1=$(cnt msg_redirect)
running=0
kill -0 "$CPID" 2>/dev/null && running=1
t_eq "the streams were still running through all of it" "1" "$running"
t_true "SOCKHASH members never changed while the streams lived" "all $N0" "${MEMBERS_SEEN[*]}" \
	test -z "$(printf '%s\n' "${MEMBERS_SEEN[@]}" | grep -vx "$N0")"
wait "$CPID" "$SPID"
rc=$(tail -1 "$TMP/cli-live.out") rs=$(tail -1 "$TMP/srv-live.out")
echo "    client: $rc"
echo "    server: $rs"
t_eq "every stream verified byte by byte (client and server)" \
	"$STREAMS ok, 0 bad, 0 unfinished / $STREAMS ok, 0 bad" \
	"$(j '"%d ok, %d bad, %d unfinished" % (d["ok"], d["bad"], d["unfinished"])' <<<"$rc") / $(j '"%d ok, %d bad" % (d["ok"], d["bad"])' <<<"$rs")"
t_ge "all the streams' bytes arrived (split per stream and direction: remainders dropped)" \
	"$((SBYTES - 2 * STREAMS))" "$(j 'd["bytes"]' <<<"$rc")"
t_ge "redirect counters: messages redirected before the last restart" "$((M0 + 100))" "$M1"
t_ge "redirect counters: and after it (the path survived every change)" "$((M1 + 1))" "$(cnt msg_redirect)"
t_ge "redirected bytes >= 90% of the streams' bytes" "$((SBYTES * 9 / 10))" "$(cnt msg_redirect_bytes)"
t_eq "members gone once the streams closed" "0" "$(socks)"

t_section "c) again, after the agent's health checks have run (> 3 s after the last start)"
sleep 3.5
r=$(in_cg "$NSA" frontend python3 "$PEERS" one fd00:96::10 80)
t_eq "IPv6 service still reachable" "True v6 [fd00:96::10]:80" \
	"$(j 'str(d["ok"]) + " " + d["backend"] + " " + d["peer"]' <<<"$r")"
r=$(in_cg "$NSA" frontend python3 "$PEERS" udp 10.96.2.53 53 --connect)
t_eq "UDP service still reachable (connected UDP: getpeername shows the VIP)" \
	"dns 10.96.2.53:53 10.96.2.53:53" "$(j 'd["reply"] + " " + d["peer"] + " " + d["source"] + d["errno"]' <<<"$r")"
# A UDP service's backends get the agent's TCP connect check like TCP ones (user/agent/mesh.c,
# td_agent_mesh_targets): a UDP-only backend is then "down" and leaves the table. Shown here:
grep -m1 -o 'health: mesh:dns/.* is down.*' "$LOG" | sed 's/^/    agent: /'


t_section "teardown"
t_agent_stop TERM
nsenter --net="/run/netns/$NSA" "$TDAGENT" --cleanup --bpffs "$BPFFS" >"$TMP/cleanup.log" 2>&1
t_eq "tdagent --cleanup exits 0" "0" "$?"
t_eq "nothing attached to $CGR" "" "$(bpftool cgroup show "$CGR" 2>&1)"
t_true "no pins left" "$BPFFS gone" "$(ls "$BPFFS" 2>&1 | head -2 | tr '\n' ' ')" test ! -e "$BPFFS"
t_done
