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
# mesh: two workloads on this node in a private netns, client in cgroup a (service bench-a),
#   server in cgroup b (service bench-b); td_mesh_ctl bench-rr (1 B and 1 KiB request/response,
#   p50/p99) and bench-bulk (4 KiB and 128 KiB writes, MB/s) for (a) plain loopback TCP,
#   (b) td: VIP translation + sockmap redirect (td counters printed), (c) a haproxy (mode tcp)
#   relay on loopback; rounds in alternating order; prints "bench: mesh_<case> ..." (medians of
#   the rounds), td's redirect counters per probe and "bench: mesh_ratio ...".
#   TD_BENCH_MESH_SECS (3), TD_BENCH_MESH_RR (20000), TD_BENCH_MESH_ROUNDS (3),
#   TD_BENCH_MESH_BUDGET (redirect budget in bytes, 0 = unbounded; default td's 4 MiB).
# gateway: scripts/bench_gateway.sh (td's gateway vs nginx vs haproxy as reverse proxies, one
#   worker each, and memory per idle keep-alive connection; docs/benchmarks.md).
# proxy: scripts/bench_proxy.sh (td's forward proxy vs Squid vs Tinyproxy on cache misses, td vs
#   Squid on hits, absolute-form requests from wrk; docs/benchmarks.md).
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
# shellcheck source=bench_gateway.sh
source "$REPO/scripts/bench_gateway.sh"   # gateway: bench_gateway (described there)
source "$REPO/scripts/bench_proxy.sh"     # proxy: bench_proxy (described there)

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
	mesh_cleanup
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

# ---- mesh -------------------------------------------------------------------------------
# Everything under its own names: cgroups <cgroup2>/tdt-mb-<pid> (mesh root .../mesh with a, b;
# .../plain with a, b, relay for the cases without td), bpffs /sys/fs/bpf/tdt-mb-<pid>, netns
# tdt-mb-<pid> (loopback only). mesh_cleanup (from cleanup) kills every process in those
# cgroups, detaches td's programs, removes the folders, the pins and the netns.
MB_CTL=$BUILD/bin/td_mesh_ctl
MB_CGM=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
MB_CGR=${MB_CGM:+$MB_CGM/tdt-mb-$$}
MB_BPFFS=/sys/fs/bpf/tdt-mb-$$
MB_NS=tdt-mb-$$
MB_SECS=${TD_BENCH_MESH_SECS:-3}      # seconds per bulk run
MB_RR=${TD_BENCH_MESH_RR:-20000}      # timed round trips per latency run
MB_WARM=2000                          # untimed round trips first, same connection
MB_ROUNDS=${TD_BENCH_MESH_ROUNDS:-3}
MB_BUDGET=${TD_BENCH_MESH_BUDGET:-}   # redirect budget in bytes (td_mesh_ctl load); empty: td's default
MB_NCPU=$(nproc)
MB_VIP=10.96.77.10                    # service bench-b, port 80 -> 127.0.0.1:9701
declare -A MB_VAL MB_CNT              # [case,metric] values per round; td counter deltas

mesh_cleanup() {
	local d pid
	if [[ -n $MB_CGR && -d $MB_CGR ]]; then
		for d in $(find "$MB_CGR" -mindepth 1 -type d | sort -r); do
			for pid in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
		done
		sleep 0.2
		[[ -d $MB_BPFFS ]] && "$MB_CTL" detach "$MB_BPFFS" "$MB_CGR/mesh" >/dev/null 2>&1
		for d in $(find "$MB_CGR" -mindepth 1 -type d | sort -r) "$MB_CGR"; do
			for _ in $(seq 1 50); do rmdir "$d" 2>/dev/null && break; sleep 0.1; done
		done
	fi
	if [[ -d $MB_BPFFS ]]; then
		"$MB_CTL" unpin "$MB_BPFFS" >/dev/null 2>&1
		rm -rf "$MB_BPFFS"
	fi
	[[ -e /run/netns/$MB_NS ]] && ip netns del "$MB_NS" 2>/dev/null
	return 0
}

# mb_run FOLDER LIMIT_S CMD...: CMD in cgroup $MB_CGR/FOLDER and the bench netns, bounded
mb_run() {
	local cg=$1 lim=$2
	shift 2
	sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec nsenter --net="/run/netns/$0" timeout -k 2 "$@"' \
		"$MB_NS" "$MB_CGR/$cg" "$lim" "$@"
}

