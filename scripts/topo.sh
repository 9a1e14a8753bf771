# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
# Test topology library (source it): a client, a load balancer and three backends, each in a
# network namespace of its own, connected by veth pairs. Used by selftests/netns, demo and bench.
#
#   $P-cl  c0    10.10.1.2/24  fd00:1::2/64   <->  lb-c   10.10.1.1/24  fd00:1::1/64   $P-lb
#   $P-bN  b0    10.10.1N.2/24 fd00:1N::2/64  <->  lb-bN  10.10.1N.1/24 fd00:1N::1/64  $P-lb
#
# VIP ranges 10.200.0.0/24 and fd00:200::/64 are routed by the client to the LB. Backends only
# know the client subnet (via the LB) and carry the DSR VIPs on lo. No default route anywhere:
# nothing in here can reach the host's networks. Everything is created inside the namespaces
# (the host's own interfaces are never touched) and topo_down removes all of it.
#
# API:
#   topo_up PREFIX            build it (PREFIX: tdt-<id> for tests, tddemo for the demo)
#   topo_down                 kill started processes, delete the namespaces (idempotent)
#   topo_start_servers [LIFETIME]  python3 TCP (8080) + UDP (5353) servers in each backend
#   topo_spawn NS LOG CMD...  start CMD in NS in the background, remembered for topo_down
#   topo_kill_all             kill every process started with topo_spawn
# Variables after topo_up: TOPO_P TOPO_CL TOPO_LB TOPO_BACKENDS (array) TOPO_PIDS (array).
# Set TD_BUILD (default: build) before topo_up; xdp_pass.bpf.o is taken from there.

