#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Benchmarks: td against its peers on the same netns topology, same backends, same load.
#   scripts/bench.sh BUILD all|l4|mesh|gateway|proxy
# l4: nginx backends (static body) in b1..b3; wrk -t2 -c50 -d10s from the client namespace to
#   (a) td NAT VIP 10.200.0.100:80  (b) nftables DNAT (numgen random) 10.200.0.102:80
#   (c) nginx stream 10.10.1.1:81   (d) haproxy mode tcp 10.10.1.1:82
#   each keep-alive (requests/s) and with "Connection: close" (connections/s), two rounds in
#   alternating peer order; prints "bench: l4_<peer> rps=<n> conn_per_s=<n> p99_ms=<x>"
#   (means of the two rounds; p99 of the keep-alive runs). Then the per-packet BPF bench
#   (selftests/bpf/run.sh BUILD --bench) and the Maglev rebuild bench (td_unit --bench) if present.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
PART=${2:-all}
[[ $BUILD == /* ]] || BUILD=$REPO/$BUILD
export TD_BUILD=$BUILD
TDAGENT=$BUILD/bin/tdagent
DURATION=${TD_BENCH_DURATION:-10}     # seconds per wrk run (fixed at 10 for published figures)
WRK_ARGS=(-t2 -c50 "-d${DURATION}s" --latency)
# shellcheck source=topo.sh
source "$REPO/scripts/topo.sh"

case $PART in
all | l4 | mesh | gateway | proxy) ;;
*) echo "usage: $0 BUILD all|l4|mesh|gateway|proxy" >&2; exit 2 ;;
esac
[[ $EUID -eq 0 ]] || { echo "bench: needs root" >&2; exit 1; }

ID=$(printf '%04x' $(((RANDOM << 1 ^ $$) & 0xffff)))
P=tdt-$ID
TMP=$(mktemp -d "/tmp/$P-bench.XXXXXX")
chmod 755 "$TMP" # nginx workers (nobody) read the static body under it
TOPO_LOGDIR=$TMP
BPFFS=/sys/fs/bpf/$P
AGENT_PID=""
FAILED=0

cleanup() {
	trap - EXIT INT TERM
	if [[ -n $AGENT_PID ]]; then
		kill -TERM "$AGENT_PID" 2>/dev/null
		wait "$AGENT_PID" 2>/dev/null
	fi
	if [[ -d $BPFFS ]]; then
		[[ -e /run/netns/$P-lb ]] &&
			nsenter --net="/run/netns/$P-lb" "$TDAGENT" --cleanup --bpffs "$BPFFS" >/dev/null 2>&1
		rm -rf "$BPFFS"
	fi
	[[ -e /run/netns/$P-lb ]] && ip netns exec "$P-lb" nft delete table ip tdt_bench 2>/dev/null
	topo_down # kills nginx, haproxy (started with topo_spawn) and deletes the namespaces
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench: $*" >&2; }

# ---- helpers ----------------------------------------------------------------------------
# wait_listen NS ADDR:PORT: until something listens there (5 s).
wait_listen() {
	local i
	for i in $(seq 1 50); do
		ip netns exec "$1" ss -Hltn "src $2" | grep -q . && return 0
		sleep 0.1
	done
	log "nothing listens on $2 in $1"
	return 1
}

# run_wrk LABEL URL [close]: runs wrk from the client ns; prints "<req/s> <p99 ms> <errors>".
run_wrk() {
	local label=$1 url=$2 close=${3:-} out
	local -a extra=()
	[[ -n $close ]] && extra=(-H 'Connection: close')
	out=$(ip netns exec "$P-cl" wrk "${WRK_ARGS[@]}" "${extra[@]}" "$url" 2>&1)
	echo "$out" >"$TMP/wrk-$label.txt"
	python3 - "$TMP/wrk-$label.txt" <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", t)
p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\b", t, re.M)
err = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
ms = {"us": 0.001, "ms": 1.0, "s": 1000.0}
p = float(p99.group(1)) * ms[p99.group(2)] if p99 else -1
e = sum(int(x) for x in err.groups()) if err else 0
e += int(non2xx.group(1)) if non2xx else 0
print("%.0f %.2f %d" % (float(rps.group(1)) if rps else 0, p, e))
EOF
}

start_backends() {
	local n ns d
	for n in 1 2 3; do
		ns=$P-b$n
		d=$TMP/nginx-b$n
		mkdir -p "$d/www" "$d/tmp"
		printf 'b%s\n' "$n" >"$d/www/index.html"
		cat >"$d/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    server {
        listen 8080 reuseport backlog=4096;
        listen [::]:8080 reuseport backlog=4096;
        root $d/www;
        location / { index index.html; }
    }
}
EOF
		topo_spawn "$ns" "$d/stdout.log" nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf"
	done
	for n in 1 2 3; do wait_listen "$P-b$n" "0.0.0.0:8080" || return 1; done
}

start_td() {
	cat >"$TMP/td.yaml" <<EOF
node:
  bpffs: $BPFFS
  interfaces:
    - { name: lb-c, xdp_mode: native }
    - { name: lb-b1, xdp_mode: native }
    - { name: lb-b2, xdp_mode: native }
    - { name: lb-b3, xdp_mode: native }
l4:
  services:
    - name: bench
      vip: 10.200.0.100
      port: 80
      proto: tcp
      mode: nat
      backends:
        - { address: 10.10.11.2, port: 8080 }
        - { address: 10.10.12.2, port: 8080 }
        - { address: 10.10.13.2, port: 8080 }
EOF
	nsenter --net="/run/netns/$P-lb" "$TDAGENT" -c "$TMP/td.yaml" --bpffs "$BPFFS" 2>"$TMP/agent.log" &
	AGENT_PID=$!
	local i
	for i in $(seq 1 150); do
		grep -q 'ready:' "$TMP/agent.log" && return 0
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 10 "$TMP/agent.log" >&2
	return 1
}

nft_up() {
	ip netns exec "$P-lb" nft -f - <<'EOF'
table ip tdt_bench {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 10.200.0.102 tcp dport 80 dnat to numgen random mod 3 map { 0 : 10.10.11.2, 1 : 10.10.12.2, 2 : 10.10.13.2 } : 8080
	}
}
EOF
}
nft_down() { ip netns exec "$P-lb" nft delete table ip tdt_bench 2>/dev/null; }

start_nginx_stream() {
	local d=$TMP/nginx-lb
	mkdir -p "$d"
	cat >"$d/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 2;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 16384; }
stream {
    upstream be {
        server 10.10.11.2:8080;
        server 10.10.12.2:8080;
        server 10.10.13.2:8080;
    }
    server {
        listen 10.10.1.1:81 reuseport backlog=4096;
        proxy_pass be;
    }
}
EOF
	topo_spawn "$P-lb" "$d/stdout.log" nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf"
	wait_listen "$P-lb" "10.10.1.1:81"
}

start_haproxy() {
	local d=$TMP/haproxy
	mkdir -p "$d"
	cat >"$d/haproxy.cfg" <<EOF
global
    maxconn 9000
    nbthread 2
    pidfile $d/haproxy.pid
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 10.10.1.1:82
    default_backend be
backend be
    balance roundrobin
    server b1 10.10.11.2:8080
    server b2 10.10.12.2:8080
    server b3 10.10.13.2:8080
EOF
	topo_spawn "$P-lb" "$d/stdout.log" haproxy -db -f "$d/haproxy.cfg"
	wait_listen "$P-lb" "10.10.1.1:82"
}

declare -A URL=([td]=http://10.200.0.100/ [nft]=http://10.200.0.102/
	[nginx]=http://10.10.1.1:81/ [haproxy]=http://10.10.1.1:82/)
declare -A SUM_RPS SUM_CPS SUM_P99 SUM_ERR

measure() { # measure PEER ROUND
	local peer=$1 r=$2 ka cl
	# td's conntrack/reverse-NAT entries outlive the flows (LRU, no timeout): an nft/proxy flow
	# reusing a client port of an earlier td flow would have its replies rewritten to td's
	# VIP. Every peer starts from empty td tables.
	[[ -n $AGENT_PID ]] && nsenter --net="/run/netns/$P-lb" "$BUILD/bin/tdctl" --bpffs "$BPFFS" \
		conntrack --flush >/dev/null
	[[ $peer == nft ]] && nft_up
	# a short warm-up so neighbour entries, conntrack and proxy pools exist
	ip netns exec "$P-cl" curl -s -o /dev/null --max-time 2 "${URL[$peer]}"
	ka=$(run_wrk "$peer-r$r-ka" "${URL[$peer]}")
	cl=$(run_wrk "$peer-r$r-close" "${URL[$peer]}" close)
	[[ $peer == nft ]] && nft_down
	read -r ka_rps ka_p99 ka_err <<<"$ka"
	read -r cl_rps cl_p99 cl_err <<<"$cl"
	echo "bench-detail: round=$r l4_$peer keepalive_rps=$ka_rps p99_ms=$ka_p99 errors=$ka_err close_conn_per_s=$cl_rps close_p99_ms=$cl_p99 errors=$cl_err"
	SUM_RPS[$peer]=$((${SUM_RPS[$peer]:-0} + ${ka_rps%.*}))
	SUM_CPS[$peer]=$((${SUM_CPS[$peer]:-0} + ${cl_rps%.*}))
	SUM_P99[$peer]=$(python3 -c "print(${SUM_P99[$peer]:-0} + $ka_p99)")
	SUM_ERR[$peer]=$((${SUM_ERR[$peer]:-0} + ka_err + cl_err))
}

bench_l4() {
	local peer
	local -a peers=(td nft nginx haproxy) rev=()
	topo_bpffs_mount
	topo_up "$P" || return 1
	# many short connections from one client address: widen the port range, reuse TIME_WAIT
	ip netns exec "$P-cl" sysctl -q -w net.ipv4.ip_local_port_range="10000 65000" net.ipv4.tcp_tw_reuse=1
	ip netns exec "$P-lb" sysctl -q -w net.ipv4.ip_local_port_range="10000 65000" net.ipv4.tcp_tw_reuse=1
	for n in 1 2 3; do ip netns exec "$P-b$n" sysctl -q -w net.core.somaxconn=4096; done
	ip netns exec "$P-lb" sysctl -q -w net.core.somaxconn=4096
	start_backends || { log "nginx backends failed"; return 1; }
	if [[ ! -x $TDAGENT ]] || ! start_td; then
		# the peers are still measured; td's figure is reported as failed
		echo "bench: l4_td failed=agent_not_ready"
		FAILED=1
		peers=(nft nginx haproxy)
	fi
	start_nginx_stream || { log "nginx stream failed (libnginx-mod-stream installed?)"; return 1; }
	start_haproxy || { log "haproxy failed"; return 1; }
	log "l4: wrk ${WRK_ARGS[*]} from $P-cl; two rounds, alternating order"
	for ((i = ${#peers[@]} - 1; i >= 0; i--)); do rev+=("${peers[i]}"); done
	for peer in "${peers[@]}"; do measure "$peer" 1; done
	for peer in "${rev[@]}"; do measure "$peer" 2; done
	for peer in "${peers[@]}"; do
		printf 'bench: l4_%s rps=%d conn_per_s=%d p99_ms=%s\n' "$peer" \
			$((SUM_RPS[$peer] / 2)) $((SUM_CPS[$peer] / 2)) \
			"$(python3 -c "print('%.2f' % (${SUM_P99[$peer]} / 2))")"
		((SUM_ERR[$peer] == 0)) || log "l4_$peer: ${SUM_ERR[$peer]} socket errors / non-2xx (see bench-detail)"
	done
	# per-packet cost of the BPF programs and the Maglev rebuild time, when those benches exist
	if [[ -x $REPO/selftests/bpf/run.sh ]]; then
		"$REPO/selftests/bpf/run.sh" "$BUILD" --bench || FAILED=1
	else
		echo "bench: bpf_per_packet skipped=selftests/bpf/run.sh_missing"
	fi
	if [[ -x $BUILD/bin/td_unit ]]; then
		"$BUILD/bin/td_unit" --bench || FAILED=1
	else
		echo "bench: maglev_rebuild skipped=td_unit_missing"
	fi
}

for part in l4 mesh gateway proxy; do
	[[ $PART == all || $PART == "$part" ]] || continue
	case $part in
	l4) bench_l4 || FAILED=1 ;;
	*) echo "bench: $part skipped=not_implemented" ;;
	esac
done
exit $FAILED