# mb_kv LINE KEY: the value of KEY=value in LINE
mb_kv() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2; exit }'; }
# MB_VAL[case,metric] holds one value per round; mb_med prints their median
mb_add() { MB_VAL[$1]+=" $2"; }
mb_med() { tr ' ' '\n' <<<"${MB_VAL[$1]:-}" | sort -g | awk -v f="$2" 'NF { v[n++] = $1 }
	END { printf f, n ? (n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) : 0 }'; }
# mb_ratio CASE,METRIC CASE,METRIC: median over median
mb_ratio() { awk -v a="$(mb_med "$1" %.6f)" -v b="$(mb_med "$2" %.6f)" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }
mb_counters() { "$MB_CTL" counters "$MB_BPFFS" 2>/dev/null; }
mb_sum_delta() { # mb_sum_delta BEFORE AFTER KEY(PREFIX): after - before, into MB_CNT[PREFIX,counter]
	local k v
	while read -r k v; do
		MB_CNT[$3,$k]=$((${MB_CNT[$3,$k]:-0} + v - $(awk -v k="$k" '$1 == k { print $2 }' <<<"$1")))
	done <<<"$2"
}

mb_wait_ready() { # FILE: a bench-server said ready
	local i
	for i in $(seq 1 50); do grep -q ready "$1" 2>/dev/null && return 0; sleep 0.1; done
	log "mesh: server not ready ($1)"
	return 1
}

# mb_pin MODE: CPU placement of the long-lived servers and the relay; prints the client's taskset
# CPU list. rr: everything on CPU 0 (on this VM a wake-up across vCPUs costs ~60 us and
# would be measured instead of the path); bulk: client CPU 0, server CPU 1, relay unpinned.
mb_pin() {
	local srv rel d pid
	((MB_NCPU >= 2)) || { echo "0"; return 0; }
	if [[ $1 == rr ]]; then srv=0 rel=0; else srv=1 rel=0-$((MB_NCPU - 1)); fi
	for d in mesh/b plain/b plain/relay; do
		for pid in $(cat "$MB_CGR/$d/cgroup.procs" 2>/dev/null); do
			taskset -a -p -c "$([[ $d == plain/relay ]] && echo "$rel" || echo "$srv")" "$pid" >/dev/null 2>&1
		done
	done
	echo "0"
}

# mb_target CASE: "CGROUP HOST PORT" of the client of CASE
mb_target() {
	case $1 in
	loopback) echo "plain/a 127.0.0.1 9702" ;;
	td) echo "mesh/a $MB_VIP 80" ;;
	relay) echo "plain/a 127.0.0.1 9703" ;;
	esac
}

# mb_case CASE ROUND: the four probes of one case; values into MB_VAL, td counter deltas per
# probe into MB_CNT[CASE:PROBE,counter] (the cases without td must not move them)
mb_case() {
	local c=$1 r=$2 cg host port out before after p v cpu=0 detail=""
	read -r cg host port <<<"$(mb_target "$c")"
	for p in rr1:1 rr1k:1024 bulk4k:4096 bulk128k:131072; do
		[[ $p == rr1:* || $p == bulk4k:* ]] && cpu=$(mb_pin "${p%%[0-9]*}")
		before=$(mb_counters)
		if [[ $p == rr* ]]; then
			out=$(mb_run "$cg" 60 taskset -c "$cpu" "$MB_CTL" bench-rr "$host" "$port" "${p#*:}" \
				"$MB_RR" "$MB_WARM" 2>"$TMP/mb-$c-$r-${p%:*}.err")
		else
			out=$(mb_run "$cg" $((MB_SECS + 30)) taskset -c "$cpu" "$MB_CTL" bench-bulk "$host" "$port" \
				"${p#*:}" "$MB_SECS" 2>"$TMP/mb-$c-$r-${p%:*}.err")
		fi
		after=$(mb_counters)
		[[ $out == rr* || $out == bulk* ]] ||
			{ log "mesh_$c ${p%:*}: $(cat "$TMP/mb-$c-$r-${p%:*}.err")"; return 1; }
		p=${p%:*}
		mb_sum_delta "$before" "$after" "$c:$p"
		MB_CNT[$c:$p,payload]=$((${MB_CNT[$c:$p,payload]:-0} + $(mb_kv "$out" payload)))
		if [[ $p == rr* ]]; then
			for v in p50_us p99_us; do
				mb_add "$c,${p}_$v" "$(mb_kv "$out" "$v")"
				detail+=" ${p}_$v=$(mb_kv "$out" "$v")"
			done
		else
			mb_add "$c,${p}_MBps" "$(mb_kv "$out" MBps)"
			detail+=" ${p}_MBps=$(mb_kv "$out" MBps)"
		fi
	done
	echo "bench-detail: round=$r mesh_$c$detail"
}