TOPO_REPO=${TOPO_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
TOPO_P=""
TOPO_CL=""
TOPO_LB=""
TOPO_BACKENDS=()
TOPO_PIDS=()
# DSR VIPs the backends own on lo (services in mode dsr must use one of these).
TOPO_DSR_VIPS4=${TOPO_DSR_VIPS4:-"10.200.0.101"}
TOPO_DSR_VIPS6=${TOPO_DSR_VIPS6:-"fd00:200::101"}

topo_log() { echo "topo: $*" >&2; }

# topo_bpffs_mount: make sure a bpffs is mounted at /sys/fs/bpf.
topo_bpffs_mount() {
	if [[ $(stat -f -c %T /sys/fs/bpf 2>/dev/null) != bpf_fs ]]; then
		mkdir -p /sys/fs/bpf
		mount -t bpf bpf /sys/fs/bpf
	fi
}

_topo_veth() { # _topo_veth NS_A IF_A NS_B IF_B
	ip -n "$1" link add "$2" type veth peer name "$4" netns "$3"
	ip -n "$1" link set "$2" up
	ip -n "$3" link set "$4" up
	# Full checksums in software: XDP_TX/redirect between veths drops CHECKSUM_PARTIAL state,
	# so a partially checksummed frame would arrive with a bad checksum.
	ip netns exec "$1" ethtool -K "$2" tx off >/dev/null 2>&1 || true
	ip netns exec "$3" ethtool -K "$4" tx off >/dev/null 2>&1 || true
}

_topo_sysctl() { # _topo_sysctl NS key=value...
	local ns=$1
	shift
	ip netns exec "$ns" sysctl -q -w "$@" >/dev/null
}

topo_up() {
	local P=${1:?topo_up PREFIX}
	local build=${TD_BUILD:-build}
	local xdp_pass=$build/bpf/xdp_pass.bpf.o
	[[ $xdp_pass == /* ]] || xdp_pass=$TOPO_REPO/$xdp_pass
	if [[ ! -f $xdp_pass ]]; then
		topo_log "missing $xdp_pass (make all)"
		return 1
	fi
	TOPO_P=$P
	TOPO_CL=$P-cl
	TOPO_LB=$P-lb
	TOPO_BACKENDS=("$P-b1" "$P-b2" "$P-b3")
	local ns n
	for ns in "$TOPO_CL" "$TOPO_LB" "${TOPO_BACKENDS[@]}"; do
		if [[ -e /run/netns/$ns ]]; then
			topo_log "namespace $ns already exists"
			return 1
		fi
	done
	for ns in "$TOPO_CL" "$TOPO_LB" "${TOPO_BACKENDS[@]}"; do
		ip netns add "$ns"
		ip -n "$ns" link set lo up
		_topo_sysctl "$ns" net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
			net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	done

	# client <-> LB
	_topo_veth "$TOPO_CL" c0 "$TOPO_LB" lb-c
	ip -n "$TOPO_CL" addr add 10.10.1.2/24 dev c0
	ip -n "$TOPO_CL" addr add fd00:1::2/64 dev c0 nodad
	ip -n "$TOPO_LB" addr add 10.10.1.1/24 dev lb-c
	ip -n "$TOPO_LB" addr add fd00:1::1/64 dev lb-c nodad
	ip -n "$TOPO_CL" route add 10.200.0.0/24 via 10.10.1.1 dev c0
	ip -n "$TOPO_CL" -6 route add fd00:200::/64 via fd00:1::1 dev c0
	ip -n "$TOPO_CL" link set dev c0 xdp obj "$xdp_pass" sec xdp

	# LB <-> backends
	for n in 1 2 3; do
		ns=${TOPO_BACKENDS[n - 1]}
		_topo_veth "$ns" b0 "$TOPO_LB" "lb-b$n"
		ip -n "$ns" addr add "10.10.1$n.2/24" dev b0
		ip -n "$ns" addr add "fd00:1$n::2/64" dev b0 nodad
		ip -n "$TOPO_LB" addr add "10.10.1$n.1/24" dev "lb-b$n"
		ip -n "$TOPO_LB" addr add "fd00:1$n::1/64" dev "lb-b$n" nodad
		ip -n "$ns" route add 10.10.1.0/24 via "10.10.1$n.1" dev b0
		ip -n "$ns" -6 route add fd00:1::/64 via "fd00:1$n::1" dev b0
		# DSR: the VIPs live on lo; never answer ARP for them on b0, never use them as ARP source.
		_topo_sysctl "$ns" net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
			net.ipv4.conf.b0.arp_ignore=1 net.ipv4.conf.b0.arp_announce=2
		local v
		for v in $TOPO_DSR_VIPS4; do ip -n "$ns" addr add "$v/32" dev lo; done
		for v in $TOPO_DSR_VIPS6; do ip -n "$ns" addr add "$v/128" dev lo nodad; done
		ip -n "$ns" link set dev b0 xdp obj "$xdp_pass" sec xdp
	done

	_topo_sysctl "$TOPO_LB" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	for ns in lb-c lb-b1 lb-b2 lb-b3; do
		_topo_sysctl "$TOPO_LB" "net.ipv4.conf.$ns.rp_filter=0"
	done

	# Warm the LB's neighbour table (DSR needs the backend MACs before the first packet).
	for n in 1 2 3; do
		ip netns exec "$TOPO_LB" ping -c1 -W1 "10.10.1$n.2" >/dev/null 2>&1 || true
		ip netns exec "$TOPO_LB" ping -6 -c1 -W1 "fd00:1$n::2" >/dev/null 2>&1 || true
	done
	ip netns exec "$TOPO_CL" ping -c1 -W1 10.10.1.1 >/dev/null 2>&1 || true
	ip netns exec "$TOPO_CL" ping -6 -c1 -W1 fd00:1::1 >/dev/null 2>&1 || true
	return 0
}

# topo_spawn NS LOGFILE CMD...: run CMD inside NS in the background (ip netns exec execs, so
# the pid is the command's own); sets TOPO_LAST_PID.
topo_spawn() {
	local ns=$1 log=$2
	shift 2
	ip netns exec "$ns" "$@" >"$log" 2>&1 &
	TOPO_LAST_PID=$!
	TOPO_PIDS+=("$TOPO_LAST_PID")
}

# topo_start_servers [LIFETIME_S]: TCP :8080 and UDP :5353 in every backend answering their
# name (b1, b2, b3), plus the "stream N" mode on TCP. Waits until all of them listen.
topo_start_servers() {
	local life=${1:-600} n ns logdir=${TOPO_LOGDIR:-/tmp}
	for n in 1 2 3; do
		ns=${TOPO_BACKENDS[n - 1]}
		topo_spawn "$ns" "$logdir/$TOPO_P-srv-b$n.log" python3 "$TOPO_REPO/selftests/netns/servers.py" \
			--name "b$n" --tcp 8080 --udp 5353 --lifetime "$life"
	done
	local i ok
	for i in $(seq 1 50); do
		ok=0
		for n in 1 2 3; do
			ns=${TOPO_BACKENDS[n - 1]}
			ip netns exec "$ns" ss -Hltn 'sport = :8080' | grep -q . && ok=$((ok + 1))
		done
		((ok == 3)) && return 0
		sleep 0.1
	done
	topo_log "backend servers did not start (see $logdir/$TOPO_P-srv-b*.log)"
	return 1
}

topo_kill_all() {
	local pid
	for pid in "${TOPO_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${TOPO_PIDS[@]}"; do
		# wait only works for our children; poll for the rest
		local i
		for i in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	TOPO_PIDS=()
}

topo_down() {
	topo_kill_all
	[[ -n $TOPO_P ]] || return 0
	local ns
	for ns in "$TOPO_CL" "$TOPO_LB" "${TOPO_BACKENDS[@]}"; do
		[[ -n $ns ]] && ip netns del "$ns" 2>/dev/null || true
	done
	TOPO_P=""
}
