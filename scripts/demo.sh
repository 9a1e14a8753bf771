#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# make demo: td balancing real traffic in a throw-away netns topology (prefix tddemo), with the
# example config docs/examples/td.yaml, then everything is removed again. Usage: demo.sh BUILD
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
[[ $BUILD == /* ]] || BUILD=$REPO/$BUILD
export TD_BUILD=$BUILD
TDAGENT=$BUILD/bin/tdagent
TDCTL=$BUILD/bin/tdctl
BPFFS=/sys/fs/bpf/td           # the example's node.bpffs (the default)
P=tddemo
# shellcheck source=topo.sh
source "$REPO/scripts/topo.sh"

die() { echo "demo: $*" >&2; exit 1; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

[[ $EUID -eq 0 ]] || die "needs root (network namespaces, XDP, bpffs)"
for b in "$TDAGENT" "$TDCTL" "$BUILD/bpf/xdp_pass.bpf.o"; do
	[[ -e $b ]] || die "missing $b: run make all"
done
topo_bpffs_mount
if [[ -d $BPFFS ]] && [[ -n $(find "$BPFFS" -mindepth 1 -maxdepth 1 2>/dev/null | head -1) ]]; then
	die "$BPFFS already holds pins (a running td?); refusing to touch it"
fi
for ns in cl lb b1 b2 b3; do
	[[ -e /run/netns/$P-$ns ]] && die "namespace $P-$ns exists (a demo running, or left over: ip netns del $P-$ns)"
done

TMP=$(mktemp -d /tmp/tddemo.XXXXXX)
TOPO_LOGDIR=$TMP
AGENT_PID=""
CREATED_BPFFS=0
[[ -d $BPFFS ]] || CREATED_BPFFS=1
cleanup() {
	trap - EXIT INT TERM
	step "cleanup"
	if [[ -n $AGENT_PID ]]; then
		kill -TERM "$AGENT_PID" 2>/dev/null
		wait "$AGENT_PID" 2>/dev/null
	fi
	if [[ -e /run/netns/$P-lb ]]; then
		nsenter --net="/run/netns/$P-lb" "$TDAGENT" --cleanup --bpffs "$BPFFS" >/dev/null 2>&1 || true
	fi
	# We checked at start that BPFFS held nothing: whatever is left is ours.
	if [[ -d $BPFFS ]]; then
		find "$BPFFS" -mindepth 1 -delete 2>/dev/null || true
		((CREATED_BPFFS)) && rmdir "$BPFFS" 2>/dev/null
	fi
	topo_down
	rm -rf "$TMP"
	echo "removed namespaces $P-*, pins under $BPFFS, agent and servers"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T0=$(date +%s)
step "topology (namespaces $P-cl, $P-lb, $P-b1..b3)"
topo_up "$P" || die "topology failed"
cat <<'EOF'
  client c0 10.10.1.2 fd00:1::2 ── lb-c 10.10.1.1 fd00:1::1 [LB: tdagent, XDP+TC]
                                    lb-bN 10.10.1N.1 fd00:1N::1 ── b0 10.10.1N.2 fd00:1N::2 [backend bN]
EOF
topo_start_servers 110 || die "backend servers did not start"
echo "  backends b1 b2 b3 serve TCP :8080 (HTTP too) and UDP :5353, answering their name"

step "tdagent -c docs/examples/td.yaml (in $P-lb)"
cp "$REPO/docs/examples/td.yaml" "$TMP/td.yaml"
nsenter --net="/run/netns/$P-lb" "$TDAGENT" -c "$TMP/td.yaml" 2>"$TMP/agent.log" &
AGENT_PID=$!
for _ in $(seq 1 150); do
	grep -q 'ready:' "$TMP/agent.log" && break
	kill -0 "$AGENT_PID" 2>/dev/null || break
	sleep 0.1
done
grep -q 'ready:' "$TMP/agent.log" || { tail -n 20 "$TMP/agent.log" >&2; die "tdagent did not become ready"; }
grep -m1 'ready:' "$TMP/agent.log" | sed 's/^/  /'

declare -A SEEN
LABELS=()
cl() { timeout 5 ip netns exec "$P-cl" "$@"; }
show() { # show LABEL ANSWER
	printf '  %-34s -> %s\n' "$1" "${2:-(no answer)}"
	[[ -n ${SEEN["$1"]+x} ]] || LABELS+=("$1")
	SEEN["$1"]+="${2:-none} "
}

step "TCP through the VIPs (curl from the client namespace)"
for i in 1 2 3 4 5 6; do
	show "web4 http://10.200.0.100/ (nat)" "$(cl curl -s --max-time 2 http://10.200.0.100/)"
done
for i in 1 2 3 4; do
	show "web6 http://[fd00:200::100]/ (nat)" "$(cl curl -s -g --max-time 2 'http://[fd00:200::100]/')"
done
for i in 1 2 3 4; do
	show "dsr4 http://10.200.0.101:8080/ (dsr)" "$(cl curl -s --max-time 2 http://10.200.0.101:8080/)"
done
for i in 1 2 3 4; do
	show "dsr6 http://[fd00:200::101]:8080/ (dsr)" "$(cl curl -s -g --max-time 2 'http://[fd00:200::101]:8080/')"
done
echo "  (each connection is a new flow; Maglev picks the backend from its 5-tuple)"

step "UDP through the VIPs (socat, a new source port each time)"
for i in 1 2 3 4; do
	show "udp4 10.200.0.100:53 (nat)" "$(echo hello | cl socat -t1 - UDP4:10.200.0.100:53)"
done
for i in 1 2 3 4; do
	show "udp6 [fd00:200::100]:53 (nat)" "$(echo hello | cl socat -t1 - 'UDP6:[fd00:200::100]:53')"
done

ctl() { nsenter --net="/run/netns/$P-lb" "$TDCTL" "$@"; }
step "tdctl services"
ctl services
step "tdctl stats"
ctl stats
step "tdctl conntrack (first 15 lines)"
ctl conntrack | head -n 15
step "bpftool map dump pinned $BPFFS/td_svc (VIP -> service; first 44 lines)"
bpftool map dump pinned "$BPFFS/td_svc" | head -n 44

step "operations: drain, health checks, reload, metrics (web4)"
web4_round() { # web4_round LABEL: 6 new connections, print who answered
	local out="" i
	for i in 1 2 3 4 5 6; do
		out+="$(cl curl -s --max-time 2 http://10.200.0.100/ || echo none) "
	done
	printf '  %-44s -> %s\n' "$1" "$out"
	OPS_LAST=$out
}
web4_state() { ctl --json services | python3 -c '
import json, sys
for s in json.load(sys.stdin)["services"]:
    if s["name"] == "web4":
        print("  web4 backends: " + ", ".join("%s:%d %s%s" % (b["address"], b["port"], b.get("health", "?"),
              " drained" if b.get("drained") else "") for b in s["backends"]))'; }
ops_ok=0 ops_bad=0
ops_check() { if eval "$2"; then ops_ok=$((ops_ok + 1)); else ops_bad=$((ops_bad + 1)); echo "  !! $1"; fi; }

ctl backend drain web4 10.10.13.2:8080 | sed 's/^/  /'
web4_round "after drain of b3 (10.10.13.2)"
ops_check "drained b3 still got new connections" '[[ $OPS_LAST != *b3* ]]'
ctl backend undrain web4 10.10.13.2:8080 | sed 's/^/  /'

kill "${TOPO_PIDS[0]}" 2>/dev/null; wait "${TOPO_PIDS[0]}" 2>/dev/null
echo "  stopped the server of b1; the agent's HTTP checks (every 500 ms, fall 2) notice"
for _ in $(seq 1 40); do web4_state | grep -q '10.10.11.2:8080 down' && break; sleep 0.1; done
web4_state
web4_round "with b1 down"
ops_check "b1 was not taken out" '[[ $OPS_LAST != *b1* && $OPS_LAST != *none* ]]'
topo_spawn "${TOPO_BACKENDS[0]}" "$TMP/$P-srv-b1-again.log" python3 "$REPO/selftests/netns/servers.py" \
	--name b1 --tcp 8080 --udp 5353 --lifetime 100
for _ in $(seq 1 40); do web4_state | grep -q '10.10.11.2:8080 up' && break; sleep 0.1; done
echo "  restarted it (rise 2):"
web4_state

cp "$TMP/td.yaml" "$TMP/td.yaml.orig"
echo "  bad: [unclosed" >>"$TMP/td.yaml"
echo "  tdctl reload with a broken file (nothing changes):"
out=$(ctl reload 2>&1); rc=$?
sed 's/^/    /' <<<"$out"
ops_check "a broken file was accepted" '((rc != 0))'
sed 's/weight: 3 }/weight: 1 }/' "$TMP/td.yaml.orig" >"$TMP/td.yaml"
echo "  tdctl reload after setting b3's weight to 1 (only web4's ring is rebuilt):"
out=$(ctl reload 2>&1); rc=$?
sed 's/^/    /' <<<"$out"
ops_check "a valid reload failed" '((rc == 0))'

echo "  curl http://127.0.0.1:9469/metrics (inside the LB namespace), a few lines:"
nsenter --net="/run/netns/$P-lb" curl -s --max-time 2 http://127.0.0.1:9469/metrics |
	grep -E '^td_(service_new_flows_total\{service="web4"|backend_up\{service="web4"|config_generation)' |
	sed 's/^/    /'
ops_check "no metrics" 'nsenter --net="/run/netns/$P-lb" curl -sf --max-time 2 http://127.0.0.1:9469/metrics | grep -q td_config_generation'

step "report"
ok=0 bad=0
for k in "${LABELS[@]}"; do
	answers=${SEEN[$k]}
	n_none=$(grep -o 'none' <<<"$answers" | wc -l)
	dist=$(tr ' ' '\n' <<<"$answers" | grep -v '^$' | sort | uniq -c | awk '{printf "%s×%s ", $2, $1}')
	printf '  %-38s %s\n' "$k" "$dist"
	if ((n_none)); then bad=$((bad + 1)); else ok=$((ok + 1)); fi
done
echo "  services answering every request: $ok of $((ok + bad))"
echo "  operations (drain, health, reload, metrics) as expected: $ops_ok of $((ops_ok + ops_bad))"
echo "  took $(($(date +%s) - T0)) s. Look around yourself with: tdctl status | services | stats |"
echo "  conntrack, tdctl backend drain SERVICE ADDR:PORT, bpftool map dump pinned $BPFFS/<map>"
((bad == 0 && ops_bad == 0))