bench_mesh() {
	local r c k p line share proven=yes
	local -a order cases=(loopback td relay)
	if [[ -z $MB_CGR || ! -x $MB_CTL ]]; then
		echo "bench: mesh failed=no_cgroup2_or_td_mesh_ctl"
		return 1
	fi
	topo_bpffs_mount
	mkdir -p "$MB_CGR"/mesh/{a,b} "$MB_CGR"/plain/{a,b,relay} || return 1
	ip netns add "$MB_NS" && ip -n "$MB_NS" link set lo up || return 1
	cat >"$TMP/mesh.yaml" <<EOF
mesh:
  cgroup_root: $MB_CGR/mesh
  default_policy: deny
  services:
    - name: bench-a
      cgroup: a
      vip: 10.96.77.20
      port: 80
      sockmap: true
      backends:
        - { address: 127.0.0.1, port: 9720 }
    - name: bench-b
      cgroup: b
      vip: $MB_VIP
      port: 80
      sockmap: true
      backends:
        - { address: 127.0.0.1, port: 9701 }
  allow:
    - { from: bench-a, to: bench-b, ports: [80] }
EOF
	if ! { "$MB_CTL" load "$MB_BPFFS" ${MB_BUDGET:+"$MB_BUDGET"} >/dev/null && "$MB_CTL" apply "$MB_BPFFS" "$TMP/mesh.yaml" &&
		"$MB_CTL" attach "$MB_BPFFS" "$MB_CGR/mesh"; }; then
		echo "bench: mesh failed=td_mesh_load_apply_attach"
		return 1
	fi
	# servers and relay live for the mesh bench at most; killed with their cgroups at the end
	mb_run mesh/b 300 "$MB_CTL" bench-server 127.0.0.1 9701 290 >"$TMP/mb-srv-td.out" 2>&1 &
	mb_run plain/b 300 "$MB_CTL" bench-server 127.0.0.1 9702 290 >"$TMP/mb-srv-plain.out" 2>&1 &
	cat >"$TMP/mb-haproxy.cfg" <<EOF
global
    maxconn 100
    nbthread 1
    pidfile $TMP/mb-haproxy.pid
defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
frontend fe
    bind 127.0.0.1:9703
    default_backend be
backend be
    server s1 127.0.0.1:9702
EOF
	mb_run plain/relay 300 haproxy -db -f "$TMP/mb-haproxy.cfg" >"$TMP/mb-haproxy.log" 2>&1 &
	mb_wait_ready "$TMP/mb-srv-td.out" && mb_wait_ready "$TMP/mb-srv-plain.out" || return 1
	for _ in $(seq 1 50); do
		ip netns exec "$MB_NS" ss -Hltn "src 127.0.0.1:9703" | grep -q . && break
		sleep 0.1
	done
	log "mesh: redirect budget ${MB_BUDGET:-default}; rr $MB_RR round trips (after $MB_WARM), bulk ${MB_SECS}s per write size;" \
		"$MB_ROUNDS rounds, alternating order; figures are medians of the rounds"
	# untimed warm-up of every path (first connections, page cache, haproxy)
	for c in "${cases[@]}"; do
		read -r k p r <<<"$(mb_target "$c")"
		mb_run "$k" 30 "$MB_CTL" bench-rr "$p" "$r" 1 "$MB_WARM" 0 >/dev/null 2>&1 ||
			{ echo "bench: mesh failed=warmup_$c"; return 1; }
	done
	for ((r = 1; r <= MB_ROUNDS; r++)); do
		if ((r % 2)); then order=(loopback td relay); else order=(relay td loopback); fi
		for c in "${order[@]}"; do
			mb_case "$c" "$r" || { echo "bench: mesh failed=probe_$c"; return 1; }
		done
	done
	for c in "${cases[@]}"; do
		line="bench: mesh_$c"
		for k in rr1_p50_us rr1_p99_us rr1k_p50_us rr1k_p99_us; do line+=" $k=$(mb_med "$c,$k" %.1f)"; done
		for k in bulk4k_MBps bulk128k_MBps; do line+=" $k=$(mb_med "$c,$k" %.0f)"; done
		echo "$line"
	done
	# the redirect proven by td's counters, per probe over its td runs (both directions):
	# redirected_share = msg_redirect_bytes / payload bytes the probes moved
	for p in rr1 rr1k bulk4k bulk128k; do
		share=$(awk -v a="${MB_CNT[td:$p,msg_redirect_bytes]:-0}" -v b="${MB_CNT[td:$p,payload]:-1}" \
			'BEGIN { printf "%.3f", a / b }')
		line="bench: mesh_td_counters probe=$p"
		for k in sock_join_active sock_join_passive msg_redirect msg_redirect_bytes msg_pass_budget \
			msg_pass_tcp msg_rearm msg_pass_no_peer err_psock; do
			line+=" $k=${MB_CNT[td:$p,$k]:-0}"
		done
		echo "$line payload_bytes=${MB_CNT[td:$p,payload]:-0} redirected_share=$share"
		# every td connection joined on both sides, and most bytes went socket to socket
		[[ ${MB_CNT[td:$p,sock_join_active]:-0} -ge $MB_ROUNDS &&
			${MB_CNT[td:$p,sock_join_passive]:-0} -ge $MB_ROUNDS ]] || proven=no
		awk -v s="$share" 'BEGIN { exit !(s >= 0.5) }' || proven=no
		for c in loopback relay; do
			((${MB_CNT[$c:$p,msg_redirect]:-0} == 0 && ${MB_CNT[$c:$p,connect]:-0} == 0)) ||
				{ log "mesh_$c $p: td counters moved during a case without td"; proven=no; }
		done
	done
	echo "bench: mesh_ratio td_vs_loopback_rr1_p50=$(mb_ratio td,rr1_p50_us loopback,rr1_p50_us)" \
		"td_vs_relay_rr1_p50=$(mb_ratio td,rr1_p50_us relay,rr1_p50_us)" \
		"td_vs_loopback_bulk128k=$(mb_ratio td,bulk128k_MBps loopback,bulk128k_MBps)" \
		"td_vs_loopback_bulk4k=$(mb_ratio td,bulk4k_MBps loopback,bulk4k_MBps)" \
		"td_vs_loopback_rr1_p99=$(mb_ratio td,rr1_p99_us loopback,rr1_p99_us)" \
		"td_vs_loopback_rr1k_p50=$(mb_ratio td,rr1k_p50_us loopback,rr1k_p50_us)" \
		"td_vs_relay_rr1k_p50=$(mb_ratio td,rr1k_p50_us relay,rr1k_p50_us)"
	awk -v a="$(mb_ratio td,rr1_p50_us loopback,rr1_p50_us)" -v b="$(mb_ratio td,rr1_p50_us relay,rr1_p50_us)" \
		-v c="$(mb_ratio td,bulk128k_MBps loopback,bulk128k_MBps)" -v p="$proven" 'BEGIN {
		printf "bench: mesh_goals rr1_p50_le_0.6x_loopback=%s rr1_p50_le_0.25x_relay=%s", (a <= 0.6) ? "met" : "not_met", (b <= 0.25) ? "met" : "not_met"
		printf " bulk128k_ge_2x_loopback=%s redirect_proven=%s\n", (c >= 2) ? "met" : "not_met", p }'
	mesh_cleanup
}

for part in l4 mesh gateway proxy; do
	[[ $PART == all || $PART == "$part" ]] || continue
	case $part in
	l4) bench_l4 || FAILED=1 ;;
	mesh) bench_mesh || FAILED=1 ;;
	gateway) bench_gateway || FAILED=1 ;;
	proxy) bench_proxy || FAILED=1 ;;
	*) echo "bench: $part skipped=not_implemented" ;;
	esac
done
exit $FAILED
