#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Mesh sockmap redirect (issue 4) end to end: real processes in real cgroups (under this test's
# own prefix) and a private netns. 1) integrity under stress: 200 concurrent epoll connections,
# random write sizes, half-closes and resets, every byte checked, redirect on / off / with a
# tiny budget (switching paths under load); 2) the six changed semantics as the running kernel
# shows them, and plain TCP semantics for a service that did not opt in; 3) sockmap: false and a
# program reload under a redirected stream lose no byte and delete no entry.
# Usage: test_mesh_sockmap.sh BUILD   (TD_SM_BYTES: total bytes of the stress runs, 1 GiB)
set -uo pipefail
source "$(dirname "$0")/lib.sh"

BYTES=${TD_SM_BYTES:-1073741824}
CONNS=200
CTL=$T_BUILD/bin/td_mesh_ctl
SEM=$T_REPO/selftests/mesh/sockmap_sem.py
CG_MNT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
TMP=$(mktemp -d "/tmp/$T_PREFIX.XXXXXX")
BPFFS=/sys/fs/bpf/tdt-sm-$T_ID-$$
CGR=${CG_MNT:-/nonexistent}/tdt-sm-$$
ROOT=$CGR/mesh
NS=tdt-sm-$T_ID-$$
CLEANED=0

cleanup() {
	((CLEANED)) && return 0
	CLEANED=1
	local d pid
	if [[ -d $CGR ]]; then
		t_cgroup_kill "$CGR"
		sleep 0.2
		[[ -d $BPFFS ]] && "$CTL" detach "$BPFFS" "$ROOT" >/dev/null 2>&1
		t_cgroup_remove "$CGR"
	fi
	if [[ -d $BPFFS ]]; then
		"$CTL" unpin "$BPFFS" >/dev/null 2>&1
		rm -rf "$BPFFS"
	fi
	ip netns del "$NS" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# in_cg FOLDER CMD...: CMD in cgroup $CGR/FOLDER and the test netns, at most 150 s
in_cg() {
	local cg=$1
	shift
	sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec nsenter --net="/run/netns/$0" timeout -k 5 150 "$@"' \
		"$NS" "$CGR/$cg" "$@"
}
j() { python3 -c 'import json,sys; d=json.loads(sys.stdin.read() or "{}"); print(eval(sys.argv[1]))' "$1"; }
cnt() { "$CTL" counters "$BPFFS" | awk -v k="$1" '$1 == k { print $2 }'; }

# config: SM = sockmap of the opted-in services
write_cfg() {
	cat >"$TMP/mesh.yaml" <<EOF2
mesh:
  cgroup_root: $ROOT
  default_policy: allow
  services:
    - name: frontend
      cgroup: frontend
      vip: 10.96.1.20
      port: 80
      sockmap: $1
      backends:
        - { address: 127.0.0.1, port: 9520 }
    - name: orders
      cgroup: orders
      vip: 10.96.1.10
      port: 80
      sockmap: $1
      backends:
        - { address: 127.0.0.1, port: 9501 }
    - name: sem
      vip: 10.96.1.40
      port: 80
      sockmap: $1
      backends:
        - { address: 127.0.0.1, port: 9540 }
    - name: plain
      vip: 10.96.1.30
      port: 80
      sockmap: false
      backends:
        - { address: 127.0.0.1, port: 9530 }
    - name: remote
      vip: 10.96.1.50
      port: 80
      sockmap: $1
      backends:
        - { address: 127.0.0.1, port: 9550 }
EOF2
}

# stress NAME SEED: the epoll suite, orders server + frontend client; sets R_CLI, R_SRV
stress() {
	local name=$1 seed=$2
	in_cg mesh/orders "$CTL" stress-server 127.0.0.1 9501 "$CONNS" 120 "$seed" \
		>"$TMP/srv-$name.out" 2>"$TMP/srv-$name.err" &
	local spid=$!
	for _ in $(seq 1 50); do grep -q ready "$TMP/srv-$name.out" 2>/dev/null && break; sleep 0.1; done
	R_CLI=$(in_cg mesh/frontend "$CTL" stress-client 10.96.1.10 80 "$CONNS" "$BYTES" 120 "$seed" 50 \
		2>"$TMP/cli-$name.err")
	wait "$spid"
	R_SRV=$(tail -1 "$TMP/srv-$name.out")
	echo "    client: $R_CLI"
	echo "    server: $R_SRV"
}

check_stress() {
	local name=$1
	t_eq "$name: all $CONNS client streams verified" "$CONNS ok, 0 bad, 0 unfinished" \
		"$(j '"%d ok, %d bad, %d unfinished" % (d["ok"], d["bad"], d["unfinished"])' <<<"$R_CLI")"
	t_eq "$name: all $CONNS server streams verified (resets: verified prefix)" "$CONNS ok, 0 bad" \
		"$(j '"%d ok, %d bad" % (d["ok"], d["bad"])' <<<"$R_SRV")"
	t_true "$name: resets exercised and seen by the server" "> 0 resets" \
		"$(j 'd["resets"]' <<<"$R_CLI") resets, $(j 'd["resets_seen"]' <<<"$R_SRV") seen" \
		test "$(j 'd["resets"]' <<<"$R_CLI")" -gt 0
}

t_section "cgroups under $CGR (mesh root $ROOT), netns $NS, bpffs $BPFFS"
if [[ -z $CG_MNT || ! -x $CTL ]]; then
	_t_record FAIL "cgroup2 mounted and td_mesh_ctl built" "both" "cgroup2 '$CG_MNT', $CTL"
	t_done
fi
topo_bpffs_mount
mkdir -p "$ROOT"/{frontend,orders} "$CGR/outside"
ip netns add "$NS" && ip -n "$NS" link set lo up
write_cfg true
t_eq "load (sock_lb, sockops, sk_msg)" "created" "$("$CTL" load "$BPFFS" 2>&1)"
"$CTL" apply "$BPFFS" "$TMP/mesh.yaml" && "$CTL" attach "$BPFFS" "$ROOT"
t_eq "apply + attach" "0" "$?"
t_eq "9 cgroup programs attached (8 + sockops)" "9" \
	"$(bpftool cgroup show "$ROOT" 2>/dev/null | grep -c ' td_m_')"
t_eq "sk_msg attached to td_m_socks" "1" \
	"$(bpftool prog show pinned "$BPFFS/prog_m_msg" 2>/dev/null | grep -c 'sk_msg')"

t_section "1a. integrity under stress, redirect on: $CONNS conns, $BYTES bytes, 5% resets"
stress on 11
R_ON=$R_CLI
check_stress "redirect on"
t_ge "redirect on: sockets joined at establishment (active)" "$CONNS" "$(cnt sock_join_active)"
t_ge "redirect on: accepted sockets joined (passive)" "$CONNS" "$(cnt sock_join_passive)"
rb=$(cnt msg_redirect_bytes)
t_ge "redirect on: >= 90% of the bytes redirected" "$((BYTES * 9 / 10))" "$rb"
t_eq "all members gone once their sockets closed" "0" "$("$CTL" socks "$BPFFS")"
pair=$("$CTL" pair "$BPFFS" frontend orders)
echo "    pair: $pair"
t_ge "pair frontend->orders: bytes each way count redirected payload" "$((BYTES * 9 / 10))" \
	"$(awk '{ print $10 + $12 }' <<<"$pair")"
T_ON_MS=$(j 'd["ms"]' <<<"$R_CLI")

t_section "1b. same suite, redirect budget 64 KiB: paths switch under load, order kept"
"$CTL" load "$BPFFS" 65536 >/dev/null && "$CTL" attach "$BPFFS" "$ROOT"
b0=$(cnt msg_pass_budget) r0=$(cnt msg_rearm) p0=$(cnt msg_pass_tcp)
stress budget 12
check_stress "budget 64 KiB"
t_ge "budget 64 KiB: switches to the TCP path" "1" "$(($(cnt msg_pass_budget) - b0))"
t_ge "budget 64 KiB: messages on the TCP path" "1" "$(($(cnt msg_pass_tcp) - p0))"
t_ge "budget 64 KiB: switches back to redirect" "1" "$(($(cnt msg_rearm) - r0))"

t_section "1c. same suite, redirect off (sockmap: false): same results, plain TCP"
"$CTL" load "$BPFFS" >/dev/null && "$CTL" attach "$BPFFS" "$ROOT"
write_cfg false
"$CTL" apply "$BPFFS" "$TMP/mesh.yaml" 2
j0=$(cnt sock_join_active) m0=$(cnt msg_redirect)
stress off 11
check_stress "redirect off"
t_eq "redirect off: no socket joined" "0" "$(($(cnt sock_join_active) - j0))"
t_eq "redirect off: no message redirected" "0" "$(($(cnt msg_redirect) - m0))"
t_eq "redirect off: same bytes as redirect on (same seed)" "$(j 'd["bytes"]' <<<"$R_ON")" \
	"$(j 'd["bytes"]' <<<"$R_CLI")"
T_OFF_MS=$(j 'd["ms"]' <<<"$R_CLI")
echo "    time: redirect on ${T_ON_MS} ms, off ${T_OFF_MS} ms"
write_cfg true
"$CTL" apply "$BPFFS" "$TMP/mesh.yaml" 3

t_section "2. semantics on $(uname -r): redirected (service sem) vs not opted in (service plain)"
"$CTL" load "$BPFFS" 0 >/dev/null && "$CTL" attach "$BPFFS" "$ROOT"   # unbounded: the kernel as is
sem() { in_cg mesh/frontend python3 "$SEM" "$@"; }
r=$(sem splice 10.96.1.40 80 9540 2>&1); echo "    redirected: $r"
t_eq "1. splice on a redirected socket: EAGAIN while FIONREAD shows bytes" "1000 EAGAIN" \
	"$(j '"%s %s" % (d["fionread"], d["splice_nb"])' <<<"$r")"
t_eq "1. at FIN a blocking splice returns EOF, the data stays unseen by splice" "0" "$(j 'd["splice_fin"]' <<<"$r")"
r=$(sem splice 10.96.1.30 80 9530); echo "    plain: $r"
t_eq "not opted in: splice reads the 1000 bytes" "1000" "$(j 'd["splice_nb"]' <<<"$r")"
t_eq "not opted in: at FIN splice reads the rest" "1000" "$(j 'd["splice_fin"]' <<<"$r")"

in_cg outside python3 "$SEM" eagain-server 9550 >"$TMP/eagain.out" 2>&1 &
for _ in $(seq 1 50); do grep -q ready "$TMP/eagain.out" && break; sleep 0.1; done
r=$(sem eagain 10.96.1.50 80); echo "    member socket, peer outside the mesh (sk_msg only passes): $r"
# The issue measured EAGAIN from a blocking recv() woken without redirected data; on this
# kernel a wake by TCP data returns that data (tcp_bpf_recvmsg falls back to tcp_recvmsg).
# Asserted as seen, so a change either way is noticed; the contract keeps retrying readers.
t_eq "2. blocking recv on a member woken by TCP data (sk_msg only passes): gets the data here" \
	"100" "$(j 'd["result"] if d["ms"] < 2500 else "timeout"' <<<"$r")"
wait

r=$(sem waitall 10.96.1.40 80 9540); echo "    redirected: $r"
t_eq "3. MSG_WAITALL short, SO_RCVLOWAT ignored, tcpi_bytes_received 0" "500 500 0" \
	"$(j '"%s %s %s" % (d["waitall"], d["rcvlowat"], d["tcpi_bytes_received"])' <<<"$r")"
r=$(sem waitall 10.96.1.30 80 9530); echo "    plain: $r"
t_eq "not opted in: MSG_WAITALL full, SO_RCVLOWAT honoured, tcpi_bytes_received counts" \
	"1000 1000 2000" "$(j '"%s %s %s" % (d["waitall"], d["rcvlowat"], d["tcpi_bytes_received"])' <<<"$r")"

r=$(sem backlog 10.96.1.40 80 9540 3 768 0); echo "    redirected, no budget: $r"
t_ge "4. no backpressure (no budget): a peer that never reads accepts >= 256 MiB in 3 s" \
	"$((256 << 20))" "$(j 'd["accepted"]' <<<"$r")"
r=$(sem backlog 10.96.1.30 80 9530 3 768 1); echo "    plain: $r"
t_true "not opted in: backpressure stops the writer at a few MiB, stream intact" "< 16 MiB, intact" \
	"$(j 'd["accepted"]' <<<"$r") bytes, intact $(j 'd["intact"]' <<<"$r")" \
	test "$(j 'd["accepted"] < (16 << 20) and d["intact"]' <<<"$r")" = True

r=$(sem delete 10.96.1.40 80 9540 "$CTL" "$BPFFS"); echo "    redirected: $r"
t_eq "5. deleting a live SOCKHASH entry drops its unread redirected data" "1000 0 0 EAGAIN" \
	"$(j '"%s %s %s %s" % (d["before"], d["delete_rc"], d["after"], d["recv"])' <<<"$r")"

r=$(in_cg mesh/frontend "$CTL" reorder "$BPFFS" 9560 1); echo "    joined after TCP data: $r"
t_eq "6. a socket that starts redirecting after TCP data delivers later bytes first" \
	"second.first." "$r"
r=$(in_cg mesh/frontend "$CTL" reorder "$BPFFS" 9561 0); echo "    inserted late without td's join mark: $r"
t_eq "6. td's sk_msg only redirects sockets sockops joined at establishment: order kept" \
	"first.second." "$r"

t_section "2b. the bound of semantic 4 (default budget $((4 << 20)) bytes)"
"$CTL" load "$BPFFS" >/dev/null && "$CTL" attach "$BPFFS" "$ROOT"
r=$(sem backlog 10.96.1.40 80 9540 3 768 1); echo "    redirected, default budget: $r"
t_true "a peer that never reads stops the writer near budget + TCP buffers; stream intact" \
	"< 24 MiB, intact" "$(j 'd["accepted"]' <<<"$r") bytes, intact $(j 'd["intact"]' <<<"$r")" \
	test "$(j 'd["accepted"] < (24 << 20) and d["intact"]' <<<"$r")" = True

t_section "3. sockmap: false and a reload under redirected streams: entries stay, no byte lost"
in_cg mesh/orders "$CTL" stress-server 127.0.0.1 9501 20 120 21 >"$TMP/srv-live.out" 2>&1 &
spid=$!
for _ in $(seq 1 50); do grep -q ready "$TMP/srv-live.out" 2>/dev/null && break; sleep 0.1; done
in_cg mesh/frontend "$CTL" stress-client 10.96.1.10 80 20 $((BYTES / 4)) 120 21 0 4000 \
	>"$TMP/cli-live.out" 2>&1 &
cpid=$!
sleep 1
n0=$("$CTL" socks "$BPFFS")
m0=$(cnt msg_redirect)
write_cfg false
"$CTL" apply "$BPFFS" "$TMP/mesh.yaml" 4
"$CTL" load "$BPFFS" >/dev/null && "$CTL" attach "$BPFFS" "$ROOT"
n1=$("$CTL" socks "$BPFFS")
echo "    members before apply/reload $n0, after $n1"
t_true "members of live sockets are not deleted by sockmap: false + reload" "$n0 (> 0)" "$n1" \
	test "$n1" -ge 1 -a "$n1" -eq "$n0"
j1=$(cnt sock_join_active)
r=$(in_cg mesh/frontend python3 "$SEM" waitall 10.96.1.40 80 9540)
t_eq "new connection after sockmap: false is plain TCP" "$j1 1000" \
	"$(cnt sock_join_active) $(j 'd["waitall"]' <<<"$r")"
wait "$cpid" "$spid"
rc=$(tail -1 "$TMP/cli-live.out") rs=$(tail -1 "$TMP/srv-live.out")
echo "    client: $rc"
echo "    server: $rs"
t_eq "in-flight streams complete intact" "20 ok, 0 bad / 20 ok, 0 bad" \
	"$(j '"%d ok, %d bad" % (d["ok"], d["bad"])' <<<"$rc") / $(j '"%d ok, %d bad" % (d["ok"], d["bad"])' <<<"$rs")"
t_ge "they kept redirecting after the apply" "$((m0 + 1))" "$(cnt msg_redirect)"

t_section "detach"
t_eq "detach removes the 9 cgroup programs" "9" "$("$CTL" detach "$BPFFS" "$ROOT")"
t_eq "nothing td left on $ROOT" "0" "$(bpftool cgroup show "$ROOT" 2>/dev/null | grep -c ' td_m_')"

t_done
